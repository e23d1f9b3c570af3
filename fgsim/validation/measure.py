"""GPU measurement of validation / calibration cases (needs torch, triton and ``fgattn`` on ``PYTHONPATH``).

Timing: every kernel of a case is captured once in a CUDA graph of ``reps`` back-to-back calls (``reps`` chosen
so a replay lasts about ``target_ms``) and the case's kernels are replayed in interleaved rounds (fg, block, dense,
fg, ...); a row records the median per-call time over the rounds and the spread (max - min) / median. Cases on
an SM partition run in a CUDA green context (``torch.cuda.green_contexts``) and are timed with CUDA events around
``reps`` back-to-back launches on the partition's stream (GPU time dominates: the partitions make every call long).
Each row records the compiled kernel's registers and shared memory (read off Triton's compiled kernel), the
clocks sampled with nvidia-smi while the GPU worked, the effective SM clock of its timed rounds (``sm_mhz_eff``: a
probe right before and right after each timed replay on the same stream, ``fgsim.validation.sm_clock``; empty on the
CPU) and the environment (``fgsim.provenance``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.provenance import ENV_KEYS, ClockSampler, environment
from fgsim.validation.cases import Case, case_mask, case_order

#: the NVML clock column's end in the environment columns: the effective SM clock (``sm_mhz_eff``, MHz, measured on
#: the SMs by ``fgsim.validation.sm_clock`` around the row's timed rounds; session 15, M6) is written beside it
_ENV_SM = [k for k in ENV_KEYS if k != "clock_samples"].index("sm_clock_mhz") + 1
RESULT_FIELDS = (
    "kind", "case_id", "split", "axis", "structure", "n_tokens", "heads", "head_dim", "block_m", "density", "seed",
    "trace", "pass_index", "layer", "dtype", "sm_count", "req_block_n", "req_num_stages", "req_num_warps",
    "req_persistent", "req_programs_per_sm", "req_options", "kernel",
    "gran_n", "block_n", "num_warps", "num_stages", "launch_extra", "launch_source", "n_regs", "shared", "n_spills",
    "loop_ldst", "loop_ldst_bytes", "loop_mma", "loop_instr", "loop_mma_wait", "loop_mufu", "loop_fp32", "producer_loop_instr", "kept_density", "measured_ms", "spread_pct", "reps", "status", "bench", "micro", "micro_args",
    *[k for k in ENV_KEYS if k != "clock_samples"][:_ENV_SM], "sm_mhz_eff",
    *[k for k in ENV_KEYS if k != "clock_samples"][_ENV_SM:],
)
#: the tile loop's SASS figures a results row records (fgsim.validation.sass.FIELDS)
SASS_FIELDS = ("loop_ldst", "loop_ldst_bytes", "loop_mma", "loop_instr", "loop_mma_wait", "loop_mufu", "loop_fp32",
               "producer_loop_instr")
#: SASS figures added after the first rows were recorded: absent (not 0) in rows that lack them
#: (``producer_loop_instr``: Gluon warp-specialized kernels only, ``fgsim.validation.sass.gluon_loop_traffic``)
LATER_SASS_FIELDS = ("loop_mma_wait", "loop_mufu", "loop_fp32", "producer_loop_instr")
_TORCH_DT = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def _is_gpu() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") != "1"


# ---------------------------------------------------------------------------------------------------------
# compiled-kernel resources
# ---------------------------------------------------------------------------------------------------------


def _compiled_kernels() -> dict[int, Any]:
    """id -> CompiledKernel of every compiled variant of fgattn's kernels (one program per row and, where the
    kernels have it, the persistent one; the Gluon FG forms of ``fgattn.gluon_fg``, see :func:`is_gluon_kernel`)
    in this process."""
    try:
        from fgattn import attention  # type: ignore[import-not-found]
    except ImportError:
        return {}
    fns = [getattr(attention, name, None) for name in ("_attn_fwd", "_attn_fwd_persistent")]
    try:
        from fgattn import gluon_fg  # type: ignore[import-not-found]

        fns += [getattr(gluon_fg, name, None) for name in GLUON_KERNELS]
    except ImportError:  # a Triton without Gluon: fgattn runs every entry's tl kernel
        pass
    try:  # the dense / block entries' Gluon contig form (session 14)
        from fgattn import gluon_contig  # type: ignore[import-not-found]

        fns += [getattr(gluon_contig, name, None) for name in GLUON_CONTIG_KERNELS]
    except ImportError:
        pass
    out: dict[int, Any] = {}
    for fn in fns:
        caches = getattr(fn, "device_caches", None) or {}
        for v in caches.values():
            cache = v[0] if isinstance(v, tuple) else v
            if isinstance(cache, dict):
                for k in cache.values():
                    out[id(k)] = k
    return out


#: the Gluon FG kernels of ``fgattn.gluon_fg`` (forms one_row, persistent, ws, ws2)
GLUON_KERNELS = ("_fg_gluon_row", "_fg_gluon_persistent", "_fg_gluon_ws", "_fg_gluon_ws2")
#: the Gluon contig kernel of ``fgattn.gluon_contig`` (the dense / block D=128 M=128 entries' form contig)
GLUON_CONTIG_KERNELS = ("_contig_ws2",)


def is_gluon_kernel(kern: Any) -> bool:
    """A compiled kernel of one of :data:`GLUON_KERNELS` or :data:`GLUON_CONTIG_KERNELS` (its SASS is read by the
    Gluon reader)."""
    name = str(getattr(kern, "name", "") or getattr(getattr(kern, "metadata", None), "name", "") or "")
    return any(name == g or name.startswith(g + "_") for g in GLUON_KERNELS + GLUON_CONTIG_KERNELS)


def contig_route_config(kern: str, q: Any, cfg: Any, k: Any, v: Any, index: Any) -> Any:
    """The configuration a dense / block call runs: an ``impl: gluon`` entry whose contig route fgattn would not
    take (``fgattn.contig_route``: no Gluon, fp32, ...) is recorded as its tl kernel, so the row prices what ran."""
    if kern == "fg" or getattr(cfg, "impl", "tl") != "gluon":
        return cfg
    try:
        from fgattn.attention import contig_route  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - an fgattn without the contig form runs tl
        return cfg.tl_config() if hasattr(cfg, "tl_config") else cfg
    route = contig_route(q, cfg, k=k, v=v, block_index=index)[0]
    return cfg if route == "gluon" else cfg.tl_config()


_SASS_POOL: Any = None


def _resources_of(kern: Any) -> tuple[int, int, int, Any]:
    """(registers, shared bytes, spilled registers, a future of the tile loop's SASS figures) of a compiled kernel;
    the disassembly runs in a thread beside the timing (``cuobjdump`` is a subprocess)."""
    global _SASS_POOL
    from concurrent.futures import ThreadPoolExecutor

    from fgsim.validation.sass import kernel_traffic

    if _SASS_POOL is None:
        _SASS_POOL = ThreadPoolExecutor(max_workers=4)
    regs = int(getattr(kern, "n_regs", 0) or 0)
    md = getattr(kern, "metadata", None)
    shared = int(getattr(md, "shared", 0) or getattr(kern, "shared", 0) or 0)
    return (regs, shared, int(getattr(kern, "n_spills", 0) or 0),
            _SASS_POOL.submit(kernel_traffic, kern, is_gluon_kernel(kern)))


# ---------------------------------------------------------------------------------------------------------
# SM partitions
# ---------------------------------------------------------------------------------------------------------

_GC: dict[int, Any] = {}


@contextlib.contextmanager
def sm_partition(n_sms: int) -> Iterator[None]:
    """Run the block's CUDA work on a green context of ``n_sms`` SMs (0: the whole GPU)."""
    if not n_sms:
        yield
        return
    import torch
    from torch.cuda.green_contexts import GreenContext

    if n_sms not in _GC:
        _GC[n_sms] = GreenContext.create(num_sms=n_sms, device_id=0)
    ctx = _GC[n_sms]
    with _limit_sms(n_sms):  # persistent kernels size their grid from the partition, not the device's SM count
        if hasattr(ctx, "Stream"):
            with torch.cuda.stream(ctx.Stream()):
                yield
        else:
            ctx.set_context()
            try:
                yield
            finally:
                ctx.pop_context()


def _limit_sms(n_sms: int) -> contextlib.AbstractContextManager[Any]:
    """``fgattn.limit_sms(n)`` (persistent programs: G = programs_per_sm x n) when fgattn has it; else nothing."""
    try:
        import fgattn  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - measurement needs fgattn anyway
        return contextlib.nullcontext()
    fn = getattr(fgattn, "limit_sms", None)
    return fn(n_sms) if fn is not None else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------------------


#: GPU spin (cycles) queued per timed call ahead of an events-timed (no graph) round: 0.2 ms at 2 GHz
HOLD_CYCLES_PER_CALL = 400_000


class GraphTimer:
    """A call captured ``reps`` times in one CUDA graph; :meth:`once` replays it and returns ms per call."""

    def __init__(self, fn: Any, target_ms: float, events_only: bool = False, hold_gpu: bool = True,
                 meter: Any = None) -> None:
        import torch

        self.fn = fn
        self.hold_gpu = hold_gpu
        self.meter = meter  # a fgsim.validation.sm_clock.ClockMeter: probes around every timed replay
        fn()  # compile / warm
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        est = max(s.elapsed_time(e), 1e-3)
        self.reps = int(min(200, max(2, round(target_ms / est))))
        self.graph = None
        if not events_only:
            g = torch.cuda.CUDAGraph()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                fn()
            torch.cuda.current_stream().wait_stream(stream)
            with torch.cuda.graph(g, stream=stream):
                for _ in range(self.reps):
                    fn()
            torch.cuda.synchronize()
            self.graph = g
            self.graph.replay()  # warm replay
            torch.cuda.synchronize()

    def once(self) -> float:
        import torch

        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if self.graph is not None:
            if self.meter is not None:
                self.meter.before()
            s.record()
            self.graph.replay()
            e.record()
        else:
            # no graph (green contexts): keep the GPU busy while the host enqueues the timed calls, so the events
            # time GPU work rather than the host's launch path (a spin of ~0.2 ms per call ahead of the start)
            if self.hold_gpu:
                try:
                    torch.cuda._sleep(int(HOLD_CYCLES_PER_CALL * self.reps))
                except (AttributeError, RuntimeError):  # pragma: no cover - an older torch: plain events
                    self.hold_gpu = False
            if self.meter is not None:
                self.meter.before()
            s.record()
            for _ in range(self.reps):
                self.fn()
            e.record()
        if self.meter is not None:
            self.meter.after()
        torch.cuda.synchronize()
        return s.elapsed_time(e) / self.reps


def _cpu_time(fn: Any) -> float:
    fn()
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


# ---------------------------------------------------------------------------------------------------------
# measuring cases
# ---------------------------------------------------------------------------------------------------------


#: top-level launch options an ``impl: gluon`` entry's Gluon form reads (its ``impl``, its knobs ``gluon``, ``lpt``:
#: ``fgattn.attention._gluon_index``); every other option (``tail_branch``, ``exp_poly``, ``maxnreg``, ...) only the
#: entry's tl kernel reads
GLUON_READ_OPTIONS = ("impl", "gluon", "lpt")


def _config(kern: str, q: Any, case: Case) -> Any:
    """The launch configuration a case's kernel runs with: the table's entry, with the case's overrides. A launch
    what-if (BLOCK_N / stages / warps / persistent programs) of an ``impl: gluon`` entry, an option override the
    Gluon form does not read (not in :data:`GLUON_READ_OPTIONS`) without an ``impl``, or the option override
    ``{"impl": "tl"}``, is the entry's tl kernel (``LaunchConfig.tl_config``: the Gluon form has one fixed tile
    and none of the tl options)."""
    from fgattn.attention import resolve_config  # type: ignore[import-not-found]

    cfg = resolve_config(kern, q, case.block_m, 1)
    if case.overridden:
        over = case.option_overrides()
        over.pop("order", None)  # the index's row order (case_order): how the harness builds the index, not an option
        what_if = bool(case.block_n or case.num_stages or case.num_warps or case.persistent >= 0
                       or case.programs_per_sm)
        # an option what-if the Gluon form does not read (tail_branch, exp_poly, maxnreg, ...: tl options) is a
        # what-if of the entry's tl kernel too (session 16: c-072 / c-075 / c-090 / c-091 timed the Gluon entry)
        what_if = what_if or any(k not in GLUON_READ_OPTIONS for k in over)
        if over.get("impl") == "tl" or (what_if and "impl" not in over):
            over.pop("impl", None)
            cfg = cfg.tl_config() if hasattr(cfg, "tl_config") else cfg
        extra = dict(cfg.extra)
        if case.persistent >= 0:
            extra["persistent"] = bool(case.persistent)
            if case.persistent:  # persistent programs exclude one program per row (fgattn's one_row option)
                extra["one_row"] = False
            if case.persistent == 2:  # persistent programs with a row loop around the pipelined tile loop
                extra["flatten"] = False
        if case.programs_per_sm:
            extra["programs_per_sm"] = int(case.programs_per_sm)
        extra.update(over)  # e.g. tail_branch off / maxnreg none: a twin of the entry's tile
        cfg = replace(cfg, block_n=case.block_n or cfg.block_n, num_stages=case.num_stages or cfg.num_stages,
                      num_warps=case.num_warps or cfg.num_warps, extra=extra,
                      source=cfg.source + " (validation override)")
    return cfg


def measure_cases(cases: Sequence[Case], out_csv: str | os.PathLike[str], *, rounds: int = 3,
                  target_ms: float = 2.0, progress: bool = True, clocks: ClockSampler | None = None,
                  env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Time every (case, kernel); append rows to ``out_csv`` (written and flushed row by row)."""
    import torch
    from fgattn import (  # type: ignore[import-not-found]
        block_index_from_mask,
        block_sparse_attention,
        build_index,
        dense_attention,
        fg_attention,
    )

    gpu = _is_gpu()
    dev = "cuda" if gpu else "cpu"
    env = env or environment()
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    rows: list[dict[str, Any]] = []
    res_by_cfg: dict[str, tuple[int, int, int, Any]] = {}
    t_start = time.time()
    fields: Sequence[str] = RESULT_FIELDS
    if not new:  # appending: keep the file's own columns (one written before a column was added stays aligned)
        with out.open(newline="") as fh:
            fields = next(csv.reader(fh), None) or RESULT_FIELDS
    with out.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        for ci, case in enumerate(cases):
            mark = clocks.mark() if clocks else 0
            mark_timed = mark
            try:
                mask = case_mask(case)
            except Exception as exc:  # noqa: BLE001 - a broken case is recorded, the run goes on
                print(f"case {case.case_id}: mask failed: {exc}", flush=True)
                continue
            kept = float(mask.mean())
            dt = getattr(torch, _TORCH_DT[case.dtype]) if gpu else torch.float32
            g = torch.Generator(device="cpu").manual_seed(case.seed & 0x7FFFFFFF)
            shape = (1, case.heads, case.n_tokens, case.head_dim)
            timers: list[tuple[str, Any, Any, str]] = []
            try:
                part = sm_partition(case.sm_count if gpu else 0)
                part.__enter__()
            except Exception as exc:  # noqa: BLE001 - no green context: the case is skipped, the run goes on
                print(f"case {case.case_id}: no SM partition of {case.sm_count}: {exc}", flush=True)
                continue
            try:
                q, k, v = (torch.randn(shape, generator=g, dtype=torch.float32).to(dev, dt) for _ in range(3))
                mt = torch.from_numpy(mask).to(dev)
                lpt = case_order(case) == "lpt"
                for kern in case.kernels:
                    cfg = _config(kern, q, case)
                    before = set(_compiled_kernels())
                    try:
                        if kern == "fg":
                            idx = build_index(mt, block_m=case.block_m, gran_n=1, order=lpt)
                            fn = _partial(fg_attention, q, k, v, idx, block_m=case.block_m, config=cfg)
                        elif kern == "block":
                            idx = block_index_from_mask(mt, block_m=case.block_m, n_keys=case.n_tokens)
                            fn = _partial(block_sparse_attention, q, k, v, idx, block_m=case.block_m, config=cfg)
                            cfg = contig_route_config(kern, q, cfg, k, v, idx) if gpu else cfg
                        else:
                            fn = _partial(dense_attention, q, k, v, block_m=case.block_m, config=cfg)
                            cfg = contig_route_config(kern, q, cfg, k, v, None) if gpu else cfg
                        tm = GraphTimer(fn, target_ms, events_only=bool(case.sm_count),
                                        meter=_meter(case.sm_count)) if gpu else fn
                        status = "ok"
                    except Exception as exc:  # noqa: BLE001 - out of resources, compile error: recorded
                        tm, status = None, f"does not launch: {type(exc).__name__}: {str(exc)[:120]}"
                    new_k = [kk for i, kk in _compiled_kernels().items() if i not in before]
                    ck = _cfg_key(cfg, case.dtype) + ("/lpt" if lpt and kern == "fg" else "")
                    if new_k:
                        res_by_cfg[ck] = _resources_of(new_k[-1])
                    timers.append((kern, cfg, tm, status))
                times: dict[str, list[float]] = {kern: [] for kern, _, _, _ in timers}
                mark_timed = clocks.mark() if clocks else 0  # the clock while the timed rounds ran (session 14)
                for _r in range(max(1, rounds)):
                    for kern, _cfg, tm, _st in timers:
                        if tm is not None:
                            times[kern].append(tm.once() if gpu else _cpu_time(tm))
            finally:
                part.__exit__(None, None, None)
            smry = clocks.summary(mark_timed) if clocks else {}
            if clocks and not smry.get("sm_clock_mhz"):  # no sample while the rounds ran: the case's whole window
                smry = clocks.summary(mark)
            for kern, cfg, tm, status in timers:
                ts = np.array(times[kern]) if times[kern] else np.array([np.nan])
                med = float(np.median(ts))
                ck = _cfg_key(cfg, case.dtype) + ("/lpt" if lpt and kern == "fg" else "")
                regs, shared, spills, fut = res_by_cfg.get(ck, (0, 0, 0, None))
                try:
                    traffic = fut.result() if fut is not None else {}
                except Exception:  # noqa: BLE001 - no SASS figures: the row records none
                    traffic = {}
                bench = ((f"cuda-graph of {tm.reps} calls, {rounds} interleaved rounds, median" if tm.graph is not None
                          else f"cuda events around {tm.reps} back-to-back calls on a green context of "
                               f"{case.sm_count} SMs" + (" (GPU held busy while the host enqueued them)"
                                                         if tm.hold_gpu else "")
                               + f", {rounds} interleaved rounds, median")
                         if gpu and tm is not None else ("cpu interpreter wall time (not a GPU measurement)"
                                                          if tm is not None else ""))
                row = {"kind": "kernel", "case_id": case.case_id, "split": case.split, "axis": case.axis,
                       "structure": case.structure, "n_tokens": case.n_tokens, "heads": case.heads,
                       "head_dim": case.head_dim, "block_m": case.block_m, "density": case.density, "seed": case.seed,
                       "trace": case.trace, "pass_index": case.pass_index, "layer": case.layer, "dtype": case.dtype,
                       "sm_count": case.sm_count, "req_block_n": case.block_n, "req_num_stages": case.num_stages,
                       "req_num_warps": case.num_warps, "req_persistent": case.persistent,
                       "req_programs_per_sm": case.programs_per_sm, "req_options": case.options, "kernel": kern, "gran_n": cfg.gran_n, "block_n": cfg.block_n,
                       "num_warps": cfg.num_warps, "num_stages": cfg.num_stages,
                       "launch_extra": json.dumps({**cfg.extra, **({"order": "lpt"} if lpt and kern == "fg" else {})},
                                                  sort_keys=True), "launch_source": cfg.source,
                       "n_regs": regs or "", "shared": shared or "", "n_spills": spills if regs else "",
                       **{f: traffic.get(f, "") for f in SASS_FIELDS},
                       "kept_density": round(kept, 6),
                       "measured_ms": "" if tm is None else med,
                       "spread_pct": "" if tm is None else float((ts.max() - ts.min()) / med * 100),
                       "reps": getattr(tm, "reps", ""), "status": status, "bench": bench, **env, **smry,
                       "sm_mhz_eff": _eff_mhz(tm)}
                w.writerow(row)
                rows.append(row)
            fh.flush()
            del mask, mt, q, k, v
            if progress:
                done = ", ".join(f"{r['kernel']} {float(r['measured_ms']):.4f}" if r["measured_ms"] != "" else
                                 f"{r['kernel']} -" for r in rows[-len(timers):])
                print(f"[{ci + 1}/{len(cases)} {time.time() - t_start:5.0f}s] {case.case_id} {case.axis} "
                      f"{case.structure} N={case.n_tokens} H={case.heads} D={case.head_dim} M={case.block_m} "
                      f"{case.dtype} sm={case.sm_count or 'all'}: {done}", flush=True)
    return rows


def _meter(sm_count: int) -> Any:
    """A :class:`fgsim.validation.sm_clock.ClockMeter` over the row's SMs (an SM partition's, else the device's);
    None where the probe cannot run (a note once; the row's ``sm_mhz_eff`` stays empty)."""
    global _METER_NOTE
    from fgsim.validation.sm_clock import ClockMeter

    try:
        return ClockMeter(sm_count or None)
    except Exception as exc:  # noqa: BLE001 - no probe: the timing goes on without the column
        if not _METER_NOTE:
            print(f"sm_mhz_eff not recorded: {type(exc).__name__}: {str(exc)[:160]}", flush=True)
            _METER_NOTE = True
        return None


_METER_NOTE = False


def _eff_mhz(tm: Any) -> str:
    """The timed rounds' effective SM clock (MHz, one decimal) of a GraphTimer with a meter, else ''."""
    from fgsim.validation.sm_clock import format_mhz

    meter = getattr(tm, "meter", None)
    if meter is None:
        return ""
    try:
        return format_mhz(meter.mhz())
    except Exception:  # noqa: BLE001 - unreadable probe records: no clock, the row stays
        return ""


def _partial(fn: Any, *a: Any, **kw: Any) -> Any:
    import functools

    return functools.partial(fn, *a, **kw)


def _cfg_key(cfg: Any, dtype: str) -> str:
    ex = cfg.extra
    return (f"{cfg.kernel}/{dtype}/d{cfg.head_dim}/m{cfg.block_m}/bn{cfg.block_n}/w{cfg.num_warps}/s{cfg.num_stages}/"
            f"{json.dumps(ex, sort_keys=True)}")


#: tile-loop local-memory traffic of configurations measured before the harness recorded it: compiled offline
#: with the measuring Triton (validation/costmodel_sass_offline.py); fills rows that lack the SASS columns
OFFLINE_SASS = Path(__file__).resolve().parents[2] / "validation" / "results" / "h200-sass-offline.json"
_OFFLINE: dict[str, dict[str, Any]] | None = None


def offline_sass() -> dict[str, dict[str, Any]]:
    """{config key: {loop_ldst, loop_ldst_bytes, loop_mma, ...}} of the committed offline table ({} if absent)."""
    global _OFFLINE
    if _OFFLINE is None:
        try:
            _OFFLINE = dict(json.loads(OFFLINE_SASS.read_text()).get("configs") or {})
        except (OSError, ValueError):
            _OFFLINE = {}
    return _OFFLINE


def resources_table(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """{model config key: {n_regs, shared, n_spills, loop_ldst, loop_ldst_bytes, loop_mma}} from measured rows (the
    calibration's ``resources``); rows without the SASS columns take them from the offline table when its compile
    spilled as many registers as the measured kernel (:func:`offline_sass`)."""
    from fgsim.model.occupancy import config_key
    from fgsim.validation.report import row_config

    out: dict[str, dict[str, int]] = {}
    off = offline_sass()
    for r in rows:
        if (r.get("kind") or "kernel") == "kernel" and str(r.get("n_regs") or "") not in ("", "0"):
            cfg = row_config({k: str(v) for k, v in r.items()})
            key = config_key(cfg)
            e = {"n_regs": int(float(r["n_regs"])), "shared": int(float(r.get("shared") or 0)),
                 "n_spills": int(float(r.get("n_spills") or 0))}
            if str(r.get("loop_mma") or "") not in ("", "0"):
                e.update({f: int(float(r.get(f) or 0)) for f in SASS_FIELDS if f not in LATER_SASS_FIELDS
                          or str(r.get(f) or "") != ""})
            elif key in off and int(off[key].get("loop_mma", 0)) > 0:
                o = off[key]
                e.update({"loop_mma": int(o["loop_mma"]), "loop_instr": int(o.get("loop_instr", 0))})
                # the offline compile's local-memory traffic scaled by the measured / offline spill counts (none when
                # the measured kernel did not spill); when only the measured kernel spilled, the model estimates it
                # from the measured spill count
                off_sp = int(o.get("offline_spills", 0))
                if off_sp > 0 or e["n_spills"] == 0:
                    sc = e["n_spills"] / off_sp if off_sp else 0.0
                    e.update({f: int(round(int(o.get(f, 0)) * sc)) for f in ("loop_ldst", "loop_ldst_bytes")})
            if "loop_mufu" not in e and key in off and int(off[key].get("sm_loop_mma", 0)) > 0:
                # the softmax's MUFU / FP32 instructions of the offline compile (revision 7), per its own loop_mma
                o = off[key]
                e.update({f: int(o[f]) for f in ("loop_mufu", "loop_fp32", "sm_loop_mma")})
            if "producer_loop_instr" not in e and key in off and int(off[key].get("producer_loop_instr", 0)) > 0:
                e["producer_loop_instr"] = int(off[key]["producer_loop_instr"])  # a Gluon form's producer loop
            out[key] = e
    return out


# ---------------------------------------------------------------------------------------------------------
# parallel precompilation (Triton's on-disk cache then serves the timing process)
# ---------------------------------------------------------------------------------------------------------


def _compile_specs(cases: Sequence[Case]) -> list[tuple[Any, ...]]:
    """Distinct (kernel, D, M, dtype, overrides, N%16==0, H==1) compile specialisations of ``cases``."""
    specs = set()
    for c in cases:
        for k in c.kernels:
            specs.add((k, c.head_dim, c.block_m, c.dtype, c.block_n, c.num_stages, c.num_warps, c.n_tokens % 16 == 0,
                       c.heads == 1, c.persistent, c.programs_per_sm, c.options))
    return sorted(specs)


def _compile_worker(specs: list[tuple[Any, ...]]) -> int:
    """Run one tiny call of each spec (compiles into Triton's disk cache); returns how many launched."""
    sys.path[:0] = [p for p in (".", "kernels") if p not in sys.path]
    import torch

    ok = 0
    for (k, d, m, dtype, bn, st, w, div16, h1, pers, pps, opts) in specs:
        n = 512 if div16 else 504
        h = 1 if h1 else 2
        case = Case("pc", "tiny", "uniform", n, h, d, m, 0.5, 1, kernels=(k,), block_n=bn, num_stages=st,
                    num_warps=w, dtype=dtype, persistent=pers, programs_per_sm=pps, options=opts)
        try:
            from fgattn import (  # type: ignore[import-not-found]
                block_index_from_mask,
                block_sparse_attention,
                build_index,
                dense_attention,
                fg_attention,
            )

            dt = getattr(torch, _TORCH_DT[dtype])
            q = torch.randn(1, h, n, d, device="cuda", dtype=dt)
            mt = torch.from_numpy(case_mask(case)).cuda()
            cfg = _config(k, q, case)
            if k == "fg":
                idx = build_index(mt, block_m=m, gran_n=1, order=case_order(case) == "lpt")
                fg_attention(q, q, q, idx, block_m=m, config=cfg)
            elif k == "block":
                block_sparse_attention(q, q, q, block_index_from_mask(mt, block_m=m, n_keys=n), block_m=m, config=cfg)
            else:
                dense_attention(q, q, q, block_m=m, config=cfg)
            torch.cuda.synchronize()
            ok += 1
        except Exception:  # noqa: BLE001 - a config that does not launch is recorded by the timing pass
            pass
    return ok


def precompile(cases: Sequence[Case], workers: int = 12) -> int:
    """Compile every kernel specialisation the cases need in ``workers`` processes (spawned)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    specs = _compile_specs(cases)
    if not specs or not _is_gpu():
        return 0
    chunks = [specs[i::workers] for i in range(min(workers, len(specs)))]
    t0 = time.time()
    with cf.ProcessPoolExecutor(max_workers=len(chunks), mp_context=mp.get_context("spawn")) as ex:
        n = sum(ex.map(_compile_worker, chunks))
    print(f"precompiled {n}/{len(specs)} kernel specialisations in {time.time() - t0:.0f} s "
          f"({len(chunks)} processes)", flush=True)
    return n
