#!/bin/bash
# Issue 10 revision 5: the one H200 session on the final kernels of this session (launch table of K's final note).
# `fgsim calibrate --measure-only` (microbenchmarks incl. the sustained-load SM clock, then the calibration list with
# revision 5's co-residency pairs; every row records the compiled tile loop's SASS figures), then the frozen test
# list test6 (committed in 7c67025 before any revision-5 fit or measurement; measured once, its times are never
# printed: they stay in the CSV until the model and its calibration are final), then the development list dev5
# again on the final kernels (its tuned entries changed). Kernel rows: CUDA graphs, 3 interleaved rounds, median;
# SM partitions: CUDA events on a green context (GPU held busy while the host enqueues), fgattn.limit_sms(n).
# The fit runs afterwards on a CPU: `python -m fgsim calibrate --from-csv <calib6 CSV>`.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
CAL=${CAL:-calib6} DEV=${DEV:-dev6} RUN_TEST=${RUN_TEST:-1}  # final launch table 08559f8: CAL=calib7 DEV=dev7 RUN_TEST=0 (run 11:00, logs costmodel-rev5-run7)
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
timeout "${T_PRE:-60}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('calib') + (L('test6') if ${RUN_TEST} else []) + L('dev5'), workers=15)" > "$OUT/logs/pre.log" 2>&1
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_CALIB:-170}" python3 -m fgsim calibrate --measure-only --csv "$OUT/$TAG-$CAL.csv" \
    --workers 4 > "$OUT/logs/calib.log" 2>&1
echo "calibrate rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-$CAL.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
grep -v "^\[" "$OUT/logs/calib.log" | tail -3
if [ "$RUN_TEST" = 1 ]; then
timeout "${T_TEST:-130}" python3 -m fgsim validate --measure --cases test6 --csv "$OUT/$TAG-test6.csv" \
    --workers 4 --no-progress > "$OUT/logs/test6.log" 2>&1
echo "test6 rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-test6.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
fi
timeout "${T_DEV:-40}" python3 -m fgsim validate --measure --cases dev5 --csv "$OUT/$TAG-$DEV.csv" \
    --workers 4 > "$OUT/logs/dev6.log" 2>&1
echo "dev5 (final kernels) rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-$DEV.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- calibration rows (test6 times are not printed) ---"
python3 - "$OUT/$TAG-$CAL.csv" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
mic = [r for r in rows if r.get("kind") == "micro" and r["micro"] != "gather"]
for r in mic:
    a = json.loads(r["micro_args"])
    print(r["micro"], round(float(a.get("value", 0)), 1), a.get("unit"), a.get("power_w", ""))
k = [r for r in rows if r.get("kind") == "kernel"]
print(len(k), "kernel rows;", sum(1 for r in k if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in k if r["status"] != "ok"), "not ok; sm clock", sorted({r["sm_clock_mhz"] for r in k})[:4])
for r in k[-16:]:
    print(r["case_id"], r["kernel"], r["head_dim"], r["block_m"], r["block_n"], r["num_stages"], r["num_warps"],
          "regs", r["n_regs"], "sp", r["n_spills"], "ldst", r.get("loop_ldst"), "instr", r.get("loop_instr"),
          r["measured_ms"] or r["status"][:40])
PY
