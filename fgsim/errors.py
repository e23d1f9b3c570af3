"""Errors that fgsim reports to a user as one line (exit code 2 from the CLI)."""

from __future__ import annotations


class FgsimError(Exception):
    """Bad input from a user: a file, an argument or a configuration. The message is one line."""


class FgTraceError(FgsimError, ValueError):
    """A .fgt trace file is missing, truncated, corrupt, of an unknown version or inconsistent.

    The message always starts with the file's path.
    """

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
