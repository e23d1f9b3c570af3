#!/usr/bin/env bash
# Session 15, helper X2, the one device call (kernels/NOTES.md "Session 15 research: independent-row warpgroups
# (helper X2)"): irow_probe (float64 check of list / irow in 16 processes, then paired CUDA-graph timing of list,
# list_ctl, irow, irow1 and cuDNN on 26 cells with the NVML SM clock per cell, the pre-registered rule), then
# irow_ncu (Nsight Compute of the packaged entry and irow at H12 N32760 d 0.02 / 0.5).  Run on the device from the
# repo root with OUT and FGSIM_COMMIT set.  At most 8 files come back: the ncu folder is packed into one tgz.
set -u
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.limit --format=csv > "$OUT/smi.txt"
cat "$OUT/smi.txt"
timeout 215 python3 kernels/tools/irow_probe.py --out "$OUT" --tag=-s15 --check-timeout-s 90 > "$OUT/irow-call.log" 2>&1
echo "[x2] probe rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[check\] [0-9]+ checks|passed|FAIL|occupancy|^\[time\] H|\[rule\]|\[geo\]|\[fit\] irow.*all cells|done" \
  "$OUT/irow-call.log" | tail -40
left=$(( 255 - ($(date +%s) - t0) ))
if [ "$left" -gt 45 ]; then
  timeout $(( left - 5 )) python3 kernels/tools/irow_ncu.py --out "$OUT/ncu" --timeout-s $(( left - 15 )) \
    > "$OUT/irow-ncu.log" 2>&1
  echo "[x2] ncu rc=$? at $(( $(date +%s) - t0 )) s"
  grep -E "^\[build\]|^\[ncu\]" "$OUT/irow-ncu.log" | cut -c1-300
else
  echo "[x2] ncu skipped: $left s left of the 255 s plan"
fi
if [ -d "$OUT/ncu" ]; then
  (cd "$OUT" && tar czf ncu-irow.tgz --exclude='*.ncu-rep' ncu && rm -rf ncu)
fi
ls -la "$OUT"
echo "[x2] total $(( $(date +%s) - t0 )) s"
