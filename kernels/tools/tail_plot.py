"""Plot of T2's tail measurement (kernels/NOTES.md "Session 16, T2"): left, per cell the real tail (median over the
recorded launches of (slowest − mean CTA span) / mean and lever_max) from the launches CSV; right, one launch's CTA
finish times by SM id at H40 N32760 d 0.02 from the per-CTA CSV (TPC pairs 2t / 2t + 1 side by side)::

    python3 kernels/tools/tail_plot.py LAUNCHES_CSV CTAS_CSV_GZ OUT_PNG
"""

from __future__ import annotations

import csv
import gzip
import statistics
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 3 or not all(Path(p).is_file() for p in argv[:2]):
        print("usage: tail_plot.py LAUNCHES_CSV CTAS_CSV_GZ OUT_PNG (the CSVs must exist)", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(argv[0], newline="") as f:
        lr = list(csv.DictReader(f))
    cells = list(dict.fromkeys(r["cell"] for r in lr))
    med = {c: {k: statistics.median(float(r[k]) for r in lr if r["cell"] == c) for k in ("tail_frac", "lever_max")}
           for c in cells}
    with gzip.open(argv[1], "rt", newline="") as f:
        cr = [r for r in csv.DictReader(f) if r["cell"] == "H40 N32760 d 0.02" and r["launch"] in ("0", "1")]
    fig, ax = plt.subplots(1, 2, figsize=(13, 4.5))
    x = range(len(cells))
    ax[0].bar([i - 0.2 for i in x], [100 * med[c]["tail_frac"] for c in cells], 0.4, label="(slowest − mean span) / mean")
    ax[0].bar([i + 0.2 for i in x], [100 * med[c]["lever_max"] for c in cells], 0.4,
              label="lever_max: (last − mean finish) / launch")
    ax[0].set_xticks(list(x), [c.replace("text", "") for c in cells], rotation=70, fontsize=7)
    ax[0].set_ylabel("% (median of 20 launches)")
    ax[0].set_title("real tail, minimal probe (H200, CUDA-graph back-to-back)")
    ax[0].legend(fontsize=8)
    for ln, mk in (("0", "o"), ("1", "x")):
        pts = sorted((int(r["smid"]), int(r["end_ns"]) / 1e3) for r in cr if r["launch"] == ln)
        ax[1].scatter([p[0] for p in pts], [p[1] for p in pts], s=10, marker=mk, label=f"launch {ln}")
    ax[1].set_xlabel("SM id (TPC t = SMs 2t, 2t+1)")
    ax[1].set_ylabel("CTA end (µs from the launch's first start)")
    ax[1].set_title("H40 N32760 d 0.02: CTA finish by SM")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(argv[2], dpi=90)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
