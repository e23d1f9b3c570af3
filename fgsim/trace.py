"""The ``.fgt`` trace format: which M×1 slices each captured attention call keeps.

A ``.fgt`` file is a ZIP archive (the container of numpy's ``.npz``) with one JSON member and ``.npy``
members, each deflate-compressed on its own so that a reader decompresses only the (pass, layer) it asks
for; ZIP's per-member CRC-32 catches corruption. Nothing is ever unpickled. A self-attention trace (N_q = N_k = N
tokens) is written as format version 1; a cross-attention trace (N_q queries × N_k = ``kv_tokens`` keys) as
version 2, whose metadata adds ``attention`` and ``kv_tokens``. Members (both versions):

``fgt.json``
    ``{"format": "fgt", "version": 1 or 2, "meta": {...}, "entries": [...]}``: the :class:`TraceMeta` fields and,
    per captured (pass, layer), the names of its members.
``masks/p{pass}_l{layer}.npy``
    uint8 ``(heads, ceil(N_q / M), ceil(N_k / 8))``: the M×1 slice mask, bit-packed along keys (little bit order),
    each query block's row stored XOR the previous block's row (:func:`xor_up`).
``counts/p{pass}_l{layer}_m{M}.npy``
    int32 ``(2, len(N_LEVELS), heads, ceil(N_q / M))`` for each derivable M: ``[0]`` kept key tiles and
    ``[1]`` real keys covered, per query block, at each N of :data:`fgsim.views.N_LEVELS`.
``stats/p{pass}_l{layer}.npy``
    float64 ``(len(stat_names), heads)``: per-head accuracy of the mask predictor (optional).

Writes are atomic: the archive is written to a hidden temporary file beside the target and renamed over it
only when complete.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from fgsim import __version__
from fgsim.errors import FgTraceError
from fgsim.fileio import finite_float
from fgsim.views import (
    N_LEVELS,
    ceil_div,
    check_counts,
    coarsen,
    density_from_counts,
    m_levels_for,
    pack_mask,
    tile_counts_packed,
    unpack_mask,
)

FORMAT_NAME = "fgt"
FORMAT_VERSION = 2  # the newest version this fgsim reads and writes
SUPPORTED_VERSIONS = (1, 2)
META_MEMBER = "fgt.json"
TEXT_POSITIONS = ("none", "before", "after")
ATTENTION_KINDS = ("self", "cross")
PROVENANCE_KINDS = ("captured", "synthetic")

# Bounds on what a trace may declare (reader and writer both enforce them). They keep every command's work and
# memory proportional to sizes a real video DiT run can have, whatever a damaged or hostile file says.
MAX_TOKENS = 2**20  # N_q (T·H·W + text) and N_k: 14x a Wan2.1 720p 81-frame run (75,600 tokens)
MAX_HEADS = 256  # num_heads
MAX_HEAD_DIM = 1024  # head_dim
MAX_LAYERS = 256  # num_layers
MAX_STEPS = 1000  # num_steps
MAX_PASSES_PER_STEP = 8  # passes_per_step
MAX_PASS_INDEX = 2**31 - 1  # pass index and step of a captured pass
MAX_STAT_NAMES = 64  # per-head statistics per entry
MAX_WORK_CTAS = 2**28  # entries x num_heads x ceil(N_q / block_m): the query blocks a whole-trace prediction prices
MAX_META_BYTES = 16 * 2**20  # fgt.json, uncompressed (about 60,000 entries)
#: Valid ranges of the statistics the capture predictors write (NaN = not measured is allowed; rel_error is
#: +inf when the dense output is zero).
STAT_RANGES = {"kept_fraction": (0.0, 1.0), "recall_mean": (0.0, 1.0 + 1e-6), "recall_min": (0.0, 1.0 + 1e-6),
               "rel_error": (0.0, np.inf)}
MAX_MEMBER_BYTES = 2**30  # any .npy member, uncompressed (checked against the ZIP directory before inflating)
MAX_JSON_DEPTH = 32  # nesting of objects/arrays in fgt.json
NPY_HEADER_MAX = 16384  # bytes of a .npy member's magic + header (numpy writes 128)


@dataclass(frozen=True)
class PassInfo:
    """One transformer invocation of a sampling run: its index, denoising step and CFG branch."""

    index: int
    step: int
    branch: str = "cond"  # "cond", "uncond" or "batched" (both branches in one pass)


@dataclass(frozen=True)
class TraceMeta:
    """Everything a trace says about the run it came from.

    Shapes follow from ``grid``, ``text_tokens`` and, for cross-attention, ``kv_tokens``: queries are the
    N_q = T·H·W + text tokens of the sequence (:attr:`n_tokens`); keys are N_k = :attr:`n_keys` (= N_q for
    self-attention, ``kv_tokens`` — e.g. text/conditioning tokens — for cross-attention).
    """

    model: str
    num_layers: int
    num_heads: int
    head_dim: int
    grid: tuple[int, int, int]  # latent tokens after patchify: frames T × height H × width W
    text_tokens: int
    text_position: str  # where text tokens sit in the self-attention sequence: none / before / after
    block_m: int  # stored query-block size M
    passes: tuple[PassInfo, ...]  # captured passes
    layers: tuple[int, ...]  # captured layers
    heads: tuple[int, ...]  # captured heads (rows of each mask)
    predictor: dict[str, Any]  # {"name": ..., **parameters}
    provenance: dict[str, Any]  # {"kind": "captured" | "synthetic", ...}
    num_steps: int = 50  # denoising steps of the full run
    passes_per_step: int = 2  # transformer passes per step (2 with CFG)
    model_config: dict[str, Any] = field(default_factory=dict)  # further model facts (FFN size, ...)
    stat_names: tuple[str, ...] = ()  # names of the per-head accuracy statistics stored per entry
    fgsim_version: str = __version__
    attention: str = "self"  # "self" (keys = queries) or "cross" (keys = kv_tokens conditioning tokens)
    kv_tokens: int | None = None  # keys N_k of a cross-attention call; None for self-attention (N_k = N_q)

    def __post_init__(self) -> None:
        # A self-attention trace with kv_tokens equal to its sequence length is the same trace as one with None:
        # normalise, so it round-trips (version 1 files carry no kv_tokens). Bad values are left for validate().
        kv = self.kv_tokens
        if self.attention == "self" and isinstance(kv, int) and not isinstance(kv, bool):
            try:
                same = kv == self.n_tokens
            except (TypeError, ValueError):
                same = False
            if same:
                object.__setattr__(self, "kv_tokens", None)

    @property
    def n_video_tokens(self) -> int:
        """Video tokens T·H·W."""
        t, h, w = self.grid
        return t * h * w

    @property
    def n_tokens(self) -> int:
        """Query sequence length N_q in tokens (video + text); for self-attention also the key count."""
        return self.n_video_tokens + self.text_tokens

    @property
    def is_cross(self) -> bool:
        """True for a cross-attention trace (keys are ``kv_tokens`` conditioning tokens, not the queries)."""
        return self.attention == "cross"

    @property
    def n_keys(self) -> int:
        """Keys N_k per attention call in tokens: ``kv_tokens`` for cross-attention, else :attr:`n_tokens`."""
        if self.is_cross and self.kv_tokens is not None:
            return int(self.kv_tokens)
        return self.n_tokens

    @property
    def n_qblocks(self) -> int:
        """Query blocks of ``block_m`` queries: ⌈N_q / M⌉."""
        return ceil_div(self.n_tokens, self.block_m)

    @property
    def format_version(self) -> int:
        """The ``.fgt`` format version this trace is written as: 1 for self-attention, 2 for cross-attention."""
        return 2 if self.is_cross else 1

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent or out-of-bounds field (bounds: ``MAX_*``)."""
        if len(self.grid) != 3 or any(not 1 <= int(g) <= MAX_TOKENS for g in self.grid):
            raise ValueError(f"grid must be three integers (T, H, W) in [1, {MAX_TOKENS}], got {self.grid}")
        bounds = {"num_layers": MAX_LAYERS, "num_heads": MAX_HEADS, "head_dim": MAX_HEAD_DIM,
                  "num_steps": MAX_STEPS, "passes_per_step": MAX_PASSES_PER_STEP}
        for name, hi in bounds.items():
            if not 1 <= int(getattr(self, name)) <= hi:
                raise ValueError(f"{name} must be in [1, {hi}], got {getattr(self, name)}")
        if not 0 <= self.text_tokens <= MAX_TOKENS:
            raise ValueError(f"text_tokens must be in [0, {MAX_TOKENS}], got {self.text_tokens}")
        if self.n_tokens > MAX_TOKENS:
            raise ValueError(f"the sequence length T·H·W + text_tokens = {self.n_tokens} exceeds {MAX_TOKENS}")
        if len(self.passes) > MAX_STEPS * MAX_PASSES_PER_STEP:
            raise ValueError(f"at most {MAX_STEPS * MAX_PASSES_PER_STEP} captured passes, got {len(self.passes)}")
        if any(not (0 <= p.index <= MAX_PASS_INDEX and 0 <= p.step <= MAX_PASS_INDEX) for p in self.passes):
            raise ValueError(f"pass index and step must be in [0, {MAX_PASS_INDEX}]")
        if len(self.stat_names) > MAX_STAT_NAMES or len(set(self.stat_names)) != len(self.stat_names):
            raise ValueError(f"stat_names must be unique and at most {MAX_STAT_NAMES}")
        if self.text_position not in TEXT_POSITIONS:
            raise ValueError(f"text_position must be one of {TEXT_POSITIONS}, got {self.text_position!r}")
        if (self.text_tokens > 0) == (self.text_position == "none"):
            raise ValueError("text_position must be 'none' exactly when text_tokens is 0")
        m_levels_for(self.block_m)
        if not self.passes or not self.layers or not self.heads:
            raise ValueError("passes, layers and heads must each list at least one captured item")
        if len({p.index for p in self.passes}) != len(self.passes):
            raise ValueError("pass indices must be unique")
        if len(set(self.layers)) != len(self.layers) or not all(0 <= x < self.num_layers for x in self.layers):
            raise ValueError(f"layers must be unique and in [0, {self.num_layers}), got {list(self.layers)}")
        if len(set(self.heads)) != len(self.heads) or not all(0 <= x < self.num_heads for x in self.heads):
            raise ValueError(f"heads must be unique and in [0, {self.num_heads}), got {list(self.heads)}")
        if self.provenance.get("kind") not in PROVENANCE_KINDS:
            raise ValueError(f"provenance['kind'] must be one of {PROVENANCE_KINDS}")
        if "name" not in self.predictor:
            raise ValueError("predictor must have a 'name'")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        kv = self.kv_tokens
        if kv is not None and (not isinstance(kv, int) or isinstance(kv, bool)):
            raise ValueError(f"kv_tokens must be an integer or None, got {kv!r}")
        if self.is_cross and (kv is None or not 1 <= kv <= MAX_TOKENS):
            raise ValueError(f"cross-attention requires kv_tokens in [1, {MAX_TOKENS}] (the number of keys), got {kv}")
        if not self.is_cross and kv is not None and kv != self.n_tokens:
            raise ValueError(f"self-attention forbids kv_tokens ({kv}) different from the sequence length "
                             f"n_tokens ({self.n_tokens})")

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field.

        ``attention`` and ``kv_tokens`` appear only for cross-attention (format version 2), so a
        self-attention trace's metadata is exactly version 1's.
        """
        out = asdict(self)
        out["grid"] = list(self.grid)
        out["passes"] = [asdict(p) for p in self.passes]
        out["layers"] = list(self.layers)
        out["heads"] = list(self.heads)
        out["stat_names"] = list(self.stat_names)
        if not self.is_cross:
            del out["attention"], out["kv_tokens"]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TraceMeta:
        """Build from :meth:`to_json`'s dict; raises ``KeyError``/``TypeError``/``ValueError`` on bad fields."""
        required = ("model", "num_layers", "num_heads", "head_dim", "grid", "text_tokens", "text_position",
                    "block_m", "passes", "layers", "heads", "predictor", "provenance")
        for name in required:
            if name not in data:
                raise KeyError(name)

        def ints(name: str) -> tuple[int, ...]:
            value = data[name]
            if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
                raise TypeError(f"metadata field '{name}' must be a list of integers")
            return tuple(value)

        def integer(name: str, default: int | None = None) -> int:
            value = data.get(name, default)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"metadata field '{name}' must be an integer")
            return value

        def mapping(name: str) -> dict[str, Any]:
            value = data.get(name, {})
            if not isinstance(value, dict):
                raise TypeError(f"metadata field '{name}' must be an object")
            return dict(value)

        def string(name: str, default: str | None = None) -> str:
            value = data.get(name, default)
            if not isinstance(value, str):
                raise TypeError(f"metadata field '{name}' must be a string")
            return value

        passes_raw = data["passes"]
        if not isinstance(passes_raw, list) or not all(isinstance(p, dict) for p in passes_raw):
            raise TypeError("metadata field 'passes' must be a list of objects")
        for p in passes_raw:
            if not all(isinstance(p.get(k), int) and not isinstance(p.get(k), bool) for k in ("index", "step")):
                raise TypeError("each of metadata 'passes' needs integer 'index' and 'step'")
            if not isinstance(p.get("branch", "cond"), str):
                raise TypeError("a pass's 'branch' must be a string")
        passes = tuple(PassInfo(p["index"], p["step"], p.get("branch", "cond")) for p in passes_raw)
        grid = ints("grid")
        if len(grid) != 3:
            raise ValueError("metadata field 'grid' must hold three integers (T, H, W)")
        attention = data.get("attention", "self")
        if not isinstance(attention, str):
            raise TypeError("metadata field 'attention' must be a string")
        kv_tokens = data.get("kv_tokens")
        if kv_tokens is not None and (not isinstance(kv_tokens, int) or isinstance(kv_tokens, bool)):
            raise TypeError("metadata field 'kv_tokens' must be an integer or null")
        stat_names = data.get("stat_names", [])
        if not isinstance(stat_names, list) or not all(isinstance(s, str) for s in stat_names):
            raise TypeError("metadata field 'stat_names' must be a list of strings")
        meta = cls(
            model=string("model"),
            num_layers=integer("num_layers"),
            num_heads=integer("num_heads"),
            head_dim=integer("head_dim"),
            grid=(grid[0], grid[1], grid[2]),
            text_tokens=integer("text_tokens"),
            text_position=string("text_position"),
            block_m=integer("block_m"),
            passes=passes,
            layers=ints("layers"),
            heads=ints("heads"),
            predictor=mapping("predictor"),
            provenance=mapping("provenance"),
            num_steps=integer("num_steps", 50),
            passes_per_step=integer("passes_per_step", 2),
            model_config=mapping("model_config"),
            stat_names=tuple(stat_names),
            fgsim_version=string("fgsim_version", "unknown"),
            attention=attention,
            kv_tokens=kv_tokens,
        )
        meta.validate()
        return meta


def _entry_stem(pass_index: int, layer: int) -> str:
    return f"p{pass_index:05d}_l{layer:03d}"


def xor_up(packed: np.ndarray) -> np.ndarray:
    """The stored form of a packed mask: each query block's row XOR the previous block's row.

    Neighbouring query blocks keep nearly the same keys, so the filtered rows are mostly zero and deflate
    compresses them about twice as well (PNG's "Up" filter, in XOR form).
    """
    out = packed.copy()
    out[:, 1:] ^= packed[:, :-1]
    return out


def xor_up_inverse(stored: np.ndarray) -> np.ndarray:
    """Undo :func:`xor_up` (a running XOR down the query blocks)."""
    return np.bitwise_xor.accumulate(stored, axis=1)


def _member_info(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """A member header with a fixed timestamp, so equal traces are equal files, byte for byte."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    for attr in ("_compresslevel", "compress_level"):  # the name changed in Python 3.13
        if attr in zipfile.ZipInfo.__slots__:
            setattr(info, attr, zf.compresslevel)
    return info


def _write_npy(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(_member_info(zf, name), "w", force_zip64=True) as fh:
        np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)


class TraceWriter:
    """Write a ``.fgt`` trace entry by entry; the file appears atomically when the ``with`` block ends cleanly.

    ``add(pass_index, layer, mask)`` takes a bool mask ``(len(meta.heads), meta.n_qblocks, meta.n_keys)``.
    The file is format version 1 for a self-attention trace and 2 for a cross-attention one.
    On an exception inside the block nothing is written and any older file at ``path`` is left untouched.
    """

    def __init__(self, path: str | os.PathLike[str], meta: TraceMeta, *, compresslevel: int = 6) -> None:
        try:
            meta.validate()
        except ValueError as exc:
            raise FgTraceError(path, f"invalid metadata: {exc}") from None
        self.path = Path(path)
        self.meta = meta
        self._compresslevel = compresslevel
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._zf: zipfile.ZipFile | None = None
        self._entries: list[dict[str, Any]] = []
        self._seen: set[tuple[int, int]] = set()
        self._pass_ids = {p.index for p in meta.passes}

    def __enter__(self) -> TraceWriter:
        if not self.path.parent.is_dir():
            raise FgTraceError(self.path, "cannot write: its directory does not exist")
        self._remove_stale_partials()
        self._zf = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_DEFLATED,
                                   compresslevel=self._compresslevel, allowZip64=True)
        return self

    def _remove_stale_partials(self) -> None:
        """Delete temporary files of earlier writes to this path whose writer process no longer exists (a
        writer killed before it could clean up, e.g. by SIGKILL or a power cut)."""
        for tmp in self.path.parent.glob(f".{self.path.name}.*.partial"):
            pid_text = tmp.name[len(self.path.name) + 2:-len(".partial")]
            if not pid_text.isdigit() or int(pid_text) == os.getpid():
                continue
            try:
                os.kill(int(pid_text), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except OSError:
                continue  # alive under another user, or cannot tell: leave it

    def add(self, pass_index: int, layer: int, mask: np.ndarray,
            stats: Mapping[str, np.ndarray] | None = None) -> None:
        """Store one captured (pass, layer): its bool slice mask for every captured head, and optional stats."""
        if self._zf is None:
            raise RuntimeError("TraceWriter.add called outside its 'with' block")
        meta = self.meta
        key = (int(pass_index), int(layer))
        if key[0] not in self._pass_ids:
            raise FgTraceError(self.path, f"pass {key[0]} is not among the metadata's captured passes")
        if key[1] not in meta.layers:
            raise FgTraceError(self.path, f"layer {key[1]} is not among the metadata's captured layers")
        if key in self._seen:
            raise FgTraceError(self.path, f"entry (pass {key[0]}, layer {key[1]}) was added twice")
        mask = np.asarray(mask)
        expected = (len(meta.heads), meta.n_qblocks, meta.n_keys)
        if mask.shape != expected or mask.dtype != bool:
            raise FgTraceError(self.path, f"mask for (pass {key[0]}, layer {key[1]}) is {mask.dtype} "
                                          f"{mask.shape}, expected bool {expected}")
        stem = _entry_stem(*key)
        entry: dict[str, Any] = {"pass": key[0], "layer": key[1], "mask": f"masks/{stem}.npy", "counts": {}}
        packed = pack_mask(mask)
        _write_npy(self._zf, entry["mask"], xor_up(packed))
        for m in m_levels_for(meta.block_m):
            levels = [tile_counts_packed(packed, meta.n_keys, meta.block_m, m, n) for n in N_LEVELS]
            counts = np.stack([np.stack([t for t, _ in levels]), np.stack([k for _, k in levels])])
            name = f"counts/{stem}_m{m}.npy"
            _write_npy(self._zf, name, counts.astype(np.int32))
            entry["counts"][str(m)] = name
        if meta.stat_names:
            stats = stats or {}
            missing = [s for s in meta.stat_names if s not in stats]
            if missing:
                raise FgTraceError(self.path, f"stats for (pass {key[0]}, layer {key[1]}) lack {missing}")
            table = np.stack([np.asarray(stats[s], dtype=np.float64).reshape(len(meta.heads))
                              for s in meta.stat_names])
            entry["stats"] = f"stats/{stem}.npy"
            _write_npy(self._zf, entry["stats"], table)
        elif stats:
            raise FgTraceError(self.path, "stats given but the metadata declares no stat_names")
        self._entries.append(entry)
        self._seen.add(key)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        zf, self._zf = self._zf, None
        try:
            if exc_type is None and zf is not None:
                if not self._entries:
                    raise FgTraceError(self.path, "no entries were added; refusing to write an empty trace")
                doc = {"format": FORMAT_NAME, "version": self.meta.format_version, "meta": self.meta.to_json(),
                       "entries": self._entries}
                try:
                    text = json.dumps(doc, indent=1, allow_nan=False)
                except (TypeError, ValueError) as exc:  # NaN/Infinity or a non-JSON value in the metadata
                    raise FgTraceError(self.path, f"metadata cannot be stored as JSON ({exc})") from None
                if _json_depth(doc) > MAX_JSON_DEPTH or len(text.encode()) > MAX_META_BYTES:
                    raise FgTraceError(self.path, f"metadata nests deeper than {MAX_JSON_DEPTH} levels or exceeds "
                                                  f"{MAX_META_BYTES} bytes; readers would refuse it")
                zf.writestr(_member_info(zf, META_MEMBER), text)
                zf.close()
                with open(self._tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(self._tmp, self.path)
        finally:
            if zf is not None and zf.fp is not None:
                zf.close()
            if self._tmp.exists():
                self._tmp.unlink()


def write_trace(path: str | os.PathLike[str], meta: TraceMeta,
                entries: Mapping[tuple[int, int], np.ndarray]) -> Path:
    """Write a whole trace at once from ``{(pass, layer): mask}``; returns the path."""
    with TraceWriter(path, meta) as w:
        for (p, layer), mask in entries.items():
            w.add(p, layer, mask)
    return Path(path)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a trace")


def _json_depth(doc: Any) -> int:
    """Nesting depth of a parsed JSON document (iterative: safe on any depth)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            stack.extend((c, depth + 1) for c in (node.values() if isinstance(node, dict) else node))
    return deepest


def _valid_entry(e: Any) -> bool:
    """True when an ``entries`` item has integer pass/layer and string member names."""
    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    return (isinstance(e, dict) and is_int(e.get("pass")) and is_int(e.get("layer"))
            and isinstance(e.get("mask"), str) and isinstance(e.get("counts"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in e["counts"].items())
            and isinstance(e.get("stats", ""), str))


class Trace:
    """A ``.fgt`` trace opened for reading. Use :func:`open_trace`; close it (or use ``with``) when done.

    Opening reads ``fgt.json``, every counts member and every stats member, and checks them against each other
    (:func:`fgsim.views.check_counts`), in time and memory proportional to the counts; masks are read on demand.
    Every problem raises :class:`FgTraceError` with a one-line message naming the file: the reader never reads
    more than a member's expected size (the ZIP directory's sizes are checked against the metadata's shapes
    before anything is inflated), and declared sizes are bounded by the ``MAX_*`` constants of this module.
    """

    #: Counts kept in memory after the open-time check, in bytes (larger traces re-read counts on demand).
    COUNTS_CACHE_BYTES = 256 * 2**20

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] | None = None
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
        except FileNotFoundError:
            raise FgTraceError(self.path, "no such file") from None
        except IsADirectoryError:
            raise FgTraceError(self.path, "is a directory, not a .fgt file") from None
        except (OSError, ValueError) as exc:
            raise FgTraceError(self.path, f"cannot be opened ({getattr(exc, 'strerror', None) or exc})") from None
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise FgTraceError(self.path, "is a directory, not a .fgt file")
            if not stat.S_ISREG(mode):
                raise FgTraceError(self.path, "is not a regular file (a device, pipe or socket), not a .fgt file")
            self._fh = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        try:
            self._zf = zipfile.ZipFile(self._fh, "r")
        except Exception:  # BadZipFile, OSError, NotImplementedError (ZIP version), UnicodeDecodeError (names), ...
            self._fh.close()
            raise FgTraceError(self.path, "not a readable .fgt file (truncated, corrupt or not a ZIP archive)") from None
        try:
            self._load_index()
            self._check_all_counts()
        except BaseException:
            self.close()
            raise

    # -- index -----------------------------------------------------------------------------------------
    def _err(self, problem: str) -> FgTraceError:
        return FgTraceError(self.path, problem)

    def _read_member(self, name: str, max_bytes: int, min_bytes: int = 0) -> bytes:
        """A member's bytes; its size in the ZIP directory must lie in [min_bytes, max_bytes], checked before
        inflating, and at most that many bytes are ever inflated."""
        try:
            info = self._zf.getinfo(name)
        except KeyError:
            raise self._err(f"member '{name}' is missing") from None
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self._err(f"member '{name}' uses ZIP compression method {info.compress_type}; "
                            ".fgt members are stored or deflated")
        if info.flag_bits & 0x1:
            raise self._err(f"member '{name}' is encrypted")
        if not min_bytes <= info.file_size <= max_bytes:
            raise self._err(f"member '{name}' declares {info.file_size} bytes uncompressed, expected "
                            + (f"{min_bytes}" if min_bytes == max_bytes else f"{min_bytes} to {max_bytes}"))
        try:
            with self._zf.open(info) as fh:
                data = fh.read(info.file_size + 1)  # ZipExtFile inflates at most what read() asks for
        except Exception as exc:  # BadZipFile (CRC, header), zlib.error, EOFError, NotImplementedError, ...
            raise self._err(f"member '{name}' is corrupt ({type(exc).__name__}: {exc})") from None
        if len(data) != info.file_size:
            raise self._err(f"member '{name}' holds {len(data)} bytes, its ZIP header says {info.file_size}")
        return data

    def _load_index(self) -> None:
        raw = self._read_member(META_MEMBER, MAX_META_BYTES)
        try:
            doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=finite_float)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON errors, huge integers
            raise self._err(f"metadata member '{META_MEMBER}' is not valid JSON ({type(exc).__name__}: {exc})") from None
        if _json_depth(doc) > MAX_JSON_DEPTH:
            raise self._err(f"metadata member '{META_MEMBER}' nests deeper than {MAX_JSON_DEPTH} levels")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise self._err("not an fgt trace (metadata 'format' is not 'fgt')")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise self._err("metadata 'version' is missing or not an integer")
        if version not in SUPPORTED_VERSIONS:
            raise self._err(f"format version {version} is not supported (this fgsim {__version__} reads "
                            f"version 1 to {FORMAT_VERSION}); upgrade fgsim")
        if "meta" not in doc or not isinstance(doc["meta"], dict):
            raise self._err("metadata field 'meta' is missing")
        try:
            self.meta = TraceMeta.from_json(doc["meta"])
        except KeyError as exc:
            raise self._err(f"metadata field '{exc.args[0]}' is missing") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise self._err(f"invalid metadata: {exc}") from None
        if version == 1 and self.meta.is_cross:
            raise self._err("format version 1 holds self-attention only, but the metadata says cross-attention")
        self.version: int = version  # format version of the file: 1 (self-attention) or 2 (cross-attention)
        entries = doc.get("entries")
        if not isinstance(entries, list) or not entries:
            raise self._err("metadata lists no entries")
        self._entries: dict[tuple[int, int], dict[str, Any]] = {}
        pass_ids = {p.index for p in self.meta.passes}
        layer_ids = set(self.meta.layers)
        members = set(self._zf.namelist())
        want_m = {str(m) for m in m_levels_for(self.meta.block_m)}
        for e in entries:
            if not _valid_entry(e):
                raise self._err("an entry in the metadata is malformed (needs integer 'pass' and 'layer', "
                                "member names 'mask', 'counts' {M: name} and optionally 'stats')")
            key = (e["pass"], e["layer"])
            if key[0] not in pass_ids or key[1] not in layer_ids:
                raise self._err(f"entry (pass {key[0]}, layer {key[1]}) is not among the captured passes/layers")
            if key in self._entries:
                raise self._err(f"entry (pass {key[0]}, layer {key[1]}) appears twice")
            names = [e["mask"], *e["counts"].values()] + ([e["stats"]] if "stats" in e else [])
            missing = [n for n in names if n not in members]
            if missing:
                raise self._err(f"entry (pass {key[0]}, layer {key[1]}): member '{missing[0]}' is missing")
            if set(e["counts"]) != want_m:
                raise self._err(f"entry (pass {key[0]}, layer {key[1]}): counts do not cover "
                                f"M = {list(m_levels_for(self.meta.block_m))}")
            if self.meta.stat_names and "stats" not in e:
                raise self._err(f"entry (pass {key[0]}, layer {key[1]}): stats member is missing")
            self._entries[key] = e
        work = len(self._entries) * self.meta.num_heads * self.meta.n_qblocks
        if work > MAX_WORK_CTAS:
            raise self._err(f"{len(self._entries)} entries x {self.meta.num_heads} heads x {self.meta.n_qblocks} "
                            f"query blocks = {work} CTAs to price, more than {MAX_WORK_CTAS}")

    def _array(self, name: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> np.ndarray:
        """Read a ``.npy`` member that must hold exactly ``dtype`` ``shape`` (C order); sizes checked first."""
        dtype = np.dtype(dtype)
        body_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if body_bytes > MAX_MEMBER_BYTES:
            raise self._err(f"member '{name}' would hold {body_bytes} bytes ({dtype} {shape}), more than the "
                            f"{MAX_MEMBER_BYTES} a member may hold")
        raw = self._read_member(name, body_bytes + NPY_HEADER_MAX, body_bytes + 10)
        fh = io.BytesIO(raw[:NPY_HEADER_MAX])
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"npy version {version}")
        except Exception as exc:  # numpy raises ValueError, but its header parser may raise TokenError, SyntaxError, ...
            raise self._err(f"member '{name}' is not a valid .npy array ({type(exc).__name__}: {exc})") from None
        if got_dtype != dtype or fortran:
            raise self._err(f"member '{name}' has dtype {got_dtype}{' (Fortran order)' if fortran else ''}, "
                            f"expected {dtype}")
        if tuple(got_shape) != shape:
            raise self._err(f"member '{name}' has shape {tuple(got_shape)}, expected {shape}")
        body = memoryview(raw)[fh.tell():]
        if len(body) != body_bytes:
            raise self._err(f"member '{name}' holds {len(body)} data bytes, expected {body_bytes}")
        return np.frombuffer(body, dtype=dtype).reshape(shape).copy()

    def _read_counts(self, pass_index: int, layer: int) -> dict[int, np.ndarray]:
        """Every counts level of one entry, read and checked against each other (:func:`check_counts`)."""
        e = self._entry(pass_index, layer)
        levels = {}
        for m in m_levels_for(self.meta.block_m):
            shape = (2, len(N_LEVELS), len(self.meta.heads), ceil_div(self.n_tokens, m))
            levels[m] = self._array(e["counts"][str(m)], np.dtype("<i4"), shape)
        problem = check_counts(levels, self.meta.block_m, self.n_tokens, self.n_keys)
        if problem:
            raise self._err(f"counts of (pass {pass_index}, layer {layer}) are inconsistent: {problem}")
        return levels

    def _check_all_counts(self) -> None:
        """Open-time check of every entry's counts and stats; keeps the counts if they are small."""
        heads = len(self.meta.heads)
        per_entry = sum(8 * heads * ceil_div(self.n_tokens, m) * 4 for m in m_levels_for(self.meta.block_m))
        keep = per_entry * len(self._entries) <= self.COUNTS_CACHE_BYTES
        self._counts_cache: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for key in self._entries:
            levels = self._read_counts(*key)
            if keep:
                self._counts_cache[key] = levels
            self.stats(*key)

    def _entry(self, pass_index: int, layer: int) -> dict[str, Any]:
        try:
            return self._entries[(int(pass_index), int(layer))]
        except KeyError:
            raise self._err(f"has no entry for (pass {pass_index}, layer {layer})") from None

    # -- public API ------------------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        """Query sequence length N_q in tokens (for self-attention also the key count)."""
        return self.meta.n_tokens

    @property
    def n_keys(self) -> int:
        """Keys N_k per attention call in tokens (``kv_tokens`` for cross-attention, else :attr:`n_tokens`)."""
        return self.meta.n_keys

    @property
    def n_qblocks(self) -> int:
        """Query blocks of the stored size M."""
        return self.meta.n_qblocks

    def entries(self) -> list[tuple[int, int]]:
        """Captured (pass index, layer) pairs in file order."""
        return list(self._entries)

    def _all_counts(self, pass_index: int, layer: int, m: int) -> np.ndarray:
        e = self._entry(pass_index, layer)
        if str(m) not in e["counts"]:
            raise ValueError(f"m={m} is not derivable from the stored block_m={self.meta.block_m} "
                             f"(choose from {list(m_levels_for(self.meta.block_m))})")
        key = (int(pass_index), int(layer))
        levels = self._counts_cache.get(key) or self._read_counts(*key)
        return levels[m].copy()

    def counts(self, pass_index: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        """Kept M×n tiles per query block: int32 ``(heads, ⌈N_q/m⌉)``; n = 1 gives kept keys. No mask unpacking."""
        m = m or self.meta.block_m
        if n not in N_LEVELS:
            raise ValueError(f"n must be one of {N_LEVELS}, got {n}")
        return self._all_counts(pass_index, layer, m)[0, N_LEVELS.index(n)]

    def covered_keys(self, pass_index: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        """Real keys (of N_k) inside the kept M×n tiles per query block: int32 ``(heads, ⌈N_q/m⌉)``."""
        m = m or self.meta.block_m
        if n not in N_LEVELS:
            raise ValueError(f"n must be one of {N_LEVELS}, got {n}")
        return self._all_counts(pass_index, layer, m)[1, N_LEVELS.index(n)]

    def packed_mask(self, pass_index: int, layer: int) -> np.ndarray:
        """The stored bit-packed mask: uint8 ``(heads, QB, ⌈N_k/8⌉)``."""
        e = self._entry(pass_index, layer)
        shape = (len(self.meta.heads), self.n_qblocks, ceil_div(self.n_keys, 8))
        return xor_up_inverse(self._array(e["mask"], np.dtype("uint8"), shape))

    def mask(self, pass_index: int, layer: int) -> np.ndarray:
        """The M×1 slice mask: bool ``(heads, QB, N_k)``, checked against the stored counts."""
        packed = self.packed_mask(pass_index, layer)
        if self.n_keys % 8 and (packed[..., -1] >> (self.n_keys % 8)).any():
            raise self._err(f"mask of (pass {pass_index}, layer {layer}) sets bits past key {self.n_keys}")
        mask = unpack_mask(packed, self.n_keys)
        stored = self.counts(pass_index, layer)
        actual = mask.sum(axis=2, dtype=np.int64)
        bad = np.argwhere(actual != stored)
        if bad.size:
            h, b = bad[0]
            raise self._err(f"kept-key counts disagree with the mask of (pass {pass_index}, layer {layer}) "
                            f"at head {int(h)}, query block {int(b)}: stored {int(stored[h, b])}, "
                            f"mask has {int(actual[h, b])}")
        return mask

    def coarse_mask(self, pass_index: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        """The M×n tile mask: bool ``(heads, ⌈N_q/m⌉, ⌈N_k/n⌉)``."""
        return coarsen(self.mask(pass_index, layer), self.meta.block_m, m or self.meta.block_m, n)

    def csr(self, pass_index: int, layer: int, m: int | None = None, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """CSR of kept key tiles per (head, query block): ``(offsets int64, indices int32)`` in units of n keys."""
        from fgsim.views import csr_index

        return csr_index(self.mask(pass_index, layer), self.meta.block_m, m or self.meta.block_m, n)

    def blocks(self, pass_index: int, layer: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Block lists for the block-sparse kernel: CSR of kept m×m blocks per query block of size m."""
        return self.csr(pass_index, layer, m, m)

    def stats(self, pass_index: int, layer: int) -> dict[str, np.ndarray]:
        """Per-head accuracy statistics of the mask predictor: ``{name: float64 (heads,)}`` (may be empty)."""
        e = self._entry(pass_index, layer)
        if not self.meta.stat_names:
            return {}
        table = self._array(e["stats"], np.dtype("<f8"), (len(self.meta.stat_names), len(self.meta.heads)))
        for i, name in enumerate(self.meta.stat_names):
            lo, hi = STAT_RANGES.get(name, (-np.inf, np.inf))
            row = table[i][~np.isnan(table[i])]
            if row.size and (row.min() < lo or row.max() > hi):
                raise self._err(f"stat '{name}' of (pass {pass_index}, layer {layer}) lies outside [{lo}, {hi}]")
        return {name: table[i] for i, name in enumerate(self.meta.stat_names)}

    def entry_density(self, pass_index: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        """Kept fraction (0–1) of the N_q × N_k attention area per head at M×n tiles: float64 ``(heads,)``."""
        m = m or self.meta.block_m
        covered = self.covered_keys(pass_index, layer, m, n)
        return np.array([density_from_counts(covered[h:h + 1], self.n_tokens, self.n_keys, m)
                         for h in range(covered.shape[0])])

    def density(self, m: int | None = None, n: int = 1) -> float:
        """Kept fraction (0–1) of the N_q × N_k attention area over all entries and heads at M×n tiles (counts)."""
        values = [self.entry_density(p, layer, m, n).mean() for p, layer in self.entries()]
        return float(np.mean(values))

    def verify(self) -> None:
        """Read every member and check every count against its mask; raises :class:`FgTraceError`."""
        for p, layer in self.entries():
            self.mask(p, layer)  # checks the kept keys per query block and the padding bits
            packed = self.packed_mask(p, layer)
            for m in m_levels_for(self.meta.block_m):
                stored = self._all_counts(p, layer, m)
                for i, n in enumerate(N_LEVELS):
                    tiles, keys = tile_counts_packed(packed, self.n_keys, self.meta.block_m, m, n)
                    if not (np.array_equal(tiles, stored[0, i]) and np.array_equal(keys, stored[1, i])):
                        raise self._err(f"stored counts at M={m}, N={n} of (pass {p}, layer {layer}) "
                                        "disagree with the mask")
            self.stats(p, layer)

    def iter_masks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(pass, layer, mask)`` for every entry, reading one entry at a time."""
        for p, layer in self.entries():
            yield p, layer, self.mask(p, layer)

    def close(self) -> None:
        """Close the underlying archive and file."""
        zf = getattr(self, "_zf", None)
        if zf is not None:
            zf.close()
        if self._fh is not None:
            self._fh.close()

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.meta
        keys = f", cross-attention N_k={self.n_keys}" if m.is_cross else ""
        return (f"Trace({str(self.path)!r}, model={m.model!r}, grid={m.grid}, N={self.n_tokens}{keys}, M={m.block_m}, "
                f"entries={len(self._entries)}, heads={len(m.heads)})")


def open_trace(path: str | os.PathLike[str]) -> Trace:
    """Open a ``.fgt`` trace for reading; raises :class:`FgTraceError` naming the file and the problem."""
    return Trace(path)


def default_trace_path() -> Path:
    """The small synthetic trace shipped inside the package, used when a command is given no trace."""
    return Path(__file__).parent / "data" / "default.fgt"


def subset_trace(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
                 passes: Iterable[int] | None = None, layers: Iterable[int] | None = None) -> Path:
    """Copy the entries of ``src`` whose pass and layer are selected into a new trace ``dst`` (atomic write).

    ``None`` keeps every captured pass (layer). The metadata lists only the passes and layers that remain, and
    its provenance records the subset. ``dst`` must differ from ``src``. Returns ``dst``.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise FgTraceError(dst, "subset_trace cannot overwrite its source; write to another path")
    with open_trace(src) as tr:
        want_p = None if passes is None else {int(p) for p in passes}
        want_l = None if layers is None else {int(x) for x in layers}
        keep = [(p, lay) for p, lay in tr.entries()
                if (want_p is None or p in want_p) and (want_l is None or lay in want_l)]
        if not keep:
            raise FgTraceError(src, f"no entries match passes {sorted(want_p) if want_p is not None else 'all'} "
                                    f"and layers {sorted(want_l) if want_l is not None else 'all'}")
        kept_p = {p for p, _ in keep}
        kept_l = {lay for _, lay in keep}
        meta = tr.meta
        prov = dict(meta.provenance)
        prov["subset_of"] = {"file": src.name, "passes": [p.index for p in meta.passes], "layers": list(meta.layers)}
        new_meta = TraceMeta(**{**{f: getattr(meta, f) for f in meta.__dataclass_fields__},
                                "passes": tuple(p for p in meta.passes if p.index in kept_p),
                                "layers": tuple(x for x in meta.layers if x in kept_l),
                                "provenance": prov})
        with TraceWriter(dst, new_meta) as w:
            for p, lay in keep:
                w.add(p, lay, tr.mask(p, lay), tr.stats(p, lay) or None)
    return dst
