"""The KV-skewed-stage fg kernel (``fgattn.gluon_fg_xrow``: ``xrow`` with the inter-warpgroup lag, ``xsplit`` without)
against the packaged list-scheduled entry kernel with the tma_sel row end and cuDNN SDPA: float64 check, paired
graph timing, the pre-registered rule, paired fits.

Issue 12, session 15, helper X (kernels/NOTES.md, "Session 15 research: cross-row overlap (helper X)")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/xrow_probe.py --out $OUT        # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/xrow_probe.py --dry-run         # any machine
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/xrow_probe.py --offline-compile
    python3 kernels/tools/xrow_probe.py --analyze CSV                                       # CPU: rule + fits

The machinery (random check cases in child processes, prewarm, interleaved shuffled CUDA-graph rounds with cuDNN,
NVML clock per cell, CSV columns, paired fits) is ``epilogue_probe``'s, run with this probe's variants, rule and
file tag: ``list`` = :func:`fgattn.gluon_fg_list.fg_attention_gluon_list` with ``epilogue="tma_sel"`` (the
packaged entry's kernel once tma_sel is adopted; the baseline of every ratio), ``list_ctl`` = the same call timed
as a second case (the control), ``xrow`` / ``xsplit`` = :func:`fgattn.gluon_fg_xrow.fg_attention_gluon_xrow`.
All on :func:`fgattn.gluon_fg_list.plan_ws2_list`'s list plan of the same index, built before capture.
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

VARIANTS = ("list", "list_ctl", "xrow", "xsplit")
CANDIDATES = ("xrow", "xsplit")
TAG = "fg-xrow"
#: the pre-registered rule (kernels/NOTES.md, session 15, written before the call), in ``epilogue_probe``'s
#: terms: the control valid (geo-mean 1 +- 0.01, every cell 1 +- 0.04), the float64 check passed, every cell
#: <= MAX_REL x list, geo-mean over the cells with d <= LOW_D <= LOW_GEO_MAX (no separate headline bound)
MAX_REL = 1.02
LOW_D = 0.05
LOW_GEO_MAX = 0.93
SHAPES = "12x32760,40x32760,40x75600,12x32760+512,12x75600,40x32760+512,12x75600+512,40x75600+512"
DENSITIES = "0.02,0.05,0.1"
LONG_ROWS = "12x32760:0.02/0.05/0.1/0.5,40x75600:0.02/0.05/0.1/0.5"
DEFAULTS = ["--variants", "list,list_ctl,xrow,xsplit", "--check-variants", "list,xsplit,xrow", "--shapes", SHAPES,
            "--densities", DENSITIES, "--shape-densities", LONG_ROWS, "--rounds", "5", "--seed", "151",
            "--check", "104", "--check-seed", "1515", "--budget-s", "110"]


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of ``name`` writing ``out``."""
    from fgattn.gluon_fg_list import fg_attention_gluon_list
    from fgattn.gluon_fg_xrow import fg_attention_gluon_xrow

    if name in ("list", "list_ctl"):
        return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                       epilogue="tma_sel")
    return fg_attention_gluon_xrow(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                   variant=name)


def _sass_ins(sass: str) -> list[tuple[int, str, int]]:
    """(address, instruction text, second control word) of each instruction in ``cuobjdump -sass`` text."""
    ins: list[tuple[int, str, int]] = []
    lines = sass.splitlines()
    for i, ln in enumerate(lines[:-1]):
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);\s+/\* (0x[0-9a-f]+) \*/", ln)
        hi = re.search(r"/\* (0x[0-9a-f]+) \*/", lines[i + 1]) if m else None
        if m and hi and not re.match(r"\s+/\*[0-9a-f]{4,}\*/", lines[i + 1]):
            ins.append((int(m.group(1), 16), m.group(2).strip(), int(hi.group(1), 16)))
    return ins


def _loops(ins: list[tuple[int, str, int]]) -> list[list[tuple[str, int]]]:
    """The bodies (text, control word) of every backward-branch span, shortest first."""
    spans = []
    for a, text, _ in ins:
        b = re.search(r"BRA\s.*?0x([0-9a-f]+)", text)
        if b and int(b.group(1), 16) < a:
            spans.append([(t, h) for x, t, h in ins if int(b.group(1), 16) <= x <= a])
    return sorted(spans, key=len)


def tile_loops(sass: str) -> list[dict[str, int]]:
    """The consumer tile loops in ``cuobjdump -sass`` text (backward-branch spans with 16 HGMMA and >= 60 MUFU, one
    per consumer partition): instructions, static stall cycles (control bits 41-44), scoreboard waits, CTA-partition
    barriers (BAR.SYNC), mbarrier arrivals and waits (SYNCS.ARRIVE / SYNCS.PHASECHK)."""
    out = []
    for body in _loops(_sass_ins(sass)):
        if sum("HGMMA" in t for t, _ in body) != 16 or sum("MUFU" in t for t, _ in body) < 60:
            continue
        out.append(dict(insts=len(body), stall_cycles=sum((h >> 41) & 0xF for _, h in body),
                        sb_waits=sum(1 for _, h in body if (h >> 52) & 0x3F),
                        bar_sync=sum("BAR.SYNC" in t for t, _ in body), mbar_arrive=sum("SYNCS.ARRIVE" in t for t, _ in body),
                        mbar_wait=sum("SYNCS.PHASECHK" in t for t, _ in body)))
    return sorted(out, key=lambda d: -d["mbar_wait"])


def producer_loop(sass: str) -> dict[str, int] | None:
    """The producer's per-item loop (the shortest backward-branch span holding the 32 cp.async of one stage,
    ``LDGSTS``, and no HGMMA): instructions, static stall cycles, LDGSTS, LDG, integer address instructions."""
    for body in _loops(_sass_ins(sass)):
        ops = [re.sub(r"^@!?U?P\w+\s+", "", t).split()[0] for t, _ in body]
        if sum(o.startswith("LDGSTS.") for o in ops) == 32 and not any(o.startswith("HGMMA") for o in ops):
            return dict(insts=len(body), stall_cycles=sum((h >> 41) & 0xF for _, h in body),
                        ldgsts=sum(o.startswith("LDGSTS") for o in ops), ldg=sum(o.startswith("LDG.") for o in ops),
                        int_addr=sum(o.split(".")[0] in ("LEA", "IMAD", "IADD3", "VIADD", "VIMNMX", "ISETP", "SHF")
                                     for o in ops))
    return None


def offline_compile(variants: tuple[str, ...] = ("list", "xsplit", "xrow")) -> list[dict[str, Any]]:
    """Each kernel compiled for sm_90 (bf16, fp16): registers, stack, shared memory, setmaxnreg values, HGMMA, the
    two consumer tile loops' figures (:func:`tile_loops`); ``list`` = the packaged kernel with the tma_sel row end."""
    import triton
    from compile_report import cuobjdump
    from fgattn.gluon_fg_list import compile_list_sm90
    from fgattn.gluon_fg_xrow import compile_xrow_sm90

    rows = []
    for name in variants:
        for dt in ("bf16", "fp16"):
            t0 = time.time()
            k = compile_list_sm90(dt, "tma_sel") if name == "list" else compile_xrow_sm90(dt, name)
            res, sass = cuobjdump(k)
            lines = sass.splitlines()
            regs = sorted({int(x, 16) for x in re.findall(r"USETMAXREG\.\w+\.CTAPOOL (?:UP0, )?(0x[0-9a-f]+)", sass)})
            r = dict(variant=name, dtype=dt, launch_regs=int(re.search(r"REG:(\d+)", res).group(1)),
                     stack=int(re.search(r"STACK:(\d+)", res).group(1)), smem_bytes=k.metadata.shared,
                     setmaxnreg_values=regs, sass_insts=sum(1 for ln in lines if re.match(r"\s+/\*[0-9a-f]{4,}\*/", ln)),
                     hgmma=sum("HGMMA" in ln for ln in lines), stl=sum(" STL" in ln for ln in lines),
                     tile_loops=tile_loops(sass), producer_loop=producer_loop(sass), compile_s=round(time.time() - t0, 1), triton=triton.__version__)
            print(json.dumps(r), flush=True)
            rows.append(r)
    return rows


@contextlib.contextmanager
def _patched() -> Iterator[None]:
    """Run ``epilogue_probe``'s machinery with this probe's variants, rule, tag, launches and file (its check child
    processes re-run this file); its module globals are restored on exit."""
    new = dict(VARIANTS=VARIANTS, CANDIDATES=CANDIDATES, TAG=TAG, MAX_REL=MAX_REL, LOW_D=LOW_D,
               LOW_GEO_MAX=LOW_GEO_MAX, HEADLINE_MAX=MAX_REL,  # no headline bound of its own: the every-cell one
               run_variant=run_variant, offline_compile=offline_compile, __file__=str(Path(__file__).resolve()))
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
