"""FG-Attn in a diffusers transformer through fgsim.integrations (tiny Wan config, CPU, Triton interpreter)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from fgsim.errors import FgsimError  # noqa: E402
from fgsim.integrations.diffusers import (  # noqa: E402
    FgSchedule,
    density_mask_fn,
    disable_fgattn,
    enable_fgattn,
    quality,
    sparse_attention_fn,
)


@pytest.fixture(scope="module")
def tiny():
    seed = 1234
    print(f"seed {seed}")
    torch.manual_seed(seed)
    m = diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=64, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32).eval()
    g = torch.Generator().manual_seed(seed)
    x, e = torch.randn(1, 4, 2, 16, 16, generator=g), torch.randn(1, 12, 16, generator=g)

    def run(steps=(900, 500, 100)):
        outs = []
        with torch.no_grad():
            for t in steps:  # like WanPipeline: cond, then uncond
                for enc in (e, -e):
                    outs.append(m(hidden_states=x, timestep=torch.tensor([t]), encoder_hidden_states=enc,
                                  return_dict=False)[0])
        return outs

    return m, run


def test_dense_schedule_is_bitwise_and_restores(tiny):
    m, run = tiny
    ref = run()
    procs = [type(b.attn1.processor) for b in m.blocks]
    state = enable_fgattn(m, backend="fg", warmup_steps=3)  # every step is a warm-up step: original processor
    out = run()
    assert all(torch.equal(a, b) for a, b in zip(ref, out, strict=True))
    assert state.summary()["calls"] == 0
    state = enable_fgattn(m, backend="fg", skip_layers=(0, 1))  # every layer opted out
    assert all(torch.equal(a, b) for a, b in zip(ref, run(), strict=True))
    disable_fgattn(m)
    assert [type(b.attn1.processor) for b in m.blocks] == procs
    assert all(torch.equal(a, b) for a, b in zip(ref, run(), strict=True))


@pytest.mark.parametrize("generic", [False, True])
def test_schedule_warmup_recompute_reuse(tiny, generic):
    m, run = tiny
    ref = run()
    # a full mask makes FG-Attn compute dense attention: outputs match to float32 rounding
    state = enable_fgattn(m, backend="fg", warmup_steps=1, recompute=(2,), mask_fn=density_mask_fn(1.0),
                          generic=generic)
    out = run()
    disable_fgattn(m)
    for a, b in zip(ref, out, strict=True):
        assert float((a - b).abs().max()) < 1e-4
    log = state.log
    assert {x[1] for x in log} == {1, 2}  # step 0 was a warm-up step (original processor, not logged)
    predicted = {(x[1], x[2], x[3]) for x in log if x[6]}
    # step 1: first sparse step predicts per (layer, branch); step 2: recompute step predicts again
    assert predicted == {(s, br, lay) for s in (1, 2) for br in ("cond", "uncond") for lay in (0, 1)}
    # a sparser mask changes the output; cross-attention stays untouched (2 self-attention layers logged)
    state = enable_fgattn(m, backend="fg", recompute=(0,), mask_fn=density_mask_fn(0.3), generic=generic)
    out = run()
    disable_fgattn(m)
    assert float((out[0] - ref[0]).abs().max()) > 1e-3
    q0, q1 = quality(ref[0], ref[0]), quality(ref[0], out[0])
    assert q0["psnr_db"] == float("inf") and q0["ssim"] == pytest.approx(1.0)
    assert 0 < q1["psnr_db"] < 200 and q1["ssim"] < 1.0
    assert sum(x[6] for x in state.log) == 4 and len(state.log) == 12  # predicted at step 0, reused at 1, 2


def test_plain_callable_and_errors():
    g = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(1, 96, 2, 64, generator=g) for _ in range(3))
    fn = sparse_attention_fn(backend="block", recompute=None, mask_fn=density_mask_fn(1.0))
    out = fn(q, k, v, {"layer": 3, "step": 0}, False, None)
    ref = torch.nn.functional.scaled_dot_product_attention(*(x.transpose(1, 2).double() for x in (q, k, v)))
    assert float((out.double() - ref.transpose(1, 2)).abs().max()) < 1e-4
    assert fn.state.log[0][3] == 3
    with pytest.raises(FgsimError, match="is_causal"):
        fn(q, k, v, None, True, None)
    with pytest.raises(FgsimError, match="backend"):
        FgSchedule(backend="nope")
    with pytest.raises(FgsimError, match="dense_backend"):
        FgSchedule(dense_backend="fg")


def test_cogvideox_joint_text_through_the_sdpa_route():
    """CogVideoX calls SDPA itself on [text; video] tokens: the generic wrapper routes its self-attention."""
    torch.manual_seed(3)
    m = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=64, in_channels=4, out_channels=4, num_layers=2, sample_width=16,
        sample_height=16, sample_frames=9, patch_size=2, text_embed_dim=16, time_embed_dim=32,
        max_text_seq_length=8).eval()
    g = torch.Generator().manual_seed(3)
    x, e = torch.randn(1, 3, 4, 16, 16, generator=g), torch.randn(1, 8, 16, generator=g)

    def run():
        with torch.no_grad():
            return m(hidden_states=x, encoder_hidden_states=e, timestep=torch.tensor([500]), return_dict=False)[0]

    ref = run()
    state = enable_fgattn(m, backend="fg", recompute=None, mask_fn=density_mask_fn(1.0))
    out = run()
    disable_fgattn(m)
    assert float((out - ref).abs().max()) < 1e-4
    assert [x[3] for x in state.log] == [0, 1] and all(x[4] == "fg" for x in state.log)
    enable_fgattn(m, backend="fg", warmup_steps=1)
    assert torch.equal(run(), ref)
    disable_fgattn(m)


def test_key_padding_mask_is_never_attended():
    """HunyuanVideo-style padded text keys: the predicted mask never keeps them, so FG-Attn equals masked SDPA."""
    g = torch.Generator().manual_seed(11)
    q, k, v = (torch.randn(1, 128, 2, 64, generator=g) for _ in range(3))
    km = torch.ones(1, 128, dtype=torch.bool)
    km[:, 100:] = False
    fn = sparse_attention_fn(backend="fg", recompute=None, threshold=1e-9, dense_backend="sdpa")
    out = fn(q, k, v, {"key_mask": km}, False, None)
    ref = torch.nn.functional.scaled_dot_product_attention(
        *(x.transpose(1, 2).double() for x in (q, k, v)), attn_mask=km[:, None, None, :]).transpose(1, 2)
    assert float((out.double() - ref).abs().max()) < 1e-4
    assert fn.state.log[0][5] == pytest.approx(100 / 128)  # kept fraction: exactly the attendable keys
