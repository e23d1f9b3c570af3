"""Validation cases: determinism, calibration/scored disjointness, counts, report with fake measurements."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from fgsim.validate import (
    CALIB_STRUCTURES,
    CSV_FIELDS,
    Case,
    calibration_cases,
    case_counts,
    case_mask,
    metrics,
    scored_cases,
    write_report,
)


def test_case_lists_deterministic_and_disjoint() -> None:
    a, b = scored_cases(3), scored_cases(3)
    assert a == b and len(a) >= 150
    cal = calibration_cases()
    assert {c.seed for c in cal}.isdisjoint({c.seed for c in a})
    assert all(c.structure in CALIB_STRUCTURES for c in cal) and {c.structure for c in cal} == set(CALIB_STRUCTURES)
    assert all(c.structure not in CALIB_STRUCTURES for c in a)


def test_mask_regenerates_exactly_and_counts(rng: np.random.Generator) -> None:
    for st in ("random", "skewed", "band", "stripes", "mixed", "uniform-blocks"):
        c = Case("x", "scored", st, 700, 2, 64, 64, float(rng.uniform(0.05, 0.9)), int(rng.integers(1 << 40)))
        m1, m2 = case_mask(c), case_mask(c)
        assert m1.shape == (2, 11, 700) and np.array_equal(m1, m2)
        cnt = case_counts(c, (1, 64), mask=m1)
        assert np.array_equal(cnt[1], m1.sum(-1))
        coarse = np.pad(m1, ((0, 0), (0, 0), (0, 4))).reshape(2, 11, -1, 64).any(-1).sum(-1)
        assert np.array_equal(cnt[64], coarse)


def test_report_from_fake_measurements(tmp_path: Path, monkeypatch) -> None:
    # fake GPU rows (measured = predicted x 1.02, so every error is 1/1.02 - 1 = -1.96 %): the report must join the
    # CSV to the cases, score every row and print exactly that error; uncalibrated parameters keep it independent
    # of the committed calibration
    import fgsim.calibration as cal
    from fgsim.validate import predict_rows

    monkeypatch.setattr(cal, "_cal_dirs", lambda: [tmp_path / "no-calibrations"])

    rows = []
    for c in scored_cases(5, count=6):
        for k in ("fg", "dense"):
            r = {**asdict(c), "kernel": k, "gran_n": 1, "block_n": 64 if k == "fg" else 128,
                 "num_warps": 4 if c.block_m == 64 else 8, "num_stages": 3, "launch_extra": "{}",
                 "launch_source": "test", "kept_density": c.density, "measured_ms": 1.0, "gpu_name": "NVIDIA H200",
                 "gpu_key": "h200"}
            r.pop("kernels")
            rows.append({f: str(r.get(f, "")) for f in CSV_FIELDS})
    pred = predict_rows(rows)
    for r, p in zip(rows, pred, strict=True):
        r["measured_ms"] = str(p * 1e3 * 1.02)
    path = tmp_path / "h200-test.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)
    rep = write_report([path], tmp_path)
    text = rep.read_text()
    assert (tmp_path / "scatter_fg.png").exists()
    row = next(line for line in text.splitlines() if line.startswith("| held-out | fg |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    n_fg = sum(r["kernel"] == "fg" for r in rows)
    assert int(cells[2]) == n_fg > 0
    err = 100 * (1 - 1 / 1.02)
    assert float(cells[3]) == pytest.approx(err, abs=0.01) and float(cells[6]) == pytest.approx(err, abs=0.01)
    assert float(cells[7]) == pytest.approx(-err, abs=0.01)
    m = metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.3]))
    assert m["max_ape"] > 9 and m["spearman"] == 1.0


def test_trace_cases_spread_over_entries(tmp_path: Path, rng: np.random.Generator) -> None:
    from conftest import make_meta, random_mask

    from fgsim.trace import PassInfo, write_trace
    from fgsim.validate import case_list, trace_cases

    passes = tuple(PassInfo(i, i // 2, "cond" if i % 2 == 0 else "uncond") for i in range(4))
    meta = make_meta(passes=passes, layers=(0, 1, 2), num_steps=2)
    mask_of = {(p.index, la): random_mask(meta, rng) for p in passes for la in (0, 1, 2)}
    write_trace(tmp_path / "a.fgt", meta, mask_of)
    every = trace_cases(tmp_path, per_trace=0)
    assert len(every) == 12
    spread = trace_cases(tmp_path, per_trace=3)
    assert [(c.pass_index, c.layer) for c in spread] == [(0, 0), (2, 0), (3, 2)]
    assert all(c.structure == "trace" and c.split == "scored" for c in spread)
    assert case_list("traces", traces_dir=str(tmp_path), per_trace=3) == spread
    c = spread[1]
    assert np.array_equal(case_mask(c), mask_of[(c.pass_index, c.layer)])


def test_report_prefers_graph_timed_rows() -> None:
    from fgsim.validate import select_rows

    base = {"gpu_key": "h200", "case_id": "s1-001", "kernel": "fg", "block_n": "64", "num_stages": "3", "trace": ""}
    rows = [dict(base, bench="do_bench median", date="2026-11-30", measured_ms="2.0"),
            dict(base, bench="do_bench_cudagraph median", date="2026-11-28", measured_ms="1.0"),
            dict(base, bench="do_bench_cudagraph median", date="2026-11-29", measured_ms="1.1"),
            dict(base, kernel="dense", bench="do_bench median", date="2026-11-29", measured_ms="3.0")]
    kept, superseded = select_rows(rows)
    assert superseded == 2
    assert [r["measured_ms"] for r in kept] == ["1.1", "3.0"]


def test_uniform_blocks_keep_whole_64_key_blocks(rng: np.random.Generator) -> None:
    c = Case("x", "calib", "uniform-blocks", 1000, 3, 64, 128, float(rng.uniform(0.1, 0.6)), int(rng.integers(1 << 40)))
    mk = case_mask(c)
    blocks = np.pad(mk, ((0, 0), (0, 0), (0, 24))).reshape(3, 8, -1, 64)
    full = blocks[..., :40]  # the last block is ragged: 1000 = 15·64 + 40
    assert np.all(full.all(-1) | ~full.any(-1))  # every block is all kept or all skipped
    assert abs(mk.mean() - c.density) < 0.2
