"""fgsim: predict and validate the speed of fine-grained sparse attention for video diffusion transformers."""

from __future__ import annotations

__version__ = "0.1.0"

from fgsim.errors import FgsimError, FgTraceError

__all__ = ["FgsimError", "FgTraceError", "__version__"]
