"""Generator of the frozen test list ``test18`` (session 16, helper M8: the FP32 work per score measured, calib15;
written 2026-12-01 02:50 UTC, unmeasured).

    python validation/cases/make_test18.py            # (re)writes validation/cases/test18.csv
    python validation/cases/make_test18.py --check    # exit 1 if the committed CSV differs from this generator

Written and committed unmeasured, before the softmax microbenchmark's timed FP32 work per score was measured and
before calib15 was fitted; the generator is ``fgsim.validation.cases.test18_cases`` (split ``test18`` of ``fgsim
validate --measure --cases test18``): two mask families no list took (``clusterk``: Sparse VideoGen2's semantic
clusters before its permutation, fine-grained and scattered; ``moba``: MoBA's 1,536-token chunks, aligned to 128-key
tiles) beside ``causalwin``; the transfer axes (tuned entries at D 64/128 x M 64/128, fp16, launch what-ifs,
persistent off / 1 / 2, SM partitions 44 / 92 / 68 through green contexts, two DiT trace entries) on N and seeds no
other list takes; axis ``bench``: the dense / block D=128 M=128 entries (the Gluon contig form) and the packaged fg
D=128 M=128 g1 Gluon entry at H12 N32760 and H10 N37440. Every row records NVML's SM clock and the SMs' effective
clock (``sm_mhz_eff``) under load. To be scored once, blind, with calib15 (or calib14 if calib15 is not accepted).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgsim.validation.cases import frozen_list_main, list_fields, render_case_list, test18_cases

OUT = Path(__file__).resolve().parent / "test18.csv"


def render() -> str:
    """test18.csv's text (the same columns as every committed case list)."""
    return render_case_list(test18_cases(), list_fields(test18_cases()))


if __name__ == "__main__":
    sys.exit(frozen_list_main(OUT, render(), len(test18_cases()), __doc__))
