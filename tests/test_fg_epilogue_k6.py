"""Session 14, K6: the fg row end without the long-row cost.  ``extra.gluon.epilogue: "tma_sel"`` (K4's ``"tma"``
with the empty row zeroed by a select: ``gluon_fg`` RCP 2), ``"auto:SHORT:TILES"`` (the short-row row end only for
launches whose list plan has at most TILES executed tiles per row), the benchmark's ``--bench-densities-at`` and
the crossover fit (kernels/tools/epilogue_crossover.py).  CPU only, seeded."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

import epilogue_crossover as ec  # noqa: E402
from fgattn import build_index, gluon_fg, gluon_fg_list, launch  # noqa: E402

PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
AT_300AD25 = ROOT / "kernels" / "logs" / "launch_configs-at-300ad25.json"  # the table before the fg tma_sel adoption (s15)
CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-epilogue-tma-sel.json"
KEY = ("fg", "h200", 128, 128, 1)
LIST = {"form": "ws2", "pipeline": 1, "fence": False, "schedule": "list"}


def test_tma_sel_constexprs_and_table_validation() -> None:
    base = gluon_fg.check_ws2_knobs("ws2", pipeline=1)
    assert gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue="tma_sel") == {**base, "TMA_O": True,
                                                                                "OFFS_AHEAD": True, "RCP": 2}
    assert gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue="tma")["RCP"] is True  # run 12's binary: unchanged
    assert gluon_fg_list._constexprs("tma_sel")["RCP"] == 2
    launch.check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": {**LIST, "epilogue": "tma_sel"}}, "t.json")
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg: epilogue='tma_sel' needs .*pingpong=True$"):
        gluon_fg.check_ws2_knobs("ws2", pipeline=1, pingpong=True, epilogue="tma_sel")


@pytest.mark.parametrize("value", ["auto:tma:112", "auto:tma_sel:50.5", "auto:tma_offs:1e3"])
def test_auto_epilogue_accepted_and_parsed(value: str) -> None:
    launch.check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": {**LIST, "epilogue": value}}, "t.json")
    short, tiles = launch.auto_epilogue(value)
    assert short in launch.AUTO_SHORT and tiles == float(value.split(":")[2])
    # without a plan (the walk, fg_attention_gluon) the constexprs are the packaged row end's
    assert gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue=value) == gluon_fg.check_ws2_knobs("ws2", pipeline=1)


@pytest.mark.parametrize("value", ["auto:stg:10", "auto:tma:0", "auto:tma:-3", "auto:tma:abc", "auto:tma",
                                   "auto:tma:1e7", "auto:tma:nan", "auto:TMA:10", "auto:tma:10:2"])
def test_auto_epilogue_errors_name_the_file_and_value(value: str) -> None:
    assert launch.auto_epilogue(value) is None and launch.auto_epilogue_error(value) is not None
    esc = value.replace(".", r"\.")
    with pytest.raises(ValueError, match=rf"^t\.json: extra\.gluon\.epilogue='{esc}' must be 'auto:SHORT:TILES' with "
                                         r"SHORT one of \['tma', 'tma_offs', 'tma_sel'\] and TILES a number in \(0, "):
        launch.check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": {**LIST, "epilogue": value}}, "t.json")
    with pytest.raises(ValueError, match=rf"^fgattn\.gluon_fg: epilogue='{esc}' must be 'auto:SHORT:TILES'"):
        gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue=value)


def test_auto_epilogue_needs_the_list_schedule_and_a_ws2_pipeline() -> None:
    with pytest.raises(ValueError, match=r"^t\.json: extra\.gluon\.epilogue='auto:tma:112' is measured only with"):
        launch.check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": {**LIST, "schedule": "walk",
                                                                         "epilogue": "auto:tma:112"}}, "t.json")
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg: epilogue='auto:tma:112' needs form 'ws2' with pipeline"):
        gluon_fg.check_ws2_knobs("ws2", pipeline=0, epilogue="auto:tma:112")


def test_resolve_epilogue_at_below_and_above_the_crossover() -> None:
    r = gluon_fg.resolve_epilogue
    assert [r("auto:tma:112", t) for t in (5.9, 112.0, 112.01, 591.0, None)] == ["tma", "tma", "stg", "stg", "stg"]
    assert r("auto:tma_sel:40", 39.9) == "tma_sel" and r("tma_sel", 1e5) == "tma_sel" and r("stg", 1.0) == "stg"
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg: epilogue='x' must be one of"):
        r("x", 1.0)


def _index(seed: int, heads: int, n: int, density: float, order: str | None = "lpt"):
    g = torch.Generator().manual_seed(seed)
    qb = -(-n // 128)
    keep = torch.rand(1, heads, qb, n, generator=g) < density
    keep[0, 0, 1] = False  # an empty row
    return build_index(keep, block_m=128, gran_n=1, order=order), keep


@pytest.mark.parametrize("programs", [1, 7, 132])
def test_plan_mean_tiles_is_the_mean_executed_tiles_per_row(programs: int) -> None:
    seed = 60 + programs
    print(f"seed {seed}")
    idx, keep = _index(seed, 3, 1500 + seed, random.Random(seed).uniform(0.05, 0.9))
    plan = gluon_fg_list.plan_ws2_list(idx, programs=programs)
    counts = keep.sum(-1).flatten().tolist()
    want = sum(max(math.ceil(c / 128), 1) for c in counts) / len(counts)  # float64 reference
    assert gluon_fg_list.plan_mean_tiles(plan) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg_list: plan has 2 lanes"):
        gluon_fg_list.plan_mean_tiles(SimpleNamespace(lanes=2, n_rows=4, programs=1, mean_load=1.0))


class _Launch:
    """Stands in for the Gluon kernel: records the constexprs of the launch."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def __getitem__(self, grid):
        return lambda *a, **kw: self.seen.append(kw)


@pytest.mark.parametrize("density,want", [(0.05, "tma"), (0.95, "stg")])
def test_launch_list_resolves_auto_from_the_plan(monkeypatch: pytest.MonkeyPatch, density: float, want: str) -> None:
    idx, _ = _index(7, 2, 4000, density)  # 32 keys of 4,000: ≈ 2.6 tiles per row at d 0.05, ≈ 30 at d 0.95
    plan = gluon_fg_list.plan_ws2_list(idx, programs=5)
    fake = _Launch()
    monkeypatch.setattr(gluon_fg_list, "prepare_list_call", lambda *a, **kw: (
        SimpleNamespace(heads=2, n_q=4000, n_qblocks=32, n_rows=64), plan, torch.empty(1), None, 0.1))
    monkeypatch.setattr(gluon_fg, "_fg_gluon_ws2", fake, raising=False)
    monkeypatch.setattr(gluon_fg, "o_desc_ok", lambda out, layout: None)
    monkeypatch.setattr(gluon_fg, "o_desc_for", lambda *a: "O-DESC")
    monkeypatch.setattr(gluon_fg, "_strides", lambda t, layout: (0, 0, 0))
    tiles = gluon_fg_list.plan_mean_tiles(plan)
    assert (tiles <= 16) == (want == "tma")
    gluon_fg_list.launch_list(None, None, None, idx, layout="bhnd", sm_scale=None, out=None, plan=plan, programs=5,
                              epilogue="auto:tma:16")
    kw = fake.seen[-1]
    assert ("TMA_O" in kw, kw.get("RCP"), kw["o_desc"]) == ((True, True, "O-DESC") if want == "tma"
                                                             else (False, None, None))
    assert {k: kw[k] for k in ("PIPE", "PLANNED")} == {"PIPE": 1, "PLANNED": True}


def test_candidate_table_differs_from_the_packaged_one_only_in_the_fg_entry_epilogue() -> None:
    pk, cand = (json.loads(p.read_text())["entries"] for p in (AT_300AD25, CANDIDATE))
    diffs = [(a, b) for a, b in zip(pk, cand, strict=True) if a != b]
    assert [(b["kernel"], b["head_dim"], b["block_m"], b["gran_n"]) for _, b in diffs] == [("fg", 128, 128, 1)]
    a, b = (json.loads(json.dumps(x)) for x in diffs[0])
    assert b["extra"]["gluon"].pop("epilogue") == "tma_sel" and "Session 14, K6" in b["source"]
    assert {**b, "source": ""} == {**a, "source": ""}
    assert launch.launch_config(*KEY, table_path=str(CANDIDATE)).gluon_options()["epilogue"] == "tma_sel"
    launch.load_table.cache_clear()


# ------------------------------------------------------------------------------------------------ harness
def test_bench_densities_at_parse_plan_and_errors(capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import bench_kernels as bk

    assert bk.densities_at("3:0.02/0.1/1.0,0:0.05") == {3: (0.02, 0.1, 1.0), 0: (0.05,)}
    for bad in ("9:0.1", "x:0.1", "3", "3:", "3:0", "3:1.5", "3:a/0.1"):
        with pytest.raises(ValueError, match=r"^--bench-densities-at .* comma-separated POS:D/D"):
            bk.densities_at(bad)
    args = SimpleNamespace(bench_shapes="3,0", bench_short=False, bench_rounds=5, bench_rounds_at="3:7",
                           bench_densities_at="3:0.02/0.5/1.0", bench_all_kernels=False)
    plan = bk.final_plan(args)
    assert [(p["h"], p["n_text"], p["rounds"], p["densities"]) for p in plan] == [
        (40, 512, 7, (0.02, 0.5, 1.0)), (12, 0, 5, (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0))]
    with pytest.raises(ValueError, match=r"position 5 has no density 0\.05 \(its densities: 0\.02/0\.1/0\.3/0\.5\)"):
        bk.final_plan(SimpleNamespace(**{**vars(args), "bench_densities_at": "5:0.05"}))
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--dry-run", "--bench-only", "fg128",
                                      "--bench-densities-at", "7:0.7"])
    with pytest.raises(SystemExit) as e:
        bk.main()
    assert e.value.code == 2 and "position 7 has no density 0.7" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ crossover
def test_window_row_counts_equal_the_mask_counts() -> None:
    from fgattn.masks import window_mask, with_text

    for heads, n, d, text in ((3, 2197, 0.1, 0), (2, 2197, 0.3, 100), (1, 2197, 1.0, 0)):  # 13^3 fills its grid
        mask = window_mask(1, heads, n, 128, d, device="cpu")
        if text:
            mask = with_text(mask, text, 128)
        want = mask[0].sum(-1).numpy()
        got = ec.window_row_counts(heads, n, d, n_text=text)
        assert got.shape == want.shape and (got == want).all(), (heads, n, d, text)


def test_cell_geometry_matches_the_run11_probe_columns() -> None:
    # helper E's CSV (validation/results/kernels-h200-2026-11-30-fg-epilogue.csv): rows/SM 23.27, 5.941 tiles per row
    rps, tiles = ec.cell_geometry(12, 32760, 0.02)
    assert round(rps, 2) == 23.27 and round(tiles, 3) == 5.941


def test_fit_recovers_a_known_row_and_tile_cost() -> None:
    rng = random.Random(606)
    print("seed 606")
    d_row, d_tile = -2.0, 0.025
    cells = []
    for _ in range(20):
        rps, tiles = rng.uniform(20, 200), rng.uniform(5, 600)
        t = rps * (4.4 + 1.9 * tiles)
        cells.append(dict(rows_per_sm=rps, tiles_per_row=tiles, t_us=t, rel=1 + (d_row * rps + d_tile * rps * tiles) / t))
    f = ec.fit(cells)
    assert f["d_c_row_us"] == pytest.approx(d_row, rel=1e-9) and f["d_c_tile_us"] == pytest.approx(d_tile, rel=1e-9)
    assert f["tau_tiles_per_row"] == pytest.approx(80.0, rel=1e-9) and f["max_abs_resid"] < 1e-12
    cells_free = [dict(c, rel=1 + d_row * c["rows_per_sm"] / c["t_us"]) for c in cells]
    assert ec.fit(cells_free)["tau_tiles_per_row"] == math.inf or ec.fit(cells_free)["tau_tiles_per_row"] > 1e6


def test_crossover_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert ec.main([str(tmp_path / "missing-run12.csv")]) == 2
    assert "missing-run12.csv does not exist" in capsys.readouterr().err
    p = tmp_path / "other.csv"
    p.write_text("shape\n")
    assert ec.main([str(p)]) == 2
    assert "names no known run" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ the rule
def _rule_rows(sel: dict, tma: dict) -> list[dict[str, str]]:
    """Synthetic run-14 rows: per cell the candidate (tma_sel), the 300ad25 entry, the control (= entry) and tma."""
    rows = []
    for key in sel:
        for kern, f in (("fg_attention", sel[key]), ("fg_attention_previous", 1.0), ("fg_attention_control", 1.0),
                        ("fg_attention_tma", tma[key])):
            rows.append(dict(shape=key[0], kernel=kern, M="128", gran_n="1", D="128", density_target=str(key[1]),
                             route="gluon list 1/1", ms_rounds=";".join(f"{x * f:.6f}" for x in (1.0, 1.1, 0.9))))
    return rows


def test_k6_rule_prefers_tma_sel_then_the_derived_auto_row(tmp_path: Path) -> None:
    import epilogue_adopt as ea

    shapes = ["H12 N32760 D128", "H40 N32760 D128", "H12 N75600 D128", "H12 N32760+512text D128", *ea.K5_SHAPES]
    cells = [(s, d) for s in shapes for d in (0.02, 0.1, 0.5, 1.0)]
    tiles = {k: {0.02: 10.0, 0.1: 60.0, 0.5: 250.0, 1.0: 591.0}[k[1]] for k in cells}
    tma = {k: (0.95 if k[1] <= 0.1 else 1.025) for k in cells}  # the long-row cost: tma alone fails
    good = {k: (0.955 if k[1] <= 0.1 else 1.0) for k in cells}
    assert ea.pick_k6(_rule_rows(good, tma), True, tiles)[0] == "fg_attention"
    pick, lines = ea.pick_k6(_rule_rows(good, tma), False, tiles)  # tma_sel's own check failed: auto
    assert pick == ea.AUTO and lines[0].startswith("FAIL: fg_attention:") and "GPU check failed" in lines[0]
    slow = {k: (0.955 if k[1] <= 0.1 else 1.015) for k in cells}
    assert ea.pick_k6(_rule_rows(slow, tma), True, tiles)[0] == ea.AUTO
    # auto takes tma where the cell's mean tiles per row are <= 112 and the packaged binary (the control) above
    full = ea.auto_rows(_rule_rows(slow, tma), tiles)
    auto = ea.k5_ratios(full, ea.AUTO)
    assert {k: round(v, 3) for k, v in auto.items()} == {k: (0.95 if k[1] <= 0.1 else 1.0) for k in cells}
    flat_tma = {k: 0.99 for k in cells}
    assert ea.pick_k6(_rule_rows(slow, flat_tma), True, tiles)[1][-1] == "PICK: none (no adoption)"
    with pytest.raises(KeyError, match="no tiles per row for H12 N32760 D128 d 0.02"):
        ea.auto_rows(_rule_rows(good, tma), {})


def test_run13_under_the_k6_rule() -> None:
    """In-sample check of the crossover on run 13's two N32760 shapes (not a test of it: AUTO_TILES was fitted on
    runs 12 + 13): the derived auto row is tma at d <= 0.1 (geo 0.932 there) and the control above (max 1.011); it
    fails on the shape count only."""
    import csv

    import epilogue_adopt as ea

    path = ROOT / "validation" / "results" / "kernels-h200-2026-11-30-issue12-run13.csv"
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["shape"] in ("H12 N32760 D128", "H40 N32760 D128")]
    tiles = {(r["shape"], float(r["density_target"])): ec.cell_geometry(int(r["H"]), int(r["N"]),
                                                                         float(r["density_target"]))[1]
             for r in rows if r["kernel"] == ea.CONTROL}
    pick, lines = ea.pick_k6(rows, True, tiles)
    assert pick is None and lines[1].endswith("geo-mean d >= 0.2 0.996, d <= 0.1 0.932; 2 shapes measured (need >= 6 "
                                              "with H40 N75600 D128, H40 N75600+512text D128)")


def test_run14_verdict_recomputed_from_the_committed_csv() -> None:
    """Run 14 (kernels/NOTES.md "Session 14, K6", outcome): tma_sel passes K6's pre-registered rule (8 shapes, max
    1.008, geo-mean 0.985 at d >= 0.2 and 0.961 at d <= 0.1, T 0.038) and is the pick; the derived auto:tma:112 row
    passes too; K4's stricter rule (every cell <= 1.02) passes as well.  Not adopted this session (table frozen)."""
    import csv

    import epilogue_adopt as ea

    path = ROOT / "validation" / "results" / "kernels-h200-2026-11-30-issue12-run14.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    tiles = {(r["shape"], float(r["density_target"])): ec.cell_geometry(
        int(r["H"]), int(r["N"]) - int(r["n_text"]), float(r["density_target"]), int(r["n_text"]))[1]
        for r in rows if r["kernel"] == ea.CONTROL}
    pick, lines = ea.pick_k6(rows, True, tiles)
    assert pick == "fg_attention" and lines[0].startswith("PASS: fg_attention: 25 cells on 8 shapes, max 1.008")
    assert "geo-mean d >= 0.2 0.985, d <= 0.1 0.961" in lines[0] and "T 0.038" in lines[0]
    assert lines[1].startswith("PASS: fg_attention_auto") and "d <= 0.1 0.957" in lines[1]
    assert ea.verdict(rows, True)[0]
    assert {r["route"].split(" ")[1] for r in rows if r["kernel"].startswith("fg_attention")} == {"list"}
    rel = ea.k5_ratios(rows, "fg_attention")
    assert max(v for (_, d), v in rel.items() if d >= 0.5) < 1.0  # tma_sel beat the entry at every long-row cell
    f = ec.fit([dict(c, rows_per_sm=(g := ec.cell_geometry(c["H"], c["n_video"], c["d"], c["n_text"]))[0],
                     tiles_per_row=g[1]) for c in ec.paired_cells(rows, ec.RUN_LABELS["run14"]) if c["label"] == "tma_sel"])
    assert f["d_c_row_us"] == pytest.approx(-1.829, abs=2e-3) and f["d_c_tile_us"] == pytest.approx(0.0036, abs=2e-4)
