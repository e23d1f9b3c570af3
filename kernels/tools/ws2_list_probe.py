"""The adopted Gluon ws2 fg entry with a list-scheduled row plan (``fgattn.gluon_fg_list``) against the table entry
(static walk) and cuDNN SDPA.

Issue 12, session 11, helper G2 (kernels/NOTES.md, "Session 11 research: list-scheduled ws2 (helper G2)")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/ws2_list_probe.py --out $OUT          # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/ws2_list_probe.py --dry-run           # any machine
    PYTHONPATH=.:kernels:validation python3 kernels/tools/ws2_list_probe.py --plan-stats        # CPU: plan figures
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/ws2_list_probe.py --offline-compile

Variants: ``entry`` = ``fgattn.fg_attention`` with the launch table's fg D128 M128 g1 entry (Gluon ws2, pipeline
1, static walk over ``FgIndex.order``); ``list`` = :func:`fgattn.gluon_fg_list.fg_attention_gluon_list` on
:func:`~fgattn.gluon_fg_list.plan_ws2_list` (greedy list scheduling in launch order, row cost c_row 3 + tiles);
``walk_ctl`` = the same new kernel on the walk plan (the entry's rows per program: isolates the schedule from the
kernel).  Check (``--check N``): N random cases (B 1-2, H 1-4, odd and even N 65-3,001, 0 / 77 / 300 text tokens,
window or random masks at d 0.01-1, one query block emptied and one made full, bf16 / fp16, bhnd / bnhd, sm_scale
default or 0.05, programs 1 / 3 / 7 / all) in a child process with a timeout, against
``fgattn.reference_attention`` (float64): relative Frobenius error <= 1e-2, no NaN (output poisoned first), the
emptied block zero.  Timing: the run-9 sweep problems (``entry_regress.build_index``: window masks seeded
int(1000 d) + 7, 512 text tokens by ``with_text``), CUDA-graph replay, ``--rounds`` interleaved rounds in a fresh
random order per round (``bench_kernels.timed_rounds``), cuDNN in the same rounds, ratios paired per round
(``entry_regress.case_rows``), SM clock sampled by nvidia-smi during the rounds.  ``--ncu``: Nsight Compute of
entry and list at ``--ncu-cell`` (L2 hit rate, DRAM bytes).
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

D, M, G = 128, 128, 1
VARIANTS = ("entry", "list", "walk_ctl")
# the random check cases and per-shape densities are the M64 probe's (one generator for both probes' checks)
from gluon_m64_probe import (  # noqa: E402,F401
    CHECK_NS,
    check_case,
    check_cases,
    densities_for,
    shape_density_items,
)
from gluon_m64_probe import build_case as m64_build_case  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="12x32760,12x32760+512,40x75600", help="HxN[+TEXT], comma-separated")
    ap.add_argument("--densities", default="0.02,0.1,0.5", help="density targets, comma-separated")
    ap.add_argument("--shape-densities", default="40x75600:0.02/0.1",
                    help="per-shape density lists overriding --densities, e.g. 40x75600:0.02/0.1")
    ap.add_argument("--natural", default="", metavar="HxN[+TEXT]:D1/D2,...",
                    help="extra timed problems whose index keeps the natural row order (no launch order)")
    ap.add_argument("--variants", default="entry,list,walk_ctl", help=f"comma-separated of {list(VARIANTS)}")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=20.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=91, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=90.0, help="skip later shapes after this many timing seconds")
    ap.add_argument("--check", type=int, default=120, metavar="N", help="random check cases (0: none)")
    ap.add_argument("--check-seed", type=int, default=9101, help="seed of the random check cases")
    ap.add_argument("--check-timeout-s", type=float, default=90.0, help="check child process timeout")
    ap.add_argument("--check-procs", type=int, default=8,
                    help="check child processes (cases grouped by Triton specialisation, groups spread over the "
                         "processes: each specialisation compiles once, the groups in parallel)")
    ap.add_argument("--inline-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-shard", default="0/1", help=argparse.SUPPRESS)  # R/P: shard R of assign_shards(P)
    ap.add_argument("--no-time", action="store_true", help="skip the timing")
    ap.add_argument("--tag", default="", help="file name suffix (write --tag=-x)")
    ap.add_argument("--ncu", action="store_true", help="after the timing: ncu of entry and list at --ncu-cell")
    ap.add_argument("--ncu-cell", default="12x32760:0.5", help="HxN[+TEXT]:DENSITY of the --ncu launches")
    ap.add_argument("--ncu-timeout-s", type=float, default=45.0, help="wall limit of the ncu run")
    ap.add_argument("--ncu-driver", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--plan-stats", action="store_true",
                    help="no timing: planned makespan / mean and heads in flight of walk vs list on the timing masks")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--offline-compile", action="store_true", help="compile for sm_90 without a GPU, SASS figures")
    a = ap.parse_args(argv)
    from entry_regress import parse_shapes

    try:
        a.shape_list = parse_shapes(a.shapes)
        a.density_list = [float(x) for x in a.densities.split(",")]
    except ValueError as e:
        ap.error(str(e) if "shapes" in str(e) else f"--densities: {a.densities!r} is not a comma-separated list")
    if any(not 0 < x <= 1 for x in a.density_list):
        ap.error(f"--densities: {a.densities!r} must lie in (0, 1]")
    a.per_shape = dict(shape_density_items(ap, "--shape-densities", a.shape_densities))
    a.natural_list = shape_density_items(ap, "--natural", a.natural)
    shp, _, dd = a.ncu_cell.partition(":")
    try:
        a.ncu_shape, a.ncu_density = parse_shapes(shp)[0], float(dd)
    except ValueError:
        ap.error(f"--ncu-cell: bad value {a.ncu_cell!r} (want HxN[+TEXT]:DENSITY)")
    a.variant_list = a.variants.split(",")
    bad = [v for v in a.variant_list if v not in VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad} (known: {list(VARIANTS)})")
    if "entry" not in a.variant_list and not a.no_time:
        ap.error("--variants: the timing pairs every variant with 'entry'; include it")
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
    if not (a.dry_run or a.offline_compile or a.plan_stats) and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


def spec_key(c: dict[str, Any]) -> tuple:
    """What Triton specialises a check case's launches on, conservatively (dtype; integer arguments equal to 1 or
    divisible by 16: heads, sequence length, query blocks, rows): cases with equal keys reuse one compile."""
    n = c["n"] + c["text"]
    qb = -(-n // M)
    rows = c["b"] * c["h"] * qb
    return (c["dtype"], c["h"] == 1, n % 16 == 0, qb == 1, qb % 16 == 0, rows == 1, rows % 16 == 0)


def assign_shards(cases: list[dict[str, Any]], procs: int) -> list[int]:
    """Shard of each case: whole :func:`spec_key` groups, largest first, each to the shard with the fewest cases
    (so each specialisation compiles in one process only, and the shards stay balanced)."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(cases):
        groups.setdefault(spec_key(c), []).append(i)
    load, out = [0] * procs, [0] * len(cases)
    for members in sorted(groups.values(), key=lambda m: (-len(m), m[0])):
        r = min(range(procs), key=lambda k: (load[k], k))
        load[r] += len(members)
        for i in members:
            out[i] = r
    return out


def plan_stats(args: argparse.Namespace, sms: int = 132) -> list[dict[str, Any]]:
    """Walk vs list plans on the timing masks (CPU if no GPU): planned makespan / mean (tile units, c_row 3) and
    distinct heads in flight (time-averaged, peak; :func:`fgattn.gluon_fg_m64.inflight_heads`)."""
    import torch
    from entry_regress import build_index
    from fgattn import gluon_fg_m64 as g
    from fgattn.gluon_fg_list import C_ROW_TILES, plan_ws2_list

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for h, nv, nt in args.shape_list:
        for dt_ in densities_for(args, (h, nv, nt)):
            idx = build_index(h, nv, nt, dt_, dev)
            costs = g.row_costs(idx.counts().tolist(), 128, C_ROW_TILES)
            head = [r // idx.n_qblocks for r in range(idx.n_rows)]
            r = dict(shape=f"H{h} N{nv}+{nt}", density=dt_)
            for sch in ("walk", "list"):
                p = plan_ws2_list(idx, programs=sms, schedule=sch)
                st = p.start.tolist()
                flat = p.rows.tolist()
                lists = [[flat[st[i]:st[i + 1]]] for i in range(p.programs)]
                mean, peak = g.inflight_heads(costs, lists, head)
                r[f"{sch}_makespan_over_mean"] = round(p.makespan / p.mean_load, 4)
                r[f"{sch}_heads_inflight"] = round(mean, 2)
                r[f"{sch}_heads_peak"] = peak
            rows.append(r)
            print(json.dumps(r), flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ GPU side
def make_plan(name: str, idx, programs: int | None = None):
    """The row plan of ``name`` (None for the entry), built outside any graph capture."""
    import torch
    from fgattn.gluon_fg_list import plan_ws2_list

    if name == "entry":
        return None
    sms = torch.cuda.get_device_properties(0).multi_processor_count if torch.cuda.is_available() else 132
    return plan_ws2_list(idx, programs=min(programs or sms, sms), schedule="walk" if name == "walk_ctl" else "list")


def walk_entry():
    """The fg D128 M128 g1 Gluon entry as a walk (the packaged entry with ``schedule`` walk and, the row-end knob
    being list-only, the ``"stg"`` row end): the probe's ``entry``."""
    import dataclasses

    from fgattn.launch import launch_config

    e = launch_config("fg", "h200", M, M, G)
    knobs = {k: v for k, v in e.extra["gluon"].items() if k != "epilogue"}
    return dataclasses.replace(e, extra={**e.extra, "gluon": {**knobs, "schedule": "walk"}})


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of ``name`` writing ``out``."""
    import fgattn
    from fgattn.gluon_fg_list import fg_attention_gluon_list

    if name == "entry":  # the walk entry (table d370267; the packaged entry runs the list since session 13)
        return fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, layout=layout, out=out, sm_scale=sm_scale,
                                   config=walk_entry())
    return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan)


def build_case(c: dict[str, Any], device: str = "cuda"):
    """Tensors, M=128 index and the emptied query block of a check case (the M64 probe's generator)."""
    return m64_build_case(c, device, block_m=M)


def check(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """Float64 check of the non-entry variants (and the entry as a control) on the random cases; writes
    ``...-accuracy.csv``; True if all pass."""
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
        for name in args.variant_list:
            o = torch.full_like(q, float("nan"))
            msg, plan = "", None
            try:
                plan = make_plan(name, idx, c["programs"])
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
                             programs_run=getattr(plan, "programs", "") if name != "entry" else "",
                             rel_err=f"{err:.4e}", nan=nan, empty_block_zero=empty_ok, ok=ok, error=msg,
                             reference="fgattn.reference_attention (float64)", **meta))
            if not ok or ci < 2:
                print(f"[check] case {ci} {c} {name}: err {err:.3e} nan {nan} empty-zero {empty_ok} {msg}", flush=True)
    path = args.out / f"kernels-h200-{meta['date'][:10]}-ws2-list{args.tag}-accuracy-part{r_}.csv"
    write_csv_atomic(path, rows, list(rows[0]))
    errs: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        errs.setdefault((r["variant"], r["dtype"]), []).append(float(r["rel_err"]))
    for (vn, dt), es in sorted(errs.items()):
        print(f"[check] {vn} {dt}: {len(es)} cases, rel err median {sorted(es)[len(es) // 2]:.3e} max {max(es):.3e}",
              flush=True)
    print(f"[check] {len(rows)} checks, {sum(not r['ok'] for r in rows)} failed; wrote {path}", flush=True)
    return ok_all


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """:func:`check` in ``--check-procs`` child processes (:func:`assign_shards`), all within
    ``--check-timeout-s``; merges the parts into ``...-accuracy.csv``; True if every case of every variant passed
    and every part came back."""
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.fileio import write_csv_atomic

    procs = min(args.check_procs, args.check)

    def one(r: int) -> bool:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--inline-check", "--no-time",
               "--variants", args.variants, f"--tag={args.tag}", "--check", str(args.check), "--check-seed",
               str(args.check_seed), "--check-shard", f"{r}/{procs}"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-1500:] + (p.stderr[-2000:] if p.returncode else ""), flush=True)
            return p.returncode == 0
        except subprocess.TimeoutExpired:
            print(f"[check] shard {r}/{procs} timed out after {args.check_timeout_s:.0f}s", flush=True)
            return False

    with ThreadPoolExecutor(max_workers=procs) as ex:
        oks = list(ex.map(one, range(procs)))
    rows: list[dict[str, str]] = []
    for r in range(procs):
        part = args.out / f"kernels-h200-{meta['date'][:10]}-ws2-list{args.tag}-accuracy-part{r}.csv"
        if part.exists():
            with open(part, newline="") as f:
                rows += list(csv.DictReader(f))
            part.unlink()
    if rows:
        write_csv_atomic(args.out / f"kernels-h200-{meta['date'][:10]}-ws2-list{args.tag}-accuracy.csv", rows)
    bad = [r for r in rows if r.get("ok") != "True"]
    print(f"[check] {len(rows)} checks from {sum(oks)}/{procs} shards, {len(bad)} failed", flush=True)
    return all(oks) and not bad and len(rows) == args.check * len(args.variant_list)


def time_shapes(args: argparse.Namespace, meta: dict[str, str]) -> Path:
    """Paired interleaved graph timing (cuDNN + variants per shape and density); CSV with entry_regress columns."""
    import torch
    from bench_kernels import ClockSampler, make_qkv, sdpa, timed_rounds
    from entry_regress import COLS, build_index, case_rows, row_stats

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    path = args.out / f"kernels-h200-{meta['date'][:10]}-ws2-list{args.tag}.csv"
    clocks = ClockSampler(0.5)
    t0 = time.perf_counter()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + ["M", "gran_n", "plan_makespan_over_mean"] + list(meta),
                           extrasaction="ignore")
        w.writeheader()
        problems = [((h, nv, nt), densities_for(args, (h, nv, nt)), True) for h, nv, nt in args.shape_list]
        problems += [(key, vals, False) for key, vals in args.natural_list]
        for si, ((h, nv, nt), dens_targets, ordered) in enumerate(problems):
            shape = f"H{h} N{nv}" + (f"+{nt}text" if nt else "") + f" D{D}" + ("" if ordered else " natural")
            walk_over = "FgIndex.order" if ordered else "the natural row order"
            if time.perf_counter() - t0 > args.budget_s:
                print(f"[time] budget reached, skipping {shape}", flush=True)
                continue
            n = nv + nt
            sets = make_qkv(1, h, n, D, 1 if h * n * D * 6 > 1e9 else 2)
            obuf = torch.empty_like(sets[0][0])
            cases: list[dict[str, Any]] = [dict(variant="cudnn", kernel="sdpa_cudnn", fn=sdpa("cudnn"), dt=1.0,
                                                dens=1.0, stats={}, cfg="torch SDPA cuDNN backend")]
            pm: dict[tuple[str, float], str] = {}
            for dt_ in dens_targets:
                idx = build_index(h, nv, nt, dt_, "cuda", order=ordered)
                st = row_stats(idx, sms)
                for v in args.variant_list:
                    plan = make_plan(v, idx)
                    if plan is not None:
                        pm[(v, dt_)] = f"{plan.makespan / plan.mean_load:.4f}"
                    cfg = (f"launch table fg D128 M128 g1 (Gluon ws2 pipeline 1, static walk over {walk_over})"
                           if v == "entry" else f"fgattn.gluon_fg_list plan {plan.schedule} c_row 3 programs "
                           f"{plan.programs} planned makespan/mean {plan.makespan / plan.mean_load:.4f}")
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=idx.density(n), stats=st, cfg=cfg,
                                      fn=lambda q, k, v_, idx=idx, name=v, o=obuf, pl=plan: run_variant(
                                          name, q, k, v_, idx, o, plan=pl)))
            torch.cuda.synchronize()
            ts = time.time()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si)
            clk = clocks.window(ts, time.time())
            for r in case_rows(cases, sets, args.seed + si, shape, h, n, nt, clk, widths=(22, 9)):
                w.writerow({**r, "M": M, "gran_n": G,
                            "plan_makespan_over_mean": pm.get((r["variant"], r["density_target"]), ""), **meta})
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
            cases.clear()
            del sets
            torch.cuda.empty_cache()
    clocks.stop()
    return path


def ncu_driver(args: argparse.Namespace) -> None:
    """Under ncu: entry and list at --ncu-cell, each warmed twice, then one launch each between cudaProfilerStart /
    Stop."""
    import torch
    from entry_regress import build_index

    (h, nv, nt), dt_ = args.ncu_shape, args.ncu_density
    idx = build_index(h, nv, nt, dt_, "cuda")
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, h, nv + nt, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = torch.empty_like(q)
    names = ("entry", "list")
    plans = {n: make_plan(n, idx) for n in names}
    for n in names:
        for _ in range(2):
            run_variant(n, q, k, v, idx, out, plan=plans[n])
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for n in names:
        run_variant(n, q, k, v, idx, out, plan=plans[n])
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def run_ncu(args: argparse.Namespace) -> None:
    """ncu (SpeedOfLight, MemoryWorkloadAnalysis + L2 hit rate and DRAM bytes) over :func:`ncu_driver`; raw CSV
    and a short table under --out."""
    from ncu_persistent import find_ncu

    ncu = find_ncu()
    if ncu is None:
        print("[ncu] no ncu on this machine: skipped", flush=True)
        return
    rep = args.out / f"ncu-ws2-list{args.tag}"
    prog = [sys.executable, str(Path(__file__).resolve()), "--ncu-driver", "--ncu-cell", args.ncu_cell, "--out",
            str(args.out), "--no-time", "--check", "0"]
    metrics = ("gpu__time_duration.sum,lts__t_sector_hit_rate.pct,dram__bytes_read.sum,lts__t_sectors_op_read.sum,"
               "lts__throughput.avg.pct_of_peak_sustained_elapsed,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_"
               "peak_sustained_active,sm__cycles_elapsed.avg.per_second")
    cmd = [ncu, "--clock-control", "none", "--profile-from-start", "off", "-k", "regex:attn|gluon", "-f", "-o",
           str(rep), "--metrics", metrics] + prog
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.ncu_timeout_s)
        (args.out / f"ncu-ws2-list{args.tag}-run.log").write_text(f"rc={p.returncode}\n{p.stdout[-6000:]}\n"
                                                                   f"{p.stderr[-6000:]}")
    except subprocess.TimeoutExpired:
        print(f"[ncu] timed out after {args.ncu_timeout_s:.0f}s", flush=True)
        return
    rep_file = rep.with_suffix(".ncu-rep")
    if not rep_file.exists():
        print(f"[ncu] no report (rc {p.returncode}): {p.stderr[-800:]}", flush=True)
        return
    raw = subprocess.run([ncu, "-i", str(rep_file), "--page", "raw", "--csv"], capture_output=True, text=True,
                         timeout=60).stdout
    (args.out / f"ncu-ws2-list{args.tag}-raw.csv").write_text(raw)
    rows = list(csv.DictReader(raw.splitlines()))
    keys = metrics.split(",")
    for name, r in zip(("entry", "list"), [r for r in rows if r.get("Kernel Name")][-2:], strict=False):
        print(f"[ncu] {name} {r.get('Kernel Name', '')[:40]}: " + ", ".join(f"{m}={r.get(m, '')}" for m in keys),
              flush=True)
    print(f"[ncu] done {time.perf_counter() - t0:.1f}s", flush=True)


#: the adoption rule of the list schedule, fixed in kernels/NOTES.md (session 12) before its third measurement from the
#: two earlier calls' walk-control scatter (16 per-problem medians 0.977-1.024, SD 0.015): the control (the list
#: kernel running the entry's walk) is valid when its geo-mean over the launch-ordered problems lies in 1 +- 0.01 and
#: every problem's median in 1 +- 0.04; then list is eligible when its median is <= 1.02 x the entry at every
#: launch-ordered problem. Natural-order problems are reported, not judged (they decide how adoption plans them).
CONTROL_GEO_BAND = 0.01
CONTROL_CELL_BAND = 0.04
LIST_MAX_REL = 1.02


def rule_verdict(rows: list[dict[str, str]]) -> tuple[str, list[str]]:
    """('eligible' | 'not eligible' | 'void', reasons) of the list schedule from a timing CSV's rows."""
    ordered = [r for r in rows if r["variant"] in ("list", "walk_ctl") and not r["shape"].endswith("natural")]
    ctl = {(r["shape"], r["density_target"]): float(r["rel_entry"]) for r in ordered if r["variant"] == "walk_ctl"}
    lst = {(r["shape"], r["density_target"]): float(r["rel_entry"]) for r in ordered if r["variant"] == "list"}
    if not ctl or set(ctl) != set(lst):
        return "void", ["the timing lacks paired list / walk_ctl rows at some launch-ordered problem"]
    why = []
    geo = float(np.exp(np.mean(np.log(list(ctl.values())))))
    if abs(geo - 1.0) > CONTROL_GEO_BAND:
        why.append(f"walk_ctl geo-mean {geo:.3f} outside 1 +- {CONTROL_GEO_BAND}")
    why += [f"walk_ctl {v:.3f} at {k[0]} d {k[1]} outside 1 +- {CONTROL_CELL_BAND}"
            for k, v in ctl.items() if abs(v - 1.0) > CONTROL_CELL_BAND]
    if why:
        return "void", why
    slow = [f"list {v:.3f} > {LIST_MAX_REL} at {k[0]} d {k[1]}" for k, v in lst.items() if v > LIST_MAX_REL]
    return ("not eligible", slow) if slow else ("eligible", [f"walk_ctl geo-mean {geo:.3f}; list "
                                                             f"{min(lst.values()):.3f}-{max(lst.values()):.3f}"])


def summary(path: Path) -> None:
    """Per cell: entry ms and ×cuDNN, each variant's paired rel (min-max) and ×cuDNN."""
    rows = list(csv.DictReader(open(path, newline="")))
    cells: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for r in rows:
        if r["variant"] != "cudnn":
            cells.setdefault((r["shape"], r["density_target"]), {})[r["variant"]] = r
    for (shape, d), c in cells.items():
        e = c.get("entry", {})
        parts = [f"{v} {r['rel_entry']} ({r['rel_entry_min']}-{r['rel_entry_max']}) x{r['ratio_vs_cudnn']}"
                 for v, r in c.items() if v != "entry"]
        print(f"[sum] {shape} d {d}: entry {e.get('ms')} ms x{e.get('ratio_vs_cudnn')} | " + " | ".join(parts),
              flush=True)
    verdict, why = rule_verdict(rows)
    print(f"[rule] {verdict}: " + "; ".join(why), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        print(json.dumps(dict(shapes={f"{h}x{nv}+{nt}": densities_for(args, (h, nv, nt))
                                      for h, nv, nt in args.shape_list},
                              natural={f"{h}x{nv}+{nt}": v for (h, nv, nt), v in args.natural_list},
                              variants=args.variant_list, rounds=args.rounds, check=args.check,
                              check_seed=args.check_seed, time=not args.no_time, out=str(args.out), tag=args.tag,
                              ncu=args.ncu and args.ncu_cell, first_cases=check_cases(min(args.check, 2),
                                                                                      args.check_seed))))
        return 0
    if args.plan_stats:
        plan_stats(args)
        return 0
    if args.offline_compile:
        from compile_report import cuobjdump, loop_figures
        from fgattn.gluon_fg_list import compile_list_sm90

        for dt in ("bf16", "fp16"):
            k = compile_list_sm90(dt)
            res, sass = cuobjdump(k)
            print(json.dumps(dict(dtype=dt, smem_bytes=k.metadata.shared, res=" ".join(res.split()[-12:]),
                                  hgmma=sum("HGMMA" in ln for ln in sass.splitlines()), **(loop_figures(sass) or {}))))
        return 0
    if args.ncu_driver:
        ncu_driver(args)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("ws2_list_probe: no CUDA device (use --dry-run, --plan-stats or --offline-compile here)", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    if args.inline_check:
        return 0 if check(args, meta) else 1
    ok = True
    if args.check:
        ok = check_in_processes(args, meta)
        print(f"[check] {'passed' if ok else 'FAILED'} {time.perf_counter() - t0:.1f}s", flush=True)
    if not args.no_time and ok:
        path = time_shapes(args, meta)
        summary(path)
    if args.ncu and ok:
        run_ncu(args)
    print(f"[probe] done {time.perf_counter() - t0:.1f}s, check {'ok' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
