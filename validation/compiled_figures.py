"""Compiled-kernel figures (registers, shared memory, tile-loop SASS) of every launch configuration the H200
calibration runs measured, for pricing measurements made on an earlier launch table. CPU only.

The committed calibration's ``resources`` hold the figures of the configurations its own rows ran (the final
launch table). A measurement made on an earlier table ran configurations that table's rows no longer contain;
their figures are facts of the compiled kernels, recorded in the earlier calibration CSVs, not fitted values.
Without them the cost model falls back to estimated resources (``fgsim.model.occupancy.compiled_resources``).
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "validation" / "results"
#: The H200 calibration measurements, oldest first (a later row of the same configuration wins).
CALIBRATION_CSVS = tuple(RESULTS / f"h200-2026-11-30-costmodel-{n}.csv"
                         for n in ("calib", "calib4", "calib5", "calib5b", "calib6", "calib7"))


@functools.lru_cache(maxsize=2)
def measured_resources(gpu: str = "h200") -> dict[str, Any]:
    """{config key: compiled figures}: every calibration CSV's rows (later files win), then the committed
    calibration's own table on top."""
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.validation.measure import resources_table

    out: dict[str, Any] = {}
    for path in CALIBRATION_CSVS:
        if path.is_file():
            with path.open(newline="") as fh:
                out.update(resources_table(list(csv.DictReader(fh))))
    out.update(resolve(load_gpu(gpu)).resources or {})
    return out
