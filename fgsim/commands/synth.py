"""``fgsim synth OUT``: write a synthetic structured trace (3D windows, sinks, text, global keys)."""

from __future__ import annotations

import argparse
import sys

from fgsim.commands._args import int_range, nonneg_int
from fgsim.errors import FgsimError, counted
from fgsim.synth import SynthParams, default_passes, synth_trace
from fgsim.trace import PassInfo

#: Largest bool mask of one (pass, layer) entry the generator may hold in memory (heads × query blocks × N).
MAX_ENTRY_MASK_BYTES = 2 << 30
#: Measured generator throughput (bytes of bool mask per second, one core) and stored bytes per mask byte.
MASK_BYTES_PER_S = 150e6
STORED_PER_MASK_BYTE = 0.0013

#: The embedded default trace (fgsim/data/default.fgt): Wan2.1-1.3B at 480p, one CFG branch at a dense
#: warm-up step and three sparse steps, first/middle/last layers — a few MB.
DEFAULT_PRESET = {"steps": "0,20,35,49", "branches": "cond", "layers": "0,15,29", "block_m": 64}


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise FgsimError(f"{name}: expected comma-separated integers, got {text!r}") from None
    if not values:
        raise FgsimError(f"{name}: expected at least one integer")
    return values


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}" if n < 1e6 else f"{n:.2g} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand."""
    p = sub.add_parser("synth", help="write a synthetic structured trace (labelled synthetic)",
                       description="Write a synthetic .fgt trace shaped like a video DiT's attention. Defaults: "
                                   "Wan2.1-1.3B at 480p (grid 21×30×52, 30 layers, 12 heads, head dim 128), "
                                   "every 10th of 50 steps, both CFG branches: 300 entries, about 80 MB and "
                                   "5-15 minutes. '--preset default' writes the embedded default trace's 12 "
                                   "entries (about 4 MB, 20 s). The size and time are estimated before it starts.")
    p.add_argument("out", help="output .fgt path")
    p.add_argument("--model", default="synthetic-wan2.1-1.3b", help="model name stored in the trace")
    p.add_argument("--grid", nargs=3, type=int, metavar=("T", "H", "W"), default=(21, 30, 52),
                   help="latent token grid after patchify (default 21 30 52, Wan 480p)")
    p.add_argument("--num-layers", type=int_range(1, 256), default=30, help="layers of the model, 1..256 (default 30)")
    p.add_argument("--num-heads", type=int_range(1, 256), default=12, help="attention heads, 1..256 (default 12)")
    p.add_argument("--head-dim", type=int, default=128, choices=(64, 128), help="head dimension (default 128)")
    p.add_argument("--text-tokens", type=int_range(0, 1 << 20), default=0,
                   help="text tokens in the self-attention sequence (default 0)")
    p.add_argument("--text-position", choices=("none", "before", "after"), default=None,
                   help="where text tokens sit (default: after if --text-tokens > 0)")
    p.add_argument("--block-m", type=int, default=64, choices=(16, 32, 64, 128), help="stored query-block size M")
    p.add_argument("--num-steps", type=int_range(1, 1000), default=50,
                   help="denoising steps of the run, 1..1000 (default 50)")
    p.add_argument("--passes-per-step", type=int, default=2, choices=(1, 2))
    p.add_argument("--steps", help="comma-separated denoising steps to capture (default: every 10th)")
    p.add_argument("--branches", default="cond,uncond", help="CFG branches per captured step: cond or cond,uncond")
    p.add_argument("--layers", help="comma-separated layers to capture (default: all)")
    p.add_argument("--heads", help="comma-separated heads to capture (default: all)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed, an integer ≥ 0 (default 0)")
    p.add_argument("--sink-fraction", type=float, default=SynthParams.sink_fraction,
                   help=f"first-frame tokens that are attention sinks (default {SynthParams.sink_fraction})")
    p.add_argument("--global-key-fraction", type=float, default=SynthParams.global_key_fraction,
                   help=f"keys every query keeps (default {SynthParams.global_key_fraction})")
    p.add_argument("--dense-step-fraction", type=float, default=SynthParams.dense_step_fraction,
                   help=f"leading steps that are dense (default {SynthParams.dense_step_fraction})")
    p.add_argument("--preset", choices=("default",), help="'default': the embedded default trace's selection")


def run(args: argparse.Namespace) -> int:
    """Generate and write the trace, then print a one-line summary."""
    from fgsim.fileio import check_output_path

    out = check_output_path(args.out, "out", (".fgt",))
    if not args.model.isprintable() or len(args.model) > 200:
        raise FgsimError(f"--model: the model name is at most 200 printable characters (no line breaks), got "
                         f"{len(args.model):,} characters")
    if args.preset == "default":
        args.steps, args.branches, args.layers = DEFAULT_PRESET["steps"], DEFAULT_PRESET["branches"], DEFAULT_PRESET["layers"]
        args.block_m = DEFAULT_PRESET["block_m"]
    if any(g < 1 for g in args.grid):
        raise FgsimError(f"--grid: every extent must be ≥ 1, got {args.grid}")
    for name in ("sink_fraction", "global_key_fraction", "dense_step_fraction"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise FgsimError(f"--{name.replace('_', '-')}: must be in [0, 1], got {getattr(args, name)}")
    text_position = args.text_position or ("after" if args.text_tokens else "none")
    if (text_position == "none") != (args.text_tokens == 0):
        raise FgsimError(f"--text-position {text_position} with --text-tokens {args.text_tokens}: 'none' exactly "
                         "when there are no text tokens")
    branches = tuple(b.strip() for b in args.branches.split(",") if b.strip())
    if not branches or len(branches) > args.passes_per_step or any(b not in ("cond", "uncond") for b in branches) \
            or len(set(branches)) != len(branches):
        raise FgsimError(f"--branches: expected 'cond' or 'cond,uncond' (at most --passes-per-step), got {args.branches!r}")
    steps = _ints(args.steps, "--steps") if args.steps else tuple(range(0, args.num_steps, 10))
    if any(not 0 <= s < args.num_steps for s in steps) or len(set(steps)) != len(steps):
        raise FgsimError(f"--steps: steps must be unique and in [0, {args.num_steps}), got {list(steps)}")
    passes = tuple(PassInfo(s * args.passes_per_step + k, s, b) for s in steps for k, b in enumerate(branches))
    if not args.steps and branches == ("cond", "uncond")[: args.passes_per_step]:
        passes = default_passes(args.num_steps, args.passes_per_step, every=10)
    layers = _ints(args.layers, "--layers") if args.layers else None
    heads = _ints(args.heads, "--heads") if args.heads else None
    if layers and (len(set(layers)) != len(layers) or not all(0 <= x < args.num_layers for x in layers)):
        raise FgsimError(f"--layers: layers must be unique and in [0, {args.num_layers}), got {list(layers)}")
    if heads and (len(set(heads)) != len(heads) or not all(0 <= x < args.num_heads for x in heads)):
        raise FgsimError(f"--heads: heads must be unique and in [0, {args.num_heads}), got {list(heads)}")
    n_tok = args.grid[0] * args.grid[1] * args.grid[2] + args.text_tokens
    n_heads = len(heads) if heads else args.num_heads
    entry_bytes = n_heads * -(-n_tok // args.block_m) * n_tok
    if entry_bytes > MAX_ENTRY_MASK_BYTES:
        raise FgsimError(f"--grid: N = {n_tok:,} tokens needs {_size(entry_bytes)} of mask per entry "
                         f"({counted(n_heads, 'head')} × {counted(-(-n_tok // args.block_m), 'query block', fmt=',')} "
                         "× N); the limit is "
                         f"{_size(MAX_ENTRY_MASK_BYTES)}: use a smaller grid or fewer --heads")
    if n_tok > 1 << 20:
        raise FgsimError(f"--grid: N = {n_tok:,} tokens; at most {1 << 20:,} (T·H·W + text tokens)")
    n_entries = len(passes) * (len(layers) if layers else args.num_layers)
    seconds = n_entries * entry_bytes / MASK_BYTES_PER_S
    if seconds > 2:
        print(f"fgsim synth: {counted(n_entries, 'entry', 'entries')} of {_size(entry_bytes)} of mask each: about "
              f"{_size(n_entries * entry_bytes * STORED_PER_MASK_BYTE)} on disk and {_duration(seconds)} "
              "(Ctrl-C stops it and leaves nothing behind)", file=sys.stderr, flush=True)
    params = SynthParams(seed=args.seed, sink_fraction=args.sink_fraction,
                         global_key_fraction=args.global_key_fraction, dense_step_fraction=args.dense_step_fraction)
    try:
        meta = synth_trace(str(out), model=args.model, grid=tuple(args.grid), num_layers=args.num_layers,
                           num_heads=args.num_heads, head_dim=args.head_dim, text_tokens=args.text_tokens,
                           text_position=text_position, block_m=args.block_m, num_steps=args.num_steps,
                           passes_per_step=args.passes_per_step, passes=passes, layers=layers, heads=heads,
                           params=params, progress=sys.stderr.isatty())
    except ValueError as exc:
        raise FgsimError(str(exc)) from None
    print(f"wrote {out}: synthetic {meta.model}, N = {meta.n_tokens:,}, {counted(len(meta.passes), 'pass', 'passes')} "
          f"× {counted(len(meta.layers), 'layer')} × {counted(len(meta.heads), 'head')}, M = {meta.block_m}")
    return 0
