"""fgattn.gluon_contig (issue 12 research, helper D: the ws2 CTA with TMA K/V loads for dense / block-sparse
attention): the host-side plan and kept-key offsets against brute force, every bad-input message, and
kernels/tools/contig_probe.py's pre-registered eligibility rule and arguments.  The kernel itself runs only on an
sm_90 GPU (the probe checks it against float64 there); its offline sm_90 compile needs Triton 3.6."""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import contig_probe  # noqa: E402
import fgattn  # noqa: E402
from fgattn import gluon_contig as gc  # noqa: E402


def _block_index(h: int, n: int, seed: int, order: bool = True, density: float = 0.35):
    print("seed", seed)
    g = torch.Generator().manual_seed(seed)
    qb, nb = -(-n // 128), -(-n // 128)
    tiles = torch.rand(1, h, qb, nb, generator=g) < density
    tiles[0, 0, 0] = False  # an empty row
    tiles[0, h - 1, qb - 1] = True  # a full row (holds the partial last key block)
    return fgattn.block_index_from_mask(tiles, block_m=128, n_keys=n, order=order), tiles


@pytest.mark.parametrize("n", [600, 640, 129, 1000])
def test_key_offsets_count_the_partial_block_exactly(n):
    seed = random.randrange(2**31)
    bi, tiles = _block_index(3, n, seed)
    keys = torch.nn.functional.pad(tiles.repeat_interleave(128, dim=-1), (0, 0))[..., :n]  # per-key kept mask
    want = torch.zeros(bi.n_rows + 1, dtype=torch.int64)
    want[1:] = torch.cumsum(keys.reshape(bi.n_rows, n).sum(-1), 0)
    assert torch.equal(gc.key_offsets(bi), want)


def test_plan_dense_is_the_walk_and_covers_every_row_once():
    p = gc.plan_contig(batch=2, heads=3, n_q=1000, n_kv=1000, programs=7)
    qb = 8
    assert (p.n_rows, p.programs, p.dense) == (2 * 3 * qb, 7, True)
    st, rows = p.start.tolist(), p.rows.tolist()
    assert [rows[st[i]:st[i + 1]] for i in range(7)] == [list(range(i, 48, 7)) for i in range(7)]
    assert torch.equal(p.koffsets, torch.arange(49) * 1000)
    assert p.boffsets is None and p.blocks is None
    assert gc.plan_contig(batch=1, heads=1, n_q=100, n_kv=5, programs=132).programs == 1  # clipped to the rows


@pytest.mark.parametrize("order", [True, False])
def test_plan_block_follows_the_launch_order_and_balances(order):
    seed = random.randrange(2**31)
    bi, _ = _block_index(4, 1999, seed, order=order, density=0.2)
    p = gc.plan_contig(batch=1, heads=4, n_q=1999, n_kv=1999, programs=5, block_index=bi)
    st, rows = p.start.tolist(), p.rows.tolist()
    assert sorted(rows) == list(range(bi.n_rows)) and len(st) == 6 and st[0] == 0 and st[-1] == bi.n_rows
    pos = {r: i for i, r in enumerate(range(bi.n_rows) if bi.order is None else bi.order.tolist())}
    for i in range(5):  # each program runs its rows in launch order
        mine = rows[st[i]:st[i + 1]]
        assert [pos[r] for r in mine] == sorted(pos[r] for r in mine)
    costs = [3.0 + max(int(c), 1) for c in bi.counts().tolist()]
    loads = [sum(costs[r] for r in rows[st[i]:st[i + 1]]) for i in range(5)]
    assert p.makespan == max(loads) and abs(p.mean_load - sum(loads) / 5) < 1e-9
    assert max(loads) - min(loads) <= max(costs)  # greedy list scheduling's bound
    assert torch.equal(p.koffsets, gc.key_offsets(bi)) and p.blocks is bi.indices


def test_plan_with_no_kept_block_gives_the_producer_a_block_number():
    bi = fgattn.block_index_from_mask(torch.zeros(1, 1, 1, 1, dtype=torch.bool), block_m=128, n_keys=65)
    p = gc.plan_contig(batch=1, heads=1, n_q=65, n_kv=65, programs=3, block_index=bi)
    assert p.blocks.numel() == 1 and p.koffsets.tolist() == [0, 0]


@pytest.mark.parametrize("kw, msg", [
    (dict(programs=0), "programs=0 must be a positive int"),
    (dict(n_kv=True), "n_kv=True must be a positive int"),
    (dict(c_row=-1), "c_row=-1 must be a number"),
    (dict(block_index="x"), "block_index must be an FgIndex, got str"),
    (dict(block_index="fg"), "needs 128, 128"),
    (dict(block_index="other"), r"does not match \(1, 2, 3, 300\)"),
])
def test_plan_bad_inputs_name_the_argument(kw, msg):
    if kw.get("block_index") == "fg":
        kw["block_index"] = fgattn.build_index(torch.ones(1, 2, 3, 300, dtype=torch.bool), block_m=128)
    elif kw.get("block_index") == "other":
        kw["block_index"], _ = _block_index(2, 400, 5)
    args = {**dict(batch=1, heads=2, n_q=300, n_kv=300, programs=4), **kw}
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_contig: .*" + msg):
        gc.plan_contig(**args)


@pytest.mark.parametrize("regs", [(216, 64), (240, 24)])
def test_check_regs_accepts_the_two_splits(regs):
    assert gc.check_regs(regs) == regs


@pytest.mark.parametrize("regs", [(250, 24), (216, 20), (212, 64), (240, 48), [216, 64], (216, True)])
def test_check_regs_refuses(regs):
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_contig: regs="):
        gc.check_regs(regs)


def test_launch_refuses_cpu_tensors_before_any_work():
    q = torch.zeros(1, 1, 128, 128, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"^fgattn\.gluon_contig: (q must be a CUDA tensor|this Triton has no)"):
        gc.contig_attention_gluon(q, q, q)


# ------------------------------------------------------------------------------------------------ the probe
def _rows(ctl=(1.0, 1.01, 0.99), dense=(0.95, 0.96), dense_cudnn=(1.02, 1.01), block=(0.9, 0.92, 0.95)):
    rows = []
    for i, x in enumerate(ctl):
        rows.append(dict(variant="ctl", mode="dense" if i == 0 else "block", shape=f"S{i}", density_target="1",
                         rel_entry=str(x), ratio_vs_cudnn="1"))
    for v in contig_probe.GLUON:
        for i, (x, c) in enumerate(zip(dense, dense_cudnn, strict=True)):
            rows.append(dict(variant=v, mode="dense", shape=f"S{i}", density_target="1.0", rel_entry=str(x),
                             ratio_vs_cudnn=str(c)))
        for i, x in enumerate(block):
            rows.append(dict(variant=v, mode="block", shape="S0", density_target=str(i), rel_entry=str(x),
                             ratio_vs_cudnn="0.9"))
    return rows


def test_rule_eligible_and_each_way_to_miss():
    ok = {v: True for v in contig_probe.GLUON}
    out = contig_probe.rule_verdict(_rows(), ok)
    assert {k: v[0] for k, v in out.items()} == {(v, m): "eligible" for v in contig_probe.GLUON
                                                  for m in ("dense", "block")}
    out = contig_probe.rule_verdict(_rows(dense=(0.95, 1.01), dense_cudnn=(1.0, 0.96)), ok)
    assert out[("contig", "dense")][0] == "not eligible"
    assert any("1.010 > 1.0" in w for w in out[("contig", "dense")][1])
    assert any("0.960 < 0.97" in w for w in out[("contig", "dense")][1])
    out = contig_probe.rule_verdict(_rows(block=(0.9, 1.03, 0.95)), ok)
    assert out[("contig", "block")][0] == "not eligible"
    out = contig_probe.rule_verdict(_rows(block=(0.98, 0.99, 0.97)), ok)  # every cell <= 1.02, geo 0.98 > 0.97
    assert out[("contig", "block")] == ("not eligible", ["geo-mean t/t_entry 0.980 > 0.97"])
    out = contig_probe.rule_verdict(_rows(), {"contig": False, "contig_r240": True, "contig_pp": True})
    assert out[("contig", "dense")][0] == "not eligible" and out[("contig_r240", "dense")][0] == "eligible"


def test_rule_is_void_when_the_control_moves():
    out = contig_probe.rule_verdict(_rows(ctl=(1.0, 1.04, 1.0)), {v: True for v in contig_probe.GLUON})
    assert all(v[0] == "void" for v in out.values())
    out = contig_probe.rule_verdict(_rows(ctl=(1.02, 1.02, 1.02)), {v: True for v in contig_probe.GLUON})
    assert all(v[0] == "void" and "geo-mean" in v[1][0] for v in out.values())


def test_check_cases_are_seeded_and_cover_the_edges():
    a = contig_probe.check_cases(64, 1313)
    assert a == contig_probe.check_cases(64, 1313) and a != contig_probe.check_cases(64, 1314)
    assert any(c["n"] % 2 for c in a) and any(c["text"] for c in a) and any(not c["order"] for c in a)
    assert {c["dtype"] for c in a} == {"bf16", "fp16"} and {c["layout"] for c in a} == {"bhnd", "bnhd"}


@pytest.mark.parametrize("argv, msg", [
    (["--densities", "0.1,1.0"], "--densities"),
    (["--variants", "contig"], "include it"),
    (["--variants", "entry,nope"], "unknown"),
    (["--rounds", "2"], "--rounds"),
    (["--shapes", "12x"], "--shapes"),
    ([], "--out is required"),
    (["--summarize", "/nope.csv", "/nope.csv"], "no such file /nope.csv"),
])
def test_probe_argument_errors_exit_2(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        contig_probe.parse_args(argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err
