"""fgsim.validation.sm_clock (session 15, M6) on the CPU: the effective SM clock from synthetic probe records against
float64 arithmetic, the results / bench schemas, CSVs written before the column, and the bad-input paths."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from fgsim.validation import sm_clock
from fgsim.validation.measure import RESULT_FIELDS

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261201


def _pair(f_mhz: dict[int, float], work_ns: dict[int, int], rng: np.random.Generator, t0: int = 10**9,
          spin: int = 20_000) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[float, float]]]:
    """Probe records before / after a round: SM s runs at f_mhz[s] for work_ns[s] between the probes (its probe CTAs
    start a few ns apart); returns the records and the float64 truth (cycles, ns) per SM."""
    before, after, truth = [], [], {}
    for s, f in f_mhz.items():
        t = t0 + int(rng.integers(0, 40))
        c = int(rng.integers(10**6, 10**7))
        cs = round(spin * f / 1e3)
        before.append((s, c, t, c + cs, t + spin))
        t1, c1 = t + spin + work_ns[s], c + cs + round(work_ns[s] * f / 1e3)
        after.append((s, c1, t1, c1 + cs, t1 + spin))
        truth[s] = (float(c1 - (c + cs)), float(work_ns[s]))
    return np.array(before, np.int64), np.array(after, np.int64), truth


def test_effective_mhz_is_the_median_over_sms_of_summed_cycles_over_summed_ns() -> None:
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    f1 = {s: float(1400 + 10 * s) for s in range(7)}
    f2 = {s: float(1600 - 5 * s) for s in range(7)}
    w1 = {s: int(2_000_000 + 1000 * s) for s in range(7)}
    w2 = {s: 6_000_000 for s in range(7)}
    b1, a1, t1 = _pair(f1, w1, rng)
    b2, a2, t2 = _pair(f2, w2, rng, t0=2 * 10**9)
    got = sm_clock.effective_mhz([(b1, a1), (b2, a2)])
    ref = float(np.median([(t1[s][0] + t2[s][0]) / (t1[s][1] + t2[s][1]) * 1e3 for s in range(7)]))
    assert got == pytest.approx(ref, rel=1e-12)
    # a time-weighted clock, not the mean of the two rounds' clocks
    assert abs(got - float(np.median([(f1[s] + f2[s]) / 2 for s in range(7)]))) > 5.0
    assert sm_clock.effective_mhz([(b1, a1)]) == pytest.approx(float(np.median(list(f1.values()))), rel=1e-4)


def test_several_ctas_on_one_sm_and_missing_sms() -> None:
    rng = np.random.default_rng(SEED + 1)
    b, a, _ = _pair({3: 1500.0, 4: 1500.0, 5: 1500.0}, {3: 10**6, 4: 10**6, 5: 10**6}, rng)
    # a second CTA of the probe before on SM 3 that ended earlier, one of the probe after that started later: ignored
    early = b[0].copy()
    early[2] -= 500_000
    early[4] -= 500_000
    early[1] -= 10**6
    early[3] -= 10**6
    late = a[0].copy()
    late[2] += 300_000
    late[1] += 450_000
    d = sm_clock.interval_deltas(np.vstack([early, b]), np.vstack([a, late]))
    assert d[3] == (float(a[0][1] - b[0][3]), float(a[0][2] - b[0][4]))
    # SM 5 absent after: left out; no common SM at all: NaN
    assert set(sm_clock.interval_deltas(b, a[:2])) == {3, 4}
    other = a.copy()
    other[:, 0] += 100
    assert math.isnan(sm_clock.effective_mhz([(b, other)]))
    assert math.isnan(sm_clock.effective_mhz([]))
    # a non-positive interval (timer wrapped / records swapped) is not a clock
    assert sm_clock.interval_deltas(a, b) == {}


@pytest.mark.parametrize(("rec", "msg"), [
    (np.zeros((4, 4), np.int64), "must be an (n_ctas, 5) array"),
    (np.zeros((0, 5), np.int64), "must be an (n_ctas, 5) array"),
    (np.zeros(5, np.int64), "must be an (n_ctas, 5) array"),
    (np.zeros((3, 5), np.float64), "must be integers"),
])
def test_bad_probe_records_one_line(rec: np.ndarray, msg: str) -> None:
    good = np.ones((3, 5), np.int64)
    with pytest.raises(ValueError, match=r"sm_clock: before: .*" + msg.replace("(", r"\(").replace(")", r"\)")):
        sm_clock.effective_mhz([(rec, good)])
    with pytest.raises(ValueError, match="sm_clock: after: "):
        sm_clock.interval_deltas(good, rec)


def test_recorded_eff_clock_tolerates_old_and_bad_rows() -> None:
    assert sm_clock.recorded_eff_clock({"sm_clock_mhz": "1980"}) is None  # a CSV written before the column
    for bad in ("", " ", "n/a", "nan", "0", "12", "99999"):
        assert sm_clock.recorded_eff_clock({"sm_mhz_eff": bad}) is None, bad
    assert sm_clock.recorded_eff_clock({"sm_mhz_eff": "1497.3"}) == pytest.approx(1497.3)
    assert sm_clock.format_mhz(float("nan")) == "" and sm_clock.format_mhz(1497.26) == "1497.3"


def test_schema_column_beside_the_nvml_clock() -> None:
    i = RESULT_FIELDS.index("sm_clock_mhz")
    assert RESULT_FIELDS[i + 1] == "sm_mhz_eff" == sm_clock.COLUMN
    assert RESULT_FIELDS[-1] == "source_digest" and len(set(RESULT_FIELDS)) == len(RESULT_FIELDS)
    spec = importlib.util.spec_from_file_location("_bk_m6", ROOT / "validation" / "bench_kernels.py")
    bk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bk)  # type: ignore[union-attr]
    j = bk.FINAL_COLS.index("sm_mhz_n")
    assert bk.FINAL_COLS[j + 1] == "sm_mhz_eff"


def test_harness_eff_text_and_cpu_refusal() -> None:
    from fgsim.validation import measure

    class FakeMeter:
        def __init__(self, v: float) -> None:
            self.v = v

        def mhz(self) -> float:
            return self.v

    class T:
        meter = None

    t = T()
    assert measure._eff_mhz(t) == "" and measure._eff_mhz(object()) == ""
    t.meter = FakeMeter(1512.04)
    assert measure._eff_mhz(t) == "1512.0"
    t.meter = FakeMeter(float("nan"))
    assert measure._eff_mhz(t) == ""
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
            sm_clock.ClockMeter()
        assert measure._meter(0) is None  # the harness goes on without the column


def _load_eff():
    spec = importlib.util.spec_from_file_location("_cm_clock_eff", ROOT / "validation" / "costmodel_clock_eff.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_analysis_on_a_csv_without_the_column(tmp_path: Path) -> None:
    m = _load_eff()
    src = ROOT / "validation" / "results" / "h200-2026-12-01-costmodel-test17.csv"
    rows = [r for r in csv.DictReader(src.open(newline="")) if r["case_id"] in ("a-008", "a-016")]
    assert rows and "sm_mhz_eff" not in rows[0]
    p = tmp_path / "old.csv"
    with p.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = m.analyse(p, None)
    assert res["rows"] == 2 and res["rows_without_eff"] == ["a-008", "a-016"]
    assert res["A_pairs"] == [] and "B_rows" not in res


def test_pair_ratio_arithmetic() -> None:
    m = _load_eff()

    def row(cid: str, ms: str, nvml: str, eff: str | None) -> dict[str, str]:
        r = {"case_id": cid, "kernel": "dense", "status": "ok", "measured_ms": ms, "sm_clock_mhz": nvml}
        return r if eff is None else {**r, "sm_mhz_eff": eff}

    rows = [row("a-008", "10.0", "1980", "1550"), row("a-016", "10.2", "1665", "1500"),
            row("h-010", "4.0", "1980", "1600"), row("h-018", "4.5", "1635", None)]  # h-018: no column -> no pair
    got = m.pair_stats(rows)
    assert [(p["short"], p["long"]) for p in got] == [("a-008", "a-016")]
    p = got[0]
    assert p["ratio_measured"] == pytest.approx(1.02)
    assert p["err_pct_vclk_nvml"] == pytest.approx((1980 / 1665 / 1.02 - 1) * 100, rel=1e-12)
    assert p["err_pct_vclk_eff"] == pytest.approx((1550 / 1500 / 1.02 - 1) * 100, rel=1e-12)


@pytest.mark.parametrize(("argv", "msg"), [
    ([], "--measure OUT or --analyse CSV is required"),
    (["--analyse", "/nonexistent/x.csv"], "--analyse /nonexistent/x.csv: no such file"),
])
def test_cli_bad_input_exit_2(argv: list[str], msg: str, capsys: pytest.CaptureFixture[str]) -> None:
    m = _load_eff()
    assert m.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and msg in err
