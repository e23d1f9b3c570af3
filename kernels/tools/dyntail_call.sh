#!/usr/bin/env bash
# Session 16, D2: the one device call (kernels/NOTES.md "Session 16, D2", pre-registered and committed before it):
# float64 check of the dynamic tail (>= 500 random cases, 14 processes, a hang = a timed-out shard), then paired
# CUDA-graph timing of entry / entry_ctl / dyn / dyn_lf with cuDNN in the same rounds (7 rounds, NVML clock), the
# rule, and T's level-1 timeline of the packaged kernel and dyn at H40 / H12 N32760 d 0.02.  Run on the device from
# the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
timeout 232 python3 kernels/tools/dyntail_probe.py --out "$OUT" --check 520 --check-procs 14 --check-timeout-s 100 \
  --rounds 7 --budget-s 80 --timeline-reps 3 > "$OUT/dyntail-probe.log" 2>&1
echo "[d2] probe rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[check\] [0-9]+ checks from|^\[check\] (passed|FAILED)|^\[probe\]|^\[geo\]|^\[rule\]|^\[timeline\]|budget|timed out" \
  "$OUT/dyntail-probe.log" | tail -40
