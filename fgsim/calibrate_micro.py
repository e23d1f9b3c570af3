"""Calibration microbenchmarks: the ingredients of the cost model, timed on the GPU with small Triton kernels.

* ``hbm_stream`` — a device-to-device copy of 2 GiB (torch): HBM bandwidth (bytes read + written per second);
* ``l2_stream`` — programs re-reading a 16 MiB buffer (L2-resident) with 16-B vector loads: L2 read bandwidth;
* ``chase_l2`` — one thread chasing a random pointer cycle in 4 MiB (L2-resident): the L2's load-to-use latency;
* ``chase_hbm`` — one thread chasing a random pointer cycle through 256 MiB and 1 GiB (5x / 20x the 50 MB L2), each
  launch continuing where the last one stopped (the cycle is never revisited: 20,000 fresh random addresses per launch,
  the L2 evicted by a 256 MiB write after the buffer was built): the HBM's load-to-use latency. Until session 13 every
  launch restarted at the same element, so the timed launches re-read the ~2.5 MB the warm launch had touched and
  measured the L2 (149.8 vs 155.9 ns in calib11);
* ``exp2`` — programs applying exp2 to register tiles: MUFU throughput (exp per clock per SM; revision 7: the
  measured GPU property ``mufu_exp_per_clk_per_sm`` that prices the tile loop's MUFU instructions read off its SASS);
* ``fp32`` — programs running independent FFMA chains on register tiles: FP32 throughput (revision 7: the measured
  ``fp32_flop_per_clk_per_sm``, two FLOP per FFMA, that prices the tile loop's FP32-pipe instructions);
* ``mma`` — one or two warpgroups per SM issuing back-to-back wgmma groups (``tl.dot`` of a 64 x 64 shared-memory
  A tile and a 64 x N B tile into a register accumulator, N 32 / 64 / 128 / 256; the compiled loop is BAR.SYNC,
  four HGMMA m64nNk16, DEPBAR.LE gsb0 1): tensor-pipe cycles per wgmma instruction (recorded: the achieved
  fraction of the tensor peak and the least cycles of a small-N instruction, checks of ``mma_eff`` and
  ``wgmma_min_cycles``);
* ``sustained_clock`` — back-to-back bf16 8192^3 matmuls for 5 s: the SM clock (and board power) the GPU holds under
  a sustained tensor-core load (a power-limited GPU clocks below the boost clock of short kernel runs); recorded
  as a GPU property for end-to-end predictions, never fitted;
* ``l2_smem`` — programs streaming 64-row K/V-sized tiles of an L2-resident buffer (shared by every program, as a
  head's K/V is shared by its query blocks) into shared memory through the two load paths of the kernels: TMA bulk
  tensor copies (``tl.make_tensor_descriptor``) and cp.async (pipelined pointer loads), 3 stages, 1 / 2 / 4 programs
  per SM, CUDA-graph timed in interleaved rounds: the L2 -> SM bytes per clock one SM draws at full occupancy
  (``l2_port_bytes_per_clk``, a measured GPU property that replaces the GPU file's spec value for the calibrated GPU);
* ``gather`` — each program gathers ``T`` tiles of ``rows`` K rows (``D`` x 2 B each) through indices, pipelined
  with ``stages`` (Triton cp.async), random rows of an L2-resident or an HBM-sized buffer, or contiguous rows:
  the load path of the FG kernel at given rows / bytes / stages, priced by the same tile model
  (:func:`predict_micro`) and fitted together with the calibration kernel runs.

The first four, ``l2_smem`` (and the sustained clock) are *measured constants*: ``fgsim calibrate`` records them and takes the model's L2 / HBM
efficiencies and the latency's lower bound from them; ``gather`` rows are fitted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from fgsim.hardware import GPU
from fgsim.model.cta_cost import smax
from fgsim.model.params import ModelParams

#: gather microbenchmark grid: (rows per tile, stages, D, buffer) x programs per SM
GATHER_GRID = tuple((rows, st, d, buf) for rows in (32, 64, 128) for st in (2, 4) for d in (64, 128)
                    for buf in ("l2", "hbm", "contig"))
GATHER_TILES = 64
L2_BUF_BYTES = 8 << 20
HBM_BUF_BYTES = 2 << 30
#: L2 -> shared-memory stream: (load path, programs per SM); tiles of L2SM_ROWS x L2SM_D bf16, L2SM_STAGES stages
L2SM_GRID = tuple((path, per_sm) for path in ("tma", "cp.async") for per_sm in (1, 2, 4))
L2SM_ROWS, L2SM_D, L2SM_STAGES, L2SM_WARPS = 64, 128, 3, 4
#: tiles one SM streams per launch (split among its programs): 132 SMs x 2048 x 16 KiB = 4.4 GB, about 0.5 ms
L2SM_TILES_PER_SM = 2048
#: the shared buffer (bytes): a K or V tensor of one head at N = 32K, D = 128, far below the L2 (50 MB)
L2SM_BUF_BYTES = 8 << 20


def predict_micro(row: Mapping[str, str], gpu: GPU, p: ModelParams) -> float:
    """Predicted seconds of a ``gather`` microbenchmark row (per launch)."""
    a = json.loads(row["micro_args"])
    rows, st, d, buf, per_sm, _warps = (int(a["rows"]), int(a["stages"]), int(a["d"]), a["buf"], int(a["per_sm"]),
                                       int(a["warps"]))
    clk = gpu.clock_hz
    n_prog = gpu.sm_count * per_sm
    byts = rows * d * 2.0
    bw = min(gpu.l2_bytes_per_s * p.l2_bw_eff / (gpu.sm_count * clk), gpu.l2_port_bytes_per_clk)
    if buf == "hbm":
        bw = min(bw, gpu.hbm_bytes_per_s * p.hbm_bw_eff / (gpu.sm_count * clk))
    res = max(byts / bw, 2.0 * byts / gpu.smem_bytes_per_clk_per_sm, rows * d / (gpu.fp32_flop_per_clk_per_sm / 2))
    la = max(1.0, (st - 1) / 2.0)  # the index load is pipelined too (one level); at least one stage each
    chain = max(p.tile_sync_cycles, (p.mem_latency_cycles + byts / bw) / la)
    per_tile = float(smax(res, chain, p.overlap_p) * smax(per_sm * res, chain, p.share_p)
                     / smax(res, chain, p.share_p))
    cycles = GATHER_TILES * per_tile + p.mem_latency_cycles
    del n_prog
    return cycles / clk + p.launch_us * 1e-6



# ---------------------------------------------------------------------------------------------------------
# GPU side
# ---------------------------------------------------------------------------------------------------------


def _kernels() -> dict[str, Any]:
    import triton
    import triton.language as tl

    @triton.jit
    def gather_k(Base, Idx, Out, T, ROWS: tl.constexpr, D: tl.constexpr, STAGES: tl.constexpr):
        pid = tl.program_id(0)
        offs_r = tl.arange(0, ROWS)
        offs_d = tl.arange(0, D)
        acc = tl.zeros([ROWS, D], dtype=tl.float32)
        for t in tl.range(0, T, num_stages=STAGES):
            idx = tl.load(Idx + (pid * T + t) * ROWS + offs_r)
            x = tl.load(Base + idx.to(tl.int64)[:, None] * D + offs_d[None, :])
            acc += x.to(tl.float32)
        tl.store(Out + pid, tl.sum(acc))

    @triton.jit
    def chase_k(P, Out, T):
        i = tl.load(P).to(tl.int64)
        for _ in range(T):
            i = tl.load(P + i).to(tl.int64)
        tl.store(Out, i)

    @triton.jit
    def chase_cont_k(P, Pos, T):
        # continues the chase from the element the previous launch stopped at (Pos), so no launch re-reads an address
        i = tl.load(Pos)
        for _ in range(T):
            i = tl.load(P + i)
        tl.store(Pos, i)

    @triton.jit
    def exp_k(Out, T, BM: tl.constexpr, BN: tl.constexpr):
        pid = tl.program_id(0)
        x = (tl.arange(0, BM)[:, None] * BN + tl.arange(0, BN)[None, :]).to(tl.float32) * 1e-7 + pid * 1e-9
        for _ in range(T):
            x = tl.exp2(x) * 0.5
        tl.store(Out + pid, tl.sum(x))

    @triton.jit
    def l2_k(Buf, Out, n_per_prog, R, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        base = pid * n_per_prog
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for _ in range(R):
            for o in range(0, n_per_prog, BLOCK):
                acc += tl.load(Buf + base + o + tl.arange(0, BLOCK)).to(tl.float32)
        tl.store(Out + pid, tl.sum(acc))

    @triton.jit
    def l2smem_k(Buf, Out, n_blk, T, ROWS: tl.constexpr, D: tl.constexpr, STAGES: tl.constexpr,
                 TMA: tl.constexpr):
        # each program streams T tiles of ROWS x D from the shared L2-resident buffer (start staggered per program)
        # into shared memory, pipelined STAGES deep: TMA bulk tensor copies or cp.async, then reads them (LDS)
        pid = tl.program_id(0)
        start = (pid * 37) % n_blk
        acc = tl.zeros([ROWS, D], dtype=tl.float32)
        if TMA:
            desc = tl.make_tensor_descriptor(Buf, shape=[n_blk * ROWS, D], strides=[D, 1], block_shape=[ROWS, D])
            for t in tl.range(0, T, num_stages=STAGES):
                x = desc.load([((start + t) % n_blk) * ROWS, 0])
                acc += x.to(tl.float32)
        else:
            offs = tl.arange(0, ROWS)[:, None] * D + tl.arange(0, D)[None, :]
            for t in tl.range(0, T, num_stages=STAGES):
                x = tl.load(Buf + ((start + t) % n_blk) * (ROWS * D) + offs)
                acc += x.to(tl.float32)
        tl.store(Out + pid, tl.sum(acc))

    @triton.jit
    def fma_k(Out, T, BM: tl.constexpr, BN: tl.constexpr):
        # two independent FFMA chains per element (BM x BN / threads elements per thread: ILP for the FP32 pipe)
        pid = tl.program_id(0)
        x = (tl.arange(0, BM)[:, None] * BN + tl.arange(0, BN)[None, :]).to(tl.float32) * 1e-7 + pid * 1e-9
        y = x + 0.5
        for _ in range(T):
            x = x * 0.9999 + 0.0001
            y = y * 0.9998 + 0.0002
        tl.store(Out + pid, tl.sum(x + y))

    @triton.jit
    def mma_k(A, B, Out, T, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        # loop-invariant operands staged once in shared memory; each iteration one wgmma group (BK / 16 HGMMA
        # m64nBNk16) accumulating into registers, at most one group in flight behind it
        pid = tl.program_id(0)
        a = tl.load(A + tl.arange(0, BM)[:, None] * BK + tl.arange(0, BK)[None, :])
        b = tl.load(B + tl.arange(0, BK)[:, None] * BN + tl.arange(0, BN)[None, :])
        acc = tl.zeros([BM, BN], dtype=tl.float32)
        for _ in range(T):
            acc = tl.dot(a, b, acc)
        tl.store(Out + pid * BM * BN + tl.arange(0, BM)[:, None] * BN + tl.arange(0, BN)[None, :], acc)

    return {"gather": gather_k, "chase": chase_k, "chase_cont": chase_cont_k, "exp": exp_k, "l2": l2_k, "l2smem": l2smem_k, "fma": fma_k,
            "mma": mma_k}


def _time(fn: Any, rounds: int = 5) -> float:
    """Median ms of ``fn`` (CUDA events; one warm call first)."""
    import torch

    if not torch.cuda.is_available():  # CPU interpreter (tests): wall time of one call
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(rounds):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    return float(np.median(ts))


def chase_rows(quick: bool = False, steps: int = 20000) -> list[dict[str, Any]]:
    """The pointer-chase latency rows (module docstring): ``chase_l2`` (4 MiB, L2-resident) and ``chase_hbm`` (256 MiB
    and 1 GiB random cycles, each launch continuing the cycle, the L2 evicted first): ns per dependent load."""
    import torch

    k = _kernels()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    out = []
    steps = steps if not quick else 10
    for name, nbytes in (("chase_l2", 4 << 20), ("chase_hbm", 256 << 20), ("chase_hbm", 1 << 30)):
        nel = (nbytes // 8) if not quick else 1 << 10
        perm = torch.randperm(nel, device=dev)
        nxt = torch.empty(nel, dtype=torch.int64, device=dev)
        nxt[perm] = torch.roll(perm, 1)  # one cycle through every element, in random order
        del perm
        pos = torch.zeros(1, dtype=torch.int64, device=dev)
        if name == "chase_l2":
            fn = (lambda nxt=nxt, pos=pos: k["chase"][(1,)](nxt, pos, steps, num_warps=1))
        else:
            if dev == "cuda":  # evict the buffer's last-written lines from the L2
                flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev)
                flush.fill_(1)
                del flush
            fn = (lambda nxt=nxt, pos=pos: k["chase_cont"][(1,)](nxt, pos, steps, num_warps=1))
        ms = _time(fn, rounds=5)
        args = {"steps": steps, "bytes": nbytes, "unit": "ns"}
        if name == "chase_hbm":
            args["fresh"] = True  # every launch reads addresses no earlier launch read
        out.append({"micro": name, "args": args, "ms": ms, "value": ms * 1e6 / steps})
        del nxt
    return out


def l2_smem_stream(sm_count: int, quick: bool = False, rounds: int = 5) -> list[dict[str, Any]]:
    """The ``l2_smem`` microbenchmark (module docstring): for each (load path, programs per SM) of
    :data:`L2SM_GRID`, GB/s one launch streams from the L2-resident buffer into shared memory, with the SM clock
    sampled while it ran (``sm_clock_mhz``) and the copy instructions the compiled kernel holds (PTX
    ``cp.async.bulk.tensor`` / ``cp.async.cg``: a check that the path is the intended one). GPU: each config captured
    in a CUDA graph (about 20 ms a replay), ``rounds`` interleaved rounds, median; CPU interpreter (``quick``):
    tiny tiles, cp.async path only, wall time. Rows as :func:`run_micro`'s without ``case_id``."""
    import torch

    k = _kernels()["l2smem"]
    gpu = torch.cuda.is_available()
    dev = "cuda" if gpu else "cpu"
    rows, d, st = (L2SM_ROWS, L2SM_D, L2SM_STAGES) if not quick else (16, 32, 2)
    n_blk = L2SM_BUF_BYTES // (rows * d * 2) if not quick else 8
    buf = torch.randn(n_blk * rows * d, device=dev, dtype=torch.float32).to(torch.bfloat16 if gpu else torch.float16)
    if gpu:
        import triton

        # device-side tensor descriptors need a scratch allocator (128 B each)
        triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8, device="cuda"))
    grid = [(p, s) for p, s in L2SM_GRID if gpu or p == "cp.async"]
    if quick:
        grid = grid[:1]
    runs = []
    for path, per_sm in grid:
        progs = sm_count * per_sm
        t = max(1, L2SM_TILES_PER_SM // per_sm) if not quick else 4
        o = torch.empty(progs, device=dev, dtype=torch.float32)

        def fn(progs: int = progs, t: int = t, o: Any = o, tma: bool = path == "tma") -> Any:
            return k[(progs,)](buf, o, n_blk, t, ROWS=rows, D=d, STAGES=st, TMA=tma, num_warps=L2SM_WARPS)

        h = fn()
        ptx = str(getattr(h, "asm", {}).get("ptx", "")) if h is not None else ""
        chk = {"ptx_tma_copies": ptx.count("cp.async.bulk.tensor"), "ptx_cp_async": ptx.count("cp.async.cg")}
        runs.append((path, per_sm, progs, t, fn, chk))
    times: dict[int, list[float]] = {i: [] for i in range(len(runs))}
    clock = float("nan")
    if gpu:
        from fgsim.provenance import ClockSampler
        from fgsim.validation.measure import GraphTimer

        timers = [GraphTimer(r[4], 20.0) for r in runs]
        with ClockSampler(period_s=0.1) as clk:
            for _ in range(rounds):
                for i, tm in enumerate(timers):
                    times[i].append(tm.once())
        sm = sorted(s[0] for s in clk.samples)
        clock = sm[len(sm) // 2] if sm else float("nan")
        bench = f"cuda-graph of {{reps}} calls, {rounds} interleaved rounds, median"
    else:
        for i, r in enumerate(runs):
            times[i].append(_time(r[4]))
        bench = "cpu interpreter wall time (not a GPU measurement)"
    out = []
    for i, (path, per_sm, progs, t, _fn, chk) in enumerate(runs):
        ms = float(np.median(times[i]))
        nbytes = progs * t * rows * d * 2
        args = {"path": path, "per_sm": per_sm, "rows": rows, "d": d, "stages": st, "warps": L2SM_WARPS,
                "tiles": t, "buffer_bytes": int(buf.numel() * 2), "bytes": nbytes, "unit": "GB/s",
                "sm_clock_mhz": clock if math.isfinite(clock) else "", **chk}
        spread = float((max(times[i]) - min(times[i])) / ms * 100) if ms > 0 else 0.0
        out.append({"micro": "l2_smem", "args": args, "ms": ms, "value": nbytes / (ms * 1e-3) / 1e9,
                    "bench": bench.format(reps=getattr(timers[i], "reps", 1) if gpu else 1)
                    + f", spread {spread:.1f} %"})
    return out


#: ``mma`` microbenchmark: B-tile widths N and warpgroups per SM; A is MMA_M x MMA_K, one group = MMA_K / 16 wgmma
MMA_GRID = tuple((n, per_sm) for n in (32, 64, 128, 256) for per_sm in (1, 2))
MMA_M, MMA_K, MMA_T = 64, 64, 4096


def mma_rows(sm_count: int, quick: bool = False) -> list[dict[str, Any]]:
    """The ``mma`` microbenchmark (module docstring): per (N, warpgroups per SM) of :data:`MMA_GRID`, wgmma
    instructions per second over the GPU (bf16; the CPU interpreter: fp16, tiny, N=32 only). Rows as
    :func:`run_micro`'s without ``case_id``."""
    import torch

    k = _kernels()["mma"]
    gpu = torch.cuda.is_available()
    dev, dt = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float16)
    t = MMA_T if not quick else 2
    out = []
    for n, per_sm in MMA_GRID if not quick else MMA_GRID[:1]:
        progs = sm_count * per_sm
        a = torch.randn(MMA_M, MMA_K, device=dev).to(dt) * 0.01
        b = torch.randn(MMA_K, n, device=dev).to(dt) * 0.01
        o = torch.empty(progs * MMA_M * n, device=dev, dtype=torch.float32)
        ms = _time(lambda a=a, b=b, o=o, progs=progs, n=n: k[(progs,)](a, b, o, t, BM=MMA_M, BN=n, BK=MMA_K,
                                                                      num_warps=4))
        n_wgmma = progs * t * (MMA_K // 16)
        out.append({"args": {"n": n, "m": MMA_M, "k": MMA_K, "per_sm": per_sm, "iters": t, "wgmma": n_wgmma,
                             "unit": "wgmma/s"}, "ms": ms, "value": n_wgmma / (ms * 1e-3)})
    return out


def run_micro(sm_count: int, quick: bool = False) -> list[dict[str, Any]]:
    """Run every microbenchmark on the current GPU; rows with ``kind=micro``, ``micro``, ``micro_args``,
    ``measured_ms`` and, for the measured constants, ``value`` (unit in ``micro_args``)."""
    import torch

    k = _kernels()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    out: list[dict[str, Any]] = []
    t0 = time.time()

    def add(name: str, args: dict[str, Any], ms: float, value: float | None = None,
            bench: str = "cuda events, 5 runs after one warm run, median") -> None:
        out.append({"kind": "micro", "split": "calib", "case_id": f"m-{len(out):03d}", "micro": name,
                    "micro_args": json.dumps({**args, **({"value": value} if value is not None else {})},
                                             sort_keys=True), "measured_ms": ms, "status": "ok", "bench": bench})

    # HBM stream
    n = (1 << 30) if not quick else (1 << 20)
    a = torch.empty(n, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    ms = _time(lambda a=a, b=b: b.copy_(a))
    add("hbm_stream", {"bytes": 2 * n, "unit": "GB/s"}, ms, 2 * n / (ms * 1e-3) / 1e9)
    del a, b
    # L2 stream: 16 MiB re-read R times by sm_count * 4 programs
    nbuf = (16 << 20) // 2 if not quick else 1 << 14
    buf = torch.randn(nbuf, device=dev, dtype=torch.float16)
    progs = sm_count * 4
    per = nbuf // progs // 1024 * 1024
    r = 20 if not quick else 1
    o = torch.empty(progs, device=dev, dtype=torch.float32)
    ms = _time(lambda: k["l2"][(progs,)](buf, o, per, r, BLOCK=1024, num_warps=8))
    add("l2_stream", {"bytes": progs * per * 2 * r, "unit": "GB/s"}, ms, progs * per * 2 * r / (ms * 1e-3) / 1e9)
    # L2 -> shared memory through TMA and cp.async (per-SM bytes per clock at full occupancy)
    for r in l2_smem_stream(sm_count, quick=quick):
        add(r["micro"], r["args"], r["ms"], r["value"], bench=r["bench"])
    # pointer chase: latency in ns (the caller turns it into cycles with the measured clock)
    for r in chase_rows(quick=quick):
        add(r["micro"], r["args"], r["ms"], r["value"])
    # exp2 throughput: exp per clock per SM needs the clock: the caller divides by the measured clock
    bm, bn, t = 64, 64, 4096 if not quick else 4
    for per_sm in (4, 8):
        progs = sm_count * per_sm
        oo = torch.empty(progs, device=dev, dtype=torch.float32)
        ms = _time(lambda progs=progs, oo=oo: k["exp"][(progs,)](oo, t, BM=bm, BN=bn, num_warps=4))
        add("exp2", {"per_sm": per_sm, "exps": progs * bm * bn * t, "unit": "exp/s"}, ms,
            progs * bm * bn * t / (ms * 1e-3))
    # FP32 throughput: FFMA per second (two FLOP each); the caller divides by the measured clock
    t = 8192 if not quick else 4
    for per_sm in (4, 8):
        progs = sm_count * per_sm
        oo = torch.empty(progs, device=dev, dtype=torch.float32)
        ms = _time(lambda progs=progs, oo=oo: k["fma"][(progs,)](oo, t, BM=bm, BN=bn, num_warps=4))
        add("fp32", {"per_sm": per_sm, "ffma": progs * bm * bn * 2 * t, "unit": "FFMA/s"}, ms,
            progs * bm * bn * 2 * t / (ms * 1e-3))
    # tensor pipe: wgmma instructions per second at N = 32..256 with one / two warpgroups per SM
    for r in mma_rows(sm_count, quick=quick):
        add("mma", r["args"], r["ms"], r["value"])
    # gathers at given rows / bytes / stages
    for rows, st, d, bufk in GATHER_GRID:
        if quick and (rows != 32 or d != 64 or st != 2):
            continue
        nb_rows = (HBM_BUF_BYTES if bufk == "hbm" else L2_BUF_BYTES) // (d * 2) if not quick else 4096
        base = torch.empty(nb_rows * d, device=dev, dtype=torch.float16).normal_()
        for per_sm in (1, 2):
            warps = 4
            progs = sm_count * per_sm
            nidx = progs * GATHER_TILES * rows
            if bufk == "contig":
                idx = (torch.arange(nidx, device=dev) % nb_rows).to(torch.int32)
            else:
                idx = torch.randint(0, nb_rows, (nidx,), device=dev, dtype=torch.int32)
            oo = torch.empty(progs, device=dev, dtype=torch.float32)
            ms = _time(lambda progs=progs, idx=idx, oo=oo, base=base, rows=rows, d=d, st=st, warps=warps:
                       k["gather"][(progs,)](base, idx, oo, GATHER_TILES, ROWS=rows, D=d, STAGES=st,
                                             num_warps=warps))
            add("gather", {"rows": rows, "stages": st, "d": d, "buf": bufk, "per_sm": per_sm, "warps": warps,
                           "tiles": GATHER_TILES}, ms)
        del base
    if not quick and torch.cuda.is_available():
        try:
            ms, mhz, watts, n_samples = sustained_clock(SUSTAINED_S)
        except (RuntimeError, OSError) as exc:  # a missing nvidia-smi or a failed matmul: no row, said so
            print(f"sustained-clock microbenchmark skipped: {exc}", flush=True)
        else:
            if math.isfinite(mhz):
                add("sustained_clock", {"seconds": SUSTAINED_S, "workload": "bf16 matmul 8192^3 back to back",
                                        "power_w": watts, "samples": n_samples, "unit": "MHz"}, ms, mhz,
                    bench="wall clock over the loop, ms per matmul; value: median nvidia-smi clocks.sm after 1 s")
    print(f"microbenchmarks: {len(out)} rows in {time.time() - t0:.0f} s", flush=True)
    return out


#: seconds of the sustained tensor-core load whose SM clock ``fgsim calibrate`` records
SUSTAINED_S = 5.0


def sustained_clock(seconds: float = SUSTAINED_S, period_s: float = 0.1) -> tuple[float, float, float, int]:
    """SM clock (MHz) and board power (W) while the GPU runs back-to-back bf16 8192^3 matmuls for ``seconds``:
    medians of nvidia-smi samples after the first second (the clock a power-limited GPU holds under a sustained
    tensor-core load, e.g. a whole video-DiT generation, rather than the boost clock of short kernel runs).
    Returns (ms per matmul, MHz, W, samples); NaN where nvidia-smi gave nothing."""
    import threading

    import torch

    from fgsim.provenance import _smi

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn_like(a)
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()

    def poll() -> None:
        t_start = time.time()
        while not stop.is_set():
            v = _smi("clocks.sm,power.draw", timeout=5.0)
            try:
                samples.append((time.time() - t_start, float(v[0]), float(v[1])))
            except (ValueError, IndexError):
                pass
            stop.wait(period_s)

    th = threading.Thread(target=poll, daemon=True)
    torch.cuda.synchronize()
    th.start()
    t0, n = time.time(), 0
    while time.time() - t0 < seconds:
        for _ in range(20):
            torch.matmul(a, b)
        n += 20
        torch.cuda.synchronize()
    dt = time.time() - t0
    stop.set()
    th.join(timeout=10)
    late = [s for s in samples if s[0] >= 1.0] or samples
    mhz = float(np.median([s[1] for s in late])) if late else float("nan")
    watts = float(np.median([s[2] for s in late])) if late else float("nan")
    return dt * 1e3 / max(n, 1), mhz, watts, len(late)


def l2_port_measured(rows: list[Mapping[str, Any]], clock_mhz: float, gpu: GPU) -> dict[str, float]:
    """L2 -> SM bytes per clock per SM of the ``l2_smem`` rows: ``l2_smem_<path>_bytes_per_clk`` (the most over
    programs per SM, per load path) and ``l2_port_bytes_per_clk`` (the most over both paths: what one SM's port
    delivers); ``l2_smem_gbs`` (the most GB/s, every SM busy) and ``l2_smem_eff`` (that over the GPU file's L2
    bandwidth). GB/s / (SMs x clock), the clock the microbenchmark itself ran at (sampled), else ``clock_mhz``,
    else the GPU file's."""
    best: dict[str, float] = {}
    gbs = 0.0
    for r in rows:
        if r.get("micro") != "l2_smem":
            continue
        a = json.loads(str(r["micro_args"]))
        mhz = float(a.get("sm_clock_mhz") or 0.0) or clock_mhz
        clk = mhz * 1e6 if mhz > 0 else gpu.clock_hz
        v = float(a["value"]) * 1e9 / (gpu.sm_count * clk)
        key = f"l2_smem_{str(a['path']).replace('.', '_')}_bytes_per_clk"
        if math.isfinite(v) and v > 0:
            best[key] = max(best.get(key, 0.0), v)
            gbs = max(gbs, float(a["value"]))
    if best:
        best["l2_port_bytes_per_clk"] = max(best.values())
        # the same streams with every SM busy: the L2 read bandwidth the kernels draw (a check of the fitted
        # l2_bw_eff, recorded as l2_smem_eff)
        best["l2_smem_gbs"] = gbs
        best["l2_smem_eff"] = gbs / gpu.l2_bandwidth_gbs
    return best


def mma_measured(rows: list[Mapping[str, Any]], clk_hz: float, gpu: GPU) -> dict[str, float]:
    """Tensor-pipe figures of the ``mma`` rows: ``wgmma_cycles_n<N>_p<per_sm>`` (SM cycles per wgmma m64nNk16:
    clock x SMs / instructions per second), ``mma_eff_measured`` (the tensor peak's cycles of the widest N over
    the fewest measured, the achieved fraction of the GPU file's bf16 rate) and ``wgmma_min_cycles_measured``
    (the fewest cycles of an N=32 instruction times that fraction: the floor in the model's units)."""
    cyc: dict[tuple[int, int], float] = {}
    for r in rows:
        if r.get("micro") != "mma":
            continue
        a = json.loads(str(r["micro_args"]))
        v = float(a.get("value") or 0.0)
        if v > 0:
            cyc[(int(a["n"]), int(a["per_sm"]))] = clk_hz * gpu.sm_count / v
    if not cyc:
        return {}
    out = {f"wgmma_cycles_n{n}_p{p}": c for (n, p), c in sorted(cyc.items())}
    n_max = max(n for n, _ in cyc)
    best = min(c for (n, _), c in cyc.items() if n == n_max)
    eff = (64.0 * n_max * 16.0 * 2.0 / gpu.tensor_flops("bf16")) / best
    out["mma_eff_measured"] = eff
    small = [c for (n, _), c in cyc.items() if n == min(n for n, _ in cyc)]
    out["wgmma_min_cycles_measured"] = min(small) * min(eff, 1.0)
    return out


def measured_constants(rows: list[Mapping[str, Any]], clock_mhz: float, gpu: GPU) -> dict[str, float]:
    """Measured constants of the microbenchmark rows: L2 / HBM bandwidth (GB/s), load latency (cycles at the
    measured clock), exp2 per clock per SM, and the efficiencies they give against the GPU file."""
    out: dict[str, float] = {}
    for r in rows:
        if r.get("micro") in ("hbm_stream", "l2_stream", "chase_l2", "chase_hbm", "exp2", "sustained_clock", "fp32"):
            a = json.loads(str(r["micro_args"]))
            out.setdefault(str(r["micro"]), [])  # type: ignore[arg-type]
            out[str(r["micro"])].append(float(a["value"]))  # type: ignore[union-attr]
    res: dict[str, float] = {}
    clk = clock_mhz * 1e6 if clock_mhz > 0 else gpu.clock_hz
    if "hbm_stream" in out:
        res["hbm_gbs"] = max(out["hbm_stream"])  # type: ignore[arg-type]
        res["hbm_bw_eff"] = res["hbm_gbs"] / gpu.hbm_bandwidth_gbs
    if "l2_stream" in out:  # plain loads, a 50 us kernel timed with events: recorded as a check, not used
        res["l2_gbs"] = max(out["l2_stream"])  # type: ignore[arg-type]
        res["l2_stream_eff"] = res["l2_gbs"] / gpu.l2_bandwidth_gbs
    for k in ("chase_l2", "chase_hbm"):
        if k in out:
            res[f"{k}_cycles"] = min(out[k]) * 1e-9 * clk  # type: ignore[arg-type]
    if "exp2" in out:
        res["exp2_per_clk_per_sm"] = max(out["exp2"]) / clk / gpu.sm_count  # type: ignore[arg-type]
        # revision 7: the MUFU rate that prices the tile loop's MUFU instructions (a measured GPU property)
        res["mufu_exp_per_clk_per_sm"] = res["exp2_per_clk_per_sm"]
    if "fp32" in out:  # FFMA per clock per SM, two FLOP each: the measured FP32 rate (revision 7)
        res["fp32_flop_per_clk_per_sm"] = 2.0 * max(out["fp32"]) / clk / gpu.sm_count  # type: ignore[arg-type]
    res.update(mma_measured(rows, clk, gpu))
    if "sustained_clock" in out:
        res["sustained_clock_mhz"] = float(np.median(out["sustained_clock"]))  # type: ignore[arg-type]
    res.update(l2_port_measured(rows, clock_mhz, gpu))
    return {k: float(v) for k, v in res.items() if math.isfinite(v)}
