"""V-CLK (validation/MODEL_NOTES.md, "Session 14"; accepted by its rule): a measured row priced at the SM clock it
recorded under load; rows without one, and predictions for unmeasured runs, at the GPU file's sustained clock."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fgsim.validation import report
from fgsim.validation.report import predict_rows, recorded_clock, row_gpu

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "validation" / "results" / "h200-2026-11-30-costmodel-test12.csv"


@pytest.mark.parametrize("value,want", [("1980", 1980.0), (" 1755 ", 1755.0), ("", None), ("n/a", None),
                                        ("120", None), ("9000", None)])
def test_recorded_clock_reads_plausible_clocks_only(value: str, want: float | None) -> None:
    assert recorded_clock({"sm_clock_mhz": value}) == want
    assert recorded_clock({}) is None


def test_row_gpu_takes_the_recorded_clock_when_asked_and_by_default() -> None:
    row = {"gpu_key": "h200", "sm_count": "48", "sm_clock_mhz": "1650"}
    g0 = row_gpu(row, at_recorded_clock=False)
    assert g0.sustained_clock_mhz == 1980.0 and g0.sm_count == 48
    assert row_gpu(row).sustained_clock_mhz == 1650.0  # the committed default: V-CLK
    g = row_gpu(row, at_recorded_clock=True)
    assert g.sustained_clock_mhz == 1650.0 and g.sm_count == 48
    assert row_gpu({"gpu_key": "h200", "sm_clock_mhz": ""}, at_recorded_clock=True).sustained_clock_mhz == 1980.0


def test_prices_at_the_recorded_clock_slower_and_unchanged_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [r for r in csv.DictReader(CSV.open(newline=""))
            if r["status"] == "ok" and r["kernel"] == "fg" and r["axis"] == "tuned"][:2]
    assert len(rows) == 2
    slow = dict(rows[0], sm_clock_mhz="990")
    none = dict(rows[1], sm_clock_mhz="")
    assert report.PRICE_AT_RECORDED_CLOCK is True  # V-CLK accepted by its rule (validation/MODEL_NOTES.md)
    monkeypatch.setattr(report, "PRICE_AT_RECORDED_CLOCK", False)
    base = predict_rows([slow, none])
    monkeypatch.setattr(report, "PRICE_AT_RECORDED_CLOCK", True)
    clk = predict_rows([slow, none])
    assert clk[1] == base[1]  # no recorded clock: the GPU file's
    assert 1.2 * base[0] < clk[0] < 2.0 * base[0]  # half the clock: slower, but bandwidth-bound parts do not scale
