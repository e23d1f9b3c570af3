"""The Gluon row end priced per path (session 15, validation/MODEL_NOTES.md): the per-element-division row ends
(``stg``, ``tma_offs``) at ``row_cycles``, the reciprocal + TMA bulk-store row ends (``tma``, ``tma_sel``) at
``row_cycles_rcp``; unpriced row ends refused with one line; older calibrations read ``row_cycles_rcp`` as
``row_cycles``; ``tma_issue_cycles`` retired; at most 15 free parameters."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fgsim.errors import FgsimError
from fgsim.hardware import load_gpu
from fgsim.launchcfg import launch_config
from fgsim.model.assemble import predict_counts
from fgsim.model.cta_cost import cta_tables
from fgsim.model.gluon import gluon_key, list_c_row_tiles, row_end_cycles, row_end_path, tl_config
from fgsim.model.params import MEASURED, SPECS, ModelParams

H200 = load_gpu("h200")
P = ModelParams(mma_eff=0.844, fp32_per_score=5.93, mma_wait_cycles=60.7, serial_wgmma_cycles=20.7,
                tile_sync_cycles=74.1, ldst_cycles=4.67, mem_latency_cycles=426.0, l2_bw_eff=0.978,
                wgmma_min_cycles=48.2, row_cycles=5000.0, row_cycles_rcp=2200.0, launch_us=3.23, overlap_p=1.91,
                share_p=1.44)
N = 32760
QB = -(-N // 128)


def _fg(epilogue: str | None):
    cfg = tl_config(launch_config("fg", "h200", 128, 128, 1))
    g = {"form": "ws2", "pipeline": 1, "fence": False, "schedule": "list"}
    if epilogue is not None:
        g["epilogue"] = epilogue
    return replace(cfg, extra={**cfg.extra, "impl": "gluon", "gluon": g})


@pytest.mark.parametrize("epilogue,path", [(None, "div"), ("stg", "div"), ("tma_offs", "div"), ("tma", "rcp"),
                                           ("tma_sel", "rcp")])
def test_each_row_end_has_its_path_and_its_per_row_cycles(epilogue: str | None, path: str) -> None:
    cfg = _fg(epilogue)
    assert row_end_path(cfg) == path
    assert row_end_cycles(cfg, P) == (P.row_cycles_rcp if path == "rcp" else P.row_cycles)
    tab, ref = (cta_tables(c, H200, P, N, n_ctas=12 * QB, resources={}) for c in (cfg, _fg(None)))
    # the row end moves every row's work by the two parameters' difference, in cycles, and nothing else
    # (tma / tma_sel run another tile loop: 493 SASS instructions instead of 479, an issue-slot term)
    d = tab.row_work - ref.row_work
    if path == "div" and epilogue != "tma_offs":
        assert np.allclose(d, 0.0)
    elif path == "rcp":
        assert d[0] == pytest.approx(P.row_cycles_rcp - P.row_cycles, abs=1.0)


def test_a_reciprocal_row_end_saves_rows_per_sm_times_its_cycles() -> None:
    """A launch of many short rows: tma_sel is faster than stg by about rows/SM x (row_cycles - row_cycles_rcp)
    / clock; equal parameters price both alike but for the tile loop's issue slots (seed printed)."""
    seed = 17
    rng = np.random.default_rng(seed)
    print("seed", seed)
    c = np.clip(rng.normal(655, 30, size=(12, QB)).round(), 0, N).astype(np.int64)
    t_stg = predict_counts(c, N, _fg("stg"), H200, P, resources={})[0]
    t_sel = predict_counts(c, N, _fg("tma_sel"), H200, P, resources={})[0]
    saved = 12 * QB / H200.sm_count * (P.row_cycles - P.row_cycles_rcp) / H200.clock_hz
    assert t_stg - t_sel == pytest.approx(saved, rel=0.15)
    same = replace(P, row_cycles_rcp=P.row_cycles)
    t_same = predict_counts(c, N, _fg("tma_sel"), H200, same, resources={})[0]
    assert abs(t_same / t_stg - 1) < 0.02


@pytest.mark.parametrize("value", ["auto:tma:112", "bogus"])
def test_unpriced_row_ends_are_refused_with_one_line(value: str) -> None:
    with pytest.raises(FgsimError) as e:
        row_end_path(_fg(value))
    msg = str(e.value)
    assert "\n" not in msg and "epilogue" in msg and value in msg


def test_row_end_is_part_of_the_compiled_key() -> None:
    assert gluon_key(_fg(None)) == gluon_key(_fg("stg"))
    assert gluon_key(_fg("tma_sel")).endswith("+tma_sel") and gluon_key(_fg("tma")) != gluon_key(_fg("tma_sel"))


def test_older_calibrations_read_the_reciprocal_row_end_as_row_cycles_and_drop_tma_issue() -> None:
    old = ModelParams.from_dict({"row_cycles": 5020.0, "tma_issue_cycles": 2.07}, "calib13")
    assert old.row_cycles_rcp == 5020.0 and not hasattr(old, "tma_issue_cycles")
    new = ModelParams.from_dict({"row_cycles": 5020.0, "row_cycles_rcp": 2300.0}, "calib14")
    assert new.row_cycles_rcp == 2300.0
    with pytest.raises(FgsimError, match="row_cycles_rcp"):
        ModelParams.from_dict({"row_cycles_rcp": 9000.0}, "x")
    assert len(SPECS) - len(MEASURED) <= 15 and "row_cycles_rcp" in SPECS and "tma_issue_cycles" not in SPECS


def test_list_planner_row_cost_is_the_kernels() -> None:
    gl = pytest.importorskip("fgattn.gluon_fg_list")
    assert list_c_row_tiles() == gl.C_ROW_TILES


def test_calibration_rows_that_ran_a_reciprocal_row_end_are_recognised() -> None:
    """fgsim calibrate fits row_cycles_rcp only where a row ran such a row end (else ties it to row_cycles)."""
    import json

    from fgsim.calibration import _runs_rcp_row_end

    base = {"kind": "kernel", "kernel": "fg", "block_m": "128", "block_n": "128", "num_warps": "8", "num_stages": "3",
            "gran_n": "1", "head_dim": "128", "dtype": "bf16"}
    g = {"form": "ws2", "pipeline": 1, "fence": False, "schedule": "list"}
    rows = [dict(base, launch_extra=json.dumps({"impl": "gluon", "gluon": {**g, **e}}))
            for e in ({}, {"epilogue": "stg"}, {"epilogue": "tma_offs"}, {"epilogue": "tma"}, {"epilogue": "tma_sel"})]
    assert [_runs_rcp_row_end(r) for r in rows] == [False, False, False, True, True]
    assert not _runs_rcp_row_end(dict(base, launch_extra=json.dumps({"one_row": True})))
