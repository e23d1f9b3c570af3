"""Benchmark (and tune) the fgattn kernels on a GPU (issue 3, item 6).

    PYTHONPATH=.:kernels python validation/bench_kernels.py --quick --tune --out $OUT

Times are ``triton.testing.do_bench`` medians (warm-up 25 ms, 100 ms of repeats) over inputs
rotated among ``--rotate`` sets.  Throughputs: dense kernels 4·B·H·N²·D / t; sparse kernels
"effective" 4·D·(kept query-key pairs) / t, and the ratio of that to cuDNN SDPA's dense TFLOP/s
measured in the same run (target ≥ 0.9).  ``--tune`` compiles and checks a small sweep of launch
configurations in parallel worker processes, times the survivors on the first shape, and writes
the winners to ``kernels/fgattn/data/launch_configs.json`` (and a copy under ``--out``).
``--quick`` is a ~2-minute subset; the default covers the four Wan2.1 shapes at D=128 and two at D=64;
``--targets`` runs interleaved cuDNN/fgattn rounds at the target shape, Flex at D=64 and an index-build
breakdown.  ``--final --tune`` (issue 12) sweeps candidates with CUDA-graph timing in interleaved rounds, writes
the winners (median relative time over the sweep problems) to the launch table with the measurement that chose
them, runs ``gpu_check_kernels.py`` and benchmarks the Wan shapes against cuDNN and Flex; ``--retable CSV``
re-picks the table from a committed sweep CSV without a GPU.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import triton

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]

import fgattn  # noqa: E402
import fgattn.launch as launch  # noqa: E402
from fgattn.attention import resolve_config  # noqa: E402
from fgattn.masks import random_mask, window_mask  # noqa: E402

from fgsim.validation.sm_clock import ClockMeter, format_mhz  # noqa: E402

TABLE = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
DENSITIES = (1.0, 0.7, 0.5, 0.3, 0.1)
TUNE_SHAPE = (12, 32760)  # (H, N) of the --final sweep


# ------------------------------------------------------------------------------------------ env
def env_metadata() -> dict[str, str]:
    """GPU name, max SM clock, power limit, driver, library versions and date, one value per CSV column (no clock
    read here: at rest it is the idle clock; clocks are sampled under load by :class:`ClockSampler`)."""
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version()),
        "gpu_name": torch.cuda.get_device_name(),
        "sm_count": str(torch.cuda.get_device_properties(0).multi_processor_count),
    }
    # static facts only: a clock / power / temperature read here is the idle state before any work (345 MHz on
    # the H200), not what the timed work ran at; those are sampled under load (``ClockSampler``, the CSVs'
    # ``clocks_under_load`` column)
    q = "name,driver_version,clocks.max.sm,power.limit"
    try:
        line = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        for k, v in zip(q.split(","), line.split(", "), strict=False):
            meta["smi_" + k.replace(".", "_")] = v
    except Exception as e:  # noqa: BLE001
        meta["smi_error"] = repr(e)
    try:
        meta["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        meta["git_commit"] = ""
    # the device machine's copy of .git is frozen at session start: the caller passes the commit it sent
    meta["git_commit"] = os.environ.get("FGSIM_COMMIT") or meta["git_commit"]
    return meta


def sm_clock() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


# -------------------------------------------------------------------------------------- timing
def bench(fn, sets: list[tuple], warmup: int = 25, rep: int = 100) -> float:
    """Median ms of ``fn(*sets[i % len(sets)])`` with rotated inputs."""
    it = [0]

    def call():
        s = sets[it[0] % len(sets)]
        it[0] += 1
        fn(*s)

    return float(triton.testing.do_bench(call, warmup=warmup, rep=rep, return_mode="median"))


def wall_ms(fn, reps: int = 5) -> float:
    """Median wall ms of a host-synchronising call (index building)."""
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def make_qkv(b: int, h: int, n: int, d: int, sets: int, dtype=torch.bfloat16) -> list[tuple]:
    return [tuple(torch.randn(b, h, n, d, device="cuda", dtype=dtype) for _ in range(3)) for _ in range(sets)]


# -------------------------------------------------------------------------------------- tuning
class _Candidates(list):
    """Sweep candidates, one dict per launch configuration (kernel, head_dim, block_m, gran_n, block_n,
    num_stages, num_warps, extra launch options; ``control``: timed, never picked)."""

    def add(self, kernel: str, d: int, m: int, g: int, bn: int, st: int, w: int, control: bool = False,
            **extra: Any) -> None:
        self.append(dict(kernel=kernel, head_dim=d, block_m=m, gran_n=g, block_n=bn, num_stages=st,
                         num_warps=w, extra=extra, **({"control": True} if control else {})))

    def ref(self, kernel: str, d: int, m: int, g: int, **more: Any) -> None:
        """The H200 launch table's entry for (kernel, D, M, gran), with ``more`` options on top."""
        e = launch.launch_config(kernel, "h200", d, m, g)
        self.add(kernel, d, m, e.gran_n, e.block_n, e.num_stages, e.num_warps, **{**e.extra, **more})


def candidates(quick: bool) -> list[dict[str, Any]]:
    """Launch configurations to sweep, per (kernel, D, M, gran)."""
    c = _Candidates()
    add = c.add

    # run 1 (v1 kernel) winners are kept in the list so v2 variants are compared in the same run
    for bn, st, ia, ov in [(128, 3, 1, False), (128, 3, 0, False), (128, 5, 0, False), (64, 5, 0, False),
                           (64, 4, 0, True), (64, 3, 0, True), (64, 5, 0, True)]:
        add("fg", 128, 128, 1, bn, st, 8, idx_ahead=ia, overlap=ov, lpt=True)
    for bn, st, ia, ov in [(64, 3, 1, False), (64, 5, 0, False), (128, 4, 0, False), (64, 4, 0, True)]:
        add("fg", 128, 64, 1, bn, st, 4, idx_ahead=ia, overlap=ov, lpt=True)
    for g in (16, 64):
        for bn, st, ia, ov in [(128, 3, 1, False), (128, 3, 0, False), (128, 5, 0, False), (64, 4, 0, True)]:
            add("fg", 128, 128, g, bn, st, 8, idx_ahead=ia, overlap=ov, lpt=True)
    for bn, st, ia, ov in [(64, 5, 0, False), (128, 5, 0, False), (128, 3, 1, False), (64, 4, 0, True),
                           (128, 4, 0, True), (64, 3, 1, False)]:
        add("fg", 64, 128, 1, bn, st, 8, idx_ahead=ia, overlap=ov, lpt=True)
    for bn, st, tma, ov in [(128, 3, True, False), (128, 3, False, False), (64, 4, True, True), (64, 3, True, True),
                            (64, 5, True, False)]:
        add("dense", 128, 128, 1, bn, st, 8, tma=tma, overlap=ov, warp_specialize=False)
    for bn, st, tma, ov in [(64, 3, True, False), (64, 4, True, True), (128, 3, True, True), (64, 4, True, False)]:
        add("dense", 64, 128, 1, bn, st, 8, tma=tma, overlap=ov, warp_specialize=False)
    for bn, st, tma, ov in [(128, 3, False, False), (128, 3, True, False), (64, 4, True, True), (64, 4, False, True)]:
        add("block", 128, 128, 128, bn, st, 8, tma=tma, overlap=ov, warp_specialize=False)
    for bn, st, tma, ov in [(128, 3, False, False), (64, 4, False, True), (128, 3, False, True)]:
        add("block", 64, 128, 128, bn, st, 8, tma=tma, overlap=ov, warp_specialize=False)
    return c


def to_config(c: dict[str, Any], source: str = "sweep") -> launch.LaunchConfig:
    return launch.LaunchConfig(kernel=c["kernel"], gpu="h200", head_dim=c["head_dim"], block_m=c["block_m"],
                               block_n=c["block_n"], gran_n=c["gran_n"], num_warps=c["num_warps"],
                               num_stages=c["num_stages"], dtype="bf16", layout="bhnd", extra=dict(c["extra"]),
                               source=source)


def run_kernel(cfg: launch.LaunchConfig, q, k, v, index) -> torch.Tensor:
    if cfg.kernel == "fg":
        return fgattn.fg_attention(q, k, v, index, block_m=cfg.block_m, gran_n=cfg.gran_n, config=cfg)
    if cfg.kernel == "block":
        return fgattn.block_sparse_attention(q, k, v, index, block_m=cfg.block_m, config=cfg)
    return fgattn.dense_attention(q, k, v, block_m=cfg.block_m, config=cfg)


def tune_index(cfg: launch.LaunchConfig, h: int, n: int, density: float = 0.5):
    if cfg.kernel == "dense":
        return None
    g = cfg.gran_n if cfg.kernel == "fg" else cfg.block_m
    mask = random_mask(1, h, n, cfg.block_m, density, gran_n=g)
    return fgattn.build_index(mask, block_m=cfg.block_m, gran_n=g, order=bool(cfg.option("lpt", True)))


def proxy_n(h: int, n: int, m: int) -> int:
    """A small sequence length with the same Triton integer specialisation (divisibility by 16 of N, of the query
    blocks and of the rows) as H=h, N=n at block_m=m, so that a worker's compile is the one the timed launch uses."""
    def key(x: int) -> tuple[bool, ...]:
        qb = -(-x // m)
        return (x % 16 == 0, qb % 16 == 0, (h * qb) % 16 == 0)

    return next(x for x in range(1800, 4200) if key(x) == key(n))


def check_candidate(c: dict[str, Any]) -> dict[str, Any]:
    """Worker: compile ``c`` for the bench shape's specialisation (H=12, N≡8 mod 16, QB≡0 mod 16) on a
    small problem and compare with the float64 reference; with ``c["warm_shapes"]`` ((H, N) pairs) also compile
    (and check) it for each of those shapes' specialisations on small proxies."""
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    c = dict(c)
    warm_shapes = c.pop("warm_shapes", ())
    cfg = to_config(c)
    t0 = time.perf_counter()
    try:
        err = 0.0
        for h, n_target in warm_shapes:
            n = proxy_n(h, n_target, cfg.block_m)
            q, k, v = make_qkv(1, h, n, cfg.head_dim, 1)[0]
            index = tune_index(cfg, h, n)
            out = torch.full_like(q, float("nan"))
            run_kernel_out(cfg, q, k, v, index, out)
            torch.cuda.synchronize()
            ref = fgattn.reference_attention(q, k, v, index)
            err = max(err, float((out.double() - ref).norm() / ref.norm()))
        q, k, v = make_qkv(1, 12, 2040, cfg.head_dim, 1)[0]
        index = tune_index(cfg, 12, 2040)
        out = torch.full_like(q, float("nan"))
        if cfg.kernel == "fg":
            fgattn.fg_attention(q, k, v, index, block_m=cfg.block_m, gran_n=cfg.gran_n, config=cfg, out=out)
        elif cfg.kernel == "block":
            fgattn.block_sparse_attention(q, k, v, index, block_m=cfg.block_m, config=cfg, out=out)
        else:
            fgattn.dense_attention(q, k, v, block_m=cfg.block_m, config=cfg, out=out)
        torch.cuda.synchronize()
        ref = fgattn.reference_attention(q, k, v, index)
        err0, err = err, float((out.double() - ref).norm() / ref.norm())
        if cfg.impl != "tl":  # an impl-gluon candidate must run the Gluon form here, not the tl fallback
            impl, why = fgattn.fg_route(q, cfg)
            if impl != cfg.impl:
                return dict(c, ok=False, err=err, compile_s=time.perf_counter() - t0,
                            msg=f"impl {cfg.impl} candidate would run {impl}: {why}")
        if cfg.option("persistent", False) or cfg.impl == "gluon":  # several rows per program as well
            out2 = torch.full_like(q, float("nan"))
            with fgattn.limit_sms(5):
                run_kernel_out(cfg, q, k, v, index, out2)
            torch.cuda.synchronize()
            err = max(err, float((out2.double() - ref).norm() / ref.norm()))
        err = max(err, err0)
        ok = math.isfinite(err) and err < 2e-2
        return dict(c, ok=ok, err=err, compile_s=time.perf_counter() - t0, msg="")
    except Exception as e:  # noqa: BLE001
        return dict(c, ok=False, err=float("nan"), compile_s=time.perf_counter() - t0, msg=repr(e)[:300])


def check_in_subprocess(c: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`check_candidate` in a fresh process: a compiler crash (abort) only loses that candidate."""
    cmd = [sys.executable, __file__, "--check-candidate", json.dumps(c)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return dict(c, ok=False, err=float("nan"), compile_s=300.0, msg="timeout")
    for line in p.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return dict(c, ok=False, err=float("nan"), compile_s=float("nan"),
                msg=f"rc={p.returncode} {p.stderr.strip()[-300:]}")


def key_of(c: dict[str, Any]) -> tuple:
    return (c["kernel"], c["head_dim"], c["block_m"], c["gran_n"])


def check_candidates(cands: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    """Compile and check every candidate in worker processes (one subprocess each); print the rejected ones."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(workers, len(cands))) as ex:
        checked = list(ex.map(check_in_subprocess, cands))
    print(f"[tune] compiled+checked {len(cands)} candidates in {time.perf_counter() - t0:.1f}s "
          f"({sum(r['ok'] for r in checked)} ok)", flush=True)
    for r in checked:
        if not r["ok"]:
            print(f"[tune] rejected {key_of(r)} bn={r['block_n']} st={r['num_stages']} w={r.get('num_warps')} "
                  f"{r['extra']}: err={r.get('err')} {r['msg']}", flush=True)
    return checked


def tune(args, meta: dict[str, str], out_dir: Path) -> list[dict[str, Any]]:
    cands = candidates(args.quick)
    checked = check_candidates(cands, args.workers)
    h, n = 12, 32760
    results = []
    sets: dict[int, list] = {}
    idx_cache: dict[tuple, Any] = {}
    for r in checked:
        if not r["ok"]:
            continue
        cfg = to_config(r)
        d = cfg.head_dim
        if d not in sets:
            sets = {d: make_qkv(1, h, n, d, args.rotate)}
        ikey = (cfg.kernel, cfg.block_m, cfg.gran_n, bool(cfg.option("lpt", True)))
        if ikey not in idx_cache:
            torch.manual_seed(1234)
            idx_cache[ikey] = tune_index(cfg, h, n)
        index = idx_cache[ikey]
        ms = bench(lambda q, k, v, cfg=cfg, index=index: run_kernel(cfg, q, k, v, index), sets[d])
        pairs = index.density() * h * n * n if index is not None else h * n * n
        tf = 4 * d * pairs / ms / 1e9
        results.append(dict(r, ms=ms, eff_tflops=tf))
        print(f"[tune] {key_of(r)} bn={r['block_n']} st={r['num_stages']} w={r['num_warps']} {r['extra']}: "
              f"{ms:.3f} ms {tf:.0f} eff TFLOP/s", flush=True)
    best: dict[tuple, dict] = {}
    for r in results:
        kk = key_of(r)
        if kk not in best or r["ms"] < best[kk]["ms"]:
            best[kk] = r
    write_table(best, meta, out_dir)
    with open(out_dir / f"kernels-h200-tune-{meta['date'][:10]}.csv", "w", newline="") as f:
        cols = ["kernel", "head_dim", "block_m", "gran_n", "block_n", "num_stages", "num_warps", "extra", "ok",
                "err", "compile_s", "ms", "eff_tflops", "msg"] + list(meta)
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        by = {(key_of(r), r["block_n"], r["num_stages"], r["num_warps"], json.dumps(r["extra"])): r for r in results}
        for r in checked:
            rr = by.get((key_of(r), r["block_n"], r["num_stages"], r["num_warps"], json.dumps(r["extra"])), r)
            w.writerow({**rr, "extra": json.dumps(r["extra"]), **meta})
    del sets, idx_cache
    torch.cuda.empty_cache()
    return results


def write_table(best: dict[tuple, dict], meta: dict[str, str], out_dir: Path) -> None:
    """Tuned winners; untuned keys derived from the nearest tuned entry and marked so."""
    date = meta["date"][:10]
    entries = []
    for kernel in launch.KERNELS:
        for d in launch.HEAD_DIMS:
            for m in launch.BLOCK_MS:
                grans = launch.GRAN_NS if kernel == "fg" else ((m,) if kernel == "block" else (1,))
                for g in grans:
                    key = (kernel, d, m, g)
                    if key in best:
                        r = best[key]
                        src = (f"tuned {meta['gpu_name']} {date}: {r['ms']:.3f} ms, {r['eff_tflops']:.0f} eff TFLOP/s "
                               f"at B=1 H=12 N=32760 random density 0.5 (dense: 1.0), bf16")
                    else:
                        near = [b for b in best if b[0] == kernel]
                        if not near:
                            continue
                        near.sort(key=lambda b: (b[1] != d, b[3] != g, b[2] != m, abs(b[3] - g)))
                        r = dict(best[near[0]])
                        r["num_warps"] = 8 if m == 128 else 4
                        if kernel == "block":
                            r["block_n"] = min(r["block_n"], m)
                        if kernel == "fg":
                            r["block_n"] = max(r["block_n"], g)
                        src = f"derived (not measured for this key) from tuned {near[0]} on {meta['gpu_name']} {date}"
                    entries.append(dict(kernel=kernel, gpu="h200", head_dim=d, block_m=m, gran_n=g,
                                        block_n=r["block_n"], num_warps=r["num_warps"], num_stages=r["num_stages"],
                                        layout="bhnd", extra=r["extra"], source=src))
    data = {"version": 1, "note": "written by validation/bench_kernels.py --tune; keys (kernel,gpu,head_dim,block_m,gran_n)",
            "entries": entries}
    text = json.dumps(data, indent=1)
    TABLE.write_text(text)
    (out_dir / "launch_configs.json").write_text(text)
    launch.load_table.cache_clear()
    print(f"[tune] wrote {len(entries)} entries ({len(best)} tuned) to {TABLE}", flush=True)


# ------------------------------------------------------------------------------------ baselines
def sdpa(backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    be = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}[backend]

    def fn(q, k, v):
        with sdpa_kernel([be]):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    return fn


_FLEX = None


def flex():
    global _FLEX
    if _FLEX is None:
        import torch._dynamo
        from torch.nn.attention.flex_attention import flex_attention

        # one compiled graph per (shape, with/without BlockMask): raise the recompile limit so that
        # later shapes do not fall back to eager Flex (which materialises the N×N scores)
        torch._dynamo.config.cache_size_limit = 64
        if hasattr(torch._dynamo.config, "recompile_limit"):
            torch._dynamo.config.recompile_limit = 64
        _FLEX = torch.compile(flex_attention, dynamic=False)
    return _FLEX


def flex_block_mask(block_tiles: torch.Tensor, n: int):
    """FlexAttention BlockMask (128×128, all kept blocks 'full') from a bool (B, H, QB, KB) block mask."""
    from torch.nn.attention.flex_attention import BlockMask

    bsz, h, qb, kb = block_tiles.shape
    counts = block_tiles.sum(-1).to(torch.int32)
    order = torch.argsort((~block_tiles).to(torch.int8), dim=-1, stable=True).to(torch.int32)
    zeros = torch.zeros_like(counts)
    return BlockMask.from_kv_blocks(zeros, order.clone(), counts, order, BLOCK_SIZE=128, seq_lengths=(n, n))


# ------------------------------------------------------------------------------------ benchmark
COLS = ["kernel", "pattern", "density_target", "density", "block_density", "B", "H", "N", "D", "M", "gran_n",
        "ms", "tflops", "ratio_vs_cudnn", "index_ms", "config", "sm_clock_now"]


class Rows:
    """Benchmark rows, appended to the CSV as they are measured (a cut-short run keeps its rows)."""

    def __init__(self, meta, path: Path):
        self.meta = meta
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.cudnn: dict[tuple, float] = {}
        with open(path, "w", newline="") as f:
            csv.DictWriter(f, fieldnames=COLS + list(meta)).writeheader()

    def add(self, **r):
        r["sm_clock_now"] = sm_clock() if len(self.rows) % 10 == 0 else ""
        shape = (r["B"], r["H"], r["N"], r["D"])
        if r["kernel"] == "sdpa_cudnn":
            self.cudnn[shape] = r["tflops"]
        base = self.cudnn.get(shape)
        r["ratio_vs_cudnn"] = r["tflops"] / base if base else float("nan")
        self.rows.append({**r, **self.meta})
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=COLS + list(self.meta), extrasaction="ignore").writerow(self.rows[-1])
        print(f"{r['kernel']:>14} {r['pattern']:>8} d={r['density_target']:<4} act={r['density']:.3f} "
              f"B{r['B']} H{r['H']} N{r['N']} D{r['D']} M{r['M']} g{r['gran_n']}: {r['ms']:8.3f} ms "
              f"{r['tflops']:6.1f} TF/s  x{r['ratio_vs_cudnn']:.3f} cudnn  idx {r.get('index_ms', '')}", flush=True)


def bench_shape(rows: Rows, b, h, n, d, args, densities, patterns, fg_extra: list[tuple], with_flex: bool,
                with_block: bool = True):
    sets = make_qkv(b, h, n, d, args.rotate)
    dense_flops = 4 * b * h * n * n * d
    common = dict(B=b, H=h, N=n, D=d)

    def row(kernel, ms, pattern="dense", dt=1.0, dens=1.0, m=128, g=1, cfg="", **kw):
        rows.add(kernel=kernel, pattern=pattern, density_target=dt, density=dens, M=m, gran_n=g, ms=ms,
                 tflops=dense_flops * dens / ms / 1e9, config=cfg, **common, **kw)

    row("sdpa_cudnn", bench(sdpa("cudnn"), sets))
    row("sdpa_flash", bench(sdpa("flash"), sets))
    cfg = resolve_config("dense", sets[0][0], 128)
    row("fg_dense", bench(lambda q, k, v: fgattn.dense_attention(q, k, v, config=cfg), sets), cfg=cfg_str(cfg))
    if with_flex:
        try:
            row("flex_dense", bench(lambda q, k, v: flex()(q, k, v), sets))
        except Exception as e:  # noqa: BLE001
            print("flex dense failed:", repr(e)[:300])
            with_flex = False
    for pattern in patterns:
        for dt_ in densities:
            torch.manual_seed(int(dt_ * 1000) + 7)
            if pattern == "random":
                mask = random_mask(b, h, n, 128, dt_)
            else:
                mask = window_mask(b, h, n, 128, dt_)
            fg_case(row, sets, mask, pattern, dt_, 128, 1, b, h, n, d)
            if with_block or with_flex:
                tiles = torch.nn.functional.pad(mask, (0, (-n) % 128)).reshape(b, h, mask.shape[2], -1, 128).any(-1)
                bdens = float(tiles.sum()) / tiles.numel()
                bidx = fgattn.block_index_from_mask(tiles, block_m=128, n_keys=n, order=True)
                bcfg = resolve_config("block", sets[0][0], 128)
                ms = bench(lambda q, k, v, bidx=bidx, bcfg=bcfg: fgattn.block_sparse_attention(q, k, v, bidx, config=bcfg),
                           sets)
                row("fg_block128", ms, pattern, dt_, bidx.density(), 128, 128, cfg_str(bcfg), block_density=bdens)
                if with_flex:
                    bm = flex_block_mask(tiles, n)
                    ms = bench(lambda q, k, v, bm=bm: flex()(q, k, v, block_mask=bm), sets)
                    row("flex_block128", ms, pattern, dt_, bidx.density(), 128, 128, block_density=bdens)
            del mask
    for pattern, dt_, m, g in fg_extra:
        torch.manual_seed(int(dt_ * 1000) + g)
        if pattern == "random":
            mask = random_mask(b, h, n, m, dt_, gran_n=g)
        else:
            mask = window_mask(b, h, n, m, dt_)
        fg_case(row, sets, mask, pattern, dt_, m, g, b, h, n, d)
        del mask
    del sets
    torch.cuda.empty_cache()


def cfg_str(cfg) -> str:
    return (f"bn={cfg.block_n} st={cfg.num_stages} w={cfg.num_warps} {json.dumps(cfg.extra, sort_keys=True)} "
            f"[{cfg.source[:60]}]" + (f" impl={cfg.impl}" if cfg.impl != "tl" else ""))


def fg_case(row, sets, mask, pattern, dt_, m, g, b, h, n, d):
    build = lambda: fgattn.build_index(mask, block_m=m, gran_n=g, order=True)  # noqa: E731
    index_ms = wall_ms(build)
    index = build()
    cfg = resolve_config("fg", sets[0][0], m, g)
    ms = bench(lambda q, k, v: fgattn.fg_attention(q, k, v, index, block_m=m, gran_n=g, config=cfg), sets)
    row("fg_attention", ms, pattern, dt_, index.density(), m, g, cfg_str(cfg), index_ms=f"{index_ms:.3f}")


def index_breakdown(h: int, n: int, density: float) -> dict[str, float]:
    """Stage times (ms, CUDA events, median of 5) of build_index on a window mask."""
    from fgattn.index import _csr_from_tiles, _order

    mask = window_mask(1, h, n, 128, density)
    tiles = mask.reshape(-1, n)
    qb = mask.shape[2]

    def ev(fn):
        ts = []
        for _ in range(5):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        return sorted(ts)[2]

    off, _ = _csr_from_tiles(tiles)
    return {
        "sum_rows": ev(lambda: tiles.sum(-1)),
        "csr_total": ev(lambda: _csr_from_tiles(tiles)),
        "order": ev(lambda: _order(off, qb)),
        "build_index_wall": wall_ms(lambda: fgattn.build_index(mask, block_m=128, order=True)),
    }


def targets(args, meta: dict[str, str], out_dir: Path) -> None:
    """Interleaved rounds (cuDNN and fgattn alternating) at the target shape, ratios per round, so
    that clock drift between measurements cancels; plus Flex at D=64 and an index-build breakdown."""
    h, n, d = (int(x) for x in args.targets_shape.split(","))
    sets = make_qkv(1, h, n, d, args.rotate)
    cases: list[tuple[str, str, float, Any]] = [("sdpa_cudnn", "dense", 1.0, sdpa("cudnn"))]
    cfg = resolve_config("dense", sets[0][0], 128)
    cases.append(("fg_dense", "dense", 1.0, lambda q, k, v: fgattn.dense_attention(q, k, v, config=cfg)))
    fcfg = resolve_config("fg", sets[0][0], 128, 1)
    for pattern, dens in (("window", 0.7), ("window", 0.5), ("random", 0.5), ("window", 0.3), ("window", 0.1)):
        torch.manual_seed(int(dens * 1000) + 7)
        mask = window_mask(1, h, n, 128, dens) if pattern == "window" else random_mask(1, h, n, 128, dens)
        idx = fgattn.build_index(mask, block_m=128, order=True)
        cases.append(("fg_attention", pattern, idx.density(),
                      lambda q, k, v, idx=idx: fgattn.fg_attention(q, k, v, idx, block_m=128, config=fcfg)))
        if pattern == "window":
            tiles = torch.nn.functional.pad(mask, (0, (-n) % 128)).reshape(1, h, mask.shape[2], -1, 128).any(-1)
            bm = flex_block_mask(tiles, n)
            cases.append(("flex_block128", pattern, idx.density(),
                          lambda q, k, v, bm=bm: flex()(q, k, v, block_mask=bm)))
        if dens == 0.1:  # natural row order instead of longest-first
            ncfg = dataclasses.replace(fcfg, extra={**fcfg.extra, "lpt": False})
            cases.append(("fg_attention_nolpt", pattern, idx.density(),
                          lambda q, k, v, idx=idx, ncfg=ncfg: fgattn.fg_attention(q, k, v, idx, block_m=128, config=ncfg)))
    path = out_dir / f"kernels-h200-{meta['date'][:10]}-targets.csv"
    cols = ["round", "kernel", "pattern", "density", "ms", "tflops", "ratio_vs_cudnn_same_round", "sm_clock"]
    out = []
    for rnd in range(args.rounds):
        base = None
        for name, pattern, dens, fn in cases:
            ms = bench(fn, sets)
            tf = 4 * h * n * n * d * dens / ms / 1e9
            if name == "sdpa_cudnn":
                base = tf
            r = dict(round=rnd, kernel=name, pattern=pattern, density=dens, ms=ms, tflops=tf,
                     ratio_vs_cudnn_same_round=tf / base if base else float("nan"), sm_clock=sm_clock())
            out.append(r)
            print(f"[targets] r{rnd} {name:<14} {pattern:<7} {dens:.3f} {ms:8.3f} ms {tf:6.1f} TF/s "
                  f"x{r['ratio_vs_cudnn_same_round']:.3f} {r['sm_clock']}", flush=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols + list(meta), extrasaction="ignore")
        w.writeheader()
        for r in out:
            w.writerow({**r, **meta})
    del sets
    torch.cuda.empty_cache()
    rows = Rows(meta, out_dir / f"kernels-h200-{meta['date'][:10]}-flex-d64.csv")
    bench_shape(rows, 1, h, n, 64, args, (0.5, 0.3, 0.1), ("window",), [], True, with_block=True)
    with open(out_dir / f"kernels-h200-{meta['date'][:10]}-index-cost.csv", "w", newline="") as f:
        w = None
        for h2, n2, dens in ((h, n, 0.3), (40, 75600, 0.3)) if n > 1000 else ((h, n, 0.3),):
            br = index_breakdown(h2, n2, dens)
            print(f"[index] H={h2} N={n2} d={dens}: " + " ".join(f"{k}={v:.3f}ms" for k, v in br.items()), flush=True)
            row = {"H": h2, "N": n2, "density": dens, **br, **meta}
            if w is None:
                w = csv.DictWriter(f, fieldnames=list(row))
                w.writeheader()
            w.writerow(row)
    print("\nmedian over rounds (ratio vs cuDNN of the same round):")
    keys = sorted({(r["kernel"], r["pattern"], round(r["density"], 3)) for r in out}, key=str)
    for key in keys:
        rs = sorted(r["ratio_vs_cudnn_same_round"] for r in out if (r["kernel"], r["pattern"], round(r["density"], 3)) == key)
        ms = sorted(r["ms"] for r in out if (r["kernel"], r["pattern"], round(r["density"], 3)) == key)
        print(f"{key[0]:<14} {key[1]:<7} {key[2]:.3f}  ms {ms[len(ms) // 2]:8.3f}  x cuDNN {rs[len(rs) // 2]:.3f} "
              f"(min {rs[0]:.3f}, max {rs[-1]:.3f})")


# ------------------------------------------------------------------------------ issue 12: graph timing
class ClockSampler:
    """Background nvidia-smi sampler: (wall time, SM MHz, memory MHz) every ``period`` seconds."""

    def __init__(self, period: float = 1.0):
        import threading

        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._t.start()

    def _run(self, period: float) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.mem", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
                sm, mem = (float(x) for x in out.split(","))
                self.samples.append((time.time(), sm, mem))
            except Exception:  # noqa: BLE001
                pass
            self._stop.wait(period)

    def window(self, t0: float, t1: float) -> str:
        """'median (min-max)' SM MHz and median memory MHz sampled between t0 and t1."""
        w = [s for s in self.samples if t0 <= s[0] <= t1]
        if not w:
            return ""
        sm = sorted(s[1] for s in w)
        mem = sorted(s[2] for s in w)
        return f"sm {sm[len(sm) // 2]:.0f} ({sm[0]:.0f}-{sm[-1]:.0f}) MHz, mem {mem[len(mem) // 2]:.0f} MHz, n={len(w)}"

    def stop(self) -> None:
        self._stop.set()


class NvmlClock:
    """The SM clock (MHz) of CUDA device 0 read through NVML (``libnvidia-ml.so.1`` by ctypes; no Python package),
    polled while a case's timed replays run (:func:`replay_ms`): the per-cell clock under load.  ``ok`` is False
    where NVML cannot be loaded (then no per-cell clock is recorded)."""

    NVML_CLOCK_SM = 1

    def __init__(self) -> None:
        import ctypes

        self.ok = False
        try:
            self._lib = ctypes.CDLL("libnvidia-ml.so.1")
            if self._lib.nvmlInit_v2() != 0:
                return
            self._h = ctypes.c_void_p()
            if self._lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self._h)) != 0:
                return
            self._v = ctypes.c_uint()
            self._ref = ctypes.byref(self._v)
            self.ok = self.sm_mhz() is not None
        except OSError:
            self.ok = False

    def sm_mhz(self) -> int | None:
        """The current SM clock in MHz, or None if NVML failed."""
        if self._lib.nvmlDeviceGetClockInfo(self._h, self.NVML_CLOCK_SM, self._ref) != 0:
            return None
        return int(self._v.value)


#: module functions that launch a Gluon form: (module name, function) -> the route label of a case that calls it
GLUON_LAUNCHES = {("fgattn.gluon_contig", "contig_attention_gluon"): "gluon contig",
                  ("fgattn.gluon_fg_list", "fg_attention_gluon_list"): "gluon list",
                  ("fgattn.gluon_fg", "fg_attention_gluon"): "gluon walk"}


class CaptureLaunches:
    """Counts the Gluon launches recorded into CUDA graphs (calls made while the current stream is capturing), per
    launching function of :data:`GLUON_LAUNCHES`: the evidence of which form a captured case really runs."""

    def __init__(self) -> None:
        import importlib

        self.n: dict[str, int] = {}
        for (mod_name, fn_name), label in GLUON_LAUNCHES.items():
            mod = importlib.import_module(mod_name)
            fn = getattr(mod, fn_name)
            if getattr(fn, "_bench_counted", False):
                fn = fn._bench_inner
            self.n[label] = 0

            def counted(*a, _fn=fn, _label=label, **kw):
                if torch.cuda.is_current_stream_capturing():
                    self.n[_label] += 1
                return _fn(*a, **kw)

            counted._bench_counted = True  # type: ignore[attr-defined]
            counted._bench_inner = fn  # type: ignore[attr-defined]
            setattr(mod, fn_name, counted)

    def snapshot(self) -> dict[str, int]:
        return dict(self.n)

    def route(self, before: dict[str, int], calls: int) -> str:
        """The captured route of one case since ``before``: 'gluon contig 2/2' style, 'tl' when no Gluon launch
        was captured, 'mixed ...' otherwise (the list form may call the walk's launcher: the list label wins)."""
        got = {k: v - before.get(k, 0) for k, v in self.n.items() if v - before.get(k, 0)}
        if not got:
            return "tl"
        for label in ("gluon contig", "gluon list", "gluon walk"):
            if got.get(label) == calls and sum(got.values()) in (calls, 2 * calls):
                return f"{label} {calls}/{calls} captured"
        return "mixed " + ", ".join(f"{k} {v}/{calls}" for k, v in got.items())


def capture(fn, sets: list[tuple]):
    """CUDA graph of one ``fn`` call per input set (warm-up on a side stream first); returns (graph, calls)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for st in sets:
            fn(*st)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for st in sets:
            fn(*st)
    torch.cuda.synchronize()
    return g, len(sets)


#: seconds between two NVML SM-clock reads while a case's replays run (``--clock-poll-ms``; default 1 ms, the
#: form of runs 11-15).  A longer interval reads the clock once at the start of the replays and then every
#: interval: fewer driver calls from the host while the GPU is timed (session 15, K8: kernels/NOTES.md)
CLOCK_POLL_S = 0.001


def replay_ms(g, calls: int, reps: int, clock: NvmlClock | None = None, mhz: list[int] | None = None,
              meter: Any = None) -> float:
    """Mean ms per call over ``reps`` back-to-back replays (CUDA events); with ``clock``, the SM clock is polled
    (every :data:`CLOCK_POLL_S`, into ``mhz``) until the replays finish: the clock while this case runs; with
    ``meter`` (``fgsim.validation.sm_clock.ClockMeter``) a probe right before and right after the replays on the same
    stream: the clock the SMs ran at (the ``sm_mhz_eff`` column)."""
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    if meter is not None:
        meter.before()
    a.record()
    for _ in range(reps):
        g.replay()
    b.record()
    if meter is not None:
        meter.after()
    if clock is not None and mhz is not None:
        if CLOCK_POLL_S > 0.001:  # one read at the start of the replays, then every CLOCK_POLL_S
            v = clock.sm_mhz()
            if v:
                mhz.append(v)
        while not b.query():
            if CLOCK_POLL_S > 0.001:
                time.sleep(CLOCK_POLL_S)
                if b.query():
                    break
            v = clock.sm_mhz()
            if v:
                mhz.append(v)
            if CLOCK_POLL_S <= 0.001:
                time.sleep(0.001)
    torch.cuda.synchronize()
    return a.elapsed_time(b) / (reps * calls)


def timed_rounds(cases: list[dict[str, Any]], sets: list[tuple], rounds: int, target_ms: float,
                 shuffle_seed: int | None = None, clock: NvmlClock | None = None,
                 launches: CaptureLaunches | None = None) -> None:
    """Capture every case, then ``rounds`` interleaved rounds (the cases in list order each round, or in a fresh
    random order per round with ``shuffle_seed``); fills case['ms'] (per-round list, round r at index r) and
    case['reps']; with ``clock`` case['mhz'] (SM clock samples during the case's replays, all rounds); with
    ``launches`` case['route'] (the Gluon launches recorded into its graph); case['sm_mhz_eff'] (MHz, the SMs' own
    clock over the case's timed replays, :func:`eff_meter`; '' without a probe)."""
    for c in cases:
        c["mhz"] = []
        c["meter"] = eff_meter()
        try:
            before = launches.snapshot() if launches is not None else {}
            c["graph"], c["calls"] = capture(c["fn"], sets)
            if launches is not None:
                c["route"] = launches.route(before, c["calls"])
            est = replay_ms(c["graph"], c["calls"], 1) * c["calls"]  # ms per replay
            c["reps"] = max(1, min(50, math.ceil(target_ms / max(est, 1e-3))))
            # untimed replays before each timed one: >= 30 ms of this kernel, so the SM clock settles to
            # its own steady state (the clock drops under cuDNN and takes a while to come back)
            c["warm"] = 0 if est >= 30 else min(20, math.ceil(30 / max(est, 1e-3)))
            c["ms"] = []
        except Exception as e:  # noqa: BLE001
            print(f"[final] capture failed for {c['kernel']} {c.get('pattern')} {c.get('dt')}: {e!r}"[:400], flush=True)
            c["route"] = "eager (capture failed)"
            c["graph"] = None
            c["ms"] = []
            c["reps"] = "do_bench"
            torch.cuda.synchronize()
    rng = random.Random(shuffle_seed)
    for _ in range(rounds):
        order = list(cases)
        if shuffle_seed is not None:
            rng.shuffle(order)
        for c in order:
            if c["graph"] is not None:
                for _ in range(c["warm"]):
                    c["graph"].replay()
                more = {"meter": c["meter"]} if c["meter"] is not None else {}  # no probe: the older call
                c["ms"].append(replay_ms(c["graph"], c["calls"], c["reps"], clock, c["mhz"], **more))
            else:  # not capturable: plain event timing of eager calls (marked in the reps column)
                try:
                    c["ms"].append(bench(c["fn"], sets, warmup=5, rep=max(20, int(target_ms))))
                except Exception as e:  # noqa: BLE001
                    print(f"[final] {c['kernel']} failed: {e!r}"[:300], flush=True)
    for c in cases:
        c.pop("graph", None)
        meter = c.pop("meter", None)
        c["sm_mhz_eff"] = format_mhz(meter.mhz()) if meter is not None else ""
    torch.cuda.synchronize()


_METER_NOTE: list[str] = []


def eff_meter() -> Any:
    """A ``ClockMeter`` (probes around a case's timed replays: the effective SM clock, session 15 M6), or None where
    the probe cannot run (one note; the column stays empty)."""
    try:
        return ClockMeter()
    except Exception as e:  # noqa: BLE001 - no probe: the benchmark goes on without the column
        if not _METER_NOTE:
            _METER_NOTE.append(str(e))
            print(f"[final] sm_mhz_eff not recorded: {e}"[:300], flush=True)
        return None


#: ``--fg-extra LABEL=TABLE``: label -> that table's fg h200 D128 M128 g1 entry, timed as ``fg_attention_LABEL`` beside
#: the current entry in the same rounds (``--bench-only fg128``; e.g. the current table again as a control)
FG_EXTRA: dict[str, launch.LaunchConfig] = {}
#: ``--fg-extra LABEL=TABLE`` with ``--bench-only gran``: label -> TABLE path, whose fg h200 D128 M128 gran-16 / 64
#: entries are timed as ``fg_attention_LABEL`` beside the packaged ones in the same rounds (session 17, K)
FG_EXTRA_TABLES: dict[str, str] = {}
#: gran_n values ``--bench-only gran`` times (fg D128 M128)
GRAN_BENCH = (16, 64)
#: ``--contig-extra LABEL=TABLE``: label -> TABLE's (dense, block) h200 D128 M128 entries, timed as ``fg_dense_LABEL`` /
#: ``fg_block128_LABEL`` in the same rounds as the table's own (``--bench-only contig``)
CONTIG_EXTRA: dict[str, tuple[launch.LaunchConfig, launch.LaunchConfig]] = {}
#: (kernel, D, M, gran_n) -> the pre-tune entry, when the tune changed it (run next to the new one, for the record)
PREVIOUS: dict[tuple[str, int, int, int], launch.LaunchConfig] = {}
PREVIOUS_KEYS = (("fg", "h200", 128, 128, 1), ("fg", "h200", 128, 128, 16), ("fg", "h200", 128, 128, 64),
                 ("fg", "h200", 128, 64, 1), ("fg", "h200", 128, 64, 16), ("fg", "h200", 128, 64, 64),
                 ("block", "h200", 128, 128, 128), ("dense", "h200", 128, 128, 1), ("dense", "h200", 128, 64, 1),
                 ("dense", "h200", 64, 128, 1))

FINAL_COLS = ["shape", "kernel", "pattern", "density_target", "density", "H", "N", "n_text", "D", "M", "gran_n",
              "ms", "ms_min", "ms_max", "ms_q1", "ms_q3", "rounds", "reps", "eff_tflops", "ratio_vs_cudnn", "ratio_min", "ratio_max",
              "speedup_vs_cudnn", "config", "clocks_under_load", "timing", "statistic",
              "route", "sm_mhz", "sm_mhz_min", "sm_mhz_max", "sm_mhz_n", "sm_mhz_eff", "ms_rounds"]


def quartiles(xs: list[float]) -> tuple[float, float]:
    """First and third quartiles of sorted ``xs`` (linear interpolation, numpy's default)."""
    if not xs:
        raise ValueError("quartiles: no values")

    def at(p: float) -> float:
        x = p * (len(xs) - 1)
        i = int(x)
        return xs[i] if i + 1 >= len(xs) else xs[i] + (x - i) * (xs[i + 1] - xs[i])

    return at(0.25), at(0.75)


#: densities at which ``--contig-variants`` times the contig (216/64) form beside the entry's (every D128 shape has them)
CONTIG_VARIANT_DENSITIES = (0.02, 0.1, 0.5)


def contig_variant(cfg: launch.LaunchConfig) -> launch.LaunchConfig | None:
    """The entry ``cfg`` as helper D's form ``contig`` (regs [216, 64], no ping-pong, the entry's pipeline) when it
    is an ``impl: gluon`` contig entry with other knobs, else None (``--contig-variants``)."""
    g = cfg.extra.get("gluon", {}) if cfg.impl == "gluon" else {}
    if g.get("form") != "contig":
        return None
    knobs = {**g, "regs": [216, 64], "pingpong": False}
    if knobs == g:
        return None
    return dataclasses.replace(cfg, extra={**cfg.extra, "gluon": knobs}, source="--contig-variants: regs 216/64")


def final_shape(writer, meta, clocks: ClockSampler, *, h: int, n_video: int, n_text: int, d: int, densities,
                m64: tuple = (), grans: tuple = (), with_flex: bool = False, with_previous: bool = False, rounds: int = 3,
                target_ms: float = 20.0, pattern: str = "window",
                shuffle_seed: int | None = None, contig_variants: bool = False, cell_clock: NvmlClock | None = None,
                launches: CaptureLaunches | None = None, only_fg: bool = False,
                only_contig: bool = False, only_gran: bool = False) -> list[dict[str, Any]]:
    """Interleaved graph-timed rounds at one shape: cuDNN, fg_dense, then per density fg (M=128, g=1),
    block128 and Flex BlockMask, plus fg at M=64 (densities ``m64``) and gran_n 16/64 (``grans``); with
    ``shuffle_seed`` the cases run in a fresh random order every round.  A changed dense / block entry runs its
    previous one beside it (``*_previous``, every density); ``contig_variants`` adds the contig (216/64) form of a
    contig entry (``*_contig216``, :data:`CONTIG_VARIANT_DENSITIES`).  Every row records its captured route
    (:class:`CaptureLaunches`) and, with ``cell_clock``, the SM clock sampled during its own replays.
    ``only_fg``: cuDNN and the fg M128 gran-1 rows alone (``fg_attention`` and, where that entry changed,
    ``fg_attention_previous`` at every density; ``--bench-only fg128``).  ``only_contig``: cuDNN, the dense and the
    block D128 M128 entries and each :data:`CONTIG_EXTRA` table's (``--bench-only contig``; no fg, Flex, M64 rows).
    ``only_gran``: cuDNN and the fg M128 gran-16 / 64 entries at every density (``fg_attention``) and each
    :data:`FG_EXTRA_TABLES` table's gran-16 / 64 entries (``fg_attention_LABEL``) on the same index (``--bench-only
    gran``)."""
    from fgattn.masks import with_text

    n = n_video + n_text
    t_start = time.time()
    # inputs are 5-50x the 60 MB L2: one set at the large shapes, two rotated ones otherwise
    sets = make_qkv(1, h, n, d, 1 if h * n * d * 6 > 1e9 else 2)
    out_buf = torch.empty_like(sets[0][0])
    cases: list[dict[str, Any]] = []

    def add(kernel, fn, dt=1.0, dens=1.0, m=128, g=1, cfg="", pat="dense"):
        cases.append(dict(kernel=kernel, fn=fn, dt=dt, dens=dens, M=m, gran=g, cfg=cfg, pattern=pat))

    add("sdpa_cudnn", sdpa("cudnn"))
    dcfg = resolve_config("dense", sets[0][0], 128)
    if not only_fg and not only_gran:
        add("fg_dense", lambda q, k, v: fgattn.dense_attention(q, k, v, config=dcfg, out=out_buf), cfg=cfg_str(dcfg))
    for label, (xd, _) in CONTIG_EXTRA.items() if only_contig and d == 128 else ():
        add(f"fg_dense_{label}", lambda q, k, v, xd=xd: fgattn.dense_attention(q, k, v, config=xd, out=out_buf),
            cfg=cfg_str(xd))
    if ("dense", d, 128, 1) in PREVIOUS and not only_fg:
        pdcfg = PREVIOUS[("dense", d, 128, 1)]
        add("fg_dense_previous", lambda q, k, v: fgattn.dense_attention(q, k, v, config=pdcfg, out=out_buf),
            cfg=cfg_str(pdcfg))
    vdcfg = contig_variant(dcfg) if contig_variants and not only_fg else None
    if vdcfg is not None:
        add("fg_dense_contig216", lambda q, k, v: fgattn.dense_attention(q, k, v, config=vdcfg, out=out_buf),
            cfg=cfg_str(vdcfg))
    fcfg = resolve_config("fg", sets[0][0], 128, 1)
    bcfg = resolve_config("block", sets[0][0], 128)
    vbcfg = contig_variant(bcfg) if contig_variants and not only_fg else None

    def video_mask(m: int, dt_: float) -> torch.Tensor:
        torch.manual_seed(int(dt_ * 1000) + 7)
        if pattern == "random":
            mv = random_mask(1, h, n_video, m, dt_)
        else:
            mv = window_mask(1, h, n_video, m, dt_)
        return with_text(mv, n_text, m) if n_text else mv

    for dt_ in densities:
        mask = video_mask(128, dt_)
        if only_gran:  # the gran-16 / 64 entries and the --fg-extra tables' ones on the same index
            for g in GRAN_BENCH if d == 128 else ():
                gidx = fgattn.build_index(mask, block_m=128, gran_n=g, order=True)
                gcfgs = [("fg_attention", resolve_config("fg", sets[0][0], 128, g))] + [
                    (f"fg_attention_{label}", launch.launch_config("fg", "h200", 128, 128, g, table_path=path))
                    for label, path in FG_EXTRA_TABLES.items()]
                for kern, gcfg in gcfgs:
                    add(kern, lambda q, k, v, gidx=gidx, g=g, gcfg=gcfg: fgattn.fg_attention(
                        q, k, v, gidx, block_m=128, gran_n=g, config=gcfg, out=out_buf),
                        dt_, gidx.density(n), 128, g, cfg_str(gcfg), pattern)
            del mask
            continue
        if only_contig:  # the block entry and the --contig-extra tables' block entries alone
            tiles = torch.nn.functional.pad(mask, (0, (-n) % 128)).reshape(1, h, mask.shape[2], -1, 128).any(-1)
            bidx = fgattn.block_index_from_mask(tiles, block_m=128, n_keys=n, order=True)
            for label, xb in [("", bcfg)] + [(f"_{lb}", xb) for lb, (_, xb) in CONTIG_EXTRA.items() if d == 128]:
                add(f"fg_block128{label}", lambda q, k, v, bidx=bidx, xb=xb: fgattn.block_sparse_attention(
                    q, k, v, bidx, config=xb, out=out_buf), dt_, bidx.density(n), 128, 128, cfg_str(xb), pattern)
            del mask, tiles
            continue
        idx = fgattn.build_index(mask, block_m=128, order=True)
        add("fg_attention", lambda q, k, v, idx=idx: fgattn.fg_attention(q, k, v, idx, block_m=128, config=fcfg,
                                                                         out=out_buf),
            dt_, idx.density(n), 128, 1, cfg_str(fcfg), pattern)
        if only_fg:
            if ("fg", d, 128, 1) in PREVIOUS:
                pcfg = PREVIOUS[("fg", d, 128, 1)]
                add("fg_attention_previous", lambda q, k, v, idx=idx, pcfg=pcfg: fgattn.fg_attention(
                    q, k, v, idx, block_m=128, config=pcfg, out=out_buf), dt_, idx.density(n), 128, 1, cfg_str(pcfg),
                    pattern)
            for label, xcfg in FG_EXTRA.items() if d == 128 else ():  # --fg-extra: more fg entries, same rounds
                add(f"fg_attention_{label}", lambda q, k, v, idx=idx, xcfg=xcfg: fgattn.fg_attention(
                    q, k, v, idx, block_m=128, config=xcfg, out=out_buf), dt_, idx.density(n), 128, 1, cfg_str(xcfg),
                    pattern)
            del mask
            continue
        tiles = torch.nn.functional.pad(mask, (0, (-n) % 128)).reshape(1, h, mask.shape[2], -1, 128).any(-1)
        bidx = fgattn.block_index_from_mask(tiles, block_m=128, n_keys=n, order=True)
        add("fg_block128", lambda q, k, v, bidx=bidx: fgattn.block_sparse_attention(q, k, v, bidx, config=bcfg,
                                                                                    out=out_buf),
            dt_, bidx.density(n), 128, 128, cfg_str(bcfg), pattern)
        if with_flex:
            bm = flex_block_mask(tiles, n)
            add("flex_block128", lambda q, k, v, bm=bm: flex()(q, k, v, block_mask=bm), dt_, bidx.density(n), 128,
                128, "torch.compile(flex_attention) BlockMask 128x128, all kept blocks full", pattern)
        if ("fg", d, 128, 1) in PREVIOUS and with_previous:
            pcfg = PREVIOUS[("fg", d, 128, 1)]
            add("fg_attention_previous", lambda q, k, v, idx=idx, pcfg=pcfg: fgattn.fg_attention(
                q, k, v, idx, block_m=128, config=pcfg, out=out_buf), dt_, idx.density(n), 128, 1, cfg_str(pcfg),
                pattern)
        if ("block", d, 128, 128) in PREVIOUS:  # the block entry changed: its previous one at every density
            pbcfg = PREVIOUS[("block", d, 128, 128)]
            add("fg_block128_previous", lambda q, k, v, bidx=bidx, pbcfg=pbcfg: fgattn.block_sparse_attention(
                q, k, v, bidx, config=pbcfg, out=out_buf), dt_, bidx.density(n), 128, 128, cfg_str(pbcfg), pattern)
        if vbcfg is not None and dt_ in CONTIG_VARIANT_DENSITIES:
            add("fg_block128_contig216", lambda q, k, v, bidx=bidx: fgattn.block_sparse_attention(
                q, k, v, bidx, config=vbcfg, out=out_buf), dt_, bidx.density(n), 128, 128, cfg_str(vbcfg), pattern)
        if dt_ in grans:
            for g in (16, 64):
                gidx = fgattn.build_index(mask, block_m=128, gran_n=g, order=True)
                gcfg = resolve_config("fg", sets[0][0], 128, g)
                add("fg_attention", lambda q, k, v, gidx=gidx, g=g, gcfg=gcfg: fgattn.fg_attention(
                    q, k, v, gidx, block_m=128, gran_n=g, config=gcfg, out=out_buf),
                    dt_, gidx.density(n), 128, g, cfg_str(gcfg), pattern)
                if ("fg", d, 128, g) in PREVIOUS:
                    pg = PREVIOUS[("fg", d, 128, g)]
                    add("fg_attention_previous", lambda q, k, v, gidx=gidx, g=g, pg=pg: fgattn.fg_attention(
                        q, k, v, gidx, block_m=128, gran_n=g, config=pg, out=out_buf),
                        dt_, gidx.density(n), 128, g, cfg_str(pg), pattern)
        if n_text and dt_ in (0.1,):  # the plain head-major LPT order, for the record
            from fgattn.index import _order

            pidx = dataclasses.replace(idx, order=_order(idx.offsets, idx.n_qblocks, promote=False))
            add("fg_attention_headmajor_lpt", lambda q, k, v, pidx=pidx: fgattn.fg_attention(
                q, k, v, pidx, block_m=128, config=fcfg, out=out_buf), dt_, idx.density(n), 128, 1, cfg_str(fcfg),
                pattern)
        del mask, tiles
    if m64 and not only_fg and not only_contig and not only_gran:
        dcfg64 = resolve_config("dense", sets[0][0], 64)
        add("fg_dense", lambda q, k, v: fgattn.dense_attention(q, k, v, block_m=64, config=dcfg64, out=out_buf),
            m=64, cfg=cfg_str(dcfg64))
        if ("dense", d, 64, 1) in PREVIOUS:
            pd64 = PREVIOUS[("dense", d, 64, 1)]
            add("fg_dense_previous", lambda q, k, v: fgattn.dense_attention(q, k, v, block_m=64, config=pd64,
                                                                            out=out_buf), m=64, cfg=cfg_str(pd64))
        fcfg64 = resolve_config("fg", sets[0][0], 64, 1)
        for dt_ in m64:
            mask64 = video_mask(64, dt_)
            idx = fgattn.build_index(mask64, block_m=64, order=True)
            add("fg_attention", lambda q, k, v, idx=idx: fgattn.fg_attention(q, k, v, idx, block_m=64, config=fcfg64,
                                                                             out=out_buf),
                dt_, idx.density(n), 64, 1, cfg_str(fcfg64), pattern)
            if ("fg", d, 64, 1) in PREVIOUS:
                p64 = PREVIOUS[("fg", d, 64, 1)]
                add("fg_attention_previous", lambda q, k, v, idx=idx, p64=p64: fgattn.fg_attention(
                    q, k, v, idx, block_m=64, config=p64, out=out_buf), dt_, idx.density(n), 64, 1, cfg_str(p64),
                    pattern)
            # M=64 gran 16/64 only where the tune changed the entry: the new one and the previous one side by side
            for g in (16, 64) if dt_ in grans else ():
                if ("fg", d, 64, g) not in PREVIOUS:
                    continue
                gidx = fgattn.build_index(mask64, block_m=64, gran_n=g, order=True)
                for kern, gcfg in (("fg_attention", resolve_config("fg", sets[0][0], 64, g)),
                                   ("fg_attention_previous", PREVIOUS[("fg", d, 64, g)])):
                    add(kern, lambda q, k, v, gidx=gidx, g=g, gcfg=gcfg: fgattn.fg_attention(
                        q, k, v, gidx, block_m=64, gran_n=g, config=gcfg, out=out_buf),
                        dt_, gidx.density(n), 64, g, cfg_str(gcfg), pattern)
            del mask64
    torch.cuda.empty_cache()
    t0 = time.time()
    timed_rounds(cases, sets, rounds, target_ms, shuffle_seed=shuffle_seed, clock=cell_clock, launches=launches)
    clk = clocks.window(t0, time.time())
    base = next(c for c in cases if c["kernel"] == "sdpa_cudnn")
    shape = f"H{h} N{n_video}" + (f"+{n_text}text" if n_text else "") + f" D{d}"
    rows = []
    for c in cases:
        if not c.get("ms"):
            continue
        ms = sorted(c["ms"])
        ratios = sorted(c["dens"] * b / t for b, t in zip(base["ms"], c["ms"], strict=True))
        med = ms[len(ms) // 2]
        q1, q3 = quartiles(ms)
        r = dict(shape=shape, kernel=c["kernel"], pattern=c["pattern"], density_target=c["dt"],
                 density=round(c["dens"], 5), H=h, N=n, n_text=n_text, D=d, M=c["M"], gran_n=c["gran"],
                 ms=round(med, 4), ms_min=round(ms[0], 4), ms_max=round(ms[-1], 4), ms_q1=round(q1, 4),
                 ms_q3=round(q3, 4), rounds=len(ms), reps=c["reps"],
                 eff_tflops=round(4 * h * n * n * d * c["dens"] / med / 1e9, 1),
                 ratio_vs_cudnn=round(ratios[len(ratios) // 2], 4), ratio_min=round(ratios[0], 4),
                 ratio_max=round(ratios[-1], 4),
                 speedup_vs_cudnn=round(sorted(b / t for b, t in zip(base["ms"], c["ms"], strict=True))[len(ms) // 2], 4),
                 config=c["cfg"], clocks_under_load=clk,
                 timing=(f"CUDA graph ({len(sets)} rotated input set(s)), {len(ms)} interleaved rounds"
                         + (f" in a fresh random order per round (seed {shuffle_seed})" if shuffle_seed is not None
                            else "")
                         + f" x {c['reps']} timed replays after {c.get('warm', 0)} untimed (>= 30 ms), events"
                         + (f"; NVML SM clock read every {CLOCK_POLL_S * 1000:g} ms" if CLOCK_POLL_S > 0.001
                            else "")),
                 statistic="median over rounds (min, max; ms_q1/ms_q3 quartiles); ratio = density * t_cuDNN / t "
                           "per round",
                 route=c.get("route", ""), ms_rounds=";".join(f"{x:.4f}" for x in c["ms"]),
                 sm_mhz_eff=c.get("sm_mhz_eff", ""))
        mhz = sorted(c.get("mhz", []))
        if mhz:  # the SM clock NVML read while this case's replays ran (all rounds): median, min, max, samples
            r.update(sm_mhz=mhz[len(mhz) // 2], sm_mhz_min=mhz[0], sm_mhz_max=mhz[-1], sm_mhz_n=len(mhz))
        if c["cfg"] and c["kernel"] not in ("sdpa_cudnn", "flex_block128") and '"impl": "gluon"' in c["cfg"] \
                and not r["route"].startswith("gluon"):
            print(f"[final] ROUTE: {c['kernel']} d={c['dt']} has a Gluon entry but its graph captured {r['route']!r}",
                  flush=True)
        rows.append(r)
        writer.writerow({**r, **meta})
        print(f"[final] {shape:<22} {c['kernel']:<26} M{c['M']:<3} g{c['gran']:<3} d={c['dt']:<5} act={c['dens']:.3f} "
              f"{med:9.3f} ms  x{r['ratio_vs_cudnn']:.3f} ({r['ratio_min']:.3f}-{r['ratio_max']:.3f}) "
              f"{r.get('sm_mhz', '')} MHz (SMs {r['sm_mhz_eff'] or '-'}) {r['route']}", flush=True)
    print(f"[final] {shape} done in {time.time() - t_start:.1f}s; clocks {clk}", flush=True)
    cases.clear()
    torch.cuda.empty_cache()
    return rows


def candidates_v3() -> list[dict[str, Any]]:
    """Issue-12 sweep, session 3: per key the current table entry first (the reference), then the persistent
    kernel (``persistent``, ``programs_per_sm``) at the configurations that compile without large spills and
    fit the SM (``kernels/tools/compile_report.py``, Triton 3.6 sm_90: registers, stack, shared memory)."""
    c = _Candidates()
    add, ref = c.add, c.ref

    fl = dict(overlap=False, lpt=True, persistent=True, flatten=True)  # one flat (row, tile) loop
    ne = dict(overlap=False, lpt=True, persistent=True, flatten=False)  # row loop around the tile loop
    ref("fg", 128, 128, 1)
    for bn, st in [(128, 3), (128, 2), (64, 3), (64, 4)]:  # 224/160/128/160 KB, no spill
        add("fg", 128, 128, 1, bn, st, 8, programs_per_sm=1, **fl)
    for bn, st in [(128, 3), (128, 2), (64, 3)]:
        add("fg", 128, 128, 1, bn, st, 8, programs_per_sm=1, **ne)
    add("fg", 128, 128, 1, 64, 2, 8, programs_per_sm=2, maxnreg=128, **fl)  # 96 KB, 136 B stack
    ref("fg", 128, 128, 16)
    add("fg", 128, 128, 16, 128, 3, 8, programs_per_sm=1, **fl)
    add("fg", 128, 128, 16, 128, 3, 8, programs_per_sm=1, **ne)
    ref("fg", 128, 128, 64)
    add("fg", 128, 128, 64, 128, 3, 8, programs_per_sm=1, **fl)
    add("fg", 128, 128, 64, 128, 3, 8, programs_per_sm=1, **ne)
    add("fg", 128, 128, 64, 64, 2, 8, programs_per_sm=2, maxnreg=128, **fl)  # 96 KB, 128 B stack
    ref("fg", 128, 64, 1)
    add("fg", 128, 64, 1, 64, 3, 4, programs_per_sm=1, **fl)  # 112 KB, 246 regs x 128 threads
    add("fg", 128, 64, 1, 64, 3, 4, programs_per_sm=2, **fl)  # 2 x 112 KB, 2 x 31.5 K regs: fits
    add("fg", 128, 64, 1, 64, 3, 4, programs_per_sm=2, **ne)  # 210 regs
    add("fg", 128, 64, 1, 64, 5, 4, programs_per_sm=1, **ne)  # 176 KB
    add("fg", 128, 64, 1, 64, 2, 4, programs_per_sm=2, maxnreg=168, **fl)  # 80 KB, 32 B stack
    ref("fg", 64, 128, 1)
    add("fg", 64, 128, 1, 64, 4, 8, programs_per_sm=1, **fl)  # 80 KB, 172 regs
    add("fg", 64, 128, 1, 128, 3, 8, programs_per_sm=1, **fl)  # 112 KB, 239 regs
    ref("block", 128, 128, 128)
    add("block", 128, 128, 128, 128, 3, 8, programs_per_sm=1, **fl)  # 224 KB, 254 regs
    add("block", 128, 128, 128, 128, 3, 8, programs_per_sm=1, **ne)
    add("block", 128, 128, 128, 64, 2, 8, programs_per_sm=2, maxnreg=128, **fl)  # 96 KB, 120 B stack
    ref("dense", 128, 128, 1)
    add("dense", 128, 128, 1, 128, 3, 8, programs_per_sm=1, **fl)  # 224 KB, 228 regs
    add("dense", 128, 128, 1, 128, 3, 8, programs_per_sm=1, **ne)
    return c


def candidates_v4() -> list[dict[str, Any]]:
    """Issue-12 sweep, session 4: per key the current table entry first (the reference), then the nested
    persistent kernel taking rows from the work queue (``queue``) and, for the non-persistent fg entries, Q by a
    host TMA descriptor (``tma_q``); configurations that compile without spills and fit the SM
    (``kernels/tools/compile_report.py``, Triton 3.6 sm_90)."""
    c = _Candidates()
    add, ref = c.add, c.ref

    q = dict(overlap=False, lpt=True, persistent=True, flatten=False, queue=True)
    for g in (1, 16, 64):  # 254 / 239 / 238 regs, 224.5 KB
        ref("fg", 128, 128, g)
        add("fg", 128, 128, g, 128, 3, 8, programs_per_sm=1, **q)
        ref("fg", 128, 128, g, tma_q=True)  # 242 / 234 regs, no stack; g64: 128 regs, 32 B stack
    ref("fg", 128, 64, 1)
    add("fg", 128, 64, 1, 64, 3, 4, programs_per_sm=2, **q)  # 208 regs x 128 threads, 112 KB: two per SM
    add("fg", 128, 64, 1, 64, 5, 4, programs_per_sm=1, **q)  # 176 KB
    ref("fg", 128, 64, 1, tma_qo=False, tma_q=True)  # 178 regs, 112.5 KB
    ref("fg", 64, 128, 1)
    add("fg", 64, 128, 1, 64, 4, 8, programs_per_sm=1, **q)  # 164 regs, 80 KB
    add("fg", 64, 128, 1, 128, 3, 8, programs_per_sm=1, **q)  # 232 regs, 112.5 KB
    ref("block", 128, 128, 128)
    add("block", 128, 128, 128, 128, 3, 8, programs_per_sm=1, **q)  # 255 regs, 224 KB
    return c


def candidates_v5() -> list[dict[str, Any]]:
    """Issue-12 sweep, session 4, call 2: per key the current entry (the reference), then the forms that won at
    low density in call 1 (validation/results/kernels-h200-2026-11-30-queue.csv): ``tail_reuse``, ``tma_q``, the
    work-queue persistent kernel (since call 1: key clamping instead of per-tile masks, and the tail tile peeled
    out of the pipelined loop), on the three shapes of
    :data:`SWEEP_SHAPES_V5`; picked only if no problem is slower than ``--max-rel`` × the reference."""
    c = _Candidates()
    add, ref = c.add, c.ref

    q = dict(overlap=False, lpt=True, persistent=True, flatten=False, queue=True)
    for g in (1, 16, 64):
        ref("fg", 128, 128, g)
        ref("fg", 128, 128, g, tail_reuse=True)
        ref("fg", 128, 128, g, tma_q=True)
        if g < 64:
            add("fg", 128, 128, g, 128, 3, 8, programs_per_sm=1, **q)
    ref("fg", 128, 64, 1)
    ref("fg", 128, 64, 1, tma_qo=False, tma_q=True)
    add("fg", 128, 64, 1, 64, 3, 4, programs_per_sm=2, **q)  # 190 regs x 128 threads, 112 KB: two per SM
    return c


def candidates_v6() -> list[dict[str, Any]]:
    """Issue-12 sweep, session 5: per key the current entry (the reference), then the one-row form (launch option
    ``one_row``: one program per row running the nested persistent form's row code, ``idx_early``; measured at
    0.905-1.005 of the fg M128 g1 entry in validation/results/kernels-h200-2026-11-30-idx-early*.csv), with and
    without Q by a host TMA descriptor (``tma_q``), for fg D128 M128/M64 gran 1/16/64 and block D128 M128; on the
    shapes of :data:`SWEEP_SHAPES_V5`; picked only if no problem is slower than ``--max-rel`` x the reference.
    One control (``control``: timed, never picked): the session-18 measurement's form, the persistent nested
    kernel with 2^20 programs per SM (one row per program through the static round-robin).  In run 5 (commit
    0286389) ``one_row`` compiled a specialisation without the other rows' state (``ONE_ROW``, since removed):
    +10 % per tile; since then ``one_row`` compiles exactly the control's kernel (kernels/NOTES.md, session 5)."""
    c = _Candidates()
    add, ref = c.add, c.ref

    o = dict(overlap=False, lpt=True, one_row=True, idx_early=True)
    for g in (1, 16, 64):  # one_row bn128 st3 w8: 225 / 218 / 223 regs, no stack, 224 KB; tma_q: 213 regs
        ref("fg", 128, 128, g)
        add("fg", 128, 128, g, 128, 3, 8, **o)
        add("fg", 128, 128, g, 128, 3, 8, tma_q=True, **o)
    add("fg", 128, 128, 1, 128, 3, 8, control=True, overlap=False, lpt=True, persistent=True, flatten=False,
        programs_per_sm=1 << 20, idx_early=True)  # 255 regs, 32 B stack
    for g in (1, 16, 64):  # one_row bn64 st3 w4: 112 KB, two per SM (174 regs; tma_q 147-155)
        ref("fg", 128, 64, g)
        if g == 1:
            add("fg", 128, 64, g, 64, 3, 4, **o)
        add("fg", 128, 64, g, 64, 3, 4, tma_q=True, **o)
    ref("block", 128, 128, 128)
    add("block", 128, 128, 128, 128, 3, 8, **o)  # 218 regs, 224 KB (pointer loads; the entry: TMA, two per SM)
    return c


def candidates_v7() -> list[dict[str, Any]]:
    """Issue-12 sweep prepared in session 5 (not run yet): the forms ptxas no longer serialises (offline Triton 3.6
    sm_90, ``compile_report.py`` ``wgmma_serialized``): dense with ``tail_branch`` next to each dense entry, and
    ``one_row`` (the nested kernel, one program per row) for the fg keys whose run-5 one_row candidates were the
    serialised ``ONE_ROW`` specialisation (fg D128 M128 g16/g64, M64 g1/g16/g64).  Session 6 added three
    pipelined dense forms (checked offline with ``compile_report.py``): bn128 st3 + tma_qo (D128 M128), bn128 st2
    w4 (D128 M64), bn128 st3 (D64)."""
    c = _Candidates()
    add, ref = c.add, c.ref

    tb = dict(tma=True, overlap=False, warp_specialize=False, tail_branch=True)
    ref("dense", 128, 128, 1)  # bn64 st2 maxnreg 128, two per SM: serialised with or without tail_branch
    for st in (3, 2):  # one per SM, not serialised with tail_branch: 199 / 204 regs, 224 / 160 KB
        add("dense", 128, 128, 1, 128, st, 8, **tb)
    add("dense", 128, 128, 1, 128, 3, 8, tma_qo=True, **tb)  # 187 regs, pipelined (session 6)
    for d, m in ((128, 64), (64, 128)):  # the entries, serialised; with tail_branch not (152 / 107 regs)
        ref("dense", d, m, 1)
        ref("dense", d, m, 1, tail_branch=True)
    add("dense", 128, 64, 1, 128, 2, 4, **tb)  # 224 regs, 144 KB, one per SM, pipelined (session 6)
    add("dense", 64, 128, 1, 128, 3, 8, **tb)  # 155 regs, 112 KB, one per SM, pipelined (session 6)
    o = dict(overlap=False, lpt=True, one_row=True, idx_early=True)
    for g in (16, 64):
        ref("fg", 128, 128, g)
        add("fg", 128, 128, g, 128, 3, 8, **o)
    for g in (1, 16, 64):
        ref("fg", 128, 64, g)
        add("fg", 128, 64, g, 64, 3, 4, **o)  # 213 regs, 112 KB: two per SM; loop 375 SASS instructions
    return c


def candidates_v8() -> list[dict[str, Any]]:
    """Prepared after run 6 (not run yet): the table entries ptxas still serialises (``compile_report.py --table``):
    dense D64 M64 (+ ``tail_branch``: pipelined, 108 regs), fg D128 M128 gran 64 (two per SM at maxnreg 128, which
    serialises; the pipelined one-per-SM forms of the gran-16 entry: bn128 st3 idx_ahead 1 + tma_q 201 regs, or +
    tail_reuse 255 regs) and block D128 M128 (two per SM at maxnreg 128; pipelined one-per-SM bn64 st3 tma 211 regs,
    bn128 st2 tma 206 regs; run 2 measured bn128 st3 tma at 1/0.887 of it)."""
    c = _Candidates()
    add, ref = c.add, c.ref

    ref("dense", 64, 64, 1)
    ref("dense", 64, 64, 1, tail_branch=True)
    ref("fg", 128, 128, 64)
    f = dict(overlap=False, lpt=True, idx_ahead=1)
    add("fg", 128, 128, 64, 128, 3, 8, tma_q=True, **f)
    add("fg", 128, 128, 64, 128, 3, 8, tail_reuse=True, **f)
    ref("block", 128, 128, 128)
    b = dict(tma=True, overlap=False, warp_specialize=False)
    add("block", 128, 128, 128, 64, 3, 8, **b)
    add("block", 128, 128, 128, 128, 2, 8, **b)
    return c


def candidates_v9() -> list[dict[str, Any]]:
    """Session 7: v8, plus the one-row form's per-row end for the one_row entries (fg D128 M128 g1, M64 g1/g16/g64):
    ``guard_next`` (the next-row Offsets / index / Q loads predicated off at run time: with one row per program
    they were dead loads of row 0, the 32 KB Q among them, still in flight when the program exits) and ``tma_o``
    (O by one bulk tensor store through a host-built descriptor instead of 8 STG.128 per thread, whose drain the
    exit waited for), and for gran 1 ``tail_fold`` (no masked tail tile: the last tile runs in the pipelined loop,
    its unused columns reading the row's last kept key, whose extra copies are subtracted after the loop).
    Offline (Triton 3.6 sm_90): all pipelined; M128 g1 guard 255 regs / 40 B stack, guard + tma_o 255 / 24 B
    (entry 255 / 32 B), tail_fold 231 / 0 (+ guard + tma_o 230 / 0), inner loop 539-546 SASS instructions (entry
    540); M64 g1 guard (+ tma_o) 193 regs, tail_fold 188, + guard + tma_o 180 (entry 213; inner loop 387-389 vs
    375), 112 KB, two per SM."""
    c = _Candidates(candidates_v8())
    ref = c.ref

    for m, g in ((128, 1), (64, 1), (64, 16), (64, 64)):
        ref("fg", 128, m, g)
        if m == 128:
            ref("fg", 128, m, g, guard_next=True)
        ref("fg", 128, m, g, guard_next=True, tma_o=True)
        if g == 1:
            ref("fg", 128, m, g, tail_fold=True)
            ref("fg", 128, m, g, tail_fold=True, guard_next=True, tma_o=True)
    return c


def candidates_v10() -> list[dict[str, Any]]:
    """Session 9: ``exp_poly`` (a fraction of the softmax's P = 2^x computed by a degree-3 FMA polynomial,
    Cody-Waite range reduction, instead of MUFU.EX2; the MUFU.EX2 issue queue held 5.6 % of the fg entry's loop
    stall samples) on the entries with the most MUFU per tile: fg D128 M128 g1 (entry, 1/8, 1/4, 1/2, and the
    folded-tail form + guard_next + tma_o with 1/4; ``tail_prefetch`` alone and with 1/4), fg D128 M64 g1 (entry, 1/4, 1/2), dense D128 M128 (entry,
    1/8, 1/4).  Offline (Triton 3.6 sm_90): all pipelined, registers as the entries (M128 g1 255, 32-40 B stack);
    loop SASS M128 g1 540 -> 598 / 655 / 766 instructions, MUFU.EX2 66 -> 58 / 50 / 34, static stall cycles
    1233 -> 1218 / 1156 / 1220; fold + 1/4 649 instructions, 1182 cycles (fold 537, 1226); tail_prefetch 544 /
    1241 (+ 1/4: 658 / 1235), 255 registers, 32 B stack."""
    c = _Candidates()
    ref = c.ref
    for f in (0, 0.125, 0.25, 0.5):
        ref("fg", 128, 128, 1, **({"exp_poly": f} if f else {}))
    ref("fg", 128, 128, 1, tail_fold=True, guard_next=True, tma_o=True, exp_poly=0.25)
    ref("fg", 128, 128, 1, tail_prefetch=True)
    ref("fg", 128, 128, 1, tail_prefetch=True, exp_poly=0.25)
    for f in (0, 0.25, 0.5):
        ref("fg", 128, 64, 1, **({"exp_poly": f} if f else {}))
    for f in (0, 0.125, 0.25):
        ref("dense", 128, 128, 1, **({"exp_poly": f} if f else {}))
    return c


#: Gluon knobs (``extra["gluon"]``) of the v11 candidates: form d (``ws2``: producer warpgroup + two consumer
#: warpgroups, persistent round-robin rows) with FA3's intra-warpgroup overlap, no consumer fence (helper G2's
#: measured winner ``gluon_ws2_pipe``) and pipeline 3 (its softmax pinned inside the overlap; offline only so far)
V11_GLUON = ({"form": "ws2", "pipeline": 1, "fence": False}, {"form": "ws2", "pipeline": 3, "fence": False})


def candidates_v11() -> list[dict[str, Any]]:
    """Session 10 (prepared in session 9 by helper K2): the launch table's implementation choice (``extra["impl"]``):
    the fg D128 M128 gran-1 entry first (the reference), then the same entry with ``impl: gluon`` and each of
    :data:`V11_GLUON` (``fgattn.gluon_fg``; the entry's tl options stay, for where the Gluon form cannot run).
    Measured by helper G2 (gluon_probe g3, 13 cells, 7 paired rounds): pipeline 1 = 0.80-0.996 of the entry's time
    (geometric mean 0.911; paired fit -2.46 us per row, -5.2 % per tile).  fg M128 gran 16 / 64, M64 and D64 have
    no Gluon form (gluon_fg implements D128 M128 gran 1 only): not in this list.  The reference is the entry's tl
    kernel (``tl_config()``: the entry itself before the session-11 adoption, its fallback after), so the list is
    the same before and after adopting a winner."""
    c = _Candidates()
    e = launch.launch_config("fg", "h200", 128, 128, 1).tl_config()
    c.add("fg", 128, 128, 1, e.block_n, e.num_stages, e.num_warps, **e.extra)
    for knobs in V11_GLUON:
        c.add("fg", 128, 128, 1, e.block_n, e.num_stages, e.num_warps, **{**e.extra, "impl": "gluon",
                                                                         "gluon": dict(knobs)})
    return c


#: (H, N video, text tokens, window densities) of the v5 sweep: 480p, 480p + text, 720p H40
SWEEP_SHAPES_V5 = ((12, 32760, 0, (0.02, 0.1, 0.5)), (12, 32760, 512, (0.02, 0.1, 0.5)), (40, 75600, 0, (0.02, 0.1)))


#: ``--candidates`` name -> candidate list
CANDIDATE_SETS = {"v3": candidates_v3, "v4": candidates_v4, "v5": candidates_v5, "v6": candidates_v6,
                  "v7": candidates_v7, "v8": candidates_v8, "v9": candidates_v9, "v10": candidates_v10,
                  "v11": candidates_v11}


def tune_v3(args, meta: dict[str, str], out_dir: Path) -> str:
    """Compile+check the sweep in worker processes, time the survivors with graph timing in interleaved
    rounds on Wan 480p problems, write the winners to the launch table.  Returns the tune CSV name."""
    from fgattn.masks import with_text

    cands = CANDIDATE_SETS[args.candidates]()
    v5 = args.candidates not in ("v3", "v4")  # the three-shape sweep
    shapes = SWEEP_SHAPES_V5 if v5 else ((*TUNE_SHAPE, 0, (0.02, 0.1, 0.5)),)
    warm = tuple((h, nv + nt) for h, nv, nt, _ in shapes if (h, nv + nt) != TUNE_SHAPE)
    checked = [{k: v for k, v in r.items() if k != "warm_shapes"}
               for r in check_candidates([dict(c, warm_shapes=warm) for c in cands], args.workers)]
    rounds = args.sweep_rounds
    groups: dict[tuple, list[dict]] = {}
    for r in checked:
        if r["ok"]:
            groups.setdefault(key_of(r), []).append(r)
    results = []
    inputs: dict[tuple, list[tuple]] = {}
    clocks = ClockSampler(0.25)  # SM / memory clocks while each problem's rounds run (the column clocks_under_load)
    for key, rs in groups.items():
        kernel, d, m, g = key
        for h, nv, n_text, dens_list in shapes:
            n = nv + n_text
            if (h, n, d) not in inputs:
                inputs.clear()  # one shape's inputs at a time (H40 N75600: 2 x 2.3 GB)
                torch.cuda.empty_cache()
                inputs[(h, n, d)] = make_qkv(1, h, n, d, 2)
            sets = inputs[(h, n, d)]
            out_buf = torch.empty_like(sets[0][0])
            shape = f"H{h} N{nv}" + (f"+{n_text}text" if n_text else "")
            problems: list[tuple[str, Any]] = []
            if kernel == "dense":
                problems.append((f"{shape} dense", None))
            else:
                for dt_ in dens_list:
                    torch.manual_seed(int(dt_ * 1000) + 7)
                    mask = window_mask(1, h, nv, m, dt_)
                    if n_text:
                        mask = with_text(mask, n_text, m)
                    if kernel == "fg":
                        idx = fgattn.build_index(mask, block_m=m, gran_n=g, order=True)
                    else:
                        tiles = torch.nn.functional.pad(mask, (0, (-n) % m)).reshape(1, h, mask.shape[2], -1, m).any(-1)
                        idx = fgattn.block_index_from_mask(tiles, block_m=m, n_keys=n, order=True)
                    del mask
                    problems.append((f"{shape} window {dt_}" if v5 else f"window {dt_}", idx))
            for pname, idx in problems:
                cases = []
                for r in rs:
                    cfg = to_config(r)
                    cases.append(dict(kernel=kernel, r=r, pattern=pname, dt=0,
                                      fn=lambda q, k, v, cfg=cfg, idx=idx, o=out_buf: run_kernel_out(cfg, q, k, v, idx,
                                                                                                     o)))
                t_clk = time.time()
                timed_rounds(cases, sets, rounds, 15.0, shuffle_seed=args.shuffle_seed)
                clk = clocks.window(t_clk, time.time())
                ref_ms = cases[0].get("ms") or []
                for c in cases:
                    ms = sorted(c.get("ms") or [float("inf")] * rounds)
                    med = ms[len(ms) // 2]
                    # relative time: median over rounds of t / t_reference in the same round (paired)
                    pair = sorted(a / b for a, b in zip(c.get("ms") or [], ref_ms, strict=False)) or [float("inf")]
                    rel = pair[len(pair) // 2]
                    dens = idx.density(n) if idx is not None else 1.0
                    tf = 4 * h * n * n * d * dens / med / 1e9
                    results.append(dict(c["r"], problem=pname, ms=med, ms_min=ms[0], ms_max=ms[-1], eff_tflops=tf,
                                        rel=rel, clocks_under_load=clk))
                    print(f"[tune] {key} {pname:<28} bn={c['r']['block_n']} st={c['r']['num_stages']} "
                          f"w={c['r']['num_warps']} {c['r']['extra']}: {med:.3f} ms ({ms[0]:.3f}-{ms[-1]:.3f}) "
                          f"{tf:.0f} eff TF/s rel {rel:.3f}", flush=True)
            problems.clear()
            torch.cuda.empty_cache()
    clocks.stop()
    inputs.clear()
    _ = with_text
    name = f"kernels-h200-tune-{meta['date'][:10]}-issue12{args.tag}.csv"
    meta = dict(meta, sweep_rounds=str(rounds), sweep_max_rel=str(args.max_rel or ""),
                sweep_timing="CUDA-graph replay, >= 30 ms untimed replays before each timed one; ms = median over "
                             "rounds; rel = median over rounds of t / t_reference in the same round"
                             + ("; random case order per round" if args.shuffle_seed is not None else ""))
    cols = ["kernel", "head_dim", "block_m", "gran_n", "block_n", "num_stages", "num_warps", "extra", "ok", "err",
            "compile_s", "problem", "ms", "ms_min", "ms_max", "eff_tflops", "rel", "control", "msg",
            "clocks_under_load"] + list(meta)
    with open(out_dir / name, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in results:
            w.writerow({**r, "extra": json.dumps(r["extra"], sort_keys=True), **meta})
        for r in checked:
            if not r["ok"]:
                w.writerow({**r, "extra": json.dumps(r["extra"], sort_keys=True), **meta})
    how = sweep_how(rounds, args.max_rel) if v5 else V3_HOW
    write_table_v3(pick_winners(results, args.max_rel), meta, out_dir, name, how, derive=not v5)
    return name


def pick_winners(results: list[dict[str, Any]], max_rel: float | None = None) -> dict[tuple, dict[str, Any]]:
    """Winner per key: the lowest *median* relative time over the key's problems (a mean let one config that
    won only at d=0.02 beat one that won at d=0.1 and 0.5 in run 2); ties keep the earlier (reference) entry.
    ``max_rel``: a candidate slower than ``max_rel`` × the reference at any problem is not eligible."""
    score: dict[tuple, dict[str, Any]] = {}
    for r in results:
        if r.get("control"):  # timed for the record, never picked
            continue
        ck = (key_of(r), r["block_n"], r["num_stages"], r["num_warps"], json.dumps(r["extra"], sort_keys=True))
        s = score.setdefault(ck, dict(r, rels=[], desc=[]))
        s["rels"].append(r["rel"])
        s["desc"].append(f"{r['problem']} {r['ms']:.3f} ms ({r['eff_tflops']:.0f} eff TF/s, rel {r['rel']:.3f})")
    best: dict[tuple, dict] = {}
    for ck, s in score.items():
        rels = sorted(s["rels"])
        s["score"] = rels[len(rels) // 2] if len(rels) % 2 else 0.5 * (rels[len(rels) // 2 - 1] + rels[len(rels) // 2])
        if max_rel is not None and ck[0] in best and rels[-1] > max_rel:
            continue  # the first (reference) entry of a key is always eligible
        if ck[0] not in best or s["score"] < best[ck[0]]["score"] - 1e-9:
            best[ck[0]] = s
    return best


def retable(csv_path: Path, out_dir: Path, max_rel: float | None = None) -> None:
    """Re-pick the winners of a committed sweep CSV (``--final`` tune output) and rewrite the launch table."""
    rows = list(csv.DictReader(open(csv_path, newline="")))
    results = []
    for r in rows:
        if r["ok"] != "True" or not r["ms"] or r.get("control") == "True":
            continue
        results.append(dict(kernel=r["kernel"], head_dim=int(r["head_dim"]), block_m=int(r["block_m"]),
                            gran_n=int(r["gran_n"]), block_n=int(r["block_n"]), num_stages=int(r["num_stages"]),
                            num_warps=int(r["num_warps"]), extra=json.loads(r["extra"]), problem=r["problem"],
                            ms=float(r["ms"]), eff_tflops=float(r["eff_tflops"]), rel=float(r["rel"])))
    meta = {"gpu_name": rows[0]["gpu_name"], "date": rows[0]["date"]}
    v5 = any(r["problem"].startswith("H40") for r in results)
    how = sweep_how(int(rows[0].get("sweep_rounds") or 5), max_rel) if v5 else V3_HOW
    write_table_v3(pick_winners(results, max_rel), meta, out_dir, csv_path.name, how, derive=not v5)


def run_kernel_out(cfg: launch.LaunchConfig, q, k, v, index, out) -> torch.Tensor:
    if cfg.kernel == "fg":
        return fgattn.fg_attention(q, k, v, index, block_m=cfg.block_m, gran_n=cfg.gran_n, config=cfg, out=out)
    if cfg.kernel == "block":
        return fgattn.block_sparse_attention(q, k, v, index, block_m=cfg.block_m, config=cfg, out=out)
    return fgattn.dense_attention(q, k, v, block_m=cfg.block_m, config=cfg, out=out)


V3_HOW = "B=1 H=12 N=32760 window mask, bf16, CUDA-graph median of 3 interleaved rounds"


def sweep_how(rounds: int, max_rel: float | None) -> str:
    """How a v5 sweep measured (for the table's source strings)."""
    return ("B=1 window masks (+64 sinks) on H12 N32760 and H12 N32760+512 text at d 0.02/0.1/0.5 and H40 N75600 at "
            f"d 0.02/0.1, bf16, CUDA-graph replay; rel = median over {rounds} interleaved rounds (random order each "
            "round) of t / t_reference in the same round"
            + (f"; eligible only if rel <= {max_rel} at every problem" if max_rel else ""))


def write_table_v3(best: dict[tuple, dict], meta: dict[str, str], out_dir: Path, csv_name: str,
                   how: str = V3_HOW, derive: bool = True) -> None:
    """Tuned keys get the winner and the measurement that chose it; with ``derive`` (the one-shape v3/v4 sweeps,
    which tuned gran 1 only) untuned keys of a tuned (kernel, D, M) are derived from it (block_n widened to
    gran_n); all other entries stay as they were.  The three-shape sweeps (v5-v7) name every key they tune: an
    entry they did not time keeps its config (v7 tunes fg D128 M128 gran 16/64, not gran 1)."""
    data = json.loads(TABLE.read_text())
    date = meta["date"][:10]
    for e in data["entries"]:
        key = (e["kernel"], e["head_dim"], e["block_m"], e["gran_n"])
        if key in best:
            r = best[key]
            e["source"] = (f"tuned {meta['gpu_name']} {date} (validation/results/{csv_name}): median rel. time "
                           f"{r['score']:.3f} vs the previous entry; " + "; ".join(r["desc"])
                           + "; " + how)
        else:
            sib = [b for b in best if b[0] == key[0] and b[1] == key[1] and b[2] == key[2]] if derive else []
            if not sib:
                continue
            r = best[sib[0]]
            e["source"] = (f"derived (not measured for this key) from tuned {sib[0]} on {meta['gpu_name']} {date} "
                           f"(validation/results/{csv_name})")
        bn = r["block_n"]
        if e["kernel"] == "fg":
            bn = max(bn, e["gran_n"])
        if e["kernel"] == "block":
            bn = min(bn, e["block_m"])
        e.update(block_n=bn, num_warps=r["num_warps"], num_stages=r["num_stages"], extra=dict(r["extra"]))
    data["note"] = ("written by validation/bench_kernels.py --tune / --final; keys (kernel,gpu,head_dim,block_m,"
                    "gran_n); source names the measurement that chose each entry")
    text = json.dumps(data, indent=1)
    TABLE.write_text(text)
    (out_dir / "launch_configs.json").write_text(text)
    launch.load_table.cache_clear()
    print(f"[tune] wrote {TABLE} ({len(best)} tuned keys)", flush=True)
    for k, r in sorted(best.items()):
        print(f"[tune] winner {k}: bn={r['block_n']} st={r['num_stages']} w={r['num_warps']} {r['extra']} "
              f"score {r['score']:.3f}", flush=True)


def flex_warm(spec: str) -> None:
    """Compile Flex BlockMask graphs for the given 'H,N;H,N' shapes (fills the on-disk Inductor cache)."""
    for part in spec.split(";"):
        h, n = (int(x) for x in part.split(","))
        q, k, v = (torch.randn(1, h, n, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        qb = -(-n // 128)
        tiles = torch.rand(1, h, qb, qb, device="cuda") < 0.3
        flex()(q, k, v, block_mask=flex_block_mask(tiles, n))
        torch.cuda.synchronize()
        print(f"[flex-warm] H={h} N={n} compiled", flush=True)


def final(args, meta: dict[str, str], out_dir: Path) -> None:
    """Issue 12 in one call: tune, write the table, GPU correctness check, then the benchmark."""
    t0 = time.perf_counter()
    plan = final_plan(args)
    flex_shapes = ";".join(f"{sh['h']},{sh['n_video'] + sh['n_text']}" for sh in plan if sh.get("with_flex"))
    before = TABLE.read_text()
    prev = {key: launch.launch_config(*key, table_path=args.previous_table) for key in PREVIOUS_KEYS}
    FG_EXTRA.update(fg_extra_configs(args.fg_extra))
    FG_EXTRA_TABLES.update(label_tables("--fg-extra", args.fg_extra))
    CONTIG_EXTRA.update(contig_extra_configs(args.contig_extra))
    tune_name = "(no tuning)"
    if args.tune:
        try:
            tune_name = tune_v3(args, meta, out_dir)
        except Exception:  # noqa: BLE001 - a broken sweep must not cost the check and the benchmark
            import traceback

            traceback.print_exc()
            TABLE.write_text(before)
            launch.load_table.cache_clear()
            tune_name = "(sweep FAILED: launch table unchanged)"
            print("[tune] sweep failed: launch table restored", flush=True)
    print(f"[time] tune {time.perf_counter() - t0:.1f}s", flush=True)
    # Flex compiles (and runs small graphs) in the background during the GPU check, not during the sweep's timing
    warm = None if args.no_flex or not flex_shapes else subprocess.Popen([sys.executable, __file__, "--flex-warm", flex_shapes],
                                                      stdout=open(out_dir / "flex-warm.log", "w"),
                                                      stderr=subprocess.STDOUT)
    if not args.no_check:
        with open(out_dir / "gpu_check.log", "w") as f:
            try:
                rc = subprocess.run(check_command(args), stdout=f, stderr=subprocess.STDOUT,
                                    timeout=args.check_timeout_s).returncode
            except subprocess.TimeoutExpired:
                rc = -1
                print(f"[check] gpu_check did not finish in {args.check_timeout_s:.0f} s: counted as failed", flush=True)
        tail = (out_dir / "gpu_check.log").read_text().strip().splitlines()[-3:]
        print(f"[check] rc={rc}: " + " | ".join(tail), flush=True)
        if rc != 0 and args.tune:  # a failing entry must not be chosen: back to the checked table
            TABLE.write_text(before)
            (out_dir / "launch_configs.json").write_text(before)
            launch.load_table.cache_clear()
            tune_name += " (REVERTED: gpu_check failed on the tuned table)"
            print("[check] FAILED on the tuned table: launch table restored to the previous one", flush=True)
        print(f"[time] check {time.perf_counter() - t0:.1f}s", flush=True)
    # the previous (session 2) entries run next to the tuned ones where they differ, for the record
    for key, cfg in prev.items():
        now = launch.launch_config(*key)
        if (now.block_n, now.num_stages, now.num_warps, now.extra) != (cfg.block_n, cfg.num_stages, cfg.num_warps,
                                                                     cfg.extra):
            PREVIOUS[(key[0], key[2], key[3], key[4])] = cfg
    try:
        if warm is not None:
            warm.wait(timeout=90)
    except subprocess.TimeoutExpired:
        warm.kill()
        print("[final] flex warm-up still running after 90 s: killed (Flex compiles in the benchmark)", flush=True)
    meta = dict(meta, tune_csv=tune_name)
    path = out_dir / f"kernels-h200-{meta['date'][:10]}-issue12{args.tag}.csv"
    clocks = ClockSampler(1.0)
    cell_clock = NvmlClock()
    print(f"[final] per-cell SM clock: {'NVML, polled during each case' if cell_clock.ok else 'not available'}"
          f" (every {CLOCK_POLL_S * 1000:g} ms)",
          flush=True)
    launches = CaptureLaunches()
    done: list[dict[str, Any]] = []
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FINAL_COLS + list(meta), extrasaction="ignore")
        w.writeheader()
        for si, sh in enumerate(plan):
            if time.perf_counter() - t0 > args.budget_s:
                print(f"[time] budget reached, skipping {sh}", flush=True)
                continue
            seed = None if args.bench_shuffle_seed is None else args.bench_shuffle_seed + si
            done.extend(final_shape(w, meta, clocks, **{**sh, "with_flex": sh.get("with_flex", False)
                                                        and not args.no_flex, "shuffle_seed": seed},
                                    contig_variants=args.contig_variants,
                                    cell_clock=cell_clock if cell_clock.ok else None, launches=launches,
                                    only_fg=args.bench_only == "fg128", only_contig=args.bench_only == "contig",
                                    only_gran=args.bench_only == "gran"))
            f.flush()
            print(f"[time] {time.perf_counter() - t0:.1f}s", flush=True)
    clocks.stop()
    print(f"wrote {path}", flush=True)
    print("\nsummary: density x t_cuDNN / t (median of rounds) per shape, kernel, M, gran", flush=True)
    lines: dict[tuple, list[str]] = {}
    for r in done:
        if r["kernel"] != "sdpa_cudnn":
            lines.setdefault((r["shape"], r["kernel"], r["M"], r["gran_n"]), []).append(
                f"{r['density_target']:g}:{r['ratio_vs_cudnn']:.2f}")
    for (shape, kern, m, g), vals in lines.items():
        print(f"{shape:<22} {kern:<26} M{m:<3} g{g:<3} " + " ".join(vals), flush=True)


def contig_table_error() -> str | None:
    """Why the launch table in use cannot serve ``--check-contig`` (its dense / block h200 D128 M128 entries must be
    Gluon form contig: gpu_check_kernels.py's own rule), or None."""
    for kind in ("dense", "block"):
        e = launch.launch_config(kind, "h200", 128, 128)
        if e.impl != "gluon" or e.extra["gluon"].get("form") != "contig":
            return (f"the {kind} h200 D128 M128 entry of {launch.table_file()} is impl {e.impl}, not Gluon form contig "
                    "(set FGATTN_LAUNCH_TABLE, e.g. kernels/logs/launch_configs-candidate-contig.json)")
    return None


def check_command(args) -> list[str]:
    """The ``gpu_check_kernels.py`` command ``--final`` runs."""
    return ([sys.executable, str(ROOT / "validation" / "gpu_check_kernels.py"), "--workers", "16"]
            + (["--lite"] if args.check_lite else []) + (["--table"] if args.check_table else [])
            + (["--gluon", str(args.check_gluon)] if args.check_gluon else [])
            + (["--gluon-entry"] if args.check_gluon_entry else []) + (["--gluon-only"] if args.check_gluon_only else [])
            + (["--contig", str(args.check_contig)] if args.check_contig else []))


def dry_run(args) -> None:
    """``--dry-run``: what a ``--final`` / ``--sweep-only`` call would sweep, check and benchmark (no GPU)."""
    if args.final and args.tune or args.sweep_only:
        cands = CANDIDATE_SETS[args.candidates]()
        print(f"[dry-run] sweep {args.candidates}: {len(cands)} candidates, {args.sweep_rounds} rounds, "
              f"shuffle seed {args.shuffle_seed}, max rel {args.max_rel}")
        for c in cands:
            cfg = to_config(c)
            launch.check_impl(cfg.kernel, cfg.head_dim, cfg.block_m, cfg.gran_n, cfg.extra, "candidate")
            print(f"[dry-run]   {key_of(c)} bn={c['block_n']} st={c['num_stages']} w={c['num_warps']} impl={cfg.impl} "
                  f"{json.dumps(c['extra'], sort_keys=True)}")
    if args.final and not args.sweep_only:
        if not args.no_check:
            print("[dry-run] check: " + " ".join(check_command(args)[1:]) + f" (timeout {args.check_timeout_s:.0f} s)")
        for i, sh in enumerate(final_plan(args)):
            print(f"[dry-run] bench {i}: H{sh['h']} N{sh['n_video']}+{sh['n_text']} D{sh['d']} "
                  f"rounds {sh.get('rounds', 3)} densities {list(sh['densities'])}")
        if args.bench_only:
            what = ("cuDNN + fg M128 gran 1 (+ its previous entry) per density" if args.bench_only == "fg128" else
                    "cuDNN + fg D128 M128 gran 16 / 64 per density (+ the --fg-extra tables' gran 16 / 64 entries)"
                    if args.bench_only == "gran" else
                    "cuDNN + dense D128 M128 + block D128 M128 per density (+ the --contig-extra tables' entries)")
            print(f"[dry-run] bench only {args.bench_only}: {what}")
            for label, path in label_tables("--fg-extra", args.fg_extra).items():
                for g in GRAN_BENCH if args.bench_only == "gran" else (1,):
                    xcfg = launch.launch_config("fg", "h200", 128, 128, g, table_path=path)
                    print(f"[dry-run] fg_attention_{label}: fg D128 M128 g{g} entry {xcfg.extra}")
            for label, (xd, xb) in contig_extra_configs(args.contig_extra).items():
                print(f"[dry-run] fg_dense_{label} / fg_block128_{label}: {xd.extra.get('gluon')} / "
                      f"{xb.extra.get('gluon')}")
        print(f"[dry-run] launch table {launch.table_file()}")
        for key in PREVIOUS_KEYS if args.previous_table else ():
            now, was = launch.launch_config(*key), launch.launch_config(*key, table_path=args.previous_table)
            if (now.block_n, now.num_stages, now.num_warps, now.extra) != (was.block_n, was.num_stages,
                                                                         was.num_warps, was.extra):
                print(f"[dry-run] previous entry timed beside the current one: {key} impl {now.impl} -> previous "
                      f"{was.impl} {json.dumps(was.extra, sort_keys=True)}")
        for kind in ("dense", "block") if args.contig_variants else ():
            v = contig_variant(launch.launch_config(kind, "h200", 128, 128))
            print(f"[dry-run] contig variant {kind}: " + (json.dumps(v.extra["gluon"], sort_keys=True) if v else
                                                         "none (the entry is not a contig entry with other knobs)"))
    print("[dry-run] arguments valid; nothing run")


def label_tables(flag: str, specs: list[str]) -> dict[str, str]:
    """``FLAG LABEL=TABLE`` values -> label -> table path (ValueError naming the flag and the bad value: LABEL must be
    a new lower-case identifier, TABLE an existing launch table)."""
    out: dict[str, str] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label.isidentifier() or label != label.lower() or label in out:
            raise ValueError(f"{flag} {spec!r}: must be LABEL=TABLE with a new lower-case identifier LABEL")
        if not Path(path).is_file():
            raise ValueError(f"{flag} {spec!r}: {path} does not exist")
        out[label] = path
    return out


def fg_extra_configs(specs: list[str]) -> dict[str, launch.LaunchConfig]:
    """``--fg-extra LABEL=TABLE`` values -> label -> TABLE's fg h200 D128 M128 g1 entry (:func:`label_tables`)."""
    return {label: launch.launch_config("fg", "h200", 128, 128, 1, table_path=path)
            for label, path in label_tables("--fg-extra", specs).items()}


def contig_extra_configs(specs: list[str]) -> dict[str, tuple[launch.LaunchConfig, launch.LaunchConfig]]:
    """``--contig-extra LABEL=TABLE`` values -> label -> TABLE's (dense, block) h200 D128 M128 entries
    (:func:`label_tables`)."""
    return {label: (launch.launch_config("dense", "h200", 128, 128, 1, table_path=path),
                    launch.launch_config("block", "h200", 128, 128, 128, table_path=path))
            for label, path in label_tables("--contig-extra", specs).items()}


def rounds_at(spec: str | None) -> dict[int, int]:
    """``--bench-rounds-at POS:R[,POS:R]`` -> plan position -> rounds (ValueError naming the bad value)."""
    out: dict[int, int] = {}
    for part in (spec.split(",") if spec else ()):
        pos, sep, r = part.partition(":")
        if not (sep and pos.strip().isdigit() and int(pos) <= 8 and r.strip().isdigit() and int(r) >= 1):
            raise ValueError(f"--bench-rounds-at {spec!r}: comma-separated POS:ROUNDS, POS 0-8, ROUNDS >= 1")
        out[int(pos)] = int(r)
    return out


def densities_at(spec: str | None) -> dict[int, tuple[float, ...]]:
    """``--bench-densities-at POS:D/D[,POS:D/D]`` -> plan position -> the density targets timed there (a subset of
    that position's plan densities, checked by :func:`final_plan`; ValueError naming the bad value)."""
    out: dict[int, tuple[float, ...]] = {}
    for part in (spec.split(",") if spec else ()):
        pos, sep, ds = part.partition(":")
        try:
            vals = tuple(float(x) for x in ds.split("/")) if sep else ()
        except ValueError:
            vals = ()
        if not (pos.strip().isdigit() and int(pos) <= 8 and vals and all(0 < v <= 1 for v in vals)):
            raise ValueError(f"--bench-densities-at {spec!r}: comma-separated POS:D/D/..., POS 0-8, D in (0, 1]")
        out[int(pos)] = vals
    return out


def final_plan(args) -> list[dict[str, Any]]:
    """The --final benchmark's shapes (``--bench-shapes`` / ``--bench-short`` select; ``--bench-rounds`` sets
    every shape's rounds; ``--bench-all-kernels`` adds fg/dense M=64 at d 0.02/0.1/0.5 and Flex where missing)."""
    dens = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
    plan = [
        dict(h=12, n_video=32760, n_text=0, d=128, densities=dens, m64=(0.02, 0.1, 0.3, 0.5, 1.0), grans=(0.1, 0.5),
             with_flex=True, with_previous=True),
        dict(h=12, n_video=32760, n_text=512, d=128, densities=dens, m64=(0.02, 0.1, 0.5), with_flex=True),
        dict(h=40, n_video=75600, n_text=0, d=128, densities=dens, m64=(0.02, 0.1, 0.5), with_flex=True,
             rounds=3, target_ms=1.0),
        dict(h=40, n_video=75600, n_text=512, d=128, densities=dens, rounds=3, target_ms=1.0),
        dict(h=12, n_video=75600, n_text=0, d=128, densities=dens),
        dict(h=12, n_video=75600, n_text=512, d=128, densities=(0.02, 0.1, 0.3, 0.5)),
        dict(h=40, n_video=32760, n_text=0, d=128, densities=dens, with_previous=True),
        dict(h=40, n_video=32760, n_text=512, d=128, densities=(0.02, 0.1, 0.3, 0.5)),
        dict(h=12, n_video=32760, n_text=0, d=64, densities=(0.1, 0.3, 0.5, 1.0)),
    ]
    at = rounds_at(getattr(args, "bench_rounds_at", None))
    dens_at = densities_at(getattr(args, "bench_densities_at", None))
    plan = [dict(sh, pos=i) for i, sh in enumerate(plan)]
    for pos, ds in dens_at.items():
        bad = [x for x in ds if x not in plan[pos]["densities"]]
        if bad:
            raise ValueError(f"--bench-densities-at: position {pos} has no density {bad[0]:g} "
                             f"(its densities: {'/'.join(f'{x:g}' for x in plan[pos]['densities'])})")
    if args.bench_shapes:  # plan positions, in the order given
        plan = [plan[int(i)] for i in args.bench_shapes.split(",")]
    elif args.bench_short:  # the changed entries' shapes: H12 N32760 (+ text), H40 N75600, then D64
        plan = [plan[0], plan[1], plan[2], plan[8]]
    plan = [dict(sh) for sh in plan]
    for sh in plan:
        if args.bench_rounds is not None:
            sh["rounds"] = args.bench_rounds
        pos = sh.pop("pos")
        if pos in at:
            sh["rounds"] = at[pos]
        if pos in dens_at:
            sh["densities"] = tuple(x for x in sh["densities"] if x in dens_at[pos])
        if args.bench_all_kernels and sh["d"] == 128:
            sh["with_flex"] = True
            sh["m64"] = sh.get("m64") or (0.02, 0.1, 0.5)
    return plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="subset that fits in ~5 minutes")
    ap.add_argument("--tune", action="store_true", help="sweep launch configurations first")
    ap.add_argument("--tune-only", action="store_true")
    ap.add_argument("--no-flex", action="store_true", help="no FlexAttention rows (and, with --final, no Flex warm-up)")
    ap.add_argument("--rotate", type=int, default=3, help="input sets rotated between calls")
    ap.add_argument("--budget-s", type=float, default=1e9, help="skip remaining shapes after this many seconds")
    ap.add_argument("--workers", type=int, default=14)
    ap.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "validation" / "results")))
    ap.add_argument("--check-candidate", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--targets", action="store_true", help="interleaved target check + Flex D=64 + index cost")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--targets-shape", default="12,32760,128", help="H,N,D of --targets")
    ap.add_argument("--final", action="store_true",
                    help="issue 12: (--tune) sweep, table, GPU check, graph-timed benchmark of the Wan shapes")
    ap.add_argument("--no-check", action="store_true", help="--final without the GPU correctness check")
    ap.add_argument("--check-timeout-s", type=float, default=200.0, help="--final: gpu_check time limit")
    ap.add_argument("--check-lite", action="store_true", help="--final: gpu_check_kernels.py --lite")
    ap.add_argument("--check-table", action="store_true", help="--final: gpu_check_kernels.py --table")
    ap.add_argument("--check-gluon", type=int, default=0, metavar="N",
                    help="--final: gpu_check_kernels.py --gluon N (N random cases on the Gluon form, impl gluon)")
    ap.add_argument("--check-gluon-entry", action="store_true",
                    help="--final: gpu_check_kernels.py --gluon-entry (the --check-gluon cases with the table's fg "
                         "D128 M128 g1 entry's own knobs only)")
    ap.add_argument("--check-gluon-only", action="store_true",
                    help="--final: gpu_check_kernels.py --gluon-only (the --check-gluon / --check-contig cases alone)")
    ap.add_argument("--check-contig", type=int, default=0, metavar="N",
                    help="--final: gpu_check_kernels.py --contig N (N random dense / block / fg cases through the public "
                         "entry points; the table must have Gluon contig entries)")
    ap.add_argument("--contig-variants", action="store_true",
                    help="--final benchmark: a Gluon contig dense / block entry also as form contig with regs 216/64, "
                         "no ping-pong (*_contig216 rows; block at d 0.02 / 0.1 / 0.5)")
    ap.add_argument("--dry-run", action="store_true",
                    help="validate the arguments, print the candidates / plan and the gpu_check command; no GPU")
    ap.add_argument("--previous-table", default=None,
                    help="--final without --tune: launch table whose entries run beside the current ones where "
                         "they differ (fg_attention_previous rows)")
    ap.add_argument("--bench-short", action="store_true",
                    help="--final benchmark on H12 N32760 (+512 text), H40 N75600 and H12 N32760 D64 only")
    ap.add_argument("--bench-shapes", default=None,
                    help="--final benchmark: positions in its plan, comma-separated (0 H12 N32760, 1 +512 text, 2 H40 "
                         "N75600, 3 +512 text, 4 H12 N75600, 5 +text, 6 H40 N32760, 7 +text, 8 H12 N32760 D64)")
    ap.add_argument("--bench-rounds", type=int, default=None,
                    help="--final benchmark: interleaved rounds at every shape (default: 3)")
    ap.add_argument("--bench-rounds-at", default=None, metavar="POS:R[,POS:R]",
                    help="--final benchmark: rounds at these plan positions (after --bench-rounds)")
    ap.add_argument("--bench-densities-at", default=None, metavar="POS:D/D[,POS:D/D]",
                    help="--final benchmark: time only these density targets at these plan positions (a subset of "
                         "the position's densities)")
    ap.add_argument("--fg-extra", action="append", default=[], metavar="LABEL=TABLE",
                    help="--final --bench-only fg128: also time TABLE's fg D128 M128 g1 entry as fg_attention_LABEL "
                         "in the same rounds (repeatable; e.g. the current table again as a control)")
    ap.add_argument("--bench-shuffle-seed", type=int, default=None,
                    help="--final benchmark: a fresh random case order in every round (seed + shape position)")
    ap.add_argument("--bench-all-kernels", action="store_true",
                    help="--final benchmark: every D128 shape also with fg/dense M=64 (d 0.02/0.1/0.5 where the plan "
                         "has none) and Flex BlockMask")
    ap.add_argument("--bench-only", choices=("fg128", "contig", "gran"), default=None,
                    help="--final benchmark: fg128 = cuDNN and the fg M128 gran-1 entry alone (its previous entry "
                         "beside it at every shape and density when --previous-table differs there); contig = cuDNN "
                         "and the dense / block D128 M128 entries alone (with the --contig-extra tables' entries); "
                         "gran = cuDNN and the fg D128 M128 gran-16 / 64 entries (with the --fg-extra tables' "
                         "gran-16 / 64 entries)")
    ap.add_argument("--contig-extra", action="append", default=[], metavar="LABEL=TABLE",
                    help="--final --bench-only contig: also time TABLE's dense / block h200 D128 M128 entries as "
                         "fg_dense_LABEL / fg_block128_LABEL in the same rounds (repeatable; e.g. a control)")
    ap.add_argument("--clock-poll-ms", type=float, default=1.0,
                    help="--final benchmark: ms between NVML SM-clock reads during a case's replays (default 1; "
                         "> 1: one read at the replays' start, then one every interval)")
    ap.add_argument("--tag", default="", help="suffix of the --final tune CSV name (e.g. -run2)")
    ap.add_argument("--flex-warm", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--candidates", choices=tuple(CANDIDATE_SETS), default="v10",
                    help="--final/--sweep-only candidate set (v3: session-3 persistent forms; v4: work queue, tma_q; "
                         "v5: tail_reuse, tma_q, work queue on three Wan shapes; v6: one_row on the same shapes; v7: dense "
                         "tail_branch, one_row for the other fg keys; v8: the entries still serialised - dense D64 M64, fg M128 "
                         "gran 64, block M128; v9: v8 + guard_next / tma_o on the one_row fg entries; v10: exp_poly; v11: "
                         "impl gluon (fgattn.gluon_fg form ws2, pipeline 1 / 3) for fg D128 M128 gran 1)")
    ap.add_argument("--sweep-rounds", type=int, default=3, help="interleaved rounds per sweep problem")
    ap.add_argument("--shuffle-seed", type=int, default=None,
                    help="sweep: a fresh random case order in every round (relative times are paired per round)")
    ap.add_argument("--max-rel", type=float, default=None,
                    help="winner rule: a candidate slower than this x the reference at any sweep problem is not "
                         "eligible (e.g. 1.02)")
    ap.add_argument("--sweep-only", action="store_true",
                    help="the --final sweep alone: tune CSV and the re-picked table under --out (no check, no benchmark)")
    ap.add_argument("--retable", type=Path, default=None,
                    help="re-pick the launch table from a committed --final sweep CSV (no GPU)")
    args = ap.parse_args()
    if args.check_candidate:
        print(json.dumps(check_candidate(json.loads(args.check_candidate))))
        return
    if args.flex_warm:
        flex_warm(args.flex_warm)
        return
    if args.bench_shapes is not None and not all(x.strip().isdigit() and int(x) <= 8
                                                  for x in args.bench_shapes.split(",")):
        print(f"bench_kernels: --bench-shapes {args.bench_shapes!r}: comma-separated plan positions 0-8",
              file=sys.stderr)
        sys.exit(2)
    if args.bench_only and args.bench_all_kernels:
        print("bench_kernels: --bench-only and --bench-all-kernels exclude each other", file=sys.stderr)
        sys.exit(2)
    if args.bench_rounds is not None and args.bench_rounds < 1:
        print(f"bench_kernels: --bench-rounds {args.bench_rounds}: must be >= 1", file=sys.stderr)
        sys.exit(2)
    if not 1.0 <= args.clock_poll_ms <= 1000.0:
        print(f"bench_kernels: --clock-poll-ms {args.clock_poll_ms}: must be in [1, 1000]", file=sys.stderr)
        sys.exit(2)
    global CLOCK_POLL_S
    CLOCK_POLL_S = args.clock_poll_ms / 1000.0
    try:
        fg_extra_configs(args.fg_extra)
        contig_extra_configs(args.contig_extra)
        rounds_at(args.bench_rounds_at)
        densities_at(args.bench_densities_at)
        if args.final:
            final_plan(args)
    except ValueError as e:
        print(f"bench_kernels: {e}", file=sys.stderr)
        sys.exit(2)
    if args.fg_extra and args.bench_only not in ("fg128", "gran"):
        print("bench_kernels: --fg-extra needs --bench-only fg128 or gran", file=sys.stderr)
        sys.exit(2)
    if args.contig_extra and args.bench_only != "contig":
        print("bench_kernels: --contig-extra needs --bench-only contig", file=sys.stderr)
        sys.exit(2)
    if args.previous_table is not None and not Path(args.previous_table).is_file():
        print(f"bench_kernels: --previous-table {args.previous_table} does not exist", file=sys.stderr)
        sys.exit(2)
    if (args.check_gluon_entry and not args.check_gluon) or (args.check_gluon_only and not (args.check_gluon
                                                                                          or args.check_contig)):
        print("bench_kernels: --check-gluon-entry needs --check-gluon N; --check-gluon-only needs --check-gluon N or "
              "--check-contig N", file=sys.stderr)
        sys.exit(2)
    if args.check_gluon < 0:
        print(f"bench_kernels: --check-gluon {args.check_gluon}: must be >= 0", file=sys.stderr)
        sys.exit(2)
    if args.check_contig < 0:
        print(f"bench_kernels: --check-contig {args.check_contig}: must be >= 0", file=sys.stderr)
        sys.exit(2)
    if args.check_contig and not args.no_check and (why := contig_table_error()):
        print(f"bench_kernels: --check-contig: {why}", file=sys.stderr)
        sys.exit(2)
    if args.dry_run:
        dry_run(args)
        return
    if args.retable is not None:
        if not args.retable.is_file():
            print(f"bench_kernels: --retable {args.retable} does not exist", file=sys.stderr)
            sys.exit(2)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        retable(args.retable, Path(args.out), args.max_rel)
        return
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = env_metadata()
    print(json.dumps(meta), flush=True)
    t0 = time.perf_counter()
    if args.sweep_only:
        name = tune_v3(args, meta, out_dir)
        print(f"[time] sweep {time.perf_counter() - t0:.1f}s: {name}", flush=True)
        return
    if args.final:
        final(args, meta, out_dir)
        print(f"[time] final {time.perf_counter() - t0:.1f}s", flush=True)
        return
    if args.tune or args.tune_only:
        tune(args, meta, out_dir)
        print(f"[time] tuning {time.perf_counter() - t0:.1f}s", flush=True)
    if args.tune_only:
        return
    if args.targets:
        targets(args, meta, out_dir)
        print(f"[time] targets {time.perf_counter() - t0:.1f}s", flush=True)
        return
    path = out_dir / f"kernels-h200-{meta['date'][:10]}{'-quick' if args.quick else ''}.csv"
    rows = Rows(meta, path)
    flex_ok = not args.no_flex
    if args.quick:
        bench_shape(rows, 1, 12, 32760, 128, args, DENSITIES, ("random", "window"),
                    [("window", 0.3, 128, 16), ("window", 0.3, 128, 64), ("random", 0.5, 128, 16),
                     ("random", 0.5, 128, 64), ("random", 0.5, 64, 1), ("window", 0.3, 64, 1)], flex_ok)
        print(f"[time] shape 1 done {time.perf_counter() - t0:.1f}s", flush=True)
        bench_shape(rows, 1, 12, 32760, 64, args, (0.5, 0.1), ("random", "window"), [], False, with_block=False)
        bench_shape(rows, 1, 40, 75600, 128, args, (0.3,), ("window",), [], False, with_block=False)
    else:
        # all four Wan2.1 shapes at D=128 (all densities, both patterns, Flex), D=64 on two of them
        extra = [("window", 0.3, 128, 16), ("window", 0.3, 128, 64), ("random", 0.5, 128, 16),
                 ("random", 0.5, 128, 64), ("random", 0.5, 64, 1), ("window", 0.3, 64, 1)]
        plan = [(12, 32760, 128, DENSITIES, extra), (40, 75600, 128, DENSITIES, []),
                (40, 32760, 128, DENSITIES, []), (12, 75600, 128, DENSITIES, []),
                (12, 32760, 64, (1.0, 0.5, 0.3, 0.1), [("random", 0.5, 64, 1)]),
                (40, 75600, 64, (1.0, 0.5, 0.1), [])]
        for h, n, d, dens, ex in plan:
            if time.perf_counter() - t0 > args.budget_s:
                print(f"[time] budget reached, skipping H={h} N={n} D={d}", flush=True)
                continue
            bench_shape(rows, 1, h, n, d, args, dens, ("random", "window"), ex, flex_ok)
            print(f"[time] H={h} N={n} D={d} done {time.perf_counter() - t0:.1f}s", flush=True)
    print(f"[time] benchmark {time.perf_counter() - t0:.1f}s", flush=True)
    print(f"wrote {path}")
    print("\nkernel          pattern  dens  H  N      D   M  g    ms      TF/s  x cuDNN  idx_ms")
    for r in rows.rows:
        print(f"{r['kernel']:<15} {r['pattern']:<8} {r['density']:.2f} {r['H']:>2} {r['N']:>6} {r['D']:>3} "
              f"{r['M']:>3} {r['gran_n']:>3} {r['ms']:7.3f} {r['tflops']:6.1f} {r['ratio_vs_cudnn']:6.3f}  "
              f"{r.get('index_ms', '')}")


if __name__ == "__main__":
    main()
