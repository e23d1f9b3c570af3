#!/bin/bash
# Issue 10 revision 4: the one H200 session on the final kernels (launch table of 75ed42f). `fgsim calibrate
# --measure-only` (microbenchmarks + the calibration list: the rows the fit uses; every row records the compiled
# tile loop's SASS figures), then the frozen test list test5 (committed in 5e28e5c before this measurement and
# before any revision-4 fit; measured once, its times are not printed: they stay in the CSV until the model is
# final) and the small development list dev5. Kernel rows: CUDA graphs, 3 interleaved rounds, median; SM
# partitions: CUDA events on a green context (GPU held busy while the host enqueues), fgattn.limit_sms(n).
# The fit runs afterwards on a CPU: `python -m fgsim calibrate --from-csv <calib5 CSV>`.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
timeout "${T_PRE:-70}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('calib') + L('test5') + L('dev5'), workers=15)" > "$OUT/logs/pre.log" 2>&1; echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_CALIB:-120}" python3 -m fgsim calibrate --measure-only --csv "$OUT/h200-2026-11-30-costmodel-calib5.csv" \
    --workers 4 > "$OUT/logs/calib.log" 2>&1; echo "calibrate rc=$? t=$(( $(date +%s) - T0 ))s"; grep -v "^\[" "$OUT/logs/calib.log" | tail -3
timeout "${T_TEST:-160}" python3 -m fgsim validate --measure --cases test5 --csv "$OUT/h200-2026-11-30-costmodel-test5.csv" \
    --workers 4 > "$OUT/logs/test5.log" 2>&1; echo "test5 rc=$? rows=$(grep -c ',ok,' "$OUT/h200-2026-11-30-costmodel-test5.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
timeout "${T_DEV:-40}" python3 -m fgsim validate --measure --cases dev5 --csv "$OUT/h200-2026-11-30-costmodel-dev5.csv" \
    --workers 4 > "$OUT/logs/dev5.log" 2>&1; echo "dev5 rc=$? t=$(( $(date +%s) - T0 ))s"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
grep -c "does not launch" "$OUT"/*.csv
echo "--- calibration rows with SASS figures (test5 times are not printed) ---"
python3 - "$OUT/h200-2026-11-30-costmodel-calib5.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r.get("kind") == "kernel"]
print(len(rows), "kernel rows;", sum(1 for r in rows if r.get("loop_mma")), "with SASS figures")
for r in rows[-14:]:
    print(r["case_id"], r["kernel"], r["head_dim"], r["block_m"], r["block_n"], r["num_stages"], r["num_warps"],
          "regs", r["n_regs"], "sp", r["n_spills"], "ldst", r.get("loop_ldst"), "mma", r.get("loop_mma"),
          "instr", r.get("loop_instr"), r["measured_ms"] or r["status"][:40])
PY
