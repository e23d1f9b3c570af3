"""docs/endtoend.md block: the SM clock the H200 sustains running attention back to back at its power limit (the
GPU property whole-generation predictions price fgattn kernels at), beside the clocks the timed runs saw.

Reads ``e2e-h200-2026-11-30-run7/attention-clock.json`` and ``attention-clock-samples.csv`` (the measurement,
``validation/e2e_clock.py``), ``fgsim/data/ops/h200.json`` (the recorded value), every e2e run's ``clocks.csv``
(200 ms nvidia-smi samples over the call: median SM clock of the samples above 400 W, i.e. under load) and the
context-parallel timing CSVs' per-row ``sm_clock_mhz`` (clock sampled while each row's rounds ran).
"""

from __future__ import annotations

import json
import statistics

from _common import RESULTS, ROOT, provenance, read_rows  # type: ignore[import-not-found]

RUN = "e2e-h200-2026-11-30-run7"
E2E_RUNS = (("run 1", "e2e-h200-2026-11-30"), ("run 2", "e2e-h200-2026-11-30-run2"),
            ("run 3", "e2e-h200-2026-11-30-run3"), ("run 4", "e2e-h200-2026-11-30-run4"),
            ("run 5", "e2e-h200-2026-11-30-run5"), ("run 6", "e2e-h200-2026-11-30-run6"), ("run 7", RUN))
CP_RUNS = (("CP run 2", "cp-h200x2-2026-11-30-run2-timing.csv"), ("CP run 3", "cp-h200x2-2026-11-30-run3-timing.csv"))
LOADED_W = 400.0


def _loaded_clocks(run: str) -> list[float]:
    """SM clocks (MHz) of a run's clocks.csv samples drawing more than LOADED_W."""
    out = []
    for line in (RESULTS / run / "clocks.csv").read_text().splitlines():
        f = [x.strip() for x in line.split(",")]
        try:
            if float(f[3].split()[0]) > LOADED_W:
                out.append(float(f[1].split()[0]))
        except (IndexError, ValueError):
            continue
    return out


def render() -> str:
    m = json.loads((RESULTS / RUN / "attention-clock.json").read_text())
    rec = json.loads((ROOT / "fgsim" / "data" / "ops" / "h200.json").read_text()).get("sustained_clock", {})
    samples = read_rows(f"{RUN}/attention-clock-samples.csv")
    names = {"fg": "fgattn FG (tuned entry, M = 64, window kept 0.3)", "cudnn": "cuDNN SDPA"}
    out = [f"Attention looped back to back on one {m.get('gpu', 'H200')} (B = 1, H = {m['shape']['heads']}, "
           f"N = {m['shape']['n']:,}, D = {m['shape']['head_dim']}, bf16; {m['seconds']:.0f} s per kernel after 2 s "
           f"idle, samples of the first {m['ramp_s']:.0f} s dropped):", "",
           "| kernel | SM clock, median | p10–p90 | min–max | samples | board power, median | ms per call: first 0.5 s "
           "/ steady | throttle reasons |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for k, v in m["kernels"].items():
        c = v["clock_mhz"]
        out.append(f"| {names.get(k, k)} | {c['median']:,.0f} MHz | {c['p10']:,.0f}–{c['p90']:,.0f} | "
                   f"{c['min']:,.0f}–{c['max']:,.0f} | {c['n']} | {v['power_w']['median']:.0f} W | "
                   f"{v['ms_first_0p5s']:.2f} / {v['ms_steady']:.2f} | {', '.join(v['throttle_reasons'])} |")
    out += ["", f"Recorded in `fgsim/data/ops/h200.json` (`sustained_clock.sm_clock_mhz`): "
            f"**{float(rec.get('sm_clock_mhz', float('nan'))):,.0f} {rec.get('unit', 'MHz')}**, the FG kernel's "
            "median; whole-generation predictions price fgattn kernels at it.", "",
            f"SM clock the timed runs saw (median of the 200 ms samples above {LOADED_W:.0f} W, `clocks.csv`; CP: "
            "the timing CSV's per-row clock, sampled while the row's rounds ran):", "",
            "| run | what ran | SM clock, median | min–max | samples |", "|---|---|---:|---:|---:|"]
    nrows = len(samples)
    for label, run in E2E_RUNS:
        if not (RESULTS / run / "clocks.csv").is_file():
            continue
        cl = _loaded_clocks(run)
        if not cl:
            continue
        nrows += len(cl)
        out.append(f"| e2e {label} | whole transformer passes (eager) | {statistics.median(cl):,.0f} MHz | "
                   f"{min(cl):,.0f}–{max(cl):,.0f} | {len(cl)} |")
    for label, f in CP_RUNS:
        rows = read_rows(f)
        cl = [float(r["sm_clock_mhz"]) for r in rows if r.get("sm_clock_mhz")]
        if cl:
            nrows += len(cl)
            out.append(f"| {label} | attention + communication per rank (CUDA graphs / short eager loops, "
                       f"interleaved rounds) | {statistics.median(cl):,.0f} MHz | {min(cl):,.0f}–{max(cl):,.0f} | "
                       f"{len(cl)} |")
    out += ["", provenance([f"{RUN}/attention-clock.json", f"{RUN}/attention-clock-samples.csv",
                            "e2e-h200-2026-11-30*/clocks.csv", *[f for _, f in CP_RUNS]], nrows,
                           "nvidia-smi clocks.sm / power.draw samples (100 ms in the attention loops, 200 ms over the "
                           "e2e calls); attention loops: host sync every 10 calls",
                           "median (p10–p90, min–max) of the samples")]
    return "\n".join(out)
