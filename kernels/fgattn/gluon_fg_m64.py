"""Research kernel (issue 12, helper G, session 22): the fg D128 M64 gran-1 kernel written in Gluon.

Not part of fgattn's dispatch or launch table: reachable only as ``fgattn.gluon_fg_m64.fg_attention_gluon_m64``.
Same inputs and outputs as :func:`fgattn.fg_attention` with the fg D128 M64 gran-1 entry (CSR index of
:mod:`fgattn.index` built with ``block_m=64``, launch order ``FgIndex.order``, query blocks with no kept key give
zeros, any N, bf16 / fp16, ``bhnd`` / ``bnhd``).

Why a separate form (kernels/NOTES-gluon-m64.md): at M = 64 every query block keeps its own key list, so the
M128 Gluon form's trick (two consumer warpgroups sharing one gathered K/V tile) is not available.  The tl entry
runs one warpgroup per CTA (wgmma M64) that gathers, multiplies and exponentiates in turn, two CTAs per SM.
Here a CTA holds ``LANES`` independent *lanes*; a lane is one consumer warpgroup (64 query rows: Q by TMA, per
64-key tile S = Q·Kᵀ, online softmax, O += P·V, all wgmma M64) fed by its own producer partition (index entries
one tile ahead, K/V rows gathered by cp.async into the lane's own ``STAGES``-deep ring of NVMMA-swizzled
64 × 128 tiles, completion by ``cp.async.mbarrier.arrive.noinc`` on the stage's ``full`` barrier, the stage
released by the consumer on ``empty``).  Lanes share nothing but the SM, so one lane's softmax overlaps the other
lane's wgmma and gathers without any coupling, and a long row on one lane never stalls the other.

* ``lanes=2`` (default): one CTA per SM (2 × 3 stages × 32 KB + 2 × 16 KB Q = 224 KB of shared memory), 4 + 4
  consumer warps and two producers (``producer_warps`` 2 or 4 each); registers by ``setmaxnreg``.
* ``lanes=1``: the same lane alone in a CTA of 112 KB, two CTAs per SM (the hardware co-schedules them as the tl
  entry's), launch registers capped for 2 CTAs.
* Persistent: each lane runs its own list of rows (``LaneRows`` / ``LaneStart``, a :class:`LanePlan` built once
  per index by :func:`plan_lanes`): ``walk`` (launch positions p·LANES + l, + G·LANES, ... of ``FgIndex.order``),
  ``lpt`` (greedy by cost) or ``list`` (greedy in launch order: measured the only one that keeps the tl entry's L2
  hit rate, kernels/NOTES-gluon-m64.md).
* ``qreg``: Q loaded once per row into registers (the QK wgmma's A operand); its buffer then takes the next row's
  Q.  (Formally the generic-proxy Q load and the TMA overwrite after the CTA-partition barrier want a
  ``fence.proxy.async`` between them; the loads have long completed by the time the TMA data lands, and 900 GPU
  checks passed, but the fence is not there.)
* Prepared, NOT run on a GPU: union-gathered pairs (:func:`union_pairs`, :func:`fg_attention_gluon_pair`): one
  producer gathers the union of two adjacent blocks' keys, both consumers read it and mask per block.
* ``pipeline=1``: FlashAttention-3's intra-warpgroup overlap (Shah et al., arXiv 2407.08608, sec. 3.2) as the M128
  Gluon form's pipeline 1: QK(t) and PV(t−1) in flight together, tile t's softmax while PV(t−1) runs.

API used (Triton 3.6 Gluon, learnt from the public tutorials python/tutorials/gluon/ of
https://github.com/triton-lang/triton): ``allocate_shared_memory``, ``nvidia.ampere.async_copy``,
``warp_specialize``, ``nvidia.hopper.tma`` / ``mbarrier``, ``warpgroup_mma``.  Own code; the FlashAttention-2
online softmax in base 2 as ``fgattn.attention``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["LanePlan", "M64Plan", "UnionPairs", "check_m64_knobs", "compile_m64_sm90", "fg_attention_gluon_m64",
           "gluon_available", "lane_list", "lane_lpt", "lane_walk", "plan_gluon_m64", "plan_lanes", "union_pairs",
           "union_stats"]

HEAD_DIM = 128
BLOCK_M = 64
GRAN_N = 1
CONSUMER_WARPS = 4
#: knob -> allowed values (first = default)
KNOB_VALUES: dict[str, tuple] = {
    "lanes": (2, 1),
    "block_n": (64,),
    "stages": (3, 2, 4),
    "producer_warps": (4, 2),
    "pipeline": (0, 1),
    "fence": (False, True),
    "qreg": (False, True),
}
#: shared memory per SM the kernel may use (H100 / H200: 228 KB, 1 KB reserved per CTA)
SMEM_PER_SM = 233472
SMEM_RESERVED_PER_CTA = 1024

try:  # Gluon (Triton >= 3.5); the kernels are defined only where it imports (the CPU tests need none of it)
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

    _GLUON_ERR: str | None = None
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


def gluon_available() -> str | None:
    """None if this Triton has the Gluon Hopper API the kernel uses, else why not (one line)."""
    return _GLUON_ERR


# ------------------------------------------------------------------------------------------------ kernels
if _GLUON_ERR is None:
    _D: gl.constexpr = gl.constexpr(HEAD_DIM)
    _BM: gl.constexpr = gl.constexpr(BLOCK_M)
    _CW: gl.constexpr = gl.constexpr(CONSUMER_WARPS)

    @gluon.jit
    def _row_at(LaneRows, j, j_end):
        """Row number at entry ``j`` of a lane's list ending at ``j_end`` (row 0 past the end, so dependent loads
        stay in bounds; an empty list reads entry 0, which exists whenever there are rows)."""
        return gl.where(j < j_end, gl.load(LaneRows + gl.maximum(gl.minimum(j, j_end - 1), 0)), 0)

    @gluon.jit
    def _m64_producer(lane, K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty, stride_kb,
                      stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, LANES: gl.constexpr,
                      STAGES: gl.constexpr, BLOCK_N: gl.constexpr, PW: gl.constexpr):
        """Producer of lane ``lane``: for every row of the lane (its list LaneRows[LaneStart[i] : LaneStart[i + 1]],
        i = p·LANES + lane) and every BLOCK_N-key tile, the index entries (one tile ahead), then, once the consumer has released the
        stage, the K/V gathers by cp.async (masked per key: -1 past the row's end reads nothing, zero rows),
        completing on the stage's ``full`` barrier (one arrival per thread, noinc)."""
        GATHER: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [PW, 1], [1, 0])
        offs_e = gl.arange(0, BLOCK_N, gl.SliceLayout(1, GATHER))
        offs_d = gl.arange(0, _D, gl.SliceLayout(0, GATHER))
        lid = gl.program_id(0) * LANES + lane
        j = gl.load(LaneStart + lid)
        j_end = gl.load(LaneStart + lid + 1)
        base = lane * STAGES
        row = _row_at(LaneRows, j, j_end)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        row_n = _row_at(LaneRows, j + 1, j_end)
        lo_n = gl.load(Offsets + row_n).to(gl.int32)
        hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        it = 0
        while j < j_end:
            bh = row // QB
            b = (bh // H).to(gl.int64)
            h = (bh % H).to(gl.int64)
            k_base = K + b * stride_kb + h * stride_kh
            v_base = V + b * stride_vb + h * stride_vh
            n_t = gl.maximum(gl.cdiv(hi - lo, BLOCK_N), 1)
            e = lo + offs_e
            nxt = gl.load(Indices + e, mask=e < hi, other=-1)
            for t in range(0, n_t):
                cur = nxt
                e = lo + (t + 1) * BLOCK_N + offs_e
                nxt = gl.load(Indices + e, mask=e < hi, other=-1)
                st = it % STAGES
                mbarrier.wait(empty.index(base + st), ((it // STAGES) & 1) ^ 1)
                ok = (cur >= 0)[:, None]
                r = gl.maximum(cur, 0)[:, None]
                cp.async_copy_global_to_shared(k_smem.index(base + st), k_base + r * stride_kn + offs_d[None, :],
                                               mask=ok)
                cp.async_copy_global_to_shared(v_smem.index(base + st), v_base + r * stride_vn + offs_d[None, :],
                                               mask=ok)
                cp.mbarrier_arrive(full.index(base + st), increment_count=False)
                it += 1
            j = j + 1
            row = row_n
            lo = lo_n
            hi = hi_n
            row_n = _row_at(LaneRows, j + 1, j_end)
            lo_n = gl.load(Offsets + row_n).to(gl.int32)
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)

    @gluon.jit
    def _softmax(s, m_i, l_i, qk_scale, n_valid, MASKED: gl.constexpr, S_L: gl.constexpr, BLOCK_N: gl.constexpr):
        """Online softmax of one score tile (base 2, scale folded; ``MASKED``: columns >= n_valid are not kept
        keys): P (fp32, score layout), alpha, the new running max and sum."""
        if MASKED:
            cols = gl.arange(0, BLOCK_N, gl.SliceLayout(0, S_L))
            s = gl.where((cols < n_valid)[None, :], s, float("-inf"))
        m_new = gl.maximum(m_i, gl.max(s, 1) * qk_scale)
        p = gl.exp2(s * qk_scale - m_new[:, None])
        alpha = gl.exp2(m_i - m_new)
        l_i = l_i * alpha + gl.sum(p, 1)
        return p, alpha, m_new, l_i

    @gluon.jit
    def _rescale(acc, alpha, O_L: gl.constexpr):
        """O · alpha (alpha from the score layout's rows to the accumulator's: same rows per thread)."""
        return acc * gl.convert_layout(alpha, gl.SliceLayout(1, O_L))[:, None]

    @gluon.jit
    def _q_next(q_desc, my_bar, my_q, row_n, QB, H, pred):
        """The lane's Q tile of its next row by TMA, once every warp's last QK of this row has read Q."""
        gl.thread_barrier()
        bh_n = row_n // QB
        mbarrier.expect(my_bar, q_desc.block_type.nbytes, pred=pred)
        tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _BM, 0], my_bar, my_q,
                                        pred=pred)

    @gluon.jit
    def _release(empty, idx):
        """This warpgroup is done with stage ``idx`` (every warp's wgmma reading it has completed)."""
        gl.thread_barrier()
        mbarrier.arrive(empty.index(idx), count=1)

    @gluon.jit
    def _sync_tile(q_s, k_smem, v_smem, full, empty, st, ph, acc, m_i, l_i, zero_s, qk_scale, n_valid, q_desc, my_bar,
                   my_q, row_n, QB, H, has_next, LAST: gl.constexpr, FENCE: gl.constexpr, S_L: gl.constexpr,
                   O_L: gl.constexpr, P_L: gl.constexpr, BLOCK_N: gl.constexpr, QREG: gl.constexpr):
        """One tile in order (pipeline 0): wait for stage ``st``, S = Q·Kᵀ (``q_s``: Q in shared memory, or with
        ``QREG`` in registers), softmax, O = α·O + P·V, release.  ``LAST``: the row's last tile (columns >= n_valid
        masked; after its QK the next row's Q is loaded unless QREG loaded it at the row start)."""
        mbarrier.wait(full.index(st), ph)
        if FENCE:  # generic-proxy (cp.async) writes before the async-proxy (wgmma) reads
            fence_async_shared()
        s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(0, deps=(s, ))
        if LAST and not QREG:
            _q_next(q_desc, my_bar, my_q, row_n, QB, H, has_next)
        p, alpha, m_i, l_i = _softmax(s, m_i, l_i, qk_scale, n_valid, LAST, S_L, BLOCK_N)
        acc = _rescale(acc, alpha, O_L)
        p_op = gl.convert_layout(p.to(k_smem.dtype), P_L)
        acc = warpgroup_mma(p_op, v_smem.index(st), acc, is_async=True)
        acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
        _release(empty, st)
        return acc, m_i, l_i

    @gluon.jit
    def _pipe_tile(q_s, k_smem, v_smem, full, empty, st, ph, prev, p_op, alpha, acc, m_i, l_i, zero_s, qk_scale,
                   n_valid, q_desc, my_bar, my_q, row_n, QB, H, has_next, LAST: gl.constexpr, FENCE: gl.constexpr,
                   S_L: gl.constexpr, O_L: gl.constexpr, P_L: gl.constexpr, BLOCK_N: gl.constexpr,
                   QREG: gl.constexpr):
        """One tile t >= 1 of pipeline 1: QK(t) and PV(t-1) (P ``p_op`` of stage ``prev``, O first rescaled by
        tile t-1's alpha) issued together, tile t's softmax once QK(t) is done, then PV(t-1) waited and stage
        ``prev`` released.  Returns tile t's P operand, alpha, O, running max and sum."""
        mbarrier.wait(full.index(st), ph)
        if FENCE:
            fence_async_shared()
        s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        acc = _rescale(acc, alpha, O_L)
        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
        s = warpgroup_mma_wait(1, deps=(s, ))
        if LAST and not QREG:
            _q_next(q_desc, my_bar, my_q, row_n, QB, H, has_next)
        p, alpha, m_i, l_i = _softmax(s, m_i, l_i, qk_scale, n_valid, LAST, S_L, BLOCK_N)
        acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
        p_op = gl.convert_layout(p.to(k_smem.dtype), P_L)
        _release(empty, prev)
        return p_op, alpha, acc, m_i, l_i

    @gluon.jit
    def _m64_consumer(lane, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full, empty,
                      qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, LANES: gl.constexpr,
                      STAGES: gl.constexpr, BLOCK_N: gl.constexpr, PIPE: gl.constexpr, FENCE: gl.constexpr,
                      QREG: gl.constexpr):
        """Consumer warpgroup of lane ``lane``: per row (64 queries), Q by TMA (the next row's issued once this
        row's last QK has read Q), then per tile: wait for the stage, S = Q·Kᵀ, online softmax, O += P·V,
        release the stage; O / l stored from registers (zeros for a row with no kept key)."""
        S_L: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                      instr_shape=[16, BLOCK_N, 16])
        O_L: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                      instr_shape=[16, _D, 16])
        P_L: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_L, k_width=2)
        QA_L: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_L, k_width=2)
        my_q = q_smem.index(lane)
        my_bar = q_bar.index(lane)
        q_s = my_q.reshape([_BM, _D])
        base = lane * STAGES
        lid = gl.program_id(0) * LANES + lane
        j = gl.load(LaneStart + lid)
        j_end = gl.load(LaneStart + lid + 1)
        row = _row_at(LaneRows, j, j_end)
        _q_next(q_desc, my_bar, my_q, row, QB, H, j < j_end)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        zero_s = gl.zeros([_BM, BLOCK_N], gl.float32, S_L)
        it = 0
        phase = 0
        while j < j_end:
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, BLOCK_N), 1)
            row_n = _row_at(LaneRows, j + 1, j_end)
            has_next = j + 1 < j_end
            m_i = gl.full([_BM], float("-inf"), gl.float32, gl.SliceLayout(1, S_L))
            l_i = gl.zeros([_BM], gl.float32, gl.SliceLayout(1, S_L))
            acc = gl.zeros([_BM, _D], gl.float32, O_L)
            mbarrier.wait(my_bar, phase)
            if QREG:  # Q into registers once per row; its buffer then takes the next row's Q right away
                q_op = q_s.load(QA_L)
                _q_next(q_desc, my_bar, my_q, row_n, QB, H, has_next)
            else:
                q_op = q_s
            if PIPE:
                # tile 0: QK alone, its softmax masked to min(cnt, BLOCK_N) (a no-op unless it is the only tile)
                st = base + it % STAGES
                mbarrier.wait(full.index(st), (it // STAGES) & 1)
                if FENCE:
                    fence_async_shared()
                s = warpgroup_mma(q_op, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                s = warpgroup_mma_wait(0, deps=(s, ))
                if not QREG:
                    _q_next(q_desc, my_bar, my_q, row_n, QB, H, has_next & (n_t == 1))
                p, alpha, m_i, l_i = _softmax(s, m_i, l_i, qk_scale, gl.minimum(cnt, BLOCK_N), True, S_L, BLOCK_N)
                p_op = gl.convert_layout(p.to(k_smem.dtype), P_L)
                prev = st
                it += 1
                for _t in range(1, n_t - 1):  # full tiles
                    st = base + it % STAGES
                    p_op, alpha, acc, m_i, l_i = _pipe_tile(
                        q_op, k_smem, v_smem, full, empty, st, (it // STAGES) & 1, prev, p_op, alpha, acc, m_i, l_i,
                        zero_s, qk_scale, BLOCK_N, q_desc, my_bar, my_q, row_n, QB, H, has_next, False, FENCE, S_L,
                        O_L, P_L, BLOCK_N, QREG)
                    prev = st
                    it += 1
                if n_t > 1:  # the row's last (masked) tile
                    st = base + it % STAGES
                    p_op, alpha, acc, m_i, l_i = _pipe_tile(
                        q_op, k_smem, v_smem, full, empty, st, (it // STAGES) & 1, prev, p_op, alpha, acc, m_i, l_i,
                        zero_s, qk_scale, cnt - (n_t - 1) * BLOCK_N, q_desc, my_bar, my_q, row_n, QB, H, has_next,
                        True, FENCE, S_L, O_L, P_L, BLOCK_N, QREG)
                    prev = st
                    it += 1
                # the last tile's PV
                acc = _rescale(acc, alpha, O_L)
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
                _release(empty, prev)
            else:
                for _t in range(0, n_t - 1):  # full tiles
                    acc, m_i, l_i = _sync_tile(q_op, k_smem, v_smem, full, empty, base + it % STAGES,
                                               (it // STAGES) & 1, acc, m_i, l_i, zero_s, qk_scale, BLOCK_N, q_desc,
                                               my_bar, my_q, row_n, QB, H, has_next, False, FENCE, S_L, O_L, P_L,
                                               BLOCK_N, QREG)
                    it += 1
                acc, m_i, l_i = _sync_tile(q_op, k_smem, v_smem, full, empty, base + it % STAGES, (it // STAGES) & 1,
                                           acc, m_i, l_i, zero_s, qk_scale, cnt - (n_t - 1) * BLOCK_N, q_desc, my_bar,
                                           my_q, row_n, QB, H, has_next, True, FENCE, S_L, O_L, P_L, BLOCK_N, QREG)
                it += 1
            # O = acc / l; zeros for a row with no kept key; query rows past N_Q not stored
            l_o = gl.convert_layout(l_i, gl.SliceLayout(1, O_L))
            out = acc / gl.where(l_o == 0.0, 1.0, l_o)[:, None]
            out = gl.where(cnt == 0, 0.0, out)
            bh = row // QB
            offs_m = (row % QB) * _BM + gl.arange(0, _BM, gl.SliceLayout(1, O_L))
            offs_o = gl.arange(0, _D, gl.SliceLayout(0, O_L))
            ptrs = (Out + (bh // H).to(gl.int64) * stride_ob + (bh % H).to(gl.int64) * stride_oh
                    + offs_m[:, None].to(gl.int64) * stride_on + offs_o[None, :])
            gl.store(ptrs, out.to(Out.dtype.element_ty), mask=(offs_m < N_Q)[:, None])
            lo = gl.load(Offsets + row_n).to(gl.int32)
            hi = gl.load(Offsets + row_n + 1).to(gl.int32)
            row = row_n
            j = j + 1
            phase ^= 1

    @gluon.jit
    def _fg_gluon_m64(q_desc, K, V, Out, Offsets, Indices, LaneRows, LaneStart, qk_scale,
                      stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                      stride_ob, stride_oh, stride_on, H, N_Q, QB,
                      HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                      LANES: gl.constexpr, PRODUCER_WARPS: gl.constexpr, PRODUCER_REGS: gl.constexpr,
                      CONSUMER_REGS: gl.constexpr, PIPE: gl.constexpr, FENCE: gl.constexpr, QREG: gl.constexpr,
                      num_warps: gl.constexpr):
        """LANES independent lanes per CTA (consumer warpgroup + producer each, own K/V ring and Q tile); the
        default partition is lane 0's consumer (``num_warps`` 4)."""
        gl.static_assert(HEAD_DIM == _D and BLOCK_M == _BM and num_warps == _CW)
        gl.static_assert(LANES == 1 or LANES == 2)
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, HEAD_DIM], dtype)
        q_smem = gl.allocate_shared_memory(dtype, [LANES] + q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [LANES * STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [LANES * STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [LANES, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [LANES * STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [LANES * STAGES, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(LANES):
            mbarrier.init(q_bar.index(i), count=1)
        for i in gl.static_range(LANES * STAGES):
            mbarrier.init(full.index(i), count=PRODUCER_WARPS * 32)
            mbarrier.init(empty.index(i), count=1)
        if LANES == 2:
            gl.warp_specialize([
                (_m64_consumer, (0, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full,
                                 empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, LANES, STAGES, BLOCK_N,
                                 PIPE, FENCE, QREG)),
                (_m64_consumer, (1, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full,
                                 empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, LANES, STAGES, BLOCK_N,
                                 PIPE, FENCE, QREG)),
                (_m64_producer, (0, K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty,
                                 stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, LANES, STAGES,
                                 BLOCK_N, PRODUCER_WARPS)),
                (_m64_producer, (1, K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty,
                                 stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, LANES, STAGES,
                                 BLOCK_N, PRODUCER_WARPS)),
            ], [_CW, PRODUCER_WARPS, PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS, PRODUCER_REGS])
        else:
            gl.warp_specialize([
                (_m64_consumer, (0, q_desc, Out, Offsets, LaneRows, LaneStart, q_smem, k_smem, v_smem, q_bar, full,
                                 empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, LANES, STAGES, BLOCK_N,
                                 PIPE, FENCE, QREG)),
                (_m64_producer, (0, K, V, Offsets, Indices, LaneRows, LaneStart, k_smem, v_smem, full, empty,
                                 stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, LANES, STAGES,
                                 BLOCK_N, PRODUCER_WARPS)),
            ], [PRODUCER_WARPS], [PRODUCER_REGS])
        for i in gl.static_range(LANES):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(LANES * STAGES):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


    # ---- union-gathered pairs (next-step design, kernels/NOTES-gluon-m64.md; compiled offline, NOT run on a GPU) --
    # A CTA runs pairs of adjacent M64 query blocks (2i, 2i+1) of a head: one producer gathers the pair's union key
    # list (UnionPairs) into 128-key tiles, both consumer warpgroups (one M64 block each: Q rows (2i + half)·64)
    # read every tile and mask the keys their block does not keep (Member bit ``half``) before the softmax.
    @gluon.jit
    def _member_softmax(s, keep, m_i, l_i, qk_scale):
        """Online softmax of one score tile over the kept columns only (``keep``: this block keeps the key); a row
        that has seen no kept key keeps m = -inf, P = 0, l = 0 (the guard replaces -inf by 0 in the exponents)."""
        s = gl.where(keep[None, :], s, float("-inf"))
        m_new = gl.maximum(m_i, gl.max(s, 1) * qk_scale)
        m_safe = gl.where(m_new == float("-inf"), 0.0, m_new)
        p = gl.exp2(s * qk_scale - m_safe[:, None])
        alpha = gl.exp2(m_i - m_safe)
        l_i = l_i * alpha + gl.sum(p, 1)
        return p, alpha, m_new, l_i

    @gluon.jit
    def _pair_softmax(s, shared, Member, e, hi, half, m_i, l_i, qk_scale, S_L: gl.constexpr, BLOCK_N: gl.constexpr):
        """Softmax of one union tile for block ``half``: a tile whose 128 keys both blocks keep (``shared``, the
        common case where the two windows overlap) takes the plain path; any other tile loads the membership
        bytes and masks the keys this block does not keep (and the columns past the union's end)."""
        if shared != 0:
            p, alpha, m_new, l_new = _softmax(s, m_i, l_i, qk_scale, BLOCK_N, False, S_L, BLOCK_N)
        else:
            keep = ((gl.load(Member + e, mask=e < hi, other=0).to(gl.int32) >> half) & 1) != 0
            p, alpha, m_new, l_new = _member_softmax(s, keep, m_i, l_i, qk_scale)
        return p, alpha, m_new, l_new

    @gluon.jit
    def _pair_consumer(half, q_desc, Out, UOffsets, Member, TileOffsets, TileShared, LaneRows, LaneStart, q_smem,
                       k_smem, v_smem, q_bar, full, empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QP, STAGES: gl.constexpr,
                       BLOCK_N: gl.constexpr, PIPE: gl.constexpr, QREG: gl.constexpr):
        """Consumer warpgroup ``half`` of a pair CTA: block 2i + half of every pair the CTA runs; Q in registers
        (its buffer reloaded with the next pair's block right after); per union tile: S = Q·Kᵀ, membership mask,
        softmax, O += P·V (PIPE 1: QK(t) and PV(t-1) in flight together), release (``empty`` counts both halves)."""
        S_L: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                      instr_shape=[16, BLOCK_N, 16])
        O_L: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                      instr_shape=[16, _D, 16])
        P_L: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=O_L, k_width=2)
        QA_L: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_L, k_width=2)
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        q_s = my_q.reshape([_BM, _D])
        cols = gl.arange(0, BLOCK_N, gl.SliceLayout(0, S_L))
        zero_s = gl.zeros([_BM, BLOCK_N], gl.float32, S_L)
        lid = gl.program_id(0)
        j = gl.load(LaneStart + lid)
        j_end = gl.load(LaneStart + lid + 1)
        pair = _row_at(LaneRows, j, j_end)
        QB2 = QP * 2  # blocks per head rounded up to pairs (a lone last block's partner lies past N_Q: zeros)
        _q_next(q_desc, my_bar, my_q, (pair // QP) * QB2 + (pair % QP) * 2 + half, QB2, H, j < j_end)
        lo = gl.load(UOffsets + pair).to(gl.int32)
        hi = gl.load(UOffsets + pair + 1).to(gl.int32)
        it = 0
        phase = 0
        while j < j_end:
            n_t = gl.maximum(gl.cdiv(hi - lo, BLOCK_N), 1)
            tb = gl.load(TileOffsets + pair).to(gl.int32)
            pair_n = _row_at(LaneRows, j + 1, j_end)
            m_i = gl.full([_BM], float("-inf"), gl.float32, gl.SliceLayout(1, S_L))
            l_i = gl.zeros([_BM], gl.float32, gl.SliceLayout(1, S_L))
            acc = gl.zeros([_BM, _D], gl.float32, O_L)
            mbarrier.wait(my_bar, phase)
            if QREG:  # Q in registers, the buffer refilled at once (Triton 3.6 / ptxas put P into Q's registers
                # inside the tile loop: wrong from the second 128-key tile on; session 11 GPU check, see NOTES)
                q_op = q_s.load(QA_L)
                _q_next(q_desc, my_bar, my_q, (pair_n // QP) * QB2 + (pair_n % QP) * 2 + half, QB2, H,
                        j + 1 < j_end)
            else:  # Q read by every QK from shared memory; the next pair's Q loaded after the last QK (as ws2)
                q_op = q_s
            if PIPE:
                st = it % STAGES
                mbarrier.wait(full.index(st), (it // STAGES) & 1)
                s = warpgroup_mma(q_op, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                shared = gl.load(TileShared + tb)
                s = warpgroup_mma_wait(0, deps=(s, ))
                p, alpha, m_i, l_i = _pair_softmax(s, shared, Member, lo + cols, hi, half, m_i, l_i, qk_scale, S_L,
                                                   BLOCK_N)
                p_op = gl.convert_layout(p.to(k_smem.dtype), P_L)
                prev = st
                it += 1
                for t in range(1, n_t):  # QK(t) and PV(t-1) in flight together
                    st = it % STAGES
                    mbarrier.wait(full.index(st), (it // STAGES) & 1)
                    s = warpgroup_mma(q_op, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                    acc = _rescale(acc, alpha, O_L)
                    acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                    shared = gl.load(TileShared + tb + t)
                    s = warpgroup_mma_wait(1, deps=(s, ))
                    p, alpha, m_i, l_i = _pair_softmax(s, shared, Member, lo + t * BLOCK_N + cols, hi, half, m_i,
                                                       l_i, qk_scale, S_L, BLOCK_N)
                    acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
                    p_op = gl.convert_layout(p.to(k_smem.dtype), P_L)
                    _release(empty, prev)
                    prev = st
                    it += 1
                acc = _rescale(acc, alpha, O_L)
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
                _release(empty, prev)
            else:
                for t in range(0, n_t):
                    st = it % STAGES
                    mbarrier.wait(full.index(st), (it // STAGES) & 1)
                    s = warpgroup_mma(q_op, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                    shared = gl.load(TileShared + tb + t)
                    s = warpgroup_mma_wait(0, deps=(s, ))
                    p, alpha, m_i, l_i = _pair_softmax(s, shared, Member, lo + t * BLOCK_N + cols, hi, half, m_i,
                                                       l_i, qk_scale, S_L, BLOCK_N)
                    acc = _rescale(acc, alpha, O_L)
                    p_op = gl.convert_layout(p.to(k_smem.dtype), P_L)
                    acc = warpgroup_mma(p_op, v_smem.index(st), acc, is_async=True)
                    acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
                    _release(empty, st)
                    it += 1
            if not QREG:  # every QK of this pair has completed (waited above): Q's buffer takes the next pair's
                _q_next(q_desc, my_bar, my_q, (pair_n // QP) * QB2 + (pair_n % QP) * 2 + half, QB2, H,
                        j + 1 < j_end)
            # O = acc / l (l = 0: the block keeps no key of the union -> zeros); rows past N_Q not stored
            l_o = gl.convert_layout(l_i, gl.SliceLayout(1, O_L))
            out = acc / gl.where(l_o == 0.0, 1.0, l_o)[:, None]
            bh = pair // QP
            offs_m = ((pair % QP) * 2 + half) * _BM + gl.arange(0, _BM, gl.SliceLayout(1, O_L))
            offs_o = gl.arange(0, _D, gl.SliceLayout(0, O_L))
            ptrs = (Out + (bh // H).to(gl.int64) * stride_ob + (bh % H).to(gl.int64) * stride_oh
                    + offs_m[:, None].to(gl.int64) * stride_on + offs_o[None, :])
            gl.store(ptrs, out.to(Out.dtype.element_ty), mask=(offs_m < N_Q)[:, None])
            lo = gl.load(UOffsets + pair_n).to(gl.int32)
            hi = gl.load(UOffsets + pair_n + 1).to(gl.int32)
            pair = pair_n
            j = j + 1
            phase ^= 1

    @gluon.jit
    def _fg_gluon_pair(q_desc, K, V, Out, UOffsets, UIndices, Member, TileOffsets, TileShared, LaneRows, LaneStart,
                       qk_scale,
                       stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                       stride_ob, stride_oh, stride_on, H, N_Q, QP,
                       HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                       PRODUCER_WARPS: gl.constexpr, PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr,
                       PIPE: gl.constexpr, num_warps: gl.constexpr, QREG: gl.constexpr = False):
        """Union-gathered pairs: one CTA per SM walks its list of pairs; the default partition is consumer half 0
        (``num_warps`` 4), workers: consumer half 1 and the producer (``_m64_producer`` on the union index)."""
        gl.static_assert(HEAD_DIM == _D and BLOCK_M == _BM and num_warps == _CW)
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, HEAD_DIM], dtype)
        q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(q_bar.index(i), count=1)
        for i in gl.static_range(STAGES):
            mbarrier.init(full.index(i), count=PRODUCER_WARPS * 32)
            mbarrier.init(empty.index(i), count=2)
        gl.warp_specialize([
            (_pair_consumer, (0, q_desc, Out, UOffsets, Member, TileOffsets, TileShared, LaneRows, LaneStart,
                              q_smem, k_smem, v_smem, q_bar, full, empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QP, STAGES, BLOCK_N,
                              PIPE, QREG)),
            (_pair_consumer, (1, q_desc, Out, UOffsets, Member, TileOffsets, TileShared, LaneRows, LaneStart,
                              q_smem, k_smem, v_smem, q_bar, full, empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QP, STAGES, BLOCK_N,
                              PIPE, QREG)),
            (_m64_producer, (0, K, V, UOffsets, UIndices, LaneRows, LaneStart, k_smem, v_smem, full, empty,
                             stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QP, 1, STAGES,
                             BLOCK_N, PRODUCER_WARPS)),
        ], [_CW, PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(STAGES):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))

# ------------------------------------------------------------------------------------------------ host side
def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_m64: {msg}")


def smem_bytes(lanes: int, stages: int, block_n: int = 64, elem: int = 2) -> int:
    """Shared memory of one CTA (bytes): per lane a Q tile (64 × 128) and ``stages`` K and V tiles
    (block_n × 128), plus 8 B per mbarrier (Q, full and empty per stage)."""
    return lanes * (BLOCK_M * HEAD_DIM * elem + 2 * stages * block_n * HEAD_DIM * elem + 8 * (1 + 2 * stages))


def ctas_per_sm(lanes: int) -> int:
    """CTAs the kernel is built to co-schedule on one SM: 1 for two lanes, 2 for one (the tl entry's pairing)."""
    return 1 if lanes == 2 else 2


def check_m64_knobs(*, lanes: int = 2, block_n: int = 64, stages: int = 3, producer_warps: int = 4,
                    pipeline: int = 0, fence: bool = False, qreg: bool = False,
                    regs: tuple[int, int] | None = None) -> dict[str, Any]:
    """Validate the knobs (one ValueError line naming the argument; any machine) and return the kernel's
    constexprs.  ``regs`` = (consumer, producer) registers per thread after ``setmaxnreg`` (default: the
    largest multiple of 8 the register file allows for the lanes' warps with 64 for a producer thread); the
    lane-0 consumer (the default partition) gets what the launch register count leaves."""
    vals = dict(lanes=lanes, block_n=block_n, stages=stages, producer_warps=producer_warps, pipeline=pipeline,
                fence=fence, qreg=qreg)
    for name, v in vals.items():
        ok = KNOB_VALUES[name]
        if isinstance(v, bool) != isinstance(ok[0], bool) or v not in ok:
            _fail(f"{name}={v!r} must be one of {list(ok)}")
    if lanes == 1 and producer_warps == 2:
        # offline (Triton 3.6 sm_90): the 6-warp CTA's default partition asks setmaxnreg for 256 registers per
        # thread, more than the whole CTA's pool at 168 (2 CTAs per SM): the TRY_ALLOC would retry forever
        _fail("producer_warps=2 with lanes=1: Triton 3.6 gives the consumer partition 256 registers, more than "
              "the CTA's 168 x 192 pool (it would never start); use producer_warps=4")
    cpm = ctas_per_sm(lanes)
    sm = smem_bytes(lanes, stages, block_n)
    if cpm * (sm + SMEM_RESERVED_PER_CTA) > SMEM_PER_SM:
        _fail(f"stages={stages} with lanes={lanes}: {sm} B of shared memory per CTA x {cpm} CTAs per SM exceed "
              f"{SMEM_PER_SM} B")
    threads = 32 * lanes * (CONSUMER_WARPS + producer_warps)
    budget = threads * _launch_regs(lanes, producer_warps)  # registers of one CTA (its pool for setmaxnreg)
    if regs is None:
        pr = 64 if lanes == 2 or producer_warps == 2 else 56
        cr = min(240, (budget - 32 * lanes * producer_warps * pr) // (32 * lanes * CONSUMER_WARPS) // 8 * 8)
        regs = (cr, pr)
    ok = (isinstance(regs, tuple) and len(regs) == 2
          and all(isinstance(r, int) and not isinstance(r, bool) for r in regs))
    if not ok or regs[0] % 8 or regs[1] % 8 or not 24 <= regs[1] <= regs[0] <= 240:
        _fail(f"regs={regs!r} must be (consumer, producer) multiples of 8 with 24 <= producer <= consumer <= 240")
    used = 32 * lanes * (CONSUMER_WARPS * regs[0] + producer_warps * regs[1])
    if used > budget:
        _fail(f"regs={regs!r}: {used} registers for {threads} threads exceed the CTA's {budget} "
              f"({cpm} CTA(s) per SM)")
    return dict(LANES=lanes, BLOCK_N=block_n, STAGES=stages, PRODUCER_WARPS=producer_warps, PIPE=pipeline,
                FENCE=fence, QREG=qreg, CONSUMER_REGS=regs[0], PRODUCER_REGS=regs[1])


def _launch_regs(lanes: int, producer_warps: int) -> int:
    threads = 32 * lanes * (CONSUMER_WARPS + producer_warps)
    return min(255, 65536 // ctas_per_sm(lanes) // threads // 8 * 8)


def launch_regs(knobs: dict[str, Any]) -> int:
    """Registers per thread at launch (``maxnreg``) so that ``ctas_per_sm`` CTAs fit: the register file
    (65,536) over the CTAs' threads, a multiple of 8, at most 255."""
    return _launch_regs(knobs["LANES"], knobs["PRODUCER_WARPS"])


def lane_walk(n_rows: int, programs: int, lanes: int) -> list[list[list[int]]]:
    """Launch positions each lane walks: ``[program][lane] -> [positions]``, lane ``l`` of program ``p`` taking
    p·lanes + l, p·lanes + l + programs·lanes, ... (pure Python twin of the kernel's walk; every position
    once)."""
    for name, v in (("n_rows", n_rows), ("programs", programs), ("lanes", lanes)):
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "n_rows" else 1):
            _fail(f"{name}={v!r} must be a {'non-negative' if name == 'n_rows' else 'positive'} int")
    step = programs * lanes
    return [[list(range(p * lanes + ln, n_rows, step)) for ln in range(lanes)] for p in range(programs)]


def row_costs(counts: list[int], block_n: int = 64, c_row: float = 2.0) -> list[float]:
    """A row's cost in tile units for the schedules: ``c_row`` + executed tiles (max(ceil(count / block_n), 1))."""
    return [c_row + max(-(-int(c) // block_n), 1) for c in counts]


def lane_lpt(costs: list[float], programs: int, lanes: int) -> list[list[list[int]]]:
    """Greedy longest-processing-time assignment (Graham's LPT): rows by cost, heaviest first (ties: lower row
    first), each to the lane with the least load so far (ties: lowest lane ``p·lanes + l``); a lane runs its rows
    in the order assigned (heaviest first).  ``[program][lane] -> [rows]`` (pure Python)."""
    import heapq

    lane_walk(len(costs), programs, lanes)  # argument checks
    out: list[list[int]] = [[] for _ in range(programs * lanes)]
    heap = [(0.0, i) for i in range(programs * lanes)]
    for r in sorted(range(len(costs)), key=lambda r: (-costs[r], r)):
        load, i = heapq.heappop(heap)
        out[i].append(r)
        heapq.heappush(heap, (load + costs[r], i))
    return [out[p * lanes:(p + 1) * lanes] for p in range(programs)]


def lane_list(costs: list[float], order: list[int], programs: int, lanes: int) -> list[list[list[int]]]:
    """List scheduling in launch order (what a dynamic queue over ``order`` would do with exact costs): each row
    of ``order`` in turn to the lane with the least load so far (ties: lowest lane); a lane runs its rows in
    launch order, so the lanes move through ``order`` (and its heads) together.  ``[program][lane] -> [rows]``."""
    import heapq

    lane_walk(len(costs), programs, lanes)  # argument checks
    if sorted(order) != list(range(len(costs))):
        _fail("order must be a permutation of the rows")
    out: list[list[int]] = [[] for _ in range(programs * lanes)]
    heap = [(0.0, i) for i in range(programs * lanes)]
    for r in order:
        load, i = heapq.heappop(heap)
        out[i].append(r)
        heapq.heappush(heap, (load + costs[r], i))
    return [out[p * lanes:(p + 1) * lanes] for p in range(programs)]


def lanes_makespan(costs: list[float], lists: list[list[list[int]]]) -> tuple[float, float]:
    """(max, mean) over lanes of the summed costs of the rows each lane runs (no co-scheduling model)."""
    loads = [sum(costs[r] for r in lane) for prog in lists for lane in prog]
    return max(loads), sum(loads) / len(loads)


def inflight_heads(costs: list[float], lists: list[list[list[int]]], head_of_row: list[int]) -> tuple[float, int]:
    """(time-averaged, maximum) number of distinct heads whose rows are in flight when every lane runs its rows
    back to back at ``costs`` (no co-scheduling model): a proxy for the K/V working set the L2 must hold (one
    head's K and V at N 32,760, D 128, bf16: 16.8 MB; the H200's L2: 50 MB)."""
    events = []
    for prog in lists:
        for lane in prog:
            t = 0.0
            for r in lane:
                events.append((t, 1, head_of_row[r]))
                t += costs[r]
                events.append((t, -1, head_of_row[r]))
    events.sort(key=lambda e: (e[0], e[1]))  # ends before starts at the same time
    live: dict[int, int] = {}
    area, last, peak = 0.0, 0.0, 0
    for t, step, h in events:
        area += len(live) * (t - last)
        last = t
        live[h] = live.get(h, 0) + step
        if live[h] == 0:
            del live[h]
        peak = max(peak, len(live))
    return (area / last if last > 0 else 0.0), peak


def flatten_lanes(lists: list[list[list[int]]]) -> tuple[list[int], list[int]]:
    """Lane-major concatenation of ``[program][lane] -> [entries]`` and each lane's start (one more than the
    lanes): lane ``p·lanes + l`` owns ``flat[start[i]:start[i + 1]]``, the kernel's LaneRows / LaneStart."""
    flat, start = [], [0]
    for prog in lists:
        for lane in prog:
            flat += lane
            start.append(len(flat))
    return flat, start


SCHEDULES = ("walk", "lpt", "list")


@dataclass(frozen=True)
class LanePlan:
    """Which rows each lane runs (the kernel's LaneRows / LaneStart, on the index's device), built once per index
    by :func:`plan_lanes` (host work; reuse it across calls and CUDA-graph captures)."""

    rows: Any
    start: Any
    programs: int
    lanes: int
    n_rows: int
    schedule: str
    makespan: float
    mean_load: float


def plan_lanes(index: Any, *, programs: int, lanes: int = 2, schedule: str = "walk", c_row: float = 2.0,
               block_n: int = 64) -> LanePlan:
    """Lane schedule of ``index`` for ``programs`` programs of ``lanes`` lanes: ``walk`` = lane l of program p
    runs launch positions p·lanes + l, + programs·lanes, ... of ``index.order`` (natural order without one);
    ``lpt`` = :func:`lane_lpt` on :func:`row_costs`; ``list`` = :func:`lane_list` over ``index.order`` (both read
    the row counts: one device-to-host copy).  makespan / mean_load in tile units (:func:`lanes_makespan`)."""
    import torch

    if schedule not in SCHEDULES:
        _fail(f"schedule={schedule!r} must be one of {list(SCHEDULES)}")
    n = index.n_rows
    counts = index.counts().tolist()
    costs = row_costs(counts, block_n, c_row)
    dev = index.offsets.device
    order = list(range(n)) if index.order is None else index.order.tolist()
    if schedule == "walk":
        lists = [[[order[i] for i in lane] for lane in prog] for prog in lane_walk(n, programs, lanes)]
    elif schedule == "list":
        lists = lane_list(costs, order, programs, lanes)
    else:
        lists = lane_lpt(costs, programs, lanes)
    flat, start = flatten_lanes(lists)
    mx, mean = lanes_makespan(costs, lists)
    return LanePlan(rows=torch.tensor(flat or [0], dtype=torch.int32, device=dev),
                    start=torch.tensor(start, dtype=torch.int32, device=dev), programs=programs, lanes=lanes,
                    n_rows=n, schedule=schedule, makespan=mx, mean_load=mean)


@dataclass(frozen=True)
class UnionPairs:
    """The union index of adjacent M64 query-block pairs (2i, 2i+1) of each (batch, head) — the next-step design
    in kernels/NOTES-gluon-m64.md (one gathered K/V stream per pair, each block masking the keys it does not
    keep).  Pair ``p = (b·H + h)·ceil(QB / 2) + i`` owns ``indices[offsets[p]:offsets[p + 1]]`` (sorted key numbers)
    and ``member`` (int8, same length): bit 0 = kept by block 2i, bit 1 = kept by block 2i+1."""

    offsets: Any
    indices: Any
    member: Any
    n_pairs: int
    tile_offsets: Any = None
    tile_shared: Any = None


def union_pairs(index: Any) -> UnionPairs:
    """:class:`UnionPairs` of an M64 gran-1 :class:`fgattn.FgIndex` (torch ops on the index's device; one host
    sync for the union size).  An odd last block of a head forms a pair alone."""
    import torch

    if index.block_m != BLOCK_M or index.gran_n != GRAN_N:
        _fail(f"union_pairs: index has block_m={index.block_m}, gran_n={index.gran_n} (needs {BLOCK_M}, {GRAN_N})")
    dev = index.indices.device
    qb, qp = index.n_qblocks, -(-index.n_qblocks // 2)
    counts = index.counts()
    rows = torch.repeat_interleave(torch.arange(index.n_rows, device=dev), counts)
    bh, blk = rows // qb, rows % qb
    pair = bh * qp + blk // 2
    key = pair * index.n_keys + index.indices.long()
    bit = (1 << (blk % 2)).to(torch.int64)
    skey, perm = torch.sort(key)
    ukey, inv = torch.unique_consecutive(skey, return_inverse=True)
    member = torch.zeros(ukey.numel(), dtype=torch.int64, device=dev).index_add_(0, inv, bit[perm])
    n_pairs = index.batch * index.heads * qp
    upair = ukey // index.n_keys
    offsets = torch.zeros(n_pairs + 1, dtype=torch.int64, device=dev)
    offsets[1:] = torch.cumsum(torch.bincount(upair, minlength=n_pairs), 0)
    # per 128-key union tile (PAIR_BLOCK_N): 1 where all 128 entries exist and both blocks keep them
    ucnt = offsets[1:] - offsets[:-1]
    ntile = torch.clamp((ucnt + PAIR_BLOCK_N - 1) // PAIR_BLOCK_N, min=1)
    tile_offsets = torch.zeros(n_pairs + 1, dtype=torch.int64, device=dev)
    tile_offsets[1:] = torch.cumsum(ntile, 0)
    tile = tile_offsets[upair] + (torch.arange(ukey.numel(), device=dev) - offsets[upair]) // PAIR_BLOCK_N
    n_t = int(tile_offsets[-1])
    both = torch.zeros(n_t, dtype=torch.int64, device=dev).index_add_(0, tile, (member == 3).to(torch.int64))
    return UnionPairs(offsets=offsets, indices=(ukey % index.n_keys).to(torch.int32), member=member.to(torch.int8),
                      n_pairs=n_pairs, tile_offsets=tile_offsets, tile_shared=(both == PAIR_BLOCK_N).to(torch.int8))


def union_stats(index: Any, block_n: int = 64) -> dict[str, float]:
    """What union-gathered pairs would change for an M64 index: ``gather_ratio`` = gathered key rows (the pairs'
    unions) / gathered key rows per block today; ``compute_ratio`` = executed ``block_n``-key tiles when each block
    runs its pair's union / its own executed tiles (an empty row still runs one tile); ``shared_tiles`` = fraction
    of the pairs' 128-key union tiles both blocks keep whole (the kernel's unmasked path)."""
    import torch

    u = union_pairs(index)
    own = index.counts()
    ucnt = u.offsets[1:] - u.offsets[:-1]
    qb, qp = index.n_qblocks, -(-index.n_qblocks // 2)
    r = torch.arange(index.n_rows, device=own.device)
    mine = ucnt[(r // qb) * qp + (r % qb) // 2]  # the union each block would run
    tiles = lambda c: torch.clamp((c + block_n - 1) // block_n, min=1).sum().item()  # noqa: E731
    return dict(gather_ratio=float(ucnt.sum()) / max(float(own.sum()), 1.0),
                compute_ratio=tiles(mine) / tiles(own),
                shared_tiles=float(u.tile_shared.double().mean()) if u.tile_shared.numel() else 0.0)


@dataclass(frozen=True)
class M64Plan:
    """What a launch runs: grid (programs), rows, shapes, dtype and layout names."""

    grid: int
    n_rows: int
    batch: int
    heads: int
    n_q: int
    n_kv: int
    n_qblocks: int
    ordered: bool
    dtype: str
    layout: str


def plan_gluon_m64(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd", lanes: int = 2,
                   sms: int = 132) -> M64Plan:
    """Validate a call (before any GPU work; one ValueError line naming the argument) and plan its launch.

    Works on any device (the CPU tests use it): q, k, v (B, H, N, D) for ``bhnd`` or (B, N, H, D) for ``bnhd``,
    D 128, bf16 / fp16; ``index`` an :class:`fgattn.FgIndex` with block_m 64 and gran_n 1 matching q/k.  Grid:
    min(ceil(rows / lanes), sms · CTAs per SM)."""
    import torch

    from .index import FgIndex

    if layout not in ("bhnd", "bnhd"):
        _fail(f"layout must be 'bhnd' or 'bnhd', got {layout!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            _fail(f"{name} must be a 4-D tensor ({layout}), got {getattr(t, 'shape', type(t).__name__)}")
        if t.dtype not in (torch.bfloat16, torch.float16):
            _fail(f"{name}: dtype {t.dtype} not supported (bfloat16 or float16)")
        if t.dtype != q.dtype or t.device != q.device:
            _fail(f"{name}: dtype/device {t.dtype}/{t.device} differ from q's {q.dtype}/{q.device}")
        if t.stride(-1) != 1:
            _fail(f"{name}: the head dimension must be contiguous (stride 1)")
    if layout == "bhnd":
        b, h, nq, d = q.shape
        nk = k.shape[2]
        kv_shape = (b, h, nk, d)
    else:
        b, nq, h, d = q.shape
        nk = k.shape[1]
        kv_shape = (b, nk, h, d)
    if d != HEAD_DIM:
        _fail(f"head_dim={d} not supported (only {HEAD_DIM})")
    if tuple(k.shape) != kv_shape or tuple(v.shape) != kv_shape:
        _fail(f"k/v shapes {tuple(k.shape)}, {tuple(v.shape)} do not match q {tuple(q.shape)} ({layout})")
    if nq == 0 or nk == 0:
        _fail("sequence length must be positive")
    if not isinstance(index, FgIndex):
        _fail(f"index must be an FgIndex, got {type(index).__name__}")
    if (index.block_m, index.gran_n) != (BLOCK_M, GRAN_N):
        _fail(f"index has block_m={index.block_m}, gran_n={index.gran_n} (this kernel needs {BLOCK_M}, {GRAN_N})")
    qb = -(-nq // BLOCK_M)
    if (index.batch, index.heads, index.n_qblocks, index.n_keys) != (b, h, qb, nk):
        _fail(f"index (batch, heads, n_qblocks, n_keys)=({index.batch}, {index.heads}, {index.n_qblocks}, "
              f"{index.n_keys}) does not match q/k ({b}, {h}, {qb}, {nk})")
    if index.indices.dtype != torch.int32 or index.offsets.dtype not in (torch.int32, torch.int64):
        _fail("index.indices must be int32 and index.offsets int32 or int64")
    if index.indices.device != q.device or index.offsets.device != q.device:
        _fail(f"index is on {index.indices.device}, q on {q.device}")
    esz = q.element_size()
    qs = (q.stride(0), q.stride(1), q.stride(2)) if layout == "bhnd" else (q.stride(0), q.stride(2), q.stride(1))
    if any(st * esz % 16 for st in qs) or q.data_ptr() % 16:
        _fail(f"q strides {tuple(q.stride())} / base are not 16-byte aligned (needed by the Q TMA descriptor)")
    for name, t in (("k", k), ("v", v)):
        if t.data_ptr() % 16 or any(st * esz % 16 for st in t.stride()[:-1]):
            _fail(f"{name}: base / strides not 16-byte aligned (needed by the 16-byte cp.async gathers)")
    if lanes not in KNOB_VALUES["lanes"]:
        _fail(f"lanes={lanes!r} must be one of {list(KNOB_VALUES['lanes'])}")
    if not isinstance(sms, int) or isinstance(sms, bool) or sms < 1:
        _fail(f"sms / programs={sms!r} must be a positive int")
    rows = b * h * qb
    grid = min(-(-rows // lanes), sms * ctas_per_sm(lanes))
    return M64Plan(grid=grid, n_rows=rows, batch=b, heads=h, n_q=nq, n_kv=nk, n_qblocks=qb,
                   ordered=index.order is not None, dtype="bf16" if q.dtype == torch.bfloat16 else "fp16",
                   layout=layout)


def compile_m64_sm90(knobs: dict[str, Any], dtype: str = "bf16") -> Any:
    """Compile the kernel for sm_90 without a GPU (Triton >= 3.5 with Gluon on the path), with the signature
    :func:`fg_attention_gluon_m64` launches with (:func:`fgattn.gluon_fg.compile_sm90`'s: 16-byte divisible
    pointers and strides, the Q descriptor's [1, 1, 64, 128] box) and the launch register cap."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    fn = _fg_gluon_m64
    const = dict(HEAD_DIM=HEAD_DIM, BLOCK_M=BLOCK_M, num_warps=CONSUMER_WARPS, **knobs)
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
            sig[a] = f"tensordesc<{dtype}[1, 1, {BLOCK_M}, {HEAD_DIM}],{lay}>"
        elif a in ptr:
            sig[a], attrs[(i,)] = ptr[a], [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = GluonASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32),
                          options={"num_warps": CONSUMER_WARPS, "maxnreg": launch_regs(knobs)})


def _strides(t: Any, layout: str) -> tuple[int, int, int]:
    return (t.stride(0), t.stride(1), t.stride(2)) if layout == "bhnd" else (t.stride(0), t.stride(2), t.stride(1))


def fg_attention_gluon_m64(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                           sm_scale: float | None = None, programs: int | None = None, out: Any = None,
                           lanes: int = 2, stages: int = 3, producer_warps: int = 4, pipeline: int = 0,
                           fence: bool = False, qreg: bool = False, regs: tuple[int, int] | None = None,
                           schedule: str = "walk", plan: LanePlan | None = None) -> Any:
    """fg attention D 128, M 64, gran_n 1 in Gluon (sm_90 GPUs): the output of :func:`fgattn.fg_attention` (q's
    layout and dtype; zeros for a query block with no kept key).  ``programs`` (default SMs · CTAs per SM, at most
    ceil(rows / lanes)) persistent programs; knobs as :func:`check_m64_knobs` (``lanes`` 2: one CTA per SM with
    two lanes, 1: two CTAs per SM with one; ``pipeline`` 1: QK(t) and PV(t−1) overlapped; ``qreg``: Q in
    registers; ``fence``: a proxy fence after each stage's ``full`` wait).  ``plan``: the rows of every lane
    (:func:`plan_lanes`, built once per index; needed under CUDA-graph capture), else built here with
    ``schedule``."""
    import torch

    if _GLUON_ERR is not None:
        _fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if not isinstance(q, torch.Tensor) or q.device.type != "cuda":
        _fail("q must be a CUDA tensor (no CPU / interpreter path)")
    cap = torch.cuda.get_device_capability(q.device)
    if cap[0] != 9:
        _fail(f"needs an sm_90 GPU (Hopper: wgmma, TMA), this one is sm_{cap[0]}{cap[1]}")
    knobs = check_m64_knobs(lanes=lanes, stages=stages, producer_warps=producer_warps, pipeline=pipeline,
                            fence=fence, qreg=qreg, regs=regs)
    sms = torch.cuda.get_device_properties(q.device).multi_processor_count
    p = plan_gluon_m64(q, k, v, index, layout=layout, lanes=lanes, sms=sms)
    grid = p.grid
    if programs is not None:
        if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
            _fail(f"programs={programs!r} must be a positive int")
        grid = min(grid, programs)
    if plan is None:
        plan = plan_lanes(index, programs=grid, lanes=lanes, schedule=schedule)
    elif not isinstance(plan, LanePlan) or (plan.lanes, plan.n_rows) != (lanes, p.n_rows) or plan.programs > p.grid:
        got = tuple(getattr(plan, a, None) for a in ("lanes", "n_rows", "programs"))
        _fail(f"plan (lanes, rows, programs)={got} does not fit lanes={lanes}, rows={p.n_rows}, programs <= {p.grid}")
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.stride(-1) != 1:
        _fail("out must match q's shape and dtype with a contiguous head dimension")
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    el = gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16
    box = [1, 1, BLOCK_M, HEAD_DIM]
    q_desc = TensorDescriptor(q, [p.batch, p.heads, p.n_q, HEAD_DIM], [*_strides(q, layout), 1], box,
                              gl.NVMMASharedLayout.get_default_for(box, el))
    scale = (1.0 / math.sqrt(HEAD_DIM)) if sm_scale is None else float(sm_scale)
    _fg_gluon_m64[(plan.programs,)](q_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start,
                                    scale * 1.4426950408889634, *_strides(k, layout), *_strides(v, layout),
                                    *_strides(out, layout), p.heads, p.n_q, p.n_qblocks, HEAD_DIM=HEAD_DIM,
                                    BLOCK_M=BLOCK_M, num_warps=CONSUMER_WARPS, maxnreg=launch_regs(knobs), **knobs)
    return out


# ------------------------------------------------------------------------------------------------ pairs (prepared)
#: union-gathered pairs: 128-key union tiles, 3 stages (the M128 Gluon form's ring), producer 4 warps, registers
#: (consumer, producer) as the M128 ws2 form's default
PAIR_BLOCK_N = 128
PAIR_STAGES = 3
PAIR_PRODUCER_WARPS = 4
PAIR_REGS = (216, 64)


def pair_order(union: UnionPairs, heads_total: int) -> list[int]:
    """Launch order of the pairs: (batch, head)-major, the pair with the longer union first within a head (the
    tl entries' LPT order without promotion)."""
    cnt = (union.offsets[1:] - union.offsets[:-1]).tolist()
    per = union.n_pairs // heads_total
    return sorted(range(union.n_pairs), key=lambda p: (p // per, -cnt[p], p))


def plan_pairs(union: UnionPairs, heads_total: int, programs: int) -> LanePlan:
    """One lane per program over the pairs: :func:`lane_list` on the union tiles (c_row 2 + 128-key tiles) in
    :func:`pair_order`."""
    import torch

    cnt = (union.offsets[1:] - union.offsets[:-1]).tolist()
    costs = row_costs(cnt, PAIR_BLOCK_N)
    lists = lane_list(costs, pair_order(union, heads_total), programs, 1)
    flat, start = flatten_lanes(lists)
    mx, mean = lanes_makespan(costs, lists)
    dev = union.offsets.device
    return LanePlan(rows=torch.tensor(flat or [0], dtype=torch.int32, device=dev),
                    start=torch.tensor(start, dtype=torch.int32, device=dev), programs=programs, lanes=1,
                    n_rows=union.n_pairs, schedule="list", makespan=mx, mean_load=mean)


def compile_pair_sm90(pipeline: int = 0, dtype: str = "bf16", qreg: bool = False) -> Any:
    """Offline sm_90 compile of the union-pair kernel (as :func:`compile_m64_sm90`; ``qreg`` as
    :func:`fg_attention_gluon_pair`)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    if pipeline not in (0, 1):
        _fail(f"pipeline={pipeline!r} must be one of [0, 1]")
    fn = _fg_gluon_pair
    const = dict(HEAD_DIM=HEAD_DIM, BLOCK_M=BLOCK_M, BLOCK_N=PAIR_BLOCK_N, STAGES=PAIR_STAGES,
                 PRODUCER_WARPS=PAIR_PRODUCER_WARPS, PRODUCER_REGS=PAIR_REGS[1], CONSUMER_REGS=PAIR_REGS[0],
                 PIPE=pipeline, num_warps=CONSUMER_WARPS, QREG=bool(qreg))
    names = list(fn.arg_names)
    lay = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
           "fp4_padded=False, cga_layout=[])")
    ptr = {"K": f"*{dtype}", "V": f"*{dtype}", "Out": f"*{dtype}", "UOffsets": "*i64", "UIndices": "*i32",
           "Member": "*i8", "TileOffsets": "*i64", "TileShared": "*i8", "LaneRows": "*i32", "LaneStart": "*i32"}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a == "q_desc":
            sig[a] = f"tensordesc<{dtype}[1, 1, {BLOCK_M}, {HEAD_DIM}],{lay}>"
        elif a in ptr:
            sig[a], attrs[(i,)] = ptr[a], [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = GluonASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": CONSUMER_WARPS})


def fg_attention_gluon_pair(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                            sm_scale: float | None = None, programs: int | None = None, out: Any = None,
                            pipeline: int = 0, union: UnionPairs | None = None, plan: LanePlan | None = None,
                            qreg: bool = False) -> Any:
    """PREPARED, NOT YET RUN ON A GPU (kernels/NOTES-gluon-m64.md, "Next"): fg attention D 128, M 64, gran_n 1
    with union-gathered pairs of adjacent query blocks; the output of :func:`fgattn.fg_attention` at M 64.
    ``union`` (:func:`union_pairs`) and ``plan`` (:func:`plan_pairs`) are built here unless given (host work:
    pass both under CUDA-graph capture).  ``qreg=True``: Q in registers for the QK wgmmas — the form run in
    session 11, which gave wrong results from a pair's second 128-key tile on (the softmax's P was allocated in Q's
    registers; kernels/NOTES-gluon-m64.md); the default reads Q from shared memory (fix compiled offline, not yet
    run on a GPU)."""
    import torch

    if _GLUON_ERR is not None:
        _fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if not isinstance(q, torch.Tensor) or q.device.type != "cuda":
        _fail("q must be a CUDA tensor (no CPU / interpreter path)")
    if torch.cuda.get_device_capability(q.device)[0] != 9:
        _fail("needs an sm_90 GPU (Hopper: wgmma, TMA)")
    if pipeline not in (0, 1) or isinstance(pipeline, bool):
        _fail(f"pipeline={pipeline!r} must be one of [0, 1]")
    if not isinstance(qreg, bool):
        _fail(f"qreg={qreg!r} must be a bool")
    sms = torch.cuda.get_device_properties(q.device).multi_processor_count
    p = plan_gluon_m64(q, k, v, index, layout=layout, lanes=2, sms=sms)
    if union is None:
        union = union_pairs(index)
    if plan is None:
        plan = plan_pairs(union, p.batch * p.heads, min(union.n_pairs, sms, programs or sms))
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.stride(-1) != 1:
        _fail("out must match q's shape and dtype with a contiguous head dimension")
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    el = gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16
    box = [1, 1, BLOCK_M, HEAD_DIM]
    q_desc = TensorDescriptor(q, [p.batch, p.heads, p.n_q, HEAD_DIM], [*_strides(q, layout), 1], box,
                              gl.NVMMASharedLayout.get_default_for(box, el))
    scale = (1.0 / math.sqrt(HEAD_DIM)) if sm_scale is None else float(sm_scale)
    qp = -(-p.n_qblocks // 2)
    _fg_gluon_pair[(plan.programs,)](q_desc, k, v, out, union.offsets, union.indices, union.member,
                                     union.tile_offsets, union.tile_shared, plan.rows, plan.start, scale * 1.4426950408889634, *_strides(k, layout),
                                     *_strides(v, layout), *_strides(out, layout), p.heads, p.n_q, qp,
                                     HEAD_DIM=HEAD_DIM, BLOCK_M=BLOCK_M, BLOCK_N=PAIR_BLOCK_N, STAGES=PAIR_STAGES,
                                     PRODUCER_WARPS=PAIR_PRODUCER_WARPS, PRODUCER_REGS=PAIR_REGS[1],
                                     CONSUMER_REGS=PAIR_REGS[0], PIPE=pipeline, num_warps=CONSUMER_WARPS, QREG=qreg)
    return out
