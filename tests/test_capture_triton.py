"""The Triton exact predictor (run by the Triton interpreter on the CPU) against the torch path.

Runs in a subprocess with ``TRITON_INTERPRET=1`` set before triton is imported: other test modules (diffusers,
torch) may already have imported triton in this process without the interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    (203, 12, 16, {"BLOCK_M": 64, "BLOCK_N": 32}, 0),
    (203, 12, 64, {"BLOCK_M": 64, "BLOCK_N": 64}, 40),
    (130, 64, 128, {"BLOCK_M": 128, "BLOCK_N": 128}, 7),
    (97, 16, 32, {"BLOCK_M": 128, "BLOCK_N": 64}, 0),
]

SCRIPT = r"""
import json, sys
import torch
from fgsim.capture import _triton
from fgsim.capture.predictors import ExactThreshold
out = []
for s, d, m, cfg, masked in json.loads(sys.argv[1]):
    g = torch.Generator().manual_seed(s + d + m)
    q = torch.randn(2, 2, s, d, generator=g) * 2
    k = torch.randn(2, 2, s, d, generator=g) * 2
    km, n_valid = None, [s, s]
    if masked:
        km = torch.ones(2, s, dtype=torch.bool)
        km[1, s - masked:] = False
        n_valid = [s, s - masked]
    got = _triton.exact_mask(q, k, km, d ** -0.5, [0.5 / n for n in n_valid], m, cfg)
    ref = ExactThreshold(block_m=m, backend="torch")(q.double(), k.double(), km)
    out.append({"shape_ok": tuple(got.shape) == tuple(ref.shape), "diff": int((got != ref).sum()),
                "numel": ref.numel(), "masked_kept": bool(got[1, :, :, s - masked:].any()) if masked else False,
                "rows_nonempty": bool(got.any(-1).all()), "kept": float(ref.float().mean())})
print(json.dumps(out))
"""


def test_triton_matches_torch():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CASES)], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(results) == len(CASES)
    for case, res in zip(CASES, results, strict=True):
        assert res["shape_ok"], case
        # float32 scores vs the float64 reference: only entries within rounding of the threshold may differ.
        assert res["diff"] <= max(1, res["numel"] // 10000), (case, res)
        assert not res["masked_kept"], case
        assert res["rows_nonempty"], case
        assert 0 < res["kept"] < 1, case
