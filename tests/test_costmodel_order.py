"""Launch order (revision 9): the tl kernels and the Gluon form walk the LPT row order exactly when the call's index
carries one (``extra['order'] == 'lpt'``) and the entry's ``lpt`` is not false -- fgattn's rule -- and the natural
order otherwise (an index built without ``order``, as the validation harness builds it)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fgsim.hardware import load_gpu
from fgsim.launchcfg import launch_config
from fgsim.model.assemble import launch_order, walks_lpt
from fgsim.model.cta_cost import cta_tables
from fgsim.model.params import ModelParams

H200 = load_gpu("h200")


def _with(cfg, **extra):  # noqa: ANN001, ANN202
    return replace(cfg, extra={**cfg.extra, **extra})


def test_walks_lpt_needs_an_ordered_index_and_the_entry_lpt() -> None:
    tl = launch_config("fg", "h200", 128, 128, 1)
    assert tl.extra.get("lpt", True)  # the table's entry says lpt
    assert not walks_lpt(tl)  # ... but an index without order runs the natural order
    assert walks_lpt(_with(tl, order="lpt"))
    assert not walks_lpt(_with(tl, order="lpt", lpt=False))  # revision 8 priced this one LPT (it read order only)
    dense = launch_config("dense", "h200", 128, 128, 1)
    assert not walks_lpt(_with(dense, order="lpt"))


def test_launch_order_follows_the_rule(rng: np.random.Generator) -> None:
    tl = launch_config("fg", "h200", 128, 128, 1)
    c = rng.integers(0, 200, size=(3, 17))
    c[1, 4] = 5000  # one heavy row: LPT promotes it to the front
    natural = launch_order(c, tl)
    assert np.array_equal(natural, c.reshape(-1))
    lpt = launch_order(c, _with(tl, order="lpt"))
    assert lpt[0] == 5000 and sorted(lpt) == sorted(natural)
    assert np.array_equal(launch_order(c, _with(tl, order="lpt", lpt=False)), natural)


@pytest.mark.parametrize("ordered", [False, True])
def test_gluon_tables_walk_the_order_the_call_has(ordered: bool) -> None:
    tl = launch_config("fg", "h200", 128, 128, 1)
    gl = _with(tl, impl="gluon", gluon={"form": "ws2", "pipeline": 1, "fence": False})
    if ordered:
        gl = _with(gl, order="lpt")
    t = cta_tables(gl, H200, ModelParams(), 8192)
    assert t.lpt is ordered  # revision 8: always LPT (it read the entry's lpt only)


def test_what_if_of_a_gluon_entry_is_its_tl_kernel(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """``predict --block-n / --num-stages / --num-warps`` on an ``impl: gluon`` entry prices the entry's tl kernel at
    that configuration (the Gluon form has one tile); the entry itself, or an override equal to it, stays Gluon."""
    import json
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "kernels" / "fgattn" / "data" / "launch_configs.json"
    data = json.loads(src.read_text())
    for e in data["entries"]:
        if (e["kernel"], e["gpu"], e["head_dim"], e["block_m"], e["gran_n"]) == ("fg", "h200", 128, 128, 1):
            e["extra"] = {**e["extra"], "impl": "gluon", "gluon": {"form": "ws2", "pipeline": 1, "fence": False}}
    table = tmp_path / "table.json"
    table.write_text(json.dumps(data))
    monkeypatch.setenv("FGATTN_LAUNCH_TABLE", str(table))
    entry = launch_config("fg", "h200", 128, 128, 1)
    assert entry.extra["impl"] == "gluon"
    assert launch_config("fg", "h200", 128, 128, 1, block_n=entry.block_n).extra["impl"] == "gluon"
    for kw in ({"block_n": 64}, {"num_stages": 2}, {"num_warps": 4}):
        cfg = launch_config("fg", "h200", 128, 128, 1, **kw)
        assert "impl" not in cfg.extra and "gluon" not in cfg.extra and cfg.extra["one_row"], kw
        assert "its tl kernel" in cfg.source
