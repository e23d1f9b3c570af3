#!/bin/bash
# Session 16 (helper M9): one H200 call (validation/MODEL_NOTES.md, "Session 16, helper M9"; committed before the
# call). No model or calibration change follows from it this session (calib14 stays).
# Part 0: the kernels that run are the committed ones: uncommitted edits under kernels/ that travelled with the
#         working tree (other helpers' work in progress) are reverted on the device copy first, listed in smi.txt.
# Part 1: `fgsim calibrate --fp32-per-score --softmax-loop independent,feedback`: the feedback-free loop and, as the
#         control in the same run, M8's feedback loop, timed interleaved (every loop, tile and programs-per-SM in
#         every round), NVML's SM clock / memory clock / power polled every 0.25 s beside it.
# Part 2 (what fits in the budget): calibration cases c-072.. re-measured on the committed table with sm_mhz_eff,
#         as M8's part 3 did for c-000..c-071 (M6's rule), chunks of CHUNK cases, rows flushed one by one, so the
#         budget guard loses the tail only. Calibration data: times may be printed.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-12-01-costmodel}
BUDGET=${BUDGET:-190}   # seconds of command this script may use (the call's limit minus a margin)
CHUNK=${CHUNK:-31}
FIRST=${FIRST:-72}      # index of the first calibration case to re-measure (c-072: M8 stopped before it)
mkdir -p "$OUT/logs"
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
echo "uncommitted kernels/ edits reverted on the device copy:" | tee -a "$OUT/smi.txt"
git status --porcelain -- kernels/ | tee -a "$OUT/smi.txt"
[ -z "${DRY:-}" ] && git checkout HEAD -- kernels/ 2>&1 | tail -2
python3 - <<'PY' 2>&1 | tee -a "$OUT/smi.txt"
import hashlib, fgattn, fgattn.launch, torch, triton
p = fgattn.launch.table_file()
print("launch table", p, "sha256", hashlib.sha256(open(p, "rb").read()).hexdigest()[:12])
print("torch", torch.__version__, "triton", triton.__version__, "cuda", torch.version.cuda)
PY
IDS=$(python3 -c "
from fgsim.validation.cases import load_case_list
print(' '.join(c.case_id for c in load_case_list('calib')[$FIRST:]))")
echo "calib cases to re-measure: $(echo $IDS | wc -w) (${IDS%% *}..${IDS##* }); t=$(el)s"
[ -n "${DRY:-}" ] && exit 0
# part 1: both softmax loops, interleaved in one run, NVML polled beside it
(while :; do nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw --format=csv,noheader \
    >> "$OUT/logs/fp32-clocks.csv"; sleep 0.25; done) & CP=$!
timeout "${T_FP32:-70}" python3 -m fgsim calibrate --fp32-per-score "$OUT/fp32-per-score-h200-loops.json" \
    --softmax-loop independent,feedback > "$OUT/logs/fp32.log" 2>&1
echo "part 1 (fp32_per_score, both loops) rc=$? t=$(el)s"
kill $CP 2>/dev/null
cut -c1-300 "$OUT/logs/fp32.log" | tail -14
# part 2: calibration rows with sm_mhz_eff, chunk by chunk while the budget lasts
set -- $IDS
i=0
while [ $# -gt 0 ]; do
  LEFT=$(( BUDGET - $(el) - 8 ))
  [ "$LEFT" -lt 25 ] && { echo "part 2 stopped by the budget guard before $1 t=$(el)s"; break; }
  CH=$(echo "${@:1:$CHUNK}" | tr ' ' ',')
  shift $(( $# < CHUNK ? $# : CHUNK ))
  timeout "$LEFT" python3 -m fgsim validate --measure --cases calib --case-ids "$CH" \
      --csv "$OUT/$TAG-calib-eff-c072.csv" --workers 12 --no-progress > "$OUT/logs/calib-$i.log" 2>&1
  echo "part 2 chunk $i (${CH%%,*}..${CH##*,}) rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-calib-eff-c072.csv" 2>/dev/null) t=$(el)s"
  i=$(( i + 1 ))
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- calibration rows re-measured (calibration data) ---"
python3 - "$OUT/$TAG-calib-eff-c072.csv" <<'PY'
import csv, sys
try:
    t = [r for r in csv.DictReader(open(sys.argv[1])) if (r.get("kind") or "kernel") == "kernel"]
except FileNotFoundError:
    t = []
ok = [r for r in t if r["status"] == "ok"]
e = sorted(float(r["sm_mhz_eff"]) / float(r["sm_clock_mhz"]) for r in ok if r.get("sm_mhz_eff") and r.get("sm_clock_mhz"))
ids = sorted({r["case_id"] for r in t})
print(len(t), "rows,", len(ok), "ok,", len(ids), "cases", (ids[0], ids[-1]) if ids else "",
      "; f_eff / NVML median", e[len(e) // 2] if e else "-", "range", (e[0], e[-1]) if e else "-")
PY
echo "done t=$(el)s"
