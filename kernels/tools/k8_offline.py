"""Session 15, K8: offline sm_90 figures of the fg list kernel with and without the research knob ``tail64``.

    PYTHONPATH=/tmp/triton36:kernels python kernels/tools/k8_offline.py [bf16 fp16]

For each dtype: the packaged entry's binary (epilogue tma_sel) and the same with ``tail64=True``: SASS sha256,
instructions, registers, stack, HGMMA, the tile loop's (innermost HGMMA loop) instructions / static stall cycles /
scoreboard waits, and how the two tile loops compare: lines identical in place, opcodes in the same order (longest
common subsequence of the opcode sequences) and the opcode multiset difference.  Needs Triton 3.6 (the device's).
"""

from __future__ import annotations

import collections
import difflib
import hashlib
import re
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

_INS = re.compile(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);\s+/\* (0x[0-9a-f]+) \*/")


def tile_loop(sass: str) -> list[str]:
    """The innermost loop with HGMMA (as ``compile_report.loop_figures``): its instructions, addresses masked."""
    lines = sass.splitlines()
    ins = []
    for i, ln in enumerate(lines[:-1]):
        m = _INS.match(ln)
        if m and re.search(r"/\* (0x[0-9a-f]+) \*/", lines[i + 1]) and not re.match(r"\s+/\*[0-9a-f]{4,}\*/",
                                                                                      lines[i + 1]):
            ins.append((int(m.group(1), 16), m.group(2).strip()))
    spans = []
    for a, t in ins:
        b = re.search(r"BRA\s.*?0x([0-9a-f]+)", t)
        if b and int(b.group(1), 16) < a:
            lo = int(b.group(1), 16)
            if any(lo <= x <= a and "HGMMA" in tt for x, tt in ins):
                spans.append((a - lo, lo, a))
    if not spans:
        return []
    _, lo, hi = min(spans)
    return [re.sub(r"0x[0-9a-f]+", "ADDR", t) for a, t in ins if lo <= a <= hi]


def opcodes(loop: list[str]) -> list[str]:
    """The opcode of each instruction (predicate dropped)."""
    return [t.split()[1] if t.startswith("@") else t.split()[0] for t in loop]


def compare_loops(a: list[str], b: list[str]) -> dict:
    """Lines identical in place, opcodes in the same order (LCS), opcodes added / removed in ``b``."""
    oa, ob = opcodes(a), opcodes(b)
    sm = difflib.SequenceMatcher(None, oa, ob, autojunk=False)
    return dict(insts=(len(a), len(b)), same_in_place=sum(x == y for x, y in zip(a, b, strict=False)),
                same_op_order=sum(m.size for m in sm.get_matching_blocks()),
                added=dict(collections.Counter(ob) - collections.Counter(oa)),
                removed=dict(collections.Counter(oa) - collections.Counter(ob)))


def main() -> None:
    import compile_report as cr
    from fgattn import gluon_fg_list as L

    for dt in sys.argv[1:] or ["bf16", "fp16"]:
        loops = {}
        for name, kw in (("tma_sel", {}), ("tma_sel+tail64", {"tail64": True})):
            k = L.compile_list_sm90(dt, "tma_sel", **kw)
            _, sass = cr.cuobjdump(k)
            f = cr._figures(name, k, 0.0)
            loops[name] = tile_loop(sass)
            print(f"{dt} {name}: SASS sha256 {hashlib.sha256(sass.encode()).hexdigest()[:8]}, "
                  f"{sum(1 for ln in sass.splitlines() if _INS.match(ln))} insts, regs {f['regs']}, stack {f['stack']}, "
                  f"HGMMA {f['hgmma']}, tile loop {f.get('loop_insts')} insts / {f.get('loop_stall_cycles')} static "
                  f"stall cycles / {f.get('loop_sb_waits')} scoreboard waits", flush=True)
        print(f"{dt} tile loop tma_sel -> tma_sel+tail64: {compare_loops(loops['tma_sel'], loops['tma_sel+tail64'])}",
              flush=True)


if __name__ == "__main__":
    main()
