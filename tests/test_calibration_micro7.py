"""Revision 7's measured SM rates: the ``fp32`` and ``mma`` microbenchmarks' rows become the FP32 rate, the MUFU
rate and the tensor-pipe figures in the units the model uses (exact arithmetic on hand-made rows)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fgsim.calibrate_micro import measured_constants, mma_measured
from fgsim.hardware import load_gpu


def _row(micro: str, value: float, **args: object) -> dict[str, str]:
    return {"micro": micro, "kind": "micro", "micro_args": json.dumps({**args, "value": value})}


def test_fp32_and_mufu_rates_per_clock_per_sm() -> None:
    g = load_gpu("h200", measured=False)
    clk = 1900.0
    # 120 FFMA per clock per SM (x2 FLOP), 15.5 exp2 per clock per SM; the best of the programs-per-SM settings
    rows = [_row("fp32", 120.0 * clk * 1e6 * g.sm_count, per_sm=4), _row("fp32", 100.0 * clk * 1e6 * g.sm_count, per_sm=8),
            _row("exp2", 15.5 * clk * 1e6 * g.sm_count, per_sm=4)]
    c = measured_constants(rows, clk, g)
    assert c["fp32_flop_per_clk_per_sm"] == pytest.approx(240.0)
    assert c["mufu_exp_per_clk_per_sm"] == pytest.approx(15.5) == c["exp2_per_clk_per_sm"]


def test_mma_cycles_efficiency_and_floor() -> None:
    g = load_gpu("h200", measured=False)
    clk = 1.98e9
    seed = 20261130
    rng = np.random.default_rng(seed)
    print("seed", seed)
    cyc = {(256, 1): 140.0, (256, 2): 133.0 + rng.uniform(0, 1), (32, 1): 55.0, (32, 2): 52.0}
    rows = [_row("mma", clk * g.sm_count / c, n=n, per_sm=p) for (n, p), c in cyc.items()]
    m = mma_measured(rows, clk, g)
    assert m["wgmma_cycles_n256_p2"] == pytest.approx(cyc[(256, 2)])
    eff = (64 * 256 * 16 * 2 / 4096) / cyc[(256, 2)]  # 128 cycles at the peak over the fewest measured
    assert m["mma_eff_measured"] == pytest.approx(eff)
    assert m["wgmma_min_cycles_measured"] == pytest.approx(52.0 * eff)
    assert mma_measured([_row("exp2", 1.0)], clk, g) == {}
