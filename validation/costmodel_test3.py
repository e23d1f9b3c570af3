"""Measure the fresh frozen test list (validation/cases/test3.csv) once on a GPU (see costmodel_test3.sh)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def main() -> None:
    from fgsim.provenance import ClockSampler, environment
    from fgsim.validation.cases import load_case_list
    from fgsim.validation.measure import measure_cases, precompile

    t0 = time.time()
    cases = load_case_list("test3")
    env = environment()
    out = Path(os.environ.get("OUT", "/tmp/fgsim-out")) / "h200-2026-11-30-costmodel-test3.csv"
    with ClockSampler() as clocks:
        precompile(cases, workers=15)
        print(f"precompiled after {time.time() - t0:.0f} s", flush=True)
        rows = measure_cases(cases, out, rounds=3, progress=True, clocks=clocks, env=env)
    print(f"{len(rows)} rows of {len(cases)} cases in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
