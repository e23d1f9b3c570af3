#!/bin/bash
# Issue 12, session 16, helper W2: the TMA-gather row fix, one device call (kernels/NOTES-tma-gather.md, "W2").
#   1. kernels/tools/tmagather_w2_probe.py: 300 random float64 cases per candidate through the dispatch (16 child
#      processes), then 7 interleaved CUDA-graph rounds over the run-15 cells (8 shapes, 60 s guard on starting a
#      shape) with list / list_ctl / tgq / tgqo and cuDNN in the same rounds, the pre-registered rule
#   2. kernels/tools/tmagather_timeline.py: T's level-1 timeline, list vs tg vs the candidates that passed the check
# usage on the device: FGSIM_COMMIT=<local git rev-parse HEAD> bash kernels/tools/tmagather_w2_call.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels:validation
q=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.limit,temperature.gpu
nvidia-smi --query-gpu=$q --format=csv > "$OUT/smi.txt" 2>&1
t0=$(date +%s)
timeout 120 python3 kernels/tools/tmagather_w2_probe.py --out "$OUT" --check-timeout-s 45 2>&1 | tee "$OUT/probe.log"
echo "[call] probe done after $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=$q --format=csv,noheader >> "$OUT/smi.txt" 2>&1
forms=tg
grep -q 'failed or incomplete variants \[\]' "$OUT/probe.log" && forms=tg,tgq,tgqo
grep -q "failed or incomplete variants \['tgqo'\]" "$OUT/probe.log" && forms=tg,tgq
grep -q "failed or incomplete variants \['tgq'\]" "$OUT/probe.log" && forms=tg,tgqo
timeout 60 python3 kernels/tools/tmagather_timeline.py --out "$OUT" --forms "$forms" 2>&1 | tee "$OUT/timeline.log"
echo "[call] done after $(( $(date +%s) - t0 )) s (timeline forms $forms)"
