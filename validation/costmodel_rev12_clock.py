"""Revision 12's rule (validation/MODEL_NOTES.md, "Session 14, helper M4"): the candidates R11 (V-CLK: every cycle
term at a row's recorded SM clock), R12 (only the SM-clocked terms: ``mem_latency`` held in ns) and RF (every row at
the GPU file's clock) priced with the committed calibration on

* *L*: long benchmark runs with per-cell NVML SM clocks: run 11's 16 dense D=128 M=128 rows (contig + the tl entry,
  8 shapes) and, at H12 N32760 and H12 N32760 + 512 text tokens, run 11's fg entry (gran 1) / block contig / block
  tl rows and run 12's packaged fg entry rows (``fg_attention_previous``); masks rebuilt as
  ``validation/bench_kernels.py`` builds them (``window_mask`` seed 0, ``with_text``; launch-ordered indexes);
* *S*: the harness rows of test15 and of the development lists of test14's record (per (axis, kernel) cell).

    PYTHONPATH=validation:kernels python validation/costmodel_rev12_clock.py --out validation/costmodel_rev12_clock.json \\
        --rows-csv validation/results/clock-check-h200-2026-11-30-rev12-long-rows.csv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "validation" / "results"
RUN11 = RES / "kernels-h200-2026-11-30-issue12-run11.csv"
RUN12 = RES / "kernels-h200-2026-11-30-issue12-run12.csv"
MODES = ("R11", "R12", "RF")
SHAPES = ("H12 N32760 D128", "H12 N32760+512text D128")
COLS = ["src", "kernel", "H", "N", "n_text", "density_target", "sm_mhz", "measured_ms",
        *(f"pred_ms_{m}" for m in MODES), *(f"err_pct_{m}" for m in MODES)]


def counts(h: int, n_video: int, n_text: int, dt: float, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(fg kept keys, block kept 128-key tiles) per (head, 128-query block) of the benchmark's mask."""
    f = cache / f"wm_h{h}_n{n_video}_t{n_text}_d{dt}.npz"
    if not f.is_file():
        import torch
        from fgattn.masks import window_mask, with_text

        t0 = time.time()
        with torch.no_grad():
            m = window_mask(1, h, n_video, 128, dt, device="cpu")
            if n_text:
                m = with_text(m, n_text, 128)
            m = m[0]
            n = m.shape[-1]
            fg = m.sum(-1).to(torch.int64)
            tiles = torch.nn.functional.pad(m, (0, (-n) % 128)).reshape(h, m.shape[1], -1, 128).any(-1)
            blk = tiles.sum(-1).to(torch.int64)
        np.savez(f, fg=fg.numpy(), blk=blk.numpy())
        del m, tiles
        print(f"built {f.name} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    z = np.load(f)
    return z["fg"], z["blk"]


def price(c: np.ndarray, n: int, cfg, gpu, params, resources, mode: str, clk: float) -> float:  # noqa: ANN001
    from fgsim.model.assemble import predict_counts
    from fgsim.model.params import at_sm_clock

    if mode == "RF":
        return predict_counts(c, n, cfg, gpu, params, resources=resources)[0] * 1e3
    g = dataclasses.replace(gpu, sustained_clock_mhz=clk)
    p = at_sm_clock(params, clk, gpu.sustained_clock_mhz) if mode == "R12" else params
    return predict_counts(c, n, cfg, g, p, resources=resources)[0] * 1e3


def long_rows(cache: Path) -> list[dict]:
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.gluon import tl_config

    gpu = load_gpu("h200")
    res = resolve(gpu)
    dense = launch_config("dense", "h200", 128, 128, 1)
    blk = launch_config("block", "h200", 128, 128, 128)
    blk = dataclasses.replace(blk, extra={**blk.extra, "order": "lpt"})
    fg = launch_config("fg", "h200", 128, 128, 1)
    fg = dataclasses.replace(fg, extra={**fg.extra, "order": "lpt"})
    cfgs = {"fg_dense": dense, "fg_dense_previous": tl_config(dense), "fg_block128": blk,
            "fg_block128_previous": tl_config(blk), "fg_attention": fg, "fg_attention_previous": fg}
    want = [(RUN11, r) for r in csv.DictReader(RUN11.open(newline=""))]
    want += [(RUN12, r) for r in csv.DictReader(RUN12.open(newline=""))]
    out = []
    for src, r in want:
        k = r["kernel"]
        if k not in cfgs or r.get("gran_n", "1") not in ("1", "128") or r.get("M") != "128" or not r.get("sm_mhz"):
            continue
        if src == RUN11 and k == "fg_attention_previous" or src == RUN12 and k != "fg_attention_previous":
            continue  # run 12's fg_attention is the candidate row end (not adopted); run 11 has no previous fg
        if k in ("fg_dense", "fg_block128") and not r["route"].startswith("gluon contig"):
            continue
        dense_k = k.startswith("fg_dense")
        if not dense_k and (r["shape"] not in SHAPES or r["pattern"] != "window"):
            continue
        h, n, nt, clk = int(r["H"]), int(r["N"]), int(r["n_text"] or 0), float(r["sm_mhz"])
        if dense_k:
            c = np.zeros((h, -(-n // 128)), np.int64)
        else:
            fgc, bc = counts(h, n - nt, nt, float(r["density_target"]), cache)
            c = bc if k.startswith("fg_block") else fgc
        row = {"src": src.stem.split("-")[-1], "kernel": k, "H": h, "N": n, "n_text": nt,
               "density_target": r["density_target"], "sm_mhz": clk, "measured_ms": float(r["ms"])}
        for m in MODES:
            t = price(c, n, cfgs[k], gpu, res.params, res.resources, m, clk)
            row[f"pred_ms_{m}"] = round(t, 4)
            row[f"err_pct_{m}"] = round(100 * (t / row["measured_ms"] - 1), 2)
        out.append(row)
        print(" | ".join(str(row[c]) for c in COLS), flush=True)
    return out


def harness_cells() -> dict:
    """Per (axis, kernel) MAPE of the development lists + test15 under each mode (rows at f_ref are priced alike)."""
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.validation import report
    from fgsim.validation.report import (
        CountsCache,
        predict_rows,
        read_results,
        recorded_clock,
        score,
        select_rows,
    )

    # test15's blind record (moved there when test16 was scored; before that, the committed summary)
    rec = ROOT / "validation" / "costmodel_summary_rev11_test15.json"
    summ = json.loads((rec if rec.is_file() else ROOT / "validation" / "costmodel_summary.json").read_text())
    files = [str(RES / Path(f).name) for f in summ["development_files"] + summ["test_files"]]
    rows, _ = select_rows([r for r in read_results(files) if (r.get("kind") or "kernel") == "kernel"
                           and r.get("measured_ms") not in ("", None)])
    cal = resolve(load_gpu("h200"))
    ref = load_gpu("h200").sustained_clock_mhz
    cache = CountsCache()
    saved = (report.PRICE_AT_RECORDED_CLOCK, report.CLOCK_MODEL)
    off = [i for i, r in enumerate(rows) if recorded_clock(r) not in (None, ref)]
    sub = [rows[i] for i in off]
    preds = {}
    try:
        report.PRICE_AT_RECORDED_CLOCK, report.CLOCK_MODEL = True, "vclk"
        base = predict_rows(rows, params=cal.params, resources=cal.resources, cache=cache)
        for mode, (at, cm) in {"R11": (True, "vclk"), "R12": (True, "split"), "RF": (False, "vclk")}.items():
            report.PRICE_AT_RECORDED_CLOCK, report.CLOCK_MODEL = at, cm
            p = base.copy()
            if sub:
                p[off] = predict_rows(sub, params=cal.params, resources=cal.resources, cache=cache)
            preds[mode] = p
    finally:
        report.PRICE_AT_RECORDED_CLOCK, report.CLOCK_MODEL = saved
    cells: dict = {}
    for mode, p in preds.items():
        for ax, d in score(rows, p).items():
            for k, v in d.items():
                if isinstance(v, dict) and "mape" in v and k != "all":
                    split = "test15" if ax.startswith("test") else "dev"
                    cells.setdefault(f"{ax}/{k}", {"n": int(v["n"])})[mode] = round(float(v["mape"]), 3)
                    del split
    t15 = [i for i, r in enumerate(rows) if r.get("split") == "test15"]
    bench = {}
    for mode, p in preds.items():
        for kern in ("fg", "block", "dense"):
            idx = [i for i in t15 if rows[i]["axis"] == "bench" and rows[i]["kernel"] == kern]
            if idx:
                meas = np.array([float(rows[i]["measured_ms"]) * 1e-3 for i in idx])
                bench.setdefault(kern, {"n": len(idx)})[mode] = round(float(np.abs(p[idx] / meas - 1).mean() * 100), 3)
    return {"files": [str(Path(f).relative_to(ROOT)) for f in files], "rows": len(rows),
            "rows_not_at_f_ref": len(off), "cells": cells, "test15_bench": bench}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rev12cache"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rows-csv", type=Path)
    ap.add_argument("--skip-harness", action="store_true", help="only the long rows (L)")
    a = ap.parse_args(argv)
    a.cache.mkdir(parents=True, exist_ok=True)
    print(" | ".join(COLS), flush=True)
    rows = long_rows(a.cache)
    out: dict = {"long": {}}
    for grp, sel in (("all", lambda r: True), ("dense", lambda r: r["kernel"].startswith("fg_dense")),
                     ("block", lambda r: r["kernel"].startswith("fg_block")),
                     ("fg", lambda r: r["kernel"].startswith("fg_attention"))):
        g = [r for r in rows if sel(r)]
        out["long"][grp] = {"n": len(g), **{m: {"mape": round(float(np.mean([abs(r[f"err_pct_{m}"]) for r in g])), 2),
                                                "bias": round(float(np.mean([r[f"err_pct_{m}"] for r in g])), 2)}
                                            for m in MODES}}
    if not a.skip_harness:
        out["harness"] = harness_cells()
        c = out["harness"]["cells"]
        out["criteria"] = {}
        for m in ("R12", "RF"):
            big = {k: v for k, v in c.items() if v["n"] >= 5}
            worst = max(((v[m] - v["R11"]), k) for k, v in big.items())
            bw = max(v[m] - v["R11"] for v in out["harness"]["test15_bench"].values())
            gain = out["long"]["all"]["R11"]["mape"] - out["long"]["all"][m]["mape"]
            out["criteria"][m] = {"1_long_gain_points": round(gain, 2), "1": gain >= 2.0,
                                  "2_worst_cell_change": [round(worst[0], 3), worst[1]], "2": worst[0] <= 1.0,
                                  "3_test15_bench_worst_change": round(bw, 3), "3": bw <= 1.0}
            out["criteria"][m]["passes"] = all(out["criteria"][m][k] for k in ("1", "2", "3"))
    print(json.dumps({k: v for k, v in out.items() if k != "harness"}, indent=1))
    from fgsim.fileio import write_text_atomic

    write_text_atomic(a.out, json.dumps(out, indent=1) + "\n")
    if a.rows_csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_text_atomic(a.rows_csv, buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
