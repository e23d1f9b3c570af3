"""In-kernel timeline of the fg ws2 list CTA (issue 12, session 16, helper T; research only).

With the kernel constexpr ``TIMELINE`` of :func:`fgattn.gluon_fg._fg_gluon_ws2` (default off: no parameter and no
code, the packaged binaries unchanged), warp 0 lane 0 of each partition writes the SM's cycle counter (``%clock64``,
one counter per SM, so every event of a CTA is on one clock) at named events into an int64 buffer
``[programs, CAP + 1, 3, EV]``: row slot j (the row's position in the program's plan list; rows j >= CAP are not
recorded), role 0 / 1 the consumer warpgroups (query rows 0-63 / 64-127 of the row), role 2 the producer.  Slot CAP
is a per-CTA header (clock and ``%globaltimer`` at the start and end, for the SM clock rate).  Level 1 records the
row boundary only (the tile loop's SASS stays within 5 static stall cycles of the packaged loop); level 2 adds
per-tile probes (the consumers' ``full`` waits summed per row and the time the second tile's wgmmas were issued;
the producer's ``empty`` waits and gather-issue time summed per row).

This module: the slot names (:data:`CONSUMER_SLOTS`, :data:`PRODUCER_SLOTS`, :data:`HEADER_SLOTS`), the buffer,
the instrumented launch (:func:`fg_attention_timeline`; the block contig CTA:
``fgattn.gluon_contig.contig_attention_gluon(..., timeline=buf)``, consumers only), and the host-side decoder
(:func:`decode`: per-row phases that partition each row's time; :func:`summarize`: medians and spreads;
:func:`row_fit`: per-row and per-tile cycles fitted inside the kernel).  The decoder needs numpy only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CAP", "EV", "ROLES", "TL_EPILOGUES", "CONSUMER_SLOTS", "PRODUCER_SLOTS", "HEADER_SLOTS", "PHASES", "buffer_shape",
           "new_buffer", "fg_attention_timeline", "compile_timeline_sm90", "decode", "clock_ghz", "summarize",
           "row_fit", "boundary_idle", "LEVELS", "decompose"]

#: rows recorded per program (the kernel's ``_TL_CAP``) and int64 slots per (row, role) (``_TL_EV``)
CAP = 64
EV = 24
ROLES = 3
LEVELS = (1, 2)
#: consumer slots (roles 0 / 1): cycle counter at each event; ``fullw_sum`` (level 2) and ``n_tiles`` are values
CONSUMER_SLOTS = {"row_start": 0, "q_ready": 1, "full0": 2, "qk0_issued": 3, "release_done": 4, "qk0_done": 5,
                  "tile1_issued": 6, "loop_end": 7, "last_full_begin": 8, "last_full_done": 9, "last_qk_done": 10,
                  "last_wait0_done": 11, "last_pv_done": 12, "met": 13, "staged": 14, "store_issued": 15,
                  "row_end": 16, "fullw_sum": 17, "n_tiles": 18}
#: producer slots (role 2); ``empty_sum`` / ``issue_sum`` (level 2) and ``n_tiles`` are values
PRODUCER_SLOTS = {"row_start": 0, "empty0_done": 1, "gather0_issued": 2, "row_end": 3, "empty_sum": 4,
                  "issue_sum": 5, "n_tiles": 6}
#: header slots (row slot CAP): role 0 clk_start, clk_end, gt_start (ns), gt_end (ns), rows of the program's list;
#: roles 1 / 2 clk_start, clk_end
HEADER_SLOTS = {"clk_start": 0, "clk_end": 1, "gt_start": 2, "gt_end": 3, "n_rows": 4}
#: consumer phases (name, from-event, to-event): consecutive, so that for a row of >= 2 tiles they sum to the time
#: from its start to the next row's start (``next`` ends at the next row's ``row_start``)
PHASES = (("q_wait", "row_start", "q_ready"), ("full0_wait", "q_ready", "full0"),
          ("qk0_issue", "full0", "qk0_issued"), ("o_release", "qk0_issued", "release_done"),
          ("qk0_rest", "release_done", "qk0_done"), ("body", "qk0_done", "last_full_begin"),
          ("last_full_wait", "last_full_begin", "last_full_done"), ("last_tile", "last_full_done", "last_wait0_done"),
          ("last_pv", "last_wait0_done", "last_pv_done"), ("meet", "last_pv_done", "met"),
          ("stage_o", "met", "staged"), ("store_issue", "staged", "store_issued"),
          ("next", "store_issued", None))


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.timeline: {msg}")


def buffer_shape(programs: int) -> tuple[int, int, int, int]:
    """Shape of the timeline buffer of a launch of ``programs`` programs: (programs, CAP + 1, 3, EV)."""
    if not isinstance(programs, int) or isinstance(programs, bool) or programs < 1:
        _fail(f"programs={programs!r} must be a positive int")
    return (programs, CAP + 1, ROLES, EV)


def new_buffer(programs: int, device: Any = "cuda") -> Any:
    """A timeline buffer (int64, every slot -1 = not written) for ``programs`` programs."""
    import torch

    return torch.full(buffer_shape(programs), -1, dtype=torch.int64, device=device)


def _check_level(level: Any) -> int:
    if isinstance(level, bool) or level not in LEVELS:
        _fail(f"level={level!r} must be one of {LEVELS}")
    return int(level)


#: the row ends the timeline is built on (TMA O store): the packaged entry's and the research deferred ones
TL_EPILOGUES = ("tma_sel", "tma_defer", "tma_defer_pv")


def _check_epilogue(epilogue: Any) -> str:
    if epilogue not in TL_EPILOGUES:
        _fail(f"epilogue={epilogue!r} must be one of {TL_EPILOGUES}")
    return str(epilogue)


def compile_timeline_sm90(dtype: str = "bf16", level: int = 1, epilogue: str = "tma_sel") -> Any:
    """The instrumented fg list kernel (row end ``epilogue``; ``"tma_sel"``: the packaged entry's) compiled for sm_90
    without a GPU (Triton 3.6 with Gluon on the path)."""
    from . import gluon_fg as g
    from .gluon_fg_list import _constexprs

    const = {**_constexprs(_check_epilogue(epilogue)), "TIMELINE": _check_level(level)}
    return g.compile_sm90(g._fg_gluon_ws2, const, dtype, g.BLOCK_M, g.HEAD_DIM, ws2=True)


def fg_attention_timeline(q: Any, k: Any, v: Any, index: Any, buf: Any, *, plan: Any, level: int = 1,
                          layout: str = "bhnd", sm_scale: float | None = None, out: Any = None,
                          epilogue: str = "tma_sel") -> Any:
    """The packaged fg D128 M128 g1 entry's kernel (the ws2 list CTA, row end ``epilogue``: ``"tma_sel"`` the
    packaged one, or a research row end of :data:`TL_EPILOGUES`) over ``plan`` (``fgattn.gluon_fg_list.plan_ws2_list``),
    instrumented: records its timeline into ``buf`` (:func:`new_buffer` of ``plan.programs``; reset it to -1 before a
    launch whose rows you decode).  Same output as the uninstrumented kernel.  ``out`` must allow the O TMA store
    (16-byte aligned)."""
    import torch

    from . import gluon_fg as g
    from .gluon_fg_list import _constexprs, prepare_list_call

    lvl = _check_level(level)
    epi = _check_epilogue(epilogue)
    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=None, fail=_fail)
    if g.o_desc_ok(out, layout) is not None:
        _fail("out is not 16-byte aligned: the timeline is built on the TMA row end")
    if (not isinstance(buf, torch.Tensor) or buf.dtype != torch.int64 or tuple(buf.shape) != buffer_shape(plan.programs)
            or buf.device != q.device or not buf.is_contiguous()):
        _fail(f"buf must be a contiguous int64 tensor of shape {buffer_shape(plan.programs)} on {q.device}")
    const = {**_constexprs(epi), "TIMELINE": lvl}
    o_desc = g.o_desc_for(out, layout, q_desc, p, "tma")
    st = g._strides
    g._fg_gluon_ws2[(plan.programs,)](
        q_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows, **const,
        o_desc=o_desc, Tl=buf)
    return out


# ------------------------------------------------------------------------------------------------ decoder
def _arr(buf: Any) -> Any:
    import numpy as np

    a = buf.detach().cpu().numpy() if hasattr(buf, "detach") else np.asarray(buf)
    if a.ndim != 4 or a.shape[1:] != (CAP + 1, ROLES, EV):
        _fail(f"buffer shape {a.shape} is not (programs, {CAP + 1}, {ROLES}, {EV})")
    return a.astype(np.int64)


def clock_ghz(buf: Any) -> float:
    """The SM clock (GHz) over the launch: median over programs of (clk_end - clk_start) / (gt_end - gt_start) of
    the header of consumer 0 (nan if no program wrote both)."""
    import numpy as np

    a = _arr(buf)
    h = a[:, CAP, 0]
    dc = h[:, HEADER_SLOTS["clk_end"]] - h[:, HEADER_SLOTS["clk_start"]]
    dt = h[:, HEADER_SLOTS["gt_end"]] - h[:, HEADER_SLOTS["gt_start"]]
    ok = (h[:, HEADER_SLOTS["clk_start"]] >= 0) & (h[:, HEADER_SLOTS["gt_start"]] >= 0) & (dt > 0) & (dc > 0)
    return float(np.median(dc[ok] / dt[ok])) if ok.any() else float("nan")


def decode(buf: Any) -> list[dict[str, Any]]:
    """One record per recorded row of every program with >= 2 recorded rows' successor known: program, j, tiles,
    ``row_cycles`` (consumer 0's row start to its next row start, or to its end for the program's last row) and,
    per consumer w (0 / 1), each phase of :data:`PHASES` in cycles as ``c{w}_{phase}`` (None where an event was not
    written: a row of one tile has no last-tile phases); the producer's ``p_lead`` (consumer 0's row start minus the
    producer's first gather issue of the row: > 0 = the gathers were out before the consumers reached the row),
    ``p_empty0_wait`` (producer row start to its first ``empty`` wait done), ``p_gather0_issue`` (that wait to its
    first gathers issued: the index entries' latency + the issue), and, level 2, ``c{w}_fullw_sum`` /
    ``p_empty_sum`` / ``p_issue_sum``; ``idle_boundary`` (:func:`boundary_idle`).  Rows with an unwritten start are
    skipped."""
    a = _arr(buf)
    out: list[dict[str, Any]] = []
    C, P = CONSUMER_SLOTS, PRODUCER_SLOTS
    for pid in range(a.shape[0]):
        n_rows = int(a[pid, CAP, 0, HEADER_SLOTS["n_rows"]])
        n = min(n_rows, CAP)
        ends = [int(a[pid, CAP, w, HEADER_SLOTS["clk_end"]]) for w in (0, 1)]
        for j in range(n):
            c = a[pid, j]
            if c[0, C["row_start"]] < 0 or c[1, C["row_start"]] < 0:
                continue
            nxt = [int(a[pid, j + 1, w, C["row_start"]]) if j + 1 < n else (ends[w] if n == n_rows else -1)
                   for w in (0, 1)]
            r: dict[str, Any] = dict(program=pid, j=j, n_rows=n_rows, tiles=int(c[0, C["n_tiles"]]),
                                     row_cycles=(nxt[0] - int(c[0, C["row_start"]])) if nxt[0] >= 0 else None)
            for w in (0, 1):
                for name, e0, e1 in PHASES:
                    t0 = int(c[w, C[e0]])
                    t1 = nxt[w] if e1 is None else int(c[w, C[e1]])
                    r[f"c{w}_{name}"] = (t1 - t0) if t0 >= 0 and t1 >= 0 else None
                fw = int(c[w, C["fullw_sum"]])
                r[f"c{w}_fullw_sum"] = fw if fw >= 0 else None
                t1i = int(c[w, C["tile1_issued"]])
                r[f"c{w}_softmax0"] = (t1i - int(c[w, C["qk0_done"]])) if t1i >= 0 else None
            p = c[2]
            ok = p[P["row_start"]] >= 0 and p[P["gather0_issued"]] >= 0
            r["p_lead"] = int(c[0, C["row_start"]] - p[P["gather0_issued"]]) if ok else None
            r["p_empty0_wait"] = int(p[P["empty0_done"]] - p[P["row_start"]]) if ok else None
            r["p_gather0_issue"] = int(p[P["gather0_issued"]] - p[P["empty0_done"]]) if ok else None
            r["p_row"] = int(p[P["row_end"]] - p[P["row_start"]]) if ok and p[P["row_end"]] >= 0 else None
            for k_ in ("empty_sum", "issue_sum"):
                r[f"p_{k_}"] = int(p[P[k_]]) if p[P[k_]] >= 0 else None
            r["idle_boundary"] = boundary_idle(a, pid, j, n)
            out.append(r)
    return out


def boundary_idle(a: Any, pid: int, j: int, n: int) -> int | None:
    """Cycles from the later of the two consumers' last PV of row j done to the earlier of their tile-0 QK issues
    of row j + 1: the window at the row boundary with no wgmma of either warpgroup in flight (None for the
    program's last row or an unwritten event; negative if the windows do not overlap)."""
    C = CONSUMER_SLOTS
    if j + 1 >= n:
        return None
    done = [int(a[pid, j, w, C["last_pv_done"]]) for w in (0, 1)]
    nxt = [int(a[pid, j + 1, w, C["qk0_issued"]]) for w in (0, 1)]
    if min(done + nxt) < 0:
        return None
    return min(nxt) - max(done)


def _stats(xs: list[float]) -> dict[str, float]:
    import numpy as np

    v = np.asarray(xs, dtype=float)
    return dict(n=int(v.size), median=float(np.median(v)), p10=float(np.percentile(v, 10)),
                p90=float(np.percentile(v, 90)), mean=float(v.mean()))


def summarize(rows: list[dict[str, Any]], ghz: float, *, skip_first: bool = True) -> list[dict[str, Any]]:
    """Per quantity (every numeric field of :func:`decode`'s records but program / j / n_rows): n, median, p10,
    p90, mean in cycles and the median / mean in µs at ``ghz``.  ``skip_first``: leave out each program's row 0
    (the cold start: Q, the first entries and gathers)."""
    if not ghz > 0:
        _fail(f"ghz={ghz!r} must be > 0")
    use = [r for r in rows if not (skip_first and r["j"] == 0)]
    keys = [k for k in (use[0] if use else {}) if k not in ("program", "j", "n_rows")]
    out = []
    for k in keys:
        xs = [r[k] for r in use if r.get(k) is not None]
        if xs:
            s = _stats(xs)
            out.append(dict(quantity=k, **s, median_us=s["median"] / ghz / 1e3, mean_us=s["mean"] / ghz / 1e3))
    return out


def row_fit(rows: list[dict[str, Any]], *, skip_first: bool = True) -> dict[str, float] | None:
    """Least squares row_cycles = c_row + c_tile · tiles over the decoded rows (``skip_first``: without each
    program's row 0): the per-row and per-tile cycles measured inside the kernel, with n and the tiles' range;
    None with fewer than 3 rows or a single tile count."""
    import numpy as np

    use = [r for r in rows if r["row_cycles"] is not None and not (skip_first and r["j"] == 0)]
    if len(use) < 3:
        return None
    x = np.array([r["tiles"] for r in use], dtype=float)
    y = np.array([r["row_cycles"] for r in use], dtype=float)
    if np.ptp(x) == 0:
        return None
    c_tile, c_row = np.polyfit(x, y, 1)
    return dict(c_row_cycles=float(c_row), c_tile_cycles=float(c_tile), n=len(use), tiles_min=float(x.min()),
                tiles_max=float(x.max()))


def decompose(buf: Any) -> dict[str, float] | None:
    """Where one launch's time goes, in cycles of the slowest program (the kernel's span): ``span_max``, and its
    parts ``tiles`` (the in-kernel per-tile cycles × the mean recorded tiles per program), ``rows`` (the in-kernel
    per-row cycles × the mean rows per program), ``first_row`` (the median over programs of their first row's
    cycles beyond what the fit gives for its tiles: the cold start), ``tail`` (slowest minus mean program span) and
    ``rest`` (the remainder: rows past the recorded CAP, fit error); None without a row fit."""
    import numpy as np

    a = _arr(buf)
    recs = decode(a)
    f = row_fit(recs)
    if f is None:
        return None
    h = a[:, CAP, 0]
    span = (h[:, HEADER_SLOTS["clk_end"]] - h[:, HEADER_SLOTS["clk_start"]]).astype(float)
    tiles = np.zeros(a.shape[0])
    for r in recs:
        tiles[r["program"]] += r["tiles"]
    first = [r["row_cycles"] - (f["c_row_cycles"] + f["c_tile_cycles"] * r["tiles"]) for r in recs
             if r["j"] == 0 and r["row_cycles"] is not None]
    out = dict(span_max=float(span.max()), span_mean=float(span.mean()),
               tiles=f["c_tile_cycles"] * float(tiles.mean()),
               rows=f["c_row_cycles"] * float(h[:, HEADER_SLOTS["n_rows"]].mean()),
               first_row=float(np.median(first)) if first else 0.0, tail=float(span.max() - span.mean()))
    out["rest"] = out["span_max"] - out["tiles"] - out["rows"] - out["first_row"] - out["tail"]
    return out


# ------------------------------------------------------------------------------------------------ minimal tail probe
# Issue 12, session 16, helper T2 (kernels/NOTES.md "Session 16, T2"): the kernel constexpr ``TL_HDR`` of
# :func:`fgattn.gluon_fg._fg_gluon_ws2` (default off: no parameter, no code) makes consumer 0's warp 0 lane 0 write
# only a per-CTA header into an int64 buffer [programs, HDR_EV]: at the CTA's start %globaltimer, %clock64, %smid,
# at its end %clock64, %globaltimer; nothing per row.  It measures the end-of-launch tail of the packaged kernel
# with (close to) no probe effect.

#: int64 slots per program of the minimal probe's buffer (the kernel's ``_TL_H``) and their names
HDR_EV = 8
HDR_SLOTS = {"clk_start": 0, "clk_end": 1, "gt_start": 2, "gt_end": 3, "smid": 4}
#: a CTA is "slow" when its span is > SLOW_REL × the launch's mean span
SLOW_REL = 1.05


def hdr_buffer_shape(programs: int, launches: int = 1) -> tuple[int, int, int]:
    """Shape of the minimal probe's buffer for ``launches`` launches of ``programs`` programs (each launch writes
    ``buf[i]``): (launches, programs, HDR_EV)."""
    buffer_shape(programs)
    if not isinstance(launches, int) or isinstance(launches, bool) or launches < 1:
        _fail(f"launches={launches!r} must be a positive int")
    return (launches, programs, HDR_EV)


def new_hdr_buffer(programs: int, launches: int = 1, device: Any = "cuda") -> Any:
    """A minimal-probe buffer (int64, every slot -1 = not written)."""
    import torch

    return torch.full(hdr_buffer_shape(programs, launches), -1, dtype=torch.int64, device=device)


def compile_tail_probe_sm90(dtype: str = "bf16") -> Any:
    """The packaged fg list kernel (row end ``tma_sel``) with the minimal probe, compiled for sm_90 without a GPU."""
    from . import gluon_fg as g
    from .gluon_fg_list import _constexprs

    return g.compile_sm90(g._fg_gluon_ws2, {**_constexprs("tma_sel"), "TL_HDR": True}, dtype, g.BLOCK_M,
                          g.HEAD_DIM, ws2=True)


def fg_attention_tail_probe(q: Any, k: Any, v: Any, index: Any, buf: Any, *, plan: Any, layout: str = "bhnd",
                            sm_scale: float | None = None, out: Any = None) -> Any:
    """The packaged fg D128 M128 g1 entry's kernel (ws2 list CTA, row end ``tma_sel``) over ``plan`` with the minimal
    probe: each CTA's header into ``buf`` (a contiguous int64 [plan.programs, HDR_EV] tensor, e.g. one launch's
    slice of :func:`new_hdr_buffer`).  Same output as the uninstrumented kernel."""
    import torch

    from . import gluon_fg as g
    from .gluon_fg_list import _constexprs, prepare_list_call

    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=None, fail=_fail)
    if g.o_desc_ok(out, layout) is not None:
        _fail("out is not 16-byte aligned: the probe is built on the TMA row end")
    if (not isinstance(buf, torch.Tensor) or buf.dtype != torch.int64 or tuple(buf.shape) != (plan.programs, HDR_EV)
            or buf.device != q.device or not buf.is_contiguous()):
        _fail(f"buf must be a contiguous int64 tensor of shape {(plan.programs, HDR_EV)} on {q.device}")
    o_desc = g.o_desc_for(out, layout, q_desc, p, "tma")
    st = g._strides
    g._fg_gluon_ws2[(plan.programs,)](
        q_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows,
        **_constexprs("tma_sel"), o_desc=o_desc, Tl=buf, TL_HDR=True)
    return out


def _hdr(buf: Any) -> Any:
    import numpy as np

    a = buf.detach().cpu().numpy() if hasattr(buf, "detach") else np.asarray(buf)
    if a.ndim != 2 or a.shape[1] != HDR_EV or a.shape[0] < 2:
        _fail(f"header buffer shape {a.shape} is not (programs >= 2, {HDR_EV})")
    a = a.astype(np.int64)
    if (a[:, :5] < 0).any():
        _fail(f"{int((a[:, :5] < 0).any(axis=1).sum())} program(s) did not write their header")
    if ((a[:, 1] <= a[:, 0]) | (a[:, 3] <= a[:, 2])).any():
        _fail("a program's end is not after its start")
    return a


def tail_ctas(buf: Any) -> dict[str, Any]:
    """Per CTA of one launch (numpy arrays): ``smid``, ``span_cycles``, ``span_ns``, ``mhz`` (the SM's clock over
    the CTA: cycles / ns · 1e3), ``start_ns`` / ``end_ns`` (%globaltimer relative to the launch's first start)."""
    import numpy as np

    a = _hdr(buf)
    s = HDR_SLOTS
    t0 = a[:, s["gt_start"]].min()
    cyc = (a[:, s["clk_end"]] - a[:, s["clk_start"]]).astype(float)
    ns = (a[:, s["gt_end"]] - a[:, s["gt_start"]]).astype(float)
    return dict(smid=a[:, s["smid"]].astype(int), span_cycles=cyc, span_ns=ns, mhz=cyc / np.maximum(ns, 1.0) * 1e3,
                start_ns=(a[:, s["gt_start"]] - t0).astype(float), end_ns=(a[:, s["gt_end"]] - t0).astype(float))


def tpc_pairs(smid: Any, span: Any) -> dict[str, float]:
    """TPC pairing of per-CTA spans (one CTA per SM assumed; the TPC of SM s is s // 2): ``r_tpc`` = correlation of the
    spans of SMs 2t and 2t + 1, ``r_cross`` = of SMs 2t + 1 and 2t + 2 (neighbours in different TPCs), ``slow`` =
    CTAs with span > SLOW_REL × mean, ``slow_paired`` = the share of slow CTAs whose TPC partner is slow too,
    ``chance`` = that share if slow CTAs were placed at random (nan where undefined)."""
    import numpy as np

    smid = np.asarray(smid, dtype=int)
    span = np.asarray(span, dtype=float)
    by = {int(s): float(x) for s, x in zip(smid, span, strict=True)}
    ev = [(by[s], by[s + 1]) for s in sorted(by) if s % 2 == 0 and s + 1 in by]
    od = [(by[s], by[s + 1]) for s in sorted(by) if s % 2 == 1 and s + 1 in by]

    def corr(pairs: list[tuple[float, float]]) -> float:
        if len(pairs) < 3:
            return float("nan")
        x = np.array(pairs)
        return float(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) if x.std(axis=0).min() > 0 else float("nan")

    slow = {s for s, x in by.items() if x > SLOW_REL * span.mean()}
    paired = [s for s in slow if (s ^ 1) in by]
    n = len(by)
    return dict(r_tpc=corr(ev), r_cross=corr(od), slow=float(len(slow)),
                slow_paired=(sum((s ^ 1) in slow for s in paired) / len(paired)) if paired else float("nan"),
                chance=((len(slow) - 1) / (n - 1)) if n > 1 and slow else float("nan"))


def tail_summary(buf: Any) -> dict[str, float]:
    """One launch's tail (the minimal probe's header): ``launch_ns`` (first CTA start to last CTA end),
    ``slowest_over_mean`` (span in cycles), ``tail_frac`` = (slowest − mean span) / mean span, ``last_minus_median_ns``
    (the last CTA's finish minus the median finish) and ``last_minus_median_frac`` (over ``launch_ns``),
    ``lever_max`` = (last finish − mean finish) / launch_ns (what a perfect tail lever could win: every CTA ending at
    the mean finish), ``start_skew_ns`` (last CTA start − first), ``mhz_median`` / ``mhz_min`` / ``mhz_max`` (the
    SMs' clocks), ``mhz_r_span`` (correlation of a CTA's clock with its span in cycles), and :func:`tpc_pairs`."""
    import numpy as np

    c = tail_ctas(buf)
    span, end = c["span_cycles"], c["end_ns"]
    launch = float(end.max())
    mhz = c["mhz"]
    r = float(np.corrcoef(mhz, span)[0, 1]) if mhz.std() > 0 and span.std() > 0 else float("nan")
    return dict(programs=float(span.size), launch_ns=launch, slowest_over_mean=float(span.max() / span.mean()),
                tail_frac=float((span.max() - span.mean()) / span.mean()),
                last_minus_median_ns=float(end.max() - np.median(end)),
                last_minus_median_frac=float((end.max() - np.median(end)) / launch),
                lever_max=float((end.max() - end.mean()) / launch), start_skew_ns=float(c["start_ns"].max()),
                mhz_median=float(np.median(mhz)), mhz_min=float(mhz.min()), mhz_max=float(mhz.max()), mhz_r_span=r,
                **tpc_pairs(c["smid"], span))


def slow_repeat(bufs: list[Any], top: int = 6) -> dict[str, float]:
    """Whether the same SMs are slow across launches: over consecutive launch pairs, the mean number of SM ids shared
    by the ``top`` slowest CTAs of each (``shared``) against chance (top² / programs), and the correlation of the
    per-SM span rank between consecutive launches (``r_rank``, mean over pairs)."""
    import numpy as np

    if len(bufs) < 2:
        _fail("slow_repeat needs >= 2 launches")
    tops, ranks = [], []
    n = 0
    for b in bufs:
        c = tail_ctas(b)
        n = c["smid"].size
        order = np.argsort(-c["span_cycles"])
        tops.append({int(c["smid"][i]) for i in order[:top]})
        rk = np.empty(n)
        rk[c["smid"].argsort()] = c["span_cycles"][c["smid"].argsort()].argsort().argsort()
        ranks.append(rk)
    shared = [len(tops[i] & tops[i + 1]) for i in range(len(tops) - 1)]
    rr = [float(np.corrcoef(ranks[i], ranks[i + 1])[0, 1]) for i in range(len(ranks) - 1)]
    return dict(shared=float(np.mean(shared)), chance=top * top / n, r_rank=float(np.mean(rr)))
