"""Measured GPU properties transfer within an architecture: the H100 has no calibration of its own and takes
the H200's fitted parameters (the same SM); it also takes the L2 -> SM port the H200's calibration measured (the
same SM and L2 design), while its memory bandwidths stay the H100 file's."""

from __future__ import annotations

import json

import numpy as np

from fgsim.calibration import available_calibrations, resolve
from fgsim.hardware import load_gpu, load_gpu_file


def _h200_port() -> float:
    data = json.loads(available_calibrations()["h200"].read_text())
    return float(data["gpu_properties"]["l2_port_bytes_per_clk"]["value"])


def test_h100_takes_the_h200_measured_l2_port_and_keeps_its_own_memory():
    h100, h200 = load_gpu("h100"), load_gpu("h200")
    spec = load_gpu("h100", measured=False)
    port = _h200_port()
    assert spec.l2_port_bytes_per_clk != port  # the H100 file's spec value differs: the transfer is visible
    assert h100.l2_port_bytes_per_clk == h200.l2_port_bytes_per_clk == port
    assert "measured on the h200" in h100.sources["l2_port_bytes_per_clk"]
    for f in ("hbm_bandwidth_gbs", "l2_bandwidth_gbs", "sm_count", "sustained_clock_mhz", "l2_size_mb"):
        assert getattr(h100, f) == getattr(spec, f), f
    assert h100.hbm_bandwidth_gbs != h200.hbm_bandwidth_gbs
    # a file path is taken as written; another architecture keeps its own description
    assert load_gpu_file(h100.path).l2_port_bytes_per_clk == spec.l2_port_bytes_per_clk
    a100 = load_gpu("a100")
    assert a100.l2_port_bytes_per_clk == load_gpu("a100", measured=False).l2_port_bytes_per_clk


def test_h100_note_says_so():
    note = resolve(load_gpu("h100")).note
    assert "L2 -> SM port measured on the h200" in note and "memory bandwidths" in note


def test_h100_prediction_uses_the_transferred_port(test_seed):
    """An FG call whose per-SM L2 stream is bound by the port: the H100 priced with the H200's measured port
    differs from the same call with the H100 file's spec port, in the direction of the larger port."""
    from fgsim.calibration import resolve_params
    from fgsim.costmodel import predict_counts
    from fgsim.launchcfg import launch_config

    rng = np.random.default_rng(test_seed)
    n, heads, m = 8192, 12, 64
    counts = rng.integers(n // 4, n // 2, size=(heads, n // m)).astype(np.int64)
    cfg = launch_config("fg", "h100", 128, m, 1)
    out = {}
    for measured in (True, False):
        gpu = load_gpu("h100", measured=measured)
        params = resolve_params(gpu)[0]
        out[measured] = float(predict_counts(counts, n, cfg, gpu, params)[0])
    faster = _h200_port() > load_gpu("h100", measured=False).l2_port_bytes_per_clk
    assert (out[True] < out[False]) if faster else (out[True] > out[False])
