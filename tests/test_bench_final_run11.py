"""bench_kernels --final's run-11 additions (issue 12, session 14 K3), CPU only: the contig (216/64) variant of a
contig entry, the captured-route labels (Gluon launches counted only while a stream captures), the per-cell clock
reader's failure path, the new arguments' errors (one line, exit 2, before work) and the dry run listing the
previous entries and variants; plus ``final_shape`` end to end with the graph / replay layer stubbed (CSV columns
route / sm_mhz / ms_rounds, previous block rows at every density, variant rows only at their densities)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "validation")]

import bench_kernels  # noqa: E402
from fgattn import launch  # noqa: E402

BEFORE = ROOT / "kernels" / "logs" / "launch_configs-at-181d183.json"
PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
AT_300AD25 = ROOT / "kernels" / "logs" / "launch_configs-at-300ad25.json"  # run 11's table (before s15's fg row end)


@pytest.fixture(autouse=True)
def _restore_launchers(monkeypatch: pytest.MonkeyPatch) -> None:
    """CaptureLaunches replaces the Gluon launch functions in their modules: put the originals back after each
    test (monkeypatch restores what it first saw)."""
    import importlib

    for mod_name, fn_name in bench_kernels.GLUON_LAUNCHES:
        mod = importlib.import_module(mod_name)
        monkeypatch.setattr(mod, fn_name, getattr(mod, fn_name))


def test_contig_variant_is_216_64_without_pingpong_only_for_other_contig_entries() -> None:
    for kind in ("dense", "block"):
        cfg = launch.launch_config(kind, "h200", 128, 128, table_path=str(AT_300AD25))  # run 11's entries
        v = bench_kernels.contig_variant(cfg)
        assert v is not None and v.gluon_options() == dict(pipeline=1, pingpong=False, regs=(216, 64), epilogue="stg")
        assert v.tl_config().extra == cfg.tl_config().extra and cfg.gluon_options()["regs"] == (240, 24)
        assert bench_kernels.contig_variant(v) is None  # already the variant
        assert bench_kernels.contig_variant(launch.launch_config(kind, "h200", 128, 128, table_path=str(BEFORE))) is None
    assert bench_kernels.contig_variant(launch.launch_config("fg", "h200", 128, 128, 1)) is None  # ws2, not contig


def test_capture_launches_counts_only_while_capturing(monkeypatch: pytest.MonkeyPatch) -> None:
    from fgattn import gluon_contig, gluon_fg_list

    capturing = [False]
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: capturing[0])
    monkeypatch.setattr(gluon_contig, "contig_attention_gluon", lambda *a, **kw: "contig")
    monkeypatch.setattr(gluon_fg_list, "fg_attention_gluon_list", lambda *a, **kw: "list")
    cl = bench_kernels.CaptureLaunches()
    before = cl.snapshot()
    assert gluon_contig.contig_attention_gluon() == "contig"  # warm-up: not counted
    assert cl.route(before, 2) == "tl"
    capturing[0] = True
    gluon_contig.contig_attention_gluon()
    gluon_contig.contig_attention_gluon()
    assert cl.route(before, 2) == "gluon contig 2/2 captured"
    before = cl.snapshot()
    gluon_fg_list.fg_attention_gluon_list()
    assert cl.route(before, 2).startswith("mixed gluon list 1/2")
    again = bench_kernels.CaptureLaunches()  # a second counter wraps the original, not the first wrapper
    before = again.snapshot()
    gluon_contig.contig_attention_gluon()
    assert again.route(before, 1) == "gluon contig 1/1 captured"


def test_nvml_clock_without_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    def missing(name: str):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert bench_kernels.NvmlClock().ok is False


@pytest.mark.parametrize("argv, needle", [
    (["--check-contig", "-1"], "--check-contig -1: must be >= 0"),
    (["--check-contig", "600"], "--check-contig: the dense h200 D128 M128 entry of"),
])
def test_check_contig_argument_errors(monkeypatch: pytest.MonkeyPatch, capsys, argv: list[str], needle: str) -> None:
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(BEFORE))
    launch.load_table.cache_clear()
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", *argv, "--dry-run"])
    with pytest.raises(SystemExit) as e:
        bench_kernels.main()
    err = capsys.readouterr().err
    launch.load_table.cache_clear()
    assert e.value.code == 2 and needle in err and len(err.splitlines()) == 1, err


def test_dry_run_lists_previous_entries_and_variants(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("FGATTN_LAUNCH_TABLE", raising=False)
    launch.load_table.cache_clear()
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--check-table", "--check-contig", "600",
                                      "--contig-variants", "--previous-table", str(BEFORE), "--dry-run"])
    bench_kernels.main()
    out = capsys.readouterr().out
    assert "--table --contig 600" in out
    assert "previous entry timed beside the current one: ('block', 'h200', 128, 128, 128) impl gluon -> previous tl" in out
    assert "('dense', 'h200', 128, 128, 1) impl gluon" in out
    assert "('fg', 'h200', 128, 128, 1) impl gluon -> previous gluon" in out  # since s15: the row end tma_sel
    assert out.count('contig variant') == 2 and '"regs": [216, 64]' in out


def stub_final_shape(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """final_shape's GPU layer stubbed for the CPU: seeded inputs, CPU window masks, capture / replay (1 ms + a
    tick per replay, SM clock samples 1700 / 1650 / 1800 MHz), the packaged table; the Gluon launchers that
    :class:`bench_kernels.CaptureLaunches` wraps are restored at teardown."""
    import importlib

    import fgattn.masks as fm

    gen = torch.Generator().manual_seed(seed)
    monkeypatch.delenv("FGATTN_LAUNCH_TABLE", raising=False)
    launch.load_table.cache_clear()
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda *a, **k: None)
    monkeypatch.setattr(bench_kernels, "make_qkv", lambda b, h, n, d, sets, dtype=None: [
        tuple(torch.randn(b, h, n, d, generator=gen) for _ in range(3)) for _ in range(sets)])
    wm = fm.window_mask
    monkeypatch.setattr(bench_kernels, "window_mask", lambda *a, **k: wm(*a, **{**k, "device": "cpu"}))

    class Graph:
        def replay(self) -> None:
            pass

    monkeypatch.setattr(bench_kernels, "capture", lambda fn, sets: (Graph(), len(sets)))
    ticks = iter(range(1, 10_000))

    def replay(g, calls, reps, clock=None, mhz=None):
        if mhz is not None:
            mhz.extend((1700, 1650, 1800))
        return 1.0 + next(ticks) * 1e-3

    monkeypatch.setattr(bench_kernels, "replay_ms", replay)
    for mod_name, fn_name in bench_kernels.GLUON_LAUNCHES:
        mod = importlib.import_module(mod_name)
        monkeypatch.setattr(mod, fn_name, getattr(mod, fn_name))


def stubbed_shape(**kw) -> tuple[io.StringIO, list[dict]]:
    """final_shape at H1 N384 D128, d 0.02 / 0.3, 3 rounds, seed 5, after :func:`stub_final_shape` (a fixed clock
    window, every case's own clock samples, captured launches counted); ``kw`` its other arguments.  Returns the
    CSV text written and the rows."""

    class Clocks:
        def window(self, t0, t1):
            return "sm 1800 (1700-1900) MHz, mem 3201 MHz, n=3"

    f = io.StringIO()
    w = csv.DictWriter(f, fieldnames=bench_kernels.FINAL_COLS, extrasaction="ignore")
    w.writeheader()
    rows = bench_kernels.final_shape(w, {}, Clocks(), h=1, n_video=384, n_text=0, d=128, densities=(0.02, 0.3),
                                     rounds=3, shuffle_seed=5, cell_clock=object(),
                                     launches=bench_kernels.CaptureLaunches(), **kw)
    return f, rows


def test_final_shape_rows_with_stubbed_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    """final_shape on the CPU with capture / replay stubbed: every row has route, ms_rounds and the per-cell clock;
    block previous rows at every density, contig216 rows only at CONTIG_VARIANT_DENSITIES."""
    seed = 1411
    print("seed", seed)
    stub_final_shape(monkeypatch, seed)
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(AT_300AD25))  # run 11's table: only dense / block changed
    launch.load_table.cache_clear()
    prev = {}
    for key in bench_kernels.PREVIOUS_KEYS:
        now, was = launch.launch_config(*key), launch.launch_config(*key, table_path=str(BEFORE))
        if (now.block_n, now.num_stages, now.num_warps, now.extra) != (was.block_n, was.num_stages,
                                                                     was.num_warps, was.extra):
            prev[(key[0], key[2], key[3], key[4])] = was
    assert sorted(prev) == [("block", 128, 128, 128), ("dense", 128, 128, 1)]
    monkeypatch.setattr(bench_kernels, "PREVIOUS", prev)

    f, rows = stubbed_shape(contig_variants=True)
    kinds = [(r["kernel"], r["density_target"]) for r in rows]
    assert ("fg_block128_previous", 0.3) in kinds and ("fg_block128_previous", 0.02) in kinds
    assert ("fg_block128_contig216", 0.02) in kinds and ("fg_block128_contig216", 0.3) not in kinds
    assert ("fg_dense_previous", 1.0) in kinds and ("fg_dense_contig216", 1.0) in kinds
    back = list(csv.DictReader(io.StringIO(f.getvalue())))
    assert len(back) == len(rows) and all(r["route"] == "tl" for r in back)  # no Gluon on the CPU
    assert all(r["sm_mhz"] == "1700" and r["sm_mhz_n"] == "9" and len(r["ms_rounds"].split(";")) == 3 for r in back)
    launch.load_table.cache_clear()
