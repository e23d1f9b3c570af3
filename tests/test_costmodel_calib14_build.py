"""validation/costmodel_calib14.py: calib13's stg rows stay, re-measured rows of another row end are added under
``<case_id>/<row end>``, same-row-end re-measurements are dropped, new cases are added, the recorded-not-fitted
rows stay last, every Gluon row names its row end; bad inputs exit 2 with one line."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mod():
    spec = importlib.util.spec_from_file_location("_calib14", ROOT / "validation" / "costmodel_calib14.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)  # type: ignore[union-attr]
    return m


def _row(cid: str, kernel: str, epi: str | None, split: str = "calib", impl: str = "gluon") -> dict[str, str]:
    g = {"form": "ws2", "schedule": "list", **({"epilogue": epi} if epi else {})}
    ex = {"impl": impl, "gluon": g} if impl == "gluon" else {"one_row": True}
    return {"kind": "kernel", "case_id": cid, "split": split, "kernel": kernel, "launch_extra": json.dumps(ex),
            "measured_ms": "1.0", "status": "ok", "commit": "old"}


def test_build_keeps_stg_rows_and_adds_other_row_ends() -> None:
    m = _mod()
    old = [_row("c-000", "fg", None), _row("c-000", "block", None, impl="tl"), _row("c-093", "fg", None),
           _row("c-050", "block", None, split="calib-tl", impl="tl"),
           _row("c-000", "fg", None, split="calib-tl", impl="tl")]  # a kept tl row of the same key: not compared
    new = [_row("c-000", "fg", "tma_sel"), _row("c-000", "block", None, impl="tl"), _row("c-129", "fg", "tma_sel"),
           {**_row("c-130", "fg", "tma_sel"), "status": "error: x"}]
    rows, counts = m.build(old, new, "abc")
    assert counts == {"added": 2, "renamed": 1, "dropped_same_row_end": 1}
    assert [r["case_id"] for r in rows] == ["c-000", "c-000", "c-093", "c-000/tma_sel", "c-129", "c-050", "c-000"]
    assert [r["row_end"] for r in rows] == ["stg", "", "stg", "tma_sel", "tma_sel", "", ""]
    assert rows[3]["commit"] == "abc" and rows[0]["commit"] == "old"


def test_main_writes_the_csv_and_refuses_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _mod()
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    for p, rows in ((old, [_row("c-000", "fg", None)]), (new, [_row("c-116", "fg", "tma_sel")])):
        with p.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    out = tmp_path / "c14.csv"
    assert m.main([str(old), str(new), str(out), "--commit", "abc"]) == 0
    got = list(csv.DictReader(out.open()))
    assert [r["case_id"] for r in got] == ["c-000", "c-116"] and got[1]["row_end"] == "tma_sel"
    assert m.main([str(old), str(tmp_path / "nope.csv"), str(out), "--commit", "abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.csv" in err and "\n" not in err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert m.main([str(old), str(bad), str(out), "--commit", "abc"]) == 2
    assert "not a harness CSV" in capsys.readouterr().err
