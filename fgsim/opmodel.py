"""Non-attention operator model: every aten operator of one transformer pass, priced from its shape.

**The operator list** comes from running the real diffusers transformer (built from the model file's published
config) on the ``meta`` device under a ``TorchDispatchMode``: no memory, no GPU, a few seconds on a CPU, and
exactly the operators diffusers issues (including Wan's fp32 norms/modulation and strided RoPE writes). Each
operator gets a category from the module it runs in: ``gemm`` (inside ``nn.Linear``), ``attention`` /
``cross_attention`` (the SDPA core of self- / cross-attention, priced by the attention models, not here),
``norm`` (inside a norm module), ``rope`` (the rest of the self-attention processor), ``modulation`` (a
block's own code: AdaLN scale/shift/gate, residuals), ``elementwise`` (FFN activation, cross-attention
reshapes) and ``other`` (embeddings, patchify, head).

**Prices** (:class:`OpCalibration`, measured by ``fgsim calibrate --ops`` on the GPU, a JSON file with
provenance): a GEMM's time is looked up by its exact shape (microbenchmarked at the models' real shapes, the
faster of back-to-back replays and one call after idleness),
else ``2·M·N·K`` FLOP at the measured efficiency of the nearest calibrated size; a memory-bound operator moves
its input and output bytes at the measured bandwidth of its class (``copy``, ``pointwise``, ``reduction``,
``strided``); views launch nothing.

**Eager** (:func:`pass_time`): operators run in order; the host issues one every ``host_s`` (measured per aten
operator, views ``host_view_s``), the GPU runs each after the previous one plus ``gap_s`` and after its issue:
a queue simulation, so host-bound stretches of tiny operators cost what the host costs.
**torch.compile** (``compiled=True``): the memory-bound operators between two GEMM/attention anchors fuse into
one kernel that reads the buffers made outside the group and writes the ones used after it (inductor's
pointwise/reduction fusion, idealised); host cost per kernel ``host_compiled_s``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fgsim.errors import FgsimError

CATEGORIES: tuple[str, ...] = ("gemm", "attention", "cross_attention", "norm", "rope", "modulation", "elementwise",
                               "other", "sampler")
MEM_CLASSES: tuple[str, ...] = ("copy", "pointwise", "reduction", "strided")
#: aten operators that launch no kernel (views, allocations, metadata).
VIEW_OPS = frozenset({
    "view", "_unsafe_view", "t", "transpose", "permute", "expand", "slice", "select", "unbind", "split",
    "split_with_sizes", "unsqueeze", "squeeze", "alias", "detach", "as_strided", "empty_like", "empty", "empty_strided",
    "_reshape_alias", "unflatten", "lift_fresh", "new_empty", "new_empty_strided", "view_as_real", "view_as_complex",
    "_to_copy_noop", "chunk", "narrow", "flatten", "reshape", "contiguous_noop", "zeros_like_noop",
})
GEMM_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "linear", "convolution"})
COPY_OPS = frozenset({"_to_copy", "copy_", "clone", "copy", "cat", "stack", "contiguous", "fill_", "zero_",
                      "index_put_"})
REDUCTION_OPS = frozenset({"mean", "sum", "native_layer_norm", "_fused_rms_norm", "var_mean", "amax", "max",
                           "_softmax", "_safe_softmax", "native_group_norm"})
CALIBRATION_DIR = Path(__file__).parent / "data" / "ops"
#: Per diffusers transformer class: (self-attention module regex, cross-attention module regex or None,
#: transformer-block regex). Text tokens of joint-attention models (HunyuanVideo, CogVideoX) are part of the
#: self-attention sequence.
MODEL_PATTERNS: dict[str, tuple[str, str | None, str]] = {
    "WanTransformer3DModel": (r"^blocks\.\d+\.attn1$", r"^blocks\.\d+\.attn2$", r"^blocks\.\d+$"),
    "HunyuanVideoTransformer3DModel": (r"^(single_)?transformer_blocks\.\d+\.attn$", None,
                                       r"^(single_)?transformer_blocks\.\d+$"),
    "CogVideoXTransformer3DModel": (r"^transformer_blocks\.\d+\.attn1$", None, r"^transformer_blocks\.\d+$"),
}


# --------------------------------------------------------------------------------------------------------------------
# operator records


@dataclass
class Op:
    """One aten operator of a pass. ``bytes`` = input + output bytes (broadcast inputs counted once)."""

    name: str
    cat: str
    kind: str  # "view" | "gemm" | "mem" | "attention" | "sync" (the host waits for the GPU)
    bytes: float = 0.0
    flops: float = 0.0
    gemm: tuple[int, int, int, int, str, bool] | None = None  # (batch, M, N, K, dtype, bias)
    sdpa: tuple[int, int, int, int, int] | None = None  # (B, H, S_q, S_k, D)
    mem_class: str = ""
    strided: bool = False
    reads: tuple[tuple[int, float], ...] = ()  # (buffer id, bytes)
    writes: tuple[tuple[int, float], ...] = ()
    sig: str = ""  # replay signature (op + tensor specs)
    in_block: bool = False  # inside a repeated transformer block (what compile_repeated_blocks compiles)
    spec: Any = None  # replayable (func name, args with tensor specs) for calibration


def _short(func: Any) -> str:
    name = str(func).split(".")
    return name[1] if len(name) > 1 and name[0] == "aten" else str(func)


def _nbytes(t: Any) -> float:
    """Bytes a tensor occupies (stride-0 broadcast dimensions counted once)."""
    n = 1
    for s, st in zip(t.shape, t.stride(), strict=False):
        if st != 0:
            n *= int(s)
    return float(n * t.element_size())


def _tensors(obj: Any) -> list[Any]:
    import torch

    out: list[Any] = []
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, list | tuple):
        for x in obj:
            out.extend(_tensors(x))
    elif isinstance(obj, dict):
        for x in obj.values():
            out.extend(_tensors(x))
    return out


def _buf(t: Any) -> int:
    try:
        return int(t.untyped_storage()._cdata)
    except (RuntimeError, AttributeError, NotImplementedError):
        return id(t)


def _spec(obj: Any) -> Any:
    """Replayable description of an argument (tensors → (shape, stride, dtype, offset))."""
    import torch

    if isinstance(obj, torch.Tensor):
        return ("T", tuple(obj.shape), tuple(obj.stride()), str(obj.dtype).replace("torch.", ""),
                int(obj.storage_offset()))
    if isinstance(obj, list | tuple):
        return [_spec(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _spec(v) for k, v in obj.items()}
    if isinstance(obj, torch.dtype):
        return ("D", str(obj).replace("torch.", ""))
    if isinstance(obj, torch.device):
        return ("V",)
    if isinstance(obj, torch.memory_format | torch.layout):
        return ("R", str(obj))
    return obj


# --------------------------------------------------------------------------------------------------------------------
# tracing a pass


class _Recorder:
    """Module-stack categories + dispatch-level op records (meta or real device)."""

    def __init__(self, attn_self: str, attn_cross: str | None, block: str, measure: bool = False,
                 outside: str = "other") -> None:
        import re

        self.rx_self = re.compile(attn_self)
        self.rx_cross = re.compile(attn_cross) if attn_cross else None
        self.rx_block = re.compile(block)
        self.stack: list[tuple[str, Any]] = []
        self.ops: list[Op] = []
        self.in_sdpa: str | None = None
        self.fused = False
        self.measure = measure
        self.events: list[tuple[int, Any, Any]] = []
        self.keep: list[Any] = []
        self.outside = outside

    def in_block(self) -> bool:
        return any(self.rx_block.search(n) for n, _ in self.stack)

    def category(self, name: str) -> str:
        if self.in_sdpa:
            return self.in_sdpa
        mods = self.stack
        if not mods:
            return self.outside
        inner_name, inner = mods[-1]
        cls = type(inner).__name__.lower()
        if cls == "linear":
            return "gemm"
        if "norm" in cls or inner_name.rsplit(".", 1)[-1].startswith("norm"):
            return "norm"
        for n, _ in reversed(mods):
            if self.rx_self.search(n):
                return "rope"
            if self.rx_cross is not None and self.rx_cross.search(n):
                return "elementwise"
            if self.rx_block.search(n):
                return "modulation" if n == inner_name else "elementwise"
        return "other"

    def record(self, func: Any, args: Any, kwargs: Any, out: Any) -> Op:
        name = _short(func)
        cat = self.category(name)
        ins, outs = _tensors((args, kwargs)), _tensors(out)
        reads = tuple((_buf(t), _nbytes(t)) for t in ins)
        writes = tuple((_buf(t), _nbytes(t)) for t in outs)
        op = Op(name=name, cat=cat, kind="mem", reads=reads, writes=writes, in_block=self.in_block())
        if name in VIEW_OPS:
            op.kind = "view"
        elif self.in_sdpa:
            op.kind = "attention"
        elif name in GEMM_OPS:
            op.kind = "gemm"
            op.gemm, op.flops = _gemm_shape(name, args)
            if cat not in ("gemm", "attention", "cross_attention"):
                op.cat = "gemm" if name != "convolution" else op.cat
        if op.kind == "mem":
            op.bytes = sum(b for _, b in reads) + sum(b for _, b in writes)
            strided = any(not t.is_contiguous() for t in outs + ins if t.dim() > 1 and _nbytes(t) > 1 << 20)
            op.strided = strided
            op.mem_class = "strided" if strided else "copy" if name in COPY_OPS else \
                "reduction" if name in REDUCTION_OPS else "pointwise"
        elif op.kind == "gemm":
            op.bytes = sum(b for _, b in reads) + sum(b for _, b in writes)
        op.sig = name + repr(_spec(args))
        op.spec = (str(func), _spec(args), _spec(kwargs or {}))
        if not self.measure and any(t.device.type == "meta" for t in outs):
            self.keep.append(out)  # meta tensors: keeps buffer identities unique (no memory)
        self.ops.append(op)
        return op


def _gemm_shape(name: str, args: Sequence[Any]) -> tuple[tuple[int, int, int, int, str, bool], float]:
    dt = str(args[0].dtype).replace("torch.", "") if hasattr(args[0], "dtype") else "?"
    if name == "addmm":
        _, a, b = args[0], args[1], args[2]
        m, k, n = int(a.shape[0]), int(a.shape[1]), int(b.shape[1])
        return (1, m, n, k, dt, True), 2.0 * m * n * k
    if name == "mm":
        a, b = args[0], args[1]
        m, k, n = int(a.shape[0]), int(a.shape[1]), int(b.shape[1])
        return (1, m, n, k, dt, False), 2.0 * m * n * k
    if name in ("bmm", "baddbmm"):
        a, b = (args[0], args[1]) if name == "bmm" else (args[1], args[2])
        bt, m, k, n = int(a.shape[0]), int(a.shape[1]), int(a.shape[2]), int(b.shape[2])
        return (bt, m, n, k, dt, name == "baddbmm"), 2.0 * bt * m * n * k
    if name == "convolution":
        x, w = args[0], args[1]
        out_sp = 1
        for s, ks in zip(x.shape[2:], w.shape[2:], strict=False):
            out_sp *= max(1, int(s) // int(ks))
        m, n, k = int(x.shape[0]) * out_sp, int(w.shape[0]), int(math.prod(w.shape[1:]))
        return (1, m, n, k, dt, True), 2.0 * m * n * k
    return (1, 0, 0, 0, dt, False), 0.0


def trace_ops(transformer: Any, inputs: dict[str, Any], *, self_pattern: str | None = None,
              cross_pattern: str | None = "", block_pattern: str | None = None, measure: bool = False,
              call: Any = None, outside: str = "other", ranges: bool = False) -> list[Op]:
    """Run ``transformer(**inputs)`` once (or ``call()``, e.g. a sampler step that runs the transformer) and
    return its aten operators in order (categories as in the module docstring; module patterns default to the
    transformer class's, :data:`MODEL_PATTERNS`). Operators outside the transformer's modules get category
    ``outside``. On ``meta`` tensors SDPA is recorded as one ``attention`` op (its shapes) without running it.
    ``measure``: on CUDA, also record a CUDA event pair around each operator (``op.measured_s`` after sync).
    ``ranges``: wrap each operator in a profiler range ``fgcat::<category>`` (:func:`profile_breakdown`)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    pats = MODEL_PATTERNS.get(type(transformer).__name__, MODEL_PATTERNS["WanTransformer3DModel"])
    rec = _Recorder(self_pattern or pats[0], pats[1] if cross_pattern == "" else cross_pattern,
                    block_pattern or pats[2], measure, outside)
    handles = []
    for name, mod in transformer.named_modules():
        def pre(m: Any, a: Any, n: str = name) -> None:
            rec.stack.append((n, m))

        def post(m: Any, a: Any, o: Any) -> None:
            if rec.stack:
                rec.stack.pop()

        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post, always_call=True))

    class _Disp(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if measure:
                e0 = torch.cuda.Event(enable_timing=True)
                e1 = torch.cuda.Event(enable_timing=True)
                e0.record()
                out = func(*args, **kwargs)
                e1.record()
                op = rec.record(func, args, kwargs, out)
                rec.events.append((len(rec.ops) - 1, e0, e1))
                del op
                return out
            if ranges:
                from torch.autograd.profiler import record_function

                with record_function(f"fgcat::{rec.category(_short(func))}"):
                    out = func(*args, **kwargs)
            else:
                out = func(*args, **kwargs)
            if not rec.fused:
                rec.record(func, args, kwargs, out)
            return out

    class _Fn(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is F.rms_norm and not rec.fused and not rec.measure:
                # CUDA runs torch.nn.RMSNorm as one fused kernel (aten._fused_rms_norm); meta and CPU decompose
                # it: record one reduction op either way
                rec.fused = True
                try:
                    out = func(*args, **kwargs)
                finally:
                    rec.fused = False
                x = args[0]
                w = args[2] if len(args) > 2 else kwargs.get("weight")
                ins = [t for t in (x, w) if isinstance(t, torch.Tensor)]
                op = Op(name="_fused_rms_norm", cat=rec.category("rms_norm"), kind="mem", mem_class="reduction",
                        reads=tuple((_buf(t), _nbytes(t)) for t in ins), writes=((_buf(out), _nbytes(out)),),
                        in_block=rec.in_block())
                op.bytes = sum(b for _, b in op.reads) + sum(b for _, b in op.writes)
                op.sig = "_fused_rms_norm" + repr(_spec(args))
                op.spec = ("aten._fused_rms_norm.default", _spec((x, [int(x.shape[-1])], w, kwargs.get(
                    "eps", args[3] if len(args) > 3 else None))), {})
                if not rec.measure and out.device.type == "meta":
                    rec.keep.append(out)
                rec.ops.append(op)
                return out
            if func is F.scaled_dot_product_attention:
                bound = dict(zip(("query", "key", "value"), args, strict=False)) | kwargs
                q, k, v = bound["query"], bound["key"], bound["value"]
                # self-attention = an SDPA call inside a self-attention module; any other (cross-attention,
                # HunyuanVideo's text-token refiner) is text attention, priced with the cross-attention model
                cat = "attention" if any(rec.rx_self.search(n) for n, _ in rec.stack) else "cross_attention"
                shape = (int(q.shape[0]), int(q.shape[1]), int(q.shape[2]), int(k.shape[2]), int(q.shape[3]))
                if q.device.type == "meta":
                    # CUDA's flash / cuDNN / efficient SDPA allocate the output like the query (its strides: a
                    # (B, S, H, D) buffer seen as (B, H, S, D)), so transposing it back is free
                    out = torch.empty_like(q) if v.shape[-1] == q.shape[-1] else \
                        q.new_empty((*q.shape[:-1], v.shape[-1]))
                    op = Op(name="sdpa", cat=cat, kind="attention", sdpa=shape,
                            flops=4.0 * shape[0] * shape[1] * shape[2] * shape[3] * shape[4], in_block=rec.in_block())
                    rec.ops.append(op)
                    if cat == "attention" and bound.get("attn_mask") is not None:
                        # fgsim's integration reduces an attention mask to a key-padding mask and checks it on the
                        # host (fgsim.capture.hooks.key_padding_mask): the host waits for the GPU once per call
                        rec.ops.append(Op(name="host_sync", cat="attention", kind="sync", in_block=rec.in_block()))
                    return out
                rec.in_sdpa = cat
                try:
                    return func(*args, **kwargs)
                finally:
                    rec.in_sdpa = None
            return func(*args, **kwargs)

    try:
        with torch.no_grad(), _Fn(), _Disp():
            if call is not None:
                call()
            else:
                transformer(**inputs)
    finally:
        for h in handles:
            h.remove()
    if measure:
        torch.cuda.synchronize()
        for i, e0, e1 in rec.events:
            rec.ops[i].flops = rec.ops[i].flops  # keep
            rec.ops[i].measured_s = e0.elapsed_time(e1) * 0.001
    return rec.ops


# --------------------------------------------------------------------------------------------------------------------
# building transformers from the model files


def transformer_config(model: Any) -> tuple[str, dict[str, Any]]:
    """(diffusers class name, constructor kwargs) of a model file's ``diffusers`` entry."""
    d = getattr(model, "diffusers", None) or {}
    if not d:
        raise FgsimError(f"model {model.name} has no 'diffusers' entry (class and config) in its model file")
    return str(d["class"]), dict(d["config"])


def build_transformer(model: Any, device: str = "meta", dtype: Any = None) -> Any:
    """The model's diffusers transformer with random weights on ``device`` (bf16; the modules diffusers keeps in
    fp32 when loading a checkpoint with ``torch_dtype=bfloat16`` are kept fp32, as a deployed pipeline runs)."""
    import diffusers
    import torch

    cls_name, cfg = transformer_config(model)
    cls = getattr(diffusers, cls_name)
    dtype = dtype or torch.bfloat16
    prev = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            m = cls(**cfg)
    finally:
        torch.set_default_dtype(prev)
    keep = set(getattr(m, "_keep_in_fp32_modules", None) or [])
    if keep and dtype != torch.float32:
        for name, mod in m.named_modules():
            if any(part in keep for part in name.split(".")):
                mod.to(torch.float32)
    return m.eval().requires_grad_(False)


def pass_inputs(model: Any, resolution: str, device: str = "meta", batch: int = 1, dtype: Any = None) -> dict[str, Any]:
    """Inputs of one transformer pass at ``resolution`` (latent video, text states, timestep), as the model's
    diffusers pipeline hands them to its transformer: Wan ``(B, C, F, H, W)`` latents and ``text_tokens_cross``
    text states; HunyuanVideo ``(B, C, F, H, W)`` latents, ``text_tokens_self`` text states with an all-valid
    attention mask, pooled CLIP projections and the embedded guidance; CogVideoX ``(B, F, C, H, W)`` latents,
    ``text_tokens_self`` text states and the 3-D RoPE tables its pipeline computes."""
    import torch

    cls_name, cfg = transformer_config(model)
    t, h, w = model.resolutions[resolution]
    dtype = dtype or torch.bfloat16
    mk = torch.empty if device == "meta" else torch.randn
    if cls_name == "HunyuanVideoTransformer3DModel":
        p, pt = int(cfg.get("patch_size", 2)), int(cfg.get("patch_size_t", 1))
        x = mk(batch, int(cfg.get("in_channels", 16)), t * pt, h * p, w * p, device=device, dtype=dtype)
        n_text = max(1, model.text_tokens_self)
        e = mk(batch, n_text, int(cfg.get("text_embed_dim", 4096)), device=device, dtype=dtype)
        return {"hidden_states": x, "timestep": torch.full((batch,), 500.0, device=device),
                "encoder_hidden_states": e,
                "encoder_attention_mask": torch.ones(batch, n_text, device=device, dtype=torch.int64),
                "pooled_projections": mk(batch, int(cfg.get("pooled_projection_dim", 768)), device=device,
                                         dtype=dtype),
                "guidance": torch.full((batch,), 6000.0, device=device, dtype=dtype), "return_dict": False}
    if cls_name == "CogVideoXTransformer3DModel":
        from diffusers.models.embeddings import get_3d_rotary_pos_embed

        p = int(cfg.get("patch_size", 2))
        x = mk(batch, t, int(cfg.get("in_channels", 16)), h * p, w * p, device=device, dtype=dtype)
        n_text = max(1, model.text_tokens_self)
        e = mk(batch, n_text, int(cfg.get("text_embed_dim", 4096)), device=device, dtype=dtype)
        out: dict[str, Any] = {"hidden_states": x, "encoder_hidden_states": e,
                               "timestep": torch.full((batch,), 500, device=device, dtype=torch.int64),
                               "return_dict": False}
        if cfg.get("use_rotary_positional_embeddings"):
            # CogVideoXPipeline._prepare_rotary_positional_embeddings (CogVideoX 1.0: crop region of the base grid)
            bw, bh = int(cfg.get("sample_width", 90)) // p, int(cfg.get("sample_height", 60)) // p
            r = h / w
            if r > bh / bw:
                rh, rw = bh, int(round(bh / h * w))
            else:
                rw, rh = bw, int(round(bw / w * h))
            top, left = int(round((bh - rh) / 2.0)), int(round((bw - rw) / 2.0))
            cos, sin = get_3d_rotary_pos_embed(embed_dim=int(cfg["attention_head_dim"]),
                                               crops_coords=((top, left), (top + rh, left + rw)), grid_size=(h, w),
                                               temporal_size=t, device="cpu" if device == "meta" else device)
            out["image_rotary_emb"] = (cos.to(device), sin.to(device))
        return out
    p = cfg.get("patch_size", (1, 2, 2))
    x = mk(batch, int(cfg.get("in_channels", 16)), t * p[0], h * p[1], w * p[2], device=device, dtype=dtype)
    e = mk(batch, max(1, model.text_tokens_cross), int(cfg.get("text_dim", 4096)), device=device, dtype=dtype)
    ts = torch.full((batch,), 500.0, device=device)
    return {"hidden_states": x, "timestep": ts, "encoder_hidden_states": e, "return_dict": False}


def _ops_cache_path(model: Any, resolution: str) -> Path | None:
    """Where :func:`model_ops` keeps the operator list of (model, resolution): a file in the user's cache
    directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``fgsim/ops``) named by a hash of the model file's
    content, the resolution, this module's source and the installed torch / diffusers versions, so any change
    to what the tracing depends on misses the cache. None (no cache) when ``FGSIM_NO_CACHE`` is set."""
    import hashlib
    import os
    from importlib.metadata import PackageNotFoundError, version

    if os.environ.get("FGSIM_NO_CACHE"):
        return None
    try:
        versions = [version("torch"), version("diffusers")]
    except PackageNotFoundError:
        return None
    desc = json.dumps([asdict(model) if hasattr(model, "__dataclass_fields__") else repr(model), resolution,
                       versions], sort_keys=True, default=str)
    key = hashlib.sha256(desc.encode() + Path(__file__).read_bytes()).hexdigest()[:32]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fgsim" / "ops"
    return root / f"{key}.json"


def _to_json(x: Any) -> Any:
    """JSON form of an :class:`Op` field value with tuples tagged (``{"t": [...]}``) so they come back as tuples;
    TypeError for anything else than None / bool / int / float / str / list / tuple / str-keyed dict."""
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if isinstance(x, tuple):
        return {"t": [_to_json(v) for v in x]}
    if isinstance(x, list):
        return [_to_json(v) for v in x]
    if isinstance(x, dict) and all(isinstance(k, str) for k in x):
        return {"d": {k: _to_json(v) for k, v in x.items()}}
    raise TypeError(f"{type(x).__name__} is not cached")


def _from_json(x: Any) -> Any:
    if isinstance(x, list):
        return [_from_json(v) for v in x]
    if isinstance(x, dict):
        if set(x) == {"t"}:
            return tuple(_from_json(v) for v in x["t"])
        if set(x) == {"d"}:
            return {k: _from_json(v) for k, v in x["d"].items()}
        raise ValueError("unknown tag")
    return x


def _ops_from_cache(path: Path) -> list[Op] | None:
    """The operator list a cache file holds (plain JSON, never unpickled), or None if it is not a valid one."""
    try:
        rows = json.loads(path.read_text())
        names = set(Op.__dataclass_fields__)
        if not isinstance(rows, list) or not all(isinstance(r, dict) and set(r) <= names for r in rows):
            return None
        return [Op(**{k: _from_json(v) for k, v in r.items()}) for r in rows]
    except (OSError, ValueError, TypeError):
        return None


def model_ops(model: Any, resolution: str) -> list[Op]:
    """The operator list of one pass of ``model`` at ``resolution`` (meta tracing on the CPU: importing diffusers
    and tracing a 14B transformer takes several seconds, so the list is cached, see :func:`_ops_cache_path`)."""
    path = _ops_cache_path(model, resolution)
    if path is not None and path.is_file():
        cached = _ops_from_cache(path)
        if cached is not None:
            return cached
    tr = build_transformer(model, "meta")
    ops = trace_ops(tr, pass_inputs(model, resolution, "meta"))
    if path is not None:
        from fgsim.fileio import write_text_atomic

        try:
            text = json.dumps([{k: _to_json(getattr(o, k)) for k in Op.__dataclass_fields__} for o in ops])
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text)
        except (OSError, TypeError):  # a read-only home or a value JSON cannot hold: no cache, same result
            pass
    return ops


def profile_breakdown(transformer: Any, inputs: dict[str, Any], *, call: Any = None,
                      outside: str = "other") -> dict[str, float]:
    """GPU kernel seconds per operator category of one pass (CUDA): ``torch.profiler`` over a traced run in
    which every aten operator sits in a range ``fgcat::<category>``; each range's kernels' device time is summed.
    Unlike CUDA events around each operator, the kernels' own durations do not include the time a drained GPU
    waits for the host to launch them (the host is slowed by the tracing itself)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trace_ops(transformer, inputs, call=call, outside=outside, ranges=True)
        torch.cuda.synchronize()
    out: dict[str, float] = {}
    for e in prof.events():
        if not e.name.startswith("fgcat::") or str(getattr(e, "device_type", "")).endswith("CUDA"):
            continue
        cat = e.name[len("fgcat::"):]
        t = getattr(e, "device_time_total", None)
        if t is None:
            t = getattr(e, "cuda_time_total", 0.0)
        out[cat] = out.get(cat, 0.0) + float(t) * 1e-6
    return out


def reference_sampler_ops(steps: int, latent_grid: tuple[int, int, int] = (21, 60, 104), *,
                          guidance_scale: float = 5.0) -> list[Op]:
    """The operators of a ``steps``-step run of the reference DiT's sampler (:func:`fgsim.reference.sample.sample`:
    Euler + CFG, two transformer passes per step, bf16 weights as ``validation/time_reference_e2e.py`` loads
    them), traced on the meta device: the transformer's operators by category, the sampler's own (latent casts,
    CFG combination, Euler update, label tokens) as ``sampler``. ``latent_grid``: (T, h, w) before the patch."""
    import torch

    from fgsim.reference.data import ClipLabel
    from fgsim.reference.model import _classes, load_config
    from fgsim.reference.sample import sample

    with torch.device("meta"):
        m = _classes()["ReferenceDiT"](load_config())
    m = m.to(torch.bfloat16).eval()
    ops: list[Op] = []

    def run() -> None:
        sample(m, [ClipLabel.parse("coffee/pan_right/shapes")], latent_grid, steps=steps,
               guidance_scale=guidance_scale, shift=3.0, seed=0, bf16=False,
               noise=torch.empty(1, 768, *latent_grid, device="meta"))

    ops.extend(trace_ops(m.transformer, {}, call=run, outside="sampler"))
    return ops


# --------------------------------------------------------------------------------------------------------------------
# calibration


@dataclass
class OpCalibration:
    """Measured prices of non-attention operators on one GPU (``fgsim calibrate --ops``)."""

    gpu: str
    gemm_s: dict[str, float]  # "b,m,n,k,dtype,bias" -> seconds (exact shapes)
    gemm_eff: list[tuple[float, float]]  # (FLOP, achieved FLOP/s) of the calibrated shapes, sorted by FLOP
    bandwidth: dict[str, float]  # mem class -> bytes/s
    host_s: float  # host time per eager kernel-launching aten operator
    host_view_s: float  # host time per view operator
    gap_s: float  # GPU time between back-to-back kernels (graph-replayed tiny kernels)
    host_compiled_s: float = 6e-6
    l2_bytes: float = 50e6  # L2 size (GPU description); the producer's last writes a consumer finds there
    mem_s: dict[str, float] = field(default_factory=dict)  # sig_key(op.sig) -> seconds (exact replays)
    #: GEMM seconds when launched alone after idleness (the clock between memory-bound stretches), by shape key
    gemm_burst_s: dict[str, float] = field(default_factory=dict)
    #: host-side rates: "cpu_randn_per_s" (float32 normal values drawn on the CPU), "h2d_pageable_bw" (bytes/s)
    host: dict[str, float] = field(default_factory=dict)
    attention: dict[str, Any] = field(default_factory=dict)  # cuDNN SDPA model: {"points": [(N, flop/s)], ...}
    predictor: dict[str, Any] = field(default_factory=dict)  # mask predictor models
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_op_calibration(path: str | Path | None = None, gpu: str = "h200") -> OpCalibration:
    """Read an op calibration (default ``fgsim/data/ops/<gpu>.json``)."""
    p = Path(path) if path else CALIBRATION_DIR / f"{gpu}.json"
    if not p.is_file():
        raise FgsimError(f"{p}: no operator calibration for {gpu} (run 'fgsim calibrate --ops' on that GPU)")
    try:
        d = json.loads(p.read_text())
        d["gemm_eff"] = [tuple(x) for x in d["gemm_eff"]]
        return OpCalibration(**d)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise FgsimError(f"{p}: malformed operator calibration ({exc})") from None


def sig_key(sig: str) -> str:
    """Short stable key of a memory-bound operator's signature (op name + argument specs)."""
    import hashlib

    return hashlib.sha1(sig.encode()).hexdigest()[:16]


def gemm_key(g: tuple[int, int, int, int, str, bool]) -> str:
    return ",".join(str(x) for x in g)


def gemm_time(cal: OpCalibration, g: tuple[int, int, int, int, str, bool], flops: float) -> float:
    """Seconds of one GEMM: the calibrated shape's time, else FLOP at the nearest calibrated efficiency."""
    k = gemm_key(g)
    if k in cal.gemm_s:
        # back-to-back replays of a large GEMM run at the power-limited clock; in a pass a GEMM follows
        # memory-bound work at a higher clock, which the GEMM timed alone after idleness shows (its wake-up
        # latency biases short ones up, so the faster of the two measurements is kept)
        burst = cal.gemm_burst_s.get(k)
        return min(cal.gemm_s[k], burst) if burst else cal.gemm_s[k]
    if not cal.gemm_eff or flops <= 0:
        return 0.0
    lf = math.log(max(flops, 1.0))
    pts = sorted(cal.gemm_eff)
    xs = [math.log(max(f, 1.0)) for f, _ in pts]
    if lf <= xs[0]:
        rate = pts[0][1] * max(flops, 1.0) / pts[0][0] if flops < pts[0][0] else pts[0][1]
        rate = min(rate, pts[0][1])
    elif lf >= xs[-1]:
        rate = pts[-1][1]
    else:
        i = next(j for j in range(1, len(xs)) if xs[j] >= lf)
        w = (lf - xs[i - 1]) / (xs[i] - xs[i - 1])
        rate = pts[i - 1][1] * (1 - w) + pts[i][1] * w
    return flops / rate


def op_gpu_time(cal: OpCalibration, op: Op, exact: bool = True) -> float:
    """GPU seconds of one non-attention operator (views: 0). Memory-bound: the calibrated replay of the same
    signature when ``exact`` and present, else bytes at the class bandwidth."""
    if op.kind == "view" or op.kind == "attention":
        return 0.0
    if op.kind == "gemm" and op.gemm is not None:
        return gemm_time(cal, op.gemm, op.flops)
    bw_t = op.bytes / cal.bandwidth.get(op.mem_class, cal.bandwidth.get("copy", 3e12))
    if exact and cal.mem_s:
        t = cal.mem_s.get(sig_key(op.sig))
        if t is not None:
            # a replay whose data fits in L2 twice over re-reads its own inputs from L2 (the same buffers every
            # replay): no faster than its bytes at the class bandwidth then
            return max(t, bw_t) if op.bytes < 2.0 * cal.l2_bytes else t
    return bw_t


@dataclass
class PassPrediction:
    """Predicted seconds of one pass: total, per category, and the attention calls (priced by the caller)."""

    total_s: float
    by_cat: dict[str, float]
    kernels: int
    attention_calls: list[tuple[str, tuple[int, int, int, int, int]]]
    mode: str
    busy_by_cat: dict[str, float] = field(default_factory=dict)  # GPU kernel seconds only (no host waits)


def pass_time(ops: Sequence[Op], cal: OpCalibration, attention_s: dict[str, float] | None = None, *,
              compiled: bool = False, exact: bool = True, l2: bool = True) -> PassPrediction:
    """Predicted pass time: non-attention operators from ``cal``; each SDPA call of category c costs
    ``attention_s[c]`` seconds (per call; 0 when not given). ``exact=False``: every memory-bound operator at
    its class bandwidth (no per-signature replays). ``l2=False``: no L2 reuse between consecutive operators."""
    att = attention_s or {}
    by = dict.fromkeys(CATEGORIES, 0.0)
    calls = [(op.cat, op.sdpa) for op in ops if op.kind == "attention" and op.sdpa is not None]
    items: list[tuple[float, float, str]] = []  # (gpu seconds, host seconds, category)
    if not compiled:
        views: dict[int, int] = {}
        prev: dict[int, float] = {}
        for op in ops:
            if op.kind == "sync":
                items.append((-1.0, 0.0, op.cat))
                continue
            if op.kind == "attention":
                if op.sdpa is not None:
                    items.append((att.get(op.cat, 0.0), cal.host_s, op.cat))
                prev = {}
                continue
            if op.kind == "view":
                items.append((0.0, cal.host_view_s, op.cat))
                continue
            t = op_gpu_time(cal, op, exact)
            if op.kind == "mem" and prev and l2 and op.mem_class != "strided":
                # a memory-bound op reading what the previous kernel wrote finds up to L2-size bytes of it in L2
                # (isolated replays do not: the calibration measured each op on its own buffers). Strided
                # consumers (RoPE's interleaved halves) are left out: each reads whole cache lines of which it
                # uses half, and the profiled Wan passes show their replay times unchanged in the pass
                hit = min(cal.l2_bytes, sum(prev.get(b, 0.0) for b, _ in op.reads))
                bw = cal.bandwidth.get(op.mem_class, cal.bandwidth.get("copy", 3e12))
                t = max(t - hit / bw, 0.5 * t)
            items.append((t, cal.host_s, op.cat))
            prev = dict(op.writes)
        del views
    else:
        items = _compiled_items(ops, cal, att)
    host = gpu = 0.0
    kernels = 0
    busy = dict.fromkeys(CATEGORIES, 0.0)
    for g, h, cat in items:
        if g < 0.0:  # a host synchronisation: the host continues once the GPU has finished
            host = max(host, gpu)
            continue
        host += h
        if g <= 0.0:
            continue
        start = max(gpu + cal.gap_s, host)
        by[cat] += start + g - gpu  # waiting on the host counts to the operator that waited
        busy[cat] += g
        gpu = start + g
        kernels += 1
    return PassPrediction(total_s=max(gpu, host), by_cat=by, kernels=kernels, attention_calls=calls,
                          mode="compiled" if compiled else "eager", busy_by_cat=busy)


def _compiled_items(ops: Sequence[Op], cal: OpCalibration, att: dict[str, float]) -> list[tuple[float, float, str]]:
    """Fuse memory-bound operators between anchors (GEMM, attention) into one kernel each, inside the repeated
    transformer blocks (what diffusers' ``compile_repeated_blocks`` compiles); operators outside them (patch
    embedding, condition embedders, output head, unpatchify) run eagerly, one kernel each."""
    later_reads: dict[int, int] = {}
    for i, op in enumerate(ops):
        for b, _ in op.reads:
            later_reads[b] = i
    items: list[tuple[float, float, str]] = []
    group: list[int] = []

    def flush() -> None:
        if not group:
            return
        made: dict[int, float] = {}
        read_bytes = 0.0
        seen: set[int] = set()
        cats: dict[str, float] = {}
        for i in group:
            op = ops[i]
            for b, nb in op.reads:
                if b not in made and b not in seen:
                    seen.add(b)
                    read_bytes += nb
            for b, nb in op.writes:
                made[b] = max(made.get(b, 0.0), nb)
            cats[op.cat] = cats.get(op.cat, 0.0) + op.bytes
        last = group[-1]
        write_bytes = sum(nb for b, nb in made.items() if later_reads.get(b, -1) > last)
        total = read_bytes + write_bytes
        if total > 0:
            cat = max(cats, key=cats.get) if cats else "elementwise"
            items.append((total / cal.bandwidth.get("pointwise", 3e12), cal.host_compiled_s, cat))
        group.clear()

    any_block = any(op.in_block for op in ops)
    for i, op in enumerate(ops):
        if op.kind == "view":
            continue
        if op.kind == "sync":
            flush()
            items.append((-1.0, 0.0, op.cat))
            continue
        if any_block and not op.in_block:
            flush()
            t = gemm_time(cal, op.gemm, op.flops) if op.kind == "gemm" and op.gemm is not None else \
                att.get(op.cat, 0.0) if op.kind == "attention" else op_gpu_time(cal, op)
            items.append((t, cal.host_s, op.cat))
            continue
        if op.kind in ("gemm", "attention"):
            flush()
            if op.kind == "gemm" and op.gemm is not None:
                items.append((gemm_time(cal, op.gemm, op.flops), cal.host_compiled_s, op.cat))
            elif op.sdpa is not None:
                items.append((att.get(op.cat, 0.0), cal.host_compiled_s, op.cat))
            continue
        group.append(i)
    flush()
    return items


# --------------------------------------------------------------------------------------------------------------------
# attention and predictor models from the calibration


def sdpa_time(cal: OpCalibration, shape: tuple[int, int, int, int, int]) -> float:
    """cuDNN SDPA seconds for (B, H, S_q, S_k, D): the calibrated exact shape (``attention.shapes``, keys
    ``"H,S_q,S_k,D"``, batch scaled) when present, else the same (S_q, S_k, D) at the nearest calibrated head count
    scaled by the heads (S_q >= 8192), else FLOP at the calibrated rate interpolated in log(S_q·S_k)
    (cross-attention, S_k <= 4096, on its own points)."""
    b, h, sq, sk, d = shape
    shapes = cal.attention.get("shapes", {})
    exact = shapes.get(f"{h},{sq},{sk},{d}")
    if exact is not None:
        return b * float(exact)
    # the same sequence and head size at another head count: the work (and, once the grid of query tiles fills
    # the GPU, the time) is proportional to the heads
    same = [(int(k.split(",")[0]), float(t)) for k, t in shapes.items() if k.split(",")[1:] == [str(sq), str(sk), str(d)]]
    if same and sq >= 8192:
        h0, t0 = min(same, key=lambda x: abs(x[0] - h))
        return b * t0 * h / h0
    flop = 4.0 * b * h * sq * sk * d
    which = "cross_points" if sk <= 4096 and cal.attention.get("cross_points") else "points"
    by_d = cal.attention.get(f"{which}_d{d}") if d != 128 else None
    pts = sorted((float(x), float(r)) for x, r in (by_d or cal.attention.get(which, [])))
    if d != 128 and not by_d:
        # no rate points at this head size: scale the D = 128 rate by the ratio of the two head sizes' rates at
        # the calibrated exact shapes (same H and N)
        ratios = []
        for key, t in shapes.items():
            hh, n1, n2, dd = key.split(",")
            other = shapes.get(f"{hh},{n1},{n2},128")
            if dd == str(d) and other:
                ratios.append(float(other) * d / (float(t) * 128.0))
        if ratios:
            pts = [(x, r * sorted(ratios)[len(ratios) // 2]) for x, r in pts]
    if not pts:
        raise FgsimError("operator calibration has no cuDNN attention points")
    x = math.log(float(sq) * sk)
    xs = [math.log(p) for p, _ in pts]
    if x <= xs[0]:
        rate = pts[0][1]
    elif x >= xs[-1]:
        rate = pts[-1][1]
    else:
        i = next(j for j in range(1, len(xs)) if xs[j] >= x)
        w = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
        rate = pts[i - 1][1] * (1 - w) + pts[i][1] * w
    return flop / rate + float(cal.attention.get("overhead_s", 0.0))


def predictor_time(cal: OpCalibration, kind: str, heads: int, n: int, head_dim: int, block_m: int = 64,
                   kept: float = 0.5) -> dict[str, float]:
    """Seconds of one mask prediction: ``predict`` (the predictor) and ``index`` (building the FG index).

    The exact predictor sweeps H·N² scores: ``t = fixed + H·N² / rate`` with ``fixed`` and ``rate``
    from two calibration points. The pooled predictor, when its stages were calibrated
    (``predictor.pooled_stages``), is the sum of its three stages, each at its own rate and size variable (group
    means ~ H·N·D, group pairs ~ H·(N/16)², slice mask ~ H·⌈N/M⌉·N), plus a fixed per-call cost; else the
    exact predictor's form. The index build (``fgattn.build_index``) streams the H·⌈N/M⌉·N-byte mask twice
    (count, compact) and writes 4 bytes per kept entry at the calibrated copy bandwidth, plus the fixed cost of
    the calibration's own index build (its time minus its streaming); without that measurement, mask and entries
    at the index benchmark's bandwidth.
    """
    p = cal.predictor
    qb = -(-n // block_m)
    mask_bytes = float(heads * qb * n)
    # per score the exact rule's softmax and column max (CUDA cores) outweigh its D-long dot product (tensor
    # cores): without a D = 64 calibration point the cost per score is taken as independent of the head size
    scores = heads * float(n) * n
    if kind not in ("exact", "pooled"):
        raise FgsimError(f"unknown predictor {kind!r}")
    st = p.get("pooled_stages") or {}
    if kind == "pooled" and st:
        # three stages with their own size variables (pooling ~ H·N·D, group pairs ~ H·(N/G)², slice mask
        # ~ H·⌈N/M⌉·N) plus the fixed host cost of a call
        g = int(st["size"]["group"])
        t = (float(st["fixed_s"]) + 4.0 * heads * n * head_dim / float(st["pool_bw"])
             + heads * float(-(-n // g)) ** 2 / float(st["group_rate"]) + mask_bytes / float(st["expand_bw"]))
    else:
        per_score = 1.0 / float(p[f"{kind}_scores_per_s"])
        t64, t128 = (p.get("measured_s") or {}).get("exact_d64"), (p.get("measured_s") or {}).get("exact")
        if kind == "exact" and t64 and t128 and head_dim != 128:
            # calibrated at D = 64 and 128 (same H, N): the per-score cost is linear in D between them
            r = float(t64) / float(t128)
            per_score *= r + (1.0 - r) * (head_dim - 64) / 64.0
        t = float(p.get(f"{kind}_fixed_s", 0.0)) + scores * per_score
    size, meas = p.get("calibration_size") or {}, p.get("measured_s") or {}
    bw = float(cal.bandwidth.get("copy", 0.0))
    if size and meas.get("index") and bw > 0:
        # fgattn.build_index streams the mask twice (count, compact) and writes 4 bytes per kept entry, plus a
        # fixed cost (launches, the host sync that sizes the output): the fixed part is the calibration's index
        # build at its own size minus its streaming time
        cal_mask = float(size["heads"]) * -(-int(size["n"]) // int(size["block_m"])) * float(size["n"])
        fixed = max(float(meas["index"]) - (2.0 + 4.0 * float(size["kept"])) * cal_mask / bw, 0.0)
        idx = fixed + (2.0 + 4.0 * kept) * mask_bytes / bw
    else:
        idx = (mask_bytes + 4.0 * kept * mask_bytes) / float(p["index_bw"])
    return {"predict": t, "index": idx}


def summarize(ops: Iterable[Op]) -> dict[str, Any]:
    """Counts of operators per kind and category (for reports)."""
    out: dict[str, Any] = {}
    for op in ops:
        out.setdefault(op.kind, 0)
        out[op.kind] += 1
    return out
