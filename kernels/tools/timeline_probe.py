"""In-kernel timelines of the packaged fg ws2 list kernel (and the block contig CTA) on the benchmark's masks, with
the instrumented kernels' time against the packaged ones' in the same interleaved rounds (the probe effect).

Issue 12, session 16, helper T (kernels/NOTES.md "Session 16, T")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/timeline_probe.py --out $OUT          # GPU
    PYTHONPATH=.:kernels:validation python3 kernels/tools/timeline_probe.py --dry-run           # any machine
    python3 kernels/tools/timeline_probe.py --decode DIR [--write]                               # CPU: tables, plot

GPU run, per cell (shape, density): the list plan (``plan_ws2_list``, SM count); the packaged kernel
(``fg_attention_gluon_list(..., epilogue="tma_sel")``, the table entry's kernel), the timeline kernel at level 1
(and level 2 at ``--l2-cells``) once each on the same inputs: outputs compared bit for bit; the timeline buffers of
one launch saved (``timeline-buffers.npz``); then CUDA-graph timing, ``--rounds`` interleaved rounds in a fresh random
order per round: ``list``, ``list_ctl`` (the same call again: the control), ``tl1`` / ``tl2``, cuDNN once per
shape.  Block cells: ``contig_attention_gluon`` with the packaged block entry's knobs (``block``, ``block_ctl``) and
``timeline=`` (``block_tl1``).  ``--decode``: :mod:`fgattn.timeline` on the saved buffers -> per-row CSV, phase
summary CSV, in-kernel row fits, plot.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

D = 128
M = 128
#: the packaged block entry's contig knobs (kernels/fgattn/data/launch_configs.json, block h200 D128 M128 g128)
BLOCK_KNOBS = dict(regs=(240, 24), pipeline=1, pingpong=True, epilogue="tma_sel")
TAG = "timeline"
#: (H, N) of the tiny problems that compile the timed problems' specialisations first (epilogue_probe's)
PREWARM_SHAPES = ((2, 2047), (2, 2064), (2, 3070))


def parse_cells(spec: str, flag: str, ap: argparse.ArgumentParser) -> list[tuple[int, int, int, float]]:
    """``HxN[+TEXT]:d/d,...`` -> [(H, N video, N text, density)]."""
    out = []
    for item in (x for x in spec.split(",") if x):
        try:
            shp, _, ds = item.partition(":")
            h, _, n = shp.partition("x")
            nv, _, nt = n.partition("+")
            for d in ds.split("/"):
                out.append((int(h), int(nv), int(nt or 0), float(d)))
        except ValueError:
            ap.error(f"{flag}: bad cell list {item!r} (HxN[+TEXT]:d/d)")
    for h, nv, nt, d in out:
        if not (h >= 1 and nv >= 128 and nt >= 0 and 0 < d <= 1):
            ap.error(f"{flag}: bad cell H{h} N{nv}+{nt} d {d}")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU run)")
    ap.add_argument("--cells", default="12x32760:0.02/0.05/0.1/0.5,12x32760+512:0.02,40x32760:0.02",
                    help="fg cells HxN[+TEXT]:d/d,...")
    ap.add_argument("--l2-cells", default="12x32760:0.02/0.1", help="fg cells also run at level 2")
    ap.add_argument("--block-cells", default="12x32760:0.02", help="block contig cells ('' for none)")
    ap.add_argument("--defer-cells", default="", help=f"fg cells also run with the row end {DEFER!r} (+ its timeline)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=10.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=161, help="shuffle seed of the round order (+ shape position)")
    ap.add_argument("--no-prewarm", action="store_true", help="compile in the timing process only")
    ap.add_argument("--inline-prewarm", default="", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="", help="file name suffix (write --tag=-x)")
    ap.add_argument("--dry-run", action="store_true", help="validate the arguments, print the plan, no GPU")
    ap.add_argument("--decode", type=Path, default=None, metavar="DIR",
                    help="no GPU: decode DIR/timeline-buffers*.npz and DIR's timing CSV")
    ap.add_argument("--write", action="store_true", help="with --decode: write the committed CSVs / plot")
    a = ap.parse_args(argv)
    if a.decode is not None:
        if not a.decode.is_dir():
            ap.error(f"--decode: {a.decode} is not a folder")
        return a
    a.cell_list = parse_cells(a.cells, "--cells", ap)
    a.l2_list = parse_cells(a.l2_cells, "--l2-cells", ap)
    a.block_list = parse_cells(a.block_cells, "--block-cells", ap)
    a.defer_list = parse_cells(a.defer_cells, "--defer-cells", ap)
    if not set(a.l2_list) <= set(a.cell_list):
        ap.error("--l2-cells: every level-2 cell must be in --cells")
    if not set(a.defer_list) <= set(a.cell_list):
        ap.error("--defer-cells: every defer cell must be in --cells")
    if a.rounds < 3:
        ap.error(f"--rounds: {a.rounds} < 3 (paired medians need at least 3)")
    if not (a.dry_run or a.inline_prewarm) and a.out is None:
        ap.error("--out is required for a GPU run")
    return a


def cell_name(h: int, nv: int, nt: int, d: float, kind: str = "fg") -> str:
    return f"{kind} H{h} N{nv}" + (f"+{nt}" if nt else "") + f" d{d:g}"


# ------------------------------------------------------------------------------------------------ GPU side
def block_index(h: int, nv: int, nt: int, d: float):
    """The benchmark's block index at (shape, density): the fg mask's 128 x 128 tiles (bench_kernels)."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    torch.manual_seed(int(d * 1000) + 7)
    mask = window_mask(1, h, nv, M, d, device="cuda")
    if nt:
        mask = with_text(mask, nt, M)
    n = nv + nt
    tiles = torch.nn.functional.pad(mask, (0, (-n) % 128)).reshape(1, h, mask.shape[2], -1, 128).any(-1)
    return fgattn.block_index_from_mask(tiles, block_m=128, n_keys=n, order=True)


#: the research row end timed / timelined at ``--defer-cells`` (kernels/NOTES.md "Session 16, T")
DEFER = "tma_defer_pv"


def variants_fg(q, k, v, idx, plan, out, bufs: dict[int, Any], defer_buf: Any = None) -> dict[str, Any]:
    """name -> zero-argument launch (writes ``out``); ``defer_buf``: also ``defer`` (the row end :data:`DEFER`) and
    its level-1 timeline ``defer_tl1`` into that buffer."""
    from fgattn.gluon_fg_list import fg_attention_gluon_list
    from fgattn.timeline import fg_attention_timeline

    f = {"list": lambda q=q, k=k, v=v: fg_attention_gluon_list(q, k, v, idx, out=out, plan=plan, epilogue="tma_sel")}
    for lv, b in bufs.items():
        f[f"tl{lv}"] = (lambda q=q, k=k, v=v, b=b, lv=lv: fg_attention_timeline(q, k, v, idx, b, plan=plan, level=lv,
                                                                                 out=out))
    if defer_buf is not None:
        f["defer"] = lambda q=q, k=k, v=v: fg_attention_gluon_list(q, k, v, idx, out=out, plan=plan, epilogue=DEFER)
        f["defer_tl1"] = (lambda q=q, k=k, v=v: fg_attention_timeline(q, k, v, idx, defer_buf, plan=plan, level=1,
                                                                       out=out, epilogue=DEFER))
    return f


def variants_block(q, k, v, bidx, plan, out, buf) -> dict[str, Any]:
    from fgattn.gluon_contig import contig_attention_gluon

    return {"block": lambda q=q, k=k, v=v: contig_attention_gluon(q, k, v, block_index=bidx, plan=plan, out=out,
                                                                   **BLOCK_KNOBS),
            "block_tl1": lambda q=q, k=k, v=v: contig_attention_gluon(q, k, v, block_index=bidx, plan=plan, out=out,
                                                                       timeline=buf, **BLOCK_KNOBS)}


def prewarm(name: str) -> None:
    """Compile variant ``name`` (list, tl1, tl2, defer, defer_tl1, block, block_tl1) for the timed shapes'
    specialisations."""
    import fgattn
    import torch
    from fgattn.gluon_contig import plan_contig
    from fgattn.gluon_fg_list import plan_ws2_list
    from fgattn.timeline import new_buffer

    for h, n in PREWARM_SHAPES:
        q, k, v = (torch.randn(1, h, n, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        out = torch.empty_like(q)
        mask = torch.rand(1, h, -(-n // M), n, device="cuda") < 0.1
        if name.startswith("block"):
            tiles = torch.nn.functional.pad(mask, (0, (-n) % 128)).reshape(1, h, mask.shape[2], -1, 128).any(-1)
            bidx = fgattn.block_index_from_mask(tiles, block_m=128, n_keys=n, order=True)
            plan = plan_contig(batch=1, heads=h, n_q=n, n_kv=n, programs=132, block_index=bidx, device=q.device)
            variants_block(q, k, v, bidx, plan, out, new_buffer(plan.programs))[name]()
        else:
            idx = fgattn.build_index(mask, block_m=M, gran_n=1, order=True)
            plan = plan_ws2_list(idx, programs=132)
            bufs = {int(name[2:]): new_buffer(plan.programs)} if name.startswith("tl") else {}
            variants_fg(q, k, v, idx, plan, out, bufs, new_buffer(plan.programs))[name]()
    torch.cuda.synchronize()


def prewarm_in_processes(names: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    me = str(Path(__file__).resolve())

    def one(nm: str) -> str:
        t0 = time.time()
        p = subprocess.run([sys.executable, me, "--inline-prewarm", nm], capture_output=True, text=True, timeout=240)
        return f"{nm} rc {p.returncode} {time.time() - t0:.0f}s" + (f" {p.stderr[-800:]}" if p.returncode else "")

    with ThreadPoolExecutor(max_workers=len(names)) as ex:
        for r in ex.map(one, names):
            print(f"[prewarm] {r}", flush=True)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from bench_kernels import ClockSampler, env_metadata, make_qkv, sdpa, timed_rounds
    from entry_regress import build_index, row_stats
    from fgattn.gluon_contig import plan_contig
    from fgattn.gluon_fg_list import plan_ws2_list
    from fgattn.timeline import new_buffer

    from fgsim.fileio import write_csv_atomic

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    if not args.no_prewarm:
        names = (["list", "tl1"] + (["tl2"] if args.l2_list else []) + (["defer", "defer_tl1"] if args.defer_list else [])
                 + (["block", "block_tl1"] if args.block_list else []))
        prewarm_in_processes(names)
        print(f"[prewarm] done {time.perf_counter() - t0:.1f}s", flush=True)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    clocks = ClockSampler(0.5)
    saved: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    timing: list[dict[str, Any]] = []
    shapes = sorted({(h, nv, nt) for h, nv, nt, _ in args.cell_list + args.block_list},
                    key=lambda s: [c[:3] for c in args.cell_list + args.block_list].index(s))
    for si, (h, nv, nt) in enumerate(shapes):
        n = nv + nt
        sets = make_qkv(1, h, n, D, 2)
        out = torch.empty_like(sets[0][0])
        ref_out = torch.empty_like(out)
        cases: list[dict[str, Any]] = [dict(variant="cudnn", kernel="cudnn", fn=sdpa("cudnn"), cell="", dt=1.0)]
        for kind, cells in (("fg", args.cell_list), ("block", args.block_list)):
            for (h_, nv_, nt_, d) in cells:
                if (h_, nv_, nt_) != (h, nv, nt):
                    continue
                name = cell_name(h, nv, nt, d, kind)
                if kind == "fg":
                    idx = build_index(h, nv, nt, d, "cuda")
                    plan = plan_ws2_list(idx, programs=sms)
                    st = dict(row_stats(idx, sms), density=idx.density(n))
                    lv = [1] + ([2] if (h, nv, nt, d) in args.l2_list else [])
                    bufs = {x: new_buffer(plan.programs) for x in lv}
                    dbuf = new_buffer(plan.programs) if (h, nv, nt, d) in args.defer_list else None
                    if dbuf is not None:
                        bufs["defer"] = dbuf
                    fns = variants_fg(*sets[0], idx, plan, out, {x: b for x, b in bufs.items() if x != "defer"}, dbuf)
                    base = "list"
                else:
                    bidx = block_index(h, nv, nt, d)
                    plan = plan_contig(batch=1, heads=h, n_q=n, n_kv=n, programs=sms, block_index=bidx,
                                       device=out.device)
                    bufs = {1: new_buffer(plan.programs)}
                    fns = variants_block(*sets[0], bidx, plan, out, bufs[1])
                    base = "block"
                    cnt = (bidx.offsets[1:] - bidx.offsets[:-1]).clamp_min(1)
                    st = dict(rows=int(cnt.numel()), exec_tiles_per_row=round(float(cnt.float().mean()), 3),
                              density=bidx.density(n))
                # bit-for-bit: the timeline kernels against the packaged one, same inputs
                fns[base]()
                torch.cuda.synchronize()
                ref_out.copy_(out)
                for vn, fn in fns.items():
                    if vn == base:
                        continue
                    out.fill_(float("nan"))
                    for b in bufs.values():
                        b.fill_(-1)
                    fn()
                    torch.cuda.synchronize()
                    same = bool(torch.equal(out, ref_out))
                    diff = float((out.float() - ref_out.float()).abs().nan_to_num(float("inf")).max())
                    checks.append(dict(cell=name, variant=vn, bit_identical=same, max_abs_diff=diff,
                                       nan=int(out.isnan().sum())))
                    print(f"[check] {name} {vn}: bit-identical {same}, max |diff| {diff:.3g}", flush=True)
                    if vn == "defer":
                        continue  # no timeline: its output is checked above
                    a = bufs["defer" if vn == "defer_tl1" else int(vn[-1])].cpu().numpy()
                    saved.update(pack_buffer(f"{name}|{vn}", a))
                for vn, fn in fns.items():
                    cases.append(dict(variant=vn, kernel=vn, fn=lambda q, k, v_, fn=fn: fn(), cell=name, dt=d,
                                      stats=st, programs=plan.programs))
                    if vn == base:
                        cases.append(dict(variant=f"{base}_ctl", kernel=f"{base}_ctl", fn=lambda q, k, v_, fn=fn: fn(),
                                          cell=name, dt=d, stats=st, programs=plan.programs))
        torch.cuda.synchronize()
        ts = time.time()
        timed_rounds(cases, sets[:1], args.rounds, args.target_ms, shuffle_seed=args.seed + si)
        clk = clocks.window(ts, time.time())
        by = {(c["cell"], c["variant"]): c for c in cases}
        cud = by[("", "cudnn")]
        for c in cases:
            if c["variant"] == "cudnn":
                continue
            b = by[(c["cell"], "block" if c["cell"].startswith("block") else "list")]
            rel = sorted(x / y for x, y in zip(c["ms"], b["ms"], strict=True))
            vsc = sorted(c["stats"]["density"] * y / x for x, y in zip(c["ms"], cud["ms"], strict=True))
            ms = sorted(c["ms"])
            timing.append(dict(cell=c["cell"], shape=f"H{h} N{nv}" + (f"+{nt}text" if nt else "") + f" D{D}",
                               density_target=c["dt"], variant=c["variant"], ms=round(ms[len(ms) // 2], 5),
                               ms_rounds=" ".join(f"{x:.5f}" for x in c["ms"]), rel_base=round(rel[len(rel) // 2], 4),
                               rel_base_min=round(rel[0], 4), rel_base_max=round(rel[-1], 4),
                               x_cudnn=round(vsc[len(vsc) // 2], 4), cudnn_ms=round(sorted(cud["ms"])[len(ms) // 2], 5),
                               rounds=args.rounds, reps=c.get("reps", ""), programs=c.get("programs", ""),
                               **{k_: c["stats"].get(k_, "") for k_ in ("rows", "exec_tiles_per_row", "density")},
                               sm_clock_nvml=clk, timing="CUDA graph replay, interleaved shuffled rounds, median",
                               **meta))
            print(f"[time] {c['cell']} {c['variant']:<9} {timing[-1]['ms']:.4f} ms rel {timing[-1]['rel_base']:.4f} "
                  f"({timing[-1]['rel_base_min']:.3f}-{timing[-1]['rel_base_max']:.3f}) x{timing[-1]['x_cudnn']:.3f}",
                  flush=True)
        print(f"[time] shape H{h} N{n} done {time.perf_counter() - t0:.1f}s; {clk}", flush=True)
        cases.clear()
        del sets
        torch.cuda.empty_cache()
    clocks.stop()
    stem = f"kernels-h200-{meta['date'][:10]}-{TAG}{args.tag}"
    write_csv_atomic(args.out / f"{stem}-timing.csv", timing, list(timing[0]))
    write_csv_atomic(args.out / f"{stem}-checks.csv", checks, list(checks[0]))
    np.savez_compressed(args.out / f"timeline-buffers{args.tag}.npz", **saved)
    bad = [c for c in checks if not c["bit_identical"]]
    print(f"[probe] {len(checks)} checks, {len(bad)} not bit-identical; done {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ CPU side
#: consumer / producer slots that hold values, not cycle counts (stored as they are by :func:`pack_buffer`)
VALUE_SLOTS = ({17, 18}, {4, 5, 6})


def pack_buffer(key: str, a: Any) -> dict[str, Any]:
    """A timeline buffer as compact npz arrays: ``key|rows`` int32 (the recorded rows only; cycle slots as offsets
    from ``key|base``, the program's earliest recorded cycle, -1 kept) and ``key|hdr`` int64 (the header rows)."""
    import numpy as np
    from fgattn.timeline import CAP

    nr = max(1, min(int(a[:, CAP, 0, 4].max()), CAP))
    rows = a[:, :nr].astype(np.int64).copy()
    cyc = np.ones(rows.shape, dtype=bool)
    for role, vals in ((0, VALUE_SLOTS[0]), (1, VALUE_SLOTS[0]), (2, VALUE_SLOTS[1])):
        cyc[:, :, role, sorted(vals)] = False
    live = cyc & (rows >= 0)
    base = np.where(live, rows, np.iinfo(np.int64).max).reshape(rows.shape[0], -1).min(1)
    base = np.where(base == np.iinfo(np.int64).max, 0, base)
    rows = np.where(live, rows - base[:, None, None, None], rows)
    if rows.max() >= 2**31:
        raise ValueError(f"timeline_probe: {key}: cycle offsets do not fit int32")
    return {f"{key}|rows": rows.astype(np.int32), f"{key}|hdr": a[:, CAP].astype(np.int64), f"{key}|base": base}


def unpack_buffer(rows: Any, hdr: Any, base: Any) -> Any:
    """:func:`pack_buffer`'s arrays -> the buffer (programs, CAP + 1, 3, EV), unrecorded rows -1."""
    import numpy as np
    from fgattn.timeline import CAP

    a = np.full((rows.shape[0], CAP + 1) + rows.shape[2:], -1, dtype=np.int64)
    r = rows.astype(np.int64)
    base = np.asarray(base, dtype=np.int64)[:, None, None, None]
    cyc = np.ones(r.shape, dtype=bool)
    for role, vals in ((0, VALUE_SLOTS[0]), (1, VALUE_SLOTS[0]), (2, VALUE_SLOTS[1])):
        cyc[:, :, role, sorted(vals)] = False
    a[:, :r.shape[1]] = np.where(cyc & (r >= 0), r + base, r)
    a[:, CAP] = hdr
    return a


def load_buffers(folder: Path) -> dict[str, Any]:
    """{'<cell>|<variant>': buffer (programs, CAP + 1, 3, EV)} from the folder's ``timeline-buffers*.npz``
    (:func:`pack_buffer`'s arrays; or, call 1's form, the recorded rows + the header as int64 with ``key|rows`` the
    row count)."""
    import numpy as np
    from fgattn.timeline import CAP

    out = {}
    for f in sorted(folder.glob("timeline-buffers*.npz")):
        z = np.load(f)
        for k in z.files:
            key, _, part = k.rpartition("|")
            if part == "hdr":
                out[key] = unpack_buffer(z[f"{key}|rows"], z[k], z[f"{key}|base"])
            elif k.count("|") == 1:  # call 1's form
                a = z[k]
                full = np.full((a.shape[0], CAP + 1) + a.shape[2:], -1, dtype=np.int64)
                nr = a.shape[1] - 1
                full[:, :nr] = a[:, :nr]
                full[:, CAP] = a[:, nr]
                out[k] = full
    return out


def decode_folder(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-row records, phase summaries, row fits) of every saved buffer, each tagged with its cell / variant."""
    from fgattn import timeline as tl

    rows, summ, fits = [], [], []
    for key, buf in load_buffers(folder).items():
        cell, variant = key.split("|")
        ghz = tl.clock_ghz(buf)
        recs = tl.decode(buf)
        for r in recs:
            rows.append(dict(cell=cell, variant=variant, **r))
        for s in tl.summarize(recs, ghz):
            summ.append(dict(cell=cell, variant=variant, clock_ghz=round(ghz, 4), **s))
        f = tl.row_fit(recs)
        if f is not None:
            dec = tl.decompose(buf) or {}
            fits.append(dict(cell=cell, variant=variant, clock_ghz=round(ghz, 4), **f,
                             c_row_us=f["c_row_cycles"] / ghz / 1e3, c_tile_us=f["c_tile_cycles"] / ghz / 1e3,
                             **{f"share_{k}": round(v / dec["span_max"], 4) for k, v in dec.items()
                                if k not in ("span_max", "span_mean")},
                             span_max_cycles=dec.get("span_max"), span_mean_cycles=dec.get("span_mean")))
    return rows, summ, fits


#: the cell whose CTAs :func:`plot_ctas` draws, and the phase colours (consumer phases of fgattn.timeline.PHASES)
PLOT_CELL = "fg H12 N32760 d0.02|"
PHASE_COLORS = {"q_wait": "#d62728", "full0_wait": "#ff9896", "qk0_issue": "#9467bd", "o_release": "#c5b0d5",
                "qk0_rest": "#8c564b", "body": "#1f77b4", "last_full_wait": "#ff9896", "last_tile": "#aec7e8",
                "last_pv": "#2ca02c", "meet": "#ff7f0e", "stage_o": "#ffbb78", "store_issue": "#bcbd22",
                "next": "#7f7f7f"}


def plot_ctas(bufs: dict[str, Any], keys: list[str], programs: tuple[int, ...] = (0, 1, 2), first: int = 2,
              rows: int = 7) -> bytes:
    """PNG: for each buffer of ``keys`` and each program of ``programs``, rows ``first`` .. ``first + rows - 1`` of
    both consumer
    warpgroups as bars of their phases (µs from the first row's start, at the launch's own clock) and the
    producer's rows (start to last gather issued), with the tensor-core idle window at each row boundary marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from fgattn import timeline as tl

    from fgsim.fileio import figure_png

    C, P = tl.CONSUMER_SLOTS, tl.PRODUCER_SLOTS
    fig, axes = plt.subplots(len(keys) * len(programs), 1, figsize=(13, 1.35 * len(keys) * len(programs) + 0.8),
                             squeeze=False)
    for ki, key in enumerate(keys):
        a = bufs[key]
        ghz = tl.clock_ghz(a)
        for pi, pid in enumerate(programs):
            ax = axes[ki * len(programs) + pi][0]
            t0 = a[pid, first, 0, C["row_start"]]
            us = lambda c, t0=t0, ghz=ghz: (c - t0) / ghz / 1e3  # noqa: E731
            for j in range(first, first + rows):
                for w in (0, 1):
                    c = a[pid, j, w]
                    nxt = a[pid, j + 1, w, C["row_start"]]
                    for name, e0, e1 in tl.PHASES:
                        x0, x1 = c[C[e0]], (nxt if e1 is None else c[C[e1]])
                        if x0 >= 0 and x1 >= 0 and x1 > x0:
                            ax.barh(2 - w, us(x1) - us(x0), left=us(x0), height=0.8, color=PHASE_COLORS[name],
                                    edgecolor="none")
                p = a[pid, j, 2]
                if p[P["row_start"]] >= 0 and p[P["row_end"]] >= 0:
                    ax.barh(0, us(p[P["row_end"]]) - us(p[P["row_start"]]), left=us(p[P["row_start"]]), height=0.8,
                            color="#c7c7c7" if j % 2 else "#999999", edgecolor="none")
                done = max(a[pid, j, w, C["last_pv_done"]] for w in (0, 1))
                nq = min(a[pid, j + 1, w, C["qk0_issued"]] for w in (0, 1))
                if done >= 0 and nq > done:
                    ax.axvspan(us(done), us(nq), color="#d62728", alpha=0.12, lw=0)
            ax.set_yticks([0, 1, 2], ["producer", "consumer 1", "consumer 0"], fontsize=7)
            ax.set_ylabel(f"CTA {pid}", fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            if pi == 0:
                ax.set_title(f"{key.replace('|', ' ')}: rows {first}-{first + rows - 1} (µs at {ghz:.2f} GHz); red band: "
                             "both consumers "
                             "between their last PV done and the next row's first QK issue", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLORS.values()]
    fig.legend(handles, list(PHASE_COLORS), loc="lower center", ncol=13, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return figure_png(fig, dpi=100)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.decode is not None:
        rows, summ, fits = decode_folder(args.decode)
        for f in fits:
            print(f"[fit] {f['cell']} {f['variant']}: c_row {f['c_row_us']:.3f} us, c_tile {f['c_tile_us']:.3f} us "
                  f"({f['n']} rows, tiles {f['tiles_min']:.0f}-{f['tiles_max']:.0f}, {f['clock_ghz']:.3f} GHz); span: "
                  f"tiles {f['share_tiles']:.1%}, rows {f['share_rows']:.1%}, first row {f['share_first_row']:.1%}, "
                  f"tail {f['share_tail']:.1%}, rest {f['share_rest']:.1%}")
        for s in summ:
            print(f"[phase] {s['cell']} {s['variant']} {s['quantity']:<18} median {s['median']:9.0f} cyc "
                  f"{s['median_us']:7.3f} us (p10 {s['p10']:.0f}, p90 {s['p90']:.0f}, n {s['n']})")
        if args.write:
            from fgsim.fileio import write_bytes_atomic, write_csv_atomic

            res = ROOT / "validation" / "results"
            stem = f"kernels-h200-2026-12-01-timeline{args.tag}"
            write_csv_atomic(res / f"{stem}-phases.csv", summ, list(summ[0]))
            write_csv_atomic(res / f"{stem}-fits.csv", fits, list(fits[0]))
            keys = [k for k in load_buffers(args.decode) if k.startswith(PLOT_CELL) and k.endswith("|tl1")]
            if keys:
                write_bytes_atomic(ROOT / "kernels" / "logs" / f"timeline{args.tag}-ctas.png",
                                   plot_ctas(load_buffers(args.decode), keys))
        return 0
    if args.dry_run:
        print(json.dumps(dict(cells=[cell_name(*c) for c in args.cell_list], l2=[cell_name(*c) for c in args.l2_list],
                              defer=[cell_name(*c) for c in args.defer_list],
                              block=[cell_name(*c, "block") for c in args.block_list], rounds=args.rounds,
                              target_ms=args.target_ms, seed=args.seed, out=str(args.out), tag=args.tag)))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("timeline_probe: no CUDA device (use --dry-run or --decode here)", file=sys.stderr)
        return 2
    if args.inline_prewarm:
        prewarm(args.inline_prewarm)
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
