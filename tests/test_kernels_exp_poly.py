"""CPU tests of launch option ``exp_poly`` (session 9: part of the softmax's exp2 by an FMA polynomial instead of
MUFU.EX2) under the Triton interpreter (fp16/fp32): the polynomial against float64 2^x on a grid with large negative
inputs, -inf and 0; the kernels with the option against the float64 reference; bad values one clear error."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported

import dataclasses  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "kernels")]

import fgattn.attention as attention  # noqa: E402
from fgattn import (  # noqa: E402
    block_index_from_mask,
    block_sparse_attention,
    build_index,
    dense_attention,
    fg_attention,
    reference_attention,
)

TOL = 1e-2


def _seed() -> int:
    s = random.randrange(2**31)  # random is seeded per test by conftest's printed seed
    random.seed(s)
    torch.manual_seed(s)
    return s


@triton.jit
def _poly_kernel(X, Y, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(Y + offs, attention._exp2_poly(tl.load(X + offs)))


def _poly(x: np.ndarray) -> np.ndarray:
    n = triton.next_power_of_2(x.size)
    xt = torch.full((n,), 0.0, dtype=torch.float32)
    xt[: x.size] = torch.from_numpy(x.astype(np.float32))
    yt = torch.empty_like(xt)
    _poly_kernel[(1,)](xt, yt, N=n)
    return yt[: x.size].double().numpy()


def test_exp2_poly_against_float64() -> None:
    """The polynomial's 2^x (fp32, the interpreter's tl form of the kernels' PTX) on a grid of [-140, 0.5] with
    integers, half-integers, values just below integers, -inf and 0: relative error <= 1e-4 where 2^x >= 2^-125,
    exactly +0 at x <= -127 and -inf, exactly 1 at 0, |error| <= 2^-125 in between; the PTX carries the same fp32
    coefficients."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    grid = np.concatenate([np.linspace(-140, 0.5, 4001), np.arange(-140, 1), np.arange(-140, 1) - 0.5,
                           np.nextafter(np.arange(-120, 1, dtype=np.float32), np.float32(-np.inf)),
                           rng.uniform(-30, 0, 2000), [-np.inf, 0.0, -0.0, 1e-7, -1e-7, -1000.0, -126.5]])
    x = grid.astype(np.float32).astype(np.float64)  # the kernel sees fp32
    y = _poly(x)
    ref = np.exp2(x)
    normal = x >= -125
    rel = np.abs(y[normal] / ref[normal] - 1)
    assert rel.max() <= 1e-4, f"max relative error {rel.max():.3e} at x={x[normal][rel.argmax()]}, seed {seed}"
    assert (y[x <= -127] == 0).all(), f"2^x not +0 for x <= -127 / -inf: {y[x <= -127][:5]}, seed {seed}"
    assert (y[x == 0] == 1).all(), "2^0 is not exactly 1"
    mid = (x > -127) & (x < -125)
    assert np.abs(y[mid] - ref[mid]).max() <= 2.0**-125, f"|error| > 2^-125 near the underflow, seed {seed}"
    ptx = attention._exp2_poly_ptx(2)
    for c in attention.EXP2_POLY_C:
        assert attention._f32_hex(c) in ptx, f"coefficient {c} not in the PTX"
    assert len(re.findall(r"ex2\.approx", ptx)) == 1 and len(re.findall(r"ex2\.approx", attention._exp2_poly_ptx(4))) == 3
    assert "ex2" not in attention._exp2_poly_ptx(1)


def _qkv(h: int, n: int, d: int, dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.randn(1, h, n, d, dtype=dtype) for _ in range(3)]


def _check(out: torch.Tensor, ref: torch.Tensor, what: str, seed: int) -> float:
    assert not out.isnan().any(), f"{what}: NaN in output, seed {seed}"
    err = float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))
    assert err <= TOL, f"{what}: relative error {err:.2e} > {TOL}, seed {seed}"
    return err


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_exp_poly_kernels(dtype: torch.dtype) -> None:
    """fg (one_row, with and without tail_fold; the _attn_fwd form), dense and block with exp_poly 0.25 / 0.5 / 1
    match the float64 reference (an empty query block, odd N, scores up to ~±8 so P spans many binades); bad values
    are one clear error."""
    seed = _seed()
    m, d, n = 64, 64, 151
    q, k, v = (t * 2 for t in _qkv(2, n, d, dtype))
    tiles = torch.rand(1, 2, -(-n // m), n) < 0.5
    tiles[0, 0, 0] = False  # an empty query block
    mask = tiles
    index = build_index(mask, block_m=m, order=True)
    ref = reference_attention(q, k, v, index)
    base = dataclasses.replace(attention.resolve_config("fg", q, m, 1), block_n=32, num_stages=2,
                               extra={"one_row": True, "idx_early": True, "lpt": True})
    for frac, more in ((0.5, {}), (0.25, {"tail_fold": True}), (1, {}), (0.5, "attn_fwd")):
        extra = {"idx_ahead": 1, "lpt": True} if more == "attn_fwd" else dict(base.extra, **more)
        cfg = dataclasses.replace(base, extra=dict(extra, exp_poly=frac))
        out = fg_attention(q, k, v, index, block_m=m, config=cfg, out=torch.full_like(q, float("nan")))
        _check(out, ref, f"fg exp_poly {frac} {more} {dtype}", seed)
        assert bool((out[0, 0, :m] == 0).all()), f"fg exp_poly {frac}: empty query block not zero, seed {seed}"
    dcfg = dataclasses.replace(attention.resolve_config("dense", q, m, 1), block_n=32, num_stages=2,
                               extra={"exp_poly": 0.5})
    _check(dense_attention(q, k, v, block_m=m, config=dcfg), reference_attention(q, k, v, None), "dense", seed)
    bmask = torch.rand(1, 2, -(-n // m), -(-n // m)) < 0.6
    bmask[..., -1] = True
    bidx = block_index_from_mask(bmask, block_m=m, n_keys=n)
    bcfg = dataclasses.replace(attention.resolve_config("block", q, m, m), extra={"exp_poly": 0.25})
    _check(block_sparse_attention(q, k, v, bidx, block_m=m, config=bcfg), reference_attention(q, k, v, bidx),
           "block", seed)
    for bad in (0.3, True, "0.5", -0.5):
        cfg = dataclasses.replace(base, extra=dict(base.extra, exp_poly=bad))
        with pytest.raises(ValueError, match=r"config: exp_poly=.* must be one of \[0, 0.125, 0.25, 0.5, 1\]"):
            fg_attention(q, k, v, index, block_m=m, config=cfg)


def test_tail_prefetch_option() -> None:
    """Launch option tail_prefetch (session-9 candidate; a GPU hint, compiled out under the interpreter): the one_row
    fg kernel with it matches the reference; its bad forms (flat persistent, tail_fold, dense) are one clear error."""
    seed = _seed()
    m, d, n = 64, 64, 140
    q, k, v = _qkv(2, n, d, torch.float16)
    mask = torch.rand(1, 2, -(-n // m), n) < 0.6
    index = build_index(mask, block_m=m, order=True)
    base = dataclasses.replace(attention.resolve_config("fg", q, m, 1), block_n=32, num_stages=2,
                               extra={"one_row": True, "idx_early": True, "lpt": True, "tail_prefetch": True})
    _check(fg_attention(q, k, v, index, block_m=m, config=base), reference_attention(q, k, v, index),
           "fg tail_prefetch", seed)
    msg = "config: tail_prefetch .* needs fg and the nested persistent form .* without tail_fold"
    for bad in ({"one_row": False, "persistent": True}, {"tail_fold": True}):
        with pytest.raises(ValueError, match=msg):
            fg_attention(q, k, v, index, block_m=m, config=dataclasses.replace(base, extra=dict(base.extra, **bad)))
    dcfg = dataclasses.replace(attention.resolve_config("dense", q, m, 1),
                               extra={"one_row": True, "tail_prefetch": True})
    with pytest.raises(ValueError, match=msg):
        dense_attention(q, k, v, block_m=m, config=dcfg)
