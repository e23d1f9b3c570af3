"""Session 15, K8: the pre-registered rules on the call's CSVs (kernels/NOTES.md "Session 15, K8").

    python3 kernels/tools/k8_analyze.py --fg FG_CSV --contig CONTIG_CSV [--check-ok yes|no]

Every ratio is paired per round: the median over rounds of t_a / t_b of the same round (``ms_rounds``, round r at
index r), per cell (H, N, text tokens, density target).

- **tail64** (fg D128 M128 g1; K6's rule as the brief states it): ``fg_attention_tail64`` / ``fg_attention``; the
  control ``fg_attention_control`` / ``fg_attention`` (the packaged entry timed twice).  Eligible iff the control
  is valid (geo-mean over all cells in 1 +- 0.01), the float64 check passed, >= 6 of the 8 D128 shapes were
  measured, every fg row routed ``gluon list``, every cell <= 1.02 and the geo-mean over the cells with d <= 0.1
  <= 0.97.
- **block long rows**: ``fg_block128`` (the packaged contig entry, row end tma_sel) / ``fg_block128_stg`` (the
  300ad25 entry, row end stg); the control ``fg_block128_sel`` / ``fg_block128`` (candidate A's block entry, equal
  to the packaged one).  Over the cells with d >= 0.2: "cost is real" iff the geo-mean exceeds 1.01 AND exceeds the
  control's geo-mean by more than 0.01; else "not shown".
- **dense tma_sel** (K7's rule with a control): ``fg_dense_sel`` (candidate A's dense entry, row end tma_sel) /
  ``fg_dense`` (the packaged entry, stg); control ``fg_dense_stg`` / ``fg_dense`` (the 300ad25 dense entry, equal to
  the packaged one).  Passes iff the control is valid (geo-mean in 1 +- 0.01), >= 6 of 8 shapes were measured, every
  dense row routed ``gluon contig`` and every shape is <= 1.01.  (Candidate A's GPU check: K7's call 1, 127 checks,
  0 failures.)
- **control noise** (the check on the noise reduction, not a rule): per control, the largest |c - 1| and the share
  of cells within 1 +- 0.02.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from typing import Any

TAIL_MAX_REL = 1.02
TAIL_LOW_D = 0.1
TAIL_LOW_GEO = 0.97
CONTROL_BAND = 0.01
MIN_SHAPES = 6
BLOCK_LONG_D = 0.2
BLOCK_COST_GEO = 1.01
BLOCK_COST_OVER_CONTROL = 0.01
DENSE_MAX_REL = 1.01


def geo(xs: list[float]) -> float:
    """Geometric mean (nan for an empty list)."""
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def cell_key(r: dict[str, Any]) -> tuple:
    """(H, N, text tokens, density target) of a CSV row."""
    return int(r["H"]), int(r["N"]), int(r.get("n_text") or 0), float(r["density_target"])


def paired(rows: list[dict[str, Any]], num: str, den: str) -> dict[tuple, float]:
    """Cell -> median over rounds of t_num / t_den of the same round (cells with both kernels)."""
    by: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        if r["kernel"] in (num, den) and r.get("ms_rounds"):
            by.setdefault(cell_key(r), {})[r["kernel"]] = [float(x) for x in r["ms_rounds"].split(";")]
    out = {}
    for key, ks in by.items():
        if num in ks and den in ks:
            a, b = ks[num], ks[den]
            out[key] = statistics.median(x / y for x, y in zip(a, b, strict=False))
    return out


def shapes(cells: dict[tuple, float]) -> set[tuple]:
    """The (H, N, text) shapes among ``cells``."""
    return {k[:3] for k in cells}


def routes_ok(rows: list[dict[str, Any]], prefix: str, route: str) -> bool:
    """Every row whose kernel starts with ``prefix`` recorded ``route`` (its captured-launch suffix aside)."""
    sel = [r for r in rows if r["kernel"].startswith(prefix)]
    return bool(sel) and all(str(r.get("route", "")).startswith(route) for r in sel)


def control_noise(ctl: dict[tuple, float]) -> dict[str, float]:
    """The control's largest |c - 1|, its share of cells in 1 +- 0.02 and its geo-mean."""
    if not ctl:
        return dict(max_dev=float("nan"), within_002=float("nan"), geo=float("nan"))
    dev = [abs(c - 1) for c in ctl.values()]
    return dict(max_dev=max(dev), within_002=sum(d <= 0.02 for d in dev) / len(dev), geo=geo(list(ctl.values())))


def _common(rows: list[dict[str, Any]], rel: dict[tuple, float], ctl: dict[tuple, float], prefix: str,
            route: str, max_rel: float) -> tuple[list[str], float, tuple]:
    """The checks the tail64 and dense rules share: the control's geo-mean in 1 +- CONTROL_BAND, >= MIN_SHAPES
    shapes, every ``prefix`` row routed ``route``, every cell <= ``max_rel`` -> (why not, control geo, worst cell)."""
    why = []
    g_ctl = geo(list(ctl.values()))
    if not abs(g_ctl - 1) <= CONTROL_BAND:
        why.append(f"control geo-mean {g_ctl:.3f} outside 1 +- {CONTROL_BAND}")
    if len(shapes(rel)) < MIN_SHAPES:
        why.append(f"{len(shapes(rel))} shapes measured (< {MIN_SHAPES})")
    if not routes_ok(rows, prefix, route):
        why.append(f"a {prefix} row did not route {route}")
    worst = max(rel, key=rel.get)
    if rel[worst] > max_rel:
        why.append(f"cell {worst} at {rel[worst]:.3f} > {max_rel}")
    return why, g_ctl, worst


def verdict_tail64(rows: list[dict[str, Any]], check_ok: bool) -> tuple[bool, list[str]]:
    """The tail64 rule (module docstring) -> (eligible, lines)."""
    rel = paired(rows, "fg_attention_tail64", "fg_attention")
    ctl = paired(rows, "fg_attention_control", "fg_attention")
    if not rel:
        return False, ["tail64: no paired cells"]
    why, g_ctl, worst = _common(rows, rel, ctl, "fg_attention", "gluon list", TAIL_MAX_REL)
    if not check_ok:
        why.append("the float64 check did not pass")
    low = [v for k, v in rel.items() if k[3] <= TAIL_LOW_D]
    g_low = geo(low)
    if not g_low <= TAIL_LOW_GEO:
        why.append(f"geo-mean over d <= {TAIL_LOW_D} {g_low:.3f} > {TAIL_LOW_GEO}")
    lines = [f"tail64: {len(rel)} cells on {len(shapes(rel))} shapes; max {rel[worst]:.3f} at {worst}; geo d <= "
             f"{TAIL_LOW_D} {g_low:.3f} ({len(low)} cells), all {geo(list(rel.values())):.3f}; control geo "
             f"{g_ctl:.3f}", "tail64: " + ("ELIGIBLE" if not why else "NOT ELIGIBLE: " + "; ".join(why))]
    return not why, lines


def verdict_block_long(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The block long-row rule (module docstring) -> ("cost is real" / "not shown" / "void", lines)."""
    rel = {k: v for k, v in paired(rows, "fg_block128", "fg_block128_stg").items() if k[3] >= BLOCK_LONG_D}
    ctl = {k: v for k, v in paired(rows, "fg_block128_sel", "fg_block128").items() if k[3] >= BLOCK_LONG_D}
    if not rel or not ctl:
        return "void", ["block long rows: no paired cells"]
    g, gc = geo(list(rel.values())), geo(list(ctl.values()))
    real = g > BLOCK_COST_GEO and g - gc > BLOCK_COST_OVER_CONTROL
    out = "cost is real" if real else "not shown"
    over = sorted(k for k, v in rel.items() if v > 1.02)
    return out, [f"block long rows (d >= {BLOCK_LONG_D}): tma_sel / stg geo-mean {g:.4f} over {len(rel)} cells on "
                 f"{len(shapes(rel))} shapes (max {max(rel.values()):.3f}, {len(over)} cells > 1.02); control geo "
                 f"{gc:.4f} (max |c - 1| {control_noise(ctl)['max_dev']:.3f})",
                 f"block long rows: {out.upper()} (rule: geo > {BLOCK_COST_GEO} and geo - control > "
                 f"{BLOCK_COST_OVER_CONTROL})"]


def verdict_dense(rows: list[dict[str, Any]]) -> tuple[bool, list[str]]:
    """The dense tma_sel rule (module docstring) -> (passes, lines)."""
    rel = paired(rows, "fg_dense_sel", "fg_dense")
    ctl = paired(rows, "fg_dense_stg", "fg_dense")
    if not rel:
        return False, ["dense: no paired shapes"]
    why, g_ctl, _ = _common(rows, rel, ctl, "fg_dense", "gluon contig", DENSE_MAX_REL)
    return not why, [f"dense: {len(rel)} shapes; sel / entry " + " ".join(f"{v:.3f}" for v in rel.values())
                     + f"; geo {geo(list(rel.values())):.3f}; control geo {g_ctl:.3f}",
                     "dense tma_sel: " + ("PASSES" if not why else "DOES NOT PASS: " + "; ".join(why))]


def noise_lines(fg_rows: list[dict[str, Any]], contig_rows: list[dict[str, Any]]) -> list[str]:
    """The three controls' spread (the check on the noise reduction)."""
    out = []
    for name, rows, num, den in (("fg control", fg_rows, "fg_attention_control", "fg_attention"),
                                 ("block control", contig_rows, "fg_block128_sel", "fg_block128"),
                                 ("dense control", contig_rows, "fg_dense_stg", "fg_dense")):
        n = control_noise(paired(rows, num, den))
        out.append(f"{name}: geo {n['geo']:.4f}, max |c - 1| {n['max_dev']:.3f}, share within 1 +- 0.02 "
                   f"{n['within_002']:.2f}")
    return out


def read(path: str | None) -> list[dict[str, Any]]:
    """The rows of a benchmark CSV (none without a path)."""
    if not path:
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fg", default=None, help="the fg CSV (bench_kernels --bench-only fg128, tag -k8fg)")
    ap.add_argument("--contig", default=None, help="the contig CSV (bench_kernels --bench-only contig, -k8contig)")
    ap.add_argument("--check-ok", choices=("yes", "no"), default="no", help="did the tail64 float64 checks pass")
    args = ap.parse_args(argv)
    for p in (args.fg, args.contig):
        if p is not None:
            try:
                open(p).close()
            except OSError as e:
                print(f"k8_analyze: {p}: {e.strerror}", file=sys.stderr)
                sys.exit(2)
    fg, contig = read(args.fg), read(args.contig)
    if fg:
        print("\n".join(verdict_tail64(fg, args.check_ok == "yes")[1]))
    if contig:
        print("\n".join(verdict_block_long(contig)[1]))
        print("\n".join(verdict_dense(contig)[1]))
    print("\n".join(noise_lines(fg, contig)))


if __name__ == "__main__":
    main()
