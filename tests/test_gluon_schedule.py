"""The launch table's ``extra.gluon.schedule`` knob (issue 12, session 11 K3; default-off, the packaged table does
not set it): validation of every bad value with its one-line message (table file and passed ``config=``), the route
and dispatch of a ``schedule: "list"`` entry to ``fgattn.gluon_fg_list`` with its plan memoised per index, the walk
under CUDA-graph capture without a prepared plan, the packaged table routing exactly as before, and the cost model
refusing to price a list entry as a walk.  CPU only (the kernels are replaced by recorders), seconds."""

import dataclasses
import json
import random
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels")]

import fgattn  # noqa: E402
from fgattn import attention, gluon_fg, gluon_fg_list  # noqa: E402
from fgattn.launch import GLUON_KNOBS, launch_config, load_table  # noqa: E402

LIST = {"form": "ws2", "pipeline": 1, "fence": False, "schedule": "list"}
PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
#: the packaged table before session 13 adopted the list schedule (the entry walked)
WALK_TABLE = ROOT / "kernels" / "logs" / "launch_configs-at-d370267.json"
#: the packaged table before session 15 adopted the fg row end tma_sel
AT_300AD25 = ROOT / "kernels" / "logs" / "launch_configs-at-300ad25.json"


def _entry():
    return launch_config("fg", "h200", 128, 128, 1, table_path=str(PACKAGED))


def _walk_entry():
    return launch_config("fg", "h200", 128, 128, 1, table_path=str(WALK_TABLE))


def _cfg(knobs: dict):
    e = _entry()
    return dataclasses.replace(e, extra={**e.extra, "impl": "gluon", "gluon": dict(knobs)})


def _table(tmp_path: Path, gluon: dict) -> Path:
    e = load_table(str(PACKAGED))[("fg", "h200", 128, 128, 1)]
    data = {"entries": [{**e, "extra": {**e["extra"], "gluon": gluon}}]}
    p = tmp_path / "table.json"
    p.write_text(json.dumps(data))
    load_table.cache_clear()
    return p


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def _index(seed: int, h: int = 2, n: int = 700, order: bool = True):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(1, h, -(-n // 128), n, generator=g) < 0.3
    mask[:, 0, 0] = True  # one full (text-like) row
    return fgattn.build_index(mask, block_m=128, gran_n=1, order=order)


BAD = [
    ({**LIST, "schedule": "lst"}, r"extra\.gluon\.schedule='lst' must be one of \['walk', 'list'\]"),
    ({**LIST, "schedule": True}, r"extra\.gluon\.schedule=True must be one of \['walk', 'list'\]"),
    ({**LIST, "schedule": 1}, r"extra\.gluon\.schedule=1 must be one of \['walk', 'list'\]"),
    ({**LIST, "schedule": ["list"]}, r"extra\.gluon\.schedule=\['list'\] must be one of \['walk', 'list'\]"),
    ({**LIST, "schedule": None}, r"extra\.gluon\.schedule=None must be one of \['walk', 'list'\]"),
    ({"form": "ws", "fence": False, "schedule": "list"}, r"extra\.gluon\.schedule is a knob of form 'ws2' only"),
    ({"form": "persistent", "schedule": "list"}, r"extra\.gluon\.schedule is a knob of form 'ws2' only"),
    ({"form": "ws2", "schedule": "list"}, r"extra\.gluon\.schedule='list' runs fgattn\.gluon_fg_list's kernel, "
                                          r"which is form ws2 with .* only, not .*'pipeline': 0"),
    ({**LIST, "pipeline": 3}, r"schedule='list' runs .* not .*'pipeline': 3"),
    ({**LIST, "pingpong": True}, r"schedule='list' runs .* not .*'pingpong': True"),
    ({**LIST, "regs": [216, 64]}, r"schedule='list' runs .* not .*'regs': \[216, 64\]"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_schedule_in_a_table_one_line_naming_file_and_entry(tmp_path: Path, i: int) -> None:
    knobs, needle = BAD[i]
    p = _table(tmp_path, knobs)
    with pytest.raises(ValueError, match=needle) as ei:
        launch_config("fg", "h200", 128, 128, 1, table_path=str(p))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"{p}: entry fg/h200/D128/M128/g1: extra.gluon."), msg
    load_table.cache_clear()


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_schedule_in_a_passed_config_one_line(i: int) -> None:
    knobs, needle = BAD[i]
    q = torch.zeros(1, 1, 200, 128, dtype=torch.float16)
    idx = fgattn.build_index(torch.ones(1, 1, 2, 200, dtype=torch.bool), block_m=128)
    with pytest.raises(ValueError, match=needle) as ei:
        fgattn.fg_attention(q, q, q, idx, block_m=128, config=_cfg(knobs))
    assert "\n" not in str(ei.value) and str(ei.value).startswith("config: extra.gluon."), str(ei.value)


def test_good_schedules_load_and_read(tmp_path: Path) -> None:
    assert GLUON_KNOBS["schedule"] == (("walk", "list"), "walk")
    for knobs, want in ((LIST, "list"), ({**LIST, "schedule": "walk"}, "walk"), ({"form": "ws", "schedule": "walk"},
                                                                                  "walk")):
        p = _table(tmp_path, knobs)
        cfg = launch_config("fg", "h200", 128, 128, 1, table_path=str(p))
        assert cfg.gluon_schedule() == want
        assert "schedule" not in cfg.gluon_options()  # not an argument of fg_attention_gluon
        load_table.cache_clear()
    assert _entry().tl_config().gluon_schedule() == "walk"


def test_packaged_table_adopts_the_list_schedule() -> None:
    """Session 13: the packaged table's one Gluon entry runs the list schedule, with the same Gluon options as the
    walk entry before it (kernels/logs/launch_configs-at-d370267.json), which walks; no other entry names it."""
    e = launch_config("fg", "h200", 128, 128, 1, table_path=str(AT_300AD25))
    assert _entry().extra["gluon"] == {**LIST, "epilogue": "tma_sel"}  # session 15 (K7): the row end tma_sel
    assert e.extra["gluon"] == LIST
    assert e.gluon_schedule() == "list"
    assert e.gluon_options() == dict(form="ws2", pipeline=1, consumer_fence=False, exp_poly=0, pingpong=False,
                                     regs=None, epilogue="stg")
    raw = json.loads(PACKAGED.read_text())
    # fg g1 + block (s15); session 17 (K): the fg g16 / g64 entries run the g1 list kernel on the expanded index
    assert json.dumps(raw).count('"schedule"') == 3 and json.dumps(raw).count('"epilogue"') == 4
    assert json.dumps(raw).count('"expand": true') == 2
    w = _walk_entry()
    assert w.gluon_schedule() == "walk" and w.gluon_options() == e.gluon_options()
    assert "schedule" not in WALK_TABLE.read_text()


class _Q:
    """Just enough of a CUDA tensor for fg_route (no GPU needed)."""

    def __init__(self, dtype=torch.bfloat16):
        self.device = types.SimpleNamespace(type="cuda")
        self.dtype = dtype

    def data_ptr(self) -> int:
        return 1 << 20

    def stride(self):
        return (128 * 256, 128 * 256, 128, 1)

    def element_size(self) -> int:
        return 2 if self.dtype != torch.float32 else 4


@pytest.fixture
def sm90(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delenv("FGATTN_GLUON", raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda dev=None: (9, 0))
    monkeypatch.setattr(gluon_fg, "gluon_available", lambda: None)
    monkeypatch.setattr(attention, "_sm_count", lambda dev: 4)
    return monkeypatch


def test_route_of_a_list_entry_and_every_fallback_unchanged(sm90: pytest.MonkeyPatch) -> None:
    q, cfg = _Q(), _cfg(LIST)
    assert attention.fg_route(q, _walk_entry()) == ("gluon", "")  # the walk entry (table d370267): as before
    assert attention.fg_route(q, _entry()) == attention.fg_route(q, cfg)  # the packaged entry is a list entry
    impl, why = attention.fg_route(q, cfg)
    assert impl == "gluon" and why.startswith("schedule list (fgattn.gluon_fg_list"), why
    assert attention.fg_route(q, cfg, return_lse=True) == ("tl", "return_lse (the Gluon form has no LSE output)")
    assert attention.fg_route(_Q(torch.float32), cfg)[0] == "tl"
    sm90.setattr(torch.cuda, "get_device_capability", lambda dev=None: (8, 0))
    assert attention.fg_route(q, cfg) == ("tl", "sm_80 (the Gluon form needs sm_90)")
    sm90.setattr(torch.cuda, "get_device_capability", lambda dev=None: (9, 0))
    sm90.setenv("FGATTN_GLUON", "0")
    assert attention.fg_route(q, cfg) == ("tl", "FGATTN_GLUON=0")
    sm90.delenv("FGATTN_GLUON")
    sm90.setenv("TRITON_INTERPRET", "1")
    assert attention.fg_route(q, cfg)[0] == "tl"
    sm90.delenv("TRITON_INTERPRET")
    assert attention.fg_route(torch.zeros(1, 1, 256, 128, dtype=torch.float16), cfg)[0] == "tl"  # CPU


def test_route_under_capture_walks_without_a_prepared_plan(sm90: pytest.MonkeyPatch) -> None:
    idx, cfg = _index(_seed()), _cfg(LIST)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: True)
    impl, why = attention.fg_route(_Q(), cfg, index=idx)
    assert impl == "gluon" and why.startswith("schedule list -> walk: CUDA-graph capture"), why
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_fg_list: prepare_list_plan reads the row counts"):
        gluon_fg_list.prepare_list_plan(idx, 4)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: False)
    plan = gluon_fg_list.prepare_list_plan(idx, 4)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: True)
    assert attention.fg_route(_Q(), cfg, index=idx) == \
        ("gluon", "schedule list (fgattn.gluon_fg_list, plan prepared before capture)")
    assert gluon_fg_list.cached_list_plan(idx, 4) is plan  # no host work under capture


def _recorders(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []

    def walk(q, k, v, index, **kw):
        calls.append(("walk", index, None, kw))
        return q

    def lst(q, k, v, index, **kw):
        calls.append(("list", index, kw["plan"], kw))
        return q

    monkeypatch.setattr(attention, "fg_route", lambda q, cfg, **kw: ("gluon", ""))
    monkeypatch.setattr(gluon_fg, "fg_attention_gluon", walk)
    monkeypatch.setattr(gluon_fg_list, "fg_attention_gluon_list", lst)
    return calls


def test_dispatch_runs_the_list_kernel_with_a_plan_memoised_per_index(sm90: pytest.MonkeyPatch) -> None:
    calls = _recorders(sm90)
    seed = _seed()
    idx = _index(seed)
    q = torch.zeros(1, 2, 700, 128, dtype=torch.float16)
    for _ in range(2):
        fgattn.fg_attention(q, q, q, idx, block_m=128, config=_cfg(LIST))
    assert [c[0] for c in calls] == ["list", "list"]
    p1, p2 = calls[0][2], calls[1][2]
    assert p1 is p2 and p1.programs == 4 and calls[0][3]["programs"] == 4  # built once, reused
    ref = gluon_fg_list.plan_ws2_list(idx, programs=4)
    assert torch.equal(p1.rows, ref.rows) and torch.equal(p1.start, ref.start) and p1.schedule == "list"
    idx.indices.add_(0)  # an in-place write (version bump): a new plan; the old one stays alive for graphs
    fgattn.fg_attention(q, q, q, idx, block_m=128, config=_cfg(LIST))
    assert calls[2][2] is not p1 and len(gluon_fg_list._plans_of(idx.offsets)) == 2
    # an index without order: the natural order's plan
    idx2 = _index(seed, order=False)
    fgattn.fg_attention(q, q, q, idx2, block_m=128, config=_cfg(LIST))
    nat = gluon_fg_list.plan_ws2_list(idx2, programs=4)
    assert torch.equal(calls[3][2].rows, nat.rows)
    # under capture with no plan: the walk, with the entry's Gluon options
    idx3 = _index(seed + 1)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: True)
    fgattn.fg_attention(q, q, q, idx3, block_m=128, config=_cfg(LIST))
    assert calls[4][0] == "walk" and calls[4][3]["form"] == "ws2" and calls[4][3]["pipeline"] == 1
    assert "schedule" not in calls[4][3]


def test_walk_entry_dispatches_the_walk_exactly_as_before(sm90: pytest.MonkeyPatch) -> None:
    calls = _recorders(sm90)
    idx = _index(_seed())
    q = torch.zeros(1, 2, 700, 128, dtype=torch.float16)
    fgattn.fg_attention(q, q, q, idx, block_m=128, config=_walk_entry())
    fgattn.fg_attention(q, q, q, idx, block_m=128, config=_cfg({**LIST, "schedule": "walk"}))
    want = dict(block_m=128, gran_n=1, layout="bhnd", sm_scale=None, programs=4, out=None, form="ws2", pipeline=1,
                consumer_fence=False, exp_poly=0, pingpong=False, regs=None, epilogue="stg")
    assert [c[0] for c in calls] == ["walk", "walk"]
    assert calls[0][3] == want and calls[1][3] == want and calls[0][1] is idx
    assert gluon_fg_list._plans_of(idx.offsets) is None  # no plan built for a walk entry


def test_packaged_entry_dispatches_the_list_schedule(sm90: pytest.MonkeyPatch) -> None:
    calls = _recorders(sm90)
    idx = _index(_seed())
    q = torch.zeros(1, 2, 700, 128, dtype=torch.float16)
    fgattn.fg_attention(q, q, q, idx, block_m=128)  # the packaged table's entry
    assert [c[0] for c in calls] == ["list"] and calls[0][1] is idx
    ref = gluon_fg_list.plan_ws2_list(idx, programs=4)
    assert torch.equal(calls[0][2].rows, ref.rows) and torch.equal(calls[0][2].start, ref.start)


def _model_cfgs():
    from fgsim.launchcfg import launch_config as fl_config
    from fgsim.model.gluon import tl_config

    cfg = tl_config(fl_config("fg", "h200", 128, 128, 1))
    ex = {**cfg.extra, "order": "lpt"}  # an index built with order=True (the sweep's): heavy rows launch first
    walk = dataclasses.replace(cfg, extra={**ex, "impl": "gluon", "gluon": {**LIST, "schedule": "walk"}})
    lst = dataclasses.replace(cfg, extra={**ex, "impl": "gluon", "gluon": LIST})
    return walk, lst


def test_cost_model_prices_the_list_schedule_at_most_its_walk_twin_on_text_rows() -> None:
    """A list-scheduled entry is priced by greedy list scheduling over the same per-row cycles: below its walk twin
    on a skewed workload (text query blocks attending to everything) in LPT launch order, and not above it on a
    uniform one."""
    import numpy as np

    from fgsim.hardware import load_gpu
    from fgsim.model.assemble import predict_counts, timeline
    from fgsim.model.gluon import knobs
    from fgsim.model.params import ModelParams

    gpu = load_gpu("h200")
    par = ModelParams(mma_eff=0.844, fp32_per_score=5.93, mma_wait_cycles=60.7, serial_wgmma_cycles=20.7,
                      tile_sync_cycles=74.1, ldst_cycles=4.67, mem_latency_cycles=426.0,
                      l2_bw_eff=0.978, wgmma_min_cycles=48.2, row_cycles=4350.0, launch_us=3.23, overlap_p=1.91,
                      share_p=1.44)
    walk, lst = _model_cfgs()
    assert knobs(walk)["schedule"] == "walk" and knobs(lst)["schedule"] == "list"
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, heads = 8192, 12
    qb = n // 128
    for text in (4, 0):
        c = np.clip(rng.normal(0.05 * n, 0.005 * n, size=(heads, qb)).round(), 0, n).astype(np.int64)
        c[:, qb - text:] = n  # text query blocks (the last ones, as in a video DiT) attend to every key
        t_walk = predict_counts(c, n, walk, gpu, par, resources={})[0]
        t_list = predict_counts(c, n, lst, gpu, par, resources={})[0]
        print("text", text, "walk", t_walk, "list", t_list)
        assert t_list <= t_walk
        if text:  # the walk gives a text row's program its full share of light rows too; the list does not
            assert t_list < 0.9 * t_walk
            ends = [timeline(c, n, cf, gpu, par)[1] for cf in (walk, lst)]  # one bar per program
            assert ends[0].size == ends[1].size == gpu.sm_count and ends[1].max() < 0.9 * ends[0].max()


def test_cost_model_assigns_rows_as_fgattn_plans_them() -> None:
    """fgsim.scheduler.list_programs with the model's planned costs is fgattn.gluon_fg_list.plan_ws2_list's plan."""
    import numpy as np

    from fgsim.model.gluon import LIST_C_ROW_TILES
    from fgsim.scheduler import list_programs

    assert LIST_C_ROW_TILES == gluon_fg_list.C_ROW_TILES
    idx = _index(_seed(), h=3, n=1500)
    counts = idx.counts().numpy().astype(np.int64)
    plan_cost = LIST_C_ROW_TILES + np.maximum(np.ceil(np.arange(1501) / 128), 1.0)
    order = idx.order.numpy().astype(np.int64)
    for g in (1, 5, 7):
        prog = list_programs(counts[order], plan_cost, g)
        lists = [[int(order[i]) for i in range(order.size) if prog[i] == p] for p in range(g)]
        plan = gluon_fg_list.plan_ws2_list(idx, programs=g)
        st, flat = plan.start.tolist(), plan.rows.tolist()
        assert lists == [flat[st[p]:st[p + 1]] for p in range(g)]


def test_memoised_plans_die_with_their_index(sm90: pytest.MonkeyPatch) -> None:
    import gc

    idx = _index(_seed())
    gluon_fg_list.cached_list_plan(idx, 4)
    key = id(idx.offsets)
    assert key in gluon_fg_list._PLANS
    del idx
    gc.collect()
    assert key not in gluon_fg_list._PLANS
