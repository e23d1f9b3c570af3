"""GPU files, calibration files (round trip, errors), fallbacks and CLI error paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fgsim.calibration import (
    UNCALIBRATED,
    Calibration,
    load_calibration,
    resolve_params,
    save_calibration,
)
from fgsim.cli import main
from fgsim.costmodel import ModelParams, predict_counts
from fgsim.errors import FgsimError
from fgsim.hardware import list_gpus, load_gpu, load_gpu_file
from fgsim.launchcfg import launch_config


def test_builtin_gpus_load() -> None:
    assert {"h100", "h200", "a100", "b200", "l40s"} <= set(list_gpus())
    for g in ("h100", "h200", "a100", "b200", "l40s"):
        gpu = load_gpu(g)
        assert gpu.sm_count > 0 and gpu.sources
    assert load_gpu("h200").peak_tflops() == pytest.approx(989.5 * 1980 / 1830, rel=0.01)  # at the load clock


def test_bad_gpu_name_lists_known() -> None:
    with pytest.raises(FgsimError, match=r"unknown GPU 'h900'; known GPUs: .*h200"):
        load_gpu("h900")


def test_malformed_gpu_file_names_file_and_field(tmp_path: Path) -> None:
    d = json.loads((Path(load_gpu("h200").path)).read_text())
    del d["sm_count"]
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(d))
    with pytest.raises(FgsimError, match=r"mine\.json: missing field 'sm_count'"):
        load_gpu_file(p)
    d["sm_count"] = "lots"
    p.write_text(json.dumps(d))
    with pytest.raises(FgsimError, match="field 'sm_count' has the wrong type"):
        load_gpu_file(p)
    p.write_text("{not json")
    with pytest.raises(FgsimError, match="not valid JSON"):
        load_gpu_file(p)


def test_user_gpu_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = json.loads((Path(load_gpu("h200").path)).read_text())
    d["name"] = "h200half"
    d["sm_count"] = 66
    (tmp_path / "h200half.json").write_text(json.dumps(d))
    monkeypatch.setenv("FGSIM_GPU_PATH", str(tmp_path))
    assert load_gpu("h200half").sm_count == 66


def test_calibration_round_trip_changes_prediction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    rng: np.random.Generator) -> None:
    p = ModelParams(mma_eff=float(rng.uniform(0.5, 0.9)), row_cycles=float(rng.uniform(100, 5000)))
    cal = Calibration("h200", "hopper", p, "2026-01-01T00:00:00", {}, {}, {"n": 0}, [])
    path = save_calibration(cal, tmp_path / "h200.json")
    back = load_calibration(path)
    assert back.params == p
    monkeypatch.setenv("FGSIM_CALIBRATION_PATH", str(tmp_path))
    gpu = load_gpu("h200")
    params, note = resolve_params(gpu)
    assert params == p and note.startswith("calibrated on h200")
    h100_params, h100_note = resolve_params(load_gpu("h100"))
    assert h100_params == p and "same architecture" in h100_note
    cfg = launch_config("fg", "h200", 128, 128, 1)
    c = rng.integers(0, 8192, (2, 64))
    assert predict_counts(c, 8192, cfg, gpu, p)[0] != predict_counts(c, 8192, cfg, gpu, ModelParams())[0]


def test_measured_gpu_property_replaces_the_spec_value_for_that_gpu_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator) -> None:
    """A calibration's measured L2 -> SM port (gpu_properties) replaces the GPU file's value for its own GPU: by name
    and in SM partitions, and for an uncalibrated GPU of the same architecture (the H100: the same SM and L2
    design); the file itself and a GPU file path keep the spec value."""
    port = float(rng.uniform(30.0, 60.0))
    spec = load_gpu("h200", measured=False).l2_port_bytes_per_clk
    cal = Calibration("h200", "hopper", ModelParams(), "2026-01-01T00:00:00", {}, {}, {"n": 0}, [],
                      gpu_properties={"l2_port_bytes_per_clk": {"value": port, "unit": "B/clk per SM"}})
    save_calibration(cal, tmp_path / "h200.json")
    monkeypatch.setenv("FGSIM_CALIBRATION_PATH", str(tmp_path))
    g = load_gpu("h200")
    assert g.l2_port_bytes_per_clk == pytest.approx(port) and "measured" in g.sources["l2_port_bytes_per_clk"]
    assert g.with_sms(56).l2_port_bytes_per_clk == pytest.approx(port)
    assert load_gpu("h200", measured=False).l2_port_bytes_per_clk == spec != pytest.approx(port)
    assert load_gpu("h100").l2_port_bytes_per_clk == pytest.approx(port)
    assert load_gpu("h100", measured=False).l2_port_bytes_per_clk != pytest.approx(port)
    assert load_gpu_file(Path(load_gpu("h200").path)).l2_port_bytes_per_clk == spec
    # the port prices the K/V stream of a tile (fg D=128 M=64, every key kept)
    cfg = launch_config("fg", "h200", 128, 64, 1)
    c = np.full((4, 128), 8192)
    fast = predict_counts(c, 8192, cfg, g, ModelParams())[0]
    slow = predict_counts(c, 8192, cfg, load_gpu("h200", measured=False), ModelParams())[0]
    assert (fast < slow) == (port > spec)


def test_uncalibrated_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no calibration file anywhere, the spec-derived defaults are used and said so."""
    import fgsim.calibration as cal

    monkeypatch.setattr(cal, "_cal_dirs", lambda: [tmp_path])
    assert cal.available_calibrations() == {}
    params, note = resolve_params(load_gpu("h200"))
    assert note == UNCALIBRATED and params == ModelParams()


@pytest.mark.parametrize("content,msg", [
    ("[]", "not an fgsim calibration file"),
    ('{"format": "fgsim-calibration", "version": 9}', "unsupported calibration version"),
    ('{"format": "fgsim-calibration", "version": 1, "gpu": "h200", "arch": "hopper", "params": {}}',
     "unsupported calibration version 1"),
    ('{"format": "fgsim-calibration", "version": 2, "gpu": "h200", "arch": "hopper", "params": {"bogus": 1}}',
     "unknown model parameter 'bogus'"),
    ('{"format": "fgsim-calibration", "version": 2, "gpu": "h200", "arch": "hopper", "params": {"mma_eff": -1}}',
     "parameter 'mma_eff' = -1 outside its range"),
    ('{"format": "fgsim-calibration", "version": 2, "gpu": "h200", "arch": "hopper", "params": {}, '
     '"gpu_properties": {"l2_bandwidth_gbs": {"value": 9000}}}', "'l2_bandwidth_gbs' is not a measured GPU property"),
    ('{"format": "fgsim-calibration", "version": 2, "gpu": "h200", "arch": "hopper", "params": {}, '
     '"gpu_properties": {"l2_port_bytes_per_clk": {"value": -3}}}', "l2_port_bytes_per_clk: 'value' must be a positive"),
])
def test_bad_calibration_files(tmp_path: Path, content: str, msg: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(FgsimError, match=msg):
        load_calibration(p)


def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--gpu", "nope", "--no-progress"]) == 2
    assert "unknown GPU 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["predict", "--calibration", str(bad), "--no-progress"]) == 2
    assert "not an fgsim calibration file" in capsys.readouterr().err
    assert main(["predict", "--kernel", "foo"]) == 2
    assert "unknown kernel 'foo'" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.fgt"), "--no-progress"]) == 2
    assert main(["predict", "--model", "wan9"]) == 2
    assert "unknown model 'wan9'" in capsys.readouterr().err


def test_mismatched_trace_errors(capsys: pytest.CaptureFixture[str]) -> None:
    # the default trace is stored at M=64 and is Wan-1.3B-shaped
    from fgsim.trace import default_trace_path

    assert main(["predict", str(default_trace_path()), "--model", "wan2.1-14b", "--no-progress"]) == 2
    assert "does not match model wan2.1-14b" in capsys.readouterr().err
    assert main(["predict", "--block-m", "64", "--gran-n", "16", "--no-progress", "--kernel", "fg"]) == 0
    capsys.readouterr()


def test_predict_json_default_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--json", "--kernel", "fg,block"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["kernels"]) == {"fg", "block"}  # --kernel does exactly what it says (issue 15)
    assert out["reference_dense"]["full_run_s"] > 0  # the speedup reference is computed all the same
    assert out["parameters"]


def test_end_to_end_operator_model_where_calibrated(capsys: pytest.CaptureFixture[str]) -> None:
    # the reference DiT's model file has its diffusers config and no measured time (issue 11): on the h200 (an
    # operator calibration exists) its passes come from the operator model, on the h100 from the FLOP/byte estimate
    trace = str(Path(__file__).resolve().parents[1] / "traces" / "refdit-8x16x28-pooled.fgt")
    out = {}
    for gpu in ("h200", "h100"):
        assert main(["predict", trace, "--model", "fgsim-reference-dit", "--gpu", gpu, "--block-m", "64",
                     "--json", "--no-progress"]) == 0
        out[gpu] = json.loads(capsys.readouterr().out)["end_to_end"]
    assert out["h200"]["non_attention_source"].startswith("operator model")
    assert out["h100"]["non_attention_source"] == "FLOP/byte estimate"
    e = out["h100"]
    dense = e["kernels"]["dense"]["generation_s"]
    for k in e["kernels"].values():
        assert k["generation_s"] == pytest.approx(k["attention_s"] + e["non_attention_s"])
        assert k["speedup"] == pytest.approx(dense / k["generation_s"])
    e = out["h200"]
    for k in e["kernels"].values():
        assert k["generation_s"] == pytest.approx(e["non_attention_s"] + k["attention_s"] + k["mask_prediction_s"])
        assert k["speedup"] == pytest.approx(e["baseline"]["generation_s"] / k["generation_s"])


def test_measured_non_attention_replaces_the_estimate(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from fgsim.endtoend import load_model, predict_generation
    from fgsim.hardware import load_gpu

    # a model file without a diffusers config that carries a measured non-attention time for h200 only
    d = json.loads((Path(__file__).resolve().parents[1] / "fgsim" / "data" / "models" /
                    "fgsim-reference-dit.json").read_text())
    d.pop("diffusers")
    d["measured_non_attention"] = {"h200": {"480p": 1.5, "source": "test"}}
    (tmp_path / "m.json").write_text(json.dumps(d))
    model = load_model(str(tmp_path / "m.json"))
    measured = model.measured_non_attention["h200"]["480p"]
    info = SimpleNamespace(n_tokens=model.n_tokens("480p"))
    rp = SimpleNamespace(kernels=("dense",), full_run_s=lambda k: 1.25,
                         params=SimpleNamespace(hbm_bw_eff=0.8))
    e = predict_generation(model, info, rp, load_gpu("h200"))
    assert e["non_attention_s"] == measured and e["non_attention_source"].startswith("measured on h200")
    e = predict_generation(model, info, rp, load_gpu("h100"))
    assert e["non_attention_source"] == "FLOP/byte estimate" and e["non_attention_s"] < measured


def test_l2_port_from_the_l2_smem_rows(rng: np.random.Generator) -> None:
    """B/clk per SM = GB/s / (SMs x the clock the stream ran at, else the calibration's): the most over programs per
    SM per path, the port = the most over both paths; no l2_smem rows, no measurement."""
    from fgsim.calibrate_micro import l2_port_measured, measured_constants

    g = load_gpu("h200", measured=False)
    gbs = rng.uniform(7000.0, 9500.0, 4)

    def row(path: str, per_sm: int, v: float, mhz: object) -> dict[str, str]:
        return {"micro": "l2_smem", "micro_args": json.dumps({"path": path, "per_sm": per_sm, "value": v,
                                                              "sm_clock_mhz": mhz, "unit": "GB/s"})}

    rows = [row("tma", 1, gbs[0], 1980.0), row("tma", 4, gbs[1], 1755.0), row("cp.async", 2, gbs[2], ""),
            row("cp.async", 4, gbs[3], "")]
    got = l2_port_measured(rows, 1900.0, g)
    tma = max(gbs[0] / 1980.0, gbs[1] / 1755.0) * 1e9 / (132 * 1e6)
    cpa = max(gbs[2], gbs[3]) * 1e9 / (132 * 1900.0e6)
    assert got["l2_smem_tma_bytes_per_clk"] == pytest.approx(tma)
    assert got["l2_smem_cp_async_bytes_per_clk"] == pytest.approx(cpa)
    assert got["l2_port_bytes_per_clk"] == pytest.approx(max(tma, cpa))
    assert measured_constants(rows, 1900.0, g)["l2_port_bytes_per_clk"] == pytest.approx(max(tma, cpa))
    assert l2_port_measured([], 1900.0, g) == {}
