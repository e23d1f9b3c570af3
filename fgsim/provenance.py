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

Which code made a result: ``commit`` is ``$FGSIM_COMMIT`` when set, else ``git rev-parse HEAD`` (``+dirty`` when
tracked files differ). A device machine gets the working tree with a ``.git`` frozen at the session's start, so
``git`` there names a stale commit: pass ``FGSIM_COMMIT=<hash computed here>`` in device commands.
``source_digest`` (:func:`source_digest`) is a SHA-256 over the files that determine results (:func:`is_source`),
read from disk, so it names the code that actually ran with or without git; ``python -m fgsim.provenance --match
DIGEST|FILE`` finds the local commit(s) (or the working tree) with that digest.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Keys of :func:`environment` (and of the CSV columns that record it).
ENV_KEYS = ("gpu_name", "gpu_key", "device_sm_count", "driver", "cuda", "torch", "triton", "fgsim", "commit", "host",
            "date", "sm_clock_mhz", "mem_clock_mhz", "clock_samples", "source_digest")
#: environment variable that names the commit explicitly (wins over ``git rev-parse``)
COMMIT_ENV = "FGSIM_COMMIT"
#: the repository holding fgsim (and kernels/)
ROOT = Path(__file__).resolve().parent.parent


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
    """``$FGSIM_COMMIT`` when set (stripped), else the ``HEAD`` commit of the repository holding fgsim (plus
    ``+dirty`` when tracked files differ), or ''."""
    explicit = os.environ.get(COMMIT_ENV, "").strip()
    if explicit:
        return explicit
    root = Path(repo) if repo else ROOT
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
    fgsim version, commit (:func:`git_commit`), source digest (:func:`source_digest`), host and UTC date. Clocks
    are left empty: read them under load with :class:`ClockSampler`."""
    env = {k: "" for k in ENV_KEYS}
    env.update(host=platform.node(), date=datetime.now(UTC).isoformat(timespec="seconds"), commit=git_commit(),
               source_digest=source_digest())
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


class _Nvml:
    """SM and memory clocks (MHz) of device 0 through NVML (``libnvidia-ml.so.1`` by ctypes, no Python package);
    ``ok`` is False where NVML cannot be loaded."""

    CLOCK_SM, CLOCK_MEM = 1, 2

    def __init__(self) -> None:
        import ctypes

        self.ok = False
        try:
            self._lib = ctypes.CDLL("libnvidia-ml.so.1")
            self._h = ctypes.c_void_p()
            self._v = ctypes.c_uint()
            self.ok = (self._lib.nvmlInit_v2() == 0
                       and self._lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self._h)) == 0
                       and self.read() is not None)
        except (OSError, AttributeError):
            self.ok = False

    def read(self) -> tuple[float, float] | None:
        """(SM, memory) clock in MHz, or None if NVML failed."""
        import ctypes

        out = []
        for kind in (self.CLOCK_SM, self.CLOCK_MEM):
            if self._lib.nvmlDeviceGetClockInfo(self._h, kind, ctypes.byref(self._v)) != 0:
                return None
            out.append(float(self._v.value))
        return out[0], out[1]


class ClockSampler:
    """Samples the SM / memory clocks every ``period_s`` in a background thread: through NVML (ctypes) every
    ``nvml_period_s`` where it loads (session 14: short cases get many samples), else with nvidia-smi
    (``clocks.sm`` / ``clocks.mem``) every ``period_s``.

    Use as a context manager around timed GPU work; :meth:`summary` gives the median SM and memory clock of the
    samples (MHz, as strings for CSV rows), their number, and the SM-clock range."""

    def __init__(self, period_s: float = 0.5, nvml_period_s: float = 0.005) -> None:
        self.period_s = period_s
        self.nvml_period_s = nvml_period_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        nv = _Nvml()
        while not self._stop.is_set():
            if nv.ok:
                got = nv.read()
                if got is not None:
                    self.samples.append(got)
                self._stop.wait(self.nvml_period_s)
                continue
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


# --------------------------------------------------------------------------------------------------------------------
# source digest: which code made a result, with or without git

#: top-level folders walked for source files (relative to the repository root)
SOURCE_DIRS = ("fgsim", "kernels/fgattn")


def is_source(path: str) -> bool:
    """Whether the repository-relative POSIX ``path`` is a file that determines results: ``fgsim/**/*.py``,
    ``kernels/fgattn/**/*.py``, ``kernels/fgattn/data/*.json`` (launch tables) or ``fgsim/data/gpus/*.json`` (GPU
    descriptions). Documentation, tests, data outputs and caches are not."""
    if "/__pycache__/" in path:
        return False
    parent, _, name = path.rpartition("/")
    if path.endswith(".py"):
        return path.startswith(("fgsim/", "kernels/fgattn/"))
    if name.endswith(".json"):
        return parent in ("kernels/fgattn/data", "fgsim/data/gpus")
    return False


def digest_of(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 hex digest over ``(path, bytes)`` pairs, sorted by path: each contributes its path, a NUL, its
    length in decimal, a NUL and its bytes (so no two different file sets hash alike)."""
    h = hashlib.sha256()
    for path, data in sorted(files, key=lambda f: f[0]):
        h.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def source_files(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Repository-relative POSIX paths of the source files on disk under ``root`` (:func:`is_source`), sorted."""
    base = Path(root) if root else ROOT
    out: list[str] = []
    for top in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(base / top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
            rel = Path(dirpath).relative_to(base).as_posix()
            out += [p for p in (f"{rel}/{f}" for f in filenames) if is_source(p)]
    return sorted(out)


def source_digest(root: str | os.PathLike[str] | None = None) -> str:
    """:func:`digest_of` the source files on disk under ``root`` (default: this repository; works without git):
    the identity of the code that determines results, tracked or not."""
    base = Path(root) if root else ROOT
    return digest_of((p, (base / p).read_bytes()) for p in source_files(base))


def _git(root: Path, *args: str) -> bytes:
    q = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60)
    if q.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {q.stderr.decode(errors='replace').strip()}")
    return q.stdout


class _Blobs:
    """Blob contents by object id, read through one ``git cat-file --batch`` process and cached."""

    def __init__(self, root: Path) -> None:
        self.cache: dict[str, bytes] = {}
        self.proc = subprocess.Popen(["git", "-C", str(root), "cat-file", "--batch"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)

    def get(self, oid: str) -> bytes:
        if oid not in self.cache:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(oid.encode() + b"\n")
            self.proc.stdin.flush()
            head = self.proc.stdout.readline().split()
            if len(head) != 3:
                raise RuntimeError(f"git cat-file: object {oid} not found")
            data = self.proc.stdout.read(int(head[2]))
            self.proc.stdout.read(1)  # the newline after the contents
            self.cache[oid] = data
        return self.cache[oid]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def commit_digest(commit: str, root: str | os.PathLike[str] | None = None, *, _blobs: _Blobs | None = None) -> str:
    """:func:`digest_of` the source files in ``commit``'s tree (as :func:`source_digest` of a clean checkout)."""
    base = Path(root) if root else ROOT
    blobs = _blobs or _Blobs(base)
    try:
        files = []
        for entry in _git(base, "ls-tree", "-r", "-z", "--full-tree", commit, "--", *SOURCE_DIRS).split(b"\0"):
            if not entry:
                continue
            meta, _, path_b = entry.partition(b"\t")
            _mode, kind, oid = meta.decode().split()
            path = path_b.decode()
            if kind == "blob" and is_source(path):
                files.append((path, blobs.get(oid)))
        return digest_of(files)
    finally:
        if _blobs is None:
            blobs.close()


def match_digest(digest: str, root: str | os.PathLike[str] | None = None, *, max_commits: int = 300,
                 max_seconds: float = 20.0) -> tuple[bool, list[str]]:
    """Where the source digest ``digest`` (or a prefix of at least 8 hex digits) comes from: (whether the working
    tree on disk has it, the commits among the last ``max_commits`` of ``HEAD``'s history whose trees have it,
    newest first; none without git). Stops after ``max_seconds``."""
    want = digest.strip().lower()
    if len(want) < 8 or any(c not in "0123456789abcdef" for c in want):
        raise ValueError(f"not a source digest (>= 8 hex digits): {digest!r}")
    base = Path(root) if root else ROOT
    in_tree = source_digest(base).startswith(want)
    try:
        commits = _git(base, "rev-list", f"--max-count={max_commits}", "HEAD").decode().split()
    except (OSError, RuntimeError, subprocess.SubprocessError):
        commits = []  # no git or no history here: only the working tree is checked
    found: list[str] = []
    blobs = _Blobs(base)
    t0 = time.monotonic()
    try:
        for c in commits:
            if commit_digest(c, base, _blobs=blobs).startswith(want):
                found.append(c)
            if time.monotonic() - t0 > max_seconds:
                break
    finally:
        blobs.close()
    return in_tree, found


def _digests_in(path: Path) -> list[str]:
    """The source digests a calibration / GPU JSON file (``source_digest`` keys anywhere) or a measurement CSV
    (its ``source_digest`` column) records."""
    import csv
    import json

    if path.suffix == ".csv":
        with path.open(newline="") as fh:
            vals = [r.get("source_digest") or "" for r in csv.DictReader(fh)]
    else:
        vals = []

        def walk(o: Any) -> None:
            if isinstance(o, dict):
                for k, v in o.items():
                    if k == "source_digest" and isinstance(v, str):
                        vals.append(v)
                    else:
                        walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)

        walk(json.loads(path.read_text()))
    return sorted({v for v in vals if v})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fgsim.provenance [--match DIGEST|FILE] [--commits N]``: print this tree's commit and source
    digest, or find the commits whose source a digest (or the digests a calibration JSON / measurement CSV records)
    corresponds to. Exit 0 when every digest matched, 1 when one did not, 2 on bad input."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m fgsim.provenance", description=main.__doc__)
    ap.add_argument("--match", help="a source digest (>= 8 hex digits), or a calibration JSON / measurement CSV")
    ap.add_argument("--commits", type=int, default=300, help="how many commits of HEAD's history to search")
    args = ap.parse_args(argv)
    if args.match is None:
        print(f"commit         {git_commit()}\nsource_digest  {source_digest()}")
        return 0
    if args.commits < 1:
        print("--commits: must be >= 1", file=sys.stderr)
        return 2
    p = Path(args.match)
    if p.is_file():
        try:
            digests = _digests_in(p)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            print(f"--match: {p}: cannot read ({exc})", file=sys.stderr)
            return 2
        if not digests:
            print(f"--match: {p}: records no source_digest (made before digests were recorded)", file=sys.stderr)
            return 2
    else:
        digests = [args.match]
    ok = True
    for d in digests:
        try:
            in_tree, found = match_digest(d, max_commits=args.commits)
        except ValueError as exc:
            print(f"--match: {exc}", file=sys.stderr)
            return 2
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            print(f"--match: git failed: {exc}", file=sys.stderr)
            return 2
        where = (["working tree"] if in_tree else []) + found
        ok &= bool(where)
        print(f"{d[:16]}  " + (", ".join(c[:12] if c != "working tree" else c for c in where) if where
                               else f"no match in the working tree or the last {args.commits} commits"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
