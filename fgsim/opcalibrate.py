"""``fgsim calibrate --ops``: microbenchmarks that price non-attention operators (GPU; :mod:`fgsim.opmodel`).

What is measured (each in isolation, CUDA-graph replays timed with CUDA events, median of rounds):

- every distinct GEMM (and the patch-embedding convolution) of the given models at their real shapes (the
  Wan2.1, HunyuanVideo and CogVideoX passes of :data:`OPS_MODELS` and one step of the reference DiT's sampler);
- every distinct memory-bound operator of those passes (random inputs of the recorded shapes, strides and
  dtypes), from which one bandwidth per operator class (``copy``, ``pointwise``, ``reduction``, ``strided``)
  is kept: the class's bytes over its time;
- the GPU gap between back-to-back tiny kernels (graph replay) and the host time per eager aten operator
  (a tiny Wan transformer of the same structure run eagerly: host-bound by construction); the host's rate of
  drawing normal values on the CPU and the pageable host-to-device bandwidth (a sampler's set-up);
- cuDNN SDPA at calibration sizes that are not the models' (self: N = 8,192 … 98,304 at D = 128 and 64;
  cross: 512 and 256 keys);
- the exact and pooled mask predictors and the FG index build at one calibration size.

The per-pass measurements of ``validation/e2e_time.py`` are never used here: they validate the model.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fgsim.opmodel import MEM_CLASSES, Op, OpCalibration, gemm_key, sig_key

#: A replay faster than this (bytes/s) did no real work (e.g. a meta-device kwarg): dropped.
IMPLAUSIBLE_BW = 8e12


def _materialize(spec: Any, device: str) -> Any:
    import torch

    if isinstance(spec, tuple) and spec and spec[0] == "T":
        _, shape, stride, dtype, offset = spec
        dt = getattr(torch, dtype)
        extent = offset + 1 + sum((s - 1) * st for s, st in zip(shape, stride, strict=True) if s > 0)
        if dt.is_floating_point:
            base = torch.randn(max(extent, 1), device=device, dtype=torch.float32).to(dt)
        elif dt == torch.bool:
            base = torch.rand(max(extent, 1), device=device) < 0.5
        else:
            base = torch.randint(0, 2, (max(extent, 1),), device=device, dtype=dt)
        return base.as_strided(shape, stride, offset)
    if isinstance(spec, tuple) and spec and spec[0] == "D":
        return getattr(torch, spec[1])
    if isinstance(spec, tuple) and spec and spec[0] == "V":
        return torch.device(device)
    if isinstance(spec, tuple) and spec and spec[0] == "R":
        name = spec[1].replace("torch.", "")
        return getattr(torch, name)
    if isinstance(spec, list):
        return [_materialize(x, device) for x in spec]
    if isinstance(spec, dict):
        return {k: _materialize(v, device) for k, v in spec.items()}
    return spec


def _resolve(func_name: str) -> Any:
    import torch

    parts = func_name.split(".")  # aten.add.Tensor
    obj: Any = torch.ops
    for p in parts:
        obj = getattr(obj, p)
    return obj


def _cpu_time(fn: Callable[[], Any], reps: int, rounds: int) -> tuple[float, float]:
    """Host-timed fallback for CPU smoke tests (not a measurement)."""
    fn()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        ts.append((time.perf_counter() - t0) / reps)
    med = statistics.median(ts)
    return med, (max(ts) - min(ts)) / med if med > 0 else 0.0


def graph_time(fn: Callable[[], Any], reps: int = 10, rounds: int = 5) -> tuple[float, float]:
    """(median, spread) seconds per call of ``fn`` from CUDA-graph replays (``reps`` calls per graph)."""
    import torch

    if not torch.cuda.is_available():
        return _cpu_time(fn, 1, 2)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    ts = []
    for _ in range(rounds):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        g.replay()
        e1.record()
        torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) * 1e-3 / reps)
    med = statistics.median(ts)
    return med, (max(ts) - min(ts)) / med if med > 0 else 0.0


def event_time(fn: Callable[[], Any], rounds: int = 5) -> tuple[float, float]:
    """(median, spread) seconds of ``fn`` timed with CUDA events, one call per round (for non-capturable code)."""
    import torch

    if not torch.cuda.is_available():
        return _cpu_time(fn, 1, 2)

    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(rounds):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) * 1e-3)
    med = statistics.median(ts)
    return med, (max(ts) - min(ts)) / med if med > 0 else 0.0


def measure_ops(ops: Sequence[Op], device: str = "cuda", log: Callable[[str], None] = print,
                min_bytes: float = 4e6) -> tuple[dict[str, float], dict[str, float], list[dict[str, Any]]]:
    """GEMM seconds per shape key, bandwidth per memory class, and one row per measured operator."""
    import torch

    gap = kernel_gap()
    gemm: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    cls_bytes = dict.fromkeys(MEM_CLASSES, 0.0)
    cls_time = dict.fromkeys(MEM_CLASSES, 0.0)
    seen: set[str] = set()
    for op in ops:
        if op.kind not in ("gemm", "mem") or op.spec is None:
            continue
        key = gemm_key(op.gemm) if op.kind == "gemm" and op.gemm else op.sig
        if key in seen or (op.kind == "mem" and op.bytes < min_bytes):
            continue
        seen.add(key)
        func_name, aspec, kspec = op.spec
        try:
            func = _resolve(func_name)
            args = _materialize(aspec, device)
            kwargs = _materialize(kspec, device)
            if func_name.startswith("aten.copy_") or func_name.endswith("_.Scalar") or "_." in func_name:
                pass  # in-place ops overwrite their random input again on every replay: same traffic
            try:
                t, spread = graph_time(lambda f=func, a=args, k=kwargs: f(*a, **k))
            except Exception:  # noqa: BLE001 - not capturable in a graph: events around single calls
                torch.cuda.synchronize()
                t, spread = event_time(lambda f=func, a=args, k=kwargs: f(*a, **k))
                t += gap  # an event pair times the kernel alone: add the gap that is subtracted below
        except Exception as exc:  # noqa: BLE001 - an op that cannot be replayed is skipped and reported
            rows.append({"op": op.name, "kind": op.kind, "key": key[:120], "error": str(exc)[:200]})
            continue
        t_kernel = max(t - gap, 1e-7)
        if op.kind == "gemm":
            gemm[key] = t_kernel
            rows.append({"op": op.name, "kind": "gemm", "key": key, "seconds": t_kernel, "spread": spread,
                         "flops": op.flops, "tflops": op.flops / t_kernel / 1e12})
        else:
            cls_bytes[op.mem_class] += op.bytes
            cls_time[op.mem_class] += t_kernel
            rows.append({"op": op.name, "kind": "mem", "class": op.mem_class, "key": key[:200],
                         "sig": sig_key(key), "seconds": t_kernel,
                         "spread": spread, "bytes": op.bytes, "gbps": op.bytes / t_kernel / 1e9})
        del args, kwargs
        if device == "cuda":
            torch.cuda.empty_cache()
    gemm, bw, _ = tables_from_rows(rows)
    log(f"ops: {len(gemm)} GEMM shapes, bandwidth GB/s " + ", ".join(f"{c} {v / 1e9:.0f}" for c, v in bw.items()))
    return gemm, bw, rows


def measure_gemm_bursts(ops: Sequence[Op], min_flops: float = 1e10, rounds: int = 5, idle_s: float = 0.03,
                        log: Callable[[str], None] = print) -> dict[str, float]:
    """Seconds of each distinct GEMM (>= ``min_flops``) launched alone after ``idle_s`` of GPU idleness (CUDA
    events around one call, median of ``rounds``): the clock a GEMM gets between memory-bound stretches, against
    the sustained (possibly power-limited) clock of back-to-back replays that :func:`measure_ops` times."""
    import torch

    out: dict[str, float] = {}
    for op in ops:
        if op.kind != "gemm" or op.gemm is None or op.spec is None or op.flops < min_flops:
            continue
        key = gemm_key(op.gemm)
        if key in out:
            continue
        func_name, aspec, kspec = op.spec
        try:
            func = _resolve(func_name)
            args = _materialize(aspec, "cuda")
            kwargs = _materialize(kspec, "cuda")
            func(*args, **kwargs)
            ts = []
            for _ in range(rounds):
                torch.cuda.synchronize()
                time.sleep(idle_s)
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                func(*args, **kwargs)
                e1.record()
                torch.cuda.synchronize()
                ts.append(e0.elapsed_time(e1) * 1e-3)
            out[key] = statistics.median(ts)
        except Exception as exc:  # noqa: BLE001 - a shape that cannot run is left out
            log(f"gemm burst {key}: {exc!r}"[:200])
        torch.cuda.empty_cache()
    log(f"gemm bursts: {len(out)} shapes")
    return out


def tables_from_rows(rows: Sequence[dict[str, Any]], sigs: dict[str, str] | None = None
                     ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(GEMM seconds per shape key, bandwidth per class, seconds per memory-op signature key) from measured rows.

    Rows whose bandwidth is implausible (> ``IMPLAUSIBLE_BW``) are dropped. ``sigs`` maps a row's ``key``
    (a signature prefix, in rows written before the ``sig`` column existed) to its signature key."""
    gemm: dict[str, float] = {}
    mem: dict[str, float] = {}
    cls_bytes = dict.fromkeys(MEM_CLASSES, 0.0)
    cls_time = dict.fromkeys(MEM_CLASSES, 0.0)
    for r in rows:
        if r.get("error") or not r.get("seconds"):
            continue
        t = float(r["seconds"])
        if r["kind"] == "gemm_burst":
            continue
        if r["kind"] == "gemm":
            gemm[str(r["key"])] = t
            continue
        b = float(r["bytes"])
        if b / t > IMPLAUSIBLE_BW:
            continue
        cls_bytes[r["class"]] += b
        cls_time[r["class"]] += t
        sk = r.get("sig") or (sigs or {}).get(str(r["key"]))
        if sk:
            mem[sk] = t
    bw = {c: cls_bytes[c] / cls_time[c] for c in MEM_CLASSES if cls_time[c] > 0}
    return gemm, bw, mem


def measure_host_setup(n: int = 1 << 24, rounds: int = 3) -> dict[str, float]:
    """Host rates a sampler's set-up pays: float32 normal values drawn on the CPU per second (a seeded CPU
    generator, as device-independent samplers draw their initial noise) and pageable host-to-device bytes/s."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(0)
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        x = torch.randn(n, generator=gen, dtype=torch.float32)
        ts.append(time.perf_counter() - t0)
    out = {"cpu_randn_per_s": n / statistics.median(ts)}
    if torch.cuda.is_available():
        ts = []
        for _ in range(rounds):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            x.to("cuda")
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        out["h2d_pageable_bw"] = 4.0 * n / statistics.median(ts)
    return out


def kernel_gap() -> float:
    """Seconds per tiny kernel in a CUDA graph (launch-to-launch gap on the GPU)."""
    import torch

    x = torch.zeros(16, device=_dev())
    t, _ = graph_time(lambda: x.add_(1.0), reps=200, rounds=5)
    return t


def host_per_op(tiny_transformer: Any, inputs: dict[str, Any], n_ops: int, rounds: int = 5) -> float:
    """Host seconds per aten operator: a tiny transformer's eager pass (host-bound) over its operator count."""
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    with torch.no_grad():
        tiny_transformer(**inputs)
        sync()
        ts = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            tiny_transformer(**inputs)
            sync()
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts) / max(n_ops, 1)


def _dev() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def measure_sdpa(log: Callable[[str], None] = print, small: bool = False) -> dict[str, Any]:
    """cuDNN SDPA rate (FLOP/s) at calibration sizes: self-attention points and cross-attention (512 keys)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    out: dict[str, list[tuple[float, float]]] = {"points": [], "cross_points": []}
    sizes = ((8192, 24, None, 128), (20480, 12, None, 128), (49152, 8, None, 128), (98304, 4, None, 128),
             (16384, 16, 512, 128), (65536, 16, 512, 128), (12288, 32, None, 64), (49152, 8, None, 64),
             (16384, 24, 256, 128)) if not small else ((256, 2, None, 128), (512, 2, None, 128), (256, 2, 64, 128))
    dt = torch.bfloat16 if _dev() == "cuda" else torch.float32
    for n, h, sk, d in sizes:
        s_k = sk or n
        q = torch.randn(1, h, n, d, device=_dev(), dtype=dt)
        k = torch.randn(1, h, s_k, d, device=_dev(), dtype=dt)
        v = torch.randn_like(k)
        backend = SDPBackend.CUDNN_ATTENTION if _dev() == "cuda" else SDPBackend.MATH
        with sdpa_kernel(backend):
            t, spread = graph_time(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v), reps=3, rounds=5)
        rate = 4.0 * h * n * s_k * d / t
        which = ("cross_points" if sk else "points") + ("" if d == 128 else f"_d{d}")
        out.setdefault(which, []).append((float(n) * s_k, rate))
        log(f"cudnn sdpa N={n} S_k={s_k} H={h} D={d}: {t * 1e3:.3f} ms ({rate / 1e12:.0f} TFLOP/s, spread "
            f"{spread:.3f})")
        del q, k, v
    return {**out, "overhead_s": 0.0}


def measure_predictors(log: Callable[[str], None] = print, n: int = 16384, heads: int = 4) -> dict[str, Any]:
    """Exact/pooled predictor and FG index build at one calibration size (events, median of rounds)."""
    import fgattn
    import torch

    from fgsim.capture.predictors import make_predictor

    dev = _dev()
    dt = torch.bfloat16 if dev == "cuda" else torch.float32
    q = torch.randn(1, heads, n, 128, device=dev, dtype=dt)
    k = torch.randn(1, heads, n, 128, device=dev, dtype=dt)
    ex = make_predictor("exact", threshold=0.5, block_m=64)
    po = make_predictor("pooled", block_m=64)
    t_ex, _ = event_time(lambda: ex(q, k))
    t_po, _ = event_time(lambda: po(q, k))
    # the exact rule at D = 64 (same H, N): the share of its per-score cost that scales with the head size
    q64, k64 = q[..., :64].contiguous(), k[..., :64].contiguous()
    t_ex64, _ = event_time(lambda: ex(q64, k64))
    qb = -(-n // 64)
    mask = torch.rand(1, heads, qb, n, device=dev) < 0.5
    t_ix, _ = event_time(lambda: fgattn.build_index(mask, block_m=64, gran_n=1))
    z = torch.empty(heads * qb * n, dtype=torch.uint8, device=dev)
    t_wr, _ = graph_time(lambda: z.fill_(1), reps=5)
    mask_bytes = float(heads * qb * n)
    write_bw = mask_bytes / t_wr
    exact_rate = heads * float(n) * n / max(t_ex - mask_bytes / write_bw, 1e-9)
    pooled_bw = (2.0 * heads * n * 128 * 2 + mask_bytes) / t_po
    index_bw = (mask_bytes + 4.0 * 0.5 * mask_bytes) / t_ix
    stages: dict[str, Any] = {}
    if dev == "cuda":
        try:
            stages = measure_pooled_stages(log)
        except Exception as exc:  # noqa: BLE001 - the single-point model stands without the stages
            log(f"pooled stages failed: {exc!r}"[:300])
    log(f"predictors N={n} H={heads}: exact {t_ex * 1e3:.2f} ms, pooled {t_po * 1e3:.2f} ms, index {t_ix * 1e3:.2f} ms")
    return {"exact_scores_per_s": heads * float(n) * n / t_ex, "exact_fixed_s": 0.0,
            "pooled_scores_per_s": heads * float(n) * n / t_po, "pooled_fixed_s": 0.0,
            "exact_rate_net_of_mask_write": exact_rate, "mask_write_bw": write_bw, "pooled_bw": pooled_bw,
            "index_bw": index_bw, "calibration_size": {"n": n, "heads": heads, "head_dim": 128, "block_m": 64,
                                                        "kept": 0.5},
            "measured_s": {"exact": t_ex, "pooled": t_po, "index": t_ix, "exact_d64": t_ex64},
            "pooled_stages": stages}


def measure_pooled_stages(log: Callable[[str], None] = print, n: int = 24576, heads: int = 8,
                          group: int = 16, block_m: int = 64) -> dict[str, Any]:
    """The pooled predictor's three stages at one calibration size (CUDA-graph replays, GPU time) and its whole
    call as a user runs it (host wall clock between synchronisations):

    - ``pool``: group means of q and k (reads ``2·H·N·D`` bf16 values) → ``pool_bw`` bytes/s;
    - ``groups``: pooled scores and the top-CDF rule over ``H·(N/G)²`` group pairs → ``group_rate`` pairs/s;
    - ``expand``: the ``H·⌈N/M⌉·N``-byte slice mask written from the group mask → ``expand_bw`` bytes/s;
    - ``fixed_s``: the whole call's wall clock minus the three GPU stages (launches, allocation, Python).
    """
    import torch

    from fgsim.capture import _triton
    from fgsim.capture.predictors import make_predictor

    q = torch.randn(1, heads, n, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn_like(q)
    t_pool, _ = graph_time(lambda: (_triton._pool(q, None, group, torch.float32),
                                    _triton._pool(k, None, group, torch.float32)), reps=5)
    t_group, _ = graph_time(lambda: _triton.pooled_group_mask(q, k, None, 128 ** -0.5, 0.9, 0.6, group), reps=5)
    gm = _triton.pooled_group_mask(q, k, None, 128 ** -0.5, 0.9, 0.6, group)
    t_exp, _ = graph_time(lambda: _triton.expand_group_mask(gm, n, n, group, block_m, None), reps=5)
    pr = make_predictor("pooled", block_m=block_m, group=group)
    pr(q, k)
    walls = []
    for _ in range(5):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        pr(q, k)
        torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    pairs = heads * float(-(-n // group)) ** 2
    pool_bytes = 2.0 * heads * n * 128 * 2
    mask_bytes = heads * float(-(-n // block_m)) * n
    t_g = max(t_group - t_pool, 1e-7)
    out = {"size": {"n": n, "heads": heads, "head_dim": 128, "group": group, "block_m": block_m},
           "pool_s": t_pool, "groups_s": t_g, "expand_s": t_exp, "wall_s": wall,
           "pool_bw": pool_bytes / t_pool, "group_rate": pairs / t_g, "expand_bw": mask_bytes / t_exp,
           "fixed_s": max(wall - t_pool - t_g - t_exp, 0.0)}
    log(f"pooled stages N={n} H={heads}: pool {t_pool * 1e3:.3f} ms, groups {t_g * 1e3:.3f} ms, expand "
        f"{t_exp * 1e3:.3f} ms, whole call {wall * 1e3:.3f} ms")
    return out


def calibrate_ops(op_lists: Sequence[Sequence[Op]], tiny: tuple[Any, dict[str, Any], int] | None, gpu: str,
                  log: Callable[[str], None] = print, small: bool = False,
                  burst_lists: Sequence[Sequence[Op]] | None = None) -> tuple[OpCalibration, list[dict[str, Any]]]:
    """Run every microbenchmark; returns the calibration and the raw rows (for a CSV). ``burst_lists``: operator
    lists whose GEMMs are also timed alone after idleness (:func:`measure_gemm_bursts`; default ``op_lists``)."""
    import torch

    all_ops = [op for ops in op_lists for op in ops]
    gemm, bw, rows = measure_ops(all_ops, device=_dev(), log=log, min_bytes=0.0 if small else 4e6)
    if _dev() == "cuda":
        bursts = measure_gemm_bursts([op for ops in (burst_lists or op_lists) for op in ops], log=log)
        rows += [{"op": "gemm_burst", "kind": "gemm_burst", "key": k, "seconds": t} for k, t in bursts.items()]
    _, _, mem = tables_from_rows(rows)
    pts = sorted((r["flops"], r["flops"] / r["seconds"]) for r in rows if r.get("kind") == "gemm" and "seconds" in r)
    gap = kernel_gap()
    host = host_per_op(*tiny) if tiny else 12e-6
    setup = measure_host_setup(1 << 16 if small else 1 << 24)
    log(f"gap {gap * 1e6:.2f} us/kernel, host {host * 1e6:.2f} us/op")
    att = measure_sdpa(log, small=small)
    clock: dict[str, Any] = {}
    if _dev() == "cuda":
        try:  # the SM clock under back-to-back attention at the power limit (whole-generation pricing)
            summary, _ = measure_attention_clock(log=log)
            summary["gpu"] = torch.cuda.get_device_name(0)
            clock = sustained_clock_record(summary, "fgsim calibrate --ops (measure_attention_clock)")
        except Exception as exc:  # noqa: BLE001 - optional: a GPU without nvidia-smi or fgattn records none
            log(f"attention clock not measured: {exc!r}"[:300])
    pred = measure_predictors(log, n=256, heads=2) if small else measure_predictors(log)
    cal = OpCalibration(
        gpu=gpu, gemm_s=gemm, gemm_eff=[(float(f), float(r)) for f, r in pts], bandwidth=bw, mem_s=mem, host_s=host,
        host_view_s=host, gap_s=gap, attention=att, predictor=pred, host=setup, sustained_clock=clock,
        provenance={"device": torch.cuda.get_device_name(0) if _dev() == "cuda" else "cpu (smoke test)",
                    "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d", time.gmtime()),
                    "method": "CUDA-graph replays timed with CUDA events, median of 5 rounds; gap subtracted per "
                              "kernel; host per op from a tiny same-structure transformer run eagerly",
                    "ops_measured": len(rows), "notes": "fgsim.opcalibrate (fgsim calibrate --ops)"})
    if not math.isfinite(gap):
        raise RuntimeError("kernel gap measurement failed")
    return cal, rows


def rebuild(base: OpCalibration, rows: Sequence[dict[str, Any]], op_lists: Sequence[Sequence[Op]]) -> OpCalibration:
    """Recompute the tables of ``base`` from its measured ``rows`` (CSV written by :func:`calibrate_ops`), e.g.
    after a fix to how rows are read; the traced ``op_lists`` map rows without a ``sig`` column to signatures
    (a 200-character prefix of the signature, used only where it is unambiguous)."""
    prefix: dict[str, set[str]] = {}
    for ops in op_lists:
        for op in ops:
            if op.kind == "mem":
                prefix.setdefault(op.sig[:200], set()).add(op.sig)
    sigs = {p: sig_key(next(iter(s))) for p, s in prefix.items() if len(s) == 1}
    gemm, bw, mem = tables_from_rows(rows, sigs)
    bursts = {str(r["key"]): float(r["seconds"]) for r in rows if r.get("kind") == "gemm_burst" and r.get("seconds")}
    pts = sorted((float(r["flops"]), float(r["flops"]) / float(r["seconds"])) for r in rows
                 if r.get("kind") == "gemm" and r.get("seconds") and not r.get("error"))
    prov = dict(base.provenance)
    prov["rebuilt"] = (f"tables recomputed from the measured rows by fgsim.opcalibrate.rebuild; rows faster than "
                       f"{IMPLAUSIBLE_BW / 1e12:.0f} TB/s dropped (replays that did no work)")
    return OpCalibration(gpu=base.gpu, gemm_s=gemm, gemm_eff=pts, bandwidth=bw, mem_s=mem, gemm_burst_s=bursts,
                         host=base.host, host_s=base.host_s,
                         host_view_s=base.host_view_s, gap_s=base.gap_s, host_compiled_s=base.host_compiled_s,
                         attention=base.attention, predictor=base.predictor, provenance=prov,
                         sustained_clock=base.sustained_clock)


def two_point(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(fixed seconds, rate) of ``t = fixed + x / rate`` through the smallest and largest of (x, t) points."""
    pts = sorted(points)
    (x1, t1), (x2, t2) = pts[0], pts[-1]
    rate = (x2 - x1) / (t2 - t1)
    return max(t1 - x1 / rate, 0.0), rate


def independent_points(cal: OpCalibration, kernel_csvs: Sequence[str], capture_csvs: Sequence[str],
                       index_csv: str | None) -> OpCalibration:
    """Add microbenchmarks measured by fgsim's other GPU benchmarks (never the per-pass runs) to ``cal``:

    - cuDNN SDPA at exact shapes (``validation/bench_kernels.py`` rows ``kernel=sdpa_cudnn``, no text; median
      over files and rounds) → ``attention.shapes``;
    - the exact and pooled predictors at B1 H12 N32760 D128 (``validation/bench_capture.py``: the shipped
      exact-Triton configuration and the random-input pooled row) → second points of the predictor models;
    - the FG index build (``build_index_wall`` of the index-cost benchmark) → the index bandwidth.
    """
    import csv as _csv
    import re

    shapes: dict[str, list[float]] = {}
    for path in kernel_csvs:
        with open(path) as fh:
            for r in _csv.DictReader(fh):
                if r.get("kernel") != "sdpa_cudnn" or r.get("n_text") not in (None, "", "0"):
                    continue
                try:
                    h, n, d, ms = int(r["H"]), int(r["N"]), int(r["D"]), float(r["ms"])
                except (KeyError, TypeError, ValueError):
                    continue
                shapes.setdefault(f"{h},{n},{n},{d}", []).append(ms * 1e-3)
    att = dict(cal.attention)
    att["shapes"] = {k: statistics.median(v) for k, v in shapes.items()}
    att["shapes_source"] = ("median of validation/bench_kernels.py sdpa_cudnn rows (CUDA-graph timed) in "
                            + ", ".join(Path(p).name for p in kernel_csvs))
    pred = dict(cal.predictor)
    small = pred["calibration_size"]
    x_small = small["heads"] * float(small["n"]) ** 2
    ex, po = [], []
    for path in capture_csvs:
        with open(path) as fh:
            for r in _csv.DictReader(fh):
                m = re.match(r"B1 H(\d+) N(\d+) D(\d+)", r.get("shape", ""))
                if not m:
                    continue
                x = int(m.group(1)) * float(m.group(2)) ** 2 * 128.0 / int(m.group(3))
                if r["impl"] == "exact_triton" and r["config"].startswith("BLOCK_M=128/BLOCK_N=128/num_warps=8/"
                                                                         "num_stages=2") and r["block_m"] == "64":
                    ex.append((x, float(r["ms_median"]) * 1e-3))
                elif r["impl"] == "pooled_triton" and r["config"].endswith("/random"):
                    po.append((x, float(r["ms_median"]) * 1e-3))
    meas = pred["measured_s"]
    for kind, pts in (("exact", ex), ("pooled", po)):
        if pts:
            big = (pts[0][0], statistics.median(t for _, t in pts))
            fixed, rate = two_point([(x_small, meas[kind]), big])
            pred[f"{kind}_fixed_s"], pred[f"{kind}_scores_per_s"] = fixed, rate
    if index_csv:
        bws = []
        with open(index_csv) as fh:
            for r in _csv.DictReader(fh):
                h, n, d, t = int(r["H"]), int(r["N"]), float(r["density"]), float(r["build_index_wall"]) * 1e-3
                mb = h * -(-n // 64) * float(n)
                bws.append((mb + 4.0 * d * mb) / t)
        pred["index_bw"] = statistics.median(bws)
    pred["sources"] = {"small_point": "fgsim.opcalibrate.measure_predictors (this calibration run)",
                       "large_point": ", ".join(Path(p).name for p in capture_csvs),
                       "index": Path(index_csv).name if index_csv else "this run"}
    prov = dict(cal.provenance)
    prov["independent_points"] = "cuDNN exact shapes, predictor second points, index bandwidth (see sections)"
    return OpCalibration(**{**cal.to_json(), "attention": att, "predictor": pred, "provenance": prov,
                            "gemm_eff": [tuple(x) for x in cal.gemm_eff]})


#: Models and resolutions whose operators ``fgsim calibrate --ops`` measures.
OPS_MODELS: tuple[tuple[str, str], ...] = (("wan2.1-1.3b", "480p"), ("wan2.1-1.3b", "720p"), ("wan2.1-14b", "480p"),
                                            ("hunyuanvideo", "480p-17f"), ("cogvideox-5b", "480p"))


def run_ops(out: str | None, csv_path: str | None, gpu: str | None) -> int:
    """``fgsim calibrate --ops``: measure on this GPU and write the operator calibration and its rows."""
    import csv
    import json

    import torch

    from fgsim.endtoend import ModelConfig, load_model
    from fgsim.errors import FgsimError
    from fgsim.fileio import check_output_path, write_text_atomic
    from fgsim.opmodel import CALIBRATION_DIR, build_transformer, model_ops, pass_inputs, trace_ops

    if not torch.cuda.is_available():
        raise FgsimError("calibrate --ops needs a CUDA GPU")
    from fgattn.launch import gpu_key

    name = gpu or gpu_key(torch.cuda.get_device_name(0))
    dest = Path(out) if out else CALIBRATION_DIR / f"{name}.json"
    check_output_path(dest, "--out", (".json",))
    rows_path = Path(csv_path) if csv_path else dest.with_suffix(".csv")
    tiny_cfg = {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 64, "in_channels": 4,
                "out_channels": 4, "text_dim": 32, "freq_dim": 256, "ffn_dim": 64, "num_layers": 30,
                "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 64}
    tm = ModelConfig(name="host-probe", layers=30, hidden=128, heads=2, head_dim=64, ffn=64, text_tokens_cross=8,
                     text_tokens_self=0, text_position="none", passes_per_step=2, steps=2,
                     resolutions={"480p": (2, 8, 8)}, sources={},
                     diffusers={"class": "WanTransformer3DModel", "config": tiny_cfg})
    from fgsim.opmodel import reference_sampler_ops

    # the models' passes and one step of the reference DiT's sampler (its transformer and latent arithmetic)
    op_lists = [model_ops(load_model(m), r) for m, r in OPS_MODELS] + [reference_sampler_ops(1)]
    tiny = (build_transformer(tm, "cuda", torch.bfloat16), pass_inputs(tm, "480p", "cuda", dtype=torch.bfloat16),
            len(trace_ops(build_transformer(tm, "meta"), pass_inputs(tm, "480p", "meta"))))
    cal, rows = calibrate_ops(op_lists, tiny, name)
    write_text_atomic(dest, json.dumps(cal.to_json(), indent=1, sort_keys=True) + "\n")
    keys = sorted({k for r in rows for k in r})
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(rows_path, buf.getvalue())
    print(f"written: {dest}, {rows_path}")
    return 0


#: seconds each attention kernel loops back to back for :func:`measure_attention_clock`, and the leading seconds
#: (power and clock ramp) left out of its statistics
ATTN_CLOCK_S = 14.0
ATTN_CLOCK_RAMP_S = 4.0
#: the shape of the clock measurement: Wan2.1-1.3B 480p self-attention (B=1, H=12, N=32,760, D=128), the FG mask
#: a structured window of kept density 0.3 at FgSchedule's default M = 64, gran_n = 1 (the tuned launch entry)
ATTN_CLOCK_SHAPE = {"heads": 12, "n": 32760, "head_dim": 128, "block_m": 64, "gran_n": 1, "density": 0.3}


def _quantiles(xs: Sequence[float]) -> dict[str, float]:
    s = sorted(xs)
    if not s:
        return {"median": float("nan"), "p10": float("nan"), "p90": float("nan"), "n": 0}

    def q(f: float) -> float:
        return float(s[min(len(s) - 1, max(0, round(f * (len(s) - 1))))])

    return {"median": float(statistics.median(s)), "p10": q(0.1), "p90": q(0.9), "min": s[0], "max": s[-1],
            "n": len(s)}


def measure_attention_clock(seconds: float = ATTN_CLOCK_S, ramp_s: float = ATTN_CLOCK_RAMP_S, period_ms: int = 100,
                            log: Callable[[str], None] = print, kernels: Sequence[str] = ("fg", "cudnn"),
                            shape: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """SM clock (MHz) the GPU sustains while attention kernels run back to back at its power limit.

    Per kernel (``fg``: the fgattn FG kernel, tuned launch entry; ``cudnn``: PyTorch SDPA on cuDNN) at
    :data:`ATTN_CLOCK_SHAPE`, the kernel loops for ``seconds`` (host synchronisation every 10 calls, no idle in
    between) while ``nvidia-smi -lms period_ms`` samples clocks.sm, power.draw and the throttle reasons; samples of
    the first ``ramp_s`` seconds are left out. Returns (summary, sample rows): per kernel the median / p10 / p90
    clock (MHz) and power (W) of the steady samples, ms per call in the first 0.5 s and in the steady part (their
    ratio checks that kernel time scales with the clock), and ``attention_mhz``: the FG kernel's steady median,
    the value :mod:`fgsim.endtoend` prices fgattn kernels at in whole generations."""
    import subprocess

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    sh = dict(ATTN_CLOCK_SHAPE, **(shape or {}))
    if not torch.cuda.is_available():
        raise RuntimeError("measure_attention_clock needs a CUDA GPU")
    h, n, d, bm = int(sh["heads"]), int(sh["n"]), int(sh["head_dim"]), int(sh["block_m"])
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(1, h, n, d, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
    out = torch.empty_like(q)
    calls: dict[str, Callable[[], Any]] = {}
    if "fg" in kernels:
        import fgattn
        from fgattn.masks import window_mask

        mask = window_mask(1, h, n, bm, float(sh["density"]), device="cuda", seed=0)
        ix = fgattn.build_index(mask, block_m=bm, gran_n=int(sh["gran_n"]))
        del mask
        calls["fg"] = lambda: fgattn.fg_attention(q, k, v, ix, block_m=bm, gran_n=int(sh["gran_n"]), out=out)
    if "cudnn" in kernels:
        def cudnn() -> Any:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v)
        calls["cudnn"] = cudnn
    for fn in calls.values():  # compile / autotune / handle creation outside the loops
        fn()
    torch.cuda.synchronize()
    import tempfile

    log_fh = tempfile.NamedTemporaryFile("w+", suffix=".csv", delete=False)
    proc = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active,"
                             "temperature.gpu", "--format=csv,noheader,nounits", "-lms", str(period_ms)],
                            stdout=log_fh, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1.0)
    windows: dict[str, tuple[float, float, list[tuple[float, float]]]] = {}
    try:
        for name, fn in calls.items():
            time.sleep(2.0)  # idle between kernels: each loop starts from the same state
            batches: list[tuple[float, float]] = []  # (seconds since start, ms per call)
            t0 = time.time()
            while time.time() - t0 < seconds:
                tb = time.time()
                for _ in range(10):
                    fn()
                torch.cuda.synchronize()
                batches.append((tb - t0, (time.time() - tb) * 100.0))
            windows[name] = (t0, time.time(), batches)
            log(f"attention clock: {name} looped {10 * len(batches)} calls")
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log_fh.close()
    text = Path(log_fh.name).read_text()
    Path(log_fh.name).unlink(missing_ok=True)
    kern, rows = attention_clock_summary(parse_smi_samples(text), windows, seconds, ramp_s)
    summary: dict[str, Any] = {"shape": sh, "seconds": seconds, "ramp_s": ramp_s, "period_ms": period_ms,
                               "kernels": kern}
    for name, ks in kern.items():
        clk = ks["clock_mhz"]
        log(f"attention clock {name}: {clk['median']:.0f} MHz (p10 {clk['p10']:.0f}, p90 {clk['p90']:.0f}, "
            f"{clk['n']} samples after {ramp_s:.0f} s), power {ks['power_w']['median']:.0f} W, "
            f"{ks['ms_first_0p5s']:.3f} -> {ks['ms_steady']:.3f} ms per call")
    fg = summary["kernels"].get("fg")
    summary["attention_mhz"] = fg["clock_mhz"]["median"] if fg else float("nan")
    summary["unit"] = "MHz"
    summary["method"] = (f"each kernel looped back to back {seconds:.0f} s (sync every 10 calls) after 2 s idle; "
                         f"nvidia-smi clocks.sm every {period_ms} ms; samples of the first {ramp_s:.0f} s dropped; "
                         "median (p10-p90) of the rest; attention_mhz = the FG kernel's median")
    return summary, rows


def parse_smi_samples(text: str) -> list[tuple[float, list[str]]]:
    """``nvidia-smi --query-gpu=timestamp,... --format=csv,noheader,nounits`` lines -> (epoch seconds, fields);
    nvidia-smi's timestamp is local time, read as such; lines that do not parse are skipped."""
    import datetime

    out: list[tuple[float, list[str]]] = []
    for line in text.splitlines():
        f = [x.strip() for x in line.split(",")]
        try:
            out.append((datetime.datetime.strptime(f[0], "%Y/%m/%d %H:%M:%S.%f").timestamp(), f[1:]))
        except (ValueError, IndexError):
            continue
    return out


def attention_clock_summary(samples: Sequence[tuple[float, list[str]]],
                            windows: dict[str, tuple[float, float, list[tuple[float, float]]]], seconds: float,
                            ramp_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per kernel window (start, end epoch seconds, [(seconds since start, ms per call)]): the samples
    (clocks.sm MHz, power.draw W, throttle reasons, temperature) inside it, ``steady`` after ``ramp_s``, and the
    median / p10 / p90 of the steady clock and power (see :func:`measure_attention_clock`)."""
    rows: list[dict[str, Any]] = []
    kern: dict[str, Any] = {}
    for name, (t0, t_end, batches) in windows.items():
        steady = []
        for ts, f in samples:
            if not t0 <= ts <= t_end:
                continue
            try:
                mhz, watts = float(f[0]), float(f[1])
            except (ValueError, IndexError):
                continue
            row = {"kernel": name, "t_s": round(ts - t0, 3), "sm_clock_mhz": mhz, "power_w": watts,
                   "throttle": f[2] if len(f) > 2 else "", "temp_c": f[3] if len(f) > 3 else "",
                   "steady": int(ts - t0 >= ramp_s)}
            rows.append(row)
            if row["steady"]:
                steady.append(row)
        half = [r["sm_clock_mhz"] for r in steady if r["t_s"] >= (ramp_s + seconds) / 2]
        first = [ms for ts, ms in batches if ts < 0.5] or [batches[0][1]] if batches else [float("nan")]
        late = [ms for ts, ms in batches if ts >= ramp_s] or [batches[-1][1]] if batches else [float("nan")]
        kern[name] = {
            "clock_mhz": _quantiles([r["sm_clock_mhz"] for r in steady]),
            "power_w": _quantiles([r["power_w"] for r in steady]),
            "clock_last_half_mhz": float(statistics.median(half)) if half else float("nan"),
            "clock_first_0p5s_mhz": [r["sm_clock_mhz"] for r in rows if r["kernel"] == name and r["t_s"] < 0.5],
            "ms_first_0p5s": float(statistics.median(first)), "ms_steady": float(statistics.median(late)),
            "calls": 10 * len(batches), "throttle_reasons": sorted({r["throttle"] for r in steady})}
    return kern, rows


def sustained_clock_record(summary: dict[str, Any], source: str) -> dict[str, Any]:
    """The ``sustained_clock`` entry of an operator calibration from :func:`measure_attention_clock`'s summary
    (FgsimError when the FG kernel's steady clock is missing or not a positive finite number)."""
    from fgsim.errors import FgsimError

    fg = (summary.get("kernels") or {}).get("fg") or {}
    clk = fg.get("clock_mhz") or {}
    mhz = clk.get("median")
    if isinstance(mhz, bool) or not isinstance(mhz, (int, float)) or not math.isfinite(mhz) or mhz <= 0:
        raise FgsimError(f"{source}: no steady FG-kernel clock in the attention-clock summary (got {mhz!r})")
    cud = (summary.get("kernels") or {}).get("cudnn") or {}
    return {"sm_clock_mhz": float(mhz), "unit": "MHz", "p10_mhz": clk.get("p10"), "p90_mhz": clk.get("p90"),
            "samples": clk.get("n"), "power_w": (fg.get("power_w") or {}).get("median"),
            "cudnn_sm_clock_mhz": (cud.get("clock_mhz") or {}).get("median"),
            "workload": "fgattn FG kernel (tuned launch entry, M={block_m}, gran_n={gran_n}) at B=1 H={heads} "
                        "N={n} D={head_dim}, window mask kept {density}, looped back to back".format(
                            **summary.get("shape", ATTN_CLOCK_SHAPE)),
            "method": summary.get("method", ""), "gpu": summary.get("gpu", ""), "source": source}
