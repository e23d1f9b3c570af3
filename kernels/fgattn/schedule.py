"""Row (CTA) launch order of the index-driven kernels, in numpy (the cost model imports it without torch).

Rule (``FgIndex.order``; :func:`fgattn.index._order` is the torch twin, tested equal):

1. *Promoted* rows first, heaviest first: a row (batch, head, query block) whose kept count is at
   least ``PROMOTE_RATIO`` × the lower median of its head's rows and at least ``PROMOTE_SHARE`` × the
   per-SM share of all work (total kept count / number of SMs).  These are rows that would stretch
   the tail if they started late, e.g. the dense rows of text tokens appended to a sparse video
   sequence.
2. Then every other row, (batch, head)-major so the K/V of one head stay hot in L2, heaviest query
   block first within each head (longest-processing-time order; light rows fill the tail).

Ties keep natural row order (stable sort).

Persistent launches (launch-table option ``"persistent": true``, ``"programs_per_sm": k``, default 1) start
``G = min(n_rows, k · SMs)`` programs (:func:`persistent_programs`); program ``p`` runs the rows at launch-order
positions ``p, p + G, p + 2G, …`` (:func:`program_rows`: static round-robin over the order above, so the heaviest
rows start first and each program's row list is heaviest-first too).  SMs is the device's multiprocessor count
unless :func:`limit_sms` overrides it (e.g. for a run inside a CUDA green context of ``n`` SMs, which does not
change the device properties).  With the option ``"queue": true`` (nested loop only) program ``p`` runs positions
``p, p + G, p + 2G`` and then takes the next untaken position from a global atomic counter (zeroed per launch),
three rows ahead of the row it runs: rows still start in launch order, but a program that finishes early takes
more of them (dynamic, as the hardware's CTA dispatch of a non-persistent launch).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import numpy as np

__all__ = ["PROMOTE_RATIO", "PROMOTE_SHARE", "DEFAULT_SMS", "row_order", "limit_sms", "sm_limit",
           "persistent_programs", "program_rows"]

PROMOTE_RATIO = 2.0
PROMOTE_SHARE = 0.05
DEFAULT_SMS = 132  # H100/H200 SXM


def row_order(counts: np.ndarray, n_sm: int = DEFAULT_SMS) -> np.ndarray:
    """Launch order (int32 row numbers) of rows with kept counts ``counts`` (B·H, QB), row r = bh·QB + qb."""
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 2:
        raise ValueError(f"counts: expected (B*H, QB), got shape {c.shape}")
    bh, qb = c.shape
    if c.size == 0:
        return np.zeros(0, dtype=np.int32)
    med = np.sort(c, axis=1)[:, (qb - 1) // 2]
    share = c.sum() / max(int(n_sm), 1)
    promoted = (c >= PROMOTE_RATIO * med[:, None]) & (c >= PROMOTE_SHARE * share) & (c > 0)
    maxc = int(c.max())
    head = np.arange(bh, dtype=np.int64)[:, None]
    key = np.where(promoted, -1 - c, head * (maxc + 1) + (maxc - c))
    return np.argsort(key.reshape(-1), kind="stable").astype(np.int32)


_SM_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("fgattn_sm_limit", default=None)


@contextlib.contextmanager
def limit_sms(n: int) -> Iterator[int]:
    """Within the ``with`` block, persistent fgattn launches size their grid for ``n`` SMs instead of the
    device's multiprocessor count (for runs inside a CUDA green context of ``n`` SMs).  Nests; per thread."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"limit_sms: n must be a positive int, got {n!r}")
    tok = _SM_LIMIT.set(n)
    try:
        yield n
    finally:
        _SM_LIMIT.reset(tok)


def sm_limit() -> int | None:
    """The active :func:`limit_sms` value, ``None`` outside one."""
    return _SM_LIMIT.get()


def persistent_programs(n_rows: int, programs_per_sm: int, n_sm: int) -> int:
    """Programs of a persistent launch: ``G = min(n_rows, programs_per_sm · n_sm)``, at least 1."""
    if programs_per_sm < 1 or n_sm < 1:
        raise ValueError(f"programs_per_sm={programs_per_sm} and n_sm={n_sm} must be positive")
    return max(1, min(int(n_rows), int(programs_per_sm) * int(n_sm)))


def program_rows(order: np.ndarray, n_programs: int, p: int) -> np.ndarray:
    """Rows program ``p`` of a persistent launch runs, in the order it runs them: ``order[p::G]``."""
    return np.asarray(order)[p::n_programs]
