"""The adoption rule of the fg row end ``epilogue: "tma"`` (issue 12, session 14, K4), evaluated on a benchmark CSV.

Pre-registered in kernels/NOTES.md, "Session 14, K4: fg row-end adoption", before the device call (run 12)::

    python3 kernels/tools/epilogue_adopt.py validation/results/kernels-h200-2026-11-30-issue12-run12.csv

Cells: every (shape, density target) of the fg M128 gran-1 kernel at D 128 in the CSV (``bench_kernels --final
--bench-only fg128``: ``fg_attention`` = the candidate table's entry, ``fg_attention_previous`` = the 300ad25 entry in
the same rounds).  t / t_entry of a cell = the median over rounds of t_candidate / t_previous paired by round
(``ms_rounds``).  Valid only if every candidate and previous row's ``route`` says ``gluon list`` and at least
:data:`MIN_SHAPES` shapes were measured.  Adopt iff the GPU check passed (given by the caller), every cell's t /
t_entry <= :data:`MAX_REL` and the geo-mean over the cells with density target <= :data:`LOW_D` is <= :data:`LOW_GEO`.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

MAX_REL = 1.02
LOW_D = 0.1
LOW_GEO = 0.97
MIN_SHAPES = 6
CAND, PREV = "fg_attention", "fg_attention_previous"


def cell_ratios(rows: list[dict[str, str]]) -> dict[tuple[str, float], float]:
    """(shape, density target) -> median over rounds of t_candidate / t_previous (paired by round index) for the
    fg M128 gran-1 D128 rows; ValueError naming the cell if the two rows' round counts differ."""
    by: dict[tuple[str, float, str], dict[str, str]] = {}
    for r in rows:
        if r["kernel"] in (CAND, PREV) and r["M"] == "128" and r["gran_n"] == "1" and r["D"] == "128":
            by[(r["shape"], float(r["density_target"]), r["kernel"])] = r
    out: dict[tuple[str, float], float] = {}
    for (shape, d, kern), r in sorted(by.items()):
        if kern != CAND or (shape, d, PREV) not in by:
            continue
        a = [float(x) for x in r["ms_rounds"].split(";")]
        b = [float(x) for x in by[(shape, d, PREV)]["ms_rounds"].split(";")]
        if len(a) != len(b):
            raise ValueError(f"{shape} d {d}: {len(a)} candidate rounds, {len(b)} previous rounds")
        out[(shape, d)] = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return out


def verdict(rows: list[dict[str, str]], check_ok: bool) -> tuple[bool, list[str]]:
    """(adopt?, reasons) by the pre-registered rule (module docstring)."""
    rel = cell_ratios(rows)
    why: list[str] = []
    fg = [r for r in rows if r["kernel"] in (CAND, PREV) and r["M"] == "128" and r["gran_n"] == "1"
          and r["D"] == "128"]
    bad_route = [f"{r['shape']} d {r['density_target']} {r['kernel']}: {r['route']!r}" for r in fg
                 if not r.get("route", "").startswith("gluon list")]
    shapes = {s for s, _ in rel}
    if not rel:
        return False, ["no paired fg M128 g1 cells in the CSV"]
    if bad_route:
        why.append(f"route not 'gluon list' in {len(bad_route)} rows, e.g. {bad_route[0]}")
    if len(shapes) < MIN_SHAPES:
        why.append(f"{len(shapes)} shapes measured < {MIN_SHAPES}")
    if not check_ok:
        why.append("GPU check failed")
    worst = max(rel, key=rel.get)
    if rel[worst] > MAX_REL:
        over = sorted((k for k, v in rel.items() if v > MAX_REL), key=lambda k: -rel[k])
        why.append(f"{len(over)} cells > {MAX_REL}: " + ", ".join(f"{s} d {d:g} {rel[(s, d)]:.3f}" for s, d in over))
    low = [v for (_, d), v in rel.items() if d <= LOW_D]
    geo = math.exp(sum(math.log(v) for v in low) / len(low)) if low else float("nan")
    if not geo <= LOW_GEO:
        why.append(f"geo-mean at d <= {LOW_D} {geo:.3f} > {LOW_GEO}")
    summary = (f"{len(rel)} cells on {len(shapes)} shapes: max {rel[worst]:.3f} ({worst[0]} d {worst[1]:g}), "
               f"geo-mean at d <= {LOW_D} {geo:.3f} over {len(low)} cells")
    return not why, [summary] + why


def main(argv: list[str] | None = None) -> int:
    """``epilogue_adopt.py CSV [--check-failed]``: print the cells and the verdict; exit 0 (2 on bad input)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or not Path(args[0]).is_file():
        print(f"epilogue_adopt: {args[0] if args else 'CSV'}: not a file (usage: epilogue_adopt.py CSV "
              "[--check-failed])", file=sys.stderr)
        return 2
    with open(args[0], newline="") as f:
        rows = list(csv.DictReader(f))
    for (shape, d), v in sorted(cell_ratios(rows).items()):
        print(f"{shape:<24} d {d:<5g} t/t_entry {v:.3f}")
    ok, why = verdict(rows, "--check-failed" not in args[1:])
    print(("ADOPT: " if ok else "NOT ADOPTED: ") + "; ".join(why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
