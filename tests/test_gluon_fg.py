"""fgattn.gluon_fg (the Gluon prototype, issue 12): launch planning and every bad-input message on any machine;
validation/gluon_probe.py's argument errors.  The kernels themselves run only on an sm_90 GPU
(validation/gluon_probe.py checks them against float64 there); their offline sm_90 compile needs Triton 3.6."""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "validation")]

import fgattn  # noqa: E402
import gluon_probe  # noqa: E402
from fgattn import gluon_fg  # noqa: E402


def _case(h: int = 2, n: int = 300, d: int = 128, dtype=torch.bfloat16, layout: str = "bhnd", order: bool = True,
          seed: int | None = None):
    seed = random.randrange(2**31) if seed is None else seed
    print("seed", seed)
    g = torch.Generator().manual_seed(seed)
    shp = (1, h, n, d) if layout == "bhnd" else (1, n, h, d)
    q, k, v = (torch.randn(*shp, generator=g).to(dtype) for _ in range(3))
    qb = -(-n // 128)
    mask = torch.rand(1, h, qb, n, generator=g) < 0.3
    mask[0, 0, 1] = False  # an empty query block
    idx = fgattn.build_index(mask, block_m=128, gran_n=1, order=order)
    return q, k, v, idx


def test_import_fgattn_does_not_import_gluon():
    code = "import sys, fgattn; fgattn.fg_attention; print('triton.experimental.gluon' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "kernels",
                         env={"PYTHONPATH": str(ROOT / "kernels"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("layout", ["bhnd", "bnhd"])
def test_plan_forms_grid_and_order(layout):
    q, k, v, idx = _case(h=3, n=1000, layout=layout)
    p = gluon_fg.plan_gluon(q, k, v, idx, layout=layout)
    assert (p.form, p.grid, p.n_rows, p.n_qblocks, p.heads, p.n_q, p.ordered, p.dtype) == (
        "one_row", 24, 24, 8, 3, 1000, True, "bf16")
    for form in ("persistent", "ws", "ws2"):
        pp = gluon_fg.plan_gluon(q, k, v, idx, layout=layout, form=form, sms=5)
        assert (pp.form, pp.grid) == (form, 5)
        assert gluon_fg.plan_gluon(q, k, v, idx, layout=layout, form=form, sms=132).grid == 24  # min(rows, SMs)
    q16, k16, v16, idx2 = _case(h=1, n=129, dtype=torch.float16, layout=layout, order=False)
    p2 = gluon_fg.plan_gluon(q16, k16, v16, idx2, layout=layout)
    assert (p2.grid, p2.ordered, p2.dtype) == (2, False, "fp16")


def _bad_cases():
    q, k, v, idx = _case(h=2, n=300, seed=5)
    idx64 = fgattn.build_index(torch.ones(1, 2, 5, 300, dtype=torch.bool), block_m=64, gran_n=1)
    idx_g16 = fgattn.build_index(torch.ones(1, 2, 3, 300, dtype=torch.bool), block_m=128, gran_n=16)
    idx_h3 = _case(h=3, n=300, seed=5)[3]
    return [
        (dict(block_m=64), (q, k, v, idx), "block_m=64, gran_n=1 not supported by the prototype"),
        (dict(gran_n=16), (q, k, v, idx), "block_m=128, gran_n=16 not supported"),
        (dict(layout="nhd"), (q, k, v, idx), "layout must be 'bhnd' or 'bnhd'"),
        ({}, (q[0], k, v, idx), "q must be a 4-D tensor"),
        ({}, (q.float(), k.float(), v.float(), idx), "q: dtype torch.float32 not supported"),
        ({}, (q, k.half(), v, idx), "k: dtype/device torch.float16/cpu differ from q's"),
        ({}, (q, k.transpose(2, 3).contiguous().transpose(2, 3), v, idx), "k: the head dimension must be contiguous"),
        ({}, (q[..., :64], k[..., :64], v[..., :64], idx), "head_dim=64 not supported by the prototype (only 128)"),
        ({}, (q, k, v[:, :, :299], idx), "k/v shapes"),
        ({}, (q, k, v, "index"), "index must be an FgIndex, got str"),
        ({}, (q, k, v, idx64), "index has block_m=64"),
        ({}, (q, k, v, idx_g16), "index has block_m=128, gran_n=16"),
        ({}, (q, k, v, idx_h3), "does not match q/k (1, 2, 3, 300)"),
        (dict(form="persistent", sms=0), (q, k, v, idx), "sms / programs=0 must be a positive int"),
        (dict(form="flat"), (q, k, v, idx), "form='flat' is not one of ('one_row', 'persistent', 'ws', 'ws2')"),
        ({}, (q[:, :, :0], k, v, idx), "sequence length must be positive"),
    ]


@pytest.mark.parametrize("i", range(16))
def test_bad_input_one_clear_line(i):
    kw, args, needle = _bad_cases()[i]
    with pytest.raises(ValueError) as e:
        gluon_fg.plan_gluon(*args, **kw)
    msg = str(e.value)
    assert msg.startswith("fgattn.gluon_fg: ") and needle in msg and "\n" not in msg, msg


def test_q_stride_alignment_for_tma():
    q, k, v, idx = _case(h=2, n=300, seed=7)
    big = torch.zeros(1, 2, 300, 136, dtype=torch.bfloat16)  # row stride 136 elements = 272 B: aligned
    assert gluon_fg.plan_gluon(big[..., :128], k, v, idx).grid == 6
    odd = torch.zeros(1, 2, 300, 132, dtype=torch.bfloat16)[..., :128]  # 264 B rows: not 16-B aligned
    with pytest.raises(ValueError, match="q strides .* are not 16-byte aligned"):
        gluon_fg.plan_gluon(odd, k, v, idx)


def test_launch_refuses_cpu_tensors_before_any_work():
    q, k, v, idx = _case(h=1, n=200, seed=3)
    with pytest.raises(ValueError, match="fgattn.gluon_fg: .*(CUDA tensor|Gluon)"):
        gluon_fg.fg_attention_gluon(q, k, v, idx)


@pytest.mark.parametrize("argv, needle", [
    (["--densities", "0,2", "--dry-run"], "--densities: '0,2' must lie in (0, 1]"),
    (["--densities", "x", "--dry-run"], "--densities: 'x' is not a comma-separated list"),
    (["--shapes", "40y2", "--dry-run"], "--shapes: bad item '40y2'"),
    (["--variants", "entry,nosuch", "--dry-run"], "--variants: unknown ['nosuch']"),
    (["--rounds", "2", "--dry-run"], "--rounds: 2 < 3"),
    (["--variants", "gluon_ws3", "--dry-run"], "--variants: unknown ['gluon_ws3']"),
    ([], "--out is required for a GPU run"),
])
def test_probe_bad_arguments_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        gluon_probe.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1]


def test_probe_extra_variants_accepted_not_default(capsys):
    assert gluon_probe.main(["--dry-run", "--variants", "entry,gluon_ws2_nofence"]) == 0
    assert '"variants": ["entry", "gluon_ws2_nofence"]' in capsys.readouterr().out
    assert not set(gluon_probe.EXTRA_VARIANTS) & set(gluon_probe.VARIANTS)
    assert {gluon_probe.FORM[v] for v in gluon_probe.EXTRA_VARIANTS} == {"ws", "ws2"}


def test_probe_dry_run_plan(capsys):
    assert gluon_probe.main(["--dry-run", "--shapes", "40x32760,12x32760+512", "--tag=-g1"]) == 0
    out = capsys.readouterr().out
    assert '"shapes": [[40, 32760, 0], [12, 32760, 512]]' in out and '"tag": "-g1"' in out
    assert '"variants": ["entry", "gluon_row", "gluon_pers", "gluon_ws", "gluon_ws2"]' in out


# ---- round 2 (helper G2): form d's knobs and the probe's analysis -------------------------------------------
def test_ws2_knobs_defaults_and_values():
    assert gluon_fg.check_ws2_knobs("ws2") == dict(PIPE=0, EXP_POLY=0, PINGPONG=False,
                                                   CONSUMER_REGS=gluon_fg.CONSUMER_REGS,
                                                   PRODUCER_REGS=gluon_fg.PRODUCER_REGS)
    k = gluon_fg.check_ws2_knobs("ws2", pipeline=2, exp_poly=0.25, pingpong=True, regs=(224, 56))
    assert k == dict(PIPE=2, EXP_POLY=4, PINGPONG=True, CONSUMER_REGS=224, PRODUCER_REGS=56)
    assert gluon_fg.check_ws2_knobs("one_row") == gluon_fg.check_ws2_knobs("ws2")  # all off: any form


@pytest.mark.parametrize("form, kw, needle", [
    ("ws", dict(pipeline=1), "knobs of form 'ws2' only, not form='ws'"),
    ("one_row", dict(pingpong=True), "knobs of form 'ws2' only, not form='one_row'"),
    ("ws2", dict(pipeline=4), "pipeline=4 must be one of (0, 1, 2, 3)"),
    ("ws2", dict(pipeline=True), "pipeline=True must be one of (0, 1, 2, 3)"),
    ("ws2", dict(exp_poly=0.5), "exp_poly=0.5 must be one of (0, 0.25)"),
    ("ws2", dict(exp_poly=True), "exp_poly=True must be one of (0, 0.25)"),
    ("ws2", dict(pingpong=1), "pingpong=1 must be a bool"),
    ("ws2", dict(regs=(220, 64)), "regs=(220, 64) must be (consumer, producer) multiples of 8"),
    ("ws2", dict(regs=(232, 56)), "regs=(232, 56) must be"),
    ("ws2", dict(regs=(64, 128)), "regs=(64, 128) must be"),
    ("ws2", dict(regs=(224,)), "regs=(224,) must be"),
    ("ws2", dict(regs=[224, 56]), "regs=[224, 56] must be"),
])
def test_ws2_knobs_bad_values_one_line(form, kw, needle):
    with pytest.raises(ValueError) as e:
        gluon_fg.check_ws2_knobs(form, **kw)
    msg = str(e.value)
    assert msg.startswith("fgattn.gluon_fg: ") and needle in msg and "\n" not in msg, msg


def test_probe_knob_variants_are_valid_ws2_knobs():
    for name, kn in gluon_probe.KNOBS.items():
        kn = dict(kn)
        assert kn.pop("consumer_fence") is False, name  # every round-2 variant runs without the fence
        gluon_fg.check_ws2_knobs(gluon_probe.FORM[name], **kn)
        assert name in gluon_probe.PERSISTENT


def _write_cells(path, d_row: float, d_tile: float, seed: int) -> None:
    """A probe-like CSV whose variant 'v' differs from the entry by exactly d_row us per row and d_tile us per
    executed tile (per SM), with a cuDNN ratio column; the entry times are random (seeded)."""
    import csv

    rng = random.Random(seed)
    print("seed", seed)
    cols = ["shape", "density_target", "variant", "ms", "rel_entry", "rel_entry_min", "rel_entry_max",
            "ratio_vs_cudnn", "rows_per_sm", "exec_tiles_per_row"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for i, tpr in enumerate((4.0, 13.0, 26.0, 60.0, 128.0, 290.0)):
            rps = rng.uniform(20, 80)
            t_us = rps * (rng.uniform(6, 9) + tpr * rng.uniform(2.0, 2.3))
            dt_us = d_row * rps + d_tile * rps * tpr
            rel = 1 + dt_us / t_us
            base = dict(shape=f"S{i}", density_target="0.1", rows_per_sm=rps, exec_tiles_per_row=tpr)
            w.writerow(dict(base, variant="cudnn", ms=1.0, rel_entry="", rel_entry_min="", rel_entry_max="",
                            ratio_vs_cudnn=1.0))
            w.writerow(dict(base, variant="entry", ms=t_us / 1e3, rel_entry=1.0, rel_entry_min=1.0, rel_entry_max=1.0,
                            ratio_vs_cudnn=0.8))
            w.writerow(dict(base, variant="v", ms=(t_us + dt_us) / 1e3, rel_entry=rel, rel_entry_min=rel,
                            rel_entry_max=rel, ratio_vs_cudnn=0.8 / rel))


def test_probe_analyze_fit_and_dispatch(tmp_path, capsys):
    path = tmp_path / "probe.csv"
    _write_cells(path, -3.0, 0.1, seed=random.randrange(2**31))
    cells = gluon_probe.load_cells([path])
    d_row, d_tile, n = gluon_probe.paired_fit(cells, "v")
    assert n == 6 and abs(d_row + 3.0) < 1e-6 and abs(d_tile - 0.1) < 1e-6
    picks = {s: (pick, x) for s, _, _, pick, x, _ in gluon_probe.dispatch(cells, "v", 30.0)}  # break-even 30 tiles
    assert [picks[f"S{i}"][0] for i in range(6)] == ["v", "v", "v", "entry", "entry", "entry"]
    assert picks["S0"][1] > 0.8 and picks["S5"][1] == 0.8
    assert gluon_probe.main(["--analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| v | 6 | -3.00 | +0.1000 | 30 |" in out and "dispatch v when tiles/row < 30" in out


def test_probe_analyze_bad_inputs(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        gluon_probe.main(["--analyze", str(tmp_path / "none.csv")])
    assert e.value.code == 2 and "--analyze:" in capsys.readouterr().err.strip().splitlines()[-1]
    good = tmp_path / "p.csv"
    _write_cells(good, -1.0, 0.0, seed=3)
    with pytest.raises(SystemExit) as e:
        gluon_probe.main(["--analyze", str(good), "--threshold", "0"])
    assert e.value.code == 2 and "--threshold: 0.0 must be > 0" in capsys.readouterr().err
    bad = tmp_path / "noentry.csv"
    bad.write_text("".join(ln for ln in good.read_text().splitlines(True) if ",entry," not in ln))
    assert gluon_probe.main(["--analyze", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gluon_probe: --analyze: cells without an entry row")
