"""Helper W2's TMA-gather candidates (``fgattn.gluon_fg_tmagather.fg_attention_tg_auto``: the dispatch between the
TMA-gather CTA with the W2 consumer and the packaged list kernel) against the packaged entry kernel and cuDNN SDPA:
float64 check through the dispatch, paired graph timing, the pre-registered rule (kernels/NOTES-tma-gather.md,
"W2"), paired fits.  Issue 12, session 16::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/tmagather_w2_probe.py --out $OUT      # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/tmagather_w2_probe.py --dry-run       # any machine
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/tmagather_w2_probe.py --offline-compile
    python3 kernels/tools/tmagather_w2_probe.py --analyze CSV                                     # CPU: rule + fits
    python3 kernels/tools/tmagather_w2_probe.py --routes CSV                                      # CPU: check routes

The machinery is ``epilogue_probe``'s (as ``tmagather_probe``), run with these variants: ``list`` =
:func:`fgattn.gluon_fg_list.fg_attention_gluon_list` with ``epilogue="tma_sel"`` (the packaged entry's kernel; the
baseline of every ratio), ``list_ctl`` = the same call timed as a second case (the control), ``tgq`` / ``tgqo`` =
``fg_attention_tg_auto(variant=...)`` (``TGC_KNOBS``: Q by cp.async and the producer's next-row piece index a row
ahead; ``tgqo`` also releases the last tile's predecessor stage after the O store is issued).  The dispatch runs the
TMA-gather CTA iff the index's piece list has <= ``TG_MAX_PIECES_PER_TILE`` pieces per tile (window masks ≈ 4-5,
random masks ≈ 90-120), else the packaged kernel: the check's random masks go through it.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

import epilogue_probe as ep  # noqa: E402
from probe_cells import geo_mean  # noqa: E402

VARIANTS = ("list", "list_ctl", "tgq", "tgqo")
CANDIDATES = ("tgq", "tgqo")
TAG = "fg-tmagather-w2"
#: the pre-registered rule (kernels/NOTES-tma-gather.md, "W2", written before the call): control valid = its
#: geo-mean over all timed cells in 1 +- 0.01 (single cells outside 1 +- 0.04 reported, not voiding); a candidate
#: eligible iff its float64 check (through the dispatch) had 0 failures, no cell > MAX_REL, the geo-mean over the
#: cells with d <= LOW_D <= LOW_GEO_MAX and the geo-mean over all timed cells <= ALL_GEO_MAX
MAX_REL = 1.02
LOW_D = 0.05
LOW_GEO_MAX = 0.98
ALL_GEO_MAX = 0.97
CONTROL_GEO_BAND = 0.01
CONTROL_CELL_BAND = 1.0
SHAPES = "12x32760,40x32760,40x75600,12x32760+512,12x75600,40x32760+512,12x75600+512,40x75600+512"
DENSITIES = "0.02,0.05,0.1"
LONG_ROWS = "12x32760:0.02/0.05/0.1/0.5,40x75600:0.02/0.05/0.1/0.5"
DEFAULTS = ["--variants", ",".join(VARIANTS), "--check-variants", ",".join(CANDIDATES), "--shapes", SHAPES,
            "--densities", DENSITIES, "--shape-densities", LONG_ROWS, "--rounds", "7", "--seed", "162",
            "--check", "300", "--check-seed", "2616", "--budget-s", "60"]

#: piece lists of the plans built by :func:`make_plan` (keyed by the plan's rows tensor), built before any capture
_PIECES: dict[int, Any] = {}
#: routes the dispatch took in this process, per candidate
ROUTES: dict[str, Counter] = {}


def make_plan(idx, programs: int | None = None):
    """``epilogue_probe.make_plan`` (the list plan) plus the index's piece list (when the index qualifies)."""
    from fgattn.gluon_fg_tmagather import SENT, plan_pieces

    plan = ep._ORIG_MAKE_PLAN(idx, programs)
    if (idx.block_m, idx.gran_n) == (128, 1) and idx.n_keys < SENT:
        _PIECES[id(plan.rows)] = (plan.rows, plan_pieces(idx))
    return plan


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of ``name`` writing ``out`` (candidates: through the dispatch, route counted in :data:`ROUTES`)."""
    from fgattn.gluon_fg_list import fg_attention_gluon_list
    from fgattn.gluon_fg_tmagather import fg_attention_tg_auto

    if name in ("list", "list_ctl"):
        return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                       epilogue="tma_sel")
    hit = _PIECES.get(id(plan.rows)) if plan is not None else None
    pieces = hit[1] if hit is not None and hit[0] is plan.rows else None
    routes: list[str] = []
    r = fg_attention_tg_auto(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan, pieces=pieces,
                             variant=name, routes=routes)
    ROUTES.setdefault(name, Counter()).update(routes)
    return r


def prewarm(name: str) -> None:
    """``epilogue_probe.prewarm``'s shapes, with the candidates' TMA-gather CTA forced (its random masks would route
    to the packaged kernel), so the timed specialisations are compiled before the timing."""
    import fgattn
    import torch
    from fgattn.gluon_fg_tmagather import TGC_KNOBS, fg_attention_tgc

    if name not in TGC_KNOBS:
        return ep._ORIG_PREWARM(name)
    for h, n in ep.PREWARM_SHAPES:
        mask = torch.rand(1, h, -(-n // ep.M), n, device="cuda") < 0.1
        idx = fgattn.build_index(mask, block_m=ep.M, gran_n=ep.G, order=True)
        q, k, v = (torch.randn(1, h, n, ep.D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        fg_attention_tgc(q, k, v, idx, out=torch.empty_like(q), plan=make_plan(idx), **TGC_KNOBS[name])
    torch.cuda.synchronize()


def offline_compile(variants: tuple[str, ...] = ("tg",) + CANDIDATES) -> list[dict[str, Any]]:
    """``tmagather_probe.offline_compile``'s figures for W's ``tg`` and the W2 candidates (bf16, fp16)."""
    import json
    import re
    import time

    import triton
    from compile_report import cuobjdump
    from fgattn.gluon_fg_tmagather import TG_REGS, TGC_KNOBS, compile_tg_sm90, compile_tgc_sm90
    from xrow_probe import tile_loops

    rows = []
    for name in variants:
        for dt in ("bf16", "fp16"):
            t0 = time.time()
            k = compile_tg_sm90(dt, regs=TG_REGS) if name == "tg" else compile_tgc_sm90(dt, **TGC_KNOBS[name])
            res, sass = cuobjdump(k)
            lines = sass.splitlines()
            regs = sorted({int(x, 16) for x in re.findall(r"USETMAXREG\.\w+\.CTAPOOL (?:UP0, )?(0x[0-9a-f]+)", sass)})
            r = dict(variant=name, dtype=dt, launch_regs=int(re.search(r"REG:(\d+)", res).group(1)),
                     stack=int(re.search(r"STACK:(\d+)", res).group(1)), smem_bytes=k.metadata.shared,
                     setmaxnreg_values=regs, utmaldg=sum("UTMALDG" in ln for ln in lines),
                     ldgsts=sum("LDGSTS" in ln for ln in lines), stl=sum(" STL" in ln for ln in lines),
                     tile_loops=tile_loops(sass), compile_s=round(time.time() - t0, 1), triton=triton.__version__)
            print(json.dumps(r), flush=True)
            rows.append(r)
    return rows


def _check_with_routes(args, meta) -> bool:
    """``epilogue_probe.check`` of this shard, then the dispatch's routes (per candidate) printed."""
    ok = ep._ORIG_CHECK(args, meta)
    for name, c in sorted(ROUTES.items()):
        print(f"[route] {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())), flush=True)
    return ok


@contextlib.contextmanager
def _patched() -> Iterator[None]:
    """Run ``epilogue_probe``'s machinery with this probe's variants, rule, tag, plans, launches and file (its check
    child processes re-run this file); its module globals are restored on exit."""
    orig = dict(_ORIG_MAKE_PLAN=ep.make_plan, _ORIG_PREWARM=ep.prewarm, _ORIG_CHECK=ep.check)
    new = dict(VARIANTS=VARIANTS, CANDIDATES=CANDIDATES, TAG=TAG, MAX_REL=MAX_REL, LOW_D=LOW_D,
               LOW_GEO_MAX=LOW_GEO_MAX, HEADLINE_MAX=MAX_REL, CONTROL_GEO_BAND=CONTROL_GEO_BAND,
               CONTROL_CELL_BAND=CONTROL_CELL_BAND, run_variant=run_variant, make_plan=make_plan, prewarm=prewarm,
               check=_check_with_routes, offline_compile=offline_compile, rule_verdict=rule_verdict,
               __file__=str(Path(__file__).resolve()))
    saved = {k: getattr(ep, k) for k in new}
    for k, v in orig.items():
        setattr(ep, k, v)
    for k, v in new.items():
        setattr(ep, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(ep, k, v)
        for k in orig:
            delattr(ep, k)


def rule_verdict(rows: list[dict[str, str]], failed: set[str] | None = None
                 ) -> tuple[str, dict[str, tuple[str, list[str]]], str | None]:
    """The pre-registered W2 rule on a timing CSV's rows: ('valid' | 'void', {candidate: (verdict, reasons)},
    winner or None).  ``epilogue_probe.rule_verdict`` with this probe's constants (control, check, max cell, the
    d <= LOW_D geo-mean), plus the geo-mean over all timed cells <= ALL_GEO_MAX; of several eligible the lowest
    d <= LOW_D geo-mean wins."""
    keep = {k: getattr(ep, k) for k in ("CANDIDATES", "MAX_REL", "LOW_D", "LOW_GEO_MAX", "HEADLINE_MAX",
                                        "CONTROL_GEO_BAND", "CONTROL_CELL_BAND")}
    for k, v in dict(CANDIDATES=CANDIDATES, MAX_REL=MAX_REL, LOW_D=LOW_D, LOW_GEO_MAX=LOW_GEO_MAX,
                     HEADLINE_MAX=MAX_REL, CONTROL_GEO_BAND=CONTROL_GEO_BAND,
                     CONTROL_CELL_BAND=CONTROL_CELL_BAND).items():
        setattr(ep, k, v)
    try:
        ctl, out, _ = _EP_RULE(rows, failed)
    finally:
        for k, v in keep.items():
            setattr(ep, k, v)
    if ctl != "valid":
        return ctl, out, None
    rel = ep._rels(rows)
    geos: dict[str, float] = {}
    for c, (vd, why) in list(out.items()):
        g_all = geo_mean(list(rel[c].values()))
        low = [x for k_, x in rel[c].items() if k_[1] <= LOW_D]
        if g_all > ALL_GEO_MAX:
            out[c] = ("not eligible", (why if vd == "not eligible" else [])
                      + [f"geo-mean {g_all:.3f} over all timed cells > {ALL_GEO_MAX}"])
        elif vd == "eligible":
            out[c] = (vd, why + [f"geo-mean over all cells {g_all:.3f}"])
            geos[c] = geo_mean(low)
    winner = min(geos, key=lambda c: (geos[c], c)) if geos else None
    return ctl, out, winner


_EP_RULE = ep.rule_verdict


def write_routes(path: Path, n: int = 300, seed: int = 2616) -> Counter:
    """CPU: the route the dispatch takes for each of the ``n`` check cases of ``seed`` (the GPU check's cases, built
    on the CPU: same masks, index and piece list), one CSV row per case; -> counts per (route, mask kind)."""
    from fgattn.gluon_fg_tmagather import mean_pieces_per_tile, plan_pieces, tg_route
    from ws2_list_probe import build_case, check_cases

    from fgsim.fileio import write_csv_atomic

    rows, cnt = [], Counter()
    for i, c in enumerate(check_cases(n, seed)):
        _, _, _, idx, _ = build_case(c, "cpu")
        pc = plan_pieces(idx)
        route, why = tg_route(idx, pc)
        kind = "window" if c["window"] and c["density"] < 0.9 else "random"
        cnt[(route, kind)] += 1
        rows.append(dict(case=i, n=c["n"], text=c["text"], b=c["b"], h=c["h"], density=c["density"], mask=kind,
                         pieces_per_tile=round(mean_pieces_per_tile(pc), 3), route=route, why=why, seed=seed))
    write_csv_atomic(path, rows, list(rows[0]))
    return cnt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--routes"]:
        if len(argv) != 2:
            print("tmagather_w2_probe: --routes takes one CSV path", file=sys.stderr)
            return 2
        cnt = write_routes(Path(argv[1]))
        print(" ".join(f"{r}/{k} {v}" for (r, k), v in sorted(cnt.items())))
        return 0
    with _patched():
        return ep.main(DEFAULTS + argv)


if __name__ == "__main__":
    raise SystemExit(main())
