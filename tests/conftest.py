"""Shared fixtures: small random traces written to a temporary directory."""

from __future__ import annotations

import os
import random
import sys

# CI and developer machines have no GPU: Triton kernels run in its interpreter. This must be set before anything
# (diffusers, torch._inductor, fgattn) imports triton, so it lives here rather than in a test module.
os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import pytest

from fgsim.trace import PassInfo, TraceMeta


def make_meta(grid=(2, 3, 5), text_tokens=4, text_position="after", block_m=16, heads=(0, 1, 2), layers=(0, 1),
              passes=None, stat_names=(), **kw) -> TraceMeta:
    """A small valid TraceMeta; keyword arguments override fields."""
    passes = passes or (PassInfo(0, 0, "cond"), PassInfo(1, 0, "uncond"))
    fields = dict(model="tiny", num_layers=max(layers) + 1, num_heads=max(heads) + 1, head_dim=64, grid=grid,
                  text_tokens=text_tokens, text_position=text_position, block_m=block_m, passes=passes,
                  layers=layers, heads=heads, predictor={"name": "test", "tau": 0.5},
                  provenance={"kind": "synthetic", "generator": "tests"}, num_steps=3, passes_per_step=2,
                  model_config={"ffn": 8960}, stat_names=stat_names)
    fields.update(kw)
    return TraceMeta(**fields)


def random_mask(meta: TraceMeta, rng: np.random.Generator, density: float = 0.3) -> np.ndarray:
    """A random bool mask of the shape TraceWriter.add expects for ``meta``."""
    return rng.random((len(meta.heads), meta.n_qblocks, meta.n_keys)) < density


SEED_ENV = "FGSIM_TEST_SEED"


@pytest.fixture(autouse=True)
def test_seed() -> int:
    """A fresh seed for every test (or ``$FGSIM_TEST_SEED``), printed so a failure can be replayed.

    Python's ``random``, numpy's legacy global generator and torch's (when imported) are seeded with it; the
    ``rng`` fixture derives from it. Replay a failure with ``FGSIM_TEST_SEED=<seed> pytest <test id>``.
    """
    seed = int(os.environ.get(SEED_ENV) or np.random.SeedSequence().entropy % (2**32))
    print(f"test seed {seed} (replay: {SEED_ENV}={seed})")
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    return seed


@pytest.fixture
def rng(test_seed: int) -> np.random.Generator:
    """A numpy Generator seeded with the test's printed seed."""
    return np.random.default_rng(test_seed)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one torch thread is fastest and immune to a busy shared CPU; restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
