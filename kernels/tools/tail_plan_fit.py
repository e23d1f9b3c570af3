"""Is the packaged fg kernel's tail set by the list plan?  Per cell: the per-program CTA span (mean over the
launches of T2's per-CTA CSV) fitted to the plan's rows and executed tiles per program, and the fitted model's
makespan / mean for the list plan re-built with the fitted per-row cost (issue 12, session 16, helper T2;
kernels/NOTES.md "Session 16, T2").  CPU only: rebuilds the benchmark's masks and the list plan (the device's plan:
same deterministic masks, checked by the plan's makespan against the timing CSVs)::

    python3 kernels/tools/tail_plan_fit.py CTAS_CSV_GZ OUT_CSV [CELL ...]

Also the fitted model's makespan / mean for one common row cost :data:`COMMON_C_ROW` (tiles) at every cell.
"""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation")]

#: cells re-planned by default (the CPU mask build of the H40 N75600 cells is too slow for this script)
CELLS = ("H40 N32760 d 0.02", "H12 N32760 d 0.02", "H40 N32760 d 0.05", "H12 N32760 d 0.05",
         "H40 N32760+512text d 0.02", "H12 N32760+512text d 0.02", "H12 N32760+512text d 0.05",
         "H12 N75600+512text d 0.02")
#: one row cost for every cell (tiles; the median of the fitted ones at the cells with r >= 0.9, chosen after
#: seeing them: in-sample)
COMMON_C_ROW = 1.45


def _parse(cell: str) -> tuple[int, int, int, float]:
    hs, ns, _, d = cell.split()
    nv, _, nt = ns[1:].partition("+")
    return int(hs[1:]), int(nv), int(nt.replace("text", "") or 0), float(d)


def per_program(idx, plan):
    """(rows, executed 128-key tiles) per program of ``plan``."""
    import numpy as np

    tiles = (idx.counts().numpy() + 127) // 128
    rows, st = plan.rows.cpu().numpy(), plan.start.cpu().numpy()
    return np.diff(st).astype(float), np.array([tiles[rows[st[p]:st[p + 1]]].sum() for p in range(plan.programs)],
                                               dtype=float)


def fit_cell(cell: str, spans: dict[int, list[float]]) -> dict:
    """The fit and the re-planned makespans of one cell (``spans``: program -> CTA spans in cycles)."""
    import numpy as np
    from entry_regress import build_index
    from fgattn.gluon_fg_list import C_ROW_TILES, plan_ws2_list

    h, nv, nt, d = _parse(cell)
    idx = build_index(h, nv, nt, d, "cpu")
    plan = plan_ws2_list(idx, programs=len(spans))
    nr, ntl = per_program(idx, plan)
    ms = np.array([np.mean(spans[p]) for p in range(len(spans))])
    x = np.c_[nr, ntl, np.ones_like(nr)]
    c, *_ = np.linalg.lstsq(x, ms, rcond=None)
    pred = x @ c
    c_row = max(float(c[0] / c[1]), 0.0)
    alt = plan_ws2_list(idx, programs=len(spans), c_row=c_row)
    a_nr, a_nt = per_program(idx, alt)
    alt_pred = c[0] * a_nr + c[1] * a_nt + c[2]
    com = plan_ws2_list(idx, programs=len(spans), c_row=COMMON_C_ROW)
    c_nr, c_nt = per_program(idx, com)
    com_pred = c[0] * c_nr + c[1] * c_nt + c[2]
    return dict(cell=cell, programs=len(spans), launches=len(spans[0]), plan_makespan_over_mean=round(
        plan.makespan / plan.mean_load, 4), span_max_over_mean=round(float(ms.max() / ms.mean()), 4),
        cycles_per_row=round(float(c[0])), cycles_per_tile=round(float(c[1])), const_cycles=round(float(c[2])),
        r_fit=round(float(np.corrcoef(pred, ms)[0, 1]), 4), fitted_c_row_tiles=round(c_row, 3),
        packaged_c_row_tiles=C_ROW_TILES, fit_max_over_mean=round(float(pred.max() / pred.mean()), 4),
        refit_plan_fit_max_over_mean=round(float(alt_pred.max() / pred.mean()), 4), common_c_row_tiles=COMMON_C_ROW,
        common_plan_fit_max_over_mean=round(float(com_pred.max() / pred.mean()), 4),
        statistic="least squares over programs of the mean CTA span (cycles) = a*rows + b*tiles + c; in-sample")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or not Path(argv[0]).is_file():
        print("usage: tail_plan_fit.py CTAS_CSV_GZ OUT_CSV [CELL ...] (the first argument must be a file)",
              file=sys.stderr)
        return 2
    cells = argv[2:] or list(CELLS)
    spans: dict[str, dict[int, list[float]]] = {}
    with gzip.open(argv[0], "rt", newline="") as f:
        for r in csv.DictReader(f):
            spans.setdefault(r["cell"], {}).setdefault(int(r["program"]), []).append(float(r["span_cycles"]))
    from fgsim.fileio import write_csv_atomic

    rows = []
    for cell in cells:
        if cell not in spans:
            print(f"tail_plan_fit: {cell!r} is not in {argv[0]}", file=sys.stderr)
            return 2
        rows.append(fit_cell(cell, spans[cell]))
        print(rows[-1], flush=True)
    write_csv_atomic(Path(argv[1]), rows, list(rows[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
