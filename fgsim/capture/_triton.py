"""Triton kernels for the mask predictors (GPU; also run under ``TRITON_INTERPRET=1``).

Exact column-max predictor (:func:`exact_mask`):

Two passes over the keys, each about the cost of one ``q·kᵀ`` GEMM (no ``P·V``):

1. ``_lse_kernel``: per query row, the base-2 log-sum-exp ``lse2_i = log2 Σ_j 2^(s_ij)`` of the scaled scores
   ``s_ij = q_i·k_j·scale·log2(e) + bias_j·log2(e)`` (online max/sum, like a flash-attention forward without P·V);
2. ``_mask_kernel``: recomputes each score tile and keeps key j for a block of M rows when
   ``max_i (s_ij − lse2_i) > log2(thr)``, i.e. ``max_i P_ij > thr`` — a comparison, no exponential.

Memory: the fp32 LSE (``B·H·S_q`` floats) and the uint8 output mask (``B·H·⌈S_q/M⌉·S_k`` bytes); nothing of size
``S_q × S_k`` per head.

Pooled top-CDF predictor (:func:`pooled_group_mask`, :func:`expand_group_mask`):

1. ``_pool_kernel``: one read of ``q`` (and of ``k``) in its own dtype: per group of ``G`` tokens the (weighted)
   mean and the self-similarity (mean cosine of the tokens to the mean), accumulated in fp32 (fp64 for fp64 inputs);
2. the pooled scores ``mean_q·mean_kᵀ·scale`` as one batched torch GEMM (``B·H·QG·KG`` floats, the only large
   temporary: 192 MiB for Wan-1.3B-480p);
3. ``_topcdf_kernel``: one program per query group row: softmax over key groups, then the top-p set found by a
   bisection on the probabilities' bit patterns (≈30 masked sums for fp32) instead of a sort + cumsum + scatter;
   ties are broken by key-group index like a stable descending sort;
4. ``_expand_kernel``: ORs the query groups of each M-row query block and expands key groups to keys, writing the
   bool slice mask once (``B·H·⌈S_q/M⌉·S_k`` bytes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import triton
import triton.language as tl

if TYPE_CHECKING:
    import torch

LOG2E = 1.4426950408889634

#: Default launch parameters (tile sizes in tokens, warps, pipeline stages).
DEFAULT_CONFIG: dict[str, int] = {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 2}


@triton.jit
def _lse_kernel(Q, K, BIAS, LSE, s_q, s_k, head_dim, n_heads, qk_scale,
                sqb, sqh, sqs, sqd, skb, skh, sks, skd, sbb, sbs,
                HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    bi = pid_bh // n_heads
    hi = pid_bh % n_heads
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q_ptrs = Q + bi * sqb + hi * sqh + offs_m[:, None] * sqs + offs_d[None, :] * sqd
    q = tl.load(q_ptrs, mask=(offs_m[:, None] < s_q) & (offs_d[None, :] < head_dim), other=0.0)
    m_i = tl.full([BLOCK_M], -1.0e30, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    for n0 in range(0, s_k, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        k_ptrs = K + bi * skb + hi * skh + offs_n[None, :] * sks + offs_d[:, None] * skd
        kt = tl.load(k_ptrs, mask=(offs_n[None, :] < s_k) & (offs_d[:, None] < head_dim), other=0.0)
        s = tl.dot(q, kt) * qk_scale
        if HAS_BIAS:
            bias = tl.load(BIAS + bi * sbb + offs_n * sbs, mask=offs_n < s_k, other=float("-inf"))
            s = s + bias[None, :]
        s = tl.where(offs_n[None, :] < s_k, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        l_i = l_i * tl.exp2(m_i - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), axis=1)
        m_i = m_new
    lse = m_i + tl.log2(l_i)
    tl.store(LSE + pid_bh * s_q + offs_m, lse, mask=offs_m < s_q)


@triton.jit
def _mask_kernel(Q, K, BIAS, LSE, THR, OUT, s_q, s_k, head_dim, n_heads, n_qb, qk_scale,
                 sqb, sqh, sqs, sqd, skb, skh, sks, skd, sbb, sbs,
                 HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                 M: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    bi = pid_bh // n_heads
    hi = pid_bh % n_heads
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q_ptrs = Q + bi * sqb + hi * sqh + offs_m[:, None] * sqs + offs_d[None, :] * sqd
    q = tl.load(q_ptrs, mask=(offs_m[:, None] < s_q) & (offs_d[None, :] < head_dim), other=0.0)
    thr2 = tl.load(THR + bi)
    lse = tl.load(LSE + pid_bh * s_q + offs_m, mask=offs_m < s_q, other=float("inf"))
    t = lse + thr2  # keep (i, j) when s_ij > t_i
    G: tl.constexpr = BLOCK_M // M
    offs_qb = pid_m * G + tl.arange(0, G)
    out_row = OUT + (pid_bh.to(tl.int64) * n_qb + offs_qb) * s_k  # int64: B·H·⌈S/M⌉·S exceeds 2^31 at 14B 720p
    for n0 in range(0, s_k, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        k_ptrs = K + bi * skb + hi * skh + offs_n[None, :] * sks + offs_d[:, None] * skd
        kt = tl.load(k_ptrs, mask=(offs_n[None, :] < s_k) & (offs_d[:, None] < head_dim), other=0.0)
        s = tl.dot(q, kt) * qk_scale
        if HAS_BIAS:
            bias = tl.load(BIAS + bi * sbb + offs_n * sbs, mask=offs_n < s_k, other=float("-inf"))
            s = s + bias[None, :]
        d = s - t[:, None]
        cm = tl.max(tl.reshape(d, (G, M, BLOCK_N)), axis=1)  # column max over each block of M rows
        keep = (cm > 0).to(tl.uint8)
        tl.store(out_row[:, None] + offs_n[None, :], keep, mask=(offs_qb[:, None] < n_qb) & (offs_n[None, :] < s_k))


def exact_mask(q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None, scale: float,
               thresholds: list[float], block_m: int, config: dict[str, int] | None = None) -> torch.Tensor:
    """Exact column-max slice mask via the two Triton passes: bool ``(B, H, ⌈S_q/M⌉, S_k)``.

    ``thresholds``: the probability threshold τ/N_keys per batch sample; ``scale`` the softmax scale.
    ``config`` overrides :data:`DEFAULT_CONFIG` (BLOCK_M must be a multiple of ``block_m``).
    """
    import torch

    cfg = dict(DEFAULT_CONFIG, **(config or {}))
    bm, bn = int(cfg["BLOCK_M"]), int(cfg["BLOCK_N"])
    bm = max(bm, block_m)
    if bm % block_m:
        raise ValueError(f"BLOCK_M={bm} must be a multiple of block_m={block_m}")
    b, h, s_q, d = q.shape
    s_k = k.shape[2]
    n_qb = -(-s_q // block_m)
    block_d = max(16, triton.next_power_of_2(d))
    dev = q.device
    lse = torch.empty((b, h, s_q), dtype=torch.float32, device=dev)
    out = torch.zeros((b, h, n_qb, s_k), dtype=torch.uint8, device=dev)
    if key_mask is not None:
        bias = torch.zeros((b, s_k), dtype=torch.float32, device=dev)
        bias = bias.masked_fill(~key_mask.to(device=dev, dtype=torch.bool), float("-inf"))
        sbb, sbs = bias.stride()
    else:
        bias = lse  # unused placeholder pointer
        sbb, sbs = 0, 0
    thr = torch.tensor([math.log2(t) for t in thresholds], dtype=torch.float32, device=dev)
    qk_scale = scale * LOG2E
    common: dict[str, Any] = {"HAS_BIAS": key_mask is not None, "BLOCK_M": bm, "BLOCK_N": bn,
                              "BLOCK_D": block_d, "num_warps": int(cfg["num_warps"]),
                              "num_stages": int(cfg["num_stages"])}
    strides = (*q.stride(), *k.stride(), sbb, sbs)
    grid = (triton.cdiv(s_q, bm), b * h)
    _lse_kernel[grid](q, k, bias, lse, s_q, s_k, d, h, qk_scale, *strides, **common)
    _mask_kernel[grid](q, k, bias, lse, thr, out, s_q, s_k, d, h, n_qb, qk_scale, *strides, M=block_m, **common)
    return out.view(torch.bool)


@triton.jit
def _div(x, y, IS_F64: tl.constexpr):
    """IEEE round-to-nearest ``x / y`` (Triton's fp32 ``/`` is approximate), broadcasting like ``/``."""
    if IS_F64:
        return x / y
    else:
        x, y = tl.broadcast(x, y)
        return tl.math.div_rn(x, y)


@triton.jit
def _sqrt(x, IS_F64: tl.constexpr):
    """IEEE round-to-nearest square root (Triton's fp32 ``tl.sqrt`` is approximate)."""
    if IS_F64:
        return tl.sqrt(x)
    else:
        return tl.math.sqrt_rn(x)


@triton.jit
def _pool_kernel(X, W, MEAN, SIM, TINY64, tiny, s, head_dim, n_heads, n_groups,
                 sxb, sxh, sxs, sxd, swb, sws,
                 HAS_W: tl.constexpr, IS_F64: tl.constexpr, GROUP: tl.constexpr, G_PAD: tl.constexpr,
                 GB: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)
    pid_bh = tl.program_id(1)
    bi = (pid_bh // n_heads).to(tl.int64)
    hi = (pid_bh % n_heads).to(tl.int64)
    if IS_F64:  # float kernel arguments are fp32: fp64 constants come from memory
        tiny = tl.load(TINY64)
    gidx = pid * GB + tl.arange(0, GB)  # (GB,) group indices
    offs_t = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, BLOCK_D)
    tok = gidx[:, None] * GROUP + offs_t[None, :]  # (GB, G_PAD) token indices
    inr = (offs_t[None, :] < GROUP) & (tok < s) & (gidx[:, None] < n_groups)
    ptrs = X + bi * sxb + hi * sxh + tok[:, :, None] * sxs + offs_d[None, None, :] * sxd
    x = tl.load(ptrs, mask=inr[:, :, None] & (offs_d[None, None, :] < head_dim), other=0.0)
    if IS_F64:
        x = x.to(tl.float64)
        w = inr.to(tl.float64)
    else:
        x = x.to(tl.float32)
        w = inr.to(tl.float32)
    if HAS_W:
        wt = tl.load(W + bi * swb + tok * sws, mask=inr, other=0)
        w = w * (wt != 0).to(w.dtype)
    cnt = tl.sum(w, axis=1)  # (GB,)
    den = tl.maximum(cnt, 1.0)
    mean = _div(tl.sum(x * w[:, :, None], axis=1), den[:, None], IS_F64)  # (GB, BLOCK_D)
    dot = tl.sum(x * mean[:, None, :], axis=2)  # (GB, G_PAD)
    xn = tl.maximum(_sqrt(tl.sum(x * x, axis=2), IS_F64), tiny)
    mn = tl.maximum(_sqrt(tl.sum(mean * mean, axis=1), IS_F64), tiny)
    cos = _div(dot, xn * mn[:, None], IS_F64)
    sim = _div(tl.sum(tl.where(inr, cos * w, 0.0), axis=1), den, IS_F64)
    sim = tl.where(cnt > 0, sim, 1.0)
    row = pid_bh.to(tl.int64) * n_groups + gidx
    tl.store(MEAN + row[:, None] * head_dim + offs_d[None, :], mean,
             mask=(gidx[:, None] < n_groups) & (offs_d[None, :] < head_dim))
    tl.store(SIM + row, sim, mask=gidx < n_groups)


@triton.jit
def _topcdf_kernel(S, QSIM, KSIM, KVALID, PARAMS64, OUT, n_qg, n_kg, n_heads, scale, p, gamma,
                   IS_F64: tl.constexpr, BLOCK_K: tl.constexpr):
    row = tl.program_id(0)  # flat (b, h, query group)
    bh = row // n_qg
    bi = bh // n_heads
    offs = tl.arange(0, BLOCK_K)
    inb = offs < n_kg
    valid = (tl.load(KVALID + bi * n_kg + offs, mask=inb, other=0) != 0) & inb
    ks = tl.load(KSIM + bh * n_kg + offs, mask=inb, other=1.0)
    qs = tl.load(QSIM + row)
    if IS_F64:  # float kernel arguments are fp32: fp64 scale, p and gamma come from memory
        scale = tl.load(PARAMS64)
        p = tl.load(PARAMS64 + 1)
        gamma = tl.load(PARAMS64 + 2)
    force = qs < gamma  # a query group that is not self-similar keeps every key (NaN: self-similar)
    if force:
        keep = valid
    else:
        sc = tl.load(S + row.to(tl.int64) * n_kg + offs, mask=valid, other=0.0)
        sc = tl.where(valid, sc * scale, float("-inf"))  # the same rounding as torch's ``scores * scale``
        e = tl.exp(sc - tl.max(sc, 0))
        pr = _div(e, tl.sum(e, 0), IS_F64)
        if IS_F64:
            bits = pr.to(tl.int64, bitcast=True)
        else:
            bits = pr.to(tl.int32, bitcast=True)
        # Probabilities are ≥ 0, so their bit patterns order like their values. Find the smallest pattern v with
        # F(v) = Σ_{bits_j > v} pr_j < p (F is non-increasing): groups above v are kept, groups below are not.
        hi = tl.max(bits, 0)  # F(max) = 0 < p
        lo = hi * 0 - 1  # F(-1) = total mass; invariant F(lo) ≥ p > F(hi)
        short = tl.sum(pr, 0) < p  # total < p (p = 1 up to rounding): every group is needed
        hi = tl.where(short, lo, hi)
        lo = tl.where(short, lo - 1, lo)
        while hi - lo > 1:
            mid = lo + (hi - lo) // 2
            below = tl.sum(tl.where(bits > mid, pr, 0.0), 0) < p
            hi = tl.where(below, mid, hi)
            lo = tl.where(below, lo, mid)
        # Groups tied at v, in index order (a stable descending sort), are kept while the mass before them < p.
        above = bits > hi
        f_hi = tl.sum(tl.where(above, pr, 0.0), 0)
        tie = bits == hi
        ti = tie.to(tl.int32)
        n_before = tl.cumsum(ti, 0) - ti
        v = tl.max(tl.where(tie, pr, 0.0), 0)
        top = above | (tie & (f_hi + v * n_before < p))
        keep = valid & (top | (ks < gamma))
    tl.store(OUT + row.to(tl.int64) * n_kg + offs, keep.to(tl.uint8), mask=inb)


@triton.jit
def _expand_kernel(GM, KM, OUT, s_q, s_k, n_heads, n_qg, n_kg, n_qb,
                   HAS_KM: tl.constexpr, GROUP: tl.constexpr, M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid = tl.program_id(0)  # flat (b, h, query block)
    bh = pid // n_qb
    qb = pid % n_qb
    bi = bh // n_heads
    offs = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    inb = offs < s_k
    kg = offs // GROUP
    start = qb * M
    g0 = start // GROUP
    g1 = (tl.minimum(start + M, s_q) - 1) // GROUP  # inclusive last query group of the block
    acc = tl.zeros([BLOCK_N], dtype=tl.uint8)
    for gi in range(g0, g1 + 1):
        acc = acc | tl.load(GM + (bh * n_qg + gi).to(tl.int64) * n_kg + kg, mask=inb, other=0)
    if HAS_KM:
        acc = acc & (tl.load(KM + bi * s_k + offs, mask=inb, other=0) != 0).to(tl.uint8)
    tl.store(OUT + pid.to(tl.int64) * s_k + offs, acc, mask=inb)


def _pool(x: torch.Tensor, w: torch.Tensor | None, group: int, cdt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Group means ``(B, H, G, D)`` and self-similarities ``(B, H, G)`` of ``x (B, H, S, D)`` in ``cdt``.

    ``w``: optional uint8 ``(B, S)`` token weights ∈ {0, 1} (None: all 1); ``cdt``: float32 or float64, the
    accumulation and output dtype. One read of ``x`` in its own dtype, any strides.
    """
    import torch

    b, h, s, d = x.shape
    f64 = cdt == torch.float64
    n_groups = -(-s // group)
    mean = torch.empty((b, h, n_groups, d), dtype=cdt, device=x.device)
    sim = torch.empty((b, h, n_groups), dtype=cdt, device=x.device)
    g_pad = triton.next_power_of_2(group)
    block_d = triton.next_power_of_2(d)
    gb = max(1, min(triton.next_power_of_2(n_groups), 8192 // (g_pad * block_d)))
    sw = w.stride() if w is not None else (0, 0)
    grid = (triton.cdiv(n_groups, gb), b * h)
    tiny = torch.finfo(cdt).tiny
    tiny64 = torch.full((1,), tiny, dtype=cdt, device=x.device) if f64 else sim
    _pool_kernel[grid](x, w if w is not None else mean, mean, sim, tiny64, tiny, s, d, h, n_groups,
                       *x.stride(), *sw, HAS_W=w is not None, IS_F64=f64, GROUP=group, G_PAD=g_pad, GB=gb,
                       BLOCK_D=block_d, num_warps=8 if gb * g_pad * block_d >= 8192 else 4)
    return mean, sim


def pooled_group_mask(q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None, scale: float, p: float,
                      gamma: float, group: int) -> torch.Tensor:
    """Pooled top-CDF group mask, bool ``(B, H, ⌈S_q/G⌉, ⌈S_k/G⌉)`` (see ``PooledTopCDF``).

    ``scale``: softmax scale (dimensionless); ``p``: cumulative probability kept; ``gamma``: cosine threshold below
    which a group is not self-similar and always kept; ``group``: tokens per group ``G``. Extra memory: the fp32
    pooled means and scores (``4·B·H·QG·KG`` bytes) and the uint8 result; ``q``/``k`` are read once.
    """
    import torch

    b, h, s_q, d = q.shape
    s_k = k.shape[2]
    dev = q.device
    n_kg = -(-s_k // group)
    w = None if key_mask is None else key_mask.to(device=dev, dtype=torch.uint8).contiguous()
    cdt = torch.float64 if q.dtype == torch.float64 else torch.float32
    q_mean, q_sim = _pool(q, None, group, cdt)
    k_mean, k_sim = _pool(k, w, group, cdt)
    scores = torch.matmul(q_mean, k_mean.transpose(-1, -2))  # unscaled: the top-CDF kernel applies ``scale``
    if w is None:
        k_valid = torch.ones((b, n_kg), dtype=torch.uint8, device=dev)
    else:
        k_valid = torch.nn.functional.pad(w, (0, n_kg * group - s_k)).view(b, n_kg, group).amax(-1)
    n_qg = q_mean.shape[2]
    out = torch.empty((b, h, n_qg, n_kg), dtype=torch.uint8, device=dev)
    block_k = triton.next_power_of_2(n_kg)
    f64 = cdt == torch.float64
    params64 = torch.tensor([scale, p, gamma], dtype=cdt, device=dev) if f64 else scores
    _topcdf_kernel[(b * h * n_qg,)](scores, q_sim, k_sim, k_valid, params64, out, n_qg, n_kg, h, float(scale),
                                    float(p), float(gamma),
                                    IS_F64=f64, BLOCK_K=block_k,
                                    num_warps=max(1, min(16, block_k // 512)))
    return out.view(torch.bool)


def expand_group_mask(gm: torch.Tensor, s_q: int, s_k: int, group: int, block_m: int,
                      key_mask: torch.Tensor | None) -> torch.Tensor:
    """Group mask ``(B, H, QG, KG)`` → slice mask, bool ``(B, H, ⌈S_q/M⌉, S_k)``.

    A query block of ``block_m`` rows keeps key ``j`` when any query group it overlaps keeps group ``j // group``
    and ``key_mask`` (optional bool ``(B, S_k)``) allows ``j``. Writes the output once (``B·H·⌈S_q/M⌉·S_k`` bytes).
    """
    import torch

    b, h, n_qg, n_kg = gm.shape
    n_qb = -(-s_q // block_m)
    dev = gm.device
    gm = gm.contiguous().view(torch.uint8)
    out = torch.empty((b, h, n_qb, s_k), dtype=torch.uint8, device=dev)
    km = None if key_mask is None else key_mask.to(device=dev, dtype=torch.uint8).contiguous()
    block_n = min(4096, triton.next_power_of_2(s_k))
    grid = (b * h * n_qb, triton.cdiv(s_k, block_n))
    _expand_kernel[grid](gm, km if km is not None else gm, out, s_q, s_k, h, n_qg, n_kg, n_qb,
                         HAS_KM=km is not None, GROUP=group, M=block_m, BLOCK_N=block_n,
                         num_warps=max(1, min(8, block_n // 512)))
    return out.view(torch.bool)
