"""Whole-run predictions: every kernel over every captured call of a trace, extrapolated to the full run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fgsim.calibration import resolve
from fgsim.costmodel import COMPONENTS, KernelPrediction, ModelParams, Workload, predict_workload
from fgsim.errors import FgsimError
from fgsim.hardware import GPU
from fgsim.launchcfg import KernelConfig, launch_config


@dataclass
class RunInfo:
    """Shape of the run a workload comes from."""

    name: str
    n_tokens: int
    num_heads: int
    head_dim: int
    block_m: int  # stored query-block size
    num_layers: int
    num_steps: int
    passes_per_step: int
    pass_steps: dict[int, int] = field(default_factory=dict)  # captured pass index -> denoising step
    layers: list[int] = field(default_factory=list)
    source: str = ""

    @property
    def full_calls(self) -> int:
        return self.num_layers * self.num_steps * self.passes_per_step


def check_self_attention(wl: Any) -> None:
    """Raise :class:`FgsimError` if ``wl`` is a cross-attention trace (the cost model handles N × N attention only)."""
    meta = getattr(wl, "meta", None)
    if getattr(meta, "attention", "self") != "self":
        raise FgsimError("cross-attention traces are not supported by the cost model yet "
                         f"({getattr(wl, 'path', 'trace')}: {meta.n_tokens} queries × {meta.n_keys} keys)")


def run_info_from_trace(tr: Any, source: str = "") -> RunInfo:
    """RunInfo of an open ``fgsim.trace`` trace (self-attention only; ``n_tokens`` is the sequence length N).

    Raises :class:`FgsimError` for a cross-attention trace: the cost model assumes square N × N attention.
    """
    m = tr.meta
    check_self_attention(tr)
    return RunInfo(name=m.model, n_tokens=int(tr.n_tokens), num_heads=int(m.num_heads), head_dim=int(m.head_dim),
                   block_m=int(m.block_m), num_layers=int(m.num_layers), num_steps=int(m.num_steps),
                   passes_per_step=int(m.passes_per_step), pass_steps={p.index: p.step for p in m.passes},
                   layers=list(m.layers), source=source)


def full_run_weights(info: RunInfo, entries: Sequence[tuple[int, int]]) -> np.ndarray:
    """How many calls of the full run each captured entry stands for (nearest captured step, then layer)."""
    ents = list(entries)
    w = np.zeros(len(ents))
    if not ents:
        return w
    steps = np.array([info.pass_steps.get(p, p // max(info.passes_per_step, 1)) for p, _ in ents], dtype=float)
    layers = np.array([lay for _, lay in ents], dtype=float)
    uniq_steps = np.unique(steps)
    for s in range(info.num_steps):
        near_s = uniq_steps[np.argmin(np.abs(uniq_steps - s))]
        cand = np.nonzero(steps == near_s)[0]
        cl = layers[cand]
        for lay in range(info.num_layers):
            best = cand[np.abs(cl - lay) == np.abs(cl - lay).min()]
            w[best] += info.passes_per_step / best.size
    return w


@dataclass
class RunPrediction:
    info: RunInfo
    gpu: GPU
    params_note: str
    kernels: dict[str, KernelPrediction]
    weights: np.ndarray
    params: ModelParams = field(default_factory=ModelParams)

    def full_run_s(self, kernel: str) -> float:
        return float((self.kernels[kernel].per_call_s * self.weights).sum())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": {"name": self.info.name, "source": self.info.source, "n_tokens": self.info.n_tokens,
                    "heads": self.info.num_heads, "head_dim": self.info.head_dim,
                    "captured_calls": len(self.weights), "full_run_calls": self.info.full_calls},
            "gpu": self.gpu.name, "parameters": self.params_note, "kernels": {},
        }
        dense = self.kernels.get("dense")
        for k, kp in self.kernels.items():
            cfg = kp.config
            d = {
                "config": {"block_m": cfg.block_m, "block_n": cfg.block_n, "gran_n": cfg.gran_n,
                           "num_warps": cfg.num_warps, "num_stages": cfg.num_stages, "dtype": cfg.dtype,
                           "extra": cfg.extra, "source": cfg.source},
                "occupancy": {"ctas_per_sm": kp.occupancy.slots, "limiter": kp.occupancy.limiter,
                              "sm_gain": kp.occupancy.gain},
                "mean_call_ms": kp.mean_call_s * 1e3, "captured_total_ms": kp.total_s * 1e3,
                "full_run_s": self.full_run_s(k),
                "breakdown_fraction": {c: kp.breakdown_s[c] / max(kp.total_s, 1e-30) for c in COMPONENTS},
                "per_call_ms": (kp.per_call_s * 1e3).round(6).tolist(),
                "entries": [list(e) for e in kp.entries], "notes": kp.notes,
                "tflops_effective": kp.flops / max(kp.total_s, 1e-30) / 1e12,
            }
            if dense is not None:
                d["speedup_vs_dense"] = dense.total_s / max(kp.total_s, 1e-30)
            out["kernels"][k] = d
        return out


def predict_run(wl: Workload, info: RunInfo, gpu: GPU, kernels: Sequence[str], *, block_m: int | None = None,
                gran_n: int = 1, dtype: str = "bf16", params: ModelParams | None = None,
                calibration: str | None = None, overrides: dict[str, Any] | None = None,
                progress: bool = False, order: str | None = None) -> RunPrediction:
    """Predict each kernel over every captured call of ``wl``."""
    resources: dict[str, Any] | None = None  # None: the compiled figures of the calibration that applies to gpu
    extra_notes: list[str] = []
    if params is None:
        r = resolve(gpu, calibration)
        params, note, resources = r.params, r.note, r.resources
        if r.extrapolated:
            extra_notes.append(f"extrapolation to {gpu.arch}: ±{r.band_pct:.0f} % uncertainty band (REPORT.md)")
    else:
        note = "parameters given by the caller"
    m = block_m or (128 if info.block_m <= 128 and 128 % info.block_m == 0 else info.block_m)
    ents = list(wl.entries())
    weights = full_run_weights(info, ents)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ents) * len(kernels), desc="predict", unit="call", disable=None, leave=False)
    # a workload whose counts() returns cached arrays (synthesized counts: one per layer) costs no memory to hold
    # whole: price all its calls in one plan run, so calls with equal counts are simulated once over the whole run
    # (not once per chunk of 64); a trace is read in chunks of 64 calls
    chunk = max(len(ents), 1) if getattr(wl, "counts_cached", False) else 64
    out: dict[str, KernelPrediction] = {}
    try:
        for k in kernels:
            cfg = _config(k, gpu, info.head_dim, m, gran_n, dtype, overrides)
            if order:
                from dataclasses import replace

                cfg = replace(cfg, extra={**cfg.extra, "order": order})
            out[k] = predict_workload(wl, cfg, gpu, params, params_source=note, entries=ents,
                                      num_heads=info.num_heads, stored_block_m=info.block_m, chunk=chunk,
                                      progress=bar.update if bar else None, resources=resources)
            out[k].notes[:0] = extra_notes
    finally:
        if bar is not None:
            bar.close()
    return RunPrediction(info=info, gpu=gpu, params_note=note, kernels=out, weights=weights, params=params)


def _config(kernel: str, gpu: GPU, head_dim: int, block_m: int, gran_n: int, dtype: str,
            overrides: dict[str, Any] | None) -> KernelConfig:
    try:
        cfg = launch_config(kernel, gpu.name, head_dim, block_m, gran_n if kernel == "fg" else 1, dtype,
                            **(overrides or {}))
    except TypeError as exc:
        raise FgsimError(f"bad launch-configuration override: {exc}") from None
    return strip_unsupported(cfg, gpu)


def strip_unsupported(cfg: KernelConfig, gpu: GPU) -> KernelConfig:
    """``cfg`` without the options ``gpu`` lacks (TMA and warp specialisation need Hopper or later); the
    config's source says what was removed."""
    from dataclasses import replace

    if gpu.has_tma or not any(cfg.extra.get(k) for k in ("tma", "warp_specialize")):
        return cfg
    extra = {k: v for k, v in cfg.extra.items() if k not in ("tma", "warp_specialize")}
    return replace(cfg, extra=extra, source=f"{cfg.source}; Hopper-only options (TMA, warp specialisation) "
                                              f"removed for {gpu.name} ({gpu.arch})")
