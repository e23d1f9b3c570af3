"""The cost model's price of the list-scheduled Gluon ws2 form against a timing CSV of ``ws2_list_probe.py``.

For every timed problem the mask is rebuilt on the CPU exactly as the probe built it (``entry_regress.build_index``,
launch-ordered or natural), and the calibrated model (``fgsim/data/calibrations/<gpu>.json``) prices the packaged
fg D128 M128 g1 entry as its walk and as ``extra.gluon.schedule: list``. Printed and written: measured entry and
list ms (paired medians of the CSV), predicted walk and list ms, the errors, and list / walk measured vs predicted.
Development data only (the list schedule is not in any calibration or frozen test list)::

    PYTHONPATH=validation:kernels python validation/list_schedule_model_check.py \
        validation/results/kernels-h200-2026-11-30-ws2-list-rule3.csv --out /tmp/list-model.csv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "validation"), str(ROOT / "kernels")]

LIST_KNOBS = {"form": "ws2", "pipeline": 1, "fence": False, "schedule": "list"}
COLS = ["shape", "density_target", "order", "entry_ms", "list_ms", "pred_walk_ms", "pred_list_ms", "err_walk_pct",
        "err_list_pct", "list_over_walk", "pred_list_over_walk"]


def problems(path: Path) -> list[dict[str, str | float | bool]]:
    """(shape label, H, N video, N text, density target, launch-ordered, entry ms, list ms) per timed problem."""
    rows = list(csv.DictReader(open(path, newline="")))
    need = {"shape", "H", "N", "n_text", "density_target", "variant", "ms"}
    if not rows or need - set(rows[0]):
        raise ValueError(f"{path}: not a ws2_list_probe timing CSV (needs columns {sorted(need)})")
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        if r["variant"] not in ("entry", "list"):
            continue
        p = out.setdefault((r["shape"], r["density_target"]), dict(
            shape=r["shape"], h=int(r["H"]), n_text=int(r["n_text"]), n_video=int(r["N"]) - int(r["n_text"]),
            dt=float(r["density_target"]), ordered=not r["shape"].endswith("natural")))
        p[r["variant"] + "_ms"] = float(r["ms"])
    return [p for p in out.values() if "entry_ms" in p and "list_ms" in p]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="ws2_list_probe timing CSV")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--out", type=Path, default=None, help="CSV to write (atomically)")
    a = ap.parse_args(argv)
    if not a.csv.is_file():
        ap.error(f"{a.csv}: no such file")
    try:
        probs = problems(a.csv)
    except (ValueError, UnicodeDecodeError, csv.Error) as e:
        print(f"list_schedule_model_check: {e}", file=sys.stderr)
        return 2
    from entry_regress import build_index

    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.assemble import predict_counts

    gpu = load_gpu(a.gpu)
    r = resolve(gpu)
    cfg = launch_config("fg", a.gpu, 128, 128, 1)
    out = []
    for i, p in enumerate(probs):
        print(f"[{i + 1}/{len(probs)}] {p['shape']} d {p['dt']}", file=sys.stderr, flush=True)
        idx = build_index(p["h"], p["n_video"], p["n_text"], p["dt"], "cpu", order=p["ordered"])
        n = p["n_video"] + p["n_text"]
        c = idx.counts().reshape(p["h"], -1).numpy().astype(np.int64)
        ex = {k: v for k, v in cfg.extra.items() if k != "order"}
        if p["ordered"]:
            ex["order"] = "lpt"
        walk = dataclasses.replace(cfg, extra={**ex, "gluon": {**cfg.extra["gluon"], "schedule": "walk"}})
        lst = dataclasses.replace(cfg, extra={**ex, "gluon": dict(LIST_KNOBS)})
        tw = predict_counts(c, n, walk, gpu, r.params, resources=r.resources)[0] * 1e3
        tl = predict_counts(c, n, lst, gpu, r.params, resources=r.resources)[0] * 1e3
        out.append(dict(shape=p["shape"], density_target=p["dt"], order="lpt" if p["ordered"] else "natural",
                        entry_ms=p["entry_ms"], list_ms=p["list_ms"], pred_walk_ms=round(tw, 4),
                        pred_list_ms=round(tl, 4), err_walk_pct=round(100 * (tw / p["entry_ms"] - 1), 1),
                        err_list_pct=round(100 * (tl / p["list_ms"] - 1), 1),
                        list_over_walk=round(p["list_ms"] / p["entry_ms"], 3), pred_list_over_walk=round(tl / tw, 3)))
    print(" | ".join(COLS))
    for o in out:
        print(" | ".join(str(o[k]) for k in COLS))
    if a.out:
        fd, tmp = tempfile.mkstemp(dir=a.out.parent or ".", suffix=".tmp")
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLS)
            w.writeheader()
            w.writerows(out)
        os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
