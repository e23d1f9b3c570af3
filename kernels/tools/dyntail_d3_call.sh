#!/usr/bin/env bash
# Session 16, D3: the one device call (kernels/NOTES.md "Session 16, D3", pre-registered and committed before it):
# float64 check of the candidate table's entry through the packaged route and of pool shares 0.3 / 0.5 / 1.0
# (>= 500 random cases, 14 processes, a hang = a timed-out shard), then paired CUDA-graph timing of entry /
# entry_ctl / cand (route, share 0.3) / dyn50 / dyn100 with cuDNN in the same rounds (7 rounds, NVML clock), the
# rule on cand, and T's level-1 timeline (with %smid per CTA) of the packaged kernel and share 0.3 at H40 / H12
# N32760 d 0.02.  Run on the device from the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
timeout 112 python3 kernels/tools/dyntail_d3.py --out "$OUT" --check 520 --check-procs 14 --check-timeout-s 60 \
  --rounds 7 --budget-s 62 --timeline-reps 3 > "$OUT/dyntail-d3-probe.log" 2>&1
echo "[d3] probe rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[check\] [0-9]+ checks from|^\[check\] (passed|FAILED)|^\[probe\]|^\[geo\]|^\[rule\]|^\[timeline\]|budget|timed out|Error" \
  "$OUT/dyntail-d3-probe.log" | tail -40
