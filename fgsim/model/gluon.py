"""Which implementation a launch entry runs, and the cycles of fgattn's Gluon FG form (``extra['impl'] == 'gluon'``).

A launch-table entry may say ``impl: gluon`` (fgattn.launch; only the fg D=128 M=128 granularity-1 entry can): on a
GPU of an architecture in ``fgattn.launch.GLUON_ARCHS`` (sm90), in bf16 / fp16, fgattn then runs
``fgattn.gluon_fg``'s warp-specialized form instead of the Triton (tl) kernel; everywhere else (other GPUs, fp32)
it runs the entry's tl kernel, which the cost model prices exactly as a tl entry (:func:`priced_config`). Calls
with ``return_lse`` (context parallel) also run tl; the model does not see that flag (as the rest of fgattn's
run-time fallbacks: the interpreter, unaligned strides), so it prices what ``impl_for_arch`` returns.

Form ``ws2`` (the form the cost model prices; the others raise) on one SM, per 128-key tile (SM cycles; the same
per-tile resources as :mod:`fgsim.model.cta_cost`, at the same GPU rates and fitted parameters):

* **Schedule**: persistent, one CTA per SM (224 KB of shared memory: two 64-row Q halves and a 3-stage ring of
  K/V tiles), G = min(rows, SMs) programs; program p walks launch positions p, p + G, ... of the launch order
  (LPT where the call's index carries an order, :func:`fgsim.model.assemble.walks_lpt`, else the natural order:
  the Gluon form reads an identity Order then) -- static round-robin, the persistent simulation of :func:`fgsim.scheduler.simulate_persistent`, not the
  hardware's one-CTA-per-row placement of the tl ``one_row`` entry.
* **Producer warpgroup** (its own resource, overlapping the consumers): loads the next tile's index entries one
  tile ahead and gathers K / V rows by cp.async into the ring. Per tile it needs
  ``max(its instructions (one warp issues one per clock), (mem_latency + rows 2 D elt / bw_sm) / (stages - 1))``:
  Little's law with ``stages - 1`` tiles in flight (the index a tile ahead adds no pipeline level). Its
  instructions also take issue slots from the SM's schedulers.
* **Two consumer warpgroups**, 64 query rows each, each with its own mbarrier handshake (no lock-step): per tile a
  warpgroup runs QK (its half of the tile's wgmma), the online softmax of 64 x 128 scores and PV. One warpgroup
  spans the SM's four schedulers, so alone it gets the SM's tensor, MUFU and FP32 rates. Pipeline 0: its chain is
  ``C_wg = (t_mma + t_sm) / 2 + 2 mma_wait + tile_sync`` (QK waited before the softmax, PV before the next tile).
  Pipeline >= 1 (revision 9): QK(t + 1) is issued while PV(t) is in flight and the softmax runs under the
  warpgroup's own PV (FlashAttention-3's intra-warpgroup overlap, arXiv 2407.08608):
  ``C_wg = t_qk + mma_wait + max(t_sm / 2, t_pv) + tile_sync`` with ``t_qk = t_pv = t_mma / 4`` (one warpgroup's
  half of each). The static SASS of pipeline 1 places the PV wait before the softmax (ptxas hoists the
  ``wait(0)``; kernels/NOTES.md, "Gluon round 2"), which would forbid this overlap, but the measured Gluon rows of
  calib10 (Gluon / tl 0.77-0.81 per call at 0.2-0.3 density, pipeline 0 +10-11 %) and the development cells choose
  it over the serial chain (validation/MODEL_NOTES.md, revision 9). The other warpgroup overlaps too: the two
  chains share the SM as co-resident CTAs do (:func:`fgsim.model.cta_cost.coresident_rates`, ``share_p``): the
  pair finishes a tile in ``smax_q(2 R_wg, C_wg)``, ``R_wg = R / 2`` the warpgroup's share of the tile's
  shared-SM resources ``R = max(t_mma, t_sm, t_smem, t_bw, t_spill, t_issue)`` (each warpgroup reads the whole K
  and V tile from shared memory; issue: both consumers' and the producer's instructions).
* A tile takes ``max(R, smax_p(pair, producer))`` (``p = overlap_p``, the tl model's join of the chain and the load
  latency); a partial tile costs a full tile's wgmma.
* **Per row**: the row end's cycles (``row_cycles``, or ``row_cycles_rcp`` for a reciprocal + TMA bulk-store row end: :func:`row_end_cycles`, session 15) + the epilogue (O normalisation, O store at the SM's HBM share) + the next row's Q
  (one TMA per half, issued after this row's last QK: one exposed latency + its bytes). The producer's index loads
  and gathers cross the row boundary, so no row pays the tl row start's row offsets -> index -> rows latency
  chain, nor the drain of a masked tail tile. A program's first row pays its index latency and first gather.

No parameter of its own (revision 8's 15, 13 fitted): whether the shared ones hold for the Gluon form is for the
recalibration on Gluon rows to show (validation/MODEL_NOTES.md, "Gluon pricing, prepared").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from fgsim.errors import FgsimError
from fgsim.hardware import GPU
from fgsim.launchcfg import KernelConfig
from fgsim.model.params import ModelParams

#: implementations a launch entry may name (``extra['impl']``; fgattn.launch.IMPLS)
IMPLS = ("tl", "gluon")
#: architectures with a Gluon form when fgattn is not importable (fgattn.launch.GLUON_ARCHS)
GLUON_ARCHS = ("sm90",)
#: dtypes the Gluon form runs (fgattn.fg_route: others fall back to tl)
GLUON_DTYPES = ("bf16", "fp16")
#: Gluon forms the cost model prices: ``ws2`` (the fg entry: gathered K/V) and ``contig`` (the dense / block D=128
#: M=128 entries: the ws2 CTA with a TMA K/V producer, fgattn.gluon_contig; session 14)
PRICED_FORMS = ("ws2", "contig")
#: (kernel, D, M, gran_n) of the launch-table keys that may run form contig (fgattn.launch.CONTIG_KEYS)
CONTIG_KEYS = (("dense", 128, 128, 1), ("block", 128, 128, 128))
#: form contig's (consumer, producer) registers when the entry names none (fgattn.gluon_contig.DEFAULT_REGS)
CONTIG_DEFAULT_REGS = (216, 64)
#: (kernel, D, M, gran_n) of the fg keys whose Gluon form is the gran-1 ws2 list kernel on the index expanded to kept
#: keys (``extra.gluon.expand``; fgattn.launch.EXPAND_KEYS, fgattn.gran_expand; session 17, helper K): priced as the
#: gran-1 form on the expanded key counts (a row of c runs keeps min(c g, N) keys: ceil(keys / 128) tiles)
EXPAND_KEYS = (("fg", 128, 128, 16), ("fg", 128, 128, 64))
#: row schedules of form ws2 (``extra.gluon.schedule``, default walk; fgattn.launch.GLUON_KNOBS)
SCHEDULES = ("walk", "list")
#: a row's fixed cost in 128-key tiles in the list schedule's host planner when fgattn is not importable
#: (fgattn.gluon_fg_list.C_ROW_TILES, 3.0 = c_row 5.4 µs / c_tile 1.82 µs per SM on run 9; the plan the kernel runs,
#: so the model assigns rows with the same costs and prices them with its own cycles): :func:`list_c_row_tiles`
LIST_C_ROW_TILES = 3.0
#: the row-end path of each fgattn Gluon row end (``extra.gluon.epilogue``, ``fgattn.gluon_fg.EPILOGUES``; default
#: ``"stg"``), i.e. which per-row parameter prices it (validation/MODEL_NOTES.md, "Session 15"): ``"div"`` = 64
#: per-element IEEE divisions per thread (``stg``: register STG stores; ``tma_offs``: a TMA bulk store, measured
#: within the control's scatter of stg, -0.27 µs per row) -> ``row_cycles``; ``"rcp"`` = one reciprocal per row, a
#: multiply and a TMA bulk store (``tma``, ``tma_sel``: -1.8..-2.5 µs per row in K4-K6's paired fits) ->
#: ``row_cycles_rcp``. Other values (``auto:SHORT:TILES``: resolved per launch by fgattn) are not priced
ROW_END_PATHS = {"stg": "div", "tma_offs": "div", "tma": "rcp", "tma_sel": "rcp"}
#: form ws2's fixed structure (fgattn.gluon_fg: BLOCK_N, STAGES, two consumer warpgroups of 64 rows, a producer
#: warpgroup of 4 warps; registers at launch and shared bytes from its compile, Triton 3.6 sm_90, kernels/NOTES.md)
WS2 = {"block_n": 128, "stages": 3, "consumer_wgs": 2, "producer_warps": 4, "n_regs": 168, "shared": 229_683}
#: instructions one producer warp issues per tile when its SASS is unknown: the ws2 producer's tile loop (32
#: LDGSTS of 16 B + 16 LDG + address math per thread; ``fgsim.validation.sass.gluon_loop_traffic`` of the offline
#: compile of ws2 pipeline 1 without fence, Triton 3.6 sm_90: 315 instructions without NOPs)
PRODUCER_INSTR = 315.0
#: consumer tile-loop figures of that compile (``gluon_loop_traffic``: per warp of one consumer warpgroup and
#: iteration = its half of a 128-key tile), used for an entry with exactly these knobs when the calibration's
#: resources table has no row for its key; other knobs take the tile-shape estimates
WS2_SASS = {("ws2", 1, False, 0.0): {"loop_ldst": 0, "loop_ldst_bytes": 0, "loop_mma": 16, "loop_instr": 479,
                                     "loop_mma_wait": 2, "loop_mufu": 66, "loop_fp32": 268,
                                     "producer_loop_instr": 315}}
#: the tile loop's instructions per consumer warp and iteration with a TMA row end (offsets a row ahead), the offline
#: compile of Triton 3.6 sm_90 (kernels/NOTES.md, "Session 14, K6": tma_offs / tma_sel 493, tma 493); the other
#: figures as :data:`WS2_SASS`'s; used when the calibration's resources table has no row for the entry's key
WS2_TMA_LOOP_INSTR = 493
#: form contig's loop figures of the offline compile of ``fgattn.gluon_contig._contig_ws2`` (Triton 3.6 sm_90, regs
#: 240 / 24, ping-pong, pipeline 1; ``fgsim.validation.sass.gluon_loop_traffic``, bf16 and fp16 alike): the ws2
#: consumers' loop (481 instructions, 16 HGMMA, 66 MUFU, 268 FP32) and the TMA producer's tile loop, one warp's
#: instructions per 128-key tile: dense 59 (the ``empty`` wait, one expect-tx, two UTMALDG boxes of 128 x 128), block
#: 65 (+ the next tile's block number: one LDG); used when the calibration's resources table has no row for the key
CONTIG_SASS = {k: {"loop_ldst": 0, "loop_ldst_bytes": 0, "loop_mma": 16, "loop_instr": 481, "loop_mma_wait": 2,
                   "loop_mufu": 66, "loop_fp32": 268, "producer_loop_instr": n}
               for k, n in (("dense", 59), ("block", 65))}


def gluon_requested(cfg: KernelConfig) -> bool:
    """The entry names an implementation other than tl (``extra['impl']``), validated by :func:`kernel_impl`."""
    return "impl" in cfg.extra or "gluon" in cfg.extra


def _check(cfg: KernelConfig) -> str:
    """The entry's ``impl`` after validation; FgsimError naming the field for a bad value."""
    impl = cfg.extra.get("impl", "tl")
    if impl not in IMPLS:
        raise FgsimError(f"launch config ({cfg.describe()}): extra.impl={impl!r} must be one of {list(IMPLS)}")
    if impl == "tl":
        if "gluon" in cfg.extra:
            raise FgsimError(f"launch config ({cfg.describe()}): extra.gluon given without extra.impl='gluon'")
        return impl
    launch = _launch_module()
    if launch is not None:
        try:
            launch.check_impl(cfg.kernel, cfg.head_dim, cfg.block_m, cfg.gran_n, dict(cfg.extra), "launch config")
        except ValueError as exc:
            raise FgsimError(str(exc)) from None
    elif (cfg.kernel, cfg.head_dim, cfg.block_m, cfg.gran_n) not in (("fg", 128, 128, 1), *CONTIG_KEYS,
                                                                      *EXPAND_KEYS):
        raise FgsimError(f"launch config ({cfg.describe()}): extra.impl='gluon' exists for fg D=128 M=128 gran_n=1 "
                         "(and gran_n 16 / 64 with extra.gluon.expand), dense D=128 M=128 and block D=128 M=128 "
                         "gran_n=128 only")
    elif (cfg.kernel, cfg.head_dim, cfg.block_m, cfg.gran_n) in EXPAND_KEYS and \
            (cfg.extra.get("gluon") or {}).get("expand") is not True:
        raise FgsimError(f"launch config ({cfg.describe()}): extra.impl='gluon' on fg gran_n {cfg.gran_n} needs "
                         "extra.gluon.expand=true")
    g = cfg.extra.get("gluon")
    if not isinstance(g, Mapping) or "form" not in g:
        raise FgsimError(f"launch config ({cfg.describe()}): extra.impl='gluon' needs extra.gluon with a 'form'")
    return impl


def _launch_module() -> Any | None:
    from fgsim.launchcfg import _import_launch

    return _import_launch()


def kernel_impl(cfg: KernelConfig, gpu: GPU) -> str:
    """``"gluon"`` or ``"tl"``: what a launch of ``cfg`` on ``gpu`` runs (``fgattn.launch.impl_for_arch`` for the
    GPU's architecture; tl for a dtype the Gluon form does not take). FgsimError for an invalid ``impl`` /
    ``gluon`` field."""
    impl = _check(cfg)
    if impl == "tl":
        return "tl"
    launch = _launch_module()
    if launch is not None and hasattr(launch, "impl_for_arch"):
        impl = str(launch.impl_for_arch(SimpleNamespace(impl=impl), gpu.sm_arch))
    else:
        impl = "gluon" if gpu.sm_arch in GLUON_ARCHS else "tl"
    return impl if cfg.dtype in GLUON_DTYPES else "tl"


def tl_config(cfg: KernelConfig) -> KernelConfig:
    """The same entry as the tl kernel launches it (``impl`` / ``gluon`` removed; fgattn's ``tl_config``)."""
    if not gluon_requested(cfg):
        return cfg
    return replace(cfg, extra={k: v for k, v in cfg.extra.items() if k not in ("impl", "gluon")})


def priced_config(cfg: KernelConfig, gpu: GPU) -> tuple[str, KernelConfig]:
    """(implementation, configuration the model prices): a tl entry unchanged, an ``impl: gluon`` entry that runs
    tl on ``gpu`` as its tl fallback, a Gluon one as itself."""
    if not gluon_requested(cfg):
        return "tl", cfg
    impl = kernel_impl(cfg, gpu)
    return (impl, cfg) if impl == "gluon" else ("tl", tl_config(cfg))


def knobs(cfg: KernelConfig) -> dict[str, Any]:
    """The Gluon knobs of an ``impl: gluon`` entry with fgattn's defaults (form, pipeline, exp_poly, fence, schedule;
    form contig also pingpong and regs: its consumers run without exp_poly or fence, always on the list plan)."""
    g = dict(cfg.extra.get("gluon") or {})
    form = str(g.get("form", ""))
    if form not in PRICED_FORMS:
        raise FgsimError(f"launch config ({cfg.describe()}): the cost model prices Gluon form(s) "
                         f"{list(PRICED_FORMS)}, not extra.gluon.form={form!r}")
    is_contig_key = (cfg.kernel, cfg.head_dim, cfg.block_m, cfg.gran_n) in CONTIG_KEYS
    if (form == "contig") != is_contig_key:
        raise FgsimError(f"launch config ({cfg.describe()}): Gluon form {form!r} "
                         + ("is for the dense / block D=128 M=128 entries only" if form == "contig" else
                            "is the fg form; the dense / block D=128 M=128 entries run form 'contig'"))
    epilogue = g.get("epilogue", "stg")
    if epilogue not in ROW_END_PATHS:
        raise FgsimError(f"launch config ({cfg.describe()}): the cost model prices extra.gluon.epilogue in "
                         f"{list(ROW_END_PATHS)}, not {epilogue!r}")
    if form == "contig":
        regs = g.get("regs", CONTIG_DEFAULT_REGS)
        if not (isinstance(regs, list | tuple) and len(regs) == 2 and all(isinstance(x, int) for x in regs)):
            raise FgsimError(f"launch config ({cfg.describe()}): extra.gluon.regs={regs!r} must be [consumer, "
                             "producer] registers")
        return {"form": form, "pipeline": int(g.get("pipeline", 1) or 1), "exp_poly": 0.0, "fence": False,
                "schedule": "list", "pingpong": bool(g.get("pingpong", False)), "regs": (int(regs[0]), int(regs[1])),
                "epilogue": str(epilogue)}
    schedule = g.get("schedule", "walk")
    if schedule not in SCHEDULES:
        raise FgsimError(f"launch config ({cfg.describe()}): extra.gluon.schedule={schedule!r} must be one of "
                         f"{list(SCHEDULES)}")
    c_row = g.get("c_row")
    if c_row is not None and (isinstance(c_row, bool) or not isinstance(c_row, int | float) or not 0 <= c_row <= 50):
        raise FgsimError(f"launch config ({cfg.describe()}): extra.gluon.c_row={c_row!r} must be a number in "
                         "[0, 50] (the list planner's row cost in 128-key tiles)")
    return {"form": form, "pipeline": int(g.get("pipeline", 0) or 0), "exp_poly": float(g.get("exp_poly", 0) or 0),
            "fence": bool(g.get("fence", True)), "schedule": str(schedule), "epilogue": str(epilogue),
            "expand": bool(g.get("expand", False)), "c_row": None if c_row is None else float(c_row)}


def plan_c_row(cfg: KernelConfig) -> float:
    """The list planner's row cost (128-key tiles) the kernel runs for this entry: its ``extra.gluon.c_row`` (the
    launch table's, read by fgattn's planner too), else fgattn's default (:func:`list_c_row_tiles`)."""
    c = knobs(cfg).get("c_row")
    return list_c_row_tiles() if c is None else float(c)


def row_end_path(cfg: KernelConfig) -> str:
    """``"div"`` or ``"rcp"``: the row-end path of a Gluon entry's ``extra.gluon.epilogue`` (:data:`ROW_END_PATHS`;
    FgsimError naming the entry for a value the model does not price)."""
    return ROW_END_PATHS[knobs(cfg)["epilogue"]]


def row_end_cycles(cfg: KernelConfig, p: ModelParams) -> float:
    """Per-row cycles of the entry's row end: ``row_cycles`` (division path) or ``row_cycles_rcp`` (reciprocal +
    TMA bulk store), SM cycles per query-block row."""
    return float(p.row_cycles_rcp if row_end_path(cfg) == "rcp" else p.row_cycles)


_C_ROW_TILES: list[float] = []


def list_c_row_tiles() -> float:
    """The list planner's row cost in 128-key tiles that fgattn runs: ``C_ROW_TILES`` as assigned in fgattn's
    ``gluon_fg_list.py``, read from its source (importing it would import torch and Triton, which the model does not
    need), else :data:`LIST_C_ROW_TILES`."""
    if not _C_ROW_TILES:
        import ast
        import importlib.util

        val = LIST_C_ROW_TILES
        try:
            spec = importlib.util.find_spec("fgattn")
            locs = list(spec.submodule_search_locations or []) if spec is not None else []
            for loc in locs:
                src = Path(loc) / "gluon_fg_list.py"
                if src.is_file():
                    for node in ast.parse(src.read_text()).body:
                        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                                and getattr(node.targets[0], "id", "") == "C_ROW_TILES"
                                and isinstance(node.value, ast.Constant)
                                and isinstance(node.value.value, int | float)):
                            val = float(node.value.value)
                    break
        except (ImportError, ValueError, OSError, SyntaxError):
            val = LIST_C_ROW_TILES
        _C_ROW_TILES.append(val)
    return _C_ROW_TILES[0]


def gluon_key(cfg: KernelConfig) -> str:
    """Resources-table key of a Gluon launch (its compiled figures are not the tl entry's)."""
    k = knobs(cfg)
    var = f"gluon-{k['form']}-p{k['pipeline']}" + ("+fence" if k["fence"] else "") + \
        (f"+ep{k['exp_poly']:g}" if k["exp_poly"] else "")
    if k["form"] == "contig":
        var += ("+pp" if k["pingpong"] else "") + f"+r{k['regs'][0]}_{k['regs'][1]}"
    if k["epilogue"] != "stg":  # another row end is another binary (its tile loop's SASS differs too)
        var += f"+{k['epilogue']}"
    return (f"{cfg.kernel}/{cfg.dtype}/d{cfg.head_dim}/m{cfg.block_m}/bn{WS2['block_n']}/"
            f"w{4 * (WS2['consumer_wgs'] + 1)}/s{WS2['stages']}/{var}")


def gluon_figures(cfg: KernelConfig, resources: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """Compiled figures of the Gluon launch: the resources table's row for :func:`gluon_key`, else the offline
    SASS figures of :data:`WS2_SASS` for its knobs, else {} (estimates)."""
    r = (resources or {}).get(gluon_key(cfg))
    if r:
        return r
    k = knobs(cfg)
    if k["form"] == "contig":
        return CONTIG_SASS[cfg.kernel]
    fig = WS2_SASS.get((k["form"], k["pipeline"], k["fence"], k["exp_poly"]), {})
    if fig and k["epilogue"] != "stg":
        fig = {**fig, "loop_instr": WS2_TMA_LOOP_INSTR}
    return fig


def consumer_view(cfg: KernelConfig) -> KernelConfig:
    """The tile the two consumer warpgroups compute, as a tl-like configuration (BLOCK_N 128, 8 warps, the Gluon
    exp_poly): what the per-tile helpers of :mod:`fgsim.model.cta_cost` price."""
    k = knobs(cfg)
    extra = {"exp_poly": k["exp_poly"]} if k["exp_poly"] else {}
    return replace(cfg, block_n=WS2["block_n"], num_warps=4 * WS2["consumer_wgs"], num_stages=WS2["stages"],
                   extra=extra)


def tile_figures(cfg: KernelConfig, gpu: GPU, resources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameter-free inputs of :func:`gluon_tile`: knobs, consumer view, the SASS figures' MUFU, spill,
    consumer and producer instructions per tile."""
    from fgsim.model.occupancy import exp_poly_fraction, mma_per_tile, softmax_estimate

    k = knobs(cfg)
    cv = consumer_view(cfg)
    r = gluon_figures(cfg, resources)
    # softmax: the consumer loop's MUFU / FP32 instructions per thread (one warpgroup's iteration = its half of the
    # tile) from the Gluon SASS reader, x the consumers' threads; else the tile-shape estimate
    thr = 32.0 * cv.num_warps
    # the SASS figures are per warp and consumer-loop iteration (one warpgroup's half of the tile): scaled to the
    # tile's wgmma per warp
    f = mma_per_tile(cv, gpu) / float(r["loop_mma"]) if int(r.get("loop_mma", 0) or 0) > 0 else 1.0
    if str(r.get("loop_mufu", "")) not in ("", "None") and "loop_fp32" in r:
        n_mufu, n_fp32_sass = float(r["loop_mufu"]) * f * thr, float(r["loop_fp32"]) * f * thr
    else:
        n_mufu, n_fp32_sass = softmax_estimate(cv)
    del n_fp32_sass  # the FP32 time is priced as the tl model does (fitted effective work vs the FMA pipe)
    if int(r.get("loop_instr", 0) or 0) > 0:
        cons_instr = float(r["loop_instr"]) * f
    else:
        from fgsim.model.occupancy import local_traffic

        cons_instr = local_traffic(cv, gpu, {})[2]
    contig = k["form"] == "contig"
    prod_instr = float(r.get("producer_loop_instr", 0) or 0) or (
        float(CONTIG_SASS[cfg.kernel]["producer_loop_instr"]) if contig else PRODUCER_INSTR)
    return {"knobs": k, "cv": cv, "n_mufu": n_mufu, "ep": exp_poly_fraction(cv),
            "ldst": float(r.get("loop_ldst", 0) or 0) * f, "cons_instr": cons_instr, "prod_instr": prod_instr}


def gluon_tile(cfg: KernelConfig, gpu: GPU, p: ModelParams, rows: np.ndarray, n_active: int,
               resources: Mapping[str, Any] | None = None, figures: Mapping[str, Any] | None = None
               ) -> dict[str, np.ndarray]:
    """Per-tile cycles of form ws2 for tiles gathering ``rows`` K/V rows with ``n_active`` SMs busy (module
    docstring): {mma, sm, resource, pair, producer, alone}. ``figures``: :func:`tile_figures` of ``cfg``, built
    earlier (None: read now)."""
    from fgsim.model.cta_cost import TMA_ISSUE_CYCLES, WARP_SCHEDULERS, power_capped_mma, smax, wgmma_cycles
    from fgsim.model.occupancy import ELT_BYTES, SOFTMAX_FIT, SOFTMAX_FP32_PIPE

    fig = figures if figures is not None else tile_figures(cfg, gpu, resources)
    k, cv = fig["knobs"], fig["cv"]
    elt = ELT_BYTES.get(cfg.dtype, 2)
    m, bn, d = cv.block_m, cv.block_n, cv.head_dim
    wgs = WS2["consumer_wgs"]
    rows = np.asarray(rows, np.float64)
    clk = gpu.clock_hz
    t_mma = wgmma_cycles(cv, gpu, gpu.tensor_flops(cfg.dtype), elt, p.wgmma_min_cycles) / p.mma_eff
    t_mma = power_capped_mma(t_mma, 4.0 * m * bn * d, gpu)  # candidate RP (off unless set)
    t_exp = fig["n_mufu"] / gpu.mufu_exp_per_clk_per_sm
    ep = fig["ep"]
    fp_rate = gpu.fp32_flop_per_clk_per_sm / 2.0
    t_fp = max((m * bn * p.fp32_per_score + m * d) / fp_rate,
               (m * bn * (SOFTMAX_FP32_PIPE + SOFTMAX_FIT[2] * ep) + m * d) / fp_rate)
    t_sm = max(t_exp, t_fp)
    bw_sm = min(gpu.l2_bytes_per_s * p.l2_bw_eff / (max(1, n_active) * clk), gpu.l2_port_bytes_per_clk)
    row_bytes = 2.0 * d * elt
    byts = rows * row_bytes
    t_smem = (byts + wgs * bn * row_bytes) / gpu.smem_bytes_per_clk_per_sm
    t_bw = byts / bw_sm
    t_spill = fig["ldst"] * cv.num_warps * p.ldst_cycles
    cons_instr = fig["cons_instr"]
    contig = k["form"] == "contig"
    prod_instr = fig["prod_instr"]
    t_issue = (cons_instr * cv.num_warps + prod_instr * WS2["producer_warps"]) / WARP_SCHEDULERS
    res = np.maximum(np.maximum(np.maximum(t_mma, t_sm), np.maximum(t_smem, t_bw)), np.maximum(t_spill, t_issue))
    # revision 9 (chosen on calib10's Gluon rows and the development cells, validation/MODEL_NOTES.md): with
    # pipeline >= 1 a consumer warpgroup issues QK(t + 1) while PV(t) runs and its softmax overlaps its own PV in
    # flight (FlashAttention-3's intra-warpgroup overlap): per tile QK, one exposed wgmma wait, then the longer of
    # the softmax and PV; pipeline 0 waits for QK before the softmax and for PV before the next tile (the tl chain)
    t_half = t_mma / wgs / 2.0
    if k["pipeline"] >= 1:
        chain_wg = (t_half + p.mma_wait_cycles + np.maximum(t_sm / wgs, t_half) + t_spill / wgs
                    + p.tile_sync_cycles)
    else:
        chain_wg = (t_mma + t_sm + t_spill) / wgs + 2.0 * p.mma_wait_cycles + p.tile_sync_cycles
    r_wg = res / wgs
    pair = smax(wgs * r_wg, chain_wg, p.share_p)
    if contig:
        # TMA producer (session 14): one thread issues the stage's two 128 x 128 boxes onto one expect-tx barrier
        # (TMA_ISSUE_CYCLES: descriptor issue and mbarrier handling per K+V tile, 0 since session 15); the
        # bytes arrive after the memory latency at the SM's L2 share; stages - 1 tiles in flight (Little's law), no
        # index or gather instructions (the block form's next block number is loaded a tile ahead)
        lat = (p.mem_latency_cycles + TMA_ISSUE_CYCLES + byts / bw_sm) / max(1.0, WS2["stages"] - 1.0)
    else:
        lat = (p.mem_latency_cycles + byts / bw_sm) / max(1.0, WS2["stages"] - 1.0)
    producer = np.where(rows > 0, np.maximum(prod_instr, lat), 0.0)
    alone = np.maximum(res, smax(pair, producer, p.overlap_p))
    return {"mma": np.full_like(rows, t_mma), "sm": np.full_like(rows, t_sm), "resource": res, "pair": pair,
            "producer": producer, "alone": alone}


@dataclass(frozen=True)
class GluonLayout:
    """The parameter-free half of :func:`gluon_tables` for one (entry, GPU, N, grid, keys, resources, count domain)
    (:class:`fgsim.model.cta_cost.TablesLayout` of a Gluon launch)."""

    figures: Mapping[str, Any]  # tile_figures
    n_kv: int
    n_active: int
    counts: np.ndarray
    keys: np.ndarray
    n_full: np.ndarray
    r_last: np.ndarray
    r_uniq: np.ndarray
    r_inv: np.ndarray
    has_last: np.ndarray
    occupancy: Any  # fgsim.model.occupancy.Occupancy (one program per SM: no parameter in it)
    notes: tuple[str, ...]
    plan_cost: np.ndarray | None
    lpt: bool


def gluon_layout(cfg: KernelConfig, gpu: GPU, n_tokens: int, n_ctas: int | None = None, n_keys: int | None = None,
                 resources: Mapping[str, Any] | None = None, counts: np.ndarray | None = None) -> GluonLayout:
    """The parameter-free half of :func:`gluon_tables` (same arguments, no parameters)."""
    from fgsim.model.assemble import walks_lpt
    from fgsim.model.cta_cost import count_domain, skip_n
    from fgsim.model.occupancy import Occupancy

    fig = tile_figures(cfg, gpu, resources)
    cv, k = fig["cv"], fig["knobs"]
    bn = cv.block_n
    n_kv = int(n_keys or n_tokens)
    contig = k["form"] == "contig"
    r = (resources or {}).get(gluon_key(cfg)) or {}
    smem = int(r.get("shared", 0) or 0) or WS2["shared"]
    if smem > gpu.smem_per_cta_kb * 1024:
        raise FgsimError(f"{cfg.describe()} (Gluon form {k['form']}) needs {smem} B of shared memory; {gpu.name} "
                         f"allows {int(gpu.smem_per_cta_kb * 1024)} B per CTA")
    n_active = int(gpu.sm_count if n_ctas is None else max(1, min(gpu.sm_count, int(n_ctas))))
    skip = skip_n(cfg)
    counts = count_domain(cfg, n_kv, counts)  # dense: every row runs all keys (one count, as the tl tables)
    keys = np.array([float(n_kv)]) if cfg.kernel == "dense" else np.minimum(counts * skip, n_kv)
    n_full = np.floor(keys / bn)
    r_last = keys - n_full * bn
    has_last = (r_last > 0).astype(np.float64)
    # the last tile's cost depends on its row count only (at most BLOCK_N values): priced once per distinct value
    r_uniq, r_inv = np.unique(r_last, return_inverse=True)
    slots = max(1, min(int(gpu.smem_per_sm_kb * 1024 // smem), 1))  # ws2 is written for one CTA per SM
    occ = Occupancy(slots=slots, limiter="smem", smem_bytes=smem,
                    regs_per_thread=int(r.get("n_regs", 0) or 0) or WS2["n_regs"], gain=1.0, rates=(1.0,),
                    source="compiled (calibration resources table)" if r else "Gluon form ws2 (offline compile)")
    listed = k["schedule"] == "list"
    c_row = plan_c_row(cfg) if listed else 0.0
    how = ("rows by greedy list scheduling in launch order (planned cost "
           f"{c_row:g} + executed tiles)" if listed else "rows dealt round-robin in launch order")
    notes = [f"Gluon form {k['form']} (pipeline {k['pipeline']}): persistent, one program per SM, {how}; producer "
             + ("warpgroup loads K / V tiles by TMA" if contig else "warpgroup gathers") + ", two consumer warpgroups"]
    if k.get("expand"):
        notes.append(f"gran-{cfg.gran_n} index expanded to its kept keys (fgattn.gran_expand): the gran-1 list kernel "
                     "on min(runs x gran_n, N) keys per row")
    plan_cost = c_row + np.maximum(np.ceil(keys / bn), 1.0) if listed else None
    return GluonLayout(fig, n_kv, n_active, counts, keys, n_full, r_last, r_uniq, r_inv, has_last, occ, tuple(notes),
                       plan_cost, walks_lpt(cfg))


def gluon_tables(cfg: KernelConfig, gpu: GPU, params: ModelParams, n_tokens: int, n_ctas: int | None = None,
                 n_keys: int | None = None, resources: Mapping[str, Any] | None = None,
                 counts: np.ndarray | None = None, layout: GluonLayout | None = None) -> Any:
    """:class:`fgsim.model.cta_cost.CtaTables` of form ws2: per kept-key count, a row's cycles inside a persistent
    program (``row_work``) and a program's first-row extra (``first_extra``); one program per SM. ``counts``: the
    sorted distinct counts to tabulate (None: all; :func:`fgsim.model.cta_cost.count_domain`); ``layout``: the
    :func:`gluon_layout` of these same arguments, built earlier."""
    from fgsim.model.cta_cost import CTA_CYCLES, CtaTables, skip_n
    from fgsim.model.occupancy import ELT_BYTES

    p = params
    lay = layout if layout is not None else gluon_layout(cfg, gpu, n_tokens, n_ctas, n_keys, resources, counts)
    fig = lay.figures
    cv, k = fig["cv"], fig["knobs"]
    elt = ELT_BYTES.get(cfg.dtype, 2)
    m, bn, d = cv.block_m, cv.block_n, cv.head_dim
    n_kv = lay.n_kv
    clk = gpu.clock_hz
    contig = k["form"] == "contig"
    n_active = lay.n_active
    lat = p.mem_latency_cycles
    skip = skip_n(cfg)
    keys, n_full, r_last, has_last = lay.keys, lay.n_full, lay.r_last, lay.has_last
    full = gluon_tile(cfg, gpu, p, np.array([float(bn)]), n_active, resources, fig)
    t_full = float(full["alone"][0])
    t_last = gluon_tile(cfg, gpu, p, lay.r_uniq, n_active, resources, fig)["alone"][lay.r_inv] * has_last
    n_tiles = n_full + has_last
    loop = n_full * t_full + t_last
    if contig:  # a row with no kept block loads block 0 and its consumers mask the whole tile (one full tile)
        empty = (n_tiles == 0).astype(np.float64)
        loop = loop + empty * t_full
        n_tiles = np.maximum(n_tiles, 1.0)
    bw_sm = min(gpu.l2_bytes_per_s * p.l2_bw_eff / (n_active * clk), gpu.l2_port_bytes_per_clk)
    bw_qo = min(bw_sm, gpu.hbm_bytes_per_s * p.hbm_bw_eff / (n_active * clk))
    row_bytes = 2.0 * d * elt
    epilogue = m * d * elt / bw_qo + m * d / (gpu.fp32_flop_per_clk_per_sm / 2.0)
    q_next = lat + m * d * elt / bw_qo
    row_c = row_end_cycles(cfg, p)  # session 15: the row end's path (division / reciprocal + TMA bulk store)
    row_work = loop + row_c + epilogue + q_next
    first_rows = np.full_like(keys, float(bn)) if contig else np.minimum(keys, bn)
    first_extra = CTA_CYCLES + lat + first_rows * row_bytes / bw_qo
    work = row_work + first_extra
    fixed = row_c + epilogue + q_next + 0.0 * keys
    a_mma = min(float(full["mma"][0]), t_full)
    a_exp = min(float(full["sm"][0]), max(t_full - a_mma, 0.0))
    c_mma, c_exp = n_tiles * a_mma, n_tiles * a_exp
    c_mem = np.maximum(loop - c_mma - c_exp, 0.0)
    l2b = (n_full * bn + r_last) * row_bytes
    with np.errstate(divide="ignore"):
        logmiss = np.log(np.clip(1.0 - keys / n_kv, 1e-12, 1.0))
    comps = np.stack([c_mma, c_exp, c_mem, fixed, l2b, logmiss, keys])
    return CtaTables(n=skip, work=work, comps=comps, occupancy=lay.occupancy, tile_flops_full=4.0 * m * bn * d,
                     notes=list(lay.notes), row_work=row_work, first_extra=first_extra, programs_per_sm=1,
                     lpt=lay.lpt, plan_cost=lay.plan_cost)
