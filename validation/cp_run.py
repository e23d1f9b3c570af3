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


class Timer:
    """Seconds of a callable on this rank: CUDA events on the GPU, perf_counter on the CPU; both ranks start
    together (barrier)."""

    def __init__(self, dev: Any) -> None:
        self.dev = dev

    def __call__(self, fn: Any) -> float:
        import torch

        barrier(self.dev)
        if self.dev.type != "cuda":
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        return a.elapsed_time(b) * 1e-3


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
            for scheme in ("ulysses", "ring"):
                row: dict[str, Any] = {"case": name, "S": s, "heads": h, "head_dim": d, "block_m": m, "density": dens,
                       "kernel": kern, "scheme": scheme, "P": p, "dtype": str(dtype).replace("torch.", "")}
                try:
                    ma2 = MaskedAttention(kern, None if kern == "dense" else mask, block_m=m)
                    if scheme == "ulysses":
                        out = ulysses_attention(q[:, sh], k[:, sh], v[:, sh], ma2.heads)
                    else:
                        out = ring_attention(q[:, sh], k[:, sh], v[:, sh], ma2.shard)
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


def comm_bench(args: argparse.Namespace, dev: Any, rank: int, p: int, sizes: list[int], timer: Timer,
               rows: list[dict[str, Any]]) -> None:
    import torch
    import torch.distributed as dist

    rounds = 3 if args.cpu else 9
    fused = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    peer = (rank + 1) % p
    for nbytes in sizes:
        n = nbytes // 2 // p * p
        x = torch.randn(n, device=dev).to(torch.bfloat16)
        y = torch.empty_like(x)
        big = torch.empty(n * p, dtype=x.dtype, device=dev)
        view = x.view(p, -1, 128) if n % (p * 128) == 0 else x.view(p, -1)

        def a2a(x: Any = x, y: Any = y) -> None:
            dist.all_to_all_single(y, x)

        def ag(x: Any = x, big: Any = big) -> None:
            fused(big, x)

        def p2p(x: Any = x, y: Any = y) -> None:
            ops = [dist.P2POp(dist.isend, x, peer), dist.P2POp(dist.irecv, y, (rank - 1) % p)]
            for w in dist.batch_isend_irecv(ops):
                w.wait()

        def copy(view: Any = view) -> None:
            view.transpose(0, 1).contiguous()

        for _ in range(2):
            a2a(), ag(), p2p(), copy()
        meas: dict[str, list[float]] = {"alltoall": [], "allgather": [], "p2p": [], "copy": []}
        for _ in range(rounds):
            meas["alltoall"].append(timer(a2a))
            meas["allgather"].append(timer(ag))
            meas["p2p"].append(timer(p2p))
            meas["copy"].append(timer(copy))
        for op, ts in meas.items():
            med = float(np.median(ts))
            size = n * 2 if op != "allgather" else n * 2 * p  # all-gather: the gathered output size
            rows.append({"op": op, "bytes": size, "P": p, "rank": rank, "median_s": med, "min_s": min(ts),
                         "max_s": max(ts), "rounds": rounds,
                         "busbw_gbs": (size * (p - 1) / p if op in ("alltoall", "allgather") else
                                       size if op == "p2p" else 2 * size) / med / 1e9})
        del x, y, big


def part_c(args: argparse.Namespace, dev: Any, rank: int, p: int, timing: list[dict[str, Any]],
           comm_rows: list[dict[str, Any]], counts: dict[str, Any]) -> None:
    import torch

    from fgsim.integrations.context_parallel import (
        MaskedAttention,
        heads_to_seq,
        ring_compute,
        ring_gather_kv,
        seq_to_heads,
        ulysses_attention,
    )

    timer = Timer(dev)
    if args.cpu:
        shapes = [("tiny", 2 * 96, 4, 64)]
        densities = [0.1, 0.3]
        kernels = ["fg", "block", "dense"] if os.environ.get("TRITON_INTERPRET") == "1" else ["torch"]
        m = 64
        rounds = 2
        sizes = [1 << 16, 1 << 20]
    else:
        shapes = [("wan2.1-1.3b-480p", 32760, 12, 128), ("wan2.1-14b-720p", 75600, 40, 128)]
        densities = [0.1, 0.3]
        kernels = ["fg", "block", "dense"]
        m = 128
        rounds = args.rounds
        sizes = sorted({1 << 20, 16 << 20, 64 << 20, 256 << 20} |
                       {s // p * h * d * 2 for _, s, h, d in shapes} | {2 * s * h * d * 2 for _, s, h, d in shapes})
    log(f"c: comm microbenchmarks at {len(sizes)} sizes")
    comm_bench(args, dev, rank, p, sizes, timer, comm_rows)
    configs = []
    for shape, s, h, d in shapes:
        sl = s // p
        g = torch.Generator(device=dev).manual_seed(4321 + s)
        dt = torch.float32 if args.cpu else torch.bfloat16
        full = [torch.randn(1, s, h, d, generator=g, device=dev, dtype=torch.float32).to(dt) for _ in range(3)]
        q, k, v = (x[:, rank * sl:(rank + 1) * sl].contiguous() for x in full)
        del full
        for dens in densities:
            mask = synth_mask(h, s, m, dens, 77 + int(dens * 100), dev)
            # counts for the prediction: per head/query block at n=1 and n=M, and per (rank, shard)
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
                        b0, b1 = (r * sp) // m, -(-((r + 1) * sp) // m)
                        for j in range(pp):
                            part = mk[:, b0:b1, j * sp:(j + 1) * sp]
                            counts[f"{key}/ring{pp}/r{r}/j{j}/n1"] = part.sum(-1).int().cpu().numpy()
                            if sp % m == 0:
                                counts[f"{key}/ring{pp}/r{r}/j{j}/n{m}"] = _tiles(part, m).cpu().numpy()
            for kern in kernels:
                if kern == "dense" and dens != densities[0]:
                    continue
                for scheme in ("ulysses", "ring"):
                    if scheme == "ring" and kern == "block" and sl % m:
                        continue
                    ma = MaskedAttention(kern, None if kern in ("dense",) else mask, block_m=m)
                    configs.append((shape, s, h, d, dens if kern != "dense" else 1.0, kern, scheme, q, k, v, ma))
            del mask
    # pre-exchanged inputs per shape (attention-only timing) and warm-up (compiles, builds the indices)
    pre: dict[tuple[str, str], Any] = {}
    for cfg in configs:
        shape, s, h, d, dens, kern, scheme, q, k, v, ma = cfg
        if (shape, scheme) not in pre:
            pre[(shape, scheme)] = tuple(seq_to_heads(x) for x in (q, k, v)) if scheme == "ulysses" else \
                ring_gather_kv(k, v)
    fns = []
    for cfg in configs:
        shape, s, h, d, dens, kern, scheme, q, k, v, ma = cfg
        g = h // p
        if scheme == "ulysses":
            qf, kf, vf = pre[(shape, scheme)]
            hs = range(rank * g, (rank + 1) * g)
            o_full = ma.heads(qf, kf, vf, hs)
            total = (lambda q=q, k=k, v=v, ma=ma: ulysses_attention(q, k, v, ma.heads))
            attn = (lambda qf=qf, kf=kf, vf=vf, hs=hs, ma=ma: ma.heads(qf, kf, vf, hs))
            comm = (lambda q=q, k=k, v=v, o=o_full: ([seq_to_heads(x) for x in (q, k, v)], heads_to_seq(o)))
        else:
            kv = pre[(shape, scheme)]
            total = (lambda q=q, k=k, v=v, ma=ma: ring_compute(q, ring_gather_kv(k, v), ma.shard, rank, p))
            attn = (lambda q=q, kv=kv, ma=ma: ring_compute(q, kv, ma.shard, rank, p))
            comm = (lambda k=k, v=v: ring_gather_kv(k, v))
        fns.append((cfg, total, attn, comm))
    log(f"c: warm-up of {len(fns)} configurations (compiles, index builds)")
    for _cfg, total, attn, comm in fns:
        total(), attn(), comm()
        if left(args) < 60:
            break
    barrier(dev)
    res: dict[int, dict[str, list[float]]] = {i: {"total": [], "attn": [], "comm": []} for i in range(len(fns))}
    log(f"c: {rounds} interleaved rounds")
    from fgsim.provenance import ClockSampler

    with ClockSampler(period_s=0.5) as clk:
        for rd in range(rounds):
            for i, (_cfg, total, attn, comm) in enumerate(fns):
                res[i]["total"].append(timer(total))
                res[i]["attn"].append(timer(attn))
                res[i]["comm"].append(timer(comm))
            if left(args) < 45 and rd >= 2:
                log(f"c: stopping after {rd + 1} rounds (time)")
                break
    clocks = clk.summary()
    for i, (cfg, *_rest) in enumerate(fns):
        shape, s, h, d, dens, kern, scheme, *_x = cfg
        row = {"shape": shape, "S": s, "heads": h, "head_dim": d, "block_m": m, "density": dens, "kernel": kern,
               "scheme": scheme, "P": p, "rank": rank, "rounds": len(res[i]["total"]), **clocks}
        for part, ts in res[i].items():
            row[f"{part}_median_s"] = float(np.median(ts))
            row[f"{part}_min_s"] = float(min(ts))
            row[f"{part}_max_s"] = float(max(ts))
        timing.append(row)


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

    def wan13b() -> tuple[Any, dict[str, Any], tuple[int, int, int]]:
        cfg = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                   out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                   qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
        if args.cpu:
            cfg.update(num_attention_heads=2, attention_head_dim=64, ffn_dim=64, num_layers=2, text_dim=32,
                       freq_dim=32)
        torch.manual_seed(0)
        with torch.device(dev):
            tr = WanTransformer3DModel(**cfg).to(dtype).eval()
        for prm in tr.parameters():  # identical random weights on every rank
            dist.broadcast(prm.data, 0)
        grid = (2, 8, 16) if args.cpu else (21, 30, 52)
        g = torch.Generator(device="cpu").manual_seed(4)
        x = torch.randn(1, 16, grid[0], grid[1] * 2, grid[2] * 2, generator=g).to(dev, dtype)
        e = torch.randn(1, 512 if not args.cpu else 8, cfg["text_dim"], generator=g).to(dev, dtype)
        return tr, {"hidden_states": x, "timestep": torch.tensor([800.0], device=dev), "encoder_hidden_states": e,
                    "return_dict": False}, grid

    for name, build, layers in (("refdit-480p", refdit, None), ("wan2.1-1.3b-480p-random", wan13b, (0, 15, 29))):
        if left(args) < 40:
            rows.append({"model": name, "status": "skipped (time)"})
            continue
        t0 = time.time()
        row: dict[str, Any] = {"model": name, "P": p, "scheme": "ulysses", "predictor": "exact tau=0.5 M=64"}
        try:
            tr, kw, grid = build()
            if args.cpu and layers is not None:
                layers = (0, 1)
            pred = ExactThreshold(tau=0.5, block_m=64)

            def inputs(kw: dict[str, Any] = kw) -> Any:
                yield {**kw, "_branch": "cond", "_step": 0}

            one = out / f"cp-{name}-1gpu.fgt"
            cpt = out / f"cp-{name}-ulysses{p}.fgt"
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
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            row.update(status=f"error: {type(exc).__name__}: {str(exc)[:160]}")
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
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
    numerics: list[dict[str, Any]] = []
    timing: list[dict[str, Any]] = []
    comm: list[dict[str, Any]] = []
    capture: list[dict[str, Any]] = []
    counts: dict[str, Any] = {}
    parts = args.parts.split(",")
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
                part_c(args, dev, rank, p, timing, comm, counts)
            elif part == "a":
                part_a(args, dev, rank, p, capture, out)
        except Exception:  # noqa: BLE001 - one part failing must not lose the others' results
            import traceback

            traceback.print_exc()
        barrier(dev)
        # every rank's timing rows to rank 0
        if rank == 0:
            write_csv(out / "cp-numerics.csv", numerics)
            write_csv(out / "cp-capture.csv", capture)
    allt = [None] * p
    dist.all_gather_object(allt, (timing, comm))
    if rank == 0:
        write_csv(out / "cp-timing.csv", [r for t, _ in allt for r in t])
        write_csv(out / "cp-comm.csv", [r for _, c in allt for r in c])
        if counts:
            np.savez_compressed(out / "cp-counts.npz", **{k.replace("/", "__"): v for k, v in counts.items()})
        (out / "cp-env.json").write_text(json.dumps(env, indent=1))
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
                f"{x['total_median_s'] * 1e3:7.2f} | {x['attn_median_s'] * 1e3:7.2f} | {x['comm_median_s'] * 1e3:6.2f}"
                for _, x in sorted(rr.items())))
        print(f"done in {time.time() - T0:.0f} s")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
