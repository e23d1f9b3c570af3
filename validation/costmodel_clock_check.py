"""The benchmark rows of revision 10's acceptance rule priced at the SM clock the benchmark recorded under load
(development data; validation/MODEL_NOTES.md, "Revision 10 of session 13": why the benchmark's own rows miss).

    PYTHONPATH=validation:kernels python validation/costmodel_clock_check.py --cache /tmp/clkcache --out clock.csv

Rows: the list-schedule model check's 20 (rule3 probe: walk and list at 10 problems) and run 10's 18 fg D=128 M=128
g1 rows (H12 N32760, H12 N32760+512 text, H40 N32760; d <= 0.5); masks rebuilt as the benchmarks built them
(``fgattn.masks.window_mask`` seed 0, + ``with_text``). Each is priced by the committed model twice: at the GPU's
clock (the calibration's) and with the GPU's sustained clock set to the median SM clock the run recorded for the
row's shape (``clocks_under_load``; bandwidths unchanged). Printed and written: measured ms, both predictions, errors.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "validation" / "results"
PROBE = RESULTS / "kernels-h200-2026-11-30-ws2-list-rule3.csv"
RUN10 = RESULTS / "kernels-h200-2026-11-30-issue12-run10.csv"
COLS = ["src", "H", "N_video", "n_text", "density_target", "order", "schedule", "clock_mhz", "measured_ms",
        "pred_ms_calibration_clock", "pred_ms_recorded_clock", "err_pct_calibration_clock", "err_pct_recorded_clock"]


def _clock(s: str) -> float:
    m = re.match(r"sm (\d+)", s or "")
    if not m:
        raise ValueError(f"no SM clock in {s!r}")
    return float(m.group(1))


def problems() -> list[dict]:
    sys.path[:0] = [str(ROOT / "validation"), str(ROOT / "kernels")]
    from list_schedule_model_check import problems as probe_problems

    clk = {}
    for r in csv.DictReader(PROBE.open(newline="")):
        clk[("rule3", r["H"], r["N"], r["n_text"])] = _clock(r["clocks_under_load"])
    out = []
    for p in probe_problems(PROBE):
        n = p["n_video"] + p["n_text"]
        out.append(dict(src="rule3", h=p["h"], nv=p["n_video"], nt=p["n_text"], dt=p["dt"], ordered=p["ordered"],
                        meas={"walk": p["entry_ms"], "list": p["list_ms"]},
                        clock=clk[("rule3", str(p["h"]), str(n), str(p["n_text"]))]))
    for r in csv.DictReader(RUN10.open(newline="")):
        if (r["kernel"], r["pattern"], r["D"], r["M"], r["gran_n"]) != ("fg_attention", "window", "128", "128", "1"):
            continue
        h, n, nt, dt = int(r["H"]), int(r["N"]), int(r["n_text"]), float(r["density_target"])
        if (h, n - nt) not in ((12, 32760), (40, 32760)) or dt > 0.5 or (h == 40 and nt):
            continue
        out.append(dict(src="run10", h=h, nv=n - nt, nt=nt, dt=dt, ordered=True, meas={"list": float(r["ms"])},
                        clock=_clock(r["clocks_under_load"])))
    return out


def counts(p: dict, cache: Path) -> np.ndarray:
    f = cache / f"h{p['h']}_n{p['nv']}_t{p['nt']}_d{p['dt']}.npy"
    if not f.is_file():
        from fgattn.masks import window_mask, with_text

        t0 = time.time()
        m = window_mask(1, p["h"], p["nv"], 128, p["dt"], device="cpu")
        if p["nt"]:
            m = with_text(m, p["nt"], 128)
        np.save(f, m[0].sum(-1).numpy().astype(np.int64))
        print(f"built {f.name} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return np.load(f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/clkcache"))
    ap.add_argument("--out", type=Path, help="CSV to write (atomically)")
    a = ap.parse_args(argv)
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.assemble import predict_counts

    a.cache.mkdir(parents=True, exist_ok=True)
    gpu = load_gpu("h200")
    res = resolve(gpu)
    cfg = launch_config("fg", "h200", 128, 128, 1)
    rows = []
    for p in problems():
        c = counts(p, a.cache)
        n = p["nv"] + p["nt"]
        ex = {k: v for k, v in cfg.extra.items() if k != "order"}
        if p["ordered"]:
            ex["order"] = "lpt"
        g = {k: v for k, v in cfg.extra["gluon"].items() if k != "schedule"}
        slow = dataclasses.replace(gpu, sustained_clock_mhz=p["clock"])
        for sched, meas in p["meas"].items():
            cf = dataclasses.replace(cfg, extra={**ex, "gluon": {**g, "schedule": sched}})
            t0 = predict_counts(c, n, cf, gpu, res.params, resources=res.resources)[0] * 1e3
            t1 = predict_counts(c, n, cf, slow, res.params, resources=res.resources)[0] * 1e3
            rows.append(dict(src=p["src"], H=p["h"], N_video=p["nv"], n_text=p["nt"], density_target=p["dt"],
                             order="lpt" if p["ordered"] else "natural", schedule=sched, clock_mhz=p["clock"],
                             measured_ms=meas, pred_ms_calibration_clock=round(t0, 4),
                             pred_ms_recorded_clock=round(t1, 4),
                             err_pct_calibration_clock=round(100 * (t0 / meas - 1), 1),
                             err_pct_recorded_clock=round(100 * (t1 / meas - 1), 1)))
    print(" | ".join(COLS))
    for r in rows:
        print(" | ".join(str(r[k]) for k in COLS))
    e0 = np.array([r["err_pct_calibration_clock"] for r in rows])
    e1 = np.array([r["err_pct_recorded_clock"] for r in rows])
    print(f"MAPE {np.abs(e0).mean():.2f} % (bias {e0.mean():+.1f}) at {gpu.sustained_clock_mhz:.0f} MHz; "
          f"{np.abs(e1).mean():.2f} % (bias {e1.mean():+.1f}) at the recorded clocks; {len(rows)} rows")
    if a.out:
        import io

        from fgsim.fileio import write_text_atomic

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_text_atomic(a.out, buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
