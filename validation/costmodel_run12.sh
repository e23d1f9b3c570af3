#!/bin/bash
# Issue 10: the H200 call that measures the frozen test list test12 only (committed unmeasured in 94debba, before any
# revision-10 variant was looked at). PREPARED, NOT RUN: revision 10's attempt accepted no variant (MODEL_NOTES.md,
# revision 10), so test12 waits for the next model revision; run it once that revision and its calibration are final
# (if the calibration needs no new measurement: `python -m fgsim calibrate --from-csv <calib CSV> --gpu h200`).
# test12 is measured once here on launch table d370267; its times are never printed: they stay in the CSV until it is
# committed and scored once, blind. Kernel rows: CUDA graphs, 3 interleaved rounds, median; SM partitions: CUDA events
# on a green context (GPU held busy while the host enqueues). Clocks under load: nvidia-smi sampled during the timed
# work (every row's sm_clock_mhz / mem_clock_mhz).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
timeout "${T_PRE:-60}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('test12'), workers=15)" > "$OUT/logs/pre.log" 2>&1
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_TEST:-120}" python3 -m fgsim validate --measure --cases test12 --csv "$OUT/$TAG-test12.csv" \
    --workers 4 --no-progress > "$OUT/logs/test12.log" 2>&1
echo "test12 rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-test12.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- test12 rows (times are not printed) ---"
python3 - "$OUT/$TAG-test12.csv" <<'PY'
import csv, sys
t = list(csv.DictReader(open(sys.argv[1])))
tk = [r for r in t if (r.get("kind") or "kernel") == "kernel"]
print(len(tk), "test12 rows;", sum(1 for r in tk if r["status"] != "ok"), "not ok;",
      sum(1 for r in tk if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in tk if '"impl": "gluon"' in r.get("launch_extra", "")), "Gluon launches; sm clock",
      sorted({r["sm_clock_mhz"] for r in tk})[:4])
for r in tk:
    if r["status"] != "ok":
        print("NOT OK", r["case_id"], r["kernel"], r["status"][:100])
PY
