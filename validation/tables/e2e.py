"""README block: real-size Wan2.1 passes on the H200 against fgsim's end-to-end model (issue 11).

Measured: ``validation/e2e_time.py`` (eager passes, host wall clock between ``torch.cuda.synchronize()``, modes
interleaved, median of 3 rounds). Predicted: ``validation/e2e_report.py`` from the model files' published
configs, the operator calibration (microbenchmarks) and the kernel cost model; the pass times are never inputs.
"""

from __future__ import annotations

from _common import provenance, read_rows  # type: ignore[import-not-found]

DIR = "e2e-h200-2026-11-30"
CONFIGS = (("wan2.1-1.3b/480p", "Wan2.1-1.3B 480p"), ("wan2.1-1.3b/720p", "Wan2.1-1.3B 720p"),
           ("wan2.1-14b/480p", "Wan2.1-14B 480p"))
SPARSE = ("fg@0.3", "fg@0.6", "block@0.3")


def _ms(x: str) -> str:
    return f"{float(x) * 1e3:,.0f} ms"


def render() -> str:
    rep = read_rows(f"{DIR}/report.csv")
    summ = read_rows(f"{DIR}/summary.csv")
    bd = read_rows(f"{DIR}/breakdown.csv")

    def s(cfg: str, q: str) -> dict[str, str]:
        return next(r for r in summ if r["config"] == cfg and r["quantity"] == q)

    def r(cfg: str, mode: str) -> dict[str, str]:
        return next(x for x in rep if x["config"] == cfg and x["mode"] == mode)

    out = ["Per transformer pass, bf16, batch 1, eager; measured on the H200 vs predicted by `fgsim predict --model` "
           "(non-attention = the pass with the self-attention core skipped; speedup = whole 50-step generation "
           "over cuDNN SDPA with masks predicted once by the exact predictor):", "",
           "| model | measured non-attention | predicted | measured attention share (cuDNN) | predicted share | "
           "cuDNN pass meas / pred | " + " | ".join(f"{m} pass error" for m in SPARSE) + " | "
           + " | ".join(f"{m} speedup meas / pred" for m in SPARSE) + " |",
           "|---|---:|---:|---:|---:|---:|" + "---:|" * (2 * len(SPARSE))]
    for cfg, label in CONFIGS:
        na, sh, cu = s(cfg, "non_attention_s"), s(cfg, "attention_share_cudnn"), r(cfg, "cudnn")
        row = (f"| {label} | {_ms(na['measured'])} | {_ms(na['predicted'])} ({float(na['error_pct']):+.1f} %) | "
               f"{float(sh['measured']) * 100:.0f} % | {float(sh['predicted']) * 100:.0f} % | "
               f"{_ms(cu['measured_pass_s'])} / {_ms(cu['predicted_pass_s'])} ({float(cu['pass_error_pct']):+.1f} %) | ")
        row += " | ".join(f"{float(r(cfg, m)['pass_error_pct']):+.1f} %" for m in SPARSE) + " | "
        row += " | ".join(f"{float(r(cfg, m)['measured_e2e_speedup']):.2f}× / {float(r(cfg, m)['predicted_e2e_speedup']):.2f}×"
                          for m in SPARSE) + " |"
        out.append(row)
    out += ["", "Per-operator breakdown of the cuDNN pass (categories > 5 % of the pass), error of the prediction:", ""]
    cats = ("attention", "gemm", "modulation", "rope")
    out += ["| model | " + " | ".join(cats) + " |", "|---|" + "---:|" * len(cats)]
    for cfg, label in CONFIGS:
        cells = []
        for c in cats:
            x = next(b for b in bd if b["config"] == cfg and b["category"] == c)
            share = float(x["measured_share"]) * 100
            cells.append(f"{float(x['error_pct']):+.0f} % ({share:.0f} % of pass)" if share > 5 else f"— ({share:.0f} %)")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    comp = [x for x in summ if x["quantity"].startswith("compiled_pass_")]
    out += ["", "torch.compile (`compile_repeated_blocks`, Wan2.1-1.3B 480p): " + ", ".join(
        f"{x['quantity'][len('compiled_pass_'):-2]} {_ms(x['measured'])} measured / {_ms(x['predicted'])} predicted "
        f"({float(x['error_pct']):+.1f} %)" for x in comp) + ". Mask prediction per layer call (predictor + FG "
        "index): " + "; ".join(
        f"{label} exact {float(s(cfg, 'mask_prediction_exact_s')['measured']) * 1e3:.1f} / "
        f"{float(s(cfg, 'mask_prediction_exact_s')['predicted']) * 1e3:.1f} ms "
        f"({float(s(cfg, 'mask_prediction_exact_s')['error_pct']):+.0f} %), pooled "
        f"{float(s(cfg, 'mask_prediction_pooled_s')['measured']) * 1e3:.1f} / "
        f"{float(s(cfg, 'mask_prediction_pooled_s')['predicted']) * 1e3:.1f} ms "
        f"({float(s(cfg, 'mask_prediction_pooled_s')['error_pct']):+.0f} %)" for cfg, label in CONFIGS) + "."]
    out += ["", provenance([f"{DIR}/report.csv", f"{DIR}/summary.csv", f"{DIR}/breakdown.csv"],
                           len(rep) + len(summ) + len(bd),
                           "eager passes, host wall clock between torch.cuda.synchronize() calls, modes interleaved; "
                           "breakdown: CUDA events around every aten operator",
                           "median of 3 rounds (spread ≤ 2.3 %)")]
    return "\n".join(out)
