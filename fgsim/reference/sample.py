"""Sampling the reference DiT: a flow-matching Euler sampler with classifier-free guidance, as Wan's pipeline does.

**Sampler** (:func:`sample`). Noise levels ``σ_0 = 1 > σ_1 > … > σ_S = 0``: ``S`` uniform steps in ``[1, 0]`` warped
by Wan's shift, ``σ ← shift·σ / (1 + (shift − 1)·σ)`` (``FlowMatchEulerDiscreteScheduler``). At each step the
transformer runs **twice, sequentially** — conditional then unconditional (null label) — each inside
``transformer.cache_context("cond" | "uncond", step_index=i, …)`` exactly as diffusers' ``WanPipeline`` calls it (so
fgsim's capture hooks tag pass, step and branch the same way), ``v = v_u + g·(v_c − v_u)`` and
``x ← x + (σ_{i+1} − σ_i)·v`` (the model predicts ``v = ε − x0`` of ``x_σ = (1 − σ)·x0 + σ·ε``). ``guidance_scale``
≤ 1 runs the conditional pass only. Noise is drawn on the CPU from ``seed``, so it is the same on every device.

**Attention switch** (:func:`self_attention`). The self-attention of every block (``blocks.N.attn1``) can be routed to
a callable ``fn(q, k, v, ctx) → out`` with ``q, k, v, out`` of shape ``(B, S, H, D)`` — post-QK-norm and post-RoPE,
what Wan's processor hands to ``dispatch_attention_fn`` — and ``ctx`` an :class:`AttentionContext` (layer, step,
branch, pass, token grid). ``"dense"`` keeps diffusers' own processor (SDPA through the dispatcher; this is also
what capture hooks into). :func:`sdpa_attention` is the dense computation as such a callable;
:func:`fg_attention_fn` builds the FG-Attn one (mask predictor from :mod:`fgsim.capture.predictors`, kernel from
``fgattn``, both imported when called).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fgsim.errors import FgsimError

if TYPE_CHECKING:
    import torch


@dataclass
class AttentionContext:
    """Where a self-attention call happens: ``layer`` (block index), ``step`` (denoising step, 0-based),
    ``branch`` (``"cond"``/``"uncond"``), ``pass_index`` (transformer invocation counter, both branches counted),
    ``grid`` (token grid T, H, W after the patch)."""

    layer: int = 0
    step: int = -1
    branch: str = "cond"
    pass_index: int = -1
    grid: tuple[int, int, int] = (0, 0, 0)


AttentionFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor", AttentionContext], "torch.Tensor"]


@dataclass
class AttentionSwitch:
    """State shared by the switched processors; the sampler updates ``step``, ``branch``, ``pass_index``,
    ``grid`` before each pass. ``calls`` counts self-attention calls routed to ``fn``."""

    fn: AttentionFn | None
    step: int = -1
    branch: str = "cond"
    pass_index: int = -1
    grid: tuple[int, int, int] = (0, 0, 0)
    calls: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


def _apply_rope(x: torch.Tensor, freqs_cos: torch.Tensor, freqs_sin: torch.Tensor) -> torch.Tensor:
    """diffusers 0.42.1 ``WanAttnProcessor``'s rotary embedding (the integration's copy, one for the package)."""
    from fgsim.integrations.diffusers import _wan_rope

    return _wan_rope(x, freqs_cos, freqs_sin)


def _switch_processor_class() -> Any:
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor, _get_qkv_projections

    class SwitchedWanAttnProcessor(WanAttnProcessor):
        """Wan's attention processor with the self-attention core replaced by ``switch.fn``."""

        def __init__(self, switch: AttentionSwitch, layer: int) -> None:
            super().__init__()
            self.switch = switch
            self.layer = layer

        def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                     attention_mask: torch.Tensor | None = None,
                     rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
            sw = self.switch
            if sw.fn is None or encoder_hidden_states is not None or attn.add_k_proj is not None \
                    or attention_mask is not None:
                return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
            query, key, value = _get_qkv_projections(attn, hidden_states, None)
            query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
            key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
            value = value.unflatten(2, (attn.heads, -1))
            if rotary_emb is not None:
                query = _apply_rope(query, *rotary_emb)
                key = _apply_rope(key, *rotary_emb)
            ctx = AttentionContext(self.layer, sw.step, sw.branch, sw.pass_index, sw.grid)
            out = sw.fn(query, key, value, ctx)
            sw.calls += 1
            out = out.flatten(2, 3).type_as(query)
            out = attn.to_out[0](out)
            return attn.to_out[1](out)

    return SwitchedWanAttnProcessor


@contextmanager
def self_attention(transformer: Any, attention: str | AttentionFn = "dense") -> Iterator[AttentionSwitch]:
    """Route ``transformer``'s self-attention (``blocks.N.attn1``) to ``attention`` while the block runs.

    ``"dense"``: leave diffusers' processors in place (the yielded switch has ``fn=None``). A callable: install a
    processor on every ``attn1`` that computes Wan's ``q, k, v`` and calls it; the original processors are restored
    on exit. Cross-attention (``attn2``) is never switched.
    """
    if attention == "dense":
        yield AttentionSwitch(None)
        return
    if not callable(attention):
        raise FgsimError(f"attention must be 'dense' or a callable fn(q, k, v, ctx), got {attention!r}")
    switch = AttentionSwitch(attention)
    cls = _switch_processor_class()
    saved = dict(transformer.attn_processors)
    new = {}
    for name, proc in saved.items():
        parts = name.split(".")
        if len(parts) == 4 and parts[0] == "blocks" and parts[2] == "attn1":
            new[name] = cls(switch, int(parts[1]))
        else:
            new[name] = proc
    transformer.set_attn_processor(new)
    try:
        yield switch
    finally:
        transformer.set_attn_processor(saved)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
    """Dense attention as a switch callable: ``F.scaled_dot_product_attention`` on ``(B, S, H, D)`` tensors."""
    import torch.nn.functional as F

    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


def fg_attention_fn(predictor: Any, *, gran_n: int = 1, kernel: str = "fg", recompute_every: int = 1,
                    record: dict[str, list[float]] | None = None) -> AttentionFn:
    """An FG-Attn self-attention callable: ``predictor`` (e.g. ``make_predictor("exact", threshold=0.5,
    block_m=64)``) predicts the M×1 slice mask from this call's ``q, k``; ``fgattn.fg_attention`` (``kernel="fg"``,
    keys gathered in runs of ``gran_n``) or ``fgattn.block_sparse_attention`` (``kernel="block"``, M×M blocks
    holding a kept slice) computes the output on the kept work only.

    ``recompute_every``: predict a new mask for a (layer, branch) only every this many denoising steps and reuse
    the last index in between (FG-Attn recomputes masks at a few steps; 1 = every call). ``record``, when given,
    collects the kept fraction of M×1 slices of each prediction (``record["kept"]``) and the number of calls that
    reused an index (``record["reused"]``). Needs CUDA (or ``TRITON_INTERPRET=1`` in float32).
    """
    if kernel not in ("fg", "block"):
        raise FgsimError(f"kernel must be 'fg' or 'block', got {kernel!r}")
    if recompute_every < 1:
        raise FgsimError(f"recompute_every must be ≥ 1, got {recompute_every}")
    cache: dict[tuple[int, str], tuple[int, Any]] = {}

    def fn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        import fgattn

        m = int(predictor.block_m)
        key = (ctx.layer, ctx.branch)
        hit = cache.get(key)
        if hit is not None and 0 <= ctx.step - hit[0] < recompute_every:
            index = hit[1]
            if record is not None:
                record.setdefault("reused", []).append(1.0)
        else:
            mask = predictor(q.transpose(1, 2), k.transpose(1, 2))  # (B, H, QB, S_k) bool
            if record is not None:
                record.setdefault("kept", []).append(float(mask.float().mean()))
            if kernel == "fg":
                index = fgattn.build_index(mask, block_m=m, gran_n=gran_n)
            else:
                index = fgattn.block_index_from_mask(mask, block_m=m, n_keys=k.shape[1])
            cache[key] = (ctx.step, index)
        if kernel == "fg":
            return fgattn.fg_attention(q, k, v, index, block_m=m, gran_n=gran_n, layout="bnhd")
        return fgattn.block_sparse_attention(q, k, v, index, block_m=m, layout="bnhd")

    return fn


def frame_grid(frames: torch.Tensor, columns: int = 5, downscale: int = 1) -> Any:
    """A uint8 RGB image (numpy ``(rows·H', columns·W', 3)``) of ``frames (B, 3, F, H, W)`` in [0, 1]: one row per
    clip, ``columns`` evenly spaced frames, each downscaled by ``downscale`` (average pooling)."""
    import numpy as np
    import torch

    b, _, f, h, w = frames.shape
    idx = sorted({round(i * (f - 1) / max(columns - 1, 1)) for i in range(columns)})
    sel = frames[:, :, idx].float().clamp(0, 1)  # (B, 3, C, H, W)
    if downscale > 1:
        sel = torch.nn.functional.avg_pool3d(sel, (1, downscale, downscale))
    rows = [torch.cat(list(sel[i].unbind(1)), dim=2) for i in range(b)]  # each (3, H', C·W')
    img = torch.cat(rows, dim=1).permute(1, 2, 0).cpu().numpy()
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------------
# Sampler


def flow_sigmas(steps: int, shift: float = 3.0) -> list[float]:
    """The ``steps + 1`` noise levels from 1 to 0 (dimensionless), uniform then shifted as Wan's scheduler."""
    if steps < 1:
        raise FgsimError(f"steps must be ≥ 1, got {steps}")
    if not (shift > 0 and math.isfinite(shift)):
        raise FgsimError(f"shift must be a positive number, got {shift}")
    out = []
    for i in range(steps + 1):
        s = 1.0 - i / steps
        out.append(shift * s / (1.0 + (shift - 1.0) * s))
    return out


def _labels_tensor(labels: Any, device: Any) -> torch.Tensor:
    import torch

    from fgsim.reference.data import ClipLabel

    if isinstance(labels, torch.Tensor):
        lab = labels.to(device=device, dtype=torch.int64)
    else:
        rows = [x.as_list() if isinstance(x, ClipLabel) else list(x) for x in labels]
        lab = torch.tensor(rows, dtype=torch.int64, device=device)
    if lab.dim() != 2 or lab.shape[1] != 3:
        raise FgsimError(f"labels must be (B, 3) [image, motion, shapes], got {tuple(lab.shape)}")
    return lab


class EulerCFG:
    """The sampler as a generator of transformer passes, so that the same loop can be driven directly
    (:func:`sample`) or by :func:`fgsim.capture.run.capture_transformer` (:func:`capture_sample`).

    :meth:`passes` yields, per pass, the transformer's keyword arguments plus ``_branch`` and ``_step``; after each
    yield the driver must set :attr:`last_output` to the transformer's output ``(B, 768, T, h, w)``. When the
    generator is exhausted :attr:`x` holds the sampled latents (float32).
    """

    def __init__(self, model: Any, labels: Any, latent_grid: Sequence[int], *, steps: int = 50,
                 guidance_scale: float = 5.0, shift: float = 3.0, seed: int = 0,
                 noise: torch.Tensor | None = None) -> None:
        import torch

        from fgsim.reference.data import LATENT_CHANNELS, token_grid

        self.model = model
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.labels = _labels_tensor(labels, self.device)
        b = self.labels.shape[0]
        t_, h_, w_ = (int(x) for x in latent_grid)
        self.grid = token_grid(t_, h_, w_, model.transformer.config.patch_size)
        shape = (b, LATENT_CHANNELS, t_, h_, w_)
        if noise is None:
            gen = torch.Generator(device="cpu").manual_seed(int(seed))
            noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        elif tuple(noise.shape) != shape:
            raise FgsimError(f"noise must be {shape}, got {tuple(noise.shape)}")
        self.x = noise.to(device=self.device, dtype=torch.float32)
        self.sigmas = flow_sigmas(steps, shift)
        self.steps = steps
        self.guidance_scale = float(guidance_scale)
        self.cfg = guidance_scale > 1.0
        self.last_output: torch.Tensor | None = None
        self.passes_run = 0

    def passes(self) -> Iterator[dict[str, Any]]:
        """Yield the keyword arguments of every transformer pass, in order (cond then uncond per step)."""
        import torch

        b = self.labels.shape[0]
        with torch.no_grad():
            cond = self.model.encode_labels(self.labels).to(self.dtype)
            uncond = self.model.encode_labels(torch.full_like(self.labels, -1)).to(self.dtype)
        for i in range(self.steps):
            s, s_next = self.sigmas[i], self.sigmas[i + 1]
            timestep = torch.full((b,), s * 1000.0, device=self.device, dtype=torch.float32)
            branches = [("cond", cond), ("uncond", uncond)] if self.cfg else [("cond", cond)]
            preds = []
            for branch, tokens in branches:
                self.last_output = None
                yield {"hidden_states": self.x.to(self.dtype), "timestep": timestep, "encoder_hidden_states": tokens,
                       "return_dict": False, "_branch": branch, "_step": i, "_sigma": s}
                if self.last_output is None:
                    raise RuntimeError("EulerCFG: the driver did not set last_output after a pass")
                preds.append(self.model.to_velocity(self.x, self.last_output, s).float())
                self.passes_run += 1
            v = preds[1] + self.guidance_scale * (preds[0] - preds[1]) if self.cfg else preds[0]
            self.x = self.x + (s_next - s) * v


def sample(model: Any, labels: Any, latent_grid: Sequence[int], *, steps: int = 50, guidance_scale: float = 5.0,
           shift: float = 3.0, seed: int = 0, attention: str | AttentionFn = "dense", bf16: bool | None = None,
           noise: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
    """Sample latents ``(B, 768, T, h, w)`` (float32, on the model's device) for ``labels`` at ``latent_grid``
    ``(T, h, w)`` (before the 1×2×2 patch; decode with :class:`~fgsim.reference.data.LatentCodec`).

    ``labels``: ``(B, 3)`` tensor or a list of :class:`~fgsim.reference.data.ClipLabel`. ``steps``: Euler steps
    (transformer passes = 2·steps with guidance > 1). ``bf16``: autocast to bfloat16 (default: on CUDA when the
    weights are float32; a bfloat16 model runs in bfloat16 anyway). ``noise``: the initial ``ε`` (default drawn
    from ``seed`` on the CPU). ``attention``: ``"dense"`` or a callable, see :func:`self_attention`.
    """
    import torch

    run = EulerCFG(model, labels, latent_grid, steps=steps, guidance_scale=guidance_scale, shift=shift, seed=seed,
                   noise=noise)
    use_bf16 = (run.device.type == "cuda" and run.dtype == torch.float32) if bf16 is None else bf16
    tr = model.transformer
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps * (2 if run.cfg else 1), desc="sampling", unit="pass")
    try:
        with torch.no_grad(), self_attention(tr, attention) as switch:
            switch.grid = run.grid
            for kw in run.passes():
                branch, step, sigma = kw.pop("_branch"), kw.pop("_step"), kw.pop("_sigma")
                switch.step, switch.branch, switch.pass_index = step, branch, run.passes_run
                amp = torch.autocast(run.device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
                with tr.cache_context(branch, step_index=step, sigma=sigma, num_inference_steps=steps), amp:
                    run.last_output = tr(**kw)[0]
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return run.x


def capture_sample(model: Any, labels: Any, latent_grid: Sequence[int], out: Any, predictor: Any, *,
                   steps: int = 50, guidance_scale: float = 5.0, shift: float = 3.0, seed: int = 0,
                   schedule: Any = None, layers: Sequence[int] | None = None, stats: bool = True,
                   run_info: dict[str, Any] | None = None, progress: bool = False) -> tuple[Any, torch.Tensor]:
    """Sample as :func:`sample` (dense attention, the model's own dtype, no autocast) while
    :func:`fgsim.capture.run.capture_transformer` writes a ``.fgt`` trace of the self-attention to ``out``.

    ``predictor``: a :mod:`fgsim.capture.predictors` predictor; ``schedule``: a
    :class:`fgsim.capture.hooks.Schedule` of passes (default all); ``layers``: block indices (default all).
    Capture hooks never change outputs, so the latents equal an uncaptured :func:`sample` with the same
    arguments. Returns ``(CaptureResult, latents)``; the trace's batch element is the last sample of the batch.
    """
    from fgsim.capture.run import capture_transformer

    run = EulerCFG(model, labels, latent_grid, steps=steps, guidance_scale=guidance_scale, shift=shift, seed=seed)
    tr = model.transformer

    def tap(module: Any, args: Any, kwargs: Any, output: Any) -> None:
        run.last_output = output[0] if isinstance(output, tuple) else output.sample

    def inputs() -> Iterator[dict[str, Any]]:
        for kw in run.passes():
            kw.pop("_sigma")
            yield kw

    handle = tr.register_forward_hook(tap, with_kwargs=True)
    info = {"reference_dit": True, "labels": run.labels.tolist(), "latent_grid": list(latent_grid),
            "steps": steps, "guidance_scale": guidance_scale, "shift": shift, "seed": seed,
            "dtype": str(run.dtype).replace("torch.", ""), **(run_info or {})}
    try:
        result = capture_transformer(tr, inputs, out, predictor, schedule=schedule, layers=layers, stats=stats,
                                     model_name="fgsim-reference-dit", num_steps=steps, run_info=info,
                                     progress=progress)
    finally:
        handle.remove()
    return result, run.x


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``a`` against ``b`` in dB (``data_range``: peak value, 1.0 for frames in
    [0, 1]); ``inf`` when they are equal. Computed in float64 over all elements."""
    if a.shape != b.shape:
        raise FgsimError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = float(((a.double() - b.double()) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)
