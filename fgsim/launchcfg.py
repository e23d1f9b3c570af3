"""Reading fgattn's launch configurations (``fgattn.launch.launch_config``) for the cost model.

The kernels launch with exactly the object ``launch_config`` returns; the cost model reads the same object.
``fgattn`` lives under ``kernels/`` in the repository; when it is not importable (e.g. ``PYTHONPATH=.``
without ``kernels``) the repository's ``kernels/`` directory is added to ``sys.path``. If it is still missing,
a documented fallback (the test configuration of Triton's fused-attention tutorial, python/tutorials/06-fused-attention.py
in github.com/triton-lang/triton) is used and
``source`` says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgsim.errors import FgsimError

KERNELS = ("fg", "block", "dense")


@dataclass(frozen=True)
class KernelConfig:
    """What the cost model needs from a launch configuration (sizes in elements)."""

    kernel: str
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int
    gran_n: int
    head_dim: int
    dtype: str
    layout: str = "bhnd"
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def grid_order(self) -> str:
        """``qb_fastest`` (program_id(0) = query block, the default) or ``head_fastest``."""
        return str(self.extra.get("grid_order", "qb_fastest"))

    def describe(self) -> str:
        return (f"{self.kernel}: BLOCK_M={self.block_m} BLOCK_N={self.block_n} gran_n={self.gran_n} "
                f"warps={self.num_warps} stages={self.num_stages} D={self.head_dim} {self.dtype}")


def _import_launch() -> Any | None:
    try:
        from fgattn import launch  # type: ignore[import-not-found]

        return launch
    except ImportError:
        pass
    kdir = Path(__file__).resolve().parent.parent / "kernels"
    if (kdir / "fgattn" / "launch.py").is_file() and str(kdir) not in sys.path:
        sys.path.append(str(kdir))
        try:
            from fgattn import launch  # type: ignore[import-not-found]

            return launch
        except ImportError:
            return None
    return None


def _fallback(kernel: str, head_dim: int, block_m: int, gran_n: int, dtype: str) -> KernelConfig:
    return KernelConfig(kernel=kernel, block_m=block_m, block_n=64, num_warps=4 if block_m <= 64 else 8,
                        num_stages=3, gran_n=gran_n if kernel == "fg" else (block_m if kernel == "block" else 1),
                        head_dim=head_dim, dtype=dtype,
                        source="fgsim fallback (fgattn.launch not importable): Triton tutorial-like BLOCK_N=64, 3 stages")


#: Launch options that need Hopper-class hardware (TMA tensor descriptors, warp specialisation); a
#: configuration borrowed by an older architecture runs without them.
HOPPER_ONLY_OPTIONS = ("tma", "tma_qo", "warp_specialize")
#: GPU architectures (``fgsim/data/gpus/*.json`` ``arch``) that have TMA and warp specialisation.
TMA_ARCHS = ("hopper", "blackwell")


def _strip_hopper_options(cfg: KernelConfig, gpu: str) -> KernelConfig:
    """A borrowed configuration without the options ``gpu`` lacks (TMA, warp specialisation), saying so."""
    from dataclasses import replace

    from fgsim.hardware import load_gpu

    try:
        arch = load_gpu(gpu).arch
    except FgsimError:
        return cfg
    dropped = [k for k in HOPPER_ONLY_OPTIONS if cfg.extra.get(k)]
    if arch in TMA_ARCHS or not dropped:
        return cfg
    extra = {**cfg.extra, **{k: False for k in dropped}}
    return replace(cfg, extra=extra, source=f"{cfg.source}; {', '.join(dropped)} off ({gpu} is {arch}: "
                                            "no TMA / warp specialisation)")


def adaptation(cfg: KernelConfig) -> str:
    """What was changed in a configuration borrowed from another GPU (shrunk, options off), '' if nothing."""
    parts = [x for x in cfg.source.split("; ") if x.startswith("shrunk to fit") or " off (" in x]
    return "; ".join(parts)


def _fit_shared_memory(cfg: KernelConfig, gpu: str) -> KernelConfig:
    """A borrowed configuration shrunk until it fits ``gpu``'s shared memory per CTA: fewer pipeline stages
    (down to 2), then narrower key tiles (down to 32, never below the FG key granularity; the block kernel's
    tile stays a divisor of BLOCK_M) — what tuning on that GPU would have to do. The compiled-kernel figures
    recorded for the lending GPU no longer apply and are dropped."""
    from dataclasses import replace

    from fgsim.costmodel import shared_bytes
    from fgsim.hardware import load_gpu

    try:
        limit = int(load_gpu(gpu).smem_per_cta_kb * 1024)
    except FgsimError:
        return cfg  # an unknown GPU is reported by whoever loads it
    if shared_bytes(cfg) <= limit:
        return cfg
    extra = {k: v for k, v in cfg.extra.items() if k not in ("shared_bytes", "n_regs")}
    out = replace(cfg, extra=extra)
    while shared_bytes(out) > limit and out.num_stages > 2:
        out = replace(out, num_stages=out.num_stages - 1)
    min_n = max(32, out.gran_n) if out.kernel == "fg" else 32
    while shared_bytes(out) > limit and out.block_n // 2 >= min_n:
        out = replace(out, block_n=out.block_n // 2)
    changed = [f"{name} {a}->{b}" for name, a, b in (("stages", cfg.num_stages, out.num_stages),
                                                      ("BLOCK_N", cfg.block_n, out.block_n)) if a != b]
    return replace(out, source=f"{cfg.source}; shrunk to fit {gpu}'s {limit} B shared memory per CTA "
                               f"({', '.join(changed) or 'compiled figures dropped'})")


def launch_config(kernel: str, gpu: str, head_dim: int, block_m: int, gran_n: int = 1, dtype: str = "bf16",
                  **overrides: Any) -> KernelConfig:
    """The launch configuration fgattn uses for ``kernel`` on ``gpu``; ``overrides`` replace fields (what-if)."""
    if kernel not in KERNELS:
        raise FgsimError(f"unknown kernel '{kernel}'; choose from {', '.join(KERNELS)}")
    mod = _import_launch()
    if mod is None:
        cfg = _fallback(kernel, head_dim, block_m, gran_n, dtype)
    else:
        note = ""
        try:
            lc = mod.launch_config(kernel=kernel, gpu=gpu, head_dim=head_dim, block_m=block_m, gran_n=gran_n,
                                   dtype=dtype)
        except (KeyError, ValueError, OSError) as exc:
            if not str(exc).startswith("gpu") or gpu == "h200":
                raise FgsimError(f"fgattn has no launch configuration for {kernel} on {gpu} (D={head_dim}, "
                                 f"M={block_m}, gran_n={gran_n}, {dtype}): {exc}") from None
            # what-if on a GPU fgattn has no tuned entry for: the same kernel configuration as on the H200
            lc = mod.launch_config(kernel=kernel, gpu="h200", head_dim=head_dim, block_m=block_m, gran_n=gran_n,
                                   dtype=dtype)
            note = f"what-if fallback: no {gpu} launch entry, using the h200 entry; "
        extra = dict(getattr(lc, "extra", {}) or {})
        cfg = KernelConfig(kernel=kernel, block_m=int(lc.block_m), block_n=int(lc.block_n),
                           num_warps=int(lc.num_warps), num_stages=int(lc.num_stages),
                           gran_n=int(getattr(lc, "gran_n", gran_n)), head_dim=head_dim, dtype=dtype,
                           layout=str(getattr(lc, "layout", "bhnd")),
                           source=note + str(getattr(lc, "source", "fgattn.launch")), extra=extra)
    if mod is not None and note:
        cfg = _fit_shared_memory(_strip_hopper_options(cfg, gpu), gpu)
    if overrides:
        from dataclasses import replace

        given = {k: v for k, v in overrides.items() if v is not None}
        if cfg.extra.get("impl") == "gluon" and any(given.get(f, getattr(cfg, f)) != getattr(cfg, f)
                                                    for f in ("block_n", "num_stages", "num_warps")):
            # the Gluon form has one fixed tile: a what-if of BLOCK_N / stages / warps is the entry's tl kernel at
            # that configuration (what fgattn runs for such a config; the validation harness measures the same)
            cfg = replace(cfg, extra={k: v for k, v in cfg.extra.items() if k not in ("impl", "gluon")},
                          source="what-if of an impl-gluon entry: its tl kernel; " + cfg.source)
        cfg = replace(cfg, **given)
    if cfg.block_m % 16 or cfg.block_n % 16 or cfg.num_stages < 1 or cfg.num_warps < 1:
        raise FgsimError(f"invalid launch configuration: {cfg.describe()}")
    return cfg
