#!/usr/bin/env bash
# Issue 12, session 13, helper R: the one device call of the per-row-cost research (kernels/NOTES.md, "Session 13
# research: per-row cost (helper R)"). Usage on the device: FGSIM_COMMIT=<hash> bash kernels/tools/rowpipe_call.sh "$OUT"
set -o pipefail
out=${1:?output folder}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels:validation
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv >"$out/smi.txt" 2>&1
timeout 200 python3 kernels/tools/rowpipe_probe.py --out "$out" --check 104 --rounds 8 --budget-s 85 \
    --check-timeout-s 100 2>&1 | tee "$out/rowpipe-call.log" | grep -v '^\[check\] case [01] '
echo "rc=$?"
