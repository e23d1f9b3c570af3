"""``fgsim calibrate``: run the calibration microbenchmarks on this GPU and fit the model's parameters.

Microbenchmarks (synthetic UNIFORM random masks only, never the scored cases): fg / block / dense at several
densities, N, D and M (gather cost per row against contiguous tiles, index loads, per-CTA cost), dense tile
throughput against BLOCK_N and num_stages, tiny grids (launch overhead), and one large bf16 GEMM (the GEMM
efficiency used end-to-end). The fit is scipy least squares on log(predicted/measured).
``--from-csv`` refits from earlier measurements on any machine (no GPU).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.commands._args import positive_int
from fgsim.errors import FgsimError

REPO = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("calibrate", help="fit the cost model to this GPU (GPU; or --from-csv on a CPU)",
                              description=__doc__)
    p.add_argument("--out", help="calibration file to write (default fgsim/data/calibrations/<gpu>.json)")
    p.add_argument("--cases", default="calib", choices=("calib", "tiny"), help="case list (tiny: CPU interpreter test)")
    p.add_argument("--csv", help="where to append the raw measurements (default next to --out)")
    p.add_argument("--from-csv", nargs="+", help="fit from these measurement CSVs instead of measuring")
    p.add_argument("--gpu", help="GPU description name (default: detected from the measurements)")
    p.add_argument("--rep-ms", type=positive_int, default=50, help="do_bench rep time per measurement (ms)")
    p.add_argument("--no-progress", action="store_true")


def _prepare(rows: list[dict[str, str]], gpu_name: str) -> tuple[list[Any], np.ndarray]:
    from fgsim.costmodel import counts_m_n
    from fgsim.validate import case_counts, case_from_row, row_config

    prepared, meas, cache = [], [], {}
    for r in rows:
        case = case_from_row(r)
        cfg = row_config(r, gpu_name)
        _, n = counts_m_n(cfg, case.block_m)
        if case.case_id not in cache:
            cache[case.case_id] = case_counts(case, sorted({1, case.block_m}))
        c = cache[case.case_id][n if n else 1]
        prepared.append((c, case.n_tokens, cfg))
        meas.append(float(r["measured_ms"]) * 1e-3)
    return prepared, np.array(meas)


def fit_rows(rows: list[dict[str, str]], gpu_name: str) -> tuple[Any, dict[str, Any]]:
    """Fit ModelParams to measured rows (seconds) of ``gpu_name``."""
    from fgsim.calibration import fit_params
    from fgsim.costmodel import (
        BUSY,
        INTERLEAVE,
        PARAM_BOUNDS,
        TILE_SCALE,
        ModelParams,
        config_key,
        occupancy,
        predict_counts,
    )
    from fgsim.hardware import load_gpu

    gpu = load_gpu(gpu_name)
    prepared, meas = _prepare(rows, gpu.name)
    if len(prepared) < 3:
        raise FgsimError(f"only {len(prepared)} measurements: too few to calibrate")

    def predict(p: ModelParams) -> np.ndarray:
        return np.array([predict_counts(c, n, cfg, gpu, p)[0] for c, n, cfg in prepared])

    # free: every global parameter plus one tile factor per launch configuration in the measurements;
    # the launch terms start off zero so the fit can move them (x_scale follows the start value)
    keys = sorted({config_key(cfg) for _, _, cfg in prepared})
    # and one single-CTA busy fraction and one stall-interleave fraction per configuration that puts several
    # CTAs on an SM; hbm_bw_eff stays at the measured DRAM plateau (the Q/O prologue terms would otherwise
    # trade it against the call-level HBM floor)
    multi = sorted({config_key(cfg) for _, _, cfg in prepared if occupancy(cfg, gpu)[0] > 1})
    free = [n for n in PARAM_BOUNDS if n not in ("busy_scale", "hbm_bw_eff")] + [f"{TILE_SCALE}/{k}" for k in keys] + \
        [f"{BUSY}/{k}" for k in multi] + [f"{INTERLEAVE}/{k}" for k in multi]
    start = ModelParams(busy={k: 0.5 for k in multi}, interleave={k: 0.4 for k in multi}).replace(**{f"host_floor_us_{k}": 15.0 for k in ("fg", "block", "dense")},
                                  **{f"launch_extra_us_{k}": 2.0 for k in ("fg", "block", "dense")})
    return fit_params(predict, meas, start=start, free=free)


def _gemm_efficiency(gpu_name: str) -> float | None:
    import torch
    import triton

    if not torch.cuda.is_available():
        return None
    from fgsim.hardware import load_gpu

    g = load_gpu(gpu_name)
    a = torch.randn(8192, 5120, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(5120, 5120, device="cuda", dtype=torch.bfloat16)
    ms = triton.testing.do_bench(lambda: a @ b, warmup=10, rep=50, return_mode="median")
    return float(2 * 8192 * 5120 * 5120 / (ms * 1e-3) / (g.peak_tflops("bf16") * 1e12))


def run(args: argparse.Namespace) -> int:
    from fgsim.calibration import CAL_DIR, new_calibration, save_calibration
    from fgsim.fileio import check_output_path
    from fgsim.validate import case_list, read_results

    env: dict[str, Any] = {}
    if args.out:
        check_output_path(args.out, "--out", (".json",))
    if args.csv:
        check_output_path(args.csv, "--csv", (".csv",))
    if args.gpu:
        from fgsim.hardware import load_gpu

        load_gpu(args.gpu)  # an unknown GPU fails before any work
    if args.from_csv:
        missing = [f for f in args.from_csv if not Path(f).is_file()]
        if missing:
            raise FgsimError(f"--from-csv: {missing[0]}: no such file")
        print(f"fgsim calibrate: fitting the model to the measurements of {len(args.from_csv)} file(s) "
              "(least squares over every row: a few minutes) ...", file=sys.stderr, flush=True)
        rows = read_results(args.from_csv)
        gpu_name = args.gpu or (rows[0].get("gpu_key") if rows else None) or "h200"
        gemm = None
    else:
        try:
            import torch  # noqa: F401
            import triton  # noqa: F401
        except ImportError:
            raise FgsimError("calibrate needs torch and triton (and a GPU); use --from-csv to refit on a CPU") from None
        from fgsim.commands.validate import require_cuda

        require_cuda("calibrate", "--from-csv refits from earlier measurements on a CPU")
        from fgsim.validate import environment, measure

        env = environment()
        gpu_name = args.gpu or env["gpu_key"]
        date = _dt.date.today().isoformat()
        out_csv = Path(args.csv) if args.csv else (Path(args.out).parent if args.out else REPO / "validation" / "results") / \
            f"calib-{gpu_name}-{date}.csv"
        measure(case_list(args.cases), out_csv, rep_ms=args.rep_ms, progress=not args.no_progress)
        rows = [r for r in read_results([out_csv]) if r.get("host") == env["host"]]
        gemm = _gemm_efficiency(gpu_name)
        print(f"measurements appended to {out_csv}")
    rows = [r for r in rows if r.get("split") == "calib"] or rows
    if not rows:
        raise FgsimError("no measurements to fit")
    if any("cpu" in (r.get("gpu_name") or "cpu").lower() for r in rows):
        raise FgsimError("measurements come from the CPU interpreter, not a GPU: they are never written as a "
                         "GPU's calibration")
    from fgsim.commands._args import numba_notice

    numba_notice()
    params, fit = fit_rows(rows, gpu_name)
    if gemm is not None:
        fit["gemm_efficiency"] = gemm
    device = {k: env.get(k, rows[0].get(k, "")) for k in ("gpu_name", "sm_clock_mhz", "mem_clock_mhz", "driver")}
    envd = {k: env.get(k, rows[0].get(k, "")) for k in ("torch", "triton", "cuda", "fgsim")}
    meas = [{"case_id": r["case_id"], "kernel": r["kernel"], "n_tokens": r["n_tokens"], "heads": r["heads"],
             "head_dim": r["head_dim"], "block_m": r["block_m"], "density": r["density"],
             "block_n": r["block_n"], "num_stages": r["num_stages"], "measured_ms": float(r["measured_ms"])}
            for r in rows]
    cal = new_calibration(gpu_name, params, fit, device, envd, meas)
    out = Path(args.out) if args.out else CAL_DIR / f"{cal.gpu}.json"
    save_calibration(cal, out)
    print(f"calibration for {cal.gpu} written to {out}: {fit['n']} measurements, fit MAPE {fit['mape']:.2f}%, "
          f"max {fit['max_ape']:.2f}%")
    return 0
