"""The committed operator calibration ``fgsim/data/ops/h200.json`` is exactly what
``validation/e2e_calibrate.py`` rebuilds from the committed raw e2e outputs and benchmark CSVs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("e2e_calibrate", ROOT / "validation" / "e2e_calibrate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_ops_calibration_is_rebuilt_byte_for_byte() -> None:
    mod = _load()
    assert mod.build() == mod.OUT.read_text()


def test_cudnn_shape_sources_are_a_fixed_list_of_committed_csvs() -> None:
    mod = _load()
    res = ROOT / "validation" / "results"
    assert all((res / n).is_file() for n in mod.CUDNN_SHAPE_CSVS)
    assert mod.CLOCK.is_file()
