"""The measurement path on the Triton CPU interpreter: one tiny case through fgattn, rows with the result columns;
the microbenchmark kernels in their quick form (TRITON_INTERPRET=1, fp16 / fp32 only)."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "0") != "1", reason="needs the Triton interpreter")


def test_measure_one_tiny_case(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "kernels"))
    from fgsim.validation.cases import Case
    from fgsim.validation.measure import RESULT_FIELDS, measure_cases

    case = Case("x-9", "tiny", "text", 128, 1, 64, 64, 0.3, 5, kernels=("fg", "dense"), block_n=32, num_stages=2,
                num_warps=4, dtype="fp16", axis="config")
    out = tmp_path / "m.csv"
    rows = measure_cases([case], out, rounds=1, progress=False)
    assert [r["kernel"] for r in rows] == ["fg", "dense"]
    back = list(csv.DictReader(out.open()))
    assert list(back[0]) == list(RESULT_FIELDS)
    for r in back:
        assert r["status"] == "ok" and float(r["measured_ms"]) > 0 and r["block_n"] == "32" and r["dtype"] == "fp16"
        assert "not a GPU measurement" in r["bench"]


def test_microbenchmarks_quick() -> None:
    from fgsim.calibrate_micro import measured_constants, predict_micro, run_micro
    from fgsim.hardware import load_gpu
    from fgsim.model.params import ModelParams

    rows = run_micro(2, quick=True)
    kinds = {r["micro"] for r in rows}
    assert kinds == {"hbm_stream", "l2_stream", "l2_smem", "chase_l2", "chase_hbm", "exp2", "fp32", "mma", "gather"}
    import json

    chase = [json.loads(r["micro_args"]) for r in rows if r["micro"] == "chase_hbm"]  # HBM-sized, fresh addresses
    assert sorted(a["bytes"] for a in chase) == [256 << 20, 1 << 30] and all(a["fresh"] for a in chase)
    g = load_gpu("h200")
    const = measured_constants(rows, 1980.0, g)
    assert {"hbm_gbs", "l2_gbs", "exp2_per_clk_per_sm", "l2_port_bytes_per_clk"} <= set(const)
    assert const["l2_port_bytes_per_clk"] == const["l2_smem_cp_async_bytes_per_clk"] > 0  # the CPU runs cp.async only
    gath = [{k: str(v) for k, v in r.items()} for r in rows if r["micro"] == "gather"]
    assert all(predict_micro(r, g, ModelParams()) > 0 for r in gath)
