"""The reference DiT: model, training steps, sampler, attention switch, weights I/O (CPU)."""

from __future__ import annotations

import csv
import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import fgsim.reference as ref  # noqa: E402
from fgsim.errors import FgsimError  # noqa: E402
from fgsim.reference.data import LATENT_CHANNELS, ClipDataset, LatentCodec  # noqa: E402
from fgsim.reference.model import build_model, count_parameters, read_metadata, save_weights  # noqa: E402
from fgsim.reference.sample import (  # noqa: E402
    capture_sample,
    flow_sigmas,
    psnr,
    sample,
    sdpa_attention,
    self_attention,
)
from fgsim.reference.train import Stage, TrainConfig, flow_loss, train  # noqa: E402

GRID = (2, 8, 8)  # latent T, h, w → 2 × 4 × 4 = 32 tokens


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return build_model(seed=0).eval()


def _latents(b=2, seed=0):
    return torch.randn((b, LATENT_CHANNELS, *GRID), generator=torch.Generator().manual_seed(seed))


def test_config_and_parameter_count(model):
    cfg = model.config["transformer"]
    assert cfg["attention_head_dim"] in (64, 128) and cfg["in_channels"] == LATENT_CHANNELS
    assert type(model.transformer).__name__ == "WanTransformer3DModel"
    counts = count_parameters(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters()) == 8_122_688


def test_forward_shape_and_labels(model):
    x = _latents()
    t = torch.tensor([0.3, 0.9])
    lab = torch.tensor([[0, 1, 1], [-1, -1, -1]])
    with torch.no_grad():
        v = model(x, t, lab)
        v2 = model(x, t, torch.tensor([[0, 1, 1], [2, 3, 0]]))
    assert v.shape == x.shape and torch.isfinite(v).all()
    assert torch.equal(v[0], v2[0]) and not torch.equal(v[1], v2[1])  # sample 1's label matters
    with pytest.raises(FgsimError, match="labels must be"):
        model(x, t, torch.zeros(2, 2, dtype=torch.int64))


def test_training_steps_reduce_loss_on_a_fixed_batch():
    m = build_model(seed=1).train()
    codec = LatentCodec.from_config()
    x0, lab = ClipDataset(seed=0).batch(range(4), GRID, codec)
    g = torch.Generator().manual_seed(0)
    t = torch.sigmoid(torch.randn(4, generator=g))
    eps = torch.randn(x0.shape, generator=g)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = flow_loss(m, x0, lab, None, 0.0, t, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0], losses


def test_flow_sigmas():
    s = flow_sigmas(50, 3.0)
    assert len(s) == 51 and s[0] == 1.0 and s[-1] == 0.0
    assert all(a > b for a, b in zip(s, s[1:], strict=False))
    assert flow_sigmas(4, 1.0) == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(FgsimError):
        flow_sigmas(0)


def test_sampler_two_passes_per_step(model):
    calls = []
    branches = []

    def pre(module, args, kwargs):
        calls.append(kwargs["timestep"][0].item())

    handle = model.transformer.register_forward_pre_hook(pre, with_kwargs=True)
    orig = model.transformer.cache_context

    def spy(name, **kw):
        branches.append((name, kw.get("step_index")))
        return orig(name, **kw)

    model.transformer.cache_context = spy
    try:
        out = sample(model, [[0, 1, 1], [3, 2, 0]], GRID, steps=2, guidance_scale=5.0)
    finally:
        handle.remove()
        del model.transformer.cache_context
    assert out.shape == (2, LATENT_CHANNELS, *GRID) and out.dtype == torch.float32
    assert len(calls) == 4  # 2 steps × (cond, uncond)
    assert branches == [("cond", 0), ("uncond", 0), ("cond", 1), ("uncond", 1)]
    assert calls[0] == calls[1] == 1000.0 and calls[2] == calls[3] < 1000.0
    calls.clear()
    handle = model.transformer.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        sample(model, [[0, 1, 1]], GRID, steps=2, guidance_scale=1.0)
    finally:
        handle.remove()
    assert len(calls) == 2  # no guidance: one pass per step


def test_sampler_is_deterministic_by_seed(model):
    a = sample(model, [[1, 2, 1]], GRID, steps=2, seed=3)
    b = sample(model, [[1, 2, 1]], GRID, steps=2, seed=3)
    c = sample(model, [[1, 2, 1]], GRID, steps=2, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_attention_switch(model):
    dense = sample(model, [[0, 1, 1]], GRID, steps=2)
    hooked = sample(model, [[0, 1, 1]], GRID, steps=2, attention=sdpa_attention)
    assert torch.allclose(dense, hooked, atol=1e-5, rtol=0)
    seen = []

    def zero(q, k, v, ctx):
        seen.append((ctx.layer, ctx.step, ctx.branch, ctx.pass_index, ctx.grid, tuple(q.shape)))
        return torch.zeros_like(q)

    before = dict(model.transformer.attn_processors)
    zeroed = sample(model, [[0, 1, 1]], GRID, steps=2, attention=zero)
    assert not torch.allclose(dense, zeroed)
    layers = model.config["transformer"]["num_layers"]
    heads = model.config["transformer"]["num_attention_heads"]
    hd = model.config["transformer"]["attention_head_dim"]
    assert len(seen) == 4 * layers  # self-attention only, every layer of every pass
    assert seen[0] == (0, 0, "cond", 0, (2, 4, 4), (1, 32, heads, hd))
    assert seen[-1][:4] == (layers - 1, 1, "uncond", 3)
    assert dict(model.transformer.attn_processors) == before  # restored
    with pytest.raises(FgsimError, match="attention must be"):
        with self_attention(model.transformer, "sparse"):
            pass


def test_capture_sample_writes_a_trace_and_changes_nothing(model, tmp_path):
    pytest.importorskip("fgsim.capture.predictors")
    from fgsim.capture.predictors import make_predictor
    from fgsim.trace import open_trace

    res, lat = capture_sample(model, [[0, 1, 1]], GRID, tmp_path / "t.fgt", make_predictor("exact", block_m=16),
                              steps=2)
    assert torch.equal(lat, sample(model, [[0, 1, 1]], GRID, steps=2, bf16=False))
    assert res.passes == 4
    with open_trace(tmp_path / "t.fgt") as tr:
        assert tr.meta.grid == (2, 4, 4) and tr.meta.num_heads == 4 and tr.meta.head_dim == 64
        assert tr.meta.model == "fgsim-reference-dit"
        assert len(tr.entries()) == 4 * model.config["transformer"]["num_layers"]


def test_psnr():
    a = torch.zeros(2, 3, 4)
    assert psnr(a, a) == math.inf
    assert psnr(a, torch.full_like(a, 0.1)) == pytest.approx(20.0)
    with pytest.raises(FgsimError):
        psnr(a, torch.zeros(3))


def test_load_missing_weights_says_how_to_train(tmp_path):
    with pytest.raises(FgsimError) as err:
        ref.load(tmp_path / "none.safetensors")
    msg = str(err.value)
    assert "not found" in msg and "validation/train_reference.py" in msg and "docs/reference_dit.md" in msg


def test_save_load_round_trip(model, tmp_path):
    path = save_weights(model, tmp_path / "w.safetensors", info={"note": "test"})
    assert path.stat().st_size < 16 * 2**20  # fits a device call's 16 MiB per returned file
    loaded = ref.load(path)
    assert read_metadata(path)["info"] == {"note": "test"}
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v.to(torch.bfloat16).float(), v2)
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(FgsimError, match="not a readable"):
        ref.load(tmp_path / "bad.safetensors")


def test_train_end_to_end_tiny(tmp_path):
    cfg = TrainConfig(out=tmp_path, minutes=2.0, stages=(Stage.parse("1:2x8x8:2"),), max_steps=4, log_every=2,
                      eval_every=2, eval_clips=2, warmup_steps=2, plot=True)
    summary = train(cfg)
    assert summary["steps"] == 4 and summary["clips_seen"] == 8
    for name in ("weights.safetensors", "loss.csv", "loss.png", "train.json"):
        assert (tmp_path / name).is_file()
    rows = list(csv.DictReader(open(tmp_path / "loss.csv", encoding="utf-8")))
    assert rows[0]["step"] == "0" and rows[0]["eval_loss"]
    assert [r["step"] for r in rows if r["train_loss"]] == ["2", "4"]
    assert json.loads((tmp_path / "train.json").read_text())["parameters"]["total"] == 8_122_688
    from fgsim.reference.data import load_config

    assert ref.load(tmp_path / "weights.safetensors").config == load_config()
    with pytest.raises(FgsimError, match="bad stage"):
        Stage.parse("1:2x8:2")
    with pytest.raises(FgsimError, match="add up to 1"):
        train(TrainConfig(out=tmp_path, stages=(Stage.parse("0.5:2x8x8:2"),)))


def test_x0_prediction_gives_the_velocity():
    from fgsim.reference.data import load_config

    m = build_model(dict(load_config(), prediction="x0"), seed=0).eval()
    g = torch.Generator().manual_seed(5)
    x0, eps = torch.randn((2, LATENT_CHANNELS, *GRID), generator=g), torch.randn((2, LATENT_CHANNELS, *GRID), generator=g)
    t = torch.tensor([0.3, 0.8])
    xt = (1 - t.view(-1, 1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1, 1) * eps
    assert torch.allclose(m.to_velocity(xt, x0, t), eps - x0, atol=1e-5)
    assert torch.equal(build_model(seed=0).to_velocity(xt, x0, t), x0)  # "v": the output is the velocity
    out = sample(m, [[0, 1, 1]], GRID, steps=2)
    assert out.shape == (1, LATENT_CHANNELS, *GRID) and torch.isfinite(out).all()
