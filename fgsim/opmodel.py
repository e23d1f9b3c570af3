"""Non-attention operator model: every aten operator of one transformer pass, priced from its shape.

**The operator list** (:func:`model_ops`) is what :mod:`fgsim.optrace` records running the real diffusers
transformer, built from the model file's published config, on the ``meta`` device (categories: ``gemm``,
``attention`` / ``cross_attention``, ``norm``, ``rope``, ``modulation``, ``elementwise``, ``other``). Importing
diffusers and tracing a 14B transformer takes several seconds, so lists are read, in this order, from the
operator lists bundled with fgsim for its model files (``fgsim/data/oplists``, made by
``python validation/bundle_oplists.py``), from the user's cache, or traced (and cached). Both are keyed by what the
trace depends on (the model's diffusers config, latent grid and text tokens; the tracer's source; for the cache,
the installed torch / diffusers versions), are plain JSON (never unpickled), validated field by field and
bounded in size; an unusable file is reported on stderr and ignored. ``FGSIM_NO_CACHE=1``: trace every time.

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
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fgsim.errors import FgsimError, one_line
from fgsim.optrace import (  # noqa: F401  (re-exported: the tracer was part of this module)
    CATEGORIES,
    COPY_OPS,
    GEMM_OPS,
    MEM_CLASSES,
    MODEL_PATTERNS,
    REDUCTION_OPS,
    VIEW_OPS,
    Op,
    build_transformer,
    pass_inputs,
    profile_breakdown,
    reference_sampler_ops,
    trace_ops,
    transformer_config,
)

CALIBRATION_DIR = Path(__file__).parent / "data" / "ops"


# --------------------------------------------------------------------------------------------------------------------
# operator lists: bundled, cached or traced

#: operator lists bundled for fgsim's own model files (xz-compressed JSON; ``validation/bundle_oplists.py``)
OPLIST_DIR = Path(__file__).parent / "data" / "oplists"
OPLIST_FORMAT = "fgsim-oplist/2"
#: an operator-list file larger than this is neither read nor written (a Wan2.1-14B 720p pass: ~3 MB of JSON)
OPLIST_MAX_BYTES = 64 << 20
#: operator lists kept in the user's cache directory (the least recently written beyond these are removed)
CACHE_KEEP = 32
_KINDS = frozenset({"view", "gemm", "mem", "attention", "sync"})
_FIELDS = tuple(Op.__dataclass_fields__)


def _warn(msg: str) -> None:
    print(f"fgsim: warning: {one_line(msg)}", file=sys.stderr)


def oplist_key(model: Any, resolution: str) -> str:
    """Key of the operator list of (model, resolution): a hash of everything the trace reads (the model's
    ``diffusers`` class and config, the latent grid at ``resolution``, the text tokens) and of the tracer's
    source (``fgsim/optrace.py``), not of the installed torch / diffusers versions."""
    import hashlib

    from fgsim import optrace

    res = getattr(model, "resolutions", {}).get(resolution)
    desc = json.dumps({"diffusers": getattr(model, "diffusers", None), "grid": res, "resolution": resolution,
                       "text_tokens_cross": getattr(model, "text_tokens_cross", None),
                       "text_tokens_self": getattr(model, "text_tokens_self", None)}, sort_keys=True, default=str)
    h = hashlib.sha256(desc.encode())
    h.update(Path(optrace.__file__).read_bytes())
    return h.hexdigest()[:32]


def _versions() -> dict[str, str] | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"torch": version("torch"), "diffusers": version("diffusers")}
    except PackageNotFoundError:
        return None


def _ops_cache_path(model: Any, resolution: str) -> Path | None:
    """Where :func:`model_ops` caches the operator list it traced for (model, resolution): a file in the user's
    cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``fgsim/ops``) named by :func:`oplist_key` and the
    installed torch / diffusers versions. None (no cache) when ``FGSIM_NO_CACHE`` is set or either is missing."""
    import hashlib
    import os

    if os.environ.get("FGSIM_NO_CACHE"):
        return None
    versions = _versions()
    if versions is None:
        return None
    key = hashlib.sha256((oplist_key(model, resolution) + json.dumps(versions, sort_keys=True)).encode())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fgsim" / "ops"
    return root / f"{key.hexdigest()[:32]}.json"


def _bundled_path(key: str) -> Path | None:
    """The bundled operator list with ``key`` (files ``<model>-<resolution>-<key[:12]>.json.xz``), if any."""
    found = sorted(OPLIST_DIR.glob(f"*-{key[:12]}.json.xz"))
    return found[0] if found else None


def _to_json(x: Any) -> Any:
    """JSON form of an :class:`Op` field value: tuples tagged ``{"t": [...]}`` and dicts ``{"d": [[key, value],
    ...]}`` (so the only JSON objects inside an operator are tags); TypeError for anything else than None / bool /
    int / float / str / list / tuple / str-keyed dict."""
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if isinstance(x, tuple):
        return {"t": [_to_json(v) for v in x]}
    if isinstance(x, list):
        return [_to_json(v) for v in x]
    if isinstance(x, dict) and all(isinstance(k, str) for k in x):
        return {"d": [[k, _to_json(v)] for k, v in x.items()]}
    raise TypeError(f"{type(x).__name__} is not cached")


def _untag(d: dict[str, Any]) -> Any:
    """json ``object_hook``: a tag back to its tuple / dict (objects with other keys are returned as they are)."""
    if len(d) == 1:
        if "t" in d:
            if not isinstance(d["t"], list):
                raise ValueError("a tuple tag holds no list")
            return tuple(d["t"])
        if "d" in d:
            pairs = d["d"]
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                                      for p in pairs):
                raise ValueError("a dict tag holds no [key, value] pairs")
            return dict(pairs)
    return d


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _check_op(op: Op) -> None:
    """ValueError unless every field of ``op`` has the type and form the tracer gives it."""
    if not all(isinstance(x, str) for x in (op.name, op.cat, op.kind, op.mem_class, op.sig)):
        raise ValueError("name, cat, kind, mem_class and sig must be strings")
    if op.kind not in _KINDS or op.cat not in CATEGORIES or (op.mem_class and op.mem_class not in MEM_CLASSES):
        raise ValueError(f"unknown kind / category / memory class {op.kind!r} / {op.cat!r} / {op.mem_class!r}")
    if not (_is_num(op.bytes) and _is_num(op.flops) and isinstance(op.strided, bool)
            and isinstance(op.in_block, bool)):
        raise ValueError("bytes, flops must be numbers and strided, in_block booleans")
    if op.gemm is not None and not (isinstance(op.gemm, tuple) and len(op.gemm) == 6
                                    and all(_is_num(v) for v in op.gemm[:4])):
        raise ValueError("gemm must be (batch, M, N, K, dtype, bias)")
    if op.sdpa is not None and not (isinstance(op.sdpa, tuple) and len(op.sdpa) == 5
                                    and all(isinstance(v, int) for v in op.sdpa)):
        raise ValueError("sdpa must be (B, H, S_q, S_k, D) integers")
    for rw in (op.reads, op.writes):
        if not isinstance(rw, tuple) or not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], int)
                                                and _is_num(p[1]) for p in rw):
            raise ValueError("reads and writes must be (buffer, bytes) pairs")


def _oplist_json(ops: Sequence[Op], key: str, model: Any, resolution: str) -> str:
    """The operator-list file's text (TypeError for a field value JSON cannot hold)."""
    return json.dumps({"format": OPLIST_FORMAT, "key": key, "model": getattr(model, "name", ""),
                       "resolution": resolution, "traced_with": _versions() or {}, "fields": list(_FIELDS),
                       "ops": [[_to_json(getattr(o, k)) for k in _FIELDS] for o in ops]}, separators=(",", ":"))


def _read_oplist(path: Path, key: str, instead: str = "the pass is traced again") -> list[Op] | None:
    """The operators of an operator-list file (plain or xz-compressed JSON, never unpickled) whose key is
    ``key``; None, with one warning line (ending with what is used ``instead``), if it is unreadable, too large,
    of another format or key, or any field is malformed."""
    import lzma

    try:
        size = path.stat().st_size
        if size > OPLIST_MAX_BYTES:
            raise ValueError(f"{size} bytes, more than the {OPLIST_MAX_BYTES} an operator list may have")
        raw = path.read_bytes()
        if path.suffix == ".xz":
            raw = lzma.LZMADecompressor().decompress(raw, max_length=OPLIST_MAX_BYTES + 1)
            if len(raw) > OPLIST_MAX_BYTES:
                raise ValueError(f"decompresses to more than {OPLIST_MAX_BYTES} bytes")
        doc = json.loads(raw, object_hook=_untag)
        if not isinstance(doc, dict) or doc.get("format") != OPLIST_FORMAT:
            raise ValueError(f"not an operator list of format {OPLIST_FORMAT}")
        if doc.get("key") != key or doc.get("fields") != list(_FIELDS) or not isinstance(doc.get("ops"), list):
            raise ValueError("made for another model, resolution or tracer")
        ops = []
        for row in doc["ops"]:
            if not isinstance(row, list) or len(row) != len(_FIELDS):
                raise ValueError("an operator is not a list of the Op fields")
            op = Op(*row)
            _check_op(op)
            ops.append(op)
        return ops
    except (OSError, EOFError, lzma.LZMAError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        _warn(f"operator list {path}: {exc}; ignored, {instead}")
        return None


def canonical_buffers(ops: Sequence[Op]) -> list[Op]:
    """``ops`` with buffer ids renumbered 0, 1, ... in order of first use (tracing gives memory addresses; only
    which operators share a buffer matters)."""
    from dataclasses import replace

    ids: dict[int, int] = {}

    def ren(rw: tuple[tuple[int, float], ...]) -> tuple[tuple[int, float], ...]:
        return tuple((ids.setdefault(b, len(ids)), nb) for b, nb in rw)

    return [replace(o, reads=ren(o.reads), writes=ren(o.writes)) for o in ops]


def trace_model_ops(model: Any, resolution: str) -> list[Op]:
    """Trace one pass of ``model`` at ``resolution`` on the meta device (imports diffusers; no cache)."""
    try:  # a model file is user input: a class diffusers lacks, or a config it refuses, is one line
        tr = build_transformer(model, "meta")
    except (AttributeError, TypeError, ValueError) as exc:
        cls = (getattr(model, "diffusers", None) or {}).get("class")
        raise FgsimError(f"model {model.name}: diffusers cannot build the model file's diffusers entry (class "
                         f"{cls!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return canonical_buffers(trace_ops(tr, pass_inputs(model, resolution, "meta")))


def _prune_cache(root: Path) -> None:
    """Keep the :data:`CACHE_KEEP` most recently written operator lists of the cache directory."""
    import re

    files = [p for p in root.glob("*.json") if re.fullmatch(r"[0-9a-f]{32}\.json", p.name)]
    if len(files) <= CACHE_KEEP:
        return
    files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for p in files[CACHE_KEEP:]:
        p.unlink(missing_ok=True)


def model_ops(model: Any, resolution: str) -> list[Op]:
    """The operator list of one pass of ``model`` at ``resolution`` (buffer ids canonical): bundled, cached or
    traced (see the module docstring)."""
    import os

    if os.environ.get("FGSIM_NO_CACHE"):
        return trace_model_ops(model, resolution)
    key = oplist_key(model, resolution)
    bundled = _bundled_path(key)
    if bundled is not None:
        ops = _read_oplist(bundled, key, "the user's cache or a new trace is used")
        if ops is not None:
            return ops
    path = _ops_cache_path(model, resolution)
    if path is not None and path.is_file():
        ops = _read_oplist(path, key)
        if ops is not None:
            return ops
        try:  # an unusable cache file is replaced by the new trace, or removed if that is not cached
            path.unlink()
        except OSError:
            pass
    ops = trace_model_ops(model, resolution)
    if path is not None:
        from fgsim.fileio import write_text_atomic

        try:
            text = _oplist_json(ops, key, model, resolution)
            if len(text) <= OPLIST_MAX_BYTES:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(path, text)
                _prune_cache(path.parent)
        except (OSError, TypeError):  # a read-only home or a value JSON cannot hold: no cache, same result
            pass
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
    #: the SM clock the GPU sustains while attention kernels run back to back at its power limit
    #: (:func:`fgsim.opcalibrate.measure_attention_clock`): {"sm_clock_mhz": MHz, "unit", "method", "source", ...};
    #: whole-generation predictions price fgattn kernels at it (:func:`fgsim.endtoend.generation_gpu`)
    sustained_clock: dict[str, Any] = field(default_factory=dict)

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
