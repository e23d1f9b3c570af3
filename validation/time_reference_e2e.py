"""Time whole 50-step sampling runs of the reference DiT with each attention kernel, and keep what the cost model
needs to predict them (issue 6). GPU only.

    PYTHONPATH=.:kernels python3 validation/time_reference_e2e.py --out OUT [--grid 21x60x104] [--rounds 5]

Modes (one label, classifier-free guidance: 2 transformer passes per step, 6 layers each):

- ``none``: the self-attention core returns ``v`` unchanged: everything except self-attention (GEMMs, norms,
  RoPE, cross-attention, sampler, launches). Subtracting it from a mode's time gives that mode's attention time.
- ``sdpa``: diffusers' own processor (PyTorch SDPA), ``fgattn-dense``: ``fgattn.dense_attention``.
- ``fg`` / ``block``: the exact predictor's mask (tau = 0.5, M = 64) is computed once per (layer, branch) at the
  first step and reused for all steps (FG-Attn recomputes masks rarely; the prediction cost is timed apart,
  ``predict_ms``), then ``fgattn.fg_attention`` / ``fgattn.block_sparse_attention`` run on it.

Writes ``OUT/e2e.json`` (seconds per mode: every round, the median and the spread; the per-operator GPU time of
one step by category, CUDA events around every aten operator; environment; launch configs) and
``OUT/e2e_counts.npz`` (per (layer, branch): kept keys per query block (N = 1) and kept 64-key tiles (N = 64),
int32 (heads, QB)), which ``python -m fgsim`` predictions on the CPU read (``validation/reference_e2e_report.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--grid", default="21x60x104", help="latent grid TxHxW")
    p.add_argument("--label", default="coffee/pan_right/shapes")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per mode (median and spread reported)")
    p.add_argument("--modes", default="none,sdpa,fg,block", help="comma-separated modes (none, sdpa, fgattn-dense, "
                                                                 "fg, block)")
    p.add_argument("--block-m", type=int, default=64)
    args = p.parse_args(argv)

    import fgattn
    import numpy as np
    import torch
    import torch.nn.functional as F
    from fgattn.attention import resolve_config

    import fgsim.reference as ref
    from fgsim.capture.predictors import make_predictor
    from fgsim.reference.data import ClipLabel
    from fgsim.reference.sample import sample

    args.out.mkdir(parents=True, exist_ok=True)
    grid = tuple(int(x) for x in args.grid.split("x"))
    cuda = torch.cuda.is_available()  # on the CPU (TRITON_INTERPRET=1, float32) only as a smoke test
    model = ref.load(device=torch.device("cuda" if cuda else "cpu"), dtype=torch.bfloat16 if cuda else torch.float32)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    labels = [ClipLabel.parse(args.label)]
    m = args.block_m
    pred = make_predictor("exact", block_m=m)
    counts: dict[str, np.ndarray] = {}
    predict_ms: list[float] = []
    configs: dict[str, dict] = {}

    def record_config(kernel: str, q: torch.Tensor) -> None:
        """Keep the launch config fgattn resolves for this kernel (the one it runs with)."""
        if kernel not in configs:
            cfg = resolve_config(kernel, q.transpose(1, 2), m, 1)
            configs[kernel] = {"block_n": cfg.block_n, "num_warps": cfg.num_warps, "num_stages": cfg.num_stages,
                               "source": cfg.source}

    def none_fn(q, k, v, ctx):  # noqa: ANN001, ANN202
        return v

    def dense_fn(q, k, v, ctx):  # noqa: ANN001, ANN202
        record_config("dense", q)
        return fgattn.dense_attention(q, k, v, block_m=m, layout="bnhd")

    def sparse_fn(kernel: str):  # noqa: ANN202
        cache: dict[tuple[int, str], object] = {}

        def fn(q, k, v, ctx):  # noqa: ANN001, ANN202
            key = (ctx.layer, ctx.branch)
            if key not in cache:
                sync()
                t0 = time.perf_counter()
                mask = pred(q.transpose(1, 2), k.transpose(1, 2))  # (1, H, QB, S) bool
                sync()
                predict_ms.append((time.perf_counter() - t0) * 1e3)
                name = f"l{ctx.layer}_{ctx.branch}"
                if f"{name}_n1" not in counts:
                    s = mask.shape[-1]
                    padded = F.pad(mask, (0, (-s) % 64))
                    counts[f"{name}_n1"] = mask.sum(-1)[0].to(torch.int32).cpu().numpy()
                    counts[f"{name}_n64"] = padded.view(*mask.shape[:-1], -1, 64).any(-1).sum(-1)[0].to(
                        torch.int32).cpu().numpy()
                if kernel == "fg":
                    cache[key] = fgattn.build_index(mask, block_m=m, gran_n=1)
                else:
                    cache[key] = fgattn.block_index_from_mask(mask, block_m=m, n_keys=k.shape[1])
                record_config(kernel, q)
            if kernel == "fg":
                return fgattn.fg_attention(q, k, v, cache[key], block_m=m, layout="bnhd")
            return fgattn.block_sparse_attention(q, k, v, cache[key], block_m=m, layout="bnhd")

        return fn

    modes = {"none": lambda: none_fn, "sdpa": lambda: "dense", "fgattn-dense": lambda: dense_fn,
             "fg": lambda: sparse_fn("fg"), "block": lambda: sparse_fn("block")}
    modes = {k: v for k, v in modes.items() if k in args.modes.split(",")}
    common = dict(steps=args.steps, guidance_scale=5.0, shift=3.0, seed=0, bf16=False)
    seconds: dict[str, list[float]] = {k: [] for k in modes}
    for make in modes.values():  # warm-up: compile every kernel once
        sample(model, labels, grid, **(common | {"steps": 1}), attention=make())
    for _ in range(args.rounds):
        for name, make in modes.items():
            fn = make()
            sync()
            t0 = time.perf_counter()
            sample(model, labels, grid, **common, attention=fn)
            sync()
            seconds[name].append(time.perf_counter() - t0)
            print(name, round(seconds[name][-1], 4), flush=True)
        # the rounds so far, in case the call is stopped before the end
        (args.out / "e2e-partial.json").write_text(json.dumps({"seconds": seconds, "steps": args.steps}) + "\n")
    # per-operator GPU time of one sampler step (2 passes, self-attention skipped) with CUDA events around every
    # aten operator: the same tracer that prices the operators on the meta device (fgsim.opmodel.trace_ops)
    breakdown: dict[str, float] = {}
    kernel_breakdown: dict[str, float] = {}
    n_ops = 0
    if cuda:
        from fgsim.opmodel import trace_ops

        sync()
        try:
            ops = trace_ops(model.transformer, {}, measure=True, outside="sampler",
                            call=lambda: sample(model, labels, grid, **(common | {"steps": 1}), attention=none_fn))
            for op in ops:
                breakdown[op.cat] = breakdown.get(op.cat, 0.0) + float(getattr(op, "measured_s", 0.0))
            n_ops = sum(1 for op in ops if op.kind != "view")
        except Exception as exc:  # noqa: BLE001 - the runs above stand without it
            print(f"step breakdown failed: {exc!r}"[:300], flush=True)
        try:  # kernel durations per category (torch.profiler): no host-wait inflation
            from fgsim.opmodel import profile_breakdown

            kernel_breakdown = profile_breakdown(
                model.transformer, {}, outside="sampler",
                call=lambda: sample(model, labels, grid, **(common | {"steps": 1}), attention=none_fn))
        except Exception as exc:  # noqa: BLE001
            print(f"step profile failed: {exc!r}"[:300], flush=True)
    # the first step of fg/block includes the mask predictions: time them apart (synchronised) and report
    # them separately; the sparse modes' seconds above include one prediction per (layer, branch)
    res = {"gpu": torch.cuda.get_device_name(0) if cuda else "cpu (smoke test, not a measurement)", "torch": torch.__version__,
           "triton": __import__("triton").__version__, "grid_latent": list(grid), "label": args.label,
           "steps": args.steps, "passes": args.steps * 2, "layers": int(model.config["transformer"]["num_layers"]),
           "block_m": m, "predictor": pred.params(), "rounds": args.rounds,
           "seconds": {k: [round(x, 5) for x in v] for k, v in seconds.items()},
           "seconds_median": {k: round(float(np.median(v)), 5) for k, v in seconds.items()},
           "spread": {k: round((max(v) - min(v)) / float(np.median(v)), 4) for k, v in seconds.items()},
           "timing": "host wall clock of whole sampling runs between torch.cuda.synchronize() calls, modes "
                     "interleaved round by round; statistic: median and spread (max-min)/median over rounds",
           "step_breakdown_s": breakdown, "step_kernel_breakdown_s": kernel_breakdown, "step_ops": n_ops,
           "predict_ms_per_call_median": round(float(np.median(predict_ms)), 4) if predict_ms else None,
           "predictions_per_run": len(counts) // 2, "launch_configs": configs,
           "kept_fraction_mean": round(float(np.mean([c.mean() for k, c in counts.items() if k.endswith("_n1")])
                                             / (grid[0] * grid[1] * grid[2] // 4)), 6)}
    (args.out / "e2e.json").write_text(json.dumps(res, indent=1) + "\n")
    np.savez(args.out / "e2e_counts.npz", **counts)
    print(json.dumps(res["seconds_median"]), json.dumps(res["spread"]), res["predict_ms_per_call_median"],
          res["kept_fraction_mean"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
