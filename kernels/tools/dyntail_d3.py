"""Session 16, D3: the dynamic tail's second measurement (kernels/NOTES.md "Session 16, D3"): pool shares 0.3, 0.5
and 1.0 (fully dynamic: every row but each program's first from the counter, heaviest first), the candidate
launch table (the packaged one + ``extra.gluon.dyntail`` on the fg h200 D128 M128 g1 entry) checked and timed
through the packaged route (``fgattn.fg_attention(config=...)``), and T's timeline with each CTA's ``%smid``.

Runs :mod:`dyntail_probe` with these variants (same check generator, timing, rule and CSV columns)::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/dyntail_d3.py --out $OUT ...   # GPU (dyntail_probe's args)
    python3 kernels/tools/dyntail_d3.py --analyze CSV                                      # CPU: the rule

Variants: ``entry`` / ``entry_ctl`` (the packaged table, as D2), ``cand`` (the candidate table's entry through the
packaged route: pool share :data:`CAND_SHARE`), ``dyn50`` / ``dyn100`` (direct launches, shares 0.5 / 1.0);
the check adds ``list`` (the packaged list kernel, the bitwise reference) and ``dyn30`` (direct, share 0.3).
The rule (``dyntail_probe.rule_verdict``, D2's constants) judges ``cand`` only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

import dyntail_probe as dp  # noqa: E402

#: the candidate table (the packaged table with ``extra.gluon.dyntail`` = CAND_SHARE on the fg h200 D128 M128 g1
#: entry) and its share (chosen from the predictions in kernels/NOTES.md "Session 16, D3", before the call)
CAND_TABLE = ROOT / "kernels" / "logs" / "launch_configs-candidate-d3.json"
CAND_SHARE = 0.3
DYN_KNOBS = {"dyn30": (0.3, False), "dyn50": (0.5, False), "dyn100": (1.0, False)}
VARIANTS = ("entry", "entry_ctl", "cand", "dyn50", "dyn100")
CHECK_VARIANTS = ("list", "cand", "dyn30", "dyn50", "dyn100")
TAG = "dyntail-d3"

_orig_make_plans = dp.make_plans
_orig_run_variant = dp.run_variant
_CFG: dict[str, Any] = {}


def cand_config(dtype: str) -> Any:
    """The candidate table's fg h200 D128 M128 g1 entry (validated where the table is read)."""
    if dtype not in _CFG:
        from fgattn.launch import launch_config

        _CFG[dtype] = launch_config("fg", "h200", 128, 128, 1, dtype, table_path=str(CAND_TABLE))
    return _CFG[dtype]


def make_plans(idx: Any, programs: int | None = None, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """D2's plans (``list``, ``entry``) + the D3 variants; ``cand`` = the route's memoised plan (all SMs, as the
    route launches), also under the name ``dyn`` (the timeline's dynamic variant)."""
    import torch
    from fgattn.gluon_fg_dyntail import plan_dyntail, prepare_dyn_plan

    out = _orig_make_plans(idx, programs, names=())
    g = out["list"].programs
    for nm, (share, lf) in DYN_KNOBS.items():
        out[nm] = plan_dyntail(idx, programs=g, pool_share=share, light_first=lf)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    out["cand"] = out["dyn"] = prepare_dyn_plan(idx, cand_config("bf16").gluon_dyntail(), programs=sms)
    return out


def run_variant(name: str, q, k, v, idx, out, plans: dict[str, Any], layout: str = "bhnd",
                sm_scale: float | None = None):
    """``cand``: ``fgattn.fg_attention`` with the candidate entry (the packaged route); else D2's."""
    import fgattn
    import torch

    if name == "cand":
        cfg = cand_config("fp16" if q.dtype == torch.float16 else "bf16")
        return fgattn.fg_attention(q, k, v, idx, block_m=dp.M, gran_n=dp.G, layout=layout, out=out,
                                   sm_scale=sm_scale, config=cfg)
    return _orig_run_variant(name, q, k, v, idx, out, plans, layout, sm_scale)


def install() -> None:
    """Point :mod:`dyntail_probe` at the D3 variants."""
    dp.DYN_KNOBS.update(DYN_KNOBS)
    dp.VARIANTS = VARIANTS
    dp.CHECK_VARIANTS = CHECK_VARIANTS
    dp.CANDIDATES = ("cand",)
    dp.TAG = TAG
    dp.SCRIPT = Path(__file__).resolve()
    dp.make_plans = make_plans
    dp.run_variant = run_variant


def main(argv: list[str] | None = None) -> int:
    install()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--variants" not in argv:
        argv += ["--variants", ",".join(VARIANTS)]
    if "--dry-run" in argv:
        print(json.dumps(dict(cand_table=str(CAND_TABLE), cand_share=CAND_SHARE, dyn=DYN_KNOBS)), flush=True)
    return dp.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
