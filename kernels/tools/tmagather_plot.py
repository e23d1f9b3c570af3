"""Plot of the TMA row-gather measurements (issue 12, session 16, helper W; kernels/NOTES-tma-gather.md).

    python3 kernels/tools/tmagather_plot.py [--bench CSV] [--fg CSV] [--out PNG]

Left: the microbenchmark's µs per 128-key tile per SM (median over rounds) per cell and producer, against the rate
the packaged consumer needs (1.8 µs) and the step-1 bound (1.8 / 1.3).  Right: the kernel probe's paired
t / t_list (median over rounds, min-max bars) per cell for the candidate and the control.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RES = ROOT / "validation" / "results"
BENCH = RES / "kernels-h200-2026-12-01-tmagather-bench.csv"
FG = RES / "kernels-h200-2026-12-01-tmagather-fg.csv"
OUT = ROOT / "docs" / "img" / "tmagather-h200.png"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--fg", type=Path, default=FG)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    for p in (a.bench, a.fg):
        if not p.is_file():
            print(f"tmagather_plot: {p} is not a file", file=sys.stderr)
            return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(ROOT / "kernels" / "tools"))
    from tmagather_bench import MARGIN, NEEDED_US_PER_TILE, VARIANTS

    brows = list(csv.DictReader(open(a.bench, newline="")))
    frows = list(csv.DictReader(open(a.fg, newline="")))
    cells = list(dict.fromkeys(r["cell"] for r in brows))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw=dict(width_ratios=[1.3, 1]))
    w = 0.27
    for i, v in enumerate(VARIANTS):
        ys = [next((float(r["us_per_tile"]) for r in brows if r["cell"] == c and r["variant"] == v), float("nan"))
              for c in cells]
        ax1.bar([x + (i - 1) * w for x in range(len(cells))], ys, w, label=v)
    ax1.axhline(NEEDED_US_PER_TILE, color="k", lw=1, ls="--", label=f"needed ({NEEDED_US_PER_TILE} µs)")
    ax1.axhline(NEEDED_US_PER_TILE / MARGIN, color="r", lw=1, ls=":", label=f"step-1 bound (/{MARGIN})")
    ax1.set_yscale("log")
    ax1.set_xticks(range(len(cells)), cells, rotation=30, ha="right", fontsize=8)
    ax1.set_ylabel("µs per 128-key tile per SM (K+V stage)")
    ax1.set_title("Step 1: stage fill rate (H200, 1 CTA/SM, consumer only releases)", fontsize=9)
    ax1.legend(fontsize=7)
    keys = list(dict.fromkeys((r["shape"], r["density_target"]) for r in frows if r["variant"] == "tg"))
    for i, v in enumerate(("list_ctl", "tg")):
        ys, lo, hi = [], [], []
        for s, d in keys:
            r = next(r for r in frows if r["shape"] == s and r["density_target"] == d and r["variant"] == v)
            ys.append(float(r["rel_list"]))
            lo.append(ys[-1] - float(r["rel_list_min"]))
            hi.append(float(r["rel_list_max"]) - ys[-1])
        ax2.errorbar([x + (i - 0.5) * 0.25 for x in range(len(keys))], ys, yerr=[lo, hi], fmt="o", capsize=3,
                     label=v)
    ax2.axhline(1.02, color="r", lw=1, ls=":", label="rule: every cell <= 1.02")
    ax2.axhline(0.97, color="g", lw=1, ls=":", label="rule: geo-mean d <= 0.05 <= 0.97")
    ax2.axhline(1.0, color="k", lw=0.5)
    ax2.set_xticks(range(len(keys)), [f"{s.split(' D')[0]}\nd {d}" for s, d in keys], fontsize=7)
    ax2.set_ylabel("t / t_list (median of 7 paired rounds, min-max)")
    ax2.set_title("Step 2: fg ws2 list CTA with the TMA producer vs packaged", fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=64)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
