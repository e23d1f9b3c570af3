"""Row compaction of a bool mask into CSR indices (Triton; used by :func:`fgattn.build_index`)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _compact_kernel(Mask, Offsets, Out, NT, stride_row, CHUNK: tl.constexpr):
    """Program r writes the column numbers of row r's set bits to Out[Offsets[r]:], in order."""
    r = tl.program_id(0)
    pos = tl.load(Offsets + r)
    row = Mask + r.to(tl.int64) * stride_row
    for c in range(0, NT, CHUNK):
        cols = c + tl.arange(0, CHUNK)
        bits = tl.load(row + cols, mask=cols < NT, other=0).to(tl.int32)
        slot = tl.cumsum(bits, 0) - 1  # exclusive prefix sum of kept columns in this chunk
        tl.store(Out + pos + slot, cols, mask=bits != 0)
        pos += tl.sum(bits, 0)


@triton.jit
def _count_kernel(Mask, Counts, NT, stride_row, CHUNK: tl.constexpr):
    """Counts[r] = number of set bytes in row r (one read of the mask; torch's bool sum widens to int64)."""
    r = tl.program_id(0)
    row = Mask + r.to(tl.int64) * stride_row
    total = tl.zeros([CHUNK], dtype=tl.int32)
    for c in range(0, NT, CHUNK):
        cols = c + tl.arange(0, CHUNK)
        total += tl.load(row + cols, mask=cols < NT, other=0).to(tl.int32)
    tl.store(Counts + r, tl.sum(total, 0).to(tl.int64))


def count_rows(tiles: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """int64 (rows,) kept count of each row of a bool (rows, NT) mask."""
    t8 = (tiles if tiles.stride(-1) == 1 else tiles.contiguous()).view(torch.uint8)
    rows, nt = t8.shape
    counts = torch.empty(rows, dtype=torch.int64, device=t8.device)
    _count_kernel[(rows,)](t8, counts, nt, t8.stride(0), CHUNK=chunk, num_warps=4)
    return counts


def compact_rows(tiles: torch.Tensor, offsets: torch.Tensor, out: torch.Tensor, chunk: int = 2048) -> None:
    """Fill ``out`` (int32) with the kept column numbers of each row of bool ``tiles`` (rows, NT)."""
    t = tiles if tiles.stride(-1) == 1 else tiles.contiguous()
    t8 = t.view(torch.uint8)
    rows, nt = t8.shape
    _compact_kernel[(rows,)](t8, offsets, out, nt, t8.stride(0), CHUNK=chunk, num_warps=4)
