"""Operator model (meta tracing, eager queue, compile fusion) and the end-to-end generation model (CPU)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from fgsim.endtoend import GenerationOptions, ModelConfig, parse_recompute, predict_generation  # noqa: E402
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

    out = predict_generation(model, Info(), RP(), Gpu(), GenerationOptions(
        baseline="fgattn", warmup_steps=1, recompute=(2,), op_calibration=str(p)))
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
