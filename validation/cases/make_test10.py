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

import argparse
import csv
import io
import sys
from pathlib import Path

from fgsim.validation.cases import case_row, list_fields, test10_cases

OUT = Path(__file__).resolve().parent / "test10.csv"


def render() -> str:
    """test10.csv's text (the same columns as every committed case list)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list_fields(test10_cases()), lineterminator="\n")
    w.writeheader()
    for c in test10_cases():
        w.writerow(case_row(c))
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed test10.csv differs")
    a = ap.parse_args()
    text = render()
    if a.check:
        ok = OUT.is_file() and OUT.read_text() == text
        print(f"{OUT}: {'matches its generator' if ok else 'DIFFERS from its generator'}")
        return 0 if ok else 1
    from fgsim.fileio import write_text_atomic

    write_text_atomic(OUT, text)
    print(f"wrote {OUT} ({len(test10_cases())} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
