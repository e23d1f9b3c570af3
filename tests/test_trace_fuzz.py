"""Fuzz the .fgt reader: a few hundred seeded mutations must each read fully or raise one FgTraceError line.

The mutations are those of ``validation/fuzz_traces.py`` (which runs ≥ 10,000 with timeouts and memory limits).
The seed is new every run and printed; replay a failure with ``FGSIM_FUZZ_SEED=<seed> pytest tests/test_trace_fuzz.py``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = 300
BOMB_MIB = 32


def load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_traces", ROOT / "validation" / "fuzz_traces.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    fz = load_fuzzer()
    bases = fz.base_traces(tmp_path_factory.mktemp("fuzz-bases"))
    return fz, bases, fz.bomb_stream(BOMB_MIB * 2**20)


def test_mutated_traces_fail_cleanly(fuzzer, tmp_path):
    fz, bases, bomb = fuzzer
    seed = int(os.environ.get("FGSIM_FUZZ_SEED") or np.random.SeedSequence().entropy % 2**32)
    print(f"fuzz seed {seed} (replay: FGSIM_FUZZ_SEED={seed})")
    outcomes, kinds, slowest = {}, set(), 0.0
    for i in range(CASES):
        rng = np.random.default_rng([seed, i])
        kind, data = fz.mutate(bases[int(rng.integers(0, len(bases)))], rng, bomb, BOMB_MIB * 2**20)
        path = tmp_path / f"case{i}.fgt"
        path.write_bytes(data)
        t0 = time.perf_counter()
        try:
            outcome = fz.exercise(path)
        except Exception as exc:  # noqa: BLE001 - anything but FgTraceError is the failure looked for
            pytest.fail(f"seed {seed} case {i} ({kind}): {type(exc).__name__}: {exc}")
        slowest = max(slowest, time.perf_counter() - t0)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        kinds.add(kind)
        path.unlink()
    assert outcomes.get("FgTraceError", 0) > CASES // 2, outcomes  # most mutations must be caught
    assert len(kinds) >= 10, kinds
    assert slowest < 3.0, f"a case took {slowest:.1f} s"


def test_bombs_are_refused_before_inflating(fuzzer, tmp_path):
    """A member that inflates to 32 MiB, declared honestly or not, is refused without inflating it."""
    import tracemalloc
    import zipfile

    from fgsim.errors import FgTraceError
    from fgsim.trace import META_MEMBER, open_trace

    fz, bases, bomb = fuzzer
    names = fz.member_names(bases[0])
    for name in (META_MEMBER, next(n for n in names if n.startswith("counts/")),
                 next(n for n in names if n.startswith("masks/"))):
        for declared in (BOMB_MIB * 2**20, len(fz.read_member(bases[0], name))):
            path = tmp_path / "bomb.fgt"
            path.write_bytes(fz.add_bomb(fz.rebuild(bases[0], {name: None}), name, bomb, declared,
                                         BOMB_MIB * 2**20))
            with zipfile.ZipFile(path) as z:
                assert z.getinfo(name).file_size == declared
            tracemalloc.start()
            try:
                with pytest.raises(FgTraceError):
                    with open_trace(path) as tr:
                        tr.verify()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 8 * 2**20, (name, declared, peak)
