"""The sustained-load SM clock: a measured constant of ``fgsim calibrate``'s microbenchmarks, never fitted."""

from __future__ import annotations

import json

import numpy as np

from fgsim.calibrate_micro import measured_constants
from fgsim.hardware import load_gpu


def _row(micro: str, value: float, **args: object) -> dict[str, str]:
    return {"kind": "micro", "split": "calib", "micro": micro, "measured_ms": "1.0",
            "micro_args": json.dumps({**args, "value": value})}


def test_sustained_clock_is_recorded_as_the_median_of_its_rows(rng: np.random.Generator) -> None:
    mhz = [float(x) for x in rng.uniform(1500, 1980, 3)]
    rows = [_row("sustained_clock", v, unit="MHz", power_w=690.0) for v in mhz] + [_row("exp2", 4e13, per_sm=4)]
    const = measured_constants(rows, 1980.0, load_gpu("h200"))
    assert abs(const["sustained_clock_mhz"] - float(np.median(mhz))) < 1e-9
    assert "exp2_per_clk_per_sm" in const


def test_no_sustained_row_no_sustained_clock() -> None:
    const = measured_constants([_row("hbm_stream", 4000.0, unit="GB/s")], 1980.0, load_gpu("h200"))
    assert "sustained_clock_mhz" not in const and const["hbm_gbs"] == 4000.0
