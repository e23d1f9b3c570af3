"""Measured 50-step sampling runs of the reference DiT against fgsim's end-to-end model (issues 6 and 11). CPU only.

    python validation/reference_e2e_report.py [--e2e validation/results/refdit/e2e-h200-2026-11-30.json]

Measured (``validation/time_reference_e2e.py`` on the GPU): seconds per whole run per attention mode, median and
spread over interleaved rounds; the kept-tile counts of every (layer, branch) mask the sparse modes used; the GPU
time of one sampler step per operator category (CUDA events around every aten operator).

Predicted from the model file alone (``fgsim/data/models/fgsim-reference-dit.json``: its diffusers config; no
measured time in it), through the same parts as the Wan2.1 predictions (``validation/e2e_report.py``):

- the operators of the sampler's run — the transformer's and the sampler's own latent arithmetic (bf16 casts,
  CFG combination, Euler update) — traced on the meta device (:func:`fgsim.opmodel.reference_sampler_ops`), priced
  by the operator calibration ``fgsim/data/ops/h200.json`` (``fgsim calibrate --ops``; GEMMs and memory-bound
  operators of this sampler step at their real shapes) in the eager launch queue (host seconds per aten operator
  and the GPU gap between kernels, measured by the calibration on a tiny transformer in the same device call as
  the runs — the host's speed is the machine's, 7.7–13.5 us per operator across three H200 machines — never
  on the runs themselves); a run of
  S steps is ``T(1 step) + (S − 1)·(T(2 steps) − T(1 step))``;
- self-attention per call: ``sdpa`` the calibrated cuDNN model at the call's shape, ``fgattn-dense`` / ``fg`` /
  ``block`` the kernel cost model on the measured masks' counts (every (layer, branch) mask is predicted at the
  first step and reused for all steps), ``none`` nothing (the core returns v);
- the mask predictions of the sparse modes: the exact-predictor model + FG index build
  (:func:`fgsim.opmodel.predictor_time`), once per (layer, branch).

Writes ``<e2e stem>-report.csv`` and ``.png`` next to the input and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "kernels"))

DEFAULT = ROOT / "validation" / "results" / "refdit" / "e2e-h200-2026-11-30.json"
MODES = ("none", "sdpa", "fgattn-dense", "fg", "block")
#: the operator calibration measured in the device call that ran the reference DiT (2026-11-30, call E)
HOST_FROM = ROOT / "validation" / "results" / "e2e-h200-2026-11-30-run2" / "ops-calibration-raw.json"


def predict(e2e: dict, counts: dict[str, np.ndarray], gpu_name: str = "h200",
            host_from: Path | None = None) -> dict[str, dict[str, float]]:
    """Predicted seconds of each measured mode's run, and the parts (see the module docstring)."""
    from fgsim.calibration import resolve_params
    from fgsim.costmodel import predict_counts
    from fgsim.endtoend import load_model
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.opmodel import load_op_calibration, pass_time, predictor_time, reference_sampler_ops, sdpa_time

    model = load_model("fgsim-reference-dit")
    cal = load_op_calibration(gpu=gpu_name)
    if host_from is not None and host_from.is_file():
        # the host side is a property of the machine the run happened on: its host time per operator and kernel
        # gap as the operator calibration measured them in the same device call
        same = load_op_calibration(host_from)
        cal.host_s, cal.host_view_s, cal.gap_s = same.host_s, same.host_view_s, same.gap_s
    gpu = load_gpu(gpu_name)
    params = resolve_params(gpu)[0]
    grid = tuple(int(x) for x in e2e["grid_latent"])
    steps, m = int(e2e["steps"]), int(e2e["block_m"])
    ops1, ops2 = reference_sampler_ops(1, grid), reference_sampler_ops(2, grid)
    selfs = next(o.sdpa for o in ops1 if o.kind == "attention" and o.cat == "attention")
    cross = next(o.sdpa for o in ops1 if o.kind == "attention" and o.cat == "cross_attention")
    n_tokens = int(selfs[2])
    keys = sorted({k.rsplit("_", 1)[0] for k in counts})  # l{layer}_{branch}
    per_call = {"none": 0.0, "sdpa": sdpa_time(cal, selfs)}
    for kern, n in (("fgattn-dense", "n1"), ("fg", "n1"), ("block", "n64")):
        k = "dense" if kern == "fgattn-dense" else kern
        cfg = launch_config(k, gpu_name, model.head_dim, m, 1 if k != "block" else m)
        calls = [float(predict_counts(counts[f"{key}_{n}"], n_tokens, cfg, gpu, params)[0]) for key in keys] \
            if keys else [0.0]
        per_call[kern] = float(np.mean(calls))
    kept = float(e2e.get("kept_fraction_mean") or 0.5)
    pt = predictor_time(cal, "exact", model.heads, n_tokens, model.head_dim, m, kept)
    predictions = len(keys) or model.layers * model.passes_per_step
    out: dict[str, dict[str, float]] = {}
    for mode in MODES:
        att = {"attention": per_call[mode], "cross_attention": sdpa_time(cal, cross)}
        t1, t2 = pass_time(ops1, cal, att), pass_time(ops2, cal, att)
        run = t1.total_s + (steps - 1) * (t2.total_s - t1.total_s)
        mask = predictions * (pt["predict"] + pt["index"]) if mode in ("fg", "block") else 0.0
        step_busy = {c: t2.busy_by_cat[c] - t1.busy_by_cat[c] for c in t1.busy_by_cat}
        out[mode] = {"run_s": run + mask, "mask_prediction_s": mask, "attention_s": 2 * model.layers * steps *
                     per_call[mode], "step_s": t2.total_s - t1.total_s, "step_busy_by_cat": step_busy,
                     "host_s_per_op": cal.host_s, "kernels_per_step": t2.kernels - t1.kernels}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--e2e", type=Path, default=DEFAULT, help="e2e JSON from time_reference_e2e.py")
    p.add_argument("--gpu", default="h200")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--host-from", type=Path, default=HOST_FROM,
                   help="raw operator calibration of the same device call as the runs (host time per operator, "
                        "kernel gap)")
    args = p.parse_args(argv)
    if not args.e2e.is_file():
        print(f"error: {args.e2e}: no such file", file=sys.stderr)
        return 2
    e2e = json.loads(args.e2e.read_text())
    if "seconds_median" not in e2e:
        print(f"error: {args.e2e}: no medians (a run of time_reference_e2e.py before issue 11)", file=sys.stderr)
        return 2
    counts_path = args.e2e.with_name(args.e2e.name.replace("e2e-", "e2e-counts-").replace(".json", ".npz"))
    with np.load(counts_path, allow_pickle=False) as z:
        counts = {k: z[k] for k in z.files}
    pred = predict(e2e, counts, args.gpu, args.host_from)
    med, spread = e2e["seconds_median"], e2e["spread"]
    # the sampler's per-run set-up on the host: the initial noise (B·768·T·h·w float32 values) drawn on the CPU
    # and copied to the GPU (pageable). Priced by the calibration's host rates when it has them; else the
    # traced step's CUDA-event time of the sampler's own operators (which holds it) stands in, as a measurement
    from fgsim.opmodel import load_op_calibration

    cal = load_op_calibration(gpu=args.gpu)
    t, h, w = e2e["grid_latent"]
    n_noise = 768.0 * t * h * w
    if cal.host.get("cpu_randn_per_s") and cal.host.get("h2d_pageable_bw"):
        setup = n_noise / cal.host["cpu_randn_per_s"] + 4.0 * n_noise / cal.host["h2d_pageable_bw"]
        setup_src = (f"predicted: the operator calibration's host rates ({cal.host['cpu_randn_per_s'] / 1e6:.0f} M "
                     f"normal values/s on the CPU, {cal.host['h2d_pageable_bw'] / 1e9:.1f} GB/s pageable copy)")
    else:
        step_sampler = float((e2e.get("step_breakdown_s") or {}).get("sampler", 0.0))
        setup = max(step_sampler - pred["none"]["step_busy_by_cat"].get("sampler", 0.0), 0.0)
        setup_src = ("measured: CUDA events around the sampler's operators in the traced first step, minus their "
                     "predicted GPU time (the calibration run did not measure host rates)")
    rows = []
    for mode in MODES:
        if mode not in med:
            continue
        pr = pred[mode]
        meas_att = med[mode] - med["none"] if "none" in med else float("nan")
        rows.append({"mode": mode, "measured_run_s": med[mode], "spread": spread[mode], "rounds": e2e["rounds"],
                     "predicted_run_s": round(pr["run_s"], 4),
                     "run_error_pct": round((pr["run_s"] / med[mode] - 1) * 100, 2),
                     "measured_attention_s": round(meas_att, 4),
                     "predicted_attention_s": round(pr["attention_s"] + pr["mask_prediction_s"], 4),
                     "predicted_mask_prediction_s": round(pr["mask_prediction_s"], 4),
                     "predicted_step_s": round(pr["step_s"], 5), "setup_s": round(setup, 4),
                     "predicted_with_setup_s": round(pr["run_s"] + setup, 4),
                     "error_with_setup_pct": round(((pr["run_s"] + setup) / med[mode] - 1) * 100, 2),
                     "setup_source": setup_src})
    bd = e2e.get("step_kernel_breakdown_s") or e2e.get("step_breakdown_s") or {}
    busy = pred["none"]["step_busy_by_cat"]
    for cat in sorted(bd):
        rows.append({"mode": f"step:{cat}", "measured_run_s": round(bd[cat], 6), "spread": "", "rounds": 1,
                     "predicted_run_s": round(busy.get(cat, 0.0), 6),
                     "run_error_pct": round((busy.get(cat, 0.0) / bd[cat] - 1) * 100, 2) if bd[cat] else "",
                     "measured_attention_s": "", "predicted_attention_s": "", "predicted_mask_prediction_s": "",
                     "predicted_step_s": "", "setup_s": "", "predicted_with_setup_s": "", "error_with_setup_pct": "",
                     "setup_source": ""})
    out_csv = args.e2e.with_name(args.e2e.stem + "-report.csv")
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    from fgsim.fileio import write_text_atomic

    write_text_atomic(out_csv, buf.getvalue())
    print(f"sampler set-up (initial noise on the CPU + copy): {setup:.3f} s, {setup_src}")
    print(f"{e2e['gpu']}, latent {t}x{h}x{w}, {e2e['steps']} steps x 2 passes; {e2e['rounds']} rounds (median, "
          f"spread); predicted host {pred['none']['host_s_per_op'] * 1e6:.1f} us/op, "
          f"{pred['none']['kernels_per_step']} kernels per step")
    print("| mode | measured run s (spread) | predicted run s | error % | + set-up | error % |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["mode"].startswith("step:"):
            continue
        print(f"| {r['mode']} | {r['measured_run_s']:.3f} ({r['spread'] * 100:.1f} %) | {r['predicted_run_s']:.3f} | "
              f"{r['run_error_pct']:+.1f} | {r['predicted_with_setup_s']:.3f} | {r['error_with_setup_pct']:+.1f} |")
    print("one step, GPU kernel time per category (measured: torch.profiler | predicted): " + ", ".join(
        f"{c} {bd[c] * 1e3:.2f}|{busy.get(c, 0) * 1e3:.2f} ms" for c in sorted(bd)))
    print(f"\nwritten: {out_csv}")
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from fgsim.fileio import figure_png, write_bytes_atomic

        main_rows = [r for r in rows if not r["mode"].startswith("step:")]
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        x = np.arange(len(main_rows))
        ax.bar(x - 0.2, [r["measured_run_s"] for r in main_rows], 0.4, color="#4477aa",
               yerr=[[r["measured_run_s"] * r["spread"] / 2 for r in main_rows]] * 2, label="measured (median)")
        ax.bar(x + 0.2, [r["predicted_run_s"] for r in main_rows], 0.4, color="#ee6677", label="fgsim")
        ax.bar(x + 0.2, [r["setup_s"] for r in main_rows], 0.4, bottom=[r["predicted_run_s"] for r in main_rows],
               color="#ddaa33", label="sampler set-up (see report)")
        ax.set_xticks(x, [r["mode"] for r in main_rows])
        ax.set_ylabel("50-step sampling run (s)")
        ax.set_title(f"reference DiT, {t}x{h}x{w} latent, {e2e['gpu']}")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        write_bytes_atomic(out_csv.with_suffix(".png"), figure_png(fig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
