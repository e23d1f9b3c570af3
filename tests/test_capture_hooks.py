"""Hooks and capture on tiny random-weight diffusers transformers (CPU): tags, grids, traces, bitwise outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from fgsim.capture.hooks import AttentionCapture, Schedule, key_padding_mask, parse_layers  # noqa: E402
from fgsim.capture.predictors import STAT_NAMES, ExactThreshold, PooledTopCDF  # noqa: E402
from fgsim.capture.run import capture_transformer, resolve_model  # noqa: E402
from fgsim.errors import FgsimError  # noqa: E402
from fgsim.trace import open_trace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def tiny_wan():
    torch.manual_seed(0)
    model = diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32).eval()
    g = torch.Generator().manual_seed(1)
    x, e = torch.randn(1, 4, 2, 16, 16, generator=g), torch.randn(1, 12, 16, generator=g)
    ne = torch.randn(1, 12, 16, generator=g)

    def inputs():  # 3 steps × (cond, uncond), like WanPipeline
        for step, t in enumerate((900, 500, 100)):
            for branch, enc in (("cond", e), ("uncond", ne)):
                yield {"hidden_states": x, "timestep": torch.tensor([t]), "encoder_hidden_states": enc,
                       "return_dict": False, "_branch": branch, "_step": step}

    return model, inputs


def tiny_hunyuan(valid_text=9):
    torch.manual_seed(0)
    model = diffusers.HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type=None).eval()
    g = torch.Generator().manual_seed(2)
    kw = {"hidden_states": torch.randn(1, 4, 1, 16, 16, generator=g),
          "encoder_hidden_states": torch.randn(1, 12, 16, generator=g),
          "pooled_projections": torch.randn(1, 8, generator=g),
          "encoder_attention_mask": torch.tensor([[1] * valid_text + [0] * (12 - valid_text)]),
          "guidance": torch.tensor([3000.0]), "return_dict": False}

    def inputs():  # no cache_context: steps from timestep changes
        for t in (900, 100):
            yield dict(kw, timestep=torch.tensor([t]))

    return model, inputs


def tiny_cogvideox():
    torch.manual_seed(0)
    model = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=8, num_layers=2, sample_width=8, sample_height=8, sample_frames=8, patch_size=2,
        patch_size_t=None, temporal_compression_ratio=4, max_text_seq_length=8).eval()
    g = torch.Generator().manual_seed(3)
    kw = {"hidden_states": torch.randn(2, 1, 4, 8, 8, generator=g),
          "encoder_hidden_states": torch.randn(2, 8, 8, generator=g), "return_dict": False}

    def inputs():  # batched CFG: one pass per step holding [uncond, cond]
        for step, t in enumerate((900, 500)):
            yield dict(kw, timestep=torch.tensor([t, t]), _branch="cond_uncond", _step=step)

    return model, inputs


def run_plain(model, inputs):
    outs = []
    with torch.no_grad():
        for kw in inputs():
            kw = {k: v for k, v in kw.items() if not k.startswith("_")}
            outs.append(model(**kw)[0])
    return outs


@pytest.mark.parametrize("factory, grid, text, position, passes, layers", [
    (tiny_wan, (2, 8, 8), 0, "none", [(0, 0, "cond"), (1, 0, "uncond"), (2, 1, "cond"), (3, 1, "uncond"),
                                      (4, 2, "cond"), (5, 2, "uncond")], 2),
    (tiny_hunyuan, (1, 16, 16), 12, "after", [(0, 0, "cond"), (1, 1, "cond")], 2),
    (tiny_cogvideox, (1, 4, 4), 8, "before", [(0, 0, "cond"), (1, 1, "cond")], 2),
])
def test_tiny_models_produce_valid_traces(tmp_path, factory, grid, text, position, passes, layers):
    model, inputs = factory()
    ref = run_plain(model, inputs)
    pred = ExactThreshold(block_m=16, backend="torch")
    res = capture_transformer(model, inputs, tmp_path / "t.fgt", pred, keep_outputs=True)
    for a, b in zip(ref, res.outputs, strict=True):  # capture never changes the output, bit for bit
        assert torch.equal(a, b)
    with open_trace(res.path) as tr:
        tr.verify()
        m = tr.meta
        assert (m.grid, m.text_tokens, m.text_position) == (grid, text, position)
        assert [(p.index, p.step, p.branch) for p in m.passes] == passes
        assert m.num_layers == layers and m.layers == tuple(range(layers))
        assert m.provenance["kind"] == "captured" and m.predictor["name"] == "exact"
        assert m.stat_names == STAT_NAMES and m.block_m == 16
        assert len(tr.entries()) == len(passes) * layers
        for p, la in tr.entries():
            s = tr.stats(p, la)
            assert ((s["recall_mean"] > 0.5) & (s["recall_mean"] <= 1 + 1e-5)).all()
            assert ((s["kept_fraction"] > 0) & (s["kept_fraction"] <= 1)).all()
            assert tr.mask(p, la).any(axis=2).all()  # τ = 0.5 keeps every row's argmax


def test_trace_masks_equal_predictor_on_hooked_qk(tmp_path):
    """The stored mask is the predictor applied to the very q, k the attention received."""
    model, inputs = tiny_hunyuan(valid_text=7)
    pred = ExactThreshold(block_m=32, backend="torch")
    seen = {}

    def on_call(c):
        seen[(c.pass_index, c.layer)] = (pred(c.q, c.k, c.key_mask, c.scale)[0].numpy(), c.key_mask)

    with AttentionCapture(model, on_call), torch.no_grad():
        for kw in inputs():
            model(**kw)
    res = capture_transformer(model, inputs, tmp_path / "h.fgt", pred, stats=False)
    with open_trace(res.path) as tr:
        assert set(tr.entries()) == set(seen)
        for key, (mask, km) in seen.items():
            np.testing.assert_array_equal(tr.mask(*key), mask)
            assert km is not None and int(km.sum()) == 256 + 7  # video + valid text keys
            assert not tr.mask(*key)[:, :, 256 + 7:].any()  # padded text keys never kept


def test_schedule_layers_and_batch_element(tmp_path):
    model, inputs = tiny_wan()
    res = capture_transformer(model, inputs, tmp_path / "w.fgt", PooledTopCDF(block_m=16, group=8),
                              schedule=Schedule.parse("0,3,5"), layers=[1], stats=False)
    with open_trace(res.path) as tr:
        assert [p.index for p in tr.meta.passes] == [0, 3, 5]
        assert tr.entries() == [(0, 1), (3, 1), (5, 1)]
        assert tr.meta.provenance["schedule"] == "0,3,5"
        assert len(tr.meta.provenance["pass_log"]) == 6
    model, inputs = tiny_cogvideox()
    got = []
    with AttentionCapture(model, lambda c: got.append((c.branch, c.q.shape[0])), batch_element=0), \
            torch.no_grad():
        for kw in inputs():
            with model.cache_context("cond_uncond", step_index=kw.pop("_step")):
                kw.pop("_branch")
                model(**kw)
    assert got == [("uncond", 1)] * 4


def test_capture_restores_everything():
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry as reg

    model, inputs = tiny_wan()
    before = dict(reg._backends)
    hooks_before = [len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules()]
    with pytest.raises(RuntimeError, match="boom"), AttentionCapture(model, lambda c: None):
        raise RuntimeError("boom")
    assert reg._backends == before
    with AttentionCapture(model, lambda c: None), torch.no_grad():
        kw = {k: v for k, v in next(iter(inputs())).items() if not k.startswith("_")}
        model(**kw)
    assert reg._backends == before
    assert [len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules()] == hooks_before
    registry = diffusers.hooks.HookRegistry.check_if_exists_or_initialize(model)
    assert not registry.hooks


def test_cross_attention_tags_and_no_cross_models():
    model, inputs = tiny_wan()
    shapes = []
    with AttentionCapture(model, lambda c: shapes.append(tuple(c.k.shape)), cross=True), torch.no_grad():
        kw = {k: v for k, v in next(iter(inputs())).items() if not k.startswith("_")}
        model(**kw)
    assert shapes == [(1, 2, 12, 12)] * 2  # 12 text keys
    hy, _ = tiny_hunyuan()
    with pytest.raises(FgsimError, match="no cross-attention"):
        AttentionCapture(hy, lambda c: None, cross=True)


def test_cross_attention_trace(tmp_path):
    """Wan's attn2 (128 video queries × 12 text keys) is written as a valid version-2 cross-attention trace."""
    import json
    import zipfile

    from fgsim.summary import format_summary, summarize

    model, inputs = tiny_wan()
    ref = run_plain(model, inputs)
    pred = ExactThreshold(block_m=16, backend="torch")
    seen = {}

    def on_call(c):
        seen[(c.pass_index, c.layer)] = pred(c.q, c.k, c.key_mask, c.scale)[0].numpy()

    with AttentionCapture(model, on_call, cross=True), torch.no_grad():
        for kw in inputs():
            kw = {k: v for k, v in kw.items() if not k.startswith("_")}
            model(**kw)
    res = capture_transformer(model, inputs, tmp_path / "x.fgt", pred, cross=True, keep_outputs=True,
                              schedule=Schedule.parse("0,1,4"))
    for a, b in zip(ref, res.outputs, strict=True):
        assert torch.equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.fgt"]  # no spool left behind
    with zipfile.ZipFile(res.path) as z:
        assert json.loads(z.read("fgt.json"))["version"] == 2
    with open_trace(res.path) as tr:
        tr.verify()
        m = tr.meta
        assert (m.attention, m.kv_tokens, m.grid, m.text_tokens) == ("cross", 12, (2, 8, 8), 0)
        assert (tr.n_tokens, tr.n_keys, tr.n_qblocks) == (128, 12, 8)
        assert m.provenance["attention"] == "cross" and m.stat_names == STAT_NAMES
        assert m.layers == (0, 1) and [p.index for p in m.passes] == [0, 1, 4]
        assert m.provenance["layer_modules"] == ["blocks.0.attn2", "blocks.1.attn2"]
        assert tr.entries() == [(p, la) for p in (0, 1, 4) for la in (0, 1)]
        for key in tr.entries():
            mask = tr.mask(*key)
            assert mask.shape == (2, 8, 12)
            np.testing.assert_array_equal(mask, seen[key])  # the predictor on the very q, k attention received
            assert mask.any(axis=2).all()
            s = tr.stats(*key)
            assert ((s["recall_mean"] > 0.5) & (s["recall_mean"] <= 1 + 1e-5)).all()
        assert 0.0 < tr.density() <= 1.0
        text = format_summary(summarize(tr))
    assert "cross-attention: 128 queries × 12 keys" in text


def test_generic_sdpa_hook_on_plain_module():
    import torch.nn.functional as F

    from fgsim.capture.hooks import generic_spec

    class Attn(torch.nn.Module):
        def forward(self, x):
            q = x.unflatten(-1, (2, 4)).transpose(1, 2)
            return F.scaled_dot_product_attention(q, q * 2, q).transpose(1, 2).flatten(2)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Module() for _ in range(3)])
            for b in self.blocks:
                b.attn = Attn()

        def forward(self, x, timestep=None):
            for b in self.blocks:
                x = x + b.attn(x)
            return (x,)

    net = Net()
    x = torch.randn(1, 10, 8)
    ref = net(x)[0]
    got = []
    with AttentionCapture(net, lambda c: got.append((c.layer, tuple(c.q.shape))), spec=generic_spec()):
        out = net(x, timestep=torch.tensor([1]))[0]
    assert torch.equal(out, ref)
    assert got == [(0, (1, 2, 10, 4)), (1, (1, 2, 10, 4)), (2, (1, 2, 10, 4))]


def test_key_padding_mask_forms():
    b, s = 2, 6
    m = torch.ones(b, 1, 1, s, dtype=torch.bool)
    assert key_padding_mask(m, b, s, s) is None
    m[1, 0, 0, 4:] = False
    np.testing.assert_array_equal(key_padding_mask(m, b, s, s).numpy(), m[:, 0, 0].numpy())
    add = torch.zeros(b, 1, 1, s).masked_fill(~m, float("-inf"))
    np.testing.assert_array_equal(key_padding_mask(add, b, s, s).numpy(), m[:, 0, 0].numpy())
    causal = torch.ones(s, s, dtype=torch.bool).tril()[None, None].expand(b, 1, s, s)
    with pytest.raises(FgsimError, match="not key padding"):
        key_padding_mask(causal, b, s, s)
    with pytest.raises(FgsimError, match="finite non-zero"):
        key_padding_mask(torch.full((b, s), 0.5), b, s, s)


@pytest.mark.parametrize("text, msg", [("every:0", "every:K"), ("a,b", "bad schedule"), ("-1", "≥ 0")])
def test_schedule_errors(text, msg):
    with pytest.raises(FgsimError, match=msg):
        Schedule.parse(text)


def test_schedule_and_layers_parse():
    assert 45 in Schedule.parse("0,15,30,45,60,80") and 46 not in Schedule.parse("0,15,30,45,60,80")
    assert [i for i in range(12) if i in Schedule.parse("every:5")] == [0, 5, 10]
    assert parse_layers("0,5,10-12") == (0, 5, 10, 11, 12) and parse_layers("all") is None
    with pytest.raises(FgsimError, match="--layers"):
        parse_layers("x")
    model, _ = tiny_wan()
    with pytest.raises(FgsimError, match="out of range"):
        AttentionCapture(model, lambda c: None, layers=[5])


def test_missing_model_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FgsimError, match=r"not in the local Hugging Face cache .*hub"):
        resolve_model("Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    with pytest.raises(FgsimError, match="no model_index.json"):
        resolve_model(str(tmp_path))


def _cli(*args, env_extra=None):
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "fgsim", "capture", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_cli_errors(tmp_path):
    r = _cli("--model", "nobody/no-such-model", "--out", str(tmp_path / "a.fgt"), "--device", "cpu",
             env_extra={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not in the local Hugging Face cache" in lines[0] and str(tmp_path / "hub") in lines[0]
    r = _cli("--model", "x/y", "--out", str(tmp_path / "a.txt"))
    assert r.returncode == 2 and "--out must end in .fgt" in r.stderr
    r = _cli("--model", "x/y", "--out", str(tmp_path / "a.fgt"), "--schedule", "every:x")
    assert r.returncode == 2 and "bad schedule" in r.stderr
    r = _cli("--model", "x/y", "--out", str(tmp_path / "missing" / "a.fgt"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_import_fgsim_does_not_import_torch():
    code = "import sys, fgsim, fgsim.capture, fgsim.commands.capture; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
