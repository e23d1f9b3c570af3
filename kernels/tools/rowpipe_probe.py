"""The row-pipelined Gluon ws2 fg kernel (``fgattn.gluon_fg_rowpipe``) against the list-scheduled entry kernel
(``fgattn.gluon_fg_list``) and cuDNN SDPA: float64 check, paired graph timing, the pre-registered rule, paired fits.

Issue 12, session 13, helper R (kernels/NOTES.md, "Session 13 research: per-row cost (helper R)")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/rowpipe_probe.py --out $OUT        # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/rowpipe_probe.py --dry-run         # any machine
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/rowpipe_probe.py --offline-compile
    python3 kernels/tools/rowpipe_probe.py --analyze CSV                                       # CPU: rule + fits

Variants (all on :func:`fgattn.gluon_fg_list.plan_ws2_list`'s list plan of the same index, built before capture):
``list`` = :func:`fgattn.gluon_fg_list.fg_attention_gluon_list` (the kernel the launch table's fg D128 M128 g1
entry runs with ``schedule: list``; the baseline of every ratio); ``list_ctl`` = the same call timed as a second
case (the control: its ratio to ``list`` measures the machine, not a kernel); ``rowpipe``, ``rowpipe_nopf``,
``list_pf``, ``rowpipe_l2``, ``list_l2`` = :func:`fgattn.gluon_fg_rowpipe.fg_attention_gluon_rowpipe` with
``VARIANT_KNOBS[name]`` (``*_l2`` gather the wrong keys by design: timed, never checked).  The check cases and
the timed problems are ``ws2_list_probe``'s (``gluon_m64_probe``'s random cases; the run-9 sweep problems by
``entry_regress.build_index``).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

from probe_cells import control_void_reasons, geo_mean, parse_cells  # noqa: E402
from ws2_list_probe import D, G, M, assign_shards, build_case, check_cases, densities_for  # noqa: E402

BASE = "list"
VARIANTS = ("list", "list_ctl", "rowpipe", "rowpipe_nopf", "list_pf", "rowpipe_l2", "list_l2")
DIAG = ("rowpipe_l2", "list_l2")  # wrong output by design (gathers key idx & 127): never checked
#: the checked variant whose consumer each diagnostic shares (not timed if that one failed its check)
DIAG_PARENT = {"rowpipe_l2": "rowpipe", "list_l2": "list_pf"}
#: the pre-registered rule (kernels/NOTES.md, session 13, written before the call): the control (``list_ctl``, the
#: list kernel timed as a second case) is valid when its geo-mean over the launch-ordered sweep problems lies in
#: 1 +- CONTROL_GEO_BAND and every problem's median in 1 +- CONTROL_CELL_BAND; ``rowpipe`` is then eligible when its
#: float64 check passed, its paired median is <= MAX_REL x list at every problem, and its geo-mean over the problems
#: with density <= LOW_D is <= LOW_GEO_MAX (a gain beyond the control's band where the change is aimed).
CONTROL_GEO_BAND = 0.01
CONTROL_CELL_BAND = 0.04
MAX_REL = 1.02
LOW_D = 0.1
LOW_GEO_MAX = 0.99
COLS = ["shape", "H", "N", "n_text", "density_target", "density", "variant", "config", "ms", "ms_min", "ms_max",
        "rel_list", "rel_list_min", "rel_list_max", "ratio_vs_cudnn", "ratio_min", "ratio_max", "rounds", "reps",
        "rows", "rows_per_sm", "exec_tiles_per_row", "clocks_under_load", "timing", "statistic"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="12x32760,40x75600,12x32760+512", help="HxN[+TEXT], comma-separated")
    ap.add_argument("--densities", default="0.02,0.1,0.5", help="density targets, comma-separated")
    ap.add_argument("--shape-densities", default="40x75600:0.02/0.1",
                    help="per-shape density lists overriding --densities, e.g. 40x75600:0.02/0.1")
    ap.add_argument("--variants", default="list,list_ctl,rowpipe,rowpipe_nopf,list_pf,rowpipe_l2",
                    help=f"timed, comma-separated of {list(VARIANTS)} (must include {BASE!r})")
    ap.add_argument("--check-variants", default="list,rowpipe,rowpipe_nopf,list_pf",
                    help="checked against float64, comma-separated (no diagnostic *_l2 variant)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=20.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=131, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=120.0, help="skip later shapes after this many timing seconds")
    ap.add_argument("--check", type=int, default=120, metavar="N", help="random check cases (0: none)")
    ap.add_argument("--check-seed", type=int, default=1313, help="seed of the random check cases")
    ap.add_argument("--check-timeout-s", type=float, default=110.0, help="check child processes' wall limit")
    ap.add_argument("--check-procs", type=int, default=14, help="check child processes (spec_key groups)")
    ap.add_argument("--inline-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-shard", default="0/1", help=argparse.SUPPRESS)
    ap.add_argument("--inline-prewarm", default="", help=argparse.SUPPRESS)
    ap.add_argument("--no-time", action="store_true", help="skip the timing")
    ap.add_argument("--tag", default="", help="file name suffix (write --tag=-x)")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--offline-compile", action="store_true", help="compile for sm_90 without a GPU, SASS figures")
    ap.add_argument("--analyze", type=Path, default=None, metavar="CSV",
                    help="no GPU: the rule's verdict and the paired per-row / per-tile fits of a timing CSV")
    a = ap.parse_args(argv)
    if a.analyze is not None:
        if not a.analyze.is_file():
            ap.error(f"--analyze: {a.analyze} is not a file")
        return a
    parse_cells(ap, a)
    a.variant_list = a.variants.split(",")
    a.check_list = [v for v in a.check_variants.split(",") if v]
    for flag, vals in (("--variants", a.variant_list), ("--check-variants", a.check_list)):
        bad = [v for v in vals if v not in VARIANTS]
        if bad:
            ap.error(f"{flag}: unknown {bad} (known: {list(VARIANTS)})")
    if BASE not in a.variant_list and not a.no_time:
        ap.error(f"--variants: every ratio is paired with {BASE!r}; include it")
    if any(v in DIAG for v in a.check_list):
        ap.error(f"--check-variants: {[v for v in a.check_list if v in DIAG]} gather wrong keys by design")
    if a.rounds < 3:
        ap.error(f"--rounds: {a.rounds} < 3 (paired medians need at least 3)")
    if a.check < 0:
        ap.error(f"--check: {a.check} must be >= 0")
    if a.check_procs < 1:
        ap.error(f"--check-procs: {a.check_procs} must be >= 1")
    r, _, pp = a.check_shard.partition("/")
    try:
        a.shard = (int(r), int(pp))
    except ValueError:
        ap.error(f"--check-shard: bad value {a.check_shard!r}")
    if not (a.dry_run or a.offline_compile) and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


# ------------------------------------------------------------------------------------------------ pure analysis


def rule_verdict(rows: list[dict[str, str]], check_ok: bool | None = None) -> tuple[str, list[str]]:
    """('eligible' | 'not eligible' | 'void', reasons) of ``rowpipe`` from a timing CSV's rows (``rel_list``
    column); ``check_ok`` False (the float64 check failed) makes it 'not eligible'."""
    rel: dict[str, dict[tuple[str, float], float]] = {}
    for r in rows:
        if r["variant"] in ("list_ctl", "rowpipe") and r.get("rel_list", "") != "":
            rel.setdefault(r["variant"], {})[(r["shape"], float(r["density_target"]))] = float(r["rel_list"])
    ctl, rp = rel.get("list_ctl", {}), rel.get("rowpipe", {})
    if not ctl or set(ctl) != set(rp):
        return "void", ["the timing lacks paired list_ctl / rowpipe rows at some problem"]
    why = control_void_reasons("list_ctl", ctl, CONTROL_GEO_BAND, CONTROL_CELL_BAND)
    if why:
        return "void", why
    bad = [] if check_ok is not False else ["the float64 check failed"]
    bad += [f"rowpipe {v:.3f} > {MAX_REL} at {k[0]} d {k[1]}" for k, v in sorted(rp.items()) if v > MAX_REL]
    low = [v for k, v in rp.items() if k[1] <= LOW_D]
    low_geo = geo_mean(low) if low else float("nan")
    if not low or low_geo > LOW_GEO_MAX:
        bad.append(f"rowpipe geo-mean {low_geo:.3f} over the d <= {LOW_D} problems > {LOW_GEO_MAX}")
    if bad:
        return "not eligible", bad
    geo = geo_mean(list(ctl.values()))
    return "eligible", [f"list_ctl geo-mean {geo:.3f}; rowpipe {min(rp.values()):.3f}-{max(rp.values()):.3f}, "
                        f"geo-mean at d <= {LOW_D} {low_geo:.3f}"]


def paired_fit(rows: list[dict[str, str]], variant: str, shape: str | None = None) -> dict[str, float] | None:
    """Least squares of (rel - 1) · t_list = Δc_row · rows/SM + Δc_tile · tiles/SM over the problems (of
    ``shape``, or all), each weighted 1 / t_list (µs per row, µs per executed 128-key tile per SM; ``variant``
    against ``list`` in the same rounds); None with fewer than 2 problems or a singular system."""
    base = {(r["shape"], r["density_target"]): r for r in rows if r["variant"] == BASE}
    a, y, w = [], [], []
    for r in rows:
        if r["variant"] != variant or (shape is not None and r["shape"] != shape) or r.get("rel_list", "") == "":
            continue
        b = base.get((r["shape"], r["density_target"]))
        if b is None:
            continue
        t = float(b["ms"]) * 1e3
        rps = float(r["rows_per_sm"])
        a.append([rps, rps * float(r["exec_tiles_per_row"])])
        y.append((float(r["rel_list"]) - 1.0) * t)
        w.append(1.0 / t)
    if len(y) < 2:
        return None
    aw = np.array(a) * np.array(w)[:, None]
    yw = np.array(y) * np.array(w)
    if np.linalg.matrix_rank(aw) < 2:
        return None
    (dr, dt), *_ = np.linalg.lstsq(aw, yw, rcond=None)
    res = aw @ np.array([dr, dt]) - yw
    return dict(d_c_row_us=float(dr), d_c_tile_us=float(dt), problems=len(y), max_abs_resid_rel=float(np.abs(res).max()))


def analyze(path: Path) -> tuple[str, list[str]]:
    """Print per problem each variant's paired rel (min-max) and ×cuDNN, the paired fits and the verdict."""
    rows = list(csv.DictReader(open(path, newline="")))
    for r in rows:
        if r["variant"] != "cudnn":
            print(f"[sum] {r['shape']} d {r['density_target']} {r['variant']:<13} {r['ms']} ms rel {r['rel_list']} "
                  f"({r['rel_list_min']}-{r['rel_list_max']}) x{r['ratio_vs_cudnn']}", flush=True)
    for v in sorted({r["variant"] for r in rows} - {"cudnn", BASE}):
        for shp in [None] + sorted({r["shape"] for r in rows}):
            f = paired_fit(rows, v, shp)
            if f is not None:
                print(f"[fit] {v:<13} {shp or 'all problems'}: " + ", ".join(f"{k} {x:.3f}" for k, x in f.items()),
                      flush=True)
    from row_cost_fit import fit_cells

    for v in sorted({r["variant"] for r in rows} - {"cudnn"}):
        for shp in sorted({r["shape"] for r in rows}):
            cells = [(float(r["rows_per_sm"]), float(r["rows_per_sm"]) * float(r["exec_tiles_per_row"]), float(r["ms"]))
                     for r in rows if r["variant"] == v and r["shape"] == shp]
            if len({c[1] for c in cells}) >= 2:
                c_row, c_tile, res = fit_cells(cells)
                print(f"[abs] {v:<13} {shp}: c_row {c_row:.2f} us, c_tile {c_tile:.3f} us (max rel resid {res:.3f}, "
                      f"{len(cells)} densities)", flush=True)
    verdict, why = rule_verdict(rows)
    print(f"[rule] {verdict}: " + "; ".join(why), flush=True)
    return verdict, why


# ------------------------------------------------------------------------------------------------ GPU side
def make_plan(idx, programs: int | None = None):
    """The list plan of ``idx`` (every variant runs it), built outside any graph capture."""
    import torch
    from fgattn.gluon_fg_list import plan_ws2_list

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return plan_ws2_list(idx, programs=min(programs or sms, sms))


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of ``name`` writing ``out``."""
    from fgattn.gluon_fg_list import fg_attention_gluon_list
    from fgattn.gluon_fg_rowpipe import VARIANT_KNOBS, fg_attention_gluon_rowpipe

    if name in ("list", "list_ctl"):
        return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan)
    return fg_attention_gluon_rowpipe(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                      **VARIANT_KNOBS[name])


def check(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """Float64 check of ``--check-variants`` on this shard's random cases; writes a part CSV; True if all pass."""
    import fgattn
    import torch

    from fgsim.fileio import write_csv_atomic

    rows, ok_all = [], True
    cases = check_cases(args.check, args.check_seed)
    r_, p_ = args.shard
    shard = assign_shards(cases, p_)
    print(f"[check] {len(cases)} cases, seed {args.check_seed}, shard {r_}/{p_}: {shard.count(r_)} cases", flush=True)
    for ci, c in enumerate(cases):
        if shard[ci] != r_:
            continue
        q, k, v, idx, (eb, eh, eq) = build_case(c)
        ref = fgattn.reference_attention(q, k, v, idx, layout=c["layout"], sm_scale=c["sm_scale"])
        plan = make_plan(idx, c["programs"])
        for name in args.check_list:
            o = torch.full_like(q, float("nan"))
            msg = ""
            try:
                run_variant(name, q, k, v, idx, o, c["layout"], plan, c["sm_scale"])
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                msg = f"{type(e).__name__}: {e}"[:300]
            nan = int(o.isnan().sum())
            err = float((o.double().nan_to_num(0.0) - ref).norm() / ref.norm().clamp_min(1e-30))
            rq = slice(eq * M, (eq + 1) * M)
            blk = o[eb, eh, rq] if c["layout"] == "bhnd" else o[eb, rq, eh]
            empty_ok = bool((blk == 0).all())
            ok = not msg and err <= 1e-2 and nan == 0 and empty_ok
            ok_all &= ok
            rows.append(dict(case=ci, **{k_: c[k_] for k_ in ("b", "h", "n", "text", "density", "window", "dtype",
                                                             "layout", "sm_scale", "programs", "seed")},
                             density_real=round(idx.density(c["n"] + c["text"]), 5), variant=name,
                             programs_run=plan.programs, rel_err=f"{err:.4e}", nan=nan, empty_block_zero=empty_ok,
                             ok=ok, error=msg, reference="fgattn.reference_attention (float64)", **meta))
            if not ok or ci < 2:
                print(f"[check] case {ci} {c} {name}: err {err:.3e} nan {nan} empty-zero {empty_ok} {msg}", flush=True)
    path = args.out / f"kernels-h200-{meta['date'][:10]}-rowpipe{args.tag}-accuracy-part{r_}.csv"
    if rows:
        write_csv_atomic(path, rows, list(rows[0]))
    errs: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        errs.setdefault((r["variant"], r["dtype"]), []).append(float(r["rel_err"]))
    for (vn, dt), es in sorted(errs.items()):
        print(f"[check] {vn} {dt}: {len(es)} cases, rel err median {sorted(es)[len(es) // 2]:.3e} max {max(es):.3e}",
              flush=True)
    print(f"[check] {len(rows)} checks, {sum(not r['ok'] for r in rows)} failed", flush=True)
    return ok_all


#: (H, N) of the tiny bf16 problems that compile the timed problems' Triton specialisations before the timing
#: (N_Q and the query-block count QB divisible by 16 or not: N 32760 -> (no, yes), 33272 and 75600 -> (yes, no))
PREWARM_SHAPES = ((2, 2047), (2, 2064))


def prewarm(name: str) -> None:
    """Launch variant ``name`` on :data:`PREWARM_SHAPES` (bf16, bhnd), so that its compiled kernels are in the
    Triton cache when the timing process needs them."""
    import fgattn
    import torch

    for h, n in PREWARM_SHAPES:
        mask = torch.rand(1, h, -(-n // M), n, device="cuda") < 0.1
        idx = fgattn.build_index(mask, block_m=M, gran_n=G, order=True)
        q, k, v = (torch.randn(1, h, n, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        run_variant(name, q, k, v, idx, torch.empty_like(q), plan=make_plan(idx))
    torch.cuda.synchronize()


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> set[str]:
    """:func:`check` in ``--check-procs`` child processes within ``--check-timeout-s`` (and, beside them, one
    :func:`prewarm` process per timed variant); merges the parts into ``...-accuracy.csv``; returns the checked
    variants that failed a case (all of them if a part did not come back)."""
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.fileio import write_csv_atomic

    procs = min(args.check_procs, args.check)
    warm = [] if args.no_time else [v for v in args.variant_list if v != "list_ctl"]

    def warm_one(name: str) -> bool:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--inline-prewarm", name,
               "--no-time", "--check", "0"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            if p.returncode:
                print(f"[prewarm] {name} rc {p.returncode}: {p.stderr[-800:]}", flush=True)
            return p.returncode == 0
        except subprocess.TimeoutExpired:
            print(f"[prewarm] {name} timed out after {args.check_timeout_s:.0f}s", flush=True)
            return False

    def one(r: int) -> bool:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--inline-check", "--no-time",
               "--check-variants", ",".join(args.check_list), "--variants", ",".join(args.variant_list),
               f"--tag={args.tag}", "--check", str(args.check), "--check-seed", str(args.check_seed),
               "--check-shard", f"{r}/{procs}"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-1200:] + (p.stderr[-2000:] if p.returncode else ""), flush=True)
            return p.returncode == 0
        except subprocess.TimeoutExpired:
            print(f"[check] shard {r}/{procs} timed out after {args.check_timeout_s:.0f}s", flush=True)
            return False

    with ThreadPoolExecutor(max_workers=procs + len(warm)) as ex:
        wf = [ex.submit(warm_one, v) for v in warm]
        oks = list(ex.map(one, range(procs)))
        print(f"[prewarm] {sum(f.result() for f in wf)}/{len(warm)} variants compiled", flush=True)
    rows: list[dict[str, str]] = []
    for r in range(procs):
        part = args.out / f"kernels-h200-{meta['date'][:10]}-rowpipe{args.tag}-accuracy-part{r}.csv"
        if part.exists():
            with open(part, newline="") as f:
                rows += list(csv.DictReader(f))
            part.unlink()
    if rows:
        write_csv_atomic(args.out / f"kernels-h200-{meta['date'][:10]}-rowpipe{args.tag}-accuracy.csv", rows)
    bad = [r for r in rows if r.get("ok") != "True"]
    print(f"[check] {len(rows)} checks from {sum(oks)}/{procs} shards, {len(bad)} failed", flush=True)
    if not all(oks) or len(rows) != args.check * len(args.check_list):
        return set(args.check_list)
    return {r["variant"] for r in bad}


def result_rows(cases: list[dict[str, Any]], sets: list, seed: int, shape: str, h: int, n: int, nt: int,
                clk: str) -> list[dict[str, Any]]:
    """Rows (``COLS``) of one shape's cases after ``bench_kernels.timed_rounds`` (``cases[0]`` is cuDNN): median /
    min / max ms over rounds, rel_list = t / t_list and ratio = density · t_cuDNN / t, both paired per round."""
    from entry_regress import paired

    base, rows = cases[0], []
    for c in cases:
        if not c["ms"]:
            continue
        ms = sorted(c["ms"])
        ref = next((e for e in cases if e["variant"] == BASE and e["dt"] == c["dt"]), None)
        rel = paired(c["ms"], ref["ms"]) if ref is not None and ref["ms"] and c is not base else ("", "", "")
        rat = paired([c["dens"] * b for b in base["ms"]], c["ms"])
        r = dict(shape=shape, H=h, N=n, n_text=nt, density_target=c["dt"], density=round(c["dens"], 5),
                 variant=c["variant"], config=c["cfg"], ms=round(ms[len(ms) // 2], 4), ms_min=round(ms[0], 4),
                 ms_max=round(ms[-1], 4), **{k: (round(x, 4) if isinstance(x, float) else x) for k, x in
                                             zip(("rel_list", "rel_list_min", "rel_list_max"), rel, strict=True)},
                 ratio_vs_cudnn=round(rat[0], 4), ratio_min=round(rat[1], 4), ratio_max=round(rat[2], 4),
                 rounds=len(ms), reps=c["reps"], rows=c["stats"].get("rows", ""),
                 rows_per_sm=c["stats"].get("rows_per_sm", ""),
                 exec_tiles_per_row=c["stats"].get("exec_tiles_per_row", ""), clocks_under_load=clk,
                 timing=(f"CUDA graph ({len(sets)} input set(s)), {len(ms)} interleaved rounds in a random order per "
                         f"round (seed {seed}) x {c['reps']} timed replays after {c.get('warm', 0)} untimed, events"),
                 statistic="median over rounds (min, max); rel_list = t / t_list paired per round; "
                           "ratio = density * t_cuDNN / t per round")
        rows.append(r)
        print(f"[time] {shape:<22} d={c['dt']:<5} {c['variant']:<13} {r['ms']:9.3f} ms  rel {r['rel_list']!s:<6} "
              f"({r['rel_list_min']}-{r['rel_list_max']})  x{r['ratio_vs_cudnn']}", flush=True)
    return rows


def time_shapes(args: argparse.Namespace, meta: dict[str, str]) -> Path:
    """Paired interleaved graph timing (cuDNN + variants per shape and density), one CSV."""
    import torch
    from bench_kernels import ClockSampler, make_qkv, sdpa, timed_rounds
    from entry_regress import build_index, row_stats

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    path = args.out / f"kernels-h200-{meta['date'][:10]}-rowpipe{args.tag}.csv"
    clocks = ClockSampler(0.5)
    t0 = time.perf_counter()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + ["M", "gran_n", "plan_makespan_over_mean"] + list(meta),
                           extrasaction="ignore")
        w.writeheader()
        for si, (h, nv, nt) in enumerate(args.shape_list):
            shape = f"H{h} N{nv}" + (f"+{nt}text" if nt else "") + f" D{D}"
            if time.perf_counter() - t0 > args.budget_s:
                print(f"[time] budget reached, skipping {shape}", flush=True)
                continue
            n = nv + nt
            sets = make_qkv(1, h, n, D, 1 if h * n * D * 6 > 1e9 else 2)
            obuf = torch.empty_like(sets[0][0])
            cases: list[dict[str, Any]] = [dict(variant="cudnn", kernel="sdpa_cudnn", fn=sdpa("cudnn"), dt=1.0,
                                                dens=1.0, stats={}, cfg="torch SDPA cuDNN backend")]
            pm: dict[float, str] = {}
            for dt_ in densities_for(args, (h, nv, nt)):
                idx = build_index(h, nv, nt, dt_, "cuda")
                st = row_stats(idx, sms)
                plan = make_plan(idx)
                pm[dt_] = f"{plan.makespan / plan.mean_load:.4f}"
                for v in args.variant_list:
                    cfg = (f"fgattn.gluon_fg_list (list plan c_row 3, {plan.programs} programs)" if v in ("list",
                           "list_ctl") else f"fgattn.gluon_fg_rowpipe {v} (same plan)")
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=idx.density(n), stats=st, cfg=cfg,
                                      fn=lambda q, k, v_, idx=idx, name=v, o=obuf, pl=plan: run_variant(
                                          name, q, k, v_, idx, o, plan=pl)))
            torch.cuda.synchronize()
            ts = time.time()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si)
            clk = clocks.window(ts, time.time())
            for r in result_rows(cases, sets, args.seed + si, shape, h, n, nt, clk):
                w.writerow({**r, "M": M, "gran_n": G, "plan_makespan_over_mean": pm.get(r["density_target"], ""),
                            **meta})
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
            cases.clear()
            del sets
            torch.cuda.empty_cache()
    clocks.stop()
    return path


def offline_compile() -> list[dict[str, Any]]:
    """Each kernel variant compiled for sm_90 (bf16): registers, stack, shared memory, HGMMA, tile-loop figures."""
    from compile_report import cuobjdump, loop_figures
    from fgattn.gluon_fg_list import compile_list_sm90
    from fgattn.gluon_fg_rowpipe import VARIANT_KNOBS, compile_rowpipe_sm90

    out = []
    for name in ("list",) + tuple(VARIANT_KNOBS):
        k = compile_list_sm90("bf16") if name == "list" else compile_rowpipe_sm90("bf16", **VARIANT_KNOBS[name])
        res, sass = cuobjdump(k)
        lines = sass.splitlines()
        r = dict(variant=name, smem_bytes=k.metadata.shared, res=" ".join(res.split()[-8:-4]),
                 hgmma=sum("HGMMA" in ln for ln in lines), stl=sum(" STL" in ln for ln in lines),
                 ldl=sum(" LDL" in ln for ln in lines), **(loop_figures(sass) or {}))
        print(json.dumps(r), flush=True)
        out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.analyze is not None:
        analyze(args.analyze)
        return 0
    if args.dry_run:
        print(json.dumps(dict(shapes={f"{h}x{nv}+{nt}": densities_for(args, (h, nv, nt))
                                      for h, nv, nt in args.shape_list}, variants=args.variant_list,
                              check_variants=args.check_list, rounds=args.rounds, check=args.check,
                              check_seed=args.check_seed, check_procs=args.check_procs, time=not args.no_time,
                              out=str(args.out), tag=args.tag, budget_s=args.budget_s,
                              first_cases=check_cases(min(args.check, 2), args.check_seed))))
        return 0
    if args.offline_compile:
        offline_compile()
        return 0
    import torch

    if not torch.cuda.is_available():
        print("rowpipe_probe: no CUDA device (use --dry-run, --offline-compile or --analyze here)", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    if args.inline_check:
        return 0 if check(args, meta) else 1
    if args.inline_prewarm:
        prewarm(args.inline_prewarm)
        return 0
    failed: set[str] = set()
    if args.check and args.check_list:
        failed = check_in_processes(args, meta)
        print(f"[check] {'FAILED ' + str(sorted(failed)) if failed else 'passed'} {time.perf_counter() - t0:.1f}s",
              flush=True)
    ok = not failed
    if not args.no_time:  # a variant that failed its check is not timed, nor the diagnostic built on it
        drop = failed | {d for d, parent in DIAG_PARENT.items() if parent in failed}
        args.variant_list = [v for v in args.variant_list if v not in drop or v in (BASE, "list_ctl")]
        path = time_shapes(args, meta)
        rows = list(csv.DictReader(open(path, newline="")))
        analyze(path)
        verdict, why = rule_verdict(rows, ok)
        print(f"[rule+check] {verdict}: " + "; ".join(why), flush=True)
    print(f"[probe] done {time.perf_counter() - t0:.1f}s, check {'ok' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
