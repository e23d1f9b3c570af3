"""Synthetic kept-slice masks for benchmarks: random, and structured (3D window + attention sinks).

Both return bool (B, H, QB, N) masks of kept M×1 slices (query block × key) on the given device.
"""

from __future__ import annotations

import torch

__all__ = ["random_mask", "window_mask", "video_grid", "with_text"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def video_grid(n_tokens: int) -> tuple[int, int, int]:
    """(T, H, W) latent grid of a Wan2.1 sequence (480p: 21×30×52 = 32,760; 720p: 21×45×80 = 75,600)."""
    known = {32760: (21, 30, 52), 75600: (21, 45, 80)}
    if n_tokens in known:
        return known[n_tokens]
    t = 1
    while t * t * t < n_tokens:
        t += 1
    return (t, t, _cdiv(n_tokens, t * t))


def random_mask(
    batch: int, heads: int, n: int, block_m: int, density: float, *, gran_n: int = 1,
    device: torch.device | str = "cuda", generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Each (query block, key tile of ``gran_n`` keys) kept independently with probability ``density``."""
    qb = _cdiv(n, block_m)
    nt = _cdiv(n, gran_n)
    out = torch.empty(batch, heads, qb, n, dtype=torch.bool, device=device)
    for b in range(batch):
        for h in range(heads):
            tiles = torch.rand(qb, nt, device=device, generator=generator) < density
            out[b, h] = tiles.repeat_interleave(gran_n, dim=1)[:, :n]
    return out


def _window(coords: torch.Tensor, n: int, block_m: int, windows: torch.Tensor, sinks: int) -> torch.Tensor:
    """Keep key k for block b if k's (t, y, x) lies within ``windows[h]`` of block b's bounding box."""
    qb = _cdiv(n, block_m)
    pad = qb * block_m - n
    c = torch.cat([coords, coords[-1:].expand(pad, 3)]) if pad else coords
    blocks = c.reshape(qb, block_m, 3)
    lo, hi = blocks.min(1).values, blocks.max(1).values  # (QB, 3)
    # distance of each key to each block's box, per axis: (QB, N, 3)
    dist = (lo[:, None, :] - coords[None, :, :]).clamp(min=0) + (coords[None, :, :] - hi[:, None, :]).clamp(min=0)
    keep = (dist[None] <= windows[:, None, None, :]).all(-1)  # (H, QB, N)
    if sinks:
        keep[..., :sinks] = True
    return keep


def window_mask(
    batch: int, heads: int, n: int, block_m: int, density: float, *, sinks: int = 64,
    device: torch.device | str = "cuda", seed: int = 0, tol: float = 0.005,
) -> torch.Tensor:
    """Structured mask: a per-head anisotropic 3D window around each query block + ``sinks`` keys.

    Window half-widths per axis are ``s·a_h·extent`` with per-head axis weights ``a_h`` in [0.5, 1.5];
    ``s`` is bisected so that the mean kept fraction is ``density`` (within ``tol``).
    """
    grid = video_grid(n)
    t, y, x = grid
    ar = torch.arange(n, device=device)
    coords = torch.stack([ar // (y * x), (ar // x) % y, ar % x], dim=1).to(torch.int32)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    weights = 0.5 + torch.rand(heads, 3, generator=gen)
    ext = torch.tensor(grid, dtype=torch.float32)
    if density >= 1.0:
        return torch.ones(batch, heads, _cdiv(n, block_m), n, dtype=torch.bool, device=device)
    lo_s, hi_s = 0.0, 2.0
    keep = None
    for _ in range(30):
        s = 0.5 * (lo_s + hi_s)
        win = (s * weights * ext).floor().to(torch.int32).to(device)
        keep = _window(coords, n, block_m, win, sinks)
        d = float(keep.sum()) / keep.numel()
        if abs(d - density) <= tol:
            break
        if d < density:
            lo_s = s
        else:
            hi_s = s
    assert keep is not None
    return keep.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def with_text(video: torch.Tensor, n_text: int, block_m: int) -> torch.Tensor:
    """Append ``n_text`` text tokens to a video slice mask (B, H, QB_v, N_v) (MM-DiT joint attention).

    Every query block keeps all text keys; every query block that holds a text query (from the one
    holding token N_v on) keeps every key.  Returns bool (B, H, ceil((N_v + n_text) / M), N_v + n_text).
    """
    b, h, qb_v, n_v = video.shape
    n = n_v + n_text
    qb = _cdiv(n, block_m)
    out = torch.ones(b, h, qb, n, dtype=torch.bool, device=video.device)
    first_text_block = n_v // block_m
    out[:, :, :first_text_block, :n_v] = video[:, :, :first_text_block]
    return out
