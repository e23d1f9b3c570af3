"""Rebuild ``fgsim/data/ops/h200.json`` from the raw GPU outputs of the e2e run plus fgsim's other
GPU microbenchmarks (issue 11). CPU only; reproduces the committed file byte for byte.

    python validation/e2e_calibrate.py [--check]

Inputs: ``validation/results/e2e-h200-2026-11-30{,-run2}/ops-calibration-raw.json`` and ``ops-rows.csv`` (written by
``fgsim.opcalibrate.calibrate_ops`` inside ``validation/e2e_time.py``, i.e. what ``fgsim calibrate --ops``
measures; the second run measured the HunyuanVideo, CogVideoX and reference-sampler operators, and the gap,
host, cuDNN and predictor benchmarks again), re-tabulated by :func:`fgsim.opcalibrate.rebuild` (drops replays that did no work: a meta-device
keyword in 2026-11-30's replays; adds per-signature replay times), then
:func:`fgsim.opcalibrate.independent_points` with the cuDNN, predictor and index microbenchmarks of
``validation/bench_kernels.py`` / ``bench_capture.py``. None of these is a per-pass measurement.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RAW = ROOT / "validation" / "results" / "e2e-h200-2026-11-30"
RAW2 = ROOT / "validation" / "results" / "e2e-h200-2026-11-30-run2"
RAW3 = ROOT / "validation" / "results" / "e2e-h200-2026-11-30-run3"
OUT = ROOT / "fgsim" / "data" / "ops" / "h200.json"
# the FG kernel's sustained SM clock (e2e run 7's back-to-back loop, validation/e2e_clock.py)
CLOCK = ROOT / "validation" / "results" / "e2e-h200-2026-11-30-run7" / "attention-clock.json"
# the benchmark CSVs whose cuDNN SDPA rows give the per-shape cuDNN times: a fixed list (a glob would take in
# every later benchmark and change the committed calibration whenever a CSV is added)
CUDNN_SHAPE_CSVS = (
    "kernels-h200-2026-11-29-flex-d64.csv", "kernels-h200-2026-11-29-run1-quick.csv",
    "kernels-h200-2026-11-29-targets.csv", "kernels-h200-2026-11-29.csv",
    "kernels-h200-2026-11-30-issue12-run1.csv", "kernels-h200-2026-11-30-issue12-run2.csv",
    "kernels-h200-2026-11-30-issue12-run3.csv", "kernels-h200-2026-11-30-rowcost.csv",
)


def build() -> str:
    from fgsim.endtoend import load_model
    from fgsim.opcalibrate import OPS_MODELS, independent_points, rebuild, sustained_clock_record
    from fgsim.opmodel import load_op_calibration, model_ops, reference_sampler_ops

    raws = [d for d in (RAW, RAW2, RAW3) if (d / "ops-calibration-raw.json").is_file()]
    base = load_op_calibration(raws[-1] / "ops-calibration-raw.json")  # the newest run's gap, host, SDPA, predictors
    # single-point predictor rates from the run's measurements (the raw file of the first run predates the
    # two-parameter form; independent_points adds the second points)
    size, meas = base.predictor["calibration_size"], base.predictor["measured_s"]
    x = size["heads"] * float(size["n"]) ** 2
    base.predictor.update({"exact_scores_per_s": x / meas["exact"], "exact_fixed_s": 0.0,
                           "pooled_scores_per_s": x / meas["pooled"], "pooled_fixed_s": 0.0})
    rows = []
    for d in raws:  # later runs' rows replace earlier ones of the same shape / signature
        with (d / "ops-rows.csv").open() as fh:
            rows += list(csv.DictReader(fh))
    ols = [model_ops(load_model(n), r) for n, r in OPS_MODELS + (("hunyuanvideo", "480p-33f"),)] + \
        [reference_sampler_ops(1)]
    cal = rebuild(base, rows, ols)
    res = ROOT / "validation" / "results"
    kern = [str(res / name) for name in CUDNN_SHAPE_CSVS]
    cap = sorted(glob.glob(str(res / "capture-h200-2026-11-29*.csv")))
    cal = independent_points(cal, kern, cap, str(res / "kernels-h200-2026-11-29-index-cost.csv"))
    with CLOCK.open() as fh:
        cal = replace(cal, sustained_clock=sustained_clock_record(json.load(fh), str(CLOCK.relative_to(ROOT))))
    d = cal.to_json()
    d["provenance"]["inputs"] = [str(p.relative_to(ROOT)) for r in raws for p in (r / "ops-calibration-raw.json",
                                                                                   r / "ops-rows.csv")]
    return json.dumps(d, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = p.parse_args(argv)
    text = build()
    if args.check:
        if OUT.read_text() != text:
            print(f"error: {OUT} is stale; run python validation/e2e_calibrate.py", file=sys.stderr)
            return 1
        return 0
    from fgsim.fileio import write_text_atomic

    write_text_atomic(OUT, text)
    print(f"written: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
