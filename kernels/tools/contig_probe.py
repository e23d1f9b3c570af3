"""The Gluon ws2 CTA with TMA K/V loads (``fgattn.gluon_contig``) for dense and block-sparse attention against the
launch table's dense / block entries (tl kernels) and cuDNN SDPA.

Issue 12, session 13, helper D (kernels/NOTES.md, "Session 13 research: Gluon TMA dense/block (helper D)")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/contig_probe.py --out $OUT     # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/contig_probe.py --dry-run      # any machine
    PYTHONPATH=/path/to/triton-3.6:kernels:kernels/tools python3 kernels/tools/contig_probe.py --offline-compile

Variants: ``entry`` = the table's entry (``fgattn.dense_attention`` / ``fgattn.block_sparse_attention``, tl);
``ctl`` = the same entry captured a second time (the control: its paired ratio to ``entry`` is noise only);
``contig`` = :func:`fgattn.gluon_contig.contig_attention_gluon` with the fg entry's register split (216, 64);
``contig_r240`` = the same with (240, 24) (both consumer warpgroups at 240 registers, as FlashAttention-3);
``contig_pp`` = contig_r240 with FlashAttention-3's inter-warpgroup ping-pong (``gluon_fg`` named barriers).
Check (``--check N``): N random cases, each run dense and block-sparse (B 1-2, H 1-4, odd and even N 65-3,001,
0 / 77 / 300 text tokens, window or random masks at d 0.01-1 made into 128×128 block masks, one query block
emptied and one made full, launch-ordered or natural block index, bf16 / fp16, bhnd / bnhd, sm_scale default or
0.05, programs 1 / 3 / 7 / all) in child processes with a timeout, against ``fgattn.reference_attention``
(float64): relative Frobenius error <= 1e-2, no NaN (output poisoned first), the emptied block zero (block mode).
Timing: dense at each shape, block-sparse at ``--densities`` with the benchmark's block masks
(``bench_kernels.final_shape``: window masks seeded int(1000 d) + 7, 128-key tiles kept when any slice is, launch
order), CUDA-graph replay, ``--rounds`` interleaved rounds in a fresh random order per round, cuDNN in the same
rounds, ratios paired per round (``entry_regress.case_rows``), SM clock sampled by nvidia-smi during the rounds.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

D, M = 128, 128
VARIANTS = ("entry", "ctl", "contig", "contig_r240", "contig_pp")
#: the Gluon variants' knobs of fgattn.gluon_contig.contig_attention_gluon (pipeline 1 in all)
GLUON = {"contig": dict(regs=(216, 64)), "contig_r240": dict(regs=(240, 24)),
         "contig_pp": dict(regs=(240, 24), pingpong=True)}
CHECK_NS = (65, 127, 128, 129, 257, 1000, 1999, 2600, 3001)
STEM = "kernels-h200-{date}-gluon-contig"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="12x32760,40x75600", help="HxN, comma-separated")
    ap.add_argument("--densities", default="0.05,0.2,0.5", help="block-sparse density targets, comma-separated")
    ap.add_argument("--variants", default="entry,ctl,contig,contig_r240,contig_pp", help=f"comma-separated of {list(VARIANTS)}")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=20.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=131, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--check", type=int, default=64, metavar="N", help="random check cases (0: none)")
    ap.add_argument("--check-seed", type=int, default=1313, help="seed of the random check cases")
    ap.add_argument("--check-procs", type=int, default=16,
                    help="check child processes (per Gluon variant (procs - 4) / variants, the entry 4)")
    ap.add_argument("--check-timeout-s", type=float, default=100.0, help="check child process timeout")
    ap.add_argument("--check-shard", default="", help=argparse.SUPPRESS)  # R/P: cases i with i % P == R
    ap.add_argument("--check-only", default="", help=argparse.SUPPRESS)  # the one variant a check child runs
    ap.add_argument("--no-time", action="store_true", help="skip the timing")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--offline-compile", action="store_true", help="compile for sm_90 without a GPU, SASS figures")
    ap.add_argument("--summarize", nargs=2, type=Path, metavar=("TIMING_CSV", "ACCURACY_CSV"),
                    help="no GPU: the per-problem table and the rule's verdicts from a call's committed CSVs")
    a = ap.parse_args(argv)
    try:
        a.shape_list = [tuple(int(x) for x in s.split("x")) for s in a.shapes.split(",")]
        a.density_list = [float(x) for x in a.densities.split(",")]
    except ValueError:
        ap.error(f"--shapes {a.shapes!r} / --densities {a.densities!r}: want HxN,... and numbers")
    if any(len(s) != 2 or min(s) < 1 for s in a.shape_list):
        ap.error(f"--shapes: {a.shapes!r} must be HxN items with positive sizes")
    if any(not 0 < x < 1 for x in a.density_list):
        ap.error(f"--densities: {a.densities!r} must lie in (0, 1) (dense is always timed)")
    a.variant_list = a.variants.split(",")
    bad = [v for v in a.variant_list if v not in VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad} (known: {list(VARIANTS)})")
    if "entry" not in a.variant_list:
        ap.error("--variants: the timing pairs every variant with 'entry'; include it")
    if a.rounds < 3:
        ap.error(f"--rounds: {a.rounds} < 3 (paired medians need at least 3)")
    if a.check < 0 or a.check_procs < 1:
        ap.error(f"--check {a.check} must be >= 0 and --check-procs {a.check_procs} >= 1")
    if a.summarize:
        bad = [str(x) for x in a.summarize if not x.is_file()]
        if bad:
            ap.error(f"--summarize: no such file {bad[0]}")
    if not (a.dry_run or a.offline_compile or a.summarize) and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


# ------------------------------------------------------------------------------------------------ check
def check_cases(n: int, seed: int) -> list[dict[str, Any]]:
    """The ``n`` random check cases of ``seed`` (pure; every process builds the same list)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        nv = rng.choice(CHECK_NS)
        out.append(dict(b=rng.choice((1, 1, 2)), h=rng.randint(1, 4), n=nv,
                        text=rng.choice((0, 0, 77, 300)) if nv >= 600 else 0,
                        density=round(10 ** rng.uniform(-2, 0), 4), window=rng.random() < 0.5,
                        order=rng.random() < 0.7, dtype=rng.choice(("bf16", "fp16")),
                        layout=rng.choice(("bhnd", "bnhd")), sm_scale=rng.choice((None, None, 0.05)),
                        programs=rng.choice((1, 3, 7, None)), empty=rng.random(), full=rng.random(),
                        seed=rng.randrange(2**31)))
    return out


def build_case(c: dict[str, Any], device: str = "cuda"):
    """Tensors, 128×128 block index and the emptied query block (batch, head, block) of a check case."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    torch.manual_seed(c["seed"])
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[c["dtype"]]
    n = c["n"] + c["text"]
    if c["window"] and c["density"] < 0.9:
        mv = window_mask(c["b"], c["h"], c["n"], M, c["density"], device=device, seed=c["seed"] % 1000)
    else:
        mv = torch.rand(c["b"], c["h"], -(-c["n"] // M), c["n"], device=device) < c["density"]
    mask = with_text(mv, c["text"], M) if c["text"] else mv
    qb = mask.shape[2]
    tiles = torch.nn.functional.pad(mask, (0, (-n) % M)).reshape(c["b"], c["h"], qb, -1, M).any(-1)
    eb, eh, eq = (int(c["empty"] * x) % y for x, y in ((7, c["b"]), (13, c["h"]), (997, qb)))
    tiles[eb, eh, eq] = False
    if qb > 1:  # a full block row, never the emptied one
        tiles[0, 0, (eq + 1 + int(c["full"] * (qb - 1))) % qb] = True
    bidx = fgattn.block_index_from_mask(tiles, block_m=M, n_keys=n, order=c["order"])
    shp = (c["b"], c["h"], n, D) if c["layout"] == "bhnd" else (c["b"], n, c["h"], D)
    q, k, v = (torch.randn(*shp, device=device, dtype=dtype) for _ in range(3))
    return q, k, v, bidx, (eb, eh, eq)


def run_variant(name: str, q, k, v, bidx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None,
                programs: int | None = None):
    """One launch of ``name`` (dense when ``bidx`` is None) writing ``out``."""
    import fgattn
    from fgattn.gluon_contig import contig_attention_gluon

    if name in ("entry", "ctl"):
        if bidx is None:
            return fgattn.dense_attention(q, k, v, layout=layout, out=out, sm_scale=sm_scale)
        return fgattn.block_sparse_attention(q, k, v, bidx, layout=layout, out=out, sm_scale=sm_scale)
    return contig_attention_gluon(q, k, v, block_index=bidx, plan=plan, layout=layout, out=out, sm_scale=sm_scale,
                                  programs=programs, **GLUON[name])


def check(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """Float64 check of the variants (the entry as a control) on this shard's cases, dense and block; writes a part
    CSV; True if all pass."""
    import fgattn
    import torch

    from fgsim.fileio import write_csv_atomic

    r_, p_ = (int(x) for x in args.check_shard.split("/"))
    cases = check_cases(args.check, args.check_seed)
    rows, ok_all = [], True
    names = [args.check_only] if args.check_only else [v for v in args.variant_list if v != "ctl"]
    args.out.mkdir(parents=True, exist_ok=True)
    for ci, c in enumerate(cases):
        if ci % p_ != r_:
            continue
        q, k, v, bidx, (eb, eh, eq) = build_case(c)
        for mode, ix in (("dense", None), ("block", bidx)):
            ref = fgattn.reference_attention(q, k, v, ix, layout=c["layout"], sm_scale=c["sm_scale"])
            for name in names:
                o = torch.full_like(q, float("nan"))
                msg = ""
                try:
                    run_variant(name, q, k, v, ix, o, c["layout"], None, c["sm_scale"], c["programs"])
                    torch.cuda.synchronize()
                except Exception as e:  # noqa: BLE001
                    msg = f"{type(e).__name__}: {e}"[:300]
                nan = int(o.isnan().sum())
                err = float((o.double().nan_to_num(0.0) - ref).norm() / ref.norm().clamp_min(1e-30))
                rq = slice(eq * M, (eq + 1) * M)
                blk = o[eb, eh, rq] if c["layout"] == "bhnd" else o[eb, rq, eh]
                empty_ok = True if mode == "dense" else bool((blk == 0).all())
                ok = not msg and err <= 1e-2 and nan == 0 and empty_ok
                ok_all &= ok
                rows.append(dict(case=ci, mode=mode, **{k_: c[k_] for k_ in ("b", "h", "n", "text", "density",
                                                                            "window", "order", "dtype", "layout",
                                                                            "sm_scale", "programs", "seed")},
                                 block_density=round(bidx.density(c["n"] + c["text"]), 5) if ix is not None else 1.0,
                                 variant=name, rel_err=f"{err:.4e}", nan=nan, empty_block_zero=empty_ok, ok=ok,
                                 error=msg, reference="fgattn.reference_attention (float64)", **meta))
                if not ok or ci < 2:
                    print(f"[check] case {ci} {mode} {name}: err {err:.3e} nan {nan} empty-zero {empty_ok} {msg}",
                          flush=True)
    if rows:
        write_csv_atomic(args.out / f"{STEM.format(date=meta['date'][:10])}-accuracy-part{r_}.csv", rows,
                         list(rows[0]))
    print(f"[check] shard {r_}/{p_}: {len(rows)} checks, {sum(not r['ok'] for r in rows)} failed", flush=True)
    return ok_all


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> dict[str, bool]:
    """:func:`check` in child processes within ``--check-timeout-s``, each variant in its own processes (a hang or
    crash of one variant cannot void another's check): ``--check-procs`` shared out over the checked variants, the
    entry (a control) getting the remainder; merges the parts into ``...-accuracy.csv``; returns {variant: every
    check of it passed and every shard came back}."""
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.fileio import write_csv_atomic

    names = [v for v in args.variant_list if v != "ctl"]
    gluon = [v for v in names if v in GLUON]
    per = max(1, (args.check_procs - 4) // max(len(gluon), 1)) if "entry" in names else max(
        1, args.check_procs // max(len(gluon), 1))
    jobs = [(v, r, min(per, args.check)) for v in gluon for r in range(min(per, args.check))]
    if "entry" in names:
        ne = max(1, min(4, args.check))
        jobs += [("entry", r, ne) for r in range(ne)]
    stem = STEM.format(date=meta["date"][:10])

    def one(job: tuple[str, int, int]) -> bool:
        v, r, p_ = job
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out / v), "--no-time", "--variants",
               v if v == "entry" else f"entry,{v}", "--check-only", v, "--check", str(args.check), "--check-seed",
               str(args.check_seed), "--check-shard", f"{r}/{p_}"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-800:] + (p.stderr[-1500:] if p.returncode not in (0, 1) else ""), flush=True)
            return p.returncode in (0, 1)
        except subprocess.TimeoutExpired:
            print(f"[check] {v} shard {r}/{p_} timed out after {args.check_timeout_s:.0f}s", flush=True)
            return False

    with ThreadPoolExecutor(max_workers=len(jobs)) as ex:
        back = dict(zip(jobs, ex.map(one, jobs), strict=True))
    rows: list[dict[str, str]] = []
    for v, r, _ in jobs:
        part = args.out / v / f"{stem}-accuracy-part{r}.csv"
        if part.exists():
            with open(part, newline="") as f:
                rows += list(csv.DictReader(f))
            part.unlink()
    if rows:
        write_csv_atomic(args.out / f"{stem}-accuracy.csv", rows)
    ok = {}
    for v in names:
        mine = [r for r in rows if r["variant"] == v]
        ok[v] = all(b for j, b in back.items() if j[0] == v) and len(mine) == 2 * args.check and all(
            r["ok"] == "True" for r in mine)
        errs = sorted(float(r["rel_err"]) for r in mine if r["ok"] == "True")
        print(f"[check] {v}: {len(mine)} checks, {sum(r['ok'] != 'True' for r in mine)} failed, rel err median "
              f"{errs[len(errs) // 2] if errs else float('nan'):.3e} max {errs[-1] if errs else float('nan'):.3e}",
              flush=True)
    return ok


# ------------------------------------------------------------------------------------------------ timing
def block_index_for(h: int, n: int, dt: float, device: str = "cuda"):
    """The benchmark's block index at (H, N, density target): ``bench_kernels.final_shape``'s window mask (seed
    int(1000 d) + 7), 128-key tiles kept when any slice is, launch order."""
    import fgattn
    import torch
    from fgattn.masks import window_mask

    torch.manual_seed(int(dt * 1000) + 7)
    mask = window_mask(1, h, n, M, dt, device=device)
    tiles = torch.nn.functional.pad(mask, (0, (-n) % M)).reshape(1, h, mask.shape[2], -1, M).any(-1)
    return fgattn.block_index_from_mask(tiles, block_m=M, n_keys=n, order=True)


def time_shapes(args: argparse.Namespace, meta: dict[str, str], ok: dict[str, bool]) -> Path:
    """Paired interleaved graph timing per shape (cuDNN, dense variants, block variants per density); CSV with
    entry_regress columns + mode / plan figures + meta."""
    import torch
    from bench_kernels import ClockSampler, make_qkv, sdpa, timed_rounds
    from entry_regress import COLS, case_rows
    from fgattn.gluon_contig import plan_contig

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    names = [v for v in args.variant_list if v in ("entry", "ctl") or ok.get(v, True)]
    path = args.out / f"{STEM.format(date=meta['date'][:10])}.csv"
    clocks = ClockSampler(0.5)
    t0 = time.perf_counter()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + ["mode", "M", "plan_makespan_over_mean"] + list(meta),
                           extrasaction="ignore")
        w.writeheader()
        for si, (h, n) in enumerate(args.shape_list):
            shape = f"H{h} N{n} D{D}"
            sets = make_qkv(1, h, n, D, 1 if h * n * D * 6 > 1e9 else 2)
            obuf = torch.empty_like(sets[0][0])
            qb = -(-n // M)
            cases: list[dict[str, Any]] = [dict(variant="cudnn", kernel="sdpa_cudnn", fn=sdpa("cudnn"), dt=1.0,
                                                dens=1.0, stats={}, cfg="torch SDPA cuDNN backend", mode="dense")]
            for dense, dt_ in [(True, 1.0)] + [(False, x) for x in args.density_list]:
                bidx = None if dense else block_index_for(h, n, dt_)
                dens = 1.0 if dense else bidx.density(n)
                tiles = [qb] * (h * qb) if dense else [max(int(x), 1) for x in bidx.counts().tolist()]
                st = dict(rows=len(tiles), rows_per_sm=round(len(tiles) / sms, 2),
                          exec_tiles_per_row=round(sum(tiles) / len(tiles), 3))
                plan = plan_contig(batch=1, heads=h, n_q=n, n_kv=n, programs=sms, block_index=bidx, device="cuda")
                for v in names:
                    cfg = ("launch table " + ("dense" if dense else "block") + " D128 M128 entry (tl)"
                           + (", second capture (control)" if v == "ctl" else "") if v in ("entry", "ctl") else
                           f"fgattn.gluon_contig ws2 TMA K/V, pipeline 1, {GLUON[v]}, list plan c_row 3 "
                           f"programs {plan.programs} makespan/mean {plan.makespan / plan.mean_load:.4f}")
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=dens, stats=st, cfg=cfg,
                                      mode="dense" if dense else "block",
                                      pm=f"{plan.makespan / plan.mean_load:.4f}" if v in GLUON else "",
                                      fn=lambda q, k, v_, ix=bidx, name=v, o=obuf, pl=plan: run_variant(
                                          name, q, k, v_, ix, o, plan=pl if name in GLUON else None)))
            torch.cuda.synchronize()
            ts = time.time()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si)
            clk = clocks.window(ts, time.time())
            rows = case_rows(cases, sets, args.seed + si, shape, h, n, 0, clk, widths=(16, 11))
            for c, r in zip([c for c in cases if c["ms"]], rows, strict=True):
                w.writerow({**r, "mode": c["mode"], "M": M, "plan_makespan_over_mean": c.get("pm", ""), **meta})
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
            cases.clear()
            del sets
            torch.cuda.empty_cache()
    clocks.stop()
    return path


# ------------------------------------------------------------------------------------------------ rule
#: the eligibility rule, fixed in kernels/NOTES.md ("Session 13 research: Gluon TMA dense/block (helper D)") before
#: the device call.  The control (the entry captured twice) is valid when its paired median lies in 1 +- 0.03 at
#: every problem and its geo-mean in 1 +- 0.015.  A Gluon variant must pass every check.  Dense: eligible when its
#: paired median t / t_entry <= 1.00 at both shapes and its ratio to cuDNN >= 0.97 at both.  Block: eligible when
#: t / t_entry <= 1.02 at every (shape, density) and the geo-mean over them is <= 0.97.
CTL_CELL, CTL_GEO = 0.03, 0.015
DENSE_MAX_REL, DENSE_MIN_CUDNN = 1.00, 0.97
BLOCK_MAX_REL, BLOCK_MAX_GEO = 1.02, 0.97


def rule_verdict(rows: list[dict[str, str]], checks_ok: dict[str, bool]) -> dict[str, tuple[str, list[str]]]:
    """{(variant, mode): ('eligible' | 'not eligible' | 'void', reasons)} from a timing CSV's rows."""
    def geo(xs: list[float]) -> float:
        return math.exp(sum(math.log(x) for x in xs) / len(xs))

    ctl = [float(r["rel_entry"]) for r in rows if r["variant"] == "ctl"]
    why_ctl = [] if ctl else ["no control rows"]
    if ctl and abs(geo(ctl) - 1) > CTL_GEO:
        why_ctl.append(f"control geo-mean {geo(ctl):.3f} outside 1 +- {CTL_GEO}")
    why_ctl += [f"control {x:.3f} outside 1 +- {CTL_CELL}" for x in ctl if abs(x - 1) > CTL_CELL]
    out = {}
    for v in GLUON:
        for mode in ("dense", "block"):
            mine = [r for r in rows if r["variant"] == v and r["mode"] == mode]
            if why_ctl or not mine:
                out[(v, mode)] = ("void", why_ctl or ["no timing rows"])
                continue
            if not checks_ok.get(v, False):
                out[(v, mode)] = ("not eligible", ["failed or missing checks"])
                continue
            rel = {(r["shape"], r["density_target"]): float(r["rel_entry"]) for r in mine}
            cud = {(r["shape"], r["density_target"]): float(r["ratio_vs_cudnn"]) for r in mine}
            if mode == "dense":
                why = [f"t/t_entry {x:.3f} > {DENSE_MAX_REL} at {k[0]}" for k, x in rel.items() if x > DENSE_MAX_REL]
                why += [f"x cuDNN {x:.3f} < {DENSE_MIN_CUDNN} at {k[0]}" for k, x in cud.items() if x < DENSE_MIN_CUDNN]
            else:
                why = [f"t/t_entry {x:.3f} > {BLOCK_MAX_REL} at {k[0]} d {k[1]}" for k, x in rel.items()
                       if x > BLOCK_MAX_REL]
                if geo(list(rel.values())) > BLOCK_MAX_GEO:
                    why.append(f"geo-mean t/t_entry {geo(list(rel.values())):.3f} > {BLOCK_MAX_GEO}")
            out[(v, mode)] = (("not eligible", why) if why else
                              ("eligible", [f"t/t_entry {min(rel.values()):.3f}-{max(rel.values()):.3f}, geo "
                                            f"{geo(list(rel.values())):.3f}; x cuDNN {min(cud.values()):.3f}-"
                                            f"{max(cud.values()):.3f}"]))
    return out


def summary(path: Path, checks_ok: dict[str, bool]) -> None:
    rows = list(csv.DictReader(open(path, newline="")))
    for r in rows:
        print(f"[sum] {r['shape']:<16} {r['mode']:<5} d {r['density_target']:<4} {r['variant']:<11} {r['ms']:>9} ms "
              f"rel {r['rel_entry']:<6} ({r['rel_entry_min']}-{r['rel_entry_max']}) x cuDNN {r['ratio_vs_cudnn']}",
              flush=True)
    for (v, mode), (verdict, why) in rule_verdict(rows, checks_ok).items():
        print(f"[rule] {v} {mode}: {verdict}: " + "; ".join(why), flush=True)


# ------------------------------------------------------------------------------------------------ offline
def offline_compile() -> list[dict[str, Any]]:
    """Each Gluon variant (dense / block, bf16 / fp16) and the fg list entry compiled for sm_90: registers at launch,
    stack, shared memory, partition register budgets, HGMMA, the consumer tile loop's figures."""
    import re

    from compile_report import cuobjdump, loop_figures
    from fgattn.gluon_contig import compile_contig_sm90
    from fgattn.gluon_fg_list import compile_list_sm90

    out = []
    for dt in ("bf16", "fp16"):
        todo = [("fg list entry (gather)", lambda dt=dt: compile_list_sm90(dt))]
        for v, kn in GLUON.items():
            for dense in (True, False):
                todo.append((f"{v} {'dense' if dense else 'block'}",
                             lambda dense=dense, kn=kn, dt=dt: compile_contig_sm90(dense, dt, **kn)))
        for name, fn in todo:
            t0 = time.time()
            k = fn()
            res, sass = cuobjdump(k)
            lines = sass.splitlines()
            r = dict(name=name, dtype=dt, regs=int(re.search(r"REG:(\d+)", res).group(1)),
                     stack=int(re.search(r"STACK:(\d+)", res).group(1)), smem_bytes=k.metadata.shared,
                     setmaxnreg=sorted({int(x, 16) for x in re.findall(r"USETMAXREG\.\w+\.CTAPOOL (?:UP0, )?(0x[0-9a-f]+)",
                                                                       sass)}),
                     local_ld_st=sum(bool(re.search(r"\b(STL|LDL)\b", ln)) for ln in lines),
                     hgmma=sum("HGMMA" in ln for ln in lines), utmaldg=sum("UTMALDG" in ln for ln in lines),
                     ldgsts=sum("LDGSTS" in ln for ln in lines), **(loop_figures(sass) or {}),
                     s=round(time.time() - t0, 1))
            out.append(r)
            print(json.dumps(r), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        print(json.dumps(dict(shapes=args.shape_list, densities=args.density_list, variants=args.variant_list,
                              rounds=args.rounds, check=args.check, check_seed=args.check_seed,
                              time=not args.no_time, out=str(args.out),
                              first_cases=check_cases(min(args.check, 2), args.check_seed))))
        return 0
    if args.offline_compile:
        offline_compile()
        return 0
    if args.summarize:
        acc = list(csv.DictReader(open(args.summarize[1], newline="")))
        ok = {v: bool(mine) and all(r["ok"] == "True" for r in mine)
              for v in GLUON for mine in [[r for r in acc if r["variant"] == v]]}
        print(f"[check] {len(acc)} checks: " + ", ".join(
            f"{v} {sum(r['variant'] == v for r in acc)} ({'all pass' if ok[v] else 'FAILED'})" for v in GLUON))
        summary(args.summarize[0], ok)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("contig_probe: no CUDA device (use --dry-run or --offline-compile here)", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    if args.check_shard:
        return 0 if check(args, meta) else 1
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    ok = {v: True for v in args.variant_list}
    if args.check:
        ok.update(check_in_processes(args, meta))
        print(f"[check] {ok} {time.perf_counter() - t0:.1f}s", flush=True)
    if not args.no_time:
        path = time_shapes(args, meta, ok)
        summary(path, ok)
    print(f"[probe] done {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
