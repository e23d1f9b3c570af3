"""Generator of the frozen test list ``test17`` (session 15, helper M5: the fg row end priced, the clock study,
calib14; written 2026-12-01 00:30 UTC, unmeasured).

    python validation/cases/make_test17.py            # (re)writes validation/cases/test17.csv
    python validation/cases/make_test17.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before the fg Gluon row end was priced, before the clock study's measurement,
before calib14 was measured or fitted; the generator is ``fgsim.validation.cases.test17_cases`` (split ``test17``
of ``fgsim validate --measure --cases test17``): two mask families no list took (``vslash``: MInference's
vertical-slash with whole-frame slash offsets; ``cubetopk``: VSA's top-k cubes of 2 frames x 5 x 13 tokens; both on
Wan2.1 30 x 52 latent frames) beside ``radial``; the transfer axes (tuned entries at D 64/128 x M 64/128, fp16,
launch what-ifs, persistent off / 1 / 2, SM partitions 80 / 108 / 96, two DiT trace entries) on N and seeds no
other list takes; axis ``bench``: the dense / block D=128 M=128 entries (the Gluon contig form) and the packaged fg
D=128 M=128 g1 Gluon entry (order-only options: whatever row end the final table adopts runs) at benchmark shapes,
three of them with a long-run twin (``fgsim.validation.cases.test17_long_ids``, timed with ``TEST17_LONG``: about
250 ms per CUDA-graph replay, 5 rounds). Every row records the SM clock sampled under load. To be scored once,
blind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test17_cases

OUT = Path(__file__).resolve().parent / "test17.csv"


def render() -> str:
    """test17.csv's text (the same columns as every committed case list)."""
    return render_case_list(test17_cases(), list_fields(test17_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test17_cases()), __doc__))
