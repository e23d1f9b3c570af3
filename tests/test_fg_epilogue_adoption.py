"""Session 14, K4: helper E's fg row end folded into the packaged ws2 consumer as the launch-table knob
``extra.gluon.epilogue`` ("stg" | "tma"): knob validation in both validators, the candidate table, the dispatch of
a list entry with the knob, the research shim mapping onto the same constexprs, the harness additions (bench
``--bench-only fg128``, gpu_check ``--gluon-entry``) and the pre-registered adoption rule (kernels/tools/
epilogue_adopt.py).  CPU only."""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

import epilogue_adopt  # noqa: E402
import fgattn  # noqa: E402
from fgattn import attention, gluon_fg, gluon_fg_epilogue, gluon_fg_list, launch  # noqa: E402

PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
AT_300AD25 = ROOT / "kernels" / "logs" / "launch_configs-at-300ad25.json"  # the table before the fg tma_sel adoption (s15)
CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-epilogue.json"
KEY = ("fg", "h200", 128, 128, 1)
TMA = dict(TMA_O=True, OFFS_AHEAD=True, RCP=True)


def test_check_ws2_knobs_epilogue_constexprs_and_errors() -> None:
    base = gluon_fg.check_ws2_knobs("ws2", pipeline=1)
    assert "TMA_O" not in base  # "stg" adds no constexpr: the launch is the packaged one
    assert gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue="stg") == base
    assert gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue="tma") == {**base, **TMA}
    assert gluon_fg.EPILOGUES == {"stg": {}, "tma": TMA, "tma_offs": dict(TMA_O=True, OFFS_AHEAD=True),
                                  "tma_sel": dict(TMA_O=True, OFFS_AHEAD=True, RCP=2)}
    for kw, msg in [(dict(epilogue="TMA"),
                     r"epilogue='TMA' must be one of \('stg', 'tma', 'tma_offs', 'tma_sel', 'tma_defer', 'tma_defer_pv'\) or 'auto:SHORT:TILES'"),
                    (dict(epilogue="tma"), r"epilogue='tma' needs form 'ws2' with pipeline 1 / 2 / 3 and no pingpong"),
                    (dict(epilogue="tma", pipeline=1, pingpong=True), r"epilogue=.tma. needs .*pingpong=True$"),
                    (dict(epilogue="tma", pipeline=True), r"epilogue=.tma. needs form .ws2. with pipeline")]:
        with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg: " + msg):
            gluon_fg.check_ws2_knobs("ws2", **kw)
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg: epilogue='tma' needs form 'ws2'.*form='ws'"):
        gluon_fg.check_ws2_knobs("ws", epilogue="tma")


def test_list_constexprs_with_the_knob_and_the_shim_maps_onto_them() -> None:
    stg = gluon_fg_list._constexprs()
    assert not {"TMA_O", "OFFS_AHEAD", "RCP"} & set(stg) and stg["PLANNED"] and stg["PIPE"] == 1
    assert gluon_fg_list._constexprs("tma") == {**stg, **TMA}
    ov = gluon_fg_epilogue._overrides
    chk = gluon_fg_epilogue.check_epilogue_knobs
    # the probe's measured e_all is exactly the table knob's kernel; e_base the packaged one
    assert gluon_fg_list._constexprs(**ov(chk(**gluon_fg_epilogue.VARIANT_KNOBS["e_all"]))) == {**stg, **TMA}
    assert gluon_fg_list._constexprs(**ov(chk())) == stg
    assert gluon_fg_list._constexprs(**ov(chk(offs_ahead=True))) == {**stg, "OFFS_AHEAD": True}
    assert gluon_fg_list._constexprs(**ov(chk(rcp=True, pingpong=True)))["PINGPONG"] is True
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg_epilogue: tma_o and pingpong do not combine"):
        chk(tma_o=True, pingpong=True)


def test_o_desc_ok_on_cpu_tensors() -> None:
    q = torch.zeros(1, 2, 65, 128, dtype=torch.float16)
    assert gluon_fg.o_desc_ok(q, "bhnd") is None and gluon_fg.o_desc_ok(q.transpose(1, 2), "bnhd") is None
    off = torch.zeros(q.numel() + 1, dtype=torch.float16)[1:].view(q.shape)  # 2 bytes off
    assert "not 16-byte aligned" in gluon_fg.o_desc_ok(off, "bhnd")
    assert gluon_fg_epilogue.o_desc_ok(off, "bhnd") == gluon_fg.o_desc_ok(off, "bhnd")


def test_candidate_table_is_the_packaged_one_plus_the_knob() -> None:
    pk, cand = json.loads(AT_300AD25.read_text()), json.loads(CANDIDATE.read_text())
    assert len(pk["entries"]) == len(cand["entries"])
    diffs = []
    for a, b in zip(pk["entries"], cand["entries"], strict=True):
        if a != b:
            diffs.append((a["kernel"], a["head_dim"], a["block_m"], a["gran_n"]))
            assert {k: v for k, v in b.items() if k != "source"} != {k: v for k, v in a.items() if k != "source"}
            b2 = json.loads(json.dumps(b))
            assert b2["extra"]["gluon"].pop("epilogue") == "tma"
            b2["source"] = a["source"]
            if "epilogue" not in a["extra"]["gluon"]:  # before adoption the rest is the packaged entry exactly
                assert b2 == a
    assert diffs in ([("fg", 128, 128, 1)], [])  # [] once adopted (then the entry keeps the knob)
    cfg = launch.launch_config(*KEY, table_path=str(CANDIDATE))
    assert cfg.gluon_schedule() == "list" and cfg.gluon_options()["epilogue"] == "tma"
    launch.load_table.cache_clear()


def test_knob_validators_agree_on_a_grid() -> None:
    seed = random.randrange(2**31)
    print("seed", seed)
    rng = random.Random(seed)
    n_ok = n_bad = 0
    for _ in range(400):
        kw = dict(pipeline=rng.choice((0, 1, 1, 3)), pingpong=rng.choice((False, False, True)),
                  epilogue=rng.choice(("stg", "tma", "tma", "x")))
        form = rng.choice(("ws2", "ws2", "ws"))
        try:
            gluon_fg.check_ws2_knobs(form, **kw)
            ref = True
        except ValueError:
            ref = False
        knobs = {"form": form, **kw, **({"fence": False, "schedule": "list"} if kw["epilogue"] == "tma" else {})}
        try:
            launch.check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": knobs}, "t")
            ok = True
        except ValueError:
            ok = False
        if kw["epilogue"] == "tma" and kw["pipeline"] == 3 and form == "ws2" and not kw["pingpong"]:
            assert ref and not ok, kw  # the table takes the measured list form only (pipeline 1)
        else:
            assert ok == ref, kw
        n_ok += ok
        n_bad += not ok
    assert n_ok > 20 and n_bad > 20


def test_list_entry_dispatch_passes_the_epilogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """fgattn.fg_attention with a list entry whose epilogue is "tma" launches gluon_fg_list with it (route, plan
    and launch stubbed: no GPU); the packaged entry passes "stg"."""
    seen: list[dict] = []
    monkeypatch.setattr(attention, "fg_route", lambda q, cfg, **kw: ("gluon", "schedule list (stub)"))
    monkeypatch.setattr(attention, "_sm_count", lambda dev: 4)
    monkeypatch.setattr(gluon_fg_list, "cached_list_plan", lambda index, programs: "PLAN")

    def launch_stub(q, k, v, index, **kw):
        seen.append(kw)
        return kw["out"]

    monkeypatch.setattr(gluon_fg_list, "fg_attention_gluon_list", launch_stub)
    q = torch.zeros(1, 1, 256, 128, dtype=torch.float16)
    idx = fgattn.build_index(torch.ones(1, 1, 2, 256, dtype=torch.bool), block_m=128, gran_n=1, order=True)
    out = torch.empty_like(q)
    for path, want in ((CANDIDATE, "tma"), (PACKAGED, None)):
        cfg = launch.launch_config(*KEY, table_path=str(path))
        want = want or cfg.gluon_options()["epilogue"]
        fgattn.fg_attention(q, q, q, idx, block_m=128, config=cfg, out=out)
        assert seen[-1]["epilogue"] == want and seen[-1]["plan"] == "PLAN" and seen[-1]["programs"] == 4
    launch.load_table.cache_clear()


def test_launch_list_needs_cuda_and_validates_first() -> None:
    q = torch.zeros(1, 1, 128, 128, dtype=torch.float16)
    idx = fgattn.build_index(torch.ones(1, 1, 1, 128, dtype=torch.bool), block_m=128, gran_n=1)
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg: epilogue='x' must be one of"):
        gluon_fg_list.fg_attention_gluon_list(q, q, q, idx, epilogue="x")
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg_list: (q must be a CUDA tensor|this Triton has no)"):
        gluon_fg_list.fg_attention_gluon_list(q, q, q, idx, epilogue="tma")


# ------------------------------------------------------------------------------------------------ harness
def test_bench_only_fg128_dry_run_and_errors(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench_kernels

    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(CANDIDATE))
    launch.load_table.cache_clear()
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--check-gluon", "300", "--check-gluon-entry",
                                      "--check-gluon-only", "--check-contig", "200", "--previous-table",
                                      str(PACKAGED), "--bench-only", "fg128", "--no-flex", "--dry-run"])
    bench_kernels.main()
    out = capsys.readouterr().out
    assert "--gluon 300 --gluon-entry --gluon-only --contig 200" in out and "bench only fg128" in out
    assert "previous entry timed beside the current one: ('fg', 'h200', 128, 128, 1)" in out
    for argv, msg in ([["--bench-only", "fg128", "--bench-all-kernels"], "exclude each other"],
                      [["--check-gluon-entry"], "--check-gluon-entry needs --check-gluon N"]):
        monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--dry-run", *argv])
        with pytest.raises(SystemExit) as e:
            bench_kernels.main()
        assert e.value.code == 2 and msg in capsys.readouterr().err
    launch.load_table.cache_clear()


def test_final_shape_only_fg_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """final_shape(only_fg=True) with capture / replay stubbed: cuDNN, fg M128 g1 and its previous entry only."""
    import bench_kernels
    from test_bench_final_run11 import stub_final_shape

    stub_final_shape(monkeypatch, 1412)
    monkeypatch.setattr(bench_kernels, "PREVIOUS", {("fg", 128, 128, 1): launch.launch_config(*KEY)})

    class Clocks:
        def window(self, t0, t1):
            return "sm 1800 MHz"

    f = io.StringIO()
    w = csv.DictWriter(f, fieldnames=bench_kernels.FINAL_COLS, extrasaction="ignore")
    rows = bench_kernels.final_shape(w, {}, Clocks(), h=1, n_video=384, n_text=128, d=128, densities=(0.02, 0.3),
                                     m64=(0.02,), grans=(0.3,), with_flex=True, rounds=3, shuffle_seed=5,
                                     contig_variants=True, launches=bench_kernels.CaptureLaunches(), only_fg=True)
    kinds = sorted((r["kernel"], r["density_target"]) for r in rows)
    assert kinds == [("fg_attention", 0.02), ("fg_attention", 0.3), ("fg_attention_previous", 0.02),
                     ("fg_attention_previous", 0.3), ("sdpa_cudnn", 1.0)]
    assert all(len(r["ms_rounds"].split(";")) == 3 for r in rows)
    launch.load_table.cache_clear()


def test_gpu_check_gluon_entry_pool_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    import gpu_check_kernels as gc

    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(CANDIDATE))
    launch.load_table.cache_clear()
    entry = json.loads(CANDIDATE.read_text())
    knobs = next(e for e in entry["entries"] if (e["kernel"], e["head_dim"], e["block_m"], e["gran_n"])
                 == ("fg", 128, 128, 1))["extra"]["gluon"]
    assert gc.gluon_pool(True) == (knobs,) and knobs in gc.gluon_pool(False)
    monkeypatch.setattr(sys, "argv", ["gpu_check_kernels.py", "--gluon", "300", "--gluon-entry", "--gluon-seed", "7",
                                      "--dry-run"])
    gc.main()
    out = capsys.readouterr().out
    assert "gluon cases 300 (seed 7)" in out and "'epilogue': 'tma'" in out and "misaligned out" in out
    tl = json.loads(PACKAGED.read_text())
    for e in tl["entries"]:
        e["extra"].pop("impl", None), e["extra"].pop("gluon", None)
    p = tmp_path / "tl.json"
    p.write_text(json.dumps(tl))
    for env, argv, msg in ((str(p), ["--gluon", "5", "--gluon-entry"], "is impl tl"),
                           (str(CANDIDATE), ["--gluon-entry"], "--gluon-entry needs --gluon N")):
        monkeypatch.setenv("FGATTN_LAUNCH_TABLE", env)
        launch.load_table.cache_clear()
        monkeypatch.setattr(sys, "argv", ["gpu_check_kernels.py", *argv, "--dry-run"])
        with pytest.raises(SystemExit) as e:
            gc.main()
        assert e.value.code == 2 and msg in capsys.readouterr().err
    launch.load_table.cache_clear()


# ------------------------------------------------------------------------------------------------ the rule
def _rows(rel: dict[tuple[str, float], float], route: str = "gluon list 1/1 captured") -> list[dict[str, str]]:
    rows = []
    for (shape, d), r in rel.items():
        prev = [1.0, 1.1, 0.9]
        for kern, ms in (("fg_attention", [x * r for x in prev]), ("fg_attention_previous", prev)):
            rows.append(dict(shape=shape, kernel=kern, M="128", gran_n="1", D="128", density_target=str(d),
                             route=route, ms_rounds=";".join(f"{x:.6f}" for x in ms)))
    return rows


SHAPES = [f"H{h} N{n} D128" for h in (12, 40) for n in (32760, 75600, 4, 5)][:6]


def test_adoption_rule_passes_and_each_failure_names_itself() -> None:
    good = {(s, d): (0.9 if d <= 0.1 else 1.01) for s in SHAPES for d in (0.02, 0.1, 0.5)}
    ok, why = epilogue_adopt.verdict(_rows(good), True)
    assert ok and "18 cells on 6 shapes" in why[0], why
    assert epilogue_adopt.cell_ratios(_rows(good))[(SHAPES[0], 0.5)] == pytest.approx(1.01)
    slow = {**good, (SHAPES[2], 0.5): 1.025}
    ok, why = epilogue_adopt.verdict(_rows(slow), True)
    assert not ok and any("1 cells > 1.02" in w and "d 0.5 1.025" in w for w in why)
    flat = {k: (0.98 if k[1] <= 0.1 else 1.0) for k in good}
    assert "geo-mean at d <= 0.1 0.980 > 0.97" in epilogue_adopt.verdict(_rows(flat), True)[1][-1]
    assert "GPU check failed" in epilogue_adopt.verdict(_rows(good), False)[1]
    assert not epilogue_adopt.verdict(_rows(good, route="tl"), True)[0]
    few = {k: v for k, v in good.items() if k[0] in SHAPES[:5]}
    assert "5 shapes measured < 6" in epilogue_adopt.verdict(_rows(few), True)[1]
    assert epilogue_adopt.verdict([], True) == (False, ["no paired fg M128 g1 cells in the CSV"])


def test_adoption_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert epilogue_adopt.main([str(tmp_path / "nope.csv")]) == 2
    assert "not a file" in capsys.readouterr().err
    rows = _rows({(s, d): 0.9 for s in SHAPES for d in (0.02, 0.5)})
    p = tmp_path / "run.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert epilogue_adopt.main([str(p)]) == 0
    assert "ADOPT: 12 cells" in capsys.readouterr().out
    epilogue_adopt.main([str(p), "--check-failed"])
    assert "NOT ADOPTED" in capsys.readouterr().out


def test_run12_verdict_recomputed_from_the_committed_csv() -> None:
    """Run 12 (kernels/NOTES.md, "Session 14, K4"): the pre-registered rule says not adopted (3 long-row cells above
    1.02 although the geo-mean at d <= 0.1 is 0.960), so the packaged fg entry has no epilogue knob."""
    path = ROOT / "validation" / "results" / "kernels-h200-2026-11-30-issue12-run12.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    rel = epilogue_adopt.cell_ratios(rows)
    assert len(rel) == 62 and len({s for s, _ in rel}) == 8
    ok, why = epilogue_adopt.verdict(rows, True)
    assert not ok and "geo-mean at d <= 0.1 0.960 over 22 cells" in why[0]
    assert sorted(round(v, 3) for v in rel.values() if v > 1.02) == [1.022, 1.025, 1.027]
    assert rel[("H12 N32760 D128", 0.02)] == pytest.approx(0.877, abs=5e-4)
    assert {r["route"].split(" ")[1] for r in rows if r["kernel"].startswith("fg_attention")} == {"list"}
    assert "epilogue" not in launch.launch_config(*KEY, table_path=str(AT_300AD25)).extra["gluon"]
    launch.load_table.cache_clear()
