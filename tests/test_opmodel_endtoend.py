"""Operator model (meta tracing, eager queue, compile fusion) and the end-to-end generation model (CPU)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from fgsim.endtoend import GenerationOptions, ModelConfig, e2e_lines, parse_recompute, predict_generation  # noqa: E402
from fgsim.errors import FgsimError  # noqa: E402
from fgsim.opmodel import Op, OpCalibration, model_ops, pass_time  # noqa: E402

TINY = {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 64, "in_channels": 4,
        "out_channels": 4, "text_dim": 32, "freq_dim": 256, "ffn_dim": 64, "num_layers": 2, "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 64}


def tiny_model() -> ModelConfig:
    return ModelConfig(name="tiny", layers=2, hidden=128, heads=2, head_dim=64, ffn=64, text_tokens_cross=8,
                       text_tokens_self=0, text_position="none", passes_per_step=2, steps=4,
                       resolutions={"480p": (2, 8, 8)}, sources={},
                       diffusers={"class": "WanTransformer3DModel", "config": TINY})


def cal(**kw) -> OpCalibration:
    d = dict(gpu="h200", gemm_s={}, gemm_eff=[(1e6, 1e12), (1e12, 5e14)], bandwidth=dict.fromkeys(
        ("copy", "pointwise", "reduction", "strided"), 1e12), host_s=1e-5, host_view_s=1e-5, gap_s=1e-6,
        l2_bytes=0.0, attention={"points": [(1e3, 1e12), (1e10, 1e12)]},
        predictor={"exact_scores_per_s": 1e12, "exact_fixed_s": 0.0, "pooled_scores_per_s": 1e13,
                   "pooled_fixed_s": 0.0, "index_bw": 1e12})
    d.update(kw)
    return OpCalibration(**d)


def test_meta_trace_categories():
    ops = model_ops(tiny_model(), "480p")
    att = [o for o in ops if o.kind == "attention"]
    assert [o.cat for o in att] == ["attention", "cross_attention"] * 2
    assert att[0].sdpa == (1, 2, 128, 128, 64) and att[1].sdpa == (1, 2, 128, 8, 64)
    cats = {o.cat for o in ops if o.kind != "view"}
    assert {"gemm", "norm", "rope", "modulation", "elementwise"} <= cats
    # torch.nn.RMSNorm is one fused reduction (as CUDA runs it), 4 per layer (q, k of attn1 and attn2)
    assert sum(o.name == "_fused_rms_norm" for o in ops) == 8
    gemms = [o for o in ops if o.kind == "gemm" and o.cat == "gemm"]
    assert all(o.flops == 2.0 * o.gemm[1] * o.gemm[2] * o.gemm[3] for o in gemms)


def test_queue_host_and_gpu_bound():
    big = Op("add", "modulation", "mem", bytes=1e9, mem_class="pointwise")  # 1 ms on the GPU
    tiny = Op("add", "other", "mem", bytes=1.0, mem_class="pointwise")
    c = cal()
    # GPU-bound: 3 ms of kernels + gaps; host (30 us) hidden
    assert pass_time([big] * 3, c).total_s == pytest.approx(1e-5 + 3e-3 + 2e-6, rel=1e-6)
    # host-bound: 100 tiny ops cost 100 x host time
    assert pass_time([tiny] * 100, c).total_s == pytest.approx(100 * 1e-5, rel=1e-3)
    # compile fuses a chain reading x and writing y (intermediates stay on chip): 2 GB -> fewer bytes
    a = Op("mul", "modulation", "mem", bytes=2e9, mem_class="pointwise", reads=((1, 1e9),), writes=((2, 1e9),))
    b = Op("add", "modulation", "mem", bytes=2e9, mem_class="pointwise", reads=((2, 1e9),), writes=((3, 1e9),))
    g = Op("mm", "gemm", "gemm", flops=1e12, gemm=(1, 1, 1, 1, "bf16", False), reads=((3, 1e9),), writes=((4, 1),))
    eager, comp = pass_time([a, b, g], c), pass_time([a, b, g], c, compiled=True)
    assert comp.total_s < eager.total_s
    assert comp.by_cat["modulation"] == pytest.approx(2e-3 + 6e-6, rel=1e-3)  # read x + write y at 1 TB/s


def test_generation_schedule(tmp_path):
    p = tmp_path / "ops.json"
    p.write_text(json.dumps(cal().to_json()))
    model = tiny_model()

    class KP:
        mean_call_s = 1e-3

    class RP:
        kernels = {"fg": KP(), "dense": KP()}

        def full_run_s(self, k):
            return {"fg": 0.8, "dense": 1.6}[k]

    class Info:
        n_tokens = 128

    class Gpu:
        name = "h200"
        boost_clock_mhz = 1980.0
        sustained_clock_mhz = 1755.0

    out = predict_generation(model, Info(), RP(), Gpu(), GenerationOptions(
        baseline="fgattn", warmup_steps=1, recompute=(2,), op_calibration=str(p)))
    # the clock the kernels were priced at is the GPU's (cycles -> seconds), and the printed estimate says so
    assert out["sm_clock_mhz"] == 1755.0
    assert any("kernels priced at 1755 MHz" in line for line in e2e_lines(out, lambda s: f"{s:.3f} s"))
    passes = 8
    non = out["per_pass"]["non_attention_s"]
    base_pass = 1.6 / passes
    assert out["baseline"]["generation_s"] == pytest.approx(passes * (non + base_pass))
    fg = out["kernels"]["fg"]
    # warm-up step (2 passes) at the baseline, 6 passes at fg; masks predicted at steps 1 and 2 x 2 passes x 2 layers
    assert fg["attention_s"] == pytest.approx(2 * base_pass + 6 * 0.8 / passes)
    assert out["mask_prediction"]["recompute_passes"] == 4
    assert fg["generation_s"] == pytest.approx(passes * non + fg["attention_s"] + out["mask_prediction"]["total_s"])
    assert out["options"]["recompute"] == [1, 2]
    assert parse_recompute("3,1") == (1, 3)
    with pytest.raises(FgsimError, match="recompute"):
        parse_recompute("a,b")
    with pytest.raises(FgsimError, match="baseline"):
        GenerationOptions(baseline="flash")


def test_joint_attention_models_traced():
    # HunyuanVideo (dual- + single-stream blocks, a text-token refiner) and CogVideoX (text before video) from tiny
    # configs: every self-attention call sees video + text tokens; the refiner's attention is text attention
    hy = ModelConfig(name="tiny-hy", layers=3, hidden=128, heads=2, head_dim=64, ffn=512, text_tokens_cross=0,
                     text_tokens_self=8, text_position="after", passes_per_step=1, steps=2,
                     resolutions={"480p": (2, 4, 8)}, sources={},
                     diffusers={"class": "HunyuanVideoTransformer3DModel", "config": {
                         "in_channels": 4, "out_channels": 4, "num_attention_heads": 2, "attention_head_dim": 64,
                         "num_layers": 1, "num_single_layers": 2, "num_refiner_layers": 1, "text_embed_dim": 32,
                         "pooled_projection_dim": 16, "rope_axes_dim": [16, 24, 24]}})
    att = [o for o in model_ops(hy, "480p") if o.kind == "attention"]
    assert [o.sdpa for o in att if o.cat == "attention"] == [(1, 2, 64 + 8, 64 + 8, 64)] * 3
    assert [o.sdpa for o in att if o.cat == "cross_attention"] == [(1, 2, 8, 8, 64)]
    cog = ModelConfig(name="tiny-cog", layers=2, hidden=128, heads=2, head_dim=64, ffn=512, text_tokens_cross=0,
                      text_tokens_self=8, text_position="before", passes_per_step=2, steps=2,
                      resolutions={"480p": (2, 4, 8)}, sources={},
                      diffusers={"class": "CogVideoXTransformer3DModel", "config": {
                          "num_attention_heads": 2, "attention_head_dim": 64, "in_channels": 4, "out_channels": 4,
                          "time_embed_dim": 32, "text_embed_dim": 32, "num_layers": 2, "sample_width": 16,
                          "sample_height": 8, "sample_frames": 5, "max_text_seq_length": 8,
                          "use_rotary_positional_embeddings": True}})
    ops = model_ops(cog, "480p")
    assert [o.sdpa for o in ops if o.kind == "attention"] == [(1, 2, 72, 72, 64)] * 2
    assert sum(o.kind == "gemm" for o in ops) > 0 and any(o.cat == "rope" and o.kind == "mem" for o in ops)


def test_published_joint_models_have_diffusers_configs():
    from fgsim.endtoend import load_model

    for name, calls in (("hunyuanvideo", 60), ("cogvideox-5b", 42)):
        m = load_model(name)
        assert m.diffusers["class"].endswith("Transformer3DModel")
        cfg = m.diffusers["config"]
        assert cfg["num_attention_heads"] == m.heads and cfg["attention_head_dim"] == m.head_dim
        assert cfg["num_layers"] + cfg.get("num_single_layers", 0) == calls == m.layers
    ref = json.loads((__import__("pathlib").Path(__file__).resolve().parents[1] / "fgsim" / "data" / "models" /
                      "fgsim-reference-dit.json").read_text())
    assert "measured_non_attention" not in ref  # predicted from the model file, never from its own runs


def test_reference_sampler_ops_scale_with_steps():
    from fgsim.opmodel import reference_sampler_ops

    grid = (2, 8, 8)
    one, two = reference_sampler_ops(1, grid), reference_sampler_ops(2, grid)
    att = [o for o in one if o.kind == "attention" and o.cat == "attention"]
    assert len(att) == 2 * 6  # cond + uncond pass, 6 layers
    samp = [o for o in one if o.cat == "sampler" and o.kind == "mem"]
    # the sampler's latent arithmetic: bf16 casts, CFG combination, Euler update, on (1, 768, 2, 8, 8) fp32
    assert samp and max(o.bytes for o in samp) >= 3 * 768 * 128 * 4
    c = cal()
    t1, t2 = pass_time(one, c).total_s, pass_time(two, c).total_s
    assert 0 < t2 - t1 < t1  # a second step costs one step, without the run's set-up


def test_pooled_predictor_stages_and_sdpa_scaling():
    from fgsim.opmodel import predictor_time, sdpa_time

    st = {"size": {"n": 24576, "heads": 8, "head_dim": 128, "group": 16, "block_m": 64}, "fixed_s": 1e-4,
          "pool_bw": 1e12, "group_rate": 1e12, "expand_bw": 1e12}
    c = cal(predictor={"exact_scores_per_s": 1e12, "exact_fixed_s": 0.0, "pooled_scores_per_s": 1e13,
                       "pooled_fixed_s": 0.0, "index_bw": 1e12, "pooled_stages": st})
    n = 32768
    t = predictor_time(c, "pooled", 4, n, 128)["predict"]
    expect = 1e-4 + 4 * 4 * n * 128 / 1e12 + 4 * (n / 16) ** 2 / 1e12 + 4 * (n / 64) * n / 1e12
    assert t == pytest.approx(expect, rel=1e-9)
    # cuDNN: an exact shape at another head count scales with the heads; D = 64 takes the exact shapes' rate ratio
    c = cal(attention={"points": [(1e3, 6e14), (1e10, 6e14)],
                       "shapes": {"12,32760,32760,128": 0.012, "12,32760,32760,64": 0.008}})
    assert sdpa_time(c, (1, 4, 32760, 32760, 128)) == pytest.approx(0.004)
    r64 = (4 * 12 * 32760.0 ** 2 * 64 / 0.008) / (4 * 12 * 32760.0 ** 2 * 128 / 0.012)
    f = 4.0 * 8 * 16384 ** 2 * 64
    assert sdpa_time(c, (1, 8, 16384, 16384, 64)) == pytest.approx(f / (6e14 * r64), rel=1e-6)


def test_index_build_streams_the_mask_twice_plus_entries():
    from fgsim.opmodel import predictor_time

    size = {"n": 16384, "heads": 4, "head_dim": 128, "block_m": 64, "kept": 0.5}
    cal_mask = 4 * 256 * 16384.0
    c = cal(bandwidth=dict.fromkeys(("copy", "pointwise", "reduction", "strided"), 2e12),
            predictor={"exact_scores_per_s": 1e12, "exact_fixed_s": 0.0, "index_bw": 1e9, "calibration_size": size,
                       "measured_s": {"index": 1e-4 + 4.0 * cal_mask / 2e12}})
    mask = 12 * 512 * 32768.0
    for kept in (0.3, 1.0):
        t = predictor_time(c, "exact", 12, 32768, 128, kept=kept)["index"]
        assert t == pytest.approx(1e-4 + (2 + 4 * kept) * mask / 2e12, rel=1e-9)


def test_model_ops_cache(tmp_path, monkeypatch):
    """The traced operator list is cached per (model file content, resolution, source, torch/diffusers versions):
    `predict --model wan2.1-14b --resolution 720p` spent ~5 of its ~8 s importing diffusers and tracing."""
    import fgsim.opmodel as om

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FGSIM_NO_CACHE", raising=False)
    first = model_ops(tiny_model(), "480p")
    assert len(list((tmp_path / "fgsim" / "ops").glob("*.json"))) == 1
    built = []
    real = om.build_transformer
    monkeypatch.setattr(om, "build_transformer", lambda *a, **k: built.append(1) or real(*a, **k))
    assert model_ops(tiny_model(), "480p") == first and not built  # from the cache, equal in every field
    assert any(o.spec is not None for o in first) and any(isinstance(o.gemm, tuple) for o in first)
    other = tiny_model()
    other.diffusers["config"] = {**TINY, "num_layers": 1}
    assert len([o for o in model_ops(other, "480p") if o.kind == "attention"]) == 2 and built  # a new key
    (tmp_path / "fgsim" / "ops").joinpath(om._ops_cache_path(tiny_model(), "480p").name).write_bytes(b"junk")
    again = model_ops(tiny_model(), "480p")  # an unreadable entry is traced again (new buffer ids)
    assert [(o.name, o.cat, o.kind, o.bytes, o.flops, o.gemm, o.sdpa) for o in again] == \
        [(o.name, o.cat, o.kind, o.bytes, o.flops, o.gemm, o.sdpa) for o in first]
    monkeypatch.setenv("FGSIM_NO_CACHE", "1")
    assert om._ops_cache_path(tiny_model(), "480p") is None
