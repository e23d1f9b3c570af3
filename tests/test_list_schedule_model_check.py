"""validation/list_schedule_model_check.py: bad inputs fail with one line and exit 2, before any work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
import list_schedule_model_check as lsm  # noqa: E402


def test_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        lsm.main([str(tmp_path / "nope.csv")])
    assert e.value.code == 2 and "nope.csv: no such file" in capsys.readouterr().err


def test_not_a_probe_csv(tmp_path, capsys):
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    assert lsm.main([str(f), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.csv: not a ws2_list_probe timing CSV" in err[0]
    assert not (tmp_path / "o.csv").exists()


def test_problems_pair_entry_and_list_rows(tmp_path):
    f = tmp_path / "t.csv"
    head = "shape,H,N,n_text,density_target,variant,ms\n"
    f.write_text(head + "H12 N1024+512text D128 natural,12,1536,512,0.1,entry,2.0\n"
                 "H12 N1024+512text D128 natural,12,1536,512,0.1,list,1.5\n"
                 "H12 N1024 D128,12,1024,0,0.1,entry,1.0\n")  # no list row: dropped
    (p,) = lsm.problems(f)
    assert p == dict(shape="H12 N1024+512text D128 natural", h=12, n_text=512, n_video=1024, dt=0.1, ordered=False,
                     entry_ms=2.0, list_ms=1.5)
