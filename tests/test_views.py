"""Derived views against brute-force loops, on random masks of odd shapes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fgsim import views


def brute_coarse(mask, block_m, m, n):
    heads, qb, keys = mask.shape
    g = m // block_m
    qb2, kt = -(-qb // g), -(-keys // n)
    out = np.zeros((heads, qb2, kt), dtype=bool)
    for h in range(heads):
        for b in range(qb2):
            for t in range(kt):
                out[h, b, t] = bool(mask[h, b * g:(b + 1) * g, t * n:(t + 1) * n].any())
    return out


def brute_density(mask, block_m, m, n, n_queries):
    coarse = brute_coarse(mask, block_m, m, n)
    heads, qb2, kt = coarse.shape
    keys = mask.shape[2]
    area = 0
    for h in range(heads):
        for b in range(qb2):
            rows = min(m, n_queries - b * m)
            for t in range(kt):
                if coarse[h, b, t]:
                    area += rows * min(n, keys - t * n)
    return area / (heads * n_queries * keys)


shapes = st.tuples(
    st.integers(1, 3),  # heads
    st.integers(1, 300),  # tokens
    st.sampled_from([16, 32]),  # stored block_m
    st.sampled_from([1, 16, 64, 128]),  # n
    st.floats(0.0, 1.0),  # density
    st.integers(0, 2**31 - 1),
)


@settings(max_examples=60, deadline=None)
@given(shapes, st.data())
def test_views_match_brute_force(shape, data):
    heads, tokens, block_m, n, dens, seed = shape
    rng = np.random.default_rng(seed)
    qb = -(-tokens // block_m)
    mask = rng.random((heads, qb, tokens)) < dens
    m = data.draw(st.sampled_from(views.m_levels_for(block_m)))
    ref = brute_coarse(mask, block_m, m, n)
    assert np.array_equal(views.coarsen(mask, block_m, m, n), ref)
    tiles, keys = views.tile_counts(mask, block_m, m, n)
    assert np.array_equal(tiles, ref.sum(axis=2))
    widths = np.array([min(n, tokens - t * n) for t in range(ref.shape[2])])
    assert np.array_equal(keys, (ref * widths).sum(axis=2))
    ptiles, pkeys = views.tile_counts_packed(views.pack_mask(mask), tokens, block_m, m, n)
    assert np.array_equal(ptiles, tiles) and np.array_equal(pkeys, keys)
    assert np.isclose(views.density(mask, block_m, m, n, tokens), brute_density(mask, block_m, m, n, tokens))
    offsets, indices = views.csr_index(mask, block_m, m, n)
    assert offsets.dtype == np.int64 and indices.dtype == np.int32
    flat = ref.reshape(-1, ref.shape[2])
    assert offsets[-1] == flat.sum()
    for r in range(flat.shape[0]):
        row = indices[offsets[r]:offsets[r + 1]]
        assert np.array_equal(row, np.nonzero(flat[r])[0])
        assert np.all(np.diff(row) > 0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 200), st.integers(1, 300), st.sampled_from([16, 32]),
       st.sampled_from([1, 16, 64, 128]), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1), st.data())
def test_cross_attention_views_match_brute_force(heads, n_q, n_k, block_m, n, dens, seed, data):
    """Rectangular masks (N_k ≠ N_q keys, cross-attention): keys come from the mask's last axis only."""
    if n_k == n_q:
        n_k += 1
    rng = np.random.default_rng(seed)
    mask = rng.random((heads, -(-n_q // block_m), n_k)) < dens
    m = data.draw(st.sampled_from(views.m_levels_for(block_m)))
    ref = brute_coarse(mask, block_m, m, n)
    assert np.array_equal(views.coarsen(mask, block_m, m, n), ref)
    assert ref.shape == (heads, -(-n_q // m), -(-n_k // n))
    tiles, keys = views.tile_counts(mask, block_m, m, n)
    widths = np.array([min(n, n_k - t * n) for t in range(ref.shape[2])])
    assert np.array_equal(tiles, ref.sum(axis=2)) and np.array_equal(keys, (ref * widths).sum(axis=2))
    ptiles, pkeys = views.tile_counts_packed(views.pack_mask(mask), n_k, block_m, m, n)
    assert np.array_equal(ptiles, tiles) and np.array_equal(pkeys, keys)
    assert np.isclose(views.density(mask, block_m, m, n, n_q), brute_density(mask, block_m, m, n, n_q))
    assert np.isclose(views.density_from_counts(keys, n_q, n_k, m), brute_density(mask, block_m, m, n, n_q))
    offsets, indices = views.csr_index(mask, block_m, m, n)
    flat = ref.reshape(-1, ref.shape[2])
    for r in range(flat.shape[0]):
        assert np.array_equal(indices[offsets[r]:offsets[r + 1]], np.nonzero(flat[r])[0])


def test_pack_roundtrip_odd_length(rng):
    mask = rng.random((2, 3, 77)) < 0.5
    packed = views.pack_mask(mask)
    assert packed.shape == (2, 3, 10)
    assert np.array_equal(views.unpack_mask(packed, 77), mask)


def test_one_query_block_and_block_csr(rng):
    mask = rng.random((1, 1, 40)) < 0.4
    offsets, indices = views.block_csr(mask, 64, 64)
    assert list(offsets) == [0, int(mask.any())]
    assert list(indices) == ([0] if mask.any() else [])


def test_bad_levels_are_rejected():
    mask = np.zeros((1, 2, 10), dtype=bool)
    for call, msg in [
        (lambda: views.coarsen(mask, 64, 32, 1), "not a multiple"),
        (lambda: views.coarsen(mask, 48, 48, 1), "block_m must be one of"),
        (lambda: views.coarsen(mask, 64, 64, 0), "n must be"),
        (lambda: views.tile_counts_packed(views.pack_mask(mask), 10, 64, 64, 12), "multiple of 8"),
        (lambda: views.tile_counts_packed(views.pack_mask(mask), 30, 64, 64, 8), "bytes per row"),
    ]:
        try:
            call()
        except ValueError as exc:
            assert msg in str(exc)
        else:
            raise AssertionError(f"no error for {msg}")


def _levels(mask, block_m):
    out = {}
    for m in views.m_levels_for(block_m):
        per_n = [views.tile_counts(mask, block_m, m, n) for n in views.N_LEVELS]
        out[m] = np.stack([np.stack([t for t, _ in per_n]), np.stack([k for _, k in per_n])])
    return out


def test_check_counts_accepts_every_real_mask_and_catches_edits(rng):
    """No false alarms on counts computed from masks (empty, full, random, cross-attention shapes), and a
    single ±1 edit at any level is caught (the property the open-time check relies on)."""
    caught = edits = 0
    for _ in range(60):
        block_m = int(rng.choice(views.M_LEVELS))
        n_q = int(rng.integers(1, 400))
        n_k = int(rng.choice([n_q, int(rng.integers(1, 300)), 128, 256, 16]))
        qb = -(-n_q // block_m)
        kind = int(rng.integers(0, 4))
        dens = [0.0, 1.0, rng.uniform(0, 1), rng.uniform(0, 0.05)][kind]
        mask = rng.random((int(rng.integers(1, 4)), qb, n_k)) < dens
        levels = _levels(mask, block_m)
        assert views.check_counts(levels, block_m, n_q, n_k) is None, (block_m, n_q, n_k, kind)
        m = int(rng.choice(list(levels)))
        bad = {k: v.copy() for k, v in levels.items()}
        idx = tuple(int(rng.integers(0, s)) for s in bad[m].shape)
        bad[m][idx] += int(rng.choice([-1, 1]))
        edits += 1
        caught += views.check_counts(bad, block_m, n_q, n_k) is not None
    assert caught >= 0.8 * edits, (caught, edits)
