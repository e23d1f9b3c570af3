"""Nsight Compute of the fg table entry vs the nested persistent kernel (static, queue, one-row control).

Diagnosis for issue 12 (why the nested persistent loop costs more per tile than the entry)::

    PYTHONPATH=.:kernels python3 validation/ncu_persistent.py --out $OUT            # GPU: prewarm, ncu, table
    python3 validation/ncu_persistent.py --table ncu-raw.csv                         # re-print the table

Shape H12 N32760 D128 bf16, M128 gran 1, window masks (``fgattn.masks.window_mask``) at ``--densities``; variants
and their launch options from ``validation/profile_row_cost.py`` (:func:`profile_row_cost.config`).  The outer
run first compiles every variant in parallel processes (Triton cache), then runs this script under
``ncu --profile-from-start off``: after warm-up launches, one launch per (density, variant) between
cudaProfilerStart/Stop, so ncu profiles exactly those (clocks as found, default cache flush per replay pass).
Writes ncu.ncu-rep, ncu-details.txt, ncu-raw.csv and a summary table (ncu-summary.txt) under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation")]

H, N, D, M = 12, 32760, 128, 128
VARIANTS = ("entry", "persistent_nested", "persistent_queue", "persistent_nested_1row")
SECTIONS = ("SpeedOfLight", "MemoryWorkloadAnalysis", "ComputeWorkloadAnalysis", "SchedulerStats",
            "WarpStateStats", "Occupancy", "LaunchStats")
#: extra metrics (kept only if this ncu knows their base name)
METRICS = ("sm__cycles_active.min", "sm__cycles_active.max", "sm__cycles_active.avg", "sm__cycles_elapsed.max",
           "sm__cycles_elapsed.avg.per_second", "lts__t_sector_hit_rate.pct", "lts__t_sector_op_read_hit_rate.pct",
           "l1tex__t_sector_hit_rate.pct", "dram__bytes_read.sum", "dram__bytes_write.sum",
           "dram__throughput.avg.pct_of_peak_sustained_elapsed",
           "sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active",
           "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active",
           "smsp__issue_active.avg.pct_of_peak_sustained_active", "sm__warps_active.avg.pct_of_peak_sustained_active",
           "l1tex__throughput.avg.pct_of_peak_sustained_active", "smsp__inst_executed.sum",
           "l1tex__data_pipe_lsu_wavefronts_mem_shared.sum", "lts__t_sectors_srcunit_tex_op_read.sum")
STALL_REGEX = "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio"
#: summary columns: (label, metric name in the raw CSV)
SUMMARY = (("ms", "gpu__time_duration.sum"), ("SM GHz", "sm__cycles_elapsed.avg.per_second"),
           ("L2 hit %", "lts__t_sector_hit_rate.pct"), ("L2 rd hit %", "lts__t_sector_op_read_hit_rate.pct"),
           ("L1 hit %", "l1tex__t_sector_hit_rate.pct"), ("DRAM rd MB", "dram__bytes_read.sum"),
           ("DRAM %", "dram__throughput.avg.pct_of_peak_sustained_elapsed"),
           ("L1 %", "l1tex__throughput.avg.pct_of_peak_sustained_active"),
           ("tensor %", "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"),
           ("issue %", "smsp__issue_active.avg.pct_of_peak_sustained_active"),
           ("occ %", "sm__warps_active.avg.pct_of_peak_sustained_active"),
           ("inst M", "smsp__inst_executed.sum"), ("act min/max", "_act_ratio"), ("act avg/elap", "_act_elapsed"))


def find_ncu() -> str | None:
    """Path of the ncu binary, if this machine has one."""
    hit = shutil.which("ncu")
    if hit:
        return hit
    cands = sorted(Path("/opt/nvidia").glob("nsight-compute/*/ncu")) + sorted(Path("/usr/local").glob("cuda*/bin/ncu"))
    return str(cands[-1]) if cands else None


def driver(variants: list[str], densities: list[float], profile: bool) -> None:
    """Warm every (density, variant) twice, then launch each once between cudaProfilerStart/Stop."""
    import fgattn
    import torch
    from fgattn.masks import window_mask
    from profile_row_cost import config, variant_index

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = torch.empty_like(q)
    cases = []
    for d in densities:
        mask = window_mask(1, H, N, M, d, device="cuda")
        idx = fgattn.build_index(mask, block_m=M, gran_n=1, order=True)
        for name in variants:
            cases.append((d, name, config(name), variant_index(name, idx)))
    for d, name, cfg, idx in cases:
        t0 = time.perf_counter()
        for _ in range(2):
            fgattn.fg_attention(q, k, v, idx, block_m=M, config=cfg, out=out)
        torch.cuda.synchronize()
        print(f"[driver] warm d={d} {name} {time.perf_counter() - t0:.1f}s", flush=True)
    if not profile:
        return
    torch.cuda.profiler.start()
    for d, name, cfg, idx in cases:
        fgattn.fg_attention(q, k, v, idx, block_m=M, config=cfg, out=out)
        print(f"[driver] profiled launch: d={d} {name}", flush=True)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def known_metrics(ncu: str) -> list[str]:
    """METRICS whose base name this ncu lists for the GH100 chip (all of them if the query fails)."""
    try:
        p = subprocess.run([ncu, "--query-metrics", "--chip", "gh100"], capture_output=True, text=True, timeout=60)
        names = {line.split()[0] for line in p.stdout.splitlines() if line.strip() and "__" in line.split()[0]}
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return list(METRICS)
    if not names:
        return list(METRICS)
    return [m for m in METRICS if m.split(".")[0] in names]


def profile_attempts(ncu: str, rep: Path, sections: list[str], metric_sets: list[list[str]], prog: list[str],
                     deadline: float, log_path: Path, min_left_s: float = 15.0) -> Path | None:
    """Run ``prog`` under ncu with each metric set in turn (an empty set: sections only) until one run writes
    ``rep.ncu-rep``; ``deadline`` is a time.perf_counter() value, no attempt starts with less than ``min_left_s``
    left. Every attempt's command and output tail go to ``log_path``. Returns the report file, or None."""
    base = [ncu, "--clock-control", "none", "--profile-from-start", "off", "-k", "regex:_attn_fwd", "-f", "-o",
            str(rep)] + [a for s in sections for a in ("--section", s)]
    rep_file = rep.with_suffix(".ncu-rep")
    log = []
    for mset in metric_sets:
        left = deadline - time.perf_counter()
        if left < min_left_s:
            break
        cmd = base + (["--metrics", ",".join(mset)] if mset else []) + prog
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired as e:
            log.append(f"$ {' '.join(cmd)}\nTIMEOUT after {left:.0f}s\n{e.stdout or ''}")
            break
        log.append(f"$ {' '.join(cmd)}\nrc={p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
        print(log[-1][-1500:], flush=True)
        if p.returncode == 0 and rep_file.exists():
            break
    log_path.write_text("\n".join(log))
    return rep_file if rep_file.exists() else None


def run(out: Path, variants: list[str], densities: list[float], timeout_s: float) -> int:
    """Prewarm in parallel processes, run the driver under ncu, export the pages, print the summary."""
    t0 = time.perf_counter()
    ncu = find_ncu()
    if ncu is None:
        print("ncu_persistent: no ncu on this machine", file=sys.stderr)
        return 2
    me = [sys.executable, str(Path(__file__).resolve())]
    dens = ",".join(str(d) for d in densities)
    procs = [subprocess.Popen(me + ["--driver", "--no-profile", "--variants", v, "--densities", dens])
             for v in variants]
    metrics = known_metrics(ncu)
    print(f"[ncu] {ncu}; metrics kept {len(metrics)}/{len(METRICS)}: dropped "
          f"{sorted(set(METRICS) - set(metrics))}", flush=True)
    rcs = [p.wait() for p in procs]
    print(f"[ncu] prewarm rcs {rcs} {time.perf_counter() - t0:.1f}s", flush=True)
    prog = me + ["--driver", "--variants", ",".join(variants), "--densities", dens]
    rep_file = profile_attempts(ncu, out / "ncu", list(SECTIONS), [metrics + [STALL_REGEX], []], prog,
                                t0 + timeout_s, out / "ncu-run.log", min_left_s=20.0)
    if rep_file is None:
        print("[ncu] no report", flush=True)
        return 1
    for name, extra in (("ncu-details.txt", ["--page", "details"]), ("ncu-raw.csv", ["--page", "raw", "--csv"])):
        p = subprocess.run([ncu, "-i", str(rep_file)] + extra, capture_output=True, text=True, timeout=90)
        (out / name).write_text(p.stdout + ("\n" + p.stderr if p.returncode else ""))
    text = table((out / "ncu-raw.csv").read_text(), variants, densities)
    (out / "ncu-summary.txt").write_text(text)
    print(text, flush=True)
    print(f"[ncu] done {time.perf_counter() - t0:.1f}s", flush=True)
    return 0


def _num(s: str) -> float | None:
    try:
        return float(s.replace(",", ""))
    except (ValueError, AttributeError):
        return None


def table(raw_csv: str, variants: list[str], densities: list[float]) -> str:
    """Summary (one line per profiled launch, in launch order) and stall ratios from an ncu raw CSV page."""
    rows = list(csv.reader(io.StringIO(raw_csv)))
    hdr_i = next((i for i, r in enumerate(rows) if "ID" in r and "Kernel Name" in r), None)
    if hdr_i is None:
        return "no raw rows\n" + raw_csv[:2000]
    hdr, units = rows[hdr_i], rows[hdr_i + 1]
    data = [dict(zip(hdr, r, strict=True)) for r in rows[hdr_i + 2:] if len(r) == len(hdr)]
    labels = [(d, v) for d in densities for v in variants]
    lines = ["d    variant                 " + " ".join(f"{lab:>11}" for lab, _ in SUMMARY)]
    unit = dict(zip(hdr, units, strict=False))
    stall_cols = [c for c in hdr if c.startswith("smsp__average_warps_issue_stalled_")]
    stall_lines = []
    for i, r in enumerate(data):
        d, v = labels[i] if i < len(labels) else ("?", r.get("Kernel Name", "?"))
        act = [_num(r.get(f"sm__cycles_active.{s}", "")) for s in ("min", "max", "avg")]
        r["_act_ratio"] = f"{act[0] / act[1]:.3f}" if act[0] and act[1] else ""
        el = _num(r.get("sm__cycles_elapsed.max", ""))
        r["_act_elapsed"] = f"{act[2] / el:.3f}" if act[2] and el else ""
        vals = []
        for _lab, col in SUMMARY:
            x = _num(r.get(col, ""))
            u = unit.get(col, "")
            if x is not None and col == "gpu__time_duration.sum":
                x = x * {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3}.get(u, 1.0)  # ms
            if x is not None and col == "sm__cycles_elapsed.avg.per_second":
                x = x * {"cycle/second": 1e-9, "cycle/msecond": 1e-6, "cycle/usecond": 1e-3}.get(u, 1.0)
            if x is not None and col == "dram__bytes_read.sum":
                x = x * {"byte": 1e-6, "Kbyte": 1e-3, "Mbyte": 1.0, "Gbyte": 1e3}.get(u, 1.0)
            if x is not None and col == "smsp__inst_executed.sum":
                x = x / 1e6
            vals.append(f"{x:11.3f}" if x is not None else f"{r.get(col, ''):>11}")
        lines.append(f"{d!s:4} {v:23} " + " ".join(vals))
        st = sorted(((_num(r[c]) or 0.0, c.removeprefix("smsp__average_warps_issue_stalled_")
                     .removesuffix("_per_issue_active.ratio")) for c in stall_cols), reverse=True)
        stall_lines.append(f"{d!s:4} {v:23} " + ", ".join(f"{n} {x:.2f}" for x, n in st[:9] if x >= 0.01))
    return "\n".join(lines + ["", "warp stalls per issued instruction (top reasons):"] + stall_lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--densities", default="0.5,0.1")
    ap.add_argument("--timeout-s", type=float, default=170.0, help="prewarm + ncu wall-clock limit")
    ap.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-profile", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--table", type=Path, default=None, help="print the summary of an ncu raw CSV page")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        print(f"ncu_persistent: --variants: unknown {bad} (known: {list(VARIANTS)})", file=sys.stderr)
        return 2
    try:
        densities = [float(x) for x in args.densities.split(",")]
    except ValueError:
        print(f"ncu_persistent: --densities: not a list of numbers: {args.densities!r}", file=sys.stderr)
        return 2
    if args.table is not None:
        if not args.table.is_file():
            print(f"ncu_persistent: --table: no such file {args.table}", file=sys.stderr)
            return 2
        print(table(args.table.read_text(), variants, densities))
        return 0
    if args.driver:
        driver(variants, densities, not args.no_profile)
        return 0
    if args.out is None:
        print("ncu_persistent: --out is required for a GPU run", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    return run(args.out, variants, densities, args.timeout_s)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
