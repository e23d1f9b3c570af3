"""Per-row SM clocks of the calibration: time calibration cases exactly as ``fgsim calibrate`` does while NVML
samples the SM clock in-process, and record the clock during each row's timed replays (GPU).

    FGSIM_COMMIT=... PYTHONPATH=.:kernels python3 validation/clock_probe.py --out OUT [--cases c-000,c-031]
        [--period-ms 1] [--no-refs]
    python validation/clock_probe.py --summarize PROBE.csv --samples SAMPLES.csv[.gz] --log LOG.txt   (CPU)

Timing is :func:`fgsim.validation.measure.measure_cases` itself (CUDA graph of ``reps`` calls sized to ~2 ms per
replay, 3 interleaved rounds fg / block / dense, median per call), one case at a time, in the calibration list's
order, after the same parallel precompile. :meth:`GraphTimer.once` is wrapped to note the host-clock window of
every timed replay (from just before the replay is enqueued to the synchronize after its end event); a background
thread reads NVML (``nvmlDeviceGetClockInfo`` SM / memory, ``nvmlDeviceGetPowerUsage``, the clock-event reasons)
every ``--period-ms``. Per (case, kernel) the row records the median time and, over its timed windows, the clock
median / min / max of the samples inside them, the time-weighted clock (the clock held piecewise constant from each
sample to the next, integrated over the windows), the power and the power-cap reason's share of samples.
Two reference rows outside the calibration list (``--no-refs`` drops them) extend the range to the heavy shapes
whole generations run: dense H12 N32760 D128 and dense H40 N75600 D128, timed the same way.

``--summarize`` prints the markdown table of validation/MODEL_NOTES.md ('Per-row clocks (probe)') from committed
outputs: per row the timed figures and, from the samples and the run's log (each case's end time), the low-clock
episodes the case owns (:func:`after_row`). NVML refreshes its clock and power readings every ~100 ms, so a row's
own windows can only show the reading left by the last refresh; the controller's answer to a short burst shows in
the readings after it.

Writes OUT/clock-probe.csv (one row per case and kernel, GPU / driver / versions / commit columns) and
OUT/clock-samples.csv (every NVML sample). NVML comes from ``pynvml`` (nvidia-ml-py) when it imports, else from
``libnvidia-ml.so.1`` through ctypes; without either the probe stops before any work (exit 2): nvidia-smi reads the
same library, so it is no fallback.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernels"))

from fgsim.fileio import write_text_atomic  # noqa: E402

#: the default subset of validation/cases/calib.csv: light to heavy, fg / block / dense, M64 / M128, D64 / D128,
#: one- and several-wave grids, launch-config overrides and the serialised twins (calibration order is kept)
DEFAULT_CASES = ("c-000", "c-021", "c-001", "c-003", "c-004", "c-005", "c-008", "c-010", "c-012", "c-019",
                 "c-020", "c-031", "c-032", "c-033", "c-034", "c-035", "c-042", "c-054", "c-058", "c-059",
                 "c-062", "c-063", "c-068", "c-071", "c-075", "c-076")
#: heavy reference shapes outside the calibration list: (case id, heads, tokens), dense, D128, M128, bf16
REFS = (("ref-dense-h12-n32760", 12, 32760), ("ref-dense-h40-n75600", 40, 75600))
KERNEL_OF = {"fg_attention": "fg", "block_sparse_attention": "block", "dense_attention": "dense"}
FIELDS = ("case_id", "split", "structure", "n_tokens", "heads", "head_dim", "block_m", "density", "kernel",
          "req_options", "measured_ms", "spread_pct", "reps", "timed_s", "n_samples", "clock_median_mhz",
          "clock_min_mhz", "clock_max_mhz", "clock_time_weighted_mhz", "kcycles_per_call", "mem_clock_mhz",
          "power_median_w", "power_max_w", "power_cap_share", "status", "bench", "sampler", "period_ms",
          "gpu_name", "driver", "cuda", "torch", "triton", "commit", "date")

#: NVML clock-event reason bits (nvml.h): software power cap, hardware slowdown, software thermal slowdown
POWER_CAP_BITS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


class ProbeError(Exception):
    """Bad input: one line, exit 2, before any work."""


# ---------------------------------------------------------------------------------------------------------------
# pure parts (tested on the CPU)
# ---------------------------------------------------------------------------------------------------------------


def select_cases(all_ids: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """``wanted`` in the calibration list's order; ProbeError naming --cases for an unknown or repeated id."""
    if not wanted:
        raise ProbeError("--cases: no case ids")
    seen: set[str] = set()
    for w in wanted:
        if w not in all_ids:
            raise ProbeError(f"--cases: '{w}' is not in validation/cases/calib.csv")
        if w in seen:
            raise ProbeError(f"--cases: '{w}' given twice")
        seen.add(w)
    return [i for i in all_ids if i in seen]


def clock_stats(samples: Sequence[tuple[float, float, float, float, int]],
                windows: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Clock statistics over timed ``windows`` [(t0, t1) s] from time-sorted NVML ``samples``
    [(t s, sm MHz, mem MHz, power W, reasons)].

    ``clock_time_weighted_mhz``: the SM clock held constant from each sample to the next (the last sample before a
    window gives the clock at its start), integrated over the windows and divided by their length; median / min /
    max are over the samples inside the windows (NaN when none fell inside); ``power_cap_share``: the share of those
    samples with a power / slowdown reason set."""
    for a, b in windows:
        if not b >= a:
            raise ValueError(f"window ({a}, {b}) ends before it starts")
    if any(samples[i][0] > samples[i + 1][0] for i in range(len(samples) - 1)):
        raise ValueError("samples are not sorted by time")
    import bisect

    ts = [s[0] for s in samples]
    inside: list[tuple[float, float, float, float, int]] = []
    total = sum(b - a for a, b in windows)
    integ = 0.0
    covered = 0.0
    for a, b in windows:
        lo, hi = bisect.bisect_right(ts, a), bisect.bisect_right(ts, b)
        inside += [s for s in samples[bisect.bisect_left(ts, a):hi]]
        pts = ([(a, samples[lo - 1][1])] if lo > 0 else []) + [(s[0], s[1]) for s in samples[lo:hi]]
        for j, (t, clk) in enumerate(pts):
            t_next = pts[j + 1][0] if j + 1 < len(pts) else b
            integ += clk * (t_next - t)
            covered += t_next - t
    nan = float("nan")
    sm = sorted(s[1] for s in inside)
    pw = sorted(s[3] for s in inside)

    def med(v: list[float]) -> float:
        if not v:
            return nan
        n = len(v)
        return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])

    return {"timed_s": total, "n_samples": float(len(inside)), "clock_median_mhz": med(sm),
            "clock_min_mhz": sm[0] if sm else nan, "clock_max_mhz": sm[-1] if sm else nan,
            "clock_time_weighted_mhz": integ / covered if covered > 0 else nan,
            "mem_clock_mhz": med(sorted(s[2] for s in inside)),
            "power_median_w": med(pw), "power_max_w": pw[-1] if pw else nan,
            "power_cap_share": (sum(1 for s in inside if s[4] & POWER_CAP_BITS) / len(inside)) if inside else nan}


def rows_csv(rows: Sequence[dict[str, Any]], fields: Sequence[str] = FIELDS) -> str:
    """CSV text of ``rows`` (floats rounded to 6 significant digits; NaN written as empty)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else (f"{v:.6g}" if isinstance(v, float) else v))
                    for k, v in r.items()})
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# NVML sampling (GPU machine)
# ---------------------------------------------------------------------------------------------------------------


def nvml_reader() -> tuple[str, Callable[[], tuple[float, float, float, int]]]:
    """(backend name, read() -> (sm MHz, mem MHz, power W, clock-event reasons)) of GPU 0; ProbeError if none."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            pynvml.nvmlDeviceGetCurrentClocksThrottleReasons

        def read_py() -> tuple[float, float, float, int]:
            return (float(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)),
                    float(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM)),
                    pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0, int(reasons(h)))
        read_py()
        return "pynvml", read_py
    except Exception:  # noqa: BLE001 - no pynvml or no device through it: try the library itself
        pass
    import ctypes

    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError as exc:
        raise ProbeError(f"NVML: libnvidia-ml.so.1 not loadable ({exc}); the probe needs an NVIDIA GPU") from None
    if lib.nvmlInit_v2() != 0:
        raise ProbeError("NVML: nvmlInit_v2 failed")
    handle = ctypes.c_void_p()
    if lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(0), ctypes.byref(handle)) != 0:
        raise ProbeError("NVML: no GPU 0")
    fn_r = getattr(lib, "nvmlDeviceGetCurrentClocksEventReasons", None) or lib.nvmlDeviceGetCurrentClocksThrottleReasons

    def read_c() -> tuple[float, float, float, int]:
        sm, mem, mw, rs = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint(), ctypes.c_ulonglong()
        lib.nvmlDeviceGetClockInfo(handle, 1, ctypes.byref(sm))  # NVML_CLOCK_SM
        lib.nvmlDeviceGetClockInfo(handle, 2, ctypes.byref(mem))  # NVML_CLOCK_MEM
        lib.nvmlDeviceGetPowerUsage(handle, ctypes.byref(mw))
        fn_r(handle, ctypes.byref(rs))
        return float(sm.value), float(mem.value), mw.value / 1000.0, int(rs.value)
    read_c()
    return "ctypes libnvidia-ml", read_c


class Sampler:
    """Background thread appending (perf_counter s, sm MHz, mem MHz, W, reasons) every ``period_s``."""

    def __init__(self, read: Callable[[], tuple[float, float, float, int]], period_s: float) -> None:
        self.read, self.period_s = read, period_s
        self.samples: list[tuple[float, float, float, float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sm, mem, w, rs = self.read()
            self.samples.append((time.perf_counter(), sm, mem, w, rs))
            self._stop.wait(self.period_s)

    def __enter__(self) -> Sampler:
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join(timeout=5)


# ---------------------------------------------------------------------------------------------------------------
# the probe
# ---------------------------------------------------------------------------------------------------------------


def probe(case_ids: Sequence[str], out: Path, period_ms: float, refs: bool,
          nvml: tuple[str, Callable[[], tuple[float, float, float, int]]]) -> int:
    """Time the cases (and the reference rows) with NVML sampling; write OUT's CSVs; returns 0."""
    import torch
    import triton

    from fgsim.provenance import environment
    from fgsim.validation import measure
    from fgsim.validation.cases import Case, load_case_list

    backend, read = nvml
    allc = {c.case_id: c for c in load_case_list("calib")}
    cases = [allc[i] for i in case_ids]
    if refs:
        cases += [Case(cid, "ref", "uniform", n, h, 128, 128, 1.0, 9100000 + h, kernels=("dense",))
                  for cid, h, n in REFS]
    env = environment()
    env["commit"] = os.environ.get("FGSIM_COMMIT", env.get("commit", ""))
    measure.precompile(cases, workers=15)
    windows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    cur = {"case": ""}
    orig_once = measure.GraphTimer.once

    def once(self: Any) -> float:
        fn = getattr(self.fn, "func", None)
        kern = KERNEL_OF.get(getattr(fn, "__name__", ""), "?")
        t0 = time.perf_counter()
        ms = orig_once(self)
        windows.setdefault((cur["case"], kern), []).append((t0, time.perf_counter()))
        return ms

    measure.GraphTimer.once = once  # type: ignore[method-assign]
    tmp_csv = out / "measure-rows.csv"
    rows_out: list[dict[str, Any]] = []
    t_start = time.time()
    with Sampler(read, period_ms / 1000.0) as smp:
        for c in cases:
            cur["case"] = c.case_id
            rows = measure.measure_cases([c], tmp_csv, rounds=3, progress=False, env=env)
            for r in rows:
                st = clock_stats(list(smp.samples), windows.get((c.case_id, r["kernel"]), []))
                ms = float(r["measured_ms"]) if r["measured_ms"] != "" else float("nan")
                rows_out.append({**{k: r.get(k, "") for k in FIELDS}, **st, "measured_ms": ms,
                                 "kcycles_per_call": ms * st["clock_time_weighted_mhz"],
                                 "sampler": f"NVML via {backend}", "period_ms": period_ms,
                                 "commit": env["commit"]})
                print(f"[{time.time() - t_start:5.1f}s] {c.case_id} {r['kernel']:5s} {ms:8.4f} ms  clk med "
                      f"{st['clock_median_mhz']:.0f} min {st['clock_min_mhz']:.0f} tw "
                      f"{st['clock_time_weighted_mhz']:.0f} MHz  n={st['n_samples']:.0f}  "
                      f"P {st['power_median_w']:.0f} W cap {st['power_cap_share']:.2f}", flush=True)
            write_text_atomic(out / "clock-probe.csv", rows_csv(rows_out))
    measure.GraphTimer.once = orig_once  # type: ignore[method-assign]
    write_text_atomic(out / "clock-samples.csv", rows_csv(
        [{"t_s": s[0] - smp.samples[0][0], "sm_mhz": s[1], "mem_mhz": s[2], "power_w": s[3], "reasons": s[4]}
         for s in smp.samples], ("t_s", "sm_mhz", "mem_mhz", "power_w", "reasons")))
    print(f"{len(rows_out)} rows, {len(smp.samples)} NVML samples ({backend}); torch {torch.__version__} "
          f"triton {triton.__version__}; commit {env['commit']}", flush=True)
    return 0


def case_end_times(log_text: str) -> dict[str, float]:
    """{case id: seconds since the timing loop began} from the probe's progress lines ('[  6.1s] c-000 fg ...')."""
    import re

    out: dict[str, float] = {}
    for line in log_text.splitlines():
        m = re.match(r"\[\s*([0-9.]+)s\] (\S+) ", line)
        if m:
            out[m.group(2)] = float(m.group(1))
    return out


def after_row(samples: Sequence[tuple[float, float, int]], ends: dict[str, float],
              tail_s: float = 0.3) -> dict[str, tuple[float, int]]:
    """{case id: (lowest SM clock MHz, samples)} of the low-clock episodes each case owns (NaN, 0 when none).

    An episode is a run of consecutive samples [(t s, MHz, reasons)] below the run's highest clock or with a power /
    slowdown reason set; it belongs to the first case (by end time) that ended no more than ``tail_s`` before the
    episode began: the case running when it began, or the one that had just ended (NVML shows the controller's
    answer to a short burst after the burst)."""
    top = max((x[1] for x in samples), default=0.0)
    episodes: list[list[tuple[float, float, int]]] = []
    cur: list[tuple[float, float, int]] = []
    for x in samples:
        if x[1] < top or x[2] & POWER_CAP_BITS:
            cur.append(x)
        elif cur:
            episodes.append(cur)
            cur = []
    if cur:
        episodes.append(cur)
    order = sorted(ends.items(), key=lambda kv: kv[1])
    out: dict[str, tuple[float, int]] = {cid: (float("nan"), 0) for cid in ends}
    for ep in episodes:
        owner = next((cid for cid, end in order if end + tail_s >= ep[0][0]), None)
        if owner is None:
            continue
        lo, n = out[owner]
        m = min(x[1] for x in ep)
        out[owner] = (m if math.isnan(lo) else min(lo, m), n + len(ep))
    return out


def summarize(probe_csv: Path, samples_csv: Path, log: Path) -> str:
    """The markdown table of MODEL_NOTES' 'Per-row clocks (probe)' from a probe's committed outputs."""
    import gzip

    opener = gzip.open if samples_csv.suffix == ".gz" else open
    with opener(samples_csv, "rt", newline="") as fh:  # type: ignore[operator]
        smp = [(float(r["t_s"]), float(r["sm_mhz"]), int(r["reasons"])) for r in csv.DictReader(fh)]
    with probe_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    ends = case_end_times(log.read_text())
    missing = sorted({r["case_id"] for r in rows} - set(ends))
    if missing:
        raise ProbeError(f"--log: {log} has no progress line for {missing[0]}")
    aft = after_row(smp, ends)
    out = ["| case | kernel | N | H | D | M | density | ms per call | timed ms | NVML samples in the timed windows | "
           "clock median / min / time-weighted (MHz) | spread % | its low-clock episodes: lowest clock (MHz) | "
           "their samples |", "|" + " --- |" * 14]
    for r in rows:
        lo, cap = aft[r["case_id"]]
        med = r["clock_median_mhz"] or "-"
        mn = r["clock_min_mhz"] or "-"
        out.append(f"| {r['case_id']} | {r['kernel']} | {r['n_tokens']} | {r['heads']} | {r['head_dim']} | "
                   f"{r['block_m']} | {r['density']} | {float(r['measured_ms']):.4g} | "
                   f"{float(r['timed_s']) * 1e3:.3g} | {r['n_samples']} | {med} / {mn} / "
                   f"{float(r['clock_time_weighted_mhz']):.0f} | {float(r['spread_pct']):.2g} | "
                   f"{'-' if math.isnan(lo) else f'{lo:.0f}'} | {cap} |")
    r0 = rows[0]
    out.append(f"\n{len(rows)} rows of {probe_csv.name}: {r0['gpu_name']}, driver {r0['driver']}, torch {r0['torch']}, "
               f"triton {r0['triton']}, commit {r0['commit'][:10]}; {r0['bench']} (fgsim calibrate's timing); "
               f"{r0['sampler']} every {r0['period_ms']} ms ({len(smp)} samples in {samples_csv.name}).")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="output folder (GPU measurement)")
    p.add_argument("--summarize", type=Path, help="a probe CSV: print the MODEL_NOTES table (CPU)")
    p.add_argument("--samples", type=Path, help="the probe's NVML samples CSV (.csv or .csv.gz; --summarize)")
    p.add_argument("--log", type=Path, help="the probe's log (case end times; --summarize)")
    p.add_argument("--cases", default=",".join(DEFAULT_CASES), help="comma-separated calib.csv case ids")
    p.add_argument("--period-ms", type=float, default=1.0, help="NVML sampling period (ms, 0.2..100)")
    p.add_argument("--no-refs", action="store_true", help="leave out the heavy reference rows")
    args = p.parse_args(argv)
    try:
        if args.summarize is not None:
            for opt, f in (("--summarize", args.summarize), ("--samples", args.samples), ("--log", args.log)):
                if f is None or not f.is_file():
                    raise ProbeError(f"{opt}: {f} is not a file" if f is not None else f"{opt} is required")
            print(summarize(args.summarize, args.samples, args.log))
            return 0
        if args.out is None:
            raise ProbeError("--out or --summarize is required")
        if not 0.2 <= args.period_ms <= 100:
            raise ProbeError(f"--period-ms: {args.period_ms} is outside 0.2..100")
        if args.out.exists() and not args.out.is_dir():
            raise ProbeError(f"--out: {args.out} is a file")
        from fgsim.validation.cases import load_case_list

        ids = select_cases([c.case_id for c in load_case_list("calib")],
                           [s.strip() for s in args.cases.split(",") if s.strip()])
        nvml = nvml_reader()
        args.out.mkdir(parents=True, exist_ok=True)
        return probe(ids, args.out, args.period_ms, not args.no_refs, nvml)
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
