"""Session 16, D2: the dynamic tail's outcome from its committed CSVs (kernels/NOTES.md "Session 16, D2"): the
timeline summary (slowest / mean program span per launch, the slowest programs, how many of them come in
(even, odd) program pairs) printed, and one figure (paired rel per cell; per-program spans sorted, list vs dyn)::

    python3 kernels/tools/dyntail_plot.py [--timing CSV] [--timeline CSV] [--out PNG]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RES = ROOT / "validation" / "results"


def spans(path: Path) -> dict[tuple[str, str, int], list[int]]:
    """{(cell, variant, launch): span cycles per program} of a timeline CSV."""
    out: dict[tuple[str, str, int], dict[int, int]] = defaultdict(dict)
    for r in csv.DictReader(open(path, newline="")):
        out[(r["cell"], r["variant"], int(r["launch"]))][int(r["program"])] = int(r["span_cycles"])
    return {k: [v[p] for p in sorted(v)] for k, v in out.items()}


def summary(sp: dict[tuple[str, str, int], list[int]], top: int = 6) -> list[dict[str, object]]:
    """Per launch: slowest / mean span, the slowest ``top`` programs and how many of them form (even, odd) pairs
    with another of them (p, p ^ 1), the programs above 1.05 x the mean, min / mean."""
    rows = []
    for (cell, var, launch), s in sorted(sp.items()):
        mean = sum(s) / len(s)
        order = sorted(range(len(s)), key=lambda p: -s[p])[:top]
        paired = sum((p ^ 1) in order for p in order)
        rows.append(dict(cell=cell, variant=var, launch=launch, slowest_over_mean=round(max(s) / mean, 3),
                         min_over_mean=round(min(s) / mean, 3), above_1_05=sum(x > 1.05 * mean for x in s),
                         slowest=order, in_pairs=paired))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timing", type=Path, default=RES / "kernels-h200-2026-12-01-dyntail.csv")
    ap.add_argument("--timeline", type=Path, default=RES / "kernels-h200-2026-12-01-dyntail-timeline.csv")
    ap.add_argument("--out", type=Path, default=ROOT / "kernels" / "logs" / "dyntail-s16.png")
    a = ap.parse_args(argv)
    for flag, p in (("--timing", a.timing), ("--timeline", a.timeline)):
        if not p.is_file():
            ap.error(f"{flag}: {p} is not a file")
    sp = spans(a.timeline)
    for r in summary(sp):
        print(f"[timeline] {r['cell']} {r['variant']:<4} launch {r['launch']}: slowest/mean {r['slowest_over_mean']}, "
              f"min/mean {r['min_over_mean']}, {r['above_1_05']} programs > 1.05, slowest {r['slowest']} "
              f"({r['in_pairs']} of 6 in (2k, 2k+1) pairs)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader(open(a.timing, newline="")) if r["rel_entry"] != ""]
    cells = []
    for r in rows:
        c = (r["shape"].replace(" D128", ""), r["density_target"])
        if c not in cells:
            cells.append(c)
    fig, ax = plt.subplots(1, 3, figsize=(17, 4.8), gridspec_kw=dict(width_ratios=[2.2, 1, 1]))
    w = 0.27
    for i, v in enumerate(("entry_ctl", "dyn", "dyn_lf")):
        val = {(r["shape"].replace(" D128", ""), r["density_target"]): float(r["rel_entry"]) for r in rows
               if r["variant"] == v}
        ax[0].bar([j + (i - 1) * w for j in range(len(cells))], [val.get(c, float("nan")) for c in cells], w, label=v)
    ax[0].axhline(1.0, color="k", lw=0.8)
    ax[0].axhline(1.02, color="r", lw=0.6, ls="--")
    ax[0].set_xticks(range(len(cells)), [f"{s}\nd {d}" for s, d in cells], rotation=70, fontsize=7)
    ax[0].set_ylim(0.9, 1.05)
    ax[0].set_ylabel("t / t_entry (median of per-round ratios, 7 rounds)")
    ax[0].set_title("dynamic tail vs packaged entry (CUDA graphs, H200)")
    ax[0].legend(fontsize=8)
    for k, cell in enumerate(sorted({c for c, _, _ in sp}, reverse=True)):
        for var, col in (("list", "tab:blue"), ("dyn", "tab:orange")):
            for launch in (1, 2, 3):
                s = sp.get((cell, var, launch))
                if s:
                    m = sum(s) / len(s)
                    ax[1 + k].plot(sorted((x / m for x in s), reverse=True), color=col, lw=1,
                                   label=f"{'packaged' if var == 'list' else 'dyn'}" if launch == 1 else None)
        ax[1 + k].set_title(f"{cell}: program spans (T's level-1 timeline)", fontsize=9)
        ax[1 + k].set_xlabel("program, slowest first")
        ax[1 + k].set_ylabel("span / mean span")
        ax[1 + k].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
