"""Generator of the frozen test list ``test15`` (session 14: the Gluon contig pricing, the clock-aware variant and
calib13; written 2026-11-30 22:00 UTC, unmeasured).

    python validation/cases/make_test15.py            # (re)writes validation/cases/test15.csv
    python validation/cases/make_test15.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before the contig pricing and the clock-aware variant (validation/MODEL_NOTES.md,
"Session 14") were evaluated and before calib13 was measured; the generator is ``fgsim.validation.cases.test15_cases``
(split ``test15`` of ``fgsim validate --measure --cases test15``): two mask families no list took (``radial``:
radial attention's spatial window halving per doubling of the frame distance; ``causalwin``: frame-causal windows
with the first frame as a sink; both on Wan2.1 30 x 52 latent frames) beside the benchmark generator's ``wanwin``;
the transfer axes (tuned entries at D 64/128 x M 64/128, fp16, launch what-ifs, persistent off / 1 / 2, SM
partitions 40 / 124 / 88, two DiT trace entries) on N and seeds no other list takes; axis ``bench``: the dense /
block D=128 M=128 entries (the Gluon contig form where the final table adopts it) at benchmark and new shapes and
densities, and the fg D=128 M=128 g1 Gluon entry on the benchmark generator's masks with new seeds. Every row records
the SM clock sampled under load (``sm_clock_mhz``). To be scored once, blind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test15_cases

OUT = Path(__file__).resolve().parent / "test15.csv"


def render() -> str:
    """test15.csv's text (the same columns as every committed case list)."""
    return render_case_list(test15_cases(), list_fields(test15_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test15_cases()), __doc__))
