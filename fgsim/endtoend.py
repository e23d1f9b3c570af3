"""End-to-end: model configurations (``fgsim/data/models/*.json``) and whole-generation time (Amdahl).

Per transformer pass and layer, the non-attention work is: QKV, output and FFN GEMMs (2 FLOP per MAC at a
GEMM efficiency: the calibration's measured ``gemm_efficiency`` when present), the cross-attention of
text-conditioned models (projections + S×text attention), and norms / modulation / residual / RoPE /
activation passes as memory-bound traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.errors import FgsimError
from fgsim.hardware import GPU

MODEL_DIR = Path(__file__).parent / "data" / "models"
#: Spec-derived GEMM efficiency prior (large bf16 GEMMs reach 80-90% of peak, kernels.md §1.2 quoting FA3).
GEMM_EFFICIENCY_PRIOR = 0.75
#: Activation-sized memory passes per layer for norms, modulation, residuals, RoPE, GELU (read+write each).
ELEMENTWISE_PASSES = 14


@dataclass(frozen=True)
class ModelConfig:
    name: str
    layers: int
    hidden: int
    heads: int
    head_dim: int
    ffn: int
    text_tokens_cross: int
    text_tokens_self: int
    text_position: str
    passes_per_step: int
    steps: int
    resolutions: dict[str, tuple[int, int, int]]
    sources: dict[str, str]
    #: measured whole-generation non-self-attention seconds: {gpu: {resolution: s, "source": where from}}; used
    #: instead of the FLOP/byte estimate on that GPU (models whose non-attention time is launch/host bound)
    measured_non_attention: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: {"class": diffusers transformer class, "config": its constructor arguments} (the published config)
    diffusers: dict[str, Any] = field(default_factory=dict)

    def n_tokens(self, resolution: str) -> int:
        t, h, w = self.resolutions[resolution]
        return t * h * w + self.text_tokens_self


def list_models() -> list[str]:
    return sorted(p.stem for p in MODEL_DIR.glob("*.json"))


def load_model(name: str) -> ModelConfig:
    """A model configuration by name or .json path (FgsimError listing the known models)."""
    p = Path(name) if name.endswith(".json") else MODEL_DIR / f"{name.lower()}.json"
    if not p.is_file():
        raise FgsimError(f"unknown model '{name}'; known models: {', '.join(list_models())}")
    try:
        d = json.loads(p.read_text())
        return ModelConfig(name=d["name"], layers=int(d["layers"]), hidden=int(d["hidden"]), heads=int(d["heads"]),
                           head_dim=int(d["head_dim"]), ffn=int(d["ffn"]),
                           text_tokens_cross=int(d["text_tokens_cross"]), text_tokens_self=int(d["text_tokens_self"]),
                           text_position=str(d["text_position"]), passes_per_step=int(d["passes_per_step"]),
                           steps=int(d["steps"]),
                           resolutions={k: tuple(int(x) for x in v) for k, v in d["resolutions"].items()},
                           sources=dict(d.get("sources", {})),
                           measured_non_attention={str(g): dict(v) for g, v in
                                                   d.get("measured_non_attention", {}).items()},
                           diffusers=dict(d.get("diffusers", {})))
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise FgsimError(f"{p}: malformed model file ({exc})") from None


def _resolution(model: ModelConfig, resolution: str | None) -> str:
    if resolution is None:
        return next(iter(model.resolutions))
    if resolution not in model.resolutions:
        raise FgsimError(f"{model.name} has no resolution '{resolution}'; choose from {', '.join(model.resolutions)}")
    return resolution


class SyntheticDensityCounts:
    """Synthesized kept-key counts at a model's shape (no masks): NOT a captured trace.

    Each (layer, head, query block) keeps ``s·density·N·f_head·g_block`` keys (lognormal head factor, ±30%
    frame-periodic block variation, fixed seed), identical for every pass; ``s`` is chosen so that the counts,
    clipped to [1, N], keep ``density`` of the keys on average (the density reported is the one simulated). Coarser counts (n > 1) assume
    window-like clustering: a kept key pulls in ``1 + 0.05·log2(n)`` of its n-tile on average.
    """

    def __init__(self, n_tokens: int, heads: int, layers: int, passes: int, block_m: int, density: float,
                 seed: int = 0, frame_tokens: int = 1560) -> None:
        if not 0 < density <= 1:
            raise FgsimError(f"density must be in (0, 1], got {density}")
        self.n_tokens = n_tokens
        self.heads, self.layers, self.passes, self.block_m = heads, layers, passes, block_m
        self.density, self.seed, self.frame_tokens = density, seed, frame_tokens
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}

    def entries(self) -> list[tuple[int, int]]:
        return [(p, lay) for p in range(self.passes) for lay in range(self.layers)]

    def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        m = m or self.block_m
        key = (layer, m, n)
        if key not in self._cache:
            rng = np.random.default_rng([self.seed, layer])
            n_tok = self.n_tokens
            qb = -(-n_tok // m)
            fh = rng.lognormal(0.0, 0.5, self.heads)
            fh /= fh.mean()
            pos = (np.arange(qb) * m) % self.frame_tokens / self.frame_tokens
            gb = 1.0 + 0.3 * np.sin(2 * np.pi * pos)[None, :] + 0.1 * rng.standard_normal((self.heads, qb))
            keys = _fill_to_density(self.density * n_tok * fh[:, None] * gb, self.density * n_tok, n_tok)
            if n > 1:
                infl = 1.0 + 0.05 * np.log2(n)
                c = np.minimum(np.ceil(keys * infl / n), -(-n_tok // n))
            else:
                c = np.round(keys)
            self._cache[key] = c.astype(np.int32)
        return self._cache[key]


def _fill_to_density(raw: np.ndarray, mean_keys: float, n_tok: int) -> np.ndarray:
    """``raw`` kept keys per (head, query block) scaled so that, clipped to [1, N], they average ``mean_keys``:
    clipping alone would lower the density a run reports (1.0 would realise 0.77)."""
    lo, hi = 0.0, float(n_tok) / max(float(raw.min()), 1e-9) + 1.0
    for _ in range(60):  # bisection on the scale: the clipped mean grows monotonically with it
        mid = 0.5 * (lo + hi)
        if np.clip(raw * mid, 1, n_tok).mean() < mean_keys:
            lo = mid
        else:
            hi = mid
    return np.clip(raw * hi, 1, n_tok)


def synthetic_workload(model: ModelConfig, resolution: str | None, density: float | None = None,
                       block_m: int = 128) -> tuple[SyntheticDensityCounts, Any]:
    """Synthesized counts for a whole generation of ``model`` (all passes and layers) and its RunInfo."""
    from fgsim.runpredict import RunInfo

    res = _resolution(model, resolution)
    d = 0.6 if density is None else density  # FG-Attn keeps 0.59-0.68 of FLOPs (paper.md §5 tables)
    t, h, w = model.resolutions[res]
    passes = model.steps * model.passes_per_step
    wl = SyntheticDensityCounts(model.n_tokens(res), model.heads, model.layers, passes, block_m, d,
                                frame_tokens=h * w)
    info = RunInfo(name=f"{model.name} {res}", n_tokens=model.n_tokens(res), num_heads=model.heads,
                   head_dim=model.head_dim, block_m=block_m, num_layers=model.layers, num_steps=model.steps,
                   passes_per_step=model.passes_per_step,
                   pass_steps={p: p // model.passes_per_step for p in range(passes)},
                   layers=list(range(model.layers)),
                   source=f"synthesized counts (density {d:g}; SyntheticDensityCounts, not a captured trace)")
    return wl, info


def check_trace_matches(model: ModelConfig, info: Any) -> None:
    """FgsimError if a trace's shape does not belong to ``model``."""
    if (info.num_heads, info.head_dim, info.num_layers) != (model.heads, model.head_dim, model.layers):
        raise FgsimError(f"trace ({info.num_layers} layers x {info.num_heads} heads x D={info.head_dim}) does not "
                         f"match model {model.name} ({model.layers} x {model.heads} x D={model.head_dim})")
    if info.n_tokens not in {model.n_tokens(r) for r in model.resolutions}:
        raise FgsimError(f"trace has N={info.n_tokens} tokens; {model.name} has "
                         f"{sorted(model.n_tokens(r) for r in model.resolutions)}")


def non_attention_per_layer(model: ModelConfig, n_tokens: int, gpu: GPU, gemm_eff: float,
                            hbm_eff: float = 0.81) -> dict[str, float]:
    """Seconds per transformer layer per pass for the non-self-attention work (bf16)."""
    s, hd = float(n_tokens), float(model.hidden)
    peak = gpu.tensor_flops("bf16") * gpu.sm_count * gpu.clock_hz
    gemm_flop = 2 * s * hd * hd * 4 + 2 * 2 * s * hd * model.ffn  # QKV + out, FFN up + down
    cross_flop = 0.0
    if model.text_tokens_cross:
        tt = float(model.text_tokens_cross)
        cross_flop = 2 * s * hd * hd * 2 + 2 * 2 * tt * hd * hd + 4 * s * tt * hd  # q/out, k/v, attention
    mem_bytes = ELEMENTWISE_PASSES * 2 * s * hd * 2
    return {"gemm_s": gemm_flop / (peak * gemm_eff), "cross_attention_s": cross_flop / (peak * gemm_eff),
            "elementwise_s": mem_bytes / (gpu.hbm_bytes_per_s * hbm_eff)}


def predict_generation(model: ModelConfig, info: Any, rp: Any, gpu: GPU) -> dict[str, Any]:
    """Whole-generation time per attention kernel and the end-to-end speedup over dense (Amdahl)."""
    from fgsim.calibration import available_calibrations, load_calibration

    res = next((r for r in model.resolutions if model.n_tokens(r) == info.n_tokens), None)
    gemm_eff, src = GEMM_EFFICIENCY_PRIOR, "uncalibrated prior"
    cals = available_calibrations()
    if gpu.name in cals:
        cal = load_calibration(cals[gpu.name])
        if cal.fit.get("gemm_efficiency"):
            gemm_eff, src = float(cal.fit["gemm_efficiency"]), f"measured by calibrate on {cal.gpu}"
    per_layer = non_attention_per_layer(model, info.n_tokens, gpu, gemm_eff, rp.params.hbm_bw_eff)
    calls = model.layers * model.steps * model.passes_per_step
    non_attn = sum(per_layer.values()) * calls
    non_attn_src = "FLOP/byte estimate"
    measured = model.measured_non_attention.get(gpu.name, {})
    if res is not None and res in measured:
        non_attn_src = f"measured on {gpu.name}: {measured.get('source', 'model file')} (estimate {non_attn:.3g} s)"
        non_attn = float(measured[res])
    dense_total = rp.full_run_s("dense") + non_attn
    out: dict[str, Any] = {"model": model.name, "resolution": res or f"N={info.n_tokens}", "steps": model.steps,
                           "passes_per_step": model.passes_per_step, "layers": model.layers,
                           "non_attention_s": non_attn, "non_attention_source": non_attn_src,
                           "non_attention_per_layer_s": per_layer,
                           "gemm_efficiency": gemm_eff, "gemm_efficiency_source": src, "kernels": {}}
    for k in rp.kernels:
        att = rp.full_run_s(k)
        gen = att + non_attn
        out["kernels"][k] = {"attention_s": att, "generation_s": gen, "attention_share": att / gen,
                             "speedup": dense_total / gen,
                             "attention_speedup": rp.full_run_s("dense") / max(att, 1e-30)}
    return out
