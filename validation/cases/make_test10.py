"""Generator of the frozen test list ``test10`` (for cost model revision 8; written 2026-11-30, unmeasured).

    python validation/cases/make_test10.py            # (re)writes validation/cases/test10.csv
    python validation/cases/make_test10.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before any revision-8 variant was fitted (test9 became development data when its
per-entry biases motivated revision 8's exp_poly pricing); the generator is ``fgsim.validation.cases.test10_cases``
(split ``test10`` of ``fgsim validate --measure --cases test10``): structured mask families (3-D windows, text tokens,
column stripes), N 12800 / 23040 / 16896 / 31744 / 12544 and seeds 9.993M used by no other list; the launch table's
(9245ed4) tuned entries at D 64/128 x M 64/128 at two shapes, fp16 at every (D, M); the exp_poly entries with on /
off and other-fraction twins (Case.options overrides), exp_poly on entries without it; a dense workload (density 1)
for fg D=128 M=128 (g1 entry and the g16 entry's tile form) against the dense entries; launch-config what-ifs
(BLOCK_N 32/64/128 x stages 2-4 x warps 4/8); persistent programs off / 1 / 2 per SM; SM partitions (green contexts)
of 24 / 32 / 80 / 104 / 132 SMs. Scored once, blind, by revision 8.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test10_cases

OUT = Path(__file__).resolve().parent / "test10.csv"


def render() -> str:
    """test10.csv's text (the same columns as every committed case list)."""
    return render_case_list(test10_cases(), list_fields(test10_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test10_cases()), __doc__))
