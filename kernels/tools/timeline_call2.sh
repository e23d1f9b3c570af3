#!/usr/bin/env bash
# Session 16, T: call 2 (kernels/NOTES.md "Session 16, T", pre-registered before it): the row-end lever chosen from
# call 1's timeline, extra.gluon.epilogue "tma_defer_pv" (candidate table) and "tma_defer" (diagnostic), then the
# lean level-1 timeline of the packaged kernel (stores moved past the row end's fence, producer tile 0 peeled) and of
# the candidate.  Run on the device from the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
C=kernels/logs/launch_configs-candidate-t-defer-pv.json
D=kernels/logs/launch_configs-candidate-t-defer.json
P=kernels/fgattn/data/launch_configs.json
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
# 1. checks (candidate >= 500 cases, diagnostic 60) beside the timeline probe's compiles
FGATTN_LAUNCH_TABLE=$C timeout 110 python3 validation/gpu_check_kernels.py --workers 12 --gluon 520 --gluon-entry \
  --gluon-only --gluon-seed 1616 > "$OUT/gpu_check-t16-defer-pv.log" 2>&1 &
pa=$!
FGATTN_LAUNCH_TABLE=$D timeout 110 python3 validation/gpu_check_kernels.py --workers 4 --gluon 60 --gluon-entry \
  --gluon-only --gluon-seed 1617 > "$OUT/gpu_check-t16-defer.log" 2>&1 &
pb=$!
for v in list tl1 defer defer_tl1 block block_tl1; do
  timeout 110 python3 kernels/tools/timeline_probe.py --inline-prewarm $v > "$OUT/prewarm-$v.log" 2>&1 &
done
wait $pa; ra=$?
wait $pb; rb=$?
wait
echo "[t16] checks rc=$ra/$rb at $(( $(date +%s) - t0 )) s: $(tail -1 "$OUT/gpu_check-t16-defer-pv.log") | $(tail -1 "$OUT/gpu_check-t16-defer.log")"
ok=no; [ $ra -eq 0 ] && ok=yes
# 2. the rule's timing: d <= 0.05 on the 8 D128 shapes + long-row cells, 7 rounds, control
timeout 115 python3 validation/bench_kernels.py --final --no-check --bench-only fg128 --fg-extra defer_pv=$C \
  --fg-extra defer=$D --fg-extra control=$P --bench-shapes 0,6,1,4,7,5,2,3 --bench-rounds 7 \
  --bench-densities-at 0:0.02/0.05/0.1/0.5,6:0.02/0.05/0.1,1:0.02/0.05,4:0.02/0.05,7:0.02,5:0.02,2:0.02/0.05,3:0.02/0.05 \
  --bench-shuffle-seed 162 --no-flex --budget-s 85 --clock-poll-ms 25 --tag=-t16fg --out "$OUT" > "$OUT/bench-t16fg.log" 2>&1
echo "[t16] bench rc=$? at $(( $(date +%s) - t0 )) s"
python3 kernels/tools/timeline_lever_rule.py "$(ls "$OUT"/kernels-h200-*-issue12-t16fg.csv | head -1)" --check-ok $ok \
  | tee "$OUT/rule.log"
# 3. lean timelines: packaged (probe effect with control) and the candidate at two short-row cells
timeout 80 python3 kernels/tools/timeline_probe.py --out "$OUT" --no-prewarm --l2-cells "" \
  --defer-cells 12x32760:0.02,40x32760:0.02 --rounds 7 --seed 163 --tag=-s2 > "$OUT/timeline-probe-s2.log" 2>&1
echo "[t16] probe rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[check\]|^\[time\]|^\[probe\]" "$OUT/timeline-probe-s2.log"
python3 kernels/tools/timeline_probe.py --decode "$OUT" 2>&1 | grep -E "^\[fit\]|idle_boundary|row_cycles|c0_(meet|stage_o|q_wait|last_pv|next) " | head -60
echo "[t16] total $(( $(date +%s) - t0 )) s"
(cd "$OUT" && tar czf t16-logs.tgz ./*.log smi.txt && rm -f ./*.log smi.txt)
