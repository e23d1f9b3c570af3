"""Split measured fgattn times into a per-row (query block) and a per-key-tile cost, per SM.

    python kernels/tools/row_cost_fit.py validation/results/kernels-h200-2026-11-30-issue12-run3.csv
    python kernels/tools/row_cost_fit.py --sweep validation/results/kernels-h200-tune-2026-11-30-issue12-run3.csv
    python kernels/tools/row_cost_fit.py --entry-regress validation/results/kernels-h200-2026-11-30-entry-regress-s8.csv

Model: t = (rows / SMs) · c_row + (kept 128-key tiles / SMs) · c_tile, fitted by least squares over the densities
of one (shape, kernel, config) at d ≤ ``--max-density`` (benchmark CSV) or over the sweep problems (sweep CSV,
H12 N32760).  kept tiles = density · rows · N / 128.  A fit needs ≥ 2 densities.  Prints one line per group.
``--entry-regress``: one fit per variant over every (shape, density) cell of a ``validation/entry_regress.py`` CSV,
with the cells' own rows and executed tiles per row (tail tile whole), relative least squares (each cell weighted
by 1 / t), and the largest relative residual.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

SMS = 132


def fit(rows_per_sm: float, tiles_per_sm_at_d1: float, dens: list[float], ms: list[float]) -> tuple[float, float]:
    """(c_row, c_tile) in µs from times ``ms`` at densities ``dens``."""
    a = np.vstack([np.full(len(dens), rows_per_sm), np.asarray(dens) * tiles_per_sm_at_d1]).T
    (c_row, c_tile), *_ = np.linalg.lstsq(a, np.asarray(ms) * 1e3, rcond=None)
    return float(c_row), float(c_tile)


def fit_cells(cells: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(c_row µs, c_tile µs, max relative residual) from cells (rows per SM, executed tiles per SM, ms), relative
    least squares: t = c_row · rows per SM + c_tile · tiles per SM, each equation divided by its t."""
    a = np.array([[r, x] for r, x, _ in cells], dtype=float)
    t = np.array([ms * 1e3 for _, _, ms in cells])
    (c_row, c_tile), *_ = np.linalg.lstsq(a / t[:, None], np.ones(len(t)), rcond=None)
    res = np.abs(a @ np.array([c_row, c_tile]) / t - 1.0)
    return float(c_row), float(c_tile), float(res.max())


def _entry_regress(rows: list[dict[str, str]]) -> int:
    cells: dict[str, list[tuple[float, float, float]]] = {}
    for r in rows:
        if r["variant"] == "cudnn" or not r.get("rows"):
            continue
        rps = float(r["rows_per_sm"])
        cells.setdefault(r["variant"], []).append((rps, rps * float(r["exec_tiles_per_row"]), float(r["ms"])))
    print("variant | cells | c_row us | c_tile us (128 keys, per SM) | max rel. residual")
    fits = {}
    for v, c in cells.items():
        if len(c) < 2:
            continue
        fits[v] = fit_cells(c)
        print(f"{v} | {len(c)} | {fits[v][0]:.2f} | {fits[v][1]:.3f} | {fits[v][2]:.3f}")
    if "entry" in fits:
        for v, (cr, ct, _) in fits.items():
            if v != "entry":
                print(f"{v} - entry: c_row {cr - fits['entry'][0]:+.2f} us, c_tile {100 * (ct / fits['entry'][1] - 1):+.1f} %")
    return 0


def _groups_bench(rows: list[dict[str, str]], max_d: float) -> dict[tuple, list[tuple[float, float, int, int, int]]]:
    g: dict[tuple, list] = {}
    for r in rows:
        if not r["kernel"].startswith(("fg_attention", "fg_block128")) or float(r["density"]) > max_d:
            continue
        key = (r["shape"], r["kernel"], r["M"], r["gran_n"], r["config"][:60])
        g.setdefault(key, []).append((float(r["density"]), float(r["ms"]), int(r["H"]), int(r["N"]), int(r["M"])))
    return g


def _groups_sweep(rows: list[dict[str, str]]) -> dict[tuple, list[tuple[float, float, int, int, int]]]:
    g: dict[tuple, list] = {}
    h, n = 12, 32760
    for r in rows:
        if r["kernel"] == "dense" or not r.get("ms"):
            continue
        ms = float(r["ms"])
        d = float(r["eff_tflops"]) * 1e9 * ms / (4 * h * n * n * int(r["head_dim"]))
        key = ("H12 N32760 sweep", r["kernel"], r["head_dim"], r["block_m"], r["gran_n"],
               f"bn{r['block_n']} st{r['num_stages']} w{r['num_warps']} {r['extra']}")
        g.setdefault(key, []).append((d, ms, h, n, int(r["block_m"])))
    return g


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="bench_kernels.py --final benchmark CSV (or the sweep CSV with --sweep)")
    ap.add_argument("--sweep", action="store_true", help="the CSV is a --final tune sweep")
    ap.add_argument("--entry-regress", action="store_true", help="the CSV is a validation/entry_regress.py CSV")
    ap.add_argument("--max-density", type=float, default=0.35, help="benchmark: densities used in the fit")
    args = ap.parse_args(argv)
    if not args.csv.is_file():
        print(f"row_cost_fit: csv {args.csv} does not exist", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(open(args.csv, newline="", encoding="utf-8")))
    if args.entry_regress:
        return _entry_regress(rows)
    groups = _groups_sweep(rows) if args.sweep else _groups_bench(rows, args.max_density)
    print("group | n | c_row us | c_tile us (128 keys, per SM)")
    for key, pts in groups.items():
        if len({p[0] for p in pts}) < 2:
            continue
        _, _, h, n, m = pts[0]
        n_rows = h * -(-n // m)
        c_row, c_tile = fit(n_rows / SMS, n_rows * n / 128 / SMS, [p[0] for p in pts], [p[1] for p in pts])
        print(f"{' | '.join(str(k) for k in key)} | {len(pts)} | {c_row:.2f} | {c_tile:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
