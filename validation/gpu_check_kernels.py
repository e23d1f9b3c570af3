"""GPU correctness check of the fgattn kernels (issue 3, item 5).

    PYTHONPATH=.:kernels python validation/gpu_check_kernels.py [--out $OUT]

bf16 and fp16, both layouts, D ∈ {64, 128}, M ∈ {64, 128}, gran_n ∈ {1, 16, 64}, odd N, empty
and full query blocks, with every launch configuration the table gives and the TMA / non-TMA
and LPT / natural-order variants, Q/O descriptors on and off, persistent on and off (a second persistent
variant, flat loop toggled, and one taking rows from the work queue (``queue``) run under ``fgattn.limit_sms(n)``
with small n, so that each program walks several rows, with programs_per_sm 1 or 2), one program per row
(``one_row``, with ``idx_early``, ``tma_q``, ``guard_next``, ``tma_o`` and ``tail_fold`` drawn at random; on a
one_row entry ``guard_next``, ``tma_o`` and ``tail_fold`` toggled together) on and off, Q by a host TMA descriptor
(``tma_q``) on and off, part of the softmax's exp2 by the FMA polynomial (``exp_poly``) on and off, the tail tile reusing the prefetched index (``tail_reuse``) on and off, text-token masks (full text rows and columns) and the log-sum-exp output; outputs poisoned with NaN before each launch and scanned after;
relative error against the float64 reference ≤ 1e-2; unordered, duplicate and out-of-range
indices rejected with a clear ValueError; one Wan-sized case against SDPA with a boolean mask.
An ``impl: gluon`` table entry (``fgattn.gluon_fg``) is checked as itself, then its tl fallback with the toggles
above.  ``--gluon N``: N random cases on the Gluon form (the fg D128 M128 gran-1 entry with ``impl: gluon`` and
knobs drawn from :data:`GLUON_POOL`): bf16 / fp16, both layouts, B 1-2, H 1-4, odd and even N, text tokens (full
rows and columns), densities 0.01-1, an emptied and a full query block, LPT or natural order, a random sm_scale,
``limit_sms`` 1-20 or all SMs (programs walking many rows); each asserts that the Gluon form ran (not the tl
fallback: ``fgattn.fg_route``).  ``--gluon-entry``: the table entry's own knobs only (e.g. the candidate's
``epilogue: "tma"``); a case whose seed is a multiple of 10 writes into an ``out`` 2 bytes off 16-byte alignment
(an ``epilogue: "tma"`` launch then runs the STG row end: the O TMA store cannot write there).
``--contig N`` (a table whose dense / block D128 M128 entries are Gluon form ``contig``, e.g.
``FGATTN_LAUNCH_TABLE=kernels/logs/launch_configs-candidate-contig.json``): N random cases through the public
``dense_attention`` / ``block_sparse_attention`` / ``fg_attention`` with the table's own entries (no ``config``):
bf16 / fp16, both layouts, B 1-2, H 1-4, odd N (65 ... 3001: partial last key block, TMA boxes larger than the
tensor), dense cross-attention (N_kv != N_q), text tokens, densities 0.02-1 with an emptied and a full query block,
LPT or natural order, a random sm_scale, ``limit_sms`` 1-20 or all SMs, and ``return_lse`` calls (which fall back to
the tl entry); each asserts the route (``fgattn.contig_route`` / ``fg_route``: Gluon unless ``return_lse``) and that
the Gluon launch really ran (counted) or did not; plus a CUDA-graph capture of each contig kind after a warm-up
(the plan memoised before capture; the replay equals the eager output bit for bit).
Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]

import fgattn  # noqa: E402
from fgattn.attention import resolve_config  # noqa: E402
from fgattn.masks import window_mask  # noqa: E402

TOL = 1e-2
DEV = os.environ.get("FGATTN_CHECK_DEVICE", "cuda")  # "cpu" + TRITON_INTERPRET=1 for a dry run
SIZES = tuple(int(x) for x in os.environ.get("FGATTN_CHECK_SIZES", "1000,333").split(","))  # N per group
#: --lite (FGATTN_CHECK_LITE=1 in the workers): the table entry, one_row toggled, a persistent and a work-queue
#: variant on few SMs (the full check adds tma_qo / idx_ahead / tma / persistent / tma_q / tail_reuse toggles)
LITE = os.environ.get("FGATTN_CHECK_LITE", "0") == "1"
#: --table (FGATTN_CHECK_TABLE=1): the table entry and one_row toggled only
TABLE_ONLY = os.environ.get("FGATTN_CHECK_TABLE", "0") == "1"
FAILS: list[str] = []
COUNT = [0]
#: Gluon knobs the ``--gluon`` cases draw from: bench_kernels' v11 candidates (tests keep them equal) and the
#: entry's own knobs when the table has an ``impl: gluon`` entry
GLUON_POOL = ({"form": "ws2", "pipeline": 1, "fence": False}, {"form": "ws2", "pipeline": 3, "fence": False})
#: total sequence lengths of the ``--gluon`` cases (few, so that the workers share compiled specialisations)
GLUON_NS = (257, 1000, 1999, 2600)


def report(name: str, err: float, nan: bool) -> None:
    COUNT[0] += 1
    ok = (err <= TOL) and not nan
    if not ok:
        FAILS.append(f"{name}: err={err:.3e} nan={nan}")
        print("FAIL", FAILS[-1], flush=True)


def qkv(b, h, n, d, dtype, layout):
    shape = (b, h, n, d) if layout == "bhnd" else (b, n, h, d)
    return [torch.randn(shape, device=DEV, dtype=dtype) for _ in range(3)]


def slice_mask(b, h, n, m, gran, density):
    qb = -(-n // m)
    nt = -(-n // gran)
    tiles = torch.rand(b, h, qb, nt, device=DEV) < density
    tiles[0, 0, 0] = False  # an empty query block
    tiles[-1, -1, -1] = True  # a full (last, partial) query block
    if qb > 2:
        tiles[0, -1, 1] = True
    return tiles.repeat_interleave(gran, dim=-1)[..., :n]


def run(kind, q, k, v, index, m, g, layout, cfg, want_lse=False, sms=None):
    """(out, lse or None) of one kernel call on a NaN-poisoned output (under ``limit_sms(sms)`` if given)."""
    out = torch.full_like(q, float("nan"))
    kw = dict(layout=layout, config=cfg, out=out, return_lse=want_lse)
    with fgattn.limit_sms(sms) if sms else contextlib.nullcontext():
        if kind == "fg":
            res = fgattn.fg_attention(q, k, v, index, block_m=m, gran_n=g, check=True, **kw)
        elif kind == "block":
            res = fgattn.block_sparse_attention(q, k, v, index, block_m=m, check=True, **kw)
        else:
            res = fgattn.dense_attention(q, k, v, block_m=m, **kw)
    if DEV == "cuda":
        torch.cuda.synchronize()
    return (res if want_lse else (res, None))


def variants_of(kind: str, dname: str, base, rng: random.Random) -> tuple[list, dict[int, int]]:
    """Launch configurations checked for one (kind, gran): the table entry first, then toggles of its options;
    returns (configs, {config number: limit_sms} for those run on few SMs, several rows per program)."""
    if base.impl == "gluon":  # the Gluon form as the table gives it, then its tl fallback with the toggles below
        tl_variants, tl_sms = variants_of(kind, dname, base.tl_config(), rng)
        return [base, *tl_variants], {i + 1: n for i, n in tl_sms.items()}
    variants = [base]
    sms_of: dict[int, int] = {}
    # one program per row (``one_row``) toggled: on with idx_early and (fg) tma_q drawn at random
    if base.option("one_row", False):
        variants.append(dataclasses.replace(base, extra={
            k: val for k, val in base.extra.items() if k not in ("one_row", "idx_early")}))
        # the next-row loads guarded, O by TMA and (gran 1) the folded tail (``guard_next``, ``tma_o``,
        # ``tail_fold``: session 7) toggled together
        variants.append(dataclasses.replace(base, extra={
            **base.extra, "guard_next": not base.option("guard_next", False), "tma_o": not base.option("tma_o", False),
            "tail_fold": not base.option("tail_fold", False)}))
    else:
        variants.append(dataclasses.replace(base, extra={
            **base.extra, "one_row": True, "persistent": False, "idx_early": rng.random() < 0.75,
            "tma_q": kind == "fg" and rng.random() < 0.5, "tma_qo": False, "guard_next": rng.random() < 0.5,
            "tma_o": rng.random() < 0.5, "tail_fold": rng.random() < 0.5}))
    if kind == "dense":  # the masked last tile under a scalar branch toggled
        variants.append(dataclasses.replace(base, extra={**base.extra,
                                                         "tail_branch": not base.option("tail_branch", False)}))
    # part of the softmax's exp2 by the FMA polynomial (``exp_poly``: session 9) toggled, the fraction drawn
    variants.append(dataclasses.replace(base, extra={
        **base.extra, "exp_poly": rng.choice([0.125, 0.25, 0.5, 1]) if not base.option("exp_poly", 0) else 0}))
    if TABLE_ONLY:
        return variants, sms_of
    if not LITE:
        variants.append(dataclasses.replace(base, extra={**base.extra, "tma_qo": not base.option("tma_qo", False)}))
        if dname == "bf16" and kind == "fg":
            variants.append(dataclasses.replace(
                base, extra={**base.extra, "idx_ahead": 1 - int(base.option("idx_ahead", 0))}))
        elif dname == "bf16":
            variants.append(dataclasses.replace(
                base, extra={**base.extra, "tma": not base.option("tma", False), "warp_specialize": False}))
        # persistent toggled
        pers = not base.option("persistent", False)
        variants.append(dataclasses.replace(base, extra={**base.extra, "persistent": pers, "one_row": False}))
    # a persistent variant and one taking rows from the work queue (nested loop), on few SMs
    variants.append(dataclasses.replace(
        base, extra={**base.extra, "one_row": False, "persistent": True, "programs_per_sm": rng.choice([1, 2]),
                     "flatten": not base.option("flatten", True)}))
    sms_of[len(variants) - 1] = rng.choice([1, 3, 7, 20])
    variants.append(dataclasses.replace(
        base, extra={**base.extra, "one_row": False, "persistent": True, "flatten": False, "queue": True,
                     "programs_per_sm": rng.choice([1, 2])}))
    sms_of[len(variants) - 1] = rng.choice([1, 3, 7, 20])
    if kind == "fg" and not LITE:  # Q by a host TMA descriptor toggled (O by pointer stores); tail reuse toggled
        variants.append(dataclasses.replace(
            base, extra={**base.extra, "tma_qo": False, "tma_q": not base.option("tma_q", False),
                         "persistent": False}))
        variants.append(dataclasses.replace(
            base, extra={**base.extra, "idx_ahead": 1, "persistent": False, "one_row": False,
                         "tail_reuse": not base.option("tail_reuse", False)}))
    return variants, sms_of


def check_group(group: tuple[str, int, int, str]) -> tuple[int, list[str]]:
    """Worker: every kernel/config for one (dtype, D, M, layout); returns (checks, failures)."""
    from fgattn.masks import with_text

    dname, d, m, layout = group
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dname]
    seed = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    b, h = 2, 3
    for n in SIZES:
        q, k, v = qkv(b, h, n, d, dtype, layout)
        for kind, grans in (("fg", (1, 16, 64)), ("block", (m,)), ("dense", (1,))):
            for g in grans:
                base = resolve_config(kind, q, m, g)
                variants, sms_of = variants_of(kind, dname, base, rng)
                pats = ["dense"] if kind == "dense" else ["0.3", "1.0"] + (["text"] if g in (1, m) else [])
                for pat in pats:
                    index = None
                    if kind != "dense":
                        if pat == "text":  # 100 text tokens appended: full text rows and columns
                            mask = with_text(slice_mask(b, h, n - 100, m, g, 0.3), 100, m)
                        else:
                            mask = slice_mask(b, h, n, m, g, float(pat))
                        index = fgattn.build_index(mask, block_m=m, gran_n=g, order=pat != "1.0")
                    ref, ref_lse = fgattn.reference_attention(q, k, v, index, layout=layout, return_lse=True)
                    first_tl = next(i for i, c in enumerate(variants) if c.impl == "tl")
                    for i, cfg in enumerate(variants):
                        want_lse = i == first_tl  # the Gluon form has no LSE output (it would run the tl kernel)
                        sms = sms_of.get(i)
                        if cfg.impl == "gluon" and DEV == "cuda":
                            route = fgattn.fg_route(q, cfg) if kind == "fg" else fgattn.contig_route(
                                q, cfg, k=k, v=v, block_index=index, layout=layout)
                            if route[0] != "gluon":
                                FAILS.append(f"{kind} {dname} {layout} D{d} M{m} g{g}: impl gluon ran tl: {route[1]}")
                        out, lse = run(kind, q, k, v, index, m, g, layout, cfg, want_lse or sms is not None, sms)
                        err = float((out.double() - ref).norm() / ref.norm())
                        name = (f"{kind} {dname} {layout} D{d} N{n} M{m} g{g} mask {pat} "
                                f"bn{cfg.block_n} st{cfg.num_stages} w{cfg.num_warps} {cfg.extra} "
                                f"limit_sms={sms} seed {seed}")
                        report(name, err, bool(out.isnan().any()))
                        if lse is not None:
                            fin = torch.isfinite(ref_lse)
                            same = bool(torch.equal(torch.isfinite(lse), fin))
                            gap = float((lse.double()[fin] - ref_lse[fin]).abs().max()) if bool(fin.any()) else 0.0
                            report(name + " lse", gap if same else float("inf"), bool(lse.isnan().any()))
                        if index is not None and int(index.counts()[0]) == 0:
                            blk = out[0, 0, :m] if layout == "bhnd" else out[0, :m, 0]
                            if bool(blk.abs().max() != 0):
                                FAILS.append(f"{name}: empty query block not zero")
    return COUNT[0], FAILS


def gluon_cases(n: int, seed: int, pool: tuple[dict, ...] = GLUON_POOL) -> list[dict]:
    """``n`` random case specs for the Gluon form (plain dicts, built on any machine; see the module docstring)."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        n_total = rng.choice(GLUON_NS)
        text = rng.choice((0, 0, 100, 300)) if n_total > 300 else 0
        cases.append(dict(i=i, seed=rng.randrange(2**31), dtype=rng.choice(("bf16", "fp16")),
                          layout=rng.choice(("bhnd", "bnhd")), b=rng.choice((1, 2)), h=rng.randint(1, 4),
                          n=n_total, text=text, density=rng.choice((0.01, 0.05, 0.1, 0.3, 0.7, 1.0)),
                          order=rng.random() < 0.8, sms=rng.choice((None, None, 1, 3, 7, 20)),
                          sm_scale=rng.choice((None, None, 0.05)), knobs=dict(rng.choice(pool))))
    return cases


def check_gluon_chunk(cases: list[dict]) -> tuple[int, list[str]]:
    """Worker: the Gluon form on ``cases`` (:func:`gluon_cases`) against the float64 reference."""
    from fgattn.masks import with_text

    c0, f0 = COUNT[0], len(FAILS)  # a pool process may run several chunks: return this chunk's numbers
    entry = resolve_config("fg", torch.empty(1, 1, 1, 128, dtype=torch.bfloat16, device=DEV), 128, 1)
    for c in cases:
        torch.manual_seed(c["seed"])
        cfg = dataclasses.replace(entry.tl_config(), extra={**entry.tl_config().extra, "impl": "gluon",
                                                            "gluon": c["knobs"]})
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[c["dtype"]]
        b, h, n, m = c["b"], c["h"], c["n"], 128
        q, k, v = qkv(b, h, n, 128, dtype, c["layout"])
        if c["text"]:
            mask = with_text(slice_mask(b, h, n - c["text"], m, 1, c["density"]), c["text"], m)
            mask[0, 0, 0] = False  # an empty query block
        else:
            mask = slice_mask(b, h, n, m, 1, c["density"])
        index = fgattn.build_index(mask, block_m=m, gran_n=1, order=c["order"])
        name = (f"gluon case {c['i']} {c['dtype']} {c['layout']} B{b} H{h} N{n} text {c['text']} d {c['density']} "
                f"order {c['order']} limit_sms={c['sms']} sm_scale={c['sm_scale']} {c['knobs']} seed {c['seed']}")
        if DEV == "cuda" and fgattn.fg_route(q, cfg)[0] != "gluon":
            FAILS.append(f"{name}: ran tl ({fgattn.fg_route(q, cfg)[1]})")
            continue
        out = torch.full_like(q, float("nan"))
        if c["seed"] % 10 == 0:  # an out 2 bytes off 16-byte alignment (contiguous, same strides)
            out = torch.full((q.numel() + 1,), float("nan"), dtype=q.dtype, device=q.device)[1:].view(q.shape)
            name += " out misaligned"
        with fgattn.limit_sms(c["sms"]) if c["sms"] else contextlib.nullcontext():
            fgattn.fg_attention(q, k, v, index, block_m=m, gran_n=1, layout=c["layout"], config=cfg, out=out,
                                sm_scale=c["sm_scale"], check=True)
        if DEV == "cuda":
            torch.cuda.synchronize()
        ref = fgattn.reference_attention(q, k, v, index, layout=c["layout"], sm_scale=c["sm_scale"])
        err = float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))
        report(name, err, bool(out.isnan().any()))
        blk = out[0, 0, :m] if c["layout"] == "bhnd" else out[0, :m, 0]
        if int(index.counts()[0]) == 0 and bool(blk.abs().max() != 0):
            FAILS.append(f"{name}: empty query block not zero")
    return COUNT[0] - c0, FAILS[f0:]


#: total sequence lengths of the ``--contig`` cases: odd, partial last key block, a TMA box larger than the tensor
CONTIG_NS = (65, 127, 129, 257, 1000, 1999, 2600, 3001)


def contig_cases(n: int, seed: int) -> list[dict]:
    """``n`` random case specs for ``--contig`` (plain dicts, built on any machine; module docstring), sorted by
    (kind, dtype, return_lse) so that a worker's contiguous share needs few compiled specialisations."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        kind = rng.choice(("dense", "block", "block", "fg"))
        n_total = rng.choice(CONTIG_NS)
        cross = kind == "dense" and rng.random() < 0.25
        cases.append(dict(i=i, seed=rng.randrange(2**31), kind=kind, dtype=rng.choice(("bf16", "fp16")),
                          layout=rng.choice(("bhnd", "bnhd")), b=rng.choice((1, 2)), h=rng.randint(1, 4), n=n_total,
                          n_kv=rng.choice(CONTIG_NS) if cross else n_total,
                          text=rng.choice((0, 0, 100, 300)) if kind != "dense" and n_total > 300 else 0,
                          density=rng.choice((0.02, 0.05, 0.1, 0.3, 0.7, 1.0)), order=rng.random() < 0.75,
                          sms=rng.choice((None, None, 1, 3, 7, 20)), sm_scale=rng.choice((None, None, 0.05)),
                          lse=rng.random() < 0.15))
    return sorted(cases, key=lambda c: (c["kind"], c["dtype"], c["lse"], c["i"]))


class _Counted:
    """Counts the calls of a module function it replaces (the worker's evidence that a Gluon launch ran)."""

    def __init__(self, mod, name: str):
        self.fn, self.n = getattr(mod, name), 0
        setattr(mod, name, self)

    def __call__(self, *a, **kw):
        self.n += 1
        return self.fn(*a, **kw)


def _contig_inputs(c: dict):
    """q, k, v and the index (None for dense) of a ``--contig`` case."""
    from fgattn.masks import with_text

    torch.manual_seed(c["seed"])
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[c["dtype"]]
    b, h, n, m = c["b"], c["h"], c["n"], 128
    q = qkv(b, h, n, 128, dtype, c["layout"])[0]
    k, v = qkv(b, h, c["n_kv"], 128, dtype, c["layout"])[:2]
    if c["kind"] == "dense":
        return q, k, v, None
    g = 1 if c["kind"] == "fg" else m
    if c["text"]:
        mask = with_text(slice_mask(b, h, n - c["text"], m, g, c["density"]), c["text"], m)
        mask[0, 0, 0] = False  # an empty query block
    else:
        mask = slice_mask(b, h, n, m, g, c["density"])
    return q, k, v, fgattn.build_index(mask, block_m=m, gran_n=g, order=c["order"])


def check_contig_chunk(cases: list[dict]) -> tuple[int, list[str]]:
    """Worker: ``--contig`` cases through the public entry points with the table's entries, against float64."""
    from fgattn import gluon_contig, gluon_fg_list

    c0, f0 = COUNT[0], len(FAILS)
    launches = {"dense": _Counted(gluon_contig, "contig_attention_gluon"),
                "fg": _Counted(gluon_fg_list, "fg_attention_gluon_list")}
    launches["block"] = launches["dense"]
    for c in cases:
        q, k, v, index = _contig_inputs(c)
        kind, layout, m = c["kind"], c["layout"], 128
        entry = resolve_config(kind, q, m, 1)
        name = (f"contig case {c['i']} {kind} {c['dtype']} {layout} B{c['b']} H{c['h']} N{c['n']} Nkv{c['n_kv']} "
                f"text {c['text']} d {c['density']} order {c['order']} limit_sms={c['sms']} sm_scale={c['sm_scale']} "
                f"lse {c['lse']} seed {c['seed']}")
        route = (fgattn.fg_route(q, entry, return_lse=c["lse"], k=k, v=v, index=index) if kind == "fg" else
                 fgattn.contig_route(q, entry, return_lse=c["lse"], k=k, v=v, block_index=index, layout=layout))
        want = "tl" if c["lse"] or DEV != "cuda" else "gluon"
        if route[0] != want:
            FAILS.append(f"{name}: route {route} (want {want})")
        out = torch.full_like(q, float("nan"))
        kw = dict(layout=layout, out=out, sm_scale=c["sm_scale"], return_lse=c["lse"])
        n0 = launches[kind].n
        with fgattn.limit_sms(c["sms"]) if c["sms"] else contextlib.nullcontext():
            if kind == "dense":
                res = fgattn.dense_attention(q, k, v, **kw)
            elif kind == "block":
                res = fgattn.block_sparse_attention(q, k, v, index, check=True, **kw)
            else:
                res = fgattn.fg_attention(q, k, v, index, block_m=m, check=True, **kw)
        if DEV == "cuda":
            torch.cuda.synchronize()
        if launches[kind].n - n0 != (route[0] == "gluon"):
            FAILS.append(f"{name}: {launches[kind].n - n0} Gluon launches, route {route}")
        ref, ref_lse = fgattn.reference_attention(q, k, v, index, layout=layout, sm_scale=c["sm_scale"],
                                                  return_lse=True)
        err = float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))
        report(name, err, bool(out.isnan().any()))
        if c["lse"]:
            lse = res[1]
            fin = torch.isfinite(ref_lse)
            same = bool(torch.equal(torch.isfinite(lse), fin))
            gap = float((lse.double()[fin] - ref_lse[fin]).abs().max()) if bool(fin.any()) else 0.0
            report(name + " lse", gap if same else float("inf"), bool(lse.isnan().any()))
        blk = out[0, 0, :m] if layout == "bhnd" else out[0, :m, 0]
        if index is not None and int(index.counts()[0]) == 0 and bool(blk.abs().max() != 0):
            FAILS.append(f"{name}: empty query block not zero")
    return COUNT[0] - c0, FAILS[f0:]


def check_contig_graphs(seed: int) -> None:
    """A dense and a block contig call captured in a CUDA graph after one eager warm-up call (which memoises the
    plan): the route under capture is the Gluon form and the replay equals the eager output bit for bit."""
    from fgattn import contig_plans

    for kind in ("dense", "block"):
        c = dict(seed=seed, kind=kind, dtype="bf16", layout="bnhd", b=1, h=3, n=1999, n_kv=1999, text=0,
                 density=0.3, order=True)
        q, k, v, index = _contig_inputs(c)
        out = torch.full_like(q, float("nan"))
        args = (q, k, v) if kind == "dense" else (q, k, v, index)
        call = fgattn.dense_attention if kind == "dense" else fgattn.block_sparse_attention
        call(*args, layout="bnhd", out=out)
        torch.cuda.synchronize()
        eager = out.clone()
        entry = resolve_config(kind, q, 128, 1)
        g = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):
            out.fill_(float("nan"))
            with torch.cuda.graph(g, stream=s):
                route = fgattn.contig_route(q, entry, k=k, v=v, block_index=index, layout="bnhd")
                capturing = contig_plans.capturing()
                call(*args, layout="bnhd", out=out)
        torch.cuda.synchronize()  # the NaN fill on the side stream is done before the replay
        g.replay()
        torch.cuda.synchronize()
        COUNT[0] += 1
        ok = route[0] == "gluon" and "prepared before capture" in route[1] and capturing
        if not ok or not torch.equal(out, eager):
            FAILS.append(f"contig graph {kind}: route {route}, capturing {capturing}, replay == eager "
                         f"{bool(torch.equal(out, eager))}")
        print(f"contig graph {kind}: route {route}; replay == eager {bool(torch.equal(out, eager))}", flush=True)


def check_contig(n: int, workers: int, seed: int) -> None:
    """``--contig N``: :func:`contig_cases` in contiguous chunks over worker processes, then the graph check."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    cases = contig_cases(n, seed)
    step = -(-n // min(workers, n))
    chunks = [cases[i:i + step] for i in range(0, n, step)]
    print(f"contig: {n} cases (seed {seed}) in {len(chunks)} workers: " + ", ".join(
        f"{kd} {sum(c['kind'] == kd for c in cases)}" for kd in ("dense", "block", "fg"))
        + f"; {sum(c['lse'] for c in cases)} return_lse", flush=True)
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=mp.get_context("spawn")) as ex:
        for count, fails in ex.map(check_contig_chunk, chunks):
            COUNT[0] += count
            FAILS.extend(fails)
    if DEV == "cuda":
        check_contig_graphs(seed)
    print(f"contig: done, {len(FAILS)} failures so far", flush=True)


def contig_table_error() -> str | None:
    """Why the launch table in use cannot serve ``--contig`` (its dense / block D128 M128 entries must be Gluon
    form contig), or None."""
    from fgattn.launch import table_file

    for kind in ("dense", "block"):
        e = fgattn.launch_config(kind, "h200", 128, 128)
        if e.impl != "gluon" or e.extra["gluon"].get("form") != "contig":
            return (f"--contig needs a launch table whose {kind} h200 D128 M128 entry is impl gluon, form contig; "
                    f"{table_file()} has impl {e.impl} (set FGATTN_LAUNCH_TABLE, e.g. "
                    "kernels/logs/launch_configs-candidate-contig.json)")
    return None


def gluon_pool(entry_only: bool) -> tuple[dict, ...]:
    """The knob sets of the ``--gluon`` cases: :data:`GLUON_POOL` plus the table's fg D128 M128 g1 entry's own
    knobs if it is ``impl: gluon`` and they are not in it; ``entry_only`` (``--gluon-entry``): the entry's alone
    (ValueError if the entry is not ``impl: gluon``)."""
    entry = fgattn.launch_config("fg", "h200", 128, 128, 1)
    if entry_only:
        if entry.impl != "gluon":
            from fgattn.launch import table_file

            raise ValueError(f"--gluon-entry: the fg h200 D128 M128 g1 entry of {table_file()} is impl {entry.impl}")
        return (dict(entry.extra["gluon"]),)
    pool = GLUON_POOL
    if entry.impl == "gluon" and entry.extra["gluon"] not in pool:
        pool = (*pool, dict(entry.extra["gluon"]))
    return pool


def check_gluon(n: int, workers: int, seed: int, entry_only: bool = False) -> None:
    """``--gluon N``: :func:`gluon_cases` split over worker processes."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool = gluon_pool(entry_only)
    cases = gluon_cases(n, seed, pool)
    chunks = [cases[i::workers] for i in range(min(workers, n))]
    print(f"gluon: {n} cases (seed {seed}) in {len(chunks)} workers, knobs {list(pool)}", flush=True)
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=mp.get_context("spawn")) as ex:
        for count, fails in ex.map(check_gluon_chunk, chunks):
            COUNT[0] += count
            FAILS.extend(fails)
    print(f"gluon: done, {len(FAILS)} failures so far", flush=True)


def check_all(workers: int) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    groups = [(dn, d, m, lay) for dn in ("bf16", "fp16") for d in (64, 128) for m in (64, 128)
              for lay in ("bhnd", "bnhd")]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
        for (count, fails), g in zip(ex.map(check_group, groups), groups, strict=True):
            COUNT[0] += count
            FAILS.extend(fails)
            print(f"group {g}: {count} checks, {len(fails)} failures", flush=True)


def check_rejections() -> None:
    n, m = 500, 64
    q, k, v = qkv(1, 2, n, 64, torch.bfloat16, "bhnd")
    mask = slice_mask(1, 2, n, m, 1, 0.3)
    index = fgattn.build_index(mask, block_m=m)
    cases = {}
    bad = index.indices.clone()
    r = int((index.counts() > 3).nonzero()[0])
    a = int(index.offsets[r])
    bad[a], bad[a + 1] = bad[a + 1].clone(), bad[a].clone()
    cases["sorted"] = dataclasses.replace(index, indices=bad)
    dup = index.indices.clone()
    dup[a + 1] = dup[a]
    cases["duplicate"] = dataclasses.replace(index, indices=dup)
    oor = index.indices.clone()
    oor[a] = n
    cases["out of range"] = dataclasses.replace(index, indices=oor)
    for what, idx in cases.items():
        try:
            fgattn.fg_attention(q, k, v, idx, block_m=m, check=True)
            FAILS.append(f"{what} index accepted")
        except ValueError as e:
            msg = str(e)
            want = "out of range" if what == "out of range" else "sorted strictly increasing"
            COUNT[0] += 1
            if want not in msg:
                FAILS.append(f"{what} index rejected with unclear message: {msg}")
            print(f"rejected ({what}): {msg}")


def check_large() -> None:
    """Wan-sized head against SDPA with a boolean mask (int32 offset arithmetic at N=75,600)."""
    for layout, n, h in (("bnhd", 75600, 2), ("bhnd", 32760, 1)):
        q, k, v = qkv(1, h, n, 128, torch.bfloat16, layout)
        mask = window_mask(1, h, n, 128, 0.3, device=DEV)
        index = fgattn.build_index(mask, block_m=128, order=True, check=True)
        out = torch.full_like(q, float("nan"))
        fgattn.fg_attention(q, k, v, index, block_m=128, layout=layout, out=out)
        qt, kt, vt = ((t.transpose(1, 2) if layout == "bnhd" else t) for t in (q, k, v))
        rows = torch.cat([torch.arange(0, 4096), torch.arange(n - 1000, n)]).to(DEV)  # incl. the partial block
        for hh in range(h):
            full = mask[0, hh][rows // 128]  # (rows, N) bool
            ref = torch.nn.functional.scaled_dot_product_attention(
                qt[:, hh:hh + 1, rows].float(), kt[:, hh:hh + 1].float(), vt[:, hh:hh + 1].float(), attn_mask=full)
            o = (out.transpose(1, 2) if layout == "bnhd" else out)[:, hh:hh + 1, rows]
            err = float((o.float() - ref).norm() / ref.norm())
            report(f"large {layout} N{n} head{hh} vs SDPA fp32 masked", err, bool(o.isnan().any()))
            print(f"large {layout} N={n} head {hh}: rel err {err:.2e}")
            del full, ref


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", ""))
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--lite", action="store_true", help="fewer option toggles per table entry (see LITE)")
    ap.add_argument("--table", action="store_true", help="the table entries and one_row toggled only")
    ap.add_argument("--gluon", type=int, default=0, metavar="N",
                    help="also N random cases on the Gluon form (impl gluon, knobs from GLUON_POOL)")
    ap.add_argument("--gluon-seed", type=int, default=None, help="seed of the --gluon cases (default: random)")
    ap.add_argument("--gluon-only", action="store_true", help="the --gluon / --contig cases alone (no table check)")
    ap.add_argument("--gluon-entry", action="store_true",
                    help="--gluon cases with the table's fg D128 M128 g1 entry's own knobs only")
    ap.add_argument("--contig", type=int, default=0, metavar="N",
                    help="also N random dense / block / fg cases through the public entry points on a table with "
                         "Gluon contig entries (FGATTN_LAUNCH_TABLE)")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments and print the plan; no GPU")
    args = ap.parse_args()
    if args.gluon < 0 or args.contig < 0 or args.workers < 1:
        print(f"gpu_check_kernels: --gluon {args.gluon} / --contig {args.contig} / --workers {args.workers}: must be "
              ">= 0 / >= 0 / >= 1", file=sys.stderr)
        sys.exit(2)
    if args.gluon_only and not (args.gluon or args.contig):
        print("gpu_check_kernels: --gluon-only needs --gluon N or --contig N", file=sys.stderr)
        sys.exit(2)
    if args.contig and (why := contig_table_error()):
        print(f"gpu_check_kernels: {why}", file=sys.stderr)
        sys.exit(2)
    if args.gluon_entry and not args.gluon:
        print("gpu_check_kernels: --gluon-entry needs --gluon N", file=sys.stderr)
        sys.exit(2)
    try:
        pool = gluon_pool(args.gluon_entry)
    except ValueError as e:
        print(f"gpu_check_kernels: {e}", file=sys.stderr)
        sys.exit(2)
    gseed = args.gluon_seed if args.gluon_seed is not None else int.from_bytes(os.urandom(4), "little")
    if args.dry_run:
        cases = gluon_cases(args.gluon, gseed, pool)
        print(f"[dry-run] table check: {'no' if args.gluon_only else 'table' if args.table else 'lite' if args.lite else 'full'}; "
              f"gluon cases {len(cases)} (seed {gseed}): "
              f"{sum(c['text'] > 0 for c in cases)} with text, {sum(c['sms'] is not None for c in cases)} on few SMs, "
              f"{sum(c['layout'] == 'bnhd' for c in cases)} bnhd, {sum(c['dtype'] == 'fp16' for c in cases)} fp16, "
              f"{sum(c['n'] % 2 == 1 for c in cases)} odd N, {sum(c['seed'] % 10 == 0 for c in cases)} misaligned out; "
              f"knobs {list(pool)}")
        if args.contig:
            cc = contig_cases(args.contig, gseed)
            print(f"[dry-run] contig cases {len(cc)} (seed {gseed}): " + ", ".join(
                f"{kd} {sum(c['kind'] == kd for c in cc)}" for kd in ("dense", "block", "fg"))
                + f"; {sum(c['lse'] for c in cc)} return_lse, {sum(c['n'] % 2 == 1 for c in cc)} odd N, "
                f"{sum(c['n_kv'] != c['n'] for c in cc)} cross, {sum(c['text'] > 0 for c in cc)} with text, "
                f"{sum(c['sms'] is not None for c in cc)} on few SMs, {sum(c['layout'] == 'bnhd' for c in cc)} bnhd, "
                f"{sum(c['dtype'] == 'fp16' for c in cc)} fp16, {sum(not c['order'] for c in cc)} natural order")
        return
    if args.lite:
        os.environ["FGATTN_CHECK_LITE"] = "1"  # the spawned workers read it at import
        globals()["LITE"] = True
    if args.table:
        os.environ["FGATTN_CHECK_TABLE"] = "1"
        globals()["TABLE_ONLY"] = True
    t0 = time.perf_counter()
    print(torch.cuda.get_device_name() if DEV == "cuda" else DEV, torch.__version__, __import__("triton").__version__)
    if not args.gluon_only:
        check_all(args.workers)
        print(f"[time] configs {time.perf_counter() - t0:.1f}s", flush=True)
    if args.gluon:
        check_gluon(args.gluon, args.workers, gseed, args.gluon_entry)
        print(f"[time] gluon {time.perf_counter() - t0:.1f}s", flush=True)
    if args.contig:
        from fgattn.launch import table_file

        print(f"contig: table {table_file()}", flush=True)
        check_contig(args.contig, args.workers, gseed)
        print(f"[time] contig {time.perf_counter() - t0:.1f}s", flush=True)
    if not args.gluon_only:
        check_rejections()
        check_large()
    print(f"[time] total {time.perf_counter() - t0:.1f}s")
    print(f"gpu_check: {COUNT[0]} checks, {len(FAILS)} failures")
    for f in FAILS[:40]:
        print("  ", f)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
