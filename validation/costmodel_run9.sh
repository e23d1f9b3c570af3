#!/bin/bash
# Issue 10 revision 7: the one H200 call on the final launch table of this session (K's kernels-final note).
# `fgsim calibrate --measure-only` (microbenchmarks: streams, L2 -> shared memory, latency, exp2 (MUFU), fp32 (FFMA)
# and mma (wgmma per N) -- the revision-7 SM rates -- gathers, the sustained-load clock; then the calibration list;
# every row records the compiled tile loop's SASS figures, now with its MUFU and FP32-pipe instructions) -> calib9,
# then the frozen test list test9 (committed unmeasured in 1662d6a, before any revision-7 variant was fitted;
# measured once here, its times are never printed: they stay in the CSV until the model and its calibration are
# final). Kernel rows: CUDA graphs, 3 interleaved rounds, median; SM partitions: CUDA events on a green context
# (GPU held busy while the host enqueues). The fit runs afterwards on a CPU:
# `python -m fgsim calibrate --from-csv <calib9 CSV> --gpu h200`.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
timeout "${T_PRE:-75}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('calib') + L('test9'), workers=15)" > "$OUT/logs/pre.log" 2>&1
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_CALIB:-200}" python3 -m fgsim calibrate --measure-only --csv "$OUT/$TAG-calib9.csv" \
    --workers 4 > "$OUT/logs/calib.log" 2>&1
echo "calibrate rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-calib9.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
grep -v "^\[" "$OUT/logs/calib.log" | grep -v -i warn | tail -3
timeout "${T_TEST:-120}" python3 -m fgsim validate --measure --cases test9 --csv "$OUT/$TAG-test9.csv" \
    --workers 4 --no-progress > "$OUT/logs/test9.log" 2>&1
echo "test9 rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-test9.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- calibration rows (test9 times are not printed) ---"
python3 - "$OUT/$TAG-calib9.csv" "$OUT/$TAG-test9.csv" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in (r for r in rows if r.get("kind") == "micro" and r["micro"] != "gather"):
    a = json.loads(r["micro_args"])
    print(r["micro"], a.get("path", a.get("n", "")), a.get("per_sm", ""), round(float(a.get("value", 0)), 1), a.get("unit"),
          a.get("sm_clock_mhz", ""), a.get("power_w", ""))
k = [r for r in rows if r.get("kind") == "kernel"]
print(len(k), "kernel rows;", sum(1 for r in k if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in k if r["status"] != "ok"), "not ok; sm clock", sorted({r["sm_clock_mhz"] for r in k})[:4])
for r in k[-9:]:
    print(r["case_id"], r["kernel"], r["head_dim"], r["block_m"], r["block_n"], r["num_stages"], r["num_warps"],
          r.get("req_options", ""), "regs", r["n_regs"], "mma", r.get("loop_mma"), "wait", r.get("loop_mma_wait"), "mufu", r.get("loop_mufu"),
          "fp32", r.get("loop_fp32"),
          r["measured_ms"] or r["status"][:40])
t = list(csv.DictReader(open(sys.argv[2])))
print(len(t), "test9 rows;", sum(1 for r in t if r["status"] != "ok"), "not ok; sm clock",
      sorted({r["sm_clock_mhz"] for r in t})[:4])
PY
