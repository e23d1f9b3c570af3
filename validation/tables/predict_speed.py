"""README block: how long predicting a whole Wan2.1-14B 720p run takes on the CPU (validation/bench_predict_speed.py)."""

from __future__ import annotations

import statistics

from _common import provenance, read_rows  # type: ignore[import-not-found]

CSV = "predict-speed.csv"


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s >= 0.01 else f"{s * 1e3:.1f} ms"


def render() -> str:
    rows = read_rows(CSV)
    latest = max(r["date"] for r in rows)
    day = latest[:10]
    cur = [r for r in rows if r["date"][:10] == day]
    by_kernel: dict[str, list[float]] = {}
    for r in cur:
        by_kernel.setdefault(r["kernel"], []).append(float(r["predict_s"]))
    calls = int(cur[0]["calls"])
    ctas = int(cur[0]["ctas"])
    parts = ", ".join(f"{k} {_seconds(statistics.median(v))}" for k, v in sorted(by_kernel.items()))
    cores = cur[0]["cores"]
    return (f"Pricing the attention of a whole Wan2.1-14B 720p run ({calls:,} calls, {ctas / 1e6:.1f} M CTAs) with "
            f"the kernel cost model takes {parts} on a {cores}-core CPU machine like the one this project is built "
            "and tested on (in process, numba's compiled scheduler already loaded). The command "
            "`fgsim predict --model wan2.1-14b --resolution 720p` adds Python start-up and, the first time only, "
            "several seconds of importing diffusers and tracing the transformer's operators on the meta device "
            "(later runs read the traced operators from the user's cache); neither is in these timings.\n"
            + provenance([CSV], len(cur), f"wall clock of `fgsim.costmodel.predict_workload` "
                         f"(`validation/bench_predict_speed.py`) on {day}, best of each row's repeats",
                         "median over rows per kernel"))
