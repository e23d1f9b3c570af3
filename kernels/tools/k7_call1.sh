#!/usr/bin/env bash
# Session 15, K7, call 1 (kernels/NOTES.md "Session 15, K7"): the issue-12 GPU check on the adopted table (fg row
# end tma_sel), the contig row-end candidate's own check, then its paired timing against the packaged contig entries
# and a control, and the pre-registered rule.  Run on the device from the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels PYTHONUNBUFFERED=1
C=kernels/logs/launch_configs-candidate-contig-tma-sel.json
P=kernels/fgattn/data/launch_configs.json
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
timeout 60 python3 validation/gpu_check_kernels.py --workers 16 --gluon 300 --gluon-entry --contig 200 --gluon-only \
  > "$OUT/gpu_check-adopted.log" 2>&1
echo "[k7] check 1 (adopted table) rc=$? at $(( $(date +%s) - t0 )) s: $(tail -1 "$OUT/gpu_check-adopted.log")"
FGATTN_LAUNCH_TABLE=$C timeout 35 python3 validation/gpu_check_kernels.py --workers 16 --contig 100 --gluon-only \
  > "$OUT/gpu_check-contig-sel.log" 2>&1
echo "[k7] check 2 (contig candidate) rc=$? at $(( $(date +%s) - t0 )) s: $(tail -1 "$OUT/gpu_check-contig-sel.log")"
D=0.02/0.1
timeout 100 python3 validation/bench_kernels.py --final --no-check --bench-only contig --contig-extra sel=$C \
  --contig-extra control=$P --bench-shapes 0,1,6,4,7,5,2,3 --bench-rounds 5 \
  --bench-densities-at 0:$D,1:$D,2:$D,3:$D,4:$D,5:$D,6:$D,7:$D --bench-shuffle-seed 15 --no-flex --budget-s 75 \
  --tag=-run15a --out "$OUT" > "$OUT/bench-run15a.log" 2>&1
echo "[k7] bench rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[time\]|budget" "$OUT/bench-run15a.log" | tail -12
python3 kernels/tools/contig_epilogue_adopt.py "$OUT"/kernels-h200-*-issue12-run15a.csv
echo "[k7] total $(( $(date +%s) - t0 )) s"
