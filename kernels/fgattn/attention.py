"""Forward attention kernels: fine-grained gathered (FG-Attn), M×M block-sparse and dense.

All three are one Triton kernel, ``_attn_fwd``, in the FlashAttention-2 form of the Triton
tutorial: a program owns ``BLOCK_M`` queries of one (batch, head), keeps Q in registers and walks
key tiles of ``BLOCK_N`` keys with an online softmax in base 2 (``sm_scale·log2 e`` folded into
one multiplier).  The kernels differ only in how a key tile is addressed (``MODE``):

* ``MODE_DENSE``: keys ``t·BLOCK_N + j``, contiguous.
* ``MODE_BLOCK``: keys ``blk·BLOCK_M + s·BLOCK_N + j`` for the kept M×M blocks ``blk`` listed in
  the CSR index, contiguous.
* ``MODE_FG``: keys ``idx[e]·GRAN_N + r`` gathered row by row: each tile packs
  ``BLOCK_N / GRAN_N`` kept runs of ``GRAN_N`` contiguous keys.  The gathered loads are pointer
  ``tl.load``s that Triton's software pipeliner lowers to cp.async (16-B vectors along D) into a
  ``num_stages``-deep shared-memory ring feeding wgmma.  The index vector of tile ``t+IDX_AHEAD``
  is loaded in registers ``IDX_AHEAD`` iterations early, so the gather itself is a level-0 load
  and gets the whole pipeline depth (the pipeliner would otherwise split the stages between the
  index load and the gather).

Every loop runs its full tiles unmasked and finishes with one masked tile (partial tile, key
runs past N, the last partial block), so masks cost one tile per row.

``_attn_fwd``'s ``_DIAG_*`` constexprs are for diagnosis only (``validation/profile_row_cost.py`` times the
kernel with one stage left out or moved; some give wrong outputs): default 0 = the normal kernel, whose
compiled code they do not change.  They are never in the launch table; a config reaches them only through
``extra["_diag"]`` (a dict of these names).  ``_DIAG_TAIL`` (fg, idx_ahead 1): 1 no masked tail tile, 2 the
tail run as one more pipelined loop tile with unmasked scores, 3 the same with masked scores, 4 the masked
tail tile first (before the loop), 5 as 3 but the scores masked in the last iteration only, under a scalar
branch (gran 1) (6 was the launch option ``tail_reuse`` before it became one); ``_DIAG_Q`` 1: Q not read (load predicated off at run time, Q = 0.5);
``_DIAG_IDX`` (fg gran 1, idx_ahead 1) 1: key numbers from arithmetic (a 1-D window from the query block's first
query: no index loads, same gather code); ``_DIAG_EPI`` 1: O store predicated off at run time.
"""

from __future__ import annotations

import dataclasses
import math
import os

import torch
import triton
import triton.language as tl

from .index import FgIndex, check_index
from .launch import LaunchConfig, check_impl, gpu_key, launch_config
from .schedule import DEFAULT_SMS, limit_sms, persistent_programs, sm_limit

__all__ = ["fg_attention", "block_sparse_attention", "dense_attention", "resolve_config", "limit_sms", "fg_route",
           "contig_route"]

MODE_DENSE = 0
MODE_BLOCK = 1
MODE_FG = 2
_LOG2E = 1.4426950408889634
_DTYPES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


#: launch option ``exp_poly``: the fraction of the softmax's P = 2^x elements computed by the FMA polynomial
#: :func:`_exp2_poly` instead of MUFU.EX2 -> the kernels' ``EXP_POLY`` (one element of every EXP_POLY; 0 none)
EXP_POLY_FRACTIONS = {0: 0, 0.125: 8, 0.25: 4, 0.5: 2, 1: 1}
#: 2^f on [0, 1) = 1 + f·(c1 + f·(c2 + f·c3)): minimax relative error (linear program on 20,001 points, c0 = 1
#: fixed so that 2^0 is exact), rounded to fp32: max relative error 8.6e-5 in fp32 Horner form
EXP2_POLY_C = (0.6951168179512024, 0.22764497995376587, 0.0770670473575592)


def _f32_hex(x: float) -> str:
    """PTX's exact hex literal of the fp32 value nearest ``x`` (``0fXXXXXXXX``)."""
    import struct
    return f"0f{struct.unpack('<I', struct.pack('<f', x))[0]:08X}"


def _exp2_poly_ptx(n: int) -> str:
    """PTX for ``n`` packed fp32 elements ($n..$2n-1 in, $0..$n-1 out): the last by the polynomial (Cody–Waite:
    2^x = 2^floor(x)·p(x - floor(x)), x clamped to -127 so -inf gives +0; floor by adding 1.5·2^23 rounded toward
    -inf, whose low mantissa bits are then floor(x), shifted into the exponent by one integer add), the others by
    ``ex2.approx.ftz.f32`` (MUFU.EX2)."""
    c1, c2, c3 = (_f32_hex(c) for c in EXP2_POLY_C)
    mufu = "".join(f"ex2.approx.ftz.f32 ${i}, ${n + i}; " for i in range(n - 1))
    return ("{ .reg .f32 ep_x, ep_t, ep_j, ep_f, ep_p; .reg .b32 ep_e, ep_i; " + mufu
            + f"max.f32 ep_x, ${2 * n - 1}, 0fC2FE0000; add.rm.f32 ep_t, ep_x, 0f4B400000; "
            + "sub.f32 ep_j, ep_t, 0f4B400000; sub.f32 ep_f, ep_x, ep_j; "
            + f"fma.rn.f32 ep_p, ep_f, {c3}, {c2}; fma.rn.f32 ep_p, ep_p, ep_f, {c1}; "
            + "fma.rn.f32 ep_p, ep_p, ep_f, 0f3F800000; shl.b32 ep_e, ep_t, 23; mov.b32 ep_i, ep_p; "
            + f"add.s32 ep_i, ep_i, ep_e; mov.b32 ${n - 1}, ep_i; }}")


_EXP2_PTX_1 = tl.constexpr(_exp2_poly_ptx(1))
_EXP2_PTX_2 = tl.constexpr(_exp2_poly_ptx(2))
_EXP2_PTX_4 = tl.constexpr(_exp2_poly_ptx(4))
_EXP2_PTX_8 = tl.constexpr(_exp2_poly_ptx(8))


@triton.jit
def _exp2_poly(x):
    """2^x by the polynomial of :func:`_exp2_poly_ptx` in tl operations (the CPU interpreter's form; the same
    clamp, reduction, coefficients and exponent add)."""
    xc = tl.maximum(x, -127.0)
    j = tl.floor(xc)
    f = xc - j
    p = (f * 0.0770670473575592 + 0.22764497995376587) * f + 0.6951168179512024
    p = p * f + 1.0
    return (p.to(tl.int32, bitcast=True) + (j.to(tl.int32) << 23)).to(tl.float32, bitcast=True)


@triton.jit
def _exp2_mixed(x, offs_n, EXP_POLY: tl.constexpr, EXP_PTX: tl.constexpr):
    """2^x with one element of every ``EXP_POLY`` (> 0) by the FMA polynomial and the rest by MUFU.EX2: on the GPU
    through inline PTX packing ``EXP_POLY`` consecutive register elements (no layout change), under the CPU
    interpreter (``EXP_PTX`` false) by the key column ``offs_n`` modulo ``EXP_POLY``."""
    if EXP_PTX:
        if EXP_POLY == 8:
            y = tl.inline_asm_elementwise(_EXP2_PTX_8, "=f,=f,=f,=f,=f,=f,=f,=f,f,f,f,f,f,f,f,f", [x],
                                          dtype=tl.float32, is_pure=True, pack=8)
        elif EXP_POLY == 4:
            y = tl.inline_asm_elementwise(_EXP2_PTX_4, "=f,=f,=f,=f,f,f,f,f", [x], dtype=tl.float32,
                                          is_pure=True, pack=4)
        elif EXP_POLY == 2:
            y = tl.inline_asm_elementwise(_EXP2_PTX_2, "=f,=f,f,f", [x], dtype=tl.float32, is_pure=True,
                                          pack=2)
        else:
            tl.static_assert(EXP_POLY == 1)
            y = tl.inline_asm_elementwise(_EXP2_PTX_1, "=f,f", [x], dtype=tl.float32, is_pure=True, pack=1)
    else:
        y = tl.where((offs_n % EXP_POLY == EXP_POLY - 1)[None, :], _exp2_poly(x), tl.math.exp2(x))
    return y


@triton.jit
def _softmax_pv(acc, l_i, m_i, qk, v, qk_scale, valid, MASKED: tl.constexpr, EXP_POLY: tl.constexpr = 0,
                EXP_PTX: tl.constexpr = True):
    """Online softmax of one score tile S (base 2, scale folded) and O = α·O + P·V.  ``EXP_POLY`` > 0: one
    element of P in every ``EXP_POLY`` by the FMA polynomial (:func:`_exp2_mixed`; launch option ``exp_poly``)."""
    if MASKED:
        qk = tl.where(valid[None, :], qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
    if EXP_POLY == 0:
        p = tl.math.exp2(qk * qk_scale - m_new[:, None])
    else:
        p = _exp2_mixed(qk * qk_scale - m_new[:, None], tl.arange(0, qk.shape[1]), EXP_POLY, EXP_PTX)
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, l_i, m_new


@triton.jit
def _attend(acc, l_i, m_i, q, k, v, qk_scale, valid, MASKED: tl.constexpr, EXP_POLY: tl.constexpr = 0,
            EXP_PTX: tl.constexpr = True):
    """One key tile: S = Q·Kᵀ, then :func:`_softmax_pv`."""
    qk = tl.dot(q, tl.trans(k))
    return _softmax_pv(acc, l_i, m_i, qk, v, qk_scale, valid, MASKED, EXP_POLY, EXP_PTX)


@triton.jit
def _normalize(acc, l_i, m_i):
    """O = acc / l and the natural-log log-sum-exp of the scaled scores per query row; a row with no kept
    key (l = 0) gives zeros and -inf."""
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    lse = tl.where(l_i == 0.0, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    return acc / l_safe[:, None], lse


@triton.jit
def _rows(base, rows, stride, offs_d, valid, MASKED: tl.constexpr):
    """Load a [len(rows), D] tile whose row r starts at base + rows[r]·stride (a gather when rows
    is not contiguous)."""
    ptrs = base + rows[:, None] * stride + offs_d[None, :]
    if MASKED:
        return tl.load(ptrs, mask=valid[:, None], other=0.0)
    return tl.load(ptrs)


@triton.jit
def _tile(base, desc, stride, t, Indices, lo, ent0, r_off, offs_n, offs_d, no_mask,
          MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr,
          USE_TMA: tl.constexpr):
    """Full (unmasked) key tile ``t`` of K or V: the only place where the three kernels differ."""
    if MODE == 2:  # fine-grained: gather runs of GRAN_N keys listed by the index
        ENT: tl.constexpr = BLOCK_N // GRAN_N
        kidx = tl.load(Indices + ent0 + t * ENT) * GRAN_N + r_off
        return _rows(base, kidx, stride, offs_d, no_mask, False)
    else:
        if MODE == 1:  # block-sparse: sub-tile t % SUB of kept block t // SUB
            SUB: tl.constexpr = BLOCK_M // BLOCK_N
            start = tl.load(Indices + lo + t // SUB) * BLOCK_M + (t % SUB) * BLOCK_N
        else:  # dense
            start = t * BLOCK_N
        if USE_TMA:
            return desc.load([start, 0])
        return _rows(base, start + offs_n, stride, offs_d, no_mask, False)


@triton.jit
def _diag_keys(k0, t, offs_n, N_KV, BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr):
    """Diagnosis only (``_DIAG_IDX``): key numbers of tile ``t`` without reading the index: the contiguous keys
    k0 + t·BLOCK_N + j (k0 from :func:`_diag_k0`), a 1-D window as L2-local as a real window's."""
    tl.static_assert(GRAN_N == 1)
    return tl.minimum(k0 + t * BLOCK_N + offs_n, N_KV - 1)


@triton.jit
def _diag_k0(qb, n_full, N_KV, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """First key of the ``_DIAG_IDX`` window of query block ``qb``: its first query, moved left so that the
    row's n_full + 1 tiles end inside N."""
    return tl.maximum(tl.minimum(qb * BLOCK_M, N_KV - (n_full + 1) * BLOCK_N), 0)


@triton.jit
def _diag_fg_tail(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, Indices, ent0, r_off, lo, hi, n_full, qb,
                  offs_n, offs_d, qk_scale, N_KV, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr,
                  DIAG_IDX: tl.constexpr):
    """Diagnosis only: the fg masked tail tile (``_DIAG_TAIL`` 4 runs it before the loop; ``_DIAG_IDX`` without
    index loads).  Same math as the tail in :func:`_attn_fwd`."""
    if n_full >= 0:
        ent = ent0 + n_full * (BLOCK_N // GRAN_N)
        e_ok = ent < hi
        if DIAG_IDX == 1:
            kidx = _diag_keys(_diag_k0(qb, n_full, N_KV, BLOCK_M, BLOCK_N), n_full, offs_n, N_KV, BLOCK_N, GRAN_N)
        else:
            kidx = tl.load(Indices + ent, mask=e_ok, other=0) * GRAN_N + r_off
        ok = e_ok & (kidx < N_KV)
        k = _rows(k_base, kidx, stride_kn, offs_d, ok, True)
        v = _rows(v_base, kidx, stride_vn, offs_d, ok, True)
        acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, ok, True)
    return acc, l_i, m_i


@triton.jit
def _dense_tail(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, n_full, offs_n, offs_d, qk_scale, N_KV,
                BLOCK_N: tl.constexpr, EXP_POLY: tl.constexpr = 0, EXP_PTX: tl.constexpr = True):
    """Dense mode's last key tile (keys n_full·BLOCK_N + j, those past N masked)."""
    kidx = n_full * BLOCK_N + offs_n
    ok = kidx < N_KV
    k = _rows(k_base, kidx, stride_kn, offs_d, ok, True)
    v = _rows(v_base, kidx, stride_vn, offs_d, ok, True)
    return _attend(acc, l_i, m_i, q, k, v, qk_scale, ok, True, EXP_POLY, EXP_PTX)


@triton.jit
def _attn_fwd(
    Q, K, V, Out, Lse, Offsets, Indices, Order, QDesc, qk_scale,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_on,
    H, N_Q, N_KV, QB,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr,
    MODE: tl.constexpr, IDX_AHEAD: tl.constexpr, ORDERED: tl.constexpr,
    NUM_STAGES: tl.constexpr, USE_TMA: tl.constexpr, WARP_SPEC: tl.constexpr, OVERLAP: tl.constexpr,
    RETURN_LSE: tl.constexpr, TMA_QO: tl.constexpr, TMA_Q: tl.constexpr = False, TAIL_REUSE: tl.constexpr = False,
    TAIL_BRANCH: tl.constexpr = False, _DIAG_TAIL: tl.constexpr = 0, _DIAG_Q: tl.constexpr = 0, _DIAG_IDX: tl.constexpr = 0, _DIAG_EPI: tl.constexpr = 0,
    EXP_POLY: tl.constexpr = 0, EXP_PTX: tl.constexpr = True,
):
    tl.static_assert(_DIAG_TAIL + _DIAG_IDX == 0 or (MODE == 2 and IDX_AHEAD == 1))
    if ORDERED:  # longest-first row order within each head
        row = tl.load(Order + tl.program_id(0))
        qb = row % QB
        bh = row // QB
    else:
        qb = tl.program_id(0)
        bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    q_base = Q + b * stride_qb + h * stride_qh
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    o_base = Out + b * stride_ob + h * stride_oh

    offs_m = qb * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    q_ok = offs_m < N_Q
    if TMA_Q:  # Q later, after the Offsets loads are issued (the load waits for its TMA at once)
        q = tl.zeros([BLOCK_M, HEAD_DIM], dtype=Q.dtype.element_ty)
    elif TMA_QO:  # Q in and O out through tensor descriptors (TMA; rows past N_Q are zero-filled / clipped)
        q_desc = tl.make_tensor_descriptor(q_base, shape=[N_Q, HEAD_DIM], strides=[stride_qn, 1],
                                           block_shape=[BLOCK_M, HEAD_DIM])
        q = q_desc.load([qb * BLOCK_M, 0])
    elif _DIAG_Q == 1:  # diagnosis: no Q read (qk_scale > 0, so the load is predicated off at run time)
        q = tl.load(q_base + offs_m[:, None] * stride_qn + offs_d[None, :], mask=(q_ok & (qk_scale < 0.0))[:, None],
                    other=0.5)
    else:
        q = _rows(q_base, offs_m, stride_qn, offs_d, q_ok, True)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    no_mask = offs_n < BLOCK_N  # all-true placeholder for unmasked tiles
    k_desc = K
    v_desc = V
    if USE_TMA:  # contiguous tiles through tensor descriptors (TMA), one per (batch, head)
        k_desc = tl.make_tensor_descriptor(k_base, shape=[N_KV, HEAD_DIM], strides=[stride_kn, 1],
                                           block_shape=[BLOCK_N, HEAD_DIM])
        v_desc = tl.make_tensor_descriptor(v_base, shape=[N_KV, HEAD_DIM], strides=[stride_vn, 1],
                                           block_shape=[BLOCK_N, HEAD_DIM])

    # ---- the tiles of this query block: n_full unmasked ones, then a masked tail -------------
    lo = 0
    hi = 0
    ent0 = offs_n
    r_off = 0
    if MODE == 0:
        n_full = tl.cdiv(N_KV, BLOCK_N) - 1
    else:
        lo = tl.load(Offsets + bh * QB + qb)
        hi = tl.load(Offsets + bh * QB + qb + 1)
        cnt = (hi - lo).to(tl.int32)
        if MODE == 1:
            n_full = (cnt - 1) * (BLOCK_M // BLOCK_N)
        else:
            if GRAN_N == 1:
                ent0 = lo + offs_n
            else:
                ent0 = lo + offs_n // GRAN_N
                r_off = offs_n % GRAN_N
            n_full = tl.cdiv(cnt, BLOCK_N // GRAN_N) - 1
    if TMA_Q:  # Q by TMA through a host-built (B, H, N, D) descriptor (no device-side descriptor set-up)
        q = QDesc.load([(bh // H).to(tl.int32), (bh % H).to(tl.int32), qb * BLOCK_M, 0]).reshape(BLOCK_M, HEAD_DIM)

    if MODE == 2 and IDX_AHEAD == 1:  # next tile's index vector prefetched in registers
        ENT: tl.constexpr = BLOCK_N // GRAN_N
        if _DIAG_TAIL == 4:  # diagnosis: the masked tail tile before the loop
            acc, l_i, m_i = _diag_fg_tail(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, Indices, ent0, r_off,
                                          lo, hi, n_full, qb, offs_n, offs_d, qk_scale, N_KV, BLOCK_M, BLOCK_N, GRAN_N,
                                          _DIAG_IDX)
        n_loop = n_full
        if _DIAG_TAIL == 2 or _DIAG_TAIL == 3 or _DIAG_TAIL == 5:  # diagnosis: the tail as one more pipelined tile
            n_loop = n_full + 1
        k0 = 0
        if _DIAG_IDX == 1:  # diagnosis: key numbers from arithmetic, no index loads
            k0 = _diag_k0(qb, n_full, N_KV, BLOCK_M, BLOCK_N)
            nxt = _diag_keys(k0, 0, offs_n, N_KV, BLOCK_N, GRAN_N)
        else:
            nxt = tl.load(Indices + ent0, mask=ent0 < hi, other=0)
        for t in tl.range(0, n_loop, num_stages=NUM_STAGES):
            kidx = nxt * GRAN_N + r_off
            ent = ent0 + (t + 1) * ENT
            if _DIAG_IDX == 1:
                nxt = _diag_keys(k0, t + 1, offs_n, N_KV, BLOCK_N, GRAN_N)
            else:
                nxt = tl.load(Indices + ent, mask=ent < hi, other=0)
            k = _rows(k_base, kidx, stride_kn, offs_d, no_mask, False)
            v = _rows(v_base, kidx, stride_vn, offs_d, no_mask, False)
            if _DIAG_TAIL == 3:
                acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, lo + t * ENT + offs_n < hi, True, EXP_POLY, EXP_PTX)
            elif _DIAG_TAIL == 5:  # scores masked in the last iteration only, under a scalar branch
                tl.static_assert(GRAN_N == 1)
                qk = tl.dot(q, tl.trans(k))
                if t == n_full:
                    qk = tl.where(offs_n < (cnt - t * BLOCK_N), qk, float("-inf"))
                acc, l_i, m_i = _softmax_pv(acc, l_i, m_i, qk, v, qk_scale, no_mask, False, EXP_POLY, EXP_PTX)
            else:
                acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, no_mask, False, EXP_POLY, EXP_PTX)
    elif OVERLAP:  # issue S(t+1) = Q·K(t+1)ᵀ before the softmax of tile t (FA3's intra-warpgroup overlap)
        if n_full > 0:
            k = _tile(k_base, k_desc, stride_kn, 0, Indices, lo, ent0, r_off, offs_n, offs_d, no_mask,
                      MODE, BLOCK_M, BLOCK_N, GRAN_N, USE_TMA)
            qk = tl.dot(q, tl.trans(k))
            for t in tl.range(0, n_full - 1, num_stages=NUM_STAGES):
                kn = _tile(k_base, k_desc, stride_kn, t + 1, Indices, lo, ent0, r_off, offs_n, offs_d, no_mask,
                           MODE, BLOCK_M, BLOCK_N, GRAN_N, USE_TMA)
                qk_next = tl.dot(q, tl.trans(kn))
                v = _tile(v_base, v_desc, stride_vn, t, Indices, lo, ent0, r_off, offs_n, offs_d, no_mask,
                          MODE, BLOCK_M, BLOCK_N, GRAN_N, USE_TMA)
                acc, l_i, m_i = _softmax_pv(acc, l_i, m_i, qk, v, qk_scale, no_mask, False, EXP_POLY, EXP_PTX)
                qk = qk_next
            v = _tile(v_base, v_desc, stride_vn, n_full - 1, Indices, lo, ent0, r_off, offs_n, offs_d, no_mask,
                      MODE, BLOCK_M, BLOCK_N, GRAN_N, USE_TMA)
            acc, l_i, m_i = _softmax_pv(acc, l_i, m_i, qk, v, qk_scale, no_mask, False, EXP_POLY, EXP_PTX)
    else:
        for t in tl.range(0, n_full, num_stages=NUM_STAGES, warp_specialize=WARP_SPEC):
            k = _tile(k_base, k_desc, stride_kn, t, Indices, lo, ent0, r_off, offs_n, offs_d, no_mask,
                      MODE, BLOCK_M, BLOCK_N, GRAN_N, USE_TMA)
            v = _tile(v_base, v_desc, stride_vn, t, Indices, lo, ent0, r_off, offs_n, offs_d, no_mask,
                      MODE, BLOCK_M, BLOCK_N, GRAN_N, USE_TMA)
            acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, no_mask, False, EXP_POLY, EXP_PTX)

    # ---- masked tail: partial tile, key runs past N, the last (partial) block ----------------
    if MODE == 0:
        if TAIL_BRANCH:  # the same tile under an (always true) scalar branch: ptxas then keeps the loop's wgmma
            if n_full >= 0:  # pipeline (without it: C7515, every wgmma serialized)
                acc, l_i, m_i = _dense_tail(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, n_full, offs_n,
                                            offs_d, qk_scale, N_KV, BLOCK_N, EXP_POLY, EXP_PTX)
        else:
            acc, l_i, m_i = _dense_tail(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, n_full, offs_n,
                                        offs_d, qk_scale, N_KV, BLOCK_N, EXP_POLY, EXP_PTX)
    elif MODE == 1:
        if cnt > 0:
            blk = tl.load(Indices + hi - 1)
            for s in tl.static_range(BLOCK_M // BLOCK_N):
                kidx = blk * BLOCK_M + s * BLOCK_N + offs_n
                ok = kidx < N_KV
                k = _rows(k_base, kidx, stride_kn, offs_d, ok, True)
                v = _rows(v_base, kidx, stride_vn, offs_d, ok, True)
                acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, ok, True, EXP_POLY, EXP_PTX)
    elif TAIL_REUSE:  # the tail's entries are the loop's prefetched index vector (fg, IDX_AHEAD 1); score mask
        tl.static_assert(MODE == 2 and IDX_AHEAD == 1 and _DIAG_TAIL == 0)  # from arithmetic, no index reload
        if n_full >= 0:
            ok = ent0 + n_full * (BLOCK_N // GRAN_N) < hi
            kidx = nxt * GRAN_N + r_off  # masked entries were loaded as 0
            if GRAN_N > 1:  # a run may end past N
                ok = ok & (kidx < N_KV)
            k = _rows(k_base, kidx, stride_kn, offs_d, ok, True)
            v = _rows(v_base, kidx, stride_vn, offs_d, ok, True)
            acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, ok, True, EXP_POLY, EXP_PTX)
    elif _DIAG_TAIL != 0:  # diagnosis: the fg tail left out or moved (see the module docstring)
        tl.static_assert(MODE == 2 and IDX_AHEAD == 1)
    elif _DIAG_IDX == 1:
        acc, l_i, m_i = _diag_fg_tail(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, Indices, ent0, r_off,
                                      lo, hi, n_full, qb, offs_n, offs_d, qk_scale, N_KV, BLOCK_M, BLOCK_N, GRAN_N, 1)
    else:
        if n_full >= 0:
            ent = ent0 + n_full * (BLOCK_N // GRAN_N)
            e_ok = ent < hi
            kidx = tl.load(Indices + ent, mask=e_ok, other=0) * GRAN_N + r_off
            ok = e_ok & (kidx < N_KV)
            k = _rows(k_base, kidx, stride_kn, offs_d, ok, True)
            v = _rows(v_base, kidx, stride_vn, offs_d, ok, True)
            acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, ok, True, EXP_POLY, EXP_PTX)

    out, lse = _normalize(acc, l_i, m_i)
    if TMA_QO:
        o_desc = tl.make_tensor_descriptor(o_base, shape=[N_Q, HEAD_DIM], strides=[stride_on, 1],
                                           block_shape=[BLOCK_M, HEAD_DIM])
        o_desc.store([qb * BLOCK_M, 0], out.to(Out.dtype.element_ty))
    else:
        o_ptrs = o_base + offs_m[:, None] * stride_on + offs_d[None, :]
        if _DIAG_EPI == 1:  # diagnosis: the store predicated off at run time (qk_scale > 0)
            q_ok = q_ok & (qk_scale < 0.0)
        tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=q_ok[:, None])
    if RETURN_LSE:
        tl.store(Lse + bh.to(tl.int64) * N_Q + offs_m, lse, mask=q_ok)


@triton.jit
def _row_at(Order, pos, N_ROWS, go, ORDERED: tl.constexpr):
    """Row number at launch-order position ``pos`` where ``go`` (row 0 past the end or where not ``go``, so
    that the loads that follow stay in bounds)."""
    ok = (pos < N_ROWS) & go
    if ORDERED:
        return tl.load(Order + pos, mask=ok, other=0)
    return tl.where(ok, pos, 0)


@triton.jit
def _row_start(Q, QDesc, row, QB, H, N_Q, stride_qb, stride_qh, stride_qn, offs_q, offs_d, BLOCK_M: tl.constexpr,
               HEAD_DIM: tl.constexpr, TMA_Q: tl.constexpr, GUARD: tl.constexpr = False, go=None):
    """A persistent program's new row: its Q tile (rows past N read as zeros; ``TMA_Q``: by TMA through the
    host-built (B, H, N, D) descriptor) and a fresh online-softmax state (running max -inf, sum 0, accumulator 0).
    ``GUARD`` and ``go`` false (a position past the last row): the pointer load is predicated off (zeros)."""
    bh = row // QB
    if TMA_Q:
        q = QDesc.load([(bh // H).to(tl.int32), (bh % H).to(tl.int32), (row % QB) * BLOCK_M, 0]).reshape(
            BLOCK_M, HEAD_DIM)
    else:
        q_base = Q + (bh // H).to(tl.int64) * stride_qb + (bh % H).to(tl.int64) * stride_qh
        offs_m = (row % QB) * BLOCK_M + offs_q
        q_ok = offs_m < N_Q
        if GUARD:
            q_ok = tl.where(go, q_ok, False)
        q = _rows(q_base, offs_m, stride_qn, offs_d, q_ok, True)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    return q, m_i, l_i, acc


@triton.jit
def _next_position(Counter, pos2, G, QUEUE: tl.constexpr):
    """Launch position of a program's row three ahead of its current one, given the position ``pos2`` of the row
    two ahead: the next untaken position of the work queue (the first 3·G positions are taken statically, so the
    counter starts at 3·G), or every G-th position (static round-robin)."""
    if QUEUE:
        return 3 * G + tl.atomic_add(Counter, 1, sem="relaxed")
    return pos2 + G


@triton.jit
def _n_items(lo, hi, N_KV, MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
             GRAN_N: tl.constexpr):
    """Key tiles (loop items) of a row with index entries [lo, hi); at least its tail tiles (one; block: the
    sub-tiles of one block), all masked in an empty row, which writes zeros."""
    if MODE == 2:
        return tl.maximum(tl.cdiv(hi - lo, BLOCK_N // GRAN_N), 1)
    elif MODE == 1:
        return tl.maximum(hi - lo, 1) * (BLOCK_M // BLOCK_N)
    else:
        return tl.cdiv(N_KV, BLOCK_N) + 0 * lo


@triton.jit
def _entry(Indices, lo, hi, t, e_off, MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
           GRAN_N: tl.constexpr, FOLD: tl.constexpr = 0, x_key=0):
    """Index entries of tile ``t`` of a row (loaded one item ahead): fg a vector (one per key column), block
    the kept block's number, dense nothing.  ``FOLD`` (fg gran 1): entries past the row's end are the row's last
    entry (an empty row's 0), so the last tile needs no mask (:func:`_row`): 1 the ones past the end loaded as
    2^31 - 1, which the caller maps to the last entry ``x_key`` by min(entry, x_key) (the entries are sorted; the
    load keeps its contiguous addresses: one coalesced load per thread in the loop, and its result is carried to
    the next iteration unchanged, as the software pipeliner needs it), 2 read from clamped addresses (a row's first
    entries, loaded before ``x_key`` arrives)."""
    if MODE == 2:
        ent = lo + t * (BLOCK_N // GRAN_N) + e_off
        if FOLD == 2:
            ent = tl.minimum(ent, hi - 1)
            return tl.load(Indices + ent, mask=ent >= lo, other=0)
        if FOLD == 1:  # past the end: 2^31 - 1, which min(entry, x_key) at the use (:func:`_row`) maps to x_key
            return tl.load(Indices + ent, mask=ent < hi, other=2147483647)
        return tl.load(Indices + ent, mask=ent < hi, other=0)
    elif MODE == 1:
        ent = lo + t // (BLOCK_M // BLOCK_N)
        return tl.load(Indices + ent, mask=ent < hi, other=0)
    else:
        return 0


@triton.jit
def _keys(nxt, t, r_off, offs_n, N_KV, MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
          GRAN_N: tl.constexpr):
    """Key numbers of tile ``t``, all inside [0, N): columns that are not kept keys (masked index entries, loaded
    as 0; the end of a last run or block past N) read a real key row and are masked out of the scores by
    :func:`_tail_ok` (they occur in a row's tail tiles only)."""
    if MODE == 2:  # fine-grained: runs of GRAN_N keys listed by the index
        kidx = nxt * GRAN_N + r_off
        if GRAN_N > 1:
            kidx = tl.minimum(kidx, N_KV - 1)
    elif MODE == 1:  # block-sparse: sub-tile t % SUB of kept block nxt
        kidx = tl.minimum(nxt * BLOCK_M + (t % (BLOCK_M // BLOCK_N)) * BLOCK_N + offs_n, N_KV - 1)
    else:  # dense
        kidx = tl.minimum(t * BLOCK_N + offs_n, N_KV - 1)
    return kidx


@triton.jit
def _tail_ok(Indices, blk, lo, hi, t, offs_n, N_KV, MODE: tl.constexpr, BLOCK_M: tl.constexpr,
             BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr):
    """The same column validity as :func:`_keys`, recomputed (fg gran_n > 1: the entries reloaded) where the
    score tile needs it, so no per-column vector in the score layout lives across the loop."""
    if MODE == 2:
        ent = lo + t * (BLOCK_N // GRAN_N) + offs_n // GRAN_N
        ok = ent < hi
        if GRAN_N > 1:  # a run may end past N (the last, partial run of keys)
            ok = ok & (tl.load(Indices + ent, mask=ok, other=0) * GRAN_N + offs_n % GRAN_N < N_KV)
    elif MODE == 1:
        ok = (blk * BLOCK_M + (t % (BLOCK_M // BLOCK_N)) * BLOCK_N + offs_n < N_KV) & (hi > lo)
    else:
        ok = t * BLOCK_N + offs_n < N_KV
    return ok


@triton.jit
def _prefetch_l2(ptrs):
    """``prefetch.global.L2`` of the 128-B line at each pointer (no data returned; a GPU hint only)."""
    return tl.inline_asm_elementwise("prefetch.global.L2 [$1]; mov.u32 $0, 0;", "=r,l", [ptrs], dtype=tl.int32,
                                     is_pure=False, pack=1)


@triton.jit
def _prefetch_tile(K, V, bh, H, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, ent, t, r_off,
                   offs_n, N_KV, HEAD_DIM: tl.constexpr, MODE: tl.constexpr, BLOCK_M: tl.constexpr,
                   BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr):
    """L2 prefetch of the K and V rows of tile ``t`` (index entries ``ent``): one per 64 head-dim elements."""
    kidx = _keys(ent, t, r_off, offs_n, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N).to(tl.int64)
    seg = tl.arange(0, HEAD_DIM // 64) * 64
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    _prefetch_l2(K + b * stride_kb + h * stride_kh + kidx[:, None] * stride_kn + seg[None, :])
    _prefetch_l2(V + b * stride_vb + h * stride_vh + kidx[:, None] * stride_vn + seg[None, :])


@triton.jit
def _hint_l2(ptrs, ok, HINT: tl.constexpr):
    """L2 prefetch of the 128-B line at each pointer where ``ok`` (``HINT``; a GPU hint, no data returned); without
    ``HINT`` (the CPU interpreter, which runs no inline PTX) a plain masked load of the same addresses, whose result
    is dropped, so that the interpreter still walks (and bounds) every address."""
    if HINT:
        tl.inline_asm_elementwise("{ .reg .pred p; setp.ne.s32 p, $2, 0; @p prefetch.global.L2 [$1]; mov.u32 $0, 0; }",
                                  "=r,l,r", [ptrs, ok.to(tl.int32)], dtype=tl.int32, is_pure=False, pack=1)
    else:
        tl.load(ptrs, mask=ok)


@triton.jit
def _prefetch_row_start(Q, Indices, row_a, lo_a, hi_a, go_a, QB, H, N_Q, stride_qb, stride_qh, stride_qn, offs_q,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr, HEAD_DIM: tl.constexpr,
                        HINT: tl.constexpr):
    """Launch option ``row_ahead``: L2 prefetch of what a later row's start waits for, so that its program (at a
    later launch position, started while this one runs) finds it in L2 instead of HBM: the row's Q tile (one
    128-B line per thread at D 128 bf16) and the index entries of its first two tiles (the ones its pipeline
    prologue reads; the row's own Offsets entry was read by this program's load of ``lo_a``).  Nothing where
    ``go_a`` is false (no such launch position)."""
    LINE: tl.constexpr = 1024 // Q.dtype.element_ty.primitive_bitwidth  # elements per 128-B line
    SEG: tl.constexpr = HEAD_DIM // LINE if HEAD_DIM > LINE else 1
    seg = tl.arange(0, SEG) * LINE
    bh = row_a // QB
    q_base = Q + (bh // H).to(tl.int64) * stride_qb + (bh % H).to(tl.int64) * stride_qh
    offs_m = (row_a % QB) * BLOCK_M + offs_q
    _hint_l2(q_base + offs_m[:, None] * stride_qn + seg[None, :],
             tl.where(go_a, (offs_m < N_Q)[:, None] & (seg < LINE)[None, :], False), HINT)
    # index lines (32 int32 entries each) from lo_a's line up to the end of the first two tiles' entries
    E: tl.constexpr = 2 * BLOCK_N // GRAN_N  # entries; an unaligned start adds one line: E // 32 + 1 lines
    NL: tl.constexpr = 16 if E > 128 else (8 if E > 64 else (4 if E > 32 else 2))
    first = (lo_a // 32) * 32
    ent = first + tl.arange(0, NL) * 32
    end = tl.minimum(hi_a, lo_a + 2 * (BLOCK_N // GRAN_N))
    _hint_l2(Indices + ent, tl.where(go_a, ent < end, False), HINT)


@triton.jit
def _row(q, m_i, l_i, acc, nxt, row, lo, hi, n_t, K, V, Out, Lse, Indices, qk_scale,
         stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_ob, stride_oh, stride_on,
         H, N_Q, N_KV, QB, offs_n, offs_d, offs_q, e_off, r_off, no_mask,
         MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr,
         NUM_STAGES: tl.constexpr, RETURN_LSE: tl.constexpr, IDX_EARLY: tl.constexpr, ODesc=None,
         TMA_O: tl.constexpr = False, FOLD: tl.constexpr = False, EXP_POLY: tl.constexpr = 0,
         EXP_PTX: tl.constexpr = True, TAIL_PF: tl.constexpr = False):
    """One row (query block) of the nested form, O = softmax(S)·V over its ``n_t`` key tiles: the full tiles in
    the software-pipelined loop (unmasked; ``nxt`` holds the entries of the tile being run, the next tile's are
    loaded one tile ahead: with ``IDX_EARLY`` at the top of the iteration, before this tile's gathers), the masked
    tail tile(s) after the loop with the entries the loop prefetched, then O = acc / l (zeros for an empty row)
    and its log-sum-exp stored."""
    tl.static_assert(not FOLD or (MODE == 2 and GRAN_N == 1))
    # masked tail tiles per row (block: the last block's); FOLD: none, the last tile runs in the loop
    TAIL: tl.constexpr = 0 if FOLD else (BLOCK_M // BLOCK_N if MODE == 1 else 1)
    bh = row // QB
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    x_key = 0
    kx = tl.zeros([offs_d.shape[0]], dtype=K.dtype.element_ty)
    vx = tl.zeros([offs_d.shape[0]], dtype=V.dtype.element_ty)
    if FOLD:  # the row's last kept key x, whose copies fill the last tile's unused columns: its K and V rows,
        # loaded now, in flight during the loop (registers; not in the loads' way: a dot here would hold up the
        # first tiles' gathers)
        x_key = tl.load(Indices + tl.maximum(hi - 1, lo), mask=hi > lo, other=0)
        kx = tl.load(K + b * stride_kb + h * stride_kh + x_key.to(tl.int64) * stride_kn + offs_d)
        vx = tl.load(V + b * stride_vb + h * stride_vh + x_key.to(tl.int64) * stride_vn + offs_d)
    if TAIL_PF:  # the tail tile's entries, loaded now (not waited for until the loop's first iteration)
        tl.static_assert(MODE == 2 and not FOLD)
        last = _entry(Indices, lo, hi, n_t - 1, e_off, MODE, BLOCK_M, BLOCK_N, GRAN_N)
    for t in tl.range(0, n_t - TAIL, num_stages=NUM_STAGES):  # the row's full tiles, unmasked
        if TAIL_PF:  # first iteration, after the pipeline prologue's gathers: the tail tile's K/V into L2
            if t == 0:
                _prefetch_tile(K, V, row // QB, H, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                               last, n_t - 1, r_off, offs_n, N_KV, offs_d.shape[0], MODE, BLOCK_M, BLOCK_N, GRAN_N)
        if IDX_EARLY:  # the next tile's entries issued before this tile's gathers, as _attn_fwd does
            nxt_next = _entry(Indices, lo, hi, t + 1, e_off, MODE, BLOCK_M, BLOCK_N, GRAN_N, FOLD, x_key)
        kidx = _keys(nxt, t, r_off, offs_n, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N)
        if FOLD:  # columns past the row's end (entries 2^31 - 1, or the clamped first ones): its last key
            kidx = tl.minimum(kidx, x_key)
        k = _rows(K + b * stride_kb + h * stride_kh, kidx, stride_kn, offs_d, no_mask, False)
        v = _rows(V + b * stride_vb + h * stride_vh, kidx, stride_vn, offs_d, no_mask, False)
        acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, no_mask, False, EXP_POLY, EXP_PTX)
        if IDX_EARLY:
            nxt = nxt_next
        else:
            nxt = _entry(Indices, lo, hi, t + 1, e_off, MODE, BLOCK_M, BLOCK_N, GRAN_N, FOLD, x_key)
    if FOLD:  # take out the n_pad copies of key x the last tile held: their score s_x (the same wgmma as the
        # loop's), p_x = exp2(s_x·c - m) at the final running max m (the last tile's, so never rescaled since)
        n_pad = n_t * BLOCK_N - (hi - lo)
        # x_chk = x_key (nxt holds tile n_t's entries, all past the end: 2^31 - 1); this use of nxt after the loop
        # keeps the loop's index load in its compact layout (one load per thread, converted through shared
        # memory), as in the other forms: without a use, Triton 3.6 loads it in the gather layout (8 loads,
        # +50 instructions per tile)
        x_chk = tl.minimum(x_key, tl.min(nxt, 0))
        if (n_pad > 0) & (hi > lo) & (x_chk == x_key):
            s_x = tl.max(tl.dot(q, tl.trans(tl.broadcast_to(kx[None, :], (16, offs_d.shape[0])))), 1)  # the
            # loop's wgmma (16 equal columns of key x)
            p_x = tl.math.exp2(s_x * qk_scale - m_i)
            w_x = n_pad.to(tl.float32) * p_x.to(vx.dtype).to(tl.float32)  # P·V used p in the value dtype
            l_i = l_i - n_pad.to(tl.float32) * p_x
            acc = acc - w_x[:, None] * vx.to(tl.float32)[None, :]
    # the tail tile(s) after the pipelined loop (no branch inside it), with the entries the loop prefetched;
    # kept keys only
    for s in tl.static_range(TAIL):
        tt = n_t - TAIL + s
        kidx = _keys(nxt, tt, r_off, offs_n, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N)
        k = _rows(K + b * stride_kb + h * stride_kh, kidx, stride_kn, offs_d, no_mask, False)
        v = _rows(V + b * stride_vb + h * stride_vh, kidx, stride_vn, offs_d, no_mask, False)
        ok_s = _tail_ok(Indices, nxt, lo, hi, tt, offs_n, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N)
        acc, l_i, m_i = _attend(acc, l_i, m_i, q, k, v, qk_scale, ok_s, True, EXP_POLY, EXP_PTX)
    empty = (hi == lo) & (MODE != 0)
    out, lse = _normalize(acc, tl.where(empty, 0.0, l_i), m_i)
    out = tl.where(empty, 0.0, out)
    offs_m = (row % QB) * BLOCK_M + offs_q
    if TMA_O:  # one bulk tensor store from shared memory (rows past N clipped by the descriptor's bounds)
        ODesc.store([(bh // H).to(tl.int32), (bh % H).to(tl.int32), (row % QB) * BLOCK_M, 0],
                    out.to(Out.dtype.element_ty).reshape(1, 1, BLOCK_M, offs_d.shape[0]))
    else:
        o_ptrs = (Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_on + offs_d[None, :])
        tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=(offs_m < N_Q)[:, None])
    if RETURN_LSE:
        tl.store(Lse + bh.to(tl.int64) * N_Q + offs_m, lse, mask=offs_m < N_Q)


@triton.jit
def _attn_fwd_persistent(
    Q, K, V, Out, Lse, Offsets, Indices, Order, QDesc, qk_scale,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_on,
    H, N_Q, N_KV, QB, N_ROWS, Counter,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GRAN_N: tl.constexpr,
    MODE: tl.constexpr, ORDERED: tl.constexpr, NUM_STAGES: tl.constexpr, RETURN_LSE: tl.constexpr,
    FLAT: tl.constexpr, QUEUE: tl.constexpr = False, IDX_EARLY: tl.constexpr = False, TMA_Q: tl.constexpr = False,
    ODesc=None, GUARD: tl.constexpr = False, TMA_O: tl.constexpr = False, FOLD: tl.constexpr = False,
    ROWREC: tl.constexpr = False, PREFETCH: tl.constexpr = False, AHEAD: tl.constexpr = 0,
    AHEAD_HINT: tl.constexpr = True, EXP_POLY: tl.constexpr = 0, EXP_PTX: tl.constexpr = True,
    TAIL_PF: tl.constexpr = False,
):
    """Persistent kernel: program p of G runs the rows (query blocks) at launch positions p, p+G, p+2G, ...
    ``FLAT``: as ONE software-pipelined loop over (row, key tile) items, so the next row's index entries and
    first K/V loads are in flight while the current row finishes (no per-row pipeline fill; Q is loop-carried
    in registers and copied to shared memory every item).  Not ``FLAT``: a loop over rows around the pipelined
    loop over the row's full tiles (a pipeline fill per row; Q copied to shared memory once per row), the masked
    tail tile(s) after it (no branch inside the pipelined loop), with the next row's state and first index
    entries loaded during the current row.  Same math as :func:`_attn_fwd`
    (S = Q·Kᵀ, :func:`_softmax_pv`, :func:`_normalize`); the keys of an item come from :func:`_keys` (the
    modes' only difference, as ``_tile`` there).  A row's tail tiles mask the columns that are not kept keys
    (past the row's entries or past N) to -inf; an empty row is one all-masked item that writes zeros.
    ``QUEUE`` (not ``FLAT`` only): program p's first three rows are launch positions p, p+G, p+2G; every later
    one is the next untaken position of a global work queue (``Counter``, int32, zero at launch, advanced with
    one relaxed atomic per row), taken three rows ahead so that its Order and Offsets loads are in flight
    during the rows in between: a program that finishes early takes more rows, in launch (heavy-first) order.
    Launch option ``one_row``: G = rows, so each program runs the nested form's one row (:func:`_row`) at launch
    position p, placed by the hardware's CTA dispatch as :func:`_attn_fwd`; its next-row loads then read row 0's
    state and go unused (a specialisation without them compiled to 225 instead of 255 registers and ran 10 % slower
    per tile: kernels/NOTES.md, session 5).  ``TMA_Q``: Q by TMA through a host-built descriptor (:func:`_row_start`).
    ``GUARD`` (not ``FLAT``): the next row's Offsets, index and Q loads predicated off at run time where there is no
    next row (with ``one_row`` always: no dead loads in flight when the program ends).  ``TMA_O`` (not ``FLAT``):
    O stored by a bulk tensor store through the host-built descriptor ``ODesc`` (:func:`_row`).  ``FOLD`` (not
    ``FLAT``; fg gran 1): no masked tail tile: the last tile runs in the pipelined loop with its unused columns
    reading the row's last kept key, whose extra copies are subtracted after the loop (:func:`_row`).
    ``ROWREC`` (``one_row`` only; session-7c candidate): ``Order`` points to one int32 record (row, lo, hi, 0)
    per launch position, built on the host from Order and Offsets (:func:`_row_records`), so the row's number and
    its index range are three independent loads instead of Order -> Offsets (one global round trip less before
    the index and Q loads can start).  ``PREFETCH`` (not ``FLAT``, fg; session-7c candidate): right after the
    row's Q load is issued, L2 prefetches of the K/V rows of its first and its tail tile (:func:`_prefetch_tile`),
    so that their gathers (the pipeline's first cp.async, issued only after Q has reached shared memory, and the
    tail's register loads after the loop) find them in L2 instead of waiting for HBM.  ``AHEAD`` > 0 (launch option
    ``row_ahead``; ``one_row``, fg; session-8 candidate): the program at launch position p reads the row number and
    Offsets entry of position p + ``AHEAD`` beside its own and, once its own Q load is issued, L2-prefetches that
    row's Q tile and first index entries (:func:`_prefetch_row_start`): that program starts about ``AHEAD`` / SMs
    row times later and its row start (Order -> Offsets -> index -> first gathers, and Q before them) then reads
    L2 instead of HBM (``AHEAD_HINT`` false: plain loads instead of the hint, for the CPU interpreter).
    ``EXP_POLY`` (launch option ``exp_poly``; session 9): one element of P in every ``EXP_POLY`` by an FMA
    polynomial instead of MUFU.EX2 (:func:`_exp2_mixed`).  ``TAIL_PF`` (launch option ``tail_prefetch``, not
    ``FLAT``, fg, not ``FOLD``; session-9 candidate): the tail tile's index entries loaded before the row's loop and
    its K/V rows L2-prefetched in the loop's first iteration, after the pipeline prologue's gathers (the tail-only
    part of ``PREFETCH``, off the row start's critical path)."""
    tl.static_assert(not FLAT or not (GUARD or TMA_O or FOLD or ROWREC or PREFETCH or AHEAD > 0))
    pid = tl.program_id(0)
    G = tl.num_programs(0)
    TAIL: tl.constexpr = BLOCK_M // BLOCK_N if MODE == 1 else 1  # masked tail tiles per row (block: last block's)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    offs_q = tl.arange(0, BLOCK_M)
    e_off = offs_n // GRAN_N  # fg: entry of each key column within its tile
    r_off = offs_n % GRAN_N  # fg: key of each column within its run
    no_mask = offs_n < BLOCK_N  # all-true placeholder: loads and scores of a tile are masked by _tail_ok only

    # ---- items of this program: the key tiles of its rows --------------------------------------------------
    n_my = tl.cdiv(N_ROWS - pid, G)
    total = 0  # items of the flat loop
    if FLAT:
        if MODE == 0:
            total = n_my * tl.cdiv(N_KV, BLOCK_N)
        else:
            for c in range(0, n_my, 128):
                j = c + tl.arange(0, 128)
                rows = _row_at(Order, pid + j * G, N_ROWS, True, ORDERED)
                r_lo = tl.load(Offsets + rows).to(tl.int32)
                r_hi = tl.load(Offsets + rows + 1).to(tl.int32)
                total += tl.sum(tl.where(j < n_my, _n_items(r_lo, r_hi, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N), 0))

    # ---- row state: this row (row, lo, hi), the next row's (row1, lo1, hi1), the number of the one after ---
    lo = 0
    hi = 0
    lo1 = 0
    hi1 = 0
    if ROWREC:  # one record per launch position: the row and its range in independent loads
        row = tl.load(Order + 4 * pid)
        lo = tl.load(Order + 4 * pid + 1)
        hi = tl.load(Order + 4 * pid + 2)
    else:
        row = _row_at(Order, pid, N_ROWS, True, ORDERED)
    if AHEAD > 0:  # the row at launch position pid + AHEAD (row 0 past the end; then nothing is prefetched)
        tl.static_assert(MODE == 2 and not ROWREC)
        go_a = pid + AHEAD < N_ROWS
        row_a = _row_at(Order, pid + AHEAD, N_ROWS, True, ORDERED)
        lo_a = tl.load(Offsets + row_a).to(tl.int32)
        hi_a = tl.load(Offsets + row_a + 1).to(tl.int32)
    row1 = _row_at(Order, pid + G, N_ROWS, True, ORDERED)
    if MODE != 0:
        if not ROWREC:
            lo = tl.load(Offsets + row).to(tl.int32)
            hi = tl.load(Offsets + row + 1).to(tl.int32)
        if GUARD:  # no next row: lo1 = hi1 = 0, so its index entries are not loaded either
            lo1 = tl.load(Offsets + row1, mask=pid + G < N_ROWS, other=0).to(tl.int32)
            hi1 = tl.load(Offsets + row1 + 1, mask=pid + G < N_ROWS, other=0).to(tl.int32)
        else:
            lo1 = tl.load(Offsets + row1).to(tl.int32)
            hi1 = tl.load(Offsets + row1 + 1).to(tl.int32)
    pos2 = pid + 2 * G
    row2 = _row_at(Order, pos2, N_ROWS, True, ORDERED)
    n_t = _n_items(lo, hi, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N)
    t = 0
    nxt = _entry(Indices, lo, hi, t, e_off, MODE, BLOCK_M, BLOCK_N, GRAN_N, FOLD)  # the next item's entries

    q, m_i, l_i, acc = _row_start(Q, QDesc, row, QB, H, N_Q, stride_qb, stride_qh, stride_qn, offs_q, offs_d,
                                  BLOCK_M, HEAD_DIM, TMA_Q)
    if AHEAD > 0:  # after this row's Q load is issued: a later row's start into L2
        _prefetch_row_start(Q, Indices, row_a, lo_a, hi_a, go_a, QB, H, N_Q, stride_qb, stride_qh, stride_qn,
                            offs_q, BLOCK_M, BLOCK_N, GRAN_N, HEAD_DIM, AHEAD_HINT)
    if PREFETCH:  # after Q's load is issued, before Q is stored to shared memory (which waits for it)
        tl.static_assert(MODE == 2)
        last = _entry(Indices, lo, hi, n_t - 1, e_off, MODE, BLOCK_M, BLOCK_N, GRAN_N)  # the tail tile's entries
        _prefetch_tile(K, V, row // QB, H, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, nxt, 0,
                       r_off, offs_n, N_KV, HEAD_DIM, MODE, BLOCK_M, BLOCK_N, GRAN_N)
        _prefetch_tile(K, V, row // QB, H, stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, last,
                       n_t - 1, r_off, offs_n, N_KV, HEAD_DIM, MODE, BLOCK_M, BLOCK_N, GRAN_N)

    if not FLAT:
        # launch positions of this row, the next two (row1, row2) and the one whose number is loaded next
        tl.static_assert(not QUEUE or not FLAT)
        pos = pid
        pos1 = pid + G
        pos3 = _next_position(Counter, pos2, G, QUEUE)
        while pos < N_ROWS:
            nxt1 = _entry(Indices, lo1, hi1, 0, e_off, MODE, BLOCK_M, BLOCK_N, GRAN_N, FOLD)  # next row's
            _row(q, m_i, l_i, acc, nxt, row, lo, hi, n_t, K, V, Out, Lse, Indices, qk_scale,
                 stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_ob, stride_oh, stride_on,
                 H, N_Q, N_KV, QB, offs_n, offs_d, offs_q, e_off, r_off, no_mask,
                 MODE, BLOCK_M, BLOCK_N, GRAN_N, NUM_STAGES, RETURN_LSE, IDX_EARLY, ODesc, TMA_O, FOLD, EXP_POLY,
                 EXP_PTX, TAIL_PF)
            # ---- the next row: its state was prefetched; prefetch the one after -----------------------------------
            row = row1
            lo = lo1
            hi = hi1
            n_t = _n_items(lo1, hi1, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N)
            nxt = nxt1
            if MODE != 0:
                if GUARD:
                    lo1 = tl.load(Offsets + row2, mask=pos2 < N_ROWS, other=0).to(tl.int32)
                    hi1 = tl.load(Offsets + row2 + 1, mask=pos2 < N_ROWS, other=0).to(tl.int32)
                else:
                    lo1 = tl.load(Offsets + row2).to(tl.int32)
                    hi1 = tl.load(Offsets + row2 + 1).to(tl.int32)
            row1 = row2
            row2 = _row_at(Order, pos3, N_ROWS, True, ORDERED)
            pos = pos1
            pos1 = pos2
            pos2 = pos3
            q, m_i, l_i, acc = _row_start(Q, QDesc, row, QB, H, N_Q, stride_qb, stride_qh, stride_qn, offs_q,
                                          offs_d, BLOCK_M, HEAD_DIM, TMA_Q, GUARD, pos < N_ROWS)
            # after the Q load: a queue atomic's round trip (one thread, then a CTA barrier) overlaps Q's
            pos3 = _next_position(Counter, pos2, G, QUEUE)

    if FLAT:  # one pipelined loop over (row, key tile) items
        for _ in tl.range(0, total, num_stages=NUM_STAGES):
            # ---- the key tile of this item ---------------------------------------------------------------------
            bh = row // QB
            b = (bh // H).to(tl.int64)
            h = (bh % H).to(tl.int64)
            kidx = _keys(nxt, t, r_off, offs_n, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N)
            k = _rows(K + b * stride_kb + h * stride_kh, kidx, stride_kn, offs_d, no_mask, False)
            v = _rows(V + b * stride_vb + h * stride_vh, kidx, stride_vn, offs_d, no_mask, False)
            last = t == n_t - 1
            qk = tl.dot(q, tl.trans(k))
            if t >= n_t - TAIL:  # the row's tail tile(s): kept keys only
                ok_s = _tail_ok(Indices, nxt, lo, hi, t, offs_n, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N)
                qk = tl.where(ok_s[None, :], qk, float("-inf"))
            acc, l_i, m_i = _softmax_pv(acc, l_i, m_i, qk, v, qk_scale, no_mask, False, EXP_POLY, EXP_PTX)

            # ---- the next item's row state (scalar selects, no branch, so its loads can be issued ahead) -------
            cur_bh = bh
            cur_qb = row % QB
            cur_empty = (hi == lo) & (MODE != 0)
            t = tl.where(last, 0, t + 1)
            row = tl.where(last, row1, row)
            lo = tl.where(last, lo1, lo)
            hi = tl.where(last, hi1, hi)
            n_t = tl.where(last, _n_items(lo1, hi1, N_KV, MODE, BLOCK_M, BLOCK_N, GRAN_N), n_t)
            if last:  # a branch, not selects: a load at the loop's top level would be software-pipelined through
                # shared memory, and its wait (cp.async.wait_group 0) drains the K/V loads in flight every item
                if MODE != 0:
                    lo1 = tl.load(Offsets + row2).to(tl.int32)
                    hi1 = tl.load(Offsets + row2 + 1).to(tl.int32)
                row1 = row2
                pos2 += G
                row2 = _row_at(Order, pos2, N_ROWS, True, ORDERED)
            nxt = _entry(Indices, lo, hi, t, e_off, MODE, BLOCK_M, BLOCK_N, GRAN_N)

            # ---- a finished row: epilogue, then the next row's Q ---------------------------------------------------
            if last:
                out, lse = _normalize(acc, tl.where(cur_empty, 0.0, l_i), m_i)
                out = tl.where(cur_empty, 0.0, out)  # an empty row's all-masked item left NaN in acc
                offs_m = cur_qb * BLOCK_M + offs_q
                o_ptrs = (Out + (cur_bh // H).to(tl.int64) * stride_ob + (cur_bh % H).to(tl.int64) * stride_oh
                          + offs_m[:, None] * stride_on + offs_d[None, :])
                tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=(offs_m < N_Q)[:, None])
                if RETURN_LSE:
                    tl.store(Lse + cur_bh.to(tl.int64) * N_Q + offs_m, lse, mask=offs_m < N_Q)
                q, m_i, l_i, acc = _row_start(Q, QDesc, row, QB, H, N_Q, stride_qb, stride_qh, stride_qn, offs_q,
                                              offs_d, BLOCK_M, HEAD_DIM, TMA_Q)


# ----------------------------------------------------------------------------------------------
# host side
# ----------------------------------------------------------------------------------------------


def _sm_count(device: torch.device) -> int:
    """SMs a persistent launch sizes its grid for: :func:`fgattn.limit_sms` if active, else the device's
    multiprocessor count (the CPU interpreter: :data:`fgattn.schedule.DEFAULT_SMS`)."""
    n = sm_limit()
    if n is not None:
        return n
    if device.type != "cuda":
        return DEFAULT_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


_ALLOCATOR_SET = False


def _ensure_allocator() -> None:
    """Device-side tensor descriptors need a scratch allocator (128 B per descriptor)."""
    global _ALLOCATOR_SET
    if not _ALLOCATOR_SET:
        triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8, device="cuda"))
        _ALLOCATOR_SET = True


def _device_gpu(device: torch.device) -> str:
    """Launch-table key of ``device``; the CPU interpreter uses the h200 entries."""
    if device.type != "cuda":
        return "h200"
    return gpu_key(torch.cuda.get_device_name(device))


def resolve_config(
    kernel: str, q: torch.Tensor, block_m: int, gran_n: int = 1, config: LaunchConfig | None = None
) -> LaunchConfig:
    """The :class:`LaunchConfig` a call will launch with (table lookup unless ``config`` is given)."""
    d = q.shape[-1]
    if q.dtype not in _DTYPES:
        raise ValueError(f"dtype: {q.dtype} not supported (bfloat16, float16, float32)")
    if config is None:
        return launch_config(kernel, _device_gpu(q.device), d, block_m, gran_n, _DTYPES[q.dtype])
    if config.kernel != kernel:
        raise ValueError(f"config: kernel {config.kernel!r} given to the {kernel!r} kernel")
    want_gran = {"fg": gran_n, "block": block_m, "dense": 1}[kernel]
    if (config.head_dim, config.block_m, config.gran_n) != (d, block_m, want_gran):
        raise ValueError(
            f"config: (head_dim, block_m, gran_n)=({config.head_dim}, {config.block_m}, {config.gran_n}) "
            f"does not match the call ({d}, {block_m}, {want_gran})"
        )
    check_impl(config.kernel, config.head_dim, config.block_m, config.gran_n, config.extra, "config")
    return config


#: environment switch: ``FGATTN_GLUON=0`` launches the tl kernel for every ``impl: gluon`` entry (A/B runs)
GLUON_ENV = "FGATTN_GLUON"


def _aligned16(t: torch.Tensor) -> bool:
    """Base address and every stride but the last a multiple of 16 bytes (TMA boxes, 16-byte cp.async vectors)."""
    return not (t.data_ptr() % 16 or any(st * t.element_size() % 16 for st in t.stride()[:-1]))


def fg_route(q: torch.Tensor, cfg: LaunchConfig, *, return_lse: bool = False, k: torch.Tensor | None = None,
             v: torch.Tensor | None = None, index: FgIndex | None = None) -> tuple[str, str]:
    """Which implementation :func:`fg_attention` launches for ``cfg`` on ``q``: ``("gluon", "")`` or
    ``("tl", why)``; for an entry whose ``extra["gluon"]["schedule"]`` is ``"list"`` (the packaged fg D128 M128 g1
    entry since session 13) ``("gluon", "schedule list ...")``: ``fgattn.gluon_fg_list``'s launch of the ws2 body
    over the index's memoised row plan, or,
    while a CUDA graph is being captured and no plan of ``index`` is memoised yet, ``("gluon", "schedule list ->
    walk: ...")`` (the walk needs no host work; a warm-up call or ``fgattn.gluon_fg_list.prepare_list_plan`` before
    capture makes the captured graph run the list schedule).  The rule, in order: the entry's ``impl`` (``extra["impl"]``, default tl); then for an
    ``impl: gluon`` entry the tl kernel (same entry, ``impl`` / ``gluon`` dropped: the same attention, the
    entry's tl options) when ``FGATTN_GLUON=0``, under the interpreter (``TRITON_INTERPRET=1``), for a non-CUDA
    ``q``, without Triton's Gluon API, on a GPU other than sm_90, for fp32, with ``return_lse`` (the Gluon form
    has no LSE output) or when the base / strides of Q (its TMA descriptor) or of the given ``k`` / ``v`` (16-byte
    cp.async gathers) are not 16-byte aligned; else the Gluon form
    (``fgattn.gluon_fg.fg_attention_gluon`` with the entry's knobs).  Invalid knobs raise (never a fallback)."""
    if cfg.impl != "gluon":
        return "tl", "entry impl tl"
    cfg.gluon_options()  # validates the knobs (one ValueError line) wherever the call runs

    def available() -> str | None:
        from .gluon_fg import gluon_available

        return gluon_available()

    why = _gluon_blocker(q, return_lse, available, k, v, "gathers 16-byte vectors")
    if why is not None:
        return "tl", why
    if cfg.gluon_expand():  # gran 16 / 64: the gran-1 list kernel on the expanded index (fgattn.gran_expand)
        from . import gran_expand

        if index is not None and index.gran_n != 1:
            if gran_expand._capturing() and not gran_expand.has_expanded(index):
                return "tl", ("CUDA-graph capture and no expansion of this gran-"
                              f"{index.gran_n} index prepared (warm up outside capture or call "
                              "fgattn.gran_expand.prepare_expanded first)")
            index = gran_expand.cached_expanded(index)
        return "gluon", "expand (fgattn.gran_expand, memoised per index) + " + _list_why(q, cfg, index)
    if cfg.gluon_schedule() == "list":
        return "gluon", _dyn_why(q, cfg, index) or _list_why(q, cfg, index)
    return "gluon", ""


def _gluon_blocker(q: torch.Tensor, return_lse: bool, available, k: torch.Tensor | None, v: torch.Tensor | None,
                   kv_use: str) -> str | None:
    """Why a Gluon form cannot run this call (the run-time rule :func:`fg_route` / :func:`contig_route` share), or
    None: ``available()`` says whether this Triton has the form's Gluon API; ``kv_use`` how the form reads K / V."""
    if os.environ.get(GLUON_ENV, "1") == "0":
        return f"{GLUON_ENV}=0"
    if _interpreting():
        return "TRITON_INTERPRET=1 (the Gluon form has no interpreter path)"
    if q.device.type != "cuda":
        return f"q on {q.device.type} (the Gluon form runs on CUDA GPUs only)"
    if q.dtype not in (torch.bfloat16, torch.float16):
        return f"dtype {q.dtype} (the Gluon form takes bfloat16 / float16)"
    if return_lse:
        return "return_lse (the Gluon form has no LSE output)"
    major, minor = torch.cuda.get_device_capability(q.device)
    if major != 9:
        return f"sm_{major}{minor} (the Gluon form needs sm_90)"
    why = available()
    if why is not None:
        return f"no Gluon in this Triton ({why})"
    if not _aligned16(q):
        return "q's base or strides not 16-byte aligned (the Gluon form reads Q by TMA)"
    for name, t in (("k", k), ("v", v)):
        if t is not None and not _aligned16(t):
            return f"{name}'s base or strides not 16-byte aligned (the Gluon form {kv_use})"
    return None


def contig_route(q: torch.Tensor, cfg: LaunchConfig, *, return_lse: bool = False, k: torch.Tensor | None = None,
                 v: torch.Tensor | None = None, block_index: FgIndex | None = None,
                 layout: str = "bhnd") -> tuple[str, str]:
    """Which implementation :func:`dense_attention` / :func:`block_sparse_attention` launch for ``cfg`` on ``q``, as
    :func:`fg_route` for the fg entry: ``("tl", why)`` for a tl entry and wherever the Gluon form cannot run (the
    same rule: ``FGATTN_GLUON=0``, the interpreter, CPU, fp32, ``return_lse``, not sm_90, no Gluon, Q / K / V base
    or strides not 16-byte aligned: K and V are read by TMA), and under CUDA-graph capture when no row plan of the
    call is memoised yet (building one is host work: warm up outside capture or call
    ``fgattn.contig_plans.prepare_contig_plan``); else ``("gluon", "form contig ...")``: an ``impl: gluon`` dense
    / block D128 M128 entry of form ``contig`` runs ``fgattn.gluon_contig.contig_attention_gluon`` with the
    entry's knobs over a plan memoised per block index (dense: per shape).  Invalid knobs raise."""
    if cfg.impl != "gluon":
        return "tl", "entry impl tl"
    if cfg.kernel not in ("dense", "block"):
        raise ValueError(f"config: contig_route is for dense / block entries, not {cfg.kernel!r} (fg_route)")
    cfg.gluon_options()  # validates the knobs

    def available() -> str | None:
        from .gluon_contig import contig_available

        return contig_available()

    why = _gluon_blocker(q, return_lse, available, k, v, "reads K / V by TMA")
    if why is not None:
        return "tl", why
    from . import contig_plans

    what = "block index" if cfg.kernel == "block" else "shape"
    if not contig_plans.capturing():
        return "gluon", f"form contig (fgattn.gluon_contig, plan memoised per {what})"
    b, h, nq, _ = q.shape if layout == "bhnd" else (q.shape[0], q.shape[2], q.shape[1], q.shape[3])
    nk = nq if k is None else (k.shape[2] if layout == "bhnd" else k.shape[1])
    idx = None if block_index is None else _gluon_index(cfg, block_index)
    if contig_plans.has_contig_plan(batch=b, heads=h, n_q=nq, n_kv=nk, programs=_sm_count(q.device),
                                    block_index=idx, device=q.device):
        return "gluon", "form contig (fgattn.gluon_contig, plan prepared before capture)"
    return "tl", (f"CUDA-graph capture and no contig plan prepared for this {what} (warm up outside capture or "
                  "call fgattn.contig_plans.prepare_contig_plan first)")


def _gluon_index(cfg: LaunchConfig, index: FgIndex) -> FgIndex:
    """The index as the Gluon forms read it: without ``order`` when the entry says ``lpt`` false (as the tl kernel:
    natural row order)."""
    if not cfg.option("lpt", True) and index.order is not None:
        return dataclasses.replace(index, order=None)
    return index


def _dyn_why(q: torch.Tensor, cfg: LaunchConfig, index: FgIndex | None) -> str | None:
    """Route reason of a ``schedule: "list"`` entry with ``extra.gluon.dyntail`` (None: the knob is off, or capture
    with no dynamic plan prepared: then the static list's reason, :func:`_list_why`)."""
    share = cfg.gluon_dyntail()
    if not share:
        return None
    from . import gluon_fg_list

    what = f"schedule list + dyntail {share:g} (fgattn.gluon_fg_dyntail, counter zeroed per launch, plan "
    if index is None or not gluon_fg_list._capturing():
        return what + "memoised per index)"
    from .gluon_fg_dyntail import _dyn_key

    per = gluon_fg_list._plans_of(_gluon_index(cfg, index).offsets)
    if per is not None and _dyn_key(_gluon_index(cfg, index), _sm_count(q.device), share) in per:
        return what + "prepared before capture)"
    return None


def _list_why(q: torch.Tensor, cfg: LaunchConfig, index: FgIndex | None) -> str:
    """Route reason of a ``schedule: "list"`` entry on the Gluon path (see :func:`fg_route`)."""
    from . import gluon_fg_list

    if index is None or not gluon_fg_list._capturing():
        return "schedule list (fgattn.gluon_fg_list, plan memoised per index)"
    crow = cfg.gluon_c_row()
    if gluon_fg_list.has_list_plan(_gluon_index(cfg, index), _sm_count(q.device),
                                   *(() if crow is None else (crow,))):
        return "schedule list (fgattn.gluon_fg_list, plan prepared before capture)"
    return ("schedule list -> walk: CUDA-graph capture and no plan prepared for this index (warm up outside capture "
            "or call fgattn.gluon_fg_list.prepare_list_plan first)")


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: str) -> tuple[int, int, int, int, int]:
    """Validate q/k/v; return (B, H, N_q, N_kv, D)."""
    if layout not in ("bhnd", "bnhd"):
        raise ValueError(f"layout: must be 'bhnd' or 'bnhd', got {layout!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.ndim != 4:
            raise ValueError(f"{name}: expected a 4-D tensor ({layout}), got shape {tuple(t.shape)}")
        if t.dtype != q.dtype:
            raise ValueError(f"{name}: dtype {t.dtype} differs from q's {q.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name}: device {t.device} differs from q's {q.device}")
        if t.stride(-1) != 1:
            raise ValueError(f"{name}: the head dimension must be contiguous (stride 1)")
    if q.dtype not in _DTYPES:
        raise ValueError(f"dtype: {q.dtype} not supported (bfloat16, float16, float32)")
    if layout == "bhnd":
        b, h, nq, d = q.shape
        nk = k.shape[2]
        kv_shape = (b, h, nk, d)
    else:
        b, nq, h, d = q.shape
        nk = k.shape[1]
        kv_shape = (b, nk, h, d)
    if d not in (64, 128):
        raise ValueError(f"head_dim: {d} not supported (64 or 128)")
    if tuple(k.shape) != kv_shape or tuple(v.shape) != kv_shape:
        raise ValueError(f"k/v: shapes {tuple(k.shape)}, {tuple(v.shape)} do not match q {tuple(q.shape)} ({layout})")
    if nq == 0 or nk == 0:
        raise ValueError("sequence length must be positive")
    return b, h, nq, nk, d


def _strides(t: torch.Tensor, layout: str) -> tuple[int, int, int]:
    """(batch, head, sequence) strides in elements."""
    if layout == "bhnd":
        return t.stride(0), t.stride(1), t.stride(2)
    return t.stride(0), t.stride(2), t.stride(1)


def _q_descriptor(q: torch.Tensor, layout: str, block_m: int):
    """Host-built TMA descriptor of q as (B, H, N, D) with [1, 1, block_m, D] boxes (``tma_q``), or None where TMA
    cannot read it (CPU interpreter, strides or base not 16-byte aligned)."""
    if _interpreting() or q.device.type != "cuda":
        return None
    from triton.tools.tensor_descriptor import TensorDescriptor

    b, h, n, d = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]) if layout == "bhnd" else (
        q.shape[0], q.shape[2], q.shape[1], q.shape[3])
    strides = [*_strides(q, layout), 1]
    if q.data_ptr() % 16 or any(st * q.element_size() % 16 for st in strides[:-1]):
        return None
    return TensorDescriptor(q, [b, h, n, d], strides, [1, 1, block_m, d])


#: launch option ``row_rec``: (id of Order, weak ref to Order, Offsets pointer) -> int32 (rows, 4) records
_ROW_RECORDS: dict[int, tuple] = {}


def _row_records(offsets: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """One int32 record (row, lo, hi, 0) per launch position (``order[p]`` and its Offsets range), built once
    per index (plan-time work, cached by the Order tensor's identity, so CUDA-graph replays reuse it)."""
    import weakref

    hit = _ROW_RECORDS.get(id(order))
    if hit is not None and hit[0]() is order and hit[1] == offsets.data_ptr():
        return hit[2]
    o = order.long()
    rec = torch.zeros(order.numel(), 4, dtype=torch.int32, device=order.device)
    rec[:, 0] = order
    rec[:, 1] = offsets[o].to(torch.int32)
    rec[:, 2] = offsets[o + 1].to(torch.int32)
    _ROW_RECORDS[id(order)] = (weakref.ref(order), offsets.data_ptr(), rec)
    return rec


def _exp_poly(cfg: LaunchConfig) -> int:
    """The kernels' ``EXP_POLY`` for launch option ``exp_poly`` (the fraction of P's exp2 computed by the FMA
    polynomial: 0, 0.125, 0.25, 0.5 or 1; default 0): one element of every EXP_POLY, 0 = MUFU.EX2 only."""
    f = cfg.option("exp_poly", 0)
    if isinstance(f, bool) or not isinstance(f, (int, float)) or f not in EXP_POLY_FRACTIONS:
        raise ValueError(f"config: exp_poly={f!r} must be one of {sorted(EXP_POLY_FRACTIONS)} (the fraction of "
                         "the softmax's exp2 computed by the FMA polynomial)")
    return EXP_POLY_FRACTIONS[f]


def _launch(
    mode: int,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    index: FgIndex | None,
    cfg: LaunchConfig,
    layout: str,
    sm_scale: float | None,
    out: torch.Tensor | None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    b, h, nq, nk, d = _check_qkv(q, k, v, layout)
    if cfg.block_n not in (16, 32, 64, 128) or cfg.block_m % cfg.block_n and mode == MODE_BLOCK:
        raise ValueError(f"config: block_n={cfg.block_n} invalid for block_m={cfg.block_m}")
    if mode == MODE_FG and cfg.block_n % cfg.gran_n:
        raise ValueError(f"config: block_n={cfg.block_n} must be a multiple of gran_n={cfg.gran_n}")
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.stride(-1) != 1:
        raise ValueError("out: must match q's shape and dtype with a contiguous head dimension")
    scale = (1.0 / math.sqrt(d)) if sm_scale is None else float(sm_scale)
    qb = triton.cdiv(nq, cfg.block_m)
    # placeholder for absent pointer arguments; zero-filled per call (a memset node under CUDA-graph capture), so
    # it is also the persistent work queue's counter (``queue``), the one element the kernels ever write
    dummy = torch.zeros(2, dtype=torch.int32, device=q.device)
    lse = torch.empty(b, h, nq, dtype=torch.float32, device=q.device) if return_lse else None
    offsets = index.offsets if index is not None else dummy
    indices = index.indices if index is not None else dummy
    order = index.order if index is not None and index.order is not None and cfg.option("lpt", True) else None
    use_tma = mode != MODE_FG and bool(cfg.option("tma", False)) and not _interpreting()
    tma_qo = bool(cfg.option("tma_qo", False)) and not _interpreting()
    if use_tma or tma_qo:
        _ensure_allocator()
    q_desc = _q_descriptor(q, layout, cfg.block_m) if cfg.option("tma_q", False) and not tma_qo else None
    idx_ahead = int(cfg.option("idx_ahead", 0))
    tail_reuse = bool(cfg.option("tail_reuse", False)) and mode == MODE_FG and idx_ahead == 1
    grid = (b * h * qb, 1) if order is not None else (qb, b * h)
    # register cap per thread (e.g. 128 at 8 warps lets two programs share an SM), device launches only
    regcap = {} if _interpreting() or cfg.option("maxnreg", None) is None else {"maxnreg": int(cfg.option("maxnreg", 0))}
    exp_poly = _exp_poly(cfg)
    poly = {"EXP_POLY": exp_poly, "EXP_PTX": not _interpreting()} if exp_poly else {}
    one_row = bool(cfg.option("one_row", False))
    if one_row and cfg.option("persistent", False):
        raise ValueError("config: one_row (one program per row) and persistent (programs_per_sm x SMs programs "
                         "walking rows) exclude each other")
    if cfg.option("persistent", False) or one_row:
        queue = bool(cfg.option("queue", False))
        flat = bool(cfg.option("flatten", True)) and not one_row
        if queue and (flat or one_row):
            raise ValueError("config: queue (rows from a work queue) needs flatten false (the nested persistent loop)"
                             + (" and no one_row" if one_row else ""))
        n_rows = b * h * qb
        o_desc = _q_descriptor(out, layout, cfg.block_m) if cfg.option("tma_o", False) and not flat else None
        row_rec = bool(cfg.option("row_rec", False))
        if row_rec and (not one_row or order is None or mode == MODE_DENSE):
            raise ValueError("config: row_rec (per-position row records) needs one_row, an ordered index and lpt")
        if row_rec:
            order = _row_records(offsets, order)
        ahead = cfg.option("row_ahead", 0)
        if not isinstance(ahead, int) or isinstance(ahead, bool) or ahead < 0:
            raise ValueError(f"config: row_ahead={ahead!r} must be a non-negative int (launch positions ahead)")
        if ahead and (not one_row or mode != MODE_FG or row_rec):
            raise ValueError("config: row_ahead (L2 prefetch of a later row's Q and first index entries) needs fg "
                             "and one_row, without row_rec")
        if cfg.option("l2_prefetch", False) and (flat or mode != MODE_FG):
            raise ValueError("config: l2_prefetch (L2 prefetch of a row's first and tail K/V tiles) needs fg and "
                             "the nested persistent form (one_row, or persistent with flatten false)")
        tail_pf = bool(cfg.option("tail_prefetch", False))
        if tail_pf and (flat or mode != MODE_FG or cfg.option("tail_fold", False)):
            raise ValueError("config: tail_prefetch (L2 prefetch of a row's tail K/V tile in the loop's first "
                             "iteration) needs fg and the nested persistent form (one_row, or persistent with flatten "
                             "false), without tail_fold")
        n_prog = n_rows if one_row else persistent_programs(n_rows, int(cfg.option("programs_per_sm", 1)),
                                                            _sm_count(q.device))
        _attn_fwd_persistent[(n_prog,)](
            q, k, v, out, lse if lse is not None else dummy, offsets, indices, order if order is not None else dummy,
            q_desc if q_desc is not None else q,
            scale * _LOG2E, *_strides(q, layout), *_strides(k, layout), *_strides(v, layout), *_strides(out, layout),
            h, nq, nk, qb, n_rows, dummy,
            HEAD_DIM=d, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, GRAN_N=cfg.gran_n, MODE=mode,
            ORDERED=order is not None, NUM_STAGES=cfg.num_stages, FLAT=flat, QUEUE=queue,
            IDX_EARLY=bool(cfg.option("idx_early", False)) and not flat, TMA_Q=q_desc is not None,
            ODesc=o_desc, GUARD=bool(cfg.option("guard_next", False)) and not flat, TMA_O=o_desc is not None,
            FOLD=bool(cfg.option("tail_fold", False)) and not flat and mode == MODE_FG and cfg.gran_n == 1,
            RETURN_LSE=lse is not None, num_warps=cfg.num_warps, num_stages=cfg.num_stages, **regcap,
            **({"ROWREC": True} if row_rec else {}),
            **({"PREFETCH": True} if cfg.option("l2_prefetch", False) and not _interpreting() else {}),
            **({"AHEAD": ahead, "AHEAD_HINT": not _interpreting()} if ahead else {}), **poly,
            **({"TAIL_PF": True} if tail_pf and not _interpreting() else {}),
        )
        return (out, lse) if lse is not None else out
    _attn_fwd[grid](
        q, k, v, out, lse if lse is not None else dummy, offsets, indices, order if order is not None else dummy,
        q_desc if q_desc is not None else q, scale * _LOG2E,
        *_strides(q, layout), *_strides(k, layout), *_strides(v, layout), *_strides(out, layout),
        h, nq, nk, qb,
        HEAD_DIM=d, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, GRAN_N=cfg.gran_n,
        MODE=mode, IDX_AHEAD=idx_ahead, ORDERED=order is not None, TAIL_REUSE=tail_reuse,
        TAIL_BRANCH=bool(cfg.option("tail_branch", False)) and mode == MODE_DENSE,
        NUM_STAGES=cfg.num_stages, USE_TMA=use_tma, OVERLAP=bool(cfg.option("overlap", False)), WARP_SPEC=use_tma and bool(cfg.option("warp_specialize", False)),
        RETURN_LSE=lse is not None, TMA_QO=tma_qo, TMA_Q=q_desc is not None, num_warps=cfg.num_warps, num_stages=cfg.num_stages, **regcap,
        **dict(cfg.option("_diag", {})),  # diagnosis-only _DIAG_* switches (never in the launch table)
        **poly,
    )
    return (out, lse) if lse is not None else out


def _check_index_shape(index: FgIndex, b: int, h: int, nq: int, nk: int, block_m: int, gran_n: int) -> None:
    if not isinstance(index, FgIndex):
        raise ValueError(f"index: expected an FgIndex, got {type(index).__name__}")
    if index.block_m != block_m:
        raise ValueError(f"block_m: {block_m} differs from index.block_m={index.block_m}")
    if index.gran_n != gran_n:
        raise ValueError(f"gran_n: {gran_n} differs from index.gran_n={index.gran_n}")
    qb = -(-nq // block_m)
    if (index.batch, index.heads, index.n_qblocks, index.n_keys) != (b, h, qb, nk):
        raise ValueError(
            f"index: (batch, heads, n_qblocks, n_keys)=({index.batch}, {index.heads}, {index.n_qblocks}, "
            f"{index.n_keys}) does not match q/k ({b}, {h}, {qb}, {nk})"
        )
    if index.offsets.numel() != index.n_rows + 1:
        raise ValueError(f"index.offsets must have {index.n_rows + 1} entries, got {index.offsets.numel()}")
    if index.indices.dtype != torch.int32:
        raise ValueError(f"index.indices must be int32, got {index.indices.dtype}")
    if index.offsets.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"index.offsets must be int32 or int64, got {index.offsets.dtype}")
    if index.offsets.device != index.indices.device:
        raise ValueError("index: offsets and indices are on different devices")


def _contig_launch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, index: FgIndex | None, cfg: LaunchConfig,
                   layout: str, sm_scale: float | None, out: torch.Tensor | None,
                   return_lse: bool) -> torch.Tensor | None:
    """The Gluon contig form of an ``impl: gluon`` dense (``index`` None) / block entry where :func:`contig_route`
    says it runs (the plan memoised per block index / shape, ``_sm_count`` programs); None: run the tl entry."""
    if contig_route(q, cfg, return_lse=return_lse, k=k, v=v, block_index=index, layout=layout)[0] != "gluon":
        return None
    from . import contig_plans, gluon_contig

    b, h, nq, nk, _ = _check_qkv(q, k, v, layout)
    index = None if index is None else _gluon_index(cfg, index)
    plan = contig_plans.cached_contig_plan(batch=b, heads=h, n_q=nq, n_kv=nk, programs=_sm_count(q.device),
                                           block_index=index, device=q.device)
    if plan is None:  # capture began between the route and here: the tl entry (contig_route says so next time)
        return None
    return gluon_contig.contig_attention_gluon(q, k, v, block_index=index, plan=plan, layout=layout,
                                               sm_scale=sm_scale, out=out, **cfg.gluon_options())


def _sparse_launch(
    mode: int, arg: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, index: FgIndex, block_m: int,
    gran_n: int, layout: str, sm_scale: float | None, config: LaunchConfig | None, check: bool,
    out: torch.Tensor | None, return_lse: bool,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Shared front half of the two index-driven kernels: validate shapes and index, resolve the config, launch."""
    b, h, nq, nk, _ = _check_qkv(q, k, v, layout)
    cfg = resolve_config("fg" if mode == MODE_FG else "block", q, block_m, gran_n, config)
    _check_index_shape(index, b, h, nq, nk, block_m, gran_n)
    if index.indices.device != q.device:
        raise ValueError(f"{arg}: on {index.indices.device}, q on {q.device}")
    if check:
        check_index(index)
    if mode == MODE_BLOCK and cfg.impl == "gluon":
        res = _contig_launch(q, k, v, index, cfg, layout, sm_scale, out, return_lse)
        if res is not None:
            return res
        cfg = cfg.tl_config()
    if mode == MODE_FG and cfg.impl == "gluon":
        impl, _ = fg_route(q, cfg, return_lse=return_lse, k=k, v=v)
        if impl == "gluon" and cfg.gluon_expand():  # gran 16 / 64 -> the gran-1 index of its kept keys (memoised)
            from .gran_expand import cached_expanded

            expanded = cached_expanded(index)
            if expanded is None:  # capturing, no expansion memoised: the entry's tl kernel on the gran-g index
                impl = "tl"
            else:
                index, gran_n = expanded, 1
        if impl == "gluon":
            from .gluon_fg import fg_attention_gluon

            index = _gluon_index(cfg, index)
            if cfg.gluon_schedule() == "list":
                from .gluon_fg_list import cached_list_plan, fg_attention_gluon_list

                share = cfg.gluon_dyntail()
                if share:  # the dynamic tail (extra.gluon.dyntail; its counter is zeroed on the stream per launch)
                    from .gluon_fg_dyntail import cached_dyn_plan, fg_attention_gluon_dyntail

                    dplan = cached_dyn_plan(index, _sm_count(q.device), share)  # None: capturing, none prepared
                    if dplan is not None:
                        return fg_attention_gluon_dyntail(q, k, v, index, plan=dplan, layout=layout,
                                                          sm_scale=sm_scale, out=out, epilogue="tma_sel")
                crow = cfg.gluon_c_row()
                crow_kw = {} if crow is None else {"c_row": crow}  # the table's planner row cost (default: none)
                plan = cached_list_plan(index, _sm_count(q.device), **crow_kw)  # None: capturing, no plan -> walk
                if plan is not None:
                    return fg_attention_gluon_list(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                   plan=plan, programs=_sm_count(q.device),
                                                   epilogue=cfg.gluon_options()["epilogue"],
                                                   tail64=cfg.gluon_tail64(), **crow_kw)
            return fg_attention_gluon(q, k, v, index, block_m=block_m, gran_n=gran_n, layout=layout,
                                      sm_scale=sm_scale, programs=_sm_count(q.device), out=out, **cfg.gluon_options())
        cfg = cfg.tl_config()
    return _launch(mode, q, k, v, index, cfg, layout, sm_scale, out, return_lse)


def fg_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    index: FgIndex,
    *,
    block_m: int,
    gran_n: int = 1,
    layout: str = "bhnd",
    sm_scale: float | None = None,
    config: LaunchConfig | None = None,
    check: bool = False,
    out: torch.Tensor | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Fine-grained sparse attention: query block b attends only to the key runs its index lists.

    Args:
        q, k, v: (B, H, N, D) for ``layout="bhnd"`` or (B, N, H, D) for ``"bnhd"``; bf16/fp16
            (fp32 for CPU tests); D ∈ {64, 128}; any N.
        index: :class:`FgIndex` with ``block_m``/``gran_n`` equal to the arguments; tile starts
            in units of ``gran_n`` keys, sorted within each (batch, head, query block).
        block_m: M, queries per query block (64 or 128).
        gran_n: keys per gathered run (1, 16, 64).
        layout: memory layout of q, k, v and the output.
        sm_scale: softmax scale (default 1/sqrt(D)).
        config: launch configuration (default: the tuned table entry for this GPU).  An entry with
            ``extra["impl"] = "gluon"`` (fg D128 M128 gran 1) launches the Gluon form where it can run and the
            entry's tl kernel elsewhere; :func:`fg_route` says which and why.
        check: validate the index first (:func:`fgattn.check_index`, O(nnz), one sync).
        out: optional output tensor (same shape/dtype as q).
        return_lse: also return the log-sum-exp of each query row.

    Returns:
        Output in q's layout and dtype; a query block with no kept key is all zeros.  With
        ``return_lse``: ``(out, lse)``, lse float32 (B, H, N_q) = ln Σ_kept exp(sm_scale·q·k)
        (natural log, per query row; ``-inf`` for a row with no kept key), e.g. to merge
        partial results of ring / context-parallel attention.
    """
    return _sparse_launch(MODE_FG, "index", q, k, v, index, block_m, gran_n, layout, sm_scale, config, check, out,
                          return_lse)


def block_sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_index: FgIndex,
    *,
    block_m: int = 128,
    layout: str = "bhnd",
    sm_scale: float | None = None,
    config: LaunchConfig | None = None,
    check: bool = False,
    out: torch.Tensor | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Block-sparse attention over kept M×M blocks (contiguous tile loads).

    ``block_index`` lists kept key blocks (units of ``block_m`` keys), e.g. from
    :func:`fgattn.block_index_from_mask`.  Other arguments as :func:`fg_attention`.  An entry with
    ``extra["impl"] = "gluon"`` (form ``contig``, D128 M128) launches ``fgattn.gluon_contig`` where it can run and
    the entry's tl kernel elsewhere; :func:`contig_route` says which and why.
    """
    return _sparse_launch(MODE_BLOCK, "block_index", q, k, v, block_index, block_m, block_m, layout, sm_scale,
                          config, check, out, return_lse)


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    block_m: int = 128,
    layout: str = "bhnd",
    sm_scale: float | None = None,
    config: LaunchConfig | None = None,
    out: torch.Tensor | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Dense (non-causal) attention with the same kernel body; arguments as :func:`fg_attention` (an ``impl: gluon``
    entry of form ``contig``: as :func:`block_sparse_attention`)."""
    _check_qkv(q, k, v, layout)
    cfg = resolve_config("dense", q, block_m, 1, config)
    if cfg.impl == "gluon":  # form contig (D128 M128): where contig_route says it runs, else the entry's tl kernel
        res = _contig_launch(q, k, v, None, cfg, layout, sm_scale, out, return_lse)
        if res is not None:
            return res
        cfg = cfg.tl_config()
    return _launch(MODE_DENSE, q, k, v, None, cfg, layout, sm_scale, out, return_lse)
