"""Plot effective TFLOP/s vs density (fg, block, dense, cuDNN, Flex) from the issue-12 kernel benchmark CSV.

    python validation/plot_kernels.py [--csv validation/results/kernels-h200-2026-12-01-issue12-run15.csv]
                                      [--out docs/img/kernels_tflops.png]

Effective TFLOP/s = 4·D·(kept query–key pairs)/t; dense kernels (cuDNN, fg_dense) are horizontal lines.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("H12 N32760 D128", "H12 N32760+512text D128", "H40 N75600 D128", "H40 N75600+512text D128")
STYLE = {"fg_attention": ("fg (M×1 gather)", "C0", "o"), "fg_block128": ("block 128×128", "C1", "s"),
         "flex_block128": ("Flex BlockMask", "C2", "^"),
         "fg_attention_previous": ("fg, previous table (row end stg)", "C4", "x"),  # where the CSV has it (same rounds)
         "fg_block128_previous": ("block, previous table (row end stg)", "C5", "x")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=ROOT / "validation/results/kernels-h200-2026-12-01-issue12-run15.csv",
                    help="the --final benchmark CSV (one run: every kernel and cuDNN in the same rounds)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/img/kernels_tflops.png")
    args = ap.parse_args()
    if not args.csv.is_file():
        print(f"plot_kernels: --csv {args.csv} does not exist", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(args.csv, newline="", encoding="utf-8")))
    shapes = [s for s in SHAPES if any(r["shape"] == s for r in rows)]  # the shapes this run reached
    if not shapes:
        print(f"plot_kernels: --csv {args.csv} has none of the shapes {', '.join(SHAPES)}", file=sys.stderr)
        return 2
    fig, axes = plt.subplots(1, len(shapes), figsize=(4.2 * len(shapes), 3.8), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, shape in zip(axes, shapes, strict=True):
        rs = [r for r in rows if r["shape"] == shape and r["M"] == "128"]
        for kernel, (label, color, marker) in STYLE.items():
            pts = sorted((float(r["density"]), float(r["eff_tflops"])) for r in rs
                         if r["kernel"] == kernel and r["gran_n"] in ("1", "128"))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, label=label, ms=4)
        for kernel, label, color, ls in (("sdpa_cudnn", "cuDNN dense", "k", "--"), ("fg_dense", "fgattn dense", "C3", ":"),
                                         ("fg_dense_previous", "fgattn dense, previous table (tl)", "C5", "-.")):
            r = next((r for r in rs if r["kernel"] == kernel), None)
            if r:
                ax.axhline(float(r["eff_tflops"]), color=color, linestyle=ls, label=label, lw=1.2)
        ax.set_xscale("log")
        ax.set_title(shape, fontsize=9)
        ax.set_xlabel("kept fraction d")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("effective TFLOP/s (4·D·kept pairs / t)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"H200 bf16 forward attention, B=1, M=128 — one run: {args.csv.name}", fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
