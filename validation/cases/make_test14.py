"""Generator of the frozen test list ``test14`` (revision 10 of session 13, on the final launch table 181d183;
written 2026-11-30 20:15 UTC, unmeasured).

    python validation/cases/make_test14.py            # (re)writes validation/cases/test14.csv
    python validation/cases/make_test14.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before any revision-10 variant (validation/MODEL_NOTES.md, "Revision 10 of session
13") was evaluated; the generator is ``fgsim.validation.cases.test14_cases`` (split ``test14`` of ``fgsim validate
--measure --cases test14``): the transfer axes (tuned entries at D 64/128 x M 64/128, fp16, launch what-ifs,
persistent off / 1 / 2, SM partitions, two DiT trace entries) on N and seeds no other list takes, with the benchmark
generator's masks (``wanwin`` / ``wanwin-text`` = ``fgattn.masks.window_mask``, 3-D windows on the Wan2.1 grid + 64
sinks, optionally + 512 text tokens) as a mask family for the first time, and axis ``bench``: the fg D=128 M=128 g1
Gluon ws2 entry on those masks at H12 N32760 / H12 N33272 / H20 N32760, list schedule on launch-ordered (``order:
lpt``, the benchmarks' index) and natural-order indices, the walk on the launch-ordered index as a what-if, the
entry's tl kernel on one launch-ordered case. To be scored once, blind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test14_cases

OUT = Path(__file__).resolve().parent / "test14.csv"


def render() -> str:
    """test14.csv's text (the same columns as every committed case list)."""
    return render_case_list(test14_cases(), list_fields(test14_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test14_cases()), __doc__))
