"""TMA row-gather microbenchmark (issue 12, session 16, helper W; kernels/NOTES-tma-gather.md).

Per-SM throughput of filling the fg ws2 CTA's K/V stages (3 × [128 keys, 128] NVMMA 128B-swizzled, bf16) with the
kept key rows of real fg indices, by
  (a) ``cpasync``: the packaged producer itself (``fgattn.gluon_fg._ws_producer``: 4 warps, 16-B cp.async per
      thread, masked rows zero-filled, one index set per stage),
  (b) ``tma_row``: :func:`fgattn.gluon_fg_tmagather._tg_producer` on the one-piece-per-key plan (one-row boxes,
      4 TMA issues per key: K / V × two 64-column halves),
  (c) ``tma_run``: the same producer on the run plan (aligned binary pieces of each run of consecutive keys, boxes
      of 1-32 rows),
each with a consumer warpgroup that only waits for a stage and releases it (``--check``: that copies each stage to
global memory, compared bit-exactly with a torch gather: placement through the swizzle, zero fill of the rows past
a tile's last key, out-of-bounds boxes counted by the expect-tx barrier).  One CTA per SM on a list plan with no
per-row cost (``plan_ws2_list(c_row=0)``); µs per tile = kernel time / the busiest program's tiles.

    PYTHONPATH=.:kernels:validation python3 kernels/tools/tmagather_bench.py --out $OUT          # GPU
    python3 kernels/tools/tmagather_bench.py --analyze CSV                                        # CPU: the rule
    python3 kernels/tools/tmagather_bench.py --stats                                               # CPU: piece stats
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

VARIANTS = ("cpasync", "tma_row", "tma_run")
#: the packaged CTA's consumer time per 128-key tile (µs per SM; kernels/NOTES.md fits, c_tile ≈ 1.8): the rate a
#: producer must sustain, and the pre-registered margin over it (kernels/NOTES-tma-gather.md)
NEEDED_US_PER_TILE = 1.8
MARGIN = 1.3
#: rule cells: window masks at d <= RULE_MAX_D
RULE_MAX_D = 0.1
#: timed cells: (name, kind, H, N video, text, density); kind window = the benchmark's masks
#: (``entry_regress.build_index``), random = independent keys (runs ~1), l2 = a 4,096-key head whose K / V stay
#: in L2 (4,096 rows of random keys: the issue-rate ceiling)
CELLS = (  # the rule's cells first (a budget guard skips the later ones)
    ("w12-32760-0.02", "window", 12, 32760, 0, 0.02),
    ("w12-32760-0.1", "window", 12, 32760, 0, 0.1),
    ("w12-32760+512-0.02", "window", 12, 32760, 512, 0.02),
    ("w40-75600-0.02", "window", 40, 75600, 0, 0.02),
    ("l2-4096-0.25", "l2", 1, 4096, 0, 0.25),
    ("r12-32760-0.1", "random", 12, 32760, 0, 0.1),
    ("w12-32760-0.5", "window", 12, 32760, 0, 0.5),
    ("w12-32760-0.05", "window", 12, 32760, 0, 0.05),
)
COLS = ["cell", "kind", "H", "N", "text", "density_target", "density", "variant", "tiles", "max_tiles_program",
        "pieces_per_tile", "tma_per_tile", "share_h32", "mean_run", "ms", "ms_min", "ms_max", "rounds",
        "us_per_tile", "x_needed", "sm_mhz", "statistic", "timing", "gpu_name", "driver", "torch", "triton", "date",
        "git_commit"]


# ------------------------------------------------------------------------------------------------ kernels
def _kernels():
    """The two microbenchmark CTAs (Gluon; imported on demand: the CPU paths need none of it)."""
    from fgattn import gluon_fg as g
    from fgattn import gluon_fg_tmagather as tg
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier

    @gluon.jit
    def _bench_consumer(Offsets, Order, Start, TileBase, k_smem, v_smem, full, empty, OutK, OutV, N_ROWS,
                        CHECK: gl.constexpr):
        """Wait for each stage of this program's tiles and release it; ``CHECK``: copy it to OutK / OutV[tile]."""
        BL: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])
        r = gl.arange(0, 128, gl.SliceLayout(1, BL))
        c = gl.arange(0, 128, gl.SliceLayout(0, BL))
        offs = r[:, None] * 128 + c[None, :]
        pos, end, step, row = g._my_rows(Order, Start, N_ROWS, True)
        it = 0
        while pos < end:
            lo = gl.load(Offsets + row).to(gl.int32)
            hi = gl.load(Offsets + row + 1).to(gl.int32)
            g0 = gl.load(TileBase + row).to(gl.int64)
            n_t = gl.maximum(gl.cdiv(hi - lo, 128), 1)
            for t in range(0, n_t):
                st = it % 3
                mbarrier.wait(full.index(st), (it // 3) & 1)
                if CHECK:
                    base = (g0 + t) * 16384
                    gl.store(OutK + base + offs, k_smem.index(st).load(BL))
                    gl.store(OutV + base + offs, v_smem.index(st).load(BL))
                gl.thread_barrier()
                mbarrier.arrive(empty.index(st), count=1)
                it += 1
            pos = pos + step
            row = g._next_row(Order, pos, end, True)

    @gluon.jit
    def bench_tma(kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, Offsets, Order, Start, TileBase,
                  PStart, Pieces, OutK, OutV, H, QB, N_ROWS, MAX_LG: gl.constexpr, CHECK: gl.constexpr,
                  num_warps: gl.constexpr):
        dtype: gl.constexpr = kd0.dtype
        KV: gl.constexpr = gl.NVMMASharedLayout.get_default_for([128, 128], dtype)
        k_smem = gl.allocate_shared_memory(dtype, [3, 128, 128], KV)
        v_smem = gl.allocate_shared_memory(dtype, [3, 128, 128], KV)
        full = gl.allocate_shared_memory(gl.int64, [3, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [3, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(3):
            mbarrier.init(full.index(i), count=1)
            mbarrier.init(empty.index(i), count=1)
        gl.warp_specialize([
            (_bench_consumer, (Offsets, Order, Start, TileBase, k_smem, v_smem, full, empty, OutK, OutV, N_ROWS,
                               CHECK)),
            (tg._tg_producer, (kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, Offsets, Order, Start,
                               TileBase, PStart, Pieces, k_smem, v_smem, full, empty, H, QB, N_ROWS, MAX_LG)),
        ], [1], [64])

    @gluon.jit
    def bench_cpasync(K, V, Offsets, Indices, Order, Start, TileBase, OutK, OutV, stride_kb, stride_kh, stride_kn,
                      stride_vb, stride_vh, stride_vn, H, QB, N_ROWS, CHECK: gl.constexpr, num_warps: gl.constexpr,
                      PREGS: gl.constexpr = 80):
        dtype: gl.constexpr = K.dtype.element_ty
        KV: gl.constexpr = gl.NVMMASharedLayout.get_default_for([128, 128], dtype)
        k_smem = gl.allocate_shared_memory(dtype, [3, 128, 128], KV)
        v_smem = gl.allocate_shared_memory(dtype, [3, 128, 128], KV)
        full = gl.allocate_shared_memory(gl.int64, [3, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [3, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(3):
            mbarrier.init(full.index(i), count=128)
            mbarrier.init(empty.index(i), count=1)
        gl.warp_specialize([
            (_bench_consumer, (Offsets, Order, Start, TileBase, k_smem, v_smem, full, empty, OutK, OutV, N_ROWS,
                               CHECK)),
            (g._ws_producer, (K, V, Offsets, Indices, Order, Start, k_smem, v_smem, full, empty, stride_kb,
                              stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, N_ROWS, True)),
        ], [4], [PREGS])

    return bench_tma, bench_cpasync


_K: tuple | None = None


def kernels():
    global _K
    if _K is None:
        _K = _kernels()
    return _K


# ------------------------------------------------------------------------------------------------ problems
def l2_index(rows: int, n_keys: int, density: float, seed: int = 0):
    """FgIndex of one head with ``rows`` query blocks over ``n_keys`` keys, each key kept with ``density``."""
    import torch
    from fgattn.index import FgIndex

    gen = torch.Generator(device="cpu").manual_seed(seed)
    keep = torch.rand(rows, n_keys, generator=gen) < density
    cnt = keep.sum(1)
    off = torch.zeros(rows + 1, dtype=torch.int64)
    off[1:] = torch.cumsum(cnt, 0)
    idx = torch.nonzero(keep)[:, 1].to(torch.int32)
    return FgIndex(off.cuda(), idx.cuda(), 128, 1, n_keys, 1, 1, rows, None)


def cell_index(kind: str, h: int, n_video: int, n_text: int, d: float):
    """The fg index of a timed cell (module docstring)."""
    import fgattn
    import torch
    from entry_regress import build_index
    from fgattn.masks import random_mask

    if kind == "window":
        return build_index(h, n_video, n_text, d, "cuda")
    if kind == "random":
        torch.manual_seed(int(d * 1000) + 11)
        return fgattn.build_index(random_mask(1, h, n_video, 128, d), block_m=128, order=True)
    if kind == "l2":
        return l2_index(4096, n_video, d)
    raise ValueError(f"unknown cell kind {kind!r}")


def bench_plan(idx, programs: int):
    """List plan with no per-row cost (c_row 0: every program the same number of tiles, within one row)."""
    from fgattn.gluon_fg_list import plan_ws2_list

    return plan_ws2_list(idx, programs=programs, c_row=0.0)


def max_tiles(idx, plan) -> int:
    """The busiest program's tiles (a row of c keys has max(ceil(c / 128), 1) tiles)."""
    import torch

    cnt = idx.counts()
    nt = torch.clamp((cnt + 127) // 128, min=1)
    per = nt[plan.rows.long()]
    cs = torch.zeros(per.numel() + 1, dtype=torch.long, device=per.device)
    cs[1:] = torch.cumsum(per, 0)
    st = plan.start.long()
    return int((cs[st[1:]] - cs[st[:-1]]).max())


def launcher(variant: str, k, v, idx, plan, pieces, out_k=None, out_v=None, layout: str = "bhnd"):
    """A zero-argument launch of ``variant`` (``out_k`` / ``out_v`` given: the CHECK form)."""
    import torch
    from fgattn import gluon_fg as g
    from fgattn import gluon_fg_tmagather as tg

    bench_tma, bench_cpasync = kernels()
    check = out_k is not None
    ok_, ov_ = (out_k, out_v) if check else (torch.empty(1, device=k.device, dtype=k.dtype),) * 2
    b, h, n = idx.batch, idx.heads, idx.n_keys
    grid = (plan.programs,)
    if variant == "cpasync":
        args = (k, v, idx.offsets, idx.indices, plan.rows, plan.start, pieces.tile_base, ok_, ov_,
                *g._strides(k, layout), *g._strides(v, layout), h, idx.n_qblocks, idx.n_rows)
        return lambda: bench_cpasync[grid](*args, CHECK=check, num_warps=4)
    kds, vds = tg.kv_descs(k, layout, b, h, n), tg.kv_descs(v, layout, b, h, n)
    args = (*kds, *vds, idx.offsets, plan.rows, plan.start, pieces.tile_base, pieces.pstart, pieces.pieces, ok_, ov_,
            h, idx.n_qblocks, idx.n_rows)
    kw = dict(MAX_LG=pieces.max_lg, CHECK=check, num_warps=4)
    return lambda: tg.launch_swizzled(bench_tma, grid, *args, **kw)


def reference_tiles(k, idx, layout: str = "bhnd"):
    """Every tile's K stage as the gather should leave it: [tiles, 128, 128], row i = key idx[lo + 128 t + i] of
    the row's (batch, head) for i < the tile's key count, zeros after."""
    import torch

    off = idx.offsets.long()
    cnt = off[1:] - off[:-1]
    n_t = torch.clamp((cnt + 127) // 128, min=1)
    tiles = int(n_t.sum())
    out = torch.zeros(tiles, 128, 128, dtype=k.dtype, device=k.device)
    base = torch.zeros_like(n_t)
    base[1:] = torch.cumsum(n_t, 0)[:-1]
    row = torch.repeat_interleave(torch.arange(cnt.numel(), device=k.device), cnt)
    pos = torch.arange(int(off[-1]), device=k.device) - off[:-1][row]
    bh = row // idx.n_qblocks
    bb, hh = bh // idx.heads, bh % idx.heads
    kk = k if layout == "bhnd" else k.transpose(1, 2)
    out[base[row] + pos // 128, pos % 128] = kk[bb, hh, idx.indices.long()]
    return out


# ------------------------------------------------------------------------------------------------ check
CHECK_CASES = (  # (kind, B, H, N video, text, density, dtype, layout, empty/full rows)
    ("full", 1, 2, 4096, 0, 0.0625, "bf16", "bhnd", False),  # 256 random keys per row: no zero fill at all
    ("window", 1, 2, 2064, 77, 0.1, "bf16", "bhnd", True),
    ("window", 1, 3, 4095, 0, 0.3, "fp16", "bnhd", True),
    ("random", 2, 2, 1031, 0, 0.3, "bf16", "bnhd", True),
    ("random", 1, 2, 3001, 300, 0.02, "fp16", "bhnd", False),
    ("window", 1, 1, 32760, 0, 0.02, "bf16", "bhnd", False),
)


def full_index(bsz: int, h: int, n: int, per_row: int, seed: int):
    """FgIndex whose every row keeps ``per_row`` random keys (a multiple of 128: no tile needs zero fill)."""
    import torch
    from fgattn.index import FgIndex

    gen = torch.Generator(device="cpu").manual_seed(seed)
    qb = -(-n // 128)
    rows = bsz * h * qb
    idx = torch.cat([torch.randperm(n, generator=gen)[:per_row].sort().values for _ in range(rows)]).to(torch.int32)
    off = torch.arange(rows + 1, dtype=torch.int64) * per_row
    return FgIndex(off.cuda(), idx.cuda(), 128, 1, n, bsz, h, qb, None)


def check_case(case: tuple, seed: int, variants: tuple[str, ...] = VARIANTS) -> list[dict[str, Any]]:
    """``variants`` on one check case: bit-exact K and V stages against :func:`reference_tiles`."""
    import fgattn
    import torch
    from fgattn import gluon_fg_tmagather as tg
    from fgattn.masks import random_mask, window_mask, with_text

    kind, bsz, h, nv, nt, d, dt, layout, emp = case
    torch.manual_seed(seed)
    n = nv + nt
    if kind == "full":
        idx = full_index(bsz, h, n, round(d * n), seed)
    else:
        mk = window_mask(bsz, h, nv, 128, d, device="cuda") if kind == "window" else random_mask(bsz, h, nv, 128, d)
        mask = with_text(mk, nt, 128) if nt else mk
        if emp:  # an emptied and a full query block
            mask[0, 0, 0] = False
            mask[-1, -1, -1] = True
        idx = fgattn.build_index(mask, block_m=128, order=True)
    dtype = torch.bfloat16 if dt == "bf16" else torch.float16
    shape = (bsz, h, n, 128) if layout == "bhnd" else (bsz, n, h, 128)
    k, v = (torch.randn(shape, device="cuda", dtype=dtype) for _ in range(2))
    plan = bench_plan(idx, min(132, idx.n_rows))
    rk, rv = reference_tiles(k, idx, layout), reference_tiles(v, idx, layout)
    rows = []
    for var in variants:
        pieces = tg.plan_pieces(idx, runs=var != "tma_row")
        ok_, ov_ = torch.full_like(rk, float("nan")), torch.full_like(rv, float("nan"))
        launcher(var, k, v, idx, plan, pieces, ok_, ov_, layout)()
        torch.cuda.synchronize()
        bad_k = int((ok_.view(torch.int16) != rk.view(torch.int16)).any(-1).sum())
        bad_v = int((ov_.view(torch.int16) != rv.view(torch.int16)).any(-1).sum())
        ps = tg.piece_stats(pieces)
        rows.append(dict(case=str(case), variant=var, tiles=int(rk.shape[0]), bad_k_rows=bad_k, bad_v_rows=bad_v,
                         ok=bad_k == 0 and bad_v == 0, pieces_per_tile=round(ps["pieces_per_tile"], 3),
                         zero_pieces_per_tile=round(ps["zero_pieces_per_tile"], 3)))
        print(f"[check] {case} {var}: tiles {rk.shape[0]} bad K rows {bad_k} bad V rows {bad_v}", flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ timing
def mean_run(idx) -> float:
    """Mean length of the runs of consecutive kept keys within 128-key tiles."""
    import torch

    off = idx.offsets.long()
    cnt = off[1:] - off[:-1]
    row = torch.repeat_interleave(torch.arange(cnt.numel(), device=off.device), cnt)
    pos = torch.arange(int(off[-1]), device=off.device) - off[:-1][row]
    i = idx.indices.long()
    start = torch.ones_like(i, dtype=torch.bool)
    start[1:] = (pos[1:] % 128 == 0) | (i[1:] != i[:-1] + 1)
    return float(i.numel()) / max(int(start.sum()), 1)


def time_cells(args: argparse.Namespace, meta: dict[str, str], variants: tuple[str, ...] = VARIANTS
               ) -> list[dict[str, Any]]:
    """Interleaved CUDA-graph rounds per cell (``variants`` in a fresh random order per round)."""
    import random

    import torch
    from bench_kernels import ClockSampler
    from fgattn import gluon_fg_tmagather as tg

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    clocks = ClockSampler(0.25)
    out = []
    t0 = time.perf_counter()
    for name, kind, h, nv, nt, d in CELLS:
        if args.cells and name not in args.cells:
            continue
        if time.perf_counter() - t0 > args.budget_s:
            print(f"[time] budget reached, skipping {name}", flush=True)
            continue
        idx = cell_index(kind, h, nv, nt, d)
        n = nv + nt
        kv = [torch.randn(1, h, n, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2)]
        plan = bench_plan(idx, sms)
        mt = max_tiles(idx, plan)
        mr = mean_run(idx)
        cases = []
        print(f"[time] {name}: index {idx.n_rows} rows, busiest program {mt} tiles, mean run {mr:.1f} "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)
        for var in variants:
            pieces = tg.plan_pieces(idx, runs=var != "tma_row")
            fn = launcher(var, kv[0], kv[1], idx, plan, pieces)
            print(f"[time] {name} {var}: first launch", flush=True)
            fn()
            torch.cuda.synchronize()
            gr = torch.cuda.CUDAGraph()
            with torch.cuda.graph(gr):
                fn()
            gr.replay()
            torch.cuda.synchronize()
            cases.append(dict(var=var, graph=gr, pieces=pieces, ms=[]))
        rng = random.Random(args.seed)
        ts = time.time()
        for _ in range(args.rounds):
            rng.shuffle(cases)
            for c in cases:
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                c["graph"].replay()  # warm
                e0.record()
                for _r in range(args.reps):
                    c["graph"].replay()
                e1.record()
                torch.cuda.synchronize()
                c["ms"].append(e0.elapsed_time(e1) / args.reps)
        clk = clocks.window(ts, time.time())
        for c in sorted(cases, key=lambda c: VARIANTS.index(c["var"])):
            ms = sorted(c["ms"])
            med = ms[len(ms) // 2]
            ps = tg.piece_stats(c["pieces"])
            us = med * 1000.0 / mt
            out.append(dict(cell=name, kind=kind, H=h, N=n, text=nt, density_target=d,
                            density=round(idx.density(n), 5), variant=c["var"], tiles=c["pieces"].n_tiles,
                            max_tiles_program=mt, pieces_per_tile=round(ps["pieces_per_tile"], 3),
                            tma_per_tile=round(ps["tma_per_tile"], 2) if c["var"] != "cpasync" else "",
                            share_h32=round(ps["share_h32"], 4), mean_run=round(mr, 2), ms=round(med, 5),
                            ms_min=round(ms[0], 5), ms_max=round(ms[-1], 5), rounds=len(ms), us_per_tile=round(us, 4),
                            x_needed=round(NEEDED_US_PER_TILE / us, 3), sm_mhz=clk,
                            statistic="median over rounds of the mean of reps graph replays",
                            timing=f"CUDA graph, {args.rounds} interleaved shuffled rounds x {args.reps} replays",
                            **meta))
            print(f"[time] {name} {c['var']:<8} {med:.4f} ms  {us:.3f} us/tile  x{NEEDED_US_PER_TILE / us:.2f} needed"
                  f"  pieces/tile {ps['pieces_per_tile']:.1f}  ({clk})", flush=True)
        del cases, kv
        torch.cuda.empty_cache()
    clocks.stop()
    return out


# ------------------------------------------------------------------------------------------------ rule
def rule(rows: list[dict[str, Any]]) -> tuple[str, dict[str, float], list[str]]:
    """The timing half of the pre-registered step-1 rule (kernels/NOTES-tma-gather.md; :func:`verdict` adds the
    check): GO iff, over the window cells with d <= RULE_MAX_D, the geo-mean µs per tile of tma_run or tma_row is
    <= NEEDED_US_PER_TILE / MARGIN -> ('GO' | 'NO-GO', geo-mean µs per tile per variant, reasons)."""
    geo: dict[str, float] = {}
    for var in VARIANTS:
        xs = [float(r["us_per_tile"]) for r in rows if r["variant"] == var and r["kind"] == "window"
              and float(r["density_target"]) <= RULE_MAX_D]
        if xs:
            geo[var] = math.exp(sum(math.log(x) for x in xs) / len(xs))
    bound = NEEDED_US_PER_TILE / MARGIN
    why = [f"{v} geo-mean {geo[v]:.3f} us/tile ({NEEDED_US_PER_TILE / geo[v]:.2f}x needed) vs <= {bound:.3f}"
           for v in ("tma_row", "tma_run") if v in geo]
    go = any(geo.get(v, math.inf) <= bound for v in ("tma_row", "tma_run"))
    return ("GO" if go else "NO-GO"), geo, why


def verdict(time_rows: list[dict[str, Any]], check_rows: list[dict[str, Any]] | None) -> tuple[str, list[str]]:
    """The step-1 decision: the rule on the timing, NO-GO if any TMA check row failed or the check is missing."""
    v, _, why = rule(time_rows)
    if not check_rows:
        return "NO-GO", why + ["no check rows"]
    bad = [r for r in check_rows if str(r["ok"]) != "True" and r["variant"] != "cpasync"]
    if bad:
        return "NO-GO", why + [f"{len(bad)} TMA check rows failed"]
    return v, why


# ------------------------------------------------------------------------------------------------ main
def write_csv(path: Path, rows: list[dict[str, Any]], cols: list[str] | None = None) -> None:
    from fgsim.fileio import write_csv_atomic

    write_csv_atomic(path, rows, cols or list(rows[0]))


def stats_cpu() -> None:
    """Piece statistics of the benchmark's window masks on the CPU (no GPU): the plan's pieces and TMA issues per
    tile, runs=True / False (small shapes only: the mask builder is O(QB · N))."""
    import fgattn
    from fgattn import gluon_fg_tmagather as tg
    from fgattn.masks import random_mask, window_mask

    for h, n, d in ((2, 32760, 0.02), (2, 32760, 0.1), (2, 32760, 0.5)):
        for kind in ("window", "random"):
            m = window_mask(1, h, n, 128, d, device="cpu") if kind == "window" else random_mask(1, h, n, 128, d,
                                                                                                  device="cpu")
            idx = fgattn.build_index(m, block_m=128)
            for runs in (False, True):
                s = tg.piece_stats(tg.plan_pieces(idx, runs=runs))
                print(json.dumps(dict(kind=kind, H=h, N=n, d=d, runs=runs, **{k: round(x, 3) for k, x in s.items()})),
                      flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--budget-s", type=float, default=60.0)
    ap.add_argument("--cells", default="", help="comma-separated cell names (default all)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--inline-check", action="store_true", help="run the check in this process (child)")
    ap.add_argument("--inline-time", action="store_true", help="run the timing in this process (child)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (children)")
    ap.add_argument("--check-timeout-s", type=float, default=90.0)
    ap.add_argument("--time-timeout-s", type=float, default=150.0)
    ap.add_argument("--analyze", type=Path, default=None, metavar="CSV")
    ap.add_argument("--stats", action="store_true")
    a = ap.parse_args(argv)
    a.cells = [c for c in a.cells.split(",") if c]
    a.variant_list = tuple(v for v in a.variants.split(",") if v)
    if not a.variant_list or any(v not in VARIANTS for v in a.variant_list):
        ap.error(f"--variants: {a.variants!r} must be a comma-separated subset of {VARIANTS}")
    if a.rounds < 3 or a.reps < 1:
        ap.error("--rounds >= 3 and --reps >= 1")
    bad = [c for c in a.cells if c not in {x[0] for x in CELLS}]
    if bad:
        ap.error(f"--cells: unknown {bad}")
    if a.stats:
        stats_cpu()
        return 0
    if a.analyze is not None:
        if not a.analyze.is_file():
            ap.error(f"--analyze: {a.analyze} is not a file")
        rows = list(csv.DictReader(open(a.analyze, newline="")))
        chk = a.analyze.with_name(a.analyze.stem + "-check.csv")
        crows = list(csv.DictReader(open(chk, newline=""))) if chk.is_file() else None
        v, why = verdict(rows, crows)
        print(f"[rule] {v}: " + "; ".join(why))
        return 0
    if a.out is None:
        ap.error("--out is required for a GPU run")
    import torch

    if not torch.cuda.is_available():
        print("tmagather_bench: no CUDA device", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    a.out.mkdir(parents=True, exist_ok=True)
    m = env_metadata()
    meta = dict(gpu_name=m.get("gpu_name", ""), driver=m.get("smi_driver_version", ""), torch=m["torch"],
                triton=m["triton"], date=m["date"], git_commit=m.get("git_commit", ""))
    stem = f"kernels-h200-{meta['date'][:10]}-tmagather{a.tag}"
    if a.inline_check:  # one variant per child: a hang leaves the others' rows (cases in order, printed)
        rows = []
        var = a.variant_list[0]
        for i, c in enumerate(CHECK_CASES):
            rows += check_case(c, 1600 + i, (var,))
            write_csv(a.out / f"{stem}-check-{var}.csv", rows)
        return 0 if all(r["ok"] for r in rows) else 1
    if a.inline_time:
        rows = time_cells(a, meta, a.variant_list)
        write_csv(a.out / f"{stem}.csv", rows, COLS)
        return 0
    from concurrent.futures import ThreadPoolExecutor

    me = [sys.executable, str(Path(__file__).resolve()), "--out", str(a.out), f"--tag={a.tag}"]
    t0 = time.perf_counter()

    def child(flag: str, variants: tuple[str, ...], lim: float) -> int | None:
        extra = ["--rounds", str(a.rounds), "--reps", str(a.reps), "--seed", str(a.seed), "--budget-s",
                 str(a.budget_s), "--variants", ",".join(variants)] + (["--cells", ",".join(a.cells)] if a.cells else [])
        try:
            p = subprocess.run(me + [flag] + extra, timeout=lim)
            print(f"[bench] {flag} {variants} exit {p.returncode} at {time.perf_counter() - t0:.1f}s", flush=True)
            return p.returncode
        except subprocess.TimeoutExpired:
            print(f"[bench] {flag} {variants} TIMED OUT after {lim:.0f}s (a hang?)", flush=True)
            return None

    with ThreadPoolExecutor(len(VARIANTS)) as ex:
        rcs = list(ex.map(lambda v: child("--inline-check", (v,), a.check_timeout_s), VARIANTS))
    crows_all: list[dict[str, Any]] = []
    for v in VARIANTS:
        part = a.out / f"{stem}-check-{v}.csv"
        if part.is_file():
            crows_all += list(csv.DictReader(open(part, newline="")))
            part.unlink()
    if crows_all:
        write_csv(a.out / f"{stem}-check.csv", crows_all)
    done = tuple(v for v, rc in zip(VARIANTS, rcs, strict=True) if rc is not None)  # finished (exact or not)
    print(f"[bench] check rows {len(crows_all)}, not exact {sum(r['ok'] != 'True' for r in crows_all)}; "
          f"finished variants {done}", flush=True)
    if done:
        child("--inline-time", done, a.time_timeout_s)
    tp, cp = a.out / f"{stem}.csv", a.out / f"{stem}-check.csv"
    trows = list(csv.DictReader(open(tp, newline=""))) if tp.is_file() else []
    crows = list(csv.DictReader(open(cp, newline=""))) if cp.is_file() else None
    v, why = verdict(trows, crows) if trows else ("NO-GO", ["no timing rows"])
    if crows is not None and {r["variant"] for r in crows} != set(VARIANTS):
        v, why = "NO-GO", why + ["a variant's check did not finish"]
    print(f"[rule] step 1: {v}: " + "; ".join(why), flush=True)
    (a.out / "step1.txt").write_text(v + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
