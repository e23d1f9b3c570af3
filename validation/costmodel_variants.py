"""Refit the cost model on calibration rows only and score development CSVs per axis (model-variant log).

    python validation/costmodel_variants.py --calib <calib CSVs> --dev <development CSVs> [--label NAME]

Fits exactly as ``fgsim calibrate --from-csv`` does (stream efficiencies measured, the rest bounded least squares
on the calibration kernel rows), then prints the fit and the development MAPE per axis and kernel, one line per
variant, for validation/MODEL_NOTES.md. Never give it the frozen test list.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calib", nargs="+", required=True)
    ap.add_argument("--dev", nargs="+", required=True)
    ap.add_argument("--label", default="variant")
    ap.add_argument("--worst", type=int, default=0, help="also print the worst development rows")
    ap.add_argument("--rows-out", help="write every development row's prediction and error (CSV) here")
    ap.add_argument("--save", help="write the fitted parameters and resources (JSON) here")
    ap.add_argument("--fit-also", default="", help="comma-separated case ids of the --dev files fitted with the "
                    "calibration rows and left out of the scoring (stand-ins for calibration rows not measured yet)")
    ap.add_argument("--l2-port", type=float, default=0.0, help="per-SM L2 -> SM cap (B/clk) instead of the calibration "
                    "CSV's l2_smem measurement (or, without one, the GPU file's value)")
    ap.add_argument("--free", default="", help="comma-separated measured parameters fitted instead (e.g. l2_bw_eff)")
    ap.add_argument("--sass-overlay", default="", help="costmodel_sass_offline.py JSON: its tile-loop figures replace "
                    "the recorded ones of every configuration it holds, in the fit and the scoring (revision 9: the "
                    "EXIT rule's figures for rows recorded with the old loop pick)")
    ap.add_argument("--fix", default="", help="comma-separated name=value parameters held fixed (e.g. l2_bw_eff=0.938)")
    a = ap.parse_args()
    if any("test13" in f for f in a.dev + a.calib):  # session 13: test12 is development data, test13 frozen
        raise SystemExit("--dev: the frozen test list test13 is not development data")
    from fgsim.calibrate_micro import measured_constants
    from fgsim.calibration import fit_rows
    from fgsim.hardware import load_gpu
    from fgsim.model.params import SPECS, ModelParams
    from fgsim.validation.measure import resources_table
    from fgsim.validation.report import predict_rows, read_results, score, scored_rows, worst_lines

    t0 = time.time()
    rows = [r for r in read_results(a.calib) if r.get("split") == "calib" and r.get("measured_ms")]
    also = {c for c in a.fit_also.split(",") if c}
    if also:
        rows += [{**r, "split": "calib"} for r in scored_rows(a.dev) if r["case_id"] in also]
    krows = [r for r in rows if (r.get("kind") or "kernel") == "kernel" and (r.get("status") or "ok") == "ok"]
    mrows = [r for r in rows if r.get("kind") == "micro"]
    gpu = load_gpu("h200")
    clocks = sorted(float(r["sm_clock_mhz"]) for r in krows if (r.get("sm_clock_mhz") or "").strip())
    const = measured_constants(mrows, clocks[len(clocks) // 2] if clocks else 0.0, gpu)
    from fgsim.commands.calibrate import MEASURED_EFFICIENCIES

    measured = MEASURED_EFFICIENCIES
    from fgsim.model.params import MEASURED_FROM

    fixed = {k: min(max(const[MEASURED_FROM.get(k, k)], SPECS[k].lo), SPECS[k].hi) for k in measured
             if MEASURED_FROM.get(k, k) in const}
    for k in (x for x in a.free.split(",") if x):
        fixed.pop(k, None)
    for kv in (x for x in a.fix.split(",") if x):
        k, v = kv.split("=")
        fixed[k] = float(v)
    from fgsim.hardware import MEASURED_PROPERTIES

    props = {k: const[k] for k in MEASURED_PROPERTIES if k in const}  # every GPU property the CSV measured
    if a.l2_port:
        props["l2_port_bytes_per_clk"] = a.l2_port
    res = resources_table(krows)
    overlay: dict[str, dict[str, int]] = {}
    if a.sass_overlay:
        import json as _js

        from fgsim.validation.measure import SASS_FIELDS

        with open(a.sass_overlay) as fh:
            cfgs = _js.load(fh).get("configs", {})
        overlay = {k: {f: int(v[f]) for f in SASS_FIELDS if f in v} for k, v in cfgs.items()
                   if "error" not in v and int(v.get("loop_mma", 0) or 0) > 0}
        for k, v in overlay.items():
            if k in res:
                res[k] = {**res[k], **v}
    params, fit = fit_rows(krows, "h200", start=ModelParams().replace(**fixed), resources=res,
                           free=[n for n in SPECS if n not in fixed], gpu_properties=props)
    if a.save:
        import json

        with open(a.save, "w") as fh:
            json.dump({"params": params.as_dict(), "resources": res}, fh)
    drows = [r for r in scored_rows(a.dev) if r["case_id"] not in also]
    if overlay:  # the development rows' own figures too (the calibration's table wins where it has the key)
        own = resources_table(drows)
        res = {**own, **res}
        for k, v in overlay.items():
            if k in res:
                res[k] = {**res[k], **v}
    pred = predict_rows(drows, gpu="h200", params=params, resources=res, gpu_properties=props or
                        {"l2_port_bytes_per_clk": load_gpu("h200", measured=False).l2_port_bytes_per_clk})
    sc = score(drows, pred)
    meas = np.array([float(r["measured_ms"]) * 1e-3 for r in drows])
    ape = np.abs(pred / meas - 1) * 100
    cells = []
    for ax in ("tuned", "config", "sm", "dtype", "trace"):
        if ax in sc:
            d = sc[ax]
            cells.append(f"{ax} " + " / ".join(f"{d[k]['mape']:.1f}" for k in ("fg", "block", "dense") if k in d))
    print(f"{a.label}: fit {fit['mape']:.2f} / max {fit['max_ape']:.1f} % ({fit['n']} rows, at bound "
          f"{','.join(fit['at_bound']) or '-'}) | " + " | ".join(cells) + f" | all {ape.mean():.1f} "
          f"({len(drows)} rows) [{time.time() - t0:.0f} s]", flush=True)
    print("  params: " + ", ".join(f"{k}={v:.4g}" for k, v in params.as_dict().items()) + f" | port {props}")
    import json as _json

    err = (pred / meas - 1) * 100
    groups: dict[str, list[float]] = {}
    for r, e in zip(drows, err, strict=True):
        ex = _json.loads(r.get("launch_extra") or "{}")
        tag = ""
        if r["kernel"] == "dense" and not ex.get("persistent"):
            tag = "dense tb" if ex.get("tail_branch") else "dense serial"
        elif r["kernel"] == "fg" and ex.get("one_row"):
            tag = f"fg one_row M{r['block_m']}"
        if tag:
            groups.setdefault(tag, []).append(float(e))
        f = r["_file"].rsplit("-", 1)[-1].removesuffix(".csv")
        groups.setdefault("file " + f, []).append(abs(float(e)))
    print("  " + " | ".join(f"{k}: {np.mean(v):+.1f} ({len(v)})" for k, v in sorted(groups.items())))
    fin = [abs(float(e)) for r, e in zip(drows, err, strict=True)
           if any(t in r["_file"] for t in ("-dev6.", "-dev7.", "-test6.", "-test7.", "-test8."))]
    print(f"  final-kernel rows (dev6, dev7, test6, test7, test8): MAPE {np.mean(fin):.2f} ({len(fin)} rows)")
    for k, v in sorted(fit["per_kind"].items()):
        print(f"  calib {k}: n={v['n']} MAPE {v['mape']:.2f} max {v['max_ape']:.1f}")
    if a.rows_out:
        import csv

        keys = ("case_id", "axis", "kernel", "structure", "n_tokens", "heads", "head_dim", "block_m", "block_n",
                "num_stages", "num_warps", "dtype", "sm_count", "launch_extra", "loop_instr", "measured_ms")
        with open(a.rows_out, "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow([*keys, "predicted_ms", "error_pct"])
            for r, pr, m in zip(drows, pred, meas, strict=True):
                wr.writerow([*(r.get(k, "") for k in keys), f"{pr * 1e3:.5f}", f"{(pr / m - 1) * 100:.2f}"])
    if a.worst:
        print("\n".join(worst_lines(drows, pred, a.worst)))


if __name__ == "__main__":
    main()
