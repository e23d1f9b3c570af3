"""``fgsim capture``: run a diffusers video pipeline offline and write its attention-sparsity trace (.fgt)."""

from __future__ import annotations

import argparse
import math

from fgsim.commands._args import positive_int
from fgsim.errors import FgsimError, counted


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``capture`` subcommand."""
    p = subparsers.add_parser(
        "capture", help="capture an attention-sparsity trace from a diffusers video pipeline",
        description="Run a diffusers text-to-video pipeline from a local directory or the local Hugging Face "
                    "cache (offline) and write the M×1 slice masks its attention keeps to a .fgt trace.")
    p.add_argument("--model", required=True, help="pipeline directory, or a repo id already in the local HF cache "
                                                  "(e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers)")
    p.add_argument("--out", required=True, help="output .fgt path")
    p.add_argument("--height", type=int, default=480, help="video height in pixels (default 480)")
    p.add_argument("--width", type=int, default=832, help="video width in pixels (default 832)")
    p.add_argument("--frames", type=int, default=81, help="video frames (default 81)")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    p.add_argument("--predictor", default="exact", choices=("exact", "pooled", "block", "block-pooled"),
                   help="mask predictor (default exact: FG-Attn's column-max threshold)")
    p.add_argument("--threshold", type=float, default=None,
                   help="τ of the exact rule (default 0.5, keep if max P > τ/N) or p of the pooled rule (default 0.9)")
    p.add_argument("--block-m", type=int, default=64, choices=(16, 32, 64, 128),
                   help="stored query-block size M (default 64)")
    p.add_argument("--group", type=positive_int, default=16, help="pooled predictor group size in tokens (default 16)")
    p.add_argument("--gamma", type=float, default=0.6, help="pooled predictor self-similarity cosine (default 0.6)")
    p.add_argument("--schedule", default="0,15,30,45,60,80",
                   help="passes to capture: 'all', 'every:K' or a list (default the paper's 0,15,30,45,60,80)")
    p.add_argument("--layers", default="all", help="layers to capture: 'all' or e.g. '0,5,10-12'")
    p.add_argument("--cross", action="store_true",
                   help="capture cross-attention (video queries × text keys; a version-2 trace) instead of self-attention")
    p.add_argument("--prompt", default="A cat walks on the grass, realistic style.", help="text prompt")
    p.add_argument("--negative-prompt", default=None, help="negative prompt (pipeline default if omitted)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (pipeline default if omitted)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"), help="model dtype (default bf16)")
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--no-stats", action="store_true", help="skip the per-call accuracy statistics")
    p.add_argument("--batch-element", type=int, default=-1,
                   help="sample of a batched (CFG) pass to capture (default -1: the last, conditional one)")


def run(args: argparse.Namespace) -> int:
    """Run the capture; returns 0 on success."""
    from fgsim.capture.hooks import Schedule, parse_layers
    from fgsim.capture.predictors import make_predictor
    from fgsim.fileio import check_output_path

    if not args.out.endswith(".fgt"):
        raise FgsimError(f"--out must end in .fgt, got {args.out}")
    out = check_output_path(args.out, "--out", (".fgt",))
    for name in ("height", "width", "frames", "steps"):
        if getattr(args, name) < 1:
            raise FgsimError(f"--{name} must be ≥ 1, got {getattr(args, name)}")
    for name in ("height", "width"):  # diffusers' video pipelines refuse others only after loading the model
        if getattr(args, name) % 16:
            raise FgsimError(f"--{name} must be a multiple of 16 (the VAE's 8x times the 2x2 patches), got "
                             f"{getattr(args, name)}")
    from fgsim.trace import MAX_STEPS, MAX_TOKENS

    if args.steps > MAX_STEPS:
        raise FgsimError(f"--steps {args.steps:,}: a trace holds at most {MAX_STEPS:,} denoising steps")
    # the video DiTs' VAEs compress 4x in time and 8x in space, then 2x2 patches: the latent tokens of one pass
    tokens = ((args.frames - 1) // 4 + 1) * (args.height // 16) * (args.width // 16)
    if tokens > MAX_TOKENS:
        raise FgsimError(f"--frames {args.frames:,} x --height {args.height:,} x --width {args.width:,}: about "
                         f"{tokens:,} tokens per pass, more than a trace holds ({MAX_TOKENS:,})")
    if not (math.isfinite(args.gamma) and -1.0 <= args.gamma <= 1.0):
        raise FgsimError(f"--gamma is a cosine similarity in [-1, 1], got {args.gamma}")
    if args.guidance is not None and not (math.isfinite(args.guidance) and args.guidance >= 0):
        raise FgsimError(f"--guidance must be a number ≥ 0, got {args.guidance}")
    schedule = Schedule.parse(args.schedule)
    layers = parse_layers(args.layers)
    predictor = make_predictor(args.predictor, threshold=args.threshold, block_m=args.block_m, group=args.group,
                               gamma=args.gamma)
    try:
        import torch
    except ImportError:
        raise FgsimError("capture needs torch and diffusers (pip install -e '.[capture]')") from None
    from fgsim.capture.hooks import require_diffusers

    require_diffusers("capture")
    try:
        torch.device(args.device)
    except (RuntimeError, ValueError):
        raise FgsimError(f"--device {args.device!r} is not a torch device (e.g. cuda, cuda:1, cpu)") from None
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise FgsimError(f"--device {args.device}: no CUDA GPU is visible (torch.cuda.is_available() is False); "
                         "use --device cpu for a (slow) CPU capture")
    from fgsim.capture.run import capture_pipeline, resolve_model
    from fgsim.fileio import read_json

    index = read_json(resolve_model(args.model) / "model_index.json", "diffusers pipeline index")
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise FgsimError(f"{args.model}: model_index.json names no pipeline class ('_class_name'): not a diffusers "
                         "pipeline directory")

    res = capture_pipeline(args.model, out, predictor, height=args.height, width=args.width, frames=args.frames,
                           steps=args.steps, prompt=args.prompt, negative_prompt=args.negative_prompt,
                           guidance_scale=args.guidance, seed=args.seed, dtype=args.dtype, device=args.device,
                           schedule=schedule, layers=layers, cross=args.cross, stats=not args.no_stats,
                           batch_element=args.batch_element)
    print(f"wrote {res.path}: {counted(res.entries, 'entry', 'entries')} from {res.captured_passes} of "
          f"{counted(res.passes, 'pass', 'passes')} "
          f"in {res.seconds:.1f} s")
    return 0
