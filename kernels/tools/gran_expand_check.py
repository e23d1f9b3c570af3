"""Session 17, helper K: float64 GPU check of fg gran 16 / 64 through the Gluon list kernel on the expanded index
(kernels/NOTES.md "Session 17, K"; ``extra.gluon.expand``, ``fgattn.gran_expand``), and of lever 2's planner row cost
(``--crow-cases``: gran-1 cases through ``launch_configs-candidate-s17k-crow.json``, outputs bit for bit the
packaged entry's).

    PYTHONPATH=.:kernels python3 kernels/tools/gran_expand_check.py --cases 240 --seed 1701 --out DIR [--workers 8]

Every case runs ``fgattn.fg_attention`` at gran 16 or 64 twice, with the candidate table's entry
(``kernels/logs/launch_configs-candidate-s17k-expand.json``: ``impl: gluon`` + ``expand``) and with the packaged
entry (the tl kernel), on a NaN-poisoned ``out``, and compares both with ``fgattn.reference_attention`` (float64, on
the gran-g index itself: independent of the expansion).  Masks: random runs of g keys at density 0.01-1, the run at
the sequence end (clipped when g does not divide N) kept in about half the rows, 5 % empty and 5 % full query blocks
and, with text tokens, ``fgattn.masks.with_text``'s full text rows and columns.  Odd and even N, both layouts,
bf16 / fp16, B 1-2, H 1-3, LPT or natural order, ``limit_sms`` 1 / 3 / 7 or all SMs, ``sm_scale`` default / 0.05.
Per case: the relative error of the whole output and the largest of any 128-query block (``TOL`` each), NaN,
emptied query blocks exactly zero, and the route: the candidate must launch ``gluon_fg_list.launch_list`` on a
gran-1 index (a spy), the entry must not.  Every 8th case also captures the candidate in a CUDA graph after the
warm-up call (expansion and plan memoised) and checks that the replay launched the list kernel and equals the eager
output bit for bit.  Writes DIR/kernels-h200-<date>-s17k-expand-accuracy.csv; prints the checks and failures last.
:func:`cases` and :func:`run_masks` are CPU-testable (tests/test_fg_gran_expand.py).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-s17k-expand.json"
CROW = ROOT / "kernels" / "logs" / "launch_configs-candidate-s17k-crow.json"
PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
TOL = 1e-2
DEV = os.environ.get("GRAN_CHECK_DEVICE", "cuda")
#: total sequence lengths (odd and even; 1008 / 4096 divisible by 16, 1001 / 2600 / 5001 by neither 16 nor 64)
NS = (257, 1001, 1008, 1999, 2600, 4096, 5001)
BLOCK = 128
FIELDS = ["case", "seed", "gran", "dtype", "layout", "B", "H", "N", "text", "density", "order", "limit_sms",
          "sm_scale", "variant", "route_ok", "graph", "rows", "end_runs", "err", "err_block_max", "nan", "empty_zero",
          "ok"]


def cases(n: int, seed: int, n_crow: int = 0) -> list[dict[str, Any]]:
    """``n`` random gran-16 / 64 case specs, then ``n_crow`` gran-1 ones (the lever-2 planner row cost: the
    ``c_row`` candidate against the packaged entry, outputs bit for bit equal) (plain dicts, any machine)."""
    rng = random.Random(seed)
    out = []
    for i in range(n + n_crow):
        n_total = rng.choice(NS)
        gran = (16, 64)[(i // 2) % 2] if i < n else 1
        out.append(dict(case=i, seed=rng.randrange(2**31), gran=gran, dtype=("bf16", "fp16")[i % 2],
                        layout=rng.choice(("bhnd", "bnhd")), B=rng.choice((1, 2)), H=rng.randint(1, 3), N=n_total,
                        text=rng.choice((0, 0, 77, 300)) if n_total > 1000 else 0,
                        density=rng.choice((0.01, 0.03, 0.1, 0.3, 0.5, 0.9, 1.0)), order=rng.random() < 0.8,
                        limit_sms=rng.choice((None, None, 1, 3, 7)), sm_scale=rng.choice((None, None, 0.05)),
                        graph=i % 8 == 0))
    return out


def run_masks(b: int, h: int, n: int, g: int, density: float, gen: Any, device: str = "cpu") -> Any:
    """Bool (b, h, QB, n) mask of random runs of ``g`` keys: run density ``density``, the last run (clipped at n)
    kept in about half the rows, query block 0 of head 0 empty and the last query block of the last head full, 5 %
    of the other query blocks empty and 5 % full."""
    import torch

    qb, nt = -(-n // BLOCK), -(-n // g)
    tiles = torch.rand(b, h, qb, nt, generator=gen) < density
    tiles[..., -1] |= torch.rand(b, h, qb, generator=gen) < 0.5
    u = torch.rand(b, h, qb, generator=gen)
    tiles[u < 0.05] = False
    tiles[u > 0.95] = True
    tiles[0, 0, 0] = False
    tiles[-1, -1, -1] = True
    return tiles.repeat_interleave(g, dim=-1)[..., :n].to(device)


def _run_chunk(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worker: the cases ``specs`` on the GPU -> CSV rows (two per case: expand, entry)."""
    import torch

    sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]
    import fgattn
    from fgattn import gluon_fg_list
    from fgattn.launch import launch_config
    from fgattn.masks import with_text

    seen: list[tuple[int, bool]] = []
    real = gluon_fg_list.launch_list

    def spy(q: Any, k: Any, v: Any, index: Any, **kw: Any) -> Any:
        seen.append((int(index.gran_n), bool(torch.cuda.is_current_stream_capturing())))
        return real(q, k, v, index, **kw)

    gluon_fg_list.launch_list = spy
    rows = []
    for c in specs:
        if time.time() > c.get("deadline", float("inf")):  # --deadline-s: leave the rest, report what ran
            break
        g = c["gran"]
        cand = ("crow", CROW) if g == 1 else ("expand", CANDIDATE)
        cfgs = {cand[0]: launch_config("fg", "h200", 128, 128, g, table_path=str(cand[1])),
                "entry": launch_config("fg", "h200", 128, 128, g, table_path=str(PACKAGED))}
        outs = {}
        gen = torch.Generator().manual_seed(c["seed"])
        torch.manual_seed(c["seed"])
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[c["dtype"]]
        b, h, n, text = c["B"], c["H"], c["N"], c["text"]
        shape = (b, h, n, 128) if c["layout"] == "bhnd" else (b, n, h, 128)
        q, k, v = (torch.randn(shape, device=DEV, dtype=dtype) for _ in range(3))
        nv = n - text
        mask = run_masks(b, h, nv, g, c["density"], gen, DEV)
        if text:
            mask = with_text(mask, text, BLOCK)
        index = fgattn.build_index(mask, block_m=BLOCK, gran_n=g, order=c["order"])
        end_runs = int((index.indices == index.n_tiles - 1).sum())
        ref = fgattn.reference_attention(q, k, v, index, layout=c["layout"], sm_scale=c["sm_scale"])
        for variant, cfg in cfgs.items():
            out = torch.full_like(q, float("nan"))
            seen.clear()
            kw = dict(block_m=BLOCK, gran_n=g, layout=c["layout"], config=cfg, sm_scale=c["sm_scale"])
            with fgattn.limit_sms(c["limit_sms"]) if c["limit_sms"] else contextlib.nullcontext():
                fgattn.fg_attention(q, k, v, index, out=out, check=True, **kw)
                if DEV == "cuda":
                    torch.cuda.synchronize()
                route_ok = (seen == [(1, False)]) if variant in ("expand", "crow") or g == 1 else not seen
                graph_ok = True
                if c["graph"] and variant == "expand" and DEV == "cuda":
                    gout = torch.full_like(q, float("nan"))
                    seen.clear()
                    gr = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(gr):
                        fgattn.fg_attention(q, k, v, index, out=gout, **kw)
                    gr.replay()
                    torch.cuda.synchronize()
                    graph_ok = seen == [(1, True)] and bool(torch.equal(gout, out))
            o = out.double() if c["layout"] == "bhnd" else out.double().transpose(1, 2)
            r = ref if c["layout"] == "bhnd" else ref.transpose(1, 2)
            err = float((o - r).norm() / r.norm().clamp_min(1e-30))
            pad = (-n) % BLOCK
            ob = torch.nn.functional.pad(o, (0, 0, 0, pad)).reshape(b, h, -1, BLOCK * 128)
            rb = torch.nn.functional.pad(r, (0, 0, 0, pad)).reshape(b, h, -1, BLOCK * 128)
            rn = rb.norm(dim=-1)
            blk = ((ob - rb).norm(dim=-1) / rn.clamp_min(1e-30))[rn > 0]
            err_blk = float(blk.max()) if blk.numel() else 0.0
            empty = rn == 0
            empty_zero = bool((ob[empty] == 0).all()) if bool(empty.any()) else True
            nan = bool(out.isnan().any())
            outs[variant] = out
            if variant == "entry" and "crow" in outs:  # the same kernel, rows on other programs: the same bits
                graph_ok = bool(torch.equal(outs["crow"], out))
            ok = err <= TOL and err_blk <= TOL and not nan and empty_zero and route_ok and graph_ok
            rows.append(dict({k_: c[k_] for k_ in ("case", "seed", "gran", "dtype", "layout", "B", "H", "N", "text",
                                                   "density", "order", "limit_sms", "sm_scale")},
                             variant=variant, route_ok=route_ok,
                             graph=("ok" if graph_ok else "FAIL") if c["graph"] and variant == "expand" else
                             ("bitwise" if graph_ok else "DIFFERS") if g == 1 and variant == "entry" else "",
                             rows=index.n_rows, end_runs=end_runs, err=f"{err:.3e}", err_block_max=f"{err_blk:.3e}",
                             nan=nan, empty_zero=empty_zero, ok=ok))
            if not ok:
                print(f"FAIL case {c['case']} {variant}: {rows[-1]}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=240)
    ap.add_argument("--seed", type=int, default=1701)
    ap.add_argument("--crow-cases", type=int, default=0, help="also N gran-1 cases of the c_row candidate")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="start no case after this many seconds (the CSV then holds the cases that ran)")
    args = ap.parse_args()
    if args.cases < 1 or args.workers < 1 or args.crow_cases < 0:
        print("gran_expand_check: --cases and --workers must be >= 1, --crow-cases >= 0", file=sys.stderr)
        sys.exit(2)
    if not Path(args.out).is_dir():
        print(f"gran_expand_check: --out {args.out} is not a directory", file=sys.stderr)
        sys.exit(2)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.time()
    specs = cases(args.cases, args.seed, args.crow_cases)
    if args.deadline_s is not None:
        specs = [dict(c, deadline=t0 + args.deadline_s) for c in specs]
    specs.sort(key=lambda c: (c["dtype"], c["case"]))  # one dtype per worker where possible
    w = min(args.workers, len(specs))
    chunks = [specs[len(specs) * i // w:len(specs) * (i + 1) // w] for i in range(w)]
    print(f"[gran check] {len(specs)} cases (seed {args.seed}) x (expand, entry) in {len(chunks)} workers", flush=True)
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=mp.get_context("spawn")) as ex:
        for part in ex.map(_run_chunk, chunks):
            rows.extend(part)
    rows.sort(key=lambda r: (r["case"], r["variant"]))
    path = Path(args.out) / f"kernels-h200-{datetime.date.today().isoformat()}-s17k-expand-accuracy.csv"
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
    fails = [r for r in rows if not r["ok"]]
    exp = [r for r in rows if r["variant"] == "expand"]
    worst = {f"{v} {dt}": max((float(r["err_block_max"]) for r in rows if r["variant"] == v and r["dtype"] == dt),
                              default=0.0) for v in ("expand", "entry") for dt in ("bf16", "fp16")}
    print(f"[gran check] {path.name}: {len(rows)} checks ({len(exp)} expand: gran 16 "
          f"{sum(r['gran'] == 16 for r in exp)}, gran 64 {sum(r['gran'] == 64 for r in exp)}, with text "
          f"{sum(r['text'] > 0 for r in exp)}, odd N {sum(r['N'] % 2 for r in exp)}, bnhd "
          f"{sum(r['layout'] == 'bnhd' for r in exp)}, fp16 {sum(r['dtype'] == 'fp16' for r in exp)}, end runs "
          f"{sum(r['end_runs'] for r in exp)}, graphs {sum(r['graph'] != '' for r in exp)}), worst block error "
          f"{worst}, {time.time() - t0:.0f} s", flush=True)
    crow = [r for r in rows if r["variant"] == "crow"]
    print(f"[gran check] cases run: expand {len(exp)} of {args.cases}, crow {len(crow)} of {args.crow_cases} (outputs "
          f"bitwise equal to the entry's: {sum(r['graph'] == 'bitwise' for r in rows)})", flush=True)
    print(f"[gran check] {len(rows)} checks, {len(fails)} failures", flush=True)
    sys.exit(1 if fails or len(exp) < 200 else 0)


if __name__ == "__main__":
    main()
