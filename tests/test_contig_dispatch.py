"""The Gluon contig form behind the launch table (issue 12, session 13 K2; adopted in session 14 by K3 on run 11:
the packaged table's dense / block D128 M128 entries are the candidate's): ``extra.impl: "gluon"`` with ``extra.gluon.form: "contig"`` for the dense D128 M128 and block D128 M128
(gran 128) entries, every bad knob with its one-line message naming the table file and entry, the launch.py knob
rule equal to ``fgattn.gluon_contig``'s checkers, ``fgattn.contig_route`` (the fg route's rule plus CUDA-graph
capture), the dispatch of ``dense_attention`` / ``block_sparse_attention`` to ``gluon_contig.contig_attention_gluon``
with a plan memoised per block index / shape, and routing under the table before adoption
(kernels/logs/launch_configs-at-181d183.json: tl), the candidate kernels/logs/launch_configs-candidate-contig.json and
the packaged table (contig).  CPU only: the Gluon launch is replaced by a
recorder (there is no Gluon on the CPU), seconds."""

import dataclasses
import json
import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import fgattn  # noqa: E402
from fgattn import attention, contig_plans, gluon_contig, gluon_fg_list  # noqa: E402
from fgattn.launch import CONTIG_KEYS, CONTIG_KNOBS, check_impl, launch_config, load_table  # noqa: E402
from test_gluon_schedule import sm90  # noqa: E402, F401 (the fixture)
from test_kernels_impl import _FakeCudaQ  # noqa: E402

PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
AT_300AD25 = ROOT / "kernels" / "logs" / "launch_configs-at-300ad25.json"  # the table before the fg tma_sel adoption (s15)
CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-contig.json"
#: the packaged table before the contig adoption (181d183: dense / block D128 M128 tl)
BEFORE = ROOT / "kernels" / "logs" / "launch_configs-at-181d183.json"
RUN11 = "kernels-h200-2026-11-30-issue12-run11.csv"
PP = {"form": "contig", "pipeline": 1, "regs": [240, 24], "pingpong": True}


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def _tl(kernel: str, dtype: str = "bf16"):
    """The tl entry (the table before adoption)."""
    return launch_config(kernel, "h200", 128, 128, dtype=dtype, table_path=str(BEFORE))


def _contig(kernel: str, knobs: dict | None = None):
    e = _tl(kernel)
    return dataclasses.replace(e, extra={**e.extra, "impl": "gluon", "gluon": dict(knobs or PP)})


def _table(tmp_path: Path, kernel: str, gluon, name: str = "table.json") -> Path:
    key = {"dense": ("dense", "h200", 128, 128, 1), "block": ("block", "h200", 128, 128, 128)}[kernel]
    e = load_table(str(BEFORE))[key]
    data = {"entries": [{**e, "extra": {**e["extra"], "impl": "gluon", "gluon": gluon}}]}
    p = tmp_path / name
    p.write_text(json.dumps(data))
    load_table.cache_clear()
    return p


# ------------------------------------------------------------------------------------------------ launch.py
def test_contig_entries_load_with_their_knobs_and_keep_the_tl_fallback(tmp_path: Path) -> None:
    for kernel in ("dense", "block"):
        p = _table(tmp_path, kernel, PP)
        cfg = launch_config(kernel, "h200", 128, 128, table_path=str(p))
        assert cfg.impl == "gluon" and cfg.gluon_options() == dict(pipeline=1, pingpong=True, regs=(240, 24),
                                                                   epilogue="stg")
        assert cfg.gluon_schedule() == "list"
        assert cfg.tl_config().extra == _tl(kernel).extra and cfg.tl_config().impl == "tl"
        p = _table(tmp_path, kernel, {"form": "contig"})  # the defaults: gluon_contig's
        cfg = launch_config(kernel, "h200", 128, 128, table_path=str(p))
        assert cfg.gluon_options() == dict(pipeline=1, pingpong=False, regs=gluon_contig.DEFAULT_REGS, epilogue="stg")
    load_table.cache_clear()


BAD = [
    ({"form": "ws2"}, r"extra\.impl='gluon' exists only for kernel fg, .* not (dense|block) with extra\.gluon\.form="
                      r"'ws2'"),
    ({"form": "contig2"}, r"extra\.impl='gluon' exists only .* not (dense|block) with extra\.gluon\.form='contig2'"),
    ({"pipeline": 1}, r"needs extra\.gluon, an object with at least 'form' \(knobs: \['form', 'pipeline'"),
    ({"form": "contig", "fence": False}, r"extra\.gluon has unknown knobs \['fence'\] for form 'contig'"),
    ({"form": "contig", "schedule": "list"}, r"unknown knobs \['schedule'\] for form 'contig'"),
    ({"form": "contig", "pipeline": 0}, r"extra\.gluon\.pipeline=0 must be one of \[1, 3\] \(form 'contig'\)"),
    ({"form": "contig", "pipeline": 2}, r"extra\.gluon\.pipeline=2 must be one of \[1, 3\]"),
    ({"form": "contig", "pipeline": True}, r"extra\.gluon\.pipeline=True must be one of \[1, 3\]"),
    ({"form": "contig", "pipeline": "1"}, r"extra\.gluon\.pipeline='1' must be one of \[1, 3\]"),
    ({"form": "contig", "pingpong": 1}, r"extra\.gluon\.pingpong=1 must be one of \[False, True\]"),
    ({"form": "contig", "regs": [220, 64]}, r"extra\.gluon\.regs=\[220, 64\] must be \[consumer, producer\]"),
    ({"form": "contig", "regs": [248, 24]}, r"extra\.gluon\.regs=\[248, 24\] must be"),
    ({"form": "contig", "regs": [240, 48]}, r"consumer \+ producer <= 280"),
    ({"form": "contig", "regs": None}, r"extra\.gluon\.regs=None must be"),
    ({"form": "contig", "regs": 240}, r"extra\.gluon\.regs=240 must be"),
]


@pytest.mark.parametrize("kernel", ["dense", "block"])
@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_contig_knobs_one_line_naming_file_and_entry(tmp_path: Path, kernel: str, i: int) -> None:
    knobs, needle = BAD[i]
    p = _table(tmp_path, kernel, knobs)
    with pytest.raises(ValueError, match=needle) as ei:
        launch_config(kernel, "h200", 128, 128, table_path=str(p))
    msg = str(ei.value)
    gran = 1 if kernel == "dense" else 128
    assert "\n" not in msg and msg.startswith(f"{p}: entry {kernel}/h200/D128/M128/g{gran}: "), msg
    load_table.cache_clear()


@pytest.mark.parametrize("key", [("dense", 64, 128, 1), ("dense", 128, 64, 1), ("block", 128, 64, 64),
                                 ("block", 64, 128, 128), ("fg", 128, 128, 16)])
def test_contig_only_for_dense_and_block_d128_m128(key: tuple) -> None:
    with pytest.raises(ValueError, match=r"^t: extra\.impl='gluon' exists only for kernel fg, .*form 'contig', for "
                                         r"dense / block head_dim 128, block_m 128 .*not \("):
        check_impl(*key, {"impl": "gluon", "gluon": dict(PP)}, "t")
    assert set(CONTIG_KEYS) == {("dense", 128, 128, 1), ("block", 128, 128, 128)}


def test_fg_entry_refuses_form_contig() -> None:
    with pytest.raises(ValueError, match=r"^t: extra\.gluon\.form='contig' must be one of \['one_row'"):
        check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": {"form": "contig"}}, "t")


def test_contig_knob_rule_is_gluon_contigs() -> None:
    """launch.py (pure Python) mirrors gluon_contig's checkers (check_regs, _constexprs) on a random grid, and its
    defaults are contig_attention_gluon's."""
    import inspect

    sig = inspect.signature(gluon_contig.contig_attention_gluon).parameters
    assert {k: d for k, (_, d) in CONTIG_KNOBS.items() if k != "form"} == {
        k: sig[k].default for k in ("pipeline", "pingpong", "regs", "epilogue")}
    rng = random.Random(_seed())
    regs_pool = [[216, 64], [240, 24], [224, 56], [232, 48], [240, 40], [220, 60], [248, 24], [24, 16], [64, 64],
                 [240], [216, 64, 8], ["216", 64], [True, 64]]
    n_ok = n_bad = 0
    for _ in range(600):
        kw = dict(pipeline=rng.choice((0, 1, 1, 2, 3, 3, True)), pingpong=rng.choice((False, True, 0, 1)),
                  regs=rng.choice(regs_pool))
        try:
            gluon_contig._constexprs(True, tuple(kw["regs"]), kw["pipeline"], kw["pingpong"])
            ref_ok = True
        except ValueError:
            ref_ok = False
        try:
            check_impl("dense", 128, 128, 1, {"impl": "gluon", "gluon": {"form": "contig", **kw}}, "t")
            ok = True
        except ValueError:
            ok = False
        assert ok == ref_ok, kw
        n_ok += ok
        n_bad += not ok
    assert n_ok > 20 and n_bad > 100


# ------------------------------------------------------------------------------------------------ the tables
def test_table_before_has_no_contig_entry_and_routes_dense_and_block_to_tl() -> None:
    table = load_table(str(BEFORE))
    assert [k for k, e in table.items() if e.get("extra", {}).get("impl") == "gluon"] == [("fg", "h200", 128, 128, 1)]
    q = _Q()
    for kernel in ("dense", "block"):
        assert _tl(kernel).impl == "tl"
        assert attention.contig_route(q, _tl(kernel)) == ("tl", "entry impl tl")


def test_packaged_table_adopts_the_candidates_contig_entries() -> None:
    """Session 14 (K3): the packaged table is the candidate entry for entry (the dense / block D128 M128 entries
    impl gluon, form contig_pp, their tl fields the fallback); only their sources differ, which name run 11's CSV
    (the adoption measurement) and keep the tl entry's source; every other entry is 181d183's unchanged."""
    cand, pack, before = load_table(str(CANDIDATE)), load_table(str(AT_300AD25)), load_table(str(BEFORE))
    assert set(pack) == set(cand) == set(before)
    keys = {("dense", "h200", 128, 128, 1), ("block", "h200", 128, 128, 128)}
    for k, e in pack.items():
        assert {f: v for f, v in e.items() if f != "source"} == {f: v for f, v in cand[k].items() if f != "source"}, k
        if k not in keys:
            assert e == before[k] == cand[k], k
            continue
        assert RUN11 in e["source"] and "Session 14, K3" in e["source"] and before[k]["source"] in e["source"]
        assert e["extra"] == {**before[k]["extra"], "impl": "gluon", "gluon": PP}
    assert (ROOT / "validation" / "results" / RUN11).is_file()
    for kernel in ("dense", "block"):
        cfg = launch_config(kernel, "h200", 128, 128, table_path=str(PACKAGED))
        assert cfg.impl == "gluon" and cfg.gluon_options() == dict(
            pipeline=1, pingpong=True, regs=(240, 24), epilogue="tma_sel" if kernel == "block" else "stg")  # s15
        strip = lambda c: dataclasses.replace(c, source="")  # noqa: E731
        assert strip(cfg.tl_config()) == strip(_tl(kernel))


def test_packaged_contig_entries_pass_the_preregistered_rule_on_run_11() -> None:
    """The adoption rule written before the call (kernels/NOTES.md "Session 14, K3"), recomputed from run 11's CSV:
    every timed candidate graph captured the contig launch; dense t / t_entry (paired median over rounds) <= 1.00
    and x cuDNN >= 0.97 at every D128 shape; block t / t_entry <= 1.02 at every (shape, d), geo-mean <= 0.97."""
    import csv
    import math

    rows = list(csv.DictReader(open(ROOT / "validation" / "results" / RUN11, newline="")))

    def paired(a: dict, b: dict) -> float:
        r = sorted(float(x) / float(y) for x, y in zip(a["ms_rounds"].split(";"), b["ms_rounds"].split(";"),
                                                        strict=True))
        return r[len(r) // 2]

    cells = {(r["shape"], r["kernel"], r["density_target"]): r for r in rows if r["M"] == "128" and r["D"] == "128"}
    shapes = {r["shape"] for r in rows if r["D"] == "128"}
    assert len(shapes) == 8
    dense = [(cells[(s, "fg_dense", "1.0")], cells[(s, "fg_dense_previous", "1.0")]) for s in shapes]
    block = [(c, cells[(s, "fg_block128_previous", d)]) for (s, k, d), c in cells.items() if k == "fg_block128"]
    assert len(block) == 62
    for cand, prev in dense + block:
        assert cand["route"].startswith("gluon contig") and prev["route"] == "tl"
        assert '"impl": "gluon"' in cand["config"] and '"impl"' not in prev["config"]
    assert all(paired(c, p) <= 1.00 and float(c["ratio_vs_cudnn"]) >= 0.97 for c, p in dense)
    rel = [paired(c, p) for c, p in block]
    assert max(rel) <= 1.02 and math.exp(sum(map(math.log, rel)) / len(rel)) <= 0.97


def test_candidate_is_the_table_before_plus_two_contig_entries() -> None:
    """kernels/logs/launch_configs-candidate-contig.json: every entry of the table before adoption (181d183)
    unchanged but the dense / block D128 M128 ones, which add impl gluon + the rule's pick (contig_pp) and name D's
    CSV; fields otherwise equal (the tl fallback)."""
    cand, pack = load_table(str(CANDIDATE)), load_table(str(BEFORE))
    assert set(cand) == set(pack)
    keys = {("dense", "h200", 128, 128, 1), ("block", "h200", 128, 128, 128)}
    for k, e in cand.items():
        if k not in keys:
            assert e == pack[k], k
            continue
        assert e["extra"] == {**pack[k]["extra"], "impl": "gluon", "gluon": PP}
        assert {f: v for f, v in e.items() if f not in ("extra", "source")} == \
            {f: v for f, v in pack[k].items() if f not in ("extra", "source")}
        assert "kernels-h200-2026-11-30-gluon-contig.csv" in e["source"] and pack[k]["source"] in e["source"]
    assert (ROOT / "validation" / "results" / "kernels-h200-2026-11-30-gluon-contig.csv").is_file()


def test_candidate_knobs_are_the_rules_pick() -> None:
    """The candidate's knobs are the variant that contig_probe's pre-registered rule picks from D's committed CSVs:
    eligible for dense and block, lowest geo-mean t / t_entry over all problems (contig_pp)."""
    import csv
    import math

    import contig_probe

    res = ROOT / "validation" / "results"
    rows = list(csv.DictReader(open(res / "kernels-h200-2026-11-30-gluon-contig.csv", newline="")))
    acc = list(csv.DictReader(open(res / "kernels-h200-2026-11-30-gluon-contig-accuracy.csv", newline="")))
    ok = {v: any(r["variant"] == v for r in acc) and all(r["ok"] == "True" for r in acc if r["variant"] == v)
          for v in contig_probe.GLUON}
    verdict = contig_probe.rule_verdict(rows, ok)
    eligible = [v for v in contig_probe.GLUON if verdict[(v, "dense")][0] == verdict[(v, "block")][0] == "eligible"]
    geo = {v: math.exp(sum(math.log(float(r["rel_entry"])) for r in rows if r["variant"] == v)
                       / sum(r["variant"] == v for r in rows)) for v in eligible}
    pick = min(geo, key=geo.get)
    assert pick == "contig_pp", geo
    want = {"form": "contig", "pipeline": 1, "pingpong": False, **contig_probe.GLUON[pick]}
    want["regs"] = list(want["regs"])
    for kernel in ("dense", "block"):
        cfg = launch_config(kernel, "h200", 128, 128, table_path=str(CANDIDATE))
        assert cfg.extra["gluon"] == want == PP


# ------------------------------------------------------------------------------------------------ route
class _Q(_FakeCudaQ):
    """test_kernels_impl's fake CUDA tensor with a (B, H, N, D) shape (the routes read it under capture)."""

    def __init__(self, dtype=torch.bfloat16, ptr: int = 1 << 20, stride=(128 * 640, 128 * 640, 128, 1)):
        super().__init__(dtype=dtype, ptr=ptr, stride=stride)
        self.shape = (1, 2, 640, 128)


@pytest.fixture
def csm90(sm90: pytest.MonkeyPatch):  # noqa: F811 (the imported fixture)
    """test_gluon_schedule's sm_90 stand-in (its fixture ``sm90``) with contig's Gluon check and no CUDA-graph
    capture."""
    sm90.setattr(gluon_contig, "contig_available", lambda: None)
    sm90.setattr(gluon_fg_list, "_capturing", lambda: False)
    return sm90


@pytest.mark.parametrize("case", ["sm90", "sm80", "fp32", "lse", "nogluon", "misaligned", "stride", "k_misaligned",
                                  "v_stride", "env", "interp"])
@pytest.mark.parametrize("kernel", ["dense", "block"])
def test_contig_route_rule(csm90: pytest.MonkeyPatch, kernel: str, case: str) -> None:
    if case == "sm80":
        csm90.setattr(torch.cuda, "get_device_capability", lambda dev=None: (8, 0))
    if case == "nogluon":
        csm90.setattr(gluon_contig, "contig_available", lambda: "ImportError: no gluon")
    if case == "env":
        csm90.setenv("FGATTN_GLUON", "0")
    if case == "interp":
        csm90.setenv("TRITON_INTERPRET", "1")
    q = _Q(dtype=torch.float32 if case == "fp32" else torch.bfloat16,
           ptr=(1 << 20) + (8 if case == "misaligned" else 0),
           stride=(128 * 640, 128 * 640, 4 if case == "stride" else 128, 1))
    k = _Q(ptr=(1 << 21) + (4 if case == "k_misaligned" else 0))
    v = _Q(stride=(128 * 640, 128 * 640, 12 if case == "v_stride" else 128, 1))
    impl, why = attention.contig_route(q, _contig(kernel), return_lse=case == "lse", k=k, v=v)
    want = {"sm90": ("gluon", "form contig (fgattn.gluon_contig"), "sm80": ("tl", "sm_80"), "fp32": ("tl", "float32"),
            "lse": ("tl", "return_lse (the Gluon form has no LSE output)"), "nogluon": ("tl", "no Gluon"),
            "misaligned": ("tl", "q's base"), "stride": ("tl", "q's base"),
            "k_misaligned": ("tl", "k's base or strides not 16-byte aligned (the Gluon form reads K / V by TMA)"),
            "v_stride": ("tl", "v's base"), "env": ("tl", "FGATTN_GLUON=0"), "interp": ("tl", "TRITON_INTERPRET=1")}
    assert impl == want[case][0] and want[case][1] in why, (impl, why)
    # the fg route of the packaged fg entry is unchanged by the shared rule (same reasons, its own K / V wording)
    fg = launch_config("fg", "h200", 128, 128, 1, table_path=str(PACKAGED))
    fimpl, fwhy = attention.fg_route(q, fg, return_lse=case == "lse", k=k, v=v)
    if case in ("sm90", "nogluon"):  # contig_available is patched, gluon_fg's is not / the fg entry's rule
        assert fimpl == "gluon" or case == "nogluon"
    else:
        assert fimpl == "tl" and fwhy.replace("gathers 16-byte vectors", "reads K / V by TMA") == why, (fwhy, why)


def test_contig_route_refuses_an_fg_config_and_bad_knobs(csm90: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"^config: contig_route is for dense / block entries, not 'fg'"):
        attention.contig_route(_Q(), launch_config("fg", "h200", 128, 128, 1, table_path=str(PACKAGED)))
    with pytest.raises(ValueError, match=r"^config: extra\.gluon\.pipeline=2 must be one of \[1, 3\]"):
        attention.contig_route(_Q(), _contig("dense", {"form": "contig", "pipeline": 2}))
    with pytest.raises(ValueError, match=r"^config: extra\.impl='gluon' exists only .* not dense with extra\.gluon\."
                                         r"form='ws2'"):
        fgattn.dense_attention(*(torch.zeros(1, 1, 64, 128, dtype=torch.float16),) * 3,
                               config=_contig("dense", {"form": "ws2"}))


def _block_index(seed: int, h: int = 2, n: int = 640, order: bool = True):
    g = torch.Generator().manual_seed(seed)
    qb = -(-n // 128)
    tiles = torch.rand(1, h, qb, qb, generator=g) < 0.4
    tiles[0, 0, 0] = False  # an empty query block
    tiles[0, -1, -1] = True  # a full one
    tiles[0, -1, -1, :] = True
    mask = tiles.repeat_interleave(128, dim=-1)[..., :n]
    return fgattn.build_index(mask, block_m=128, gran_n=128, order=order)


def test_route_under_capture_needs_a_prepared_plan(csm90: pytest.MonkeyPatch) -> None:
    idx = _block_index(_seed())
    q = torch.zeros(1, 2, 640, 128, dtype=torch.float16)
    csm90.setattr(gluon_fg_list, "_capturing", lambda: True)
    impl, why = attention.contig_route(_Q(), _contig("block"), block_index=idx)
    assert impl == "tl" and why.startswith("CUDA-graph capture and no contig plan prepared for this block index"), why
    impl, why = attention.contig_route(_Q(), _contig("dense"))
    assert impl == "tl" and "for this shape" in why, why
    with pytest.raises(ValueError, match=r"^fgattn\.contig_plans: prepare_contig_plan reads the row counts"):
        contig_plans.prepare_contig_plan(q, q, idx)
    csm90.setattr(gluon_fg_list, "_capturing", lambda: False)
    plan = contig_plans.prepare_contig_plan(q, q, idx, programs=4)
    real = gluon_contig.plan_contig  # the fake CUDA q's plan tensors on the CPU
    csm90.setattr(gluon_contig, "plan_contig", lambda **kw: real(**{**kw, "device": "cpu"}))
    dplan = contig_plans.prepare_contig_plan(_Q(), _Q(), programs=4)
    assert dplan.dense and dplan.n_rows == 2 * 5
    csm90.setattr(gluon_fg_list, "_capturing", lambda: True)
    assert attention.contig_route(_Q(), _contig("block"), block_index=idx) == \
        ("gluon", "form contig (fgattn.gluon_contig, plan prepared before capture)")
    assert attention.contig_route(_Q(), _contig("dense"), k=_Q())[0] == "gluon"
    kw = dict(batch=1, heads=2, n_q=640, n_kv=640, programs=4)
    again = contig_plans.cached_contig_plan(block_index=idx, device="cpu", **kw)  # no host work
    assert again.rows is plan.rows and again.boffsets is idx.offsets and again.blocks is idx.indices
    assert contig_plans.cached_contig_plan(device=_Q().device, **kw) is dplan
    assert contig_plans.cached_contig_plan(device=_Q().device, **{**kw, "n_kv": 512}) is None  # not prepared
    with pytest.raises(ValueError, match=r"^fgattn\.contig_plans: layout must be"):
        csm90.setattr(gluon_fg_list, "_capturing", lambda: False)
        contig_plans.prepare_contig_plan(q, q, idx, layout="nhd")


# ------------------------------------------------------------------------------------------------ dispatch
def _recorder(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []

    def run(q, k, v, **kw):
        calls.append(kw)
        return kw["out"] if kw.get("out") is not None else q

    monkeypatch.setattr(attention, "contig_route", lambda q, cfg, **kw: ("tl", "lse") if kw.get("return_lse")
                        else ("gluon", "form contig"))
    monkeypatch.setattr(gluon_contig, "contig_attention_gluon", run)
    return calls


def test_block_dispatch_runs_contig_with_a_plan_memoised_per_index(csm90: pytest.MonkeyPatch) -> None:
    calls = _recorder(csm90)
    seed = _seed()
    idx = _block_index(seed)
    q = torch.zeros(1, 2, 640, 128, dtype=torch.float16)
    for _ in range(2):
        fgattn.block_sparse_attention(q, q, q, idx, config=_contig("block"), sm_scale=0.1, layout="bhnd")
    p = calls[0]["plan"]
    assert len(calls) == 2 and calls[1]["plan"].rows is p.rows and calls[1]["plan"].koffsets is p.koffsets  # reused
    assert p.boffsets is idx.offsets and p.blocks is idx.indices and calls[1]["plan"].boffsets is idx.offsets
    ref = gluon_contig.plan_contig(batch=1, heads=2, n_q=640, n_kv=640, programs=4, block_index=idx)
    assert torch.equal(p.rows, ref.rows) and torch.equal(p.start, ref.start) and not p.dense
    assert torch.equal(p.koffsets, ref.koffsets) and p.programs == 4
    assert {k: calls[0][k] for k in ("pipeline", "pingpong", "regs", "sm_scale", "layout")} == dict(
        pipeline=1, pingpong=True, regs=(240, 24), sm_scale=0.1, layout="bhnd")
    assert calls[0]["block_index"] is idx and calls[0]["out"] is None
    idx.indices.add_(0)  # an in-place write: a new plan, the old one kept (a captured graph may read it)
    fgattn.block_sparse_attention(q, q, q, idx, config=_contig("block"))
    assert calls[2]["plan"].rows is not p.rows and len(gluon_fg_list._plans_of(idx.offsets)) == 2
    # an entry with lpt false plans the natural order (as the tl kernel runs it)
    nolpt = _contig("block")
    nolpt = dataclasses.replace(nolpt, extra={**nolpt.extra, "lpt": False})
    fgattn.block_sparse_attention(q, q, q, idx, config=nolpt)
    nat = gluon_contig.plan_contig(batch=1, heads=2, n_q=640, n_kv=640, programs=4,
                                   block_index=dataclasses.replace(idx, order=None))
    assert calls[3]["block_index"].order is None and torch.equal(calls[3]["plan"].rows, nat.rows)


def test_memoised_block_plans_die_with_their_index(csm90: pytest.MonkeyPatch) -> None:
    import gc

    idx = _block_index(_seed())
    plan = contig_plans.cached_contig_plan(batch=1, heads=2, n_q=640, n_kv=640, programs=4, block_index=idx)
    assert plan.boffsets is idx.offsets
    key = id(idx.offsets)
    del idx, plan
    gc.collect()
    assert key not in gluon_fg_list._PLANS


def test_an_index_with_no_kept_block_keeps_its_substitute_block_number(csm90: pytest.MonkeyPatch) -> None:
    mask = torch.zeros(1, 1, 2, 200, dtype=torch.bool)
    idx = fgattn.build_index(mask, block_m=128, gran_n=128)
    kw = dict(batch=1, heads=1, n_q=200, n_kv=200, programs=4, block_index=idx)
    a, b = contig_plans.cached_contig_plan(**kw), contig_plans.cached_contig_plan(**kw)
    assert idx.indices.numel() == 0 and a.blocks.numel() == 1 and b.blocks is a.blocks


def test_dense_dispatch_runs_contig_with_a_plan_per_shape(csm90: pytest.MonkeyPatch) -> None:
    calls = _recorder(csm90)
    q = torch.zeros(2, 300, 3, 128, dtype=torch.float16)  # bnhd, odd N
    k = torch.zeros(2, 200, 3, 128, dtype=torch.float16)
    out = torch.empty_like(q)
    fgattn.dense_attention(q, k, k, layout="bnhd", config=_contig("dense"), out=out)
    fgattn.dense_attention(q, k, k, layout="bnhd", config=_contig("dense"))
    assert len(calls) == 2 and calls[0]["plan"] is calls[1]["plan"] and calls[0]["block_index"] is None
    p = calls[0]["plan"]
    assert p.dense and p.n_rows == 2 * 3 * 3 and p.n_kv == 200 and p.programs == 4 and calls[0]["out"] is out
    ref = gluon_contig.plan_contig(batch=2, heads=3, n_q=300, n_kv=200, programs=4)
    assert torch.equal(p.rows, ref.rows) and torch.equal(p.start, ref.start)


def test_return_lse_and_cpu_run_the_tl_entry(csm90: pytest.MonkeyPatch) -> None:
    """return_lse (the route says tl) and any call the route sends to tl launch the entry's tl kernel, which is the
    packaged entry's (tl_config), never the Gluon form."""
    calls = _recorder(csm90)
    seen: list = []
    real = attention._launch

    def spy(mode, q, k, v, index, cfg, *a):
        seen.append((mode, cfg))
        return (q, torch.zeros(1)) if a[-1] else q

    csm90.setattr(attention, "_launch", spy)
    idx = _block_index(_seed())
    q = torch.zeros(1, 2, 640, 128, dtype=torch.float16)
    fgattn.block_sparse_attention(q, q, q, idx, config=_contig("block"), return_lse=True)
    fgattn.dense_attention(q, q, q, config=_contig("dense"), return_lse=True)
    assert calls == [] and [m for m, _ in seen] == [attention.MODE_BLOCK, attention.MODE_DENSE]
    assert seen[0][1] == _tl("block") and seen[1][1] == _tl("dense")  # the passed config's tl_config
    csm90.setattr(attention, "_launch", real)


def test_table_before_dispatch_is_the_tl_kernel_as_before(csm90: pytest.MonkeyPatch) -> None:
    """Under the table before adoption (181d183) nothing reaches the contig form or its route (the dense / block
    entries are tl), even where the Gluon form could run."""
    calls = _recorder(csm90)
    csm90.setattr(attention, "contig_route", lambda *a, **kw: pytest.fail("contig_route called for a tl entry"))
    seen: list = []
    csm90.setattr(attention, "_launch", lambda mode, q, k, v, index, cfg, *a: seen.append(cfg) or q)
    csm90.setenv("FGATTN_LAUNCH_TABLE", str(BEFORE))
    load_table.cache_clear()
    try:
        idx = _block_index(_seed())
        q = torch.zeros(1, 2, 640, 128, dtype=torch.float16)
        fgattn.block_sparse_attention(q, q, q, idx)
        fgattn.dense_attention(q, q, q)
        assert calls == [] and seen == [_tl("block", "fp16"), _tl("dense", "fp16")]
    finally:
        load_table.cache_clear()


@pytest.mark.parametrize("table", ["packaged", "candidate"])
def test_contig_tables_dispatch_contig(csm90: pytest.MonkeyPatch, table: str) -> None:
    """The packaged table (no FGATTN_LAUNCH_TABLE; since session 14) and FGATTN_LAUNCH_TABLE=candidate: dense / block
    D128 M128 calls without a config reach the contig form with the adopted knobs (contig_pp), a return_lse call the
    entry's tl kernel; D64 / M64 calls and the fg entry are the packaged table's."""
    calls = _recorder(csm90)
    seen: list = []
    real = attention._launch
    csm90.setattr(attention, "_launch", lambda mode, q, k, v, index, cfg, *a: seen.append(cfg) or q)
    if table == "candidate":
        csm90.setenv("FGATTN_LAUNCH_TABLE", str(CANDIDATE))
    else:
        csm90.delenv("FGATTN_LAUNCH_TABLE", raising=False)
    load_table.cache_clear()
    try:
        idx = _block_index(_seed())
        q = torch.zeros(1, 2, 640, 128, dtype=torch.float16)
        fgattn.block_sparse_attention(q, q, q, idx)
        fgattn.dense_attention(q, q, q)
        assert len(calls) == 2 and all(c["regs"] == (240, 24) and c["pingpong"] for c in calls) and seen == []
        assert not calls[0]["plan"].dense and calls[1]["plan"].dense
        fgattn.dense_attention(q, q, q, return_lse=True)
        strip = lambda c: dataclasses.replace(c, source="")  # noqa: E731
        assert len(calls) == 2 and [strip(c) for c in seen] == [strip(_tl("dense", "fp16"))]
        for kernel, d, m in (("dense", 64, 128), ("dense", 128, 64), ("block", 128, 64)):
            assert launch_config(kernel, "h200", d, m).impl == "tl"
        fg = launch_config("fg", "h200", 128, 128, 1)
        assert fg == launch_config("fg", "h200", 128, 128, 1, table_path=str(CANDIDATE if table == "candidate"
                                                                                 else PACKAGED))
    finally:
        csm90.setattr(attention, "_launch", real)
        load_table.cache_clear()


def test_contig_entry_on_cpu_runs_the_tl_kernel_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interpreter: a contig config gives exactly the tl entry's output (the route is tl there), fp16, tiny."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    g = torch.Generator().manual_seed(_seed())
    q, k, v = (torch.randn(1, 1, 150, 128, generator=g).to(torch.float16) for _ in range(3))
    a = fgattn.dense_attention(q, k, v, config=_tl("dense"))
    b = fgattn.dense_attention(q, k, v, config=_contig("dense"))
    assert torch.equal(a, b)
    ref = fgattn.reference_attention(q, k, v, None)
    assert float((b.double() - ref).norm() / ref.norm()) < 3e-3


def test_compile_report_table_variants_of_the_candidate() -> None:
    """compile_report --table: the table before adoption has no contig variant, the candidate (= the packaged
    table's variants) adds one contig variant before each of the two tl fallbacks, with the dense / block mode (no
    compile here)."""
    import compile_report

    pack = compile_report.table_variants(path=str(BEFORE))
    cand = compile_report.table_variants(path=str(CANDIDATE))
    assert compile_report.table_variants(path=str(AT_300AD25)) == cand
    contig = [v for v in cand if "gluon contig" in v[0]]
    assert not [v for v in pack if "contig" in v[0]] and [v for v in cand if v not in contig] == pack
    assert sorted((v[0].split()[1], v[1]) for v in contig) == [("block", 1), ("dense", 0)]
    assert all(v[-1] == {"impl": "gluon", "gluon": PP} and v[7] == 4 for v in contig)
    load_table.cache_clear()


def test_gpu_check_contig_cases_and_chunk_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """gpu_check_kernels --contig: the case list covers the brief, the worker runs end to end on the CPU interpreter
    under the candidate (route tl there, no Gluon launch: both asserted), a wrong output is reported, and the
    packaged table is refused with exit 2."""
    import gpu_check_kernels as gc

    cases = gc.contig_cases(600, seed=11)
    assert cases == gc.contig_cases(600, seed=11) and len(cases) == 600
    assert {c["kind"] for c in cases} == {"dense", "block", "fg"} and {c["dtype"] for c in cases} == {"bf16", "fp16"}
    assert {c["layout"] for c in cases} == {"bhnd", "bnhd"} and any(c["n"] % 2 for c in cases)
    assert any(c["lse"] for c in cases) and any(c["text"] for c in cases) and any(c["n_kv"] != c["n"] for c in cases)
    assert {c["sms"] for c in cases} >= {None, 1, 3, 7, 20} and {c["order"] for c in cases} == {True, False}
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(CANDIDATE))
    monkeypatch.setattr(gc, "DEV", "cpu")
    load_table.cache_clear()
    assert gc.contig_table_error() is None
    base = dict(seed=3, dtype="fp16", layout="bnhd", b=1, h=1, text=0, density=0.3, order=True, sms=3,
                sm_scale=0.05, lse=False)
    tiny = [dict(base, i=0, kind="dense", n=65, n_kv=129), dict(base, i=1, kind="block", n=129, n_kv=129, lse=True),
            dict(base, i=2, kind="fg", n=129, n_kv=129, layout="bhnd")]
    n0 = len(gc.FAILS)
    count, fails = gc.check_contig_chunk(tiny)
    assert (count, fails) == (4, []), fails  # 3 outputs + 1 lse
    real = fgattn.dense_attention

    def broken(*a, **kw):
        res = real(*a, **kw)
        kw["out"].mul_(1.1)
        return res

    monkeypatch.setattr(fgattn, "dense_attention", broken)
    count, fails = gc.check_contig_chunk(tiny[:1])
    assert count == 1 and len(fails) == 1 and "contig case 0 dense" in fails[0]
    del gc.FAILS[n0:]
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(BEFORE))
    load_table.cache_clear()
    assert "has impl tl (set FGATTN_LAUNCH_TABLE" in gc.contig_table_error()
    monkeypatch.delenv("FGATTN_LAUNCH_TABLE")
    load_table.cache_clear()
    assert gc.contig_table_error() is None  # the packaged table since session 14
    load_table.cache_clear()


# ------------------------------------------------------------------------------------------------ session 15, K7
SEL = ROOT / "kernels" / "logs" / "launch_configs-candidate-contig-tma-sel.json"
SEL_NOPP = ROOT / "kernels" / "logs" / "launch_configs-candidate-contig-tma-sel-nopp.json"


def test_contig_epilogue_knob_validated_and_mapped(tmp_path: Path) -> None:
    """extra.gluon.epilogue on a contig entry: the fixed row ends of gluon_fg.EPILOGUES (default "stg"); a bad value is
    one line naming the table file and entry (launch.py) or the argument (gluon_contig); the constexprs are the fg
    entry's for the same name."""
    from fgattn import gluon_fg

    assert CONTIG_KNOBS["epilogue"] == (tuple(gluon_fg.EPILOGUES), "stg")
    for kernel in ("dense", "block"):
        for epi in gluon_fg.EPILOGUES:
            p = _table(tmp_path, kernel, {**PP, "epilogue": epi})
            assert launch_config(kernel, "h200", 128, 128, table_path=str(p)).gluon_options()["epilogue"] == epi
        for bad in ("auto:tma:112", "rcp", True, None):
            p = _table(tmp_path, kernel, {**PP, "epilogue": bad})
            with pytest.raises(ValueError) as e:
                load_table(str(p))
            msg = str(e.value)
            assert len(msg.splitlines()) == 1 and str(p) in msg and f"extra.gluon.epilogue={bad!r}" in msg, msg
            assert "(form 'contig')" in msg
            load_table.cache_clear()
    for epi, want in gluon_fg.EPILOGUES.items():
        got = gluon_contig._constexprs(False, (240, 24), 1, True, epi)
        assert {k: got[k] for k in ("TMA_O", "OFFS_AHEAD", "RCP") if k in got} == want
        assert got["PINGPONG"] is True and got["PIPE"] == 1
    assert "TMA_O" not in gluon_contig._constexprs(True, (240, 24), 1, True)  # "stg": the binary without the knob
    for bad in ("auto:tma:112", "tma_rcp", 2):
        with pytest.raises(ValueError, match=r"^fgattn\.gluon_contig: epilogue=.* must be one of \('stg'"):
            gluon_contig._constexprs(True, (240, 24), 1, True, bad)


def test_contig_epilogue_candidates_differ_only_in_the_contig_row_end() -> None:
    """The two candidate tables are the packaged table with the dense / block D128 M128 contig entries' epilogue
    tma_sel (and, -nopp, ping-pong off), every other field and entry equal (since the block entry's adoption in
    session 15 the packaged block entry is candidate A's but for its source)."""
    pk = json.loads(PACKAGED.read_text())["entries"]
    for path, pp in ((SEL, True), (SEL_NOPP, False)):
        cand = json.loads(path.read_text())["entries"]
        s17 = [("fg", 128, 128, 16), ("fg", 128, 128, 64)]  # session 17 (K): adopted impl gluon + expand since
        diffs = [(a, b) for a, b in zip(pk, cand, strict=True) if a != b
                 and (a["kernel"], a["head_dim"], a["block_m"], a["gran_n"]) not in s17]
        assert sorted((b["kernel"], b["block_m"]) for _, b in diffs) == [("block", 128), ("dense", 128)]
        for a, b in diffs:
            b, a = json.loads(json.dumps(b)), json.loads(json.dumps(a))
            assert b["extra"]["gluon"] == {**PP, "epilogue": "tma_sel", "pingpong": pp}
            assert a["extra"]["gluon"] == {**PP, **({"epilogue": "tma_sel"} if a["kernel"] == "block" else {})}
            assert "Session 15, K7" in b["source"]
            assert {**b, "source": "", "extra": {}} == {**a, "source": "", "extra": {}}
            assert {**b["extra"], "gluon": 0} == {**a["extra"], "gluon": 0}
        load_table.cache_clear()


def test_contig_epilogue_candidate_dispatches_tma_sel(csm90: pytest.MonkeyPatch) -> None:
    """FGATTN_LAUNCH_TABLE=the tma_sel candidate: dense / block D128 M128 calls reach the contig form with
    epilogue tma_sel (and ping-pong); the packaged table (since session 15) passes tma_sel for block, "stg" for
    dense."""
    calls = _recorder(csm90)
    idx = _block_index(_seed())
    q = torch.zeros(1, 2, 640, 128, dtype=torch.float16)
    try:
        for table, want in ((SEL, ["tma_sel", "tma_sel"]), (None, ["tma_sel", "stg"])):
            if table is None:
                csm90.delenv("FGATTN_LAUNCH_TABLE", raising=False)
            else:
                csm90.setenv("FGATTN_LAUNCH_TABLE", str(table))
            load_table.cache_clear()
            calls.clear()
            fgattn.block_sparse_attention(q, q, q, idx)
            fgattn.dense_attention(q, q, q)
            assert [(c["epilogue"], c["pingpong"], c["regs"]) for c in calls] == [(w, True, (240, 24)) for w in want]
    finally:
        load_table.cache_clear()


def test_compile_report_names_the_contig_row_end() -> None:
    """compile_report --table on the candidate: the contig variants carry the epilogue knob (their SASS file names
    differ from the packaged ones: kernels/logs/sass-sha256-contig-k7.txt); on the packaged table (session 15) only
    the block one does."""
    import compile_report

    sel = 'epilogue="tma_sel" '
    for path, tags in ((SEL, (sel, sel)), (PACKAGED, (sel, "")), (AT_300AD25, ("", ""))):
        vs = [v for v in compile_report.table_variants(path=str(path)) if "gluon contig" in v[0]]
        want = zip((("block", 128), ("dense", 1)), tags, strict=True)
        assert [v[0] for v in vs] == [f"table {k} D128 M128 g{g} gluon contig {t}pingpong=true pipeline=1 "
                                      "regs=[240, 24]" for (k, g), t in want]
