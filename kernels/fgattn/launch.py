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
    "AUTO_PREFIX",
    "auto_epilogue",
    "auto_epilogue_error",
    "DTYPES",
    "GRAN_NS",
    "HEAD_DIMS",
    "KERNELS",
    "BLOCK_MS",
    "LaunchConfig",
    "launch_config",
    "load_table",
    "gpu_key",
    "GLUON_KNOBS",
    "EXPAND_KEYS",
    "IMPLS",
    "check_impl",
    "impl_for_arch",
    "CONTIG_KEYS",
    "CONTIG_KNOBS",
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

#: implementations of an entry (``extra["impl"]``, default ``"tl"``): the Triton ``tl`` kernels of
#: ``fgattn.attention``, or ``"gluon"``: the Gluon form of ``fgattn.gluon_fg`` (fg D128 M128 gran 1 on sm_90 only -- and gran 16 / 64
#: with ``extra.gluon.expand``: the gran-1 list kernel on the expanded index, :data:`EXPAND_KEYS`;
#: its knobs in ``extra["gluon"]``; the entry's other fields and options stay the tl kernel's, which runs wherever
#: the Gluon form cannot: :func:`fgattn.attention.fg_route`) or, form ``contig``, of ``fgattn.gluon_contig`` (dense
#: / block D128 M128, :data:`CONTIG_KEYS`; :func:`fgattn.attention.contig_route`)
IMPLS = ("tl", "gluon")
#: (kernel, head_dim, block_m, gran_n) the Gluon form implements (``fgattn.gluon_fg``)
GLUON_KEY = ("fg", 128, 128, 1)
#: architectures the Gluon form runs on (wgmma, TMA, setmaxnreg: Hopper)
GLUON_ARCHS = ("sm90",)
#: ``extra["gluon"]`` knob -> (allowed values, default), the arguments of ``fgattn.gluon_fg.fg_attention_gluon``
#: (``fence`` = its ``consumer_fence``); ``regs`` = [consumer, producer] registers per thread or None (checked by
#: :func:`check_impl` with the rule of ``gluon_fg.check_ws2_knobs``; tests/test_gluon_fg.py keeps the two equal);
#: ``schedule`` (form ws2 only, not an argument of ``fg_attention_gluon``: :meth:`LaunchConfig.gluon_schedule`):
#: ``"walk"`` (default) = program p runs launch positions p, p + G, ...; ``"list"`` = the rows of a host-built
#: greedy list plan (``fgattn.gluon_fg_list``, built once per index; the packaged fg D128 M128 g1 entry's schedule
#: since session 13: kernels/NOTES.md); ``epilogue`` (form ws2, ``schedule: "list"`` only): the consumers' row end,
#: ``"stg"`` (default: per-thread stores, the code without the knob) or ``"tma"`` (``fgattn.gluon_fg.EPILOGUES``:
#: TMA O store + offsets a row ahead + one reciprocal per row; kernels/NOTES.md "Session 14, K4") or ``"tma_offs"``
#: (the same without the reciprocal; "Session 14, K5") or ``"tma_sel"`` (``"tma"`` with the empty row zeroed by a
#: select, not a uniform branch; "Session 14, K6") or ``"tma_defer"`` / ``"tma_defer_pv"`` (research, session 16, T:
#: ``"tma_sel"`` with the row's O stored under the next row's tile-0 QK / and its last PV issued first at the next row's
#: start; ``fgattn.gluon_fg.EPILOGUES_FG``) or ``"auto:SHORT:TILES"`` (:data:`AUTO_PREFIX`)
GLUON_KNOBS: dict[str, tuple[tuple[Any, ...], Any]] = {
    "form": (("one_row", "persistent", "ws", "ws2"), None),
    "pipeline": ((0, 1, 2, 3), 0),
    "fence": ((True, False), True),
    "exp_poly": ((0, 0.25), 0),
    "pingpong": ((False, True), False),
    "regs": ((), None),
    "schedule": (("walk", "list"), "walk"),
    "epilogue": (("stg", "tma", "tma_offs", "tma_sel", "tma_defer", "tma_defer_pv"), "stg"),
    "tail64": ((False, True), False),
    "dyntail": ((), 0),
    "expand": ((False, True), False),
    "c_row": ((), None),
}
#: ``extra.gluon.expand`` (session 17, helper K: kernels/NOTES.md "Session 17, K"; not an argument of
#: ``fg_attention_gluon``, read by :meth:`LaunchConfig.gluon_expand`): an ``impl: gluon`` fg D128 M128 gran-16 / 64
#: entry (:data:`EXPAND_KEYS`) runs the gran-1 list kernel on its index expanded to kept keys (run start s -> keys
#: s·g .. s·g + g - 1, clipped at N; ``fgattn.gran_expand``, memoised per index like the list plan); required
#: (``true``) on those keys, not allowed on the gran-1 key; needs ``schedule: "list"``
EXPAND_KNOB = "expand"
#: (kernel, head_dim, block_m, gran_n) keys whose ``impl: gluon`` form is the gran-1 list kernel on the expanded index
EXPAND_KEYS = (("fg", 128, 128, 16), ("fg", 128, 128, 64))
#: ``extra.gluon.c_row`` (session 17, helper K; read by :meth:`LaunchConfig.gluon_c_row`): the list planner's row cost
#: in 128-key tiles (``fgattn.gluon_fg_list.plan_ws2_list``'s ``c_row``; absent = ``gluon_fg_list.C_ROW_TILES``,
#: 3.0), read by the kernels' planner and by fgsim's schedule simulation alike; a number in [0, 50]; needs
#: ``schedule: "list"``
C_ROW_KNOB = "c_row"
#: the range of :data:`C_ROW_KNOB`
C_ROW_RANGE = (0.0, 50.0)
#: ``extra.gluon.dyntail`` (session 16, D3: kernels/NOTES.md "Session 16, D2" / "Session 16, D3"; not an argument of
#: ``fg_attention_gluon``, read by :meth:`LaunchConfig.gluon_dyntail`): the pool share of the list launch's dynamic
#: tail (``fgattn.gluon_fg_dyntail``: the rows a program would start at or after (1 - share) x the mean load go to a
#: run-time pool claimed through a global counter, zeroed on the stream before every launch); 0 (default) = off (the
#: binary without the knob), else a number in (0, 1] (1: every row but each program's first from the pool); needs
#: ``schedule: "list"``, ``epilogue: "tma_sel"`` and no ``tail64`` (the one combination measured)
DYNTAIL_KNOB = "dyntail"
#: ``extra.gluon.tail64`` (research knob, session 15, K8: kernels/NOTES.md "Session 15, K8"; not an argument of
#: ``fg_attention_gluon``, read by :meth:`LaunchConfig.gluon_tail64`): a row whose last packed tile holds <= 64 kept
#: keys runs that tile as a 64-key QK / softmax / PV (``fgattn.gluon_fg._tail64``); form ws2 with ``schedule:
#: "list"`` only (the list launch; the walk fallback under capture without a plan runs without it); default False
#: (the binary without the knob)
TAIL64_KNOB = "tail64"
#: (kernel, head_dim, block_m, gran_n) keys with the Gluon form ``"contig"`` (``fgattn.gluon_contig``: the ws2 CTA
#: with TMA K/V loads of contiguous 128-key blocks, issue 12 session 13; not in the packaged table yet: the candidate
#: kernels/logs/launch_configs-candidate-contig.json, kernels/NOTES.md "Session 13, K2")
CONTIG_KEYS = (("dense", 128, 128, 1), ("block", 128, 128, 128))
#: ``extra["gluon"]`` knob -> (allowed values, default) of a contig entry: the arguments of
#: ``fgattn.gluon_contig.contig_attention_gluon`` (``regs`` = [consumer, producer] registers per thread, the rule of
#: ``gluon_contig.check_regs``, default its ``DEFAULT_REGS``; ``pipeline`` / ``pingpong`` as its ``_constexprs``
#: checks them; tests/test_contig_dispatch.py keeps the two equal); ``epilogue``: the consumers' row end, as the fg
#: entry's knob (``fgattn.gluon_fg.EPILOGUES``; the contig CTA's consumers are ``gluon_fg._ws2x_consumer``), default
#: ``"stg"`` (the binary without the knob); no ``"auto:..."`` form (session 15, K7: kernels/NOTES.md)
CONTIG_KNOBS: dict[str, tuple[tuple[Any, ...], Any]] = {
    "form": (("contig",), None),
    "pipeline": ((1, 3), 1),
    "pingpong": ((False, True), False),
    "regs": ((), (216, 64)),
    "epilogue": (("stg", "tma", "tma_offs", "tma_sel"), "stg"),
}
#: ``extra.gluon.epilogue: "auto:SHORT:TILES"`` (form ws2, ``schedule: "list"``): per launch, the row end SHORT (one
#: of :data:`AUTO_SHORT`) when the launch's list plan has a mean of at most TILES executed 128-key tiles per row, else
#: ``"stg"`` (the binary without the knob); TILES = -Δc_row / Δc_tile, the crossover of SHORT's paired fits against
#: ``"stg"`` on this GPU (µs per row over µs per tile: kernels/tools/epilogue_crossover.py; kernels/NOTES.md "Session
#: 14, K6").  Resolved by ``fgattn.gluon_fg.resolve_epilogue``; a launch without a plan (the walk) runs ``"stg"``.
AUTO_PREFIX = "auto:"
AUTO_SHORT = ("tma", "tma_offs", "tma_sel")


def auto_epilogue_error(value: Any) -> str | None:
    """None if ``value`` is a valid ``"auto:SHORT:TILES"`` row end (:data:`AUTO_PREFIX`), else why not (one line)."""
    parts = value.split(":") if isinstance(value, str) else []
    try:
        tiles = float(parts[2]) if len(parts) == 3 else float("nan")
    except ValueError:
        tiles = float("nan")
    if len(parts) != 3 or parts[0] != "auto" or parts[1] not in AUTO_SHORT or not 0 < tiles < 1e6:
        return (f"must be 'auto:SHORT:TILES' with SHORT one of {list(AUTO_SHORT)} and TILES a number in (0, 1e6) "
                "(mean executed 128-key tiles per row up to which SHORT runs)")
    return None


def auto_epilogue(value: Any) -> tuple[str, float] | None:
    """(SHORT, TILES) of a valid ``"auto:SHORT:TILES"`` row end; None for any other value."""
    if not isinstance(value, str) or not value.startswith(AUTO_PREFIX) or auto_epilogue_error(value):
        return None
    _, short, tiles = value.split(":")
    return short, float(tiles)


#: knobs of form ``ws2`` only / of the warp-specialized forms only
_WS2_ONLY = ("pipeline", "exp_poly", "pingpong", "regs", "schedule", "epilogue", "tail64", "expand")
_WS_ONLY = ("fence",)
#: the knobs ``schedule: "list"`` requires: the one form measured with it (``fgattn.gluon_fg_list.LIST_KNOBS``:
#: pipeline 1, no fence)
_LIST_FORM = {"pipeline": 1, "fence": False, "exp_poly": 0, "pingpong": False, "regs": None}


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

    @property
    def impl(self) -> str:
        """``"tl"`` (the Triton kernels, default) or ``"gluon"`` (``extra["impl"]``; see :data:`IMPLS`)."""
        return str(self.extra.get("impl", "tl"))

    def gluon_options(self) -> dict[str, Any]:
        """Keyword arguments of ``fgattn.gluon_fg.fg_attention_gluon`` for an ``impl: gluon`` fg entry (knobs of
        ``extra["gluon"]`` with their defaults; ``fence`` -> ``consumer_fence``, ``regs`` a tuple), or of
        ``fgattn.gluon_contig.contig_attention_gluon`` for a dense / block entry of form ``contig`` (``regs``,
        ``pipeline``, ``pingpong``: :data:`CONTIG_KNOBS`).

        Raises:
            ValueError: the entry is not ``impl: gluon`` or its knobs are invalid (:func:`check_impl`).
        """
        check_impl(self.kernel, self.head_dim, self.block_m, self.gran_n, self.extra, "config")
        if self.impl != "gluon":
            raise ValueError(f"config: impl={self.impl!r} has no Gluon options")
        g = self.extra["gluon"]
        if g["form"] == "contig":
            out = {k: g.get(k, default) for k, (_, default) in CONTIG_KNOBS.items() if k != "form"}
            out["regs"] = tuple(int(r) for r in out["regs"])
            return out
        out = {k: g.get(k, default) for k, (_, default) in GLUON_KNOBS.items()
               if k not in ("schedule", TAIL64_KNOB, DYNTAIL_KNOB, EXPAND_KNOB, C_ROW_KNOB)}
        out["consumer_fence"] = out.pop("fence")
        out["regs"] = None if out["regs"] is None else tuple(int(r) for r in out["regs"])
        return out

    def gluon_schedule(self) -> str:
        """Row schedule of an ``impl: gluon`` entry of form ws2: ``"walk"`` (default; also for every other fg form and
        for tl entries) or ``"list"`` (``extra["gluon"]["schedule"]``, validated by :func:`check_impl`); form
        ``contig`` always runs ``fgattn.gluon_contig.plan_contig``'s greedy list plan: ``"list"``."""
        if self.impl != "gluon":
            return "walk"
        if self.gluon_options() and self.extra["gluon"]["form"] == "contig":  # validates the knobs
            return "list"
        return str(self.extra["gluon"].get("schedule", "walk"))

    def gluon_tail64(self) -> bool:
        """``extra.gluon.tail64`` of an ``impl: gluon`` fg entry (validated by :func:`check_impl`; False for every
        other entry): the list launch's research 64-key last tile (:data:`TAIL64_KNOB`)."""
        if self.impl != "gluon" or self.extra["gluon"].get("form") == "contig":
            return False
        self.gluon_options()  # validates the knobs
        return bool(self.extra["gluon"].get(TAIL64_KNOB, False))

    def gluon_dyntail(self) -> float:
        """``extra.gluon.dyntail`` of an ``impl: gluon`` fg entry (validated by :func:`check_impl`; 0.0 for every
        other entry): the list launch's dynamic-tail pool share (:data:`DYNTAIL_KNOB`; 0 = off)."""
        if self.impl != "gluon" or self.extra["gluon"].get("form") == "contig":
            return 0.0
        self.gluon_options()  # validates the knobs
        return float(self.extra["gluon"].get(DYNTAIL_KNOB, 0))

    def gluon_expand(self) -> bool:
        """``extra.gluon.expand`` of an ``impl: gluon`` fg entry (validated by :func:`check_impl`; False for every
        other entry): a gran-16 / 64 entry run by the gran-1 list kernel on the expanded index (:data:`EXPAND_KNOB`)."""
        if self.impl != "gluon" or self.extra["gluon"].get("form") == "contig":
            return False
        self.gluon_options()  # validates the knobs
        return bool(self.extra["gluon"].get(EXPAND_KNOB, False))

    def gluon_c_row(self) -> float | None:
        """``extra.gluon.c_row`` of an ``impl: gluon`` fg list entry (validated by :func:`check_impl`), or None: the
        planner's default (``fgattn.gluon_fg_list.C_ROW_TILES``) (:data:`C_ROW_KNOB`)."""
        if self.impl != "gluon" or self.extra["gluon"].get("form") == "contig":
            return None
        self.gluon_options()  # validates the knobs
        v = self.extra["gluon"].get(C_ROW_KNOB)
        return None if v is None else float(v)

    def tl_config(self) -> LaunchConfig:
        """The same entry as the tl kernel launches it (``impl`` and ``gluon`` removed): what runs where the
        Gluon form cannot, and the kernel a tl entry's SASS is compiled from."""
        if "impl" not in self.extra and "gluon" not in self.extra:
            return self
        from dataclasses import replace

        return replace(self, extra={k: v for k, v in self.extra.items() if k not in ("impl", "gluon")})


def gpu_key(device_name: str) -> str:
    """Map a device name such as ``"NVIDIA H200"`` or ``"NVIDIA H100 80GB HBM3"`` to a table key."""
    low = device_name.lower()
    for key in ARCH:
        if key in low:
            return key
    raise ValueError(f"gpu: no launch-table key for device {device_name!r} (known: {sorted(ARCH)})")


def _gluon_regs_ok(regs: Any) -> bool:
    """``regs`` = [consumer, producer]: multiples of 8, 24 <= producer <= consumer <= 240, sum <= 280 (the rule of
    ``fgattn.gluon_fg.check_ws2_knobs``: the default partition gets 504 - consumer - producer)."""
    if not isinstance(regs, (list, tuple)) or len(regs) != 2:
        return False
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in regs):
        return False
    cr, pr = regs
    return cr % 8 == 0 and pr % 8 == 0 and 24 <= pr <= cr <= 240 and cr + pr <= 280


def check_impl(kernel: str, head_dim: int, block_m: int, gran_n: int, extra: dict[str, Any], where: str) -> str:
    """Validate an entry's implementation choice (``extra["impl"]`` and, for ``"gluon"``, ``extra["gluon"]``);
    return the implementation.  Pure Python (no torch / triton): the table is checked where it is read.

    Raises:
        ValueError: one line starting with ``where`` (the table file and entry, or ``config``) naming the field.
    """
    impl = extra.get("impl", "tl")
    if impl not in IMPLS:
        raise ValueError(f"{where}: extra.impl={impl!r} must be one of {list(IMPLS)}")
    knobs = extra.get("gluon")
    if impl == "tl":
        if knobs is not None:
            raise ValueError(f"{where}: extra.gluon is given but extra.impl is 'tl' (set impl 'gluon' or drop it)")
        return impl
    key = (kernel, head_dim, block_m, gran_n)
    contig_form = isinstance(knobs, dict) and knobs.get("form") == "contig"
    if (key != GLUON_KEY and key not in CONTIG_KEYS and key not in EXPAND_KEYS) or (key in EXPAND_KEYS and contig_form):
        raise ValueError(f"{where}: extra.impl='gluon' exists only for kernel fg, head_dim 128, block_m 128, "
                         f"gran_n 1 (fgattn.gluon_fg), gran_n 16 / 64 with extra.gluon.expand (fgattn.gran_expand) "
                         f"and, form 'contig', for dense / block head_dim 128, block_m 128 "
                         f"(fgattn.gluon_contig), not ({kernel}, {head_dim}, {block_m}, {gran_n})")
    if not isinstance(knobs, dict) or "form" not in knobs:
        raise ValueError(f"{where}: extra.impl='gluon' needs extra.gluon, an object with at least 'form' "
                         f"(knobs: {list(CONTIG_KNOBS if key in CONTIG_KEYS else GLUON_KNOBS)})")
    if key in CONTIG_KEYS:
        return _check_contig(knobs, kernel, where)
    if key in EXPAND_KEYS and knobs.get(EXPAND_KNOB) is not True:
        raise ValueError(f"{where}: extra.impl='gluon' exists only for kernel fg, head_dim 128, block_m 128 at gran_n "
                         f"1, or at gran_n {gran_n} with extra.gluon.expand=true (the gran-1 list kernel on the "
                         f"expanded index, schedule 'list'), not expand={knobs.get(EXPAND_KNOB)!r}")
    if key == GLUON_KEY and knobs.get(EXPAND_KNOB, False) is not False:
        raise ValueError(f"{where}: extra.gluon.expand={knobs[EXPAND_KNOB]!r} is for the fg gran_n 16 / 64 entries "
                         "(a gran-1 index is already kept keys); drop it")
    unknown = sorted(set(knobs) - set(GLUON_KNOBS))
    if unknown:
        raise ValueError(f"{where}: extra.gluon has unknown knobs {unknown} (known: {list(GLUON_KNOBS)})")
    for name, value in knobs.items():
        allowed = GLUON_KNOBS[name][0]
        if name == "regs":
            if value is not None and not _gluon_regs_ok(value):
                raise ValueError(f"{where}: extra.gluon.regs={value!r} must be [consumer, producer] multiples of 8 "
                                 "with 24 <= producer <= consumer <= 240 and consumer + producer <= 280")
            continue
        if name == C_ROW_KNOB:
            lo, hi = C_ROW_RANGE
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"{where}: extra.gluon.c_row={value!r} must be a number in [{lo:g}, {hi:g}] (the "
                                 "list planner's row cost in 128-key tiles)")
            continue
        if name == DYNTAIL_KNOB:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{where}: extra.gluon.dyntail={value!r} must be a number in [0, 1] (the pool "
                                 "share; 0 = off)")
            continue
        if name == "epilogue" and isinstance(value, str) and value.startswith(AUTO_PREFIX):
            why = auto_epilogue_error(value)
            if why:
                raise ValueError(f"{where}: extra.gluon.epilogue={value!r} {why}")
            continue
        bool_knob = isinstance(allowed[0], bool)
        if isinstance(value, bool) != bool_knob or value not in allowed:
            raise ValueError(f"{where}: extra.gluon.{name}={value!r} must be one of {list(allowed)}")
    form = knobs["form"]
    on = [k for k in _WS2_ONLY if knobs.get(k, GLUON_KNOBS[k][1]) != GLUON_KNOBS[k][1]]
    if on and form != "ws2":
        raise ValueError(f"{where}: extra.gluon.{on[0]} is a knob of form 'ws2' only, not form={form!r}")
    if "fence" in knobs and form not in ("ws", "ws2"):
        raise ValueError(f"{where}: extra.gluon.fence is a knob of forms 'ws' / 'ws2' only, not form={form!r}")
    if knobs.get(DYNTAIL_KNOB, 0) and (knobs.get("schedule", "walk") != "list"
                                       or knobs.get("epilogue", "stg") != "tma_sel" or knobs.get(TAIL64_KNOB, False)):
        raise ValueError(f"{where}: extra.gluon.dyntail={knobs[DYNTAIL_KNOB]!r} needs extra.gluon.schedule='list', "
                         "epilogue='tma_sel' and no tail64 (fgattn.gluon_fg_dyntail's kernel), not "
                         f"schedule={knobs.get('schedule', 'walk')!r}, epilogue={knobs.get('epilogue', 'stg')!r}, "
                         f"tail64={knobs.get(TAIL64_KNOB, False)!r}")
    if knobs.get("schedule", "walk") == "list":
        got = {k: knobs.get(k, GLUON_KNOBS[k][1]) for k in _LIST_FORM}
        if got != _LIST_FORM:
            raise ValueError(f"{where}: extra.gluon.schedule='list' runs fgattn.gluon_fg_list's kernel, which is "
                             f"form ws2 with {_LIST_FORM} only, not {got}")
    elif knobs.get(EXPAND_KNOB, False) or C_ROW_KNOB in knobs:
        what = f"expand={knobs[EXPAND_KNOB]!r}" if knobs.get(EXPAND_KNOB, False) else f"c_row={knobs[C_ROW_KNOB]!r}"
        raise ValueError(f"{where}: extra.gluon.{what} needs extra.gluon.schedule='list' (fgattn.gluon_fg_list's "
                         "planner and kernel); set schedule 'list' or drop it")
    elif knobs.get(TAIL64_KNOB, False):
        raise ValueError(f"{where}: extra.gluon.tail64=True needs extra.gluon.schedule='list' (fgattn.gluon_fg_list's "
                         "kernel); set schedule 'list' or drop tail64")
    elif knobs.get("epilogue", "stg") != "stg":
        raise ValueError(f"{where}: extra.gluon.epilogue={knobs['epilogue']!r} is measured only with "
                         "extra.gluon.schedule='list' (fgattn.gluon_fg_list's kernel); set schedule 'list' or "
                         "epilogue 'stg'")
    return impl


def _check_contig(knobs: dict[str, Any], kernel: str, where: str) -> str:
    """:func:`check_impl` for a dense / block D128 M128 entry: form ``contig`` and :data:`CONTIG_KNOBS` only."""
    if knobs["form"] != "contig":
        raise ValueError(f"{where}: extra.impl='gluon' exists only for kernel fg, head_dim 128, block_m 128, gran_n 1 "
                         f"(fgattn.gluon_fg, forms {list(GLUON_KNOBS['form'][0])}) and as form 'contig' for dense / "
                         f"block head_dim 128, block_m 128 (fgattn.gluon_contig), not {kernel} with "
                         f"extra.gluon.form={knobs['form']!r}")
    unknown = sorted(set(knobs) - set(CONTIG_KNOBS))
    if unknown:
        raise ValueError(f"{where}: extra.gluon has unknown knobs {unknown} for form 'contig' "
                         f"(known: {list(CONTIG_KNOBS)})")
    for name, value in knobs.items():
        allowed = CONTIG_KNOBS[name][0]
        if name == "regs":
            if not _gluon_regs_ok(value):
                raise ValueError(f"{where}: extra.gluon.regs={value!r} must be [consumer, producer] multiples of 8 "
                                 "with 24 <= producer <= consumer <= 240 and consumer + producer <= 280")
            continue
        if isinstance(value, bool) != isinstance(allowed[0], bool) or value not in allowed:
            raise ValueError(f"{where}: extra.gluon.{name}={value!r} must be one of {list(allowed)} (form 'contig')")
    return "gluon"


def impl_for_arch(cfg: LaunchConfig, arch: str) -> str:
    """The implementation a launch of ``cfg`` on a GPU of architecture ``arch`` (e.g. ``"sm90"``) runs, as far as
    the table and the GPU decide it: ``"gluon"`` for an ``impl: gluon`` entry on :data:`GLUON_ARCHS`, else ``"tl"``.
    At run time ``fgattn.attention.fg_route`` also falls back to tl for fp32, ``return_lse``, the interpreter, a
    Triton without Gluon and Q strides TMA cannot read (the cost model prices what this function returns)."""
    return "gluon" if cfg.impl == "gluon" and arch in GLUON_ARCHS else "tl"


@lru_cache(maxsize=4)
def load_table(path: str | None = None) -> dict[tuple[str, str, int, int, int], dict[str, Any]]:
    """Read the launch table; keys are (kernel, gpu, head_dim, block_m, gran_n).

    Raises:
        ValueError: naming the file and entry when an entry's ``impl`` / ``gluon`` options are invalid
            (:func:`check_impl`).
    """
    file = Path(path or table_file())
    data = json.loads(file.read_text())
    table: dict[tuple[str, str, int, int, int], dict[str, Any]] = {}
    for e in data["entries"]:
        key = (e["kernel"], e["gpu"], int(e["head_dim"]), int(e["block_m"]), int(e["gran_n"]))
        check_impl(key[0], key[2], key[3], key[4], dict(e.get("extra", {})),
                   f"{file}: entry {key[0]}/{key[1]}/D{key[2]}/M{key[3]}/g{key[4]}")
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
