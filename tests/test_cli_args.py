"""Issue 15 findings on arguments and output paths, each reproduced: bad input is one error line (plus a hint
for argparse errors) and exit 2, before any work; outputs are written only when the whole command succeeds."""

from __future__ import annotations

import sys

import pytest

from fgsim.cli import main


def _err_lines(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    cap = capsys.readouterr()
    return cap.out, cap.err.strip().splitlines()


@pytest.mark.parametrize("args, message", [
    (["predict", "--block-n", "0"], "argument --block-n: must be a power of two in 16..256, got 0"),
    (["predict", "--block-n", "-64"], "argument --block-n: must be a power of two"),
    (["predict", "--block-n", "48"], "argument --block-n: must be a power of two"),
    (["predict", "--num-stages", "0"], "argument --num-stages: must be in 1..8"),
    (["predict", "--density", "0"], "argument --density: must be in (0, 1]"),
    (["predict", "--density", "nan"], "argument --density: must be in (0, 1]"),
    (["predict", "--gpu", "h100,h100"], "named twice"),
    (["predict", "--gpu", "h100,tpu"], "unknown GPU 'tpu'"),
    (["sweep", "--n-tokens", "0"], "argument --n-tokens: must be in 1..1048576"),
    (["sweep", "--heads", "0"], "argument --heads: must be in 1..256"),
    (["sweep", "--block-m", "7"], "argument --block-m: '7' is not allowed (choose from 64, 128)"),
    (["sweep", "--gran-n", "3"], "argument --gran-n: '3' is not allowed (choose from 1, 16, 64)"),
    (["sweep", "--density", "0.5,1.5"], "argument --density: bad list item '1.5'"),
    (["sweep", "--density", ","], "argument --density: expected a comma-separated list"),
    (["sweep", "--num-stages", "9"], "argument --num-stages: bad list item '9'"),
    (["synth", "o.fgt", "--num-heads", "0"], "argument --num-heads: must be in 1..256, got 0"),
    (["predict", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["nosuchcommand"], "argument COMMAND: invalid choice"),
])
def test_argparse_errors_are_one_line_and_a_hint(capsys, args, message):
    assert main(args) == 2
    out, err = _err_lines(capsys)
    assert out == ""
    assert len(err) == 2, err
    assert message in err[0]
    assert err[1].startswith("hint: '") and "--help" in err[1]


@pytest.mark.parametrize("cmd", [["predict"], ["sweep", "--gpus", "h200", "--density", "0.5"], ["inspect"]])
@pytest.mark.parametrize("bad, message", [
    ("MISSING/p.png", "directory of"),
    ("/proc/p.png", "is not writable"),
    ("DIR.png", "is a directory"),
    ("p.pdfx", "must end in .png"),
])
def test_bad_plot_path_fails_before_any_work(tmp_path, capsys, cmd, bad, message):
    (tmp_path / "DIR.png").mkdir()
    path = bad.replace("MISSING", str(tmp_path / "missing")).replace("DIR.png", str(tmp_path / "DIR.png"))
    if bad == "p.pdfx":
        path = str(tmp_path / bad)
    assert main([*cmd, "--plot", path]) == 2
    out, err = _err_lines(capsys)
    assert out == ""  # nothing printed: no work was done
    assert len(err) == 1 and f"--plot: {path}" in err[0] or "directory of" in err[0]
    assert message in err[0]


def test_sweep_csv_is_not_left_behind_when_plot_is_bad(tmp_path, capsys):
    csv_path = tmp_path / "a.csv"
    assert main(["sweep", "--gpus", "h200", "--density", "0.5", "--csv", str(csv_path), "--plot", "bad"]) == 2
    assert not csv_path.exists()
    assert main(["sweep", "--gpus", "h200", "--density", "0.5", "--csv", str(tmp_path / "a.txt")]) == 2
    assert "--csv" in capsys.readouterr().err


def test_sweep_writes_csv_and_plot_only_at_the_end(tmp_path, capsys):
    csv_path, png = tmp_path / "a.csv", tmp_path / "a.png"
    assert main(["sweep", "--gpus", "h200,l40s", "--density", "0.3", "--block-m", "128", "--gran-n", "1",
                 "--csv", str(csv_path), "--plot", str(png)]) == 0
    assert csv_path.read_text().startswith("gpu,n_tokens,heads,head_dim,block_m,gran_n")
    assert png.stat().st_size > 10_000
    assert not list(tmp_path.glob(".*partial"))


def test_inspect_plot_without_matplotlib_refuses_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png = tmp_path / "p.png"
    assert main(["inspect", "--plot", str(png)]) == 2
    out, err = _err_lines(capsys)
    assert out == "" and err == ["fgsim inspect: error: --plot needs matplotlib (pip install matplotlib)"]
    assert not png.exists()


def test_synth_huge_grid_refuses_with_a_size_estimate(tmp_path, capsys):
    out = tmp_path / "big.fgt"
    assert main(["synth", str(out), "--grid", "1000", "1000", "1000"]) == 2
    _, err = _err_lines(capsys)
    assert len(err) == 1 and "--grid: N = 1,000,000,000 tokens needs" in err[0] and "PB" in err[0]
    assert not out.exists()


def test_synth_announces_size_and_time_of_long_runs(tmp_path, capsys):
    # the default options (300 entries) announce themselves before starting; stop them at the first entry
    import fgsim.commands.synth as synth_cmd

    def stop(*a, **k):
        raise KeyboardInterrupt

    orig = synth_cmd.synth_trace
    synth_cmd.synth_trace = stop
    try:
        assert main(["synth", str(tmp_path / "d.fgt")]) == 130
    finally:
        synth_cmd.synth_trace = orig
    err = capsys.readouterr().err
    assert "300 entries of 201.3 MB of mask each: about" in err and "min" in err
    assert not (tmp_path / "d.fgt").exists()


def test_synth_help_states_what_the_defaults_cost(capsys):
    assert main(["synth", "--help"]) == 0
    assert "300 entries, about 80 MB" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("args", [["calibrate", "--cases", "tiny"], ["validate", "--measure", "--cases", "calib"]])
def test_gpu_commands_refuse_up_front_without_cuda(tmp_path, capsys, monkeypatch, args):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.chdir(tmp_path)
    assert main([*args, *(["--out", str(tmp_path / "c.json")] if args[0] == "calibrate" else
                          ["--out-dir", str(tmp_path)])]) == 2
    _, err = _err_lines(capsys)
    assert len(err) == 1 and "times kernels on a CUDA GPU and none is visible" in err[0]
    assert list(tmp_path.rglob("*")) == []  # no CSV, no calibration


def test_cpu_interpreter_measurements_never_become_a_gpu_calibration(tmp_path, capsys):
    from fgsim.validate import CSV_FIELDS

    rows = tmp_path / "m.csv"
    rows.write_text(",".join(CSV_FIELDS) + "\n")
    row = dict.fromkeys(CSV_FIELDS, "1")
    row.update(gpu_name="cpu (TRITON_INTERPRET)", gpu_key="h200", case_id="c1", split="calib", kernel="fg")
    rows.write_text(",".join(CSV_FIELDS) + "\n" + ",".join(row[f] for f in CSV_FIELDS) + "\n")
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--from-csv", str(rows), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "CPU interpreter" in err and not out.exists()


def test_calibrate_checks_its_output_paths_first(tmp_path, capsys):
    assert main(["calibrate", "--from-csv", str(tmp_path / "none.csv"), "--out", str(tmp_path / "c.txt")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["calibrate", "--from-csv", str(tmp_path / "none.csv")]) == 2
    assert "none.csv: no such file" in capsys.readouterr().err


def test_committed_csv_trace_paths_resolve_against_the_repo(tmp_path, monkeypatch):
    from pathlib import Path

    from fgsim.validate import case_from_row

    monkeypatch.chdir(tmp_path)
    row = {"case_id": "t", "split": "scored", "structure": "trace", "n_tokens": "1", "heads": "1",
           "head_dim": "64", "block_m": "64", "density": "1", "seed": "0", "kernel": "fg",
           "trace": "fgsim/data/default.fgt"}
    assert Path(case_from_row(row).trace).is_file()


def test_predict_error_on_bad_counts_names_the_file(tmp_path, capsys, monkeypatch):
    import numpy as np

    from fgsim.trace import Trace, default_trace_path

    monkeypatch.setattr(Trace, "counts", lambda self, p, layer, m=None, n=1: np.zeros((2, 3), np.int32))
    # no numba cache: the scheduler's compile notice would print if the check came after it (a fresh clone)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "no-numba-cache"))
    assert main(["predict", str(default_trace_path()), "--no-progress", "--kernel", "fg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(default_trace_path()) in err[0] and "have shape (2, 3)" in err[0]


def test_capture_on_cuda_refuses_up_front_without_a_gpu(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["capture", "--model", "x/y", "--out", str(tmp_path / "a.fgt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda: no CUDA GPU is visible" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_inspect_verify_announces_itself(tmp_path, capsys):
    out = tmp_path / "s.fgt"
    assert main(["synth", str(out), "--grid", "2", "3", "4", "--num-layers", "1", "--num-heads", "1",
                 "--steps", "20", "--branches", "cond", "--block-m", "16"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--verify"]) == 0
    err = capsys.readouterr().err
    assert "fgsim inspect: verifying 1 entry" in err and "of masks unpacked, about" in err


@pytest.mark.parametrize("args, message", [
    (["--warmup-steps", "60"], "--warmup-steps 60: wan2.1-1.3b runs 50 denoising steps"),
    (["--recompute", "0,500"], "--recompute: step 500 is past wan2.1-1.3b's 50 denoising steps (0..49)"),
])
def test_schedule_past_the_run_is_refused_before_work(capsys, args, message):
    """Steps past the model's run were silently dropped (60 warm-up steps printed as 50, step 500 vanished)."""
    assert main(["predict", "--model", "wan2.1-1.3b", *args]) == 2
    out, err = _err_lines(capsys)
    assert out == "" and err == [f"fgsim predict: error: {message}"]


def test_recompute_inside_the_warmup_warns(capsys, monkeypatch):
    import fgsim.commands.predict as cmd

    monkeypatch.setattr(cmd, "numba_notice", lambda: (_ for _ in ()).throw(SystemExit(7)))  # stop before work
    with pytest.raises(SystemExit):
        main(["predict", "--model", "wan2.1-1.3b", "--warmup-steps", "10", "--recompute", "5,10,25"])
    _, err = _err_lines(capsys)
    assert err == ["fgsim predict: warning: --recompute step 5 falls in the 10 dense warm-up steps and is ignored "
                   "(masks are first predicted at step 10)"]


def test_bad_measured_csv_is_refused_before_work(capsys, tmp_path, monkeypatch):
    """A --measured CSV without the needed columns was reported only after the whole prediction had run."""
    import fgsim.commands.predict as cmd

    bad = tmp_path / "m.csv"
    bad.write_text("a,b\n1,2\n")
    monkeypatch.setattr(cmd, "numba_notice", lambda: (_ for _ in ()).throw(AssertionError("work started")))
    assert main(["predict", "--model", "wan2.1-1.3b", "--plot", str(tmp_path / "p.png"), "--measured", str(bad)]) == 2
    out, err = _err_lines(capsys)
    assert out == "" and err == [f"fgsim predict: error: --measured: {bad}: needs columns model, resolution, mode, "
                                 "pass_s (missing model, resolution, mode, pass_s)"]
    assert not (tmp_path / "p.png").exists()


def test_unknown_option_names_the_command(capsys):
    """An unknown option of a command was reported as 'fgsim: error' with the hint 'fgsim --help'."""
    assert main(["sweep", "--json"]) == 2
    out, err = _err_lines(capsys)
    assert out == "" and err == ["fgsim sweep: error: unrecognized arguments: --json",
                                 "hint: 'fgsim sweep --help' lists the arguments"]
