"""``fgsim inspect [TRACE]``: what a trace holds — tokens, captured calls, densities and their spread."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fgsim.fileio import PendingWrites, check_output_path, require_matplotlib


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` subcommand."""
    p = sub.add_parser("inspect", help="summarize a .fgt trace (densities at every granularity, spread)",
                       description="Summarize a .fgt trace. With no TRACE, the embedded default trace.")
    p.add_argument("trace", nargs="?", help="path of a .fgt trace (default: the embedded default trace)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--plot", metavar="PNG", help="write density heatmaps and a kept-key histogram to PNG")
    p.add_argument("--verify", action="store_true", help="also unpack every mask and check every stored count")


def run(args: argparse.Namespace) -> int:
    """Print the summary (table or JSON); optionally plot and verify."""
    # numpy and the trace reader load here, not for every command's argument parser
    from fgsim.summary import format_summary, plot_summary_png, summarize
    from fgsim.trace import default_trace_path, open_trace

    path = Path(args.trace) if args.trace else default_trace_path()
    if args.plot:
        check_output_path(args.plot, "--plot", (".png",))
        require_matplotlib()
    with open_trace(path) as trace:
        if args.verify:
            n = len(trace.entries())
            mb = n * len(trace.meta.heads) * trace.n_qblocks * trace.n_keys / 1e6
            print(f"fgsim inspect: verifying {n} entr{'y' if n == 1 else 'ies'} ({mb:,.0f} MB of masks unpacked, about "
                  f"{max(1, round(mb / 60))} s) ...", file=sys.stderr, flush=True)
            trace.verify()
        summary = summarize(trace, progress=sys.stderr.isatty())
    pending = PendingWrites()
    if args.plot:
        pending.add(args.plot, plot_summary_png(summary))
    if args.json:
        print(json.dumps(summary.to_json(), indent=1))
    else:
        print(format_summary(summary))
        if args.verify:
            print("verify: every mask and every stored count agree")
    for p in pending.commit():
        if not args.json:
            print(f"plot written to {p}")
    return 0
