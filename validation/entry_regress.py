"""The fg D128 M128 gran-1 launch-table entry against an older table's entry on shapes a sweep did not cover.

Issue 12 diagnosis (kernels/NOTES.md, session 7b)::

    PYTHONPATH=.:kernels python3 validation/entry_regress.py --out $OUT                 # GPU: timing, then ncu
    PYTHONPATH=.:kernels python3 validation/entry_regress.py --smoke                    # CPU (TRITON_INTERPRET=1)

Timing: per shape (``--shapes``, ``HxN[+TEXT]``), cuDNN SDPA and every ``--variants`` form of the entry at each
``--densities`` (3D-window + sink masks, ``fgattn.masks.window_mask``, text rows/columns by
``fgattn.masks.with_text``, seeded as ``bench_kernels.final_shape``), CUDA-graph replay in ``--rounds``
interleaved rounds with a fresh random case order per round (``bench_kernels.timed_rounds``); per round the
ratio variant / ``entry`` and density·t_cuDNN/t, medians and (min, max) over rounds, SM clock sampled by
nvidia-smi while the rounds run.  Variants: ``entry`` (the launch table), ``previous`` (the same key in
``--old-table``), ``fold`` (entry + tail_fold + guard_next + tma_o), ``tail_fold``, ``guard_next``.
Nsight Compute (``--ncu``, ``SHAPE:D:V1/V2;...``): one launch per (shape, density, variant) between
cudaProfilerStart/Stop after two warm launches, clocks as found, sections and metrics as
``validation/ncu_persistent.py`` plus registers, L2 / shared-memory throughput, achieved occupancy; cycles per
executed tile = sm__cycles_active.avg / (executed 128-key tiles / SMs).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation")]

from fgsim.fileio import write_csv_atomic  # noqa: E402

D, M, G = 128, 128, 1
OLD_TABLE = ROOT / "kernels" / "logs" / "launch_configs-before-session5.json"
VARIANTS = {"entry": {}, "previous": None, "fold": {"tail_fold": True, "guard_next": True, "tma_o": True},
            "tail_fold": {"tail_fold": True}, "guard_next": {"guard_next": True},
            "row_rec": {"row_rec": True}, "row_rec_tma_q": {"row_rec": True, "tma_q": True},
            "l2_prefetch": {"l2_prefetch": True}, "row_ahead": {"row_ahead": 48}}
EXTRA_METRICS = ("launch__registers_per_thread", "lts__throughput.avg.pct_of_peak_sustained_elapsed",
                 "l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed",
                 "sm__warps_active.avg.pct_of_peak_sustained_active", "smsp__warps_eligible.avg.per_cycle_active",
                 "smsp__issue_active.avg.per_cycle_active")
COLS = ["shape", "H", "N", "n_text", "density_target", "density", "variant", "config", "ms", "ms_min", "ms_max",
        "rel_entry", "rel_entry_min", "rel_entry_max", "ratio_vs_cudnn", "ratio_min", "ratio_max", "rounds", "reps",
        "rows", "rows_per_sm", "exec_tiles_per_row", "clocks_under_load", "timing", "statistic"]


def variant_config(name: str, old_table: str | Path = OLD_TABLE):
    """LaunchConfig of variant ``name`` for fg (D128, M128, gran 1) on the h200 table: the entry's tl kernel
    (``tl_config()``; the variants are switches of the tl kernel, which a Gluon entry would not run)."""
    import fgattn.launch as launch

    if name == "previous":
        return launch.launch_config("fg", "h200", D, M, G, table_path=str(old_table)).tl_config()
    base = launch.launch_config("fg", "h200", D, M, G).tl_config()
    return dataclasses.replace(base, extra=dict(base.extra, **VARIANTS[name]), source=f"entry_regress {name}")


def parse_shapes(spec: str) -> list[tuple[int, int, int]]:
    """``HxN[+TEXT]`` comma-separated -> (H, N_video, n_text); ValueError naming the bad item."""
    out = []
    for item in spec.split(","):
        try:
            hn, _, text = item.partition("+")
            h, n = (int(x) for x in hn.split("x"))
            t = int(text) if text else 0
        except ValueError:
            raise ValueError(f"--shapes: bad item {item!r} (want HxN or HxN+TEXT)") from None
        if h < 1 or n < 1 or t < 0:
            raise ValueError(f"--shapes: bad item {item!r} (sizes must be positive)")
        out.append((h, n, t))
    return out


def parse_ncu(spec: str) -> list[tuple[tuple[int, int, int], float, str]]:
    """``SHAPE:D:V1/V2;...`` -> [((H, N, text), density, variant), ...]; ValueError naming the bad item."""
    out = []
    for item in (s for s in spec.split(";") if s):
        parts = item.split(":")
        if len(parts) != 3:
            raise ValueError(f"--ncu: bad item {item!r} (want SHAPE:DENSITY:V1/V2)")
        shape = parse_shapes(parts[0])[0]
        try:
            dens = float(parts[1])
        except ValueError:
            raise ValueError(f"--ncu: bad density in {item!r}") from None
        for v in parts[2].split("/"):
            if v not in VARIANTS:
                raise ValueError(f"--ncu: unknown variant {v!r} in {item!r} (known: {list(VARIANTS)})")
            out.append((shape, dens, v))
    return out


def shape_name(h: int, n: int, text: int) -> str:
    return f"H{h} N{n}" + (f"+{text}text" if text else "") + f" D{D}"


def build_index(h: int, n_video: int, n_text: int, dt_: float, device: str, order: bool = True):
    """The benchmark's mask at (shape, density) and its fg index (``bench_kernels.final_shape``): launch order by
    descending row work (``order=True``, the benchmarks) or the natural row order (``order=False``)."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    torch.manual_seed(int(dt_ * 1000) + 7)
    mask = window_mask(1, h, n_video, M, dt_, device=device)
    if n_text:
        mask = with_text(mask, n_text, M)
    return fgattn.build_index(mask, block_m=M, gran_n=G, order=order)


def row_stats(index, sms: int) -> dict[str, float]:
    """Rows, rows per SM and executed 128-key tiles (tail tile whole) per row."""
    cnt = index.counts()
    tiles = float(((cnt + 127) // 128).sum())
    rows = int(cnt.numel())
    return dict(rows=rows, rows_per_sm=round(rows / sms, 2), exec_tiles=tiles, exec_tiles_per_row=round(tiles / rows, 3))


def paired(ms: list[float], ref: list[float]) -> tuple[float, float, float]:
    """Median, min, max over rounds of ms[r] / ref[r] (the rounds are paired)."""
    if len(ms) != len(ref) or not ms:
        raise ValueError(f"paired: {len(ms)} vs {len(ref)} rounds")
    r = sorted(a / b for a, b in zip(ms, ref, strict=True))
    return r[len(r) // 2], r[0], r[-1]


# ------------------------------------------------------------------------------------------------ GPU side
def prewarm(pairs: list[tuple[str, tuple[int, int, int]]], old_table: str, workers: int) -> list[dict[str, Any]]:
    """Compile (and check against float64 on a small proxy) each (variant, shape) specialisation, one process per
    pair (``bench_kernels.check_in_subprocess``; the Triton cache then serves the timed launches)."""
    from bench_kernels import check_in_subprocess

    cands = []
    for v, (h, n, t) in pairs:
        cfg = variant_config(v, old_table)
        cands.append(dict(kernel="fg", head_dim=D, block_m=M, gran_n=G, block_n=cfg.block_n, num_warps=cfg.num_warps,
                          num_stages=cfg.num_stages, extra=dict(cfg.extra), variant=v, shape=f"{h}x{n}+{t}",
                          warm_shapes=[(h, n + t)]))
    with ThreadPoolExecutor(max_workers=min(workers, len(cands))) as ex:
        res = list(ex.map(check_in_subprocess, cands))
    for r in res:
        print(f"[warm] {r.get('variant')} {r.get('shape')}: ok={r['ok']} err={r['err']:.3g} "
              f"{r['compile_s']:.1f}s {r['msg']}", flush=True)
    return res


def time_shapes(args, meta: dict[str, str], out: Path) -> Path:
    """Paired interleaved graph timing of the variants on every shape and density; writes the CSV."""
    import fgattn
    import torch
    from bench_kernels import ClockSampler, make_qkv, sdpa, timed_rounds

    shapes, variants = parse_shapes(args.shapes), args.variants.split(",")
    dens = [float(x) for x in args.densities.split(",")]
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    cfgs = {v: variant_config(v, args.old_table) for v in variants}
    path = out / f"kernels-h200-{meta['date'][:10]}-entry-regress{args.tag}.csv"
    clocks = ClockSampler(1.0)
    t0 = time.perf_counter()
    summary = []
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS + list(meta), extrasaction="ignore")
        w.writeheader()
        for si, (h, nv, nt) in enumerate(shapes):
            if time.perf_counter() - t0 > args.budget_s:
                print(f"[time] budget reached, skipping {shape_name(h, nv, nt)}", flush=True)
                continue
            n = nv + nt
            sets = make_qkv(1, h, n, D, 1 if h * n * D * 6 > 1e9 else 2)
            out_buf = torch.empty_like(sets[0][0])
            cases: list[dict[str, Any]] = [dict(kernel="sdpa_cudnn", fn=sdpa("cudnn"), dt=1.0, dens=1.0, variant="cudnn",
                                                cfg="torch SDPA cuDNN backend", stats={})]
            for dt_ in dens:
                idx = build_index(h, nv, nt, dt_, "cuda")
                st = row_stats(idx, sms)
                for v in variants:
                    cases.append(dict(kernel=v, variant=v, dt=dt_, dens=idx.density(n), stats=st, cfg=str(cfgs[v].extra)
                                      + f" bn{cfgs[v].block_n} st{cfgs[v].num_stages} w{cfgs[v].num_warps}",
                                      fn=lambda q, k, v_, idx=idx, c=cfgs[v], o=out_buf: fgattn.fg_attention(
                                          q, k, v_, idx, block_m=M, gran_n=G, config=c, out=o)))
            torch.cuda.synchronize()
            ts = time.time()
            timed_rounds(cases, sets, args.rounds, args.target_ms, shuffle_seed=args.seed + si)
            clk = clocks.window(ts, time.time())
            shape = shape_name(h, nv, nt)
            for r in case_rows(cases, sets, args.seed + si, shape, h, n, nt, clk, widths=(20, 9)):
                w.writerow({**r, **meta})
                summary.append(r)
            f.flush()
            print(f"[time] {shape} done {time.perf_counter() - t0:.1f}s; clocks {clk}", flush=True)
            cases.clear()
            del sets
            torch.cuda.empty_cache()
    clocks.stop()
    print("\nper-shape t_previous / t_entry (median of paired rounds; >1: the current entry is faster)", flush=True)
    for r in summary:
        if r["variant"] == "previous":
            print(f"{r['shape']:<20} d={r['density_target']:<5} rows/SM {r['rows_per_sm']:<6} tiles/row "
                  f"{r['exec_tiles_per_row']:<6} new/old {1 / r['rel_entry']:.3f} (old/new {r['rel_entry']})", flush=True)
    return path


def case_rows(cases: list[dict[str, Any]], sets: list, seed: int, shape: str, h: int, n: int, nt: int, clk: str,
              widths: tuple[int, int] = (20, 9)) -> list[dict[str, Any]]:
    """Result rows (``COLS``) of one shape's cases after ``bench_kernels.timed_rounds``; ``cases[0]`` is cuDNN.

    Per case with timings: median / min / max ms over rounds, rel_entry = t / t_entry (the ``entry`` case of the
    same density target) and ratio = density * t_cuDNN / t, both paired per round; prints one ``[time]`` line
    per row (``widths``: the shape and variant column widths)."""
    base, rows = cases[0], []
    for c in cases:
        if not c["ms"]:
            continue
        ms = sorted(c["ms"])
        med = ms[len(ms) // 2]
        ref = next((e for e in cases if e["variant"] == "entry" and e["dt"] == c["dt"]), None)
        rel = paired(c["ms"], ref["ms"]) if ref is not None and ref["ms"] and c is not base else ("", "", "")
        rat = paired([c["dens"] * b for b in base["ms"]], c["ms"])
        r = dict(shape=shape, H=h, N=n, n_text=nt, density_target=c["dt"], density=round(c["dens"], 5),
                 variant=c["variant"], config=c["cfg"], ms=round(med, 4), ms_min=round(ms[0], 4),
                 ms_max=round(ms[-1], 4), rel_entry=_r(rel[0]), rel_entry_min=_r(rel[1]),
                 rel_entry_max=_r(rel[2]), ratio_vs_cudnn=_r(rat[0]), ratio_min=_r(rat[1]),
                 ratio_max=_r(rat[2]), rounds=len(ms), reps=c["reps"], rows=c["stats"].get("rows", ""),
                 rows_per_sm=c["stats"].get("rows_per_sm", ""),
                 exec_tiles_per_row=c["stats"].get("exec_tiles_per_row", ""), clocks_under_load=clk,
                 timing=(f"CUDA graph ({len(sets)} input set(s)), {len(ms)} interleaved rounds in a random "
                         f"order per round (seed {seed}) x {c['reps']} timed replays after "
                         f"{c.get('warm', 0)} untimed, events"),
                 statistic="median over rounds (min, max); rel_entry = t / t_entry paired per round; "
                           "ratio = density * t_cuDNN / t per round")
        rows.append(r)
        print(f"[time] {shape:<{widths[0]}} d={c['dt']:<5} {c['variant']:<{widths[1]}} {med:9.3f} ms  "
              f"rel {r['rel_entry']!s:<6} ({r['rel_entry_min']}-{r['rel_entry_max']})  x{r['ratio_vs_cudnn']}",
              flush=True)
    return rows


def _r(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


def ncu_driver(spec: str, old_table: str, out: Path) -> None:
    """Under ncu: build every case, warm each twice, then one launch each between profiler start/stop."""
    import fgattn
    import torch

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    cases = []
    qkv: dict[tuple, tuple] = {}
    for (h, nv, nt), dt_, v in parse_ncu(spec):
        if (h, nv, nt) not in qkv:
            torch.manual_seed(0)
            qkv[(h, nv, nt)] = tuple(torch.randn(1, h, nv + nt, D, device="cuda", dtype=torch.bfloat16)
                                     for _ in range(3))
        idx = build_index(h, nv, nt, dt_, "cuda")
        cases.append(dict(shape=shape_name(h, nv, nt), d=dt_, variant=v, cfg=variant_config(v, old_table), idx=idx,
                          qkv=qkv[(h, nv, nt)], **row_stats(idx, sms)))
    for c in cases:
        o = torch.empty_like(c["qkv"][0])
        for _ in range(2):
            fgattn.fg_attention(*c["qkv"], c["idx"], block_m=M, gran_n=G, config=c["cfg"], out=o)
    torch.cuda.synchronize()
    (out / "ncu-cases.json").write_text(json.dumps(
        [{k: c[k] for k in ("shape", "d", "variant", "rows", "rows_per_sm", "exec_tiles", "exec_tiles_per_row")}
         | {"sms": sms, "extra": c["cfg"].extra} for c in cases], indent=1))
    torch.cuda.profiler.start()
    for c in cases:
        o = torch.empty_like(c["qkv"][0])
        fgattn.fg_attention(*c["qkv"], c["idx"], block_m=M, gran_n=G, config=c["cfg"], out=o)
        print(f"[driver] profiled {c['shape']} d={c['d']} {c['variant']}", flush=True)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def run_ncu(args, out: Path, timeout_s: float) -> None:
    """ncu over ``ncu_driver`` (sections as ncu_persistent.py + EXTRA_METRICS), raw CSV, summary table."""
    from ncu_persistent import SECTIONS, STALL_REGEX, find_ncu, known_metrics, profile_attempts

    t0 = time.perf_counter()
    ncu = find_ncu()
    if ncu is None:
        print("[ncu] no ncu on this machine: skipped", flush=True)
        return
    metrics = known_metrics(ncu)
    metrics += [m for m in EXTRA_METRICS if m not in metrics]
    prog = [sys.executable, str(Path(__file__).resolve()), "--ncu-driver", "--ncu", args.ncu, "--old-table",
            str(args.old_table), "--out", str(out)]
    sections = list(SECTIONS) + (["SourceCounters"] if args.ncu_source and "SourceCounters" not in SECTIONS else [])
    metric_sets = [metrics + [STALL_REGEX], [m for m in metrics if not m.startswith("launch__")] + [STALL_REGEX], []]
    rep_file = profile_attempts(ncu, out / "ncu", sections, metric_sets, prog, t0 + timeout_s, out / "ncu-run.log")
    if rep_file is None:
        print("[ncu] no report", flush=True)
        return
    p = subprocess.run([ncu, "-i", str(rep_file), "--page", "raw", "--csv"], capture_output=True, text=True, timeout=90)
    (out / "ncu-raw.csv").write_text(p.stdout)
    cases = json.loads((out / "ncu-cases.json").read_text()) if (out / "ncu-cases.json").exists() else []
    text = ncu_summary(p.stdout, cases)
    (out / "ncu-summary.txt").write_text(text)
    print(text, flush=True)
    if args.ncu_source:
        export_source(ncu, rep_file, out, len(cases))
    print(f"[ncu] done {time.perf_counter() - t0:.1f}s", flush=True)


def export_source(ncu: str, rep_file: Path, out: Path, n_cases: int) -> None:
    """The SASS source page (per-instruction warp-stall samples, SourceCounters) of every profiled launch:
    the whole report once (``ncu-source-all.csv``) and, filtered by launch, one file per launch
    (``ncu-source-<i>.csv``, launch order = ncu-cases.json); tarred into ``ncu-source.tgz``."""
    import tarfile

    names = []
    jobs = [("ncu-source-all.csv", [])] + [(f"ncu-source-{i}.csv", ["--launch-skip", str(i), "--launch-count", "1"])
                                            for i in range(n_cases)]
    for name, filt in jobs:
        cmd = [ncu, "-i", str(rep_file), "--page", "source", "--csv", "--print-source", "sass"] + filt
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            print(f"[ncu] source export {name} timed out", flush=True)
            continue
        (out / name).write_text(p.stdout if p.stdout.strip() else f"rc={p.returncode}\n{p.stderr[-2000:]}")
        names.append(name)
        print(f"[ncu] {name}: rc={p.returncode}, {len(p.stdout.splitlines())} lines", flush=True)
    with tarfile.open(out / "ncu-source.tgz", "w:gz") as tar:
        for name in names:
            tar.add(out / name, arcname=name)
    for name in names:
        (out / name).unlink()


#: (label, raw metric) columns of the ncu summary
NCU_COLS = (("ms", "gpu__time_duration.sum"), ("GHz", "sm__cycles_elapsed.avg.per_second"),
            ("regs", "launch__registers_per_thread"), ("occ%", "sm__warps_active.avg.pct_of_peak_sustained_active"),
            ("issue%", "smsp__issue_active.avg.pct_of_peak_sustained_active"),
            ("elig/cyc", "smsp__warps_eligible.avg.per_cycle_active"),
            ("tensor%", "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"),
            ("L2 hit%", "lts__t_sector_hit_rate.pct"), ("L2 thr%", "lts__throughput.avg.pct_of_peak_sustained_elapsed"),
            ("smem%", "l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed"),
            ("L1 thr%", "l1tex__throughput.avg.pct_of_peak_sustained_active"), ("inst M", "smsp__inst_executed.sum"))


def ncu_summary(raw_csv: str, cases: list[dict[str, Any]]) -> str:
    """One line per profiled launch (launch order = ``cases``): NCU_COLS, SM active min/max, cycles per executed
    tile; then the top warp-stall reasons per issued instruction."""
    from ncu_persistent import _num

    rows = list(csv.reader(io.StringIO(raw_csv)))
    hi = next((i for i, r in enumerate(rows) if "ID" in r and "Kernel Name" in r), None)
    if hi is None:
        return "no raw rows\n" + raw_csv[:2000]
    hdr, units = rows[hi], dict(zip(rows[hi], rows[hi + 1], strict=False))
    data = [dict(zip(hdr, r, strict=True)) for r in rows[hi + 2:] if len(r) == len(hdr)]
    scale = {"gpu__time_duration.sum": {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0},
             "sm__cycles_elapsed.avg.per_second": {"cycle/second": 1e-9, "cycle/msecond": 1e-6,
                                                   "cycle/usecond": 1e-3, "cycle/nsecond": 1.0},
             "smsp__inst_executed.sum": {"inst": 1e-6, "": 1e-6}}
    head = f"{'case':<42} " + " ".join(f"{lab:>8}" for lab, _ in NCU_COLS) + f" {'act m/M':>8} {'cyc/tile':>8}"
    lines, stalls = [head], []
    for i, r in enumerate(data):
        c = cases[i] if i < len(cases) else {}
        lab = f"{c.get('shape', '?')} d{c.get('d', '?')} {c.get('variant', r.get('Kernel Name', '?'))}"[:42]
        vals = []
        for _lab, col in NCU_COLS:
            x = _num(r.get(col, ""))
            if x is not None and col in scale:
                x *= scale[col].get(units.get(col, ""), 1.0)
            vals.append(f"{x:8.3f}" if x is not None else f"{'-':>8}")
        act = [_num(r.get(f"sm__cycles_active.{s}", "")) for s in ("min", "max", "avg")]
        ratio = f"{act[0] / act[1]:8.3f}" if act[0] and act[1] else f"{'-':>8}"
        cyc = (f"{act[2] / (c['exec_tiles'] / c['sms']):8.0f}" if act[2] and c.get("exec_tiles") else f"{'-':>8}")
        lines.append(f"{lab:<42} " + " ".join(vals) + f" {ratio} {cyc}")
        sc = [k for k in hdr if k.startswith("smsp__average_warps_issue_stalled_")]
        st = sorted(((_num(r[k]) or 0.0, k.removeprefix("smsp__average_warps_issue_stalled_")
                     .removesuffix("_per_issue_active.ratio")) for k in sc), reverse=True)
        stalls.append(f"{lab:<42} " + ", ".join(f"{n} {x:.2f}" for x, n in st[:10] if x >= 0.01))
    return "\n".join(lines + ["", "warp stalls per issued instruction (top reasons):"] + stalls) + "\n"


#: --check cases (H, N video, text tokens, density target): odd N, text rows / columns; one query block emptied.
#: H, N, query blocks and rows keep the timed shapes' integer specialisations (H and N not multiples of 16, query
#: blocks and rows multiples of 16), so the check reuses the kernels the prewarm compiled
CHECK_CASES = ((2, 1999, 0, 0.1), (2, 1535, 512, 0.05), (2, 1970, 77, 0.3), (2, 3583, 512, 0.02), (3, 2001, 0, 0.5))


def accuracy(variants: list[str], old_table: str, out: Path, tag: str, meta: dict[str, str], cases=CHECK_CASES,
             device: str = "cuda", dtype_name: str = "bf16") -> int:
    """GPU check of each variant on ``CHECK_CASES`` (bf16, window masks + text, query block (0, 0, 1) emptied, the
    fg index ordered) against the float64 reference: relative error (Frobenius), NaN count (output poisoned with
    NaN before the launch), the emptied block all zeros.  Writes ``...-accuracy{tag}.csv``; returns the failures
    (error > 1e-2, any NaN, a non-zero empty block)."""
    import fgattn
    import torch
    from fgattn.masks import window_mask, with_text

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    rows, fails = [], 0
    for h, nv, nt, dt_ in cases:
        torch.manual_seed(nv + nt)
        mask = window_mask(1, h, nv, M, dt_, device=device)
        if nt:
            mask = with_text(mask, nt, M)
        mask[0, 0, 1] = False
        idx = fgattn.build_index(mask, block_m=M, gran_n=G, order=True)
        n = nv + nt
        q, k, v = (torch.randn(1, h, n, D, device=device, dtype=dtype) for _ in range(3))
        ref = fgattn.reference_attention(q, k, v, idx)
        for name in variants:
            o = torch.full_like(q, float("nan"))
            fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, config=variant_config(name, old_table), out=o)
            nan = int(o.isnan().sum())
            err = float((o.double() - ref).norm() / ref.norm())
            empty_ok = bool((o[0, 0, M:2 * M] == 0).all())
            ok = err <= 1e-2 and nan == 0 and empty_ok
            fails += not ok
            rows.append(dict(H=h, N=n, n_text=nt, density_target=dt_, density=round(idx.density(n), 5), variant=name,
                             dtype=dtype_name, rel_err=f"{err:.4e}", nan=nan, empty_block_zero=empty_ok, ok=ok,
                             reference="fgattn.reference_attention (float64)", **meta))
            print(f"[check] H{h} N{n} text {nt} d={dt_} {name:<10} rel err {err:.3e} nan {nan} empty-zero "
                  f"{empty_ok}", flush=True)
    path = out / f"kernels-h200-{meta['date'][:10]}-entry-regress{tag}-accuracy.csv"
    write_csv_atomic(path, rows, list(rows[0]))
    print(f"[check] {len(rows)} checks, {fails} failures; wrote {path}", flush=True)
    return fails


def smoke(old_table: str) -> int:
    """CPU (Triton interpreter) check: every variant on a tiny window + text mask against float64."""
    import fgattn
    import torch

    seed = int.from_bytes(os.urandom(4), "little") % 2**31
    print(f"[smoke] seed {seed}", flush=True)
    torch.manual_seed(seed)
    h, nv, nt = 2, 200, 56
    q, k, v = (torch.randn(1, h, nv + nt, D, dtype=torch.float16) for _ in range(3))
    idx = build_index(h, nv, nt, 0.3, "cpu")
    ref = fgattn.reference_attention(q, k, v, idx)
    worst = 0.0
    for name in VARIANTS:
        o = fgattn.fg_attention(q, k, v, idx, block_m=M, gran_n=G, config=variant_config(name, old_table))
        err = float((o.double() - ref).norm() / ref.norm())
        print(f"[smoke] {name}: rel err {err:.2e}", flush=True)
        worst = max(worst, err)
    return 0 if worst < 2e-2 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--shapes", default="40x32760,40x32760+512,12x75600,12x75600+512")
    ap.add_argument("--densities", default="0.02,0.05,0.1,0.3")
    ap.add_argument("--variants", default="entry,previous,fold", help=f"comma-separated, from {list(VARIANTS)}")
    ap.add_argument("--old-table", default=str(OLD_TABLE), help="launch table of the 'previous' variant")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--target-ms", type=float, default=20.0, help="timed replay length per case and round")
    ap.add_argument("--seed", type=int, default=1, help="case-order shuffle seed (+ shape position)")
    ap.add_argument("--budget-s", type=float, default=1e9, help="timing: skip remaining shapes after this")
    ap.add_argument("--ncu", default="", help="ncu cases SHAPE:DENSITY:V1/V2;... (empty: no ncu)")
    ap.add_argument("--ncu-timeout-s", type=float, default=80.0)
    ap.add_argument("--ncu-source", action="store_true",
                    help="ncu: also the SourceCounters section and each launch's SASS source page (stall samples "
                         "per instruction) in ncu-source.tgz")
    ap.add_argument("--no-time", action="store_true", help="ncu only")
    ap.add_argument("--check", action="store_true",
                    help="GPU accuracy check of the variants first (bf16, odd N, text tokens, an empty query block; "
                         "float64 reference)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--workers", type=int, default=14, help="prewarm processes")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ncu-driver", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        parse_shapes(args.shapes)
        [float(x) for x in args.densities.split(",")]
        parse_ncu(args.ncu)
    except ValueError as e:
        msg = str(e) if str(e).startswith("--") else f"--densities: {args.densities!r} is not a list of numbers"
        print(f"entry_regress: {msg}", file=sys.stderr)
        return 2
    bad = [v for v in args.variants.split(",") if v not in VARIANTS]
    if bad or "entry" not in args.variants.split(","):
        print(f"entry_regress: --variants: unknown {bad} or no 'entry' (known: {list(VARIANTS)})", file=sys.stderr)
        return 2
    if not Path(args.old_table).is_file():
        print(f"entry_regress: --old-table {args.old_table} does not exist", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("entry_regress: --rounds must be >= 1", file=sys.stderr)
        return 2
    if args.smoke:
        return smoke(args.old_table)
    if args.out is None:
        print("entry_regress: --out is required for a GPU run", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.ncu_driver:
        ncu_driver(args.ncu, args.old_table, args.out)
        return 0
    from bench_kernels import env_metadata

    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    shapes = parse_shapes(args.shapes)
    pairs = [] if args.no_time else [(v, s) for v in args.variants.split(",") for s in shapes]
    pairs = list(dict.fromkeys(pairs + [(v, s) for s, _, v in parse_ncu(args.ncu)]))
    prewarm(pairs, args.old_table, args.workers)
    print(f"[time] prewarm {time.perf_counter() - t0:.1f}s", flush=True)
    if args.check:
        accuracy(args.variants.split(","), args.old_table, args.out, args.tag, meta)
        print(f"[time] check {time.perf_counter() - t0:.1f}s", flush=True)
    if not args.no_time:
        path = time_shapes(args, meta, args.out)
        print(f"wrote {path}  [time] {time.perf_counter() - t0:.1f}s", flush=True)
    if args.ncu:
        run_ncu(args, args.out, args.ncu_timeout_s)
    print(f"[time] total {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
