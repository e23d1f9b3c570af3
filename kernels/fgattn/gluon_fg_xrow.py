"""Research (issue 12, session 15, helper X): the list-scheduled Gluon ws2 fg kernel with KV-skewed stages, so that
one consumer warpgroup's once-per-row code can overlap the other's wgmmas.

Not part of fgattn's dispatch or launch table: reachable only as :func:`fg_attention_gluon_xrow`.  Same inputs,
math and outputs as the packaged fg D128 M128 gran-1 entry with ``epilogue: "tma_sel"``
(:func:`fgattn.gluon_fg_list.fg_attention_gluon_list`: a producer warpgroup gathering K/V rows by cp.async, two
consumer warpgroups of 64 query rows each with FlashAttention-3's intra-warpgroup overlap, pipeline 1, no fence,
over :func:`fgattn.gluon_fg_list.plan_ws2_list`'s row plan; O = acc · (1 / l) with the empty row zeroed by selects,
staged in the row's last K buffer and stored by TMA; the next row's (lo, hi) loaded a row ahead).  What differs is
the shared-memory protocol (kernels/NOTES.md, "Session 15 research: cross-row overlap (helper X)"):

* The packaged CTA releases a 64 KB stage (K and V of one 128-key tile) only after *both* warpgroups' PV of that
  tile, so the two consumers pin two of the three stages and the producer leads by one tile; and with the tma_sel
  row end both warpgroups meet on a 256-thread named barrier after their last PV.  Both warpgroups therefore run
  their row end and row start at the same time (ncu, session 13: tensor pipe active 48.6 % at d 0.02).
* **KV-skewed stages** (both variants): stage i holds K(i) in K buffer i % 3 and V(i - 1) in V buffer (i - 1) % 3,
  both first needed at the consumers' step i (QK(i), PV(i - 1)), with one ``full`` / ``empty`` mbarrier per stage as
  before.  A stage is released at the end of its step (the packaged one a step later, after its PV), so a warpgroup
  pins one stage at a time and the producer leads by two steps instead of one, in the same 224 KB.  A row's last PV
  takes its V from the next stage (the next row's tile 0, or a V-only stage after the program's last item).
* **No row-end meeting**: a warpgroup stages its O half in its 16 KB of the row's last K buffer as soon as the
  *other* warpgroup's QK has read that buffer (an mbarrier per K buffer and direction, ``kq``, one arrival per QK),
  not after both last PVs; the buffer is released after the bulk store has read it, at the next row's start.
* ``LAG`` (the skew): warpgroup 1 issues the QK of a row's tile t (t < n_t - 1) only after warpgroup 0 has
  finished its step t + 1, so inside a row warpgroup 1 runs about one step behind.  Warpgroup 0 then starts its row
  end while warpgroup 1 still has tiles to multiply, and warpgroup 1's row end runs while warpgroup 0 multiplies
  the next row's first tiles (FlashAttention-3's inter-warpgroup ping-pong, Shah et al., arXiv 2407.08608,
  sec. 3.1, applied at row granularity).  The row's last tile is never held back, so the skew cannot carry a row
  end into the other warpgroup's.  The wait is a scheduling hint only: no data depends on it.

Shared memory: 3 × 32 KB K + 3 × 32 KB V + 2 × 16 KB Q = 224 KB, as the packaged CTA.  The barrier protocol is
replayed on the CPU by ``kernels/tools/xrow_protocol.py`` (tests/test_fg_xrow.py).

Measured once (session 15, one H200 call, kernels/NOTES.md "... (helper X), outcome"): correct (312 float64 checks),
but 4-10 % *slower* than the packaged entry at every timed cell, long rows included (xsplit geo-mean 1.058, xrow
1.071): the stage's second index set makes the producer's per-item loop 27 % longer (317 -> 402 SASS instructions),
and the lag serialises the two warpgroups.  Not adopted; kept as the record of the experiment.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VARIANTS", "compile_xrow_sm90", "fg_attention_gluon_xrow", "check_xrow_variant"]

#: the probe's named variants -> the kernel's constexprs (kernels/tools/xrow_probe.py)
VARIANTS: dict[str, dict[str, bool]] = {"xrow": dict(LAG=True), "xsplit": dict(LAG=False)}
#: registers per thread: producer warpgroup 72 (it carries the previous item's 128 entries and V base for the V
#: gather; at the packaged 64 ptxas spills 16 B), the second consumer warpgroup 216; the default partition (the
#: first consumer) gets 504 - 216 - 72 = 216 (the packaged CTA: 64 / 216 / 224)
PRODUCER_REGS = 72
CONSUMER_REGS = 216

try:  # Gluon (Triton >= 3.5); the kernel is defined only where it imports (the CPU tests need none of it)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import async_copy as cp
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared,
        mbarrier,
        tma,
        warpgroup_mma,
        warpgroup_mma_wait,
    )

    from . import gluon_fg as _g

    _GLUON_ERR: str | None = _g.gluon_available()
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_xrow: {msg}")


def check_xrow_variant(variant: str) -> dict[str, bool]:
    """The kernel constexprs of ``variant`` (:data:`VARIANTS`); one ValueError line naming it otherwise."""
    if variant not in VARIANTS:
        _fail(f"variant={variant!r} must be one of {tuple(VARIANTS)}")
    return dict(VARIANTS[variant])


if _GLUON_ERR is None:
    _entries = _g._entries
    _softmax_p = _g._softmax_p
    _carry_p = _g._carry_p
    _use_p = _g._use_p
    _q_next = _g._q_next
    _normalize = _g._normalize
    _my_rows = _g._my_rows
    _next_row = _g._next_row
    _BN: gl.constexpr = gl.constexpr(_g.BLOCK_N)
    _BM: gl.constexpr = gl.constexpr(_g.BLOCK_M)
    _HALF: gl.constexpr = gl.constexpr(_g.BLOCK_M // 2)
    _D: gl.constexpr = gl.constexpr(_g.HEAD_DIM)
    _ST: gl.constexpr = gl.constexpr(_g.STAGES)
    _PW: gl.constexpr = gl.constexpr(4)  # producer warps
    _CW: gl.constexpr = gl.constexpr(4)  # warps per consumer warpgroup

    @gluon.jit
    def _v_gather(v_dst, v_base, idx, stride_vn, offs_d):
        """cp.async of the V rows ``idx`` (-1: nothing read, the row is zero-filled) into ``v_dst``."""
        ok = (idx >= 0)[:, None]
        r = gl.maximum(idx, 0)[:, None]
        cp.async_copy_global_to_shared(v_dst, v_base + r * stride_vn + offs_d[None, :], mask=ok)

    @gluon.jit
    def _xr_producer(K, V, Offsets, Indices, Order, Start, k_smem, v_smem, full, empty, stride_kb, stride_kh,
                     stride_kn, stride_vb, stride_vh, stride_vn, H, QB):
        """Producer warpgroup.  Items i = 0, 1, ... are the program's rows' 128-key tiles in order, across rows.
        Item i's stage is K(i) in K buffer i % 3 and V(i - 1) in V buffer (i - 1) % 3 (both first needed at the
        consumers' step i): once both consumers released item i - 3's stage (``empty``), the V rows of item i - 1
        (their entries were loaded one item ago) and then the K rows of item i are gathered, completion arriving on
        ``full`` (cp.async.mbarrier.arrive.noinc, one arrival per thread).  After the last item a V-only stage
        holds the program's last V."""
        GATHER_P: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [_PW, 1], [1, 0])
        offs_e = gl.arange(0, _BN, gl.SliceLayout(1, GATHER_P))
        offs_d = gl.arange(0, _D, gl.SliceLayout(0, GATHER_P))
        pos, end, step, row = _my_rows(Order, Start, 0, True)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        row_n = _next_row(Order, pos + step, end, True)
        lo_n = gl.load(Offsets + row_n).to(gl.int32)
        hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        it = 0
        pv = gl.full([_BN], -1, gl.int32, gl.SliceLayout(1, GATHER_P))  # entries of the previous item (its V)
        pv_base = V
        while pos < end:
            bh = row // QB
            b = (bh // H).to(gl.int64)
            h = (bh % H).to(gl.int64)
            k_base = K + b * stride_kb + h * stride_kh
            v_base = V + b * stride_vb + h * stride_vh
            n_t = gl.maximum(gl.cdiv(hi - lo, _BN), 1)
            cur = _entries(Indices, lo, hi, 0, offs_e, _BN)
            for t in range(0, n_t):
                st = it % _ST
                mbarrier.wait(empty.index(st), ((it // _ST) & 1) ^ 1)
                if it > 0:  # V of the previous item first: it does not wait for this item's entries
                    _v_gather(v_smem.index((it + _ST - 1) % _ST), pv_base, pv, stride_vn, offs_d)
                ok = (cur >= 0)[:, None]
                r = gl.maximum(cur, 0)[:, None]
                cp.async_copy_global_to_shared(k_smem.index(st), k_base + r * stride_kn + offs_d[None, :], mask=ok)
                cp.mbarrier_arrive(full.index(st), increment_count=False)
                pv = cur
                pv_base = v_base
                cur = _entries(Indices, lo, hi, t + 1, offs_e, _BN)  # the next item's, loaded one item ahead
                it += 1
            pos = pos + step
            row = row_n
            lo = lo_n
            hi = hi_n
            row_n = _next_row(Order, pos + step, end, True)
            lo_n = gl.load(Offsets + row_n).to(gl.int32)
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        if it > 0:  # the V-only stage after the last item: the program's last V
            st = it % _ST
            mbarrier.wait(empty.index(st), ((it // _ST) & 1) ^ 1)
            _v_gather(v_smem.index((it + _ST - 1) % _ST), pv_base, pv, stride_vn, offs_d)
            cp.mbarrier_arrive(full.index(st), increment_count=False)

    @gluon.jit
    def _xr_consumer(half, q_desc, o_desc, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty, kq,
                     qk_scale, H, QB, LAG: gl.constexpr):
        """One consumer warpgroup (query rows [64·half, 64·half + 64) of every row of this program).  Per row: Q
        half by TMA; tile 0 alone (QK, masked softmax); per step t QK(t) and PV(t - 1) in flight together (stage t
        holds both operands); the last PV alone (its V is in the next item's stage); O = acc · (1 / l) (empty row:
        zeros) staged in this half of the row's last K buffer once the other warpgroup's QK has read it (``kq``),
        one TMA bulk store.  A stage is released at the end of its step, except a row's last, released once the
        bulk store has read its K buffer (at the next row's tile-0 QK).  ``kq[w·3 + s]`` counts the QKs of
        warpgroup 1 - w on K buffer s (one arrival per item)."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        dtype: gl.constexpr = k_smem.dtype
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        q_s = my_q.reshape([_HALF, _D])
        other = 1 - half
        pos, end, step, row = _my_rows(Order, Start, 0, True)
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
            pos_n = pos + step
            row_n = _next_row(Order, pos_n, end, True)
            has_next = pos_n < end
            lo_n = gl.load(Offsets + row_n).to(gl.int32)  # the next row's range now, used at this row's end
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
            bh = row // QB
            m_i = gl.full([_HALF], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([_HALF], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([_HALF, _D], gl.float32, S_LAYOUT)
            zero_s = gl.zeros([_HALF, _BN], gl.float32, S_LAYOUT)
            mbarrier.wait(my_bar, phase)
            # tile 0: QK alone, softmax masked to min(cnt, BN) columns
            st = it % _ST
            if LAG:
                if half == 1:  # after warpgroup 0's QK of this row's tile 1 (when the row has one)
                    mbarrier.wait(kq.index(_ST + (it + 1) % _ST), ((it + 1) // _ST) & 1, pred=n_t > 1)
            mbarrier.wait(full.index(st), (it // _ST) & 1)
            s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            if it > 0:  # the previous row's last stage, once its O store has read the K buffer
                _g._release_after_store(empty, (it + _ST - 1) % _ST)
            s = warpgroup_mma_wait(0, deps=(s, ))
            _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next & (n_t == 1))  # (its barrier: kq below)
            mbarrier.arrive(kq.index(other * _ST + st), count=1)
            p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, gl.minimum(cnt, _BN), True, S_LAYOUT, P_LAYOUT,
                                            _BN, 0, dtype)
            pc = _carry_p(p, 1, P_LAYOUT, dtype)
            mbarrier.arrive(empty.index(st), count=1, pred=n_t > 1)  # a one-tile row keeps K(0) for its O
            prev = st
            it += 1
            for _t in range(1, n_t - 1):  # full tiles: QK(t) and PV(t-1) in flight together
                st = it % _ST
                if LAG:
                    if half == 1:
                        mbarrier.wait(kq.index(_ST + (it + 1) % _ST), ((it + 1) // _ST) & 1)
                mbarrier.wait(full.index(st), (it // _ST) & 1)
                p_op = _use_p(pc, 1, P_LAYOUT, dtype)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]  # the previous tile's alpha, while this QK runs
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                s = warpgroup_mma_wait(1, deps=(s, ))
                p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, _BN, False, S_LAYOUT, P_LAYOUT, _BN, 0, dtype)
                acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                pc = _carry_p(p, 1, P_LAYOUT, dtype)
                gl.thread_barrier()  # this warpgroup is done with K(t) and V(t - 1)
                mbarrier.arrive(kq.index(other * _ST + st), count=1)
                mbarrier.arrive(empty.index(st), count=1)
                prev = st
                it += 1
            if n_t > 1:  # the row's last (masked) tile: its stage is kept for this row's O
                st = it % _ST
                mbarrier.wait(full.index(st), (it // _ST) & 1)
                p_op = _use_p(pc, 1, P_LAYOUT, dtype)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                s = warpgroup_mma_wait(1, deps=(s, ))
                _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next)  # (its barrier: kq below)
                mbarrier.arrive(kq.index(other * _ST + st), count=1)  # the other warpgroup may stage its O here
                p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, cnt - (n_t - 1) * _BN, True, S_LAYOUT,
                                                P_LAYOUT, _BN, 0, dtype)
                acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                pc = _carry_p(p, 1, P_LAYOUT, dtype)
                prev = st
                it += 1
            # the last tile's PV: its V arrived with the next item's stage (or the V-only stage after the last)
            mbarrier.wait(full.index(it % _ST), (it // _ST) & 1)
            p_op = _use_p(pc, 1, P_LAYOUT, dtype)
            acc = acc * alpha[:, None]
            acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
            acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
            out = _normalize(acc, l_i, cnt, 2)
            # O into this half of the last K buffer once the other warpgroup's QK has read it
            mbarrier.wait(kq.index(half * _ST + prev), ((it - 1) // _ST) & 1)
            o_all = k_smem.index(prev)._reinterpret(dtype, [2] + o_desc.block_type.shape, o_desc.layout)
            o_s = o_all.index(half)
            o_s.reshape([_HALF, _D]).store(out.to(dtype))
            fence_async_shared()
            gl.thread_barrier()
            tma.async_copy_shared_to_global(o_desc, [bh // H, bh % H, ((row % QB) * 2 + half) * _HALF, 0], o_s)
            lo = lo_n
            hi = hi_n
            row = row_n
            pos = pos_n
            phase ^= 1
        # the last row's O store must have read its K buffer before the CTA's shared memory goes away
        _g._release_after_store(empty, (it + _ST - 1) % _ST)

    @gluon.jit
    def _fg_gluon_xrow(q_desc, o_desc, K, V, Offsets, Indices, Order, Start, qk_scale,
                       stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB,
                       PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr,
                       LAG: gl.constexpr = True, TMA_O: gl.constexpr = True):
        """The CTA: a producer warpgroup (:func:`_xr_producer`) and two consumer warpgroups (:func:`_xr_consumer`,
        the default partition is half 0, ``num_warps`` 4) over the list plan ``Order[Start[p]:Start[p + 1]]``.
        ``q_desc`` / ``o_desc``: Q / O descriptors with [1, 1, 64, D] boxes (``TMA_O``: always, for
        ``gluon_fg.compile_sm90``'s signature)."""
        gl.static_assert(num_warps == _CW)
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_BN, _D], dtype)
        q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [_ST, _BN, _D], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [_ST, _BN, _D], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        kq = gl.allocate_shared_memory(gl.int64, [2 * _ST, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(q_bar.index(i), count=1)
        for i in gl.static_range(_ST):
            mbarrier.init(full.index(i), count=_PW * 32)
            mbarrier.init(empty.index(i), count=2)
        for i in gl.static_range(2 * _ST):
            mbarrier.init(kq.index(i), count=1)
        gl.warp_specialize([
            (_xr_consumer, (0, q_desc, o_desc, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                            kq, qk_scale, H, QB, LAG)),
            (_xr_consumer, (1, q_desc, o_desc, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                            kq, qk_scale, H, QB, LAG)),
            (_xr_producer, (K, V, Offsets, Indices, Order, Start, k_smem, v_smem, full, empty, stride_kb,
                            stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB)),
        ], [_CW, _PW], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(_ST):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))
        for i in gl.static_range(2 * _ST):
            mbarrier.invalidate(kq.index(i))


# ------------------------------------------------------------------------------------------------ host side
def _constexprs(variant: str) -> dict[str, Any]:
    return dict(PRODUCER_REGS=PRODUCER_REGS, CONSUMER_REGS=CONSUMER_REGS, num_warps=4,
                **check_xrow_variant(variant))


def compile_xrow_sm90(dtype: str = "bf16", variant: str = "xrow") -> Any:
    """:func:`_fg_gluon_xrow` of ``variant`` compiled for sm_90 without a GPU (Triton 3.6 with Gluon on the path;
    the signature :func:`fg_attention_gluon_xrow` launches with: ``fgattn.gluon_fg.compile_sm90``)."""
    from . import gluon_fg as g

    return g.compile_sm90(_fg_gluon_xrow, dict(_constexprs(variant), TMA_O=True), dtype, g.BLOCK_M, g.HEAD_DIM,
                          ws2=True)


def fg_attention_gluon_xrow(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                            sm_scale: float | None = None, out: Any = None, plan: Any = None,
                            programs: int | None = None, variant: str = "xrow") -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by the KV-skewed-stage CTA (module docstring) over a
    list plan (:func:`fgattn.gluon_fg_list.plan_ws2_list`; built here if ``plan`` is None, which reads the row
    counts on the host).  Same output as the packaged entry.  ``out`` must be 16-byte aligned (the O TMA store;
    one ValueError line otherwise)."""
    const = _constexprs(variant)  # validates the variant before any work
    from . import gluon_fg as g
    from .gluon_fg_list import prepare_list_call

    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=programs, fail=_fail)
    why = g.o_desc_ok(out, layout)
    if why is not None:
        _fail(why)
    o_desc = g.o_desc_for(out, layout, q_desc, p, "tma")
    st = g._strides
    _fg_gluon_xrow[(plan.programs,)](
        q_desc, o_desc, k, v, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), p.heads, p.n_qblocks, **const)
    return out
