"""test18 (session 16, helper M8): the frozen list is its generator's output, disjoint from every earlier list,
covers the transfer axes and the bench axis, every launch what-if is a valid configuration of its kernel; the two
new mask families behave."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from fgsim.validation import cases as vc

REPO = Path(__file__).resolve().parents[1]
EARLIER = ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5", "test6", "test7", "test8", "test9",
           "test10", "test11", "test12", "test13", "test14", "test15", "test16", "test17")


def test_test18_is_its_generator_output_disjoint_and_covers_the_axes() -> None:
    t18 = vc.load_case_list("test18")
    spec = importlib.util.spec_from_file_location("make_test18", REPO / "validation" / "cases" / "make_test18.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test18.csv").read_text(), "test18.csv differs (bytes)"
    assert len(t18) == 36 and sum(len(c.kernels) for c in t18) == 70 and "test18" in vc.SPLITS
    earlier = [vc.load_case_list(s) for s in EARLIER]
    vc.check_disjoint([*earlier, t18])
    before = [c for cl in earlier for c in cl]
    synth = [c for c in t18 if c.structure != "trace" and not (c.axis == "bench" and c.n_tokens == 32760)]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test18 repeats an N of another list"
    assert not {c.seed for c in t18 if c.structure != "trace"} & {c.seed for c in before}, "test18 repeats a seed"
    traces = {(c.trace, c.pass_index, c.layer) for c in t18 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {(c.head_dim, c.block_m) for c in t18 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t18} == {"bf16", "fp16"} and {c.structure for c in t18} <= set(vc.TEST18_STRUCTURES)
    assert not {c.structure for c in before} & set(vc.TEST18_NEW_STRUCTURES), "a new family was in a list before"
    assert set(vc.TEST18_NEW_STRUCTURES) <= {c.structure for c in t18 if c.axis == "tuned"}
    cfg = [c for c in t18 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    # test17's a-028 (block BLOCK_N 128 at BLOCK_M 64) did not launch: every what-if here is valid for its kernel
    for c in cfg:
        assert c.block_n in (16, 32, 64, 128) and c.num_warps in (4, 8), c.case_id
        assert c.kernels != ("block",) or c.block_m % c.block_n == 0, c.case_id
    assert {(c.persistent, c.programs_per_sm) for c in t18 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t18 if c.axis == "sm"} == {44, 92, 68}
    bench = [c for c in t18 if c.axis == "bench"]
    assert {c.kernels for c in bench} == {("fg",), ("block",), ("dense",)}
    assert all(set(c.option_overrides()) <= {"order"} for c in bench if c.kernels == ("fg",))
    assert {c.option_overrides().get("order", "natural") for c in bench if c.kernels == ("fg",)} == {"lpt", "natural"}
    assert vc.test16_long_ids(t18) == [], "test18 has no long-run twins"
    for c in t18:  # every mask fits the harness's bound
        assert c.heads * -(-c.n_tokens // c.block_m) * c.n_tokens <= vc.MAX_MASK_ELEMS, c.case_id


def test_clusterk_and_moba_masks() -> None:
    """clusterk: deterministic per seed, about density x 64 clusters per row, so scattered keys (far more 128-key
    tiles touched than kept keys fill); a pair of query blocks shares most of its clusters. moba: whole 1,536-token chunks, the
    query block's own chunk among them."""
    fr, nf = 1560, 8
    n = fr * nf
    seed = 4_242
    print("seed", seed)
    for fam in vc.TEST18_NEW_STRUCTURES:
        lo = vc.case_mask(vc.Case("x", "test18", fam, n, 4, 64, 64, 0.05, seed))
        hi = vc.case_mask(vc.Case("x", "test18", fam, n, 4, 64, 64, 0.3, seed))
        assert np.array_equal(lo, vc.case_mask(vc.Case("x", "test18", fam, n, 4, 64, 64, 0.05, seed)))
        assert hi.mean() > lo.mean() > 0
    c = vc.case_mask(vc.Case("x", "test18", "clusterk", n, 2, 64, 64, 0.1, seed + 1))
    assert 0.05 < c.mean() < 0.2
    a, b = c[:, 0::2][:, : c.shape[1] // 2], c[:, 1::2][:, : c.shape[1] // 2]
    assert (a & b).sum() / (a | b).sum() > 0.5, "a pair of query blocks shares most of its clusters"
    tiles = c[:, :, : 128 * (n // 128)].reshape(2, c.shape[1], n // 128, 128).any(axis=3).mean()
    assert tiles > 3 * c.mean(), "clusterk keys are scattered over many tiles"
    q = 5 * fr // 64 + 3
    assert c[:, q, q * 64 + 32].all(), "the centre's own cluster is kept"
    m = vc.case_mask(vc.Case("x", "test18", "moba", n, 2, 64, 64, 0.2, seed + 2))
    nck = -(-n // vc.MOBA_CHUNK)
    pad = np.zeros((2, m.shape[1], nck * vc.MOBA_CHUNK), bool)
    pad[:, :, :n] = m
    ch = pad.reshape(2, m.shape[1], nck, vc.MOBA_CHUNK)
    full = ch[:, :, : n // vc.MOBA_CHUNK]
    assert np.array_equal(full.all(axis=3), full.any(axis=3)), "moba keeps whole chunks"
    own = (np.arange(m.shape[1]) * 64 + 32) // vc.MOBA_CHUNK
    assert ch.any(axis=3)[:, np.arange(m.shape[1]), own].all(), "the own chunk is kept"
