"""validation/costmodel_clock_probe.py on the CPU (session 15's clock study): the per-call effective SM clock from
synthetic probe records against float64 arithmetic, the NVML alignment, the slope statistic, and the bad-input
paths (exit 2, one line)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("_cm_clock_probe", ROOT / "validation" / "costmodel_clock_probe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _records(f_mhz: np.ndarray, work_cycles: float, n_sm: int = 3, spin_ns: int = 50_000, seed: int = 5):
    """Probe records around len(f_mhz) calls: call i runs work_cycles at f_mhz[i] on every SM (the SMs start a few
    ns apart), the probes spin at the call's clock."""
    rng = np.random.default_rng(seed)
    print("seed", seed)
    n = len(f_mhz)
    raw = np.zeros((n + 1, n_sm, 5), np.int64)
    for s in range(n_sm):
        t = 1_000_000_000 + int(rng.integers(0, 50))
        c = 10_000 + 7 * s
        for i in range(n + 1):
            f = f_mhz[min(i, n - 1)] / 1e3  # cycles per ns
            raw[i, s] = (40 + s, c, t, c + round(spin_ns * f), t + spin_ns)
            t += spin_ns
            c += round(spin_ns * f)
            if i < n:
                dt = round(work_cycles / (f_mhz[i] / 1e3))
                t += dt
                c += round(dt * f_mhz[i] / 1e3)
    return raw


def test_per_call_clock_time_and_nvml_alignment() -> None:
    m = _load()
    f = np.linspace(1980.0, 1600.0, 40)
    raw = _records(f, work_cycles=2.0e7)
    host0, gt0 = 5_000_000_000.0, 1_000_000_000.0
    # NVML samples every 5 ms in host time, reporting 100 MHz above the true clock, at 690 W, reason bit 4
    t_end = raw[-1, 0, 4]
    samples = [(int(host0 + (g - gt0)), 1980.0 + 100.0, 690.0, 4) for g in np.arange(gt0, t_end, 5e6)]
    for j, (h, _, p, r) in enumerate(samples):
        g = h - host0 + gt0
        i = int(np.searchsorted(np.cumsum([50_000 + 2.0e7 / (x / 1e3) for x in f]), g - gt0))
        samples[j] = (h, float(f[min(i, len(f) - 1)]) + 100.0, p, r)
    rows = m.per_call(raw, samples, host0, gt0)
    assert len(rows) == 40 and all(r["n_sm"] == 3 for r in rows)
    for i, (r, fi) in enumerate(zip(rows, f, strict=True)):
        assert r["f_eff_mhz"] == pytest.approx(fi, rel=2e-4)
        assert r["f_spin_mhz"] == pytest.approx(f[min(i + 1, len(f) - 1)], rel=2e-4)  # the probe after the call
        assert r["time_ns"] == pytest.approx(2.0e7 / (fi / 1e3), rel=1e-4)
        assert r["power_w"] == 690.0 and r["reasons"] == 4
        assert r["nvml_mhz"] - fi == pytest.approx(100.0, abs=12.0)
    s = m.summarise([{"seq": "D", **r} for r in rows])["D"]
    assert s["slope_log_t_on_log_f_eff"] == pytest.approx(-1.0, abs=1e-3)  # fixed cycles: time follows the clock
    assert s["f_eff_over_nvml"] == pytest.approx(np.median(f / (f + 100.0)), rel=0.01)
    assert s["first_fifth"]["f_eff_mhz"] > s["last_fifth"]["f_eff_mhz"]


def test_half_following_time_gives_slope_minus_a_half() -> None:
    m = _load()
    f = np.linspace(1980.0, 1500.0, 30)
    raw = _records(f, work_cycles=1.0)  # replaced below: time_ns ∝ f^-0.5
    rows = [{"seq": "D", "call": i, "time_ns": 1e7 * (fi / 1980.0) ** -0.5, "f_eff_mhz": fi, "f_spin_mhz": fi,
             "nvml_mhz": fi, "power_w": 700.0, "reasons": 0, "n_sm": 3} for i, fi in enumerate(f)]
    del raw
    assert m.summarise(rows)["D"]["slope_log_t_on_log_f_eff"] == pytest.approx(-0.5, abs=1e-9)


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _load()
    assert m.main(["--analyse", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.csv" in err and "\n" not in err
    assert m.main([]) == 2
    assert "--out" in capsys.readouterr().err
