"""Hooks on a diffusers transformer that hand each attention call's post-RoPE ``q, k, v`` to a callback.

Each call is tagged with (transformer pass, denoising step, CFG branch, layer). Mechanisms, all removed on exit:

- **Pass / step / branch**: a stateful diffusers ``ModelHook`` on the transformer (``HookRegistry``). Pipelines wrap
  every transformer call in ``transformer.cache_context("cond" | "uncond" | "cond_uncond")`` (diffusers >= 0.41 also
  takes ``step_index=…``), which diffusers forwards to stateful hooks; the step comes from ``step_index`` when given
  (or from :func:`~fgsim.capture.run.capture_transformer`'s ``"_step"``), else from a change of the ``timestep``
  argument between passes.
- **Layer**: torch forward pre-/post-hooks (``always_call=True``) on the selected attention modules set the current
  layer while that module runs.
- **q, k, v** of models that route attention through diffusers' ``dispatch_attention_fn`` (Wan2.1/2.2, LTX-Video,
  HunyuanVideo; tensors ``(B, S, H, D)`` after RoPE): every function in diffusers' attention-backend registry
  (``_AttentionBackendRegistry._backends``) is wrapped while capturing, so whatever backend the processor resolves
  (``native``, ``flash``, ``_native_cudnn``, …) still runs unchanged after the tensors are recorded.
- **q, k, v** of models that call ``F.scaled_dot_product_attention`` directly (CogVideoX, Mochi, and the generic
  hook for any module): a ``TorchFunctionMode`` is entered only while a selected attention module runs and records
  the call's ``(B, H, S, D)`` arguments before calling SDPA itself with the same arguments.

Nothing is modified in place and the real attention call receives exactly its original arguments, so outputs are
bitwise identical with and without capture.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fgsim.errors import FgsimError

if TYPE_CHECKING:
    import torch

#: Oldest diffusers the capture hooks run with. ``diffusers.models.attention_dispatch`` (the attention-backend
#: registry), ``AttentionModuleMixin`` and the stateful hooks' ``StateManager`` / ``BaseState`` first shipped in
#: 0.35.0 (0.34.0 has none of them), but 0.35's HunyuanVideo still calls SDPA itself (none of its calls would be
#: captured) and ``enable_parallelism`` (context-parallel capture) came in 0.36.0. ``cache_context(name,
#: step_index=...)`` came in 0.41.0; older versions get the step through fgsim (``capture_transformer``).
#: Checked against the released wheels 0.34.0 to 0.42.1 (tests/test_capture_hooks.py passes on 0.36.0 and 0.37.0
#: apart from its own direct ``step_index`` call).
MIN_DIFFUSERS = (0, 36)


def diffusers_version() -> tuple[int, int] | None:
    """(major, minor) of the installed diffusers, or None when it is not installed (read from its metadata, without
    importing it)."""
    import re as _re
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("diffusers")
    except PackageNotFoundError:
        return None
    m = _re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def require_diffusers(what: str = "capture") -> None:
    """FgsimError in one line when diffusers is missing or older than :data:`MIN_DIFFUSERS`."""
    from importlib.metadata import version

    have = diffusers_version()
    need = ".".join(map(str, MIN_DIFFUSERS))
    if have is None:
        raise FgsimError(f"{what} needs diffusers >= {need}, which is not installed: pip install 'fgsim[capture]'")
    if have < MIN_DIFFUSERS:
        raise FgsimError(f"{what} needs diffusers >= {need} (its attention dispatcher for every model and stateful "
                         f"hooks), but "
                         f"{version('diffusers')} is installed: pip install -U 'diffusers>={need}'")


# --------------------------------------------------------------------------------------------------------------------
# Schedule


@dataclass(frozen=True)
class Schedule:
    """Which transformer passes (0-based invocation counter, CFG branches counted separately) to capture.

    ``Schedule.parse("all")``, ``"every:5"`` (passes 0, 5, 10, …) or an explicit list ``"0,15,30,45,60,80"``
    (the paper's recompute points).
    """

    every: int = 1
    indices: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse ``all`` | ``every:K`` | comma-separated pass indices; raises :class:`FgsimError`."""
        t = text.strip().lower()
        if t in ("all", ""):
            return cls()
        if t.startswith("every:"):
            try:
                k = int(t.split(":", 1)[1])
            except ValueError:
                raise FgsimError(f"bad schedule {text!r}: 'every:K' needs an integer K ≥ 1") from None
            if k < 1:
                raise FgsimError(f"bad schedule {text!r}: 'every:K' needs an integer K ≥ 1")
            return cls(every=k)
        try:
            idx = tuple(sorted({int(x) for x in t.split(",") if x.strip()}))
        except ValueError:
            raise FgsimError(f"bad schedule {text!r}: use 'all', 'every:K' or a list like '0,15,30'") from None
        if not idx or min(idx) < 0:
            raise FgsimError(f"bad schedule {text!r}: pass indices must be integers ≥ 0")
        return cls(indices=idx)

    def __contains__(self, pass_index: object) -> bool:
        if not isinstance(pass_index, int):
            return False
        if self.indices is not None:
            return pass_index in self.indices
        return pass_index % self.every == 0

    def describe(self) -> str:
        """The schedule in the syntax :meth:`parse` reads."""
        if self.indices is not None:
            return ",".join(str(i) for i in self.indices)
        return "all" if self.every == 1 else f"every:{self.every}"


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    """``None``/``"all"`` → all layers; else ``"0,5,10-12"`` → sorted unique indices. Raises :class:`FgsimError`."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                out.update(range(int(a), int(b) + 1))
            else:
                out.add(int(part))
    except ValueError:
        raise FgsimError(f"bad --layers {text!r}: use 'all' or a list like '0,5,10-12'") from None
    if not out or min(out) < 0:
        raise FgsimError(f"bad --layers {text!r}: layer indices must be integers ≥ 0")
    return tuple(sorted(out))


# --------------------------------------------------------------------------------------------------------------------
# Model specs


@dataclass(frozen=True)
class ModelSpec:
    """How to find and tag self/cross attention in one transformer class."""

    name: str
    kind: str  # "dispatch" (dispatch_attention_fn, BSHD) or "sdpa" (F.scaled_dot_product_attention, BHSD)
    self_pattern: str  # regex on the module's qualified name; the first group ordering = layer order
    cross_pattern: str | None
    text_position: str  # "none" | "before" | "after" in the self-attention sequence
    frames_first: bool = False  # hidden_states is (B, F, C, H, W) instead of (B, C, F, H, W)


MODEL_SPECS: dict[str, ModelSpec] = {
    "WanTransformer3DModel": ModelSpec("wan", "dispatch", r"^blocks\.\d+\.attn1$", r"^blocks\.\d+\.attn2$", "none"),
    "LTXVideoTransformer3DModel": ModelSpec("ltx-video", "dispatch", r"^transformer_blocks\.\d+\.attn1$",
                                            r"^transformer_blocks\.\d+\.attn2$", "none"),
    "HunyuanVideoTransformer3DModel": ModelSpec(
        "hunyuan-video", "dispatch", r"^(single_)?transformer_blocks\.\d+\.attn$", None, "after"),
    "CogVideoXTransformer3DModel": ModelSpec("cogvideox", "sdpa", r"^transformer_blocks\.\d+\.attn1$", None,
                                             "before", frames_first=True),
    "MochiTransformer3DModel": ModelSpec("mochi", "sdpa", r"^transformer_blocks\.\d+\.attn1$", None, "after"),
}


def generic_spec(pattern: str = r"(^|\.)attn1?$") -> ModelSpec:
    """The generic hook: any module whose name matches ``pattern`` and calls ``F.scaled_dot_product_attention``.

    Self- vs cross-attention is decided per call (``S_q == S_k`` is self-attention).
    """
    return ModelSpec("generic", "sdpa", pattern, pattern, "none")


def spec_for(transformer: Any) -> ModelSpec:
    """The spec of a known diffusers transformer class, else the generic one."""
    return MODEL_SPECS.get(type(transformer).__name__, generic_spec())


def token_grid(spec: ModelSpec, transformer: Any, args: Sequence[Any],
               kwargs: dict[str, Any]) -> tuple[tuple[int, int, int], int] | None:
    """``((T, H, W), text_tokens)`` of a transformer call from its inputs and config, or None if unknown.

    T, H, W are latent tokens after patchify (a temporal patch rounds T up, as CogVideoX 1.5 pads).
    """
    cfg = getattr(transformer, "config", {})
    get = cfg.get if hasattr(cfg, "get") else (lambda key, default=None: getattr(cfg, key, default))
    hs = kwargs.get("hidden_states", args[0] if args else None)
    if hs is None or not hasattr(hs, "shape"):
        return None
    ehs = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
    text = int(ehs.shape[1]) if spec.text_position != "none" and ehs is not None else 0
    if spec.name == "ltx-video":
        try:
            t, h, w = int(kwargs["num_frames"]), int(kwargs["height"]), int(kwargs["width"])
        except (KeyError, TypeError):
            return None
        ps, pt = int(get("patch_size", 1) or 1), int(get("patch_size_t", 1) or 1)
        return (-(-t // pt), h // ps, w // ps), 0
    if hs.dim() != 5:
        return None
    if spec.frames_first:
        f, h, w = int(hs.shape[1]), int(hs.shape[3]), int(hs.shape[4])
    else:
        f, h, w = int(hs.shape[2]), int(hs.shape[3]), int(hs.shape[4])
    patch = get("patch_size", 1)
    if isinstance(patch, list | tuple):
        pt, ph, pw = (int(x) for x in patch)
    else:
        ph = pw = int(patch or 1)
        pt = int(get("patch_size_t", 1) or 1)
    return (-(-f // pt), h // ph, w // pw), text


# --------------------------------------------------------------------------------------------------------------------
# Records


@dataclass
class AttentionCall:
    """One captured self/cross-attention call of one batch sample, tensors ``(1, H, S, D)``."""

    pass_index: int
    step: int
    branch: str
    layer: int
    module_name: str
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    key_mask: torch.Tensor | None  # bool (1, S_k) or None
    scale: float | None


@dataclass
class PassRecord:
    """One transformer invocation seen by the hooks."""

    index: int
    step: int
    branch: str
    captured: bool
    samples: int = 0
    timestep: float | None = None


@dataclass
class _Pending:
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    mask: Any
    scale: float | None


def key_padding_mask(mask: Any, batch: int, s_q: int, s_k: int) -> torch.Tensor | None:
    """Reduce an attention mask to a bool key-padding mask ``(B, S_k)`` (True = attend), or None if it masks nothing.

    Accepts bool or additive (0 / −inf) masks shaped ``(B, S_k)``, ``(B|1, 1|H, 1, S_k)`` or ``(B|1, 1|H, S_q, S_k)``
    whose rows are all equal; anything else raises :class:`FgsimError` (not a key-padding mask).
    """
    import torch

    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise FgsimError(f"unsupported attention mask of type {type(mask).__name__} (only key-padding masks)")
    m = mask
    if m.dtype != torch.bool:
        finite = torch.isfinite(m)
        if bool((m[finite] != 0).any()):
            raise FgsimError("unsupported additive attention mask with finite non-zero biases")
        m = finite
    if m.dim() == 2:
        m = m[:, None, None, :]
    if m.dim() != 4 or m.shape[-1] != s_k:
        raise FgsimError(f"unsupported attention mask shape {tuple(mask.shape)} for S_k={s_k}")
    if not bool((m == m[:, :1, :1, :]).all()):
        raise FgsimError("unsupported attention mask: it differs between query rows or heads (not key padding)")
    km = m[:, 0, 0, :].expand(batch, s_k)
    return None if bool(km.all()) else km.contiguous()


# --------------------------------------------------------------------------------------------------------------------
# The capture context


class AttentionCapture:
    """Context manager hooking a diffusers transformer; calls ``on_call(AttentionCall)`` for each captured call.

    ``cross``: capture cross-attention instead of self-attention. ``schedule``: passes to capture. ``layers``: layer
    indices among the selected attention modules (None = all). ``batch_element``: which sample of a batched pass to
    capture (−1 = last; diffusers' batched CFG puts the conditional sample last). ``spec``: override the model spec
    (e.g. :func:`generic_spec` with a module-name pattern).
    """

    def __init__(self, transformer: Any, on_call: Callable[[AttentionCall], None], *, cross: bool = False,
                 schedule: Schedule | None = None, layers: Sequence[int] | None = None, batch_element: int = -1,
                 spec: ModelSpec | None = None) -> None:
        self.transformer = transformer
        self.on_call = on_call
        self.cross = cross
        self.schedule = schedule or Schedule()
        self.spec = spec or spec_for(transformer)
        self.batch_element = batch_element
        pattern = self.spec.cross_pattern if cross else self.spec.self_pattern
        if pattern is None:
            raise FgsimError(f"{self.spec.name} has no cross-attention (text is part of its self-attention)")
        rx = re.compile(pattern)
        self.modules: list[tuple[str, Any]] = [(n, m) for n, m in transformer.named_modules() if n and rx.search(n)]
        if not self.modules:
            raise FgsimError(f"no attention modules matching {pattern!r} in {type(transformer).__name__}")
        self.num_layers = len(self.modules)
        if layers is not None:
            bad = [x for x in layers if x >= self.num_layers]
            if bad:
                raise FgsimError(f"layers {bad} out of range: {type(transformer).__name__} has "
                                 f"{self.num_layers} {'cross' if cross else 'self'}-attention layers")
        self.layers: tuple[int, ...] = tuple(layers) if layers is not None else tuple(range(self.num_layers))
        self.passes: list[PassRecord] = []
        self.grid: tuple[tuple[int, int, int], int] | None = None
        self.skipped_calls = 0
        self._step = -1
        self._last_t: Any = None
        #: the step of the next pass when the caller knows it and diffusers' cache context cannot carry it (< 0.41)
        self.next_step: int | None = None
        self._calls_in_step = 0
        self._current: PassRecord | None = None
        self._layer: tuple[int, str] | None = None
        self._pending: list[_Pending] = []
        self._handles: list[Any] = []
        self._saved_backends: dict[Any, Any] | None = None
        self._mode: Any = None
        self._hook_name = f"fgsim_capture_{id(self)}"
        self._active = False

    # -- install / remove ------------------------------------------------------------------------------
    def __enter__(self) -> AttentionCapture:
        if self._active:
            raise RuntimeError("AttentionCapture is not re-entrant")
        try:
            self._install()
        except BaseException:
            self._remove()
            raise
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()
        self._active = False

    def _install(self) -> None:
        require_diffusers("AttentionCapture")
        from diffusers.hooks import HookRegistry

        registry = HookRegistry.check_if_exists_or_initialize(self.transformer)
        registry.register_hook(_make_pass_hook(self), self._hook_name)
        selected = set(self.layers)
        for layer, (name, module) in enumerate(self.modules):
            if layer not in selected:
                continue
            self._handles.append(module.register_forward_pre_hook(self._pre(layer, name)))
            self._handles.append(module.register_forward_hook(self._post, always_call=True))
        if self.spec.kind == "dispatch":
            from diffusers.models.attention_dispatch import _AttentionBackendRegistry as reg

            self._saved_backends = dict(reg._backends)
            for key, fn in list(reg._backends.items()):
                reg._backends[key] = self._wrap_backend(fn)

    def _remove(self) -> None:
        if self._saved_backends is not None:
            from diffusers.models.attention_dispatch import _AttentionBackendRegistry as reg

            reg._backends.clear()
            reg._backends.update(self._saved_backends)
            self._saved_backends = None
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None
        try:
            from diffusers.hooks import HookRegistry

            registry = HookRegistry.check_if_exists_or_initialize(self.transformer)
            if registry.get_hook(self._hook_name) is not None:
                registry.remove_hook(self._hook_name, recurse=False)
        except ImportError:  # pragma: no cover
            pass
        self._layer = None
        self._pending.clear()

    # -- pass tagging (called by the transformer hook) -------------------------------------------------
    def _begin_pass(self, context: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        import torch

        t = kwargs.get("timestep", args[2] if len(args) > 2 else None)
        t_key = t.detach().to("cpu", torch.float64).flatten() if isinstance(t, torch.Tensor) else t
        step_index = getattr(context, "step_index", None) if context is not None else None
        if step_index is None:
            step_index = self.next_step
        if step_index is not None:
            new_step = int(step_index) != self._step
            if new_step:
                self._step = int(step_index)
        else:
            same = self._last_t is not None and (
                torch.equal(t_key, self._last_t) if isinstance(t_key, torch.Tensor) and isinstance(
                    self._last_t, torch.Tensor) and t_key.shape == self._last_t.shape else t_key == self._last_t)
            new_step = not same
            if new_step:
                self._step += 1
        self._calls_in_step = 0 if new_step else self._calls_in_step + 1
        self._last_t = t_key
        name = context if isinstance(context, str) else getattr(context, "name", None)
        branch = name if name in ("cond", "uncond", "cond_uncond") else \
            ("cond", "uncond")[self._calls_in_step] if self._calls_in_step < 2 else f"call{self._calls_in_step}"
        index = len(self.passes)
        tval = float(t_key.flatten()[0]) if isinstance(t_key, torch.Tensor) and t_key.numel() else None
        rec = PassRecord(index=index, step=self._step, branch=branch, captured=index in self.schedule, timestep=tval)
        self.passes.append(rec)
        self._current = rec
        if self.grid is None:
            self.grid = token_grid(self.spec, self.transformer, args, kwargs)

    def _end_pass(self) -> None:
        self._current = None

    # -- attention-module hooks ------------------------------------------------------------------------
    def _pre(self, layer: int, name: str) -> Callable[..., None]:
        def hook(module: Any, args: Any) -> None:
            cur = self._current
            if cur is None or not cur.captured:
                return
            self._layer = (layer, name)
            self._pending = []
            if self.spec.kind == "sdpa":
                self._mode = _make_sdpa_mode(self)
                self._mode.__enter__()

        return hook

    def _post(self, module: Any, args: Any, output: Any) -> None:
        if self._layer is None:
            return
        layer, name = self._layer
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None
        self._layer = None
        pending, self._pending = self._pending, []
        cur = self._current
        if cur is None or not pending:
            return
        total = sum(int(p.q.shape[0]) for p in pending)
        cur.samples = total
        want = self.batch_element % total if total else 0
        if total > 1:
            if cur.branch == "cond_uncond" and total == 2:
                branch = ("uncond", "cond")[want]
            else:
                branch = f"{cur.branch}[{want}]"
        else:
            branch = "cond" if cur.branch == "cond_uncond" else cur.branch
        offset = 0
        for p in pending:
            bsz = int(p.q.shape[0])
            if offset <= want < offset + bsz:
                i = want - offset
                km = key_padding_mask(p.mask, bsz, int(p.q.shape[2]), int(p.k.shape[2]))
                self.on_call(AttentionCall(
                    pass_index=cur.index, step=cur.step, branch=branch, layer=layer, module_name=name,
                    q=p.q[i:i + 1], k=p.k[i:i + 1], v=p.v[i:i + 1],
                    key_mask=None if km is None else km[i:i + 1], scale=p.scale))
                break
            offset += bsz

    def _record(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any, scale: float | None) -> None:
        """Called with BHSD tensors from inside a selected module."""
        if self._layer is None:
            return
        is_self = int(q.shape[2]) == int(k.shape[2])
        if self.spec.name == "generic" and is_self == self.cross:
            return
        self._pending.append(_Pending(q.detach(), k.detach(), v.detach(), mask, scale))

    def _wrap_backend(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        capture = self

        def wrapped(**kwargs: Any) -> Any:
            if capture._layer is not None:
                q, k, v = kwargs["query"], kwargs["key"], kwargs["value"]
                pc = kwargs.get("_parallel_config")
                if pc is not None:
                    q, k, v = (_gather_seq(x, pc) for x in (q, k, v))
                capture._record(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                kwargs.get("attn_mask"), kwargs.get("scale"))
            return fn(**kwargs)

        wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapped


def _gather_seq(x: torch.Tensor, parallel_config: Any) -> torch.Tensor:
    """All-gather a context-parallel shard ``(B, S/P, H, D)`` along the sequence (rank order) → ``(B, S, H, D)``."""
    cp = getattr(parallel_config, "context_parallel_config", None)
    if cp is None or not getattr(cp, "_world_size", 1) or cp._world_size == 1:
        return x
    import torch
    import torch.distributed as dist

    group = cp._flattened_mesh.get_group()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat(parts, dim=1)


_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")


def bind_sdpa_args(args: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``F.scaled_dot_product_attention``'s positional and keyword arguments as one dict by parameter name."""
    bound = dict(zip(_SDPA_ARGS, args, strict=False))
    bound.update(kwargs)
    return bound


def _make_sdpa_mode(capture: AttentionCapture) -> Any:
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    class _SdpaCapture(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                bound = bind_sdpa_args(args, kwargs)
                capture._record(bound["query"], bound["key"], bound["value"], bound.get("attn_mask"),
                                bound.get("scale"))
            return func(*args, **kwargs)

    return _SdpaCapture()


def _make_pass_hook(capture: AttentionCapture) -> Any:
    from diffusers.hooks.hooks import BaseState, ModelHook, StateManager

    class _NoState(BaseState):
        def reset(self, *args: Any, **kwargs: Any) -> None:
            return None

    class _PassHook(ModelHook):
        _is_stateful = True

        def __init__(self) -> None:
            super().__init__()
            self.state_manager = StateManager(_NoState)

        def pre_forward(self, module: Any, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
            sm = self.state_manager  # diffusers >= 0.41: a CacheContext in _context; 0.35-0.40: the name in _current_context
            capture._begin_pass(getattr(sm, "_context", None) or getattr(sm, "_current_context", None), args, kwargs)
            return args, kwargs

        def post_forward(self, module: Any, output: Any) -> Any:
            capture._end_pass()
            return output

        def reset_state(self, module: Any) -> Any:
            return module

    return _PassHook()
