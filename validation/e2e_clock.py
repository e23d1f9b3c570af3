"""Measure the SM clock an H200 sustains while attention kernels run back to back at its power limit (GPU).

    PYTHONPATH=.:kernels python3 validation/e2e_clock.py --out OUT [--seconds 14] [--ramp-s 4]
    python validation/e2e_clock.py --record validation/results/e2e-h200-2026-11-30-run7/attention-clock.json


Runs :func:`fgsim.opcalibrate.measure_attention_clock` (fgattn FG kernel, tuned entry, and cuDNN SDPA at the
Wan2.1-1.3B 480p self-attention shape) and writes OUT/attention-clock.json (summary, GPU, versions, commit) and
OUT/attention-clock-samples.csv (every nvidia-smi sample, ``steady`` = 1 after the ramp). ``--record`` (CPU)
writes a committed measurement into ``fgsim/data/ops/<gpu>.json`` as its ``sustained_clock`` entry
(:func:`fgsim.opcalibrate.sustained_clock_record`; docs/endtoend.md), which whole-generation predictions read.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernels"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="output folder (GPU measurement)")
    p.add_argument("--record", type=Path, help="an attention-clock.json to write into the operator calibration")
    p.add_argument("--gpu", default="h200", help="operator calibration fgsim/data/ops/GPU.json (with --record)")
    p.add_argument("--seconds", type=float, default=14.0)
    p.add_argument("--ramp-s", type=float, default=4.0)
    args = p.parse_args(argv)
    if args.record is not None:
        return record(args.record, args.gpu)
    if args.out is None:
        print("error: --out or --record is required", file=sys.stderr)
        return 2
    if args.seconds <= args.ramp_s or args.ramp_s < 0:
        print(f"error: --seconds ({args.seconds}) must exceed --ramp-s ({args.ramp_s}) >= 0", file=sys.stderr)
        return 2
    import torch
    import triton

    from fgsim.opcalibrate import measure_attention_clock

    args.out.mkdir(parents=True, exist_ok=True)
    summary, rows = measure_attention_clock(args.seconds, args.ramp_s)
    summary.update({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "triton": triton.__version__,
                    "commit": os.environ.get("FGSIM_COMMIT", ""), "script": "validation/e2e_clock.py"})
    (args.out / "attention-clock.json").write_text(json.dumps(summary, indent=1) + "\n")
    with (args.out / "attention-clock-samples.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(json.dumps({k: {"mhz": v["clock_mhz"], "w": v["power_w"]["median"], "ms": [v["ms_first_0p5s"],
                                                                                    v["ms_steady"]]}
                      for k, v in summary["kernels"].items()}))
    return 0


def record(path: Path, gpu: str) -> int:
    """Write ``path``'s measurement into fgsim/data/ops/<gpu>.json (``sustained_clock``), atomically."""
    from fgsim.errors import FgsimError
    from fgsim.fileio import write_text_atomic
    from fgsim.opcalibrate import sustained_clock_record
    from fgsim.opmodel import CALIBRATION_DIR

    target = CALIBRATION_DIR / f"{gpu}.json"
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
        root = Path(__file__).resolve().parent.parent
        src = str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)
        rec = sustained_clock_record(summary, src)
        data = json.loads(target.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    except FgsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data["sustained_clock"] = rec
    write_text_atomic(target, json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{target}: sustained_clock {rec['sm_clock_mhz']:.0f} MHz (p10 {rec['p10_mhz']:.0f}, p90 "
          f"{rec['p90_mhz']:.0f}) from {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
