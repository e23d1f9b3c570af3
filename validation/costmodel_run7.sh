#!/bin/bash
# Issue 10 revision 5.1: the frozen test list test7 (committed in e4d6fce before any fit of the waited-wgmma term and
# before any measurement of its rows), measured once on the final launch table (08559f8; kernel code 69a8f27).
# Kernel rows: CUDA graphs, 3 interleaved rounds, median; SM partitions: CUDA events on a green context.
# Times are not printed: they stay in the CSV until the model and its calibration are final.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
timeout "${T_PRE:-50}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('test7'), workers=15)" > "$OUT/logs/pre.log" 2>&1
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_TEST:-110}" python3 -m fgsim validate --measure --cases test7 --csv "$OUT/$TAG-test7.csv" \
    --workers 4 --no-progress > "$OUT/logs/test7.log" 2>&1
echo "test7 rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-test7.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
python3 - "$OUT/$TAG-test7.csv" <<'PY'
import csv, sys
k = list(csv.DictReader(open(sys.argv[1])))
print(len(k), "rows;", sum(1 for r in k if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in k if r["status"] != "ok"), "not ok; sm clock", sorted({r["sm_clock_mhz"] for r in k})[:4])
PY
