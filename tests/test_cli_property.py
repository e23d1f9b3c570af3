"""CLI property test (issue 15): any command line with one invalid argument or output path ends with exit 2 and a
one-line error (plus a hint for argparse errors) — never a traceback, never exit 0 — before any work starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fgsim.cli import main
from fgsim.hardware import list_gpus

NOT_A_NUMBER = st.text(alphabet="abcxyz-+.", min_size=1, max_size=4)  # no digits, cannot spell nan/inf


def _not_in(values: set[int]) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-10**9, 10**9).filter(lambda v: v not in values).map(str), NOT_A_NUMBER)


POW2 = {16, 32, 64, 128, 256}
BAD_DENSITY = st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0 < v <= 1).map(str),
                        NOT_A_NUMBER)
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789,", min_size=1, max_size=12)
BAD_KERNELS = WORDS.filter(lambda s: not all(x in ("fg", "block", "dense") for x in s.split(",") if x)
                           or not any(s.split(",")))
BAD_GPUS = WORDS.filter(lambda s: s.strip().lower() != "all" and not all(x in list_gpus() for x in s.split(",") if x)
                        or not any(s.split(",")))


def bad_path(ext: str) -> st.SearchStrategy[str]:
    """Output paths that cannot be written: placeholders resolved against the test's tmp_path, and arbitrary
    text (line breaks, NUL bytes, slashes) with a wrong extension."""
    fixed = st.sampled_from([f"MISSING/out{ext}", f"DIR{ext}", "/proc/out" + ext, "TMP/out.unknown", "TMP/out",
                             "TMP/" + "x" * 300 + ext, f"TMP/a\x00b{ext}"])
    wrong_ext = st.text(min_size=0, max_size=12).map(lambda t: f"TMP/{t}.txt")
    return st.one_of(fixed, wrong_ext)


def _one_bad_predict() -> st.SearchStrategy[list[str]]:
    return st.one_of(
        _not_in(POW2).map(lambda v: ["--block-n", v]),
        _not_in(set(range(1, 9))).map(lambda v: ["--num-stages", v]),
        BAD_DENSITY.map(lambda v: ["--density", v]),
        BAD_KERNELS.map(lambda v: ["--kernel", v]),
        BAD_GPUS.map(lambda v: ["--gpu", v]),
        _not_in({64, 128}).map(lambda v: ["--block-m", v]),
        _not_in({1, 16, 64}).map(lambda v: ["--gran-n", v]),
        bad_path(".png").map(lambda v: ["--plot", v]),
        st.just(["--calibration", "MISSING/c.json"]),
        WORDS.map(lambda v: ["--cp", v]),  # a plan is ulysses:P or ring:P
        st.integers(-10**6, -1).map(lambda v: ["--warmup-steps", str(v)]),
        NOT_A_NUMBER.map(lambda v: ["--model", "wan2.1-1.3b", "--recompute", v]),
        st.just(["MISSING/t.fgt"]),
    )


def _one_bad_sweep() -> st.SearchStrategy[list[str]]:
    return st.one_of(
        _not_in(set(range(1, 1 << 20 + 1))).map(lambda v: ["--n-tokens", v]),
        _not_in(set(range(1, 257))).map(lambda v: ["--heads", v]),
        _not_in(set(range(1, 65))).map(lambda v: ["--layers", v]),
        _not_in({64, 128}).map(lambda v: ["--block-m", f"64,{v}"]),
        _not_in({1, 16, 64}).map(lambda v: ["--gran-n", f"{v},1"]),
        _not_in(set(range(0, 9))).map(lambda v: ["--num-stages", v]),
        BAD_DENSITY.map(lambda v: ["--density", f"0.5,{v}"]),
        BAD_GPUS.map(lambda v: ["--gpus", v]),
        bad_path(".png").map(lambda v: ["--plot", v]),
        bad_path(".csv").map(lambda v: ["--csv", v]),
    )


def _one_bad_synth() -> st.SearchStrategy[list[str]]:
    return st.one_of(
        st.tuples(st.integers(-5, 0), st.integers(1, 4), st.integers(1, 4)).map(
            lambda g: ["--grid", *map(str, g)]),
        st.tuples(st.integers(2000, 10**5), st.integers(2000, 10**5), st.integers(1, 10)).map(
            lambda g: ["--grid", *map(str, g)]),
        _not_in(set(range(1, 10**6))).map(lambda v: ["--num-heads", v]),
        _not_in(set(range(1, 10**6))).map(lambda v: ["--num-layers", v]),
        st.integers(50, 10**6).map(lambda v: ["--steps", str(v)]),
        st.floats(1.0001, 1e6).map(lambda v: ["--sink-fraction", str(v)]),
        st.sampled_from(["maybe", "uncond,cond,cond", ""]).map(lambda v: ["--branches", v]),
    )


COMMANDS = st.one_of(
    st.tuples(st.just("predict"), _one_bad_predict()),
    st.tuples(st.just("sweep"), _one_bad_sweep()),
    st.tuples(st.just("synth"), _one_bad_synth()),
    st.tuples(st.just("inspect"), st.one_of(bad_path(".png").map(lambda v: ["--plot", v]),
                                            st.just(["MISSING/t.fgt"]))),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=COMMANDS)
def test_invalid_command_lines_exit_2_with_one_line(tmp_path_factory: pytest.TempPathFactory, capsys, case) -> None:
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "DIR.png").mkdir()
    (tmp / "DIR.csv").mkdir()

    def fix(a: str) -> str:
        return a.replace("MISSING", str(tmp / "missing")).replace("TMP", str(tmp)).replace(
            "DIR.", str(tmp / "DIR."))

    cmd, bad = case
    argv = [cmd, *map(fix, bad)]
    if cmd == "synth":
        argv = ["synth", str(tmp / "o.fgt"), *argv[1:]]
    if cmd == "predict":
        argv.append("--no-progress")
    assert main(argv) == 2, argv
    cap = capsys.readouterr()
    err = [x for x in cap.err.splitlines() if "warning:" not in x and "compiling the scheduler" not in x]
    assert 1 <= len(err) <= 2, (argv, cap.err)
    assert err[0].startswith(f"fgsim {cmd}: error: "), (argv, cap.err)
    assert len(err) == 1 or err[1].startswith("hint: "), (argv, cap.err)
    assert "Traceback" not in cap.err
    assert not (tmp / "o.fgt").exists()
    assert sorted(p.name for p in tmp.iterdir()) == ["DIR.csv", "DIR.png"], argv  # nothing written


KERNEL_SETS = st.lists(st.sampled_from(["fg", "block", "dense"]), min_size=1, max_size=3, unique=True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gpus=st.lists(st.sampled_from(list_gpus()), min_size=1, max_size=2, unique=True),
       block_m=st.lists(st.sampled_from(["64", "128"]), min_size=1, max_size=2, unique=True),
       gran=st.lists(st.sampled_from(["1", "16", "64"]), min_size=1, max_size=2, unique=True),
       stages=st.lists(st.integers(0, 8).map(str), min_size=1, max_size=2, unique=True),
       density=st.lists(st.floats(0.01, 1.0).map(lambda v: f"{v:.3f}"), min_size=1, max_size=2, unique=True),
       n_tokens=st.integers(1, 3000), heads=st.integers(1, 3))
def test_valid_sweeps_run(capsys, gpus, block_m, gran, stages, density, n_tokens, heads) -> None:
    argv = ["sweep", "--gpus", ",".join(gpus), "--block-m", ",".join(block_m), "--gran-n", ",".join(gran),
            "--num-stages", ",".join(stages), "--density", ",".join(density), "--n-tokens", str(n_tokens),
            "--heads", str(heads), "--layers", "1"]
    assert main(argv) == 0, (argv, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert out.startswith("  gpu       N")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gpu=st.sampled_from(list_gpus()), kernels=KERNEL_SETS, block_m=st.sampled_from([None, "64", "128"]),
       gran=st.sampled_from(["1", "16", "64"]), stages=st.sampled_from([None, "1", "2", "5", "8"]),
       block_n=st.sampled_from([None, "16", "32", "64", "128", "256"]), as_json=st.booleans())
def test_valid_predicts_answer_or_refuse_in_one_line(capsys, gpu, kernels, block_m, gran, stages, block_n,
                                                     as_json) -> None:
    argv = ["predict", "--gpu", gpu, "--kernel", ",".join(kernels), "--gran-n", gran, "--no-progress"]
    for opt, v in (("--block-m", block_m), ("--num-stages", stages), ("--block-n", block_n)):
        if v is not None:
            argv += [opt, v]
    argv += ["--json"] if as_json else []
    code = main(argv)
    cap = capsys.readouterr()
    assert code in (0, 2), argv
    if code == 2:  # a what-if that cannot launch on this GPU: said in one line
        err = [x for x in cap.err.splitlines() if "compiling the scheduler" not in x]
        assert len(err) == 1 and err[0].startswith("fgsim predict: error: "), (argv, cap.err)
    elif not as_json:
        assert max(len(x) for x in cap.out.splitlines()) <= 100, argv


# hostile input files for every option that reads one (helper A's audit, session 16): a device, deep nesting, NaN,
# a 5,000-digit integer, garbage bytes, a truncated copy of a bundled file: one line, exit 2, in bounded memory
DATA = Path(__file__).resolve().parents[1] / "fgsim" / "data"
SMALL_TRACE = str(Path(__file__).resolve().parents[1] / "traces" / "refdit-8x16x28-exact.fgt")
FILE_OPTIONS = st.sampled_from([(["predict", SMALL_TRACE, "--gpu"], "gpus/h200.json"),
                                (["predict", SMALL_TRACE, "--calibration"], "calibrations/h200.json"),
                                (["predict", "--model"], "models/wan2.1-1.3b.json")])


def _hostile(base: str, kind: str, cut: int, junk: bytes) -> bytes | None:
    """The bytes of a hostile version of ``base`` (None: a link to /dev/zero)."""
    first_number = re.search(r'(?<=": )\d+', base)  # a number field, not digits inside a string
    assert first_number is not None
    at = slice(*first_number.span())
    return {"device": None, "deep": b"[" * 50_000 + b"]" * 50_000, "empty": b"", "garbage": b"\xff" + junk,
            "nan": (base[:at.start] + "NaN" + base[at.stop:]).encode(),
            "huge": (base[:at.start] + "9" * 5000 + base[at.stop:]).encode(),
            "truncated": base.encode()[:cut % len(base)]}[kind]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opt=FILE_OPTIONS, kind=st.sampled_from(["device", "deep", "empty", "garbage", "nan", "huge", "truncated"]),
       cut=st.integers(0, 10**6), junk=st.binary(max_size=64))
def test_hostile_input_files_exit_2_with_one_line(tmp_path_factory: pytest.TempPathFactory, capsys, opt, kind,
                                                   cut, junk) -> None:
    argv, base = opt
    path = tmp_path_factory.mktemp("in") / "in.json"
    data = _hostile((DATA / base).read_text(), kind, cut, junk)
    if data is None:
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(data)
    assert main([*argv, str(path), "--no-progress"]) == 2, (argv, kind)
    cap = capsys.readouterr()
    err = [x for x in cap.err.splitlines() if "compiling the scheduler" not in x and not x.startswith("hint: ")]
    assert len(err) == 1 and err[0].startswith("fgsim predict: error: ") and "in.json" in err[0], (kind, cap.err)
    assert "Traceback" not in cap.err
