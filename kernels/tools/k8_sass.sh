#!/usr/bin/env bash
# Session 15, K8: offline sm_90 SASS of the packaged table (must equal kernels/logs/sass-sha256-table-k7-final.txt)
# and of the tail64 candidate table (Triton 3.6.0 at $TRITON36, default /tmp/triton36).  Writes kernels/logs/k8-*.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${TRITON36:-/tmp/triton36}
for tag in packaged cand; do
  d=$(mktemp -d)
  tab=kernels/fgattn/data/launch_configs.json
  [ "$tag" = cand ] && tab=kernels/logs/launch_configs-candidate-k8-tail64.json
  FGATTN_LAUNCH_TABLE=$tab FGATTN_DUMP=$d PYTHONPATH=$T:kernels python kernels/tools/compile_report.py --table \
    > kernels/logs/k8-compile-report-table-$tag.txt 2>&1
  (cd "$d" && sha256sum ./*.sass | sed 's#\./##' | sort -k2) > kernels/logs/k8-sass-sha256-table-$tag.txt
  rm -rf "$d"
done
grep -v '^#' kernels/logs/sass-sha256-table-k7-final.txt | sort -k2 > /tmp/k8-ref.txt
echo "packaged vs k7-final:"; diff /tmp/k8-ref.txt kernels/logs/k8-sass-sha256-table-packaged.txt && echo "  23 identical"
echo "candidate vs k7-final:"; diff /tmp/k8-ref.txt kernels/logs/k8-sass-sha256-table-cand.txt || true
