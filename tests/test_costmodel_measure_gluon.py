"""The measuring harness and ``impl: gluon`` entries (revision 9): a launch what-if of a Gluon entry runs the entry's
tl kernel at that configuration, ``{"impl": "tl"}`` names the tl kernel, an explicit Gluon override runs the Gluon
form; compiled Gluon kernels are found and read by the Gluon SASS reader."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "kernels")]
torch = pytest.importorskip("torch")
attention = pytest.importorskip("fgattn.attention")

from fgattn.launch import LaunchConfig  # noqa: E402

from fgsim.validation import measure  # noqa: E402
from fgsim.validation.cases import IMPL_TL, Case  # noqa: E402

GLUON = {"form": "ws2", "pipeline": 1, "fence": False}


def _entry(impl: str) -> LaunchConfig:
    extra = {"idx_early": True, "lpt": True, "one_row": True, "exp_poly": 0.25}
    if impl == "gluon":
        extra.update(impl="gluon", gluon=dict(GLUON))
    return LaunchConfig("fg", "h200", 128, 128, 128, 1, 8, 3, "bf16", "bhnd", extra, "test entry")


def _case(**kw: object) -> Case:
    return Case("x-0", "tiny", "uniform", 256, 1, 128, 128, 0.5, 1, kernels=("fg",), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("impl", ["gluon", "tl"])
def test_config_gluon_entry_what_ifs_run_its_tl_kernel(monkeypatch: pytest.MonkeyPatch, impl: str) -> None:
    monkeypatch.setattr(attention, "resolve_config", lambda *a, **k: _entry(impl))
    q = torch.zeros(1, 1, 256, 128)
    plain = measure._config("fg", q, _case())
    assert plain.extra.get("impl", "tl") == impl and plain.block_n == 128  # the table's entry, untouched
    for case in (_case(block_n=64, num_stages=2), _case(num_warps=4), _case(persistent=1, programs_per_sm=1),
                 _case(options=IMPL_TL)):
        cfg = measure._config("fg", q, case)
        assert "impl" not in cfg.extra and "gluon" not in cfg.extra, case
        assert cfg.extra["exp_poly"] == 0.25 and cfg.block_n == (case.block_n or 128)
    # an explicit Gluon override runs the Gluon form whatever the entry is
    opt = '{"impl": "gluon", "gluon": {"form": "ws2", "pipeline": 0}}'
    cfg = measure._config("fg", q, _case(options=opt))
    assert cfg.extra["impl"] == "gluon" and cfg.extra["gluon"] == {"form": "ws2", "pipeline": 0}


def test_gluon_kernels_are_read_by_the_gluon_reader() -> None:
    assert measure.is_gluon_kernel(SimpleNamespace(name="_fg_gluon_ws2"))
    assert measure.is_gluon_kernel(SimpleNamespace(name="", metadata=SimpleNamespace(name="_fg_gluon_ws")))
    assert not measure.is_gluon_kernel(SimpleNamespace(name="_attn_fwd"))
    assert not measure.is_gluon_kernel(SimpleNamespace(name="_fg_gluon_ws2x"))
    assert "producer_loop_instr" in measure.SASS_FIELDS and "producer_loop_instr" in measure.LATER_SASS_FIELDS


def test_resources_table_keeps_the_gluon_producer_figure() -> None:
    import json

    row = {"kind": "kernel", "kernel": "fg", "block_m": "128", "block_n": "128", "num_warps": "8",
           "num_stages": "3", "gran_n": "1", "head_dim": "128", "dtype": "bf16", "n_regs": "168",
           "shared": "229704", "n_spills": "0", "loop_ldst": "0", "loop_ldst_bytes": "0", "loop_mma": "16",
           "loop_instr": "479", "loop_mma_wait": "2", "loop_mufu": "66", "loop_fp32": "268",
           "producer_loop_instr": "315",
           "launch_extra": json.dumps({"impl": "gluon", "gluon": GLUON, "lpt": True, "exp_poly": 0.25})}
    tab = measure.resources_table([row])
    (key, e), = tab.items()
    assert "gluon-ws2-p1" in key and e["producer_loop_instr"] == 315 and e["loop_instr"] == 479
    tl = dict(row, launch_extra=json.dumps({"lpt": True}), producer_loop_instr="")
    assert "producer_loop_instr" not in next(iter(measure.resources_table([tl]).values()))


@pytest.mark.parametrize("kern", ["fg", "dense", "block"])
def test_config_option_the_gluon_form_does_not_read_runs_the_tl_kernel(monkeypatch: pytest.MonkeyPatch,
                                                                       kern: str) -> None:
    """Session 16 (M9): c-072 (dense ``tail_branch: false``), c-075 (block ``maxnreg: null``), c-090 / c-091 (dense
    ``exp_poly: 0``) kept the Gluon form, which reads none of these options: they timed the entry, not the what-if.
    An option-only override the Gluon form does not read is a what-if of the entry's tl kernel."""
    def entry(*_a: object, **_k: object) -> LaunchConfig:
        e = _entry("gluon")
        return LaunchConfig(kern, "h200", 128, 128, 128, 1 if kern != "block" else 128, 8, 3, "bf16", "bhnd",
                            dict(e.extra, tail_branch=True, maxnreg=240), "test entry")

    monkeypatch.setattr(attention, "resolve_config", entry)
    q = torch.zeros(1, 1, 256, 128)
    for opt, key, val in (('{"tail_branch": false}', "tail_branch", False), ('{"maxnreg": null}', "maxnreg", None),
                          ('{"exp_poly": 0}', "exp_poly", 0), ('{"exp_poly": 0, "order": "lpt"}', "exp_poly", 0)):
        cfg = measure._config(kern, q, _case(options=opt))
        assert "impl" not in cfg.extra and "gluon" not in cfg.extra, opt
        assert cfg.extra[key] == val and "order" not in cfg.extra, opt
    # options the Gluon form reads (its knobs, the index order) keep the Gluon form
    for opt in ('{"lpt": false}', '{"order": "lpt"}', '{"gluon": {"form": "ws2", "pipeline": 0}}'):
        cfg = measure._config(kern, q, _case(options=opt))
        assert cfg.extra.get("impl") == "gluon", opt
    assert measure._config(kern, q, _case(options='{"lpt": false}')).extra["lpt"] is False
