"""fgattn: Triton fine-grained (M×gran_n gathered), block-sparse and dense attention kernels.

Torch and Triton are imported lazily: ``import fgattn.launch`` (the launch table the cost model
reads) needs neither.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "FgIndex",
    "LaunchConfig",
    "block_index_from_mask",
    "block_sparse_attention",
    "build_index",
    "check_index",
    "contig_route",
    "dense_attention",
    "fg_attention",
    "fg_route",
    "index_to_mask",
    "launch_config",
    "limit_sms",
    "merge_attention_",
    "reference_attention",
]

_WHERE = {
    "FgIndex": "index",
    "build_index": "index",
    "block_index_from_mask": "index",
    "check_index": "index",
    "index_to_mask": "index",
    "fg_attention": "attention",
    "fg_route": "attention",
    "contig_route": "attention",
    "block_sparse_attention": "attention",
    "dense_attention": "attention",
    "reference_attention": "reference",
    "LaunchConfig": "launch",
    "launch_config": "launch",
    "limit_sms": "schedule",
    "merge_attention_": "merge",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'fgattn' has no attribute {name!r}")
