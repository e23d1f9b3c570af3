"""Occupancy: resident CTAs per SM from the compiled kernel's registers and shared memory.

The compiled figures come, in this order, from a calibration's ``resources`` table (registers / shared bytes that
``fgsim calibrate`` read off the compiled Triton kernel of that exact launch configuration), from the launch
table (``extra['n_regs']`` / ``extra['shared_bytes']`` of the tuned entry, only while the configuration is
the tuned one), else from an estimate of what Triton allocates (stated in the prediction's notes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fgsim.errors import FgsimError
from fgsim.hardware import GPU
from fgsim.launchcfg import KernelConfig

ELT_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "tf32": 4, "fp32": 4}


@dataclass(frozen=True)
class Occupancy:
    slots: int  # resident CTAs per SM
    limiter: str
    smem_bytes: int
    regs_per_thread: int
    gain: float  # SM throughput with `slots` CTAs relative to one
    rates: tuple[float, ...] = ()  # per-CTA speed with j = 1..slots resident CTAs
    source: str = "estimate"  # where registers / shared memory came from


def config_key(cfg: KernelConfig) -> str:
    """Key of a compiled launch configuration (resources table): kernel/dtype/D/M/BLOCK_N/warps/stages/variant."""
    ex = cfg.extra
    if ex.get("impl") == "gluon":  # the Gluon form's compile, not the tl entry's (fgsim.model.gluon)
        from fgsim.model.gluon import gluon_key

        return gluon_key(cfg)
    var = "tma" if ex.get("tma") and cfg.kernel != "fg" else "ptr"
    if cfg.kernel == "fg":
        var = f"g{cfg.gran_n}ia{int(ex.get('idx_ahead', 0))}"
    if ex.get("overlap"):
        var += "+ov"
    if ex.get("maxnreg"):
        var += f"+r{int(ex['maxnreg'])}"
    if ex.get("tail_reuse") and cfg.kernel == "fg":
        var += "+tr"
    if ex.get("tma_q") and not ex.get("tma_qo"):
        var += "+tmaq"
    if ex.get("tail_branch") and cfg.kernel == "dense":  # the masked last tile under a branch: another compile
        var += "+tb"
    if ex.get("one_row"):  # one program per row running the nested persistent form's row code (fgattn)
        var = ("1row" if cfg.kernel != "fg" else f"g{cfg.gran_n}+1row") + ("+ie" if ex.get("idx_early") else "") + \
            ("+tmaq" if ex.get("tma_q") else "") + (f"+r{int(ex['maxnreg'])}" if ex.get("maxnreg") else "")
    if ex.get("persistent"):
        nested = not ex.get("flatten", True)
        var = ("persistent" if not nested else "persistent-nested") + \
            ("+q" if nested and ex.get("queue") else "") + ("+ie" if nested and ex.get("idx_early") else "") + \
            (f"+r{int(ex['maxnreg'])}" if ex.get("maxnreg") else "")
    if ex.get("exp_poly"):  # part of the softmax's exp2 by the FMA polynomial: another compile (revision 7)
        var += f"+ep{float(ex['exp_poly']):g}"
    return f"{cfg.kernel}/{cfg.dtype}/d{cfg.head_dim}/m{cfg.block_m}/bn{cfg.block_n}/w{cfg.num_warps}/s{cfg.num_stages}/{var}"


def _tuned_figures_apply(cfg: KernelConfig) -> bool:
    """The launch table's compiled figures describe ``cfg`` unless a what-if changed its shape or depth
    (``extra['compiled']`` records what they were measured for, when the table has it)."""
    comp = cfg.extra.get("compiled")
    if isinstance(comp, Mapping):
        return all(int(comp.get(k, v)) == v for k, v in (("block_n", cfg.block_n), ("num_warps", cfg.num_warps),
                                                            ("num_stages", cfg.num_stages)))
    return "override" not in cfg.source and "what-if" not in cfg.source


def compiled_resources(cfg: KernelConfig, resources: Mapping[str, Any] | None = None) -> tuple[int, int, str]:
    """(registers per thread, shared bytes, source) of ``cfg``; 0 where unknown."""
    if resources:
        r = resources.get(config_key(cfg))
        if r and int(r.get("n_regs", 0)) > 0:
            return int(r["n_regs"]), int(r.get("shared", 0)), "compiled (calibration resources table)"
    if _tuned_figures_apply(cfg) and int(cfg.extra.get("n_regs", 0)) > 0:
        return int(cfg.extra["n_regs"]), int(cfg.extra.get("shared_bytes", 0)), "compiled (launch table)"
    return 0, 0, "estimate"


def spilled_registers(cfg: KernelConfig, resources: Mapping[str, Any] | None = None) -> int:
    """Registers per thread the compiler spilled to local memory (Triton's ``n_spills`` of the compiled kernel);
    0 when unknown. Without a compiled figure, a register cap (``maxnreg``) below the estimated need spills the
    difference."""
    if resources:
        r = resources.get(config_key(cfg))
        if r and int(r.get("n_regs", 0)) > 0:
            return int(r.get("n_spills", 0))
    if _tuned_figures_apply(cfg) and int(cfg.extra.get("n_regs", 0)) > 0:
        return int(cfg.extra.get("n_spills", 0))
    cap = int(cfg.extra.get("maxnreg") or 0) or 255
    return max(0, _register_need(cfg) - cap)


def mma_per_tile(cfg: KernelConfig, gpu: GPU) -> float:
    """Tensor-core instructions one warp issues per key tile: wgmma ``m64nNk16`` (each warpgroup owns
    ``max(1, M / (64 wg))`` 64-row blocks, with fewer rows than warpgroups x 64 the warpgroups split N; S = QK^T
    takes D/16, PV takes BLOCK_N/16 per block: the SASS of M=64 tiles with 8 warps has these HGMMA) or, without
    wgmma, mma.sync ``m16n8k16`` split over the warps."""
    m, bn, d, w = cfg.block_m, cfg.block_n, cfg.head_dim, cfg.num_warps
    wg = max(1, w // 4)
    if gpu.has_wgmma:
        return max(1.0, m / (64.0 * wg)) * (d / 16.0 + bn / 16.0)
    return m * bn * d / (1024.0 * w)


#: the tile loop's local-memory traffic per spilled register when its SASS is unknown (instructions, bytes one
#: warp issues per tile): least-squares slopes over the 47 spilling configurations compiled offline for the
#: development data (validation/results/h200-sass-offline.json: 1.26 instructions, 7.5 bytes per register)
SPILL_LDST_PER_REG = 1.26
SPILL_BYTES_PER_REG = 7.5
#: instructions one warp issues per key tile when the SASS is unknown: a + b S + c O + d LDST, with S / O the score
#: and output elements per thread of the tile (M BLOCK_N / threads, M D / threads) and LDST the local-memory
#: instructions; least squares over the 192 configurations compiled offline (MAPE 25 %)
INSTR_FIT = (86.5, 5.3, 4.59, 1.73)


def local_traffic(cfg: KernelConfig, gpu: GPU, resources: Mapping[str, Any] | None = None
                  ) -> tuple[float, float, float, str]:
    """(local-memory instructions, their bytes, all instructions) one warp issues per key tile of the compiled tile
    loop, and their source: the SASS figures of the resources table (``loop_ldst``, ``loop_ldst_bytes``,
    ``loop_instr`` per ``loop_mma`` tensor-core instructions of one loop iteration, fgsim.validation.sass), else
    estimates from the spilled registers and the tile shape (:data:`SPILL_LDST_PER_REG`, :data:`INSTR_FIT`)."""
    r = (resources or {}).get(config_key(cfg)) or {}
    f = mma_per_tile(cfg, gpu) / float(r["loop_mma"]) if int(r.get("loop_mma", 0)) > 0 else 0.0
    if f and "loop_ldst" in r:
        ldst, nbytes, src = float(r["loop_ldst"]) * f, float(r.get("loop_ldst_bytes", 0)) * f, "SASS"
    else:
        sp = spilled_registers(cfg, resources)
        ldst, nbytes, src = SPILL_LDST_PER_REG * sp, SPILL_BYTES_PER_REG * sp, "estimate"
    if f and int(r.get("loop_instr", 0)) > 0:
        instr = float(r["loop_instr"]) * f
    else:
        thr = 32.0 * cfg.num_warps
        a, b, c, d = INSTR_FIT
        instr = a + b * cfg.block_m * cfg.block_n / thr + c * cfg.block_m * cfg.head_dim / thr + d * ldst
        src = "estimate"
    return ldst, nbytes, instr, src


#: the softmax's instructions per key tile when the SASS is unknown (whole CTA, thread instructions): MUFU =
#: M BLOCK_N (1 - exp_poly) + SOFTMAX_FIT[0] M (the rescale factors), FP32 = SOFTMAX_FIT[1] M BLOCK_N + M D (the O
#: rescale) + SOFTMAX_FIT[2] exp_poly M BLOCK_N (the polynomial's FP32 instructions); least squares over the
#: configurations compiled offline (validation/results/h200-sass-offline.json)
SOFTMAX_FIT = (7.25, 4.49, 7.0)
#: FP32-pipe instructions per score of the online softmax itself (revision 8): the row max (FMNMX), the scaled
#: subtraction feeding exp2 (FFMA) and the row sum (FADD), one each per score; the fg D=128 M=128 tile loop's SASS
#: (Triton 3.6, sm_90) has 68 + 66 + 68 per 64 scores per thread. The O rescale (M D per tile) comes on top.
SOFTMAX_FP32_PIPE = 3.16


def exp_poly_fraction(cfg: KernelConfig) -> float:
    """Fraction of P's exp2 the kernel computes by the FMA polynomial (launch option ``exp_poly``; 0 = MUFU only)."""
    f = cfg.extra.get("exp_poly", 0) or 0
    return float(f) if isinstance(f, (int, float)) and not isinstance(f, bool) else 0.0


def softmax_instr(cfg: KernelConfig, gpu: GPU, resources: Mapping[str, Any] | None = None
                  ) -> tuple[float, float, str]:
    """(MUFU, FP32-pipe) thread instructions of one key tile of the whole CTA, and their source: the compiled tile
    loop's ``loop_mufu`` / ``loop_fp32`` (per thread and loop iteration, fgsim.validation.sass) x threads, scaled to
    :func:`mma_per_tile`; else :data:`SOFTMAX_FIT` (revision 7)."""
    r = (resources or {}).get(config_key(cfg)) or {}
    base = float(r.get("sm_loop_mma") or r.get("loop_mma") or 0)
    thr = 32.0 * cfg.num_warps
    if base > 0 and str(r.get("loop_mufu", "")) not in ("", "None") and "loop_fp32" in r:
        f = mma_per_tile(cfg, gpu) / base
        return float(r["loop_mufu"]) * f * thr, float(r["loop_fp32"]) * f * thr, "SASS"
    return (*softmax_estimate(cfg), "estimate")


def softmax_estimate(cfg: KernelConfig) -> tuple[float, float]:
    """(MUFU, FP32) thread instructions of one key tile of the whole CTA without the SASS (:data:`SOFTMAX_FIT`)."""
    m, bn, d = cfg.block_m, cfg.block_n, cfg.head_dim
    ep = exp_poly_fraction(cfg)
    a, b, c = SOFTMAX_FIT
    return m * bn * (1.0 - ep) + a * m, b * m * bn + m * d + c * ep * m * bn


def mma_waits(cfg: KernelConfig, gpu: GPU, resources: Mapping[str, Any] | None = None) -> tuple[float, str]:
    """Waited tensor-core instructions one warp issues per key tile, and their source: the compiled tile loop's
    ``loop_mma_wait`` (HGMMA carrying the gsb0 scoreboard, fgsim.validation.sass) per ``loop_mma``, scaled to
    :func:`mma_per_tile`; a pipelined loop waits twice per tile (S = QK^T before the softmax, P V before the next
    tile), a loop ptxas serialised waits for every wgmma. Without the SASS figure: :func:`serialised_estimate`."""
    if not gpu.has_wgmma:
        return 2.0, "no wgmma"
    r = (resources or {}).get(config_key(cfg)) or {}
    if int(r.get("loop_mma", 0)) > 0 and str(r.get("loop_mma_wait", "")) not in ("", "None"):
        f = mma_per_tile(cfg, gpu) / float(r["loop_mma"])
        return max(2.0, float(r["loop_mma_wait"]) * f), "SASS"
    return (mma_per_tile(cfg, gpu) if serialised_estimate(cfg) else 2.0), "estimate"


def serialised_estimate(cfg: KernelConfig) -> bool:
    """Whether ptxas serialises the tile loop's wgmma when its SASS is unknown: what every configuration compiled
    with Triton 3.6 for sm_90 showed (the calibration and development rows' ``loop_mma_wait``): a 128-register cap
    (``maxnreg``), the flattened persistent loop and the dense kernel without ``tail_branch`` serialise; every other
    form is pipelined."""
    e = cfg.extra
    flat = bool(e.get("persistent", False)) and bool(e.get("flatten", True))
    return bool(e.get("maxnreg")) or flat or (cfg.kernel == "dense" and not e.get("tail_branch"))


def shared_bytes(cfg: KernelConfig, resources: Mapping[str, Any] | None = None) -> int:
    """Shared memory of one CTA (bytes): the compiled figure when known, else Q + num_stages x (K + V tiles)
    (+ the FG kernel's index tiles)."""
    _, sh, _ = compiled_resources(cfg, resources)
    if sh > 0:
        return sh
    elt = ELT_BYTES.get(cfg.dtype, 2)
    m, nb, d = cfg.block_m, cfg.block_n, cfg.head_dim
    return int(m * d * elt + cfg.num_stages * 2 * nb * d * elt + (cfg.num_stages * nb * 4 if cfg.kernel == "fg" else 0))


#: registers per thread beyond the O / S / P tiles, by kernel: the compiled calibration kernels need about 30 more
#: (dense), 40 (block with TMA; +60 with the overlap option) and 65 (FG: gather pointers and index vectors)
#: (validation/results/h200-2026-11-30-costmodel-calib.csv, n_regs against the tile formula)
REGISTER_OVERHEAD = {"dense": 30, "block": 40, "fg": 65}


def _register_need(cfg: KernelConfig) -> int:
    threads = cfg.num_warps * 32
    m, nb, d = cfg.block_m, cfg.block_n, cfg.head_dim
    extra = REGISTER_OVERHEAD.get(cfg.kernel, 40) + (60 if cfg.extra.get("overlap") else 0)
    return int(math.ceil((m * d + 1.5 * m * nb) / threads)) + extra


def estimated_regs(cfg: KernelConfig) -> int:
    """Registers per thread when no compiled figure exists: fp32 O (M x D) and S (M x BLOCK_N) plus the 16-bit P
    over the threads, plus the kernel's addresses, softmax state and loop counters (capped at 255)."""
    est = min(255, _register_need(cfg))
    cap = int(cfg.extra.get("maxnreg") or 0)  # a register cap (Triton maxnreg) wins; the excess spills
    return min(est, cap) if cap > 0 else est


def occupancy(cfg: KernelConfig, gpu: GPU, resources: Mapping[str, Any] | None = None) -> tuple[int, str, int, int]:
    """Resident CTAs per SM from shared memory, threads, registers and the CTA cap: (slots, limiter, smem, regs).

    FgsimError if one CTA does not fit the GPU's shared memory per CTA (the configuration does not launch)."""
    smem = shared_bytes(cfg, resources)
    regs, _, _ = compiled_resources(cfg, resources)
    regs = regs or estimated_regs(cfg)
    threads = cfg.num_warps * 32
    if smem > gpu.smem_per_cta_kb * 1024:
        raise FgsimError(f"{cfg.describe()} needs {smem} B of shared memory; {gpu.name} allows "
                         f"{int(gpu.smem_per_cta_kb * 1024)} B per CTA")
    # registers are allocated per warp in units of 256 (8 per thread)
    regs_alloc = int(math.ceil(regs / 8) * 8)
    lim = {
        "smem": int(gpu.smem_per_sm_kb * 1024 // max(smem, 1)),
        "threads": gpu.max_threads_per_sm // threads,
        "registers": gpu.registers_per_sm // (regs_alloc * threads),
        "cta cap": gpu.max_ctas_per_sm,
    }
    limiter = min(lim, key=lambda k: lim[k])
    return max(1, lim[limiter]), limiter, smem, regs
