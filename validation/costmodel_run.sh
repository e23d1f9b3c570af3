#!/bin/bash
# Issue 10's one GPU session: `fgsim calibrate` measurements (microbenchmarks + calibration cases), then the
# development and the frozen test case lists, all timed with CUDA graphs in interleaved rounds. The fit of the
# calibration runs beside the other measurements (the same command, --from-csv, refits it anywhere).
# The test set's log stays in $OUT/test.log: it is not looked at until the model is final.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=.:kernels
OUT=${OUT:-/tmp/fgsim-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader | tee "$OUT/smi.txt"
timeout "${T_PRE:-80}" python3 -c "from fgsim.validation.cases import load_case_list as L; from fgsim.validation.measure import precompile
precompile(L('calib') + L('dev') + L('test'), workers=15)" 2>&1 | tail -3
timeout "${T_CALIB:-110}" python3 -m fgsim calibrate --csv "$OUT/calib.csv" --out "$OUT/h200.json" \
    --measure-only --workers 4 > "$OUT/calib.log" 2>&1; echo "calibrate rc=$?"; grep -v "^\[" "$OUT/calib.log" | tail -4
(timeout 400 python3 -m fgsim calibrate --from-csv "$OUT/calib.csv" --out "$OUT/h200.json" > "$OUT/fit.log" 2>&1 &)
timeout "${T_DEV:-50}" python3 -m fgsim validate --measure --cases dev --csv "$OUT/dev.csv" --workers 4 \
    > "$OUT/dev.log" 2>&1; echo "dev rc=$?"; tail -2 "$OUT/dev.log"
timeout "${T_TEST:-120}" python3 -m fgsim validate --measure --cases test --csv "$OUT/test.csv" --workers 4 \
    > "$OUT/test.log" 2>&1; echo "test rc=$?"; wc -l "$OUT/test.csv"
for i in $(seq 1 10); do grep -q "written to" "$OUT/fit.log" 2>/dev/null && break; sleep 2; done
tail -8 "$OUT/fit.log"
