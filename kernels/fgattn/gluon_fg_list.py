"""The list schedule of the Gluon ws2 fg entry (issue 12): the host plan and the launch; the kernel is
:func:`fgattn.gluon_fg._fg_gluon_ws2` with ``PLANNED`` (one CTA body for both schedules).

The launch table's fg D128 M128 gran-1 entry runs :mod:`fgattn.gluon_fg`'s form ``ws2`` (pipeline 1, no consumer
fence).  As a *static walk* (``schedule: "walk"``), program p of G runs launch positions p, p + G, ... of
``FgIndex.order``.  Helper G found at M64 (kernels/NOTES-gluon-m64.md) that such a walk drifts until the SMs work
on several heads at once (L2 hit rate 77 % instead of 97 % at M128, kernels/NOTES.md "Session 11, G3") and leaves
the busiest SM 10-28 % above the mean (kernels/NOTES.md, "Where the remaining gap sits"), while greedy list
scheduling in launch order (each next row of ``order`` to the least-loaded program, row cost = ``c_row`` + executed
128-key tiles) keeps the programs in the same region of the head-major order and balances like the hardware's
dynamic dispatch.  ``schedule: "list"`` is the packaged entry's schedule since session 13 (kernels/NOTES.md).

The CTA is the same for both schedules (a producer warpgroup gathering K/V rows by cp.async into a 3-stage ring,
two consumer warpgroups of 64 query rows each with FlashAttention-3's intra-warpgroup overlap): only the row source
differs.  With ``PLANNED`` every partition reads its rows from a plan, ``Rows[Start[p]:Start[p + 1]]``, built
once per index on the host by :func:`plan_ws2_list` (the FlashInfer plan / run split: outside CUDA-graph capture,
reused across calls); ``plan_ws2_list(schedule="walk")`` gives the walk's rows as a plan (the control of the
adoption measurements).
"""

from __future__ import annotations

import math
import weakref
from typing import Any

__all__ = ["C_ROW_TILES", "fg_attention_gluon_list", "plan_ws2_list", "compile_list_sm90", "ws2_walk_lists",
           "prepare_list_plan", "cached_list_plan", "has_list_plan", "LIST_KNOBS", "launch_list", "plan_mean_tiles"]

#: a row's fixed cost in 128-key tile units for the planner: kernels/tools/gap_analysis.py's fit of the adopted ws2
#: form on run 9 (c_row 5.4 µs, c_tile 1.82 µs per 128-key tile per SM at H12 N32760) -> 3.0
C_ROW_TILES = 3.0
#: the ws2 knobs the list schedule runs with (the one form measured with it: pipeline 1, no consumer fence, the
#: default exp_poly / pingpong / regs; ``fgattn.launch`` refuses any other for ``schedule: "list"``)
LIST_KNOBS = dict(pipeline=1, consumer_fence=False)

try:  # Gluon (Triton >= 3.5); the kernel is defined only where it imports (the CPU tests need none of it)
    from triton.experimental.gluon import language as gl

    from . import gluon_fg as _g

    _GLUON_ERR: str | None = _g.gluon_available()
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


def _constexprs(epilogue: str = "stg", **more: Any) -> dict[str, Any]:
    """The constexprs of :func:`fgattn.gluon_fg._fg_gluon_ws2` for the list schedule (``PLANNED``) with the row end
    ``epilogue`` (``gluon_fg.EPILOGUES``); ``more``: research overrides of :func:`fgattn.gluon_fg.check_ws2_knobs`
    (``pingpong``, the row-end constexprs one by one: ``fgattn.gluon_fg_epilogue``)."""
    from . import gluon_fg as g

    over = {k: v for k, v in more.items() if k in ("TMA_O", "OFFS_AHEAD", "RCP")}
    knobs = {k: v for k, v in more.items() if k not in over}
    return {**dict(HEAD_DIM=g.HEAD_DIM, BLOCK_M=g.BLOCK_M, BLOCK_N=g.BLOCK_N, STAGES=g.STAGES, num_warps=4,
                   CONSUMER_FENCE=LIST_KNOBS["consumer_fence"], PLANNED=True,
                   **g.check_ws2_knobs("ws2", pipeline=LIST_KNOBS["pipeline"], epilogue=epilogue, **knobs)),
            **{k: True for k, v in over.items() if v}}


# ------------------------------------------------------------------------------------------------ host side
def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_list: {msg}")


def ws2_walk_lists(n_rows: int, programs: int, order: list[int]) -> list[list[int]]:
    """The adopted entry's static walk as row lists (pure Python twin): program p runs ``order`` positions p,
    p + programs, ..."""
    if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
        _fail(f"programs={programs!r} must be a positive int")
    if sorted(order) != list(range(n_rows)):
        _fail("order must be a permutation of the rows")
    return [[order[i] for i in range(p, n_rows, programs)] for p in range(programs)]


def plan_ws2_list(index: Any, *, programs: int, c_row: float = C_ROW_TILES, schedule: str = "list") -> Any:
    """Row plan for :func:`fg_attention_gluon_list` (host work: one device-to-host copy of the row counts; build
    once per index, outside CUDA-graph capture, and reuse it).  ``schedule="list"``: greedy list scheduling in
    launch order (``index.order``; natural order without one), each row to the program with the least load so
    far (row cost ``c_row`` + executed 128-key tiles, ties to the lowest program); ``"walk"``: the adopted entry's
    static walk (the same kernel then runs the table entry's rows per program: a control).  ``programs`` is
    clipped to the row count; every program gets at least one row.  Returns a
    :class:`fgattn.gluon_fg_m64.LanePlan` (lanes 1; makespan / mean_load in tile units)."""
    import torch

    from .gluon_fg_m64 import LanePlan, flatten_lanes, lane_list, lanes_makespan, row_costs
    from .index import FgIndex

    if not isinstance(index, FgIndex):
        _fail(f"index must be an FgIndex, got {type(index).__name__}")
    if (index.block_m, index.gran_n) != (128, 1):
        _fail(f"index has block_m={index.block_m}, gran_n={index.gran_n} (the ws2 form needs 128, 1)")
    if schedule not in ("list", "walk"):
        _fail(f"schedule={schedule!r} must be 'list' or 'walk'")
    if isinstance(c_row, bool) or not isinstance(c_row, (int, float)) or not 0 <= c_row < 1e6:
        _fail(f"c_row={c_row!r} must be a number in [0, 1e6) (tile units)")
    if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
        _fail(f"programs={programs!r} must be a positive int")
    if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        _fail("plan_ws2_list reads the row counts on the host: build the plan before CUDA-graph capture")
    n = index.n_rows
    g = min(programs, n)
    costs = row_costs(index.counts().tolist(), 128, float(c_row))
    order = list(range(n)) if index.order is None else index.order.tolist()
    lists = [[lst] for lst in ws2_walk_lists(n, g, order)] if schedule == "walk" else lane_list(costs, order, g, 1)
    flat, start = flatten_lanes(lists)
    if any(a == b for a, b in zip(start[:-1], start[1:], strict=True)):  # cannot happen for list / walk with g <= n; kept as a guard
        _fail("a program got no row")
    mx, mean = lanes_makespan(costs, lists)
    dev = index.offsets.device
    return LanePlan(rows=torch.tensor(flat, dtype=torch.int32, device=dev),
                    start=torch.tensor(start, dtype=torch.int32, device=dev), programs=g, lanes=1, n_rows=n,
                    schedule=schedule, makespan=mx, mean_load=mean)


def plan_mean_tiles(plan: Any, c_row: float = C_ROW_TILES) -> float:
    """Mean executed 128-key tiles per row of a :func:`plan_ws2_list` plan built with row cost ``c_row`` (every
    plan fgattn builds uses :data:`C_ROW_TILES`): mean_load · programs / rows - c_row (host arithmetic on the plan's
    fields, no device access: fine under CUDA-graph capture).  What ``epilogue: "auto:SHORT:TILES"`` compares with
    TILES (``fgattn.gluon_fg.resolve_epilogue``)."""
    if plan.lanes != 1 or plan.n_rows < 1:
        _fail(f"plan has {plan.lanes} lanes / {plan.n_rows} rows (a list plan of plan_ws2_list has 1 lane)")
    return plan.mean_load * plan.programs / plan.n_rows - float(c_row)


#: plans memoised per index (fgattn's dispatch of a ``schedule: "list"`` entry): keyed by the identity of the
#: index's ``offsets`` tensor (held by a weak reference, so a plan lives as long as its index's offsets), then by
#: the identity and in-place version counters of ``offsets`` / ``indices`` / ``order`` and the program count.  An
#: entry is never replaced: a CUDA graph captured with a plan keeps reading its tensors, so they stay alive.
_PLANS: dict[int, tuple[Any, dict[tuple, Any]]] = {}


def _plans_of(offsets: Any, create: bool = False) -> dict[tuple, Any] | None:
    """The memoised plans of the index whose offsets tensor is ``offsets`` (None if none and not ``create``)."""
    hit = _PLANS.get(id(offsets))
    if hit is not None and hit[0]() is offsets:
        return hit[1]
    if not create:
        return None
    key = id(offsets)
    ref = weakref.ref(offsets, lambda _r, key=key: _PLANS.pop(key, None))
    _PLANS[key] = (ref, {})
    return _PLANS[key][1]


def _capturing() -> bool:
    """A CUDA graph is being captured on the current stream (no host sync allowed)."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def _plan_key(index: Any, programs: int, c_row: float = C_ROW_TILES) -> tuple:
    t = [index.offsets, index.indices, index.order]
    crow = () if float(c_row) == C_ROW_TILES else (("c_row", float(c_row)),)  # the default plan keeps its old key
    return (programs, *((None, -1, -1) if x is None else (id(x), x.data_ptr(), x._version) for x in t), *crow)


def cached_list_plan(index: Any, programs: int, c_row: float = C_ROW_TILES) -> Any | None:
    """The memoised list plan of ``index`` for ``programs`` programs (``schedule="list"``, row cost ``c_row`` tiles:
    the launch table's ``extra.gluon.c_row``, default :data:`C_ROW_TILES`), built on first use; None when none is
    cached and a CUDA graph is being captured (building one reads the row counts on the host): the caller then runs
    the walk (``fgattn.fg_route`` says so)."""
    per = _plans_of(index.offsets)
    key = _plan_key(index, programs, c_row)
    if per is not None and key in per:
        return per[key]
    if _capturing():
        return None
    plan = plan_ws2_list(index, programs=programs, c_row=c_row)
    _plans_of(index.offsets, create=True)[key] = plan
    return plan


def has_list_plan(index: Any, programs: int, c_row: float = C_ROW_TILES) -> bool:
    """A plan of ``index`` for ``programs`` programs (row cost ``c_row``) is memoised (:func:`cached_list_plan`
    needs no host work)."""
    per = _plans_of(index.offsets)
    return per is not None and _plan_key(index, programs, c_row) in per


def prepare_list_plan(index: Any, programs: int | None = None, c_row: float = C_ROW_TILES) -> Any:
    """Build and memoise ``index``'s list plan before CUDA-graph capture, so that a captured ``fgattn.fg_attention``
    of a ``schedule: "list"`` entry runs the list schedule (a warm-up call outside capture does the same).
    ``programs``: the grid (default the current CUDA device's SM count, as fgattn's dispatch uses); ``c_row``: the
    entry's planner row cost (``LaunchConfig.gluon_c_row``).  A gran-16 / 64 index is expanded first
    (:func:`fgattn.gran_expand.cached_expanded`; the plan is the expanded index's)."""
    import torch

    if programs is None:
        programs = torch.cuda.get_device_properties(index.offsets.device).multi_processor_count
    if _capturing():
        _fail("prepare_list_plan reads the row counts on the host: call it before CUDA-graph capture")
    if index.gran_n != 1:
        from .gran_expand import cached_expanded

        index = cached_expanded(index)
    plan = cached_list_plan(index, programs, c_row)
    assert plan is not None
    return plan


def compile_list_sm90(dtype: str = "bf16", epilogue: str = "stg", **more: Any) -> Any:
    """Compile the list schedule's kernel (:func:`fgattn.gluon_fg._fg_gluon_ws2` with ``PLANNED``) for sm_90
    without a GPU (Triton 3.6 with Gluon on the path), with the signature :func:`fg_attention_gluon_list` launches
    with (:func:`fgattn.gluon_fg.compile_sm90`); ``epilogue`` / ``more`` as :func:`_constexprs`."""
    from . import gluon_fg as g

    return g.compile_sm90(g._fg_gluon_ws2, _constexprs(epilogue, **more), dtype, g.BLOCK_M, g.HEAD_DIM, ws2=True)


def prepare_list_call(q: Any, k: Any, v: Any, index: Any, *, layout: str, sm_scale: float | None, out: Any,
                      plan: Any, programs: int | None, fail: Any = _fail,
                      c_row: float = C_ROW_TILES) -> tuple[Any, Any, Any, Any, float]:
    """The checks and host set-up every list-scheduled ws2 launch shares (this module's and the research forms'):
    -> (the call's Gluon plan, the row plan (built here if None), out, Q's tensor descriptor, softmax scale).
    ``fail`` raises the caller's error (its module name in the message)."""
    import torch

    if _GLUON_ERR is not None:
        fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if not isinstance(q, torch.Tensor) or q.device.type != "cuda":
        fail("q must be a CUDA tensor (no CPU / interpreter path)")
    if torch.cuda.get_device_capability(q.device)[0] != 9:
        fail("needs an sm_90 GPU (Hopper: wgmma, TMA)")
    sms = torch.cuda.get_device_properties(q.device).multi_processor_count if programs is None else programs
    p = _g.plan_gluon(q, k, v, index, layout=layout, form="ws2", sms=sms)
    if plan is None:
        plan = plan_ws2_list(index, programs=p.grid, c_row=c_row)
    if (plan.n_rows, plan.lanes) != (p.n_rows, 1) or plan.start.numel() != plan.programs + 1:
        fail(f"plan is for {plan.n_rows} rows / {plan.lanes} lanes, the call has {p.n_rows} rows (lanes 1)")
    if plan.rows.device != q.device:
        fail(f"plan is on {plan.rows.device}, q on {q.device}")
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.stride(-1) != 1:
        fail("out must match q's shape and dtype with a contiguous head dimension")
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    box = [1, 1, _g.BLOCK_M // 2, _g.HEAD_DIM]
    q_layout = gl.NVMMASharedLayout.get_default_for(box, gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16)
    q_desc = TensorDescriptor(q, [p.batch, p.heads, p.n_q, _g.HEAD_DIM], [*_g._strides(q, layout), 1], box, q_layout)
    scale = (1.0 / math.sqrt(_g.HEAD_DIM)) if sm_scale is None else float(sm_scale)
    return p, plan, out, q_desc, scale


def fg_attention_gluon_list(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                            sm_scale: float | None = None, out: Any = None, plan: Any = None,
                            programs: int | None = None, epilogue: str = "stg", tail64: bool = False,
                            c_row: float = C_ROW_TILES) -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by the adopted Gluon ws2 CTA (pipeline 1, no
    fence) over a row plan (:func:`plan_ws2_list`; built here if ``plan`` is None, which reads the row counts on
    the host and so cannot run under CUDA-graph capture).  Same output as the table entry (q's layout and dtype;
    zeros for a query block with no kept key).  ``programs``: grid size when the plan is built here (default the
    SM count).  ``epilogue``: the row end (``"stg"`` / ``"tma"`` / ``"tma_offs"`` / ``"tma_sel"``,
    ``fgattn.gluon_fg.EPILOGUES``, or ``"auto:SHORT:TILES"``: SHORT when the plan's mean executed tiles per row
    (:func:`plan_mean_tiles`) is <= TILES, else ``"stg"``; a TMA row end with an ``out`` whose strides or address
    are not 16-byte aligned runs ``"stg"``).  ``tail64``: the research 64-key last tile (``gluon_fg._tail64``;
    kernels/NOTES.md "Session 15, K8"; the launch table's ``extra.gluon.tail64``).  ``c_row``: the planner's row
    cost in tiles the plan was (or is) built with (the table's ``extra.gluon.c_row``)."""
    return launch_list(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out, plan=plan, programs=programs,
                       epilogue=epilogue, c_row=c_row, **({"tail64": True} if tail64 else {}))


def launch_list(q: Any, k: Any, v: Any, index: Any, *, layout: str, sm_scale: float | None, out: Any, plan: Any,
                programs: int | None, epilogue: str = "stg", fail: Any = _fail, c_row: float = C_ROW_TILES,
                **more: Any) -> Any:
    """The list-scheduled ws2 launch (:func:`fg_attention_gluon_list`; ``more``: research overrides of
    :func:`_constexprs`, used by ``fgattn.gluon_fg_epilogue``; ``fail`` raises the caller's error)."""
    const = _constexprs(epilogue, **more)  # validates the knobs before any work
    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=programs, fail=fail, c_row=c_row)
    if epilogue.startswith("auto:"):  # the row end by the plan's mean tiles per row (no host sync)
        const = _constexprs(_g.resolve_epilogue(epilogue, plan_mean_tiles(plan, c_row)), **more)
    o_desc = None
    if const.get("TMA_O"):
        if _g.o_desc_ok(out, layout) is not None:  # an unaligned user out: the STG row end (the packaged code)
            const = _constexprs("stg", **{k: v for k, v in more.items() if k != "TMA_O"})
        else:
            o_desc = _g.o_desc_for(out, layout, q_desc, p, "tma")  # any TMA row end: the same descriptor
    st = _g._strides
    _g._fg_gluon_ws2[(plan.programs,)](
        q_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows, **const,
        o_desc=o_desc)
    return out
