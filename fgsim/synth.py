"""Synthetic, structured M×1 slice masks shaped like those of video DiTs.

Each head gets a 3D spatio-temporal window around every query (in latent token coordinates), plus
attention-sink keys in the first frame, dense text tokens and a few global key columns. Window sizes vary
per layer and per denoising step. Every default cites the published statistic it comes from; all numbers
live in :class:`SynthParams` so a user can change them (``fgsim synth --help``).

Sources: Sparse VideoGen (arXiv 2502.01776; svg-project.github.io), Sliding Tile Attention (arXiv 2502.04507;
the mask files of hao-ai-lab/FastVideo), Radial Attention, rope2sink, MInference (arXiv 2407.02490):

* Head classes — Sparse VideoGen (SVG project page): HunyuanVideo heads are 29.2% spatial, 66.7% temporal,
  4.1% ambiguous.
* Window sizes — Sliding Tile Attention's searched masks for HunyuanVideo (30×48×80 latents in 6×8×8 tiles,
  i.e. a 5×6×10 tile canvas): temporal-type window (5,3,3) tiles = full time × 1/2 height × 3/10 width
  (density 0.15), spatial-type window (1,6,10) = 1/5 time × full frame (0.20), mixed (3,3,5) = 3/5 × 1/2 × 1/2
  (0.15). STA's sparse steps average 0.165 tile density, per-layer means 0.151–0.200, the last ~10% of layers
  densest.
* Dense early steps — STA keeps steps 0–14 of 50 dense (30%); SVG keeps 10–20%, Radial 12 of 50.
* Sinks — rope2sink: 3D-RoPE video models (Wan2.1: 477× sink/random importance) put sinks on first-frame
  patches; sinks concentrate in the deeper half of the network.
* Text — joint-attention models (HunyuanVideo, CogVideoX) attend to all text tokens; text rows attend to all.
* Global columns — MInference's "vertical" pattern: a few key columns every query keeps.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np

from fgsim.trace import PassInfo, TraceMeta, TraceWriter
from fgsim.views import ceil_div

#: Window per head class as fractions of the (T, H, W) grid extents: STA's (5,3,3), (1,6,10), (3,3,5) tile
#: windows on its 5×6×10 tile canvas.
DEFAULT_WINDOWS: dict[str, tuple[float, float, float]] = {
    "temporal": (5 / 5, 3 / 6, 3 / 10),
    "spatial": (1 / 5, 6 / 6, 10 / 10),
    "mixed": (3 / 5, 3 / 6, 5 / 10),
}
#: Head-class mix: SVG's HunyuanVideo statistic (spatial 29.2%, temporal 66.7%, ambiguous 4.1% → mixed).
DEFAULT_HEAD_MIX: dict[str, float] = {"spatial": 0.292, "temporal": 0.667, "mixed": 0.041}


@dataclass(frozen=True)
class SynthParams:
    """Parameters of the synthetic mask generator (fractions are of the relevant extent or count)."""

    windows: dict[str, tuple[float, float, float]] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    head_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_HEAD_MIX))
    layer_spread: float = 0.25  # ±25% window scale across layers (STA per-layer density 0.151–0.200)
    last_layers_boost: float = 0.2  # last 10% of layers +20% window (STA: last 6 of 60 layers densest)
    dense_step_fraction: float = 0.3  # first 30% of steps dense (STA: steps 0–14 of 50)
    step_shrink: float = 0.15  # windows shrink by up to 15% over the sparse steps
    sink_fraction: float = 0.05  # fraction of first-frame tokens that are sinks (rope2sink: first-frame patches)
    sink_from_layer_fraction: float = 0.5  # sinks only in the deeper half of the network (rope2sink)
    global_key_fraction: float = 0.005  # fraction of keys kept by every query of a head (vertical columns)
    seed: int = 0

    def to_json(self) -> dict[str, object]:
        """JSON-serialisable parameters, stored as the trace's generator provenance."""
        out = asdict(self)
        out["windows"] = {k: list(v) for k, v in self.windows.items()}
        return out


def _token_coords(grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, h, w = grid
    tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    return tt.ravel(), hh.ravel(), ww.ravel()


def _dilate(occ: np.ndarray, radius: tuple[int, int, int]) -> np.ndarray:
    """Separable box dilation of a bool array ``(B, T, H, W)`` by half-widths ``radius`` along T, H, W."""
    from scipy.ndimage import maximum_filter1d

    out = occ.view(np.uint8)
    for axis, r in zip((1, 2, 3), radius, strict=True):
        if r > 0:
            out = maximum_filter1d(out, size=2 * r + 1, axis=axis, mode="constant", cval=0)
    return out.astype(bool)


@functools.lru_cache(maxsize=16)
def _window_mask_cached(grid: tuple[int, int, int], block_m: int, radius: tuple[int, int, int],
                        text_tokens: int, text_position: str) -> np.ndarray:
    mask = window_mask(grid, block_m, radius, text_tokens, text_position)
    mask.setflags(write=False)
    return mask


def window_mask(grid: tuple[int, int, int], block_m: int, radius: tuple[int, int, int],
                text_tokens: int = 0, text_position: str = "none") -> np.ndarray:
    """M×1 mask of a 3D window: query block b keeps key j if some query of b has j within ``radius``.

    Returns bool ``(QB, N)`` with N = T·H·W + text_tokens; text keys are kept by every block and blocks
    holding a text query keep every key.
    """
    t, h, w = grid
    nv = t * h * w
    n = nv + text_tokens
    qb = ceil_div(n, block_m)
    video_start = text_tokens if text_position == "before" else 0
    # occupancy of each query block on the video grid
    tok = np.arange(n)
    block_of = tok // block_m
    is_video = (tok >= video_start) & (tok < video_start + nv)
    occ = np.zeros((qb, nv), dtype=bool)
    occ[block_of[is_video], tok[is_video] - video_start] = True
    dil = _dilate(occ.reshape(qb, t, h, w), radius).reshape(qb, nv)
    mask = np.zeros((qb, n), dtype=bool)
    mask[:, video_start:video_start + nv] = dil
    if text_tokens:
        mask[:, ~is_video] = True  # every block keeps all text keys
        text_blocks = np.unique(block_of[~is_video])
        mask[text_blocks] = True  # text queries attend to everything
    return mask


def _layer_scale(layer: int, num_layers: int, params: SynthParams, rng: np.random.Generator) -> float:
    scale = 1.0 + params.layer_spread * (2.0 * rng.random() - 1.0)
    if layer >= num_layers - max(1, round(0.1 * num_layers)):
        scale *= 1.0 + params.last_layers_boost
    return scale


def _step_scale(step: int, num_steps: int, params: SynthParams) -> float | None:
    """None for a dense step; otherwise a window multiplier shrinking over the sparse steps."""
    first_sparse = round(params.dense_step_fraction * num_steps)
    if step < first_sparse:
        return None
    progress = (step - first_sparse) / max(1, num_steps - 1 - first_sparse)
    return 1.0 - params.step_shrink * progress


def synth_entry(meta: TraceMeta, pass_info: PassInfo, layer: int, params: SynthParams) -> np.ndarray:
    """The bool mask ``(len(meta.heads), QB, N)`` of one synthetic (pass, layer)."""
    grid = meta.grid
    n = meta.n_tokens
    qb = meta.n_qblocks
    # Head classes and per-layer scale depend only on (seed, layer): stable across steps (AdaSpa, STA: 57%
    # of heads keep one window across steps); the per-head global columns depend on (seed, layer, head).
    layer_rng = np.random.default_rng([params.seed, layer])
    classes = list(params.head_mix)
    probs = np.array([params.head_mix[c] for c in classes], dtype=float)
    head_class = layer_rng.choice(len(classes), size=meta.num_heads, p=probs / probs.sum())
    layer_scale = _layer_scale(layer, meta.num_layers, params, layer_rng)
    step_scale = _step_scale(pass_info.step, meta.num_steps, params)
    out = np.empty((len(meta.heads), qb, n), dtype=bool)
    if step_scale is None:
        out[:] = True
        return out
    video_start = meta.text_tokens if meta.text_position == "before" else 0
    _, h, w = grid
    sinks_on = layer >= params.sink_from_layer_fraction * meta.num_layers
    for i, head in enumerate(meta.heads):
        frac = params.windows[classes[head_class[head]]]
        scale = layer_scale * step_scale
        radius = tuple(int(min(e, max(1.0, f * scale * e)) // 2) for f, e in zip(frac, grid, strict=True))
        mask = _window_mask_cached(grid, meta.block_m, radius, meta.text_tokens, meta.text_position).copy()
        head_rng = np.random.default_rng([params.seed, layer, head])
        n_global = int(round(params.global_key_fraction * n))
        if n_global:
            mask[:, head_rng.choice(n, size=n_global, replace=False)] = True
        if sinks_on and params.sink_fraction > 0:
            frame0 = h * w
            n_sink = max(1, int(round(params.sink_fraction * frame0)))
            mask[:, video_start + head_rng.choice(frame0, size=n_sink, replace=False)] = True
        out[i] = mask
    return out


def default_passes(num_steps: int, passes_per_step: int, every: int) -> tuple[PassInfo, ...]:
    """Passes at every ``every``-th step, all CFG branches of each captured step."""
    branches = ("cond", "uncond") if passes_per_step == 2 else ("cond",) * passes_per_step
    out = []
    for step in range(0, num_steps, every):
        for k in range(passes_per_step):
            out.append(PassInfo(index=step * passes_per_step + k, step=step, branch=branches[k]))
    return tuple(out)


def synth_trace(path: str, *, model: str = "synthetic-wan2.1-1.3b", grid: tuple[int, int, int] = (21, 30, 52),
                num_layers: int = 30, num_heads: int = 12, head_dim: int = 128, text_tokens: int = 0,
                text_position: str = "none", block_m: int = 64, num_steps: int = 50, passes_per_step: int = 2,
                passes: tuple[PassInfo, ...] | None = None, layers: tuple[int, ...] | None = None,
                heads: tuple[int, ...] | None = None, params: SynthParams | None = None,
                progress: bool = False) -> TraceMeta:
    """Write a synthetic trace to ``path`` and return its metadata. Defaults: Wan2.1-1.3B at 480p."""
    params = params or SynthParams()
    meta = TraceMeta(
        model=model, num_layers=num_layers, num_heads=num_heads, head_dim=head_dim, grid=tuple(grid),
        text_tokens=text_tokens, text_position=text_position, block_m=block_m,
        passes=passes or default_passes(num_steps, passes_per_step, every=10),
        layers=layers or tuple(range(num_layers)), heads=heads or tuple(range(num_heads)),
        predictor={"name": "synthetic-window"},
        provenance={"kind": "synthetic", "generator": "fgsim.synth", "params": params.to_json()},
        num_steps=num_steps, passes_per_step=passes_per_step,
    )
    items = [(p, layer) for p in meta.passes for layer in meta.layers]
    with TraceWriter(path, meta) as writer:
        iterator = items
        if progress:
            from tqdm import tqdm

            iterator = tqdm(items, desc="synth", unit="entry")
        for pass_info, layer in iterator:
            writer.add(pass_info.index, layer, synth_entry(meta, pass_info, layer, params))
    return meta
