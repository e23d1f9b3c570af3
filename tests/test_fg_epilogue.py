"""fgattn.gluon_fg_epilogue (issue 12 research: the list-scheduled ws2 CTA with a cheaper row end) and
kernels/tools/epilogue_probe.py: knob checks and their messages, the O-descriptor alignment check, the probe's
argument errors, its pre-registered rule and its SASS row-end counter.  The kernel runs only on an sm_90 GPU (Gluon
has no interpreter path), so its float64 check is the probe's, on the device."""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import epilogue_probe as probe  # noqa: E402
import fgattn  # noqa: E402
from fgattn import gluon_fg_epilogue as ep  # noqa: E402


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def test_knobs_default_every_variant_and_probe_names():
    assert ep.check_epilogue_knobs() == dict(TMA_O=False, OFFS_AHEAD=False, RCP=False, PINGPONG=False)
    for name, knobs in ep.VARIANT_KNOBS.items():
        meta = ep.check_epilogue_knobs(**knobs)
        assert meta == {ep.KNOBS[k]: knobs.get(k, False) for k in ep.KNOBS}, name
    assert set(probe.E_VARIANTS) | {"e_base"} == set(ep.VARIANT_KNOBS)
    assert set(probe.CANDIDATES) == set(probe.VARIANTS) - {"list", "list_ctl", "e_base"}
    assert ep.VARIANT_KNOBS["e_all"] == dict(tma_o=True, offs_ahead=True, rcp=True)


@pytest.mark.parametrize("knob", ["tma_o", "offs_ahead", "rcp", "pingpong"])
@pytest.mark.parametrize("bad", [1, "yes", None])
def test_bad_knob_is_one_line_naming_it(knob, bad):
    with pytest.raises(ValueError, match=rf"^fgattn.gluon_fg_epilogue: {knob}={bad!r} must be a bool$"):
        ep.check_epilogue_knobs(**{knob: bad})


def test_unknown_and_incompatible_knobs():
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_epilogue: unknown knob\(s\) \['fence'\]"):
        ep.check_epilogue_knobs(fence=True)
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_epilogue: tma_o and pingpong do not combine"):
        ep.check_epilogue_knobs(tma_o=True, pingpong=True)


def test_launch_checks_knobs_first_and_refuses_cpu_tensors():
    q = torch.zeros(1, 1, 256, 128, dtype=torch.bfloat16)
    idx = fgattn.build_index(torch.ones(1, 1, 2, 256, dtype=torch.bool), block_m=128, gran_n=1, order=True)
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_epilogue: rcp=1 must be a bool$"):
        ep.fg_attention_gluon_epilogue(q, q, q, idx, rcp=1)
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_epilogue: (q must be a CUDA tensor|this Triton has no)"):
        ep.fg_attention_gluon_epilogue(q, q, q, idx, tma_o=True)


def test_o_desc_alignment():
    out = torch.zeros(1, 3, 17, 128, dtype=torch.bfloat16)
    assert ep.o_desc_ok(out, "bhnd") is None
    assert ep.o_desc_ok(out.transpose(1, 2), "bnhd") is None
    odd = torch.zeros(1, 3, 17, 131, dtype=torch.bfloat16)[..., :128]  # sequence stride 131 elements: 262 B
    assert "not 16-byte aligned" in ep.o_desc_ok(odd, "bhnd")


def _rows(rel: dict[str, dict[tuple[str, float], float]]) -> list[dict[str, str]]:
    return [dict(variant=v, shape=s, density_target=str(d), rel_list=f"{x:.4f}")
            for v, cells in rel.items() for (s, d), x in cells.items()]


CELLS = [("H12 N32760 D128", 0.02), ("H12 N32760 D128", 0.1), ("H12 N32760 D128", 0.5), ("H40 N75600 D128", 0.02)]


def test_rule_eligible_winner_void_and_each_failure():
    rng = random.Random(_seed())
    ctl = {c: 1 + rng.uniform(-0.005, 0.005) for c in CELLS}
    good = {CELLS[0]: 0.90, CELLS[1]: 0.97, CELLS[2]: 1.01, CELLS[3]: 0.95}
    better = {**good, CELLS[1]: 0.95}
    state, verdicts, winner = probe.rule_verdict(_rows({"list_ctl": ctl, "e_all": good, "e_tma": better}))
    assert state == "valid" and verdicts["e_all"][0] == "eligible" and winner == "e_tma"
    # the check failed -> not eligible; the other still wins
    _, verdicts, winner = probe.rule_verdict(_rows({"list_ctl": ctl, "e_all": good, "e_tma": better}), {"e_tma"})
    assert verdicts["e_tma"][0] == "not eligible" and winner == "e_all"
    # one cell above MAX_REL; headline above HEADLINE_MAX; low-density geo-mean above LOW_GEO_MAX
    for bad in ({**good, CELLS[2]: 1.03}, {**good, CELLS[0]: 0.96}, {**good, CELLS[1]: 1.02, CELLS[3]: 1.0}):
        _, verdicts, winner = probe.rule_verdict(_rows({"list_ctl": ctl, "e_rcp": bad}))
        assert verdicts["e_rcp"][0] == "not eligible" and winner is None, bad
    # the control outside its band voids the comparison
    state, _, winner = probe.rule_verdict(_rows({"list_ctl": {**ctl, CELLS[1]: 1.05}, "e_all": good}))
    assert state == "void" and winner is None
    assert probe.rule_verdict(_rows({"e_all": good}))[0] == "void"


SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;                    /* 0x00000a0000017a02 */
                                                                              /* 0x000fe40000000f00 */
        /*0010*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ ;     /* 0x0 */
                                                                              /* 0x0 */
""" + "".join(f"""        /*{0x20 + 16 * i:04x}*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], R24 ;  /* 0x0 */
                                                                              /* 0x0 */
""" for i in range(24)) + """        /*01a0*/                   WARPGROUP.DEPBAR.LE gsb0, 0x0 ;             /* 0x0 */
                                                                              /* 0x0 */
        /*01b0*/                   MUFU.RCP R2, R3 ;                          /* 0x0 */
                                                                              /* 0x0 */
        /*01c0*/              @!P0 STG.E desc[UR6][R4.64], R20 ;              /* 0x0 */
                                                                              /* 0x0 */
        /*01d0*/                   LDG.E R0, desc[UR6][R6.64] ;               /* 0x0 */
                                                                              /* 0x0 */
        /*01e0*/               @P0 BRA 0x10 ;                                 /* 0x0 */
                                                                              /* 0x0 */
"""


def test_row_end_figures_counts_the_tail_after_the_last_wait():
    f = probe.row_end_figures(SASS)
    assert f == dict(row_loop_insts=30, row_end_insts=5, row_end_stg=1, row_end_stsm=0, row_end_ldg=1, row_end_rcp=1,
                     row_end_fsel=0, row_end_fmul=0)
    assert probe.row_end_figures(SASS.replace("BRA 0x10", "BRA 0x1f0")) is None


@pytest.mark.parametrize("argv,msg", [
    (["--dry-run", "--variants", "list,nope"], "--variants: unknown ['nope']"),
    (["--dry-run", "--variants", "e_all"], "include it"),
    (["--dry-run", "--check-variants", "list_ctl"], "list_ctl is the list call itself"),
    (["--dry-run", "--rounds", "2"], "--rounds: 2 < 3"),
    (["--dry-run", "--densities", "0.02,2"], "must lie in (0, 1]"),
    (["--check", "1"], "--out is required"),
])
def test_probe_argument_errors(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        probe.parse_args(argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def test_failed_variants_counts_rows_and_failures():
    rows = [dict(variant="e_tma", ok="True")] * 3 + [dict(variant="e_rcp", ok="True")] * 2 + [
        dict(variant="e_rcp", ok="False")] + [dict(variant="pp", ok="True")] * 2
    assert probe.failed_variants(rows, ["e_tma", "e_rcp", "pp", "e_all"], 3) == {"e_rcp", "pp", "e_all"}
    assert probe.failed_variants(rows[:3], ["e_tma"], 3) == set()


def test_analyze_reads_the_accuracy_csv_beside_the_timing(tmp_path, capsys):
    import csv

    rel = {"list_ctl": {c: 1.0 for c in CELLS}, "e_all": {CELLS[0]: 0.9, CELLS[1]: 0.95, CELLS[2]: 1.0,
                                                           CELLS[3]: 0.94}}
    timing = tmp_path / "t.csv"
    rows = [dict(r, ms="1", rel_list_min="", rel_list_max="", ratio_vs_cudnn="", rows_per_sm="1",
                 exec_tiles_per_row="1") for r in _rows(rel)]
    with open(timing, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert probe.analyze(timing)[2] == "e_all"  # no accuracy file: the verdict ignores the check
    acc = tmp_path / "t-accuracy.csv"
    with open(acc, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["case", "variant", "ok"])
        w.writeheader()
        w.writerows([dict(case=c, variant=v, ok=str(not (v == "e_all" and c == 1))) for c in range(2)
                     for v in probe.CANDIDATES])
    _, verdicts, winner = probe.analyze(timing)
    assert winner is None and verdicts["e_all"][0] == "not eligible"
    assert "failed or unchecked ['e_all']" in capsys.readouterr().out


def test_probe_dry_run_plan():
    a = probe.parse_args(["--dry-run"])
    assert a.check == 300 and set(a.check_list) == set(probe.CANDIDATES)
    assert [(h, n, t) for h, n, t in a.shape_list] == [(12, 32760, 0), (12, 32760, 512), (40, 75600, 0)]
    assert a.per_shape[(40, 75600, 0)] == [0.02, 0.05, 0.1]
