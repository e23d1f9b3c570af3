"""Revision 12 (validation/MODEL_NOTES.md, "Session 14, helper M4"): at a row's recorded SM clock only the SM-clocked
terms follow the clock; the memory-side latency (``mem_latency``) keeps its nanoseconds. Rows at the GPU file's clock
or without a recorded clock are priced exactly as before."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fgsim.errors import FgsimError
from fgsim.model.params import MEMORY_CLOCKED_CYCLES, ModelParams, at_sm_clock
from fgsim.validation import report
from fgsim.validation.report import predict_rows

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "validation" / "results" / "h200-2026-11-30-costmodel-test12.csv"


def test_at_sm_clock_holds_memory_latency_in_ns_and_nothing_else() -> None:
    p = ModelParams(mem_latency_cycles=800.0, row_cycles=500.0, tile_sync_cycles=80.0)
    assert at_sm_clock(p, 1980.0, 1980.0) is p
    h = at_sm_clock(p, 990.0, 1980.0)
    assert MEMORY_CLOCKED_CYCLES == ("mem_latency_cycles",)
    assert h.mem_latency_cycles == pytest.approx(400.0)  # 800 cycles at 1980 MHz = 404 ns = 400 cycles at 990 MHz
    d0, d1 = p.as_dict(), h.as_dict()
    assert {k for k in d0 if d0[k] != d1[k]} == {"mem_latency_cycles"}
    for bad in ((0.0, 1980.0), (1650.0, -1.0)):
        with pytest.raises(FgsimError, match="at_sm_clock: clocks must be positive MHz"):
            at_sm_clock(p, *bad)


def test_split_prices_like_vclk_at_the_reference_clock_and_not_slower_below_it(monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    rows = [r for r in csv.DictReader(CSV.open(newline=""))
            if r["status"] == "ok" and r["kernel"] == "fg" and r["axis"] == "tuned"][:3]
    assert len(rows) == 3
    rows = [dict(rows[0], sm_clock_mhz="1200"), dict(rows[1], sm_clock_mhz=""), dict(rows[2], sm_clock_mhz="1980")]
    monkeypatch.setattr(report, "PRICE_AT_RECORDED_CLOCK", True)
    monkeypatch.setattr(report, "CLOCK_MODEL", "vclk")
    vclk = predict_rows(rows)
    monkeypatch.setattr(report, "CLOCK_MODEL", "split")
    split = predict_rows(rows)
    assert split[1] == vclk[1] and split[2] == vclk[2]  # no clock / the GPU file's clock: unchanged
    assert split[0] < vclk[0]  # the memory latency keeps its ns: fewer cycles at 1200 MHz
    assert split[0] > vclk[0] * 0.5
