"""Candidate RP's rule (validation/MODEL_NOTES.md, "Session 15", pre-registered in 1d917b6): R11 (V-CLK) against RP
(the tensor pipe capped by the board's sustained tensor rate under its power limit, calibrate's sustained-clock
GEMM; ``fgsim.model.cta_cost.TENSOR_POWER_CAP_FLOPS``) with the committed calibration, on development data only:

* *L*: M4's long-run rows (run 11 / run 12 at per-cell NVML clocks, ``costmodel_rev12_clock.long_rows``) plus
  test16's four long-run twins;
* *S*: the harness rows of test15's record (its development lists and test15) and test16, per (axis, kernel) cell;
* bench: test15's and test16's bench-axis MAPE per kernel.

    PYTHONPATH=validation:kernels python validation/costmodel_clock_rp.py --out validation/costmodel_clock_rp.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "validation" / "results"
CALIB13 = RES / "h200-2026-11-30-costmodel-calib13.csv"
TEST16 = RES / "h200-2026-11-30-costmodel-test16.csv"
MODES = ("R11", "RP")


def sustained_gemm_flops(path: Path = CALIB13) -> float:
    """R_P: 2 x 8192^3 FLOP over the ms per matmul of calibrate's ``sustained_clock`` microbenchmark row (FLOP/s)."""
    for r in csv.DictReader(path.open(newline="")):
        if r.get("micro") == "sustained_clock" and r.get("measured_ms"):
            return 2.0 * 8192.0**3 / (float(r["measured_ms"]) * 1e-3)
    raise SystemExit(f"costmodel_clock_rp: {path}: no sustained_clock row")


def _with_cap(cap: float | None, fn, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
    from fgsim.model import cta_cost

    saved = cta_cost.TENSOR_POWER_CAP_FLOPS
    cta_cost.TENSOR_POWER_CAP_FLOPS = cap
    try:
        return fn(*a, **kw)
    finally:
        cta_cost.TENSOR_POWER_CAP_FLOPS = saved


def long_rows(cache: Path, cap: float) -> list[dict]:
    sys.path.insert(0, str(ROOT / "validation"))
    import costmodel_rev12_clock as r12

    base_price = r12.price

    def price(c, n, cfg, gpu, params, resources, mode, clk):  # noqa: ANN001, ANN202
        return _with_cap(cap if mode == "RP" else None, base_price, c, n, cfg, gpu, params, resources, "R11", clk)

    r12.MODES = MODES
    r12.COLS = ["src", "kernel", "H", "N", "n_text", "density_target", "sm_mhz", "measured_ms",
                *(f"pred_ms_{m}" for m in MODES), *(f"err_pct_{m}" for m in MODES)]
    r12.price = price
    return r12.long_rows(cache)


def harness(cap: float) -> dict:
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.validation import report
    from fgsim.validation.report import CountsCache, predict_rows, read_results, score, select_rows

    rec = ROOT / "validation" / "costmodel_summary_rev11_test15.json"
    summ = json.loads(rec.read_text())
    files = [str(RES / Path(f).name) for f in summ["development_files"] + summ["test_files"]] + [str(TEST16)]
    rows, _ = select_rows([r for r in read_results(files) if (r.get("kind") or "kernel") == "kernel"
                           and r.get("measured_ms") not in ("", None)])
    cal = resolve(load_gpu("h200"))
    cache = CountsCache()
    assert report.PRICE_AT_RECORDED_CLOCK and report.CLOCK_MODEL == "vclk"
    preds = {m: _with_cap(cap if m == "RP" else None, predict_rows, rows, params=cal.params,
                          resources=cal.resources, cache=cache) for m in MODES}
    meas = np.array([float(r["measured_ms"]) * 1e-3 for r in rows])
    cells: dict = {}
    for mode, p in preds.items():
        for ax, d in score(rows, p).items():
            for k, v in d.items():
                if isinstance(v, dict) and "mape" in v and k != "all":
                    cells.setdefault(f"{ax}/{k}", {"n": int(v["n"])})[mode] = round(float(v["mape"]), 3)
    bench: dict = {}
    longtw: list[dict] = []
    for split in ("test15", "test16"):
        for kern in ("fg", "block", "dense"):
            idx = [i for i, r in enumerate(rows) if r.get("split") == split and r["axis"] == "bench"
                   and r["kernel"] == kern]
            if idx:
                bench[f"{split}/{kern}"] = {"n": len(idx), **{m: round(float(np.abs(p[idx] / meas[idx] - 1).mean()
                                                                             * 100), 3) for m, p in preds.items()}}
    for i, r in enumerate(rows):
        if r.get("split") == "test16" and "5 interleaved rounds" in (r.get("bench") or ""):
            longtw.append({"src": "test16", "kernel": r["kernel"], "case_id": r["case_id"],
                           "sm_mhz": float(r["sm_clock_mhz"]), "measured_ms": meas[i] * 1e3,
                           **{f"err_pct_{m}": round(100 * (p[i] / meas[i] - 1), 2) for m, p in preds.items()}})
    return {"files": [str(Path(f).relative_to(ROOT)) for f in files], "rows": len(rows), "cells": cells,
            "bench": bench, "test16_long": longtw}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rev12cache"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    a.cache.mkdir(parents=True, exist_ok=True)
    cap = sustained_gemm_flops()
    print(f"R_P = {cap / 1e12:.1f} TFLOP/s (calib13's sustained_clock row)", flush=True)
    lrows = long_rows(a.cache, cap)
    h = harness(cap)
    allrows = [{"err_pct_R11": r["err_pct_R11"], "err_pct_RP": r["err_pct_RP"], "kernel": r["kernel"]}
               for r in lrows] + h["test16_long"]
    out: dict = {"R_P_tflops": round(cap / 1e12, 2), "long": {}}
    for grp, sel in (("all", lambda r: True), ("dense", lambda r: "dense" in r["kernel"]),
                     ("block", lambda r: "block" in r["kernel"]),
                     ("fg", lambda r: r["kernel"] in ("fg", "fg_attention", "fg_attention_previous"))):
        g = [r for r in allrows if sel(r)]
        out["long"][grp] = {"n": len(g), **{m: {"mape": round(float(np.mean([abs(r[f"err_pct_{m}"]) for r in g])), 2),
                                                "bias": round(float(np.mean([r[f"err_pct_{m}"] for r in g])), 2)}
                                            for m in MODES}}
    out["harness"] = h
    big = {k: v for k, v in h["cells"].items() if v["n"] >= 5}
    worst = max(((v["RP"] - v["R11"]), k) for k, v in big.items())
    bw = max(((v["RP"] - v["R11"]), k) for k, v in h["bench"].items())
    gain = out["long"]["all"]["R11"]["mape"] - out["long"]["all"]["RP"]["mape"]
    out["criteria"] = {"1_long_gain_points": round(gain, 2), "1": gain >= 2.0,
                       "2_worst_cell_change": [round(worst[0], 3), worst[1]], "2": worst[0] <= 1.0,
                       "3_bench_worst_change": [round(bw[0], 3), bw[1]], "3": bw[0] <= 1.0}
    out["criteria"]["passes"] = all(out["criteria"][k] for k in ("1", "2", "3"))
    print(json.dumps({k: v for k, v in out.items() if k != "harness"}, indent=1))
    from fgsim.fileio import write_text_atomic

    write_text_atomic(a.out, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
