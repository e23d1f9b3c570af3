"""Free parameters of the cost model: each one a property of the GPU architecture, with a unit and a range.

There is no per-launch-configuration, per-shape or per-case factor: a launch configuration enters the model only
through its tile shape (BLOCK_M, BLOCK_N, D, warps), pipeline depth (``num_stages``), load path (TMA or pointer
loads) and the compiled kernel's registers and shared memory. ``fgsim calibrate`` fits these parameters (bounded
least squares) on calibration rows only; the defaults are spec-derived priors used when no calibration exists.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from fgsim.errors import FgsimError


@dataclass(frozen=True)
class ParamSpec:
    """Unit, plausible range and meaning of one parameter."""

    unit: str
    lo: float
    hi: float
    meaning: str


#: Every parameter: (unit, lower bound, upper bound, meaning). At most 15 free (issue 10): the ones in
#: :data:`MEASURED` are set by ``fgsim calibrate``'s microbenchmarks, not fitted.
SPECS: dict[str, ParamSpec] = {
    "mma_eff": ParamSpec("1", 0.5, 1.0, "achieved fraction of the tensor-core peak while a tile's wgmma/mma run "
                         "(revision 8: measured by calibrate's mma microbenchmark where its rows exist)"),
    "fp32_per_score": ParamSpec("FP32 instr/score", 1.0, 24.0,
                                "FP32 instructions per attention score besides exp2 (scale, max, subtract, sum, "
                                "convert) on the critical path, at the SM's FP32 rate (measured by calibrate's fp32 "
                                "microbenchmark, revision 7); the O rescale adds D per query row per tile and "
                                "exp_poly's polynomial 7 per polynomial element; session 16: measured by the "
                                "softmax-only microbenchmark (fgsim.softmax_micro, timed) where its record is given"),
    "mma_wait_cycles": ParamSpec("cycles", 0.0, 600.0,
                                 "exposed latency of one dependent wgmma group (issue to result) in the tile chain; "
                                 "two per tile (S = QK^T before the softmax, then P V)"),
    "serial_wgmma_cycles": ParamSpec("cycles", 0.0, 400.0,
                                     "exposed latency of each further waited wgmma of a serialised tile loop (revision "
                                     "6): where ptxas waits for every wgmma (the SASS's HGMMA carrying gsb0, "
                                     "``loop_mma_wait``) a tile waits more often than the two waits of a pipelined "
                                     "loop; each further wait adds this to the CTA's chain"),
    "tile_sync_cycles": ParamSpec("cycles", 0.0, 600.0,
                                  "per key tile and CTA: loop control, barrier and async-copy wait"),
    "ldst_cycles": ParamSpec("cycles/instr", 0.5, 200.0,
                             "cycles of one warp's local-memory instruction (a spilled register's store or reload, "
                             "LDL / STL) through the SM's load/store path, in the CTA's chain and shared by "
                             "co-resident CTAs; the tile loop's count of them comes from the compiled kernel's SASS"),
    "mem_latency_cycles": ParamSpec("cycles", 300.0, 2000.0,
                                    "load-to-use latency of a global load under load (L2 hit to HBM mix)"),
    "l2_bw_eff": ParamSpec("1", 0.4, 1.3, "achieved fraction of the GPU file's L2 read bandwidth (fitted; "
                           "calibrate's L2 -> shared-memory stream l2_smem with every SM busy is recorded beside it "
                           "as a check, l2_smem_eff)"),
    "hbm_bw_eff": ParamSpec("1", 0.5, 1.0, "achieved fraction of the GPU file's HBM bandwidth"),
    "wgmma_min_cycles": ParamSpec("cycles/instr", 4.0, 96.0,
                                  "least tensor-pipe cycles one wgmma m64nNk16 occupies whatever its N (revision 5): "
                                  "small-N instructions (BLOCK_N=32, warpgroups splitting N) do not reach the "
                                  "tensor rate of their FLOPs"),
    "row_cycles": ParamSpec("cycles", 0.0, 8000.0,
                            "per query-block row: epilogue normalisation, O store issue, accumulator reset and the "
                            "next row's address math (a persistent program pays it per row, a one-row CTA once)"),
    "row_cycles_rcp": ParamSpec("cycles", 0.0, 8000.0,
                                "per query-block row of a Gluon CTA whose row end normalises O by one reciprocal per "
                                "row and a multiply (no per-element division) and stores it by a TMA bulk store "
                                "(fgattn's epilogues 'tma' / 'tma_sel'; session 15): replaces row_cycles, which "
                                "prices the per-element-division row ends (tl kernels, 'stg', 'tma_offs'); a "
                                "calibration without rows of such a row end reads it as row_cycles"),
    "launch_us": ParamSpec("us", 0.0, 10.0, "per kernel call in a stream: launch, grid fill and drain"),
    "overlap_p": ParamSpec("1", 1.0, 16.0,
                           "sharpness of the overlap of one CTA's chain with the asynchronous SM resources "
                           "(copies, L2 and shared-memory bandwidth): time = (a^p + b^p)^(1/p); 1 = sum, large = max"),
    "share_p": ParamSpec("1", 1.0, 16.0,
                         "sharpness of co-resident CTAs sharing the SM: with j CTAs a tile takes smax_q(j R, C) "
                         "relative to smax_q(R, C) alone (q = share_p; 1 = the CTAs serialise, large = perfect "
                         "interleaving up to the busiest unit)"),
}


#: parameters of earlier model revisions that calibration files may still hold (ignored when read):
#: ``l2_reuse_frac`` fitted to its bound (0.997) and bound no calibration or development row; the whole L2 now
#: holds reusable K/V (:data:`fgsim.model.assemble.L2_REUSE_FRAC`)
RETIRED = {"cta_cycles": "revision 5: fixed at 0 (revisions 3 and 4 fitted it to its lower bound, 0.004 and 3.9 "
                         "cycles); a program's start is in row_cycles, see fgsim.model.cta_cost.CTA_CYCLES",
           "l2_reuse_frac": "revision 3: fixed at 1 (the whole L2), see fgsim.model.assemble.L2_REUSE_FRAC",
           "spill_bytes_per_clk": "revision 4: spills priced from the tile loop's local-memory instructions "
                                  "(ldst_cycles) and bytes (L1 / L2 bandwidth of the GPU file)",
           "sfu_per_score": "revision 7: measured, not fitted: the tile loop's MUFU instructions are read off its "
                            "SASS (loop_mufu) and priced at the SM's MUFU rate that calibrate's exp2 "
                            "microbenchmark measures (mufu_exp_per_clk_per_sm)",
           "tma_issue_cycles": "session 15: fixed at 0 (calib12 / calib13 fitted 0.6 / 2.9 / 2.1 cycles per TMA "
                               "tile of its 0-600 range, < 0.3 % of a tile); its slot is row_cycles_rcp's, see "
                               "fgsim.model.cta_cost.TMA_ISSUE_CYCLES"}


@dataclass(frozen=True)
class ModelParams:
    """The model's free parameters (see :data:`SPECS` for units and ranges). Defaults are priors from public
    sources: FA3/FA4 tile analyses (arXiv 2407.08608, arXiv 2603.05451), Triton's legacy matmul model
    (``ldgsts`` latency ~300 cycles, github.com/triton-lang/triton), gpu-benches L2/HBM measurements
    (github.com/te42kyfo/gpu-benches)."""

    mma_eff: float = 0.85
    fp32_per_score: float = 6.0
    mma_wait_cycles: float = 120.0
    serial_wgmma_cycles: float = 0.0
    tile_sync_cycles: float = 80.0
    ldst_cycles: float = 30.0
    mem_latency_cycles: float = 800.0
    l2_bw_eff: float = 0.9
    hbm_bw_eff: float = 0.81
    wgmma_min_cycles: float = 16.0
    row_cycles: float = 500.0
    row_cycles_rcp: float = 500.0
    launch_us: float = 2.5
    overlap_p: float = 4.0
    share_p: float = 4.0

    def replace(self, **kw: float) -> ModelParams:
        return replace(self, **kw)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "calibration") -> ModelParams:
        """Parameters from a {name: value} mapping; FgsimError naming ``where`` for an unknown name or a value
        outside its range (missing names keep their priors)."""
        names = {f.name for f in fields(cls)}
        kw: dict[str, float] = {}
        if "l2_reuse_frac" in d and "row_cycles" not in d:
            kw["row_cycles"] = 0.0  # revision-2 calibrations: the per-row cost is inside cta_cycles
        for k, v in d.items():
            if k in RETIRED:
                continue
            if k not in names:
                raise FgsimError(f"{where}: unknown model parameter '{k}'")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise FgsimError(f"{where}: parameter '{k}' must be a finite number, got {v!r}")
            s = SPECS[k]
            if not s.lo - 1e-9 <= v <= s.hi + 1e-9:
                raise FgsimError(f"{where}: parameter '{k}' = {v} outside its range [{s.lo}, {s.hi}] {s.unit}")
            kw[k] = float(v)
        cta = d.get("cta_cycles")
        if isinstance(cta, (int, float)) and not isinstance(cta, bool) and math.isfinite(cta) and cta > 0:
            # an older calibration's per-program cycles: a one-row CTA paid cta_cycles + row_cycles
            row = kw.get("row_cycles", cls.row_cycles)
            kw["row_cycles"] = min(SPECS["row_cycles"].hi, row + float(cta))
        if "row_cycles_rcp" not in kw:  # a calibration fitted before session 15 saw no reciprocal row end
            kw["row_cycles_rcp"] = kw.get("row_cycles", cls.row_cycles)
        return cls(**kw)


def param_bounds(name: str) -> tuple[float, float]:
    """Fitting bounds (lower, upper) of a parameter."""
    s = SPECS[name]
    return (s.lo, s.hi)


PARAM_BOUNDS: dict[str, tuple[float, float]] = {k: (s.lo, s.hi) for k, s in SPECS.items()}
#: parameters ``fgsim calibrate`` measures (stream microbenchmarks) instead of fitting, when its CSV has the
#: microbenchmark rows: the HBM copy bandwidth and (revision 8) the tensor-core efficiency. (The L2 efficiency stays fitted: with the measured L2 -> SM port,
#: revision 6, a fit that also fixed it at the l2_smem stream's value put five parameters at their bounds and was
#: no better on the development data; validation/MODEL_NOTES.md)
MEASURED = ("hbm_bw_eff", "mma_eff", "fp32_per_score")
#: the measured constant (``fgsim.calibrate_micro.measured_constants``) each of :data:`MEASURED` is set from:
#: revision 8 takes the tensor-core efficiency from calibrate's ``mma`` microbenchmark (wgmma groups at N 32-256:
#: the achieved fraction of the bf16 peak at the widest N), which the revision-8 fit lands next to when free
#: (0.817 vs 0.844; revision 7's fit put it at 0.96, validation/MODEL_NOTES.md revision 8)
#: session 16 (calib15): ``fp32_per_score`` from the softmax-only microbenchmark's timed figure
#: (``fgsim calibrate --fp32-per-score`` on the GPU, passed to the fit with ``--fp32-per-score-from``; pinned when the
#: loop is not MUFU-bound, else fitted within [SASS count, timed figure]; validation/MODEL_NOTES.md, session 16)
MEASURED_FROM = {"hbm_bw_eff": "hbm_bw_eff", "mma_eff": "mma_eff_measured",
                 "fp32_per_score": "fp32_per_score_measured"}
assert len(SPECS) - len(MEASURED) <= 15 and set(SPECS) == {f.name for f in fields(ModelParams)}


#: revision 12 (session 14, validation/MODEL_NOTES.md): the cycle parameters that are memory-side latencies, fitted
#: in cycles at the GPU file's ``sustained_clock_mhz`` and held in nanoseconds when a row runs at another SM clock
MEMORY_CLOCKED_CYCLES = ("mem_latency_cycles",)


def at_sm_clock(p: ModelParams, clock_mhz: float, ref_clock_mhz: float) -> ModelParams:
    """``p`` for a run at SM clock ``clock_mhz`` (MHz) when its cycle parameters were fitted at ``ref_clock_mhz``:
    the memory-side latencies (:data:`MEMORY_CLOCKED_CYCLES`) keep their nanoseconds (cycles x clock / ref); every
    other cycle parameter is an SM-clock cost and keeps its cycles."""
    if not (clock_mhz > 0 and ref_clock_mhz > 0):
        raise FgsimError(f"at_sm_clock: clocks must be positive MHz, got {clock_mhz!r} / {ref_clock_mhz!r}")
    f = clock_mhz / ref_clock_mhz
    return replace(p, **{k: getattr(p, k) * f for k in MEMORY_CLOCKED_CYCLES}) if f != 1.0 else p
