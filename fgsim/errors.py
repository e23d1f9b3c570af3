"""Errors that fgsim reports to a user as one line (exit code 2 from the CLI), and the wording of counts in the
messages and tables it prints (:func:`counted`)."""

from __future__ import annotations

#: Longest message text kept (characters); longer text (e.g. a quoted hostile header) is cut with an ellipsis.
MAX_MESSAGE_CHARS = 600


def one_line(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` as one printable line: newlines and other control characters escaped (``\\n``), cut to ``limit``."""
    s = str(text)
    if not s.isprintable():
        s = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def counted(n: int, noun: str, plural: str | None = None, fmt: str = "") -> str:
    """``n`` and ``noun`` in agreement: ``counted(1, "entry", "entries")`` is ``1 entry``, ``counted(3, "head")``
    is ``3 heads`` (``fmt``: the number's format spec, e.g. ``,``)."""
    return f"{n:{fmt}} {noun if n == 1 else plural or noun + 's'}"


class FgsimError(Exception):
    """Bad input from a user: a file, an argument or a configuration. The message is one line."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class FgTraceError(FgsimError, ValueError):
    """A .fgt trace file is missing, truncated, corrupt, of an unknown version or inconsistent.

    The message always starts with the file's path.
    """

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
