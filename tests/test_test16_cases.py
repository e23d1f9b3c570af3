"""test16 (session 14, helper M4): the frozen list is its generator's output, disjoint from every earlier list,
covers the transfer axes and the bench axis with long-run twins; the two new mask families behave."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from fgsim.validation import cases as vc

REPO = Path(__file__).resolve().parents[1]
EARLIER = ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5", "test6", "test7", "test8", "test9",
           "test10", "test11", "test12", "test13", "test14", "test15")


def test_test16_is_its_generator_output_disjoint_and_covers_the_axes() -> None:
    t16 = vc.load_case_list("test16")
    spec = importlib.util.spec_from_file_location("make_test16", REPO / "validation" / "cases" / "make_test16.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test16.csv").read_text(), "test16.csv differs (bytes)"
    assert len(t16) == 42 and sum(len(c.kernels) for c in t16) == 76 and "test16" in vc.SPLITS
    earlier = [vc.load_case_list(s) for s in EARLIER]
    vc.check_disjoint([*earlier, t16])
    before = [c for cl in earlier for c in cl]
    synth = [c for c in t16 if c.structure != "trace" and not (c.axis == "bench" and c.n_tokens in (32760, 33272))]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test16 repeats an N of another list"
    assert not {c.seed for c in t16 if c.structure != "trace"} & {c.seed for c in before}, "test16 repeats a seed"
    traces = {(c.trace, c.pass_index, c.layer) for c in t16 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {(c.head_dim, c.block_m) for c in t16 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t16} == {"bf16", "fp16"} and {c.structure for c in t16} <= set(vc.TEST16_STRUCTURES)
    assert not {c.structure for c in before} & set(vc.TEST16_NEW_STRUCTURES), "a new family was in a list before"
    assert set(vc.TEST16_NEW_STRUCTURES) <= {c.structure for c in t16 if c.axis == "tuned"}
    cfg = [c for c in t16 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3}
    assert {(c.persistent, c.programs_per_sm) for c in t16 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t16 if c.axis == "sm"} == {56, 100, 72}
    bench = [c for c in t16 if c.axis == "bench"]
    assert {c.kernels for c in bench} == {("fg",), ("block",), ("dense",)}
    # the fg bench rows run the packaged entry (no launch option but the index order), whatever row end it adopts
    assert all(set(c.option_overrides()) <= {"order"} for c in bench if c.kernels == ("fg",))
    long_ids = vc.test16_long_ids(t16)
    assert long_ids == vc.test16_long_ids() and len(long_ids) == 4
    by_id = {c.case_id: c for c in t16}
    for cid in long_ids:  # each long-run twin repeats a short bench case exactly but for its id
        c = by_id[cid]
        twins = [s for s in bench if s.case_id != cid and (s.seed, s.n_tokens, s.heads, s.head_dim, s.density,
                 s.kernels, s.options, s.structure) == (c.seed, c.n_tokens, c.heads, c.head_dim, c.density,
                                                        c.kernels, c.options, c.structure)]
        assert len(twins) == 1 and twins[0].case_id not in long_ids
    assert {by_id[i].kernels for i in long_ids} == {("fg",), ("block",), ("dense",)}
    assert vc.TEST16_LONG["target_ms"] >= 100 and vc.TEST16_LONG["rounds"] >= 3


def test_svg_and_tilewin_masks() -> None:
    """svg: deterministic per seed; a spatial head keeps frame 0 and the query's frame, a temporal head keeps the
    query's in-frame positions in every frame. tilewin: keys come in whole 10 x 13 tiles, none beyond the tile window."""
    fr, nf = 1560, 8
    n = fr * nf
    for fam in vc.TEST16_NEW_STRUCTURES:
        lo = vc.case_mask(vc.Case("x", "test16", fam, n, 4, 64, 64, 0.05, 51))
        hi = vc.case_mask(vc.Case("x", "test16", fam, n, 4, 64, 64, 0.4, 51))
        assert np.array_equal(lo, vc.case_mask(vc.Case("x", "test16", fam, n, 4, 64, 64, 0.05, 51)))
        assert hi.mean() > lo.mean() > 0
    s = vc.case_mask(vc.Case("x", "test16", "svg", n, 8, 64, 64, 0.2, 52))
    q = 5 * fr // 64 + 3  # a query block inside frame 5
    per_frame = s[:, q].reshape(8, nf, fr).sum(2)
    spatial = per_frame[:, 0] == fr  # spatial heads keep all of frame 0
    assert spatial.any() and (~spatial).any(), "seed 52 gives both head kinds"
    assert (per_frame[spatial, 5] == fr).all() and (per_frame[spatial, 2] == 0).all()
    assert (per_frame[~spatial] > 0).all() and (per_frame[~spatial] < fr).all()  # temporal: a slice of every frame
    t = vc.case_mask(vc.Case("x", "test16", "tilewin", n, 2, 64, 64, 0.1, 53))
    grid = t[:, q].reshape(2, nf, 30, 52)
    tiles = grid[:, :, :30, :52].reshape(2, nf, 3, 10, 4, 13)
    kept = tiles.any(axis=(3, 5))
    assert np.array_equal(tiles.all(axis=(3, 5)), kept), "tilewin keeps whole tiles"
    assert kept[:, 5].any() and not kept[:, 0].any()  # the query's own frame, and frame 0 is not a sink here
