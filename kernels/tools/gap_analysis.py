"""Where the FG kernel's remaining gap to cuDNN sits: per-row (per-CTA) cost vs per-tile cost vs imbalance.

    python kernels/tools/gap_analysis.py [--csv validation/results/kernels-h200-2026-11-30-issue12-run9.csv]
        [--shapes "H12 N32760 D128,H12 N32760+512text D128,..."] [--out CSV]

Rebuilds, on the CPU, the benchmark's masks (``fgattn.masks.window_mask`` + ``with_text``, the same seeds as
``validation/bench_kernels.py --final``) and the launch order (``fgattn.build_index(order=True)``), and reads each
row's executed 128-key tiles (ceil(kept keys / 128), the tail tile whole).  Two schedules:

* ``gluon`` (form ws2): G = min(rows, SMs) persistent programs, static round robin over the launch order;
* ``tl`` (the one_row entry): one CTA per row, the hardware hands the next row in order to the first free SM.

Model: a row costs ``c_row + c_tile · tiles``; the kernel's time is the busiest SM's sum.  ``c_row`` and ``c_tile``
(µs) are fitted per kernel and shape (the SM clock under load differs between shapes) by relative least squares over
the shape's densities (the busiest SM re-found until it does not change).  Per cell the measured time is split into the tile work on perfectly balanced SMs (c_tile · tiles / SMs),
the row cost (c_row · rows / SMs), the imbalance (busiest SM − mean) and the residual, and compared with the
issue-12 target time d · t_cuDNN / 0.92.  No GPU; numbers come from the committed benchmark CSV.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "kernels")]

SMS = 132
TARGET = 0.92
DEFAULT_SHAPES = ("H12 N32760 D128", "H12 N32760+512text D128", "H40 N32760 D128", "H40 N32760+512text D128")
KERNELS = {"fg_attention": "gluon", "fg_attention_previous": "tl"}
#: per-row tiles of the rebuilt masks (pure function of shape and density; rebuilding H40 takes minutes)
CACHE = Path("/tmp/fgsim-gap-cache")


def parse_shape(shape: str) -> tuple[int, int, int]:
    """(H, N video, text tokens) of a benchmark shape name such as ``H12 N32760+512text D128``."""
    h, n, _ = shape.split()
    nv, _, txt = n[1:].partition("+")
    return int(h[1:]), int(nv), int(txt.removesuffix("text") or 0)


def rows_of(h: int, n_video: int, n_text: int, density: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(executed tiles per row in launch order, kept keys per row in launch order, N) of the benchmark's mask."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    cache = CACHE / f"gap-H{h}-N{n_video}+{n_text}-d{density}.npz"
    if cache.is_file():
        z = np.load(cache)
        return z["tiles"], z["kept"], int(z["n"])
    torch.manual_seed(int(density * 1000) + 7)
    mask = window_mask(1, h, n_video, 128, density, device="cpu")
    if n_text:
        mask = with_text(mask, n_text, 128)
    idx = fgattn.build_index(mask, block_m=128, order=True)
    kept = mask.sum(-1).reshape(-1).numpy().astype(np.int64)
    order = idx.order.long().numpy()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, tiles=((kept + 127) // 128)[order], kept=kept[order], n=n_video + n_text)
    return ((kept + 127) // 128)[order], kept[order], n_video + n_text


def busiest(tiles: np.ndarray, kind: str, c_row: float, c_tile: float) -> tuple[float, int, int]:
    """(busiest SM's time µs, its rows, its tiles) under schedule ``kind`` with the given costs."""
    cost = c_row + c_tile * tiles
    if kind in ("gluon", "snake"):  # static round robin; ``snake``: every second round in reverse
        g = min(len(tiles), SMS)
        load = np.zeros(g)
        nrow = np.zeros(g, dtype=np.int64)
        ntile = np.zeros(g, dtype=np.int64)
        prog = np.arange(len(tiles)) % g
        if kind == "snake":
            rnd = np.arange(len(tiles)) // g
            prog = np.where(rnd % 2 == 1, g - 1 - prog, prog)
        np.add.at(load, prog, cost)
        np.add.at(nrow, prog, 1)
        np.add.at(ntile, prog, tiles)
        p = int(load.argmax())
        return float(load[p]), int(nrow[p]), int(ntile[p])
    import heapq

    heap = [(0.0, s, 0, 0) for s in range(SMS)]  # (free at, SM, rows, tiles)
    for c, t in zip(cost, tiles, strict=True):
        free, s, nr, nt = heapq.heappop(heap)
        heapq.heappush(heap, (free + c, s, nr + 1, nt + int(t)))
    free, _, nr, nt = max(heap)
    return float(free), nr, nt


def fit(cells: list[dict], kind: str) -> tuple[float, float, float]:
    """(c_row µs, c_tile µs, max relative residual) over ``cells`` (relative least squares on the busiest SM)."""
    c_row, c_tile = 5.0, 2.0
    for _ in range(20):
        a = []
        for c in cells:
            _, nr, nt = busiest(c["tiles"], kind, c_row, c_tile)
            a.append((nr, nt))
        am = np.array(a, dtype=float)
        t = np.array([c["us"] for c in cells])
        (new_row, new_tile), *_ = np.linalg.lstsq(am / t[:, None], np.ones(len(t)), rcond=None)
        if abs(new_row - c_row) < 1e-6 and abs(new_tile - c_tile) < 1e-9:
            break
        c_row, c_tile = float(new_row), float(new_tile)
    res = max(abs(busiest(c["tiles"], kind, c_row, c_tile)[0] / c["us"] - 1) for c in cells)
    return c_row, c_tile, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=ROOT / "validation/results/kernels-h200-2026-11-30-issue12-run9.csv")
    ap.add_argument("--shapes", default=",".join(DEFAULT_SHAPES), help="comma-separated benchmark shape names")
    ap.add_argument("--densities", default=None, help="comma-separated target densities to use (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="per-cell CSV (atomic write)")
    args = ap.parse_args()
    if not args.csv.is_file():
        print(f"gap_analysis: --csv {args.csv} does not exist", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(open(args.csv, newline="", encoding="utf-8")))
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if not any(r["shape"] == s for r in rows)]
    if unknown:
        print(f"gap_analysis: --shapes {', '.join(unknown)}: not in {args.csv.name}", file=sys.stderr)
        return 2
    cells: dict[str, list[dict]] = {k: [] for k in KERNELS.values()}
    masks: dict[tuple[str, str], tuple] = {}
    for s in shapes:
        h, nv, nt = parse_shape(s)
        cud = next(r for r in rows if r["shape"] == s and r["kernel"] == "sdpa_cudnn")
        for r in rows:
            if r["shape"] != s or r["kernel"] not in KERNELS or r["M"] != "128" or r["gran_n"] != "1":
                continue
            if args.densities and r["density_target"] not in args.densities.split(","):
                continue
            key = (s, r["density_target"])
            if key not in masks:
                masks[key] = rows_of(h, nv, nt, float(r["density_target"]))
                print(f"[mask] {s} d={r['density_target']}: {len(masks[key][0])} rows, {int(masks[key][0].sum())} "
                      f"tiles", flush=True)
            tiles, kept, n = masks[key]
            cells[KERNELS[r["kernel"]]].append(dict(
                shape=s, d=r["density_target"], dens=float(r["density"]), us=float(r["ms"]) * 1e3,
                cudnn_us=float(cud["ms"]) * 1e3, tiles=tiles, kept=kept, n=n, ratio=float(r["ratio_vs_cudnn"])))
    out = []
    groups = [(kind, s, [c for c in cs if c["shape"] == s]) for kind, cs in cells.items() for s in shapes]
    for kind, s, cs in groups:
        if len(cs) < 2:
            continue
        c_row, c_tile, res = fit(cs, kind)  # per shape: the SM clock under load differs between shapes
        print(f"\n{kind} {s}: c_row {c_row:.2f} us, c_tile {c_tile:.3f} us per 128-key tile, {len(cs)} cells, "
              f"max rel. residual {res:.3f}")
        print("shape | d | ratio | t us | target us | tiles/row mean (max) | tail waste | tile work | row cost | "
              "imbalance | residual | c_tile to meet")
        for c in cs:
            t_tile = c_tile * c["tiles"].sum() / SMS
            t_row = c_row * len(c["tiles"]) / SMS
            model, _, _ = busiest(c["tiles"], kind, c_row, c_tile)
            target = c["dens"] * c["cudnn_us"] / TARGET
            waste = 1 - c["kept"].sum() / (128 * c["tiles"].sum())
            # the per-tile cost that would meet the target with this row cost and schedule (model scaled)
            lo, hi = 0.0, c_tile
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if busiest(c["tiles"], kind, c_row, mid)[0] <= target else (lo, mid)
            need = lo if busiest(c["tiles"], kind, c_row, 0.0)[0] <= target else float("nan")
            whatif = {}
            if kind == "gluon":  # the same costs, another row-to-program assignment
                for alt in ("snake", "tl"):
                    t_alt = busiest(c["tiles"], alt, c_row, c_tile)[0]
                    whatif[f"ratio_if_{'queue' if alt == 'tl' else alt}"] = round(c["ratio"] * c["us"] / (
                        t_alt + c["us"] - model), 3)
            row = dict(kernel=kind, shape=c["shape"], density_target=c["d"], density=round(c["dens"], 5),
                       ratio_vs_cudnn=c["ratio"], t_us=round(c["us"], 1), target_us=round(target, 1),
                       rows=len(c["tiles"]), tiles=int(c["tiles"].sum()),
                       tiles_per_row_mean=round(float(c["tiles"].mean()), 2), tiles_per_row_max=int(c["tiles"].max()),
                       tail_waste=round(float(waste), 4), tile_work_us=round(t_tile, 1), row_cost_us=round(t_row, 1),
                       imbalance_us=round(model - t_tile - t_row, 1), residual_us=round(c["us"] - model, 1),
                       c_row_us=round(c_row, 3), c_tile_us=round(c_tile, 4), fit_cells=len(cs),
                       fit_max_rel_residual=round(res, 4),
                       c_tile_to_meet_us=round(need, 4) if need == need else "", **whatif)
            out.append(row)
            print(f"{c['shape']} | {c['d']} | {c['ratio']:.2f} | {c['us']:.0f} | {target:.0f} | "
                  f"{row['tiles_per_row_mean']} ({row['tiles_per_row_max']}) | {100 * waste:.1f} % | {t_tile:.0f} | "
                  f"{t_row:.0f} | {row['imbalance_us']:.0f} | {row['residual_us']:.0f} | "
                  + (f"{need:.3f}" if need == need else "unreachable")
                  + "".join(f" | {k} {v}" for k, v in whatif.items()))
    if args.out is not None and out:
        from fgsim.fileio import write_csv_atomic

        write_csv_atomic(args.out, out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
