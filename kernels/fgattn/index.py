"""CSR indices of kept key tiles per (batch, head, query block), built on the GPU with torch ops.

An :class:`FgIndex` lists, for every query block of ``block_m`` queries, the kept key tiles of
``gran_n`` contiguous keys (tile ``t`` covers keys ``t*gran_n ... t*gran_n+gran_n-1``), sorted,
duplicate-free.  ``gran_n = 1`` is the M×1 slice index of FG-Attn; ``gran_n = block_m`` is the
M×M block index of :func:`fgattn.block_sparse_attention`.  Row ``r = (b*H + h)*QB + qb`` owns
``indices[offsets[r]:offsets[r+1]]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FgIndex", "build_index", "block_index_from_mask", "check_index", "index_to_mask"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class FgIndex:
    """CSR index of kept tiles.

    Attributes:
        offsets: int32/int64, shape (batch*heads*n_qblocks + 1,), row starts into ``indices``.
        indices: int32, kept tile starts in units of ``gran_n`` keys, sorted within a row.
        block_m: M, queries per query block.
        gran_n: keys per tile (1, 16, 64; block_m for a block index).
        n_keys: N, the key sequence length.
        batch: B.
        heads: H.
        n_qblocks: QB = ceil(N_q / block_m).
        order: optional int32 (batch*heads*n_qblocks,) row launch order (:mod:`fgattn.schedule`:
            promoted heavy rows first, then head-major longest-first); ``None`` runs rows in natural order.
    """

    offsets: torch.Tensor
    indices: torch.Tensor
    block_m: int
    gran_n: int
    n_keys: int
    batch: int
    heads: int
    n_qblocks: int
    order: torch.Tensor | None = None

    @property
    def n_rows(self) -> int:
        """Rows (batch*heads*n_qblocks)."""
        return self.batch * self.heads * self.n_qblocks

    @property
    def n_tiles(self) -> int:
        """Key tiles per row, ceil(n_keys / gran_n)."""
        return _cdiv(self.n_keys, self.gran_n)

    def counts(self) -> torch.Tensor:
        """Kept tiles per row, int64 (n_rows,)."""
        return (self.offsets[1:] - self.offsets[:-1]).long()

    def kept_keys(self) -> int:
        """Kept (query block, key) pairs, counting the partial last tile exactly."""
        full = int(self.indices.numel()) * self.gran_n
        if self.n_keys % self.gran_n:
            last = int((self.indices == self.n_tiles - 1).sum())
            full -= last * (self.gran_n - self.n_keys % self.gran_n)
        return full

    def density(self, n_queries: int | None = None) -> float:
        """Kept fraction of the (query, key) area, queries weighted by the real block height."""
        nq = self.n_qblocks * self.block_m if n_queries is None else n_queries
        per_row = self.counts().to(torch.float64) * self.gran_n
        if self.n_keys % self.gran_n:
            last = self.n_tiles - 1
            hit = torch.zeros(self.n_rows, dtype=torch.float64, device=self.offsets.device)
            rows = torch.repeat_interleave(
                torch.arange(self.n_rows, device=self.offsets.device), self.counts()
            )
            hit.index_add_(0, rows, (self.indices == last).to(torch.float64))
            per_row -= hit * (self.gran_n - self.n_keys % self.gran_n)
        heights = torch.full((self.n_qblocks,), float(self.block_m), dtype=torch.float64)
        heights[-1] = nq - (self.n_qblocks - 1) * self.block_m
        heights = heights.to(per_row.device).repeat(self.batch * self.heads)
        return float((per_row * heights).sum() / (self.batch * self.heads * nq * self.n_keys))

    def to(self, device: torch.device | str) -> FgIndex:
        """Copy to ``device``."""
        order = None if self.order is None else self.order.to(device)
        return FgIndex(
            self.offsets.to(device), self.indices.to(device), self.block_m, self.gran_n,
            self.n_keys, self.batch, self.heads, self.n_qblocks, order,
        )


def check_index(index: FgIndex) -> None:
    """Validate an index cheaply (O(nnz) torch ops, one host sync).

    Raises:
        ValueError: wrong dtypes or lengths, offsets not non-decreasing from 0 to len(indices),
            a tile index outside [0, ceil(n_keys/gran_n)), or a row not sorted strictly increasing
            (unordered or duplicate indices).
    """
    off, idx = index.offsets, index.indices
    if off.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"index.offsets must be int32 or int64, got {off.dtype}")
    if idx.dtype != torch.int32:
        raise ValueError(f"index.indices must be int32, got {idx.dtype}")
    if off.ndim != 1 or off.numel() != index.n_rows + 1:
        raise ValueError(
            f"index.offsets must have batch*heads*n_qblocks+1 = {index.n_rows + 1} entries, got {tuple(off.shape)}"
        )
    if idx.ndim != 1:
        raise ValueError(f"index.indices must be 1-D, got shape {tuple(idx.shape)}")
    if index.order is not None and (index.order.numel() != index.n_rows or index.order.dtype != torch.int32):
        raise ValueError("index.order must be int32 with batch*heads*n_qblocks entries")
    first, last = off[0], off[-1]
    steps = off[1:] - off[:-1]
    nnz = idx.numel()
    n_tiles = index.n_tiles
    bad_off = (first != 0) | (last != nnz) | (steps < 0).any()
    if nnz:
        lo_bad = idx.min() < 0
        hi_bad = idx.max() >= n_tiles
        # a row boundary may decrease; everywhere else indices must strictly increase
        starts = torch.zeros(nnz, dtype=torch.bool, device=idx.device)
        inner = off[1:-1].long()
        inner = inner[(inner > 0) & (inner < nnz)]
        starts[inner] = True
        unordered = ((idx[1:] <= idx[:-1]) & ~starts[1:]).any()
    else:
        lo_bad = hi_bad = unordered = torch.zeros((), dtype=torch.bool, device=idx.device)
    flags = torch.stack([bad_off, lo_bad, hi_bad, unordered]).cpu().tolist()
    if flags[0]:
        raise ValueError(
            f"index.offsets must be non-decreasing from 0 to len(indices)={nnz} "
            f"(got first={int(first)}, last={int(last)})"
        )
    if flags[1] or flags[2]:
        raise ValueError(
            f"index.indices out of range: tiles must lie in [0, {n_tiles}) for n_keys={index.n_keys}, "
            f"gran_n={index.gran_n} (got min={int(idx.min())}, max={int(idx.max())})"
        )
    if flags[3]:
        raise ValueError("index.indices must be sorted strictly increasing within each row (unordered or duplicate)")


def _coarsen(mask: torch.Tensor, gran: int) -> torch.Tensor:
    """Tile-level mask: tile kept if any of its ``gran`` keys is kept (last tile may be partial)."""
    if gran == 1:
        return mask
    n = mask.shape[-1]
    pad = _cdiv(n, gran) * gran - n
    if pad:
        mask = torch.nn.functional.pad(mask, (0, pad), value=False)
    return mask.reshape(*mask.shape[:-1], -1, gran).any(-1)


def _use_triton(device: torch.device) -> bool:
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET", "0") == "1"


def _csr_from_tiles(tiles: torch.Tensor, chunk_elems: int = 1 << 28) -> tuple[torch.Tensor, torch.Tensor]:
    """(offsets int64, indices int32) of a bool (rows, n_tiles) mask.

    On the GPU (or under the Triton interpreter) two Triton passes, one program per row: count the
    kept tiles, then compact the row with a prefix sum (two reads of the mask, one write of the
    indices); elsewhere torch.masked_select in row chunks bounds the temporaries.  One host sync
    (the total count sizes the output).
    """
    rows, nt = tiles.shape
    triton_ok = rows > 0 and nt > 0 and _use_triton(tiles.device)
    if triton_ok:
        from ._compact import count_rows

        counts = count_rows(tiles)
    else:
        counts = tiles.sum(-1)
    offsets = torch.zeros(rows + 1, dtype=torch.int64, device=tiles.device)
    torch.cumsum(counts, 0, out=offsets[1:])
    nnz = int(offsets[-1])
    indices = torch.empty(nnz, dtype=torch.int32, device=tiles.device)
    if triton_ok:
        from ._compact import compact_rows

        compact_rows(tiles, offsets, indices)
        return offsets, indices
    ar = torch.arange(nt, dtype=torch.int32, device=tiles.device)
    step = max(1, chunk_elems // max(nt, 1))
    if rows <= step:
        indices.copy_(torch.masked_select(ar.expand(rows, nt), tiles))
        return offsets, indices
    off_cpu = offsets.cpu()
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        a, z = int(off_cpu[r0]), int(off_cpu[r1])
        indices[a:z] = torch.masked_select(ar.expand(r1 - r0, nt), tiles[r0:r1])
    return offsets, indices


def _order(offsets: torch.Tensor, n_qblocks: int, n_sm: int | None = None, promote: bool = True) -> torch.Tensor:
    """Row launch order (torch twin of :func:`fgattn.schedule.row_order`): promoted heavy rows first
    (heaviest first), then (batch, head)-major, heaviest query block first within each head.
    ``promote=False`` gives the plain head-major LPT order.  ``n_sm`` defaults to the device's SM count."""
    from .schedule import DEFAULT_SMS, PROMOTE_RATIO, PROMOTE_SHARE

    counts = (offsets[1:] - offsets[:-1]).long()
    if counts.numel() == 0:
        return torch.zeros(0, dtype=torch.int32, device=offsets.device)
    if n_sm is None:
        dev = offsets.device
        n_sm = torch.cuda.get_device_properties(dev).multi_processor_count if dev.type == "cuda" else DEFAULT_SMS
    c = counts.view(-1, n_qblocks)
    maxc = int(c.max())
    head = torch.arange(c.shape[0], device=c.device)[:, None]
    key = head * (maxc + 1) + (maxc - c)
    if promote:
        med = c.sort(dim=1).values[:, (n_qblocks - 1) // 2]
        share = c.sum().double() / max(int(n_sm), 1)
        promoted = (c >= PROMOTE_RATIO * med[:, None]) & (c.double() >= PROMOTE_SHARE * share) & (c > 0)
        key = torch.where(promoted, -1 - c, key)
    return torch.argsort(key.reshape(-1), stable=True).to(torch.int32)


def build_index(
    mask_or_view: Any,
    *,
    block_m: int,
    gran_n: int = 1,
    n_keys: int | None = None,
    batch: int = 1,
    heads: int | None = None,
    device: torch.device | str | None = None,
    order: bool = False,
    check: bool = False,
) -> FgIndex:
    """Build an :class:`FgIndex` on the mask's (or ``device``'s) device.

    Args:
        mask_or_view: either a bool slice mask of kept M×1 slices, shape (B, H, QB, N) or
            (H, QB, N) (a trace's ``tr.mask(p, l)``), tensor or numpy array; or a trace CSR view
            ``(offsets, indices)`` as ``tr.csr(p, l, m=block_m, n=gran_n)`` returns (already in
            units of ``gran_n``; then ``n_keys`` and ``heads`` are required, ``batch`` rows of
            ``heads*QB`` each).
        block_m: M, queries per query block (the mask's QB = ceil(N_q / M)).
        gran_n: keys per tile; a tile is kept when any of its keys is kept.
        n_keys: N (required for a CSR view; checked against a mask).
        batch: B for a CSR view.
        heads: H for a CSR view.
        device: target device (default: the input's).
        order: also compute the launch row order (:mod:`fgattn.schedule`: promoted heavy rows first,
            then head-major, heaviest query block first).
        check: validate the result with :func:`check_index`.

    Returns:
        The index; memory O(B·H·QB·N) bools for a mask input, O(nnz) for a view.
    """
    if isinstance(mask_or_view, tuple | list):
        offsets, indices = mask_or_view
        offsets = torch.as_tensor(offsets, device=device)
        indices = torch.as_tensor(indices, device=device)
        if n_keys is None or heads is None:
            raise ValueError("n_keys and heads are required to build an index from a CSR view")
        if offsets.dtype not in (torch.int32, torch.int64):
            offsets = offsets.to(torch.int64)
        indices = indices.to(torch.int32)
        rows = offsets.numel() - 1
        if rows % (batch * heads):
            raise ValueError(f"offsets has {rows} rows, not a multiple of batch*heads={batch * heads}")
        qb = rows // (batch * heads)
        idx = FgIndex(offsets, indices, block_m, gran_n, int(n_keys), batch, heads, qb)
    else:
        mask = torch.as_tensor(mask_or_view, device=device)
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool, got {mask.dtype}")
        if mask.ndim == 3:
            mask = mask.unsqueeze(0)
        if mask.ndim != 4:
            raise ValueError(f"mask must have shape (B, H, QB, N) or (H, QB, N), got {tuple(mask.shape)}")
        b, h, qb, n = mask.shape
        if n_keys is not None and n_keys != n:
            raise ValueError(f"n_keys={n_keys} does not match mask.shape[-1]={n}")
        tiles = _coarsen(mask.reshape(b * h * qb, n), gran_n)
        offsets, indices = _csr_from_tiles(tiles)
        idx = FgIndex(offsets, indices, block_m, gran_n, n, b, h, qb)
    if order:
        idx = FgIndex(idx.offsets, idx.indices, idx.block_m, idx.gran_n, idx.n_keys, idx.batch,
                      idx.heads, idx.n_qblocks, _order(idx.offsets, idx.n_qblocks))
    if check:
        check_index(idx)
    return idx


def block_index_from_mask(
    mask: Any, *, block_m: int, n_keys: int, order: bool = False, check: bool = False
) -> FgIndex:
    """M×M block index: from a slice mask (B, H, QB, N) (a block is kept when it holds one kept
    slice) or a block mask (B, H, QB, ceil(N/M)).  Returns an index with ``gran_n = block_m``."""
    mask = torch.as_tensor(mask)
    if mask.ndim == 3:
        mask = mask.unsqueeze(0)
    nb = _cdiv(n_keys, block_m)
    if mask.shape[-1] == n_keys:
        return build_index(mask, block_m=block_m, gran_n=block_m, n_keys=n_keys, order=order, check=check)
    if mask.shape[-1] != nb:
        raise ValueError(f"mask last dim {mask.shape[-1]} is neither n_keys={n_keys} nor ceil(N/M)={nb}")
    b, h, qb, _ = mask.shape
    offsets, indices = _csr_from_tiles(mask.reshape(b * h * qb, nb).to(torch.bool))
    idx = FgIndex(offsets, indices, block_m, block_m, n_keys, b, h, qb,
                  _order(offsets, qb) if order else None)
    if check:
        check_index(idx)
    return idx


def index_to_mask(index: FgIndex) -> torch.Tensor:
    """Dense bool (B, H, QB, N) slice mask of an index (for references and tests; O(B·H·QB·N))."""
    rows = torch.repeat_interleave(torch.arange(index.n_rows, device=index.indices.device), index.counts())
    tiles = torch.zeros(index.n_rows, index.n_tiles, dtype=torch.bool, device=index.indices.device)
    tiles[rows, index.indices.long()] = True
    keys = tiles.repeat_interleave(index.gran_n, dim=1)[:, : index.n_keys]
    return keys.reshape(index.batch, index.heads, index.n_qblocks, index.n_keys)
