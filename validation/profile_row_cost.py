"""Where the FG kernel's per-row (query block) time goes: the fg M=128 gran-1 launch-table entry timed with one
stage left out or moved, and a per-row / per-tile cost fit of each variant (issue 12).

    PYTHONPATH=.:kernels python3 validation/profile_row_cost.py --out $OUT [--ncu]   # GPU: time, fit, CSV (+ ncu)
    PYTHONPATH=/path/to/triton-3.6:kernels python validation/profile_row_cost.py --offline  # CPU: regs/smem
    PYTHONPATH=.:kernels python validation/profile_row_cost.py --fit CSV               # refit a written CSV

Variants (:data:`VARIANTS`) use the diagnosis-only ``_DIAG_*`` switches of ``fgattn.attention._attn_fwd`` (given
through ``LaunchConfig.extra["_diag"]``, never in the launch table; some give wrong outputs, which is fine for
timing).  Problem: B=1 H=12 N=32,760 D=128 bf16 (Wan2.1 480p), structured window masks at ``--densities``,
launch order from ``build_index(order=True)`` as the benchmarks.  Timing: CUDA-graph replay (2 input sets per
graph), ≥ 30 ms of untimed replays before each timed one, ``--rounds`` interleaved rounds over all cases (cuDNN
SDPA dense in each round), median over rounds.  Fit per variant (``kernels/tools/row_cost_fit.fit``):
t = rows/SM · c_row + tiles/SM · c_tile, with tiles = kept 128-key tiles (``kept``, as the run-3 numbers) or
executed tiles (``exec``: the partial tail tile counted whole; ``no_tail`` runs one fewer per row).  The shares
of the per-row cost are differences of c_row between the entry and a variant.  ``--ncu`` then profiles one fg
launch of the entry at d = 0.02 with Nsight Compute (``validation/profile_fg.py``) if ``ncu`` is there.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

SMS = 132
H, N, D, M = 12, 32760, 128, 128
DEVICE = "cuda"
DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.5)
ALL_OFF = {"_DIAG_TAIL": 1, "_DIAG_Q": 1, "_DIAG_IDX": 1, "_DIAG_EPI": 1}
#: name -> (diag switches, launch order (lpt), numerics, what differs from the entry)
VARIANTS: dict[str, tuple[dict[str, int], bool, str, str]] = {
    "entry": ({}, True, "exact", "the launch-table entry (fg M128 g1 bn128 st3 w8 idx_ahead 1, LPT order)"),
    "no_order": ({}, False, "exact", "natural row order: no Order load (grid QB x B*H)"),
    "identity_order": ({}, True, "exact", "natural row order through the Order load (order = arange)"),
    "no_tail": ({"_DIAG_TAIL": 1}, True, "wrong", "masked tail tile left out"),
    "tail_loop_unmasked": ({"_DIAG_TAIL": 2}, True, "wrong", "tail run as one more pipelined tile, scores unmasked"),
    "tail_loop_masked": ({"_DIAG_TAIL": 3}, True, "exact", "tail run as one more pipelined tile, all scores masked"),
    "tail_first": ({"_DIAG_TAIL": 4}, True, "exact", "masked tail tile before the loop"),
    "tail_loop_branch": ({"_DIAG_TAIL": 5}, True, "exact", "tail as one more pipelined tile, scores masked in the "
                         "last iteration only (scalar branch); measured 2026-11-30: wins below d ~ 0.03, +8..11 % above"),
    "no_store": ({"_DIAG_EPI": 1}, True, "no output", "O store predicated off"),
    "no_q": ({"_DIAG_Q": 1}, True, "wrong", "Q not read (load predicated off, Q = 0.5)"),
    "idx_arith": ({"_DIAG_IDX": 1}, True, "wrong", "key numbers from arithmetic: no index loads"),
    "idx_arith_no_q": ({"_DIAG_IDX": 1, "_DIAG_Q": 1}, True, "wrong", "no index loads, no Q read"),
    "floor": (ALL_OFF, False, "wrong", "no Order/index/Q loads, no tail tile, no O store: Offsets + K/V loop"),
    "persistent_nested": ({}, True, "exact", "persistent kernel, 1 program per SM, row loop around the tile loop "
                          "(session-3 candidate, same bn128 st3 w8); static rows p, p+G, ..."),
    "tail_reuse": ({}, True, "exact", "launch option tail_reuse: masked tail after the loop with the index entries "
                   "the loop prefetched (no index reload), score mask from arithmetic (was _DIAG_TAIL=6 in the "
                   "2026-11-30 queue CSV, same code)"),
    "persistent_nested_1row": ({}, True, "exact", "persistent_nested's code with G = rows (one row per program): "
                               "rows placed by the hardware's CTA dispatch, as the entry's"),
    "tma_q": ({}, True, "exact", "Q by TMA through a host-built (B, H, N, D) descriptor, issued after the Offsets "
              "loads (no Q registers / shared-memory store)"),
    "tma_q_tail_reuse": ({}, True, "exact", "tma_q and tail_reuse together"),
    "persistent_queue": ({}, True, "exact", "persistent_nested with rows from a global atomic work queue in launch "
                         "order (first 3 rows per program static, then dynamic, taken 3 rows ahead)"),
    "persistent_queue_early": ({}, True, "exact", "persistent_queue with launch option idx_early: the next tile's "
                               "index entries loaded at the top of the iteration, before this tile's gathers (as "
                               "_attn_fwd), not after its wgmmas (session-18 ncu finding)"),
    "persistent_nested_1row_early": ({}, True, "exact", "persistent_nested_1row with idx_early"),
}
#: launch options a variant adds to the entry's (non-persistent variants)
OPTIONS = {"tma_q": {"tma_q": True}, "tail_reuse": {"tail_reuse": True},
           "tma_q_tail_reuse": {"tma_q": True, "tail_reuse": True}}
PERSISTENT = {"persistent_nested": {"persistent": True, "flatten": False, "programs_per_sm": 1},
              "persistent_nested_1row": {"persistent": True, "flatten": False, "programs_per_sm": 1 << 20},
              "persistent_queue": {"persistent": True, "flatten": False, "programs_per_sm": 1, "queue": True},
              "persistent_queue_early": {"persistent": True, "flatten": False, "programs_per_sm": 1, "queue": True,
                                         "idx_early": True},
              "persistent_nested_1row_early": {"persistent": True, "flatten": False, "programs_per_sm": 1 << 20,
                                               "idx_early": True}}
TIME_COLS = ["kind", "variant", "diag", "lpt", "numerics", "what", "shape", "density_target", "density", "H", "N",
             "n_text", "D", "M", "gran_n", "rows", "kept_tiles", "exec_tiles", "ms", "ms_min", "ms_max", "rounds",
             "reps", "us_per_row_per_sm", "saved_us_per_row_vs_entry", "rel_time_vs_entry", "ratio_vs_cudnn",
             "check_rel_err", "config", "clocks_under_load", "timing", "statistic"]
EXEC_FIT_MAX_D = 0.2  # the exec fit (the one the shares come from) uses densities up to this
FIT_STAT = ("kept: row_cost_fit.fit, unweighted least squares over all densities' medians, kept 128-key tiles; "
            "exec (and the shares): least squares on relative errors over the medians at d <= 0.2, executed tiles")
FIT_COLS = ["c_row_kept_us", "c_tile_kept_us", "c_row_exec_us", "c_tile_exec_us", "row_share_kept_us",
            "row_share_exec_us", "fit_points", "fit_max_resid_pct"]
TIMING = ("CUDA-graph replay (2 input sets per graph, CUDA events), >= 30 ms untimed replays before each timed "
          "one, rounds interleaved over all cases incl. cuDNN")


def variant_index(name: str, index):
    """The index variant ``name`` runs with: ``identity_order`` replaces the launch order by arange."""
    import dataclasses

    import torch

    if name != "identity_order":
        return index
    return dataclasses.replace(index, order=torch.arange(index.n_rows, dtype=torch.int32, device=index.offsets.device))


def config(name: str):
    """The LaunchConfig of variant ``name``: the h200 fg (128, 128, 1) table entry's tl kernel (``tl_config()``:
    the switches are the tl kernel's) plus its switches."""
    import dataclasses

    import fgattn.launch as launch

    diag, lpt, _, _ = VARIANTS[name]
    base = launch.launch_config("fg", "h200", D, M, 1).tl_config()
    extra = dict(base.extra, lpt=lpt, **PERSISTENT.get(name, {}), **OPTIONS.get(name, {}))
    if diag:
        extra["_diag"] = dict(diag)
    return dataclasses.replace(base, extra=extra, source=f"profile_row_cost variant {name}")


# ------------------------------------------------------------------------------------------------ GPU side
def proxy_n(h: int, n: int, m: int = M) -> int:
    """Small N with the Triton integer specialisation of H=h, N=n (``bench_kernels.proxy_n``)."""
    from bench_kernels import proxy_n as bench_proxy_n

    return bench_proxy_n(h, n, m)


def warm(name: str, shapes: str) -> dict[str, Any]:
    """Worker process: compile variant ``name`` for each timed shape's specialisation (``shapes``: "h,n;h,n") on
    small proxies and, for exact variants, compare with the float64 reference there (persistent variants also
    under ``fgattn.limit_sms`` 1, 3 and 17, so that programs walk several rows)."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    t0 = time.perf_counter()
    seed = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(seed)
    cfg = config(name)
    errs = []
    for spec in shapes.split(";"):
        h, n_target = (int(x) for x in spec.split(","))
        n = proxy_n(h, n_target)
        q, k, v = (torch.randn(1, h, n, D, device=DEVICE, dtype=torch.bfloat16) for _ in range(3))
        masks = [window_mask(1, h, n, M, 0.3, device=DEVICE)]
        if spec == shapes.split(";")[0]:  # text rows (full rows and columns) on the first shape's proxy
            masks.append(with_text(window_mask(1, h, n - 200, M, 0.1, device=DEVICE), 200, M))
        for mask in masks:
            index = variant_index(name, fgattn.build_index(mask, block_m=M, gran_n=1, order=cfg.option("lpt", True)))
            sms_list = [None, 1, 3, 17] if name in PERSISTENT and VARIANTS[name][2] == "exact" else [None]
            for sms in sms_list:
                out = torch.full_like(q, float("nan"))
                with fgattn.limit_sms(sms) if sms else contextlib.nullcontext():
                    fgattn.fg_attention(q, k, v, index, block_m=M, config=cfg, out=out)
                if DEVICE == "cuda":
                    torch.cuda.synchronize()
                if VARIANTS[name][2] == "exact":
                    ref = fgattn.reference_attention(q, k, v, index)
                    errs.append(float((out.double() - ref).norm() / ref.norm()) if not out.isnan().any()
                                else float("nan"))
    err = float("nan") if not errs or any(math.isnan(e) for e in errs) else max(errs)
    return dict(name=name, err=err, checks=len(errs), seed=seed, s=round(time.perf_counter() - t0, 1))


def warm_in_subprocess(name: str, shapes: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--warm", name, "--warm-shapes", shapes]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return dict(name=name, err=float("nan"), msg="timeout")
    for line in p.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return dict(name=name, err=float("nan"), msg=f"rc={p.returncode} {p.stderr.strip()[-300:]}")


def row_stats(index) -> dict[str, float]:
    """rows, kept 128-key tiles (nnz/128), executed tiles with and without the tail tile."""
    cnt = index.counts()
    tiles = (cnt + 127) // 128
    return dict(rows=int(cnt.numel()), kept=float(cnt.sum()) / 128, exec=float(tiles.sum()),
                exec_no_tail=float((tiles - 1).clamp(min=0).sum()))


def parse_shapes(spec: str, densities: tuple[float, ...]) -> list[dict[str, Any]]:
    """``--shapes``: comma-separated ``HxN[+TEXT][:d1/d2/...]`` (default densities ``densities``), e.g.
    ``12x32760,40x75600:0.02/0.1/0.5,12x32760+512:0.02/0.1/0.5``."""
    out = []
    for part in spec.split(","):
        m = re.fullmatch(r"(\d+)x(\d+)(?:\+(\d+))?(?::([\d./]+))?", part.strip())
        if not m:
            raise ValueError(f"--shapes: {part!r} is not HxN[+TEXT][:d1/d2/...]")
        h, n, text = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        dens = tuple(float(x) for x in m.group(4).split("/")) if m.group(4) else densities
        if len(dens) < 2 or any(not 0 < d < 1 for d in dens):
            raise ValueError(f"--shapes: {part!r} needs >= 2 densities in (0, 1)")
        out.append(dict(h=h, n_video=n, n_text=text, n=n + text, densities=dens,
                        name=f"H{h} N{n}" + (f"+{text}text" if text else "") + f" D{D}"))
    return out


def measure(args, out_dir: Path) -> Path:
    """Compile (parallel workers), build the masks, time every variant at every shape and density (cuDNN dense at
    each shape in every round), write the CSV."""
    import fgattn
    import torch
    from bench_kernels import ClockSampler, env_metadata, sdpa, timed_rounds
    from fgattn.masks import window_mask, with_text

    t0 = time.perf_counter()
    meta = env_metadata()
    # the device copy's .git is stale: the caller passes the commit
    meta["git_commit"] = (os.environ.get("FGSIM_COMMIT") or os.environ.get("GIT_COMMIT")
                          or meta.get("git_commit", ""))
    print(json.dumps(meta), flush=True)
    names = list(VARIANTS) if not args.variants else args.variants.split(",")
    shapes = parse_shapes(args.shapes, args.densities)
    warm_spec = ";".join(f"{sh['h']},{sh['n']}" for sh in shapes)
    pool = ThreadPoolExecutor(max_workers=len(names))
    checks_f = pool.map(lambda nm: warm_in_subprocess(nm, warm_spec), names)
    seed = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(seed)
    print(f"[rowcost] input seed {seed}", flush=True)
    probs = []
    for sh in shapes:
        h, n = sh["h"], sh["n"]
        sh["sets"] = [tuple(torch.randn(1, h, n, D, device=DEVICE, dtype=torch.bfloat16) for _ in range(3))
                      for _ in range(2)]
        sh["out"] = torch.empty_like(sh["sets"][0][0])
        for d in sh["densities"]:
            mask = window_mask(1, h, sh["n_video"], M, d, device=DEVICE)
            if sh["n_text"]:
                mask = with_text(mask, sh["n_text"], M)
            idx = fgattn.build_index(mask, block_m=M, gran_n=1, order=True)
            probs.append((sh, d, idx, idx.density(n), row_stats(idx)))
            del mask
        print(f"[rowcost] masks built for {sh['name']} {time.perf_counter() - t0:.1f}s", flush=True)
    checks = {c["name"]: c for c in checks_f}
    pool.shutdown()
    for c in checks.values():
        print(f"[rowcost] compiled {c['name']}: {c}", flush=True)
    print(f"[rowcost] compiled {len(checks)} variants {time.perf_counter() - t0:.1f}s", flush=True)
    # timed_rounds calls fn(i) for input set i = 0, 1; each case reads its own shape's inputs
    cases: list[dict[str, Any]] = []
    cudnn = sdpa("cudnn")
    for sh in shapes:
        cases.append(dict(kernel="cudnn", variant="cudnn", shape=sh, dt=1.0,
                          fn=lambda i, sh=sh: cudnn(*sh["sets"][i])))
    for sh, d, idx, dens, st in probs:
        for name in names:
            cfg = config(name)
            vidx = variant_index(name, idx)
            cases.append(dict(kernel=name, variant=name, shape=sh, dt=d, dens=dens, st=st, cfg=cfg,
                              fn=lambda i, cfg=cfg, idx=vidx, sh=sh: fgattn.fg_attention(
                                  *sh["sets"][i], idx, block_m=M, config=cfg, out=sh["out"])))
    clocks = ClockSampler(1.0)
    t1 = time.time()
    timed_rounds(cases, [(0,), (1,)], args.rounds, args.target_ms)
    t2 = time.time()
    clocks.stop()
    clk = clocks.window(t1, t2)
    print(f"[rowcost] timed {len(cases)} cases x {args.rounds} rounds {time.perf_counter() - t0:.1f}s; {clk}",
          flush=True)
    rows = []
    med = {}
    cud = {}
    for c in cases:
        ms = sorted(c["ms"]) or [float("nan")]
        med[(c["shape"]["name"], c["variant"], c["dt"])] = ms[len(ms) // 2]
        if c["variant"] == "cudnn":
            cud[c["shape"]["name"]] = c["ms"]
    for c in cases:
        sh = c["shape"]
        ms = sorted(c["ms"]) or [float("nan")]
        m = ms[len(ms) // 2]
        base = dict(kind="time", variant=c["variant"], shape=sh["name"], H=sh["h"], N=sh["n"], n_text=sh["n_text"],
                    D=D, M=M, ms=f"{m:.5f}", ms_min=f"{ms[0]:.5f}", ms_max=f"{ms[-1]:.5f}", rounds=len(c["ms"]),
                    reps=c.get("reps", ""), clocks_under_load=clk, timing=TIMING,
                    statistic=f"median over {len(c['ms'])} rounds (min, max given); ratio_vs_cudnn: median over "
                              "rounds of density x t_cuDNN / t in the same round", **meta)
        qb = -(-sh["n"] // M)
        if c["variant"] == "cudnn":
            base.update(density_target=1.0, density=1.0, rows=sh["h"] * qb, kept_tiles=sh["h"] * qb * sh["n"] / 128,
                        exec_tiles="", config="cuDNN SDPA (torch sdpa_kernel CUDNN_ATTENTION), dense", numerics="exact",
                        what="dense reference for the per-tile cost")
            rows.append(base)
            continue
        diag, lpt, numerics, what = VARIANTS[c["variant"]]
        st = c["st"]
        ex = st["exec_no_tail"] if c["variant"] in ("no_tail", "floor") else st["exec"]
        rows_per_sm = st["rows"] / SMS
        entry = med.get((sh["name"], "entry", c["dt"]))
        ratios = sorted(c["dens"] * b / t for b, t in zip(cud.get(sh["name"], []), c["ms"], strict=False))
        base.update(diag=json.dumps(diag, sort_keys=True), lpt=lpt, numerics=numerics, what=what,
                    density_target=c["dt"], density=f"{c['dens']:.5f}", gran_n=1, rows=st["rows"],
                    kept_tiles=f"{st['kept']:.1f}", exec_tiles=f"{ex:.0f}",
                    us_per_row_per_sm=f"{m * 1e3 / rows_per_sm:.3f}",
                    saved_us_per_row_vs_entry=f"{(entry - m) * 1e3 / rows_per_sm:.3f}" if entry else "",
                    rel_time_vs_entry=f"{m / entry:.4f}" if entry else "",
                    ratio_vs_cudnn=f"{ratios[len(ratios) // 2]:.4f}" if ratios else "",
                    check_rel_err=checks.get(c["variant"], {}).get("err", ""),
                    config=f"bn{c['cfg'].block_n} st{c['cfg'].num_stages} w{c['cfg'].num_warps} "
                           f"{json.dumps(c['cfg'].extra, sort_keys=True)}")
        rows.append(base)
    rows += fit_rows(rows)
    path = out_dir / args.csv_name
    write_csv(path, rows, list(meta))
    print(f"[rowcost] wrote {path} {time.perf_counter() - t0:.1f}s", flush=True)
    print_table(rows)
    return path


def write_csv(path: Path, rows: list[dict[str, Any]], meta_cols: list[str]) -> None:
    """All rows (time and fit) in one CSV, written atomically."""
    from fgsim.fileio import write_text_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TIME_COLS + FIT_COLS + meta_cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    write_text_atomic(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------------- fits
def _shape_of(r: dict[str, Any]) -> str:
    return r.get("shape") or f"H{H} N{N} D{D}"  # CSVs written before --shapes: the one default shape


def fit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``kind=fit`` row per (shape, variant): c_row/c_tile (µs per SM) over kept and over executed tiles, and
    the entry's c_row minus the variant's (the part of the per-row cost the variant leaves out)."""
    from row_cost_fit import fit

    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("kind") == "time" and r["variant"] != "cudnn" and r["ms"] not in ("", "nan"):
            by.setdefault((_shape_of(r), r["variant"]), []).append(r)
    out = []
    fits = {}
    for key, pts in by.items():
        if len({float(p["density"]) for p in pts}) < 2:
            continue
        rows_per_sm = int(pts[0]["rows"]) / SMS
        ms = [float(p["ms"]) for p in pts]
        ck = fit(rows_per_sm, 1 / SMS, [float(p["kept_tiles"]) for p in pts], ms)
        low = [p for p in pts if float(p["density_target"]) <= EXEC_FIT_MAX_D]
        low = low if len(low) >= 2 else pts
        ce, resid = weighted_fit(rows_per_sm, [float(p["exec_tiles"]) for p in low], [float(p["ms"]) for p in low])
        fits[key] = (ck, ce, len(low), resid, pts[0])
    for (shape, name), (ck, ce, n_pts, resid, p0) in fits.items():
        e = fits.get((shape, "entry"))
        out.append(dict(kind="fit", variant=name, diag=json.dumps(VARIANTS[name][0], sort_keys=True),
                        lpt=VARIANTS[name][1], numerics=VARIANTS[name][2], what=VARIANTS[name][3], shape=shape,
                        H=p0.get("H", H), N=p0.get("N", N), n_text=p0.get("n_text", 0), D=D, M=M,
                        c_row_kept_us=f"{ck[0]:.3f}", c_tile_kept_us=f"{ck[1]:.4f}", c_row_exec_us=f"{ce[0]:.3f}",
                        c_tile_exec_us=f"{ce[1]:.4f}",
                        row_share_kept_us=f"{e[0][0] - ck[0]:.3f}" if e else "",
                        row_share_exec_us=f"{e[1][0] - ce[0]:.3f}" if e else "", fit_points=n_pts,
                        fit_max_resid_pct=f"{resid:.2f}", statistic=FIT_STAT, timing=TIMING))
    return out


def weighted_fit(rows_per_sm: float, exec_tiles: list[float], ms: list[float]) -> tuple[tuple[float, float], float]:
    """(c_row, c_tile) in µs from t = rows/SM · c_row + exec_tiles/SM · c_tile, least squares on relative errors
    (each equation divided by its time, so the low densities, where the per-row cost is a large part, count as
    much as the high ones); returns the fit and the largest relative residual in %."""
    import numpy as np

    a = np.array([[rows_per_sm, t / SMS] for t in exec_tiles])
    y = np.asarray(ms) * 1e3
    c, *_ = np.linalg.lstsq(a / y[:, None], np.ones_like(y), rcond=None)
    return (float(c[0]), float(c[1])), float(np.max(np.abs(a @ c - y) / y) * 100)


def print_table(rows: list[dict[str, Any]]) -> None:
    """Short table per shape: per variant the fit, and at each density the time relative to the entry and the
    kept-slice throughput ratio to cuDNN."""
    for shape in dict.fromkeys(_shape_of(r) for r in rows):
        sr = [r for r in rows if _shape_of(r) == shape]
        print(f"== {shape}")
        cud = [r for r in sr if r.get("variant") == "cudnn" and r.get("kind") == "time"]
        if cud:
            tiles = float(cud[0]["kept_tiles"])
            print(f"cuDNN dense {float(cud[0]['ms']):.3f} ms = {float(cud[0]['ms']) * 1e3 / (tiles / SMS):.3f} us per "
                  "128x128 tile per SM")
        times = [r for r in sr if r.get("kind") == "time" and r["variant"] != "cudnn"]
        dens = sorted({float(r["density_target"]) for r in times})
        print("variant                 c_row kept/exec us  c_tile kept/exec us  resid%  | t/t_entry (ratio vs cuDNN) "
              + " ".join(f"d={d}" for d in dens))
        for name in dict.fromkeys(r["variant"] for r in times):
            f = next((r for r in sr if r.get("kind") == "fit" and r["variant"] == name), None)
            fit_s = (f"{f['c_row_kept_us']:>7}/{f['c_row_exec_us']:<7}   {f['c_tile_kept_us']:>7}/"
                     f"{f['c_tile_exec_us']:<7}   {f['fit_max_resid_pct']:>6}" if f else " " * 44)
            cells = []
            for d in dens:
                r = next((r for r in times if r["variant"] == name and float(r["density_target"]) == d), None)
                rel, rat = (r.get("rel_time_vs_entry") or "", r.get("ratio_vs_cudnn") or "") if r else ("", "")
                cells.append(f"{float(rel):.3f}({float(rat):.2f})" if rel and rat else f"{'-':>12}")
            print(f"{name:<23} {fit_s}  | " + " ".join(cells))


def refit(path: Path, write: bool) -> int:
    """Print the fits of a CSV's time rows; with ``write`` replace its fit rows by the current ones."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = list(reader.fieldnames or [])
        rows = [r for r in reader if r["kind"] == "time"]
    fits = fit_rows(rows)
    print_table(rows + fits)
    if write:
        write_csv(path, rows + fits, [c for c in cols if c not in TIME_COLS + FIT_COLS])
        print(f"rewrote the fit rows of {path}")
    return 0


# ------------------------------------------------------------------------------------------- Nsight Compute
def find_ncu() -> str | None:
    hit = shutil.which("ncu")
    if hit:
        return hit
    cands = sorted(Path("/opt/nvidia").glob("nsight-compute/*/ncu")) + sorted(Path("/usr/local").glob("cuda*/bin/ncu"))
    return str(cands[-1]) if cands else None


def run_ncu(out_dir: Path, density: float, timeout_s: float) -> None:
    """Profile the third fg launch of validation/profile_fg.py (the entry, window mask at ``density``) and write
    the details page, the SASS source page and a region summary of the stall samples into ncu.tgz."""
    ncu = find_ncu()
    if ncu is None:
        print("[ncu] no ncu on this machine: skipped", flush=True)
        return
    t0 = time.perf_counter()
    rep = out_dir / "ncu_fg"
    sections = ["SpeedOfLight", "WarpStateStats", "LaunchStats", "Occupancy", "SchedulerStats", "SourceCounters"]
    cmd = [ncu, "--clock-control", "none", "-k", "regex:_attn_fwd", "--launch-skip", "2", "--launch-count", "1",
           "-f", "-o", str(rep)] + [a for s in sections for a in ("--section", s)]
    metrics = ["--metrics", "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio"]
    prog = [sys.executable, str(ROOT / "validation" / "profile_fg.py"), "--density", str(density), "--no-dense"]
    log = []
    for extra in (metrics, []):
        left = timeout_s - (time.perf_counter() - t0)
        if left < 15:
            break
        try:
            p = subprocess.run(cmd + extra + prog, capture_output=True, text=True, timeout=left)
            log.append(f"$ {' '.join(cmd + extra + prog)}\nrc={p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
            if p.returncode == 0 and rep.with_suffix(".ncu-rep").exists():
                break
        except subprocess.TimeoutExpired:
            log.append("timeout")
            break
    files: dict[str, str] = {"ncu-run.log": "\n".join(log)}
    rep_file = rep.with_suffix(".ncu-rep")
    if rep_file.exists():
        for name, extra in (("ncu-details.txt", ["--page", "details"]),
                            ("ncu-source.csv", ["--page", "source", "--csv", "--print-source", "sass"])):
            try:
                p = subprocess.run([ncu, "-i", str(rep_file)] + extra, capture_output=True, text=True, timeout=60)
                if p.returncode != 0 and "--print-source" in extra:  # an ncu without the option: its default view
                    p = subprocess.run([ncu, "-i", str(rep_file)] + extra[:3], capture_output=True, text=True,
                                       timeout=60)
                files[name] = p.stdout if p.returncode == 0 else f"rc={p.returncode}\n{p.stderr[-2000:]}"
            except subprocess.TimeoutExpired:
                files[name] = "timeout"
        files["ncu-regions.txt"] = stall_regions(files.get("ncu-source.csv", ""))
        try:
            files["ncu-stages.txt"] = stage_table(files.get("ncu-source.csv", ""),
                                                  ncu_duration_us(files.get("ncu-details.txt", "")))
        except (StopIteration, ValueError, IndexError) as e:
            files["ncu-stages.txt"] = f"could not split the source page: {e!r}"
    with tarfile.open(out_dir / "ncu.tgz", "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if rep_file.exists() and rep_file.stat().st_size < 12e6:
            tar.add(rep_file, arcname=rep_file.name)
    rep_file.unlink(missing_ok=True)
    print(f"[ncu] done in {time.perf_counter() - t0:.1f}s:\n{files.get('ncu-regions.txt', log[-1][-1500:])}",
          flush=True)


def stall_regions(source_csv: str) -> str:
    """Warp-stall samples of the SASS source page summed by region: before the main loop (row prologue), the
    loop (per tile), after it (tail tile + epilogue); the main loop is the longest backward branch's range."""
    try:
        rows = list(csv.reader(io.StringIO(source_csv)))
        head_i = next(i for i, r in enumerate(rows) if any("Address" in c for c in r))
        head = rows[head_i]
        a_col = next(i for i, c in enumerate(head) if "Address" in c)
        s_col = next(i for i, c in enumerate(head) if c == "Source" or "Source" in c)
        w_col = next(i for i, c in enumerate(head) if "Warp Stall Sampling (All" in c)
        instr = []
        for r in rows[head_i + 1:]:
            try:
                instr.append((int(r[a_col], 16), r[s_col], float(r[w_col] or 0)))
            except (ValueError, IndexError):
                continue
        loops = []
        for addr, src, _ in instr:
            m = re.search(r"BRA\S*\s+(?:`\(\.L_x_\d+\)|0x([0-9a-f]+))", src)
            if m and m.group(1) and int(m.group(1), 16) < addr:
                loops.append((int(m.group(1), 16), addr))
        if not loops:  # branch targets printed as labels: the loop runs from its head wait on the K/V ring
            # (cp.async wait_group 2) to the drain after it (wait_group 0)
            heads = [a for a, s, _ in instr if "DEPBAR.LE SB0, 0x2" in s]
            drains = [a for a, s, _ in instr if "DEPBAR.LE SB0, 0x0" in s and heads and a > heads[0]]
            if heads and drains:
                loops.append((heads[0], max(a for a, _, _ in instr if a < drains[0])))
        total = sum(w for _, _, w in instr) or 1.0
        lines = [f"instructions {len(instr)}, stall samples {total:.0f}"]
        if loops:
            lo, hi = max(loops, key=lambda x: x[1] - x[0])
            parts = {"before loop (row prologue)": sum(w for a, _, w in instr if a < lo),
                     "main loop (per tile)": sum(w for a, _, w in instr if lo <= a <= hi),
                     "after loop (tail tile + epilogue)": sum(w for a, _, w in instr if a > hi)}
            lines.append(f"main loop 0x{lo:x}-0x{hi:x}")
            lines += [f"{k:<36} {v:10.0f} {100 * v / total:6.1f} %" for k, v in parts.items()]
        lines.append("top 40 instructions by stall samples:")
        for a, src, w in sorted(instr, key=lambda x: -x[2])[:40]:
            lines.append(f"0x{a:05x} {w:8.0f} {100 * w / total:5.1f} %  {src.strip()[:90]}")
        return "\n".join(lines)
    except (StopIteration, ValueError) as e:
        return f"could not parse the source page: {e!r}"


#: stages of the entry's SASS (fg M128 g1 bn128 st3 w8 idx_ahead 1, LPT order, Triton 3.6 sm_90; offsets from the
#: kernel's first instruction, read off cuobjdump -sass; the ncu source page of run 2026-11-30 matched it
#: instruction for instruction).  Another compiler or config moves them: check before use.
ENTRY_STAGES = [
    ("P1 start, Order load, Offsets load issue", 0x0000, 0x0690),
    ("P2 index loads of tiles 0-2 (wait for Offsets)", 0x0690, 0x1630),
    ("P3 Q LDG.128 + STS (wait for Q)", 0x1630, 0x1BE0),
    ("P4 K/V cp.async of tiles 0-1 + barrier", 0x1BE0, 0x2570),
    ("L  main loop (n_full pipelined tiles)", 0x2570, 0x4A20),
    ("T1 loop drain (wgmma + cp.async wait 0)", 0x4A20, 0x4B30),
    ("T2 tail: index + mask index + K/V loads", 0x4B30, 0x7140),
    ("T3 tail: STS, QK, masked softmax, PV", 0x7140, 0x9D60),
    ("E  normalize, layout convert, O store, exit", 0x9D60, 1 << 40),
]


def stage_table(source_csv: str, kernel_us: float | None = None, rows_per_sm: float = H * -(-N // M) / SMS) -> str:
    """Warp-stall samples (all, and the top stall reasons) of an ncu SASS source page summed over
    :data:`ENTRY_STAGES`; with the kernel time, µs per row per SM of each stage (share × time / rows per SM)."""
    import collections

    rows = list(csv.reader(io.StringIO(source_csv)))
    head = next(r for r in rows if "Address" in r and "Source" in r)
    data = [r for r in rows if r and r[0].startswith("0x")]
    base = int(data[0][0], 16)
    w_col = next(i for i, c in enumerate(head) if c.startswith("Warp Stall Sampling (All"))
    reasons = [(i, c[6:]) for i, c in enumerate(head) if c.startswith("stall_") and "Not Issued" not in c]
    total = sum(float(r[w_col] or 0) for r in data) or 1.0
    out = [f"stall samples {total:.0f} over {len(data)} SASS instructions"
           + (f"; kernel {kernel_us:.2f} us, {rows_per_sm:.2f} rows per SM" if kernel_us else "")]
    for name, lo, hi in ENTRY_STAGES:
        sel = [r for r in data if lo <= int(r[0], 16) - base < hi]
        w = sum(float(r[w_col] or 0) for r in sel)
        why: collections.Counter[str] = collections.Counter()
        for r in sel:
            for i, c in reasons:
                why[c] += float(r[i] or 0)
        per_row = f"{w / total * kernel_us / rows_per_sm:6.2f} us/row" if kernel_us else ""
        top = ", ".join(f"{k} {100 * v / max(w, 1):.0f}%" for k, v in why.most_common(4))
        out.append(f"{name:<46} {100 * w / total:5.1f} % {per_row}  [{top}]")
    return "\n".join(out)


def ncu_duration_us(details: str) -> float | None:
    """Kernel duration (µs) from an ncu details page, if it is there."""
    m = re.search(r"Duration\s+(\w+)\s+([\d.,]+)", details)
    if not m:
        return None
    v = float(m.group(2).replace(",", ""))
    return {"us": v, "ms": v * 1e3, "ns": v / 1e3}.get(m.group(1))


# ---------------------------------------------------------------------------------------------- offline
def offline() -> int:
    """Registers / stack / shared memory of every variant (Triton on the path, sm_90, no GPU)."""
    from compile_report import compile_one

    for name, (diag, lpt, _, _) in VARIANTS.items():
        extra = dict(PERSISTENT[name], ORDERED=lpt) if name in PERSISTENT else dict(diag, IDX_AHEAD=1, ORDERED=lpt)
        extra.pop("programs_per_sm", None)
        if OPTIONS.get(name, {}).get("tma_q"):
            extra["TMA_Q"] = True
        if OPTIONS.get(name, {}).get("tail_reuse"):
            extra["TAIL_REUSE"] = True
        r = compile_one((name, 2, D, M, 128, 1, 3, 8, extra))
        print(json.dumps(r), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU run)")
    ap.add_argument("--csv-name", default="kernels-h200-2026-11-30-rowcost.csv")
    ap.add_argument("--densities", type=lambda s: tuple(float(x) for x in s.split(",")), default=DENSITIES)
    ap.add_argument("--variants", default="", help="comma-separated subset of the variants (default all)")
    ap.add_argument("--shapes", default="12x32760",
                    help="comma-separated HxN[+TEXT][:d1/d2/...] (default densities: --densities), e.g. "
                         "12x32760,40x75600:0.02/0.1/0.5,12x32760+512:0.02/0.1/0.5")
    ap.add_argument("--warm-shapes", default="", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--target-ms", type=float, default=15.0, help="timed replay length per measurement")
    ap.add_argument("--ncu", action="store_true", help="also profile one fg launch with Nsight Compute")
    ap.add_argument("--ncu-density", type=float, default=0.02)
    ap.add_argument("--ncu-timeout-s", type=float, default=60.0)
    ap.add_argument("--deadline-s", type=float, default=1e9, help="ncu gets at most what is left of this")
    ap.add_argument("--offline", action="store_true", help="compile report of the variants (no GPU)")
    ap.add_argument("--fit", type=Path, default=None, help="refit a CSV this script wrote")
    ap.add_argument("--write", action="store_true", help="with --fit: rewrite the CSV's fit rows")
    ap.add_argument("--regions", type=Path, default=None,
                    help="stall samples of an ncu SASS source page (CSV) of the entry by prologue/loop/tail stage")
    ap.add_argument("--warm", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    bad = [v for v in args.variants.split(",") if v and v not in VARIANTS]
    if bad:
        print(f"profile_row_cost: --variants: unknown {bad} (known: {list(VARIANTS)})", file=sys.stderr)
        return 2
    if any(not 0 < d < 1 for d in args.densities) or len(args.densities) < 2:
        print("profile_row_cost: --densities: need >= 2 values in (0, 1)", file=sys.stderr)
        return 2
    try:
        parse_shapes(args.shapes, args.densities)
    except ValueError as e:
        print(f"profile_row_cost: {e}", file=sys.stderr)
        return 2
    if args.warm:
        print(json.dumps(warm(args.warm, args.warm_shapes or f"{H},{N}")))
        return 0
    if args.offline:
        return offline()
    if args.regions is not None:
        if not args.regions.is_file():
            print(f"profile_row_cost: --regions {args.regions} does not exist", file=sys.stderr)
            return 2
        text = args.regions.read_text()
        details = args.regions.with_name("ncu-details.txt")
        print(stage_table(text, ncu_duration_us(details.read_text()) if details.is_file() else None))
        return 0
    if args.fit is not None:
        if not args.fit.is_file():
            print(f"profile_row_cost: --fit {args.fit} does not exist", file=sys.stderr)
            return 2
        return refit(args.fit, args.write)
    if args.out is None:
        print("profile_row_cost: --out is required for a GPU run", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    if not os.access(args.out, os.W_OK):
        print(f"profile_row_cost: --out {args.out} is not writable", file=sys.stderr)
        return 2
    measure(args, args.out)
    if args.ncu:
        left = args.deadline_s - (time.perf_counter() - t0) - 10
        run_ncu(args.out, args.ncu_density, min(args.ncu_timeout_s, left))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
