#!/usr/bin/env bash
# Session 16, T2: the one device call (kernels/NOTES.md "Session 16, T2", pre-registered and committed before it):
# the minimal tail probe (TL_HDR) at the 14 d <= 0.05 fg cells of run 15 + H12 N32760 d 0.5: bitwise check, paired
# CUDA-graph timing entry / entry_ctl / probe (7 rounds), 20 back-to-back recorded launches per cell.
# Run on the device from the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
timeout 128 python3 kernels/tools/tail_probe.py --out "$OUT" --rounds 7 --launches 20 --budget-s 105 \
  > "$OUT/tail-probe.log" 2>&1
echo "[t2] probe rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[tail\]|^\||Error|error" "$OUT/tail-probe.log" | tail -45
