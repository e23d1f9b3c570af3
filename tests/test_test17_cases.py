"""test17 (session 15, helper M5): the frozen list is its generator's output, disjoint from every earlier list,
covers the transfer axes and the bench axis with long-run twins; the two new mask families behave."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from fgsim.validation import cases as vc

REPO = Path(__file__).resolve().parents[1]
EARLIER = ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5", "test6", "test7", "test8", "test9",
           "test10", "test11", "test12", "test13", "test14", "test15", "test16")


def test_test17_is_its_generator_output_disjoint_and_covers_the_axes() -> None:
    t17 = vc.load_case_list("test17")
    spec = importlib.util.spec_from_file_location("make_test17", REPO / "validation" / "cases" / "make_test17.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test17.csv").read_text(), "test17.csv differs (bytes)"
    assert len(t17) == 40 and sum(len(c.kernels) for c in t17) == 74 and "test17" in vc.SPLITS
    earlier = [vc.load_case_list(s) for s in EARLIER]
    vc.check_disjoint([*earlier, t17])
    before = [c for cl in earlier for c in cl]
    synth = [c for c in t17 if c.structure != "trace" and not (c.axis == "bench" and c.n_tokens in (32760, 33272))]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test17 repeats an N of another list"
    assert not {c.seed for c in t17 if c.structure != "trace"} & {c.seed for c in before}, "test17 repeats a seed"
    traces = {(c.trace, c.pass_index, c.layer) for c in t17 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {(c.head_dim, c.block_m) for c in t17 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t17} == {"bf16", "fp16"} and {c.structure for c in t17} <= set(vc.TEST17_STRUCTURES)
    assert not {c.structure for c in before} & set(vc.TEST17_NEW_STRUCTURES), "a new family was in a list before"
    assert set(vc.TEST17_NEW_STRUCTURES) <= {c.structure for c in t17 if c.axis == "tuned"}
    cfg = [c for c in t17 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    assert {(c.persistent, c.programs_per_sm) for c in t17 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t17 if c.axis == "sm"} == {80, 108, 96}
    bench = [c for c in t17 if c.axis == "bench"]
    assert {c.kernels for c in bench} == {("fg",), ("block",), ("dense",)}
    # the fg bench rows run the packaged entry (no launch option but the index order), whatever row end it adopts
    assert all(set(c.option_overrides()) <= {"order"} for c in bench if c.kernels == ("fg",))
    assert {c.option_overrides().get("order", "natural") for c in bench if c.kernels == ("fg",)} == {"lpt", "natural"}
    long_ids = vc.test17_long_ids(t17)
    assert long_ids == vc.test17_long_ids() == ["a-016", "a-017", "a-018"]
    by_id = {c.case_id: c for c in t17}
    for cid in long_ids:  # each long-run twin repeats a short bench case exactly but for its id
        c = by_id[cid]
        twins = [s for s in bench if s.case_id != cid and (s.seed, s.n_tokens, s.heads, s.head_dim, s.density,
                 s.kernels, s.options, s.structure) == (c.seed, c.n_tokens, c.heads, c.head_dim, c.density,
                                                        c.kernels, c.options, c.structure)]
        assert len(twins) == 1 and twins[0].case_id not in long_ids
    assert {by_id[i].kernels for i in long_ids} == {("fg",), ("block",), ("dense",)}
    assert vc.TEST17_LONG["target_ms"] >= 100 and vc.TEST17_LONG["rounds"] >= 3


def test_vslash_and_cubetopk_masks() -> None:
    """vslash: deterministic per seed; column groups of 8 keys are kept by every query block of a head or by none but
    the slashes, and a slash keeps the query block's in-frame position one frame away. cubetopk: keys come in whole
    2 x 5 x 13 cubes, about density x cubes of them per row, the query's own cube among them."""
    fr, nf = 1560, 8
    n = fr * nf
    for fam in vc.TEST17_NEW_STRUCTURES:
        lo = vc.case_mask(vc.Case("x", "test17", fam, n, 4, 64, 64, 0.05, 61))
        hi = vc.case_mask(vc.Case("x", "test17", fam, n, 4, 64, 64, 0.3, 61))
        assert np.array_equal(lo, vc.case_mask(vc.Case("x", "test17", fam, n, 4, 64, 64, 0.05, 61)))
        assert hi.mean() > lo.mean() > 0
    v = vc.case_mask(vc.Case("x", "test17", "vslash", n, 2, 64, 64, 0.2, 62))
    q = 5 * fr // 64 + 3  # a query block inside frame 5
    centre = q * 64 + 32
    assert v[:, q, centre - fr].all() and v[:, q, centre + fr].all(), "the slash one frame away"
    cols = v[:, :, : 8 * (n // 8)].reshape(2, v.shape[1], n // 8, 8).all(axis=3).all(axis=1)  # kept by every row
    assert 0 < cols.mean() < 0.3
    c = vc.case_mask(vc.Case("x", "test17", "cubetopk", n, 2, 64, 64, 0.1, 63))
    cube = c[:, q].reshape(2, nf // 2, 2, 6, 5, 4, 13)  # (head, frame pair, frame, cube row, 5, cube col, 13)
    kept = cube.any(axis=(2, 4, 6))
    assert np.array_equal(cube.all(axis=(2, 4, 6)), kept), "cubetopk keeps whole cubes"
    assert (kept.sum(axis=(1, 2, 3)) == round(0.1 * (nf // 2) * 24)).all()
    rt, p = divmod(centre, fr)
    assert kept[:, rt // 2, (p // 52) // 5, (p % 52) // 13].all(), "the query's own cube is among the top k"
