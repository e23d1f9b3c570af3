"""The clock terms re-tested on the effective SM clock (session 15, helper M6; pre-registered in
validation/MODEL_NOTES.md, "Session 15, helper M6"): test16's and test17's long-run twins and their short twins
re-measured by the harness with the new ``sm_mhz_eff`` column (``fgsim.validation.sm_clock``), priced by the frozen
model (revision 13 + calib14, V-CLK) at NVML's clock and at the effective clock. DEVELOPMENT data: test16 / test17
were scored already; this is no new blind score.

    FGSIM_COMMIT=... PYTHONPATH=.:kernels python3 validation/costmodel_clock_eff.py --measure OUT     # GPU
    PYTHONPATH=kernels python validation/costmodel_clock_eff.py --analyse HARNESS.csv [--bench BENCH.csv] --out JSON

``--measure`` times the pairs (:data:`PAIRS`: short twin at the harness's default, 2 ms per replay x 3 rounds; long
twin with ``TEST17_LONG``, ~250 ms per replay x 5 rounds) into ``OUT/clock-eff-harness.csv``. ``--analyse``: (A)
per pair, the measured long / short time ratio against V-CLK's prediction at NVML's clocks (f_nvml,short /
f_nvml,long) and at the effective clocks (f_eff,short / f_eff,long): calibration-free; (B) every row priced by the
committed model at its NVML clock (today's V-CLK) and at ``k x f_eff`` with ``k`` = the median over the short rows of
NVML / f_eff (the calibration's rows recorded NVML clocks of short runs: k maps an effective clock onto that scale,
one number measured on the short rows, not fitted to the long ones); (C) the bench cells' NVML vs effective clock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: (list, short twin, long twin): the long-run twins of test16 (h-017..h-020) and test17 (a-016..a-018)
PAIRS = (("test16", "h-008", "h-017"), ("test16", "h-010", "h-018"), ("test16", "h-013", "h-019"),
         ("test16", "h-016", "h-020"), ("test17", "a-008", "a-016"), ("test17", "a-010", "a-017"),
         ("test17", "a-013", "a-018"))


def measure(out: Path, workers: int = 4) -> int:
    """Time :data:`PAIRS` (GPU): short twins first, then the long twins; one CSV."""
    from fgsim.provenance import ClockSampler, environment
    from fgsim.validation.cases import TEST17_LONG, load_case_list
    from fgsim.validation.measure import measure_cases, precompile

    short, long_ = [], []
    for lst in ("test16", "test17"):
        by_id = {c.case_id: c for c in load_case_list(lst)}
        for li, s, lo in PAIRS:
            if li == lst:
                short.append(by_id[s])
                long_.append(by_id[lo])
    csv_path = out / "clock-eff-harness.csv"
    env = environment()
    with ClockSampler(period_s=0.1) as clk:
        precompile(short, workers=workers)
        measure_cases(short, csv_path, clocks=clk, env=env)
        measure_cases(long_, csv_path, rounds=int(TEST17_LONG["rounds"]), target_ms=float(TEST17_LONG["target_ms"]),
                      clocks=clk, env=env)
    return 0


def _pct(p: float, m: float) -> float:
    return float((p / m - 1.0) * 100.0)


def pair_stats(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """(A): per pair of :data:`PAIRS` with both rows and both clocks, the measured long / short time ratio and
    V-CLK's error (%) predicting it from NVML's clocks and from the effective clocks."""
    from fgsim.validation.report import recorded_clock
    from fgsim.validation.sm_clock import recorded_eff_clock

    key = {r["case_id"]: r for r in rows}
    pairs = []
    for li, s, lo in PAIRS:
        a, b = key.get(s), key.get(lo)
        if a is None or b is None:
            continue
        fa_n, fb_n, fa_e, fb_e = recorded_clock(a), recorded_clock(b), recorded_eff_clock(a), recorded_eff_clock(b)
        if None in (fa_n, fb_n, fa_e, fb_e):
            continue
        r_meas = float(b["measured_ms"]) / float(a["measured_ms"])
        pairs.append({"list": li, "short": s, "long": lo, "kernel": a["kernel"], "t_short_ms": float(a["measured_ms"]),
                      "t_long_ms": float(b["measured_ms"]), "nvml_short": fa_n, "nvml_long": fb_n,
                      "eff_short": fa_e, "eff_long": fb_e, "ratio_measured": r_meas,
                      "err_pct_vclk_nvml": _pct(fa_n / fb_n, r_meas), "err_pct_vclk_eff": _pct(fa_e / fb_e, r_meas)})
    return pairs


def analyse(harness: Path, bench: Path | None) -> dict[str, Any]:
    """The statistics (A), (B), (C) of the module docstring; rows without ``sm_mhz_eff`` are reported and left
    out of (A) / (B)."""
    from fgsim.validation.report import predict_rows, read_results, recorded_clock
    from fgsim.validation.sm_clock import recorded_eff_clock

    rows = [r for r in read_results([harness]) if r.get("status") == "ok" and r.get("measured_ms")]
    out: dict[str, Any] = {"harness_csv": str(harness), "rows": len(rows),
                           "rows_without_eff": sorted(r["case_id"] for r in rows if recorded_eff_clock(r) is None)}
    pairs = pair_stats(rows)
    out["A_pairs"] = pairs
    if pairs:
        for k in ("err_pct_vclk_nvml", "err_pct_vclk_eff"):
            out[f"A_mean_abs_{k}"] = float(np.mean([abs(p[k]) for p in pairs]))
    longs = {lo for _, _, lo in PAIRS}
    shorts_ok = [r for r in rows if r["case_id"] not in longs and recorded_eff_clock(r) and recorded_clock(r)]
    ok = [r for r in rows if recorded_eff_clock(r) and recorded_clock(r)]
    if shorts_ok and ok:
        k = float(np.median([recorded_clock(r) / recorded_eff_clock(r) for r in shorts_ok]))
        eff_rows = [dict(r, sm_clock_mhz=f"{k * recorded_eff_clock(r):.1f}") for r in ok]
        p_n, p_e = predict_rows(ok), predict_rows(eff_rows)
        meas = np.array([float(r["measured_ms"]) for r in ok])
        per = []
        for r, pn, pe, m in zip(ok, p_n, p_e, meas, strict=True):
            per.append({"case_id": r["case_id"], "kernel": r["kernel"], "long": r["case_id"] in longs,
                        "measured_ms": float(m), "nvml": recorded_clock(r), "eff": recorded_eff_clock(r),
                        "err_pct_vclk_nvml": _pct(float(pn) * 1e3, m),
                        "err_pct_vclk_eff_scaled": _pct(float(pe) * 1e3, m)})
        out["B_k_nvml_over_eff_short"] = k
        out["B_rows"] = per
        for lab, sel in (("long", True), ("short", False)):
            g = [p for p in per if p["long"] is sel]
            for kk in ("err_pct_vclk_nvml", "err_pct_vclk_eff_scaled"):
                out[f"B_{lab}_mean_{kk}"] = float(np.mean([p[kk] for p in g])) if g else None
                out[f"B_{lab}_mape_{kk}"] = float(np.mean([abs(p[kk]) for p in g])) if g else None
    if bench is not None:
        import csv

        cells = []
        for r in csv.DictReader(bench.open(newline="")):
            e, n = recorded_eff_clock(r), r.get("sm_mhz") or ""
            cells.append({"kernel": r["kernel"], "density_target": r["density_target"], "ms": float(r["ms"]),
                          "sm_mhz": float(n) if n else None, "sm_mhz_eff": e,
                          "eff_over_nvml": (e / float(n)) if (e and n) else None})
        out["C_bench_cells"] = cells
        ratios = [c["eff_over_nvml"] for c in cells if c["eff_over_nvml"]]
        out["C_median_eff_over_nvml"] = float(np.median(ratios)) if ratios else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", type=Path, metavar="OUT", help="time the pairs on the GPU into OUT")
    ap.add_argument("--analyse", type=Path, metavar="CSV", help="a harness CSV of --measure")
    ap.add_argument("--bench", type=Path, help="bench_kernels --final CSV with sm_mhz_eff (part C)")
    ap.add_argument("--out", type=Path, help="--analyse: JSON to write")
    ap.add_argument("--workers", type=int, default=4)
    a = ap.parse_args(argv)
    if a.measure is not None:
        a.measure.mkdir(parents=True, exist_ok=True)
        return measure(a.measure, a.workers)
    if a.analyse is None:
        print("costmodel_clock_eff: --measure OUT or --analyse CSV is required", file=sys.stderr)
        return 2
    for opt, p in (("--analyse", a.analyse), ("--bench", a.bench)):
        if p is not None and not p.is_file():
            print(f"costmodel_clock_eff: {opt} {p}: no such file", file=sys.stderr)
            return 2
    res = analyse(a.analyse, a.bench)
    text = json.dumps(res, indent=1) + "\n"
    if a.out is not None:
        from fgsim.fileio import write_text_atomic

        write_text_atomic(a.out, text)
    for p in res.get("A_pairs", []):
        print(f"{p['list']} {p['short']}/{p['long']} {p['kernel']:<6} t_long/t_short {p['ratio_measured']:.4f} "
              f"NVML {p['nvml_short']:.0f}/{p['nvml_long']:.0f} eff {p['eff_short']:.0f}/{p['eff_long']:.0f} "
              f"V-CLK err NVML {p['err_pct_vclk_nvml']:+.1f} % eff {p['err_pct_vclk_eff']:+.1f} %")
    print({k: v for k, v in res.items() if not isinstance(v, list)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
