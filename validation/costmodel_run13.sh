#!/bin/bash
# Issue 10 / issue 12 closing step: the one H200 call of calib11 + test13 on the final launch table of session 13 (K's
# kernels-final note: the fg D=128 M=128 g1 Gluon entry with extra.gluon.schedule "list").
# `fgsim calibrate --measure-only` (microbenchmarks, then the calibration list calib11 = calib10's cases plus the Gluon
# entry at benchmark-sized problems with the list and walk schedules on launch-ordered and natural indices, and its tl
# kernel on one launch-ordered mask; every row records the compiled tile loop's SASS figures) -> calib11 CSV; then the
# frozen list test13 (committed unmeasured in 7589f67 before calib11 was measured): its times are NEVER printed (no
# progress lines, no log line with a time); they stay in the CSV until it is committed and scored once, blind.
# Kernel rows: CUDA graphs, 3 interleaved rounds, median (a warm-up call outside capture prepares a list plan, so the
# captured graph runs the list schedule); SM partitions: CUDA events on a green context (GPU held busy while the host
# enqueues). Clocks under load: nvidia-smi sampled during the timed work (every row's sm_clock_mhz / mem_clock_mhz).
# The fit runs afterwards on a CPU: `python -m fgsim calibrate --from-csv <calib11 CSV> --gpu h200`.
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
# the route of a list-scheduled launch outside and inside CUDA-graph capture after a warm-up (must be the list)
python3 - <<'PY' 2>&1 | tee -a "$OUT/smi.txt"
import json, torch, fgattn
from fgattn.attention import fg_route, resolve_config
from fgsim.validation import cases as vc
from fgsim.validation.measure import _config
c = vc.Case("route", "tiny", "uniform-text", 4096, 4, 128, 128, 0.1, 1, kernels=("fg",), options=vc.gluon_options("list", "lpt"))
q = torch.randn(1, 4, 4096, 128, device="cuda", dtype=torch.bfloat16)
idx = fgattn.build_index(torch.from_numpy(vc.case_mask(c)).cuda(), block_m=128, gran_n=1, order=True)
cfg = _config("fg", q, c)
print("route before warm-up:", fg_route(q, cfg, index=idx))
fgattn.fg_attention(q, q, q, idx, block_m=128, config=cfg); torch.cuda.synchronize()
g = torch.cuda.CUDAGraph(); s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(s):
    with torch.cuda.graph(g, stream=s):
        print("route under capture after warm-up:", fg_route(q, cfg, index=idx))
        fgattn.fg_attention(q, q, q, idx, block_m=128, config=cfg)
g.replay(); torch.cuda.synchronize(); print("captured list graph replayed")
PY
timeout "${T_PRE:-80}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('calib') + L('test13'), workers=15)" > "$OUT/logs/pre.log" 2>&1
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_CALIB:-270}" python3 -m fgsim calibrate --measure-only --csv "$OUT/$TAG-calib11.csv" \
    --workers 4 > "$OUT/logs/calib.log" 2>&1
echo "calibrate rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-calib11.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
grep -v "^\[" "$OUT/logs/calib.log" | grep -v -i warn | tail -3
timeout "${T_TEST:-170}" python3 -m fgsim validate --measure --cases test13 --csv "$OUT/$TAG-test13.csv" \
    --workers 4 --no-progress > "$OUT/logs/test13.log" 2>&1
echo "test13 rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-test13.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- calibration rows (test13 times are not printed) ---"
python3 - "$OUT/$TAG-calib11.csv" "$OUT/$TAG-test13.csv" <<'PY'
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
    if r.get("axis") == "bench" or '"impl": "gluon"' in r.get("launch_extra", ""):
        ex = json.loads(r["launch_extra"])
        print(r["case_id"], r["structure"], r["n_tokens"], r["heads"], r["density"], ex.get("impl"),
              (ex.get("gluon") or {}).get("schedule", ""), ex.get("order", "natural"), "regs", r["n_regs"],
              r["measured_ms"] or r["status"][:40], r["spread_pct"][:4])
t = list(csv.DictReader(open(sys.argv[2])))
tk = [r for r in t if (r.get("kind") or "kernel") == "kernel"]
print(len(tk), "test13 rows;", sum(1 for r in tk if r["status"] != "ok"), "not ok;",
      sum(1 for r in tk if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in tk if '"impl": "gluon"' in r.get("launch_extra", "")), "Gluon launches;",
      sum(1 for r in tk if '"order": "lpt"' in r.get("launch_extra", "")), "launch-ordered; sm clock",
      sorted({r["sm_clock_mhz"] for r in tk})[:4])
for r in tk:
    if r["status"] != "ok":
        print("NOT OK", r["case_id"], r["kernel"], r["status"][:100])
PY
