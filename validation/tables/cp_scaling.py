"""README block: predicted attention pass time of Wan2.1-14B 720p on 1, 2, 4 and 8 H200s (validation/cp_scaling.py)."""

from __future__ import annotations

from _common import RESULTS, provenance, read_rows  # type: ignore[import-not-found]


def render() -> str:
    files = sorted(p.name for p in RESULTS.glob("cp-scaling-*.csv"))
    if not files:
        return "*No context-parallel scaling prediction committed yet (validation/cp_scaling.py).*\n"
    name = files[-1]
    rows = [r for r in read_rows(name) if r.get("pass_s") and r["shape"] == "wan2.1-14b-720p"]
    dens = sorted({r["density"] for r in rows if r["kernel"] == "fg"})
    pick = dens[0] if dens else ""
    out = ["| kernel | plan | what-if | pass (ms) | imbalance | comm. share | speedup vs 1 GPU |",
           "|---|---|---|---:|---:|---:|---:|"]
    used = 0
    for r in rows:
        if r["kernel"] != "dense" and r["density"] != pick:
            continue
        used += 1
        share = float(r["comm_share"]) * 100 if r.get("comm_share") else 0.0
        out.append(f"| {r['kernel']} | {r['plan']} | {r.get('what_if', '')} | {float(r['pass_s']) * 1e3:.2f} | "
                   f"{float(r['imbalance']):.3f} | {share:.1f} % | {float(r['speedup']):.2f}× |")
    head = (f"Wan2.1-14B 720p self-attention (75,600 tokens, 40 heads), FG/block at kept fraction "
            f"{float(pick):.2f} on average with head densities spread several-fold, one call:\n\n")
    return head + "\n".join(out) + "\n\n" + provenance(
        [name], used, "predicted (cost model + interconnect fit), no measurement", "per attention call")
