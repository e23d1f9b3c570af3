"""Research prototype (issue 12, helper G): the fg D128 M128 gran-1 kernel written in Gluon.

Not part of fgattn's dispatch or launch table: reachable only as ``fgattn.gluon_fg.fg_attention_gluon``.
Same inputs and math as :func:`fgattn.fg_attention` with the fg D128 M128 gran-1 entry (CSR index of
:mod:`fgattn.index`, launch order ``FgIndex.order``, rows with no kept key give zeros, any N, bf16 / fp16) but with
the row start written out explicitly, which Triton's ``tl`` cannot express (kernels/NOTES.md, session 8):

* Q arrives by TMA (host-built (B, H, N, D) descriptor, rows past N zero-filled) on its own mbarrier, issued as
  soon as the row number is known and waited only right before the row's first QK wgmma; the index entries and the
  gathered K/V cp.async of tiles 0 and 1 are issued meanwhile (``tl`` stores Q to shared memory before them).
* K/V rows ``idx[e]`` are gathered by cp.async (16-B vectors along D) into a 3-stage ring of NVMMA-swizzled tiles
  (128 keys × 128), masked per key (entries past the row's end read nothing and give zero rows); the index entries
  of a tile are loaded one tile before its gathers are issued, the gathers two tiles before its wgmma.
* The masked tail tile is the pipeline's last item (gathered ahead like the others), not a separate load after the
  loop.
* ``form="persistent"`` (b): one program per SM walks launch positions p, p + G, ...; the producer side (index
  entries, gathers) runs two tiles ahead *across rows*, so the next row's first tiles are in flight while this
  row's last tiles and epilogue run, and the next row's Q TMA is issued as soon as this row's last QK has read Q.
* ``form="ws"`` (c): the same persistent walk with warp specialization (``gl.warp_specialize``): a producer
  warpgroup (64 registers) loads the index entries and issues the gathers, each stage's completion signalled by
  cp.async.mbarrier.arrive on a ``full`` mbarrier, the stage released by the consumers on an ``empty`` one; two
  consumer warpgroups (216 registers) do Q (TMA), wgmma, softmax and the epilogue.
* ``form="ws2"`` (d): as c with each consumer warpgroup in its own partition (64 query rows, its own Q half and
  mbarrier, one arrival each on the stage's ``empty`` barrier), so the two drift freely instead of meeting at a
  CTA barrier every tile.

API used (Triton 3.6 Gluon, learnt from the public tutorials python/tutorials/gluon/03-async-copy.py,
04-tma.py, 05-wgmma.py and 08-warp-specialization.py of https://github.com/triton-lang/triton): ``allocate_shared_memory``,
``nvidia.ampere.async_copy`` (cp.async + commit / wait groups or mbarrier arrival), ``warp_specialize``, ``nvidia.hopper.tma`` / ``mbarrier``,
``warpgroup_mma`` with the S / O accumulators in ``NVMMADistributedLayout`` and P as the register A operand
(``DotOperandLayout``).  Own code; the FlashAttention-2 online softmax in base 2 as ``fgattn.attention``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMS", "GluonPlan", "plan_gluon", "fg_attention_gluon", "gluon_available", "check_ws2_knobs",
           "EPILOGUES", "EPILOGUES_FG", "o_desc_ok", "resolve_epilogue"]

HEAD_DIM = 128
BLOCK_M = 128
BLOCK_N = 128
GRAN_N = 1
STAGES = 3
NUM_WARPS = 8

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

    from .attention import _exp2_poly_ptx  # the tl entry's exp_poly PTX (same constants)

    _GLUON_ERR: str | None = None
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


def gluon_available() -> str | None:
    """None if this Triton has the Gluon Hopper API the prototype uses, else why not (one line)."""
    return _GLUON_ERR


# ------------------------------------------------------------------------------------------------ kernels
if _GLUON_ERR is None:

    @gluon.jit
    def _entries(Indices, lo, hi, t, offs_e, BLOCK_N: gl.constexpr):
        """Index entries (key numbers) of tile ``t`` of a row with entries [lo, hi); -1 past the row's end."""
        e = lo + t * BLOCK_N + offs_e
        return gl.load(Indices + e, mask=e < hi, other=-1)

    @gluon.jit
    def _gather(k_dst, v_dst, k_base, v_base, idx, stride_kn, stride_vn, offs_d):
        """cp.async of the K and V rows ``idx`` (one key per tile row; -1: nothing read, the row is zero-filled)
        into one stage, committed as one group."""
        ok = (idx >= 0)[:, None]
        r = gl.maximum(idx, 0)[:, None]
        cp.async_copy_global_to_shared(k_dst, k_base + r * stride_kn + offs_d[None, :], mask=ok)
        cp.async_copy_global_to_shared(v_dst, v_base + r * stride_vn + offs_d[None, :], mask=ok)
        cp.commit_group()

    @gluon.jit
    def _stage_ready(STAGES: gl.constexpr):
        """The oldest committed gather group (the tile about to be used) has landed in this thread's part of
        shared memory and is made visible to the wgmma (async proxy).  The CTA barriers come from Triton: one after
        the wait (all warps are then past the previous tile's wgmmas, so its stage may be refilled) and one that
        its shared-memory hazard analysis puts between the refill's cp.async and the next wgmma (after the fence)."""
        cp.wait_group(STAGES - 2)
        fence_async_shared()

    @gluon.jit
    def _qk(q_s, k_s, S_LAYOUT: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr):
        """S = Q·Kᵀ (fp32, wgmma from shared memory)."""
        s = warpgroup_mma(q_s, k_s.permute((1, 0)), gl.zeros([BLOCK_M, BLOCK_N], gl.float32, S_LAYOUT),
                          use_acc=False, is_async=True)
        return warpgroup_mma_wait(0, deps=(s, ))

    @gluon.jit
    def _softmax_pv(s, v_s, acc, m_i, l_i, qk_scale, n_valid, MASKED: gl.constexpr, S_LAYOUT: gl.constexpr,
                    P_LAYOUT: gl.constexpr, BLOCK_N: gl.constexpr):
        """Online softmax of one score tile (base 2, scale folded; ``MASKED``: columns ≥ n_valid are not kept
        keys) and O = α·O + P·V (P from registers)."""
        if MASKED:
            cols = gl.arange(0, BLOCK_N, gl.SliceLayout(0, S_LAYOUT))
            s = gl.where((cols < n_valid)[None, :], s, float("-inf"))
        m_new = gl.maximum(m_i, gl.max(s, 1) * qk_scale)
        p = gl.exp2(s * qk_scale - m_new[:, None])
        alpha = gl.exp2(m_i - m_new)
        l_i = l_i * alpha + gl.sum(p, 1)
        acc = acc * alpha[:, None]
        p_op = gl.convert_layout(p.to(v_s.dtype), P_LAYOUT)
        acc = warpgroup_mma(p_op, v_s, acc, is_async=True)
        acc = warpgroup_mma_wait(0, deps=(acc, ))
        return acc, m_new, l_i

    @gluon.jit
    def _store_out(Out, acc, l_i, empty, b, h, qb, stride_ob, stride_oh, stride_on, N_Q, S_LAYOUT: gl.constexpr,
                   BLOCK_M: gl.constexpr, HEAD_DIM: gl.constexpr):
        """O = acc / l (zeros for a row with no kept key), rows past N_Q not stored."""
        l_safe = gl.where(l_i == 0.0, 1.0, l_i)
        out = acc / l_safe[:, None]
        out = gl.where(empty, 0.0, out)
        _store_rows(Out, out, b, h, qb, stride_ob, stride_oh, stride_on, N_Q, S_LAYOUT, BLOCK_M, HEAD_DIM)

    @gluon.jit
    def _store_rows(Out, out, b, h, qb, stride_ob, stride_oh, stride_on, N_Q, S_LAYOUT: gl.constexpr,
                    BLOCK_M: gl.constexpr, HEAD_DIM: gl.constexpr):
        """Query block ``qb`` of BLOCK_M rows of O (already normalised) by per-thread stores, rows past N_Q not
        stored."""
        offs_m = qb * BLOCK_M + gl.arange(0, BLOCK_M, gl.SliceLayout(1, S_LAYOUT))
        offs_o = gl.arange(0, HEAD_DIM, gl.SliceLayout(0, S_LAYOUT))
        ptrs = (Out + b.to(gl.int64) * stride_ob + h.to(gl.int64) * stride_oh + offs_m[:, None] * stride_on
                + offs_o[None, :])
        gl.store(ptrs, out.to(Out.dtype.element_ty), mask=(offs_m < N_Q)[:, None])

    @gluon.jit
    def _fg_gluon_row(q_desc, K, V, Out, Offsets, Indices, Order, qk_scale,
                      stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                      stride_ob, stride_oh, stride_on, H, N_Q, QB,
                      HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                      ORDERED: gl.constexpr, num_warps: gl.constexpr):
        """Form (a): program p runs the row (query block) at launch position p."""
        dtype: gl.constexpr = K.dtype.element_ty
        GATHER: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [num_warps, 1], [1, 0])
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, HEAD_DIM], dtype)

        q_smem = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        mbarrier.init(q_bar, count=1)

        pid = gl.program_id(0)
        if ORDERED:
            row = gl.load(Order + pid)
        else:
            row = pid
        bh = row // QB
        qb = row % QB
        b = bh // H
        h = bh % H
        # Q first: one TMA, waited for only before the first QK
        mbarrier.expect(q_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [b, h, qb * BLOCK_M, 0], q_bar, q_smem)
        gl.thread_barrier()  # keeps the TMA issue here (without it, it sinks below the index loads' uses)

        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        cnt = hi - lo
        n_t = gl.maximum(gl.cdiv(cnt, BLOCK_N), 1)
        k_base = K + b.to(gl.int64) * stride_kb + h.to(gl.int64) * stride_kh
        v_base = V + b.to(gl.int64) * stride_vb + h.to(gl.int64) * stride_vh
        offs_e = gl.arange(0, BLOCK_N, gl.SliceLayout(1, GATHER))
        offs_d = gl.arange(0, HEAD_DIM, gl.SliceLayout(0, GATHER))

        # pipeline prologue: entries and gathers of tiles 0 .. STAGES-2, then the entries of the next one
        for j in gl.static_range(STAGES - 1):
            idx = _entries(Indices, lo, hi, j, offs_e, BLOCK_N)
            _gather(k_smem.index(j), v_smem.index(j), k_base, v_base, idx, stride_kn, stride_vn, offs_d)
        nxt = _entries(Indices, lo, hi, STAGES - 1, offs_e, BLOCK_N)

        q_s = q_smem.reshape([BLOCK_M, HEAD_DIM])
        m_i = gl.full([BLOCK_M], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
        l_i = gl.zeros([BLOCK_M], gl.float32, gl.SliceLayout(1, S_LAYOUT))
        acc = gl.zeros([BLOCK_M, HEAD_DIM], gl.float32, S_LAYOUT)
        mbarrier.wait(q_bar, 0)

        for t in range(0, n_t - 1):  # full tiles
            _stage_ready(STAGES)
            t2 = t + STAGES - 1  # refill the stage tile t-1 used
            _gather(k_smem.index(t2 % STAGES), v_smem.index(t2 % STAGES), k_base, v_base, nxt, stride_kn,
                    stride_vn, offs_d)
            nxt = _entries(Indices, lo, hi, t2 + 1, offs_e, BLOCK_N)
            s = _qk(q_s, k_smem.index(t % STAGES), S_LAYOUT, BLOCK_M, BLOCK_N)
            acc, m_i, l_i = _softmax_pv(s, v_smem.index(t % STAGES), acc, m_i, l_i, qk_scale, BLOCK_N, False,
                                        S_LAYOUT, P_LAYOUT, BLOCK_N)
        # the row's last (masked) tile, gathered by the pipeline like the others
        t = n_t - 1
        _stage_ready(STAGES)
        gl.thread_barrier()  # every thread's fence before any wgmma reads the tile (no refill here to add one)
        s = _qk(q_s, k_smem.index(t % STAGES), S_LAYOUT, BLOCK_M, BLOCK_N)
        acc, m_i, l_i = _softmax_pv(s, v_smem.index(t % STAGES), acc, m_i, l_i, qk_scale, cnt - t * BLOCK_N, True,
                                    S_LAYOUT, P_LAYOUT, BLOCK_N)
        cp.wait_group(0)
        mbarrier.invalidate(q_bar)
        _store_out(Out, acc, l_i, cnt == 0, b, h, qb, stride_ob, stride_oh, stride_on, N_Q, S_LAYOUT, BLOCK_M,
                   HEAD_DIM)

    @gluon.jit
    def _row_at(Order, pos, N_ROWS, ORDERED: gl.constexpr):
        """Row number at launch position ``pos`` (row 0 past the last position, so dependent loads stay in
        bounds)."""
        ok = pos < N_ROWS
        if ORDERED:
            r = gl.load(Order + gl.minimum(pos, N_ROWS - 1))
        else:
            r = pos
        return gl.where(ok, r, 0)

    @gluon.jit
    def _produce(k_smem, v_smem, stage, K, V, Indices, Offsets, Order, nxt, row_p, lo_p, hi_p, t_p, pos_p,
                 row1, lo1, hi1, row2, G, N_ROWS, H, QB, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh,
                 stride_vn, offs_e, offs_d, BLOCK_N: gl.constexpr, ORDERED: gl.constexpr):
        """Producer side of form (b): gather the item (row_p, tile t_p) whose entries ``nxt`` were loaded one item
        ago into ``stage``, step to the next item (the next row at launch position pos_p + G after the row's last
        tile, whose Offsets range was loaded a row earlier) and load its entries.  Past the program's last row the
        entries are all -1 (nothing read; the group is still committed, so group counting stays uniform)."""
        bh = row_p // QB
        b = (bh // H).to(gl.int64)
        h = (bh % H).to(gl.int64)
        _gather(k_smem.index(stage), v_smem.index(stage), K + b * stride_kb + h * stride_kh,
                V + b * stride_vb + h * stride_vh, nxt, stride_kn, stride_vn, offs_d)
        t_p = t_p + 1
        n_p = gl.maximum(gl.cdiv(hi_p - lo_p, BLOCK_N), 1)
        if t_p == n_p:  # the row's last tile was gathered: the next row (its range is already loaded)
            t_p = 0
            pos_p = pos_p + G
            row_p = row1
            lo_p = lo1
            hi_p = hi1
            row1 = row2
            lo1 = gl.load(Offsets + row2).to(gl.int32)
            hi1 = gl.load(Offsets + row2 + 1).to(gl.int32)
            row2 = _row_at(Order, pos_p + 2 * G, N_ROWS, ORDERED)
        live = pos_p < N_ROWS
        nxt = _entries(Indices, lo_p, gl.where(live, hi_p, lo_p), t_p, offs_e, BLOCK_N)
        return nxt, row_p, lo_p, hi_p, t_p, pos_p, row1, lo1, hi1, row2

    @gluon.jit
    def _fg_gluon_persistent(q_desc, K, V, Out, Offsets, Indices, Order, qk_scale,
                             stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                             stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS,
                             HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr,
                             STAGES: gl.constexpr, ORDERED: gl.constexpr, num_warps: gl.constexpr):
        """Form (b): program p of G runs launch positions p, p + G, ...; gathers run STAGES-1 tiles ahead across
        rows; the next row's Q TMA is issued once this row's last QK has read Q."""
        dtype: gl.constexpr = K.dtype.element_ty
        GATHER: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [num_warps, 1], [1, 0])
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, HEAD_DIM], dtype)

        q_smem = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        mbarrier.init(q_bar, count=1)
        q_s = q_smem.reshape([BLOCK_M, HEAD_DIM])
        offs_e = gl.arange(0, BLOCK_N, gl.SliceLayout(1, GATHER))
        offs_d = gl.arange(0, HEAD_DIM, gl.SliceLayout(0, GATHER))

        pid = gl.program_id(0)
        G = gl.num_programs(0)
        # consumer: this row; producer: starts at the same row, with the next row's range and the one after's
        # number loaded ahead
        row = _row_at(Order, pid, N_ROWS, ORDERED)
        bh = row // QB
        mbarrier.expect(q_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * BLOCK_M, 0], q_bar, q_smem)
        gl.thread_barrier()  # keeps the TMA issue ahead of the index loads
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        row1 = _row_at(Order, pid + G, N_ROWS, ORDERED)
        lo1 = gl.load(Offsets + row1).to(gl.int32)
        hi1 = gl.load(Offsets + row1 + 1).to(gl.int32)
        row2 = _row_at(Order, pid + 2 * G, N_ROWS, ORDERED)
        row_p = row
        lo_p = lo
        hi_p = hi
        t_p = 0
        pos_p = pid
        nxt = _entries(Indices, lo_p, hi_p, 0, offs_e, BLOCK_N)
        for j in gl.static_range(STAGES - 1):
            nxt, row_p, lo_p, hi_p, t_p, pos_p, row1, lo1, hi1, row2 = _produce(
                k_smem, v_smem, j, K, V, Indices, Offsets, Order, nxt, row_p, lo_p, hi_p, t_p, pos_p, row1, lo1,
                hi1, row2, G, N_ROWS, H, QB, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                offs_e, offs_d, BLOCK_N, ORDERED)

        it = 0  # items consumed by this program (stage = it % STAGES)
        phase = 0
        pos = pid
        while pos < N_ROWS:
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, BLOCK_N), 1)
            pos_n = pos + G
            row_n = _row_at(Order, pos_n, N_ROWS, ORDERED)  # the consumer's next row (used after this one)
            bh = row // QB
            m_i = gl.full([BLOCK_M], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([BLOCK_M], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([BLOCK_M, HEAD_DIM], gl.float32, S_LAYOUT)
            mbarrier.wait(q_bar, phase)
            for _t in range(0, n_t - 1):
                _stage_ready(STAGES)
                nxt, row_p, lo_p, hi_p, t_p, pos_p, row1, lo1, hi1, row2 = _produce(
                    k_smem, v_smem, (it + STAGES - 1) % STAGES, K, V, Indices, Offsets, Order, nxt, row_p, lo_p,
                    hi_p, t_p, pos_p, row1, lo1, hi1, row2, G, N_ROWS, H, QB, stride_kb, stride_kh, stride_kn,
                    stride_vb, stride_vh, stride_vn, offs_e, offs_d, BLOCK_N, ORDERED)
                s = _qk(q_s, k_smem.index(it % STAGES), S_LAYOUT, BLOCK_M, BLOCK_N)
                acc, m_i, l_i = _softmax_pv(s, v_smem.index(it % STAGES), acc, m_i, l_i, qk_scale, BLOCK_N, False,
                                            S_LAYOUT, P_LAYOUT, BLOCK_N)
                it += 1
            # last tile: once every warpgroup's QK has read Q, the next row's Q TMA goes out
            _stage_ready(STAGES)
            nxt, row_p, lo_p, hi_p, t_p, pos_p, row1, lo1, hi1, row2 = _produce(
                k_smem, v_smem, (it + STAGES - 1) % STAGES, K, V, Indices, Offsets, Order, nxt, row_p, lo_p, hi_p,
                t_p, pos_p, row1, lo1, hi1, row2, G, N_ROWS, H, QB, stride_kb, stride_kh, stride_kn, stride_vb,
                stride_vh, stride_vn, offs_e, offs_d, BLOCK_N, ORDERED)
            s = _qk(q_s, k_smem.index(it % STAGES), S_LAYOUT, BLOCK_M, BLOCK_N)
            gl.thread_barrier()
            bh_n = row_n // QB
            has_next = pos_n < N_ROWS
            mbarrier.expect(q_bar, q_desc.block_type.nbytes, pred=has_next)
            tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * BLOCK_M, 0], q_bar, q_smem,
                                            pred=has_next)
            acc, m_i, l_i = _softmax_pv(s, v_smem.index(it % STAGES), acc, m_i, l_i, qk_scale,
                                        cnt - (n_t - 1) * BLOCK_N, True, S_LAYOUT, P_LAYOUT, BLOCK_N)
            it += 1
            _store_out(Out, acc, l_i, cnt == 0, bh // H, bh % H, row % QB, stride_ob, stride_oh, stride_on, N_Q,
                       S_LAYOUT, BLOCK_M, HEAD_DIM)
            # the next row (its range: Offsets of the row number loaded at this row's start)
            lo = gl.load(Offsets + row_n).to(gl.int32)
            hi = gl.load(Offsets + row_n + 1).to(gl.int32)
            row = row_n
            pos = pos_n
            phase ^= 1
        cp.wait_group(0)
        mbarrier.invalidate(q_bar)

    # ---- form (c): warp specialization (a producer warpgroup gathers, two consumer warpgroups compute) --------
    # Partition functions get only IR values through warp_specialize, so their constants are module-level.
    _WS_BN: gl.constexpr = gl.constexpr(BLOCK_N)
    _WS_BM: gl.constexpr = gl.constexpr(BLOCK_M)
    _WS_D: gl.constexpr = gl.constexpr(HEAD_DIM)
    _WS_STAGES: gl.constexpr = gl.constexpr(STAGES)
    _WS_CONSUMER_WARPS: gl.constexpr = gl.constexpr(NUM_WARPS)
    _WS_PRODUCER_WARPS: gl.constexpr = gl.constexpr(4)

    @gluon.jit
    def _plan_row(Rows, j, j_end):
        """Row at entry ``j`` of a program's planned row list ending at entry ``j_end`` (row 0 past the end, so
        dependent loads stay in bounds)."""
        return gl.where(j < j_end, gl.load(Rows + gl.maximum(gl.minimum(j, j_end - 1), 0)), 0)

    @gluon.jit
    def _next_row(Order, pos, end, PLANNED: gl.constexpr):
        """Row at position ``pos`` of this program's row source (row 0 at or past ``end``): the host plan's list
        (``PLANNED``) or the launch order ``Order`` (the walk)."""
        if PLANNED:
            r = _plan_row(Order, pos, end)
        else:
            r = _row_at(Order, pos, end, True)
        return r

    @gluon.jit
    def _my_rows(Order, Start, N_ROWS, PLANNED: gl.constexpr):
        """This program's row source: (first position, end, step, first row).  The walk: launch positions p,
        p + G, ... < N_ROWS of ``Order``; ``PLANNED`` (the list schedule): entries Start[p] .. Start[p + 1] - 1 of
        the host plan's row list ``Order`` (``fgattn.gluon_fg_list.plan_ws2_list``), step 1."""
        pid = gl.program_id(0)
        if PLANNED:
            pos = gl.load(Start + pid)
            end = gl.load(Start + pid + 1)
            step = 1
            row = _plan_row(Order, pos, end)
        else:
            step = gl.num_programs(0)
            pos = pid
            end = N_ROWS
            row = gl.load(Order + pos)
        return pos, end, step, row

    # ---- DYN (issue 12, session 16, helper D2; kernels/NOTES.md "Session 16, D2"): the dynamic tail of the ws2 list
    # CTA, research only.  With the kernel constexpr DYN (default False: no parameter, no code, the packaged binaries
    # unchanged) each program runs its static plan list Rows[Start[p]:Start[p + 1]] and then claims rows from a shared
    # pool: ``Pool`` = [n_pool, rows heaviest first ...] (int32), ``Claim`` a global int32 counter zeroed before every
    # launch (``fgattn.gluon_fg_dyntail``).  The producer claims (one scalar atomic per claimed row, one row ahead as
    # it loads every next row's range) and hands the row to both consumer warpgroups through a 2-slot shared ring
    # (``rid``; ``rid_full`` count 1: the producer's arrival after its store; ``rid_empty`` count 2: both consumers'
    # arrivals after their loads); -1 = the pool is empty (the last claim of every program).  Deadlock-free: the
    # producer writes the claim of position x after issuing row x - 2's tiles and waits for the slot read at the
    # consumers' start of row x - 3; the consumers wait for it at their start of row x - 1 (kernels/NOTES.md).
    _RID_L: gl.constexpr = gl.BlockedLayout([1], [32], [4], [0])

    @gluon.jit
    def _dyn_row_p(Order, Pool, Claim, rid, rid_full, rid_empty, pos, end_s, live):
        """Producer: the row at position ``pos`` of this program's sequence: the plan list below ``end_s`` (the
        static end), else (if ``live``: the current row exists) a claim from the pool, written to the ring slot
        (pos - end_s) % 2 for the consumers; -1 when the pool is empty or not ``live``."""
        r = _plan_row(Order, pos, end_s)
        if pos >= end_s:
            r = pos * 0 - 1
            if live:
                c = gl.atomic_add(Claim, 1)
                n = gl.load(Pool)
                r = gl.where(c < n, gl.load(Pool + 1 + gl.maximum(gl.minimum(c, n - 1), 0)), -1)
                k = pos - end_s
                s = k % 2
                mbarrier.wait(rid_empty.index(s), ((k // 2) & 1) ^ 1)
                rid.index(s).store(gl.full([1], r, gl.int32, _RID_L))
                gl.thread_barrier()
                mbarrier.arrive(rid_full.index(s), count=1)
        return r

    @gluon.jit
    def _dyn_row_c(Order, rid, rid_full, rid_empty, pos, end_s):
        """Consumer: the row at position ``pos`` (the plan list below ``end_s``, else the producer's claim from the
        ring; -1: none)."""
        r = _plan_row(Order, pos, end_s)
        if pos >= end_s:
            k = pos - end_s
            s = k % 2
            mbarrier.wait(rid_full.index(s), (k // 2) & 1)
            r = gl.max(rid.index(s).load(_RID_L), axis=0)
            gl.thread_barrier()
            mbarrier.arrive(rid_empty.index(s), count=1)
        return r

    # ---- TIMELINE (issue 12, session 16, helper T; kernels/NOTES.md "Session 16, T"): an in-kernel timeline of the
    # ws2 list CTA, research only.  With the kernel constexpr TIMELINE (default False: no parameter, no code, the
    # packaged binaries unchanged) warp 0 lane 0 of each partition writes %clock64 (the SM's cycle counter, one clock
    # for the whole CTA) at named events into ``Tl``, an int64 buffer [programs, TL_CAP + 1, 3 roles, TL_EV slots]
    # (roles: consumer halves 0 / 1, producer 2; the row slot j is the row's position in the program's plan list; rows
    # j >= TL_CAP are not recorded; slot TL_CAP is a per-CTA header).  Slot numbers: fgattn.timeline (the decoder).
    _TL_CAP: gl.constexpr = gl.constexpr(64)
    _TL_EV: gl.constexpr = gl.constexpr(24)
    _TL_CLK: gl.constexpr = gl.constexpr("mov.u64 $0, %clock64;")
    _TL_GT: gl.constexpr = gl.constexpr("mov.u64 $0, %globaltimer;")
    _TL_SMID: gl.constexpr = gl.constexpr("mov.u32 $0, %smid;")

    @gluon.jit
    def _tl_now(dummy):
        """The SM's cycle counter (%clock64; ``dummy``: any int32 scalar, unused by the asm)."""
        return gl.inline_asm_elementwise(_TL_CLK, "=l,r", [dummy], dtype=gl.int64, is_pure=False, pack=1)

    @gluon.jit
    def _tl_gtime(dummy):
        """The global timer (%globaltimer, ns)."""
        return gl.inline_asm_elementwise(_TL_GT, "=l,r", [dummy], dtype=gl.int64, is_pure=False, pack=1)

    @gluon.jit
    def _tl_smid(dummy):
        """The SM this CTA runs on (%smid; session 16, D3: header slot 5 of role 0, to test whether slow programs
        share a TPC)."""
        return gl.inline_asm_elementwise(_TL_SMID, "=r,r", [dummy], dtype=gl.int32, is_pure=False, pack=1)

    @gluon.jit
    def _tl_slot(j, role):
        """Offset of row slot ``j`` of this program's ``role`` in the timeline buffer (int32 elements)."""
        return ((gl.program_id(0) * (_TL_CAP + 1) + gl.minimum(j, _TL_CAP)) * 3 + role) * _TL_EV

    @gluon.jit
    def _tl_put(Tl, base, j, e, v):
        """Slot ``e`` of row ``j`` (offset ``base``) := v, if the row is recorded (j < TL_CAP)."""
        gl.store(Tl + base + e, v, mask=j < _TL_CAP)

    @gluon.jit
    def _tl_mark(Tl, base, j, e):
        """Slot ``e`` of row ``j`` := the cycle counter now."""
        _tl_put(Tl, base, j, e, _tl_now(j))

    # ---- TL_HDR (issue 12, session 16, helper T2; kernels/NOTES.md "Session 16, T2"): the minimal probe of the
    # packaged kernel's end-of-launch tail.  Consumer 0 (warp 0 lane 0) only, nothing per row: at the CTA's start
    # %globaltimer, %clock64 and %smid, at its end %clock64 and %globaltimer, into ``Tl`` int64 [programs, _TL_H]
    # (slots: fgattn.timeline.HDR_SLOTS).  Knob off: no parameter, no code.
    _TL_H: gl.constexpr = gl.constexpr(8)

    @gluon.jit
    def _tl_hdr_start(Tl, dummy):
        """The minimal probe's CTA-start stores (``dummy``: any int32 scalar)."""
        base = gl.program_id(0) * _TL_H
        gl.store(Tl + base + 2, _tl_gtime(dummy))
        gl.store(Tl + base + 0, _tl_now(dummy))
        gl.store(Tl + base + 4, _tl_smid(dummy).to(gl.int64))

    @gluon.jit
    def _tl_hdr_end(Tl, dummy):
        """The minimal probe's CTA-end stores."""
        base = gl.program_id(0) * _TL_H
        gl.store(Tl + base + 1, _tl_now(dummy))
        gl.store(Tl + base + 3, _tl_gtime(dummy))

    @gluon.jit
    def _ws_producer(K, V, Offsets, Indices, Order, Start, k_smem, v_smem, full, empty, stride_kb, stride_kh,
                     stride_kn, stride_vb, stride_vh, stride_vn, H, QB, N_ROWS, PLANNED: gl.constexpr, Tl=None,
                     TIMELINE: gl.constexpr = False, Pool=None, Claim=None, rid=None, rid_full=None, rid_empty=None,
                     DYN: gl.constexpr = False):
        """Producer partition (one warpgroup): for every row of this program and every tile, the index entries
        (one tile ahead), then, once the consumers have released the stage, the K/V gathers by cp.async, whose
        completion arrives on the stage's ``full`` barrier (one arrival per thread, cp.async.mbarrier.arrive.noinc).
        The next row's range is loaded a row ahead.  This program's rows: the walk, launch positions p, p + G, ...
        of ``Order``; or (``PLANNED``, form d's list schedule) ``Order[Start[p]:Start[p + 1]]``, a host-built plan
        (``fgattn.gluon_fg_list.plan_ws2_list``).  ``TIMELINE`` (research, ``PLANNED`` only): role 2 of the timeline
        buffer ``Tl`` (see :data:`_TL_CAP`; per row: start, first ``empty`` wait done, first gathers issued (tile 0
        peeled out of the loop), end, tiles; level 2: sums over the loop's tiles of the ``empty`` waits and of the
        issue time)."""
        GATHER_P: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [_WS_PRODUCER_WARPS, 1], [1, 0])
        offs_e = gl.arange(0, _WS_BN, gl.SliceLayout(1, GATHER_P))
        offs_d = gl.arange(0, _WS_D, gl.SliceLayout(0, GATHER_P))
        pos, end, step, row = _my_rows(Order, Start, N_ROWS, PLANNED)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        if DYN:  # the sequence goes on past the static end while claims succeed (end: one past the last known row)
            gl.static_assert(PLANNED, "DYN needs the list schedule (PLANNED)")
            end_s = end
            row_n = _dyn_row_p(Order, Pool, Claim, rid, rid_full, rid_empty, pos + 1, end_s, pos < end)
            end = gl.where(row_n >= 0, gl.maximum(end, pos + 2), end)
            row_n = gl.maximum(row_n, 0)
        else:
            row_n = _next_row(Order, pos + step, end, PLANNED)
        lo_n = gl.load(Offsets + row_n).to(gl.int32)
        hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        it = 0
        if TIMELINE:
            gl.static_assert(PLANNED, "TIMELINE needs the list schedule (PLANNED)")
            pos0 = pos
            hdr = _tl_slot(_TL_CAP, 2)
            gl.store(Tl + hdr, _tl_now(pos))
        while pos < end:
            if TIMELINE:
                j = pos - pos0
                tb = _tl_slot(j, 2)
                _tl_mark(Tl, tb, j, 0)
                if TIMELINE >= 2:
                    w_sum = (j * 0).to(gl.int64)
                    i_sum = (j * 0).to(gl.int64)
            bh = row // QB
            b = (bh // H).to(gl.int64)
            h = (bh % H).to(gl.int64)
            k_base = K + b * stride_kb + h * stride_kh
            v_base = V + b * stride_vb + h * stride_vh
            n_t = gl.maximum(gl.cdiv(hi - lo, _WS_BN), 1)
            nxt = _entries(Indices, lo, hi, 0, offs_e, _WS_BN)
            if TIMELINE:  # tile 0 peeled, with its two marks (the tile loop below stays the packaged one)
                cur = nxt
                nxt = _entries(Indices, lo, hi, 1, offs_e, _WS_BN)
                st = it % _WS_STAGES
                mbarrier.wait(empty.index(st), ((it // _WS_STAGES) & 1) ^ 1)
                _tl_mark(Tl, tb, j, 1)
                ok = (cur >= 0)[:, None]
                r = gl.maximum(cur, 0)[:, None]
                cp.async_copy_global_to_shared(k_smem.index(st), k_base + r * stride_kn + offs_d[None, :], mask=ok)
                cp.async_copy_global_to_shared(v_smem.index(st), v_base + r * stride_vn + offs_d[None, :], mask=ok)
                cp.mbarrier_arrive(full.index(st), increment_count=False)
                _tl_mark(Tl, tb, j, 2)
                it += 1
                t_first: gl.constexpr = 1
            else:
                t_first: gl.constexpr = 0
            for t in range(t_first, n_t):
                cur = nxt
                nxt = _entries(Indices, lo, hi, t + 1, offs_e, _WS_BN)
                st = it % _WS_STAGES
                if TIMELINE >= 2:
                    tw = _tl_now(t)
                mbarrier.wait(empty.index(st), ((it // _WS_STAGES) & 1) ^ 1)
                if TIMELINE >= 2:
                    te = _tl_now(t)
                    w_sum += te - tw
                ok = (cur >= 0)[:, None]
                r = gl.maximum(cur, 0)[:, None]
                cp.async_copy_global_to_shared(k_smem.index(st), k_base + r * stride_kn + offs_d[None, :], mask=ok)
                cp.async_copy_global_to_shared(v_smem.index(st), v_base + r * stride_vn + offs_d[None, :], mask=ok)
                cp.mbarrier_arrive(full.index(st), increment_count=False)
                if TIMELINE >= 2:
                    ti = _tl_now(t)
                    i_sum += ti - te
                it += 1
            if TIMELINE:
                _tl_mark(Tl, tb, j, 3)
                if TIMELINE >= 2:
                    _tl_put(Tl, tb, j, 4, w_sum)
                    _tl_put(Tl, tb, j, 5, i_sum)
                _tl_put(Tl, tb, j, 6, n_t.to(gl.int64))
            pos = pos + step
            row = row_n
            lo = lo_n
            hi = hi_n
            if DYN:
                row_n = _dyn_row_p(Order, Pool, Claim, rid, rid_full, rid_empty, pos + 1, end_s, pos < end)
                end = gl.where(row_n >= 0, gl.maximum(end, pos + 2), end)
                row_n = gl.maximum(row_n, 0)
            else:
                row_n = _next_row(Order, pos + step, end, PLANNED)
            lo_n = gl.load(Offsets + row_n).to(gl.int32)
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        if TIMELINE:
            gl.store(Tl + hdr + 1, _tl_now(pos))

    @gluon.jit
    def _ws_consumer(q_desc, Out, Offsets, Order, q_smem, k_smem, v_smem, q_bar, full, empty, qk_scale, stride_ob,
                     stride_oh, stride_on, H, N_Q, QB, N_ROWS, FENCE: gl.constexpr):
        """Consumer partition (two warpgroups): per row, Q by TMA (the next row's issued once this row's last QK has
        read Q), then per tile: wait for the stage, S = Q·Kᵀ, online softmax, O += P·V, release the stage."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_WS_CONSUMER_WARPS, 1],
                                                           instr_shape=[16, _WS_BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        q_s = q_smem.reshape([_WS_BM, _WS_D])
        pid = gl.program_id(0)
        G = gl.num_programs(0)
        pos = pid
        row = gl.load(Order + pos)
        bh = row // QB
        mbarrier.expect(q_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * _WS_BM, 0], q_bar, q_smem)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        it = 0
        phase = 0
        while pos < N_ROWS:
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, _WS_BN), 1)
            pos_n = pos + G
            row_n = _row_at(Order, pos_n, N_ROWS, True)
            bh = row // QB
            m_i = gl.full([_WS_BM], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([_WS_BM], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([_WS_BM, _WS_D], gl.float32, S_LAYOUT)
            mbarrier.wait(q_bar, phase)
            for _t in range(0, n_t - 1):
                st = it % _WS_STAGES
                mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
                if FENCE:  # generic-proxy (cp.async) writes before the async-proxy (wgmma) reads
                    fence_async_shared()
                s = _qk(q_s, k_smem.index(st), S_LAYOUT, _WS_BM, _WS_BN)
                acc, m_i, l_i = _softmax_pv(s, v_smem.index(st), acc, m_i, l_i, qk_scale, _WS_BN, False, S_LAYOUT,
                                            P_LAYOUT, _WS_BN)
                gl.thread_barrier()  # both warpgroups are done with the stage
                mbarrier.arrive(empty.index(st), count=1)
                it += 1
            st = it % _WS_STAGES
            mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
            if FENCE:
                fence_async_shared()
            s = _qk(q_s, k_smem.index(st), S_LAYOUT, _WS_BM, _WS_BN)
            gl.thread_barrier()  # both warpgroups' last QK has read Q: the next row's Q may overwrite it
            bh_n = row_n // QB
            has_next = pos_n < N_ROWS
            mbarrier.expect(q_bar, q_desc.block_type.nbytes, pred=has_next)
            tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _WS_BM, 0], q_bar, q_smem,
                                            pred=has_next)
            acc, m_i, l_i = _softmax_pv(s, v_smem.index(st), acc, m_i, l_i, qk_scale, cnt - (n_t - 1) * _WS_BN,
                                        True, S_LAYOUT, P_LAYOUT, _WS_BN)
            gl.thread_barrier()
            mbarrier.arrive(empty.index(st), count=1)
            it += 1
            _store_out(Out, acc, l_i, cnt == 0, bh // H, bh % H, row % QB, stride_ob, stride_oh, stride_on, N_Q,
                       S_LAYOUT, _WS_BM, _WS_D)
            lo = gl.load(Offsets + row_n).to(gl.int32)
            hi = gl.load(Offsets + row_n + 1).to(gl.int32)
            row = row_n
            pos = pos_n
            phase ^= 1

    @gluon.jit
    def _fg_gluon_ws(q_desc, K, V, Out, Offsets, Indices, Order, qk_scale,
                     stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                     stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS,
                     HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                     PRODUCER_REGS: gl.constexpr, num_warps: gl.constexpr, CONSUMER_FENCE: gl.constexpr = True):
        """Form (c): persistent, warp-specialized: program p of G runs launch positions p, p + G, ... (``Order``
        always given); a producer warpgroup runs ahead through the rows' index entries and gathers (bounded by the
        STAGES-deep ring, with full / empty mbarriers per stage), so a row's start and end overlap the neighbouring
        rows' tiles without any cross-row code in the consumers."""
        gl.static_assert(HEAD_DIM == _WS_D and BLOCK_M == _WS_BM and BLOCK_N == _WS_BN and STAGES == _WS_STAGES)
        gl.static_assert(num_warps == _WS_CONSUMER_WARPS)
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, HEAD_DIM], dtype)
        q_smem = gl.allocate_shared_memory(dtype, q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_bar, count=1)
        for i in gl.static_range(STAGES):
            mbarrier.init(full.index(i), count=_WS_PRODUCER_WARPS * 32)
            mbarrier.init(empty.index(i), count=1)
        gl.warp_specialize([
            (_ws_consumer, (q_desc, Out, Offsets, Order, q_smem, k_smem, v_smem, q_bar, full, empty, qk_scale,
                            stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, CONSUMER_FENCE)),
            (_ws_producer, (K, V, Offsets, Indices, Order, Order, k_smem, v_smem, full, empty, stride_kb,
                            stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, N_ROWS, False)),
        ], [_WS_PRODUCER_WARPS], [PRODUCER_REGS])
        mbarrier.invalidate(q_bar)
        for i in gl.static_range(STAGES):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))

    # ---- form (d): as (c), the two consumer warpgroups in two partitions (64 query rows each, no shared barrier) --
    _WS2_HALF_M: gl.constexpr = gl.constexpr(BLOCK_M // 2)
    _WS2_WG_WARPS: gl.constexpr = gl.constexpr(4)

    @gluon.jit
    def _ws2_consumer(half, q_desc, Out, Offsets, Order, q_smem, k_smem, v_smem, q_bar, full, empty, qk_scale,
                      stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, FENCE: gl.constexpr):
        """One consumer warpgroup of form (d): query rows [64·half, 64·half + 64) of every row (query block) of this
        program, its own Q half (TMA, own mbarrier and buffer, reloaded for the next row once its own last QK has
        read it), the K/V stages shared with the other half (each half arrives once on ``empty``, count 2), so the
        two warpgroups drift freely: one's softmax can overlap the other's wgmma."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_WS2_WG_WARPS, 1],
                                                           instr_shape=[16, _WS_BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        q_s = my_q.reshape([_WS2_HALF_M, _WS_D])
        pid = gl.program_id(0)
        G = gl.num_programs(0)
        pos = pid
        row = gl.load(Order + pos)
        bh = row // QB
        mbarrier.expect(my_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * _WS_BM + half * _WS2_HALF_M, 0],
                                        my_bar, my_q)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        it = 0
        phase = 0
        while pos < N_ROWS:
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, _WS_BN), 1)
            pos_n = pos + G
            row_n = _row_at(Order, pos_n, N_ROWS, True)
            bh = row // QB
            m_i = gl.full([_WS2_HALF_M], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([_WS2_HALF_M], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([_WS2_HALF_M, _WS_D], gl.float32, S_LAYOUT)
            mbarrier.wait(my_bar, phase)
            for _t in range(0, n_t - 1):
                st = it % _WS_STAGES
                mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
                if FENCE:  # generic-proxy (cp.async) writes before the async-proxy (wgmma) reads
                    fence_async_shared()
                s = _qk(q_s, k_smem.index(st), S_LAYOUT, _WS2_HALF_M, _WS_BN)
                acc, m_i, l_i = _softmax_pv(s, v_smem.index(st), acc, m_i, l_i, qk_scale, _WS_BN, False, S_LAYOUT,
                                            P_LAYOUT, _WS_BN)
                gl.thread_barrier()  # this warpgroup is done with the stage
                mbarrier.arrive(empty.index(st), count=1)
                it += 1
            st = it % _WS_STAGES
            mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
            if FENCE:
                fence_async_shared()
            s = _qk(q_s, k_smem.index(st), S_LAYOUT, _WS2_HALF_M, _WS_BN)
            gl.thread_barrier()  # this warpgroup's last QK has read its Q half
            bh_n = row_n // QB
            has_next = pos_n < N_ROWS
            mbarrier.expect(my_bar, q_desc.block_type.nbytes, pred=has_next)
            tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _WS_BM + half * _WS2_HALF_M,
                                                     0], my_bar, my_q, pred=has_next)
            acc, m_i, l_i = _softmax_pv(s, v_smem.index(st), acc, m_i, l_i, qk_scale, cnt - (n_t - 1) * _WS_BN,
                                        True, S_LAYOUT, P_LAYOUT, _WS_BN)
            gl.thread_barrier()
            mbarrier.arrive(empty.index(st), count=1)
            it += 1
            _store_out(Out, acc, l_i, cnt == 0, bh // H, bh % H, (row % QB) * 2 + half, stride_ob, stride_oh,
                       stride_on, N_Q, S_LAYOUT, _WS2_HALF_M, _WS_D)
            lo = gl.load(Offsets + row_n).to(gl.int32)
            hi = gl.load(Offsets + row_n + 1).to(gl.int32)
            row = row_n
            pos = pos_n
            phase ^= 1

    # ---- form (d) knobs (helper G2, kernels/NOTES.md "Gluon round 2"): a second consumer body, used only when a
    # knob is on, so the default form's SASS is unchanged.  FlashAttention-3's two schedules (Shah et al.,
    # "FlashAttention-3: Fast and Accurate Attention with Asynchrony and Low-precision", arXiv 2407.08608, sec. 3.1-3.2)
    # in this kernel's terms:
    # * PIPE (intra-warpgroup overlap): tile j's QK wgmma and tile j-1's PV wgmma are issued together, the QK waited
    #   with one group still outstanding (the PV), tile j's softmax runs while the PV is on the tensor cores, then the
    #   PV is waited; O is rescaled by tile j's alpha before the next PV; a stage is released one tile later (after
    #   its PV).  PIPE 3: as 1, plus the next tile's full-barrier wait before the PV wait (see the loop).
    # * PINGPONG (inter-warpgroup): the two consumer warpgroups take turns issuing their wgmmas (named barriers
    #   _PP_BAR + half, 256 threads: wait for my turn, issue, hand the turn to the other), so one's softmax overlaps
    #   the other's GEMMs.  Barrier ids 0-3 are Triton's (CTA / partitions); 10 and 11 are free.
    # * EXP_POLY 4: one of every 4 consecutive P elements by fgattn.attention's FMA polynomial (the same PTX).
    _PP_BAR: gl.constexpr = gl.constexpr(10)
    _EXP2_PTX4: gl.constexpr = gl.constexpr(_exp2_poly_ptx(4))
    _PP_SYNC: gl.constexpr = gl.constexpr("bar.sync $1, 256; mov.u32 $0, 0;")
    _PP_ARRIVE: gl.constexpr = gl.constexpr("bar.arrive $1, 256; mov.u32 $0, 0;")

    @gluon.jit
    def _pp_sync(bar_id):
        """Named-barrier wait (256 threads: this warpgroup's 128 + the other's 128 arrivals); once per thread."""
        return gl.inline_asm_elementwise(_PP_SYNC, "=r,r", [bar_id], dtype=gl.int32, is_pure=False, pack=1)

    @gluon.jit
    def _pp_arrive(bar_id):
        """Named-barrier arrival without waiting (hands the wgmma turn to the other warpgroup)."""
        return gl.inline_asm_elementwise(_PP_ARRIVE, "=r,r", [bar_id], dtype=gl.int32, is_pure=False, pack=1)

    @gluon.jit
    def _exp2_sel(x, EXP_POLY: gl.constexpr):
        """2^x: MUFU.EX2, or (EXP_POLY 4) one element of every 4 consecutive register elements by the polynomial."""
        if EXP_POLY == 4:
            y = gl.inline_asm_elementwise(_EXP2_PTX4, "=f,=f,=f,=f,f,f,f,f", [x], dtype=gl.float32, is_pure=True,
                                          pack=4)
        else:
            gl.static_assert(EXP_POLY == 0)
            y = gl.exp2(x)
        return y

    @gluon.jit
    def _softmax_p(s, m_i, l_i, qk_scale, n_valid, MASKED: gl.constexpr, S_LAYOUT: gl.constexpr,
                   P_LAYOUT: gl.constexpr, BLOCK_N: gl.constexpr, EXP_POLY: gl.constexpr, dtype: gl.constexpr):
        """Online softmax of one score tile without the PV step: P (fp32, in the score layout: converted to the PV
        operand by :func:`_p_op` only once the previous PV has finished, so that only one bf16 P is ever live, as
        FlashAttention-3 orders it), alpha, the new running max and sum."""
        if MASKED:
            cols = gl.arange(0, BLOCK_N, gl.SliceLayout(0, S_LAYOUT))
            s = gl.where((cols < n_valid)[None, :], s, float("-inf"))
        m_new = gl.maximum(m_i, gl.max(s, 1) * qk_scale)
        p = _exp2_sel(s * qk_scale - m_new[:, None], EXP_POLY)
        alpha = gl.exp2(m_i - m_new)
        l_i = l_i * alpha + gl.sum(p, 1)
        return p, alpha, m_new, l_i

    @gluon.jit
    def _p_op(p, P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """P as the PV wgmma's register A operand."""
        return gl.convert_layout(p.to(dtype), P_LAYOUT)

    @gluon.jit
    def _carry_p(p, PIPE: gl.constexpr, P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """P as carried to the next tile: PIPE 1 the bf16 PV operand (converted right after the previous PV's
        wait), PIPE 2 fp32 (converted at the top of the next tile, before its QK; see :func:`_ws2x_consumer`)."""
        if PIPE == 2:
            r = p
        else:
            r = _p_op(p, P_LAYOUT, dtype)
        return r

    @gluon.jit
    def _use_p(pc, PIPE: gl.constexpr, P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """The PV operand from the carried P (:func:`_carry_p`)."""
        if PIPE == 2:
            r = _p_op(pc, P_LAYOUT, dtype)
        else:
            r = pc
        return r

    @gluon.jit
    def _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, pred):
        """This warpgroup's Q half of its next row by TMA (after its last QK of this row has read Q)."""
        gl.thread_barrier()
        bh_n = row_n // QB
        mbarrier.expect(my_bar, q_desc.block_type.nbytes, pred=pred)
        tma.async_copy_global_to_shared(q_desc, [bh_n // H, bh_n % H, (row_n % QB) * _WS_BM + half * _WS2_HALF_M, 0],
                                        my_bar, my_q, pred=pred)

    # Row-end knobs of :func:`_ws2x_consumer` (PIPE path only; off = the packaged entry's code, session 14, helper E:
    # kernels/NOTES.md "Session 14 research: fg row end"; folded into this consumer by K4):
    # * TMA_O: O leaves through shared memory and one TMA bulk store per warpgroup (``o_desc``, [1, 1, 64, D] boxes)
    #   instead of per-thread STG.  The staging buffer is the row's last K stage (32 KB = the two warpgroups' 16 KB O
    #   halves), free once both warpgroups' last QK has read it: they meet on named barrier _O_BAR (256 threads)
    #   before writing O there.  The store is not waited for at the row end: the stage is released to the producer
    #   at the next row's start, after its tile-0 QK is issued and the bulk store has read the stage (after the last
    #   row: before exit).  Not with PINGPONG (the row-end meeting would undo the turns' offset).
    # * OFFS_AHEAD: the next row's (lo, hi) loaded at this row's start, not after the store at its end.
    # * RCP: O = acc * (1 / l), one reciprocal per query row; a row with no kept key zeroed by a uniform branch
    #   (True), or by a select per element (2: the branch alone moves the tile loop's register allocation and
    #   schedule, 1,066 -> 1,082 static stall cycles per tile; kernels/NOTES.md "Session 14, K6").
    _O_BAR: gl.constexpr = gl.constexpr(12)

    @gluon.jit
    def _normalize(acc, l_i, cnt, RCP: gl.constexpr):
        """O = acc / l (zeros for a row with no kept key): a division and a select per element, or (``RCP``) one
        reciprocal per query row and a uniform branch for the empty row, or (``RCP`` 2) one reciprocal per query
        row and a select per element and per row (no branch; kernels/NOTES.md "Session 14, K6")."""
        if RCP == 2:  # no branch: a uniform branch here re-allocates the tile loop (+15 stall cycles per tile)
            empty = cnt == 0  # the empty row's acc and l are NaN: both factors selected to 0 (FSEL before the FMUL)
            out = gl.where(empty, 0.0, acc) * gl.where(empty, 0.0, 1.0 / l_i)[:, None]
        elif RCP:
            if cnt == 0:
                out = gl.zeros_like(acc)
            else:
                out = acc * (1.0 / l_i)[:, None]
        else:
            l_safe = gl.where(l_i == 0.0, 1.0, l_i)
            out = gl.where(cnt == 0, 0.0, acc / l_safe[:, None])
        return out

    @gluon.jit
    def _store_tma(o_desc, out, k_stage, b, h, qb2, half, dtype: gl.constexpr):
        """O half ``qb2`` through shared memory (TMA_O): both warpgroups meet (their last QK has read the K stage),
        each writes its half into its 16 KB of the stage and issues one TMA bulk store (rows past N clipped by the
        descriptor; not waited for here: :func:`_release_after_store` at the next row's start)."""
        _pp_sync(_O_BAR)
        o_all = k_stage._reinterpret(dtype, [2] + o_desc.block_type.shape, o_desc.layout)
        o_s = o_all.index(half)
        o_s.reshape([_WS2_HALF_M, _WS_D]).store(out.to(dtype))
        fence_async_shared()
        gl.thread_barrier()
        tma.async_copy_shared_to_global(o_desc, [b, h, qb2 * _WS2_HALF_M, 0], o_s)

    @gluon.jit
    def _store_tma_tl(o_desc, out, k_stage, b, h, qb2, half, dtype: gl.constexpr):
        """:func:`_store_tma` with the TIMELINE's cycle counter read after the meeting, after O is staged and after
        the store is issued (returned, stored by the caller after the store: a global store before the fence would
        make its MEMBAR wait for it)."""
        _pp_sync(_O_BAR)
        t_met = _tl_now(qb2)
        o_all = k_stage._reinterpret(dtype, [2] + o_desc.block_type.shape, o_desc.layout)
        o_s = o_all.index(half)
        o_s.reshape([_WS2_HALF_M, _WS_D]).store(out.to(dtype))
        fence_async_shared()
        gl.thread_barrier()
        t_staged = _tl_now(qb2)
        tma.async_copy_shared_to_global(o_desc, [b, h, qb2 * _WS2_HALF_M, 0], o_s)
        return t_met, t_staged, _tl_now(qb2)

    @gluon.jit
    def _release_after_store(empty, stage):
        """Wait until this warpgroup's outstanding O bulk store has read its shared memory
        (``cp.async.bulk.wait_group.read 0``), then release that K/V ``stage`` to the producer."""
        tma.store_wait(0)
        gl.thread_barrier()
        mbarrier.arrive(empty.index(stage), count=1)

    @gluon.jit
    def _sync_tile(q_s, k_smem, v_smem, full, empty, st, it, acc, m_i, l_i, zero_s, qk_scale, n_valid, q_desc, my_bar,
                   my_q, row_n, half, QB, H, has_next, my_turn, other_turn, LAST: gl.constexpr, FENCE: gl.constexpr,
                   EXP_POLY: gl.constexpr, PINGPONG: gl.constexpr, S_LAYOUT: gl.constexpr, P_LAYOUT: gl.constexpr,
                   dtype: gl.constexpr):
        """One tile of form d's synchronous order (wait stage, QK, softmax, PV, release), with the PINGPONG turns
        around each wgmma and EXP_POLY; ``LAST``: the row's masked tile, after whose QK the next Q half is loaded."""
        mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
        if FENCE:
            fence_async_shared()
        if PINGPONG:
            _pp_sync(my_turn)
        s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        if PINGPONG:
            _pp_arrive(other_turn)
        s = warpgroup_mma_wait(0, deps=(s, ))
        if LAST:
            _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next)
        p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, n_valid, LAST, S_LAYOUT, P_LAYOUT, _WS_BN, EXP_POLY,
                                        dtype)
        p = _p_op(p, P_LAYOUT, dtype)
        acc = acc * alpha[:, None]
        if PINGPONG:
            _pp_sync(my_turn)
        acc = warpgroup_mma(p, v_smem.index(st), acc, is_async=True)
        if PINGPONG:
            _pp_arrive(other_turn)
        acc, p = warpgroup_mma_wait(0, deps=(acc, p))
        gl.thread_barrier()  # this warpgroup is done with the stage
        mbarrier.arrive(empty.index(st), count=1)
        return acc, m_i, l_i

    # TAIL64 (research, kernels/NOTES.md "Session 15, K8"): at d <= 0.05 a row has 4-15 packed 128-key tiles and its
    # last one is on average half empty; when it holds <= 64 kept keys, its QK is an m64n64 wgmma on the stage's first
    # 64 K rows, its softmax runs on 64 x 64 scores and its PV is a k64 wgmma on the first 64 V rows (the producer is
    # unchanged: it gathers the stage as before, rows past the row's end zero-filled).
    @gluon.jit
    def _tail64(q_s, k_smem, v_smem, full, empty, it, prev, pc, acc, alpha, m_i, l_i, qk_scale, n_valid, q_desc,
                my_bar, my_q, row_n, half, QB, H, has_next, FENCE: gl.constexpr, PIPE: gl.constexpr,
                EXP_POLY: gl.constexpr, S_LAYOUT: gl.constexpr, P_LAYOUT: gl.constexpr, dtype: gl.constexpr):
        """The row's last tile (``n_valid`` <= 64 kept keys) in 64-key form, with the previous tile's PV in flight
        beside its QK as the 128-key form, then its own PV: -> (acc, m_i, l_i, its stage, it + 1)."""
        HALF_N: gl.constexpr = _WS_BN // 2
        S64: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_WS2_WG_WARPS, 1],
                                                      instr_shape=[16, HALF_N, 16])
        ROW64: gl.constexpr = gl.SliceLayout(1, S64)
        ROW: gl.constexpr = gl.SliceLayout(1, S_LAYOUT)
        st = it % _WS_STAGES
        mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
        if FENCE:
            fence_async_shared()
        p_op = _use_p(pc, PIPE, P_LAYOUT, dtype)
        zero64 = gl.zeros([_WS2_HALF_M, HALF_N], gl.float32, S64)
        s = warpgroup_mma(q_s, k_smem.index(st).slice(0, HALF_N).permute((1, 0)), zero64, use_acc=False,
                          is_async=True)
        acc = acc * alpha[:, None]
        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
        s = warpgroup_mma_wait(1, deps=(s, ))
        _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next)
        p, a64, m64, l64 = _softmax_p(s, gl.convert_layout(m_i, ROW64), gl.convert_layout(l_i, ROW64), qk_scale,
                                      n_valid, True, S64, P_LAYOUT, HALF_N, EXP_POLY, dtype)
        acc, p_op, p, a64, m64, l64 = warpgroup_mma_wait(0, deps=(acc, p_op, p, a64, m64, l64))
        gl.thread_barrier()  # this warpgroup is done with the previous tile's stage
        mbarrier.arrive(empty.index(prev), count=1)
        acc = acc * gl.convert_layout(a64, ROW)[:, None]
        p_op = _p_op(p, P_LAYOUT, dtype)  # [64, 64]: the k64 PV's register A operand
        acc = warpgroup_mma(p_op, v_smem.index(st).slice(0, HALF_N), acc, is_async=True)
        acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
        return acc, gl.convert_layout(m64, ROW), gl.convert_layout(l64, ROW), st, it + 1

    @gluon.jit
    def _ws2x_consumer(half, q_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                       qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, FENCE: gl.constexpr,
                       PIPE: gl.constexpr, EXP_POLY: gl.constexpr, PINGPONG: gl.constexpr, PLANNED: gl.constexpr,
                       o_desc=None, TMA_O: gl.constexpr = False, OFFS_AHEAD: gl.constexpr = False,
                       RCP: gl.constexpr = False, TAIL64: gl.constexpr = False, Tl=None, TIMELINE: gl.constexpr = False,
                       DEFER_O: gl.constexpr = False, rid=None, rid_full=None, rid_empty=None,
                       DYN: gl.constexpr = False, TL_HDR: gl.constexpr = False):
        """Form (d)'s consumer with the round-2 knobs (PIPE, PINGPONG, EXP_POLY; FENCE as form d).  Same stages,
        barriers and outputs as :func:`_ws2_consumer`; rows as :func:`_ws_producer` (the walk, or ``PLANNED``
        the host plan's ``Order[Start[p]:Start[p + 1]]``).  Row-end knobs TMA_O (``o_desc``), OFFS_AHEAD, RCP
        (PIPE only, TMA_O not with PINGPONG: checked on the host by :func:`check_ws2_knobs` /
        ``gluon_fg_epilogue.check_epilogue_knobs``; see :data:`_O_BAR`'s comment); all off = the packaged code.
        ``TAIL64`` (research; PIPE without PINGPONG; kernels/NOTES.md "Session 15, K8"): a row of >= 2 tiles whose
        last (masked) tile holds <= 64 kept keys runs that tile as :func:`_tail64`; the tile loop's source is
        unchanged.  ``TIMELINE`` (research; PIPE 1, TMA_O, ``PLANNED``, no TAIL64): role ``half`` of the
        timeline buffer ``Tl`` (:data:`_TL_CAP`; slots in ``fgattn.timeline``).  ``DEFER_O`` (row end ``"tma_defer"``,
        issue 12 session 16, helper T; PIPE 1, TMA_O, OFFS_AHEAD, no PINGPONG / TAIL64): a row's O, normalised to
        bf16 / fp16 after its last PV, is held in registers and staged / stored (the meeting on _O_BAR, the TMA bulk
        store, the stage's release) only after the next row's tile-0 QK is issued, so that this row-end work runs
        under that QK instead of with the tensor cores idle (the in-kernel timeline, kernels/NOTES.md "Session 16,
        T"); the program's last row's O after the loop.  ``TL_HDR`` (research, issue 12 session 16, helper T2; not
        with TIMELINE): the minimal probe, :func:`_tl_hdr_start` / :func:`_tl_hdr_end` (consumer 0 only)."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_WS2_WG_WARPS, 1],
                                                           instr_shape=[16, _WS_BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        dtype: gl.constexpr = k_smem.dtype
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        q_s = my_q.reshape([_WS2_HALF_M, _WS_D])
        my_turn = _PP_BAR + half
        other_turn = _PP_BAR + 1 - half
        pos, end, step, row = _my_rows(Order, Start, N_ROWS, PLANNED)
        if DYN:  # the static end; ``end`` grows by one with every claimed row (the producer's ring, _dyn_row_c)
            gl.static_assert(PLANNED, "DYN needs the list schedule (PLANNED)")
            end_s = end
        if DEFER_O:
            gl.static_assert(TMA_O and OFFS_AHEAD and PIPE == 1 and not PINGPONG and not TAIL64,
                             "DEFER_O needs TMA_O, OFFS_AHEAD, PIPE 1, no PINGPONG / TAIL64")
            o_pend = gl.zeros([_WS2_HALF_M, _WS_D], dtype, S_LAYOUT)  # the previous row's O (bf16 / fp16)
            if DEFER_O == 2:  # the previous row's last PV, not yet issued: its accumulator, P operand, alpha, l, count
                acc_pv = gl.zeros([_WS2_HALF_M, _WS_D], gl.float32, S_LAYOUT)
                p_pv = gl.zeros([_WS2_HALF_M, _WS_BN], dtype, P_LAYOUT)
                alpha_pv = gl.zeros([_WS2_HALF_M], gl.float32, gl.SliceLayout(1, S_LAYOUT))
                o_l = alpha_pv
                o_cnt = pos * 0
            o_b = pos * 0
            o_h = o_b
            o_q = o_b
        if TIMELINE:
            gl.static_assert(PLANNED and TMA_O and PIPE == 1 and not TAIL64,
                             "TIMELINE needs PLANNED, TMA_O, PIPE 1, no TAIL64")
            pos0 = pos
            hdr = _tl_slot(_TL_CAP, half)
            gl.store(Tl + hdr, _tl_now(pos))
            if half == 0:
                gl.store(Tl + hdr + 2, _tl_gtime(pos))
                gl.store(Tl + hdr + 4, (end - pos).to(gl.int64))
                gl.store(Tl + hdr + 5, _tl_smid(pos).to(gl.int64))
        if TL_HDR:
            gl.static_assert(not TIMELINE, "TL_HDR is the header-only probe: not with TIMELINE")
            if half == 0:
                _tl_hdr_start(Tl, pos)
        bh = row // QB
        mbarrier.expect(my_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * _WS_BM + half * _WS2_HALF_M, 0],
                                        my_bar, my_q)
        if PINGPONG:  # warpgroup 0 takes the first turn: warpgroup 1 pre-arrives on its barrier
            if half == 1:
                _pp_arrive(other_turn)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        it = 0
        phase = 0
        while pos < end:
            if TIMELINE:
                j = pos - pos0
                tb = _tl_slot(j, half)
                _tl_mark(Tl, tb, j, 0)
            if DEFER_O == 2:  # the previous row's last PV first (the first row: a PV of zeros, discarded)
                o_st = (it + _WS_STAGES - 1) % _WS_STAGES
                acc_fly = warpgroup_mma(p_pv, v_smem.index(o_st), acc_pv * alpha_pv[:, None], is_async=True)
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, _WS_BN), 1)
            if TAIL64:  # the last tile holds <= 64 kept keys (its stage's rows 64.. are the producer's zeros)
                tail = (n_t > 1) & (cnt - (n_t - 1) * _WS_BN <= _WS_BN // 2)
            else:  # a constexpr: the branch below is static (a plain False would become an i1 tensor)
                tail: gl.constexpr = False
            pos_n = pos + step
            if DYN:
                row_n = _dyn_row_c(Order, rid, rid_full, rid_empty, pos_n, end_s)
                end = gl.where(row_n >= 0, gl.maximum(end, pos_n + 1), end)
                row_n = gl.maximum(row_n, 0)
            else:
                row_n = _next_row(Order, pos_n, end, PLANNED)
            has_next = pos_n < end
            if OFFS_AHEAD:  # the next row's range now, used at this row's end
                lo_n = gl.load(Offsets + row_n).to(gl.int32)
                hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
            bh = row // QB
            m_i = gl.full([_WS2_HALF_M], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([_WS2_HALF_M], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([_WS2_HALF_M, _WS_D], gl.float32, S_LAYOUT)
            zero_s = gl.zeros([_WS2_HALF_M, _WS_BN], gl.float32, S_LAYOUT)
            mbarrier.wait(my_bar, phase)
            if TIMELINE:
                _tl_mark(Tl, tb, j, 1)
            if PIPE:
                # tile 0: QK alone; its softmax masked (columns >= min(cnt, BN) are not kept keys).  PIPE 1: P is
                # carried between tiles as the bf16 PV operand (converted after the previous PV's wait, as FA3);
                # PIPE 2: carried in fp32 (the score registers) and converted at the top of the next tile before its
                # QK, so the bf16 P is not live across the back edge while its PV is in flight (offline, Triton 3.6
                # sm_90, PIPE 1 at 216 registers: ptxas reuses P's registers and hoists the PV wait above the softmax)
                st = it % _WS_STAGES
                mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
                if TIMELINE:
                    _tl_mark(Tl, tb, j, 2)
                if FENCE:
                    fence_async_shared()
                if PINGPONG:
                    _pp_sync(my_turn)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                if TIMELINE:
                    _tl_mark(Tl, tb, j, 3)
                if PINGPONG:
                    _pp_arrive(other_turn)
                if DEFER_O == 2:  # the previous row's last PV (issued before this QK) done, this QK in flight
                    acc_done, p_done = warpgroup_mma_wait(1, deps=(acc_fly, p_pv))
                    if it > 0:  # its O under this QK
                        _store_tma(o_desc, _normalize(acc_done, o_l, o_cnt, RCP).to(dtype), k_smem.index(o_st), o_b,
                                   o_h, o_q, half, dtype)
                        _release_after_store(empty, o_st)
                elif DEFER_O:  # under this QK: the previous row's O (meeting, staging, TMA store, stage release)
                    if it > 0:
                        o_st = (it + _WS_STAGES - 1) % _WS_STAGES
                        _store_tma(o_desc, o_pend, k_smem.index(o_st), o_b, o_h, o_q, half, dtype)
                        _release_after_store(empty, o_st)
                elif TMA_O:  # the previous row's O store has had this row's start to read its stage
                    if it > 0:
                        _release_after_store(empty, (it + _WS_STAGES - 1) % _WS_STAGES)
                if TIMELINE:
                    _tl_mark(Tl, tb, j, 4)
                s = warpgroup_mma_wait(0, deps=(s, ))
                if TIMELINE:
                    _tl_mark(Tl, tb, j, 5)
                    fw_sum = (j * 0).to(gl.int64)
                _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next & (n_t == 1))
                p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, gl.minimum(cnt, _WS_BN), True, S_LAYOUT,
                                                P_LAYOUT, _WS_BN, EXP_POLY, dtype)
                pc = _carry_p(p, PIPE, P_LAYOUT, dtype)
                prev = st
                it += 1
                for _t in range(1, n_t - 1):  # full tiles: QK(t) and PV(t-1) in flight together
                    st = it % _WS_STAGES
                    if TIMELINE >= 2:
                        tw = _tl_now(_t)
                    mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
                    if TIMELINE >= 2:
                        fw_sum += _tl_now(_t) - tw
                    if FENCE:
                        fence_async_shared()
                    p_op = _use_p(pc, PIPE, P_LAYOUT, dtype)
                    if PINGPONG:
                        _pp_sync(my_turn)
                    s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                    acc = acc * alpha[:, None]  # the previous tile's alpha, while this QK runs
                    acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                    if TIMELINE >= 2:
                        _tl_put(Tl, tb, gl.where(_t == 1, j, _TL_CAP), 6, _tl_now(_t))
                    if PINGPONG:
                        _pp_arrive(other_turn)
                    s = warpgroup_mma_wait(1, deps=(s, ))
                    p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, _WS_BN, False, S_LAYOUT, P_LAYOUT,
                                                    _WS_BN, EXP_POLY, dtype)
                    if PIPE == 3:  # the next tile's full wait here: its retry branch ends the block, so ptxas cannot
                        # hoist the PV wait above the softmax (the next tile always exists inside this loop)
                        mbarrier.wait(full.index((it + 1) % _WS_STAGES), ((it + 1) // _WS_STAGES) & 1)
                    # the softmax's results are the wait's deps (kept before it in program order)
                    acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                    pc = _carry_p(p, PIPE, P_LAYOUT, dtype)
                    gl.thread_barrier()  # this warpgroup is done with the previous tile's stage
                    mbarrier.arrive(empty.index(prev), count=1)
                    prev = st
                    it += 1
                if TIMELINE:
                    _tl_mark(Tl, tb, j, 7)
                    _tl_put(Tl, tb, j, 17, fw_sum)
                    _tl_put(Tl, tb, j, 18, n_t.to(gl.int64))
                if tail:
                    acc, m_i, l_i, prev, it = _tail64(q_s, k_smem, v_smem, full, empty, it, prev, pc, acc, alpha,
                                                      m_i, l_i, qk_scale, cnt - (n_t - 1) * _WS_BN, q_desc, my_bar,
                                                      my_q, row_n, half, QB, H, has_next, FENCE, PIPE, EXP_POLY,
                                                      S_LAYOUT, P_LAYOUT, dtype)
                else:
                    if TIMELINE:  # the row end's marks are stored after its O store is issued (see _store_tma_tl)
                        t8 = (j * 0 - 1).to(gl.int64)
                        t9 = t8
                        t10 = t8
                        t11 = t8
                    if n_t > 1:  # the row's last (masked) tile
                        st = it % _WS_STAGES
                        if TIMELINE:
                            t8 = _tl_now(j)
                        mbarrier.wait(full.index(st), (it // _WS_STAGES) & 1)
                        if TIMELINE:
                            t9 = _tl_now(j)
                        if FENCE:
                            fence_async_shared()
                        p_op = _use_p(pc, PIPE, P_LAYOUT, dtype)
                        if PINGPONG:
                            _pp_sync(my_turn)
                        s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                        acc = acc * alpha[:, None]
                        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                        if TIMELINE:
                            _tl_put(Tl, tb, gl.where(n_t == 2, j, _TL_CAP), 6, _tl_now(n_t))
                        if PINGPONG:
                            _pp_arrive(other_turn)
                        s = warpgroup_mma_wait(1, deps=(s, ))
                        if TIMELINE:
                            t10 = _tl_now(j)
                        _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next)
                        p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, cnt - (n_t - 1) * _WS_BN, True,
                                                        S_LAYOUT, P_LAYOUT, _WS_BN, EXP_POLY, dtype)
                        acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                        if TIMELINE:
                            t11 = _tl_now(j)
                        pc = _carry_p(p, PIPE, P_LAYOUT, dtype)
                        gl.thread_barrier()
                        mbarrier.arrive(empty.index(prev), count=1)
                        prev = st
                        it += 1
                    # the last tile's PV (DEFER_O 2: issued at the next row's start, first)
                    p_op = _use_p(pc, PIPE, P_LAYOUT, dtype)
                    if DEFER_O == 2:
                        acc_pv = acc
                        p_pv = p_op
                        alpha_pv = alpha
                    else:
                        acc = acc * alpha[:, None]
                        if PINGPONG:
                            _pp_sync(my_turn)
                        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                        if PINGPONG:
                            _pp_arrive(other_turn)
                        acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
                    if TIMELINE:
                        t12 = _tl_now(j)
                if DEFER_O == 2:  # O normalised at the next row's tile 0, once its last PV is done
                    o_l = l_i
                    o_cnt = cnt
                    o_b = bh // H
                    o_h = bh % H
                    o_q = (row % QB) * 2 + half
                elif DEFER_O:  # O held until the next row's tile-0 QK is issued (or the loop ends)
                    o_pend = _normalize(acc, l_i, cnt, RCP).to(dtype)
                    o_b = bh // H
                    o_h = bh % H
                    o_q = (row % QB) * 2 + half
                elif TMA_O:  # O staged in the last K stage; the stage released once the bulk store has read it
                    if TIMELINE:
                        t13, t14, t15 = _store_tma_tl(o_desc, _normalize(acc, l_i, cnt, RCP), k_smem.index(prev),
                                                      bh // H, bh % H, (row % QB) * 2 + half, half, dtype)
                        _tl_put(Tl, tb, j, 8, t8)
                        _tl_put(Tl, tb, j, 9, t9)
                        _tl_put(Tl, tb, j, 10, t10)
                        _tl_put(Tl, tb, j, 11, t11)
                        _tl_put(Tl, tb, j, 12, t12)
                        _tl_put(Tl, tb, j, 13, t13)
                        _tl_put(Tl, tb, j, 14, t14)
                        _tl_put(Tl, tb, j, 15, t15)
                    else:
                        _store_tma(o_desc, _normalize(acc, l_i, cnt, RCP), k_smem.index(prev), bh // H, bh % H,
                                   (row % QB) * 2 + half, half, dtype)
                else:
                    gl.thread_barrier()
                    mbarrier.arrive(empty.index(prev), count=1)
            else:  # form d's synchronous order (QK, softmax, PV per tile), with PINGPONG / EXP_POLY
                for _t in range(0, n_t - 1):
                    st = it % _WS_STAGES
                    acc, m_i, l_i = _sync_tile(q_s, k_smem, v_smem, full, empty, st, it, acc, m_i, l_i, zero_s,
                                               qk_scale, _WS_BN, q_desc, my_bar, my_q, row_n, half, QB, H, has_next,
                                               my_turn, other_turn, False, FENCE, EXP_POLY, PINGPONG, S_LAYOUT,
                                               P_LAYOUT, dtype)
                    it += 1
                st = it % _WS_STAGES
                acc, m_i, l_i = _sync_tile(q_s, k_smem, v_smem, full, empty, st, it, acc, m_i, l_i, zero_s, qk_scale,
                                           cnt - (n_t - 1) * _WS_BN, q_desc, my_bar, my_q, row_n, half, QB, H,
                                           has_next, my_turn, other_turn, True, FENCE, EXP_POLY, PINGPONG, S_LAYOUT,
                                           P_LAYOUT, dtype)
                it += 1
            if RCP:
                if not TMA_O:
                    _store_rows(Out, _normalize(acc, l_i, cnt, RCP), bh // H, bh % H, (row % QB) * 2 + half,
                                stride_ob, stride_oh, stride_on, N_Q, S_LAYOUT, _WS2_HALF_M, _WS_D)
            elif not TMA_O:
                _store_out(Out, acc, l_i, cnt == 0, bh // H, bh % H, (row % QB) * 2 + half, stride_ob, stride_oh,
                           stride_on, N_Q, S_LAYOUT, _WS2_HALF_M, _WS_D)
            if OFFS_AHEAD:
                lo = lo_n
                hi = hi_n
            else:
                lo = gl.load(Offsets + row_n).to(gl.int32)
                hi = gl.load(Offsets + row_n + 1).to(gl.int32)
            row = row_n
            pos = pos_n
            phase ^= 1
            if TIMELINE:
                _tl_mark(Tl, tb, j, 16)
        if DEFER_O:  # the program's last row's O (its stage: the last item's)
            if it > 0:
                o_st = (it + _WS_STAGES - 1) % _WS_STAGES
                if DEFER_O == 2:
                    acc_fly = warpgroup_mma(p_pv, v_smem.index(o_st), acc_pv * alpha_pv[:, None], is_async=True)
                    acc_done, p_done = warpgroup_mma_wait(0, deps=(acc_fly, p_pv))
                    o_pend = _normalize(acc_done, o_l, o_cnt, RCP).to(dtype)
                _store_tma(o_desc, o_pend, k_smem.index(o_st), o_b, o_h, o_q, half, dtype)
                _release_after_store(empty, o_st)
        elif TMA_O:  # the last row's O store must have read its stage before the CTA's shared memory goes away
            _release_after_store(empty, (it + _WS_STAGES - 1) % _WS_STAGES)
        if TIMELINE:
            gl.store(Tl + hdr + 1, _tl_now(pos))
            if half == 0:
                gl.store(Tl + hdr + 3, _tl_gtime(pos))
        if TL_HDR:
            if half == 0:
                _tl_hdr_end(Tl, pos)
        if PINGPONG:  # warpgroup 0 consumes warpgroup 1's last hand-over (no arrival left pending at exit)
            if half == 0:
                _pp_sync(my_turn)

    @gluon.jit
    def _fg_gluon_ws2(q_desc, K, V, Out, Offsets, Indices, Order, Start, qk_scale,
                      stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                      stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS,
                      HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                      PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr,
                      CONSUMER_FENCE: gl.constexpr = True, PIPE: gl.constexpr = False, EXP_POLY: gl.constexpr = 0,
                      PINGPONG: gl.constexpr = False, PLANNED: gl.constexpr = False, o_desc=None,
                      TMA_O: gl.constexpr = False, OFFS_AHEAD: gl.constexpr = False, RCP: gl.constexpr = False,
                      TAIL64: gl.constexpr = False, Tl=None, TIMELINE: gl.constexpr = False,
                      DEFER_O: gl.constexpr = False, Pool=None, Claim=None, DYN: gl.constexpr = False,
                      TL_HDR: gl.constexpr = False):
        """Form (d): form (c) with one partition per consumer warpgroup (the default partition is consumer half 0,
        ``num_warps`` 4; a worker is half 1; a worker is the producer).  ``q_desc`` has [1, 1, 64, D] boxes.
        Row schedule: the walk (program p of G runs launch positions p, p + G, ... of ``Order``; ``Start`` unused)
        or, ``PLANNED`` (the list schedule, round-2 consumer only), a host-built plan: program p runs rows
        ``Order[Start[p]:Start[p + 1]]`` (``fgattn.gluon_fg_list.plan_ws2_list``; ``N_ROWS`` unused).  Row-end knobs
        (round-2 consumer, PIPE): TMA_O (``o_desc``: O's descriptor, [1, 1, 64, D] boxes; None = a constexpr, no
        parameter, when off), OFFS_AHEAD, RCP; TAIL64 (research: :func:`_tail64`) (:func:`_ws2x_consumer`).
        ``TIMELINE`` (research, issue 12 session 16): the in-kernel timeline into ``Tl`` (:data:`_TL_CAP`; None = a
        constexpr, no parameter, when off; decoded by ``fgattn.timeline``).  ``DEFER_O`` (row end ``"tma_defer"``,
        research): :func:`_ws2x_consumer`'s deferred O.  ``DYN`` (research, issue 12 session 16, helper D2): the
        dynamic tail, the static plan then claims from ``Pool`` by the counter ``Claim`` (:data:`_RID_L`'s comment;
        host side ``fgattn.gluon_fg_dyntail``).  ``TL_HDR`` (research, helper T2): the minimal tail probe
        (:func:`_tl_hdr_start`; ``Tl`` then int64 [programs, 8])."""
        gl.static_assert(not (TAIL64 and (PINGPONG or not PIPE)), "TAIL64 needs PIPE and no PINGPONG")
        gl.static_assert(HEAD_DIM == _WS_D and BLOCK_M == _WS_BM and BLOCK_N == _WS_BN and STAGES == _WS_STAGES)
        gl.static_assert(num_warps == _WS2_WG_WARPS)
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
            mbarrier.init(full.index(i), count=_WS_PRODUCER_WARPS * 32)
            mbarrier.init(empty.index(i), count=2)
        if DYN:  # the claimed-row ring (producer -> both consumers)
            rid = gl.allocate_shared_memory(gl.int32, [2, 1], gl.SwizzledSharedLayout(1, 1, 1, [0]))
            rid_full = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
            rid_empty = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
            for i in gl.static_range(2):
                mbarrier.init(rid_full.index(i), count=1)
                mbarrier.init(rid_empty.index(i), count=2)
        else:
            rid: gl.constexpr = None
            rid_full: gl.constexpr = None
            rid_empty: gl.constexpr = None
        if PIPE or PINGPONG or EXP_POLY != 0:  # the round-2 consumer (kernels/NOTES.md, "Gluon round 2")
            gl.warp_specialize([
                (_ws2x_consumer, (0, q_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full,
                                  empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, CONSUMER_FENCE,
                                  PIPE, EXP_POLY, PINGPONG, PLANNED, o_desc, TMA_O, OFFS_AHEAD, RCP, TAIL64, Tl,
                                  TIMELINE, DEFER_O, rid, rid_full, rid_empty, DYN, TL_HDR)),
                (_ws2x_consumer, (1, q_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full,
                                  empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, CONSUMER_FENCE,
                                  PIPE, EXP_POLY, PINGPONG, PLANNED, o_desc, TMA_O, OFFS_AHEAD, RCP, TAIL64, Tl,
                                  TIMELINE, DEFER_O, rid, rid_full, rid_empty, DYN, TL_HDR)),
                (_ws_producer, (K, V, Offsets, Indices, Order, Start, k_smem, v_smem, full, empty, stride_kb,
                                stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, N_ROWS, PLANNED, Tl,
                                TIMELINE, Pool, Claim, rid, rid_full, rid_empty, DYN)),
            ], [_WS2_WG_WARPS, _WS_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
        else:
            gl.static_assert(not PLANNED, "the list schedule (PLANNED) runs the round-2 consumer only")
            gl.warp_specialize([
                (_ws2_consumer, (0, q_desc, Out, Offsets, Order, q_smem, k_smem, v_smem, q_bar, full, empty,
                                 qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, CONSUMER_FENCE)),
                (_ws2_consumer, (1, q_desc, Out, Offsets, Order, q_smem, k_smem, v_smem, q_bar, full, empty,
                                 qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, CONSUMER_FENCE)),
                (_ws_producer, (K, V, Offsets, Indices, Order, Order, k_smem, v_smem, full, empty, stride_kb,
                                stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, H, QB, N_ROWS, False)),
            ], [_WS2_WG_WARPS, _WS_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(STAGES):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))
        if DYN:
            for i in gl.static_range(2):
                mbarrier.invalidate(rid_full.index(i))
                mbarrier.invalidate(rid_empty.index(i))


# ------------------------------------------------------------------------------------------------ host side
@dataclass(frozen=True)
class GluonPlan:
    """What a launch of the prototype runs: grid, order, dtype name, strides (elements) of q/k/v/out as
    (batch, head, sequence)."""

    form: str
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


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg: {msg}")


FORMS = ("one_row", "persistent", "ws", "ws2")
#: registers per thread of form (c)'s producer warpgroup (the consumers get the rest: 216 at 64; Triton 3.6 sm_90:
#: no spills at 64-80, 8-104 B of stack at 40-56)
PRODUCER_REGS = 64
#: registers of form (d)'s second consumer warpgroup (a worker partition; the first, the default partition, gets 224)
CONSUMER_REGS = 216


def plan_gluon(q: Any, k: Any, v: Any, index: Any, *, block_m: int = BLOCK_M, gran_n: int = GRAN_N,
               layout: str = "bhnd", form: str = "one_row", sms: int = 132) -> GluonPlan:
    """Validate a call (before any GPU work; one ValueError line naming the argument) and plan its launch.

    Works on any device (the CPU tests use it): q, k, v (B, H, N, D) for ``bhnd`` or (B, N, H, D) for ``bnhd``,
    D 128, bf16 / fp16; ``index`` an :class:`fgattn.FgIndex` with block_m 128 and gran_n 1 matching q/k.  Grid:
    rows (form a, ``one_row``) or min(rows, ``sms``) (forms b ``persistent``, c ``ws``, d ``ws2``)."""
    import torch

    from .index import FgIndex

    if form not in FORMS:
        _fail(f"form={form!r} is not one of {FORMS}")
    if block_m != BLOCK_M or gran_n != GRAN_N:
        _fail(f"block_m={block_m}, gran_n={gran_n} not supported by the prototype (only block_m=128, gran_n=1)")
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
        _fail(f"head_dim={d} not supported by the prototype (only 128)")
    if tuple(k.shape) != kv_shape or tuple(v.shape) != kv_shape:
        _fail(f"k/v shapes {tuple(k.shape)}, {tuple(v.shape)} do not match q {tuple(q.shape)} ({layout})")
    if nq == 0 or nk == 0:
        _fail("sequence length must be positive")
    if not isinstance(index, FgIndex):
        _fail(f"index must be an FgIndex, got {type(index).__name__}")
    qb = -(-nq // BLOCK_M)
    if (index.block_m, index.gran_n) != (BLOCK_M, GRAN_N):
        _fail(f"index has block_m={index.block_m}, gran_n={index.gran_n} (the prototype needs 128, 1)")
    if (index.batch, index.heads, index.n_qblocks, index.n_keys) != (b, h, qb, nk):
        _fail(f"index (batch, heads, n_qblocks, n_keys)=({index.batch}, {index.heads}, {index.n_qblocks}, "
              f"{index.n_keys}) does not match q/k ({b}, {h}, {qb}, {nk})")
    if index.indices.dtype != torch.int32 or index.offsets.dtype not in (torch.int32, torch.int64):
        _fail("index.indices must be int32 and index.offsets int32 or int64")
    if index.indices.device != q.device or index.offsets.device != q.device:
        _fail(f"index is on {index.indices.device}, q on {q.device}")
    esz = q.element_size()
    qs = (q.stride(0), q.stride(1), q.stride(2)) if layout == "bhnd" else (q.stride(0), q.stride(2), q.stride(1))
    if any(st * esz % 16 for st in qs):
        _fail(f"q strides {tuple(q.stride())} are not 16-byte aligned (needed by the Q TMA descriptor)")
    if not isinstance(sms, int) or isinstance(sms, bool) or sms < 1:
        _fail(f"sms / programs={sms!r} must be a positive int")
    rows = b * h * qb
    grid = rows if form == "one_row" else min(rows, sms)
    return GluonPlan(form=form, grid=grid, n_rows=rows, batch=b, heads=h,
                     n_q=nq, n_kv=nk, n_qblocks=qb, ordered=index.order is not None,
                     dtype="bf16" if q.dtype == torch.bfloat16 else "fp16", layout=layout)


#: ``exp_poly`` fraction -> the kernel's EXP_POLY (one element of every EXP_POLY by the polynomial; 0 none)
EXP_POLY = {0: 0, 0.25: 4}
PIPELINES = (0, 1, 2, 3)
#: form d's row end (``epilogue`` knob) -> the consumer's row-end constexprs: ``"stg"`` the per-thread stores of the
#: packaged code (no constexpr given: the binary is the one without the knob), ``"tma"`` helper E's measured form
#: e_all (kernels/NOTES.md, "Session 14 research: fg row end"): TMA O store + offsets a row ahead + one reciprocal
#: per row (needs ``pipeline`` != 0, not ``pingpong``); ``"tma_offs"`` the same without the reciprocal (RCP carries
#: most of e_all's per-tile cost: kernels/NOTES.md "Session 14, K5"); ``"tma_sel"`` = ``"tma"`` with the empty row
#: zeroed by a select instead of a uniform branch (``RCP`` 2: the tile loop's SASS back to ``"tma_offs"``' 1,066
#: static stall cycles; kernels/NOTES.md "Session 14, K6")
EPILOGUES: dict[str, dict[str, bool | int]] = {"stg": {}, "tma": dict(TMA_O=True, OFFS_AHEAD=True, RCP=True),
                                               "tma_offs": dict(TMA_O=True, OFFS_AHEAD=True),
                                               "tma_sel": dict(TMA_O=True, OFFS_AHEAD=True, RCP=2)}
#: the fg ws2 CTA's row ends: :data:`EPILOGUES` (shared with the contig CTA) and ``"tma_defer"`` (research, issue 12
#: session 16, helper T: ``"tma_sel"`` with the row's O staged and stored under the next row's tile-0 QK, DEFER_O of
#: :func:`_ws2x_consumer`; needs ``pipeline`` 1 and no pingpong / tail64)
EPILOGUES_FG: dict[str, dict[str, bool | int]] = {**EPILOGUES,
                                                  "tma_defer": dict(TMA_O=True, OFFS_AHEAD=True, RCP=2, DEFER_O=1),
                                                  "tma_defer_pv": dict(TMA_O=True, OFFS_AHEAD=True, RCP=2, DEFER_O=2)}


def o_desc_ok(out: Any, layout: str) -> str | None:
    """None if ``out``'s (batch, head, sequence) strides and address are 16-byte aligned (the O TMA store of
    ``epilogue="tma"`` needs it), else why not (one line)."""
    esz = out.element_size()
    if any(s * esz % 16 for s in _strides(out, layout)) or out.data_ptr() % 16:
        return f"out strides {tuple(out.stride())} / address are not 16-byte aligned (needed by the O TMA store)"
    return None


def o_desc_for(out: Any, layout: str, q_desc: Any, p: GluonPlan, epilogue: str) -> Any:
    """The O descriptor a ws2 launch passes (``o_desc``): for ``epilogue="tma"`` a descriptor of ``out`` with
    ``q_desc``'s [1, 1, 64, D] box and layout; None for ``"stg"`` (no kernel parameter).  The caller checked
    :func:`o_desc_ok`."""
    if not EPILOGUES_FG[epilogue]:
        return None
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    return TensorDescriptor(out, [p.batch, p.heads, p.n_q, HEAD_DIM], [*_strides(out, layout), 1],
                            list(q_desc.block_shape), q_desc.layout)


def check_ws2_knobs(form: str, *, pipeline: int = 0, exp_poly: float = 0, pingpong: bool = False,
                    regs: tuple[int, int] | None = None, epilogue: str = "stg", tail64: bool = False) -> dict[str, Any]:
    """Validate form d's round-2 knobs (one ValueError line naming the argument; runs on any machine) and return
    the kernel's constexprs (PIPE, EXP_POLY, PINGPONG, CONSUMER_REGS, PRODUCER_REGS and, ``epilogue="tma"``,
    TMA_O / OFFS_AHEAD / RCP: :data:`EPILOGUES`; ``tail64`` True: TAIL64, the research 64-key last tile of
    :func:`_tail64`, kernels/NOTES.md "Session 15, K8"; absent when False, so the binary is the one without it)."""
    if not isinstance(tail64, bool):
        _fail(f"tail64={tail64!r} must be a bool")
    if tail64 and (form != "ws2" or isinstance(pipeline, bool) or pipeline == 0 or pingpong is not False):
        _fail(f"tail64=True needs form 'ws2' with pipeline 1 / 2 / 3 and no pingpong, not form={form!r}, "
              f"pipeline={pipeline!r}, pingpong={pingpong!r}")
    fixed = epilogue
    if isinstance(epilogue, str) and epilogue.startswith("auto:"):  # resolved per launch (resolve_epilogue)
        from .launch import auto_epilogue_error

        why = auto_epilogue_error(epilogue)
        if why:
            _fail(f"epilogue={epilogue!r} {why}")
        fixed = "stg"  # the constexprs of a launch without a plan (the walk); a list launch resolves it first
    elif epilogue not in EPILOGUES_FG:
        _fail(f"epilogue={epilogue!r} must be one of {tuple(EPILOGUES_FG)} or 'auto:SHORT:TILES'")
    if epilogue != "stg" and (form != "ws2" or isinstance(pipeline, bool) or pipeline == 0 or pingpong is not False):
        _fail(f"epilogue={epilogue!r} needs form 'ws2' with pipeline 1 / 2 / 3 and no pingpong, not form={form!r}, "
              f"pipeline={pipeline!r}, pingpong={pingpong!r}")
    if EPILOGUES_FG.get(epilogue, {}).get("DEFER_O") and (pipeline != 1 or tail64):
        _fail(f"epilogue={epilogue!r} needs pipeline 1 and no tail64, not pipeline={pipeline!r}, tail64={tail64!r}")
    on = pipeline != 0 or exp_poly != 0 or pingpong is not False or regs is not None
    if on and form != "ws2":
        _fail(f"pipeline / exp_poly / pingpong / regs are knobs of form 'ws2' only, not form={form!r}")
    if isinstance(pipeline, bool) or pipeline not in PIPELINES:
        _fail(f"pipeline={pipeline!r} must be one of {PIPELINES}")
    if isinstance(exp_poly, bool) or not isinstance(exp_poly, (int, float)) or exp_poly not in EXP_POLY:
        _fail(f"exp_poly={exp_poly!r} must be one of {tuple(EXP_POLY)}")
    if not isinstance(pingpong, bool):
        _fail(f"pingpong={pingpong!r} must be a bool")
    ok = regs is None or (isinstance(regs, tuple) and len(regs) == 2
                          and all(isinstance(r, int) and not isinstance(r, bool) for r in regs))
    cr, pr = (CONSUMER_REGS, PRODUCER_REGS) if regs is None else (regs if ok else (0, 0))
    if not ok or cr % 8 or pr % 8 or not 24 <= pr <= cr <= 240 or cr + pr > 280:
        _fail(f"regs={regs!r} must be (consumer, producer) multiples of 8 with 24 <= producer <= consumer <= 240 and "
              "consumer + producer <= 280 (the default partition gets 504 - consumer - producer)")
    return dict(PIPE=pipeline, EXP_POLY=EXP_POLY[exp_poly], PINGPONG=pingpong, CONSUMER_REGS=cr, PRODUCER_REGS=pr,
                **EPILOGUES_FG[fixed], **({"TAIL64": True} if tail64 else {}))


def resolve_epilogue(epilogue: str, mean_tiles_per_row: float | None) -> str:
    """The row end a launch runs: ``epilogue`` itself, or for ``"auto:SHORT:TILES"`` (``fgattn.launch.AUTO_PREFIX``)
    SHORT when ``mean_tiles_per_row`` (the launch's mean executed 128-key tiles per row, from its list plan) is at
    most TILES, else ``"stg"`` (also when it is None: a launch without a plan)."""
    from .launch import auto_epilogue

    auto = auto_epilogue(epilogue)
    if auto is None:
        if epilogue not in EPILOGUES_FG:
            _fail(f"epilogue={epilogue!r} must be one of {tuple(EPILOGUES_FG)} or 'auto:SHORT:TILES'")
        return epilogue
    short, tiles = auto
    return short if mean_tiles_per_row is not None and mean_tiles_per_row <= tiles else "stg"


def compile_sm90(fn: Any, const: dict[str, Any], dtype: str = "bf16", block_m: int = BLOCK_M,
                 head_dim: int = HEAD_DIM, ws2: bool = False) -> Any:
    """Compile the Gluon kernel ``fn`` for sm_90 without a GPU (Triton >= 3.5 with Gluon on the path): ``const``
    names every constexpr given (``num_warps`` included, also passed as the option); the other arguments get the
    signature :func:`fg_attention_gluon` launches with: ``dtype`` ("bf16" / "fp16") K / V / Out pointers, the Q
    descriptor's [1, 1, block_m (block_m / 2 for ``ws2``), head_dim] box in the 128-byte swizzle (``o_desc``
    the same box when ``const`` has ``TMA_O``, else a constexpr None), fp32 qk_scale, i32 for the rest, 16-byte
    divisibility on the pointers and strides.  Returns the compiled kernel."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    names = list(fn.arg_names)
    lay = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
           "fp4_padded=False, cga_layout=[])")
    ptr = {"K": f"*{dtype}", "V": f"*{dtype}", "Out": f"*{dtype}", "Offsets": "*i64", "Indices": "*i32",
           "Order": "*i32", "Start": "*i32", "Tl": "*i64", "Pool": "*i32", "Claim": "*i32"}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list] = {}
    const = {**{p.name: p.default for p in fn.params if p.is_constexpr and p.has_default}, **const}
    if "o_desc" in names and not const.get("TMA_O"):
        const["o_desc"] = None  # no O descriptor: a constexpr None, as a launch passing o_desc=None specialises it
    if "Tl" in names and not const.get("TIMELINE") and not const.get("TL_HDR"):
        const["Tl"] = None  # no timeline buffer: a constexpr None (TIMELINE off: the binary without the knob)
    for a in ("Pool", "Claim"):
        if a in names and not const.get("DYN"):
            const[a] = None  # no dynamic tail: constexpr Nones (DYN off: the binary without the knob)
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a in ("q_desc", "o_desc"):
            sig[a] = f"tensordesc<{dtype}[1, 1, {block_m // 2 if ws2 else block_m}, {head_dim}],{lay}>"
        elif a in ptr:
            sig[a], attrs[(i,)] = ptr[a], [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = GluonASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": const["num_warps"]})


def _strides(t: Any, layout: str) -> tuple[int, int, int]:
    return (t.stride(0), t.stride(1), t.stride(2)) if layout == "bhnd" else (t.stride(0), t.stride(2), t.stride(1))


def fg_attention_gluon(q: Any, k: Any, v: Any, index: Any, *, block_m: int = BLOCK_M, gran_n: int = GRAN_N,
                       layout: str = "bhnd", sm_scale: float | None = None, form: str = "one_row",
                       programs: int | None = None, out: Any = None, consumer_fence: bool = True,
                       pipeline: int = 0, exp_poly: float = 0, pingpong: bool = False,
                       regs: tuple[int, int] | None = None, epilogue: str = "stg") -> Any:
    """The Gluon prototype of :func:`fgattn.fg_attention` (D 128, M 128, gran_n 1; sm_90 GPUs): same output
    (q's layout and dtype; zeros for a query block with no kept key).  ``form``: ``one_row`` (a, one program per
    row), ``persistent`` (b, one program per SM with cross-row pipelining), ``ws`` (c, persistent with a
    producer warpgroup for the index loads and gathers) or ``ws2`` (d, as c with each consumer warpgroup in its
    own partition); b-d run ``programs`` programs if given (checks use few, so that each walks many rows).
    ``consumer_fence`` (c, d; research knob, default the measured form): the consumers' proxy fence after each
    stage's ``full`` wait (False: none, as Triton's own cp.async → wgmma pipelines).
    Round-2 knobs of form d only (research, kernels/NOTES.md "Gluon round 2"; see :func:`check_ws2_knobs`):
    ``pipeline`` 1 / 2 / 3 (FlashAttention-3's intra-warpgroup overlap: QK(t) and PV(t-1) in flight together, P
    carried as bf16 / fp32; 3 = 1 with the next tile's ``full`` wait placed before the PV wait, which keeps the whole
    softmax inside the overlap window in the SASS — prepared offline, not yet run on a GPU), ``exp_poly`` 0.25 (a quarter of P's exp2 by the tl entry's FMA polynomial), ``pingpong``
    (the two consumer warpgroups take turns issuing wgmmas through named barriers), ``regs`` = (consumer,
    producer) registers per thread (default (216, 64); the sum with the default partition's share is 504),
    ``epilogue`` ``"stg"`` / ``"tma"`` / ``"tma_offs"`` / ``"tma_sel"`` (the row end, :data:`EPILOGUES`; a TMA row end with an
    ``out`` whose strides or address are not 16-byte aligned runs ``"stg"``: the O TMA store cannot write it)."""
    import torch

    if _GLUON_ERR is not None:
        _fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if not isinstance(q, torch.Tensor) or q.device.type != "cuda":
        _fail("q must be a CUDA tensor (the prototype has no CPU / interpreter path)")
    cap = torch.cuda.get_device_capability(q.device)
    if cap[0] != 9:
        _fail(f"needs an sm_90 GPU (Hopper: wgmma, TMA), this one is sm_{cap[0]}{cap[1]}")
    sms = torch.cuda.get_device_properties(q.device).multi_processor_count if programs is None else programs
    p = plan_gluon(q, k, v, index, block_m=block_m, gran_n=gran_n, layout=layout, form=form, sms=sms)
    knobs = check_ws2_knobs(form, pipeline=pipeline, exp_poly=exp_poly, pingpong=pingpong, regs=regs,
                            epilogue=epilogue)
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.stride(-1) != 1:
        _fail("out must match q's shape and dtype with a contiguous head dimension")
    epilogue = resolve_epilogue(epilogue, None)  # "auto:...": no plan here (the walk) -> "stg"
    if epilogue != "stg" and o_desc_ok(out, layout) is not None:  # an unaligned user out: the STG row end
        epilogue = "stg"
        knobs = check_ws2_knobs(form, pipeline=pipeline, exp_poly=exp_poly, pingpong=pingpong, regs=regs)
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    el = gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16
    box = [1, 1, BLOCK_M // 2 if form == "ws2" else BLOCK_M, HEAD_DIM]
    q_layout = gl.NVMMASharedLayout.get_default_for(box, el)
    q_desc = TensorDescriptor(q, [p.batch, p.heads, p.n_q, HEAD_DIM], [*_strides(q, layout), 1], box, q_layout)
    scale = (1.0 / math.sqrt(HEAD_DIM)) if sm_scale is None else float(sm_scale)
    order = index.order
    if order is None:  # form c always reads Order (identity); a and b take a placeholder pointer
        order = (torch.arange(p.n_rows, dtype=torch.int32, device=q.device) if form in ("ws", "ws2")
                 else index.offsets)
    args = (q_desc, k, v, out, index.offsets, index.indices, order, scale * 1.4426950408889634,
            *_strides(k, layout), *_strides(v, layout), *_strides(out, layout), p.heads, p.n_q, p.n_qblocks)
    meta = dict(HEAD_DIM=HEAD_DIM, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, STAGES=STAGES, num_warps=NUM_WARPS)
    if not isinstance(consumer_fence, bool):
        _fail(f"consumer_fence={consumer_fence!r} must be a bool")
    if form == "ws2":
        # the walk: Start (the list schedule's plan starts, fgattn.gluon_fg_list) is unused; order stands in for it
        _fg_gluon_ws2[(p.grid,)](*args[:7], order, *args[7:], p.n_rows, CONSUMER_FENCE=consumer_fence, **knobs,
                                 **{**meta, "num_warps": 4}, o_desc=o_desc_for(out, layout, q_desc, p, epilogue))
    elif form == "ws":
        _fg_gluon_ws[(p.grid,)](*args, p.n_rows, PRODUCER_REGS=PRODUCER_REGS, CONSUMER_FENCE=consumer_fence, **meta)
    elif form == "persistent":
        _fg_gluon_persistent[(p.grid,)](*args, p.n_rows, ORDERED=p.ordered, **meta)
    else:
        _fg_gluon_row[(p.grid,)](*args, ORDERED=p.ordered, **meta)
    return out
