"""Generator of the frozen test list ``test13`` (for revision 9 + calib11 on the final kernels of 2026-11-30; written
2026-11-30 19:25 UTC, unmeasured).

    python validation/cases/make_test13.py            # (re)writes validation/cases/test13.csv
    python validation/cases/make_test13.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before calib11 was measured, before any L2-locality variant was evaluated and before
any measurement of this session was looked at; the generator is ``fgsim.validation.cases.test13_cases`` (split
``test13`` of ``fgsim validate --measure --cases test13``): the transfer axes as in test12 (tuned entries at D 64/128 x
M 64/128, fp16, launch what-ifs, persistent off / 1 / 2, SM partitions, two DiT trace entries) on mask families and
N no calibration list takes, and, new (axis ``bench``), the fg D=128 M=128 g1 Gluon ws2 entry at benchmark-like
shapes with many rows per SM: H12 N32760 (3-D windows), H12 N33272 (32760 + 512 text tokens) and H40 N75600, with the
list schedule on launch-ordered (``order: lpt``) and natural-order indices and the walk schedule on the launch-ordered
index as a what-if (plus the entry's tl kernel on one launch-ordered case). To be scored once, blind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test13_cases

OUT = Path(__file__).resolve().parent / "test13.csv"


def render() -> str:
    """test13.csv's text (the same columns as every committed case list)."""
    return render_case_list(test13_cases(), list_fields(test13_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test13_cases()), __doc__))
