"""FG-Attn in a diffusers pipeline with one call: :func:`enable_fgattn`.

Mechanism (diffusers' public attention-processor API only, no private registries): every self-attention module
of the transformer gets a processor through ``AttentionModuleMixin.set_processor`` that wraps the one it had.

- ``WanTransformer3DModel`` (Wan2.1/2.2): the wrapper computes Wan's ``q, k, v`` itself (projections, RMS QK-norm,
  RoPE: the arithmetic of diffusers' ``WanAttnProcessor``) and hands them, ``(B, S, H, D)``, to
  :meth:`FgAttnState.attend`; cross-attention (``attn2``) keeps its own processor.
- Any other transformer whose processors reach ``torch.nn.functional.scaled_dot_product_attention`` (diffusers'
  default ``native`` backend, CogVideoX, Mochi, HunyuanVideo): the wrapper runs the original processor inside a
  ``TorchFunctionMode`` that routes each self-attention SDPA call (``S_q == S_k``) to :meth:`FgAttnState.attend`.
  Text tokens inside the joint sequence stay in it (the mask covers them like video tokens); a key-padding
  ``attn_mask`` (HunyuanVideo) is passed to the predictor, whose masks never keep a padded key.

Whenever a call runs dense with ``dense_backend="original"`` (warm-up steps, opted-out layers) the wrapper calls
the original processor unchanged, so a schedule that keeps everything dense gives bitwise the outputs of the
unmodified pipeline.

Schedule (:class:`FgSchedule`): steps ``< warmup_steps`` run dense; from then on the backend runs. For the sparse
backends (``fg``, ``block``) a mask is predicted (exact column-max or pooled predictor at a threshold) at the
steps listed in ``recompute`` and at the first sparse step, its index cached per (layer, CFG branch) and reused
at the steps in between. CFG branches: ``cfg="separate"`` keeps a mask per branch (a batched CFG pass gets one
per sample); ``"shared"`` predicts on the conditional sample and reuses that mask for the other branch.

Steps are counted by a forward pre-hook on the transformer: a new step whenever the ``timestep`` argument
changes, a new generation when it increases (flow-matching and DDPM timesteps decrease within a run); the calls
of one step are the CFG branches in order (``cond``, then ``uncond``, as diffusers' Wan pipeline runs them), a
batch of 2 is ``cond_uncond``. :meth:`FgAttnState.set_pass` overrides this for a harness.

Per-call hook point: :attr:`FgAttnState.kernel_fn` ``(q, k, v, index, ctx) -> out`` (``(B, S, H, D)`` tensors,
``index`` an ``fgattn.FgIndex`` or None) runs the chosen kernel; replace it to run FG-Attn differently (e.g.
under context parallelism). The same state object works as a plain callable in other frameworks:
:func:`sparse_attention_fn`.

Tested with diffusers 0.42.1 (CPU, tiny configs; H200, real-size Wan2.1 configs). Needs ``AttentionModuleMixin``
(diffusers >= 0.35).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fgsim.errors import FgsimError

if TYPE_CHECKING:
    import torch

#: Attention backends one switch selects: FG-Attn (``fg``), M×M block-sparse (``block``), fgattn's dense kernel
#: (``dense``), PyTorch SDPA restricted to cuDNN (``cudnn``) or FlashAttention-2 (``flash``), PyTorch's own choice
#: (``sdpa``), and the processor the pipeline had (``original``).
BACKENDS: tuple[str, ...] = ("fg", "block", "dense", "cudnn", "flash", "sdpa", "original")
SPARSE_BACKENDS: tuple[str, ...] = ("fg", "block")
TESTED_DIFFUSERS = (">=0.35", "0.42.1")


@dataclass(frozen=True)
class FgSchedule:
    """When and how FG-Attn runs. Steps are 0-based denoising steps.

    ``recompute``: steps at which masks are predicted anew (None: every step); the first sparse step always
    predicts. ``threshold``: the exact predictor's tau (default 0.5) or the pooled predictor's cumulative
    probability p (default 0.9). ``skip_layers``: self-attention layers (0-based) that stay dense.
    ``dense_backend``: what dense calls run (``original`` = the pipeline's own processor, bitwise unchanged).
    """

    backend: str = "fg"
    warmup_steps: int = 0
    recompute: tuple[int, ...] | None = (0, 8, 15, 23, 30, 40)
    predictor: str = "exact"
    threshold: float | None = None
    block_m: int = 64
    gran_n: int = 1
    skip_layers: tuple[int, ...] = ()
    cfg: str = "separate"
    dense_backend: str = "original"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise FgsimError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.dense_backend in SPARSE_BACKENDS or self.dense_backend not in BACKENDS:
            raise FgsimError(f"dense_backend must be a dense backend, got {self.dense_backend!r}")
        if self.warmup_steps < 0:
            raise FgsimError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.recompute is not None and any(s < 0 for s in self.recompute):
            raise FgsimError(f"recompute steps must be >= 0, got {self.recompute}")
        if self.predictor not in ("exact", "pooled"):
            raise FgsimError(f"predictor must be exact or pooled, got {self.predictor!r}")
        if self.cfg not in ("separate", "shared"):
            raise FgsimError(f"cfg must be separate or shared, got {self.cfg!r}")
        if self.block_m not in (64, 128):
            raise FgsimError(f"block_m must be 64 or 128, got {self.block_m}")
        if self.gran_n not in (1, 16, 64):
            raise FgsimError(f"gran_n must be 1, 16 or 64, got {self.gran_n}")

    def sparse_at(self, step: int, layer: int) -> bool:
        """Whether (step, layer) runs the sparse backend (vs dense)."""
        return step >= self.warmup_steps and layer not in self.skip_layers

    def make_predictor(self) -> Any:
        """The mask predictor (:mod:`fgsim.capture.predictors`) this schedule uses."""
        from fgsim.capture.predictors import make_predictor

        return make_predictor(self.predictor, threshold=self.threshold, block_m=self.block_m)


@dataclass
class CallContext:
    """One self-attention call: layer (0-based among self-attention modules), step, CFG branch, pass index
    (transformer invocations since enabling), key-padding mask (bool (B, S_k), True = attend) and softmax scale."""

    layer: int
    step: int
    branch: str
    pass_index: int
    key_mask: Any = None
    scale: float | None = None
    backend: str = "fg"
    predicted: bool = False
    #: diffusers' ParallelConfig of the processor (context parallelism), None on one GPU; q, k, v are then the
    #: local sequence shards and a ``kernel_fn`` must handle the exchange (the default kernels do not)
    parallel_config: Any = None


KernelFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor", Any, CallContext], "torch.Tensor"]
#: Optional mask source replacing the predictor: ``(q, k, ctx) -> bool mask (B, H, QB, S_k) | fgattn.FgIndex``
#: (q, k in (B, H, S, D)); used to inject masks from traces.
MaskFn = Callable[["torch.Tensor", "torch.Tensor", CallContext], Any]


def run_kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, index: Any, ctx: CallContext) -> torch.Tensor:
    """The default per-call kernel: ``ctx.backend`` on ``(B, S, H, D)`` tensors (``index`` for fg/block)."""
    import torch
    import torch.nn.functional as F

    b = ctx.backend
    if b in ("fg", "block", "dense"):
        import os

        if q.device.type != "cuda" and os.environ.get("TRITON_INTERPRET", "0") != "1":
            raise FgsimError(f"backend {b!r} runs fgattn's Triton kernels: they need q, k, v on a CUDA GPU, or the "
                             f"Triton CPU interpreter (TRITON_INTERPRET=1 set before triton is imported); q is on "
                             f"{q.device.type}")
        import fgattn

        if b == "dense":
            if ctx.key_mask is not None and not bool(ctx.key_mask.all()):
                raise FgsimError("the fgattn dense kernel has no key-padding mask; use cudnn/sdpa or fg")
            return fgattn.dense_attention(q, k, v, layout="bnhd", sm_scale=ctx.scale)
        m = index.block_m
        if b == "fg":
            return fgattn.fg_attention(q, k, v, index, block_m=m, gran_n=index.gran_n, layout="bnhd",
                                       sm_scale=ctx.scale)
        return fgattn.block_sparse_attention(q, k, v, index, block_m=m, layout="bnhd", sm_scale=ctx.scale)
    mask = None if ctx.key_mask is None else ctx.key_mask[:, None, None, :]
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
    if b in ("cudnn", "flash"):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        which = SDPBackend.CUDNN_ATTENTION if b == "cudnn" else SDPBackend.FLASH_ATTENTION
        with sdpa_kernel(which):
            out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, scale=ctx.scale)
    else:
        out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, scale=ctx.scale)
    del torch
    return out.transpose(1, 2)


class FgAttnState:
    """Schedule state shared by the installed processors: step/branch tracking, index cache, kernel."""

    def __init__(self, schedule: FgSchedule, mask_fn: MaskFn | None = None, kernel_fn: KernelFn | None = None,
                 record: bool = True) -> None:
        self.schedule = schedule
        self.predictor = None if schedule.backend not in SPARSE_BACKENDS or mask_fn else schedule.make_predictor()
        self.mask_fn = mask_fn
        self.kernel_fn: KernelFn = kernel_fn or run_kernel
        self.record = record
        self.step = -1
        self.branch = "cond"
        self.pass_index = -1
        self.calls_in_step = 0
        self._last_t: float | None = None
        self._forced: tuple[int, str] | None = None
        self.cache: dict[tuple[int, str], tuple[int, Any]] = {}
        #: per-call log: (pass, step, branch, layer, backend, kept fraction or None, predicted)
        self.log: list[tuple[int, int, str, int, str, float | None, bool]] = []
        self.handles: list[Any] = []
        self.saved: dict[str, Any] = {}
        self.transformer: Any = None

    def set_schedule(self, schedule: FgSchedule, mask_fn: MaskFn | None = None,
                     kernel_fn: KernelFn | None = None) -> None:
        """Switch the installed processors to another schedule/backend (drops cached indices); the processors
        stay the same objects, so a compiled transformer is not recompiled for their sake."""
        self.schedule = schedule
        self.mask_fn = mask_fn
        self.predictor = None if schedule.backend not in SPARSE_BACKENDS or mask_fn else schedule.make_predictor()
        self.kernel_fn = kernel_fn or run_kernel
        self.cache.clear()

    # -- pass tracking ---------------------------------------------------------------------------------
    def set_pass(self, step: int, branch: str = "cond") -> None:
        """Tag the next transformer invocation explicitly (overrides timestep-based step detection once)."""
        self._forced = (int(step), str(branch))

    def reset(self) -> None:
        """Forget cached indices and counters (a new generation)."""
        self.cache.clear()
        self.step, self.pass_index, self.calls_in_step, self._last_t = -1, -1, 0, None

    def begin_pass(self, timestep: Any, batch: int) -> None:
        """Called before each transformer invocation."""
        self.pass_index += 1
        if self._forced is not None:
            new_step = self._forced[0] != self.step
            self.step, self.branch = self._forced
            self._forced = None
            self.calls_in_step = 0 if new_step else self.calls_in_step + 1
            return
        t = _scalar(timestep)
        if t is None or self._last_t is None or t != self._last_t:
            if t is not None and self._last_t is not None and t > self._last_t:
                self.cache.clear()
                self.step = -1
            self.step += 1
            self.calls_in_step = 0
        else:
            self.calls_in_step += 1
        self._last_t = t
        if batch == 2:
            self.branch = "cond_uncond"
        else:
            self.branch = ("cond", "uncond")[self.calls_in_step] if self.calls_in_step < 2 else \
                f"call{self.calls_in_step}"

    # -- one call --------------------------------------------------------------------------------------
    def wants_original(self, layer: int) -> bool:
        """True when this call is dense and dense means the original processor."""
        s = self.schedule
        dense = s.backend == "original" or not s.sparse_at(max(self.step, 0), layer)
        return dense and (s.backend == "original" or s.dense_backend == "original")

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int, key_mask: Any = None,
               scale: float | None = None, parallel_config: Any = None) -> torch.Tensor:
        """Self-attention of one call, ``(B, S, H, D)`` in and out, by the schedule."""
        s = self.schedule
        step = max(self.step, 0)
        backend = s.backend if s.sparse_at(step, layer) else s.dense_backend
        ctx = CallContext(layer, step, self.branch, self.pass_index, key_mask, scale, backend,
                          parallel_config=parallel_config)
        index = None
        kept = None
        if backend in SPARSE_BACKENDS:
            index, kept = self._index(q, k, ctx)
        out = self.kernel_fn(q, k, v, index, ctx)
        if self.record:
            self.log.append((self.pass_index, step, self.branch, layer, backend, kept, ctx.predicted))
        return out

    def _index(self, q: torch.Tensor, k: torch.Tensor, ctx: CallContext) -> tuple[Any, float | None]:
        import fgattn
        import torch

        s = self.schedule
        b = int(q.shape[0])
        key = (ctx.layer, ctx.branch if s.cfg == "separate" else "*")
        hit = self.cache.get(key)
        due = s.recompute is None or ctx.step in s.recompute
        if hit is not None and not (due and hit[0] != ctx.step) and hit[1].batch == b:
            return hit[1], None
        ctx.predicted = True
        qh, kh = q.transpose(1, 2), k.transpose(1, 2)
        if s.cfg == "shared" and b > 1:
            qh, kh = qh[-1:], kh[-1:]
        km = ctx.key_mask if ctx.key_mask is None or s.cfg == "separate" or b == 1 else ctx.key_mask[-1:]
        if self.mask_fn is not None:
            got = self.mask_fn(qh, kh, ctx)
        else:
            got = self.predictor(qh, kh, km, ctx.scale)
        if isinstance(got, torch.Tensor):
            mask = got
            if mask.shape[0] != b:
                mask = mask.expand(b, *mask.shape[1:])
            kept = float(mask.float().mean())
            if ctx.backend == "fg":
                index = fgattn.build_index(mask, block_m=s.block_m, gran_n=s.gran_n)
            else:
                index = fgattn.block_index_from_mask(mask, block_m=s.block_m, n_keys=int(k.shape[1]))
        else:
            index, kept = got, None
        self.cache[key] = (ctx.step, index)
        return index, kept

    # -- the plain-callable contract ---------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Calls per backend, predictions, mean kept fraction of the predicted masks."""
        kept = [x[5] for x in self.log if x[5] is not None]
        per: dict[str, int] = {}
        for x in self.log:
            per[x[4]] = per.get(x[4], 0) + 1
        return {"calls": len(self.log), "per_backend": per, "predictions": sum(1 for x in self.log if x[6]),
                "kept_fraction_mean": sum(kept) / len(kept) if kept else None}


def _scalar(t: Any) -> float | None:
    if t is None:
        return None
    try:
        import torch

        if isinstance(t, torch.Tensor):
            return float(t.detach().flatten()[0].float().cpu()) if t.numel() else None
    except ImportError:  # pragma: no cover
        pass
    return float(t)


# --------------------------------------------------------------------------------------------------------------------
# processors


def _wan_rope(x: torch.Tensor, freqs_cos: torch.Tensor, freqs_sin: torch.Tensor) -> torch.Tensor:
    """diffusers 0.42.1 ``WanAttnProcessor``'s rotary embedding (interleaved real pairs)."""
    import torch

    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


def _attend_eager(proc: Any, q: Any, k: Any, v: Any) -> Any:
    state: FgAttnState = proc.state
    if state.wants_original(proc.layer):  # reached only under torch.compile (eager calls the original earlier)
        from diffusers.models.attention_dispatch import dispatch_attention_fn

        return dispatch_attention_fn(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False,
                                     backend=proc._attention_backend, parallel_config=proc._parallel_config)
    return state.attend(q, k, v, proc.layer, None, None, proc._parallel_config)


_ATTEND: Callable[..., Any] | None = None


def _attend_fn() -> Callable[..., Any]:
    """The attention core outside torch.compile graphs (a graph break: schedule logic, Triton launches). The
    processor hands itself over, so compiled code reads neither the layer nor the schedule (no recompiles)."""
    global _ATTEND
    if _ATTEND is None:
        import torch

        _ATTEND = torch.compiler.disable(_attend_eager, recursive=True)
    return _ATTEND


class WanFgProcessor:
    """Wan's self-attention processor with the attention core routed to :meth:`FgAttnState.attend`."""

    def __init__(self, original: Any, state: FgAttnState, layer: int) -> None:
        self.original = original
        self.state = state
        self.layer = layer
        self._attention_backend = getattr(original, "_attention_backend", None)
        self._parallel_config = getattr(original, "_parallel_config", None)

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None,
                 rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        import torch

        if encoder_hidden_states is not None or attn.add_k_proj is not None or attention_mask is not None or (
                not torch.compiler.is_compiling() and self.state.wants_original(self.layer)):
            # settings diffusers put on this processor after enabling (set_attention_backend, enable_parallelism)
            self.original._attention_backend = self._attention_backend
            self.original._parallel_config = self._parallel_config
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
        if attn.fused_projections:
            query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        else:
            query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            query = _wan_rope(query, *rotary_emb)
            key = _wan_rope(key, *rotary_emb)
        out = _attend_fn()(self, query, key, value)
        out = out.flatten(2, 3).type_as(query)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def _generic_processor(original: Any, state: FgAttnState, layer: int) -> Any:
    """Wrap any processor: its self-attention SDPA calls are routed to the state (signature preserved, since
    diffusers filters a processor's keyword arguments by its ``__call__`` signature)."""
    from fgsim.capture.hooks import key_padding_mask

    def call(self: Any, attn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.state.wants_original(self.layer):
            return self.original(attn, *args, **kwargs)
        with _sdpa_router(self.state, self.layer, key_padding_mask):
            return self.original(attn, *args, **kwargs)

    sig = inspect.signature(type(original).__call__)
    call.__signature__ = sig  # type: ignore[attr-defined]
    cls = type(f"Fg{type(original).__name__}", (), {"__call__": call})
    proc = cls()
    proc.original, proc.state, proc.layer = original, state, layer
    return proc


def _sdpa_router(state: FgAttnState, layer: int, key_padding_mask: Callable[..., Any]) -> Any:
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    from fgsim.capture.hooks import bind_sdpa_args

    class _Route(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                bound = bind_sdpa_args(args, kwargs)
                q, k, v = bound["query"], bound["key"], bound["value"]
                if q.dim() == 4 and q.shape[-2] == k.shape[-2] and not bound.get("is_causal", False) \
                        and q.shape[1] == k.shape[1]:
                    km = key_padding_mask(bound.get("attn_mask"), int(q.shape[0]), int(q.shape[2]),
                                          int(k.shape[2]))
                    out = state.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layer, km,
                                       bound.get("scale"))
                    return out.transpose(1, 2)
            return func(*args, **kwargs)

    return _Route()


# --------------------------------------------------------------------------------------------------------------------
# enable / disable


def _self_attention_modules(transformer: Any, pattern: str | None) -> list[tuple[str, Any]]:
    from fgsim.capture.hooks import spec_for

    spec = spec_for(transformer)
    rx = re.compile(pattern or spec.self_pattern)
    mods = [(n, m) for n, m in transformer.named_modules() if n and rx.search(n) and hasattr(m, "set_processor")]
    if not mods:
        raise FgsimError(f"no self-attention modules matching {rx.pattern!r} in {type(transformer).__name__}")
    return mods


def enable_fgattn(pipe_or_transformer: Any, schedule: FgSchedule | None = None, *, mask_fn: MaskFn | None = None,
                  kernel_fn: KernelFn | None = None, pattern: str | None = None, generic: bool = False,
                  **schedule_kw: Any) -> FgAttnState:
    """Switch a diffusers pipeline's (or transformer's) self-attention to ``schedule`` (or ``FgSchedule(**kw)``).

    Returns the :class:`FgAttnState` (per-call log, ``summary()``, ``reset()``); :func:`disable_fgattn` restores
    the original processors. ``pattern``: regex of the self-attention module names (default: the known model's,
    e.g. ``blocks.N.attn1`` for Wan). ``generic``: use the SDPA-routing wrapper even for Wan. ``mask_fn``
    replaces the predictor (e.g. masks from a trace); ``kernel_fn`` replaces :func:`run_kernel`. Cross-attention
    is never touched.
    """
    if schedule is None:
        schedule = FgSchedule(**schedule_kw)
    elif schedule_kw:
        raise FgsimError("give either a schedule or schedule keywords, not both")
    tr = getattr(pipe_or_transformer, "transformer", None) or pipe_or_transformer
    if not hasattr(tr, "named_modules"):
        raise FgsimError(f"{type(pipe_or_transformer).__name__} is neither a diffusers pipeline nor a transformer")
    if getattr(tr, "_fgattn_state", None) is not None:
        disable_fgattn(tr)
    state = FgAttnState(schedule, mask_fn=mask_fn, kernel_fn=kernel_fn)
    mods = _self_attention_modules(tr, pattern)
    is_wan = type(tr).__name__ == "WanTransformer3DModel"
    for layer, (name, mod) in enumerate(mods):
        orig = mod.processor
        state.saved[name] = orig
        if is_wan and not generic and type(orig).__name__ == "WanAttnProcessor":
            mod.set_processor(WanFgProcessor(orig, state, layer))
        else:
            mod.set_processor(_generic_processor(orig, state, layer))
    sig = inspect.signature(tr.forward)

    def pre(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            bound = sig.bind_partial(*args, **kwargs).arguments
        except TypeError:
            bound = kwargs
        hs = bound.get("hidden_states")
        state.begin_pass(bound.get("timestep"), int(hs.shape[0]) if hs is not None else 1)

    state.handles.append(tr.register_forward_pre_hook(pre, with_kwargs=True))
    state.transformer = tr
    tr._fgattn_state = state
    return state


def disable_fgattn(pipe_or_transformer: Any) -> None:
    """Restore the processors :func:`enable_fgattn` replaced (no-op when not enabled)."""
    tr = getattr(pipe_or_transformer, "transformer", None) or pipe_or_transformer
    state: FgAttnState | None = getattr(tr, "_fgattn_state", None)
    if state is None:
        return
    mods = dict(tr.named_modules())
    for name, proc in state.saved.items():
        mods[name].set_processor(proc)
    for h in state.handles:
        h.remove()
    state.handles.clear()
    tr._fgattn_state = None


# --------------------------------------------------------------------------------------------------------------------
# a plain callable (vLLM-Omni's sparse-attention plugin contract)


@dataclass
class _PlainParams:
    layer: int = 0
    step: int = 0
    branch: str = "cond"
    key_mask: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def sparse_attention_fn(schedule: FgSchedule | None = None, *, mask_fn: MaskFn | None = None,
                        **schedule_kw: Any) -> Callable[..., Any]:
    """A plain attention callable ``fn(q, k, v, params, is_causal, softmax_scale) -> out``.

    The contract of vLLM-Omni's diffusion sparse-attention plugin: ``q, k, v`` are ``(B, S, H, D)``;
    ``params`` is a mapping or object with optional ``layer``, ``step``, ``branch`` and ``key_mask`` (bool
    (B, S_k)); ``is_causal`` must be False (video DiT self-attention). The schedule (warm-up, recompute steps,
    index cache) is kept inside the callable; ``fn.state`` is its :class:`FgAttnState`.
    """
    if schedule is None:
        schedule = FgSchedule(**(schedule_kw | {"dense_backend": schedule_kw.get("dense_backend", "sdpa")}))
    if schedule.dense_backend == "original" or schedule.backend == "original":
        raise FgsimError("a plain callable has no original processor: use dense_backend='sdpa' or 'cudnn'")
    state = FgAttnState(schedule, mask_fn=mask_fn)

    def fn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, params: Any = None, is_causal: bool = False,
           softmax_scale: float | None = None) -> torch.Tensor:
        if is_causal:
            raise FgsimError("FG-Attn is for non-causal (bidirectional) attention; is_causal=True given")
        if any(getattr(t, "dim", lambda: 0)() != 4 for t in (q, k, v)):
            raise FgsimError(f"q, k, v must be 4-D (B, S, H, D) tensors; got shapes "
                             f"{[tuple(getattr(t, 'shape', ())) for t in (q, k, v)]}")
        if softmax_scale is not None and not (isinstance(softmax_scale, (int, float))
                                              and math.isfinite(softmax_scale) and softmax_scale > 0):
            raise FgsimError(f"softmax_scale must be a positive number or None, got {softmax_scale!r}")

        def get(name: str, default: Any) -> Any:
            if params is None:
                return default
            if isinstance(params, dict):
                return params.get(name, default)
            return getattr(params, name, default)

        try:
            step, layer = int(get("step", max(state.step, 0))), int(get("layer", 0))
        except (TypeError, ValueError):
            raise FgsimError(f"params: 'step' and 'layer' must be integers, got {get('step', None)!r} and "
                             f"{get('layer', None)!r}") from None
        state.step = step
        state.branch = str(get("branch", "cond"))
        return state.attend(q, k, v, layer, get("key_mask", None), softmax_scale)

    fn.state = state  # type: ignore[attr-defined]
    return fn


def quality(reference: torch.Tensor, output: torch.Tensor) -> dict[str, float]:
    """Output quality against a dense run: PSNR (dB, data range of the reference; inf when identical) and global
    SSIM (one window over the whole tensor, constants of Wang et al. 2004 at that range), both in float64."""
    import torch

    r, o = reference.detach().double().flatten(), output.detach().double().flatten()
    if r.shape != o.shape:
        raise FgsimError(f"quality: shapes differ ({tuple(reference.shape)} vs {tuple(output.shape)})")
    rng = float(r.max() - r.min()) or 1.0
    mse = float(torch.mean((r - o) ** 2))
    psnr = float("inf") if mse == 0 else 10.0 * math.log10(rng * rng / mse)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    mr, mo = float(r.mean()), float(o.mean())
    vr, vo = float(r.var(unbiased=False)), float(o.var(unbiased=False))
    cov = float(((r - mr) * (o - mo)).mean())
    ssim = (2 * mr * mo + c1) * (2 * cov + c2) / ((mr * mr + mo * mo + c1) * (vr + vo + c2))
    return {"psnr_db": psnr, "ssim": ssim}


def density_mask_fn(density: float, seed: int = 0, block_m: int = 64) -> MaskFn:
    """A mask source for timing harnesses: a fixed random slice mask keeping ``density`` of the keys of every
    query block (same for every call; built once per shape on the query's device)."""
    cache: dict[tuple[int, ...], Any] = {}

    def fn(q: torch.Tensor, k: torch.Tensor, ctx: CallContext) -> Any:
        import torch

        b, h, s_q, _ = q.shape
        s_k = k.shape[2]
        qb = math.ceil(s_q / block_m)
        key = (b, h, qb, s_k)
        if key not in cache:
            g = torch.Generator(device="cpu").manual_seed(seed)
            cache[key] = (torch.rand((b, h, qb, s_k), generator=g) < density).to(q.device)
        return cache[key]

    return fn


def layers_of(transformer: Any, pattern: str | None = None) -> Sequence[str]:
    """Names of the self-attention modules :func:`enable_fgattn` would switch, in layer order."""
    return [n for n, _ in _self_attention_modules(transformer, pattern)]
