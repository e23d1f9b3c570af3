"""The code base stays ruff-clean (the style rules live in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_check_is_clean():
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    try:
        proc = subprocess.run([*cmd, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        pytest.skip("ruff is not installed (it comes with the [test] extra)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
