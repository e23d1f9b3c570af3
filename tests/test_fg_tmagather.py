"""fgattn.gluon_fg_tmagather (issue 12 research, session 16: the fg ws2 list CTA whose K/V rows are gathered by TMA
boxes from a per-tile piece list) and its tools: the aligned run decomposition, the piece plan (decoded back into
the stage it fills, against a direct gather), the knob / input errors, the descriptor-swizzle patch, and the
pre-registered rules of the microbenchmark (kernels/tools/tmagather_bench.py) and the kernel probe
(kernels/tools/tmagather_probe.py) on made-up data.  The kernels run only on an sm_90 GPU (Gluon has no
interpreter path): their checks are the tools', on the device."""

import math
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import tmagather_bench as bench  # noqa: E402
import tmagather_probe as probe  # noqa: E402
from fgattn import gluon_fg_tmagather as tg  # noqa: E402
from fgattn.index import FgIndex  # noqa: E402


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def test_decompose_is_aligned_exact_and_short():
    rng = random.Random(_seed())
    for _ in range(400):
        pos = rng.randrange(128)
        length = rng.randrange(0, 129 - pos)
        max_lg = rng.randrange(0, 6)
        pieces = tg.decompose(pos, length, max_lg)
        rows = []
        for p, lg in pieces:
            assert p % (1 << lg) == 0 and lg <= max_lg
            rows += range(p, p + (1 << lg))
        assert rows == list(range(pos, pos + length))
        if length:  # at most 2 pieces per box height, plus the full-height pieces of the middle
            assert len(pieces) <= 2 * (max_lg + 1) + length // (1 << max_lg)
    assert tg.decompose(0, 128, 5) == [(0, 5), (32, 5), (64, 5), (96, 5)]
    assert tg.decompose(3, 6, 5) == [(3, 0), (4, 2), (8, 0)]


def test_decompose_rejects_bad_input():
    with pytest.raises(ValueError, match=r"gluon_fg_tmagather: decompose\(120, 9, 5\)"):
        tg.decompose(120, 9)
    with pytest.raises(ValueError, match="max_lg"):
        tg.decompose(0, 4, 8)


def _index(rows_keys: list[list[int]], n_keys: int, heads: int = 1) -> FgIndex:
    cnt = torch.tensor([len(r) for r in rows_keys])
    off = torch.zeros(len(rows_keys) + 1, dtype=torch.int64)
    off[1:] = torch.cumsum(cnt, 0)
    idx = torch.tensor([k for r in rows_keys for k in r], dtype=torch.int32)
    return FgIndex(off, idx, 128, 1, n_keys, 1, heads, len(rows_keys) // heads, None)


def _decode(plan: tg.TgPlan) -> list[list[int]]:
    """Each tile's 128 stage rows as the pieces fill them: the source key, -1 for a zero-filled row."""
    code = plan.pieces.long().tolist()
    ps = plan.pstart.tolist()
    out = []
    for t in range(plan.n_tiles):
        st = [None] * 128
        for c in code[ps[t]:ps[t + 1]]:
            src, dst, lg = c & tg.SENT, (c >> tg.DST_SHIFT) & 127, (c >> tg.LG_SHIFT) & 7
            assert dst % (1 << lg) == 0 and lg <= plan.max_lg  # a kernel compiled with MAX_LG = max_lg issues it
            for i in range(1 << lg):
                assert st[dst + i] is None, "two pieces write one stage row"
                st[dst + i] = -1 if src == tg.SENT else src + i
        assert None not in st, "a stage row no piece writes"
        out.append(st)
    return out


def _expected(rows_keys: list[list[int]]) -> list[list[int]]:
    out = []
    for r in rows_keys:
        for t in range(max(math.ceil(len(r) / 128), 1)):
            keys = r[t * 128:(t + 1) * 128]
            out.append(keys + [-1] * (128 - len(keys)))
    return out


@pytest.mark.parametrize("runs", [True, False])
def test_plan_pieces_fills_every_stage_row_as_a_gather(runs):
    rng = random.Random(_seed())
    n = 3000
    rows = []
    for _ in range(24):
        kind = rng.randrange(4)
        if kind == 0:
            rows.append([])  # an empty row: one tile of zeros
        elif kind == 1:
            rows.append(list(range(n)))  # a full row: one run
        elif kind == 2:
            rows.append(sorted(rng.sample(range(n), rng.randrange(1, 400))))
        else:  # windows: runs of 40-60 keys
            ks: set[int] = set()
            for _w in range(rng.randrange(1, 8)):
                a = rng.randrange(n - 60)
                ks |= set(range(a, a + rng.randrange(40, 60)))
            rows.append(sorted(ks))
    idx = _index(rows, n, heads=2)
    plan = tg.plan_pieces(idx, runs=runs)
    assert plan.n_tiles == len(_expected(rows))
    assert _decode(plan) == _expected(rows)
    nt = [max(math.ceil(len(r) / 128), 1) for r in rows]
    assert plan.tile_base.tolist() == [sum(nt[:i]) for i in range(len(rows))]
    code = plan.pieces.long()
    if not runs:  # one piece per kept key, boxes of one row
        assert int(((code & tg.SENT) != tg.SENT).sum()) == sum(len(r) for r in rows)
        kept = (code & tg.SENT) != tg.SENT
        assert int(((code >> tg.LG_SHIFT) & 7)[kept].max()) == 0
        # ... but its zero fill still takes boxes of up to 32 rows (call 1's hang: a MAX_LG 0 kernel issued them
        # as one row, short of the stage's byte count)
        assert int(((code >> tg.LG_SHIFT) & 7)[~kept].max()) == tg.MAX_LG


def test_plan_pieces_runs_cut_the_issues_on_runs():
    rows = [list(range(1000, 1000 + 700)), list(range(0, 64)) + list(range(200, 264))]
    idx = _index(rows, 4000)
    s_run = tg.piece_stats(tg.plan_pieces(idx, runs=True))
    s_row = tg.piece_stats(tg.plan_pieces(idx, runs=False))
    assert s_row["kept_pieces_per_tile"] == pytest.approx(828 / 7)
    assert s_run["pieces_per_tile"] < 8 and s_run["tma_per_tile"] == 4 * s_run["pieces_per_tile"]
    assert s_run["share_h32"] > 0.5


def test_plan_pieces_rejects_bad_input():
    idx = _index([[1, 2]], 100)
    with pytest.raises(ValueError, match="max_lg=6"):
        tg.plan_pieces(idx, max_lg=6)
    big = FgIndex(idx.offsets, idx.indices, 128, 1, tg.SENT, 1, 1, 1, None)
    with pytest.raises(ValueError, match="n_keys=262143"):
        tg.plan_pieces(big)
    g16 = FgIndex(idx.offsets, idx.indices, 128, 16, 100, 1, 1, 1, None)
    with pytest.raises(ValueError, match="gran_n=16"):
        tg.plan_pieces(g16)
    with pytest.raises(ValueError, match="must be an FgIndex"):
        tg.plan_pieces("index")


def test_check_tg_knobs():
    assert tg.check_tg_knobs() == dict(CONSUMER_REGS=216, PRODUCER_REGS=64, PRODUCER_WARPS=1)
    assert tg.check_tg_knobs((232, 40))["PRODUCER_REGS"] == 40
    for bad in [(240, 48), (244, 24), (230, 40), (216,), "216,64"]:
        with pytest.raises(ValueError, match="regs="):
            tg.check_tg_knobs(bad)
    with pytest.raises(ValueError, match="producer_warps=2"):
        tg.check_tg_knobs(producer_warps=2)


def test_swizzle_boxes_patches_only_the_64_column_boxes():
    meta = [dict(block_size=[1, 1, 64, 128], swizzle=3)] + [dict(block_size=[1, 1, 1 << i, 64], swizzle=0)
                                                           for i in range(6)]
    ck = SimpleNamespace(metadata=SimpleNamespace(tensordesc_meta=meta))
    assert tg.swizzle_boxes(ck) == 6
    assert [m["swizzle"] for m in meta] == [3] * 7
    assert tg.swizzle_boxes(ck) == 6  # idempotent


def _brow(cell: str, kind: str, d: float, var: str, us: float) -> dict:
    return dict(cell=cell, kind=kind, density_target=str(d), variant=var, us_per_tile=str(us))


def test_bench_rule_go_and_no_go():
    assert bench.NEEDED_US_PER_TILE == 1.8 and bench.MARGIN == 1.3 and bench.RULE_MAX_D == 0.1
    bound = 1.8 / 1.3
    rows = []
    for cell, d in (("a", 0.02), ("b", 0.1), ("c", 0.5)):
        rows += [_brow(cell, "window", d, "cpasync", 1.0), _brow(cell, "window", d, "tma_row", 3.0),
                 _brow(cell, "window", d, "tma_run", bound * 0.99 if d <= 0.1 else 9.0)]
    rows.append(_brow("r", "random", 0.1, "tma_run", 9.0))  # not a rule cell
    v, geo, _ = bench.rule(rows)
    assert v == "GO" and geo["tma_run"] == pytest.approx(bound * 0.99)
    ok = [dict(variant="tma_run", ok="True"), dict(variant="cpasync", ok="False")]
    assert bench.verdict(rows, ok)[0] == "GO"
    assert bench.verdict(rows, None)[0] == "NO-GO"
    assert bench.verdict(rows, [dict(variant="tma_row", ok="False")])[0] == "NO-GO"
    slow = [dict(r, us_per_tile=str(float(r["us_per_tile"]) * 1.03)) if r["variant"] == "tma_run" else r
            for r in rows]
    assert bench.rule(slow)[0] == "NO-GO"


def _prow(shape: str, d: float, var: str, rel: float) -> dict:
    return dict(shape=shape, density_target=str(d), variant=var, rel_list=str(rel))


def test_probe_rule_constants_and_paths():
    assert (probe.MAX_REL, probe.LOW_D, probe.LOW_GEO_MAX, probe.CONTROL_GEO_BAND) == (1.02, 0.05, 0.97, 0.01)
    cells = [("H12 N32760 D128", 0.02), ("H12 N32760 D128", 0.05), ("H12 N32760 D128", 0.1),
             ("H40 N75600 D128", 0.02), ("H40 N75600 D128", 0.5)]
    rows = []
    for s, d in cells:
        rows += [_prow(s, d, "list_ctl", 1.06 if d == 0.1 else 0.985), _prow(s, d, "tg", 0.95 if d <= 0.05 else 1.01),
                 _prow(s, d, "tg40", 0.96 if d <= 0.05 else 1.03)]
    ctl, out, win = probe.rule_verdict(rows, set())
    assert ctl == "valid"  # a control cell at 1.06 reports, the pooled geo-mean (1.003) decides
    assert out["tg"][0] == "eligible" and out["tg40"][0] == "not eligible" and win == "tg"
    assert probe.rule_verdict(rows, {"tg"})[1]["tg"][0] == "not eligible"
    far = [dict(r, rel_list="1.03") if r["variant"] == "list_ctl" else r for r in rows]
    assert probe.rule_verdict(far, set())[0] == "void"
    mid = [dict(r, rel_list="0.98") if r["variant"] == "tg" and float(r["density_target"]) <= 0.05 else r
           for r in rows]
    assert probe.rule_verdict(mid, set())[1]["tg"][0] == "not eligible"  # geo-mean 0.98 > 0.97


RESULTS = ROOT / "validation" / "results"


def test_s16_call_verdicts_recomputed_from_the_committed_csvs():
    import csv

    from rowpipe_probe import paired_fit

    b = RESULTS / "kernels-h200-2026-12-01-tmagather-bench.csv"
    rows = list(csv.DictReader(open(b, newline="")))
    crows = list(csv.DictReader(open(b.with_name(b.stem + "-check.csv"), newline="")))
    assert len(crows) == 18 and all(r["ok"] == "True" for r in crows)
    v, why = bench.verdict(rows, crows)
    assert v == "GO", why
    _, geo, _ = bench.rule(rows)
    assert geo["tma_run"] == pytest.approx(1.220, abs=0.001) and geo["tma_row"] > 19
    f = RESULTS / "kernels-h200-2026-12-01-tmagather-fg.csv"
    frows = list(csv.DictReader(open(f, newline="")))
    with probe._patched():
        failed = probe.ep.check_failures(f)
    assert failed == {"tg40"}  # tg40 was dropped before call 2: unchecked, never eligible
    ctl, out, win = probe.rule_verdict(frows, failed)
    assert ctl == "valid" and out["tg"][0] == "not eligible" and win is None
    fit = paired_fit(frows, "tg", None)
    assert fit["d_c_row_us"] == pytest.approx(1.833, abs=0.002)
    assert fit["d_c_tile_us"] == pytest.approx(-0.145, abs=0.002)


def test_timeline_compare_lines():
    import tmagather_timeline as tt

    rows = [dict(cell="H12 N32760 d 0.02", variant="list", quantity="c0_q_wait", median_us="0.25"),
            dict(cell="H12 N32760 d 0.02", variant="tg", quantity="c0_q_wait", median_us="1.95"),
            dict(cell="H12 N32760 d 0.02", variant="tg", quantity="p_lead", median_us="3.0"),  # no list twin
            dict(cell="H12 N32760 d 0.02", variant="list", quantity="row_cycles", median_us="")]
    out = tt.compare(rows)
    assert len(out) == 1 and "c0_q_wait" in out[0] and "tg-list +1.700 us" in out[0]


# ------------------------------------------------------------------------------------------------ helper W2
def test_w2_dispatch_routes_runs_to_tg_and_scattered_keys_to_the_packaged_kernel():
    rng = random.Random(_seed())
    n = 4096
    runs = [list(range(s, s + 200)) + list(range(s + 1000, s + 1100)) for s in (0, 512, 2048, 3000)]
    scattered = [sorted(rng.sample(range(n), 300)) for _ in range(4)]
    ri, si = _index(runs, n), _index(scattered, n)
    pr, ps = tg.plan_pieces(ri), tg.plan_pieces(si)
    assert tg.mean_pieces_per_tile(pr) <= tg.TG_MAX_PIECES_PER_TILE < tg.mean_pieces_per_tile(ps)
    assert tg.tg_route(ri, pr)[0] == "tg" and tg.tg_route(si, ps)[0] == "list"
    assert tg.tg_route(ri, None) == ("list", "no piece list")
    assert tg.tg_route(ri, pr, max_pieces_per_tile=1.0)[0] == "list"
    out = torch.zeros(1, 1, 4 * 128, 129, dtype=torch.float16)  # row stride 258 B: no O bulk store
    assert tg.tg_route(ri, pr, out[..., :128], "bhnd") == ("list", "out cannot take the O bulk store")
    assert tg.tg_route(ri, pr, torch.zeros(1, 1, 4 * 128, 128, dtype=torch.float16), "bhnd")[0] == "tg"
    m64 = FgIndex(ri.offsets, ri.indices, 64, 1, n, 1, 1, 4, None)
    assert tg.tg_route(m64, pr)[0] == "list"


def test_w2_knobs_and_bad_input():
    assert tg.TG_MAX_PIECES_PER_TILE == 8.0
    assert tg.TGC_KNOBS == {"tgq": dict(qcp=True, olate=False, pahead=True),
                            "tgqo": dict(qcp=True, olate=True, pahead=True)}
    x = torch.zeros(1, 1, 128, 128)
    idx = _index([[0, 1, 2]], 128)
    with pytest.raises(ValueError, match="gluon_fg_tmagather: qcp=1 must be a bool"):
        tg.fg_attention_tgc(x, x, x, idx, qcp=1)
    with pytest.raises(ValueError, match="gluon_fg_tmagather: variant='tgx' must be one of"):
        tg.fg_attention_tg_auto(x, x, x, idx, variant="tgx")


def _w2():
    import tmagather_w2_probe as w2

    return w2


def test_w2_rule_constants_and_paths():
    w2 = _w2()
    assert (w2.MAX_REL, w2.LOW_D, w2.LOW_GEO_MAX, w2.ALL_GEO_MAX, w2.CONTROL_GEO_BAND) == (1.02, 0.05, 0.98, 0.97,
                                                                                           0.01)
    cells = [("H12 N32760 D128", 0.02), ("H12 N32760 D128", 0.05), ("H12 N32760 D128", 0.1),
             ("H40 N75600 D128", 0.02), ("H40 N75600 D128", 0.5)]
    rows = []
    for s, d in cells:
        rows += [_prow(s, d, "list", 1.0), _prow(s, d, "list_ctl", 1.06 if d == 0.1 else 0.985),
                 _prow(s, d, "tgq", 0.97 if d <= 0.05 else 0.95), _prow(s, d, "tgqo", 0.975 if d <= 0.05 else 0.99)]
    ctl, out, win = w2.rule_verdict(rows, set())
    assert ctl == "valid" and win == "tgq"
    assert out["tgq"][0] == "eligible"
    assert out["tgqo"][0] == "not eligible" and "over all timed cells > 0.97" in out["tgqo"][1][-1]  # all: 0.981
    assert w2.rule_verdict(rows, {"tgq"})[1]["tgq"][0] == "not eligible"
    hot = [dict(r, rel_list="1.03") if r["variant"] == "tgq" and r["density_target"] == "0.5" else r for r in rows]
    assert w2.rule_verdict(hot, set())[1]["tgq"][0] == "not eligible"  # one cell > 1.02
    low = [dict(r, rel_list="0.99") if r["variant"] == "tgq" and float(r["density_target"]) <= 0.05 else r
           for r in rows]
    assert w2.rule_verdict(low, set())[1]["tgq"][0] == "not eligible"  # d <= 0.05 geo-mean 0.99 > 0.98
    far = [dict(r, rel_list="1.02") if r["variant"] == "list_ctl" else r for r in rows]
    assert w2.rule_verdict(far, set())[0] == "void"
    assert w2.ep.CANDIDATES != w2.CANDIDATES or w2.ep.LOW_GEO_MAX != 0.98  # the module's globals restored


def test_w2_check_routes_cover_both_kernels(tmp_path):
    w2 = _w2()
    cnt = w2.write_routes(tmp_path / "r.csv", n=12, seed=2616)
    assert sum(cnt.values()) == 12
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[0].startswith("case,")
    assert {r for r, _ in cnt} == {"tg", "list"}  # the first 12 of the GPU check's cases take both routes


def test_timeline_compare_lines_forms():
    import tmagather_timeline as tt

    rows = [dict(cell="c", variant="list", quantity="c0_q_wait", median_us="0.25"),
            dict(cell="c", variant="tg", quantity="c0_q_wait", median_us="1.95"),
            dict(cell="c", variant="tgq", quantity="c0_q_wait", median_us="0.30"),
            dict(cell="c", variant="tgq", quantity="c0_o_release", median_us="0.30")]  # no list twin
    out = tt.compare(rows)
    assert len(out) == 1 and "(tg-list +1.700 us)" in out[0] and "(tgq-list +0.050 us)" in out[0]


def test_w2_call_verdicts_recomputed_from_the_committed_csvs():
    import csv

    import tmagather_timeline as tt
    import tmagather_w2_plot as wp
    from rowpipe_probe import paired_fit

    w2 = _w2()
    f = RESULTS / "kernels-h200-2026-12-01-fg-tmagather-w2.csv"
    rows = list(csv.DictReader(open(f, newline="")))
    acc = list(csv.DictReader(open(f.with_name(f.stem + "-accuracy.csv"), newline="")))
    assert len(acc) == 600 and all(r["ok"] == "True" for r in acc)
    with w2._patched():
        failed = w2.ep.check_failures(f)
    assert failed == set()
    ctl, out, win = w2.rule_verdict(rows, failed)
    assert ctl == "valid" and win is None
    assert out["tgq"][0] == "not eligible" and out["tgqo"][0] == "not eligible"
    assert len({(r["shape"], r["density_target"]) for r in rows if r["variant"] == "tgq"}) == 23
    assert paired_fit(rows, "tgq", None)["d_c_row_us"] == pytest.approx(2.380, abs=0.002)
    assert paired_fit(rows, "tgqo", None)["d_c_tile_us"] == pytest.approx(-0.159, abs=0.002)
    tl = list(csv.DictReader(open(RESULTS / "kernels-h200-2026-12-01-tmagather-w2-timeline.csv", newline="")))
    assert {r["bit_equal"] for r in tl if r["variant"] != "list"} == {"True"}
    d = dict(zip([q for q, _ in wp.PHASES], wp.phase_deltas(tl, "H12 N32760 d 0.02", "tg"), strict=True))
    assert abs(d["c0_q_wait"]) < 50 and d["c0_meet"] > 300 and d["row_cycles"] == pytest.approx(706, abs=1)
    assert any("c0_meet" in ln for ln in tt.compare(tl))
    pts = wp.rel_points(rows, "tgqo")
    assert len(pts) == 23 and max(p[1] for p in pts if p[0] < 7) > 1.1  # the two short-row d 0.02 cells
