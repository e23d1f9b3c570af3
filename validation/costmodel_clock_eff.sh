#!/bin/bash
# Session 15 (helper M6): the one H200 call of the effective-clock re-test (validation/MODEL_NOTES.md, "Session 15,
# helper M6"). Part 1: test16's / test17's long-run twins and their short twins re-measured by the harness with the
# sm_mhz_eff column (validation/costmodel_clock_eff.py --measure; DEVELOPMENT data, no blind score). Part 2: 10
# bench cells (H40 N32760 D128: cuDNN, dense contig, fg and block contig at d 0.02 / 0.1 / 0.5 / 1.0; 5 rounds) with
# bench_kernels.py --final, per-cell NVML sm_mhz beside sm_mhz_eff.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
mkdir -p "$OUT/logs"
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
[ -n "${DRY:-}" ] && { python3 validation/costmodel_clock_eff.py --help | head -3; exit 0; }
timeout "${T_HARNESS:-75}" python3 validation/costmodel_clock_eff.py --measure "$OUT" > "$OUT/logs/harness.log" 2>&1
echo "part 1 rc=$? rows=$(grep -c ',ok,' "$OUT/clock-eff-harness.csv" 2>/dev/null) t=$(el)s"
grep -E "^\[|sm_mhz_eff|precompiled" "$OUT/logs/harness.log" | cut -c1-200
timeout "${T_BENCH:-55}" python3 validation/bench_kernels.py --final --no-check --no-flex --bench-shapes 6 \
    --bench-densities-at 6:0.02/0.1/0.5/1.0 --bench-rounds 5 --out "$OUT" > "$OUT/logs/bench.log" 2>&1
echo "part 2 rc=$? t=$(el)s"
grep -E "^\[final\] H40|sm_mhz_eff|Error" "$OUT/logs/bench.log" | cut -c1-220
python3 - "$OUT" <<'PY'
import csv, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.csv")):
    rows = list(csv.DictReader(open(f)))
    print(f.split("/")[-1], len(rows), "rows;", "sm_mhz_eff:", [r.get("sm_mhz_eff") for r in rows][:16])
PY
