#!/bin/bash
# Session 17 (helper M10): the one H200 call of M9's pre-registered calib16 / test19 plan (validation/MODEL_NOTES.md,
# "Session 16, helper M9" and "Session 17, helper M10"; committed before the call).
# Part 0: the kernels and harness that run are the committed ones (uncommitted kernels/ and fgsim/ edits that travelled
#         with the working tree, other helpers' work in progress, are reverted on the device copy first, listed in
#         smi.txt); the launch
#         table's sha256 is recorded in smi.txt and, as column launch_table_sha256, in every CSV of this call.
# Part 1: calibration cases c-117..c-132 and the four option what-if rows c-072 / c-075 / c-090 / c-091 (the harness
#         now runs their tl kernel: 7a50490), plus STALE (case ids the launch table changed since M8 / M9 measured
#         them, when helper K's decision changed rows calibration timed), with sm_mhz_eff, rows flushed one by one.
#         Calibration data: a summary may be printed.
# Part 2: the frozen list test19 (committed unmeasured): pass 1 every case but the long-run twins (the harness's
#         default timing), pass 2 the long-run twins (TEST19_LONG: ~250 ms per replay, 5 rounds). test19's times are
#         NEVER printed (no progress lines; the logs hold counts only); they stay in the CSV until calib16 is fitted.
# A budget guard keeps the command inside its timeout: each part runs under `timeout` with what is left.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-12-01-costmodel}
BUDGET=${BUDGET:-330}   # seconds of command this script may use (the call's limit minus a margin)
CAL="$OUT/$TAG-calib-eff-c117.csv"
CSV="$OUT/$TAG-test19.csv"
mkdir -p "$OUT/logs"
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
# the device copy's .git is stale (its HEAD is not the local one): `git checkout HEAD` there restores OLD files (the
# first call of this script did that, 06:03 UTC). Instead the local HEAD's version of every locally modified tracked
# file under kernels/ and fgsim/ travels in HEADSNAP (made by `git show HEAD:path` here, untracked) and is copied
# over the working tree on the device copy.
HEADSNAP=${HEADSNAP:-m10_head}
echo "files restored to the local HEAD (${FGSIM_COMMIT:-}) on the device copy from $HEADSNAP:" | tee -a "$OUT/smi.txt"
if [ -d "$HEADSNAP" ]; then
  (cd "$HEADSNAP" && find . -type f | sort) | tee -a "$OUT/smi.txt"
  [ -z "${DRY:-}" ] && cp -r "$HEADSNAP"/. .
fi
# untracked kernels/ files another helper is writing travel too; they are not imported by the committed code
python3 - <<'PY' 2>&1 | tee -a "$OUT/smi.txt"
import hashlib, fgattn, fgattn.launch
p = fgattn.launch.table_file()
print("launch table", p, "sha256", hashlib.sha256(open(p, "rb").read()).hexdigest())
for kern, gran in (("dense", 1), ("block", 128), ("fg", 1), ("fg", 16), ("fg", 64)):
    try:
        c = fgattn.launch.launch_config(kern, "h200", 128, 128, gran)
        print(kern, f"D128 M128 g{gran}:", c.extra.get("impl", "tl"), c.extra.get("gluon", ""))
    except Exception as e:  # noqa: BLE001
        print(kern, gran, "no entry:", e)
try:
    import torch, triton
    print("torch", torch.__version__, "triton", triton.__version__, "cuda", torch.version.cuda)
except Exception as e:  # noqa: BLE001
    print("versions:", e)
PY
SHA=$(python3 -c "import hashlib, fgattn.launch as L; print(hashlib.sha256(open(L.table_file(), 'rb').read()).hexdigest())")
python3 -c "from fgsim.validation.cases import test19_long_ids; from fgsim.validation.measure import GLUON_READ_OPTIONS" \
    || { echo "ABORT: the harness on the device copy is not the committed one"; exit 3; }
[ -n "${EXPECT_TABLE:-}" ] && [ "$SHA" != "$EXPECT_TABLE" ] && { echo "ABORT: launch table $SHA, expected $EXPECT_TABLE"; exit 3; }
CIDS=$(python3 -c "
from fgsim.validation.cases import load_case_list
ids = [c.case_id for c in load_case_list('calib') if '/' not in c.case_id and int(c.case_id[2:]) >= 117]
print(','.join(['c-072', 'c-075', 'c-090', 'c-091'] + ids))")
[ -n "${STALE:-}" ] && CIDS="$CIDS,$STALE"
IDS=$(python3 -c "
from fgsim.validation.cases import load_case_list, test19_long_ids
lo = set(test19_long_ids(load_case_list('test19')))
print(','.join(c.case_id for c in load_case_list('test19') if c.case_id not in lo) + '|' + ','.join(sorted(lo)))")
SHORT=${IDS%|*}
LONG=${IDS#*|}
echo "calibration cases: $(echo "$CIDS" | tr ',' '\n' | wc -l) ($CIDS); test19 short cases: $(echo "$SHORT" | tr ',' '\n' | wc -l), long-run twins: $LONG; t=$(el)s"
[ -n "${DRY:-}" ] && exit 0
# part 1: calibration rows (their times may be printed: calibration data); SKIP_CAL=1 skips it
[ -n "${SKIP_CAL:-}" ] && T_CAL=1
LEFT=$(( BUDGET - $(el) - 150 ))   # keep >= 150 s for test19
[ "$LEFT" -gt "${T_CAL:-110}" ] && LEFT=${T_CAL:-110}
[ -z "${SKIP_CAL:-}" ] && timeout "$LEFT" python3 -m fgsim validate --measure --cases calib --case-ids "$CIDS" --csv "$CAL" \
    --workers 12 > "$OUT/logs/calib.log" 2>&1
echo "part 1 (calibration rows) rc=$? rows=$(grep -c ',ok,' "$CAL" 2>/dev/null) t=$(el)s"
# part 2: test19, times never printed
cat > "$OUT/logs/m19.py" <<'PY'
import sys
from fgsim.provenance import ClockSampler, environment
from fgsim.validation.cases import TEST19_LONG, load_case_list
from fgsim.validation.measure import measure_cases, precompile
if __name__ == "__main__":  # precompile spawns processes that import this file: no work at import
    mode, csv_path, ids = sys.argv[1], sys.argv[2], set(sys.argv[3].split(","))
    cases = [c for c in load_case_list("test19") if c.case_id in ids]
    kw = {} if mode == "short" else {"rounds": int(TEST19_LONG["rounds"]), "target_ms": float(TEST19_LONG["target_ms"])}
    with ClockSampler(period_s=0.1) as clk:
        if mode == "short":
            precompile(cases, workers=12)
        rows = measure_cases(cases, csv_path, progress=False, clocks=clk, env=environment(), **kw)
    print(mode, len(cases), "cases,", len(rows), "rows,", sum(r["status"] != "ok" for r in rows), "not ok")
PY
LEFT=$(( BUDGET - $(el) - 40 ))
[ "$LEFT" -gt "${T_TEST:-180}" ] && LEFT=${T_TEST:-180}
timeout "$LEFT" python3 "$OUT/logs/m19.py" short "$CSV" "$SHORT" > "$OUT/logs/test19-short.log" 2>&1
echo "part 2 pass 1 rc=$? rows=$(grep -c ',ok,' "$CSV" 2>/dev/null) $(tail -1 "$OUT/logs/test19-short.log" | cut -c1-120) t=$(el)s"
LEFT=$(( BUDGET - $(el) - 6 ))
[ "$LEFT" -gt "${T_LONG:-45}" ] && LEFT=${T_LONG:-45}
[ -z "${SKIP_LONG:-}" ] && timeout "$LEFT" python3 "$OUT/logs/m19.py" long "$CSV" "$LONG" > "$OUT/logs/test19-long.log" 2>&1
echo "part 2 pass 2 (long) rc=$? rows=$(grep -c ',ok,' "$CSV" 2>/dev/null) $(tail -1 "$OUT/logs/test19-long.log" | cut -c1-120) t=$(el)s"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
# the launch table's sha256 as a column of every CSV of this call
python3 - "$CAL" "$CSV" <<'PY'
import csv, hashlib, sys
import fgattn.launch
sha = hashlib.sha256(open(fgattn.launch.table_file(), "rb").read()).hexdigest()
for p in sys.argv[1:]:
    try:
        rows = list(csv.DictReader(open(p, newline="")))
    except FileNotFoundError:
        continue
    if not rows:
        continue
    f = list(rows[0].keys()) + ["launch_table_sha256"]
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=f, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "launch_table_sha256": sha})
PY
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- calibration rows (calibration data) ---"
python3 - "$CAL" "$CSV" <<'PY'
import csv, sys
for i, p in enumerate(sys.argv[1:]):
    try:
        t = [r for r in csv.DictReader(open(p)) if (r.get("kind") or "kernel") == "kernel"]
    except FileNotFoundError:
        t = []
    ok = [r for r in t if r["status"] == "ok"]
    e = sorted(float(r["sm_mhz_eff"]) / float(r["sm_clock_mhz"]) for r in ok if r.get("sm_mhz_eff") and r.get("sm_clock_mhz"))
    ids = sorted({r["case_id"] for r in t})
    print(p.rsplit("/", 1)[-1], len(t), "rows,", len(ok), "ok,", len(ids), "cases; rows without sm_mhz_eff:",
          sum(1 for r in ok if not r.get("sm_mhz_eff")), "; f_eff / NVML median", e[len(e) // 2] if e else "-")
    if i == 0:  # calibration data only: the four what-if rows' launch (must be the tl kernel now)
        for r in t:
            if r["case_id"] in ("c-072", "c-075", "c-090", "c-091"):
                print(" ", r["case_id"], r["kernel"], r["status"], r["launch_extra"][:90], r["measured_ms"][:8])
PY
echo "done t=$(el)s"
