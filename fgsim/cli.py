"""The ``python -m fgsim`` command line: one subcommand per module in :mod:`fgsim.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from fgsim import __version__
from fgsim.commands import COMMANDS
from fgsim.errors import FgsimError


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks (from a user's file name, say) are shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line plus a hint (exit 2), not the whole usage block."""

    def format_help(self) -> str:
        """The help text, without the reStructuredText literal quotes (````x````) of docstring descriptions."""
        return super().format_help().replace("``", "")

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and a one-line hint, then exit with status 2."""
        sys.stderr.write(f"{self.prog}: error: {_one_line(message) or 'bad arguments'}\n"
                         f"hint: '{self.prog} --help' lists the arguments\n")
        raise SystemExit(2)


#: Options whose value may be empty text (a prompt).
EMPTY_ALLOWED = frozenset({"prompt", "negative_prompt"})


def _empty_value(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The option (or positional argument) given an empty or blank value on the command line, or ''."""
    for action in parser._actions:
        if action.dest in EMPTY_ALLOWED or action.default is argparse.SUPPRESS:
            continue
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            return action.option_strings[-1] if action.option_strings else action.dest.upper()
    return ""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every available subcommand registered."""
    parser = Parser(
        prog="fgsim",
        description="Predict and validate the speed of fine-grained sparse attention for video DiTs.",
    )
    parser.add_argument("--version", action="version", version=f"fgsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"fgsim.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fgsim.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for bad input, with one line on stderr)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the command's own parser, so the error and hint name the command
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            sp = subs[0].choices.get(getattr(args, "command", None) or "", parser) if subs else parser
            sp.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version (0) or a bad argument (2, already reported)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 2
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    empty = _empty_value(subs[0].choices[args.command], args)
    if empty:  # '' is no path, name or list: it used to select the default silently (`predict ''`, `--plot ''`)
        print(f"fgsim {args.command}: error: {empty}: empty value", file=sys.stderr)
        return 2
    module = importlib.import_module(f"fgsim.commands.{args.command}")
    try:
        return int(module.run(args) or 0)
    except FgsimError as exc:
        print(f"fgsim {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fgsim {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``fgsim predict | head``): stop quietly, as the shell's tools do
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit would fail on the closed pipe too
        return 141
