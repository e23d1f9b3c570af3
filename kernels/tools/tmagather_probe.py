"""The fg ws2 list CTA with the TMA-gather producer (``fgattn.gluon_fg_tmagather``) against the packaged
list-scheduled entry kernel (tma_sel row end) and cuDNN SDPA: float64 check, paired graph timing, the
pre-registered rule (kernels/NOTES-tma-gather.md, step 2), paired fits.

Issue 12, session 16, helper W::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/tmagather_probe.py --out $OUT        # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/tmagather_probe.py --dry-run         # any machine
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/tmagather_probe.py --offline-compile
    python3 kernels/tools/tmagather_probe.py --analyze CSV                                       # CPU: rule + fits

The machinery (random check cases in child processes, prewarm, interleaved shuffled CUDA-graph rounds with cuDNN,
clock per shape, CSV columns, paired fits) is ``epilogue_probe``'s, run with this probe's variants, rule and file
tag (as ``xrow_probe``): ``list`` = :func:`fgattn.gluon_fg_list.fg_attention_gluon_list` with ``epilogue="tma_sel"``
(the packaged entry's kernel; the baseline of every ratio), ``list_ctl`` = the same call timed as a second case
(the control), ``tg`` = :func:`fgattn.gluon_fg_tmagather.fg_attention_tmagather` (run pieces, the packaged
registers 224 / 216 / 64), ``tg40`` = the same with registers 232 / 232 / 40 (the TMA producer needs few).  All on
the list plan of the same index, built before capture, with the piece list (:func:`plan_pieces`) built beside it.
"""

from __future__ import annotations

import contextlib
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

VARIANTS = ("list", "list_ctl", "tg", "tg40")
CANDIDATES = ("tg", "tg40")
TAG = "fg-tmagather"
#: registers (consumer 1, producer) per candidate (the default partition gets 504 - both)
REGS = {"tg": (216, 64), "tg40": (232, 40)}
#: the pre-registered rule (kernels/NOTES-tma-gather.md, written before the call): control valid = its geo-mean
#: over all timed cells in 1 +- 0.01 (pooled; cells outside 1 +- 0.04 are reported, not voiding: session 15's
#: controls scattered single cells by 4-7 %); a candidate eligible iff its float64 check had 0 failures, every
#: cell <= MAX_REL x list and the geo-mean over the cells with d <= LOW_D <= LOW_GEO_MAX
MAX_REL = 1.02
LOW_D = 0.05
LOW_GEO_MAX = 0.97
CONTROL_GEO_BAND = 0.01
CONTROL_CELL_BAND = 1.0
SHAPES = "12x32760,40x32760,40x75600,12x32760+512,12x75600,40x32760+512,12x75600+512,40x75600+512"
DENSITIES = "0.02,0.05,0.1"
LONG_ROWS = "12x32760:0.02/0.05/0.1/0.5,40x75600:0.02/0.05/0.1/0.5"
DEFAULTS = ["--variants", "list,list_ctl,tg,tg40", "--check-variants", "tg,tg40", "--shapes", SHAPES,
            "--densities", DENSITIES, "--shape-densities", LONG_ROWS, "--rounds", "7", "--seed", "161",
            "--check", "300", "--check-seed", "1616", "--budget-s", "120"]

#: piece lists of the plans built by :func:`make_plan` (keyed by the plan's rows tensor), so no piece list is
#: built under CUDA-graph capture
_PIECES: dict[int, Any] = {}


def make_plan(idx, programs: int | None = None):
    """``epilogue_probe.make_plan`` (the list plan) plus the index's piece list, memoised beside it."""
    from fgattn.gluon_fg_tmagather import plan_pieces

    plan = _make_plan_list(idx, programs)
    _PIECES[id(plan.rows)] = (plan.rows, plan_pieces(idx))
    return plan


def _make_plan_list(idx, programs: int | None = None):
    import torch
    from fgattn.gluon_fg_list import plan_ws2_list

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return plan_ws2_list(idx, programs=min(programs or sms, sms))


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of ``name`` writing ``out``."""
    from fgattn.gluon_fg_list import fg_attention_gluon_list
    from fgattn.gluon_fg_tmagather import fg_attention_tmagather

    if name in ("list", "list_ctl"):
        return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                       epilogue="tma_sel")
    hit = _PIECES.get(id(plan.rows)) if plan is not None else None
    pieces = hit[1] if hit is not None and hit[0] is plan.rows else None
    return fg_attention_tmagather(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan, pieces=pieces,
                                  epilogue="tma_sel", regs=REGS[name])


def offline_compile(variants: tuple[str, ...] = ("list", "tg", "tg40")) -> list[dict[str, Any]]:
    """Each kernel compiled for sm_90 (bf16, fp16): registers, stack, shared memory, setmaxnreg values, HGMMA,
    UTMALDG / LDGSTS, the consumer tile loops (``xrow_probe.tile_loops``)."""
    import triton
    from compile_report import cuobjdump
    from fgattn.gluon_fg_list import compile_list_sm90
    from fgattn.gluon_fg_tmagather import compile_tg_sm90
    from xrow_probe import tile_loops

    rows = []
    for name in variants:
        for dt in ("bf16", "fp16"):
            t0 = time.time()
            k = compile_list_sm90(dt, "tma_sel") if name == "list" else compile_tg_sm90(dt, regs=REGS[name])
            res, sass = cuobjdump(k)
            lines = sass.splitlines()
            regs = sorted({int(x, 16) for x in re.findall(r"USETMAXREG\.\w+\.CTAPOOL (?:UP0, )?(0x[0-9a-f]+)", sass)})
            r = dict(variant=name, dtype=dt, launch_regs=int(re.search(r"REG:(\d+)", res).group(1)),
                     stack=int(re.search(r"STACK:(\d+)", res).group(1)), smem_bytes=k.metadata.shared,
                     setmaxnreg_values=regs, sass_insts=sum(1 for ln in lines if re.match(r"\s+/\*[0-9a-f]{4,}\*/", ln)),
                     hgmma=sum("HGMMA" in ln for ln in lines), utmaldg=sum("UTMALDG" in ln for ln in lines),
                     ldgsts=sum("LDGSTS" in ln for ln in lines), stl=sum(" STL" in ln for ln in lines),
                     tile_loops=tile_loops(sass), compile_s=round(time.time() - t0, 1), triton=triton.__version__)
            print(json.dumps(r), flush=True)
            rows.append(r)
    return rows


@contextlib.contextmanager
def _patched() -> Iterator[None]:
    """Run ``epilogue_probe``'s machinery with this probe's variants, rule, tag, plans, launches and file (its check
    child processes re-run this file); its module globals are restored on exit."""
    new = dict(VARIANTS=VARIANTS, CANDIDATES=CANDIDATES, TAG=TAG, MAX_REL=MAX_REL, LOW_D=LOW_D,
               LOW_GEO_MAX=LOW_GEO_MAX, HEADLINE_MAX=MAX_REL, CONTROL_GEO_BAND=CONTROL_GEO_BAND,
               CONTROL_CELL_BAND=CONTROL_CELL_BAND, run_variant=run_variant, make_plan=make_plan,
               offline_compile=offline_compile, __file__=str(Path(__file__).resolve()))
    saved = {k: getattr(ep, k) for k in new}
    for k, v in new.items():
        setattr(ep, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(ep, k, v)


def rule_verdict(rows: list[dict[str, str]], failed: set[str] | None = None
                 ) -> tuple[str, dict[str, tuple[str, list[str]]], str | None]:
    """The pre-registered rule on a timing CSV's rows (``epilogue_probe.rule_verdict`` with this probe's
    constants): ('valid' | 'void', {candidate: (verdict, reasons)}, winner or None)."""
    with _patched():
        return ep.rule_verdict(rows, failed)


def main(argv: list[str] | None = None) -> int:
    with _patched():
        return ep.main(DEFAULTS + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
