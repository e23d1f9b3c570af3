"""Time to predict a whole Wan-14B-720p-shaped run: 40 layers x 40 heads x 50 steps x 2 passes, N = 75,600
(591 query blocks per call at M=128) — 4,000 calls, 94.6 M CTAs — for the FG kernel on the H200 (target <= 2 s).

Counts come from a synthetic in-memory workload (40 distinct per-layer arrays, prepared before timing);
the timed part is fgsim.costmodel.predict_workload: CTA cost tables, the event-driven scheduler for every call,
memory floors and the breakdown. Run: python3 validation/bench_predict_speed.py [--kernels fg,block,dense]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from fgsim.calibration import resolve_params  # noqa: E402
from fgsim.costmodel import predict_workload  # noqa: E402
from fgsim.endtoend import SyntheticDensityCounts  # noqa: E402
from fgsim.hardware import load_gpu  # noqa: E402
from fgsim.launchcfg import launch_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kernels", default="fg")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", default=str(Path(__file__).parent / "results" / "predict-speed.csv"),
                    help="CSV to append the timings to ('' to skip)")
    a = ap.parse_args()
    rows: list[dict[str, object]] = []
    n_tok, heads, layers, passes, m = 75600, 40, 40, 100, 128
    wl = SyntheticDensityCounts(n_tok, heads, layers, passes, m, density=0.3, frame_tokens=3600)
    gpu = load_gpu(a.gpu)
    params, note = resolve_params(gpu)
    for k in a.kernels.split(","):
        cfg = launch_config(k, gpu.name, 128, m, 1, "bf16")
        for lay in range(layers):  # prepare (cache) the synthetic counts outside the timing
            wl.counts(0, lay, m=m, n=1 if k != "block" else cfg.gran_n)
        small = SyntheticDensityCounts(n_tok, heads, 1, 1, m, 0.3)
        predict_workload(small, cfg, gpu, params)  # numba JIT / cache load outside the timing
        best = np.inf
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            pr = predict_workload(wl, cfg, gpu, params)
            best = min(best, time.perf_counter() - t0)
        ctas = len(pr.entries) * heads * (-(-n_tok // m))
        print(f"{k}: {len(pr.entries)} calls, {ctas / 1e6:.1f} M CTAs, predicted run {pr.total_s:.1f} s of "
              f"kernel time; prediction took {best:.2f} s (best of {a.repeat}; target <= 2 s) [{note}]")
        rows.append({"date": datetime.now(UTC).isoformat(timespec="seconds"), "kernel": k,
                     "calls": len(pr.entries), "ctas": ctas, "predict_s": round(best, 4), "repeat": a.repeat,
                     "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                     "python": platform.python_version(), "numba": numba.__version__, "params": note})
    if a.record:
        path = Path(a.record)
        new = not path.exists()
        with path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            if new:
                w.writeheader()
            w.writerows(rows)
        print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
