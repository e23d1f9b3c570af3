"""The effective SM clock of a timed row: what the SMs ran at while the row's replays ran (session 15, helper M6).

NVML's SM clock reads ~10 % above the clock the SMs hold under a kernel's load (the clock study, session 15, M5:
validation/MODEL_NOTES.md). This meter measures the clock on the SMs themselves: a probe kernel (one CTA of one
warp per SM) records per CTA ``%smid``, ``%clock64`` and ``%globaltimer`` at its start, spins ``spin_ns`` on
``%globaltimer`` and records both again. It is launched on the same stream right before and right after a row's
timed replays, so on each SM the ``clock64`` advance from the end of the probe before to the start of the probe
after, over the ``globaltimer`` advance between the same two points, is the SM clock while the replays ran.
Summed over a row's rounds per SM; the row's clock is the median over SMs (MHz; :func:`effective_mhz`).

GPU only (a CUDA build of Triton: inline PTX); on the CPU :class:`ClockMeter` refuses with one line and the
harnesses leave the column empty. Readers use :func:`recorded_eff_clock`, which accepts rows without the column
(CSVs written before it existed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: the probe's spin per CTA (ns of %globaltimer): long enough that all CTAs of a probe are resident together
SPIN_NS = 50_000
#: the spin of the harness's probes around a row's replays (ns)
METER_SPIN_NS = 20_000
#: fields of one probe record (one CTA): SM id, clock64 at start, globaltimer at start, clock64 at end, globaltimer
#: at end
RECORD_FIELDS = ("smid", "clock_start", "gt_start", "clock_end", "gt_end")
#: the results column (MHz; '' where not measured: CPU, no probe pair, or a CSV written before it existed)
COLUMN = "sm_mhz_eff"
#: effective clocks outside this range (MHz) are not read as clocks
PLAUSIBLE_MHZ = (100.0, 4000.0)

_PROBE: Any = None


def probe_kernel() -> Any:
    """The Triton probe kernel ``(out_ptr, spin_ns)``, grid = number of CTAs, 5 int64 per CTA (defined on first
    use: it needs a GPU build of Triton)."""
    global _PROBE
    if _PROBE is not None:
        return _PROBE
    import triton
    import triton.language as tl

    @triton.jit
    def _clock_probe(out_ptr, spin_ns):
        pid = tl.program_id(0)
        base = out_ptr + pid * 5
        c0 = tl.inline_asm_elementwise("mov.u64 $0, %clock64;", "=l", [], dtype=tl.int64, is_pure=False, pack=1)
        t0 = tl.inline_asm_elementwise("mov.u64 $0, %globaltimer;", "=l", [], dtype=tl.int64, is_pure=False, pack=1)
        sm = tl.inline_asm_elementwise("mov.u32 $0, %smid;", "=r", [], dtype=tl.int32, is_pure=True, pack=1)
        t = t0
        while t - t0 < spin_ns:
            t = tl.inline_asm_elementwise("mov.u64 $0, %globaltimer;", "=l", [], dtype=tl.int64, is_pure=False,
                                          pack=1)
        c1 = tl.inline_asm_elementwise("mov.u64 $0, %clock64;", "=l", [], dtype=tl.int64, is_pure=False, pack=1)
        tl.store(base + 0, sm.to(tl.int64))
        tl.store(base + 1, c0)
        tl.store(base + 2, t0)
        tl.store(base + 3, c1)
        tl.store(base + 4, t)

    _PROBE = _clock_probe
    return _PROBE


def _check(rec: Any, name: str) -> np.ndarray:
    a = np.asarray(rec)
    if a.ndim != 2 or a.shape[1] != len(RECORD_FIELDS) or a.shape[0] == 0:
        raise ValueError(f"sm_clock: {name}: probe records must be an (n_ctas, {len(RECORD_FIELDS)}) array "
                         f"({', '.join(RECORD_FIELDS)}), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"sm_clock: {name}: probe records must be integers (clock / timer ticks), got {a.dtype}")
    return a.astype(np.int64)


def interval_deltas(before: Any, after: Any) -> dict[int, tuple[float, float]]:
    """Per SM id: (clock64 cycles, globaltimer ns) from the end of the probe before to the start of the probe after
    (an SM that ran several CTAs of a probe: the last to end before, the first to start after); SMs missing from
    either probe, or with a non-positive interval, are left out."""
    a, b = _check(before, "before"), _check(after, "after")
    last: dict[int, np.ndarray] = {}
    for r in a:
        s = int(r[0])
        if s not in last or r[4] > last[s][4]:
            last[s] = r
    first: dict[int, np.ndarray] = {}
    for r in b:
        s = int(r[0])
        if s not in first or r[2] < first[s][2]:
            first[s] = r
    out = {}
    for s, p in last.items():
        q = first.get(s)
        if q is None:
            continue
        dc, dt = float(q[1] - p[3]), float(q[2] - p[4])
        if dt > 0 and dc > 0:
            out[s] = (dc, dt)
    return out


def effective_mhz(pairs: Sequence[tuple[Any, Any]]) -> float:
    """The effective SM clock (MHz) over probe pairs ``[(before, after), ...]`` (one pair per timed round): per SM
    the clock64 cycles summed over the pairs over the globaltimer ns summed over the pairs, the median over SMs;
    NaN when no SM has an interval. ValueError (one line) on malformed records."""
    cyc: dict[int, float] = {}
    ns: dict[int, float] = {}
    for before, after in pairs:
        for s, (dc, dt) in interval_deltas(before, after).items():
            cyc[s] = cyc.get(s, 0.0) + dc
            ns[s] = ns.get(s, 0.0) + dt
    if not ns:
        return math.nan
    return float(np.median([cyc[s] / ns[s] for s in ns]) * 1e3)


def recorded_eff_clock(row: Mapping[str, Any]) -> float | None:
    """A results row's effective SM clock (MHz) or None: no column (an older CSV), empty, not a number, or outside
    :data:`PLAUSIBLE_MHZ`."""
    try:
        mhz = float(str(row.get(COLUMN) or "").strip())
    except ValueError:
        return None
    return mhz if PLAUSIBLE_MHZ[0] <= mhz <= PLAUSIBLE_MHZ[1] else None


def format_mhz(mhz: float) -> str:
    """The column's text: one decimal, '' for NaN."""
    return "" if not math.isfinite(mhz) else f"{mhz:.1f}"


class ClockMeter:
    """Probe pairs around a row's timed replays on the current CUDA stream: :meth:`before` right before the first
    timing event, :meth:`after` right after the last; :meth:`mhz` after a synchronize. ``n_ctas``: the SMs the
    row's work can use (the device's count, or an SM partition's); RuntimeError (one line) without a CUDA GPU."""

    def __init__(self, n_ctas: int | None = None, spin_ns: int = METER_SPIN_NS) -> None:
        import os

        import torch

        if not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET", "0") == "1":
            raise RuntimeError("sm_clock: the effective-clock meter needs a CUDA GPU (no probe on the CPU)")
        if n_ctas is not None and int(n_ctas) < 1:
            raise ValueError(f"sm_clock: n_ctas {n_ctas}: must be >= 1")
        self.n = int(n_ctas or torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count)
        self.spin_ns = int(spin_ns)
        self.probe = probe_kernel()
        self._bufs: list[tuple[Any, Any]] = []
        self._open: Any = None
        warm = torch.zeros((self.n, 5), dtype=torch.int64, device="cuda")
        self.probe[(self.n,)](warm, 1000)  # compile outside any timed work
        torch.cuda.synchronize()

    def _launch(self) -> Any:
        import torch

        buf = torch.zeros((self.n, 5), dtype=torch.int64, device="cuda")
        self.probe[(self.n,)](buf, self.spin_ns)
        return buf

    def before(self) -> None:
        """The probe before a round's timed replays (same stream)."""
        self._open = self._launch()

    def after(self) -> None:
        """The probe after a round's timed replays (same stream); pairs with the last :meth:`before`."""
        if self._open is None:
            raise RuntimeError("sm_clock: after() without before()")
        self._bufs.append((self._open, self._launch()))
        self._open = None

    def mhz(self) -> float:
        """The effective SM clock (MHz) over every pair so far (:func:`effective_mhz`); NaN with none."""
        pairs = [(a.cpu().numpy(), b.cpu().numpy()) for a, b in self._bufs]
        return effective_mhz(pairs) if pairs else math.nan
