#!/usr/bin/env bash
# Issue 12, session 14, helper E: the one device call of the fg row-end research (kernels/NOTES.md, "Session 14
# research: fg row end (helper E)"). Usage on the device: FGSIM_COMMIT=<hash> bash kernels/tools/epilogue_call.sh "$OUT"
set -o pipefail
out=${1:?output folder}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels:validation
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv >"$out/smi.txt" 2>&1
timeout 200 python3 kernels/tools/epilogue_probe.py --out "$out" 2>&1 | tee "$out/epilogue-call.log" \
    | grep -v '^\[check\] [a-z_]* [bf][fp]16: '
echo "rc=$?"
