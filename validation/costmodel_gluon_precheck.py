"""Pre-calibration check on development data (not a validation result): what the committed calibration (calib9, cost
model revision 8) predicts for the tl fg D=128 M=128 g1 entry and for the same entry with ``impl: gluon`` (form ws2,
pipeline 1, no fence: G2's ``gluon_ws2_pipe``) on G2's 13 measured cells
(validation/results/gluon-h200-2026-11-30-probe-g3.csv and -g3b.csv, H200, CUDA-graph timing, median of 7 paired
rounds). The cells' masks (``fgattn.masks.window_mask`` + ``with_text``, seed 0) are counted per query block in
closed form (the window is a box on the full latent grid, plus the sink keys outside it), which reproduces the
measured densities and executed tiles per row. Prints a markdown table and the summary line.

    python validation/costmodel_gluon_precheck.py [--params FILE]

``--params``: a ``costmodel_variants.py --save`` JSON (a variant's fitted parameters) instead of the committed
calibration's (revision 9 chose the Gluon consumer chain with it, on development data).
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "kernels"))

from fgattn.masks import video_grid  # noqa: E402

from fgsim.calibration import resolve  # noqa: E402
from fgsim.hardware import load_gpu  # noqa: E402
from fgsim.launchcfg import launch_config  # noqa: E402
from fgsim.model.assemble import predict_counts  # noqa: E402
from fgsim.model.gluon import tl_config  # noqa: E402

M = 128
CSVS = ("gluon-h200-2026-11-30-probe-g3.csv", "gluon-h200-2026-11-30-probe-g3b.csv")
GLUON = {"form": "ws2", "pipeline": 1, "fence": False}
RUN9 = "kernels-h200-2026-11-30-issue12-run9.csv"


def window_counts(heads: int, n: int, density: float, sinks: int = 64, seed: int = 0,
                  tol: float = 0.005) -> np.ndarray:
    """(heads, QB) kept keys per query block of ``fgattn.masks.window_mask(1, heads, n, 128, density)``."""
    t, y, x = video_grid(n)
    if t * y * x != n:
        raise SystemExit(f"N={n}: not a full latent grid, the closed-form count does not apply")
    ar = np.arange(n)
    coords = np.stack([ar // (y * x), (ar // x) % y, ar % x], 1)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    weights = 0.5 + torch.rand(heads, 3, generator=gen)
    ext = torch.tensor((t, y, x), dtype=torch.float32)
    qb = -(-n // M)
    pad = qb * M - n
    c = np.concatenate([coords, np.repeat(coords[-1:], pad, 0)]) if pad else coords
    blk = c.reshape(qb, M, 3)
    lo, hi = blk.min(1), blk.max(1)
    sk = coords[:sinks]
    lo_s, hi_s = 0.0, 2.0
    cnt = np.zeros((heads, qb), np.int64)
    for _ in range(30):  # window_mask's bisection of the window scale
        s = 0.5 * (lo_s + hi_s)
        win = (s * weights * ext).floor().to(torch.int32).numpy()
        a = np.maximum(lo[None] - win[:, None], 0)
        b = np.minimum(hi[None] + win[:, None], np.array([t, y, x]) - 1)
        inside = np.all((sk[None, None] >= a[:, :, None]) & (sk[None, None] <= b[:, :, None]), -1).sum(-1)
        cnt = np.prod(b - a + 1, axis=-1) + sinks - inside
        d = cnt.sum() / (heads * qb * n)
        if abs(d - density) <= tol:
            break
        if d < density:
            lo_s = s
        else:
            hi_s = s
    return cnt.astype(np.int64)


def with_text(cnt: np.ndarray, n_v: int, n_text: int) -> np.ndarray:
    """``fgattn.masks.with_text``'s counts: video blocks keep every text key, blocks holding text keep all keys."""
    h, _ = cnt.shape
    n = n_v + n_text
    out = np.full((h, -(-n // M)), n, np.int64)
    first = n_v // M
    out[:, :first] = cnt[:, :first] + n_text
    return out


def main() -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", help="costmodel_variants.py --save JSON (fitted parameters of a variant)")
    ap.add_argument("--run9", action="store_true", help=f"the 18 paired cells of {RUN9} (the Gluon entry and the tl "
                    "entry in the same rounds, H12 / H40 N32760, window masks d 0.02-1) instead of G2's 13 cells")
    a = ap.parse_args()
    gpu = load_gpu("h200")
    p = resolve(gpu).params
    if a.params:
        from fgsim.model.params import ModelParams

        with open(a.params) as fh:
            p = ModelParams().replace(**json.load(fh)["params"])
    # gluon_probe built its indices with order=True: both launches walk the LPT order (revision 9's rule,
    # fgsim.model.assemble.walks_lpt; revision 8 priced the tl entry in the natural order, the Gluon form LPT)
    tl = tl_config(launch_config("fg", "h200", 128, 128, 1))  # the entry's tl kernel, whatever impl it names
    tl = dataclasses.replace(tl, extra={**tl.extra, "order": "lpt"})
    gl = dataclasses.replace(tl, extra={**tl.extra, "impl": "gluon", "gluon": dict(GLUON)})
    cells: dict[tuple[str, str, str, str], dict[str, dict[str, str]]] = {}
    for f in CSVS if not a.run9 else ():
        with open(ROOT / "validation" / "results" / f) as fh:
            for r in csv.DictReader(fh):
                if r["variant"] in ("entry", "gluon_ws2_pipe"):
                    cells.setdefault((r["H"], r["N"], r["n_text"], r["density_target"]), {})[r["variant"]] = r
    if a.run9:  # issue 12 run 9 (table d370267): the Gluon entry and the tl entry (fg_attention_previous), same rounds
        with open(ROOT / "validation" / "results" / RUN9) as fh:
            got: dict[tuple[str, str, str, str], dict[str, dict[str, str]]] = {}
            for r in csv.DictReader(fh):
                if (r["D"], r["M"], r["gran_n"], r["pattern"]) != ("128", "128", "1", "window"):
                    continue
                name = {"fg_attention_previous": "entry", "fg_attention": "gluon_ws2_pipe"}.get(r["kernel"])
                if name:
                    got.setdefault((r["H"], r["N"], r["n_text"], r["density_target"]), {})[name] = {
                        **r, "density": r["density"], "exec_tiles_per_row": "nan"}
        for key, v in got.items():
            if len(v) == 2:
                e, g = v["entry"], v["gluon_ws2_pipe"]
                g.update(rel_entry=str(float(g["ms"]) / float(e["ms"])), rel_entry_min="nan", rel_entry_max="nan")
                cells[key] = v
    print("| cell | density meas / counted | tiles per row meas / counted | tl entry ms meas / pred | "
          "ws2 p1 ms meas / pred | t_ws2 / t_entry meas (min-max) / pred |")
    print("|---|---|---|---|---|---|")
    errs = []
    for (hs, ns, ts, ds), v in cells.items():
        h, n, nt, dt = int(hs), int(ns), int(ts), float(ds)
        n_v = n - nt
        cnt = window_counts(h, n_v, dt)
        if nt:
            cnt = with_text(cnt, n_v, nt)
        dens = cnt.sum() / (cnt.size * n)
        tiles = np.ceil(cnt / 128).mean()
        t0 = predict_counts(cnt, n, tl, gpu, p)[0] * 1e3
        t1 = predict_counts(cnt, n, gl, gpu, p)[0] * 1e3
        e, g = v["entry"], v["gluon_ws2_pipe"]
        me, mg, rel = float(e["ms"]), float(g["ms"]), float(g["rel_entry"])
        errs.append((t0 / me - 1, t1 / mg - 1, t1 / t0 - rel))
        name = f"H{h} N{n_v}" + (f"+{nt} text" if nt else "") + f" d {dt}"
        print(f"| {name} | {float(e['density']):.4f} / {dens:.4f} | {float(e['exec_tiles_per_row']):.1f} / "
              f"{tiles:.1f} | {me:.3f} / {t0:.3f} ({100 * (t0 / me - 1):+.1f} %) | {mg:.3f} / {t1:.3f} "
              f"({100 * (t1 / mg - 1):+.1f} %) | {rel:.3f} ({float(g['rel_entry_min']):.2f}-"
              f"{float(g['rel_entry_max']):.2f}) / {t1 / t0:.3f} |", flush=True)
    o = np.array(errs)
    print(f"{len(o)} cells: tl entry MAPE {100 * np.abs(o[:, 0]).mean():.1f} % (bias {100 * o[:, 0].mean():+.1f} %); "
          f"ws2 pipeline 1 MAPE {100 * np.abs(o[:, 1]).mean():.1f} % (bias {100 * o[:, 1].mean():+.1f} %); "
          f"ratio predicted - measured: mean {o[:, 2].mean():+.3f}, max |.| {np.abs(o[:, 2]).max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
