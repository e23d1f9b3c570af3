"""``fgsim calibrate``: the one way to get the cost model's parameters for a GPU.

On a GPU: microbenchmarks of the model's ingredients (HBM and L2 streams, the L2 -> shared-memory stream through TMA
and cp.async whose per-SM bytes per clock become the GPU's measured ``l2_port_bytes_per_clk``, load latency, exp2
throughput, row gathers at given rows / bytes / stages, the SM clock under a sustained load; ``fgsim.calibrate_micro``) and the calibration case list
(``validation/cases/calib.csv``: uniform masks, the tuned launch configurations, grids of one and several waves, a
few other launch configurations and the persistent-program settings), all timed with
CUDA graphs in interleaved rounds, clocks sampled under load; then a bounded least-squares fit of the model's
free parameters on those calibration rows only. ``--from-csv`` refits from such a CSV on any machine (it refuses
files without calibration rows) and gives the same result the GPU run wrote. The calibration file records the
commit and source digest of the measured code (``fgsim.provenance``; pass ``FGSIM_COMMIT`` on a device machine,
whose ``.git`` may be stale) and of the fitting code, the input CSVs' SHA-256, the clocks measured under load,
the compiled kernels' registers / shared memory, the measured constants and the fit statistics.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import Any

from fgsim.commands._args import positive_int
from fgsim.errors import FgsimError, counted
from fgsim.fileio import check_csv_file, check_output_path
from fgsim.model.params import MEASURED, MEASURED_FROM

REPO = Path(__file__).resolve().parents[2]


#: efficiencies taken from the microbenchmarks instead of fitted (where the CSV has them): the HBM copy stream and
#: (revision 8) the wgmma stream
MEASURED_EFFICIENCIES = MEASURED
#: unit and method of each measured GPU property (fgsim.hardware.MEASURED_PROPERTIES) the calibration records
PROPERTY_UNITS = {
    "l2_port_bytes_per_clk": ("B/clk per SM", "fgsim calibrate microbenchmark l2_smem: the most bytes per SM clock "
                              "any (TMA | cp.async, 1/2/4 programs per SM) stream of an L2-resident buffer into "
                              "shared memory drew with every SM busy (CUDA-graph timed, interleaved rounds, median; "
                              "at the clock sampled while it ran)"),
    "mufu_exp_per_clk_per_sm": ("exp2/clk per SM", "fgsim calibrate microbenchmark exp2: programs applying exp2 to "
                                "64 x 64 register tiles, 4 and 8 per SM (the best; CUDA events, median of 5, at the "
                                "calibration kernels' clock)"),
    "fp32_flop_per_clk_per_sm": ("FLOP/clk per SM", "fgsim calibrate microbenchmark fp32: programs running two "
                                 "independent FFMA chains per element of 64 x 64 register tiles, 4 and 8 per SM "
                                 "(the best; 2 FLOP per FFMA; CUDA events, median of 5, at the calibration kernels' "
                                 "clock)"),
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("calibrate", help="fit the cost model to this GPU (GPU; or --from-csv on a CPU)",
                              description=__doc__)
    p.add_argument("--out", help="calibration file to write (default fgsim/data/calibrations/<gpu>.json)")
    p.add_argument("--cases", default="calib", choices=("calib", "tiny"),
                   help="case list (tiny: a CPU interpreter smoke test)")
    p.add_argument("--csv", help="measurement CSV to write (default validation/results/calib-<gpu>-<date>.csv)")
    p.add_argument("--from-csv", nargs="+", help="fit from these measurement CSVs instead of measuring")
    p.add_argument("--gpu", help="GPU description name (default: detected / read from the measurements)")
    p.add_argument("--rounds", type=positive_int, default=3, help="interleaved timing rounds per case (median recorded)")
    p.add_argument("--workers", type=positive_int, default=12, help="processes compiling kernels before timing")
    p.add_argument("--measure-only", action="store_true",
                   help="measure and write the CSV, fit later with --from-csv (e.g. on another machine)")
    p.add_argument("--ops", action="store_true",
                   help="calibrate the non-attention operator model instead (GPU): the Wan2.1 models' GEMMs and "
                        "memory-bound operators at their real shapes, cuDNN SDPA, mask predictors -> "
                        "fgsim/data/ops/<gpu>.json (fgsim.opcalibrate)")
    p.add_argument("--interconnect", action="store_true",
                   help="calibrate the GPU description's interconnect block instead (several GPUs, under "
                        "NCCL_NVLS_ENABLE=0 torchrun --nproc-per-node P -m fgsim calibrate --interconnect): NCCL "
                        "all-to-all / all-gather / send-recv and the layout copies at the context-parallel sizes; "
                        "--out: GPU description to write (default: the GPU's own); --from-csv refits "
                        "(fgsim.interconnect)")
    p.add_argument("--fp32-per-score", metavar="JSON",
                   help="only record the softmax-only microbenchmark's FP32 instructions per score "
                        "(fgsim.softmax_micro) to a new JSON file: on a GPU the timed figure and the SASS count, on "
                        "a CPU the offline sm_90 SASS count (needs Triton with the sm_90 backend); field "
                        "fp32_per_score_measured, used by no fit yet")
    p.add_argument("--softmax-loop", metavar="LOOP[,LOOP]",
                   help="with --fp32-per-score: the microbenchmark's loop(s), timed interleaved in one run, the first "
                        "the record's headline: feedback (default; P fed back into the next scores) or independent "
                        "(scores independent of P, as the real tile's next S = QK^T; session 16, M9)")
    p.add_argument("--fp32-per-score-from", metavar="JSON",
                   help="the GPU record of --fp32-per-score (softmax-only microbenchmark) for the fit: fp32_per_score "
                        "pinned at its timed figure where the loop is not MUFU-bound, else fitted within [SASS count, "
                        "timed figure] (session 16, calib15); without it fp32_per_score is fitted")
    p.add_argument("--fp32-per-score-rule", choices=("auto", "bound"), default=None,
                   help="with --fp32-per-score-from: auto (default: pin unless MUFU-bound) or bound (always fitted "
                        "within [SASS count, timed figure]; session 16, M9's pre-registered plan for calib16)")
    p.add_argument("--no-progress", action="store_true")


def _measure(args: argparse.Namespace) -> tuple[Path, str]:
    try:
        import torch
        import triton  # noqa: F401
    except ImportError:
        raise FgsimError("calibrate needs torch, triton and fgattn (PYTHONPATH=.:kernels) on a GPU; "
                         "use --from-csv to refit on a CPU") from None
    import csv

    from fgsim.commands.validate import require_cuda

    require_cuda("calibrate", "--from-csv refits from earlier measurements on a CPU")
    from fgsim.calibrate_micro import run_micro
    from fgsim.provenance import ClockSampler, environment
    from fgsim.validation.cases import load_case_list
    from fgsim.validation.measure import RESULT_FIELDS, measure_cases, precompile

    env = environment()
    gpu_name = args.gpu or env["gpu_key"]
    cases = load_case_list(args.cases)
    date = _dt.date.today().isoformat()
    out_csv = Path(args.csv) if args.csv else REPO / "validation" / "results" / f"calib-{gpu_name}-{date}.csv"
    if out_csv.exists():
        raise FgsimError(f"--csv: {out_csv} exists; calibration measurements go to a new file")
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with ClockSampler() as clocks:
        if torch.cuda.is_available() and args.cases != "tiny":
            precompile(cases, workers=args.workers)
        sms = int(env.get("device_sm_count") or 0) or (torch.cuda.get_device_properties(0).multi_processor_count
                                                 if torch.cuda.is_available() else 2)
        mark = clocks.mark()
        micro = run_micro(sms, quick=args.cases == "tiny")
        smry = clocks.summary(mark)
        with out_csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=RESULT_FIELDS, extrasaction="ignore")
            w.writeheader()
            for r in micro:
                w.writerow({**env, **smry, **r})
        measure_cases(cases, out_csv, rounds=args.rounds, progress=not args.no_progress, clocks=clocks, env=env)
    print(f"measurements written to {out_csv}")
    return out_csv, gpu_name


def _fp32_per_score(args: argparse.Namespace) -> int:
    """``--fp32-per-score JSON``: the softmax microbenchmark alone (checked before any work)."""
    import os

    clash = [o for o, v in (("--from-csv", args.from_csv), ("--ops", args.ops), ("--interconnect", args.interconnect),
                            ("--measure-only", args.measure_only), ("--out", args.out), ("--csv", args.csv),
                            ("--fp32-per-score-from", getattr(args, "fp32_per_score_from", None)),
                            ("--fp32-per-score-rule", getattr(args, "fp32_per_score_rule", None))) if v]
    if clash:
        raise FgsimError(f"--fp32-per-score: runs alone, not with {clash[0]}")
    from fgsim.softmax_micro import parse_loops

    loops = parse_loops(args.softmax_loop if args.softmax_loop is not None else "feedback")
    out = check_output_path(args.fp32_per_score, "--fp32-per-score", (".json",))
    if out.exists():
        raise FgsimError(f"--fp32-per-score: {out} exists; measurements go to a new file")
    try:
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    from fgsim.softmax_micro import run as run_softmax

    res = run_softmax(out, gpu=gpu, commit=os.environ.get("FGSIM_COMMIT", ""), loops=loops)
    print(f"fp32_per_score_measured {res['fp32_per_score_measured']:.3f} FP32 instr/score ({res['source']}, loop "
          f"{res['loop']}, tile "
          f"{res['tile']}, {res['device']}) -> {out}")
    for tile, v in res["tiles"].items():
        print(f"  {tile}: " + ", ".join(f"{k} {float(x):.3f}" for k, x in v.items()))
    return 0


def check_from_csv(files: list[str]) -> None:
    """``--from-csv``: every file a readable measurement CSV (one bounded pass each; :func:`check_csv_file`), none
    listed twice (its rows would count twice in the fit); FgsimError naming the file before any work."""
    seen: dict[str, str] = {}
    for f in files:
        check_csv_file(f, "measurement CSV", "--from-csv")
        key = str(Path(f).resolve())
        if key in seen:
            raise FgsimError(f"--from-csv: {f} is listed twice (as {seen[key]}): its rows would count twice")
        seen[key] = f


#: Longest measured time a calibration row may claim (ms): no calibration kernel or microbenchmark runs for minutes.
MAX_MEASURED_MS = 1e5


def _finite(text: str | None, what: str, lo: float = 0.0, hi: float = float("inf")) -> str:
    """'' when ``text`` is a number in (lo, hi], else what is wrong with it."""
    import math

    try:
        v = float(text or "nan")
    except ValueError:
        return f"{what} must be a number, got {text!r}"
    if not (math.isfinite(v) and lo < v <= hi):
        return f"{what} must be a number in ({lo:g}, {hi:g}], got {text!r}"
    return ""


def calib_row_problem(row: dict[str, str]) -> str:
    """What makes a calibration row (split calib) unfit for the fit, or '': its measured time not a positive
    number of at most :data:`MAX_MEASURED_MS`, a clock that is not a positive number, a kernel row's sizes out of
    range or fields the case and launch configuration cannot be rebuilt from, a missing trace, a microbenchmark
    row whose ``micro_args`` is not a JSON object of finite numbers."""
    import json

    from fgsim.commands.validate import _row_problem

    problem = _finite(row.get("measured_ms"), "measured_ms", 0.0, MAX_MEASURED_MS)
    for col in ("sm_clock_mhz", "mem_clock_mhz"):
        if not problem and (row.get(col) or "").strip():
            problem = _finite(row[col], col, 0.0, 1e5)
    if problem:
        return problem
    if (row.get("kind") or "kernel") == "kernel":
        problem = _row_problem({**row, "kind": "kernel"})
        if problem:
            return problem
        from fgsim.validation.cases import case_from_row, repo_path
        from fgsim.validation.report import row_config

        try:
            case_from_row(dict(row), kernel=row["kernel"])
            row_config(row)
        except (KeyError, ValueError, TypeError) as exc:
            return f"not a kernel measurement ({type(exc).__name__}: {str(exc)[:80]})"
        trace = repo_path(row.get("trace") or "")
        if trace and not Path(trace).is_file():
            return f"trace {row['trace']} not found"
        return ""
    if row.get("kind") == "micro":
        from fgsim.fileio import finite_float

        def no_constant(name: str) -> float:
            raise ValueError(f"{name} is not a finite number")

        try:
            args = json.loads(row.get("micro_args") or "", parse_constant=no_constant, parse_float=finite_float)
        except (ValueError, RecursionError) as exc:
            return f"micro_args is not a JSON object of finite numbers ({str(exc)[:80]})"
        if not isinstance(args, dict):
            return "micro_args is not a JSON object"
        return ""
    return f"kind must be kernel or micro, got {row.get('kind')!r}"


#: interconnect measurement rows (``fgsim.interconnect``): op names and each numeric column's range
INTERCONNECT_OPS = ("alltoall", "allgather", "p2p", "copy", "permute")
INTERCONNECT_RANGES = {"bytes": (0.0, 2.0**50), "median_s": (0.0, 3600.0), "P": (0.0, 4096.0)}


def check_interconnect_rows(files: list[str]) -> None:
    """``--interconnect --from-csv``: FgsimError naming file and row when a measurement row's bytes, median_s or P
    is not a number in range (NaN, negative, 1e308: the fit wrote them into the GPU description)."""
    import csv

    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            for i, r in enumerate(csv.DictReader(fh), start=1):
                if r.get("op") not in INTERCONNECT_OPS:
                    continue
                for col, (lo, hi) in INTERCONNECT_RANGES.items():
                    problem = _finite(r.get(col), col, lo, hi)
                    if not problem and col == "P" and float(r[col]) != int(float(r[col])):
                        problem = f"P must be a whole number of GPUs, got {r[col]!r}"
                    if problem:
                        raise FgsimError(f"--from-csv: {f}: row {i:,} (op {r['op']}): {problem}")


def check_calib_rows(rows: list[dict[str, str]]) -> None:
    """FgsimError naming the file and line of the first calibration row :func:`calib_row_problem` refuses."""
    line: dict[str, int] = {}
    for r in rows:
        f = r.get("_file", "")
        line[f] = line.get(f, 1) + 1  # header is line 1; a quoted line break would shift this, rare in these CSVs
        if r.get("split") != "calib" or r.get("measured_ms") in ("", None):
            continue
        problem = calib_row_problem(r)
        if problem:
            raise FgsimError(f"--from-csv: {f}: row {line[f] - 1:,} (case {r.get('case_id')!r}): {problem}")


def _check_modes(args: argparse.Namespace) -> None:
    """FgsimError for options that contradict each other (one would be ignored silently otherwise)."""
    ops, inter = getattr(args, "ops", False), getattr(args, "interconnect", False)
    if ops and inter:
        raise FgsimError("--ops: calibrates the operator model; --interconnect the interconnect: one at a time")
    if ops and args.from_csv:
        raise FgsimError("--from-csv: not with --ops (the operator model is measured and fitted in one run on a GPU)")
    if (ops or inter) and args.measure_only:
        raise FgsimError(f"--measure-only: not with {'--ops' if ops else '--interconnect'} (it measures and fits in "
                         "one run)")
    if args.from_csv and args.measure_only:
        raise FgsimError("--measure-only: not with --from-csv (which fits earlier measurements, measuring nothing)")
    if args.from_csv and args.csv:
        raise FgsimError("--csv: the measurement CSV to write; with --from-csv nothing is measured")
    if args.gpu and not ops:  # (--ops names its output file after --gpu: a GPU without a description is allowed)
        from fgsim.hardware import load_gpu

        try:
            load_gpu(args.gpu)  # an unknown GPU fails before any work
        except FgsimError as exc:
            raise FgsimError(f"--gpu: {exc}") from None


def _check_outputs(args: argparse.Namespace) -> None:
    """--out and --csv writable, with the right extension, neither one of the inputs nor each other."""
    if args.out:
        check_output_path(args.out, "--out", (".json",))
    if args.csv:
        check_output_path(args.csv, "--csv", (".csv",))
    inputs = {str(Path(f).resolve()): f for f in [*(args.from_csv or []),
                                                   *([args.fp32_per_score_from] if getattr(args, "fp32_per_score_from",
                                                                                            None) else [])]}
    for opt, out in (("--out", args.out), ("--csv", args.csv)):
        if out and str(Path(out).resolve()) in inputs:
            raise FgsimError(f"{opt}: {out} is also an input ({inputs[str(Path(out).resolve())]}): write elsewhere")


def _ops_preflight() -> None:
    """``--ops``: FgsimError in one line, before any work, naming what this machine lacks (torch, triton,
    diffusers, fgattn, a CUDA GPU)."""
    import importlib.util

    def importable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError, AttributeError):
            return False

    missing = [m for m in ("torch", "triton", "diffusers") if not importable(m)]
    if not importable("fgattn"):
        missing.append("fgattn (PYTHONPATH=.:kernels)")
    if missing:
        raise FgsimError(f"--ops needs {', '.join(missing)}, not importable here; it times the operators on a "
                         "CUDA GPU")
    import torch

    if not torch.cuda.is_available():
        raise FgsimError("--ops times the operators on a CUDA GPU and none is visible (torch.cuda.is_available() "
                         "is False)")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "fp32_per_score", None):
        return _fp32_per_score(args)
    if getattr(args, "softmax_loop", None) is not None:
        raise FgsimError("--softmax-loop: only with --fp32-per-score (the softmax microbenchmark)")
    if getattr(args, "fp32_per_score_rule", None) and not getattr(args, "fp32_per_score_from", None):
        raise FgsimError("--fp32-per-score-rule: only with --fp32-per-score-from (the fit's softmax record)")
    if getattr(args, "fp32_per_score_from", None) and (args.ops or args.interconnect):
        raise FgsimError("--fp32-per-score-from: for the attention cost model's fit, not with --ops / --interconnect")
    _check_modes(args)
    _check_outputs(args)
    if args.from_csv:
        check_from_csv(args.from_csv)
    if getattr(args, "interconnect", False):
        from fgsim.interconnect import run_interconnect

        if args.from_csv:
            check_interconnect_rows(args.from_csv)

        return run_interconnect(args)
    if getattr(args, "ops", False):
        _ops_preflight()
        from fgsim.opcalibrate import run_ops

        return run_ops(args.out, args.csv, args.gpu)
    from fgsim.calibrate_micro import measured_constants
    from fgsim.calibration import CAL_DIR, fit_rows, new_calibration, save_calibration
    from fgsim.hardware import load_gpu
    from fgsim.model.params import SPECS, ModelParams
    from fgsim.provenance import file_sha256
    from fgsim.validation.measure import resources_table
    from fgsim.validation.report import read_results

    fp32_from: dict[str, Any] | None = None
    if getattr(args, "fp32_per_score_from", None):
        from fgsim.softmax_micro import fit_constraint

        fp32_from = fit_constraint(args.fp32_per_score_from, args.fp32_per_score_rule or "auto")  # fails before work
    if args.from_csv:
        missing = [f for f in args.from_csv if not Path(f).is_file()]
        if missing:
            raise FgsimError(f"--from-csv: {missing[0]}: no such file")
        csvs = [Path(f) for f in args.from_csv]
        gpu_name = args.gpu
    else:
        path, gpu_name = _measure(args)
        csvs = [path]
        if args.measure_only:
            print(f"fit with: python -m fgsim calibrate --from-csv {path}")
            return 0
    rows = read_results(csvs)
    cal_rows = [r for r in rows if r.get("split") == "calib" and r.get("measured_ms") not in ("", None)]
    if not cal_rows:
        raise FgsimError(f"{', '.join(map(str, csvs))}: no calibration rows (split=calib); calibrate fits "
                         "calibration measurements only")
    gpu_name = gpu_name or cal_rows[0].get("gpu_key") or ""
    if not gpu_name:
        raise FgsimError("--gpu: the measurements do not name their GPU; pass --gpu")
    gpu = load_gpu(gpu_name, measured=False)  # the description file; this calibration's measurements replace it
    if any("cpu" in (r.get("gpu_name") or "cpu").lower() for r in cal_rows):
        raise FgsimError("measurements come from the CPU interpreter, not a GPU: they are never written as a "
                         "GPU's calibration")
    check_calib_rows(rows)
    from fgsim.commands._args import numba_notice

    numba_notice()
    krows = [r for r in cal_rows if (r.get("kind") or "kernel") == "kernel"]
    mrows = [r for r in cal_rows if r.get("kind") == "micro"]
    clocks = sorted(float(r["sm_clock_mhz"]) for r in krows if (r.get("sm_clock_mhz") or "").strip())
    clock = clocks[len(clocks) // 2] if clocks else 0.0
    const = measured_constants(mrows, clock, gpu)
    start = ModelParams()
    fixed: dict[str, float] = {}
    # HBM efficiency: measured directly by the stream microbenchmark, not fitted. The L2 efficiency is fitted; two
    # measurements are recorded in fit['measured'] as checks: the L2 -> shared-memory stream l2_smem with every SM
    # busy (revision 6, l2_smem_eff; CUDA-graph timed) and the plain-load L2 stream (a 50 us kernel timed with
    # events, 5.3-7.3 TB/s in four sessions on the same build; validation/MODEL_NOTES.md, revisions 4 and 6)
    # revision 8: the tensor-core efficiency from the mma microbenchmark (wgmma at the widest N), when measured
    for k in MEASURED_EFFICIENCIES:
        src = MEASURED_FROM.get(k, k)
        if src in const:
            lo, hi = SPECS[k].lo, SPECS[k].hi
            fixed[k] = min(max(const[src], lo), hi)
    bounds: dict[str, tuple[float, float]] = {}
    if fp32_from is not None:  # session 16: the softmax microbenchmark's timed FP32 work per score
        if "pin" in fp32_from:
            const["fp32_per_score_measured"] = fp32_from["pin"]
            fixed["fp32_per_score"] = fp32_from["pin"]
        else:
            bounds["fp32_per_score"] = fp32_from["bounds"]
    start = start.replace(**fixed)
    free = [n for n in SPECS if n not in fixed]
    # measured GPU properties: the L2 -> SM bytes per clock one SM draws at full occupancy (microbenchmark l2_smem,
    # TMA and cp.async); without such rows the GPU file's spec value stays (an older CSV refits as it was made)
    from fgsim.hardware import MEASURED_PROPERTIES, with_measured

    props = {k: float(const[k]) for k in MEASURED_PROPERTIES if k in const}
    gpu = with_measured(gpu, props, "this calibration")
    gpu_properties = {k: {"value": v, "unit": PROPERTY_UNITS[k][0], "measured_by": PROPERTY_UNITS[k][1],
                          "gpu_file_value": getattr(load_gpu(gpu_name, measured=False), k)}
                      for k, v in props.items()}
    # fitted: the calibration kernel runs. The gather microbenchmark rows are recorded and scored, not fitted: on
    # the development set a fit that included them was worse on every axis (validation/MODEL_NOTES.md)
    # compiled figures also from the recorded, not fitted, rows of a launch entry's tl fallback (split calib-tl:
    # calib13 keeps the tl rows its contig re-measurement replaced, so the fallback that return_lse / context-parallel
    # calls run keeps its compiled registers and spills); the fitted rows' figures win on a shared key
    tl_rows = [r for r in rows if r.get("split") == "calib-tl" and (r.get("kind") or "kernel") == "kernel"]
    resources = resources_table(tl_rows + krows)
    params, fit = fit_rows(krows, gpu.name, start=start, resources=resources, free=free, gpu_properties=props,
                           bounds=bounds or None)
    gath = [r for r in mrows if r.get("micro") == "gather"]
    if gath:
        import numpy as np

        from fgsim.calibrate_micro import predict_micro

        e = np.array([abs(predict_micro(r, gpu, params) / (float(r["measured_ms"]) * 1e-3) - 1) * 100 for r in gath])
        fit["micro_gather_not_fitted"] = {"n": int(e.size), "mape": float(e.mean()), "max_ape": float(e.max())}
    fit["fixed_by_measurement"] = fixed
    fit["measured"] = const
    if fp32_from is not None:
        src = Path(args.fp32_per_score_from).resolve()
        fit["fp32_per_score_from"] = {**{k: v for k, v in fp32_from.items() if k != "bounds"},
                                      **({"bounds": list(fp32_from["bounds"])} if "bounds" in fp32_from else {}),
                                      "path": str(src.relative_to(REPO)) if src.is_relative_to(REPO) else str(src),
                                      "sha256": file_sha256(src)}
    inputs = [{"path": str(p), "sha256": file_sha256(p), "rows": sum(1 for r in rows if r["_file"] == str(p))}
              for p in csvs]
    r0 = krows[0] if krows else cal_rows[0]
    mem = sorted(float(r["mem_clock_mhz"]) for r in krows if (r.get("mem_clock_mhz") or "").strip())
    device = {"gpu_name": r0.get("gpu_name", ""), "sm_clock_mhz": clock, "mem_clock_mhz": mem[len(mem) // 2] if mem
              else "", "clock_note": "medians of nvidia-smi samples taken while the calibration kernels ran",
              "driver": r0.get("driver", ""), "sm_count": r0.get("device_sm_count", "")}
    if const.get("sustained_clock_mhz"):
        # the SM clock under a sustained tensor-core load (microbenchmark ``sustained_clock``): end-to-end
        # predictions price a whole generation at it (fgsim.endtoend); kernel rows stay at the clock they ran at
        device["sustained_load_clock_mhz"] = const["sustained_clock_mhz"]
    envd = {k: r0.get(k, "") for k in ("torch", "triton", "cuda", "fgsim")}
    cal = new_calibration(gpu.name, params, fit, device, envd, inputs=inputs, resources=resources,
                          commit=r0.get("commit", ""), source_digest=r0.get("source_digest") or "",
                          gpu_properties=gpu_properties)
    out = Path(args.out) if args.out else CAL_DIR / f"{cal.gpu}.json"
    save_calibration(cal, out)
    print(f"calibration for {cal.gpu} written to {out}: {counted(fit['n'], 'row')}, fit MAPE {fit['mape']:.2f} %, "
          f"max {fit['max_ape']:.2f} %")
    for k, v in props.items():
        print(f"  measured {k} = {v:.2f} {PROPERTY_UNITS[k][0]} (GPU file: {gpu_properties[k]['gpu_file_value']:g})")
    if fp32_from is not None:
        print(f"  fp32_per_score = {params.fp32_per_score:.3f} FP32 instr/score ({fp32_from['rule']}; timed "
              f"{fp32_from['timed']:.3f}, SASS {fp32_from['sass']:.3f}, tile {fp32_from['tile']})")
    for k, v in sorted(fit["per_kind"].items()):
        print(f"  {k:16s} n={v['n']:3d}  MAPE {v['mape']:6.2f} %  max {v['max_ape']:6.2f} %")
    return 0
