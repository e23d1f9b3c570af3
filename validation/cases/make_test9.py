"""Generator of the frozen test list ``test9`` (for cost model revision 7; written 2026-11-30, unmeasured).

    python validation/cases/make_test9.py            # (re)writes validation/cases/test9.csv
    python validation/cases/make_test9.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before any revision-7 variant was fitted; the generator is
``fgsim.validation.cases.test9_cases`` (split ``test9`` of ``fgsim validate --measure --cases test9``): structured
mask families (column stripes, 3-D windows, text tokens), N 10752 / 29696 / 19968 / 14848 and seeds 9.99M used by no
other list; the final launch table's tuned entries at D 64/128 x M 64/128 at two shapes, fp16 at every (D, M);
launch-config what-ifs (BLOCK_N 32/64/128 x stages 2-4 x warps 4/8) around dense D=128 M=128, block D=128 M=64, fg
D=64 M=128, dense D=64 M=64 and fg D=128 M=64; persistent programs off / 1 / 2 per SM; SM partitions (green
contexts) of 16 / 48 / 64 / 120 / 132 SMs. Scored once, blind, by revision 7.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import CASE_FIELDS, frozen_list_main, render_case_list, test9_cases

OUT = Path(__file__).resolve().parent / "test9.csv"


def render() -> str:
    """test9.csv's text (the same columns as every committed case list)."""
    return render_case_list(test9_cases(), CASE_FIELDS)


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test9_cases()), __doc__))
