"""Environment provenance of a measurement: GPU, clocks read while the GPU works, driver, library versions, commit.

One helper for every script that records measurements (calibration, validation, kernel and end-to-end benchmarks):

    from fgsim.provenance import environment, ClockSampler, file_sha256
    env = environment()                      # static facts: gpu_name, gpu_key, driver, torch, triton, cuda, ...
    with ClockSampler() as clk:              # polls nvidia-smi in a thread while the timed work runs
        ...                                  # timed GPU work
    env.update(clk.summary())                # sm_clock_mhz / mem_clock_mhz: medians of the samples under load

Clocks read at rest (before any work) are the idle clocks (e.g. 345 MHz on an H200), not the clocks the work ran
at; only samples taken during the work are recorded. Everything degrades to empty strings on a machine without
nvidia-smi, torch or a GPU. No function here changes any GPU setting.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Keys of :func:`environment` (and of the CSV columns that record it).
ENV_KEYS = ("gpu_name", "gpu_key", "device_sm_count", "driver", "cuda", "torch", "triton", "fgsim", "commit", "host",
            "date", "sm_clock_mhz", "mem_clock_mhz", "clock_samples")


def _smi(query: str, timeout: float = 10.0) -> list[str]:
    """One ``nvidia-smi --query-gpu`` line of the first GPU, split at commas ([] if unavailable)."""
    try:
        q = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=timeout)
        line = q.stdout.strip().splitlines()[0]
        return [x.strip() for x in line.split(",")]
    except (OSError, IndexError, subprocess.SubprocessError):
        return []


def git_commit(repo: str | os.PathLike[str] | None = None) -> str:
    """``HEAD`` commit of the repository holding fgsim (plus ``+dirty`` when tracked files differ), or ''."""
    root = Path(repo) if repo else Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        if not head:
            return ""
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def environment() -> dict[str, str]:
    """Static provenance of this machine: GPU name and launch-table key, SM count, driver, CUDA, torch, triton,
    fgsim version, git commit, host and UTC date. Clocks are left empty: read them under load with
    :class:`ClockSampler`."""
    env = {k: "" for k in ENV_KEYS}
    env.update(host=platform.node(), date=datetime.now(UTC).isoformat(timespec="seconds"), commit=git_commit())
    try:
        from fgsim import __version__

        env["fgsim"] = __version__
    except ImportError:
        pass
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = str(torch.version.cuda)
        if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") != "1":
            env["gpu_name"] = torch.cuda.get_device_name(0)
            env["device_sm_count"] = str(torch.cuda.get_device_properties(0).multi_processor_count)
        else:
            env["gpu_name"] = "cpu (TRITON_INTERPRET)"
    except ImportError:
        env["gpu_name"] = "cpu"
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        pass
    drv = _smi("driver_version")
    env["driver"] = drv[0] if drv else ""
    env["gpu_key"] = gpu_key(env["gpu_name"])
    return env


def gpu_key(device_name: str) -> str:
    """Lower-case GPU key (``h200``, ``h100``, ``a100``, ``b200``, ``l40s``) of a device name; the CPU
    interpreter maps to ``h200`` (the launch table's default entries); else the lower-cased name."""
    low = device_name.lower()
    if low.startswith("cpu"):
        return "h200"
    for key in ("h200", "h100", "a100", "b200", "l40s"):
        if key in low:
            return key
    return low.replace(" ", "_")


class ClockSampler:
    """Samples ``clocks.sm`` / ``clocks.mem`` with nvidia-smi every ``period_s`` in a background thread.

    Use as a context manager around timed GPU work; :meth:`summary` gives the median SM and memory clock of the
    samples (MHz, as strings for CSV rows), their number, and the SM-clock range."""

    def __init__(self, period_s: float = 0.5) -> None:
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            v = _smi("clocks.sm,clocks.mem", timeout=5.0)
            try:
                if len(v) >= 2:
                    self.samples.append((float(v[0]), float(v[1])))
            except ValueError:
                pass
            self._stop.wait(self.period_s)

    def __enter__(self) -> ClockSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def mark(self) -> int:
        """Index of the next sample (to summarise only the samples taken after this point)."""
        return len(self.samples)

    def summary(self, since: int = 0) -> dict[str, str]:
        """Median SM / memory clock (MHz) of the samples from index ``since`` on; empty strings if none."""
        s = self.samples[since:]
        if not s:
            return {"sm_clock_mhz": "", "mem_clock_mhz": "", "clock_samples": "0"}
        sm = sorted(x[0] for x in s)
        mem = sorted(x[1] for x in s)
        return {"sm_clock_mhz": f"{sm[len(sm) // 2]:.0f}", "mem_clock_mhz": f"{mem[len(mem) // 2]:.0f}",
                "clock_samples": str(len(s)), "sm_clock_min_mhz": f"{sm[0]:.0f}", "sm_clock_max_mhz": f"{sm[-1]:.0f}"}


def wait_s(seconds: float) -> None:
    """Sleep (a named helper so scripts that pace nvidia-smi sampling read clearly)."""
    time.sleep(seconds)
