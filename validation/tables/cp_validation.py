"""README block: FG-Attn under context parallelism on 2 × H200 — numerics, capture, predicted vs measured time."""

from __future__ import annotations

import re
import statistics

from _common import RESULTS, provenance, read_rows  # type: ignore[import-not-found]


def _latest(suffix: str) -> str | None:
    """The newest ``cp-h200x*-<date>[-runN]-<suffix>.csv`` (by date, then run; no run = run 1)."""
    best: tuple[str, int, str] | None = None
    for p in RESULTS.glob(f"cp-h200x*-{suffix}.csv"):
        m = re.match(rf"cp-h200x\d+-(\d{{4}}-\d{{2}}-\d{{2}})(?:-run(\d+))?-{suffix}\.csv$", p.name)
        if m:
            key = (m.group(1), int(m.group(2) or 1), p.name)
            best = key if best is None or key > best else best
    return best[2] if best else None


def _all(suffix: str) -> list[str]:
    """Every ``cp-h200x*-<date>[-runN]-<suffix>.csv``, oldest first (by date, then run)."""
    keys = []
    for p in RESULTS.glob(f"cp-h200x*-{suffix}.csv"):
        m = re.match(rf"cp-h200x\d+-(\d{{4}}-\d{{2}}-\d{{2}})(?:-run(\d+))?-{suffix}\.csv$", p.name)
        if m:
            keys.append((m.group(1), int(m.group(2) or 1), p.name))
    return [k[2] for k in sorted(keys)]


def _run(name: str) -> str:
    m = re.search(r"-run(\d+)-", name)
    return f"run {m.group(1) if m else 1}"


def _ms(s: str) -> str:
    return f"{float(s) * 1e3:.2f}"


def render() -> str:
    tname = _latest("timing")
    if tname is None:
        return "*No context-parallel measurement committed yet (validation/cp_run.py, validation/cp_validate.py).*\n"
    rows = read_rows(tname)
    out = ["| shape | kernel | density | scheme | attention meas / pred, rank 0 · rank 1 (ms) | communication meas / "
           "pred (ms) | attention + comm. error, rank 0 · 1 |", "|---|---|---:|---|---:|---:|---:|"]
    errs = [abs(float(r["err_rank"])) for r in rows]
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["shape"], r["kernel"], r["density"], r["scheme"]), []).append(r)
    for (shape, kernel, dens, scheme), rr in groups.items():
        rr = sorted(rr, key=lambda x: int(x["rank"]))
        d = "dense" if kernel == "dense" else f"{float(dens):.2f}"
        att = " · ".join(f"{_ms(x['measured_attn_s'])} / {_ms(x['predicted_attn_s'])}" for x in rr)
        com = f"{_ms(rr[0]['measured_comm_s'])} / {_ms(rr[0]['predicted_comm_s'])}"
        err = " · ".join(f"{float(x['err_rank']) * 100:+.1f} %" for x in rr)
        out.append(f"| {shape} | {kernel} | {d} | {scheme} | {att} | {com} | {err} |")
    within = sum(1 for e in errs if e <= 0.08)
    text = "\n".join(out) + "\n\n"
    text += (f"Per-rank attention + communication: median |error| {statistics.median(errs) * 100:.1f} %, max "
             f"{max(errs) * 100:.1f} %, {within} of {len(errs)} rows within 8 %")
    spreads = [float(r[k]) for r in rows for k in ("attn_spread", "comm_spread") if r.get(k)]
    if spreads:
        text += f"; spread (max − min) / median of the rounds: median {statistics.median(spreads) * 100:.1f} %"
    host = [float(r["host_overhead_s"]) for r in rows if r.get("host_overhead_s") not in (None, "", "nan")]
    if host:
        text += (f"; the eager wrapper adds {statistics.median(host) * 1e6:.0f} µs of host time per call (median;"
                 " not in the graph-timed rows)")
    text += ".\n"
    extra = []
    nname = _latest("numerics")
    if nname:
        nrows = [r for r in read_rows(nname) if r.get("status") == "ok"]
        uly = [r for r in nrows if r["scheme"] == "ulysses"]
        ring = [r for r in nrows if r["scheme"] == "ring"]
        if uly:
            extra.append(f"Ulysses outputs bitwise equal to one GPU: {sum(r['bitwise_equal'] == 'True' for r in uly)}"
                         f" of {len(uly)} cases")
        if ring:
            worst = max(float(r["rel_err_vs_1gpu"]) for r in ring)
            extra.append(f"ring (LSE merge) max relative error vs one GPU {worst:.1e} over {len(ring)} cases")
    # capture: each model's latest completed comparison over all runs, and the models never completed
    ok: dict[str, tuple[str, dict[str, str]]] = {}
    failed: dict[str, str] = {}
    cfiles = _all("capture")
    for cname_ in cfiles:
        for r in read_rows(cname_):
            if r.get("status") == "ok":
                ok[r["model"]] = (cname_, r)
                failed.pop(r["model"], None)
            elif r["model"] not in ok:
                failed[r["model"]] = f"{_run(cname_)}: {r.get('status', '').split(' when ')[0][:90]}"
    cused = sorted({f for f, _ in ok.values()} | {f for f in cfiles if any(_run(f) in v for v in failed.values())})
    if ok:
        crows = [r for _, r in ok.values()]
        same = sum(r["masks_identical"] == "True" and r["stats_identical"] == "True" for r in crows)
        extra.append(f"Ulysses capture: masks and statistics identical to one GPU for {same} of {len(crows)} "
                     f"models ({', '.join(r['model'] for r in crows)})")
    for model, why in failed.items():
        extra.append(f"{model} capture not completed ({why})")
    if extra:
        text += "; ".join(extra) + ".\n"
    files = [f for f in (tname, nname, *cused) if f]
    method = (f"{_run(tname)}: " + (rows[0].get("timing") or "CUDA events per rank after a barrier, interleaved "
                                    "rounds"))
    ic = rows[0].get("interconnect", "")
    src = re.search(r"validation/results/(cp-[^ )]*-interconnect\.csv)", ic)
    if src and _run(src.group(1)) != _run(tname):
        method += (f"; communication predicted from the interconnect block calibrated in {_run(src.group(1))} "
                   f"(`{src.group(1)}`)")
    return text + provenance(files, len(rows), method, "median per rank; error = predicted / measured − 1")
