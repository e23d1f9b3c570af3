"""Capture attention-sparsity traces from diffusers video-DiT runs.

Three parts, all importing torch (and diffusers) lazily so that ``import fgsim`` stays light:

- :mod:`fgsim.capture.predictors` — mask predictors turning one attention call's ``q, k`` into an M×1 slice
  mask (exact column-max threshold, pooled top-CDF, block-level) and the per-call accuracy statistics;
- :mod:`fgsim.capture.hooks` — hooks on a diffusers transformer that tag each attention call with
  (pass, denoising step, layer) and hand ``q, k, v`` to a predictor, never changing the model's output;
- :mod:`fgsim.capture.run` — :func:`capture_transformer` (library entry, no pipeline needed) and
  :func:`capture_pipeline` (used by ``python -m fgsim capture``), both writing a ``.fgt`` trace.

Nothing here is imported by ``import fgsim.capture``; import the submodule you need.
"""

from __future__ import annotations

__all__: list[str] = []
