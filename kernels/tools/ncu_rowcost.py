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
    """Prewarm + time (own process), ncu over the driver, export raw / details / source pages."""
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--timeout-s", type=float, default=95.0)
    ap.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
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
