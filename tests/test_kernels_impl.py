"""The launch table's implementation choice (``extra["impl"]``: tl or gluon, issue 12): table validation of every
knob with its message, the dispatch rule of ``fgattn.fg_route`` / ``fg_attention`` (CPU, interpreter, other GPUs ->
the entry's tl kernel, same outputs), and the adoption tooling built on it (bench_kernels v11, gpu_check --gluon,
compile_report's Gluon variants).  CPU only, seconds."""

import dataclasses
import json
import random
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

import fgattn  # noqa: E402
from fgattn import attention, gluon_fg  # noqa: E402
from fgattn.launch import GLUON_KNOBS, LaunchConfig, check_impl, impl_for_arch, launch_config, load_table  # noqa: E402

PIPE1 = {"form": "ws2", "pipeline": 1, "fence": False}


def _entry() -> LaunchConfig:
    """The packaged fg D128 M128 g1 entry's tl kernel (the entry itself says impl gluon since session 11)."""
    return launch_config("fg", "h200", 128, 128, 1).tl_config()


def _gluon(knobs: dict | None = None) -> LaunchConfig:
    e = _entry()
    return dataclasses.replace(e, extra={**e.extra, "impl": "gluon", "gluon": dict(knobs or PIPE1)})


def _table(tmp_path: Path, extra: dict, key: tuple = ("fg", 128, 128, 1), name: str = "table.json") -> Path:
    kernel, d, m, g = key
    data = {"entries": [dict(kernel=kernel, gpu="h200", head_dim=d, block_m=m, gran_n=g, block_n=128, num_warps=8,
                             num_stages=3, layout="bhnd", extra=extra, source="test")]}
    p = tmp_path / name
    p.write_text(json.dumps(data))
    load_table.cache_clear()
    return p


def test_packaged_table_adopts_gluon_on_three_entries_only() -> None:
    """Session 11 (run 9 sweep, kernels/NOTES.md): the fg D128 M128 g1 entry says impl gluon, form ws2 pipeline 1
    without the consumer fence; session 13 adds the list schedule to it (kernels/logs/launch_configs-at-d370267.json
    is the table before); session 14 makes the dense / block D128 M128 entries impl gluon, form contig
    (kernels/logs/launch_configs-at-181d183.json is the table before, tests/test_contig_dispatch.py the details).
    The Gluon entries' tl fallbacks and every other entry are the table before session 10 (9245ed4,
    kernels/logs/launch_configs-before-session10.json) field for field."""
    logs = ROOT / "kernels" / "logs"
    table = load_table(str(logs / "launch_configs-at-300ad25.json"))  # before session 15 (fg tma_sel: K7 tests)
    before = load_table(str(logs / "launch_configs-before-session10.json"))
    walk = load_table(str(logs / "launch_configs-at-d370267.json"))
    pre_contig = load_table(str(logs / "launch_configs-at-181d183.json"))
    gl = [k for k, e in table.items() if e.get("extra", {}).get("impl", "tl") == "gluon"]
    contig = [("block", "h200", 128, 128, 128), ("dense", "h200", 128, 128, 1)]
    assert sorted(gl) == sorted([("fg", "h200", 128, 128, 1), *contig])
    assert set(table) == set(before) == set(walk) == set(pre_contig)
    for k, e in table.items():
        tl = {f: v for f, v in e.items() if f != "source"}
        if k in gl:
            tl["extra"] = {o: v for o, v in tl["extra"].items() if o not in ("impl", "gluon")}
        assert tl == {f: v for f, v in before[k].items() if f != "source"}, k
        if k not in contig:
            assert e == pre_contig[k], k  # session 14 changed only the dense / block D128 M128 entries
        if k not in gl:
            assert e == walk[k], k  # session 13 changed only the fg Gluon entry
    e, w = table[gl[0]], walk[gl[0]]
    assert gl[0] == ("fg", "h200", 128, 128, 1)
    assert {**w["extra"], "gluon": {**w["extra"]["gluon"], "schedule": "list"}} == e["extra"]
    assert {f: v for f, v in e.items() if f not in ("extra", "source")} == \
        {f: v for f, v in w.items() if f not in ("extra", "source")}
    cfg = launch_config("fg", "h200", 128, 128, 1, table_path=str(logs / "launch_configs-at-300ad25.json"))
    assert cfg.impl == "gluon" and cfg.extra["gluon"] == {**PIPE1, "schedule": "list"}
    assert cfg.gluon_schedule() == "list" and "kernels-h200-2026-11-30-ws2-list-rule3.csv" in cfg.source
    old = launch_config("fg", "h200", 128, 128, 1, table_path=str(logs / "launch_configs-before-session10.json"))
    strip = lambda c: dataclasses.replace(c, source="")  # noqa: E731 - the source names the run-9 sweep
    assert old.impl == "tl" and strip(cfg.tl_config()) == strip(old) and strip(_entry()) == strip(old)
    for k in contig:
        assert table[k]["extra"]["gluon"]["form"] == "contig"
        assert "kernels-h200-2026-11-30-issue12-run11.csv" in table[k]["source"]


def test_gluon_entry_reads_knobs_and_keeps_the_tl_fallback(tmp_path: Path) -> None:
    tl = _entry()
    p = _table(tmp_path, {**tl.extra, "impl": "gluon", "gluon": {"form": "ws2", "pipeline": 3, "fence": False,
                                                                  "regs": [224, 56]}})
    cfg = launch_config("fg", "h200", 128, 128, 1, table_path=str(p))
    assert cfg.impl == "gluon"
    assert cfg.gluon_options() == dict(form="ws2", pipeline=3, consumer_fence=False, exp_poly=0, pingpong=False,
                                       regs=(224, 56), epilogue="stg")
    fb = cfg.tl_config()
    assert fb.impl == "tl" and "gluon" not in fb.extra and fb.extra == tl.extra
    assert (fb.block_n, fb.num_stages, fb.num_warps) == (128, 3, 8)
    assert impl_for_arch(cfg, "sm90") == "gluon" and impl_for_arch(cfg, "sm80") == "tl"
    assert impl_for_arch(tl, "sm90") == "tl"
    with pytest.raises(ValueError, match="config: impl='tl' has no Gluon options"):
        tl.gluon_options()


BAD = [
    ({"impl": "triton"}, r"extra\.impl='triton' must be one of \['tl', 'gluon'\]"),
    ({"gluon": {"form": "ws2"}}, r"extra\.gluon is given but extra\.impl is 'tl'"),
    ({"impl": "gluon"}, r"needs extra\.gluon, an object with at least 'form'"),
    ({"impl": "gluon", "gluon": ["ws2"]}, r"needs extra\.gluon, an object with at least 'form'"),
    ({"impl": "gluon", "gluon": {"pipeline": 1}}, r"needs extra\.gluon, an object with at least 'form'"),
    ({"impl": "gluon", "gluon": {"form": "ws3"}}, r"extra\.gluon\.form='ws3' must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "stages": 4}}, r"extra\.gluon has unknown knobs \['stages'\]"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "pipeline": 4}}, r"extra\.gluon\.pipeline=4 must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "pipeline": True}}, r"extra\.gluon\.pipeline=True must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "pipeline": "1"}}, r"extra\.gluon\.pipeline='1' must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "fence": 0}}, r"extra\.gluon\.fence=0 must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "exp_poly": 0.5}}, r"extra\.gluon\.exp_poly=0\.5 must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "pingpong": 1}}, r"extra\.gluon\.pingpong=1 must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "regs": [220, 64]}}, r"extra\.gluon\.regs=\[220, 64\] must be"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "regs": [232, 56]}}, r"consumer \+ producer <= 280"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "regs": 216}}, r"extra\.gluon\.regs=216 must be"),
    ({"impl": "gluon", "gluon": {"form": "ws", "pipeline": 1}}, r"extra\.gluon\.pipeline is a knob of form 'ws2'"),
    ({"impl": "gluon", "gluon": {"form": "ws", "exp_poly": 0.25}}, r"extra\.gluon\.exp_poly is a knob of form"),
    ({"impl": "gluon", "gluon": {"form": "one_row", "fence": False}}, r"extra\.gluon\.fence is a knob of forms"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "epilogue": "tmaa"}}, r"extra\.gluon\.epilogue='tmaa' must be one of "
                                                                      r"\['stg', 'tma', 'tma_offs', 'tma_sel', 'tma_defer', 'tma_defer_pv'\]"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "epilogue": True}}, r"extra\.gluon\.epilogue=True must be one of"),
    ({"impl": "gluon", "gluon": {"form": "ws", "epilogue": "tma"}}, r"extra\.gluon\.epilogue is a knob of form 'ws2'"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "pipeline": 1, "epilogue": "tma"}},
     r"extra\.gluon\.epilogue='tma' is measured only with extra\.gluon\.schedule='list'"),
    ({"impl": "gluon", "gluon": {"form": "ws2", "pipeline": 1, "fence": False, "pingpong": True, "schedule": "list",
                                 "epilogue": "tma"}}, r"extra\.gluon\.schedule='list' runs fgattn\.gluon_fg_list's"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_impl_values_one_line_naming_file_and_entry(tmp_path: Path, i: int) -> None:
    extra, needle = BAD[i]
    p = _table(tmp_path, extra)
    with pytest.raises(ValueError, match=needle) as ei:
        launch_config("fg", "h200", 128, 128, 1, table_path=str(p))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"{p}: entry fg/h200/D128/M128/g1: "), msg
    load_table.cache_clear()


@pytest.mark.parametrize("key", [("fg", 128, 128, 16), ("fg", 128, 64, 1), ("fg", 64, 128, 1), ("dense", 128, 128, 1)])
def test_gluon_only_for_fg_d128_m128_g1(tmp_path: Path, key: tuple) -> None:
    p = _table(tmp_path, {"impl": "gluon", "gluon": {"form": "ws2"}}, key)
    with pytest.raises(ValueError, match=r"extra\.impl='gluon' exists only for kernel fg, head_dim 128, block_m 128"):
        load_table(str(p))
    load_table.cache_clear()


def test_knob_sets_match_gluon_fg() -> None:
    """launch.py (pure Python) mirrors fgattn.gluon_fg's knob values; the two validators agree on a grid."""
    assert GLUON_KNOBS["form"][0] == gluon_fg.FORMS
    assert GLUON_KNOBS["pipeline"][0] == gluon_fg.PIPELINES
    assert set(GLUON_KNOBS["exp_poly"][0]) == set(gluon_fg.EXP_POLY)
    seed = random.randrange(2**31)
    print("seed", seed)
    rng = random.Random(seed)
    regs_pool = [None, [216, 64], [224, 56], [240, 40], [232, 56], [220, 60], [240, 24], [64, 64], [24, 16],
                 [248, 24], [200, 80]]
    n_ok = n_bad = 0
    for _ in range(600):
        form = rng.choice(gluon_fg.FORMS)
        kw = dict(pipeline=rng.choice((0, 0, 1, 2, 3, 5)), exp_poly=rng.choice((0, 0, 0.25, 0.125)),
                  pingpong=rng.choice((False, False, True)), regs=rng.choice(regs_pool))
        try:
            gluon_fg.check_ws2_knobs(form, **{**kw, "regs": None if kw["regs"] is None else tuple(kw["regs"])})
            ref_ok = True
        except ValueError:
            ref_ok = False
        try:
            check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": {"form": form, **kw}}, "t")
            ok = True
        except ValueError:
            ok = False
        assert ok == ref_ok, (form, kw)
        n_ok += ok
        n_bad += not ok
    assert n_ok > 20 and n_bad > 20


def test_route_rule_on_cpu_and_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q = torch.zeros(1, 1, 256, 128, dtype=torch.float16)
    assert fgattn.fg_route(q, _entry()) == ("tl", "entry impl tl")
    impl, why = fgattn.fg_route(q, _gluon())
    assert impl == "tl" and "CUDA" in why
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert fgattn.fg_route(q, _gluon()) == ("tl", "TRITON_INTERPRET=1 (the Gluon form has no interpreter path)")
    monkeypatch.setenv("FGATTN_GLUON", "0")
    assert fgattn.fg_route(q, _gluon()) == ("tl", "FGATTN_GLUON=0")
    bad = _gluon({"form": "ws2", "pipeline": 7})
    with pytest.raises(ValueError, match=r"config: extra\.gluon\.pipeline=7 must be one of"):
        fgattn.fg_route(q, bad)  # invalid knobs raise even where the tl kernel would run


class _FakeCudaQ:
    """Just enough of a CUDA tensor for fg_route (no GPU needed)."""

    def __init__(self, dtype=torch.bfloat16, ptr: int = 1 << 20, stride=(128 * 256, 128 * 256, 128, 1)):
        self.device = types.SimpleNamespace(type="cuda")
        self.dtype, self._ptr, self._stride = dtype, ptr, stride

    def data_ptr(self) -> int:
        return self._ptr

    def stride(self):
        return self._stride

    def element_size(self) -> int:
        return 2 if self.dtype != torch.float32 else 4


@pytest.mark.parametrize("case", ["sm90", "sm80", "sm100", "fp32", "lse", "nogluon", "misaligned", "stride",
                                  "kv_misaligned"])
def test_route_rule_on_gpus(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    cap = {"sm80": (8, 0), "sm100": (10, 0)}.get(case, (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda dev=None: cap)
    monkeypatch.setattr(gluon_fg, "gluon_available", lambda: "ImportError: no gluon" if case == "nogluon" else None)
    q = _FakeCudaQ(dtype=torch.float32 if case == "fp32" else torch.bfloat16,
                   ptr=(1 << 20) + (8 if case == "misaligned" else 0),
                   stride=(128 * 256, 128 * 256, 4 if case == "stride" else 128, 1))  # 4 elements = 8 B
    kv = _FakeCudaQ(ptr=(1 << 21) + (4 if case == "kv_misaligned" else 0))
    impl, why = attention.fg_route(q, _gluon(), return_lse=case == "lse", k=_FakeCudaQ(), v=kv)
    want = {"sm90": ("gluon", ""), "sm80": ("tl", "sm_80"), "sm100": ("tl", "sm_100"), "fp32": ("tl", "float32"),
            "lse": ("tl", "return_lse"), "nogluon": ("tl", "no Gluon"), "misaligned": ("tl", "q's base"),
            "stride": ("tl", "q's base"), "kv_misaligned": ("tl", "v's base")}[case]
    assert impl == want[0] and want[1] in why, (impl, why)


def test_gluon_entry_on_cpu_runs_the_tl_kernel_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interpreter: an impl-gluon config gives exactly the tl entry's output (the same kernel, same options), and
    ``return_lse`` works through it; fp16 (bf16 tl.dot is wrong in the interpreter)."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    seed = random.randrange(2**31)
    print("seed", seed)
    g = torch.Generator().manual_seed(seed)
    n = 200
    q, k, v = (torch.randn(1, 1, n, 128, generator=g).to(torch.float16) for _ in range(3))
    mask = torch.rand(1, 1, 2, n, generator=g) < 0.3
    idx = fgattn.build_index(mask, block_m=128, gran_n=1, order=True)
    tl_out = fgattn.fg_attention(q, k, v, idx, block_m=128, config=_entry())
    gl_out, lse = fgattn.fg_attention(q, k, v, idx, block_m=128, config=_gluon(), return_lse=True)
    assert torch.equal(tl_out, gl_out)
    ref = fgattn.reference_attention(q, k, v, idx)
    assert float((gl_out.double() - ref).norm() / ref.norm()) < 3e-3
    assert lse.shape == (1, 1, n)


def test_passed_config_is_validated() -> None:
    q = torch.zeros(1, 1, 200, 128, dtype=torch.float16)
    mask = torch.ones(1, 1, 2, 200, dtype=torch.bool)
    idx = fgattn.build_index(mask, block_m=128)
    bad = dataclasses.replace(_entry(), extra={**_entry().extra, "impl": "cutlass"})
    with pytest.raises(ValueError, match=r"^config: extra\.impl='cutlass' must be one of"):
        fgattn.fg_attention(q, q, q, idx, block_m=128, config=bad)
    dense = dataclasses.replace(launch_config("dense", "h200", 128, 128), extra={"impl": "gluon", "gluon": PIPE1})
    with pytest.raises(ValueError, match=r"exists only for kernel fg"):
        fgattn.dense_attention(q, q, q, config=dense)


def test_bench_v11_candidates_and_dry_run(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench_kernels
    import gpu_check_kernels

    c = bench_kernels.CANDIDATE_SETS["v11"]()
    assert len(c) == 3 and "impl" not in c[0]["extra"]
    assert [x["extra"]["gluon"] for x in c[1:]] == list(bench_kernels.V11_GLUON)
    assert list(gpu_check_kernels.GLUON_POOL) == list(bench_kernels.V11_GLUON)
    for x in c:
        cfg = bench_kernels.to_config(x)
        assert cfg.tl_config().extra == _entry().extra  # the reference and the Gluon candidates' tl fallback
        check_impl("fg", 128, 128, 1, cfg.extra, "candidate")
    # the sweep picks an impl-gluon winner into a table that launch.py accepts
    res = [dict(x, problem=f"p{j}", ms=1.0, eff_tflops=1.0, rel=(1.0 if i == 0 else 0.9 + 0.01 * i))
           for i, x in enumerate(c) for j in range(3)]
    best = bench_kernels.pick_winners(res, 1.02)[("fg", 128, 128, 1)]
    assert best["extra"]["impl"] == "gluon" and best["extra"]["gluon"] == bench_kernels.V11_GLUON[0]
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--sweep-only", "--candidates", "v11", "--dry-run"])
    bench_kernels.main()
    out = capsys.readouterr().out
    assert out.count("impl=gluon") == 2 and "3 candidates" in out
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--check-table", "--check-gluon", "600",
                                      "--bench-shapes", "6,0", "--dry-run"])
    bench_kernels.main()
    out = capsys.readouterr().out
    assert "--table --gluon 600" in out and "bench 1: H12 N32760" in out
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--check-gluon", "-1"])
    with pytest.raises(SystemExit) as ei:
        bench_kernels.main()
    assert ei.value.code == 2 and "--check-gluon -1" in capsys.readouterr().err


def test_gpu_check_gluon_cases_cover_the_brief() -> None:
    import gpu_check_kernels as gc

    cases = gc.gluon_cases(600, seed=7)
    assert len(cases) == 600 and cases == gc.gluon_cases(600, seed=7)
    assert {c["dtype"] for c in cases} == {"bf16", "fp16"} and {c["layout"] for c in cases} == {"bhnd", "bnhd"}
    assert any(c["n"] % 2 for c in cases) and any(c["text"] for c in cases)
    assert {c["sms"] for c in cases} >= {None, 1, 3, 7, 20} and {c["order"] for c in cases} == {True, False}
    assert {json.dumps(c["knobs"], sort_keys=True) for c in cases} == {
        json.dumps(k, sort_keys=True) for k in gc.GLUON_POOL}
    for c in cases:
        check_impl("fg", 128, 128, 1, {"impl": "gluon", "gluon": c["knobs"]}, "case")
        assert 0 <= c["text"] < c["n"]


def test_gpu_check_and_compile_report_handle_gluon_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import compile_report
    import gpu_check_kernels as gc

    base = _gluon({"form": "ws2", "pipeline": 3, "fence": False})
    variants, sms_of = gc.variants_of("fg", "bf16", base, random.Random(1))
    assert variants[0] is base and all(v.impl == "tl" for v in variants[1:])
    tl_variants, tl_sms = gc.variants_of("fg", "bf16", base.tl_config(), random.Random(1))
    assert variants[1:] == tl_variants and sms_of == {i + 1: n for i, n in tl_sms.items()}
    both = compile_report.table_variants(path=str(_table(tmp_path, base.extra, name="gluon.json")))
    plain = compile_report.table_variants(path=str(_table(tmp_path, _entry().extra, name="tl.json")))
    assert len(both) == 2 and len(plain) == 1
    assert both[0][0].startswith("table fg D128 M128 g1 gluon ws2") and "pipeline=3" in both[0][0]
    assert both[0][-1] == {"impl": "gluon", "gluon": base.extra["gluon"]}
    assert both[1] == plain[0]  # the tl kernel: the same variant (constexprs, name, so the same SASS file)
    load_table.cache_clear()


def test_candidate_table_for_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """kernels/logs/launch_configs-candidate-gluon-pipe1.json (FGATTN_LAUNCH_TABLE, NOTES "Adoption plan"): only the
    fg D128 M128 g1 entry says impl gluon, with the measured knobs; its tl fallback is a valid tl entry."""
    p = ROOT / "kernels" / "logs" / "launch_configs-candidate-gluon-pipe1.json"
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(p))
    table = load_table(str(p))
    gl = [k for k, e in table.items() if e.get("extra", {}).get("impl") == "gluon"]
    assert gl == [("fg", "h200", 128, 128, 1)]
    cfg = launch_config("fg", "h200", 128, 128, 1)
    assert cfg.impl == "gluon" and cfg.extra["gluon"] == PIPE1 and cfg.tl_config().impl == "tl"
    assert launch_config("fg", "h200", 128, 128, 16).impl == "tl"
    load_table.cache_clear()


def test_gpu_check_gluon_chunk_runs_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The --gluon worker end to end on the CPU interpreter (there the route is tl: the harness code, masks with
    text, limit_sms, sm_scale and the float64 comparison run as on the GPU); a wrong output is reported."""
    import gpu_check_kernels as gc

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(gc, "DEV", "cpu")
    case = dict(i=0, seed=5, dtype="fp16", layout="bnhd", b=1, h=1, n=257, text=100, density=0.3, order=True,
                sms=3, sm_scale=0.05, knobs=dict(PIPE1))
    n0 = len(gc.FAILS)
    count, fails = gc.check_gluon_chunk([case])
    assert (count, fails) == (1, []), fails
    # the same case with the kernel's output corrupted must fail
    real = fgattn.fg_attention

    def broken(*a, **kw):
        res = real(*a, **kw)
        kw["out"].mul_(1.1)
        return res

    monkeypatch.setattr(fgattn, "fg_attention", broken)
    count, fails = gc.check_gluon_chunk([case])
    assert count == 1 and len(fails) == 1 and "gluon case 0" in fails[0]
    del gc.FAILS[n0:]
