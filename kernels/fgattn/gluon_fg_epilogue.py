"""Research shim (issue 12, session 14, helper E; folded by K4): the row-end variants of the list-scheduled Gluon
ws2 fg kernel, one knob at a time, for ``kernels/tools/epilogue_probe.py``.

Since K4 the kernel is the packaged one: :func:`fgattn.gluon_fg._fg_gluon_ws2` with ``PLANNED``, pipeline 1, no
fence, whose consumer (:func:`fgattn.gluon_fg._ws2x_consumer`) has the row-end constexprs ``TMA_O``, ``OFFS_AHEAD``,
``RCP`` (all three together = the table knob ``epilogue: "tma"``, ``fgattn.gluon_fg.EPILOGUES``).  This module only
maps the probe's knob names to them and launches through :func:`fgattn.gluon_fg_list.launch_list`; it has no kernel
code of its own (kernels/NOTES.md, "Session 13, P: where the per-row cost goes (ncu)": the row end is more than
half of the ≈ 4.4 µs per row the consumers spend outside the tile loop).  Knobs (each alone or together):

* ``tma_o`` (lever a): O leaves through shared memory and one TMA bulk store per warpgroup instead of 32 4-byte
  ``STG`` per thread.  The staging buffer is the last tile's K stage (32 KB = 2 × the 16 KB O half of a
  warpgroup): it is free once *both* warpgroups' last QK has read it, so the two warpgroups meet on a named barrier
  (id 12, 256 threads) right before writing O there.  The store is not waited for at the row end: at the next
  row's start, once its tile-0 QK is issued, the warpgroup waits until the bulk store has read the stage
  (``cp.async.bulk.wait_group.read 0``) and only then releases the stage to the producer (``empty``); after the
  last row it waits before exiting.  Rows past N are clipped by the descriptor.
* ``offs_ahead`` (lever b): the next row's (lo, hi) are loaded at this row's start (the dependent Order → Offsets
  loads overlap the row's tiles), not after the store at its end (an ``LDG`` whose result feeds ``R2UR`` at once).
* ``rcp`` (lever c): O = acc · (1 / l) with one reciprocal per query row, and a row with no kept key (whose running
  max stays −∞, so its acc is NaN) zeroed by a uniform branch instead of a select per element.
* ``pingpong``: FlashAttention-3's inter-warpgroup turns around each wgmma issue (Shah et al., "FlashAttention-3",
  arXiv 2407.08608, sec. 3.1), :mod:`fgattn.gluon_fg`'s named barriers 10 / 11, so that one warpgroup's row end
  can overlap the other's wgmmas.  Not with ``tma_o`` (its row-end meeting point would undo the offset).

The host side is :func:`fgattn.gluon_fg_list.launch_list` (the same checks, row plan and Q descriptor as the
packaged entry, plus the O descriptor of the same [1, 1, 64, 128] box and 128-byte swizzle: ``gluon_fg.o_desc_for``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["KNOBS", "VARIANT_KNOBS", "check_epilogue_knobs", "compile_epilogue_sm90", "compile_list_pp_sm90",
           "fg_attention_gluon_epilogue", "fg_attention_gluon_list_pp", "o_desc_ok"]

#: knob -> its constexpr name in :func:`fgattn.gluon_fg._fg_gluon_ws2` (every knob a bool, default False)
KNOBS: dict[str, str] = {"tma_o": "TMA_O", "offs_ahead": "OFFS_AHEAD", "rcp": "RCP", "pingpong": "PINGPONG"}
#: the probe's named variants (kernels/tools/epilogue_probe.py): each lever alone, the three together, and the
#: pingpong combination (``pp``, the packaged kernel's own pingpong knob, is launched by the probe through
#: :mod:`fgattn.gluon_fg`, not by this module)
VARIANT_KNOBS: dict[str, dict[str, bool]] = {
    "e_base": dict(),
    "e_tma": dict(tma_o=True),
    "e_offs": dict(offs_ahead=True),
    "e_rcp": dict(rcp=True),
    "e_all": dict(tma_o=True, offs_ahead=True, rcp=True),
    "e_bc_pp": dict(offs_ahead=True, rcp=True, pingpong=True),
}
#: named barrier of the tma_o row-end meeting (``gluon_fg._O_BAR``; Triton uses 0-3 for CTA / partition barriers,
#: gluon_fg's pingpong 10 and 11)
O_BAR = 12


def check_epilogue_knobs(**knobs: Any) -> dict[str, bool]:
    """The kernel's constexprs (``TMA_O``, ``OFFS_AHEAD``, ``RCP``, ``PINGPONG``) from the knobs (each a bool,
    default False); one ValueError line naming the knob otherwise (runs on any machine)."""
    bad = sorted(set(knobs) - set(KNOBS))
    if bad:
        _fail(f"unknown knob(s) {bad} (known: {list(KNOBS)})")
    for name, v in knobs.items():
        if not isinstance(v, bool):
            _fail(f"{name}={v!r} must be a bool")
    if knobs.get("tma_o", False) and knobs.get("pingpong", False):
        _fail("tma_o and pingpong do not combine (the O staging meets both warpgroups at every row end)")
    return {c: bool(knobs.get(k, False)) for k, c in KNOBS.items()}


def o_desc_ok(out: Any, layout: str) -> str | None:
    """:func:`fgattn.gluon_fg.o_desc_ok` (None if ``out`` suits the O TMA store, else why not)."""
    from .gluon_fg import o_desc_ok as ok

    return ok(out, layout)


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_epilogue: {msg}")


def _overrides(meta: dict[str, bool]) -> dict[str, bool]:
    """:func:`fgattn.gluon_fg_list._constexprs` overrides of the knobs' constexprs (``pingpong`` by its own name)."""
    return {**{c: v for c, v in meta.items() if c != "PINGPONG" and v}, "pingpong": meta["PINGPONG"]}


def compile_epilogue_sm90(dtype: str = "bf16", **knobs: bool) -> Any:
    """The packaged list kernel with ``knobs`` (:func:`check_epilogue_knobs`) compiled for sm_90 without a GPU
    (Triton 3.6 with Gluon on the path; :func:`fgattn.gluon_fg_list.compile_list_sm90`)."""
    from .gluon_fg_list import compile_list_sm90

    if dtype not in ("bf16", "fp16"):
        _fail(f"dtype={dtype!r} must be 'bf16' or 'fp16'")
    return compile_list_sm90(dtype, **_overrides(check_epilogue_knobs(**knobs)))


def fg_attention_gluon_epilogue(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                                sm_scale: float | None = None, out: Any = None, plan: Any = None,
                                programs: int | None = None, **knobs: bool) -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by the packaged list kernel with the row-end
    ``knobs`` (``tma_o``, ``offs_ahead``, ``rcp``, ``pingpong``; module docstring) over a row plan
    (:func:`fgattn.gluon_fg_list.plan_ws2_list`; built here if ``plan`` is None).  ``tma_o`` needs a 16-byte
    aligned ``out`` (one ValueError line otherwise)."""
    meta = check_epilogue_knobs(**knobs)
    if meta["TMA_O"] and out is not None and hasattr(out, "stride"):
        why = o_desc_ok(out, layout)
        if why is not None:
            _fail(why)
    from .gluon_fg_list import launch_list

    return launch_list(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out, plan=plan, programs=programs,
                       fail=_fail, **_overrides(meta))


def compile_list_pp_sm90(dtype: str = "bf16") -> Any:
    """The packaged list kernel with pingpong (:func:`fg_attention_gluon_list_pp`) compiled for sm_90 offline."""
    return compile_epilogue_sm90(dtype, pingpong=True)


def fg_attention_gluon_list_pp(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                               sm_scale: float | None = None, out: Any = None, plan: Any = None,
                               programs: int | None = None) -> Any:
    """The packaged list kernel (:func:`fgattn.gluon_fg_list.fg_attention_gluon_list`) with
    :mod:`fgattn.gluon_fg`'s ``pingpong`` knob on (the probe's ``pp`` variant; the same row plan)."""
    return fg_attention_gluon_epilogue(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out, plan=plan,
                                       programs=programs, pingpong=True)
