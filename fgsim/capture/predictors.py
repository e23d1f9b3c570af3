"""Mask predictors: one attention call's ``q, k`` → a bool M×1 slice mask ``(B, H, QB, S_k)``.

Conventions (all functions here):

- ``q``: ``(B, H, S_q, D)``, ``k``: ``(B, H, S_k, D)``, ``v``: ``(B, H, S_k, Dv)`` — post-RoPE / QK-norm, any float
  dtype, any device; views with arbitrary strides are fine (the dispatcher's BSHD tensors ``.transpose(1, 2)``).
- ``scale``: softmax scale (default ``D ** -0.5``), so scores are ``q·kᵀ·scale`` (dimensionless).
- ``key_mask``: optional bool ``(B, S_k)``, True = key may be attended (HunyuanVideo's key-padding mask). Masked
  keys get probability 0 and are never kept; the threshold's ``N_keys`` counts the attendable keys of each sample.
- A slice mask entry ``[b, h, qb, j]`` is True when the ``block_m`` queries ``qb·M … qb·M + M − 1`` (clipped to
  ``S_q``) keep key ``j``; ``QB = ⌈S_q / M⌉``.

Every predictor streams over chunks of query blocks and never holds more than ``chunk_queries × S_k`` scores of one
head at once (the dense ``S_q × S_k`` map is never materialised). On CUDA with Triton available both predictors
use small Triton kernels (:mod:`fgsim.capture._triton`); elsewhere they use torch ops, computing in float32
(or float64 when the inputs are float64, which makes them exactly equal to a dense float64 reference).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fgsim.errors import FgsimError

if TYPE_CHECKING:
    import torch

#: Query-block sizes M a trace can store (fgsim.views.M_LEVELS).
BLOCK_M_CHOICES: tuple[int, ...] = (16, 32, 64, 128)
#: Names of the per-call accuracy statistics, in the order stored in traces.
STAT_NAMES: tuple[str, ...] = ("kept_fraction", "recall_mean", "recall_min", "rel_error")


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise FgsimError("capture needs torch: pip install 'fgsim[capture]'") from None
    return torch


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    torch = _torch()
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _check_qk(q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None) -> tuple[int, int, int, int, int]:
    if q.dim() != 4 or k.dim() != 4:
        raise FgsimError(f"q and k must be 4-D (B, H, S, D); got {tuple(q.shape)} and {tuple(k.shape)}")
    b, h, s_q, d = q.shape
    if k.shape[0] != b or k.shape[1] != h or k.shape[3] != d:
        raise FgsimError(f"q {tuple(q.shape)} and k {tuple(k.shape)} disagree in batch, heads or head_dim")
    s_k = k.shape[2]
    if s_q < 1 or s_k < 1:
        raise FgsimError("q and k must hold at least one token")
    if key_mask is not None and tuple(key_mask.shape) != (b, s_k):
        raise FgsimError(f"key_mask must be (B, S_k) = {(b, s_k)}, got {tuple(key_mask.shape)}")
    return b, h, s_q, s_k, d


def _check_block_m(block_m: int) -> None:
    if block_m not in BLOCK_M_CHOICES:
        raise FgsimError(f"block_m must be one of {list(BLOCK_M_CHOICES)}, got {block_m}")


def _key_bias(key_mask: torch.Tensor | None, b: int, s_k: int, dtype: torch.dtype,
              device: torch.device) -> torch.Tensor | None:
    """Additive key bias ``(B, S_k)``: 0 for attendable keys, −inf for masked ones (None without a mask)."""
    if key_mask is None:
        return None
    torch = _torch()
    bias = torch.zeros((b, s_k), dtype=dtype, device=device)
    return bias.masked_fill(~key_mask.to(device=device, dtype=torch.bool), float("-inf"))


def _valid_keys(key_mask: torch.Tensor | None, b: int, s_k: int) -> list[int]:
    if key_mask is None:
        return [s_k] * b
    counts = key_mask.to(dtype=_torch().bool).sum(dim=1).tolist()
    if min(counts) < 1:
        raise FgsimError("key_mask masks every key of some sample; nothing can be attended")
    return [int(c) for c in counts]


def _block_any(rows: torch.Tensor, block_m: int) -> torch.Tensor:
    """OR over groups of ``block_m`` consecutive rows (dim −2), padding the last group with False."""
    torch = _torch()
    n = rows.shape[-2]
    pad = (-n) % block_m
    if pad:
        rows = torch.cat([rows, rows.new_zeros(*rows.shape[:-2], pad, rows.shape[-1])], dim=-2)
    return rows.unflatten(-2, (-1, block_m)).any(dim=-2)


def _chunk_rows(chunk_queries: int, block_m: int) -> int:
    if chunk_queries < 1:
        raise FgsimError(f"chunk_queries must be ≥ 1, got {chunk_queries}")
    return max(block_m, (chunk_queries // block_m) * block_m)


@dataclass(frozen=True)
class ExactThreshold:
    """FG-Attn's exact column-max rule: keep key j for query block b if ``max_{i∈b} P[i, j] > τ / N_keys``.

    ``P = softmax(q·kᵀ·scale)`` row-wise over attendable keys; ``τ`` (``tau``) is dimensionless (0.5: keep a key
    when some query of the block gives it more than half the uniform probability). ``chunk_queries`` bounds the
    working set to ``chunk_queries × S_k`` scores per head (rounded to a multiple of ``block_m``).
    ``backend``: "auto" (Triton on CUDA when importable, else torch), "torch" or "triton".
    """

    tau: float = 0.5
    block_m: int = 64
    chunk_queries: int = 4096
    backend: str = "auto"

    name = "exact"

    def __post_init__(self) -> None:
        _check_block_m(self.block_m)
        if not (self.tau > 0 and math.isfinite(self.tau)):
            raise FgsimError(f"threshold tau must be a positive number, got {self.tau}")
        if self.backend not in ("auto", "torch", "triton"):
            raise FgsimError(f"backend must be auto, torch or triton, got {self.backend!r}")
        _chunk_rows(self.chunk_queries, self.block_m)

    def params(self) -> dict[str, Any]:
        """The predictor's name and parameters, as stored in a trace's metadata."""
        return {"name": self.name, "rule": "max_{i in block} softmax(q k^T scale)[i,j] > tau / N_keys",
                **asdict(self)}

    def __call__(self, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None = None,
                 scale: float | None = None) -> torch.Tensor:
        """The slice mask, bool ``(B, H, ⌈S_q/M⌉, S_k)`` on ``q``'s device."""
        b, h, s_q, s_k, d = _check_qk(q, k, key_mask)
        scale = float(scale) if scale is not None else d ** -0.5
        n_valid = _valid_keys(key_mask, b, s_k)
        use_triton = self.backend == "triton" or (self.backend == "auto" and q.is_cuda and _triton_ok())
        if use_triton:
            from fgsim.capture import _triton

            return _triton.exact_mask(q, k, key_mask, scale, [self.tau / n for n in n_valid], self.block_m)
        return self._torch_mask(q, k, key_mask, scale, n_valid)

    def _torch_mask(self, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None, scale: float,
                    n_valid: list[int]) -> torch.Tensor:
        torch = _torch()
        b, h, s_q, s_k, _ = q.shape[0], q.shape[1], q.shape[2], k.shape[2], q.shape[3]
        cdt = _compute_dtype(q)
        m = self.block_m
        qb = -(-s_q // m)
        rows = _chunk_rows(self.chunk_queries, m)
        out = torch.empty((b, h, qb, s_k), dtype=torch.bool, device=q.device)
        bias = _key_bias(key_mask, b, s_k, cdt, q.device)
        for bi in range(b):
            thr = self.tau / n_valid[bi]
            for hi in range(h):
                kk = k[bi, hi].to(cdt)
                for r0 in range(0, s_q, rows):
                    r1 = min(s_q, r0 + rows)
                    s = (q[bi, hi, r0:r1].to(cdt) @ kk.transpose(0, 1)) * scale
                    if bias is not None:
                        s = s + bias[bi]
                    p = torch.softmax(s, dim=-1)  # rows are complete: the exact softmax (pass 1 and 2 fused)
                    out[bi, hi, r0 // m:-(-r1 // m)] = _block_any(p > thr, m)
        return out


@dataclass(frozen=True)
class PooledTopCDF:
    """SpargeAttn-style cheap predictor on mean-pooled groups of ``group`` tokens.

    Per query group, pooled scores ``mean(q_g)·mean(k_g')ᵀ·scale`` are softmaxed over key groups; the smallest
    set of key groups whose cumulative probability reaches ``p`` is kept (the group crossing ``p`` included);
    ``p = 1`` keeps every key group that holds a valid key.
    Groups that are not self-similar — mean cosine of their tokens to the group mean below ``gamma`` — are always
    kept: a non-self-similar query group keeps every key, a non-self-similar key group is kept by every query
    group. The group mask is expanded to M×1 slices (a query block keeps a key when any of the query groups it
    overlaps keeps the key's group). Key groups of equal probability are ranked by index (a stable sort).

    ``p`` and ``gamma`` are dimensionless; ``group`` is in tokens. ``backend``: "auto" (Triton on CUDA when
    importable, else torch), "torch" or "triton". The Triton path reads ``q``/``k`` once in their own dtype and never
    sorts; its extra memory is the fp32 pooled scores (``4·B·H·⌈S_q/G⌉·⌈S_k/G⌉`` bytes) plus the output.
    """

    p: float = 0.9
    gamma: float = 0.6
    group: int = 16
    block_m: int = 64
    backend: str = "auto"

    name = "pooled"

    def __post_init__(self) -> None:
        _check_block_m(self.block_m)
        if not 0.0 < self.p <= 1.0:
            raise FgsimError(f"cumulative probability p must be in (0, 1], got {self.p}")
        if not -1.0 <= self.gamma <= 1.0:
            raise FgsimError(f"cosine threshold gamma must be in [-1, 1], got {self.gamma}")
        if self.group < 1:
            raise FgsimError(f"group must be ≥ 1, got {self.group}")
        if self.backend not in ("auto", "torch", "triton"):
            raise FgsimError(f"backend must be auto, torch or triton, got {self.backend!r}")

    def params(self) -> dict[str, Any]:
        """The predictor's name and parameters, as stored in a trace's metadata."""
        return {"name": self.name, "rule": "pooled top-CDF + non-self-similar groups kept", **asdict(self)}

    def _use_triton(self, q: torch.Tensor) -> bool:
        return self.backend == "triton" or (self.backend == "auto" and q.is_cuda and _triton_ok())

    def group_mask(self, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None = None,
                   scale: float | None = None) -> torch.Tensor:
        """The group-level mask, bool ``(B, H, ⌈S_q/G⌉, ⌈S_k/G⌉)``: entry ``[b, h, i, j]`` is True when query
        group ``i`` (tokens ``i·G … i·G + G − 1``) keeps key group ``j``. About ``⌈S_q/M⌉·S_k / (QG·KG)`` times
        smaller than the slice mask (4× for M = 64, G = 16); callers that work at group granularity skip the
        expansion."""
        b, h, s_q, s_k, d = _check_qk(q, k, key_mask)
        _valid_keys(key_mask, b, s_k)
        scale = float(scale) if scale is not None else d ** -0.5
        if self.p >= 1.0:
            return self._all_valid_groups(q, k, key_mask)
        if self._use_triton(q):
            from fgsim.capture import _triton

            return _triton.pooled_group_mask(q, k, key_mask, scale, self.p, self.gamma, self.group)
        return self._torch_group_mask(q, k, key_mask, scale)

    def _all_valid_groups(self, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """p = 1: every softmax probability is positive, so the cumulative mass reaches 1 only with every key group
        that holds a valid key; decided exactly here rather than by a rounding-sensitive cumulative sum (the
        torch and Triton paths would otherwise differ where the last groups' mass is below one ulp of 1)."""
        torch = _torch()
        b, h, s_q, s_k, g = q.shape[0], q.shape[1], q.shape[2], k.shape[2], self.group
        n_qg, n_kg = -(-s_q // g), -(-s_k // g)
        kw = torch.ones((b, s_k), dtype=torch.bool, device=q.device) if key_mask is None else \
            key_mask.to(device=q.device, dtype=torch.bool)
        kw = torch.nn.functional.pad(kw, (0, n_kg * g - s_k))
        k_valid = kw.view(b, n_kg, g).any(-1)  # (B, KG)
        return k_valid[:, None, None, :].expand(b, h, n_qg, n_kg).clone()

    def _torch_group_mask(self, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None,
                          scale: float) -> torch.Tensor:
        torch = _torch()
        b, s_q, s_k = q.shape[0], q.shape[2], k.shape[2]
        cdt = _compute_dtype(q)
        g = self.group
        qw = torch.ones((b, s_q), dtype=cdt, device=q.device)
        kw = torch.ones((b, s_k), dtype=cdt, device=q.device) if key_mask is None else \
            key_mask.to(device=q.device, dtype=cdt)
        q_mean, q_sim, _ = _pool(q.to(cdt), qw, g)
        k_mean, k_sim, k_cnt = _pool(k.to(cdt), kw, g)
        k_valid = k_cnt > 0  # (B, KG)
        s = (q_mean @ k_mean.transpose(-1, -2)) * scale  # (B, H, QG, KG)
        s = s.masked_fill(~k_valid[:, None, None, :], float("-inf"))
        prob = torch.softmax(s, dim=-1)
        sorted_p, order = torch.sort(prob, dim=-1, descending=True, stable=True)  # ties: lower index first
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p  # mass of the strictly better groups
        keep_sorted = before < self.p
        keep_sorted[..., 0] = True
        keep = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
        keep |= (q_sim < self.gamma)[..., :, None]
        keep |= (k_sim < self.gamma)[:, :, None, :]
        return keep & k_valid[:, None, None, :]

    def __call__(self, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None = None,
                 scale: float | None = None) -> torch.Tensor:
        """The slice mask, bool ``(B, H, ⌈S_q/M⌉, S_k)``."""
        torch = _torch()
        gm = self.group_mask(q, k, key_mask, scale)
        b, h, s_q, s_k = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        g, m = self.group, self.block_m
        if self._use_triton(q):
            from fgsim.capture import _triton

            return _triton.expand_group_mask(gm, s_q, s_k, g, m, key_mask)
        qb = -(-s_q // m)
        starts = torch.arange(qb, device=q.device) * m
        g0 = starts // g
        g1 = (torch.clamp(starts + m, max=s_q) - 1) // g  # inclusive last group of each block
        cs = torch.cumsum(gm.to(torch.int32), dim=2)
        cs = torch.cat([cs.new_zeros(b, h, 1, cs.shape[-1]), cs], dim=2)
        blk = (cs[:, :, g1 + 1] - cs[:, :, g0]) > 0  # (B, H, QB, KG)
        out = blk.repeat_interleave(g, dim=-1)[..., :s_k]
        if key_mask is not None:
            out &= key_mask.to(device=q.device, dtype=torch.bool)[:, None, None, :]
        return out


def _pool(x: torch.Tensor, w: torch.Tensor, g: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted group means of ``x (B, H, S, D)`` over groups of ``g`` tokens (weights ``w (B, S)`` ∈ {0, 1}).

    Returns ``(mean (B, H, G, D), self_similarity (B, H, G), count (B, G))``; self-similarity is the mean cosine of
    the group's weighted tokens to the group mean (1 for empty groups, so they never force a keep).
    """
    torch = _torch()
    b, h, s, d = x.shape
    pad = (-s) % g
    if pad:
        x = torch.cat([x, x.new_zeros(b, h, pad, d)], dim=2)
        w = torch.cat([w, w.new_zeros(b, pad)], dim=1)
    xg = x.unflatten(2, (-1, g))  # (B, H, G, g, D)
    wg = w.unflatten(1, (-1, g))  # (B, G, g)
    cnt = wg.sum(-1)  # (B, G)
    mean = (xg * wg[:, None, :, :, None]).sum(3) / cnt.clamp(min=1)[:, None, :, None]
    eps = torch.finfo(x.dtype).tiny
    cos = (xg * mean[:, :, :, None, :]).sum(-1) / (
        xg.norm(dim=-1).clamp(min=eps) * mean.norm(dim=-1)[..., None].clamp(min=eps))
    sim = (cos * wg[:, None]).sum(-1) / cnt.clamp(min=1)[:, None]
    sim = torch.where(cnt[:, None] > 0, sim, torch.ones_like(sim))
    return mean, sim, cnt


@dataclass(frozen=True)
class BlockLevel:
    """Block-sparse baseline: a base predictor's slice mask coarsened to M×``block_n`` tiles and re-expanded.

    A key tile of ``block_n`` keys is kept whole for a query block when the base mask keeps any key in it, so the
    result is a slice mask that a block-sparse (M×M when ``block_n == block_m``) kernel executes exactly.
    """

    base: ExactThreshold | PooledTopCDF
    block_n: int = 0  # 0 → block_m (square M×M blocks)

    name = "block"

    def __post_init__(self) -> None:
        if self.block_n < 0:
            raise FgsimError(f"block_n must be ≥ 0, got {self.block_n}")

    @property
    def block_m(self) -> int:
        """Query-block size M of the produced mask."""
        return self.base.block_m

    @property
    def tile_n(self) -> int:
        """Key-tile width in keys."""
        return self.block_n or self.base.block_m

    def params(self) -> dict[str, Any]:
        """The predictor's name and parameters, as stored in a trace's metadata."""
        return {"name": self.name, "block_n": self.tile_n, "base": self.base.params()}

    def __call__(self, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None = None,
                 scale: float | None = None) -> torch.Tensor:
        """The block-expanded slice mask, bool ``(B, H, ⌈S_q/M⌉, S_k)``."""
        return expand_blocks(self.base(q, k, key_mask, scale), self.tile_n, key_mask)


def expand_blocks(mask: torch.Tensor, n: int, key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Coarsen a slice mask ``(..., S_k)`` to key tiles of ``n`` keys (any kept key keeps the tile), re-expanded."""
    torch = _torch()
    s_k = mask.shape[-1]
    pad = (-s_k) % n
    m = mask
    if pad:
        m = torch.cat([m, m.new_zeros(*m.shape[:-1], pad)], dim=-1)
    tiles = m.unflatten(-1, (-1, n)).any(dim=-1)
    out = tiles.repeat_interleave(n, dim=-1)[..., :s_k]
    if key_mask is not None:
        out &= key_mask.to(device=mask.device, dtype=torch.bool)[:, None, None, :]
    return out


Predictor = ExactThreshold | PooledTopCDF | BlockLevel


def make_predictor(name: str, *, threshold: float | None = None, block_m: int = 64, group: int = 16,
                   gamma: float = 0.6, block_n: int = 0, chunk_queries: int = 4096,
                   backend: str = "auto") -> Predictor:
    """Build a predictor by name: ``exact`` (threshold = τ, default 0.5), ``pooled`` (threshold = p, default 0.9),
    ``block`` (exact rule coarsened to M×``block_n`` tiles, threshold = τ) or ``block-pooled``."""
    if name == "exact":
        return ExactThreshold(tau=0.5 if threshold is None else threshold, block_m=block_m,
                              chunk_queries=chunk_queries, backend=backend)
    if name == "pooled":
        return PooledTopCDF(p=0.9 if threshold is None else threshold, gamma=gamma, group=group, block_m=block_m,
                            backend=backend)
    if name == "block":
        return BlockLevel(make_predictor("exact", threshold=threshold, block_m=block_m,  # type: ignore[arg-type]
                                         chunk_queries=chunk_queries, backend=backend), block_n)
    if name == "block-pooled":
        return BlockLevel(make_predictor("pooled", threshold=threshold, block_m=block_m,  # type: ignore[arg-type]
                                         group=group, gamma=gamma, backend=backend), block_n)
    raise FgsimError(f"unknown predictor {name!r}; choose exact, pooled, block or block-pooled")


def attention_stats(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, block_m: int,
                    key_mask: torch.Tensor | None = None, scale: float | None = None,
                    chunk_queries: int = 4096) -> dict[str, torch.Tensor]:
    """Accuracy of a slice mask for one attention call, per (batch, head): float64 ``(B, H)`` tensors on the CPU.

    - ``kept_fraction``: kept share of the attendable attention area, Σ_i |kept keys of i| / (S_q · N_keys);
    - ``recall_mean`` / ``recall_min``: softmax mass on kept keys, mean and minimum over query rows;
    - ``rel_error``: ‖O_sparse − O_dense‖_F / ‖O_dense‖_F, where O_sparse is the softmax renormalised over the
      kept keys (what a sparse kernel computes) and O_dense the exact dense output (both in float32/64).

    Streamed per chunk of ``chunk_queries`` queries per head; never materialises the full map.
    """
    torch = _torch()
    b, h, s_q, s_k, _ = _check_qk(q, k, key_mask)
    if v.dim() != 4 or v.shape[:3] != k.shape[:3]:
        raise FgsimError(f"v must be (B, H, S_k, Dv) matching k {tuple(k.shape)}, got {tuple(v.shape)}")
    qb = -(-s_q // block_m)
    if tuple(mask.shape) != (b, h, qb, s_k):
        raise FgsimError(f"mask must be {(b, h, qb, s_k)}, got {tuple(mask.shape)}")
    scale = float(scale) if scale is not None else q.shape[-1] ** -0.5
    n_valid = _valid_keys(key_mask, b, s_k)
    cdt = _compute_dtype(q)
    rows = _chunk_rows(chunk_queries, block_m)
    bias = _key_bias(key_mask, b, s_k, cdt, q.device)
    out = {n: torch.zeros((b, h), dtype=torch.float64) for n in STAT_NAMES}
    for bi in range(b):
        for hi in range(h):
            kk, vv = k[bi, hi].to(cdt), v[bi, hi].to(cdt)
            kept = 0.0
            rsum, rmin = 0.0, math.inf
            err2, ref2 = 0.0, 0.0
            for r0 in range(0, s_q, rows):
                r1 = min(s_q, r0 + rows)
                s = (q[bi, hi, r0:r1].to(cdt) @ kk.transpose(0, 1)) * scale
                if bias is not None:
                    s = s + bias[bi]
                p = torch.softmax(s, dim=-1)
                keep = mask[bi, hi, r0 // block_m:-(-r1 // block_m)].to(p.device)
                keep = keep.repeat_interleave(block_m, dim=0)[: r1 - r0]
                ps = p * keep
                rec = ps.sum(-1)
                dense = p @ vv
                sparse = (ps @ vv) / rec.clamp(min=torch.finfo(cdt).tiny)[:, None]
                sparse = torch.where(rec[:, None] > 0, sparse, torch.zeros_like(sparse))
                kept += float(keep.sum(dtype=torch.float64))
                rsum += float(rec.sum(dtype=torch.float64))
                rmin = min(rmin, float(rec.min()))
                err2 += float(((sparse - dense).double() ** 2).sum())
                ref2 += float((dense.double() ** 2).sum())
            out["kept_fraction"][bi, hi] = kept / (s_q * n_valid[bi])
            out["recall_mean"][bi, hi] = rsum / s_q
            out["recall_min"][bi, hi] = rmin
            out["rel_error"][bi, hi] = math.sqrt(err2 / ref2) if ref2 > 0 else (0.0 if err2 == 0 else math.inf)
    return out


def _triton_ok() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
