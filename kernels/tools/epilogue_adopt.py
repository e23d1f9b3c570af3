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


# --- session 14, K5 (kernels/NOTES.md "Session 14, K5: fg row end, second attempt"; pre-registered before run 13) ---
#: the control: the 300ad25 entry timed a second time in the same rounds (``bench_kernels --fg-extra control=...``)
CONTROL = "fg_attention_control"
#: K5's candidates: the table under test (epilogue "tma_offs") and K4's "tma" beside it (``--fg-extra tma=...``)
K5_CANDIDATES = ("fg_attention", "fg_attention_tma")
#: the control's geo-mean over all cells must lie in 1 +- CTL_GEO, else the comparison is void
CTL_GEO = 0.01
#: per-cell tolerance T = min(TOL_MAX, max(TOL_MIN, the control's largest cell excess max(ctl / prev) - 1))
TOL_MIN, TOL_MAX = 0.02, 0.04
#: long rows (density target >= LONG_D): geo-mean <= LONG_GEO (a systematic per-tile cost is not noise)
LONG_D, LONG_GEO = 0.2, 1.01
#: shapes that must be measured (the 590-tile rows where run 12 failed)
K5_SHAPES = ("H40 N75600 D128", "H40 N75600+512text D128")


def _geo(v: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def k5_ratios(rows: list[dict[str, str]], kernel: str) -> dict[tuple[str, float], float]:
    """:func:`cell_ratios` of ``kernel`` (any fg M128 g1 D128 row name) against ``fg_attention_previous``."""
    keep = {CAND: "_", kernel: CAND}
    return cell_ratios([dict(r, kernel=keep[r["kernel"]]) if r["kernel"] in keep else r for r in rows])


def verdict_k5(rows: list[dict[str, str]], check_ok: bool, kernel: str) -> tuple[bool, float, list[str]]:
    """(passes?, geo-mean at d <= LOW_D, reasons) of candidate row ``kernel`` by K5's pre-registered rule: valid
    control (geo-mean ctl / prev over every cell in 1 +- CTL_GEO), routes ``gluon list`` (candidate, previous,
    control), >= MIN_SHAPES shapes with both K5_SHAPES, GPU check passed, every cell <= 1 + T (T from the control,
    TOL_MIN..TOL_MAX), geo-mean over d >= LONG_D <= LONG_GEO and over d <= LOW_D <= LOW_GEO."""
    rel, ctl = k5_ratios(rows, kernel), k5_ratios(rows, CONTROL)
    if not rel or not ctl:
        return False, float("nan"), [f"no paired {kernel} / {CONTROL} cells in the CSV"]
    why: list[str] = []
    cgeo = _geo(list(ctl.values()))
    if abs(cgeo - 1) > CTL_GEO:
        why.append(f"control void: geo-mean {cgeo:.3f} outside 1 +- {CTL_GEO}")
    fg = [r for r in rows if r["kernel"] in (kernel, PREV, CONTROL) and r["M"] == "128" and r["gran_n"] == "1"
          and r["D"] == "128"]
    bad = [f"{r['shape']} d {r['density_target']} {r['kernel']}: {r['route']!r}" for r in fg
           if not r.get("route", "").startswith("gluon list")]
    if bad:
        why.append(f"route not 'gluon list' in {len(bad)} rows, e.g. {bad[0]}")
    shapes = {s for s, _ in rel}
    if len(shapes) < MIN_SHAPES or not set(K5_SHAPES) <= shapes:
        why.append(f"{len(shapes)} shapes measured (need >= {MIN_SHAPES} with {', '.join(K5_SHAPES)})")
    if not check_ok:
        why.append("GPU check failed")
    tol = min(TOL_MAX, max(TOL_MIN, max(ctl.values()) - 1))
    over = sorted((k for k, v in rel.items() if v > 1 + tol), key=lambda k: -rel[k])
    if over:
        why.append(f"{len(over)} cells > 1 + T = {1 + tol:.3f}: "
                   + ", ".join(f"{s} d {d:g} {rel[(s, d)]:.3f}" for s, d in over))
    long_geo = _geo([v for (_, d), v in rel.items() if d >= LONG_D])
    if not long_geo <= LONG_GEO:
        why.append(f"geo-mean at d >= {LONG_D} {long_geo:.3f} > {LONG_GEO}")
    low_geo = _geo([v for (_, d), v in rel.items() if d <= LOW_D])
    if not low_geo <= LOW_GEO:
        why.append(f"geo-mean at d <= {LOW_D} {low_geo:.3f} > {LOW_GEO}")
    worst = max(rel, key=rel.get)
    summary = (f"{kernel}: {len(rel)} cells on {len(shapes)} shapes, max {rel[worst]:.3f} ({worst[0]} d "
               f"{worst[1]:g}), T {tol:.3f} (control geo-mean {cgeo:.3f}, max {max(ctl.values()):.3f}), geo-mean "
               f"d >= {LONG_D} {long_geo:.3f}, d <= {LOW_D} {low_geo:.3f}")
    return not why, low_geo, [summary] + why


def pick_k5(rows: list[dict[str, str]], check_ok: dict[str, bool]) -> tuple[str | None, list[str]]:
    """The candidate row to adopt (the passing one with the lower geo-mean at d <= LOW_D) or None, and the lines
    to print; ``check_ok``: candidate row -> its GPU check passed."""
    lines, passing = [], []
    for kern in K5_CANDIDATES:
        if not k5_ratios(rows, kern):
            continue
        ok, geo, why = verdict_k5(rows, check_ok.get(kern, False), kern)
        lines.append(("PASS: " if ok else "FAIL: ") + "; ".join(why))
        if ok:
            passing.append((geo, kern))
    pick = min(passing)[1] if passing else None
    lines.append(f"PICK: {pick}" if pick else "PICK: none (no adoption)")
    return pick, lines


# --- session 14, K6 (kernels/NOTES.md "Session 14, K6: fg row end without the long-row cost"; pre-registered
# before run 14) ---
#: the derived row of ``epilogue: "auto:tma:112"``: K4's ``tma`` at cells whose mean executed tiles per row is at
#: most AUTO_TILES (from ``fg_attention_tma``'s rounds), the packaged binary above (the control's rounds: the same
#: binary as the entry, timed as a second case); AUTO_TILES = -Δc_row / Δc_tile of tma's pooled fit on runs 12 + 13
#: (kernels/tools/epilogue_crossover.py: -2.184 µs per row / 0.0196 µs per tile = 111.5)
AUTO, AUTO_SHORT, AUTO_TILES = "fg_attention_auto", "fg_attention_tma", 112.0
#: K6's candidates in order of preference: the one binary (tma_sel, the table under test) before the threshold knob
K6_CANDIDATES = ("fg_attention", AUTO)


def auto_rows(rows: list[dict[str, str]], tiles: dict[tuple[str, float], float],
              tau: float = AUTO_TILES) -> list[dict[str, str]]:
    """``rows`` plus the derived :data:`AUTO` row per cell: a copy of the :data:`AUTO_SHORT` row where
    ``tiles[(shape, density target)]`` <= ``tau``, else of the :data:`CONTROL` row (KeyError naming the cell if a
    cell's tiles are missing)."""
    by = {(r["shape"], float(r["density_target"]), r["kernel"]): r for r in rows
          if r["kernel"] in (AUTO_SHORT, CONTROL) and r["M"] == "128" and r["gran_n"] == "1" and r["D"] == "128"}
    out = list(rows)
    for (shape, d, kern), r in sorted(by.items()):
        if kern != CONTROL or (shape, d, AUTO_SHORT) not in by:
            continue
        if (shape, d) not in tiles:
            raise KeyError(f"no tiles per row for {shape} d {d:g}")
        src = by[(shape, d, AUTO_SHORT)] if tiles[(shape, d)] <= tau else r
        out.append(dict(src, kernel=AUTO))
    return out


def pick_k6(rows: list[dict[str, str]], check_ok: bool, tiles: dict[tuple[str, float], float]
            ) -> tuple[str | None, list[str]]:
    """K6's pick: :func:`verdict_k5` on the table under test (``fg_attention``, epilogue ``tma_sel``; its GPU check
    ``check_ok``) and on the derived ``auto`` row (:func:`auto_rows`; its binaries are tma, checked in run 12, and the
    packaged one); the first passing one of :data:`K6_CANDIDATES`, else None; and the lines to print."""
    full = auto_rows(rows, tiles)
    lines, pick = [], None
    for kern in K6_CANDIDATES:
        ok, _, why = verdict_k5(full, check_ok if kern == CAND else True, kern)
        lines.append(("PASS: " if ok else "FAIL: ") + "; ".join(why))
        if ok and pick is None:
            pick = kern
    lines.append(f"PICK: {pick}" if pick else "PICK: none (no adoption)")
    return pick, lines


def main(argv: list[str] | None = None) -> int:
    """``epilogue_adopt.py CSV [--check-failed] [--k5 [--tma-check-failed] | --k6]``: print the cells and the
    verdict (K4's rule, or with ``--k5`` K5's, with ``--k6`` K6's); exit 0 (2 on bad input)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or not Path(args[0]).is_file():
        print(f"epilogue_adopt: {args[0] if args else 'CSV'}: not a file (usage: epilogue_adopt.py CSV "
              "[--check-failed])", file=sys.stderr)
        return 2
    with open(args[0], newline="") as f:
        rows = list(csv.DictReader(f))
    if "--k6" in args[1:]:  # K6's rule; the cells' tiles per row counted on the CPU (epilogue_crossover)
        from epilogue_crossover import cell_geometry

        tiles = {}
        for r in rows:
            if r["kernel"] == CONTROL:
                nt = int(r["n_text"])
                tiles[(r["shape"], float(r["density_target"]))] = cell_geometry(
                    int(r["H"]), int(r["N"]) - nt, float(r["density_target"]), nt)[1]
        full = auto_rows(rows, tiles)
        for kern in (CONTROL, AUTO_SHORT, *K6_CANDIDATES):
            for (shape, d), v in sorted(k5_ratios(full, kern).items()):
                print(f"{kern:<22} {shape:<24} d {d:<5g} tiles {tiles[(shape, d)]:7.1f} t/t_entry {v:.3f}")
        print("\n".join(pick_k6(rows, "--check-failed" not in args[1:], tiles)[1]))
        return 0
    if "--k5" in args[1:]:  # K5's rule; --check-failed / --tma-check-failed mark the candidates' GPU checks failed
        ok = {"fg_attention": "--check-failed" not in args[1:], "fg_attention_tma": "--tma-check-failed" not in args}
        for kern in (CONTROL, *K5_CANDIDATES):
            for (shape, d), v in sorted(k5_ratios(rows, kern).items()):
                print(f"{kern:<22} {shape:<24} d {d:<5g} t/t_entry {v:.3f}")
        print("\n".join(pick_k5(rows, ok)[1]))
        return 0
    for (shape, d), v in sorted(cell_ratios(rows).items()):
        print(f"{shape:<24} d {d:<5g} t/t_entry {v:.3f}")
    ok, why = verdict(rows, "--check-failed" not in args[1:])
    print(("ADOPT: " if ok else "NOT ADOPTED: ") + "; ".join(why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
