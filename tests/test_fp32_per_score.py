"""The softmax-only microbenchmark that measures the FP32 work per score (fgsim.softmax_micro): SASS counting, the
timed figure's arithmetic, the calibrate flag's bad inputs, and (where Triton compiles for sm_90 offline) the
compiled loop's count against the packaged fg tile loop's."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fgsim.errors import FgsimError
from fgsim.softmax_micro import (
    FEEDBACK_FP32_PER_SCORE,
    check_tile,
    loop_counts,
    per_score,
    summary,
    timed_figure,
)

ROOT = Path(__file__).resolve().parents[1]


def _listing(body: list[str], exit_in_loop: bool = False) -> str:
    """A cuobjdump-like listing: a prologue, a loop of ``body`` closed by a backward BRA, an EXIT after it."""
    lines = ["        /*0000*/                   MOV R1, c[0x0][0x28] ;"]
    addr = 0x10
    top = addr
    for op in body + (["EXIT"] if exit_in_loop else []):
        lines.append(f"        /*{addr:04x}*/                   {op} ;")
        addr += 0x10
    lines.append(f"        /*{addr:04x}*/                   BRA 0x{top:x} ;")
    lines.append(f"        /*{addr + 0x10:04x}*/                   EXIT ;")
    return "\n".join(lines)


def test_loop_counts_by_opcode() -> None:
    body = (["FFMA R2, R3, R4, R5"] * 3 + ["FADD R2, R3, R4"] * 2 + ["FMNMX R2, R3, R4, !PT"] * 5
            + ["FMUL R2, R3, R4"] + ["MUFU.EX2 R2, R3"] * 4 + ["F2FP.BF16.F32.PACK_AB R2, R3, R4"] * 2
            + ["SHFL.BFLY PT, R2, R3, 0x1, 0x1f", "NOP"])
    c = loop_counts(_listing(body))
    assert (c["FFMA"], c["FADD"], c["FMNMX"], c["FMUL"], c["MUFU"], c["F2F"]) == (3, 2, 5, 1, 4, 2)
    assert c["fp32_pipe"] == 11
    assert c["instr"] == len(body) - 1 + 1  # the NOP left out, the BRA counted


def test_loop_counts_refuses_a_listing_without_a_loop() -> None:
    with pytest.raises(FgsimError, match="no loop found"):
        loop_counts("        /*0000*/                   FFMA R1, R2, R3, R4 ;\n        /*0010*/  EXIT ;")
    with pytest.raises(FgsimError, match="no loop found"):
        loop_counts(_listing(["FADD R2, R3, R4"], exit_in_loop=True))


def test_per_score_subtracts_rescale_and_feedback() -> None:
    # 256 threads, 128 x 128 scores: 64 scores per thread; 332 FP32-pipe per thread -> 5.1875 per score,
    # less D / BN = 1 (the O rescale) and the feedback FADD = 1
    counts = {"FFMA": 66, "FADD": 132, "FMUL": 66, "FMNMX": 68, "MUFU": 66, "F2F": 32, "instr": 545,
              "fp32_pipe": 332}
    r = per_score(counts, 128, 128, 128, 8)
    assert r["fp32_pipe_per_score"] == pytest.approx(332 / 64)
    assert r["fp32_per_score_sass"] == pytest.approx(332 / 64 - 1.0 - FEEDBACK_FP32_PER_SCORE)
    r64 = per_score(counts, 64, 64, 128, 4)  # 128 threads, 32 scores each; rescale D / BN = 2
    assert r64["fp32_per_score_sass"] == pytest.approx(332 / 32 - 2.0 - FEEDBACK_FP32_PER_SCORE)


@pytest.mark.parametrize(("tile", "msg"), [
    ((96, 128, 128, 8), "BLOCK_M must be a positive power of two, got 96"),
    ((128, 512, 128, 8), "BLOCK_N and HEAD_DIM must be 16..256"),
    ((64, 64, 128, 8), "num_warps must be 4 or 8 with BLOCK_M >= 16 x num_warps"),
    ((128, 128, 128, True), "num_warps must be a positive power of two, got True"),
])
def test_check_tile_messages(tile: tuple[int, int, int, int], msg: str) -> None:
    with pytest.raises(FgsimError, match=msg):
        check_tile(*tile)


def test_timed_figure_arithmetic() -> None:
    # 1 ms for 1e6 scores on one SM at 1e11 FP32 instr/s: 100 instr-equivalents per score, less 1 + 1
    r = timed_figure(1.0, 1e6, 1e11, 2.5e10, 1.0, 128, 128)
    assert r["fp32_eq_per_score"] == pytest.approx(100.0)
    assert r["fp32_per_score_timed"] == pytest.approx(98.0)
    assert r["mufu_floor"] == pytest.approx(4.0 - 2.0)
    assert r["mufu_bound"] == 0.0
    at_floor = timed_figure(0.04, 1e6, 1e11, 2.5e10, 1.0, 128, 128)  # 4 equivalents = the MUFU floor
    assert at_floor["mufu_bound"] == 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "1"])
def test_timed_figure_bad_input(bad: object) -> None:
    with pytest.raises(FgsimError, match="ms must be a positive number"):
        timed_figure(bad, 1e6, 1e11, 2.5e10, 1.0, 128, 128)  # type: ignore[arg-type]


def test_summary_prefers_the_timed_m128_tile() -> None:
    rows = [{"block_m": 64, "block_n": 64, "head_dim": 128, "num_warps": 4, "fp32_per_score_sass": 3.4},
            {"block_m": 128, "block_n": 128, "head_dim": 128, "num_warps": 8, "programs_per_sm": 2,
             "fp32_per_score_sass": 3.2, "fp32_per_score_timed": 9.0},
            {"block_m": 128, "block_n": 128, "head_dim": 128, "num_warps": 8, "programs_per_sm": 1,
             "fp32_per_score_sass": 3.2, "fp32_per_score_timed": 7.0, "mufu_floor": 2.5, "mufu_bound": 0.0}]
    s = summary(rows)
    assert (s["fp32_per_score_measured"], s["source"], s["used_by_fit"]) == (7.0, "timed", False)
    assert set(s["tiles"]) == {"64x64x128w4", "128x128x128w8p2", "128x128x128w8p1"}
    s2 = summary(rows[:1])
    assert (s2["fp32_per_score_measured"], s2["source"]) == (3.4, "sass")
    with pytest.raises(FgsimError, match="no rows"):
        summary([])


@pytest.mark.parametrize(("extra", "name", "msg"), [
    ([], "x.txt", "--fp32-per-score: .*must end in .json"),
    (["--ops"], "x.json", "--fp32-per-score: runs alone, not with --ops"),
    (["--from-csv", "a.csv"], "x.json", "--fp32-per-score: runs alone, not with --from-csv"),
])
def test_calibrate_flag_bad_input(tmp_path: Path, extra: list[str], name: str, msg: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from fgsim.cli import main

    assert main(["calibrate", "--fp32-per-score", str(tmp_path / name), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(msg, err), err


def test_calibrate_flag_refuses_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fgsim.cli import main

    out = tmp_path / "m.json"
    out.write_text("{}")
    assert main(["calibrate", "--fp32-per-score", str(out)]) == 2
    assert "exists; measurements go to a new file" in capsys.readouterr().err
    assert out.read_text() == "{}"


def test_offline_count_matches_the_packaged_fg_tile_loop(tmp_path: Path) -> None:
    """The microbenchmark's compiled loop has the FP32-pipe work per score of the fg D=128 M=128 g1 tl kernel's own
    tile loop (calib14 CSV, exp_poly 0: loop_fp32 x threads x tiles per iteration / (M BN) less the O rescale).
    A subprocess without TRITON_INTERPRET (the interpreter replaces the compiler); skipped where Triton cannot
    compile for sm_90 offline."""
    path = ROOT / "validation" / "results" / "h200-2026-12-01-costmodel-calib14.csv"
    with path.open(newline="") as fh:
        ref = [r for r in csv.DictReader(fh) if r.get("kernel") == "fg" and r.get("block_m") == "128"
               and r.get("block_n") == "128" and r.get("num_warps") == "8" and r.get("loop_fp32")
               and '"exp_poly": 0,' in (r.get("launch_extra") or "") and '"gluon"' not in (r.get("launch_extra") or "")]
    assert ref, "no fg M=128 BN=128 exp_poly 0 row in the calib14 CSV"
    r0 = ref[0]
    per_tile = 1.0 * (128 / 16 + 128 / 16)
    kernel = float(r0["loop_fp32"]) * per_tile / float(r0["loop_mma"]) * 256 / (128 * 128) - 1.0
    out = tmp_path / "fp32.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-m", "fgsim", "calibrate", "--fp32-per-score", str(out)], env=env,
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    if p.returncode != 0 and ("compiling for sm_90 failed" in p.stderr or "triton is needed" in p.stderr):
        pytest.skip(f"Triton cannot compile for sm_90 offline here: {p.stderr.strip()[-200:]}")
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["source"] == "sass" and res["used_by_fit"] is False
    print(f"micro {res['fp32_per_score_measured']:.4f} vs fg kernel {kernel:.4f} FP32 instr/score")
    assert res["fp32_per_score_measured"] == pytest.approx(kernel, abs=0.07)
    assert 1.0 <= res["fp32_per_score_measured"] <= 24.0  # fp32_per_score's range (fgsim.model.params)


def test_timed_rows_from_rounds() -> None:
    """The GPU path's arithmetic on made-up rounds: rates from the FFMA / exp2 kernels' medians, per tile and
    programs per SM the timed figure, spread, and one line naming a missing timing."""
    from fgsim.softmax_micro import (
        EXP_ITERS,
        FMA_ITERS,
        PROGRAMS_PER_SM,
        RATE_PER_SM,
        RATE_TILE,
        SOFTMAX_TILES,
        timed_rows,
    )

    counts = {"feedback": {t: {"FFMA": 66, "FADD": 132, "FMUL": 66, "FMNMX": 68, "MUFU": 66, "F2F": 32, "instr": 545,
                               "fp32_pipe": 332} for t in SOFTMAX_TILES}}
    times = {"fp32": [2.0, 1.0, 3.0], "exp2": [4.0, 4.0, 4.0]}
    for bm, bn, d, w in SOFTMAX_TILES:
        for p in PROGRAMS_PER_SM:
            times[f"{bm}x{bn}x{d}w{w}p{p}"] = [1.0 * p, 1.1 * p, 0.9 * p]
    rows = timed_rows(times, 132, 1000, counts)
    assert len(rows) == len(SOFTMAX_TILES) * len(PROGRAMS_PER_SM)
    fp32_rate = RATE_PER_SM * RATE_TILE**2 * 2 * FMA_ITERS / 2e-3  # median 2 ms
    exp_rate = RATE_PER_SM * RATE_TILE**2 * EXP_ITERS / 4e-3
    r = rows[0]
    assert (r["block_m"], r["programs_per_sm"]) == (128, 1)
    assert r["fp32_instr_per_s_per_sm"] == pytest.approx(fp32_rate)
    assert r["exp2_per_s_per_sm"] == pytest.approx(exp_rate)
    eq = 1e-3 * fp32_rate / (128 * 128 * 1000)
    assert r["fp32_per_score_timed"] == pytest.approx(eq - 128 / 128 - FEEDBACK_FP32_PER_SCORE)
    assert r["spread_pct"] == pytest.approx(20.0)
    assert rows[1]["fp32_per_score_timed"] == pytest.approx(r["fp32_per_score_timed"])  # 2 programs, twice the time
    del times["exp2"]
    with pytest.raises(FgsimError, match="no timings for exp2"):
        timed_rows(times, 132, 1000, counts)


def _record(tmp_path: Path, **over: object) -> Path:
    """A GPU record of ``calibrate --fp32-per-score`` (made-up figures), with ``over`` replacing top-level keys or
    the headline tile's fields (``tile_*``)."""
    tile = {"fp32_per_score_sass": 3.19, "fp32_per_score_timed": 8.5, "mufu_floor": 4.8, "mufu_bound": 0.0}
    tile.update({k[5:]: v for k, v in over.items() if k.startswith("tile_")})
    rec = {"source": "timed", "tile": "128x128x128w8", "tiles": {"128x128x128w8p1": tile}, "device": "NVIDIA H200",
           "commit": "abc"}
    rec.update({k: v for k, v in over.items() if not k.startswith("tile_")})
    p = tmp_path / "rec.json"
    p.write_text(json.dumps(rec))
    return p


def test_fit_constraint_pins_or_bounds_by_the_mufu_flag(tmp_path: Path) -> None:
    from fgsim.softmax_micro import fit_constraint

    c = fit_constraint(_record(tmp_path))
    assert c["pin"] == 8.5 and "bounds" not in c and not c["mufu_bound"] and c["rule"].startswith("not MUFU")
    b = fit_constraint(_record(tmp_path, tile_mufu_bound=1.0, tile_fp32_per_score_timed=5.0))
    assert "pin" not in b and b["bounds"] == (3.19, 5.0) and b["mufu_bound"]


@pytest.mark.parametrize(("over", "msg"), [
    ({"source": "sass"}, "not a GPU-timed softmax microbenchmark record"),
    ({"tile_mufu_floor": None}, "lacks one of"),
    ({"tile_fp32_per_score_timed": 30.0}, "outside fp32_per_score's range"),
    ({"tile": "64x64x128w4"}, "lacks one of"),
])
def test_fit_constraint_bad_records(tmp_path: Path, over: dict, msg: str) -> None:
    from fgsim.softmax_micro import fit_constraint

    p = _record(tmp_path, **over)
    with pytest.raises(FgsimError, match=msg) as e:
        fit_constraint(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FgsimError, match="no such file"):
        fit_constraint(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FgsimError, match="not a JSON record"):
        fit_constraint(tmp_path / "bad.json")


def test_calibrate_refuses_a_bad_fp32_record_before_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CPU (SASS-only) record given to the fit: one error line naming the file, exit 2, no calibration written."""
    from fgsim.cli import main

    rec = _record(tmp_path, source="sass")
    out = tmp_path / "c.json"
    src = ROOT / "validation" / "results" / "h200-2026-12-01-costmodel-calib14.csv"
    assert main(["calibrate", "--from-csv", str(src), "--gpu", "h200", "--out", str(out),
                 "--fp32-per-score-from", str(rec)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(rec) in err and not out.exists()
    assert main(["calibrate", "--fp32-per-score", str(tmp_path / "m.json"), "--fp32-per-score-from", str(rec)]) == 2
    assert "runs alone, not with --fp32-per-score-from" in capsys.readouterr().err
    assert main(["calibrate", "--ops", "--fp32-per-score-from", str(rec)]) == 2
    assert "not with --ops / --interconnect" in capsys.readouterr().err


def test_fit_bounds_narrow_a_parameter() -> None:
    """fit_params with a measured bound keeps the parameter inside it (a made-up linear model of one parameter)."""
    import numpy as np

    from fgsim.calibration import fit_params
    from fgsim.model.params import ModelParams

    meas = np.array([3.0e-3, 6.0e-3])

    def predict(p: ModelParams) -> np.ndarray:
        return np.array([1.0e-3, 2.0e-3]) * p.fp32_per_score  # best fit at 3.0

    free, _ = fit_params(predict, meas, free=["fp32_per_score"], robust_scale=0.0)
    assert free.fp32_per_score == pytest.approx(3.0, rel=1e-3)
    held, fit = fit_params(predict, meas, free=["fp32_per_score"], robust_scale=0.0, bounds={"fp32_per_score": (4.0, 6.0)})
    assert 4.0 <= held.fp32_per_score < 4.01 and fit["at_bound"] == ["fp32_per_score"]
    with pytest.raises(FgsimError, match="empty range"):
        fit_params(predict, meas, free=["fp32_per_score"], bounds={"fp32_per_score": (6.0, 4.0)})


# ---------------------------------------------------------------------------------------------------------
# session 16 (helper M9): the feedback-free loop (--softmax-loop independent)
# ---------------------------------------------------------------------------------------------------------


def test_parse_loops_and_messages() -> None:
    from fgsim.softmax_micro import LOOPS, check_loop, parse_loops, tile_key

    assert parse_loops("feedback") == ("feedback",)
    assert parse_loops("independent, feedback") == ("independent", "feedback")
    assert set(LOOPS) == {"feedback", "independent"} and check_loop("independent") == 1.0
    for bad, msg in (("", "got ''"), ("indep", "got 'indep'"), ("feedback,feedback", "names a loop twice"),
                     ("feedback,", "got ''")):
        with pytest.raises(FgsimError, match=msg) as e:
            parse_loops(bad)
        assert str(e.value).startswith("--softmax-loop: ") and "\n" not in str(e.value)
    with pytest.raises(FgsimError, match="loop must be one of feedback, independent, got 'x'"):
        check_loop("x")
    assert tile_key(128, 128, 128, 8, 1) == "128x128x128w8p1"
    assert tile_key(128, 128, 128, 8, 2, "independent") == "128x128x128w8p2/independent"
    assert tile_key(64, 64, 128, 4, None, "independent") == "64x64x128w4/independent"


@pytest.mark.parametrize(("argv", "msg"), [
    (["--softmax-loop", "indep"], "--softmax-loop: each of 'indep' must be one of feedback, independent"),
    (["--softmax-loop", ""], "--softmax-loop: empty value"),
    (["--softmax-loop", "independent,independent"], "--softmax-loop: 'independent,independent' names a loop twice"),
])
def test_calibrate_softmax_loop_bad_input(tmp_path: Path, argv: list[str], msg: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A bad loop name: one error line, exit 2, before any work (no file written)."""
    from fgsim.cli import main

    out = tmp_path / "m.json"
    assert main(["calibrate", "--fp32-per-score", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and msg in err, err
    assert not out.exists()


def test_softmax_loop_needs_fp32_per_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fgsim.cli import main

    src = ROOT / "validation" / "results" / "h200-2026-12-01-costmodel-calib14.csv"
    out = tmp_path / "c.json"
    assert main(["calibrate", "--from-csv", str(src), "--gpu", "h200", "--out", str(out),
                 "--softmax-loop", "independent"]) == 2
    err = capsys.readouterr().err
    assert "--softmax-loop: only with --fp32-per-score" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_independent_loop_subtracts_its_own_op() -> None:
    """Both loops add one FP32 op per score (the feedback FADD / the independent step's FFMA): same subtraction;
    an unknown loop is refused by per_score and timed_figure."""
    counts = {"FFMA": 130, "FADD": 68, "FMUL": 66, "FMNMX": 68, "MUFU": 66, "F2F": 32, "instr": 476,
              "fp32_pipe": 332}
    r = per_score(counts, 128, 128, 128, 8, "independent")
    assert r["fp32_per_score_sass"] == pytest.approx(332 / 64 - 1.0 - 1.0)
    assert r["instr_per_score"] == pytest.approx(476 / 64)
    f = timed_figure(1.0, 1e6, 1e11, 2.5e10, 1.0, 128, 128, "independent")
    assert f["fp32_per_score_timed"] == pytest.approx(98.0)
    with pytest.raises(FgsimError, match="loop must be one of"):
        per_score(counts, 128, 128, 128, 8, "other")
    with pytest.raises(FgsimError, match="loop must be one of"):
        timed_figure(1.0, 1e6, 1e11, 2.5e10, 1.0, 128, 128, "other")


def test_timed_rows_two_loops_interleaved() -> None:
    """Two loops in one run: rows per loop keyed by tile_key, each loop's own counts, the summary's headline the
    first loop's 128 x 128 tile at 1 program per SM, and both loops' tiles in the record."""
    from fgsim.softmax_micro import PROGRAMS_PER_SM, SOFTMAX_TILES, tile_key, timed_rows

    seed = 16
    print(f"seed {seed}")
    import random

    rng = random.Random(seed)
    fb = {"FFMA": 66, "FADD": 132, "FMUL": 66, "FMNMX": 68, "MUFU": 66, "F2F": 32, "instr": 545, "fp32_pipe": 332}
    ind = {**fb, "FFMA": 130, "FADD": 68, "instr": 476}
    counts = {"independent": {t: ind for t in SOFTMAX_TILES}, "feedback": {t: fb for t in SOFTMAX_TILES}}
    times: dict[str, list[float]] = {"fp32": [1.0] * 3, "exp2": [1.0] * 3}
    ms = {}
    for loop in counts:
        for bm, bn, d, w in SOFTMAX_TILES:
            for p in PROGRAMS_PER_SM:
                ms[(loop, bm, bn, p)] = rng.uniform(0.5, 2.0)
                times[tile_key(bm, bn, d, w, p, loop)] = [ms[(loop, bm, bn, p)]] * 3
    rows = timed_rows(times, 132, 1000, counts)
    assert [r["loop"] for r in rows] == ["independent"] * 6 + ["feedback"] * 6
    from fgsim.softmax_micro import EXP_ITERS, FMA_ITERS, RATE_PER_SM, RATE_TILE  # noqa: F401

    fp32_rate = RATE_PER_SM * RATE_TILE**2 * 2 * FMA_ITERS / 1e-3
    for r in rows:
        eq = ms[(r["loop"], r["block_m"], r["block_n"], r["programs_per_sm"])] * 1e-3 * fp32_rate / (
            r["programs_per_sm"] * r["block_m"] * r["block_n"] * 1000)
        assert r["fp32_per_score_timed"] == pytest.approx(eq - r["head_dim"] / r["block_n"] - 1.0)
        assert r["loop_instr"] == (476 if r["loop"] == "independent" else 545)
    s = summary(rows)
    assert s["loop"] == "independent" and s["tile"] == "128x128x128w8"
    assert s["fp32_per_score_measured"] == pytest.approx(rows[0]["fp32_per_score_timed"])
    assert set(s["tiles"]) == {tile_key(*t, p, lp) for lp in counts for t in SOFTMAX_TILES for p in PROGRAMS_PER_SM}
    del times["128x128x128w8p2/independent"]
    with pytest.raises(FgsimError, match="no timings for 128x128x128w8p2/independent"):
        timed_rows(times, 132, 1000, counts)


def test_fit_constraint_reads_the_record_loop(tmp_path: Path) -> None:
    """An independent record's headline tile is read from its /independent key; a record without ``loop`` is the
    feedback loop's (session 16 M8's record); an unknown loop is refused naming the file."""
    from fgsim.softmax_micro import fit_constraint

    tile = {"fp32_per_score_sass": 3.19, "fp32_per_score_timed": 6.0, "mufu_floor": 4.8, "mufu_bound": 0.0}
    rec = {"source": "timed", "tile": "128x128x128w8", "loop": "independent", "device": "NVIDIA H200",
           "tiles": {"128x128x128w8p1/independent": tile, "128x128x128w8p1": {**tile, "fp32_per_score_timed": 8.5}}}
    p = tmp_path / "rec.json"
    p.write_text(json.dumps(rec))
    c = fit_constraint(p)
    assert (c["loop"], c["tile"], c["pin"]) == ("independent", "128x128x128w8p1/independent", 6.0)
    rec.pop("loop")
    p.write_text(json.dumps(rec))
    assert (fit_constraint(p)["loop"], fit_constraint(p)["pin"]) == ("feedback", 8.5)
    for bad in ("sideways", ["independent"]):
        rec["loop"] = bad
        p.write_text(json.dumps(rec))
        with pytest.raises(FgsimError, match="is none of feedback, independent") as e:
            fit_constraint(p)
        assert str(p) in str(e.value)


def test_offline_independent_loop_has_the_feedback_loop_fp32_count(tmp_path: Path) -> None:
    """``calibrate --fp32-per-score --softmax-loop independent,feedback`` on a CPU: the independent loop compiles
    (sm_90 offline) to the feedback loop's FP32-pipe and MUFU counts per score, without the unpack of P (fewer
    instructions per score); the record's headline is the independent loop. A subprocess without TRITON_INTERPRET;
    skipped where Triton cannot compile for sm_90 offline."""
    out = tmp_path / "fp32.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-m", "fgsim", "calibrate", "--fp32-per-score", str(out), "--softmax-loop",
                        "independent,feedback"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    if p.returncode != 0 and ("compiling for sm_90 failed" in p.stderr or "triton is needed" in p.stderr):
        pytest.skip(f"Triton cannot compile for sm_90 offline here: {p.stderr.strip()[-200:]}")
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert (res["source"], res["loop"], res["tile"]) == ("sass", "independent", "128x128x128w8")
    ind, fb = (next(r for r in res["rows"] if r["loop"] == lp and r["block_m"] == 128)
               for lp in ("independent", "feedback"))
    print(f"fp32/score independent {ind['fp32_per_score_sass']:.3f} feedback {fb['fp32_per_score_sass']:.3f}; "
          f"instr/score {ind['instr_per_score']:.2f} / {fb['instr_per_score']:.2f}")
    assert res["fp32_per_score_measured"] == ind["fp32_per_score_sass"]
    assert ind["fp32_per_score_sass"] == pytest.approx(fb["fp32_per_score_sass"], abs=0.05)
    assert ind["MUFU_per_score"] == pytest.approx(fb["MUFU_per_score"])
    assert ind["instr_per_score"] < fb["instr_per_score"]


def test_fit_constraint_rule_bound(tmp_path: Path) -> None:
    """``rule="bound"`` (M9's plan for calib16): a not-MUFU-bound record gives bounds [SASS count, timed figure],
    no pin; an unknown rule is refused in one line naming the flag."""
    from fgsim.softmax_micro import fit_constraint

    rec = _record(tmp_path, tile_fp32_per_score_timed=7.79)
    auto = fit_constraint(rec)
    assert auto["pin"] == 7.79 and "bounds" not in auto
    b = fit_constraint(rec, "bound")
    assert "pin" not in b and b["bounds"] == (3.19, 7.79) and b["rule"].startswith("rule bound")
    with pytest.raises(FgsimError, match="--fp32-per-score-rule: must be one of auto, bound, got 'pin'"):
        fit_constraint(rec, "pin")


def test_fp32_per_score_rule_needs_the_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fgsim.cli import main

    src = ROOT / "validation" / "results" / "h200-2026-12-01-costmodel-calib14.csv"
    out = tmp_path / "c.json"
    assert main(["calibrate", "--from-csv", str(src), "--gpu", "h200", "--out", str(out),
                 "--fp32-per-score-rule", "bound"]) == 2
    err = capsys.readouterr().err
    assert "--fp32-per-score-rule: only with --fp32-per-score-from" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["calibrate", "--fp32-per-score", str(tmp_path / "m.json"), "--fp32-per-score-rule", "bound"]) == 2
    assert "runs alone, not with --fp32-per-score-rule" in capsys.readouterr().err
