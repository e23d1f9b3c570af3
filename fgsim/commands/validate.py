"""``fgsim validate``: measure a case list on a GPU (``--measure``), or score measurements and write the report.

``--measure --cases dev|test`` times the committed case list (``validation/cases/<list>.csv``) with CUDA-graph
timing in interleaved rounds (green contexts for SM partitions) into a results CSV. Without ``--measure`` (CPU):
predicts every measured row with the committed calibration and writes ``validation/REPORT.md`` with the error per
axis (tuned configs, non-default launch configs, SM partitions, fp16, traces) for the development and the frozen
test set, next to the calibration fit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import Any

from fgsim.commands._args import positive_int
from fgsim.errors import FgsimError, counted

REPO = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("validate", help="validate the model: --measure on a GPU, else write the report",
                              description=__doc__)
    p.add_argument("--measure", action="store_true", help="time fgattn's kernels over a case list (GPU)")
    p.add_argument("--cases", default="test",
                   choices=("dev", "test", "test3", "dev4", "test4", "dev5", "test5", "test6", "test7", "test8", "test9",
                            "test10", "test11", "test12", "test13", "test14", "test15", "test16", "test17", "test18", "calib",
                            "tiny"),
                   help="case list to measure (validation/cases/<list>.csv; tiny: CPU smoke test)")
    p.add_argument("--csv", help="results CSV to write with --measure (default "
                   "<out-dir>/results/<gpu>-<date>-<list>.csv)")
    p.add_argument("--case-ids", help="comma-separated case ids to measure (default: the whole list)")
    p.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds per case (median recorded)")
    p.add_argument("--workers", type=positive_int, default=12, help="processes compiling kernels before timing")
    p.add_argument("--dev", nargs="*", default=None, help="development-set results CSVs to report on (neither --dev nor --test: the "
                   "CSVs validation/costmodel_summary_rescored.json, else costmodel_summary.json, was scored from)")
    p.add_argument("--test", nargs="*", default=None, help="frozen test-set results CSVs to report on (with a "
                   "calibration other than the one of the blind scoring in validation/costmodel_summary.json: a "
                   "rescoring, written to costmodel_summary_rescored.json; the blind record and band stay)")
    p.add_argument("--out-dir", default=str(REPO / "validation"),
                   help="report directory (REPORT.md; default <repo>/validation; elsewhere the summary JSON "
                   "and extrapolation band are written beside the report, not over the committed ones)")
    p.add_argument("--no-progress", action="store_true")


def require_cuda(what: str, hint: str = "") -> None:
    """FgsimError before any work when no CUDA GPU is visible (the Triton CPU interpreter measures no GPU)."""
    import torch

    if not torch.cuda.is_available():
        raise FgsimError(f"{what} times kernels on a CUDA GPU and none is visible (torch.cuda.is_available() is "
                         "False); the Triton CPU interpreter's timings describe no GPU" + (f"; {hint}" if hint else ""))


#: Columns every results CSV that ``validate`` scores has (``fgsim.validation.measure.RESULT_FIELDS`` has more).
RESULT_COLUMNS = ("kind", "case_id", "kernel", "measured_ms")


def check_out_dir(path: str) -> Path:
    """``--out-dir``: an existing writable directory, or a new one whose parent is (created when the command
    writes); FgsimError before any work otherwise."""
    import os

    from fgsim.fileio import check_output_path

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FgsimError(f"--out-dir: {path} is not a directory")
    if p.is_dir():
        check_output_path(p / "REPORT.md", "--out-dir", (".md",))  # probes that files can be created there
    else:
        parent = p.resolve().parent
        if not parent.is_dir():
            raise FgsimError(f"--out-dir: {path}: neither it nor its parent directory {parent} exists")
        probe = parent / f".fgsim-probe-{os.getpid()}"
        try:  # access() says yes to root even on read-only file systems such as /proc: try a directory
            probe.mkdir()
            probe.rmdir()
        except OSError:
            raise FgsimError(f"--out-dir: {path} cannot be created (cannot create directories in {parent})") from None
    return p


def check_results_csv(path: str, option: str) -> None:
    """A results CSV to score: a regular file whose header has :data:`RESULT_COLUMNS` (FgsimError naming the
    option and file otherwise), so a wrong file fails before minutes of scoring, not after."""
    import csv

    from fgsim.fileio import bounded_lines, check_csv_file

    try:
        check_csv_file(path, "results CSV", option)  # bounded: size, line and field lengths, UTF-8
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(bounded_lines(fh, path, "results CSV"))
            header = reader.fieldnames or []
            missing = [c for c in RESULT_COLUMNS if c not in header]
            if missing:
                raise FgsimError(f"{option}: {path}: not a results CSV of `fgsim validate --measure` / `calibrate` "
                                 f"(missing columns {', '.join(missing)})")
            for line, row in enumerate(reader, start=2):
                problem = _row_problem(row)
                if problem:
                    raise FgsimError(f"{option}: {path}: line {line} (case {row.get('case_id')!r}): {problem}")
    except FgsimError as exc:
        raise FgsimError(exc if str(exc).startswith(option) else f"{option}: {exc}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FgsimError(f"{option}: {path}: not a readable CSV ({exc})") from None


#: Largest bool mask one case may regenerate for scoring (heads x query blocks x N bytes; the committed lists'
#: largest is 1.7 GiB), as `fgsim synth` bounds one entry.
MAX_CASE_MASK_BYTES = 2 << 30


def _has_rows(path: str) -> bool:
    """Whether a results CSV (checked by :func:`check_results_csv`) has a row beyond its header."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.DictReader(fh), None) is not None


def _row_problem(row: dict[str, str]) -> str:
    """What makes a kernel row of a results CSV unscorable in bounded memory (sizes out of range), or ''."""
    import math

    from fgsim.trace import MAX_HEADS, MAX_TOKENS

    if row.get("kind") != "kernel" or not row.get("n_tokens"):
        return ""
    try:
        n, heads, m = int(row["n_tokens"]), int(row.get("heads") or 0), int(row.get("block_m") or 0)
        density = float(row.get("density") or 0)
    except ValueError as exc:
        return f"bad number ({exc})"
    if not 1 <= n <= MAX_TOKENS:
        return f"n_tokens must be in 1..{MAX_TOKENS:,}, got {n:,}"
    if not 1 <= heads <= MAX_HEADS:
        return f"heads must be in 1..{MAX_HEADS}, got {heads}"
    if m not in (16, 32, 64, 128):
        return f"block_m must be 16, 32, 64 or 128, got {m}"
    if not (math.isfinite(density) and 0 <= density <= 1):
        return f"density must be in [0, 1], got {row.get('density')!r}"
    if row.get("status", "ok") == "ok":  # a row that ran: its time is what the report scores
        try:
            ms = float(row.get("measured_ms") or "nan")
        except ValueError:
            ms = math.nan
        if not (math.isfinite(ms) and ms > 0):
            return f"measured_ms must be a positive number of milliseconds, got {row.get('measured_ms')!r}"
    if heads * -(-n // m) * n > MAX_CASE_MASK_BYTES:
        return f"its mask (heads x N/M x N = {heads * -(-n // m) * n:,} bytes) exceeds {MAX_CASE_MASK_BYTES:,}"
    return ""


def _check_mask_generator(files: list[str]) -> None:
    """FgsimError before scoring when a row's mask comes from fgattn's generator (torch) and torch or fgattn is not
    importable (a core install: `pip install -e .`), instead of failing minutes into the scoring."""
    import csv
    import importlib.util

    from fgsim.validation.cases import TORCH_STRUCTURES

    if importlib.util.find_spec("torch") is not None:
        try:
            import fgattn.masks  # noqa: F401
            return
        except ImportError:
            pass
    for f in files:
        with open(f, newline="") as fh:
            need = {r.get("structure") for r in csv.DictReader(fh)} & set(TORCH_STRUCTURES)
        if need:
            raise FgsimError(f"{f}: rows of structure {', '.join(sorted(need))} regenerate their masks with fgattn "
                             "(torch), which is not importable here: pip install -e '.[kernels]'")


#: Seconds the report takes per measured row on a 2-core machine (each row is predicted by the cost model; the
#: committed 1,986 rows took 5 min 10 s, 2026-12-01).
SECONDS_PER_ROW = 0.16


def _announce(files: list[str]) -> None:
    """One line on stderr before scoring that takes more than a few seconds: how many rows, about how long."""
    import csv
    import sys

    rows = 0
    for f in files:
        with open(f, newline="") as fh:
            rows += sum(1 for _ in csv.DictReader(fh))
    seconds = rows * SECONDS_PER_ROW
    if seconds > 2:
        took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        print(f"fgsim validate: scoring {counted(rows, 'measured row', fmt=',')} of "
              f"{counted(len(files), 'results CSV')} with the committed "
              f"calibration (about {took} on 2 cores) ...", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    out_dir = check_out_dir(args.out_dir) if not args.measure or not args.csv else Path(args.out_dir)
    if args.measure:
        try:
            import torch  # noqa: F401
            import triton  # noqa: F401
        except ImportError:
            raise FgsimError("--measure needs torch, triton and fgattn (PYTHONPATH=.:kernels) on a GPU") from None
        if args.cases != "tiny":
            require_cuda("validate --measure")
        from fgsim.fileio import check_output_path
        from fgsim.provenance import ClockSampler, environment
        from fgsim.validation.cases import load_case_list
        from fgsim.validation.measure import measure_cases, precompile

        if args.csv:
            check_output_path(args.csv, "--csv", (".csv",))
        cases = load_case_list(args.cases)
        if args.case_ids:
            want = {c.strip() for c in args.case_ids.split(",") if c.strip()}
            cases = [c for c in cases if c.case_id in want]
            if not cases:
                raise FgsimError(f"--case-ids: no case in list '{args.cases}' matches")
        env = environment()
        csv_path = Path(args.csv) if args.csv else \
            out_dir / "results" / f"{env['gpu_key']}-{_dt.date.today().isoformat()}-{args.cases}.csv"
        with ClockSampler(period_s=0.1) as clocks:  # short cases get a sample too
            precompile(cases, workers=args.workers)
            rows = measure_cases(cases, csv_path, rounds=args.rounds, progress=not args.no_progress, clocks=clocks,
                                 env=env)
        print(f"{counted(len(rows), 'measurement')} of {counted(len(cases), 'case')} appended to {csv_path}")
        return 0
    from fgsim.validation.report import committed_lists, write_report

    if args.dev is None and args.test is None:  # rescore the committed results (without them: a report of nothing)
        from fgsim.validation.report import RESCORED_PATH, SUMMARY_PATH

        if not SUMMARY_PATH.is_file() and not RESCORED_PATH.is_file():  # a wheel install: no validation/
            raise FgsimError("validate without --dev / --test rescores the repository's committed results "
                             f"(validation/results/), which this install lacks ({SUMMARY_PATH.parent} has none): "
                             "run it in a checkout (pip install -e .) or pass --dev / --test CSVs")
        args.dev, args.test = committed_lists()
    for opt, files in (("--dev", args.dev), ("--test", args.test)):
        if files is not None and not files:
            raise FgsimError(f"{opt}: no results CSV given (a report of nothing)")
        for f in files or []:
            check_results_csv(f, opt)
    if not any(_has_rows(f) for f in [*(args.dev or []), *(args.test or [])]):
        raise FgsimError(f"{', '.join([*(args.dev or []), *(args.test or [])])}: no measured rows to score")
    files = [*(args.dev or []), *(args.test or [])]
    _check_mask_generator(files)
    _announce(files)
    rep = write_report(out_dir, dev=args.dev, test=args.test)
    print(f"report written to {rep}")
    return 0
