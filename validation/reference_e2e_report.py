"""Measured end-to-end sampling time of the reference DiT against fgsim's prediction (issue 6). CPU only.

    python validation/reference_e2e_report.py [--e2e validation/results/refdit/e2e-h200-2026-11-29.json]

Reads what ``validation/time_reference_e2e.py`` measured on the GPU (seconds per 50-step run per attention mode,
and the kept-tile counts of every (layer, branch) mask the sparse modes used) and predicts, with the cost model and
the launch configs fgattn ran with, the attention time of each run: every (layer, branch) mask is used for all
steps, so a run's attention time is ``steps`` times the sum of the predicted calls. Measured attention time is a
mode's run minus the ``none`` run (self-attention core skipped), minus the timed mask predictions for fg/block.
End-to-end prediction = measured ``none`` + predicted attention (+ measured predictions); fgsim's own
FLOP/byte estimate of the non-attention work (``fgsim.endtoend``) is printed beside it.

Writes ``<e2e stem>-report.csv`` and ``.png`` next to the input and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fgsim.calibration import resolve_params  # noqa: E402
from fgsim.costmodel import predict_counts  # noqa: E402
from fgsim.endtoend import load_model, non_attention_per_layer  # noqa: E402
from fgsim.hardware import load_gpu  # noqa: E402
from fgsim.launchcfg import launch_config  # noqa: E402

DEFAULT = Path(__file__).parent / "results" / "refdit" / "e2e-h200-2026-11-29.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--e2e", type=Path, default=DEFAULT, help="e2e JSON from time_reference_e2e.py")
    p.add_argument("--gpu", default="h200")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if not args.e2e.is_file():
        print(f"error: {args.e2e}: no such file", file=sys.stderr)
        return 2
    e2e = json.loads(args.e2e.read_text())
    counts_path = args.e2e.with_name(args.e2e.name.replace("e2e-", "e2e-counts-").replace(".json", ".npz"))
    with np.load(counts_path, allow_pickle=False) as z:
        counts = {k: z[k] for k in z.files}
    gpu = load_gpu(args.gpu)
    params, psrc = resolve_params(gpu)
    t, h, w = e2e["grid_latent"]
    n_tokens = t * (h // 2) * (w // 2)
    m, steps = int(e2e["block_m"]), int(e2e["steps"])
    model = load_model("fgsim-reference-dit")
    keys = sorted({k.rsplit("_", 1)[0] for k in counts})  # l{layer}_{branch}
    pred_attn: dict[str, float] = {}
    for kern, n in (("fg", "n1"), ("block", "n64"), ("dense", "n1")):
        cfg = launch_config(kern, args.gpu, model.head_dim, m, 1)
        rec = e2e["launch_configs"].get(kern)
        if rec and (rec["block_n"], rec["num_warps"], rec["num_stages"]) != (cfg.block_n, cfg.num_warps,
                                                                           cfg.num_stages):
            print(f"warning: {kern} ran with {rec}, fgsim's launch table says {cfg}", file=sys.stderr)
        pred_attn[kern] = steps * sum(predict_counts(counts[f"{k}_{n}"], n_tokens, cfg, gpu, params)[0]
                                      for k in keys)
    sec = e2e["seconds_min"]
    none = sec["none"]
    pred_calls = e2e["predictions_per_run"] * e2e["predict_ms_per_call_median"] * 1e-3
    per_layer = non_attention_per_layer(model, n_tokens, gpu, 0.75, params.hbm_bw_eff)
    non_attn_model = sum(per_layer.values()) * model.layers * steps * 2
    rows = []
    for mode, kern, extra in (("fgattn-dense", "dense", 0.0), ("fg", "fg", pred_calls), ("block", "block", pred_calls)):
        meas_attn = sec[mode] - none - extra
        rows.append({"mode": mode, "measured_run_s": sec[mode], "measured_attention_s": round(meas_attn, 4),
                     "predicted_attention_s": round(pred_attn[kern], 4),
                     "attention_error_pct": round((pred_attn[kern] / meas_attn - 1) * 100, 2),
                     "predicted_run_s": round(none + extra + pred_attn[kern], 4),
                     "run_error_pct": round(((none + extra + pred_attn[kern]) / sec[mode] - 1) * 100, 2),
                     "mask_predictions_s": round(extra, 4)})
    rows.append({"mode": "sdpa", "measured_run_s": sec["sdpa"], "measured_attention_s": round(sec["sdpa"] - none, 4),
                 "predicted_attention_s": "", "attention_error_pct": "", "predicted_run_s": "", "run_error_pct": "",
                 "mask_predictions_s": 0.0})
    out_csv = args.e2e.with_name(args.e2e.stem + "-report.csv")
    with out_csv.open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    print(f"{e2e['gpu']}, grid {t}x{h}x{w} latent = {n_tokens} tokens, {steps} steps x 2 passes x {model.layers} "
          f"layers; masks: exact predictor, kept {e2e['kept_fraction_mean']:.3f}; parameters: {psrc}")
    print(f"measured run without self-attention ('none'): {none:.3f} s; fgsim's FLOP/byte estimate of that work: "
          f"{non_attn_model:.3f} s (launch/host-bound toy: not modelled)\n")
    print("| mode | measured run s | measured attention s | predicted attention s | error % | predicted run s | "
          "error % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        pa = r["predicted_attention_s"]
        print(f"| {r['mode']} | {r['measured_run_s']:.3f} | {r['measured_attention_s']:.3f} | "
              f"{pa if pa == '' else f'{pa:.3f}'} | {r['attention_error_pct']} | {r['predicted_run_s']} | "
              f"{r['run_error_pct']} |")
    print(f"\nwritten: {out_csv}")
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        modes = [r["mode"] for r in rows[:3]]
        x = np.arange(len(modes))
        ax.bar(x - 0.2, [none] * 3, 0.4, color="#bbbbbb", label="measured: rest of the run")
        ax.bar(x - 0.2, [r["measured_attention_s"] + r["mask_predictions_s"] for r in rows[:3]], 0.4, bottom=none,
               color="#4477aa", label="measured: attention (+ mask predictions)")
        ax.bar(x + 0.2, [none] * 3, 0.4, color="#dddddd")
        ax.bar(x + 0.2, [r["predicted_attention_s"] + r["mask_predictions_s"] for r in rows[:3]], 0.4, bottom=none,
               color="#ee6677", label="fgsim: predicted attention")
        ax.set_xticks(x, [f"{md}\nmeas | pred" for md in modes])
        ax.set_ylabel("50-step sampling run (s)")
        ax.set_title(f"reference DiT, {n_tokens} tokens, {e2e['gpu']}")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(out_csv.with_suffix(".png"), dpi=110)
        plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
