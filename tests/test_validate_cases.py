"""Validation cases: the committed lists are the generators' output, disjoint; masks regenerate; scoring per axis."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fgsim.validation import cases as vc
from fgsim.validation.measure import RESULT_FIELDS
from fgsim.validation.report import metrics, predict_rows, score, select_rows, within_case_spearman

REPO = Path(__file__).resolve().parents[1]


def test_committed_case_lists_are_the_generators_output_and_disjoint() -> None:
    lists = {s: vc.load_case_list(s) for s in ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5",
                                               "test6", "test7")}
    for s, cl in lists.items():
        gen = vc.generate(s, str(REPO / "traces"))
        assert [vc.case_row(c) for c in cl] == [vc.case_row(c) for c in gen], f"{s}.csv differs from its generator"
    vc.check_disjoint([lists["calib"], lists["dev"], lists["test"], lists["test3"], lists["dev4"], lists["test4"],
                       lists["dev5"], lists["test5"], lists["test6"], lists["test7"]])
    t8 = vc.load_case_list("test8")
    assert [vc.case_row(c) for c in t8] == [vc.case_row(c) for c in vc.generate("test8")], "test8.csv differs"
    # the frozen file (committed 2ef4e01, before the split existed) byte for byte, and its script agrees
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_test8", REPO / "validation" / "cases" / "make_test8.py")
    gen8 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen8)  # type: ignore[union-attr]
    assert gen8.render() == (REPO / "validation" / "cases" / "test8.csv").read_text(), "test8.csv differs (bytes)"
    assert len(t8) == 43 and sum(len(c.kernels) for c in t8) == 75 and "test8" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8])
    before8 = [c for cl in lists.values() for c in cl]
    assert not {c.n_tokens for c in t8} & {c.n_tokens for c in before8}, "test8 repeats an N of another list"
    assert not {c.seed for c in t8} & {c.seed for c in before8}, "test8 repeats a seed of another list"
    assert {(c.head_dim, c.block_m) for c in t8 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t8} == {"bf16", "fp16"} and {c.structure for c in t8} <= set(vc.TEST_STRUCTURES)
    assert sum(len(c.kernels) for c in t8) <= 80
    t9 = vc.load_case_list("test9")
    assert [vc.case_row(c) for c in t9] == [vc.case_row(c) for c in vc.generate("test9")], "test9.csv differs"
    spec9 = importlib.util.spec_from_file_location("make_test9", REPO / "validation" / "cases" / "make_test9.py")
    gen9 = importlib.util.module_from_spec(spec9)
    spec9.loader.exec_module(gen9)  # type: ignore[union-attr]
    assert gen9.render() == (REPO / "validation" / "cases" / "test9.csv").read_text(), "test9.csv differs (bytes)"
    assert len(t9) == 47 and sum(len(c.kernels) for c in t9) == 85 and "test9" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8, t9])
    before9 = before8 + t8
    assert not {c.n_tokens for c in t9} & {c.n_tokens for c in before9}, "test9 repeats an N of another list"
    assert not {c.seed for c in t9} & {c.seed for c in before9}, "test9 repeats a seed of another list"
    assert {(c.head_dim, c.block_m) for c in t9 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t9} == {"bf16", "fp16"} and {c.structure for c in t9} <= set(vc.TEST_STRUCTURES)
    # every transfer axis: BLOCK_N 32/64/128, stages 2-4, warps 4/8, persistent off / 1 / 2 per SM, 16..132 SMs
    cfg9 = [c for c in t9 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg9} == {32, 64, 128} and {c.num_stages for c in cfg9} == {2, 3, 4}
    assert {c.num_warps for c in cfg9} == {4, 8}
    assert {(c.persistent, c.programs_per_sm) for c in t9 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert min(c.sm_count for c in t9 if c.axis == "sm") == 16 and max(c.sm_count for c in t9) == 132
    _check_test10(lists, t8, t9)
    _check_test11(lists, t8, t9)
    _check_test12(lists, t8, t9)
    _check_test13(lists, t8, t9)
    _check_test14(lists, t8, t9)
    _check_test15(lists, t8, t9)
    t7 = lists["test7"]
    before7 = [c for s in ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5", "test6") for c in lists[s]]
    assert not {c.n_tokens for c in t7} & {c.n_tokens for c in before7}, "test7 repeats an N of another list"
    assert not {c.seed for c in t7} & {c.seed for c in before7}, "test7 repeats a seed of another list"
    assert {(c.head_dim, c.block_m) for c in t7 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t7} == {"bf16", "fp16"} and {c.structure for c in t7} <= set(vc.TEST_STRUCTURES)
    assert sum(len(c.kernels) for c in t7) <= 80
    t6 = lists["test6"]
    before6 = [c for s in ("calib", "dev", "test", "test3", "dev4", "test4", "dev5", "test5") for c in lists[s]]
    assert not {c.n_tokens for c in t6} & {c.n_tokens for c in before6}, "test6 repeats an N of another list"
    assert not {c.seed for c in t6} & {c.seed for c in before6}, "test6 repeats a seed of another list"
    assert {(c.block_n, c.num_stages, c.num_warps) for c in t6 if c.axis == "config" and c.block_n
            and c.head_dim == 128 and c.block_m == 64 and c.kernels == ("fg",)} == set(vc.CONFIG_GRID)
    assert {(c.persistent, c.programs_per_sm) for c in t6 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t6 if c.axis == "sm"} == set(vc.TEST4_SM_PARTITIONS)
    assert {(c.head_dim, c.block_m) for c in t6 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t6} == {"bf16", "fp16"} and {c.structure for c in t6} <= set(vc.TEST_STRUCTURES)
    assert sum(len(c.kernels) for c in t6) <= 120
    t5 = lists["test5"]
    before5 = [c for s in ("calib", "dev", "test", "test3", "dev4", "test4", "dev5") for c in lists[s]]
    assert not {c.n_tokens for c in t5} & {c.n_tokens for c in before5}, "test5 repeats an N of another list"
    assert not {c.seed for c in t5} & {c.seed for c in before5}, "test5 repeats a seed of another list"
    assert {(c.block_n, c.num_stages, c.num_warps) for c in t5 if c.axis == "config" and c.block_n} == \
        set(vc.CONFIG_GRID)
    assert {(c.persistent, c.programs_per_sm) for c in t5 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t5 if c.axis == "sm"} == set(vc.TEST4_SM_PARTITIONS)
    assert {(c.head_dim, c.block_m) for c in t5 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t5} == {"bf16", "fp16"} and {c.structure for c in t5} <= set(vc.TEST_STRUCTURES)
    t4 = lists["test4"]
    before = [c for s in ("calib", "dev", "test", "test3", "dev4") for c in lists[s]]
    assert not {c.n_tokens for c in t4} & {c.n_tokens for c in before}, "test4 repeats an N of another list"
    assert {(c.block_n, c.num_stages, c.num_warps) for c in t4 if c.axis == "config" and c.block_n} == \
        set(vc.CONFIG_GRID)
    assert {(c.persistent, c.programs_per_sm) for c in t4 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t4 if c.axis == "sm"} == set(vc.TEST4_SM_PARTITIONS)
    assert {(c.head_dim, c.block_m) for c in t4 if c.axis == "tuned"} == set(vc.DM)
    assert {c.dtype for c in t4} == {"bf16", "fp16"}
    assert sum(len(c.kernels) for c in t4) <= 150
    t3 = lists["test3"]
    earlier = [c for s in ("calib", "dev", "test") for c in lists[s]]
    assert not {c.n_tokens for c in t3} & {c.n_tokens for c in earlier}, "test3 repeats an N of another list"
    assert not {c.heads for c in t3} & {c.heads for c in earlier}, "test3 repeats a head count of another list"
    assert {(c.block_n, c.num_stages, c.num_warps) for c in t3 if c.axis == "config"} == set(vc.CONFIG_GRID)
    assert {c.sm_count for c in t3 if c.axis == "sm"} == set(vc.TEST_SM_PARTITIONS)
    assert {c.structure for c in lists["calib"]} == set(vc.CALIB_STRUCTURES)
    assert {c.structure for c in lists["test"]} == set(vc.TEST_STRUCTURES)
    axes = {c.axis for c in lists["test"]}
    assert axes == {"tuned", "config", "sm", "dtype", "trace"}
    grid = {(c.block_n, c.num_stages, c.num_warps) for c in lists["test"] if c.axis == "config"}
    assert grid == set(vc.CONFIG_GRID)
    assert {c.sm_count for c in lists["test"] if c.axis == "sm"} == set(vc.TEST_SM_PARTITIONS)


def _check_test10(lists: dict[str, list[vc.Case]], t8: list[vc.Case], t9: list[vc.Case]) -> None:
    """test10 (revision 8's frozen list): the generator's bytes, disjoint from every earlier list, every transfer
    axis, the exp_poly on / off twins and the dense-workload rows."""
    import importlib.util

    t10 = vc.load_case_list("test10")
    assert [vc.case_row(c) for c in t10] == [vc.case_row(c) for c in vc.generate("test10")], "test10.csv differs"
    spec = importlib.util.spec_from_file_location("make_test10", REPO / "validation" / "cases" / "make_test10.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test10.csv").read_text(), "test10.csv differs (bytes)"
    assert len(t10) == 46 and sum(len(c.kernels) for c in t10) == 79 and "test10" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8, t9, t10])
    before = [c for cl in lists.values() for c in cl] + t8 + t9
    assert not {c.n_tokens for c in t10} & {c.n_tokens for c in before}, "test10 repeats an N of another list"
    assert not {c.seed for c in t10} & {c.seed for c in before}, "test10 repeats a seed of another list"
    assert {(c.head_dim, c.block_m) for c in t10 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t10} == {"bf16", "fp16"} and {c.structure for c in t10} <= set(vc.TEST_STRUCTURES)
    cfg = [c for c in t10 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    assert {c.num_warps for c in cfg} == {4, 8}
    assert {(c.persistent, c.programs_per_sm) for c in t10 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t10 if c.axis == "sm"} == {24, 32, 80, 104, 132}
    # exp_poly: every twin shares its entry's case (mask, shape) and differs only by the option
    twins = [c for c in t10 if "exp_poly" in c.option_overrides()]
    assert len(twins) == 8 and {c.option_overrides()["exp_poly"] for c in twins} == {0, 0.125, 0.25, 0.5}
    for c in twins:
        base = [b for b in t10 if b.seed == c.seed and not b.options and c.kernels[0] in b.kernels]
        assert base and base[0].n_tokens == c.n_tokens and base[0].head_dim == c.head_dim, c.case_id
    dense_wl = [c for c in t10 if c.density == 1.0 and c.n_tokens == 12544]
    assert {k for c in dense_wl for k in c.kernels} == {"fg", "dense"} and {c.block_m for c in dense_wl} == {64, 128}


def _check_test12(lists: dict[str, list[vc.Case]], t8: list[vc.Case], t9: list[vc.Case]) -> None:
    """test12 (revision 10's frozen list): the generator's bytes, disjoint from every earlier list (ids, N, seeds,
    trace entries), the two new mask families, every transfer axis, the table's fg D=128 M=128 entry with its tl
    kernel beside it at three densities."""
    import importlib.util
    from dataclasses import replace

    t10, t11, t12 = vc.load_case_list("test10"), vc.load_case_list("test11"), vc.load_case_list("test12")
    gen12 = [replace(c, trace=vc.repo_path(c.trace)) for c in vc.generate("test12")]
    assert [vc.case_row(c) for c in t12] == [vc.case_row(c) for c in gen12], "test12.csv differs"
    spec = importlib.util.spec_from_file_location("make_test12", REPO / "validation" / "cases" / "make_test12.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test12.csv").read_text(), "test12.csv differs (bytes)"
    assert len(t12) == 44 and sum(len(c.kernels) for c in t12) == 82 and "test12" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8, t9, t10, t11, t12])
    before = [c for cl in lists.values() for c in cl] + t8 + t9 + t10 + t11
    synth = [c for c in t12 if c.structure != "trace"]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test12 repeats an N of another list"
    assert not {c.seed for c in synth} & {c.seed for c in before}, "test12 repeats a seed of another list"
    traces = {(c.trace, c.pass_index, c.layer) for c in t12 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {"framewin", "dilated"} <= {c.structure for c in t12} <= set(vc.TEST12_STRUCTURES)
    assert not {"framewin", "dilated"} & {c.structure for c in before}
    assert {(c.head_dim, c.block_m) for c in t12 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t12} == {"bf16", "fp16"}
    cfg = [c for c in t12 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    assert {c.num_warps for c in cfg} == {4, 8}
    assert {(c.persistent, c.programs_per_sm) for c in t12 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t12 if c.axis == "sm"} == {24, 72, 132, 40, 112}
    tl = [c for c in t12 if c.options == vc.IMPL_TL]
    assert len(tl) == 3 and all(any(b.seed == c.seed and not b.options and b.kernels == ("fg",) for b in t12) for c in tl)
    # the new families keep about the density asked for (within a factor 3 above the sink / diagonal floor)
    c = next(c for c in t12 if c.structure == "dilated" and c.density == 0.2)
    assert 0.1 < float(vc.case_mask(c).mean()) < 0.4


def _check_test13(lists: dict[str, list[vc.Case]], t8: list[vc.Case], t9: list[vc.Case]) -> None:
    """test13 (calib11's frozen list): the generator's bytes, disjoint from every earlier list (N and seeds outside
    the benchmark shapes, trace entries), every transfer axis, and the bench axis: the Gluon entry with the list
    schedule on launch-ordered and natural indices beside the walk on the launch-ordered one, on the same masks."""
    import importlib.util
    import json
    from dataclasses import replace

    earlier = [vc.load_case_list(s) for s in ("test10", "test11", "test12")]
    t13 = vc.load_case_list("test13")
    gen13 = [replace(c, trace=vc.repo_path(c.trace)) for c in vc.generate("test13")]
    assert [vc.case_row(c) for c in t13] == [vc.case_row(c) for c in gen13], "test13.csv differs"
    spec = importlib.util.spec_from_file_location("make_test13", REPO / "validation" / "cases" / "make_test13.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test13.csv").read_text(), "test13.csv differs (bytes)"
    assert len(t13) == 44 and sum(len(c.kernels) for c in t13) == 78 and "test13" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8, t9, *earlier, t13])
    before = [c for cl in lists.values() for c in cl] + t8 + t9 + [c for cl in earlier for c in cl]
    synth = [c for c in t13 if c.structure != "trace" and c.axis != "bench"]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test13 repeats an N of another list"
    assert not {c.seed for c in t13 if c.structure != "trace"} & {c.seed for c in before}, "test13 repeats a seed"
    traces = {(c.trace, c.pass_index, c.layer) for c in t13 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {(c.head_dim, c.block_m) for c in t13 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t13} == {"bf16", "fp16"} and {c.structure for c in t13} <= set(vc.TEST12_STRUCTURES)
    cfg = [c for c in t13 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    assert {c.num_warps for c in cfg} == {4, 8}
    assert {(c.persistent, c.programs_per_sm) for c in t13 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t13 if c.axis == "sm"} == {32, 100, 56}
    bench = [c for c in t13 if c.axis == "bench"]
    assert {(c.n_tokens, c.heads) for c in bench} == {(32760, 12), (33272, 12), (75600, 40)}
    sched = {c.case_id: (json.loads(c.options).get("gluon", {}).get("schedule"), vc.case_order(c)) for c in bench}
    assert sorted(set(sched.values()), key=str) == sorted({("list", "lpt"), ("list", "natural"), ("walk", "lpt"),
                                                           (None, "lpt")}, key=str)
    for c in bench:  # every launch-ordered list row has its walk twin on the same mask
        if sched[c.case_id] == ("list", "lpt"):
            assert any(b.seed == c.seed and sched[b.case_id] == ("walk", "lpt") for b in bench)


def _check_test14(lists: dict[str, list[vc.Case]], t8: list[vc.Case], t9: list[vc.Case]) -> None:
    """test14 (revision 10 of session 13): the generator's bytes, disjoint from every earlier list (N and seeds outside
    the benchmark shapes, trace entries), every transfer axis, the benchmark generator's masks as a family, and the
    bench axis on them: list launch-ordered / natural and walk launch-ordered twins on the same masks."""
    import importlib.util
    import json
    from dataclasses import replace

    earlier = [vc.load_case_list(s) for s in ("test10", "test11", "test12", "test13")]
    t14 = vc.load_case_list("test14")
    gen14 = [replace(c, trace=vc.repo_path(c.trace)) for c in vc.generate("test14")]
    assert [vc.case_row(c) for c in t14] == [vc.case_row(c) for c in gen14], "test14.csv differs"
    spec = importlib.util.spec_from_file_location("make_test14", REPO / "validation" / "cases" / "make_test14.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test14.csv").read_text(), "test14.csv differs (bytes)"
    assert len(t14) == 44 and sum(len(c.kernels) for c in t14) == 78 and "test14" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8, t9, *earlier, t14])
    before = [c for cl in lists.values() for c in cl] + t8 + t9 + [c for cl in earlier for c in cl]
    synth = [c for c in t14 if c.structure != "trace" and c.axis != "bench"]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test14 repeats an N of another list"
    assert not {c.seed for c in t14 if c.structure != "trace"} & {c.seed for c in before}, "test14 repeats a seed"
    traces = {(c.trace, c.pass_index, c.layer) for c in t14 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {(c.head_dim, c.block_m) for c in t14 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t14} == {"bf16", "fp16"} and {c.structure for c in t14} <= set(vc.TEST14_STRUCTURES)
    assert not {c.structure for c in before} & set(vc.TORCH_STRUCTURES), "the benchmark masks were in a list before"
    cfg = [c for c in t14 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    assert {c.num_warps for c in cfg} == {4, 8}
    assert {(c.persistent, c.programs_per_sm) for c in t14 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t14 if c.axis == "sm"} == {48, 116, 72}
    bench = [c for c in t14 if c.axis == "bench"]
    assert {(c.n_tokens, c.heads) for c in bench} == {(32760, 12), (33272, 12), (32760, 20)}
    assert {c.structure for c in bench} == set(vc.TORCH_STRUCTURES)
    sched = {c.case_id: (json.loads(c.options).get("gluon", {}).get("schedule"), vc.case_order(c)) for c in bench}
    assert sorted(set(sched.values()), key=str) == sorted({("list", "lpt"), ("list", "natural"), ("walk", "lpt"),
                                                           (None, "lpt")}, key=str)
    for c in bench:  # every launch-ordered list row has its natural-order twin on the same mask
        if sched[c.case_id] == ("list", "lpt"):
            assert any(b.seed == c.seed and sched[b.case_id] == ("list", "natural") for b in bench)


def _check_test15(lists: dict[str, list[vc.Case]], t8: list[vc.Case], t9: list[vc.Case]) -> None:
    """test15 (session 14): the generator's bytes, disjoint from every earlier list (N and seeds outside the benchmark
    shapes, trace entries), every transfer axis, the two new mask families, the dense / block D=128 M=128 entries
    and the fg Gluon entry on the bench axis."""
    import importlib.util
    import json
    from dataclasses import replace

    earlier = [vc.load_case_list(s) for s in ("test10", "test11", "test12", "test13", "test14")]
    t15 = vc.load_case_list("test15")
    gen15 = [replace(c, trace=vc.repo_path(c.trace)) for c in vc.generate("test15")]
    assert [vc.case_row(c) for c in t15] == [vc.case_row(c) for c in gen15], "test15.csv differs"
    spec = importlib.util.spec_from_file_location("make_test15", REPO / "validation" / "cases" / "make_test15.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test15.csv").read_text(), "test15.csv differs (bytes)"
    assert len(t15) == 42 and sum(len(c.kernels) for c in t15) == 76 and "test15" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8, t9, *earlier, t15])
    before = [c for cl in lists.values() for c in cl] + t8 + t9 + [c for cl in earlier for c in cl]
    synth = [c for c in t15 if c.structure != "trace" and not (c.axis == "bench" and c.n_tokens in (32760, 33272))]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test15 repeats an N of another list"
    assert not {c.seed for c in t15 if c.structure != "trace"} & {c.seed for c in before}, "test15 repeats a seed"
    traces = {(c.trace, c.pass_index, c.layer) for c in t15 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {(c.head_dim, c.block_m) for c in t15 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t15} == {"bf16", "fp16"} and {c.structure for c in t15} <= set(vc.TEST15_STRUCTURES)
    assert not {c.structure for c in before} & set(vc.TEST15_NEW_STRUCTURES), "a new family was in a list before"
    assert set(vc.TEST15_NEW_STRUCTURES) <= {c.structure for c in t15 if c.axis == "tuned"}
    cfg = [c for c in t15 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    assert {c.num_warps for c in cfg} == {4, 8}
    assert {(c.persistent, c.programs_per_sm) for c in t15 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t15 if c.axis == "sm"} == {40, 124, 88}
    bench = [c for c in t15 if c.axis == "bench"]
    contig = [c for c in bench if c.kernels != ("fg",)]
    assert {c.kernels for c in contig} == {("block",), ("dense",)}
    assert all((c.head_dim, c.block_m) == (128, 128) for c in bench)
    fg = [c for c in bench if c.kernels == ("fg",)]
    sched = {c.case_id: (json.loads(c.options).get("gluon", {}).get("schedule"), vc.case_order(c)) for c in fg}
    assert set(sched.values()) == {("list", "lpt"), ("list", "natural"), ("walk", "lpt")}


def test_radial_and_causalwin_masks() -> None:
    """The test15 families: deterministic per seed, more keys at a higher density, radial's window shrinks with the
    frame distance (a query block's own frame keeps the most keys), causalwin keeps frame 0 and no later frame."""
    n, fr = 1560 * 6, 1560
    for fam in vc.TEST15_NEW_STRUCTURES:
        lo = vc.case_mask(vc.Case("x", "test15", fam, n, 2, 64, 64, 0.05, 41))
        hi = vc.case_mask(vc.Case("x", "test15", fam, n, 2, 64, 64, 0.4, 41))
        assert np.array_equal(lo, vc.case_mask(vc.Case("x", "test15", fam, n, 2, 64, 64, 0.05, 41)))
        assert hi.mean() > lo.mean() > 0
    r = vc.case_mask(vc.Case("x", "test15", "radial", n, 1, 64, 64, 0.3, 42))
    q = 3 * fr // 64 + 12  # a query block inside frame 3
    per_frame = r[0, q].reshape(6, fr).sum(1)
    assert per_frame.argmax() == 3 and per_frame[3] > per_frame[5] and per_frame[3] > per_frame[0]
    c = vc.case_mask(vc.Case("x", "test15", "causalwin", n, 1, 64, 64, 0.3, 43))
    per_frame = c[0, q].reshape(6, fr).sum(1)
    assert per_frame[0] == fr and per_frame[3] > 0 and per_frame[4] == per_frame[5] == 0


def test_wanwin_masks_are_fgattns_benchmark_masks() -> None:
    """The ``wanwin`` / ``wanwin-text`` families are fgattn.masks.window_mask (+ with_text) at the case's seed."""
    import torch
    from fgattn.masks import window_mask, with_text

    c = vc.Case("x", "test14", "wanwin-text", 1600, 2, 64, 64, 0.2, 31)
    m = vc.case_mask(c)
    ref = with_text(window_mask(1, 2, 1400, 64, 0.2, device="cpu", seed=31), 200, 64)[0].numpy()
    assert m.shape == (2, 25, 1600) and np.array_equal(m, ref)
    assert m[:, :, 1400:].all() and m[:, -1].all() and m[:, :21, :64].all()  # text keys, text rows, sinks
    other = vc.case_mask(replace_seed(c, 32))
    assert not np.array_equal(m, other), "the seed must move the per-head windows"
    v = vc.case_mask(vc.Case("x", "test14", "wanwin", 1600, 2, 64, 64, 0.2, 31))
    assert np.array_equal(v, window_mask(1, 2, 1600, 64, 0.2, device="cpu", seed=31)[0].numpy())
    assert abs(float(torch.from_numpy(v).float().mean()) - 0.2) <= 0.05  # bisected (coarse at this small N)


def replace_seed(c: vc.Case, seed: int) -> vc.Case:
    from dataclasses import replace

    return replace(c, seed=seed)


def _check_test11(lists: dict[str, list[vc.Case]], t8: list[vc.Case], t9: list[vc.Case]) -> None:
    """test11 (revision 9's frozen list): the generator's bytes, disjoint from every earlier list (N, seeds, trace
    entries), every transfer axis, the fg D=128 M=128 entry untouched (the table's entry) with its tl kernel beside it."""
    import importlib.util

    t10, t11 = vc.load_case_list("test10"), vc.load_case_list("test11")
    from dataclasses import replace

    gen11 = [replace(c, trace=vc.repo_path(c.trace)) for c in vc.generate("test11")]  # as load_case_list reads it
    assert [vc.case_row(c) for c in t11] == [vc.case_row(c) for c in gen11], "test11.csv differs"
    spec = importlib.util.spec_from_file_location("make_test11", REPO / "validation" / "cases" / "make_test11.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    assert gen.render() == (REPO / "validation" / "cases" / "test11.csv").read_text(), "test11.csv differs (bytes)"
    assert len(t11) == 45 and sum(len(c.kernels) for c in t11) == 83 and "test11" in vc.SPLITS
    vc.check_disjoint([*lists.values(), t8, t9, t10, t11])
    before = [c for cl in lists.values() for c in cl] + t8 + t9 + t10
    synth = [c for c in t11 if c.structure != "trace"]
    assert not {c.n_tokens for c in synth} & {c.n_tokens for c in before}, "test11 repeats an N of another list"
    assert not {c.seed for c in synth} & {c.seed for c in before}, "test11 repeats a seed of another list"
    traces = {(c.trace, c.pass_index, c.layer) for c in t11 if c.structure == "trace"}
    assert len(traces) == 2 and not traces & {(c.trace, c.pass_index, c.layer) for c in before}
    assert {(c.head_dim, c.block_m) for c in t11 if c.axis in ("tuned", "dtype")} == set(vc.DM)
    assert {c.dtype for c in t11} == {"bf16", "fp16"} and {c.structure for c in t11} <= set(vc.TEST_STRUCTURES)
    cfg = [c for c in t11 if c.axis == "config" and c.block_n]
    assert {c.block_n for c in cfg} == {32, 64, 128} and {c.num_stages for c in cfg} == {2, 3, 4}
    assert {c.num_warps for c in cfg} == {4, 8}
    assert {(c.persistent, c.programs_per_sm) for c in t11 if c.persistent >= 0} == set(vc.PERSISTENT_SETTINGS)
    assert {c.sm_count for c in t11 if c.axis == "sm"} == {16, 32, 64, 96, 132}
    entry = [c for c in t11 if c.kernels == ("fg",) and (c.head_dim, c.block_m) == (128, 128) and c.axis == "tuned"]
    assert len(entry) == 3 and not any(c.overridden for c in entry)
    tl = [c for c in t11 if c.options == vc.IMPL_TL]
    assert len(tl) == 2 and all(any(e.seed == c.seed for e in entry) for c in tl)


def test_masks_regenerate_exactly_and_counts(rng: np.random.Generator) -> None:
    for st in vc.STRUCTURES:
        c = vc.Case("x", "dev", st, 700, 2, 64, 64, float(rng.uniform(0.05, 0.9)), int(rng.integers(1 << 40)))
        m1, m2 = vc.case_mask(c), vc.case_mask(c)
        assert m1.shape == (2, 11, 700) and np.array_equal(m1, m2)
        cnt = vc.case_counts(c, (1, 64), mask=m1)
        assert np.array_equal(cnt[1], m1.sum(-1))
        coarse = np.pad(m1, ((0, 0), (0, 0), (0, 4))).reshape(2, 11, -1, 64).any(-1).sum(-1)
        assert np.array_equal(cnt[64], coarse)


def test_uniform_blocks_keep_whole_64_key_blocks() -> None:
    c = vc.Case("x", "calib", "uniform-blocks", 1024, 2, 64, 64, 0.2, 5)
    m = vc.case_mask(c).reshape(2, 16, 16, 64)
    assert np.all(m.all(-1) == m.any(-1))


def _fake_rows(cases: list[vc.Case], kernels: tuple[str, ...] = ("fg", "dense")) -> list[dict[str, str]]:
    rows = []
    for c in cases:
        for k in kernels:
            bn = c.block_n or (64 if k == "fg" else 128)
            r = {"kind": "kernel", "case_id": c.case_id, "split": c.split, "axis": c.axis, "structure": c.structure,
                 "n_tokens": c.n_tokens, "heads": c.heads, "head_dim": c.head_dim, "block_m": c.block_m,
                 "density": c.density, "seed": c.seed, "dtype": c.dtype, "sm_count": c.sm_count, "kernel": k,
                 "gran_n": 1, "block_n": bn, "num_warps": c.num_warps or (4 if c.block_m == 64 else 8),
                 "num_stages": c.num_stages or 3, "launch_extra": "{}", "measured_ms": 1.0, "status": "ok",
                 "gpu_name": "NVIDIA H200", "gpu_key": "h200"}
            rows.append({f: str(r.get(f, "")) for f in RESULT_FIELDS})
    return rows


def test_score_per_axis_from_fake_measurements() -> None:
    cs = [vc.Case(f"t{i}", "test", "window3d", 1024, 2, 64, 64, 0.3, 100 + i, axis="config", block_n=bn,
                  num_stages=st, num_warps=4) for i, (bn, st) in enumerate(((32, 2), (64, 3), (64, 2), (32, 4)))]
    cs.append(vc.Case("t9", "test", "colstripes", 1024, 2, 64, 64, 0.2, 200, axis="sm", sm_count=16))
    rows = _fake_rows(cs)
    pred = predict_rows(rows)
    assert np.all(pred > 0)
    for r, p in zip(rows, pred, strict=True):
        r["measured_ms"] = str(p * 1e3 * 1.05)
    sc = score(rows, pred)
    assert set(sc) == {"config", "sm"}
    assert sc["config"]["fg"]["mape"] == pytest.approx(100 * (1 - 1 / 1.05), rel=1e-6)
    assert sc["config"]["within_case_fg"]["mean"] == pytest.approx(1.0)
    meas = np.array([float(r["measured_ms"]) for r in rows])
    assert within_case_spearman(rows, -meas, meas)["mean"] == pytest.approx(-1.0)


def test_metrics_and_select_rows() -> None:
    m = metrics(np.array([1.1, 2.0, 2.7]), np.array([1.0, 2.0, 3.0]))
    assert m["max_ape"] == pytest.approx(10.0) and m["spearman"] == pytest.approx(1.0)
    base = {"gpu_key": "h200", "case_id": "c", "kernel": "fg", "block_n": "64", "num_stages": "3", "trace": ""}
    rows = [dict(base, bench="do_bench", date="2"), dict(base, bench="cuda-graph of 5 calls", date="1")]
    kept, sup = select_rows(rows)
    assert sup == 1 and kept[0]["date"] == "1"


def test_committed_case_list_files_parse(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    with p.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=vc.CASE_FIELDS)
        w.writeheader()
        for c in vc.tiny_cases():
            w.writerow(vc.case_row(c))
    assert vc.load_case_list(str(p)) == vc.tiny_cases()


def test_case_options_override_the_entry_and_travel_through_the_lists(tmp_path: Path) -> None:
    """A calibration twin's launch-option overrides (``options``) reach the launched config, are written only by
    lists that use them, read back, and a malformed value fails naming the case."""
    import sys

    import torch

    sys.path.insert(0, str(REPO / "kernels"))
    from fgsim.errors import FgsimError
    from fgsim.validation.measure import _config

    twin = [c for c in vc.load_case_list("calib") if c.options]
    # revision 6's tail_branch / maxnreg twins, revision 9's implementation and exp_poly twins (calib10), calib11's
    # list / walk x launch-ordered / natural Gluon rows (4 masks) and one launch-ordered tl row, calib14's stg /
    # tma_sel row-end twins at those 4 masks (session 15; the packaged-entry cases c-116..c-124 carry no option)
    assert {c.kernels for c in twin} == {("dense",), ("block",), ("fg",)} and len(twin) == 38 + 8
    c14 = [c for c in twin if '"epilogue"' in c.options]
    assert [c.case_id for c in c14] == [f"c-{i}" for i in range(125, 133)]
    assert {c.option_overrides()["gluon"]["epilogue"] for c in c14} == {"stg", "tma_sel"}
    c11 = [c for c in twin if c.axis == "bench" and c not in c14]
    assert len(c11) == 17 and {vc.case_order(c) for c in c11} == {"lpt", "natural"}
    assert {c.structure for c in c11} == {"uniform", "uniform-text"}
    base = vc.Case("x-7", "tiny", "uniform", 256, 1, 128, 64, 0.5, 1, kernels=("dense",))
    q = torch.zeros(1, 1, 256, 128)
    from dataclasses import replace

    off = _config("dense", q, replace(base, options='{"tail_branch": false, "maxnreg": null}'))
    assert off.extra["tail_branch"] is False and off.extra["maxnreg"] is None and "validation override" in off.source
    assert _config("dense", q, base).extra.get("tail_branch") is True  # the final table's dense entry
    with pytest.raises(FgsimError, match="case x-7: options must be a JSON object"):
        _config("dense", q, replace(base, options="[1]"))
    assert vc.list_fields([base]) == vc.CASE_FIELDS and vc.list_fields(twin)[-1] == "options"
    p = tmp_path / "l.csv"
    with p.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=vc.list_fields(twin), lineterminator="\n")
        w.writeheader()
        for c in twin:
            w.writerow(vc.case_row(c))
    assert vc.load_case_list(str(p)) == twin
    # the index's row order is a harness option: not in the launched config, unknown orders named
    lpt = replace(base, kernels=("fg",), options=vc.gluon_options("list", "lpt"))
    assert vc.case_order(lpt) == "lpt" and vc.case_order(base) == "natural"
    assert "order" not in _config("fg", q, lpt).extra
    with pytest.raises(FgsimError, match="case x-7: options order must be one of"):
        vc.case_order(replace(base, options='{"order": "random"}'))
    with pytest.raises(FgsimError, match="gluon_options"):
        vc.gluon_options("lpt", "list")


def test_frozen_list_main_writes_and_checks(tmp_path, capsys):
    """The shared generator command line: writes the list, --check passes on it and fails once a byte differs."""
    cases = vc.generate("test10")[:3]
    text = vc.render_case_list(cases, vc.list_fields(cases))
    out = tmp_path / "t.csv"
    assert vc.frozen_list_main(out, text, len(cases), "t", []) == 0 and out.read_text() == text
    assert vc.frozen_list_main(out, text, len(cases), "t", ["--check"]) == 0
    out.write_text(text.replace("\n", "\r\n", 1))
    assert vc.frozen_list_main(out, text, len(cases), "t", ["--check"]) == 1
    assert "DIFFERS" in capsys.readouterr().out
    assert vc.frozen_list_main(tmp_path / "missing.csv", text, 3, "t", ["--check"]) == 1


def test_uniform_text_masks_keep_text_keys_and_text_rows_whole() -> None:
    """calib11's uniform-text family: every query keeps the last min(512, N/8) keys, the text query blocks keep every
    key, the video part keeps iid keys at about the density asked for."""
    c = vc.Case("x-8", "tiny", "uniform-text", 4096, 2, 64, 64, 0.1, 17)
    m = vc.case_mask(c)
    text0 = 4096 - 512
    assert m[:, :, text0:].all() and m[:, text0 // 64:, :].all()
    video = m[:, : text0 // 64, :text0]
    assert 0.09 < float(video.mean()) < 0.11
    assert not np.array_equal(video[0], video[1])  # per-head randomness


def test_harness_builds_and_records_the_launch_order_a_case_asks_for(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A case with options ``order: lpt`` is timed on an index built with fgattn's launch order, and its row records
    ``"order": "lpt"`` in launch_extra (what the model reads); the natural twin neither (interpreter, tiny case)."""
    import json
    import sys

    sys.path.insert(0, str(REPO / "kernels"))
    import fgattn

    from fgsim.model.assemble import walks_lpt
    from fgsim.validation.measure import measure_cases
    from fgsim.validation.report import row_config

    seen: list[bool] = []
    real = fgattn.build_index

    def spy(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        seen.append(bool(kw.get("order", False)))
        return real(*a, **kw)

    monkeypatch.setattr(fgattn, "build_index", spy)
    base = vc.Case("x-9", "tiny", "window3d", 384, 2, 64, 64, 0.5, 12, kernels=("fg",), dtype="fp16")
    from dataclasses import replace

    cases = [replace(base, options='{"order": "lpt"}'), replace(base, case_id="x-10")]
    rows = measure_cases(cases, tmp_path / "m.csv", rounds=1, progress=False)
    assert seen == [True, False]
    ex = [json.loads(r["launch_extra"]) for r in rows]
    assert ex[0].get("order") == "lpt" and "order" not in ex[1]
    cfgs = [row_config({k: str(v) for k, v in r.items()}) for r in rows]
    assert walks_lpt(cfgs[0]) and not walks_lpt(cfgs[1])
