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


@pytest.mark.parametrize("gpu", ["a100", "l40s"])
@pytest.mark.parametrize("kernel", ["fg", "block", "dense"])
@pytest.mark.parametrize("block_m", [64, 128])
def test_borrowed_entry_fits_a_smaller_gpu(kernel, gpu, block_m):
    gran = block_m if kernel == "block" else 1
    h200 = launch_config(kernel, "h200", 128, block_m, gran)
    other = launch_config(kernel, gpu, 128, block_m, gran)
    limit = load_gpu(gpu).smem_per_cta_kb * 1024
    assert "what-if fallback" in other.source
    assert shared_bytes(other) <= limit
    occupancy(other, load_gpu(gpu))  # no error: it fits
    if shared_bytes(h200) > limit:  # the H200 entry would not launch there: shrunk, and it says so
        assert f"shrunk to fit {gpu}" in other.source
        assert other.num_stages <= h200.num_stages and other.block_n <= h200.block_n
    else:
        assert "shrunk" not in other.source and (other.block_n, other.num_stages) == (h200.block_n, h200.num_stages)
    assert not any(other.extra.get(k) for k in ("tma", "tma_qo", "warp_specialize"))  # Hopper-only options off


@pytest.mark.parametrize("kernel, gran", [("fg", 1), ("fg", 64), ("block", 128), ("dense", 1)])
def test_oversized_borrowed_config_shrinks_for_every_kernel(kernel, gran):
    from dataclasses import replace

    from fgsim.launchcfg import _fit_shared_memory

    big = replace(launch_config(kernel, "h200", 128, 128, gran), block_n=128, num_stages=5, extra={"tma": True})
    out = _fit_shared_memory(big, "l40s")
    assert shared_bytes(out) <= load_gpu("l40s").smem_per_cta_kb * 1024
    assert out.block_n >= (gran if kernel == "fg" else 32) and out.block_n % (gran if kernel == "fg" else 1) == 0
    assert kernel != "block" or out.block_m % out.block_n == 0
    assert "shrunk to fit l40s" in out.source


def test_same_architecture_entry_is_not_shrunk_when_it_fits():
    cfg = launch_config("fg", "h100", 128, 128, 1)
    assert "h200 entry" in cfg.source and "shrunk" not in cfg.source


def test_unknown_kernel_is_rejected():
    with pytest.raises(FgsimError, match="unknown kernel 'sparse'"):
        launch_config("sparse", "h200", 128, 128)
