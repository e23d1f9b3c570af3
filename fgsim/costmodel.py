"""The cost model: per-CTA tile costs from kept-key counts, then the event-driven scheduler (scheduler.py).

One CTA = one query block of ``BLOCK_M`` rows of one head. Its kept keys (``trace.counts(p, l, m, n)``; masks are
never unpacked) are packed into tiles of ``BLOCK_N`` rows. Per tile (SM cycles, stand-alone CTA):

* MMA: ``4·M·BLOCK_N·D / (F_dtype · mma_eff)`` — a partial tile costs a full wgmma tile;
* softmax/exp: ``M·BLOCK_N · softmax_cycles_per_score`` (MUFU exp plus the FP32 rescaling);
* memory: ``max(bytes / L2-share-per-SM, latency / look-ahead)`` with look-ahead from ``num_stages`` (Triton
  splits stages across the index load and the gather, kernels.md §3.1);
* overlap: ``max(compute, memory) + alpha · min(compute, memory)`` (alpha calibrated, perfmodel.md §3.3);
* issue: cp.async rows and gathered segments, index loads — executed by the same (non-specialised) warps.

Plus per CTA: fixed cost, pipeline fill (first load latency + Q), epilogue (O write); Q and O are compulsory HBM
traffic and move at the SM's share of HBM bandwidth among the SMs the grid keeps busy. Dense, block-sparse and
FG kernels are the same model with different tile addressing. Occupancy (CTAs per SM) comes from the launch
configuration's shared memory, warps and registers; co-resident CTAs share an SM (scheduler ``gain``).
A call's time is ``max(makespan, L2 floor, HBM floor) + launch overhead``; HBM traffic counts K/V reuse
across the concurrently running CTAs of a head (LRU working-set estimate, perfmodel.md §3.6).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from fgsim.errors import FgsimError
from fgsim.hardware import GPU
from fgsim.launchcfg import KernelConfig
from fgsim.scheduler import simulate, simulate_calls

ELT_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "tf32": 4}
COMPONENTS = ("mma", "exp", "memory", "tail", "fixed")
COUNT_GRANULARITIES = (1, 16, 64, 128)


@dataclass(frozen=True)
class ModelParams:
    """Free parameters of the model (fitted by ``fgsim calibrate``). Cycles are SM cycles.

    The defaults are spec-derived priors, not measurements: they come from perfmodel.md / kernels.md and are
    used only when no calibration exists ("uncalibrated: using spec-derived parameters").
    """

    mma_eff: float = 0.80  # achieved fraction of tensor peak inside a tile (FA3 ~65% end-to-end, kernels.md §1.2)
    softmax_cycles_per_score: float = 0.109  # MUFU 16/clk/SM [S25] x 1.75 for FP32 max/scale/sum (inference)
    overlap_alpha: float = 0.5  # 0 = perfect overlap (max), 1 = none (sum); perfmodel.md §3.3
    latency_scale: float = 1.0  # x GPU memory_latency_cycles for the per-tile latency bound and pipeline fill
    l2_bw_eff: float = 1.0  # fraction of the GPU file's L2 bandwidth (already a measured value, [S27])
    hbm_bw_eff: float = 0.81  # H200 DRAM plateau 3.89 of 4.8 TB/s [S27]
    row_cycles: float = 0.125  # issue cycles per K/V row copied (D=128 bf16: 16 x 16-B cp.async / 128 lanes)
    gather_seg_cycles: float = 0.25  # extra per gathered (non-contiguous) segment: index math, address regs
    idx_tile_cycles: float = 40.0  # per tile with an index load (latency not hidden by the pipeliner)
    idx_entry_cycles: float = 0.05  # per index entry loaded
    cta_fixed_cycles: float = 1500.0  # CTA launch, setup, Q load issue
    epilogue_cycles: float = 500.0  # normalisation, O store issue
    # memory latencies a CTA of an index-driven kernel waits out before its first tile, beyond the Q/first-tile
    # fill every kernel pays: the dependent chain row offsets -> index entries -> gathered K/V rows
    prologue_latencies_fg: float = 1.0
    prologue_latencies_block: float = 1.0
    tma_tile_cycles: float = 66.0  # TMA issue per K+V tile when the config uses tensor descriptors (~33 each [S8])
    launch_us: float = 3.0  # per kernel call, in-stream (launch latency, grid drain), microseconds
    # extra in-stream work of each wrapper before the kernel (fgattn._launch: a torch.zeros memset for the
    # unused index arguments, TMA descriptor scratch allocation), microseconds per call, added to launch_us
    launch_extra_us_fg: float = 0.0
    launch_extra_us_block: float = 0.0
    launch_extra_us_dense: float = 0.0
    # host-side floor of one timed call (Python wrapper + Triton launch path), microseconds: the measured time
    # of a call is max(host floor, GPU time) when the GPU waits for the host (tiny grids), per family
    host_floor_us_fg: float = 0.0
    host_floor_us_block: float = 0.0
    host_floor_us_dense: float = 0.0
    # latency hiding by co-resident CTAs: a CTA alone keeps its SM's busiest unit busy a fraction
    # u = min(1, busy_scale * u_spec) of the time (u_spec: that unit's spec time of a tile / the tile's cycles);
    # j resident CTAs with independent stalls keep it busy 1 - (1 - u)^j, so the SM runs (1 - (1 - u)^j) / u
    # times faster than with one CTA (perfmodel.md §3.3; occupancy-throughput curve)
    busy_scale: float = 1.0
    l2_reuse_frac: float = 0.8  # effective L2 fraction for K/V reuse (about 40 of 50 MB on H200, perfmodel §2.2)
    # per launch configuration (key: config_key(cfg)): achieved-throughput factor of the compiled inner loop
    # (tile cycles x scale), fitted on the calibration set; configurations without an entry use the geometric
    # mean of their kernel family's entries (1.0 if none)
    tile_scale: dict[str, float] = field(default_factory=dict, compare=True)
    # per launch configuration with several CTAs per SM: the busy fraction u of the SM's bottleneck with one
    # CTA resident (see busy_scale), fitted on the calibration set (solo and full-SM uniform cases); without
    # an entry u = min(1, busy_scale * u_spec)
    busy: dict[str, float] = field(default_factory=dict, compare=True)
    # per launch configuration with several CTAs per SM: how the stalls of co-resident CTAs line up, in [0, 1]:
    # 0 = independent (the SM's bottleneck is busy 1 - (1 - u)^j with j CTAs), 1 = perfectly interleaved (a
    # CTA's stall is always covered by another's work: busy min(1, j u), the SM saturates at 1/u CTA-speeds);
    # the SM throughput is the mix of the two; without an entry 0 (fitted on the same solo/full-SM cases)
    interleave: dict[str, float] = field(default_factory=dict, compare=True)

    def replace(self, **kw: float) -> ModelParams:
        from dataclasses import replace

        return replace(self, **kw)

    def as_dict(self) -> dict[str, float]:
        """Flat {name: value}; ``tile_scale`` entries appear as ``tile_scale/<config key>``."""
        out = {k: float(v) for k, v in asdict(self).items() if k not in ("tile_scale", "busy", "interleave")}
        out.update({f"{TILE_SCALE}/{k}": float(v) for k, v in sorted(self.tile_scale.items())})
        out.update({f"{BUSY}/{k}": float(v) for k, v in sorted(self.busy.items())})
        out.update({f"{INTERLEAVE}/{k}": float(v) for k, v in sorted(self.interleave.items())})
        return out

    def scale_for(self, cfg: KernelConfig) -> float:
        """Tile-cost factor of ``cfg``: its own entry, else the geometric mean of its family's, else 1."""
        key = config_key(cfg)
        if key in self.tile_scale:
            return float(self.tile_scale[key])
        fam = [v for k, v in self.tile_scale.items() if k.split("/", 1)[0] == cfg.kernel]
        return float(np.exp(np.mean(np.log(fam)))) if fam else 1.0

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "calibration") -> ModelParams:
        names = {f.name for f in fields(cls)} - {"tile_scale", "busy", "interleave"}
        kw: dict[str, Any] = {}
        scales: dict[str, float] = {}
        busy: dict[str, float] = {}
        inter: dict[str, float] = {}
        for k, v in d.items():
            is_scale = k.startswith(TILE_SCALE + "/")
            is_busy = k.startswith(BUSY + "/")
            is_inter = k.startswith(INTERLEAVE + "/")
            if k not in names and not is_scale and not is_busy and not is_inter:
                raise FgsimError(f"{where}: unknown model parameter '{k}'")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise FgsimError(f"{where}: parameter '{k}' must be a finite non-negative number, got {v!r}")
            if is_inter:
                if v > 1:
                    raise FgsimError(f"{where}: parameter '{k}' must be in [0, 1]")
                inter[k.split("/", 1)[1]] = float(v)
            elif is_scale or is_busy:
                if not v > 0 or (is_busy and v > 1):
                    raise FgsimError(f"{where}: parameter '{k}' must be positive" + (" and <= 1" if is_busy else ""))
                (scales if is_scale else busy)[k.split("/", 1)[1]] = float(v)
            else:
                kw[k] = float(v)
        p = cls(**kw, tile_scale=scales, busy=busy, interleave=inter)
        if not 0 < p.mma_eff <= 1.5 or not 0 <= p.overlap_alpha <= 1:
            raise FgsimError(f"{where}: parameters out of range (mma_eff in (0, 1.5], overlap_alpha in [0, 1])")
        return p


TILE_SCALE = "tile_scale"
BUSY = "busy"
INTERLEAVE = "interleave"


def config_key(cfg: KernelConfig) -> str:
    """Launch-configuration key of the per-config tile factor: kernel/D/M/BLOCK_N/warps/stages/variant."""
    ex = cfg.extra
    var = "tma" if ex.get("tma") and cfg.kernel != "fg" else "ptr"
    if cfg.kernel == "fg":
        var = f"ia{int(ex.get('idx_ahead', 1))}"
    if ex.get("overlap"):
        var += "+ov"
    return (f"{cfg.kernel}/d{cfg.head_dim}/m{cfg.block_m}/bn{cfg.block_n}/w{cfg.num_warps}/s{cfg.num_stages}/"
            f"g{cfg.gran_n}/{var}")


def param_bounds(name: str) -> tuple[float, float]:
    """Fitting bounds of a (flat) parameter name."""
    if name.startswith(TILE_SCALE + "/"):
        return (0.3, 3.0)
    if name.startswith(BUSY + "/"):
        return (0.05, 1.0)
    if name.startswith(INTERLEAVE + "/"):
        return (0.0, 1.0)
    return PARAM_BOUNDS[name]


#: Bounds used when fitting (lower, upper).
PARAM_BOUNDS: dict[str, tuple[float, float]] = {
    "mma_eff": (0.2, 1.0), "softmax_cycles_per_score": (0.02, 0.6), "overlap_alpha": (0.0, 1.0),
    "latency_scale": (0.2, 4.0), "l2_bw_eff": (0.2, 1.5), "hbm_bw_eff": (0.3, 1.0), "row_cycles": (0.0, 4.0),
    "gather_seg_cycles": (0.0, 8.0), "idx_tile_cycles": (0.0, 2000.0), "idx_entry_cycles": (0.0, 4.0),
    "cta_fixed_cycles": (0.0, 20000.0), "epilogue_cycles": (0.0, 20000.0),
    "prologue_latencies_fg": (0.0, 8.0), "prologue_latencies_block": (0.0, 8.0), "launch_us": (0.0, 50.0), "tma_tile_cycles": (0.0, 2000.0),
    "busy_scale": (0.2, 4.0), "l2_reuse_frac": (0.2, 1.0),
    "launch_extra_us_fg": (0.0, 50.0), "launch_extra_us_block": (0.0, 50.0), "launch_extra_us_dense": (0.0, 50.0),
    "host_floor_us_fg": (0.0, 200.0), "host_floor_us_block": (0.0, 200.0), "host_floor_us_dense": (0.0, 200.0),
}


class Workload(Protocol):
    """What the model reads from a trace (``fgsim.trace`` object or a synthetic stand-in)."""

    @property
    def n_tokens(self) -> int: ...

    def entries(self) -> list[tuple[int, int]]: ...

    def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray: ...


@dataclass(frozen=True)
class Occupancy:
    slots: int  # resident CTAs per SM
    limiter: str
    smem_bytes: int
    regs_per_thread: int
    gain: float  # SM throughput with `slots` CTAs relative to one (scheduler gain)
    rates: tuple[float, ...] = ()  # per-CTA speed with j = 1..slots resident CTAs (latency-hiding curve)


@dataclass
class CtaTables:
    """Per-count CTA cost tables (index = value of trace.counts at the kernel's (m, n))."""

    n: int  # key granularity of the counts this kernel reads (0: dense, counts unused)
    work: np.ndarray  # stand-alone cycles per CTA
    comps: np.ndarray  # (7, C): mma, exp, memory, fixed cycles; L2 bytes; log(1 - keys/N); keys processed
    occupancy: Occupancy
    tile_flops_full: float


@dataclass
class KernelPrediction:
    """Prediction of one kernel over a set of calls (times in seconds)."""

    kernel: str
    gpu: str
    config: KernelConfig
    params_source: str
    per_call_s: np.ndarray
    entries: list[tuple[int, int]]
    breakdown_s: dict[str, float]  # summed over all calls
    occupancy: Occupancy
    flops: float = 0.0  # useful (kept) attention FLOP over all calls
    notes: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return float(self.per_call_s.sum())

    @property
    def mean_call_s(self) -> float:
        return float(self.per_call_s.mean()) if self.per_call_s.size else 0.0


def shared_bytes(cfg: KernelConfig) -> int:
    """Shared memory of one CTA (bytes): the compiled kernel's figure when the launch table records it, else
    Q + num_stages × (K + V tiles) (+ the FG kernel's index tiles)."""
    elt = ELT_BYTES.get(cfg.dtype, 2)
    m, nb, d = cfg.block_m, cfg.block_n, cfg.head_dim
    return int(cfg.extra.get("shared_bytes", 0)) or (
        m * d * elt + cfg.num_stages * 2 * nb * d * elt + (cfg.num_stages * nb * 4 if cfg.kernel == "fg" else 0))


def occupancy(cfg: KernelConfig, gpu: GPU) -> tuple[int, str, int, int]:
    """Resident CTAs per SM from shared memory, threads, registers and the CTA cap: (slots, limiter, smem, regs)."""
    m, nb, d = cfg.block_m, cfg.block_n, cfg.head_dim
    smem = shared_bytes(cfg)
    threads = cfg.num_warps * 32
    # fp32 accumulators O (M x D) and S (M x BLOCK_N), bf16 P (M x BLOCK_N) spread over the threads, plus
    # ~32 registers of addresses, softmax state and loop counters
    regs = int(cfg.extra.get("n_regs", 0)) or min(255, int(math.ceil((m * d + 1.5 * m * nb) / threads)) + 32)
    if smem > gpu.smem_per_cta_kb * 1024:
        raise FgsimError(f"{cfg.describe()} needs {smem} B of shared memory; {gpu.name} allows "
                         f"{int(gpu.smem_per_cta_kb * 1024)} B per CTA")
    lim = {
        "smem": int(gpu.smem_per_sm_kb * 1024 // smem),
        "threads": gpu.max_threads_per_sm // threads,
        "registers": gpu.registers_per_sm // (regs * threads),
        "cta cap": gpu.max_ctas_per_sm,
    }
    limiter = min(lim, key=lambda k: lim[k])
    return max(1, lim[limiter]), limiter, smem, regs


def coresident_rates(u: float, slots: int, interleave: float = 0.0) -> np.ndarray:
    """Per-CTA speed with j = 1..slots resident CTAs, relative to a CTA alone on its SM.

    One CTA keeps the SM's busiest unit busy a fraction ``u`` of its time; j CTAs stalling independently leave
    it idle (1 - u)^j of the time, so the SM's throughput is T(j) = (1 - (1 - u)^j) / u CTA-speeds and each
    CTA runs at T(j) / j: a partly filled SM is faster per CTA than a full one, but not proportionally.
    ``interleave`` in [0, 1] mixes in the other limit, stalls that never coincide while another CTA has work:
    T(j) = min(j, 1/u) (the SM's bottleneck saturates once j u >= 1).
    """
    u = float(min(max(u, 1e-6), 1.0))
    a = float(min(max(interleave, 0.0), 1.0))
    j = np.arange(1, slots + 1, dtype=np.float64)
    thr = (1.0 - a) * (1.0 - (1.0 - u) ** j) / u + a * np.minimum(j, 1.0 / u)
    rates = np.minimum(thr / j, 1.0)
    rates[0] = 1.0  # a CTA alone runs at its own speed by definition (no rounding below 1: fast scheduler path)
    return rates


def _skip_n(cfg: KernelConfig) -> int:
    if cfg.kernel == "fg":
        return cfg.gran_n
    if cfg.kernel == "block":
        return cfg.gran_n if cfg.gran_n > 1 else cfg.block_n
    return 0


def cta_tables(cfg: KernelConfig, gpu: GPU, params: ModelParams, n_tokens: int,
               n_ctas: int | None = None) -> CtaTables:
    """Per-count CTA cost tables for ``cfg`` on ``gpu`` at sequence length ``n_tokens`` (see module docstring);
    ``n_ctas``: the grid size (the SMs that share HBM bandwidth for Q and O; None: a grid filling the GPU)."""
    p = params
    elt = ELT_BYTES.get(cfg.dtype, 2)
    m, bn, d, n_tok = cfg.block_m, cfg.block_n, cfg.head_dim, int(n_tokens)
    f = gpu.tensor_flops(cfg.dtype)
    clk = gpu.clock_hz
    bw_sm = gpu.l2_bytes_per_s * p.l2_bw_eff / (gpu.sm_count * clk)  # bytes per cycle per SM
    slots, limiter, smem, regs = occupancy(cfg, gpu)
    lat = gpu.memory_latency_cycles * p.latency_scale
    tma = bool(cfg.extra.get("tma", False)) and cfg.kernel != "fg"
    # Triton gives each pipelined load (num_stages-1)/(indirection levels+1) stages (kernels.md §3.1): the FG
    # gather is level 0 when its indices are prefetched in registers (idx_ahead >= 1); the block kernel's
    # per-tile block-index load makes its K/V loads level 1.
    if cfg.kernel == "fg":
        levels = 0 if int(cfg.extra.get("idx_ahead", 1)) >= 1 else 1
    elif cfg.kernel == "block":
        levels = 0 if tma else 1
    else:
        levels = 0
    levels = int(cfg.extra.get("indirection_levels", levels))
    lookahead = max(0.5, (cfg.num_stages - 1) / (levels + 1))
    row_bytes = 2 * d * elt  # one K row + one V row

    mma = 4.0 * m * bn * d / (f * p.mma_eff)
    sm = m * bn * p.softmax_cycles_per_score
    # the CTA's warpgroups (4 warps, 64 query rows each) run the same FA2 loop: one warpgroup's softmax
    # overlaps another's wgmma, so a tile costs max(tensor, softmax, per-warpgroup chain) — with one
    # warpgroup the chain is the serial sum (perfmodel.md §3.3)
    wgs = max(1, cfg.num_warps // 4)
    comp = max(mma, sm, (mma + sm) / wgs)
    mma_share = comp * mma / (mma + sm)
    sm_share = comp - mma_share
    kappa = p.scale_for(cfg)

    def tile(rows: np.ndarray, segs: np.ndarray, ents: np.ndarray, idx_loads: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """(exposed memory + issue cycles, tile cycles) for tiles with `rows` rows (vectorised)."""
        mem = np.maximum(rows * row_bytes / bw_sm, np.where(rows > 0, lat / lookahead, 0.0))
        over = np.maximum(comp, mem) + p.overlap_alpha * np.minimum(comp, mem)
        if tma:
            issue = np.where(rows > 0, p.tma_tile_cycles, 0.0) + segs * p.gather_seg_cycles
        else:
            issue = rows * p.row_cycles * (d / 128.0) * (elt / 2.0) + segs * p.gather_seg_cycles
        issue = issue + idx_loads * p.idx_tile_cycles + ents * p.idx_entry_cycles
        return kappa * (over - comp + issue), kappa * (over + issue)

    skip = _skip_n(cfg)
    if cfg.kernel == "dense":
        counts = np.zeros(1)
        keys = np.array([float(n_tok)])
    else:
        c_max = -(-n_tok // skip)
        counts = np.arange(c_max + 1, dtype=np.float64)
        keys = np.minimum(counts * skip, n_tok)
    if cfg.kernel == "block":
        tiles_per_blk = max(1, -(-skip // bn))
        rows_per_tile = min(bn, skip)
        n_full = counts * tiles_per_blk
        r_last = np.zeros_like(keys)
        segs_t = 0.0
        ents_t = 1.0 / tiles_per_blk
        idx_t = 1.0 / tiles_per_blk
        rows_full = float(rows_per_tile)
    else:
        n_full = np.floor(keys / bn)
        r_last = keys - n_full * bn
        rows_full = float(bn)
        if cfg.kernel == "fg":
            segs_t = bn / cfg.gran_n if cfg.gran_n > 1 else float(bn)
            ents_t = segs_t
            idx_t = 1.0
        else:
            segs_t = ents_t = idx_t = 0.0
    one = np.ones(1)
    mem_full, t_full = (x[0] for x in tile(rows_full * one, segs_t * one, ents_t * one, idx_t * one))
    has_last = (r_last > 0).astype(np.float64)
    segs_last = r_last / cfg.gran_n if (cfg.kernel == "fg" and cfg.gran_n > 1) else (
        r_last if cfg.kernel == "fg" else 0.0 * r_last)
    mem_last, t_last = tile(r_last, segs_last, segs_last, has_last if cfg.kernel == "fg" else 0.0 * r_last)
    mem_last = mem_last * has_last
    t_last = t_last * has_last
    n_tiles = n_full + has_last
    # Q (prologue) and O (epilogue) are compulsory HBM traffic outside the pipelined loop: each CTA moves them at
    # its SM's share of HBM bandwidth among the SMs running CTAs at once (all of them for a full grid; a small
    # grid's SMs each get more, up to the SM's L2 share)
    active = float(gpu.sm_count if n_ctas is None else max(1, min(gpu.sm_count, n_ctas)))
    bw_qo = min(bw_sm, gpu.hbm_bytes_per_s * p.hbm_bw_eff / (active * clk))
    fill = lat + m * d * elt / bw_qo
    if cfg.kernel == "fg":
        # the gathered rows of the first tile are fetched before any compute can start; different query blocks
        # gather different keys, so they are mostly first touches and come from HBM at the same share
        fill = fill + np.minimum(keys, bn) * row_bytes * (1.0 / bw_qo - 1.0 / bw_sm)
    epi = p.epilogue_cycles + m * d * elt / bw_qo
    # the loop ends with masked tiles outside the pipelined loop (1 tile; the block kernel's last block: M/BN
    # tiles): their load latency is exposed once per CTA that has any tile
    drain = lat * (max(1, cfg.block_m // bn) if cfg.kernel == "block" else 1) * (n_full + has_last > 0)
    chain = lat * getattr(p, f"prologue_latencies_{cfg.kernel}", 0.0)
    fixed = p.cta_fixed_cycles + fill + epi + drain + chain
    c_mma = n_tiles * mma_share * kappa
    c_exp = n_tiles * sm_share * kappa
    c_mem = n_full * mem_full + mem_last
    work = c_mma + c_exp + c_mem + fixed
    l2b = (n_full * rows_full + r_last) * row_bytes
    with np.errstate(divide="ignore"):
        logmiss = np.log(np.clip(1.0 - keys / n_tok, 1e-12, 1.0))
    comps = np.stack([c_mma, c_exp, c_mem, fixed, l2b, logmiss, keys])
    # occupancy and the SM sharing gain, from the busiest unit of a full tile
    u = max((4.0 * m * bn * d / f) / t_full, (rows_full * row_bytes / bw_sm) / t_full,
            (m * bn / gpu.mufu_exp_per_clk_per_sm) / t_full)
    u_one = p.busy.get(config_key(cfg), u * p.busy_scale)
    rates = coresident_rates(u_one, slots, p.interleave.get(config_key(cfg), 0.0))
    gain = float(max(1.0, slots * rates[-1]))
    occ = Occupancy(slots=slots, limiter=limiter, smem_bytes=smem, regs_per_thread=regs, gain=gain,
                    rates=tuple(float(x) for x in rates))
    return CtaTables(n=skip, work=work, comps=comps, occupancy=occ, tile_flops_full=4.0 * m * bn * d)


def counts_m_n(cfg: KernelConfig, stored_block_m: int | None) -> tuple[int, int]:
    """The (m, n) at which this kernel reads trace counts; FgsimError if the trace cannot provide them."""
    m = cfg.block_m
    if stored_block_m is not None and (m % stored_block_m or m > 128):
        raise FgsimError(f"trace was stored at block_m={stored_block_m}; it cannot give counts for kernel "
                         f"BLOCK_M={m} (needs a multiple of {stored_block_m} up to 128)")
    n = _skip_n(cfg)
    if cfg.kernel != "dense" and n not in COUNT_GRANULARITIES:
        raise FgsimError(f"{cfg.kernel} kernel skips at {n} keys; traces store counts only at n in "
                         f"{COUNT_GRANULARITIES}")
    return m, n


def _launch_order(c: np.ndarray, cfg: KernelConfig) -> np.ndarray:
    """(heads, QB) counts → 1-D CTA launch order.

    fgattn launches grid (QB, B*H) with program_id(0) = query block (fastest), i.e. head-major; with an LPT row
    order (``extra['order'] == 'lpt'``, FgIndex.order) it is still head-major, heaviest query block first.
    """
    if cfg.grid_order == "head_fastest":
        return np.ascontiguousarray(c.T).reshape(-1)
    if cfg.extra.get("order") == "lpt" and cfg.kernel != "dense":
        return np.ascontiguousarray(-np.sort(-c, axis=1, kind="stable")).reshape(-1)
    return np.ascontiguousarray(c).reshape(-1)


def _finish_calls(tabs: CtaTables, gpu: GPU, params: ModelParams, cfg: KernelConfig, n_tok: int,
                  heads: int, qb: int, ms: np.ndarray, csum: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-call seconds and (calls, 5) breakdown seconds from makespans (cycles) and component sums."""
    clk = gpu.clock_hz
    occ = tabs.occupancy
    elt = ELT_BYTES.get(cfg.dtype, 2)
    t_sched = ms / clk
    per_sm = gpu.sm_count * occ.gain
    mma, ex, mem, fixed = (csum[:, i] / per_sm / clk for i in range(4))
    balanced = mma + ex + mem + fixed
    tail = np.maximum(t_sched - balanced, 0.0)
    qo = 2.0 * heads * n_tok * cfg.head_dim * elt
    kv_l2 = csum[:, 4]
    t_l2 = (kv_l2 + qo) / (gpu.l2_bytes_per_s * params.l2_bw_eff)
    uniq = 1.0 - np.exp(csum[:, 5] / max(heads, 1))  # fraction of a head's keys touched at least once
    kv_head = n_tok * 2.0 * cfg.head_dim * elt
    compulsory = heads * uniq * kv_head
    conc = min(heads, math.ceil(gpu.sm_count * occ.slots / max(qb, 1)) + 1)
    ws = conc * uniq * kv_head
    l2_eff = gpu.l2_bytes * params.l2_reuse_frac
    miss = np.where(ws > l2_eff, 1.0 - l2_eff / np.maximum(ws, 1.0), 0.0)
    hbm = compulsory + np.maximum(kv_l2 - compulsory, 0.0) * miss + qo
    t_hbm = hbm / (gpu.hbm_bytes_per_s * params.hbm_bw_eff)
    floor_excess = np.maximum(np.maximum(t_l2, t_hbm) - t_sched, 0.0)
    launch = (params.launch_us + getattr(params, f"launch_extra_us_{cfg.kernel}", 0.0)) * 1e-6
    gpu_t = t_sched + floor_excess + launch
    host = getattr(params, f"host_floor_us_{cfg.kernel}", 0.0) * 1e-6
    host_excess = np.maximum(host - gpu_t, 0.0)  # the GPU waits for the host-side launch path
    per_call = gpu_t + host_excess
    bd = np.stack([mma, ex, mem + floor_excess, tail, fixed + launch + host_excess], axis=1)
    return per_call, bd


def predict_workload(wl: Workload, cfg: KernelConfig, gpu: GPU, params: ModelParams, *,
                     params_source: str = "", entries: Sequence[tuple[int, int]] | None = None,
                     num_heads: int | None = None, stored_block_m: int | None = None,
                     chunk: int = 64, progress: Callable[[int], Any] | None = None) -> KernelPrediction:
    """Predict ``cfg`` for every (pass, layer) entry of ``wl`` (or ``entries``).

    ``num_heads``: if larger than the heads in the counts, the captured heads are repeated cyclically (a trace
    that captured a subset of heads); ``progress(k)`` is called after each chunk of k calls.
    """
    meta = getattr(wl, "meta", None)
    if getattr(meta, "attention", "self") != "self":
        raise FgsimError("cross-attention traces are not supported by the cost model yet")
    n_tok = int(wl.n_tokens)
    ents = list(wl.entries() if entries is None else entries)
    if not ents:
        raise FgsimError("the trace has no captured (pass, layer) entries to predict")
    m, n = counts_m_n(cfg, stored_block_m)
    qb = -(-n_tok // m)
    c0 = np.asarray(wl.counts(*ents[0], m=m, n=n if cfg.kernel != "dense" else 1))
    heads0 = max(int(num_heads or 0), c0.shape[0] if c0.ndim == 2 else 1)
    tabs = cta_tables(cfg, gpu, params, n_tok, n_ctas=heads0 * qb)
    occ = tabs.occupancy
    notes: list[str] = []
    per_call = np.zeros(len(ents))
    bds = np.zeros((len(ents), len(COMPONENTS)))
    flops = 0.0
    if cfg.kernel == "dense":
        heads = heads0
        idx = np.zeros((1, heads * qb), np.int64)
        ms, _, csum = simulate_calls(idx, tabs.work, tabs.comps, gpu.sm_count, occ.slots, occ.gain,
                                       np.array(occ.rates))
        pc, bd = _finish_calls(tabs, gpu, params, cfg, n_tok, heads, qb, ms, csum)
        per_call[:] = pc[0]
        bds[:] = bd[0]
        flops = 4.0 * heads * float(n_tok) ** 2 * cfg.head_dim * len(ents)
        if progress:
            progress(len(ents))
    else:
        for s in range(0, len(ents), chunk):
            block = ents[s:s + chunk]
            rows = []
            for (pp, ll) in block:
                c = np.asarray(wl.counts(pp, ll, m=m, n=n))
                if c.ndim != 2 or c.shape[1] != qb:
                    raise FgsimError(f"trace counts for pass {pp}, layer {ll} have shape {c.shape}; expected "
                                     f"(heads, {qb}) for N={n_tok}, M={m}")
                if num_heads and c.shape[0] < num_heads:
                    reps = -(-num_heads // c.shape[0])
                    c = np.tile(c, (reps, 1))[:num_heads]
                    if not notes:
                        notes.append(f"trace holds counts for {c.shape[0]} captured heads; repeated to {num_heads}")
                rows.append(_launch_order(c, cfg))
            heads = rows[0].size // qb
            if any(r.size != rows[0].size for r in rows):
                raise FgsimError("trace entries have different numbers of heads; predict them separately")
            idx = np.stack(rows)
            ms, _, csum = simulate_calls(idx, tabs.work, tabs.comps, gpu.sm_count, occ.slots, occ.gain,
                                       np.array(occ.rates))
            pc, bd = _finish_calls(tabs, gpu, params, cfg, n_tok, heads, qb, ms, csum)
            flops += 4.0 * m * cfg.head_dim * float(csum[:, 6].sum())
            per_call[s:s + len(block)] = pc
            bds[s:s + len(block)] = bd
            if progress:
                progress(len(block))
    breakdown = {k: float(bds[:, i].sum()) for i, k in enumerate(COMPONENTS)}
    return KernelPrediction(kernel=cfg.kernel, gpu=gpu.name, config=cfg, params_source=params_source,
                            per_call_s=per_call, entries=ents, breakdown_s=breakdown, occupancy=occ,
                            flops=flops, notes=notes)


def predict_counts(counts: np.ndarray, n_tokens: int, cfg: KernelConfig, gpu: GPU, params: ModelParams
                   ) -> tuple[float, dict[str, float]]:
    """Predict one call from (heads, QB) counts at the kernel's (m, n) (ignored for dense): (seconds, breakdown)."""

    class _One:
        def __init__(self) -> None:
            self.n_tokens = n_tokens

        def entries(self) -> list[tuple[int, int]]:
            return [(0, 0)]

        def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
            return np.asarray(counts)

    pr = predict_workload(_One(), cfg, gpu, params)
    return float(pr.per_call_s[0]), pr.breakdown_s


def timeline(counts: np.ndarray, n_tokens: int, cfg: KernelConfig, gpu: GPU, params: ModelParams
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-CTA (start_s, end_s, sm) of one call in launch order, for plots."""
    tabs = cta_tables(cfg, gpu, params, n_tokens, n_ctas=int(np.asarray(counts).size))
    c = np.zeros_like(np.asarray(counts)) if cfg.kernel == "dense" else np.asarray(counts)
    order = _launch_order(c, cfg)
    sch = simulate(tabs.work[order], gpu.sm_count, tabs.occupancy.slots, tabs.occupancy.gain,
                   np.array(tabs.occupancy.rates))
    return sch.start / gpu.clock_hz, sch.end / gpu.clock_hz, sch.sm


def iter_kernels(names: Iterable[str]) -> list[str]:
    """Validate a kernel list (``fg,block,dense``)."""
    out = []
    for k in names:
        k = k.strip()
        if not k:
            continue
        if k not in ("fg", "block", "dense"):
            raise FgsimError(f"unknown kernel '{k}'; choose from fg, block, dense")
        out.append(k)
    if not out:
        raise FgsimError("no kernel given; use --kernel fg,block,dense")
    return out
