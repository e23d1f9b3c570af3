"""test19 (session 17, helper M10): the frozen list is its generator's output, disjoint from every earlier list,
covers test18's transfer axes plus the clock axis (one long-run twin per kernel of the packaged entries), uses only
test mask families, and every launch what-if is a valid configuration of its kernel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fgsim.validation import cases as vc

REPO = Path(__file__).resolve().parents[1]
EARLIER = ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5", "test6", "test7", "test8", "test9",
           "test10", "test11", "test12", "test13", "test14", "test15", "test16", "test17", "test18")


def test_test19_is_its_generator_output_disjoint_and_covers_the_axes() -> None:
    t19 = vc.load_case_list("test19")
    spec = importlib.util.spec_from_file_location("make_test19", REPO / "validation" / "cases" / "make_test19.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test19.csv").read_text(), "test19.csv differs (bytes)"
    assert 36 <= len(t19) <= 40 and sum(len(c.kernels) for c in t19) == 73 and "test19" in vc.SPLITS
    earlier = [vc.load_case_list(s) for s in EARLIER]
    vc.check_disjoint([*earlier, t19])
    before = [c for cl in earlier for c in cl]
    synth = [c for c in t19 if c.structure != "trace" and not (c.axis == "bench" and c.n_tokens == 32760)]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test19 repeats an N of another list"
    assert not {c.seed for c in t19 if c.structure != "trace"} & {c.seed for c in before}, "test19 repeats a seed"
    traces = {(c.trace, c.pass_index, c.layer) for c in t19 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    # only test mask families: none of calibration's
    fams = {c.structure for c in t19 if c.structure != "trace"}
    assert fams == set(vc.TEST19_STRUCTURES) and not fams & set(vc.CALIB_STRUCTURES)
    assert fams <= set(vc.TEST18_STRUCTURES), "test19's families are test families of earlier lists"
    assert {(c.head_dim, c.block_m) for c in t19 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t19} == {"bf16", "fp16"}
    cfg = [c for c in t19 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    for c in cfg:  # every what-if valid for its kernel (test17's a-028: block BLOCK_N 128 at BLOCK_M 64 did not launch)
        assert c.block_n in (16, 32, 64, 128) and c.num_warps in (4, 8), c.case_id
        assert c.kernels != ("block",) or c.block_m % c.block_n == 0, c.case_id
    assert {(c.persistent, c.programs_per_sm) for c in t19 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t19 if c.axis == "sm"} == {52, 116, 84}
    bench = [c for c in t19 if c.axis == "bench"]
    assert {c.kernels for c in bench} == {("fg",), ("block",), ("dense",)}
    assert all(set(c.option_overrides()) <= {"order"} for c in bench)
    assert {c.option_overrides().get("order", "natural") for c in bench if c.kernels == ("fg",)} == {"lpt", "natural"}
    for c in t19:  # every mask fits the harness's bound
        assert c.heads * -(-c.n_tokens // c.block_m) * c.n_tokens <= vc.MAX_MASK_ELEMS, c.case_id


def test_test19_clock_axis_is_one_long_twin_per_kernel() -> None:
    """The long-run twins repeat a short bench case exactly (mask, kernel, options): only the timing differs."""
    t19 = vc.load_case_list("test19")
    longs = vc.test19_long_ids(t19)
    assert longs == vc.test19_long_ids() and len(longs) == 3
    by_id = {c.case_id: c for c in t19}
    twins = [by_id[i] for i in longs]
    assert sorted(c.kernels[0] for c in twins) == ["block", "dense", "fg"]
    for t in twins:
        short = [c for c in t19 if c.case_id not in longs and c.axis == "bench" and c.seed == t.seed]
        assert len(short) == 1, t.case_id
        s = short[0]
        assert (s.structure, s.n_tokens, s.heads, s.density, s.kernels, s.options) == \
            (t.structure, t.n_tokens, t.heads, t.density, t.kernels, t.options), t.case_id
    assert vc.TEST19_LONG["target_ms"] >= 200 and vc.TEST19_LONG["rounds"] >= 5
