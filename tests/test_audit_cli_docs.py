"""What README.md and docs/ tell a user to type exists, and what they show is what the CLI prints (helper A's
audit, session 16): every `--option` written after `fgsim <command>` is an option of that command; the README's
Python snippet runs; docs/cli.md's example output has the lines `predict` prints, numbers aside."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from fgsim.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMANDS = "inspect|synth|predict|sweep|capture|calibrate|validate"


def _options() -> dict[str, set[str]]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {o for a in sp._actions for o in a.option_strings} for name, sp in sub.choices.items()}


def _documented_command_lines(text: str) -> list[str]:
    """Lines of code blocks and inline code spans that run ``fgsim <command>`` (continuations joined)."""
    spans = re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.S) + re.findall(r"`([^`\n]*fgsim [a-z]+[^`\n]*)`", text)
    return [line for s in spans for line in re.split(r"\n(?!\s)", s.replace("\\\n", " ")) if "fgsim" in line]


def test_documented_options_exist():
    opts = _options()
    seen, bad = 0, []
    for doc in DOCS:
        for line in _documented_command_lines(doc.read_text()):
            for m in re.finditer(rf"fgsim\s+({COMMANDS})\b(.*?)(?=$|&&|;|\||fgsim\s)", line):
                for o in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", m.group(2)):
                    seen += 1
                    if o not in opts[m.group(1)]:
                        bad.append(f"{doc.name}: fgsim {m.group(1)} {o}")
    assert seen > 60 and not bad, (seen, bad)  # the README and docs name about a hundred options


def test_readme_python_snippet_runs():
    text = (REPO / "README.md").read_text()
    snippet = next(s for s in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "open_trace" in s)
    env: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(REPO)  # the snippet's path is relative to the repository root, as it says
    try:
        exec(compile(snippet, "README.md", "exec"), env)  # noqa: S102 - the README's own code
    finally:
        os.chdir(cwd)
    assert env["kept"].shape == (4, 28) and env["offsets"].shape == (4 * 56 + 1,)


def test_cli_doc_example_has_the_lines_predict_prints(capsys):
    text = (REPO / "docs" / "cli.md").read_text()
    example = re.search(r"```\n(trace: .*?)```", text, flags=re.S).group(1).splitlines()
    assert main(["predict", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == example[1]  # run: N=..., heads, D; captured calls
    header = next(x for x in out if x.startswith("kernel "))
    assert header in example
    assert next(x for x in out if x.startswith("legend:")) in example
    assert out[2].split("; parameters:")[0] == example[2].split("; parameters:")[0]
    for kernel in ("fg", "block", "dense"):
        row = next(x for x in out if x.startswith(f"{kernel} "))
        doc_row = next(x for x in example if x.startswith(f"{kernel} "))
        width = len(header.split("per call")[0])  # kernel and config columns
        assert row[:width] == doc_row[:width], "docs/cli.md's example is stale: refresh it from `fgsim predict`"
