"""The real end-of-launch tail of the packaged fg kernel, measured with the minimal probe (``TL_HDR``: per CTA only
%globaltimer / %clock64 at start and end and %smid; ``fgattn.timeline.fg_attention_tail_probe``).

Issue 12, session 16, helper T2 (kernels/NOTES.md "Session 16, T2")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/tail_probe.py --out $OUT     # GPU
    python3 kernels/tools/tail_probe.py --analyze DIR                                    # CPU: tables from the CSVs

Per cell (the benchmark's window masks, ``entry_regress.build_index``; one input set):
1. the probe's output against the packaged entry's (bitwise expected: same code, same plan);
2. paired CUDA-graph timing, ``--rounds`` interleaved rounds in a fresh random order: ``entry`` (``fgattn.fg_attention``
   under the packaged table), ``entry_ctl`` (the same, a second case: the control), ``probe`` (the packaged kernel
   with the minimal probe over the entry's memoised plan); rel = t / t_entry paired per round;
3. ``--launches`` probe launches back to back in one CUDA graph (each its own buffer), replayed twice (the second
   recorded): per CTA smid, span (cycles, ns), SM clock, start / end (ns from the launch's first start).
Writes ``tail-timing.csv`` (per cell and variant), ``tail-launches.csv`` (per launch: ``timeline.tail_summary``),
``tail-ctas.csv.gz`` (per CTA, the first ``--cta-launches`` launches of each cell), ``tail-raw.npz`` (every buffer).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

D, M, G = 128, 128, 1
#: the 14 d <= 0.05 fg cells of run 15, then H12 N32760 d 0.5 (HxN[+TEXT]:d)
CELLS = ("40x32760:0.02,40x32760:0.05,12x32760:0.02,12x32760:0.05,12x32760:0.5,40x32760+512:0.02,"
         "12x32760+512:0.02,12x32760+512:0.05,12x75600:0.02,12x75600:0.05,40x75600:0.02,40x75600:0.05,"
         "12x75600+512:0.02,40x75600+512:0.02,40x75600+512:0.05")
VARIANTS = ("entry", "entry_ctl", "probe")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU runs)")
    ap.add_argument("--cells", default=CELLS, help="HxN[+TEXT]:d, comma-separated, in order")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (>= 3)")
    ap.add_argument("--target-ms", type=float, default=10.0, help="timed replay length per case and round")
    ap.add_argument("--launches", type=int, default=20, help="recorded back-to-back probe launches per cell")
    ap.add_argument("--cta-launches", type=int, default=4, help="launches per cell in the per-CTA CSV")
    ap.add_argument("--seed", type=int, default=1640, help="shuffle seed of the round order (+ cell position)")
    ap.add_argument("--budget-s", type=float, default=100.0, help="skip later cells after this many seconds")
    ap.add_argument("--analyze", type=Path, default=None, metavar="DIR", help="no GPU: tables from DIR's CSVs")
    a = ap.parse_args(argv)
    if a.analyze is not None:
        if not (a.analyze / "tail-launches.csv").is_file():
            ap.error(f"--analyze: {a.analyze}/tail-launches.csv is not a file")
        return a
    if a.rounds < 3:
        ap.error(f"--rounds: {a.rounds} < 3 (paired medians need at least 3)")
    if a.launches < 2:
        ap.error(f"--launches: {a.launches} < 2")
    from entry_regress import parse_shapes

    a.cell_list = []
    for item in [x for x in a.cells.split(",") if x]:
        shp, _, d = item.partition(":")
        try:
            a.cell_list.append((*parse_shapes(shp)[0], float(d)))
        except ValueError:
            ap.error(f"--cells: bad item {item!r} (HxN[+TEXT]:d)")
    if a.out is None:
        ap.error("--out is required for a GPU run")
    return a


def _med(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if s else float("nan")


def _write(out: Path, trows: list, lrows: list, crows: list, raw: dict) -> None:
    """The CSVs and raw buffers so far (rewritten after every cell: a timeout keeps the finished cells)."""
    import numpy as np

    for name, rows in (("tail-timing.csv", trows), ("tail-launches.csv", lrows)):
        if not rows:
            continue
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if crows:
        with gzip.open(out / "tail-ctas.csv.gz", "wt", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(crows[0]))
            w.writeheader()
            w.writerows(crows)
    np.savez_compressed(out / "tail-raw.npz", **{k_.replace(" ", "_"): x for k_, x in raw.items()})


def run(args: argparse.Namespace) -> int:
    import fgattn
    import torch
    from bench_kernels import NvmlClock, env_metadata, make_qkv, timed_rounds
    from entry_regress import build_index, paired, row_stats
    from fgattn import timeline as tl
    from fgattn.gluon_fg_list import prepare_list_plan

    args.out.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    clock = NvmlClock()
    clock = clock if clock.ok else None
    t0 = time.perf_counter()
    trows, lrows, crows, raw = [], [], [], {}
    for ci, (h, nv, nt, dt_) in enumerate(args.cell_list):
        cell = f"H{h} N{nv}" + (f"+{nt}text" if nt else "") + f" d {dt_}"
        if time.perf_counter() - t0 > args.budget_s:
            print(f"[tail] budget reached, skipping {cell}", flush=True)
            continue
        try:
            n = nv + nt
            (q, k, v), = make_qkv(1, h, n, D, 1)
            idx = build_index(h, nv, nt, dt_, "cuda")
            st = row_stats(idx, sms)
            plan = prepare_list_plan(idx)
            o_e, o_p = torch.empty_like(q), torch.empty_like(q)
            scratch = tl.new_hdr_buffer(plan.programs)[0]
            fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, out=o_e)
            tl.fg_attention_tail_probe(q, k, v, idx, scratch, plan=plan, out=o_p)
            torch.cuda.synchronize()
            diff = float((o_e.float() - o_p.float()).abs().max())

            def f_entry(q_, k_, v_, idx=idx, o=o_e):
                return fgattn.fg_attention(q_, k_, v_, idx, block_m=M, gran_n=G, out=o)

            def f_probe(q_, k_, v_, idx=idx, o=o_p, b=scratch, pl=plan):
                return tl.fg_attention_tail_probe(q_, k_, v_, idx, b, plan=pl, out=o)

            cases = [dict(variant=vn, kernel=vn, fn=(f_probe if vn == "probe" else f_entry)) for vn in VARIANTS]
            timed_rounds(cases, [(q, k, v)], args.rounds, args.target_ms, shuffle_seed=args.seed + ci, clock=clock)
            base = cases[0]["ms"]
            for c in cases:
                rel = paired(c["ms"], base) if c["variant"] != "entry" else (1.0, 1.0, 1.0)
                mhz = c.get("mhz") or []
                trows.append(dict(cell=cell, H=h, N=n, n_text=nt, density_target=dt_, density=round(idx.density(n), 5),
                                  variant=c["variant"], ms=round(_med(c["ms"]), 4), ms_min=round(min(c["ms"]), 4),
                                  ms_max=round(max(c["ms"]), 4), rel_entry=round(rel[0], 4),
                                  rel_entry_min=round(rel[1], 4), rel_entry_max=round(rel[2], 4), rounds=len(c["ms"]),
                                  reps=c["reps"], warm=c.get("warm", ""), rows=st["rows"], rows_per_sm=st["rows_per_sm"],
                                  exec_tiles_per_row=st["exec_tiles_per_row"], max_abs_diff_probe=diff,
                                  sm_mhz_nvml_median=_med(mhz) if mhz else "", sm_mhz_eff=c.get("sm_mhz_eff", ""),
                                  timing=f"CUDA graph, {len(c['ms'])} interleaved rounds in a random order per round "
                                         f"(seed {args.seed + ci}) x {c['reps']} timed replays after {c.get('warm', 0)} "
                                         "untimed, events",
                                  statistic="median over rounds (min, max); rel_entry = t / t_entry paired per round",
                                  **meta))
            rp = {c["variant"]: trows[-len(cases) + i]["rel_entry"] for i, c in enumerate(cases)}
            # back-to-back recorded launches (one graph, as a replay), second replay recorded
            bufs = tl.new_hdr_buffer(plan.programs, args.launches)
            g = torch.cuda.CUDAGraph()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                tl.fg_attention_tail_probe(q, k, v, idx, bufs[0], plan=plan, out=o_p)
            torch.cuda.current_stream().wait_stream(s)
            torch.cuda.synchronize()
            with torch.cuda.graph(g):
                for i in range(args.launches):
                    tl.fg_attention_tail_probe(q, k, v, idx, bufs[i], plan=plan, out=o_p)
            g.replay()
            bufs.fill_(-1)
            g.replay()
            torch.cuda.synchronize()
            a = bufs.cpu().numpy()
            raw[cell] = a
            sums = []
            for i in range(args.launches):
                sm = tl.tail_summary(a[i])
                sums.append(sm)
                gap = (float(a[i + 1, :, 2].min() - a[i, :, 3].max()) if i + 1 < args.launches else "")
                lrows.append(dict(cell=cell, H=h, N=n, n_text=nt, density_target=dt_, launch=i,
                                  **{kk: round(x, 4) for kk, x in sm.items()}, gap_to_next_ns=gap,
                                  rel_probe=rp["probe"], rel_ctl=rp["entry_ctl"], **meta))
                if i < args.cta_launches:
                    c = tl.tail_ctas(a[i])
                    for p in range(a.shape[1]):
                        crows.append(dict(cell=cell, launch=i, program=p, smid=int(c["smid"][p]),
                                          span_cycles=int(c["span_cycles"][p]), span_ns=int(c["span_ns"][p]),
                                          start_ns=int(c["start_ns"][p]), end_ns=int(c["end_ns"][p])))
            rep = tl.slow_repeat(list(a))
            print(f"[tail] {cell}: probe rel {rp['probe']} ctl {rp['entry_ctl']} diff {diff:g} | tail_frac "
                  f"{_med([x['tail_frac'] for x in sums]):.3f} last-median {_med([x['last_minus_median_frac'] for x in sums]):.3f}"
                  f" lever_max {_med([x['lever_max'] for x in sums]):.3f} r_tpc {_med([x['r_tpc'] for x in sums]):.2f} "
                  f"slow_paired {_med([x['slow_paired'] for x in sums]):.2f} shared {rep['shared']:.2f}/{rep['chance']:.2f} "
                  f"r_rank {rep['r_rank']:.2f} MHz {_med([x['mhz_median'] for x in sums]):.0f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
            for lr in lrows[-args.launches:]:
                lr.update(repeat_shared=round(rep["shared"], 3), repeat_chance=round(rep["chance"], 3),
                          repeat_r_rank=round(rep["r_rank"], 3))
            del q, k, v, idx, o_e, o_p, bufs, g, cases
            torch.cuda.empty_cache()
            _write(args.out, trows, lrows, crows, raw)
        except Exception as e:  # noqa: BLE001 (one cell's failure must not lose the others)
            print(f"[tail] {cell} FAILED: {type(e).__name__}: {e}"[:600], flush=True)
            torch.cuda.synchronize()
    _write(args.out, trows, lrows, crows, raw)
    if lrows:
        analyze(args.out)
    print(f"[tail] done {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


def cell_table(launch_rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Per cell: the probe effect and the medians over launches of the tail quantities (``tail-launches.csv``)."""
    by: dict[str, list[dict[str, str]]] = {}
    for r in launch_rows:
        by.setdefault(r["cell"], []).append(r)
    out = []
    for cell, rs in by.items():
        def m(k: str, rs=rs) -> float:
            return _med([float(r[k]) for r in rs if r[k] not in ("", "nan")])
        out.append(dict(cell=cell, launches=len(rs), rel_probe=float(rs[0]["rel_probe"]),
                        rel_ctl=float(rs[0]["rel_ctl"]), launch_us=m("launch_ns") / 1e3,
                        slowest_over_mean=m("slowest_over_mean"), tail_frac=m("tail_frac"),
                        last_minus_median_frac=m("last_minus_median_frac"), lever_max=m("lever_max"),
                        lever_max_max=max(float(r["lever_max"]) for r in rs), start_skew_us=m("start_skew_ns") / 1e3,
                        mhz=m("mhz_median"), mhz_spread=m("mhz_max") - m("mhz_min"), r_tpc=m("r_tpc"),
                        r_cross=m("r_cross"), slow=m("slow"), slow_paired=m("slow_paired"), chance=m("chance"),
                        repeat_shared=float(rs[0]["repeat_shared"]), repeat_chance=float(rs[0]["repeat_chance"]),
                        repeat_r_rank=float(rs[0]["repeat_r_rank"]),
                        gap_us=m("gap_to_next_ns") / 1e3))
    return out


def analyze(folder: Path) -> list[dict[str, Any]]:
    """Print the per-cell table of ``folder/tail-launches.csv``; returns its rows."""
    with open(folder / "tail-launches.csv", newline="") as f:
        rows = cell_table(list(csv.DictReader(f)))
    print("| cell | probe rel (ctl) | launch µs | slowest/mean | tail frac | last−median finish | lever max (worst) "
          "| MHz (spread) | r TPC / cross | slow, paired (chance) | repeat shared (chance), r_rank |")
    for r in rows:
        print(f"| {r['cell']} | {r['rel_probe']:.3f} ({r['rel_ctl']:.3f}) | {r['launch_us']:.0f} | "
              f"{r['slowest_over_mean']:.3f} | {r['tail_frac']:.3f} | {r['last_minus_median_frac']:.3f} | "
              f"{r['lever_max']:.3f} ({r['lever_max_max']:.3f}) | {r['mhz']:.0f} ({r['mhz_spread']:.0f}) | "
              f"{r['r_tpc']:.2f} / {r['r_cross']:.2f} | {r['slow']:.0f}, {r['slow_paired']:.2f} ({r['chance']:.2f}) | "
              f"{r['repeat_shared']:.1f} ({r['repeat_chance']:.2f}), {r['repeat_r_rank']:.2f} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.analyze is not None:
        analyze(args.analyze)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("tail_probe: no CUDA device (use --analyze here)", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
