"""The fg gran-16 / 64 expand route on a launch configuration the cost model was never fitted on (kernels/NOTES.md
"Session 17, K"; validation/MODEL_NOTES.md): helper K's paired benchmark
(``validation/results/kernels-h200-2026-12-01-issue12-s17k-gran.csv``: the old tl entry ``fg_attention``, the new
Gluon list kernel on the expanded index ``fg_attention_expand`` and a tl repeat ``fg_attention_control``, timed in the
same 7 shuffled rounds at H12 N32760, H12 N32760+512 text and H40 N75600, window masks d 0.02-0.9, gran 16 / 64)
and its re-timed record rows (``...-s17k-record.csv``), priced ONCE by the committed model (revision 13 + calib14;
``fgsim/model/gluon.py`` prices the expand route as the gran-1 Gluon list form on min(runs x gran, N) keys, written
in bd28c8c before the GPU call). calib14 never saw these launches: a transfer test, not a fit.

Each row is priced at the GPU file's sustained clock, at the row's recorded NVML SM clock (``sm_mhz``: V-CLK, the
current pricing) and, for information only, at calib16's k x the row's effective clock (``sm_mhz_eff``; k from
``validation/costmodel_calib16_derive.json``, derived on calibration rows, never on these; calib14 itself is on
NVML's scale).

    PYTHONPATH=validation:kernels python validation/costmodel_gran_check.py \\
        --out validation/results/costmodel-gran-check-h200-2026-12-01.csv \\
        --summary validation/results/costmodel-gran-check-h200-2026-12-01.json \\
        --plot validation/results/costmodel-gran-check-h200-2026-12-01.png

Masks are rebuilt as the benchmark built them (``fgattn.masks.window_mask(1, H, N_video, 128, d)`` seed 0, then
``with_text``; ``fgattn.build_index(mask, block_m=128, gran_n=g)``'s kept g-key runs per row), in chunks of query
blocks x one head (bounded memory), with the window scale from ``validation/issue12_gap.py``'s bisection (equal to
``window_mask``'s); each cell's rebuilt index density is checked against the CSV's ``density`` column. Counts are
cached under ``--cache``. Bad input (a missing or malformed CSV / JSON): one line naming it, exit 2, before work.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "kernels", ROOT / "validation", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

RESULTS = ROOT / "validation" / "results"
GRAN_CSV = RESULTS / "kernels-h200-2026-12-01-issue12-s17k-gran.csv"
RECORD_CSV = RESULTS / "kernels-h200-2026-12-01-issue12-s17k-record.csv"
DERIVE = ROOT / "validation" / "costmodel_calib16_derive.json"
OUT_CSV = RESULTS / "costmodel-gran-check-h200-2026-12-01.csv"
OUT_JSON = RESULTS / "costmodel-gran-check-h200-2026-12-01.json"
#: benchmark kernel name -> route of this check (``record``: the record CSV's re-timed expand rows)
ROUTES = {"fg_attention": "tl", "fg_attention_expand": "expand", "fg_attention_control": "tl_control"}
#: density bands of the summary (by the row's density target)
BANDS = (("0.02-0.1", 0.0, 0.1), ("0.3-0.5", 0.1, 0.5), ("0.9", 0.5, 1.0))
#: query block of the benchmark's fg M128 masks
BLOCK_M = 128
GRANS = (16, 64)
NEEDED = ("shape", "kernel", "density_target", "density", "H", "N", "n_text", "M", "gran_n", "ms", "config",
          "sm_mhz", "sm_mhz_eff")
COLS = ["source", "route", "shape", "H", "N", "n_text", "gran_n", "density_target", "density", "measured_ms",
        "sm_mhz", "sm_mhz_eff", "pred_ms_gpu_clock", "pred_ms_recorded_clock", "pred_ms_eff_clock",
        "err_pct_gpu_clock", "err_pct_recorded_clock", "err_pct_eff_clock"]
CLOCKS = ("gpu_clock", "recorded_clock", "eff_clock")


class InputError(ValueError):
    """A missing or malformed input (one line, exit 2)."""


# ------------------------------------------------------------------------------------------------------ inputs
def read_rows(path: Path, what: str) -> list[dict[str, str]]:
    """The rows of a benchmark CSV, checked for the columns this check reads."""
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{what} {path}: unreadable CSV ({exc})") from None
    if not rows:
        raise InputError(f"{what} {path}: no rows")
    miss = [c for c in NEEDED if c not in rows[0]]
    if miss:
        raise InputError(f"{what} {path}: missing column(s) {', '.join(miss)}")
    return rows


def fg_rows(rows: list[dict[str, str]], source: str) -> list[dict[str, str]]:
    """The fg D128 M128 gran-16 / 64 rows (gran CSV: the three routes; record CSV: its expand rows)."""
    out = []
    for r in rows:
        if r["kernel"] not in ROUTES or r["M"] != str(BLOCK_M) or int(r["gran_n"]) not in GRANS:
            continue
        route = ROUTES[r["kernel"]] if source == "gran" else "expand_record"
        if source == "record" and '"expand": true' not in r["config"]:
            continue
        out.append({**r, "route": route, "source": source})
    return out


def k_eff(path: Path = DERIVE) -> float:
    """calib16's k = median NVML clock / median effective clock over its calibration rows."""
    if not path.is_file():
        raise InputError(f"calib16 derive record {path}: no such file")
    try:
        k = float(json.loads(path.read_text())["k_nvml_over_eff"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"calib16 derive record {path}: no number k_nvml_over_eff ({exc})") from None
    if not 0.5 < k < 2.0:
        raise InputError(f"calib16 derive record {path}: k_nvml_over_eff={k} outside (0.5, 2)")
    return k


def parse_config(text: str, gran_n: int) -> Any:
    """The benchmark's ``config`` column (``bn=.. st=.. w=.. {extra} [source]``) as the KernelConfig that ran."""
    from fgsim.launchcfg import KernelConfig

    m = re.match(r"bn=(\d+) st=(\d+) w=(\d+) ", text)
    if not m:
        raise InputError(f"config {text[:60]!r}: not 'bn=.. st=.. w=.. {{extra}}'")
    try:
        extra, _ = json.JSONDecoder().raw_decode(text, m.end())
    except ValueError as exc:
        raise InputError(f"config {text[:60]!r}: extra is not JSON ({exc})") from None
    return KernelConfig(kernel="fg", block_m=BLOCK_M, block_n=int(m.group(1)), num_warps=int(m.group(3)),
                        num_stages=int(m.group(2)), gran_n=gran_n, head_dim=128, dtype="bf16",
                        source="benchmark config column", extra=extra)


# ------------------------------------------------------------------------------------------------------- masks
def window_scale(h: int, n_video: int, density: float, *, sinks: int = 64, seed: int = 0,
                 tol: float = 0.005) -> tuple[Any, Any, Any, Any]:
    """``window_mask(1, h, n_video, 128, density)``'s geometry and final half-widths (H, 3) (None at density 1)."""
    import torch
    from issue12_gap import _window_counts, _window_geometry

    coords, lo, hi, weights, ext, grid = _window_geometry(n_video, BLOCK_M, h, seed)
    if density >= 1.0:
        return coords, lo, hi, None
    lo_s, hi_s, win = 0.0, 2.0, None
    for _ in range(30):  # fgattn.masks.window_mask's bisection, step for step
        s = 0.5 * (lo_s + hi_s)
        win = (s * weights * ext).floor().to(torch.int32)
        d = float(_window_counts(coords, lo, hi, win, grid, sinks).sum()) / (h * lo.shape[0] * n_video)
        if abs(d - density) <= tol:
            break
        if d < density:
            lo_s = s
        else:
            hi_s = s
    return coords, lo, hi, win


def gran_counts(h: int, n_video: int, n_text: int, density: float, grans: tuple[int, ...] = GRANS, *,
                sinks: int = 64, chunk: int = 32) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per gran g: kept g-key runs per (head, query block) of the benchmark's joint mask, int64 (H, QB), and
    whether each row keeps the (partial) last run, bool (H, QB) -- ``fgattn.build_index(mask, block_m=128,
    gran_n=g)``'s row counts, built ``chunk`` query blocks x one head at a time."""
    import torch

    coords, lo, hi, win = window_scale(h, n_video, density, sinks=sinks)
    n = n_video + n_text
    qb = -(-n // BLOCK_M)
    # with_text: query blocks from the one holding token N_video on keep every key (all of them when no text)
    video_rows = n_video // BLOCK_M if n_text else lo.shape[0]
    out = {}
    for g in grans:
        runs = -(-n // g)
        out[g] = (np.full((h, qb), runs, np.int64), np.ones((h, qb), bool))
    if win is None:
        return out
    pads = {g: (-n) % g for g in grans}
    from fgattn.masks import video_grid

    grid = video_grid(n_video)
    boxed = grid[0] * grid[1] * grid[2] == n_video  # keys in (t, y, x) raster order: the window is separable
    for q0 in range(0, video_rows, chunk):
        q1 = min(q0 + chunk, video_rows)
        lo_c, hi_c = lo[q0:q1], hi[q0:q1]
        if boxed:  # per-axis distances (rows, extent) of every coordinate value to each block's box
            axd = [(lo_c[:, a, None] - torch.arange(e)[None]).clamp(min=0)
                   + (torch.arange(e)[None] - hi_c[:, a, None]).clamp(min=0) for a, e in enumerate(grid)]
        else:
            dist = (lo_c[:, None, :] - coords[None]).clamp(min=0) + (coords[None] - hi_c[:, None, :]).clamp(min=0)
        full = torch.ones(q1 - q0, n, dtype=torch.bool)
        for hh in range(h):
            if boxed:
                kt, ky, kx = (axd[a] <= win[hh, a] for a in range(3))
                full[:, :n_video] = (kt[:, :, None, None] & ky[:, None, :, None] & kx[:, None, None, :]).reshape(
                    q1 - q0, n_video)
            else:
                full[:, :n_video] = (dist <= win[hh][None, None, :]).all(-1)
            full[:, :min(sinks, n_video)] = True
            for g in grans:
                f = torch.nn.functional.pad(full, (0, pads[g])) if pads[g] else full
                kept = f.reshape(q1 - q0, -1, g).any(-1)
                out[g][0][hh, q0:q1] = kept.sum(-1).numpy()
                out[g][1][hh, q0:q1] = kept[:, -1].numpy()
        del full
    return out


def index_density(counts: np.ndarray, last: np.ndarray, n: int, g: int) -> float:
    """``FgIndex.density(n)`` from per-row run counts: kept (query, key) area / N^2, the partial last run and the
    partial last query block counted exactly."""
    h, qb = counts.shape
    keys = counts.astype(np.float64) * g
    if n % g:
        keys = keys - last * (g - n % g)
    heights = np.full(qb, float(BLOCK_M))
    heights[-1] = n - (qb - 1) * BLOCK_M
    return float((keys * heights).sum() / (h * float(n) * n))


def cached_counts(h: int, n_video: int, n_text: int, dt: float, cache: Path | None
                  ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`gran_counts`, cached as ``.npz`` under ``cache`` (None: no cache)."""
    f = None if cache is None else cache / f"gran_h{h}_nv{n_video}_t{n_text}_d{dt}.npz"
    if f is not None and f.is_file():
        z = np.load(f, allow_pickle=False)
        return {g: (z[f"c{g}"], z[f"l{g}"]) for g in GRANS}
    t0 = time.time()
    res = gran_counts(h, n_video, n_text, dt)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp.npz")
        np.savez(tmp, **{f"c{g}": res[g][0] for g in GRANS}, **{f"l{g}": res[g][1] for g in GRANS})
        tmp.replace(f)
    print(f"  mask H{h} N{n_video}+{n_text} d {dt}: built in {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    return res


# ----------------------------------------------------------------------------------------------------- pricing
def err(pred: float, meas: float) -> float:
    """Signed relative error of a prediction, %."""
    return 100.0 * (pred / meas - 1.0)


def price(rows: list[dict[str, str]], cache: Path | None, k: float, log: Any = sys.stderr) -> list[dict[str, Any]]:
    """Every row priced by the committed model at the GPU file's clock, its recorded NVML clock and k x its
    effective clock; the rebuilt index's density is checked against the row's."""
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.model.assemble import predict_counts

    gpu = load_gpu("h200")
    res = resolve(gpu)
    out = []
    cells = sorted({(int(r["H"]), int(r["N"]), int(r["n_text"]), float(r["density_target"])) for r in rows})
    t0 = time.time()
    for i, (h, n, nt, dt) in enumerate(cells):
        counts = cached_counts(h, n - nt, nt, dt, cache)
        for r in (r for r in rows if (int(r["H"]), int(r["N"]), int(r["n_text"]), float(r["density_target"]))
                  == (h, n, nt, dt)):
            g = int(r["gran_n"])
            c, last = counts[g]
            dens = index_density(c, last, n, g)
            if not math.isclose(dens, float(r["density"]), rel_tol=2e-3, abs_tol=2e-5):
                raise RuntimeError(f"{r['shape']} d {dt} g{g}: rebuilt index density {dens:.5f} != the row's "
                                   f"{r['density']} (the mask rebuild does not match the benchmark's)")
            cfg = parse_config(r["config"], g)
            meas = float(r["ms"])
            clk = {"gpu_clock": gpu.sustained_clock_mhz, "recorded_clock": float(r["sm_mhz"]),
                   "eff_clock": k * float(r["sm_mhz_eff"])}
            pred = {name: predict_counts(c, n, cfg, dataclasses.replace(gpu, sustained_clock_mhz=mhz), res.params,
                                         resources=res.resources)[0] * 1e3 for name, mhz in clk.items()}
            row = dict(source=r["source"], route=r["route"], shape=r["shape"], H=h, N=n, n_text=nt, gran_n=g,
                       density_target=dt, density=float(r["density"]), measured_ms=meas,
                       sm_mhz=float(r["sm_mhz"]), sm_mhz_eff=float(r["sm_mhz_eff"]))
            for name in CLOCKS:
                row[f"pred_ms_{name}"] = round(pred[name], 4)
                row[f"err_pct_{name}"] = round(err(pred[name], meas), 2)
            out.append(row)
        print(f"[{i + 1}/{len(cells)}] H{h} N{n} text {nt} d {dt} priced ({time.time() - t0:.0f} s)", file=log,
              flush=True)
    return out


# ----------------------------------------------------------------------------------------------------- summary
def band_of(dt: float) -> str:
    """The density band of a density target."""
    for name, lo, hi in BANDS:
        if lo < dt <= hi:
            return name
    raise ValueError(f"density target {dt} outside (0, 1]")


def _stats(errs: list[float]) -> dict[str, Any]:
    return {"n": len(errs), "mape": round(statistics.fmean(abs(e) for e in errs), 2),
            "median_signed": round(statistics.median(errs), 2), "max_abs": round(max(abs(e) for e in errs), 2)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """MAPE / signed median error per route, route x gran, route x density band (each clock), and per cell of the
    paired gran CSV the measured vs predicted route change t_expand / t_tl."""
    by: dict[str, Any] = {}
    for clk in CLOCKS:
        e = f"err_pct_{clk}"
        d: dict[str, Any] = {}
        for route in sorted({r["route"] for r in rows}):
            rr = [r for r in rows if r["route"] == route]
            d[route] = {"all": _stats([float(r[e]) for r in rr])}
            for g in sorted({int(r["gran_n"]) for r in rr}):
                d[route][f"g{g}"] = _stats([float(r[e]) for r in rr if int(r["gran_n"]) == g])
            for b, _, _ in BANDS:
                sel = [float(r[e]) for r in rr if band_of(float(r["density_target"])) == b]
                if sel:
                    d[route][f"d {b}"] = _stats(sel)
        by[clk] = d
    key = ("shape", "gran_n", "density_target")
    paired: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["source"] == "gran" and r["route"] in ("tl", "expand"):
            paired.setdefault(tuple(r[k] for k in key), {})[r["route"]] = r
    cells = []
    for kk, p in sorted(paired.items(), key=lambda t: (str(t[0][0]), int(t[0][1]), float(t[0][2]))):
        if set(p) != {"tl", "expand"}:
            continue
        c = {"shape": kk[0], "gran_n": int(kk[1]), "density_target": float(kk[2]),
             "measured": round(float(p["expand"]["measured_ms"]) / float(p["tl"]["measured_ms"]), 4)}
        for clk in CLOCKS:
            c[f"pred_{clk}"] = round(float(p["expand"][f"pred_ms_{clk}"]) / float(p["tl"][f"pred_ms_{clk}"]), 4)
        cells.append(c)
    sp: dict[str, Any] = {"cells": len(cells)}
    if cells:
        meas = np.array([c["measured"] for c in cells])
        sp["measured_geomean"] = round(float(np.exp(np.log(meas).mean())), 4)
        sp["measured_range"] = [round(float(meas.min()), 4), round(float(meas.max()), 4)]
        for clk in CLOCKS:
            pr = np.array([c[f"pred_{clk}"] for c in cells])
            sp[clk] = {"pred_geomean": round(float(np.exp(np.log(pr).mean())), 4),
                       "pred_range": [round(float(pr.min()), 4), round(float(pr.max()), 4)],
                       "mean_abs_err_pts": round(float(100 * np.abs(pr - meas).mean()), 2),
                       "median_signed_err_pts": round(float(100 * np.median(pr - meas)), 2),
                       "cells_expand_predicted_faster": int((pr < 1.0).sum()),
                       "cells_expand_measured_faster": int((meas < 1.0).sum())}
        for g in sorted({c["gran_n"] for c in cells}):
            sel = [c for c in cells if c["gran_n"] == g]
            m_g = np.array([c["measured"] for c in sel])
            sp[f"g{g}"] = {"cells": len(sel), "measured_geomean": round(float(np.exp(np.log(m_g).mean())), 4),
                           **{f"pred_geomean_{clk}": round(float(np.exp(np.log(
                               np.array([c[f"pred_{clk}"] for c in sel])).mean())), 4) for clk in CLOCKS}}
    return {"statistic": "err = predicted / measured - 1 (%); MAPE = mean |err|; median_signed = median err; "
                         "route change = t_expand / t_tl per cell (same rounds), geo-mean over cells",
            "rows": len(rows), "by_clock": by, "route_change": sp, "route_change_cells": cells}


def git_blob(path: Path) -> str:
    """Git's blob id of a file (``git hash-object``): which committed version of the model priced the rows."""
    import hashlib

    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def model_files() -> dict[str, str]:
    """Blob ids of the model modules and the calibration that were imported (their paths under the package)."""
    import fgsim
    import fgsim.model.assemble
    import fgsim.model.cta_cost
    import fgsim.model.gluon
    import fgsim.model.occupancy
    import fgsim.model.params

    base = Path(fgsim.__file__).resolve().parent
    mods = [fgsim.model.assemble, fgsim.model.cta_cost, fgsim.model.gluon, fgsim.model.occupancy, fgsim.model.params]
    files = [Path(m.__file__).resolve() for m in mods] + [base / "data" / "calibrations" / "h200.json"]
    return {f"fgsim/{f.relative_to(base).as_posix()}": git_blob(f) for f in files}


def read_priced(path: Path) -> list[dict[str, Any]]:
    """This check's output CSV back as rows (numbers as floats)."""
    if not path.is_file():
        raise InputError(f"priced CSV {path}: no such file")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(c not in rows[0] for c in COLS):
        raise InputError(f"priced CSV {path}: not this check's columns")
    return rows


# -------------------------------------------------------------------------------------------------------- plot
def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Predicted (recorded clock) vs measured, log-log, both routes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fgsim.fileio import figure_png, write_bytes_atomic

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    style = {"tl": ("o", "tl entry (old route)"), "expand": ("^", "expand route (new)"),
             "tl_control": ("x", "tl control"), "expand_record": ("v", "expand, record run")}
    colors = {16: "tab:blue", 64: "tab:orange"}
    for route, (mk, label) in style.items():
        for g, col in colors.items():
            sel = [r for r in rows if r["route"] == route and int(r["gran_n"]) == g]
            if sel:
                ax.scatter([float(r["measured_ms"]) for r in sel], [float(r["pred_ms_recorded_clock"]) for r in sel],
                           marker=mk, s=22, color=col, label=f"{label}, g{g}", alpha=0.8)
    lo = min(float(r["measured_ms"]) for r in rows) * 0.7
    hi = max(float(r["measured_ms"]) for r in rows) * 1.4
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    for f in (0.9, 1.1):
        ax.plot([lo, hi], [lo * f, hi * f], "k:", lw=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured (ms, median of rounds)")
    ax.set_ylabel("predicted at the recorded SM clock (ms)")
    ax.set_title("fg D128 M128 gran 16 / 64 on the H200: calib14", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper left")
    fig.tight_layout()
    write_bytes_atomic(path, figure_png(fig, dpi=90))
    plt.close(fig)


# -------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gran-csv", type=Path, default=GRAN_CSV, help="K's paired gran benchmark CSV")
    ap.add_argument("--record-csv", type=Path, default=RECORD_CSV, help="K's re-timed record CSV")
    ap.add_argument("--derive", type=Path, default=DERIVE, help="calib16's derive record (its k, information)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/grancheck-cache"))
    ap.add_argument("--out", type=Path, help="priced rows CSV (atomic)")
    ap.add_argument("--summary", type=Path, help="summary JSON (atomic)")
    ap.add_argument("--plot", type=Path, help="predicted vs measured PNG")
    ap.add_argument("--from-csv", type=Path, help="summarise an already priced CSV (no pricing)")
    a = ap.parse_args(argv)
    try:
        if a.from_csv:
            rows = read_priced(a.from_csv)
        else:
            src = fg_rows(read_rows(a.gran_csv, "--gran-csv"), "gran")
            src += fg_rows(read_rows(a.record_csv, "--record-csv"), "record")
            k = k_eff(a.derive)
            for r in src:
                parse_config(r["config"], int(r["gran_n"]))
            if not src:
                raise InputError(f"--gran-csv {a.gran_csv}: no fg D128 M128 gran 16 / 64 rows")
        if a.plot:
            from fgsim.fileio import require_matplotlib

            require_matplotlib("--plot")
    except InputError as exc:
        print(f"costmodel_gran_check: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - fgsim's own one-line input errors
        if type(exc).__name__ != "FgsimError":
            raise
        print(f"costmodel_gran_check: {exc}", file=sys.stderr)
        return 2
    if not a.from_csv:
        print(f"pricing {len(src)} rows (k = {k:.4f} for the effective-clock column)", file=sys.stderr, flush=True)
        rows = price(src, a.cache, k)
    s = summarize(rows)
    if not a.from_csv:
        s["model_blobs"] = model_files()
        s["k_eff"] = round(k, 4)
    for clk in CLOCKS:
        for route, d in s["by_clock"][clk].items():
            print(f"{clk:15s} {route:14s} " + "  ".join(f"{k2}: {v['mape']:.2f} % ({v['median_signed']:+.2f})"
                                                        for k2, v in d.items()))
    sp = s["route_change"]
    if sp["cells"]:
        print(f"route change t_expand / t_tl over {sp['cells']} cells: measured geo-mean {sp['measured_geomean']}, "
              + ", ".join(f"{clk} predicted {sp[clk]['pred_geomean']}" for clk in CLOCKS))
    from fgsim.fileio import write_text_atomic

    if a.out:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_text_atomic(a.out, buf.getvalue())
    if a.summary:
        write_text_atomic(a.summary, json.dumps(s, indent=1) + "\n")
    if a.plot:
        plot(rows, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
