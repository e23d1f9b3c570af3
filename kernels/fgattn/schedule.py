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
"""

from __future__ import annotations

import numpy as np

__all__ = ["PROMOTE_RATIO", "PROMOTE_SHARE", "DEFAULT_SMS", "row_order"]

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
