"""FP32-pipe instructions per score: the softmax microbenchmark's offline sm_90 count next to the packaged kernels'.

    PYTHONPATH=/tmp/triton36:. python validation/costmodel_fp32_per_score.py [--out CSV]

Rows ``source=micro``: the softmax-only microbenchmark (``fgsim.softmax_micro``, compiled offline for sm_90 by the
Triton on the path; the device runs 3.6), its loop's FP32-pipe instructions per score less the O rescale and the
feedback FADD. Rows ``source=kernel``: the calibration kernels' own compiled tile loops, as the model reads them
(``loop_fp32`` of the calib14 CSV, per thread and loop iteration, x threads x tiles per iteration / (M BLOCK_N)),
less the O rescale (D / BLOCK_N), one row per distinct (kernel, M, BLOCK_N, D, warps, options, loop_fp32). Both
in FP32 instructions per score, ``fp32_per_score``'s unit; the count is the FMA pipe's throughput floor of the
tile's softmax, not the fitted effective figure (calib14: 3.3, calib13: 5.6). Reads no timing.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fgsim.fileio import write_csv_atomic  # noqa: E402
from fgsim.softmax_micro import sass_rows  # noqa: E402

CALIB14 = ROOT / "validation" / "results" / "h200-2026-12-01-costmodel-calib14.csv"
OUT = ROOT / "validation" / "results" / "fp32-per-score-sass.csv"
FIELDS = ("source", "kernel", "block_m", "block_n", "head_dim", "num_warps", "options", "n_rows", "loop_fp32",
          "loop_mma", "fp32_per_score_sass")


def kernel_rows(path: Path = CALIB14) -> list[dict[str, object]]:
    """Per distinct compiled tile loop of the calibration kernels: FP32-pipe instructions per score less the O
    rescale (the wgmma tile: ``mma_per_tile = max(1, M / (64 wg)) (D + BN) / 16`` per warp, as the model scales)."""
    seen: Counter[tuple] = Counter()
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if (r.get("kind") or "kernel") != "kernel" or not (r.get("loop_fp32") or "").strip():
                continue
            if not (r.get("loop_mma") or "0").strip() or float(r["loop_mma"]) <= 0:
                continue
            key = (r["kernel"], int(r["block_m"]), int(r["block_n"]), int(r["head_dim"]), int(r["num_warps"]),
                   (r.get("launch_extra") or "").strip(), int(float(r["loop_fp32"])), int(float(r["loop_mma"])))
            seen[key] += 1
    out = []
    for (kern, m, bn, d, w, opts, fp32, mma), n in sorted(seen.items()):
        wg = max(1, w // 4)
        per_tile = max(1.0, m / (64.0 * wg)) * (d / 16.0 + bn / 16.0)
        per_score = fp32 * (per_tile / mma) * 32.0 * w / (m * bn) - d / bn
        out.append({"source": "kernel", "kernel": kern, "block_m": m, "block_n": bn, "head_dim": d, "num_warps": w,
                    "options": opts, "n_rows": n, "loop_fp32": fp32, "loop_mma": mma,
                    "fp32_per_score_sass": round(per_score, 4)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    rows: list[dict[str, object]] = []
    for r in sass_rows():
        rows.append({"source": "micro", "kernel": "softmax_micro", "block_m": r["block_m"], "block_n": r["block_n"],
                     "head_dim": r["head_dim"], "num_warps": r["num_warps"], "options": "", "n_rows": "",
                     "loop_fp32": r["loop_fp32_pipe"], "loop_mma": 0,
                     "fp32_per_score_sass": round(float(r["fp32_per_score_sass"]), 4)})
    rows += kernel_rows()
    write_csv_atomic(args.out, rows, FIELDS)
    for r in rows:
        print(f"{r['source']:6s} {r['kernel']:24s} M{r['block_m']} BN{r['block_n']} D{r['head_dim']} "
              f"w{r['num_warps']} n={r['n_rows']!s:3s} {r['fp32_per_score_sass']:7.3f}  {str(r['options'])[:60]}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
