"""`predict --cp`: per-rank table on the default trace, the balanced-heads what-if never worse than the plan it
re-assigns, and bad plans refused with one line and exit 2."""

from __future__ import annotations

import re

import pytest

from fgsim.cli import main


def _rows(out: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) > 2 and re.fullmatch(r"(ulysses|ring):\d+", f[0]):
            rows[(f[0], f[1])] = f[2:]
    return rows


def test_predict_cp_ulysses_and_ring_on_default_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--cp", "ulysses:2,ring:2", "--balance-heads", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert max(len(x) for x in out.splitlines()) <= 100
    rows = _rows(out)
    for plan in ("ulysses:2", "ring:2"):
        for k in ("fg", "dense"):
            r = rows[(plan, k)]
            # two rank times ("9.19 s 9.60 s"), then imbalance, comm, P-GPU time, 1-GPU time, speedup
            nums = [x for x in r if re.fullmatch(r"[0-9.]+x?", x)]
            ranks, imbal, speedup = nums[:2], float(nums[2]), float(nums[-1].rstrip("x"))
            assert len(ranks) == 2 and imbal >= 1.0
            assert 1.0 < speedup < 2.0  # two GPUs can neither lose nor beat linear scaling here
    # 16,380-token shards are not 128-key aligned: block ring runs on key chunks moved to multiples of 128
    blk = [x for x in rows[("ring:2", "block")] if re.fullmatch(r"[0-9.]+x?", x)]
    assert 1.0 < float(blk[-1].rstrip("x")) < 2.0
    # the what-if includes the natural split, so it is never slower than the plan it re-assigns
    for k in ("fg", "block"):
        plain, what_if = rows[("ulysses:2", k)], rows[("ulysses:2", k + "*")]
        assert float(what_if[-1].rstrip("x")) >= float(plain[-1].rstrip("x"))


@pytest.mark.parametrize("plan, msg", [("foo:2", "bad --cp 'foo:2'"), ("ulysses:0", "--cp"),
                                       ("ulysses:5", "--cp")])
def test_predict_cp_bad_plans(plan: str, msg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--cp", plan, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and msg in err[0], err


@pytest.mark.parametrize("gpu, says", [("h200", "measured (fgsim calibrate --interconnect)"),
                                       ("l40s", "a prior from the spec sheet, not measured")])
def test_cp_says_whether_the_interconnect_was_measured(capsys: pytest.CaptureFixture[str], gpu: str,
                                                       says: str) -> None:
    """Only the H200's collectives are measured; the others' are spec priors and the output must say which."""
    assert main(["predict", "--cp", "ulysses:2", "--kernel", "dense", "--gpu", gpu, "--no-progress"]) == 0
    out = capsys.readouterr().out
    text = " ".join(x.strip() for x in out[out.index("collectives:"):].splitlines()[:2])
    assert says in text and max(len(x) for x in out.splitlines()) <= 100


def test_empty_cp_plan_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--cp '' ran the single-GPU prediction as if --cp were absent."""
    assert main(["predict", "--cp", "", "--no-progress"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.strip().splitlines() == [  # every option's empty value: one line, a hint
        "fgsim predict: error: --cp: empty value"]
