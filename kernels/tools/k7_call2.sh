#!/usr/bin/env bash
# Session 15, K7, call 2 (kernels/NOTES.md "Session 15, K7"): benchmark run 15 on the final launch table (772420a):
# a GPU check of the final table while FlexAttention compiles, then the 8 D=128 Wan shapes with cuDNN, fg M128 / M64,
# block, dense and Flex in the same interleaved rounds; the 300ad25 entries that changed run beside them
# (*_previous).  Run on the device from the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels PYTHONUNBUFFERED=1
timeout 290 python3 validation/bench_kernels.py --final --check-gluon 200 --check-gluon-entry --check-contig 200 \
  --check-gluon-only --check-timeout-s 70 --bench-shapes 6,0,4,1,7,5,2,3 --bench-rounds 5 --bench-shuffle-seed 15 \
  --bench-all-kernels --previous-table kernels/logs/launch_configs-at-300ad25.json --budget-s 235 --tag=-run15 \
  --out "$OUT" 2>&1 | tee "$OUT/bench-run15.log" | grep -E "^\[time\]|^\[check\]|budget|^wrote|^\[final\] per-cell"
echo "[k7] bench rc=${PIPESTATUS[0]}"
cp "$OUT/gpu_check.log" "$OUT/gpu_check-run15.log" 2>/dev/null
sed -n '/^summary/,$p' "$OUT/bench-run15.log" | cut -c1-160
