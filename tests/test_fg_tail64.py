"""Session 15, K8: the research knob ``extra.gluon.tail64`` (fg D128 M128 g1 list entry), its candidate table, the
call's CPU helpers (kernels/tools/k8_check.py) and the pre-registered rules (kernels/tools/k8_analyze.py).  CPU only,
no Triton compile (the offline SASS figures are in kernels/logs/k8-offline-s15.log)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools")]

import k8_analyze  # noqa: E402
import k8_check  # noqa: E402
from fgattn import gluon_fg  # noqa: E402
from fgattn.launch import GLUON_KNOBS, launch_config, load_table  # noqa: E402

PACKAGED = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"
CANDIDATE = ROOT / "kernels" / "logs" / "launch_configs-candidate-k8-tail64.json"
FG_KEY = ("fg", "h200", 128, 128, 1)


@pytest.fixture
def seed() -> int:
    s = 1581
    print("seed", s)
    return s


def _fg_table(tmp_path: Path, gluon: dict) -> Path:
    e = load_table(str(PACKAGED))[FG_KEY]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"entries": [{**e, "extra": {**e["extra"], "gluon": gluon}}]}))
    load_table.cache_clear()
    return p


def test_candidate_table_is_the_packaged_one_plus_tail64() -> None:
    """The candidate differs from the packaged table only in the fg D128 M128 g1 entry's tail64 (and its source)."""
    cand, pack = json.loads(CANDIDATE.read_text()), json.loads(PACKAGED.read_text())
    assert len(cand["entries"]) == len(pack["entries"])
    diffs = []
    for c, p in zip(cand["entries"], pack["entries"], strict=True):
        key = (c["kernel"], c["gpu"], c["head_dim"], c["block_m"], c["gran_n"])
        if c != p and key[2:] not in ((128, 128, 16), (128, 128, 64)):  # session 17 (K) adopted those later
            diffs.append(key)
            assert {**c["extra"]["gluon"]} == {**p["extra"]["gluon"], "tail64": True}
            assert {k: v for k, v in c.items() if k not in ("extra", "source")} == {
                k: v for k, v in p.items() if k not in ("extra", "source")}
            assert "CANDIDATE" in c["source"] and "K8" in c["source"]
    assert diffs == [FG_KEY]
    assert launch_config(*FG_KEY, table_path=str(CANDIDATE)).gluon_tail64() is True
    assert launch_config(*FG_KEY, table_path=str(PACKAGED)).gluon_tail64() is False


def test_tail64_knob_not_an_option_of_fg_attention_gluon() -> None:
    """gluon_options() (the fg_attention_gluon keyword arguments) stay as before: tail64 is read apart."""
    assert GLUON_KNOBS["tail64"] == ((False, True), False)
    opts = launch_config(*FG_KEY, table_path=str(CANDIDATE)).gluon_options()
    assert "tail64" not in opts and opts == launch_config(*FG_KEY, table_path=str(PACKAGED)).gluon_options()
    dense = launch_config("dense", "h200", 128, 128, 1, table_path=str(PACKAGED))
    assert dense.gluon_tail64() is False


@pytest.mark.parametrize("knobs, needle", [
    ({"tail64": "yes"}, r"extra\.gluon\.tail64='yes' must be one of \[False, True\]"),
    ({"tail64": 1}, r"extra\.gluon\.tail64=1 must be one of \[False, True\]"),
    ({"schedule": "walk", "tail64": True}, r"extra\.gluon\.tail64=True needs extra\.gluon\.schedule='list'"),
    ({"form": "ws", "schedule": "walk", "pipeline": 0, "epilogue": "stg", "tail64": True},
     r"extra\.gluon\.tail64 is a knob of form 'ws2' only"),
])
def test_bad_tail64_one_line_naming_file_and_entry(tmp_path: Path, knobs: dict, needle: str) -> None:
    base = dict(load_table(str(PACKAGED))[FG_KEY]["extra"]["gluon"])
    p = _fg_table(tmp_path, {**base, **knobs})
    with pytest.raises(ValueError, match=needle) as ei:
        launch_config(*FG_KEY, table_path=str(p))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"{p}: entry fg/h200/D128/M128/g1: "), msg
    load_table.cache_clear()


def test_check_ws2_knobs_tail64() -> None:
    """TAIL64 appears in the constexprs only when on (off = the packaged binary); bad uses are one line."""
    off = gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue="tma_sel")
    assert "TAIL64" not in off
    on = gluon_fg.check_ws2_knobs("ws2", pipeline=1, epilogue="tma_sel", tail64=True)
    assert on == {**off, "TAIL64": True}
    for kw, needle in ((dict(pipeline=1, tail64="x"), r"tail64='x' must be a bool"),
                       (dict(pipeline=0, tail64=True), r"tail64=True needs form 'ws2' with pipeline 1 / 2 / 3"),
                       (dict(pipeline=1, pingpong=True, tail64=True), r"tail64=True needs .* pingpong=True")):
        with pytest.raises(ValueError, match=needle) as ei:
            gluon_fg.check_ws2_knobs("ws2", **kw)
        assert "\n" not in str(ei.value)


def test_k8_check_cases_cover_every_remainder(seed: int) -> None:
    """The check's masks give every last-tile remainder 1..128 (rows of >= 2 tiles), empty and full rows."""
    specs = k8_check.cases(160, seed)
    assert specs == k8_check.cases(160, seed) and len(specs) == 160
    assert {s["dtype"] for s in specs} == {"bf16", "fp16"} and {s["layout"] for s in specs} == {"bhnd", "bnhd"}
    assert any(s["N"] % 128 for s in specs) and any(s["text"] for s in specs) and any(s["limit_sms"] for s in specs)
    rng = random.Random(seed)
    counts = [c for _ in range(4) for c in k8_check.row_counts(128, 800, rng)]
    assert 0 in counts and 800 in counts
    assert k8_check.remainders(counts) == set(range(1, 129))
    # 129 (r 1), 192 (r 64) and 300 (r 44) take the 64-key last tile; 64 (one tile), 193 (r 65), 256 (r 128) not
    assert k8_check.tail_rows([0, 64, 129, 192, 193, 256, 300]) == 3


def _rows(kernels: dict[str, list[float]], cells: list[tuple], route: str) -> list[dict]:
    """Synthetic CSV rows: per cell, kernel -> ms per round scaled by the factor of that kernel."""
    out = []
    for h, n, text, d in cells:
        for k, f in kernels.items():
            base = [1.0, 1.1, 0.9, 1.05, 0.95]
            out.append(dict(kernel=k, H=h, N=n, n_text=text, density_target=d, route=route,
                            ms_rounds=";".join(f"{b * x:.6f}" for b, x in zip(base, f, strict=True))))
    return out


SHAPES = [(12, 32760, 0), (40, 32760, 0), (12, 33272, 512), (12, 75600, 0), (40, 75600, 0), (40, 76112, 512),
          (12, 76112, 512), (40, 33272, 512)]


def test_tail64_rule_can_pass_and_fail() -> None:
    cells = [(*s, d) for s in SHAPES for d in (0.02, 0.05, 0.1)]
    one = [1.0] * 5
    good = _rows({"fg_attention": one, "fg_attention_tail64": [0.96] * 5, "fg_attention_control": one}, cells,
                 "gluon list 1/1 captured")
    assert k8_analyze.verdict_tail64(good, True)[0]
    assert not k8_analyze.verdict_tail64(good, False)[0]  # the check failed
    slow_one = [r if not (r["kernel"] == "fg_attention_tail64" and r["H"] == 40 and r["density_target"] == 0.1)
                else {**r, "ms_rounds": ";".join(str(float(x) * 1.07) for x in r["ms_rounds"].split(";"))}
                for r in good]
    ok, lines = k8_analyze.verdict_tail64(slow_one, True)
    assert not ok and "> 1.02" in lines[-1]
    small = _rows({"fg_attention": one, "fg_attention_tail64": [0.99] * 5, "fg_attention_control": one}, cells,
                  "gluon list")
    assert not k8_analyze.verdict_tail64(small, True)[0]  # geo 0.99 > 0.97
    bad_ctl = _rows({"fg_attention": one, "fg_attention_tail64": [0.96] * 5, "fg_attention_control": [1.02] * 5},
                    cells, "gluon list")
    ok, lines = k8_analyze.verdict_tail64(bad_ctl, True)
    assert not ok and "control geo-mean" in lines[-1]
    few = [r for r in good if r["H"] == 12]  # 4 shapes < 6
    assert not k8_analyze.verdict_tail64(few, True)[0]


def test_block_long_row_rule() -> None:
    cells = [(*s, d) for s in SHAPES for d in (0.2, 0.5, 1.0)]
    one = [1.0] * 5
    real = _rows({"fg_block128": [1.02] * 5, "fg_block128_stg": one, "fg_block128_sel": [1.02] * 5}, cells, "gluon")
    assert k8_analyze.verdict_block_long(real)[0] == "cost is real"
    # the control moves as much as the candidate: not shown
    noisy = _rows({"fg_block128": [1.02] * 5, "fg_block128_stg": one, "fg_block128_sel": [1.0404] * 5}, cells, "g")
    assert k8_analyze.verdict_block_long(noisy)[0] == "not shown"
    small = _rows({"fg_block128": [1.008] * 5, "fg_block128_stg": one, "fg_block128_sel": [1.008] * 5}, cells, "g")
    assert k8_analyze.verdict_block_long(small)[0] == "not shown"
    low_d = [dict(r, density_target=0.1) for r in real]  # only d >= 0.2 counts
    assert k8_analyze.verdict_block_long(low_d)[0] == "void"


def test_dense_rule_and_noise_lines() -> None:
    cells = [(*s, 1.0) for s in SHAPES]
    one = [1.0] * 5
    ok_rows = _rows({"fg_dense": one, "fg_dense_sel": [0.995] * 5, "fg_dense_stg": one}, cells,
                    "gluon contig 1/1 captured")
    assert k8_analyze.verdict_dense(ok_rows)[0]
    over = [dict(r, ms_rounds=";".join(str(float(x) * 1.02) for x in r["ms_rounds"].split(";")))
            if r["kernel"] == "fg_dense_sel" and r["N"] == 32760 and r["H"] == 12 else r for r in ok_rows]
    ok, lines = k8_analyze.verdict_dense(over)
    assert not ok and "> 1.01" in lines[-1]
    tl = [dict(r, route="tl") if r["kernel"] == "fg_dense_sel" else r for r in ok_rows]
    assert not k8_analyze.verdict_dense(tl)[0]
    noise = k8_analyze.noise_lines([], ok_rows)
    assert noise[2].startswith("dense control: geo 1.0000, max |c - 1| 0.000, share within 1 +- 0.02 1.00")


def test_packaged_sass_record_equals_the_final_table() -> None:
    """kernels/logs/k8-sass-sha256-table-packaged.txt (the packaged table compiled with the knob in gluon_fg.py)
    lists the 23 binaries of sass-sha256-table-k7-final.txt, byte for byte."""
    logs = ROOT / "kernels" / "logs"

    def shas(name: str) -> dict[str, str]:
        return {ln.split()[1]: ln.split()[0] for ln in (logs / name).read_text().splitlines()
                if ln.strip() and not ln.startswith("#")}

    ref, k8 = shas("sass-sha256-table-k7-final.txt"), shas("k8-sass-sha256-table-packaged.txt")
    assert len(ref) == 23 and k8 == ref
    cand = shas("k8-sass-sha256-table-cand.txt")
    changed = {k for k in cand if cand[k] != ref.get(k)}
    assert len(changed) == 1 and "tail64_true" in changed.pop()


def test_k8_check_dry_run_with_a_fake_kernel(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """The check's worker on the CPU with the launch replaced by the float64 reference (the plumbing: masks, errors,
    the tail64 spy, row counts); and a tail64 launch with a 5 % wrong output fails it."""
    import fgattn
    import torch
    from fgattn import gluon_fg_list

    monkeypatch.setattr(k8_check, "DEV", "cpu")
    specs = [dict(s, N=300 + 2 * i, text=77 if i % 2 else 0, B=1, H=1, limit_sms=None)
             for i, s in enumerate(k8_check.cases(4, seed))]

    def fake_launch(q, k, v, index, *, layout, sm_scale, out, plan, programs, epilogue="stg", **more):
        out.copy_(fgattn.reference_attention(q, k, v, index, layout=layout, sm_scale=sm_scale).to(out.dtype))
        return out

    def fake_fg(q, k, v, index, *, block_m, gran_n, layout, config, out, sm_scale, check):
        kw = {"tail64": True} if config.gluon_tail64() else {}
        return gluon_fg_list.launch_list(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out, plan=None,
                                         programs=None, epilogue="tma_sel", **kw)

    monkeypatch.setattr(gluon_fg_list, "launch_list", fake_launch)
    monkeypatch.setattr(fgattn, "fg_attention", fake_fg)
    rows = k8_check._run_chunk(specs)
    assert len(rows) == 8 and all(r["ok"] for r in rows), rows
    assert [r["tail64_launch"] for r in rows] == [True, False] * 4
    assert all(float(r["err_block_max"]) < 1e-2 for r in rows) and sum(r["tail_rows"] for r in rows) > 0

    def broken(q, k, v, index, *, layout, sm_scale, out, plan, programs, epilogue="stg", **more):
        out.copy_(fgattn.reference_attention(q, k, v, index, layout=layout, sm_scale=sm_scale).to(out.dtype))
        if more.get("tail64"):
            out.mul_(1.05)  # a wrong result: the check must fail
        return out

    monkeypatch.setattr(gluon_fg_list, "launch_list", broken)
    rows = k8_check._run_chunk(specs[:1])
    assert [r["ok"] for r in rows] == [False, True]
    assert torch.isfinite(torch.tensor([float(r["err"]) for r in rows])).all()


def test_bench_clock_poll_ms_validated() -> None:
    """bench_kernels --clock-poll-ms outside [1, 1000]: one line naming the flag, exit 2, before any work."""
    import subprocess

    r = subprocess.run([sys.executable, str(ROOT / "validation" / "bench_kernels.py"), "--final", "--clock-poll-ms",
                        "0.5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "bench_kernels: --clock-poll-ms 0.5: must be in [1, 1000]"


def test_k8_call_verdicts_recomputed_from_the_committed_csvs() -> None:
    """The call's outcome (kernels/NOTES.md "Session 15, K8", outcome) from the committed CSVs by the pre-registered
    rules: tail64 not eligible (geo-mean 0.990 at d <= 0.1, max 1.009), block long-row cost not shown (0.998 vs the
    control's 0.999), dense tma_sel does not pass (1.021 at H40 N32760+512), the checks 320 + 100 with 0 failures."""
    res = ROOT / "validation" / "results"
    fg = k8_analyze.read(str(res / "kernels-h200-2026-12-01-k8-fg.csv"))
    contig = k8_analyze.read(str(res / "kernels-h200-2026-12-01-k8-contig.csv"))
    acc = k8_analyze.read(str(res / "kernels-h200-2026-12-01-k8-tail64-accuracy.csv"))
    assert len(acc) == 320 and all(r["ok"] == "True" for r in acc)
    assert sum(r["tail64_launch"] == "True" for r in acc) == 160
    ok, lines = k8_analyze.verdict_tail64(fg, True)
    assert not ok and lines[-1] == "tail64: NOT ELIGIBLE: geo-mean over d <= 0.1 0.990 > 0.97"
    assert "max 1.009" in lines[0] and "24 cells on 8 shapes" in lines[0]
    out, lines = k8_analyze.verdict_block_long(contig)
    assert out == "not shown" and "geo-mean 0.9977 over 34 cells on 7 shapes" in lines[0]
    assert "control geo 0.9989" in lines[0]
    ok, lines = k8_analyze.verdict_dense(contig)
    assert not ok and lines[-1] == "dense tma_sel: DOES NOT PASS: cell (40, 33272, 512, 1.0) at 1.021 > 1.01"
    noise = k8_analyze.noise_lines(fg, contig)
    assert [n.split(",")[1] for n in noise] == [" max |c - 1| 0.051", " max |c - 1| 0.046", " max |c - 1| 0.023"]
