"""Session 17, helper L: the CLI's leftover defects of the last audit and those found by a fresh sweep. Each test
fails without its fix: one error line naming the file or argument, exit 2, before any work, bounded memory."""

from __future__ import annotations

import csv
import tracemalloc

import pytest

from fgsim import fileio
from fgsim.cli import main
from fgsim.errors import FgsimError, counted


def _err(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [x for x in capsys.readouterr().err.splitlines() if x.strip() and "compiling the scheduler" not in x]


# 1. calibrate --from-csv: a huge field or line is one error line, read in bounded memory -------------------------

def test_from_csv_field_over_the_csv_limit_is_one_line(tmp_path, capsys):
    f = tmp_path / "big.csv"
    f.write_text("kind,split,measured_ms\n" + "x" * 200_000 + ",calib,1\n")  # under the line limit, over csv's field limit
    assert main(["calibrate", "--from-csv", str(f), "--out", str(tmp_path / "c.json")]) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith(f"fgsim calibrate: error: --from-csv: {f}: not a readable measurement CSV")
    assert "field larger than field limit" in err[0] and not (tmp_path / "c.json").exists()


def test_from_csv_line_without_newline_is_refused_in_bounded_memory(tmp_path, capsys):
    f = tmp_path / "line.csv"
    f.write_text("kind,split\n" + "y" * (8 << 20))  # 8 MiB, no line break
    tracemalloc.start()
    with pytest.raises(FgsimError, match=r"^--from-csv: .*line.csv: line 2 is longer than 1,048,576 characters"):
        fileio.check_csv_file(f, "measurement CSV", "--from-csv")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, peak  # the 8 MiB line is never held whole
    assert main(["calibrate", "--from-csv", str(f)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "line 2 is longer than" in err[0]


@pytest.mark.parametrize("content, message", [
    (b"", "empty (no header line), not a measurement CSV"),
    (b"\xff\xfe\x00k,i\n", "not UTF-8 text"),
    (b'kind,split\n"unterminated,calib\n', "not a readable measurement CSV"),
])
def test_from_csv_empty_binary_truncated(tmp_path, capsys, content, message):
    f = tmp_path / "m.csv"
    f.write_bytes(content)
    assert main(["calibrate", "--from-csv", str(f)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and f"--from-csv: {f}: " in err[0] and message in err[0], err


def test_csv_file_size_bound(tmp_path, monkeypatch):
    f = tmp_path / "m.csv"
    f.write_text("a,b\n1,2\n" * 100)
    monkeypatch.setattr(fileio, "MAX_CSV_BYTES", 100)
    with pytest.raises(FgsimError, match=r"^--x: .*m.csv: 800 bytes is too large for a CSV \(at most 100\)$"):
        fileio.check_csv_file(f, "CSV", "--x")


def _calib_rows(tmp_path, **change: str):
    """A copy of the committed calibration CSV's first rows with one calibration kernel row changed."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "validation" / "results" / "h200-2026-12-01-costmodel-calib14.csv"
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    k = next(i for i, r in enumerate(rows) if r["split"] == "calib" and r["kind"] == "kernel")
    rows[k].update(change)
    out = tmp_path / "calib.csv"
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out, k + 1


@pytest.mark.parametrize("change, message", [
    ({"measured_ms": "nan"}, "measured_ms must be a number in (0, 100000], got 'nan'"),
    ({"measured_ms": "1e308"}, "measured_ms must be a number in (0, 100000], got '1e308'"),  # a fit of minutes
    ({"measured_ms": "abc"}, "measured_ms must be a number, got 'abc'"),
    ({"sm_clock_mhz": "inf"}, "sm_clock_mhz must be a number in (0, 100000], got 'inf'"),
    ({"n_tokens": "1000000000000"}, "n_tokens must be in 1..1,048,576"),
    ({"block_n": "x"}, "not a kernel measurement (ValueError"),
])
def test_from_csv_bad_calibration_row_fails_before_the_fit(tmp_path, capsys, change, message):
    f, row = _calib_rows(tmp_path, **change)
    out = tmp_path / "c.json"
    assert main(["calibrate", "--from-csv", str(f), "--gpu", "h200", "--out", str(out)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith(f"fgsim calibrate: error: --from-csv: {f}: row {row} ")
    assert message in err[0] and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--from-csv", "{a}", "{a}"], "--from-csv: {a} is listed twice"),
    (["--from-csv", "{a}", "--out", "{a}"], "--out: {a} must end in .json"),
    (["--from-csv", "{j}", "--out", "{j}"], "--out: {j} is also an input ({j}): write elsewhere"),
    (["--from-csv", "{a}", "--csv", "x.csv"], "--csv: the measurement CSV to write; with --from-csv nothing is measured"),
    (["--from-csv", "{a}", "--measure-only"], "--measure-only: not with --from-csv"),
    (["--ops", "--interconnect"], "--ops: calibrates the operator model; --interconnect the interconnect: one at a time"),
    (["--ops", "--from-csv", "{a}"], "--from-csv: not with --ops"),
    (["--interconnect", "--measure-only"], "--measure-only: not with --interconnect"),
    (["--interconnect", "--from-csv", "{a}", "--gpu", "nope"], "--gpu: unknown GPU 'nope'"),
])
def test_calibrate_contradicting_options(tmp_path, capsys, args, message):
    a, j = tmp_path / "a.csv", tmp_path / "a.json"
    a.write_text("kind,split\n")
    j.write_text("kind,split\n")
    fill = [x.format(a=a, j=j) for x in args]
    assert main(["calibrate", *fill]) == 2
    err = _err(capsys)
    assert len(err) == 1 and message.format(a=a, j=j) in err[0], err


# 2. calibrate --ops without torch / CUDA: one line before any work ------------------------------------------------

def test_ops_without_torch_says_what_is_missing(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in ("torch", "diffusers") else real(n, *a))
    assert main(["calibrate", "--ops"]) == 2
    err = _err(capsys)
    assert err == ["fgsim calibrate: error: --ops needs torch, diffusers, not importable here; it times the "
                   "operators on a CUDA GPU"]


def test_ops_without_cuda_is_one_line(capsys):
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    assert main(["calibrate", "--ops"]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "--ops times the operators on a CUDA GPU and none is visible" in err[0]


# 3. the capture extra's diffusers pin and the runtime check agree ------------------------------------------------

def test_capture_extra_pins_the_diffusers_the_hooks_check():
    import re
    import tomllib
    from pathlib import Path

    from fgsim.capture.hooks import MIN_DIFFUSERS

    py = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    pins = [d for d in py["project"]["optional-dependencies"]["capture"] if d.startswith("diffusers")]
    assert pins == [f"diffusers>={MIN_DIFFUSERS[0]}.{MIN_DIFFUSERS[1]}"], pins
    doc = (Path(__file__).resolve().parents[1] / "docs" / "capture.md").read_text()
    assert re.search(rf"diffusers ≥ {MIN_DIFFUSERS[0]}\.{MIN_DIFFUSERS[1]}\b", doc)


@pytest.mark.parametrize("installed", ["0.34.0", "0.35.0"])
def test_capture_with_an_older_diffusers_is_one_line(tmp_path, monkeypatch, capsys, installed):
    pytest.importorskip("torch")
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda n: installed if n == "diffusers" else real(n))
    model = tmp_path / "pipe"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    assert main(["capture", "--model", str(model), "--out", str(tmp_path / "o.fgt"), "--device", "cpu"]) == 2
    err = _err(capsys)
    assert err == [f"fgsim capture: error: capture needs diffusers >= 0.36 (its attention dispatcher for every model "
                   f"and stateful hooks), but {installed} is installed: pip install -U 'diffusers>=0.36'"]


# 4. counts agree with their nouns ------------------------------------------------------------------------------

def test_counted():
    assert counted(1, "entry", "entries") == "1 entry" and counted(2, "entry", "entries") == "2 entries"
    assert counted(0, "head") == "0 heads" and counted(1234, "row", fmt=",") == "1,234 rows"


def test_inspect_of_a_one_entry_trace_says_entry(tmp_path, capsys):
    out = tmp_path / "one.fgt"
    assert main(["synth", str(out), "--grid", "2", "2", "2", "--num-layers", "1", "--num-heads", "1", "--steps", "0",
                 "--branches", "cond", "--text-tokens", "0", "--block-m", "16", "--num-steps", "1",
                 "--passes-per-step", "1"]) == 0
    wrote = capsys.readouterr().out
    assert "1 pass × 1 layer × 1 head," in wrote, wrote
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "captured    1 of 1 pass, 1 of 1 layer, 1 of 1 head (1 entry); head dim" in text, text
    assert "(1 block per head)" in text and "across 1 head\n" in text
    assert " entries)" not in text and "1 heads" not in text


# the sweep: an empty value selected the default silently; duplicated list items were accepted -------------------

@pytest.mark.parametrize("args, name", [
    (["inspect", ""], "TRACE"),
    (["predict", ""], "TRACE"),
    (["predict", "--model", ""], "--model"),
    (["predict", "--plot", " "], "--plot"),
    (["predict", "--calibration", ""], "--calibration"),
    (["sweep", "--csv", ""], "--csv"),
    (["calibrate", "--from-csv", "a.csv", ""], "--from-csv"),
    (["capture", "--model", "", "--out", "x.fgt"], "--model"),
])
def test_empty_value_is_an_argument_error(capsys, args, name):
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [f"fgsim {args[0]}: error: {name}: empty value"]


@pytest.mark.parametrize("args, message", [
    (["--cp", "ulysses:2,ULYSSES:2"], "--cp: ulysses:2 is listed twice in 'ulysses:2,ULYSSES:2'"),
    (["--model", "wan2.1-1.3b", "--recompute", "0,15,00"], "--recompute: step 00 is listed twice in '0,15,00'"),
])
def test_predict_list_items_listed_twice(capsys, args, message):
    assert main(["predict", *args]) == 2
    assert _err(capsys) == [f"fgsim predict: error: {message}"]


def test_validate_refuses_a_report_of_nothing(tmp_path, capsys):
    hdr = tmp_path / "r.csv"
    hdr.write_text("kind,case_id,kernel,measured_ms\n")
    for args, message in ((["--dev"], "--dev: no results CSV given (a report of nothing)"),
                          (["--test", "--dev", str(hdr)], "--test: no results CSV given (a report of nothing)"),
                          (["--dev", str(hdr)], f"{hdr}: no measured rows to score")):
        assert main(["validate", *args, "--out-dir", str(tmp_path)]) == 2
        assert _err(capsys) == [f"fgsim validate: error: {message}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # no report of nothing


@pytest.mark.parametrize("args, message", [
    (["--frames", "1000000000"], "--frames 1,000,000,000 x --height 480 x --width 832: about 390,000,000,000 tokens "
                                 "per pass, more than a trace holds (1,048,576)"),
    (["--steps", "100000000000"], "--steps 100,000,000,000: a trace holds at most 1,000 denoising steps"),
])
def test_capture_sizes_bounded_before_loading_the_pipeline(tmp_path, capsys, args, message):
    pytest.importorskip("torch")
    model = tmp_path / "pipe"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    assert main(["capture", "--model", str(model), "--out", str(tmp_path / "o.fgt"), "--device", "cpu", *args]) == 2
    assert _err(capsys) == [f"fgsim capture: error: {message}"]


def test_synth_model_name_is_one_short_line(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s.fgt"), "--model", "a\nb"]) == 2
    assert _err(capsys) == ["fgsim synth: error: --model: the model name is at most 200 printable characters (no "
                            "line breaks), got 3 characters"]
    assert list(tmp_path.iterdir()) == []


def test_recompute_warning_agrees_with_its_count(capsys):
    assert main(["predict", "--model", "wan2.1-1.3b", "--warmup-steps", "1", "--recompute", "0,15"]) == 0
    assert ("fgsim predict: warning: --recompute step 0 falls in the 1 dense warm-up step and is ignored (masks are "
            "first predicted at step 1)") in _err(capsys)


@pytest.mark.parametrize("args, message", [
    (["--cases", "0"], "argument --cases: must be ≥ 1, got 0"),  # ran and printed an empty summary
    (["--timeout", "nan"], "argument --timeout: must be a finite number > 0, got nan"),
    (["--out", "/nonexistent/x.json"], "--out: directory of /nonexistent/x.json does not exist"),  # after the run
])
def test_fuzz_traces_script_checks_its_arguments_first(capsys, args, message):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "validation" / "fuzz_traces.py"
    spec = importlib.util.spec_from_file_location("fuzz_traces_l", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as exc:
        mod.main(args)
    assert exc.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


@pytest.mark.parametrize("col, bad, message", [
    ("median_s", "nan", "median_s must be a number in (0, 3600], got 'nan'"),  # was fitted and written
    ("median_s", "-1", "median_s must be a number in (0, 3600], got '-1'"),
    ("bytes", "abc", "bytes must be a number, got 'abc'"),  # was a traceback
    ("bytes", "1e30", "bytes must be a number in (0, 1.1259e+15], got '1e30'"),
    ("P", "2.5", "P must be a whole number of GPUs, got '2.5'"),
])
def test_interconnect_from_csv_bad_row_writes_nothing(tmp_path, capsys, col, bad, message):
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "validation" / "results" / "cp-h200x2-2026-11-30-run4-interconnect.csv"
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[0][col] = bad
    f = tmp_path / "ic.csv"
    with open(f, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "gpu.json"
    assert main(["calibrate", "--interconnect", "--from-csv", str(f), "--gpu", "h200", "--out", str(out)]) == 2
    assert _err(capsys) == [f"fgsim calibrate: error: --from-csv: {f}: row 1 (op {rows[0]['op']}): {message}"]
    assert not out.exists()


def test_synth_huge_grid_message_is_readable(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s.fgt"), "--grid", "1000000", "1000000", "1000000"]) == 2
    err = _err(capsys)
    assert len(err) == 1 and "needs 1.9e+20 PB of mask per entry" in err[0], err  # was 187500000000000000000.0 PB
