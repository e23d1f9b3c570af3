"""Where a short-row fg row end stops paying (issue 12, session 14, K6): paired fits of a candidate row end against
the packaged entry in the same rounds, and the crossover in executed 128-key tiles per row.

    python3 kernels/tools/epilogue_crossover.py validation/results/kernels-h200-2026-11-30-issue12-run12.csv \\
        validation/results/kernels-h200-2026-11-30-issue12-run13.csv

Model (kernels/NOTES.md "Session 13 research: per-row cost"; :func:`rowpipe_probe.paired_fit`'s form): a launch
of the list-scheduled Gluon ws2 fg kernel takes about ``rows/SM · c_row + tiles/SM · c_tile``, so a row end that
changes the per-row cost by Δc_row (µs per row) and the per-tile cost by Δc_tile (µs per executed 128-key tile)
changes a cell's time by ``(rel - 1) · t_entry = Δc_row · rows/SM + Δc_tile · tiles/SM``.  Weighted least squares
over the cells (weights 1 / t_entry), per candidate.  With Δc_row < 0 < Δc_tile the candidate is faster exactly when
the launch's mean executed tiles per row is below ``τ = -Δc_row / Δc_tile`` (tiles per row): a ratio of two
per-CTA costs of the GPU and the two binaries, the same for every shape and density (``epilogue: "auto"``'s
``max_tiles_per_row``, :func:`fgattn.gluon_fg_list.pick_epilogue`).

rows/SM and tiles/SM of a cell come from the benchmark's masks, counted on the CPU without materialising them
(:func:`window_row_counts`: ``fgattn.masks.window_mask``'s bisection of the window scale with each step's kept
count as a product of per-axis counts; text tokens as ``fgattn.masks.with_text``).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

import numpy as np

SMS = 132
BLOCK = 128
#: (csv kernel column) -> candidate label, per run CSV; "fg_attention" is the candidate table's entry of that run
RUN_LABELS = {"run12": {"fg_attention": "tma"},
              "run13": {"fg_attention": "tma_offs", "fg_attention_tma": "tma", "fg_attention_control": "control"},
              "run14": {"fg_attention": "tma_sel", "fg_attention_tma": "tma", "fg_attention_control": "control"}}
PREV = "fg_attention_previous"


def window_row_counts(heads: int, n: int, density: float, *, n_text: int = 0, sinks: int = 64, seed: int = 0,
                      tol: float = 0.005) -> np.ndarray:
    """Kept keys per (head, query block) of ``window_mask(1, heads, n, 128, density)`` (+ ``with_text(n_text)``),
    int64 array (heads, ceil((n + n_text) / 128)); the mask's own bisection, exact per-axis counts (no (QB, N)
    tensor): a block keeps the keys within its window of its bounding box on every axis, plus the sinks."""
    import torch
    from fgattn.masks import video_grid

    t, y, x = grid = video_grid(n)
    if t * y * x != n:
        raise ValueError(f"window_row_counts: n={n} does not fill its grid {grid}")
    qb = -(-n // BLOCK)
    if density >= 1.0:
        video = np.full((heads, qb), n, dtype=np.int64)
    else:
        ar = torch.arange(n)
        coords = torch.stack([ar // (y * x), (ar // x) % y, ar % x], dim=1).long()
        pad = qb * BLOCK - n
        c = torch.cat([coords, coords[-1:].expand(pad, 3)]) if pad else coords
        blocks = c.reshape(qb, BLOCK, 3)
        lo, hi = blocks.min(1).values, blocks.max(1).values
        ext = torch.tensor(grid, dtype=torch.int64)
        sk = coords[:sinks]
        sdist = (lo[:, None, :] - sk[None]).clamp(min=0) + (sk[None] - hi[:, None, :]).clamp(min=0)  # (QB, S, 3)
        weights = 0.5 + torch.rand(heads, 3, generator=torch.Generator(device="cpu").manual_seed(seed))
        lo_s, hi_s = 0.0, 2.0
        for _ in range(30):
            s = 0.5 * (lo_s + hi_s)
            win = (s * weights * ext.float()).floor().to(torch.int32).long()  # (H, 3)
            w = win[:, None, :]
            span = (torch.minimum(hi[None] + w, ext - 1) - torch.clamp(lo[None] - w, min=0) + 1).clamp(min=0)
            inside = (sdist[None] <= win[:, None, None, :]).all(-1).sum(-1)  # sinks already in the window
            counts = span.prod(-1) + sinks - inside  # (H, QB)
            d = float(counts.sum()) / (heads * qb * n)
            if abs(d - density) <= tol:
                break
            if d < density:
                lo_s = s
            else:
                hi_s = s
        video = counts.numpy().astype(np.int64)
    if not n_text:
        return video
    qb_all = -(-(n + n_text) // BLOCK)
    first = n // BLOCK  # from this block on every query block holds a text query: it keeps every key
    out = np.full((heads, qb_all), n + n_text, dtype=np.int64)
    out[:, :first] = video[:, :first] + n_text
    return out


def cell_geometry(heads: int, n: int, density: float, n_text: int = 0) -> tuple[float, float]:
    """(rows per SM, mean executed 128-key tiles per row) of a benchmark cell (B 1)."""
    c = window_row_counts(heads, n, density, n_text=n_text)
    tiles = np.maximum(-(-c // BLOCK), 1)
    return c.size / SMS, float(tiles.mean())


def paired_cells(rows: list[dict[str, str]], labels: dict[str, str]) -> list[dict]:
    """Per (shape, density, candidate label): the median over rounds of t / t_previous paired by round, the
    previous entry's median ms, H, N, n_text."""
    prev = {(r["shape"], r["density_target"]): r for r in rows if r["kernel"] == PREV and r["D"] == "128"}
    out = []
    for r in rows:
        if r["kernel"] not in labels or r["D"] != "128" or r["M"] != "128" or r["gran_n"] != "1":
            continue
        p = prev.get((r["shape"], r["density_target"]))
        if p is None:
            continue
        a = [float(x) for x in r["ms_rounds"].split(";")]
        b = [float(x) for x in p["ms_rounds"].split(";")]
        n_text = int(r["n_text"])
        out.append(dict(label=labels[r["kernel"]], shape=r["shape"], d=float(r["density_target"]),
                        rel=statistics.median(x / y for x, y in zip(a, b, strict=True)), t_us=float(p["ms"]) * 1e3,
                        H=int(r["H"]), n_video=int(r["N"]) - n_text, n_text=n_text))
    return out


def fit(cells: list[dict]) -> dict[str, float]:
    """Weighted least squares (1 / t_entry) of (rel - 1) · t_entry = Δc_row · rows/SM + Δc_tile · tiles/SM over
    ``cells`` (each with ``rows_per_sm`` and ``tiles_per_row``): µs per row, µs per tile, the crossover τ (tiles per
    row; inf when Δc_tile <= 0, nan when Δc_row >= 0), and the largest weighted residual (as a fraction of t)."""
    a = np.array([[c["rows_per_sm"], c["rows_per_sm"] * c["tiles_per_row"]] for c in cells])
    t = np.array([c["t_us"] for c in cells])
    y = (np.array([c["rel"] for c in cells]) - 1.0) * t
    aw, yw = a / t[:, None], y / t
    (dr, dt), *_ = np.linalg.lstsq(aw, yw, rcond=None)
    tau = math.nan if dr >= 0 else (math.inf if dt <= 0 else -dr / dt)
    return dict(d_c_row_us=float(dr), d_c_tile_us=float(dt), tau_tiles_per_row=tau, cells=len(cells),
                max_abs_resid=float(np.abs(aw @ np.array([dr, dt]) - yw).max()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+", type=Path, help="bench_kernels --final fg128 CSVs of runs 12 / 13")
    ap.add_argument("--out", type=Path, default=None, help="write the per-cell table (CSV) here")
    a = ap.parse_args(argv)
    for p in a.csv:
        if not p.is_file():
            print(f"epilogue_crossover: {p} does not exist", file=sys.stderr)
            return 2
        if not any(k in p.name for k in RUN_LABELS):
            print(f"epilogue_crossover: {p}: the file name names no known run ({list(RUN_LABELS)})", file=sys.stderr)
            return 2
    geo: dict[tuple[int, int, int, float], tuple[float, float]] = {}
    allc: list[dict] = []
    for p in a.csv:
        run = next(k for k in RUN_LABELS if k in p.name)
        for c in paired_cells(list(csv.DictReader(open(p, newline=""))), RUN_LABELS[run]):
            key = (c["H"], c["n_video"], c["n_text"], c["d"])
            if key not in geo:
                geo[key] = cell_geometry(*key[:2], c["d"], key[2])
            c["rows_per_sm"], c["tiles_per_row"] = geo[key]
            c["run"] = run
            allc.append(c)
    for run in sorted({c["run"] for c in allc}):
        for lab in sorted({c["label"] for c in allc if c["run"] == run}):
            f = fit([c for c in allc if c["run"] == run and c["label"] == lab])
            print(f"[fit] {run} {lab:<9} " + ", ".join(f"{k} {v:.4g}" for k, v in f.items()), flush=True)
    for lab in sorted({c["label"] for c in allc}):
        f = fit([c for c in allc if c["label"] == lab])
        print(f"[fit] pooled {lab:<9} " + ", ".join(f"{k} {v:.4g}" for k, v in f.items()), flush=True)
    if a.out is not None:
        from fgsim.fileio import write_csv_atomic

        keys = ["run", "label", "shape", "H", "n_video", "n_text", "d", "rows_per_sm", "tiles_per_row", "t_us", "rel"]
        write_csv_atomic(a.out, [{k: c[k] for k in keys} for c in allc], keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
