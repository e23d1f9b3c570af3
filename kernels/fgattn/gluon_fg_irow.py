"""Research (issue 12, session 15, helper X2): the fg D128 M128 gran-1 kernel with *independent-row* consumers, so
that one row's once-per-row code overlaps another row's wgmmas.

Not part of fgattn's dispatch or launch table: reachable only as :func:`fg_attention_gluon_irow`.  Same inputs,
math and outputs as the packaged entry (:func:`fgattn.gluon_fg_list.fg_attention_gluon_list` with
``epilogue="tma_sel"``).  What differs (kernels/NOTES.md, "Session 15 research: independent-row warpgroups
(helper X2)"):

* The packaged CTA (one producer warpgroup, two consumer warpgroups of 64 query rows each over one 128-query row,
  3 stages of 128 keys) runs both consumers' row start and row end at the same time: no wgmma overlaps them
  (ncu, session 13: tensor pipe active 48.6 % at d 0.02).
* Here a CTA has **one consumer warpgroup that owns whole 128-query rows** (two m64 wgmmas per step, O accumulator
  128 x 128 fp32 = 128 registers per thread) and one producer warpgroup gathering K/V rows by cp.async into its
  own ring of **2 stages of 64 keys** (K and V of a stage in one contiguous 32 KB buffer) beside a
  32 KB Q buffer: 96 KB of shared memory and 128 registers per thread at launch, so **two CTAs share an SM**
  (the brief's "2 CTAs per SM" form of independent-row warpgroups: two rings, two producers, two consumers that
  never wait for each other).  The hardware interleaves the two CTAs' warps: one CTA's row code (softmax of the
  masked tile, normalisation, O store, Q wait) runs while the other's wgmmas keep the tensor pipe busy.
* The list plan has 2 x SMs programs (:func:`fgattn.gluon_fg_list.plan_ws2_list`, unchanged: each program is one
  CTA, so each is one independent row lane).
* Per tile (synchronous order, FlashAttention-2 style inside the warpgroup): QK (wait), online softmax (masked on
  a row's last tile only), acc * alpha, PV (wait), release.  Registers forbid FA3's intra-warpgroup overlap here
  (O 128 + S 64 + P 32 per thread are the whole budget): the other CTA is the overlap.
* Row end (as tma_sel): O = acc * (1 / l) with the empty row zeroed by selects, staged in the row's last stage
  (32 KB = the 128 x 128 bf16 O), one TMA bulk store; the stage is released once the store has read it, at the
  next row's start.  The next row's Q is loaded by TMA after the row's last QK; the next row's (lo, hi) a row
  ahead.  The last tile's padding is at most 63 keys (the packaged 127).

Measured once (session 15, one H200 call, kernels/NOTES.md "... (helper X2), outcome"): correct (220 float64
checks), 2 CTAs per SM, but 0.92-1.21 x the packaged entry (faster only at <= 6 tiles per row): the two CTAs hide
about half of the row code (-1.8 us per row) but the unordered synchronous loop costs 19 % more per FLOP.  Not
adopted.  Prepared after the call, offline only (never launched): ``psmem`` (P through shared memory, FA3's
intra-warpgroup overlap; spills at 232 registers).  Measured in a second call: :func:`fg_attention_gluon_irow2`
(both lanes of an SM in one CTA: 1.180 x the entry, the row overlap lost) and its ``order`` form (soft lane turns
around each wgmma issue, :func:`_turn`: 1.269, the ordering costs 7.5 %).  Neither adopted.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BLOCK_N", "STAGES", "CTAS_PER_SM", "compile_irow_sm90", "compile_irow2_sm90", "fg_attention_gluon_irow",
           "fg_attention_gluon_irow2", "irow_plan", "irow2_plan", "irow_programs"]

#: keys per tile (the packaged 128), ring stages per CTA, CTAs per SM the launch plans for
BLOCK_N = 64
STAGES = 2
CTAS_PER_SM = 2
#: registers per thread: 128 at launch (two 256-thread CTAs per SM: 65,536 / 512); setmaxnreg gives the producer
#: warpgroup PRODUCER_REGS and the consumer (default partition) 256 - PRODUCER_REGS
LAUNCH_REGS = 128
PRODUCER_REGS = 24

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
    raise ValueError(f"fgattn.gluon_fg_irow: {msg}")


if _GLUON_ERR is None:
    _entries = _g._entries
    _softmax_p = _g._softmax_p
    _my_rows = _g._my_rows
    _next_row = _g._next_row
    _BN: gl.constexpr = gl.constexpr(BLOCK_N)
    _BM: gl.constexpr = gl.constexpr(_g.BLOCK_M)
    _D: gl.constexpr = gl.constexpr(_g.HEAD_DIM)
    _ST: gl.constexpr = gl.constexpr(STAGES)
    _PW: gl.constexpr = gl.constexpr(4)  # producer warps
    _CW: gl.constexpr = gl.constexpr(4)  # consumer warps

    @gluon.jit
    def _lane_rows(Order, Start, LANES: gl.constexpr, lane: gl.constexpr):
        """This lane's rows of the host plan: entries Start[q] .. Start[q + 1] - 1 of ``Order`` with q = program
        id · LANES + lane (:func:`fgattn.gluon_fg._my_rows` for LANES 1): (first position, end, step 1, first row)."""
        q = gl.program_id(0) * LANES + lane
        pos = gl.load(Start + q)
        end = gl.load(Start + q + 1)
        return pos, end, 1, _g._plan_row(Order, pos, end)

    @gluon.jit
    def _ir_producer(K, V, Offsets, Indices, Order, Start, kv_smem, full, empty, stride_kb, stride_kh, stride_kn,
                     stride_vb, stride_vh, stride_vn, H, QB, PW: gl.constexpr, LANES: gl.constexpr,
                     lane: gl.constexpr):
        """Producer warpgroup: for every row of this program and every 64-key tile, the index entries (loaded
        before the wait for the stage: no tile of look-ahead, which would not fit its 24 registers), then, once the
        consumer released the stage, the K and V gathers by cp.async into the stage's two
        halves, completion arriving on ``full`` (one arrival per thread)."""
        GATHER_P: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [PW, 1], [1, 0])
        offs_e = gl.arange(0, _BN, gl.SliceLayout(1, GATHER_P))
        offs_d = gl.arange(0, _D, gl.SliceLayout(0, GATHER_P))
        if LANES == 1:
            pos, end, step, row = _my_rows(Order, Start, 0, True)
        else:
            pos, end, step, row = _lane_rows(Order, Start, LANES, lane)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        row_n = _next_row(Order, pos + step, end, True)
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
            for t in range(0, n_t):
                cur = _entries(Indices, lo, hi, t, offs_e, _BN)  # in flight while the stage is awaited
                st = it % _ST
                mbarrier.wait(empty.index(st), ((it // _ST) & 1) ^ 1)
                ok = (cur >= 0)[:, None]
                r = gl.maximum(cur, 0)[:, None]
                cp.async_copy_global_to_shared(kv_smem.index(2 * st), k_base + r * stride_kn + offs_d[None, :], mask=ok)
                cp.async_copy_global_to_shared(kv_smem.index(2 * st + 1), v_base + r * stride_vn + offs_d[None, :],
                                               mask=ok)
                cp.mbarrier_arrive(full.index(st), increment_count=False)
                it += 1
            pos = pos + step
            row = row_n
            lo = lo_n
            hi = hi_n
            row_n = _next_row(Order, pos + step, end, True)
            lo_n = gl.load(Offsets + row_n).to(gl.int32)
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)

    @gluon.jit
    def _ir_tile(q_s, kv_smem, full, empty, st, it, acc, m_i, l_i, zero_s, qk_scale, n_valid, MASKED: gl.constexpr,
                 S_LAYOUT: gl.constexpr, O_LAYOUT: gl.constexpr, P_LAYOUT: gl.constexpr, dtype: gl.constexpr,
                 RELEASE: gl.constexpr):
        """One 64-key tile of a 128-query row: wait for the stage, S = Q·Kᵀ (two m64 wgmmas), online softmax,
        O = alpha·O + P·V; ``RELEASE``: the stage goes back to the producer (not a row's last: O is staged there)."""
        mbarrier.wait(full.index(st), (it // _ST) & 1)
        s = warpgroup_mma(q_s, kv_smem.index(2 * st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(0, deps=(s, ))
        p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, n_valid, MASKED, S_LAYOUT, P_LAYOUT, _BN, 0, dtype)
        acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
        p_op = gl.convert_layout(p.to(dtype), P_LAYOUT)
        acc = warpgroup_mma(p_op, kv_smem.index(2 * st + 1), acc, is_async=True)
        acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
        if RELEASE:
            gl.thread_barrier()  # the warpgroup is done with the stage
            mbarrier.arrive(empty.index(st), count=1)
        return acc, m_i, l_i

    @gluon.jit
    def _ir_first(q_desc, Offsets, Order, Start, q_smem, q_bar, H, QB, LANES: gl.constexpr, lane: gl.constexpr):
        """A consumer's start: its row source, the first row's Q by TMA, the first row's (lo, hi)."""
        if LANES == 1:
            pos, end, step, row = _my_rows(Order, Start, 0, True)
        else:
            pos, end, step, row = _lane_rows(Order, Start, LANES, lane)
        bh = row // QB
        if LANES == 1:
            mbarrier.expect(q_bar.index(0), q_desc.block_type.nbytes)
            tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * _BM, 0], q_bar.index(0), q_smem)
        else:  # a lane of a padded plan may have no row: no Q load may be left in flight at exit
            mbarrier.expect(q_bar.index(0), q_desc.block_type.nbytes, pred=pos < end)
            tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * _BM, 0], q_bar.index(0), q_smem,
                                            pred=pos < end)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        return pos, end, step, row, lo, hi

    @gluon.jit
    def _ir_next(Offsets, Order, lo, hi, pos, step, end):
        """A row's key count and 64-key tiles, and the next row (position, row, whether there is one, its range:
        loaded now, used at this row's end)."""
        cnt = hi - lo
        n_t = gl.maximum(gl.cdiv(cnt, _BN), 1)
        pos_n = pos + step
        row_n = _next_row(Order, pos_n, end, True)
        lo_n = gl.load(Offsets + row_n).to(gl.int32)
        hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        return cnt, n_t, pos_n, row_n, pos_n < end, lo_n, hi_n

    @gluon.jit
    def _ir_row_start(q_bar, empty, it, phase, S_LAYOUT: gl.constexpr, O_LAYOUT: gl.constexpr):
        """A row's start: the running max / sum and O accumulator, the QK accumulator placeholder, the wait for the
        row's Q, and (after the first row) the previous row's last stage released once its O store has read it.
        -> (m_i, l_i, acc, zero_s)."""
        m_i = gl.full([_BM], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
        l_i = gl.zeros([_BM], gl.float32, gl.SliceLayout(1, S_LAYOUT))
        acc = gl.zeros([_BM, _D], gl.float32, O_LAYOUT)
        zero_s = gl.zeros([_BM, _BN], gl.float32, S_LAYOUT)
        mbarrier.wait(q_bar.index(0), phase)
        if it > 0:
            _g._release_after_store(empty, (it + _ST - 1) % _ST)
        return m_i, l_i, acc, zero_s

    @gluon.jit
    def _ir_store_o(o_desc, acc, l_i, cnt, kv_smem, st, bh, row, H, QB, O_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """O = acc / l (the empty row's acc and l are NaN: both factors selected to 0, tma_sel's RCP 2) staged in
        stage ``st`` (32 KB = the bf16 O) once every warp's last PV has read it, then one TMA bulk store (waited
        for at the next row's start: :func:`fgattn.gluon_fg._release_after_store`)."""
        empty_row = cnt == 0
        inv = gl.convert_layout(gl.where(empty_row, 0.0, 1.0 / l_i), gl.SliceLayout(1, O_LAYOUT))
        out = gl.where(empty_row, 0.0, acc) * inv[:, None]
        gl.thread_barrier()
        o_s = kv_smem._reinterpret(dtype, [_ST] + o_desc.block_type.shape, o_desc.layout).index(st)  # 32 KB
        o_s.reshape([_BM, _D]).store(out.to(dtype))
        fence_async_shared()
        gl.thread_barrier()
        tma.async_copy_shared_to_global(o_desc, [bh // H, bh % H, (row % QB) * _BM, 0], o_s)

    @gluon.jit
    def _ir_consumer(q_desc, o_desc, Offsets, Order, Start, q_smem, kv_smem, q_bar, full, empty, qk_scale, H, QB,
                     LANES: gl.constexpr, lane: gl.constexpr):
        """The consumer warpgroup (default partition): per row, Q (128 x 128) by TMA, the row's full tiles, its last
        (masked) tile, after whose QK the next row's Q is loaded, then O = acc · (1 / l) (empty row: zeros by
        selects) staged in the last stage and stored by one TMA bulk copy; the stage is released at the next row's
        start, once the bulk store has read it."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _BN, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _D, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = kv_smem.dtype
        q_s = q_smem.reshape([_BM, _D])
        pos, end, step, row, lo, hi = _ir_first(q_desc, Offsets, Order, Start, q_smem, q_bar, H, QB, LANES, lane)
        it = 0
        phase = 0
        while pos < end:
            cnt, n_t, pos_n, row_n, has_next, lo_n, hi_n = _ir_next(Offsets, Order, lo, hi, pos, step, end)
            bh = row // QB
            m_i, l_i, acc, zero_s = _ir_row_start(q_bar, empty, it, phase, S_LAYOUT, O_LAYOUT)
            for _t in range(0, n_t - 1):  # full tiles
                acc, m_i, l_i = _ir_tile(q_s, kv_smem, full, empty, it % _ST, it, acc, m_i, l_i, zero_s, qk_scale,
                                         _BN, False, S_LAYOUT, O_LAYOUT, P_LAYOUT, dtype, True)
                it += 1
            # the row's last tile (masked to cnt - (n_t - 1) * BN keys); the next Q once its QK has read Q
            st = it % _ST
            mbarrier.wait(full.index(st), (it // _ST) & 1)
            s = warpgroup_mma(q_s, kv_smem.index(2 * st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            s = warpgroup_mma_wait(0, deps=(s, ))
            gl.thread_barrier()
            bh_n = row_n // QB
            mbarrier.expect(q_bar.index(0), q_desc.block_type.nbytes, pred=has_next)
            tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _BM, 0], q_bar.index(0),
                                            q_smem, pred=has_next)
            p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, cnt - (n_t - 1) * _BN, True, S_LAYOUT, P_LAYOUT,
                                            _BN, 0, dtype)
            acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
            p_op = gl.convert_layout(p.to(dtype), P_LAYOUT)
            acc = warpgroup_mma(p_op, kv_smem.index(2 * st + 1), acc, is_async=True)
            acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
            _ir_store_o(o_desc, acc, l_i, cnt, kv_smem, st, bh, row, H, QB, O_LAYOUT, dtype)
            it += 1
            lo = lo_n
            hi = hi_n
            row = row_n
            pos = pos_n
            phase ^= 1
        # the last row's O store must have read its stage before the CTA's shared memory goes away
        tma.store_wait(0)

    @gluon.jit
    def _ps_softmax(s, m_i, l_i, qk_scale, n_valid, MASKED: gl.constexpr, S_LAYOUT: gl.constexpr,
                    P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """:func:`fgattn.gluon_fg._softmax_p` of a 64-key score tile (P fp32, alpha, new max and sum)."""
        return _softmax_p(s, m_i, l_i, qk_scale, n_valid, MASKED, S_LAYOUT, P_LAYOUT, _BN, 0, dtype)

    @gluon.jit
    def _ps_step(q_s, kv_smem, p_smem, full, empty, it, acc, m_i, l_i, zero_s, qk_scale, n_valid,
                 MASKED: gl.constexpr, S_LAYOUT: gl.constexpr, O_LAYOUT: gl.constexpr, P_LAYOUT: gl.constexpr,
                 dtype: gl.constexpr):
        """Step ``it`` of a row (not its first tile): QK(it) and PV(it - 1) in flight together (P(it - 1) in
        ``p_smem``, an SS wgmma), QK waited first, the softmax of tile ``it`` under PV(it - 1), then PV(it - 1)
        waited, tile it - 1's stage released, acc rescaled and P(it) written to ``p_smem`` (FlashAttention-3's
        intra-warpgroup overlap, Shah et al., arXiv 2407.08608, sec. 3.2, with P through shared memory)."""
        st = it % _ST
        pst = (it + _ST - 1) % _ST
        mbarrier.wait(full.index(st), (it // _ST) & 1)
        s = warpgroup_mma(q_s, kv_smem.index(2 * st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        acc = warpgroup_mma(p_smem, kv_smem.index(2 * pst + 1), acc, is_async=True)
        s = warpgroup_mma_wait(1, deps=(s, ))
        p, alpha, m_i, l_i = _ps_softmax(s, m_i, l_i, qk_scale, n_valid, MASKED, S_LAYOUT, P_LAYOUT, dtype)
        pb = p.to(dtype)  # 32 registers instead of 64 across the PV wait
        acc, pb = warpgroup_mma_wait(0, deps=(acc, pb))
        gl.thread_barrier()  # every warp's PV(it - 1) has read P and V(it - 1)
        mbarrier.arrive(empty.index(pst), count=1)
        acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
        p_smem.store(pb)
        fence_async_shared()
        gl.thread_barrier()
        return acc, m_i, l_i

    @gluon.jit
    def _ir_consumer_ps(q_desc, o_desc, Offsets, Order, Start, q_smem, kv_smem, p_smem, q_bar, full, empty,
                        qk_scale, H, QB):
        """:func:`_ir_consumer` with the intra-warpgroup overlap (``PSMEM``): per row, tile 0's QK and softmax
        alone, P(0) to shared memory; then per step t >= 1 (:func:`_ps_step`) QK(t) and PV(t - 1) in flight
        together; the row's last PV alone; O staged in the last stage as in :func:`_ir_consumer`.  Registers: O
        128 + S 64 per thread (P lives in shared memory, 16 KB per CTA).

        Prepared after session 15's call and compiled offline only, never launched: at the consumer's 232
        registers ptxas spills in its tile loop (14 local accesses per tile, stack 264 B; kernels/NOTES.md,
        "... (helper X2), outcome"), so it is not a candidate as it stands."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _BN, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _D, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = kv_smem.dtype
        q_s = q_smem.reshape([_BM, _D])
        pos, end, step, row, lo, hi = _ir_first(q_desc, Offsets, Order, Start, q_smem, q_bar, H, QB, 1, 0)
        it = 0
        phase = 0
        while pos < end:
            cnt, n_t, pos_n, row_n, has_next, lo_n, hi_n = _ir_next(Offsets, Order, lo, hi, pos, step, end)
            bh = row // QB
            m_i, l_i, acc, zero_s = _ir_row_start(q_bar, empty, it, phase, S_LAYOUT, O_LAYOUT)
            # tile 0: QK alone; masked to min(cnt, BN) keys (it may be the row's last)
            st = it % _ST
            mbarrier.wait(full.index(st), (it // _ST) & 1)
            s = warpgroup_mma(q_s, kv_smem.index(2 * st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            s = warpgroup_mma_wait(0, deps=(s, ))
            gl.thread_barrier()
            bh_n = row_n // QB
            one = n_t == 1
            mbarrier.expect(q_bar.index(0), q_desc.block_type.nbytes, pred=has_next & one)
            tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _BM, 0], q_bar.index(0),
                                            q_smem, pred=has_next & one)
            p, alpha, m_i, l_i = _ps_softmax(s, m_i, l_i, qk_scale, gl.minimum(cnt, _BN), True, S_LAYOUT, P_LAYOUT,
                                             dtype)
            p_smem.store(p.to(dtype))
            fence_async_shared()
            gl.thread_barrier()
            it += 1
            for _t in range(1, n_t - 1):  # full tiles
                acc, m_i, l_i = _ps_step(q_s, kv_smem, p_smem, full, empty, it, acc, m_i, l_i, zero_s, qk_scale,
                                         _BN, False, S_LAYOUT, O_LAYOUT, P_LAYOUT, dtype)
                it += 1
            if n_t > 1:  # the row's last (masked) tile; then the next Q (its QK has read Q)
                acc, m_i, l_i = _ps_step(q_s, kv_smem, p_smem, full, empty, it, acc, m_i, l_i, zero_s, qk_scale,
                                         cnt - (n_t - 1) * _BN, True, S_LAYOUT, O_LAYOUT, P_LAYOUT, dtype)
                mbarrier.expect(q_bar.index(0), q_desc.block_type.nbytes, pred=has_next)
                tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _BM, 0],
                                                q_bar.index(0), q_smem, pred=has_next)
                it += 1
            # the last PV alone; its stage is kept for O
            st = (it + _ST - 1) % _ST
            acc = warpgroup_mma(p_smem, kv_smem.index(2 * st + 1), acc, is_async=True)
            acc = warpgroup_mma_wait(0, deps=(acc, ))
            _ir_store_o(o_desc, acc, l_i, cnt, kv_smem, st, bh, row, H, QB, O_LAYOUT, dtype)
            lo = lo_n
            hi = hi_n
            row = row_n
            pos = pos_n
            phase ^= 1
        tma.store_wait(0)

    @gluon.jit
    def _fg_gluon_irow(q_desc, o_desc, K, V, Offsets, Indices, Order, Start, qk_scale,
                       stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB,
                       PRODUCER_REGS: gl.constexpr, num_warps: gl.constexpr, PSMEM: gl.constexpr = False):
        """The CTA: the consumer warpgroup (default partition, :func:`_ir_consumer`) and a producer warpgroup
        (:func:`_ir_producer`) over the list plan ``Order[Start[p]:Start[p + 1]]``.  ``q_desc`` / ``o_desc``: Q / O
        descriptors with [1, 1, 128, D] boxes.  Shared memory: Q 32 KB + 2 stages x 32 KB."""
        gl.static_assert(num_warps == _CW)
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_BN, _D], dtype)
        q_smem = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
        kv_smem = gl.allocate_shared_memory(dtype, [2 * _ST, _BN, _D], KV_SMEM)  # stage s: K 2s, V 2s + 1
        q_bar = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_bar.index(0), count=1)
        for i in gl.static_range(_ST):
            mbarrier.init(full.index(i), count=_PW * 32)
            mbarrier.init(empty.index(i), count=1)
        if PSMEM:  # P through shared memory: 16 KB more (114,876 B per CTA; two still fit an SM's 228 KB)
            P_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_BM, _BN], dtype)
            p_smem = gl.allocate_shared_memory(dtype, [_BM, _BN], P_SMEM)
            gl.warp_specialize([
                (_ir_consumer_ps, (q_desc, o_desc, Offsets, Order, Start, q_smem, kv_smem, p_smem, q_bar, full,
                                   empty, qk_scale, H, QB)),
                (_ir_producer, (K, V, Offsets, Indices, Order, Start, kv_smem, full, empty, stride_kb, stride_kh,
                                stride_kn, stride_vb, stride_vh, stride_vn, H, QB, _PW, 1, 0)),
            ], [_PW], [PRODUCER_REGS])
        else:
            gl.warp_specialize([
                (_ir_consumer, (q_desc, o_desc, Offsets, Order, Start, q_smem, kv_smem, q_bar, full, empty,
                                qk_scale, H, QB, 1, 0)),
                (_ir_producer, (K, V, Offsets, Indices, Order, Start, kv_smem, full, empty, stride_kb, stride_kh,
                                stride_kn, stride_vb, stride_vh, stride_vn, H, QB, _PW, 1, 0)),
            ], [_PW], [PRODUCER_REGS])
        mbarrier.invalidate(q_bar.index(0))
        for i in gl.static_range(_ST):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


    _SYNC_L: gl.constexpr = gl.BlockedLayout([1], [32], [_CW], [0])  # a 1-element tensor, held by every thread
    _ASM_FENCE: gl.constexpr = gl.constexpr("nanosleep.u32 20; mov.u32 $0, $1;")

    @gluon.jit
    def _lane_state(sync_smem, idx: gl.constexpr):
        """Entry ``idx`` of the lane state (0 / 1: turn counts of lanes 0 / 1; 2 / 3: their busy flags): one
        shared-memory word read by every thread (a warp's threads in one load, so a warp agrees)."""
        return gl.max(sync_smem.index(idx).load(_SYNC_L), 0)

    @gluon.jit
    def _turn(sync_smem, lane: gl.constexpr, seen):
        """Wait for this lane's next MMA turn (a scheduling hint, no data depends on it): until the other lane has
        issued a turn since this lane's last (its count > ``seen``) or is outside a row's tiles (its busy flag 0).
        Each warp polls on its own (a side-effecting nanosleep in the loop keeps the load in it); a warpgroup
        barrier then aligns the four warps before the wgmma.  Returns the count seen."""
        c = _lane_state(sync_smem, 1 - lane)
        b = _lane_state(sync_smem, 3 - lane)
        while (c <= seen) & (b > 0):
            c = gl.inline_asm_elementwise(_ASM_FENCE, "=r,r", [c], dtype=gl.int32, is_pure=False, pack=1)
            c = gl.maximum(c, _lane_state(sync_smem, 1 - lane))
            b = _lane_state(sync_smem, 3 - lane)
        gl.thread_barrier()
        return c

    @gluon.jit
    def _mark(sync_smem, idx: gl.constexpr, value):
        """Entry ``idx`` of the lane state := ``value``."""
        sync_smem.index(idx).store(gl.full([1], value, gl.int32, _SYNC_L))

    @gluon.jit
    def _ir_tile_o(q_s, kv_smem, full, empty, st, it, acc, m_i, l_i, zero_s, qk_scale, n_valid, sync_smem, mine,
                   seen, lane: gl.constexpr, MASKED: gl.constexpr, S_LAYOUT: gl.constexpr, O_LAYOUT: gl.constexpr,
                   P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """:func:`_ir_tile` with the lane turns (:func:`_turn`) before the QK and the PV issue (the stage is always
        released: the row's last tile is not done here)."""
        mbarrier.wait(full.index(st), (it // _ST) & 1)
        seen = _turn(sync_smem, lane, seen)
        s = warpgroup_mma(q_s, kv_smem.index(2 * st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        mine += 1
        _mark(sync_smem, lane, mine)
        s = warpgroup_mma_wait(0, deps=(s, ))
        p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, n_valid, MASKED, S_LAYOUT, P_LAYOUT, _BN, 0, dtype)
        acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
        p_op = gl.convert_layout(p.to(dtype), P_LAYOUT)
        seen = _turn(sync_smem, lane, seen)
        acc = warpgroup_mma(p_op, kv_smem.index(2 * st + 1), acc, is_async=True)
        mine += 1
        _mark(sync_smem, lane, mine)
        acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
        gl.thread_barrier()  # the warpgroup is done with the stage
        mbarrier.arrive(empty.index(st), count=1)
        return acc, m_i, l_i, mine, seen

    @gluon.jit
    def _ir_consumer_o(q_desc, o_desc, Offsets, Order, Start, q_smem, kv_smem, q_bar, full, empty, sync_smem,
                       qk_scale, H, QB, lane: gl.constexpr):
        """:func:`_ir_consumer` of lane ``lane`` of :func:`_fg_gluon_irow2` with ``ORDER``: the two lanes take
        turns issuing their wgmmas (QK and PV each a turn; :func:`_turn`), so that one's softmax and row code run
        under the other's MMA (FlashAttention-3's inter-warpgroup ping-pong, Shah et al., arXiv 2407.08608,
        sec. 3.1, as a soft turn: a lane outside a row's tiles, in its row code or finished, holds nobody)."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _BN, 16])
        O_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _D, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_LAYOUT, k_width=2)
        dtype: gl.constexpr = kv_smem.dtype
        q_s = q_smem.reshape([_BM, _D])
        pos, end, step, row, lo, hi = _ir_first(q_desc, Offsets, Order, Start, q_smem, q_bar, H, QB, 2, lane)
        it = 0
        phase = 0
        mine = 0
        seen = lane - 1  # lane 0 takes the first turn
        while pos < end:
            cnt, n_t, pos_n, row_n, has_next, lo_n, hi_n = _ir_next(Offsets, Order, lo, hi, pos, step, end)
            bh = row // QB
            m_i, l_i, acc, zero_s = _ir_row_start(q_bar, empty, it, phase, S_LAYOUT, O_LAYOUT)
            _mark(sync_smem, 2 + lane, 1)  # in a row's tiles
            for _t in range(0, n_t - 1):  # full tiles
                acc, m_i, l_i, mine, seen = _ir_tile_o(q_s, kv_smem, full, empty, it % _ST, it, acc, m_i, l_i, zero_s,
                                                       qk_scale, _BN, sync_smem, mine, seen, lane, False, S_LAYOUT,
                                                       O_LAYOUT, P_LAYOUT, dtype)
                it += 1
            st = it % _ST
            mbarrier.wait(full.index(st), (it // _ST) & 1)
            seen = _turn(sync_smem, lane, seen)
            s = warpgroup_mma(q_s, kv_smem.index(2 * st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            mine += 1
            _mark(sync_smem, lane, mine)
            s = warpgroup_mma_wait(0, deps=(s, ))
            gl.thread_barrier()
            bh_n = row_n // QB
            mbarrier.expect(q_bar.index(0), q_desc.block_type.nbytes, pred=has_next)
            tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _BM, 0], q_bar.index(0),
                                            q_smem, pred=has_next)
            p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, cnt - (n_t - 1) * _BN, True, S_LAYOUT, P_LAYOUT,
                                            _BN, 0, dtype)
            acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, O_LAYOUT))[:, None]
            p_op = gl.convert_layout(p.to(dtype), P_LAYOUT)
            seen = _turn(sync_smem, lane, seen)
            acc = warpgroup_mma(p_op, kv_smem.index(2 * st + 1), acc, is_async=True)
            mine += 1
            _mark(sync_smem, lane, mine)
            _mark(sync_smem, 2 + lane, 0)  # row code from here: the other lane need not wait
            acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
            _ir_store_o(o_desc, acc, l_i, cnt, kv_smem, st, bh, row, H, QB, O_LAYOUT, dtype)
            it += 1
            lo = lo_n
            hi = hi_n
            row = row_n
            pos = pos_n
            phase ^= 1
        tma.store_wait(0)

    @gluon.jit
    def _fg_gluon_irow2(q_desc, o_desc, K, V, Offsets, Indices, Order, Start, qk_scale,
                        stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB,
                        PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr,
                        ORDER: gl.constexpr = False):
        """Both row lanes in one CTA (prepared after session 15's call; compiled offline only, never launched):
        consumer lanes 0 (default partition) and 1, each with its own Q buffer, 2-stage ring and barriers (separate
        allocations: Triton 3.6 asserts on a reinterpret of a sliced buffer), fed by one 2-warp producer partition
        each; lane l runs the plan's row list 2 · program id + l.  The same 192 KB and registers (168 at launch, 3
        warpgroups: 232 + 232 + 40) as two irow CTAs, so that a next step can order the two lanes' wgmma issue
        with named barriers (FlashAttention-3's ping-pong), which needs one CTA."""
        gl.static_assert(num_warps == _CW)
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_BN, _D], dtype)
        q0 = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
        q1 = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
        kv0 = gl.allocate_shared_memory(dtype, [2 * _ST, _BN, _D], KV_SMEM)
        kv1 = gl.allocate_shared_memory(dtype, [2 * _ST, _BN, _D], KV_SMEM)
        qb0 = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
        qb1 = gl.allocate_shared_memory(gl.int64, [1, 1], mbarrier.MBarrierLayout())
        f0 = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        f1 = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        e0 = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        e1 = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        mbarrier.init(qb0.index(0), count=1)
        mbarrier.init(qb1.index(0), count=1)
        for i in gl.static_range(_ST):
            mbarrier.init(f0.index(i), count=2 * 32)
            mbarrier.init(f1.index(i), count=2 * 32)
            mbarrier.init(e0.index(i), count=1)
            mbarrier.init(e1.index(i), count=1)
        if ORDER:  # the lane turns' state (:func:`_turn`), zeroed here, before the partitions start
            SYNC_SMEM: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
            sync_smem = gl.allocate_shared_memory(gl.int32, [4, 1], SYNC_SMEM)
            for i in gl.static_range(4):
                _mark(sync_smem, i, 0)
            gl.thread_barrier()
            gl.warp_specialize([
                (_ir_consumer_o, (q_desc, o_desc, Offsets, Order, Start, q0, kv0, qb0, f0, e0, sync_smem, qk_scale,
                                  H, QB, 0)),
                (_ir_consumer_o, (q_desc, o_desc, Offsets, Order, Start, q1, kv1, qb1, f1, e1, sync_smem, qk_scale,
                                  H, QB, 1)),
                (_ir_producer, (K, V, Offsets, Indices, Order, Start, kv0, f0, e0, stride_kb, stride_kh, stride_kn,
                                stride_vb, stride_vh, stride_vn, H, QB, 2, 2, 0)),
                (_ir_producer, (K, V, Offsets, Indices, Order, Start, kv1, f1, e1, stride_kb, stride_kh, stride_kn,
                                stride_vb, stride_vh, stride_vn, H, QB, 2, 2, 1)),
            ], [_CW, 2, 2], [CONSUMER_REGS, PRODUCER_REGS, PRODUCER_REGS])
        else:
            gl.warp_specialize([
                (_ir_consumer, (q_desc, o_desc, Offsets, Order, Start, q0, kv0, qb0, f0, e0, qk_scale, H, QB, 2, 0)),
                (_ir_consumer, (q_desc, o_desc, Offsets, Order, Start, q1, kv1, qb1, f1, e1, qk_scale, H, QB, 2, 1)),
                (_ir_producer, (K, V, Offsets, Indices, Order, Start, kv0, f0, e0, stride_kb, stride_kh, stride_kn,
                                stride_vb, stride_vh, stride_vn, H, QB, 2, 2, 0)),
                (_ir_producer, (K, V, Offsets, Indices, Order, Start, kv1, f1, e1, stride_kb, stride_kh, stride_kn,
                                stride_vb, stride_vh, stride_vn, H, QB, 2, 2, 1)),
            ], [_CW, 2, 2], [CONSUMER_REGS, PRODUCER_REGS, PRODUCER_REGS])
        mbarrier.invalidate(qb0.index(0))
        mbarrier.invalidate(qb1.index(0))
        for i in gl.static_range(_ST):
            mbarrier.invalidate(f0.index(i))
            mbarrier.invalidate(f1.index(i))
            mbarrier.invalidate(e0.index(i))
            mbarrier.invalidate(e1.index(i))


# ------------------------------------------------------------------------------------------------ host side
def _options(producer_regs: int | None = None, psmem: bool = False) -> dict[str, Any]:
    """The kernel's constexprs (``PSMEM`` only when on: the measured binary's set is unchanged)."""
    pr = PRODUCER_REGS if producer_regs is None else producer_regs
    if isinstance(pr, bool) or not isinstance(pr, int) or pr % 8 or not 24 <= pr <= 128:
        _fail(f"producer_regs={producer_regs!r} must be a multiple of 8 in [24, 128]")
    if not isinstance(psmem, bool):
        _fail(f"psmem={psmem!r} must be a bool")
    return dict(PRODUCER_REGS=pr, num_warps=4, **({"PSMEM": True} if psmem else {}))


def _compile(fn: Any, const: dict[str, Any], dtype: str, maxnreg: int | None) -> Any:
    """Gluon kernel ``fn`` compiled for sm_90 without a GPU: ``const`` its constexprs (defaults filled in), the
    other arguments as the launch passes them (``dtype`` K / V pointers, Q / O descriptors with [1, 1, 128, D]
    boxes in the 128-byte swizzle, fp32 qk_scale, i32 for the rest, 16-byte divisibility on pointers and
    strides), options num_warps 4 and ``maxnreg``."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from . import gluon_fg as g

    if dtype not in ("bf16", "fp16"):
        _fail(f"dtype={dtype!r} must be 'bf16' or 'fp16'")
    names = list(fn.arg_names)
    const = {**{p.name: p.default for p in fn.params if p.is_constexpr and p.has_default}, **const}
    lay = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
           "fp4_padded=False, cga_layout=[])")
    ptr = {"K": f"*{dtype}", "V": f"*{dtype}", "Offsets": "*i64", "Indices": "*i32", "Order": "*i32",
           "Start": "*i32"}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a in ("q_desc", "o_desc"):
            sig[a] = f"tensordesc<{dtype}[1, 1, {g.BLOCK_M}, {g.HEAD_DIM}],{lay}>"
        elif a in ptr:
            sig[a], attrs[(i,)] = ptr[a], [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = GluonASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    opts: dict[str, Any] = {"num_warps": 4}
    if maxnreg is not None:
        opts["maxnreg"] = maxnreg
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)


def compile_irow_sm90(dtype: str = "bf16", producer_regs: int | None = None, psmem: bool = False) -> Any:
    """:func:`_fg_gluon_irow` compiled for sm_90 without a GPU (Triton 3.6 with Gluon on the path), with the
    signature and options (``maxnreg`` :data:`LAUNCH_REGS`) :func:`fg_attention_gluon_irow` launches with."""
    return _compile(_fg_gluon_irow, _options(producer_regs, psmem), dtype, LAUNCH_REGS)


def compile_irow2_sm90(dtype: str = "bf16", producer_regs: int = 40, consumer_regs: int = 232,
                       order: bool = False) -> Any:
    """:func:`_fg_gluon_irow2` (both lanes in one CTA; ``order``: with the lane turns) compiled for sm_90 without
    a GPU, with the signature :func:`fg_attention_gluon_irow2` launches with."""
    return _compile(_fg_gluon_irow2, dict(PRODUCER_REGS=producer_regs, CONSUMER_REGS=consumer_regs, num_warps=4,
                                          **({"ORDER": True} if order else {})), dtype, None)


def irow_programs(sms: int) -> int:
    """The grid this kernel plans for on ``sms`` SMs: :data:`CTAS_PER_SM` CTAs per SM."""
    return CTAS_PER_SM * sms


#: the compiled kernel of the last launch (``kernel``: Triton's CompiledKernel; the probe's occupancy query)
LAST_LAUNCH: dict[str, Any] = {}

#: list plans of this kernel, memoised per (offsets tensor identity, programs) and kept alive with it (a captured
#: CUDA graph keeps reading the plan's tensors)
_PLANS: dict[tuple[int, int], tuple[Any, Any]] = {}


def irow_plan(index: Any, programs: int) -> Any:
    """The list plan (:func:`fgattn.gluon_fg_list.plan_ws2_list`) of ``index`` for ``programs`` CTAs, memoised;
    build it outside CUDA-graph capture (it reads the row counts on the host)."""
    from .gluon_fg_list import plan_ws2_list

    key = (id(index.offsets), int(programs))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is index.offsets:
        return hit[1]
    plan = plan_ws2_list(index, programs=programs)
    _PLANS[key] = (index.offsets, plan)
    return plan


#: irow2 plans: (offsets identity, CTAs) -> (offsets, plan, Start padded to 2 x CTAs + 1 entries)
_PLANS2: dict[tuple[int, int], tuple[Any, Any, Any]] = {}


def irow2_plan(index: Any, ctas: int) -> tuple[Any, Any]:
    """The list plan of ``index`` for 2 x ``ctas`` lanes (two per CTA of :func:`_fg_gluon_irow2`: lane l of CTA p
    runs list 2p + l) and its ``start`` padded with empty lists to 2 · CTAs + 1 entries (a plan has at most one
    list per row); memoised, build it outside CUDA-graph capture.  -> (plan, padded start)."""
    import torch

    from .gluon_fg_list import plan_ws2_list

    key = (id(index.offsets), int(ctas))
    hit = _PLANS2.get(key)
    if hit is not None and hit[0] is index.offsets:
        return hit[1], hit[2]
    plan = plan_ws2_list(index, programs=2 * ctas)
    ctas = -(-plan.programs // 2)
    pad = plan.start[-1:].repeat(2 * ctas - plan.programs)
    start = torch.cat([plan.start, pad]) if pad.numel() else plan.start
    _PLANS2[key] = (index.offsets, plan, start)
    return plan, start


def fg_attention_gluon_irow2(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                             sm_scale: float | None = None, out: Any = None, ctas: int | None = None,
                             order: bool = True) -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by :func:`_fg_gluon_irow2`: both row lanes of
    an SM in one CTA (``ctas`` CTAs, default the SM count), ``order``: the lanes take turns issuing their wgmmas
    (:func:`_turn`).  The plan (:func:`irow2_plan`) is built and memoised on the first call (host work: call once
    before CUDA-graph capture).  Same output as the packaged entry; ``out`` 16-byte aligned."""
    import torch

    from . import gluon_fg as g
    from .gluon_fg_list import prepare_list_call

    if not isinstance(order, bool):
        _fail(f"order={order!r} must be a bool")
    if ctas is None and isinstance(q, torch.Tensor) and q.device.type == "cuda":
        ctas = torch.cuda.get_device_properties(q.device).multi_processor_count
    plan, start = (irow2_plan(index, ctas) if ctas is not None and _GLUON_ERR is None and q.device.type == "cuda"
                   else (None, None))
    p, plan, out, _, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                               plan=plan, programs=None if ctas is None else 2 * ctas, fail=_fail)
    why = g.o_desc_ok(out, layout)
    if why is not None:
        _fail(why)
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    box = [1, 1, g.BLOCK_M, g.HEAD_DIM]
    lay = gl.NVMMASharedLayout.get_default_for(box, gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16)
    shape = [p.batch, p.heads, p.n_q, g.HEAD_DIM]
    q_desc = TensorDescriptor(q, shape, [*g._strides(q, layout), 1], box, lay)
    o_desc = TensorDescriptor(out, shape, [*g._strides(out, layout), 1], box, lay)
    st = g._strides
    LAST_LAUNCH["kernel2"] = _fg_gluon_irow2[((start.numel() - 1) // 2,)](
        q_desc, o_desc, k, v, index.offsets, index.indices, plan.rows, start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), p.heads, p.n_qblocks, PRODUCER_REGS=40, CONSUMER_REGS=232, num_warps=4,
        **({"ORDER": True} if order else {}))
    return out


def fg_attention_gluon_irow(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                            sm_scale: float | None = None, out: Any = None, plan: Any = None,
                            programs: int | None = None, producer_regs: int | None = None, psmem: bool = False) -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by the independent-row CTA (module docstring)
    over a list plan of ``programs`` CTAs (default 2 x the SM count; ``plan`` None: :func:`irow_plan`, which reads
    the row counts on the host the first time).  Same output as the packaged entry.  ``out`` must be 16-byte
    aligned (the O TMA store; one ValueError line otherwise).  ``psmem``: the intra-warpgroup-overlap form
    (:func:`_ir_consumer_ps`; prepared in session 15 after the call, not measured)."""
    const = _options(producer_regs, psmem)  # validates before any work
    import torch

    from . import gluon_fg as g
    from .gluon_fg_list import prepare_list_call

    if programs is None and isinstance(q, torch.Tensor) and q.device.type == "cuda":
        programs = irow_programs(torch.cuda.get_device_properties(q.device).multi_processor_count)
    if plan is None and programs is not None and _GLUON_ERR is None and q.device.type == "cuda":
        plan = irow_plan(index, programs)
    p, plan, out, _, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                               plan=plan, programs=programs, fail=_fail)
    why = g.o_desc_ok(out, layout)
    if why is not None:
        _fail(why)
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    box = [1, 1, g.BLOCK_M, g.HEAD_DIM]
    lay = gl.NVMMASharedLayout.get_default_for(box, gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16)
    shape = [p.batch, p.heads, p.n_q, g.HEAD_DIM]
    q_desc = TensorDescriptor(q, shape, [*g._strides(q, layout), 1], box, lay)
    o_desc = TensorDescriptor(out, shape, [*g._strides(out, layout), 1], box, lay)
    st = g._strides
    LAST_LAUNCH["kernel"] = _fg_gluon_irow[(plan.programs,)](
        q_desc, o_desc, k, v, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), p.heads, p.n_qblocks, maxnreg=LAUNCH_REGS, **const)
    return out
