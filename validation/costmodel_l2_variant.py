"""V-L2 (the L2-locality variant of validation/MODEL_NOTES.md, "calib11 and test13") against its pre-registered rule.

    git apply validation/costmodel_l2_variant.patch      # V-L2 was not accepted: its code lives in the patch
    PYTHONPATH=.:validation:kernels python validation/costmodel_l2_variant.py --cache /tmp/l2cache
    git apply -R validation/costmodel_l2_variant.patch

Prices, with the committed calibration's parameters and V-L2 off and on (``fgsim.model.assemble.L2_LOCALITY``):
(1) the 10 problems of the list-schedule model check (walk entry and list; masks rebuilt exactly as the probe built
them, ``entry_regress.build_index``; counts cached under ``--cache``), (2) every development list (the CSVs the
committed summary was scored from plus the test12 CSV, development data since its scoring), per (axis, kernel);
prints each criterion of the rule and the verdict. Development data only: refuses any test13 CSV.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "validation" / "results"
CHECK = RESULTS / "list-schedule-model-check-h200-2026-11-30-rule3.csv"
PROBE = RESULTS / "kernels-h200-2026-11-30-ws2-list-rule3.csv"


def bench_counts(cache: Path) -> list[dict]:
    """The check's problems with their (H, QB) counts (built once, then read from ``cache``)."""
    sys.path[:0] = [str(ROOT / "validation"), str(ROOT / "kernels")]
    from list_schedule_model_check import problems

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for p in problems(PROBE):
        f = cache / f"{p['shape'].replace(' ', '_').replace('+', 'p')}_{p['dt']}.npy"
        if not f.is_file():
            from entry_regress import build_index

            t0 = time.time()
            idx = build_index(p["h"], p["n_video"], p["n_text"], p["dt"], "cpu", order=p["ordered"])
            np.save(f, idx.counts().reshape(p["h"], -1).numpy().astype(np.int64))
            print(f"built {f.name} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        out.append({**p, "counts": np.load(f)})
    return out


def price_bench(probs: list[dict]) -> list[tuple[float, float, float, float]]:
    """(measured walk, measured list, predicted walk, predicted list) ms per problem."""
    import dataclasses

    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.assemble import predict_counts

    gpu = load_gpu("h200")
    r = resolve(gpu)
    cfg = launch_config("fg", "h200", 128, 128, 1)
    out = []
    for p in probs:
        ex = {k: v for k, v in cfg.extra.items() if k != "order"}
        if p["ordered"]:
            ex["order"] = "lpt"
        g = {k: v for k, v in cfg.extra["gluon"].items() if k != "schedule"}
        walk = dataclasses.replace(cfg, extra={**ex, "gluon": {**g, "schedule": "walk"}})
        lst = dataclasses.replace(cfg, extra={**ex, "gluon": {**g, "schedule": "list"}})
        n = p["n_video"] + p["n_text"]
        tw = predict_counts(p["counts"], n, walk, gpu, r.params, resources=r.resources)[0] * 1e3
        tl = predict_counts(p["counts"], n, lst, gpu, r.params, resources=r.resources)[0] * 1e3
        out.append((p["entry_ms"], p["list_ms"], tw, tl))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/l2cache"))
    ap.add_argument("--out", type=Path, help="write the per-cell numbers (JSON) here")
    a = ap.parse_args(argv)
    from fgsim.model import assemble
    from fgsim.validation.report import CountsCache, predict_rows, score, scored_rows

    if not hasattr(assemble, "l2_miss_fraction"):
        print("costmodel_l2_variant: V-L2 is not in this tree; apply validation/costmodel_l2_variant.patch first",
              file=sys.stderr)
        return 2

    summ = json.loads((ROOT / "validation" / "costmodel_summary_rev9_test12.json").read_text())  # its dev + test12
    files = [str(RESULTS / f) for f in summ["development_files"] + summ["test_files"]]
    if any("test13" in f for f in files):
        raise SystemExit("test13 is the frozen list: not development data")
    probs = bench_counts(a.cache)
    rows = scored_rows(files)
    cache = CountsCache()
    res = {}
    for on in (False, True):
        assemble.L2_LOCALITY = on
        t0 = time.time()
        b = price_bench(probs)
        pred = predict_rows(rows, cache=cache)
        dt = time.time() - t0
        meas = np.array([float(r["measured_ms"]) * 1e-3 for r in rows])
        bw = [(pw / mw - 1) * 100 for mw, ml, pw, pl in b]
        bl = [(pl / ml - 1) * 100 for mw, ml, pw, pl in b]
        ratio_ok = sum(abs(pl / pw - ml / mw) <= 0.05 for mw, ml, pw, pl in b)
        res[on] = {"bench_walk_err": bw, "bench_list_err": bl,
                   "bench_mape": float(np.mean(np.abs(bw + bl))), "ratio_within_0.05": int(ratio_ok),
                   "dev": score(rows, pred), "dev_mape_all": float(np.mean(np.abs(pred / meas - 1)) * 100),
                   "seconds": dt}
        print(f"V-L2 {'on ' if on else 'off'}: bench MAPE {res[on]['bench_mape']:.2f} % (walk "
              f"{' '.join(f'{x:+.1f}' for x in bw)}; list {' '.join(f'{x:+.1f}' for x in bl)}), list/walk within "
              f"0.05 at {ratio_ok}/10, development {len(rows)} rows MAPE {res[on]['dev_mape_all']:.2f} %, {dt:.0f} s",
              flush=True)
    off, on = res[False], res[True]
    worse = []
    for ax, d in off["dev"].items():
        for k in ("fg", "block", "dense"):
            if k in d and d[k]["n"] >= 5:
                delta = on["dev"][ax][k]["mape"] - d[k]["mape"]
                print(f"  {ax:6s} {k:5s} n {d[k]['n']:4d}: {d[k]['mape']:.2f} -> {on['dev'][ax][k]['mape']:.2f} %"
                      f" ({delta:+.2f})")
                if delta > 1.0:
                    worse.append(f"{ax}/{k} {delta:+.2f}")
    crit = {"(1) bench MAPE improves by >= 2.0 points": off["bench_mape"] - on["bench_mape"] >= 2.0,
            "(2) no development cell (>= 5 rows) worse by > 1.0 point": not worse,
            "(3) list/walk within 0.05 at no fewer problems": on["ratio_within_0.05"] >= off["ratio_within_0.05"],
            "(4) development scoring <= 1.5x the time": on["seconds"] <= 1.5 * off["seconds"]}
    for k, v in crit.items():
        print(f"{k}: {'yes' if v else 'NO'}" + (f" ({', '.join(worse)})" if k.startswith("(2)") and worse else ""))
    print("V-L2:", "ACCEPTED" if all(crit.values()) else "not accepted")
    if a.out:
        from fgsim.fileio import write_text_atomic

        write_text_atomic(a.out, json.dumps({"off": off, "on": on, "criteria": crit}, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
