"""V-CLK's acceptance rule on development data (validation/MODEL_NOTES.md, "Session 14"): every development row
priced with the committed calibration at the GPU file's clock and at the SM clock the row recorded under load.

    PYTHONPATH=validation:kernels python validation/costmodel_clock_variant.py --out validation/costmodel_clock_variant.json \
        --bench validation/results/contig-check-h200-2026-11-30-gluon-contig-probe.csv

(run with the calibration of the rule, calib12: ``git show 91793dc:fgsim/data/calibrations/h200.json``, via
``FGSIM_CALIBRATION_PATH``).

Criterion (3): the per-(axis, kernel) MAPE of the development lists (test14's record's development CSVs plus test14)
with V-CLK off and on. Criteria (1) and (2) read ``validation/costmodel_contig_check.py``'s CSV (the benchmark rows
and helper D's tl entry rows at both clocks) when ``--bench`` names it.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--bench", type=Path, nargs="*", default=[],
                    help="CSVs with err_pct_calibration_clock / err_pct_recorded_clock columns (criteria 1, 2)")
    a = ap.parse_args(argv)
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.validation import report
    from fgsim.validation.report import CountsCache, predict_rows, read_results, score, select_rows

    summ = json.loads((ROOT / "validation" / "costmodel_summary.json").read_text())
    res = ROOT / "validation" / "results"
    files = [str(res / Path(f).name) for f in summ["development_files"] + summ["test_files"]]
    rows, _ = select_rows([r for r in read_results(files) if (r.get("kind") or "kernel") == "kernel"
                           and r.get("measured_ms") not in ("", None)])
    cal = resolve(load_gpu("h200"))
    meas = np.array([float(r["measured_ms"]) * 1e-3 for r in rows])
    cache = CountsCache()
    out: dict = {"files": [str(Path(f).relative_to(ROOT)) for f in files], "rows": len(rows)}
    preds = {}
    committed = report.PRICE_AT_RECORDED_CLOCK
    for on in (False, True):
        report.PRICE_AT_RECORDED_CLOCK = on
        preds[on] = predict_rows(rows, params=cal.params, resources=cal.resources, cache=cache)
    report.PRICE_AT_RECORDED_CLOCK = committed
    cells = {}
    for on in (False, True):
        sc = score(rows, preds[on])
        for ax, d in sc.items():
            for k, v in d.items():
                if isinstance(v, dict) and "mape" in v and v.get("n", 0) >= 5 and k != "all":
                    cells.setdefault(f"{ax}/{k}", {})["on" if on else "off"] = round(float(v["mape"]), 3)
                    cells[f"{ax}/{k}"]["n"] = int(v["n"])
    worst = max((c["on"] - c["off"], k) for k, c in cells.items())
    changed = int(np.sum(np.abs(preds[True] / preds[False] - 1) > 1e-12))
    out.update(cells=cells, rows_repriced=changed, worst_cell_change=[round(worst[0], 3), worst[1]],
               criterion3=bool(worst[0] <= 1.0))
    del meas
    for f in a.bench:
        rs = list(csv.DictReader(f.open()))
        for grp in sorted({r["group"] for r in rs}):
            g = [r for r in rs if r["group"] == grp]
            e0 = np.array([float(r["err_pct_calibration_clock"]) for r in g])
            e1 = np.array([float(r["err_pct_recorded_clock"]) for r in g])
            out.setdefault("bench", {})[grp] = {"n": len(g), "mape_calibration_clock": round(float(np.abs(e0).mean()), 2),
                                                "mape_recorded_clock": round(float(np.abs(e1).mean()), 2)}
    print(json.dumps(out, indent=1))
    from fgsim.fileio import write_text_atomic

    write_text_atomic(a.out, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
