#!/usr/bin/env bash
# Session 15, helper X2, the second device call (offered by the coordinator for the ordered-lane form; kernels/NOTES.md
# "Session 15 research: independent-row warpgroups (helper X2), call 2"): irow_probe's float64 check of list, irow, irow2,
# irow2o in 16 processes, then paired CUDA-graph timing of list, list_ctl, irow, irow2, irow2o and cuDNN on the 26
# cells with the NVML SM clock per cell, and the rule.  Run on the device from the repo root with OUT and
# FGSIM_COMMIT set; call timeout_s 150 (<= 190 s of budget with the start).
set -u
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.limit --format=csv > "$OUT/smi.txt"
timeout 140 python3 kernels/tools/irow_probe.py --out "$OUT" --tag=-s15b --variants list,list_ctl,irow,irow2,irow2o \
  --check-variants list,irow,irow2,irow2o --seed 153 --check-seed 1535 --budget-s 70 --check-timeout-s 60 \
  > "$OUT/irow-call2.log" 2>&1
echo "[x2] probe rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[check\] [0-9]+ checks from|passed|FAILED|timed out|^\[time\] H.*done|budget|\[rule\]|\[geo\]|\[fit\] irow.*all cells|\[probe\] done" \
  "$OUT/irow-call2.log" | tail -30
ls -la "$OUT"
echo "[x2] total $(( $(date +%s) - t0 )) s"
