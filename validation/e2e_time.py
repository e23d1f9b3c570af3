"""Time real-size diffusers video transformers per pass with each attention backend, and calibrate the operator
model, in one GPU call (issue 11).

    PYTHONPATH=.:kernels python3 validation/e2e_time.py --out OUT [--tiny] [--budget-s 280]

Models: diffusers ``WanTransformer3DModel`` from the published Wan2.1-1.3B and -14B configs
(``fgsim/data/models/*.json``, ``diffusers`` entry), random bf16 weights made on the GPU (the time of a pass does
not depend on them), batch 1 (diffusers' WanPipeline runs the CFG branches as separate passes).

Per (model, resolution), with attention switched through :func:`fgsim.integrations.diffusers.enable_fgattn`:
``none`` (the self-attention core returns v: everything but self-attention), ``cudnn`` (PyTorch SDPA, cuDNN
backend), ``dense`` (fgattn's dense kernel), ``fg@d`` / ``block@d`` (fgattn kernels on a structured synthetic mask
of kept density d, ``fgattn.masks.window_mask``, injected as a cached index: no prediction inside the timed pass).
Timing: eager passes, host wall clock between ``torch.cuda.synchronize()`` calls (no CUDA graphs: the pass is what
a pipeline runs), modes interleaved round by round, median and spread ((max-min)/median) over rounds.

Also: the per-operator breakdown of one ``cudnn`` pass (CUDA events around every aten operator in a
TorchDispatchMode, categories from the module each runs in: the same code that prices the model's operators
on the meta device) and a torch.profiler table of that pass; the mask-prediction cost at the model's shape
(exact and pooled predictors on the real q, k of layer 0, plus the FG index build); ``torch.compile``
(``compile_repeated_blocks``) passes of 1.3B 480p when time allows; and the operator calibration
(:func:`fgsim.opcalibrate.calibrate_ops`), written as ``ops-calibration.json`` (``fgsim/data/ops/<gpu>.json`` format).

Writes OUT/e2e.json (everything), OUT/ops-calibration.json, OUT/ops-rows.csv, OUT/counts.npz (kept tiles per
(head, query block) of every injected mask, N = 1 and 64), OUT/breakdown.csv, OUT/profile.txt, OUT/clocks.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernels"))

T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


#: Expected seconds of a config (build, warm-up, rounds, breakdown) on an H200, for the budget check.
EST_S = {"cogvideox-5b/480p": 18.0, "hunyuanvideo/480p-17f": 25.0, "hunyuanvideo/480p-33f": 22.0,
         "hunyuanvideo/480p": 90.0}

TINY = {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 64, "in_channels": 4,
        "out_channels": 4, "text_dim": 32, "freq_dim": 256, "ffn_dim": 64, "num_layers": 2, "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 64}


def _tiny_model(name: str, layers: int = 2) -> Any:
    from fgsim.endtoend import ModelConfig

    return ModelConfig(name=name, layers=layers, hidden=128, heads=2, head_dim=64, ffn=64, text_tokens_cross=8,
                       text_tokens_self=0, text_position="none", passes_per_step=2, steps=2,
                       resolutions={"480p": (2, 8, 8), "720p": (2, 8, 16)}, sources={},
                       diffusers={"class": "WanTransformer3DModel", "config": dict(TINY, num_layers=layers)})


def _tiny_joint(kind: str) -> Any:
    """Tiny HunyuanVideo / CogVideoX configs (joint text + video self-attention) for the CPU smoke test."""
    from fgsim.endtoend import ModelConfig

    if kind == "hunyuan":
        cfg = {"in_channels": 4, "out_channels": 4, "num_attention_heads": 2, "attention_head_dim": 64,
               "num_layers": 1, "num_single_layers": 1, "num_refiner_layers": 1, "text_embed_dim": 32,
               "pooled_projection_dim": 16, "rope_axes_dim": [16, 24, 24]}
        return ModelConfig(name="tiny-hunyuan", layers=2, hidden=128, heads=2, head_dim=64, ffn=512,
                           text_tokens_cross=0, text_tokens_self=8, text_position="after", passes_per_step=1, steps=2,
                           resolutions={"480p": (2, 4, 8)}, sources={},
                           diffusers={"class": "HunyuanVideoTransformer3DModel", "config": cfg})
    cfg = {"num_attention_heads": 2, "attention_head_dim": 64, "in_channels": 4, "out_channels": 4,
           "time_embed_dim": 32, "text_embed_dim": 32, "num_layers": 2, "sample_width": 16, "sample_height": 8,
           "sample_frames": 5, "max_text_seq_length": 8, "use_rotary_positional_embeddings": True}
    return ModelConfig(name="tiny-cogvideox", layers=2, hidden=128, heads=2, head_dim=64, ffn=512,
                       text_tokens_cross=0, text_tokens_self=8, text_position="before", passes_per_step=2, steps=2,
                       resolutions={"480p": (2, 4, 8)}, sources={},
                       diffusers={"class": "CogVideoXTransformer3DModel", "config": cfg})


def _compile_run(model: Any, reso: str, res: dict[str, Any], args: Any, block_m: int, save: Any) -> None:
    """torch.compile (diffusers' compile_repeated_blocks) passes: none, cudnn, fg@0.3; bounded by an alarm."""
    import fgattn
    import torch
    import torch._dynamo
    from fgattn.masks import window_mask

    from fgsim.integrations.diffusers import FgSchedule, enable_fgattn
    from fgsim.opmodel import build_transformer, pass_inputs

    left = int(min(args.compile_s, args.hard_s - (time.time() - T0) - 5))
    key = f"{model.name}/{reso}"
    if left < min(30, args.compile_s):
        res["compile"]["skipped"] = f"only {left} s left"
        log("compile: skipped (time)")
        return
    torch._dynamo.config.cache_size_limit = 64
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(left)
    try:
        tr = build_transformer(model, "cuda", torch.bfloat16)
        inputs = pass_inputs(model, reso, "cuda", dtype=torch.bfloat16)
        n_tok = inputs["hidden_states"].shape[2] * inputs["hidden_states"].shape[3] * inputs["hidden_states"].shape[4] // 4
        ix = fgattn.build_index(window_mask(1, model.heads, n_tok, block_m, 0.3, device="cuda", seed=0),
                                block_m=block_m, gran_n=1)
        ix6 = fgattn.build_index(window_mask(1, model.heads, n_tok, block_m, 0.6, device="cuda", seed=0),
                                 block_m=block_m, gran_n=1)
        state = enable_fgattn(tr, backend="cudnn", dense_backend="cudnn")
        state.record = False
        tr.compile_repeated_blocks(fullgraph=False)
        modes = {"none": (FgSchedule(backend="sdpa", dense_backend="sdpa"), None, lambda q, k, v, i, c: v),
                 "cudnn": (FgSchedule(backend="cudnn", dense_backend="cudnn"), None, None),
                 "fg@0.3": (FgSchedule(backend="fg", recompute=(0,), block_m=block_m, dense_backend="sdpa"),
                            lambda q, k, c: ix, None),
                 "fg@0.6": (FgSchedule(backend="fg", recompute=(0,), block_m=block_m, dense_backend="sdpa"),
                            lambda q, k, c: ix6, None)}

        def one() -> float:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                tr(**inputs)
            torch.cuda.synchronize()
            return time.perf_counter() - t0

        t_c = time.time()
        for sched, mf, kf in modes.values():
            state.set_schedule(sched, mask_fn=mf, kernel_fn=kf)
            one()
            one()
        res["compile"]["compile_and_warmup_s"] = time.time() - t_c
        log(f"compile: compiled and warmed up in {time.time() - t_c:.1f} s")
        times: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(3):
            for m, (sched, mf, kf) in modes.items():
                state.set_schedule(sched, mask_fn=mf, kernel_fn=kf)
                times[m].append(one())
        res["compile"][key] = {"pass_s": times, "median_s": {m: statistics.median(v) for m, v in times.items()},
                               "spread": {m: (max(v) - min(v)) / statistics.median(v) for m, v in times.items()},
                               "method": "diffusers compile_repeated_blocks(fullgraph=False), default inductor "
                                         "mode; attention core outside the graph (torch.compiler.disable)"}
        log("compile: " + " ".join(f"{m} {statistics.median(v) * 1e3:.1f} ms" for m, v in times.items()))
        # kernel time of the compiled pass without self-attention, by kind (fused Triton / GEMM / other)
        from torch.profiler import ProfilerActivity, profile

        sched, mf, kf = modes["none"]
        state.set_schedule(sched, mask_fn=mf, kernel_fn=kf)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            one()
        kinds: dict[str, float] = {}
        n_k = 0
        for e in prof.events():
            if not str(getattr(e, "device_type", "")).endswith("CUDA"):
                continue
            nm = e.name.lower()
            kind = "fused_triton" if nm.startswith("triton") else "gemm" if any(
                x in nm for x in ("gemm", "nvjet", "xmma", "cutlass", "cublas")) else "other"
            kinds[kind] = kinds.get(kind, 0.0) + float(getattr(e, "device_time_total", 0.0) or 0.0) * 1e-6
            n_k += 1
        res["compile"][key]["profile_none"] = {"kernel_s": kinds, "kernels": n_k}
        log(f"compile: none-pass kernels {n_k}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in kinds.items()))
    except _Timeout:
        res["compile"]["skipped"] = f"compile exceeded the {left} s left"
        log("compile: timed out, skipped")
    except Exception as exc:  # noqa: BLE001 - compile is optional; record why
        res["compile"]["error"] = repr(exc)[:500]
        log(f"compile failed: {exc!r}"[:300])
    finally:
        signal.alarm(0)
    save()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny configs, float32, TRITON_INTERPRET=1")
    p.add_argument("--budget-s", type=float, default=280.0, help="stop starting new work after this many seconds")
    p.add_argument("--hard-s", type=float, default=300.0, help="the compile step ends by this many seconds")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--compile-s", type=float, default=60.0, help="at most this many seconds for the compile step")
    p.add_argument("--compile-key", default="", help="model/resolution to time under torch.compile (default: the "
                                                      "first Wan config of the plan)")
    p.add_argument("--rounds-first", type=int, default=3, help="timing rounds of the first config (1.3B 480p)")
    p.add_argument("--rounds-big", type=int, default=2, help="timing rounds of Wan2.1-1.3B 720p and 14B 480p")
    p.add_argument("--no-calibrate", action="store_true")
    p.add_argument("--refdit-rounds", type=int, default=5,
                   help="rounds of the reference DiT's 50-step runs (validation/time_reference_e2e.py; 0: none)")
    p.add_argument("--refdit-modes", default="none,sdpa,fg", help="attention modes of the reference DiT runs")
    p.add_argument("--predictors", default="",
                   help="comma-separated models whose mask-prediction cost is measured (default: all)")
    p.add_argument("--calibrate-models", default="",
                   help="comma-separated model names (and 'refdit' for the reference sampler) whose operators the "
                        "calibration measures (default: every planned model and the reference sampler)")
    p.add_argument("--only", default="", help="comma-separated model/resolution keys to run (default: all)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import fgattn
    import numpy as np
    import torch
    from fgattn.masks import window_mask

    from fgsim.capture.predictors import make_predictor
    from fgsim.endtoend import load_model
    from fgsim.integrations.diffusers import FgSchedule, disable_fgattn, enable_fgattn
    from fgsim.opmodel import build_transformer, pass_inputs, trace_ops

    cuda = torch.cuda.is_available() and not args.tiny
    dev = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    clocks = None
    if cuda:
        try:
            clocks = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,"
                                       "clocks_throttle_reasons.active",
                                       "--format=csv,noheader", "-lms", "200"],
                                      stdout=open(args.out / "clocks.csv", "w"), stderr=subprocess.DEVNULL)
        except OSError:
            clocks = None
    res: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0) if cuda else "cpu (smoke test, not a measurement)",
                           "torch": torch.__version__, "triton": __import__("triton").__version__,
                           "diffusers": __import__("diffusers").__version__, "dtype": str(dtype),
                           "timing": "eager passes: host wall clock between torch.cuda.synchronize() calls, modes "
                                     "interleaved per round, median and spread (max-min)/median over rounds",
                           "configs": {}, "compile": {}}
    counts: dict[str, np.ndarray] = {}
    breakdown_rows: list[dict[str, Any]] = []

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def save() -> None:
        (args.out / "e2e.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        if counts:
            np.savez_compressed(args.out / "counts.npz", **counts)
        if breakdown_rows:
            with (args.out / "breakdown.csv").open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(breakdown_rows[0]))
                w.writeheader()
                w.writerows(breakdown_rows)

    if args.tiny:
        plan = [(_tiny_model("tiny-a"), "480p", 2, ("none", "cudnn", "dense", "fg@0.3", "fg@0.6", "block@0.3")),
                (_tiny_model("tiny-b"), "720p", 2, ("none", "cudnn", "fg@0.3")),
                (_tiny_joint("hunyuan"), "480p", 1, ("none", "cudnn", "fg@0.3", "block@0.3")),
                (_tiny_joint("cogvideox"), "480p", 1, ("none", "cudnn", "fg@0.3"))]
    else:
        m13, m14 = load_model("wan2.1-1.3b"), load_model("wan2.1-14b")
        hy, cog = load_model("hunyuanvideo"), load_model("cogvideox-5b")
        # 720p / 14B 'none' (no attention kernel) measured in e2e-h200-2026-11-30 (spread <= 0.05 %)
        plan = [(m13, "480p", args.rounds_first, ("none", "cudnn", "dense", "fg@0.3", "fg@0.6", "block@0.3")),
                (m13, "720p", args.rounds_big, ("cudnn", "fg@0.3", "fg@0.6")),
                (m14, "480p", args.rounds_big, ("cudnn", "fg@0.3", "fg@0.6")),
                (cog, "480p", 2, ("none", "cudnn", "fg@0.3", "fg@0.6")),
                (hy, "480p-17f", 3, ("none", "cudnn", "fg@0.3", "fg@0.6", "block@0.3")),
                (hy, "480p-33f", 2, ("none", "cudnn", "fg@0.3", "fg@0.6")),
                (hy, "480p", 2, ("none", "cudnn", "fg@0.3", "fg@0.6"))]  # 129 frames, 51,736 tokens
        if args.only:
            plan = [x for x in plan if f"{x[0].name}/{x[1]}" in args.only.split(",")]
    block_m = 64
    def run_config(model: Any, reso: str, rounds: int, modes: tuple[str, ...]) -> None:
            key = f"{model.name}/{reso}"
            if time.time() - T0 > args.budget_s:
                log(f"budget reached: skipping {key}")
                return
            log(f"{key}: building")
            tr = build_transformer(model, dev, dtype)
            inputs = pass_inputs(model, reso, dev, dtype=dtype)
            n_tok = model.n_tokens(reso)  # the self-attention sequence (video + joint text tokens)
            heads = model.heads
            masks: dict[float, Any] = {}
            indices: dict[tuple[str, float], Any] = {}
            for mode in modes:
                if "@" in mode:
                    kern, d = mode.split("@")
                    d = float(d)
                    if d not in masks:
                        masks[d] = window_mask(1, heads, n_tok, block_m, d, device=dev, seed=0)
                        mk = masks[d]
                        s = mk.shape[-1]
                        pad = torch.nn.functional.pad(mk, (0, (-s) % 64))
                        counts[f"{key}|{d}|n1"] = mk.sum(-1)[0].to(torch.int32).cpu().numpy()
                        counts[f"{key}|{d}|n64"] = pad.view(*mk.shape[:-1], -1, 64).any(-1).sum(-1)[0].to(
                            torch.int32).cpu().numpy()
                    if (kern, d) not in indices:
                        if kern == "fg":
                            indices[(kern, d)] = fgattn.build_index(masks[d], block_m=block_m, gran_n=1)
                        else:
                            indices[(kern, d)] = fgattn.block_index_from_mask(masks[d], block_m=block_m, n_keys=n_tok)
            log(f"{key}: {n_tok} tokens, masks " + ", ".join(f"{d}: kept {float(m.float().mean()):.3f}"
                                                             for d, m in masks.items()))
            captured: dict[str, Any] = {}

            state = enable_fgattn(tr, backend="sdpa", dense_backend="sdpa")

            def enable(mode: str) -> None:
                """Switch the installed processors' schedule (same processor objects: no recompiles)."""
                if mode == "none":
                    state.set_schedule(FgSchedule(backend="sdpa", dense_backend="sdpa"),
                                       kernel_fn=lambda q, k, v, idx, ctx: v)
                elif mode == "cudnn":
                    b = "cudnn" if cuda else "sdpa"
                    state.set_schedule(FgSchedule(backend=b, dense_backend=b))
                elif mode == "original":  # diffusers' own processor: SDPA with PyTorch's backend choice
                    state.set_schedule(FgSchedule(backend="original"))
                elif mode == "dense":
                    state.set_schedule(FgSchedule(backend="dense", dense_backend="sdpa"))
                else:
                    kern, d = mode.split("@")
                    ix = indices[(kern, float(d))]
                    state.set_schedule(FgSchedule(backend=kern, recompute=(0,), block_m=block_m, dense_backend="sdpa"),
                                       mask_fn=lambda q, k, ctx, ix=ix: ix)
                state.record = False

            def one_pass() -> float:
                sync()
                t0 = time.perf_counter()
                with torch.no_grad():
                    tr(**inputs)
                sync()
                return time.perf_counter() - t0

            times: dict[str, list[float]] = {m: [] for m in modes}
            failed: dict[str, str] = {}
            for mode in modes:  # warm-up: Triton/cuDNN compile, autotune, allocator
                try:
                    enable(mode)
                    one_pass()
                except Exception as exc:  # noqa: BLE001 - a failing backend is recorded, the others still run
                    failed[mode] = repr(exc)[:300]
                    log(f"{key}: {mode} failed: {exc!r}"[:300])
            modes = tuple(m for m in modes if m not in failed)
            log(f"{key}: warmed up")
            for r in range(rounds):
                for mode in modes:
                    enable(mode)
                    times[mode].append(one_pass())
                log(f"{key}: round {r}: " + " ".join(f"{m} {times[m][-1] * 1e3:.1f}" for m in modes))
                if time.time() - T0 > args.budget_s and r >= 1:
                    log("budget: fewer rounds")
                    break
            cfg_res: dict[str, Any] = {
                "model": model.name, "resolution": reso, "failed": failed, "n_tokens": n_tok, "heads": heads, "layers": model.layers,
                "block_m": block_m, "rounds": len(times[modes[0]]),
                "pass_s": {m: [round(x, 6) for x in v] for m, v in times.items()},
                "median_s": {m: statistics.median(v) for m, v in times.items() if v},
                "spread": {m: (max(v) - min(v)) / statistics.median(v) for m, v in times.items() if v},
                "mask_kept": {str(d): float(m.float().mean()) for d, m in masks.items()},
                "index_kept": {f"{k}@{d}": ix.density(n_tok) for (k, d), ix in indices.items()},
            }
            if cuda:
                from fgattn.attention import resolve_config

                qs = torch.empty(1, 64, heads, model.head_dim, device=dev, dtype=dtype)
                # the dense mode calls fgattn.dense_attention at its default block_m (128), the others at block_m
                bms = {"dense": 128, "fg": block_m, "block": block_m}
                cfg_res["launch_configs"] = {
                    k: {"block_m": bms[k], "block_n": c.block_n, "num_warps": c.num_warps, "num_stages": c.num_stages,
                        "source": c.source}
                    for k, c in ((k, resolve_config(k, qs, bms[k], {"block": block_m}.get(k, 1))) for k in
                                 ("dense", "fg", "block"))}
            res["configs"][key] = cfg_res
            save()
            # per-operator breakdown of a cudnn pass: torch.profiler kernel durations per category (no host-wait
            # inflation); CUDA events around every aten op only when the profiler fails (or on the CPU)
            enable("cudnn")
            sync()
            prof_by: dict[str, float] = {}
            if cuda:
                from fgsim.opmodel import profile_breakdown

                try:
                    prof_by = profile_breakdown(tr, inputs)
                except Exception as exc:  # noqa: BLE001 - fall back to the events breakdown
                    cfg_res["profile_error"] = repr(exc)[:300]
                    log(f"{key}: profile breakdown failed: {exc!r}"[:300])
            by: dict[str, float] = {}
            if not prof_by or sum(prof_by.values()) <= 0:
                for op in trace_ops(tr, inputs, measure=cuda):
                    by[op.cat] = by.get(op.cat, 0.0) + float(getattr(op, "measured_s", 0.0))
                cfg_res["breakdown_cudnn_s"] = by
            cfg_res["breakdown_profiler_cudnn_s"] = prof_by
            if cuda and prof_by:  # the pass without self-attention, the same way
                enable("none")
                try:
                    cfg_res["breakdown_profiler_none_s"] = profile_breakdown(tr, inputs)
                except Exception as exc:  # noqa: BLE001
                    log(f"{key}: profile breakdown (none) failed: {exc!r}"[:300])
                enable("cudnn")
            for cat in sorted(set(by) | set(prof_by)):
                breakdown_rows.append({"config": key, "mode": "cudnn", "category": cat,
                                       "seconds": round(by.get(cat, 0.0), 7),
                                       "kernel_seconds": round(prof_by.get(cat, 0.0), 7)})
            log(f"{key}: breakdown (events | profiler kernels, ms): " + ", ".join(
                f"{c} {by.get(c, 0) * 1e3:.1f}|{prof_by.get(c, 0) * 1e3:.1f}" for c in sorted(set(by) | set(prof_by))))
            # mask-prediction cost on the real q, k of layer 0
            if args.predictors and model.name not in args.predictors.split(","):
                save()
                disable_fgattn(tr)
                return

            def grab(q: Any, k: Any, v: Any, idx: Any, ctx: Any) -> Any:
                if ctx.layer == 0 and "q" not in captured:
                    captured["q"], captured["k"] = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous()
                return v

            state.set_schedule(FgSchedule(backend="sdpa", dense_backend="sdpa"), kernel_fn=grab)
            one_pass()
            pred: dict[str, Any] = {}
            q, k = captured["q"], captured["k"]
            for name in ("exact", "pooled"):
                pr = make_predictor(name, block_m=block_m)
                ts, kept = [], 0.0
                for _ in range(3 if cuda else 1):
                    sync()
                    t0 = time.perf_counter()
                    mk = pr(q, k)
                    sync()
                    ts.append(time.perf_counter() - t0)
                kept = float(mk.float().mean())
                ti = []
                for _ in range(3 if cuda else 1):
                    sync()
                    t0 = time.perf_counter()
                    fgattn.build_index(mk, block_m=block_m, gran_n=1)
                    sync()
                    ti.append(time.perf_counter() - t0)
                pred[name] = {"predict_s": statistics.median(ts), "predict_spread": (max(ts) - min(ts)) / statistics.median(ts),
                              "index_s": statistics.median(ti), "kept": kept}
                del mk
            cfg_res["mask_prediction"] = pred
            log(f"{key}: predictors " + ", ".join(f"{n} {v['predict_s'] * 1e3:.1f} ms + index {v['index_s'] * 1e3:.1f} ms"
                                                  f" (kept {v['kept']:.3f})" for n, v in pred.items()))
            captured.clear()
            save()
            save()
            disable_fgattn(tr)
            state.record = False
            if cuda:
                torch.cuda.empty_cache()
    def calibrate() -> None:
        """The operator calibration (microbenchmarks at the models' shapes; never the pass times above)."""
        from fgsim.opcalibrate import calibrate_ops
        from fgsim.opmodel import reference_sampler_ops

        log("operator calibration")
        tm = _tiny_model("host-probe", layers=30)
        tiny_tr = build_transformer(tm, dev, dtype)
        tiny_in = pass_inputs(tm, "480p", dev, dtype=dtype)
        n_tiny = len(trace_ops(build_transformer(tm, "meta"), pass_inputs(tm, "480p", "meta")))
        wanted = args.calibrate_models.split(",") if args.calibrate_models else None
        lists = [trace_ops(build_transformer(m, "meta"), pass_inputs(m, r, "meta")) for m, r, _, _ in plan
                 if wanted is None or m.name in wanted]
        if not args.tiny and (wanted is None or "refdit" in wanted):
            lists.append(reference_sampler_ops(1))
        bursts = [trace_ops(build_transformer(m, "meta"), pass_inputs(m, r, "meta")) for m, r, _, _ in plan
                  if m.name.startswith("wan")] + lists
        cal, rows = calibrate_ops(lists, (tiny_tr, tiny_in, n_tiny), "h200", log=log, small=not cuda,
                                  burst_lists=bursts)
        (args.out / "ops-calibration.json").write_text(json.dumps(cal.to_json(), indent=1) + "\n")
        keys = sorted({k for r in rows for k in r})
        with (args.out / "ops-rows.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        del tiny_tr

    def one(model: Any, reso: str, rounds: int, modes: tuple[str, ...]) -> None:
        est = EST_S.get(f"{model.name}/{reso}", 0.0)
        if time.time() - T0 + est > args.budget_s:
            log(f"budget: skipping {model.name}/{reso} (needs ~{est:.0f} s)")
            return
        run_config(model, reso, rounds, modes)
        __import__("gc").collect()
        if cuda:
            torch.cuda.empty_cache()

    # order of importance: the Wan passes on the attention kernels, the reference DiT's sampling runs, the operator
    # calibration, the joint-attention models, the Wan pass under torch.compile, while the budget lasts
    wan = [x for x in plan if x[0].name.startswith(("wan", "tiny-a", "tiny-b"))]
    joint = [x for x in plan if x not in wan]
    for cfg in wan:
        one(*cfg)
    if args.refdit_rounds and cuda and time.time() - T0 + 50 <= args.hard_s:
        try:
            from validation import time_reference_e2e

            log("reference DiT sampling runs")
            time_reference_e2e.main(["--out", str(args.out / "refdit"), "--rounds", str(args.refdit_rounds),
                                     "--modes", args.refdit_modes])
        except Exception as exc:  # noqa: BLE001 - record and go on with the rest
            res["refdit_error"] = repr(exc)[:500]
            log(f"reference DiT failed: {exc!r}"[:300])
        __import__("gc").collect()
        torch.cuda.empty_cache()
        log("reference DiT done")
    if not args.no_calibrate and time.time() - T0 + 20 < args.budget_s:
        try:
            calibrate()
        except Exception as exc:  # noqa: BLE001 - record and go on with the rest
            res["calibration_error"] = repr(exc)[:500]
            log(f"calibration failed: {exc!r}"[:300])
    for cfg in joint:
        try:
            one(*cfg)
        except Exception as exc:  # noqa: BLE001 - record and go on with the rest
            res.setdefault("errors", {})[f"{cfg[0].name}/{cfg[1]}"] = repr(exc)[:500]
            log(f"{cfg[0].name}/{cfg[1]} failed: {exc!r}"[:300])
            __import__("gc").collect()
            if cuda:
                torch.cuda.empty_cache()
    if args.compile_key and cuda and time.time() - T0 + 22 <= args.hard_s:
        name, reso = args.compile_key.split("/")
        _compile_run(load_model(name), reso, res, args, block_m, save)
    elif not args.no_compile and cuda and wan and time.time() - T0 + 22 <= args.hard_s:
        _compile_run(wan[0][0], wan[0][1], res, args, block_m, save)
    if clocks is not None:
        clocks.terminate()
    res["elapsed_s"] = time.time() - T0
    save()
    cols = ("none", "cudnn", "dense", "fg@0.3", "fg@0.6", "block@0.3", "block@0.6")
    print("\nconfig | " + " | ".join(cols))
    for key, c in res["configs"].items():
        print(key, " | ".join(f"{c['median_s'].get(m, float('nan')) * 1e3:.1f}" for m in cols))
    return 0


if __name__ == "__main__":
    if "--tiny" in sys.argv:
        os.environ.setdefault("TRITON_INTERPRET", "1")
    sys.exit(main())
