"""The README's generated blocks are exactly what the committed CSVs render to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "validation" / "readme_tables.py"


def test_readme_blocks_match_committed_data() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_check_detects_a_stale_block(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = "<!-- BEGIN generated:predict_speed -->\n"
    assert marker in readme
    edited = tmp_path / "README.md"
    edited.write_text(readme.replace(marker, marker + "a hand-typed 9.9 s claim\n"), encoding="utf-8")
    r = subprocess.run([sys.executable, str(SCRIPT), "--check", "--readme", str(edited)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1
    assert "predict_speed" in r.stderr
    w = subprocess.run([sys.executable, str(SCRIPT), "--write", "--readme", str(edited)],
                       capture_output=True, text=True, cwd=ROOT)
    assert w.returncode == 0, w.stderr
    assert edited.read_text(encoding="utf-8") == readme
