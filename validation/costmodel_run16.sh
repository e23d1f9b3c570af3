#!/bin/bash
# Session 14 (helper M4): the one H200 call: the frozen list test16 (committed unmeasured in e4022eb) on the final
# launch table 300ad25 (K5's UPDATE 2: no fg row-end knob adopted, so no fg recalibration rows).
# Pass 1: every test16 case but the long-run twins, the harness's default timing (CUDA graphs of ~2 ms per replay,
#         3 interleaved rounds, median; SM partitions: CUDA events on a green context).
# Pass 2, right after: the long-run twins (fgsim.validation.cases.test16_long_ids) timed with TEST16_LONG (CUDA
#         graphs of ~250 ms per replay, 5 interleaved rounds, median), appended to the same CSV.
# Every row's sm_clock_mhz / mem_clock_mhz: the clock sampler (NVML every 5 ms where it loads, else nvidia-smi) during
# the case's timed rounds. test16's times are NEVER printed (no progress lines, no log line with a time); they stay
# in the CSV until it is committed and scored once, blind.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
TEST=test16
CSV="$OUT/$TAG-$TEST.csv"
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
python3 - <<'PY' 2>&1 | tee -a "$OUT/smi.txt"
import hashlib, fgattn, fgattn.launch
p = fgattn.launch.table_file()
print("launch table", p, "sha256", hashlib.sha256(open(p, "rb").read()).hexdigest()[:12])
for kern, gran in (("dense", 1), ("block", 128), ("fg", 1)):
    c = fgattn.launch.launch_config(kern, "h200", 128, 128, gran)
    print(kern, "D128 M128:", c.extra.get("impl", "tl"), c.extra.get("gluon", ""))
PY
IDS=$(python3 -c "
from fgsim.validation.cases import load_case_list, test16_long_ids
lo = set(test16_long_ids(load_case_list('$TEST')))
print(','.join(c.case_id for c in load_case_list('$TEST') if c.case_id not in lo) + '|' + ' '.join(sorted(lo)))")
# (the call of 23:42 split a space-separated line with ${IDS% *}, which cut only the last long id: the last short
#  case, h-041, was dropped from pass 1 and never measured; fixed here with an explicit separator)
SHORT=${IDS%|*}
LONG=${IDS#*|}
echo "short cases: $(echo "$SHORT" | tr ',' '\n' | wc -l), long-run twins: $LONG t=$(( $(date +%s) - T0 ))s"
[ -n "${DRY:-}" ] && exit 0
timeout "${T_TEST:-165}" python3 -m fgsim validate --measure --cases "$TEST" --case-ids "$SHORT" --csv "$CSV" \
    --workers 4 --no-progress > "$OUT/logs/test.log" 2>&1
echo "pass 1 rc=$? rows=$(grep -c ',ok,' "$CSV" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
timeout "${T_LONG:-55}" python3 - "$TEST" "$CSV" $LONG > "$OUT/logs/long.log" 2>&1 <<'PY'
import sys
from fgsim.provenance import ClockSampler, environment
from fgsim.validation.cases import TEST16_LONG, load_case_list
from fgsim.validation.measure import measure_cases
want = set(sys.argv[3:])
cases = [c for c in load_case_list(sys.argv[1]) if c.case_id in want]
with ClockSampler(period_s=0.1) as clk:
    rows = measure_cases(cases, sys.argv[2], rounds=int(TEST16_LONG["rounds"]), target_ms=TEST16_LONG["target_ms"],
                         progress=False, clocks=clk, env=environment())
print(len(rows), "long-run rows;", sum(r["status"] != "ok" for r in rows), "not ok")
PY
echo "pass 2 (long) rc=$? $(tail -1 "$OUT/logs/long.log" | cut -c1-200) t=$(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- $TEST (times are not printed) ---"
python3 - "$CSV" <<'PY'
import csv, sys
t = list(csv.DictReader(open(sys.argv[1])))
tk = [r for r in t if (r.get("kind") or "kernel") == "kernel"]
print(len(tk), "rows;", sum(1 for r in tk if r["status"] != "ok"), "not ok;",
      sum(1 for r in tk if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in tk if '"form": "contig"' in r.get("launch_extra", "")), "contig launches;",
      sum(1 for r in tk if '"form": "ws2"' in r.get("launch_extra", "")), "fg Gluon launches;",
      sum(1 for r in tk if not r.get("sm_clock_mhz")), "without a clock sample; sm clocks",
      sorted({r["sm_clock_mhz"] for r in tk}))
print("long-run rows: reps / clock", [(r["case_id"], r["reps"], r["sm_clock_mhz"]) for r in tk
                                      if "5 interleaved" in r.get("bench", "")])
for r in tk:
    if r["status"] != "ok":
        print("NOT OK", r["case_id"], r["kernel"], r["status"][:100])
PY
