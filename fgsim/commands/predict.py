"""``fgsim predict``: predicted kernel time per call and per run, speedup over dense, and its breakdown."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.costmodel import COMPONENTS, iter_kernels
from fgsim.errors import FgsimError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("predict", help="predict dense / block-sparse / FG attention time from a trace",
                              description=__doc__)
    p.add_argument("trace", nargs="?", help=".fgt trace (default: the embedded default trace)")
    p.add_argument("--gpu", default="h200", help="GPU name or description .json (default h200)")
    p.add_argument("--kernel", default="fg,block,dense", help="comma-separated kernels (fg,block,dense)")
    p.add_argument("--block-m", type=int, choices=(64, 128), help="query block M (default 128 if the trace allows)")
    p.add_argument("--gran-n", type=int, default=1, choices=(1, 16, 64), help="FG key granularity (default 1)")
    p.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    p.add_argument("--num-stages", type=int, help="what-if: override num_stages")
    p.add_argument("--block-n", type=int, help="what-if: override BLOCK_N")
    p.add_argument("--order", choices=("natural", "lpt"), default="natural",
                   help="CTA launch order of sparse kernels (lpt = FgIndex.order, heaviest first)")
    p.add_argument("--calibration", help="calibration .json to use instead of the GPU's own")
    p.add_argument("--model", help="end-to-end: model config (e.g. wan2.1-1.3b); without a trace, synthesize counts")
    p.add_argument("--resolution", default=None, help="with --model: 480p or 720p (default: the model's first)")
    p.add_argument("--density", type=float, default=None, help="with --model and no trace: kept-key density")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", help="write a PNG: per-SM timeline of one call and time per layer")
    p.add_argument("--no-progress", action="store_true")


def _fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def run(args: argparse.Namespace) -> int:
    from fgsim.hardware import load_gpu
    from fgsim.runpredict import predict_run, run_info_from_trace

    kernels = iter_kernels(args.kernel.split(","))
    if "dense" not in kernels:
        kernels.append("dense")  # the speedup reference
    gpu = load_gpu(args.gpu)
    overrides = {k: v for k, v in (("num_stages", args.num_stages), ("block_n", args.block_n)) if v is not None}
    progress = not args.no_progress and not args.json
    model = None
    if args.model:
        from fgsim.endtoend import load_model

        model = load_model(args.model)
    tr = None
    try:
        if args.trace or model is None:
            from fgsim.trace import default_trace_path, open_trace

            path = Path(args.trace) if args.trace else default_trace_path()
            tr = open_trace(path)
            wl: Any = tr
            info = run_info_from_trace(tr, source=str(path))
        else:
            from fgsim.endtoend import synthetic_workload

            wl, info = synthetic_workload(model, args.resolution, density=args.density)
        if model is not None and tr is not None:
            from fgsim.endtoend import check_trace_matches

            check_trace_matches(model, info)
        if args.order == "lpt":
            overrides["extra_order"] = "lpt"
        extra_order = overrides.pop("extra_order", None)
        rp = predict_run(wl, info, gpu, kernels, block_m=args.block_m, gran_n=args.gran_n, dtype=args.dtype,
                         calibration=args.calibration, overrides=overrides, progress=progress,
                         order=extra_order)
        e2e = None
        if model is not None:
            from fgsim.endtoend import predict_generation

            e2e = predict_generation(model, info, rp, gpu)
        if args.json:
            out = rp.to_json()
            if e2e is not None:
                out["end_to_end"] = e2e
            json.dump(out, sys.stdout, indent=1)
            print()
        else:
            _print_table(rp, e2e)
        if args.plot:
            _plot(rp, wl, args.plot)
            if not args.json:
                print(f"plot written to {args.plot}")
    finally:
        if tr is not None:
            tr.close()
    return 0


def _print_table(rp: Any, e2e: dict[str, Any] | None) -> None:
    info = rp.info
    print(f"run: {info.name} ({info.source or 'synthetic counts'}), N={info.n_tokens}, heads={info.num_heads}, "
          f"D={info.head_dim}; {len(rp.weights)} captured calls of {info.full_calls} in the full run")
    print(f"gpu: {rp.gpu.name} ({rp.gpu.full_name}); parameters: {rp.params_note}")
    dense = rp.kernels["dense"]
    hdr = (f"{'kernel':<6} {'config':<34} {'per call':>10} {'captured':>10} {'full run':>10} {'speedup':>8}  "
           + " ".join(f"{c:>6}" for c in COMPONENTS))
    print(hdr)
    for k, kp in rp.kernels.items():
        c = kp.config
        desc = (f"M={c.block_m} N={c.block_n} g={c.gran_n} w{c.num_warps} s{c.num_stages} "
                f"{kp.occupancy.slots}CTA/SM")
        frac = [kp.breakdown_s[x] / max(kp.total_s, 1e-30) * 100 for x in COMPONENTS]
        print(f"{k:<6} {desc:<34} {_fmt_s(kp.mean_call_s):>10} {_fmt_s(kp.total_s):>10} "
              f"{_fmt_s(rp.full_run_s(k)):>10} {dense.total_s / max(kp.total_s, 1e-30):>7.2f}x  "
              + " ".join(f"{f:>5.1f}%" for f in frac))
    notes = {n for kp in rp.kernels.values() for n in kp.notes}
    for kp in rp.kernels.values():
        if "fallback" in kp.config.source.lower():
            notes.add(f"{kp.kernel}: launch config {kp.config.source}")
    for n in sorted(notes):
        print(f"note: {n}")
    if e2e:
        print(f"end-to-end ({e2e['model']} {e2e['resolution']}, {e2e['steps']} steps x {e2e['passes_per_step']} "
              f"passes, {e2e['layers']} layers):")
        if e2e["non_attention_source"].startswith("measured"):
            print(f"  non-attention per generation: {_fmt_s(e2e['non_attention_s'])} ({e2e['non_attention_source']})")
        else:
            print(f"  non-attention per generation: {_fmt_s(e2e['non_attention_s'])} "
                  f"(GEMM efficiency {e2e['gemm_efficiency']:.2f}, {e2e['gemm_efficiency_source']})")
        for k, v in e2e["kernels"].items():
            print(f"  {k:<6} attention {_fmt_s(v['attention_s']):>9}  generation {_fmt_s(v['generation_s']):>9}  "
                  f"attention share {v['attention_share'] * 100:5.1f}%  end-to-end speedup {v['speedup']:.3f}x")


def _plot(rp: Any, wl: Any, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FgsimError("--plot needs matplotlib (pip install matplotlib)") from None
    from fgsim.costmodel import counts_m_n, timeline

    first = next(k for k in rp.kernels if k != "dense") if len(rp.kernels) > 1 else "dense"
    kp = rp.kernels[first]
    i = int(np.argsort(kp.per_call_s)[len(kp.per_call_s) // 2])
    p, lay = kp.entries[i]
    m, n = counts_m_n(kp.config, rp.info.block_m)
    c = np.asarray(wl.counts(p, lay, m=m, n=n if n else 1))
    params = rp.params
    start, end, sm = timeline(c, rp.info.n_tokens, kp.config, rp.gpu, params)
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
    fig.savefig(path, dpi=110)
    plt.close(fig)

