"""End-to-end: model configurations (``fgsim/data/models/*.json``) and the whole generation, made of parts.

Per transformer pass:

- **non-attention operators** (:mod:`fgsim.opmodel`): the aten operators of the real diffusers transformer built
  from the model file's published config (traced on the meta device), each priced from its shape by the
  operator calibration (``fgsim calibrate --ops``: GEMMs at the models' shapes, memory-bound operators from bytes
  and measured bandwidth or their measured replay), eager (launch/host queue) or ``torch.compile`` (fused
  memory-bound groups); cross-attention by the calibrated cuDNN SDPA model;
- **self-attention** per backend: the baseline a user runs (``cudnn``: PyTorch SDPA on cuDNN, the calibrated
  SDPA model; ``fgattn``: fgattn's dense kernel, the kernel cost model) and the sparse kernels (the kernel cost
  model on the trace's or synthesized counts);
- **mask prediction** at the recompute passes (exact or pooled predictor + FG index build,
  :func:`fgsim.opmodel.predictor_time`).

The schedule: the first ``warmup_steps`` steps run the baseline dense attention; masks are predicted at the
``recompute`` steps (default: the first sparse step only) for every layer and CFG pass, and reused in between.
Models without a ``diffusers`` entry fall back to the FLOP/byte estimate of :func:`non_attention_per_layer`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.errors import FgsimError, counted
from fgsim.hardware import GPU

MODEL_DIR = Path(__file__).parent / "data" / "models"
#: Spec-derived GEMM efficiency prior (large bf16 GEMMs reach 80-90% of peak: FlashAttention-3, arXiv 2407.08608).
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
    from fgsim.fileio import read_json

    p = Path(name) if name.endswith(".json") else MODEL_DIR / f"{name.lower()}.json"
    if not p.exists():
        raise FgsimError(f"unknown model '{name}'; known models: {', '.join(list_models())}")
    d = read_json(p, "model file")  # bounded: a device, NaN or deep nesting fails here, naming the file
    try:
        return _check_model(p, ModelConfig(name=d["name"], layers=int(d["layers"]), hidden=int(d["hidden"]), heads=int(d["heads"]),
                           head_dim=int(d["head_dim"]), ffn=int(d["ffn"]),
                           text_tokens_cross=int(d["text_tokens_cross"]), text_tokens_self=int(d["text_tokens_self"]),
                           text_position=str(d["text_position"]), passes_per_step=int(d["passes_per_step"]),
                           steps=int(d["steps"]),
                           resolutions={k: tuple(int(x) for x in v) for k, v in d["resolutions"].items()},
                           sources=dict(d.get("sources", {})),
                           measured_non_attention={str(g): dict(v) for g, v in
                                                   d.get("measured_non_attention", {}).items()},
                           diffusers=dict(d.get("diffusers", {}))))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FgsimError(f"{p}: malformed model file ({exc!r})") from None


def _check_model(p: Path, m: ModelConfig) -> ModelConfig:
    """``m`` if its sizes lie within the trace format's bounds (``fgsim.trace.MAX_*``: what a prediction can price
    in bounded time and memory), else FgsimError naming the file and field."""
    from fgsim import trace as t

    MAX_TOKENS = t.MAX_TOKENS

    for field_, value, hi in (("layers", m.layers, t.MAX_LAYERS), ("heads", m.heads, t.MAX_HEADS),
                              ("head_dim", m.head_dim, t.MAX_HEAD_DIM), ("steps", m.steps, t.MAX_STEPS),
                              ("passes_per_step", m.passes_per_step, t.MAX_PASSES_PER_STEP),
                              ("hidden", m.hidden, t.MAX_HEADS * t.MAX_HEAD_DIM), ("ffn", m.ffn, 1 << 20)):
        if not 1 <= value <= hi:
            raise FgsimError(f"{p}: field '{field_}' must be in 1..{hi:,}, got {value}")
    for field_, value in (("text_tokens_cross", m.text_tokens_cross), ("text_tokens_self", m.text_tokens_self)):
        if not 0 <= value <= MAX_TOKENS:
            raise FgsimError(f"{p}: field '{field_}' must be in 0..{MAX_TOKENS:,}, got {value}")
    if m.text_position not in ("none", "before", "after"):
        raise FgsimError(f"{p}: field 'text_position' must be none, before or after, got {m.text_position!r}")
    if not m.resolutions:
        raise FgsimError(f"{p}: field 'resolutions' needs at least one grid")
    cfg = m.diffusers.get("config") if isinstance(m.diffusers, dict) else None
    if isinstance(cfg, dict):  # the operator list comes from this config: it must be the model the fields describe
        blocks = cfg.get("num_layers")
        if isinstance(blocks, int) and isinstance(cfg.get("num_single_layers", 0), int):
            blocks += cfg.get("num_single_layers", 0)
        for field_, value, theirs, name in (("layers", m.layers, blocks, "num_layers (+ num_single_layers)"),
                                            ("heads", m.heads, cfg.get("num_attention_heads"), "num_attention_heads"),
                                            ("head_dim", m.head_dim, cfg.get("attention_head_dim"), "attention_head_dim"),
                                            ("ffn", m.ffn, cfg.get("ffn_dim"), "ffn_dim")):
            if theirs is not None and theirs != value:
                raise FgsimError(f"{p}: field '{field_}' is {value} but its diffusers config's {name} is {theirs}: "
                                 "the two must describe the same transformer")
    for res, grid in m.resolutions.items():
        n = math.prod(grid) + m.text_tokens_self
        if len(grid) != 3 or min(grid) < 1 or n > MAX_TOKENS:
            raise FgsimError(f"{p}: resolution '{res}': the grid must be 3 positive extents of at most "
                             f"{MAX_TOKENS:,} tokens with the text, got {list(grid)}")
        work = m.layers * m.steps * m.passes_per_step * m.heads * -(-n // 64)
        if work > t.MAX_WORK_CTAS:
            raise FgsimError(f"{p}: resolution '{res}': {work:,} query blocks per generation to price (layers x "
                             f"steps x passes x heads x N/64); at most {t.MAX_WORK_CTAS:,}")
    return m


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

    #: counts() returns one cached (read-only) array per (layer, m, n): holding every call's counts costs nothing
    counts_cached = True

    def __init__(self, n_tokens: int, heads: int, layers: int, passes: int, block_m: int, density: float,
                 seed: int = 0, frame_tokens: int = 1560) -> None:
        if not 0 < density <= 1:
            raise FgsimError(f"density must be in (0, 1], got {density}")
        self.n_tokens = n_tokens
        self.heads, self.layers, self.passes, self.block_m = heads, layers, passes, block_m
        self.density, self.seed, self.frame_tokens = density, seed, frame_tokens
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}
        self._keys_cache: dict[tuple[int, int], np.ndarray] = {}

    def entries(self) -> list[tuple[int, int]]:
        return [(p, lay) for p in range(self.passes) for lay in range(self.layers)]

    def _keys(self, layer: int, m: int) -> np.ndarray:
        """Kept keys per (head, query block) of ``layer`` at block size ``m`` (float; shared by every n)."""
        if (layer, m) not in self._keys_cache:
            rng = np.random.default_rng([self.seed, layer])
            n_tok = self.n_tokens
            qb = -(-n_tok // m)
            fh = rng.lognormal(0.0, 0.5, self.heads)
            fh /= fh.mean()
            pos = (np.arange(qb) * m) % self.frame_tokens / self.frame_tokens
            gb = 1.0 + 0.3 * np.sin(2 * np.pi * pos)[None, :] + 0.1 * rng.standard_normal((self.heads, qb))
            self._keys_cache[layer, m] = _fill_to_density(self.density * n_tok * fh[:, None] * gb,
                                                          self.density * n_tok, n_tok)
        return self._keys_cache[layer, m]

    def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        m = m or self.block_m
        key = (layer, m, n)
        if key not in self._cache:
            n_tok = self.n_tokens
            keys = self._keys(layer, m)
            if n > 1:
                infl = 1.0 + 0.05 * np.log2(n)
                c = np.minimum(np.ceil(keys * infl / n), -(-n_tok // n))
            else:
                c = np.round(keys)
            c = c.astype(np.int32)
            c.setflags(write=False)  # shared by every pass of the layer: a caller cannot change them for the others
            self._cache[key] = c
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
    d = 0.6 if density is None else density  # FG-Attn keeps 0.59-0.68 of FLOPs (FG-Attn, arXiv 2509.16518, §5 tables)
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


def _legacy_generation(model: ModelConfig, info: Any, rp: Any, gpu: GPU) -> dict[str, Any]:
    """The FLOP/byte estimate (models without a diffusers config): non-attention from GEMM FLOP and passes."""
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


@dataclass(frozen=True)
class GenerationOptions:
    """How the generation runs: ``baseline`` dense attention (``cudnn`` | ``fgattn``), ``compiled``
    (torch.compile of the blocks), ``warmup_steps`` dense steps, ``recompute`` steps with mask prediction (None:
    the first sparse step only), ``predictor`` (``exact`` | ``pooled``), ``kept`` (predicted masks' kept fraction,
    for the index build), ``block_m``."""

    baseline: str = "cudnn"
    compiled: bool = False
    warmup_steps: int = 0
    recompute: tuple[int, ...] | None = None
    predictor: str = "exact"
    kept: float = 0.6
    block_m: int = 64
    op_calibration: str | None = None  # operator calibration file (default: fgsim/data/ops/<gpu>.json)
    #: how the fgattn kernels' clock was chosen (:func:`generation_gpu`'s note), printed with the prediction
    clock_note: str = ""

    def __post_init__(self) -> None:
        if self.baseline not in ("cudnn", "fgattn"):
            raise FgsimError(f"--baseline must be cudnn or fgattn, got {self.baseline!r}")
        if self.warmup_steps < 0:
            raise FgsimError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.predictor not in ("exact", "pooled"):
            raise FgsimError(f"predictor must be exact or pooled, got {self.predictor!r}")


def parse_recompute(text: str | None) -> tuple[int, ...] | None:
    """``"0,15,30"`` → (0, 15, 30) denoising steps (FgsimError on bad input); None/empty → None."""
    if text is None or not text.strip():
        return None
    try:
        out = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise FgsimError(f"bad --recompute {text!r}: use step indices like 0,15,30") from None
    if not out or min(out) < 0:
        raise FgsimError(f"bad --recompute {text!r}: steps must be integers >= 0")
    return out


def sustained_clock(gpu_name: str, calibration: str | Path | None = None) -> tuple[float | None, str]:
    """(MHz, source) of the operator calibration's measured ``sustained_clock`` (``fgsim/data/ops/<gpu>.json``
    or ``calibration``): the SM clock the GPU sustains while attention kernels run back to back at its power
    limit. (None, why) when the GPU has no operator calibration or it records no such entry; FgsimError (one line
    naming the file and field) when the entry is malformed or its ``sm_clock_mhz`` is not a clock in MHz."""
    from fgsim.opmodel import CALIBRATION_DIR

    p = Path(calibration) if calibration else CALIBRATION_DIR / f"{gpu_name}.json"
    if not p.is_file():
        if calibration:
            raise FgsimError(f"{p}: no such operator calibration file")
        return None, f"no operator calibration for {gpu_name}"
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FgsimError(f"{p}: cannot read the operator calibration ({exc})") from None
    sc = data.get("sustained_clock") if isinstance(data, dict) else None
    if sc is None or sc == {}:
        return None, f"{p.name} records no sustained clock"
    if not isinstance(sc, dict):
        raise FgsimError(f"{p}: field 'sustained_clock' must be an object with 'sm_clock_mhz' (MHz)")
    v = sc.get("sm_clock_mhz")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 100.0 <= v <= 5000.0:
        raise FgsimError(f"{p}: sustained_clock.sm_clock_mhz must be an SM clock in MHz (100-5000), got {v!r}")
    unit = sc.get("unit", "MHz")
    if unit != "MHz":
        raise FgsimError(f"{p}: sustained_clock.unit must be 'MHz', got {unit!r}")
    return float(v), str(sc.get("source") or p.name)


def generation_gpu(gpu: GPU, calibration: str | Path | None = None) -> tuple[GPU, str]:
    """(GPU, note) for pricing the fgattn kernels of a whole generation: ``gpu`` with its clock set to the
    measured sustained attention clock (:func:`sustained_clock`; the cost model's cycles at that clock, memory
    bandwidths unchanged), or ``gpu`` unchanged when none is measured for it. Kernel-level predictions (``fgsim
    predict`` on a trace, ``fgsim validate``) keep the GPU file's clock, at which the calibration ran."""
    mhz, src = sustained_clock(gpu.name, calibration)
    if mhz is None:
        return gpu, (f"fgattn kernels priced at {gpu.sustained_clock_mhz:.0f} MHz, the GPU file's clock ({src}; a "
                     "generation held at the power limit clocks lower and its attention takes longer)")
    if mhz > gpu.boost_clock_mhz * 1.001:
        raise FgsimError(f"{calibration or gpu.name}: sustained_clock.sm_clock_mhz {mhz:.0f} MHz is above "
                         f"{gpu.name}'s boost clock {gpu.boost_clock_mhz:.0f} MHz")
    return replace(gpu, sustained_clock_mhz=mhz), (
        f"fgattn kernels priced at {mhz:.0f} MHz, the SM clock the {gpu.name} sustains running attention back to "
        f"back at its power limit (measured: {src}); kernel-level predictions use the calibration clock "
        f"{gpu.sustained_clock_mhz:.0f} MHz; cuDNN and the other operators come from the operator calibration, "
        "measured in a sustained state")


_PARTS_CACHE: dict[tuple[str, str, str, bool], dict[str, Any]] = {}


def pass_parts(model: ModelConfig, resolution: str, gpu: str = "h200", compiled: bool = False,
               calibration: str | None = None) -> dict[str, Any]:
    """One pass's non-attention seconds (total and per category), its self-attention shape and the cuDNN
    SDPA seconds per self-attention call, from the operator model and calibration."""
    from fgsim.opmodel import load_op_calibration, model_ops, pass_time, sdpa_time

    key = (model.name, resolution, gpu, compiled)
    if calibration is None and key in _PARTS_CACHE:
        return _PARTS_CACHE[key]
    cal = load_op_calibration(calibration, gpu)
    ops = model_ops(model, resolution)
    selfs = [o.sdpa for o in ops if o.kind == "attention" and o.cat == "attention" and o.sdpa]
    cross = [o.sdpa for o in ops if o.kind == "attention" and o.cat == "cross_attention" and o.sdpa]
    att = {"attention": 0.0, "cross_attention": sdpa_time(cal, cross[0]) if cross else 0.0}
    pt = pass_time(ops, cal, att, compiled=compiled)
    cudnn_call = sdpa_time(cal, selfs[0]) if selfs else 0.0
    with_cudnn = pass_time(ops, cal, att | {"attention": cudnn_call}, compiled=compiled)
    out = {"non_attention_s": pt.total_s, "by_category_s": pt.by_cat, "self_calls": len(selfs),
           "self_shape": selfs[0] if selfs else None, "cudnn_call_s": cudnn_call,
           "cudnn_pass_s": with_cudnn.total_s, "kernels": pt.kernels, "mode": pt.mode,
           "source": f"operator model ({'torch.compile' if compiled else 'eager'}), calibration "
                     f"{cal.provenance.get('device', cal.gpu)} {cal.provenance.get('date', '')}",
           "predictor": cal.predictor, "calibration": cal}
    if calibration is None:
        _PARTS_CACHE[key] = out
    return out


def predict_generation(model: ModelConfig, info: Any, rp: Any, gpu: GPU,
                       options: GenerationOptions | None = None) -> dict[str, Any]:
    """The whole generation per attention kernel: time, per-part breakdown, and the speedup over the baseline.

    ``rp``: the kernel cost model's :class:`fgsim.runpredict.RunPrediction` for the sparse kernels (and
    fgattn's ``dense``) on the trace's or synthesized counts; its mean per pass is used for the sparse passes.
    """
    from fgsim.opmodel import predictor_time

    opts = options or GenerationOptions()
    res = next((r for r in model.resolutions if model.n_tokens(r) == info.n_tokens), None)
    if not model.diffusers or res is None:
        out = _legacy_generation(model, info, rp, gpu)
        out["method"] = "FLOP/byte estimate (no diffusers config or resolution in the model file)"
        return out
    try:
        parts = pass_parts(model, res, gpu.name, opts.compiled, opts.op_calibration)
    except FgsimError as exc:
        out = _legacy_generation(model, info, rp, gpu)
        out["method"] = f"FLOP/byte estimate ({exc})"
        return out
    steps, pps = model.steps, model.passes_per_step
    passes = steps * pps
    layers = parts["self_calls"] or model.layers
    non_attn = parts["non_attention_s"]
    base_call = parts["cudnn_call_s"] if opts.baseline == "cudnn" else \
        rp.full_run_s("dense") / max(passes * layers, 1)
    base_pass_att = base_call * layers
    warm = min(opts.warmup_steps, steps)
    recompute = sorted({s for s in (opts.recompute or ()) if warm <= s < steps} | ({warm} if warm < steps else set()))
    pcost = predictor_time(parts["calibration"], opts.predictor, model.heads, info.n_tokens, model.head_dim,
                           opts.block_m, opts.kept)
    pred_call = pcost["predict"] + pcost["index"]
    pred_total = len(recompute) * pps * layers * pred_call
    baseline_total = passes * (non_attn + base_pass_att)
    out: dict[str, Any] = {
        "model": model.name, "resolution": res, "steps": steps, "passes_per_step": pps, "layers": layers,
        "gpu": gpu.name, "method": parts["source"], "sm_clock_mhz": gpu.sustained_clock_mhz,
        "clock_note": opts.clock_note, "options": {
            "baseline": opts.baseline, "compiled": opts.compiled, "warmup_steps": warm, "recompute": recompute,
            "predictor": opts.predictor},
        "per_pass": {"non_attention_s": non_attn, "by_category_s": parts["by_category_s"],
                     "baseline_attention_s": base_pass_att, "baseline_pass_s": non_attn + base_pass_att},
        "non_attention_s": passes * non_attn, "non_attention_source": parts["source"],
        "baseline": {"name": opts.baseline, "attention_s": passes * base_pass_att, "generation_s": baseline_total,
                     "attention_share": passes * base_pass_att / baseline_total},
        "mask_prediction": {"per_call_s": pred_call, "predict_s": pcost["predict"], "index_s": pcost["index"],
                            "recompute_passes": len(recompute) * pps, "total_s": pred_total},
        "kernels": {},
    }
    for k in rp.kernels:
        att_pass = rp.full_run_s(k) / passes
        sparse = k != "dense"
        att = warm * pps * base_pass_att + (passes - warm * pps) * att_pass if sparse else passes * att_pass
        extra = pred_total if sparse else 0.0
        gen = passes * non_attn + att + extra
        out["kernels"][k] = {"attention_s": att, "mask_prediction_s": extra, "generation_s": gen,
                             "attention_share": att / gen, "per_pass_s": non_attn + att_pass,
                             "speedup": baseline_total / gen,
                             "attention_speedup": passes * base_pass_att / max(att + extra, 1e-30)}
    return out


def plot_generation(e2e: dict[str, Any], measured: dict[str, float] | None = None) -> bytes:
    """Stacked bars of one pass per kernel (non-attention categories, attention, amortised mask prediction),
    next to measured pass seconds when ``measured`` ({kernel or 'baseline': seconds}) is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    passes = e2e["steps"] * e2e["passes_per_step"]
    cats = e2e["per_pass"]["by_category_s"]
    names = ["baseline"] + list(e2e["kernels"])
    fig, ax = plt.subplots(figsize=(7, 3.8))
    colors = plt.cm.tab20.colors
    for i, name in enumerate(names):
        if name == "baseline":
            att = e2e["per_pass"]["baseline_attention_s"]
            pred = 0.0
        else:
            kv = e2e["kernels"][name]
            att = kv["attention_s"] / passes
            pred = kv["mask_prediction_s"] / passes
        bottom = 0.0
        for j, (c, v) in enumerate(sorted(cats.items())):
            if v <= 0:
                continue
            ax.bar(i, v * 1e3, 0.6, bottom=bottom, color=colors[j % 20], label=c if i == 0 else None)
            bottom += v * 1e3
        ax.bar(i, att * 1e3, 0.6, bottom=bottom, color="#4477aa", label="self-attention" if i == 0 else None)
        bottom += att * 1e3
        if pred:
            ax.bar(i, pred * 1e3, 0.6, bottom=bottom, color="#ee6677", label="mask prediction" if i == 1 else None)
        if measured and name in measured:
            ax.plot([i - 0.35, i + 0.35], [measured[name] * 1e3] * 2, color="k", lw=2,
                    label="measured" if name == "baseline" else None)
    ax.set_xticks(range(len(names)), [n if n != "baseline" else e2e["baseline"]["name"] for n in names])
    ax.set_ylabel("time per transformer pass (ms)")
    ax.set_title(f"{e2e['model']} {e2e['resolution']} on {e2e['gpu']} ({'compiled' if e2e['options']['compiled'] else 'eager'})")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    from fgsim.fileio import figure_png

    return figure_png(fig)


def measured_passes(path: str, e2e: dict[str, Any]) -> dict[str, float]:
    """Measured seconds per pass of ``e2e``'s model and resolution from a CSV (columns model, resolution, mode,
    pass_s; mode ``cudnn`` or ``fgattn-dense`` is the baseline, ``fg@d`` / ``block@d`` the sparse kernels)."""
    import csv

    p = Path(path)
    try:
        rows = list(csv.DictReader(p.open()))
    except OSError as exc:
        raise FgsimError(f"--measured: {p}: {exc.strerror or exc}") from None
    out: dict[str, float] = {}
    base = "cudnn" if e2e["baseline"]["name"] == "cudnn" else "dense"
    for r in rows:
        try:
            if r["model"] != e2e["model"] or r["resolution"] != e2e["resolution"]:
                continue
            mode, t = r["mode"], float(r["pass_s"])
        except (KeyError, ValueError):
            raise FgsimError(f"--measured: {p}: needs columns model, resolution, mode, pass_s") from None
        if mode == base:
            out["baseline"] = t
        kern = mode.split("@")[0]
        if kern in e2e["kernels"] and kern not in out:
            out[kern] = t
    return out


def e2e_lines(e2e: dict[str, Any], fmt: Any) -> list[str]:
    """Text lines of a generation prediction (``fmt`` formats seconds)."""
    o = e2e["options"]
    pp = e2e["per_pass"]
    lines = [f"  {'torch.compile' if o['compiled'] else 'eager'}; baseline {o['baseline']}; warm-up steps "
             f"{o['warmup_steps']}; masks predicted ({o['predictor']}) at steps {o['recompute']}",
             f"  per pass: non-attention {fmt(pp['non_attention_s'])} ("
             + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(pp['by_category_s'].items(), key=lambda x: -x[1])
                         if v > 0) + ")",
             f"  per pass: {o['baseline']} self-attention {fmt(pp['baseline_attention_s'])}, pass "
             f"{fmt(pp['baseline_pass_s'])} (attention {e2e['baseline']['attention_share'] * 100:.1f}%)",
             f"  mask prediction: {fmt(e2e['mask_prediction']['per_call_s'])} per layer call x "
             f"{counted(e2e['mask_prediction']['recompute_passes'], 'pass', 'passes')} = "
             f"{fmt(e2e['mask_prediction']['total_s'])}",
             f"  baseline generation {fmt(e2e['baseline']['generation_s'])}"]
    for k, v in e2e["kernels"].items():
        lines.append(f"  {k:<6} attention {fmt(v['attention_s']):>9}  generation {fmt(v['generation_s']):>9}  "
                     f"attention {v['attention_share'] * 100:5.1f}%  speedup over {o['baseline']} "
                     f"{v['speedup']:.3f}x")
    lines.append(f"  method: {e2e['method']}")
    if e2e.get("clock_note"):
        lines.append(f"  clock: {e2e['clock_note']}")
    elif e2e.get("sm_clock_mhz"):
        lines.append(f"  clock: fgattn kernels priced at {e2e['sm_clock_mhz']:.0f} MHz")
    return lines
