"""Research (issue 12, session 13, helper R): the list-scheduled Gluon ws2 fg kernel with its row boundary pipelined.

Not part of fgattn's dispatch or launch table: reachable only as
``fgattn.gluon_fg_rowpipe.fg_attention_gluon_rowpipe``.  Started from a copy of :mod:`fgattn.gluon_fg_list` (the
CTA the launch table's fg D128 M128 gran-1 entry runs with ``schedule: list``: a producer warpgroup gathering K/V
rows by cp.async into a 3-stage ring, two consumer warpgroups of 64 query rows each with FlashAttention-3's
intra-warpgroup overlap, pipeline 1, no fence, over a host-built row plan).  The tile loop is unchanged; what
changes is what a consumer warpgroup does between two rows (kernels/NOTES.md, "Session 13 research: per-row cost
(helper R)"):

* ``ROWPIPE`` (the change): the pipeline-1 pair carried across the row boundary.  The list kernel ends a row with
  its last PV alone (issue, wait), normalises and stores O, loads the next row's offsets, then starts the next row
  with its tile-0 QK alone (issue, wait) and a softmax that overlaps nothing.  Here the next row's tile-0 QK is
  issued together with this row's last PV, exactly as QK(t) and PV(t-1) inside the loop (FlashAttention-3, Shah
  et al., arXiv 2407.08608, sec. 3.2), the next row's tile-0 softmax runs while that PV is in flight, and only
  then is this row's O normalised and stored.  The next row's offsets are loaded one row ahead (as the producer
  already does), and O is normalised by one reciprocal per query row instead of a division per element.
* ``PREFETCH_Q``: when the producer starts gathering a row (about two tiles ahead of the consumers) it prefetches
  the next row's Q block into L2 (``prefetch.global.L2``, two 128-byte lines per producer thread), so that the Q
  TMA, which the consumers can only issue once this row's last QK has read the single Q buffer, hits L2 and lands
  before the next row's tile-0 QK needs it (the shared memory is full: three 128-key K/V stages and the two Q
  halves take 224 KB of 227, so Q cannot be double-buffered).
* ``DIAG_L2`` (diagnostic only, wrong results by design): the producer gathers key ``idx & 127`` instead of
  ``idx``, so every gather hits L2 (the first 128 keys of the head).  Timed beside the others it separates
  the cost of the gathers' memory latency from the per-row work.

The row / softmax helpers are :mod:`fgattn.gluon_fg`'s own jit functions; the row plan is
:func:`fgattn.gluon_fg_list.plan_ws2_list`'s (the host side is shared, only the CTA differs).
"""

from __future__ import annotations

from typing import Any

__all__ = ["KNOBS", "VARIANT_KNOBS", "check_rowpipe_knobs", "compile_rowpipe_sm90", "fg_attention_gluon_rowpipe"]

#: knob -> allowed values (first = default): see the module docstring
KNOBS: dict[str, tuple[bool, ...]] = {"rowpipe": (True, False), "prefetch_q": (True, False), "diag_l2": (False, True)}
#: the probe's named variants (kernels/tools/rowpipe_probe.py); ``rowpipe_l2`` is a timing diagnostic (wrong output)
VARIANT_KNOBS: dict[str, dict[str, bool]] = {
    "rowpipe": dict(rowpipe=True, prefetch_q=True, diag_l2=False),
    "rowpipe_nopf": dict(rowpipe=True, prefetch_q=False, diag_l2=False),
    "list_pf": dict(rowpipe=False, prefetch_q=True, diag_l2=False),
    "rowpipe_l2": dict(rowpipe=True, prefetch_q=True, diag_l2=True),
    "list_l2": dict(rowpipe=False, prefetch_q=False, diag_l2=True),
}

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
    _PREFETCH_ASM: gl.constexpr = gl.constexpr("prefetch.global.L2 [$1]; mov.u32 $0, 0;")

    @gluon.jit
    def _plan_row(LaneRows, j, j_end):
        """Row at entry ``j`` of a program's list ending at ``j_end`` (row 0 past the end, so dependent loads stay
        in bounds)."""
        return gl.where(j < j_end, gl.load(LaneRows + gl.maximum(gl.minimum(j, j_end - 1), 0)), 0)

    @gluon.jit
    def _prefetch_q(Q, row, QB, H, N_Q, stride_qb, stride_qh, stride_qn, pred):
        """L2 prefetch of the Q block of ``row`` (128 query rows x 256 B: two 128-byte lines per producer thread;
        rows past N_Q clamped to the last one) when ``pred``."""
        L1D: gl.constexpr = gl.BlockedLayout([2], [32], [_PW], [0])
        i = gl.arange(0, 2 * _BM, L1D)
        bh = row // QB
        qrow = gl.minimum((row % QB) * _BM + i // 2, N_Q - 1)
        ptr = (Q + (bh // H).to(gl.int64) * stride_qb + (bh % H).to(gl.int64) * stride_qh
               + qrow.to(gl.int64) * stride_qn + (i % 2) * (_D // 2))
        if pred:
            gl.inline_asm_elementwise(_PREFETCH_ASM, "=r,l", [ptr], dtype=gl.int32, is_pure=False, pack=1)

    @gluon.jit
    def _store_rcp(Out, acc, l_i, empty, b, h, qb, stride_ob, stride_oh, stride_on, N_Q, S_LAYOUT: gl.constexpr):
        """O = acc · (1 / l) (one reciprocal per query row; zeros for a row with no kept key), rows past N_Q not
        stored (:func:`fgattn.gluon_fg._store_out` with the division per element replaced)."""
        inv = 1.0 / gl.where(l_i == 0.0, 1.0, l_i)
        out = gl.where(empty, 0.0, acc * inv[:, None])
        offs_m = qb * _HALF + gl.arange(0, _HALF, gl.SliceLayout(1, S_LAYOUT))
        offs_o = gl.arange(0, _D, gl.SliceLayout(0, S_LAYOUT))
        ptrs = (Out + b.to(gl.int64) * stride_ob + h.to(gl.int64) * stride_oh + offs_m[:, None] * stride_on
                + offs_o[None, :])
        gl.store(ptrs, out.to(Out.dtype.element_ty), mask=(offs_m < N_Q)[:, None])

    @gluon.jit
    def _rp_producer(Q, K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty, stride_qb,
                     stride_qh, stride_qn, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, N_Q,
                     QB, PREFETCH_Q: gl.constexpr, DIAG_L2: gl.constexpr):
        """The list kernel's producer (index entries one tile ahead, gathers once the consumers released the
        stage, completion by cp.async.mbarrier.arrive on ``full``); ``PREFETCH_Q``: when it starts a row's gathers
        (two tiles ahead of the consumers) it prefetches the next row's Q block into L2; ``DIAG_L2``: key
        ``idx & 127``."""
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
            if PREFETCH_Q:
                _prefetch_q(Q, row_n, QB, H, N_Q, stride_qb, stride_qh, stride_qn, pos + 1 < end)
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
                if DIAG_L2:
                    r = (gl.maximum(cur, 0) & 127)[:, None]
                else:
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
    def _rp_first_tile(q_s, k_smem, full, it, cnt, qk_scale, zero_s, q_desc, my_bar, my_q, row_n, half, QB, H,
                       q_pred, S_LAYOUT: gl.constexpr, P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """A row's tile 0 alone: QK, wait, the next row's Q half by TMA when ``q_pred`` (this row has one tile),
        softmax masked to min(cnt, BN) columns from a fresh running max / sum."""
        st = it % _ST
        mbarrier.wait(full.index(st), (it // _ST) & 1)
        s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(0, deps=(s, ))
        _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, q_pred)
        m_i = gl.full([_HALF], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
        l_i = gl.zeros([_HALF], gl.float32, gl.SliceLayout(1, S_LAYOUT))
        p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, gl.minimum(cnt, _BN), True, S_LAYOUT, P_LAYOUT, _BN,
                                        0, dtype)
        return st, _carry_p(p, 1, P_LAYOUT, dtype), alpha, m_i, l_i

    @gluon.jit
    def _rp_tile(q_s, k_smem, v_smem, full, empty, it, prev, pc, acc, alpha, m_i, l_i, zero_s, qk_scale, n_valid,
                 q_desc, my_bar, my_q, row_n, half, QB, H, q_pred, MASKED: gl.constexpr, S_LAYOUT: gl.constexpr,
                 P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """One tile of the pipeline-1 loop (as :func:`fgattn.gluon_fg_list._list_consumer`): QK(t) and PV(t-1) in
        flight together, the next row's Q half by TMA after QK(t) when ``q_pred`` (``MASKED``: the row's last
        tile), tile t's softmax while PV(t-1) runs, then the stage of tile t-1 released."""
        st = it % _ST
        mbarrier.wait(full.index(st), (it // _ST) & 1)
        p_op = _use_p(pc, 1, P_LAYOUT, dtype)
        s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        acc = acc * alpha[:, None]  # the previous tile's alpha, while this QK runs
        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
        s = warpgroup_mma_wait(1, deps=(s, ))
        if MASKED:
            _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, q_pred)
        p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, n_valid, MASKED, S_LAYOUT, P_LAYOUT, _BN, 0, dtype)
        acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
        pc = _carry_p(p, 1, P_LAYOUT, dtype)
        gl.thread_barrier()  # this warpgroup is done with the previous tile's stage
        mbarrier.arrive(empty.index(prev), count=1)
        return st, pc, acc, alpha, m_i, l_i

    @gluon.jit
    def _rp_pair_tile0(q_s, k_smem, v_smem, full, empty, it, prev, pc, acc, alpha, zero_s, qk_scale, cnt_n, q_desc,
                       my_bar, my_q, row_nn, half, QB, H, q_pred, S_LAYOUT: gl.constexpr, P_LAYOUT: gl.constexpr,
                       dtype: gl.constexpr):
        """The row boundary with ROWPIPE: the next row's tile-0 QK and this row's last PV in flight together, the
        next row's Q after that QK when ``q_pred`` (it has one tile), its tile-0 softmax (masked, fresh max / sum)
        while the PV runs, then this row's last stage released.  Returns the next row's tile-0 state and this
        row's final accumulator."""
        st = it % _ST
        mbarrier.wait(full.index(st), (it // _ST) & 1)
        p_op = _use_p(pc, 1, P_LAYOUT, dtype)
        s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        acc = acc * alpha[:, None]
        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
        s = warpgroup_mma_wait(1, deps=(s, ))
        _q_next(q_desc, my_bar, my_q, row_nn, half, QB, H, q_pred)
        m_i = gl.full([_HALF], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
        l_i = gl.zeros([_HALF], gl.float32, gl.SliceLayout(1, S_LAYOUT))
        p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, gl.minimum(cnt_n, _BN), True, S_LAYOUT, P_LAYOUT,
                                        _BN, 0, dtype)
        acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
        pc = _carry_p(p, 1, P_LAYOUT, dtype)
        gl.thread_barrier()
        mbarrier.arrive(empty.index(prev), count=1)
        return st, pc, acc, alpha, m_i, l_i

    @gluon.jit
    def _rp_last_pv(v_smem, empty, prev, pc, acc, alpha, P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """A row's last PV alone (issue, wait), then its stage released; returns the final accumulator."""
        p_op = _use_p(pc, 1, P_LAYOUT, dtype)
        acc = acc * alpha[:, None]
        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
        acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
        gl.thread_barrier()
        mbarrier.arrive(empty.index(prev), count=1)
        return acc

    @gluon.jit
    def _rp_consumer(half, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full, empty,
                     qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, ROWPIPE: gl.constexpr):
        """Consumer warpgroup ``half`` over this program's planned rows.  Loop invariant at the top of a row: its
        tile 0 has been multiplied and exponentiated (``pc``, ``alpha``, ``m_i``, ``l_i``; ``acc`` zero), ``prev``
        is tile 0's stage, and ``row_n`` / ``lo_n`` / ``hi_n`` describe the next row (offsets loaded a row ahead).
        ``ROWPIPE``: the next row's tile 0 is done at this row's end, beside its last PV; else (the list kernel's
        order) the last PV runs alone, the row is stored, and the next row's tile 0 runs alone."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        dtype: gl.constexpr = k_smem.dtype
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        q_s = my_q.reshape([_HALF, _D])
        zero_s = gl.zeros([_HALF, _BN], gl.float32, S_LAYOUT)
        pid = gl.program_id(0)
        pos = gl.load(LaneStart + pid)
        end = gl.load(LaneStart + pid + 1)
        row = _plan_row(LaneRows, pos, end)
        bh0 = row // QB
        mbarrier.expect(my_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [bh0 // H, bh0 % H, (row % QB) * _BM + half * _HALF, 0], my_bar,
                                        my_q)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        row_n = _plan_row(LaneRows, pos + 1, end)
        lo_n = gl.load(Offsets + row_n).to(gl.int32)
        hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        mbarrier.wait(my_bar, 0)
        prev, pc, alpha, m_i, l_i = _rp_first_tile(q_s, k_smem, full, 0, hi - lo, qk_scale, zero_s, q_desc, my_bar,
                                                   my_q, row_n, half, QB, H, (pos + 1 < end) & (hi - lo <= _BN),
                                                   S_LAYOUT, P_LAYOUT, dtype)
        acc = gl.zeros([_HALF, _D], gl.float32, S_LAYOUT)
        it = 1
        phase = 0
        while pos < end:
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, _BN), 1)
            pos_n = pos + 1
            has_next = pos_n < end
            row_nn = _plan_row(LaneRows, pos_n + 1, end)
            has_nn = pos_n + 1 < end
            for _t in range(1, n_t - 1):  # full tiles
                prev, pc, acc, alpha, m_i, l_i = _rp_tile(q_s, k_smem, v_smem, full, empty, it, prev, pc, acc, alpha,
                                                          m_i, l_i, zero_s, qk_scale, _BN, q_desc, my_bar, my_q,
                                                          row_n, half, QB, H, has_next, False, S_LAYOUT, P_LAYOUT,
                                                          dtype)
                it += 1
            if n_t > 1:  # the row's last (masked) tile; the next row's Q follows its QK
                prev, pc, acc, alpha, m_i, l_i = _rp_tile(q_s, k_smem, v_smem, full, empty, it, prev, pc, acc, alpha,
                                                          m_i, l_i, zero_s, qk_scale, cnt - (n_t - 1) * _BN, q_desc,
                                                          my_bar, my_q, row_n, half, QB, H, has_next, True, S_LAYOUT,
                                                          P_LAYOUT, dtype)
                it += 1
            l_row = l_i
            empty_row = cnt == 0
            bh = row // QB
            cnt_n = hi_n - lo_n
            if ROWPIPE:
                if has_next:
                    mbarrier.wait(my_bar, phase ^ 1)
                    prev, pc, acc, alpha, m_i, l_i = _rp_pair_tile0(q_s, k_smem, v_smem, full, empty, it, prev, pc, acc,
                                                                    alpha, zero_s, qk_scale, cnt_n, q_desc, my_bar,
                                                                    my_q, row_nn, half, QB, H,
                                                                    has_nn & (cnt_n <= _BN), S_LAYOUT, P_LAYOUT,
                                                                    dtype)
                    it += 1
                else:
                    acc = _rp_last_pv(v_smem, empty, prev, pc, acc, alpha, P_LAYOUT, dtype)
                _store_rcp(Out, acc, l_row, empty_row, bh // H, bh % H, (row % QB) * 2 + half, stride_ob, stride_oh,
                           stride_on, N_Q, S_LAYOUT)
            else:
                acc = _rp_last_pv(v_smem, empty, prev, pc, acc, alpha, P_LAYOUT, dtype)
                _store_out(Out, acc, l_row, empty_row, bh // H, bh % H, (row % QB) * 2 + half, stride_ob, stride_oh,
                           stride_on, N_Q, S_LAYOUT, _HALF, _D)
                if has_next:  # the next row's tile 0 alone (the list kernel's order)
                    mbarrier.wait(my_bar, phase ^ 1)
                    prev, pc, alpha, m_i, l_i = _rp_first_tile(q_s, k_smem, full, it, cnt_n, qk_scale, zero_s, q_desc,
                                                               my_bar, my_q, row_nn, half, QB, H,
                                                               has_nn & (cnt_n <= _BN), S_LAYOUT, P_LAYOUT, dtype)
                    it += 1
            acc = gl.zeros([_HALF, _D], gl.float32, S_LAYOUT)
            row = row_n
            lo = lo_n
            hi = hi_n
            row_n = row_nn
            lo_n = gl.load(Offsets + row_nn).to(gl.int32)
            hi_n = gl.load(Offsets + row_nn + 1).to(gl.int32)
            pos = pos_n
            phase ^= 1

    @gluon.jit
    def _fg_gluon_ws2_rowpipe(q_desc, Q, K, V, Out, Offsets, Indices, LaneRows, LaneStart, qk_scale,
                              stride_qb, stride_qh, stride_qn, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh,
                              stride_vn, stride_ob, stride_oh, stride_on, H, N_Q, QB,
                              ROWPIPE: gl.constexpr, PREFETCH_Q: gl.constexpr, DIAG_L2: gl.constexpr,
                              PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr):
        """Form ws2 (pipeline 1, no fence) over planned rows with the row boundary of :func:`_rp_consumer`:
        program p runs ``LaneRows[LaneStart[p]:LaneStart[p + 1]]``; default partition = consumer half 0
        (``num_warps`` 4), workers = consumer half 1 and the producer.  ``q_desc`` has [1, 1, 64, D] boxes."""
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
            (_rp_consumer, (0, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full,
                            empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, ROWPIPE)),
            (_rp_consumer, (1, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full,
                            empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, ROWPIPE)),
            (_rp_producer, (Q, K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty, stride_qb,
                            stride_qh, stride_qn, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H,
                            N_Q, QB, PREFETCH_Q, DIAG_L2)),
        ], [_CW, _PW], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(_ST):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


# ------------------------------------------------------------------------------------------------ host side
def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_rowpipe: {msg}")


def check_rowpipe_knobs(rowpipe: Any = True, prefetch_q: Any = True, diag_l2: Any = False) -> dict[str, bool]:
    """The kernel's constexprs (``ROWPIPE``, ``PREFETCH_Q``, ``DIAG_L2``) from the knobs, each a bool (one
    ValueError line naming the knob otherwise)."""
    vals = dict(rowpipe=rowpipe, prefetch_q=prefetch_q, diag_l2=diag_l2)
    for name, v in vals.items():
        if not isinstance(v, bool):
            _fail(f"{name}={v!r} must be a bool")
    return dict(ROWPIPE=rowpipe, PREFETCH_Q=prefetch_q, DIAG_L2=diag_l2)


def compile_rowpipe_sm90(dtype: str = "bf16", **knobs: bool) -> Any:
    """Compile the kernel for sm_90 without a GPU (Triton 3.6 with Gluon on the path) with the signature
    :func:`fg_attention_gluon_rowpipe` launches with; ``knobs`` as :func:`check_rowpipe_knobs`."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from .gluon_fg import CONSUMER_REGS, PRODUCER_REGS

    if _GLUON_ERR is not None:
        _fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if dtype not in ("bf16", "fp16"):
        _fail(f"dtype={dtype!r} must be 'bf16' or 'fp16'")
    fn = _fg_gluon_ws2_rowpipe
    const = dict(check_rowpipe_knobs(**knobs), PRODUCER_REGS=PRODUCER_REGS, CONSUMER_REGS=CONSUMER_REGS, num_warps=4)
    names = list(fn.arg_names)
    lay = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
           "fp4_padded=False, cga_layout=[])")
    ptr = {"Q": f"*{dtype}", "K": f"*{dtype}", "V": f"*{dtype}", "Out": f"*{dtype}", "Offsets": "*i64",
           "Indices": "*i32", "LaneRows": "*i32", "LaneStart": "*i32"}
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


def fg_attention_gluon_rowpipe(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                               sm_scale: float | None = None, out: Any = None, plan: Any = None,
                               programs: int | None = None, rowpipe: bool = True, prefetch_q: bool = True,
                               diag_l2: bool = False) -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by this module's CTA over a row plan
    (:func:`fgattn.gluon_fg_list.plan_ws2_list`; built here if ``plan`` is None, which reads the row counts on the
    host and so cannot run under CUDA-graph capture).  Same output as the table entry (q's layout and dtype; zeros
    for a query block with no kept key) unless ``diag_l2`` (a timing diagnostic: wrong keys gathered).
    ``programs``: grid size when the plan is built here (default the SM count)."""

    from .gluon_fg import CONSUMER_REGS, PRODUCER_REGS
    from .gluon_fg_list import prepare_list_call

    meta = check_rowpipe_knobs(rowpipe, prefetch_q, diag_l2)
    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=programs, fail=_fail)
    st = _g._strides
    _fg_gluon_ws2_rowpipe[(plan.programs,)](
        q_desc, q, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(q, layout), *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks,
        **meta, PRODUCER_REGS=PRODUCER_REGS, CONSUMER_REGS=CONSUMER_REGS, num_warps=4)
    return out
