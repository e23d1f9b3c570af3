"""Launch configurations the cost model reads: the kernel's own table, and what-if entries for other GPUs."""

from __future__ import annotations

import pytest

from fgsim.costmodel import occupancy, shared_bytes
from fgsim.errors import FgsimError
from fgsim.hardware import load_gpu
from fgsim.launchcfg import launch_config


def test_h200_entry_is_the_kernels_own():
    cfg = launch_config("fg", "h200", 128, 128, 1)
    assert "what-if" not in cfg.source
    assert cfg.kernel == "fg" and cfg.block_m == 128


@pytest.mark.parametrize("kernel", ["fg", "block", "dense"])
def test_borrowed_entry_is_shrunk_to_fit_a_smaller_gpu(kernel):
    gran = 128 if kernel == "block" else 1
    h200 = launch_config(kernel, "h200", 128, 128, gran)
    a100 = launch_config(kernel, "a100", 128, 128, gran)
    limit = load_gpu("a100").smem_per_cta_kb * 1024
    if shared_bytes(h200) <= limit:  # fits an A100 as it is (the 2026-11-30 two-per-SM dense/block entries)
        assert "shrunk" not in a100.source
        assert (a100.block_n, a100.num_stages) == (h200.block_n, h200.num_stages)
        return
    assert shared_bytes(h200) > limit  # the H200 entry would not launch on an A100
    assert shared_bytes(a100) <= limit
    assert "what-if fallback" in a100.source and "shrunk to fit a100" in a100.source
    assert a100.num_stages <= h200.num_stages and a100.block_n <= h200.block_n
    occupancy(a100, load_gpu("a100"))  # no error: it fits


def test_same_architecture_entry_is_not_shrunk_when_it_fits():
    cfg = launch_config("fg", "h100", 128, 128, 1)
    assert "h200 entry" in cfg.source and "shrunk" not in cfg.source


def test_unknown_kernel_is_rejected():
    with pytest.raises(FgsimError, match="unknown kernel 'sparse'"):
        launch_config("sparse", "h200", 128, 128)
