"""The cost model never beats physics, on every GPU file and every what-if launch config (issue 10).

* no kernel beats the tensor-core roofline of the work it does, nor the compulsory HBM traffic (Q, O, K/V once);
* a sparse kernel (fg, block) at kept density d is not faster than d x its dense sibling (the dense kernel with
  the same tile shape, pipeline depth and warps, contiguous pointer loads, its pipelined ``tail_branch`` form), and
  fg on a 100 %-dense mask is not faster than that sibling.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fgsim.calibration import resolve
from fgsim.costmodel import predict_counts
from fgsim.errors import FgsimError
from fgsim.hardware import list_gpus, load_gpu
from fgsim.launchcfg import launch_config
from fgsim.model.gluon import kernel_impl
from fgsim.model.occupancy import config_key, local_traffic, spilled_registers
from fgsim.runpredict import strip_unsupported

GPUS = [g for g in list_gpus()]


def _sibling(cfg):  # noqa: ANN001, ANN202
    # the dense kernel's pipelined form (tail_branch): a serialised dense loop of the same tile is slower than a
    # pipelined fg loop, measured (validation/MODEL_NOTES.md, revision 6), so it bounds nothing
    extra = {k: v for k, v in cfg.extra.items()
             if k not in ("tma", "warp_specialize", "idx_ahead", "lpt", "order", "impl", "gluon")}
    return replace(cfg, kernel="dense", gran_n=1, extra={**extra, "tail_branch": True})


def _sibling_resources(cfg, sib, gpu, resources):  # noqa: ANN001, ANN202
    # a dense sibling is never compiled, so its register need is an estimate; under the sparse kernel's register cap
    # that estimate can spill inside the tile loop where the compiled sparse kernel's SASS has no local-memory traffic
    # in the loop (the block D=128 M=128 BLOCK_N=64 entry, maxnreg 128: 14 spilled registers estimated for the dense
    # loop, 0 in-loop ld/st measured for the block loop, which holds every register the dense loop does plus the
    # block indices). The dense loop is then priced with the sparse loop's register count and no spill.
    ldst, _, _, src = local_traffic(cfg, gpu, resources)
    compiled = (resources or {}).get(config_key(cfg)) or {}
    if src == "SASS" and ldst == 0 and int(compiled.get("n_regs", 0)) > 0 and spilled_registers(sib, resources) > 0:
        return {**resources, config_key(sib): {"n_regs": int(compiled["n_regs"]), "n_spills": 0}}
    return resources


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(GPUS), st.sampled_from(["fg", "block"]), st.sampled_from([(64, 64), (128, 128), (64, 128)]),
       st.sampled_from([32, 64, 128]), st.sampled_from([2, 3, 4]), st.sampled_from([4, 8]), st.floats(0.02, 1.0),
       st.integers(0, 2**31 - 1))
def test_kernel_never_beats_physics(gpu_name: str, kernel: str, dm: tuple[int, int], bn: int, stages: int,
                                   warps: int, density: float, seed: int) -> None:
    _check_physics(gpu_name, kernel, dm, bn, stages, warps, density, seed)


@pytest.mark.parametrize("gpu_name", ["h100", "h200"])
def test_block_entry_on_a_dense_mask_does_not_beat_its_dense_sibling(gpu_name: str) -> None:
    """The example hypothesis found in CI (stop 22): the H100/H200 block D=128 M=128 entry (BLOCK_N 64, 2 stages,
    8 warps, maxnreg 128) at density 1 came out 0.79 x its dense sibling, whose never-compiled loop was priced with
    14 estimated spilled registers the compiled block loop does not have."""
    _check_physics(gpu_name, "block", (128, 128), 64, 2, 8, 1.0, 0)


def _check_physics(gpu_name: str, kernel: str, dm: tuple[int, int], bn: int, stages: int, warps: int,
                   density: float, seed: int) -> None:
    d, m = dm
    if kernel == "block" and m % bn:
        return
    gpu = load_gpu(gpu_name)
    r = resolve(gpu)
    cfg = strip_unsupported(launch_config(kernel, gpu_name, d, m, 1, block_n=bn, num_stages=stages, num_warps=warps),
                            gpu)
    rng = np.random.default_rng(seed)
    n_tok, heads = 4096, 4
    qb = n_tok // m
    skip = cfg.gran_n if kernel == "block" else 1
    cmax = n_tok // skip
    c = np.minimum(rng.binomial(cmax, density, (heads, qb)), cmax)
    # the fg D=128 M=128 g1 entry names fgattn's Gluon form (launch table d370267), which has no dense kernel and
    # beats the tl dense one on a dense mask (measured, issue 12 run 9): its dense sibling is itself with every key kept
    gluon = kernel_impl(cfg, gpu) == "gluon"
    try:
        t = predict_counts(c, n_tok, cfg, gpu, r.params, resources=r.resources)[0]
        if gluon:
            # (session 14: the block D=128 M=128 entry's contig form too, every 128-key block kept)
            t_dense = predict_counts(np.full((heads, qb), cmax), n_tok, cfg, gpu, r.params, resources=r.resources)[0]
        else:
            sib = _sibling(cfg)
            t_dense = predict_counts(np.zeros((heads, qb), int), n_tok, sib, gpu, r.params,
                                     resources=_sibling_resources(cfg, sib, gpu, r.resources))[0]
    except FgsimError as exc:  # a config that does not fit the GPU's shared memory does not launch
        assert "shared memory" in str(exc)
        return
    kept = c.sum() * skip / (heads * qb * n_tok)
    flops = 4.0 * m * d * c.sum() * skip
    assert t >= flops / (gpu.peak_tflops("bf16") * 1e12) * (1 - 1e-9)
    assert t_dense >= 4.0 * heads * n_tok * n_tok * d / (gpu.peak_tflops("bf16") * 1e12)
    compulsory = 2.0 * heads * n_tok * d * 2
    assert t >= compulsory / gpu.hbm_bytes_per_s
    assert t >= kept * t_dense * (1 - 1e-6) - r.params.launch_us * 1e-6
    if kernel == "fg" and not gluon:
        full = np.full((heads, qb), n_tok)
        # the tile loop's instructions come from the compiled kernel's SASS where the calibration ran the config, else
        # from an estimate: a hypothetical dense sibling (no TMA) is never compiled, so when only the fg config has
        # SASS figures the two are priced from different inputs (the estimate is within 25 % of the SASS count on
        # the issue slots; the kernel times within 5 % here; revision 4)
        same = local_traffic(cfg, gpu, r.resources)[3] == local_traffic(_sibling(cfg), gpu, r.resources)[3]
        tol = 1e-9 if same else 0.05
        assert predict_counts(full, n_tok, cfg, gpu, r.params, resources=r.resources)[0] >= t_dense * (1 - tol)


@pytest.mark.parametrize("gpu_name", GPUS)
def test_other_architectures_say_extrapolation_and_strip_hopper_options(gpu_name: str) -> None:
    gpu = load_gpu(gpu_name)
    r = resolve(gpu)
    cfg = strip_unsupported(launch_config("dense", gpu_name, 128, 128, 1), gpu)
    if gpu.arch == "hopper":
        assert not r.extrapolated
    else:
        assert r.extrapolated and "EXTRAPOLATION" in r.note and r.band_pct > 0
        assert not cfg.extra.get("tma") or gpu.has_tma
        # the note names only the options this GPU lacks (B200 has TMA: it said "TMA, wgmma" for every GPU)
        assert ("TMA" in r.note) == (not gpu.has_tma) and ("wgmma" in r.note) == (not gpu.has_wgmma)
