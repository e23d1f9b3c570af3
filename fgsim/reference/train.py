"""Train the reference DiT with a rectified-flow objective under a wall-clock budget.

Objective: ``x_t = (1 − t)·x0 + t·ε`` with ``ε ~ N(0, I)`` and ``t = sigmoid(n)``, ``n ~ N(0, 1)`` (logit-normal);
the model predicts ``v = ε − x0``; loss = mean squared error over all latent elements. Labels are replaced by the
null label with probability ``cfg_dropout`` (classifier-free guidance). AdamW; learning rate: linear warm-up over
``warmup_steps``, then cosine decay to ``min_lr_ratio``·peak over the *wall-clock* budget (the run ends at the
budget, whatever the step count). bf16 autocast on CUDA (fp32 master weights), fp32 on CPU. An exponential
moving average (EMA) of the weights is kept; the saved weights are the EMA's.

Training runs in *stages*, each a fraction of the budget at one latent grid and batch size (``--stage
FRACTION:TxHxW:BATCH``, latent grid before the 1×2×2 patch): by default 80 % at 8×32×56 (29 frames at 256×448,
3,584 tokens) and 20 % at the Wan-480p grid 21×60×104 (81 frames at 480×832, 32,760 tokens), so the model has seen
the grid the traces are captured at.

Determinism: model init, clip indices, noise, t and label dropout all come from ``seed``; clip ``i`` is the same
clip in any batch. (GPU kernels are not forced to be bitwise deterministic, and the step count depends on the
wall clock.)

Outputs in ``out``: ``weights.safetensors`` (EMA, bfloat16, config + run facts in its metadata), ``loss.csv``
(per logged step: elapsed seconds, stage, mean train loss since the last row, learning rate, throughput; and the
held-out loss at evaluation steps), ``loss.png``, ``train.json`` (summary).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fgsim.errors import FgsimError


@dataclass(frozen=True)
class Stage:
    """A training stage: ``fraction`` of the wall-clock budget at latent grid ``(T, h, w)`` with ``batch`` clips."""

    fraction: float
    latent_grid: tuple[int, int, int]
    batch: int

    @classmethod
    def parse(cls, text: str) -> Stage:
        """``FRACTION:TxHxW:BATCH``, e.g. ``0.8:8x32x56:48``."""
        try:
            f, g, b = text.split(":")
            grid = tuple(int(x) for x in g.lower().split("x"))
            stage = cls(float(f), grid, int(b))  # type: ignore[arg-type]
        except ValueError:
            raise FgsimError(f"bad stage {text!r}: use FRACTION:TxHxW:BATCH, e.g. 0.8:8x32x56:48") from None
        if len(stage.latent_grid) != 3 or min(stage.latent_grid) < 1 or stage.batch < 1 or not 0 < stage.fraction <= 1:
            raise FgsimError(f"bad stage {text!r}: fraction in (0, 1], three positive grid sizes, batch ≥ 1")
        if stage.latent_grid[1] % 2 or stage.latent_grid[2] % 2:
            raise FgsimError(f"bad stage {text!r}: latent height and width must be even (patch 2×2)")
        return stage

    def describe(self) -> str:
        """The ``FRACTION:TxHxW:BATCH`` form."""
        return f"{self.fraction:g}:{'x'.join(map(str, self.latent_grid))}:{self.batch}"


DEFAULT_STAGES: tuple[Stage, ...] = (Stage(0.8, (8, 32, 56), 48), Stage(0.2, (21, 60, 104), 4))


@dataclass
class TrainConfig:
    """Training settings; times in minutes/seconds, learning rates per AdamW step."""

    out: Path
    minutes: float = 10.0
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    lr: float = 6e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    cfg_dropout: float = 0.1
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None
    log_every: int = 10
    eval_every: int = 100
    eval_clips: int = 8
    max_steps: int | None = None
    compile: bool = False
    plot: bool = True
    prediction: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def lr_at(cfg: TrainConfig, step: int, frac: float) -> float:
    """Learning rate at optimizer step ``step`` (0-based) when ``frac`` of the budget has elapsed."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, frac))))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def flow_loss(model: Any, x0: Any, labels: Any, gen: Any, cfg_dropout: float = 0.0, t: Any = None,
              eps: Any = None) -> Any:
    """Rectified-flow loss (scalar tensor) of ``model`` on clean latents ``x0`` (B, C, T, h, w) and labels (B, 3).

    ``t`` (B,) and ``eps`` (like ``x0``) default to logit-normal and Gaussian draws from ``gen`` (a torch
    Generator on ``x0``'s device); labels are nulled with probability ``cfg_dropout``.
    """
    import torch

    b = x0.shape[0]
    if t is None:
        t = torch.sigmoid(torch.randn(b, generator=gen, device=x0.device))
    if eps is None:
        eps = torch.randn(x0.shape, generator=gen, device=x0.device, dtype=x0.dtype)
    if cfg_dropout > 0:
        drop = torch.rand(b, generator=gen, device=x0.device) < cfg_dropout
        labels = torch.where(drop[:, None], torch.full_like(labels, -1), labels)
    tb = t.view(b, 1, 1, 1, 1)
    xt = (1 - tb) * x0 + tb * eps
    pred = model(xt, t, labels)
    return torch.nn.functional.mse_loss(pred.float(), (eps - x0).float())


def _device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FgsimError("device 'cuda' requested but torch sees no CUDA GPU (use --device cpu)")
    return torch.device(name)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train under ``cfg``; write the outputs (module docstring) into ``cfg.out``; return the summary dict."""
    import torch

    from fgsim.reference.data import ClipDataset, LatentCodec, load_config, token_grid, video_shape
    from fgsim.reference.model import build_model, count_parameters, save_weights

    if cfg.minutes <= 0:
        raise FgsimError(f"--minutes must be positive, got {cfg.minutes}")
    total = sum(s.fraction for s in cfg.stages)
    if not cfg.stages or abs(total - 1.0) > 1e-6:
        raise FgsimError(f"stage fractions must add up to 1, got {total:g}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.device)
    bf16 = device.type == "cuda" if cfg.bf16 is None else cfg.bf16
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    config = load_config()
    if cfg.prediction is not None:
        if cfg.prediction not in ("v", "x0"):
            raise FgsimError(f"prediction must be 'v' or 'x0', got {cfg.prediction!r}")
        config = dict(config, prediction=cfg.prediction)
    codec = LatentCodec.from_config(config)
    model = build_model(config, seed=cfg.seed).to(device)
    model.train()
    params = count_parameters(model)
    ema = build_model(config, seed=cfg.seed).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    decay_params = [p for n, p in model.named_parameters() if p.dim() >= 2 and "labels" not in n]
    other_params = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "labels" not in n)]
    opt = torch.optim.AdamW([{"params": decay_params, "weight_decay": cfg.weight_decay},
                             {"params": other_params, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas,
                            fused=device.type == "cuda")
    step_fn = torch.compile(model) if cfg.compile else model

    data = ClipDataset(seed=cfg.seed, device=device)
    held_out = ClipDataset(seed=cfg.seed + 1_000_003, renderer=data.renderer)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)

    # a fixed held-out batch per stage grid: same clips, noise and t every evaluation
    eval_sets = []
    for si, st in enumerate(cfg.stages):
        n = min(cfg.eval_clips, st.batch)
        x0, lab = held_out.batch(range(si * 1000, si * 1000 + n), st.latent_grid, codec)
        g = torch.Generator(device=device).manual_seed(cfg.seed + 77 + si)
        t = torch.linspace(0.05, 0.95, n, device=device)
        eps = torch.randn(x0.shape, generator=g, device=device)
        eval_sets.append((x0, lab, t, eps))

    def evaluate(m: Any, si: int) -> float:
        x0, lab, t, eps = eval_sets[si]
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            losses = [float(flow_loss(m, x0[i:i + 2], lab[i:i + 2], None, 0.0, t[i:i + 2], eps[i:i + 2]))
                      * len(t[i:i + 2]) for i in range(0, len(t), 2)]
        return sum(losses) / len(t)

    budget = cfg.minutes * 60.0
    bounds = []
    acc = 0.0
    for st in cfg.stages:
        acc += st.fraction
        bounds.append(acc * budget)
    rows: list[dict[str, Any]] = []
    fields = ["step", "elapsed_s", "stage", "grid", "batch", "train_loss", "lr", "clips_per_s", "tokens_per_s",
              "eval_loss", "eval_loss_ema"]
    csv_path = out / "loss.csv"
    fh = open(csv_path, "w", newline="", encoding="utf-8")
    writer = csv.DictWriter(fh, fieldnames=fields)
    writer.writeheader()

    def log(row: dict[str, Any]) -> None:
        rows.append(row)
        writer.writerow({k: row.get(k, "") for k in fields})
        fh.flush()

    t_start = time.perf_counter()
    step, clip_counter, data_s, data_steps, stage_i = 0, 0, 0.0, 0, 0
    ema_params, model_params = list(ema.parameters()), list(model.parameters())
    run_loss, run_n, last_t, last_clips = 0.0, 0, t_start, 0
    tokens_seen = 0
    first_eval = evaluate(model, 0)
    log({"step": 0, "elapsed_s": 0.0, "stage": 0, "grid": "x".join(map(str, cfg.stages[0].latent_grid)),
         "batch": cfg.stages[0].batch, "eval_loss": round(first_eval, 6), "eval_loss_ema": round(first_eval, 6)})
    try:
        while True:
            elapsed = time.perf_counter() - t_start
            if elapsed >= budget or (cfg.max_steps is not None and step >= cfg.max_steps):
                break
            while stage_i < len(cfg.stages) - 1 and elapsed >= bounds[stage_i]:
                stage_i += 1
            st = cfg.stages[stage_i]
            timed = (step + 1) % cfg.log_every == 0  # time data generation on logged steps only (needs syncs)
            if timed and device.type == "cuda":
                torch.cuda.synchronize()
            d0 = time.perf_counter()
            x0, lab = data.batch(range(clip_counter, clip_counter + st.batch), st.latent_grid, codec)
            if timed:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                data_s += time.perf_counter() - d0
                data_steps += 1
            clip_counter += st.batch
            lr = lr_at(cfg, step, elapsed / budget)
            for grp in opt.param_groups:
                grp["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = flow_loss(step_fn, x0, lab, gen, cfg.cfg_dropout)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, model_params, 1 - decay)
            step += 1
            tokens_seen += st.batch * math.prod(token_grid(*st.latent_grid))
            run_loss = run_loss + loss.detach()  # stays on the device: no sync per step
            run_n += 1
            do_eval = cfg.eval_every > 0 and step % cfg.eval_every == 0
            if step % cfg.log_every == 0 or do_eval:
                run_loss = float(run_loss)
                if not math.isfinite(run_loss):
                    raise FgsimError(f"training diverged by step {step} (loss {run_loss}); lower --lr")
                now = time.perf_counter()
                clips = clip_counter - last_clips
                row = {"step": step, "elapsed_s": round(now - t_start, 3), "stage": stage_i,
                       "grid": "x".join(map(str, st.latent_grid)), "batch": st.batch,
                       "train_loss": round(run_loss / run_n, 6), "lr": f"{lr:.3e}",
                       "clips_per_s": round(clips / max(now - last_t, 1e-9), 3),
                       "tokens_per_s": round(clips * math.prod(token_grid(*st.latent_grid)) / max(now - last_t, 1e-9))}
                if do_eval:
                    model.eval()
                    row["eval_loss"] = round(evaluate(model, stage_i), 6)
                    row["eval_loss_ema"] = round(evaluate(ema, stage_i), 6)
                    model.train()
                log(row)
                run_loss, run_n, last_t, last_clips = 0.0, 0, time.perf_counter(), clip_counter
        wall = time.perf_counter() - t_start
        model.eval()
        final = {f"eval_loss_stage{si}": round(evaluate(model, si), 6) for si in range(len(cfg.stages))}
        final.update({f"eval_loss_ema_stage{si}": round(evaluate(ema, si), 6) for si in range(len(cfg.stages))})
        log({"step": step, "elapsed_s": round(time.perf_counter() - t_start, 3), "stage": stage_i,
             "grid": "x".join(map(str, cfg.stages[stage_i].latent_grid)), "batch": cfg.stages[stage_i].batch,
             "eval_loss": final[f"eval_loss_stage{stage_i}"], "eval_loss_ema": final[f"eval_loss_ema_stage{stage_i}"]})
    finally:
        fh.close()

    env = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    try:
        import diffusers

        env["diffusers"] = diffusers.__version__
    except ImportError:  # pragma: no cover - diffusers is needed to build the model at all
        pass
    summary = {
        "parameters": params, "steps": step, "clips_seen": clip_counter, "tokens_seen": tokens_seen,
        "wall_s": round(wall, 3), "budget_s": budget, "bf16": bf16,
        "data_s_per_step": round(data_s / max(data_steps, 1), 5), "data_fraction": round(
            data_s / max(data_steps, 1) * step / max(wall, 1e-9), 4),
        "eval_loss_initial": round(first_eval, 6), **final,
        "stages": [s.describe() for s in cfg.stages],
        "stage_grids": [{"latent": list(s.latent_grid), "tokens": list(token_grid(*s.latent_grid)),
                         "video": list(video_shape(*s.latent_grid))} for s in cfg.stages],
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "stages"},
        "env": env,
    }
    save_weights(ema, out / "weights.safetensors", info={"trained_by": "fgsim.reference.train", **{
        k: summary[k] for k in ("parameters", "steps", "clips_seen", "wall_s", "stages", "bf16", "env")},
        "seed": cfg.seed, "weights": "EMA", "decay": cfg.ema_decay})
    (out / "train.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if cfg.plot:
        plot_loss(csv_path, out / "loss.png")
    return summary


def plot_loss(csv_path: str | Path, png_path: str | Path) -> Path | None:
    """Plot train loss (and held-out loss, raw and EMA weights) against wall-clock seconds; None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    with open(csv_path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fig, ax = plt.subplots(figsize=(7, 4))
    tr = [(float(r["elapsed_s"]), float(r["train_loss"])) for r in rows if r["train_loss"]]
    ev = [(float(r["elapsed_s"]), float(r["eval_loss"])) for r in rows if r["eval_loss"]]
    ee = [(float(r["elapsed_s"]), float(r["eval_loss_ema"])) for r in rows if r["eval_loss_ema"]]
    if tr:
        ax.plot(*zip(*tr, strict=True), lw=0.8, alpha=0.7, label="train (mean since last row)")
    if ev:
        ax.plot(*zip(*ev, strict=True), "o-", ms=3, label="held-out, fixed t/noise")
    if ee:
        ax.plot(*zip(*ee, strict=True), "s--", ms=3, label="held-out, EMA weights")
    stages = sorted({(int(r["stage"]), r["grid"]) for r in rows})
    for si, grid in stages[1:]:
        t0 = min(float(r["elapsed_s"]) for r in rows if int(r["stage"]) == si)
        ax.axvline(t0, color="grey", ls=":", lw=0.8)
        ax.text(t0, ax.get_ylim()[1], f" stage {si}: {grid}", va="top", fontsize=7)
    ax.set_xlabel("wall-clock seconds")
    ax.set_ylabel("rectified-flow loss (MSE of v)")
    ax.set_yscale("log")
    ax.set_title("fgsim reference DiT training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``validation/train_reference.py``."""
    p = argparse.ArgumentParser(description="Train fgsim's reference video DiT (rectified flow, wall-clock budget).")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of the training loop, minutes")
    p.add_argument("--stage", action="append", type=Stage.parse, dest="stages", metavar="F:TxHxW:B",
                   help="training stage (repeatable): budget fraction, latent grid before the 2×2 patch, batch; "
                        f"default {' '.join(s.describe() for s in DEFAULT_STAGES)}")
    p.add_argument("--lr", type=float, default=6e-4, help="peak AdamW learning rate")
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--cfg-dropout", type=float, default=0.1, help="probability of the null label")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--log-every", type=int, default=10, help="steps between CSV rows")
    p.add_argument("--eval-every", type=int, default=100, help="steps between held-out evaluations (0: never)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps even within budget")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--prediction", choices=("v", "x0"), default=None,
                   help="network output: v (default, config.json) or x0 (velocity loss on an x-prediction)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse arguments, train, print the summary; exit status 2 with one line on bad input."""
    import sys

    args = build_parser().parse_args(argv)
    cfg = TrainConfig(out=args.out, minutes=args.minutes, stages=tuple(args.stages or DEFAULT_STAGES), lr=args.lr,
                      warmup_steps=args.warmup_steps, cfg_dropout=args.cfg_dropout, ema_decay=args.ema_decay,
                      seed=args.seed, device=args.device, bf16=False if args.fp32 else None,
                      log_every=args.log_every, eval_every=args.eval_every, max_steps=args.max_steps,
                      compile=args.compile, plot=not args.no_plot, prediction=args.prediction)
    try:
        summary = train(cfg)
    except FgsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    keys = ("parameters", "steps", "clips_seen", "wall_s", "data_fraction", "eval_loss_initial")
    print(json.dumps({k: summary[k] for k in keys} | {k: v for k, v in summary.items() if k.startswith("eval_loss_")},
                     indent=1))
    return 0
