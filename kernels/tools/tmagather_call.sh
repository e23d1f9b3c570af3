#!/bin/bash
# Issue 12, session 16, helper W: the TMA row-gather call (kernels/NOTES-tma-gather.md), one device call.
#   step 1: kernels/tools/tmagather_bench.py (bit-exact stage check in a child process, then the timing; writes
#           $OUT/step1.txt = GO / NO-GO by the pre-registered rule)
#   step 2 (only if step 1 says GO): kernels/tools/tmagather_probe.py (300 random float64 cases of tg, then 7
#           interleaved CUDA-graph rounds at the 26 cells with list / list_ctl / tg and cuDNN, 10 s shape guard)
# call 2 form (call 1 lost to two bugs, kernels/NOTES-tma-gather.md): fits 112 s of command
# usage on the device: FGSIM_COMMIT=<local git rev-parse HEAD> bash kernels/tools/tmagather_call.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels:validation
q=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.limit,temperature.gpu
nvidia-smi --query-gpu=$q --format=csv > "$OUT/smi.txt" 2>&1
t0=$(date +%s)
timeout 68 python3 kernels/tools/tmagather_bench.py --out "$OUT" --budget-s 14 --check-timeout-s 28 \
    --time-timeout-s 36 2>&1 | tee "$OUT/bench.log"
echo "[call] step 1 done after $(( $(date +%s) - t0 )) s: $(cat "$OUT/step1.txt" 2>/dev/null)"
if grep -q '^GO' "$OUT/step1.txt" 2>/dev/null; then
  timeout $(( 110 - ($(date +%s) - t0) )) python3 kernels/tools/tmagather_probe.py --out "$OUT" --budget-s 10 \
      --check-timeout-s 30 --variants list,list_ctl,tg --check-variants tg 2>&1 | tee "$OUT/probe.log"
  nvidia-smi --query-gpu=$q --format=csv,noheader >> "$OUT/smi.txt" 2>&1
fi
echo "[call] done after $(( $(date +%s) - t0 )) s"
