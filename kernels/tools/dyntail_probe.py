"""The dynamic tail (``fgattn.gluon_fg_dyntail``) against the packaged fg entry: float64 check, paired graph timing
with cuDNN in the same rounds, the pre-registered rule, and T's in-kernel timeline of both at two cells.

Issue 12, session 16, helper D2 (kernels/NOTES.md, "Session 16, D2")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/dyntail_probe.py --out $OUT        # GPU: all of it
    PYTHONPATH=.:kernels:validation python3 kernels/tools/dyntail_probe.py --dry-run         # any machine
    python3 kernels/tools/dyntail_probe.py --analyze CSV                                       # CPU: the rule

Variants: ``entry`` = ``fgattn.fg_attention`` under the packaged launch table (fg D128 M128 g1: Gluon ws2
``schedule: list``, row end ``tma_sel``; its list plan memoised before capture); ``entry_ctl`` = the same call timed
as a second case (the control); ``dyn`` = :func:`fgattn.gluon_fg_dyntail.fg_attention_gluon_dyntail` over
``plan_dyntail(pool_share=0.10)`` (the candidate); ``dyn_lf`` = the same with ``light_first`` (second variant);
``cudnn`` = torch SDPA's cuDNN backend (dense; the ×cuDNN ratio).  The check also runs ``dyn50`` (pool share 0.5: many
claims per program) and compares every dynamic variant with the packaged list kernel's output (expected bitwise
equal: same per-row code).  Timing: the benchmark's window masks (``entry_regress.build_index``), CUDA-graph replay,
``--rounds`` interleaved rounds in a fresh random order per round, per shape all densities and cuDNN in the same
rounds (``bench_kernels.timed_rounds``), NVML SM clock during the replays, ratios paired per round.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

from probe_cells import control_void_reasons, geo_mean, parse_cells  # noqa: E402

D, M, G = 128, 128, 1
BASE = "entry"
VARIANTS = ("entry", "entry_ctl", "dyn", "dyn_lf")
CHECK_VARIANTS = ("list", "dyn", "dyn_lf", "dyn50")
#: pool share and light_first of each dynamic variant
DYN_KNOBS = {"dyn": (0.10, False), "dyn_lf": (0.10, True), "dyn50": (0.5, False)}
#: the pre-registered rule (kernels/NOTES.md "Session 16, D2", written and committed before the call): the control
#: (``entry_ctl``) is valid when its geo-mean over the timed cells lies in 1 +- CONTROL_GEO_BAND; a candidate is
#: eligible when the control is valid, its check passed (>= MIN_CHECK random cases, 0 failures, no hang), it was
#: timed at every cell, every cell's paired median is <= MAX_REL and its geo-mean over the cells with density <=
#: LOW_D is <= LOW_GEO_MAX.  Of two eligible ones the lower geo-mean wins.
CONTROL_GEO_BAND = 0.01
MAX_REL = 1.02
LOW_D = 0.05
LOW_GEO_MAX = 0.97
MIN_CHECK = 500
CANDIDATES = ("dyn", "dyn_lf")
TAG = "dyntail"
#: the script the check's child processes run (kernels/tools/dyntail_d3.py sets its own)
SCRIPT = Path(__file__).resolve()
#: timeline header slot (role 0) of the CTA's %smid (session 16, D3: ``gluon_fg._tl_smid``)
SMID_SLOT = 5
COLS = ["shape", "H", "N", "n_text", "density_target", "density", "variant", "config", "ms", "ms_min", "ms_max",
        "rel_entry", "rel_entry_min", "rel_entry_max", "ratio_vs_cudnn", "ratio_min", "ratio_max", "rounds", "reps",
        "warm", "rows", "rows_per_sm", "exec_tiles_per_row", "plan_makespan_over_mean", "pool_rows",
        "static_makespan_over_mean", "sm_mhz_nvml_median", "sm_mhz_eff", "timing", "statistic"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="40x32760,12x32760,40x32760+512,12x32760+512,12x75600,40x75600,"
                                        "12x75600+512,40x75600+512", help="HxN[+TEXT], comma-separated, in order")
    ap.add_argument("--densities", default="0.02,0.05", help="density targets, comma-separated")
    ap.add_argument("--shape-densities", default="40x32760:0.02/0.05/0.1/0.5,12x32760:0.02/0.05/0.1/0.5,"
                                                 "40x32760+512:0.02,12x75600+512:0.02",
                    help="per-shape density lists overriding --densities")
    ap.add_argument("--variants", default="entry,entry_ctl,dyn,dyn_lf", help=f"timed, of {list(VARIANTS)}")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=15.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=1620, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=100.0, help="skip later shapes after this many timing seconds")
    ap.add_argument("--check", type=int, default=520, metavar="N", help="random check cases (0: none)")
    ap.add_argument("--check-seed", type=int, default=1616, help="seed of the random check cases")
    ap.add_argument("--check-timeout-s", type=float, default=100.0, help="check child processes' wall limit")
    ap.add_argument("--check-procs", type=int, default=14, help="check child processes")
    ap.add_argument("--timeline-cells", default="40x32760:0.02,12x32760:0.02",
                    help="cells (HxN[+TEXT]:d, comma-separated) of the instrumented runs ('' none)")
    ap.add_argument("--timeline-reps", type=int, default=3, help="recorded launches per instrumented variant")
    ap.add_argument("--inline-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-shard", default="0/1", help=argparse.SUPPRESS)
    ap.add_argument("--inline-prewarm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-time", action="store_true", help="skip the timing")
    ap.add_argument("--time-anyway", action="store_true", help="time even after a failed check")
    ap.add_argument("--tag", default="", help="file name suffix (write --tag=-x)")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--analyze", type=Path, default=None, metavar="CSV", help="no GPU: the rule on a timing CSV")
    a = ap.parse_args(argv)
    if a.analyze is not None:
        if not a.analyze.is_file():
            ap.error(f"--analyze: {a.analyze} is not a file")
        return a
    parse_cells(ap, a)
    a.variant_list = [v for v in a.variants.split(",") if v]
    bad = [v for v in a.variant_list if v not in VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad} (known: {list(VARIANTS)})")
    if BASE not in a.variant_list and not a.no_time:
        ap.error(f"--variants: every ratio is paired with {BASE!r}; include it")
    if a.rounds < 3:
        ap.error(f"--rounds: {a.rounds} < 3 (paired medians need at least 3)")
    if a.check < 0:
        ap.error(f"--check: {a.check} must be >= 0")
    if a.check_procs < 1:
        ap.error(f"--check-procs: {a.check_procs} must be >= 1")
    if a.timeline_reps < 1:
        ap.error(f"--timeline-reps: {a.timeline_reps} must be >= 1")
    a.tl_cells = []
    from entry_regress import parse_shapes

    for item in [x for x in a.timeline_cells.split(",") if x]:
        shp, _, d = item.partition(":")
        try:
            a.tl_cells.append((*parse_shapes(shp)[0], float(d)))
        except ValueError:
            ap.error(f"--timeline-cells: bad item {item!r} (HxN[+TEXT]:d)")
    r, _, pp = a.check_shard.partition("/")
    try:
        a.shard = (int(r), int(pp))
    except ValueError:
        ap.error(f"--check-shard: bad value {a.check_shard!r}")
    if not a.dry_run and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


# ------------------------------------------------------------------------------------------------ pure analysis
def rule_verdict(rows: list[dict[str, str]], checked: dict[str, tuple[int, int]] | None = None
                 ) -> tuple[str, dict[str, tuple[str, list[str]]], str | None]:
    """('valid' | 'void', {candidate: ('eligible' | 'not eligible', reasons)}, winner or None) from a timing CSV's
    rows (``rel_entry``); ``checked``: {variant: (cases, failures)} of the check (None: not run, so not eligible)."""
    rel: dict[str, dict[tuple[str, float], float]] = {}
    for r in rows:
        if r["variant"] not in ("cudnn", BASE) and r.get("rel_entry", "") != "":
            rel.setdefault(r["variant"], {})[(r["shape"], float(r["density_target"]))] = float(r["rel_entry"])
    ctl = rel.get("entry_ctl", {})
    if not ctl:
        return "void", {}, None
    why = control_void_reasons("entry_ctl", ctl, CONTROL_GEO_BAND, 1e9)
    if why:
        return "void", {"entry_ctl": ("void", why)}, None
    out: dict[str, tuple[str, list[str]]] = {}
    geos: dict[str, float] = {}
    for c in CANDIDATES:
        rc = rel.get(c)
        if rc is None:
            continue
        n, fails = (checked or {}).get(c, (0, 0))
        bad = [] if n >= MIN_CHECK and fails == 0 else [f"check {n} cases, {fails} failed (needs >= {MIN_CHECK}, 0)"]
        if set(rc) != set(ctl):
            bad.append("not timed at every cell")
        bad += [f"{v:.3f} > {MAX_REL} at {k[0]} d {k[1]}" for k, v in sorted(rc.items()) if v > MAX_REL]
        low = [v for k, v in rc.items() if k[1] <= LOW_D]
        lg = geo_mean(low) if low else float("nan")
        if not low or not lg <= LOW_GEO_MAX:
            bad.append(f"geo-mean {lg:.3f} over the {len(low)} d <= {LOW_D} cells > {LOW_GEO_MAX}")
        if bad:
            out[c] = ("not eligible", bad)
        else:
            geos[c] = lg
            out[c] = ("eligible", [f"{min(rc.values()):.3f}-{max(rc.values()):.3f}, geo-mean at d <= {LOW_D} {lg:.3f}"])
    winner = min(geos, key=lambda c: (geos[c], c)) if geos else None
    return "valid", out, winner


def check_counts(acc_rows: list[dict[str, str]]) -> dict[str, tuple[int, int]]:
    """{variant: (cases checked, failures)} of an accuracy CSV's rows (``ok`` column)."""
    out: dict[str, list[int]] = {}
    for r in acc_rows:
        n = out.setdefault(r["variant"], [0, 0])
        n[0] += 1
        n[1] += r.get("ok") != "True"
    return {k: (v[0], v[1]) for k, v in out.items()}


def analyze(path: Path) -> tuple[str, dict, str | None]:
    """Print each cell's paired rel and ×cuDNN, the geo-means and the rule's verdict (the check from the accuracy
    CSV beside ``path``: ``<stem>-accuracy.csv`` or its gzipped copy ``.csv.gz``)."""
    rows = list(csv.DictReader(open(path, newline="")))
    checked = None
    for acc in (path.with_name(path.stem + "-accuracy.csv"), path.with_name(path.stem + "-accuracy.csv.gz")):
        if acc.is_file():  # the committed copy is gzipped (> 200 KB as text)
            import gzip
            import io

            text = (gzip.open(acc, "rt", newline="") if acc.suffix == ".gz" else open(acc, newline="")).read()
            checked = check_counts(list(csv.DictReader(io.StringIO(text))))
            break
    print(f"[check] {checked}" if checked is not None else "[check] no accuracy CSV: candidates not eligible",
          flush=True)
    for r in rows:
        print(f"[sum] {r['shape']:<24} d {r['density_target']:<5} {r['variant']:<9} {r['ms']} ms rel "
              f"{r['rel_entry']} ({r['rel_entry_min']}-{r['rel_entry_max']}) x{r['ratio_vs_cudnn']}", flush=True)
    for v in ["entry_ctl", *CANDIDATES, *sorted({r["variant"] for r in rows} - {BASE, "cudnn", "entry_ctl",
                                                                                 *CANDIDATES})]:
        xs = [float(r["rel_entry"]) for r in rows if r["variant"] == v and r["rel_entry"] != ""]
        lo = [float(r["rel_entry"]) for r in rows if r["variant"] == v and r["rel_entry"] != ""
              and float(r["density_target"]) <= LOW_D]
        if xs:
            print(f"[geo] {v}: all {geo_mean(xs):.3f} ({len(xs)} cells)"
                  + (f", d <= {LOW_D} {geo_mean(lo):.3f} ({len(lo)})" if lo else ""), flush=True)
    verdict, per, winner = rule_verdict(rows, checked)
    print(f"[rule] control {verdict}; " + "; ".join(f"{c}: {s} ({'; '.join(w)})" for c, (s, w) in per.items())
          + f"; winner {winner}", flush=True)
    return verdict, per, winner


# ------------------------------------------------------------------------------------------------ GPU side
def make_plans(idx, programs: int | None = None, names: tuple[str, ...] = ("dyn", "dyn_lf")) -> dict[str, Any]:
    """Row plans, built outside any graph capture: ``list`` (the packaged planner's; memoised for the entry's
    dispatch when ``programs`` is the SM count) and the dynamic variants ``names``."""
    import torch
    from fgattn.gluon_fg_dyntail import plan_dyntail
    from fgattn.gluon_fg_list import plan_ws2_list, prepare_list_plan

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    g = min(programs or sms, sms)
    out = {"list": plan_ws2_list(idx, programs=g)}
    for nm in names:
        share, lf = DYN_KNOBS[nm]
        out[nm] = plan_dyntail(idx, programs=g, pool_share=share, light_first=lf)
    if g == sms:
        out["entry"] = prepare_list_plan(idx)
    return out


def run_variant(name: str, q, k, v, idx, out, plans: dict[str, Any], layout: str = "bhnd",
                sm_scale: float | None = None):
    """One launch of ``name`` writing ``out`` (``list``: the packaged kernel over the list plan, for the check)."""
    import fgattn
    from fgattn.gluon_fg_dyntail import fg_attention_gluon_dyntail
    from fgattn.gluon_fg_list import fg_attention_gluon_list

    if name in ("entry", "entry_ctl"):
        return fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, layout=layout, out=out, sm_scale=sm_scale)
    if name == "list":
        return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plans["list"],
                                       epilogue="tma_sel")
    return fg_attention_gluon_dyntail(q, k, v, idx, plan=plans[name], layout=layout, out=out, sm_scale=sm_scale)


def check(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """Float64 check of the packaged list kernel and the dynamic variants on this shard's random cases (ws2_list_probe's
    generator: odd N, emptied and full blocks, 0 / 77 / 300 text tokens, bf16 / fp16, both layouts, 1 / 3 / 7 / all
    programs); each dynamic output also compared with the list kernel's; writes a part CSV; True if all pass."""
    import fgattn
    import torch
    from ws2_list_probe import assign_shards, build_case, check_cases

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
        plans = make_plans(idx, c["programs"], names=("dyn", "dyn_lf", "dyn50"))
        outs: dict[str, Any] = {}
        for name in CHECK_VARIANTS:
            o = torch.full_like(q, float("nan"))
            msg = ""
            try:
                run_variant(name, q, k, v, idx, o, plans, c["layout"], c["sm_scale"])
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                msg = f"{type(e).__name__}: {e}"[:300]
            outs[name] = o
            nan = int(o.isnan().sum())
            err = float((o.double().nan_to_num(0.0) - ref).norm() / ref.norm().clamp_min(1e-30))
            rq = slice(eq * M, (eq + 1) * M)
            blk = o[eb, eh, rq] if c["layout"] == "bhnd" else o[eb, rq, eh]
            empty_ok = bool((blk == 0).all())
            diff = (float((o.float() - outs["list"].float()).abs().nan_to_num(float("inf")).max())
                    if name != "list" else 0.0)
            claims = int(plans[name].claim.item()) if name != "list" else ""
            # every pool row claimed once, and one failed claim per program: the counter ends at pool + programs
            claims_ok = name == "list" or claims == plans[name].n_pool + plans[name].programs
            ok = not msg and err <= 1e-2 and nan == 0 and empty_ok and claims_ok
            ok_all &= ok
            rows.append(dict(case=ci, **{k_: c[k_] for k_ in ("b", "h", "n", "text", "density", "window", "dtype",
                                                             "layout", "sm_scale", "programs", "seed")},
                             density_real=round(idx.density(c["n"] + c["text"]), 5), variant=name,
                             programs_run=plans[name].programs, n_rows=plans[name].n_rows,
                             pool_rows=getattr(plans[name], "n_pool", ""), claims_after=claims,
                             rel_err=f"{err:.4e}", nan=nan, empty_block_zero=empty_ok, max_abs_diff_vs_list=diff,
                             ok=ok, error=msg, reference="fgattn.reference_attention (float64)", **meta))
            if not ok or ci < 2:
                print(f"[check] case {ci} {c} {name}: err {err:.3e} nan {nan} empty-zero {empty_ok} diff {diff} "
                      f"claims {claims} {msg}", flush=True)
    path = args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}-accuracy-part{r_}.csv"
    if rows:
        write_csv_atomic(path, rows, list(rows[0]))
    print(f"[check] {len(rows)} checks, {sum(not r['ok'] for r in rows)} failed", flush=True)
    return ok_all


def prewarm() -> None:
    """Compile the timed problems' specialisations (bf16, bhnd; N_Q and the query-block count divisible by 16 or not)
    so that the timing process finds them in the Triton cache."""
    import fgattn
    import torch

    for h, n in ((2, 2047), (2, 2064)):
        mask = torch.rand(1, h, -(-n // M), n, device="cuda") < 0.1
        idx = fgattn.build_index(mask, block_m=M, gran_n=G, order=True)
        q, k, v = (torch.randn(1, h, n, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        plans = make_plans(idx)
        for name in ("entry", "dyn"):
            run_variant(name, q, k, v, idx, torch.empty_like(q), plans)
    torch.cuda.synchronize()


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> dict[str, tuple[int, int]]:
    """:func:`check` in ``--check-procs`` child processes within ``--check-timeout-s`` (beside one :func:`prewarm`
    process); merges the parts into ``...-accuracy.csv``; {variant: (cases, failures)}, a shard that did not finish
    (hang, crash) counting as failures of every variant."""
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.fileio import write_csv_atomic

    procs = min(args.check_procs, args.check)
    me = [sys.executable, str(SCRIPT), "--out", str(args.out), "--no-time", "--timeline-cells", ""]

    def run(cmd: list[str], what: str) -> bool:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-800:] + (p.stderr[-1500:] if p.returncode else ""), flush=True)
            return p.returncode == 0
        except subprocess.TimeoutExpired:
            print(f"[{what}] timed out after {args.check_timeout_s:.0f}s (hang?)", flush=True)
            args.check_hung = True
            return False

    with ThreadPoolExecutor(max_workers=procs + 1) as ex:
        warm = ex.submit(run, me + ["--inline-prewarm", "--check", "0"], "prewarm")
        oks = list(ex.map(lambda r: run(me + ["--inline-check", f"--tag={args.tag}", "--check", str(args.check),
                                              "--check-seed", str(args.check_seed), "--check-shard",
                                              f"{r}/{procs}"], f"check shard {r}"), range(procs)))
        print(f"[prewarm] {'ok' if warm.result() else 'FAILED'}", flush=True)
    rows: list[dict[str, str]] = []
    for r in range(procs):
        part = args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}-accuracy-part{r}.csv"
        if part.exists():
            with open(part, newline="") as f:
                rows += list(csv.DictReader(f))
            part.unlink()
    if rows:
        write_csv_atomic(args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}-accuracy.csv", rows)
    counts = check_counts(rows)
    if not all(oks):  # a shard that hung or crashed: its cases count as failed for every variant
        counts = {v: (n, f + 1) for v, (n, f) in counts.items()} or {v: (0, 1) for v in CHECK_VARIANTS}
    print(f"[check] {len(rows)} checks from {sum(oks)}/{procs} shards: {counts}", flush=True)
    return counts


def _result_rows(cases: list[dict[str, Any]], sets: list, seed: int, shape: str, h: int, n: int, nt: int
                 ) -> list[dict[str, Any]]:
    """Rows (``COLS``) of one shape's cases after ``timed_rounds`` (``cases[0]`` is cuDNN)."""
    from entry_regress import paired

    base, rows = cases[0], []
    for c in cases:
        if not c["ms"]:
            continue
        ms = sorted(c["ms"])
        ref = next((e for e in cases if e["variant"] == BASE and e["dt"] == c["dt"]), None)
        rel = paired(c["ms"], ref["ms"]) if ref is not None and ref["ms"] and c["variant"] != BASE and c is not base \
            else ("", "", "")
        rat = paired([c["dens"] * b for b in base["ms"]], c["ms"])
        mhz = sorted(c.get("mhz") or [])
        r = dict(shape=shape, H=h, N=n, n_text=nt, density_target=c["dt"], density=round(c["dens"], 5),
                 variant=c["variant"], config=c["cfg"], ms=round(ms[len(ms) // 2], 4), ms_min=round(ms[0], 4),
                 ms_max=round(ms[-1], 4), **{k: (round(x, 4) if isinstance(x, float) else x) for k, x in
                                             zip(("rel_entry", "rel_entry_min", "rel_entry_max"), rel, strict=True)},
                 ratio_vs_cudnn=round(rat[0], 4), ratio_min=round(rat[1], 4), ratio_max=round(rat[2], 4),
                 rounds=len(ms), reps=c["reps"], warm=c.get("warm", ""), rows=c["stats"].get("rows", ""),
                 rows_per_sm=c["stats"].get("rows_per_sm", ""),
                 exec_tiles_per_row=c["stats"].get("exec_tiles_per_row", ""), plan_makespan_over_mean=c.get("pm", ""),
                 pool_rows=c.get("pool", ""), static_makespan_over_mean=c.get("spm", ""),
                 sm_mhz_nvml_median=mhz[len(mhz) // 2] if mhz else "", sm_mhz_eff=c.get("sm_mhz_eff", ""),
                 timing=(f"CUDA graph ({len(sets)} input set(s)), {len(ms)} interleaved rounds in a random order per "
                         f"round (seed {seed}) x {c['reps']} timed replays after {c.get('warm', 0)} untimed, events"),
                 statistic="median over rounds (min, max); rel_entry = t / t_entry paired per round; "
                           "ratio = density * t_cuDNN / t per round")
        rows.append(r)
        print(f"[time] {shape:<22} d={c['dt']:<5} {c['variant']:<9} {r['ms']:9.3f} ms  rel {r['rel_entry']!s:<6} "
              f"({r['rel_entry_min']}-{r['rel_entry_max']})  x{r['ratio_vs_cudnn']}  {r['sm_mhz_nvml_median']} MHz",
              flush=True)
    return rows


def time_shapes(args: argparse.Namespace, meta: dict[str, str]) -> Path:
    """Paired interleaved graph timing (cuDNN + the variants at every density of a shape in the same rounds)."""
    import torch
    from bench_kernels import NvmlClock, make_qkv, sdpa, timed_rounds
    from entry_regress import build_index, row_stats
    from gluon_m64_probe import densities_for

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    path = args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}.csv"
    clock = NvmlClock()
    clock = clock if clock.ok else None
    t0 = time.perf_counter()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + ["M", "gran_n"] + list(meta), extrasaction="ignore")
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
            keep = []
            for dt_ in densities_for(args, (h, nv, nt)):
                idx = build_index(h, nv, nt, dt_, "cuda")
                st = row_stats(idx, sms)
                plans = make_plans(idx)
                keep.append((idx, plans))
                for v in args.variant_list:
                    pl = plans["entry" if v in ("entry", "entry_ctl") else v]
                    cfg = ("fgattn.fg_attention, packaged table (gluon list, tma_sel)" if v in ("entry", "entry_ctl")
                           else f"fgattn.gluon_fg_dyntail ({pl.schedule}, {pl.programs} programs, {pl.n_pool} pool rows)")
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=idx.density(n), stats=st, cfg=cfg,
                                      pm=f"{pl.makespan / pl.mean_load:.4f}",
                                      pool=getattr(pl, "n_pool", ""),
                                      spm=(f"{pl.static_makespan / pl.mean_load:.4f}" if hasattr(pl, "n_pool") else ""),
                                      fn=lambda q, k, v_, idx=idx, name=v, o=obuf, pls=plans: run_variant(
                                          name, q, k, v_, idx, o, pls)))
            torch.cuda.synchronize()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si, clock=clock)
            for r in _result_rows(cases, sets, args.seed + si, shape, h, n, nt):
                w.writerow({**r, "M": M, "gran_n": G, **meta})
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s", flush=True)
            cases.clear()
            del sets, obuf, keep
            torch.cuda.empty_cache()
    return path


def timeline_cells(args: argparse.Namespace, meta: dict[str, str]) -> Path | None:
    """T's level-1 timeline of the packaged kernel and of ``dyn`` at ``--timeline-cells``: per recorded launch and
    program the span (cycles) and rows run; the slowest / mean program span per launch.  One CSV."""
    import numpy as np
    import torch
    from bench_kernels import make_qkv
    from entry_regress import build_index
    from fgattn import timeline as tl
    from fgattn.gluon_fg_dyntail import fg_attention_gluon_dyntail

    from fgsim.fileio import write_csv_atomic

    if not args.tl_cells:
        return None
    rows = []
    for h, nv, nt, dt_ in args.tl_cells:
        shape = f"H{h} N{nv}" + (f"+{nt}text" if nt else "") + f" D{D}"
        n = nv + nt
        (q, k, v), = make_qkv(1, h, n, D, 1)
        idx = build_index(h, nv, nt, dt_, "cuda")
        plans = make_plans(idx)
        outs = {}
        for name in ("list", "dyn"):
            pl = plans["entry" if name == "list" else "dyn"]
            buf = tl.new_buffer(pl.programs)
            o = torch.empty_like(q)
            for rep in range(args.timeline_reps + 1):  # launch 0: warm-up (compiles, L2), not recorded
                buf.fill_(-1)
                if name == "list":
                    tl.fg_attention_timeline(q, k, v, idx, buf, plan=pl, level=1, out=o)
                else:
                    fg_attention_gluon_dyntail(q, k, v, idx, plan=pl, out=o, timeline=buf, timeline_level=1)
                torch.cuda.synchronize()
                if rep == 0:
                    continue
                a = buf.cpu().numpy()
                hdr = a[:, tl.CAP, 0]
                span = (hdr[:, tl.HEADER_SLOTS["clk_end"]] - hdr[:, tl.HEADER_SLOTS["clk_start"]]).astype(float)
                ns = (hdr[:, tl.HEADER_SLOTS["gt_end"]] - hdr[:, tl.HEADER_SLOTS["gt_start"]]).astype(float)
                rows_run = [int((a[p, :tl.CAP, 0, 0] >= 0).sum()) for p in range(a.shape[0])]
                smid = hdr[:, SMID_SLOT]  # -1: a kernel without D3's %smid mark
                dec = tl.decompose(buf) or {}
                for p in range(a.shape[0]):
                    rows.append(dict(cell=f"{shape} d {dt_}", variant=name, launch=rep, program=p,
                                     smid=int(smid[p]), span_cycles=int(span[p]), span_ns=int(ns[p]),
                                     rows_recorded=rows_run[p],
                                     slowest_over_mean=round(float(span.max() / span.mean()), 4),
                                     tail_share=round(float((span.max() - span.mean()) / span.max()), 4),
                                     tiles_share=round(dec.get("tiles", float("nan")) / dec["span_max"], 4) if dec else "",
                                     **meta))
                print(f"[timeline] {shape} d {dt_} {name} launch {rep}: slowest/mean program span "
                      f"{span.max() / span.mean():.3f}, tail share {(span.max() - span.mean()) / span.max():.3f}, "
                      f"span max {span.max():.0f} cycles, cv {np.std(span) / np.mean(span):.3f}", flush=True)
            outs[name] = o
        print(f"[timeline] {shape} d {dt_}: dyn vs list max |diff| "
              f"{float((outs['dyn'].float() - outs['list'].float()).abs().max()):.3g}", flush=True)
    path = args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}-timeline.csv"
    write_csv_atomic(path, rows, list(rows[0]))
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.analyze is not None:
        analyze(args.analyze)
        return 0
    if args.dry_run:
        from gluon_m64_probe import densities_for
        from ws2_list_probe import check_cases

        print(json.dumps(dict(shapes={f"{h}x{nv}+{nt}": densities_for(args, (h, nv, nt))
                                      for h, nv, nt in args.shape_list}, variants=args.variant_list,
                              rounds=args.rounds, check=args.check, check_seed=args.check_seed,
                              check_procs=args.check_procs, time=not args.no_time, out=str(args.out), tag=args.tag,
                              budget_s=args.budget_s, seed=args.seed, timeline_cells=args.tl_cells,
                              rule=dict(control_geo=CONTROL_GEO_BAND, max_rel=MAX_REL, low_d=LOW_D,
                                        low_geo_max=LOW_GEO_MAX, min_check=MIN_CHECK),
                              first_cases=check_cases(min(args.check, 2), args.check_seed))))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("dyntail_probe: no CUDA device (use --dry-run or --analyze here)", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    if args.inline_check:
        return 0 if check(args, meta) else 1
    if args.inline_prewarm:
        prewarm()
        return 0
    counts = None
    if args.check:
        counts = check_in_processes(args, meta)
        bad = {v: c for v, c in counts.items() if c[1]}
        print(f"[check] {'passed' if not bad else 'FAILED ' + str(bad)} {time.perf_counter() - t0:.1f}s", flush=True)
    if getattr(args, "check_hung", False) and not args.time_anyway:
        print("[probe] a check shard hung: no timing (a hang in the timing process would lose the call)", flush=True)
        args.no_time = True
    if not args.no_time:
        path = time_shapes(args, meta)
        print(f"[probe] timing done {time.perf_counter() - t0:.1f}s", flush=True)
        try:
            timeline_cells(args, meta)
        except Exception as e:  # noqa: BLE001 (the timeline is evidence, not the rule)
            print(f"[timeline] failed: {type(e).__name__}: {e}"[:500], flush=True)
        analyze(path)
    print(f"[probe] done {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
