"""The Gluon M64 kernel (``fgattn.gluon_fg_m64``) against the tl fg D128 M64 gran-1 entry and cuDNN SDPA.

Issue 12, session 22, helper G (kernels/NOTES-gluon-m64.md)::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/gluon_m64_probe.py --out $OUT        # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/gluon_m64_probe.py --dry-run         # any machine: the plan
    PYTHONPATH=/path/to/triton-3.6:kernels python3 kernels/tools/gluon_m64_probe.py --offline-compile   # no GPU

Check (``--check N``): N random cases (seeded by ``--check-seed``; B 1-2, H 1-4, odd and even N from 65 to 3,001,
0 / 77 / 300 text tokens, window or random masks at densities 0.01-1, one query block emptied and one made full,
bf16 / fp16, ``bhnd`` / ``bnhd``, sm_scale default or 0.05, ``programs`` 1 / 3 / 7 / all) for every variant,
each variant in its own process with a timeout (a hang fails that variant only), against
``fgattn.reference_attention`` (float64): relative Frobenius error <= 1e-2, no NaN (output poisoned with NaN
first), the emptied block all zeros.  Timing: per shape cuDNN SDPA and every variant at each density (the run-8
benchmark's M64 masks: ``window_mask(1, H, N, 64, d)`` seeded int(1000 d) + 7, text by ``with_text``), CUDA-graph
replay, ``--rounds`` interleaved rounds in a fresh random order per round (``bench_kernels.timed_rounds``), ratios
paired per round (``entry_regress.case_rows``: rel_entry = t / t_entry, ratio = d · t_cuDNN / t), SM clock sampled
by nvidia-smi during the rounds.  Variants that fail the check are not timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

D, M, G = 128, 64, 1
#: variant -> knobs of fg_attention_gluon_m64 (``entry``: the launch table's tl fg D128 M64 g1 entry)
VARIANTS: dict[str, dict[str, Any] | None] = {
    "entry": None,
    "g2": dict(lanes=2),
    "g2_pipe": dict(lanes=2, pipeline=1),
    "g2_q": dict(lanes=2, qreg=True),
    "g2_q_pipe": dict(lanes=2, qreg=True, pipeline=1),
    "g2_q_lpt": dict(lanes=2, qreg=True, schedule="lpt"),
    "g2_pw2_q": dict(lanes=2, producer_warps=2, qreg=True),
    "g2_pw2_q_pipe": dict(lanes=2, producer_warps=2, qreg=True, pipeline=1),
    "g1": dict(lanes=1),
    "g1_q": dict(lanes=1, qreg=True),
    "g1_q_lpt": dict(lanes=1, qreg=True, schedule="lpt"),
    "g2_fence": dict(lanes=2, fence=True),
    # round 2 (after the g1 call): list scheduling in launch order, 2 stages (bytes in flight)
    "g1_q_list": dict(lanes=1, qreg=True, schedule="list"),
    "g2_q_pipe_list": dict(lanes=2, qreg=True, pipeline=1, schedule="list"),
    "g2_q_st2": dict(lanes=2, qreg=True, stages=2),
    # union-gathered pairs: ``pair`` = Q from shared memory (the session-11 fix, compiled offline, not yet run on a
    # GPU); ``pair_qreg`` = the form run in session 11 (Q in registers: wrong from a pair's second 128-key tile on)
    "pair": dict(form="pair"),
    "pair_pipe": dict(form="pair", pipeline=1),
    "pair_qreg": dict(form="pair", qreg=True),
}
DEFAULT_VARIANTS = "entry,g2,g2_pipe,g2_q,g2_q_pipe,g2_q_lpt,g2_pw2_q,g2_pw2_q_pipe,g1_q,g1_q_lpt"
CHECK_NS = (65, 127, 257, 1000, 1999, 2048, 2600, 3001)


def shape_density_items(ap: argparse.ArgumentParser, flag: str, text: str) -> list[tuple[tuple, list[float]]]:
    """``HxN[+TEXT]:D1/D2,...`` as [(shape key, densities)]; a bad item is one ``ap.error`` line naming ``flag``."""
    from entry_regress import parse_shapes

    out = []
    for item in (s for s in text.split(",") if s):
        shp, _, ds = item.partition(":")
        try:
            key = parse_shapes(shp)[0]
            vals = [float(x) for x in ds.split("/")]
        except ValueError:
            ap.error(f"{flag}: bad item {item!r} (want HxN[+TEXT]:D1/D2)")
        if not vals or any(not 0 < x <= 1 for x in vals):
            ap.error(f"{flag}: densities of {item!r} must lie in (0, 1]")
        out.append((key, vals))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="12x32760,12x32760+512,40x75600", help="HxN[+TEXT], comma-separated")
    ap.add_argument("--densities", default="0.02,0.1,0.5",
                    help="density targets, comma-separated; SHAPE:D1/D2 items in --shape-densities override")
    ap.add_argument("--shape-densities", default="40x75600:0.02/0.1",
                    help="per-shape density lists, e.g. 40x75600:0.02/0.1 (comma-separated items)")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated of {list(VARIANTS)}")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=20.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=61, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=120.0, help="skip later shapes after this many timing seconds")
    ap.add_argument("--check", type=int, default=120, metavar="N", help="random check cases per variant (0: none)")
    ap.add_argument("--check-seed", type=int, default=6401, help="seed of the random check cases")
    ap.add_argument("--check-timeout-s", type=float, default=150.0, help="per-variant check process timeout")
    ap.add_argument("--inline-check", action="store_true", help=argparse.SUPPRESS)  # the per-variant child
    ap.add_argument("--no-time", action="store_true", help="skip the timing")
    ap.add_argument("--tag", default="", help="file name suffix (write --tag=-x, not --tag -x)")
    ap.add_argument("--ncu", default="", metavar="V1,V2",
                    help="after the timing: Nsight Compute of these variants, one launch each at --ncu-cell")
    ap.add_argument("--ncu-cell", default="12x32760:0.5", help="HxN[+TEXT]:DENSITY of the --ncu launches")
    ap.add_argument("--ncu-timeout-s", type=float, default=60.0, help="wall limit of the ncu run")
    ap.add_argument("--ncu-driver", action="store_true", help=argparse.SUPPRESS)  # the program ncu runs
    ap.add_argument("--analyze", type=Path, nargs="+", default=None, metavar="CSV",
                    help="no GPU: per-cell markdown table and per-variant fits from probe timing CSVs")
    ap.add_argument("--union-stats", action="store_true",
                    help="no timing: union-gathered pair ratios (gathered rows, computed tiles) of the timing masks "
                         "at --shapes / densities, on the GPU if there is one, else the CPU")
    ap.add_argument("--inflight", action="store_true",
                    help="no timing: distinct heads in flight (time-averaged, peak) of the M64 walk / lpt / list plans "
                         "(264 lanes) and the M128 Gluon entry's walk vs a list plan (132 programs) on the timing "
                         "masks at --shapes / densities (GPU if there is one, else CPU)")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--offline-compile", action="store_true",
                    help="compile the variants for sm_90 without a GPU (Triton 3.6 on the path), print SASS figures")
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
    a.ncu_list = [v for v in a.ncu.split(",") if v]
    bad_ncu = [v for v in a.ncu_list if v not in VARIANTS]
    if bad_ncu:
        ap.error(f"--ncu: unknown {bad_ncu} (known: {list(VARIANTS)})")
    shp, _, dd = a.ncu_cell.partition(":")
    try:
        a.ncu_shape, a.ncu_density = parse_shapes(shp)[0], float(dd)
    except ValueError:
        ap.error(f"--ncu-cell: bad value {a.ncu_cell!r} (want HxN[+TEXT]:DENSITY)")
    a.variant_list = a.variants.split(",")
    bad = [v for v in a.variant_list if v not in VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad} (known: {list(VARIANTS)})")
    if "entry" not in a.variant_list and not a.no_time and not a.offline_compile:
        ap.error("--variants: the timing pairs every variant with 'entry'; include it")
    if a.rounds < 3:
        ap.error(f"--rounds: {a.rounds} < 3 (paired medians need at least 3)")
    if a.check < 0:
        ap.error(f"--check: {a.check} must be >= 0")
    for f in a.analyze or []:
        if not f.is_file():
            ap.error(f"--analyze: {f} is not a file")
    if not (a.dry_run or a.offline_compile or a.analyze or a.union_stats or a.inflight) and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


def densities_for(args: argparse.Namespace, shape: tuple[int, int, int]) -> list[float]:
    """The density targets timed at ``shape`` (``--shape-densities`` if it names the shape)."""
    return args.per_shape.get(shape, args.density_list)


# ------------------------------------------------------------------------------------------------ pure helpers
def check_case(rng: random.Random) -> dict[str, Any]:
    """One random check case's parameters (pure; the GPU side builds the tensors from them)."""
    n = rng.choice(CHECK_NS)
    return dict(b=rng.choice((1, 1, 2)), h=rng.randint(1, 4), n=n,
                text=rng.choice((0, 0, 77, 300)) if n >= 600 else 0,
                density=round(10 ** rng.uniform(-2, 0), 4), window=rng.random() < 0.5,
                dtype=rng.choice(("bf16", "fp16")), layout=rng.choice(("bhnd", "bnhd")),
                sm_scale=rng.choice((None, None, 0.05)), programs=rng.choice((1, 3, 7, None)),
                empty=rng.random(), full=rng.random(), seed=rng.randrange(2**31))


def check_cases(n: int, seed: int) -> list[dict[str, Any]]:
    """The ``n`` check cases of ``seed`` (identical in every variant's process)."""
    rng = random.Random(seed)
    return [check_case(rng) for _ in range(n)]


def m64_row_stats(counts: list[int], sms: int, block_n: int = 64) -> dict[str, float]:
    """Rows, rows per SM and executed ``block_n``-key tiles per row (an empty row still runs one tile)."""
    tiles = sum(max(-(-c // block_n), 1) for c in counts)
    rows = len(counts)
    return dict(rows=rows, rows_per_sm=round(rows / sms, 2), exec_tiles=tiles,
                exec_tiles_per_row=round(tiles / max(rows, 1), 3))


# ------------------------------------------------------------------------------------------------ offline
def offline_compile(variants: list[str]) -> list[dict[str, Any]]:
    """Each Gluon variant compiled for sm_90 (bf16, fp16): launch registers, stack, shared memory, partition
    registers (setmaxnreg), HGMMA count / gsb0, the consumer tile loop's figures (``compile_report.loop_figures``)
    and the instruction distance between the loop's QK wait and its PV wait (pipeline 1's overlap window)."""
    import re

    import triton
    from compile_report import cuobjdump, loop_figures
    from fgattn import gluon_fg_m64 as g

    rows = []
    for v in variants:
        kn = VARIANTS[v]
        if kn is None:
            continue
        for dt in ("bf16", "fp16"):
            t0 = time.time()
            if kn.get("form") == "pair":
                knobs = dict(form="pair", PIPE=kn.get("pipeline", 0), QREG=kn.get("qreg", False))
                k = g.compile_pair_sm90(knobs["PIPE"], dt, qreg=knobs["QREG"])
            else:
                knobs = g.check_m64_knobs(**{a: b for a, b in kn.items() if a != "schedule"})
                k = g.compile_m64_sm90(knobs, dt)
            res, sass = cuobjdump(k)
            hg = [ln for ln in sass.splitlines() if "HGMMA" in ln]
            regs = sorted({int(x, 16) for x in re.findall(r"USETMAXREG\.\w+\.CTAPOOL (?:UP0, )?(0x[0-9a-f]+)", sass)})
            rows.append(dict(variant=v, dtype=dt, **knobs, launch_regs=int(re.search(r"REG:(\d+)", res).group(1)),
                             stack=int(re.search(r"STACK:(\d+)", res).group(1)), smem_bytes=k.metadata.shared,
                             setmaxnreg_values=regs, hgmma=len(hg), hgmma_gsb0=sum("gsb0" in ln for ln in hg),
                             **(loop_figures(sass) or {}), compile_s=round(time.time() - t0, 1),
                             triton=triton.__version__))
            print(json.dumps(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ GPU side
def lane_plan(name: str, idx, programs: int | None = None):
    """The lane plan of Gluon variant ``name`` on ``idx`` (built once per index, outside any graph capture); for
    the ``pair`` form a (UnionPairs, LanePlan) tuple."""
    import torch
    from fgattn import gluon_fg_m64 as g

    kn = VARIANTS[name]
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    if kn.get("form") == "pair":
        u = g.union_pairs(idx)
        return u, g.plan_pairs(u, idx.batch * idx.heads, min(u.n_pairs, sms, programs or sms))
    lanes = kn.get("lanes", 2)
    grid = min(-(-idx.n_rows // lanes), sms * g.ctas_per_sm(lanes), programs or idx.n_rows)
    return g.plan_lanes(idx, programs=grid, lanes=lanes, schedule=kn.get("schedule", "walk"))


def run_variant(name: str, q, k, v, idx, out, layout: str = "bhnd", plan=None, sm_scale: float | None = None):
    """One launch of variant ``name`` writing ``out`` (Gluon variants: on ``plan``'s lanes)."""
    import fgattn
    from fgattn.gluon_fg_m64 import fg_attention_gluon_m64, fg_attention_gluon_pair

    if name == "entry":
        return fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, layout=layout, out=out, sm_scale=sm_scale)
    if VARIANTS[name].get("form") == "pair":
        kn = {a: b for a, b in VARIANTS[name].items() if a != "form"}
        return fg_attention_gluon_pair(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, union=plan[0],
                                       plan=plan[1], **kn)
    kn = {a: b for a, b in VARIANTS[name].items() if a != "schedule"}
    return fg_attention_gluon_m64(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale, plan=plan,
                                  programs=plan.programs, **kn)


def build_case(c: dict[str, Any], device: str = "cuda", block_m: int = M):
    """Tensors, index (``block_m`` query rows per block) and the emptied query block (batch, head, block) of a check
    case."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    torch.manual_seed(c["seed"])
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[c["dtype"]]
    n = c["n"] + c["text"]
    if c["window"] and c["density"] < 0.9:
        mv = window_mask(c["b"], c["h"], c["n"], block_m, c["density"], device=device, seed=c["seed"] % 1000)
    else:
        mv = torch.rand(c["b"], c["h"], -(-c["n"] // block_m), c["n"], device=device) < c["density"]
    mask = with_text(mv, c["text"], block_m) if c["text"] else mv
    qb = mask.shape[2]
    eb, eh, eq = (int(c["empty"] * x) % y for x, y in ((7, c["b"]), (13, c["h"]), (997, qb)))
    mask[eb, eh, eq] = False
    if qb > 1:  # a full block, never the emptied one
        mask[0, 0, (eq + 1 + int(c["full"] * (qb - 1))) % qb] = True
    idx = fgattn.build_index(mask, block_m=block_m, gran_n=G, order=True)
    shp = (c["b"], c["h"], n, D) if c["layout"] == "bhnd" else (c["b"], n, c["h"], D)
    q, k, v = (torch.randn(*shp, device=device, dtype=dtype) for _ in range(3))
    return q, k, v, idx, (eb, eh, eq)


def check(variants: list[str], args: argparse.Namespace, meta: dict[str, str]) -> set[str]:
    """Float64 check of ``variants`` on the random cases; writes ``...-accuracy{tag}.csv``; returns the failed
    variants (error > 1e-2, a NaN, a non-zero emptied block, an exception)."""
    import fgattn
    import torch

    from fgsim.fileio import write_csv_atomic

    rows, failed = [], set()
    cases = check_cases(args.check, args.check_seed)
    print(f"[check] {len(cases)} cases, seed {args.check_seed}", flush=True)
    for ci, c in enumerate(cases):
        q, k, v, idx, (eb, eh, eq) = build_case(c)
        ref = fgattn.reference_attention(q, k, v, idx, layout=c["layout"], sm_scale=c["sm_scale"])
        for name in variants:
            o = torch.full_like(q, float("nan"))
            msg = ""
            try:
                plan = None if name == "entry" else lane_plan(name, idx, c["programs"])
                run_variant(name, q, k, v, idx, o, c["layout"], plan, c["sm_scale"])
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                msg = f"{type(e).__name__}: {e}"[:300]
            nan = int(o.isnan().sum())
            err = float((o.double().nan_to_num(0.0) - ref).norm() / ref.norm().clamp_min(1e-30))
            rows_q = slice(eq * M, (eq + 1) * M)
            blk = o[eb, eh, rows_q] if c["layout"] == "bhnd" else o[eb, rows_q, eh]
            empty_ok = bool((blk == 0).all())
            ok = not msg and err <= 1e-2 and nan == 0 and empty_ok
            if not ok:
                failed.add(name)
            rows.append(dict(case=ci, **{k_: c[k_] for k_ in ("b", "h", "n", "text", "density", "window", "dtype",
                                                             "layout", "sm_scale", "programs", "seed")},
                             density_real=round(idx.density(c["n"] + c["text"]), 5), variant=name,
                             rel_err=f"{err:.4e}", nan=nan, empty_block_zero=empty_ok, ok=ok, error=msg,
                             reference="fgattn.reference_attention (float64)", **meta))
            if not ok or ci < 3:
                print(f"[check] case {ci} {c} {name}: err {err:.3e} nan {nan} empty-zero {empty_ok} {msg}", flush=True)
    path = args.out / f"kernels-h200-{meta['date'][:10]}-gluon-m64{args.tag}-accuracy.csv"
    write_csv_atomic(path, rows, list(rows[0]))
    errs = {}
    for r in rows:
        errs.setdefault((r["variant"], r["dtype"]), []).append(float(r["rel_err"]))
    for (vn, dt), es in sorted(errs.items()):
        print(f"[check] {vn} {dt}: {len(es)} cases, rel err median {sorted(es)[len(es) // 2]:.3e} max {max(es):.3e}",
              flush=True)
    print(f"[check] {len(rows)} checks, failed {sorted(failed)}; wrote {path}", flush=True)
    return failed


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> set[str]:
    """:func:`check` of each variant in its own process, in parallel, within ``--check-timeout-s``; merges the
    parts into ``...-accuracy{tag}.csv``."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.fileio import write_csv_atomic

    def one(v: str) -> tuple[str, bool]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--inline-check", "--no-time",
               "--variants", v, f"--tag={args.tag}-part-{v}", "--check", str(args.check),
               "--check-seed", str(args.check_seed)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-4000:] + (p.stderr[-3000:] if p.returncode else ""), flush=True)
            return v, p.returncode == 0
        except subprocess.TimeoutExpired as e:
            print(f"[check] {v}: timed out after {args.check_timeout_s:.0f}s\n{(e.stdout or b'')[-2000:]!r}", flush=True)
            return v, False

    with ThreadPoolExecutor(max_workers=len(args.variant_list)) as ex:
        res = dict(ex.map(one, args.variant_list))
    rows: list[dict[str, str]] = []
    for v in args.variant_list:
        part = args.out / f"kernels-h200-{meta['date'][:10]}-gluon-m64{args.tag}-part-{v}-accuracy.csv"
        if part.exists():
            with open(part, newline="") as f:
                rows += list(csv.DictReader(f))
            part.unlink()
        else:
            rows.append(dict(variant=v, ok="False", error="no result (timeout or crash)"))
    if rows:
        write_csv_atomic(args.out / f"kernels-h200-{meta['date'][:10]}-gluon-m64{args.tag}-accuracy.csv", rows)
    failed = {v for v, ok in res.items() if not ok} | {r["variant"] for r in rows if r.get("ok") != "True"}
    print(f"[check] failed variants: {sorted(failed)}", flush=True)
    return failed


def timing_index(h: int, n_video: int, n_text: int, dt_: float, device: str = "cuda"):
    """Run 8's M64 benchmark mask at (shape, density) and its ordered index (``bench_kernels.final_shape``)."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    torch.manual_seed(int(dt_ * 1000) + 7)
    mask = window_mask(1, h, n_video, M, dt_, device=device)
    if n_text:
        mask = with_text(mask, n_text, M)
    idx = fgattn.build_index(mask, block_m=M, gran_n=G, order=True)
    del mask
    return idx


def time_shapes(args: argparse.Namespace, meta: dict[str, str], variants: list[str]) -> Path:
    """Paired interleaved graph timing (cuDNN + variants per shape and density); CSV with entry_regress columns."""
    import torch
    from bench_kernels import ClockSampler, make_qkv, sdpa, timed_rounds
    from entry_regress import COLS, case_rows
    from fgattn.attention import resolve_config

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    path = args.out / f"kernels-h200-{meta['date'][:10]}-gluon-m64{args.tag}.csv"
    clocks = ClockSampler(1.0)
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
            ecfg = resolve_config("fg", sets[0][0], M, G)
            cases: list[dict[str, Any]] = [dict(variant="cudnn", kernel="sdpa_cudnn", fn=sdpa("cudnn"), dt=1.0,
                                                dens=1.0, stats={}, cfg="torch SDPA cuDNN backend")]
            for dt_ in densities_for(args, (h, nv, nt)):
                idx = timing_index(h, nv, nt, dt_)
                st = m64_row_stats(idx.counts().tolist(), sms)
                for v in variants:
                    plan = None if v == "entry" else lane_plan(v, idx)
                    lp = plan[1] if isinstance(plan, tuple) else plan
                    cfg = (f"launch table fg D128 M64 g1: bn{ecfg.block_n} st{ecfg.num_stages} w{ecfg.num_warps} "
                           f"{ecfg.extra}" if v == "entry" else
                           f"fgattn.gluon_fg_m64 {VARIANTS[v]} programs {lp.programs} lane makespan/mean "
                           f"{lp.makespan / lp.mean_load:.3f}")
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=idx.density(n), stats=st, cfg=cfg,
                                      fn=lambda q, k, v_, idx=idx, name=v, o=obuf, pl=plan: run_variant(
                                          name, q, k, v_, idx, o, plan=pl)))
            torch.cuda.synchronize()
            ts = time.time()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si)
            clk = clocks.window(ts, time.time())
            for r in case_rows(cases, sets, args.seed + si, shape, h, n, nt, clk, widths=(22, 12)):
                w.writerow({**r, "M": M, "gran_n": G, **meta})
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
            cases.clear()
            del sets
            torch.cuda.empty_cache()
    clocks.stop()
    return path


def ncu_driver(args: argparse.Namespace) -> None:
    """Under ncu: the --ncu-cell index and inputs, every --ncu variant warmed twice, then one launch each between
    cudaProfilerStart / Stop (so ncu profiles exactly those, in --ncu order)."""
    import torch

    (h, nv, nt), dt_ = args.ncu_shape, args.ncu_density
    idx = timing_index(h, nv, nt, dt_)
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, h, nv + nt, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = torch.empty_like(q)
    plans = {n: None if n == "entry" else lane_plan(n, idx) for n in args.ncu_list}
    for n in args.ncu_list:
        for _ in range(2):
            run_variant(n, q, k, v, idx, out, plan=plans[n])
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for n in args.ncu_list:
        run_variant(n, q, k, v, idx, out, plan=plans[n])
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def run_ncu(args: argparse.Namespace) -> None:
    """ncu (SpeedOfLight, MemoryWorkloadAnalysis, WarpStateStats, SchedulerStats + validation/ncu_persistent.py's
    metrics, clocks as found) over :func:`ncu_driver`; raw CSV and the summary table under --out."""
    import subprocess

    from ncu_persistent import METRICS, STALL_REGEX, find_ncu, table

    ncu = find_ncu()
    if ncu is None:
        print("[ncu] no ncu on this machine: skipped", flush=True)
        return
    rep = args.out / f"ncu{args.tag}"
    prog = [sys.executable, str(Path(__file__).resolve()), "--ncu-driver", "--ncu", ",".join(args.ncu_list),
            "--ncu-cell", args.ncu_cell, "--out", str(args.out), "--no-time", "--check", "0"]
    base = [ncu, "--clock-control", "none", "--profile-from-start", "off", "-k", "regex:attn|gluon", "-f", "-o",
            str(rep), "--section", "SpeedOfLight", "--section", "MemoryWorkloadAnalysis", "--section",
            "WarpStateStats", "--section", "SchedulerStats"]
    t0 = time.perf_counter()
    rep_file = rep.with_suffix(".ncu-rep")
    log = []
    for extra in (["--metrics", ",".join(list(METRICS) + [STALL_REGEX])], []):  # sections only if metrics fail
        left = args.ncu_timeout_s - (time.perf_counter() - t0)
        if left < 10:
            break
        try:
            p = subprocess.run(base + extra + prog, capture_output=True, text=True, timeout=left)
            log.append(f"rc={p.returncode}\n{p.stdout[-8000:]}\n{p.stderr[-8000:]}")
        except subprocess.TimeoutExpired:
            log.append(f"timed out after {left:.0f}s")
            break
        if p.returncode == 0 and rep_file.exists():
            break
    (args.out / f"ncu{args.tag}-run.log").write_text("\n".join(log))
    if not rep_file.exists():
        print(f"[ncu] no report: {log[-1][-1500:] if log else ''}", flush=True)
        return
    raw = subprocess.run([ncu, "-i", str(rep_file), "--page", "raw", "--csv"], capture_output=True, text=True,
                         timeout=60).stdout
    (args.out / f"ncu{args.tag}-raw.csv").write_text(raw)
    text = table(raw, args.ncu_list, [args.ncu_density])
    (args.out / f"ncu{args.tag}-summary.txt").write_text(text)
    print(text + f"[ncu] done {time.perf_counter() - t0:.1f}s", flush=True)


def summary(path: Path) -> None:
    """The short table printed last: per cell t_entry, each variant's paired rel and d · t_cuDNN / t."""
    rows = list(csv.DictReader(open(path, newline="")))
    cells: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for r in rows:
        if r["variant"] != "cudnn":
            cells.setdefault((r["shape"], r["density_target"]), {})[r["variant"]] = r
    for (shape, d), c in cells.items():
        e = c.get("entry", {})
        parts = [f"{v} {r['rel_entry']} x{r['ratio_vs_cudnn']}" for v, r in c.items() if v != "entry"]
        print(f"[sum] {shape} d {d}: entry {e.get('ms')} ms x{e.get('ratio_vs_cudnn')} | " + " | ".join(parts),
              flush=True)


def fit_costs(rows: list[dict[str, str]], variant: str) -> tuple[float, float, float]:
    """Least squares of t = c_row · rows/SM + c_tile · executed 64-key tiles/SM over the cells of ``variant``
    (relative residuals): (c_row µs, c_tile µs, max |relative residual|)."""
    import numpy as np

    a = [[float(r["rows_per_sm"]), float(r["rows_per_sm"]) * float(r["exec_tiles_per_row"])] for r in rows
         if r["variant"] == variant]
    t = [float(r["ms"]) * 1e3 for r in rows if r["variant"] == variant]
    if len(a) < 2:
        raise ValueError(f"--analyze: {variant} has {len(a)} cell(s); the fit needs 2")
    w = np.array(a) / np.array(t)[:, None]
    (cr, ct), *_ = np.linalg.lstsq(w, np.ones(len(t)), rcond=None)
    return float(cr), float(ct), float(np.abs(w @ np.array([cr, ct]) - 1).max())


def analyze(paths: list[Path]) -> int:
    """Per file: a markdown table (cell, executed tiles per row, t_entry, d · t_cuDNN / t_entry, each variant's
    paired rel median (min–max)), each variant's geometric-mean rel and its cost fit (:func:`fit_costs`)."""
    import math

    for path in paths:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("variant") not in (None, "", "cudnn")]
        if not any(r["variant"] == "entry" for r in rows):
            raise ValueError(f"--analyze: {path} has no entry rows")
        variants = [v for v in dict.fromkeys(r["variant"] for r in rows) if v != "entry"]
        cells = {}
        for r in rows:
            cells.setdefault((r["shape"], r["density_target"]), {})[r["variant"]] = r
        print(f"\n{path.name}\n")
        print("| cell | tiles/row | t_entry ms | ×cuDNN entry | " + " | ".join(variants) + " | best ×cuDNN |")
        print("|---" * (5 + len(variants)) + "|")
        for (shape, d), c in cells.items():
            e = c["entry"]
            rel = [f"{float(c[v]['rel_entry']):.3f} ({float(c[v]['rel_entry_min']):.2f}–"
                   f"{float(c[v]['rel_entry_max']):.2f})" if v in c else "—" for v in variants]
            best = max(c.values(), key=lambda r: float(r["ratio_vs_cudnn"]))
            print(f"| {shape.removesuffix(' D128')} d {d} | {float(e['exec_tiles_per_row']):.1f} | {float(e['ms']):.3f} | "
                  f"{float(e['ratio_vs_cudnn']):.3f} | " + " | ".join(rel) + f" | {float(best['ratio_vs_cudnn']):.3f} "
                  f"({best['variant']}) |")
        print("\n| variant | geo-mean rel | range | c_row µs | c_tile µs (64 keys) | max resid |")
        print("|---|---|---|---|---|---|")
        for v in ["entry"] + variants:
            rels = [float(r["rel_entry"]) for r in rows if r["variant"] == v]
            cr, ct, res = fit_costs(rows, v)
            gm = math.exp(sum(math.log(x) for x in rels) / len(rels))
            print(f"| {v} | {gm:.3f} | {min(rels):.3f}–{max(rels):.3f} | {cr:.2f} | {ct:.3f} | {res:.3f} |")
    return 0


def inflight(args: argparse.Namespace, sms: int = 132) -> int:
    """Print :func:`fgattn.gluon_fg_m64.inflight_heads` of the schedules on the timing masks (row costs c_row 2 +
    tiles: 64-key tiles at M64, 128-key at M128; M128 masks as ``entry_regress.build_index``)."""
    import torch
    from entry_regress import build_index as m128_index
    from fgattn import gluon_fg_m64 as g

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for h, nv, nt in args.shape_list:
        for dt_ in densities_for(args, (h, nv, nt)):
            out = []
            for m, idx in ((64, timing_index(h, nv, nt, dt_, dev)), (128, m128_index(h, nv, nt, dt_, dev))):
                counts, order = idx.counts().tolist(), idx.order.tolist()
                qb = idx.n_qblocks
                costs = g.row_costs(counts, block_n=m)
                head = [r // qb for r in range(len(counts))]
                lanes = sms * (2 if m == 64 else 1)
                walk = [[[order[i] for i in ln] for ln in p] for p in g.lane_walk(len(order), lanes, 1)]
                plans = dict(walk=walk, list=g.lane_list(costs, order, lanes, 1))
                if m == 64:
                    plans["lpt"] = g.lane_lpt(costs, lanes, 1)
                for name, lists in plans.items():
                    mean, peak = g.inflight_heads(costs, lists, head)
                    mx, avg = g.lanes_makespan(costs, lists)
                    out.append(f"M{m} {name} {mean:.2f}/{peak} (makespan/mean {mx / avg:.3f})")
            print(f"[inflight] H{h} N{nv}+{nt} d {dt_} ({dev}; heads in flight mean/peak): " + "; ".join(out),
                  flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        plan = dict(shapes={f"{h}x{nv}+{nt}": densities_for(args, (h, nv, nt)) for h, nv, nt in args.shape_list},
                    variants={v: VARIANTS[v] for v in args.variant_list}, rounds=args.rounds, check=args.check,
                    check_seed=args.check_seed, time=not args.no_time, out=str(args.out), tag=args.tag,
                    first_cases=check_cases(min(args.check, 3), args.check_seed),
                    ncu=dict(variants=args.ncu_list, shape=args.ncu_shape, density=args.ncu_density))
        print(json.dumps(plan))
        return 0
    if args.union_stats:
        import torch
        from fgattn.gluon_fg_m64 import union_stats

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        for h, nv, nt in args.shape_list:
            for dt_ in densities_for(args, (h, nv, nt)):
                idx = timing_index(h, nv, nt, dt_, dev)
                st = union_stats(idx)
                print(f"[union] H{h} N{nv}+{nt} d {dt_} (real {idx.density(nv + nt):.4f}, {dev}): gathered rows "
                      f"{st['gather_ratio']:.3f}x, computed 64-key tiles {st['compute_ratio']:.3f}x, shared "
                      f"128-key union tiles {st['shared_tiles']:.3f}", flush=True)
        return 0
    if args.inflight:
        return inflight(args)
    if args.analyze:
        try:
            return analyze(args.analyze)
        except (ValueError, KeyError) as e:
            print(f"gluon_m64_probe: {e}", file=sys.stderr)
            return 2
    if args.offline_compile:
        offline_compile(args.variant_list)
        return 0
    if args.ncu_driver:
        ncu_driver(args)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gluon_m64_probe: no CUDA device (use --dry-run or --offline-compile here)", file=sys.stderr)
        return 2
    from bench_kernels import env_metadata

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    failed: set[str] = set()
    if args.inline_check:
        failed = check(args.variant_list, args, meta)
        return 1 if failed else 0
    if args.check:
        failed = check_in_processes(args, meta)
        print(f"[check] done {time.perf_counter() - t0:.1f}s", flush=True)
    timed = [v for v in args.variant_list if v not in failed or v == "entry"]
    if not args.no_time and len(timed) > 1:
        path = time_shapes(args, meta, timed)
        summary(path)
    if args.ncu_list:
        run_ncu(args)
    print(f"[probe] done {time.perf_counter() - t0:.1f}s, failed variants {sorted(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
