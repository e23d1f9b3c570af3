"""Research (issue 12, session 11, helper G2): the adopted Gluon ws2 fg kernel with a list-scheduled row plan.

Not part of fgattn's dispatch or launch table: reachable only as ``fgattn.gluon_fg_list.fg_attention_gluon_list``.
The launch table's fg D128 M128 gran-1 entry runs :mod:`fgattn.gluon_fg`'s form ``ws2`` (pipeline 1, no consumer
fence) as a *static walk*: program p of G runs launch positions p, p + G, ... of ``FgIndex.order``.  Helper G found
at M64 (kernels/NOTES-gluon-m64.md) that such a walk drifts until the SMs work on several heads at once (L2 hit
rate 79 % instead of 97 %) and leaves the busiest SM 10-28 % above the mean (kernels/NOTES.md, "Where the remaining
gap sits"), while greedy list scheduling in launch order (each next row of ``order`` to the least-loaded program,
row cost = ``c_row`` + executed 128-key tiles) keeps the programs in the same region of the head-major order and
balances like the hardware's dynamic dispatch.

This module is the same CTA (a producer warpgroup gathering K/V rows by cp.async into a 3-stage ring, two consumer
warpgroups of 64 query rows each with FlashAttention-3's intra-warpgroup overlap, :func:`fgattn.gluon_fg._ws2x_consumer`
with PIPE 1, FENCE off, no ping-pong, exp2 only) with one change: every partition reads its rows from a plan,
``LaneRows[LaneStart[p]:LaneStart[p + 1]]``, built once per index on the host by :func:`plan_ws2_list` (the
FlashInfer plan / run split: outside CUDA-graph capture, reused across calls).  The row and softmax code is shared
with :mod:`fgattn.gluon_fg` (its jit helpers are called from here), so only the row source differs.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

__all__ = ["C_ROW_TILES", "fg_attention_gluon_list", "plan_ws2_list", "compile_list_sm90", "ws2_walk_lists",
           "prepare_list_plan", "cached_list_plan", "has_list_plan"]

#: a row's fixed cost in 128-key tile units for the planner: kernels/tools/gap_analysis.py's fit of the adopted ws2
#: form on run 9 (c_row 5.4 µs, c_tile 1.82 µs per 128-key tile per SM at H12 N32760) -> 3.0
C_ROW_TILES = 3.0

try:  # Gluon (Triton >= 3.5); the kernel is defined only where it imports (the CPU tests need none of it)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import async_copy as cp
    from triton.experimental.gluon.language.nvidia.hopper import (
        mbarrier,
        tma,
        warpgroup_mma,
        warpgroup_mma_wait,
    )

    from . import gluon_fg as _g

    _GLUON_ERR: str | None = _g.gluon_available()
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


if _GLUON_ERR is None:
    _entries = _g._entries
    _softmax_p = _g._softmax_p
    _carry_p = _g._carry_p
    _use_p = _g._use_p
    _q_next = _g._q_next
    _store_out = _g._store_out
    _BN: gl.constexpr = gl.constexpr(_g.BLOCK_N)
    _BM: gl.constexpr = gl.constexpr(_g.BLOCK_M)
    _HALF: gl.constexpr = gl.constexpr(_g.BLOCK_M // 2)
    _D: gl.constexpr = gl.constexpr(_g.HEAD_DIM)
    _ST: gl.constexpr = gl.constexpr(_g.STAGES)
    _PW: gl.constexpr = gl.constexpr(4)  # producer warps
    _CW: gl.constexpr = gl.constexpr(4)  # warps per consumer warpgroup

    @gluon.jit
    def _plan_row(LaneRows, j, j_end):
        """Row at entry ``j`` of a program's list ending at ``j_end`` (row 0 past the end, so dependent loads stay
        in bounds)."""
        return gl.where(j < j_end, gl.load(LaneRows + gl.maximum(gl.minimum(j, j_end - 1), 0)), 0)

    @gluon.jit
    def _list_producer(K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty, stride_kb,
                       stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB):
        """:func:`fgattn.gluon_fg._ws_producer` over this program's planned rows (index entries one tile ahead,
        gathers once the consumers released the stage, completion by cp.async.mbarrier.arrive on ``full``)."""
        GATHER_P: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [_PW, 1], [1, 0])
        offs_e = gl.arange(0, _BN, gl.SliceLayout(1, GATHER_P))
        offs_d = gl.arange(0, _D, gl.SliceLayout(0, GATHER_P))
        pid = gl.program_id(0)
        pos = gl.load(LaneStart + pid)
        end = gl.load(LaneStart + pid + 1)
        row = _plan_row(LaneRows, pos, end)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        row_n = _plan_row(LaneRows, pos + 1, end)
        lo_n = gl.load(Offsets + row_n).to(gl.int32)
        hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        it = 0
        while pos < end:
            bh = row // QB
            b = (bh // H).to(gl.int64)
            h = (bh % H).to(gl.int64)
            k_base = K + b * stride_kb + h * stride_kh
            v_base = V + b * stride_vb + h * stride_vh
            n_t = gl.maximum(gl.cdiv(hi - lo, _BN), 1)
            nxt = _entries(Indices, lo, hi, 0, offs_e, _BN)
            for t in range(0, n_t):
                cur = nxt
                nxt = _entries(Indices, lo, hi, t + 1, offs_e, _BN)
                st = it % _ST
                mbarrier.wait(empty.index(st), ((it // _ST) & 1) ^ 1)
                ok = (cur >= 0)[:, None]
                r = gl.maximum(cur, 0)[:, None]
                cp.async_copy_global_to_shared(k_smem.index(st), k_base + r * stride_kn + offs_d[None, :], mask=ok)
                cp.async_copy_global_to_shared(v_smem.index(st), v_base + r * stride_vn + offs_d[None, :], mask=ok)
                cp.mbarrier_arrive(full.index(st), increment_count=False)
                it += 1
            pos = pos + 1
            row = row_n
            lo = lo_n
            hi = hi_n
            row_n = _plan_row(LaneRows, pos + 1, end)
            lo_n = gl.load(Offsets + row_n).to(gl.int32)
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)

    @gluon.jit
    def _list_consumer(half, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full, empty,
                       qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB):
        """:func:`fgattn.gluon_fg._ws2x_consumer` with PIPE 1 (QK(t) and PV(t-1) in flight together, P carried as
        the bf16 PV operand), no fence, no ping-pong, over this program's planned rows."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        dtype: gl.constexpr = k_smem.dtype
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        q_s = my_q.reshape([_HALF, _D])
        pid = gl.program_id(0)
        pos = gl.load(LaneStart + pid)
        end = gl.load(LaneStart + pid + 1)
        row = _plan_row(LaneRows, pos, end)
        bh = row // QB
        mbarrier.expect(my_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * _BM + half * _HALF, 0], my_bar, my_q)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        it = 0
        phase = 0
        while pos < end:
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, _BN), 1)
            pos_n = pos + 1
            row_n = _plan_row(LaneRows, pos_n, end)
            has_next = pos_n < end
            bh = row // QB
            m_i = gl.full([_HALF], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([_HALF], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([_HALF, _D], gl.float32, S_LAYOUT)
            zero_s = gl.zeros([_HALF, _BN], gl.float32, S_LAYOUT)
            mbarrier.wait(my_bar, phase)
            # tile 0: QK alone, its softmax masked (columns >= min(cnt, BN) are not kept keys)
            st = it % _ST
            mbarrier.wait(full.index(st), (it // _ST) & 1)
            s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            s = warpgroup_mma_wait(0, deps=(s, ))
            _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next & (n_t == 1))
            p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, gl.minimum(cnt, _BN), True, S_LAYOUT, P_LAYOUT,
                                            _BN, 0, dtype)
            pc = _carry_p(p, 1, P_LAYOUT, dtype)
            prev = st
            it += 1
            for _t in range(1, n_t - 1):  # full tiles: QK(t) and PV(t-1) in flight together
                st = it % _ST
                mbarrier.wait(full.index(st), (it // _ST) & 1)
                p_op = _use_p(pc, 1, P_LAYOUT, dtype)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]  # the previous tile's alpha, while this QK runs
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                s = warpgroup_mma_wait(1, deps=(s, ))
                p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, _BN, False, S_LAYOUT, P_LAYOUT, _BN, 0,
                                                dtype)
                acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                pc = _carry_p(p, 1, P_LAYOUT, dtype)
                gl.thread_barrier()  # this warpgroup is done with the previous tile's stage
                mbarrier.arrive(empty.index(prev), count=1)
                prev = st
                it += 1
            if n_t > 1:  # the row's last (masked) tile
                st = it % _ST
                mbarrier.wait(full.index(st), (it // _ST) & 1)
                p_op = _use_p(pc, 1, P_LAYOUT, dtype)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                s = warpgroup_mma_wait(1, deps=(s, ))
                _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next)
                p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, cnt - (n_t - 1) * _BN, True, S_LAYOUT,
                                                P_LAYOUT, _BN, 0, dtype)
                acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                pc = _carry_p(p, 1, P_LAYOUT, dtype)
                gl.thread_barrier()
                mbarrier.arrive(empty.index(prev), count=1)
                prev = st
                it += 1
            # the last tile's PV
            p_op = _use_p(pc, 1, P_LAYOUT, dtype)
            acc = acc * alpha[:, None]
            acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
            acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
            gl.thread_barrier()
            mbarrier.arrive(empty.index(prev), count=1)
            _store_out(Out, acc, l_i, cnt == 0, bh // H, bh % H, (row % QB) * 2 + half, stride_ob, stride_oh,
                       stride_on, N_Q, S_LAYOUT, _HALF, _D)
            lo = gl.load(Offsets + row_n).to(gl.int32)
            hi = gl.load(Offsets + row_n + 1).to(gl.int32)
            row = row_n
            pos = pos_n
            phase ^= 1

    @gluon.jit
    def _fg_gluon_ws2_list(q_desc, K, V, Out, Offsets, Indices, LaneRows, LaneStart, qk_scale,
                           stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                           stride_ob, stride_oh, stride_on, H, N_Q, QB,
                           PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr):
        """Form ws2 (pipeline 1, no fence) over planned rows: program p runs ``LaneRows[LaneStart[p]:
        LaneStart[p + 1]]``; default partition = consumer half 0 (``num_warps`` 4), workers = consumer half 1 and
        the producer.  ``q_desc`` has [1, 1, 64, D] boxes."""
        gl.static_assert(num_warps == _CW)
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_BN, _D], dtype)
        q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [_ST, _BN, _D], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [_ST, _BN, _D], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(q_bar.index(i), count=1)
        for i in gl.static_range(_ST):
            mbarrier.init(full.index(i), count=_PW * 32)
            mbarrier.init(empty.index(i), count=2)
        gl.warp_specialize([
            (_list_consumer, (0, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full,
                              empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB)),
            (_list_consumer, (1, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full,
                              empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB)),
            (_list_producer, (K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty, stride_kb,
                              stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB)),
        ], [_CW, _PW], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(_ST):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


# ------------------------------------------------------------------------------------------------ host side
def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_list: {msg}")


def ws2_walk_lists(n_rows: int, programs: int, order: list[int]) -> list[list[int]]:
    """The adopted entry's static walk as row lists (pure Python twin): program p runs ``order`` positions p,
    p + programs, ..."""
    if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
        _fail(f"programs={programs!r} must be a positive int")
    if sorted(order) != list(range(n_rows)):
        _fail("order must be a permutation of the rows")
    return [[order[i] for i in range(p, n_rows, programs)] for p in range(programs)]


def plan_ws2_list(index: Any, *, programs: int, c_row: float = C_ROW_TILES, schedule: str = "list") -> Any:
    """Row plan for :func:`fg_attention_gluon_list` (host work: one device-to-host copy of the row counts; build
    once per index, outside CUDA-graph capture, and reuse it).  ``schedule="list"``: greedy list scheduling in
    launch order (``index.order``; natural order without one), each row to the program with the least load so
    far (row cost ``c_row`` + executed 128-key tiles, ties to the lowest program); ``"walk"``: the adopted entry's
    static walk (the same kernel then runs the table entry's rows per program: a control).  ``programs`` is
    clipped to the row count; every program gets at least one row.  Returns a
    :class:`fgattn.gluon_fg_m64.LanePlan` (lanes 1; makespan / mean_load in tile units)."""
    import torch

    from .gluon_fg_m64 import LanePlan, flatten_lanes, lane_list, lanes_makespan, row_costs
    from .index import FgIndex

    if not isinstance(index, FgIndex):
        _fail(f"index must be an FgIndex, got {type(index).__name__}")
    if (index.block_m, index.gran_n) != (128, 1):
        _fail(f"index has block_m={index.block_m}, gran_n={index.gran_n} (the ws2 form needs 128, 1)")
    if schedule not in ("list", "walk"):
        _fail(f"schedule={schedule!r} must be 'list' or 'walk'")
    if isinstance(c_row, bool) or not isinstance(c_row, (int, float)) or not 0 <= c_row < 1e6:
        _fail(f"c_row={c_row!r} must be a number in [0, 1e6) (tile units)")
    if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
        _fail(f"programs={programs!r} must be a positive int")
    if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        _fail("plan_ws2_list reads the row counts on the host: build the plan before CUDA-graph capture")
    n = index.n_rows
    g = min(programs, n)
    costs = row_costs(index.counts().tolist(), 128, float(c_row))
    order = list(range(n)) if index.order is None else index.order.tolist()
    lists = [[lst] for lst in ws2_walk_lists(n, g, order)] if schedule == "walk" else lane_list(costs, order, g, 1)
    flat, start = flatten_lanes(lists)
    if any(a == b for a, b in zip(start[:-1], start[1:], strict=True)):  # cannot happen for list / walk with g <= n; kept as a guard
        _fail("a program got no row")
    mx, mean = lanes_makespan(costs, lists)
    dev = index.offsets.device
    return LanePlan(rows=torch.tensor(flat, dtype=torch.int32, device=dev),
                    start=torch.tensor(start, dtype=torch.int32, device=dev), programs=g, lanes=1, n_rows=n,
                    schedule=schedule, makespan=mx, mean_load=mean)


#: plans memoised per index (fgattn's dispatch of a ``schedule: "list"`` entry): keyed by the identity of the
#: index's ``offsets`` tensor (held by a weak reference, so a plan lives as long as its index's offsets), then by
#: the identity and in-place version counters of ``offsets`` / ``indices`` / ``order`` and the program count.  An
#: entry is never replaced: a CUDA graph captured with a plan keeps reading its tensors, so they stay alive.
_PLANS: dict[int, tuple[Any, dict[tuple, Any]]] = {}


def _plans_of(offsets: Any, create: bool = False) -> dict[tuple, Any] | None:
    """The memoised plans of the index whose offsets tensor is ``offsets`` (None if none and not ``create``)."""
    hit = _PLANS.get(id(offsets))
    if hit is not None and hit[0]() is offsets:
        return hit[1]
    if not create:
        return None
    key = id(offsets)
    ref = weakref.ref(offsets, lambda _r, key=key: _PLANS.pop(key, None))
    _PLANS[key] = (ref, {})
    return _PLANS[key][1]


def _capturing() -> bool:
    """A CUDA graph is being captured on the current stream (no host sync allowed)."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def _plan_key(index: Any, programs: int) -> tuple:
    t = [index.offsets, index.indices, index.order]
    return (programs, *((None, -1, -1) if x is None else (id(x), x.data_ptr(), x._version) for x in t))


def cached_list_plan(index: Any, programs: int) -> Any | None:
    """The memoised list plan of ``index`` for ``programs`` programs (``schedule="list"``, :data:`C_ROW_TILES`),
    built on first use; None when none is cached and a CUDA graph is being captured (building one reads the row
    counts on the host): the caller then runs the walk (``fgattn.fg_route`` says so)."""
    per = _plans_of(index.offsets)
    key = _plan_key(index, programs)
    if per is not None and key in per:
        return per[key]
    if _capturing():
        return None
    plan = plan_ws2_list(index, programs=programs)
    _plans_of(index.offsets, create=True)[key] = plan
    return plan


def has_list_plan(index: Any, programs: int) -> bool:
    """A plan of ``index`` for ``programs`` programs is memoised (:func:`cached_list_plan` needs no host work)."""
    per = _plans_of(index.offsets)
    return per is not None and _plan_key(index, programs) in per


def prepare_list_plan(index: Any, programs: int | None = None) -> Any:
    """Build and memoise ``index``'s list plan before CUDA-graph capture, so that a captured ``fgattn.fg_attention``
    of a ``schedule: "list"`` entry runs the list schedule (a warm-up call outside capture does the same).
    ``programs``: the grid (default the current CUDA device's SM count, as fgattn's dispatch uses)."""
    import torch

    if programs is None:
        programs = torch.cuda.get_device_properties(index.offsets.device).multi_processor_count
    if _capturing():
        _fail("prepare_list_plan reads the row counts on the host: call it before CUDA-graph capture")
    plan = cached_list_plan(index, programs)
    assert plan is not None
    return plan


def compile_list_sm90(dtype: str = "bf16") -> Any:
    """Compile the kernel for sm_90 without a GPU (Triton 3.6 with Gluon on the path) with the signature
    :func:`fg_attention_gluon_list` launches with (as :func:`fgattn.gluon_fg.compile_sm90` for form ws2)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from .gluon_fg import CONSUMER_REGS, PRODUCER_REGS

    fn = _fg_gluon_ws2_list
    const = dict(PRODUCER_REGS=PRODUCER_REGS, CONSUMER_REGS=CONSUMER_REGS, num_warps=4)
    names = list(fn.arg_names)
    lay = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
           "fp4_padded=False, cga_layout=[])")
    ptr = {"K": f"*{dtype}", "V": f"*{dtype}", "Out": f"*{dtype}", "Offsets": "*i64", "Indices": "*i32",
           "LaneRows": "*i32", "LaneStart": "*i32"}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a == "q_desc":
            sig[a] = f"tensordesc<{dtype}[1, 1, 64, 128],{lay}>"
        elif a in ptr:
            sig[a], attrs[(i,)] = ptr[a], [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = GluonASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})


def fg_attention_gluon_list(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                            sm_scale: float | None = None, out: Any = None, plan: Any = None,
                            programs: int | None = None) -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by the adopted Gluon ws2 CTA (pipeline 1, no
    fence) over a row plan (:func:`plan_ws2_list`; built here if ``plan`` is None, which reads the row counts on
    the host and so cannot run under CUDA-graph capture).  Same output as the table entry (q's layout and dtype;
    zeros for a query block with no kept key).  ``programs``: grid size when the plan is built here (default the
    SM count)."""
    import torch

    from .gluon_fg import CONSUMER_REGS, PRODUCER_REGS

    if _GLUON_ERR is not None:
        _fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if not isinstance(q, torch.Tensor) or q.device.type != "cuda":
        _fail("q must be a CUDA tensor (no CPU / interpreter path)")
    if torch.cuda.get_device_capability(q.device)[0] != 9:
        _fail("needs an sm_90 GPU (Hopper: wgmma, TMA)")
    sms = torch.cuda.get_device_properties(q.device).multi_processor_count if programs is None else programs
    p = _g.plan_gluon(q, k, v, index, layout=layout, form="ws2", sms=sms)
    if plan is None:
        plan = plan_ws2_list(index, programs=p.grid)
    if (plan.n_rows, plan.lanes) != (p.n_rows, 1) or plan.start.numel() != plan.programs + 1:
        _fail(f"plan is for {plan.n_rows} rows / {plan.lanes} lanes, the call has {p.n_rows} rows (lanes 1)")
    if plan.rows.device != q.device:
        _fail(f"plan is on {plan.rows.device}, q on {q.device}")
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.stride(-1) != 1:
        _fail("out must match q's shape and dtype with a contiguous head dimension")
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    box = [1, 1, _g.BLOCK_M // 2, _g.HEAD_DIM]
    q_layout = gl.NVMMASharedLayout.get_default_for(box, gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16)
    q_desc = TensorDescriptor(q, [p.batch, p.heads, p.n_q, _g.HEAD_DIM], [*_g._strides(q, layout), 1], box, q_layout)
    scale = (1.0 / math.sqrt(_g.HEAD_DIM)) if sm_scale is None else float(sm_scale)
    st = _g._strides
    _fg_gluon_ws2_list[(plan.programs,)](
        q_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks,
        PRODUCER_REGS=PRODUCER_REGS, CONSUMER_REGS=CONSUMER_REGS, num_warps=4)
    return out
