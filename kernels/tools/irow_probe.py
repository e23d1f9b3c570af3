"""The independent-row fg kernel (``fgattn.gluon_fg_irow``: one consumer warpgroup per 128-query row, 64-key tiles,
two CTAs per SM) against the packaged list-scheduled entry kernel (tma_sel row end) and cuDNN SDPA: float64 check,
paired graph timing with the SM clock per cell, occupancy, the pre-registered rule (standalone and through a
mean-tiles-per-row dispatch), paired fits.

Issue 12, session 15, helper X2 (kernels/NOTES.md, "Session 15 research: independent-row warpgroups (helper X2)")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/irow_probe.py --out $OUT        # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/irow_probe.py --dry-run         # any machine
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/irow_probe.py --offline-compile
    python3 kernels/tools/irow_probe.py --analyze CSV                                       # CPU: rule + fits

The machinery (random check cases in child processes, prewarm, interleaved shuffled CUDA-graph rounds with cuDNN,
CSV columns, paired fits) is ``epilogue_probe``'s, run with this probe's variants, rule, file tag and timing loop
(the NVML SM clock sampled during each case's own replays: ``sm_mhz`` per cell).  ``list`` =
:func:`fgattn.gluon_fg_list.fg_attention_gluon_list` with ``epilogue="tma_sel"`` (the packaged entry's kernel at
772420a; the baseline of every ratio) on the list plan of SM-count programs; ``list_ctl`` = the same call timed as
a second case (the control); ``irow`` = :func:`fgattn.gluon_fg_irow.fg_attention_gluon_irow` on the list plan of
2 x as many programs (the same planner, built before capture); ``irow1`` (diagnostic, not a candidate, not
checked: the same kernel) on the plan of SM-count programs, one CTA per SM: the row lane alone, without the other
CTA's overlap.  Call 2 (after call 1's outcome): ``irow2`` / ``irow2o`` =
:func:`fgattn.gluon_fg_irow.fg_attention_gluon_irow2`, both lanes of an SM in one CTA on the 2 x SM-count list plan,
``irow2o`` with the lanes taking turns issuing their wgmmas (``irow2``: the same CTA unordered, the ordering's
control).
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

import epilogue_probe as ep  # noqa: E402
from probe_cells import control_void_reasons, geo_mean  # noqa: E402

VARIANTS = ("list", "list_ctl", "irow", "irow1", "irow2", "irow2o")
#: call 1 judged irow; call 2 (pre-registered separately) judges irow2o only
CANDIDATES = ("irow", "irow2o")
TAG = "fg-irow"
#: the pre-registered rule (kernels/NOTES.md, session 15, helper X2, written before the call): the control valid
#: (``list_ctl``: geo-mean over all timed cells 1 +- CONTROL_GEO_BAND, every cell 1 +- CONTROL_CELL_BAND), the
#: float64 check passed (every case), and, through the dispatch "irow when the cell's mean executed 128-key tiles
#: per row <= DISPATCH_TILES, else the entry": every dispatched cell <= MAX_REL x list, and the geo-mean over the
#: cells with d <= LOW_D of the dispatched ratio (rel where dispatched, 1 elsewhere) <= LOW_GEO_MAX
CONTROL_GEO_BAND = 0.01
CONTROL_CELL_BAND = 0.04
MAX_REL = 1.02
LOW_D = 0.05
LOW_GEO_MAX = 0.93
DISPATCH_TILES = 16.0
SHAPES = "12x32760,40x32760,40x75600,12x32760+512,12x75600,40x32760+512,12x75600+512,40x75600+512"
DENSITIES = "0.02,0.05,0.1"
LONG_ROWS = "12x32760:0.02/0.05/0.1/0.5,40x75600:0.02/0.05/0.1/0.5"
DEFAULTS = ["--variants", "list,list_ctl,irow,irow1", "--check-variants", "list,irow", "--shapes", SHAPES,
            "--densities", DENSITIES, "--shape-densities", LONG_ROWS, "--rounds", "5", "--seed", "152",
            "--check", "110", "--check-seed", "1525", "--budget-s", "110"]


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of ``name`` writing ``out`` (``plan``: the entry's list plan; irow runs the memoised plan of 2 x
    its programs, :func:`fgattn.gluon_fg_irow.irow_plan`)."""
    from fgattn.gluon_fg_irow import (
        fg_attention_gluon_irow,
        fg_attention_gluon_irow2,
        irow_plan,
        irow_programs,
    )
    from fgattn.gluon_fg_list import fg_attention_gluon_list

    if name in ("list", "list_ctl"):
        return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                       epilogue="tma_sel")
    if name in ("irow2", "irow2o"):
        return fg_attention_gluon_irow2(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale,
                                        ctas=None if plan is None else plan.programs, order=name == "irow2o")
    if name not in ("irow", "irow1"):
        raise ValueError(f"irow_probe: unknown variant {name!r}")
    progs = plan.programs if plan is not None and name == "irow1" else None
    pl = None if plan is None else irow_plan(idx, progs or irow_programs(plan.programs))
    return fg_attention_gluon_irow(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=pl)


# ------------------------------------------------------------------------------------------------ offline (CPU)
def offline_compile(variants: tuple[str, ...] = ("list", "irow", "irow_ps", "irow2", "irow2o")) -> list[dict[str, Any]]:
    """Each kernel compiled for sm_90 (bf16, fp16): launch registers, stack, shared memory, setmaxnreg values,
    HGMMA, STL, the consumer tile loops (:func:`xrow_probe.tile_loops`: instructions, static stall cycles,
    scoreboard waits) and the producer loop's instructions / LDGSTS / local-memory accesses.  ``irow_ps``: irow
    with ``psmem`` (P through shared memory); ``irow2``: both lanes in one CTA (offline only, never launched)."""
    import triton
    import xrow_probe as xp
    from compile_report import cuobjdump
    from fgattn.gluon_fg_irow import compile_irow2_sm90, compile_irow_sm90
    from fgattn.gluon_fg_list import compile_list_sm90

    rows = []
    for name in variants:
        for dt in ("bf16", "fp16"):
            t0 = time.time()
            if name == "list":
                k = compile_list_sm90(dt, "tma_sel")
            elif name in ("irow2", "irow2o"):
                k = compile_irow2_sm90(dt, order=name == "irow2o")
            else:
                k = compile_irow_sm90(dt, psmem=name == "irow_ps")
            res, sass = cuobjdump(k)
            ins = xp._sass_ins(sass)
            loops = []
            for body in xp._loops(ins):
                hg = sum("HGMMA" in t for t, _ in body)
                if hg in (16, 24) and sum("MUFU" in t for t, _ in body) >= 60 and len(body) < 1000:
                    loops.append(dict(insts=len(body), hgmma=hg, stall_cycles=sum((h >> 41) & 0xF for _, h in body),
                                      sb_waits=sum(1 for _, h in body if (h >> 52) & 0x3F),
                                      warpgroup_ops=sum(t.startswith("WARPGROUP") for t, _ in body),
                                      local=sum(("STL" in t or "LDL" in t) for t, _ in body)))
            prod = None
            for body in xp._loops(ins):  # the shortest loop holding one stage's cp.async (LDGSTS) and no wgmma
                n = sum("LDGSTS" in t for t, _ in body)
                if n >= 16 and not any("HGMMA" in t for t, _ in body):
                    prod = dict(insts=len(body), ldgsts=n, stall_cycles=sum((h >> 41) & 0xF for _, h in body),
                                local=sum(("STL" in t or "LDL" in t) for t, _ in body))
                    break
            r = dict(variant=name, dtype=dt, launch_regs=int(re.search(r"REG:(\d+)", res).group(1)),
                     stack=int(re.search(r"STACK:(\d+)", res).group(1)), smem_bytes=k.metadata.shared,
                     setmaxnreg_values=sorted({int(x, 16) for x in
                                               re.findall(r"USETMAXREG\.\w+\.CTAPOOL (?:UP0, )?(0x[0-9a-f]+)", sass)}),
                     hgmma=sum("HGMMA" in t for _, t, _ in ins), stl=sum(t.startswith("STL") for _, t, _ in ins),
                     sass_insts=len(ins), tile_loops=loops, producer_loop=prod, compile_s=round(time.time() - t0, 1),
                     triton=triton.__version__)
            print(json.dumps(r), flush=True)
            rows.append(r)
    return rows


# ------------------------------------------------------------------------------------------------ GPU side
def occupancy() -> dict[str, Any]:
    """CTAs per SM of the last irow launch (``cuOccupancyMaxActiveBlocksPerMultiprocessor`` with its 256 threads
    and dynamic shared memory), its registers and spills; {} where the driver API or the launch is missing."""
    import ctypes

    from fgattn import gluon_fg_irow as gi

    k = gi.LAST_LAUNCH.get("kernel")
    if k is None:
        return {}
    try:
        cu = ctypes.CDLL("libcuda.so.1")
        n = ctypes.c_int(0)
        rc = cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(n), ctypes.c_void_p(k.function),
                                                             ctypes.c_int(256), ctypes.c_size_t(k.metadata.shared))
        return dict(ctas_per_sm=n.value if rc == 0 else f"rc {rc}", regs=k.n_regs, spills=k.n_spills,
                    smem_bytes=k.metadata.shared)
    except (OSError, AttributeError) as e:
        return dict(error=f"{type(e).__name__}: {e}"[:200])


def time_shapes(args, meta: dict[str, str]) -> Path:
    """Paired interleaved graph timing (cuDNN + variants per shape and density), one CSV; the SM clock is read
    through NVML during each case's timed replays (``sm_mhz``: median of those samples, all rounds)."""
    import torch
    from bench_kernels import ClockSampler, NvmlClock, make_qkv, sdpa, timed_rounds
    from entry_regress import build_index, row_stats
    from fgattn.gluon_fg_irow import irow2_plan, irow_plan, irow_programs
    from rowpipe_probe import COLS, result_rows
    from ws2_list_probe import D, G, M, densities_for

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    path = args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}.csv"
    clocks = ClockSampler(0.5)
    nvml = NvmlClock()
    print(f"[time] NVML per-case clock: {nvml.ok}", flush=True)
    t0 = time.perf_counter()
    occ: dict[str, Any] = {}
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + ["M", "gran_n", "plan_makespan_over_mean", "programs", "sm_mhz",
                                                 "sm_mhz_min", "sm_mhz_max", "mhz_samples", "irow_ctas_per_sm"]
                           + list(meta), extrasaction="ignore")
        w.writeheader()
        for si, (h, nv, nt) in enumerate(args.shape_list):
            shape = f"H{h} N{nv}" + (f"+{nt}text" if nt else "") + f" D{D}"
            if time.perf_counter() - t0 > args.budget_s:
                print(f"[time] budget reached, skipping {shape}", flush=True)
                continue
            n = nv + nt
            sets = make_qkv(1, h, n, D, 1 if h * n * D * 6 > 1e9 else 2)
            obuf = torch.empty_like(sets[0][0])
            cases: list[dict[str, Any]] = [dict(variant="cudnn", kernel="sdpa_cudnn", fn=sdpa("cudnn"), dt=1.0,
                                                dens=1.0, stats={}, cfg="torch SDPA cuDNN backend")]
            pm: dict[tuple[str, float], tuple[str, int]] = {}
            for dt_ in densities_for(args, (h, nv, nt)):
                idx = build_index(h, nv, nt, dt_, "cuda")
                st = row_stats(idx, sms)
                plan = ep.make_plan(idx)
                plan2 = irow_plan(idx, irow_programs(plan.programs))  # memoised before capture
                plan1 = irow_plan(idx, plan.programs)
                plan3 = irow2_plan(idx, plan.programs)[0]
                for v in args.variant_list:
                    pl = dict(irow=plan2, irow1=plan1, irow2=plan3, irow2o=plan3).get(v, plan)
                    pm[(v, dt_)] = (f"{pl.makespan / pl.mean_load:.4f}", pl.programs)
                    cfg = (f"fgattn.gluon_fg_list tma_sel (list plan c_row 3, {plan.programs} programs)"
                           if v in ("list", "list_ctl") else
                           f"fgattn.gluon_fg_irow {v} (list plan c_row 3, {pl.programs} lanes)")
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=idx.density(n), stats=st, cfg=cfg,
                                      fn=lambda q, k, v_, idx=idx, name=v, o=obuf, pl=plan: run_variant(
                                          name, q, k, v_, idx, o, plan=pl)))
            torch.cuda.synchronize()
            ts = time.time()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si,
                         clock=nvml if nvml.ok else None)
            if not occ and "irow" in args.variant_list:
                occ = occupancy()
                print(f"[time] irow occupancy {occ}", flush=True)
            clk = clocks.window(ts, time.time())
            mhz = {(c["variant"], c["dt"]): sorted(c.get("mhz") or []) for c in cases}
            for r in result_rows(cases, sets, args.seed + si, shape, h, n, nt, clk):
                key = (r["variant"], r["density_target"])
                s = mhz.get(key) or []
                pmv = pm.get(key, ("", ""))
                w.writerow({**r, "M": M, "gran_n": G, "plan_makespan_over_mean": pmv[0], "programs": pmv[1],
                            "sm_mhz": s[len(s) // 2] if s else "", "sm_mhz_min": s[0] if s else "",
                            "sm_mhz_max": s[-1] if s else "", "mhz_samples": len(s),
                            "irow_ctas_per_sm": occ.get("ctas_per_sm", ""), **meta})
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
            cases.clear()
            del sets
            torch.cuda.empty_cache()
    clocks.stop()
    (args.out / f"irow-occupancy{args.tag}.json").write_text(json.dumps(occ))
    return path


# ------------------------------------------------------------------------------------------------ rule (CPU)
def _cells(rows: list[dict[str, str]]) -> tuple[dict[str, dict[tuple[str, float], float]], dict]:
    rel: dict[str, dict[tuple[str, float], float]] = {}
    tiles: dict[tuple[str, float], float] = {}
    for r in rows:
        key = (r["shape"], float(r["density_target"]))
        if r["variant"] not in ("cudnn", "list") and r.get("rel_list", "") != "":
            rel.setdefault(r["variant"], {})[key] = float(r["rel_list"])
        if r["variant"] == "list" and r.get("exec_tiles_per_row", "") != "":
            tiles[key] = float(r["exec_tiles_per_row"])
    return rel, tiles


def rule_verdict(rows: list[dict[str, str]], failed: set[str] | None = None
                 ) -> tuple[str, dict[str, tuple[str, list[str]]], str | None]:
    """The pre-registered rule (module constants) on a timing CSV's rows: ('valid' | 'void', {candidate:
    (verdict, reasons)}, winner or None).  Reasons also give the standalone figures (every cell, geo-means) and
    the data's own crossover (the largest tiles-per-row threshold with every cell at or below it <= MAX_REL:
    development information, not the rule)."""
    failed = failed or set()
    rel, tiles = _cells(rows)
    ctl = rel.get("list_ctl", {})
    if not ctl:
        return "void", {}, None
    why = control_void_reasons("list_ctl", ctl, CONTROL_GEO_BAND, CONTROL_CELL_BAND)
    if why:
        return "void", {"list_ctl": ("void", why)}, None
    out: dict[str, tuple[str, list[str]]] = {}
    winner = None
    for c in CANDIDATES:
        rc = rel.get(c)
        if rc is None:
            continue
        bad = ["the float64 check failed or did not run"] if c in failed else []
        if set(rc) != set(ctl):
            bad.append("not timed at every cell")
        disp = {k: (v if tiles.get(k, 1e9) <= DISPATCH_TILES else 1.0) for k, v in rc.items()}
        picked = sorted(k for k in rc if tiles.get(k, 1e9) <= DISPATCH_TILES)
        bad += [f"{rc[k]:.3f} > {MAX_REL} at dispatched {k[0]} d {k[1]}" for k in picked if rc[k] > MAX_REL]
        low = [v for k, v in disp.items() if k[1] <= LOW_D]
        lg = geo_mean(low) if low else float("nan")
        if not picked:
            bad.append(f"no cell at <= {DISPATCH_TILES} tiles per row")
        if not low or not lg <= LOW_GEO_MAX:
            bad.append(f"dispatched geo-mean {lg:.3f} over the d <= {LOW_D} cells > {LOW_GEO_MAX}")
        ok_thr = [t for t in sorted(set(tiles.values())) if all(rc[k] <= MAX_REL for k in rc if tiles.get(k, 1e9) <= t)]
        info = (f"standalone {min(rc.values()):.3f}-{max(rc.values()):.3f}, geo all {geo_mean(list(rc.values())):.3f}, "
                f"geo d <= {LOW_D} {geo_mean([v for k, v in rc.items() if k[1] <= LOW_D]):.3f}; dispatched at "
                f"<= {DISPATCH_TILES} tiles/row: {len(picked)} cells, geo d <= {LOW_D} {lg:.3f}; data crossover "
                f"(development) {max(ok_thr) if ok_thr else 'none'} tiles/row")
        out[c] = ("not eligible", bad + [info]) if bad else ("eligible", [info])
        if not bad:
            winner = c
    return "valid", out, winner


_EP_CHECK = ep.check_in_processes


def _check_in_processes(args, meta: dict[str, str]) -> set[str]:
    """``epilogue_probe.check_in_processes``; irow1 (the same kernel, not checked itself) fails with irow."""
    failed = _EP_CHECK(args, meta)
    return failed | ({"irow1"} if "irow" in failed else set())


@contextlib.contextmanager
def _patched() -> Iterator[None]:
    """Run ``epilogue_probe``'s machinery with this probe's variants, rule, tag, launches, timing loop and file (its
    check child processes re-run this file); its module globals are restored on exit."""
    new = dict(VARIANTS=VARIANTS, CANDIDATES=CANDIDATES, TAG=TAG, LOW_D=LOW_D, run_variant=run_variant,
               offline_compile=offline_compile, time_shapes=time_shapes, rule_verdict=rule_verdict,
               check_in_processes=_check_in_processes, __file__=str(Path(__file__).resolve()))
    saved = {k: getattr(ep, k) for k in new}
    for k, v in new.items():
        setattr(ep, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(ep, k, v)


def main(argv: list[str] | None = None) -> int:
    with _patched():
        return ep.main(DEFAULTS + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
