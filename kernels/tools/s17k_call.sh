#!/usr/bin/env bash
# Session 17, helper K: the one device call (kernels/NOTES.md "Session 17, K"): float64 checks of the two
# candidates (gran 16 / 64 through the Gluon list kernel on the expanded index; the planner row cost c_row 1.45),
# then paired timing with controls, cuDNN in the same rounds: (1) lever 1 at H12 N32760, H12 N32760+512 text and
# H40 N75600, d 0.02 / 0.1 / 0.3 / 0.5 / 0.9, gran 16 and 64: candidate vs the packaged tl entry (+ the packaged
# entry again: control); (2) lever 2 at the d <= 0.1 cells of the 8 D128 shapes and two long-row cells: c_row 1.45 vs
# the packaged entry (+ control).  Then the rules (kernels/tools/gran_expand_analyze.py); if lever 1 is adopted, the
# benchmark of record's gran rows (H12 N32760 d 0.1 / 0.5, gran 16 / 64) re-timed on the adopted table.
# Run on the device from the repo root with OUT and FGSIM_COMMIT set.
set -u
export PYTHONPATH=.:kernels PYTHONUNBUFFERED=1
C=kernels/logs/launch_configs-candidate-s17k-expand.json
R=kernels/logs/launch_configs-candidate-s17k-crow.json
P=kernels/fgattn/data/launch_configs.json
cp $P "$OUT/launch_configs-packaged.json"
PC="$OUT/launch_configs-packaged.json"
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
timeout 130 python3 kernels/tools/gran_expand_check.py --cases 240 --crow-cases 40 --seed 1701 --workers 6 \
  --deadline-s 95 --out "$OUT" > "$OUT/gran-check.log" 2>&1 &
pa=$!
FGATTN_LAUNCH_TABLE=$C timeout 170 python3 validation/gpu_check_kernels.py --workers 10 --table \
  > "$OUT/gpu_check-s17k-expand-table.log" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
echo "[s17k] checks rc=$ra/$rb at $(( $(date +%s) - t0 )) s: $(tail -1 "$OUT/gran-check.log") | $(tail -1 "$OUT/gpu_check-s17k-expand-table.log")"
ok=no; [ $ra -eq 0 ] && [ $rb -eq 0 ] && ok=yes
crow_ok=no; grep -q "0 failures" "$OUT/gran-check.log" && [ $ra -eq 0 ] && crow_ok=yes
D=0.02/0.1/0.3/0.5/0.9
timeout 160 python3 validation/bench_kernels.py --final --no-check --bench-only gran --fg-extra expand=$C \
  --fg-extra control=$PC --bench-shapes 0,1,2 --bench-rounds 7 --bench-densities-at 0:$D,1:$D,2:$D \
  --bench-shuffle-seed 1701 --no-flex --budget-s 130 --clock-poll-ms 25 --tag=-s17k-gran --out "$OUT" \
  > "$OUT/bench-s17k-gran.log" 2>&1
echo "[s17k] gran bench rc=$? at $(( $(date +%s) - t0 )) s"
L=0.02/0.05/0.1
timeout 100 python3 validation/bench_kernels.py --final --no-check --bench-only fg128 --fg-extra crow=$R \
  --fg-extra control=$PC --bench-shapes 0,6,1,4,7,5,2,3 --bench-rounds 7 \
  --bench-densities-at 0:$L/0.5,1:$L,2:$L/0.5,3:$L,4:$L,5:0.02/0.1,6:$L,7:0.02/0.1 --bench-shuffle-seed 1702 \
  --no-flex --budget-s 80 --clock-poll-ms 25 --tag=-s17k-crow --out "$OUT" > "$OUT/bench-s17k-crow.log" 2>&1
echo "[s17k] crow bench rc=$? at $(( $(date +%s) - t0 )) s"
grep -hE "^\[time\]|budget|ROUTE" "$OUT/bench-s17k-gran.log" "$OUT/bench-s17k-crow.log" | tail -20
python3 kernels/tools/gran_expand_analyze.py --gran "$(ls "$OUT"/kernels-h200-*-issue12-s17k-gran.csv | head -1)" \
  --fg "$(ls "$OUT"/kernels-h200-*-issue12-s17k-crow.csv | head -1)" --check-ok $ok --crow-check-ok $crow_ok \
  --json "$OUT/s17k-verdicts.json" | tee "$OUT/s17k-analyze.log"
if grep -q '^\[expand\] ADOPT' "$OUT/s17k-analyze.log" && [ $(( $(date +%s) - t0 )) -lt 440 ]; then
  cp $C $P  # the adopted table (this machine's copy only): the benchmark of record's gran rows on it
  timeout 90 python3 validation/bench_kernels.py --final --no-check --bench-only gran --bench-shapes 0 \
    --bench-densities-at 0:0.1/0.5 --bench-rounds 5 --bench-shuffle-seed 1703 --no-flex --tag=-s17k-record \
    --out "$OUT" > "$OUT/bench-s17k-record.log" 2>&1
  echo "[s17k] record gran rows rc=$? at $(( $(date +%s) - t0 )) s"
  grep -E "^\[final\] H12" "$OUT/bench-s17k-record.log"
fi
echo "[s17k] total $(( $(date +%s) - t0 )) s"
(cd "$OUT" && tar czf s17k-logs.tgz ./*.log smi.txt && rm -f ./*.log smi.txt)
