"""full_run_weights: how many calls of the whole run each captured (pass, layer) stands for, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from fgsim.runpredict import RunInfo, full_run_weights


def info(num_layers: int, num_steps: int, pass_steps: dict[int, int], layers: list[int]) -> RunInfo:
    return RunInfo(name="t", n_tokens=128, num_heads=2, head_dim=64, block_m=64, num_layers=num_layers,
                   num_steps=num_steps, passes_per_step=2, pass_steps=pass_steps, layers=layers)


def test_nearest_step_and_layer_hand_computed() -> None:
    # passes 0, 1 (cond/uncond) at step 0 and pass 6 at step 3 of a 5-step run; both layers captured.
    # Steps 0, 1 are nearest to step 0; steps 2, 3, 4 to step 3. Each (step, layer) of the run is 2 calls (CFG),
    # shared by the entries of the nearest step and layer: step 0 has two entries per layer, step 3 one.
    ents = [(0, 0), (0, 1), (1, 0), (1, 1), (6, 0), (6, 1)]
    w = full_run_weights(info(2, 5, {0: 0, 1: 0, 6: 3}, [0, 1]), ents)
    np.testing.assert_allclose(w, [2, 2, 2, 2, 6, 6])
    assert w.sum() == 5 * 2 * 2


def test_uncaptured_layers_borrow_the_nearest_captured_layer() -> None:
    # layers 0 and 3 of 5 captured at one step: layers 1 -> 0; 2 -> 3 (|2-3| < |2-0|); 4 -> 3
    w = full_run_weights(info(5, 4, {0: 0}, [0, 3]), [(0, 0), (0, 3)])
    np.testing.assert_allclose(w, [4 * 2 * 2, 4 * 2 * 3])


def test_equidistant_step_goes_to_the_earlier_one() -> None:
    # captured steps 0 and 2 of 3: step 1 is equidistant and counts for step 0 (first minimum)
    w = full_run_weights(info(1, 3, {0: 0, 4: 2}, [0]), [(0, 0), (4, 0)])
    np.testing.assert_allclose(w, [2 * 2, 1 * 2])


@pytest.mark.parametrize("seed", range(5))
def test_weights_always_sum_to_the_whole_run(seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps, layers = int(rng.integers(1, 60)), int(rng.integers(1, 40))
    cap_steps = sorted(set(rng.integers(0, steps, size=int(rng.integers(1, 5))).tolist()))
    cap_layers = sorted(set(rng.integers(0, layers, size=int(rng.integers(1, 6))).tolist()))
    pass_steps = {2 * s + b: s for s in cap_steps for b in (0, 1)}
    ents = [(p, lay) for p in pass_steps for lay in cap_layers]
    w = full_run_weights(info(layers, steps, pass_steps, cap_layers), ents)
    assert w.sum() == pytest.approx(steps * layers * 2)
    assert (w > 0).any() and (w >= 0).all()
