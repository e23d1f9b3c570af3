"""kernels/tools/row_cost_fit.py: the per-row / per-tile split recovers known costs and rejects a missing CSV."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kernels" / "tools"))

import row_cost_fit  # noqa: E402


def test_fit_recovers_row_and_tile_costs(tmp_path: Path) -> None:
    seed = random.randrange(2**31)
    rng = random.Random(seed)
    c_row, c_tile = rng.uniform(1, 20), rng.uniform(0.5, 3)  # µs
    h, n, m = 12, 32760, 128
    n_rows = h * -(-n // m)
    path = tmp_path / "bench.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["shape", "kernel", "M", "gran_n", "config", "density", "ms", "H", "N"])
        w.writeheader()
        for d in (0.02, 0.05, 0.1, 0.3, 0.7):
            ms = (n_rows / 132 * c_row + d * n_rows * n / 128 / 132 * c_tile) / 1e3
            w.writerow(dict(shape="s", kernel="fg_attention", M=m, gran_n=1, config="c", density=d, ms=ms, H=h, N=n))
    got = row_cost_fit.fit(n_rows / 132, n_rows * n / 128 / 132, [0.02, 0.05, 0.1, 0.3],
                           [float(r["ms"]) for r in list(csv.DictReader(open(path)))[:4]])
    assert abs(got[0] - c_row) < 1e-6 * c_row and abs(got[1] - c_tile) < 1e-6 * c_tile, f"{got} seed {seed}"
    assert row_cost_fit.main([str(path)]) == 0
    assert row_cost_fit.main([str(tmp_path / "missing.csv")]) == 2
