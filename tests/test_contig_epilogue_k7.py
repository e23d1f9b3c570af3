"""Session 15, K7: the fg row end tma_sel adopted into the packaged table (the table before it kept as
kernels/logs/launch_configs-at-300ad25.json), the contig row-end candidate's adoption rule
(kernels/tools/contig_epilogue_adopt.py) on synthetic rows, and bench_kernels' ``--bench-only contig`` /
``--contig-extra`` (argument errors, dry run, the rows of a stubbed shape).  CPU only, seconds."""

import csv
import json
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation"), str(ROOT / "tests")]

import bench_kernels  # noqa: E402
import contig_epilogue_adopt as cea  # noqa: E402
from fgattn import launch  # noqa: E402

PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
AT_300AD25 = ROOT / "kernels" / "logs" / "launch_configs-at-300ad25.json"
K6_CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-epilogue-tma-sel.json"
SEL = ROOT / "kernels" / "logs" / "launch_configs-candidate-contig-tma-sel.json"
KEY = ("fg", "h200", 128, 128, 1)
SHAPES = ["H12 N32760 D128", "H12 N32760+512text D128", "H40 N32760 D128", "H12 N75600 D128",
          "H40 N32760+512text D128", "H12 N75600+512text D128", "H40 N75600 D128", "H40 N75600+512text D128"]


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


# ------------------------------------------------------------------------------------------------ fg adoption
def test_packaged_table_is_300ad25_with_the_fg_and_block_row_end_tma_sel() -> None:
    """Two entries changed: fg D128 M128 g1 (K6's candidate entry, field for field apart from the source, which names
    run 14, the rule and the table before) and block D128 M128 g128 (candidate A's entry; source naming run 15a and
    this session's rule), each only by extra.gluon.epilogue "tma_sel"."""
    pk, before, cand = (json.loads(p.read_text())["entries"] for p in (PACKAGED, AT_300AD25, K6_CANDIDATE))
    s17 = (("fg", 128, 128, 16), ("fg", 128, 128, 64))  # session 17 (K): impl gluon + expand, adopted later
    diffs = [(a, b) for a, b in zip(before, pk, strict=True) if a != b
             and (a["kernel"], a["head_dim"], a["block_m"], a["gran_n"]) not in s17]
    assert [(b["kernel"], b["head_dim"], b["block_m"], b["gran_n"]) for _, b in diffs] == [
        ("fg", 128, 128, 1), ("block", 128, 128, 128)]
    a, b = (json.loads(json.dumps(x)) for x in diffs[1])
    assert b["extra"]["gluon"].pop("epilogue") == "tma_sel" and {**b, "source": ""} == {**a, "source": ""}
    assert "issue12-run15a.csv" in diffs[1][1]["source"] and "Session 15, K7" in diffs[1][1]["source"]
    sel = [e for e in json.loads(SEL.read_text())["entries"] if e["kernel"] == "block" and (e["head_dim"], e["block_m"]) == (128, 128)][0]
    assert {**sel, "source": ""} == {**diffs[1][1], "source": ""}
    a, b = (json.loads(json.dumps(x)) for x in diffs[0])
    assert b["extra"]["gluon"].pop("epilogue") == "tma_sel"
    assert {**b, "source": ""} == {**a, "source": ""}
    src = diffs[0][1]["source"]
    assert "issue12-run14.csv" in src and "Session 14, K6" in src and "launch_configs-at-300ad25.json" in src
    assert a["source"] in src
    c = [e for e in cand if (e["kernel"], e["head_dim"], e["block_m"], e["gran_n"]) == ("fg", 128, 128, 1)][0]
    assert {**c, "source": ""} == {**diffs[0][1], "source": ""}
    cfg = launch.launch_config(*KEY)
    assert cfg.gluon_schedule() == "list" and cfg.gluon_options()["epilogue"] == "tma_sel"
    launch.load_table.cache_clear()


def test_final_sass_file_names_the_two_adopted_binaries() -> None:
    """kernels/logs/sass-sha256-table-k7-final.txt (the final table): the k7-fg file with the block contig binary
    replaced by candidate A's (sass-sha256-contig-k7.txt), nothing else."""
    def read(name: str) -> dict[str, str]:
        lines = (ROOT / "kernels" / "logs" / name).read_text().splitlines()
        return {f: h for h, f in (ln.split() for ln in lines if ln and not ln.startswith("#") and "  " in ln)}

    final, fg, cand = (read(f"sass-sha256-{n}.txt") for n in ("table-k7-final", "table-k7-fg-tma-sel", "contig-k7"))
    new = {f: h for f, h in final.items() if f not in fg}
    assert new == {f: h for f, h in cand.items() if f.startswith("table_block") and "pingpong_true" in f}
    assert len(final) == len(fg) == 23 and all(fg[f] == h for f, h in final.items() if f in fg)


def test_sass_file_names_the_adopted_binaries() -> None:
    """kernels/logs/sass-sha256-table-k7-fg-tma-sel.txt: 23 files, the fg Gluon one K6's bc8dc862..., the other 22
    the 300ad25 reference's byte for byte."""
    def read(name: str) -> dict[str, str]:
        lines = (ROOT / "kernels" / "logs" / name).read_text().splitlines()
        return {f: h for h, f in (ln.split() for ln in lines if ln and not ln.startswith("#"))}

    now, ref = read("sass-sha256-table-k7-fg-tma-sel.txt"), read("sass-sha256-table-300ad25.txt")
    assert len(now) == len(ref) == 23
    new = {f: h for f, h in now.items() if f not in ref}
    assert list(new.values()) == ["bc8dc862b59aba5c53625bbf12ea27a8cbc9462f65a441e2cea588ea14c1d1b9"]
    assert "epilogue_tma_sel" in next(iter(new))
    assert {f: h for f, h in now.items() if f in ref} == {f: h for f, h in ref.items() if f in now}
    assert len(set(ref) - set(now)) == 1


# ------------------------------------------------------------------------------------------------ the rule
def _row(shape: str, kernel: str, d: float, ms: list[float], route: str = "gluon contig 1/1 captured") -> dict:
    return dict(shape=shape, kernel=kernel, density_target=str(d), D="128", M="128", route=route,
                ms_rounds=";".join(f"{x:.5f}" for x in ms))


def _rows(rng: random.Random, sel: dict[str, float], ctl: float = 1.0, shapes: int = 8) -> list[dict]:
    """Per shape a dense cell and block cells at d 0.02 / 0.1, 5 rounds; ``sel[entry]`` scales the candidate."""
    out = []
    for s in SHAPES[:shapes]:
        for entry, dens in (("fg_dense", (1.0,)), ("fg_block128", (0.02, 0.1))):
            for d in dens:
                base = [rng.uniform(1, 2) for _ in range(5)]
                out += [_row(s, entry, d, base), _row(s, f"{entry}_control", d, [x * ctl for x in base]),
                        _row(s, f"{entry}_sel", d, [x * sel[entry] for x in base])]
    return out


def test_rule_on_synthetic_rows() -> None:
    rng = random.Random(_seed())
    rows = _rows(rng, {"fg_dense": 0.995, "fg_block128": 0.95})
    for entry in cea.ENTRIES:
        ok, why = cea.verdict(rows, entry, True)
        assert ok, why
        assert cea.verdict(rows, entry, False) == (False, [why[0], "GPU check failed"])
    assert cea.ratios(rows, "fg_block128", "sel")[(SHAPES[0], 0.02)] == pytest.approx(0.95, abs=1e-4)
    # dense above its 1.01, block above 1.02 at one cell, block geo-mean above 0.98, control void, routes, shapes
    ok, why = cea.verdict(_rows(rng, {"fg_dense": 1.011, "fg_block128": 0.95}), "fg_dense", True)
    assert not ok and why[1].startswith("8 cells > 1.01: ")
    r = _rows(rng, {"fg_dense": 1.0, "fg_block128": 0.95})
    r[-1]["ms_rounds"] = ";".join(str(float(x) * 1.03 / 0.95) for x in r[-1]["ms_rounds"].split(";"))
    ok, why = cea.verdict(r, "fg_block128", True)
    assert not ok and why[1] == "1 cells > 1.02: H40 N75600+512text D128 d 0.1 1.030"
    ok, why = cea.verdict(_rows(rng, {"fg_dense": 1.0, "fg_block128": 0.99}), "fg_block128", True)
    assert not ok and why[1] == "geo-mean at d <= 0.1 0.990 > 0.98"
    ok, why = cea.verdict(_rows(rng, {"fg_dense": 1.0, "fg_block128": 0.95}, ctl=1.02), "fg_dense", True)
    assert not ok and why[1] == "control void: geo-mean 1.020 outside 1 +- 0.01"
    r = _rows(rng, {"fg_dense": 1.0, "fg_block128": 0.95})
    r[2]["route"] = "tl"
    ok, why = cea.verdict(r, "fg_dense", True)
    assert not ok and why[1].startswith("route not 'gluon contig' in 1 rows")
    ok, why = cea.verdict(_rows(rng, {"fg_dense": 1.0, "fg_block128": 0.95}, shapes=5), "fg_block128", True)
    assert not ok and why[1] == "5 shapes measured < 6"
    assert cea.verdict([], "fg_dense", True) == (False, ["fg_dense: no paired _sel / _control cells in the CSV"])
    r = _rows(rng, {"fg_dense": 1.0, "fg_block128": 0.95})
    r[2]["ms_rounds"] = "1;2"
    with pytest.raises(ValueError, match=r"^H12 N32760 D128 d 1: 2 fg_dense_sel rounds, 5 fg_dense rounds$"):
        cea.ratios(r, "fg_dense", "sel")


def test_rule_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = _rows(random.Random(_seed()), {"fg_dense": 0.99, "fg_block128": 0.9})
    p = tmp_path / "run.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert cea.main([str(p)]) == 0
    out = capsys.readouterr().out
    assert out.count("ADOPT fg_") == 2 and "NOT ADOPTED" not in out
    assert cea.main([str(p), "--check-failed"]) == 0
    assert capsys.readouterr().out.count("NOT ADOPTED") == 2
    assert cea.main([str(tmp_path / "no.csv")]) == 2
    assert cea.main([str(p), "--k6"]) == 2
    err = capsys.readouterr().err
    assert "no.csv: not a file" in err and "unknown argument '--k6'" in err


# ------------------------------------------------------------------------------------------------ harness
def test_contig_extra_parse_dry_run_and_errors(capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    got = bench_kernels.contig_extra_configs([f"sel={SEL}", f"control={PACKAGED}"])
    assert [(k, d.gluon_options()["epilogue"], b.gluon_options()["epilogue"]) for k, (d, b) in got.items()] == [
        ("sel", "tma_sel", "tma_sel"), ("control", "stg", "tma_sel")]  # the packaged block entry since s15
    for bad, needle in ([f"Sel={SEL}", "new lower-case identifier"], [f"a={SEL}", None], ["a=/no/such.json", "does not exist"],
                        [f"sel{SEL}", "LABEL=TABLE"]):
        if needle is None:
            with pytest.raises(ValueError, match="new lower-case identifier"):
                bench_kernels.contig_extra_configs([bad, bad])
            continue
        with pytest.raises(ValueError, match=needle):
            bench_kernels.contig_extra_configs([bad])
    for argv, needle in ([["--contig-extra", f"sel={SEL}"], "--contig-extra needs --bench-only contig"],
                         [["--bench-only", "contig", "--contig-extra", "x=/no.json"], "does not exist"]):
        monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--no-check", "--dry-run", *argv])
        with pytest.raises(SystemExit) as e:
            bench_kernels.main()
        err = capsys.readouterr().err
        assert e.value.code == 2 and needle in err and len(err.splitlines()) == 1, err
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--no-check", "--dry-run", "--bench-only", "contig",
                                      "--contig-extra", f"sel={SEL}", "--contig-extra", f"control={PACKAGED}"])
    bench_kernels.main()
    out = capsys.readouterr().out
    assert "bench only contig: cuDNN + dense D128 M128 + block D128 M128" in out
    assert "fg_dense_sel / fg_block128_sel: {'form': 'contig'" in out and "'epilogue': 'tma_sel'" in out


def test_final_shape_only_contig_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """--bench-only contig on the CPU with capture / replay stubbed: cuDNN, the dense entry and each extra's dense
    entry once, the block entry and each extra's at every density; no fg / Flex / M64 rows."""
    from test_bench_final_run11 import stub_final_shape, stubbed_shape

    seed = _seed()
    stub_final_shape(monkeypatch, seed)
    monkeypatch.setattr(bench_kernels, "PREVIOUS", {})
    monkeypatch.setattr(bench_kernels, "CONTIG_EXTRA", bench_kernels.contig_extra_configs(
        [f"sel={SEL}", f"control={PACKAGED}"]))

    _, rows = stubbed_shape(m64=(0.02,), only_contig=True)
    kinds = sorted((r["kernel"], r["density_target"]) for r in rows)
    assert kinds == sorted([("sdpa_cudnn", 1.0), ("fg_dense", 1.0), ("fg_dense_sel", 1.0), ("fg_dense_control", 1.0),
                            *[(k, d) for k in ("fg_block128", "fg_block128_sel", "fg_block128_control")
                              for d in (0.02, 0.3)]])
    assert all(len(r["ms_rounds"].split(";")) == 3 for r in rows)
    sel = [r for r in rows if r["kernel"] == "fg_block128_sel"]
    assert all('"epilogue": "tma_sel"' in r["config"] or "tma_sel" in r["config"] for r in sel)
    launch.load_table.cache_clear()


# ------------------------------------------------------------------------------------------------ README block
def test_readme_kernels_block_is_run_15_with_counts_from_the_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    """validation/tables/kernels.py renders run 15 (the final table 772420a) with run 11 (300ad25) as the table
    before; the target counts equal the ones recounted here from the CSV rows; D=64 comes from run 10, said so."""
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "validation" / "tables"))  # the renderers import _common
    spec = importlib.util.spec_from_file_location("_kernels_table_under_test",
                                                  ROOT / "validation" / "tables" / "kernels.py")
    kt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kt)
    assert kt.RUNS[0] == "kernels-h200-2026-12-01-issue12-run15.csv" and kt.BEFORE == (
        "kernels-h200-2026-11-30-issue12-run11.csv",)
    with open(ROOT / "validation" / "results" / kt.RUNS[0], newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["D"] == "128"]

    def met(kernel: str, m: str, g: str, target: float) -> tuple[int, int]:
        v = [float(r["ratio_vs_cudnn"]) for r in rows if (r["kernel"], r["M"], r["gran_n"]) == (kernel, m, g)]
        return sum(x >= target for x in v), len(v)

    out = kt.render()
    for name, (k, m, g, t) in {"**fg M=128 ≥ 0.92, every d ≥ 0.02 (all cells)**": ("fg_attention", "128", "1", 0.92),
                               "fg M=64 ≥ 0.85": ("fg_attention", "64", "1", 0.85),
                               "block-sparse ≥ 0.92 on kept blocks": ("fg_block128", "128", "128", 0.92),
                               "dense fgattn M=128 ≥ 0.97 of cuDNN (one cell per shape)": ("fg_dense", "128", "1",
                                                                                            0.97)}.items():
        n_met, n = met(k, m, g, t)
        assert f"| {name} | {n} | {n_met} |" in out, name
    assert len({r["shape"] for r in rows}) == 8
    assert "run 10 supplies the D=64 shape only, not re-run in run 15" in out
    assert "| fg_attention_previous | 128 | 1 | fg, table before (300ad25) | gluon list (18) |" in out
