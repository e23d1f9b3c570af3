#!/bin/bash
# Session 14 (helper M3): the one H200 call on the final launch table (K3's kernels-final note).
# 1. calib13's changed rows: the dense / block D=128 M=128 calibration rows re-measured on the final table (the Gluon
#    contig form where the table adopts it; skipped when both entries stay tl): the 9 tuned calibration cases that run
#    these entries (their dense / block rows only) and the 6 benchmark-sized cases c-110..c-115 -> one CSV in the
#    harness's format (calib13 = calib12 with these rows replacing theirs, built by validation/costmodel_calib13.py).
# 2. The frozen list test15 (committed unmeasured in 4ccac18): its times are NEVER printed (no progress lines, no log
#    line with a time); they stay in the CSV until it is committed and scored once, blind.
# Kernel rows: CUDA graphs, 3 interleaved rounds, median; SM partitions: CUDA events on a green context; clocks under
# load: nvidia-smi sampled every 0.1 s during the timed work (every row's sm_clock_mhz / mem_clock_mhz).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
CALIB_IDS=${CALIB_IDS:-c-000,c-001,c-002,c-003,c-004,c-005,c-006,c-031,c-032,c-110,c-111,c-112,c-113,c-114,c-115}
TEST=${TEST:-test15}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
python3 - <<'PY' 2>&1 | tee -a "$OUT/smi.txt"
import hashlib, fgattn, fgattn.launch
p = fgattn.launch.table_file()
print("launch table", p, "sha256", hashlib.sha256(open(p, "rb").read()).hexdigest()[:12])
for kern, gran in (("dense", 1), ("block", 128), ("fg", 1)):
    try:
        c = fgattn.launch.launch_config(kern, "h200", 128, 128, gran)
        print(kern, "D128 M128:", c.extra.get("impl", "tl"), c.extra.get("gluon", ""))
    except Exception as e:  # noqa: BLE001
        print(kern, "D128 M128: ?", type(e).__name__, e)
PY
CONTIG=$(python3 -c "
import fgattn, fgattn.launch
print(int(any(fgattn.launch.launch_config(k, 'h200', 128, 128, g).extra.get('impl') == 'gluon' for k, g in (('dense', 1), ('block', 128)))))" 2>/dev/null || echo 0)
echo "contig entries in the table: $CONTIG t=$(( $(date +%s) - T0 ))s"
timeout "${T_PRE:-90}" python3 - "$CALIB_IDS" "$TEST" "$CONTIG" > "$OUT/logs/pre.log" 2>&1 <<'PY'
import sys
from dataclasses import replace
from fgsim.validation.cases import load_case_list as L
from fgsim.validation.measure import precompile
ids = set(sys.argv[1].split(","))
cal = [replace(c, kernels=tuple(k for k in c.kernels if k in ("dense", "block"))) for c in L("calib") if c.case_id in ids]
precompile((cal if sys.argv[3] == "1" else []) + L(sys.argv[2]), workers=15)
PY
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
if [ "$CONTIG" = "1" ]; then
timeout "${T_CAL:-150}" python3 - "$CALIB_IDS" "$OUT/$TAG-calib13-contig.csv" <<'PY' 2>&1 | tee "$OUT/logs/calib.log"
import sys
from dataclasses import replace
from fgsim.provenance import ClockSampler
from fgsim.validation.cases import load_case_list as L
from fgsim.validation.measure import measure_cases
ids = set(sys.argv[1].split(","))
cal = [replace(c, kernels=tuple(k for k in c.kernels if k in ("dense", "block"))) for c in L("calib") if c.case_id in ids]
with ClockSampler(period_s=0.1) as clk:
    rows = measure_cases(cal, sys.argv[2], clocks=clk, progress=True)
print(len(rows), "calibration rows;", sum(r["status"] != "ok" for r in rows), "not ok;",
      sum('"form": "contig"' in r["launch_extra"] for r in rows), "contig launches; sm clocks",
      sorted({r["sm_clock_mhz"] for r in rows}))
PY
echo "calib13 rows rc=${PIPESTATUS[0]} t=$(( $(date +%s) - T0 ))s"
fi
timeout "${T_TEST:-240}" python3 -m fgsim validate --measure --cases "$TEST" --csv "$OUT/$TAG-$TEST.csv" \
    --workers 4 --no-progress > "$OUT/logs/test.log" 2>&1
echo "$TEST rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-$TEST.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- $TEST (times are not printed) ---"
python3 - "$OUT/$TAG-$TEST.csv" <<'PY'
import csv, sys
t = list(csv.DictReader(open(sys.argv[1])))
tk = [r for r in t if (r.get("kind") or "kernel") == "kernel"]
print(len(tk), "rows;", sum(1 for r in tk if r["status"] != "ok"), "not ok;",
      sum(1 for r in tk if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in tk if '"form": "contig"' in r.get("launch_extra", "")), "contig launches;",
      sum(1 for r in tk if '"form": "ws2"' in r.get("launch_extra", "")), "fg Gluon launches;",
      sum(1 for r in tk if not r.get("sm_clock_mhz")), "without a clock sample; sm clocks",
      sorted({r["sm_clock_mhz"] for r in tk})[:6])
for r in tk:
    if r["status"] != "ok":
        print("NOT OK", r["case_id"], r["kernel"], r["status"][:100])
PY
