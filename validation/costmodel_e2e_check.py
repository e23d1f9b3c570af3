"""Development check of a cost-model parameter set on the end-to-end runs' self-attention (fg / dense modes).

    python validation/costmodel_e2e_check.py PARAMS.json

PARAMS.json: ``{"params": {...}, "resources": {...}}`` as ``validation/costmodel_variants.py --save`` writes it,
or a calibration file (fgsim/data/calibrations/*.json). For each e2e config and fgattn mode: measured attention
seconds (pass minus the no-attention pass, validation/results/e2e-h200-2026-11-30-run2/report.csv), the kernel
model's layers x per-call prediction with these parameters, the error, and the error minus the cuDNN pass's error
of the same config (the op calibration's SDPA, which shares the pass's clock and overheads). The e2e passes ran at
the GPU's power cap (SM clock 1530-1980 MHz, clocks.csv of runs 4-5) while the model prices at the GPU file's
clock: read the raw error with that in mind. Development data only (issue 10's protocol).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "kernels"))
RUNS = ("e2e-h200-2026-11-30-run2", "e2e-h200-2026-11-30-run3", "e2e-h200-2026-11-30-run4",
        "e2e-h200-2026-11-30-run5")


def main(argv: list[str]) -> int:
    from fgsim.costmodel import predict_counts
    from fgsim.endtoend import load_model
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.params import ModelParams
    from fgsim.opmodel import model_ops

    if len(argv) != 1:
        print("usage: costmodel_e2e_check.py PARAMS.json", file=sys.stderr)
        return 2
    sv = json.loads(Path(argv[0]).read_text())
    params = ModelParams.from_dict(sv["params"], where=argv[0])
    res = sv.get("resources") or {}
    gpu = load_gpu("h200")
    res_dir = ROOT / "validation" / "results"
    configs: dict = {}
    counts: dict = {}
    for d in RUNS:
        p = res_dir / d
        if (p / "e2e.json").is_file():
            configs.update(json.loads((p / "e2e.json").read_text()).get("configs", {}))
        if (p / "counts.npz").is_file():
            counts.update(dict(np.load(p / "counts.npz")))
    with (res_dir / RUNS[0] / "report.csv").open() as fh:
        rep = {(r["config"], r["mode"]): r for r in csv.DictReader(fh)}
    errs = []
    for key, c in configs.items():
        if (key, "cudnn") not in rep:
            continue
        model = load_model(c["model"])
        n, m = int(c["n_tokens"]), int(c["block_m"])
        layers = sum(1 for o in model_ops(model, c["resolution"]) if o.kind == "attention" and o.cat == "attention")
        cud = rep[(key, "cudnn")]
        ec = (float(cud["predicted_attention_s"]) / float(cud["measured_attention_s"]) - 1) * 100
        for mode in c["median_s"]:
            if (key, mode) not in rep or not (mode == "dense" or mode.startswith("fg@")):
                continue
            kern, dens = (mode.split("@") + ["0.3"])[:2]
            cfg = launch_config(kern, "h200", model.head_dim, m, 1)
            t = layers * float(predict_counts(counts[f"{key}|{dens}|n1"], n, cfg, gpu, params, resources=res)[0])
            meas = float(rep[(key, mode)]["measured_attention_s"])
            e = (t / meas - 1) * 100
            errs.append((kern, e, e - ec))
            print(f"{key:24s} {mode:7s} measured {meas:.4f} s predicted {t:.4f} s error {e:+6.1f} % "
                  f"(cuDNN {ec:+5.1f} %; difference {e - ec:+5.1f})")
    for k in ("fg", "dense"):
        a = np.array([x[1] for x in errs if x[0] == k])
        b = np.array([x[2] for x in errs if x[0] == k])
        if a.size:
            print(f"{k}: error mean {a.mean():+.1f} % MAPE {np.abs(a).mean():.1f} %; minus cuDNN's: mean "
                  f"{b.mean():+.1f} % MAPE {np.abs(b).mean():.1f} % ({a.size} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
