"""Provenance of measurements: the source digest names the code that ran (with or without git), ``FGSIM_COMMIT``
overrides a device machine's stale ``.git``, the matcher finds the commit a digest came from, and calibration files
record both (old files without them still load)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fgsim import provenance as pv
from fgsim.calibration import available_calibrations, load_calibration, new_calibration, save_calibration

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _tree(root: Path) -> None:
    files = {"fgsim/core.py": "x = 1\n", "fgsim/data/gpus/h200.json": '{"sms": 132}\n',
             "fgsim/data/calibrations/h200.json": "{}\n", "kernels/fgattn/kernel.py": "BLOCK = 64\n",
             "kernels/fgattn/data/launch.json": "{}\n", "kernels/fgattn/NOTES.md": "notes\n", "README.md": "readme\n",
             "tests/test_core.py": "def test(): pass\n"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_is_source_selects_code_launch_tables_and_gpu_files() -> None:
    assert all(pv.is_source(p) for p in ("fgsim/a.py", "fgsim/commands/b.py", "kernels/fgattn/k.py",
                                         "kernels/fgattn/data/launch.json", "fgsim/data/gpus/h200.json"))
    assert not any(pv.is_source(p) for p in ("README.md", "kernels/fgattn/NOTES.md", "tests/test_a.py",
                                             "fgsim/data/calibrations/h200.json", "fgsim/__pycache__/a.py",
                                             "kernels/other/k.py", "validation/x.py", "fgsim/data/gpus/x.md"))


def test_digest_changes_with_a_kernel_file_not_with_docs(tmp_path: Path) -> None:
    _tree(tmp_path)
    d0 = pv.source_digest(tmp_path)
    assert len(d0) == 64 and pv.source_files(tmp_path) == [
        "fgsim/core.py", "fgsim/data/gpus/h200.json", "kernels/fgattn/data/launch.json", "kernels/fgattn/kernel.py"]
    (tmp_path / "README.md").write_text("other readme\n")
    (tmp_path / "kernels/fgattn/NOTES.md").write_text("other notes\n")
    (tmp_path / "fgsim/data/calibrations/h200.json").write_text('{"a": 1}\n')
    (tmp_path / "fgsim/__pycache__").mkdir()
    (tmp_path / "fgsim/__pycache__/core.py").write_text("cached\n")
    assert pv.source_digest(tmp_path) == d0
    (tmp_path / "kernels/fgattn/kernel.py").write_text("BLOCK = 128\n")
    d1 = pv.source_digest(tmp_path)
    assert d1 != d0
    (tmp_path / "kernels/fgattn/data/launch.json").write_text('{"b": 2}\n')
    assert pv.source_digest(tmp_path) not in (d0, d1)
    # path and contents both count; moving bytes from one file to another changes the digest
    assert pv.digest_of([("a", b"xy"), ("b", b"")]) != pv.digest_of([("a", b"x"), ("b", b"y")])


def test_digest_of_this_repository_is_fast() -> None:
    t0 = time.perf_counter()
    d = pv.source_digest()
    assert time.perf_counter() - t0 < 0.5 and len(d) == 64
    assert len(pv.source_files()) > 20 and "fgsim/provenance.py" in pv.source_files()


def test_fgsim_commit_wins_over_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGSIM_COMMIT", " 0123456789abcdef0123456789abcdef01234567 ")
    assert pv.git_commit() == "0123456789abcdef0123456789abcdef01234567"
    env = pv.environment()
    assert env["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert env["source_digest"] == pv.source_digest() and set(pv.ENV_KEYS) <= set(env)
    monkeypatch.setenv("FGSIM_COMMIT", "")
    assert pv.git_commit() != "0123456789abcdef0123456789abcdef01234567"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@needs_git
def test_matcher_finds_the_commits_of_a_digest(tmp_path: Path) -> None:
    _tree(tmp_path)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    first = _git(tmp_path, "rev-parse", "HEAD")
    d_first = pv.source_digest(tmp_path)
    assert pv.commit_digest("HEAD", tmp_path) == d_first  # a clean checkout's digest is its commit's
    (tmp_path / "kernels/fgattn/kernel.py").write_text("BLOCK = 128\n")
    _git(tmp_path, "commit", "-q", "-am", "kernel")
    second = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "README.md").write_text("docs only\n")
    _git(tmp_path, "commit", "-q", "-am", "docs")
    head = _git(tmp_path, "rev-parse", "HEAD")
    d_head = pv.source_digest(tmp_path)
    assert pv.match_digest(d_head, tmp_path) == (True, [head, second])
    assert pv.match_digest(d_first[:12], tmp_path) == (False, [first])
    (tmp_path / "fgsim/core.py").write_text("x = 2\n")  # uncommitted: only the working tree has it
    assert pv.match_digest(pv.source_digest(tmp_path), tmp_path) == (True, [])
    assert pv.match_digest(d_head, tmp_path, max_commits=1) == (False, [head])
    with pytest.raises(ValueError, match="source digest"):
        pv.match_digest("xyz", tmp_path)


def test_match_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert pv.main(["--match", pv.source_digest(), "--commits", "1"]) == 0
    assert "working tree" in capsys.readouterr().out
    assert pv.main(["--match", "not-hex"]) == 2
    assert "--match" in capsys.readouterr().err
    old = _older_calibration(tmp_path)
    assert pv.main(["--match", str(old)]) == 2
    assert "records no source_digest" in capsys.readouterr().err
    cal = tmp_path / "c.json"
    cal.write_text(json.dumps({"source_digest": "0" * 64, "fitted_with": {"source_digest": pv.source_digest()}}))
    assert pv.main(["--match", str(cal), "--commits", "1"]) == 1  # the fit's digest matches, the measured one not
    out = capsys.readouterr().out
    assert "working tree" in out and "no match" in out


def _older_calibration(tmp_path: Path) -> Path:
    """The committed H200 calibration as a file written before digests were recorded (fields removed)."""
    d = json.loads(available_calibrations()["h200"].read_text())
    d.pop("source_digest", None)
    d.pop("fitted_with", None)
    p = tmp_path / "older-h200.json"
    p.write_text(json.dumps(d))
    return p


def test_calibration_records_the_digest_and_old_files_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(load_calibration(available_calibrations()["h200"]).source_digest) == 64  # the committed one records it
    old = load_calibration(_older_calibration(tmp_path))
    assert old.source_digest == "" and old.fitted_with == {} and old.commit  # older file: fields absent
    monkeypatch.setenv("FGSIM_COMMIT", "abc1234")
    cal = new_calibration("h200", old.params, old.fit, old.device, old.env, inputs=old.inputs,
                          resources=old.resources, commit="62eb8b3", source_digest="f" * 64)
    back = load_calibration(save_calibration(cal, tmp_path / "h200.json"))
    assert back.commit == "62eb8b3" and back.source_digest == "f" * 64
    assert back.fitted_with == {"commit": "abc1234", "source_digest": pv.source_digest()}
    assert back.params == old.params and back.fit == old.fit


def test_measurement_csv_and_interconnect_block_carry_the_digest() -> None:
    from fgsim.interconnect import CSV_FIELDS
    from fgsim.interconnect import provenance as ic_provenance
    from fgsim.validation.measure import RESULT_FIELDS

    assert RESULT_FIELDS[-1] == "source_digest" and "source_digest" in CSV_FIELDS  # last: appends stay aligned
    row = {"P": 2, "gpu_name": "NVIDIA H200", "date": "2026-11-30", "commit": "abc1234", "source_digest": "d" * 64,
           "op": "alltoall", "method": "CUDA graph"}
    text = ic_provenance([row], "ic.csv")
    assert "commit abc1234" in text and f"source_digest {'d' * 64}" in text
    assert "commit" not in ic_provenance([{**row, "commit": "", "source_digest": ""}], "ic.csv").split(")")[0]
