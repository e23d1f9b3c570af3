"""A small reference video DiT trained here (issue 6): diffusers' ``WanTransformer3DModel`` at 8.1M parameters.

It exists so that fgsim's capture, kernels and cost model run on attention maps a *trained* video diffusion
transformer really produces (no pretrained video DiT can be downloaded on the project's machines). It is a toy:
trained for minutes on procedural clips (camera pans/zooms over scikit-image's bundled photos plus moving textured
shapes), not Wan2.1. Parts, each importing torch/diffusers lazily (``import fgsim.reference`` imports neither):

- :mod:`fgsim.reference.data` — the procedural clip generator, class labels and the fixed pixel-unshuffle latent
  codec (a Wan-480p token grid 21 × 30 × 52 is exactly an 81-frame 480×832 clip);
- :mod:`fgsim.reference.model` — :class:`~fgsim.reference.model.ReferenceDiT` (transformer + label-token table),
  config, safetensors save/load;
- :mod:`fgsim.reference.train` — rectified-flow training under a wall-clock budget;
- :mod:`fgsim.reference.sample` — 50-step flow-matching Euler sampler with CFG (two transformer passes per step, as
  Wan's pipeline), a switchable self-attention backend for FG-Attn, PSNR.

The recipe that trains the committed weights on an H200 is ``docs/reference_dit.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fgsim.reference.model import ReferenceDiT

#: Directory of the reference model's data files (config.json, and weights once trained on a GPU).
DATA_DIR: Path = Path(__file__).resolve().parent.parent / "data" / "reference"
#: The model/latent/conditioning configuration (a data file, read by every part).
CONFIG_PATH: Path = DATA_DIR / "config.json"
#: Where :func:`load` looks for weights by default: committed in the repository (16 MB), but not packaged into
#: wheels, so a checkout or an editable install (``pip install -e .``) has them and a wheel install does not.
DEFAULT_WEIGHTS: Path = DATA_DIR / "weights.safetensors"
#: Environment variable naming a weights file to use instead of :data:`DEFAULT_WEIGHTS`.
WEIGHTS_ENV = "FGSIM_REFERENCE_WEIGHTS"


def default_weights_path() -> Path:
    """``$FGSIM_REFERENCE_WEIGHTS`` if set, else :data:`DEFAULT_WEIGHTS`."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else DEFAULT_WEIGHTS


def load(path: str | Path | None = None, *, device: Any = "cpu", dtype: Any = None) -> ReferenceDiT:
    """The reference DiT with its trained weights, in eval mode.

    ``path``: a ``.safetensors`` file written by the training script (default :func:`default_weights_path`); its
    embedded config is used when present, else ``config.json``. ``device``/``dtype``: torch device and dtype
    (default float32). Raises :class:`~fgsim.errors.FgsimError` when the file is missing or does not match.
    """
    from fgsim.reference.model import load_weights

    return load_weights(path if path is not None else default_weights_path(), device=device, dtype=dtype)


__all__ = ["CONFIG_PATH", "DATA_DIR", "DEFAULT_WEIGHTS", "WEIGHTS_ENV", "default_weights_path", "load"]
