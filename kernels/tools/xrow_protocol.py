"""CPU replay of the shared-memory protocol of ``fgattn.gluon_fg_xrow`` (issue 12, session 15, helper X).

The Gluon kernel has no interpreter path, so its barrier protocol is checked here: the producer warpgroup and the
two consumer warpgroups are Python generators that issue, in the kernel's program order, the same mbarrier waits
(phase-parity semantics of ``mbarrier.try_wait.parity``: the wait passes when the barrier's completed-phase count
has the other parity) and arrivals, the buffer writes (cp.async gathers, O staging) and the reads in flight
(wgmma from issue to its wait, the O bulk store from issue to ``store_wait``).  A random scheduler interleaves them;
every run must end with all agents finished (no deadlock) and without a hazard:

* a QK / PV reads a K / V buffer holding another item's rows, or one not yet written;
* the producer overwrites a buffer that a warpgroup has not finished reading (an in-flight wgmma or O store);
* a warpgroup stages O in a K buffer before the other warpgroup's QK of that buffer has completed.

``bug`` injects one protocol mistake (the tests require each to be caught): ``early_release`` (a row's last stage
released at the end of its step, not after the O store), ``no_kq`` (O staged without the other warpgroup's QK
done), ``v_same_stage`` (the last PV's V taken from the row's last stage, as the packaged kernel pairs K(i) with
V(i), instead of the next stage).

    python3 kernels/tools/xrow_protocol.py --runs 2000 --seed 15
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator

ST = 3
BUGS = ("early_release", "no_kq", "v_same_stage")


class Hazard(Exception):
    """A protocol violation found by the replay (one line)."""


class State:
    """Barriers (completed-phase count and pending arrivals) and buffers of one CTA."""

    def __init__(self) -> None:
        self.count = {("full", i): 1 for i in range(ST)}
        self.count.update({("empty", i): 2 for i in range(ST)})
        self.count.update({("kq", i): 1 for i in range(2 * ST)})
        self.phase = {k: 0 for k in self.count}
        self.pending = dict(self.count)
        self.k_tag = [None] * ST  # item whose K rows the buffer holds
        self.v_tag = [None] * ST
        self.k_reads: list[set] = [set() for _ in range(ST)]  # in-flight readers: ("qk", h) / ("store", h)
        self.v_reads: list[set] = [set() for _ in range(ST)]
        self.qk_done: dict[int, set] = {}  # item -> warpgroups whose QK of it completed
        self.pv_done: dict[int, set] = {}  # item -> warpgroups whose PV of it completed
        self.log: list[str] = []

    def passes(self, bar: tuple, parity: int) -> bool:
        return (self.phase[bar] & 1) != parity

    def arrive(self, bar: tuple) -> None:
        self.pending[bar] -= 1
        if self.pending[bar] == 0:
            self.phase[bar] += 1
            self.pending[bar] = self.count[bar]


Op = tuple


def producer(rows: list[int]) -> Iterator[Op]:
    """The producer's program order (``_xr_producer``): item i's stage = K(i) and V(i - 1); a V-only stage last."""
    it = 0
    for n_t in rows:
        for _ in range(n_t):
            st = it % ST
            yield ("wait", ("empty", st), ((it // ST) & 1) ^ 1)
            if it > 0:
                yield ("write_v", (it - 1) % ST, it - 1)
            yield ("write_k", st, it)
            yield ("arrive", ("full", st))
            it += 1
    if it > 0:
        st = it % ST
        yield ("wait", ("empty", st), ((it // ST) & 1) ^ 1)
        yield ("write_v", (it - 1) % ST, it - 1)
        yield ("arrive", ("full", st))


def consumer(h: int, rows: list[int], lag: bool, bug: str | None = None) -> Iterator[Op]:
    """Consumer warpgroup ``h``'s program order (``_xr_consumer``)."""
    other = 1 - h
    it = 0
    for n_t in rows:
        st = it % ST
        if lag and h == 1 and n_t > 1:
            yield ("wait", ("kq", ST + (it + 1) % ST), ((it + 1) // ST) & 1)
        yield ("wait", ("full", st), (it // ST) & 1)
        yield ("qk_issue", h, it)
        if it > 0:
            yield ("store_wait", h, (it - 1) % ST)
            if bug != "early_release":
                yield ("arrive", ("empty", (it - 1) % ST))
        yield ("qk_wait", h, it)
        yield ("arrive", ("kq", other * ST + st))
        if n_t > 1 or bug == "early_release":
            yield ("arrive", ("empty", st))
        prev = st
        it += 1
        for t in range(1, n_t):
            st = it % ST
            last = t == n_t - 1
            if lag and h == 1 and not last:
                yield ("wait", ("kq", ST + (it + 1) % ST), ((it + 1) // ST) & 1)
            yield ("wait", ("full", st), (it // ST) & 1)
            yield ("qk_issue", h, it)
            yield ("pv_issue", h, it - 1)
            yield ("qk_wait", h, it)
            if last:
                yield ("arrive", ("kq", other * ST + st))
            yield ("pv_wait", h, it - 1)
            if not last:
                yield ("arrive", ("kq", other * ST + st))
                yield ("arrive", ("empty", st))
            elif bug == "early_release":
                yield ("arrive", ("empty", st))
            prev = st
            it += 1
        if bug != "v_same_stage":
            yield ("wait", ("full", it % ST), (it // ST) & 1)
        yield ("pv_issue", h, it - 1)
        yield ("pv_wait", h, it - 1)
        if bug != "no_kq":
            yield ("wait", ("kq", h * ST + prev), ((it - 1) // ST) & 1)
        yield ("o_write", h, prev, it - 1)
        yield ("store_issue", h, prev)
    if it > 0:
        yield ("store_wait", h, (it - 1) % ST)
        if bug != "early_release":
            yield ("arrive", ("empty", (it - 1) % ST))


def _apply(s: State, who: str, op: Op) -> bool:
    """Apply ``op`` of agent ``who``; False if it must wait (a barrier wait that does not pass yet)."""
    kind = op[0]
    if kind == "wait":
        return s.passes(op[1], op[2])
    if kind == "arrive":
        s.arrive(op[1])
    elif kind in ("write_k", "write_v"):
        buf, item = op[1], op[2]
        reads = s.k_reads[buf] if kind == "write_k" else s.v_reads[buf]
        if reads:
            raise Hazard(f"{kind} of item {item} into buffer {buf} while {sorted(reads)} still read it")
        tags, done, mm = (s.k_tag, s.qk_done, "QK") if kind == "write_k" else (s.v_tag, s.pv_done, "PV")
        old = tags[buf]
        if old is not None and len(done.get(old, set())) < 2:
            raise Hazard(f"{kind} of item {item} over item {old} before both {mm}s of it")
        tags[buf] = item
    elif kind in ("qk_issue", "pv_issue"):
        h, item = op[1], op[2]
        tags, reads, mm, b = (s.k_tag, s.k_reads, "QK", "K") if kind == "qk_issue" else (s.v_tag, s.v_reads, "PV", "V")
        if tags[item % ST] != item:
            raise Hazard(f"{mm} of item {item} by {h} reads {b} buffer {item % ST} holding item {tags[item % ST]}")
        reads[item % ST].add((mm.lower(), h))
    elif kind in ("qk_wait", "pv_wait"):
        h, item = op[1], op[2]
        reads, done = (s.k_reads, s.qk_done) if kind == "qk_wait" else (s.v_reads, s.pv_done)
        reads[item % ST].discard((kind[:2], h))
        done.setdefault(item, set()).add(h)
    elif kind == "o_write":
        h, buf, item = op[1], op[2], op[3]
        if s.k_tag[buf] != item:
            raise Hazard(f"O of item {item} by {h} into K buffer {buf} holding item {s.k_tag[buf]}")
        if s.qk_done.get(item, set()) != {0, 1}:
            raise Hazard(f"O of item {item} by {h} staged before both QKs of it completed")
    elif kind == "store_issue":
        s.k_reads[op[2]].add(("store", op[1]))
    elif kind == "store_wait":
        s.k_reads[op[2]].discard(("store", op[1]))
    else:  # pragma: no cover - a typo in a generator
        raise ValueError(kind)
    return True


def replay(rows: list[int], lag: bool, rng: random.Random, bug: str | None = None,
           weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> int:
    """One random interleaving of the producer and both consumers over a program with rows of ``rows`` tiles;
    returns the number of operations applied.  Raises :class:`Hazard` on a violation or a deadlock.  ``weights``:
    relative chance of each agent (producer, warpgroup 0, warpgroup 1) to move when several can."""
    s = State()
    agents = {"producer": producer(rows), "wg0": consumer(0, rows, lag, bug), "wg1": consumer(1, rows, lag, bug)}
    w = dict(zip(agents, weights, strict=True))
    cur: dict[str, Op | None] = {a: next(g, None) for a, g in agents.items()}
    n = 0
    while any(op is not None for op in cur.values()):
        ready = [a for a, op in cur.items() if op is not None and (op[0] != "wait" or s.passes(op[1], op[2]))]
        if not ready:
            raise Hazard("deadlock: " + ", ".join(f"{a} at {op}" for a, op in cur.items() if op is not None))
        a = rng.choices(ready, weights=[w[x] for x in ready])[0]
        _apply(s, a, cur[a])
        n += 1
        cur[a] = next(agents[a], None)
    return n


def random_rows(rng: random.Random, max_rows: int = 8, max_tiles: int = 5) -> list[int]:
    """A program's rows (tiles per row, >= 1; one-tile rows often)."""
    return [rng.choice([1, 1, 2, 3, max_tiles, rng.randint(1, max_tiles)]) for _ in range(rng.randint(1, max_rows))]


def check(runs: int, seed: int, bug: str | None = None) -> tuple[int, str | None]:
    """``runs`` random programs x schedules (both LAG settings, skewed agent speeds); (runs done, first hazard)."""
    rng = random.Random(seed)
    for r in range(runs):
        rows = random_rows(rng)
        weights = tuple(rng.choice([0.05, 0.3, 1.0, 3.0]) for _ in range(3))
        try:
            replay(rows, bool(r % 2), rng, bug, weights)
        except Hazard as e:
            return r, f"run {r} rows {rows} lag {bool(r % 2)} weights {weights}: {e}"
    return runs, None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000, help="random programs / schedules (>= 1)")
    ap.add_argument("--seed", type=int, default=15, help="random seed")
    ap.add_argument("--bug", choices=BUGS, default=None, help="inject a protocol mistake (must be caught)")
    a = ap.parse_args(argv)
    if a.runs < 1:
        ap.error(f"--runs: {a.runs} must be >= 1")
    n, err = check(a.runs, a.seed, a.bug)
    print(f"[protocol] seed {a.seed} bug {a.bug}: {n} runs, " + (f"HAZARD {err}" if err else "no hazard, no deadlock"))
    return 1 if err else 0


if __name__ == "__main__":
    sys.exit(main())
