"""fgattn.gluon_fg_rowpipe (issue 12 research: the list-scheduled ws2 CTA with its row boundary pipelined) and
kernels/tools/rowpipe_probe.py: the knob checks and every bad-input message, the probe's argument errors, its
pre-registered rule and its paired per-row / per-tile fit.  The kernel itself runs only on an sm_90 GPU (Gluon has
no Triton-interpreter path: a Gluon launch under TRITON_INTERPRET=1 fails for want of a GPU driver, checked with
Triton 3.9), so its float64 check is the probe's, on the device."""

import csv
import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import fgattn  # noqa: E402
import rowpipe_probe as probe  # noqa: E402
from fgattn import gluon_fg_rowpipe as rp  # noqa: E402


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def test_knobs_default_and_every_variant_valid():
    assert rp.check_rowpipe_knobs() == dict(ROWPIPE=True, PREFETCH_Q=True, DIAG_L2=False)
    for name, knobs in rp.VARIANT_KNOBS.items():
        meta = rp.check_rowpipe_knobs(**knobs)
        assert meta == {k.upper(): v for k, v in knobs.items()}, name
        assert set(knobs) == set(rp.KNOBS) and all(v in rp.KNOBS[k] for k, v in knobs.items())
    assert set(probe.VARIANTS) == {"list", "list_ctl"} | set(rp.VARIANT_KNOBS)
    assert set(probe.DIAG) == {v for v, k in rp.VARIANT_KNOBS.items() if k["diag_l2"]}
    assert all(rp.VARIANT_KNOBS[p]["rowpipe"] == rp.VARIANT_KNOBS[d]["rowpipe"] for d, p in probe.DIAG_PARENT.items())


@pytest.mark.parametrize("knob", ["rowpipe", "prefetch_q", "diag_l2"])
@pytest.mark.parametrize("bad", [1, "yes", None])
def test_bad_knob_is_one_line_naming_it(knob, bad):
    with pytest.raises(ValueError, match=rf"^fgattn.gluon_fg_rowpipe: {knob}={bad!r} must be a bool$"):
        rp.check_rowpipe_knobs(**{knob: bad})


def test_launch_checks_knobs_first_and_refuses_cpu_tensors():
    q = torch.zeros(1, 1, 256, 128, dtype=torch.bfloat16)
    idx = fgattn.build_index(torch.ones(1, 1, 2, 256, dtype=torch.bool), block_m=128, gran_n=1, order=True)
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_rowpipe: diag_l2=1 must be a bool$"):
        rp.fg_attention_gluon_rowpipe(q, q, q, idx, diag_l2=1)
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_rowpipe: (q must be a CUDA tensor|this Triton has no)"):
        rp.fg_attention_gluon_rowpipe(q, q, q, idx)


def test_compile_refuses_a_bad_dtype_or_knob():
    if rp._GLUON_ERR is not None:
        pytest.skip(f"no Gluon here: {rp._GLUON_ERR}")
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_rowpipe: dtype='fp32' must be 'bf16' or 'fp16'$"):
        rp.compile_rowpipe_sm90("fp32")
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_rowpipe: rowpipe='no' must be a bool$"):
        rp.compile_rowpipe_sm90("bf16", rowpipe="no")


@pytest.mark.parametrize("argv, msg", [
    (["--dry-run", "--variants", "list,nope"], "--variants: unknown ['nope']"),
    (["--dry-run", "--check-variants", "rowpipe_l2"], "--check-variants: ['rowpipe_l2'] gather wrong keys by design"),
    (["--dry-run", "--variants", "rowpipe"], "--variants: every ratio is paired with 'list'; include it"),
    (["--dry-run", "--rounds", "2"], "--rounds: 2 < 3"),
    (["--dry-run", "--check", "-1"], "--check: -1 must be >= 0"),
    (["--dry-run", "--check-procs", "0"], "--check-procs: 0 must be >= 1"),
    (["--dry-run", "--densities", "0.1,x"], "--densities: '0.1,x' is not a comma-separated list"),
    (["--dry-run", "--densities", "0.1,1.5"], "--densities: '0.1,1.5' must lie in (0, 1]"),
    (["--dry-run", "--shape-densities", "12x32760:0"], "--shape-densities: densities of '12x32760:0' must lie"),
    (["--check", "3"], "--out is required for a GPU run"),
    (["--analyze", "/nonexistent/x.csv"], "--analyze: /nonexistent/x.csv is not a file"),
])
def test_probe_bad_arguments_exit_2_with_one_line(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        probe.parse_args(argv)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_probe_dry_run_prints_the_plan(capsys):
    assert probe.main(["--dry-run", "--check", "2"]) == 0
    out = capsys.readouterr().out
    assert '"12x32760+0": [0.02, 0.1, 0.5]' in out and '"40x75600+0": [0.02, 0.1]' in out
    assert '"check_variants": ["list", "rowpipe", "rowpipe_nopf", "list_pf"]' in out


PROBLEMS = [("H12 N32760 D128", d) for d in (0.02, 0.1, 0.5)] + [("H40 N75600 D128", d) for d in (0.02, 0.1)] + \
    [("H12 N32760+512text D128", d) for d in (0.02, 0.1, 0.5)]
ROWS_PER_SM = {"H12 N32760 D128": 23.27, "H40 N75600 D128": 179.09, "H12 N32760+512text D128": 23.64}
TILES = {0.02: 5.9, 0.1: 26.4, 0.5: 128.1}


def _rows(ctl: float | dict = 1.0, rowpipe: float | dict = 0.96, c_row: float = 6.0, c_tile: float = 1.85,
          d_row: float | None = None, d_tile: float = 0.0) -> list[dict[str, str]]:
    """Synthetic timing rows: t_list = rows/SM · (c_row + c_tile · tiles) µs; rowpipe's rel either given or
    from (d_row, d_tile)."""
    out = []
    for shp, d in PROBLEMS:
        rps, tiles = ROWS_PER_SM[shp], TILES[d]
        t = rps * (c_row + c_tile * tiles)
        rel_rp = rowpipe[(shp, d)] if isinstance(rowpipe, dict) else rowpipe
        if d_row is not None:
            rel_rp = 1 + rps * (d_row + d_tile * tiles) / t
        rel_ctl = ctl[(shp, d)] if isinstance(ctl, dict) else ctl
        for v, rel in (("list", 1.0), ("list_ctl", rel_ctl), ("rowpipe", rel_rp)):
            out.append(dict(shape=shp, density_target=str(d), variant=v, ms=str(t / 1e3 * rel), rel_list=str(rel),
                            rel_list_min=str(rel), rel_list_max=str(rel), ratio_vs_cudnn="0.6",
                            rows_per_sm=str(rps), exec_tiles_per_row=str(tiles)))
    return out


def test_rule_eligible_void_and_not_eligible():
    verdict, why = probe.rule_verdict(_rows())
    assert verdict == "eligible" and "geo-mean at d <= 0.1 0.960" in why[0]
    # control outside its bands: void, whatever rowpipe did
    assert probe.rule_verdict(_rows(ctl=1.015))[0] == "void"
    one = {k: 1.0 for k in PROBLEMS} | {PROBLEMS[3]: 1.05}
    verdict, why = probe.rule_verdict(_rows(ctl=one))
    assert verdict == "void" and why == ["list_ctl 1.050 at H40 N75600 D128 d 0.02 outside 1 +- 0.04"]
    # slower than 1.02 x list at one problem
    slow = {k: 0.95 for k in PROBLEMS} | {PROBLEMS[2]: 1.03}
    verdict, why = probe.rule_verdict(_rows(rowpipe=slow))
    assert verdict == "not eligible" and why == ["rowpipe 1.030 > 1.02 at H12 N32760 D128 d 0.5"]
    # no gain where it is aimed (d <= 0.1)
    verdict, why = probe.rule_verdict(_rows(rowpipe=0.995))
    assert verdict == "not eligible" and why == ["rowpipe geo-mean 0.995 over the d <= 0.1 problems > 0.99"]
    assert probe.rule_verdict(_rows(), check_ok=False) == ("not eligible", ["the float64 check failed"])
    rows = [r for r in _rows() if not (r["variant"] == "rowpipe" and r["density_target"] == "0.5")]
    assert probe.rule_verdict(rows)[0] == "void"


def test_paired_fit_recovers_known_row_and_tile_deltas():
    rng = random.Random(_seed())
    d_row, d_tile = rng.uniform(-3, 1), rng.uniform(-0.1, 0.1)
    rows = _rows(d_row=d_row, d_tile=d_tile)
    for shp in (None, "H12 N32760 D128"):
        f = probe.paired_fit(rows, "rowpipe", shp)
        assert f["d_c_row_us"] == pytest.approx(d_row, abs=1e-6)
        assert f["d_c_tile_us"] == pytest.approx(d_tile, abs=1e-7)
        assert f["max_abs_resid_rel"] < 1e-9
    assert probe.paired_fit(rows, "rowpipe", "nope") is None  # no problem of that shape
    one_d = [r for r in rows if r["density_target"] == "0.02"]
    assert probe.paired_fit(one_d, "rowpipe", "H12 N32760 D128") is None  # one problem: not identifiable


def test_analyze_prints_fits_and_the_verdict(tmp_path, capsys):
    rows = _rows(d_row=-1.0)
    p = tmp_path / "t.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert probe.main(["--analyze", str(p)]) == 0
    out = capsys.readouterr().out
    assert "[fit] rowpipe       all problems: d_c_row_us -1.000, d_c_tile_us " in out
    assert "[fit] list_ctl      all problems: d_c_row_us " in out
    assert "[abs] list          H12 N32760 D128: c_row 6.00 us, c_tile 1.850 us (max rel resid 0.000, 3 densities)" in out
    assert "[rule] eligible:" in out


def test_committed_call_is_judged_not_eligible_by_the_pre_registered_rule():
    path = ROOT / "validation" / "results" / "kernels-h200-2026-11-30-rowpipe.csv"
    rows = list(csv.DictReader(open(path, newline="")))
    assert probe.rule_verdict(rows) == ("not eligible", ["rowpipe geo-mean 0.993 over the d <= 0.1 problems > 0.99"])
    f = probe.paired_fit(rows, "rowpipe")
    assert f["problems"] == 8 and f["d_c_row_us"] == pytest.approx(-0.42, abs=0.01)
