"""README block: real-size video transformers' passes on the H200 against fgsim's end-to-end model (issue 11).

Measured: ``validation/e2e_time.py`` (eager passes, host wall clock between ``torch.cuda.synchronize()``, modes
interleaved, median of rounds). Predicted: ``validation/e2e_report.py`` from the model files' published
configs, the operator calibration (microbenchmarks) and the kernel cost model; the pass times are never inputs.
"""

from __future__ import annotations

from _common import RESULTS, provenance, read_rows  # type: ignore[import-not-found]

DIRS = ("e2e-h200-2026-11-30-run2", "e2e-h200-2026-11-30")
LABELS = {"wan2.1-1.3b/480p": "Wan2.1-1.3B 480p", "wan2.1-1.3b/720p": "Wan2.1-1.3B 720p",
          "wan2.1-14b/480p": "Wan2.1-14B 480p", "cogvideox-5b/480p": "CogVideoX-5B 480p",
          "hunyuanvideo/480p-17f": "HunyuanVideo 480p (17 frames)",
          "hunyuanvideo/480p-33f": "HunyuanVideo 480p (33 frames)",
          "hunyuanvideo/480p": "HunyuanVideo 480p (129 frames)"}
SPARSE = ("fg@0.3", "fg@0.6", "block@0.3")


def _ms(x: str) -> str:
    return f"{float(x) * 1e3:,.0f} ms"


def clock_sentence(d: str, rep: list[dict[str, str]]) -> str:
    """Which clock the fgattn kernels were priced at (``report-summary.json``), and the FG / block pass errors of
    the Wan2.1 configs at the calibration clock (``report.csv``'s ``*_calclock`` columns) beside those above."""
    import json

    km = json.loads((RESULTS / d / "report-summary.json").read_text()).get("_kernel_cost_model", {})
    if not km.get("fgattn_clock_mhz"):
        return "fgattn kernels priced at the GPU file's clock."
    wan = [x for x in rep if x["config"].startswith("wan") and x["mode"] in SPARSE and x.get("pass_error_calclock_pct")]
    now = [float(x["pass_error_pct"]) for x in wan]
    cal = [float(x["pass_error_calclock_pct"]) for x in wan]
    rng = (f" Wan2.1 FG / block passes: {min(now):+.1f} … {max(now):+.1f} % at {km['fgattn_clock_mhz']:,.0f} MHz, "
           f"{min(cal):+.1f} … {max(cal):+.1f} % had they been priced at the calibration clock "
           f"({km['calibration_clock_mhz']:,.0f} MHz; `report.csv` `*_calclock` columns).") if wan else ""
    return (f"fgattn kernels (FG, block, dense) are priced at {km['fgattn_clock_mhz']:,.0f} MHz, the SM clock the H200 "
            "sustains running attention back to back at its 700 W power limit (`fgsim/data/ops/h200.json` "
            "`sustained_clock`, measured in e2e run 7); cuDNN and the other operators come from the operator "
            "calibration, measured in a sustained state." + rng)


def render() -> str:
    d = next(x for x in DIRS if (RESULTS / x / "report.csv").is_file())
    rep = read_rows(f"{d}/report.csv")
    summ = read_rows(f"{d}/summary.csv")
    bd = read_rows(f"{d}/breakdown.csv")
    configs = [c for c in LABELS if any(r["config"] == c for r in rep)]

    def s(cfg: str, q: str) -> dict[str, str] | None:
        return next((r for r in summ if r["config"] == cfg and r["quantity"] == q), None)

    def r(cfg: str, mode: str) -> dict[str, str] | None:
        return next((x for x in rep if x["config"] == cfg and x["mode"] == mode), None)

    def err(cfg: str, mode: str) -> str:
        x = r(cfg, mode)
        return f"{float(x['pass_error_pct']):+.1f} %" if x else "—"

    def sp(cfg: str, mode: str) -> str:
        x = r(cfg, mode)
        if not x:
            return "—"
        return f"{float(x['measured_e2e_speedup']):.2f}× / {float(x['predicted_e2e_speedup']):.2f}×"

    out = ["Per transformer pass, bf16, batch 1, eager; measured on the H200 vs predicted by `fgsim predict --model` "
           "(non-attention = the pass with the self-attention core skipped; speedup = whole 50-step generation "
           "over cuDNN SDPA with masks predicted once by the exact predictor):", "",
           "| model | measured non-attention | predicted | measured attention share (cuDNN) | predicted share | "
           "cuDNN pass meas / pred | " + " | ".join(f"{m} pass error" for m in SPARSE) + " | "
           + " | ".join(f"{m} speedup meas / pred" for m in SPARSE) + " |",
           "|---|---:|---:|---:|---:|---:|" + "---:|" * (2 * len(SPARSE))]
    for cfg in configs:
        na, sh, cu = s(cfg, "non_attention_s"), s(cfg, "attention_share_cudnn"), r(cfg, "cudnn")
        if not (na and sh and cu):
            continue
        row = (f"| {LABELS[cfg]} | {_ms(na['measured'])} | {_ms(na['predicted'])} ({float(na['error_pct']):+.1f} %) | "
               f"{float(sh['measured']) * 100:.0f} % | {float(sh['predicted']) * 100:.0f} % | "
               f"{_ms(cu['measured_pass_s'])} / {_ms(cu['predicted_pass_s'])} ({float(cu['pass_error_pct']):+.1f} %) | ")
        row += " | ".join(err(cfg, m) for m in SPARSE) + " | " + " | ".join(sp(cfg, m) for m in SPARSE) + " |"
        out.append(row)
    out += ["", clock_sentence(d, rep)]
    kernel = any(b.get("kernel_s") not in (None, "", "0", "0.0") for b in bd)
    out += ["", "Per-operator breakdown of the cuDNN pass (categories > 5 % of the pass), error of the prediction"
            + (" (GPU kernel time per category from torch.profiler against the predicted kernel time; † CUDA "
               "events around every operator against the predicted queue time, where the profiled pass was not "
               "usable):" if kernel else ":"), ""]
    cats = ("attention", "gemm", "modulation", "rope", "norm", "elementwise")
    out += ["| model | " + " | ".join(cats) + " |", "|---|" + "---:|" * len(cats)]
    for cfg in configs:
        rows = {b["category"]: b for b in bd if b["config"] == cfg}
        use_k = any(b.get("kernel_share") not in (None, "") for b in rows.values())
        col, share, mark = ("kernel_error_pct", "kernel_share", "") if use_k else ("error_pct", "measured_share", " †")
        cells = []
        for c in cats:
            x = rows.get(c)
            if x is None or x.get(share) in (None, ""):
                cells.append("—")
                continue
            pct = float(x[share]) * 100
            cells.append(f"{float(x[col]):+.0f} % ({pct:.0f} % of pass){mark}" if pct > 5 and x[col] != "" else
                         f"— ({pct:.0f} %)")
        out.append(f"| {LABELS[cfg]} | " + " | ".join(cells) + " |")
    comp = [x for x in summ if x["quantity"].startswith("compiled_pass_")]
    if comp:
        out += ["", "torch.compile (`compile_repeated_blocks`, Wan2.1-1.3B 480p): " + ", ".join(
            f"{x['quantity'][len('compiled_pass_'):-2]} {_ms(x['measured'])} measured / {_ms(x['predicted'])} "
            f"predicted ({float(x['error_pct']):+.1f} %)" for x in comp) + "."]
    mp = []
    for cfg in configs:
        ex, po = s(cfg, "mask_prediction_exact_s"), s(cfg, "mask_prediction_pooled_s")
        if ex and po:
            mp.append(f"{LABELS[cfg]} exact {float(ex['measured']) * 1e3:.1f} / {float(ex['predicted']) * 1e3:.1f} ms "
                      f"({float(ex['error_pct']):+.0f} %), pooled {float(po['measured']) * 1e3:.1f} / "
                      f"{float(po['predicted']) * 1e3:.1f} ms ({float(po['error_pct']):+.0f} %)")
    out += ["", "Mask prediction per layer call (predictor + FG index), measured / predicted: " + "; ".join(mp) + "."]
    spreads = [float(x["spread"]) for x in rep if x.get("spread") not in (None, "")]
    passes = read_rows(f"{d}/passes.csv")
    rounds = sorted({int(x["rounds"]) for x in passes})
    out += ["", provenance([f"{d}/report.csv", f"{d}/summary.csv", f"{d}/breakdown.csv"],
                           len(rep) + len(summ) + len(bd),
                           "eager passes, host wall clock between torch.cuda.synchronize() calls, modes interleaved; "
                           + ("breakdown: torch.profiler kernel durations per category" if kernel else
                              "breakdown: CUDA events around every aten operator"),
                           f"median of {rounds[0]}–{rounds[-1]} interleaved rounds after a warm-up pass (spread "
                           f"≤ {max(spreads) * 100:.1f} %; the large Wan configs' skipped-attention pass from "
                           "e2e-h200-2026-11-30, which runs no attention kernel; Wan2.1 from run 8 (launch table 9245ed4, measured "
                           "before cost-model revision 7 was final: its end-to-end test; runs 2-7 are development data), "
                           "HunyuanVideo from run 5 (priced "
                           "with the launch table it ran), CogVideoX-5B from run 2, merged into run 2's report files "
                           "by validation/e2e_report.py)"
                           if spreads else "median")]
    return "\n".join(out)
