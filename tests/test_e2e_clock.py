"""The sustained attention clock: measured summary (nvidia-smi samples, ramp dropped), its record in the operator
calibration, and its use for whole-generation pricing only (``fgsim predict --model``), with bad values refused."""

from __future__ import annotations

import datetime
import json
import math
import shutil

import numpy as np
import pytest

from fgsim import opmodel
from fgsim.cli import main
from fgsim.endtoend import generation_gpu, sustained_clock
from fgsim.errors import FgsimError
from fgsim.hardware import load_gpu
from fgsim.opcalibrate import attention_clock_summary, parse_smi_samples, sustained_clock_record


def _smi_text(t0: float, clocks: list[float], period: float = 0.1) -> str:
    out = []
    for i, c in enumerate(clocks):
        ts = datetime.datetime.fromtimestamp(t0 + i * period).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]
        out.append(f"{ts}, {c:.0f}, {690.0 + i % 3:.2f}, 0x0000000000000004, 66")
    return "\n".join(["garbage line", *out])


def test_clock_summary_drops_the_ramp_and_samples_outside_the_loop(test_seed):
    rng = np.random.default_rng(test_seed)
    t0 = 1.8e9
    ramp = [1980.0] * 10  # the first second: boost clock
    steady = list(rng.integers(1650, 1790, 110).astype(float))
    text = _smi_text(t0, ramp + steady + [345.0] * 20)  # idle after the loop ends
    samples = parse_smi_samples(text)
    assert len(samples) == 140  # the garbage line is skipped
    loop_end = t0 + 11.95
    kern, rows = attention_clock_summary(samples, {"fg": (t0, loop_end, [(0.0, 4.5), (0.2, 4.5), (5.0, 4.6)])},
                                         seconds=12.0, ramp_s=1.0)
    want = np.asarray(steady[:110], dtype=np.float64)
    got = kern["fg"]["clock_mhz"]
    assert got["n"] == want.size
    assert got["median"] == pytest.approx(float(np.median(want)))
    assert got["min"] == want.min() and got["max"] == want.max()
    assert got["p10"] <= got["median"] <= got["p90"]
    assert 345.0 not in [r["sm_clock_mhz"] for r in rows]  # idle samples after the loop are outside the window
    assert kern["fg"]["ms_first_0p5s"] == 4.5 and kern["fg"]["ms_steady"] == 4.6
    assert kern["fg"]["throttle_reasons"] == ["0x0000000000000004"]


def test_clock_record_refuses_a_missing_or_bad_fg_clock():
    good = {"kernels": {"fg": {"clock_mhz": {"median": 1710.0, "p10": 1695.0, "p90": 1725.0, "n": 80},
                               "power_w": {"median": 691.0}}}, "method": "m"}
    rec = sustained_clock_record(good, "x.json")
    assert rec["sm_clock_mhz"] == 1710.0 and rec["unit"] == "MHz" and rec["source"] == "x.json"
    for bad in ({"kernels": {}}, {"kernels": {"fg": {"clock_mhz": {"median": float("nan")}}}},
                {"kernels": {"fg": {"clock_mhz": {"median": -5}}}}, {"kernels": {"fg": {"clock_mhz": {"median": "1"}}}}):
        with pytest.raises(FgsimError, match="x.json: no steady FG-kernel clock"):
            sustained_clock_record(bad, "x.json")


def test_generation_gpu_reads_the_committed_clock_and_changes_only_the_clock():
    data = json.loads((opmodel.CALIBRATION_DIR / "h200.json").read_text())
    mhz = float(data["sustained_clock"]["sm_clock_mhz"])
    assert data["sustained_clock"]["unit"] == "MHz"
    gpu = load_gpu("h200")
    g, note = generation_gpu(gpu)
    assert sustained_clock("h200") == (mhz, data["sustained_clock"]["source"])
    assert g.clock_hz == pytest.approx(mhz * 1e6) and mhz < gpu.boost_clock_mhz
    assert gpu.clock_hz == pytest.approx(gpu.sustained_clock_mhz * 1e6) != g.clock_hz  # kernel level unchanged
    for f in ("hbm_bandwidth_gbs", "l2_bandwidth_gbs", "l2_port_bytes_per_clk", "sm_count", "boost_clock_mhz"):
        assert getattr(g, f) == getattr(gpu, f), f
    assert f"priced at {mhz:.0f} MHz" in note and f"calibration clock {gpu.sustained_clock_mhz:.0f} MHz" in note


def test_generation_gpu_without_a_measured_clock_keeps_the_gpu_file(tmp_path):
    p = tmp_path / "ops.json"
    p.write_text(json.dumps({"gpu": "h200"}))
    gpu = load_gpu("h200")
    g, note = generation_gpu(gpu, p)
    assert g is gpu and "the GPU file's clock" in note and "records no sustained clock" in note
    g, note = generation_gpu(load_gpu("l40s"))  # no operator calibration: the GPU file's clock
    assert "no operator calibration for l40s" in note


@pytest.mark.parametrize("entry, msg", [
    ({"sm_clock_mhz": "1710"}, "sustained_clock.sm_clock_mhz must be an SM clock in MHz"),
    ({"sm_clock_mhz": 0}, "sustained_clock.sm_clock_mhz must be an SM clock in MHz"),
    ({"sm_clock_mhz": True}, "sustained_clock.sm_clock_mhz must be an SM clock in MHz"),
    ({"sm_clock_mhz": math.nan}, "sustained_clock.sm_clock_mhz must be an SM clock in MHz"),
    ({"unit": "MHz"}, "sustained_clock.sm_clock_mhz must be an SM clock in MHz"),
    ({"sm_clock_mhz": 1710.0, "unit": "GHz"}, "sustained_clock.unit must be 'MHz'"),
    ([1710.0], "field 'sustained_clock' must be an object"),
    ({"sm_clock_mhz": 2500.0}, "2500 MHz is above h200's boost clock 1980 MHz"),
])
def test_bad_sustained_clock_is_one_clear_error(tmp_path, entry, msg):
    p = tmp_path / "ops.json"
    p.write_text(json.dumps({"gpu": "h200", "sustained_clock": entry}))
    with pytest.raises(FgsimError, match=msg) as ei:
        generation_gpu(load_gpu("h200"), p)
    assert "\n" not in str(ei.value) and str(p) in str(ei.value)


def _fg_full_run_s(out: str) -> float:
    row = next(x for x in out.splitlines() if x.split() and x.split()[0] == "fg" and " s " in f"{x} ")
    toks = row.split()
    i = next(j for j, t in enumerate(toks) if t == "s" and j > 2)  # "<per call> ms <full run> s"
    return float(toks[i - 1])


def test_predict_model_prices_at_the_sustained_clock_kernel_commands_do_not(tmp_path, monkeypatch, capsys):
    """Whole generation (--model) at the data file's clock, said in the output; the same synthesized run
    priced at half that clock takes longer (compute at half speed, memory unchanged: less than twice); a bad
    value is one error line, exit 2, before any work; the kernel-level predict keeps the calibration clock."""
    ops = tmp_path / "ops"
    ops.mkdir()
    shutil.copy(opmodel.CALIBRATION_DIR / "h200.json", ops / "h200.json")
    monkeypatch.setattr(opmodel, "CALIBRATION_DIR", ops)
    data = json.loads((ops / "h200.json").read_text())
    args = ["predict", "--model", "wan2.1-1.3b", "--resolution", "480p", "--kernel", "fg", "--no-progress"]
    times = {}
    for mhz in (1980.0, 990.0):
        data["sustained_clock"]["sm_clock_mhz"] = mhz
        (ops / "h200.json").write_text(json.dumps(data))
        assert main(args) == 0
        out = capsys.readouterr().out
        assert f"clock: fgattn kernels priced at {mhz:.0f} MHz" in " ".join(out.split())
        times[mhz] = _fg_full_run_s(out)
    assert 1.2 < times[990.0] / times[1980.0] < 2.0
    data["sustained_clock"]["sm_clock_mhz"] = -1
    (ops / "h200.json").write_text(json.dumps(data))
    assert main(args) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and len(cap.err.strip().splitlines()) == 1 and "h200.json" in cap.err
    # kernel level (no --model): the calibration clock, whatever the operator calibration records
    assert main(["predict", "--kernel", "fg", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "clock: fgattn kernels priced" not in out
