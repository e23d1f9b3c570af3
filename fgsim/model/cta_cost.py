"""Cycles of one key tile and of one CTA of the fgattn kernels, tabulated per kept-key count.

One CTA = one query block of ``M = BLOCK_M`` rows of one head, run by ``num_warps`` warps = ``wg`` warpgroups
(Hopper: a warpgroup issues wgmma for 64 query rows; ``W = min(wg, M/64)`` warpgroups split the MMA work). Its kept
keys are packed into tiles of ``BN = BLOCK_N`` rows. Per tile (SM cycles; F, MUFU, FP32 and shared-memory rates
per SM per clock from the GPU file):

* tensor cores  ``t_mma = sum over the tile's wgmma m64nNk16 of max(64 N 16 2 / F, operand bytes / SMEM,
  wgmma_min_cycles) / mma_eff`` (revision 4; the floor: revision 5): S = QK^T reads Q (64x16) and K (Nx16) from
  shared memory, PV reads V from shared memory and P from registers, so small-N shapes (BLOCK_N = 32, or warpgroups
  splitting N when M < 64 x warpgroups) are bound by shared-memory operand bandwidth, not by the tensor rate, and
  no instruction occupies the tensor pipe for less than ``wgmma_min_cycles`` (small-N wgmma stays below the peak
  rate: Luo et al., "Benchmarking and Dissecting the Nvidia Hopper GPU Architecture", arXiv 2402.13499); a
  partial tile costs a full tile;
* MUFU exp2     ``t_exp = MUFU instructions of the tile / MUFU rate`` (revision 7: the compiled tile loop's
  MUFU.EX2 count, SASS ``loop_mufu``, at the SM's MUFU rate that ``fgsim calibrate``'s ``exp2`` microbenchmark
  measures; without SASS ``M BN (1 - exp_poly) + 7.25 M``); FP32 softmax work
  ``t_fp = max(M BN fp32_per_score + M D, M BN (3.16 + 7 exp_poly) + M D) / (FP32/2)`` (``M D``: the O rescale every
  tile; the first term the fitted effective work, dependent row reductions included; the second (revision 8) the FMA
  pipe's throughput of the softmax's instructions: row max, scaled subtraction and row sum per score (SASS), and
  ``exp_poly``, the fraction of P computed by the FMA polynomial, 7 FP32 instructions each, which fill the
  effective work's idle issue slots until the pipe saturates; FP32 = the rate calibrate's ``fp32`` microbenchmark
  measures);
* shared memory ``t_smem = (rows + W BN) 2 D elt / SMEM``: the copies write the K/V rows once, every MMA
  warpgroup reads the whole K and V tile (FA3's "shared-memory tiling", arXiv 2407.08608);
* L2 → SM       ``t_bw = rows 2 D elt / bw_sm``, ``bw_sm`` = the SM's share of the L2 bandwidth among the SMs
  the grid keeps busy, capped per SM at ``l2_port_bytes_per_clk`` (revision 6: measured by ``fgsim calibrate``'s
  L2 -> shared-memory stream with TMA and cp.async, the calibration's ``gpu_properties``; the GPU file's spec value
  for an uncalibrated GPU);
* spills        ``t_spill = LDST warps ldst_cycles`` (revision 4): LDST = the local-memory instructions (LDL / STL)
  one warp issues per tile on the path every iteration of the compiled tile loop runs, read off the SASS
  (fgsim.validation.sass; an estimate from the spilled-register count without it); which values spill decides
  the cost, not how many: a spilled loop-invariant costs nothing per tile. In the chain and a shared SM resource;
* issue slots   ``t_issue = INSTR warps / 4``: every warp's instructions of the tile (SASS, or an estimate) issue
  from the SM's four warp schedulers, a shared SM resource (co-resident CTAs add their instructions);
* with M smaller than 64 x warpgroups (e.g. M=64 with 8 warps) the warpgroups split N of each wgmma (the compiled
  SASS has HGMMA m64n(N/2)k16, not mma.sync), priced by those shapes at the full tensor rate and the floor above
  (revision 5; revisions 2-4 applied the GPU file's ``mma_sync_fraction``, a literature value for mma.sync); the
  warps also split the key dimension of S (``wn = warps / (M/16) > 1``), so the P tile goes through shared memory
  to the PV operand layout (``M BN elt (1 + wn) / SMEM`` cycles) and the row max / sum reductions cross warps (two
  more ``tile_sync``);
* latency       ``t_lat = (L + rows 2 D elt / bw_sm) / lookahead``: Little's law with ``lookahead`` tiles in flight,
  ``lookahead = max(1, (num_stages - 1) / (levels + 1))`` (Triton's pipeliner splits the stages between an index load and
  the load it feeds; ``levels`` = 0 for dense tiles and FG gathers with prefetched indices, 1 for the block kernel's
  tiles, TMA included: revision 7, read off the compiled TTGIR, where the block index is a cp.async one stage ahead
  of the TMA it addresses);
* one CTA's dependency chain ``chain = t_mma + t_sm + issue + 2 mma_wait + tile_sync + t_spill``
  ``+ (waits - 2) serial_wgmma`` (revision 6: ``waits`` = the wgmma one warp waits for per tile, the SASS's
  ``loop_mma_wait``; 2 in a pipelined loop, every wgmma where ptxas serialised the chain) (+ the
  layout conversion above, + the Q copy of the flattened persistent loop below): the warpgroups
  of one CTA run the FA2 loop in lockstep (Triton's loop has no ping-pong schedule: FA3, arXiv 2407.08608, needs
  explicit warpgroup barriers for it), so inside one CTA the MMA and softmax phases of a tile do not overlap; they
  overlap only across co-resident CTAs. ``issue`` = ``TMA_ISSUE_CYCLES`` (0 since session 15) per TMA tile and CTA (revision 4: one elected
  thread issues the CTA's copies and the CTA waits on one barrier, whatever its warpgroups; revision 3 divided it
  by the warpgroups).

Shared-SM resources ``R = max(t_mma, t_sm, t_smem, t_bw, t_spill, t_issue)`` with ``t_sm = max(t_exp, t_fp)``
(revision 7; revisions 1-6: the sum): the MUFU and FP32 instructions go to different pipes from the same warp
schedulers and interleave, so the softmax phase takes the longer of the two; co-resident CTAs add them and the CTA's own bound ``C = smax(chain, t_lat)``
(``smax(a, b) = (a^p + b^p)^(1/p)``, ``p = overlap_p``: a load latency close to the chain still shows) give a CTA
alone ``max(R, C)`` (revision 7: the tensor-core and softmax time are in the chain and the asynchronous copies of a
pipelined loop run under it; revisions 3-6 joined R and C by the smooth maximum too, which priced a pipelined
CTA alone ~10 % above the chain it measured). With ``j`` CTAs
resident on an SM the resources are shared: the co-residency curve the scheduler uses is
``rates[j] = smax_q(R, C) / smax_q(j R, C)`` with ``q = share_p``, and never faster than the busiest shared
resource allows (revision 5: ``rates[j] <= alone / (j R)``, j CTAs finishing a tile each keep that resource busy
``j R`` cycles; no parameter).

Per CTA (one query-block row): ``row_cycles`` + prologue (Q and the first tile: the latency chain
row offsets → index entries → rows for index-driven kernels, Q and the first tile's gathered rows at the SM's HBM
share) + the masked tail tile's exposed latency + the O store at the SM's HBM share.

Persistent programs (``extra['persistent']``, ``programs_per_sm`` = k; fgattn's ``_attn_fwd_persistent``):
G = min(rows, k x SMs) programs (SMs of the GPU or of its partition); program p runs the rows at launch-order
positions p, p + G, ... (static round-robin, simulated with the actual per-row counts), programs placed on SM slots
like CTAs. Two forms:

* flattened (``flatten`` true, the default): one (row, tile) loop; an empty row is one masked item, the tail tile is
  one more item (no drain). Each item's K/V addresses come from loop-carried row state, so no load is issued ahead:
  an item costs ``chain + L + rows 2 D elt / bw_sm`` (the latency is added, not hidden), and Q, loop-carried, goes
  through shared memory every item (``M D elt / SMEM`` in the chain, read by each warpgroup). At the row switch the
  epilogue stores O and the next row's Q is loaded before its first S (one exposed latency + Q bytes) + ``row_cycles``;
  a program pays a pre-pass over its rows' offsets (one latency per 128 rows) and its first row's
  index latency and first gather once.
* nested (``flatten`` false): a row loop around the pipelined tile loop: each row pays the one-row CTA's prologue,
  drain, epilogue and ``row_cycles``.
* one program per row (``extra['one_row']``, fgattn's ``one_row``: the nested form's row code, grid = rows, placed
  by the hardware like the plain kernel's CTAs): priced as one-row CTAs; with ``idx_early`` its index entries come
  one tile ahead (no extra pipeline level).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fgsim.hardware import GPU
from fgsim.launchcfg import KernelConfig
from fgsim.model.occupancy import (
    ELT_BYTES,
    SOFTMAX_FIT,
    SOFTMAX_FP32_PIPE,
    Occupancy,
    compiled_resources,
    exp_poly_fraction,
    local_traffic,
    mma_waits,
    occupancy,
    softmax_estimate,
    softmax_instr,
)
from fgsim.model.params import ModelParams

#: per-SM cap of L2 -> SM read bandwidth when few SMs share the L2 (bytes / cycle), if the GPU file has none
L2_PORT_BYTES_PER_CLK = 64.0
#: warp schedulers per SM, each issuing one warp instruction per clock (Volta to Blackwell: four SM sub-partitions)
WARP_SCHEDULERS = 4
#: per program (CTA) cycles beyond ``row_cycles``: revisions 3 and 4 fitted this (then the parameter ``cta_cycles``)
#: to its lower bound (0.004 and 3.9 cycles); fixed at 0 since revision 5, which uses the slot for wgmma_min_cycles
CTA_CYCLES = 0.0
#: TMA descriptor issue and mbarrier handling per K+V tile and CTA (cycles): the parameter ``tma_issue_cycles`` until
#: session 15, fitted to 0.6 / 2.9 / 2.1 cycles of its 0-600 range by calib12 / calib13; fixed at 0 since, its slot
#: given to ``row_cycles_rcp`` (validation/MODEL_NOTES.md, "Session 15")
TMA_ISSUE_CYCLES = 0.0
#: candidate RP of the session-15 clock study (validation/MODEL_NOTES.md, "Session 15"; None = off, the model as
#: released): the board's sustained tensor rate under its power limit (FLOP/s, calibrate's sustained-clock GEMM),
#: shared by the SMs a launch runs on; a tile's wgmma then takes at least its FLOPs x clock x SMs / rate cycles
TENSOR_POWER_CAP_FLOPS: float | None = None


def power_capped_mma(t_mma: float, tile_flops: float, gpu: GPU) -> float:
    """The wgmma cycles of a tile under :data:`TENSOR_POWER_CAP_FLOPS` (unchanged when it is None)."""
    cap = TENSOR_POWER_CAP_FLOPS
    if cap is None or cap <= 0:
        return t_mma
    return max(t_mma, tile_flops * gpu.clock_hz * gpu.sm_count / cap)


@dataclass
class CtaTables:
    """Per-count CTA cost tables (index = value of trace.counts at the kernel's (m, n))."""

    n: int  # key granularity of the counts this kernel reads (0: dense, counts unused)
    work: np.ndarray  # stand-alone cycles per CTA
    comps: np.ndarray  # (7, C): mma, exp, memory, fixed cycles; L2 bytes; log(1 - keys/N); keys processed
    occupancy: Occupancy
    tile_flops_full: float
    notes: list[str] = field(default_factory=list)
    #: persistent programs (``extra['persistent']``): cycles of one row inside a program (its prologue overlapped
    #: with the previous row, its tail tile folded into the loop) and the program's own cost when the row is its
    #: first (program start + the exposed prologue); None for one-row CTAs
    row_work: np.ndarray | None = None
    first_extra: np.ndarray | None = None
    programs_per_sm: int = 0  # persistent programs per SM (0: one CTA per row)
    #: the launch walks FgIndex.order's LPT row order (the Gluon form with ``extra['lpt']``; fgsim.model.gluon)
    lpt: bool = False
    #: persistent programs take their rows by greedy list scheduling in launch order with this planned cost per
    #: count (the Gluon ws2 form with ``extra.gluon.schedule`` 'list'; fgsim.model.gluon); None: round-robin walk
    plan_cost: np.ndarray | None = None


def is_persistent(cfg: KernelConfig) -> bool:
    """The launch runs persistent programs (``extra['persistent']``), each walking rows of the launch order."""
    return bool(cfg.extra.get("persistent", False))


def is_one_row(cfg: KernelConfig) -> bool:
    """One program per query-block row running the nested persistent form's row code (fgattn's ``one_row``):
    grid = rows, placed by the hardware like the plain kernel's CTAs, so priced as one-row CTAs."""
    return bool(cfg.extra.get("one_row", False)) and not is_persistent(cfg)


def is_flat(cfg: KernelConfig) -> bool:
    """A persistent launch runs one flattened (row, tile) loop (``extra['flatten']``, default) rather than a row loop
    around the pipelined tile loop."""
    return is_persistent(cfg) and bool(cfg.extra.get("flatten", True))


def programs_per_sm(cfg: KernelConfig) -> int:
    """Persistent programs per SM (``extra['programs_per_sm']``, default 1)."""
    return max(1, int(cfg.extra.get("programs_per_sm") or 1))


def skip_n(cfg: KernelConfig) -> int:
    """Key granularity at which the kernel skips work (the n of trace.counts); 0 for dense."""
    if cfg.kernel == "fg":
        return cfg.gran_n
    if cfg.kernel == "block":
        return cfg.gran_n if cfg.gran_n > 1 else cfg.block_n
    return 0


def uses_tma(cfg: KernelConfig, gpu: GPU) -> bool:
    """Contiguous tiles through TMA descriptors: the config asks for it and the GPU has TMA (Hopper+); the
    persistent programs and the one-row form of their code load every tile with pointer loads."""
    return (bool(cfg.extra.get("tma", False)) and cfg.kernel != "fg" and gpu.has_tma and not is_persistent(cfg)
            and not is_one_row(cfg))


def lookahead(cfg: KernelConfig, tma: bool) -> float:
    """Tiles in flight ahead of the one being consumed (Triton's pipeliner, see module docstring)."""
    early = bool(cfg.extra.get("idx_early", False))
    if is_flat(cfg):
        levels = 0  # the flattened loop computes the next item's index entries one iteration ahead
    elif is_persistent(cfg) or is_one_row(cfg):
        # the nested persistent form's row code (a persistent program's rows, or one row per program): its index
        # entries come one tile ahead with idx_early (loaded at the top of the iteration), else after the MMAs
        levels = 0 if cfg.kernel == "dense" or early else 1
    elif cfg.kernel == "fg":
        levels = 0 if int(cfg.extra.get("idx_ahead", 0)) >= 1 else 1
    elif cfg.kernel == "block":
        # revision 7: the index-driven loop's TMA coordinate comes from a block-index entry that Triton's pipeliner
        # loads (cp.async) one stage before the tile's TMA, so the stages are split between them as for pointer
        # loads (the compiled TTGIR issues the TMA of tile t+1 at the end of iteration t)
        levels = 1
    else:
        levels = 0
    levels = int(cfg.extra.get("indirection_levels", levels))
    return max(1.0, (cfg.num_stages - 1) / (levels + 1))  # each pipelined load gets at least one stage


def smax(a: np.ndarray | float, b: np.ndarray | float, p: float) -> np.ndarray:
    """Smooth maximum ``(a^p + b^p)^(1/p)`` of non-negative values (p >= 1)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    hi = np.maximum(np.maximum(a, b), 1e-30)
    return hi * ((a / hi) ** p + (b / hi) ** p) ** (1.0 / p)


@dataclass(frozen=True)
class TileCosts:
    """Cycles of tiles that load ``rows`` K/V rows (arrays broadcast with rows)."""

    mma: float  # tensor-core cycles of the tile (SM resource)
    sfu_chain: float  # exp + FP32 cycles in one CTA's chain
    resource: np.ndarray  # R: shared-SM resource bound
    chain: np.ndarray  # C: the CTA's own bound (dependency chain or latency)
    alone: np.ndarray  # max(R, C): a CTA alone on its SM


def splits_n(cfg: KernelConfig, gpu: GPU) -> bool:
    """The CTA's warpgroups split N of each wgmma (fewer than 64 query rows per warpgroup, e.g. M=64 with 8 warps):
    the compiled SASS has HGMMA m64n(N/2)k16 and the warps split the key dimension of S."""
    return gpu.has_wgmma and cfg.block_m < 64 * max(1, cfg.num_warps // 4)


def wgmma_cycles(cfg: KernelConfig, gpu: GPU, flops_per_clk: float, elt: int, floor: float = 0.0) -> float:
    """Tensor-core cycles of one key tile from its wgmma instructions: each ``m64nNk16`` takes
    ``max(64 N 16 2 / F, operand bytes / SMEM, floor)``: S = QK^T reads both operands from shared memory (Q: 64x16,
    K: Nx16), PV reads V (Nx16) from shared memory and P from registers; warpgroups splitting N (fewer than 64 rows
    each) each read the whole Q slice; ``floor``: the least cycles of any instruction (``wgmma_min_cycles``). The
    sum over every instruction of every warpgroup of the CTA."""
    m, bn, d = cfg.block_m, cfg.block_n, cfg.head_dim
    wg = max(1, cfg.num_warps // 4)
    blocks = m / 64.0  # 64-row blocks of the CTA
    wn = max(1.0, 64.0 * wg / m)  # warpgroups splitting N
    smem = gpu.smem_bytes_per_clk_per_sm

    def instr(n: float, a_bytes: float) -> float:
        return max(64.0 * n * 16.0 * 2.0 / flops_per_clk, (a_bytes + n * 16.0 * elt) / smem, floor)

    qk = blocks * wn * (d / 16.0) * instr(bn / wn, 64.0 * 16.0 * elt)
    pv = blocks * wn * (bn / 16.0) * instr(d / wn, 0.0)
    return qk + pv


def tile_costs(cfg: KernelConfig, gpu: GPU, p: ModelParams, rows: np.ndarray, n_active: int,
               local: tuple[float, float] = (0.0, 0.0), waits: float = 2.0,
               softmax: tuple[float, float] | None = None) -> TileCosts:
    """Per-tile costs (see module docstring) for tiles loading ``rows`` rows with ``n_active`` SMs busy."""
    elt = ELT_BYTES.get(cfg.dtype, 2)
    m, bn, d = cfg.block_m, cfg.block_n, cfg.head_dim
    wg = max(1, cfg.num_warps // 4)
    w = max(1, min(wg, m // 64)) if gpu.has_wgmma else wg
    clk = gpu.clock_hz
    tma = uses_tma(cfg, gpu)
    rows = np.asarray(rows, np.float64)
    f = gpu.tensor_flops(cfg.dtype)
    if gpu.has_wgmma:
        t_mma = wgmma_cycles(cfg, gpu, f, elt, p.wgmma_min_cycles) / p.mma_eff
    else:
        t_mma = 4.0 * m * bn * d / (f * p.mma_eff)
    t_mma = power_capped_mma(t_mma, 4.0 * m * bn * d, gpu)
    # revision 7: the MUFU instructions of the tile (the compiled loop's MUFU.EX2, SASS) at the SM's measured MUFU
    # rate; FP32 work per score (fitted) plus the FP32 instructions of exp_poly's polynomial, at the measured FP32 rate
    n_mufu = float(softmax[0]) if softmax is not None else softmax_estimate(cfg)[0]
    t_exp = n_mufu / gpu.mufu_exp_per_clk_per_sm
    ep = exp_poly_fraction(cfg)
    fp_rate = gpu.fp32_flop_per_clk_per_sm / 2.0
    # revision 8: the fitted FP32 work per score is an effective cost (the row reductions' dependent latencies
    # included), which the polynomial's independent FMAs fill; they cost time only once the FMA pipe's throughput of
    # the softmax's instructions (SOFTMAX_FP32_PIPE per score + 7 per polynomial element + the O rescale, at the
    # measured FP32 rate) exceeds it
    t_fp_eff = (m * bn * p.fp32_per_score + m * d) / fp_rate
    t_fp_pipe = (m * bn * (SOFTMAX_FP32_PIPE + SOFTMAX_FIT[2] * ep) + m * d) / fp_rate
    t_fp = max(t_fp_eff, t_fp_pipe)
    bw_sm = min(gpu.l2_bytes_per_s * p.l2_bw_eff / (max(1, n_active) * clk), gpu.l2_port_bytes_per_clk)
    row_bytes = 2.0 * d * elt
    byts = rows * row_bytes
    t_smem = (byts + w * bn * row_bytes) / gpu.smem_bytes_per_clk_per_sm
    # the flattened persistent loop carries Q through shared memory: written every item, read by each warpgroup
    t_q = m * d * elt / gpu.smem_bytes_per_clk_per_sm if is_flat(cfg) else 0.0
    t_smem = t_smem + t_q * (1 + w)
    t_bw = byts / bw_sm
    # spilled registers: every thread stores and reloads each one once per 64 keys of the tile (the spilled values
    # are parts of the S / P / O tiles and the loop's pointers), at the local-memory bandwidth one CTA gets; in
    # the chain only (a reload waits for local memory; co-resident CTAs overlap their waits)
    n_ldst, n_instr = local
    # spilled registers: the tile loop's local-memory instructions (LDL / STL of every warp, from the SASS) at
    # ldst_cycles each through the SM's load/store path, in the chain and as a shared SM resource
    t_spill = n_ldst * cfg.num_warps * p.ldst_cycles
    # MUFU (exp2) and FP32 softmax instructions issue from the same warp schedulers: co-resident CTAs add them
    # every warp's instructions of the tile issue from the SM's four warp schedulers (one per clock each)
    t_issue = n_instr * cfg.num_warps / WARP_SCHEDULERS
    # revision 7: the softmax's MUFU and FP32 instructions go to different pipes from the same warp schedulers, and
    # the tile's independent elements interleave them: the phase takes the longer of the two (development data:
    # validation/MODEL_NOTES.md, revision 7)
    t_sm = max(t_exp, t_fp)
    res = np.maximum(np.maximum(np.maximum(t_mma, t_sm), np.maximum(t_smem, t_bw)),
                     np.maximum(t_spill, t_issue))
    issue = np.where(rows > 0, TMA_ISSUE_CYCLES, 0.0) if tma else np.zeros_like(rows)
    chain = t_mma + t_sm + issue + 2.0 * p.mma_wait_cycles + p.tile_sync_cycles + t_spill + t_q
    # revision 6: a serialised tile loop (ptxas waits for every wgmma) exposes each further waited wgmma's latency
    chain = chain + max(0.0, waits - 2.0) * p.serial_wgmma_cycles
    if splits_n(cfg, gpu):
        wn = max(1, cfg.num_warps // max(1, m // 16))  # warps splitting the key dimension of S
        if wn > 1:
            t_cvt = m * bn * elt * (1 + wn) / gpu.smem_bytes_per_clk_per_sm
            chain = chain + t_cvt + 2.0 * p.tile_sync_cycles
    la = lookahead(cfg, tma)
    lat = np.where(rows > 0, (p.mem_latency_cycles + byts / bw_sm) / la, 0.0)
    c = smax(chain, lat, p.overlap_p)  # a load latency close to the chain still shows (smooth, not a hard max)
    if is_flat(cfg):
        # the flattened loop's K/V addresses come from loop-carried row state: no load is issued ahead
        c = chain + np.where(rows > 0, p.mem_latency_cycles + byts / bw_sm, 0.0)
    # revision 7: a CTA alone takes its chain or its busiest SM resource (copies included), whichever is longer: the
    # tensor-core and softmax time are in the chain, and the asynchronous copies of a pipelined loop run under it
    alone = np.maximum(res, c)
    return TileCosts(mma=t_mma, sfu_chain=t_sm, resource=res, chain=c, alone=alone)


def coresident_rates(res: float, chain: float, slots: int, p: float, alone: float | None = None) -> np.ndarray:
    """Per-CTA speed with j = 1..slots resident CTAs relative to one alone: ``smax(R, C) / smax(j R, C)``
    (``p`` = share_p), capped at ``alone / (j R)`` when ``alone`` (a tile's cycles for a CTA alone) is given: j
    co-resident CTAs finishing a tile each keep the busiest shared resource busy for ``j R`` cycles (revision 5).
    The SM's throughput ``j rates[j]`` never falls as j grows (the shared resources saturate)."""
    j = np.arange(1, slots + 1, dtype=np.float64)
    r = smax(res, chain, p) / smax(j * res, chain, p)
    if alone is not None and res > 0:
        r = np.minimum(r, alone / (j * res))
    r[0] = 1.0
    return np.minimum(r, 1.0)


_DEFAULT_RESOURCES: dict[tuple[str, str, str], Mapping[str, Any]] = {}


def default_resources(gpu: GPU) -> Mapping[str, Any]:
    """Compiled registers / shared memory (per launch configuration) recorded by the calibration that applies to
    ``gpu`` (its own, or one of the same architecture: the same compiled kernels); empty for an extrapolation or
    an uncalibrated GPU. Cached per (GPU, architecture, calibration search path)."""
    import os

    from fgsim.calibration import CAL_PATH_ENV

    key = (gpu.name, gpu.arch, os.environ.get(CAL_PATH_ENV, ""))
    if key not in _DEFAULT_RESOURCES:
        from fgsim.calibration import resolve

        _DEFAULT_RESOURCES[key] = dict(resolve(gpu).resources or {})
    return _DEFAULT_RESOURCES[key]


def count_domain(cfg: KernelConfig, n_keys: int, counts: np.ndarray | None = None) -> np.ndarray:
    """The kept-tile counts (float64) the per-count tables of ``cfg`` hold at ``n_keys`` keys: every count
    ``0..ceil(n_keys / n)`` (``counts`` None), or the sorted distinct ``counts`` given (a plan for fixed calls,
    :class:`fgsim.model.assemble.CallsPlan`: entry i of the tables is count ``counts[i]``, each entry computed as in
    the full table); dense kernels: one entry."""
    if cfg.kernel == "dense":
        return np.zeros(1)
    if counts is None:
        return np.arange(-(-int(n_keys) // skip_n(cfg)) + 1, dtype=np.float64)
    c = np.asarray(counts, np.float64)
    if c.ndim != 1 or (c.size > 1 and np.any(np.diff(c) <= 0)):
        raise ValueError("count_domain: counts must be sorted distinct values")
    return c


@dataclass(frozen=True)
class TablesLayout:
    """The half of :func:`cta_tables` that does not depend on the parameters, for one (launch configuration, GPU,
    N, grid, keys, resources table, count domain): the priced configuration, its occupancy and SASS figures, the
    count domain and each count's full / last tiles. Built once by :func:`tables_layout`; ``cta_tables(...,
    layout=...)`` prices it under any parameters (a calibration fit prices the same launches hundreds of times)."""

    cfg: KernelConfig  # the configuration priced (an ``impl: gluon`` entry's tl fallback where the GPU runs tl)
    gluon: Any  # the Gluon form's layout (:class:`fgsim.model.gluon.GluonLayout`), None for a tl launch
    resources: Mapping[str, Any]
    n_kv: int
    n_active: int
    occupancy: tuple[int, str, int, int]  # (slots, limiter, shared bytes, registers)
    res_src: str
    counts: np.ndarray
    keys: np.ndarray
    rows_full: float
    n_full: np.ndarray
    r_last: np.ndarray
    r_uniq: np.ndarray  # the distinct last-tile row counts and each count's position among them
    r_inv: np.ndarray
    has_last: np.ndarray
    tile_kw: Mapping[str, Any]  # tile_costs' SASS figures: local traffic, waited wgmma, softmax instructions


def tables_layout(cfg: KernelConfig, gpu: GPU, n_tokens: int, n_ctas: int | None = None,
                  n_keys: int | None = None, resources: Mapping[str, Any] | None = None,
                  counts: np.ndarray | None = None) -> TablesLayout:
    """The parameter-free half of :func:`cta_tables` (same arguments, no parameters)."""
    if resources is None:
        resources = default_resources(gpu)
    # an ``impl: gluon`` entry: its Gluon form where the GPU runs it, else its tl fallback (fgsim.model.gluon)
    from fgsim.model.gluon import gluon_layout, gluon_requested, priced_config

    n_kv = int(n_keys or n_tokens)
    n_active = int(gpu.sm_count if n_ctas is None else max(1, min(gpu.sm_count, int(n_ctas))))
    if gluon_requested(cfg):
        impl, cfg = priced_config(cfg, gpu)
        if impl == "gluon":
            glay = gluon_layout(cfg, gpu, n_tokens, n_ctas=n_ctas, n_keys=n_keys, resources=resources, counts=counts)
            e = np.zeros(0)
            return TablesLayout(cfg, glay, resources, n_kv, n_active, (0, "", 0, 0), "", e, e, 0.0, e, e, e, e, e,
                                {})
    bn = cfg.block_n
    occ = occupancy(cfg, gpu, resources)
    _, _, res_src = compiled_resources(cfg, resources)
    skip = skip_n(cfg)
    counts = count_domain(cfg, n_kv, counts)
    keys = np.array([float(n_kv)]) if cfg.kernel == "dense" else np.minimum(counts * skip, n_kv)
    if cfg.kernel == "block":
        tiles_per_blk = max(1, -(-skip // bn))
        rows_full = float(min(bn, skip))
        n_full = counts * tiles_per_blk
        r_last = np.zeros_like(keys)
    else:
        rows_full = float(bn)
        n_full = np.floor(keys / bn)
        r_last = keys - n_full * bn
    n_ldst, _, n_instr, _ = local_traffic(cfg, gpu, resources)
    sm_mufu, sm_fp32, _ = softmax_instr(cfg, gpu, resources)
    kw = {"local": (n_ldst, n_instr), "waits": mma_waits(cfg, gpu, resources)[0], "softmax": (sm_mufu, sm_fp32)}
    # the last tile's cost depends on its row count only (at most BLOCK_N values): priced once per distinct value
    r_uniq, r_inv = np.unique(r_last, return_inverse=True)
    has_last = (r_last > 0).astype(np.float64)
    return TablesLayout(cfg, None, resources, n_kv, n_active, occ, res_src, counts, keys, rows_full, n_full, r_last,
                        r_uniq, r_inv, has_last, kw)


def cta_tables(cfg: KernelConfig, gpu: GPU, params: ModelParams, n_tokens: int, n_ctas: int | None = None,
               n_keys: int | None = None, resources: Mapping[str, Any] | None = None,
               counts: np.ndarray | None = None, layout: TablesLayout | None = None) -> CtaTables:
    """Per-count CTA cost tables for ``cfg`` on ``gpu`` at ``n_tokens`` queries (``n_keys`` keys, default the
    same); ``n_ctas``: the grid size (the SMs sharing L2 and HBM bandwidth; None: a grid filling the GPU);
    ``resources``: compiled registers / shared memory per launch configuration (None: the table of the calibration
    that applies to ``gpu``, see :func:`default_resources`; ``{}``: estimates only); ``counts``: the sorted distinct
    kept-tile counts to tabulate (None: all, index = count; see :func:`count_domain`); ``layout``: the
    :func:`tables_layout` of these same arguments, built earlier (the arguments are then not read again)."""
    p = params
    lay = layout if layout is not None else tables_layout(cfg, gpu, n_tokens, n_ctas, n_keys, resources, counts)
    if lay.gluon is not None:
        from fgsim.model.gluon import gluon_tables

        return gluon_tables(lay.cfg, gpu, p, n_tokens, n_ctas=n_ctas, n_keys=n_keys, resources=lay.resources,
                            layout=lay.gluon)
    cfg = lay.cfg
    elt = ELT_BYTES.get(cfg.dtype, 2)
    m, bn, d = cfg.block_m, cfg.block_n, cfg.head_dim
    n_kv = lay.n_kv
    clk = gpu.clock_hz
    slots, limiter, smem, regs = lay.occupancy
    res_src = lay.res_src
    n_active = lay.n_active
    lat = p.mem_latency_cycles
    row_bytes = 2.0 * d * elt
    skip = skip_n(cfg)
    keys, rows_full, n_full, r_last, has_last = lay.keys, lay.rows_full, lay.n_full, lay.r_last, lay.has_last
    kw = lay.tile_kw
    full = tile_costs(cfg, gpu, p, np.array([rows_full]), n_active, **kw)
    t_full = float(full.alone[0])
    t_last = tile_costs(cfg, gpu, p, lay.r_uniq, n_active, **kw).alone[lay.r_inv] * has_last
    n_tiles = n_full + has_last
    # prologue: Q and the first tile's rows arrive after the load latency; an index-driven kernel first reads its
    # row offsets and index entries (one more dependent latency); the bytes move at the SM's HBM share
    bw_sm = min(gpu.l2_bytes_per_s * p.l2_bw_eff / (n_active * clk), gpu.l2_port_bytes_per_clk)
    bw_qo = min(bw_sm, gpu.hbm_bytes_per_s * p.hbm_bw_eff / (n_active * clk))
    dep = 0.0 if cfg.kernel == "dense" else 1.0
    first_rows = np.minimum(keys, bn) if cfg.kernel == "fg" else 0.0 * keys
    prologue = lat * (1.0 + dep) + (m * d * elt + first_rows * row_bytes) / bw_qo
    tail_tiles = max(1, cfg.block_m // bn) if cfg.kernel == "block" else 1
    drain = lat * tail_tiles * (n_tiles > 0)
    epilogue = m * d * elt / bw_qo + m * d / (gpu.fp32_flop_per_clk_per_sm / 2.0)
    fixed = CTA_CYCLES + p.row_cycles + prologue + drain + epilogue
    loop = n_full * t_full + t_last
    work = loop + fixed
    row_work = first_extra = None
    if is_persistent(cfg):
        # one flattened (row, tile) loop: a row's index entries and first K/V gathers are issued during the
        # previous row and its masked tail tile is one more pipelined tile (no drain); at the row switch the
        # epilogue stores O and the next row's Q is loaded before its first S = QK^T (one exposed latency). The
        # program pays its start, a pre-pass over its rows' offsets (128 rows per vector load) and its first
        # row's prologue once.
        rows_total = max(1, int(n_ctas or n_active))
        g = max(1, min(rows_total, programs_per_sm(cfg) * gpu.sm_count))
        prepass = lat * dep * math.ceil(math.ceil(rows_total / g) / 128) if is_flat(cfg) else 0.0
        empty = tile_costs(cfg, gpu, p, np.zeros(1), n_active, **kw)  # an empty row runs one masked item
        loop_p = loop + (n_tiles == 0) * float(empty.alone[0])
        if is_flat(cfg):
            row_work = loop_p + p.row_cycles + epilogue + lat + m * d * elt / bw_qo
            first_extra = CTA_CYCLES + prepass + lat * dep + first_rows * row_bytes / bw_qo + 0.0 * keys
        else:  # nested: each row fills the tile pipeline and drains its masked tail as a one-row CTA does
            row_work = loop_p + p.row_cycles + prologue + drain + epilogue
            first_extra = CTA_CYCLES + 0.0 * keys
    # breakdown of the loop cycles: tensor-core part, softmax part, the rest (memory and waits)
    a_mma = min(full.mma, t_full)
    a_exp = min(full.sfu_chain, max(t_full - a_mma, 0.0))
    c_mma = n_tiles * a_mma
    c_exp = n_tiles * a_exp
    c_mem = np.maximum(loop - c_mma - c_exp, 0.0)
    l2b = (n_full * rows_full + r_last) * row_bytes
    with np.errstate(divide="ignore"):
        logmiss = np.log(np.clip(1.0 - keys / n_kv, 1e-12, 1.0))
    comps = np.stack([c_mma, c_exp, c_mem, fixed, l2b, logmiss, keys])
    rates = coresident_rates(float(full.resource[0]), float(full.chain[0]), slots, p.share_p, t_full)
    gain = float(max(1.0, slots * rates[-1]))
    occ = Occupancy(slots=slots, limiter=limiter, smem_bytes=smem, regs_per_thread=regs, gain=gain,
                    rates=tuple(float(x) for x in rates), source=res_src)
    notes = []
    if res_src == "estimate":
        notes.append(f"registers/shared memory of {cfg.describe()} estimated (no compiled figures recorded)")
    if row_work is not None:
        notes.append(f"persistent programs: {programs_per_sm(cfg)} per SM, rows dealt round-robin in launch order")
    return CtaTables(n=skip, work=work, comps=comps, occupancy=occ, tile_flops_full=4.0 * m * bn * d, notes=notes,
                     row_work=row_work, first_extra=first_extra,
                     programs_per_sm=programs_per_sm(cfg) if row_work is not None else 0)
