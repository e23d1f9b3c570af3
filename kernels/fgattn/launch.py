"""Launch configurations of the fgattn kernels (pure Python: json + dataclasses only).

The table lives in ``fgattn/data/launch_configs.json``: one entry per
(kernel, gpu, head_dim, block_m, gran_n).  The environment variable ``FGATTN_LAUNCH_TABLE`` names another
table file (e.g. one tuned on your GPU, or an earlier table to re-price measurements made with it); kernels
and cost model then both read that file.  The kernels launch with exactly the
:class:`LaunchConfig` this module returns, and the cost model reads the same
object, so a prediction knows what ran.  This module must not import torch or
triton (the cost model imports it in a numpy-only environment).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "ARCH",
    "DTYPES",
    "GRAN_NS",
    "HEAD_DIMS",
    "KERNELS",
    "BLOCK_MS",
    "LaunchConfig",
    "launch_config",
    "load_table",
    "gpu_key",
]

_DATA = Path(__file__).resolve().parent / "data" / "launch_configs.json"
#: Environment variable naming a launch-table file that replaces the packaged one.
TABLE_ENV = "FGATTN_LAUNCH_TABLE"


def table_file() -> Path:
    """The launch-table file in use: ``$FGATTN_LAUNCH_TABLE`` when set, else the packaged table.

    Raises:
        ValueError: naming the variable when the file it names does not exist.
    """
    env = os.environ.get(TABLE_ENV)
    if not env:
        return _DATA
    path = Path(env)
    if not path.is_file():
        raise ValueError(f"{TABLE_ENV}: {env}: no such file")
    return path

KERNELS = ("fg", "block", "dense")
HEAD_DIMS = (64, 128)
BLOCK_MS = (64, 128)
GRAN_NS = (1, 16, 64)
DTYPES = ("bf16", "fp16", "fp32")
LAYOUTS = ("bhnd", "bnhd")
#: GPU key -> architecture; a GPU without its own entry falls back to one of the same architecture.
ARCH = {"h100": "sm90", "h200": "sm90", "a100": "sm80", "b200": "sm100", "l40s": "sm89"}


@dataclass(frozen=True)
class LaunchConfig:
    """One kernel launch configuration.

    Attributes:
        kernel: ``"fg"`` (gathered M×gran_n tiles), ``"block"`` (M×M blocks) or ``"dense"``.
        gpu: GPU key the configuration is used on (lower case, e.g. ``"h200"``).
        head_dim: D, elements per query/key/value row.
        block_m: M, queries per program (query block), 64 or 128.
        block_n: keys per inner-loop tile (the tensor-core N dimension of Q·Kᵀ).
        gran_n: keys per gathered run (1 = M×1 slices; block kernel: = block_m; dense: 1).
        num_warps: warps per program.
        num_stages: software-pipelining depth Triton is asked for.
        dtype: element type of q/k/v (``"bf16"``, ``"fp16"``, ``"fp32"``).
        layout: memory layout the entry was tuned with (``"bhnd"`` or ``"bnhd"``); both run.
        extra: kernel options (``idx_ahead``: index tiles prefetched in registers, 0 = left to
            the pipeliner; ``tma``: tensor-descriptor loads; ``warp_specialize``; ``lpt``: order
            query blocks longest-first; ``tma_qo``: Q/O through tensor descriptors; ``maxnreg``:
            register cap per thread, e.g. 128 at 8 warps so that two programs share an SM; ``tma_q``: Q by a
            host-built TMA descriptor (not with ``tma_qo``); ``tail_reuse`` (fg with ``idx_ahead`` 1): the
            masked tail tile reuses the index vector the loop prefetched, its score mask from arithmetic;
            ``persistent``: G = min(rows, ``programs_per_sm`` (default 1) × SMs) programs, program p
            runs launch positions p, p+G, … (:mod:`fgattn.schedule`); ``flatten`` (persistent, default
            true): one pipelined loop over (row, key tile) items instead of a row loop around the tile
            loop; ``queue`` (persistent with ``flatten`` false, default false): program p runs positions p,
            p+G, p+2G, then takes each next row from a global atomic counter in launch order (dynamic:
            a program that finishes early takes more rows); ``idx_early`` (nested persistent loop, default
            false): the next tile's index entries are loaded at the top of the iteration, before this tile's
            gathers, instead of after its matrix multiplies; ``one_row`` (default false; not with
            ``persistent``): one program per row (query block), grid = rows in launch order, placed by the
            hardware's CTA dispatch as the default kernel: the nested persistent kernel with G = rows, each
            program running one row (the row's full tiles in the pipelined loop, the masked tail tile(s) after
            it with the entries the loop prefetched; its next-row loads go unused); ``idx_early`` and ``tma_q``
            apply, ``programs_per_sm``/``flatten``/``queue``/``limit_sms`` do not); persistent and ``one_row``
            ignore ``idx_ahead`` (always one tile ahead), ``tail_reuse`` (always), ``tma``, ``tma_qo``,
            ``warp_specialize``, ``overlap``); ``tail_branch`` (dense, default false; not measured yet): the masked
            last key tile under an always-true scalar branch, with which ptxas keeps the loop's wgmma pipeline
            (without it, ptxas C7515: every wgmma of the dense kernel serialised); for the nested persistent loop
            and ``one_row`` (default false each): ``guard_next`` (the next row's Offsets / index / Q loads predicated
            off at run time where there is no next row: with ``one_row``, no dead loads of row 0 in flight when a
            program ends), ``tma_o`` (O by one bulk tensor store through a host-built descriptor), ``tail_fold`` (fg
            gran_n 1: no masked tail tile: the last tile runs in the pipelined loop, its unused columns reading the
            row's last kept key, whose extra copies are subtracted from the softmax sum and the accumulator after
            the loop).
        source: where the entry came from (tuned run, or the fallback taken).
    """

    kernel: str
    gpu: str
    head_dim: int
    block_m: int
    block_n: int
    gran_n: int
    num_warps: int
    num_stages: int
    dtype: str
    layout: str
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    source: str = ""

    def option(self, name: str, default: Any) -> Any:
        """Value of an ``extra`` option, ``default`` when absent."""
        return self.extra.get(name, default)


def gpu_key(device_name: str) -> str:
    """Map a device name such as ``"NVIDIA H200"`` or ``"NVIDIA H100 80GB HBM3"`` to a table key."""
    low = device_name.lower()
    for key in ARCH:
        if key in low:
            return key
    raise ValueError(f"gpu: no launch-table key for device {device_name!r} (known: {sorted(ARCH)})")


@lru_cache(maxsize=4)
def load_table(path: str | None = None) -> dict[tuple[str, str, int, int, int], dict[str, Any]]:
    """Read the launch table; keys are (kernel, gpu, head_dim, block_m, gran_n)."""
    data = json.loads(Path(path or table_file()).read_text())
    table: dict[tuple[str, str, int, int, int], dict[str, Any]] = {}
    for e in data["entries"]:
        key = (e["kernel"], e["gpu"], int(e["head_dim"]), int(e["block_m"]), int(e["gran_n"]))
        table[key] = e
    return table


def _check(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not supported (allowed: {list(allowed)})")


def launch_config(
    kernel: str,
    gpu: str,
    head_dim: int,
    block_m: int,
    gran_n: int = 1,
    dtype: str = "bf16",
    *,
    table_path: str | None = None,
) -> LaunchConfig:
    """Launch configuration of ``kernel`` on ``gpu`` for one (head_dim, block_m, gran_n).

    Args:
        kernel: ``"fg"``, ``"block"`` or ``"dense"``.
        gpu: lower-case GPU key (``"h200"``, ``"h100"``, ...).
        head_dim: D (64 or 128).
        block_m: M, queries per query block (64 or 128).
        gran_n: keys per gathered run for ``"fg"`` (1, 16, 64); ignored (forced) for ``"block"``
            (= block_m) and ``"dense"`` (= 1).
        dtype: ``"bf16"``, ``"fp16"`` or ``"fp32"``; 16-bit types share one tuned entry, fp32
            (CPU tests) reuses it too.
        table_path: alternative table file (default: :func:`table_file`).

    Raises:
        ValueError: naming the argument that has no entry.
    """
    _check("kernel", kernel, KERNELS)
    _check("head_dim", head_dim, HEAD_DIMS)
    _check("block_m", block_m, BLOCK_MS)
    _check("dtype", dtype, DTYPES)
    if kernel == "fg":
        _check("gran_n", gran_n, GRAN_NS)
    elif kernel == "block":
        gran_n = block_m
    else:
        gran_n = 1
    if gpu not in ARCH:
        raise ValueError(f"gpu: {gpu!r} is not a known GPU key (known: {sorted(ARCH)})")
    table = load_table(str(table_path or table_file()))
    key = (kernel, gpu, head_dim, block_m, gran_n)
    entry = table.get(key)
    note = ""
    if entry is None:
        for other, arch in ARCH.items():
            if other != gpu and arch == ARCH[gpu] and (kernel, other, head_dim, block_m, gran_n) in table:
                entry = table[(kernel, other, head_dim, block_m, gran_n)]
                note = f"fallback: no {gpu} entry, using same-architecture ({arch}) {other} entry; "
                break
    if entry is None:
        raise ValueError(
            f"gpu: no launch entry for {gpu!r} ({ARCH[gpu]}) or a same-architecture GPU "
            f"(kernel={kernel}, head_dim={head_dim}, block_m={block_m}, gran_n={gran_n})"
        )
    if dtype == "fp32":
        note += "fp32 reuses the 16-bit entry; "
    return LaunchConfig(
        kernel=kernel,
        gpu=gpu,
        head_dim=head_dim,
        block_m=block_m,
        block_n=int(entry["block_n"]),
        gran_n=gran_n,
        num_warps=int(entry["num_warps"]),
        num_stages=int(entry["num_stages"]),
        dtype=dtype,
        layout=str(entry.get("layout", "bhnd")),
        extra=dict(entry.get("extra", {})),
        source=note + str(entry.get("source", "")),
    )
