"""fgattn.gluon_fg_list (the adopted Gluon ws2 CTA over a list-scheduled row plan, issue 12 research): the planner
(every row once, every program busy, launch order kept per program, Graham's list-scheduling bound, text rows
balanced where the static walk is not, the walk plan = the entry's walk), every bad-input message, and
kernels/tools/ws2_list_probe.py's pure parts.  The kernel runs only on an sm_90 GPU (the probe checks it there)."""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import fgattn  # noqa: E402
import ws2_list_probe as probe  # noqa: E402
from fgattn import gluon_fg_list as gl_list  # noqa: E402
from fgattn import gluon_fg_m64 as g  # noqa: E402


def _seed() -> int:
    s = random.randrange(2**31)
    print("seed", s)
    return s


def _index(h: int = 3, n: int = 2000, density: float = 0.2, text_rows: int = 0, seed: int = 0, order: bool = True,
           block_m: int = 128):
    gen = torch.Generator().manual_seed(seed)
    qb = -(-n // block_m)
    mask = torch.rand(1, h, qb, n, generator=gen) < density
    mask[:, :, :text_rows] = True  # full rows (as text tokens' query blocks)
    return fgattn.build_index(mask, block_m=block_m, gran_n=1, order=order)


def _lists(plan):
    st, flat = plan.start.tolist(), plan.rows.tolist()
    return [flat[st[i]:st[i + 1]] for i in range(plan.programs)]


@pytest.mark.parametrize("programs", [1, 5, 17, 132])
def test_list_plan_runs_every_row_once_keeps_launch_order_and_graham_bound(programs):
    s = _seed()
    idx = _index(h=3, n=3001, density=random.Random(s).uniform(0.02, 0.6), text_rows=2, seed=s)
    plan = gl_list.plan_ws2_list(idx, programs=programs)
    lists = _lists(plan)
    flat = [r for lst in lists for r in lst]
    assert sorted(flat) == list(range(idx.n_rows))
    assert plan.programs == min(programs, idx.n_rows) and all(lists)
    pos = {r: i for i, r in enumerate(idx.order.tolist())}
    assert all([pos[r] for r in lst] == sorted(pos[r] for r in lst) for lst in lists)  # launch order per program
    costs = g.row_costs(idx.counts().tolist(), 128, gl_list.C_ROW_TILES)
    loads = [sum(costs[r] for r in lst) for lst in lists]
    assert plan.makespan == pytest.approx(max(loads)) and plan.mean_load == pytest.approx(sum(loads) / len(loads))
    # list scheduling: the last row of the busiest program started when that program was the least loaded
    assert max(loads) <= sum(costs) / plan.programs + max(costs) + 1e-9


def test_walk_plan_is_the_entrys_static_walk():
    idx = _index(h=2, n=2600, seed=3)
    plan = gl_list.plan_ws2_list(idx, programs=7, schedule="walk")
    order = idx.order.tolist()
    assert _lists(plan) == [order[p::7] for p in range(7)]
    assert gl_list.ws2_walk_lists(5, 2, [4, 3, 2, 1, 0]) == [[4, 2, 0], [3, 1]]


def test_list_balances_text_rows_the_walk_does_not():
    # 4 heads x 24 query blocks; every head's first block keeps all keys (text-like), the rest few
    idx = _index(h=4, n=3072, density=0.02, text_rows=1, seed=11)
    walk = gl_list.plan_ws2_list(idx, programs=16, schedule="walk")
    lst = gl_list.plan_ws2_list(idx, programs=16)
    assert walk.makespan / walk.mean_load > 1.3
    assert lst.makespan / lst.mean_load < 1.1
    assert lst.makespan < walk.makespan


def test_plan_without_order_uses_natural_order_and_clips_programs():
    idx = _index(h=1, n=300, order=False, seed=2)  # 3 rows
    plan = gl_list.plan_ws2_list(idx, programs=132)
    assert plan.programs == 3 and sorted(_lists(plan)) == [[0], [1], [2]]
    assert plan.rows.dtype == torch.int32 and plan.start.tolist() == [0, 1, 2, 3]


def test_c_row_changes_the_plan():
    idx = _index(h=2, n=3001, density=0.3, text_rows=1, seed=5)
    a = _lists(gl_list.plan_ws2_list(idx, programs=9, c_row=0.0))
    b = _lists(gl_list.plan_ws2_list(idx, programs=9, c_row=50.0))
    assert a != b
    # with a huge row cost every program gets the same number of rows (within one)
    sizes = [len(x) for x in b]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("kw,msg", [
    (dict(programs=0), "programs=0 must be a positive int"),
    (dict(programs=True), "programs=True must be a positive int"),
    (dict(programs=4, schedule="lpt"), "schedule='lpt' must be 'list' or 'walk'"),
    (dict(programs=4, c_row=-1.0), "c_row=-1.0 must be a number in [0, 1e6) (tile units)"),
    (dict(programs=4, c_row="3"), "c_row='3' must be a number in [0, 1e6) (tile units)"),
])
def test_plan_bad_inputs_one_line_each(kw, msg):
    idx = _index(h=1, n=500, seed=1)
    with pytest.raises(ValueError) as e:
        gl_list.plan_ws2_list(idx, **kw)
    assert str(e.value) == f"fgattn.gluon_fg_list: {msg}"


def test_plan_rejects_wrong_index():
    with pytest.raises(ValueError, match=r"^fgattn.gluon_fg_list: index must be an FgIndex, got dict$"):
        gl_list.plan_ws2_list({}, programs=2)
    idx64 = _index(h=1, n=500, block_m=64)
    with pytest.raises(ValueError, match=r"index has block_m=64, gran_n=1 \(the ws2 form needs 128, 1\)$"):
        gl_list.plan_ws2_list(idx64, programs=2)
    with pytest.raises(ValueError, match="order must be a permutation of the rows"):
        gl_list.ws2_walk_lists(3, 2, [0, 0, 1])


def test_launch_needs_cuda():
    q = torch.zeros(1, 1, 128, 128, dtype=torch.bfloat16)
    idx = _index(h=1, n=128)
    with pytest.raises(ValueError, match="fgattn.gluon_fg_list: (q must be a CUDA tensor|this Triton has no)"):
        gl_list.fg_attention_gluon_list(q, q, q, idx)


def test_list_launch_is_the_one_ws2_body_with_the_entrys_knobs_and_a_plan():
    """One Gluon fg CTA body (session 13): the list schedule launches fgattn.gluon_fg's ws2 kernel with PLANNED on
    and exactly the constexprs the walk launch of the packaged entry's Gluon options gets (pipeline 1, no fence,
    default exp_poly / pingpong / registers); the walk leaves PLANNED at its default, off."""
    from fgattn import gluon_fg
    from fgattn.launch import launch_config

    c = gl_list._constexprs()
    opts = launch_config("fg", "h200", 128, 128, 1).gluon_options()
    want = gluon_fg.check_ws2_knobs(opts["form"], pipeline=opts["pipeline"], exp_poly=opts["exp_poly"],
                                    pingpong=opts["pingpong"], regs=opts["regs"])
    assert c == dict(HEAD_DIM=128, BLOCK_M=128, BLOCK_N=128, STAGES=3, num_warps=4,
                     CONSUMER_FENCE=opts["consumer_fence"], PLANNED=True, **want)
    assert c["PIPE"] == 1 and c["CONSUMER_FENCE"] is False
    if gluon_fg.gluon_available() is None:  # the kernel's signature: the plan rides on Order / Start
        names = list(gluon_fg._fg_gluon_ws2.arg_names)
        assert names[6:9] == ["Order", "Start", "qk_scale"] and "PLANNED" in names
        assert not hasattr(gl_list, "_fg_gluon_ws2_list")  # no second copy of the loop


def test_probe_entry_is_the_walk_of_the_packaged_entry():
    """The probe's ``entry`` variant stays the walk after the table adopted the list (session 13): the packaged
    entry with ``schedule`` walk, every other field and knob the packaged one's."""
    from fgattn.launch import launch_config

    pk, e = launch_config("fg", "h200", 128, 128, 1), probe.walk_entry()
    assert pk.gluon_schedule() == "list" and e.gluon_schedule() == "walk"
    assert e.gluon_options() == {**pk.gluon_options(), "epilogue": "stg"} and e.tl_config() == pk.tl_config()


def test_import_fgattn_does_not_import_gluon_list():
    import subprocess

    code = "import sys; import fgattn; print('fgattn.gluon_fg_list' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT / "kernels"), "PATH": "/usr/bin:/bin"}).stdout.strip()
    assert out == "False"


def test_probe_check_cases_are_seeded_and_varied():
    a, b = probe.check_cases(120, 9101), probe.check_cases(120, 9101)
    assert a == b and a != probe.check_cases(120, 9102)
    assert {c["dtype"] for c in a} == {"bf16", "fp16"} and {c["layout"] for c in a} == {"bhnd", "bnhd"}
    assert {c["text"] for c in a} >= {0, 77, 300} and {c["programs"] for c in a} == {1, 3, 7, None}
    assert any(c["n"] % 2 for c in a) and any(c["n"] % 128 for c in a)


def test_probe_shards_keep_specialisations_together_and_balance():
    cases = probe.check_cases(120, 9101)
    shard = probe.assign_shards(cases, 8)
    assert sorted(set(shard)) == list(range(8))
    owner: dict[tuple, int] = {}
    for c, r in zip(cases, shard, strict=True):
        assert owner.setdefault(probe.spec_key(c), r) == r  # one specialisation, one process
    sizes = [shard.count(r) for r in range(8)]
    biggest = max(sum(1 for c in cases if probe.spec_key(c) == k) for k in owner)
    assert max(sizes) - min(sizes) <= biggest
    assert probe.assign_shards(cases, 1) == [0] * 120


def test_probe_build_case_empties_one_block_and_fills_another():
    c = probe.check_case(random.Random(4))
    c.update(n=1000, text=77, b=1, h=2, window=False, density=0.3, layout="bnhd")
    q, k, v, idx, (eb, eh, eq) = probe.build_case(c, device="cpu")
    counts = idx.counts().reshape(1, 2, -1)
    assert q.shape == (1, 1077, 2, 128) and counts[eb, eh, eq] == 0
    assert int(counts[0, 0].max()) == 1077  # the full block keeps every key


def test_probe_dry_run(capsys):
    assert probe.main(["--dry-run", "--check", "3", "--ncu"]) == 0
    out = capsys.readouterr().out
    assert '"12x32760+512": [0.02, 0.1, 0.5]' in out and '"40x75600+0": [0.02, 0.1]' in out
    assert '"ncu": "12x32760:0.5"' in out


@pytest.mark.parametrize("argv,msg", [
    (["--dry-run", "--variants", "entry,lpt"], "--variants: unknown ['lpt']"),
    (["--dry-run", "--variants", "list"], "--variants: the timing pairs every variant with 'entry'; include it"),
    (["--dry-run", "--rounds", "2"], "--rounds: 2 < 3"),
    (["--dry-run", "--densities", "0.1,2"], "--densities: '0.1,2' must lie in (0, 1]"),
    (["--dry-run", "--shapes", "12x"], "--shapes: bad item '12x'"),
    (["--dry-run", "--ncu-cell", "12x32760"], "--ncu-cell: bad value '12x32760'"),
    (["--check", "5"], "--out is required for a GPU run"),
    (["--dry-run", "--check-procs", "0"], "--check-procs: 0 must be >= 1"),
    (["--dry-run", "--check-shard", "a/b"], "--check-shard: bad value 'a/b'"),
])
def test_probe_argument_errors(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        probe.parse_args(argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def _rows(ctl, lst, natural_list=1.3):
    shapes = [("H12 N32760 D128", "0.02"), ("H12 N32760+512text D128", "0.1"), ("H40 N75600 D128", "0.1")]
    rows = [dict(shape=s, density_target=d, variant="walk_ctl", rel_entry=str(c)) for (s, d), c in zip(shapes, ctl, strict=True)]
    rows += [dict(shape=s, density_target=d, variant="list", rel_entry=str(x)) for (s, d), x in zip(shapes, lst, strict=True)]
    rows += [dict(shape="H12 N32760+512text D128 natural", density_target="0.1", variant=v, rel_entry=str(x))
             for v, x in (("walk_ctl", 1.2), ("list", natural_list))]
    rows.append(dict(shape="H12 N32760 D128", density_target="0.02", variant="cudnn", rel_entry=""))
    return rows


@pytest.mark.parametrize("ctl,lst,verdict,why", [
    ((0.98, 1.024, 1.0), (0.9, 0.85, 0.95), "eligible", "list 0.850-0.950"),  # the re-run's scatter passes
    ((0.98, 1.05, 1.0), (0.9, 0.85, 0.95), "void", "walk_ctl 1.050 at H12 N32760+512text D128 d 0.1 outside"),
    ((1.02, 1.03, 1.0), (0.9, 0.85, 0.95), "void", "walk_ctl geo-mean 1.017 outside 1 +- 0.01"),
    ((1.0, 1.0, 1.0), (0.9, 1.03, 0.95), "not eligible", "list 1.030 > 1.02 at H12 N32760+512text D128 d 0.1"),
])
def test_probe_rule_verdict(ctl, lst, verdict, why):
    got, reasons = probe.rule_verdict(_rows(ctl, lst))
    assert got == verdict and any(why in r for r in reasons), (got, reasons)


def test_probe_rule_ignores_natural_order_and_needs_pairs():
    assert probe.rule_verdict(_rows((1, 1, 1), (0.9, 0.9, 0.9), natural_list=1.5))[0] == "eligible"
    rows = [r for r in _rows((1, 1, 1), (0.9, 0.9, 0.9)) if not (r["variant"] == "list" and "H40" in r["shape"])]
    assert probe.rule_verdict(rows) == ("void", ["the timing lacks paired list / walk_ctl rows at some "
                                                 "launch-ordered problem"])


def test_probe_natural_problems_parse(capsys):
    assert probe.main(["--dry-run", "--natural", "12x32760+512:0.02/0.1"]) == 0
    assert '"natural": {"12x32760+512": [0.02, 0.1]}' in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        probe.parse_args(["--dry-run", "--natural", "12x32760+512:0"])
    assert e.value.code == 2 and "--natural: densities of '12x32760+512:0' must lie in (0, 1]" in capsys.readouterr().err
