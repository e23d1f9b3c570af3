"""``fgsim validate`` with a calibration other than the one of the frozen list's blind scoring: the frozen list is
rescored, not blind, beside the blind record, which stays as it is with the extrapolation band derived from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_validate_report_paths import _head  # the truncated-CSV helper these tests share

import fgsim.validation.report as report
from fgsim.calibration import available_calibrations, load_calibration
from fgsim.cli import main

RESULTS = Path(report.SUMMARY_PATH).parent / "results"
#: test16's measured kernel rows (validation/results/h200-2026-11-30-costmodel-test16.csv: 73 of the list's 76;
#: h-041 was dropped by the device script's id split, see validation/MODEL_NOTES.md)
TEST16_ROWS = 73
#: test17's measured kernel rows (validation/results/h200-2026-12-01-costmodel-test17.csv; the list has 74)
TEST17_ROWS = 73


def test_other_calibration_is_detected_from_the_fit_statistics() -> None:
    fit = {"n": 157, "mape": 8.14, "max_ape": 29.9}
    blind = {"calibration": {"n": 157, "mape": 7.66, "max_ape": 46.6}, "test": {"tuned": {}}}
    assert report.scored_with_other_calibration(blind, fit)
    assert not report.scored_with_other_calibration({**blind, "calibration": dict(fit)}, fit)
    assert not report.scored_with_other_calibration({"calibration": blind["calibration"]}, fit)  # no blind scoring
    assert not report.scored_with_other_calibration({}, fit)
    assert report.scored_with_other_calibration({**blind, "calibration": {**fit, "n": 145}}, fit)


def test_rescoring_leaves_the_blind_record_and_band(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "validation").mkdir(parents=True)
    blind = json.loads(report.SUMMARY_PATH.read_text())
    blind["calibration"] = {"n": 1, "mape": 99.0, "max_ape": 99.0}  # another calibration than the committed one
    summary, band = repo / "validation" / "costmodel_summary.json", repo / "transfer_bands.json"
    summary.write_text(json.dumps(blind))
    band.write_text('{"band_pct": 25.0}\n')
    before = summary.read_text(), band.read_text()
    monkeypatch.setattr(report, "SUMMARY_PATH", summary)
    monkeypatch.setattr(report, "BANDS_PATH", band)
    monkeypatch.setattr(report, "RESCORED_PATH", summary.with_name("costmodel_summary_rescored.json"))
    dev = _head(RESULTS / "h200-2026-11-30-costmodel-dev7.csv", tmp_path / "dev.csv", 9)
    test = _head(RESULTS / "h200-2026-11-30-costmodel-test7.csv", tmp_path / "test.csv", 9)
    out = tmp_path / "out"
    assert main(["validate", "--dev", str(dev), "--test", str(test), "--out-dir", str(out)]) == 0
    assert (summary.read_text(), band.read_text()) == before  # the blind record and its band untouched
    assert {p.name for p in out.iterdir()} == {"REPORT.md", "costmodel_summary_rescored.json"}
    text = (out / "REPORT.md").read_text()
    assert report.RESCORED_LABEL in text and f"one blind scoring of {report.FROZEN_LIST}" in text
    assert "scored once, blind" not in text.split("## The one blind scoring")[0]
    rs = json.loads((out / "costmodel_summary_rescored.json").read_text())
    cal = load_calibration(available_calibrations()["h200"])
    assert rs["calibration"]["mape"] == pytest.approx(cal.fit["mape"]) and rs["test_rows"] == 9
    assert rs["rescored_of"]["calibration_inputs"] == [Path(i["path"]).name for i in cal.inputs]


#: the calibration test15's one blind scoring used (calib13 as fitted before the tl-fallback rows were kept; the
#: committed calibration is calib13 with them: it scored test16 blind and rescored test15, not blind)
BLIND_CAL = Path(report.SUMMARY_PATH).parent / "costmodel_calibration_rev11_test15_blind.json"
#: the calibration test18's one blind scoring used: calib15 (fp32_per_score pinned at the softmax microbenchmark's
#: timed figure; frozen in 708e55c before test18 was read; not accepted afterwards, so not the committed calibration)
CALIB15 = RESULTS / "calib15-h200-2026-12-01.json"
#: test18's measured kernel rows (validation/results/h200-2026-12-01-costmodel-test18.csv; all 70 of the list's)
TEST18_ROWS = 70
#: test19's measured kernel rows (validation/results/h200-2026-12-01-costmodel-test19.csv; all 73 of the list's)
TEST19_ROWS = 73


def test_committed_blind_record_is_test19_with_calib14_and_the_earlier_lists_are_history() -> None:
    """The committed summary is test19's one blind scoring with revision 13 + the committed calib14 (session 17: calib16,
    the effective-clock refit, failed its pre-registered fit criterion, so test19 was scored with calib14 only; no
    rescoring exists); test18's blind scoring with calib15 (not accepted) and its rescoring with calib14 are kept as
    history (costmodel_summary_rev13_test18*.json); test17's blind scoring with revision 13 + calib14 is kept as history
    (costmodel_summary_rev13_test17.json), test16's with revision 11 + calib13
    (costmodel_summary_rev11_test16.json); test15's blind scoring with calib13's first fit (kept as
    validation/costmodel_calibration_rev11_test15_blind.json) is kept as history (costmodel_summary_rev11_test15.json)
    with its rescoring by calib13 (costmodel_summary_rev11_test15_rescored.json); revision 9 + calib12's blind scoring
    of test14, + calib11's of test13 and + calib10's of test12 and test11 are kept as history and those lists are
    development data; revision 8's blind scoring of test10 (calib9) is kept beside revision 7's of test9, revision 6's
    of test8 (calib8) and revision 5's of test7 (calib7) and test6 (calib6)."""
    dev, test = report.committed_lists()
    assert any(f.endswith("-test18.csv") for f in dev) and any(f.endswith("-test17.csv") for f in dev)
    assert any(f.endswith("-test16.csv") for f in dev)
    assert any(f.endswith("-test15.csv") for f in dev) and any(f.endswith("-test14.csv") for f in dev)
    assert any(f.endswith("-test13.csv") for f in dev) and any(f.endswith("-test12.csv") for f in dev)
    assert any(f.endswith("-test10.csv") for f in dev) and any(f.endswith("-test9.csv") for f in dev)
    assert [Path(f).name for f in test] == ["h200-2026-12-01-costmodel-test19.csv"]
    blind = json.loads(report.SUMMARY_PATH.read_text())
    cal = load_calibration(available_calibrations()["h200"])
    c15 = load_calibration(CALIB15)
    assert [Path(i["path"]).name for i in cal.inputs] == ["h200-2026-12-01-costmodel-calib14.csv"]
    assert not report.scored_with_other_calibration(blind, cal.fit)  # the committed calibration scored it, blind
    assert not report.RESCORED_PATH.is_file()
    assert blind["test_rows"] == TEST19_ROWS and blind["development_rows"] == 1819 + TEST17_ROWS + TEST18_ROWS
    t18 = json.loads(report.REV13B_PATH.read_text())  # test18, scored once with calib15 (not accepted)
    assert report.scored_with_other_calibration(t18, cal.fit) and not report.scored_with_other_calibration(t18, c15.fit)
    assert t18["calibration"]["n"] == 232 and t18["calibration"]["mape"] == pytest.approx(5.7726, abs=1e-3)
    assert c15.params.fp32_per_score == pytest.approx(c15.fit["fp32_per_score_from"]["timed"])
    assert c15.fit["fixed_by_measurement"]["fp32_per_score"] == pytest.approx(8.5389, abs=1e-3)
    assert t18["test_rows"] == TEST18_ROWS and t18["development_rows"] == 1819 + TEST17_ROWS  # test17 joined
    rs = json.loads(report.REV13B_RESCORED_PATH.read_text())  # test18 rescored (not blind) with calib14
    assert rs["test_files"] == t18["test_files"] and rs["development_files"] == t18["development_files"]
    assert rs["calibration"]["mape"] == pytest.approx(cal.fit["mape"]) and rs["test_rows"] == TEST18_ROWS
    rev13 = json.loads(report.REV13_PATH.read_text())  # test17, scored once with revision 13 + calib14
    assert rev13["test_files"] == ["h200-2026-12-01-costmodel-test17.csv"] and rev13["test_rows"] == TEST17_ROWS
    assert not report.scored_with_other_calibration(rev13, cal.fit) and rev13["development_rows"] == 1746 + TEST16_ROWS
    rev11b = json.loads(report.REV11B_PATH.read_text())  # test16, scored once with revision 11 + calib13
    assert rev11b["test_files"] == ["h200-2026-11-30-costmodel-test16.csv"] and rev11b["test_rows"] == TEST16_ROWS
    assert rev11b["calibration"]["n"] == 202 and rev11b["calibration"]["mape"] == pytest.approx(5.8304, abs=0.001)
    assert rev11b["development_rows"] == 1746 and report.scored_with_other_calibration(rev11b, cal.fit)
    rev11 = json.loads(report.REV11_PATH.read_text())  # test15, scored once with calib13's first fit
    assert rev11["test_files"] == ["h200-2026-11-30-costmodel-test15.csv"] and rev11["test_rows"] == 76
    assert rev11["calibration"]["n"] == 202 and rev11["calibration"]["mape"] == pytest.approx(6.1189, abs=0.01)
    assert report.scored_with_other_calibration(rev11, cal.fit)
    assert not report.scored_with_other_calibration(rev11, load_calibration(BLIND_CAL).fit)
    rs15 = json.loads(report.REV11_RESCORED_PATH.read_text())  # test15 rescored (not blind) with calib13
    assert rs15["test_files"] == rev11["test_files"] and rs15["calibration"]["mape"] == pytest.approx(5.8304, abs=0.001)
    rev9d = json.loads(report.REV9D_PATH.read_text())  # test14, scored once with revision 9 + calib12
    assert rev9d["test_files"] == ["h200-2026-11-30-costmodel-test14.csv"] and rev9d["test_rows"] == 78
    assert rev9d["calibration"]["n"] == 196 and rev9d["calibration"]["mape"] == pytest.approx(5.8188, abs=0.01)
    assert rev9d["development_rows"] == 1592 and rev9d["extrapolation_band_pct"] == pytest.approx(25.10, abs=0.01)
    rev9c = json.loads(report.REV9C_PATH.read_text())  # test13, scored once with revision 9 + calib11
    assert rev9c["test_files"] == ["h200-2026-11-30-costmodel-test13.csv"] and rev9c["test_rows"] == 78
    assert rev9c["calibration"] == rev9d["calibration"]  # calib12 has calib11's fit: the chase is not fitted
    assert rev9c["development_rows"] == 1514 and rev9c["extrapolation_band_pct"] == pytest.approx(30.84, abs=0.01)
    rev9b = json.loads(report.REV9B_PATH.read_text())  # test12, scored once with revision 9 + calib10
    assert rev9b["test_files"] == ["h200-2026-11-30-costmodel-test12.csv"] and rev9b["test_rows"] == 81
    assert rev9b["calibration"]["n"] == 179 and rev9b["calibration"]["mape"] == pytest.approx(5.935, abs=0.01)
    assert report.scored_with_other_calibration(rev9b, cal.fit)  # calib10, not the committed calibration
    assert rev9b["development_rows"] == 1433 and rev9b["extrapolation_band_pct"] == pytest.approx(20.28, abs=0.01)
    rev9 = json.loads(report.REV9_PATH.read_text())  # test11, scored once with the same model and calibration
    assert rev9["test_files"] == ["h200-2026-11-30-costmodel-test11.csv"] and rev9["test_rows"] == 81
    assert rev9["calibration"] == rev9b["calibration"]
    assert rev9["development_rows"] == 1352 and rev9["extrapolation_band_pct"] == pytest.approx(21.0, abs=0.01)
    rev8 = json.loads(report.REV8_PATH.read_text())
    assert rev8["test_files"] == ["h200-2026-11-30-costmodel-test10.csv"] and rev8["calibration"]["n"] == 164
    assert rev8["calibration"]["mape"] == pytest.approx(6.242, abs=0.01)  # calib9's fit with revision 8
    rev7 = json.loads(report.REV7_PATH.read_text())
    assert rev7["test_files"] == ["h200-2026-11-30-costmodel-test9.csv"] and rev7["calibration"]["n"] == 164
    assert rev7["calibration"]["mape"] == pytest.approx(6.02, abs=0.01)  # calib9's fit with revision 7
    rev5 = json.loads(report.REV5_PATH.read_text())
    assert rev5["test_files"] == ["h200-2026-11-30-costmodel-test6.csv"] and rev5["calibration"]["n"] == 157
    rev5b = json.loads(report.REV5B_PATH.read_text())
    assert rev5b["test_files"] == ["h200-2026-11-30-costmodel-test7.csv"] and rev5b["calibration"]["n"] == 157
    assert rev5b["calibration"]["mape"] == pytest.approx(8.1408, abs=1e-3)  # calib7's fit
    rev6 = json.loads(report.REV6_PATH.read_text())
    assert rev6["test_files"] == ["h200-2026-11-30-costmodel-test8.csv"] and rev6["calibration"]["n"] == 164
    assert rev6["calibration"]["mape"] == pytest.approx(7.2834, abs=1e-3)  # calib8's fit (revision 6)


def _same_scores(sc: dict, rec: dict) -> None:
    """``sc`` (a recomputed :func:`report.score`) equals the record ``rec`` for every axis, kernel and statistic."""
    assert set(sc) == set(rec) == {"tuned", "config", "sm", "dtype", "trace", "bench"}
    for ax, d in rec.items():
        assert set(sc[ax]) == set(d), ax
        for k, m in d.items():
            for q, v in m.items():
                if isinstance(v, float) and v != v:  # nan (a constant group): recomputed as nan too
                    assert sc[ax][k][q] != sc[ax][k][q], (ax, k, q)
                else:
                    assert sc[ax][k][q] == pytest.approx(v, rel=1e-9, abs=1e-12), (ax, k, q)


def test_test18_blind_record_and_rescoring_are_recomputed_from_the_committed_csv() -> None:
    """test18's blind record (history since test19) is what calib15 predicts for the committed test18 CSV, its
    rescoring what the committed calibration (calib14) predicts; a changed CSV, model or calibration fails here."""
    blind = json.loads(report.REV13B_PATH.read_text())
    rows = report.scored_rows([RESULTS / f for f in blind["test_files"]])
    assert len(rows) == blind["test_rows"] == TEST18_ROWS and {r["split"] for r in rows} == {"test18"}
    assert all(r.get("sm_mhz_eff") for r in rows)  # every row records the SMs' effective clock
    for cal, rec in ((load_calibration(CALIB15), blind),
                     (load_calibration(available_calibrations()["h200"]),
                      json.loads(report.REV13B_RESCORED_PATH.read_text()))):
        pred = report.predict_rows(rows, gpu="h200", params=cal.params, resources=cal.resources)
        _same_scores(report.score(rows, pred), rec["test"])
    sc = blind["test"]
    assert blind["extrapolation_band_pct"] == pytest.approx(report.extrapolation_band(sc), rel=1e-12)
    # REPORT.md keeps test18's blind scoring as a history section (cells: MAPE / median / max)
    text = (report.SUMMARY_PATH.parent / "REPORT.md").read_text()
    sec = text.split("one blind scoring of test18")[1].split("\n## ")[0]
    assert f"{sc['tuned']['fg']['mape']:.2f}" in sec and f"{sc['config']['dense']['max_ape']:.1f}" in sec


def test_test19_blind_record_is_recomputed_from_the_committed_csv() -> None:
    """test19's blind record is what the committed calibration (calib14) predicts for the committed test19 CSV (its
    long-run twins at their recorded NVML clocks), the extrapolation band is derived from it, and the clock axis the
    calib16 script recorded is the same scoring."""
    blind = json.loads(report.SUMMARY_PATH.read_text())
    rows = report.scored_rows([RESULTS / f for f in blind["test_files"]])
    assert len(rows) == blind["test_rows"] == TEST19_ROWS and {r["split"] for r in rows} == {"test19"}
    assert all(r.get("sm_mhz_eff") for r in rows) and {r["launch_table_sha256"][:12] for r in rows} == {"0642c81d6ea6"}
    assert sum("5 interleaved rounds" in r["bench"] for r in rows) == 3  # the long-run twins (the clock axis)
    cal = load_calibration(available_calibrations()["h200"])
    pred = report.predict_rows(rows, gpu="h200", params=cal.params, resources=cal.resources)
    sc = report.score(rows, pred)
    _same_scores(sc, blind["test"])
    assert blind["extrapolation_band_pct"] == pytest.approx(report.extrapolation_band(sc), rel=1e-12)
    band = json.loads(report.BANDS_PATH.read_text())
    assert band["band_pct"] == pytest.approx(round(report.extrapolation_band(sc), 1)) and "test19" in band["source"]
    rec = json.loads((report.SUMMARY_PATH.parent / "costmodel_calib16_test19.json").read_text())
    assert rec["rule_b"]["applied"] is False and rec["calib16"] is None and set(rec["scored"]) == {"calib14"}
    _same_scores(rec["scored"]["calib14"]["axes"], blind["test"])
    assert len(rec["clock_axis"]["calib14"]["rows"]) == 3


def test_test17_blind_record_is_recomputed_from_the_committed_csv() -> None:
    """test17's recorded statistics (history since test18: every axis and kernel family) are what calib14, the
    committed calibration, predicts for the committed test17 CSV (its long-run twins at their recorded SM clocks)."""
    rec = json.loads(report.REV13_PATH.read_text())
    rows = report.scored_rows([RESULTS / f for f in rec["test_files"]])
    assert len(rows) == rec["test_rows"] == TEST17_ROWS and {r["split"] for r in rows} == {"test17"}
    assert sum("5 interleaved rounds" in r["bench"] for r in rows) == 3  # the long-run twins
    cal = load_calibration(available_calibrations()["h200"])
    pred = report.predict_rows(rows, gpu="h200", params=cal.params, resources=cal.resources)
    sc = report.score(rows, pred)
    _same_scores(sc, rec["test"])
    assert rec["extrapolation_band_pct"] == pytest.approx(report.extrapolation_band(sc), rel=1e-12)
