"""What makes `fgsim predict --model` fast keeps its results: calls with equal counts simulated once over the
whole run (cached synthesized counts), repeated array objects keyed once."""

from __future__ import annotations

import numpy as np
import pytest

from fgsim.calibration import resolve
from fgsim.endtoend import SyntheticDensityCounts
from fgsim.hardware import load_gpu
from fgsim.launchcfg import launch_config
from fgsim.model import assemble
from fgsim.model.assemble import KernelPlan, predict_workload
from fgsim.runpredict import RunInfo, predict_run


def _small_run(passes: int = 30, layers: int = 3) -> tuple[SyntheticDensityCounts, RunInfo]:
    wl = SyntheticDensityCounts(n_tokens=4096, heads=4, layers=layers, passes=passes, block_m=128, density=0.4)
    info = RunInfo(name="small", n_tokens=4096, num_heads=4, head_dim=128, block_m=128, num_layers=layers,
                   num_steps=passes // 2, passes_per_step=2, pass_steps={p: p // 2 for p in range(passes)},
                   layers=list(range(layers)), source="synthesized")
    return wl, info


def _count_simulated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows (distinct calls) handed to the scheduler, per simulate_calls / simulate_persistent call (the fg entry
    names the Gluon form since launch table d370267: persistent programs)."""
    rows: list[int] = []

    def spy_of(real):  # noqa: ANN001, ANN202
        def spy(idx, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            rows.append(int(idx.shape[0]))
            return real(idx, *a, **k)
        return spy

    monkeypatch.setattr(assemble, "simulate_calls", spy_of(assemble.simulate_calls))
    monkeypatch.setattr(assemble, "simulate_persistent", spy_of(assemble.simulate_persistent))
    return rows


@pytest.mark.parametrize("kernel", ["fg", "block"])
def test_cached_counts_are_simulated_once_per_run_with_identical_results(kernel, monkeypatch):
    """predict_run prices a workload with cached counts (the synthesized counts of `predict --model`: one array per
    layer, the same for every pass) in one plan run: one simulation per distinct layer, and every number equal, bit
    for bit, to pricing the calls in chunks of 2 (each chunk simulating its own distinct calls)."""
    wl, info = _small_run()
    gpu = load_gpu("h200")
    r = resolve(gpu)
    rows = _count_simulated(monkeypatch)
    rp = predict_run(wl, info, gpu, [kernel])
    assert sum(rows) == info.num_layers  # 90 calls (more than one chunk of 64), 3 distinct count arrays
    got = rp.kernels[kernel]
    rows.clear()
    cfg = launch_config(kernel, "h200", 128, 128, 1, "bf16")
    ref = predict_workload(wl, cfg, gpu, r.params, params_source=r.note, entries=wl.entries(), num_heads=4,
                           stored_block_m=128, chunk=2, resources=r.resources)
    assert sum(rows) == 90  # 45 chunks of 2 calls of different layers: every call simulated
    assert np.array_equal(got.per_call_s, ref.per_call_s)
    assert got.breakdown_s == ref.breakdown_s and got.flops == ref.flops
    assert len(np.unique(got.per_call_s)) >= 2  # not a run of identical calls


def test_synthesized_counts_are_read_only():
    """Every pass shares one cached array per layer: a caller writing into it would change all passes."""
    wl, _ = _small_run()
    c = wl.counts(0, 1)
    assert c is wl.counts(5, 1) and not c.flags.writeable
    with pytest.raises(ValueError):
        c[0, 0] = 7


class _FreshArrays:
    """A sequence that builds a new array on every access (the previous one is freed: its id can be reused)."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.arrays[i].copy()


def test_plan_keys_repeated_objects_once_and_never_confuses_fresh_ones():
    """The same array object passed for several calls is keyed once; arrays made on the fly (whose ids Python may
    reuse once freed) are each priced as themselves."""
    seed = 11
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    gpu = load_gpu("h200")
    r = resolve(gpu)
    cfg = launch_config("fg", "h200", 128, 128, 1, "bf16")
    plan = KernelPlan.build(cfg, gpu, r.params, 64 * 128, 4, resources=r.resources)
    a, b, c = (rng.integers(0, 4000, size=(4, 64)).astype(np.int32) for _ in range(3))
    alone = {k: plan.run([x])[0][0] for k, x in (("a", a), ("b", b), ("c", c))}
    assert len(set(alone.values())) == 3
    pc, bd, _ = plan.run([a, b, a, c, a, b])
    assert pc.tolist() == [alone[k] for k in "abacab"]
    assert np.array_equal(bd[0], bd[2]) and np.array_equal(bd[1], bd[5])
    pc2, _, _ = plan.run(_FreshArrays([a, b, c, b, a, c]))
    assert pc2.tolist() == [alone[k] for k in "abcbac"]
