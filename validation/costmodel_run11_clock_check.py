"""Run 11's dense D=128 M=128 rows (K3's benchmark of the contig adoption, session 14) priced by the committed model
at the GPU file's clock and at each cell's own SM clock (NVML polled every ~1 ms during that cell's timed replays,
``sm_mhz``): how the kernel time follows the SM clock on long runs (development data, after test15's scoring; no
decision). Dense needs no mask, so every shape is priced on the CPU in seconds.

    PYTHONPATH=kernels python validation/costmodel_run11_clock_check.py --out validation/results/clock-check-h200-2026-11-30-run11-dense.csv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUN11 = ROOT / "validation" / "results" / "kernels-h200-2026-11-30-issue12-run11.csv"
COLS = ["kernel", "form", "H", "N", "n_text", "sm_mhz", "measured_ms", "pred_ms_gpu_file_clock", "pred_ms_cell_clock",
        "err_pct_gpu_file_clock", "err_pct_cell_clock"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.assemble import predict_counts
    from fgsim.model.gluon import tl_config

    gpu = load_gpu("h200")
    res = resolve(gpu)
    contig = launch_config("dense", "h200", 128, 128, 1)
    rows = []
    for r in csv.DictReader(RUN11.open(newline="")):
        if r["kernel"] == "fg_dense" and r["route"].startswith("gluon contig"):
            cfg, form = contig, "contig"
        elif r["kernel"] == "fg_dense_previous":
            cfg, form = tl_config(contig), "tl"
        else:
            continue
        h, n, clk, meas = int(r["H"]), int(r["N"]), float(r["sm_mhz"]), float(r["ms"])
        c = np.zeros((h, -(-n // 128)), np.int64)
        t0 = predict_counts(c, n, cfg, gpu, res.params, resources=res.resources)[0] * 1e3
        t1 = predict_counts(c, n, cfg, dataclasses.replace(gpu, sustained_clock_mhz=clk), res.params,
                            resources=res.resources)[0] * 1e3
        rows.append(dict(kernel=r["kernel"], form=form, H=h, N=n, n_text=r["n_text"], sm_mhz=clk, measured_ms=meas,
                         pred_ms_gpu_file_clock=round(t0, 4), pred_ms_cell_clock=round(t1, 4),
                         err_pct_gpu_file_clock=round(100 * (t0 / meas - 1), 1),
                         err_pct_cell_clock=round(100 * (t1 / meas - 1), 1)))
    print(" | ".join(COLS))
    for r in rows:
        print(" | ".join(str(r[k]) for k in COLS))
    for form in ("contig", "tl"):
        e0 = np.array([r["err_pct_gpu_file_clock"] for r in rows if r["form"] == form])
        e1 = np.array([r["err_pct_cell_clock"] for r in rows if r["form"] == form])
        print(f"{form}: {e0.size} rows; MAPE {np.abs(e0).mean():.2f} % (bias {e0.mean():+.1f}) at "
              f"{gpu.sustained_clock_mhz:.0f} MHz, {np.abs(e1).mean():.2f} % (bias {e1.mean():+.1f}) at the cell's clock")
    if a.out:
        from fgsim.fileio import write_text_atomic

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_text_atomic(a.out, buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
