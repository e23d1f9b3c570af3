"""Packaging decisions: the reference DiT's weights stay in the repository, out of wheels, and can be pointed to."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_weights_are_excluded_from_wheels_but_committed() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "data/reference/weights.safetensors" in conf["tool"]["setuptools"]["exclude-package-data"]["fgsim"]
    assert (ROOT / "fgsim" / "data" / "reference" / "weights.safetensors").stat().st_size > 1e6


def test_weights_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fgsim import reference as ref
    from fgsim.errors import FgsimError

    monkeypatch.delenv(ref.WEIGHTS_ENV, raising=False)
    assert ref.default_weights_path() == ref.DEFAULT_WEIGHTS
    missing = tmp_path / "elsewhere.safetensors"
    monkeypatch.setenv(ref.WEIGHTS_ENV, str(missing))
    assert ref.default_weights_path() == missing
    pytest.importorskip("torch")
    with pytest.raises(FgsimError, match="elsewhere.safetensors: reference DiT weights not found.*not packaged"):
        ref.load()
