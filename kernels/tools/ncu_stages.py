"""Per-row time of the one_row fg kernel by SASS stage, from an Nsight Compute source page (SourceCounters).

    python kernels/tools/ncu_stages.py SOURCE.csv KERNEL_US ROWS_PER_SM LOOP_TILES_PER_ROW

SOURCE.csv: ``ncu -i REP --page source --csv --print-source sass`` of ONE launch (``validation/entry_regress.py
--ncu-source`` writes them).  Stage = warp-stall samples of its SASS address range / all samples × kernel time /
rows per SM (one CTA of 8 warps per SM, so the sample share is the time share).  Boundaries are landmarks of the
nested persistent (one_row) kernel: the first PRMT (Q's conversion, waiting for Q), the first BAR after Q's first
STS.128, the pipelined loop (instructions executed more often than once per row), the tail's BAR and its first
HGMMA, the epilogue's BAR after the tail's last wgmma wait, the last STG, the last executed EXIT.  Another kernel
form moves them: check the printed addresses against the SASS.
"""

from __future__ import annotations

import collections
import csv
import sys
from pathlib import Path
from typing import Any


def load(path: Path) -> list[dict[str, Any]]:
    """Instructions of a source page: offset from the first, SASS, samples, executions, stall samples by reason."""
    rows = list(csv.reader(path.open()))
    hi = next((i for i, r in enumerate(rows) if "Address" in r and "Source" in r), None)
    if hi is None:
        raise ValueError(f"{path}: no 'Address'/'Source' header (not an ncu source page)")
    head = rows[hi]
    w_col = next(i for i, c in enumerate(head) if c.startswith("Warp Stall Sampling (All"))
    x_col = head.index("Instructions Executed")
    reasons = [(i, c[6:]) for i, c in enumerate(head) if c.startswith("stall_") and "Not Issued" not in c]
    data = [r for r in rows[hi + 1:] if r and r[0].startswith("0x")]
    if not data:
        raise ValueError(f"{path}: no instructions")
    base = int(data[0][0], 16)
    return [dict(off=int(r[0], 16) - base, src=r[1].strip(), s=float(r[w_col] or 0), ex=float(r[x_col] or 0),
                 why={c: float(r[i] or 0) for i, c in reasons if float(r[i] or 0) > 0}) for r in data]


def stages(ins: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(name, first offset, end offset) of each stage."""
    off = [x["off"] for x in ins]
    once = min(x["ex"] for x in ins if x["ex"] > 0)
    loop = [x["off"] for x in ins if x["ex"] > once]
    if not loop:
        raise ValueError("no pipelined loop (no instruction executed more than once per row)")
    l0, l1 = min(loop), max(loop) + 0x10

    def first(pred, after: int = 0) -> int:
        return next(x["off"] for x in ins if x["off"] >= after and pred(x["src"]))

    q_cvt = first(lambda s: s.startswith("PRMT"))
    bar1 = first(lambda s: s.startswith("BAR.SYNC"), first(lambda s: s.startswith("STS.128")))
    t2 = first(lambda s: s.startswith("BAR.SYNC"), l1) + 0x10
    h = first(lambda s: "HGMMA" in s, l1)
    t3 = max(o for o in off if o < h and ins[off.index(o)]["src"].startswith("BAR.SYNC"))
    last_wait = max(x["off"] for x in ins if x["src"].startswith("WARPGROUP.DEPBAR") and x["off"] > t3)
    e = first(lambda s: s.startswith("BAR.SYNC"), last_wait)
    stg = max(x["off"] for x in ins if "STG" in x["src"]) + 0x10
    ex = max(x["off"] for x in ins if "EXIT" in x["src"] and x["ex"] > 0) + 0x10
    return [("P1 CTA start, Order/Offsets/index/Q LDG issue, waits", 0, q_cvt),
            ("P2 wait for Q, Q -> shared memory", q_cvt, bar1),
            ("P3 index via shared memory, K/V cp.async tiles 0-1", bar1, l0),
            ("L  pipelined loop", l0, l1),
            ("T1 loop drain", l1, t2),
            ("T2 tail K/V LDG -> registers, wait, STS", t2, t3),
            ("T3 tail QK, masked softmax, PV", t3, e),
            ("E1 normalize, layout convert, O STG", e, stg),
            ("E2 dead next-row loads, EXIT", stg, ex),
            ("X  drain at EXIT (stores in flight)", ex, 1 << 40)]


def table(path: Path, kernel_us: float, rows_per_sm: float, loop_tiles: float) -> str:
    """The stage table (share of samples, µs per row per SM, top stall reasons); µs per loop tile last."""
    ins = load(path)
    tot = sum(x["s"] for x in ins) or 1.0
    lines = [f"{path.name}: {tot:.0f} samples, kernel {kernel_us} us, {rows_per_sm} rows per SM"]
    loop_us = 0.0
    for name, a, b in stages(ins):
        sel = [x for x in ins if a <= x["off"] < b]
        w = sum(x["s"] for x in sel)
        why: collections.Counter[str] = collections.Counter()
        for x in sel:
            why.update(x["why"])
        us = w / tot * kernel_us / rows_per_sm
        loop_us = us if name.startswith("L ") else loop_us
        top = ", ".join(f"{k} {100 * v / max(w, 1):.0f}%" for k, v in why.most_common(3))
        lines.append(f"{name:<54} 0x{a:05x}-0x{min(b, 0xFFFFF):05x} {100 * w / tot:5.1f} % {us:6.2f} us/row  [{top}]")
    lines.append(f"loop: {loop_us / loop_tiles:.3f} us per tile ({loop_tiles} loop tiles per row)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("ncu_stages: usage: ncu_stages.py SOURCE.csv KERNEL_US ROWS_PER_SM LOOP_TILES_PER_ROW", file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not path.is_file():
        print(f"ncu_stages: {path} does not exist", file=sys.stderr)
        return 2
    try:
        nums = [float(x) for x in argv[1:]]
        if min(nums) <= 0:
            raise ValueError
    except ValueError:
        print(f"ncu_stages: KERNEL_US ROWS_PER_SM LOOP_TILES_PER_ROW must be positive numbers, got {argv[1:]}",
              file=sys.stderr)
        return 2
    try:
        print(table(path, *nums))
    except (ValueError, StopIteration) as e:
        why = str(e) or "a stage landmark is missing (another kernel form?)"
        print(f"ncu_stages: {path}: {why}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
