"""The dynamic tail of the Gluon ws2 list entry (issue 12 research, session 16, helper D2; kernels/NOTES.md
"Session 16, D2"): the plan and the launch.  The kernel is :func:`fgattn.gluon_fg._fg_gluon_ws2` with ``PLANNED``
and the research constexpr ``DYN`` (default off: the packaged binaries are unchanged).

Helper T's in-kernel timeline (kernels/NOTES.md "Session 16, T") measured the slowest / mean program span of the
packaged list launch at 1.09 (H12 N32760 d 0.02) and 1.13-1.26 (H40 N32760 d 0.02) while the list plan itself
predicts 1.004-1.010: the programs' speeds vary at run time by a few per cent, and a static plan cannot follow that.
So the end of the launch is assigned at run time:

1. the packaged planner's lists (:func:`fgattn.gluon_fg_list.plan_ws2_list`, greedy list scheduling in launch
   order, row cost ``c_row`` + executed 128-key tiles) are built as today;
2. every row a program's list would *start* at or after ``(1 - pool_share)`` x the mean program load (tile units;
   the last ``pool_share`` of the predicted work, give or take a row) leaves the list for a shared *pool*, ordered
   heaviest first (ties: launch order); each program keeps at least its first row;
3. in the kernel each program runs its static list, then its producer claims pool rows one at a time from a global
   int32 counter (``atomic_add``, one row ahead, as it already loads every next row's range) and hands each row to
   both consumer warpgroups through a 2-slot shared-memory ring (``gluon_fg._dyn_row_p`` / ``_dyn_row_c``); a claim
   past the pool's end (-1) ends the program.

The counter must be zero at every launch.  :func:`arm` zeroes it with ``Tensor.zero_()`` on the launching stream
right before the kernel: under CUDA-graph capture that is a memset node of the same graph, before the kernel node,
so every replay starts from zero (CUDA-graph safe).  One plan's counter serves one launch at a time: two launches
of the same plan on different streams at once would share it (use two plans).

Optional ``light_first``: each program's static list starts with its lightest row instead of its heaviest (T
measured a cold first row: 667 vs 193 cycles of data wait per tile when all 132 programs start on their heaviest
rows from a cold L2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .gluon_fg_list import C_ROW_TILES

__all__ = ["POOL_SHARE", "DynPlan", "split_pool", "plan_dyntail", "arm", "fg_attention_gluon_dyntail",
           "compile_dyntail_sm90", "simulate_claims", "cached_dyn_plan", "prepare_dyn_plan"]

#: the share of the predicted work (tile units) whose rows go to the run-time pool (the candidate of the
#: pre-registered rule: kernels/NOTES.md "Session 16, D2")
POOL_SHARE = 0.10


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_dyntail: {msg}")


@dataclass(frozen=True)
class DynPlan:
    """A dynamic-tail plan: ``rows`` / ``start`` the static lists (program p runs ``rows[start[p]:start[p + 1]]``,
    as :func:`fgattn.gluon_fg_list.plan_ws2_list`), ``pool`` = [n_pool, pool rows heaviest first] (int32),
    ``claim`` the int32 claim counter (one element; :func:`arm` zeroes it), ``static_makespan`` / ``mean_load`` in
    tile units (the static lists' largest load, the mean load of the whole plan incl. the pool)."""

    rows: Any
    start: Any
    pool: Any
    claim: Any
    programs: int
    n_rows: int
    n_pool: int
    pool_share: float
    light_first: bool
    static_makespan: float
    mean_load: float
    makespan: float
    lanes: int = 1
    schedule: str = "dyntail"


def split_pool(costs: list[float], lists: list[list[int]], pool_share: float, *,
               light_first: bool = False) -> tuple[list[list[int]], list[int]]:
    """Split per-program row lists (``costs[r]``: row r's cost, tile units) into static lists and a pool: a row
    whose planned start (the cost of the rows before it in its list) is >= ``(1 - pool_share)`` x the mean program
    load goes to the pool, except each program's first row (``pool_share`` 0: no pool; 1: every row but each
    program's first, the fully dynamic form); the pool is ordered heaviest first (ties: the order in
    which the rows appear program by program).  ``light_first``: each static list's lightest row moved to its
    front (the first of equal ones).  Pure Python; returns (static lists, pool)."""
    if isinstance(pool_share, bool) or not isinstance(pool_share, (int, float)) or not 0 <= pool_share <= 1:
        _fail(f"pool_share={pool_share!r} must be a number in [0, 1]")
    if not lists or any(not lst for lst in lists):
        _fail("every program needs at least one row")
    seen = [r for lst in lists for r in lst]
    if len(set(seen)) != len(seen) or any(not 0 <= r < len(costs) for r in seen):
        _fail("lists must hold distinct rows in range(len(costs))")
    mean = sum(costs[r] for r in seen) / len(lists)
    cut = (1.0 - float(pool_share)) * mean
    static, pool = [], []
    for lst in lists:
        t, keep = 0.0, []
        for i, r in enumerate(lst):
            if pool_share > 0 and i > 0 and t >= cut:
                pool.append(r)
            else:
                keep.append(r)
            t += costs[r]
        if light_first and len(keep) > 1:
            j = min(range(len(keep)), key=lambda i: (costs[keep[i]], i))
            keep = [keep[j]] + keep[:j] + keep[j + 1:]
        static.append(keep)
    rank = {r: i for i, r in enumerate(pool)}
    return static, sorted(pool, key=lambda r: (-costs[r], rank[r]))


def plan_dyntail(index: Any, *, programs: int, pool_share: float = POOL_SHARE, light_first: bool = False,
                 c_row: float = C_ROW_TILES) -> DynPlan:
    """The dynamic-tail plan of ``index`` for ``programs`` programs (module docstring): the packaged list plan's
    lists split by :func:`split_pool`.  Host work (reads the row counts): build it before CUDA-graph capture and
    reuse it."""
    import torch

    from .gluon_fg_list import plan_ws2_list
    from .gluon_fg_m64 import flatten_lanes, row_costs

    base = plan_ws2_list(index, programs=programs, c_row=c_row)  # validates index / programs / c_row
    costs = row_costs(index.counts().tolist(), 128, float(c_row))
    rows, start = base.rows.tolist(), base.start.tolist()
    lists = [rows[start[p]:start[p + 1]] for p in range(base.programs)]
    static, pool = split_pool(costs, lists, pool_share, light_first=light_first)
    flat, st = flatten_lanes([[lst] for lst in static])
    dev = index.offsets.device
    loads = [sum(costs[r] for r in lst) for lst in static]
    return DynPlan(rows=torch.tensor(flat, dtype=torch.int32, device=dev),
                   start=torch.tensor(st, dtype=torch.int32, device=dev),
                   pool=torch.tensor([len(pool)] + pool, dtype=torch.int32, device=dev),
                   claim=torch.zeros(1, dtype=torch.int32, device=dev), programs=base.programs, n_rows=base.n_rows,
                   n_pool=len(pool), pool_share=float(pool_share), light_first=bool(light_first),
                   static_makespan=max(loads), mean_load=base.mean_load, makespan=base.makespan,
                   schedule=f"dyntail p{pool_share:g}" + (" lf" if light_first else ""))


def _dyn_key(index: Any, programs: int, pool_share: float) -> tuple:
    from .gluon_fg_list import _plan_key

    return ("dyntail", float(pool_share), *_plan_key(index, programs))


def cached_dyn_plan(index: Any, programs: int, pool_share: float) -> DynPlan | None:
    """The memoised dynamic-tail plan of ``index`` (``programs`` programs, ``pool_share``; the packaged route of an
    entry with ``extra.gluon.dyntail``), built on first use beside the index's list plans
    (``fgattn.gluon_fg_list``'s memo, dropped with the index); None when none is cached and a CUDA graph is being
    captured (building one reads the row counts on the host): the route then runs the static list plan."""
    from .gluon_fg_list import _capturing, _plans_of

    per = _plans_of(index.offsets)
    key = _dyn_key(index, programs, pool_share)
    if per is not None and key in per:
        return per[key]
    if _capturing():
        return None
    plan = plan_dyntail(index, programs=programs, pool_share=pool_share)
    _plans_of(index.offsets, create=True)[key] = plan
    return plan


def prepare_dyn_plan(index: Any, pool_share: float, programs: int | None = None) -> DynPlan:
    """Build and memoise ``index``'s dynamic-tail plan before CUDA-graph capture (a warm-up call outside capture
    does the same), so that a captured ``fgattn.fg_attention`` of a ``dyntail`` entry runs it.  ``programs``:
    the grid (default the current CUDA device's SM count, as fgattn's dispatch uses)."""
    import torch

    from .gluon_fg_list import _capturing

    if programs is None:
        programs = torch.cuda.get_device_properties(index.offsets.device).multi_processor_count
    if _capturing():
        _fail("prepare_dyn_plan reads the row counts on the host: call it before CUDA-graph capture")
    plan = cached_dyn_plan(index, programs, pool_share)
    assert plan is not None
    return plan


def arm(plan: DynPlan) -> None:
    """Zero the plan's claim counter on the current stream (a memset node when a CUDA graph is being captured):
    every launch of :func:`fg_attention_gluon_dyntail` calls it right before the kernel."""
    if not isinstance(plan, DynPlan):
        _fail(f"plan must be a DynPlan, got {type(plan).__name__}")
    plan.claim.zero_()


def simulate_claims(static_times: list[float], pool_times: list[float]) -> tuple[list[list[int]], float]:
    """Event model of the run-time pool (no GPU): program p is busy ``static_times[p]``, then each program that
    becomes free claims the next pool row (the counter's order; ties to the lowest program, as an atomic has one
    winner at a time) and is busy its ``pool_times[i]``.  Returns (pool rows per program, makespan).  Used by the
    CPU tests to check that every pool row runs exactly once and by the predictions (kernels/NOTES.md)."""
    import heapq

    free = [(float(t), p) for p, t in enumerate(static_times)]
    heapq.heapify(free)
    got: list[list[int]] = [[] for _ in static_times]
    for i, t in enumerate(pool_times):
        now, p = heapq.heappop(free)
        got[p].append(i)
        heapq.heappush(free, (now + float(t), p))
    return got, max(t for t, _ in free)


# ------------------------------------------------------------------------------------------------ launch (GPU)
def compile_dyntail_sm90(dtype: str = "bf16", epilogue: str = "tma_sel", timeline: int = 0) -> Any:
    """The dynamic-tail kernel compiled for sm_90 without a GPU (Triton 3.6 with Gluon on the path), row end
    ``epilogue`` (the packaged entry's ``"tma_sel"``); ``timeline``: T's instrumentation level (0: none)."""
    from . import gluon_fg as g
    from .gluon_fg_list import _constexprs

    const = {**_constexprs(epilogue), "DYN": True, **({"TIMELINE": int(timeline)} if timeline else {})}
    return g.compile_sm90(g._fg_gluon_ws2, const, dtype, g.BLOCK_M, g.HEAD_DIM, ws2=True)


def fg_attention_gluon_dyntail(q: Any, k: Any, v: Any, index: Any, *, plan: DynPlan, layout: str = "bhnd",
                               sm_scale: float | None = None, out: Any = None, epilogue: str = "tma_sel",
                               timeline: Any = None, timeline_level: int = 1) -> Any:
    """:func:`fgattn.gluon_fg_list.fg_attention_gluon_list` (row end ``epilogue``, the packaged entry's
    ``"tma_sel"``) with the dynamic tail over ``plan`` (:func:`plan_dyntail`).  Same output.  Zeroes the claim
    counter on the stream first (:func:`arm`).  ``timeline``: helper T's buffer (``fgattn.timeline.new_buffer``) to
    record the instrumented kernel's timeline into (level ``timeline_level``; needs a 16-byte aligned ``out``)."""
    from . import gluon_fg as g
    from .gluon_fg_list import _constexprs, prepare_list_call

    if not isinstance(plan, DynPlan):
        _fail(f"plan must be a DynPlan (plan_dyntail), got {type(plan).__name__}")
    const = {**_constexprs(epilogue), "DYN": True}
    if timeline is not None:
        const["TIMELINE"] = int(timeline_level)
    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=None, fail=_fail)
    if plan.pool.device != q.device or plan.claim.device != q.device:
        _fail(f"plan's pool / counter are not on {q.device}")
    o_desc = None
    if const.get("TMA_O"):
        if g.o_desc_ok(out, layout) is not None:  # an unaligned user out: the STG row end, as the list launch
            if timeline is not None:
                _fail("out is not 16-byte aligned: the timeline is built on the TMA row end")
            const = {**_constexprs("stg"), "DYN": True}
        else:
            o_desc = g.o_desc_for(out, layout, q_desc, p, "tma")
    st = g._strides
    arm(plan)
    g._fg_gluon_ws2[(plan.programs,)](
        q_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows, **const,
        o_desc=o_desc, Pool=plan.pool, Claim=plan.claim, **({"Tl": timeline} if timeline is not None else {}))
    return out
