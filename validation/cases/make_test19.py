"""Generator of the frozen test list ``test19`` (session 17, helper M10: the effective-clock calibration calib16;
written 2026-12-01 05:50 UTC, unmeasured).

    python validation/cases/make_test19.py            # (re)writes validation/cases/test19.csv
    python validation/cases/make_test19.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before calibration rows c-117..c-132 and the four corrected what-if rows were
measured and before calib16 was fitted (composition pre-registered in validation/MODEL_NOTES.md, "Session 16, helper
M9"); the generator is ``fgsim.validation.cases.test19_cases`` (split ``test19``): test18's transfer axes (tuned
entries at D 64/128 x M 64/128, fp16, launch what-ifs, persistent off / 1 / 2, SM partitions 52 / 116 / 84 through
green contexts, two DiT trace entries) on test mask families of earlier lists (``cubetopk``, ``tilewin``, ``vslash``;
none of calibration's) with N and seeds no other list takes; axis ``bench``: the dense / block D=128 M=128 entries
(the Gluon contig form) and the packaged fg D=128 M=128 g1 Gluon entry at H12 N32760 and H10 N38220, plus the clock
axis: one long-run twin per kernel (~250 ms per CUDA-graph replay, 5 rounds). Every row records NVML's SM clock and
the SMs' effective clock (``sm_mhz_eff``) under load. To be scored once, blind, with calib16 (effective clock) and
calib14 (NVML clock) in the same run (M9's rule).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test19_cases

OUT = Path(__file__).resolve().parent / "test19.csv"


def render() -> str:
    """test19.csv's text (the same columns as every committed case list)."""
    return render_case_list(test19_cases(), list_fields(test19_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test19_cases()), __doc__))
