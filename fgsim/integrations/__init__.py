"""FG-Attn inside other frameworks: diffusers pipelines (:mod:`fgsim.integrations.diffusers`) and a plain
attention callable (:func:`fgsim.integrations.diffusers.sparse_attention_fn`).

Importing this package needs neither torch nor diffusers; the submodule imports them when used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["FgSchedule", "FgAttnState", "enable_fgattn", "disable_fgattn", "sparse_attention_fn", "BACKENDS", "quality"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(".diffusers", __name__), name)
    raise AttributeError(f"module 'fgsim.integrations' has no attribute {name!r}")
