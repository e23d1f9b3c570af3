#!/usr/bin/env bash
# Session 15, K8: the one device call (kernels/NOTES.md "Session 15, K8"): float64 checks of the tail64 candidate,
# then paired timing with controls: (1) fg tail64 vs the packaged entry (+ control) at the d <= 0.1 cells of the 8
# D128 shapes and two long-row cells; (2) the block contig entry (tma_sel) vs the 300ad25 stg contig entry at the
# d >= 0.2 cells, with the entry timed twice (candidate A's block entry = the packaged one) as the control, and the
# dense tma_sel candidate vs the dense entry (300ad25's dense entry = the packaged one, as the control); cuDNN in the
# same rounds; the NVML SM clock read every 25 ms (not every 1 ms) during each case's replays.  Then the rules
# (kernels/tools/k8_analyze.py).  Run on the device from the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels PYTHONUNBUFFERED=1
C=kernels/logs/launch_configs-candidate-k8-tail64.json
P=kernels/fgattn/data/launch_configs.json
S=kernels/logs/launch_configs-at-300ad25.json
A=kernels/logs/launch_configs-candidate-contig-tma-sel.json
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
# checks: the targeted tail64 check and gpu_check's --gluon-entry cases on the candidate, side by side
timeout 95 python3 kernels/tools/k8_check.py --cases 160 --seed 1581 --workers 8 --deadline-s 70 --out "$OUT" \
  > "$OUT/k8-check.log" 2>&1 &
pa=$!
FGATTN_LAUNCH_TABLE=$C timeout 95 python3 validation/gpu_check_kernels.py --workers 8 --gluon 100 --gluon-entry \
  --gluon-only > "$OUT/gpu_check-k8-tail64.log" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
echo "[k8] checks rc=$ra/$rb at $(( $(date +%s) - t0 )) s: $(tail -1 "$OUT/k8-check.log") | $(tail -1 "$OUT/gpu_check-k8-tail64.log")"
ok=no; [ $ra -eq 0 ] && [ $rb -eq 0 ] && ok=yes
L=0.02/0.05/0.1
timeout 100 python3 validation/bench_kernels.py --final --no-check --bench-only fg128 --fg-extra tail64=$C \
  --fg-extra control=$P --bench-shapes 0,6,1,4,7,5,2,3 --bench-rounds 7 \
  --bench-densities-at 0:$L/0.5,1:$L,2:$L/0.5,3:$L,4:$L,5:0.02/0.1,6:$L,7:0.02/0.1 --bench-shuffle-seed 158 \
  --no-flex --budget-s 80 --clock-poll-ms 25 --tag=-k8fg --out "$OUT" > "$OUT/bench-k8fg.log" 2>&1
echo "[k8] fg bench rc=$? at $(( $(date +%s) - t0 )) s"
H=0.2/0.3/0.5/0.7/0.9/1.0
timeout 115 python3 validation/bench_kernels.py --final --no-check --bench-only contig --contig-extra stg=$S \
  --contig-extra sel=$A --bench-shapes 0,1,6,7,4,5,2,3 --bench-rounds 5 \
  --bench-densities-at 0:$H,1:$H,2:$H,3:$H,4:$H,5:0.3/0.5,6:$H,7:0.3/0.5 --bench-shuffle-seed 159 --no-flex \
  --budget-s 95 --clock-poll-ms 25 --tag=-k8contig --out "$OUT" > "$OUT/bench-k8contig.log" 2>&1
echo "[k8] contig bench rc=$? at $(( $(date +%s) - t0 )) s"
grep -hE "^\[time\]|budget" "$OUT/bench-k8fg.log" "$OUT/bench-k8contig.log" | tail -20
python3 kernels/tools/k8_analyze.py --fg "$(ls "$OUT"/kernels-h200-*-issue12-k8fg.csv | head -1)" \
  --contig "$(ls "$OUT"/kernels-h200-*-issue12-k8contig.csv | head -1)" --check-ok $ok | tee "$OUT/k8-analyze.log"
echo "[k8] total $(( $(date +%s) - t0 )) s"
# logs in one archive (CSVs stay apart)
(cd "$OUT" && tar czf k8-logs.tgz ./*.log smi.txt && rm -f ./*.log smi.txt)
