"""Argument types and checks shared by the subcommands (every bad value fails in argparse, before any work), and
the notices they print before long work."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    """An integer ≥ 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {v}")
    return v


def power_of_two(lo: int, hi: int) -> Callable[[str], int]:
    """A type: a power of two in [lo, hi] (tile sizes)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a power of two in {lo}..{hi}, got {text!r}") from None
        if v < lo or v > hi or v & (v - 1):
            raise argparse.ArgumentTypeError(f"must be a power of two in {lo}..{hi}, got {v}")
        return v
    parse.__name__ = "power of two"
    return parse


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """A type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {v}")
        return v
    parse.__name__ = "integer"
    return parse


def density(text: str) -> float:
    """A kept-key density in (0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not (math.isfinite(v) and 0 < v <= 1):
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return v


def csv_list(item: Callable[[str], Any], allowed: tuple[Any, ...] | None = None) -> Callable[[str], list[Any]]:
    """A type: a comma-separated list of ``item`` values (each in ``allowed`` when given), at least one."""
    def parse(text: str) -> list[Any]:
        parts = [x.strip() for x in text.split(",") if x.strip()]
        if not parts:
            raise argparse.ArgumentTypeError("expected a comma-separated list, got nothing")
        out = []
        for x in parts:
            try:
                v = item(x)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise argparse.ArgumentTypeError(f"bad list item {x!r}: {exc}") from None
            if allowed is not None and v not in allowed:
                raise argparse.ArgumentTypeError(
                    f"{x!r} is not allowed (choose from {', '.join(map(str, allowed))})")
            if v in out:  # a repeated value would only repeat rows of the output
                raise argparse.ArgumentTypeError(f"{x!r} is listed twice in {text!r}")
            out.append(v)
        return out
    parse.__name__ = "list"
    return parse


def gpu_list(text: str) -> list[str]:
    """Comma-separated GPU names or .json paths, or ``all`` (every GPU in ``list_gpus()``); each is loaded
    here so an unknown one fails before any work."""
    from fgsim.errors import FgsimError
    from fgsim.hardware import list_gpus, load_gpu

    names = list_gpus() if text.strip().lower() == "all" else [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected GPU names, e.g. h200 or h100,h200,b200 or all")
    for n in names:
        try:
            load_gpu(n)
        except FgsimError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a GPU is named twice in {text!r}")
    return names


def numba_notice() -> None:
    """One line on stderr when the scheduler's numba code has no up-to-date cache (its first compile takes
    5-25 s after an install or an edit, depending on the machine: 6 s on the 2-core development machine, 2026-12-01)."""
    import glob
    import os
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "scheduler.py"
    custom = os.environ.get("NUMBA_CACHE_DIR")
    dirs = [Path(custom)] if custom else [src.parent / "__pycache__"]
    found = [f for d in dirs for f in glob.glob(str(d / "**" / "scheduler.*.nbi"), recursive=True)]
    if not found or max(os.path.getmtime(f) for f in found) < src.stat().st_mtime:
        print("fgsim: compiling the scheduler (numba, once after install: 5-25 s) ...", file=sys.stderr,
              flush=True)
