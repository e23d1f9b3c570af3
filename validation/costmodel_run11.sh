#!/bin/bash
# Issue 10 revision 9: the one H200 call on the final launch table of this session (K's kernels-final note).
# `fgsim calibrate --measure-only` (microbenchmarks: streams, L2 -> shared memory, latency, exp2 (MUFU), fp32 (FFMA),
# mma (wgmma per N), gathers, the sustained-load clock; then the calibration list calib10: calib9's cases plus the
# fg D=128 M=128 entry's tl / Gluon ws2 pipeline 1 / pipeline 0 twins and exp_poly on / off twins; every row records
# the compiled tile loop's SASS figures, read with revision 9's EXIT rule, Gluon kernels by the Gluon reader) ->
# calib10, then the frozen test list test11 (committed unmeasured in 0e4dac7, before any revision-9 decision;
# measured once here, its times are never printed: they stay in the CSV until the model and its calibration are
# final). Kernel rows: CUDA graphs, 3 interleaved rounds, median; SM partitions: CUDA events on a green context
# (GPU held busy while the host enqueues). Clocks under load: nvidia-smi sampled during the timed work (every row's
# sm_clock_mhz / mem_clock_mhz). The fit runs afterwards on a CPU:
# `python -m fgsim calibrate --from-csv <calib10 CSV> --gpu h200`.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
python3 -c "import json; d = json.load(open('kernels/fgattn/data/launch_configs.json'))
print('table fg D128 M128 g1:', [e['extra'] for e in d['entries'] if (e['kernel'], e['head_dim'], e['block_m'], e['gran_n']) == ('fg', 128, 128, 1)])" | tee -a "$OUT/smi.txt"
timeout "${T_PRE:-70}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('calib') + L('test11'), workers=15)" > "$OUT/logs/pre.log" 2>&1
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_CALIB:-200}" python3 -m fgsim calibrate --measure-only --csv "$OUT/$TAG-calib10.csv" \
    --workers 4 > "$OUT/logs/calib.log" 2>&1
echo "calibrate rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-calib10.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
grep -v "^\[" "$OUT/logs/calib.log" | grep -v -i warn | tail -3
timeout "${T_TEST:-110}" python3 -m fgsim validate --measure --cases test11 --csv "$OUT/$TAG-test11.csv" \
    --workers 4 --no-progress > "$OUT/logs/test11.log" 2>&1
echo "test11 rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-test11.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- calibration rows (test11 times are not printed) ---"
python3 - "$OUT/$TAG-calib10.csv" "$OUT/$TAG-test11.csv" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in (r for r in rows if r.get("kind") == "micro" and r["micro"] != "gather"):
    a = json.loads(r["micro_args"])
    print(r["micro"], a.get("path", a.get("n", "")), a.get("per_sm", ""), round(float(a.get("value", 0)), 1), a.get("unit"),
          a.get("sm_clock_mhz", ""), a.get("power_w", ""))
k = [r for r in rows if r.get("kind") == "kernel"]
print(len(k), "kernel rows;", sum(1 for r in k if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in k if r["status"] != "ok"), "not ok; sm clock", sorted({r["sm_clock_mhz"] for r in k})[:4])
for r in k:
    if r["status"] != "ok":
        print("NOT OK", r["case_id"], r["kernel"], r.get("req_options", ""), r["status"][:100])
for r in k:
    if r.get("req_options") or '"impl"' in r.get("launch_extra", ""):
        print(r["case_id"], r["kernel"], r["head_dim"], r["block_m"], r["block_n"], r["num_stages"], r["num_warps"],
              r.get("req_options", ""), "regs", r["n_regs"], "mma", r.get("loop_mma"), "instr", r.get("loop_instr"),
              "mufu", r.get("loop_mufu"), "prod", r.get("producer_loop_instr"), r["measured_ms"] or r["status"][:40])
t = list(csv.DictReader(open(sys.argv[2])))
tk = [r for r in t if (r.get("kind") or "kernel") == "kernel"]
print(len(tk), "test11 rows;", sum(1 for r in tk if r["status"] != "ok"), "not ok;",
      sum(1 for r in tk if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in tk if '"impl": "gluon"' in r.get("launch_extra", "")), "Gluon launches; sm clock",
      sorted({r["sm_clock_mhz"] for r in tk})[:4])
for r in tk:
    if r["status"] != "ok":
        print("NOT OK", r["case_id"], r["kernel"], r["status"][:100])
PY
