"""An L2-aware list plan for the Gluon ws2 fg entry (issue 12 research, session 14; kernels/NOTES.md "Session 14
research: L2-aware list plan (helper L)").  Only the plan changes: the kernel is the packaged entry's
(:func:`fgattn.gluon_fg_list.fg_attention_gluon_list`, which takes any plan of this format).

The packaged plan (:func:`fgattn.gluon_fg_list.plan_ws2_list`) assigns rows greedily in ``FgIndex.order``: promoted
heavy rows of *every* head first, then head-major with the heaviest query block first inside a head.  On the
benchmark's window masks the rows of one head that share keys (neighbouring query blocks) then run far apart in
time, and the promoted rows (query blocks straddling a frame boundary: ~4x the median kept count, 1 in 12 blocks)
run for all heads at once; ncu measured an L2 hit rate of 39 % and DRAM reads of 2.5x the Q/K/V bytes at d 0.02.

The *band* plan keeps the packaged planner's greedy least-loaded assignment but changes the order it assigns in:

1. *early* rows first, heaviest first: a row whose cost exceeds the work after it in the band (per program) plus
   ``early_share`` x the mean program load, i.e. a row the rest of the launch could not absorb (the full text rows
   of an MM-DiT mask in the later heads); nothing else is promoted;
2. then every other row head-major in query-block order (a sliding band of neighbouring query blocks of one head is
   in flight at any time, so a key kept by several neighbouring blocks is fetched from HBM about once);
3. the last ``tail_waves`` x programs rows of 2. re-sorted heaviest first (an LPT tail: light rows end the launch).

Balance bound, by construction: :func:`plan_l2_band` tries :data:`CANDIDATES` (early_share, tail_waves) in turn and
keeps the first whose planned makespan is <= :data:`MAX_RATIO` (1.01) x the packaged list plan's planned makespan;
if none is, it returns the packaged plan's own assignment.  Row cost (tile units) is the packaged planner's:
``c_row`` + executed 128-key tiles (``fgattn.gluon_fg_m64.row_costs``).
"""

from __future__ import annotations

from typing import Any

from .gluon_fg_list import C_ROW_TILES

__all__ = ["EARLY_SHARE", "TAIL_WAVES", "CANDIDATES", "MAX_RATIO", "band_order", "plan_l2_band", "graham_bound"]

#: a row is started first (heaviest first) when its cost exceeds the work after it in the band per program plus
#: EARLY_SHARE x the mean program load (tile units): only rows the rest of the launch could not absorb
EARLY_SHARE = 0.1
#: the last TAIL_WAVES x programs rows of the banded order run heaviest first
TAIL_WAVES = 4.0
#: (early_share, tail_waves) tried in turn, most local first (a shorter LPT tail mixes fewer heads), until the
#: planned makespan is within MAX_RATIO of the packaged list plan's
CANDIDATES = ((EARLY_SHARE, 1.0), (EARLY_SHARE, 2.0), (EARLY_SHARE, TAIL_WAVES), (EARLY_SHARE, 8.0), (0.0, 4.0),
              (0.0, 16.0))
#: the band plan's planned makespan is at most MAX_RATIO x the packaged list plan's (else that plan is used)
MAX_RATIO = 1.01


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.l2_plan: {msg}")


def band_order(costs: list[float], n_qblocks: int, programs: int, *, early_share: float = EARLY_SHARE,
               tail_waves: float = TAIL_WAVES, within: str = "qb") -> list[int]:
    """The band plan's assignment order of rows ``0 .. len(costs) - 1`` (row r = bh * n_qblocks + qb, cost in tile
    units): early rows heaviest first (cost > work after the row in the band / programs + ``early_share`` x mean
    program load), then head-major, inside a head in query-block order (``within="qb"``, the measured plan) or
    heaviest first (``"lpt"``, the packaged order's rule inside a head; modelled only), the last ``tail_waves`` x
    programs rows heaviest first (module docstring).  Pure Python; ties keep row order."""
    n = len(costs)
    if not isinstance(n_qblocks, int) or isinstance(n_qblocks, bool) or n_qblocks < 1 or n % n_qblocks:
        _fail(f"n_qblocks={n_qblocks!r} must be a positive int dividing the row count {n}")
    if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
        _fail(f"programs={programs!r} must be a positive int")
    for name, v in (("early_share", early_share), ("tail_waves", tail_waves)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1e6:
            _fail(f"{name}={v!r} must be a number in [0, 1e6)")
    if any(not c >= 0 for c in costs):
        _fail("costs must be non-negative numbers")
    if within not in ("qb", "lpt"):
        _fail(f"within={within!r} must be 'qb' or 'lpt'")
    base = list(range(n)) if within == "qb" else sorted(range(n), key=lambda r: (r // n_qblocks, -costs[r], r))
    mean_load = sum(costs) / min(programs, max(n, 1))
    early = set()
    after = 0.0  # work after a row in the banded order (the rows not promoted), tile units
    for r in reversed(base):
        if costs[r] > after / programs + early_share * mean_load:
            early.add(r)
        else:
            after += costs[r]
    rest = [r for r in base if r not in early]
    tail = min(len(rest), int(round(tail_waves * programs)))
    band, last = rest[:len(rest) - tail], rest[len(rest) - tail:]

    def by_cost(r: int) -> tuple[float, int]:
        return (-costs[r], r)

    return sorted(early, key=by_cost) + band + sorted(last, key=by_cost)


def graham_bound(costs: list[float], programs: int) -> float:
    """Graham's bound on any greedy list schedule's makespan: sum / m + (1 - 1/m) x max cost (tile units)."""
    m = min(programs, max(len(costs), 1))
    return sum(costs) / m + (1 - 1 / m) * max(costs, default=0.0)


def plan_l2_band(index: Any, *, programs: int, c_row: float = C_ROW_TILES, max_ratio: float = MAX_RATIO,
                 candidates: tuple[tuple[float, float], ...] = CANDIDATES, within: str = "qb") -> Any:
    """The band plan of ``index`` for ``programs`` programs: for each (early_share, tail_waves) of ``candidates`` in
    turn, :func:`band_order` and greedy least-loaded list scheduling (``fgattn.gluon_fg_m64.lane_list``, the packaged
    planner's assignment); the first whose planned makespan is <= ``max_ratio`` x the packaged list plan's
    (:func:`fgattn.gluon_fg_list.plan_ws2_list`) is returned, else the packaged plan's own assignment (so the bound
    holds by construction).  Same format as ``plan_ws2_list`` (a ``LanePlan`` with lanes 1, makespan / mean_load in
    tile units; ``schedule`` names the candidate, ``"l2band e0.1 t4"``, or ``"l2band fallback list"``): pass it as
    ``plan=`` to :func:`fgattn.gluon_fg_list.fg_attention_gluon_list`.  Host work (one device-to-host copy of the
    row counts): build it before CUDA-graph capture.  ``within``: :func:`band_order`'s order inside a head."""
    import torch

    from .gluon_fg_list import plan_ws2_list
    from .gluon_fg_m64 import LanePlan, flatten_lanes, lane_list, lanes_makespan, row_costs
    from .index import FgIndex

    if not isinstance(index, FgIndex):
        _fail(f"index must be an FgIndex, got {type(index).__name__}")
    if (index.block_m, index.gran_n) != (128, 1):
        _fail(f"index has block_m={index.block_m}, gran_n={index.gran_n} (the ws2 form needs 128, 1)")
    if isinstance(c_row, bool) or not isinstance(c_row, (int, float)) or not 0 <= c_row < 1e6:
        _fail(f"c_row={c_row!r} must be a number in [0, 1e6) (tile units)")
    if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
        _fail(f"programs={programs!r} must be a positive int")
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or not 1 <= max_ratio < 1e6:
        _fail(f"max_ratio={max_ratio!r} must be a number in [1, 1e6)")
    if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        _fail("plan_l2_band reads the row counts on the host: build the plan before CUDA-graph capture")
    n = index.n_rows
    g = min(programs, n)
    ref = plan_ws2_list(index, programs=g, c_row=c_row)
    costs = row_costs(index.counts().tolist(), 128, float(c_row))
    for early_share, tail_waves in candidates:
        order = band_order(costs, index.n_qblocks, g, early_share=early_share, tail_waves=tail_waves, within=within)
        lists = lane_list(costs, order, g, 1)
        mx, mean = lanes_makespan(costs, lists)
        if mx <= max_ratio * ref.makespan:
            break
    else:
        return LanePlan(rows=ref.rows, start=ref.start, programs=ref.programs, lanes=1, n_rows=n,
                        schedule="l2band fallback list", makespan=ref.makespan, mean_load=ref.mean_load)
    flat, start = flatten_lanes(lists)
    if any(a == b for a, b in zip(start[:-1], start[1:], strict=True)):  # greedy with g <= n: cannot happen
        _fail("a program got no row")
    dev = index.offsets.device
    return LanePlan(rows=torch.tensor(flat, dtype=torch.int32, device=dev),
                    start=torch.tensor(start, dtype=torch.int32, device=dev), programs=g, lanes=1, n_rows=n,
                    schedule=f"l2band e{early_share:g} t{tail_waves:g}" + (" lpt" if within == "lpt" else ""),
                    makespan=mx, mean_load=mean)
