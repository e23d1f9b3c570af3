"""Session 16, T: the pre-registered rule for the row-end lever chosen from the in-kernel timeline
(kernels/NOTES.md "Session 16, T").

    python3 kernels/tools/timeline_lever_rule.py FG_CSV --check-ok yes|no

FG_CSV: ``bench_kernels --bench-only fg128`` with ``--fg-extra defer_pv=<candidate table>`` (the packaged fg entry
with ``extra.gluon.epilogue: "tma_defer_pv"``), ``--fg-extra defer=<diagnostic table>`` (``"tma_defer"``) and
``--fg-extra control=<packaged table>``.  Every ratio is paired per round (``k8_analyze.paired``: the median over
rounds of t_a / t_b of the same round), per cell.

**Adopt ``tma_defer_pv``** iff all of these hold:
- the control (``fg_attention_control`` / ``fg_attention``, the packaged entry timed twice) has a geo-mean over all
  timed cells in 1 +- 0.01;
- the GPU check of the candidate table passed (``--check-ok yes``: gpu_check_kernels >= 500 random cases, 0 failures);
- >= 6 of the 8 D128 shapes were measured and every fg row routed ``gluon list``;
- every timed cell (d <= 0.05 and the long-row cells) is <= 1.02;
- the pooled geo-mean over the cells with d <= 0.05 is <= 0.97 (a gain of >= 3 %).
``tma_defer`` (the lever without the last PV moved) is reported with the same numbers as a diagnostic; it is never
adopted by this rule.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8_analyze import CONTROL_BAND, MIN_SHAPES, geo, paired, routes_ok, shapes  # noqa: E402

MAX_REL = 1.02
LOW_D = 0.05
LOW_GEO = 0.97
CANDIDATE = "fg_attention_defer_pv"
DIAGNOSTIC = "fg_attention_defer"
CONTROL = "fg_attention_control"
ENTRY = "fg_attention"


def verdict(rows: list[dict], check_ok: bool, kernel: str = CANDIDATE) -> tuple[bool, list[str], dict]:
    """(adopt, lines, figures) for ``kernel`` against the entry by the rule (module docstring)."""
    rel = paired(rows, kernel, ENTRY)
    ctl = paired(rows, CONTROL, ENTRY)
    if not rel:
        return False, [f"{kernel}: no paired cells"], {}
    why = []
    g_ctl = geo(list(ctl.values()))
    if not abs(g_ctl - 1) <= CONTROL_BAND:
        why.append(f"control geo-mean {g_ctl:.3f} outside 1 +- {CONTROL_BAND}")
    if not check_ok:
        why.append("the GPU check of the candidate did not pass")
    if len(shapes(rel)) < MIN_SHAPES:
        why.append(f"{len(shapes(rel))} shapes measured (< {MIN_SHAPES})")
    if not routes_ok(rows, ENTRY, "gluon list"):
        why.append("an fg row did not route gluon list")
    worst = max(rel, key=rel.get)
    if rel[worst] > MAX_REL:
        why.append(f"cell {worst} at {rel[worst]:.3f} > {MAX_REL}")
    low = [v for k, v in rel.items() if k[3] <= LOW_D]
    low_ctl = [v for k, v in ctl.items() if k[3] <= LOW_D]
    g_low = geo(low)
    if not g_low <= LOW_GEO:
        why.append(f"pooled geo-mean over the {len(low)} cells with d <= {LOW_D}: {g_low:.3f} > {LOW_GEO}")
    fig = dict(cells=len(rel), shapes=len(shapes(rel)), geo_low=g_low, geo_low_control=geo(low_ctl),
               geo_all=geo(list(rel.values())), control_geo=g_ctl, worst=rel[worst], worst_cell=worst)
    lines = [f"{kernel}: {len(rel)} cells on {len(shapes(rel))} shapes; pooled geo-mean d <= {LOW_D} {g_low:.3f} "
             f"(control {geo(low_ctl):.3f}); all cells {fig['geo_all']:.3f}; max {rel[worst]:.3f} at {worst}; "
             f"control geo {g_ctl:.3f}"]
    for k in sorted(rel):
        lines.append(f"  H{k[0]} N{k[1]}+{k[2]} d {k[3]:g}: {rel[k]:.3f} (control {ctl.get(k, float('nan')):.3f})")
    lines.append(f"{kernel}: " + ("ADOPT" if not why else "NOT ADOPTED: " + "; ".join(why)))
    return not why, lines, fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--check-ok", choices=("yes", "no"), required=True)
    a = ap.parse_args(argv)
    if not a.csv.is_file():
        ap.error(f"{a.csv} is not a file")
    rows = list(csv.DictReader(open(a.csv, newline="")))
    ok, lines, _ = verdict(rows, a.check_ok == "yes")
    for ln in lines:
        print(f"[rule] {ln}")
    _, dlines, _ = verdict(rows, a.check_ok == "yes", DIAGNOSTIC)
    for ln in dlines:
        print(f"[diag] {ln}")
    print(f"[rule] tma_defer_pv: {'ADOPT' if ok else 'not adopted'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
