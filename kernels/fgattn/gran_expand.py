"""Gran-16 / 64 indices run by the gran-1 Gluon list kernel (issue 12, session 17, helper K): the expansion.

A gran-``g`` :class:`fgattn.FgIndex` lists, per query block, kept runs of ``g`` contiguous keys (run start ``s``
keeps keys ``s·g .. s·g + g − 1``, the last run clipped at ``n_keys``).  That is a gran-1 index whose kept keys come
in runs: :func:`expand_index` writes it out (same rows, same ``order``; offsets int64, indices int32 key numbers,
sorted), so the packaged gran-1 Gluon ws2 list kernel (:mod:`fgattn.gluon_fg_list`) runs a gran-16 / 64 call with
exactly the attention the tl kernel computes.  The expansion is host-side work done once per index and memoised
like the list plan (FlashInfer's plan / run split): :func:`cached_expanded` builds it on first use outside CUDA-graph
capture and returns None under capture when none is memoised (the caller then runs the entry's tl kernel:
``fgattn.fg_route`` says so); :func:`prepare_expanded` builds it (and the list plan) before a capture.

The launch table chooses this route per entry: ``extra.gluon.expand: true`` on an ``impl: gluon`` fg D128 M128
gran-16 / 64 entry (``fgattn.launch.EXPAND_KEYS``, validated by ``fgattn.launch.check_impl``).
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["expand_runs", "expand_index", "cached_expanded", "has_expanded", "prepare_expanded"]


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gran_expand: {msg}")


def expand_runs(runs: list[int], gran_n: int, n_keys: int) -> list[int]:
    """Pure-Python reference: the kept keys of one row's sorted run starts ``runs`` (units of ``gran_n`` keys),
    clipped at ``n_keys``."""
    if not isinstance(gran_n, int) or isinstance(gran_n, bool) or gran_n < 1:
        _fail(f"gran_n={gran_n!r} must be a positive int")
    out: list[int] = []
    for s in runs:
        out.extend(k for k in range(s * gran_n, s * gran_n + gran_n) if k < n_keys)
    return out


def expand_index(index: Any) -> Any:
    """The gran-1 :class:`fgattn.FgIndex` of ``index``'s kept keys (torch ops on the index's device, one host sync
    for the clipped size when ``n_keys`` is not a multiple of ``gran_n``); ``index`` itself when ``gran_n`` is 1.
    Not under CUDA-graph capture."""
    import torch

    from .index import FgIndex

    if not isinstance(index, FgIndex):
        _fail(f"index must be an FgIndex, got {type(index).__name__}")
    g = int(index.gran_n)
    if g == 1:
        return index
    if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        _fail("expand_index allocates a size read on the host: expand before CUDA-graph capture")
    idx = index.indices
    dev = idx.device
    n = int(index.n_keys)
    ar = torch.arange(g, dtype=torch.int32, device=dev)
    keys = idx.to(torch.int32)[:, None] * g + ar  # (nnz, g) int32: key numbers < n_keys + g < 2^31
    off = index.offsets.to(torch.int64)
    if n % g == 0:
        flat = keys.reshape(-1)
        new_off = off * g
    else:
        last = index.n_tiles - 1  # the one run start whose run passes n_keys
        per = torch.full_like(idx, g, dtype=torch.int64)
        per[idx == last] = n % g
        cs = torch.zeros(idx.numel() + 1, dtype=torch.int64, device=dev)
        torch.cumsum(per, 0, out=cs[1:])
        new_off = cs[off]
        flat = keys[keys < n]  # row-major: each row's keys stay sorted
    del keys
    return FgIndex(new_off, flat, index.block_m, 1, n, index.batch, index.heads, index.n_qblocks, index.order)


#: expansions memoised per index: keyed by the identity of the gran-g index's ``offsets`` (weak reference: an entry
#: lives as long as that tensor), then by identity / data pointer / in-place version of offsets, indices and order.
#: An entry is never replaced (a CUDA graph captured with it keeps reading its tensors).
_EXPANDED: dict[int, tuple[Any, dict[tuple, Any]]] = {}


def _memo_of(offsets: Any, create: bool = False) -> dict[tuple, Any] | None:
    hit = _EXPANDED.get(id(offsets))
    if hit is not None and hit[0]() is offsets:
        return hit[1]
    if not create:
        return None
    key = id(offsets)
    ref = weakref.ref(offsets, lambda _r, key=key: _EXPANDED.pop(key, None))
    _EXPANDED[key] = (ref, {})
    return _EXPANDED[key][1]


def _key(index: Any) -> tuple:
    t = [index.offsets, index.indices, index.order]
    return tuple((None, -1, -1) if x is None else (id(x), x.data_ptr(), x._version) for x in t)


def _capturing() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def cached_expanded(index: Any) -> Any | None:
    """The memoised :func:`expand_index` of ``index`` (``index`` itself at gran 1), built on first use; None when
    none is memoised and a CUDA graph is being captured (the caller runs the tl kernel then)."""
    if index.gran_n == 1:
        return index
    per = _memo_of(index.offsets)
    key = _key(index)
    if per is not None and key in per:
        return per[key]
    if _capturing():
        return None
    ex = expand_index(index)
    _memo_of(index.offsets, create=True)[key] = ex
    return ex


def has_expanded(index: Any) -> bool:
    """An expansion of ``index`` is memoised (or it needs none: gran 1)."""
    if index.gran_n == 1:
        return True
    per = _memo_of(index.offsets)
    return per is not None and _key(index) in per


def prepare_expanded(index: Any, programs: int | None = None, c_row: float | None = None) -> Any:
    """Expand ``index`` and build its list plan (``fgattn.gluon_fg_list.prepare_list_plan``, row cost ``c_row``:
    default the planner's) before a CUDA-graph capture; returns the expanded index."""
    if _capturing():
        _fail("prepare_expanded reads sizes on the host: call it before CUDA-graph capture")
    from .gluon_fg_list import prepare_list_plan

    ex = cached_expanded(index)
    prepare_list_plan(ex, programs, **({} if c_row is None else {"c_row": c_row}))
    return ex
