"""CLI audit (session 16, helper A): bad input files and arguments found by walking the README and docs as a new
user; each fails with one line naming the file or argument, exit 2, before any work, in bounded time and memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fgsim.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALL = str(REPO / "traces" / "refdit-8x16x28-exact.fgt")  # 3,584 tokens, 36 entries: predicts in about a second


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def _edited(tmp_path: Path, bundled: str, name: str, **changes: object) -> Path:
    """A copy of the bundled data file ``bundled`` (under fgsim/data) with ``changes``, as tmp_path/name.json."""
    d = json.loads((REPO / "fgsim" / "data" / bundled).read_text())
    d.update(changes)
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(d))
    return p


def _gpu_file(tmp_path: Path, name: str, **changes: object) -> Path:
    return _edited(tmp_path, "gpus/h200.json", name, **changes)


def _model_file(tmp_path: Path, name: str, **changes: object) -> Path:
    return _edited(tmp_path, "models/wan2.1-1.3b.json", name, **changes)


def _device(tmp_path: Path, name: str) -> str:
    p = tmp_path / name
    p.symlink_to("/dev/zero")  # a path that reads forever: must be refused, not read
    return str(p)


def test_gpu_description_files_are_bounded(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    nan = tmp_path / "nan.json"
    nan.write_text(_gpu_file(tmp_path, "x").read_text().replace('"hbm_bandwidth_gbs": 4800', '"hbm_bandwidth_gbs": NaN'))
    cases = [(_device(tmp_path, "zero.json"), "zero.json: is not a regular file (a device, pipe or socket)"),
             (str(deep), "deep.json: not valid JSON for a GPU description (nested too deeply)"),
             (str(nan), "nan.json: not valid JSON for a GPU description (NaN is not a number JSON allows)"),
             (str(_gpu_file(tmp_path, "huge", sm_count=10**9)), "field 'sm_count' must be in [1, 4096], got 1e+09"),
             (str(_gpu_file(tmp_path, "clk", boost_clock_mhz=1e-300)),  # 10^300-second predictions before
              "field 'boost_clock_mhz' must be in [100, 10000], got 1e-300"),
             (str(_gpu_file(tmp_path, "tf", tensor_flop_per_clk_per_sm={"bf16": 1e300})),
              "field 'tensor_flop_per_clk_per_sm.bf16' must be at most 1e6, got 1e+300")]
    for path, message in cases:
        assert main(["predict", "--gpu", path]) == 2
        err = _err(capsys)
        assert message in err and err.startswith("fgsim predict: error: argument --gpu: "), err


def test_calibration_and_measured_files_are_checked_before_work(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("{\"a\": " * 50_000 + "1" + "}" * 50_000)
    assert main(["predict", SMALL, "--calibration", _device(tmp_path, "z.json")]) == 2
    assert "--calibration: " in (e := _err(capsys)) and "is not a regular file" in e
    assert main(["predict", SMALL, "--calibration", str(deep)]) == 2
    assert "deep.json: not valid JSON for a calibration (nested too deeply)" in _err(capsys)
    for value in ("abc", "nan", "-1", ""):
        csv = tmp_path / "m.csv"
        csv.write_text(f"model,resolution,mode,pass_s\nwan2.1-1.3b,480p,cudnn,{value}\n")
        assert main(["predict", "--model", "wan2.1-1.3b", "--measured", str(csv), "--plot",
                     str(tmp_path / "p.png")]) == 2
        assert f"m.csv: line 2: pass_s must be a positive number of seconds, got {value!r}" in _err(capsys)
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("changes, message", [
    ({"layers": 10**7}, "field 'layers' must be in 1..256, got 10000000"),
    ({"steps": 10**9}, "field 'steps' must be in 1..1,000, got 1000000000"),
    ({"heads": 0}, "field 'heads' must be in 1..256, got 0"),
    ({"passes_per_step": 0}, "field 'passes_per_step' must be in 1..8, got 0"),
    ({"resolutions": {"480p": [10**6, 10**6, 10**6]}}, "resolution '480p': the grid must be 3 positive extents"),
    ({"resolutions": {"480p": [21, 30]}}, "resolution '480p': the grid must be 3 positive extents"),
    ({"layers": 256, "steps": 1000, "heads": 256, "diffusers": {}}, "query blocks per generation to price"),
    ({"layers": 4}, "field 'layers' is 4 but its diffusers config's num_layers (+ num_single_layers) is 30"),
    ({"ffn": 100}, "field 'ffn' is 100 but its diffusers config's ffn_dim is 8960"),
])
def test_model_files_are_bounded(tmp_path, capsys, changes, message):
    path = _model_file(tmp_path, "m", **changes)
    assert main(["predict", "--model", str(path)]) == 2
    err = _err(capsys)
    assert err.startswith(f"fgsim predict: error: {path}: ") and message in err, err


def test_model_file_not_json(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["predict", "--model", str(deep)]) == 2
    assert "deep.json: not valid JSON for a model file (nested too deeply)" in _err(capsys)
    assert main(["predict", "--model", _device(tmp_path, "zero.json")]) == 2
    assert "zero.json: is not a regular file" in _err(capsys)


def test_validate_checks_out_dir_and_csvs_before_scoring(tmp_path, capsys):
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    cases = [(["--out-dir", "/proc/fgsim-x"], "--out-dir: /proc/fgsim-x cannot be created"),
             (["--out-dir", str(tmp_path / "no" / "such")], "neither it nor its parent directory"),
             (["--out-dir", str(junk)], f"--out-dir: {junk} is not a directory"),
             (["--dev", str(junk), "--out-dir", str(tmp_path)],
              "--dev: " + str(junk) + ": not a results CSV of `fgsim validate --measure` / `calibrate` (missing "
              "columns kind, case_id, kernel, measured_ms)"),
             (["--test", str(tmp_path), "--out-dir", str(tmp_path)], "is a directory, not a results CSV")]
    for args, message in cases:
        assert main(["validate", *args]) == 2
        assert message in _err(capsys)
    assert not (tmp_path / "REPORT.md").exists()


def test_synth_and_sweep_arguments(tmp_path, capsys):
    out = str(tmp_path / "s.fgt")
    cases = [(["synth", out, "--seed", "-1"], "argument --seed: must be ≥ 0, got -1"),
             (["synth", out, "--grid", "2", "4", "4", "--branches", "cond,cond"], "--branches: expected"),
             (["synth", out, "--grid", "2", "4", "4", "--text-position", "before"],
              "--text-position before with --text-tokens 0: 'none' exactly when there are no text tokens"),
             (["synth", out, "--grid", "2", "4", "4", "--text-tokens", "3", "--text-position", "none"],
              "--text-position none with --text-tokens 3"),
             (["synth", out, "--grid", "2", "4", "4", "--steps", "0,0"], "--steps: steps must be unique and in [0, 50)"),
             (["sweep", "--block-m", "64,64"], "argument --block-m: '64' is listed twice in '64,64'"),
             (["sweep", "--density", "0.5,0.50"], "'0.50' is listed twice")]
    for args, message in cases:
        assert main(args) == 2
        assert message in _err(capsys)
    assert not os.path.exists(out)


def test_help_has_no_rst_quotes(capsys):
    for cmd in ("predict", "sweep", "calibrate", "validate"):
        assert main([cmd, "--help"]) == 0
        out = capsys.readouterr().out
        assert f"fgsim {cmd}:" in out and "``" not in out, cmd


def test_predict_notes_and_columns(capsys):
    # the H200's own entries are not "borrowed" (their provenance text mentions a tl fallback kernel); H100's are
    assert main(["predict", SMALL, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "borrowed" not in out
    lines = out.splitlines()
    head = next(x for x in lines if x.startswith("kernel "))
    rows = [x for x in lines if x.split(" ", 1)[0] in ("fg", "block", "dense")]
    assert any(" g128 " in r and len(r.split(" ms")[0].rsplit(" ", 2)[0]) > 30 for r in rows)
    col = head.index("per call") + len("per call")  # right edge of the column: every row's time ends there
    assert all(r[col - 2:col] in ("ms", "us") for r in rows), (head, rows)
    assert main(["predict", SMALL, "--gpu", "h100", "--no-progress"]) == 0
    assert "no h100 launch-table entry, configuration borrowed" in capsys.readouterr().out


def test_predict_model_says_which_clock_prices_the_kernels(capsys):
    assert main(["predict", SMALL, "--model", "fgsim-reference-dit", "--resolution", "small", "--gpu",
                 "h100,h200", "--no-progress"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "kernels are priced at the clock it sustains through a generation (h100 1980 MHz, h200 1710 MHz)" in out
    assert "kernels priced at 1710 MHz, the generation's sustained clock (without --model: 1980 MHz)" in out


def test_broken_pipe_is_quiet():
    p = subprocess.Popen([sys.executable, "-m", "fgsim", "inspect", SMALL], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=REPO)
    p.stdout.close()  # like `fgsim inspect | head -0`
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and "Traceback" not in err, err


def test_capture_arguments_checked_before_loading(tmp_path, capsys):
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "model_index.json").write_text("{}")  # diffusers raised KeyError('_class_name') with a traceback
    base = ["capture", "--model", str(pipe), "--out", str(tmp_path / "a.fgt"), "--device", "cpu"]
    cases = [(["--height", "470"], "--height must be a multiple of 16"),
             (["--gamma", "5"], "--gamma is a cosine similarity in [-1, 1], got 5.0"),
             (["--guidance", "nan"], "--guidance must be a number ≥ 0, got nan"),
             (["--group", "0"], "argument --group: must be ≥ 1, got 0"),
             (["--device", "foo"], "--device 'foo' is not a torch device"),
             ([], f"{pipe}: model_index.json names no pipeline class ('_class_name')")]
    for extra, message in cases:
        assert main([*base[:-2], *(extra if extra[:1] == ["--device"] else base[-2:] + extra)]) == 2
        assert message in _err(capsys)
    assert not (tmp_path / "a.fgt").exists()


def test_validate_without_torch_refuses_before_scoring(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    csv = tmp_path / "r.csv"
    csv.write_text("kind,case_id,split,structure,kernel,measured_ms\nkernel,d-1,dev,wanwin,fg,1.0\n")
    assert main(["validate", "--dev", str(csv), "--out-dir", str(tmp_path)]) == 2
    assert f"{csv}: rows of structure wanwin regenerate their masks with fgattn (torch)" in _err(capsys)
    assert not (tmp_path / "REPORT.md").exists()


def test_outputs_are_all_or_nothing(tmp_path, capsys):
    from fgsim.errors import FgsimError
    from fgsim.fileio import PendingWrites

    (tmp_path / "b.png").mkdir()
    pending = PendingWrites()
    pending.add(tmp_path / "a.csv", "x\n")
    pending.add(tmp_path / "b.png", b"png")
    with pytest.raises(FgsimError, match=r"b\.png: cannot write \(Is a directory\)"):
        pending.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]  # a.csv not written, no .partial left
    # predict --model --plot P.png also writes P-e2e.png: both checked before any work
    (tmp_path / "q-e2e.png").mkdir()
    assert main(["predict", "--model", "wan2.1-1.3b", "--plot", str(tmp_path / "q.png")]) == 2
    assert f"--plot: {tmp_path / 'q-e2e.png'} is a directory" in _err(capsys)
    assert not (tmp_path / "q.png").exists()


def test_user_data_directories_are_bounded(tmp_path, capsys, monkeypatch):
    cal, gpus = tmp_path / "cal", tmp_path / "gpus"
    cal.mkdir(), gpus.mkdir()
    (cal / "h100.json").write_text("[" * 100_000 + "]" * 100_000)  # RecursionError traceback before
    (cal / "b200.json").symlink_to("/dev/zero")  # read until memory ran out before
    (gpus / "x9.json").write_text("[" * 100_000 + "]" * 100_000)
    monkeypatch.setenv("FGSIM_CALIBRATION_PATH", str(cal))
    monkeypatch.setenv("FGSIM_GPU_PATH", str(gpus))
    for gpu, message in (("h100", "h100.json: not valid JSON for a calibration (nested too deeply)"),
                         ("b200", "b200.json: is not a regular file (a device, pipe or socket), not a calibration"),
                         ("x9", "x9.json: not valid JSON for a GPU description (nested too deeply)")):
        assert main(["predict", SMALL, "--gpu", gpu]) == 2
        assert message in _err(capsys)


def test_what_if_that_does_not_fit_names_the_option(capsys):
    assert main(["predict", SMALL, "--num-stages", "8", "--block-n", "256"]) == 2
    err = _err(capsys)
    assert err.startswith("fgsim predict: error: --num-stages 8 --block-n 256: ") and "shared memory" in err, err
    assert SMALL not in err  # the trace is fine: the error is the what-if's


def test_validate_announces_long_scoring(tmp_path, capsys):
    from fgsim.commands.validate import _announce

    csv = tmp_path / "r.csv"
    csv.write_text("kind,case_id,kernel,measured_ms\n" + "kernel,d-1,fg,1.0\n" * 100)
    _announce([str(csv)])
    err = capsys.readouterr().err.strip()
    assert err.startswith("fgsim validate: scoring 100 measured rows of 1 results CSV with") and " s on 2 cores" in err


@pytest.mark.parametrize("field, value, message", [
    ("n_tokens", "99999999999", "n_tokens must be in 1..1,048,576, got 99,999,999,999"),  # a 745 GiB allocation before
    ("heads", "0", "heads must be in 1..256, got 0"),
    ("block_m", "7", "block_m must be 16, 32, 64 or 128, got 7"),  # scored, exit 0 before
    ("measured_ms", "nan", "measured_ms must be a positive number of milliseconds, got 'nan'"),
    ("measured_ms", "-1", "measured_ms must be a positive number of milliseconds, got '-1'"),
])
def test_validate_rows_are_checked_before_scoring(tmp_path, capsys, field, value, message):
    import csv as csvmod

    src = REPO / "validation" / "results" / "h200-2026-11-30-costmodel-dev.csv"
    with open(src, newline="") as fh:
        rows = list(csvmod.DictReader(fh))[:2]
    rows[1][field] = value
    bad = tmp_path / "r.csv"
    with open(bad, "w", newline="") as fh:
        w = csvmod.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["validate", "--dev", str(bad), "--out-dir", str(tmp_path)]) == 2
    assert f"--dev: {bad}: line 3 (case {rows[1]['case_id']!r}): {message}" in _err(capsys)
    assert not (tmp_path / "REPORT.md").exists()


def test_sweep_announces_long_work(capsys, monkeypatch):
    import fgsim.sweep

    monkeypatch.setattr(fgsim.sweep, "sweep", lambda *a, **k: [])  # the notice, not the 90 s of work
    assert main(["sweep", "--gpus", "h200", "--block-m", "64", "--gran-n", "1", "--density", "1.0",
                 "--n-tokens", "1048576", "--heads", "256", "--layers", "64"]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if "compiling the scheduler" not in x]
    assert err[0] == "fgsim sweep: 1 point of 64 x 256 x 1,048,576-token calls: about 2 min ...", err
    assert main(["sweep", "--gpus", "h200", "--density", "0.5"]) == 2  # seconds of work: no notice
    err = [x for x in capsys.readouterr().err.splitlines() if "compiling the scheduler" not in x]
    assert len(err) == 1 and "produced no rows" in err[0], err


@pytest.mark.parametrize("change, message", [
    ({"class": "Foo"}, "cannot build the model file's diffusers entry (class 'Foo': module diffusers has no "
                       "attribute Foo)"),  # AttributeError traceback before
    ({"config_extra": 1}, "cannot build the model file's diffusers entry (class 'WanTransformer3DModel': "),  # TypeError
])
def test_model_file_with_a_bad_diffusers_entry(tmp_path, capsys, monkeypatch, change, message):
    pytest.importorskip("diffusers")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    d = json.loads((REPO / "fgsim" / "data" / "models" / "wan2.1-1.3b.json").read_text())
    d["name"] = "mine"
    if "class" in change:
        d["diffusers"]["class"] = change["class"]
    else:
        d["diffusers"]["config"]["bogus"] = 1
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(d))
    assert main(["predict", "--model", str(path), "--no-progress"]) == 0  # the FLOP/byte estimate, saying why
    out = " ".join(capsys.readouterr().out.split())
    assert "method: FLOP/byte estimate (model mine: diffusers " in out and message in out, out


def test_validate_without_the_repository_results_says_so(tmp_path, capsys, monkeypatch):
    import fgsim.validation.report as report

    monkeypatch.setattr(report, "SUMMARY_PATH", tmp_path / "validation" / "costmodel_summary.json")  # a wheel
    monkeypatch.setattr(report, "RESCORED_PATH", tmp_path / "validation" / "costmodel_summary_rescored.json")
    assert main(["validate", "--out-dir", str(tmp_path)]) == 2
    assert "rescores the repository's committed results (validation/results/), which this install lacks" in \
        _err(capsys)


def test_resolution_that_contradicts_the_trace_is_refused(capsys):
    for res in ("480p", "1080p"):  # silently replaced by the trace's own 'small' before
        assert main(["predict", SMALL, "--model", "fgsim-reference-dit", "--resolution", res]) == 2
        assert (f"--resolution {res}: the trace has N=3584 tokens, fgsim-reference-dit's resolution 'small'"
                in _err(capsys))


def test_measured_gpu_properties_are_range_checked(tmp_path, capsys, monkeypatch):
    cal = json.loads((REPO / "fgsim" / "data" / "calibrations" / "h200.json").read_text())
    cal["gpu_properties"]["l2_port_bytes_per_clk"]["value"] = 1e-300  # 10^300-second predictions before
    (tmp_path / "h200.json").write_text(json.dumps(cal))
    monkeypatch.setenv("FGSIM_CALIBRATION_PATH", str(tmp_path))
    assert main(["predict", SMALL]) == 2
    assert "h200.json: gpu_properties: field 'l2_port_bytes_per_clk' must be in [0.1, 100000], got 1e-300" in \
        _err(capsys)
