"""Event-driven CTA scheduler: places CTAs on SM slots in hardware launch order and returns the makespan.

Model (no wave barrier, as the FlashAttention-3 paper, arXiv 2407.08608, notes; wave quantization as in
NVIDIA's "Matrix Multiplication Background" guide, docs.nvidia.com/deeplearning/performance): the block
scheduler first hands CTAs out round-robin, one per SM, until every SM holds ``slots`` CTAs (or the grid is
exhausted); afterwards, whenever a CTA finishes, the next CTA in launch order starts on the SM that freed the
slot, at that instant (no wave barrier). When several SMs free slots at the same instant, the new CTAs go out
breadth-first over those SMs (one each in SM order, then a second, ...), as at launch.

Co-resident CTAs share their SM: with ``j`` CTAs resident each progresses at ``rates[j]`` of its stand-alone
speed (processor sharing). ``rates`` comes from the cost model's latency-hiding curve (an SM with fewer
resident CTAs than its occupancy limit hides less latency, so each CTA runs faster than with a full SM but
not proportionally); the scalar form ``gain`` in ``[1, slots]`` gives ``rates[j] = min(1, gain / j)``.
Work is given in stand-alone SM cycles. With every rate 1 (``gain >= slots``) every slot is an independent
machine and the simulation is classic list scheduling (fast path). The simulation is exact for this model:
events are CTA completions; ties go to the lowest SM (then slot) index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from fgsim.errors import FgsimError


@nb.njit(cache=True)
def _tree_new(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Winner tree over ``key`` (length a power of two P): node i holds the min key of its subtree and its
    index (``tk``, ``ti``); the root is node 1, leaf m is node P + m. Ties go to the lower index."""
    p = key.shape[0]
    tk = np.empty(2 * p)
    ti = np.empty(2 * p, np.int64)
    for m in range(p):
        tk[p + m] = key[m]
        ti[p + m] = m
    for node in range(p - 1, 0, -1):
        if tk[2 * node + 1] < tk[2 * node]:
            tk[node] = tk[2 * node + 1]
            ti[node] = ti[2 * node + 1]
        else:
            tk[node] = tk[2 * node]
            ti[node] = ti[2 * node]
    return tk, ti


@nb.njit(cache=True, inline="always")
def _tree_set(tk: np.ndarray, ti: np.ndarray, m: int, k: float) -> None:
    """Set leaf ``m``'s key to ``k`` and replay the matches up to the root (the carried winner stays in registers)."""
    node = (tk.shape[0] >> 1) + m
    tk[node] = k
    ci = m
    while node > 1:
        sib = node ^ 1
        sk = tk[sib]
        si = ti[sib]
        right = node & 1
        take = (sk < k) or (sk == k and right == 1)
        node >>= 1
        if take:
            k = sk
            ci = si
        tk[node] = k
        ti[node] = ci


@nb.njit(cache=True)
def _pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


#: Grids of more than this many waves (CTAs / (SMs x slots)) with co-resident sharing are list-scheduled at the
#: full-SM rate (see _sim_many); the exact processor-sharing simulation costs ~8x more per CTA.
MANY_WAVES = 24

#: List-scheduling times are fixed point: 1/_TICKS cycle (exact integer sums; ties broken by machine index).
_TICKS = 16.0


@nb.njit(cache=True)
def _sim_list(idx, table, n_machines, record, start, end, machine):  # noqa: ANN001, ANN202
    """List scheduling on independent machines; machine m = slot * n_sm + sm. Returns (makespan, sum work).

    A winner tree keeps packed int64 keys ``(time_ticks << bits) | machine``: min() gives the earliest-free
    machine and breaks ties by the lower index, branch-free.
    """
    n = idx.shape[0]
    bits = 0
    while (1 << bits) < n_machines:
        bits += 1
    mask = (1 << bits) - 1
    p = 1
    while p < n_machines:
        p *= 2
    big = np.int64(1) << 62
    tk = np.empty(2 * p, np.int64)
    for m in range(p):
        tk[p + m] = m if m < n_machines else big
    for node in range(p - 1, 0, -1):
        tk[node] = min(tk[2 * node], tk[2 * node + 1])
    last = np.int64(0)
    total = 0.0
    for i in range(n):
        top = tk[1]
        m = top & mask
        w = np.int64(table[idx[i]] * _TICKS + 0.5)
        t1 = (top >> bits) + w
        total += table[idx[i]]
        if t1 > last:
            last = t1
        if record:
            start[i] = (top >> bits) / _TICKS
            end[i] = t1 / _TICKS
            machine[i] = m
        k = (t1 << bits) | m
        node = p + m
        tk[node] = k
        while node > 1:
            k = min(k, tk[node ^ 1])
            node >>= 1
            tk[node] = k
    return last / _TICKS, total


@nb.njit(cache=True)
def _sim_shared(idx, table, n_sm, slots, rates, record, start, end, machine):  # noqa: ANN001, ANN202
    """Processor-sharing simulation (rate ``rates[j]`` with j resident CTAs). Returns (makespan, sum work)."""
    n = idx.shape[0]
    rem = np.zeros((n_sm, slots))
    who = np.full((n_sm, slots), -1, np.int64)
    cnt = np.zeros(n_sm, np.int64)
    last = np.zeros(n_sm)
    key = np.full(_pow2(n_sm), np.inf)
    nxt = 0
    total = 0.0
    for _s in range(slots):
        for s in range(n_sm):
            if nxt < n:
                w = table[idx[nxt]]
                total += w
                rem[s, cnt[s]] = w
                who[s, cnt[s]] = nxt
                if record:
                    start[nxt] = 0.0
                    machine[nxt] = s
                cnt[s] += 1
                nxt += 1
    for s in range(n_sm):
        if cnt[s] > 0:
            r = rates[cnt[s]]
            mn = np.inf
            for j in range(cnt[s]):
                if rem[s, j] < mn:
                    mn = rem[s, j]
            key[s] = mn / r
    tk, ti = _tree_new(key)
    makespan = 0.0
    batch = np.empty(n_sm, np.int64)
    while True:
        t = tk[1]
        if t == np.inf:
            break
        # Retire every CTA that finishes at this instant, on every SM, before any refill: the block scheduler
        # then hands new CTAs out breadth-first (one per SM in SM order, then a second, ...), as at launch.
        tol = 1e-12 * max(1.0, t)
        nb_ = 0
        while tk[1] <= t + tol:
            s = ti[1]
            c = cnt[s]
            dt = (t - last[s]) * rates[c]
            last[s] = t
            j = 0
            while j < c:
                rem[s, j] -= dt
                if rem[s, j] <= tol:
                    if record:
                        end[who[s, j]] = t
                    c -= 1
                    rem[s, j] = rem[s, c]
                    who[s, j] = who[s, c]  # the moved CTA was not yet advanced: slot j is examined again
                else:
                    j += 1
            cnt[s] = c
            batch[nb_] = s
            nb_ += 1
            _tree_set(tk, ti, s, np.inf)
        makespan = t
        batch[:nb_].sort()
        filled = True
        while filled and nxt < n:
            filled = False
            for b in range(nb_):
                s = batch[b]
                if cnt[s] < slots and nxt < n:
                    c = cnt[s]
                    w = table[idx[nxt]]
                    total += w
                    rem[s, c] = w
                    who[s, c] = nxt
                    if record:
                        start[nxt] = t
                        machine[nxt] = s
                    cnt[s] = c + 1
                    nxt += 1
                    filled = True
        for b in range(nb_):
            s = batch[b]
            c = cnt[s]
            if c == 0:
                key[s] = np.inf
            else:
                mn = np.inf
                for j in range(c):
                    if rem[s, j] < mn:
                        mn = rem[s, j]
                key[s] = t + mn / rates[c]
            _tree_set(tk, ti, s, key[s])
    return makespan, total


@nb.njit(cache=True)
def _sim_dispatch(idx, table, n_sm, slots, rates, record, start, end, machine):  # noqa: ANN001, ANN202
    indep = True
    for j in range(1, slots + 1):
        if rates[j] < 1.0 - 1e-9:
            indep = False
    if indep:
        return _sim_list(idx, table, n_sm * slots, record, start, end, machine)
    return _sim_shared(idx, table, n_sm, slots, rates, record, start, end, machine)


@nb.njit(cache=True)
def _sim_call(row, packed, work, work_full, n_sm, slots, rates, csum_row):  # noqa: ANN001, ANN202
    """(makespan, total work) of one call's CTAs ``row``; adds their cost components into ``csum_row``."""
    dummy_f = np.zeros(1)
    dummy_i = np.zeros(1, np.int64)
    if row.shape[0] > MANY_WAVES * n_sm * slots and rates[slots] < 1.0 - 1e-9:
        # many waves: every SM holds `slots` CTAs nearly all the time, so each slot is a machine running at
        # the full-SM rate (list scheduling); only the last wave, a small share of the call, would run faster
        ms, tw = _sim_list(row, work_full, n_sm * slots, False, dummy_f, dummy_f, dummy_i)
        tw = 0.0
        for i in range(row.shape[0]):
            tw += work[row[i]]
    else:
        ms, tw = _sim_dispatch(row, work, n_sm, slots, rates, False, dummy_f, dummy_f, dummy_i)
    for i in range(row.shape[0]):
        r = row[i]
        for k in range(csum_row.shape[0]):
            csum_row[k] += packed[r, k + 1]
    return ms, tw


@nb.njit(cache=True, parallel=True)
def _sim_many(idx2d, packed, n_sm, slots, rates):  # noqa: ANN001, ANN202
    """packed[c] = (work, comp_1, ..., comp_K) per count value, row-major (one cache line per CTA lookup)."""
    n_calls = idx2d.shape[0]
    n_comp = packed.shape[1] - 1
    out = np.zeros(n_calls)
    tot = np.zeros(n_calls)
    csum = np.zeros((n_calls, n_comp))
    work = np.ascontiguousarray(packed[:, 0])
    work_full = work / rates[slots]
    for c in nb.prange(n_calls):
        out[c], tot[c] = _sim_call(idx2d[c], packed, work, work_full, n_sm, slots, rates, csum[c])
    return out, tot, csum


@nb.njit(cache=True)
def _sim_many_serial(idx2d, packed, n_sm, slots, rates):  # noqa: ANN001, ANN202
    """_sim_many without threads: a parallel region costs milliseconds to wake on a loaded machine."""
    n_calls = idx2d.shape[0]
    n_comp = packed.shape[1] - 1
    out = np.zeros(n_calls)
    tot = np.zeros(n_calls)
    csum = np.zeros((n_calls, n_comp))
    work = np.ascontiguousarray(packed[:, 0])
    work_full = work / rates[slots]
    for c in range(n_calls):
        out[c], tot[c] = _sim_call(idx2d[c], packed, work, work_full, n_sm, slots, rates, csum[c])
    return out, tot, csum


@nb.njit(cache=True)
def _persistent_call(row, row_work, first_extra, comps, n_sm, slots, rates, g, csum_row):  # noqa: ANN001, ANN202
    """(makespan, total work) of one persistent launch: launch position ``i`` goes to program ``i % g``; a program's
    work = its first row's ``first_extra`` + its rows' ``row_work``; adds the rows' ``comps`` ((count, K)) into
    ``csum_row``."""
    n_rows = row.shape[0]
    n_comp = csum_row.shape[0]
    w = np.zeros(g)
    acc = np.zeros(n_comp)
    q = 0
    for i in range(n_rows):
        r = row[i]
        w[q] += row_work[r]
        q += 1
        if q == g:
            q = 0
        for k in range(n_comp):
            acc[k] += comps[r, k]
    for k in range(n_comp):
        csum_row[k] += acc[k]
    for q in range(g):
        w[q] += first_extra[row[q]]
    dummy_f = np.zeros(1)
    dummy_i = np.zeros(1, np.int64)
    return _sim_dispatch(np.arange(g), w, n_sm, slots, rates, False, dummy_f, dummy_f, dummy_i)


@nb.njit(cache=True, parallel=True)
def _sim_persistent(idx2d, row_work, first_extra, comps, n_sm, slots, rates, n_prog):  # noqa: ANN001, ANN202
    """Persistent programs over many calls (threads); returns (makespan, total work, comps sums) per call."""
    n_calls, n_rows = idx2d.shape
    out = np.zeros(n_calls)
    tot = np.zeros(n_calls)
    csum = np.zeros((n_calls, comps.shape[1]))
    g = min(n_rows, n_prog)
    if g >= 1:
        for c in nb.prange(n_calls):
            out[c], tot[c] = _persistent_call(idx2d[c], row_work, first_extra, comps, n_sm, slots, rates, g, csum[c])
    return out, tot, csum


@nb.njit(cache=True)
def _sim_persistent_serial(idx2d, row_work, first_extra, comps, n_sm, slots, rates, n_prog):  # noqa: ANN001, ANN202
    """_sim_persistent without threads (a few calls: a parallel region costs milliseconds to wake)."""
    n_calls, n_rows = idx2d.shape
    out = np.zeros(n_calls)
    tot = np.zeros(n_calls)
    csum = np.zeros((n_calls, comps.shape[1]))
    g = min(n_rows, n_prog)
    if g >= 1:
        for c in range(n_calls):
            out[c], tot[c] = _persistent_call(idx2d[c], row_work, first_extra, comps, n_sm, slots, rates, g, csum[c])
    return out, tot, csum


@nb.njit(cache=True)
def list_programs(row, plan_cost, g):  # noqa: ANN001, ANN201
    """Program of each launch position under greedy list scheduling in launch order (fgattn.gluon_fg_list's
    ``plan_ws2_list``): each row in turn to the program with the least planned load so far (``plan_cost`` per
    count, ties to the lowest program)."""
    load = np.zeros(g)
    out = np.zeros(row.shape[0], np.int64)
    for i in range(row.shape[0]):
        q = 0
        best = load[0]
        for j in range(1, g):
            if load[j] < best:
                best = load[j]
                q = j
        load[q] += plan_cost[row[i]]
        out[i] = q
    return out


@nb.njit(cache=True)
def _list_call(row, row_work, first_extra, plan_cost, comps, n_sm, slots, rates, g, csum_row):  # noqa: ANN001, ANN202
    """:func:`_persistent_call` with the rows assigned by :func:`list_programs` instead of round-robin."""
    prog = list_programs(row, plan_cost, g)
    n_comp = csum_row.shape[0]
    w = np.zeros(g)
    seen = np.zeros(g, np.bool_)
    for i in range(row.shape[0]):
        r = row[i]
        q = prog[i]
        w[q] += row_work[r]
        if not seen[q]:
            seen[q] = True
            w[q] += first_extra[r]
        for k in range(n_comp):
            csum_row[k] += comps[r, k]
    dummy_f = np.zeros(1)
    dummy_i = np.zeros(1, np.int64)
    return _sim_dispatch(np.arange(g), w, n_sm, slots, rates, False, dummy_f, dummy_f, dummy_i)


@nb.njit(cache=True)
def _sim_list_persistent(idx2d, row_work, first_extra, plan_cost, comps, n_sm, slots, rates, n_prog):  # noqa: ANN001, ANN202
    """List-scheduled persistent programs over many calls (serial); as :func:`_sim_persistent`."""
    n_calls, n_rows = idx2d.shape
    out = np.zeros(n_calls)
    tot = np.zeros(n_calls)
    csum = np.zeros((n_calls, comps.shape[1]))
    g = min(n_rows, n_prog)
    if g >= 1:
        for c in range(n_calls):
            out[c], tot[c] = _list_call(idx2d[c], row_work, first_extra, plan_cost, comps, n_sm, slots, rates, g,
                                        csum[c])
    return out, tot, csum


def simulate_persistent(idx: np.ndarray, row_work: np.ndarray, first_extra: np.ndarray, comps: np.ndarray,
                        n_sm: int, slots: int, gain: float, n_programs: int,
                        rates: np.ndarray | None = None, plan_cost: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many launches of persistent programs: ``n_programs`` (k x SMs) programs deal the rows of each call's launch
    order round-robin (program p runs positions p, p + G, ...), or, with ``plan_cost`` (planned cost per count),
    by greedy list scheduling in launch order (:func:`list_programs`); programs are placed on SM slots like CTAs.
    Returns (makespan per call, total work per call, per-call sums of each row of ``comps`` over the rows)."""
    _check(n_sm, slots, gain)
    ix = np.ascontiguousarray(idx, dtype=np.int64)
    if ix.ndim != 2:
        raise FgsimError("simulate_persistent needs a 2-D (calls, rows) index array")
    if ix.size and (ix.min() < 0 or ix.max() >= row_work.shape[0]):
        raise FgsimError(f"tile counts out of range 0..{row_work.shape[0] - 1} for this trace and kernel")
    if n_programs < 1:
        raise FgsimError(f"persistent launch needs at least one program (got {n_programs})")
    if plan_cost is not None:
        if np.asarray(plan_cost).shape != np.asarray(row_work).shape:
            raise FgsimError("simulate_persistent: plan_cost must have one entry per count, as row_work")
        return _sim_list_persistent(ix, np.ascontiguousarray(row_work, np.float64),
                                    np.ascontiguousarray(first_extra, np.float64),
                                    np.ascontiguousarray(plan_cost, np.float64),
                                    np.ascontiguousarray(np.asarray(comps, np.float64).T), n_sm, slots,
                                    rate_table(slots, float(gain), rates), int(n_programs))
    fn = _sim_persistent if ix.shape[0] >= 8 else _sim_persistent_serial
    return fn(ix, np.ascontiguousarray(row_work, np.float64), np.ascontiguousarray(first_extra, np.float64),
              np.ascontiguousarray(np.asarray(comps, np.float64).T), n_sm, slots, rate_table(slots, float(gain), rates),
              int(n_programs))


@dataclass(frozen=True)
class Schedule:
    """Result of one simulated launch; times in the unit of the work (SM cycles)."""

    makespan: float
    total_work: float
    start: np.ndarray  # (n_cta,) start time per CTA, launch order
    end: np.ndarray  # (n_cta,) end time per CTA
    sm: np.ndarray  # (n_cta,) SM index per CTA


def _check(n_sm: int, slots: int, gain: float) -> None:
    if n_sm < 1 or slots < 1:
        raise FgsimError(f"scheduler needs at least one SM and one slot (got {n_sm} SMs, {slots} slots)")
    if not (1.0 <= gain):
        raise FgsimError(f"scheduler gain must be >= 1 (got {gain})")


def rate_table(slots: int, gain: float | None = None, rates: np.ndarray | None = None) -> np.ndarray:
    """Per-CTA speed with j resident CTAs, index j = 0..slots (entry 0 unused): ``rates`` (length ``slots``, for
    j = 1..slots) or, from the scalar ``gain``, ``min(1, gain / j)``. Rates must be in (0, 1] and the SM's
    throughput ``j * rate[j]`` must not fall as j grows."""
    out = np.ones(slots + 1)
    if rates is not None:
        r = np.asarray(rates, np.float64).reshape(-1)
        if r.size != slots or not np.all(np.isfinite(r)) or r.min() <= 0 or r.max() > 1.0 + 1e-12:
            raise FgsimError(f"scheduler rates must be {slots} values in (0, 1] (got {r})")
        thr = r * np.arange(1, slots + 1)
        if np.any(np.diff(thr) < -1e-9):
            raise FgsimError("scheduler rates: SM throughput j * rate[j] must not fall with more resident CTAs")
        out[1:] = np.minimum(r, 1.0)
        return out
    g = float(slots) if gain is None else float(gain)
    out[1:] = np.minimum(1.0, g / np.arange(1, slots + 1))
    return out


def simulate(work: np.ndarray, n_sm: int, slots: int = 1, gain: float | None = None,
             rates: np.ndarray | None = None) -> Schedule:
    """Schedule CTAs with stand-alone ``work`` (cycles, launch order) on ``n_sm`` SMs × ``slots``; full detail.

    Co-resident CTAs run at ``rates[j-1]`` with j resident (or ``min(1, gain/j)``; see the module docstring)."""
    w = np.ascontiguousarray(work, dtype=np.float64)
    if w.ndim != 1 or (w.size and (not np.all(np.isfinite(w)) or w.min() < 0)):
        raise FgsimError("CTA work must be a 1-D array of finite non-negative cycles")
    g = float(slots) if gain is None else float(gain)
    _check(n_sm, slots, g)
    n = w.size
    start = np.zeros(n)
    end = np.zeros(n)
    machine = np.zeros(n, np.int64)
    idx = np.arange(n, dtype=np.int64)
    rt = rate_table(slots, g, rates)
    ms, tot = _sim_dispatch(idx, w, n_sm, slots, rt, True, start, end, machine)
    if np.all(rt[1:] >= 1.0):
        machine = machine % n_sm
    return Schedule(float(ms), float(tot), start, end, machine)


def simulate_calls(
    idx: np.ndarray, table: np.ndarray, comps: np.ndarray, n_sm: int, slots: int, gain: float,
    rates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many launches at once: CTA ``i`` of call ``c`` has work ``table[idx[c, i]]`` (cycles).

    Returns (makespan per call, total work per call, per-call sums of each row of ``comps`` over its CTAs).
    ``idx`` is (calls, CTAs) integer indices in launch order; ``comps`` is (n_comp, len(table)).
    """
    _check(n_sm, slots, gain)
    ix = np.ascontiguousarray(idx)
    if ix.ndim != 2:
        raise FgsimError("simulate_calls needs a 2-D (calls, CTAs) index array")
    if ix.size and (ix.min() < 0 or ix.max() >= table.shape[0]):
        raise FgsimError(f"tile counts out of range 0..{table.shape[0] - 1} for this trace and kernel")
    packed = np.ascontiguousarray(np.column_stack([np.asarray(table, np.float64),
                                                   np.asarray(comps, np.float64).T]))
    fn = _sim_many if ix.shape[0] >= 8 else _sim_many_serial
    return fn(ix, packed, n_sm, slots, rate_table(slots, float(gain), rates))
