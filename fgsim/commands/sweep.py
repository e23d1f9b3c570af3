"""``fgsim sweep``: what-if table (and plot) across GPUs, M, gran_n, num_stages and mask density."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from fgsim.errors import FgsimError


def _list(s: str, typ: type) -> list[Any]:
    try:
        return [typ(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise FgsimError(f"bad list '{s}'") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sweep", help="what-if design-space table across GPUs, M, gran_n, stages, density",
                              description=__doc__)
    p.add_argument("--gpus", default="h200,h100,b200,a100")
    p.add_argument("--block-m", default="64,128")
    p.add_argument("--gran-n", default="1,16,64")
    p.add_argument("--num-stages", default="0", help="0 = the launch table's value")
    p.add_argument("--density", default="0.05,0.1,0.2,0.4,0.7")
    p.add_argument("--n-tokens", type=int, default=32760)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--head-dim", type=int, default=128, choices=(64, 128))
    p.add_argument("--csv", help="write the table as CSV here")
    p.add_argument("--plot", help="PNG: FG speedup over dense against density per GPU and M")


def run(args: argparse.Namespace) -> int:
    from fgsim.sweep import sweep

    stages = [s or None for s in _list(args.num_stages, int)]
    rows = sweep(_list(args.gpus, str), _list(args.block_m, int), _list(args.gran_n, int), stages,
                 _list(args.density, float), n_tokens=args.n_tokens, heads=args.heads, head_dim=args.head_dim)
    cols = ["gpu", "block_m", "gran_n", "num_stages", "density", "fg_ms", "block_ms", "dense_ms", "fg_speedup",
            "block_speedup"]
    print(" ".join(f"{c:>13}" for c in cols))
    for r in rows:
        print(" ".join(f"{r[c]:>13.4g}" if isinstance(r[c], float) else f"{r[c]!s:>13}" for c in cols))
    for note in sorted({f"{r['gpu']}: {r['parameters']}" for r in rows}):
        print(f"note: {note}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise FgsimError("--plot needs matplotlib") from None
        fig, ax = plt.subplots(figsize=(8, 5))
        keys = sorted({(r["gpu"], r["block_m"], r["gran_n"], r["num_stages"]) for r in rows})
        for k in keys:
            rr = [r for r in rows if (r["gpu"], r["block_m"], r["gran_n"], r["num_stages"]) == k]
            ax.plot([r["density"] for r in rr], [r["fg_speedup"] for r in rr], marker="o",
                    label=f"{k[0]} M={k[1]} g={k[2]} s={k[3]}")
        ax.set_xlabel("kept-key density")
        ax.set_ylabel("FG speedup over dense")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
