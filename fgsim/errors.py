"""Errors that fgsim reports to a user as one line (exit code 2 from the CLI)."""

from __future__ import annotations

#: Longest message text kept (characters); longer text (e.g. a quoted hostile header) is cut with an ellipsis.
MAX_MESSAGE_CHARS = 600


def one_line(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` as one printable line: newlines and other control characters escaped (``\\n``), cut to ``limit``."""
    s = str(text)
    if not s.isprintable():
        s = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)
    return s if len(s) <= limit else s[:limit - 1] + "…"


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
