"""Nsight Compute (``--set full``, SASS source counters) of the packaged fg entry at low and high density.

Session 13, helper P: where the Gluon fg entry's per-row cost goes (kernels/NOTES.md, "Session 13, P")::

    PYTHONPATH=.:kernels python3 kernels/tools/ncu_rowcost.py --out $OUT        # GPU: time, then ncu

Shape H12 N32760 D128 bf16, the benchmark's window masks (``bench_kernels.final_shape``: seed int(1000 d) + 7,
``fgattn.masks.window_mask``, index in launch order).  Cases: the packaged table entry (``fgattn.fg_attention``,
config from the table: Gluon ws2, list schedule) at d 0.02 and 0.5, and the list_l2 diagnostic of
``fgattn.gluon_fg_rowpipe`` (same CTA, every gather an L2 hit, wrong output by design) at d 0.02.  The driver
(run under ncu) compiles every case and times it before the profiler range (CUDA events, 20 launches, median;
ncu attached but not profiling).  Then ncu profiles one launch per case (``--profile-from-start off``, the driver's profiler range), clocks as found, default cache
control (caches flushed before each replay pass).  Writes times.json, ncu.ncu-rep, ncu-raw.csv,
ncu-source-<i>.csv (SASS page per launch) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation")]

H, N, D, M = 12, 32760, 128, 128
CASES = (("entry", 0.02), ("entry", 0.5), ("list_l2", 0.02))
STALL_REGEX = "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio"


def warm_and_time(c: dict, with_time: bool) -> None:
    """Run case ``c``'s ``fn`` twice (warm-up: compile, autotune, caches), then, with ``with_time``, time 20 launches
    by CUDA events and add the median / min / max (``us``, µs) and ``us_per_row_per_sm`` to ``c``."""
    import torch

    fn = c["fn"]
    fn()
    fn()
    torch.cuda.synchronize()
    if with_time:
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(20)]
        for a, b in ev:
            a.record()
            fn()
            b.record()
        torch.cuda.synchronize()
        ts = sorted(a.elapsed_time(b) * 1e3 for a, b in ev)
        c.update(us=round(ts[len(ts) // 2], 2), us_min=round(ts[0], 2), us_max=round(ts[-1], 2))
        c["us_per_row_per_sm"] = round(c["us"] / c["rows_per_sm"], 3)


def build(with_time: bool) -> list[dict]:
    """The cases (inputs, index, launcher) in CASES order; with ``with_time`` each is timed."""
    import fgattn
    import torch
    from fgattn.attention import fg_route, resolve_config
    from fgattn.gluon_fg_list import plan_ws2_list
    from fgattn.gluon_fg_rowpipe import VARIANT_KNOBS, fg_attention_gluon_rowpipe
    from fgattn.masks import window_mask

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = torch.empty_like(q)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    cases = []
    for name, d in CASES:
        torch.manual_seed(int(d * 1000) + 7)
        idx = fgattn.build_index(window_mask(1, H, N, M, d), block_m=M, order=True)
        cnt = idx.counts()
        tiles = float(((cnt + 127) // 128).clamp(min=1).sum())
        rows = int(cnt.numel())
        if name == "entry":
            fn = lambda idx=idx: fgattn.fg_attention(q, k, v, idx, block_m=M, out=out)  # noqa: E731
            cfg = resolve_config("fg", q, M)
            route = " ".join(fg_route(q, cfg, k=k, v=v, index=idx)) + f" | {cfg.extra}"
        else:
            plan = plan_ws2_list(idx, programs=sms)
            fn = lambda idx=idx, plan=plan, kn=VARIANT_KNOBS[name]: fg_attention_gluon_rowpipe(  # noqa: E731
                q, k, v, idx, out=out, plan=plan, **kn)
            route = "gluon_fg_rowpipe list_l2 (diagnostic)"
        c = dict(variant=name, d=d, density=round(float(cnt.sum()) / (rows * N), 4), rows=rows,
                 rows_per_sm=round(rows / sms, 3), tiles_per_row=round(tiles / rows, 3), sms=sms, route=route, fn=fn)
        warm_and_time(c, with_time)
        print(f"[build] {name} d={d}: {({x: y for x, y in c.items() if x != 'fn'})}", flush=True)
        cases.append(c)
    return cases


def driver(out: Path) -> None:
    """Under ncu: build, warm and time each case (before the profiler range, so not profiled), write times.json,
    then one launch each inside the profiler range."""
    import torch

    cases = build(True)
    (out / "times.json").write_text(json.dumps([{k: v for k, v in c.items() if k != "fn"} for c in cases], indent=1))
    torch.cuda.profiler.start()
    for c in cases:
        c["fn"]()
        print(f"[driver] profiled {c['variant']} d={c['d']}", flush=True)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def run(out: Path, timeout_s: float) -> int:
    """ncu over the driver (which builds, warms and times the cases first); export the raw and source pages."""
    from ncu_persistent import find_ncu

    t0 = time.perf_counter()
    ncu = find_ncu()
    print(f"[ncu] {ncu}", flush=True)
    if ncu is None:
        print("ncu_rowcost: no ncu on this machine", file=sys.stderr)
        return 2
    me = [sys.executable, str(Path(__file__).resolve())]
    rep = out / "ncu"
    cmd = [ncu, "--clock-control", "none", "--profile-from-start", "off", "-k", "regex:_fg_gluon", "--set", "full",
           "--import-source", "no", "--metrics", STALL_REGEX, "-f", "-o", str(rep)] + me + ["--driver", "--out", str(out)]
    left = timeout_s - (time.perf_counter() - t0)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(left - 20, 10))
        log = f"$ {' '.join(cmd)}\nrc={p.returncode}\n{p.stdout[-6000:]}\n{p.stderr[-4000:]}"
    except subprocess.TimeoutExpired as e:
        log = f"$ {' '.join(cmd)}\nTIMEOUT\n{e.stdout or ''}"
    (out / "ncu-run.log").write_text(log)
    print(log[-3000:], flush=True)
    rep_file = rep.with_suffix(".ncu-rep")
    if not rep_file.exists():
        print("[ncu] no report", flush=True)
        return 1
    n = len(CASES)
    jobs = [("ncu-raw.csv", ["--page", "raw", "--csv"])]
    jobs += [(f"ncu-source-{i}.csv", ["--page", "source", "--csv", "--print-source", "sass", "--launch-skip", str(i),
                                      "--launch-count", "1"]) for i in range(n)]
    for name, extra in jobs:
        try:
            p = subprocess.run([ncu, "-i", str(rep_file)] + extra, capture_output=True, text=True, timeout=60)
            (out / name).write_text(p.stdout if p.stdout.strip() else f"rc={p.returncode}\n{p.stderr[-2000:]}")
            print(f"[ncu] {name}: rc={p.returncode} {len(p.stdout.splitlines())} lines", flush=True)
        except subprocess.TimeoutExpired:
            print(f"[ncu] {name}: export timed out", flush=True)
    print(f"[ncu] done {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ analysis (CPU)
#: stall columns of the source page (issued samples are "selected")
REASONS = ("barrier", "branch_resolving", "dispatch", "drain", "imc", "lg", "long_sb", "math", "membar", "mio",
           "misc", "no_inst", "not_selected", "selected", "short_sb", "sleep", "tex", "wait")
#: raw-page metrics of the case table: (column, metric, scale)
RAW = (("ncu_us", "gpu__time_duration.sum", 1e3), ("sm_ghz", "sm__cycles_elapsed.avg.per_second", 1.0),
       ("l2_hit_pct", "lts__t_sector_hit_rate.pct", 1.0), ("l2_read_hit_pct", "lts__t_sector_op_read_hit_rate.pct", 1.0),
       ("dram_read_mb", "dram__bytes_read.sum", 1.0), ("l2_thr_pct", "lts__throughput.avg.pct_of_peak_sustained_elapsed", 1.0),
       ("warps_active_pct", "sm__warps_active.avg.pct_of_peak_sustained_active", 1.0),
       ("issue_active_pct", "smsp__issue_active.avg.pct_of_peak_sustained_active", 1.0),
       ("eligible_per_cycle", "smsp__warps_eligible.avg.per_cycle_active", 1.0),
       ("sm_thr_pct", "sm__throughput.avg.pct_of_peak_sustained_elapsed", 1.0),
       ("sm_active_min_over_max", None, 1.0), ("regs", "launch__registers_per_thread", 1.0),
       ("block_threads", "launch__block_size", 1.0), ("samples", "smsp__pcsamp_sample_count", 1.0))


def load_source(path: Path) -> list[dict]:
    """Instructions of an ncu source page (SASS): offset, text, samples, executions (warp level), stall samples."""
    import csv

    rows = list(csv.reader(path.open()))
    hi = next((i for i, r in enumerate(rows) if "Address" in r and "Source" in r), None)
    if hi is None:
        raise ValueError(f"{path}: not an ncu source page")
    head = rows[hi]
    col = {c: i for i, c in enumerate(head)}
    data = [r for r in rows[hi + 1:] if r and r[0].startswith("0x")]
    base = int(data[0][0], 16)

    def num(r: list[str], c: str) -> float:
        v = r[col[c]].replace(",", "") if c in col else ""
        return float(v) if v not in ("", "-") else 0.0

    return [dict(off=int(r[0], 16) - base, src=r[1].strip(), s=num(r, "Warp Stall Sampling (All Samples)"),
                 ex=num(r, "Instructions Executed"), why={k: num(r, f"stall_{k}") for k in REASONS})
            for r in data]


def roles(ins: list[dict]) -> list[tuple[str, int, int]]:
    """(role, first offset, end offset) of the ws2 CTA's partitions in SASS: the producer from its register
    release (USETMAXREG.DEALLOC 0x40) to the next USETMAXREG.TRY_ALLOC; the worker consumer before it, the default
    consumer after it up to the last executed EXIT; then the mbarrier retry stubs."""
    p0 = next(x["off"] for x in ins if x["src"].startswith("USETMAXREG.DEALLOC.CTAPOOL 0x40"))
    p1 = next(x["off"] for x in ins if x["off"] > p0 and x["src"].startswith("USETMAXREG.TRY_ALLOC"))
    ex = max(x["off"] for x in ins if x["src"].endswith("EXIT") and x["ex"] > 0) + 0x10
    return [("consumer_worker", 0, p0), ("producer", p0, p1), ("consumer_default", p1, ex), ("stubs", ex, 1 << 40)]


def klass(ex: float, rows: int) -> str:
    """Execution class of an instruction (warp-level count; 4 warps per role and CTA): once per CTA, once per row
    (4 x rows), more often (per tile), or never executed."""
    r4 = 4 * rows
    if ex <= 0:
        return "unexecuted"
    if ex < 0.5 * r4:
        return "per_cta"
    if ex <= 1.02 * r4:
        return "per_row"
    return "per_tile"


def _group(name: str, part: list[dict], tot: float, conv: float) -> dict:
    """One section: instructions, samples, share of the role, µs per row per SM, top stall reasons."""
    import collections

    w = sum(x["s"] for x in part)
    why: collections.Counter[str] = collections.Counter()
    for x in part:
        why.update(x["why"])
    top = "; ".join(f"{r} {100 * v / max(w, 1):.0f}%" for r, v in why.most_common(4) if v > 0)
    return dict(section=name, instructions=len(part), samples=int(w), share_of_role=round(w / max(tot, 1), 4),
                us_per_row_per_sm=round(w * conv, 3), top_stalls=top)


def sections(ins: list[dict], case: dict, us: float) -> list[dict]:
    """Per role: execution classes (per_cta / per_row / per_tile) and named sections, µs per row per SM = share of
    the role's samples x kernel µs / rows per SM (each role is one warpgroup alive for the whole persistent
    kernel, so its samples cover the kernel's duration).  Consumer sections (the packaged kernel's order): row
    start (per-row code before the tile loop: offsets, Q wait, tile-0 QK and softmax), last tile (per-row code
    after the loop up to the last wgmma wait before the O stores), normalize (to the first STG), O stores (the STG
    span), next row (after the stores: next offsets and their wait); mbarrier waits (TRYWAIT + the next branch, its retry) by class.  The sections assume the packaged kernel's
    code order; other forms (the rowpipe module's list_l2) move the next row's tile 0 into "next row".
    Producer: empty-stage waits, per-row code before / after the gather loop."""
    out = []
    k = case["rows"]
    for role, a, b in roles(ins)[:3]:
        sel = [x for x in ins if a <= x["off"] < b]
        tot = sum(x["s"] for x in sel)
        conv = us / case["rows_per_sm"] / max(tot, 1)
        cls = {c: [x for x in sel if klass(x["ex"], k) == c] for c in ("per_cta", "per_row", "per_tile")}
        groups = [(f"class {c}", v) for c, v in cls.items()]
        waits = set()
        for i, x in enumerate(sel):
            if "PHASECHK" in x["src"]:
                br = next((y for y in sel[i + 1:i + 16] if "BRA" in y["src"]), None)
                waits |= {x["off"]} | ({br["off"]} if br else set())
        loop = cls["per_tile"]
        l0, l1 = min(x["off"] for x in loop), max(x["off"] for x in loop)
        if role == "producer":
            groups += [("loop: empty-stage wait (TRYWAIT + branch)", [x for x in loop if x["off"] in waits]),
                       ("loop: rest (index loads, address math, cp.async issue)",
                        [x for x in loop if x["off"] not in waits]),
                       ("row code before the gather loop", [x for x in cls["per_row"] if x["off"] < l0]),
                       ("row code after the gather loop (next row: Order, Offsets)",
                        [x for x in cls["per_row"] if x["off"] > l1])]
        else:
            pre = [x for x in cls["per_row"] if x["off"] < l0]
            post = [x for x in cls["per_row"] if x["off"] > l1]
            stg = [x["off"] for x in post if "STG" in x["src"]]
            if stg:
                last = max(x["off"] for x in post if x["src"].startswith("WARPGROUP.DEPBAR") and x["off"] < min(stg))
                groups += [("row start (offsets, Q wait, tile-0 QK, softmax)", pre),
                           ("last tile (QK, PV, last PV wait)", [x for x in post if x["off"] <= last]),
                           ("normalize", [x for x in post if last < x["off"] < min(stg)]),
                           ("O stores (STG span)", [x for x in post if min(stg) <= x["off"] <= max(stg)]),
                           ("next row (offsets load + wait)", [x for x in post if x["off"] > max(stg)])]
            groups += [("loop: full-stage wait", [x for x in loop if x["off"] in waits]),
                       ("row: barrier waits (Q, tile-0 full)", [x for x in cls["per_row"] if x["off"] in waits])]
        for name, part in groups:
            out.append(dict(role=role, **_group(name, part, tot, conv)))
    return out


def hot_lines(ins: list[dict], case: dict, n: int = 8) -> list[str]:
    """The per-row SASS instructions with the most samples per role (text)."""
    lines = []
    for role, a, b in roles(ins)[:3]:
        sel = [x for x in ins if a <= x["off"] < b]
        tot = sum(x["s"] for x in sel)
        hot = sorted((x for x in sel if klass(x["ex"], case["rows"]) == "per_row"), key=lambda x: -x["s"])[:n]
        lines.append(f"  {role}: hottest per-row SASS (offset, samples, % of the role, top stalls)")
        for x in hot:
            st = ", ".join(f"{r} {v:.0f}" for r, v in sorted(x["why"].items(), key=lambda t: -t[1])[:3] if v > 0)
            lines.append(f"    0x{x['off']:05x} {x['s']:6.0f} {100 * x['s'] / max(tot, 1):5.1f}%  {x['src'][:58]:<58} [{st}]")
    return lines


def analyze(src: Path) -> tuple[list[dict], list[dict], str]:
    """Case table (times.json + raw page), per-role sections, and a text report from a run's output folder."""
    import csv

    cases = json.loads((src / "times.json").read_text())
    rows = list(csv.reader((src / "ncu-raw.csv").open()))
    hdr, data = rows[0], rows[2:]
    table, split_rows, text = [], [], []
    for i, c in enumerate(cases):
        r = dict(zip(hdr, data[i], strict=True))
        row = {k: c[k] for k in ("variant", "d", "density", "rows", "rows_per_sm", "tiles_per_row", "us", "us_min",
                                 "us_max", "us_per_row_per_sm")}
        row["kernel"] = r.get("Kernel Name", "?")
        for name, m, sc in RAW:
            if m is None:
                row[name] = round(float(r["sm__cycles_active.min"]) / float(r["sm__cycles_active.max"]), 4)
            else:
                row[name] = round(float(r[m].replace(",", "")) * sc, 4)
        row["tensor_active_pct"] = round(float(r["sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active"]), 2)
        row["ncu_us_per_row_per_sm"] = round(row["ncu_us"] / c["rows_per_sm"], 3)
        table.append(row)
        ins = load_source(src / f"ncu-source-{i}.csv")
        sp = sections(ins, c, row["ncu_us"])
        split_rows += [dict(variant=c["variant"], d=c["d"], **x) for x in sp]
        text.append(f"== {c['variant']} d={c['d']} ({row['kernel']}): ncu {row['ncu_us']} us at {row['sm_ghz']} GHz, "
                    f"{c['rows_per_sm']} rows/SM, {c['tiles_per_row']} tiles/row -> {row['ncu_us_per_row_per_sm']} "
                    f"us per row per SM; L2 hit {row['l2_hit_pct']} %, DRAM read {row['dram_read_mb']} MB, issue "
                    f"{row['issue_active_pct']} %, tensor pipe {row['tensor_active_pct']} % of active cycles")
        for x in sp:
            text.append(f"  {x['role']:<17} {x['section']:<58} {x['instructions']:5d} instr {x['samples']:7d} "
                        f"{100 * x['share_of_role']:5.1f}% {x['us_per_row_per_sm']:8.3f} us/row/SM  [{x['top_stalls']}]")
        text.extend(hot_lines(ins, c))
    return table, split_rows, "\n".join(text) + "\n"

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--timeout-s", type=float, default=95.0)
    ap.add_argument("--analyze", type=Path, default=None, help="a run's output folder: print the split")
    ap.add_argument("--write", default=None, help="with --analyze: write PREFIX.csv (cases), PREFIX-split.csv")
    ap.add_argument("--meta", default="", help="with --write: k=v|k=v columns added to every row")
    ap.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.analyze is not None:
        if not (args.analyze / "times.json").is_file():
            print(f"ncu_rowcost: --analyze: {args.analyze} has no times.json", file=sys.stderr)
            return 2
        try:
            meta = dict(kv.split("=", 1) for kv in args.meta.split("|") if kv)
        except ValueError:
            print(f"ncu_rowcost: --meta: want k=v|k=v, got {args.meta!r}", file=sys.stderr)
            return 2
        table, split_rows, text = analyze(args.analyze)
        for row in table:
            print(row)
        print(text)
        if args.write:
            from fgsim.fileio import write_csv_atomic

            write_csv_atomic(f"{args.write}.csv", [dict(r, **meta) for r in table])
            write_csv_atomic(f"{args.write}-split.csv", [dict(r, **meta) for r in split_rows])
        return 0
    if args.out is None:
        print("ncu_rowcost: --out is required", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.driver:
        driver(args.out)
        return 0
    return run(args.out, args.timeout_s)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
