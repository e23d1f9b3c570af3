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


def test_calib16_record_is_its_derived_inputs_priced_at_k_times_the_effective_clock() -> None:
    """calib16 (session 17, not accepted: fit MAPE 6.118 > 6.10 %): its inputs are the committed derived CSVs (by
    sha256), every fitted row is priced at k x sm_mhz_eff with the derive record's k, fp32_per_score lies inside the
    pre-registered bounds, and its parameters price its rows at the recorded fit statistics."""
    import json

    import numpy as np

    from fgsim.calibration import load_calibration
    from fgsim.provenance import file_sha256
    from fgsim.validation.report import predict_rows, read_results

    cal = load_calibration(c16.CALIB16)
    rec = json.loads(c16.DERIVE_JSON.read_text())
    assert [i["sha256"] for i in cal.inputs] == [file_sha256(REPO / d["path"]) for d in rec["derived"]]
    lo, hi = cal.fit["fp32_per_score_from"]["bounds"]
    assert lo <= cal.params.fp32_per_score <= hi and cal.fit["mape"] > c16.FIT_MAPE_MAX  # criterion (a) failed
    rows = [r for r in read_results([REPO / d["path"] for d in rec["derived"]])
            if r.get("split") == "calib" and (r.get("kind") or "kernel") == "kernel" and r.get("measured_ms")]
    assert len(rows) == cal.fit["n"] == rec["rows"]
    k = rec["k_nvml_over_eff"]
    assert all(abs(float(r["sm_clock_mhz"]) - k * float(r["sm_mhz_eff"])) <= 0.051 for r in rows)
    props = {kk: float(v["value"]) for kk, v in cal.gpu_properties.items()}
    pred = predict_rows(rows, gpu=cal.gpu, params=cal.params, resources=cal.resources, gpu_properties=props)
    ape = np.abs(pred / np.array([float(r["measured_ms"]) * 1e-3 for r in rows]) - 1) * 100
    assert ape.mean() == pytest.approx(cal.fit["mape"], rel=1e-6)
