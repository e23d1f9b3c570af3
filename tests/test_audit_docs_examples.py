"""The runnable CPU examples of docs/endtoend.md ("Try it on a CPU") run as written and print what the doc says;
the fg backend off a GPU and outside the Triton interpreter refuses with one line (not Triton's traceback)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

DOC = Path(__file__).resolve().parents[1] / "docs" / "endtoend.md"
CAPTURE_DOC = DOC.with_name("capture.md")


def _examples(doc: Path = DOC) -> dict[str, str]:
    """``<!-- example: NAME -->`` followed by a fenced python block, by NAME."""
    found = dict(re.findall(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", doc.read_text(), flags=re.S))
    assert set(found) == ({"plain-callable", "diffusers-tiny-wan"} if doc == DOC else {"capture-tiny-wan"}), found
    return found


def _run(code: str, capsys: pytest.CaptureFixture[str]) -> str:
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})  # noqa: S102 - the doc's own code
    return capsys.readouterr().out.strip()


def test_plain_callable_example_runs(capsys):
    out = _run(_examples()["plain-callable"], capsys)
    shape, rest = out.split(") ", 1)
    assert shape == "(1, 256, 2, 64"
    summary, qual = rest.split("} {", 1)
    summary = ast.literal_eval(summary + "}")
    qual = ast.literal_eval("{" + qual)
    assert summary["calls"] == 1 and summary["predictions"] == 1
    assert 0.5 < summary["kept_fraction_mean"] < 0.9  # the doc says 0.69: the predictor drops keys
    assert f"{summary['kept_fraction_mean']:.2f}" in DOC.read_text()
    assert 30 < qual["psnr_db"] < 200 and qual["ssim"] > 0.99  # close to dense, not identical


def test_diffusers_example_runs_and_prints_what_the_doc_says(capsys):
    pytest.importorskip("diffusers")
    out = _run(_examples()["diffusers-tiny-wan"], capsys)
    summary, psnrs = out.rsplit("} ", 1)
    summary = ast.literal_eval(summary + "}")
    psnrs = [float(x) for x in psnrs.strip("[]").split(",")]  # float() reads 'inf'; nothing is evaluated
    claimed = re.search(r"It prints `(\{'calls'.*?)\.\.\.\}`", DOC.read_text()).group(1)
    assert str(summary).startswith(claimed), (summary, claimed)
    assert psnrs[0] == float("inf") and all(20 < x < 100 for x in psnrs[1:])  # warm-up bitwise, then sparse


def test_fg_backend_off_gpu_without_interpreter_is_one_line(monkeypatch):
    from fgsim.errors import FgsimError
    from fgsim.integrations.diffusers import sparse_attention_fn

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 64, 1, 64, generator=g) for _ in range(3))
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    for backend in ("fg", "dense"):
        fn = sparse_attention_fn(backend=backend)
        with pytest.raises(FgsimError, match=r"TRITON_INTERPRET=1 .*q is on cpu$"):
            fn(q, k, v, None, False, None)
    out = sparse_attention_fn(backend="sdpa")(q, k, v, None, False, None)  # no Triton needed
    assert out.shape == q.shape


def test_capture_library_example_writes_a_trace(tmp_path, monkeypatch, capsys):
    pytest.importorskip("diffusers")
    monkeypatch.chdir(tmp_path)  # the example writes out.fgt in the working directory
    out = _run(_examples(CAPTURE_DOC)["capture-tiny-wan"], capsys)
    grid, rest = out.split(") ", 1)
    entries, density = rest.rsplit("] ", 1)
    assert grid == "(2, 8, 8" and entries.count("(") == 6 and 0 < float(density) < 1, out
    assert main_inspect(tmp_path / "out.fgt") == 0


def main_inspect(path: Path) -> int:
    from fgsim.cli import main

    return main(["inspect", str(path), "--verify"])


def test_plain_callable_bad_arguments_are_one_line():
    from fgsim.errors import FgsimError
    from fgsim.integrations.diffusers import sparse_attention_fn

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 64, 1, 64, generator=g) for _ in range(3))
    fn = sparse_attention_fn(backend="sdpa")
    for args, message in (((q[0], k[0], v[0], None, False, None), r"must be 4-D \(B, S, H, D\) tensors"),
                          ((q, k, v, None, False, float("nan")), "softmax_scale must be a positive number"),
                          ((q, k, v, None, False, -1.0), "softmax_scale must be a positive number"),
                          ((q, k, v, {"layer": "x"}, False, None), "'step' and 'layer' must be integers")):
        with pytest.raises(FgsimError, match=message):
            fn(*args)
