"""Gluon prototype of the fg D128 M128 gran-1 kernel (``fgattn.gluon_fg``) against the launch-table entry.

Issue 12, helper G (kernels/NOTES.md, "Gluon prototype (helper G)")::

    PYTHONPATH=.:kernels:validation python3 validation/gluon_probe.py --out $OUT          # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 validation/gluon_probe.py --dry-run           # any machine: the plan
    PYTHONPATH=/path/to/triton-3.6:kernels:validation python3 validation/gluon_probe.py --offline-compile

Check (``--check``): each variant on ``CHECK_CASES`` (window + sink masks, text rows / columns, odd N, query block
(0, 0, 1) emptied, bf16 and fp16, one ``bnhd`` case; the persistent form with 5 programs, so that each walks many
rows) against ``fgattn.reference_attention`` (float64): relative error (Frobenius), NaN count (output poisoned with
NaN first), the emptied block all zeros.  Timing: per shape cuDNN SDPA and every variant at each density (the
masks of ``validation/entry_regress.py``), CUDA-graph replay, ``--rounds`` interleaved rounds in a fresh random
order per round, ratios paired per round; the CSV has ``entry_regress.py``'s columns, so
``kernels/tools/row_cost_fit.py --entry-regress CSV`` fits per-row / per-tile costs per variant.
Variants: ``entry`` (the launch table's fg D128 M128 g1 entry as the tl kernel, also where the entry says
``impl: gluon``), ``gluon_row`` (form a: one program per row, Q by
TMA off the critical path, the tail tile pipelined), ``gluon_pers`` (form b: one program per SM, gathers two tiles
ahead across rows), ``gluon_ws`` (form c: persistent, a producer warpgroup gathers for two consumer warpgroups),
``gluon_ws2`` (form d: as c, each consumer warpgroup its own partition).
Variants that fail the check are not timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

from fgsim.fileio import write_csv_atomic  # noqa: E402

D, M, G = 128, 128, 1
VARIANTS = ("entry", "gluon_row", "gluon_pers", "gluon_ws", "gluon_ws2")
FORM = {"gluon_row": "one_row", "gluon_pers": "persistent", "gluon_ws": "ws", "gluon_ws2": "ws2"}
#: (H, N video, text tokens, density target, dtype, layout)
CHECK_CASES = ((2, 1999, 0, 0.1, "bf16", "bhnd"), (2, 1535, 512, 0.05, "bf16", "bhnd"),
               (2, 1970, 77, 0.3, "bf16", "bhnd"), (2, 3583, 512, 0.02, "bf16", "bhnd"),
               (3, 2001, 0, 0.5, "bf16", "bhnd"), (2, 1999, 0, 0.1, "fp16", "bhnd"),
               (2, 1535, 512, 0.05, "fp16", "bhnd"), (3, 4095, 0, 0.02, "fp16", "bhnd"),
               (2, 2047, 77, 0.2, "bf16", "bnhd"), (1, 1000, 0, 1.0, "bf16", "bhnd"))
CHECK_PROGRAMS = 5  # programs of the persistent forms in the check (each walks many rows)
#: accepted by --variants, not run by default: c / d without the consumers' proxy fence, and form d's round-2
#: knobs (helper G2, kernels/NOTES.md "Gluon round 2"; every one without the fence): ``_poly`` exp_poly 0.25,
#: ``_pp`` ping-pong, ``_pipe`` / ``_pipe2`` FA3 intra-warpgroup overlap (P carried bf16 / fp32), ``_r224``
#: registers (consumer, producer) = (224, 56), ``_all`` pipe + poly + pp, ``_all2`` pipe2 + r224 + poly + pp,
#: ``_pipe3`` pipeline 3 (1 + the next tile's full wait before the PV wait)
KNOBS: dict[str, dict[str, Any]] = {
    "gluon_ws_nofence": dict(consumer_fence=False), "gluon_ws2_nofence": dict(consumer_fence=False),
    "gluon_ws2_poly": dict(consumer_fence=False, exp_poly=0.25),
    "gluon_ws2_pp": dict(consumer_fence=False, pingpong=True),
    "gluon_ws2_pipe": dict(consumer_fence=False, pipeline=1),
    "gluon_ws2_pipe2": dict(consumer_fence=False, pipeline=2),
    "gluon_ws2_pipe2_r224": dict(consumer_fence=False, pipeline=2, regs=(224, 56)),
    "gluon_ws2_all": dict(consumer_fence=False, pipeline=1, exp_poly=0.25, pingpong=True),
    "gluon_ws2_all2": dict(consumer_fence=False, pipeline=2, exp_poly=0.25, pingpong=True, regs=(224, 56)),
    # prepared after the g3 call (offline only, not yet run on a GPU): pipeline 3 = 1 with the softmax pinned
    # inside the overlap window
    "gluon_ws2_pipe3": dict(consumer_fence=False, pipeline=3),
    "gluon_ws2_pipe3_poly": dict(consumer_fence=False, pipeline=3, exp_poly=0.25),
}
EXTRA_VARIANTS = tuple(KNOBS)
FORM.update({v: "ws" if v.startswith("gluon_ws_") else "ws2" for v in KNOBS})
PERSISTENT = ("gluon_pers", "gluon_ws", "gluon_ws2") + EXTRA_VARIANTS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="40x32760,12x32760", help="HxN[+TEXT], comma-separated")
    ap.add_argument("--densities", default="0.02,0.1,0.5", help="density targets, comma-separated")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated of {VARIANTS}")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=20.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=11, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=60.0, help="skip later shapes after this many timing seconds")
    ap.add_argument("--no-check", action="store_true", help="skip the float64 check")
    ap.add_argument("--check-timeout-s", type=float, default=150.0,
                    help="each variant's check runs in its own process (a hang or crash fails that variant only)")
    ap.add_argument("--inline-check", action="store_true", help=argparse.SUPPRESS)  # the per-variant child
    ap.add_argument("--no-time", action="store_true", help="skip the timing")
    ap.add_argument("--tag", default="", help="file name suffix (write --tag=-x, not --tag -x)")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--offline-compile", action="store_true",
                    help="compile both forms for sm_90 without a GPU (Triton 3.6 on the path) and print SASS figures")
    ap.add_argument("--analyze", type=Path, nargs="+", default=None, metavar="CSV",
                    help="no GPU: per-cell table, paired fit and dispatch rule from probe timing CSVs")
    ap.add_argument("--threshold", type=float, default=None,
                    help="--analyze: dispatch threshold (tiles per row) instead of each variant's break-even")
    a = ap.parse_args(argv)
    if a.analyze is not None:
        for f in a.analyze:
            if not f.is_file():
                ap.error(f"--analyze: {f} is not a file")
        if a.threshold is not None and not a.threshold > 0:
            ap.error(f"--threshold: {a.threshold} must be > 0")
    from entry_regress import parse_shapes

    try:
        a.shape_list = parse_shapes(a.shapes)
        a.density_list = [float(x) for x in a.densities.split(",")]
    except ValueError as e:
        ap.error(str(e) if "shapes" in str(e) else f"--densities: {a.densities!r} is not a comma-separated list")
    if any(not 0 < x <= 1 for x in a.density_list):
        ap.error(f"--densities: {a.densities!r} must lie in (0, 1]")
    a.variant_list = a.variants.split(",")
    bad = [v for v in a.variant_list if v not in VARIANTS + EXTRA_VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad} (known: {list(VARIANTS + EXTRA_VARIANTS)})")
    if a.rounds < 3:
        ap.error(f"--rounds: {a.rounds} < 3 (paired medians need at least 3)")
    if not (a.dry_run or a.offline_compile or a.analyze) and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


# ------------------------------------------------------------------------------------------------ offline
def offline_compile(only: list[str] | None = None) -> list[dict[str, Any]]:
    """Both forms, bf16 and fp16, compiled for sm_90 (no GPU): registers, stack, shared memory, HGMMA count and
    gsb0 (serialised wgmma), the innermost HGMMA loop's instructions / static stall cycles
    (``compile_report.loop_figures``), and the SASS address order of the Q TMA and the first gathers."""
    import re

    import fgattn.gluon_fg as g
    import triton
    from compile_report import cuobjdump, loop_figures

    rows = []
    forms = [("gluon_row", g._fg_gluon_row), ("gluon_pers", g._fg_gluon_persistent), ("gluon_ws", g._fg_gluon_ws),
             ("gluon_ws2", g._fg_gluon_ws2)] + [(v, g._fg_gluon_ws if FORM[v] == "ws" else g._fg_gluon_ws2)
                                                for v in EXTRA_VARIANTS]
    for form, fn in forms:
        if only and form not in only:
            continue
        for dt in ("bf16", "fp16"):
            ws2 = form.startswith("gluon_ws2")
            const: dict[str, Any] = {p.name: p.default for p in fn.params if p.is_constexpr and p.has_default}
            const.update(HEAD_DIM=D, BLOCK_M=M, BLOCK_N=g.BLOCK_N, STAGES=g.STAGES,
                         num_warps=4 if ws2 else g.NUM_WARPS)
            if form.startswith("gluon_ws"):
                const.update(PRODUCER_REGS=g.PRODUCER_REGS, **({"CONSUMER_REGS": g.CONSUMER_REGS} if ws2 else {}))
                kn = dict(KNOBS.get(form, {}))
                if kn.pop("consumer_fence", True) is False:
                    const["CONSUMER_FENCE"] = False
                if kn:
                    const.update(g.check_ws2_knobs("ws2", **kn))
            else:
                const.update(ORDERED=True)
            t0 = time.time()
            k = g.compile_sm90(fn, const, dt, M, D, ws2)
            res, sass = cuobjdump(k)
            hg = [ln for ln in sass.splitlines() if "HGMMA" in ln]

            def first(op: str, text: str = sass) -> str:
                m = re.search(r"/\*([0-9a-f]{4,})\*/\s+[^;]*" + op, text)
                return "0x" + m.group(1) if m else "-"

            rows.append(dict(form=form, dtype=dt, regs=int(re.search(r"REG:(\d+)", res).group(1)),
                             stack=int(re.search(r"STACK:(\d+)", res).group(1)), smem_bytes=k.metadata.shared,
                             hgmma=len(hg), hgmma_gsb0=sum("gsb0" in ln for ln in hg),
                             first_utmaldg=first("UTMALDG"), first_ldgsts=first("LDGSTS"),
                             first_hgmma=first("HGMMA"), bar_sync=sass.count("BAR.SYNC"),
                             **(loop_figures(sass) or {}), compile_s=round(time.time() - t0, 1),
                             triton=triton.__version__))
            print(json.dumps(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ analysis
def load_cells(paths: list[Path]) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """Timing rows of probe CSVs by cell (shape, density target) and variant (cuDNN rows dropped); a cell must
    have the ``entry`` row (the paired reference)."""
    cells: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if r.get("variant") in (None, "", "cudnn"):
                    continue
                cells.setdefault((r["shape"], r["density_target"]), {})[r["variant"]] = r
    bad = [c for c, v in cells.items() if "entry" not in v]
    if bad or not cells:
        raise ValueError(f"--analyze: cells without an entry row: {bad}" if bad else "--analyze: no timing rows")
    return cells


def paired_fit(cells: dict[tuple[str, str], dict[str, dict[str, str]]], variant: str) -> tuple[float, float, int]:
    """Least squares of the paired difference t_v - t_entry = (rel_entry - 1) * t_entry over the cells (each cell
    weighted by 1 / t_entry, i.e. relative residuals) = dc_row * rows/SM + dc_tile * executed tiles/SM: returns
    (dc_row us, dc_tile us, cells).  Pairing per round removes most of the call's clock drift from the difference."""
    import numpy as np

    a, y = [], []
    for c in cells.values():
        if variant not in c or not c[variant].get("rel_entry"):
            continue
        e = c["entry"]
        t = float(e["ms"]) * 1e3
        rps = float(e["rows_per_sm"])
        tps = rps * float(e["exec_tiles_per_row"])
        a.append([rps / t, tps / t])
        y.append(float(c[variant]["rel_entry"]) - 1.0)
    if len(a) < 2:
        raise ValueError(f"--analyze: {variant} has {len(a)} cell(s); the fit needs 2")
    (dr, dt), *_ = np.linalg.lstsq(np.array(a), np.array(y), rcond=None)
    return float(dr), float(dt), len(a)


def dispatch(cells: dict[tuple[str, str], dict[str, dict[str, str]]], variant: str,
             threshold: float) -> list[tuple[str, str, float, str, float, float]]:
    """The rule "``variant`` when the index's executed tiles per row < ``threshold``, the tl entry otherwise" per
    cell: (shape, density, tiles per row, choice, d * t_cuDNN / t of the choice, of the entry)."""
    out = []
    for (shape, d), c in cells.items():
        if variant not in c:
            continue
        tpr = float(c["entry"]["exec_tiles_per_row"])
        pick = variant if tpr < threshold else "entry"
        out.append((shape, d, tpr, pick, float(c[pick]["ratio_vs_cudnn"]), float(c["entry"]["ratio_vs_cudnn"])))
    return out


def analyze(paths: list[Path], threshold: float | None = None) -> int:
    """Print the per-cell paired ratios, each variant's paired fit vs the entry and the dispatch rule."""
    cells = load_cells(paths)
    variants = [v for v in dict.fromkeys(v for c in cells.values() for v in c) if v != "entry"]
    print("| cell | tiles/row | t_entry ms | ×cuDNN entry | " + " | ".join(variants) + " |")
    print("|---" * (4 + len(variants)) + "|")
    for (shape, d), c in cells.items():
        e = c["entry"]
        rel = [f"{float(c[v]['rel_entry']):.3f} ({float(c[v]['rel_entry_min']):.2f}–{float(c[v]['rel_entry_max']):.2f})"
               if v in c else "—" for v in variants]
        print(f"| {shape} d {d} | {float(e['exec_tiles_per_row']):.1f} | {float(e['ms']):.3f} | "
              f"{float(e['ratio_vs_cudnn']):.3f} | " + " | ".join(rel) + " |")
    print("\n| variant | cells | Δc_row µs | Δc_tile µs | break-even tiles/row |")
    print("|---|---|---|---|---|")
    fits = {}
    for v in variants:
        dr, dt, n = paired_fit(cells, v)
        fits[v] = (dr, dt)
        be = -dr / dt if dt > 0 and dr < 0 else (float("inf") if dr < 0 else 0.0)
        print(f"| {v} | {n} | {dr:+.2f} | {dt:+.4f} | {be:.0f} |")
    for v in variants:
        dr, dt = fits[v]
        thr = threshold if threshold is not None else (-dr / dt if dt > 0 and dr < 0 else
                                                       (float("inf") if dr < 0 else 0.0))
        res = dispatch(cells, v, thr)
        print(f"\ndispatch {v} when tiles/row < {thr:.0f}: " + "; ".join(
            f"{s} d {d} ({t:.0f}): {pick} {x:.3f} (entry {xe:.3f})" for s, d, t, pick, x, xe in res))
    return 0


# ------------------------------------------------------------------------------------------------ GPU side
def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", programs: int | None = None):
    """One launch of variant ``name`` writing ``out``."""
    import fgattn
    from fgattn.gluon_fg import fg_attention_gluon

    if name == "entry":  # the table entry's tl kernel, also once the entry says impl gluon (a stable reference)
        from fgattn.attention import resolve_config

        cfg = resolve_config("fg", q, M, G).tl_config()
        return fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, layout=layout, out=out, config=cfg)
    return fg_attention_gluon(q, k, v, idx, layout=layout, form=FORM[name], programs=programs, out=out,
                              **KNOBS.get(name, {}))


def check(variants: list[str], out: Path, tag: str, meta: dict[str, str]) -> set[str]:
    """Float64 check of every variant on CHECK_CASES; writes ``...-accuracy{tag}.csv``; returns the variants with
    a failure (relative error > 1e-2, any NaN, a non-zero emptied block, an exception)."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    rows, failed = [], set()
    for h, nv, nt, dt_, dtn, layout in CHECK_CASES:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtn]
        torch.manual_seed(nv + nt + h)
        print(f"[check] seed {nv + nt + h}", flush=True)
        mask = window_mask(1, h, nv, M, dt_, device="cuda")
        if nt:
            mask = with_text(mask, nt, M)
        mask[0, 0, 1] = False
        idx = fgattn.build_index(mask, block_m=M, gran_n=G, order=True)
        n = nv + nt
        shp = (1, h, n, D) if layout == "bhnd" else (1, n, h, D)
        q, k, v = (torch.randn(*shp, device="cuda", dtype=dtype) for _ in range(3))
        ref = fgattn.reference_attention(q, k, v, idx, layout=layout)
        for name in variants:
            o = torch.full_like(q, float("nan"))
            msg = ""
            try:
                run_variant(name, q, k, v, idx, o, layout, CHECK_PROGRAMS if name in PERSISTENT else None)
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                msg = f"{type(e).__name__}: {e}"[:300]
            nan = int(o.isnan().sum())
            err = float((o.double().nan_to_num(0.0) - ref).norm() / ref.norm())
            blk = o[0, 0, M:2 * M] if layout == "bhnd" else o[0, M:2 * M, 0]
            empty_ok = bool((blk == 0).all())
            ok = not msg and err <= 1e-2 and nan == 0 and empty_ok
            if not ok:
                failed.add(name)
            rows.append(dict(H=h, N=n, n_text=nt, density_target=dt_, density=round(idx.density(n), 5),
                             variant=name, dtype=dtn, layout=layout, rel_err=f"{err:.4e}", nan=nan,
                             empty_block_zero=empty_ok, ok=ok, error=msg,
                             programs=CHECK_PROGRAMS if name in PERSISTENT else "rows",
                             reference="fgattn.reference_attention (float64)", **meta))
            print(f"[check] H{h} N{n} text {nt} d={dt_} {dtn} {layout} {name:<10} rel err {err:.3e} nan {nan} "
                  f"empty-zero {empty_ok} {msg}", flush=True)
    path = out / f"gluon-h200-{meta['date'][:10]}-probe{tag}-accuracy.csv"
    write_csv_atomic(path, rows, list(rows[0]))
    print(f"[check] {len(rows)} checks, failed variants {sorted(failed)}; wrote {path}", flush=True)
    return failed


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> set[str]:
    """:func:`check` of each variant in its own process, in parallel, each within ``--check-timeout-s`` (a hung or
    crashed kernel fails its variant only); merges their CSVs into ``...-probe{tag}-accuracy.csv``."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def one(v: str) -> tuple[str, bool]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--inline-check", "--no-time",
               "--variants", v, f"--tag={args.tag}-part-{v}"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-6000:] + (p.stderr[-3000:] if p.returncode else ""), flush=True)
            return v, p.returncode == 0
        except subprocess.TimeoutExpired as e:
            print(f"[check] {v}: timed out after {args.check_timeout_s:.0f}s\n{(e.stdout or b'')[-3000:]!r}", flush=True)
            return v, False

    with ThreadPoolExecutor(max_workers=len(args.variant_list)) as ex:
        res = dict(ex.map(one, args.variant_list))
    rows: list[dict[str, str]] = []
    for v in args.variant_list:
        part = args.out / f"gluon-h200-{meta['date'][:10]}-probe{args.tag}-part-{v}-accuracy.csv"
        if part.exists():
            rows += list(csv.DictReader(open(part, newline="")))
            part.unlink()
        else:
            rows.append(dict(variant=v, ok="False", error="no result (timeout or crash)"))
    if rows:
        write_csv_atomic(args.out / f"gluon-h200-{meta['date'][:10]}-probe{args.tag}-accuracy.csv", rows)
    failed = {v for v, ok in res.items() if not ok} | {r["variant"] for r in rows if r.get("ok") != "True"}
    print(f"[check] failed variants: {sorted(failed)}", flush=True)
    return failed


def time_shapes(args: argparse.Namespace, meta: dict[str, str], out: Path) -> Path:
    """Paired interleaved graph timing (cuDNN + variants per shape and density); CSV with entry_regress columns."""
    import torch
    from bench_kernels import ClockSampler, make_qkv, sdpa, timed_rounds
    from entry_regress import COLS, build_index, case_rows, row_stats, shape_name

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    path = out / f"gluon-h200-{meta['date'][:10]}-probe{args.tag}.csv"
    clocks = ClockSampler(1.0)
    t0 = time.perf_counter()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + list(meta), extrasaction="ignore")
        w.writeheader()
        for si, (h, nv, nt) in enumerate(args.shape_list):
            if time.perf_counter() - t0 > args.budget_s:
                print(f"[time] budget reached, skipping {shape_name(h, nv, nt)}", flush=True)
                continue
            n = nv + nt
            sets = make_qkv(1, h, n, D, 1 if h * n * D * 6 > 1e9 else 2)
            obuf = torch.empty_like(sets[0][0])
            cases: list[dict[str, Any]] = [dict(variant="cudnn", kernel="sdpa_cudnn", fn=sdpa("cudnn"), dt=1.0,
                                                dens=1.0, stats={}, cfg="torch SDPA cuDNN backend")]
            for dt_ in args.density_list:
                idx = build_index(h, nv, nt, dt_, "cuda")
                st = row_stats(idx, sms)
                for v in args.variant_list:
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=idx.density(n), stats=st,
                                      cfg="launch table fg D128 M128 g1" if v == "entry" else
                                      f"fgattn.gluon_fg {v} bn128 st3 w8",
                                      fn=lambda q, k, v_, idx=idx, name=v, o=obuf: run_variant(name, q, k, v_, idx, o)))
            torch.cuda.synchronize()
            ts = time.time()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si)
            clk = clocks.window(ts, time.time())
            shape = shape_name(h, nv, nt)
            for r in case_rows(cases, sets, args.seed + si, shape, h, n, nt, clk, widths=(16, 10)):
                w.writerow({**r, **meta})
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
            cases.clear()
            del sets
            torch.cuda.empty_cache()
    clocks.stop()
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        print(json.dumps(dict(shapes=args.shape_list, densities=args.density_list, variants=args.variant_list,
                              rounds=args.rounds, check=not args.no_check, time=not args.no_time,
                              check_cases=len(CHECK_CASES), out=str(args.out), tag=args.tag)))
        return 0
    if args.analyze is not None:
        try:
            return analyze(args.analyze, args.threshold)
        except (ValueError, KeyError) as e:
            print(f"gluon_probe: {e}", file=sys.stderr)
            return 2
    if args.offline_compile:
        offline_compile(args.variant_list if args.variants != ",".join(VARIANTS) else None)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gluon_probe: no CUDA device (use --dry-run or --offline-compile here)", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    failed: set[str] = set()
    if args.inline_check:
        failed = check(args.variant_list, args.out, args.tag, meta)
    elif not args.no_check:
        failed = check_in_processes(args, meta)
        print(f"[check] done {time.perf_counter() - t0:.1f}s", flush=True)
        args.variant_list = [v for v in args.variant_list if v not in failed or v == "entry"]
    if not args.no_time and len(args.variant_list) > 1:
        path = time_shapes(args, meta, args.out)
        from row_cost_fit import main as fit_main

        fit_main([str(path), "--entry-regress"])
    print(f"[probe] done {time.perf_counter() - t0:.1f}s, failed variants {sorted(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
