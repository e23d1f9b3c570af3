"""Triton kernels for the exact column-max predictor (GPU; also runs under ``TRITON_INTERPRET=1``).

Two passes over the keys, each about the cost of one ``q·kᵀ`` GEMM (no ``P·V``):

1. ``_lse_kernel``: per query row, the base-2 log-sum-exp ``lse2_i = log2 Σ_j 2^(s_ij)`` of the scaled scores
   ``s_ij = q_i·k_j·scale·log2(e) + bias_j·log2(e)`` (online max/sum, like a flash-attention forward without P·V);
2. ``_mask_kernel``: recomputes each score tile and keeps key j for a block of M rows when
   ``max_i (s_ij − lse2_i) > log2(thr)``, i.e. ``max_i P_ij > thr`` — a comparison, no exponential.

Memory: the fp32 LSE (``B·H·S_q`` floats) and the uint8 output mask (``B·H·⌈S_q/M⌉·S_k`` bytes); nothing of size
``S_q × S_k`` per head.
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
    out_row = OUT + (pid_bh * n_qb + offs_qb) * s_k
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
