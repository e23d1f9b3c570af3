#!/usr/bin/env bash
# Issue 12, session 11, helper G2: ONE device call for (1) the union-gathered pair M64 form and (2) the
# list-scheduled ws2 entry (kernels/NOTES-gluon-m64.md "Next"; kernels/NOTES.md "Session 11 research").
# Usage on the device machine, from the repository root:  bash kernels/tools/g2_issue12_call.sh "$OUT"
set -u
OUT=${1:?output folder}
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
mkdir -p "$OUT/pair" "$OUT/list"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
# 1. float64 checks, both studies at once (correctness only; nothing is timed while they run)
python3 kernels/tools/gluon_m64_probe.py --out "$OUT/pair" --tag=-pair --variants entry,g1_q_list,pair \
    --check 30 --check-seed 6403 --check-timeout-s 75 --no-time > "$OUT/pair-check.log" 2>&1 &
P1=$!
python3 kernels/tools/ws2_list_probe.py --out "$OUT/list" --variants entry,list,walk_ctl --check 120 \
    --check-seed 9101 --check-timeout-s 80 --no-time > "$OUT/list-check.log" 2>&1 &
P2=$!
wait $P1; RC1=$?
wait $P2; RC2=$?
tail -n 12 "$OUT/pair-check.log"; tail -n 10 "$OUT/list-check.log"
echo "[call] checks done at $(el)s: pair rc=$RC1 list rc=$RC2"
# 2. timing, one study after the other (paired shuffled rounds, CUDA graphs, cuDNN in the same rounds)
if [ "$RC2" = 0 ]; then
  python3 kernels/tools/ws2_list_probe.py --out "$OUT/list" --variants entry,list,walk_ctl --check 0 --rounds 5 \
      --seed 91 --budget-s 60 2>&1 | tee "$OUT/list-time.log" | grep -E "^\[(sum|time)\]|rror"
fi
echo "[call] ws2-list timing done at $(el)s"
VP=entry,g1_q_list
[ "$RC1" = 0 ] && VP=entry,g1_q_list,pair
python3 kernels/tools/gluon_m64_probe.py --out "$OUT/pair" --tag=-pair --variants "$VP" --check 0 --rounds 5 \
    --seed 81 --budget-s 50 2>&1 | tee "$OUT/pair-time.log" | grep -E "^\[(sum|time)\]|rror"
echo "[call] pair timing done at $(el)s"
# 3. ncu L2 hit rate, walk (entry) vs list at H12 N32760 d 0.5, only if time is left
if [ "$RC2" = 0 ] && [ "$(el)" -lt 165 ]; then
  python3 kernels/tools/ws2_list_probe.py --out "$OUT/list" --check 0 --no-time --ncu --ncu-timeout-s 40 2>&1 \
      | tee "$OUT/list-ncu.log" | grep -E "^\[ncu\]"
fi
echo "[call] done at $(el)s"
