"""``fgsim sweep``: what-if table (and plot) across GPUs, M, gran_n, num_stages and mask density.

Counts are synthesized (no trace): each (head, query block) keeps a share of the N keys that varies per head
and per block, scaled so the counts realise the density asked for (column ``realised``). Times are per call,
mean over the synthetic layers; speedups are over the GPU's best dense configuration (named in the notes).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from typing import Any

from fgsim.commands._args import csv_list, density, gpu_list, int_range, numba_notice
from fgsim.errors import FgsimError

_SHOWN = (("gpu", "gpu", 5, "s"), ("n_tokens", "N", 7, "d"), ("heads", "H", 3, "d"), ("head_dim", "D", 3, "d"),
          ("block_m", "M", 3, "d"), ("gran_n", "g", 2, "d"), ("num_stages", "st", 2, "d"),
          ("density", "density", 7, ".3g"), ("density_realised", "realised", 8, ".3f"), ("fg_ms", "fg ms", 8, ".3f"),
          ("block_ms", "block ms", 8, ".3f"), ("dense_ms", "dense ms", 8, ".3f"),
          ("fg_speedup", "fg x", 6, ".2f"), ("block_speedup", "block x", 7, ".2f"))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sweep", help="what-if design-space table across GPUs, M, gran_n, stages, density",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=gpu_list, default="h200,h100,b200,a100,l40s",
                   help="comma-separated GPUs, or 'all' (default: h200,h100,b200,a100,l40s)")
    p.add_argument("--block-m", type=csv_list(int, (64, 128)), default="64,128",
                   help="query-block sizes M to sweep, from 64,128 (default: 64,128)")
    p.add_argument("--gran-n", type=csv_list(int, (1, 16, 64)), default="1,16,64",
                   help="FG key granularities to sweep, from 1,16,64 (default: 1,16,64)")
    p.add_argument("--num-stages", type=csv_list(int_range(0, 8)), default="0",
                   help="pipeline stages to sweep, 0 = the launch table's value (default: 0)")
    p.add_argument("--density", type=csv_list(density), default="0.05,0.1,0.2,0.4,0.7",
                   help="kept-key densities in (0, 1] (default: 0.05,0.1,0.2,0.4,0.7)")
    p.add_argument("--n-tokens", type=int_range(1, 1 << 20), default=32760,
                   help="sequence length N (default: 32760, Wan2.1-1.3B 480p)")
    p.add_argument("--heads", type=int_range(1, 256), default=12, help="attention heads H (default: 12)")
    p.add_argument("--head-dim", type=int, default=128, choices=(64, 128), help="head dimension D (default: 128)")
    p.add_argument("--layers", type=int_range(1, 64), default=2,
                   help="synthetic layers per point (distinct per-head count patterns; default: 2)")
    p.add_argument("--csv", metavar="CSV", help="also write every row (all columns) as CSV here")
    p.add_argument("--plot", metavar="PNG", help="PNG: FG speedup over best dense against density, one panel per GPU")


def _cell(v: Any, width: int, fmt: str) -> str:
    if isinstance(v, float) and v != v:
        return f"{'-':>{width}}"
    return f"{v:>{width}{fmt if fmt != 's' else ''}}"


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The sweep table (fits 100 columns) and its notes."""
    lines = [" ".join(f"{h:>{w}}" for _, h, w, _ in _SHOWN)]
    for r in rows:
        lines.append(" ".join(_cell(r[k], w, f) for k, _, w, f in _SHOWN))
    lines.append("fg x, block x: speedup over the GPU's best dense configuration; counts are synthesized "
                 "(not a trace),")
    lines.append("'realised' is the kept-key density they hold; '-': the configuration does not run")
    for g in dict.fromkeys(r["gpu"] for r in rows):
        rr = [r for r in rows if r["gpu"] == g]
        r0 = rr[0]
        lines += _wrap(f"{g}: best dense {r0['best_dense']} = {r0['best_dense_ms']:.3f} ms per call; "
                       f"parameters: {r0['parameters']}")
        for n in dict.fromkeys(x for r in rr for x in r["notes"].split(" | ") if x):
            lines += _wrap(f"  {g} {n}")
    return lines


def _wrap(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=100, subsequent_indent="    ", break_long_words=False) or [""]


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    from fgsim.sweep import COLUMNS

    w = csv.DictWriter(buf, fieldnames=[*COLUMNS, *(k for k in rows[0] if k not in COLUMNS)], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _plot_png(rows: list[dict[str, Any]], title: str) -> bytes:
    import matplotlib.pyplot as plt

    from fgsim.fileio import figure_png

    gpus = list(dict.fromkeys(r["gpu"] for r in rows))
    ncols = min(3, len(gpus))
    nrows = -(-len(gpus) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows + 0.6), squeeze=False,
                             sharey=True)
    def key(r: dict[str, Any]) -> tuple[int, int, int]:
        return r["block_m"], r["gran_n"], r["stages_asked"]

    keys = sorted({key(r) for r in rows})
    colors = plt.cm.tab10.colors if len(keys) <= 10 else plt.cm.tab20.colors
    dens = sorted({r["density_realised"] for r in rows})
    handles: dict[str, Any] = {}
    for ax, g in zip(axes.flat, gpus, strict=False):
        for i, k in enumerate(keys):
            rr = sorted((r for r in rows if r["gpu"] == g and key(r) == k), key=lambda r: r["density_realised"])
            label = f"M={k[0]} g={k[1]}" + (f" stages={k[2]}" if k[2] else "")
            (line,) = ax.plot([r["density_realised"] for r in rr], [r["fg_speedup"] for r in rr], marker="o",
                              color=colors[i % len(colors)], linestyle="-" if k[0] == 128 else "--", label=label)
            handles.setdefault(label, line)
        (line,) = ax.plot(dens, [1 / d for d in dens], color="black", linewidth=0.8, linestyle=":")
        handles.setdefault("1 / density (the limit)", line)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(dens, [f"{d:g}" for d in dens])
        ax.minorticks_off()
        top = max([1.0, *(r["fg_speedup"] for r in rows if r["gpu"] == g and r["fg_speedup"] == r["fg_speedup"])])
        yt = [y for y in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if y <= 2 * top]
        ax.set_yticks(yt, [f"{y:g}" for y in yt])
        ax.set_title(g)
        ax.set_xlabel("kept-key density (realised)")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("FG speedup over best dense")
    for ax in list(axes.flat)[len(gpus):]:
        ax.axis("off")
    labels = list(handles)
    fig.legend(list(handles.values()), labels, loc="lower center", ncol=min(4, len(labels)), fontsize=9,
               frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(labels) // 4), 1, 0.97))
    return figure_png(fig)


#: Seconds per simulated CTA and per sweep point (2-core machine, 2026-12-01: one point of 268 M CTAs per kernel
#: took 93 s; the default 150 points 2 s).
SECONDS_PER_CTA, SECONDS_PER_POINT = 0.12e-6, 0.005


def _points(args: argparse.Namespace) -> int:
    return len(args.gpus) * len(args.block_m) * len(args.gran_n) * len(args.num_stages) * len(args.density)


def estimate_seconds(args: argparse.Namespace) -> float:
    """Rough wall time of a sweep: its points x the CTAs each simulates (layers x heads x query blocks at the
    smallest M; fg, block and dense) at the measured rate."""
    ctas = args.layers * args.heads * -(-args.n_tokens // min(args.block_m)) * 3
    return _points(args) * (SECONDS_PER_POINT + ctas * SECONDS_PER_CTA)


def run(args: argparse.Namespace) -> int:
    from fgsim.fileio import PendingWrites, check_output_path, require_matplotlib
    from fgsim.sweep import sweep

    if args.csv:
        check_output_path(args.csv, "--csv", (".csv",))
    if args.plot:
        check_output_path(args.plot, "--plot", (".png",))
        require_matplotlib()
    if args.csv and args.plot and check_output_path(args.csv, "--csv", (".csv",)).resolve() == \
            check_output_path(args.plot, "--plot", (".png",)).resolve():
        raise FgsimError("--csv and --plot name the same file")
    numba_notice()
    seconds = estimate_seconds(args)
    if seconds > 5:
        took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        n = _points(args)
        print(f"fgsim sweep: {n:,} point{'s' if n != 1 else ''} of {args.layers} x {args.heads} x {args.n_tokens:,}-token "
              f"calls: about {took} ...", file=sys.stderr, flush=True)
    stages = [s or None for s in dict.fromkeys(args.num_stages)]
    rows = sweep(args.gpus, list(dict.fromkeys(args.block_m)), list(dict.fromkeys(args.gran_n)), stages,
                 list(dict.fromkeys(args.density)), n_tokens=args.n_tokens, heads=args.heads,
                 head_dim=args.head_dim, layers=args.layers)
    if not rows:
        raise FgsimError("the sweep produced no rows")
    print("\n".join(format_rows(rows)))
    pending = PendingWrites()
    if args.csv:
        pending.add(args.csv, _csv_text(rows))
    if args.plot:
        title = (f"FG-Attn speedup over the best dense kernel (synthetic counts, N={args.n_tokens}, "
                 f"H={args.heads}, D={args.head_dim})")
        pending.add(args.plot, _plot_png(rows, title))
    for p in pending.commit():
        print(f"wrote {p}", file=sys.stderr)
    return 0
