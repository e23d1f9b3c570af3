"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

Commands check every output path before any work (:func:`check_output_path`), render their outputs in memory,
and write them all at the end (:class:`PendingWrites`), so a failing command leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from fgsim.errors import FgsimError


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
        """Write every queued file (atomically each); returns their paths."""
        out = []
        for p, data in self._items:
            try:
                out.append(write_bytes_atomic(p, data))
            except OSError as exc:
                raise FgsimError(f"{p}: cannot write ({exc.strerror or exc})") from None
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
