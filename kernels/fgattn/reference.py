"""Float64 torch reference for the fgattn kernels (tests and GPU checks; small shapes)."""

from __future__ import annotations

import math

import torch

from .index import FgIndex, index_to_mask

__all__ = ["reference_attention"]


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    index: FgIndex | None = None,
    *,
    layout: str = "bhnd",
    sm_scale: float | None = None,
    chunk: int = 4096,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(scale·Q·Kᵀ restricted to the kept keys)·V in float64; rows with no kept key are 0.

    Args:
        q, k, v: (B, H, N, D) (``bhnd``) or (B, N, H, D) (``bnhd``).
        index: kept tiles (any ``gran_n``; ``gran_n = block_m`` is the block index); ``None`` = dense.
        layout: memory layout of the inputs; the result has the same layout.
        sm_scale: softmax scale (default 1/sqrt(D)).
        chunk: queries per step (bounds the float64 score matrix).
        return_lse: also return the float64 (B, H, N_q) natural-log log-sum-exp of the kept
            scaled scores per query row (``-inf`` where no key is kept).

    Returns:
        float64 tensor, same shape as q (and the lse with ``return_lse``).
    """
    if layout == "bnhd":
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    q64, k64, v64 = (t.to(torch.float64) for t in (q, k, v))
    b, h, nq, d = q64.shape
    nk = k64.shape[2]
    scale = 1.0 / math.sqrt(d) if sm_scale is None else sm_scale
    mask = index_to_mask(index).to(q.device) if index is not None else None
    out = torch.zeros_like(q64)
    lse = torch.full((b, h, nq), float("-inf"), dtype=torch.float64, device=q.device)
    for s in range(0, nq, chunk):
        e = min(nq, s + chunk)
        scores = torch.einsum("bhqd,bhkd->bhqk", q64[:, :, s:e], k64) * scale
        if mask is not None:
            rows = torch.arange(s, e, device=q.device) // index.block_m
            keep = mask[:, :, rows, :]  # (B, H, e-s, N)
            scores = scores.masked_fill(~keep, float("-inf"))
        lse[:, :, s:e] = torch.logsumexp(scores, dim=-1)
        p = torch.softmax(scores, dim=-1)
        p = torch.nan_to_num(p, nan=0.0)  # rows with no kept key
        out[:, :, s:e] = torch.einsum("bhqk,bhkd->bhqd", p, v64)
    _ = nk
    out = out.transpose(1, 2) if layout == "bnhd" else out
    return (out, lse) if return_lse else out
