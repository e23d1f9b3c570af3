"""The in-kernel timeline's plumbing and host-side decoder (issue 12, session 16, helper T): made-up buffers only
(the instrumented Gluon kernel runs on sm_90 GPUs; it was checked there bit for bit against the packaged kernel)."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

from fgattn import timeline as tl  # noqa: E402

C, P, H = tl.CONSUMER_SLOTS, tl.PRODUCER_SLOTS, tl.HEADER_SLOTS


def test_slot_constants_match_the_kernel_source():
    src = (ROOT / "kernels" / "fgattn" / "gluon_fg.py").read_text()
    assert int(re.search(r"_TL_CAP: gl.constexpr = gl.constexpr\((\d+)\)", src).group(1)) == tl.CAP
    assert int(re.search(r"_TL_EV: gl.constexpr = gl.constexpr\((\d+)\)", src).group(1)) == tl.EV
    # every consumer slot number the kernel writes is a named slot, and the named event slots are all written
    written = {int(x) for x in re.findall(r"_tl_mark\(Tl, tb, j, (\d+)\)", src)}
    written |= {int(x) for x in re.findall(r"_tl_put\(Tl, tb, [^,]+(?:\([^)]*\))?, (\d+),", src)}
    assert written <= set(C.values()) | set(P.values())
    assert max(C.values()) < tl.EV and max(P.values()) < tl.EV and max(H.values()) < tl.EV
    # the knob is off by default in every partition and kernel that takes it
    assert src.count("TIMELINE: gl.constexpr = False") == 3
    assert (ROOT / "kernels" / "fgattn" / "gluon_contig.py").read_text().count("TIMELINE: gl.constexpr = False") == 1


def test_buffer_shape_and_levels():
    assert tl.buffer_shape(132) == (132, tl.CAP + 1, 3, tl.EV)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="programs="):
            tl.buffer_shape(bad)
    for bad in (0, 3, True):
        with pytest.raises(ValueError, match="level="):
            tl._check_level(bad)


def _made_up(seed: int, programs: int = 3, rows: int = 5):
    """A buffer as the kernel writes it, from known phase lengths; returns (buffer, truth)."""
    rng = random.Random(seed)
    print(f"seed {seed}")
    a = np.full(tl.buffer_shape(programs), -1, dtype=np.int64)
    truth = {}
    for p in range(programs):
        t = [10_000 * (p + 1)] * 2
        a[p, tl.CAP, 0, H["clk_start"]] = t[0]
        a[p, tl.CAP, 0, H["gt_start"]] = 5_000_000
        a[p, tl.CAP, 0, H["n_rows"]] = rows
        tiles = [rng.randint(1, 7) for _ in range(rows)]
        for j in range(rows):
            ph = {w: [rng.randint(50, 900) for _ in tl.PHASES] for w in (0, 1)}
            for w in (0, 1):
                cur = t[w]
                for (name, e0, _e1), d in zip(tl.PHASES, ph[w], strict=True):
                    if tiles[j] == 1 and name in ("body", "last_full_wait", "last_tile"):
                        continue  # a one-tile row: no last-tile events
                    a[p, j, w, C[e0]] = cur
                    cur += d
                if tiles[j] == 1:  # last PV directly after tile 0's QK: 'body' ... 'last_tile' absent
                    pass
                a[p, j, w, C["n_tiles"]] = tiles[j]
                t[w] = cur
            truth[(p, j)] = (ph, tiles[j])
            a[p, j, 2, P["row_start"]] = a[p, j, 0, C["row_start"]] - 700
            a[p, j, 2, P["empty0_done"]] = a[p, j, 2, P["row_start"]] + 100
            a[p, j, 2, P["gather0_issued"]] = a[p, j, 2, P["empty0_done"]] + 250
            a[p, j, 2, P["row_end"]] = a[p, j, 2, P["gather0_issued"]] + 999
        for w in (0, 1):
            a[p, tl.CAP, w, H["clk_end"]] = t[w]
        a[p, tl.CAP, 0, H["gt_end"]] = 5_000_000 + (t[0] - a[p, tl.CAP, 0, H["clk_start"]]) // 2  # 2 GHz
    return a, truth


def test_decode_phases_partition_each_row():
    a, truth = _made_up(1611)
    recs = tl.decode(a)
    assert len(recs) == 15
    for r in recs:
        ph, tiles = truth[(r["program"], r["j"])]
        assert r["tiles"] == tiles
        for w in (0, 1):
            got = [r[f"c{w}_{name}"] for name, _, _ in tl.PHASES]
            if tiles > 1:
                assert got == ph[w]
                assert sum(got) == (r["row_cycles"] if w == 0 else sum(ph[1]))
            else:
                assert got[tl.PHASES.index(("body", "qk0_done", "last_full_begin"))] is None
        assert r["p_lead"] == 700 - 250 - 100
        assert r["p_empty0_wait"] == 100 and r["p_gather0_issue"] == 250 and r["p_row"] == 100 + 250 + 999
        assert r["c0_fullw_sum"] is None and r["c0_softmax0"] is None  # level-2 slots not written
    assert tl.clock_ghz(a) == pytest.approx(2.0, rel=1e-3)


def test_boundary_idle_is_the_gap_between_both_last_pvs_and_both_next_qks():
    a, _ = _made_up(1612, programs=1, rows=2)
    c = a[0]
    done = max(c[0, 0, C["last_pv_done"]], c[0, 1, C["last_pv_done"]])
    nxt = min(c[1, 0, C["qk0_issued"]], c[1, 1, C["qk0_issued"]])
    assert tl.boundary_idle(a, 0, 0, 2) == nxt - done
    assert tl.boundary_idle(a, 0, 1, 2) is None  # the program's last row
    c[1, 1, C["qk0_issued"]] = -1
    assert tl.boundary_idle(a, 0, 0, 2) is None


def test_rows_past_the_cap_and_unwritten_rows():
    a, _ = _made_up(1613, programs=2, rows=4)
    a[1, tl.CAP, 0, H["n_rows"]] = tl.CAP + 10  # more rows than recorded: the last recorded row has no successor
    a[1, 2, 1, C["row_start"]] = -1  # an unwritten row is skipped
    recs = tl.decode(a)
    assert [(r["program"], r["j"]) for r in recs] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 3)]
    assert all(r["row_cycles"] is None for r in recs if r["program"] == 1 and r["j"] == 3)


def test_row_fit_recovers_row_and_tile_cycles():
    rng = random.Random(1614)
    rows = [dict(program=0, j=j + 1, tiles=t, row_cycles=6000 + 3000 * t + rng.uniform(-5, 5))
            for j, t in enumerate([rng.randint(2, 30) for _ in range(60)])]
    f = tl.row_fit(rows)
    assert f["c_row_cycles"] == pytest.approx(6000, abs=20) and f["c_tile_cycles"] == pytest.approx(3000, abs=2)
    assert tl.row_fit(rows[:2]) is None
    assert tl.row_fit([dict(r, tiles=5) for r in rows]) is None


def test_summarize_skips_the_cold_row_and_converts_to_us():
    a, _ = _made_up(1615)
    recs = tl.decode(a)
    s = {x["quantity"]: x for x in tl.summarize(recs, 2.0)}
    xs = sorted(r["c0_q_wait"] for r in recs if r["j"] > 0)
    assert s["c0_q_wait"]["n"] == 12 and s["c0_q_wait"]["median"] == pytest.approx(float(np.median(xs)))
    assert s["c0_q_wait"]["median_us"] == pytest.approx(s["c0_q_wait"]["median"] / 2000)
    with pytest.raises(ValueError, match="ghz="):
        tl.summarize(recs, 0.0)
    with pytest.raises(ValueError, match="buffer shape"):
        tl.decode(np.zeros((2, 3, 3, tl.EV), dtype=np.int64))


def test_probe_buffers_round_trip_and_cli_errors(tmp_path, capsys):
    import timeline_probe as tp

    a, _ = _made_up(1616, programs=2, rows=3)
    sliced = np.concatenate([a[:, :3], a[:, tl.CAP:]], axis=1)
    np.savez_compressed(tmp_path / "timeline-buffers-x.npz", **{"fg H12 N32760 d0.02|tl1": sliced,
                                                                  "fg H12 N32760 d0.02|tl1|rows": np.array([3])})
    got = tp.load_buffers(tmp_path)
    assert list(got) == ["fg H12 N32760 d0.02|tl1"] and np.array_equal(got["fg H12 N32760 d0.02|tl1"], a)
    rows, summ, fits = tp.decode_folder(tmp_path)
    assert len(rows) == 6 and rows[0]["cell"] == "fg H12 N32760 d0.02" and rows[0]["variant"] == "tl1"
    assert summ and all(s["clock_ghz"] == pytest.approx(2.0, rel=1e-3) for s in summ)
    for argv, msg in ((["--dry-run", "--cells", "12x32760:x"], "--cells: bad cell list"),
                      (["--dry-run", "--l2-cells", "40x75600:0.02"], "--l2-cells: every level-2 cell"),
                      (["--dry-run", "--rounds", "2"], "--rounds: 2 < 3"),
                      (["--cells", "12x32760:0.02", "--l2-cells", ""], "--out is required"),
                      (["--decode", str(tmp_path / "nope")], "is not a folder")):
        with pytest.raises(SystemExit) as e:
            tp.parse_args(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_deferred_row_end_knob():
    """The research row ends ``tma_defer`` / ``tma_defer_pv`` (DEFER_O 1 / 2): constexprs, bad combinations, the
    launch table's knob and the candidate tables (the packaged table keeps ``tma_sel``)."""
    import json

    from fgattn import gluon_fg as g
    from fgattn.launch import GLUON_KNOBS, launch_config

    base = g.check_ws2_knobs("ws2", pipeline=1, epilogue="tma_sel")
    assert "DEFER_O" not in base  # the packaged binary: no constexpr
    for epi, lvl in (("tma_defer", 1), ("tma_defer_pv", 2)):
        assert g.check_ws2_knobs("ws2", pipeline=1, epilogue=epi) == {**base, "DEFER_O": lvl}
        assert g.resolve_epilogue(epi, 3.0) == epi and epi not in g.EPILOGUES  # not a contig row end
        assert epi in GLUON_KNOBS["epilogue"][0]
        for kw, msg in ((dict(pipeline=3), "needs pipeline 1"), (dict(pipeline=1, tail64=True), "needs pipeline 1"),
                        (dict(pipeline=1, pingpong=True), "no pingpong")):
            with pytest.raises(ValueError, match=msg):
                g.check_ws2_knobs("ws2", epilogue=epi, **kw)
    packaged = json.loads((ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json").read_text())
    for name, epi in (("t-defer", "tma_defer"), ("t-defer-pv", "tma_defer_pv")):
        path = ROOT / "kernels" / "logs" / f"launch_configs-candidate-{name}.json"
        cand = json.loads(path.read_text())
        diff = [(a, b) for a, b in zip(packaged["entries"], cand["entries"], strict=True) if a != b
                and (a["kernel"], a["head_dim"], a["block_m"], a["gran_n"]) not in
                (("fg", 128, 128, 16), ("fg", 128, 128, 64))]  # session 17 (K): adopted after these candidates
        assert len(diff) == 1 and diff[0][1]["source"].startswith("CANDIDATE")
        a, b = diff[0]
        assert {**a["extra"]["gluon"], "epilogue": epi} == b["extra"]["gluon"]
        cfg = launch_config("fg", "h200", 128, 128, gran_n=1, table_path=str(path))
        assert cfg.gluon_options()["epilogue"] == epi and cfg.gluon_schedule() == "list"
    assert launch_config("fg", "h200", 128, 128, gran_n=1).gluon_options()["epilogue"] == "tma_sel"


def _bench_rows(rel: dict, ctl: float = 1.0, route: str = "gluon list 1/1 captured", rounds: int = 7):
    """Made-up bench_kernels rows: the entry at 1 ms per round, the candidate at rel x, the control at ctl x."""
    rows = []
    for (h, n, t, d), r in rel.items():
        for k, f in (("fg_attention", 1.0), ("fg_attention_defer_pv", r), ("fg_attention_defer", (1 + r) / 2),
                     ("fg_attention_control", ctl)):
            rows.append(dict(kernel=k, H=h, N=n, n_text=t, density_target=d, route=route,
                             ms_rounds=";".join(f"{f * (1 + 0.001 * i):.6f}" for i in range(rounds))))
    return rows


def test_lever_rule_pass_and_fail_paths():
    import timeline_lever_rule as rule

    shp = [(12, 32760, 0), (12, 33272, 512), (40, 75600, 0), (40, 76112, 512), (12, 75600, 0), (40, 32760, 0)]
    good = {(*s, d): 0.96 for s in shp for d in (0.02, 0.05)} | {(12, 32760, 0, 0.5): 1.0}
    ok, lines, fig = rule.verdict(_bench_rows(good), True)
    assert ok and lines[-1].endswith("ADOPT") and fig["geo_low"] == pytest.approx(0.96, abs=1e-3)
    cases = [(_bench_rows(good), False, "GPU check"),
             (_bench_rows(good, ctl=1.02), True, "control geo-mean"),
             (_bench_rows({k: v for k, v in good.items() if k[0] == 12}), True, "shapes measured"),
             (_bench_rows(good, route="gluon walk"), True, "did not route"),
             (_bench_rows(good | {(12, 32760, 0, 0.5): 1.03}), True, "> 1.02"),
             (_bench_rows({k: 0.98 for k in good}), True, "pooled geo-mean")]
    for rows, check, msg in cases:
        ok, lines, _ = rule.verdict(rows, check)
        assert not ok and msg in lines[-1], (msg, lines[-1])
    ok, lines, _ = rule.verdict(_bench_rows(good), True, rule.DIAGNOSTIC)
    assert lines[0].startswith("fg_attention_defer:")


def test_pack_unpack_buffer_round_trip(tmp_path):
    import timeline_probe as tp

    a, _ = _made_up(1617, programs=3, rows=4)
    a[1, 2, 0, C["fullw_sum"]] = 12345  # a value slot keeps its value
    z = tp.pack_buffer("fg H12 N32760 d0.02|tl1", a)
    assert z["fg H12 N32760 d0.02|tl1|rows"].dtype == np.int32 and z["fg H12 N32760 d0.02|tl1|rows"].shape[1] == 4
    np.savez_compressed(tmp_path / "timeline-buffers-y.npz", **z)
    assert np.array_equal(tp.load_buffers(tmp_path)["fg H12 N32760 d0.02|tl1"], a)


def test_decompose_parts_sum_to_the_slowest_span():
    a, _ = _made_up(1618, programs=4, rows=6)
    d = tl.decompose(a)
    assert d["span_max"] == pytest.approx(d["tiles"] + d["rows"] + d["first_row"] + d["tail"] + d["rest"])
    spans = [a[p, tl.CAP, 0, H["clk_end"]] - a[p, tl.CAP, 0, H["clk_start"]] for p in range(4)]
    assert d["span_max"] == max(spans) and d["tail"] == pytest.approx(max(spans) - np.mean(spans))
    assert tl.decompose(np.full(tl.buffer_shape(1), -1, dtype=np.int64)) is None
