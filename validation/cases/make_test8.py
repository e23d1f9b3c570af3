"""Generator of the frozen test list ``test8`` (for the cost model revision after 5; written 2026-11-30, unmeasured).

    python validation/cases/make_test8.py            # (re)writes validation/cases/test8.csv
    python validation/cases/make_test8.py --check    # exit 1 if the committed CSV differs from this generator

Pattern of test7 (``fgsim.validation.cases.test7_cases``): structured mask families (3-D windows, text tokens,
column stripes), N 13824 / 21504 / 15872 / 27648 and seeds 9.98M used by no other list; the final launch table's
(08559f8) tuned entries at D 64/128 x M 64/128 at two shapes, fp16 at every (D, M); what-ifs around the entries the
committed model misprices (dense ``tail_branch`` D=128 M=128 / M=64 and D=64 M=128, fg ``one_row`` D=128 M=64 and
M=128: BLOCK_N, stages and warps; each takes its entry's launch options) and SM partitions (green contexts) of
32/56/80/96/104 SMs. Kept outside ``fgsim/`` on purpose: the session that wrote it could not change the package;
measure it with ``python -m fgsim validate --measure --cases validation/cases/test8.csv`` once ``validate``
accepts a path (or add ``test8`` to ``fgsim.validation.cases.SPLITS`` with this function).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from fgsim.validation.cases import CASE_FIELDS, Case, FrozenListBuilder, case_row

TEST8_SEED = 9_980_000
OUT = Path(__file__).resolve().parent / "test8.csv"


def test8_cases() -> list[Case]:
    """The frozen list ``test8`` (75 kernel rows), see the module docstring."""
    b = FrozenListBuilder("test8", "s", TEST8_SEED, ("text", "colstripes", "window3d"))
    b.tuned(((13824, 10), (27648, 7)), 0.03, 0.5)
    b.fp16(21504, 5, 0.12)
    b.whatifs((
        ("dense", "window3d", 21504, 5, 128, 128, 0.2,
         ((64, 2, 8), (64, 3, 8), (128, 2, 8), (128, 3, 8), (64, 4, 8), (128, 3, 4))),
        ("dense", "text", 15872, 8, 128, 64, 0.2,
         ((32, 3, 4), (64, 2, 4), (64, 3, 4), (64, 4, 4), (128, 3, 4), (64, 3, 8))),
        ("dense", "colstripes", 15872, 8, 64, 128, 0.2, ((64, 3, 8), (64, 4, 8), (128, 2, 8), (128, 3, 8))),
        ("fg", "colstripes", 21504, 5, 128, 64, 0.1,
         ((64, 2, 4), (64, 3, 4), (64, 4, 4), (32, 3, 4), (128, 3, 4), (64, 3, 8))),
        ("fg", "text", 15872, 8, 128, 128, 0.08, ((64, 2, 8), (64, 3, 8), (128, 2, 8), (128, 3, 8))),
    ))
    b.sm_partitions((((13824, 9), (128, 128), "window3d", ("fg", "block", "dense"), (56, 80, 104)),
                     ((13824, 9), (128, 64), "colstripes", ("fg", "dense"), (32, 96))))
    return b.cases


def render() -> str:
    """test8.csv's text (the same columns as every committed case list)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CASE_FIELDS, lineterminator="\n")
    w.writeheader()
    for c in test8_cases():
        w.writerow(case_row(c))
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed test8.csv differs")
    a = ap.parse_args()
    text = render()
    if a.check:
        ok = OUT.is_file() and OUT.read_text() == text
        print(f"{OUT}: {'matches its generator' if ok else 'DIFFERS from its generator'}")
        return 0 if ok else 1
    from fgsim.fileio import write_text_atomic

    write_text_atomic(OUT, text)
    print(f"wrote {OUT} ({len(test8_cases())} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
