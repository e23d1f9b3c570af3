#!/bin/bash
# The session's last device call on 2 x H200 (one call, issues 12 and 13), each step bounded so the next still runs:
#   1. validation/profile_row_cost.py on GPU 0: the FG entry vs tail_loop_branch (_DIAG_TAIL=5), tail_loop_unmasked
#      and persistent_nested at the default densities, graph-timed (issue 12's candidate per-row fix);
#   2. fgsim calibrate --interconnect with the collectives timed eagerly, back-to-back calls per timing
#      (FGSIM_EAGER_COLLECTIVES=1: captured NCCL hangs on this machine), then cp_run.py --parts c (per-rank
#      timing, the same back-to-back collective timing, --comm-target-ms per timing);
#   3. cp_run.py --parts a --models wan2.1-14b-720p-random (the 14B 720p capture under Ulysses) if time is left.
#   OUT=... GIT_COMMIT=<hash> LAST_BUDGET_S=262 bash validation/last_call.sh      (carry .whl for diffusers)
# Writes under $OUT (8 files): kernels-h200-2026-11-30-rowcost-tail.csv, interconnect.csv, h200.json, cp-env.json,
# cp-timing.csv, cp-counts.npz, cp-capture.csv, log.txt. NVLink multicast stays off.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
T0=$(date +%s)
BUDGET=${LAST_BUDGET_S:-262}
OUT=${OUT:?set OUT}
LOG=$OUT/log.txt
el() { echo $(($(date +%s) - T0)); }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || echo "diffusers wheels not installed: the capture will fail" | tee -a "$LOG"
export PYTHONPATH=/tmp/site:.:kernels
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv; nvidia-smi topo -m; } \
  >>"$LOG" 2>&1

echo "== [$(el) s] 1. row cost: entry vs tail_loop_branch ==" | tee -a "$LOG"
CUDA_VISIBLE_DEVICES=0 timeout 70 python3 validation/profile_row_cost.py --out "$OUT" \
  --csv-name kernels-h200-2026-11-30-rowcost-tail.csv \
  --variants entry,tail_loop_branch,tail_loop_unmasked,persistent_nested 2>&1 | tee -a "$LOG"
echo "== [$(el) s] row cost rc=${PIPESTATUS[0]} ==" | tee -a "$LOG"

export FGSIM_EAGER_COLLECTIVES=1
echo "== [$(el) s] 2a. interconnect, collectives eager back-to-back ==" | tee -a "$LOG"
timeout 45 torchrun --nproc-per-node 2 -m fgsim calibrate --interconnect --gpu h200 --rounds 5 \
  --csv "$OUT/interconnect.csv" --out "$OUT/h200.json" 2>&1 | tee -a "$LOG"
echo "== [$(el) s] interconnect rc=${PIPESTATUS[0]} ==" | tee -a "$LOG"

echo "== [$(el) s] 2b. cp_run --parts c ==" | tee -a "$LOG"
timeout 100 torchrun --nproc-per-node 2 validation/cp_run.py --out "$OUT" --parts c --budget-s 92 \
  --comm-target-ms 10 2>&1 | tee -a "$LOG"
echo "== [$(el) s] part c rc=${PIPESTATUS[0]} ==" | tee -a "$LOG"

left=$((BUDGET - $(el) - 4))
if [ "$left" -ge 75 ]; then
  echo "== [$(el) s] 3. cp_run --parts a (Wan2.1-14B 720p) with ${left} s ==" | tee -a "$LOG"
  timeout "$left" torchrun --nproc-per-node 2 validation/cp_run.py --out "$OUT" --parts a \
    --models wan2.1-14b-720p-random --trace-dir /tmp/cptraces --budget-s $((left - 4)) --need-14b-s 60 2>&1 \
    | tee -a "$LOG"
  echo "== [$(el) s] part a rc=${PIPESTATUS[0]} ==" | tee -a "$LOG"
else
  echo "== [$(el) s] 3. Wan2.1-14B capture skipped: ${left} s left ==" | tee -a "$LOG"
fi
rm -rf /tmp/cptraces
ls -la "$OUT" | tee -a "$LOG"
echo "== last call done in $(el) s ==" | tee -a "$LOG"
