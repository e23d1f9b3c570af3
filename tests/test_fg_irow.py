"""fgattn.gluon_fg_irow (issue 12 research, session 15, helper X2: one consumer warpgroup per 128-query row, two CTAs
per SM) and its probe's pre-registered rule (kernels/tools/irow_probe.py).  The kernel runs only on an sm_90 GPU
(Gluon has no interpreter path): its float64 check is the probe's, on the device."""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import irow_probe as probe  # noqa: E402
from fgattn import gluon_fg_irow as ir  # noqa: E402

SHAPES = ("H12 N32760 D128", "H40 N75600 D128")
#: (density, executed 128-key tiles per row) per shape, as the timed cells
CELLS = {SHAPES[0]: ((0.02, 6.0), (0.05, 14.0), (0.1, 26.0), (0.5, 128.0)),
         SHAPES[1]: ((0.02, 14.0), (0.05, 31.0), (0.1, 60.0), (0.5, 295.0))}


def _rows(irow: dict, ctl: float = 1.0, jitter: float = 0.0, seed: int = 0) -> list[dict[str, str]]:
    """Timing-CSV rows: list (with its tiles per row), list_ctl (ctl +- jitter) and irow (irow[(shape, d)])."""
    rng = random.Random(seed)
    out = []
    for shape, cells in CELLS.items():
        for d, t in cells:
            out.append(dict(shape=shape, density_target=str(d), variant="list", rel_list="", exec_tiles_per_row=str(t)))
            out.append(dict(shape=shape, density_target=str(d), variant="list_ctl", exec_tiles_per_row=str(t),
                            rel_list=str(ctl + rng.uniform(-jitter, jitter))))
            out.append(dict(shape=shape, density_target=str(d), variant="irow", exec_tiles_per_row=str(t),
                            rel_list=str(irow[(shape, d)])))
    return out


def _all(v: float) -> dict:
    return {(s, d): v for s, cells in CELLS.items() for d, _ in cells}


def test_rule_constants_are_the_preregistered_ones():
    assert (probe.MAX_REL, probe.LOW_D, probe.LOW_GEO_MAX, probe.DISPATCH_TILES) == (1.02, 0.05, 0.93, 16.0)
    assert (probe.CONTROL_GEO_BAND, probe.CONTROL_CELL_BAND) == (0.01, 0.04)


def test_rule_dispatch_eligible_and_not():
    seed = random.randrange(2**31)
    print("seed", seed)
    # fast at short rows (<= 16 tiles: 2 of the 4 d <= 0.05 cells), much slower at long rows: the dispatch hides them
    fast = _all(1.10)
    fast[(SHAPES[0], 0.02)] = 0.80
    fast[(SHAPES[1], 0.02)] = 0.85
    fast[(SHAPES[0], 0.05)] = 0.84
    ctl, out, win = probe.rule_verdict(_rows(fast, jitter=0.005, seed=seed))
    assert ctl == "valid" and out["irow"][0] == "eligible" and win == "irow", out
    # the same, but one dispatched cell above 1.02
    bad = dict(fast)
    bad[(SHAPES[1], 0.02)] = 1.03
    ctl, out, win = probe.rule_verdict(_rows(bad, seed=seed))
    assert out["irow"][0] == "not eligible" and win is None
    assert any("1.030 > 1.02 at dispatched H40 N75600" in w for w in out["irow"][1])
    # dispatched cells fine but not enough gain over the d <= 0.05 cells
    mild = _all(0.97)
    ctl, out, win = probe.rule_verdict(_rows(mild, seed=seed))
    assert out["irow"][0] == "not eligible" and any("dispatched geo-mean" in w for w in out["irow"][1])
    # a failed check is never eligible
    ctl, out, win = probe.rule_verdict(_rows(fast, seed=seed), failed={"irow"})
    assert out["irow"][0] == "not eligible" and win is None


def test_rule_control_void():
    ctl, out, win = probe.rule_verdict(_rows(_all(0.8), ctl=1.02))
    assert ctl == "void" and win is None and "geo-mean" in out["list_ctl"][1][0]
    rows = _rows(_all(0.8))
    next(r for r in rows if r["variant"] == "list_ctl")["rel_list"] = "0.95"
    ctl, out, _ = probe.rule_verdict(rows)
    assert ctl == "void" and any("0.950" in w for w in out["list_ctl"][1])


def test_options_and_plan_errors():
    assert ir._options() == dict(PRODUCER_REGS=ir.PRODUCER_REGS, num_warps=4)
    for bad in (20, 36, 136, True, "24"):
        with pytest.raises(ValueError, match="fgattn.gluon_fg_irow: producer_regs="):
            ir._options(bad)
    assert ir._options(psmem=True)["PSMEM"] is True and "PSMEM" not in ir._options()
    with pytest.raises(ValueError, match="fgattn.gluon_fg_irow: psmem=1 must be a bool"):
        ir._options(psmem=1)
    assert ir.irow_programs(132) == 264
    assert ir.LAUNCH_REGS * 2 * 256 == 65536 and ir.PRODUCER_REGS + 232 == 2 * ir.LAUNCH_REGS
    q = torch.zeros(1, 1, 8, 128, dtype=torch.float16)
    with pytest.raises(ValueError, match="fgattn.gluon_fg_irow: "):
        ir.fg_attention_gluon_irow(q, q, q, None, producer_regs=7)
    with pytest.raises(ValueError, match="fgattn.gluon_fg_irow: "):
        ir.fg_attention_gluon_irow(q, q, q, None, programs=4)  # no CUDA tensor: one error line before any work


def test_probe_dry_run(capsys):
    assert probe.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"variants": ["list", "list_ctl", "irow", "irow1"]' in out and '"check": 110' in out
    with pytest.raises(SystemExit):
        probe.main(["--dry-run", "--variants", "irow,xrow"])


def _lifted_verdict(rows: list[dict[str, str]]) -> tuple:
    """The rule's verdict with the control's cell band lifted (what the candidate would have got)."""
    band = probe.CONTROL_CELL_BAND
    try:
        probe.CONTROL_CELL_BAND = 1.0
        return probe.rule_verdict(rows)
    finally:
        probe.CONTROL_CELL_BAND = band


def test_s15_call_verdict_recomputed_from_the_committed_csv():
    """The one device call (kernels/NOTES.md, "... (helper X2), outcome"): 220 float64 checks, 0 failures; the
    control is void (list_ctl 1.046 at H40 N32760 d 0.02), and with the control's cell band lifted irow is still not
    eligible (dispatched cells up to 1.212, dispatched geo-mean 1.037)."""
    import csv

    res = ROOT / "validation" / "results"
    rows = list(csv.DictReader(open(res / "kernels-h200-2026-12-01-fg-irow-s15.csv", newline="")))
    acc = list(csv.DictReader(open(res / "kernels-h200-2026-12-01-fg-irow-s15-accuracy.csv", newline="")))
    assert len(acc) == 220 and all(r["ok"] == "True" for r in acc)
    assert probe.ep.failed_variants(acc, ["list", "irow"], 110) == set()
    ctl, out, win = probe.rule_verdict(rows)
    assert ctl == "void" and win is None
    assert out["list_ctl"][1] == ["list_ctl 1.046 at H40 N32760 D128 d 0.02 outside 1 +- 0.04"]
    ctl, out, win = _lifted_verdict(rows)
    assert ctl == "valid" and out["irow"][0] == "not eligible" and win is None
    assert any("dispatched geo-mean 1.037" in w for w in out["irow"][1])
    rel, tiles = probe._cells(rows)
    assert len(rel["irow"]) == 26 and sum(t <= probe.DISPATCH_TILES for t in tiles.values()) == 8
    assert min(rel["irow"].values()) == pytest.approx(0.9233) and max(rel["irow"].values()) == pytest.approx(1.212)


def test_irow2_plan_pads_lanes_and_launcher_errors():
    import fgattn

    seed = random.randrange(2**31)
    print("seed", seed)
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(1, 3, 1, 300, generator=g) < 0.3  # 3 rows: an odd lane count
    idx = fgattn.build_index(mask, block_m=128, gran_n=1)
    plan, start = ir.irow2_plan(idx, 8)
    assert plan.programs == 3 and start.numel() == 2 * 2 + 1
    assert start[:4].tolist() == plan.start.tolist() and int(start[-1]) == int(start[-2])
    assert ir.irow2_plan(idx, 8)[1] is start  # memoised
    q = torch.zeros(1, 1, 8, 128, dtype=torch.float16)
    with pytest.raises(ValueError, match="fgattn.gluon_fg_irow: order=1 must be a bool"):
        ir.fg_attention_gluon_irow2(q, q, q, idx, order=1)


def test_s15_call2_verdict_recomputed_from_the_committed_csv():
    """Call 2 (kernels/NOTES.md, "... call 2"): 440 checks, 0 failures; control void (list_ctl 1.040 at two cells);
    with the band lifted irow2o is not eligible (dispatched geo-mean 1.140), and the ordering costs 7.5 %."""
    import csv
    import math

    res = ROOT / "validation" / "results"
    rows = list(csv.DictReader(open(res / "kernels-h200-2026-12-01-fg-irow-s15b.csv", newline="")))
    acc = list(csv.DictReader(open(res / "kernels-h200-2026-12-01-fg-irow-s15b-accuracy.csv", newline="")))
    assert len(acc) == 440 and all(r["ok"] == "True" for r in acc)
    ctl, out, win = probe.rule_verdict(rows)
    assert ctl == "void" and win is None and len(out["list_ctl"][1]) == 2
    ctl, out, win = _lifted_verdict(rows)
    assert out["irow2o"][0] == "not eligible" and win is None
    assert any("dispatched geo-mean 1.140" in w for w in out["irow2o"][1])
    rel, _ = probe._cells(rows)
    eff = [rel["irow2o"][k] / rel["irow2"][k] for k in rel["irow2"]]
    assert math.exp(sum(map(math.log, eff)) / len(eff)) == pytest.approx(1.075, abs=0.001)
