"""fgattn.gluon_fg_m64 (the Gluon M64 research kernel, issue 12): knob validation, launch planning, the lanes'
static walk and its imbalance bound, every bad-input message, and kernels/tools/gluon_m64_probe.py's pure parts
and argument errors.  The kernel itself runs only on an sm_90 GPU (the probe checks it against float64 there)."""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import fgattn  # noqa: E402
import gluon_m64_probe as probe  # noqa: E402
from fgattn import gluon_fg_m64 as g  # noqa: E402


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def _case(h: int = 2, n: int = 300, dtype=torch.bfloat16, layout: str = "bhnd", order: bool = True, seed: int = 0,
          block_m: int = 64):
    gen = torch.Generator().manual_seed(seed)
    shp = (1, h, n, 128) if layout == "bhnd" else (1, n, h, 128)
    q, k, v = (torch.randn(*shp, generator=gen).to(dtype) for _ in range(3))
    mask = torch.rand(1, h, -(-n // block_m), n, generator=gen) < 0.3
    idx = fgattn.build_index(mask, block_m=block_m, gran_n=1, order=order)
    return q, k, v, idx


def test_default_knobs_fill_the_register_file():
    kn = g.check_m64_knobs()
    assert kn == dict(LANES=2, BLOCK_N=64, STAGES=3, PRODUCER_WARPS=4, PIPE=0, FENCE=False, QREG=False, CONSUMER_REGS=192,
                      PRODUCER_REGS=64)
    for lanes, pw in ((1, 4), (2, 2), (2, 4)):
        k = g.check_m64_knobs(lanes=lanes, producer_warps=pw)
        threads = 32 * lanes * (4 + pw)
        pool = g.launch_regs(k) * threads
        used = 32 * lanes * (4 * k["CONSUMER_REGS"] + pw * k["PRODUCER_REGS"])
        assert used <= pool <= 65536 // g.ctas_per_sm(lanes)
        assert pool - used < 32 * lanes * 4 * 8  # no whole step of 8 consumer registers left unused
        assert g.smem_bytes(lanes, k["STAGES"]) * g.ctas_per_sm(lanes) <= g.SMEM_PER_SM


@pytest.mark.parametrize("kw,msg", [
    (dict(lanes=3), "lanes=3 must be one of [2, 1]"),
    (dict(lanes=True), "lanes=True must be one of [2, 1]"),
    (dict(block_n=128), "block_n=128 must be one of [64]"),
    (dict(stages=5), "stages=5 must be one of [3, 2, 4]"),
    (dict(producer_warps=1), "producer_warps=1 must be one of [4, 2]"),
    (dict(pipeline=2), "pipeline=2 must be one of [0, 1]"),
    (dict(fence=1), "fence=1 must be one of [False, True]"),
    (dict(qreg="yes"), "qreg='yes' must be one of [False, True]"),
    (dict(lanes=1, producer_warps=2), "producer_warps=2 with lanes=1: Triton 3.6 gives the consumer partition 256"),
    (dict(stages=4), "stages=4 with lanes=2: 295056 B of shared memory per CTA x 1 CTAs per SM exceed 233472 B"),
    (dict(stages=4, lanes=1), "stages=4 with lanes=1: 147528 B of shared memory per CTA x 2 CTAs per SM exceed"),
    (dict(regs=(200, 64)), "regs=(200, 64): 67584 registers for 512 threads exceed the CTA's 65536 (1 CTA(s)"),
    (dict(regs=(190, 64)), "regs=(190, 64) must be (consumer, producer) multiples of 8"),
    (dict(regs=(64, 128)), "regs=(64, 128) must be (consumer, producer) multiples of 8"),
    (dict(regs=[192, 64]), "regs=[192, 64] must be (consumer, producer)"),
    (dict(regs=(248, 24)), "regs=(248, 24) must be (consumer, producer) multiples of 8 with 24 <= producer"),
])
def test_bad_knobs_one_line(kw, msg):
    with pytest.raises(ValueError) as e:
        g.check_m64_knobs(**kw)
    assert str(e.value).startswith("fgattn.gluon_fg_m64: ")
    assert msg in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_regs_exceeding_pool_message_is_exact():
    with pytest.raises(ValueError, match=r"regs=\(200, 64\): 67584 registers for 512 threads exceed the CTA's 65536"):
        g.check_m64_knobs(regs=(200, 64))


def test_lane_walk_covers_every_position_once():
    rng = random.Random(_seed())
    for _ in range(200):
        n, progs, lanes = rng.randrange(0, 500), rng.randrange(1, 40), rng.choice((1, 2))
        walk = g.lane_walk(n, progs, lanes)
        flat = sorted(x for prog in walk for lane in prog for x in lane)
        assert flat == list(range(n))
        for p, prog in enumerate(walk):
            assert len(prog) == lanes
            for ln, pos in enumerate(prog):
                assert all(b - a == progs * lanes for a, b in zip(pos, pos[1:], strict=False))
                assert not pos or pos[0] == p * lanes + ln  # the kernel's first position
    # the two heaviest rows of each round go to the two lanes of one program (one SM)
    assert g.lane_walk(10, 2, 2) == [[[0, 4, 8], [1, 5, 9]], [[2, 6], [3, 7]]]


def _lists_rows(lists, order):
    return [[[order[i] for i in lane] for lane in prog] for prog in lists]


def test_walk_over_heaviest_first_is_within_one_row_of_the_mean():
    rng = random.Random(_seed())
    for _ in range(100):
        counts = [rng.choice((0, rng.randrange(1, 100), rng.randrange(100, 4000))) for _ in range(rng.randrange(1, 300))]
        costs = g.row_costs(counts, c_row=0.0)
        order = sorted(range(len(counts)), key=lambda r: -counts[r])  # heaviest first
        progs, lanes = rng.randrange(1, 20), rng.choice((1, 2))
        mx, mean = g.lanes_makespan(costs, _lists_rows(g.lane_walk(len(counts), progs, lanes), order))
        # round robin over a descending list: no lane exceeds another by more than the heaviest row
        assert mx <= mean + max(costs) + 1e-9
    # heavy rows every 8th in natural order all land on one of the 8 lanes; heaviest first spreads them
    counts = [6400 if i % 8 == 0 else 64 for i in range(64)]
    costs = g.row_costs(counts, c_row=1.0)
    natural = list(range(64))
    lpt = sorted(natural, key=lambda r: -counts[r])
    assert g.lanes_makespan(costs, _lists_rows(g.lane_walk(64, 4, 2), natural)) == (8 * 101, (8 * 101 + 56 * 2) / 8)
    assert g.lanes_makespan(costs, _lists_rows(g.lane_walk(64, 4, 2), lpt))[0] == 101 + 7 * 2


def test_lane_lpt_assigns_every_row_once_within_graham_bound():
    rng = random.Random(_seed())
    for _ in range(100):
        counts = [rng.choice((0, rng.randrange(1, 200), rng.randrange(200, 9000))) for _ in range(rng.randrange(1, 400))]
        costs = g.row_costs(counts)
        progs, lanes = rng.randrange(1, 30), rng.choice((1, 2))
        lists = g.lane_lpt(costs, progs, lanes)
        assert len(lists) == progs and all(len(p) == lanes for p in lists)
        assert sorted(r for p in lists for ln in p for r in ln) == list(range(len(counts)))
        mx, mean = g.lanes_makespan(costs, lists)
        assert mx <= mean + max(costs) + 1e-9  # greedy list scheduling
        for p in lists:  # a lane runs its rows heaviest first
            for ln in p:
                assert [costs[r] for r in ln] == sorted((costs[r] for r in ln), reverse=True)


def test_lane_lpt_balances_text_rows_the_walk_does_not():
    # H12 N32760+512 at M64 in miniature: 96 full text rows among 6,144 short video rows, 132 programs x 2 lanes
    counts = [33272] * 96 + [655] * 6144
    costs = g.row_costs(counts)
    order = list(range(len(counts)))  # the text rows first, as the promoted LPT order puts them
    walk = g.lanes_makespan(costs, _lists_rows(g.lane_walk(len(counts), 132, 2), order))
    lpt = g.lanes_makespan(costs, g.lane_lpt(costs, 132, 2))
    assert walk[1] == pytest.approx(lpt[1])
    assert walk[0] / walk[1] > 1.6  # a lane holding a text row also walks ~23 video rows
    assert lpt[0] / lpt[1] < 1.25  # the text row's lane gets no video rows


def test_lane_list_keeps_launch_order_and_balances():
    rng = random.Random(_seed())
    for _ in range(100):
        counts = [rng.choice((0, rng.randrange(1, 200), rng.randrange(200, 9000))) for _ in range(rng.randrange(1, 400))]
        costs = g.row_costs(counts)
        order = list(range(len(counts)))
        rng.shuffle(order)
        progs, lanes = rng.randrange(1, 30), rng.choice((1, 2))
        lists = g.lane_list(costs, order, progs, lanes)
        assert sorted(r for p in lists for ln in p for r in ln) == sorted(order)
        pos = {r: i for i, r in enumerate(order)}
        for p in lists:  # every lane in launch order
            for ln in p:
                assert [pos[r] for r in ln] == sorted(pos[r] for r in ln)
        mx, mean = g.lanes_makespan(costs, lists)
        assert mx <= mean + max(costs) + 1e-9
    # the first programs*lanes rows of the order start the lanes, one each, as a launch would
    assert [ln[0] for p in g.lane_list([1.0] * 8, [7, 6, 5, 4, 3, 2, 1, 0], 2, 2) for ln in p] == [7, 6, 5, 4]
    with pytest.raises(ValueError, match="order must be a permutation of the rows"):
        g.lane_list([1.0, 2.0], [1, 1], 1, 1)


def test_flatten_lanes_and_plan_lanes_on_cpu():
    assert g.flatten_lanes([[[3, 1], []], [[0], [2, 4]]]) == ([3, 1, 0, 2, 4], [0, 2, 2, 3, 5])
    q, k, v, idx = _case(h=3, n=1000, seed=_seed())
    for sched in ("walk", "lpt", "list"):
        pl = g.plan_lanes(idx, programs=5, lanes=2, schedule=sched)
        assert (pl.programs, pl.lanes, pl.n_rows, pl.schedule) == (5, 2, 48, sched)
        rows, start = pl.rows.tolist(), pl.start.tolist()
        assert len(start) == 11 and start[0] == 0 and start[-1] == 48 and sorted(rows) == list(range(48))
        assert pl.rows.dtype == torch.int32 and pl.makespan >= pl.mean_load
        if sched == "walk":
            order = idx.order.tolist()
            assert rows[start[1]:start[2]] == [order[1], order[11], order[21], order[31], order[41]]
    idx_nat = fgattn.FgIndex(idx.offsets, idx.indices, 64, 1, idx.n_keys, 1, 3, 16)  # no order: natural
    pl = g.plan_lanes(idx_nat, programs=24, lanes=2)
    assert pl.rows.tolist() == list(range(48)) and pl.start.tolist() == list(range(49))
    with pytest.raises(ValueError, match=r"schedule='fifo' must be one of \['walk', 'lpt', 'list'\]"):
        g.plan_lanes(idx, programs=5, schedule="fifo")


@pytest.mark.parametrize("args,msg", [((-1, 1, 1), "n_rows=-1 must be a non-negative int"),
                                      ((5, 0, 1), "programs=0 must be a positive int"),
                                      ((5, 1, 0), "lanes=0 must be a positive int"),
                                      ((5, 1.0, 1), "programs=1.0 must be a positive int")])
def test_lane_walk_bad_input(args, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        g.lane_walk(*args)


@pytest.mark.parametrize("layout", ["bhnd", "bnhd"])
def test_plan_grid_rows_and_lanes(layout):
    q, k, v, idx = _case(h=3, n=1000, layout=layout)
    p = g.plan_gluon_m64(q, k, v, idx, layout=layout)
    assert (p.n_rows, p.n_qblocks, p.heads, p.n_q, p.ordered, p.dtype, p.layout) == (48, 16, 3, 1000, True, "bf16",
                                                                                      layout)
    assert p.grid == 24  # ceil(rows / 2 lanes) < 132 SMs
    assert g.plan_gluon_m64(q, k, v, idx, layout=layout, lanes=1).grid == 48
    assert g.plan_gluon_m64(q, k, v, idx, layout=layout, sms=5).grid == 5
    assert g.plan_gluon_m64(q, k, v, idx, layout=layout, lanes=1, sms=5).grid == 10  # 2 CTAs per SM
    q2, k2, v2, idx2 = _case(h=1, n=65, dtype=torch.float16, layout=layout, order=False)
    p2 = g.plan_gluon_m64(q2, k2, v2, idx2, layout=layout)
    assert (p2.n_rows, p2.grid, p2.ordered, p2.dtype) == (2, 1, False, "fp16")


def _bad_cases():
    q, k, v, idx = _case(h=2, n=300, seed=5)
    i128 = _case(h=2, n=300, seed=5, block_m=128)[3]
    i_other = _case(h=2, n=301, seed=5)[3]
    return [
        (dict(layout="bshd"), "layout must be 'bhnd' or 'bnhd', got 'bshd'"),
        (dict(q=q[0]), "q must be a 4-D tensor (bhnd), got torch.Size([2, 300, 128])"),
        (dict(q=q.float(), k=k.float(), v=v.float()), "q: dtype torch.float32 not supported"),
        (dict(k=k.half()), "k: dtype/device torch.float16/cpu differ from q's torch.bfloat16/cpu"),
        (dict(v=v.transpose(-1, -2).contiguous().transpose(-1, -2)), "v: the head dimension must be contiguous"),
        (dict(q=q[..., :64].contiguous(), k=k[..., :64].contiguous(), v=v[..., :64].contiguous()),
         "head_dim=64 not supported (only 128)"),
        (dict(k=k[:, :, :200]), "k/v shapes (1, 2, 200, 128), (1, 2, 300, 128) do not match q"),
        (dict(index="idx"), "index must be an FgIndex, got str"),
        (dict(index=i128), "index has block_m=128, gran_n=1 (this kernel needs 64, 1)"),
        (dict(index=i_other), "index (batch, heads, n_qblocks, n_keys)=(1, 2, 5, 301) does not match q/k (1, 2, 5, 300)"),
        (dict(q=torch.empty(1, 2, 0, 128, dtype=torch.bfloat16), k=k[:, :, :0], v=v[:, :, :0]),
         "sequence length must be positive"),
        (dict(lanes=3), "lanes=3 must be one of [2, 1]"),
        (dict(sms=0), "sms / programs=0 must be a positive int"),
    ], (q, k, v, idx)


def test_plan_bad_inputs_one_line_each():
    cases, (q, k, v, idx) = _bad_cases()
    for over, msg in cases:
        kw = dict(q=q, k=k, v=v, index=idx)
        kw.update({a: b for a, b in over.items() if a in kw})
        rest = {a: b for a, b in over.items() if a not in kw}
        with pytest.raises(ValueError) as e:
            g.plan_gluon_m64(kw["q"], kw["k"], kw["v"], kw["index"], **rest)
        assert msg in str(e.value), (msg, str(e.value))
        assert str(e.value).startswith("fgattn.gluon_fg_m64: ") and "\n" not in str(e.value)


def test_unaligned_strides_rejected():
    q, k, v, idx = _case(h=2, n=300)
    qq = torch.empty(1, 2, 301, 128, dtype=torch.bfloat16)[:, :, 1:]  # base 256 B in: aligned; stride fine
    g.plan_gluon_m64(qq, k, v, idx)
    big = torch.zeros(1, 2, 300, 136, dtype=torch.bfloat16)[..., :128]  # row stride 272 B: aligned
    g.plan_gluon_m64(q, big, v, idx)
    odd = torch.zeros(1, 2, 300, 129, dtype=torch.bfloat16)[..., :128]  # row stride 258 B
    with pytest.raises(ValueError, match="k: base / strides not 16-byte aligned"):
        g.plan_gluon_m64(q, odd, v, idx)
    with pytest.raises(ValueError, match="q strides .* are not 16-byte aligned"):
        g.plan_gluon_m64(odd, k, v, idx)


def test_launch_needs_cuda():
    q, k, v, idx = _case()
    with pytest.raises(ValueError, match="q must be a CUDA tensor|no usable Gluon"):
        g.fg_attention_gluon_m64(q, k, v, idx)


def test_import_fgattn_does_not_import_gluon_m64():
    import subprocess

    code = "import sys, fgattn; fgattn.fg_attention; print('fgattn.gluon_fg_m64' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "kernels",
                         env={"PYTHONPATH": str(ROOT / "kernels"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ the probe
def test_probe_check_cases_are_seeded_and_varied():
    a, b = probe.check_cases(300, 7), probe.check_cases(300, 7)
    assert a == b and a != probe.check_cases(300, 8)
    for key, vals in (("dtype", {"bf16", "fp16"}), ("layout", {"bhnd", "bnhd"}), ("programs", {1, 3, 7, None}),
                      ("window", {True, False}), ("b", {1, 2}), ("text", {0, 77, 300})):
        assert {c[key] for c in a} == vals, key
    assert {c["n"] % 2 for c in a} == {0, 1}
    assert all(0.01 <= c["density"] <= 1.0 for c in a)
    assert all(c["text"] == 0 for c in a if c["n"] < 600)


def test_probe_build_case_empties_one_block_and_fills_another():
    for c in probe.check_cases(6, _seed()):
        c = dict(c, b=1, h=min(c["h"], 2), n=min(c["n"], 200), text=0)
        q, k, v, idx, (eb, eh, eq) = probe.build_case(c, device="cpu")
        n = c["n"]
        assert q.shape == ((1, c["h"], n, 128) if c["layout"] == "bhnd" else (1, n, c["h"], 128))
        assert (idx.block_m, idx.gran_n, idx.n_keys) == (64, 1, n) and idx.order is not None
        cnt = idx.counts().view(c["b"], c["h"], -1)
        assert cnt[eb, eh, eq] == 0
        assert int(cnt.max()) == n or cnt.shape[2] == 1  # the full block keeps every key


def test_probe_row_stats():
    st = probe.m64_row_stats([0, 1, 64, 65, 640], sms=2)
    assert st == dict(rows=5, rows_per_sm=2.5, exec_tiles=1 + 1 + 1 + 2 + 10, exec_tiles_per_row=3.0)


def test_probe_dry_run_and_shape_densities(capsys):
    assert probe.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"12x32760+512": [0.02, 0.1, 0.5]' in out and '"40x75600+0": [0.02, 0.1]' in out
    a = probe.parse_args(["--dry-run", "--shape-densities", "12x100:0.3/0.4"])
    assert probe.densities_for(a, (12, 100, 0)) == [0.3, 0.4]
    assert probe.densities_for(a, (40, 75600, 0)) == [0.02, 0.1, 0.5]


@pytest.mark.parametrize("argv,msg", [
    (["--variants", "entry,nope", "--dry-run"], "--variants: unknown ['nope']"),
    (["--variants", "g2", "--dry-run"], "--variants: the timing pairs every variant with 'entry'"),
    (["--rounds", "2", "--dry-run"], "--rounds: 2 < 3"),
    (["--check", "-1", "--dry-run"], "--check: -1 must be >= 0"),
    (["--densities", "0,0.1", "--dry-run"], "--densities: '0,0.1' must lie in (0, 1]"),
    (["--densities", "x", "--dry-run"], "--densities: 'x' is not a comma-separated list"),
    (["--shapes", "12x", "--dry-run"], "--shapes: bad item '12x'"),
    (["--shape-densities", "12x100:2", "--dry-run"], "--shape-densities: densities of '12x100:2' must lie in (0, 1]"),
    (["--shape-densities", "12x100", "--dry-run"], "--shape-densities: bad item '12x100'"),
    (["--ncu", "entry,zz", "--dry-run"], "--ncu: unknown ['zz']"),
    (["--ncu-cell", "12x100", "--dry-run"], "--ncu-cell: bad value '12x100'"),
    ([], "--out is required for a GPU run"),
])
def test_probe_argument_errors(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        probe.parse_args(argv)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_probe_analyze_fits_exact_costs_and_prints_tables(tmp_path, capsys):
    import csv as _csv

    rng = random.Random(_seed())
    cols = ["shape", "density_target", "variant", "ms", "rel_entry", "rel_entry_min", "rel_entry_max",
            "ratio_vs_cudnn", "rows_per_sm", "exec_tiles_per_row"]
    rows = [dict(shape="H1 N1 D128", density_target="1.0", variant="cudnn", ms="9", rel_entry="", rel_entry_min="",
                 rel_entry_max="", ratio_vs_cudnn="1.0", rows_per_sm="", exec_tiles_per_row="")]
    costs = {"entry": (3.7, 0.6), "g1_q_list": (rng.uniform(1, 4), rng.uniform(0.4, 0.8))}
    for i, (rps, tpr) in enumerate(((46.5, 13.0), (46.5, 255.0), (358.2, 21.2), (47.3, 66.2))):
        te = (costs["entry"][0] * rps + costs["entry"][1] * rps * tpr) / 1e3
        for v, (cr, ct) in costs.items():
            t = (cr * rps + ct * rps * tpr) / 1e3
            rows.append(dict(shape=f"H{i} N1 D128", density_target="0.1", variant=v, ms=f"{t:.9f}",
                             rel_entry=f"{t / te:.6f}", rel_entry_min="0.9", rel_entry_max="1.1",
                             ratio_vs_cudnn="0.5", rows_per_sm=str(rps), exec_tiles_per_row=str(tpr)))
    path = tmp_path / "x.csv"
    with open(path, "w", newline="") as f:
        w = _csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    body = [r for r in rows if r["variant"] != "cudnn"]
    for v, (cr, ct) in costs.items():
        fr, ft, res = probe.fit_costs(body, v)
        assert fr == pytest.approx(cr, rel=1e-5) and ft == pytest.approx(ct, rel=1e-5) and res < 1e-6
    assert probe.main(["--analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| H0 N1 d 0.1 | 13.0 |" in out and "| g1_q_list |" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("shape,density_target,variant,ms\nH1,0.1,g1,1\n")
    assert probe.main(["--analyze", str(bad)]) == 2
    assert "has no entry rows" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        probe.parse_args(["--analyze", str(tmp_path / "missing.csv")])
    assert "is not a file" in capsys.readouterr().err


@pytest.mark.parametrize("qblocks", [4, 5])
def test_union_pairs_match_a_python_merge(qblocks):
    seed = _seed()
    gen = torch.Generator().manual_seed(seed)
    b, h, n = 2, 3, 97
    mask = torch.rand(b, h, qblocks, n, generator=gen) < 0.2
    mask[0, 1, 0] = False  # an empty block
    mask[1, 2, -1] = True  # a full block (alone in its pair when qblocks is odd)
    idx = fgattn.build_index(mask, block_m=64, gran_n=1)
    u = g.union_pairs(idx)
    qp = -(-qblocks // 2)
    assert u.n_pairs == b * h * qp and u.offsets.shape == (u.n_pairs + 1,)
    assert u.indices.dtype == torch.int32 and u.member.dtype == torch.int8
    off, ind, mem = u.offsets.tolist(), u.indices.tolist(), u.member.tolist()
    for bi in range(b):
        for hi in range(h):
            for i in range(qp):
                p = (bi * h + hi) * qp + i
                a = set(torch.nonzero(mask[bi, hi, 2 * i]).flatten().tolist())
                c = set(torch.nonzero(mask[bi, hi, 2 * i + 1]).flatten().tolist()) if 2 * i + 1 < qblocks else set()
                keys = ind[off[p]:off[p + 1]]
                assert keys == sorted(a | c)
                assert mem[off[p]:off[p + 1]] == [(k in a) + 2 * (k in c) for k in keys]
                to = u.tile_offsets.tolist()
                assert to[p + 1] - to[p] == max(-(-len(keys) // 128), 1)
                for t in range(to[p + 1] - to[p]):
                    seg = mem[off[p] + 128 * t:off[p] + 128 * (t + 1)]
                    assert u.tile_shared[to[p] + t] == int(len(seg) == 128 and all(x == 3 for x in seg))


def test_union_stats_extremes_and_bad_index():
    n = 640
    same = torch.zeros(1, 1, 4, n, dtype=torch.bool)
    same[..., :320] = True  # both blocks of each pair keep the same 320 keys
    st = g.union_stats(fgattn.build_index(same, block_m=64, gran_n=1))
    assert st == dict(gather_ratio=0.5, compute_ratio=1.0, shared_tiles=2 / 3)  # 320 keys: 128 + 128 + 64
    disjoint = torch.zeros(1, 1, 2, n, dtype=torch.bool)
    disjoint[0, 0, 0, :128] = True
    disjoint[0, 0, 1, 128:256] = True  # union 256 keys = 4 tiles per block vs 2 own
    st = g.union_stats(fgattn.build_index(disjoint, block_m=64, gran_n=1))
    assert st == dict(gather_ratio=1.0, compute_ratio=2.0, shared_tiles=0.0)
    with pytest.raises(ValueError, match="union_pairs: index has block_m=128, gran_n=1"):
        g.union_pairs(_case(block_m=128)[3])


def test_probe_union_stats_on_cpu(capsys):
    assert probe.main(["--union-stats", "--shapes", "2x700", "--densities", "0.3", "--shape-densities", ""]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("[union] H2 N700+0 d 0.3 (real ") and ", cpu)" in line
    gather = float(line.split("gathered rows ")[1].split("x")[0])
    compute = float(line.split("computed 64-key tiles ")[1].split("x")[0])
    assert 0.5 <= gather <= 1.0 and 1.0 <= compute <= 2.0


def test_pair_order_and_plan_pairs_on_cpu():
    gen = torch.Generator().manual_seed(_seed())
    mask = torch.rand(1, 3, 7, 500, generator=gen) < torch.rand(1, 3, 7, 1, generator=gen)
    idx = fgattn.build_index(mask, block_m=64, gran_n=1)
    u = g.union_pairs(idx)
    assert u.n_pairs == 3 * 4
    order = g.pair_order(u, 3)
    cnt = (u.offsets[1:] - u.offsets[:-1]).tolist()
    assert sorted(order) == list(range(12))
    for hd in range(3):  # head-major, longer unions first within a head
        seg = order[4 * hd:4 * hd + 4]
        assert sorted(seg) == list(range(4 * hd, 4 * hd + 4))
        assert [cnt[p] for p in seg] == sorted((cnt[p] for p in seg), reverse=True)
    pl = g.plan_pairs(u, 3, programs=5)
    assert (pl.programs, pl.lanes, pl.n_rows, pl.schedule) == (5, 1, 12, "list")
    assert sorted(pl.rows.tolist()) == list(range(12)) and pl.start.tolist()[-1] == 12
    with pytest.raises(ValueError, match=r"pipeline=2 must be one of \[0, 1\]"):
        g.compile_pair_sm90(2)
    q, k, v, _ = _case(h=3, n=500)
    with pytest.raises(ValueError, match="q must be a CUDA tensor|no usable Gluon"):
        g.fg_attention_gluon_pair(q, k, v, idx)


def test_inflight_heads_counts_distinct_heads_over_time():
    # two lanes: lane 0 runs head 0 for 2 units, lane 1 head 1 for 1 unit then head 0 for 1 unit
    lists = [[[0], [1, 2]]]
    mean, peak = g.inflight_heads([2.0, 1.0, 1.0], lists, [0, 1, 0])
    assert (mean, peak) == (1.5, 2)  # heads {0, 1} for 1 unit, {0} for 1 unit
    # the walk over a head-major order drifts when row costs differ; list scheduling keeps heads together
    rng = random.Random(_seed())
    heads, per = 12, 64
    counts = [rng.choice((64 * 4, 64 * 40)) for _ in range(heads * per)]
    costs = g.row_costs(counts)
    order = list(range(heads * per))
    head = [r // per for r in order]
    walk = [[[order[i] for i in ln] for ln in p] for p in g.lane_walk(len(order), 16, 2)]
    lst = g.lane_list(costs, order, 16, 2)
    assert g.inflight_heads(costs, lst, head)[0] < g.inflight_heads(costs, walk, head)[0]


def test_probe_inflight_on_cpu(capsys):
    assert probe.main(["--inflight", "--shapes", "2x700", "--densities", "0.3", "--shape-densities", ""]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("[inflight] H2 N700+0 d 0.3 (cpu; heads in flight mean/peak): M64 walk ")
    for part in ("M64 list ", "M64 lpt ", "M128 walk ", "M128 list "):
        assert part in line
