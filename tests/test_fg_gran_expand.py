"""Gran-16 / 64 fg entries through the gran-1 Gluon list kernel (issue 12, session 17, helper K: kernels/NOTES.md
"Session 17, K"): the index expansion against a pure-Python reference (hypothesis over N, gran, runs at the sequence
end), its memo, the launch-table knobs ``extra.gluon.expand`` / ``extra.gluon.c_row`` (each bad value one line
naming the file and entry), the route and dispatch (kernels replaced by recorders: CPU only), and the cost model
pricing such an entry as the Gluon list form on the expanded key counts, with the table's planner row cost."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels")]

import fgattn  # noqa: E402
from fgattn import attention, gluon_fg, gluon_fg_list, gran_expand  # noqa: E402
from fgattn.launch import EXPAND_KEYS, launch_config, load_table  # noqa: E402

PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
CAND_EXPAND = ROOT / "kernels" / "logs" / "launch_configs-candidate-s17k-expand.json"
CAND_CROW = ROOT / "kernels" / "logs" / "launch_configs-candidate-s17k-crow.json"
LIST = {"form": "ws2", "pipeline": 1, "fence": False, "schedule": "list", "epilogue": "tma_sel"}


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def _gran_index(seed: int, g: int, n: int, h: int = 2, b: int = 1, density: float = 0.3, order: bool = True):
    """A gran-g index of random runs; the last run (clipped at n when g does not divide n) is kept in some rows, one
    query block is empty and one full."""
    gen = torch.Generator().manual_seed(seed)
    qb, nt = -(-n // 128), -(-n // g)
    tiles = torch.rand(b, h, qb, nt, generator=gen) < density
    tiles[0, 0, 0] = False
    tiles[0, -1, -1] = True
    tiles[..., -1] |= torch.rand(b, h, qb, generator=gen) < 0.5  # runs at the sequence end
    mask = tiles.repeat_interleave(g, dim=-1)[..., :n]
    return fgattn.build_index(mask, block_m=128, gran_n=g, order=order)


# ------------------------------------------------------------------------------------------------ expansion
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 700), g=st.sampled_from([16, 64]), seed=st.integers(0, 2**31 - 1),
       order=st.booleans(), h=st.integers(1, 3))
def test_expansion_equals_the_python_reference(n: int, g: int, seed: int, order: bool, h: int) -> None:
    idx = _gran_index(seed, g, n, h=h, order=order)
    ex = gran_expand.expand_index(idx)
    assert (ex.gran_n, ex.block_m, ex.n_keys, ex.batch, ex.heads, ex.n_qblocks) == (1, 128, n, 1, h, idx.n_qblocks)
    assert ex.order is idx.order and ex.indices.dtype == torch.int32 and ex.offsets.dtype == torch.int64
    off, ind = idx.offsets.tolist(), idx.indices.tolist()
    eoff, eind = ex.offsets.tolist(), ex.indices.tolist()
    assert len(eoff) == len(off) and eoff[0] == 0 and eoff[-1] == len(eind)
    for r in range(idx.n_rows):
        want = gran_expand.expand_runs(ind[off[r]:off[r + 1]], g, n)
        assert eind[eoff[r]:eoff[r + 1]] == want, (r, n, g)
    fgattn.check_index(ex)  # sorted, unique, in range
    assert ex.kept_keys() == idx.kept_keys()  # the same kept (query block, key) pairs
    assert ex.density(n) == pytest.approx(idx.density(n), rel=1e-12)


def test_expand_runs_reference_and_its_bad_input() -> None:
    assert gran_expand.expand_runs([0, 2], 4, 10) == [0, 1, 2, 3, 8, 9]  # the last run clipped at n = 10
    assert gran_expand.expand_runs([], 16, 10) == []
    with pytest.raises(ValueError, match=r"^fgattn\.gran_expand: gran_n=0 must be a positive int$"):
        gran_expand.expand_runs([0], 0, 10)
    with pytest.raises(ValueError, match=r"^fgattn\.gran_expand: index must be an FgIndex, got list$"):
        gran_expand.expand_index([1, 2])


def test_expansion_memoised_per_index_and_gran1_is_itself() -> None:
    seed = _seed()
    idx = _gran_index(seed, 16, 1000)
    assert not gran_expand.has_expanded(idx)
    a = gran_expand.cached_expanded(idx)
    assert gran_expand.cached_expanded(idx) is a and gran_expand.has_expanded(idx)
    idx.indices.add_(0)  # an in-place write: a new expansion, the old one kept (a captured graph may read it)
    b = gran_expand.cached_expanded(idx)
    assert b is not a and torch.equal(a.indices, b.indices)
    g1 = gran_expand.expand_index(a)
    assert g1 is a and gran_expand.cached_expanded(a) is a and gran_expand.has_expanded(a)


def test_expansion_under_capture_returns_none_and_prepare_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    idx = _gran_index(_seed(), 64, 900)
    monkeypatch.setattr(gran_expand, "_capturing", lambda: True)
    assert gran_expand.cached_expanded(idx) is None
    with pytest.raises(ValueError, match=r"^fgattn\.gran_expand: prepare_expanded reads sizes on the host"):
        gran_expand.prepare_expanded(idx, 4)
    monkeypatch.setattr(gran_expand, "_capturing", lambda: False)
    ex = gran_expand.prepare_expanded(idx, 4, c_row=1.45)
    assert gluon_fg_list.has_list_plan(ex, 4, 1.45) and not gluon_fg_list.has_list_plan(ex, 4)
    monkeypatch.setattr(gran_expand, "_capturing", lambda: True)
    assert gran_expand.cached_expanded(idx) is ex  # memoised: no host work under capture


# ------------------------------------------------------------------------------------------------ launch table
def _table(tmp_path: Path, g: int, gluon: dict | None, impl: str = "gluon") -> Path:
    e = load_table(str(PACKAGED))[("fg", "h200", 128, 128, g)]
    extra = {**{k: v for k, v in e["extra"].items() if k != "gluon"}, "impl": impl}
    if gluon is not None:
        extra["gluon"] = gluon
    p = tmp_path / "table.json"
    p.write_text(json.dumps({"entries": [{**e, "extra": extra}]}))
    load_table.cache_clear()
    return p


BAD = [
    (16, LIST, r"extra\.impl='gluon' exists only for kernel fg, head_dim 128, block_m 128 at gran_n 1, or at gran_n 16 "
               r"with extra\.gluon\.expand=true \(the gran-1 list kernel on the expanded index, schedule 'list'\), not "
               r"expand=None"),
    (64, {**LIST, "expand": False}, r"at gran_n 64 with extra\.gluon\.expand=true .* not expand=False"),
    (64, {**LIST, "expand": 1}, r"with extra\.gluon\.expand=true .* not expand=1"),
    (1, {**LIST, "expand": True}, r"extra\.gluon\.expand=True is for the fg gran_n 16 / 64 entries"),
    (16, {"form": "ws2", "pipeline": 1, "fence": False, "expand": True},
     r"extra\.gluon\.expand=True needs extra\.gluon\.schedule='list'"),
    (16, {"form": "ws", "expand": True}, r"extra\.gluon\.expand is a knob of form 'ws2' only"),
    (1, {**LIST, "c_row": -1}, r"extra\.gluon\.c_row=-1 must be a number in \[0, 50\] \(the list planner's row cost"),
    (1, {**LIST, "c_row": 51}, r"extra\.gluon\.c_row=51 must be a number in \[0, 50\]"),
    (1, {**LIST, "c_row": True}, r"extra\.gluon\.c_row=True must be a number"),
    (1, {**LIST, "c_row": "1.4"}, r"extra\.gluon\.c_row='1\.4' must be a number"),
    (1, {"form": "ws2", "pipeline": 1, "fence": False, "c_row": 1.45},
     r"extra\.gluon\.c_row=1\.45 needs extra\.gluon\.schedule='list'"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_expand_or_c_row_in_a_table_one_line_naming_file_and_entry(tmp_path: Path, i: int) -> None:
    g, knobs, needle = BAD[i]
    p = _table(tmp_path, g, knobs)
    with pytest.raises(ValueError, match=needle) as ei:
        launch_config("fg", "h200", 128, 128, g, table_path=str(p))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"{p}: entry fg/h200/D128/M128/g{g}: extra."), msg
    load_table.cache_clear()


def test_gluon_on_a_gran_entry_names_the_expand_form(tmp_path: Path) -> None:
    p = _table(tmp_path, 16, None)
    with pytest.raises(ValueError, match=r"g16: extra\.impl='gluon' needs extra\.gluon, an object with at least "
                                         r"'form' \(knobs: \['form', 'pipeline', .*'expand', 'c_row'\]\)"):
        launch_config("fg", "h200", 128, 128, 16, table_path=str(p))
    load_table.cache_clear()
    e = load_table(str(PACKAGED))[("fg", "h200", 128, 64, 16)]  # M64: no Gluon form at all
    q = tmp_path / "m64.json"
    q.write_text(json.dumps({"entries": [{**e, "extra": {**e["extra"], "impl": "gluon", "gluon": {**LIST, "expand": True}}}]}))
    with pytest.raises(ValueError, match=r"exists only for kernel fg, head_dim 128, block_m 128, gran_n 1 .*gran_n 16 "
                                         r"/ 64 with extra\.gluon\.expand .* not \(fg, 128, 64, 16\)"):
        launch_config("fg", "h200", 128, 64, 16, table_path=str(q))
    load_table.cache_clear()


def test_candidate_tables_read() -> None:
    assert EXPAND_KEYS == (("fg", 128, 128, 16), ("fg", 128, 128, 64))
    for g in (16, 64):
        c = launch_config("fg", "h200", 128, 128, g, table_path=str(CAND_EXPAND))
        assert c.impl == "gluon" and c.gluon_expand() and c.gluon_schedule() == "list" and c.gluon_c_row() is None
        assert "expand" not in c.gluon_options() and "c_row" not in c.gluon_options()
        tl = c.tl_config()
        pk = launch_config("fg", "h200", 128, 128, g, table_path=str(PACKAGED)).tl_config()
        assert (tl.block_n, tl.num_stages, tl.num_warps, tl.extra) == (pk.block_n, pk.num_stages, pk.num_warps,
                                                                       pk.extra)  # the fallback = the packaged entry
    cr = launch_config("fg", "h200", 128, 128, 1, table_path=str(CAND_CROW))
    assert cr.gluon_c_row() == 1.45 and not cr.gluon_expand()
    assert launch_config("fg", "h200", 128, 128, 1, table_path=str(PACKAGED)).gluon_c_row() is None


# ------------------------------------------------------------------------------------------------ route, dispatch
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


def _cand(g: int):
    return launch_config("fg", "h200", 128, 128, g, table_path=str(CAND_EXPAND))


@pytest.mark.parametrize("g", [16, 64])
def test_route_of_an_expand_entry_and_its_fallbacks(sm90: pytest.MonkeyPatch, g: int) -> None:
    q, cfg = _Q(), _cand(g)
    impl, why = attention.fg_route(q, cfg)
    assert impl == "gluon" and why.startswith("expand (fgattn.gran_expand, memoised per index) + schedule list"), why
    assert attention.fg_route(q, cfg, return_lse=True) == ("tl", "return_lse (the Gluon form has no LSE output)")
    assert attention.fg_route(_Q(torch.float32), cfg)[0] == "tl"
    sm90.setenv("FGATTN_GLUON", "0")
    assert attention.fg_route(q, cfg) == ("tl", "FGATTN_GLUON=0")
    sm90.delenv("FGATTN_GLUON")
    sm90.setattr(torch.cuda, "get_device_capability", lambda dev=None: (8, 0))
    assert attention.fg_route(q, cfg) == ("tl", "sm_80 (the Gluon form needs sm_90)")
    sm90.setattr(torch.cuda, "get_device_capability", lambda dev=None: (9, 0))
    # the packaged gran-g entry (tl until adopted) routes tl; an expand entry under capture without an expansion: tl
    pk = launch_config("fg", "h200", 128, 128, g, table_path=str(PACKAGED))
    if pk.impl == "tl":
        assert attention.fg_route(q, pk) == ("tl", "entry impl tl")
    idx = _gran_index(_seed(), g, 1000)
    sm90.setattr(gran_expand, "_capturing", lambda: True)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: True)
    impl, why = attention.fg_route(q, cfg, index=idx)
    assert impl == "tl" and why.startswith(f"CUDA-graph capture and no expansion of this gran-{g} index prepared"), why
    sm90.setattr(gran_expand, "_capturing", lambda: False)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: False)
    gran_expand.prepare_expanded(idx, 4)
    sm90.setattr(gran_expand, "_capturing", lambda: True)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: True)
    assert attention.fg_route(q, cfg, index=idx) == (
        "gluon", "expand (fgattn.gran_expand, memoised per index) + schedule list (fgattn.gluon_fg_list, plan "
                 "prepared before capture)")


def _recorders(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []

    def walk(q, k, v, index, **kw):
        calls.append(("walk", index, None, kw))
        return q

    def lst(q, k, v, index, **kw):
        calls.append(("list", index, kw["plan"], kw))
        return q

    def tl(mode, q, k, v, index, cfg, *a):
        calls.append(("tl", index, cfg, {}))
        return q

    monkeypatch.setattr(gluon_fg, "fg_attention_gluon", walk)
    monkeypatch.setattr(gluon_fg_list, "fg_attention_gluon_list", lst)
    monkeypatch.setattr(attention, "_launch", tl)
    return calls


@pytest.mark.parametrize("g", [16, 64])
def test_dispatch_runs_the_list_kernel_on_the_memoised_expansion(sm90: pytest.MonkeyPatch, g: int) -> None:
    calls = _recorders(sm90)
    sm90.setattr(attention, "fg_route", lambda q, cfg, **kw: ("gluon", ""))
    n = 1001
    idx = _gran_index(_seed(), g, n)
    q = torch.zeros(1, 2, n, 128, dtype=torch.float16)
    for _ in range(2):
        fgattn.fg_attention(q, q, q, idx, block_m=128, gran_n=g, config=_cand(g))
    assert [c[0] for c in calls] == ["list", "list"]
    ex = gran_expand.cached_expanded(idx)
    assert calls[0][1] is ex and calls[1][1] is ex and calls[0][2] is calls[1][2]  # expanded and planned once
    ref = gluon_fg_list.plan_ws2_list(ex, programs=4)
    assert torch.equal(calls[0][2].rows, ref.rows) and calls[0][3]["epilogue"] == "tma_sel"
    assert "c_row" not in calls[0][3]  # the table names none: the planner's default
    # the packaged gran-g entry: the tl kernel on the gran-g index itself
    fgattn.fg_attention(q, q, q, idx, block_m=128, gran_n=g,
                        config=launch_config("fg", "h200", 128, 128, g, table_path=str(PACKAGED)).tl_config())
    assert calls[2][0] == "tl" and calls[2][1] is idx
    # under capture with no expansion memoised: the entry's tl kernel (its tl fields) on the gran-g index
    idx2 = _gran_index(_seed(), g, n)
    sm90.setattr(gran_expand, "_capturing", lambda: True)
    fgattn.fg_attention(q, q, q, idx2, block_m=128, gran_n=g, config=_cand(g))
    assert calls[3][0] == "tl" and calls[3][1] is idx2 and calls[3][2].impl == "tl"
    assert calls[3][2].block_n == _cand(g).block_n


def test_dispatch_passes_the_table_c_row_to_the_planner(sm90: pytest.MonkeyPatch) -> None:
    calls = _recorders(sm90)
    sm90.setattr(attention, "fg_route", lambda q, cfg, **kw: ("gluon", ""))
    gen = torch.Generator().manual_seed(_seed())
    mask = torch.rand(1, 3, 8, 1000, generator=gen) < 0.05
    mask[:, 0, 0] = True
    idx = fgattn.build_index(mask, block_m=128, order=True)
    q = torch.zeros(1, 3, 1000, 128, dtype=torch.float16)
    cfg = launch_config("fg", "h200", 128, 128, 1, table_path=str(CAND_CROW))
    fgattn.fg_attention(q, q, q, idx, block_m=128, config=cfg)
    assert calls[0][0] == "list" and calls[0][3]["c_row"] == 1.45
    ref = gluon_fg_list.plan_ws2_list(idx, programs=4, c_row=1.45)
    assert torch.equal(calls[0][2].rows, ref.rows) and torch.equal(calls[0][2].start, ref.start)
    assert gluon_fg_list.has_list_plan(idx, 4, 1.45) and not gluon_fg_list.has_list_plan(idx, 4)


# ------------------------------------------------------------------------------------------------ cost model
def _model_cfgs(g: int):
    from fgsim.launchcfg import launch_config as fs_launch
    from fgsim.model.gluon import tl_config as fs_tl

    tl = fs_tl(fs_launch("fg", "h200", 128, 128, g))
    e = json.loads(CAND_EXPAND.read_text())
    ent = next(x for x in e["entries"] if (x["kernel"], x["gpu"], x["head_dim"], x["block_m"], x["gran_n"])
               == ("fg", "h200", 128, 128, g))
    return tl, dataclasses.replace(tl, extra=dict(ent["extra"]))


@pytest.mark.parametrize("g", [16, 64])
def test_model_prices_an_expand_entry_as_the_gluon_list_form_on_expanded_keys(g: int) -> None:
    from fgsim.hardware import load_gpu
    from fgsim.model.cta_cost import cta_tables
    from fgsim.model.gluon import kernel_impl, priced_config
    from fgsim.model.params import ModelParams

    h200 = load_gpu("h200")
    p = ModelParams(mma_eff=0.844, fp32_per_score=5.93, mma_wait_cycles=60.7, serial_wgmma_cycles=20.7,
                    tile_sync_cycles=74.1, ldst_cycles=4.67, mem_latency_cycles=426.0, l2_bw_eff=0.978,
                    wgmma_min_cycles=48.2, row_cycles=4350.0, launch_us=3.23, overlap_p=1.91, share_p=1.44)
    tl, ex = _model_cfgs(g)
    assert kernel_impl(ex, h200) == "gluon" and priced_config(ex, h200) == ("gluon", ex)  # not its tl kernel
    assert kernel_impl(ex, load_gpu("a100")) == "tl"
    n = 32760
    tabs = cta_tables(ex, h200, p, n, n_ctas=12 * 256, resources={})
    tl_tabs = cta_tables(tl, h200, p, n, n_ctas=12 * 256, resources={})
    assert tabs.row_work is not None and tl_tabs.row_work is None  # persistent Gluon programs, not tl rows
    assert tabs.n == g  # the trace's counts are runs of g keys
    c = np.arange(tabs.plan_cost.shape[0])
    keys = np.minimum(c * g, n)
    assert np.allclose(tabs.plan_cost, 3.0 + np.maximum(np.ceil(keys / 128), 1))  # tiles of the expanded keys
    # a row of c runs costs what the gran-1 Gluon list entry's row of min(c g, N) keys costs
    g1 = dataclasses.replace(ex, gran_n=1, extra={k: v for k, v in ex.extra.items() if k != "gluon"}
                             | {"gluon": {k: v for k, v in ex.extra["gluon"].items() if k != "expand"}})
    t1 = cta_tables(g1, h200, p, n, n_ctas=12 * 256, resources={})
    for runs in (1, 7, 40, 300, -(-n // g)):
        k = min(runs * g, n)
        assert tabs.row_work[runs] == pytest.approx(t1.row_work[k], rel=1e-12)


def test_model_reads_the_table_c_row_for_the_plan() -> None:
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config as fs_launch
    from fgsim.model.cta_cost import cta_tables
    from fgsim.model.gluon import plan_c_row
    from fgsim.model.params import ModelParams

    h200 = load_gpu("h200")
    p = ModelParams(mma_eff=0.844, fp32_per_score=5.93, mma_wait_cycles=60.7, serial_wgmma_cycles=20.7,
                    tile_sync_cycles=74.1, ldst_cycles=4.67, mem_latency_cycles=426.0, l2_bw_eff=0.978,
                    wgmma_min_cycles=48.2, row_cycles=4350.0, launch_us=3.23, overlap_p=1.91, share_p=1.44)
    e = fs_launch("fg", "h200", 128, 128, 1)
    cr = dataclasses.replace(e, extra={**e.extra, "gluon": {**e.extra["gluon"], "c_row": 1.45}})
    assert plan_c_row(e) == 3.0 and plan_c_row(cr) == 1.45
    a = cta_tables(e, h200, p, 4096, n_ctas=12 * 32, resources={}).plan_cost
    b = cta_tables(cr, h200, p, 4096, n_ctas=12 * 32, resources={}).plan_cost
    assert np.allclose(a - b, 1.55)
    from fgsim.errors import FgsimError

    bad = dataclasses.replace(e, extra={**e.extra, "gluon": {**e.extra["gluon"], "c_row": -2}})
    with pytest.raises(FgsimError, match=r"c_row=-2 must be a number in \[0, 50\]"):
        cta_tables(bad, h200, p, 4096, n_ctas=12 * 32, resources={})


# ------------------------------------------------------------------------------------------------ the call's tools
def _tools():
    sys.path.insert(0, str(ROOT / "kernels" / "tools"))
    import gran_expand_analyze as an
    import gran_expand_check as ck

    return an, ck


def test_check_cases_cover_what_the_pre_registration_names() -> None:
    _, ck = _tools()
    cs = ck.cases(240, 1701, 40)
    gran = [c for c in cs if c["gran"] != 1]
    assert len(gran) == 240 and sum(c["gran"] == 16 for c in gran) == 120 and len(cs) - len(gran) == 40
    for what in (lambda c: c["N"] % 2, lambda c: c["text"], lambda c: c["layout"] == "bnhd",
                 lambda c: c["dtype"] == "fp16", lambda c: c["graph"], lambda c: c["limit_sms"],
                 lambda c: not c["order"], lambda c: c["density"] == 1.0, lambda c: c["N"] % 64 == 0):
        assert sum(bool(what(c)) for c in gran) >= 5
    assert ck.cases(240, 1701, 40) == cs  # seeded


@pytest.mark.parametrize("g", [16, 64])
def test_check_masks_have_end_runs_empty_and_full_blocks(g: int) -> None:
    _, ck = _tools()
    gen = torch.Generator().manual_seed(_seed())
    n = 1001
    m = ck.run_masks(2, 3, n, g, 0.1, gen)
    assert m.shape == (2, 3, 8, n) and not m[0, 0, 0].any() and m[-1, -1, -1].all()
    assert m[..., -1].float().mean() > 0.3  # the clipped last run is kept in many rows
    runs = m[..., : (n // g) * g].reshape(2, 3, 8, -1, g)
    assert bool((runs.all(-1) | ~runs.any(-1)).all())  # whole runs only


def _rows(kernel: str, gran: int, d: float, ms: list[float], route: str, h: int = 12, n: int = 32760) -> dict:
    return dict(kernel=kernel, H=h, N=n, n_text=0, gran_n=gran, density_target=d,
                ms_rounds=";".join(str(x) for x in ms), route=route)


def _gran_csv(expand: float, control: float = 1.0, worst: float | None = None) -> list[dict]:
    rows = []
    for h, n in ((12, 32760), (12, 33272), (40, 75600)):
        for g in (16, 64):
            for d in (0.02, 0.1, 0.3, 0.5, 0.9):
                base = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0]
                e = expand if worst is None or (h, g, d) != (40, 64, 0.9) else worst
                rows += [_rows("fg_attention", g, d, base, "tl", h, n),
                         _rows("fg_attention_control", g, d, [x * control for x in base], "tl", h, n),
                         _rows("fg_attention_expand", g, d, [x * e for x in base], "gluon list 1/1 captured", h, n)]
    return rows


def test_expand_rule_pass_and_each_fail_path() -> None:
    an, _ = _tools()
    v = an.expand_verdict(_gran_csv(0.85), True)
    assert v["adopted"] and v["cells"] == 30 and v["geo"] == pytest.approx(0.85) and not v["why"]
    assert not an.expand_verdict(_gran_csv(0.85), False)["adopted"]  # checks failed
    assert "control geo-mean" in an.expand_verdict(_gran_csv(0.85, control=1.02), True)["why"][0]
    assert "> 1.02" in an.expand_verdict(_gran_csv(0.85, worst=1.03), True)["why"][0]  # one cell over
    assert "geo-mean 0.9600 > 0.95" in an.expand_verdict(_gran_csv(0.96), True)["why"][0]
    rows = _gran_csv(0.85)
    rows[2]["route"] = "tl"
    assert "did not route 'gluon list'" in an.expand_verdict(rows, True)["why"][0]
    assert "cells measured" in an.expand_verdict(_gran_csv(0.85)[:60], True)["why"][0]


def test_crow_rule_pass_and_fail_paths() -> None:
    an, _ = _tools()

    def csv_(crow: float, long: float = 1.0) -> list[dict]:
        rows = []
        for i, (h, n) in enumerate(((12, 32760), (12, 33272), (40, 75600), (40, 76112), (12, 75600), (12, 76112),
                                    (40, 32760), (40, 33272))):
            for d in (0.02, 0.05, 0.1, 0.5) if i in (0, 2) else (0.02, 0.05, 0.1):
                base = [1.0, 1.2, 0.8, 1.0, 1.0, 1.0, 1.0]
                c = long if d == 0.5 else crow
                rows += [_rows("fg_attention", 1, d, base, "gluon list 2/2 captured", h, n),
                         _rows("fg_attention_control", 1, d, base, "gluon list 2/2 captured", h, n),
                         _rows("fg_attention_crow", 1, d, [x * c for x in base], "gluon list 2/2 captured", h, n)]
        return rows

    v = an.crow_verdict(csv_(0.985), True)
    assert v["adopted"] and v["low_cells"] == 24 and v["geo_low"] == pytest.approx(0.985)
    assert "geo-mean over d <= 0.1 0.9950 > 0.99" in an.crow_verdict(csv_(0.995), True)["why"][0]
    assert "> 1.02" in an.crow_verdict(csv_(0.985, long=1.03), True)["why"][0]  # a long-row cell over
    assert not an.crow_verdict(csv_(0.985), False)["adopted"]


def test_analyze_cli_bad_file_exits_2(capsys: pytest.CaptureFixture) -> None:
    an, _ = _tools()
    assert an.main(["--gran", "/nonexistent.csv", "--check-ok", "yes"]) == 2
    assert capsys.readouterr().err.startswith("gran_expand_analyze: /nonexistent.csv: ")


def test_call_verdicts_recomputed_from_the_committed_csvs() -> None:
    """The session-17 call's verdicts (kernels/NOTES.md "Session 17, K", outcome) from its committed CSVs."""
    an, _ = _tools()
    res = ROOT / "validation" / "results"
    gran = an._read(str(res / "kernels-h200-2026-12-01-issue12-s17k-gran.csv"))
    crow = an._read(str(res / "kernels-h200-2026-12-01-issue12-s17k-crow.csv"))
    e, c = an.expand_verdict(gran, True), an.crow_verdict(crow, True)
    assert e["adopted"] and e["cells"] == 30
    assert e["geo"] == pytest.approx(0.821, abs=5e-4) and e["max"] == pytest.approx(0.867, abs=5e-4)
    assert not c["adopted"] and c["geo_low"] == pytest.approx(1.004, abs=5e-4)
    assert c["max"] == pytest.approx(1.046, abs=5e-4)
    acc = an._read(str(res / "kernels-h200-2026-12-01-s17k-expand-accuracy.csv"))
    assert len(acc) == 560 and all(r["ok"] == "True" for r in acc)
    assert sum(r["variant"] == "expand" for r in acc) == 240
    # the adopted table is the candidate's gran entries
    for g in (16, 64):
        assert launch_config("fg", "h200", 128, 128, g, table_path=str(PACKAGED)).extra == \
            launch_config("fg", "h200", 128, 128, g, table_path=str(CAND_EXPAND)).extra
