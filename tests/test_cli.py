"""The command line: main paths print results, bad input prints one line and exits 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fgsim.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fgsim", *args], capture_output=True, text=True, timeout=300)


def test_inspect_default_trace_table_json_plot(tmp_path, capsys):
    assert main(["inspect"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-wan2.1-1.3b" in out and "density" in out and "slices vs blocks" in out
    png = tmp_path / "d.png"
    assert main(["inspect", "--json", "--plot", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tokens"] == 32760 and data["provenance"] == "synthetic"
    assert set(data["density"]) >= {"64x1", "64x64", "128x128"}
    assert png.stat().st_size > 10_000


def test_synth_then_inspect_verify(tmp_path, capsys):
    out = tmp_path / "s.fgt"
    assert main(["synth", str(out), "--grid", "3", "4", "5", "--num-layers", "2", "--num-heads", "2",
                 "--steps", "0,20", "--branches", "cond", "--text-tokens", "7", "--block-m", "16"]) == 0
    assert main(["inspect", str(out), "--verify"]) == 0
    assert "every mask and every stored count agree" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["inspect", "/nonexistent/x.fgt"], "/nonexistent/x.fgt: no such file"),
    (["inspect", "--plot", "/nonexistent/dir/p.png"], "--plot: directory of /nonexistent/dir/p.png does not exist"),
    (["synth", "/nonexistent/dir/x.fgt"], "out: directory of /nonexistent/dir/x.fgt does not exist"),
    (["synth", "OUT", "--grid", "0", "1", "1"], "--grid: every extent must be ≥ 1"),
    (["synth", "OUT", "--steps", "a,b"], "--steps: expected comma-separated integers"),
    (["synth", "OUT", "--steps", "70"], "--steps: steps must be unique and in [0, 50)"),
    (["synth", "OUT", "--layers", "40"], "layers must be unique and in [0, 30)"),
    (["synth", "OUT", "--branches", "maybe"], "--branches: expected 'cond' or 'cond,uncond'"),
    (["synth", "OUT", "--sink-fraction", "2"], "--sink-fraction: must be in [0, 1]"),
])
def test_error_paths_print_one_line_and_exit_2(tmp_path, args, message):
    args = [str(tmp_path / "o.fgt") if a == "OUT" else a for a in args]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "o.fgt").exists()


def test_corrupt_trace_on_the_cli(tmp_path):
    bad = tmp_path / "bad.fgt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    proc = run_cli("inspect", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"fgsim inspect: error: {bad}: not a readable .fgt file (truncated, corrupt or not a ZIP archive)"


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "inspect" in capsys.readouterr().out


def test_cross_attention_trace_inspect_and_predict(tmp_path, capsys):
    import numpy as np
    from conftest import make_meta, random_mask

    from fgsim.trace import write_trace

    meta = make_meta(grid=(2, 4, 5), text_tokens=0, text_position="none", attention="cross", kv_tokens=13)
    rng = np.random.default_rng(0)
    path = write_trace(tmp_path / "x.fgt", meta,
                       {(p.index, la): random_mask(meta, rng) for p in meta.passes for la in meta.layers})
    assert main(["inspect", str(path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "cross-attention: 40 queries × 13 keys" in out and "(of 13)" in out
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["attention"], data["tokens"], data["key_tokens"]) == ("cross", 40, 13)
    proc = run_cli("predict", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "cross-attention traces are not supported by the cost model yet" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
