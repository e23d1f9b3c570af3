"""Revision 8's exp_poly pricing (issue 10): the FMA polynomial's instructions fill the FMA pipe beside the MUFU and
cost time only once that pipe's throughput, not the fitted effective FP32 work, is exceeded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fgsim.hardware import load_gpu
from fgsim.launchcfg import launch_config
from fgsim.model.cta_cost import tile_costs
from fgsim.model.occupancy import SOFTMAX_FP32_PIPE
from fgsim.model.params import ModelParams

GPU = load_gpu("h200")


def _chain(frac: float, fp32_per_score: float = 5.94) -> float:
    """Chain cycles of one dense D=128 M=128 BLOCK_N=128 tile (8 warps) with ``frac`` of P by the polynomial; MUFU
    instructions as the compiled loop has them (66 per thread and tile without the option, 64 frac fewer)."""
    cfg = launch_config("dense", "h200", 128, 128, 1)
    cfg = replace(cfg, extra={**{k: v for k, v in cfg.extra.items() if k != "exp_poly"},
                              **({"exp_poly": frac} if frac else {})})
    mufu = (66.0 - 64.0 * frac) * 256.0
    p = ModelParams(fp32_per_score=fp32_per_score, overlap_p=16.0)
    return float(tile_costs(cfg, GPU, p, np.array([0.0]), 132, softmax=(mufu, 0.0)).chain[0])


def test_polynomial_relieves_a_mufu_bound_tile_and_costs_once_the_fma_pipe_saturates() -> None:
    base, quarter, half, full = (_chain(f) for f in (0.0, 0.25, 0.5, 1.0))
    rate = GPU.fp32_flop_per_clk_per_sm / 2.0
    mufu0 = 66.0 * 256.0 / GPU.mufu_exp_per_clk_per_sm
    eff = (128 * 128 * 5.94 + 128 * 128) / rate
    assert mufu0 > eff  # the tile's softmax waits on the MUFU pipe without the option (H200 rates)
    assert quarter == pytest.approx(base - (mufu0 - eff), rel=1e-9)  # 1/4: MUFU relieved down to the effective work
    pipe_half = (128 * 128 * (SOFTMAX_FP32_PIPE + 3.5) + 128 * 128) / rate
    assert pipe_half > eff and half == pytest.approx(quarter + (pipe_half - eff), rel=1e-9)  # 1/2: the pipe binds
    assert full > half > quarter and quarter < base  # measured direction of the s9 sweep for the adopted 1/4


def test_without_the_option_the_pipe_term_never_binds_above_the_softmax_count() -> None:
    for fp in (SOFTMAX_FP32_PIPE, 4.0, 12.0):
        cfg = launch_config("dense", "h200", 128, 128, 1)
        cfg = replace(cfg, extra={k: v for k, v in cfg.extra.items() if k != "exp_poly"})
        p = ModelParams(fp32_per_score=fp, overlap_p=16.0)
        a = tile_costs(cfg, GPU, p, np.array([0.0]), 132, softmax=(1.0, 0.0)).chain[0]
        b = tile_costs(cfg, GPU, replace(p, fp32_per_score=fp + 1.0), np.array([0.0]), 132, softmax=(1.0, 0.0)).chain[0]
        assert b - a == pytest.approx(128 * 128 / (GPU.fp32_flop_per_clk_per_sm / 2.0), rel=1e-9)
