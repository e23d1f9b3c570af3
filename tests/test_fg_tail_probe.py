"""The minimal tail probe's decoder (``fgattn.timeline.tail_*``, issue 12 session 16 helper T2) on made-up buffers
(CPU; no kernel runs here), and the probe script's per-cell table."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools")]

from fgattn import timeline as tl  # noqa: E402

SEED = 1641


def make_buf(spans: list[float], smids: list[int], mhz: float = 1500.0, starts_ns: list[float] | None = None,
             t0: int = 10**12, c0: int = 10**9) -> np.ndarray:
    """A header buffer: CTA p starts at t0 + starts_ns[p] ns, runs spans[p] cycles at ``mhz``."""
    n = len(spans)
    starts_ns = starts_ns or [0.0] * n
    a = np.full((n, tl.HDR_EV), -1, dtype=np.int64)
    for p, (cyc, sm, st) in enumerate(zip(spans, smids, starts_ns, strict=True)):
        a[p, 0] = c0 + 1000 * p
        a[p, 1] = a[p, 0] + int(cyc)
        a[p, 2] = t0 + int(st)
        a[p, 3] = a[p, 2] + int(round(cyc / mhz * 1e3))
        a[p, 4] = sm
    return a


def test_summary_values() -> None:
    spans = [1500.0] * 6 + [3000.0, 3000.0]  # SMs 6 / 7 (one TPC) twice as slow
    a = make_buf(spans, list(range(8)))
    s = tl.tail_summary(a)
    mean = np.mean(spans)
    assert s["slowest_over_mean"] == pytest.approx(3000 / mean)
    assert s["tail_frac"] == pytest.approx((3000 - mean) / mean)
    assert s["launch_ns"] == pytest.approx(2000.0)  # 3000 cycles at 1.5 GHz
    assert s["last_minus_median_ns"] == pytest.approx(1000.0)
    assert s["last_minus_median_frac"] == pytest.approx(0.5)
    assert s["lever_max"] == pytest.approx((2000 - np.mean([1000] * 6 + [2000] * 2)) / 2000)
    assert s["mhz_median"] == pytest.approx(1500.0)
    assert s["slow"] == 2 and s["slow_paired"] == pytest.approx(1.0)
    assert s["chance"] == pytest.approx(1 / 7)
    assert s["start_skew_ns"] == 0


def test_clock_and_starts() -> None:
    a = make_buf([1000.0, 2000.0, 1000.0, 1000.0], [0, 1, 2, 3], mhz=1000.0, starts_ns=[0, 0, 500, 100])
    c = tl.tail_ctas(a)
    assert list(c["end_ns"]) == [1000, 2000, 1500, 1100]
    assert c["mhz"] == pytest.approx([1000.0] * 4)
    assert tl.tail_summary(a)["start_skew_ns"] == 500


def test_tpc_pairs_correlation() -> None:
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    tpc = rng.uniform(1.0, 1.3, 66)
    spans = np.repeat(tpc, 2) * 1e6  # partners equal: r_tpc = 1
    perm = rng.permutation(132)  # programs land on SMs in any order
    r = tl.tpc_pairs(perm, spans[perm])
    assert r["r_tpc"] == pytest.approx(1.0)
    assert abs(r["r_cross"]) < 0.5
    r2 = tl.tpc_pairs(np.arange(132), rng.uniform(1, 1.3, 132) * 1e6)  # no pairing
    assert r2["r_tpc"] < 0.5


def test_slow_repeat() -> None:
    rng = np.random.default_rng(SEED)
    base = rng.uniform(1.0, 1.1, 132) * 1e6
    same = [make_buf(list(base * (1 + 1e-4 * i)), list(range(132))) for i in range(3)]
    r = tl.slow_repeat(same, top=6)
    assert r["shared"] == 6 and r["r_rank"] == pytest.approx(1.0)
    assert r["chance"] == pytest.approx(36 / 132)
    diff = [make_buf(list(rng.uniform(1.0, 1.1, 132) * 1e6), list(range(132))) for _ in range(6)]
    assert tl.slow_repeat(diff)["shared"] < 3


def test_bad_buffers() -> None:
    a = make_buf([1000.0, 1000.0], [0, 1])
    with pytest.raises(ValueError, match=r"fgattn.timeline: header buffer shape \(2, 7\)"):
        tl.tail_ctas(a[:, :7])
    b = a.copy()
    b[1, 3] = -1
    with pytest.raises(ValueError, match="1 program\\(s\\) did not write their header"):
        tl.tail_summary(b)
    c = a.copy()
    c[0, 1] = c[0, 0]
    with pytest.raises(ValueError, match="end is not after its start"):
        tl.tail_summary(c)
    with pytest.raises(ValueError, match="launches=0 must be a positive int"):
        tl.hdr_buffer_shape(132, 0)
    with pytest.raises(ValueError, match="slow_repeat needs >= 2 launches"):
        tl.slow_repeat([a])
    assert tl.hdr_buffer_shape(132, 20) == (20, 132, tl.HDR_EV)


def test_cell_table(tmp_path: Path) -> None:
    import tail_probe

    rows = []
    for i, lm in enumerate((0.05, 0.07, 0.06)):
        s = tl.tail_summary(make_buf([1000.0 + 10 * p for p in range(8)], list(range(8))))
        s["lever_max"] = lm
        rows.append(dict(cell="H12 N32760 d 0.02", launch=i, **s, gap_to_next_ns=100.0 if i < 2 else "",
                         rel_probe=1.004, rel_ctl=0.998, repeat_shared=1.0, repeat_chance=0.27, repeat_r_rank=0.1))
    with open(tmp_path / "tail-launches.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (t,) = tail_probe.analyze(tmp_path)
    assert t["launches"] == 3 and t["lever_max"] == pytest.approx(0.06) and t["lever_max_max"] == pytest.approx(0.07)
    assert t["rel_probe"] == pytest.approx(1.004) and t["gap_us"] == pytest.approx(0.1)
    with pytest.raises(SystemExit):
        tail_probe.parse_args(["--analyze", str(tmp_path / "missing")])


def test_plan_fit_cli_and_parse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tail_plan_fit

    assert tail_plan_fit._parse("H12 N32760+512text d 0.05") == (12, 32760, 512, 0.05)
    assert tail_plan_fit._parse("H40 N75600 d 0.02") == (40, 75600, 0, 0.02)
    assert tail_plan_fit.main([str(tmp_path / "none.csv.gz"), str(tmp_path / "o.csv")]) == 2
    assert "the first argument must be a file" in capsys.readouterr().err
    import gzip

    p = tmp_path / "c.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("cell,launch,program,smid,span_cycles,span_ns,start_ns,end_ns\nH12 N32760 d 0.02,0,0,0,1,1,0,1\n")
    assert tail_plan_fit.main([str(p), str(tmp_path / "o.csv"), "H40 N32760 d 0.02"]) == 2
    assert "'H40 N32760 d 0.02' is not in" in capsys.readouterr().err


def test_plot_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tail_plot

    assert tail_plot.main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv.gz"), str(tmp_path / "o.png")]) == 2
    assert "the CSVs must exist" in capsys.readouterr().err
