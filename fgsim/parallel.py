"""Context parallelism (P GPUs): which rank does which attention work, what the collectives cost, per-rank time.

Two schemes, as diffusers' ``ContextParallelConfig`` runs them (``diffusers.models.attention_dispatch``,
``TemplatedUlyssesAttention`` / ``TemplatedRingAttention``, diffusers 0.35+):

* **Ulysses** (degree P): the sequence is split in P equal shards; q, k, v are each exchanged by one all-to-all
  (sequence shards → head groups, rank r gets the contiguous heads ``[r·H/P, (r+1)·H/P)`` over the whole
  sequence), every rank runs attention over its heads, one all-to-all brings the output back. Each all-to-all is
  framed by a permute-and-copy of the local tensor. Nothing overlaps: a rank waits in the output all-to-all for the
  slowest rank, so the pass costs ``max_r attention_r`` plus the communication.
* **Ring** (degree P): k and v are all-gathered once (one all-gather each of ``S/P·H·D`` elements per rank),
  then rank r attends its own queries to each of P key chunks in turn (own chunk first; chunks are the shards
  with boundaries moved down to the kernel's key tile, :func:`key_chunks`) and merges the partial outputs with
  their log-sum-exps (one fused kernel per merge, ``fgattn.merge_attention_``). Gathering before computing, as
  diffusers does, nothing overlaps.

Sparse attention makes ranks unequal: under Ulysses rank r's time follows the kept slices of its heads, under ring
the kept slices of its query rows. :func:`predict_cp` turns a trace (or synthetic counts) into per-rank kernel time
(the single-GPU cost model on the rank's share), communication time (:class:`Link`, from the GPU description's
``interconnect`` block, calibrated by NCCL microbenchmarks) and the imbalance; :func:`balanced_heads` is the what-if
of a head-to-rank assignment that balances kept slices.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fgsim.errors import FgsimError

SCHEMES = ("ulysses", "ring")


# --------------------------------------------------------------------------------------------------------------------
# Plans and partitioning


@dataclass(frozen=True)
class CpPlan:
    """A context-parallel layout: ``scheme`` (ulysses | ring) over ``degree`` GPUs."""

    scheme: str
    degree: int

    @classmethod
    def parse(cls, text: str) -> CpPlan:
        """``"ulysses:2"`` | ``"ring:4"``; raises :class:`FgsimError` naming the bad text."""
        t = text.strip().lower()
        name, _, deg = t.partition(":")
        if name not in SCHEMES or not deg:
            raise FgsimError(f"bad --cp {text!r}: use ulysses:P or ring:P (P = GPUs, e.g. ulysses:2)")
        try:
            p = int(deg)
        except ValueError:
            raise FgsimError(f"bad --cp {text!r}: the degree P must be an integer ≥ 1") from None
        if p < 1:
            raise FgsimError(f"bad --cp {text!r}: the degree P must be an integer ≥ 1")
        return cls(name, p)

    def describe(self) -> str:
        return f"{self.scheme}:{self.degree}"


def ulysses_heads(num_heads: int, degree: int) -> list[range]:
    """Heads of each rank under Ulysses: contiguous groups of ``H/P`` (diffusers' all-to-all layout)."""
    if degree < 1 or num_heads % degree:
        raise FgsimError(f"Ulysses degree {degree} must divide the {num_heads} attention heads")
    g = num_heads // degree
    return [range(r * g, (r + 1) * g) for r in range(degree)]


def sequence_shards(n_tokens: int, degree: int) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` of each rank's sequence shard (equal shards; diffusers requires P | S)."""
    if degree < 1 or n_tokens % degree:
        raise FgsimError(f"context-parallel degree {degree} must divide the sequence length {n_tokens} "
                         "(diffusers' equipartition sharder)")
    s = n_tokens // degree
    return [(r * s, (r + 1) * s) for r in range(degree)]


def ulysses_counts(counts: np.ndarray, degree: int, assignment: Sequence[Sequence[int]] | None = None
                   ) -> list[np.ndarray]:
    """Per-rank ``(H/P, QB)`` counts from a call's ``(H, QB)`` counts (``assignment``: heads per rank, default
    contiguous groups)."""
    c = np.asarray(counts)
    groups = assignment if assignment is not None else ulysses_heads(c.shape[0], degree)
    return [c[list(g)] for g in groups]


def block_rows(start: int, end: int, block_m: int) -> tuple[int, int]:
    """Query blocks of size ``block_m`` (global numbering) that rows ``[start, end)`` touch: ``[b0, b1)``."""
    return start // block_m, -(-end // block_m)


def coarsen_queries(mask: np.ndarray, stored_m: int, m: int, n_queries: int) -> np.ndarray:
    """A slice mask ``(H, QB_stored, N)`` at query block ``stored_m`` → blocks of ``m`` (a multiple): OR of rows."""
    if m == stored_m:
        return mask
    if m % stored_m:
        raise FgsimError(f"a mask stored at block_m={stored_m} cannot give query blocks of {m}")
    f = m // stored_m
    h, qb, n = mask.shape
    qb_m = -(-n_queries // m)
    pad = qb_m * f - qb
    if pad:
        mask = np.concatenate([mask, np.zeros((h, pad, n), dtype=bool)], axis=1)
    return mask.reshape(h, qb_m, f, n).any(axis=2)


def tile_counts(mask: np.ndarray, n: int) -> np.ndarray:
    """Kept tiles of ``n`` keys (aligned to the mask's first key) per row of a bool ``(..., K)`` mask."""
    if n == 1:
        return mask.sum(axis=-1, dtype=np.int64)
    k = mask.shape[-1]
    pad = -(-k // n) * n - k
    if pad:
        mask = np.concatenate([mask, np.zeros((*mask.shape[:-1], pad), dtype=bool)], axis=-1)
    return mask.reshape(*mask.shape[:-1], -1, n).any(axis=-1).sum(axis=-1, dtype=np.int64)


def key_chunks(n_tokens: int, degree: int, align: int = 1) -> list[tuple[int, int]]:
    """Key ranges ``[start, end)`` the ring's P partial attentions cover: the sequence shards with every inner
    boundary moved down to a multiple of ``align`` (the kernel's key tile: M for block-sparse, so no M×M block
    is cut; 1 = the shards themselves). After the all-gather every rank holds all keys, so any partition merges
    exactly; a chunk may end in a partial block (the kernel masks keys past its end). Chunks can be empty when
    ``align`` exceeds the shard length."""
    shards = sequence_shards(n_tokens, degree)
    a = max(int(align), 1)
    cuts = [0] + [s // a * a for s, _ in shards[1:]] + [n_tokens]
    return [(cuts[j], max(cuts[j], cuts[j + 1])) for j in range(degree)]


def ring_counts(mask: np.ndarray, block_m: int, degree: int, n: int = 1) -> list[list[np.ndarray]]:
    """Ring attention work per rank and key chunk from one call's slice mask ``(H, QB, N)`` at query block
    ``block_m``: ``out[r][j]`` is ``(H, QB_r)`` kept tiles of ``n`` keys of rank r's query blocks inside key
    chunk j (:func:`key_chunks` aligned to ``n``, tiles aligned to the chunk start).

    Rank r's query blocks are the global blocks its rows touch; a block split between two ranks is counted on
    both (each runs the whole block, its rows padded in front; :mod:`fgsim.integrations.context_parallel`).
    """
    h, qb, n_tok = mask.shape
    shards = sequence_shards(n_tok, degree)
    chunks = key_chunks(n_tok, degree, n)
    out: list[list[np.ndarray]] = []
    for qs, qe in shards:
        b0, b1 = block_rows(qs, qe, block_m)
        rows = mask[:, b0:b1]
        out.append([tile_counts(rows[:, :, ks:ke], n) for ks, ke in chunks])
    return out


def balanced_heads(weights: Sequence[float], degree: int) -> list[list[int]]:
    """What-if: assign heads to ranks (``H/P`` each, as the all-to-all needs) balancing the summed ``weights``.

    Greedy longest-processing-time (heads by decreasing weight, each to the least-loaded rank with room), then
    pairwise swaps between the most and a less loaded rank while they lower the maximum load. Returns sorted head
    lists per rank.
    """
    w = np.asarray(weights, dtype=float)
    if degree < 1 or w.size % degree:
        raise FgsimError(f"degree {degree} must divide the {w.size} heads")
    cap = w.size // degree
    load = np.zeros(degree)
    groups: list[list[int]] = [[] for _ in range(degree)]
    for hd in np.argsort(-w, kind="stable"):
        open_ = [r for r in range(degree) if len(groups[r]) < cap]
        r = min(open_, key=lambda x: (load[x], x))
        groups[r].append(int(hd))
        load[r] += w[hd]
    for _ in range(4 * w.size * w.size):  # swap refinement (each accepted swap lowers the sorted load vector)
        hi = int(np.argmax(load))
        best = None
        for r in range(degree):
            if r == hi:
                continue
            for a in groups[hi]:
                for b in groups[r]:
                    d = w[a] - w[b]
                    if d > 0 and max(load[hi] - d, load[r] + d) < load[hi] - 1e-12 * max(1.0, load[hi]):
                        gain = load[hi] - max(load[hi] - d, load[r] + d)
                        if best is None or gain > best[0]:
                            best = (gain, r, a, b, d)
        if best is None:
            break
        _, r, a, b, d = best
        groups[hi][groups[hi].index(a)] = b
        groups[r][groups[r].index(b)] = a
        load[hi] -= d
        load[r] += d
    return [sorted(g) for g in groups]


def equal_partitions(num_heads: int, degree: int, limit: int = 36) -> list[list[list[int]]] | None:
    """Every split of the heads into ``degree`` groups of ``H/P`` (groups unordered), or None if more than
    ``limit`` (then :func:`balanced_heads` picks one)."""
    from itertools import combinations

    if degree < 1 or num_heads % degree:
        return None
    g = num_heads // degree
    out: list[list[list[int]]] = []

    def rec(left: list[int], acc: list[list[int]]) -> bool:
        if not left:
            out.append([list(x) for x in acc])
            return len(out) <= limit
        first, rest = left[0], left[1:]
        for comb in combinations(rest, g - 1):
            grp = [first, *comb]
            if not rec([x for x in rest if x not in comb], [*acc, grp]):
                return False
        return True

    return out if rec(list(range(num_heads)), []) else None


def imbalance(times: Sequence[float]) -> float:
    """max / mean of per-rank times (1.0 = perfectly balanced)."""
    t = np.asarray(times, dtype=float)
    return float(t.max() / t.mean()) if t.size and t.mean() > 0 else 1.0


# --------------------------------------------------------------------------------------------------------------------
# Communication model


@dataclass(frozen=True)
class Link:
    """Collective-communication constants of one GPU's interconnect (NCCL conventions).

    ``alltoall_busbw_gbs`` / ``allgather_busbw_gbs``: NCCL bus bandwidth (GB/s): a collective over a per-rank
    buffer of ``B`` bytes (all-to-all: the input; all-gather: the gathered output) moves ``B·(P−1)/P`` bytes per
    rank. ``p2p_bw_gbs``: one send/recv pair. ``latency_us``: fixed cost per collective. ``copy_gbs``: device
    copy rate (bytes read + written per second) for the layout copies around the collectives.
    """

    alltoall_busbw_gbs: float
    allgather_busbw_gbs: float
    p2p_bw_gbs: float
    latency_us: float
    copy_gbs: float
    link: str = ""
    source: str = ""
    #: rate of the Ulysses permute copies (bytes read + written per second; 0 = ``copy_gbs``)
    permute_copy_gbs: float = 0.0
    #: measured times ``{op: ((bytes, seconds), ...)}`` at ``table_degree`` ranks (bytes as in :meth:`alltoall_s`
    #: / :meth:`allgather_s` / :meth:`permute_s`); inside their size range they replace the line / rate
    tables: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    table_degree: int = 0

    def _table(self, op: str, nbytes: float, degree: int) -> float | None:
        pts = self.tables.get(op)
        if not pts or degree != self.table_degree or not pts[0][0] <= nbytes <= pts[-1][0]:
            return None
        xs = np.array([p[0] for p in pts])
        ts = np.array([p[1] for p in pts])
        return float(np.interp(nbytes, xs, ts))

    def alltoall_s(self, nbytes: float, degree: int) -> float:
        """Seconds of an all-to-all of a per-rank buffer of ``nbytes`` among ``degree`` ranks."""
        if degree <= 1:
            return 0.0
        t = self._table("alltoall", nbytes, degree)
        if t is not None:
            return t
        return self.latency_us * 1e-6 + nbytes * (degree - 1) / degree / (self.alltoall_busbw_gbs * 1e9)

    def allgather_s(self, out_bytes: float, degree: int) -> float:
        """Seconds of an all-gather producing ``out_bytes`` on every rank."""
        if degree <= 1:
            return 0.0
        t = self._table("allgather", out_bytes, degree)
        if t is not None:
            return t
        return self.latency_us * 1e-6 + out_bytes * (degree - 1) / degree / (self.allgather_busbw_gbs * 1e9)

    def permute_s(self, nbytes: float, degree: int = 0) -> float:
        """Seconds of a permute-and-copy of a ``nbytes`` tensor (Ulysses' layout changes): the measured table
        (``permute``, per copy) inside its range at ``table_degree`` GPUs, else bytes read + written at
        ``permute_copy_gbs``."""
        t = self._table("permute", nbytes, degree) if degree else None
        if t is not None:
            return t
        return 2.0 * nbytes / ((self.permute_copy_gbs or self.copy_gbs) * 1e9)

    def p2p_s(self, nbytes: float) -> float:
        """Seconds of one send/recv of ``nbytes``."""
        return self.latency_us * 1e-6 + nbytes / (self.p2p_bw_gbs * 1e9)

    def copy_s(self, nbytes: float) -> float:
        """Seconds of a device copy of a ``nbytes`` tensor (read + write)."""
        return 2.0 * nbytes / (self.copy_gbs * 1e9)


_LINK_FIELDS = ("alltoall_busbw_gbs", "allgather_busbw_gbs", "p2p_bw_gbs", "latency_us", "copy_gbs")


def link_from_dict(d: dict[str, Any], where: str) -> Link:
    """A :class:`Link` from an ``interconnect`` JSON object (FgsimError naming ``where`` and the field)."""
    vals = {}
    for k in _LINK_FIELDS:
        v = d.get(k)
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise FgsimError(f"{where}: interconnect field '{k}' must be a positive number, got {v!r}")
        vals[k] = float(v)
    perm = d.get("permute_copy_gbs", 0.0)
    if isinstance(perm, bool) or not isinstance(perm, int | float) or perm < 0:
        raise FgsimError(f"{where}: interconnect field 'permute_copy_gbs' must be a number >= 0, got {perm!r}")
    tables: dict[str, tuple[tuple[float, float], ...]] = {}
    for op, pts in (d.get("tables") or {}).items():
        try:
            tables[str(op)] = tuple(sorted((float(b), float(t)) for b, t in pts))
        except (TypeError, ValueError):
            raise FgsimError(f"{where}: interconnect table '{op}' must be a list of [bytes, seconds]") from None
    return Link(**vals, link=str(d.get("link", "")), source=str(d.get("source", "")), permute_copy_gbs=float(perm),
                tables=tables, table_degree=int(d.get("table_degree", 0) or 0))


def link_for(gpu: Any) -> Link:
    """The interconnect of ``gpu`` (its description file's ``interconnect`` block); FgsimError if it has none."""
    path = getattr(gpu, "path", "")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError):
        data = {}
    ic = data.get("interconnect")
    if not isinstance(ic, dict):
        raise FgsimError(f"GPU {getattr(gpu, 'name', gpu)} has no 'interconnect' block in {path or 'its description'}"
                         " (needed for context-parallel predictions)")
    return link_from_dict(ic, path)


@dataclass(frozen=True)
class CommCost:
    """Communication and layout-copy seconds of one context-parallel attention call (the same on every rank)."""

    collectives_s: float
    copies_s: float
    merge_s: float
    bytes_per_rank: float  # bytes each rank sends
    detail: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.collectives_s + self.copies_s + self.merge_s


def ring_merge_bytes(rows: int, head_dim: int, degree: int, elt: int = 2) -> float:
    """Device-memory bytes of the ring's P − 1 fused LSE merges (``fgattn.merge_attention_``) over ``rows``
    query rows (B·S/P·H): each reads its two partials and writes the result (a float32 accumulator between
    merges, the input dtype last), plus 12 bytes of float32 LSE per row."""
    if degree <= 1:
        return 0.0
    tot = 0.0
    acc = elt  # the first merge reads the first partial in the kernel's dtype
    for i in range(degree - 1):
        out = elt if i == degree - 2 else 4
        tot += rows * (head_dim * (acc + elt + out) + 12)
        acc = out
    return tot


def comm_cost(plan: CpPlan, n_tokens: int, heads: int, head_dim: int, link: Link, *, batch: int = 1,
              elt: int = 2, stream_gbs: float | None = None) -> CommCost:
    """The collectives and copies of one context-parallel attention call (no overlap; the same on every rank).

    Ulysses (diffusers' ``TemplatedUlyssesAttention``): 4 all-to-alls (q, k, v in, output back) of the local
    ``B·S/P·H·D`` tensor, each framed by two permute copies (8 copies). Ring
    (:func:`fgsim.integrations.context_parallel.ring_attention`): one all-gather each of k and v (``B·S·H·D``
    gathered each), and ``merge_s``: the P − 1 fused LSE merges, their bytes (:func:`ring_merge_bytes`) at the
    GPU's measured streaming bandwidth ``stream_gbs`` (:func:`stream_gbs`: the cost-model calibration's measured
    HBM rate; the link's ``copy_gbs`` if not given), bytes read + written per second.
    """
    p = plan.degree
    local = batch * (n_tokens // p) * heads * head_dim * elt
    if p <= 1:
        return CommCost(0.0, 0.0, 0.0, 0.0)
    if plan.scheme == "ulysses":
        a2a = link.alltoall_s(local, p)
        cp = link.permute_s(local, p)
        return CommCost(4 * a2a, 8 * cp, 0.0, 4 * local * (p - 1) / p,
                        {"alltoall_s": a2a, "alltoalls": 4, "copy_s": cp, "copies": 8})
    gathered = local * p
    ag = link.allgather_s(gathered, p)
    rows = batch * (n_tokens // p) * heads
    merge = ring_merge_bytes(rows, head_dim, p, elt) / ((stream_gbs or link.copy_gbs) * 1e9)
    return CommCost(2 * ag, 0.0, merge, 2 * gathered * (p - 1) / p,
                    {"allgather_s": ag, "allgathers": 2, "merge_s": merge})


def ring_pad_s(n_tokens: int, degree: int, heads: int, head_dim: int, block_m: int, rank: int, link: Link, *,
               batch: int = 1, elt: int = 2) -> float:
    """Seconds of the query padding of a ring rank whose first row is not on a query-block boundary (masked
    kernels): its queries copied once behind a zeroed pad of ``rank·S/P mod M`` rows."""
    sl = n_tokens // degree
    pad = (rank * sl) % block_m
    if pad == 0:
        return 0.0
    return link.copy_s(batch * sl * heads * head_dim * elt) + batch * pad * heads * head_dim * elt / (
        link.copy_gbs * 1e9)


def stream_gbs(gpu: Any, params: Any) -> float:
    """The GPU's measured streaming bandwidth (GB/s, bytes read + written): its HBM bandwidth times the
    calibrated achieved fraction ``hbm_bw_eff`` (measured by ``fgsim calibrate``'s stream microbenchmarks)."""
    return float(gpu.hbm_bandwidth_gbs) * float(getattr(params, "hbm_bw_eff", 1.0))


def ring_rank_s(kernel: str, n_tokens: int, degree: int, rank: int, heads: int, block_m: int, n: int,
                counts: Any, cfg: Any, gpu: Any, params: Any, link: Link, *, head_dim: int = 128, batch: int = 1,
                elt: int = 2, resources: Any = None) -> float:
    """One ring rank's attention seconds for one call: a kernel call per key chunk (:func:`key_chunks` aligned
    to ``n``) of the rank's query blocks (padded rows included) against the chunk's keys — ``counts(j)`` gives
    its ``(H, QB_r)`` kept tiles (ignored for dense) — plus the query padding and the fused LSE merges. The chunk
    calls return their log-sum-exp, so an ``impl: gluon`` entry is priced as its tl fallback (what fgattn runs)."""
    from fgsim.costmodel import predict_counts
    from fgsim.model.gluon import tl_config

    cfg = tl_config(cfg)
    sl = n_tokens // degree
    qs, qe = rank * sl, (rank + 1) * sl
    masked = kernel != "dense"
    q0 = qs // block_m * block_m if masked else qs
    qb = -(-(qe - q0) // block_m)
    t = 0.0
    for j, (ks, ke) in enumerate(key_chunks(n_tokens, degree, n if masked else 1)):
        if ke <= ks:
            continue
        c = np.zeros((heads, qb), np.int32) if not masked else np.asarray(counts(j)).astype(np.int32)
        t += predict_counts(c, qe - q0, cfg, gpu, params, n_keys=ke - ks, resources=resources)[0]
    t += comm_cost(CpPlan("ring", degree), n_tokens, heads, head_dim, link, batch=batch, elt=elt,
                   stream_gbs=stream_gbs(gpu, params)).merge_s
    if masked:
        t += ring_pad_s(n_tokens, degree, heads, head_dim, block_m, rank, link, batch=batch, elt=elt)
    return t


# --------------------------------------------------------------------------------------------------------------------
# Per-rank prediction


class _SubWorkload:
    """A workload whose counts are a function of (pass, layer, m, n): a rank's share of the parent trace."""

    def __init__(self, n_tokens: int, entries: list[tuple[int, int]], fn: Any) -> None:
        self.n_tokens = n_tokens
        self._entries = entries
        self._fn = fn

    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        return self._fn(p, layer, m, n)


@dataclass
class CpPrediction:
    """Per-rank predicted seconds per captured call (arrays over entries) for one kernel."""

    plan: CpPlan
    kernel: str
    entries: list[tuple[int, int]]
    attention_s: np.ndarray  # (P, calls) kernel time of each rank (ring: summed over the P key shards)
    comm: CommCost
    weights: np.ndarray  # full-run weight of each captured call
    single_gpu_s: np.ndarray  # (calls,) the whole call on one GPU
    assignment: list[list[int]] | None = None

    @property
    def pass_s(self) -> np.ndarray:
        """(calls,) seconds of the call on P GPUs: slowest rank plus communication (nothing overlaps)."""
        return self.attention_s.max(axis=0) + self.comm.total_s

    def rank_total_s(self) -> np.ndarray:
        """(P,) full-run attention seconds of each rank."""
        return (self.attention_s * self.weights).sum(axis=1)

    def summary(self) -> dict[str, Any]:
        w = self.weights
        ranks = self.rank_total_s()
        full_cp = float((self.pass_s * w).sum())
        one = float((self.single_gpu_s * w).sum())
        per_call_imb = self.attention_s.max(axis=0) / np.maximum(self.attention_s.mean(axis=0), 1e-30)
        return {
            "plan": self.plan.describe(), "kernel": self.kernel,
            "rank_attention_s": [float(x) for x in ranks],
            "imbalance_run": imbalance(ranks),
            "imbalance_per_call_mean": float((per_call_imb * w).sum() / max(w.sum(), 1e-30)),
            "comm_per_call_s": self.comm.total_s,
            "comm_run_s": self.comm.total_s * float(w.sum()),
            "full_run_s": full_cp, "single_gpu_s": one,
            "speedup_vs_1gpu": one / max(full_cp, 1e-30),
            "parallel_efficiency": one / max(full_cp, 1e-30) / self.plan.degree,
            "assignment": self.assignment,
        }


def predict_cp(wl: Any, info: Any, gpu: Any, kernel: str, plan: CpPlan, *, link: Link | None = None,
               block_m: int | None = None, gran_n: int = 1, dtype: str = "bf16", params: Any = None,
               calibration: str | None = None, assignment: Sequence[Sequence[int]] | None = None,
               single: Any = None) -> CpPrediction:
    """Predict one kernel under ``plan`` for every captured call of ``wl`` (a trace or synthetic workload).

    Ulysses uses the stored per-head counts; ring needs the slice masks (``wl.mask``) to split each query row's
    kept keys among the key shards. ``single``: an existing single-GPU :class:`KernelPrediction` to reuse.
    """
    from fgsim.calibration import resolve_params
    from fgsim.costmodel import counts_m_n, predict_workload
    from fgsim.runpredict import _config, full_run_weights

    if params is None:
        params, _ = resolve_params(gpu, calibration)
    link = link or link_for(gpu)
    m = block_m or (128 if info.block_m <= 128 and 128 % info.block_m == 0 else info.block_m)
    cfg = _config(kernel, gpu, info.head_dim, m, gran_n, dtype, None)
    ents = list(wl.entries())
    weights = full_run_weights(info, ents)
    heads = info.num_heads
    n_tok = int(wl.n_tokens)
    p = plan.degree
    km, kn = counts_m_n(cfg, info.block_m)
    if single is None:
        single = predict_workload(wl, cfg, gpu, params, entries=ents, num_heads=heads, stored_block_m=info.block_m)
    att = np.zeros((p, len(ents)))
    if plan.scheme == "ulysses":
        groups = [list(g) for g in (assignment or ulysses_heads(heads, p))]

        def full_counts(pp: int, ll: int, mm: int | None, nn: int) -> np.ndarray:
            c = np.asarray(wl.counts(pp, ll, m=mm, n=nn))
            if c.shape[0] < heads:
                c = np.tile(c, (-(-heads // c.shape[0]), 1))[:heads]
            return c

        for r, g in enumerate(groups):
            sub = _SubWorkload(n_tok, ents, lambda pp, ll, mm, nn, g=g: full_counts(pp, ll, mm, nn)[g])
            pr = predict_workload(sub, cfg, gpu, params, entries=ents, num_heads=len(g),
                                  stored_block_m=info.block_m)
            att[r] = pr.per_call_s
    else:
        if not hasattr(wl, "mask"):
            raise FgsimError("ring predictions need the slice masks of a trace (synthetic counts have none)")
        from fgsim.costmodel import KernelPlan
        from fgsim.model.gluon import tl_config

        ring_cfg = tl_config(cfg)  # chunk calls return their LSE: fgattn runs a Gluon entry's tl fallback
        masked = kernel != "dense"
        per_entry: dict[tuple[int, int], list[list[np.ndarray]]] = {}
        if masked:
            for pp, ll in ents:
                mask = coarsen_queries(np.asarray(wl.mask(pp, ll)), info.block_m, km, n_tok)
                if mask.shape[0] < heads:
                    mask = np.tile(mask, (-(-heads // mask.shape[0]), 1, 1))[:heads]
                per_entry[(pp, ll)] = ring_counts(mask, km, p, kn)
        sl = sequence_shards(n_tok, p)[0][1]
        elt = 2 if dtype in ("bf16", "fp16") else 4
        merge_s = comm_cost(plan, n_tok, heads, info.head_dim, link, elt=elt, stream_gbs=stream_gbs(gpu, params)).merge_s
        for r in range(p):
            qs, qe = r * sl, (r + 1) * sl
            q0 = qs // km * km if masked else qs
            qb = -(-(qe - q0) // km)
            for j, (ks, ke) in enumerate(key_chunks(n_tok, p, kn if masked else 1)):
                if ke <= ks:
                    continue
                # each (rank, chunk) call: rank r's query blocks (padded rows included) against the chunk's keys
                kp = KernelPlan.build(ring_cfg, gpu, params, qe - q0, heads, n_keys=ke - ks)
                cs = [per_entry[e][r][j].astype(np.int64) for e in ents] if masked else \
                    [np.zeros((heads, qb), np.int64)] * len(ents)
                att[r] += kp.run(cs)[0]
            att[r] += merge_s + (ring_pad_s(n_tok, p, heads, info.head_dim, km, r, link, elt=elt) if masked else 0.0)
    comm = comm_cost(plan, n_tok, heads, info.head_dim, link, elt=2 if dtype in ("bf16", "fp16") else 4)
    return CpPrediction(plan=plan, kernel=kernel, entries=ents, attention_s=att, comm=comm, weights=weights,
                        single_gpu_s=np.asarray(single.per_call_s),
                        assignment=[list(g) for g in assignment] if assignment else None)


def head_weights(wl: Any, info: Any, m: int = 128, n: int = 1) -> np.ndarray:
    """(H,) kept M×n tiles per head over the captured calls, weighted like the full run (for :func:`balanced_heads`)."""
    from fgsim.runpredict import full_run_weights

    ents = list(wl.entries())
    w = full_run_weights(info, ents)
    tot = np.zeros(info.num_heads)
    for (pp, ll), wi in zip(ents, w, strict=True):
        c = np.asarray(wl.counts(pp, ll, m=m, n=n)).sum(axis=1)
        if c.size < info.num_heads:
            c = np.tile(c, -(-info.num_heads // c.size))[:info.num_heads]
        tot += wi * c
    return tot


def head_costs(wl: Any, info: Any, gpu: Any, cfg: Any, params: Any = None) -> np.ndarray:
    """(H,) modelled work of each head over the full run: the cost model's stand-alone cycles of every CTA
    (query block) of the head, summed — additive, unlike kept slices, because a CTA's fixed costs do not shrink
    with its kept keys (the weight :func:`balanced_heads` balances)."""
    from fgsim.calibration import resolve_params
    from fgsim.costmodel import counts_m_n, cta_tables
    from fgsim.runpredict import full_run_weights

    if params is None:
        params, _ = resolve_params(gpu)
    m, n = counts_m_n(cfg, info.block_m)
    qb = -(-int(wl.n_tokens) // m)
    tabs = cta_tables(cfg, gpu, params, int(wl.n_tokens), n_ctas=info.num_heads * qb)
    ents = list(wl.entries())
    w = full_run_weights(info, ents)
    tot = np.zeros(info.num_heads)
    for (pp, ll), wi in zip(ents, w, strict=True):
        c = np.asarray(wl.counts(pp, ll, m=m, n=n))
        if c.shape[0] < info.num_heads:
            c = np.tile(c, (-(-info.num_heads // c.shape[0]), 1))[:info.num_heads]
        tot += wi * np.asarray(tabs.work)[np.minimum(c, len(tabs.work) - 1)].sum(axis=1)
    return tot


def scaling_table(wl: Any, info: Any, gpu: Any, kernels: Sequence[str], plans: Sequence[CpPlan], **kw: Any
                  ) -> list[dict[str, Any]]:
    """Summaries of :func:`predict_cp` for each kernel × plan (plans whose degree does not divide are skipped
    with a note)."""
    rows: list[dict[str, Any]] = []
    for k in kernels:
        for plan in plans:
            try:
                pr = predict_cp(wl, info, gpu, k, plan, **kw)
            except FgsimError as exc:
                rows.append({"plan": plan.describe(), "kernel": k, "skipped": str(exc)})
                continue
            rows.append(pr.summary())
    return rows


def fmt_seconds(s: float) -> str:
    """Human-readable seconds."""
    if not math.isfinite(s):
        return "n/a"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def parse_plans(text: str) -> list[CpPlan]:
    """``"ulysses:2,ring:2"`` → plans (FgsimError on bad text)."""
    plans = [CpPlan.parse(t) for t in text.split(",") if t.strip()]
    if not plans:
        raise FgsimError(f"bad --cp {text!r}: use ulysses:P or ring:P (P = GPUs), comma-separated")
    return plans


def cp_report(wl: Any, info: Any, gpu: Any, kernels: Sequence[str], plans: Sequence[CpPlan], *,
              single: dict[str, Any] | None = None, balance: bool = False, **kw: Any
              ) -> tuple[list[str], list[dict[str, Any]]]:
    """Table lines and JSON rows of :func:`predict_cp` for each plan × kernel (``single``: kernel → single-GPU
    KernelPrediction to reuse). ``balance``: add the balanced head assignment what-if under Ulysses."""
    from fgsim.runpredict import _config

    link = kw.pop("link", None) or link_for(gpu)
    rows: list[dict[str, Any]] = []
    for plan in plans:
        for k in kernels:
            try:
                pr = predict_cp(wl, info, gpu, k, plan, link=link, single=(single or {}).get(k), **kw)
            except FgsimError as exc:
                rows.append({"plan": plan.describe(), "kernel": k, "skipped": str(exc)})
                continue
            rows.append(pr.summary())
            if balance and plan.scheme == "ulysses" and k != "dense" and plan.degree > 1:
                cfg = _config(k, gpu, info.head_dim, kw.get("block_m") or pr_block_m(info), kw.get("gran_n", 1),
                              kw.get("dtype", "bf16"), None)
                cands = equal_partitions(info.num_heads, plan.degree, limit=36) or \
                    [balanced_heads(head_costs(wl, info, gpu, cfg, kw.get("params")), plan.degree)]
                # judged like the plan itself: the full run's sum of per-call slowest rank + communication;
                # the natural contiguous split is a candidate, so the what-if is never worse than it
                bal = min((predict_cp(wl, info, gpu, k, plan, link=link, single=(single or {}).get(k),
                                      assignment=g, **kw) for g in [*cands, None]),
                          key=lambda x: float((x.pass_s * x.weights).sum()))
                s = bal.summary()
                s["what_if"] = "balanced heads"
                rows.append(s)
    if rows and all("skipped" in r for r in rows):
        raise FgsimError(f"--cp: no kernel can run {', '.join(p.describe() for p in plans)}: {rows[0]['skipped']}")
    head = textwrap.wrap(f"context parallelism on {gpu.name}: interconnect {link.link or 'n/a'}", 100,
                         subsequent_indent="    ")
    lines = [*head,
             *textwrap.wrap(f"  collectives: all-to-all {link.alltoall_busbw_gbs:g} GB/s, all-gather "
                            f"{link.allgather_busbw_gbs:g} GB/s bus bandwidth, {link.latency_us:g} us each; "
                            + ("measured (fgsim calibrate --interconnect)" if link.source.startswith("fgsim calibrate")
                               else "a prior from the spec sheet, not measured"), 100, subsequent_indent="    "),
             f"{'plan':<11} {'kernel':<6} {'rank attention (full run)':<34} {'imbal':>6} {'comm':>9} "
             f"{'P GPUs':>9} {'1 GPU':>9} {'speedup':>8}"]
    for r in rows:
        if "skipped" in r:
            lines += textwrap.wrap(f"{r['plan']:<11} {r['kernel']:<6} skipped: {r['skipped']}", 100,
                                   subsequent_indent=" " * 19)
            continue
        ranks = r["rank_attention_s"]
        rk = " ".join(fmt_seconds(x) for x in ranks) if len(ranks) <= 4 else \
            f"{fmt_seconds(min(ranks))} .. {fmt_seconds(max(ranks))}"
        tag = "*" if r.get("what_if") else ""
        lines.append(f"{r['plan']:<11} {r['kernel'] + tag:<6} {rk:<34} {r['imbalance_run']:>6.3f} "
                     f"{fmt_seconds(r['comm_run_s']):>9} {fmt_seconds(r['full_run_s']):>9} "
                     f"{fmt_seconds(r['single_gpu_s']):>9} {r['speedup_vs_1gpu']:>7.2f}x")
    lines.append("imbal = slowest rank / mean rank attention; P GPUs = per call (slowest rank +")
    lines.append("    communication), summed over the full run; nothing overlaps (diffusers' Ulysses and ring)")
    if balance:
        lines.append("* = what-if: the head-to-GPU assignment with the least slowest-rank time (every split")
        lines.append("    when there are few, else balanced modelled CTA work); a fixed head permutation")
    return lines, rows


def pr_block_m(info: Any) -> int:
    """The kernel query block predict uses by default for a trace stored at ``info.block_m``."""
    return 128 if info.block_m <= 128 and 128 % info.block_m == 0 else int(info.block_m)


def rank_attention_s(kernel: str, plan: CpPlan, rank: int, counts: Any, n_tokens: int, heads: int, head_dim: int,
                     block_m: int, gpu: Any, params: Any, link: Link, *, dtype: str = "bf16",
                     resources: Any = None) -> float:
    """Predicted attention seconds of one rank for one call from kept-tile counts (the kernel's ``n``: 1 for fg,
    ``block_m`` for block; ignored for dense).

    ``counts``: Ulysses: the call's ``(H, QB)`` counts (the rank takes its contiguous heads); ring: a function
    ``(rank, chunk) -> (H, QB_r)`` counts of the rank's query blocks in key chunk ``chunk`` (:func:`ring_counts`).
    Ring adds the fused LSE merges and the query padding (:func:`ring_rank_s`). ``resources``: compiled-kernel
    figures by config key (default: the calibration's).
    """
    from fgsim.costmodel import predict_counts
    from fgsim.launchcfg import launch_config

    cfg = launch_config(kernel, gpu.name, head_dim, block_m, 1, dtype)
    p = plan.degree
    if plan.scheme == "ulysses":
        g = ulysses_heads(heads, p)[rank]
        c = np.zeros((len(g), -(-n_tokens // block_m)), np.int32) if kernel == "dense" else \
            np.asarray(counts)[g.start:g.stop]
        return predict_counts(c.astype(np.int32), n_tokens, cfg, gpu, params, resources=resources)[0]
    n = 1 if kernel == "fg" else block_m
    return ring_rank_s(kernel, n_tokens, p, rank, heads, block_m, n, lambda j: counts(rank, j), cfg, gpu, params,
                       link, head_dim=head_dim, elt=2 if dtype in ("bf16", "fp16") else 4, resources=resources)
