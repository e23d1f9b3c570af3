"""validation/clock_probe.py on the CPU: the per-row clock statistics against a float64 reference, the case
selection and every bad-input path (exit 2, one line naming the argument), and the CSV it writes."""

from __future__ import annotations

import csv
import importlib.util
import io
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("_clock_probe_under_test", ROOT / "validation" / "clock_probe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cp = _load()


def _reference_tw(t: np.ndarray, clk: np.ndarray, windows: list[tuple[float, float]]) -> float:
    """Time-weighted clock by fine numerical integration (float64): the clock at time x is the last sample's."""
    num = den = 0.0
    for a, b in windows:
        x = np.linspace(a, b, 200_001)[:-1] + (b - a) / 400_000
        idx = np.searchsorted(t, x, side="right") - 1
        ok = idx >= 0
        num += float(np.sum(clk[idx[ok]])) * (b - a) / 200_000
        den += float(np.sum(ok)) * (b - a) / 200_000
    return num / den


def test_clock_stats_time_weighting_and_window_selection(test_seed):
    rng = np.random.default_rng(test_seed)
    t = np.sort(rng.uniform(0.0, 1.0, 300))
    clk = rng.integers(1500, 1981, 300).astype(np.float64)
    power = rng.uniform(300, 700, 300)
    reasons = rng.choice([0, 0x4, 0x1], 300)
    samples = [(float(a), float(b), 2619.0, float(c), int(r))
               for a, b, c, r in zip(t, clk, power, reasons, strict=True)]
    windows = [(0.1, 0.23), (0.5, 0.52), (0.8, 0.95)]
    st = cp.clock_stats(samples, windows)
    assert st["clock_time_weighted_mhz"] == pytest.approx(_reference_tw(t, clk, windows), rel=1e-4)
    inside = np.array([any(a <= x <= b for a, b in windows) for x in t])
    assert st["n_samples"] == inside.sum()
    assert st["clock_median_mhz"] == pytest.approx(float(np.median(clk[inside])))
    assert (st["clock_min_mhz"], st["clock_max_mhz"]) == (clk[inside].min(), clk[inside].max())
    assert st["power_median_w"] == pytest.approx(float(np.median(power[inside])))
    assert st["power_cap_share"] == pytest.approx(float(np.mean(reasons[inside] == 0x4)))
    assert st["timed_s"] == pytest.approx(0.13 + 0.02 + 0.15)


def test_clock_stats_short_window_takes_the_clock_held_at_its_start():
    samples = [(0.0, 1980.0, 2619.0, 400.0, 0), (1.0, 1700.0, 2619.0, 700.0, 4), (2.0, 1800.0, 2619.0, 690.0, 4)]
    st = cp.clock_stats(samples, [(1.2, 1.4)])  # no sample inside: the clock held since t=1.0
    assert st["clock_time_weighted_mhz"] == 1700.0
    assert st["n_samples"] == 0 and math.isnan(st["clock_median_mhz"])
    st = cp.clock_stats(samples, [(0.5, 1.5)])  # half at 1980, half at 1700
    assert st["clock_time_weighted_mhz"] == pytest.approx(1840.0)
    assert math.isnan(cp.clock_stats(samples, [(-2.0, -1.0)])["clock_time_weighted_mhz"])  # before any sample
    with pytest.raises(ValueError, match="ends before it starts"):
        cp.clock_stats(samples, [(1.0, 0.5)])
    with pytest.raises(ValueError, match="not sorted"):
        cp.clock_stats(samples[::-1], [(0.0, 1.0)])


def test_select_cases_keeps_calibration_order_and_refuses_bad_ids():
    ids = ["c-000", "c-001", "c-002"]
    assert cp.select_cases(ids, ["c-002", "c-000"]) == ["c-000", "c-002"]
    for wanted, msg in ((["c-999"], "'c-999' is not in"), (["c-001", "c-001"], "given twice"), ([], "no case ids")):
        with pytest.raises(cp.ProbeError, match=msg):
            cp.select_cases(ids, wanted)


def test_default_cases_are_calibration_cases():
    from fgsim.validation.cases import load_case_list

    ids = [c.case_id for c in load_case_list("calib")]
    assert cp.select_cases(ids, list(cp.DEFAULT_CASES)) == [i for i in ids if i in cp.DEFAULT_CASES]
    assert 20 <= len(cp.DEFAULT_CASES) <= 30


@pytest.mark.parametrize("args,msg", [
    (["--cases", "c-000,nope"], "--cases: 'nope' is not in"),
    (["--cases", " , "], "--cases: no case ids"),
    (["--period-ms", "0"], "--period-ms: 0.0 is outside"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, msg):
    assert cp.main(["--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and msg in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "f.csv"
    f.write_text("x")
    assert cp.main(["--out", str(f)]) == 2
    assert "--out:" in capsys.readouterr().err


def test_rows_csv_round_trips_and_blanks_nan():
    rows = [{"case_id": "c-000", "kernel": "fg", "measured_ms": 0.0283012345, "clock_median_mhz": float("nan"),
             "n_samples": 3.0}]
    text = cp.rows_csv(rows)
    got = list(csv.DictReader(io.StringIO(text)))
    assert list(got[0]) == list(cp.FIELDS)
    assert got[0]["measured_ms"] == "0.0283012" and got[0]["clock_median_mhz"] == "" and got[0]["n_samples"] == "3"


def test_no_nvml_is_refused_before_any_work(tmp_path, capsys):
    import ctypes.util

    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("this machine has NVML")
    assert cp.main(["--out", str(tmp_path / "o"), "--cases", "c-000"]) == 2
    assert capsys.readouterr().err.startswith("error: NVML:")
    assert not (tmp_path / "o").exists()


def test_low_clock_episodes_belong_to_the_case_running_or_just_ended():
    log = "precompiled 3/3\n[  1.0s] c-000 fg 0.03 ms\n[  1.0s] c-000 block 0.05 ms\n[  2.5s] c-001 fg 0.1 ms\n" \
          "[  4.0s] c-002 fg 0.1 ms\nrows"
    ends = cp.case_end_times(log)
    assert ends == {"c-000": 1.0, "c-001": 2.5, "c-002": 4.0}
    samples = [(0.5, 1980.0, 0), (1.1, 1965.0, 4), (1.2, 1965.0, 4), (1.4, 1980.0, 0), (2.0, 1980.0, 4),
               (2.1, 1980.0, 0), (3.0, 1980.0, 0), (3.5, 1700.0, 4), (3.6, 1600.0, 4), (4.5, 1980.0, 0)]
    got = cp.after_row(samples, ends, tail_s=0.3)
    assert got["c-000"] == (1965.0, 2)  # began 0.1 s after c-000 ended
    assert got["c-001"] == (1980.0, 1)  # a reason bit at the top clock counts, inside c-001's run
    assert got["c-002"] == (1600.0, 2)
    assert cp.after_row(samples[:1], ends)["c-000"][1] == 0


def test_summarize_refuses_missing_files_and_a_log_without_the_case(tmp_path, capsys):
    probe = tmp_path / "p.csv"
    probe.write_text(cp.rows_csv([{"case_id": "c-000", "kernel": "fg", "measured_ms": 0.03, "timed_s": 0.001,
                                   "clock_time_weighted_mhz": 1980.0, "spread_pct": 1.0, "commit": "abc"}]))
    samples = tmp_path / "s.csv"
    samples.write_text("t_s,sm_mhz,mem_mhz,power_w,reasons\n0.0,1980,3201,120,0\n")
    log = tmp_path / "log.txt"
    log.write_text("[  1.0s] c-001 fg 0.1 ms\n")
    assert cp.main(["--summarize", str(probe), "--samples", str(tmp_path / "none.csv"), "--log", str(log)]) == 2
    assert "--samples:" in capsys.readouterr().err
    assert cp.main(["--summarize", str(probe), "--samples", str(samples)]) == 2
    assert "--log is required" in capsys.readouterr().err
    assert cp.main(["--summarize", str(probe), "--samples", str(samples), "--log", str(log)]) == 2
    assert "no progress line for c-000" in capsys.readouterr().err
    log.write_text("[  1.0s] c-000 fg 0.03 ms\n")
    assert cp.main(["--summarize", str(probe), "--samples", str(samples), "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "| c-000 | fg |" in out and "| - | 0 |" in out
