"""Procedural video clips for the reference DiT, their class labels, and the fixed latent codec.

**Clips.** Every clip is a function of ``(seed, index)`` only (its parameters are drawn from
``numpy.random.default_rng([seed, index])``), rendered in torch on any device, batched:

- *background*: one of :data:`IMAGES` — photographs bundled inside scikit-image (``skimage.data``; no download),
  centre-cropped to 2:3 and resized to a 512×768 canvas — seen through a moving camera window (one of
  :data:`MOTIONS`: static, pans in four directions, zoom in/out; per-frame speeds, clamped to stay on the canvas);
- *foreground* (when the label's ``shapes`` factor is 1): 2–4 textured shapes (ellipse, rectangle, triangle; textures
  from :data:`TEXTURES`, tinted) moving at constant velocity with bounces off the frame edges and rotating, composited
  back to front with anti-aliased edges, so they occlude each other and the background.

**Labels.** A clip's class is ``(image, motion, shapes)`` — 8 × 7 × 2 = 112 classes; ``class_id =
(image·7 + motion)·2 + shapes``. The model turns the three factors into a few "text" tokens for cross-attention
(:class:`fgsim.reference.model.LabelTokens`); ``-1`` in a factor is the null label (classifier-free guidance).

**Latent codec** (:class:`LatentCodec`) — fixed, exactly invertible, documented so that a token grid *is* a clip:
frames ``(B, 3, F, H, W)`` in [0, 1] with ``F = 4·T − 3`` and ``H = 8·h``, ``W = 8·w``. Frame 0 is repeated 3 times
in front (so latent frame 0 holds frame 0 alone, as Wan's causal VAE encodes the first frame alone), then
pixel-unshuffle by 4 frames × 8 × 8 pixels: latent channel ``((c·4 + dt)·8 + dy)·8 + dx`` at latent position
``(t, i, j)`` holds colour ``c`` of frame ``4t + dt − 3`` (frame 0 for ``t = 0``), pixel ``(8i + dy, 8j + dx)``;
768 channels. Each channel is then normalised by its colour's mean and standard deviation (``config.json``).
Patchified by the transformer's (1, 2, 2) patch, one token is 4 frames × 16 × 16 pixels, so the Wan-480p grid
21 × 30 × 52 = 32,760 tokens is exactly an 81-frame 480×832 clip (Wan's own VAE maps the same clip to the same
grid). Decoding reads frame 0 from the last copy (``dt = 3``). The pixel rearrangement is exact (bit for bit);
the normalisation ``(x − mean) / std`` and its inverse round-trip to within float32 rounding (≈ 1e-7).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from fgsim.errors import FgsimError

if TYPE_CHECKING:
    import torch

#: Background photographs: names of ``skimage.data`` functions (``motorcycle`` = left view of stereo_motorcycle).
IMAGES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                           "immunohistochemistry", "retina", "motorcycle")
#: Camera motions, in label order.
MOTIONS: tuple[str, ...] = ("static", "pan_right", "pan_left", "pan_down", "pan_up", "zoom_in", "zoom_out")
#: Shape textures: ``skimage.data`` images (grey ones are tinted per shape).
TEXTURES: tuple[str, ...] = ("brick", "grass", "gravel", "coins", "colorwheel", "camera")
#: Values of the ``shapes`` factor.
SHAPES: tuple[str, ...] = ("none", "shapes")
#: Number of classes (image × motion × shapes).
NUM_CLASSES: int = len(IMAGES) * len(MOTIONS) * len(SHAPES)
#: Canvas every background photograph is resized to, (height, width) in pixels.
CANVAS: tuple[int, int] = (512, 768)
#: Texture tile size, pixels.
TEXTURE_SIZE: int = 256
#: Most shapes in one clip.
MAX_SHAPES: int = 4
#: Temporal and spatial compression of the latent codec (frames, pixels).
T_FACTOR: int = 4
S_FACTOR: int = 8
#: Latent channels: 3 colours × 4 frames × 8 × 8 pixels.
LATENT_CHANNELS: int = 3 * T_FACTOR * S_FACTOR * S_FACTOR


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise FgsimError("the reference DiT needs torch: pip install 'fgsim[capture]'") from None
    return torch


# --------------------------------------------------------------------------------------------------------------------
# Shapes of clips and latents


def video_shape(latent_frames: int, latent_height: int, latent_width: int) -> tuple[int, int, int]:
    """Pixel clip ``(frames, height, width)`` of a latent grid ``(T, h, w)`` (before the 1×2×2 patch).

    ``frames = 4·T − 3``, ``height = 8·h``, ``width = 8·w``; Wan 480p: (21, 60, 104) → (81, 480, 832).
    """
    if min(latent_frames, latent_height, latent_width) < 1:
        raise FgsimError(f"latent grid must be positive, got {(latent_frames, latent_height, latent_width)}")
    return T_FACTOR * latent_frames - (T_FACTOR - 1), S_FACTOR * latent_height, S_FACTOR * latent_width


def latent_shape(frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Latent grid ``(T, h, w)`` of a pixel clip; raises :class:`FgsimError` unless ``frames ≡ 1 (mod 4)`` and
    ``height``, ``width`` are multiples of 8."""
    if frames < 1 or (frames - 1) % T_FACTOR or height % S_FACTOR or width % S_FACTOR or min(height, width) < 1:
        raise FgsimError(f"clip {frames}×{height}×{width} is not encodable: need frames = 4·T − 3 and "
                         f"height, width multiples of {S_FACTOR}")
    return (frames + T_FACTOR - 1) // T_FACTOR, height // S_FACTOR, width // S_FACTOR


def token_grid(latent_frames: int, latent_height: int, latent_width: int,
               patch: Sequence[int] = (1, 2, 2)) -> tuple[int, int, int]:
    """Transformer token grid ``(T, H, W)`` of a latent grid after the ``patch`` (default Wan's (1, 2, 2))."""
    pt, ph, pw = (int(p) for p in patch)
    if latent_frames % pt or latent_height % ph or latent_width % pw:
        raise FgsimError(f"latent grid {(latent_frames, latent_height, latent_width)} is not divisible by "
                         f"patch {tuple(patch)}")
    return latent_frames // pt, latent_height // ph, latent_width // pw


# --------------------------------------------------------------------------------------------------------------------
# Latent codec


@dataclass(frozen=True)
class LatentCodec:
    """The fixed pixel-unshuffle latent encoding (module docstring). ``mean``/``std``: per colour (R, G, B) of
    pixel values in [0, 1], applied to every latent channel of that colour."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None) -> LatentCodec:
        """The codec of ``config["latent"]`` (default: the package's ``config.json``)."""
        lat = (config or load_config())["latent"]
        return cls(mean=tuple(float(x) for x in lat["mean"]), std=tuple(float(x) for x in lat["std"]))  # type: ignore[arg-type]

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        torch = _torch()
        per = T_FACTOR * S_FACTOR * S_FACTOR
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).repeat_interleave(per)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).repeat_interleave(per)
        return mean.view(1, -1, 1, 1, 1), std.view(1, -1, 1, 1, 1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, 3, F, H, W)`` in [0, 1] → normalised latents ``(B, 768, T, H/8, W/8)``, same dtype."""
        torch = _torch()
        if frames.dim() != 5 or frames.shape[1] != 3:
            raise FgsimError(f"frames must be (B, 3, F, H, W), got {tuple(frames.shape)}")
        b, _, f, h, w = frames.shape
        t, lh, lw = latent_shape(f, h, w)
        x = torch.cat([frames[:, :, :1].expand(-1, -1, T_FACTOR - 1, -1, -1), frames], dim=2)
        x = x.reshape(b, 3, t, T_FACTOR, lh, S_FACTOR, lw, S_FACTOR).permute(0, 1, 3, 5, 7, 2, 4, 6)
        x = x.reshape(b, LATENT_CHANNELS, t, lh, lw)
        mean, std = self._stats(x)
        return (x - mean) / std

    def decode(self, latents: torch.Tensor, clamp: bool = False) -> torch.Tensor:
        """Latents ``(B, 768, T, h, w)`` → frames ``(B, 3, 4T − 3, 8h, 8w)`` (values in [0, 1] for encoded clips;
        ``clamp`` clips generated ones to [0, 1])."""
        if latents.dim() != 5 or latents.shape[1] != LATENT_CHANNELS:
            raise FgsimError(f"latents must be (B, {LATENT_CHANNELS}, T, h, w), got {tuple(latents.shape)}")
        b, _, t, lh, lw = latents.shape
        mean, std = self._stats(latents)
        x = latents * std + mean
        x = x.reshape(b, 3, T_FACTOR, S_FACTOR, S_FACTOR, t, lh, lw).permute(0, 1, 5, 2, 6, 3, 7, 4)
        x = x.reshape(b, 3, T_FACTOR * t, S_FACTOR * lh, S_FACTOR * lw)[:, :, T_FACTOR - 1:]
        return x.clamp(0.0, 1.0) if clamp else x


# --------------------------------------------------------------------------------------------------------------------
# Config


def load_config(path: Any = None) -> dict[str, Any]:
    """The reference model's configuration (``fgsim/data/reference/config.json`` by default) as a dict."""
    from fgsim.reference import CONFIG_PATH

    p = CONFIG_PATH if path is None else path
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise FgsimError(f"{p}: cannot read reference config ({exc})") from None


# --------------------------------------------------------------------------------------------------------------------
# Labels


@dataclass(frozen=True)
class ClipLabel:
    """A clip's class as its three factors (indices into :data:`IMAGES`, :data:`MOTIONS`, :data:`SHAPES`)."""

    image: int
    motion: int
    shapes: int

    @property
    def class_id(self) -> int:
        """``(image·7 + motion)·2 + shapes``, in ``[0, NUM_CLASSES)``."""
        return (self.image * len(MOTIONS) + self.motion) * len(SHAPES) + self.shapes

    @classmethod
    def from_class_id(cls, class_id: int) -> ClipLabel:
        """Inverse of :attr:`class_id`; raises :class:`FgsimError` out of range."""
        if not 0 <= class_id < NUM_CLASSES:
            raise FgsimError(f"class id {class_id} out of range [0, {NUM_CLASSES})")
        rest, shapes = divmod(class_id, len(SHAPES))
        image, motion = divmod(rest, len(MOTIONS))
        return cls(image, motion, shapes)

    @classmethod
    def parse(cls, text: str) -> ClipLabel:
        """``"IMAGE/MOTION/SHAPES"`` by name (e.g. ``"coffee/zoom_in/shapes"``) or a class id."""
        t = text.strip()
        if t.isdigit():
            return cls.from_class_id(int(t))
        parts = t.split("/")
        if len(parts) != 3:
            raise FgsimError(f"bad label {text!r}: use IMAGE/MOTION/SHAPES, e.g. 'coffee/zoom_in/shapes', or an id")
        try:
            return cls(IMAGES.index(parts[0]), MOTIONS.index(parts[1]), SHAPES.index(parts[2]))
        except ValueError:
            raise FgsimError(f"bad label {text!r}: images {IMAGES}, motions {MOTIONS}, shapes {SHAPES}") from None

    @property
    def name(self) -> str:
        """``IMAGE/MOTION/SHAPES``."""
        return f"{IMAGES[self.image]}/{MOTIONS[self.motion]}/{SHAPES[self.shapes]}"

    def as_list(self) -> list[int]:
        """``[image, motion, shapes]`` — one row of the model's label tensor."""
        return [self.image, self.motion, self.shapes]


# --------------------------------------------------------------------------------------------------------------------
# Clip parameters (numpy, per clip, deterministic)


@dataclass(frozen=True)
class ClipParams:
    """Everything that defines one clip, independent of its resolution and length.

    Camera: window half-extent ``scale`` (fraction of the canvas width) and its centre, in canvas coordinates
    [-1, 1]; motion speeds are per frame. Shapes: arrays of length :data:`MAX_SHAPES` (``active`` marks real ones),
    positions/sizes in units of the frame height (x from −aspect to +aspect), angles in radians.
    """

    label: ClipLabel
    scale: float
    center: tuple[float, float]
    pan_speed: float
    zoom_rate: float
    active: np.ndarray
    kind: np.ndarray
    texture: np.ndarray
    tint: np.ndarray
    size: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    angle: np.ndarray
    spin: np.ndarray
    tex_offset: np.ndarray
    tex_scale: np.ndarray


def clip_params(seed: int, index: int, label: ClipLabel | None = None) -> ClipParams:
    """The parameters of clip ``index`` of the dataset with ``seed`` (label drawn uniformly unless given)."""
    rng = np.random.default_rng([int(seed), int(index)])
    drawn = ClipLabel(int(rng.integers(len(IMAGES))), int(rng.integers(len(MOTIONS))), int(rng.integers(2)))
    label = label or drawn
    scale = float(rng.uniform(0.35, 0.7))
    center = (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
    pan_speed = float(rng.uniform(0.008, 0.025))
    zoom_rate = float(rng.uniform(0.006, 0.015))
    n = MAX_SHAPES
    active = np.zeros(n, bool)
    count = int(rng.integers(2, n + 1))  # drawn for every clip, so a label override keeps the other draws
    if label.shapes:
        active[:count] = True
    speed = rng.uniform(0.005, 0.03, n)
    heading = rng.uniform(0, 2 * np.pi, n)
    return ClipParams(
        label=label, scale=scale, center=center, pan_speed=pan_speed, zoom_rate=zoom_rate, active=active,
        kind=rng.integers(0, 3, n), texture=rng.integers(0, len(TEXTURES), n),
        tint=rng.uniform(0.35, 1.0, (n, 3)), size=rng.uniform(0.15, 0.4, n),
        pos=np.stack([rng.uniform(-0.8, 0.8, n), rng.uniform(-0.7, 0.7, n)], 1),
        vel=np.stack([speed * np.cos(heading), speed * np.sin(heading)], 1),
        angle=rng.uniform(0, 2 * np.pi, n), spin=rng.uniform(-0.04, 0.04, n),
        tex_offset=rng.uniform(-0.6, 0.6, (n, 2)), tex_scale=rng.uniform(0.25, 0.5, n))


def camera_path(p: ClipParams, frames: int, aspect: float) -> np.ndarray:
    """Affine camera per frame, float64 ``(frames, 4)``: ``(sx, sy, cx, cy)`` mapping output coordinates
    ``u, v ∈ [-1, 1]`` to canvas coordinates ``(sx·u + cx, sy·v + cy)``. ``aspect`` = clip height / width."""
    motion = MOTIONS[p.label.motion]
    canvas_ratio = CANVAS[1] / CANVAS[0]
    t = np.arange(frames, dtype=np.float64)
    s = np.full(frames, p.scale)
    if motion in ("zoom_in", "zoom_out"):
        total = min(p.zoom_rate * max(frames - 1, 0), math.log(1 / 0.45))  # log of the zoom factor
        lz = t / max(frames - 1, 1) * total
        s = p.scale * np.exp(-lz if motion == "zoom_in" else lz - total)
    sy = s * aspect * canvas_ratio
    smax, symax = float(s.max()), float(sy.max())
    room_x, room_y = 1 - smax, 1 - symax
    cx = np.full(frames, p.center[0] * room_x)
    cy = np.full(frames, p.center[1] * room_y)
    if motion.startswith("pan"):
        horizontal = motion in ("pan_right", "pan_left")
        room = room_x if horizontal else room_y
        dist = min(p.pan_speed * max(frames - 1, 0), 2 * room)
        start = -room + (p.center[0 if horizontal else 1] + 1) / 2 * (2 * room - dist)
        path = start + t / max(frames - 1, 1) * dist
        if motion in ("pan_left", "pan_up"):
            path = path[::-1].copy()
        if horizontal:
            cx = path
        else:
            cy = path
    return np.stack([s, sy, cx, cy], 1)


# --------------------------------------------------------------------------------------------------------------------
# Source images


def _read_skimage(name: str) -> np.ndarray:
    try:
        import skimage.data as sd
    except ImportError:
        raise FgsimError("the reference dataset needs scikit-image (bundled sample images): "
                         "pip install scikit-image") from None
    try:
        img = sd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(sd, name)()
    except Exception as exc:  # a scikit-image without the bundled file tries to download it (pooch) and fails
        raise FgsimError(f"scikit-image's sample image {name!r} is not available offline ({exc})") from None
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def _fit(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop ``img`` to the aspect ``height:width`` and resize (Pillow, bicubic); float32 [0, 1] HWC."""
    from PIL import Image

    h, w = img.shape[:2]
    if w * height > h * width:
        cw = h * width // height
        img = img[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = w * height // width
        img = img[(h - ch) // 2:(h - ch) // 2 + ch]
    out = Image.fromarray(img).resize((width, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(out, dtype=np.float32) / 255.0, 0.0, 1.0)


@lru_cache(maxsize=1)
def source_images() -> tuple[np.ndarray, np.ndarray]:
    """``(backgrounds, textures)``: float32 ``(8, 3, 512, 768)`` and ``(6, 3, 256, 256)`` in [0, 1]."""
    bgs = np.stack([_fit(_read_skimage(n), *CANVAS).transpose(2, 0, 1) for n in IMAGES])
    tex = np.stack([_fit(_read_skimage(n), TEXTURE_SIZE, TEXTURE_SIZE).transpose(2, 0, 1) for n in TEXTURES])
    return bgs, tex


# --------------------------------------------------------------------------------------------------------------------
# Rendering (torch)


class ClipRenderer:
    """Renders clips on one torch device; holds the source images there (≈ 11 MB in float32)."""

    def __init__(self, device: Any = "cpu") -> None:
        torch = _torch()
        bgs, tex = source_images()
        self.device = torch.device(device)
        self.backgrounds = torch.from_numpy(bgs).to(self.device)
        self.textures = torch.from_numpy(tex).to(self.device)

    def _sample(self, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Bilinear samples of ``image (3, Hs, Ws)`` at ``grid (n, F, H, W, 2)`` → ``(n, 3, F, H, W)``."""
        torch = _torch()
        n, f, h, w, _ = grid.shape
        out = torch.nn.functional.grid_sample(image[None], grid.reshape(1, n * f * h, w, 2), mode="bilinear",
                                              padding_mode="reflection", align_corners=False)
        return out.reshape(3, n, f, h, w).transpose(0, 1)

    def render(self, params: Sequence[ClipParams], frames: int, height: int, width: int) -> torch.Tensor:
        """Clips ``(B, 3, frames, height, width)`` float32 in [0, 1] on the renderer's device."""
        torch = _torch()
        if frames < 1 or height < 2 or width < 2:
            raise FgsimError(f"clip size {frames}×{height}×{width} too small")
        dev, b = self.device, len(params)
        aspect = height / width
        # output pixel centres in [-1, 1] (align_corners=False convention)
        u = (torch.arange(width, device=dev, dtype=torch.float32) * 2 + 1) / width - 1
        v = (torch.arange(height, device=dev, dtype=torch.float32) * 2 + 1) / height - 1
        cams = torch.tensor(np.stack([camera_path(p, frames, aspect) for p in params]), dtype=torch.float32,
                            device=dev)  # (B, F, 4)
        out = torch.empty(b, 3, frames, height, width, device=dev)
        images = [p.label.image for p in params]
        for img in sorted(set(images)):
            sel = [i for i, x in enumerate(images) if x == img]
            c = cams[sel]  # (n, F, 4)
            gx = c[..., 0, None, None] * u.view(1, 1, 1, -1) + c[..., 2, None, None]
            gy = c[..., 1, None, None] * v.view(1, 1, -1, 1) + c[..., 3, None, None]
            gx, gy = torch.broadcast_tensors(gx, gy)
            out[sel] = self._sample(self.backgrounds[img], torch.stack([gx, gy], -1))
        # foreground shapes, back to front (slot k over slot k−1), all clips of a slot at once; frame coordinates
        # in units of half the frame height: x ∈ [−1/aspect, 1/aspect], y ∈ [−1, 1]
        xs = (u / aspect).view(1, 1, 1, -1)
        ys = v.view(1, 1, -1, 1)
        t = torch.arange(frames, device=dev, dtype=torch.float32).view(1, -1)
        soft = 1.0 / height  # edge half-width ≈ half a pixel

        def col(values: list[Any]) -> torch.Tensor:
            return torch.tensor(np.asarray(values, dtype=np.float32), device=dev)

        for k in range(MAX_SHAPES):
            sel = [i for i, p in enumerate(params) if p.active[k]]
            if not sel:
                continue

            ps = [params[i] for i in sel]
            size = col([p.size[k] for p in ps]).view(-1, 1)
            ext_x, ext_y = 1 / aspect - size, 1 - size
            px = _bounce(col([p.pos[k, 0] for p in ps]).view(-1, 1) * ext_x, col([p.vel[k, 0] for p in ps]).view(-1, 1),
                         t, ext_x)
            py = _bounce(col([p.pos[k, 1] for p in ps]).view(-1, 1) * ext_y, col([p.vel[k, 1] for p in ps]).view(-1, 1),
                         t, ext_y)
            ang = col([p.angle[k] for p in ps]).view(-1, 1) + col([p.spin[k] for p in ps]).view(-1, 1) * t
            ca, sa = torch.cos(ang)[..., None, None], torch.sin(ang)[..., None, None]  # (n, F, 1, 1)
            dx, dy = xs - px[..., None, None], ys - py[..., None, None]
            lx, ly = ca * dx + sa * dy, -sa * dx + ca * dy  # (n, F, H, W) shape-local coordinates
            r = size.view(-1, 1, 1, 1)
            kind = torch.tensor([int(p.kind[k]) for p in ps], device=dev).view(-1, 1, 1, 1)
            sd = torch.where(kind == 0, _signed_distance(0, lx, ly, r),
                             torch.where(kind == 1, _signed_distance(1, lx, ly, r), _signed_distance(2, lx, ly, r)))
            alpha = torch.clamp(sd / soft * 0.5 + 0.5, 0.0, 1.0)[:, None]  # (n, 1, F, H, W)
            scale = col([p.tex_scale[k] for p in ps]).view(-1, 1, 1, 1) / r
            off = col([p.tex_offset[k] for p in ps])
            grid = torch.stack([lx * scale + off[:, 0].view(-1, 1, 1, 1), ly * scale + off[:, 1].view(-1, 1, 1, 1)], -1)
            tex = torch.empty(len(sel), 3, frames, height, width, device=dev)
            tex_ids = [int(p.texture[k]) for p in ps]
            for tid in sorted(set(tex_ids)):
                rows = [j for j, x in enumerate(tex_ids) if x == tid]
                tex[rows] = self._sample(self.textures[tid], grid[rows])
            tex = tex * col([p.tint[k] for p in ps]).view(-1, 3, 1, 1, 1)
            out[sel] = out[sel] * (1 - alpha) + tex * alpha
        return out.clamp_(0.0, 1.0)


def _bounce(start: torch.Tensor, vel: torch.Tensor, t: torch.Tensor, ext: torch.Tensor) -> torch.Tensor:
    """Position ``start + vel·t`` reflected into ``[−ext, ext]`` (a triangle wave); broadcasts its arguments."""
    torch = _torch()
    period = 4 * ext
    x = torch.remainder(start + vel * t + ext, period)
    return torch.where(x < 2 * ext, x, period - x) - ext


def _signed_distance(kind: int, lx: torch.Tensor, ly: torch.Tensor, r: Any) -> torch.Tensor:
    """Approximate signed distance (positive inside, units of half the frame height) to an ellipse (0), a rectangle (1) or
    an equilateral triangle (2) of size ``r`` (a number or a tensor broadcasting with ``lx``) centred at the
    local origin."""
    torch = _torch()
    if kind == 0:  # ellipse with semi-axes r, 0.7 r
        q = torch.sqrt((lx / r) ** 2 + (ly / (0.7 * r)) ** 2)
        return (1 - q) * 0.7 * r
    if kind == 1:  # rectangle r × 0.6 r (half extents)
        return torch.minimum(r - lx.abs(), 0.6 * r - ly.abs())
    # triangle with inradius r/2: three half-planes
    d = None
    for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
        e = 0.5 * r - (lx * math.cos(a) + ly * math.sin(a))
        d = e if d is None else torch.minimum(d, e)
    return d  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------------------
# Dataset


class ClipDataset:
    """Clips of the reference dataset: clip ``i`` of a seed is always the same clip (any batch, any device up to
    floating-point differences between devices). Sizes in pixels; ``frames = 4·T − 3``, sides multiples of 8."""

    def __init__(self, seed: int = 0, device: Any = "cpu", renderer: ClipRenderer | None = None) -> None:
        self.seed = int(seed)
        self.renderer = renderer or ClipRenderer(device)

    def labels(self, indices: Sequence[int]) -> list[ClipLabel]:
        """The labels of clips ``indices`` (without rendering them)."""
        return [clip_params(self.seed, i).label for i in indices]

    def clips(self, indices: Sequence[int], frames: int, height: int, width: int,
              labels: Sequence[ClipLabel] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(frames_tensor (B, 3, F, H, W) in [0, 1], labels (B, 3) int64 [image, motion, shapes])``.

        ``labels`` overrides the drawn labels (the other parameters of clip ``i`` stay those of ``(seed, i)``).
        """
        torch = _torch()
        latent_shape(frames, height, width)  # validates the size
        params = [clip_params(self.seed, i, None if labels is None else labels[j]) for j, i in enumerate(indices)]
        video = self.renderer.render(params, frames, height, width)
        lab = torch.tensor([p.label.as_list() for p in params], dtype=torch.int64, device=self.renderer.device)
        return video, lab

    def batch(self, indices: Sequence[int], latent_grid: Sequence[int], codec: LatentCodec,
              labels: Sequence[ClipLabel] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded clips: ``(latents (B, 768, T, h, w), labels (B, 3))`` for the latent grid ``(T, h, w)``."""
        video, lab = self.clips(indices, *video_shape(*latent_grid), labels=labels)
        return codec.encode(video), lab


def estimate_stats(n_clips: int = 64, latent_grid: Sequence[int] = (6, 24, 40), seed: int = 12345,
                   device: Any = "cpu") -> tuple[list[float], list[float]]:
    """Per-colour mean and standard deviation of pixel values (in [0, 1]) over ``n_clips`` clips — how the
    ``latent.mean``/``latent.std`` of ``config.json`` were obtained (values rounded to 4 decimals there)."""
    torch = _torch()
    ds = ClipDataset(seed=seed, device=device)
    s = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, dtype=torch.float64)
    n = 0
    for start in range(0, n_clips, 8):
        video, _ = ds.clips(range(start, min(start + 8, n_clips)), *video_shape(*latent_grid))
        x = video.double().transpose(0, 1).reshape(3, -1).cpu()
        s += x.sum(1)
        s2 += (x * x).sum(1)
        n += x.shape[1]
    mean = s / n
    std = (s2 / n - mean * mean).sqrt()
    return [float(x) for x in mean], [float(x) for x in std]
