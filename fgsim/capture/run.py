"""Run a transformer or a diffusers pipeline under :class:`~fgsim.capture.hooks.AttentionCapture`, write a ``.fgt``.

Masks are predicted on the attention call's device as the run goes, bit-packed and spooled to a hidden temporary
directory beside the output (the trace's metadata lists every captured pass, so the trace is assembled when the
run ends); the spool is always removed. :func:`capture_transformer` drives a bare transformer (tests, reference
DiTs); :func:`capture_pipeline` loads a pipeline from a local directory or the local Hugging Face cache offline.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fgsim.capture.hooks import AttentionCall, AttentionCapture, ModelSpec, Schedule, spec_for
from fgsim.capture.predictors import STAT_NAMES, Predictor, attention_stats
from fgsim.errors import FgsimError


@dataclass
class CaptureResult:
    """Outcome of a capture: the trace path, what was captured, and (optionally) the transformer outputs."""

    path: Path
    entries: int
    passes: int
    captured_passes: int
    seconds: float
    outputs: list[Any] = field(default_factory=list)


class _Spool:
    """Per-call predictor + stats on the call's device; packed masks spooled to disk."""

    def __init__(self, directory: Path, predictor: Predictor, stats: bool, progress: Any,
                 cross: bool = False) -> None:
        self.dir = directory
        self.cross = cross
        self.predictor = predictor
        self.stats = stats
        self.progress = progress
        self.entries: dict[tuple[int, int], tuple[Path, dict[str, list[float]] | None]] = {}
        self.shape: tuple[int, int, int, int] | None = None  # heads, S_q, S_k, D
        self.skipped = 0
        self.predict_seconds = 0.0
        self.branches: dict[int, str] = {}  # pass → branch of the captured sample

    def __call__(self, call: AttentionCall) -> None:
        import torch

        _, h, s_q, d = call.q.shape
        s_k = call.k.shape[2]
        if self.shape is None:
            if s_q != s_k and not self.cross:
                raise FgsimError(f"captured self-attention call has S_q={s_q} ≠ S_k={s_k} queries/keys; "
                                 "capture it as cross-attention (cross=True, --cross)")
            self.shape = (int(h), int(s_q), int(s_k), int(d))
        elif self.shape != (int(h), int(s_q), int(s_k), int(d)):
            self.skipped += 1  # e.g. Mochi's uncond pass with a different number of valid text tokens
            return
        t0 = time.perf_counter()
        with torch.no_grad():
            mask = self.predictor(call.q, call.k, call.key_mask, call.scale)
            st = attention_stats(call.q, call.k, call.v, mask, self.predictor.block_m, call.key_mask,
                                 call.scale) if self.stats else None
        packed = np.packbits(mask[0].cpu().numpy(), axis=-1, bitorder="little")
        self.predict_seconds += time.perf_counter() - t0
        path = self.dir / f"p{call.pass_index}_l{call.layer}.npy"
        np.save(path, packed, allow_pickle=False)
        stats = {n: st[n][0].tolist() for n in STAT_NAMES} if st is not None else None
        self.entries[(call.pass_index, call.layer)] = (path, stats)
        self.branches[call.pass_index] = call.branch
        if self.progress is not None:
            self.progress.update(1)


def _jsonable(obj: Any) -> Any:
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        pass
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return repr(obj)


def _env() -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                           "host": platform.node(), "platform": platform.platform()}
    try:
        import diffusers

        env["diffusers"] = diffusers.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def capture_transformer(transformer: Any, inputs_fn: Callable[[], Iterable[Mapping[str, Any]]], out: str | os.PathLike[str],
                        predictor: Predictor, *, schedule: Schedule | None = None,
                        layers: Sequence[int] | None = None, cross: bool = False, stats: bool = True,
                        batch_element: int = -1, spec: ModelSpec | None = None, model_name: str | None = None,
                        num_steps: int | None = None, grid: tuple[int, int, int] | None = None,
                        run_info: Mapping[str, Any] | None = None, keep_outputs: bool = False,
                        progress: bool = False, write: bool = True) -> CaptureResult | None:
    """Capture attention masks of a bare transformer and write a ``.fgt`` trace to ``out``.

    Under diffusers context parallelism (``transformer.enable_parallelism(...)``, torchrun) call it on every rank
    with ``write=(rank == 0)``: every rank runs the same hooks (the sequence all-gather of q, k, v is a
    collective); only the writing rank predicts masks and writes; the others return None.

    ``inputs_fn()`` yields one dict of forward keyword arguments per transformer pass; the optional keys
    ``"_branch"`` (``"cond"``/``"uncond"``/``"cond_uncond"``) and ``"_step"`` (int) are removed and passed to
    ``transformer.cache_context`` as a pipeline would. Runs under ``torch.no_grad()``. ``grid`` overrides the
    token grid (T, H, W) derived from the inputs (needed for the generic spec). Returns a :class:`CaptureResult`
    (``outputs`` holds each pass's first output when ``keep_outputs``).
    """
    import inspect

    import torch

    from fgsim.capture.hooks import require_diffusers

    require_diffusers("capture_transformer")
    # diffusers >= 0.41 takes cache_context(name, step_index=...); older versions only the name
    try:
        takes_step = any(p.kind is p.VAR_KEYWORD or p.name == "step_index"
                         for p in inspect.signature(transformer.cache_context).parameters.values())
    except (AttributeError, TypeError, ValueError):  # not a diffusers model: no cache context is entered below
        takes_step = False

    def run_all(cap: AttentionCapture, outputs: list[Any]) -> None:
        with torch.no_grad():
            for kwargs in inputs_fn():
                kw = dict(kwargs)
                branch = kw.pop("_branch", None)
                step = kw.pop("_step", None)
                cap.next_step = None if step is None else int(step)
                if branch is not None or step is not None:
                    ctx = (transformer.cache_context(branch or "cond", step_index=step) if takes_step else
                           transformer.cache_context(branch or "cond"))
                else:
                    ctx = _nullcontext()
                with ctx:
                    res = transformer(**kw)
                if keep_outputs:
                    outputs.append(res[0] if isinstance(res, tuple) else getattr(res, "sample", res))

    if not write:
        with AttentionCapture(transformer, lambda call: None, cross=cross, schedule=schedule, layers=layers,
                              batch_element=batch_element, spec=spec) as cap:
            run_all(cap, [])
        return None
    return _capture(transformer, run_all, out, predictor, schedule=schedule, layers=layers, cross=cross,
                    stats=stats, batch_element=batch_element, spec=spec, model_name=model_name,
                    num_steps=num_steps, grid=grid, run_info=dict(run_info or {}, driver="capture_transformer"),
                    progress=progress)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _capture(transformer: Any, run_all: Callable[[AttentionCapture, list[Any]], None],
             out: str | os.PathLike[str], predictor: Predictor, *, schedule: Schedule | None,
             layers: Sequence[int] | None, cross: bool, stats: bool, batch_element: int, spec: ModelSpec | None,
             model_name: str | None, num_steps: int | None, grid: tuple[int, int, int] | None,
             run_info: dict[str, Any], progress: bool) -> CaptureResult:
    from fgsim.trace import PassInfo, TraceMeta, TraceWriter

    out = Path(out)
    if not out.parent.is_dir():
        raise FgsimError(f"output directory {out.parent} does not exist")
    spec = spec or spec_for(transformer)
    schedule = schedule or Schedule()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="captured calls", unit="call")
    t0 = time.perf_counter()
    spool_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".spool", dir=out.parent))
    outputs: list[Any] = []
    try:
        spool = _Spool(spool_dir, predictor, stats, bar, cross=cross)
        with AttentionCapture(transformer, spool, cross=cross, schedule=schedule, layers=layers,
                              batch_element=batch_element, spec=spec) as cap:
            run_all(cap, outputs)
        if bar is not None:
            bar.close()
        if not spool.entries:
            raise FgsimError("no attention calls were captured (check --schedule and --layers against the run)")
        heads, s_q, s_k, head_dim = spool.shape  # type: ignore[misc]
        if s_q != s_k and not cross:
            raise FgsimError(f"captured self-attention calls have S_q={s_q} ≠ S_k={s_k}")
        # The grid (and any text tokens) describe the query sequence; keys are the same tokens for
        # self-attention and the s_k conditioning tokens (kv_tokens) for cross-attention.
        if grid is not None:
            g, text = tuple(grid), s_q - int(np.prod(grid))
        elif cap.grid is not None:
            g, text = cap.grid
            if int(np.prod(g)) + text != s_q:
                text = s_q - int(np.prod(g))  # e.g. Mochi keeps only the valid text tokens
        else:
            g, text = (1, 1, s_q), 0
        if text < 0:
            raise FgsimError(f"token grid {g} holds more tokens than the attention sequence ({s_q} queries)")
        text_position = spec.text_position if text > 0 else "none"
        if text > 0 and text_position == "none":
            raise FgsimError(f"sequence has {text} tokens beyond the grid {g} but the model spec has no text")
        captured = sorted({p for p, _ in spool.entries})
        by_index = {r.index: r for r in cap.passes}
        passes = tuple(PassInfo(i, by_index[i].step, spool.branches[i] if spool.branches[i] in
                                ("cond", "uncond") else "batched") for i in captured)
        cap_layers = tuple(sorted({la for _, la in spool.entries}))
        steps_seen = len({r.step for r in cap.passes})
        n_steps = num_steps or max(1, steps_seen)
        per_step = max(1, round(len(cap.passes) / max(1, steps_seen)))
        cfg = getattr(transformer, "config", {})
        provenance = {
            "kind": "captured",
            "driver": run_info.get("driver"),
            "run": run_info,
            "schedule": schedule.describe(),
            "attention": "cross" if cross else "self",
            "batch_element": batch_element,
            "pass_log": [{"index": r.index, "step": r.step, "branch": r.branch, "captured": r.captured,
                          "samples": r.samples, "timestep": r.timestep} for r in cap.passes],
            "skipped_calls": spool.skipped,
            "layer_modules": [cap.modules[la][0] for la in cap_layers],
            "capture_seconds": round(time.perf_counter() - t0, 3),
            "predict_seconds": round(spool.predict_seconds, 3),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "env": _env(),
        }
        meta = TraceMeta(
            model=model_name or spec.name, num_layers=cap.num_layers, num_heads=heads, head_dim=head_dim,
            grid=(int(g[0]), int(g[1]), int(g[2])), text_tokens=int(text), text_position=text_position,
            block_m=predictor.block_m, passes=passes, layers=cap_layers, heads=tuple(range(heads)),
            predictor=predictor.params(), provenance=_jsonable(provenance), num_steps=n_steps,
            passes_per_step=per_step,
            model_config=_jsonable({"class": type(transformer).__name__, "spec": spec.name,
                                    **(dict(cfg) if hasattr(cfg, "items") else {})}),
            stat_names=STAT_NAMES if stats else (),
            attention="cross" if cross else "self", kv_tokens=int(s_k) if cross else None)
        with TraceWriter(out, meta) as w:
            for (p, la), (path, st) in sorted(spool.entries.items()):
                packed = np.load(path, allow_pickle=False)
                mask = np.unpackbits(packed, axis=-1, count=s_k, bitorder="little").astype(bool)
                w.add(p, la, mask, {n: np.asarray(v) for n, v in st.items()} if st is not None else None)
        return CaptureResult(path=out, entries=len(spool.entries), passes=len(cap.passes),
                             captured_passes=len(captured), seconds=time.perf_counter() - t0, outputs=outputs)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(spool_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------------
# Pipelines


def resolve_model(model: str) -> Path:
    """A local pipeline directory: ``model`` itself if it is a directory, else its snapshot in the local HF cache.

    Never touches the network (``HF_HUB_OFFLINE=1``). Raises :class:`FgsimError` saying where it looked.
    """
    p = Path(model).expanduser()
    if p.exists():
        if not (p / "model_index.json").is_file():
            raise FgsimError(f"{p} is not a diffusers pipeline directory (no model_index.json)")
        return p
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        raise FgsimError("capture needs huggingface_hub/diffusers: pip install 'fgsim[capture]'") from None
    cache = constants.HF_HUB_CACHE
    if model.count("/") != 1 or model.startswith(("/", ".")):
        raise FgsimError(f"model {model!r} not found: no such directory, and not a Hugging Face repo id "
                         f"(owner/name) to look up in the local cache {cache}")
    try:
        snap = Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise FgsimError(f"model {model!r} not found: no such directory, and not in the local Hugging Face cache "
                         f"{cache} (HF_HUB_OFFLINE=1; download it first with `hf download {model}`)") from None
    if not (snap / "model_index.json").is_file():
        raise FgsimError(f"{snap} (cached {model!r}) is not a diffusers pipeline (no model_index.json)")
    return snap


def capture_pipeline(model: str, out: str | os.PathLike[str], predictor: Predictor, *, height: int, width: int,
                     frames: int, steps: int, prompt: str, negative_prompt: str | None = None,
                     guidance_scale: float | None = None, seed: int = 0, dtype: str = "bf16",
                     device: str = "cuda", schedule: Schedule | None = None, layers: Sequence[int] | None = None,
                     cross: bool = False, stats: bool = True, batch_element: int = -1,
                     progress: bool = True) -> CaptureResult:
    """Run a diffusers text-to-video pipeline offline and capture its transformer's attention into ``out``.

    ``height``/``width`` in pixels, ``frames`` video frames, ``steps`` denoising steps. The VAE decode is skipped
    (``output_type="latent"``): it does not affect the transformer's attention.
    """
    path = resolve_model(model)
    import torch

    try:
        from diffusers import DiffusionPipeline
    except ImportError:
        raise FgsimError("capture needs diffusers: pip install 'fgsim[capture]'") from None
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if dtype not in dtypes:
        raise FgsimError(f"dtype must be one of {list(dtypes)}, got {dtype!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FgsimError("device 'cuda' requested but torch sees no CUDA GPU (use --device cpu)")
    try:
        pipe = DiffusionPipeline.from_pretrained(str(path), torch_dtype=dtypes[dtype])
    except (OSError, ValueError) as exc:
        raise FgsimError(f"cannot load pipeline from {path}: {str(exc).splitlines()[0]}") from None
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    call_kwargs: dict[str, Any] = {"prompt": prompt, "height": height, "width": width, "num_frames": frames,
                                   "num_inference_steps": steps, "output_type": "latent",
                                   "generator": torch.Generator(device="cpu").manual_seed(seed)}
    if negative_prompt is not None:
        call_kwargs["negative_prompt"] = negative_prompt
    if guidance_scale is not None:
        call_kwargs["guidance_scale"] = guidance_scale
    step_bar = None
    if progress:
        from tqdm import tqdm

        step_bar = tqdm(total=steps, desc="denoising steps", unit="step")

        def on_step(pipeline: Any, i: int, t: Any, kw: dict[str, Any]) -> dict[str, Any]:
            step_bar.update(1)
            return kw

        call_kwargs["callback_on_step_end"] = on_step

    run_info = {"driver": "capture_pipeline", "pipeline": type(pipe).__name__, "model": model,
                "model_path": str(path), "height": height, "width": width, "frames": frames, "steps": steps,
                "prompt": prompt, "negative_prompt": negative_prompt, "guidance_scale": guidance_scale,
                "seed": seed, "dtype": dtype, "device": device}
    try:
        res = capture_loaded_pipeline(pipe, call_kwargs, out, predictor, schedule=schedule, layers=layers,
                                      cross=cross, stats=stats, batch_element=batch_element,
                                      model_name=Path(model).name, run_info=run_info)
        if res is None:  # only non-writing ranks get None
            raise RuntimeError("capture_loaded_pipeline returned no result for a writing call")
        return res
    finally:
        if step_bar is not None:
            step_bar.close()


def capture_loaded_pipeline(pipe: Any, call_kwargs: Mapping[str, Any], out: str | os.PathLike[str],
                            predictor: Predictor, *, write: bool = True, schedule: Schedule | None = None,
                            layers: Sequence[int] | None = None, cross: bool = False, stats: bool = True,
                            batch_element: int = -1, model_name: str | None = None,
                            run_info: Mapping[str, Any] | None = None) -> CaptureResult | None:
    """Capture ``pipe.transformer`` while running ``pipe(**call_kwargs)``; write ``out`` when ``write``.

    For context parallelism under torchrun, call this on every rank with ``write=(rank == 0)``: every rank runs the
    same hooks (the sequence all-gather of q, k, v is a collective), only the writing rank predicts and writes.
    Returns None on non-writing ranks.
    """
    import torch

    transformer = getattr(pipe, "transformer", None)
    if transformer is None:
        raise FgsimError(f"pipeline {type(pipe).__name__} has no 'transformer' component")
    info = dict(run_info or {"driver": "capture_loaded_pipeline", "pipeline": type(pipe).__name__})
    num_steps = call_kwargs.get("num_inference_steps")
    if not write:
        with AttentionCapture(transformer, lambda call: None, cross=cross, schedule=schedule, layers=layers,
                              batch_element=batch_element), torch.no_grad():
            pipe(**call_kwargs)
        return None

    def run_all(cap: AttentionCapture, outputs: list[Any]) -> None:
        with torch.no_grad():
            pipe(**call_kwargs)

    return _capture(transformer, run_all, out, predictor, schedule=schedule, layers=layers, cross=cross,
                    stats=stats, batch_element=batch_element, spec=None, model_name=model_name,
                    num_steps=int(num_steps) if num_steps else None, grid=None, run_info=info, progress=False)
