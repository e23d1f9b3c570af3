#!/usr/bin/env bash
# Issue 12, prepared by helper G2 (session 11) for the NEXT session's first device call (not run yet):
# (1) the list-scheduled ws2 entry (fgattn.gluon_fg_list): 120-case float64 check in 8 processes, then the run-9
#     sweep problems (entry = table, list, walk_ctl) in paired shuffled rounds, then ncu L2 hit walk vs list;
# (2) the union-pair M64 form with Q read from shared memory (the fix of session 11's wrong results): float64 check
#     of pair / pair_pipe (+ pair_qreg as the known-bad control), then the 8 timing cells against the tl M64 entry.
# Session 11's call spent its 80 s ws2-list check budget compiling one Triton specialisation after another in a
# single process; here the cases are split over 8 processes.  Expected command time ~200 s on a cold machine.
# Usage on the device machine, from the repository root:  bash kernels/tools/g2_next_call.sh "$OUT"
set -u
OUT=${1:?output folder}
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
mkdir -p "$OUT/pair" "$OUT/list"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
python3 kernels/tools/gluon_m64_probe.py --out "$OUT/pair" --tag=-pair2 --variants entry,pair,pair_pipe,pair_qreg \
    --check 30 --check-seed 6403 --check-timeout-s 100 --no-time > "$OUT/pair-check.log" 2>&1 &
P1=$!
python3 kernels/tools/ws2_list_probe.py --out "$OUT/list" --variants entry,list,walk_ctl --check 120 \
    --check-seed 9101 --check-procs 8 --check-timeout-s 110 --no-time > "$OUT/list-check.log" 2>&1 &
P2=$!
wait $P1; wait $P2
tail -n 8 "$OUT/pair-check.log"; tail -n 4 "$OUT/list-check.log"
LIST_OK=$(grep -c "^\[check\] passed" "$OUT/list-check.log")
VP=entry
for v in pair pair_pipe; do
  grep -q "failed variants: .*'$v'" "$OUT/pair-check.log" || VP="$VP,$v"
done
echo "[call] checks done at $(el)s: list ok=$LIST_OK, pair variants timed: $VP"
if [ "$LIST_OK" = 1 ]; then
  python3 kernels/tools/ws2_list_probe.py --out "$OUT/list" --variants entry,list,walk_ctl --check 0 --rounds 5 \
      --seed 91 --budget-s 60 2>&1 | tee "$OUT/list-time.log" | grep -E "^\[(sum|time)\]|rror"
fi
echo "[call] ws2-list timing done at $(el)s"
if [ "$VP" != entry ]; then
  python3 kernels/tools/gluon_m64_probe.py --out "$OUT/pair" --tag=-pair2 --variants "$VP" --check 0 --rounds 5 \
      --seed 81 --budget-s 50 2>&1 | tee "$OUT/pair-time.log" | grep -E "^\[(sum|time)\]|rror"
fi
echo "[call] pair timing done at $(el)s"
if [ "$LIST_OK" = 1 ] && [ "$(el)" -lt 200 ]; then
  python3 kernels/tools/ws2_list_probe.py --out "$OUT/list" --check 0 --no-time --ncu --ncu-timeout-s 40 2>&1 \
      | tee "$OUT/list-ncu.log" | grep -E "^\[ncu\]"
fi
echo "[call] done at $(el)s"
