"""The fg row-end variants (``fgattn.gluon_fg_epilogue``) against the packaged list-scheduled entry kernel
(``fgattn.gluon_fg_list``) and cuDNN SDPA: float64 check, paired graph timing, the pre-registered rule, paired fits.

Issue 12, session 14, helper E (kernels/NOTES.md, "Session 14 research: fg row end (helper E)")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/epilogue_probe.py --out $OUT        # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/epilogue_probe.py --dry-run         # any machine
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/epilogue_probe.py --offline-compile
    python3 kernels/tools/epilogue_probe.py --analyze CSV                                       # CPU: rule + fits

Variants (all on :func:`fgattn.gluon_fg_list.plan_ws2_list`'s list plan of the same index, built before capture):
``list`` = :func:`fgattn.gluon_fg_list.fg_attention_gluon_list` (the kernel of the launch table's fg D128 M128 g1
entry; the baseline of every ratio); ``list_ctl`` = the same call timed as a second case (the control); ``pp`` =
the same kernel with :mod:`fgattn.gluon_fg`'s pingpong knob; ``e_*`` =
:func:`fgattn.gluon_fg_epilogue.fg_attention_gluon_epilogue` with ``VARIANT_KNOBS[name]``.  Check cases: the
random generator of ``ws2_list_probe`` / ``gluon_m64_probe`` (odd N, emptied and full blocks, 0 / 77 / 300 text
tokens, bf16 / fp16, both layouts, 1-all programs); timed problems: ``entry_regress.build_index``'s sweep masks.
Ratio machinery (``result_rows``, ``paired_fit``) is :mod:`rowpipe_probe`'s.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

from probe_cells import control_void_reasons, geo_mean, parse_cells  # noqa: E402
from rowpipe_probe import BASE, paired_fit, result_rows  # noqa: E402
from ws2_list_probe import D, G, M, assign_shards, build_case, check_cases, densities_for  # noqa: E402

E_VARIANTS = ("e_tma", "e_offs", "e_rcp", "e_all", "e_bc_pp")
VARIANTS = ("list", "list_ctl", "pp", "e_base") + E_VARIANTS
#: candidates the rule judges (everything but the baseline and its control)
CANDIDATES = ("pp",) + E_VARIANTS
#: the pre-registered rule (kernels/NOTES.md, session 14, written before the call).  The control (``list_ctl``) is
#: valid when its geo-mean over all timed cells lies in 1 +- CONTROL_GEO_BAND and every cell in 1 +- CONTROL_CELL_BAND.
#: A candidate is eligible when the control is valid, its float64 check had 0 failures, its paired median is
#: <= MAX_REL x list at every cell, its geo-mean over the cells with density <= LOW_D is <= LOW_GEO_MAX and its
#: median at the headline cell (HEADLINE) is <= HEADLINE_MAX.  Of several eligible ones the lowest geo-mean wins.
CONTROL_GEO_BAND = 0.01
CONTROL_CELL_BAND = 0.04
MAX_REL = 1.02
LOW_D = 0.1
LOW_GEO_MAX = 0.97
HEADLINE = ("H12 N32760 D128", 0.02)
HEADLINE_MAX = 0.95
TAG = "fg-epilogue"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="12x32760,12x32760+512,40x75600", help="HxN[+TEXT], comma-separated")
    ap.add_argument("--densities", default="0.02,0.05,0.1,0.5", help="density targets, comma-separated")
    ap.add_argument("--shape-densities", default="40x75600:0.02/0.05/0.1,12x32760+512:0.02/0.05/0.1",
                    help="per-shape density lists overriding --densities, e.g. 40x75600:0.02/0.1")
    ap.add_argument("--variants", default="list,list_ctl,pp,e_tma,e_offs,e_rcp,e_all,e_bc_pp",
                    help=f"timed, comma-separated of {list(VARIANTS)} (must include {BASE!r})")
    ap.add_argument("--check-variants", default="pp,e_offs,e_rcp,e_bc_pp,e_tma,e_all",
                    help="checked against float64, comma-separated, in this order (the ones with new "
                         "synchronisation last: a hang leaves the earlier variants' checks complete)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=12.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=141, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=75.0, help="skip later shapes after this many timing seconds")
    ap.add_argument("--check", type=int, default=300, metavar="N", help="random check cases (0: none)")
    ap.add_argument("--check-seed", type=int, default=1414, help="seed of the random check cases")
    ap.add_argument("--check-timeout-s", type=float, default=90.0, help="check child processes' wall limit")
    ap.add_argument("--check-procs", type=int, default=16, help="check child processes (spec_key groups)")
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
    a.variant_list = [v for v in a.variants.split(",") if v]
    a.check_list = [v for v in a.check_variants.split(",") if v]
    for flag, vals in (("--variants", a.variant_list), ("--check-variants", a.check_list)):
        bad = [v for v in vals if v not in VARIANTS]
        if bad:
            ap.error(f"{flag}: unknown {bad} (known: {list(VARIANTS)})")
    if BASE not in a.variant_list and not a.no_time:
        ap.error(f"--variants: every ratio is paired with {BASE!r}; include it")
    if "list_ctl" in a.check_list:
        ap.error("--check-variants: list_ctl is the list call itself (check 'list')")
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


def _rels(rows: list[dict[str, str]]) -> dict[str, dict[tuple[str, float], float]]:
    rel: dict[str, dict[tuple[str, float], float]] = {}
    for r in rows:
        if r["variant"] not in ("cudnn", BASE) and r.get("rel_list", "") != "":
            rel.setdefault(r["variant"], {})[(r["shape"], float(r["density_target"]))] = float(r["rel_list"])
    return rel


def rule_verdict(rows: list[dict[str, str]], failed: set[str] | None = None
                 ) -> tuple[str, dict[str, tuple[str, list[str]]], str | None]:
    """('valid' | 'void', {candidate: ('eligible' | 'not eligible', reasons)}, winner or None) from a timing CSV's
    rows (``rel_list`` column); ``failed``: candidates whose float64 check failed (or did not run)."""
    failed = failed or set()
    rel = _rels(rows)
    ctl = rel.get("list_ctl", {})
    if not ctl:
        return "void", {}, None
    why = control_void_reasons("list_ctl", ctl, CONTROL_GEO_BAND, CONTROL_CELL_BAND)
    if why:
        return "void", {"list_ctl": ("void", why)}, None
    out: dict[str, tuple[str, list[str]]] = {}
    geos: dict[str, float] = {}
    for c in CANDIDATES:
        rc = rel.get(c)
        if rc is None:
            continue
        bad = ["the float64 check failed or did not run"] if c in failed else []
        if set(rc) != set(ctl):
            bad.append("not timed at every cell")
        bad += [f"{v:.3f} > {MAX_REL} at {k[0]} d {k[1]}" for k, v in sorted(rc.items()) if v > MAX_REL]
        low = [v for k, v in rc.items() if k[1] <= LOW_D]
        lg = geo_mean(low) if low else float("nan")
        if not low or not lg <= LOW_GEO_MAX:
            bad.append(f"geo-mean {lg:.3f} over the d <= {LOW_D} cells > {LOW_GEO_MAX}")
        hv = rc.get(HEADLINE)
        if hv is None or hv > HEADLINE_MAX:
            bad.append(f"{hv} at {HEADLINE[0]} d {HEADLINE[1]} > {HEADLINE_MAX}")
        if bad:
            out[c] = ("not eligible", bad)
        else:
            geos[c] = lg
            out[c] = ("eligible", [f"{min(rc.values()):.3f}-{max(rc.values()):.3f}, geo-mean at d <= {LOW_D} "
                                   f"{lg:.3f}, headline {hv:.3f}"])
    winner = min(geos, key=lambda c: (geos[c], c)) if geos else None
    return "valid", out, winner


def check_failures(path: Path) -> set[str] | None:
    """The candidates that failed or lack float64 checks in the accuracy CSV beside timing CSV ``path``
    (``<stem>-accuracy.csv``; every candidate needs a row for each case in the file); None without that file."""
    acc = path.with_name(path.stem + "-accuracy.csv")
    if not acc.is_file():
        return None
    rows = list(csv.DictReader(open(acc, newline="")))
    return failed_variants(rows, list(CANDIDATES), len({r["case"] for r in rows}))


def analyze(path: Path, failed: set[str] | None = None) -> tuple[str, dict, str | None]:
    """Print per cell each variant's paired rel (min-max) and ×cuDNN, the paired fits and the verdict (``failed``:
    the candidates whose check failed; default from the accuracy CSV beside ``path``, if there is one)."""
    rows = list(csv.DictReader(open(path, newline="")))
    if failed is None:
        failed = check_failures(path)
        print(f"[check] from {path.stem}-accuracy.csv: failed or unchecked {sorted(failed)}" if failed is not None
              else "[check] no accuracy CSV beside the timing CSV: the verdict ignores the check", flush=True)
    for r in rows:
        if r["variant"] != "cudnn":
            print(f"[sum] {r['shape']} d {r['density_target']} {r['variant']:<9} {r['ms']} ms rel {r['rel_list']} "
                  f"({r['rel_list_min']}-{r['rel_list_max']}) x{r['ratio_vs_cudnn']}", flush=True)
    for v in sorted({r["variant"] for r in rows} - {"cudnn", BASE}):
        for shp in [None] + sorted({r["shape"] for r in rows}):
            f = paired_fit(rows, v, shp)
            if f is not None:
                print(f"[fit] {v:<9} {shp or 'all cells'}: " + ", ".join(f"{k} {x:.3f}" for k, x in f.items()),
                      flush=True)
    rel = _rels(rows)
    for v, rc in sorted(rel.items()):
        low = [x for k, x in rc.items() if k[1] <= LOW_D]
        print(f"[geo] {v:<9} all {geo_mean(list(rc.values())):.3f}, d <= {LOW_D} {geo_mean(low) if low else float('nan'):.3f}",
              flush=True)
    ctl, verdicts, winner = rule_verdict(rows, failed)
    for c, (vd, why) in verdicts.items():
        print(f"[rule] {c}: {vd}: " + "; ".join(why), flush=True)
    print(f"[rule] control {ctl}; winner {winner}", flush=True)
    return ctl, verdicts, winner


def row_end_figures(sass: str) -> dict[str, int] | None:
    """The first consumer row loop in ``cuobjdump -sass`` text (the first backward branch whose span holds >= 24
    HGMMA): its instructions, and from its last ``WARPGROUP.DEPBAR.LE gsb0, 0x0`` (the last PV's wait) to the back
    edge (the row end): instructions, STG, STSM, LDG, MUFU.RCP, FSEL, FMUL.  None without such a loop."""
    ins = []
    for ln in sass.splitlines():
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);", ln)
        if m:
            ins.append((int(m.group(1), 16), m.group(2).strip()))
    for a, t in ins:
        b = re.search(r"BRA\s.*?0x([0-9a-f]+)", t)
        if not b or int(b.group(1), 16) >= a:
            continue
        body = [u for x, u in ins if int(b.group(1), 16) <= x <= a]
        if sum("HGMMA" in u for u in body) < 24:
            continue
        k = max(j for j, u in enumerate(body) if "WARPGROUP.DEPBAR.LE gsb0, 0x0" in u)
        tail = body[k:]

        def n(op: str, tail: list[str] = tail) -> int:
            return sum(1 for u in tail if re.match(rf"(@!?U?P\w+\s+)?{op}\b", u))

        return dict(row_loop_insts=len(body), row_end_insts=len(tail), row_end_stg=n("STG"), row_end_stsm=n("STSM"),
                    row_end_ldg=n("LDG"), row_end_rcp=n("MUFU.RCP"), row_end_fsel=n("FSEL"), row_end_fmul=n("FMUL"))
    return None


# ------------------------------------------------------------------------------------------------ GPU side
def make_plan(idx, programs: int | None = None):
    """The list plan of ``idx`` (every variant runs it), built outside any graph capture."""
    import torch
    from fgattn.gluon_fg_list import plan_ws2_list

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return plan_ws2_list(idx, programs=min(programs or sms, sms))


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of ``name`` writing ``out``."""
    from fgattn.gluon_fg_epilogue import (
        VARIANT_KNOBS,
        fg_attention_gluon_epilogue,
        fg_attention_gluon_list_pp,
    )
    from fgattn.gluon_fg_list import fg_attention_gluon_list

    if name in ("list", "list_ctl"):
        return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan)
    if name == "pp":
        return fg_attention_gluon_list_pp(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan)
    return fg_attention_gluon_epilogue(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                       **VARIANT_KNOBS[name])


def _part(args: argparse.Namespace, meta: dict[str, str], r: int) -> Path:
    return args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}-accuracy-part{r}.csv"


def check(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """Float64 check of ``--check-variants`` on this shard's random cases, variant by variant (a variant that hangs
    leaves the earlier ones' rows complete), the part CSV rewritten after each variant; True if all pass."""
    import fgattn
    import torch

    from fgsim.fileio import write_csv_atomic

    rows, ok_all = [], True
    cases = check_cases(args.check, args.check_seed)
    r_, p_ = args.shard
    shard = assign_shards(cases, p_)
    print(f"[check] {len(cases)} cases, seed {args.check_seed}, shard {r_}/{p_}: {shard.count(r_)} cases", flush=True)
    built = []
    for ci, c in enumerate(cases):
        if shard[ci] == r_:
            q, k, v, idx, emp = build_case(c)
            ref = fgattn.reference_attention(q, k, v, idx, layout=c["layout"], sm_scale=c["sm_scale"])
            built.append((ci, c, q, k, v, idx, emp, ref, make_plan(idx, c["programs"])))
    for name in args.check_list:
        for ci, c, q, k, v, idx, (eb, eh, eq), ref, plan in built:
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
            if not ok:
                print(f"[check] FAIL case {ci} {c} {name}: err {err:.3e} nan {nan} empty-zero {empty_ok} {msg}",
                      flush=True)
        if rows:
            write_csv_atomic(_part(args, meta, r_), rows, list(rows[0]))
    errs: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        errs.setdefault((r["variant"], r["dtype"]), []).append(float(r["rel_err"]))
    for (vn, dt), es in sorted(errs.items()):
        print(f"[check] {vn} {dt}: {len(es)} cases, rel err median {sorted(es)[len(es) // 2]:.3e} max {max(es):.3e}",
              flush=True)
    print(f"[check] {len(rows)} checks, {sum(not r['ok'] for r in rows)} failed", flush=True)
    return ok_all


def failed_variants(rows: list[dict[str, str]], variants: list[str], n_cases: int) -> set[str]:
    """The checked variants that failed: a row not ok, or fewer than ``n_cases`` rows (a shard that hung or died)."""
    n: dict[str, int] = {}
    bad = set()
    for r in rows:
        n[r["variant"]] = n.get(r["variant"], 0) + 1
        if r.get("ok") != "True":
            bad.add(r["variant"])
    return bad | {v for v in variants if n.get(v, 0) != n_cases}


#: (H, N) of the tiny bf16 problems that compile the timed problems' specialisations before the timing: (N, query
#: blocks, rows) divisible by 16 or not as N 32760 (no, yes, yes), 75600 (yes, no, no), 32760 + 512 (no, no, yes)
PREWARM_SHAPES = ((2, 2047), (2, 2064), (2, 3070))


def prewarm(name: str) -> None:
    """Launch variant ``name`` on :data:`PREWARM_SHAPES` (bf16, bhnd) so its kernels are in the Triton cache."""
    import fgattn
    import torch

    for h, n in PREWARM_SHAPES:
        mask = torch.rand(1, h, -(-n // M), n, device="cuda") < 0.1
        idx = fgattn.build_index(mask, block_m=M, gran_n=G, order=True)
        q, k, v = (torch.randn(1, h, n, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        run_variant(name, q, k, v, idx, torch.empty_like(q), plan=make_plan(idx))
    torch.cuda.synchronize()


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> set[str]:
    """:func:`check` in ``--check-procs`` child processes within ``--check-timeout-s`` (beside them one
    :func:`prewarm` process per timed variant); merges the parts into ``...-accuracy.csv``; returns the variants
    that failed a case, lack checks (a shard that hung or died) or whose prewarm failed (never timed)."""
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.fileio import write_csv_atomic

    procs = min(args.check_procs, args.check)
    warm = [] if args.no_time else [v for v in args.variant_list if v != "list_ctl"]
    me = str(Path(__file__).resolve())

    def run(cmd: list[str], what: str) -> bool:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-1500:] + (p.stderr[-2000:] if p.returncode else ""), flush=True)
            return p.returncode == 0
        except subprocess.TimeoutExpired:
            print(f"[check] {what} timed out after {args.check_timeout_s:.0f}s", flush=True)
            return False

    def one(r: int) -> bool:
        return run([sys.executable, me, "--out", str(args.out), "--inline-check", "--no-time", "--check-variants",
                    ",".join(args.check_list), "--variants", ",".join(args.variant_list), f"--tag={args.tag}",
                    "--check", str(args.check), "--check-seed", str(args.check_seed), "--check-shard", f"{r}/{procs}"],
                   f"shard {r}/{procs}")

    with ThreadPoolExecutor(max_workers=procs + len(warm)) as ex:
        wf = [ex.submit(run, [sys.executable, me, "--out", str(args.out), "--inline-prewarm", v, "--no-time",
                              "--check", "0"], f"prewarm {v}") for v in warm]
        oks = list(ex.map(one, range(procs)))
        print(f"[prewarm] {sum(f.result() for f in wf)}/{len(warm)} timed variants compiled", flush=True)
    rows: list[dict[str, str]] = []
    for r in range(procs):
        part = _part(args, meta, r)
        if part.exists():
            with open(part, newline="") as f:
                rows += list(csv.DictReader(f))
            part.unlink()
    if rows:
        write_csv_atomic(args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}-accuracy.csv", rows)
    bad = [r for r in rows if r.get("ok") != "True"]
    failed = failed_variants(rows, args.check_list, args.check)
    print(f"[check] {len(rows)} checks from {sum(oks)}/{procs} shards, {len(bad)} failed; failed or incomplete "
          f"variants {sorted(failed)}", flush=True)
    return failed | {v for v, f in zip(warm, wf, strict=True) if not f.result()}


def time_shapes(args: argparse.Namespace, meta: dict[str, str]) -> Path:
    """Paired interleaved graph timing (cuDNN + variants per shape and density), one CSV."""
    import torch
    from bench_kernels import ClockSampler, make_qkv, sdpa, timed_rounds
    from entry_regress import build_index, row_stats
    from rowpipe_probe import COLS

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    path = args.out / f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}.csv"
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
                           "list_ctl") else f"{v} (same plan)")
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


def offline_compile(variants: tuple[str, ...] = ("list", "pp", "e_base") + E_VARIANTS) -> list[dict[str, Any]]:
    """Each kernel variant compiled for sm_90 (bf16): registers, stack, shared memory, HGMMA, the tile loop's and
    the row end's figures (:func:`row_end_figures`)."""
    from compile_report import cuobjdump, loop_figures
    from fgattn.gluon_fg_epilogue import VARIANT_KNOBS, compile_epilogue_sm90, compile_list_pp_sm90
    from fgattn.gluon_fg_list import compile_list_sm90

    out = []
    for name in variants:
        t0 = time.time()
        if name == "list":
            k = compile_list_sm90("bf16")
        elif name == "pp":
            k = compile_list_pp_sm90("bf16")
        else:
            k = compile_epilogue_sm90("bf16", **VARIANT_KNOBS[name])
        res, sass = cuobjdump(k)
        lines = sass.splitlines()
        regs = re.search(r"REG:(\d+)", res)
        stack = re.search(r"STACK:(\d+)", res)
        r = dict(variant=name, regs=int(regs.group(1)) if regs else None, stack=int(stack.group(1)) if stack else None,
                 smem_bytes=k.metadata.shared, sass_insts=sum(1 for ln in lines if re.match(r"\s+/\*[0-9a-f]{4,}\*/", ln)),
                 hgmma=sum("HGMMA" in ln for ln in lines), stl=sum(" STL" in ln for ln in lines),
                 **(loop_figures(sass) or {}), **(row_end_figures(sass) or {}), compile_s=round(time.time() - t0, 1))
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
        print("epilogue_probe: no CUDA device (use --dry-run, --offline-compile or --analyze here)", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    t0 = time.perf_counter()
    if args.inline_check:
        return 0 if check(args, meta) else 1
    if args.inline_prewarm:
        prewarm(args.inline_prewarm)
        return 0
    print(json.dumps(meta), flush=True)
    failed: set[str] = set()
    if args.check and args.check_list:
        failed = check_in_processes(args, meta)
        print(f"[check] {'FAILED ' + str(sorted(failed)) if failed else 'passed'} {time.perf_counter() - t0:.1f}s",
              flush=True)
    failed |= {v for v in CANDIDATES if v not in args.check_list}  # unchecked: never eligible
    if not args.no_time:  # a variant that failed its check is not timed
        args.variant_list = [v for v in args.variant_list if v not in failed or v in (BASE, "list_ctl")]
        path = time_shapes(args, meta)
        analyze(path, failed)
    print(f"[probe] done {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
