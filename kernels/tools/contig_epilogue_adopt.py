"""The adoption rule of the contig row end ``epilogue: "tma_sel"`` (issue 12, session 15, K7), on a benchmark CSV.

Pre-registered in kernels/NOTES.md, "Session 15, K7", before the device call (call 1 of session 15)::

    python3 kernels/tools/contig_epilogue_adopt.py validation/results/kernels-h200-2026-12-01-issue12-run15a.csv

Rows (``bench_kernels --final --bench-only contig --contig-extra sel=CANDIDATE --contig-extra control=PACKAGED``):
``fg_dense`` / ``fg_block128`` = the packaged dense / block D128 M128 entries (contig, ping-pong, row end ``stg``),
``*_sel`` = the candidate table's (the same entries with ``epilogue: "tma_sel"``), ``*_control`` = the packaged
entries timed a second time in the same rounds.  t / t_entry of a cell = the median over rounds of t_sel / t_entry
paired by round (``ms_rounds``); dense has one cell per shape, block one per (shape, density target).

Per entry (dense and block decided on their own):

* valid only if the control's geo-mean t_control / t_entry over that entry's cells is within 1 +- :data:`CTL_GEO`,
  every ``*_sel`` row's ``route`` says ``gluon contig`` and at least :data:`MIN_SHAPES` shapes were measured;
* the GPU checks passed (given by the caller: ``--check-failed``);
* block: every cell <= :data:`BLOCK_MAX` and the geo-mean over the cells with density target <= :data:`LOW_D`
  <= :data:`BLOCK_LOW_GEO`;
* dense: every shape <= :data:`DENSE_MAX`.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

CTL_GEO = 0.01
MIN_SHAPES = 6
BLOCK_MAX = 1.02
LOW_D = 0.1
BLOCK_LOW_GEO = 0.98
DENSE_MAX = 1.01
ENTRIES = ("fg_dense", "fg_block128")


def _geo(v: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def ratios(rows: list[dict[str, str]], entry: str, label: str) -> dict[tuple[str, float], float]:
    """(shape, density target) -> median over rounds of t(``entry_label``) / t(``entry``), paired by round, for
    the D128 M128 rows of ``entry`` (``fg_dense`` or ``fg_block128``); ValueError naming the cell if the round
    counts differ."""
    by: dict[tuple[str, float, str], list[float]] = {}
    for r in rows:
        if r["kernel"] in (entry, f"{entry}_{label}") and r["D"] == "128" and r["M"] == "128":
            by[(r["shape"], float(r["density_target"]), r["kernel"])] = [float(x) for x in r["ms_rounds"].split(";")]
    out: dict[tuple[str, float], float] = {}
    for (shape, d, kern), a in sorted(by.items()):
        if kern == entry or (shape, d, entry) not in by:
            continue
        b = by[(shape, d, entry)]
        if len(a) != len(b):
            raise ValueError(f"{shape} d {d:g}: {len(a)} {kern} rounds, {len(b)} {entry} rounds")
        out[(shape, d)] = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return out


def verdict(rows: list[dict[str, str]], entry: str, check_ok: bool) -> tuple[bool, list[str]]:
    """(adopt?, reasons: a summary line first) of the ``*_sel`` rows of ``entry`` by the rule (module docstring)."""
    rel, ctl = ratios(rows, entry, "sel"), ratios(rows, entry, "control")
    if not rel or not ctl:
        return False, [f"{entry}: no paired _sel / _control cells in the CSV"]
    why: list[str] = []
    cgeo = _geo(list(ctl.values()))
    if abs(cgeo - 1) > CTL_GEO:
        why.append(f"control void: geo-mean {cgeo:.3f} outside 1 +- {CTL_GEO}")
    bad = [f"{r['shape']} d {r['density_target']}: {r['route']!r}" for r in rows
           if r["kernel"] == f"{entry}_sel" and not r.get("route", "").startswith("gluon contig")]
    if bad:
        why.append(f"route not 'gluon contig' in {len(bad)} rows, e.g. {bad[0]}")
    shapes = {s for s, _ in rel}
    if len(shapes) < MIN_SHAPES:
        why.append(f"{len(shapes)} shapes measured < {MIN_SHAPES}")
    if not check_ok:
        why.append("GPU check failed")
    limit = DENSE_MAX if entry == "fg_dense" else BLOCK_MAX
    over = sorted((k for k, v in rel.items() if v > limit), key=lambda k: -rel[k])
    if over:
        why.append(f"{len(over)} cells > {limit}: " + ", ".join(f"{s} d {d:g} {rel[(s, d)]:.3f}" for s, d in over))
    low = [v for (_, d), v in rel.items() if d <= LOW_D]
    geo_all, geo_low = _geo(list(rel.values())), _geo(low)
    if entry == "fg_block128" and not geo_low <= BLOCK_LOW_GEO:
        why.append(f"geo-mean at d <= {LOW_D} {geo_low:.3f} > {BLOCK_LOW_GEO}")
    worst = max(rel, key=rel.get)
    summary = (f"{entry}: {len(rel)} cells on {len(shapes)} shapes, max {rel[worst]:.3f} ({worst[0]} d {worst[1]:g}), "
               f"geo-mean {geo_all:.3f}" + (f", at d <= {LOW_D} {geo_low:.3f} over {len(low)} cells"
                                            if entry == "fg_block128" else "")
               + f"; control geo-mean {cgeo:.3f}, max {max(ctl.values()):.3f}")
    return not why, [summary] + why


def main(argv: list[str] | None = None) -> int:
    """``contig_epilogue_adopt.py CSV [--check-failed]``: the cells and each entry's verdict; exit 0 (2 on bad
    input)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or not Path(args[0]).is_file():
        print(f"contig_epilogue_adopt: {args[0] if args else 'CSV'}: not a file (usage: contig_epilogue_adopt.py CSV "
              "[--check-failed])", file=sys.stderr)
        return 2
    bad = [a for a in args[1:] if a != "--check-failed"]
    if bad:
        print(f"contig_epilogue_adopt: unknown argument {bad[0]!r} (only --check-failed)", file=sys.stderr)
        return 2
    with open(args[0], newline="") as f:
        rows = list(csv.DictReader(f))
    for entry in ENTRIES:
        sel, ctl = ratios(rows, entry, "sel"), ratios(rows, entry, "control")
        for (shape, d), v in sorted(sel.items()):
            print(f"{entry:<12} {shape:<24} d {d:<5g} sel {v:.3f} control {ctl.get((shape, d), float('nan')):.3f}")
        ok, why = verdict(rows, entry, "--check-failed" not in args[1:])
        print(("ADOPT " if ok else "NOT ADOPTED ") + "; ".join(why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
