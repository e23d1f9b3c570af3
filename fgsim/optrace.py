"""Operator tracing: every aten operator of one transformer pass, with its shapes, bytes and category.

The operator list comes from running the real diffusers transformer (built from the model file's published
config) on the ``meta`` device under a ``TorchDispatchMode``: no memory, no GPU, a few seconds on a CPU, and
exactly the operators diffusers issues (including Wan's fp32 norms/modulation and strided RoPE writes). Each
operator gets a category from the module it runs in: ``gemm`` (inside ``nn.Linear``), ``attention`` /
``cross_attention`` (the SDPA core of self- / cross-attention, priced by the attention models, not here),
``norm`` (inside a norm module), ``rope`` (the rest of the self-attention processor), ``modulation`` (a
block's own code: AdaLN scale/shift/gate, residuals), ``elementwise`` (FFN activation, cross-attention
reshapes) and ``other`` (embeddings, patchify, head).

This module is the tracer only (:mod:`fgsim.opmodel` prices the operators and keeps the lists): the bundled
operator lists (``fgsim/data/oplists``) and the user's cache are keyed by a digest of this file's source, so
an edit here re-traces instead of reusing lists the old tracer made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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
