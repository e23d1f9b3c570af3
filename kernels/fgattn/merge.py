"""Fused log-sum-exp merge of two partial attentions over disjoint key sets (ring / context-parallel attention).

Partial results ``(out_a, lse_a)`` and ``(out_b, lse_b)`` of the same query rows against two disjoint key sets
combine exactly into the attention over their union (FlashAttention's rescaling; Dao et al., "FlashAttention",
arXiv:2205.14135, §3.1; the merge ring attention does, Liu et al., "Ring Attention with Blockwise Transformers",
arXiv:2310.01889):

    m = max(lse_a, lse_b),  w_a = exp(lse_a − m),  w_b = exp(lse_b − m)
    out = (w_a·out_a + w_b·out_b) / (w_a + w_b),  lse = m + ln(w_a + w_b)

One Triton kernel reads both partials in their own dtype (bf16 / fp16 / fp32), computes in float32 and writes the
merged rows once, to ``out`` (which may be ``out_a`` itself: in place) and ``lse_a`` (in place). A row with no
kept key on one side (``lse = −inf``) takes the other side; with none on either it is 0 with ``lse = −inf``; the
``−inf`` side's output is never read into the sum (no NaN from an unwritten row).

Bytes per output element: the two partials read and the output written (6 for bf16 partials and output, 10 for a
float32 accumulator and a bf16 partial), plus 12 bytes of LSE per row — the number the context-parallel model
prices at the GPU's measured copy bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_FLOATS = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def _merge_kernel(
    A, LA, Bp, LB, Out,
    n_rows, S, H,
    sa_b, sa_s, sa_h, sla_b, sla_h, sla_s,
    sb_b, sb_s, sb_h, slb_b, slb_h, slb_s,
    so_b, so_s, so_h,
    D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr,
):
    pid = tl.program_id(0)
    r = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    rv = r < n_rows
    h = r % H
    s = (r // H) % S
    b = r // (H * S)
    la = tl.load(LA + b * sla_b + h * sla_h + s * sla_s, mask=rv, other=float("-inf"))
    lb = tl.load(LB + b * slb_b + h * slb_h + s * slb_s, mask=rv, other=float("-inf"))
    m = tl.maximum(la, lb)
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    wa = tl.exp(la - m_safe)
    wb = tl.exp(lb - m_safe)
    tot = wa + wb
    tot_safe = tl.where(tot > 0, tot, 1.0)
    inv = tl.where(tot > 0, 1.0 / tot_safe, 0.0)
    lo = tl.where(tot > 0, m_safe + tl.log(tot_safe), float("-inf"))
    ca = wa * inv
    cb = wb * inv
    d = tl.arange(0, BLOCK_D)
    dv = d < D
    msk = rv[:, None] & dv[None, :]
    pa = A + (b * sa_b + s * sa_s + h * sa_h)[:, None] + d[None, :]
    pb = Bp + (b * sb_b + s * sb_s + h * sb_h)[:, None] + d[None, :]
    xa = tl.load(pa, mask=msk & (wa > 0)[:, None], other=0.0).to(tl.float32)
    xb = tl.load(pb, mask=msk & (wb > 0)[:, None], other=0.0).to(tl.float32)
    y = xa * ca[:, None] + xb * cb[:, None]
    po = Out + (b * so_b + s * so_s + h * so_h)[:, None] + d[None, :]
    tl.store(po, y.to(Out.dtype.element_ty), mask=msk)
    tl.store(LA + b * sla_b + h * sla_h + s * sla_s, lo, mask=rv)


def _check(name: str, t: torch.Tensor, shape: tuple[int, ...], lse: bool) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(f"{name}: shape {tuple(t.shape)}, expected {shape}")
    if lse and t.dtype != torch.float32:
        raise ValueError(f"{name}: log-sum-exps must be float32, got {t.dtype}")
    if not lse and t.dtype not in _FLOATS:
        raise ValueError(f"{name}: dtype {t.dtype} not supported (bfloat16, float16, float32)")
    if not lse and t.stride(-1) != 1:
        raise ValueError(f"{name}: the head dimension must be contiguous (stride 1)")


def merge_attention_(
    out_a: torch.Tensor, lse_a: torch.Tensor, out_b: torch.Tensor, lse_b: torch.Tensor, *,
    out: torch.Tensor | None = None, block_rows: int = 32, num_warps: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the partial ``(out_b, lse_b)`` into ``(out_a, lse_a)`` in one kernel; returns ``(out, lse_a)``.

    ``out_*``: ``(B, S, H, D)`` (fgattn's ``bnhd``; any strides with a contiguous head dimension), bf16 / fp16 /
    fp32, dtypes may differ. ``lse_*``: float32 ``(B, H, S)`` natural-log sums (``−inf`` = no kept key).
    ``lse_a`` is overwritten with the merged LSE; the merged output goes to ``out`` (default ``out_a``, in
    place; any float dtype, e.g. a float32 accumulator or the final bf16 result). Rows are independent, so
    ``out`` may alias ``out_a`` or ``out_b``.
    """
    if out_a.ndim != 4:
        raise ValueError(f"out_a: expected (B, S, H, D), got shape {tuple(out_a.shape)}")
    b, s, h, d = out_a.shape
    _check("out_a", out_a, (b, s, h, d), False)
    _check("out_b", out_b, (b, s, h, d), False)
    _check("lse_a", lse_a, (b, h, s), True)
    _check("lse_b", lse_b, (b, h, s), True)
    if out is None:
        out = out_a
    _check("out", out, (b, s, h, d), False)
    devs = {x.device for x in (out_a, lse_a, out_b, lse_b, out)}
    if len(devs) != 1:
        raise ValueError(f"merge_attention_: tensors on several devices {sorted(map(str, devs))}")
    n_rows = b * s * h
    if n_rows == 0:
        return out, lse_a
    grid = (triton.cdiv(n_rows, block_rows),)
    _merge_kernel[grid](
        out_a, lse_a, out_b, lse_b, out, n_rows, s, h,
        out_a.stride(0), out_a.stride(1), out_a.stride(2), lse_a.stride(0), lse_a.stride(1), lse_a.stride(2),
        out_b.stride(0), out_b.stride(1), out_b.stride(2), lse_b.stride(0), lse_b.stride(1), lse_b.stride(2),
        out.stride(0), out.stride(1), out.stride(2),
        D=d, BLOCK_D=triton.next_power_of_2(d), BLOCK_R=block_rows, num_warps=num_warps,
    )
    return out, lse_a


def merge_bytes(rows: int, head_dim: int, a_bytes: int, b_bytes: int, out_bytes: int) -> int:
    """Device-memory bytes one :func:`merge_attention_` moves: both partials read, the output written, and the
    three float32 LSE vectors (two read, one written)."""
    return rows * (head_dim * (a_bytes + b_bytes + out_bytes) + 12)
