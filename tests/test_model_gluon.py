"""Pricing an ``impl: gluon`` launch entry (fgsim.model.gluon): the Gluon form ws2 where the GPU runs it (sm90,
bf16 / fp16), the entry's tl kernel everywhere else, and one clear error for a bad ``impl`` / ``gluon`` field."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fgsim.errors import FgsimError
from fgsim.hardware import load_gpu
from fgsim.launchcfg import launch_config
from fgsim.model.assemble import predict_counts
from fgsim.model.cta_cost import cta_tables
from fgsim.model.gluon import gluon_tile, kernel_impl, tl_config
from fgsim.model.params import ModelParams

H200 = load_gpu("h200")
#: calib9-like parameters (validation/MODEL_NOTES.md revision 8), fixed here so the test does not follow a refit
P = ModelParams(mma_eff=0.844, fp32_per_score=5.93, mma_wait_cycles=60.7, serial_wgmma_cycles=20.7,
                tile_sync_cycles=74.1, ldst_cycles=4.67, mem_latency_cycles=426.0,
                l2_bw_eff=0.978, wgmma_min_cycles=48.2, row_cycles=4350.0, launch_us=3.23, overlap_p=1.91,
                share_p=1.44)
N = 32760
QB = -(-N // 128)


def _tl(gpu: str = "h200"):
    """The fg D=128 M=128 g1 entry's tl kernel (the packaged entry names the Gluon form since table d370267)."""
    return tl_config(launch_config("fg", gpu, 128, 128, 1))


def _gluon(gpu: str = "h200", **knobs):
    cfg = _tl(gpu)
    g = {"form": "ws2", "pipeline": 1, "fence": False, **knobs}
    return replace(cfg, extra={**cfg.extra, "impl": "gluon", "gluon": g})


def _t(cfg, gpu=H200, keys: int = 655, heads: int = 12, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    print("seed", seed)
    c = np.clip(rng.normal(keys, 0.05 * keys, size=(heads, QB)).round(), 0, N).astype(np.int64)
    return predict_counts(c, N, cfg, gpu, P)[0]  # the compiled figures of the calibration that applies


def test_gluon_entry_is_priced_as_the_gluon_form_on_sm90_and_beats_tl_most_on_short_rows() -> None:
    tl, gl = _tl(), _gluon()
    assert kernel_impl(gl, H200) == "gluon" and kernel_impl(tl, H200) == "tl"
    assert kernel_impl(launch_config("fg", "h200", 128, 128, 1), H200) == "gluon"  # the final table's entry
    r_short = _t(gl, keys=655) / _t(tl, keys=655)  # d 0.02: ~5 tiles per row, per-row cost dominates
    r_long = _t(gl, keys=16380) / _t(tl, keys=16380)  # d 0.5: ~128 tiles per row, per-tile cost dominates
    # the Gluon form drops the tl row start's serialised latencies (per row) and overlaps its two consumer
    # warpgroups (per tile): faster everywhere, by most where rows are short
    assert r_short < r_long < 1.0
    assert r_short < 0.95


def test_gluon_tables_are_one_persistent_program_per_sm_with_a_cheaper_row() -> None:
    tabs = cta_tables(_gluon(), H200, P, N, n_ctas=12 * QB, resources={})
    tl = cta_tables(_tl(), H200, P, N, n_ctas=12 * QB, resources={})
    assert tabs.programs_per_sm == 1 and tabs.row_work is not None and tabs.occupancy.slots == 1
    assert tl.row_work is None  # the tl entry: one program per row (one_row), placed by the hardware
    assert tabs.row_work[0] < tl.work[0]  # an empty row: no index -> rows latency chain, no drain


def test_gluon_tile_between_its_tensor_bound_and_the_lockstep_sum() -> None:
    t = gluon_tile(_gluon(), H200, P, np.array([128.0]), 132)
    alone, mma, sm = float(t["alone"][0]), float(t["mma"][0]), float(t["sm"][0])
    assert mma <= alone < mma + sm + 2 * P.mma_wait_cycles + P.tile_sync_cycles
    t0 = gluon_tile(_gluon(pipeline=0), H200, P, np.array([128.0]), 132)
    assert float(t0["alone"][0]) > alone  # pipeline 0 exposes both wgmma waits


@pytest.mark.parametrize("gpu", ["a100", "l40s", "b200"])
def test_gluon_entry_runs_tl_where_the_gluon_form_does_not(gpu: str) -> None:
    g = load_gpu(gpu)
    gl, tl = _gluon(gpu), _tl(gpu)
    assert kernel_impl(gl, g) == "tl"
    assert _t(gl, gpu=g) == _t(tl, gpu=g)


def test_gluon_entry_in_fp32_runs_tl() -> None:
    assert kernel_impl(replace(_gluon(), dtype="fp32"), H200) == "tl"
    assert kernel_impl(replace(_gluon(), dtype="fp16"), H200) == "gluon"


def test_explicit_impl_tl_prices_as_the_entry() -> None:
    cfg = _tl()
    assert _t(replace(cfg, extra={**cfg.extra, "impl": "tl"})) == _t(cfg)


@pytest.mark.parametrize("extra,msg", [
    ({"impl": "cuda"}, "extra.impl='cuda' must be one of ['tl', 'gluon']"),
    ({"gluon": {"form": "ws2"}}, "extra.gluon given without extra.impl='gluon'"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "pipeline": 4}}, "pipeline"),
    ({"impl": "gluon", "gluon": {"form": "bogus"}}, "form"),
    ({"impl": "gluon", "gluon": {"form": "ws"}}, "the cost model prices Gluon form(s) ['ws2', 'contig']"),
])
def test_bad_impl_values_error(extra: dict, msg: str) -> None:
    cfg = _tl()
    bad = replace(cfg, extra={**cfg.extra, **extra})
    with pytest.raises(FgsimError, match=None) as e:
        _t(bad)
    assert msg in str(e.value)


def test_gluon_on_an_entry_without_a_gluon_form_errors() -> None:
    cfg = launch_config("fg", "h200", 64, 128, 1)
    bad = replace(cfg, extra={**cfg.extra, "impl": "gluon", "gluon": {"form": "ws2"}})
    with pytest.raises(FgsimError):
        cta_tables(bad, H200, P, 4096, resources={})


# ------------------------------------------------------------------------------------------------ form contig
def _contig(kernel: str, **knobs):
    """The dense / block D=128 M=128 entry as the Gluon contig form (the candidate's knobs: regs 240 / 24,
    ping-pong)."""
    cfg = tl_config(launch_config(kernel, "h200", 128, 128, 128 if kernel == "block" else 1))
    g = {"form": "contig", "pipeline": 1, "regs": [240, 24], "pingpong": True, **knobs}
    return replace(cfg, extra={**cfg.extra, "impl": "gluon", "gluon": g})


def _counts(keys_blocks: int, heads: int = 12, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    print("seed", seed)
    return np.clip(rng.normal(keys_blocks, 0.1 * keys_blocks, size=(heads, QB)).round(), 0, QB).astype(np.int64)


def test_contig_is_priced_as_the_ws2_cta_with_a_tma_producer() -> None:
    """Dense / block contig: one persistent program per SM on the list plan; faster than the tl entry (helper D
    measured 0.90 dense, 0.79-0.85 block); its producer is the TMA one (few instructions, no gather) and its
    consumers are ws2's, so at equal kept keys a contig row costs about the fg ws2 row."""
    from fgsim.model.gluon import gluon_figures, gluon_key, knobs

    d, b = _contig("dense"), _contig("block")
    assert kernel_impl(d, H200) == "gluon" and kernel_impl(b, H200) == "gluon"
    k = knobs(b)
    assert (k["form"], k["schedule"], k["exp_poly"], k["fence"], k["pingpong"], k["regs"]) == (
        "contig", "list", 0.0, False, True, (240, 24))
    assert gluon_key(b).endswith("/gluon-contig-p1+pp+r240_24") and gluon_key(b).startswith("block/bf16/d128/m128")
    assert gluon_figures(d, {})["producer_loop_instr"] == 59 and gluon_figures(b, {})["producer_loop_instr"] == 65
    c0 = np.zeros((12, QB), np.int64)
    t_d, t_dtl = (predict_counts(c0, N, cfg, H200, P, resources={})[0] for cfg in (d, tl_config(d)))
    assert 0.7 < t_d / t_dtl < 1.0
    c = _counts(50)
    t_b, t_btl = (predict_counts(c, N, cfg, H200, P, resources={})[0] for cfg in (b, tl_config(b)))
    assert 0.6 < t_b / t_btl < 1.0
    tabs = cta_tables(b, H200, P, N, n_ctas=12 * QB, resources={})
    assert tabs.programs_per_sm == 1 and tabs.plan_cost is not None
    assert tabs.plan_cost[0] == tabs.plan_cost[1] == 4.0  # an empty row runs one masked tile: planned as one
    assert tabs.row_work[0] == pytest.approx(tabs.row_work[1], rel=1e-6)  # ... and priced as one full tile
    fg = cta_tables(_gluon(schedule="list"), H200, P, N, n_ctas=12 * QB, resources={})
    # 10 blocks = 1280 keys: the same consumers, a producer that is not the bound here: within 1 % of the fg row
    assert tabs.row_work[10] == pytest.approx(fg.row_work[1280], rel=0.01)
    dt = cta_tables(d, H200, P, N, n_ctas=12 * QB, resources={})
    assert dt.row_work.shape == (1,) and dt.row_work[0] == pytest.approx(tabs.row_work[QB], rel=1e-6)


def test_contig_producer_is_tma_latency_or_its_instructions() -> None:
    """Per tile the producer takes max(instructions, (latency + tma_issue + bytes / bw) / 2): a longer memory
    latency slows a tile only once it exceeds the consumers' pair (the load is hidden behind two stages)."""
    b = _contig("block")
    t = gluon_tile(b, H200, P, np.array([128.0]), 132)
    assert float(t["producer"][0]) >= 65.0
    slow = replace(P, mem_latency_cycles=1900.0)
    t2 = gluon_tile(b, H200, slow, np.array([128.0]), 132)
    assert float(t2["producer"][0]) > float(t["producer"][0])
    assert float(t2["alone"][0]) >= float(t["alone"][0])


def test_contig_runs_tl_off_sm90_and_in_fp32() -> None:
    for kern in ("dense", "block"):
        cfg = _contig(kern)
        assert kernel_impl(replace(cfg, dtype="fp32"), H200) == "tl"
        b200 = load_gpu("b200")  # sm100: fgattn runs the entry's tl kernel there
        assert kernel_impl(cfg, b200) == "tl" and kernel_impl(cfg, load_gpu("a100")) == "tl"
        c = np.zeros((4, QB), np.int64) if kern == "dense" else _counts(30, heads=4)
        assert predict_counts(c, N, cfg, b200, P, resources={})[0] == \
            predict_counts(c, N, tl_config(cfg), b200, P, resources={})[0]


@pytest.mark.parametrize("kernel,knobs,msg", [
    ("fg", {"form": "contig"}, "Gluon form 'contig' is for the dense / block D=128 M=128 entries only"),
    ("block", {"form": "ws2"}, "Gluon form 'ws2' is the fg form; the dense / block D=128 M=128 entries run form"),
    ("dense", {"form": "contig", "regs": "lots"}, "extra.gluon.regs='lots' must be [consumer, producer] registers"),
])
def test_bad_contig_values_error(kernel: str, knobs: dict, msg: str) -> None:
    from fgsim.model.gluon import knobs as read_knobs

    cfg = _contig(kernel) if kernel != "fg" else _tl()
    bad = replace(cfg, extra={**cfg.extra, "impl": "gluon", "gluon": knobs})
    with pytest.raises(FgsimError) as e:
        read_knobs(bad)
    assert msg in str(e.value)
