"""``fgsim calibrate --interconnect``: the one way the ``interconnect`` block of a GPU description is made.

On P GPUs of one host (``NCCL_NVLS_ENABLE=0 torchrun --nproc-per-node P -m fgsim calibrate --interconnect``): NCCL
all-to-all, all-gather and send/recv, at the sizes context-parallel attention uses (the Wan2.1 1.3B 480p and 14B
720p shapes: Ulysses' local ``S/P·H·D`` tensor, the ring's gathered ``S·H·D``) and a spread of others for the
line; the Ulysses permute copies at those shapes (diffusers' layout changes, :mod:`fgsim.integrations.
context_parallel`); a plain device-to-device copy (the copy rate the ring's merges and padding are priced at).
Timing: each operation captured R times in one CUDA graph (NCCL collectives are captured too) and replayed,
CUDA events around the replay, per-call time = replay / R; interleaved rounds; the median per rank and the
spread are recorded, and the slower rank's median is used. Where a capture fails the row is timed eagerly with
events and says so.

The fit (:func:`fit_link`, also ``--from-csv`` on any machine): the measured tables (bytes, seconds) replace the
line inside their size range at ``table_degree`` GPUs; outside it ``t = latency + bytes·(P−1)/P / busbw``
(nccl-tests' bus-bandwidth convention, https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md),
weighted least squares on relative error. The block is written into the GPU description with provenance.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.errors import FgsimError
from fgsim.parallel import Link

REPO = Path(__file__).resolve().parents[1]

#: attention shapes whose sizes are measured: name -> (tokens, heads, head_dim) (bf16)
SHAPES = {"wan2.1-1.3b-480p": (32760, 12, 128), "wan2.1-14b-720p": (75600, 40, 128)}
#: extra sizes for the latency/bandwidth line (bytes of the per-rank buffer)
LINE_SIZES = (1 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30)
OPS = ("alltoall", "allgather", "p2p")
CSV_FIELDS = ("op", "shape", "bytes", "P", "rank", "median_s", "min_s", "max_s", "spread", "rounds", "reps",
              "method", "busbw_gbs", "gpu_name", "driver", "torch", "nccl", "cuda", "date", "commit", "nvls",
              "sm_clock_mhz", "mem_clock_mhz", "source_digest")


# --------------------------------------------------------------------------------------------------------------------
# timing: CUDA-graph replay, events fallback


def agree_reps(reps: int, device: Any) -> int:
    """The largest of the ranks' ``reps`` (one small all-reduce; ``reps`` unchanged outside a process group): every
    rank must run the same number of collectives per timing, else the ranks' NCCL calls pair up wrongly and hang."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return int(reps)
    t = torch.tensor([int(reps)], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def eager_seconds(fn: Callable[[], Any], device: Any, barrier: Callable[[], None] | None = None) -> float:
    """Seconds of one eager call of ``fn`` on ``device`` after ``barrier()`` (CUDA events; perf_counter on the
    CPU)."""
    import torch

    if barrier is not None:
        barrier()
    if device.type != "cuda":
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) * 1e-3


class GraphTimer:
    """Per-call seconds of callables on this rank by CUDA-graph replay (``reps`` calls captured in one graph,
    CUDA events around one replay, divided by ``reps``), after a barrier so ranks start together. A callable
    whose capture fails is timed eagerly with events (``method`` says which)."""

    def __init__(self, device: Any, barrier: Callable[[], None], target_s: float = 2e-3, max_reps: int = 20,
                 eager_collectives: bool | None = None) -> None:
        self.device = device
        #: time callables holding collectives eagerly (FGSIM_EAGER_COLLECTIVES=1: where captured NCCL hangs)
        self.eager_collectives = (os.environ.get("FGSIM_EAGER_COLLECTIVES") == "1" if eager_collectives is None
                                  else eager_collectives)
        self.barrier = barrier
        self.target_s = target_s
        self.max_reps = max_reps
        self.graphs: dict[Any, tuple[Any, int]] = {}
        self.method: dict[Any, str] = {}
        self.reps: dict[Any, int] = {}
        self.eager_reps: dict[Any, int] = {}

    def eager(self, fn: Callable[[], Any]) -> float:
        """Seconds of one eager call after the barrier (:func:`eager_seconds`)."""
        return eager_seconds(fn, self.device, self.barrier)

    def prepare(self, key: Any, fn: Callable[[], Any], collective: bool = False) -> str:
        """Warm up ``fn`` and capture it (reps chosen so one replay lasts about ``target_s``); returns the method.
        ``collective``: ``fn`` runs NCCL collectives (timed eagerly when ``eager_collectives``)."""
        import torch

        fn()
        t = min(self.eager(fn) for _ in range(2))
        if self.device.type != "cuda":
            self.method[key] = "perf_counter, eager (CPU)"
            return self.method[key]
        if collective and self.eager_collectives:
            # back-to-back calls timed together, as a graph replay would be: the host launch and the ranks' skew
            # are paid once per timing, not per call (a sequence of collectives, as Ulysses runs them, hides them)
            reps = agree_reps(int(min(self.max_reps, max(1, np.ceil(self.target_s / max(t, 1e-6))))), self.device)
            self.eager_reps[key] = reps
            self.reps[key] = reps
            self.method[key] = (f"CUDA events, eager, {reps} back-to-back calls per timing (collectives not "
                                "captured: FGSIM_EAGER_COLLECTIVES=1)")
            return self.method[key]
        reps = int(min(self.max_reps, max(1, np.ceil(self.target_s / max(t, 1e-6)))))
        if collective:
            reps = agree_reps(reps, self.device)
        try:
            s = torch.cuda.Stream(self.device)
            s.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(s):
                fn()
            torch.cuda.current_stream(self.device).wait_stream(s)
            torch.cuda.synchronize(self.device)
            self.barrier()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for _ in range(reps):
                    fn()
            torch.cuda.synchronize(self.device)
            self.barrier()
            g.replay()  # the first replay uploads the graph: not timed
            torch.cuda.synchronize(self.device)
            self.graphs[key] = (g, reps)
            self.reps[key] = reps
            self.method[key] = f"CUDA graph, {reps} calls per replay"
        except Exception as exc:  # noqa: BLE001 - recorded in the row; the call is timed eagerly instead
            torch.cuda.synchronize(self.device)
            self.method[key] = f"CUDA events, eager (capture failed: {type(exc).__name__}: {str(exc)[:80]})"
        self.barrier()
        return self.method[key]

    def __call__(self, key: Any, fn: Callable[[], Any]) -> float:
        import torch

        hit = self.graphs.get(key)
        if hit is None:
            n = self.eager_reps.get(key, 1)
            if n == 1:
                return self.eager(fn)

            def loop() -> None:
                for _ in range(n):
                    fn()

            return self.eager(loop) / n
        g, reps = hit
        self.barrier()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        return a.elapsed_time(b) * 1e-3 / reps

    def release(self) -> None:
        """Free the captured graphs (and their memory pools)."""
        self.graphs.clear()


def stats(ts: Sequence[float]) -> dict[str, float]:
    """Median, min, max and spread ((max − min) / median) of per-round times."""
    med = float(np.median(ts))
    return {"median_s": med, "min_s": float(min(ts)), "max_s": float(max(ts)),
            "spread": (max(ts) - min(ts)) / med if med > 0 else 0.0}


# --------------------------------------------------------------------------------------------------------------------
# measurement (torchrun, NCCL)


def measure(device: Any, rank: int, p: int, rounds: int = 5, shapes: dict[str, tuple[int, int, int]] | None = None,
            line_sizes: Sequence[int] = LINE_SIZES, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Rows of per-rank medians for every op and size (this rank's); call on every rank."""
    import torch
    import torch.distributed as dist

    from fgsim.integrations.context_parallel import heads_pack, heads_unpack, seq_pack, seq_unpack

    shapes = SHAPES if shapes is None else shapes

    def barrier() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dist.barrier()

    timer = GraphTimer(device, barrier)
    fused = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    peer, src = (rank + 1) % p, (rank - 1) % p
    items: list[tuple[tuple[str, str, int], Callable[[], Any]]] = []
    keep: list[Any] = []
    sizes: dict[str, set[tuple[str, int]]] = {op: {("", int(b)) for b in line_sizes} for op in OPS}
    for name, (s, h, d) in shapes.items():
        if s % p or h % p:
            continue
        local = s // p * h * d * 2
        sizes["alltoall"].add((name, local))
        sizes["p2p"].add((name, local))
        sizes["allgather"].add((name, local * p))  # the ring gathers k and v: S·H·D each
    for op in OPS:
        for name, nbytes in sorted(sizes[op], key=lambda x: x[1]):
            per_rank = nbytes // p if op == "allgather" else nbytes
            n = max(per_rank // 2 // p * p, p)
            x = torch.randn(n, device=device).to(torch.bfloat16)
            if op == "alltoall":
                y = torch.empty_like(x)
                fn = (lambda x=x, y=y: dist.all_to_all_single(y, x))
            elif op == "allgather":
                y = torch.empty(n * p, dtype=x.dtype, device=device)
                fn = (lambda x=x, y=y: fused(y, x)) if device.type == "cuda" else \
                    (lambda x=x, y=y: dist.all_gather(list(y.view(p, -1).unbind(0)), x))
            else:
                y = torch.empty_like(x)

                def fn(x: Any = x, y: Any = y) -> None:
                    for w in dist.batch_isend_irecv([dist.P2POp(dist.isend, x, peer), dist.P2POp(dist.irecv, y, src)]):
                        w.wait()
            keep.append((x, y))
            items.append(((op, name, n * 2 * (p if op == "allgather" else 1)), fn))
    for name, (s, h, d) in shapes.items():
        if s % p or h % p:
            continue
        sl = s // p
        x = torch.randn(1, sl, h, d, device=device).to(torch.bfloat16)
        o = torch.randn(1, s, h // p, d, device=device).to(torch.bfloat16)
        keep.append((x, o))

        def permutes(x: Any = x, o: Any = o) -> None:
            # the four layout copies of one Ulysses call's input (q, k or v) and output exchange, collectives left out
            heads_unpack(heads_pack(x, p))
            seq_unpack(seq_pack(o, p))

        items.append((("permute", name, sl * h * d * 2), permutes))
    big = torch.randn((256 << 20) if device.type == "cuda" else (1 << 16), device=device).to(torch.bfloat16)
    dst = torch.empty_like(big)
    keep.append((big, dst))
    items.append((("copy", "", big.numel() * 2), lambda: dst.copy_(big)))
    log(f"interconnect: capturing {len(items)} operations")
    for key, fn in items:
        timer.prepare(key, fn, collective=key[0] in OPS)
    res: dict[Any, list[float]] = {key: [] for key, _ in items}
    from fgsim.provenance import ClockSampler

    with ClockSampler(period_s=0.5) as clk:
        for rd in range(rounds):
            for key, fn in items:
                res[key].append(timer(key, fn))
            log(f"interconnect: round {rd + 1}/{rounds}")
    clocks = clk.summary()
    timer.release()
    rows = []
    for key, _ in items:
        op, name, nbytes = key
        st = stats(res[key])
        reps = timer.reps.get(key, 1)
        moved = (nbytes * (p - 1) / p if op in ("alltoall", "allgather") else
                 nbytes if op == "p2p" else 8 * nbytes if op == "permute" else 2 * nbytes)
        if op == "permute":  # four copies timed together: per copy
            st = {k: (v / 4 if k != "spread" else v) for k, v in st.items()}
            moved = 2 * nbytes
        rows.append({"op": op, "shape": name, "bytes": nbytes, "P": p, "rank": rank, **st, "rounds": rounds,
                     "reps": reps, "method": timer.method[key], "busbw_gbs": moved / st["median_s"] / 1e9,
                     "sm_clock_mhz": clocks.get("sm_clock_mhz", ""), "mem_clock_mhz": clocks.get("mem_clock_mhz", "")})
    del keep
    return rows


# --------------------------------------------------------------------------------------------------------------------
# fit and GPU description


def fit_line(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(intercept s, slope s/byte) of t ≈ a + b·x, least squares weighted by 1/t (relative error), a ≥ 0."""
    w = 1.0 / np.maximum(t, 1e-9)
    a_mat = np.stack([np.ones_like(x), x], axis=1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(a_mat, t * w, rcond=None)
    if a < 0:
        b = float(np.sum(w * w * x * t) / np.sum(w * w * x * x))
        a = 0.0
    if b <= 0:  # times that do not grow with size (noise at small sizes): the largest point's rate, no latency
        a, b = 0.0, float(t[np.argmax(x)] / x.max())
    return float(a), float(b)


def slower_rank(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], float]:
    """(op, bytes) -> the slower rank's median seconds."""
    by: dict[tuple[str, int], float] = {}
    for r in rows:
        key = (str(r["op"]), int(float(r["bytes"])))
        by[key] = max(by.get(key, 0.0), float(r["median_s"]))
    return by


def fit_link(rows: Sequence[dict[str, Any]], link_name: str) -> tuple[Link, list[dict[str, Any]]]:
    """Link constants from measured rows (every rank's; the slower rank's median per size), and per-point fit
    rows (measured vs line) for the record."""
    ps = {int(float(r["P"])) for r in rows}
    if len(ps) != 1:
        raise FgsimError(f"interconnect rows mix GPU counts {sorted(ps)}")
    p = ps.pop()
    by = slower_rank(rows)
    fits: dict[str, tuple[float, float]] = {}
    out: list[dict[str, Any]] = []
    for op in (*OPS, "copy", "permute"):
        pts = sorted((b, t) for (o, b), t in by.items() if o == op)
        if op in OPS and len(pts) < 2:
            raise FgsimError(f"interconnect rows have fewer than 2 sizes for {op}")
        if not pts:
            raise FgsimError(f"interconnect rows have no {op} measurement")
        x = np.array([b for b, _ in pts], float)
        t = np.array([t for _, t in pts], float)
        moved = x * (p - 1) / p if op in ("alltoall", "allgather") else (x if op == "p2p" else 2 * x)
        if op in OPS:
            a, b = fit_line(moved, t)
        else:  # copies: a rate, no latency (bytes read + written per second, the largest size)
            a, b = 0.0, float(t[-1] / moved[-1])
        fits[op] = (a, b)
        for (bb, tt), mv in zip(pts, moved, strict=True):
            out.append({"op": op, "bytes": bb, "bytes_moved": mv, "measured_s": tt, "fit_s": a + b * mv,
                        "fit_err": (a + b * mv) / tt - 1, "fit_latency_us": a * 1e6, "fit_gbs": 1 / b / 1e9})
    lat = float(np.mean([fits["alltoall"][0], fits["allgather"][0]]))
    tables = {op: tuple(sorted((float(b), t) for (o, b), t in by.items() if o == op)) for op in (*OPS, "permute")}
    perm = sorted((b, t) for (o, b), t in by.items() if o == "permute")
    perm_rate = float(np.median([2 * b / t for b, t in perm])) / 1e9
    link = Link(alltoall_busbw_gbs=1 / fits["alltoall"][1] / 1e9, allgather_busbw_gbs=1 / fits["allgather"][1] / 1e9,
                p2p_bw_gbs=1 / fits["p2p"][1] / 1e9, latency_us=lat * 1e6, copy_gbs=1 / fits["copy"][1] / 1e9,
                link=link_name, source="", permute_copy_gbs=perm_rate, tables=tables, table_degree=p)
    return link, out


def interconnect_block(link: Link, source: str) -> dict[str, Any]:
    """The JSON object of a GPU description's ``interconnect`` block."""
    return {"link": link.link, "alltoall_busbw_gbs": round(link.alltoall_busbw_gbs, 1),
            "allgather_busbw_gbs": round(link.allgather_busbw_gbs, 1), "p2p_bw_gbs": round(link.p2p_bw_gbs, 1),
            "latency_us": round(link.latency_us, 1), "copy_gbs": round(link.copy_gbs, 0),
            "permute_copy_gbs": round(link.permute_copy_gbs, 0), "table_degree": link.table_degree,
            "tables": {op: [[int(b), float(f"{t:.6g}")] for b, t in pts] for op, pts in link.tables.items()},
            "source": source}


def write_interconnect(gpu_path: Path, link: Link, source: str, out: Path | None = None) -> Path:
    """Replace the ``interconnect`` block of the GPU description ``gpu_path`` (other fields and their text
    untouched), writing ``out`` (default: in place)."""
    from fgsim.fileio import write_text_atomic

    text = gpu_path.read_text()
    inner = "\n".join(json.dumps({"interconnect": interconnect_block(link, source)}, indent=2,
                                 ensure_ascii=False).splitlines()[1:-1])
    new, n = re.subn(r'\n  "interconnect": \{.*?\n  \}', lambda _m: "\n" + inner, text, count=1, flags=re.S)
    if n != 1:
        raise FgsimError(f"{gpu_path}: no interconnect block to replace")
    json.loads(new)
    dest = out or gpu_path
    write_text_atomic(dest, new)
    return dest


def read_rows(paths: Sequence[Path]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for p in paths:
        with open(p, newline="") as f:
            got = [r for r in csv.DictReader(f) if r.get("op") in (*OPS, "copy", "permute")]
        if not got:
            raise FgsimError(f"--from-csv: {p}: no interconnect measurement rows (op = alltoall, allgather, ...)")
        rows += got
    return rows


def _methods(rows: Sequence[dict[str, Any]], ops: Sequence[str]) -> str:
    ms = {str(r.get("method", "")) for r in rows if r.get("op") in ops}
    if ms and all(m.startswith("CUDA graph") for m in ms):
        return "CUDA-graph replay"
    if ms and all("eager" in m for m in ms):
        why = "captured NCCL collectives did not complete on this machine" if any(
            "FGSIM_EAGER_COLLECTIVES" in m for m in ms) else "capture failed"
        return f"eager, CUDA events ({why})"
    return "CUDA-graph replay where the capture worked, else eager with CUDA events"


def provenance(rows: Sequence[dict[str, Any]], csv_name: str) -> str:
    r0 = rows[0]
    code = "".join(f", {k} {r0[k]}" for k in ("commit", "source_digest") if r0.get(k))  # the measured code
    return (f"fgsim calibrate --interconnect on {r0.get('P')} x {r0.get('gpu_name', '')} ({str(r0.get('date', ''))[:10]}, "
            f"NCCL {r0.get('nccl', '')}, NVLS off; {csv_name}{code}): collectives {_methods(rows, OPS)}, copies "
            f"{_methods(rows, ('copy', 'permute'))}; slower rank's median of interleaved rounds. tables = measured "
            "(bytes, s) at table_degree GPUs (all-to-all: per-rank buffer; all-gather: gathered output; p2p: one "
            "send/recv; permute: one Ulysses layout copy of that tensor), used inside their range; outside, t = "
            "latency + bytes moved per rank (nccl-tests bus-bandwidth convention, doc/PERFORMANCE.md) / bandwidth; "
            "copy_gbs = a plain 512 MiB device-to-device copy (bytes read + written), the rate of the ring's query "
            "padding (the fused LSE merges stream at the cost-model calibration's measured HBM bandwidth)")


# --------------------------------------------------------------------------------------------------------------------
# the command


def run_interconnect(args: Any) -> int:
    """``fgsim calibrate --interconnect`` (measure under torchrun, or ``--from-csv``)."""
    from fgsim.hardware import load_gpu

    if args.from_csv:
        missing = [f for f in args.from_csv if not Path(f).is_file()]
        if missing:
            raise FgsimError(f"--from-csv: {missing[0]}: no such file")
        rows: list[dict[str, Any]] = list(read_rows([Path(f) for f in args.from_csv]))
        csv_name = ", ".join(str(f) for f in args.from_csv)
    else:
        rows, csv_name = _measure(args)
        if rows is None:  # not rank 0
            return 0
    gpu_name = args.gpu or _gpu_key(rows[0].get("gpu_name", ""))
    gpu = load_gpu(gpu_name)
    from fgsim.parallel import link_for

    try:
        name = link_for(gpu).link
    except FgsimError:
        name = ""
    link, fit_rows = fit_link(rows, name)
    dest = write_interconnect(Path(gpu.path), link, provenance(rows, csv_name), Path(args.out) if args.out else None)
    print(f"interconnect of {gpu.name} written to {dest}: all-to-all {link.alltoall_busbw_gbs:.0f} GB/s, all-gather "
          f"{link.allgather_busbw_gbs:.0f} GB/s, p2p {link.p2p_bw_gbs:.0f} GB/s bus bandwidth, latency "
          f"{link.latency_us:.1f} us; copy {link.copy_gbs:.0f} GB/s, permute copy {link.permute_copy_gbs:.0f} GB/s "
          f"({link.table_degree} GPUs)")
    for r in fit_rows:
        print(f"  {r['op']:<9} {int(r['bytes']):>12,d} B  {r['measured_s'] * 1e6:>10.1f} us  "
              f"line {r['fit_err'] * 100:+6.1f} %")
    return 0


def _gpu_key(name: str) -> str:
    """The GPU description key (``h200``) named in a device name such as ``NVIDIA H200``; FgsimError if none."""
    from fgsim.hardware import list_gpus

    low = name.lower()
    hits = sorted((k for k in list_gpus() if k in low), key=len, reverse=True)
    if not hits:
        raise FgsimError(f"no GPU description matches the device name {name!r}; pass --gpu NAME "
                         f"(known: {', '.join(list_gpus())})")
    return hits[0]


def _measure(args: Any) -> tuple[list[dict[str, Any]] | None, str]:
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        raise FgsimError("calibrate --interconnect needs torch with NCCL on GPUs (torchrun); use --from-csv to "
                         "refit on a CPU") from None
    if not torch.cuda.is_available() or "LOCAL_RANK" not in os.environ:
        raise FgsimError("calibrate --interconnect measures under torchrun on GPUs: NCCL_NVLS_ENABLE=0 torchrun "
                         "--nproc-per-node P -m fgsim calibrate --interconnect (or --from-csv CSV on a CPU)")
    if os.environ.get("NCCL_NVLS_ENABLE") != "0":
        raise FgsimError("set NCCL_NVLS_ENABLE=0 (NVLink multicast must stay off)")
    lr = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(lr)
    dev = torch.device("cuda", lr)
    dist.init_process_group("nccl", device_id=dev)
    rank, p = dist.get_rank(), dist.get_world_size()
    if p < 2:
        dist.destroy_process_group()
        raise FgsimError("calibrate --interconnect needs at least 2 GPUs (torchrun --nproc-per-node P, P >= 2)")
    from fgsim.provenance import environment

    env = environment()
    env.update(nccl=".".join(map(str, torch.cuda.nccl.version())), nvls=os.environ.get("NCCL_NVLS_ENABLE", ""))
    t0 = time.time()

    def log(msg: str) -> None:
        if rank == 0:
            print(f"[{time.time() - t0:6.1f}s] {msg}", flush=True)

    rows = measure(dev, rank, p, rounds=max(3, int(args.rounds)), log=log)
    allr: list[Any] = [None] * p
    dist.all_gather_object(allr, rows)
    dist.destroy_process_group()
    if rank != 0:
        return None, ""
    rows = [{**{k: env.get(k, "") for k in CSV_FIELDS}, **r} for rr in allr for r in rr]
    gkey = args.gpu or env.get("gpu_key") or _gpu_key(env.get("gpu_name", ""))
    date = _dt.date.today().isoformat()
    out_csv = Path(args.csv) if args.csv else REPO / "validation" / "results" / f"interconnect-{gkey}x{p}-{date}.csv"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    from fgsim.fileio import write_text_atomic

    write_text_atomic(out_csv, buf.getvalue())
    print(f"interconnect measurements written to {out_csv}")
    return rows, out_csv.name
