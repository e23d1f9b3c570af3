"""V-RD (the reuse-distance L2 variant of validation/MODEL_NOTES.md, "Revision 10 of session 13") against its
pre-registered rule, on development data only (the 16 development lists + test12 + test13, the list-schedule model
check's 20 rows (rule3) and run 10's fg D=128 M=128 g1 benchmark rows at H12 N32760, H12 N32760+512 text and H40
N32760, d <= 0.5).

    git apply validation/costmodel_rd_variant.patch   # V-RD's code (V-L2's pricing included; dL = 0 in the GPU files)
    PYTHONPATH=.:validation:kernels python validation/costmodel_rd_variant.py --cache /tmp/rdcache --out rd.json

Variants: off (revision 9), C = 25 MB (V-RD25), C = 50 MB (V-RD50), with the committed calibration's parameters and the
GPU file's ``l2_miss_latency_cycles`` (dL). Refuses any test14 CSV.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "validation" / "results"
PROBE = RESULTS / "kernels-h200-2026-11-30-ws2-list-rule3.csv"
RUN10 = RESULTS / "kernels-h200-2026-11-30-issue12-run10.csv"
TEST13 = RESULTS / "h200-2026-11-30-costmodel-test13.csv"


def _mask(h: int, nv: int, nt: int, dt: float) -> np.ndarray:
    from fgattn.masks import window_mask, with_text

    m = window_mask(1, h, nv, 128, dt, device="cpu")
    if nt:
        m = with_text(m, nt, 128)
    return m[0].numpy()


def bench_problems(cache: Path) -> list[dict]:
    """rule3's problems (walk + list, launch-ordered or natural) and run 10's list rows (launch-ordered), with
    counts and key reads (built once, then read from ``cache``)."""
    sys.path[:0] = [str(ROOT / "validation"), str(ROOT / "kernels")]
    from fgsim.model.l2reuse import key_reads
    from list_schedule_model_check import problems

    cache.mkdir(parents=True, exist_ok=True)
    probs = []
    for p in problems(PROBE):
        probs.append(dict(src="rule3", h=p["h"], nv=p["n_video"], nt=p["n_text"], dt=p["dt"], ordered=p["ordered"],
                          meas={"walk": p["entry_ms"], "list": p["list_ms"]}))
    for r in csv.DictReader(open(RUN10, newline="")):
        if (r["kernel"], r["pattern"], r["D"], r["M"], r["gran_n"]) != ("fg_attention", "window", "128", "128", "1"):
            continue
        h, n, nt, dt = int(r["H"]), int(r["N"]), int(r["n_text"]), float(r["density_target"])
        if (h, n - nt) not in ((12, 32760), (40, 32760)) or dt > 0.5 or (h == 40 and nt):
            continue
        probs.append(dict(src="run10", h=h, nv=n - nt, nt=nt, dt=dt, ordered=True, meas={"list": float(r["ms"])}))
    for p in probs:
        f = cache / f"h{p['h']}_n{p['nv']}_t{p['nt']}_d{p['dt']}.pkl"
        if not f.is_file():
            t0 = time.time()
            m = _mask(p["h"], p["nv"], p["nt"], p["dt"])
            obj = {"counts": m.sum(-1).astype(np.int64), "reads": key_reads(m)}
            f.write_bytes(pickle.dumps(obj))
            print(f"built {f.name} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        obj = pickle.loads(f.read_bytes())  # our own cache file, written just above
        p["counts"], p["reads"] = obj["counts"], obj["reads"]
    return probs


def price_bench(probs: list[dict]) -> list[dict]:
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
        pred = {}
        for sched in p["meas"]:
            c = dataclasses.replace(cfg, extra={**ex, "gluon": {**g, "schedule": sched}})
            pred[sched] = predict_counts(p["counts"], p["nv"] + p["nt"], c, gpu, r.params, resources=r.resources,
                                         keysets=p["reads"])[0] * 1e3
        out.append(pred)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rdcache"))
    ap.add_argument("--out", type=Path, help="write the per-cell numbers (JSON) here")
    ap.add_argument("--variants", default="25,50", help="C values (MB) to evaluate besides off")
    ap.add_argument("--bench-only", action="store_true")
    a = ap.parse_args(argv)
    from fgsim.model import assemble
    from fgsim.validation.report import CountsCache, predict_rows, score, scored_rows

    summ = json.loads((ROOT / "validation" / "costmodel_summary_rev9_test12.json").read_text())
    files = [str(RESULTS / f) for f in summ["development_files"] + summ["test_files"]] + [str(TEST13)]
    if any("test14" in f for f in files):
        raise SystemExit("test14 is the frozen list: not development data")
    probs = bench_problems(a.cache)
    rows = [] if a.bench_only else scored_rows(files)
    cache = CountsCache()
    res = {}
    cs = [float(x) for x in a.variants.split(",") if x]
    for c_mb in cs + [0.0]:
        assemble.L2_REUSE_C_MB = c_mb
        t0 = time.time()
        b = price_bench(probs)
        errs = [(p["src"], sch, p["ordered"], (b[i][sch] / p["meas"][sch] - 1) * 100)
                for i, p in enumerate(probs) for sch in p["meas"]]
        rat = [(b[i]["list"] / b[i]["walk"], p["meas"]["list"] / p["meas"]["walk"])
               for i, p in enumerate(probs) if p["src"] == "rule3"]
        nat = [abs(e) for s, sch, o, e in errs if s == "rule3" and not o]
        out = {"bench_err": errs, "bench_mape": float(np.mean([abs(e[3]) for e in errs])),
               "ratio_within_0.05": int(sum(abs(x - y) <= 0.05 for x, y in rat)), "ratios": rat,
               "natural_rule3_abs": nat}
        if rows:
            pred = predict_rows(rows, cache=cache)
            meas = np.array([float(r["measured_ms"]) * 1e-3 for r in rows])
            out["dev"] = score(rows, pred)
            out["dev_mape_all"] = float(np.mean(np.abs(pred / meas - 1)) * 100)
            t13 = [i for i, r in enumerate(rows) if "test13" in r.get("_file", "") and r.get("axis") == "bench"
                   and '"order": "lpt"' not in r.get("launch_extra", "") and '"gluon"' in r.get("launch_extra", "")]
            out["natural_test13_abs"] = [float(abs(pred[i] / meas[i] - 1) * 100) for i in t13]
            out["bench13_err"] = {rows[i]["case_id"] + ("" if '"order": "lpt"' not in rows[i].get("launch_extra", "")
                                                        else "/lpt"): float((pred[i] / meas[i] - 1) * 100)
                                  for i, r in enumerate(rows) if "test13" in r.get("_file", "")
                                  and r.get("axis") == "bench"}
        out["seconds"] = time.time() - t0
        res[c_mb] = out
        print(f"C {c_mb:.0f} MB: bench MAPE {out['bench_mape']:.2f} % over {len(errs)} rows; ratio ok "
              f"{out['ratio_within_0.05']}/10; natural rule3 |err| {[round(x, 1) for x in nat]}; test13 natural "
              f"{[round(x, 1) for x in out.get('natural_test13_abs', [])]}; dev MAPE "
              f"{out.get('dev_mape_all', float('nan')):.2f} %; {out['seconds']:.0f} s", flush=True)
        print("   bench errs:", " ".join(f"{s}:{sch[0]}{'L' if o else 'N'}{e:+.1f}" for s, sch, o, e in
                                         [(x[0], x[1], x[2], x[3]) for x in errs]), flush=True)
    off = res[0.0]
    verdict = {}
    for c_mb in cs:
        on = res[c_mb]
        worse = []
        for ax, d in off.get("dev", {}).items():
            for k in ("fg", "block", "dense"):
                if k in d and d[k]["n"] >= 5:
                    delta = on["dev"][ax][k]["mape"] - d[k]["mape"]
                    if abs(delta) > 0.05:
                        print(f"  C{c_mb:.0f} {ax:6s} {k:5s} n {d[k]['n']:4d}: {d[k]['mape']:.2f} -> "
                              f"{on['dev'][ax][k]['mape']:.2f} % ({delta:+.2f})")
                    if delta > 1.0:
                        worse.append(f"{ax}/{k} {delta:+.2f}")
        nat_off = max(off["natural_rule3_abs"] + off.get("natural_test13_abs", []))
        nat_on = max(on["natural_rule3_abs"] + on.get("natural_test13_abs", []))
        crit = {"(1) bench MAPE improves by >= 3.0 points": off["bench_mape"] - on["bench_mape"] >= 3.0,
                "(2) no development cell (>= 5 rows) worse by > 1.0 point": (not worse) if rows else None,
                "(3) list/walk within 0.05 at no fewer problems": on["ratio_within_0.05"] >= off["ratio_within_0.05"],
                "(4) natural-order worst |error| within +3 points": nat_on <= nat_off + 3.0}
        for k, v in crit.items():
            print(f"C{c_mb:.0f} {k}: {'not evaluated (--bench-only)' if v is None else 'yes' if v else 'NO'}" + (f" ({', '.join(worse)})" if k.startswith("(2)")
                                                               and worse else "")
                  + (f" ({nat_off:.1f} -> {nat_on:.1f})" if k.startswith("(4)") else "")
                  + (f" ({off['bench_mape']:.2f} -> {on['bench_mape']:.2f})" if k.startswith("(1)") else ""))
        acc = all(v is not False for v in crit.values()) and all(v is not None for v in crit.values())
        failed = [k for k, v in crit.items() if v is False]
        verdict[f"C{c_mb:.0f}"] = {"criteria": crit, "accepted": acc, "worse": worse, "failed": failed}
        print(f"V-RD C {c_mb:.0f} MB:", "ACCEPTED" if acc else "not accepted" if failed else "undecided", flush=True)
    if a.out:
        from fgsim.fileio import write_text_atomic

        write_text_atomic(a.out, json.dumps({"results": {str(k): v for k, v in res.items()}, "verdict": verdict},
                                            indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
