"""Generator of the frozen test list ``test11`` (for cost model revision 9; written 2026-11-30, unmeasured).

    python validation/cases/make_test11.py            # (re)writes validation/cases/test11.csv
    python validation/cases/make_test11.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before any revision-9 decision (test10 became development data: revision 9 changes
the model after test10's one scoring); the generator is ``fgsim.validation.cases.test11_cases`` (split ``test11`` of
``fgsim validate --measure --cases test11``): structured mask families (text tokens, column stripes, 3-D windows per
head) and two DiT trace entries no earlier list took, N 11520 / 26880 / 15600 / 18944 / 24832 and seeds 9.996M used
by no other list; the launch table's tuned entries at D 64/128 x M 64/128 at two shapes and the fg D=128 M=128 g1
entry (the final table's entry, whatever implementation it names) at densities 0.02 / 0.1 / 0.5, with that entry's
tl kernel beside it (options {"impl": "tl"}); fp16 at every (D, M); launch-config what-ifs (BLOCK_N 32/64/128 x
stages 2-4 x warps 4/8; the what-ifs of an ``impl: gluon`` entry are its tl kernel at that configuration) around fg
D=128 M=128, dense D=64 M=128, block D=128 M=64, fg D=64 M=64 and fg D=128 M=64; persistent programs off / 1 / 2
per SM (fg D=64 M=128); SM partitions (green contexts) of 16 / 64 / 132 SMs (all kernels, D=128 M=128) and 32 / 96
SMs (all kernels, D=64 M=64). To be scored once, blind, by revision 9.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test11_cases

OUT = Path(__file__).resolve().parent / "test11.csv"


def render() -> str:
    """test11.csv's text (the same columns as every committed case list)."""
    return render_case_list(test11_cases(), list_fields(test11_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test11_cases()), __doc__))
