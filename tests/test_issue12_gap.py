"""validation/issue12_gap.py: the split of the missed issue-12 cells' time, its mask statistics, its bad-input paths,
and the README block rendered from its committed CSV (validation/tables/issue12_gap.py)."""

from __future__ import annotations

import csv
import importlib.util
import math
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "validation"), str(ROOT / "kernels")]

import issue12_gap as gap  # noqa: E402

GAP_CSV = ROOT / "validation" / "results" / "issue12-gap.csv"


def _table_module():
    sys.path.insert(0, str(ROOT / "validation" / "tables"))
    spec = importlib.util.spec_from_file_location("_issue12_gap_table", ROOT / "validation" / "tables" /
                                                  "issue12_gap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------ the split
def test_decompose_made_up_case_known_answer() -> None:
    # 10 rows and 50 executed tiles per program, 40 of them kept keys; c_row 20, c_tile 15 (cycles)
    p = gap.decompose(launch=1000.0, rows_per_prog=10, tiles_per_prog=50, kept_tiles_per_prog=40, c_row=20,
                      c_tile=15, first_row=30, tail=40, overhead=5)
    assert p == pytest.approx(dict(kept=600, padding=150, rows=200, tail=40, first_row=30, overhead=5,
                                   residual=-25))
    c = gap.ceilings(0.8, 1000.0, p)
    assert c["padding"] == pytest.approx(0.8 * 1000 / 850)
    assert c["rows"] == pytest.approx(1.0)
    assert c["tail"] == pytest.approx(0.8 * 1000 / 960)
    assert c["all"] == pytest.approx(0.8 * 1000 / (1000 - 390))
    # the negative residual (-25) taken out of the priced parts (600 + 150 + 200 + 30 = 980) in proportion
    k = 955 / 980
    assert c["all_scaled"] == pytest.approx(0.8 * 1000 / (1000 - (k * 350 + 40)))
    assert c["all_scaled"] < c["all"]


def test_decompose_positive_residual_and_bad_input() -> None:
    p = gap.decompose(launch=2.0, rows_per_prog=1, tiles_per_prog=1, kept_tiles_per_prog=0.5, c_row=0.5, c_tile=1)
    assert p["residual"] == pytest.approx(0.5)
    c = gap.ceilings(0.5, 2.0, p)
    assert c["all_scaled"] == pytest.approx(c["all"]) == pytest.approx(0.5 * 2 / 1.0)
    with pytest.raises(ValueError, match="launch must be > 0"):
        gap.decompose(launch=0.0, rows_per_prog=1, tiles_per_prog=1, kept_tiles_per_prog=1, c_row=1, c_tile=1)
    with pytest.raises(ValueError, match="kept tiles"):
        gap.decompose(launch=1.0, rows_per_prog=1, tiles_per_prog=1, kept_tiles_per_prog=2, c_row=1, c_tile=1)


def test_lstsq2_recovers_exact_coefficients() -> None:
    x1, x2 = [1.0, 2.0, 3.0, 5.0], [4.0, 1.0, 7.0, 2.0]
    a, b = gap.lstsq2(x1, x2, [3.5 * u + 0.25 * v for u, v in zip(x1, x2, strict=True)])
    assert (a, b) == pytest.approx((3.5, 0.25))
    with pytest.raises(ValueError, match="collinear"):
        gap.lstsq2([1.0, 2.0], [2.0, 4.0], [1.0, 1.0])


# ------------------------------------------------------------------------------------------------ mask statistics
@pytest.mark.parametrize("h,n,bm,d,text", [(3, 100, 16, 0.2, 0),    # full 5x5x4 grid: the per-axis product
                                           (2, 64, 8, 1.0, 7),      # density 1, text
                                           (2, 512, 128, 0.1, 30),  # 8x8x8 grid, 128-query blocks, text
                                           (2, 300, 128, 0.2, 0)])  # not a full grid (the chunked mask), partial
#                                                                     last key block (300 % 128)
def test_mask_counts_equal_the_benchmark_generator(h: int, n: int, bm: int, d: float, text: int) -> None:
    import torch
    from fgattn.masks import window_mask, with_text

    m = window_mask(1, h, n, bm, d, device="cpu")
    if text:
        m = with_text(m, text, bm)
    st = gap.mask_counts(h, n, text, bm, d, block_tiles=True)
    assert torch.equal(st.counts, m.sum(-1)[0])
    nn = n + text
    kept_blocks = torch.nn.functional.pad(m, (0, (-nn) % 128)).reshape(1, h, m.shape[2], -1, 128).any(-1)
    assert torch.equal(st.block_tiles, kept_blocks.sum(-1)[0])
    assert st.kept() == int(m.sum())
    import fgattn

    assert st.density() == pytest.approx(fgattn.build_index(m, block_m=bm).density(nn), abs=1e-12)
    if bm == 128:  # the block-sparse index's density: kept blocks' area, a kept partial last block by its keys
        bidx = fgattn.block_index_from_mask(kept_blocks, block_m=128, n_keys=nn)
        assert st.density(blocks=True) == pytest.approx(bidx.density(nn), abs=1e-12)


def test_committed_csv_mask_statistics_recomputed_at_one_cell() -> None:
    rows = {r["cell"]: r for r in csv.DictReader(open(GAP_CSV, encoding="utf-8"))}
    r = rows["fg M128 H12 N32760 d 0.02"]
    st = gap.mask_counts(12, 32760, 0, 128, 0.02)
    assert st.rows() == int(r["rows"])
    assert st.tiles(128) / st.rows() == pytest.approx(float(r["tiles_per_row"]), abs=1e-4)
    assert st.density() == pytest.approx(float(r["density"]), abs=6e-5)


# ------------------------------------------------------------------------------------------------ the committed CSV
def test_committed_csv_closes_and_its_ceilings_recompute() -> None:
    rows = list(csv.DictReader(open(GAP_CSV, encoding="utf-8")))
    assert {r["kernel"] for r in rows} == {"fg", "block", "fg64"}
    for r in rows:
        shares = [float(r[f"{p}_share"] or 0) for p in (*gap.PARTS, "residual")]
        assert sum(shares) == pytest.approx(1.0, abs=2e-3), r["cell"]  # the parts and the residual are the launch
        assert float(r["ratio"]) < float(r["target"])  # only cells below target
        free = sum(float(r[f"{p}_share"] or 0) for p in gap.FREED)
        assert float(r["ceil_all"]) == pytest.approx(float(r["ratio"]) / (1 - free), abs=2e-3), r["cell"]
        assert float(r["ceil_all_scaled"]) <= float(r["ceil_all"]) + 1e-9
        if r["kernel"] == "fg64":  # nothing measured for M64's tail / first row: blank, not zero
            assert r["tail_share"] == r["first_row_share"] == ""
    assert all(math.isclose(float(r["padding_share"]), 0.0) for r in rows if r["kernel"] == "block")


def test_table_regenerates_from_the_committed_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _table_module()
    text = mod.render()
    rows = mod.read_rows(mod.GAP)
    for r in rows:
        if r["kernel"] != "fg64":
            assert f"| {r['cell']} | {float(r['ratio']):.2f} |" in text
    assert "issue12-gap.csv" in text and f"({len(rows)} rows)" in text
    # (README.md's block equals this text: tests/test_readme_tables.py's --check, once README holds the block)
    # a changed CSV value changes the rendered block (the numbers come from the CSV, not from the renderer)
    edited = [dict(r) for r in rows]
    edited[0]["ratio"] = "0.1234"
    monkeypatch.setattr(mod, "read_rows", lambda name: edited)
    assert f"| {rows[0]['cell']} | 0.12 |" in mod.render()


# ------------------------------------------------------------------------------------------------ bad input
def _copy_inputs(dst: Path, skip: str | None = None) -> None:
    for name in gap.INPUTS:
        if name != skip:
            shutil.copy(gap.RESULTS / name, dst / name)


def test_missing_input_csv_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _copy_inputs(tmp_path, skip=gap.T2_TIMING)
    out = tmp_path / "gap.csv"
    rc = gap.main(["--results", str(tmp_path), "--out", str(out), "--plot", ""])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert gap.T2_TIMING in err[0] and "no such file" in err[0]
    assert not out.exists()


def test_input_missing_a_column_and_bad_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _copy_inputs(tmp_path)
    (tmp_path / gap.T_FITS).write_text("cell,variant\nfg H12 N32760 d0.02,tl1\n", encoding="utf-8")
    rc = gap.main(["--results", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--plot", ""])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and gap.T_FITS in err[0] and "c_row_cycles" in err[0]
    rc = gap.main(["--results", str(tmp_path / "nope"), "--plot", ""])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--results" in err[0] and "nope" in err[0]
    shutil.copy(gap.RESULTS / gap.T_FITS, tmp_path / gap.T_FITS)  # inputs good again: the bad --out is named
    rc = gap.main(["--results", str(tmp_path), "--out", str(tmp_path / "g.txt"), "--plot", ""])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--out" in err[0]
