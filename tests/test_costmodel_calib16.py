"""validation/costmodel_calib16.py (session 17, M10): rows priced at k x the effective clock keep NVML's reading,
k maps the median effective clock onto the median NVML clock, a row without an effective clock is refused, and the
acceptance rule counts the cells a scoring is worse in."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("costmodel_calib16", REPO / "validation" / "costmodel_calib16.py")
c16 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(c16)  # type: ignore[union-attr]


def _row(i: int, nvml: str, eff: str) -> dict[str, str]:
    return {"case_id": f"c-{i:03d}", "kernel": "fg", "sm_clock_mhz": nvml, "sm_mhz_eff": eff}


def test_eff_scale_and_pricing_keep_nvml_scale() -> None:
    rows = [_row(0, "1980", "1700.0"), _row(1, "1980", "1800.0"), _row(2, "1965", "1750.0")]
    k = c16.eff_scale(rows)
    assert k == pytest.approx(1980.0 / 1750.0)
    out = c16.at_eff_clock(rows, k)
    assert [r["sm_clock_mhz_nvml"] for r in out] == ["1980", "1980", "1965"]
    assert [float(r["sm_clock_mhz"]) for r in out] == pytest.approx([k * 1700, k * 1800, 1980.0], abs=0.05)
    assert rows[0]["sm_clock_mhz"] == "1980", "the input rows are not changed"
    # the clock ratio between two rows is their effective clocks' ratio
    assert float(out[1]["sm_clock_mhz"]) / float(out[0]["sm_clock_mhz"]) == pytest.approx(1800 / 1700, rel=1e-4)
    with pytest.raises(ValueError, match="c-003 fg: no sm_mhz_eff"):
        c16.at_eff_clock([_row(3, "1980", "")], k)


def test_short_source_keeps_the_words_the_model_reads() -> None:
    from types import SimpleNamespace

    from fgsim.model.occupancy import _tuned_figures_apply

    for long in ("what-if of an impl-gluon entry: its tl kernel; " + "x" * 2000,
                 "tuned run 15; " + "x" * 2000 + " (validation override)"):
        s = c16._short_source(long)
        assert len(s) < 140 and s[:20] == long[:20] and s[-20:] == long[-20:]
        assert not _tuned_figures_apply(SimpleNamespace(source=s, extra={}))  # type: ignore[arg-type]
    assert c16._short_source("tuned run 15") == "tuned run 15"


def test_cells_worse_counts_cells_of_two_rows_worse_by_more_than_a_point() -> None:
    def cell(m: float, n: int = 3) -> dict[str, float]:
        return {"mape": m, "n": n}

    a = {"tuned": {"fg": cell(5.0), "block": cell(4.0), "dense": cell(9.0)}, "trace": {"fg": cell(9.0, 1)}}
    b = {"tuned": {"fg": cell(3.9), "block": cell(3.5), "dense": cell(8.0)}, "trace": {"fg": cell(1.0, 1)}}
    assert c16.cells_worse(a, b) == ["tuned/fg"]  # block +0.5, dense +1.0 (not more), trace 1 row
