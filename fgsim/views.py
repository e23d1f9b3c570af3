"""Derived views of an M×1 slice mask: coarser M×N tiles, counts, densities and CSR index lists.

A slice mask is a bool array ``(heads, query_blocks, keys)``: entry ``[h, b, j]`` is True when the
``block_m`` queries of query block ``b`` keep key ``j`` in head ``h``. Every function here is a pure numpy
function of such a mask; :class:`fgsim.trace.Trace` stores the counts they produce so that readers of work
sizes never unpack a mask.

A coarser tile (``m`` queries × ``n`` keys, ``m`` a multiple of the stored ``block_m``) is kept when any
slice in it is kept. Edge tiles are clipped to the real sequence: the last query block may hold fewer than
``m`` queries and the last key tile fewer than ``n`` keys.
"""

from __future__ import annotations

import numpy as np

#: Key-tile widths N for which traces store counts (N = 1 is the M×1 slice).
N_LEVELS: tuple[int, ...] = (1, 16, 64, 128)
#: Query-block sizes M a trace can store or derive.
M_LEVELS: tuple[int, ...] = (16, 32, 64, 128)


def ceil_div(a: int, b: int) -> int:
    """⌈a / b⌉ for non-negative integers."""
    return -(-a // b)


def m_levels_for(block_m: int) -> tuple[int, ...]:
    """The query-block sizes derivable from a mask stored at ``block_m`` (multiples of it, ≤ 128)."""
    if block_m not in M_LEVELS:
        raise ValueError(f"block_m must be one of {M_LEVELS}, got {block_m}")
    return tuple(m for m in M_LEVELS if m % block_m == 0)


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """Bit-pack a bool mask along its last axis (little bit order): uint8 ``(..., ceil(keys / 8))``."""
    return np.packbits(np.asarray(mask, dtype=bool), axis=-1, bitorder="little")


def unpack_mask(packed: np.ndarray, n_keys: int) -> np.ndarray:
    """Inverse of :func:`pack_mask`: bool ``(..., n_keys)``."""
    return np.unpackbits(packed, axis=-1, count=n_keys, bitorder="little").astype(bool)


def _check_levels(block_m: int, m: int, n: int) -> None:
    if m not in m_levels_for(block_m):
        raise ValueError(f"m={m} is not a multiple of the stored block_m={block_m} within {M_LEVELS}")
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")


def coarsen(mask: np.ndarray, block_m: int, m: int, n: int) -> np.ndarray:
    """The M×N tile mask: bool ``(heads, ceil(QB·block_m / m), ceil(keys / n))``.

    A tile is kept when any M×1 slice inside it is kept.
    """
    _check_levels(block_m, m, n)
    mask = np.asarray(mask, dtype=bool)
    heads, qb, keys = mask.shape
    group = m // block_m
    qb_out = ceil_div(qb, group)
    kt = ceil_div(keys, n)
    if group > 1:
        pad = qb_out * group - qb
        if pad:
            mask = np.concatenate([mask, np.zeros((heads, pad, keys), dtype=bool)], axis=1)
        mask = mask.reshape(heads, qb_out, group, keys).any(axis=2)
    if n > 1:
        pad = kt * n - keys
        if pad:
            mask = np.concatenate([mask, np.zeros((heads, qb_out, pad), dtype=bool)], axis=2)
        mask = mask.reshape(heads, qb_out, kt, n).any(axis=3)
    return mask


def key_tile_widths(n_keys: int, n: int) -> np.ndarray:
    """Keys in each key tile of width ``n`` (the last one may be partial): int64 ``(ceil(n_keys / n),)``."""
    kt = ceil_div(n_keys, n)
    widths = np.full(kt, n, dtype=np.int64)
    widths[-1] = n_keys - (kt - 1) * n
    return widths


def query_block_rows(n_queries: int, m: int) -> np.ndarray:
    """Queries in each query block of size ``m`` (the last one may be partial): int64 ``(ceil(n/m),)``."""
    return key_tile_widths(n_queries, m)


def tile_counts(mask: np.ndarray, block_m: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Kept M×N tiles and the keys they cover, per query block of size ``m``.

    Returns ``(tiles, keys)``, both int32 ``(heads, ceil(QB·block_m / m))``: ``tiles`` is the number of kept
    key tiles (the kernel's work in units of ``n`` keys), ``keys`` the real keys inside them (≤ tiles·n).
    """
    coarse = coarsen(mask, block_m, m, n)
    widths = key_tile_widths(np.asarray(mask).shape[2], n)
    tiles = coarse.sum(axis=2, dtype=np.int64)
    keys = coarse.astype(np.int64) @ widths if n > 1 else tiles
    return tiles.astype(np.int32), np.asarray(keys, dtype=np.int32)


def tile_counts_packed(packed: np.ndarray, n_keys: int, block_m: int, m: int,
                       n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tile_counts` computed on a bit-packed mask (``pack_mask``'s layout); ``n`` is 1 or a multiple of 8.

    Works on bytes instead of bools, about 8× less data: the writer uses it for every stored level.
    """
    _check_levels(block_m, m, n)
    packed = np.asarray(packed, dtype=np.uint8)
    heads, qb, nbytes = packed.shape
    if nbytes != ceil_div(n_keys, 8):
        raise ValueError(f"packed mask has {nbytes} bytes per row, expected {ceil_div(n_keys, 8)} for {n_keys} keys")
    group = m // block_m
    if group > 1:
        qb_out = ceil_div(qb, group)
        pad = qb_out * group - qb
        if pad:
            packed = np.concatenate([packed, np.zeros((heads, pad, nbytes), dtype=np.uint8)], axis=1)
        packed = np.bitwise_or.reduce(packed.reshape(heads, qb_out, group, nbytes), axis=2)
    if n == 1:
        tiles = np.bitwise_count(packed).sum(axis=2, dtype=np.int64)
        return tiles.astype(np.int32), tiles.astype(np.int32)
    if n % 8:
        raise ValueError(f"n must be 1 or a multiple of 8 for packed masks, got {n}")
    per_tile = n // 8
    kt = ceil_div(n_keys, n)
    pad = kt * per_tile - packed.shape[2]
    if pad:
        packed = np.concatenate([packed, np.zeros((*packed.shape[:2], pad), dtype=np.uint8)], axis=2)
    kept = packed.reshape(*packed.shape[:2], kt, per_tile).max(axis=3) > 0
    tiles = kept.sum(axis=2, dtype=np.int64)
    keys = kept.astype(np.int64) @ key_tile_widths(n_keys, n)
    return tiles.astype(np.int32), keys.astype(np.int32)


def density_from_counts(covered_keys: np.ndarray, n_queries: int, n_keys: int, m: int) -> float:
    """Kept fraction of the attention area from per-query-block covered-key counts at block size ``m``."""
    covered = np.asarray(covered_keys, dtype=np.int64)
    if covered.size == 0:
        return 0.0
    rows = query_block_rows(n_queries, m)
    area = float((covered * rows[None, :]).sum())
    return area / (covered.shape[0] * n_queries * n_keys)


def density(mask: np.ndarray, block_m: int, m: int, n: int, n_queries: int) -> float:
    """Kept fraction (0–1) of the ``n_queries × keys`` attention area at M×N tiles, averaged over heads.

    ``n_queries`` is the real sequence length; the mask's last query block may be partial.
    """
    _, covered = tile_counts(mask, block_m, m, n)
    return density_from_counts(covered, n_queries, np.asarray(mask).shape[2], m)


def csr_index(mask: np.ndarray, block_m: int, m: int | None = None, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """CSR key-index lists per (head, query block) — the layout the FG kernel consumes.

    Returns ``(offsets, indices)``: offsets int64 ``(heads·QB + 1,)``; indices int32, sorted within each row,
    holding kept key-tile numbers (key index = tile·n; for n = 1 the key indices themselves).
    """
    coarse = coarsen(mask, block_m, m or block_m, n)
    heads, qb, kt = coarse.shape
    flat = coarse.reshape(heads * qb, kt)
    counts = flat.sum(axis=1, dtype=np.int64)
    offsets = np.zeros(heads * qb + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    indices = np.nonzero(flat)[1].astype(np.int32)  # row-major: sorted within each row
    return offsets, indices


def block_csr(mask: np.ndarray, block_m: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Block lists for the block-sparse kernel: CSR of kept m×m blocks (key block numbers) per query block."""
    return csr_index(mask, block_m, m, m)


def check_counts(levels: dict[int, np.ndarray], block_m: int, n_queries: int, n_keys: int) -> str | None:
    """First inconsistency among a trace entry's stored counts, or None; O(size of the counts).

    ``levels`` maps each derivable M (``m_levels_for(block_m)``) to its int array
    ``(2, len(N_LEVELS), heads, ⌈n_queries/M⌉)`` (``[0]`` kept tiles, ``[1]`` covered keys). Checked without the
    mask: ranges; covered keys = kept tiles × N minus the missing part of the last key tile when it is kept;
    kept keys ≤ covered keys at every N; nested key tiles (16 | 64 | 128) are consistent; a coarser query block
    keeps at least the tiles of each of its finer blocks and at most their sum.
    """
    n_levels = len(N_LEVELS)
    for m, c in sorted(levels.items()):
        qb = ceil_div(n_queries, m)
        if c.ndim != 4 or c.shape[:2] != (2, n_levels) or c.shape[3] != qb:
            return f"M={m}: shape {c.shape} does not match {qb} query blocks"
        tiles, keys = c[0], c[1]  # int32: every value checked below is at most 8·N_k ≤ 2^23, no overflow
        kept = keys[0]
        for i, n in enumerate(N_LEVELS):
            kt = ceil_div(n_keys, n)
            short = kt * n - n_keys  # keys missing from the last (partial) key tile
            t, k = tiles[i], keys[i]
            if t.min(initial=0) < 0 or t.max(initial=0) > kt or k.min(initial=0) < 0 or k.max(initial=0) > n_keys:
                return f"M={m}, N={n}: kept tiles outside [0, {kt}] or covered keys outside [0, {n_keys}]"
            gap = t * n - k
            if not np.all((gap == 0) | ((gap == short) & (t > 0))):
                return f"M={m}, N={n}: covered keys do not match kept tiles × {n} for {n_keys} keys"
            if np.any(k < kept) or np.any(t > kept):
                return f"M={m}, N={n}: fewer covered keys (or more tiles) than kept keys"
        for fine, coarse in zip(range(1, n_levels - 1), range(2, n_levels), strict=True):
            ratio = N_LEVELS[coarse] // N_LEVELS[fine]
            if np.any(keys[fine] > keys[coarse]) or np.any(tiles[fine] > ratio * tiles[coarse]) \
                    or np.any(tiles[coarse] > tiles[fine]):
                return f"M={m}: counts at N={N_LEVELS[fine]} and N={N_LEVELS[coarse]} disagree"
    base = levels.get(block_m)
    if base is None:
        return f"counts at the stored M={block_m} are missing"
    for m, c in levels.items():
        group = m // block_m
        if group == 1:
            continue
        qb = c.shape[3]
        b = base
        pad = qb * group - b.shape[3]
        if pad:
            b = np.concatenate([b, np.zeros((*b.shape[:3], pad), dtype=b.dtype)], axis=3)
        b = b.reshape(*b.shape[:3], qb, group)
        if np.any(c < b.max(axis=4)) or np.any(c[0] > b[0].sum(axis=3)):
            return f"counts at M={m} disagree with those at M={block_m}"
    return None
