"""CPU tests of the fgattn kernels under the Triton interpreter (fp16/fp32; the interpreter
mishandles bf16 ``tl.dot``).  Fresh random inputs every run; the seed is in every failure message."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported

import dataclasses  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "kernels")]

import fgattn  # noqa: E402
import fgattn.attention as attention  # noqa: E402
from fgattn import (  # noqa: E402
    FgIndex,
    block_index_from_mask,
    block_sparse_attention,
    build_index,
    check_index,
    dense_attention,
    fg_attention,
    index_to_mask,
    reference_attention,
)

TOL = 1e-2


def _seed() -> int:
    s = random.randrange(2**31)  # random is seeded per test by conftest's printed seed
    random.seed(s)
    torch.manual_seed(s)
    return s


def _qkv(b: int, h: int, n: int, d: int, dtype: torch.dtype, layout: str) -> list[torch.Tensor]:
    shape = (b, h, n, d) if layout == "bhnd" else (b, n, h, d)
    return [torch.randn(shape, dtype=dtype) for _ in range(3)]


def _mask(b: int, h: int, n: int, m: int, gran: int, density: float) -> torch.Tensor:
    """Tile-level random mask with an empty query block (0,0,0) and a full last block."""
    qb, nt = -(-n // m), -(-n // gran)
    tiles = torch.rand(b, h, qb, nt) < density
    tiles[0, 0, 0] = False
    tiles[-1, -1, -1] = True
    return tiles.repeat_interleave(gran, dim=-1)[..., :n]


def _err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))


def _poisoned(q: torch.Tensor) -> torch.Tensor:
    return torch.full_like(q, float("nan"))


def _check(out: torch.Tensor, ref: torch.Tensor, what: str, seed: int) -> None:
    assert not out.isnan().any(), f"{what}: NaN in output (unwritten or 0/0), seed {seed}"
    err = _err(out, ref)
    assert err <= TOL, f"{what}: relative error {err:.2e} > {TOL}, seed {seed}"


def _first_block(out: torch.Tensor, m: int, layout: str) -> torch.Tensor:
    return out[0, 0, :m] if layout == "bhnd" else out[0, :m, 0]


@pytest.mark.parametrize("gran", [1, 16, 64])
@pytest.mark.parametrize("layout", ["bhnd", "bnhd"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_fg_matches_reference(gran: int, layout: str, dtype: torch.dtype) -> None:
    seed = _seed()
    m, d, b, h = 64, 64, 2, 2
    n = random.randrange(129, 200) | 1  # odd, not a multiple of any block
    q, k, v = _qkv(b, h, n, d, dtype, layout)
    mask = _mask(b, h, n, m, gran, 0.4 if gran == 1 else 0.5)
    index = build_index(mask, block_m=m, gran_n=gran, order=bool(random.getrandbits(1)), check=True)
    out = fg_attention(q, k, v, index, block_m=m, gran_n=gran, layout=layout, out=_poisoned(q), check=True)
    ref = reference_attention(q, k, v, index, layout=layout)
    what = f"fg gran={gran} {layout} {dtype} N={n}"
    _check(out, ref, what, seed)
    assert bool((_first_block(out, m, layout) == 0).all()), f"{what}: empty query block not zero, seed {seed}"


@pytest.mark.parametrize(
    "extra",
    [{"idx_ahead": 0}, {"idx_ahead": 1}, {"idx_ahead": 0, "overlap": True}, {"idx_ahead": 1, "lpt": False},
     {"idx_ahead": 1, "tail_reuse": True}],
)
def test_fg_loop_variants(extra: dict) -> None:
    seed = _seed()
    m, d, n = 64, 64, 191
    q, k, v = _qkv(1, 2, n, d, torch.float16, "bhnd")
    mask = _mask(1, 2, n, m, 1, 0.6)
    index = build_index(mask, block_m=m, order=True)
    base = attention.resolve_config("fg", q, m, 1)
    for bn in (32, 64):  # several full tiles per row, then the masked tail
        cfg = dataclasses.replace(base, block_n=bn, extra=extra)
        out = fg_attention(q, k, v, index, block_m=m, config=cfg, out=_poisoned(q))
        _check(out, reference_attention(q, k, v, index), f"fg {extra} bn={bn}", seed)


def test_fg_tail_reuse_runs_past_n() -> None:
    """tail_reuse with gran_n 16: the last run of a row ends past N (N=191), so its tail mask needs kidx < N."""
    seed = _seed()
    m, d, n, g = 64, 64, 191, 16
    q, k, v = _qkv(1, 2, n, d, torch.float32, "bnhd")
    mask = _mask(1, 2, n, m, g, 0.6)
    mask[0, 1, 0, 176:] = True  # the last run (keys 176-191, 191 past N) kept
    index = build_index(mask, block_m=m, gran_n=g, order=True)
    cfg = dataclasses.replace(attention.resolve_config("fg", q, m, g), block_n=32,
                              extra={"idx_ahead": 1, "tail_reuse": True})
    out = fg_attention(q, k, v, index, block_m=m, gran_n=g, layout="bnhd", config=cfg, out=_poisoned(q))
    _check(out, reference_attention(q, k, v, index, layout="bnhd"), "fg tail_reuse gran 16", seed)


def test_fg_full_and_empty_rows_head_dim_128_block_128() -> None:
    seed = _seed()
    m, d, n = 128, 128, 201
    q, k, v = _qkv(1, 2, n, d, torch.float16, "bnhd")
    mask = torch.zeros(1, 2, 2, n, dtype=torch.bool)
    mask[0, 0, 1] = True  # a full query block
    mask[0, 1, 0, ::3] = True  # a strided one; (0, 0, 0) and (0, 1, 1) are empty
    index = build_index(mask, block_m=m, check=True)
    out = fg_attention(q, k, v, index, block_m=m, layout="bnhd", out=_poisoned(q))
    _check(out, reference_attention(q, k, v, index, layout="bnhd"), "fg D=128 M=128", seed)
    assert bool((out[0, :m, 0] == 0).all()) and bool((out[0, m:, 1] == 0).all()), f"empty blocks, seed {seed}"
    # a full query block equals dense attention over its rows
    dense = reference_attention(q, k, v, None, layout="bnhd")
    assert _err(out[0, m:, 0], dense[0, m:, 0]) <= TOL, f"full block vs dense, seed {seed}"


@pytest.mark.parametrize("tma", [False, True])
@pytest.mark.parametrize("layout", ["bhnd", "bnhd"])
def test_dense_and_block(tma: bool, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = _seed()
    if tma:  # the interpreter runs device-side tensor descriptors on the CPU
        import triton

        monkeypatch.setattr(attention, "_interpreting", lambda: False)
        monkeypatch.setattr(attention, "_ensure_allocator", lambda: None)
        triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8))
    m, d, n = 64, 64, 157
    q, k, v = _qkv(1, 2, n, d, torch.float16, layout)
    cfg = dataclasses.replace(attention.resolve_config("dense", q, m), block_n=32, extra={"tma": tma, "tma_qo": tma})
    out = dense_attention(q, k, v, block_m=m, layout=layout, config=cfg, out=_poisoned(q))
    _check(out, reference_attention(q, k, v, None, layout=layout), f"dense tma={tma} {layout}", seed)
    blocks = torch.rand(1, 2, 3, 3) < 0.5
    blocks[0, 0, 0] = False
    blocks[0, 1, 2, 2] = True  # the partial last key block
    bidx = block_index_from_mask(blocks, block_m=m, n_keys=n, check=True)
    cfg = dataclasses.replace(attention.resolve_config("block", q, m), block_n=32, extra={"tma": tma})
    out = block_sparse_attention(q, k, v, bidx, block_m=m, layout=layout, config=cfg, out=_poisoned(q))
    _check(out, reference_attention(q, k, v, bidx, layout=layout), f"block tma={tma} {layout}", seed)
    assert bool((_first_block(out, m, layout) == 0).all()), f"empty block, seed {seed}"
    index = build_index(_mask(1, 2, n, m, 1, 0.5), block_m=m, order=True)  # Q/O through descriptors
    cfg = dataclasses.replace(attention.resolve_config("fg", q, m), block_n=32, extra={"idx_ahead": 1, "tma_qo": tma})
    out = fg_attention(q, k, v, index, block_m=m, layout=layout, config=cfg, out=_poisoned(q))
    _check(out, reference_attention(q, k, v, index, layout=layout), f"fg tma_qo={tma} {layout}", seed)
    assert bool((_first_block(out, m, layout) == 0).all()), f"fg tma_qo empty block, seed {seed}"


class _KwSpy:
    """Stands in for a jit function: records each launch's keyword arguments, then launches."""

    def __init__(self, fn):
        self.fn, self.kwargs = fn, []

    def __getitem__(self, grid):
        def launch(*args, **kw):
            self.kwargs.append(kw)
            return self.fn[grid](*args, **kw)
        return launch


@pytest.mark.parametrize("n", [157, 128])
def test_dense_tail_branch(n: int) -> None:
    """``tail_branch`` (dense: the masked last tile under a scalar branch) gives the reference, with a partial last
    tile (157 keys) and a full one (128); it reaches the dense kernel as TAIL_BRANCH and no other kernel."""
    seed = _seed()
    m, d = 64, 64
    q, k, v = _qkv(1, 2, n, d, torch.float16, "bhnd")
    spy = _KwSpy(attention._attn_fwd)
    attention._attn_fwd, orig = spy, attention._attn_fwd
    try:
        cfg = dataclasses.replace(attention.resolve_config("dense", q, m), block_n=32, extra={"tail_branch": True})
        out, lse = dense_attention(q, k, v, block_m=m, config=cfg, out=_poisoned(q), return_lse=True)
        index = build_index(_mask(1, 2, n, m, 1, 0.5), block_m=m, order=True)
        fcfg = dataclasses.replace(attention.resolve_config("fg", q, m), block_n=32,
                                   extra={"idx_ahead": 1, "tail_branch": True})
        fg_attention(q, k, v, index, block_m=m, config=fcfg)
    finally:
        attention._attn_fwd = orig
    ref, ref_lse = reference_attention(q, k, v, None, return_lse=True)
    _check(out, ref, f"dense tail_branch N={n}", seed)
    assert float((lse.double() - ref_lse).abs().max()) <= 1e-3 * (1 + float(ref_lse.abs().max())), f"lse, seed {seed}"
    assert [kw["TAIL_BRANCH"] for kw in spy.kwargs] == [True, False], f"TAIL_BRANCH passed as {spy.kwargs}"


def test_sm_scale() -> None:
    seed = _seed()
    q, k, v = _qkv(1, 1, 130, 64, torch.float32, "bhnd")
    index = build_index(_mask(1, 1, 130, 64, 1, 0.5), block_m=64)
    out = fg_attention(q, k, v, index, block_m=64, sm_scale=0.3, out=_poisoned(q))
    _check(out, reference_attention(q, k, v, index, sm_scale=0.3), "sm_scale", seed)


@settings(max_examples=4, deadline=None)
@given(
    n=st.integers(65, 190),
    gran=st.sampled_from([1, 16, 64]),
    density=st.floats(0.0, 1.0),
    layout=st.sampled_from(["bhnd", "bnhd"]),
)
def test_fg_property(n: int, gran: int, density: float, layout: str) -> None:
    seed = _seed()
    q, k, v = _qkv(1, 1, n, 64, torch.float16, layout)
    tiles = torch.rand(1, 1, -(-n // 64), -(-n // gran)) < density
    mask = tiles.repeat_interleave(gran, dim=-1)[..., :n]
    index = build_index(mask, block_m=64, gran_n=gran)
    out = fg_attention(q, k, v, index, block_m=64, gran_n=gran, layout=layout, out=_poisoned(q))
    ref = reference_attention(q, k, v, index, layout=layout)
    assert not out.isnan().any(), f"NaN, seed {seed}"
    assert _err(out, ref) <= TOL, f"n={n} gran={gran} density={density:.2f}: {_err(out, ref):.2e}, seed {seed}"



@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_return_lse(dtype: torch.dtype) -> None:
    """(out, lse): lse float32 (B, H, N_q), natural log, -inf and output 0 on rows with no kept key;
    the default output is unchanged."""
    seed = _seed()
    m, d, n, layout = 64, 64, 147, ("bhnd", "bnhd")[random.getrandbits(1)]
    q, k, v = _qkv(1, 2, n, d, dtype, layout)
    mask = _mask(1, 2, n, m, 1, 0.5)  # query block (0, 0, 0) empty
    index = build_index(mask, block_m=m, order=True)
    out, lse = fg_attention(q, k, v, index, block_m=m, layout=layout, out=_poisoned(q), return_lse=True)
    ref, ref_lse = reference_attention(q, k, v, index, layout=layout, return_lse=True)
    what = f"fg lse {dtype} {layout}"
    _check(out, ref, what, seed)
    assert lse.dtype == torch.float32 and lse.shape == (1, 2, n), f"{what}: {lse.dtype} {tuple(lse.shape)}"
    assert bool(torch.isneginf(lse[0, 0, :m]).all()), f"{what}: empty rows not -inf, seed {seed}"
    assert bool((_first_block(out, m, layout) == 0).all()), f"{what}: empty rows not zero, seed {seed}"
    kept = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), kept), f"{what}: finite pattern differs, seed {seed}"
    gap = float((lse.double()[kept] - ref_lse[kept]).abs().max())
    assert gap <= 1e-3 * (1 + float(ref_lse[kept].abs().max())), f"{what}: lse off by {gap:.2e}, seed {seed}"
    plain = fg_attention(q, k, v, index, block_m=m, layout=layout)
    assert torch.equal(plain, out), f"{what}: return_lse changed the output, seed {seed}"
    cfg = dataclasses.replace(attention.resolve_config("dense", q, m), block_n=32)
    dout, dlse = dense_attention(q, k, v, block_m=m, layout=layout, config=cfg, return_lse=True, sm_scale=0.2)
    dref, dref_lse = reference_attention(q, k, v, None, layout=layout, sm_scale=0.2, return_lse=True)
    _check(dout, dref, f"dense lse {dtype}", seed)
    assert float((dlse.double() - dref_lse).abs().max()) <= 1e-3 * (1 + float(dref_lse.abs().max())), f"seed {seed}"
    bidx = block_index_from_mask(mask, block_m=m, n_keys=n)
    bcfg = dataclasses.replace(attention.resolve_config("block", q, m), block_n=32)
    bout, blse = block_sparse_attention(q, k, v, bidx, block_m=m, layout=layout, config=bcfg, return_lse=True)
    bref, bref_lse = reference_attention(q, k, v, bidx, layout=layout, return_lse=True)
    _check(bout, bref, f"block lse {dtype}", seed)
    assert torch.equal(torch.isfinite(blse), torch.isfinite(bref_lse)), f"block lse -inf pattern, seed {seed}"
    ok = torch.isfinite(bref_lse)
    assert float((blse.double()[ok] - bref_lse[ok]).abs().max()) <= 1e-3 * (1 + float(bref_lse[ok].abs().max()))

# ------------------------------------------------------------------------------------- indices
@pytest.mark.parametrize("gran", [1, 16, 64])
def test_build_index_matches_nonzero(gran: int) -> None:
    seed = _seed()
    n, m = 173, 64
    mask = torch.rand(2, 3, 3, n) < 0.2
    index = build_index(mask, block_m=m, gran_n=gran, order=True, check=True)
    nt = -(-n // gran)
    pad = torch.nn.functional.pad(mask, (0, nt * gran - n)).reshape(2, 3, 3, nt, gran).any(-1)
    flat = pad.reshape(-1, nt)
    want = [torch.nonzero(r).flatten().to(torch.int32) for r in flat]
    got = [index.indices[index.offsets[i]:index.offsets[i + 1]] for i in range(flat.shape[0])]
    assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True)), f"seed {seed}"
    assert sorted(index.order.tolist()) == list(range(18))
    assert torch.equal(index_to_mask(index), pad.repeat_interleave(gran, -1)[..., :n])
    kept = pad.repeat_interleave(gran, -1)[..., :n]
    assert abs(index.density(n) - float(kept.double().mul(torch.tensor([64, 64, n - 128.0])[:, None]).sum()
                                       / (6 * n * n))) < 1e-9



def test_row_order_promotes_heavy_rows_and_matches_numpy_twin() -> None:
    """Text-token rows (dense) of every head launch first; the rest head-major, heaviest first; the torch
    order equals fgattn.schedule.row_order (the cost model's copy)."""
    import numpy as np
    from fgattn.index import _order
    from fgattn.schedule import row_order

    seed = _seed()
    bh, qb = 6, 40
    counts = torch.randint(10, 30, (bh, qb))
    counts[:, -2:] = 2000  # text query blocks attend to every key
    counts[3, 5] = 0  # an empty row
    offsets = torch.zeros(bh * qb + 1, dtype=torch.int64)
    offsets[1:] = counts.reshape(-1).cumsum(0)
    got = _order(offsets, qb, n_sm=132)
    assert torch.equal(got, torch.from_numpy(row_order(counts.numpy(), 132))), f"seed {seed}"
    first = set(got[: 2 * bh].tolist())
    assert first == {h * qb + q for h in range(bh) for q in (qb - 2, qb - 1)}, f"seed {seed}"
    rest = got[2 * bh:]
    heads = (rest // qb).tolist()
    assert heads == sorted(heads), f"rest not head-major, seed {seed}"
    c = counts.reshape(-1)[rest.long()]
    for h in range(bh):
        ch = c[torch.tensor(heads) == h]
        assert bool((ch[:-1] >= ch[1:]).all()), f"head {h} not heaviest first, seed {seed}"
    plain = _order(offsets, qb, n_sm=132, promote=False)
    assert (plain // qb).tolist() == sorted((plain // qb).tolist()), f"seed {seed}"
    uniform = torch.full((bh * qb,), 7, dtype=torch.int64)
    off_u = torch.cat([torch.zeros(1, dtype=torch.int64), uniform.cumsum(0)])
    assert torch.equal(_order(off_u, qb), torch.arange(bh * qb, dtype=torch.int32)), "uniform rows keep natural order"
    assert row_order(np.zeros((0, 3))).size == 0

def test_build_index_from_csr_view_and_torch_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    mask = torch.rand(4, 3, 150) < 0.3  # a trace's (heads, QB, N) mask
    a = build_index(mask, block_m=64, check=True)
    b = build_index((a.offsets.numpy(), a.indices.numpy()), block_m=64, n_keys=150, heads=4, check=True)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.offsets, b.offsets)
    assert (b.batch, b.heads, b.n_qblocks) == (1, 4, 3)
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # CPU without Triton: torch.masked_select path
    c = build_index(mask, block_m=64)
    assert torch.equal(a.indices, c.indices) and torch.equal(a.offsets, c.offsets)
    with pytest.raises(ValueError, match="n_keys and heads"):
        build_index((a.offsets, a.indices), block_m=64)


def test_block_index_from_slice_and_block_masks() -> None:
    mask = torch.rand(1, 2, 3, 150) < 0.01
    a = block_index_from_mask(mask, block_m=64, n_keys=150)
    blocks = torch.nn.functional.pad(mask, (0, 42)).reshape(1, 2, 3, 3, 64).any(-1)
    b = block_index_from_mask(blocks, block_m=64, n_keys=150, check=True)
    assert torch.equal(a.indices, b.indices) and a.gran_n == 64
    with pytest.raises(ValueError, match="neither"):
        block_index_from_mask(torch.ones(1, 1, 3, 7, dtype=torch.bool), block_m=64, n_keys=150)


# ---------------------------------------------------------------------------------- bad inputs
def _small():
    q, k, v = _qkv(1, 2, 100, 64, torch.float16, "bhnd")
    index = build_index(torch.rand(1, 2, 2, 100) < 0.5, block_m=64)
    return q, k, v, index


def _swap_first_pair(index: FgIndex) -> FgIndex:
    idx = index.indices.clone()
    r = int((index.counts() > 1).nonzero()[0])
    a = int(index.offsets[r])
    idx[a], idx[a + 1] = idx[a + 1].clone(), idx[a].clone()
    return dataclasses.replace(index, indices=idx)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda i: _swap_first_pair(i), "sorted strictly increasing"),
        (lambda i: dataclasses.replace(i, indices=torch.where(i.indices == i.indices.max(), 100, i.indices)
                                       .to(torch.int32)), "out of range"),
        (lambda i: dataclasses.replace(i, indices=i.indices - 1 - i.indices.min()), "out of range"),
        (lambda i: dataclasses.replace(i, offsets=i.offsets[:-1]), "offsets"),
        (lambda i: dataclasses.replace(i, offsets=i.offsets.flip(0)), "non-decreasing"),
        (lambda i: dataclasses.replace(i, indices=i.indices.long()), "int32"),
    ],
)
def test_bad_index_rejected(mutate, match: str) -> None:
    q, k, v, index = _small()
    with pytest.raises(ValueError, match=match):
        fg_attention(q, k, v, mutate(index), block_m=64, check=True)


def test_duplicate_index_rejected() -> None:
    _, _, _, index = _small()
    idx = index.indices.clone()
    r = int((index.counts() > 1).nonzero()[0])
    idx[int(index.offsets[r]) + 1] = idx[int(index.offsets[r])]
    with pytest.raises(ValueError, match="duplicate"):
        check_index(dataclasses.replace(index, indices=idx))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda q, k, v, i: fg_attention(q, k, v, i, block_m=128), "block_m"),
        (lambda q, k, v, i: fg_attention(q, k, v, i, block_m=64, gran_n=16), "gran_n"),
        (lambda q, k, v, i: fg_attention(q, k, v, i, block_m=64, layout="nhd"), "layout"),
        (lambda q, k, v, i: fg_attention(q[..., :32], k[..., :32], v[..., :32], i, block_m=64), "head_dim"),
        (lambda q, k, v, i: fg_attention(q.int(), k.int(), v.int(), i, block_m=64), "dtype"),
        (lambda q, k, v, i: fg_attention(q, k.float(), v, i, block_m=64), "dtype"),
        (lambda q, k, v, i: fg_attention(q, k[:, :, :99], v, i, block_m=64), "shapes"),
        (lambda q, k, v, i: fg_attention(q, k[:, :, :99], v[:, :, :99], i, block_m=64), "n_keys"),
        (lambda q, k, v, i: fg_attention(q, k, v, i, block_m=64,
                                         config=fgattn.launch_config("dense", "h200", 64, 64)), "config"),
        (lambda q, k, v, i: fg_attention(q, k, v, i, block_m=64,
                                         config=fgattn.launch_config("fg", "h200", 128, 64)), "config"),
        (lambda q, k, v, i: fg_attention(q, k, v, i, block_m=64, out=torch.empty(3)), "out"),
        (lambda q, k, v, i: fg_attention(q.transpose(-1, -2), k, v, i, block_m=64), "contiguous|shape"),
        (lambda q, k, v, i: block_sparse_attention(q, k, v, i, block_m=64), "gran_n"),
    ],
)
def test_bad_arguments_rejected(call, match: str) -> None:
    q, k, v, index = _small()
    with pytest.raises(ValueError, match=match):
        call(q, k, v, index)


def test_sweep_winner_is_the_median_not_the_mean() -> None:
    """A candidate that wins big on one sweep problem and loses on the others must not take the table entry."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
    import bench_kernels

    base = dict(kernel="fg", head_dim=128, block_m=128, gran_n=1, num_warps=8, eff_tflops=1.0, ms=1.0)
    ref = [dict(base, block_n=128, num_stages=3, extra={"idx_ahead": 1}, problem=p, rel=1.0) for p in "abc"]
    spiky = [dict(base, block_n=32, num_stages=3, extra={"idx_ahead": 1, "maxnreg": 128}, problem=p, rel=r)
             for p, r in zip("abc", (0.70, 1.04, 1.07), strict=True)]
    best = bench_kernels.pick_winners(ref + spiky)[("fg", 128, 128, 1)]
    assert best["block_n"] == 128 and best["score"] == 1.0
    best = bench_kernels.pick_winners(ref + [dict(r, rel=0.97) for r in spiky])[("fg", 128, 128, 1)]
    assert best["block_n"] == 32
    # --max-rel: a candidate slower than max_rel x the reference at any problem is not eligible
    mixed = [dict(r, rel=x) for r, x in zip(spiky, (0.90, 0.95, 1.03), strict=True)]
    assert bench_kernels.pick_winners(ref + mixed)[("fg", 128, 128, 1)]["block_n"] == 32
    assert bench_kernels.pick_winners(ref + mixed, max_rel=1.02)[("fg", 128, 128, 1)]["block_n"] == 128


def test_three_shape_sweep_keeps_untimed_entries(tmp_path, monkeypatch) -> None:
    """A v5-v7 sweep writes only the keys it timed: v7 tunes fg D128 M128 gran 16/64, and gran 1 (not timed) must
    keep its entry (the v3/v4 derivation would have copied gran 16's winner onto it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
    import bench_kernels

    table = tmp_path / "launch_configs.json"
    table.write_text(bench_kernels.TABLE.read_text())
    monkeypatch.setattr(bench_kernels, "TABLE", table)
    before = {(e["kernel"], e["head_dim"], e["block_m"], e["gran_n"]): e
              for e in json.loads(table.read_text())["entries"]}
    win = dict(kernel="fg", head_dim=128, block_m=128, gran_n=16, block_n=128, num_stages=3, num_warps=8,
               extra={"one_row": True, "idx_early": True}, score=0.95, desc=["x"])
    try:
        bench_kernels.write_table_v3({("fg", 128, 128, 16): win}, {"gpu_name": "G", "date": "2026-11-30"}, tmp_path,
                                     "t.csv", derive=False)
        after = {(e["kernel"], e["head_dim"], e["block_m"], e["gran_n"]): e
                 for e in json.loads(table.read_text())["entries"]}
        assert after[("fg", 128, 128, 16)]["extra"] == win["extra"]
        assert after[("fg", 128, 128, 1)] == before[("fg", 128, 128, 1)]
        assert after[("fg", 128, 128, 64)] == before[("fg", 128, 128, 64)]
        bench_kernels.write_table_v3({("fg", 128, 128, 16): win}, {"gpu_name": "G", "date": "2026-11-30"}, tmp_path,
                                     "t.csv", derive=True)  # the one-shape sweeps' derivation still applies
        after = {(e["kernel"], e["head_dim"], e["block_m"], e["gran_n"]): e
                 for e in json.loads(table.read_text())["entries"]}
        assert after[("fg", 128, 128, 1)]["extra"] == win["extra"]
    finally:
        bench_kernels.launch.load_table.cache_clear()


def test_v9_candidates_start_each_key_with_its_entry() -> None:
    """bench_kernels --candidates v9: per key the launch table's entry first (the sweep's reference), then forms
    of it; guard_next / tma_o only on one_row entries, tail_fold only at gran 1."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
    import bench_kernels

    cands = bench_kernels.candidates_v9()
    first: dict[tuple, dict] = {}
    for c in cands:
        key = (c["kernel"], c["head_dim"], c["block_m"], c["gran_n"])
        first.setdefault(key, c)
        e = bench_kernels.launch.launch_config(c["kernel"], "h200", c["head_dim"], c["block_m"], c["gran_n"])
        if any(o in c["extra"] for o in ("guard_next", "tma_o", "tail_fold")):
            assert c["extra"].get("one_row"), f"{key}: session-7 options on a form without one_row"
        if c["extra"].get("tail_fold"):
            assert c["gran_n"] == 1, f"{key}: tail_fold at gran {c['gran_n']}"
    for key, c in first.items():
        e = bench_kernels.launch.launch_config(key[0], "h200", key[1], key[2], key[3])
        assert (c["block_n"], c["num_stages"], c["num_warps"], c["extra"]) == (
            e.block_n, e.num_stages, e.num_warps, e.extra), f"{key}: first candidate is not the table entry"
    assert len(first) == 7 and len(cands) == 21


def test_bench_shapes_rejects_unknown_positions(monkeypatch, capsys) -> None:
    """--bench-shapes names benchmark-plan positions 0-8; anything else is one error line and exit 2, before work."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
    import bench_kernels

    for bad in ("0,9", "1,,2"):
        monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--bench-shapes", bad])
        with pytest.raises(SystemExit) as e:
            bench_kernels.main()
        err = capsys.readouterr().err
        assert e.value.code == 2 and "--bench-shapes" in err and "0-8" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_fg_row_rec_candidate(dtype: torch.dtype) -> None:
    """Launch option row_rec (session-7c candidate, one_row only): one (row, lo, hi) record per launch position
    replaces the Order -> Offsets loads; same output as the reference, with an empty and a full row; the records
    are built once per index and reused; without one_row it is one clear error."""
    seed = _seed()
    m, d, n = 64, 64, 150
    q, k, v = _qkv(1, 2, n, d, dtype, "bhnd")
    mask = _mask(1, 2, n, m, 1, 0.4)
    index = build_index(mask, block_m=m, order=True)
    cfg = dataclasses.replace(attention.resolve_config("fg", q, m, 1), block_n=32, num_stages=2,
                              extra={"one_row": True, "idx_early": True, "lpt": True, "row_rec": True})
    out = fg_attention(q, k, v, index, block_m=m, config=cfg, out=_poisoned(q))
    _check(out, reference_attention(q, k, v, index), f"fg row_rec {dtype}", seed)
    rec = attention._row_records(index.offsets, index.order)
    assert rec is attention._row_records(index.offsets, index.order)  # cached: plan-time work
    o = index.order.long()
    assert torch.equal(rec[:, 0], index.order) and torch.equal(rec[:, 1].long(), index.offsets[o].long())
    assert torch.equal(rec[:, 2].long(), index.offsets[o + 1].long())
    bad = dataclasses.replace(cfg, extra={"row_rec": True, "persistent": True, "flatten": False})
    with pytest.raises(ValueError, match="row_rec .* needs one_row"):
        fg_attention(q, k, v, index, block_m=m, config=bad)
    # l2_prefetch (the other session-7c candidate): a GPU hint, off under the interpreter; the option's checks
    pf = dataclasses.replace(cfg, extra={"one_row": True, "idx_early": True, "l2_prefetch": True})
    _check(fg_attention(q, k, v, index, block_m=m, config=pf, out=_poisoned(q)), reference_attention(q, k, v, index),
           f"fg l2_prefetch {dtype}", seed)
    flat = dataclasses.replace(cfg, extra={"persistent": True, "l2_prefetch": True})
    with pytest.raises(ValueError, match="l2_prefetch .* needs fg and the nested persistent form"):
        fg_attention(q, k, v, index, block_m=m, config=flat)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_fg_row_ahead_candidate(dtype: torch.dtype) -> None:
    """Launch option row_ahead (session-8 candidate, one_row fg): the program at launch position p prefetches the
    Q tile and first index entries of position p + row_ahead into L2 (under the interpreter: plain loads of the
    same addresses).  Same output as the reference with an empty row, a row with one kept key, a full row and
    positions whose p + row_ahead is past the last row; bad values and forms are one clear error."""
    seed = _seed()
    m, d, n = 64, 64, 150
    q, k, v = _qkv(1, 2, n, d, dtype, "bhnd")
    mask = _mask(1, 2, n, m, 1, 0.4)
    mask[0, 0, 1] = False
    mask[0, 0, 1, 77] = True  # query block (0, 0, 1): one kept key
    index = build_index(mask, block_m=m, order=True)
    counts = index.counts().flatten()
    assert (counts == 0).any() and (counts == 1).any() and (counts == n).any()
    base = dataclasses.replace(attention.resolve_config("fg", q, m, 1), block_n=32, num_stages=2,
                               extra={"one_row": True, "idx_early": True, "lpt": True})
    ref = reference_attention(q, k, v, index)
    for ahead in (1, 4):  # 6 rows: ahead 4 runs past the end from position 2
        cfg = dataclasses.replace(base, extra=dict(base.extra, row_ahead=ahead))
        _check(fg_attention(q, k, v, index, block_m=m, config=cfg, out=_poisoned(q)), ref,
               f"fg row_ahead {ahead} {dtype}", seed)
    for bad, msg in (({"row_ahead": -1}, "row_ahead=-1 must be a non-negative int"),
                     ({"row_ahead": 1.5}, "row_ahead=1.5 must be a non-negative int"),
                     ({"row_ahead": 2, "persistent": True, "flatten": False}, "row_ahead .* needs fg and one_row"),
                     ({"row_ahead": 2, "row_rec": True}, "row_ahead .* without row_rec")):
        cfg = dataclasses.replace(base, extra=dict(base.extra, **bad))
        if "persistent" in bad:
            cfg = dataclasses.replace(cfg, extra={k_: v_ for k_, v_ in cfg.extra.items() if k_ != "one_row"})
        with pytest.raises(ValueError, match=msg):
            fg_attention(q, k, v, index, block_m=m, config=cfg)
