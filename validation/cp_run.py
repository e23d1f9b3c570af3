"""Context parallelism on P GPUs (torchrun, NCCL): capture, numerical equality and timing of FG-Attn under CP.

    NCCL_NVLS_ENABLE=0 torchrun --nproc-per-node 2 validation/cp_run.py --out $OUT
    torchrun --nproc-per-node 2 validation/cp_run.py --cpu --out /tmp/cp     # gloo, tiny shapes (script check)

Parts (``--parts``, in this order; each checks a deadline ``--budget-s`` and is skipped when time is short):

* ``b``  numerics: fg / block / dense (fgattn) under Ulysses and ring vs the same kernel on one GPU
  (``fgsim.integrations.context_parallel``; bf16), then FG-Attn through diffusers (``enable_fgattn`` +
  ``enable_parallelism(ContextParallelConfig)`` + ``enable_context_parallel``) on the reference DiT.
* ``c``  timing: NCCL all-to-all / all-gather / send-recv and layout-copy microbenchmarks (the interconnect
  calibration), then per-rank attention, communication and whole-wrapper time of Wan2.1 1.3B (480p) and 14B (720p)
  attention shapes at two densities (synthetic masks whose density differs several-fold between heads), CUDA
  events, medians over interleaved rounds. The per-rank kept-tile counts are saved for the prediction
  (``validation/cp_validate.py``).
* ``a``  capture: the reference DiT (trained weights) and a real-size Wan2.1-1.3B config (random bf16 weights)
  captured with the exact predictor on one GPU (rank 0) and under diffusers' Ulysses (degree P); traces compared
  entry by entry (masks, counts, statistics).

Writes ``$OUT/cp-numerics.csv``, ``cp-timing.csv``, ``cp-comm.csv``, ``cp-capture.csv``, ``cp-counts.npz``,
``cp-env.json`` and a log; prints a short table last.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]

T0 = time.time()


def log(msg: str) -> None:
    import torch.distributed as dist

    r = dist.get_rank() if dist.is_initialized() else 0
    if r == 0:
        print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def left(args: argparse.Namespace) -> float:
    return args.budget_s - (time.time() - T0)


# --------------------------------------------------------------------------------------------------------------------
# setup


def setup(args: argparse.Namespace) -> tuple[Any, int, int]:
    import torch
    import torch.distributed as dist

    if args.cpu:
        torch.set_num_threads(1)
        torch.accelerator.device_count = lambda: 1  # diffusers' mesh set-up divides by it; CPU has 0 accelerators
        dist.init_process_group("gloo")
        dev = torch.device("cpu")
    else:
        if os.environ.get("NCCL_NVLS_ENABLE") != "0":
            raise SystemExit("set NCCL_NVLS_ENABLE=0 (NVLink multicast must stay off on this machine)")
        lr = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(lr)
        dev = torch.device("cuda", lr)
        dist.init_process_group("nccl", device_id=dev)
    return dev, dist.get_rank(), dist.get_world_size()


def sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def barrier(dev: Any) -> None:
    import torch.distributed as dist

    sync(dev)
    dist.barrier()
    sync(dev)


def synth_mask(h: int, n: int, m: int, density: float, seed: int, dev: Any, run: int = 32,
               spread: float = 1.1) -> Any:
    """Bool (1, H, ⌈N/M⌉, N) slice mask: kept keys in runs of ``run`` tokens, head h keeps a fraction
    ``density·f_h`` with f_h log-uniform in [e^-spread, e^spread] normalised to mean 1 (heads differ several-fold).
    The same on every rank (seeded generator on the device)."""
    import torch

    g = torch.Generator(device=dev).manual_seed(seed)
    f = torch.exp((torch.rand(h, generator=g, device=dev) * 2 - 1) * spread)
    d = (density * f / f.mean()).clamp(max=0.95)
    qb = -(-n // m)
    runs = torch.rand(h, qb, -(-n // run), generator=g, device=dev) < d[:, None, None]
    return runs.repeat_interleave(run, dim=-1)[..., :n].unsqueeze(0).contiguous()


def _block_mask(mask: Any, m: int) -> Any:
    """The slice mask the block-sparse kernel computes: every key of an M×M block holding a kept slice."""
    import torch

    n = mask.shape[-1]
    pad = -(-n // m) * m - n
    mk = torch.nn.functional.pad(mask, (0, pad)) if pad else mask
    blk = mk.reshape(*mk.shape[:-1], -1, m).any(-1)
    return blk.repeat_interleave(m, dim=-1)[..., :n]


def rel_err(a: Any, b: Any) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


# --------------------------------------------------------------------------------------------------------------------
# part b: numerics


def part_b(args: argparse.Namespace, dev: Any, rank: int, p: int, rows: list[dict[str, Any]]) -> None:
    import torch

    from fgsim.errors import FgsimError
    from fgsim.integrations.context_parallel import (
        MaskedAttention,
        all_gather_seq,
        ring_attention,
        ring_compute,
        ring_gather_kv,
        ulysses_attention,
    )

    if args.cpu:
        dtype = torch.float32
        cases = [("cpu-misaligned", 2 * 96, 4, 64, 64, 0.3), ("cpu-aligned", 2 * 128, 4, 64, 64, 0.3)]
        kernels = ["fg", "block", "dense"] if os.environ.get("TRITON_INTERPRET") == "1" else ["torch"]
    else:
        dtype = torch.bfloat16
        cases = [("S/P%M!=0", 2 * 8190, 12, 128, 128, 0.15), ("S/P%M==0", 2 * 8192, 12, 128, 128, 0.15)]
        kernels = ["fg", "block", "dense"]
    for name, s, h, d, m, dens in cases:
        g = torch.Generator(device=dev).manual_seed(1234)
        q, k, v = (torch.randn(1, s, h, d, generator=g, device=dev, dtype=torch.float32).to(dtype) for _ in range(3))
        mask = synth_mask(h, s, m, dens, 99, dev)
        sl = s // p
        sh = slice(rank * sl, (rank + 1) * sl)
        for kern in kernels:
            ma = MaskedAttention(kern, None if kern == "dense" else mask, block_m=m)
            ref = ma.heads(q, k, v, range(0, h))
            ref64 = None
            if args.cpu or name == cases[0][0]:  # a float64 (CPU) / float32 (GPU) reference of the same mask
                rmask = None if kern == "dense" else (_block_mask(mask, m) if kern == "block" else mask)
                hi = torch.float64 if args.cpu else torch.float32
                ref64 = MaskedAttention("torch", rmask, block_m=m).heads(q.to(hi), k.to(hi), v.to(hi),
                                                                         range(0, h))
            for scheme in ("ulysses", "ring", "ring-torch-merge"):
                if scheme == "ring-torch-merge" and kern != "fg":
                    continue
                row: dict[str, Any] = {"case": name, "S": s, "heads": h, "head_dim": d, "block_m": m, "density": dens,
                       "kernel": kern, "scheme": scheme, "P": p, "dtype": str(dtype).replace("torch.", "")}
                try:
                    ma2 = MaskedAttention(kern, None if kern == "dense" else mask, block_m=m)
                    al = {"query_align": ma2.query_align, "key_align": ma2.key_align}
                    if scheme == "ulysses":
                        out = ulysses_attention(q[:, sh], k[:, sh], v[:, sh], ma2.heads)
                    elif scheme == "ring":  # fused LSE merges (fgattn.merge_attention_) on the GPU
                        out = ring_attention(q[:, sh], k[:, sh], v[:, sh], ma2.shard, **al)
                    else:  # the same ring with the float32 torch merge, to compare the fused one against
                        qs_, ks_, vs_ = (x[:, sh].contiguous() for x in (q, k, v))
                        out = ring_compute(qs_, ring_gather_kv(ks_, vs_), ma2.shard, rank, p, fused=False, **al)
                    full = all_gather_seq(out)
                    row.update(max_abs_diff=float((full.float() - ref.float()).abs().max()),
                               rel_err_vs_1gpu=rel_err(full, ref), bitwise_equal=bool(torch.equal(full, ref)),
                               status="ok")
                    if ref64 is not None:
                        row["rel_err_1gpu_vs_ref"] = rel_err(ref, ref64)
                        row["rel_err_cp_vs_ref"] = rel_err(full, ref64)
                        row["ref"] = str(ref64.dtype).replace("torch.", "")
                except FgsimError as exc:
                    row.update(status=f"unsupported: {str(exc)[:160]}")
                except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                    row.update(status=f"error: {type(exc).__name__}: {str(exc)[:160]}")
                rows.append(row)
                log(f"b {name} {kern:<5} {scheme:<7} {row.get('status')} rel={row.get('rel_err_vs_1gpu', '')}"
                    f" bitwise={row.get('bitwise_equal', '')}")
        del q, k, v, mask


def part_b_diffusers(args: argparse.Namespace, dev: Any, rank: int, p: int, rows: list[dict[str, Any]]) -> None:
    """FG-Attn through diffusers' enable_parallelism + enable_fgattn on the reference DiT (trained weights)."""
    import torch
    from diffusers import ContextParallelConfig

    from fgsim.integrations.context_parallel import enable_context_parallel
    from fgsim.integrations.diffusers import FgSchedule, enable_fgattn
    from fgsim.reference.model import load_weights

    dtype = torch.float32 if args.cpu else torch.bfloat16
    grid = (2, 8, 16) if args.cpu else (8, 16, 28)  # latent tokens (T, h, w); S = T·h·w, S/P multiple of 64
    wpath = ROOT / "fgsim" / "data" / "reference" / "weights.safetensors"
    g = torch.Generator(device="cpu").manual_seed(5)
    x = torch.randn(1, 768, grid[0], grid[1] * 2, grid[2] * 2, generator=g).to(dev, dtype)
    tt = torch.tensor([700.0], device=dev)
    ref_outs: dict[str, Any] = {}
    for backend in ("fg", "dense"):
        for scheme in ("none", "ulysses", "ring"):
            row = {"case": f"refdit-diffusers-{grid[0]}x{grid[1]}x{grid[2]}", "S": int(np.prod(grid)), "heads": 4,
                   "head_dim": 64, "block_m": 64, "density": "exact tau=0.5", "kernel": backend, "scheme": scheme,
                   "P": p, "dtype": str(dtype).replace("torch.", "")}
            try:
                model = load_weights(wpath, device=dev, dtype=dtype)
                tr = model.transformer.eval()
                with torch.no_grad():
                    tokens = model.encode_labels(torch.tensor([[0, 1, 0]], device=dev))
                if scheme != "none":
                    deg = {"ulysses_degree": p} if scheme == "ulysses" else {"ring_degree": p}
                    tr.enable_parallelism(config=ContextParallelConfig(**deg))
                kern = backend if not args.cpu or os.environ.get("TRITON_INTERPRET") == "1" else "sdpa"
                st = enable_fgattn(tr, FgSchedule(backend=kern, warmup_steps=0, block_m=64, recompute=None,
                                                  dense_backend="dense" if kern == "dense" else "original"))
                got = enable_context_parallel(st, tr)
                st.set_pass(0, "cond")
                with torch.no_grad():
                    out = tr(hidden_states=x, timestep=tt, encoder_hidden_states=tokens, return_dict=False)[0]
                if scheme == "none":
                    ref_outs[backend] = out
                    row.update(status="ok (reference)", cp_wrapper=got)
                else:
                    ref = ref_outs[backend]
                    row.update(max_abs_diff=float((out.float() - ref.float()).abs().max()),
                               rel_err_vs_1gpu=rel_err(out, ref), bitwise_equal=bool(torch.equal(out, ref)),
                               status="ok", cp_wrapper=got, calls=st.summary()["calls"])
            except Exception as exc:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                row.update(status=f"error: {type(exc).__name__}: {str(exc)[:160]}")
            rows.append(row)
            log(f"b diffusers {backend} {scheme}: {row['status']} rel={row.get('rel_err_vs_1gpu', '')}")


# --------------------------------------------------------------------------------------------------------------------
# part c: timing


def _eager_time(dev: Any, fn: Any) -> float:
    """Seconds of one eager call after a barrier (:func:`fgsim.interconnect.eager_seconds`)."""
    from fgsim.interconnect import eager_seconds

    return eager_seconds(fn, dev, lambda: barrier(dev))


def part_c(args: argparse.Namespace, dev: Any, rank: int, p: int, timing: list[dict[str, Any]],
           counts: dict[str, Any]) -> None:
    """Per-rank time of attention, communication and the whole wrapper, per shape: every configuration captured
    in CUDA graphs (NCCL collectives included), replayed in interleaved rounds; the eager wrapper timed too (the
    host time a real run adds)."""
    import torch

    from fgsim.integrations.context_parallel import (
        MaskedAttention,
        heads_to_seq,
        ring_compute,
        ring_gather_kv,
        seq_to_heads,
        ulysses_attention,
    )
    from fgsim.interconnect import GraphTimer
    from fgsim.parallel import block_rows, key_chunks
    from fgsim.provenance import ClockSampler

    if args.cpu:
        shapes = [("tiny", 2 * 96, 4, 64)]
        densities = [0.1, 0.3]
        kernels = ["fg", "block", "dense"] if os.environ.get("TRITON_INTERPRET") == "1" else ["torch"]
        m = 64
        rounds = 2
    else:
        shapes = [("wan2.1-1.3b-480p", 32760, 12, 128), ("wan2.1-14b-720p", 75600, 40, 128)]
        densities = [0.1, 0.3]
        kernels = ["fg", "block", "dense"]
        m = 128
        rounds = args.rounds
    gt = GraphTimer(dev, lambda: barrier(dev), target_s=3e-3) if dev.type == "cuda" else None
    # collectives (total, comm): their own timer, so that where they are not captured (FGSIM_EAGER_COLLECTIVES=1)
    # enough back-to-back calls share one timing (--comm-target-ms) to pay the launch and rank skew about once
    gtc = (GraphTimer(dev, lambda: barrier(dev), target_s=args.comm_target_ms * 1e-3) if dev.type == "cuda"
           else None)
    for shape, s, h, d in shapes:
        if left(args) < 60:
            log(f"c: skipping {shape} (time)")
            continue
        sl = s // p
        g = torch.Generator(device=dev).manual_seed(4321 + s)
        dt = torch.float32 if args.cpu else torch.bfloat16
        full = [torch.randn(1, s, h, d, generator=g, device=dev, dtype=torch.float32).to(dt) for _ in range(3)]
        q, k, v = (x[:, rank * sl:(rank + 1) * sl].contiguous() for x in full)
        del full
        configs = []
        for dens in densities:
            mask = synth_mask(h, s, m, dens, 77 + int(dens * 100), dev)
            # counts for the prediction: per head/query block at n=1 and n=M, and per (rank, key chunk)
            key = f"{shape}-d{dens}"
            if rank == 0:
                mk = mask[0]
                counts[f"{key}/n1"] = mk.sum(-1).int().cpu().numpy()
                counts[f"{key}/n{m}"] = _tiles(mk, m).cpu().numpy()
                for pp in sorted({p, 2, 4, 8}):  # this run's degree, and 4 / 8 GPUs for the scaling what-if
                    if s % pp:
                        continue
                    sp = s // pp
                    for r in range(pp):
                        b0, b1 = block_rows(r * sp, (r + 1) * sp, m)
                        for n in (1, m):
                            for j, (ks, ke) in enumerate(key_chunks(s, pp, n)):
                                part = mk[:, b0:b1, ks:ke]
                                counts[f"{key}/ring{pp}/r{r}/j{j}/n{n}"] = (
                                    part.sum(-1).int() if n == 1 else _tiles(part, m)).cpu().numpy()
            for kern in kernels:
                if kern == "dense" and dens != densities[0]:
                    continue
                for scheme in ("ulysses", "ring"):
                    ma = MaskedAttention(kern, None if kern in ("dense",) else mask, block_m=m)
                    configs.append((shape, s, h, d, dens if kern != "dense" else 1.0, kern, scheme, ma))
            del mask
        uly = tuple(seq_to_heads(x) for x in (q, k, v))
        kv = ring_gather_kv(k, v)
        fns = []
        for cfg in configs:
            _shape, _s, _h, _d, _dens, kern, scheme, ma = cfg
            gh = h // p
            if scheme == "ulysses":
                qf, kf, vf = uly
                hs = range(rank * gh, (rank + 1) * gh)
                o_full = ma.heads(qf, kf, vf, hs)
                total = (lambda ma=ma, q=q, k=k, v=v: ulysses_attention(q, k, v, ma.heads))
                attn = (lambda ma=ma, hs=hs, qf=qf, kf=kf, vf=vf: ma.heads(qf, kf, vf, hs))
                comm = (lambda o=o_full, q=q, k=k, v=v: ([seq_to_heads(x) for x in (q, k, v)], heads_to_seq(o)))
            else:
                al = {"query_align": ma.query_align, "key_align": ma.key_align}
                total = (lambda ma=ma, al=al, q=q, k=k, v=v:
                         ring_compute(q, ring_gather_kv(k, v), ma.shard, rank, p, **al))
                attn = (lambda ma=ma, al=al, q=q, kv=kv: ring_compute(q, kv, ma.shard, rank, p, **al))
                comm = (lambda k=k, v=v: ring_gather_kv(k, v))
            fns.append((cfg, {"total": total, "attn": attn, "comm": comm}))
        if dev.type == "cuda" and "dense" in kernels:  # the fused merge alone: two bf16 partials -> bf16
            import fgattn

            pa, pb = (torch.randn(1, sl, h, d, device=dev).to(dt) for _ in range(2))
            la, lb = (torch.randn(1, h, sl, device=dev) for _ in range(2))
            dst = torch.empty_like(pa)
            merge = (lambda pa=pa, la=la, pb=pb, lb=lb, dst=dst:
                     fgattn.merge_attention_(pa, la.clone(), pb, lb, out=dst))
            fns.append(((shape, s, h, d, 1.0, "merge", "ring", None), {"attn": merge}))
        log(f"c {shape}: warm-up and capture of {len(fns)} configurations")
        method: dict[Any, str] = {}
        for i, (_cfg, parts) in enumerate(fns):
            for part, fn in parts.items():
                fn()
                tim = gtc if part in ("total", "comm") else gt
                if tim is not None:
                    method[(i, part)] = tim.prepare((i, part), fn, collective=part in ("total", "comm"))
            if left(args) < 40:
                log("c: out of time during capture")
                break
        barrier(dev)
        res: dict[int, dict[str, list[float]]] = {i: {} for i in range(len(fns))}
        log(f"c {shape}: {rounds} interleaved rounds")
        with ClockSampler(period_s=0.5) as clk:
            for rd in range(rounds):
                for i, (_cfg, parts) in enumerate(fns):
                    for part, fn in parts.items():
                        tim = gtc if part in ("total", "comm") else gt
                        tm = tim((i, part), fn) if tim is not None else _eager_time(dev, fn)
                        res[i].setdefault(part, []).append(tm)
                    if "total" in parts:
                        res[i].setdefault("total_eager", []).append(_eager_time(dev, parts["total"]))
                if left(args) < 35 and rd >= 2:
                    log(f"c: stopping after {rd + 1} rounds (time)")
                    break
        clocks = clk.summary()
        for tim in (gt, gtc):
            if tim is not None:
                tim.release()
        for i, (cfg, _parts) in enumerate(fns):
            shape_, s_, h_, d_, dens, kern, scheme, _ma = cfg
            row = {"shape": shape_, "S": s_, "heads": h_, "head_dim": d_, "block_m": m, "density": dens,
                   "kernel": kern, "scheme": scheme, "P": p, "rank": rank,
                   "rounds": len(next(iter(res[i].values()), [])), **clocks}
            for part, ts in res[i].items():
                if not ts:
                    continue
                row[f"{part}_median_s"] = float(np.median(ts))
                row[f"{part}_min_s"] = float(min(ts))
                row[f"{part}_max_s"] = float(max(ts))
                if part != "total_eager":
                    row[f"{part}_method"] = method.get((i, part), "perf_counter (CPU)")
            timing.append(row)
        fns.clear()
        configs.clear()
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def _tiles(mask: Any, n: int) -> Any:
    """Kept tiles of ``n`` keys per row of a bool (..., K) tensor (aligned to its first key)."""
    import torch

    k = mask.shape[-1]
    pad = -(-k // n) * n - k
    if pad:
        mask = torch.nn.functional.pad(mask, (0, pad))
    return mask.reshape(*mask.shape[:-1], -1, n).any(-1).sum(-1).int()


# --------------------------------------------------------------------------------------------------------------------
# part a: capture


def part_a(args: argparse.Namespace, dev: Any, rank: int, p: int, rows: list[dict[str, Any]], out: Path) -> None:
    import torch
    import torch.distributed as dist
    from diffusers import ContextParallelConfig, WanTransformer3DModel

    from fgsim.capture.hooks import Schedule
    from fgsim.capture.predictors import ExactThreshold
    from fgsim.capture.run import capture_transformer
    from fgsim.reference.model import load_weights

    dtype = torch.float32 if args.cpu else torch.bfloat16

    def refdit() -> tuple[Any, dict[str, Any], tuple[int, int, int]]:
        model = load_weights(ROOT / "fgsim" / "data" / "reference" / "weights.safetensors", device=dev, dtype=dtype)
        grid = (2, 8, 16) if args.cpu else (21, 30, 52)
        g = torch.Generator(device="cpu").manual_seed(3)
        x = torch.randn(1, 768, grid[0], grid[1] * 2, grid[2] * 2, generator=g).to(dev, dtype)
        with torch.no_grad():
            tok = model.encode_labels(torch.tensor([[0, 1, 2]], device=dev))
        return model.transformer.eval(), {"hidden_states": x, "timestep": torch.tensor([600.0], device=dev),
                                          "encoder_hidden_states": tok, "return_dict": False}, grid

    def wan14b() -> tuple[Any, dict[str, Any], tuple[int, int, int]]:
        return wan13b(big=True)

    def wan13b(big: bool = False) -> tuple[Any, dict[str, Any], tuple[int, int, int]]:
        cfg = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                   out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                   qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
        if big:  # Wan2.1-14B (its diffusers config): 40 heads x 128, FFN 13824, 40 layers; 720p
            cfg.update(num_attention_heads=40, ffn_dim=13824, num_layers=40)
        if args.cpu:
            cfg.update(num_attention_heads=2, attention_head_dim=64, ffn_dim=64, num_layers=2, text_dim=32,
                       freq_dim=32)
        torch.manual_seed(0)
        with torch.device(dev):
            tr = WanTransformer3DModel(**cfg).to(dtype).eval()
        for prm in tr.parameters():  # identical random weights on every rank
            dist.broadcast(prm.data, 0)
        grid = (2, 8, 16) if args.cpu else ((21, 45, 80) if big else (21, 30, 52))
        g = torch.Generator(device="cpu").manual_seed(4)
        x = torch.randn(1, 16, grid[0], grid[1] * 2, grid[2] * 2, generator=g).to(dev, dtype)
        e = torch.randn(1, 512 if not args.cpu else 8, cfg["text_dim"], generator=g).to(dev, dtype)
        return tr, {"hidden_states": x, "timestep": torch.tensor([800.0], device=dev), "encoder_hidden_states": e,
                    "return_dict": False}, grid

    models = [("refdit-480p", refdit, None, 40), ("wan2.1-1.3b-480p-random", wan13b, (0, 15, 29), 40),
              ("wan2.1-14b-720p-random", wan14b, (0, 39), args.need_14b_s)]
    if args.models:
        models = [x for x in models if x[0] in args.models.split(",")]
    for name, build, layers, need in models:
        if left(args) < need:
            rows.append({"model": name, "status": "skipped (time)"})
            continue
        t0 = time.time()
        row: dict[str, Any] = {"model": name, "P": p, "scheme": "ulysses", "predictor": "exact tau=0.5 M=64"}
        try:
            tr, kw, grid = build()
            if args.cpu and layers is not None:
                layers = (0, 1)
            log(f"a {name}: built ({time.time() - t0:.1f} s)")
            pred = ExactThreshold(tau=0.5, block_m=64)

            def inputs(kw: dict[str, Any] = kw) -> Any:
                yield {**kw, "_branch": "cond", "_step": 0}

            tdir = Path(args.trace_dir) if args.trace_dir else out
            tdir.mkdir(parents=True, exist_ok=True)
            one = tdir / f"cp-{name}-1gpu.fgt"
            cpt = tdir / f"cp-{name}-ulysses{p}.fgt"
            res1 = None
            if rank == 0:
                res1 = capture_transformer(tr, inputs, one, pred, schedule=Schedule.parse("all"), layers=layers,
                                           keep_outputs=True, grid=grid, model_name=name)
            barrier(dev)
            tr.enable_parallelism(config=ContextParallelConfig(ulysses_degree=p))
            res2 = capture_transformer(tr, inputs, cpt, pred, schedule=Schedule.parse("all"), layers=layers,
                                       keep_outputs=True, grid=grid, model_name=name, write=rank == 0)
            if rank == 0:
                row.update(compare_traces(one, cpt))
                o1, o2 = res1.outputs[0], res2.outputs[0]
                row.update(output_bitwise_equal=bool(torch.equal(o1, o2)), output_rel_err=rel_err(o2, o1),
                           entries=res1.entries, S=int(np.prod(grid)), status="ok")
                for f in (one, cpt):
                    f.unlink(missing_ok=True) if not args.keep_traces else None
            del tr
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            row.update(status=f"error: {type(exc).__name__}: {str(exc)[:160]}")
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        if rank == 0:
            write_csv(out / "cp-capture.csv", rows)
        log(f"a {name}: {row.get('status')} masks_identical={row.get('masks_identical', '')} "
            f"stats_identical={row.get('stats_identical', '')} ({row['seconds']} s)")
        barrier(dev)


def compare_traces(a: Path, b: Path) -> dict[str, Any]:
    """Entry-by-entry comparison of two traces: packed masks, counts, statistics, metadata sans provenance."""
    from fgsim.trace import open_trace

    ta, tb = open_trace(a), open_trace(b)
    try:
        ea, eb = ta.entries(), tb.entries()
        masks = counts = stats = True
        diff_bits = 0
        worst_stat = 0.0
        for e in ea:
            pa, pb = np.asarray(ta.packed_mask(*e)), np.asarray(tb.packed_mask(*e))
            if pa.shape != pb.shape or not np.array_equal(pa, pb):
                masks = False
                if pa.shape == pb.shape:
                    diff_bits += int(np.unpackbits(pa ^ pb).sum())
            if not np.array_equal(ta.counts(*e), tb.counts(*e)):
                counts = False
            sa, sb = ta.stats(*e), tb.stats(*e)
            for kk in sa:
                if not np.array_equal(sa[kk], sb[kk]):
                    stats = False
                    worst_stat = max(worst_stat, float(np.abs(sa[kk] - sb[kk]).max()))
        import zipfile

        from fgsim.trace import META_MEMBER

        with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
            names = sorted(n for n in za.namelist() if n != META_MEMBER)
            same_members = names == sorted(n for n in zb.namelist() if n != META_MEMBER) and all(
                za.read(n) == zb.read(n) for n in names)
            da, db = (json.loads(z.read(META_MEMBER)) for z in (za, zb))
        for d in (da, db):
            d.pop("provenance", None)
            d.get("meta", {}).pop("provenance", None) if isinstance(d.get("meta"), dict) else None
        return {"entries_equal": ea == eb, "masks_identical": masks and ea == eb, "mask_bits_differing": diff_bits,
                "counts_identical": counts, "stats_identical": stats, "stats_max_abs_diff": worst_stat,
                "data_members": len(names), "data_members_bytes_identical": same_members,
                "meta_identical_sans_provenance": da == db}
    finally:
        ta.close()
        tb.close()


# --------------------------------------------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpu", action="store_true", help="gloo on the CPU, tiny shapes (checks the script)")
    ap.add_argument("--parts", default="b,c,a")
    ap.add_argument("--budget-s", type=float, default=170.0, help="wall-clock budget; parts are skipped past it")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--keep-traces", action="store_true")
    ap.add_argument("--trace-dir", default="", help="where the capture's traces are written (default --out)")
    ap.add_argument("--comm-target-ms", type=float, default=3.0,
                    help="length of one timing of the collectives (total, comm): graph replay, or back-to-back "
                    "eager calls where collectives are not captured")
    ap.add_argument("--models", default="", help="capture only these (comma-separated: refdit-480p, "
                    "wan2.1-1.3b-480p-random, wan2.1-14b-720p-random)")
    ap.add_argument("--need-14b-s", type=float, default=120.0,
                    help="seconds that must be left to start the Wan2.1-14B capture")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch
    import torch.distributed as dist

    dev, rank, p = setup(args)
    from fgsim.provenance import environment

    env = environment()
    env.update(world_size=str(p), backend=dist.get_backend(), nccl=".".join(map(str, torch.cuda.nccl.version()))
               if dev.type == "cuda" else "", nvls=os.environ.get("NCCL_NVLS_ENABLE", ""))
    try:
        import diffusers

        env["diffusers"] = diffusers.__version__
    except ImportError:
        env["diffusers"] = ""
    log(f"{p} ranks, {env.get('gpu_name') or 'cpu'}, torch {env['torch']}, diffusers {env['diffusers']}")
    if rank == 0:
        (out / "cp-env.json").write_text(json.dumps(env, indent=1))
    numerics: list[dict[str, Any]] = []
    timing: list[dict[str, Any]] = []
    capture: list[dict[str, Any]] = []
    counts: dict[str, Any] = {}
    parts = args.parts.split(",")
    allt: list[Any] = [([], [])]
    for part in parts:
        if left(args) < 30:
            log(f"skipping part {part}: out of time")
            continue
        try:
            if part == "b":
                part_b(args, dev, rank, p, numerics)
                if env["diffusers"]:
                    part_b_diffusers(args, dev, rank, p, numerics)
            elif part == "c":
                part_c(args, dev, rank, p, timing, counts)
            elif part == "a":
                part_a(args, dev, rank, p, capture, out)
        except Exception:  # noqa: BLE001 - one part failing must not lose the others' results
            import traceback

            traceback.print_exc()
        barrier(dev)
        # every rank's timing rows to rank 0; everything written after each part (a time-out keeps the rest)
        allt = [None] * p
        dist.all_gather_object(allt, (timing, []))
        if rank == 0:
            write_csv(out / "cp-numerics.csv", numerics)
            write_csv(out / "cp-capture.csv", capture)
            write_csv(out / "cp-timing.csv", [r for t, _ in allt for r in t])
            if counts and part == "c":
                np.savez_compressed(out / "cp-counts.npz", **{k.replace("/", "__"): v for k, v in counts.items()})
    if rank == 0:
        print("\n== numerics ==")
        for r in numerics:
            print(f"{r['case']:<24} {r['kernel']:<5} {r['scheme']:<7} {r.get('status', '')[:28]:<28} "
                  f"rel={r.get('rel_err_vs_1gpu', float('nan')):.2e} bitwise={r.get('bitwise_equal', '')} "
                  f"1gpu/cp vs {r.get('ref', '-')}: {r.get('rel_err_1gpu_vs_ref', float('nan')):.1e}/"
                  f"{r.get('rel_err_cp_vs_ref', float('nan')):.1e}")
        print("== capture ==")
        for r in capture:
            print({k: r.get(k) for k in ("model", "status", "masks_identical", "stats_identical",
                                         "output_bitwise_equal", "seconds")})
        print("== timing (rank 0 / rank 1, total | attn | comm, ms) ==")
        by = {}
        for t, _ in allt:
            for r in t:
                by.setdefault((r["shape"], r["kernel"], r["density"], r["scheme"]), {})[r["rank"]] = r
        for key, rr in by.items():
            print(f"{key[0]:<18} {key[1]:<5} d={key[2]:<4} {key[3]:<7} " + " / ".join(
                f"{x.get('total_median_s', 0) * 1e3:7.2f} | {x.get('attn_median_s', 0) * 1e3:7.2f} | "
                f"{x.get('comm_median_s', 0) * 1e3:6.2f}" for _, x in sorted(rr.items())))
        print(f"done in {time.time() - T0:.0f} s")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
