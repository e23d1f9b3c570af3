"""``fgsim validate``: measure kernels on a GPU (``--measure``) or report predictions vs committed measurements.

Without ``--measure`` (CPU): joins ``validation/results/*.csv`` with fresh predictions and writes
``validation/REPORT.md`` plus predicted-vs-measured scatter plots per kernel family.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import Any

from fgsim.commands._args import nonneg_int, positive_int
from fgsim.errors import FgsimError

REPO = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("validate", help="validate the model: --measure on a GPU, else write the report",
                              description=__doc__)
    p.add_argument("--measure", action="store_true", help="time fgattn's kernels over the case list (GPU)")
    p.add_argument("--cases", default="full", choices=("full", "traces", "tiny", "calib"),
                   help="case list: full (scored synthetic + traces), traces (the traces' alone), calib, tiny")
    p.add_argument("--per-trace", type=nonneg_int, default=3,
                   help="cases per trace, spread evenly over its entries (0: every entry)")
    p.add_argument("--seed", type=int, default=1, help="seed of the scored case list")
    p.add_argument("--traces", default=str(REPO / "traces"), help="directory of .fgt traces to include "
                   "(default <repo>/traces)")
    p.add_argument("--out-dir", default=str(REPO / "validation"),
                   help="report directory (results CSVs go to <out-dir>/results; default <repo>/validation)")
    p.add_argument("--results", nargs="*", help="CSV files to report on (default <repo>/validation/results/*.csv)")
    p.add_argument("--rep-ms", type=positive_int, default=50, help="do_bench rep time per measurement (ms)")
    p.add_argument("--bench", default="do_bench", choices=("do_bench", "graph"),
                   help="timing: do_bench events (default) or do_bench_cudagraph (GPU time, no host overhead)")
    p.add_argument("--rounds", type=positive_int, default=1, help="interleaved rounds per case (median recorded)")
    p.add_argument("--clock-warm-ms", type=float, default=0.0, help="GEMM warm-up before each case (ms)")
    p.add_argument("--case-ids", help="comma-separated case ids to measure (default: the whole list)")
    p.add_argument("--tag", default="", help="suffix of the results CSV name (e.g. graph)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def require_cuda(what: str, hint: str = "") -> None:
    """FgsimError before any work when no CUDA GPU is visible (the Triton CPU interpreter measures no GPU)."""
    import torch

    if not torch.cuda.is_available():
        raise FgsimError(f"{what} times kernels on a CUDA GPU and none is visible (torch.cuda.is_available() is "
                         "False); the Triton CPU interpreter's timings describe no GPU" + (f"; {hint}" if hint else ""))


def run(args: argparse.Namespace) -> int:
    from fgsim.validate import case_list, write_report

    out_dir = Path(args.out_dir)
    if args.measure:
        try:
            import torch  # noqa: F401
            import triton  # noqa: F401
        except ImportError:
            raise FgsimError("--measure needs torch, triton and fgattn (PYTHONPATH=.:kernels) on a GPU") from None
        require_cuda("validate --measure")
        if not Path(args.traces).is_dir() and args.cases in ("full", "traces"):
            raise FgsimError(f"--traces: {args.traces} is not a directory")
        out_dir.mkdir(parents=True, exist_ok=True) if out_dir.parent.is_dir() else None
        if not out_dir.is_dir():
            raise FgsimError(f"--out-dir: {out_dir} does not exist")
        from fgsim.validate import environment, measure

        env = environment()
        cases = case_list(args.cases, args.seed, args.traces, args.per_trace)
        if args.case_ids:
            want = {c.strip() for c in args.case_ids.split(",") if c.strip()}
            cases = [c for c in cases if c.case_id in want]
            if not cases:
                raise FgsimError(f"no case in list '{args.cases}' matches --case-ids")
        tag = f"-{args.tag}" if args.tag else ""
        csv_path = out_dir / "results" / f"{env['gpu_key']}-{_dt.date.today().isoformat()}{tag}.csv"
        rows = measure(cases, csv_path, rep_ms=args.rep_ms, progress=not args.no_progress, bench=args.bench,
                       rounds=args.rounds, clock_warm_ms=args.clock_warm_ms)
        print(f"{len(rows)} measurements of {len(cases)} cases appended to {csv_path}")
        return 0
    results = args.results
    if results is None:
        results = []
        for p in sorted((REPO / "validation" / "results").glob("*.csv")):
            with p.open() as fh:
                head = fh.readline()
            if "case_id" in head and "measured_ms" in head:  # validation CSVs only (not kernel/capture logs)
                results.append(str(p))
    missing = [r for r in results if not Path(r).is_file()]
    if missing:
        raise FgsimError(f"results file not found: {missing[0]}")
    if not out_dir.is_dir():
        raise FgsimError(f"--out-dir: {out_dir} is not a directory")
    if not args.no_plots:
        from fgsim.fileio import require_matplotlib

        require_matplotlib("the report's plots (or --no-plots)")
    from fgsim.commands._args import numba_notice

    numba_notice()
    rep = write_report(results, out_dir, plots=not args.no_plots, progress=not args.no_progress)
    print(f"report written to {rep}")
    return 0
