"""Generator of the frozen test list ``test8`` (for the cost model revision after 5; written 2026-11-30, unmeasured).

    python validation/cases/make_test8.py            # (re)writes validation/cases/test8.csv
    python validation/cases/make_test8.py --check    # exit 1 if the committed CSV differs from this generator

Pattern of test7 (``fgsim.validation.cases.test7_cases``): structured mask families (3-D windows, text tokens,
column stripes), N 13824 / 21504 / 15872 / 27648 and seeds 9.98M used by no other list; the final launch table's
(08559f8) tuned entries at D 64/128 x M 64/128 at two shapes, fp16 at every (D, M); what-ifs around the entries the
committed model misprices (dense ``tail_branch`` D=128 M=128 / M=64 and D=64 M=128, fg ``one_row`` D=128 M=64 and
M=128: BLOCK_N, stages and warps; each takes its entry's launch options) and SM partitions (green contexts) of
32/56/80/96/104 SMs. Written outside ``fgsim/`` first (the session that wrote it could not change the package);
the generator now lives in the package (``fgsim.validation.cases.test8_cases``, split ``test8`` of
``fgsim validate --measure --cases test8``); this script renders and checks the committed file from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import CASE_FIELDS, frozen_list_main, render_case_list, test8_cases

OUT = Path(__file__).resolve().parent / "test8.csv"


def render() -> str:
    """test8.csv's text (the same columns as every committed case list)."""
    return render_case_list(test8_cases(), CASE_FIELDS)


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test8_cases()), __doc__))
