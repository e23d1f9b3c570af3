"""docs/context_parallel.md block: the 2 × H200 context-parallel runs side by side — interconnect and timing.

Two tables. *Interconnect*: every ``cp-h200x*-<date>-runN-interconnect.csv`` (``fgsim calibrate --interconnect``),
refitted here with :func:`fgsim.interconnect.fit_link` (the fit ``--from-csv`` runs): how the collectives were
timed, the fitted line (bus bandwidth, latency) and the slower rank's median at the sizes context parallelism uses;
the run whose CSV ``fgsim/data/gpus/h200.json`` names is marked. *Timing*: every ``…-timing.csv`` as committed
(each predicted with the cost model and interconnect of its day, named in its rows): how communication was timed,
which interconnect calibration predicted it, per-rank attention + communication error, and the Wan2.1-1.3B
Ulysses communication (the case the calibration method moved most).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

from _common import RESULTS, ROOT, provenance, read_rows  # type: ignore[import-not-found]
from cp_validation import _all, _run  # type: ignore[import-not-found]

#: (row label, op, shape) of the interconnect table's measured sizes
SIZES = (("all-to-all, 1.3B 480p local tensor", "alltoall", "wan2.1-1.3b-480p"),
         ("all-to-all, 14B 720p local tensor", "alltoall", "wan2.1-14b-720p"),
         ("all-gather, 1.3B 480p gathered k (or v)", "allgather", "wan2.1-1.3b-480p"),
         ("all-gather, 14B 720p gathered k (or v)", "allgather", "wan2.1-14b-720p"),
         ("Ulysses permute copy, 1.3B 480p", "permute", "wan2.1-1.3b-480p"),
         ("Ulysses permute copy, 14B 720p", "permute", "wan2.1-14b-720p"))


def _reps(methods: list[str]) -> str:
    """'one call per timing' or 'a–b back-to-back calls per timing' from a CSV's eager-collective method texts."""
    n = [int(m.group(1)) for s in methods if (m := re.search(r"(\d+) back-to-back calls", s))]
    if not n:
        return "one call per timing"
    return f"{min(n)}–{max(n)} back-to-back calls per timing" if min(n) != max(n) else f"{n[0]} back-to-back calls"


def _interconnect() -> tuple[str, list[str], int]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from fgsim.interconnect import fit_link, slower_rank
    from fgsim.interconnect import read_rows as ic_rows

    names = _all("interconnect")
    if not names:
        return "", [], 0
    source = json.loads((ROOT / "fgsim/data/gpus/h200.json").read_text())["interconnect"].get("source", "")
    cols, n = [], 0
    for name in names:
        rows = ic_rows([Path(RESULTS / name)])
        n += len(rows)
        link, _ = fit_link(rows, "")
        by = slower_rank(rows)
        sizes = {(r["op"], r["shape"]): int(float(r["bytes"])) for r in rows if r.get("shape")}
        coll = [r["method"] for r in rows if r["op"] in ("alltoall", "allgather", "p2p")]
        vals = [_reps(coll), f"{link.alltoall_busbw_gbs:.0f} / {link.allgather_busbw_gbs:.0f} GB/s",
                f"{link.latency_us:.1f} µs"]
        for _, op, shape in SIZES:
            b = sizes.get((op, shape))
            if b is None:
                vals.append("—")
                continue
            t = by[(op, b)]
            vals.append(f"{t * 1e6:.0f} µs ({b / 1e6:.0f} MB)")
        mark = " (in `h200.json`)" if name in source else ""
        cols.append((f"{_run(name)}{mark}", vals))
    labels = ["collectives timed", "line: all-to-all / all-gather bus bandwidth", "line: latency per collective",
              *(s[0] for s in SIZES)]
    out = ["| | " + " | ".join(c[0] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for i, label in enumerate(labels):
        out.append(f"| {label} | " + " | ".join(c[1][i] for c in cols) + " |")
    return "\n".join(out) + "\n", names, n


def _timing() -> tuple[str, list[str], int]:
    names = _all("timing")
    out = ["| timing CSV | communication timed | communication predicted from | rows within 8 % | median \\|error\\| | "
           "max \\|error\\| | round spread (median) | 1.3B 480p Ulysses communication, meas / pred (ms) |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    n = 0
    for name in names:
        rows = read_rows(name)
        n += len(rows)
        errs = [abs(float(r["err_rank"])) for r in rows]
        methods = [r.get("method_comm", "") for r in rows]
        ic = rows[0].get("interconnect") or rows[0].get("link_fit", "")
        m = re.search(r"(cp-h200x[^ )\",]*(?:interconnect|comm)\.csv)", ic)
        src = f"{_run(m.group(1))} (`{m.group(1)}`)" if m else "—"
        spreads = [float(r[k]) for r in rows for k in ("attn_spread", "comm_spread") if r.get(k)]
        sp = f"{statistics.median(spreads) * 100:.1f} %" if spreads else "—"
        uly = [r for r in rows if r["shape"] == "wan2.1-1.3b-480p" and r["scheme"] == "ulysses"]
        if uly:
            meas = [float(r["measured_comm_s"]) * 1e3 for r in uly]
            pred = float(uly[0]["predicted_comm_s"]) * 1e3
            lo, hi = f"{min(meas):.2f}", f"{max(meas):.2f}"
            com = f"{lo if lo == hi else f'{lo}–{hi}'} / {pred:.2f}"
        else:
            com = "—"
        within = sum(e <= 0.08 for e in errs)
        timed = _reps(methods) if any(methods) else "one call per timing"
        out.append(f"| {_run(name)} | {timed} | {src} | {within} of {len(errs)} | "
                   f"{statistics.median(errs) * 100:.1f} % | {max(errs) * 100:.1f} % | {sp} | {com} |")
    return "\n".join(out) + "\n", names, n


def render() -> str:
    ic, ic_names, ic_n = _interconnect()
    tm, tm_names, tm_n = _timing()
    if not tm_names:
        return "*No context-parallel measurement committed yet (validation/cp_run.py, validation/cp_validate.py).*\n"
    text = ""
    if ic:
        text += "Interconnect calibrations (`fgsim calibrate --interconnect`, refitted from each CSV):\n\n" + ic + "\n"
    text += "Per-rank timing, each CSV as committed:\n\n" + tm + "\n"
    return text + provenance(
        [*ic_names, *tm_names], ic_n + tm_n,
        "collectives eagerly with CUDA events (captured NCCL did not complete on this machine), copies and attention "
        "by CUDA-graph replay; interleaved rounds", "slower rank's median (interconnect); median per rank, error = "
        "predicted / measured − 1 (timing)")
