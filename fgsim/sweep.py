"""What-if design-space sweep: GPUs × M × N-granularity × num_stages × mask density, from synthetic counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fgsim.calibration import resolve_params
from fgsim.costmodel import predict_workload
from fgsim.endtoend import SyntheticDensityCounts
from fgsim.errors import FgsimError
from fgsim.hardware import load_gpu
from fgsim.launchcfg import launch_config


def sweep(gpus: Sequence[str], block_ms: Sequence[int], grans: Sequence[int], stages: Sequence[int | None],
          densities: Sequence[float], *, n_tokens: int = 32760, heads: int = 12, head_dim: int = 128,
          layers: int = 2) -> list[dict[str, Any]]:
    """One row per (gpu, M, gran_n, num_stages, density): predicted fg / block / dense ms per call and speedups."""
    rows = []
    for g in gpus:
        gpu = load_gpu(g)
        params, note = resolve_params(gpu)
        for m in block_ms:
            for dens in densities:
                wl = SyntheticDensityCounts(n_tokens, heads, layers, 1, m, dens)
                for st in stages:
                    ov = {"num_stages": st} if st else {}
                    try:
                        rows.extend(_one(gpu, params, note, wl, m, dens, ov, grans, head_dim))
                    except FgsimError as exc:
                        rows.append({"gpu": gpu.name, "block_m": m, "gran_n": 0, "num_stages": st or 0,
                                     "density": dens, "fg_ms": float("nan"), "block_ms": float("nan"),
                                     "dense_ms": float("nan"), "fg_speedup": float("nan"),
                                     "block_speedup": float("nan"), "parameters": f"skipped: {exc}"})
    return rows


def _one(gpu: Any, params: Any, note: str, wl: Any, m: int, dens: float, ov: dict[str, int],
         grans: Sequence[int], head_dim: int) -> list[dict[str, Any]]:
    rows = []
    dense = predict_workload(wl, launch_config("dense", gpu.name, head_dim, m, 1, **ov), gpu, params)
    block = predict_workload(wl, launch_config("block", gpu.name, head_dim, m, 1, **ov), gpu, params,
                             stored_block_m=m)
    for gr in grans:
        cfg = launch_config("fg", gpu.name, head_dim, m, gr, **ov)
        fg = predict_workload(wl, cfg, gpu, params, stored_block_m=m)
        rows.append({"gpu": gpu.name, "block_m": m, "gran_n": gr, "num_stages": cfg.num_stages,
                     "density": dens, "fg_ms": fg.mean_call_s * 1e3,
                     "block_ms": block.mean_call_s * 1e3, "dense_ms": dense.mean_call_s * 1e3,
                     "fg_speedup": dense.total_s / fg.total_s,
                     "block_speedup": dense.total_s / block.total_s, "parameters": note})
    return rows
