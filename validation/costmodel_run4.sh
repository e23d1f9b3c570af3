#!/bin/bash
# Issue 10 revision 3: the one H200 session on the final kernels. `fgsim calibrate --measure-only` (microbenchmarks
# + the calibration list, the rows the fit uses), then the frozen test list test4 (written and committed before
# this measurement and before any fit; measured once, its times stay in $OUT/test4.log and the CSV until the
# model is final) and the development list dev4. Every kernel row: CUDA graphs, 3 interleaved rounds, median;
# SM partitions: CUDA events on a green context (GPU held busy while the host enqueues), fgattn.limit_sms(n).
# The fit runs afterwards on a CPU: `python -m fgsim calibrate --from-csv <calib4 CSV>`.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader | tee "$OUT/smi.txt"
git log --oneline -1 2>/dev/null | tee -a "$OUT/smi.txt"
timeout "${T_PRE:-75}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('calib') + L('test4') + L('dev4'), workers=15)" > "$OUT/logs/pre.log" 2>&1; echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_CALIB:-100}" python3 -m fgsim calibrate --measure-only --csv "$OUT/h200-2026-11-30-costmodel-calib4.csv" \
    --workers 4 > "$OUT/logs/calib.log" 2>&1; echo "calibrate rc=$? t=$(( $(date +%s) - T0 ))s"; grep -v "^\[" "$OUT/logs/calib.log" | tail -3
timeout "${T_TEST:-135}" python3 -m fgsim validate --measure --cases test4 --csv "$OUT/h200-2026-11-30-costmodel-test4.csv" \
    --workers 4 > "$OUT/logs/test4.log" 2>&1; echo "test4 rc=$? rows=$(grep -c ',ok,' "$OUT/h200-2026-11-30-costmodel-test4.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
timeout "${T_DEV:-90}" python3 -m fgsim validate --measure --cases dev4 --csv "$OUT/h200-2026-11-30-costmodel-dev4.csv" \
    --workers 4 > "$OUT/logs/dev4.log" 2>&1; echo "dev4 rc=$? t=$(( $(date +%s) - T0 ))s"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
grep -c "does not launch" "$OUT"/*.csv
echo "--- dev4 (development; test4 times are not printed) ---"
python3 - "$OUT/h200-2026-11-30-costmodel-dev4.csv" <<'PY'
import csv, sys
try:
    for r in csv.DictReader(open(sys.argv[1])):
        ex = r["launch_extra"]
        print(f"{r['case_id']} {r['kernel']:5s} d{r['head_dim']} m{r['block_m']} bn{r['block_n']} s{r['num_stages']} "
              f"w{r['num_warps']} p{r['req_persistent']}/{r['req_programs_per_sm']} sm{r['sm_count']} "
              f"regs {r['n_regs']} sh {r['shared']} sp {r['n_spills']} {r['measured_ms'] or r['status'][:40]}")
except OSError as e:
    print(e)
PY
