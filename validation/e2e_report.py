"""Measured real-size passes (``validation/e2e_time.py``) against fgsim's end-to-end model. CPU only.

    python validation/e2e_report.py [--dir validation/results/e2e-h200-2026-11-30] [--no-plot]

Predictions use only: the model files' published configs (operator lists traced on the meta device), the
operator calibration ``fgsim/data/ops/h200.json`` (microbenchmarks, and the SM clock the H200 sustains running
attention back to back at its power limit: fgattn kernels are priced at it, :func:`fgsim.endtoend.generation_gpu`),
the kernel cost model with its own calibration (fgattn dense / fg / block, on the kept-tile counts of the injected
masks) and fgattn's launch table. The measured pass times are never inputs. ``report.csv`` also carries each
fgattn pass priced at the calibration clock (``*_calclock`` columns: the model before the clock change). Writes in ``--dir``: ``passes.csv`` (measured pass seconds, the
``predict --measured`` format), ``report.csv`` (one row per config and mode), ``breakdown.csv`` (per operator
category), ``report-summary.json``; and ``docs/img/e2e-h200.png`` (stacked bars, measured next to predicted).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "kernels"))
sys.path.insert(0, str(ROOT / "validation"))

DEFAULT = ROOT / "validation" / "results" / "e2e-h200-2026-11-30-run2"
PREVIOUS = ROOT / "validation" / "results" / "e2e-h200-2026-11-30"
PLOT = ROOT / "docs" / "img" / "e2e-h200.png"
MODES = ("none", "cudnn", "original", "dense", "fg@0.3", "fg@0.6", "block@0.3", "block@0.6")


#: Runs measured on an earlier launch table than the committed one: each is priced with the table it ran (the
#: kernels of issue 12 session 6, commit 08559f8, changed fg M=64 and the dense entries after these runs).
RUN_TABLES = {f"e2e-h200-2026-11-30{r}": ROOT / "kernels" / "logs" / "launch_configs-before-session6.json"
              for r in ("", "-run2", "-run3", "-run4", "-run5")}


def _resources(table: Path | None) -> dict[str, Any] | None:
    """Compiled-kernel figures for pricing a run on ``table``: None (the calibration's own) for the committed
    table; else every calibration measurement's (:mod:`compiled_figures`)."""
    if table is None:
        return None
    from compiled_figures import measured_resources  # type: ignore[import-not-found]

    return measured_resources("h200")


def _kernel_config(kernel: str, block_m: int, head_dim: int, table: Path | None = None) -> Any:
    """The launch configuration a run used: fgattn's committed table, or ``table`` (an earlier table file)."""
    from fgsim.launchcfg import launch_config

    gran = {"fg": 1, "block": block_m, "dense": 1}[kernel]
    if table is None:
        return launch_config(kernel, "h200", head_dim, block_m, gran)
    from fgattn.launch import launch_config as fgattn_config

    lc = fgattn_config(kernel, "h200", head_dim, block_m, gran, table_path=str(table))
    return launch_config(kernel, "h200", head_dim, block_m, gran, block_n=int(lc.block_n),
                         num_warps=int(lc.num_warps), num_stages=int(lc.num_stages), extra=dict(lc.extra),
                         source=f"{table.name}: {lc.source}")


def _attention_call_s(kernel: str, counts: np.ndarray, n_tokens: int, block_m: int, head_dim: int = 128,
                      table: Path | None = None, gpu: Any = None) -> float:
    """One self-attention call (s) of an fgattn kernel from the kernel cost model (its public API), with the
    launch configuration of ``table`` (default: the committed launch table), on ``gpu`` (default: the H200 at
    its GPU file's clock, the calibration's; whole passes use :func:`fgsim.endtoend.generation_gpu`'s)."""
    from fgsim.calibration import resolve_params
    from fgsim.costmodel import predict_counts
    from fgsim.hardware import load_gpu

    gpu = gpu or load_gpu("h200")
    params = resolve_params(gpu)[0]
    cfg = _kernel_config(kernel, block_m, head_dim, table)
    return float(predict_counts(counts, n_tokens, cfg, gpu, params, resources=_resources(table))[0])


def _dense_block_m() -> int:
    """M of the dense kernel a pass runs in mode ``dense``: the integration (``FgSchedule(backend="dense")``)
    calls ``fgattn.dense_attention`` without ``block_m``, so its default (128), not the FG runs' M = 64."""
    import inspect

    import fgattn

    return int(inspect.signature(fgattn.dense_attention).parameters["block_m"].default)


def _w(path: Path, rows: list[dict[str, Any]]) -> None:
    import io

    from fgsim.fileio import write_text_atomic

    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=DEFAULT)
    p.add_argument("--previous", type=Path, default=PREVIOUS,
                   help="an earlier run whose compile passes, breakdown and mask-prediction costs stand in for "
                        "those a config of --dir lacks")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--extra", type=Path, nargs="*", default=[DEFAULT.with_name("e2e-h200-2026-11-30-run3"),
                                                             DEFAULT.with_name("e2e-h200-2026-11-30-run4"),
                                                             DEFAULT.with_name("e2e-h200-2026-11-30-run5"),
                                                             DEFAULT.with_name("e2e-h200-2026-11-30-run6"),
                                                             DEFAULT.with_name("e2e-h200-2026-11-30-run7"),
                                                             DEFAULT.with_name("e2e-h200-2026-11-30-run8")],
                   help="later runs whose configs (and compile passes) join the report")
    args = p.parse_args(argv)
    src = args.dir / "e2e.json"
    if not src.is_file():
        print(f"error: {src}: no such file", file=sys.stderr)
        return 2
    from fgsim.endtoend import generation_gpu, load_model
    from fgsim.hardware import load_gpu
    from fgsim.opmodel import load_op_calibration, model_ops, pass_time, predictor_time, sdpa_time

    gpu_cal = load_gpu("h200")
    gpu_gen, clock_note = generation_gpu(gpu_cal)

    e2e = json.loads(src.read_text())
    prev = json.loads((args.previous / "e2e.json").read_text()) if (args.previous / "e2e.json").is_file() else {}
    cal = load_op_calibration()
    counts = dict(np.load(args.dir / "counts.npz"))
    for extra in args.extra:  # later runs: their configs join the report, their compile passes replace earlier
        if not (extra / "e2e.json").is_file():
            continue
        ex = json.loads((extra / "e2e.json").read_text())
        for key, c in ex.get("configs", {}).items():
            c["source_dir"] = str(extra.relative_to(ROOT)) if extra.is_relative_to(ROOT) else str(extra)
            e2e["configs"][key] = c
        for key, c in ex.get("compile", {}).items():
            if isinstance(c, dict) and "median_s" in c:
                e2e.setdefault("compile", {})[key] = c
        if (extra / "counts.npz").is_file():
            counts.update(dict(np.load(extra / "counts.npz")))
    measured_bd: dict[str, dict[str, float]] = {}
    kernel_bd: dict[str, dict[str, float]] = {}
    for key, c in list(prev.get("configs", {}).items()) + list(e2e["configs"].items()):
        if c.get("breakdown_cudnn_s"):
            measured_bd[key] = c["breakdown_cudnn_s"]
        if c.get("breakdown_profiler_cudnn_s"):
            kernel_bd[key] = c["breakdown_profiler_cudnn_s"]
    bd_src = args.previous / "breakdown-measured.csv"
    if bd_src.is_file():
        with bd_src.open() as fh:
            for r in csv.DictReader(fh):
                measured_bd.setdefault(r["config"], {}).setdefault(r["category"], float(r["seconds"]))
    passes_rows, rows, bd_rows, summary = [], [], [], {}
    for key, c in e2e["configs"].items():
        model = load_model(c["model"])
        reso, n, m = c["resolution"], int(c["n_tokens"]), int(c["block_m"])
        ops = model_ops(model, reso)
        selfs = next(o.sdpa for o in ops if o.kind == "attention" and o.cat == "attention")
        layers = sum(1 for o in ops if o.kind == "attention" and o.cat == "attention")
        cross = next((o.sdpa for o in ops if o.kind == "attention" and o.cat == "cross_attention"), None)
        att0 = {"attention": 0.0, "cross_attention": sdpa_time(cal, cross) if cross else 0.0}
        non = pass_time(ops, cal, att0)
        non_noL2 = pass_time(ops, cal, att0, l2=False)
        non_cls = pass_time(ops, cal, att0, exact=False)
        per_call = {"none": 0.0, "cudnn": sdpa_time(cal, selfs), "original": sdpa_time(cal, selfs)}
        table = RUN_TABLES.get(Path(c.get("source_dir", args.dir)).name)
        per_call_cal = dict(per_call)  # fgattn kernels at the calibration clock (the model before the change)
        for pc_, g_ in ((per_call, gpu_gen), (per_call_cal, gpu_cal)):
            pc_["dense"] = _attention_call_s("dense", counts[f"{key}|0.3|n1"], n, _dense_block_m(), model.head_dim,
                                             table, g_)
            for mode in c["median_s"]:
                if "@" in mode:
                    kern, d = mode.split("@")
                    pc_[mode] = _attention_call_s(kern, counts[f"{key}|{d}|{'n1' if kern == 'fg' else 'n64'}"], n,
                                                  m, model.head_dim, table, g_)
        for kern, ran in (c.get("launch_configs") or {}).items():
            if kern == "dense" and int(ran.get("block_m", m)) != _dense_block_m():
                continue  # runs up to 7 recorded the dense entry at the FG block_m, not the one the pass ran
            cfg = _kernel_config(kern, _dense_block_m() if kern == "dense" else m, model.head_dim, table)
            if (ran["block_n"], ran["num_warps"], ran["num_stages"]) != (cfg.block_n, cfg.num_warps, cfg.num_stages):
                print(f"warning: {key} {kern} ran with {ran}, the launch table priced says {cfg.block_n}/"
                      f"{cfg.num_warps}/{cfg.num_stages}", file=sys.stderr)
        med, spread = dict(c["median_s"]), dict(c["spread"])
        if "none" not in med and key in prev.get("configs", {}):
            # the pass without self-attention runs no attention kernel: taken from the earlier run
            med["none"] = prev["configs"][key]["median_s"]["none"]
            spread["none"] = prev["configs"][key]["spread"]["none"]
            c.setdefault("rounds_none", prev["configs"][key]["rounds"])
        pred_pass = {md: non.total_s + layers * per_call[md] for md in med}
        pred_pass_cal = {md: non.total_s + layers * per_call_cal[md] for md in med}
        # whole generation with masks predicted once (step 0, every layer and CFG pass; exact predictor)
        steps, pps = model.steps, model.passes_per_step
        if "mask_prediction" not in c:
            c["mask_prediction"] = prev["configs"][key]["mask_prediction"]
            c["mask_prediction_source"] = str(args.previous.relative_to(ROOT))
        mp = c["mask_prediction"]["exact"]
        pt = predictor_time(cal, "exact", model.heads, n, model.head_dim, m, kept=mp["kept"])
        pred_once_meas = pps * layers * (mp["predict_s"] + mp["index_s"])
        pred_once_pred = pps * layers * (pt["predict"] + pt["index"])
        gen_meas = {md: steps * pps * med[md] for md in med}
        gen_pred = {md: steps * pps * pred_pass[md] for md in med}
        gen_pred_cal = {md: steps * pps * pred_pass_cal[md] for md in med}
        for md in med:
            if "@" in md:
                gen_meas[md] += pred_once_meas
                gen_pred[md] += pred_once_pred
                gen_pred_cal[md] += pred_once_pred
        for md in MODES:
            if md not in med:
                continue
            passes_rows.append({"model": c["model"], "resolution": reso, "mode": md, "pass_s": round(med[md], 6),
                                "spread": round(spread[md], 4),
                                "rounds": c.get("rounds_none", c["rounds"]) if md not in c["median_s"] else c["rounds"]})
            sp_m = gen_meas["cudnn"] / gen_meas[md]
            sp_p = gen_pred["cudnn"] / gen_pred[md]
            rows.append({"config": key, "mode": md, "measured_pass_s": round(med[md], 5),
                         "spread": round(spread[md], 4), "predicted_pass_s": round(pred_pass[md], 5),
                         "pass_error_pct": round((pred_pass[md] / med[md] - 1) * 100, 2),
                         "measured_attention_s": round(med[md] - med["none"], 5),
                         "predicted_attention_s": round(layers * per_call[md], 5),
                         "measured_e2e_speedup": round(sp_m, 4), "predicted_e2e_speedup": round(sp_p, 4),
                         "speedup_error_pts": round((sp_p - sp_m) * 100, 2),
                         "source": c.get("source_dir", str(args.dir.relative_to(ROOT)) if args.dir.is_relative_to(ROOT)
                                         else str(args.dir)),
                         "predicted_pass_calclock_s": round(pred_pass_cal[md], 5),
                         "pass_error_calclock_pct": round((pred_pass_cal[md] / med[md] - 1) * 100, 2),
                         "predicted_e2e_speedup_calclock": round(gen_pred_cal["cudnn"] / gen_pred_cal[md], 4)})
        # per operator category of the cuDNN pass: kernel time (torch.profiler) against the predicted GPU busy
        # time; the older events-per-operator measurement (which includes launch waits) against the queue's
        meas_bd, kern_bd = measured_bd.get(key, {}), kernel_bd.get(key, {})
        if kern_bd and sum(kern_bd.values()) > 1.05 * med["cudnn"]:
            # the profiled pass ran slower than the timed ones (its kernels alone outlast the timed pass): a GPU
            # clock state the timed rounds did not have; not a measurement of the same pass
            print(f"warning: {key}: profiled cuDNN pass kernels {sum(kern_bd.values()):.3f} s > timed pass "
                  f"{med['cudnn']:.3f} s: profiler breakdown not used", file=sys.stderr)
            kern_bd = {}
        pc = pass_time(ops, cal, att0 | {"attention": per_call["cudnn"]})
        pred_bd, pred_busy = pc.by_cat, pc.busy_by_cat
        tot, ktot = sum(meas_bd.values()), sum(kern_bd.values())
        for cat in sorted(set(meas_bd) | set(kern_bd)):
            ms, ks = meas_bd.get(cat, 0.0), kern_bd.get(cat, 0.0)
            bd_rows.append({"config": key, "category": cat, "measured_s": round(ms, 5),
                            "measured_share": round(ms / tot, 4) if tot else "", "predicted_s": round(pred_bd[cat], 5),
                            "error_pct": round((pred_bd[cat] / ms - 1) * 100, 2) if ms else "",
                            "kernel_s": round(ks, 5), "kernel_share": round(ks / ktot, 4) if ktot else "",
                            "predicted_kernel_s": round(pred_busy[cat], 5),
                            "kernel_error_pct": round((pred_busy[cat] / ks - 1) * 100, 2) if ks else ""})
        # the pass without self-attention: kernel time per category (torch.profiler) against the predicted
        # kernel time, and the rest of the pass (launch/host waits) against the queue's
        none_k = c.get("breakdown_profiler_none_s") or {}
        if none_k and sum(none_k.values()) > 1.05 * med["none"]:
            print(f"warning: {key}: profiled no-attention pass kernels {sum(none_k.values()):.3f} s > timed pass "
                  f"{med['none']:.3f} s: not used", file=sys.stderr)
            none_k = {}
        if none_k:
            for cat in sorted(none_k):
                bd_rows.append({"config": key, "category": f"none:{cat}", "measured_s": "", "measured_share": "",
                                "predicted_s": "", "error_pct": "", "kernel_s": round(none_k[cat], 5),
                                "kernel_share": round(none_k[cat] / med["none"], 4),
                                "predicted_kernel_s": round(non.busy_by_cat[cat], 5),
                                "kernel_error_pct": round((non.busy_by_cat[cat] / none_k[cat] - 1) * 100, 2)
                                if none_k[cat] else ""})
            idle_m = med["none"] - sum(none_k.values())
            idle_p = non.total_s - sum(non.busy_by_cat.values())
            bd_rows.append({"config": key, "category": "none:idle", "measured_s": "", "measured_share": "",
                            "predicted_s": "", "error_pct": "", "kernel_s": round(idle_m, 5),
                            "kernel_share": round(idle_m / med["none"], 4), "predicted_kernel_s": round(idle_p, 5),
                            "kernel_error_pct": ""})
        mpred = {}
        for name in ("exact", "pooled"):
            mm = c["mask_prediction"][name]
            pp = predictor_time(cal, name, model.heads, n, model.head_dim, m, kept=mm["kept"])
            mpred[name] = {"measured_s": mm["predict_s"] + mm["index_s"], "predicted_s": pp["predict"] + pp["index"],
                           "error_pct": ((pp["predict"] + pp["index"]) / (mm["predict_s"] + mm["index_s"]) - 1) * 100}
        comp = e2e.get("compile", {}).get(key) or prev.get("compile", {}).get(key)
        comp_out = None
        if comp:
            pc = {md: pass_time(ops, cal, att0 | {"attention": per_call[md]}, compiled=True).total_s
                  for md in comp["median_s"]}
            comp_out = {md: {"measured_s": comp["median_s"][md], "predicted_s": pc[md],
                             "error_pct": (pc[md] / comp["median_s"][md] - 1) * 100} for md in pc}
        summary[key] = {
            "non_attention": {"measured_s": med["none"], "predicted_s": non.total_s,
                              "error_pct": (non.total_s / med["none"] - 1) * 100,
                              "predicted_without_l2_reuse_s": non_noL2.total_s,
                              "predicted_class_bandwidth_only_s": non_cls.total_s},
            "attention_share_cudnn": {"measured": 1 - med["none"] / med["cudnn"],
                                      "predicted": 1 - non.total_s / pred_pass["cudnn"]},
            "mask_prediction": mpred, "compile": comp_out}
    _w(args.dir / "passes.csv", passes_rows)
    _w(args.dir / "report.csv", rows)
    _w(args.dir / "breakdown.csv", bd_rows)
    from fgsim.calibration import resolve_params
    from fgsim.fileio import write_text_atomic

    summary["_kernel_cost_model"] = {"parameters": resolve_params(gpu_cal)[1],
                                     "fgattn_clock_mhz": gpu_gen.sustained_clock_mhz,
                                     "calibration_clock_mhz": gpu_cal.sustained_clock_mhz, "clock_note": clock_note}
    write_text_atomic(args.dir / "report-summary.json", json.dumps(summary, indent=1) + "\n")
    srows = []
    for key, v in summary.items():
        if key.startswith("_"):
            continue
        na = v["non_attention"]
        srows.append({"config": key, "quantity": "non_attention_s", "measured": round(na["measured_s"], 5),
                      "predicted": round(na["predicted_s"], 5), "error_pct": round(na["error_pct"], 2)})
        sh = v["attention_share_cudnn"]
        srows.append({"config": key, "quantity": "attention_share_cudnn", "measured": round(sh["measured"], 4),
                      "predicted": round(sh["predicted"], 4), "error_pct": ""})
        for name, mp in v["mask_prediction"].items():
            srows.append({"config": key, "quantity": f"mask_prediction_{name}_s", "measured": round(mp["measured_s"], 5),
                          "predicted": round(mp["predicted_s"], 5), "error_pct": round(mp["error_pct"], 2)})
        for md, cp in (v["compile"] or {}).items():
            srows.append({"config": key, "quantity": f"compiled_pass_{md}_s", "measured": round(cp["measured_s"], 5),
                          "predicted": round(cp["predicted_s"], 5), "error_pct": round(cp["error_pct"], 2)})
    _w(args.dir / "summary.csv", srows)
    print("| config | mode | measured ms | predicted ms | error % | e2e speedup meas | pred |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['config']} | {r['mode']} | {r['measured_pass_s'] * 1e3:.1f} | {r['predicted_pass_s'] * 1e3:.1f} "
              f"| {r['pass_error_pct']:+.1f} | {r['measured_e2e_speedup']:.3f} | {r['predicted_e2e_speedup']:.3f} |")
    for k, v in summary.items():
        if k.startswith("_"):
            print(k, v)
            continue
        print(k, json.dumps({a: (round(b["error_pct"], 1) if isinstance(b, dict) and "error_pct" in b else b)
                             for a, b in v.items() if a != "compile"}, default=str)[:300])
        if v["compile"]:
            print("  compile", {md: round(x["error_pct"], 1) for md, x in v["compile"].items()})
    if not args.no_plot:
        _plot(rows, bd_rows, summary)
    return 0


def _plot(rows: list[dict[str, Any]], bd_rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fgsim.fileio import figure_png, write_bytes_atomic

    configs = [k for k in summary if not k.startswith("_")]
    fig, axes = plt.subplots(1, len(configs), figsize=(4.2 * len(configs), 4.2))
    for ax, key in zip(np.atleast_1d(axes), configs, strict=True):
        rs = [r for r in rows if r["config"] == key and r["mode"] in ("cudnn", "fg@0.3", "fg@0.6", "block@0.3", "block@0.6")]
        non_m = summary[key]["non_attention"]["measured_s"]
        non_p = summary[key]["non_attention"]["predicted_s"]
        x = np.arange(len(rs))
        ax.bar(x - 0.2, [non_m * 1e3] * len(rs), 0.38, color="#bbbbbb", label="measured: non-attention")
        ax.bar(x - 0.2, [r["measured_attention_s"] * 1e3 for r in rs], 0.38, bottom=non_m * 1e3, color="#4477aa",
               label="measured: self-attention")
        ax.bar(x + 0.2, [non_p * 1e3] * len(rs), 0.38, color="#dddddd", label="predicted: non-attention")
        ax.bar(x + 0.2, [r["predicted_attention_s"] * 1e3 for r in rs], 0.38, bottom=non_p * 1e3, color="#ee6677",
               label="predicted: self-attention")
        ax.set_xticks(x, [f"{r['mode']}\nmeas|pred" for r in rs], fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.set_ylabel("ms per transformer pass (eager)")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4, framealpha=0.9)
    fig.suptitle("Real-size video transformer passes on an H200: measured (left bar) vs fgsim (right bar)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    write_bytes_atomic(PLOT, figure_png(fig))
    print(f"written: {PLOT}")


if __name__ == "__main__":
    sys.exit(main())
