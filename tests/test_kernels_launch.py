"""Launch-table tests (pure Python: fgattn.launch must not import torch or triton)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels")]

from fgattn import launch  # noqa: E402
from fgattn.launch import LaunchConfig, gpu_key, launch_config  # noqa: E402

TABLE = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"


def test_import_is_dependency_free() -> None:
    code = (
        "import sys; sys.path.insert(0, 'kernels'); import fgattn.launch, fgattn; "
        "fgattn.launch.launch_config('fg', 'h200', 128, 128); "
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("kernel", launch.KERNELS)
@pytest.mark.parametrize("head_dim", launch.HEAD_DIMS)
@pytest.mark.parametrize("block_m", launch.BLOCK_MS)
def test_every_key_has_an_entry_matching_the_file(kernel: str, head_dim: int, block_m: int) -> None:
    entries = json.loads(TABLE.read_text())["entries"]
    grans = launch.GRAN_NS if kernel == "fg" else (None,)
    for g in grans:
        cfg = launch_config(kernel, "h200", head_dim, block_m, g or 1)
        want_g = {"fg": g, "block": block_m, "dense": 1}[kernel]
        (e,) = [x for x in entries if (x["kernel"], x["gpu"], x["head_dim"], x["block_m"], x["gran_n"])
                == (kernel, "h200", head_dim, block_m, want_g)]
        assert (cfg.block_n, cfg.num_warps, cfg.num_stages) == (e["block_n"], e["num_warps"], e["num_stages"])
        assert cfg.gran_n == want_g and cfg.block_m == block_m and cfg.head_dim == head_dim
        assert cfg.extra == e["extra"] and cfg.source == e["source"]
        # launchable shapes: tiles hold whole key runs / divide the block; power-of-two sizes
        assert cfg.block_n in (16, 32, 64, 128) and cfg.num_warps in (4, 8) and cfg.num_stages >= 2
        if kernel == "fg":
            assert cfg.block_n % cfg.gran_n == 0 and cfg.option("idx_ahead", 0) in (0, 1)
        if kernel == "block":
            assert block_m % cfg.block_n == 0


def test_same_architecture_fallback_says_so() -> None:
    cfg = launch_config("fg", "h100", 128, 128, 1)
    ref = launch_config("fg", "h200", 128, 128, 1)
    assert cfg.gpu == "h100"
    assert (cfg.block_n, cfg.num_stages, cfg.num_warps, cfg.extra) == (ref.block_n, ref.num_stages, ref.num_warps, ref.extra)
    assert "fallback" in cfg.source and "h200" in cfg.source
    assert "fallback" not in ref.source


def test_dtype_and_forced_granularity() -> None:
    assert launch_config("block", "h200", 64, 64, gran_n=16).gran_n == 64
    assert launch_config("dense", "h200", 64, 128, gran_n=64).gran_n == 1
    cfg = launch_config("fg", "h200", 64, 64, 16, dtype="fp32")
    assert cfg.dtype == "fp32" and "fp32" in cfg.source
    assert launch_config("fg", "h200", 64, 64, 16, dtype="fp16").dtype == "fp16"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        (dict(kernel="sparse"), "kernel"),
        (dict(gpu="h300"), "gpu"),
        (dict(gpu="a100"), "gpu"),  # known GPU, no entry of its architecture
        (dict(head_dim=96), "head_dim"),
        (dict(block_m=32), "block_m"),
        (dict(gran_n=8), "gran_n"),
        (dict(dtype="fp8"), "dtype"),
    ],
)
def test_errors_name_the_argument(kwargs: dict, word: str) -> None:
    args = dict(kernel="fg", gpu="h200", head_dim=128, block_m=128, gran_n=1, dtype="bf16") | kwargs
    with pytest.raises(ValueError, match=word):
        launch_config(**args)


def test_gpu_key_and_frozen() -> None:
    assert gpu_key("NVIDIA H200") == "h200"
    assert gpu_key("NVIDIA H100 80GB HBM3") == "h100"
    with pytest.raises(ValueError, match="gpu"):
        gpu_key("Tesla T4")
    cfg = launch_config("dense", "h200", 128, 128)
    assert isinstance(cfg, LaunchConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.block_n = 16  # type: ignore[misc]


def test_alternative_table(tmp_path: Path) -> None:
    data = {"entries": [dict(kernel="dense", gpu="b200", head_dim=64, block_m=64, gran_n=1, block_n=32,
                             num_warps=4, num_stages=2, layout="bnhd", extra={}, source="test")]}
    p = tmp_path / "t.json"
    p.write_text(json.dumps(data))
    cfg = launch_config("dense", "b200", 64, 64, table_path=str(p))
    assert (cfg.block_n, cfg.layout, cfg.source) == (32, "bnhd", "test")
    with pytest.raises(ValueError, match="gpu"):
        launch_config("dense", "h200", 64, 64, table_path=str(p))


def test_table_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FGATTN_LAUNCH_TABLE replaces the packaged table for the kernels and fgsim's cost model alike."""
    from fgsim.launchcfg import launch_config as model_config

    data = {"entries": [dict(kernel="dense", gpu="h200", head_dim=64, block_m=64, gran_n=1, block_n=32,
                             num_warps=4, num_stages=2, layout="bhnd", extra={"tail_branch": True}, source="env")]}
    p = tmp_path / "env.json"
    p.write_text(json.dumps(data))
    packaged = launch_config("dense", "h200", 64, 64)
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(p))
    cfg = launch_config("dense", "h200", 64, 64)
    assert (cfg.block_n, cfg.num_stages, cfg.source) == (32, 2, "env")
    assert (cfg.block_n, cfg.num_stages) != (packaged.block_n, packaged.num_stages) or packaged.source != "env"
    mc = model_config("dense", "h200", 64, 64)
    assert (mc.block_n, mc.num_stages, mc.extra.get("tail_branch")) == (32, 2, True)
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="FGATTN_LAUNCH_TABLE: .*missing.json: no such file"):
        launch_config("dense", "h200", 64, 64)
    monkeypatch.delenv("FGATTN_LAUNCH_TABLE")
    assert launch_config("dense", "h200", 64, 64) == packaged
