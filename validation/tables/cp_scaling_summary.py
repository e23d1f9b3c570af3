"""docs/context_parallel.md block: predicted speedups of one attention call on 2, 4 and 8 H200s over one.

Reads the newest ``validation/results/cp-scaling-*.csv`` (``validation/cp_scaling.py``: the single-GPU cost model
on each rank's share of run 2's kept-tile counts plus the interconnect block of the GPU description). One row per
shape and kernel (FG-Attn / block-sparse at mean kept fraction 0.10 and 0.30, dense); per scheme the speedup over
one GPU at 2 / 4 / 8 GPUs and the communication's share of the pass, then the figures the page's prose discusses:
FG-Attn's speedup over dense on one GPU and on 8, and the Ulysses head imbalance at 8 GPUs.
"""

from __future__ import annotations

from _common import RESULTS, provenance, read_rows  # type: ignore[import-not-found]

SHAPES = {"wan2.1-14b-720p": "Wan2.1-14B 720p", "wan2.1-1.3b-480p": "Wan2.1-1.3B 480p"}
KERNELS = (("dense", "1"), ("fg", "0.1"), ("fg", "0.3"), ("block", "0.1"), ("block", "0.3"))
PS = (2, 4, 8)
#: (column title, plan prefix, what-if)
SCHEMES = (("Ulysses", "ulysses", ""), ("Ulysses, balanced heads", "ulysses", "balanced heads"), ("ring", "ring", ""))


def _label(kernel: str, dens: str) -> str:
    return "dense" if kernel == "dense" else f"{'FG' if kernel == 'fg' else 'block'} {float(dens):.1f}"


def render() -> str:
    files = sorted(p.name for p in RESULTS.glob("cp-scaling-*.csv"))
    if not files:
        return "*No context-parallel scaling prediction committed yet (validation/cp_scaling.py).*\n"
    name = files[-1]
    rows = read_rows(name)
    used: set[int] = set()

    def row(shape: str, kernel: str, dens: str, plan: str, what_if: str = "") -> dict[str, str] | None:
        for i, r in enumerate(rows):
            if (r["shape"], r["kernel"], r["density"], r["plan"], r.get("what_if", "")) == (
                    shape, kernel, dens, plan, what_if):
                used.add(i)
                return r if r.get("pass_s") else None
        return None

    def cell(shape: str, kernel: str, dens: str, prefix: str, what_if: str, key: str) -> str:
        vals = []
        for p in PS:
            r = row(shape, kernel, dens, f"{prefix}:{p}", what_if)
            if r is None:
                vals.append("—")
            elif key == "speedup":
                vals.append(f"{float(r['speedup']):.2f}×")
            else:
                vals.append(f"{float(r['comm_share']) * 100:.0f} %")
        return " / ".join(vals)

    head = ["| shape | kernel | " + " | ".join(f"{t}: speedup at 2 / 4 / 8 GPUs" for t, _, _ in SCHEMES)
            + " | comm. share of the pass, Ulysses | comm. share, ring |",
            "|---|---|" + "---:|" * (len(SCHEMES) + 2)]
    out = list(head)
    for shape, sname in SHAPES.items():
        for kernel, dens in KERNELS:
            if row(shape, kernel, dens, "1 GPU") is None:
                continue
            # dense has no head imbalance: no balanced-heads what-if
            cells = [("as Ulysses" if kernel == "dense" and wi else cell(shape, kernel, dens, pre, wi, "speedup"))
                     for _, pre, wi in SCHEMES]
            cells += [cell(shape, kernel, dens, "ulysses", "", "share"), cell(shape, kernel, dens, "ring", "", "share")]
            out.append(f"| {sname} | {_label(kernel, dens)} | " + " | ".join(cells) + " |")
    notes = sorted({r["note"] for r in rows if r.get("note")})
    text = "\n".join(out) + "\n\n"
    if notes:
        text += f"— : not possible ({'; '.join(notes)}).\n"
    facts = []
    big = "wan2.1-14b-720p"
    one_d, one_f = row(big, "dense", "1", "1 GPU"), row(big, "fg", "0.1", "1 GPU")
    u8_d, u8_f = row(big, "dense", "1", "ulysses:8"), row(big, "fg", "0.1", "ulysses:8", "balanced heads")
    if one_d and one_f and u8_d and u8_f:
        facts.append(
            f"Wan2.1-14B 720p, FG 0.1's speedup over dense: {float(one_d['pass_s']) / float(one_f['pass_s']):.1f}× "
            f"on one GPU ({float(one_d['pass_s']) * 1e3:.1f} vs {float(one_f['pass_s']) * 1e3:.1f} ms), "
            f"{float(u8_d['pass_s']) / float(u8_f['pass_s']):.1f}× on 8 GPUs under Ulysses with balanced heads "
            f"({float(u8_d['pass_s']) * 1e3:.1f} vs {float(u8_f['pass_s']) * 1e3:.1f} ms)")
    for kernel, dens in (("fg", "0.1"), ("block", "0.1")):
        plain, bal = row(big, kernel, dens, "ulysses:8"), row(big, kernel, dens, "ulysses:8", "balanced heads")
        if plain and bal:
            facts.append(f"{_label(kernel, dens)} under Ulysses on 8 GPUs: slowest / mean rank attention "
                         f"{float(plain['imbalance']):.2f}, {float(bal['imbalance']):.2f} with balanced heads")
    if facts:
        text += "; ".join(facts) + ".\n"
    return text + provenance([name], len(used), "predicted per attention call (cost model + interconnect block), no "
                             "measurement; 4 and 8 GPUs use the interconnect's line (its tables are 2-GPU "
                             "measurements)", "speedup = one-GPU pass / P-GPU pass (slowest rank + communication)")
