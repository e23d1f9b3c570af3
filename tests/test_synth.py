"""Synthetic traces: structure against brute force, labels, determinism."""

from __future__ import annotations

import numpy as np
from conftest import make_meta

from fgsim.synth import SynthParams, default_passes, synth_entry, synth_trace, window_mask
from fgsim.trace import PassInfo, open_trace


def brute_window(grid, block_m, radius, text_tokens=0, text_position="none"):
    t, h, w = grid
    nv = t * h * w
    n = nv + text_tokens
    start = text_tokens if text_position == "before" else 0
    coords = np.array([(a, b, c) for a in range(t) for b in range(h) for c in range(w)])
    qb = -(-n // block_m)
    out = np.zeros((qb, n), dtype=bool)
    for blk in range(qb):
        queries = range(blk * block_m, min(n, (blk + 1) * block_m))
        for q in queries:
            if not start <= q < start + nv:
                out[blk] = True
                continue
            near = np.all(np.abs(coords - coords[q - start]) <= np.array(radius), axis=1)
            out[blk, start:start + nv] |= near
        out[blk, :start] = True
        out[blk, start + nv:] = True
    return out


def test_window_mask_matches_brute_force(rng):
    for _ in range(4):
        grid = tuple(int(x) for x in rng.integers(1, 6, size=3))
        radius = tuple(int(x) for x in rng.integers(0, 3, size=3))
        text = int(rng.integers(0, 7))
        pos = ("none" if text == 0 else str(rng.choice(["before", "after"])))
        block_m = int(rng.choice([16, 32]))
        got = window_mask(grid, block_m, radius, text, pos)
        assert np.array_equal(got, brute_window(grid, block_m, radius, text, pos)), (grid, radius, text, pos)


def test_synth_structure(tmp_path):
    path = tmp_path / "s.fgt"
    params = SynthParams(seed=3)
    meta = synth_trace(str(path), grid=(4, 6, 8), num_layers=4, num_heads=3, text_tokens=5, text_position="after",
                       block_m=16, num_steps=10, passes=default_passes(10, 2, every=5), params=params)
    with open_trace(path) as tr:
        assert tr.meta.provenance == {"kind": "synthetic", "generator": "fgsim.synth", "params": params.to_json()}
        nv = 4 * 6 * 8
        dense_pass = [p for p in tr.meta.passes if p.step == 0][0]
        sparse_pass = [p for p in tr.meta.passes if p.step == 5][0]
        assert tr.mask(dense_pass.index, 0).all()  # dense warm-up step
        mask = tr.mask(sparse_pass.index, 3)
        assert mask[:, :, nv:].all()  # text keys kept densely
        assert mask[:, -1, :].all()  # the block holding text queries attends to everything
        assert 0 < mask.mean() < 1
    again = tmp_path / "again.fgt"
    synth_trace(str(again), grid=(4, 6, 8), num_layers=4, num_heads=3, text_tokens=5, text_position="after",
                block_m=16, num_steps=10, passes=default_passes(10, 2, every=5), params=params)
    assert path.read_bytes() == again.read_bytes()  # reproducible byte for byte
    assert meta.n_tokens == nv + 5


def test_sinks_only_in_deep_layers_and_later_steps_sparser():
    meta = make_meta(grid=(4, 8, 8), text_tokens=0, text_position="none", block_m=16, layers=(0, 1, 2, 3),
                     heads=(0, 1), num_steps=50)
    params = SynthParams(global_key_fraction=0.0, sink_fraction=0.25, layer_spread=0.0, last_layers_boost=0.0)
    early = synth_entry(meta, PassInfo(30, 15), 0, params)
    deep = synth_entry(meta, PassInfo(30, 15), 3, params)
    late = synth_entry(meta, PassInfo(98, 49), 3, params)
    frame0 = slice(0, 64)
    # sink keys (first-frame tokens kept by every query block) appear in the deeper half only
    assert not early[:, :, frame0].all(axis=1).any()
    assert deep[:, :, frame0].all(axis=1).any(axis=-1).all()
    assert late.mean() <= deep.mean()
