#!/usr/bin/env bash
# Session 16, T: call 1 (kernels/NOTES.md "Session 16, T"): in-kernel timelines of the packaged fg ws2 list kernel
# (levels 1 / 2) and the block contig CTA on the benchmark's masks, bit-for-bit checks against the packaged
# kernels, and the probe effect (timeline kernels vs packaged, same interleaved rounds, with a control); then the
# decoded per-row breakdown.  Run on the device from the repo root with OUT set.
set -u
export PYTHONPATH=.:kernels:validation PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${TL_TIMEOUT:-200} python3 kernels/tools/timeline_probe.py --out "$OUT" ${TL_ARGS:-} 2>&1 | tee "$OUT/timeline-probe.log"
echo "[tl] probe rc=${PIPESTATUS[0]} at $(( $(date +%s) - t0 )) s"
python3 kernels/tools/timeline_probe.py --decode "$OUT" 2>&1 | grep -E "^\[fit\]|c0_(q_wait|full0_wait|qk0_rest|o_release|last_pv|meet|stage_o|next|body) |idle_boundary|p_lead|row_cycles" \
  | tee "$OUT/decode-summary.log" | head -80
echo "[tl] total $(( $(date +%s) - t0 )) s"
