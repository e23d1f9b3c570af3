"""The clock study's measurement (session 15, helper M5; pre-registered in validation/MODEL_NOTES.md, "Session 15"):
which SM clock a kernel runs at, against the clock NVML reports.

A probe kernel (one warp per CTA, one CTA per SM: 132 on the H200) records per CTA ``%smid``, ``%clock64`` and
``%globaltimer`` at its start, spins ``SPIN_NS`` on ``%globaltimer`` and records both again. It is launched before
the first and after every call of a back-to-back sequence of one kernel, so on each SM the clock64 advance between
the probe before and the probe after a call, over the globaltimer advance, is **the SM clock the SM ran at while
the call ran** (``f_eff``, MHz; the probes' own spins give a second figure, ``f_spin``). Beside it a thread samples
NVML every 5 ms (SM clock, board power, clock-event reasons) with host timestamps, aligned to globaltimer by a
synchronised probe. Sequences: (D) the packaged dense D=128 M=128 entry (Gluon contig) at H12 N32760 bf16, (F) the
packaged fg entry at H12 N32760 (``fgattn.masks.window_mask`` d 0.1, launch-ordered index), (G) a bf16 8192^3 matmul
(calibrate's sustained-clock workload); each for about ``--seconds-*`` of back-to-back calls.

    PYTHONPATH=.:kernels python3 validation/costmodel_clock_probe.py --out DIR          # on the GPU
    python validation/costmodel_clock_probe.py --analyse DIR/clock-probe-calls.csv      # the statistics again

Writes ``clock-probe-calls.csv`` (one row per call: sequence, call, time_ns, f_eff_mhz, f_spin_mhz, nvml_mhz,
power_w, reasons, n_sm) and ``clock-probe-summary.json`` (per sequence: medians, f_eff / NVML, the slope of
log(call time) on log(f_eff), first / last fifth).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

# the probe kernel and its arithmetic live in the harness's meter (session 15, M6): one copy
from fgsim.validation.sm_clock import SPIN_NS, effective_mhz, probe_kernel

#: columns of the per-call CSV
COLS = ("seq", "call", "time_ns", "f_eff_mhz", "f_spin_mhz", "nvml_mhz", "power_w", "reasons", "n_sm")
#: sequence names (what each times)
SEQS = {"D": "dense D128 M128 packaged entry (Gluon contig), H12 N32760 bf16",
        "F": "fg D128 M128 g1 packaged entry (Gluon ws2 list), H12 N32760 window_mask d 0.1 launch-ordered",
        "G": "torch.matmul bf16 8192^3 (calibrate's sustained-clock workload)"}


class Nvml:
    """SM clock (MHz), board power (W) and clock-event reasons of device 0 through NVML (ctypes)."""

    def __init__(self) -> None:
        import ctypes

        self.ok = False
        try:
            self.lib = ctypes.CDLL("libnvidia-ml.so.1")
            self.h = ctypes.c_void_p()
            self.ok = (self.lib.nvmlInit_v2() == 0
                       and self.lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self.h)) == 0)
        except OSError:
            self.ok = False
        self.reasons_fn = None
        if self.ok:
            for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
                if hasattr(self.lib, name):
                    self.reasons_fn = getattr(self.lib, name)
                    break

    def read(self) -> tuple[float, float, int]:
        import ctypes

        v, mw, rs = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_ulonglong()
        clk = float(v.value) if self.lib.nvmlDeviceGetClockInfo(self.h, 1, ctypes.byref(v)) == 0 else math.nan
        pw = mw.value / 1000.0 if self.lib.nvmlDeviceGetPowerUsage(self.h, ctypes.byref(mw)) == 0 else math.nan
        r = int(rs.value) if self.reasons_fn is not None and self.reasons_fn(self.h, ctypes.byref(rs)) == 0 else -1
        return clk, pw, r


class Sampler:
    """NVML samples (host ns, SM MHz, W, reasons) every ``period_s`` in a thread."""

    def __init__(self, period_s: float = 0.005) -> None:
        self.period_s = period_s
        self.nv = Nvml()
        self.samples: list[tuple[int, float, float, int]] = []
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            c, p, r = self.nv.read()
            self.samples.append((time.time_ns(), c, p, r))
            self._stop.wait(self.period_s)

    def __enter__(self) -> Sampler:
        if self.nv.ok:
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._t is not None:
            self._t.join(timeout=5)


def run_sequence(name: str, call: Any, seconds: float, est_ms: float, n_sm: int, probe: Any) -> dict[str, Any]:
    """Time ``call`` back to back for about ``seconds`` with a probe before the first and after every call; return
    the raw probe records (n_calls + 1, n_sm, 5), the NVML samples and the host / globaltimer alignment."""
    import torch

    n = max(20, int(seconds * 1e3 / max(est_ms, 0.05)))
    buf = torch.zeros((n + 2, n_sm, 5), dtype=torch.int64, device="cuda")
    torch.cuda.synchronize()
    h0 = time.time_ns()
    probe[(n_sm,)](buf[n + 1], 1000)  # the alignment probe (1 us spin)
    torch.cuda.synchronize()
    h1 = time.time_ns()
    with Sampler() as smp:
        time.sleep(0.02)
        probe[(n_sm,)](buf[0], SPIN_NS)
        for i in range(n):
            call()
            probe[(n_sm,)](buf[i + 1], SPIN_NS)
        torch.cuda.synchronize()
        time.sleep(0.02)
    raw = buf.cpu().numpy()
    gt_align = float(np.median(raw[n + 1, :, 2]))
    print(f"sequence {name}: {n} calls, {len(smp.samples)} NVML samples, {(time.time_ns() - h1) / 1e9:.1f} s",
          flush=True)
    return {"raw": raw[: n + 1], "samples": smp.samples, "host_ns": (h0 + h1) / 2.0, "gt_ns": gt_align}


def per_call(raw: np.ndarray, samples: list[tuple[int, float, float, int]], host_ns: float, gt_ns: float
             ) -> list[dict[str, float]]:
    """Per call: its time (median over SMs of the globaltimer advance between the probes around it, ns), the
    effective SM clock (median over SMs of clock64 advance / globaltimer advance, MHz), the next probe's spin clock,
    and the NVML samples taken while it ran (median clock / power, OR of the event reasons; nearest if none)."""
    out = []
    st = np.array([s[0] for s in samples], np.float64) - host_ns + gt_ns if samples else np.zeros(0)
    for i in range(raw.shape[0] - 1):
        a, b = raw[i], raw[i + 1]
        sa = {int(r[0]): r for r in a}
        pairs = [(sa[int(r[0])], r) for r in b if int(r[0]) in sa]
        if not pairs:
            continue
        dt = np.array([float(q[2] - p[4]) for p, q in pairs])
        f_eff = effective_mhz([(a, b)])
        sp_t = np.array([float(q[4] - q[2]) for _, q in pairs])
        sp_c = np.array([float(q[3] - q[1]) for _, q in pairs])
        f_spin = float(np.median(sp_c[sp_t > 0] / sp_t[sp_t > 0]) * 1e3) if (sp_t > 0).any() else math.nan
        lo, hi = float(np.median([p[4] for p, _ in pairs])), float(np.median([q[2] for _, q in pairs]))
        nv_c = nv_p = math.nan
        reasons = -1
        if st.size:
            sel = np.nonzero((st >= lo) & (st <= hi))[0]
            if sel.size == 0:
                sel = np.array([int(np.argmin(np.abs(st - 0.5 * (lo + hi))))])
            nv_c = float(np.nanmedian([samples[j][1] for j in sel]))
            nv_p = float(np.nanmedian([samples[j][2] for j in sel]))
            reasons = 0
            for j in sel:
                reasons |= max(0, samples[j][3])
        out.append({"call": i, "time_ns": float(np.median(dt)), "f_eff_mhz": f_eff, "f_spin_mhz": f_spin,
                    "nvml_mhz": nv_c, "power_w": nv_p, "reasons": reasons, "n_sm": len(pairs)})
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per sequence: n, medians of call time / f_eff / f_spin / NVML clock / power, median f_eff / NVML, the slope of
    log(time) on log(f_eff) (least squares; -1 = the time follows the SM clock), and the first / last fifth."""
    out: dict[str, Any] = {}
    for seq in sorted({r["seq"] for r in rows}):
        g = [r for r in rows if r["seq"] == seq and r["time_ns"] > 0 and r["f_eff_mhz"] == r["f_eff_mhz"]]
        if len(g) < 5:
            continue
        t = np.array([r["time_ns"] for r in g])
        f = np.array([r["f_eff_mhz"] for r in g])
        nv = np.array([r["nvml_mhz"] for r in g], np.float64)
        d: dict[str, Any] = {"n": len(g), "what": SEQS.get(seq, seq), "time_ms": float(np.median(t) / 1e6),
                             "f_eff_mhz": float(np.median(f)), "f_spin_mhz": float(np.nanmedian([r["f_spin_mhz"]
                                                                                              for r in g])),
                             "nvml_mhz": float(np.nanmedian(nv)) if np.isfinite(nv).any() else None,
                             "power_w": float(np.nanmedian([r["power_w"] for r in g]))
                             if any(r["power_w"] == r["power_w"] for r in g) else None}
        if np.isfinite(nv).any():
            ok = np.isfinite(nv)
            d["f_eff_over_nvml"] = float(np.median(f[ok] / nv[ok]))
        if np.ptp(np.log(f)) > 1e-4:
            d["slope_log_t_on_log_f_eff"] = float(np.polyfit(np.log(f), np.log(t), 1)[0])
        d["f_eff_range_mhz"] = [float(f.min()), float(f.max())]
        k = max(1, len(g) // 5)
        for part, sl in (("first_fifth", slice(0, k)), ("last_fifth", slice(len(g) - k, len(g)))):
            d[part] = {"time_ms": float(np.median(t[sl]) / 1e6), "f_eff_mhz": float(np.median(f[sl])),
                       "nvml_mhz": float(np.nanmedian(nv[sl])) if np.isfinite(nv[sl]).any() else None}
        out[seq] = d
    return out


def _write(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from fgsim.fileio import write_text_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLS), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text_atomic(out / "clock-probe-calls.csv", buf.getvalue())
    write_text_atomic(out / "clock-probe-summary.json", json.dumps(summary, indent=1) + "\n")


def measure(out: Path, seconds: dict[str, float]) -> int:
    import fgattn
    import torch
    from fgattn.masks import window_mask

    torch.manual_seed(0)
    dev = torch.cuda.get_device_properties(0)
    n_sm = int(dev.multi_processor_count)
    probe = probe_kernel()
    h, n, d = 12, 32760, 128
    q, k, v = (torch.randn(1, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    o = torch.empty_like(q)
    mask = window_mask(1, h, n, 128, 0.1, device="cuda", seed=0)
    idx = fgattn.build_index(mask, block_m=128, order=True)
    del mask
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(8192, 8192, device="cuda", dtype=torch.bfloat16)
    calls = {"D": lambda: fgattn.dense_attention(q, k, v, block_m=128, out=o),
             "F": lambda: fgattn.fg_attention(q, k, v, idx, block_m=128, out=o),
             "G": lambda: torch.matmul(a, b, out=c)}
    try:
        print("route: dense", fgattn.contig_route(q, fgattn.launch_config("dense", "h200", 128, 128, 1), k=k, v=v),
              flush=True)
    except Exception as exc:  # noqa: BLE001 -- a report line only
        print("route: dense ?", exc, flush=True)
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"gpu": dev.name, "sm_count": n_sm, "spin_ns": SPIN_NS, "torch": torch.__version__}
    for seq in ("D", "F", "G"):
        if seconds.get(seq, 0) <= 0:
            continue
        fn = calls[seq]
        for _ in range(3):  # warm up: compiles, the contig plan, the list plan
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        est = (time.perf_counter() - t0) * 1e3
        probe[(n_sm,)](torch.zeros((n_sm, 5), dtype=torch.int64, device="cuda"), 1000)  # compile the probe
        torch.cuda.synchronize()
        r = run_sequence(seq, fn, seconds[seq], est, n_sm, probe)
        for x in per_call(r["raw"], r["samples"], r["host_ns"], r["gt_ns"]):
            rows.append({"seq": seq, **x})
        time.sleep(0.5)
    summary = {"meta": meta, "sequences": summarise(rows)}
    _write(out, rows, summary)
    for s, dd in summary["sequences"].items():
        print(s, json.dumps({kk: vv for kk, vv in dd.items() if kk not in ("what",)}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--analyse", type=Path, help="a clock-probe-calls.csv: print its per-sequence statistics")
    ap.add_argument("--seconds-d", type=float, default=3.0)
    ap.add_argument("--seconds-f", type=float, default=1.5)
    ap.add_argument("--seconds-g", type=float, default=1.5)
    a = ap.parse_args(argv)
    if a.analyse is not None:
        if not a.analyse.is_file():
            print(f"costmodel_clock_probe: {a.analyse}: no such file", file=sys.stderr)
            return 2
        rows = []
        for r in csv.DictReader(a.analyse.open(newline="")):
            rows.append({k: (r[k] if k == "seq" else float(r[k])) for k in COLS})
        print(json.dumps(summarise(rows), indent=1))
        return 0
    if a.out is None:
        print("costmodel_clock_probe: --out DIR (or --analyse CSV) is required", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    return measure(a.out, {"D": a.seconds_d, "F": a.seconds_f, "G": a.seconds_g})


if __name__ == "__main__":
    raise SystemExit(main())
