"""Session 15, K8: float64 GPU check of the research knob ``tail64`` (kernels/NOTES.md "Session 15, K8").

    PYTHONPATH=.:kernels python3 kernels/tools/k8_check.py --cases 160 --seed 1581 --out DIR [--workers 8]

Every case runs ``fgattn.fg_attention`` through the launch table twice, with the candidate table's fg D128 M128 g1
entry (``kernels/logs/launch_configs-candidate-k8-tail64.json``: the packaged entry + ``tail64: true``) and with the
packaged entry, on a NaN-poisoned ``out``, and compares both with ``fgattn.reference_attention`` in float64.
Masks are built per query block so that the rows' last packed tiles take every remainder 1..128: a row keeps
``(t - 1) * 128 + r`` random keys (t in 1..6, r from a shuffled 1..128 cycle), plus 5 % empty and 5 % full rows and,
with text tokens, ``fgattn.masks.with_text``'s full text rows and columns.  Odd N, both layouts, bf16 / fp16,
B 1-2, H 1-3, ``limit_sms`` 1 / 3 / 7 (each CTA walks many rows) or all SMs, ``sm_scale`` default / 0.05.
Per case: the relative error of the whole output and the largest of any 128-query block (``TOL`` each), NaN,
emptied query blocks exactly zero, the launch's ``tail64`` (recorded from ``gluon_fg_list.launch_list``) and how
many rows took the 64-key last tile.  Writes DIR/kernels-h200-<date>-k8-tail64-accuracy.csv; prints the count of
checks and failures last.  CPU-only helpers (:func:`cases`, :func:`row_counts`) are tested in tests/test_fg_tail64.py.
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
CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-k8-tail64.json"
PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
TOL = 1e-2
DEV = os.environ.get("K8_CHECK_DEVICE", "cuda")  # "cpu": the dry run of tests/test_fg_tail64.py (a fake kernel)
#: total sequence lengths (odd, partial last query block)
NS = (257, 1001, 1999, 2600, 4097, 5001)
BLOCK = 128
FIELDS = ["case", "seed", "dtype", "layout", "B", "H", "N", "text", "order", "limit_sms", "sm_scale", "variant",
          "tail64_launch", "rows", "tail_rows", "err", "err_block_max", "nan", "empty_zero", "ok"]


def cases(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` random case specs (plain dicts, any machine)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        n_total = rng.choice(NS)
        out.append(dict(case=i, seed=rng.randrange(2**31), dtype=("bf16", "fp16")[i % 2],
                        layout=rng.choice(("bhnd", "bnhd")), B=rng.choice((1, 2)), H=rng.randint(1, 3), N=n_total,
                        text=rng.choice((0, 0, 77, 300)) if n_total > 1000 else 0, order=rng.random() < 0.8,
                        limit_sms=rng.choice((None, None, 1, 3, 7)), sm_scale=rng.choice((None, None, 0.05))))
    return out


def row_counts(n_rows: int, n_keys: int, rng: random.Random) -> list[int]:
    """Kept keys per query block: (t - 1) * 128 + r with r cycling through a shuffled 1..128, t in 1..6; 5 % empty
    (0) and 5 % full (``n_keys``) rows; capped at ``n_keys``."""
    rems = list(range(1, BLOCK + 1))
    rng.shuffle(rems)
    out = []
    for i in range(n_rows):
        u = rng.random()
        if u < 0.05:
            out.append(0)
        elif u < 0.10:
            out.append(n_keys)
        else:
            out.append(min(n_keys, (rng.randint(1, 6) - 1) * BLOCK + rems[i % BLOCK]))
    return out


def tail_rows(counts: list[int]) -> int:
    """Rows whose last packed tile holds <= 64 kept keys and that have >= 2 tiles (the 64-key form's rows)."""
    return sum(1 for c in counts if c > BLOCK and (c - (-(-c // BLOCK) - 1) * BLOCK) <= BLOCK // 2)


def remainders(rows_kept: list[int]) -> set[int]:
    """The last-tile remainders (1..128) of rows with >= 2 tiles."""
    return {c - (-(-c // BLOCK) - 1) * BLOCK for c in rows_kept if c > BLOCK}


def _run_chunk(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worker: the cases ``specs`` on the GPU -> CSV rows (two per case: tail64, entry)."""
    import torch

    sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]
    import fgattn
    from fgattn import gluon_fg_list
    from fgattn.launch import launch_config
    from fgattn.masks import with_text

    seen: list[bool] = []
    real = gluon_fg_list.launch_list

    def spy(*a: Any, **kw: Any) -> Any:
        seen.append(bool(kw.get("tail64", False)))
        return real(*a, **kw)

    gluon_fg_list.launch_list = spy
    cfgs = {"tail64": launch_config("fg", "h200", 128, 128, 1, table_path=str(CANDIDATE)),
            "entry": launch_config("fg", "h200", 128, 128, 1, table_path=str(PACKAGED))}
    rows = []
    for c in specs:
        if time.time() > c.get("deadline", float("inf")):  # --deadline-s: leave the rest, report what ran
            break
        rng = random.Random(c["seed"])
        torch.manual_seed(c["seed"])
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[c["dtype"]]
        b, h, n, text = c["B"], c["H"], c["N"], c["text"]
        shape = (b, h, n, 128) if c["layout"] == "bhnd" else (b, n, h, 128)
        q, k, v = (torch.randn(shape, device=DEV, dtype=dtype) for _ in range(3))
        nv = n - text
        qb = -(-nv // BLOCK)
        counts = row_counts(b * h * qb, nv, rng)
        cnt = torch.tensor(counts, device=DEV).view(b, h, qb, 1)
        ranks = torch.rand(b, h, qb, nv, device=DEV).argsort(-1).argsort(-1)
        mask = ranks < cnt
        if text:
            mask = with_text(mask, text, BLOCK)
        index = fgattn.build_index(mask, block_m=BLOCK, gran_n=1, order=c["order"])
        kept = (index.offsets[1:] - index.offsets[:-1]).tolist()
        ref = fgattn.reference_attention(q, k, v, index, layout=c["layout"], sm_scale=c["sm_scale"])
        for variant, cfg in cfgs.items():
            out = torch.full_like(q, float("nan"))
            seen.clear()
            with fgattn.limit_sms(c["limit_sms"]) if c["limit_sms"] else contextlib.nullcontext():
                fgattn.fg_attention(q, k, v, index, block_m=BLOCK, gran_n=1, layout=c["layout"], config=cfg, out=out,
                                    sm_scale=c["sm_scale"], check=True)
            if DEV == "cuda":
                torch.cuda.synchronize()
            o = out.double() if c["layout"] == "bhnd" else out.double().transpose(1, 2)
            r = ref if c["layout"] == "bhnd" else ref.transpose(1, 2)
            err = float((o - r).norm() / r.norm().clamp_min(1e-30))
            pad = (-n) % BLOCK
            ob = torch.nn.functional.pad(o, (0, 0, 0, pad)).reshape(b, h, -1, BLOCK * 128)
            rb = torch.nn.functional.pad(r, (0, 0, 0, pad)).reshape(b, h, -1, BLOCK * 128)
            rn = rb.norm(dim=-1)
            blk = ((ob - rb).norm(dim=-1) / rn.clamp_min(1e-30))[rn > 0]
            err_blk = float(blk.max()) if blk.numel() else 0.0
            empty = (rn == 0)
            empty_zero = bool((ob[empty] == 0).all()) if bool(empty.any()) else True
            nan = bool(out.isnan().any())
            launched = bool(seen and seen[-1])
            ok = (err <= TOL and err_blk <= TOL and not nan and empty_zero and bool(seen)
                  and launched == (variant == "tail64"))
            rows.append(dict({k_: c[k_] for k_ in ("case", "seed", "dtype", "layout", "B", "H", "N", "text", "order",
                                                   "limit_sms", "sm_scale")},
                             variant=variant, tail64_launch=launched, rows=len(kept), tail_rows=tail_rows(kept),
                             err=f"{err:.3e}", err_block_max=f"{err_blk:.3e}", nan=nan, empty_zero=empty_zero, ok=ok,
                             rem_set=sorted(remainders(kept))))
            if not ok:
                print(f"FAIL case {c['case']} {variant}: {rows[-1]}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=160)
    ap.add_argument("--seed", type=int, default=1581)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="start no case after this many seconds (the CSV then holds the cases that ran)")
    args = ap.parse_args()
    if args.cases < 1 or args.workers < 1:
        print("k8_check: --cases and --workers must be >= 1", file=sys.stderr)
        sys.exit(2)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.time()
    specs = cases(args.cases, args.seed)
    if args.deadline_s is not None:
        specs = [dict(c, deadline=t0 + args.deadline_s) for c in specs]
    # one dtype per worker where possible: fewer compiled specialisations per process
    specs.sort(key=lambda c: (c["dtype"], c["case"]))
    w = min(args.workers, len(specs))
    chunks = [specs[len(specs) * i // w:len(specs) * (i + 1) // w] for i in range(w)]
    print(f"[k8 check] {len(specs)} cases (seed {args.seed}) x (tail64, entry) in {len(chunks)} workers", flush=True)
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=mp.get_context("spawn")) as ex:
        for part in ex.map(_run_chunk, chunks):
            rows.extend(part)
    rows.sort(key=lambda r: (r["case"], r["variant"]))
    path = Path(args.out) / f"kernels-h200-{datetime.date.today().isoformat()}-k8-tail64-accuracy.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    fails = [r for r in rows if not r["ok"]]
    t64 = [r for r in rows if r["variant"] == "tail64"]
    worst = {v: max((float(r["err_block_max"]) for r in rows if r["variant"] == v and r["dtype"] == dt), default=0)
             for v in ("tail64", "entry") for dt in ("bf16",)}
    print(f"[k8 check] {path.name}: {len(rows)} checks ({len(t64)} tail64), rows with the 64-key last tile "
          f"{sum(r['tail_rows'] for r in t64)} of {sum(r['rows'] for r in t64)}, worst bf16 block error {worst}, "
          f"{time.time() - t0:.0f} s", flush=True)
    covered = set().union(*(r["rem_set"] for r in t64))
    print(f"[k8 check] last-tile remainders covered (rows of >= 2 tiles): {len(covered)} of 128 "
          f"(<= 64: {sum(1 for x in covered if x <= 64)} of 64)", flush=True)
    print(f"[k8 check] cases run {len(t64)} of {len(specs)}", flush=True)
    print(f"[k8 check] {len(rows)} checks, {len(fails)} failures", flush=True)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
