"""Per-call assembly: the plan/run API.

:func:`KernelPlan.build` makes the per-count CTA tables once per (launch config, GPU, N, heads); :meth:`KernelPlan.run`
prices any number of calls from their (heads, QB) kept-tile counts: CTAs in the kernel's launch order go through
the event-driven scheduler (``fgsim.scheduler``), and a call takes
``max(makespan, L2 floor, HBM floor) + launch``. HBM traffic counts K/V reuse across the CTAs of a head that run at
once (LRU working-set estimate against the L2's capacity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fgsim.errors import FgsimError
from fgsim.hardware import GPU
from fgsim.launchcfg import KernelConfig
from fgsim.model.cta_cost import CtaTables, TablesLayout, cta_tables, skip_n, tables_layout
from fgsim.model.occupancy import ELT_BYTES, Occupancy
from fgsim.model.params import ModelParams
from fgsim.scheduler import simulate, simulate_calls, simulate_persistent

COMPONENTS = ("mma", "exp", "memory", "tail", "fixed")
COUNT_GRANULARITIES = (1, 16, 64, 128)
#: fraction of the L2 capacity that holds reusable K/V (a free parameter until revision 2, which fitted it to its
#: bound, 0.997, on rows whose working sets never exceed the L2)
L2_REUSE_FRAC = 1.0


class Workload(Protocol):
    """What the model reads from a trace (``fgsim.trace`` object or a synthetic stand-in)."""

    @property
    def n_tokens(self) -> int: ...

    def entries(self) -> list[tuple[int, int]]: ...

    def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray: ...


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


def counts_m_n(cfg: KernelConfig, stored_block_m: int | None) -> tuple[int, int]:
    """The (m, n) at which this kernel reads trace counts; FgsimError if the trace cannot provide them."""
    m = cfg.block_m
    if stored_block_m is not None and (m % stored_block_m or m > 128):
        raise FgsimError(f"trace was stored at block_m={stored_block_m}; it cannot give counts for kernel "
                         f"BLOCK_M={m} (needs a multiple of {stored_block_m} up to 128)")
    n = skip_n(cfg)
    if cfg.kernel != "dense" and n not in COUNT_GRANULARITIES:
        raise FgsimError(f"{cfg.kernel} kernel skips at {n} keys; traces store counts only at n in "
                         f"{COUNT_GRANULARITIES}")
    return m, n


def walks_lpt(cfg: KernelConfig) -> bool:
    """The launch walks the LPT row order: the call's index carries ``FgIndex.order`` (``extra['order'] == 'lpt'``:
    ``fgattn.build_index(..., order=True)``, ``predict --order lpt``) and the entry does not switch it off
    (``extra['lpt']``, fgattn's default true), for the tl kernels and the Gluon form alike (fgattn's rule:
    ``index.order if ... cfg.option("lpt", True)``). An index built without ``order`` (fgattn's default, the
    validation harness's) runs the natural order whatever the entry's ``lpt`` says (revision 9: before it, the tl
    pricing read ``order`` only and the Gluon pricing ``lpt`` only)."""
    return cfg.kernel != "dense" and cfg.extra.get("order") == "lpt" and bool(cfg.extra.get("lpt", True))


def launch_order(c: np.ndarray, cfg: KernelConfig, lpt: bool = False, n_sm: int | None = None) -> np.ndarray:
    """(heads, QB) counts → 1-D CTA launch order.

    fgattn launches grid (QB, B*H) with program_id(0) = query block (fastest), i.e. head-major; when the launch
    walks the LPT order (:func:`walks_lpt`, or ``lpt``: the plan's tables say so) it runs
    ``fgattn.schedule.row_order`` (for ``n_sm`` SMs when given): promoted heavy rows first, then head-major,
    heaviest query block first.
    """
    if cfg.grid_order == "head_fastest":
        return np.ascontiguousarray(c.T).reshape(-1)
    if (lpt or walks_lpt(cfg)) and cfg.kernel != "dense":
        try:
            from fgattn.schedule import row_order  # type: ignore[import-not-found]

            order = row_order(c) if n_sm is None else row_order(c, n_sm=n_sm)
            return np.ascontiguousarray(c).reshape(-1)[order]
        except ImportError:
            return np.ascontiguousarray(-np.sort(-c, axis=1, kind="stable")).reshape(-1)
    return np.ascontiguousarray(c).reshape(-1)


@dataclass
class KernelPlan:
    """Everything about one (launch config, GPU, N, heads) that does not depend on the mask."""

    cfg: KernelConfig
    gpu: GPU
    params: ModelParams
    n_tokens: int
    n_keys: int
    heads: int
    qb: int
    tables: CtaTables
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, cfg: KernelConfig, gpu: GPU, params: ModelParams, n_tokens: int, heads: int, *,
              n_keys: int | None = None, resources: Mapping[str, Any] | None = None,
              counts: np.ndarray | None = None, layout: TablesLayout | None = None) -> KernelPlan:
        """Tables for calls of ``heads`` heads of ``n_tokens`` queries (x ``n_keys`` keys, default square);
        ``counts``: tabulate only these sorted distinct kept-tile counts (:class:`CallsPlan`; None: every count);
        ``layout``: the tables' parameter-free half for these arguments, built earlier
        (:func:`fgsim.model.cta_cost.tables_layout`)."""
        if cfg.kernel == "block" and cfg.block_m % cfg.block_n:
            # fgattn's block kernel tiles each BLOCK_M x BLOCK_M block in BLOCK_N slices (kernels/fgattn/attention.py)
            raise FgsimError(f"{cfg.describe()} does not launch: the block kernel needs BLOCK_N to divide BLOCK_M")
        qb = -(-int(n_tokens) // cfg.block_m)
        tabs = cta_tables(cfg, gpu, params, int(n_tokens), n_ctas=heads * qb, n_keys=n_keys, resources=resources,
                          counts=counts, layout=layout)
        notes = list(tabs.notes)
        if cfg.extra.get("tma") and cfg.kernel != "fg" and not gpu.has_tma:
            notes.append(f"{gpu.name} has no TMA: the config's TMA option is priced as pointer (cp.async) loads")
        return cls(cfg, gpu, params, int(n_tokens), int(n_keys or n_tokens), int(heads), qb, tabs, notes)

    def run(self, counts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
        """Per-call seconds, (calls, 5) breakdown seconds and useful FLOP of calls given as (heads, QB) counts at
        the kernel's (m, n) (ignored for dense: pass one array per call, any content)."""
        idx, inverse = self.launch_rows(counts)
        return self.simulate(idx, inverse, len(counts))

    def launch_rows(self, counts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(distinct calls' counts in launch order (calls, heads x QB) int64, ``inverse``: the distinct call of each
        call, None for dense) of calls given as (heads, QB) counts; calls with equal counts are simulated once."""
        cfg = self.cfg
        n_calls = len(counts)
        if cfg.kernel == "dense":
            return np.zeros((1, self.heads * self.qb), np.int64), None
        rows = []
        seen: dict[tuple[str, bytes], int] = {}
        inverse = np.zeros(n_calls, np.int64)
        by_obj: dict[int, int] = {}  # the same array object again (cached counts): its row, without re-keying
        held = []  # keeps every keyed object alive, so an id is not reused by another object during the loop
        for i, c in enumerate(counts):
            j = by_obj.get(id(c))
            if j is not None:
                inverse[i] = j
                continue
            c0 = c
            held.append(c0)
            c = np.asarray(c)
            if c.ndim != 2 or c.shape != (self.heads, self.qb):
                raise FgsimError(f"counts of shape {c.shape}; expected ({self.heads}, {self.qb}) for "
                                 f"N={self.n_tokens}, M={cfg.block_m}")
            key = (c.dtype.str, c.tobytes())
            if key not in seen:
                seen[key] = len(rows)
                rows.append(launch_order(c, cfg, self.tables.lpt, self.gpu.sm_count if self.tables.lpt else None))
            inverse[i] = by_obj[id(c0)] = seen[key]
        idx = np.stack(rows).astype(np.int64) if rows else np.zeros((0, self.heads * self.qb), np.int64)
        return idx, inverse

    def simulate(self, idx: np.ndarray, inverse: np.ndarray | None, n_calls: int
                 ) -> tuple[np.ndarray, np.ndarray, float]:
        """:meth:`run` from :meth:`launch_rows`' result: ``idx`` indexes this plan's tables (the count itself, or
        its position in the plan's count domain: :class:`CallsPlan`)."""
        cfg, occ = self.cfg, self.tables.occupancy
        tabs = self.tables
        if tabs.row_work is not None and tabs.first_extra is not None:
            # persistent programs: the breakdown's fixed part is each row's own cost plus each program's start
            comps = tabs.comps.copy()
            comps[3] = tabs.row_work - comps[0:3].sum(axis=0)
            n_prog = tabs.programs_per_sm * self.gpu.sm_count
            ms, tot, csum = simulate_persistent(idx, tabs.row_work, tabs.first_extra, comps, self.gpu.sm_count,
                                                occ.slots, occ.gain, n_prog, np.array(occ.rates),
                                                plan_cost=tabs.plan_cost)
            csum[:, 3] += tot - csum[:, :4].sum(axis=1)  # the programs' starts and first prologues
        else:
            ms, _, csum = simulate_calls(idx, tabs.work, tabs.comps, self.gpu.sm_count, occ.slots, occ.gain,
                                         np.array(occ.rates))
        if inverse is not None:
            ms, csum = ms[inverse], csum[inverse]
        pc, bd = self._finish(ms, csum)
        if cfg.kernel == "dense":
            pc = np.repeat(pc, n_calls)
            bd = np.repeat(bd, n_calls, axis=0)
            flops = 4.0 * self.heads * float(self.n_tokens) * self.n_keys * cfg.head_dim * n_calls
        else:
            flops = 4.0 * cfg.block_m * cfg.head_dim * float(csum[:, 6].sum())
        return pc, bd, flops

    def _finish(self, ms: np.ndarray, csum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-call seconds and (calls, 5) breakdown seconds from makespans (cycles) and component sums."""
        gpu, p, cfg = self.gpu, self.params, self.cfg
        clk = gpu.clock_hz
        occ = self.tables.occupancy
        elt = ELT_BYTES.get(cfg.dtype, 2)
        t_sched = ms / clk
        per_sm = gpu.sm_count * occ.gain
        mma, ex, mem, fixed = (csum[:, i] / per_sm / clk for i in range(4))
        tail = np.maximum(t_sched - (mma + ex + mem + fixed), 0.0)
        heads = self.heads
        qo = 2.0 * heads * self.n_tokens * cfg.head_dim * elt
        kv_l2 = csum[:, 4]
        t_l2 = (kv_l2 + qo) / (gpu.l2_bytes_per_s * p.l2_bw_eff)
        uniq = 1.0 - np.exp(csum[:, 5] / max(heads, 1))  # fraction of a head's keys touched at least once
        kv_head = self.n_keys * 2.0 * cfg.head_dim * elt
        compulsory = heads * uniq * kv_head
        conc = min(heads, math.ceil(gpu.sm_count * occ.slots / max(self.qb, 1)) + 1)
        ws = conc * uniq * kv_head
        l2_eff = gpu.l2_bytes * L2_REUSE_FRAC
        miss = np.where(ws > l2_eff, 1.0 - l2_eff / np.maximum(ws, 1.0), 0.0)
        hbm = compulsory + np.maximum(kv_l2 - compulsory, 0.0) * miss + qo
        t_hbm = hbm / (gpu.hbm_bytes_per_s * p.hbm_bw_eff)
        floor_excess = np.maximum(np.maximum(t_l2, t_hbm) - t_sched, 0.0)
        launch = p.launch_us * 1e-6
        per_call = t_sched + floor_excess + launch
        bd = np.stack([mma, ex, mem + floor_excess, tail, fixed + launch], axis=1)
        return per_call, bd


@dataclass
class CallsPlan:
    """Fixed calls of one (launch config, GPU, N, heads) priced under many parameter sets (a calibration fit):
    the plan/run split with the calls fixed. :meth:`build` works out once what does not depend on the parameters
    (the calls' launch orders, the distinct kept-tile counts they use); :meth:`run` prices them under ``params``
    with exactly ``KernelPlan.build(cfg, gpu, params, ...).run(counts)``'s result (each table entry is computed as
    in the full table, only for the counts the calls use)."""

    cfg: KernelConfig
    gpu: GPU
    n_tokens: int
    heads: int
    n_keys: int | None
    resources: Mapping[str, Any] | None
    domain: np.ndarray | None  # the sorted distinct counts the calls use (None: dense, one table entry)
    idx: np.ndarray  # the distinct calls' launch orders as positions in ``domain``
    inverse: np.ndarray | None
    n_calls: int
    layout: TablesLayout  # the tables' parameter-free half over ``domain``

    @classmethod
    def build(cls, cfg: KernelConfig, gpu: GPU, n_tokens: int, heads: int, counts: Sequence[np.ndarray], *,
              n_keys: int | None = None, resources: Mapping[str, Any] | None = None,
              params: ModelParams | None = None) -> CallsPlan:
        """The calls' launch orders and count domain (``counts``: (heads, QB) per call, as for
        :meth:`KernelPlan.run`; ``params``: any parameters, used only to read the launch order's inputs)."""
        plan = KernelPlan.build(cfg, gpu, params or ModelParams(), n_tokens, heads, n_keys=n_keys,
                                resources=resources)
        idx, inverse = plan.launch_rows(counts)
        domain = None
        if cfg.kernel != "dense":
            if idx.size and (idx.min() < 0 or idx.max() >= plan.tables.work.shape[0]):
                raise FgsimError(f"tile counts out of range 0..{plan.tables.work.shape[0] - 1} for this trace "
                                 "and kernel")
            domain, pos = np.unique(idx, return_inverse=True)
            idx = pos.reshape(idx.shape).astype(np.int64)
        layout = tables_layout(cfg, gpu, int(n_tokens), n_ctas=heads * plan.qb, n_keys=n_keys, resources=resources,
                               counts=domain)
        return cls(cfg, gpu, int(n_tokens), int(heads), n_keys, resources, domain, idx, inverse, len(counts), layout)

    def run(self, params: ModelParams) -> tuple[np.ndarray, np.ndarray, float]:
        """Per-call seconds, (calls, 5) breakdown seconds and useful FLOP of the calls under ``params``."""
        plan = KernelPlan.build(self.cfg, self.gpu, params, self.n_tokens, self.heads, n_keys=self.n_keys,
                                resources=self.resources, counts=self.domain, layout=self.layout)
        return plan.simulate(self.idx, self.inverse, self.n_calls)


def predict_workload(wl: Workload, cfg: KernelConfig, gpu: GPU, params: ModelParams, *,
                     params_source: str = "", entries: Sequence[tuple[int, int]] | None = None,
                     num_heads: int | None = None, stored_block_m: int | None = None,
                     chunk: int = 64, progress: Callable[[int], Any] | None = None,
                     resources: Mapping[str, Any] | None = None) -> KernelPrediction:
    """Predict ``cfg`` for every (pass, layer) entry of ``wl`` (or ``entries``).

    ``num_heads``: if larger than the heads in the counts, the captured heads are repeated cyclically (a trace
    that captured a subset of heads); ``progress(k)`` is called after each chunk of k calls; ``resources``: the
    calibration's compiled registers / shared memory per launch configuration.
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
    captured = c0.shape[0] if c0.ndim == 2 else 1
    heads = max(int(num_heads or 0), captured)
    plan = KernelPlan.build(cfg, gpu, params, n_tok, heads, resources=resources)
    notes = list(plan.notes)
    per_call = np.zeros(len(ents))
    bds = np.zeros((len(ents), len(COMPONENTS)))
    flops = 0.0
    if cfg.kernel == "dense":
        pc, bd, flops = plan.run([c0] * len(ents))
        per_call[:], bds[:] = pc, bd
        if progress:
            progress(len(ents))
    else:
        for s in range(0, len(ents), chunk):
            block = ents[s:s + chunk]
            cs = []
            for (pp, ll) in block:
                c = np.asarray(wl.counts(pp, ll, m=m, n=n))
                if c.ndim != 2 or c.shape[1] != qb:
                    raise FgsimError(f"trace counts for pass {pp}, layer {ll} have shape {c.shape}; expected "
                                     f"(heads, {qb}) for N={n_tok}, M={m}")
                if c.shape[0] < heads:
                    got = c.shape[0]
                    c = np.tile(c, (-(-heads // got), 1))[:heads]
                    if not any("captured heads" in x for x in notes):
                        notes.append(f"trace holds counts for {got} captured heads; repeated to {heads}")
                elif c.shape[0] != heads:
                    raise FgsimError("trace entries have different numbers of heads; predict them separately")
                cs.append(c)
            pc, bd, fl = plan.run(cs)
            per_call[s:s + len(block)] = pc
            bds[s:s + len(block)] = bd
            flops += fl
            if progress:
                progress(len(block))
    breakdown = {k: float(bds[:, i].sum()) for i, k in enumerate(COMPONENTS)}
    return KernelPrediction(kernel=cfg.kernel, gpu=gpu.name, config=cfg, params_source=params_source,
                            per_call_s=per_call, entries=ents, breakdown_s=breakdown, occupancy=plan.tables.occupancy,
                            flops=flops, notes=notes)


def predict_counts(counts: np.ndarray, n_tokens: int, cfg: KernelConfig, gpu: GPU, params: ModelParams, *,
                   n_keys: int | None = None, resources: Mapping[str, Any] | None = None
                   ) -> tuple[float, dict[str, float]]:
    """Predict one call from (heads, QB) counts at the kernel's (m, n) (ignored for dense): (seconds, breakdown)."""
    c = np.asarray(counts)
    heads = c.shape[0] if c.ndim == 2 else 1
    plan = KernelPlan.build(cfg, gpu, params, n_tokens, heads, n_keys=n_keys, resources=resources)
    if cfg.kernel == "dense":
        c = np.zeros((heads, plan.qb), np.int64)
    pc, bd, _ = plan.run([c])
    return float(pc[0]), {k: float(bd[0, i]) for i, k in enumerate(COMPONENTS)}


def timeline(counts: np.ndarray, n_tokens: int, cfg: KernelConfig, gpu: GPU, params: ModelParams
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-CTA (start_s, end_s, sm) of one call in launch order (persistent launches: per program), for plots."""
    tabs = cta_tables(cfg, gpu, params, n_tokens, n_ctas=int(np.asarray(counts).size))
    c = np.zeros_like(np.asarray(counts)) if cfg.kernel == "dense" else np.asarray(counts)
    order = launch_order(c, cfg, tabs.lpt, gpu.sm_count if tabs.lpt else None)
    work = tabs.work[order]
    if tabs.row_work is not None and tabs.first_extra is not None:  # persistent: one bar per program
        g = max(1, min(order.size, tabs.programs_per_sm * gpu.sm_count))
        if tabs.plan_cost is None:
            work = np.bincount(np.arange(order.size) % g, weights=tabs.row_work[order], minlength=g)
            work = work + tabs.first_extra[order[:g]]
        else:  # list-scheduled (Gluon ws2 schedule 'list')
            from fgsim.scheduler import list_programs

            prog = list_programs(np.ascontiguousarray(order, np.int64), np.asarray(tabs.plan_cost, np.float64), g)
            work = np.bincount(prog, weights=tabs.row_work[order], minlength=g)
            first = np.unique(prog, return_index=True)[1]
            work[prog[first]] += tabs.first_extra[order[first]]
    sch = simulate(work, gpu.sm_count, tabs.occupancy.slots, tabs.occupancy.gain, np.array(tabs.occupancy.rates))
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
