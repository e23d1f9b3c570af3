"""fgattn.gluon_fg_dyntail (the dynamic tail of the ws2 list entry, issue 12 research, session 16, helper D2): the
pool split (every row once, the static lists prefixes of the packaged plan's, the pool heaviest first, light_first),
the claim counter's reset, every bad-input message, an event model of the kernel's claim / ring protocol (no
deadlock, all three partitions see the same rows, the counter ends at pool + programs) and the probe's rule.  The
kernel runs only on an sm_90 GPU (kernels/tools/dyntail_probe.py checks it there)."""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import dyntail_probe as probe  # noqa: E402
import fgattn  # noqa: E402
from fgattn import gluon_fg_dyntail as dt  # noqa: E402
from fgattn import gluon_fg_list as gl_list  # noqa: E402
from fgattn import gluon_fg_m64 as g  # noqa: E402


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def _index(h: int = 3, n: int = 3001, density: float = 0.2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(1, h, -(-n // 128), n, generator=gen) < density
    mask[:, :, :2] = True  # text-like full rows
    return fgattn.build_index(mask, block_m=128, gran_n=1, order=True)


def test_split_pool_small_case_by_hand():
    costs = [5.0, 4.0, 3.0, 2.0, 1.0, 6.0]
    lists = [[0, 1, 2], [5, 3, 4]]  # loads 12, 9: mean 10.5, cut at share 0.5: 5.25
    static, pool = dt.split_pool(costs, lists, 0.5)
    assert static == [[0, 1], [5]] and pool == [2, 3, 4]  # starts 0, 5, 9 / 0, 6, 8; pool heaviest first
    assert dt.split_pool(costs, lists, 0.0) == (lists, [])
    st, pool = dt.split_pool(costs, lists, 0.5, light_first=True)
    assert st == [[1, 0], [5]] and pool == [2, 3, 4]


@pytest.mark.parametrize("programs,share", [(1, 0.3), (7, 0.1), (40, 0.5), (132, 0.1)])
def test_plan_dyntail_every_row_once_static_prefixes_and_pool_heaviest_first(programs, share):
    s = _seed()
    idx = _index(density=random.Random(s).uniform(0.02, 0.6), seed=s)
    base = gl_list.plan_ws2_list(idx, programs=programs)
    plan = dt.plan_dyntail(idx, programs=programs, pool_share=share)
    st, flat = plan.start.tolist(), plan.rows.tolist()
    lists = [flat[st[p]:st[p + 1]] for p in range(plan.programs)]
    bst, bflat = base.start.tolist(), base.rows.tolist()
    blists = [bflat[bst[p]:bst[p + 1]] for p in range(base.programs)]
    pool = plan.pool.tolist()
    assert pool[0] == plan.n_pool == len(pool) - 1
    assert sorted(flat + pool[1:]) == list(range(idx.n_rows))
    assert all(lst and lst == b[:len(lst)] for lst, b in zip(lists, blists, strict=True))  # prefixes, >= 1 row
    costs = g.row_costs(idx.counts().tolist(), 128, gl_list.C_ROW_TILES)
    assert [costs[r] for r in pool[1:]] == sorted((costs[r] for r in pool[1:]), reverse=True)
    mean = sum(costs) / plan.programs
    for lst, b in zip(lists, blists, strict=True):  # a row left the list iff it starts at or after the cut
        starts = [sum(costs[r] for r in b[:i]) for i in range(len(b))]
        assert len(lst) == max(1, sum(t < (1 - share) * mean for t in starts))
    assert plan.static_makespan <= plan.makespan + 1e-9 and plan.claim.tolist() == [0]
    assert plan.mean_load == pytest.approx(mean)


def test_light_first_moves_the_lightest_static_row_to_the_front():
    s = _seed()
    idx = _index(density=0.3, seed=s)
    a = dt.plan_dyntail(idx, programs=5, pool_share=0.2)
    b = dt.plan_dyntail(idx, programs=5, pool_share=0.2, light_first=True)
    costs = g.row_costs(idx.counts().tolist(), 128, gl_list.C_ROW_TILES)
    sa, sb = a.start.tolist(), b.start.tolist()
    assert sa == sb and a.pool.tolist() == b.pool.tolist()
    for p in range(5):
        la, lb = a.rows.tolist()[sa[p]:sa[p + 1]], b.rows.tolist()[sb[p]:sb[p + 1]]
        assert sorted(la) == sorted(lb) and costs[lb[0]] == min(costs[r] for r in la)


def test_arm_zeroes_the_claim_counter_and_rejects_other_plans():
    plan = dt.plan_dyntail(_index(seed=1), programs=4)
    plan.claim.fill_(77)
    dt.arm(plan)
    assert plan.claim.tolist() == [0]
    with pytest.raises(ValueError, match="gluon_fg_dyntail: plan must be a DynPlan"):
        dt.arm(gl_list.plan_ws2_list(_index(seed=1), programs=4))


@pytest.mark.parametrize("kw,msg", [
    (dict(pool_share=1.5), "pool_share=1.5 must be a number in"), (dict(pool_share=-0.1), "pool_share=-0.1"),
    (dict(pool_share=True), "pool_share=True"), (dict(lists=[[0], []]), "every program needs at least one row"),
    (dict(lists=[[0, 1], [1]]), "lists must hold distinct rows"), (dict(lists=[[0, 9]]), "lists must hold distinct rows in"),
])
def test_split_pool_bad_inputs(kw, msg):
    args = dict(costs=[1.0, 2.0, 3.0], lists=[[0, 1], [2]], pool_share=0.1) | kw
    with pytest.raises(ValueError, match=f"fgattn.gluon_fg_dyntail: {msg}"):
        dt.split_pool(args["costs"], args["lists"], args["pool_share"])


def test_plan_dyntail_bad_inputs_name_the_argument():
    idx = _index(seed=2)
    with pytest.raises(ValueError, match="programs=0 must be a positive int"):
        dt.plan_dyntail(idx, programs=0)
    with pytest.raises(ValueError, match="pool_share=2 must be a number"):
        dt.plan_dyntail(idx, programs=3, pool_share=2)


def test_simulate_claims_runs_every_pool_row_once_and_fills_the_idle_programs():
    s = _seed()
    rng = random.Random(s)
    static = [rng.uniform(80, 100) for _ in range(9)]
    pool = sorted((rng.uniform(1, 5) for _ in range(40)), reverse=True)
    got, mk = dt.simulate_claims(static, pool)
    assert sorted(i for lst in got for i in lst) == list(range(40))
    assert mk <= max(max(static), (sum(static) + sum(pool)) / 9 + max(pool)) + 1e-9
    assert sum(map(len, got[:1])) >= 0 and mk >= (sum(static) + sum(pool)) / 9 - 1e-9


# ------------------------------------------------------------------------------------------------ protocol model
def _run_protocol(lists, pool, tiles, rng, stages=3, slots=2):
    """Event model of the DYN kernel (gluon_fg._dyn_row_p / _dyn_row_c and the ws2 stage ring): per program a
    producer and two consumers as generators yielding wait predicates, scheduled in a random order.  Producer: per
    row each tile waits for its stage's release (item i - stages) and fills item i; after a row's tiles it claims the
    row after next (the row after the current one is known), writing ring slot k % slots after waiting until both
    consumers read claim k - slots.  Consumers: at a row start read the next row (static, or the ring slot, waiting
    for the producer's write), then per tile wait for the item to be filled and release the previous item (the row's
    last item is released at the next row's first tile, as the TMA row end does; the last at the end).  Returns the
    rows each partition ran per program and the final counter; raises on a deadlock."""
    counter = [0]
    state = []

    def producer(p, st):
        lst = lists[p]
        seq = []

        def nxt(pos, live):
            if pos < len(lst):
                return lst[pos]
            if not live:
                return -1
            c = counter[0]
            counter[0] += 1
            r = pool[c] if c < len(pool) else -1
            k = pos - len(lst)
            yield lambda: k < slots or st["read"].get(k - slots, 0) == 2
            st["ring"][k] = r
            return r

        pos, row = 0, lst[0]
        row_n = yield from _as_gen(nxt(1, True))
        it = 0
        while row >= 0:
            seq.append(row)
            for _ in range(tiles[row]):
                i = it
                yield lambda i=i: i < stages or st["released"].get(i - stages, 0) == 2
                st["filled"].add(i)
                it += 1
            pos, row = pos + 1, row_n
            row_n = yield from _as_gen(nxt(pos + 1, row >= 0))
        st["seq"]["prod"] = seq

    def consumer(p, st, half):
        lst = lists[p]
        seq, pos, row, it, held = [], 0, lists[p][0], 0, None
        while row >= 0:
            seq.append(row)
            pos_n = pos + 1
            if pos_n < len(lst):
                row_n = lst[pos_n]
            else:
                k = pos_n - len(lst)
                yield lambda k=k: k in st["ring"]
                row_n = st["ring"][k]
                st["read"][k] = st["read"].get(k, 0) + 1
            for _ in range(tiles[row]):
                i = it
                yield lambda i=i: i in st["filled"]
                if held is not None:
                    st["released"][held] = st["released"].get(held, 0) + 1
                held, it = i, it + 1
            pos, row = pos_n, row_n
        if held is not None:
            st["released"][held] = st["released"].get(held, 0) + 1
        st["seq"][f"c{half}"] = seq

    agents = []
    for p in range(len(lists)):
        st = dict(ring={}, read={}, filled=set(), released={}, seq={})
        state.append(st)
        agents += [producer(p, st), consumer(p, st, 0), consumer(p, st, 1)]
    waits = {a: None for a in agents}
    live = list(agents)
    while live:
        ready = [a for a in live if waits[a] is None or waits[a]()]
        if not ready:
            raise RuntimeError("deadlock")
        a = rng.choice(ready)
        try:
            waits[a] = next(a)
        except StopIteration:
            live.remove(a)
    return [s["seq"] for s in state], counter[0]


def _as_gen(x):
    """``yield from`` a plain value or a generator (the model's next-row helper is one or the other)."""
    if hasattr(x, "send"):
        return (yield from x)
    return x


@pytest.mark.parametrize("programs", [1, 3, 5])
def test_claim_ring_protocol_model_no_deadlock_same_rows_everywhere(programs):
    s = _seed()
    rng = random.Random(s)
    for _ in range(30):
        n = rng.randint(programs, 30)
        tiles = [rng.randint(1, 4) for _ in range(n)]
        rows = list(range(n))
        rng.shuffle(rows)
        cut = sorted(rng.sample(range(1, n), programs - 1)) if programs > 1 else []
        lists = [rows[a:b] for a, b in zip([0] + cut, cut + [n], strict=True)]
        n_pool = rng.randint(0, sum(len(x) - 1 for x in lists))
        pool = []
        for lst in lists:  # the pool: rows taken from the lists' ends (each keeps >= 1)
            while n_pool > len(pool) and len(lst) > 1 and rng.random() < 0.7:
                pool.append(lst.pop())
        seqs, counter = _run_protocol(lists, pool, tiles, rng)
        assert counter == len(pool) + programs  # every pool row claimed once, one failed claim per program
        assert all(sq["prod"] == sq["c0"] == sq["c1"] for sq in seqs)
        assert sorted(r for sq in seqs for r in sq["prod"]) == list(range(n))


# ------------------------------------------------------------------------------------------------ the probe's rule
def _rows(dyn: float, ctl: float = 1.0, cells=(("A", 0.02), ("A", 0.05), ("B", 0.02), ("B", 0.5))):
    out = []
    for shp, d in cells:
        for v, x in (("entry", ""), ("entry_ctl", ctl), ("dyn", dyn if d <= 0.05 else 1.0), ("dyn_lf", 1.0)):
            out.append(dict(shape=shp, density_target=str(d), variant=v, rel_entry=str(x)))
    return out


def test_probe_rule_pass_and_fail_paths():
    ok = {"dyn": (520, 0), "dyn_lf": (520, 0)}
    verdict, per, win = probe.rule_verdict(_rows(0.95), ok)
    assert verdict == "valid" and per["dyn"][0] == "eligible" and win == "dyn" and per["dyn_lf"][0] == "not eligible"
    assert probe.rule_verdict(_rows(0.95, ctl=1.02), ok)[0] == "void"
    assert probe.rule_verdict(_rows(0.975), ok)[1]["dyn"][0] == "not eligible"  # geo-mean 0.975 > 0.97
    assert probe.rule_verdict(_rows(0.95), {"dyn": (499, 0)})[1]["dyn"][0] == "not eligible"  # too few cases
    assert probe.rule_verdict(_rows(0.95), {"dyn": (520, 1)})[1]["dyn"][0] == "not eligible"
    assert probe.rule_verdict(_rows(0.95), None)[1]["dyn"][0] == "not eligible"
    bad = _rows(0.95)
    bad[-2]["rel_entry"] = "1.03"  # a d 0.5 cell above 1.02
    assert probe.rule_verdict(bad, ok)[1]["dyn"][0] == "not eligible"
    assert probe.check_counts([dict(variant="dyn", ok="True"), dict(variant="dyn", ok="False")]) == {"dyn": (2, 1)}


def test_probe_cli_errors(capsys):
    for argv, msg in ((["--rounds", "2", "--out", "x"], "--rounds: 2 < 3"),
                      (["--variants", "entry,zzz", "--out", "x"], "--variants: unknown ['zzz']"),
                      (["--timeline-cells", "12x1:q", "--out", "x"], "--timeline-cells: bad item"),
                      (["--dry-run", "--variants", "dyn"], "include it"),
                      (["--analyze", "/nonexistent.csv"], "--analyze: /nonexistent.csv is not a file")):
        with pytest.raises(SystemExit) as e:
            probe.parse_args(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ the call's record
RES = ROOT / "validation" / "results"


def test_committed_call_recomputes_not_eligible(capsys):
    verdict, per, winner = probe.analyze(RES / "kernels-h200-2026-12-01-dyntail.csv")
    out = capsys.readouterr().out
    assert "'dyn': (520, 0)" in out and "'dyn50': (520, 0)" in out  # the gzipped accuracy CSV was read
    assert verdict == "valid" and winner is None
    assert per["dyn"][0] == "not eligible" and per["dyn"][1] == [
        "geo-mean 0.981 over the 14 d <= 0.05 cells > 0.97"]  # the only reason: every cell <= 1.02, check passed
    assert "geo-mean 0.988" in per["dyn_lf"][1][0]


def test_committed_timeline_summary():
    import dyntail_plot

    rows = dyntail_plot.summary(dyntail_plot.spans(RES / "kernels-h200-2026-12-01-dyntail-timeline.csv"))
    by = {(r["cell"][:3], r["variant"]): [] for r in rows}
    for r in rows:
        by[(r["cell"][:3], r["variant"])].append(r["slowest_over_mean"])
    assert min(by[("H12", "list")]) > 1.10 and max(by[("H12", "dyn")]) < 1.06
    assert min(by[("H40", "list")]) > 1.17 and 1.14 <= min(by[("H40", "dyn")]) <= max(by[("H40", "dyn")]) < 1.16


# ------------------------------------------------------------------------------------------------ D3: the knob and route
CAND = ROOT / "kernels" / "logs" / "launch_configs-candidate-d3.json"


def test_split_pool_share_one_keeps_only_each_programs_first_row():
    costs = [5.0, 1.0, 3.0, 3.0, 2.0, 4.0]
    static, pool = dt.split_pool(costs, [[0, 1, 2], [5, 3], [4]], 1.0)
    assert static == [[0], [5], [4]] and pool == [2, 3, 1]  # heaviest first, ties in list order


@pytest.mark.parametrize("value,msg", [
    (True, "extra.gluon.dyntail=True must be a number in [0, 1]"), (-0.1, "dyntail=-0.1 must be a number"),
    (1.5, "dyntail=1.5 must be a number"), ("0.3", "dyntail='0.3' must be a number"),
])
def test_dyntail_knob_bad_values_name_the_entry(value, msg):
    from fgattn.launch import check_impl

    extra = dict(impl="gluon", gluon=dict(form="ws2", pipeline=1, fence=False, schedule="list", epilogue="tma_sel",
                                          dyntail=value))
    with pytest.raises(ValueError) as e:
        check_impl("fg", 128, 128, 1, extra, "t.json: entry fg/h200/D128/M128/g1")
    assert str(e.value).startswith("t.json: entry fg/h200/D128/M128/g1: ") and msg in str(e.value)


@pytest.mark.parametrize("knobs,msg", [
    (dict(schedule="walk"), "schedule='walk'"), (dict(epilogue="tma"), "epilogue='tma'"),
    (dict(tail64=True), "tail64=True"),
])
def test_dyntail_knob_needs_the_measured_list_form(knobs, msg):
    from fgattn.launch import check_impl

    g = dict(form="ws2", pipeline=1, fence=False, schedule="list", epilogue="tma_sel", dyntail=0.3) | knobs
    with pytest.raises(ValueError, match="needs extra.gluon.schedule='list', epilogue='tma_sel' and no tail64") as e:
        check_impl("fg", 128, 128, 1, dict(impl="gluon", gluon=g), "where")
    assert msg in str(e.value)
    g["dyntail"] = 0  # off: no constraint from the knob
    if "tail64" not in knobs and knobs.get("schedule") != "walk":
        assert check_impl("fg", 128, 128, 1, dict(impl="gluon", gluon=g), "where") == "gluon"


def test_bad_dyntail_in_a_table_file_names_file_and_entry(tmp_path):
    import json

    from fgattn.launch import load_table

    d = json.loads(CAND.read_text())
    for e in d["entries"]:
        if e["kernel"] == "fg" and e["head_dim"] == 128 and e["block_m"] == 128 and e["gran_n"] == 1:
            e["extra"]["gluon"]["dyntail"] = 2
    bad = tmp_path / "table.json"
    bad.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=rf"^{bad}: entry fg/h200/D128/M128/g1: extra.gluon.dyntail=2 must be"):
        load_table(str(bad))


def test_candidate_table_is_the_packaged_one_plus_the_knob():
    import json

    from fgattn.launch import _DATA, launch_config

    a, b = json.loads(_DATA.read_text()), json.loads(CAND.read_text())
    for ea, eb in zip(a["entries"], b["entries"], strict=True):
        if ea.get("extra", {}).get("gluon", {}).get("expand"):
            # session 17 (K) adopted the fg g16 / g64 expand entries after this research table was written: there the
            # candidate keeps the entries of its own packaged table (772420a), tl
            assert (ea["kernel"], ea["gran_n"]) == (eb["kernel"], eb["gran_n"]) and "impl" not in eb.get("extra", {})
            continue
        if (eb["kernel"], eb["gpu"], eb["head_dim"], eb["block_m"], eb["gran_n"]) == ("fg", "h200", 128, 128, 1):
            assert eb["extra"]["gluon"].pop("dyntail") == 0.3
            ea.pop("source"), eb.pop("source")
        assert ea == eb
    cand = launch_config("fg", "h200", 128, 128, 1, table_path=str(CAND))
    assert cand.gluon_dyntail() == 0.3 and "dyntail" not in cand.gluon_options()
    assert launch_config("fg", "h200", 128, 128, 1).gluon_dyntail() == 0.0  # the packaged entry: off
    assert launch_config("dense", "h200", 128, 128).gluon_dyntail() == 0.0


def test_cached_dyn_plan_is_memoised_per_index_and_share():
    idx = _index(seed=_seed() % 1000)
    a = dt.cached_dyn_plan(idx, 7, 0.3)
    assert a is dt.cached_dyn_plan(idx, 7, 0.3) and a.pool_share == 0.3 and a.programs == 7
    b = dt.cached_dyn_plan(idx, 7, 0.5)
    assert b is not a and b.n_pool >= a.n_pool
    assert gl_list.cached_list_plan(idx, 7) is not a  # the static list plan is its own entry


def test_route_launches_the_dynamic_tail_with_the_entrys_share(monkeypatch):
    from fgattn import attention
    from fgattn.launch import launch_config

    cand = launch_config("fg", "h200", 128, 128, 1, "fp32", table_path=str(CAND))
    idx = _index(h=2, n=700, seed=3)
    q, k, v = (torch.randn(1, 2, 700, 128) for _ in range(3))
    got = {}

    def fake(q_, k_, v_, index, *, plan, layout, sm_scale, out, epilogue):
        got.update(plan=plan, epilogue=epilogue, index=index)
        return "dyn"

    monkeypatch.setattr(attention, "fg_route", lambda *a, **kw: ("gluon", ""))
    monkeypatch.setattr(dt, "fg_attention_gluon_dyntail", fake)
    assert fgattn.fg_attention(q, k, v, idx, block_m=128, gran_n=1, config=cand) == "dyn"
    assert got["plan"].pool_share == 0.3 and got["epilogue"] == "tma_sel" and got["index"] is idx
    assert got["plan"] is dt.cached_dyn_plan(idx, attention._sm_count(q.device), 0.3)
    assert attention._dyn_why(q, cand, idx).startswith("schedule list + dyntail 0.3 (fgattn.gluon_fg_dyntail")
    off = launch_config("fg", "h200", 128, 128, 1, "fp32")
    assert attention._dyn_why(q, off, idx) is None


def _d3_timeline() -> dict[tuple[str, str, str], dict[int, int]]:
    import csv
    import gzip
    import io

    text = gzip.open(RES / "kernels-h200-2026-12-01-dyntail-d3-timeline.csv.gz", "rt", newline="").read()
    out: dict[tuple[str, str, str], dict[int, int]] = {}
    for r in csv.DictReader(io.StringIO(text)):
        out.setdefault((r["cell"][:3], r["variant"], r["launch"]), {})[int(r["smid"])] = int(r["span_cycles"])
    return out


def test_committed_d3_call_recomputes_not_eligible(capsys, monkeypatch):
    monkeypatch.setattr(probe, "CANDIDATES", ("cand",))  # as kernels/tools/dyntail_d3.py runs the rule
    verdict, per, winner = probe.analyze(RES / "kernels-h200-2026-12-01-dyntail-d3.csv")
    out = capsys.readouterr().out
    assert "'cand': (520, 0)" in out and "'dyn100': (520, 0)" in out  # the check through the route
    assert "[geo] dyn50: all 1.007 (18 cells), d <= 0.05 1.000 (14)" in out
    assert verdict == "valid" and winner is None and per["cand"][0] == "not eligible"
    assert per["cand"][1][-1] == "geo-mean 0.990 over the 14 d <= 0.05 cells > 0.97"
    assert sum("> 1.02 at" in w for w in per["cand"][1]) == 3


def test_committed_d3_timeline_tpc_pairs():
    """The slow programs of the packaged list launch are SM pairs (2t, 2t + 1); share 0.3 removes the tail."""
    for (cell, variant, launch), sp in _d3_timeline().items():
        assert sorted(sp) == list(range(132)), (cell, variant, launch)  # one CTA per SM, every SM
        mean = sum(sp.values()) / len(sp)
        slow = {s for s, v in sp.items() if v > 1.05 * mean}
        if variant == "list":
            assert max(sp.values()) / mean > 1.14 and len(slow) >= 20
            assert sum(s ^ 1 in slow for s in slow) >= 0.9 * len(slow)  # chance: about len(slow) / 131
        else:
            assert max(sp.values()) / mean < 1.035 and not slow
