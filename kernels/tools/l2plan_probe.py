"""The L2-aware band plan (``fgattn.l2_plan.plan_l2_band``) against the packaged fg entry's own list plan: float64
check, paired graph timing, the pre-registered rule, and an LRU model of each plan's L2 traffic (no ncu).

Issue 12, session 14, helper L (kernels/NOTES.md, "Session 14 research: L2-aware list plan (helper L)")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/l2plan_probe.py --out $OUT          # GPU: check + timing
    PYTHONPATH=.:kernels:validation python3 kernels/tools/l2plan_probe.py --dry-run           # any machine
    PYTHONPATH=.:kernels:validation python3 kernels/tools/l2plan_probe.py --model OUT.csv     # CPU: L2 model
    python3 kernels/tools/l2plan_probe.py --analyze CSV                                         # CPU: the rule

Variants (one kernel, :func:`fgattn.gluon_fg._fg_gluon_ws2` with ``PLANNED``; only the row plan differs):
``entry`` = ``fgattn.fg_attention`` under the packaged launch table (fg D128 M128 g1: Gluon ws2 ``schedule: list``,
its plan memoised per index before capture by ``gluon_fg_list.prepare_list_plan``); ``entry_ctl`` = the same call
timed as a second case (the control); ``l2band`` = :func:`fgattn.gluon_fg_list.fg_attention_gluon_list` over
:func:`fgattn.l2_plan.plan_l2_band`.  Check: ``ws2_list_probe``'s random cases (float64 reference, relative
Frobenius error <= 1e-2, no NaN, the emptied block zero) for the list plan and the band plan, and the band plan's
output compared with the list plan's (same kernel, same per-row code: expected bitwise equal).  Timing: the
benchmark's window masks in launch order (``entry_regress.build_index``), CUDA-graph replay, ``--rounds``
interleaved rounds in a fresh random order per round (``bench_kernels.timed_rounds``), ratios paired per round
against ``entry``, SM / memory clock sampled by nvidia-smi during the rounds.
"""

from __future__ import annotations

import argparse
import csv
import functools
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

BASE = "entry"
VARIANTS = ("entry", "entry_ctl", "l2band")
#: the pre-registered rule (kernels/NOTES.md, session 14, written before the call): the control (``entry_ctl``) is
#: valid when its geo-mean over the timed cells lies in 1 +- CONTROL_GEO_BAND and every cell's median in
#: 1 +- CONTROL_CELL_BAND; ``l2band`` is then eligible when its check passed (float64 and equal to the list plan's
#: output), its paired median is <= MAX_REL x entry at every cell, and its geo-mean over the cells with density
#: <= LOW_D is <= LOW_GEO_MAX.
CONTROL_GEO_BAND = 0.01
CONTROL_CELL_BAND = 0.04
MAX_REL = 1.02
LOW_D = 0.05
LOW_GEO_MAX = 0.98
#: bytes of one key's K row + V row (D 128, 16-bit): the L2 model's unit
UNIT_BYTES = 2 * D * 2
COLS = ["shape", "H", "N", "n_text", "density_target", "density", "variant", "config", "ms", "ms_min", "ms_max",
        "rel_entry", "rel_entry_min", "rel_entry_max", "rounds", "reps", "rows", "rows_per_sm", "exec_tiles_per_row",
        "plan_makespan_over_mean", "clocks_under_load", "timing", "statistic"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--shapes", default="12x32760,12x32760+512,40x75600", help="HxN[+TEXT], comma-separated")
    ap.add_argument("--densities", default="0.02,0.05,0.1,0.5", help="density targets, comma-separated")
    ap.add_argument("--shape-densities", default="", help="per-shape density lists, e.g. 40x75600:0.02/0.1")
    ap.add_argument("--variants", default="entry,entry_ctl,l2band", help=f"timed, of {list(VARIANTS)}")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=20.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=141, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=75.0, help="skip later cells after this many timing seconds")
    ap.add_argument("--check", type=int, default=100, metavar="N", help="random check cases (0: none)")
    ap.add_argument("--check-seed", type=int, default=1414, help="seed of the random check cases")
    ap.add_argument("--check-timeout-s", type=float, default=90.0, help="check child processes' wall limit")
    ap.add_argument("--check-procs", type=int, default=14, help="check child processes (spec_key groups)")
    ap.add_argument("--inline-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-shard", default="0/1", help=argparse.SUPPRESS)
    ap.add_argument("--inline-prewarm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-time", action="store_true", help="skip the timing")
    ap.add_argument("--tag", default="", help="file name suffix (write --tag=-x)")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--model", type=Path, default=None, metavar="CSV",
                    help="no GPU: the LRU model of both plans' L2 traffic on the --shapes masks, written to CSV")
    ap.add_argument("--model-caps-mb", default="25,50", help="L2 capacities (MiB) the model evaluates")
    ap.add_argument("--analyze", type=Path, default=None, metavar="CSV", help="no GPU: the rule on a timing CSV")
    a = ap.parse_args(argv)
    if a.analyze is not None:
        if not a.analyze.is_file():
            ap.error(f"--analyze: {a.analyze} is not a file")
        return a
    parse_cells(ap, a)
    a.variant_list = a.variants.split(",")
    bad = [v for v in a.variant_list if v not in VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad} (known: {list(VARIANTS)})")
    if BASE not in a.variant_list and not a.no_time:
        ap.error(f"--variants: every ratio is paired with {BASE!r}; include it")
    try:
        a.caps_mb = [float(x) for x in a.model_caps_mb.split(",")]
    except ValueError:
        ap.error(f"--model-caps-mb: {a.model_caps_mb!r} is not a comma-separated list of numbers")
    if any(not 0 < c < 1e6 for c in a.caps_mb):
        ap.error(f"--model-caps-mb: {a.model_caps_mb!r} must be positive MiB")
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
    if not (a.dry_run or a.model is not None) and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


# ------------------------------------------------------------------------------------------------ pure analysis


def rule_verdict(rows: list[dict[str, str]], check_ok: bool | None = None) -> tuple[str, list[str]]:
    """('eligible' | 'not eligible' | 'void', reasons) of ``l2band`` from a timing CSV's rows (``rel_entry``);
    ``check_ok`` False (the check failed) makes it 'not eligible'."""
    rel: dict[str, dict[tuple[str, float], float]] = {}
    for r in rows:
        if r["variant"] in ("entry_ctl", "l2band") and r.get("rel_entry", "") != "":
            rel.setdefault(r["variant"], {})[(r["shape"], float(r["density_target"]))] = float(r["rel_entry"])
    ctl, band = rel.get("entry_ctl", {}), rel.get("l2band", {})
    if not ctl or set(ctl) != set(band):
        return "void", ["the timing lacks paired entry_ctl / l2band rows at some cell"]
    why = control_void_reasons("entry_ctl", ctl, CONTROL_GEO_BAND, CONTROL_CELL_BAND)
    if why:
        return "void", why
    bad = [] if check_ok is not False else ["the check failed"]
    bad += [f"l2band {v:.3f} > {MAX_REL} at {k[0]} d {k[1]}" for k, v in sorted(band.items()) if v > MAX_REL]
    low = [v for k, v in band.items() if k[1] <= LOW_D]
    low_geo = geo_mean(low) if low else float("nan")
    if not low or low_geo > LOW_GEO_MAX:
        bad.append(f"l2band geo-mean {low_geo:.3f} over the d <= {LOW_D} cells > {LOW_GEO_MAX}")
    if bad:
        return "not eligible", bad
    geo = geo_mean(list(ctl.values()))
    return "eligible", [f"entry_ctl geo-mean {geo:.3f}; l2band {min(band.values()):.3f}-{max(band.values()):.3f}, "
                        f"geo-mean at d <= {LOW_D} {low_geo:.3f}"]


def analyze(path: Path) -> tuple[str, list[str]]:
    """Print each cell's paired rel (min-max) and the rule's verdict."""
    rows = list(csv.DictReader(open(path, newline="")))
    for r in rows:
        print(f"[sum] {r['shape']:<24} d {r['density_target']:<5} {r['variant']:<10} {r['ms']} ms rel "
              f"{r['rel_entry']} ({r['rel_entry_min']}-{r['rel_entry_max']}) plan {r['plan_makespan_over_mean']}",
              flush=True)
    for v in ("entry_ctl", "l2band"):
        xs = [float(r["rel_entry"]) for r in rows if r["variant"] == v and r["rel_entry"] != ""]
        lo = [float(r["rel_entry"]) for r in rows if r["variant"] == v and r["rel_entry"] != ""
              and float(r["density_target"]) <= LOW_D]
        if xs:
            print(f"[geo] {v}: all {geo_mean(xs):.3f} ({len(xs)} cells)"
                  + (f", d <= {LOW_D} {geo_mean(lo):.3f} ({len(lo)})" if lo else ""), flush=True)
    verdict, why = rule_verdict(rows)
    print(f"[rule] {verdict}: " + "; ".join(why), flush=True)
    return verdict, why


# ------------------------------------------------------------------------------------------------ L2 model (CPU)
def plan_lists(plan: Any) -> list[list[int]]:
    """A ``LanePlan``'s rows per program (lanes 1), in the order each program runs them."""
    st, fl = plan.start.tolist(), plan.rows.tolist()
    return [fl[st[i]:st[i + 1]] for i in range(plan.programs)]


def access_stream(offsets: np.ndarray, indices: np.ndarray, n_keys: int, n_qblocks: int, lists: list[list[int]],
                  c_row: float = 3.0, block_n: int = 128, q_units: int = 64, o_units: int = 64
                  ) -> tuple[np.ndarray, int]:
    """The plan's L2 access stream in modelled time order: every program runs its rows back to back, row r costs
    ``c_row`` + its executed 128-key tiles (time units of one tile); a row reads its Q block (``q_units`` fresh
    lines of UNIT_BYTES) at its start, gathers tile i's keys at start + c_row / 2 + i and writes O (``o_units``
    fresh lines) at its end.  Ids ``< key_space`` are (head, key) units (K row + V row), re-usable; larger ids are
    never re-used (Q, O).  Ties in time go to the lower program.  -> (ids int64, key_space)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    tiles = np.maximum(-(-counts // block_n), 1)
    parts: list[tuple[np.ndarray, ...]] = []
    for p, rows in enumerate(lists):
        rows_a = np.asarray(rows, dtype=np.int64)
        if not rows_a.size:
            continue
        nt = tiles[rows_a]
        cost = c_row + nt
        start = np.concatenate([[0.0], np.cumsum(cost)[:-1]])
        ti = np.repeat(np.arange(rows_a.size), nt)
        j = np.arange(int(nt.sum())) - np.repeat(np.cumsum(nt) - nt, nt)
        r = rows_a[ti]
        lo = offsets[r] + j * block_n
        ln = np.clip(offsets[r + 1] - lo, 0, block_n)
        pe = np.full(r.size, p)
        parts.append((start[ti] + c_row / 2 + j, pe, lo, ln, (r // n_qblocks) * n_keys, np.zeros(r.size, bool)))
        k = rows_a.size
        for t, u in ((start, q_units), (start + cost - 1e-6, o_units)):
            parts.append((t, np.full(k, p), np.zeros(k, np.int64), np.full(k, u), np.zeros(k, np.int64),
                          np.ones(k, bool)))
    t, pe, lo, ln, base, fresh = (np.concatenate([x[i] for x in parts]) for i in range(6))
    o = np.lexsort((pe, t))
    lo, ln, base, fresh = lo[o], ln[o].astype(np.int64), base[o], fresh[o]
    key_space = int((offsets.size - 1) // n_qblocks * n_keys)
    first = np.cumsum(ln) - ln
    j = np.arange(int(ln.sum())) - np.repeat(first, ln)
    is_fresh = np.repeat(fresh, ln)
    src = np.where(is_fresh, 0, np.repeat(lo, ln) + j)
    ids = np.asarray(indices, dtype=np.int64)[src] + np.repeat(base, ln) if src.size else np.zeros(0, np.int64)
    ids[is_fresh] = key_space + np.arange(int(is_fresh.sum()))
    return ids, key_space


def _lru_python(ids: np.ndarray, caps: list[int], key_space: int) -> tuple[int, list[int]]:
    """Reference LRU (pure Python): (first touches of key units, re-touch misses per capacity in units)."""
    from collections import OrderedDict

    first, miss = 0, [0] * len(caps)
    stacks = [OrderedDict() for _ in caps]
    seen: set[int] = set()
    for x in ids.tolist():
        if x < key_space and x not in seen:
            first += 1
        for c, st in enumerate(stacks):
            if x in st:
                st.move_to_end(x)
            else:
                if x in seen and x < key_space:
                    miss[c] += 1
                st[x] = None
                if len(st) > caps[c]:
                    st.popitem(last=False)
        seen.add(x)
    return first, miss


def _lru_stack(ids: np.ndarray, caps: np.ndarray, key_space: int) -> tuple[int, np.ndarray]:
    """Stack-distance LRU (Fenwick tree over access positions): a re-touch misses a cache of c units when at
    least c distinct units were touched since its previous touch.  Same result as :func:`_lru_python`."""
    n = ids.shape[0]
    tree = np.zeros(n + 1, np.int32)
    last = np.full(int(ids.max()) + 1 if n else 1, -1, np.int64)
    miss = np.zeros(caps.shape[0], np.int64)
    first = 0
    for i in range(n):
        x = ids[i]
        jj = last[x]
        if jj < 0:
            if x < key_space:
                first += 1
        else:
            s = 0
            k = i
            while k > 0:
                s += tree[k]
                k -= k & -k
            k = jj + 1
            while k > 0:
                s -= tree[k]
                k -= k & -k
            if x < key_space:
                for c in range(caps.shape[0]):
                    if s >= caps[c]:
                        miss[c] += 1
            k = jj + 1
            while k <= n:
                tree[k] -= 1
                k += k & -k
        k = i + 1
        while k <= n:
            tree[k] += 1
            k += k & -k
        last[x] = i
    return first, miss


@functools.cache
def _jit_lru() -> Any:
    """:func:`_lru_stack` compiled by numba (None without numba)."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=False)(_lru_stack)


def lru_misses(ids: np.ndarray, key_space: int, caps_units: list[int]) -> tuple[int, list[int]]:
    """(first touches, re-touch misses per capacity) of the key units in ``ids`` under LRU caches of
    ``caps_units`` units; numba-compiled when numba imports, else the pure-Python reference."""
    fn = _jit_lru()
    if fn is None:
        return _lru_python(ids, list(caps_units), key_space)
    first, miss = fn(np.ascontiguousarray(ids, dtype=np.int64), np.asarray(caps_units, dtype=np.int64),
                     int(key_space))
    return int(first), [int(m) for m in miss]


def model_rows(idx: Any, caps_mb: list[float], programs: int = 132) -> list[dict[str, Any]]:
    """The plans of ``idx`` (``entry``: ``plan_ws2_list``; ``l2band``; ``l2band_lpt``: heaviest first inside a
    head, not timed): planned makespan / mean, heads in flight
    and the LRU model's K/V DRAM reads (bytes, and as a multiple of the K/V bytes) at each capacity."""
    from fgattn import gluon_fg_m64 as g
    from fgattn.gluon_fg_list import C_ROW_TILES, plan_ws2_list
    from fgattn.l2_plan import plan_l2_band

    off = idx.offsets.cpu().numpy().astype(np.int64)
    ind = idx.indices.cpu().numpy()
    kv_bytes = idx.batch * idx.heads * idx.n_keys * UNIT_BYTES
    caps_units = [int(c * 2**20) // UNIT_BYTES for c in caps_mb]
    costs = g.row_costs(np.diff(off).tolist(), 128, C_ROW_TILES)
    head = [r // idx.n_qblocks for r in range(idx.n_rows)]
    out = []
    plans = (("entry", plan_ws2_list(idx, programs=programs)), ("l2band", plan_l2_band(idx, programs=programs)),
             ("l2band_lpt", plan_l2_band(idx, programs=programs, within="lpt")))  # l2band_lpt: modelled only
    for name, plan in plans:
        lists = plan_lists(plan)
        ids, ks = access_stream(off, ind, idx.n_keys, idx.n_qblocks, lists, C_ROW_TILES)
        first, miss = lru_misses(ids, ks, caps_units)
        heads_mean, heads_peak = g.inflight_heads(costs, [[x] for x in lists], head)
        r = dict(variant=name, plan=plan.schedule, plan_makespan_over_mean=round(plan.makespan / plan.mean_load, 4),
                 heads_inflight=round(heads_mean, 2), heads_peak=heads_peak, kv_bytes=kv_bytes,
                 gathered_bytes=int((ids < ks).sum()) * UNIT_BYTES)
        for c, m in zip(caps_mb, miss, strict=True):
            r[f"kv_dram_bytes_l2_{c:g}MiB"] = (first + m) * UNIT_BYTES
            r[f"kv_dram_over_kv_l2_{c:g}MiB"] = round((first + m) * UNIT_BYTES / kv_bytes, 3)
        out.append(r)
    return out


def window_mask_cpu(heads: int, n: int, density: float, *, sinks: int = 64, seed: int = 0, tol: float = 0.005):
    """``fgattn.masks.window_mask(1, heads, n, 128, density)`` on the CPU with a small memory footprint: the same
    bisection of the window scale, but each step's kept count computed exactly per axis (a block keeps the keys
    whose (t, y, x) each lie within the window of its bounding box: a product of three per-axis counts, plus the
    sinks outside it) instead of materialising (H, QB, N, 3); then the mask built head by head with
    ``window_mask``'s ops (tested equal).  ``n`` must fill its ``video_grid`` exactly (the counts assume every
    (t, y, x) exists)."""
    import torch
    from fgattn.masks import video_grid

    grid = video_grid(n)
    t, y, x = grid
    if t * y * x != n:
        raise ValueError(f"window_mask_cpu: n={n} does not fill its grid {grid}")
    ar = torch.arange(n)
    coords = torch.stack([ar // (y * x), (ar // x) % y, ar % x], dim=1).to(torch.int32)
    weights = 0.5 + torch.rand(heads, 3, generator=torch.Generator(device="cpu").manual_seed(seed))
    ext = torch.tensor(grid, dtype=torch.float32)
    qb = -(-n // M)
    pad = qb * M - n
    c = torch.cat([coords, coords[-1:].expand(pad, 3)]) if pad else coords
    blocks = c.reshape(qb, M, 3)
    lo, hi = blocks.min(1).values, blocks.max(1).values
    lo64, hi64, ext64 = lo.long(), hi.long(), torch.tensor(grid, dtype=torch.int64)
    sc = coords[:sinks].long()
    sink_dist = (lo64[:, None, :] - sc[None]).clamp(min=0) + (sc[None] - hi64[:, None, :]).clamp(min=0)

    def kept(win) -> int:
        w = win.long()[:, None, :]
        per_axis = (torch.minimum(hi64[None] + w, ext64 - 1) - torch.clamp(lo64[None] - w, min=0) + 1).clamp(min=0)
        inside = (sink_dist[None] <= win.long()[:, None, None, :]).all(-1).sum(-1)
        return int((per_axis.prod(-1) + sinks - inside).sum())

    lo_s, hi_s = 0.0, 2.0
    for _ in range(30):
        s_ = 0.5 * (lo_s + hi_s)
        win = (s_ * weights * ext).floor().to(torch.int32)
        d = float(kept(win)) / (heads * qb * n)
        if abs(d - density) <= tol:
            break
        if d < density:
            lo_s = s_
        else:
            hi_s = s_
    dist = (lo[:, None, :] - coords[None, :, :]).clamp(min=0) + (coords[None, :, :] - hi[:, None, :]).clamp(min=0)
    out = torch.empty(1, heads, qb, n, dtype=torch.bool)
    for h in range(heads):
        out[0, h] = (dist <= win[h][None, None, :]).all(-1)
        out[0, h, :, :sinks] = True
    return out


def model_index(h: int, nv: int, nt: int, dt_: float):
    """The benchmark's fg index at (shape, density) built on the CPU (``entry_regress.build_index``'s mask via
    :func:`window_mask_cpu`, launch order for 132 SMs)."""
    import fgattn
    from fgattn.masks import with_text

    mask = window_mask_cpu(h, nv, dt_)
    if nt:
        mask = with_text(mask, nt, M)
    return fgattn.build_index(mask, block_m=M, gran_n=G, order=True)


def run_model(args: argparse.Namespace) -> Path:
    """The L2 model on the timing cells' masks, built on the CPU (:func:`model_index`), one CSV."""
    from fgsim.fileio import write_csv_atomic

    rows = []
    for h, nv, nt in args.shape_list:
        for dt_ in densities_for(args, (h, nv, nt)):
            t0 = time.time()
            idx = model_index(h, nv, nt, dt_)
            for r in model_rows(idx, args.caps_mb):
                rows.append(dict(shape=f"H{h} N{nv}" + (f"+{nt}text" if nt else ""), density_target=dt_,
                                 density=round(idx.density(nv + nt), 5), **r,
                                 model="LRU over (head, key) units of K+V rows (512 B); programs 132; rows back to "
                                       "back at c_row 3 + tiles; Q / O streamed (fresh lines)"))
                print(json.dumps(rows[-1]), flush=True)
            print(f"[model] H{h} N{nv}+{nt} d {dt_}: {time.time() - t0:.1f}s", flush=True)
            del idx
            write_csv_atomic(args.model, rows)  # after every cell (a long run keeps what it has)
    return args.model


# ------------------------------------------------------------------------------------------------ GPU side
def entry_config():
    """The packaged launch table's fg D128 M128 g1 entry."""
    from fgattn.launch import launch_config

    return launch_config("fg", "h200", D, M, G)


def make_plans(idx, programs: int | None = None) -> dict[str, Any]:
    """Row plans (built outside any graph capture): ``list`` (the packaged planner's, memoised for the entry's
    dispatch when ``programs`` is the SM count) and ``l2band``."""
    import torch
    from fgattn.gluon_fg_list import plan_ws2_list, prepare_list_plan
    from fgattn.l2_plan import plan_l2_band

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    g = min(programs or sms, sms)
    out = dict(list=plan_ws2_list(idx, programs=g), l2band=plan_l2_band(idx, programs=g))
    if g == sms:
        out["entry"] = prepare_list_plan(idx)
    return out


def run_variant(name: str, q, k, v, idx, out, plans: dict[str, Any], layout: str = "bhnd",
                sm_scale: float | None = None):
    """One launch of ``name`` writing ``out`` (``list`` = the list plan through the list launcher, for the check)."""
    import fgattn
    from fgattn.gluon_fg_list import fg_attention_gluon_list

    if name in ("entry", "entry_ctl"):
        return fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, layout=layout, out=out, sm_scale=sm_scale)
    return fg_attention_gluon_list(q, k, v, idx, layout=layout, out=out, sm_scale=sm_scale,
                                   plan=plans["list" if name == "list" else "l2band"])


def check(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """Float64 check of the list plan and the band plan on this shard's random cases (and the band output equal to
    the list output); writes a part CSV; True if all pass."""
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
        plans = make_plans(idx, c["programs"])
        outs = {}
        for name in ("list", "l2band"):
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
            diff = float((o.float() - outs["list"].float()).abs().nan_to_num(float("inf")).max()) if name == "l2band" \
                else 0.0
            ok = not msg and err <= 1e-2 and nan == 0 and empty_ok and diff == 0.0
            ok_all &= ok
            rows.append(dict(case=ci, **{k_: c[k_] for k_ in ("b", "h", "n", "text", "density", "window", "dtype",
                                                             "layout", "sm_scale", "programs", "seed")},
                             density_real=round(idx.density(c["n"] + c["text"]), 5), variant=name,
                             programs_run=plans[name].programs, rel_err=f"{err:.4e}", nan=nan,
                             empty_block_zero=empty_ok, max_abs_diff_vs_list=diff, ok=ok, error=msg,
                             reference="fgattn.reference_attention (float64)", **meta))
            if not ok or ci < 2:
                print(f"[check] case {ci} {c} {name}: err {err:.3e} nan {nan} empty-zero {empty_ok} diff {diff} "
                      f"{msg}", flush=True)
    path = args.out / f"kernels-h200-{meta['date'][:10]}-l2plan{args.tag}-accuracy-part{r_}.csv"
    if rows:
        write_csv_atomic(path, rows, list(rows[0]))
    print(f"[check] {len(rows)} checks, {sum(not r['ok'] for r in rows)} failed", flush=True)
    return ok_all


def prewarm() -> None:
    """Compile the timed problems' specialisations (bf16, bhnd; N_Q and the query-block count divisible by 16 or
    not, as N 32760 / 33272 / 75600) so that the timing process finds them in the Triton cache."""
    import fgattn
    import torch

    for h, n in ((2, 2047), (2, 2064)):
        mask = torch.rand(1, h, -(-n // M), n, device="cuda") < 0.1
        idx = fgattn.build_index(mask, block_m=M, gran_n=G, order=True)
        q, k, v = (torch.randn(1, h, n, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        plans = make_plans(idx)
        for name in ("entry", "l2band"):
            run_variant(name, q, k, v, idx, torch.empty_like(q), plans)
    torch.cuda.synchronize()


def check_in_processes(args: argparse.Namespace, meta: dict[str, str]) -> bool:
    """:func:`check` in ``--check-procs`` child processes within ``--check-timeout-s`` (beside one :func:`prewarm`
    process); merges the parts into ``...-accuracy.csv``; True if every case of every shard passed."""
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.fileio import write_csv_atomic

    procs = min(args.check_procs, args.check)
    me = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--no-time"]

    def run(cmd: list[str], what: str) -> bool:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.check_timeout_s)
            print(p.stdout[-1000:] + (p.stderr[-1500:] if p.returncode else ""), flush=True)
            return p.returncode == 0
        except subprocess.TimeoutExpired:
            print(f"[{what}] timed out after {args.check_timeout_s:.0f}s", flush=True)
            return False

    with ThreadPoolExecutor(max_workers=procs + 1) as ex:
        warm = ex.submit(run, me + ["--inline-prewarm", "--check", "0"], "prewarm")
        oks = list(ex.map(lambda r: run(me + ["--inline-check", f"--tag={args.tag}", "--check", str(args.check),
                                              "--check-seed", str(args.check_seed), "--check-shard",
                                              f"{r}/{procs}"], f"check shard {r}"), range(procs)))
        print(f"[prewarm] {'ok' if warm.result() else 'FAILED'}", flush=True)
    rows: list[dict[str, str]] = []
    for r in range(procs):
        part = args.out / f"kernels-h200-{meta['date'][:10]}-l2plan{args.tag}-accuracy-part{r}.csv"
        if part.exists():
            with open(part, newline="") as f:
                rows += list(csv.DictReader(f))
            part.unlink()
    if rows:
        write_csv_atomic(args.out / f"kernels-h200-{meta['date'][:10]}-l2plan{args.tag}-accuracy.csv", rows)
    bad = [r for r in rows if r.get("ok") != "True"]
    print(f"[check] {len(rows)} checks from {sum(oks)}/{procs} shards, {len(bad)} failed", flush=True)
    return all(oks) and not bad and len(rows) == 2 * args.check


def time_shapes(args: argparse.Namespace, meta: dict[str, str]) -> Path:
    """Paired interleaved graph timing of the variants per cell (shape, density), one CSV."""
    import fgattn
    import torch
    from bench_kernels import ClockSampler, make_qkv, timed_rounds
    from entry_regress import build_index, paired, row_stats

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    path = args.out / f"kernels-h200-{meta['date'][:10]}-l2plan{args.tag}.csv"
    clocks = ClockSampler(0.5)
    t0 = time.perf_counter()
    cfg = entry_config()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + ["M", "gran_n", "l2_cache_bytes"] + list(meta), extrasaction="ignore")
        w.writeheader()
        for si, (h, nv, nt) in enumerate(args.shape_list):
            shape = f"H{h} N{nv}" + (f"+{nt}text" if nt else "") + f" D{D}"
            n = nv + nt
            sets = make_qkv(1, h, n, D, 1 if h * n * D * 6 > 1e9 else 2)
            obuf = torch.empty_like(sets[0][0])
            for dt_ in densities_for(args, (h, nv, nt)):
                if time.perf_counter() - t0 > args.budget_s:
                    print(f"[time] budget reached, skipping {shape} d {dt_}", flush=True)
                    continue
                idx = build_index(h, nv, nt, dt_, "cuda")
                st = row_stats(idx, sms)
                plans = make_plans(idx)
                route = fgattn.fg_route(sets[0][0], cfg, k=sets[0][1], v=sets[0][2], index=idx)
                cases = []
                for v in args.variant_list:
                    desc = (f"fgattn.fg_attention, packaged table ({route[0]}: {route[1]})" if v != "l2band" else
                            f"fgattn.gluon_fg_list.fg_attention_gluon_list + fgattn.l2_plan.plan_l2_band "
                            f"({plans['l2band'].schedule}, {plans['l2band'].programs} programs)")
                    pl = plans["entry" if v != "l2band" else "l2band"]
                    cases.append(dict(variant=v, kernel=v, dt=dt_, dens=idx.density(n), stats=st, cfg=desc,
                                      pm=f"{pl.makespan / pl.mean_load:.4f}",
                                      fn=lambda q, k, v_, idx=idx, name=v, o=obuf, pls=plans: run_variant(
                                          name, q, k, v_, idx, o, pls)))
                torch.cuda.synchronize()
                ts = time.time()
                timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + 10 * si + int(dt_ * 100))
                clk = clocks.window(ts, time.time())
                base = next(c for c in cases if c["variant"] == BASE)
                for c in cases:
                    if not c["ms"]:
                        continue
                    ms = sorted(c["ms"])
                    rel = paired(c["ms"], base["ms"]) if c is not base and base["ms"] else ("", "", "")
                    r = dict(shape=shape, H=h, N=n, n_text=nt, density_target=dt_, density=round(c["dens"], 5),
                             variant=c["variant"], config=c["cfg"], ms=round(ms[len(ms) // 2], 4),
                             ms_min=round(ms[0], 4), ms_max=round(ms[-1], 4),
                             **{k: (round(x, 4) if isinstance(x, float) else x) for k, x in
                                zip(("rel_entry", "rel_entry_min", "rel_entry_max"), rel, strict=True)},
                             rounds=len(ms), reps=c["reps"], rows=st.get("rows", ""),
                             rows_per_sm=st.get("rows_per_sm", ""), exec_tiles_per_row=st.get("exec_tiles_per_row", ""),
                             plan_makespan_over_mean=c["pm"], clocks_under_load=clk,
                             timing=(f"CUDA graph ({len(sets)} input set(s)), {len(ms)} interleaved rounds in a random "
                                     f"order per round x {c['reps']} timed replays, events"),
                             statistic="median over rounds (min, max); rel_entry = t / t_entry paired per round",
                             M=M, gran_n=G, l2_cache_bytes=l2, **meta)
                    w.writerow(r)
                    print(f"[time] {shape:<22} d={dt_:<5} {c['variant']:<10} {r['ms']:9.3f} ms  rel "
                          f"{r['rel_entry']!s:<6} ({r['rel_entry_min']}-{r['rel_entry_max']})  plan {c['pm']}",
                          flush=True)
                f.flush()
                print(f"[time] {shape} d {dt_} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
                del idx, plans, cases
            del sets, obuf
            torch.cuda.empty_cache()
    clocks.stop()
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.analyze is not None:
        analyze(args.analyze)
        return 0
    if args.dry_run:
        print(json.dumps(dict(shapes={f"{h}x{nv}+{nt}": densities_for(args, (h, nv, nt))
                                      for h, nv, nt in args.shape_list}, variants=args.variant_list,
                              rounds=args.rounds, check=args.check, check_seed=args.check_seed,
                              check_procs=args.check_procs, time=not args.no_time, out=str(args.out), tag=args.tag,
                              budget_s=args.budget_s, seed=args.seed,
                              rule=dict(control_geo=CONTROL_GEO_BAND, control_cell=CONTROL_CELL_BAND, max_rel=MAX_REL,
                                        low_d=LOW_D, low_geo_max=LOW_GEO_MAX),
                              first_cases=check_cases(min(args.check, 2), args.check_seed))))
        return 0
    if args.model is not None:
        run_model(args)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("l2plan_probe: no CUDA device (use --dry-run, --model or --analyze here)", file=sys.stderr)
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
    ok = True
    if args.check:
        ok = check_in_processes(args, meta)
        print(f"[check] {'passed' if ok else 'FAILED'} {time.perf_counter() - t0:.1f}s", flush=True)
    if not args.no_time:
        path = time_shapes(args, meta)
        analyze(path)
        verdict, why = rule_verdict(list(csv.DictReader(open(path, newline=""))), ok if args.check else None)
        print(f"[rule+check] {verdict}: " + "; ".join(why), flush=True)
    print(f"[probe] done {time.perf_counter() - t0:.1f}s, check {'ok' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
