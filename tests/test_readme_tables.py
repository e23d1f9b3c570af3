"""The generated blocks of README.md and docs/*.md are exactly what the committed CSVs render to."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "validation" / "readme_tables.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def test_readme_and_docs_blocks_match_committed_data() -> None:
    r = _run("--check")
    assert r.returncode == 0, r.stderr


def test_default_files_include_the_docs_with_blocks() -> None:
    spec = importlib.util.spec_from_file_location("_readme_tables_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.default_files()
    assert ROOT / "README.md" in files
    assert ROOT / "docs" / "endtoend.md" in files
    # a page that only quotes a marker inside prose has no block and is not a file to render
    assert ROOT / "docs" / "contributing.md" not in files


def _stale_copy(tmp_path: Path, source: Path, block: str) -> tuple[Path, str]:
    text = source.read_text(encoding="utf-8")
    marker = f"<!-- BEGIN generated:{block} -->\n"
    assert marker in text
    edited = tmp_path / source.name
    edited.write_text(text.replace(marker, marker + "a hand-typed 9.9 s claim\n"), encoding="utf-8")
    return edited, text


def test_check_detects_a_stale_readme_block(tmp_path: Path) -> None:
    edited, original = _stale_copy(tmp_path, ROOT / "README.md", "predict_speed")
    r = _run("--check", "--readme", str(edited))
    assert r.returncode == 1
    assert "predict_speed" in r.stderr and str(edited) in r.stderr
    w = _run("--write", "--file", str(edited))
    assert w.returncode == 0, w.stderr
    assert edited.read_text(encoding="utf-8") == original


def test_check_detects_a_stale_docs_block(tmp_path: Path) -> None:
    edited, original = _stale_copy(tmp_path, ROOT / "docs" / "endtoend.md", "e2e_targets")
    readme = ROOT / "README.md"
    r = _run("--check", "--file", str(readme), "--file", str(edited))
    assert r.returncode == 1
    # the message names the stale file and block, and only that file
    assert "e2e_targets" in r.stderr and str(edited) in r.stderr
    assert "README.md" not in r.stderr
    w = _run("--write", "--file", str(edited))
    assert w.returncode == 0, w.stderr
    assert edited.read_text(encoding="utf-8") == original


def test_unpaired_marker_is_an_error_naming_the_file(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "endtoend.md").read_text(encoding="utf-8")
    end = "<!-- END generated:e2e_targets -->"
    assert end in text
    broken = tmp_path / "endtoend.md"
    bad = text.replace(end, "<!-- END generated:e2e_target -->")
    broken.write_text(bad, encoding="utf-8")
    r = _run("--check", "--file", str(broken))
    assert r.returncode == 2
    assert str(broken) in r.stderr
    w = _run("--write", "--file", str(broken))
    assert w.returncode == 2
    assert broken.read_text(encoding="utf-8") == bad  # nothing written


def test_e2e_targets_met_is_computed_from_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "validation" / "tables"))  # the renderers import _common
    spec = importlib.util.spec_from_file_location("_e2e_targets_under_test", ROOT / "validation" / "tables" /
                                                  "e2e_targets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    labels = module.TARGET_CONFIGS
    a, b = list(labels)[:2]
    assert module._met([(a, "FG 0.3", 4.9), (b, "FG 0.3", -5.0)], 5.0, " %", labels) == "yes"
    assert module._met([(a, "FG 0.3", 5.2), (b, "FG 0.3", 1.0)], 5.0, " %", labels) == \
        "no (1 of 2 within; 1.3B 480p FG 0.3 by 0.2 %)"
    assert module._met([(a, "FG 0.3", 5.2)], 5.0, " %", labels) == "no"
    assert module._met([(a, "FG 0.3", 50.0)], None, " %", labels) == "(diagnostic)"
    assert module._fmt(-9.84, 1, 5.0) == "**−9.8**" and module._fmt(-0.04, 1, 5.0) == "0.0"
