"""Plot of helper W2's TMA-gather measurements (issue 12, session 16; kernels/NOTES-tma-gather.md, "W2").

    python3 kernels/tools/tmagather_w2_plot.py [--fg CSV] [--fg-w CSV] [--timeline CSV] [--out PNG]

Left: paired t / t_list (median over rounds) per timed cell against the cell's mean executed tiles per row, for the
W2 candidates (``tgq``, ``tgqo``), the control and W's ``tg`` (its own call), with the rule's 1.02 cell bound.
Right: per-row phase medians of the TMA-gather forms minus the packaged kernel's (cycles, consumer 0 unless named),
from T's level-1 timeline, at the two short-row d 0.02 cells.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RES = ROOT / "validation" / "results"
FG = RES / "kernels-h200-2026-12-01-fg-tmagather-w2.csv"
FG_W = RES / "kernels-h200-2026-12-01-tmagather-fg.csv"
TIMELINE = RES / "kernels-h200-2026-12-01-tmagather-w2-timeline.csv"
OUT = ROOT / "docs" / "img" / "tmagather-w2-h200.png"
#: the per-row phases drawn on the right (timeline quantity, label)
PHASES = (("c0_q_wait", "Q wait"), ("c0_o_release", "O release c0"), ("c1_o_release", "O release c1"),
          ("c0_qk0_rest", "tile-0 QK rest"), ("c0_last_full_wait", "last full wait"),
          ("c0_last_tile", "last tile"), ("c0_meet", "O_BAR meeting"), ("c0_store_issue", "O store issue"),
          ("row_cycles", "whole row"))
SHORT_CELLS = ("H12 N32760 d 0.02", "H40 N32760 d 0.02")


def rel_points(rows: list[dict[str, str]], variant: str) -> list[tuple[float, float]]:
    """(mean executed tiles per row, paired rel) per cell of ``variant`` in a probe CSV (tiles from the list row)."""
    tiles = {(r["shape"], r["density_target"]): float(r["exec_tiles_per_row"]) for r in rows if r["variant"] == "list"}
    return sorted((tiles[(r["shape"], r["density_target"])], float(r["rel_list"])) for r in rows
                  if r["variant"] == variant and r["rel_list"] != "")


def phase_deltas(rows: list[dict[str, str]], cell: str, form: str) -> list[float]:
    """Median cycles of ``form`` minus list's per :data:`PHASES` entry at ``cell`` (nan where missing)."""
    med = {(r["variant"], r["quantity"]): float(r["median"]) for r in rows if r["cell"] == cell}
    return [med.get((form, q), float("nan")) - med.get(("list", q), float("nan")) for q, _ in PHASES]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fg", type=Path, default=FG)
    ap.add_argument("--fg-w", type=Path, default=FG_W)
    ap.add_argument("--timeline", type=Path, default=TIMELINE)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    for flag, p in (("--fg", a.fg), ("--fg-w", a.fg_w), ("--timeline", a.timeline)):
        if not p.is_file():
            print(f"tmagather_w2_plot: {flag} {p} is not a file", file=sys.stderr)
            return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fg = list(csv.DictReader(open(a.fg, newline="")))
    fgw = list(csv.DictReader(open(a.fg_w, newline="")))
    tl = list(csv.DictReader(open(a.timeline, newline="")))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.8))
    for rows, var, st, lab in ((fg, "list_ctl", "x", "control (packaged twice)"), (fgw, "tg", "s", "tg (W, its call)"),
                               (fg, "tgq", "o", "tgq"), (fg, "tgqo", "^", "tgqo")):
        pts = rel_points(rows, var)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], st, label=lab, alpha=0.8)
    ax.axhline(1.02, color="r", lw=0.8, ls="--", label="rule: no cell > 1.02")
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("mean executed 128-key tiles per row (cell)")
    ax.set_ylabel("t / t_packaged (paired, median of 7 rounds)")
    ax.set_title("TMA-gather CTA vs the packaged fg entry (H200)")
    ax.legend(fontsize=8)
    forms = ("tg", "tgq", "tgqo")
    x = np.arange(len(PHASES))
    wdt = 0.8 / (len(forms) * len(SHORT_CELLS))
    k = 0
    for cell in SHORT_CELLS:
        for f in forms:
            bx.bar(x + (k - 2.5) * wdt, phase_deltas(tl, cell, f), wdt, label=f"{f}, {cell}")
            k += 1
    bx.axhline(0, color="k", lw=0.5)
    bx.set_xticks(x, [lab for _, lab in PHASES], rotation=35, ha="right", fontsize=8)
    bx.set_ylabel("median cycles, form − packaged")
    bx.set_title("per-row phases (T's level-1 timeline, one launch each)")
    bx.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=90)
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
