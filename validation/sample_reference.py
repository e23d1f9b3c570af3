"""Sample fgsim's reference DiT: a frame grid, dense vs FG-Attn vs block-sparse, timings, and captured traces.

    PYTHONPATH=.:kernels python3 validation/sample_reference.py --weights W.safetensors --out OUT \\
        --grid 21x60x104 --attention dense,fg,block --capture 21x60x104,8x32x56 --capture-predictors exact,pooled

Writes into OUT (at most 8 files, as a device call returns):
- ``samples.png``: one row per ``--labels`` entry, 5 frames each, sampled with dense attention at ``--grid``;
- ``compare.png``: the first label sampled with each ``--attention`` mode (rows in that order), same noise;
- ``trace_<grid>_<predictor>.fgt``: self-attention traces captured while sampling the first label (dense);
- ``sample.json``: settings, wall-clock seconds of each full sampling run (CUDA-synchronised, after a warm-up
  run of 1 step), PSNR (dB) of each mode's frames against dense, kept fractions, trace sizes.
Timed runs of ``fg``/``block`` include mask prediction on every recompute (``--recompute-every``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fgsim.errors import FgsimError  # noqa: E402

DEFAULT_LABELS = "coffee/pan_right/shapes,astronaut/zoom_in/none,hubble_deep_field/pan_down/shapes,rocket/zoom_out/none"


def _grid(text: str) -> tuple[int, int, int]:
    try:
        g = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad grid {text!r}: use TxHxW (latent, before the 2×2 patch)") from None
    if len(g) != 3 or min(g) < 1:
        raise argparse.ArgumentTypeError(f"bad grid {text!r}: use TxHxW with positive sizes")
    return g  # type: ignore[return-value]


def _grids(text: str) -> list[tuple[int, int, int]]:
    return [_grid(t) for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="weights.safetensors (default: the package's)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--grid", type=_grid, default=(21, 60, 104), help="latent grid TxHxW (default Wan 480p)")
    p.add_argument("--labels", default=DEFAULT_LABELS, help="comma-separated IMAGE/MOTION/SHAPES or class ids")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (default config.json)")
    p.add_argument("--shift", type=float, default=None, help="flow shift (default config.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto", help="auto: bf16 on CUDA")
    p.add_argument("--attention", default="dense", help="comma-separated modes: dense, sdpa-hook, fg, block")
    p.add_argument("--predictor", default="exact", help="mask predictor of fg/block (fgsim.capture.predictors)")
    p.add_argument("--threshold", type=float, default=None, help="predictor threshold (tau or p)")
    p.add_argument("--block-m", type=int, default=64, help="query block M of fg/block and of captures")
    p.add_argument("--gran-n", type=int, default=1, help="fg key run length")
    p.add_argument("--recompute-every", type=int, default=1, help="fg/block: steps between mask predictions")
    p.add_argument("--no-timing", action="store_true", help="skip the warm-up runs")
    p.add_argument("--capture", type=_grids, default=[], help="latent grids to capture traces at (comma-separated)")
    p.add_argument("--capture-predictors", default="exact", help="comma-separated predictors for captures")
    p.add_argument("--capture-schedule", default="every:10", help="passes to capture: all | every:K | list")
    p.add_argument("--capture-layers", default=None, help="layers to capture: all | list like 0,2-5")
    p.add_argument("--trace-dir", type=Path, default=None, help="where traces go (default --out)")
    p.add_argument("--max-trace-mb", type=float, default=12.0,
                   help="a larger trace keeps fewer layers (every other, then first and last) until it fits")
    return p


def _fit_size(path: Path, max_mb: float) -> dict:
    """Keep fewer layers of the trace at ``path`` (every other, then first and last, then the first) until it is
    at most ``max_mb`` MiB; returns what was done."""
    from fgsim.trace import open_trace, subset_trace

    if path.stat().st_size <= max_mb * 2**20:
        return {}
    with open_trace(path) as tr:
        layers = list(tr.meta.layers)
    full = path.with_name(path.stem + ".full.fgt")
    path.replace(full)
    for keep in (layers[::2], sorted({layers[0], layers[-1]}), layers[:1]):
        subset_trace(full, path, layers=keep)
        if path.stat().st_size <= max_mb * 2**20:
            break
    full.unlink()
    print(f"{path.name}: kept layers {keep} of {layers} to stay under {max_mb} MiB", flush=True)
    return {"trimmed_to_layers": keep, "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except FgsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    import fgsim.reference as ref
    from fgsim.reference.data import ClipLabel, LatentCodec, load_config, token_grid, video_shape
    from fgsim.reference.sample import fg_attention_fn, frame_grid, psnr, sample, sdpa_attention

    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}.get(args.dtype) or (
        torch.bfloat16 if device.type == "cuda" else torch.float32)
    model = ref.load(args.weights, device=device, dtype=dtype)
    cfg = model.config
    codec = LatentCodec.from_config(cfg)
    scfg = load_config().get("sampling", {}) | cfg.get("sampling", {})
    guidance = args.guidance if args.guidance is not None else float(scfg.get("guidance_scale", 5.0))
    shift = args.shift if args.shift is not None else float(scfg.get("shift", 3.0))
    labels = [ClipLabel.parse(x) for x in args.labels.split(",") if x.strip()]
    modes = [m.strip() for m in args.attention.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("dense", "sdpa-hook", "fg", "block")]
    if bad:
        raise FgsimError(f"unknown attention modes {bad}: choose dense, sdpa-hook, fg, block")
    if "dense" not in modes:
        modes.insert(0, "dense")
    report: dict = {"weights": str(args.weights or ref.DEFAULT_WEIGHTS), "device": str(device),
                    "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__,
                    "grid_latent": list(args.grid), "grid_tokens": list(token_grid(*args.grid)),
                    "video": list(video_shape(*args.grid)), "steps": args.steps, "guidance_scale": guidance,
                    "shift": shift, "seed": args.seed, "labels": [lb.name for lb in labels], "modes": {},
                    "captures": []}

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    common = dict(guidance_scale=guidance, shift=shift, seed=args.seed, bf16=False)

    # 1. frame grid of every label, dense
    t0 = time.perf_counter()
    lat = sample(model, labels, args.grid, steps=args.steps, **common)
    sync()
    report["samples_seconds"] = round(time.perf_counter() - t0, 3)
    frames = codec.decode(lat, clamp=True)
    down = 2 if frames.shape[-1] > 512 else 1
    Image.fromarray(frame_grid(frames, 5, down)).save(args.out / "samples.png")

    # 2. the first label with each attention mode
    def attention_for(mode: str, record: dict) -> object:
        if mode == "dense":
            return "dense"
        if mode == "sdpa-hook":
            return sdpa_attention
        from fgsim.capture.predictors import make_predictor

        pred = make_predictor(args.predictor, threshold=args.threshold, block_m=args.block_m)
        return fg_attention_fn(pred, gran_n=args.gran_n, kernel=mode, recompute_every=args.recompute_every,
                               record=record)

    first = labels[:1]
    outs = {}
    for mode in modes:
        if not args.no_timing:
            sample(model, first, args.grid, steps=1, attention=attention_for(mode, {}), **common)  # warm-up
        record: dict = {}
        sync()
        t0 = time.perf_counter()
        lat = sample(model, first, args.grid, steps=args.steps, attention=attention_for(mode, record), **common)
        sync()
        secs = time.perf_counter() - t0
        outs[mode] = codec.decode(lat, clamp=True)
        entry = {"seconds": round(secs, 4), "passes": args.steps * (2 if guidance > 1 else 1)}
        if record.get("kept"):
            entry["kept_fraction_mean"] = round(float(np.mean(record["kept"])), 6)
            entry["predictions"] = len(record["kept"])
            entry["reused"] = len(record.get("reused", []))
        if mode != "dense":
            p = psnr(outs[mode], outs["dense"])
            entry["psnr_vs_dense_db"] = round(p, 3) if p != float("inf") else "inf (identical)"
        report["modes"][mode] = entry
        print(mode, entry, flush=True)
    Image.fromarray(frame_grid(torch.cat([outs[m] for m in modes]), 5, down)).save(args.out / "compare.png")

    # 3. traces
    if args.capture:
        from fgsim.capture.hooks import Schedule, parse_layers
        from fgsim.capture.predictors import make_predictor
        from fgsim.reference.sample import capture_sample

        for grid in args.capture:
            for name in [x.strip() for x in args.capture_predictors.split(",") if x.strip()]:
                pred = make_predictor(name, threshold=args.threshold, block_m=args.block_m)
                tdir = args.trace_dir or args.out
                tdir.mkdir(parents=True, exist_ok=True)
                path = tdir / f"refdit-{'x'.join(map(str, token_grid(*grid)))}-{name}.fgt"
                res, _ = capture_sample(model, first, grid, path, pred, steps=args.steps, guidance_scale=guidance,
                                        shift=shift, seed=args.seed, schedule=Schedule.parse(args.capture_schedule),
                                        layers=parse_layers(args.capture_layers),
                                        run_info={"label": first[0].name})
                item = {"path": path.name, "grid_tokens": list(token_grid(*grid)), "predictor": pred.params(),
                        "entries": res.entries, "captured_passes": res.captured_passes,
                        "seconds": round(res.seconds, 2), "bytes": path.stat().st_size}
                item.update(_fit_size(path, args.max_trace_mb))
                report["captures"].append(item)
                print("captured", item, flush=True)
    (args.out / "sample.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("samples_seconds", "modes")}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
