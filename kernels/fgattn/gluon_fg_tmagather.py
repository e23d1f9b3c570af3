"""Research (issue 12, session 16, helper W): the fg ws2 list CTA with its K/V rows gathered by TMA, not cp.async.

Not part of fgattn's dispatch or launch table.  Same inputs, index, row plan and outputs as
:func:`fgattn.gluon_fg_list.fg_attention_gluon_list` (the packaged fg h200 D128 M128 g1 entry's kernel); the two
consumer warpgroups are :func:`fgattn.gluon_fg._ws2x_consumer` unchanged (imported); only the producer differs.

Hopper's TMA (``cp.async.bulk.tensor``) writes a box into shared memory with the 128-byte swizzle, so a box of
``h`` key rows × 64 columns (128 B per row) copied to row ``r`` of a 128B-swizzled stage half lands where the
wgmma reads rows r .. r + h - 1, provided the swizzle follows the destination address (checked on the GPU by
kernels/tools/tmagather_bench.py before anything is built on it).  A stage (128 keys × D 128, bf16 / fp16) is
two [128, 64] halves of 16 KB; a kept key row is 2 boxes per tensor.

The producer reads a *piece list* built once per index on the host (:func:`plan_pieces`; the FlashInfer plan / run
split, like the row plan): per 128-key tile, pieces ``(src key, dst row, log2 h)`` with ``dst`` a multiple of
``h`` (the aligned decomposition of each run of consecutive kept keys: a run of L keys at stage row p takes at most
2·log2(L) pieces), plus pieces with ``src`` = :data:`SENT` (past N: the box is out of bounds and TMA fills it with
zeros) for the stage rows past the tile's last kept key, so every stage receives exactly 2 · 128 · D · 2 bytes (the
``full`` barrier's expect-tx count is a compile-time constant).  ``runs=False`` gives one piece per kept key (form
"row": one-row boxes).  One producer warp issues every TMA of a stage; a piece costs 4 TMA issues (K and V, two
column halves).

Encoding (int32): bits 0-17 the source key (N < :data:`SENT` = 2**18 - 1), 18-24 the stage row, 25-27 log2 h.

Helper W2 (same session): :func:`fg_attention_tgc` runs the CTA with the packaged consumer's code path restated here
(``_tgc_consumer``, knobs QCP: Q by cp.async, OLATE: a stage released after the O store) and the producer knob PAHEAD;
:func:`fg_attention_tg_auto` dispatches between it and the packaged list kernel by the piece list's pieces per tile
(:func:`tg_route`).  Measured not eligible (kernels/NOTES-tma-gather.md, "W2 outcome").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["SENT", "MAX_LG", "TgPlan", "decompose", "plan_pieces", "piece_stats", "fg_attention_tmagather",
           "compile_tg_sm90", "check_tg_knobs", "TG_REGS", "TG_MAX_PIECES_PER_TILE", "TGC_KNOBS",
           "mean_pieces_per_tile", "tg_route", "fg_attention_tgc", "fg_attention_tg_auto", "compile_tgc_sm90"]

SRC_BITS = 18
#: source key of a zero-fill piece: past every supported N, so the whole box is out of bounds (TMA zero fill)
SENT = (1 << SRC_BITS) - 1
DST_SHIFT = 18
LG_SHIFT = 25
#: largest box height is 2**MAX_LG rows (descriptors for heights 1, 2, 4, ..., 32)
MAX_LG = 5
TILE = 128
#: (consumer 1 registers, producer registers) of the TMA-producer CTA (the default partition gets 504 - both)
TG_REGS = (216, 64)

try:  # Gluon (Triton >= 3.5); the kernels are defined only where it imports (the CPU tests need none of it)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import async_copy as cp
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared,
        mbarrier,
        tma,
        warpgroup_mma,
        warpgroup_mma_wait,
    )

    from . import gluon_fg as _g

    _GLUON_ERR: str | None = _g.gluon_available()
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_tmagather: {msg}")


# ------------------------------------------------------------------------------------------------ plan (host)
def decompose(pos: int, length: int, max_lg: int = MAX_LG) -> list[tuple[int, int]]:
    """Aligned pieces of the stage rows [pos, pos + length): (row, log2 h) with row a multiple of h = 2**lg,
    h <= 2**max_lg, in increasing row order (pure Python twin of :func:`plan_pieces`'s vectorised loop)."""
    if pos < 0 or length < 0 or pos + length > TILE or not 0 <= max_lg <= 7:
        _fail(f"decompose({pos}, {length}, {max_lg}): rows must lie in [0, {TILE}) and 0 <= max_lg <= 7")
    out = []
    while length > 0:
        align = (pos & -pos).bit_length() - 1 if pos else 7
        lg = min(max_lg, align, length.bit_length() - 1)
        out.append((pos, lg))
        pos += 1 << lg
        length -= 1 << lg
    return out


@dataclass(frozen=True)
class TgPlan:
    """Piece list of an index: ``pieces`` int32 (encoded, grouped by tile), ``pstart`` int32 (tiles + 1) the first
    piece of each tile, ``tile_base`` int32 (rows) the first tile of each row (tiles numbered row by row, a row of
    c kept keys has max(ceil(c / 128), 1) tiles); ``runs``: pieces follow runs of consecutive keys (else one piece
    per kept key); ``max_lg``: the largest box height is 2**max_lg rows in either plan (the zero-fill pieces of
    the one-piece-per-key plan are runs too), so a kernel must be compiled with ``MAX_LG = max_lg``."""

    pieces: Any
    pstart: Any
    tile_base: Any
    n_tiles: int
    runs: bool
    max_lg: int


def _ctz7(x: Any) -> Any:
    """Trailing zeros of each int64 of x in 0..127 (7 for 0)."""
    import torch

    out = torch.full_like(x, 7)
    for k in range(7):
        out = torch.where((x % (1 << k) == 0) & (x % (1 << (k + 1)) != 0), torch.full_like(x, k), out)
    return out


def _floor_log2(x: Any) -> Any:
    """floor(log2(x)) of each positive int64 of x (x < 2**62)."""
    import torch

    out = torch.zeros_like(x)
    for k in range(1, 8):
        out = torch.where(x >= (1 << k), torch.full_like(x, k), out)
    return out


def plan_pieces(index: Any, *, runs: bool = True, max_lg: int = MAX_LG) -> TgPlan:
    """The piece list of ``index`` (an :class:`fgattn.FgIndex` with block_m 128, gran_n 1, N < 2**18 - 1) on its
    device (torch ops; build once per index, outside CUDA-graph capture).  See the module docstring."""
    import torch

    from .index import FgIndex

    if not isinstance(index, FgIndex):
        _fail(f"index must be an FgIndex, got {type(index).__name__}")
    if (index.block_m, index.gran_n) != (128, 1):
        _fail(f"index has block_m={index.block_m}, gran_n={index.gran_n} (the TMA gather needs 128, 1)")
    if index.n_keys >= SENT:
        _fail(f"n_keys={index.n_keys} must be < {SENT} (the piece encoding's zero-fill source)")
    if isinstance(max_lg, bool) or not isinstance(max_lg, int) or not 0 <= max_lg <= MAX_LG:
        _fail(f"max_lg={max_lg!r} must be an int in [0, {MAX_LG}]")
    dev = index.offsets.device
    off = index.offsets.long()
    cnt = off[1:] - off[:-1]
    n_rows = cnt.numel()
    n_t = torch.clamp((cnt + TILE - 1) // TILE, min=1)
    tile_base = torch.zeros(n_rows + 1, dtype=torch.long, device=dev)
    tile_base[1:] = torch.cumsum(n_t, 0)
    n_tiles = int(tile_base[-1])
    idx = index.indices.long()
    nnz = idx.numel()
    row = torch.repeat_interleave(torch.arange(n_rows, device=dev), cnt)
    pos = torch.arange(nnz, device=dev) - off[:-1][row]
    g = tile_base[:-1][row] + pos // TILE
    p = pos % TILE
    # runs: a new run at every tile start and wherever the key is not the previous key + 1
    start = torch.ones(nnz, dtype=torch.bool, device=dev)
    if runs and nnz > 1:
        start[1:] = (p[1:] == 0) | (idx[1:] != idx[:-1] + 1)
    s_at = torch.nonzero(start).flatten()
    s_end = torch.cat([s_at[1:], torch.tensor([nnz], device=dev)])
    r_g, r_p, r_src, r_len = g[s_at], p[s_at], idx[s_at], s_end - s_at
    # zero fill: stage rows [kept, 128) of each tile with kept < 128 (kept = the tile's key count; 0 for an empty row)
    t_of = torch.arange(n_tiles, device=dev) - tile_base[:-1].repeat_interleave(n_t)
    kept = torch.clamp(cnt.repeat_interleave(n_t) - t_of * TILE, 0, TILE)
    zt = torch.nonzero(kept < TILE).flatten()
    z_g, z_p, z_len = zt, kept[zt], TILE - kept[zt]
    z_src = torch.full_like(z_g, SENT)
    all_g = torch.cat([r_g, z_g])
    all_p = torch.cat([r_p, z_p])
    all_src = torch.cat([r_src, z_src])
    all_len = torch.cat([r_len, z_len])
    step_src = torch.cat([torch.ones_like(r_g), torch.zeros_like(z_g)])  # zero-fill pieces keep src = SENT
    out_key, out_code = [], []
    while all_g.numel():
        lg = torch.minimum(torch.minimum(_ctz7(all_p), _floor_log2(all_len)), torch.full_like(all_p, max_lg))
        code = all_src | (all_p << DST_SHIFT) | (lg << LG_SHIFT)
        out_key.append(all_g * TILE + all_p)
        out_code.append(code)
        h = torch.ones_like(lg) << lg
        all_p, all_src, all_len = all_p + h, all_src + h * step_src, all_len - h
        live = all_len > 0
        all_g, all_p, all_src, all_len, step_src = (all_g[live], all_p[live], all_src[live], all_len[live],
                                                    step_src[live])
    key = torch.cat(out_key)
    code = torch.cat(out_code)
    order = torch.argsort(key)
    pieces = code[order].to(torch.int32)
    per_tile = torch.bincount(key[order] // TILE, minlength=n_tiles)
    pstart = torch.zeros(n_tiles + 1, dtype=torch.long, device=dev)
    pstart[1:] = torch.cumsum(per_tile, 0)
    return TgPlan(pieces=pieces, pstart=pstart.to(torch.int32), tile_base=tile_base[:-1].to(torch.int32),
                  n_tiles=n_tiles, runs=runs, max_lg=max_lg)


def piece_stats(plan: TgPlan) -> dict[str, float]:
    """Per-tile figures of a piece list: tiles, pieces per tile (mean), kept-key pieces per tile, zero-fill pieces
    per tile, TMA issues per tile (4 per piece) and the share of pieces per box height (h1 .. h32)."""
    import torch

    code = plan.pieces.long()
    lg = (code >> LG_SHIFT) & 7
    zero = (code & SENT) == SENT
    n = max(plan.n_tiles, 1)
    out = dict(tiles=float(plan.n_tiles), pieces_per_tile=code.numel() / n,
               kept_pieces_per_tile=float((~zero).sum()) / n, zero_pieces_per_tile=float(zero.sum()) / n,
               tma_per_tile=4.0 * code.numel() / n)
    for k in range(MAX_LG + 1):
        out[f"share_h{1 << k}"] = float((lg == k).sum()) / max(code.numel(), 1)
    out["max_pieces_per_tile"] = float(torch.diff(plan.pstart.long()).max()) if plan.n_tiles else 0.0
    return out


def check_tg_knobs(regs: tuple[int, int] = TG_REGS, producer_warps: int = 1) -> dict[str, int]:
    """Constexprs of the TMA-producer CTA: ``regs`` = (consumer 1, producer) registers per thread, multiples of
    8, 24 <= producer <= consumer <= 240, consumer + producer <= 280 (as ``gluon_fg.check_ws2_knobs``);
    ``producer_warps`` 1 or 4 (one warp issues; 4 keeps the packaged CTA's warp count)."""
    ok = (isinstance(regs, tuple) and len(regs) == 2
          and all(isinstance(r, int) and not isinstance(r, bool) for r in regs))
    cr, pr = regs if ok else (0, 0)
    if not ok or cr % 8 or pr % 8 or not 24 <= pr <= cr <= 240 or cr + pr > 280:
        _fail(f"regs={regs!r} must be (consumer, producer) multiples of 8 with 24 <= producer <= consumer <= 240 and "
              "consumer + producer <= 280")
    if producer_warps not in (1, 4) or isinstance(producer_warps, bool):
        _fail(f"producer_warps={producer_warps!r} must be 1 or 4")
    return dict(CONSUMER_REGS=cr, PRODUCER_REGS=pr, PRODUCER_WARPS=producer_warps)


# ------------------------------------------------------------------------------------------------ kernels
if _GLUON_ERR is None:
    _TG_S: gl.constexpr = gl.constexpr(3)
    _TG_BN: gl.constexpr = gl.constexpr(TILE)
    _TG_HALF_D: gl.constexpr = gl.constexpr(64)
    _TG_SENT: gl.constexpr = gl.constexpr(SENT)
    #: bytes a stage receives: K and V, 128 rows × 128 columns × 2 B (every row, kept or zero-filled)
    _TG_STAGE_BYTES: gl.constexpr = gl.constexpr(2 * TILE * 128 * 2)

    @gluon.jit
    def _tg_box(kd, vd, k_smem, v_smem, bar, st, b, h, src, dst, LG: gl.constexpr, pred):
        """The 4 TMA boxes of one piece of height 2**LG: K and V rows src .. src + h - 1 (columns 0-63 and
        64-127) to stage ``st`` rows dst .. dst + h - 1 of both halves (the stage seen as [2, 128, 64] halves;
        the buffer re-viewed as [S·256 / h] boxes of [1, 1, h, 64])."""
        HB: gl.constexpr = 1 << LG
        L4: gl.constexpr = kd.layout
        NB: gl.constexpr = _TG_S * 2 * _TG_BN // HB
        kv = k_smem._reinterpret(k_smem.dtype, [NB, 1, 1, HB, _TG_HALF_D], L4)
        vv = v_smem._reinterpret(v_smem.dtype, [NB, 1, 1, HB, _TG_HALF_D], L4)
        i0 = (st * 2 * _TG_BN + dst) >> LG
        i1 = (st * 2 * _TG_BN + _TG_BN + dst) >> LG
        tma.async_copy_global_to_shared(kd, [b, h, src, 0], bar, kv.index(i0), pred=pred)
        tma.async_copy_global_to_shared(kd, [b, h, src, _TG_HALF_D], bar, kv.index(i1), pred=pred)
        tma.async_copy_global_to_shared(vd, [b, h, src, 0], bar, vv.index(i0), pred=pred)
        tma.async_copy_global_to_shared(vd, [b, h, src, _TG_HALF_D], bar, vv.index(i1), pred=pred)

    @gluon.jit
    def _tg_piece(kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, k_smem, v_smem, bar, st, b, h, code,
                  pred, MAX_LG: gl.constexpr):
        """Issue one encoded piece (module docstring) if ``pred``."""
        src = code & _TG_SENT
        dst = (code >> 18) & 127
        lg = (code >> 25) & 7
        if MAX_LG == 0:
            _tg_box(kd0, vd0, k_smem, v_smem, bar, st, b, h, src, dst, 0, pred)
        else:
            if lg == 0:
                _tg_box(kd0, vd0, k_smem, v_smem, bar, st, b, h, src, dst, 0, pred)
            elif lg == 1:
                _tg_box(kd1, vd1, k_smem, v_smem, bar, st, b, h, src, dst, 1, pred)
            elif lg == 2:
                _tg_box(kd2, vd2, k_smem, v_smem, bar, st, b, h, src, dst, 2, pred)
            elif lg == 3:
                _tg_box(kd3, vd3, k_smem, v_smem, bar, st, b, h, src, dst, 3, pred)
            elif lg == 4:
                _tg_box(kd4, vd4, k_smem, v_smem, bar, st, b, h, src, dst, 4, pred)
            else:
                _tg_box(kd5, vd5, k_smem, v_smem, bar, st, b, h, src, dst, 5, pred)

    @gluon.jit
    def _tg_producer(kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, Offsets, Order, Start, TileBase,
                     PStart, Pieces, k_smem, v_smem, full, empty, H, QB, N_ROWS, MAX_LG: gl.constexpr, Tl=None,
                     TIMELINE: gl.constexpr = False, PAHEAD: gl.constexpr = False):
        """Producer partition: for every row of this program's plan (``Order[Start[p]:Start[p + 1]]``) and every
        128-key tile, once the consumers have released the stage: expect the stage's bytes on its ``full``
        barrier (one arrival), then issue the tile's pieces (4 TMA boxes each), 4 pieces per step with the next
        4 loaded one step ahead.  The next row's range and first tile are loaded a row ahead, the next tile's piece
        range a tile ahead, a tile's first 4 pieces before the wait for its stage.  ``TIMELINE`` 1 (research): role
        2 of T's timeline buffer ``Tl`` (``fgattn.timeline``: row start, first ``empty`` wait done, first tile's
        boxes issued, row end, tiles), with ``gluon_fg``'s own slot helpers.  ``PAHEAD`` (helper W2): the next
        row's first piece index (``PStart[TileBase[row]]``) loaded a row ahead too, so a row's first pieces are one
        dependent load from what the producer already holds (off: the measured ``tg`` code)."""
        pos, end, step, row = _g._my_rows(Order, Start, N_ROWS, True)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        g0 = gl.load(TileBase + row)
        row_n = _g._next_row(Order, pos + step, end, True)
        lo_n = gl.load(Offsets + row_n).to(gl.int32)
        hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
        g0_n = gl.load(TileBase + row_n)
        if PAHEAD:
            p0_r = gl.load(PStart + g0)
            p0_n = gl.load(PStart + g0_n)
        it = 0
        if TIMELINE:
            gl.static_assert(TIMELINE == 1, "the TMA producer records timeline level 1 only")
            pos0 = pos
            hdr = _g._tl_slot(_g._TL_CAP, 2)
            gl.store(Tl + hdr, _g._tl_now(pos))
        while pos < end:
            if TIMELINE:
                jr = pos - pos0
                tb = _g._tl_slot(jr, 2)
                _g._tl_mark(Tl, tb, jr, 0)
            bh = row // QB
            b = bh // H
            h = bh % H
            n_t = gl.maximum(gl.cdiv(hi - lo, _TG_BN), 1)
            if PAHEAD:
                p0 = p0_r
            else:
                p0 = gl.load(PStart + g0)
            for t in range(0, n_t):
                p1 = gl.load(PStart + g0 + t + 1)  # the next tile's first piece (used one tile later)
                c0 = gl.load(Pieces + p0)  # every tile has >= 1 piece (kept keys or zero fill)
                c1 = gl.load(Pieces + p0 + 1, mask=p0 + 1 < p1, other=0)
                c2 = gl.load(Pieces + p0 + 2, mask=p0 + 2 < p1, other=0)
                c3 = gl.load(Pieces + p0 + 3, mask=p0 + 3 < p1, other=0)
                st = it % _TG_S
                mbarrier.wait(empty.index(st), ((it // _TG_S) & 1) ^ 1)
                if TIMELINE:  # tile 0's marks (a masked store on the other tiles)
                    _g._tl_put(Tl, tb, gl.where(t == 0, jr, _g._TL_CAP), 1, _g._tl_now(t))
                bar = full.index(st)
                mbarrier.expect(bar, _TG_STAGE_BYTES)
                j = p0
                while j < p1:
                    n0 = gl.load(Pieces + j + 4, mask=j + 4 < p1, other=0)
                    n1 = gl.load(Pieces + j + 5, mask=j + 5 < p1, other=0)
                    n2 = gl.load(Pieces + j + 6, mask=j + 6 < p1, other=0)
                    n3 = gl.load(Pieces + j + 7, mask=j + 7 < p1, other=0)
                    _tg_piece(kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, k_smem, v_smem, bar, st,
                              b, h, c0, True, MAX_LG)
                    _tg_piece(kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, k_smem, v_smem, bar, st,
                              b, h, c1, j + 1 < p1, MAX_LG)
                    _tg_piece(kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, k_smem, v_smem, bar, st,
                              b, h, c2, j + 2 < p1, MAX_LG)
                    _tg_piece(kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, k_smem, v_smem, bar, st,
                              b, h, c3, j + 3 < p1, MAX_LG)
                    c0 = n0
                    c1 = n1
                    c2 = n2
                    c3 = n3
                    j += 4
                if TIMELINE:
                    _g._tl_put(Tl, tb, gl.where(t == 0, jr, _g._TL_CAP), 2, _g._tl_now(t))
                p0 = p1
                it += 1
            if TIMELINE:
                _g._tl_mark(Tl, tb, jr, 3)
                _g._tl_put(Tl, tb, jr, 6, n_t.to(gl.int64))
            pos = pos + step
            row = row_n
            lo = lo_n
            hi = hi_n
            g0 = g0_n
            row_n = _g._next_row(Order, pos + step, end, True)  # one row ahead (row 0 past the end)
            lo_n = gl.load(Offsets + row_n).to(gl.int32)
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
            g0_n = gl.load(TileBase + row_n)
            if PAHEAD:
                p0_r = p0_n
                p0_n = gl.load(PStart + g0_n)
        if TIMELINE:
            gl.store(Tl + hdr + 1, _g._tl_now(pos))

    @gluon.jit
    def _fg_gluon_ws2_tg(q_desc, Out, Offsets, Order, Start, TileBase, PStart, Pieces, qk_scale,
                         kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5,
                         stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS,
                         CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr, PRODUCER_WARPS: gl.constexpr,
                         MAX_LG: gl.constexpr, num_warps: gl.constexpr, o_desc=None, TMA_O: gl.constexpr = False,
                         OFFS_AHEAD: gl.constexpr = False, RCP: gl.constexpr = False, Tl=None,
                         TIMELINE: gl.constexpr = False):
        """The packaged list-scheduled ws2 CTA (pipeline 1, no consumer fence, ``gluon_fg._ws2x_consumer`` ×2 with
        the row-end knobs) with :func:`_tg_producer` in place of ``gluon_fg._ws_producer``: same stages (3 × K/V
        [128, 128] NVMMA 128B-swizzled), ``full`` counted by the expect-tx arrival alone.  ``TIMELINE`` 1 / ``Tl``
        (research, default off: no parameter, no code): T's in-kernel timeline (``fgattn.timeline``), the consumers'
        slots by ``gluon_fg``'s code, the producer's by :func:`_tg_producer`."""
        gl.static_assert(num_warps == 4)
        dtype: gl.constexpr = q_desc.dtype
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_TG_BN, 128], dtype)
        q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [_TG_S, _TG_BN, 128], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [_TG_S, _TG_BN, 128], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [_TG_S, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [_TG_S, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(q_bar.index(i), count=1)
        for i in gl.static_range(_TG_S):
            mbarrier.init(full.index(i), count=1)
            mbarrier.init(empty.index(i), count=2)
        gl.warp_specialize([
            (_g._ws2x_consumer, (0, q_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                                 qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, False, 1, 0, False,
                                 True, o_desc, TMA_O, OFFS_AHEAD, RCP, False, Tl, TIMELINE)),
            (_g._ws2x_consumer, (1, q_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                                 qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, False, 1, 0, False,
                                 True, o_desc, TMA_O, OFFS_AHEAD, RCP, False, Tl, TIMELINE)),
            (_tg_producer, (kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, Offsets, Order, Start,
                            TileBase, PStart, Pieces, k_smem, v_smem, full, empty, H, QB, N_ROWS, MAX_LG, Tl,
                            TIMELINE)),
        ], [4, PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(_TG_S):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


    # ---- helper W2 (issue 12, session 16): the tg CTA's row made cheaper.  The consumer below is
    # ``gluon_fg._ws2x_consumer``'s path of the packaged entry (PIPE 1, no fence, no ping-pong, the list plan, the
    # ``tma_sel`` row end: TMA_O, OFFS_AHEAD, RCP 2; level-1 timeline marks at the same events), restated here with
    # two knobs, so that the packaged consumer (helper T's file) stays untouched:
    # * QCP: this warpgroup's Q half is loaded by 16-byte cp.async from its own 128 threads (the LSU path) with one
    #   non-incrementing mbarrier arrival per thread (the Q barrier counts 128), not by a TMA box: in the TMA-gather
    #   CTA the copy engine also carries every K / V box, and a Q box issued behind a stage or two of them waits for
    #   them (kernels/NOTES-tma-gather.md, hypothesis 1).  QCP 0 = the TMA Q load (the packaged code).
    # * OLATE: at a row's last tile the stage of the tile before it is released to the producer only after this
    #   warpgroup's O bulk store is issued, so the O store does not queue behind the next row's K / V boxes in the
    #   copy engine (the next row's tile-0 ``store_wait`` then waits for O alone).
    _TGC_HALF_M: gl.constexpr = gl.constexpr(64)
    _TGC_D: gl.constexpr = gl.constexpr(128)

    @gluon.jit
    def _tgc_q_load(Q, q_s, bar, row, half, QB, H, N_Q, stride_qb, stride_qh, stride_qn, pred):
        """Q rows (row % QB)·128 + half·64 .. + 63 of (b, h) = divmod(row // QB, H) into ``q_s`` ([64, 128] NVMMA)
        by cp.async (rows past N_Q zero-filled), completion counted on ``bar`` (one arrival per thread), if
        ``pred`` (after this warpgroup's last QK of its current row has read ``q_s``)."""
        QL: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [4, 1], [1, 0])
        gl.thread_barrier()
        if pred:
            offs_m = gl.arange(0, _TGC_HALF_M, gl.SliceLayout(1, QL))
            offs_d = gl.arange(0, _TGC_D, gl.SliceLayout(0, QL))
            bh = row // QB
            qrow = (row % QB) * (2 * _TGC_HALF_M) + half * _TGC_HALF_M + offs_m
            base = Q + (bh // H) * stride_qb + (bh % H) * stride_qh
            ptr = base + qrow[:, None] * stride_qn + offs_d[None, :]
            cp.async_copy_global_to_shared(q_s, ptr, mask=(qrow < N_Q)[:, None])
            cp.mbarrier_arrive(bar, increment_count=False)

    @gluon.jit
    def _tgc_q_issue(Q, q_desc, my_q, q_s, bar, row, half, QB, H, N_Q, stride_qb, stride_qh, stride_qn, pred,
                     QCP: gl.constexpr):
        """This warpgroup's Q half of ``row``: cp.async (``QCP``) or the packaged TMA box."""
        if QCP:
            _tgc_q_load(Q, q_s, bar, row, half, QB, H, N_Q, stride_qb, stride_qh, stride_qn, pred)
        else:
            _g._q_next(q_desc, bar, my_q, row, half, QB, H, pred)

    @gluon.jit
    def _tgc_store_tl(o_desc, out, k_stage, b, h, qb2, half, dtype: gl.constexpr):
        """``gluon_fg._store_tma`` with the cycle counter read after the meeting, after O is staged and after the
        store is issued (the timeline's slots 13-15; returned and stored by the caller after the store)."""
        _g._pp_sync(_g._O_BAR)
        t_met = _g._tl_now(qb2)
        o_all = k_stage._reinterpret(dtype, [2] + o_desc.block_type.shape, o_desc.layout)
        o_s = o_all.index(half)
        o_s.reshape([_TGC_HALF_M, _TGC_D]).store(out.to(dtype))
        fence_async_shared()
        gl.thread_barrier()
        t_staged = _g._tl_now(qb2)
        tma.async_copy_shared_to_global(o_desc, [b, h, qb2 * _TGC_HALF_M, 0], o_s)
        return t_met, t_staged, _g._tl_now(qb2)

    @gluon.jit
    def _tgc_consumer(half, Q, q_desc, o_desc, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                      qk_scale, stride_qb, stride_qh, stride_qn, H, N_Q, QB, N_ROWS, QCP: gl.constexpr,
                      OLATE: gl.constexpr, Tl=None, TIMELINE: gl.constexpr = False):
        """Consumer warpgroup ``half`` (query rows half·64 .. + 63 of each row) of the TMA-gather CTA: the packaged
        entry's consumer path (see the comment above) with the QCP / OLATE knobs; TIMELINE 1: T's level-1 slots."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, _TG_BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        dtype: gl.constexpr = k_smem.dtype
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        if QCP:
            q_s = my_q
        else:
            q_s = my_q.reshape([_TGC_HALF_M, _TGC_D])
        pos, end, step, row = _g._my_rows(Order, Start, N_ROWS, True)
        if TIMELINE:
            gl.static_assert(TIMELINE == 1, "the W2 consumer records timeline level 1 only")
            pos0 = pos
            hdr = _g._tl_slot(_g._TL_CAP, half)
            gl.store(Tl + hdr, _g._tl_now(pos))
            if half == 0:
                gl.store(Tl + hdr + 2, _g._tl_gtime(pos))
                gl.store(Tl + hdr + 4, (end - pos).to(gl.int64))
        _tgc_q_issue(Q, q_desc, my_q, q_s, my_bar, row, half, QB, H, N_Q, stride_qb, stride_qh, stride_qn, pos < end,
                     QCP)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        it = 0
        phase = 0
        while pos < end:
            if TIMELINE:
                j = pos - pos0
                tb = _g._tl_slot(j, half)
                _g._tl_mark(Tl, tb, j, 0)
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, _TG_BN), 1)
            pos_n = pos + step
            row_n = _g._next_row(Order, pos_n, end, True)
            has_next = pos_n < end
            lo_n = gl.load(Offsets + row_n).to(gl.int32)
            hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
            bh = row // QB
            m_i = gl.full([_TGC_HALF_M], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([_TGC_HALF_M], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([_TGC_HALF_M, _TGC_D], gl.float32, S_LAYOUT)
            zero_s = gl.zeros([_TGC_HALF_M, _TG_BN], gl.float32, S_LAYOUT)
            mbarrier.wait(my_bar, phase)
            if QCP:  # the cp.async (generic proxy) writes of Q before the wgmma (async proxy) reads them
                fence_async_shared()
            if TIMELINE:
                _g._tl_mark(Tl, tb, j, 1)
            # tile 0: QK alone, its softmax masked (columns >= min(cnt, BN) are not kept keys)
            st = it % _TG_S
            mbarrier.wait(full.index(st), (it // _TG_S) & 1)
            if TIMELINE:
                _g._tl_mark(Tl, tb, j, 2)
            s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            if TIMELINE:
                _g._tl_mark(Tl, tb, j, 3)
            if it > 0:  # the previous row's O store has had this row's start to read its stage
                _g._release_after_store(empty, (it + _TG_S - 1) % _TG_S)
            if TIMELINE:
                _g._tl_mark(Tl, tb, j, 4)
            s = warpgroup_mma_wait(0, deps=(s, ))
            if TIMELINE:
                _g._tl_mark(Tl, tb, j, 5)
                _g._tl_put(Tl, tb, j, 17, (j * 0).to(gl.int64))
            _tgc_q_issue(Q, q_desc, my_q, q_s, my_bar, row_n, half, QB, H, N_Q, stride_qb, stride_qh, stride_qn,
                         has_next & (n_t == 1), QCP)
            p, alpha, m_i, l_i = _g._softmax_p(s, m_i, l_i, qk_scale, gl.minimum(cnt, _TG_BN), True, S_LAYOUT,
                                               P_LAYOUT, _TG_BN, 0, dtype)
            pc = _g._carry_p(p, 1, P_LAYOUT, dtype)
            prev = st
            it += 1
            for _t in range(1, n_t - 1):  # full tiles: QK(t) and PV(t-1) in flight together
                st = it % _TG_S
                mbarrier.wait(full.index(st), (it // _TG_S) & 1)
                p_op = _g._use_p(pc, 1, P_LAYOUT, dtype)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]  # the previous tile's alpha, while this QK runs
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                s = warpgroup_mma_wait(1, deps=(s, ))
                p, alpha, m_i, l_i = _g._softmax_p(s, m_i, l_i, qk_scale, _TG_BN, False, S_LAYOUT, P_LAYOUT,
                                                   _TG_BN, 0, dtype)
                acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                pc = _g._carry_p(p, 1, P_LAYOUT, dtype)
                gl.thread_barrier()  # this warpgroup is done with the previous tile's stage
                mbarrier.arrive(empty.index(prev), count=1)
                prev = st
                it += 1
            if TIMELINE:
                _g._tl_mark(Tl, tb, j, 7)
                _g._tl_put(Tl, tb, j, 18, n_t.to(gl.int64))
                t8 = (j * 0 - 1).to(gl.int64)
                t9 = t8
                t10 = t8
                t11 = t8
            if n_t > 1:  # the row's last (masked) tile
                st = it % _TG_S
                if TIMELINE:
                    t8 = _g._tl_now(j)
                mbarrier.wait(full.index(st), (it // _TG_S) & 1)
                if TIMELINE:
                    t9 = _g._tl_now(j)
                p_op = _g._use_p(pc, 1, P_LAYOUT, dtype)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]
                acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
                s = warpgroup_mma_wait(1, deps=(s, ))
                if TIMELINE:
                    t10 = _g._tl_now(j)
                _tgc_q_issue(Q, q_desc, my_q, q_s, my_bar, row_n, half, QB, H, N_Q, stride_qb, stride_qh, stride_qn,
                             has_next, QCP)
                p, alpha, m_i, l_i = _g._softmax_p(s, m_i, l_i, qk_scale, cnt - (n_t - 1) * _TG_BN, True, S_LAYOUT,
                                                   P_LAYOUT, _TG_BN, 0, dtype)
                acc, p_op, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, p_op, p, alpha, m_i, l_i))
                if TIMELINE:
                    t11 = _g._tl_now(j)
                pc = _g._carry_p(p, 1, P_LAYOUT, dtype)
                gl.thread_barrier()
                if not OLATE:  # (OLATE: released after the O store below)
                    mbarrier.arrive(empty.index(prev), count=1)
                prev = st
                it += 1
            # the last tile's PV
            p_op = _g._use_p(pc, 1, P_LAYOUT, dtype)
            acc = acc * alpha[:, None]
            acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
            acc, p_op = warpgroup_mma_wait(0, deps=(acc, p_op))
            if TIMELINE:
                t12 = _g._tl_now(j)
                t13, t14, t15 = _tgc_store_tl(o_desc, _g._normalize(acc, l_i, cnt, 2), k_smem.index(prev), bh // H,
                                              bh % H, (row % QB) * 2 + half, half, dtype)
                _g._tl_put(Tl, tb, j, 8, t8)
                _g._tl_put(Tl, tb, j, 9, t9)
                _g._tl_put(Tl, tb, j, 10, t10)
                _g._tl_put(Tl, tb, j, 11, t11)
                _g._tl_put(Tl, tb, j, 12, t12)
                _g._tl_put(Tl, tb, j, 13, t13)
                _g._tl_put(Tl, tb, j, 14, t14)
                _g._tl_put(Tl, tb, j, 15, t15)
            else:
                _g._store_tma(o_desc, _g._normalize(acc, l_i, cnt, 2), k_smem.index(prev), bh // H, bh % H,
                              (row % QB) * 2 + half, half, dtype)
            if OLATE:  # the last tile's predecessor's stage, now that the O store is in the copy engine's queue
                if n_t > 1:
                    mbarrier.arrive(empty.index((it + _TG_S - 2) % _TG_S), count=1)
            lo = lo_n
            hi = hi_n
            row = row_n
            pos = pos_n
            phase ^= 1
            if TIMELINE:
                _g._tl_mark(Tl, tb, j, 16)
        if it > 0:  # the last row's O store must have read its stage before the CTA's shared memory goes away
            _g._release_after_store(empty, (it + _TG_S - 1) % _TG_S)
        if TIMELINE:
            gl.store(Tl + hdr + 1, _g._tl_now(pos))
            if half == 0:
                gl.store(Tl + hdr + 3, _g._tl_gtime(pos))

    @gluon.jit
    def _fg_gluon_ws2_tgc(Q, q_desc, o_desc, Offsets, Order, Start, TileBase, PStart, Pieces, qk_scale,
                          kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5,
                          stride_qb, stride_qh, stride_qn, H, N_Q, QB, N_ROWS,
                          CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr, MAX_LG: gl.constexpr,
                          QCP: gl.constexpr, OLATE: gl.constexpr, PAHEAD: gl.constexpr, num_warps: gl.constexpr,
                          Tl=None, TIMELINE: gl.constexpr = False):
        """:func:`_fg_gluon_ws2_tg` (tma_sel row end) with :func:`_tgc_consumer` ×2 (knobs QCP, OLATE) and
        :func:`_tg_producer` (knob PAHEAD, 1 warp).  QCP: Q stages [2, 64, 128] NVMMA, its barriers count 128."""
        gl.static_assert(num_warps == 4)
        dtype: gl.constexpr = q_desc.dtype
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_TG_BN, 128], dtype)
        if QCP:
            Q_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_TGC_HALF_M, _TGC_D], dtype)
            q_smem = gl.allocate_shared_memory(dtype, [2, _TGC_HALF_M, _TGC_D], Q_SMEM)
        else:
            q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [_TG_S, _TG_BN, 128], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [_TG_S, _TG_BN, 128], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [_TG_S, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [_TG_S, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(q_bar.index(i), count=128 if QCP else 1)
        for i in gl.static_range(_TG_S):
            mbarrier.init(full.index(i), count=1)
            mbarrier.init(empty.index(i), count=2)
        gl.warp_specialize([
            (_tgc_consumer, (0, Q, q_desc, o_desc, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                             qk_scale, stride_qb, stride_qh, stride_qn, H, N_Q, QB, N_ROWS, QCP, OLATE, Tl, TIMELINE)),
            (_tgc_consumer, (1, Q, q_desc, o_desc, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                             qk_scale, stride_qb, stride_qh, stride_qn, H, N_Q, QB, N_ROWS, QCP, OLATE, Tl, TIMELINE)),
            (_tg_producer, (kd0, kd1, kd2, kd3, kd4, kd5, vd0, vd1, vd2, vd3, vd4, vd5, Offsets, Order, Start,
                            TileBase, PStart, Pieces, k_smem, v_smem, full, empty, H, QB, N_ROWS, MAX_LG, Tl,
                            TIMELINE, PAHEAD)),
        ], [4, 1], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(_TG_S):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


# ------------------------------------------------------------------------------------------------ host side
def kv_descs(t: Any, layout: str, batch: int, heads: int, n: int) -> list[Any]:
    """TMA descriptors of K or V (``layout`` bhnd / bnhd) seen as (B, H, N, 128) with boxes [1, 1, 2**lg, 64],
    lg = 0 .. MAX_LG, 128-byte swizzle (out-of-bounds boxes read zeros)."""
    import torch
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    dt = gl.bfloat16 if t.dtype == torch.bfloat16 else gl.float16
    st = _g._strides(t, layout)
    out = []
    for lg in range(MAX_LG + 1):
        box = [1, 1, 1 << lg, 64]
        out.append(TensorDescriptor(t, [batch, heads, n, 128], [*st, 1], box, _box_layout()))
    _ = dt
    return out


def _box_layout() -> Any:
    """The layout the kernel *sees* for the K / V boxes: unswizzled (Triton 3.6 rejects a 128B-swizzled NVMMA
    layout on fewer than 8 rows, "Illegal shared layout"); :func:`swizzle_boxes` then encodes the tensor maps with
    the 128-byte swizzle, which the copy engine applies by the destination address.  The device code is the same
    either way (the swizzle lives in the tensor map, not in ``cp.async.bulk.tensor``)."""
    return gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=16, rank=4)


#: CUtensorMapSwizzle value of the 128-byte swizzle (Triton's tensordesc metadata field ``swizzle``)
SWIZZLE_128B = 3


def swizzle_boxes(compiled: Any) -> int:
    """Make a compiled kernel's launcher encode its [.., 64]-column unswizzled K / V box descriptors with the
    128-byte swizzle (in place, idempotent): -> how many entries now carry it.  The Q / O descriptors ([.., 128]
    columns) already do."""
    n = 0
    for m in compiled.metadata.tensordesc_meta or []:
        if m["block_size"][-1] == 64 and m["swizzle"] in (0, SWIZZLE_128B):
            m["swizzle"] = SWIZZLE_128B
            n += 1
    return n


def launch_swizzled(fn: Any, grid: tuple[int, ...], *args: Any, **kwargs: Any) -> Any:
    """``fn[grid](*args, **kwargs)`` after :func:`swizzle_boxes` on the kernel it compiles to (``warmup`` returns
    the cached CompiledKernel; its tensordesc metadata is what the launcher reads on every call)."""
    ck = fn.warmup(*args, grid=grid, **kwargs)
    if hasattr(ck, "result"):  # an asynchronous compile's future
        ck = ck.result()
    if swizzle_boxes(ck) == 0:
        _fail("the kernel has no [.., 64]-column box descriptor to swizzle")
    fn[grid](*args, **kwargs)
    return ck


def fg_attention_tmagather(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                           sm_scale: float | None = None, out: Any = None, plan: Any = None, pieces: TgPlan | None = None,
                           programs: int | None = None, epilogue: str = "tma_sel", regs: tuple[int, int] = TG_REGS,
                           producer_warps: int = 1, timeline: Any = None) -> Any:
    """:func:`fgattn.gluon_fg_list.fg_attention_gluon_list` with the TMA-gather producer (research).  ``pieces``:
    :func:`plan_pieces` of ``index`` (built here if None: host work, not under CUDA-graph capture); ``plan`` the
    row plan as there; ``regs`` / ``producer_warps``: :func:`check_tg_knobs`; ``timeline``: a buffer of
    ``fgattn.timeline.new_buffer(plan.programs)`` to record T's level-1 timeline into (research; row end
    ``tma_sel`` and a 16-byte aligned ``out`` required)."""
    from . import gluon_fg_list as gll

    knobs = check_tg_knobs(regs, producer_warps)
    if epilogue not in _g.EPILOGUES:
        _fail(f"epilogue={epilogue!r} must be one of {tuple(_g.EPILOGUES)}")
    p, plan, out, q_desc, scale = gll.prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                        plan=plan, programs=programs, fail=_fail)
    if pieces is None:
        pieces = plan_pieces(index)
    if not isinstance(pieces, TgPlan) or pieces.tile_base.numel() != p.n_rows:
        _fail("pieces must be plan_pieces(index) of this index")
    const = dict(_g.EPILOGUES[epilogue])
    o_desc = None
    if const.get("TMA_O"):
        if _g.o_desc_ok(out, layout) is not None:
            const = {}
        else:
            o_desc = _g.o_desc_for(out, layout, q_desc, p, "tma")
    more: dict[str, Any] = {}
    if timeline is not None:
        import torch

        from .timeline import buffer_shape

        if epilogue != "tma_sel" or not const.get("TMA_O"):
            _fail("timeline needs the tma_sel row end with a 16-byte aligned out")
        if (not isinstance(timeline, torch.Tensor) or timeline.dtype != torch.int64 or not timeline.is_contiguous()
                or tuple(timeline.shape) != buffer_shape(plan.programs) or timeline.device != q.device):
            _fail(f"timeline must be a contiguous int64 tensor of shape {buffer_shape(plan.programs)} on {q.device}")
        more = dict(Tl=timeline, TIMELINE=1)
    kds = kv_descs(k, layout, p.batch, p.heads, p.n_kv)
    vds = kv_descs(v, layout, p.batch, p.heads, p.n_kv)
    launch_swizzled(
        _fg_gluon_ws2_tg, (plan.programs,), q_desc, out, index.offsets, plan.rows, plan.start, pieces.tile_base, pieces.pstart, pieces.pieces,
        scale * 1.4426950408889634, *kds, *vds, *_g._strides(out, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows,
        MAX_LG=pieces.max_lg, num_warps=4, o_desc=o_desc, **knobs, **const, **more)
    return out


def _compile_sm90(fn: Any, const: dict[str, Any], dtype: str) -> Any:
    """Offline sm_90 compile of a TMA-gather CTA ``fn`` (``tg`` or ``tgc``) with ``const`` constexprs: Q / O
    descriptors 128B-swizzled, the K / V box descriptors unswizzled (``swizzle_boxes`` sets the swizzle at launch),
    the ``Out`` / ``Q`` pointer, index and timeline arguments 16-B aligned."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    lay4 = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
            "fp4_padded=False, cga_layout=[])")
    lay0 = lay4.replace("swizzle_byte_width=128", "swizzle_byte_width=0")
    names = list(fn.arg_names)
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a in ("q_desc", "o_desc"):
            sig[a] = f"tensordesc<{dtype}[1, 1, 64, 128],{lay4}>"
        elif a[:2] in ("kd", "vd"):
            sig[a] = f"tensordesc<{dtype}[1, 1, {1 << int(a[2])}, 64],{lay0}>"
        elif a in ("Out", "Q"):
            sig[a], attrs[(i,)] = f"*{dtype}", [["tt.divisibility", 16]]
        elif a in ("Offsets", "Tl"):
            sig[a], attrs[(i,)] = "*i64", [["tt.divisibility", 16]]
        elif a in ("Order", "Start", "TileBase", "PStart", "Pieces"):
            sig[a], attrs[(i,)] = "*i32", [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = GluonASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})


def compile_tg_sm90(dtype: str = "bf16", epilogue: str = "tma_sel", max_lg: int = MAX_LG,
                    regs: tuple[int, int] = TG_REGS, producer_warps: int = 1, timeline: int = 0) -> Any:
    """Compile :func:`_fg_gluon_ws2_tg` for sm_90 without a GPU (Triton 3.6 with Gluon on the path);
    ``timeline`` 1: the instrumented form (``Tl`` an int64 pointer)."""
    fn = _fg_gluon_ws2_tg
    const: dict[str, Any] = dict(num_warps=4, MAX_LG=max_lg, **check_tg_knobs(regs, producer_warps),
                                 **_g.EPILOGUES[epilogue])
    const = {**{p.name: p.default for p in fn.params if p.is_constexpr and p.has_default}, **const}
    if not const.get("TMA_O"):
        const["o_desc"] = None
    if timeline:
        const["TIMELINE"] = timeline
    else:
        const["Tl"] = None
    return _compile_sm90(fn, const, dtype)


# ------------------------------------------------------------------------------------------------ W2: tgc + dispatch
#: the dispatch rule (helper W2, pre-registered in kernels/NOTES-tma-gather.md): the TMA-gather CTA runs an index
#: only if its piece list has at most this many pieces per 128-key tile on average (4 TMA boxes each, ≈ 67 cycles
#: of copy-engine issue per box measured for small boxes: 8 pieces ≈ 2,100 cycles ≈ 1.1 µs per tile against the
#: consumer's ≈ 1.8 µs); window / run-structured masks have ≈ 4-5, random masks ≈ 90-120 (kernels/logs/
#: tmagather-stats-s16.jsonl): those run the packaged list kernel
TG_MAX_PIECES_PER_TILE = 8.0
#: the W2 candidates: (QCP, OLATE, PAHEAD) of :func:`_fg_gluon_ws2_tgc`
TGC_KNOBS = {"tgq": dict(qcp=True, olate=False, pahead=True), "tgqo": dict(qcp=True, olate=True, pahead=True)}


def mean_pieces_per_tile(pieces: TgPlan) -> float:
    """Pieces per 128-key tile of a piece list (kept-key runs and zero fill; no device sync)."""
    return pieces.pieces.numel() / max(pieces.n_tiles, 1)


def tg_route(index: Any, pieces: TgPlan | None, out: Any = None, layout: str = "bhnd",
             max_pieces_per_tile: float = TG_MAX_PIECES_PER_TILE) -> tuple[str, str]:
    """('tg' | 'list', why) for :func:`fg_attention_tg_auto`: 'tg' iff the index has block_m 128, gran_n 1 and
    N < :data:`SENT`, ``out`` (if given) can take the O bulk store, and ``pieces`` (:func:`plan_pieces` of it) has
    <= ``max_pieces_per_tile`` pieces per tile on average; else the packaged list kernel."""
    if (index.block_m, index.gran_n) != (128, 1) or index.n_keys >= SENT:
        return "list", f"block_m {index.block_m} gran_n {index.gran_n} N {index.n_keys}"
    from .gluon_fg import o_desc_ok

    if out is not None and o_desc_ok(out, layout) is not None:
        return "list", "out cannot take the O bulk store"
    if pieces is None:
        return "list", "no piece list"
    m = mean_pieces_per_tile(pieces)
    if m > max_pieces_per_tile:
        return "list", f"{m:.2f} pieces per tile > {max_pieces_per_tile}"
    return "tg", f"{m:.2f} pieces per tile <= {max_pieces_per_tile}"


def fg_attention_tgc(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd", sm_scale: float | None = None,
                     out: Any = None, plan: Any = None, pieces: TgPlan | None = None, programs: int | None = None,
                     qcp: bool = True, olate: bool = False, pahead: bool = True, regs: tuple[int, int] = TG_REGS,
                     timeline: Any = None) -> Any:
    """The TMA-gather CTA with the W2 consumer (:func:`_fg_gluon_ws2_tgc`; research): ``qcp`` Q by cp.async,
    ``olate`` the last tile's predecessor stage released after the O store is issued, ``pahead`` the producer's
    next-row first piece a row ahead.  Row end ``tma_sel`` only (``out`` 16-byte aligned); other arguments as
    :func:`fg_attention_tmagather`."""
    import torch

    from . import gluon_fg_list as gll

    for name, val in (("qcp", qcp), ("olate", olate), ("pahead", pahead)):
        if not isinstance(val, bool):
            _fail(f"{name}={val!r} must be a bool")
    knobs = check_tg_knobs(regs, 1)
    p, plan, out, q_desc, scale = gll.prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                        plan=plan, programs=programs, fail=_fail)
    if _g.o_desc_ok(out, layout) is not None:
        _fail("out must take the O bulk store (16-byte aligned strides and address)")
    if pieces is None:
        pieces = plan_pieces(index)
    if not isinstance(pieces, TgPlan) or pieces.tile_base.numel() != p.n_rows:
        _fail("pieces must be plan_pieces(index) of this index")
    more: dict[str, Any] = {}
    if timeline is not None:
        from .timeline import buffer_shape

        if (not isinstance(timeline, torch.Tensor) or timeline.dtype != torch.int64 or not timeline.is_contiguous()
                or tuple(timeline.shape) != buffer_shape(plan.programs) or timeline.device != q.device):
            _fail(f"timeline must be a contiguous int64 tensor of shape {buffer_shape(plan.programs)} on {q.device}")
        more = dict(Tl=timeline, TIMELINE=1)
    o_desc = _g.o_desc_for(out, layout, q_desc, p, "tma")
    kds = kv_descs(k, layout, p.batch, p.heads, p.n_kv)
    vds = kv_descs(v, layout, p.batch, p.heads, p.n_kv)
    launch_swizzled(
        _fg_gluon_ws2_tgc, (plan.programs,), q, q_desc, o_desc, index.offsets, plan.rows, plan.start,
        pieces.tile_base, pieces.pstart, pieces.pieces, scale * 1.4426950408889634, *kds, *vds,
        *_g._strides(q, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows, CONSUMER_REGS=knobs["CONSUMER_REGS"],
        PRODUCER_REGS=knobs["PRODUCER_REGS"], MAX_LG=pieces.max_lg, QCP=qcp, OLATE=olate, PAHEAD=pahead,
        num_warps=4, **more)
    return out


def fg_attention_tg_auto(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd", sm_scale: float | None = None,
                         out: Any = None, plan: Any = None, pieces: TgPlan | None = None, programs: int | None = None,
                         variant: str = "tgq", max_pieces_per_tile: float = TG_MAX_PIECES_PER_TILE,
                         routes: list[str] | None = None) -> Any:
    """The dispatch (research): :func:`fg_attention_tgc` with ``TGC_KNOBS[variant]`` where :func:`tg_route` says
    'tg', else the packaged list kernel (``fgattn.gluon_fg_list.fg_attention_gluon_list``, ``epilogue="tma_sel"``).
    ``pieces``: built here if None and the index qualifies (host work, not under CUDA-graph capture);
    ``routes``: a list the route taken is appended to."""
    from .gluon_fg_list import fg_attention_gluon_list

    if variant not in TGC_KNOBS:
        _fail(f"variant={variant!r} must be one of {tuple(TGC_KNOBS)}")
    if pieces is None and (index.block_m, index.gran_n) == (128, 1) and index.n_keys < SENT:
        pieces = plan_pieces(index)
    route, _why = tg_route(index, pieces, out, layout, max_pieces_per_tile)
    if routes is not None:
        routes.append(route)
    if route == "tg":
        return fg_attention_tgc(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out, plan=plan, pieces=pieces,
                                programs=programs, **TGC_KNOBS[variant])
    return fg_attention_gluon_list(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out, plan=plan,
                                   programs=programs, epilogue="tma_sel")


def compile_tgc_sm90(dtype: str = "bf16", qcp: bool = True, olate: bool = False, pahead: bool = True,
                     timeline: int = 0, max_lg: int = MAX_LG) -> Any:
    """Compile :func:`_fg_gluon_ws2_tgc` for sm_90 without a GPU (Triton 3.6 with Gluon on the path)."""
    fn = _fg_gluon_ws2_tgc
    kn = check_tg_knobs(TG_REGS, 1)
    const: dict[str, Any] = dict(num_warps=4, MAX_LG=max_lg, CONSUMER_REGS=kn["CONSUMER_REGS"],
                                 PRODUCER_REGS=kn["PRODUCER_REGS"], QCP=qcp, OLATE=olate, PAHEAD=pahead)
    if timeline:
        const["TIMELINE"] = timeline
    else:
        const["Tl"] = None
    const = {**{p.name: p.default for p in fn.params if p.is_constexpr and p.has_default and p.name not in const},
             **const}
    return _compile_sm90(fn, const, dtype)


_ = math
