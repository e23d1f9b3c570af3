"""What-if design-space sweep: GPUs × M × N-granularity × num_stages × mask density, from synthetic counts.

Counts come from :class:`fgsim.endtoend.SyntheticDensityCounts` (not a captured trace); each row reports the
density the counts realise. Speedups are over the best dense configuration of the GPU (the fastest of the
dense launch configurations at every M swept, with and without the stage what-ifs), named in ``best_dense``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fgsim.calibration import resolve_params
from fgsim.costmodel import predict_workload
from fgsim.endtoend import SyntheticDensityCounts
from fgsim.errors import FgsimError
from fgsim.hardware import load_gpu
from fgsim.launchcfg import KernelConfig, adaptation, launch_config

BLOCK_MS = (64, 128)
GRAN_NS = (1, 16, 64)
HEAD_DIMS = (64, 128)
MAX_N_TOKENS = 1 << 20  # 1M tokens: far beyond any video DiT; the per-call tables stay a few MB
MAX_HEADS = 256
MAX_STAGES = 8
#: Columns of a sweep row, in table order.
COLUMNS = ("gpu", "n_tokens", "heads", "head_dim", "block_m", "gran_n", "stages_asked", "num_stages", "density",
           "density_realised", "fg_ms", "block_ms", "dense_ms", "best_dense_ms", "fg_speedup", "block_speedup",
           "best_dense", "parameters", "notes")


def check_sweep_args(block_ms: Sequence[int], grans: Sequence[int], stages: Sequence[int | None],
                     densities: Sequence[float], n_tokens: int, heads: int, head_dim: int, layers: int) -> None:
    """FgsimError (one line) for any value the sweep cannot simulate."""
    def bad(name: str, values: Sequence[Any], ok: Any, what: str) -> None:
        wrong = [v for v in values if not ok(v)]
        if wrong or not values:
            raise FgsimError(f"{name}: {wrong[0] if wrong else 'empty list'} is not allowed ({what})")

    bad("--block-m", block_ms, lambda v: v in BLOCK_MS, f"choose from {', '.join(map(str, BLOCK_MS))}")
    bad("--gran-n", grans, lambda v: v in GRAN_NS, f"choose from {', '.join(map(str, GRAN_NS))}")
    bad("--num-stages", stages, lambda v: v is None or 1 <= v <= MAX_STAGES, f"0 = table, else 1..{MAX_STAGES}")
    bad("--density", densities, lambda v: bool(np.isfinite(v)) and 0 < v <= 1, "each in (0, 1]")
    bad("--n-tokens", [n_tokens], lambda v: 1 <= v <= MAX_N_TOKENS, f"1..{MAX_N_TOKENS}")
    bad("--heads", [heads], lambda v: 1 <= v <= MAX_HEADS, f"1..{MAX_HEADS}")
    bad("--head-dim", [head_dim], lambda v: v in HEAD_DIMS, f"choose from {', '.join(map(str, HEAD_DIMS))}")
    bad("layers", [layers], lambda v: 1 <= v <= 64, "1..64")


def _cfg_label(cfg: KernelConfig) -> str:
    return f"M={cfg.block_m} N={cfg.block_n} s{cfg.num_stages} w{cfg.num_warps}"


def sweep(gpus: Sequence[str], block_ms: Sequence[int], grans: Sequence[int], stages: Sequence[int | None],
          densities: Sequence[float], *, n_tokens: int = 32760, heads: int = 12, head_dim: int = 128,
          layers: int = 2) -> list[dict[str, Any]]:
    """One row per (gpu, M, num_stages, density, gran_n): predicted fg / block / dense ms per call (mean over
    ``layers`` synthetic layers) and speedups over the GPU's best dense configuration (see :data:`COLUMNS`)."""
    check_sweep_args(block_ms, grans, stages, densities, n_tokens, heads, head_dim, layers)
    gpu_objs = [load_gpu(g) for g in gpus]  # every unknown GPU is reported before any work
    rows: list[dict[str, Any]] = []
    for gpu in gpu_objs:
        params, note = resolve_params(gpu)
        dense_wl = SyntheticDensityCounts(n_tokens, heads, 1, 1, max(block_ms), 1.0)
        dense: dict[tuple[int, int | None], tuple[float, KernelConfig]] = {}
        for m in sorted(set(block_ms) | set(BLOCK_MS)):
            for st in dict.fromkeys([None, *stages]):  # the launch table's own always competes
                try:
                    cfg = launch_config("dense", gpu.name, head_dim, m, 1, **({"num_stages": st} if st else {}))
                    dense[(m, st)] = (predict_workload(dense_wl, cfg, gpu, params).mean_call_s, cfg)
                except FgsimError:
                    continue  # a what-if that does not fit: reported on its own row below
        if not dense:
            raise FgsimError(f"{gpu.name}: no dense configuration fits (D={head_dim})")
        best_s, best_cfg = min(dense.values(), key=lambda x: x[0])
        for m in block_ms:
            for dens in densities:
                wl = SyntheticDensityCounts(n_tokens, heads, layers, 1, m, dens)
                realised = float(np.mean([wl.counts(0, la, m=m).mean() for la in range(layers)]) / n_tokens)
                base = {"gpu": gpu.name, "n_tokens": n_tokens, "heads": heads, "head_dim": head_dim, "block_m": m,
                        "density": dens, "density_realised": round(realised, 4),
                        "best_dense_ms": best_s * 1e3, "best_dense": _cfg_label(best_cfg), "parameters": note}
                for st in stages:
                    base["stages_asked"] = st or 0  # 0: the launch table's
                    rows.extend(_one(gpu, params, note, wl, m, st, grans, head_dim, dense.get((m, st)), best_s,
                                     base))
    return rows


def _one(gpu: Any, params: Any, note: str, wl: Any, m: int, st: int | None, grans: Sequence[int],
         head_dim: int, dense: tuple[float, KernelConfig] | None, best_s: float,
         base: dict[str, Any]) -> list[dict[str, Any]]:
    ov = {"num_stages": st} if st else {}
    nan = float("nan")
    try:
        if dense is None:
            launch_config("dense", gpu.name, head_dim, m, 1, **ov)  # raises the reason
        block_cfg = launch_config("block", gpu.name, head_dim, m, 1, **ov)
        block = predict_workload(wl, block_cfg, gpu, params, stored_block_m=m)
    except FgsimError as exc:
        return [{**base, "gran_n": g, "num_stages": st or 0, "fg_ms": nan, "block_ms": nan, "dense_ms": nan,
                 "fg_speedup": nan, "block_speedup": nan, "notes": f"M={m} stages={st}: skipped: {exc}"}
                for g in grans]
    rows = []
    for gr in grans:
        notes = []
        try:
            cfg = launch_config("fg", gpu.name, head_dim, m, gr, **ov)
            fg = predict_workload(wl, cfg, gpu, params, stored_block_m=m)
            fg_s: float = fg.mean_call_s
            stages_used = cfg.num_stages
            if adaptation(cfg):
                notes.append(f"fg M={m} g={gr}: {adaptation(cfg)}")
        except FgsimError as exc:
            fg_s, stages_used = nan, st or 0
            notes.append(f"fg M={m} g={gr} skipped: {exc}")
        if adaptation(block_cfg):
            notes.append(f"block M={m}: {adaptation(block_cfg)}")
        rows.append({**base, "gran_n": gr, "num_stages": stages_used, "fg_ms": fg_s * 1e3,
                     "block_ms": block.mean_call_s * 1e3, "dense_ms": dense[0] * 1e3 if dense else nan,
                     "fg_speedup": best_s / fg_s, "block_speedup": best_s / block.mean_call_s,
                     "notes": " | ".join(notes)})
    return rows
