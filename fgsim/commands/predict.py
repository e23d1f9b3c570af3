"""``fgsim predict``: predicted kernel time per call and per run, speedup over the best dense, breakdown.

Speedups are over the best dense configuration of each GPU (the fastest dense launch configuration the trace
allows), named in the header; it is computed even when --kernel leaves dense out. The full run weights each
captured call by the calls of the whole run it stands for (nearest captured step, then nearest layer).
Several GPUs (--gpu h100,h200,b200 or all) are compared side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.commands._args import density, gpu_list, int_range, numba_notice, power_of_two
from fgsim.costmodel import COMPONENTS, iter_kernels
from fgsim.errors import FgsimError, counted

WIDTH = 100  # the table and its notes fit a 100-column terminal
LEGEND = "legend: M x N tile, g keys skipped together, w warps, s stages, CTAs per SM; % = share of time"
EXPLAIN = """\
How to read this table
  per call   mean predicted time of one attention call over the captured calls
  full run   every captured call's time x the number of calls of the whole run it stands for (the nearest
             captured denoising step, then the nearest captured layer), summed over all calls of the run
  speedup    best dense full run / this kernel's full run; the best dense configuration is named above
  config     M = BLOCK_M (queries per CTA), N = BLOCK_N (keys per tile), g = keys skipped together (1: M x 1
             slices, FG-Attn; M: M x M blocks), w = warps per CTA, s = pipeline stages, n/SM = CTAs resident
             per SM
  mma        tensor-core matrix multiplies (Q.K^T and P.V)
  exp        softmax: exponentials and the FP32 rescaling
  memory     K/V loads not hidden behind compute (L2 / HBM bandwidth and latency, index loads)
  tail       SMs idle at the end of the call waiting for the last CTAs (load imbalance)
  fixed      per-CTA setup, epilogue, kernel launch and host overhead"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("predict", help="predict dense / block-sparse / FG attention time from a trace",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace", nargs="?", help=".fgt trace (default: the embedded default trace)")
    hw = p.add_argument_group("hardware")
    hw.add_argument("--gpu", type=gpu_list, default="h200",
                    help="GPU name, .json description, a comma-separated list to compare (h100,h200,b200) or "
                         "'all' (default h200)")
    hw.add_argument("--calibration", help="calibration .json to use instead of the GPU's own")
    kern = p.add_argument_group("kernels")
    kern.add_argument("--kernel", default="fg,block,dense", help="comma-separated kernels to predict: fg, block, "
                      "dense (default all three; the dense reference is computed either way)")
    kern.add_argument("--block-m", type=int, choices=(64, 128), help="query block M (default 128 if the trace "
                      "allows)")
    kern.add_argument("--gran-n", type=int, default=1, choices=(1, 16, 64), help="FG key granularity (default 1)")
    kern.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"), help="element type (default bf16)")
    kern.add_argument("--order", choices=("natural", "lpt"), default="natural",
                      help="CTA launch order of sparse kernels (lpt = FgIndex.order, heaviest first)")
    wi = p.add_argument_group("what-if (applied to every kernel listed; the dense reference keeps the table's)")
    wi.add_argument("--num-stages", type=int_range(1, 8), help="override num_stages (1..8)")
    wi.add_argument("--block-n", type=power_of_two(16, 256), help="override BLOCK_N (power of two, 16..256)")
    e2e = p.add_argument_group("end-to-end (whole generation)")
    e2e.add_argument("--model", help="model config (e.g. wan2.1-1.3b); without a trace, counts are synthesized")
    e2e.add_argument("--resolution", default=None, help="with --model: 480p or 720p (default: the model's first)")
    e2e.add_argument("--compile", action="store_true", help="with --model: the blocks run under torch.compile")
    e2e.add_argument("--baseline", choices=("cudnn", "fgattn"), default="cudnn",
                     help="with --model: dense attention of the baseline and warm-up steps (default cudnn SDPA)")
    e2e.add_argument("--warmup-steps", type=int_range(0, 100000), default=0,
                     help="with --model: dense steps before FG-Attn starts (default 0)")
    e2e.add_argument("--recompute", metavar="STEPS", default=None,
                     help="with --model: denoising steps with mask prediction, e.g. 0,8,15,23,30,40 (default: the "
                          "first sparse step only)")
    e2e.add_argument("--measured", metavar="CSV", help="with --model and --plot: measured pass seconds (columns "
                     "model,resolution,mode,pass_s) drawn next to the prediction in <plot>-e2e.png")
    e2e.add_argument("--density", type=density, default=None,
                     help="with --model and no trace: kept-key density in (0, 1] (default 0.6)")
    cpg = p.add_argument_group("context parallelism (several GPUs, as diffusers' ContextParallelConfig)")
    cpg.add_argument("--cp", metavar="PLAN", help="also predict on P GPUs: ulysses:P (heads split) or ring:P "
                     "(sequence split; needs a trace), comma-separated, e.g. ulysses:2,ring:2 (first GPU only)")
    cpg.add_argument("--balance-heads", action="store_true", help="with --cp ulysses:P: add the what-if of a "
                     "head-to-GPU assignment that balances kept slices")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print JSON instead of a table")
    out.add_argument("--plot", metavar="PNG", help="write a PNG: one GPU: per-SM timeline of one call and time "
                     "per layer; several GPUs: full-run time per kernel and GPU")
    out.add_argument("--explain", action="store_true", help="explain every column after the table")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=WIDTH, subsequent_indent="    ", break_long_words=False,
                         break_on_hyphens=False) or [""]


def _warn(msg: str) -> None:
    print(f"fgsim predict: warning: {msg}", file=sys.stderr)


def _check_measured(path: str) -> None:
    """--measured: a readable CSV with the columns model, resolution, mode, pass_s (checked before any work; its
    rows are read once the prediction is known)."""
    import csv
    import math

    from fgsim.fileio import MAX_JSON_BYTES, bounded_lines, check_csv_file

    check_csv_file(path, "CSV of measured passes", "--measured", max_bytes=MAX_JSON_BYTES)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(bounded_lines(f, path, "CSV of measured passes"))
            header = next(reader, [])
            missing = [c for c in ("model", "resolution", "mode", "pass_s") if c not in header]
            if missing:
                raise FgsimError(f"--measured: {path}: needs columns model, resolution, mode, pass_s (missing "
                                 f"{', '.join(missing)})")
            col = header.index("pass_s")
            for line, row in enumerate(reader, start=2):
                text = row[col] if col < len(row) else ""
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not (math.isfinite(value) and value > 0):
                    raise FgsimError(f"--measured: {path}: line {line}: pass_s must be a positive number of "
                                     f"seconds, got {text[:40]!r}")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FgsimError(f"--measured: {path}: not a readable CSV ({exc})") from None


def _check_args(args: argparse.Namespace) -> list[str]:
    """Every check that needs no work: FgsimError on bad input, warnings for ignored options; the kernels."""
    from fgsim.fileio import check_output_path, require_matplotlib

    kernels = iter_kernels(args.kernel.split(","))
    if len(set(kernels)) != len(kernels):
        raise FgsimError(f"--kernel: a kernel is listed twice in {args.kernel!r}")
    if args.plot:
        check_output_path(args.plot, "--plot", (".png",))
        if args.model:  # the whole generation's stacked bars go beside the plot
            check_output_path(_e2e_png(args.plot), "--plot", (".png",))
        require_matplotlib()
    if args.trace and not Path(args.trace).is_file():
        raise FgsimError(f"{args.trace}: " + ("not a file" if Path(args.trace).exists() else "no such file"))
    if getattr(args, "measured", None):
        _check_measured(args.measured)
        if not args.plot and args.model:
            _warn("--measured is ignored without --plot (it is drawn beside the prediction)")
    if args.calibration:
        from fgsim.fileio import MAX_JSON_BYTES, check_input_file

        try:
            check_input_file(args.calibration, "calibration file", MAX_JSON_BYTES)
        except FgsimError as exc:
            raise FgsimError(f"--calibration: {exc}") from None
    if getattr(args, "recompute", None):
        from fgsim.endtoend import parse_recompute

        parse_recompute(args.recompute)  # bad steps fail before any work
        steps = [x.strip() for x in args.recompute.split(",") if x.strip()]
        twice = [x for i, x in enumerate(steps) if int(x) in {int(y) for y in steps[:i]}]
        if twice:
            raise FgsimError(f"--recompute: step {twice[0]} is listed twice in {args.recompute!r}")
    if getattr(args, "cp", None):
        plans = [x.strip().lower().replace(" ", "") for x in args.cp.split(",") if x.strip()]
        twice = [x for i, x in enumerate(plans) if x in plans[:i]]
        if twice:
            raise FgsimError(f"--cp: {twice[0]} is listed twice in {args.cp!r}")
    if args.model is None:
        defaults = {"density": None, "resolution": None, "compile": False, "baseline": "cudnn", "warmup_steps": 0,
                    "recompute": None, "measured": None}
        for opt, default in defaults.items():
            if getattr(args, opt, default) != default:
                _warn(f"--{opt.replace('_', '-')} is ignored without --model")
    elif args.trace and args.density is not None:
        _warn("--density is ignored with a trace: the trace's own counts are used")
    return kernels


def _check_schedule(args: argparse.Namespace, model: Any) -> None:
    """--warmup-steps and --recompute against the model's denoising steps: a step past the run is an error (it
    was silently dropped), a recompute step inside the warm-up is ignored with a warning (attention is dense)."""
    from fgsim.endtoend import parse_recompute

    steps = int(model.steps)
    if args.warmup_steps > steps:
        raise FgsimError(f"--warmup-steps {args.warmup_steps}: {model.name} runs "
                         f"{counted(steps, 'denoising step')}")
    rec = parse_recompute(args.recompute) or ()
    late = [s for s in rec if s >= steps]
    if late:
        raise FgsimError(f"--recompute: step {late[0]} is past {model.name}'s {steps} denoising steps "
                         f"(0..{steps - 1})")
    early = [s for s in rec if s < args.warmup_steps]
    if early:
        one = len(early) == 1
        _warn(f"--recompute {'step' if one else 'steps'} {','.join(map(str, early))} {'falls' if one else 'fall'} in "
              f"the {counted(args.warmup_steps, 'dense warm-up step')} and {'is' if one else 'are'} ignored (masks "
              f"are first predicted at step {args.warmup_steps})")


def _dense_reference(wl: Any, info: Any, gpu: Any, args: argparse.Namespace, kernels: list[str],
                     rp: Any) -> tuple[float, Any, str]:
    """(full-run seconds, KernelPrediction, label) of the fastest dense configuration for ``gpu``: the launch
    table's at every M the trace allows, and the what-if dense row when --kernel lists dense."""
    from fgsim.runpredict import _config, predict_run

    cands = []
    if "dense" in kernels:
        cands.append((rp.full_run_s("dense"), rp.kernels["dense"], "as listed"))
    for m in (64, 128):
        if m % info.block_m or m > 128:
            continue
        if "dense" in kernels and rp.kernels["dense"].config == _config("dense", gpu, info.head_dim, m, 1, args.dtype,
                                                                        None):
            continue  # the listed dense row is this launch-table configuration: priced already
        try:
            r = predict_run(wl, info, gpu, ["dense"], block_m=m, dtype=args.dtype, calibration=args.calibration,
                            params=rp.params)
        except FgsimError:
            continue
        cands.append((r.full_run_s("dense"), r.kernels["dense"], "launch table"))
    if not cands:
        raise FgsimError(f"no dense configuration runs on {gpu.name} for this trace")
    return min(cands, key=lambda c: c[0])


def _check_first_counts(tr: Any, info: Any) -> None:
    """FgsimError naming the trace when its first entry's counts are not (heads, query blocks) at the trace's
    block size: a bad trace gets its one error line before any work (the scheduler's compile notice included);
    the cost model checks every entry again as it prices it."""
    import numpy as np

    ents = list(tr.entries())
    if not ents:
        return
    p, lay = ents[0]
    qb = -(-int(tr.n_tokens) // int(info.block_m))
    c = np.asarray(tr.counts(p, lay, m=int(info.block_m), n=1))
    if c.ndim != 2 or c.shape[1] != qb:
        raise FgsimError(f"{info.source}: trace counts for pass {p}, layer {lay} have shape {c.shape}; expected "
                         f"(heads, {qb}) for N={int(tr.n_tokens)}, M={int(info.block_m)}")


def _desc(kp: Any) -> str:
    c = kp.config
    return f"M{c.block_m} N{c.block_n} g{c.gran_n} w{c.num_warps} s{c.num_stages} {kp.occupancy.slots}/SM"


def run(args: argparse.Namespace) -> int:
    from fgsim.fileio import PendingWrites
    from fgsim.hardware import load_gpu
    from fgsim.runpredict import predict_run, run_info_from_trace

    kernels = _check_args(args)
    gpus = [load_gpu(g) for g in args.gpu]
    plans = None
    if args.cp is not None:  # --cp "" is a bad plan, not "no --cp"
        from fgsim.parallel import link_for, parse_plans

        plans = parse_plans(args.cp)
        if args.model and not args.trace and any(pl.scheme == "ring" for pl in plans):
            raise FgsimError("--cp ring:P needs a trace (the key-shard split reads its masks); "
                             "synthesized counts support ulysses:P")
        link_for(gpus[0])  # a GPU without an interconnect block fails before any work
    from fgsim.calibration import resolve_params

    for gpu in gpus:
        resolve_params(gpu, args.calibration)  # a bad calibration fails before any work
    overrides = {k: v for k, v in (("num_stages", args.num_stages), ("block_n", args.block_n)) if v is not None}
    progress = not args.no_progress and not args.json
    model = None
    clock_notes: dict[str, str] = {}
    base_clock: dict[str, float] = {}  # --model: each GPU's clock before generation_gpu set the sustained one
    if args.model:
        from fgsim.endtoend import load_model

        model = load_model(args.model)
        _check_schedule(args, model)
        from fgsim.endtoend import generation_gpu

        # a whole generation: fgattn kernels at the GPU's measured sustained attention clock (a bad value fails
        # here, before any work); kernel-level predictions (no --model) keep the calibration clock
        for i, g in enumerate(gpus):
            base_clock[g.name] = g.sustained_clock_mhz
            gpus[i], clock_notes[g.name] = generation_gpu(g)
    tr = None
    results = []
    try:
        if args.trace or model is None:
            from fgsim.trace import default_trace_path, open_trace

            path = Path(args.trace) if args.trace else default_trace_path()
            tr = open_trace(path)
            wl: Any = tr
            info = run_info_from_trace(tr, source=str(path))
            kind = str(tr.meta.provenance.get("kind", ""))
        else:
            from fgsim.endtoend import synthetic_workload

            wl, info = synthetic_workload(model, args.resolution, density=args.density)
            kind = "synthesized"
        for pl in plans or ():
            if pl.scheme == "ulysses" and info.num_heads % pl.degree:
                raise FgsimError(f"--cp {pl.describe()}: the Ulysses degree must divide the run's "
                                 f"{info.num_heads} attention heads")
        if model is not None and tr is not None:
            from fgsim.endtoend import check_trace_matches

            check_trace_matches(model, info)
            if args.resolution is not None and (args.resolution not in model.resolutions
                                                or model.n_tokens(args.resolution) != info.n_tokens):
                have = next((r for r in model.resolutions if model.n_tokens(r) == info.n_tokens), "?")
                raise FgsimError(f"--resolution {args.resolution}: the trace has N={info.n_tokens} tokens, "
                                 f"{model.name}'s resolution {have!r}; with a trace leave --resolution out")
        if tr is not None:
            _check_first_counts(tr, info)
        numba_notice()  # only once the inputs are known good: a refused trace gets its one error line alone
        for gpu in gpus:
            try:
                rp = predict_run(wl, info, gpu, kernels, block_m=args.block_m, gran_n=args.gran_n, dtype=args.dtype,
                                 calibration=args.calibration, overrides=dict(overrides), progress=progress,
                                 order="lpt" if args.order == "lpt" else None)
                ref = _dense_reference(wl, info, gpu, args, kernels, rp)
            except FgsimError as exc:
                what_if = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in overrides.items())
                if what_if and "shared memory" in str(exc):  # the what-if does not fit, not the trace
                    where = f"{what_if}: "
                else:
                    where = f"{info.source}: " if tr is not None and info.source not in str(exc) else ""
                raise FgsimError(f"{where}{gpu.name}: {exc}" if len(gpus) > 1 else f"{where}{exc}") from None
            e2e = None
            if model is not None:
                from dataclasses import replace

                from fgsim.endtoend import predict_generation

                # the end-to-end baseline is the same best dense configuration the kernel speedups use
                base = {k: v for k, v in rp.kernels.items() if k != "dense"}
                from fgsim.endtoend import GenerationOptions, parse_recompute

                opts = GenerationOptions(baseline=args.baseline, compiled=args.compile,
                                         warmup_steps=args.warmup_steps, recompute=parse_recompute(args.recompute),
                                         clock_note=clock_notes.get(gpu.name, ""))
                e2e = predict_generation(model, info, replace(rp, kernels={**base, "dense": ref[1]}), gpu, opts)
                e2e["notes"] = _e2e_notes(model, gpu, e2e)
                # the kernel table above the generation is priced at this clock too: say so beside it
                e2e["kernel_clock_mhz"] = gpu.sustained_clock_mhz
                e2e["kernel_only_clock_mhz"] = base_clock.get(gpu.name, gpu.sustained_clock_mhz)
            results.append((gpu, rp, ref, e2e))
        cp_out = None
        if plans:
            from fgsim.parallel import cp_report

            cp_out = cp_report(wl, info, gpus[0], kernels, plans, single=dict(results[0][1].kernels),
                               balance=args.balance_heads, block_m=args.block_m, gran_n=args.gran_n,
                               dtype=args.dtype, calibration=args.calibration)
        pending = PendingWrites()
        if args.plot:
            pending.add(args.plot, _plot_one(results[0][1], wl) if len(results) == 1 else _plot_gpus(results))
            if results[0][3] is not None and "per_pass" in results[0][3]:
                from fgsim.endtoend import measured_passes, plot_generation

                e2e_png = _e2e_png(args.plot)
                meas = measured_passes(args.measured, results[0][3]) if args.measured else None
                pending.add(e2e_png, plot_generation(results[0][3], meas))
    finally:
        if tr is not None:
            tr.close()
    if args.json:
        js = _json(results, kind)
        if cp_out is not None:
            js["context_parallel"] = cp_out[1]
        json.dump(js, sys.stdout, indent=1)
        print()
    else:
        lines = _table_one(results[0], kind) if len(results) == 1 else _table_gpus(results, kind)
        print("\n".join(lines + (cp_out[0] if cp_out is not None else [])))
        if args.explain:
            print(EXPLAIN)
    for p in pending.commit():
        print(f"plot written to {p}", file=sys.stderr)
    return 0


def _e2e_notes(model: Any, gpu: Any, e2e: dict[str, Any]) -> list[str]:
    """Say when this GPU's non-attention time is an estimate while the model file measured another GPU."""
    res = e2e.get("resolution")
    measured = {g: float(v[res]) for g, v in model.measured_non_attention.items() if g != gpu.name and res in v}
    src = str(e2e.get("non_attention_source", ""))
    if not measured or src.startswith("measured") or "non_attention_s" not in e2e:
        return []
    est = float(e2e["non_attention_s"])
    other = ", ".join(f"{g} ({_fmt_s(v)}, {v / max(est, 1e-30):.1f}x this estimate)" for g, v in measured.items())
    return [f"{model.name}'s non-attention time at {res} was measured on {other}, not on {gpu.name}: the "
            f"{gpu.name} figure ({_fmt_s(est)}) is the FLOP/byte estimate; treat its end-to-end numbers as "
            f"unreliable until the model file has a {gpu.name} measurement"]


def _header(rp: Any, kind: str) -> list[str]:
    info = rp.info
    lines: list[str] = []
    if kind == "synthesized":
        lines += _wrap(f"run: {info.name}, N={info.n_tokens}, {counted(info.num_heads, 'head')}, D={info.head_dim}; "
                       f"SYNTHESIZED counts ({info.source.split('(', 1)[-1].split(';')[0]}), no trace: "
                       f"{counted(len(rp.weights), 'call')} simulated")
    else:
        lines += _wrap(f"trace: {info.source} ({kind or 'trace'} run of {info.name})")
        stand = "stands" if len(rp.weights) == 1 else "stand"
        lines += _wrap(f"run: N={info.n_tokens}, {counted(info.num_heads, 'head')}, D={info.head_dim}; "
                       f"{counted(len(rp.weights), 'captured call')} {stand} for the "
                       f"{counted(info.full_calls, 'call')} of the full run")
    return lines


def _speedup(ref: tuple[float, Any, str], full: float) -> float:
    return ref[0] / max(full, 1e-30)


def _ref_label(ref: tuple[float, Any, str]) -> str:
    kp = ref[1]
    return f"{_desc(kp)}, {_fmt_s(ref[0])} full run"


def _table_one(result: tuple[Any, Any, Any, Any], kind: str) -> list[str]:
    gpu, rp, ref, e2e = result
    lines = _header(rp, kind)
    lines += _wrap(f"gpu: {gpu.name} ({gpu.full_name}); parameters: {rp.params_note}{_clock_label(e2e)}")
    extra = "" if "dense" in rp.kernels else " (computed as the reference; --kernel leaves dense out)"
    lines += _wrap(f"speedup: over the best dense config for {gpu.name}, {_ref_label(ref)}{extra}")
    width = max([24, *(len(_desc(kp)) for kp in rp.kernels.values())])  # M128 N128 g128 ... takes 25
    lines.append(f"{'kernel':<6} {'config':<{width}} {'per call':>9} {'full run':>9} {'speedup':>8} "
                 + " ".join(f"{c:>6}" for c in COMPONENTS))
    for k, kp in rp.kernels.items():
        frac = [kp.breakdown_s[x] / max(kp.total_s, 1e-30) * 100 for x in COMPONENTS]
        full = rp.full_run_s(k)
        lines.append(f"{k:<6} {_desc(kp):<{width}} {_fmt_s(kp.mean_call_s):>9} {_fmt_s(full):>9} "
                     f"{_speedup(ref, full):>7.2f}x " + " ".join(f"{f:>5.1f}%" for f in frac))
    lines.append(LEGEND)
    if kind != "synthesized":
        lines += _wrap("full run: each captured call's time x the calls it stands for (nearest captured step, "
                       "then layer); --explain says more")
    lines += _notes(rp)
    if e2e:
        lines += _e2e_lines(e2e)
    return lines


def _clock_label(e2e: dict[str, Any] | None) -> str:
    """``; kernels at ... MHz`` when --model priced the kernel table at a sustained clock other than the one a
    kernel-only prediction uses (else empty)."""
    if not e2e or e2e.get("kernel_clock_mhz", 0) == e2e.get("kernel_only_clock_mhz", 0):
        return ""
    return (f"; kernels priced at {e2e['kernel_clock_mhz']:.0f} MHz, the generation's sustained clock (without "
            f"--model: {e2e['kernel_only_clock_mhz']:.0f} MHz)")


def _e2e_png(plot: str) -> str:
    """The path of the whole generation's plot written beside ``--plot`` (``P.png`` -> ``P-e2e.png``)."""
    return str(Path(plot).with_name(Path(plot).stem + "-e2e.png"))


def _borrowed(source: str) -> bool:
    """Whether a launch configuration's ``source`` says it is another GPU's entry (fgattn's ``fallback: no <gpu>
    entry``, fgsim's ``what-if fallback: no <gpu> launch entry``, or fgsim's own when fgattn is missing) — not
    merely a provenance text that mentions a fallback kernel."""
    parts = source.split("; ")
    return any(x.startswith(("fallback: no ", "what-if fallback: no ", "fgsim fallback (")) for x in parts)


def _notes(rp: Any, prefix: str = "") -> list[str]:
    from fgsim.launchcfg import adaptation

    notes = list(dict.fromkeys(n for kp in rp.kernels.values() for n in kp.notes))
    borrowed = [k for k, kp in rp.kernels.items() if _borrowed(kp.config.source)]
    if borrowed:
        notes.append(f"{', '.join(borrowed)}: no {rp.gpu.name} launch-table entry, configuration borrowed "
                     "from another GPU's")
    for k, kp in rp.kernels.items():
        if adaptation(kp.config):
            notes.append(f"{k}: {adaptation(kp.config)}")
    return [x for n in notes for x in _wrap(f"note: {prefix}{n}")]


def _e2e_lines(e2e: dict[str, Any], prefix: str = "") -> list[str]:
    lines = _wrap(f"{prefix}end-to-end ({e2e['model']} {e2e['resolution']}, {counted(e2e['steps'], 'step')} x "
                  f"{counted(e2e['passes_per_step'], 'pass', 'passes')}, {counted(e2e['layers'], 'layer')}; "
                  "dense = the best dense config):")
    if "per_pass" in e2e:
        from fgsim.endtoend import e2e_lines

        return lines + [x for line in e2e_lines(e2e, _fmt_s) for x in _wrap(line)]
    if e2e["non_attention_source"].startswith("measured"):
        lines += _wrap(f"  non-attention per generation: {_fmt_s(e2e['non_attention_s'])} "
                       f"({e2e['non_attention_source']})")
    else:
        lines += _wrap(f"  non-attention per generation: {_fmt_s(e2e['non_attention_s'])} (estimate; GEMM "
                       f"efficiency {e2e['gemm_efficiency']:.2f}, {e2e['gemm_efficiency_source']})")
    for k, v in e2e["kernels"].items():
        lines.append(f"  {k:<6} attention {_fmt_s(v['attention_s']):>9}  generation {_fmt_s(v['generation_s']):>9}"
                     f"  attention {v['attention_share'] * 100:5.1f}%  end-to-end {v['speedup']:.3f}x")
    for n in e2e.get("notes", []):
        lines += _wrap(f"  note: {n}")
    if e2e.get("method"):  # why the operator model was not used, and what this estimate leaves out
        lines += _wrap(f"  method: {e2e['method']}; mask prediction, --compile, --baseline, --warmup-steps and "
                       "--recompute are not modelled by this estimate (dense = the best dense config)")
    return lines


def _table_gpus(results: list[tuple[Any, Any, Any, Any]], kind: str) -> list[str]:
    lines = _header(results[0][1], kind)
    wide = len(results) <= 3
    cell = 28 if wide else 18
    lines.append(f"{'':<6}" + "".join(f" {g.name:^{cell - 1}}" for g, *_ in results))
    sub = f"{'per call':>9} {'full run':>9} {'speedup':>7}" if wide else f"{'full run':>9} {'speedup':>7}"
    lines.append(f"{'kernel':<6}" + "".join(f" {sub}" for _ in results))
    for k in results[0][1].kernels:
        row = f"{k:<6}"
        for _, rp, ref, _ in results:
            kp, full = rp.kernels[k], rp.full_run_s(k)
            cells = [_fmt_s(kp.mean_call_s)] if wide else []
            row += " " + " ".join(f"{c:>9}" for c in [*cells, _fmt_s(full)]) + f" {_speedup(ref, full):>6.2f}x"
        lines.append(row)
    lines += _wrap("speedup: over each GPU's best dense configuration; full run: each captured call's time x the "
                   "calls it stands for (nearest captured step, then layer)")
    clocks = {g.name: e2e["kernel_clock_mhz"] for g, _, _, e2e in results if e2e and "kernel_clock_mhz" in e2e}
    if len(set(clocks.values())) > 1:
        lines += _wrap("note: with --model each GPU's kernels are priced at the clock it sustains through a "
                       "generation (" + ", ".join(f"{g} {c:.0f} MHz" for g, c in clocks.items()) + "): compare "
                       "the GPUs' kernels without --model, at their calibration clocks")
    for gpu, rp, ref, e2e in results:
        cfgs = ", ".join(f"{k} {_desc(kp)}" for k, kp in rp.kernels.items())
        lines += _wrap(f"{gpu.name}: {cfgs}; best dense {_desc(ref[1])}; parameters: {rp.params_note}"
                       f"{_clock_label(e2e)}")
        lines += _notes(rp, prefix=f"{gpu.name} ")
        if e2e:
            lines += _e2e_lines(e2e, prefix=f"{gpu.name} ")
    return lines


def _json(results: list[tuple[Any, Any, Any, Any]], kind: str) -> dict[str, Any]:
    per_gpu = []
    for _, rp, ref, e2e in results:
        out = rp.to_json()
        out["run"]["kind"] = kind
        out["reference_dense"] = {"config": _desc(ref[1]), "chosen_from": ref[2], "full_run_s": ref[0],
                                  "mean_call_ms": ref[1].mean_call_s * 1e3}
        for k in out["kernels"]:
            out["kernels"][k]["speedup_vs_dense"] = _speedup(ref, rp.full_run_s(k))
        if e2e is not None:
            out["end_to_end"] = e2e
        per_gpu.append(out)
    if len(per_gpu) == 1:
        return per_gpu[0]
    return {"run": per_gpu[0]["run"], "gpus": {o["gpu"]: o for o in per_gpu}}


def _plot_gpus(results: list[tuple[Any, Any, Any, Any]]) -> bytes:
    import matplotlib.pyplot as plt

    from fgsim.fileio import figure_png

    kernels = list(results[0][1].kernels)
    gpus = [g.name for g, *_ in results]
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(gpus) * max(1, len(kernels)) / 2, 4.5))
    width = 0.8 / len(kernels)
    x = np.arange(len(gpus))
    for i, k in enumerate(kernels):
        vals = [rp.full_run_s(k) for _, rp, _, _ in results]
        bars = ax.bar(x + (i - (len(kernels) - 1) / 2) * width, vals, width, label=k)
        for b, (_, rp, ref, _) in zip(bars, results, strict=True):
            ax.annotate(f"{_speedup(ref, rp.full_run_s(k)):.2f}x", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, gpus)
    ax.set_ylabel("predicted attention time, full run (s)")
    ax.set_title(f"{results[0][1].info.name}: attention time per GPU (labels: speedup over best dense)",
                 fontsize=10)
    ax.legend(title="kernel")
    fig.tight_layout()
    return figure_png(fig)


def _plot_one(rp: Any, wl: Any) -> bytes:
    import matplotlib.pyplot as plt

    from fgsim.costmodel import counts_m_n, timeline
    from fgsim.fileio import figure_png

    first = next((k for k in rp.kernels if k != "dense"), next(iter(rp.kernels)))
    kp = rp.kernels[first]
    i = int(np.argsort(kp.per_call_s)[len(kp.per_call_s) // 2])
    p, lay = kp.entries[i]
    m, n = counts_m_n(kp.config, rp.info.block_m)
    c = np.asarray(wl.counts(p, lay, m=m, n=n if n else 1))
    start, end, sm = timeline(c, rp.info.n_tokens, kp.config, rp.gpu, rp.params)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 8))
    ax1.barh(sm, (end - start) * 1e3, left=start * 1e3, height=0.8, color=plt.cm.viridis(
        (np.arange(sm.size) % max(1, c.shape[1])) / max(1, c.shape[1])), linewidth=0)
    ax1.set_xlabel("time (ms)")
    ax1.set_ylabel("SM")
    ax1.set_title(f"{first} kernel on {rp.gpu.name}: CTAs of pass {p}, layer {lay} (colour = query block)")
    layers = sorted({e[1] for e in kp.entries})
    for k, kk in rp.kernels.items():
        per_layer = [np.mean([t for t, e in zip(kk.per_call_s, kk.entries, strict=True) if e[1] == L]) * 1e3
                     for L in layers]
        ax2.plot(layers, per_layer, marker="o", label=k)
    ax2.set_xlabel("layer")
    ax2.set_ylabel("mean time per call (ms)")
    ax2.set_title("predicted time per layer over the captured run")
    ax2.legend()
    fig.tight_layout()
    return figure_png(fig)
