"""README block: what predicting FG-Attn masks during capture costs (validation/bench_capture.py, two H200 runs)."""

from __future__ import annotations

from _common import provenance, read_rows  # type: ignore[import-not-found]

RUNS = ("capture-h200-2026-11-29.csv", "capture-h200-2026-11-29-run2.csv")
LABELS = {
    "exact_triton": "exact column-max rule (Triton)",
    "pooled_triton": "pooled top-CDF (Triton), slice mask",
    "pooled_triton_groups": "pooled top-CDF (Triton), 16×16 group mask only",
    "pooled_torch": "pooled top-CDF (torch)",
    "exact_torch": "exact rule, torch reference (one call)",
}


def _key(r: dict[str, str]) -> tuple[str, str, str]:
    inputs = r["config"].rsplit("/", 1)[-1] if r["impl"].startswith("pooled") else ""
    return r["impl"], r["block_m"], inputs if inputs in ("random", "smooth") else ""


def _best(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], dict[str, str]]:
    """Per (implementation, M, inputs): the row of the fastest launch config (lowest ratio to cuDNN)."""
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in rows:
        if r["impl"] not in LABELS:
            continue
        k = _key(r)
        if k not in out or float(r["ratio_vs_cudnn"]) < float(out[k]["ratio_vs_cudnn"]):
            out[k] = r
    return out


def render() -> str:
    runs = [read_rows(f) for f in RUNS]
    best = [_best(rows) for rows in runs]
    cudnn = [next(float(r["ms_median"]) for r in rows if r["impl"] == "sdpa_cudnn") for rows in runs]
    shape = runs[-1][0]["shape"]
    lines = [f"Cost of predicting the mask of one attention call ({shape}) relative to one cuDNN SDPA dense call "
             f"in the same run (cuDNN {cudnn[0]:.2f} / {cudnn[1]:.2f} ms in runs 1 / 2):", "",
             "| predictor | M | inputs | × cuDNN dense, run 1 | run 2 | ms, run 2 | extra memory, run 2 |",
             "|---|---:|---|---:|---:|---:|---:|"]
    keys = sorted(set(best[0]) | set(best[1]), key=lambda k: (list(LABELS).index(k[0]), int(k[1] or 0), k[2]))
    for k in keys:
        cells = [f"{float(b[k]['ratio_vs_cudnn']):.2f}×" if k in b else "—" for b in best]
        last = best[1].get(k) or best[0][k]
        mem = last["extra_mem_mib"]
        mem_text = "—" if mem in ("", "nan") else f"{float(mem):.0f} MiB"
        lines.append(f"| {LABELS[k[0]]} | {k[1] or '—'} | {k[2] or '—'} | {cells[0]} | {cells[1]} | "
                     f"{float(last['ms_median']):.2f} | {mem_text} |")
    n = sum(len(rows) for rows in runs)
    lines.append("")
    lines.append(provenance(list(RUNS), n, "triton.testing.do_bench (torch reference: one wall-clock call)",
                            "median per launch config, fastest config per row, ratio to cuDNN of the same run"))
    return "\n".join(lines) + "\n"
