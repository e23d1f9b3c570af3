"""kernels/tools/gap_analysis.py: the two row schedules, the cost fit and the bad-input paths (no masks, seconds)."""

import random
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels" / "tools")]

import gap_analysis as ga  # noqa: E402


def test_round_robin_and_queue_schedules() -> None:
    # 2 * SMS equal rows: every program / SM gets two rows under both schedules
    tiles = np.full(2 * ga.SMS, 10)
    for kind in ("gluon", "tl", "snake"):
        t, nr, nt = ga.busiest(tiles, kind, 3.0, 2.0)
        assert (nr, nt) == (2, 20) and t == 2 * (3.0 + 20.0)
    # heavy-first order, SMS + 1 rows: round robin puts the last (lightest) row on program 0 (the heaviest);
    # the queue gives it to the first free SM, so its busiest SM is one heavy row
    tiles = np.array([100] + [50] * (ga.SMS - 1) + [1])
    t_rr, nr_rr, _ = ga.busiest(tiles, "gluon", 0.0, 1.0)
    t_q, nr_q, _ = ga.busiest(tiles, "tl", 0.0, 1.0)
    assert (t_rr, nr_rr) == (101.0, 2) and (t_q, nr_q) == (100.0, 1)


def test_fit_recovers_known_costs() -> None:
    seed = random.randrange(2**31)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    cells = []
    for d in (0.02, 0.1, 0.3, 0.6, 1.0):
        tiles = np.maximum(1, rng.binomial(256, d, size=3000))[np.argsort(-rng.random(3000))]
        for kind in ("gluon",):
            cells.append(dict(tiles=tiles, us=ga.busiest(tiles, kind, 4.5, 1.9)[0]))
    c_row, c_tile, res = ga.fit(cells, "gluon")
    assert abs(c_row - 4.5) < 1e-3 and abs(c_tile - 1.9) < 1e-5 and res < 1e-6


def test_parse_shape() -> None:
    assert ga.parse_shape("H12 N32760+512text D128") == (12, 32760, 512)
    assert ga.parse_shape("H40 N75600 D128") == (40, 75600, 0)


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    tool = str(ROOT / "kernels" / "tools" / "gap_analysis.py")
    r = subprocess.run([sys.executable, tool, "--csv", str(tmp_path / "none.csv")], capture_output=True, text=True)
    assert r.returncode == 2 and "--csv" in r.stderr and "does not exist" in r.stderr
    csv = tmp_path / "b.csv"
    csv.write_text("shape,kernel\nH12 N32760 D128,sdpa_cudnn\n")
    r = subprocess.run([sys.executable, tool, "--csv", str(csv), "--shapes", "H1 N5 D64"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--shapes H1 N5 D64: not in b.csv" in r.stderr
