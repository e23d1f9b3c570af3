"""The README's fp32_per_score block recounts calib15's criterion (b) from the committed blind summaries."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation" / "tables"))
import fp32_per_score as table  # noqa: E402


def test_worse_cells_are_recounted_from_the_blind_summaries() -> None:
    bad, n = table.worse_cells()
    assert n == 18 and len(bad) == 8 > table.MAX_WORSE
    assert set(bad) == {"config/fg", "config/block", "config/dense", "dtype/block", "dtype/dense", "trace/fg",
                        "trace/block", "trace/dense"}
    text = table.render()
    assert "**not accepted**" in text and "| feedback | 128 × 128 × 128, 8 | 1 | 8.49 |" in text


def test_a_looser_criterion_changes_the_verdict(monkeypatch) -> None:
    monkeypatch.setattr(table, "WORSE_PTS", 100.0)
    assert table.worse_cells()[0] == [] and "**accepted**" in table.render()
