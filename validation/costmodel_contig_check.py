"""The Gluon contig pricing on development data (validation/MODEL_NOTES.md, "Session 14"): helper D's contig probe
rows (``validation/results/kernels-h200-2026-11-30-gluon-contig.csv``: the tl dense / block D=128 M=128 entries and
the three contig variants at H12 N32760 / H40 N75600, block d 0.05 / 0.2 / 0.5 on the benchmark's window masks with
a launch-ordered block index) priced by the committed model at the GPU file's clock and at the shape's recorded SM
clock (V-CLK), plus the 38 benchmark rows of the clock check (``--clock-csv``) for V-CLK's criterion (1).

    PYTHONPATH=validation:kernels python validation/costmodel_contig_check.py --out contig-check.csv \\
        --clock-csv validation/results/clock-check-h200-2026-11-30-benchmark-rows.csv

Block masks are rebuilt as the probe built them (``fgattn.masks.window_mask`` seed 0 on the CPU; 128-key tiles kept
when any slice is); their counts are cached under ``--cache``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "validation" / "results" / "kernels-h200-2026-11-30-gluon-contig.csv"
CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-contig.json"
COLS = ["group", "variant", "H", "N", "density_target", "clock_mhz", "measured_ms", "pred_ms_calibration_clock",
        "pred_ms_recorded_clock", "err_pct_calibration_clock", "err_pct_recorded_clock"]
#: the probe's contig variants: (regs, pingpong)
VARIANTS = {"contig": ([216, 64], False), "contig_r240": ([240, 24], False), "contig_pp": ([240, 24], True)}


def block_counts(h: int, n: int, dt: float, cache: Path) -> np.ndarray:
    """(H, QB) kept 128-key blocks of the probe's block index at (H, N, density target)."""
    f = cache / f"blk_h{h}_n{n}_d{dt}.npy"
    if not f.is_file():
        import torch
        from fgattn.masks import window_mask

        t0 = time.time()
        m = window_mask(1, h, n, 128, dt, device="cpu")[0]
        nb = -(-n // 128)
        c = torch.zeros(m.shape[0], m.shape[1], dtype=torch.int64)
        for j in range(nb):
            c += m[:, :, j * 128:(j + 1) * 128].any(-1)
        np.save(f, c.numpy())
        del m
        print(f"built {f.name} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return np.load(f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/contigcache"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--clock-csv", type=Path, help="the clock check's CSV (its 38 rows join as group bench38)")
    a = ap.parse_args(argv)
    import json

    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import KernelConfig
    from fgsim.model.assemble import predict_counts

    a.cache.mkdir(parents=True, exist_ok=True)
    gpu = load_gpu("h200")
    res = resolve(gpu)
    cand = {(e["kernel"], e["head_dim"], e["block_m"], e["gran_n"]): e
            for e in json.loads(CANDIDATE.read_text())["entries"] if e.get("gpu") == "h200"}

    def cfg_of(kern: str, variant: str) -> KernelConfig:
        e = cand[(kern, 128, 128, 1 if kern == "dense" else 128)]
        ex = {k: v for k, v in e["extra"].items() if k not in ("impl", "gluon")}
        if kern == "block":
            ex["order"] = "lpt"  # the probe's block index is launch-ordered
        if variant in VARIANTS:
            regs, pp = VARIANTS[variant]
            ex.update(impl="gluon", gluon={"form": "contig", "pipeline": 1, "regs": regs, "pingpong": pp})
        return KernelConfig(kernel=kern, block_m=128, block_n=e["block_n"], num_warps=e["num_warps"],
                            num_stages=e["num_stages"], gran_n=e["gran_n"], head_dim=128, dtype="bf16",
                            source="probe", extra=ex)

    rows = []
    for r in csv.DictReader(PROBE.open(newline="")):
        if r["variant"] not in ("entry", *VARIANTS):
            continue
        h, n, dt = int(r["H"]), int(r["N"]), float(r["density_target"])
        kern = "dense" if r["mode"] == "dense" else "block"
        clk = float(re.match(r"sm (\d+)", r["clocks_under_load"]).group(1))
        c = np.zeros((h, -(-n // 128)), np.int64) if kern == "dense" else block_counts(h, n, dt, a.cache)
        cfg = cfg_of(kern, r["variant"])
        t0 = predict_counts(c, n, cfg, gpu, res.params, resources=res.resources)[0] * 1e3
        t1 = predict_counts(c, n, cfg, dataclasses.replace(gpu, sustained_clock_mhz=clk), res.params,
                            resources=res.resources)[0] * 1e3
        meas = float(r["ms"])
        rows.append(dict(group="d_tl" if r["variant"] == "entry" else "d_contig", variant=f"{kern} {r['variant']}",
                         H=h, N=n, density_target=dt, clock_mhz=clk, measured_ms=meas,
                         pred_ms_calibration_clock=round(t0, 4), pred_ms_recorded_clock=round(t1, 4),
                         err_pct_calibration_clock=round(100 * (t0 / meas - 1), 1),
                         err_pct_recorded_clock=round(100 * (t1 / meas - 1), 1)))
    if a.clock_csv:
        for r in csv.DictReader(a.clock_csv.open(newline="")):
            rows.append(dict(group="bench38", variant=f"fg {r['schedule']} {r['order']} {r['src']}", H=r["H"],
                             N=int(r["N_video"]) + int(r["n_text"]), density_target=r["density_target"],
                             clock_mhz=r["clock_mhz"], measured_ms=r["measured_ms"],
                             pred_ms_calibration_clock=r["pred_ms_calibration_clock"],
                             pred_ms_recorded_clock=r["pred_ms_recorded_clock"],
                             err_pct_calibration_clock=r["err_pct_calibration_clock"],
                             err_pct_recorded_clock=r["err_pct_recorded_clock"]))
    print(" | ".join(COLS))
    for r in rows:
        print(" | ".join(str(r[k]) for k in COLS))
    for grp in ("d_tl", "d_contig", "bench38"):
        g = [r for r in rows if r["group"] == grp]
        if g:
            e0 = np.array([float(r["err_pct_calibration_clock"]) for r in g])
            e1 = np.array([float(r["err_pct_recorded_clock"]) for r in g])
            print(f"{grp}: {len(g)} rows; MAPE {np.abs(e0).mean():.2f} % (bias {e0.mean():+.1f}) at the GPU file's "
                  f"clock, {np.abs(e1).mean():.2f} % (bias {e1.mean():+.1f}) at the recorded clocks")
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
