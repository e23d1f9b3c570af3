#!/bin/bash
# The fresh frozen test list (validation/cases/test3.csv), measured once on the H200: precompile its kernels in
# parallel, then time every case (CUDA graphs, 3 interleaved rounds; SM partitions: CUDA events on a green
# context with the GPU held busy ahead of the timed calls). Rows are flushed one by one to $OUT, so a timeout
# still returns what was measured. The log is not looked at until the model is final.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader | tee "$OUT/smi.txt"
timeout "${T_TEST3:-170}" python3 validation/costmodel_test3.py > "$OUT/test3.log" 2>&1
echo "test3 rc=$?"; grep -c "" "$OUT/h200-2026-11-30-costmodel-test3.csv" 2>/dev/null; tail -1 "$OUT/test3.log"
