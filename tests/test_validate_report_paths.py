"""``fgsim validate`` (CPU scoring): a report written with --out-dir leaves the committed summary and band alone,
and without --dev/--test it rescores the committed results (it used to score nothing and overwrite
validation/costmodel_summary.json with a summary of nothing)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import fgsim.validation.report as report
from fgsim.cli import main

RESULTS = Path(report.SUMMARY_PATH).parent / "results"


def _head(src: Path, dst: Path, n: int) -> Path:
    with src.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with dst.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:n])
    return dst


def test_out_dir_keeps_summary_and_band_beside_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "validation").mkdir(parents=True)
    summary, band = repo / "validation" / "costmodel_summary.json", repo / "transfer_bands.json"
    summary.write_text("{}\n")
    band.write_text("{}\n")
    monkeypatch.setattr(report, "SUMMARY_PATH", summary)
    monkeypatch.setattr(report, "BANDS_PATH", band)
    dev = _head(RESULTS / "h200-2026-11-30-costmodel-dev4.csv", tmp_path / "dev.csv", 12)
    test = _head(RESULTS / "h200-2026-11-30-costmodel-test4.csv", tmp_path / "test.csv", 12)
    out = tmp_path / "out"
    assert main(["validate", "--dev", str(dev), "--test", str(test), "--out-dir", str(out)]) == 0
    assert summary.read_text() == "{}\n" and band.read_text() == "{}\n"  # committed files untouched
    assert {p.name for p in out.iterdir()} == {"REPORT.md", "costmodel_summary.json", "transfer_bands.json"}
    assert "development_rows" in (out / "costmodel_summary.json").read_text()


def test_default_lists_are_the_committed_results() -> None:
    dev, test = report.committed_lists()
    assert dev and test and all(Path(f).is_file() for f in dev + test)
    # test19 is the frozen list (blind: revision 13 + calib14); test18 to test5 (revision 13 + calib15's and calib14's,
    # revision 11 + calib13's, its first fit's, revision 9 + calib12's, calib11's and calib10's frozen lists, revisions
    # 8 to 4) are development data, like test4
    assert any("test19" in f for f in test) and any("test18" in f for f in dev) and any("test4" in f for f in dev)
    assert not any("test19" in f for f in dev)
