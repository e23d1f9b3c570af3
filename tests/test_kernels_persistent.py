"""CPU tests of the persistent FG kernel (``extra={"persistent": True}``) under the Triton interpreter
(fp16/fp32; tiny shapes).  Fresh random inputs every run; the seed is in every failure message."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported

import dataclasses  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # empty rows: -inf - -inf
import torch  # noqa: E402

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "kernels")]

import fgattn  # noqa: E402
import fgattn.attention as attention  # noqa: E402
from fgattn import build_index, fg_attention, reference_attention  # noqa: E402
from fgattn.schedule import limit_sms, persistent_programs, program_rows, row_order, sm_limit  # noqa: E402

TOL = 1e-2


def _seed() -> int:
    s = random.randrange(2**31)
    random.seed(s)
    torch.manual_seed(s)
    return s


def _err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))


def _cfg(q: torch.Tensor, m: int, gran: int, bn: int, **extra) -> fgattn.LaunchConfig:
    base = attention.resolve_config("fg", q, m, gran)
    pers = {} if extra.get("one_row") else dict(persistent=True)
    return dataclasses.replace(base, block_n=bn, extra=dict(lpt=True, **pers, **extra))


class _GridSpy:
    """Stands in for the persistent jit function: records each launch grid, then launches."""

    def __init__(self, fn):
        self.fn, self.grids = fn, []

    def __getitem__(self, grid):
        self.grids.append(grid)
        return self.fn[grid]


FORMS = {"flat": dict(flatten=True), "nested": dict(flatten=False), "queue": dict(flatten=False, queue=True)}
#: forms checked only in the one M=128 multi-tile test (each interpreter run costs seconds)
EXTRA_FORMS = {"queue_early": dict(flatten=False, queue=True, idx_early=True),
               "nested_guard": dict(flatten=False, idx_early=True, guard_next=True),
               "nested_fold": dict(flatten=False, idx_early=True, tail_fold=True)}
#: one program per row (launch option ``one_row``, not persistent), with and without idx_early; with the next-row
#: loads guarded (``guard_next``) and O by TMA asked for (``tma_o``: the CPU falls back to the pointer store)
ONE_ROW = {"one_row": dict(one_row=True, idx_early=True), "one_row_late": dict(one_row=True),
           "one_row_guard": dict(one_row=True, idx_early=True, guard_next=True, tma_o=True),
           "one_row_fold": dict(one_row=True, idx_early=True, guard_next=True, tma_o=True, tail_fold=True)}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("gran", [1, 16, 64])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_persistent_matches_reference_and_plain_kernel(gran: int, dtype: torch.dtype, form: str) -> None:
    """Several rows per program (limit_sms 2 or 3: 2-4 rows each), empty and full rows, odd N, both layouts, lse;
    the flat loop, the nested loop with static rows and with rows from the work queue."""
    seed = _seed()
    m, d, b, h = 64, 64, 1, 2
    layout = ("bhnd", "bnhd")[random.getrandbits(1)]
    n = random.randrange(129, 200) | 1
    shape = (b, h, n, d) if layout == "bhnd" else (b, n, h, d)
    q, k, v = (torch.randn(shape, dtype=dtype) for _ in range(3))
    qb, nt = -(-n // m), -(-n // gran)
    tiles = torch.rand(b, h, qb, nt) < 0.5
    tiles[0, 0, 0] = False  # an empty row
    tiles[0, 1, -1] = True  # a full row (several tiles, the last partial)
    mask = tiles.repeat_interleave(gran, dim=-1)[..., :n]
    index = build_index(mask, block_m=m, gran_n=gran, order=bool(random.getrandbits(1)), check=True)
    sms = random.choice([2, 3])
    cfg = _cfg(q, m, gran, 32 if gran < 64 else 64, **FORMS[form])
    with limit_sms(sms):
        for _ in range(2 if form == "queue" else 1):  # the queue's counter starts at zero in every call
            out, lse = fg_attention(q, k, v, index, block_m=m, gran_n=gran, layout=layout, config=cfg,
                                    out=torch.full_like(q, float("nan")), return_lse=True)
    ref, ref_lse = reference_attention(q, k, v, index, layout=layout, return_lse=True)
    what = f"persistent {form} gran={gran} {dtype} {layout} N={n} limit_sms={sms} seed {seed}"
    assert not out.isnan().any(), f"{what}: NaN (unwritten or 0/0)"
    assert _err(out, ref) <= TOL, f"{what}: error {_err(out, ref):.2e}"
    empty = out[0, 0, :m] if layout == "bhnd" else out[0, :m, 0]
    assert bool((empty == 0).all()) and bool(torch.isneginf(lse[0, 0, :m]).all()), f"{what}: empty row"
    kept = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), kept), f"{what}: lse -inf pattern"
    assert float((lse.double()[kept] - ref_lse[kept]).abs().max()) <= 1e-3 * (1 + float(ref_lse[kept].abs().max()))
    plain = fg_attention(q, k, v, index, block_m=m, gran_n=gran, layout=layout,
                         config=dataclasses.replace(cfg, extra=dict(lpt=True, idx_ahead=1)))
    assert _err(out, plain.double()) <= 2e-3, f"{what}: persistent and plain kernels differ"


def test_persistent_rows_of_zero_one_and_many_tiles_head_dim_128() -> None:
    """M=128, D=128: rows with 0 kept keys, 1 key (one masked tile), one tile exactly, many tiles; one program
    walks them all (limit_sms(1)) and every program runs at most one row (default SM count)."""
    seed = _seed()
    m, d, n = 128, 128, 300
    q, k, v = (torch.randn(1, 2, n, d, dtype=torch.float16) for _ in range(3))
    mask = torch.zeros(1, 2, 3, n, dtype=torch.bool)
    mask[0, 0, 1, 7] = True  # one key
    mask[0, 0, 2, 32:64] = True  # exactly one full tile of 32
    mask[0, 1, 0] = True  # all keys: 10 tiles, the last partial
    mask[0, 1, 2, ::5] = True  # 60 keys, 2 tiles
    index = build_index(mask, block_m=m, order=True, check=True)
    ref = reference_attention(q, k, v, index)
    spy = _GridSpy(attention._attn_fwd_persistent)
    attention._attn_fwd_persistent, orig = spy, attention._attn_fwd_persistent
    try:
        for sms, form in ((1, "flat"), (None, "flat"), (1, "nested"), (1, "queue"), (None, "queue"),
                          (1, "queue_early"), (1, "nested_guard"), (2, "nested_guard"), (1, "one_row"),
                          (None, "one_row_late"), (1, "one_row_guard"), (1, "nested_fold"), (2, "nested_fold"),
                          (None, "one_row_fold")):
            cfg = _cfg(q, m, 1, 32, **(FORMS | EXTRA_FORMS | ONE_ROW)[form])
            if sms is None:
                out = fg_attention(q, k, v, index, block_m=m, config=cfg, out=torch.full_like(q, float("nan")))
            else:
                with limit_sms(sms):
                    out = fg_attention(q, k, v, index, block_m=m, config=cfg, out=torch.full_like(q, float("nan")))
            what = f"M128 D128 limit_sms={sms} {form} seed {seed}"
            assert not out.isnan().any(), f"{what}: NaN"
            assert _err(out, ref) <= TOL, f"{what}: error {_err(out, ref):.2e}"
            assert bool((out[0, 0, :m] == 0).all()) and bool((out[0, 1, m:2 * m] == 0).all()), f"{what}: empty rows"
    finally:
        attention._attn_fwd_persistent = orig
    # G = min(rows, SMs) for the persistent forms; one_row: one program per row whatever the SM count
    assert spy.grids == [(1,), (6,), (1,), (1,), (6,), (1,), (1,), (2,), (6,), (6,), (6,), (1,), (2,), (6,)], \
        f"grids {spy.grids}"


@pytest.mark.parametrize("gran,dtype", [(1, torch.float16), (16, torch.float32), (64, torch.float16)])
def test_one_row_with_text_tokens_matches_reference(gran: int, dtype: torch.dtype) -> None:
    """``one_row`` (one program per row, idx_early, tma_q asked for: the CPU falls back to pointer loads): text tokens
    appended (full text rows and columns next to sparse video rows), an empty row, odd N, rows of one and many
    tiles, lse; against float64 and the plain kernel; the grid has one program per row."""
    from fgattn.masks import with_text

    seed = _seed()
    m, d, h, n_text = 64, 64, 2, 37
    n_video = random.randrange(150, 230) | 1
    layout = ("bhnd", "bnhd")[random.getrandbits(1)]
    n = n_video + n_text
    shape = (1, h, n, d) if layout == "bhnd" else (1, n, h, d)
    q, k, v = (torch.randn(shape, dtype=dtype) for _ in range(3))
    qb, nt = -(-n_video // m), -(-n_video // gran)
    tiles = torch.rand(1, h, qb, nt) < 0.3
    tiles[0, 0, 1] = False  # an empty video row
    tiles[0, 1, 0, 0] = True
    mask = with_text(tiles.repeat_interleave(gran, dim=-1)[..., :n_video], n_text, m)
    mask[0, 0, 1] = False  # stays empty (no text columns either)
    index = build_index(mask, block_m=m, gran_n=gran, order=True, check=True)
    guard = gran > 1  # guard_next / tma_o (CPU: pointer store) at gran 16 and 64; gran 1: tail_fold
    cfg = _cfg(q, m, gran, 32 if gran < 64 else 64, one_row=True, idx_early=True, tma_q=True, guard_next=guard,
               tma_o=guard, tail_fold=not guard)
    spy = _GridSpy(attention._attn_fwd_persistent)
    attention._attn_fwd_persistent, orig = spy, attention._attn_fwd_persistent
    try:
        with limit_sms(1):  # ignored by one_row
            out, lse = fg_attention(q, k, v, index, block_m=m, gran_n=gran, layout=layout, config=cfg,
                                    out=torch.full_like(q, float("nan")), return_lse=True)
    finally:
        attention._attn_fwd_persistent = orig
    ref, ref_lse = reference_attention(q, k, v, index, layout=layout, return_lse=True)
    what = f"one_row gran={gran} guard_next/tail_fold={guard}/{not guard} {dtype} {layout} N={n_video}+{n_text} seed {seed}"
    assert spy.grids == [(index.n_rows,)], f"{what}: grid {spy.grids}, want one program per row ({index.n_rows})"
    assert not out.isnan().any(), f"{what}: NaN"
    assert _err(out, ref) <= TOL, f"{what}: error {_err(out, ref):.2e}"
    empty = out[0, 0, m:2 * m] if layout == "bhnd" else out[0, m:2 * m, 0]
    assert bool((empty == 0).all()) and bool(torch.isneginf(lse[0, 0, m:2 * m]).all()), f"{what}: empty row"
    kept = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), kept), f"{what}: lse -inf pattern"
    assert float((lse.double()[kept] - ref_lse[kept]).abs().max()) <= 1e-3 * (1 + float(ref_lse[kept].abs().max()))
    plain = fg_attention(q, k, v, index, block_m=m, gran_n=gran, layout=layout,
                         config=dataclasses.replace(cfg, extra=dict(lpt=True, idx_ahead=1)))
    assert _err(out, plain.double()) <= 2e-3, f"{what}: one_row and plain kernels differ"


def test_one_row_excludes_persistent_and_queue() -> None:
    q, k, v = (torch.randn(1, 1, 64, 64, dtype=torch.float16) for _ in range(3))
    index = build_index(torch.ones(1, 1, 1, 64, dtype=torch.bool), block_m=64)
    with pytest.raises(ValueError, match="one_row .* and persistent .* exclude each other"):
        fg_attention(q, k, v, index, block_m=64, config=_cfg(q, 64, 1, 64, one_row=True, persistent=True))
    with pytest.raises(ValueError, match="queue .* and no one_row"):
        fg_attention(q, k, v, index, block_m=64, config=_cfg(q, 64, 1, 64, one_row=True, queue=True))


def test_queue_needs_the_nested_loop() -> None:
    q, k, v = (torch.randn(1, 1, 64, 64, dtype=torch.float16) for _ in range(3))
    index = build_index(torch.ones(1, 1, 1, 64, dtype=torch.bool), block_m=64)
    with pytest.raises(ValueError, match="queue .* needs flatten false"):
        fg_attention(q, k, v, index, block_m=64, config=_cfg(q, 64, 1, 64, queue=True))


def test_programs_per_sm_sets_the_grid() -> None:
    seed = _seed()
    q, k, v = (torch.randn(1, 3, 150, 64, dtype=torch.float16) for _ in range(3))
    index = build_index(torch.rand(1, 3, 3, 150) < 0.3, block_m=64, order=True)
    spy = _GridSpy(attention._attn_fwd_persistent)
    attention._attn_fwd_persistent, orig = spy, attention._attn_fwd_persistent
    try:
        with limit_sms(1):  # G = 2 programs of 5 and 4 rows
            out = fg_attention(q, k, v, index, block_m=64, config=_cfg(q, 64, 1, 64, programs_per_sm=2))
        with limit_sms(2):
            fg_attention(q, k, v, index, block_m=64, config=_cfg(q, 64, 1, 64, programs_per_sm=2))
    finally:
        attention._attn_fwd_persistent = orig
    assert spy.grids == [(2,), (4,)], f"grid {spy.grids}: want min(9 rows, 2 x SMs), seed {seed}"
    assert _err(out, reference_attention(q, k, v, index)) <= TOL, f"seed {seed}"


def test_grid_rules_and_limit_sms() -> None:
    assert persistent_programs(10, 1, 132) == 10 and persistent_programs(1000, 2, 132) == 264
    assert persistent_programs(0, 1, 132) == 1
    order = row_order(np.array([[5, 1, 9, 3]]))
    assert program_rows(order, 3, 0).tolist() == [order[0], order[3]]
    assert program_rows(order, 3, 2).tolist() == [order[2]]
    assert sm_limit() is None
    with limit_sms(8):
        with limit_sms(3):
            assert sm_limit() == 3
        assert sm_limit() == 8
    assert sm_limit() is None
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="limit_sms"):
            with limit_sms(bad):  # type: ignore[arg-type]
                pass
    with pytest.raises(ValueError):
        persistent_programs(5, 0, 132)


@pytest.mark.parametrize("layout", ["bhnd", "bnhd"])
def test_persistent_block_and_dense(layout: str) -> None:
    """Block (last block partial and past N in its second sub-tile, an empty row) and dense, several rows per
    program, against the float64 reference and the plain kernels."""
    seed = _seed()
    m, d, n = 64, 64, random.randrange(140, 190) | 1  # last block partial; sub-tile 2 of it past N when n < 160
    shape = (1, 2, n, d) if layout == "bhnd" else (1, n, 2, d)
    q, k, v = (torch.randn(shape, dtype=torch.float16) for _ in range(3))
    tiles = torch.rand(1, 2, -(-n // m), -(-n // m)) < 0.5
    tiles[0, 0, 0] = False
    tiles[0, 1, 1, -1] = True
    bidx = fgattn.block_index_from_mask(tiles, block_m=m, n_keys=n, order=True)
    with limit_sms(2):
        for kernel, idx, flat in (("block", bidx, True), ("dense", None, True), ("block", bidx, False),
                                  ("dense", None, False)):
            base = attention.resolve_config(kernel, q, m, m if kernel == "block" else 1)
            plain_cfg = dataclasses.replace(base, block_n=32, extra=dict(lpt=True))
            cfg = dataclasses.replace(base, block_n=32, extra=dict(lpt=True, persistent=True, flatten=flat))
            if kernel == "block":
                out, lse = fgattn.block_sparse_attention(q, k, v, idx, block_m=m, layout=layout, config=cfg,
                                                         out=torch.full_like(q, float("nan")), return_lse=True)
                plain = fgattn.block_sparse_attention(q, k, v, idx, block_m=m, layout=layout, config=plain_cfg)
            else:
                out, lse = fgattn.dense_attention(q, k, v, block_m=m, layout=layout, config=cfg,
                                                  out=torch.full_like(q, float("nan")), return_lse=True)
                plain = fgattn.dense_attention(q, k, v, block_m=m, layout=layout, config=plain_cfg)
            ref, ref_lse = reference_attention(q, k, v, idx, layout=layout, return_lse=True)
            what = f"persistent {kernel} {layout} N={n} {cfg.extra} seed {seed}"
            assert not out.isnan().any(), f"{what}: NaN"
            assert _err(out, ref) <= TOL, f"{what}: error {_err(out, ref):.2e}"
            assert _err(out, plain.double()) <= 2e-3, f"{what}: differs from the plain kernel"
            kept = torch.isfinite(ref_lse)
            assert torch.equal(torch.isfinite(lse), kept), f"{what}: lse -inf pattern"
            assert float((lse.double()[kept] - ref_lse[kept]).abs().max()) <= 1e-3 * (1 + float(ref_lse.abs().max()))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_tail_fold_when_the_repeated_key_dominates(dtype: torch.dtype) -> None:
    """``tail_fold`` (gran 1: the last tile's unused columns read the row's last kept key x, whose extra copies are
    subtracted after the loop): rows where x has by far the largest score (up to 127 copies of it in the last tile,
    the subtraction cancels most of l and of the accumulator), rows where it has the smallest, a full last tile
    (nothing to subtract), a one-key row and an empty row; against float64 and the masked-tail form."""
    seed = _seed()
    m, d, n = 64, 64, 203
    q, k, v = (torch.randn(1, 2, n, d, dtype=dtype) for _ in range(3))
    mask = torch.zeros(1, 2, -(-n // m), n, dtype=torch.bool)
    mask[0, 0, 0, [3, 50, 100]] = True  # last key 100: dominant below; 1 tile of 32 with 29 repeats
    mask[0, 0, 1, 10:75] = True  # 65 keys: 3 tiles, the last with 31 repeats of key 74 (small score below)
    mask[0, 0, 2, 0:64] = True  # two full tiles: nothing to subtract
    mask[0, 1, 0, 199] = True  # one key: 31 repeats of it
    mask[0, 1, 1, ::3] = True
    # mask[0, 1, 2] and [0, 1, 3] stay empty
    q[0, 0, :m] = k[0, 0, 100] * 0.6  # S for key 100 ~ 0.6 |k|^2 / sqrt(D) >> the others
    k[0, 0, 74] = -q[0, 0, m:2 * m].mean(0) * 0.3
    index = build_index(mask, block_m=m, order=True, check=True)
    ref = reference_attention(q, k, v, index)
    masked = fg_attention(q, k, v, index, block_m=m, config=_cfg(q, m, 1, 32, one_row=True, idx_early=True))
    for form in ("one_row_fold", "nested_fold"):
        cfg = _cfg(q, m, 1, 32, **(EXTRA_FORMS | ONE_ROW)[form])
        with limit_sms(1):
            out = fg_attention(q, k, v, index, block_m=m, config=cfg, out=torch.full_like(q, float("nan")))
        what = f"tail_fold {form} {dtype} seed {seed}"
        assert not out.isnan().any(), f"{what}: NaN"
        assert _err(out, ref) <= TOL, f"{what}: error {_err(out, ref):.2e}"
        for r in range(4):  # per row: the cancellation must not lose the row
            sl = slice(r * m, min((r + 1) * m, n))
            assert _err(out[0, 0, sl], ref[0, 0, sl]) <= TOL, f"{what}: row {r} error {_err(out[0, 0, sl], ref[0, 0, sl]):.2e}"
        assert bool((out[0, 1, 2 * m:] == 0).all()), f"{what}: empty rows"
        assert _err(out, masked.double()) <= 2e-3, f"{what}: differs from the masked-tail form"
