#!/bin/bash
# Revision 10 of session 13 (helper M2): the one H200 call on the final launch table 181d183.
# 1. The fixed HBM-latency microbenchmark (fgsim.calibrate_micro.chase_rows: chase_l2 4 MiB; chase_hbm 256 MiB and
#    1 GiB random cycles, every launch continuing the cycle so no address is re-read, the L2 evicted first) beside the
#    old restarting 1 GiB chase (which re-reads the ~2.5 MB its warm launch touched: an L2 latency) for comparison ->
#    micro CSV rows in calibrate's format (they replace calib11's chase rows in calib12).
# 2. The frozen list test14 (committed unmeasured in 4082e31): its times are NEVER printed (no progress lines, no log
#    line with a time); they stay in the CSV until it is committed and scored once, blind.
# Kernel rows: CUDA graphs, 3 interleaved rounds, median; SM partitions: CUDA events on a green context; clocks under
# load: nvidia-smi sampled during the timed work (every row's sm_clock_mhz / mem_clock_mhz).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
TAG=${TAG:-h200-2026-11-30-costmodel}
mkdir -p "$OUT/logs"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version,power.limit --format=csv,noheader | tee "$OUT/smi.txt"
echo "FGSIM_COMMIT=${FGSIM_COMMIT:-}" | tee -a "$OUT/smi.txt"
timeout "${T_MICRO:-60}" python3 - "$OUT/$TAG-chase14.csv" <<'PY' 2>&1 | tee -a "$OUT/smi.txt"
import csv, json, subprocess, sys, threading, time
import torch
from fgsim.calibrate_micro import _kernels, _time, chase_rows
clk = []
stop = threading.Event()
def sample():
    while not stop.is_set():
        q = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.mem", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True).stdout.split(",")
        if len(q) == 2:
            clk.append((float(q[0]), float(q[1])))
        time.sleep(0.2)
th = threading.Thread(target=sample, daemon=True); th.start()
rows = []
for rep in range(2):  # the fixed chase twice (the rows' spread)
    rows += [dict(r, rep=rep) for r in chase_rows()]
# the old chase for comparison: a 1 GiB cycle, every launch restarting at the same element
k = _kernels()
nel = (1 << 30) // 8
perm = torch.randperm(nel, device="cuda"); nxt = torch.empty(nel, dtype=torch.int64, device="cuda")
nxt[perm] = torch.roll(perm, 1); del perm
oo = torch.empty(1, dtype=torch.int64, device="cuda")
ms = _time(lambda: k["chase"][(1,)](nxt, oo, 20000, num_warps=1), rounds=3)
rows.append({"micro": "chase_hbm_restart", "args": {"steps": 20000, "bytes": 1 << 30, "unit": "ns"}, "ms": ms,
             "value": ms * 1e6 / 20000, "rep": 0})
stop.set(); th.join()
sm = sorted(c[0] for c in clk); mem = sorted(c[1] for c in clk)
smc = sm[len(sm) // 2] if sm else ""; memc = mem[len(mem) // 2] if mem else ""
with open(sys.argv[1], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["kind", "split", "case_id", "micro", "micro_args", "measured_ms", "status", "bench",
                                      "sm_clock_mhz", "mem_clock_mhz"])
    w.writeheader()
    for i, r in enumerate(rows):
        a = dict(r["args"], value=r["value"], rep=r["rep"])
        w.writerow({"kind": "micro", "split": "calib", "case_id": f"m14-{i:03d}", "micro": r["micro"],
                    "micro_args": json.dumps(a, sort_keys=True), "measured_ms": r["ms"], "status": "ok",
                    "bench": "cuda events, 5 runs after one warm run (restart: 3), median; one thread, num_warps=1",
                    "sm_clock_mhz": smc, "mem_clock_mhz": memc})
        print(r["micro"], r["args"]["bytes"] >> 20, "MiB rep", r["rep"], round(r["value"], 1), "ns")
print("sm / mem clock (median of", len(sm), "samples):", smc, memc)
PY
echo "micro done t=$(( $(date +%s) - T0 ))s"
timeout "${T_PRE:-70}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('test14'), workers=15)" > "$OUT/logs/pre.log" 2>&1
echo "precompile rc=$? $(tail -1 "$OUT/logs/pre.log") t=$(( $(date +%s) - T0 ))s"
timeout "${T_TEST:-200}" python3 -m fgsim validate --measure --cases test14 --csv "$OUT/$TAG-test14.csv" \
    --workers 4 --no-progress > "$OUT/logs/test14.log" 2>&1
echo "test14 rc=$? rows=$(grep -c ',ok,' "$OUT/$TAG-test14.csv" 2>/dev/null) t=$(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$OUT/smi.txt"
(cd "$OUT" && tar czf logs.tar.gz logs && rm -rf logs)
echo "--- test14 (times are not printed) ---"
python3 - "$OUT/$TAG-test14.csv" <<'PY'
import csv, sys
t = list(csv.DictReader(open(sys.argv[1])))
tk = [r for r in t if (r.get("kind") or "kernel") == "kernel"]
print(len(tk), "test14 rows;", sum(1 for r in tk if r["status"] != "ok"), "not ok;",
      sum(1 for r in tk if r.get("loop_mma")), "with SASS figures;",
      sum(1 for r in tk if '"impl": "gluon"' in r.get("launch_extra", "")), "Gluon launches;",
      sum(1 for r in tk if '"order": "lpt"' in r.get("launch_extra", "")), "launch-ordered; sm clock",
      sorted({r["sm_clock_mhz"] for r in tk})[:4])
for r in tk:
    if r["status"] != "ok":
        print("NOT OK", r["case_id"], r["kernel"], r["status"][:100])
PY
