"""fgattn.l2_plan (issue 12 research, session 14: an L2-aware list plan for the Gluon ws2 fg entry) and
kernels/tools/l2plan_probe.py's pure parts: the band order, plan validity (every row once, every program busy, the
packaged plan format, Graham's bound, balance within 2 % of the packaged list plan on window masks), every
bad-input message, the probe's arguments and pre-registered rule, and the LRU model (numba path = pure-Python
reference).  The kernel runs only on an sm_90 GPU (the probe checks it there)."""

import functools
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import fgattn  # noqa: E402
import l2plan_probe as probe  # noqa: E402
from fgattn import gluon_fg_list as gl_list  # noqa: E402
from fgattn import gluon_fg_m64 as g  # noqa: E402
from fgattn import l2_plan  # noqa: E402
from fgattn.masks import window_mask, with_text  # noqa: E402


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


@functools.cache
def _window_index(h: int = 6, density: float = 0.05, text: int = 0, grid: tuple[int, int, int] = (8, 16, 32)):
    """A small window mask as ``fgattn.masks.window_mask`` builds them (per-head anisotropic 3D window around each
    query block's bounding box, 64 sink keys), with the window scale set directly from ``density`` (no bisection:
    fast), + ``text`` full text tokens (``with_text``)."""
    t, y, x = grid
    n = t * y * x
    ar = torch.arange(n)
    coords = torch.stack([ar // (y * x), (ar // x) % y, ar % x], dim=1)
    blocks = coords.reshape(-1, 128, 3)
    lo, hi = blocks.min(1).values, blocks.max(1).values
    dist = (lo[:, None, :] - coords[None]).clamp(min=0) + (coords[None] - hi[:, None, :]).clamp(min=0)
    weights = 0.5 + torch.rand(h, 3, generator=torch.Generator().manual_seed(7))
    win = (density ** (1 / 3) * 0.5 * weights * torch.tensor(grid, dtype=torch.float32)).floor()
    keep = (dist[None] <= win[:, None, None, :]).all(-1)
    keep[..., :64] = True
    mask = keep.unsqueeze(0)
    if text:
        mask = with_text(mask, text, 128)
    return fgattn.build_index(mask, block_m=128, gran_n=1, order=True)


def _random_index(h: int = 3, n: int = 3001, density: float = 0.2, text_rows: int = 0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    qb = -(-n // 128)
    mask = torch.rand(1, h, qb, n, generator=gen) < density
    mask[:, :, qb - text_rows:] = True  # full rows at each head's end (as text tokens' query blocks)
    return fgattn.build_index(mask, block_m=128, gran_n=1, order=True)


def _lists(plan):
    st, flat = plan.start.tolist(), plan.rows.tolist()
    return [flat[st[i]:st[i + 1]] for i in range(plan.programs)]


# ------------------------------------------------------------------------------------------------ band order
def test_band_order_is_a_permutation_early_first_then_band_then_lpt_tail():
    s = _seed()
    rng = random.Random(s)
    qb, heads, programs = 20, 5, 7
    costs = [3.0 + rng.randint(1, 6) for _ in range(qb * heads)]
    costs[13] = costs[57] = 400.0  # far heavier than the work after them: must start first
    order = l2_plan.band_order(costs, qb, programs, early_share=0.1, tail_waves=2)
    assert sorted(order) == list(range(qb * heads))
    assert order[:2] == [13, 57]  # early rows, heaviest first (ties: lower row first)
    tail = 2 * programs
    band, last = order[2:len(order) - tail], order[len(order) - tail:]
    assert band == sorted(band)  # head-major, query-block order
    assert max(band) < min(last) or sorted(band + last) == sorted(set(range(qb * heads)) - {13, 57})
    assert [costs[r] for r in last] == sorted((costs[r] for r in last), reverse=True)  # LPT tail
    assert set(last) == set(sorted(set(range(qb * heads)) - {13, 57})[-tail:])


def test_band_order_without_early_or_tail_is_row_order():
    costs = [4.0] * 60
    assert l2_plan.band_order(costs, 12, 5, early_share=1e5, tail_waves=0) == list(range(60))


def test_band_order_lpt_inside_a_head_is_head_major_heaviest_first():
    s = _seed()
    rng = random.Random(s)
    costs = [3.0 + rng.randint(1, 9) for _ in range(40)]
    order = l2_plan.band_order(costs, 10, 3, early_share=1e5, tail_waves=0, within="lpt")
    assert order == sorted(range(40), key=lambda r: (r // 10, -costs[r], r))
    plan = l2_plan.plan_l2_band(_random_index(seed=s), programs=7, within="lpt", max_ratio=1e5)
    assert plan.schedule == "l2band e0.1 t1 lpt"


def test_band_order_promotes_a_row_only_when_the_work_after_it_cannot_absorb_it():
    # 4 programs, 10 rows of cost 4 then one of cost 20 at the end: after = 0 -> promoted (20 > 0 + 0.1 * 15)
    costs = [4.0] * 10 + [20.0]
    assert l2_plan.band_order(costs, 11, 4, early_share=0.1, tail_waves=0)[0] == 10
    # the same row first in the band: 40 units after it (10 per program) + 1.5 slack < 20 -> promoted; at cost 11
    # (<= 10 + 1.5) it stays in the band
    assert l2_plan.band_order([20.0] + [4.0] * 10, 11, 4, early_share=0.1, tail_waves=0)[0] == 0
    costs = [11.0] + [4.0] * 10
    assert l2_plan.band_order(costs, 11, 4, early_share=0.1, tail_waves=0) == list(range(11))


@pytest.mark.parametrize("kw,msg", [
    (dict(n_qblocks=7), "n_qblocks=7 must be a positive int dividing the row count 60"),
    (dict(n_qblocks=0), "n_qblocks=0 must be a positive int dividing the row count 60"),
    (dict(programs=0), "programs=0 must be a positive int"),
    (dict(programs=True), "programs=True must be a positive int"),
    (dict(early_share=-1), "early_share=-1 must be a number in [0, 1e6)"),
    (dict(tail_waves="2"), "tail_waves='2' must be a number in [0, 1e6)"),
    (dict(costs=[-1.0] + [1.0] * 59), "costs must be non-negative numbers"),
    (dict(within="hilbert"), "within='hilbert' must be 'qb' or 'lpt'"),
])
def test_band_order_bad_inputs_one_line_each(kw, msg):
    args = dict(costs=[1.0] * 60, n_qblocks=12, programs=4) | kw
    with pytest.raises(ValueError) as e:
        l2_plan.band_order(args.pop("costs"), args.pop("n_qblocks"), args.pop("programs"), **args)
    assert str(e.value) == f"fgattn.l2_plan: {msg}"


# ------------------------------------------------------------------------------------------------ the plan
@pytest.mark.parametrize("programs", [1, 5, 17, 132])
def test_band_plan_runs_every_row_once_in_the_packaged_format_within_graham_bound(programs):
    s = _seed()
    idx = _random_index(density=random.Random(s).uniform(0.02, 0.6), text_rows=2, seed=s)
    first = l2_plan.CANDIDATES[0]
    plan = l2_plan.plan_l2_band(idx, programs=programs, max_ratio=1e5)  # the first candidate, whatever its balance
    ref = gl_list.plan_ws2_list(idx, programs=programs)
    assert type(plan) is type(ref) and plan.schedule == f"l2band e{first[0]:g} t{first[1]:g}" and (plan.lanes, plan.n_rows) == (1, idx.n_rows)
    assert plan.rows.dtype == plan.start.dtype == torch.int32 and plan.start.numel() == plan.programs + 1
    lists = _lists(plan)
    assert sorted(r for lst in lists for r in lst) == list(range(idx.n_rows))
    assert plan.programs == min(programs, idx.n_rows) and all(lists)
    costs = g.row_costs(idx.counts().tolist(), 128, gl_list.C_ROW_TILES)
    loads = [sum(costs[r] for r in lst) for lst in lists]
    assert plan.makespan == pytest.approx(max(loads)) and plan.mean_load == pytest.approx(sum(loads) / len(loads))
    assert plan.makespan <= l2_plan.graham_bound(costs, plan.programs) + 1e-9
    order = l2_plan.band_order(costs, idx.n_qblocks, plan.programs, early_share=first[0], tail_waves=first[1])
    pos = {r: i for i, r in enumerate(order)}
    assert all([pos[r] for r in lst] == sorted(pos[r] for r in lst) for lst in lists)  # assignment order per program


@pytest.mark.parametrize("density,text", [(0.02, 0), (0.1, 0), (0.5, 0), (0.05, 300), (0.2, 300)])
def test_band_plan_makespan_within_max_ratio_of_the_list_plan_on_window_masks(density, text):
    idx = _window_index(6, density, text)
    for programs in (16, 40):
        band = l2_plan.plan_l2_band(idx, programs=programs)
        lst = gl_list.plan_ws2_list(idx, programs=programs)
        assert band.makespan <= l2_plan.MAX_RATIO * lst.makespan + 1e-9, (programs, band.schedule)
        assert band.mean_load == pytest.approx(lst.mean_load)


def test_band_plan_falls_back_to_the_list_plan_when_no_candidate_balances():
    idx = _random_index(density=0.1, text_rows=3, seed=3)
    band = l2_plan.plan_l2_band(idx, programs=40, candidates=())
    lst = gl_list.plan_ws2_list(idx, programs=40)
    assert band.schedule == "l2band fallback list" and band.makespan == lst.makespan
    assert torch.equal(band.rows, lst.rows) and torch.equal(band.start, lst.start)
    # a candidate that balances badly is skipped for the next one: no tail, nothing early, 3 full rows per head
    # at each head's end -> the last head's full rows end the launch
    bad = l2_plan.plan_l2_band(idx, programs=40, candidates=((1e5, 0.0), l2_plan.CANDIDATES[0]), max_ratio=1.0)
    assert bad.schedule in ("l2band e0.1 t1", "l2band fallback list") and bad.makespan <= lst.makespan


@pytest.mark.parametrize("kw,msg", [
    (dict(programs=0), "programs=0 must be a positive int"),
    (dict(programs=2.0), "programs=2.0 must be a positive int"),
    (dict(c_row=-1), "c_row=-1 must be a number in [0, 1e6) (tile units)"),
    (dict(c_row=True), "c_row=True must be a number in [0, 1e6) (tile units)"),
    (dict(max_ratio=0.99), "max_ratio=0.99 must be a number in [1, 1e6)"),
    (dict(candidates=((0.1, -0.5),)), "tail_waves=-0.5 must be a number in [0, 1e6)"),
])
def test_plan_bad_inputs_one_line_each(kw, msg):
    idx = _random_index(h=1, n=600)
    with pytest.raises(ValueError) as e:
        l2_plan.plan_l2_band(idx, **(dict(programs=4) | kw))
    assert str(e.value) == f"fgattn.l2_plan: {msg}"


def test_plan_rejects_wrong_index():
    with pytest.raises(ValueError, match=r"^fgattn.l2_plan: index must be an FgIndex, got dict$"):
        l2_plan.plan_l2_band({}, programs=4)
    mask = torch.rand(1, 1, 5, 600) < 0.3
    idx = fgattn.build_index(mask, block_m=128, gran_n=16)
    with pytest.raises(ValueError, match=r"block_m=128, gran_n=16 \(the ws2 form needs 128, 1\)$"):
        l2_plan.plan_l2_band(idx, programs=4)


def test_graham_bound():
    assert l2_plan.graham_bound([4.0, 4.0, 8.0], 2) == pytest.approx(8.0 + 0.5 * 8.0)
    assert l2_plan.graham_bound([5.0], 9) == pytest.approx(5.0)


# ------------------------------------------------------------------------------------------------ the probe
def test_probe_dry_run(capsys):
    assert probe.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"12x32760+0": [0.02, 0.05, 0.1, 0.5]' in out and '"40x75600+0": [0.02, 0.05, 0.1, 0.5]' in out
    assert '"variants": ["entry", "entry_ctl", "l2band"]' in out and '"check": 100' in out


@pytest.mark.parametrize("argv,msg", [
    (["--variants", "entry,bogus"], "--variants: unknown ['bogus']"),
    (["--variants", "l2band"], "--variants: every ratio is paired with 'entry'; include it"),
    (["--rounds", "2"], "--rounds: 2 < 3"),
    (["--check", "-1"], "--check: -1 must be >= 0"),
    (["--densities", "0.02,2"], "--densities: '0.02,2' must lie in (0, 1]"),
    (["--densities", "x"], "--densities: 'x' is not a comma-separated list"),
    (["--model-caps-mb", "25,x"], "--model-caps-mb: '25,x' is not a comma-separated list of numbers"),
    (["--model-caps-mb", "0"], "--model-caps-mb: '0' must be positive MiB"),
    (["--shapes", "12x"], "--shapes: bad item '12x'"),
    ([], "--out is required for a GPU run"),
    (["--analyze", "/nonexistent.csv"], "--analyze: /nonexistent.csv is not a file"),
])
def test_probe_argument_errors(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        probe.parse_args(argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def _rows(ctl, band):
    cells = [("H12 N32760 D128", 0.02), ("H12 N32760 D128", 0.05), ("H12 N32760 D128", 0.5), ("H40 N75600 D128", 0.02)]
    out = []
    for (shape, d), c, b in zip(cells, ctl, band, strict=True):
        out += [dict(shape=shape, density_target=str(d), variant="entry", rel_entry=""),
                dict(shape=shape, density_target=str(d), variant="entry_ctl", rel_entry=str(c)),
                dict(shape=shape, density_target=str(d), variant="l2band", rel_entry=str(b))]
    return out


@pytest.mark.parametrize("ctl,band,verdict,why", [
    ([1.0, 1.005, 0.995, 1.0], [0.96, 0.97, 1.0, 0.975], "eligible", "geo-mean at d <= 0.05 0.968"),
    ([1.0, 1.0, 1.0, 1.0], [0.96, 0.97, 1.03, 0.96], "not eligible", "l2band 1.030 > 1.02 at H12 N32760 D128 d 0.5"),
    ([1.0, 1.0, 1.0, 1.0], [0.99, 0.985, 1.0, 0.98], "not eligible", "l2band geo-mean 0.985 over the d <= 0.05"),
    ([1.0, 1.05, 1.0, 1.0], [0.9, 0.9, 0.9, 0.9], "void", "entry_ctl 1.050 at H12 N32760 D128 d 0.05 outside 1 +- 0.04"),
    ([1.02, 1.02, 1.02, 1.0], [0.9, 0.9, 0.9, 0.9], "void", "entry_ctl geo-mean 1.015 outside 1 +- 0.01"),
])
def test_probe_rule_verdict(ctl, band, verdict, why):
    v, reasons = probe.rule_verdict(_rows(ctl, band))
    assert v == verdict and any(why in r for r in reasons), reasons


def test_probe_rule_needs_pairs_and_a_passing_check():
    rows = _rows([1.0] * 4, [0.9] * 4)
    assert probe.rule_verdict(rows, check_ok=False) == ("not eligible", ["the check failed"])
    assert probe.rule_verdict([r for r in rows if r["variant"] != "entry_ctl"])[0] == "void"


def test_probe_analyze_prints_the_rule(tmp_path, capsys):
    import csv

    rows = [dict(r, ms="1.0", rel_entry_min="", rel_entry_max="", plan_makespan_over_mean="1.01")
            for r in _rows([1.0] * 4, [0.95] * 4)]
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert probe.main(["--analyze", str(path)]) == 0
    assert "[rule] eligible" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ L2 model
def test_lru_hand_cases():
    ids = np.array([0, 1, 0, 2, 1, 0, 9, 10], dtype=np.int64)  # 9, 10: fresh (>= key_space 8)
    # cap 1: re-touches of 0, 1, 0 all miss; cap 2: 0 hits (1 between), 1 misses (0, 2 between), 0 misses
    # (2, 1 between); cap 3: all hit
    for fn in (lambda c: probe._lru_python(ids, c, 8), lambda c: probe.lru_misses(ids, 8, c)):
        assert tuple(fn([1, 2, 3])) == (3, [3, 2, 0])


def test_lru_numba_equals_the_python_reference():
    s = _seed()
    rng = np.random.default_rng(s)
    ids = np.concatenate([rng.integers(0, 50, 400), 50 + np.arange(30), rng.integers(0, 50, 300)])
    caps = [1, 7, 20, 45, 60]
    assert tuple(probe.lru_misses(ids, 50, caps)) == tuple(probe._lru_python(ids, caps, 50))


def test_access_stream_orders_tiles_by_modelled_time_and_streams_q_and_o():
    # 2 rows of 1 head, n_keys 10: row 0 keeps keys [1, 2, 3], row 1 keeps [2, 5]; block_n 2 -> 2 tiles / 1 tile
    off = np.array([0, 3, 5])
    ind = np.array([1, 2, 3, 2, 5], dtype=np.int32)
    ids, ks = probe.access_stream(off, ind, 10, 2, [[0], [1]], c_row=2.0, block_n=2, q_units=1, o_units=1)
    assert ks == 10
    # program 0: Q@0, tile0@1 (keys 1 2), tile1@2 (3), O@4; program 1: Q@0, tile0@1 (2 5), O@3 (ties -> program 0)
    assert ids.tolist() == [10, 11, 1, 2, 2, 5, 3, 12, 13]


def test_model_rows_band_plan_reads_less_on_a_window_mask():
    idx = _window_index(6, 0.05)
    rows = {r["variant"]: r for r in probe.model_rows(idx, [1.0, 4.0], programs=16)}
    assert set(rows) == {"entry", "l2band", "l2band_lpt"}
    kv = rows["entry"]["kv_bytes"]
    for r in rows.values():
        assert kv <= r["kv_dram_bytes_l2_4MiB"] <= r["kv_dram_bytes_l2_1MiB"] <= r["gathered_bytes"]
    assert rows["l2band"]["kv_dram_bytes_l2_1MiB"] < rows["entry"]["kv_dram_bytes_l2_1MiB"]


def test_probe_time_shapes_end_to_end_with_stubbed_gpu(tmp_path, monkeypatch):
    """The timing loop on the CPU: tiny window indexes, the GPU calls and the graph timing stubbed (entry_ctl 1.0x,
    l2band 0.9x the entry in every round): the CSV has every cell, its plans, the paired ratios and the rule."""
    import csv
    import types

    import bench_kernels
    import entry_regress

    s = _seed()
    rng = random.Random(s)
    props = types.SimpleNamespace(multi_processor_count=16, L2_cache_size=50 * 2**20)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a: props)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda *a: None)
    monkeypatch.setattr(bench_kernels, "make_qkv", lambda b, h, n, d, sets: [
        tuple(torch.zeros(b, h, n, d, dtype=torch.bfloat16) for _ in range(3))] * sets)
    monkeypatch.setattr(entry_regress, "build_index", lambda h, nv, nt, dt_, dev: _window_index(h, dt_, nt))

    class Clock:
        def __init__(self, period):
            pass

        def window(self, t0, t1):
            return "sm 1980 (1980-1980) MHz"

        def stop(self):
            pass

    def timed_rounds(cases, sets, rounds, target_ms, shuffle_seed=None):
        base = [1.0 + rng.random() for _ in range(rounds)]
        for c in cases:
            c["reps"] = 3
            c["ms"] = [b * {"entry": 1.0, "entry_ctl": 1.0, "l2band": 0.9}[c["variant"]] for b in base]

    monkeypatch.setattr(bench_kernels, "ClockSampler", Clock)
    monkeypatch.setattr(bench_kernels, "timed_rounds", timed_rounds)
    args = probe.parse_args(["--out", str(tmp_path), "--shapes", "6x4096+300", "--densities", "0.05,0.2",
                             "--rounds", "3"])
    path = probe.time_shapes(args, dict(date="2026-11-30T22:00:00Z", gpu_name="stub"))
    rows = list(csv.DictReader(open(path, newline="")))
    assert [(r["density_target"], r["variant"]) for r in rows] == [
        (d, v) for d in ("0.05", "0.2") for v in ("entry", "entry_ctl", "l2band")]
    rel = {(r["density_target"], r["variant"]): r["rel_entry"] for r in rows}
    assert rel[("0.05", "entry")] == "" and rel[("0.2", "entry_ctl")] == "1.0" and rel[("0.05", "l2band")] == "0.9"
    assert all("l2band e" in r["config"] or "fallback" in r["config"] for r in rows if r["variant"] == "l2band")
    assert all("packaged table (tl" in r["config"] for r in rows if r["variant"] == "entry")  # CPU q: the tl route
    assert all(r["clocks_under_load"].startswith("sm 1980") and r["l2_cache_bytes"] == str(50 * 2**20) for r in rows)
    assert probe.rule_verdict(rows)[0] == "eligible"


@pytest.mark.parametrize("n,density,heads", [(4096, 0.05, 3), (4096, 0.3, 2)])
def test_probe_window_mask_cpu_equals_window_mask(n, density, heads):
    assert torch.equal(probe.window_mask_cpu(heads, n, density),
                       window_mask(1, heads, n, 128, density, device="cpu"))


def test_probe_window_mask_cpu_needs_a_full_grid():
    with pytest.raises(ValueError, match=r"^window_mask_cpu: n=3000 does not fill its grid \(15, 15, 14\)$"):
        probe.window_mask_cpu(1, 3000, 0.1)
