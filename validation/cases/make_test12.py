"""Generator of the frozen test list ``test12`` (for cost model revision 10; written 2026-11-30, unmeasured).

    python validation/cases/make_test12.py            # (re)writes validation/cases/test12.csv
    python validation/cases/make_test12.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before any revision-10 variant was looked at (test11 becomes development data the
moment its errors are used for a revision-10 decision); the generator is ``fgsim.validation.cases.test12_cases``
(split ``test12`` of ``fgsim validate --measure --cases test12``): two mask families no earlier list took (framewin:
whole frames in a temporal window plus the first frame; dilated: every s-th key plus the diagonal block) beside 3-D
windows and text tokens, two DiT trace entries no earlier list took (the 8x16x28 traces), N 13056 / 28160 / 17664 /
22272 / 20224 / 10496 and seeds 9.997M used by no other list; the table's tuned entries at D 64/128 x M 64/128 at two
shapes; the fg D=128 M=128 g1 entry (the Gluon form on the H200) at densities 0.03 / 0.2 / 0.7 with its tl kernel
beside each; fp16 at every (D, M); launch-config what-ifs around dense D=128 M=128, dense D=128 M=64, fg D=64 M=64,
fg D=128 M=128 (its tl kernel) and block D=64 M=64; persistent programs off / 1 / 2 per SM (fg D=128 M=64); SM
partitions (green contexts) of 24 / 72 / 132 SMs (all kernels, D=128 M=128) and 40 / 112 SMs (all kernels, D=64
M=64). To be scored once, blind, by revision 10 (or not measured if revision 10 is not accepted).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test12_cases

OUT = Path(__file__).resolve().parent / "test12.csv"


def render() -> str:
    """test12.csv's text (the same columns as every committed case list)."""
    return render_case_list(test12_cases(), list_fields(test12_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test12_cases()), __doc__))
