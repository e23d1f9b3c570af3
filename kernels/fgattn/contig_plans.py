"""Row plans of the Gluon contig form (:mod:`fgattn.gluon_contig`) memoised for fgattn's dispatch (issue 12).

An ``impl: gluon`` dense / block D128 M128 entry of form ``contig`` (``fgattn.launch.CONTIG_KEYS``) runs
``gluon_contig.contig_attention_gluon`` over a host-built row plan (``gluon_contig.plan_contig``: greedy list
scheduling in launch order, the kept-key CSR the consumers read).  Building a plan reads the block index's row
counts on the host, so it cannot happen under CUDA-graph capture; as for the fg entry's list schedule
(``fgattn.gluon_fg_list.cached_list_plan``, the FlashInfer plan / run split) a plan is built on first use and
reused:

* block-sparse: per index, in the same store as the fg list plans (keyed by the identity of the index's
  ``offsets`` tensor, held by a weak reference, then by the identity and in-place version of ``offsets`` /
  ``indices`` / ``order`` and the program count; a plan lives as long as its index's offsets);
* dense: per (batch, heads, n_q, n_kv, programs, device); the plan depends on nothing else.

A memoised plan is never replaced (a CUDA graph captured with it keeps reading its tensors).  A block plan is
stored without the index's own CSR tensors (``boffsets`` / ``blocks``), which are re-attached from the index on
every use: a stored plan holding them would keep its index's ``offsets`` alive and so never be freed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["cached_contig_plan", "has_contig_plan", "prepare_contig_plan", "capturing"]

#: dense plans: (batch, heads, n_q, n_kv, programs, device) -> ContigPlan
_DENSE: dict[tuple, Any] = {}


def capturing() -> bool:
    """A CUDA graph is being captured on the current stream (no host work allowed)."""
    from .gluon_fg_list import _capturing

    return _capturing()


def _slot(batch: int, heads: int, n_q: int, n_kv: int, programs: int, block_index: Any,
          device: Any) -> tuple[dict | None, tuple]:
    """(the memo dict holding the call's plan or None if it has none yet, the plan's key in it)."""
    from . import gluon_fg_list as fl

    if block_index is None:
        return _DENSE, (batch, heads, n_q, n_kv, programs, str(device))
    return fl._plans_of(block_index.offsets), ("contig", *fl._plan_key(block_index, programs))


def has_contig_plan(*, batch: int, heads: int, n_q: int, n_kv: int, programs: int, block_index: Any = None,
                    device: Any = "cpu") -> bool:
    """A plan of the call is memoised (:func:`cached_contig_plan` needs no host work)."""
    memo, key = _slot(batch, heads, n_q, n_kv, programs, block_index, device)
    return memo is not None and key in memo


def cached_contig_plan(*, batch: int, heads: int, n_q: int, n_kv: int, programs: int, block_index: Any = None,
                       device: Any = "cpu") -> Any | None:
    """The memoised ``gluon_contig.plan_contig`` plan of a dense (``block_index`` None) or block-sparse call with
    ``programs`` programs, built on first use; None when none is memoised and a CUDA graph is being captured."""
    from . import gluon_fg_list as fl
    from .gluon_contig import plan_contig

    memo, key = _slot(batch, heads, n_q, n_kv, programs, block_index, device)
    if memo is None or key not in memo:
        if capturing():
            return None
        plan = plan_contig(batch=batch, heads=heads, n_q=n_q, n_kv=n_kv, programs=programs,
                           block_index=block_index, device=device)
        if block_index is None:
            _DENSE[key] = plan
            return plan
        own = None if plan.blocks is block_index.indices else plan.blocks  # a substitute for an empty index
        fl._plans_of(block_index.offsets, create=True)[key] = dataclasses.replace(plan, boffsets=None, blocks=own)
        return plan
    plan = memo[key]
    if block_index is None:
        return plan
    return dataclasses.replace(plan, boffsets=block_index.offsets,
                               blocks=block_index.indices if plan.blocks is None else plan.blocks)


def prepare_contig_plan(q: Any, k: Any, block_index: Any = None, *, layout: str = "bhnd",
                        programs: int | None = None) -> Any:
    """Build and memoise the plan of ``fgattn.dense_attention(q, k, v)`` (``block_index`` None) or
    ``fgattn.block_sparse_attention(q, k, v, block_index)`` before CUDA-graph capture, so that a captured call of a
    contig entry runs the Gluon form (a warm-up call outside capture does the same).  ``programs``: the grid
    (default the dispatch's: ``fgattn.limit_sms`` if active, else the device's SM count).  The index as the
    entry reads it: an entry with ``lpt`` false plans the natural order (pass the index without ``order``)."""
    from .attention import _sm_count

    if capturing():
        raise ValueError("fgattn.contig_plans: prepare_contig_plan reads the row counts on the host: call it before "
                         "CUDA-graph capture")
    if layout not in ("bhnd", "bnhd"):
        raise ValueError(f"fgattn.contig_plans: layout must be 'bhnd' or 'bnhd', got {layout!r}")
    b, h, nq = (q.shape[0], q.shape[1], q.shape[2]) if layout == "bhnd" else (q.shape[0], q.shape[2], q.shape[1])
    nk = k.shape[2] if layout == "bhnd" else k.shape[1]
    g = _sm_count(q.device) if programs is None else programs
    plan = cached_contig_plan(batch=b, heads=h, n_q=nq, n_kv=nk, programs=g, block_index=block_index,
                              device=q.device)
    assert plan is not None
    return plan
