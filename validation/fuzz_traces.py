"""Fuzz the .fgt reader and the CLI with mutated traces: every failure must be one FgTraceError line.

Each case takes a small valid trace (self- or cross-attention, with or without stats) and damages it one way,
chosen by a seeded generator (case i uses ``numpy.random.default_rng([seed, i])``, so any case replays alone with
``--replay I``): truncation, flipped bytes anywhere or in the ZIP headers' version/flag/method/size fields,
members rewritten with valid CRCs (hostile JSON: Infinity, NaN, 5,000-digit and 2^62 integers, deep nesting,
lists as member names; broken or lying .npy headers; edited counts, stats, grid and text tokens), zip bombs
(members that inflate to 256 MiB, with honest or lying ZIP sizes), unsupported compression methods, duplicate
and extra members. The reader must raise :class:`fgsim.errors.FgTraceError` (one line, starting with the path)
or read the file completely; anything else is a failure.

Cases run in worker processes (fork); a case is a hang when it uses more than ``--timeout`` CPU seconds, or when
it returns nothing for ``--wall-timeout`` wall seconds (its worker is then killed; wall time is generous because
the CPUs may be shared). Peak memory: tracemalloc's peak per case (Python and numpy allocations) and each worker's peak RSS over
all its cases (``ru_maxrss``), which bounds every case's RSS; workers run under an address-space limit so a
runaway allocation fails instead of exhausting the machine. Every ``--cli-every``-th case also runs
``fgsim inspect`` and ``fgsim predict`` in the worker (``fgsim.cli.main``: an uncaught exception is a
traceback), and ``--subprocess-sample`` cases run ``python -m fgsim inspect/predict`` as real processes.
Non-regular inputs (/dev/zero, a FIFO, a directory, a newline in the file name) run once each.

Usage: ``python validation/fuzz_traces.py --cases 10000 --out validation/results/fuzz-traces.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import multiprocessing as mp
import os
import platform
import resource
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fgsim.commands._args import nonneg_int, positive_int  # noqa: E402
from fgsim.errors import FgsimError, FgTraceError  # noqa: E402
from fgsim.fileio import check_output_path  # noqa: E402
from fgsim.trace import META_MEMBER, PassInfo, TraceMeta, TraceWriter, open_trace  # noqa: E402

STATS = ("kept_fraction", "recall_mean", "recall_min", "rel_error")
BOMB_BYTES = 256 * 2**20  # what a bomb member inflates to
HOSTILE_JSON = [
    b"Infinity", b"-Infinity", b"NaN", b"1e999", b"9" * 5000, str(2**62).encode(), b"-1", b"0", b"true", b"null",
    b"[]", b"{}", b'"x"', b"[1, 2]", b'{"a": 1}', b"1.5", b"[" * 5000 + b"]" * 5000, b'"\\n\\u2028"',
    str(10**8).encode(), b"[" * 40 + b"]" * 40,
]
META_FIELDS = ["model", "num_layers", "num_heads", "head_dim", "grid", "text_tokens", "text_position", "block_m",
               "passes", "layers", "heads", "predictor", "provenance", "num_steps", "passes_per_step",
               "model_config", "stat_names", "fgsim_version", "attention", "kv_tokens"]
ENTRY_FIELDS = ["pass", "layer", "mask", "counts", "stats"]


# -- base traces --------------------------------------------------------------------------------------------
def base_traces(directory: Path) -> list[bytes]:
    """Four small valid traces: self-attention M=16 with stats, M=32 with text, cross-attention, M=64."""
    rng = np.random.default_rng(12345)
    passes = (PassInfo(0, 0, "cond"), PassInfo(1, 0, "uncond"), PassInfo(4, 2, "cond"))
    common = dict(model="fuzz", head_dim=64, predictor={"name": "fuzz"}, num_steps=3, passes_per_step=2,
                  provenance={"kind": "synthetic", "generator": "fuzz"}, passes=passes)
    metas = [
        TraceMeta(num_layers=3, num_heads=3, grid=(2, 4, 7), text_tokens=0, text_position="none", block_m=16,
                  layers=(0, 2), heads=(0, 1), stat_names=STATS, **common),
        TraceMeta(num_layers=2, num_heads=2, grid=(3, 5, 6), text_tokens=5, text_position="after", block_m=32,
                  layers=(1,), heads=(0, 1), **common),
        TraceMeta(num_layers=2, num_heads=2, grid=(2, 3, 9), text_tokens=0, text_position="none", block_m=16,
                  layers=(0, 1), heads=(1,), attention="cross", kv_tokens=21, **common),
        TraceMeta(num_layers=1, num_heads=1, grid=(1, 10, 13), text_tokens=3, text_position="before", block_m=64,
                  layers=(0,), heads=(0,), **common),
    ]
    out = []
    for k, meta in enumerate(metas):
        path = directory / f"base{k}.fgt"
        with TraceWriter(path, meta) as w:
            for p in meta.passes:
                for layer in meta.layers:
                    mask = rng.random((len(meta.heads), meta.n_qblocks, meta.n_keys)) < rng.uniform(0.1, 0.9)
                    stats = {s: rng.random(len(meta.heads)) for s in meta.stat_names} or None
                    w.add(p.index, layer, mask, stats)
        out.append(path.read_bytes())
    return out


def bomb_stream(size: int = BOMB_BYTES) -> bytes:
    """A raw deflate stream of ``size`` zero bytes (a multiple of 1 MiB; 256 MiB deflate to about 250 KiB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(2**20)
    return b"".join(c.compress(chunk) for _ in range(size // len(chunk))) + c.flush()


# -- ZIP surgery --------------------------------------------------------------------------------------------
def rebuild(raw: bytes, changes: dict[str, bytes | None], extra: dict[str, bytes] | None = None,
            method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The archive with members replaced (bytes), dropped (None) or added, every CRC valid."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(buf, "w", method) as zout:
        for info in zin.infolist():
            data = changes[info.filename] if info.filename in changes else zin.read(info.filename)
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return buf.getvalue()


@functools.lru_cache(maxsize=4)
def zero_crc(size: int) -> int:
    """CRC-32 of ``size`` zero bytes (a multiple of 1 MiB), computed 1 MiB at a time."""
    crc, chunk = 0, bytes(2**20)
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return crc


def add_bomb(raw: bytes, name: str, stream: bytes, declared: int, size: int) -> bytes:
    """Member ``name`` (absent from ``raw``) added as ``stream``, which inflates to ``size`` zero bytes; its ZIP
    headers declare ``declared`` bytes (with a valid CRC when that is the truth)."""
    zin = zipfile.ZipFile(io.BytesIO(raw))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != name:
                zout.writestr(info.filename, zin.read(info.filename))
    body = buf.getvalue()
    eocd = body.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack("<I", body[eocd + 16:eocd + 20])[0]
    files, central = body[:cd_offset], body[cd_offset:eocd]
    n_entries = struct.unpack("<H", body[eocd + 10:eocd + 12])[0]
    crc = zero_crc(size) if declared == size else 0
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(stream), declared, len(fname), 0)
    offset = len(files)
    cent = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(stream), declared,
                       len(fname), 0, 0, 0, 0, 0, offset)
    files += local + fname + stream
    central += cent + fname
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n_entries + 1, n_entries + 1, len(central), len(files), 0)
    return files + central + end


def member_names(raw: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return z.namelist()


def read_member(raw: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return z.read(name)


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


# -- mutations ----------------------------------------------------------------------------------------------
def mutate(raw: bytes, rng: np.random.Generator, bomb: bytes, bomb_size: int = BOMB_BYTES) -> tuple[str, bytes]:
    """One damaged copy of ``raw``: (mutation kind, bytes). ``bomb`` inflates to ``bomb_size`` zero bytes."""
    kind = str(rng.choice(["truncate", "flip", "header_field", "json_value", "json_entry", "json_raw", "npy_header",
                           "npy_body", "counts_edit", "stats_edit", "shape_edit", "bomb", "method", "members"],
                          p=[.06, .12, .10, .14, .08, .05, .10, .04, .10, .04, .08, .03, .02, .04]))
    names = member_names(raw)
    arrays = [n for n in names if n.endswith(".npy")]
    doc = json.loads(read_member(raw, META_MEMBER))
    if kind == "truncate":
        return kind, raw[: int(rng.integers(0, len(raw)))]
    if kind == "flip":
        b = bytearray(raw)
        for _ in range(int(rng.integers(1, 9))):
            b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        return kind, bytes(b)
    if kind == "header_field":  # version needed, flags, method, sizes of a local or central header
        b = bytearray(raw)
        sigs = [i for i in range(len(b) - 4) if b[i:i + 2] == b"PK" and b[i + 2:i + 4] in (b"\x03\x04", b"\x01\x02")]
        at = sigs[int(rng.integers(0, len(sigs)))]
        central = b[at + 2:at + 4] == b"\x01\x02"
        field = int(rng.choice([4, 6, 8, 18, 22] if not central else [4, 6, 8, 10, 20, 24, 42]))
        value = int(rng.choice([0, 1, 0xFF, 0xFFFF, 63, 64, int(rng.integers(0, 65536))]))
        b[at + field:at + field + 2] = struct.pack("<H", value)
        return kind, bytes(b)
    if kind == "json_value":  # a meta field (or the version) set to a raw hostile JSON value
        d = json.loads(json.dumps(doc))
        field = str(rng.choice(META_FIELDS + ["version"]))
        (d if field == "version" else d["meta"])[field] = "@@HOSTILE@@"
        value = HOSTILE_JSON[int(rng.integers(0, len(HOSTILE_JSON)))]
        return kind, rebuild(raw, {META_MEMBER: json.dumps(d).encode().replace(b'"@@HOSTILE@@"', value)})
    if kind == "json_entry":
        d = json.loads(json.dumps(doc))
        e = d["entries"][int(rng.integers(0, len(d["entries"])))]
        field = str(rng.choice(ENTRY_FIELDS))
        if rng.random() < 0.5:
            e[field] = [["masks/x.npy"], {"a": 1}, None, 2**62, -1, "masks/../../etc/passwd", e.get("mask"),
                        list(d["entries"][0]["counts"].values())][int(rng.integers(0, 8))]
            raw_value = None
        else:
            e[field] = "@@HOSTILE@@"
            raw_value = HOSTILE_JSON[int(rng.integers(0, len(HOSTILE_JSON)))]
        if rng.random() < 0.3:
            d["entries"].append(json.loads(json.dumps(e)))
        text = json.dumps(d).encode()
        if raw_value is not None:
            text = text.replace(b'"@@HOSTILE@@"', raw_value)
        return kind, rebuild(raw, {META_MEMBER: text})
    if kind == "json_raw":
        text = bytearray(json.dumps(doc).encode())
        for _ in range(int(rng.integers(1, 4))):
            text[int(rng.integers(0, len(text)))] = int(rng.choice(list(b'{}[]":,0123456789-eE.\\ \n\x00\xff')))
        return kind, rebuild(raw, {META_MEMBER: bytes(text)})
    if kind == "npy_header":
        name = str(rng.choice(arrays))
        data = read_member(raw, name)
        hlen = struct.unpack("<H", data[8:10])[0]
        header = data[10:10 + hlen].decode("latin1")
        variants = [
            header.replace("'shape': (", "'shape': (99999999, "),
            header.replace("'descr': '", "'descr': 'O"),
            header.replace("False", "True"),
            header.replace("'shape'", "'shap"),
            header.replace(")", "", 1),
            header.replace("{", "{'x': (((((((((((((((((((((((((((((((((((((((((", 1),
            "{'descr': '<i4', 'fortran_order': False, 'shape': (1e999,), }".ljust(hlen - 1) + "\n",
            header[: int(rng.integers(0, len(header)))],
            "\"\"\"" + header[3:],
        ]
        new_header = variants[int(rng.integers(0, len(variants)))].encode("latin1")
        magic = data[:8] if rng.random() < 0.8 else b"\x93NUMPY" + bytes([int(rng.integers(0, 5)), 0])
        new_len = len(new_header) if rng.random() < 0.8 else int(rng.integers(0, 65536))
        return kind, rebuild(raw, {name: magic + struct.pack("<H", new_len) + new_header + data[10 + hlen:]})
    if kind == "npy_body":
        name = str(rng.choice(arrays))
        data = bytearray(read_member(raw, name))
        action = int(rng.integers(0, 3))
        if action == 0:
            data = data[: int(rng.integers(0, len(data)))]
        elif action == 1:
            data += bytes(int(rng.integers(1, 100)))
        else:
            at = int(rng.integers(min(128, len(data) - 1), len(data)))
            data[at] ^= 1 << int(rng.integers(0, 8))
        return kind, rebuild(raw, {name: bytes(data)})
    if kind in ("counts_edit", "stats_edit"):
        pool = [n for n in arrays if n.startswith("counts/" if kind == "counts_edit" else "stats/")] or arrays
        name = str(rng.choice(pool))
        arr = np.lib.format.read_array(io.BytesIO(read_member(raw, name)))
        flat = arr.reshape(-1)
        at = int(rng.integers(0, flat.size))
        if arr.dtype.kind == "f":
            flat[at] = [np.inf, -np.inf, np.nan, -0.5, 1.5, 1e300][int(rng.integers(0, 6))]
        else:
            delta = int(rng.choice([-1, 1, 7, -(2**31), 2**31 - 1 - int(flat[at])]))
            flat[at] = np.int64(int(flat[at]) + delta).astype(arr.dtype)  # wraps like the stored integer
        return kind, rebuild(raw, {name: npy(arr)})
    if kind == "shape_edit":  # grid / text_tokens / kv_tokens edits, many keeping ⌈N/M⌉
        d = json.loads(json.dumps(doc))
        m = d["meta"]
        t, h, w = m["grid"]
        edits = [("grid", [t, h, w - 1]), ("grid", [w, h, t]), ("grid", [t, h, w + 1]),
                 ("text_tokens", m["text_tokens"] + 1), ("block_m", 32 if m["block_m"] != 32 else 16),
                 ("kv_tokens", (m.get("kv_tokens") or 20) - 1), ("heads", list(range(len(m["heads"]) + 1))),
                 ("num_heads", len(m["heads"]) - 1), ("layers", m["layers"][:-1] or [0]),
                 ("num_layers", 2**62), ("num_steps", 2**62), ("num_heads", 10**8)]
        key, value = edits[int(rng.integers(0, len(edits)))]
        m[key] = value
        if key == "text_tokens" and m["text_position"] == "none":
            m["text_position"] = "after"
        return kind, rebuild(raw, {META_MEMBER: json.dumps(d).encode()})
    if kind == "bomb":
        name = str(rng.choice(arrays + [META_MEMBER]))
        declared = int(rng.choice([bomb_size, len(read_member(raw, name)), 2**32 - 1]))
        return kind, add_bomb(rebuild(raw, {name: None}), name, bomb, declared, bomb_size)
    if kind == "method":
        return kind, rebuild(raw, {}, method=int(rng.choice([zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])))
    # members: duplicate, extra, dropped
    action = int(rng.integers(0, 3))
    if action == 0:
        return kind, rebuild(raw, {str(rng.choice(names)): None})
    if action == 1:
        return kind, rebuild(raw, {}, extra={"extra.bin": bytes(1000)})
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        buf = io.BytesIO(raw)
        with zipfile.ZipFile(buf, "a") as za, warnings_off():
            name = str(rng.choice(names))
            za.writestr(name, z.read(str(rng.choice(names))))
    return kind, buf.getvalue()


@contextlib.contextmanager
def warnings_off():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- running a case -----------------------------------------------------------------------------------------
def exercise(path: Path) -> str:
    """Read everything a command could read; 'ok', 'FgTraceError' or raises anything else."""
    try:
        with open_trace(path) as tr:
            for p, layer in tr.entries():
                tr.counts(p, layer, n=16)
                tr.stats(p, layer)
                tr.entry_density(p, layer)
            tr.density()
            tr.verify()
            p, layer = tr.entries()[0]
            tr.csr(p, layer)
            repr(tr)
        return "ok"
    except FgTraceError as exc:
        msg = str(exc)
        if "\n" in msg or "\r" in msg or not msg.startswith(str(path)):
            raise AssertionError(f"FgTraceError message not one line naming the file: {msg!r}") from None
        return "FgTraceError"


def cli_output_ok(rc: int | None, stderr: str) -> bool:
    """Exit 0, or exit 2 with exactly one error line (the last line of stderr) and no traceback."""
    lines = stderr.strip().splitlines()
    if rc == 0:
        return "Traceback" not in stderr
    return rc == 2 and bool(lines) and "error:" in lines[-1] and sum("error" in x for x in lines) == 1 \
        and "Traceback" not in stderr


def run_cli(args: list[str]) -> tuple[int, str]:
    from fgsim import cli

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = cli.main(args)
    return rc, err.getvalue()


def run_case(i: int, seed: int, bases: list[bytes], bomb: bytes, workdir: Path, cli_every: int,
             keep_dir: Path | None) -> dict[str, Any]:
    rng = np.random.default_rng([seed, i])
    base = int(rng.integers(0, len(bases)))
    try:
        kind, data = mutate(bases[base], rng, bomb)
    except Exception as exc:  # a bug of this script, not of fgsim: report it apart
        return {"case": i, "base": base, "kind": "generator", "outcome": "generator_error", "cpu_seconds": 0.0,
                "seconds": 0.0, "peak_mib": 0.0, "error": f"{type(exc).__name__}: {exc}"}
    path = workdir / f"case{i}.fgt"
    path.write_bytes(data)
    row: dict[str, Any] = {"case": i, "base": base, "kind": kind, "bytes": len(data)}
    tracemalloc.reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        row["outcome"] = exercise(path)
    except Exception as exc:  # the failure this fuzzer looks for
        row["outcome"] = "other"
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    row["seconds"] = time.perf_counter() - t0
    row["cpu_seconds"] = time.process_time() - c0
    row["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    if cli_every and i % cli_every == 0:
        for cmd in ("inspect", "predict"):
            try:
                rc, err = run_cli([cmd, str(path)])
                if not cli_output_ok(rc, err):
                    row.setdefault("cli", []).append(f"{cmd}: rc {rc}, stderr {err[:300]!r}")
            except BaseException as exc:  # an uncaught exception: the user would see a traceback
                row.setdefault("cli", []).append(f"{cmd}: traceback {type(exc).__name__}: {str(exc)[:300]}")
        row["cli_checked"] = True
    if keep_dir is not None:
        (keep_dir / path.name).write_bytes(data)
    path.unlink(missing_ok=True)
    return row


def worker(conn: Any, seed: int, bases: list[bytes], bomb: bytes, cli_every: int, mem_limit: int,
           keep_dir: str | None) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
    tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="fgsim-fuzz-") as tmp:
        while True:
            i = conn.recv()
            if i is None:
                break
            row = run_case(i, seed, bases, bomb, Path(tmp), cli_every, Path(keep_dir) if keep_dir else None)
            row["worker_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            conn.send(row)


def special_inputs(tmp: Path) -> list[dict[str, Any]]:
    """Non-regular files and hostile names, each run in a subprocess with a timeout."""
    fifo = tmp / "fifo.fgt"
    os.mkfifo(fifo)
    (tmp / "dir.fgt").mkdir()
    weird = tmp / "new\nline.fgt"
    weird.write_bytes(b"PK\x05\x06" + bytes(18))
    rows = []
    for label, path in [("/dev/zero", "/dev/zero"), ("fifo", str(fifo)), ("directory", str(tmp / "dir.fgt")),
                        ("newline in name", str(weird)), ("missing", str(tmp / "missing.fgt"))]:
        for cmd in ("inspect", "predict"):
            t0 = time.perf_counter()
            try:
                p = subprocess.run([sys.executable, "-m", "fgsim", cmd, path], capture_output=True, text=True,
                                   timeout=30, cwd=ROOT)
                ok = p.returncode == 2 and cli_output_ok(p.returncode, p.stderr)
                rows.append({"input": label, "command": cmd, "rc": p.returncode, "ok": ok,
                             "stderr": p.stderr.strip()[:200], "seconds": round(time.perf_counter() - t0, 2)})
            except subprocess.TimeoutExpired:
                rows.append({"input": label, "command": cmd, "rc": None, "ok": False, "stderr": "timeout",
                             "seconds": 30})
    return rows


def subprocess_sample(files: list[Path], timeout: float) -> list[dict[str, Any]]:
    rows = []
    for path in files:
        for cmd in ("inspect", "predict"):
            try:
                p = subprocess.run([sys.executable, "-m", "fgsim", cmd, str(path)], capture_output=True, text=True,
                                   timeout=timeout, cwd=ROOT)
                ok = cli_output_ok(p.returncode, p.stderr)
                rows.append({"file": path.name, "command": cmd, "rc": p.returncode, "ok": ok,
                             "stderr": p.stderr.strip()[-300:]})
            except subprocess.TimeoutExpired:
                rows.append({"file": path.name, "command": cmd, "rc": None, "ok": False, "stderr": "timeout"})
    return rows


def positive_float(text: str) -> float:
    """A finite number > 0 (argparse type)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=positive_int, default=10000)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--workers", type=positive_int, default=2)
    ap.add_argument("--timeout", type=positive_float, default=5.0, help="CPU seconds per case above which it is a hang")
    ap.add_argument("--wall-timeout", type=positive_float, default=60.0,
                    help="wall seconds after which a case's worker is killed (a hang; generous: shared CPUs)")
    ap.add_argument("--cli-every", type=positive_int, default=10, help="run inspect/predict in-process every k-th case")
    ap.add_argument("--subprocess-sample", type=nonneg_int, default=20, help="cases re-run as `python -m fgsim` processes")
    ap.add_argument("--mem-limit-mib", type=positive_int, default=3072, help="address-space limit of each worker")
    ap.add_argument("--replay", type=int, default=None, help="run one case in this process and print it")
    ap.add_argument("--out", type=Path, default=None, help="summary JSON (and a CSV of failures beside it)")
    args = ap.parse_args(argv)
    if args.out:  # checked before hours of fuzzing, not when the summary is written
        try:
            check_output_path(args.out, "--out", (".json",))
        except FgsimError as exc:
            ap.error(str(exc))
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="fgsim-fuzz-main-") as tmp_name:
        tmp = Path(tmp_name)
        bases = base_traces(tmp)
        bomb = bomb_stream()
        if args.replay is not None:
            tracemalloc.start()
            print(json.dumps(run_case(args.replay, args.seed, bases, bomb, tmp, 1, None), indent=1))
            return 0
        print(f"fuzz_traces: seed {args.seed}, {args.cases} cases, {args.workers} workers", flush=True)
        keep = tmp / "keep"
        keep.mkdir()
        ctx = mp.get_context("fork")
        rows: list[dict[str, Any]] = []
        hangs: list[dict[str, Any]] = []
        todo = list(range(args.cases))
        sample_every = max(1, args.cases // max(1, args.subprocess_sample))

        def start() -> tuple[Any, Any]:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child, args.seed, bases, bomb, args.cli_every,
                                                    args.mem_limit_mib * 2**20, str(keep)), daemon=True)
            proc.start()
            return proc, parent

        workers = [start() for _ in range(args.workers)]
        busy: dict[int, tuple[int, float]] = {}
        last_print = time.time()
        while todo or busy:
            for w, (proc, conn) in enumerate(workers):
                if w not in busy and todo:
                    i = todo.pop(0)
                    conn.send(i)
                    busy[w] = (i, time.time())
                if w in busy:
                    i, t0 = busy[w]
                    if conn.poll(0.01):
                        try:
                            rows.append(conn.recv())
                        except EOFError:  # the worker died (e.g. killed by the OOM killer)
                            hangs.append({"case": i, "what": "worker died"})
                            workers[w] = start()
                        del busy[w]
                    elif time.time() - t0 > args.wall_timeout:
                        proc.kill()
                        proc.join()
                        hangs.append({"case": i, "what": f"no result after {args.wall_timeout} s wall"})
                        del busy[w]
                        workers[w] = start()
            if time.time() - last_print > 30:
                print(f"  {len(rows) + len(hangs)}/{args.cases} cases, {time.time() - t_start:.0f} s", flush=True)
                last_print = time.time()
        for proc, conn in workers:
            conn.send(None)
            proc.join(5)
        sample = sorted(keep.glob("case*.fgt"), key=lambda p: int(p.stem[4:]))[::sample_every][:args.subprocess_sample]
        sub_rows = subprocess_sample(sample, 60)
        special = special_inputs(tmp)
    hangs += [{"case": r["case"], "what": f"{r['cpu_seconds']:.1f} CPU s"} for r in rows
              if r["cpu_seconds"] > args.timeout]
    others = [r for r in rows if r["outcome"] == "other"]
    cli_bad = [r for r in rows if r.get("cli")]
    summary = {
        "script": "validation/fuzz_traces.py", "seed": args.seed, "cases": args.cases,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
        "python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
        "wall_s": round(time.time() - t_start, 1), "timeout_s": args.timeout,
        "outcomes": dict(Counter(r["outcome"] for r in rows)),
        "kinds": dict(Counter(r["kind"] for r in rows)),
        "non_fgtraceerror_exceptions": len(others), "hangs": len(hangs),
        "generator_errors": sum(r["outcome"] == "generator_error" for r in rows),
        "max_case_cpu_seconds": round(max((r["cpu_seconds"] for r in rows), default=0.0), 3),
        "max_case_wall_seconds": round(max((r["seconds"] for r in rows), default=0.0), 3),
        "wall_timeout_s": args.wall_timeout,
        "peak_traced_mib_max": round(max((r["peak_mib"] for r in rows), default=0.0), 1),
        "worker_peak_rss_mib_max": round(max((r["worker_maxrss_mib"] for r in rows), default=0.0), 1),
        "cli_cases_in_process": sum(1 for r in rows if r.get("cli_checked")),
        "cli_failures_in_process": len(cli_bad),
        "cli_subprocess_runs": len(sub_rows), "cli_subprocess_failures": sum(not r["ok"] for r in sub_rows),
        "cli_subprocess_rc": dict(Counter(str(r["rc"]) for r in sub_rows)),
        "special_inputs": special,
        "failures": (others + cli_bad)[:50], "hang_cases": hangs[:50],
        "subprocess_failures": [r for r in sub_rows if not r["ok"]][:20],
    }
    text = json.dumps(summary, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("failures", "special_inputs", "hang_cases",
                                                                    "subprocess_failures")}, indent=1))
    bad = len(others) + len(hangs) + len(cli_bad) + summary["cli_subprocess_failures"] + \
        sum(not r["ok"] for r in special)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
