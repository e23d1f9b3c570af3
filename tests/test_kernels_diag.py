"""CPU tests (Triton interpreter, fp32, tiny shapes) of the diagnosis-only ``_DIAG_*`` switches of the FG kernel
(``LaunchConfig.extra["_diag"]``, used by validation/profile_row_cost.py): off by default and bit-identical to the
normal kernel when given as 0; the switches that keep the math exact match the float64 reference; the others
change what they claim to.  Fresh random inputs every run; the seed is in every failure message."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported

import dataclasses  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # empty row
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "kernels")]

import fgattn.attention as attention  # noqa: E402
from fgattn import build_index, fg_attention, reference_attention  # noqa: E402

M, BN, N, D = 64, 32, 200, 64
TOL = 1e-4


@pytest.fixture(scope="module")
def problem():
    """q/k/v and an index whose rows are empty, exactly two tiles, one tile + a partial tail, and all keys."""
    seed = int(os.environ.get("FGSIM_TEST_SEED") or random.randrange(2**31))
    torch.manual_seed(seed)
    q, k, v = (torch.randn(1, 1, N, D, dtype=torch.float32) for _ in range(3))
    mask = torch.zeros(1, 1, 4, N, dtype=torch.bool)
    mask[0, 0, 1, torch.randperm(N)[:64]] = True
    mask[0, 0, 2, torch.randperm(N)[:45]] = True
    mask[0, 0, 3] = True
    index = build_index(mask, block_m=M, gran_n=1, order=True)
    return seed, q, k, v, index, reference_attention(q, k, v, index)


def _run(q, k, v, index, diag=None, poison=False):
    base = attention.resolve_config("fg", q, M, 1)
    extra = dict(lpt=True, idx_ahead=1)
    if diag is not None:
        extra["_diag"] = diag
    cfg = dataclasses.replace(base, block_n=BN, num_stages=2, extra=extra)
    out = torch.full_like(q, float("nan")) if poison else None
    return fg_attention(q, k, v, index, block_m=M, config=cfg, out=out)


def _err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).norm() / ref.norm())


def test_switches_off_by_default(problem):
    seed, q, k, v, index, ref = problem
    plain = _run(q, k, v, index)
    zeros = _run(q, k, v, index, {"_DIAG_TAIL": 0, "_DIAG_Q": 0, "_DIAG_IDX": 0, "_DIAG_EPI": 0})
    assert torch.equal(plain, zeros), f"seed {seed}"
    assert _err(plain, ref) < TOL, f"seed {seed}"


@pytest.mark.parametrize("tail", [3, 4, 5])
def test_exact_tail_variants_match_reference(problem, tail):
    seed, q, k, v, index, ref = problem
    assert _err(_run(q, k, v, index, {"_DIAG_TAIL": tail}), ref) < TOL, f"seed {seed} tail {tail}"


def test_inexact_switches_change_what_they_say(problem):
    seed, q, k, v, index, ref = problem
    no_tail = _run(q, k, v, index, {"_DIAG_TAIL": 1})
    head = torch.zeros(1, 1, 4, N, dtype=torch.bool)  # each row's entries without its last (tail) tile
    for r in range(4):
        ent = index.indices[index.offsets[r]:index.offsets[r + 1]].long()
        head[0, 0, r, ent[: max(0, (len(ent) + BN - 1) // BN - 1) * BN]] = True
    ref_head = reference_attention(q, k, v, build_index(head, block_m=M, gran_n=1))
    assert _err(no_tail, ref_head) < TOL, f"seed {seed}: no_tail = the rows without their tail tile"
    assert _err(no_tail, ref) > 0.1, f"seed {seed}"
    assert torch.isnan(_run(q, k, v, index, {"_DIAG_EPI": 1}, poison=True)).all(), f"seed {seed}: O not stored"
    q_half = torch.full_like(q, 0.5)
    no_q = _run(q, k, v, index, {"_DIAG_Q": 1})
    assert _err(no_q, reference_attention(q_half, k, v, index)) < TOL, f"seed {seed}: Q read as 0.5"
