"""fgsim.fileio: atomic writers leave either the old file or the whole new one."""

from __future__ import annotations

import csv

import pytest

from fgsim import fileio


def test_write_csv_atomic_columns_and_contents(tmp_path):
    rows = [{"a": 1, "b": "x"}, {"b": "y", "c": 2.5}]
    p = fileio.write_csv_atomic(tmp_path / "r.csv", rows)
    got = list(csv.DictReader(open(p, newline="")))
    assert list(got[0]) == ["a", "b", "c"]  # every key, first-seen order
    assert got == [{"a": "1", "b": "x", "c": ""}, {"a": "", "b": "y", "c": "2.5"}]
    fileio.write_csv_atomic(p, rows[:1], ["b", "a"])
    assert open(p).read().splitlines() == ["b,a", "x,1"]
    assert [q.name for q in tmp_path.iterdir()] == ["r.csv"]  # no temporary left behind


def test_write_csv_atomic_keeps_the_old_file_on_error(tmp_path):
    p = fileio.write_text_atomic(tmp_path / "r.csv", "old\n")
    with pytest.raises(ValueError):
        fileio.write_csv_atomic(p, [{"a": 1, "zz": 2}], ["a"])  # a key outside the columns
    assert p.read_text() == "old\n" and [q.name for q in tmp_path.iterdir()] == ["r.csv"]
