"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

Commands check every output path before any work (:func:`check_output_path`), render their outputs in memory,
and write them all at the end (:class:`PendingWrites`), so a failing command leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from fgsim.errors import FgsimError

#: Largest JSON input fgsim reads (GPU descriptions, calibrations, model files): bytes.
MAX_JSON_BYTES = 16 * 2**20
#: Largest CSV input fgsim reads (measurement and results CSVs): bytes. The biggest committed one is 0.5 MB; the
#: rows are held in memory (about ten times the file's size), so this bounds the memory a file can claim.
MAX_CSV_BYTES = 64 * 2**20
#: Longest physical line of such a CSV (characters, line end included); the committed ones are under 3,200.
MAX_CSV_LINE_CHARS = 2**20


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a hidden temporary file and a rename; returns the path."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a hidden temporary file and a rename; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_csv_atomic(path: str | os.PathLike[str], rows: Sequence[Mapping[str, object]],
                     fieldnames: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as a CSV (header first; columns ``fieldnames``, default every key in first-seen order) to
    ``path`` atomically; returns the path."""
    import csv
    import io

    keys = list(fieldnames) if fieldnames is not None else list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    return write_text_atomic(path, buf.getvalue())


def check_output_path(path: str | os.PathLike[str], option: str, extensions: Iterable[str]) -> Path:
    """The output path ``path`` of ``option`` (e.g. ``--plot``), or :class:`FgsimError` (one line) if it cannot be
    written: an unknown extension, an existing directory, a missing or unwritable parent directory."""
    try:
        return _check_output_path(Path(path), option, tuple(e.lower() for e in extensions))
    except OSError as exc:  # a name too long, a path through a file, ...
        raise FgsimError(f"{option}: {path!s} cannot be written ({exc.strerror or exc})") from None
    except ValueError as exc:  # an embedded NUL byte
        raise FgsimError(f"{option}: {str(path)!r} is not a valid path ({exc})") from None


def _check_output_path(p: Path, option: str, exts: tuple[str, ...]) -> Path:
    path = str(p)
    if not path.strip():
        raise FgsimError(f"{option}: empty path")
    if p.suffix.lower() not in exts:
        raise FgsimError(f"{option}: {path} must end in {' or '.join(exts)}")
    if p.is_dir():
        raise FgsimError(f"{option}: {path} is a directory")
    parent = p.resolve().parent
    if not parent.is_dir():
        raise FgsimError(f"{option}: directory of {path} does not exist")
    if p.exists() and not os.access(p, os.W_OK):
        raise FgsimError(f"{option}: {path} is not writable")
    probe = parent / f".fgsim-probe-{os.getpid()}"
    try:  # access() says yes to root even on read-only file systems such as /proc: try a file
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError:
        raise FgsimError(f"{option}: {path} is not writable (cannot create files in {parent})") from None
    return p


class PendingWrites:
    """Outputs of a command held in memory until it succeeds; :meth:`commit` writes each atomically."""

    def __init__(self) -> None:
        self._items: list[tuple[Path, bytes]] = []

    def add(self, path: str | os.PathLike[str], data: bytes | str) -> None:
        """Queue ``data`` (text is UTF-8 encoded) for ``path``."""
        self._items.append((Path(path), data.encode("utf-8") if isinstance(data, str) else data))

    def commit(self) -> list[Path]:
        """Write every queued file; returns their paths. All are written to hidden temporary files first and
        renamed over their targets only when every one was written, so a failure leaves none of them behind."""
        staged: list[tuple[Path, Path]] = []
        try:
            for p, data in self._items:
                tmp = p.with_name(f".{p.name}.{os.getpid()}.partial")
                try:
                    tmp.write_bytes(data)
                    if p.is_dir():
                        raise IsADirectoryError(21, "Is a directory")
                except OSError as exc:
                    tmp.unlink(missing_ok=True)
                    raise FgsimError(f"{p}: cannot write ({exc.strerror or exc})") from None
                staged.append((tmp, p))
            out = []
            for tmp, p in staged:
                try:
                    os.replace(tmp, p)
                except OSError as exc:
                    raise FgsimError(f"{p}: cannot write ({exc.strerror or exc})") from None
                out.append(p)
        finally:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
        self._items.clear()
        return out


def figure_png(fig: object, dpi: int = 110) -> bytes:
    """A matplotlib figure rendered to PNG bytes (closed afterwards)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buf.getvalue()


def require_matplotlib(option: str = "--plot") -> None:
    """FgsimError (before any work) if matplotlib is not installed; selects the non-interactive Agg backend."""
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        raise FgsimError(f"{option} needs matplotlib (pip install matplotlib)") from None


def check_input_file(path: str | os.PathLike[str], what: str, max_bytes: int | None = None) -> Path:
    """``path`` if it is a regular file (of at most ``max_bytes``), else :class:`FgsimError` naming it and
    ``what`` it should be: missing, a directory, a device, pipe or socket (``/dev/zero`` would never end), too
    large."""
    import stat

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FgsimError(f"{p}: no such file") from None
    except (OSError, ValueError) as exc:  # a path through a file, a name too long, an embedded NUL byte
        raise FgsimError(f"{p}: cannot read {what} ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise FgsimError(f"{p}: is a directory, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise FgsimError(f"{p}: is not a regular file (a device, pipe or socket), not a {what}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise FgsimError(f"{p}: {st.st_size:,} bytes is too large for a {what} (at most {max_bytes:,})")
    return p


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def finite_float(text: str) -> float:
    """A JSON number as a finite float (``json.loads(parse_float=...)``); ValueError for one out of range."""
    import math

    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def read_json(path: str | os.PathLike[str], what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The parsed JSON document of ``path`` (a ``what``: "GPU description", ...), read in bounded time and
    memory, or :class:`FgsimError` (one line naming the file): not a regular file, larger than ``max_bytes``, not
    UTF-8, not JSON, NaN / Infinity or an out-of-range number, nested too deeply for the parser."""
    import json

    p = check_input_file(path, what, max_bytes)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise FgsimError(f"{p}: cannot read {what} ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:  # grew since stat()
        raise FgsimError(f"{p}: too large for a {what} (at most {max_bytes:,} bytes)")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=finite_float)
    except UnicodeDecodeError:
        raise FgsimError(f"{p}: not valid JSON (not UTF-8 text), not a {what}") from None
    except json.JSONDecodeError as exc:
        raise FgsimError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise FgsimError(f"{p}: not valid JSON for a {what} (nested too deeply)") from None
    except ValueError as exc:  # NaN / Infinity, a number out of range, an integer of thousands of digits
        raise FgsimError(f"{p}: not valid JSON for a {what} ({str(exc)[:80]})") from None


def bounded_lines(fh: TextIO, path: str | os.PathLike[str], what: str,
                  max_chars: int | None = None) -> Iterator[str]:
    """The lines of the text file ``fh`` (for :func:`csv.reader`), each read in at most ``max_chars`` characters
    of memory, or :class:`FgsimError` naming ``path`` and the line that is longer (one of 200 MB without a line
    break would otherwise be read whole). Default ``max_chars``: :data:`MAX_CSV_LINE_CHARS`."""
    max_chars = MAX_CSV_LINE_CHARS if max_chars is None else max_chars
    n = 0
    while True:
        line = fh.readline(max_chars + 1)
        if not line:
            return
        n += 1
        if len(line) > max_chars:
            raise FgsimError(f"{path}: line {n:,} is longer than {max_chars:,} characters, not a {what}")
        yield line


def check_csv_file(path: str | os.PathLike[str], what: str, option: str,
                   required: Sequence[str] = (), max_bytes: int | None = None) -> list[str]:
    """The header of the CSV ``path`` (a ``what`` given to ``option``) after one pass over the whole file in
    bounded time and memory, or :class:`FgsimError` (one line, ``<option>: <path>: <problem>``): not a regular
    file, larger than ``max_bytes`` (default :data:`MAX_CSV_BYTES`), not UTF-8, empty, a line longer than :data:`MAX_CSV_LINE_CHARS`, a field
    longer than :func:`csv.field_size_limit`, a malformed quote, a ``required`` column missing. A file that passes
    is safe for :class:`csv.DictReader` with the default limits."""
    import csv

    line = 0
    try:
        p = check_input_file(path, what, MAX_CSV_BYTES if max_bytes is None else max_bytes)
        with open(p, newline="", encoding="utf-8") as fh:
            reader = csv.reader(bounded_lines(fh, p, what), strict=True)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise FgsimError(f"{p}: empty (no header line), not a {what}")
            missing = [c for c in required if c not in header]
            if missing:
                raise FgsimError(f"{p}: not a {what} (missing columns {', '.join(missing)})")
            for _ in reader:
                line = reader.line_num
    except FgsimError as exc:
        raise FgsimError(f"{option}: {exc}") from None
    except UnicodeDecodeError:
        raise FgsimError(f"{option}: {path}: not UTF-8 text, not a {what}") from None
    except csv.Error as exc:
        raise FgsimError(f"{option}: {path}: not a readable {what} (after line {line + 1:,}: {exc})") from None
    except OSError as exc:
        raise FgsimError(f"{option}: {path}: cannot read {what} ({exc.strerror or exc})") from None
    return header
