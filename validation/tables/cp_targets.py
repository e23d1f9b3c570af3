"""docs/context_parallel.md block: issue 13's targets (context parallelism on 2 × H200), met or missed.

Every number comes from the committed 2 × H200 CSVs: the newest ``…-timing.csv`` (per-rank attention +
communication, predicted with the interconnect block its rows name), every ``…-capture.csv`` (a model counts as
verified once one run compared it completely), the newest ``…-numerics.csv`` and the interconnect calibration
that ``fgsim/data/gpus/h200.json`` names. What no CSV records is said in words with the file that shows it
(``RUN4_CAPTURE``: run 4's stopped Wan2.1-14B capture, whose only record is its log).
"""

from __future__ import annotations

import json
import re
import statistics

from _common import RESULTS, ROOT, provenance, read_rows  # type: ignore[import-not-found]
from cp_validation import _all, _latest, _run  # type: ignore[import-not-found]

SHORT = {"wan2.1-1.3b-480p": "1.3B", "wan2.1-14b-720p": "14B"}
#: run 4's 14B capture left no CSV (stopped by the device call's time limit): (model, text, evidence file)
RUN4_CAPTURE = ("wan2.1-14b-720p-random", "run 4, after the int64 offset fix: model built, then no progress until "
                "the device call's time limit stopped it, cause unknown", "cp-h200x2-2026-11-30-run4-log.txt")
#: bf16 tolerance used for "numerically equal": relative L2 error vs the single-GPU output
BF16_TOL = 1e-2
CPU_TESTS = (("tests/test_parallel.py", "heads / key chunks → per-rank counts, link and merge bytes, padding, gloo "
              "wrappers"), ("tests/test_merge.py", "fused LSE merge: interpreter, float64 reference, −inf rows, "
                            "ring with fused merges"), ("tests/test_interconnect.py", "fit, block writer, gloo "
                                                         "measurement loop, agreed back-to-back counts"))


def _pct(v: float) -> str:
    s = f"{v * 100:+.1f}".replace("-", "−")
    return f"{s} %"


def _span(vals: list[float]) -> str:
    lo, hi = min(vals), max(vals)
    return _pct(lo) if f"{lo:.3f}" == f"{hi:.3f}" else f"{_pct(lo)} … {_pct(hi)}"


def _range(vals: list[float]) -> str:
    """``a–b`` in one-decimal scientific notation, one value where both ends print alike."""
    lo, hi = f"{min(vals):.1e}", f"{max(vals):.1e}"
    return lo if lo == hi else f"{lo}–{hi}"


def _per_rank(files: list[str]) -> tuple[str, str, str, int]:
    name = _latest("timing")
    if name is None:
        return "**not measured**", "", "", 0
    rows = read_rows(name)
    files.append(name)
    errs = [abs(float(r["err_rank"])) for r in rows]
    within = sum(e <= 0.08 for e in errs)
    ic = re.search(r"(cp-h200x[^ )\",]*-interconnect\.csv)", rows[0].get("interconnect", ""))
    icrun = f", communication predicted from {_run(ic.group(1))}'s interconnect calibration" if ic else ""
    result = (f"{within} of {len(rows)} rows within 8 %, median \\|error\\| {statistics.median(errs) * 100:.1f} %, "
              f"max {max(errs) * 100:.1f} % ({_run(name)}'s timing{icrun})")
    miss = [r for r in rows if abs(float(r["err_rank"])) > 0.08]
    if miss:
        groups: dict[str, list[float]] = {}
        for r in miss:
            groups.setdefault(f"{r['kernel']} {SHORT.get(r['shape'], r['shape'])} {r['scheme']}", []).append(
                float(r["err_rank"]))
        result += ". Outside 8 %: " + ", ".join(f"{k} {_span(v)}" for k, v in groups.items())
        result += (f"; in those rows the attention alone errs {_span([float(r['err_attn']) for r in miss])}, the "
                   f"communication {_span([float(r['err_comm']) for r in miss])}: the single-GPU kernel model's "
                   "error on the rank's share")
    status = "**met**" if within == len(rows) else "**missed in part**"
    return status, result, f"`{name}`", len(rows)


def _capture(files: list[str]) -> tuple[str, str, str, int]:
    ok: dict[str, str] = {}
    failed: dict[str, list[str]] = {}
    n = 0
    used = []
    for name in _all("capture"):
        rows = read_rows(name)
        n += len(rows)
        for r in rows:
            status = r.get("status", "")
            if status == "ok":
                same = all(r.get(k) == "True" for k in ("masks_identical", "stats_identical",
                                                         "data_members_bytes_identical", "output_bitwise_equal"))
                ok[r["model"]] = f"{_run(name)}: " + ("identical" if same else "**differs**")
                failed.pop(r["model"], None)
                used.append(name)
            elif r["model"] not in ok:
                failed.setdefault(r["model"], []).append(f"{_run(name)}: {status.split(' when ')[0][:70]}")
                used.append(name)
    model, text, log = RUN4_CAPTURE
    if model not in ok and (RESULTS / log).is_file():
        failed.setdefault(model, []).append(text)
    files.extend(dict.fromkeys(used))
    parts = [f"{m} ({v})" for m, v in ok.items()]
    result = ("masks, counts, statistics, every data member of the `.fgt` files and the transformer output "
              "identical to one GPU: " + ", ".join(parts) if parts else "")
    if failed:
        result += ". **Not verified**: " + "; ".join(f"{m} ({'; '.join(v)})" for m, v in failed.items())
    status = ("**met** for " + ", ".join(ok) if ok else "**not met**") + (
        "; **not verified** for " + ", ".join(failed) if failed else "")
    evidence = ", ".join(f"`{f}`" for f in dict.fromkeys(used))
    if model in failed and (RESULTS / log).is_file():
        evidence += f", `{log}`"
    return status, result, evidence, n


def _numerics(files: list[str]) -> tuple[str, str, str, int]:
    name = _latest("numerics")
    if name is None:
        return "**not measured**", "", "", 0
    files.append(name)
    rows = [r for r in read_rows(name) if r.get("status") == "ok"]
    uly = [r for r in rows if r["scheme"] == "ulysses"]
    ring = [r for r in rows if r["scheme"] == "ring"]
    kern = [r for r in ring if not r["case"].startswith("refdit")]
    dit = [r for r in ring if r["case"].startswith("refdit")]
    bitwise = sum(r["bitwise_equal"] == "True" for r in uly)
    parts = [f"Ulysses bitwise equal to one GPU in {bitwise} of {len(uly)} cases"]
    if kern:
        parts.append(f"ring {max(float(r['rel_err_vs_1gpu']) for r in kern):.1e} (kernels, max)")
    if dit:
        parts.append(f"{max(float(r['rel_err_vs_1gpu']) for r in dit):.1e} (reference DiT through diffusers)")
    ref1 = [float(r["rel_err_1gpu_vs_ref"]) for r in kern if r.get("rel_err_1gpu_vs_ref")]
    refc = [float(r["rel_err_cp_vs_ref"]) for r in kern if r.get("rel_err_cp_vs_ref")]
    if ref1 and refc:
        parts.append(f"from float32: one GPU {_range(ref1)}, ring {_range(refc)}")
    pairs = [(r, t) for r in kern for t in rows if t["scheme"] == "ring-torch-merge"
             and (t["case"], t["kernel"]) == (r["case"], r["kernel"])]
    if pairs:
        same = all(f"{float(r['rel_err_vs_1gpu']):.5e}" == f"{float(t['rel_err_vs_1gpu']):.5e}" for r, t in pairs)
        parts.append(f"fused merge {'=' if same else '≠'} torch float32 merge to 6 digits ({len(pairs)} cases)")
    odd = [r for r in kern if r["kernel"] == "block" and "!=" in r["case"]]
    if odd:
        parts.append(f"block ring at S/P = {odd[0]['S']} (not a multiple of M = {odd[0]['block_m']}) runs: "
                     f"{float(odd[0]['rel_err_vs_1gpu']):.1e}")
    worst = max((float(r["rel_err_vs_1gpu"]) for r in ring), default=0.0)
    met = bitwise == len(uly) and worst <= BF16_TOL
    status = "**met**" if met else "**missed**"
    return (status, "; ".join(parts) + f" (tolerance: relative L2 ≤ {BF16_TOL:.0e} vs one GPU)", f"`{name}`",
            len(rows))


def _interconnect(files: list[str]) -> tuple[str, str, str, int]:
    block = json.loads((ROOT / "fgsim/data/gpus/h200.json").read_text())["interconnect"]
    m = re.search(r"(cp-h200x[^ )\",]*-interconnect\.csv)", block.get("source", ""))
    if not m or not (RESULTS / m.group(1)).is_file():
        return "**missed**", "the interconnect block names no committed calibration CSV", "", 0
    name = m.group(1)
    files.append(name)
    rows = read_rows(name)
    reps = [int(x.group(1)) for r in rows if (x := re.search(r"(\d+) back-to-back calls", r["method"]))]
    timed = (f"collectives timed eagerly, {min(reps)}–{max(reps)} back-to-back calls per timing, ranks agreeing "
             "on the count" if reps else "collectives timed eagerly, one call per timing")
    result = (f"`fgsim calibrate --interconnect` ({_run(name)}, {timed}; captured NCCL did not complete on this "
              f"machine) → `h200.json`: all-to-all {block['alltoall_busbw_gbs']:.0f} GB/s, all-gather "
              f"{block['allgather_busbw_gbs']:.0f} GB/s bus bandwidth, {block['latency_us']:.1f} µs per collective, "
              f"and tables at the sizes used")
    return "**met**", result, f"`{name}`, `fgsim/data/gpus/h200.json`", len(rows)


def render() -> str:
    files: list[str] = []
    rows_used = 0
    out = ["| target | status | result | evidence |", "|---|---|---|---|"]
    for label, fn in (("per-rank attention + communication within 8 % on 2 × H200", _per_rank),
                      ("CP capture trace identical to single-GPU", _capture),
                      ("FG-Attn under CP numerically equal (bf16 tolerance)", _numerics),
                      ("interconnect from `fgsim calibrate` on a multi-GPU machine", _interconnect)):
        status, result, evidence, n = fn(files)
        rows_used += n
        out.append(f"| {label} | {status} | {result} | {evidence} |")
    scaling = sorted(p.name for p in RESULTS.glob("cp-scaling-*.csv"))
    if scaling:
        out.append("| what 4 and 8 GPUs predict, on paper | **met** (prediction only: no machine of more than 2 "
                   "GPUs was lent) | the section above | "
                   f"`{scaling[-1]}` |")
    have = [(t, what) for t, what in CPU_TESTS if (ROOT / t).is_file()]
    out.append("| CPU tests: partitioning, communication model, merge | "
               + ("**met**" if len(have) == len(CPU_TESTS) else "**missing tests**") + " | "
               + "; ".join(f"`{t}`: {what}" for t, what in have) + " | |")
    return "\n".join(out) + "\n\n" + provenance(
        files, rows_used, "see each CSV (per rank: attention by CUDA-graph replay, communication eagerly with CUDA "
        "events, back-to-back)", "median per rank; error = predicted / measured − 1")
