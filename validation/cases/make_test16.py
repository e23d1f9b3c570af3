"""Generator of the frozen test list ``test16`` (session 14, helper M4: revision 12's clock terms; written
2026-11-30 23:15 UTC, unmeasured).

    python validation/cases/make_test16.py            # (re)writes validation/cases/test16.csv
    python validation/cases/make_test16.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before revision 12 (which cost terms scale with the SM clock; validation/
MODEL_NOTES.md, "Session 14, helper M4") was written down or evaluated and before any fg recalibration; the
generator is ``fgsim.validation.cases.test16_cases`` (split ``test16`` of ``fgsim validate --measure --cases
test16``): two mask families no list took (``svg``: Sparse VideoGen's spatial / temporal heads; ``tilewin``:
sliding tile attention's 3-D tile windows; both on Wan2.1 30 x 52 latent frames) beside ``causalwin``; the transfer
axes (tuned entries at D 64/128 x M 64/128, fp16, launch what-ifs, persistent off / 1 / 2, SM partitions 56 / 100 /
72, two DiT trace entries) on N and seeds no other list takes; axis ``bench``: the dense / block D=128 M=128 entries
(the Gluon contig form), the fg D=128 M=128 g1 Gluon entry and the tl dense D=64 M=128 entry at benchmark shapes,
four of them with a long-run twin (``fgsim.validation.cases.test16_long_ids``, timed with ``TEST16_LONG``: about
250 ms per CUDA-graph replay, 5 rounds) so the list spans short and sustained runs' SM clocks. Every row records the
SM clock sampled under load (``sm_clock_mhz``). To be scored once, blind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test16_cases

OUT = Path(__file__).resolve().parent / "test16.csv"


def render() -> str:
    """test16.csv's text (the same columns as every committed case list)."""
    return render_case_list(test16_cases(), list_fields(test16_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test16_cases()), __doc__))
