#!/bin/bash
# The context-parallel device run on 2 x H200 (one call): `fgsim calibrate --interconnect`, then
# validation/cp_run.py (numerics, CUDA-graph per-rank timing, capture). NVLink multicast stays off.
#   OUT=... CP_BUDGET_S=280 bash validation/cp_device.sh        (carry .whl for diffusers)
# Writes under $OUT (8 files): interconnect.csv, h200.json, cp-{numerics,timing,capture}.csv, cp-counts.npz,
# cp-env.json, log.txt. If the calibration with captured NCCL collectives fails or hangs, it is repeated with the
# collectives timed eagerly (FGSIM_EAGER_COLLECTIVES=1), and cp_run times them eagerly too.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
T0=$(date +%s)
BUDGET=${CP_BUDGET_S:-280}
OUT=${OUT:?set OUT}
LOG=$OUT/log.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || echo "diffusers wheels not installed: the diffusers parts will be skipped" | tee -a "$LOG"
export PYTHONPATH=/tmp/site:.:kernels
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv; nvidia-smi topo -m; } \
  >>"$LOG" 2>&1
IC=(torchrun --nproc-per-node 2 -m fgsim calibrate --interconnect --gpu h200 --rounds 5
    --csv "$OUT/interconnect.csv" --out "$OUT/h200.json")
timeout 90 "${IC[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  echo "== interconnect calibration with captured collectives failed (rc=$rc): again, collectives eager ==" \
    | tee -a "$LOG"
  export FGSIM_EAGER_COLLECTIVES=1
  timeout 60 "${IC[@]}" 2>&1 | tee -a "$LOG"
fi
left=$((BUDGET - ($(date +%s) - T0) - 8))
echo "== cp_run with ${left} s ==" | tee -a "$LOG"
timeout $((left + 6)) torchrun --nproc-per-node 2 validation/cp_run.py --out "$OUT" --budget-s "$left" \
  --need-14b-s "${CP_NEED_14B_S:-75}" 2>&1 \
  | tee -a "$LOG"
echo "== device script done in $(($(date +%s) - T0)) s ==" | tee -a "$LOG"
