"""Session 17, helper K: the pre-registered rules on the call's CSVs (kernels/NOTES.md "Session 17, K").

    python3 kernels/tools/gran_expand_analyze.py --gran GRAN_CSV --fg FG_CSV --check-ok yes|no [--json OUT.json]

Every ratio is paired per round: the median over rounds of t_a / t_b of the same round (``ms_rounds``, round r at
index r), per cell (H, N, text tokens, gran_n, density target).

- **Lever 1, expand** (fg D128 M128 gran 16 / 64 by the gran-1 Gluon list kernel on the expanded index):
  ``fg_attention_expand`` / ``fg_attention`` (the packaged tl entry); control ``fg_attention_control`` /
  ``fg_attention`` (the packaged entry timed twice).  Adopted iff the float64 checks passed, the control's geo-mean
  over all its cells is in 1 +- :data:`CONTROL_BAND`, >= :data:`EXPAND_MIN_CELLS` cells were measured, every
  ``fg_attention_expand`` row routed ``gluon list`` and every ``fg_attention`` row ``tl``, every cell <=
  :data:`EXPAND_MAX_REL` and the geo-mean over the cells <= :data:`EXPAND_GEO`.
- **Lever 2, c_row** (the list planner's row cost 1.45 on the fg D128 M128 g1 entry): ``fg_attention_crow`` /
  ``fg_attention``; control ``fg_attention_control`` / ``fg_attention``.  Adopted iff the float64 / bitwise checks
  passed, the control is valid (as above), >= :data:`MIN_SHAPES` of the 8 D128 shapes were measured, every crow row
  routed ``gluon list``, no cell > :data:`CROW_MAX_REL` (long-row cells included) and the geo-mean over the d <=
  :data:`CROW_LOW_D` cells <= :data:`CROW_GEO`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from typing import Any

CONTROL_BAND = 0.01
EXPAND_MAX_REL = 1.02
EXPAND_GEO = 0.95
EXPAND_MIN_CELLS = 24
CROW_MAX_REL = 1.02
CROW_GEO = 0.99
CROW_LOW_D = 0.1
MIN_SHAPES = 6


def geo(xs: list[float]) -> float:
    """Geometric mean (nan for an empty list)."""
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def cell_key(r: dict[str, Any]) -> tuple:
    """(H, N, text tokens, gran_n, density target) of a CSV row."""
    return int(r["H"]), int(r["N"]), int(r.get("n_text") or 0), int(r.get("gran_n") or 1), float(r["density_target"])


def paired(rows: list[dict[str, Any]], num: str, den: str) -> dict[tuple, float]:
    """Cell -> median over rounds of t_num / t_den of the same round (cells with both kernels)."""
    by: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        if r["kernel"] in (num, den) and r.get("ms_rounds"):
            by.setdefault(cell_key(r), {})[r["kernel"]] = [float(x) for x in r["ms_rounds"].split(";")]
    out = {}
    for key, ks in by.items():
        if num in ks and den in ks and len(ks[num]) == len(ks[den]):
            out[key] = statistics.median(x / y for x, y in zip(ks[num], ks[den], strict=True))
    return out


def routes(rows: list[dict[str, Any]], kernel: str, route: str) -> bool:
    """Every row of ``kernel`` recorded a route starting with ``route`` (and there is one)."""
    sel = [r for r in rows if r["kernel"] == kernel]
    return bool(sel) and all(str(r.get("route", "")).startswith(route) for r in sel)


def expand_verdict(rows: list[dict[str, Any]], check_ok: bool) -> dict[str, Any]:
    """Lever 1's rule on the gran CSV's rows (module docstring)."""
    rel = paired(rows, "fg_attention_expand", "fg_attention")
    ctl = paired(rows, "fg_attention_control", "fg_attention")
    g, gc = geo(list(rel.values())), geo(list(ctl.values()))
    why = []
    if not check_ok:
        why.append("float64 checks failed")
    if not (abs(gc - 1) <= CONTROL_BAND):
        why.append(f"control geo-mean {gc:.4f} outside 1 +- {CONTROL_BAND}")
    if len(rel) < EXPAND_MIN_CELLS:
        why.append(f"{len(rel)} cells measured (< {EXPAND_MIN_CELLS})")
    if not routes(rows, "fg_attention_expand", "gluon list"):
        why.append("an expand row did not route 'gluon list'")
    if not routes(rows, "fg_attention", "tl"):
        why.append("a packaged-entry row did not route 'tl'")
    worst = max(rel.items(), key=lambda kv: kv[1], default=(None, float("nan")))
    if not rel or worst[1] > EXPAND_MAX_REL:
        why.append(f"cell {worst[0]} at {worst[1]:.4f} > {EXPAND_MAX_REL}")
    if not (g <= EXPAND_GEO):
        why.append(f"geo-mean {g:.4f} > {EXPAND_GEO}")
    per_g = {gr: geo([v for k, v in rel.items() if k[3] == gr]) for gr in (16, 64)}
    return dict(lever="expand", adopted=not why, why=why, cells=len(rel), geo=g, max=worst[1], max_cell=worst[0],
                control_geo=gc, control_max_dev=max((abs(v - 1) for v in ctl.values()), default=float("nan")),
                geo_g16=per_g[16], geo_g64=per_g[64], rel={str(k): round(v, 4) for k, v in sorted(rel.items())},
                control={str(k): round(v, 4) for k, v in sorted(ctl.items())})


def crow_verdict(rows: list[dict[str, Any]], check_ok: bool) -> dict[str, Any]:
    """Lever 2's rule on the fg128 CSV's rows (module docstring)."""
    rel = paired(rows, "fg_attention_crow", "fg_attention")
    ctl = paired(rows, "fg_attention_control", "fg_attention")
    low = [v for k, v in rel.items() if k[4] <= CROW_LOW_D]
    g, gc = geo(low), geo(list(ctl.values()))
    shapes = {k[:3] for k in rel}
    why = []
    if not check_ok:
        why.append("float64 / bitwise checks failed")
    if not (abs(gc - 1) <= CONTROL_BAND):
        why.append(f"control geo-mean {gc:.4f} outside 1 +- {CONTROL_BAND}")
    if len(shapes) < MIN_SHAPES:
        why.append(f"{len(shapes)} shapes measured (< {MIN_SHAPES})")
    if not routes(rows, "fg_attention_crow", "gluon list"):
        why.append("a crow row did not route 'gluon list'")
    worst = max(rel.items(), key=lambda kv: kv[1], default=(None, float("nan")))
    if not rel or worst[1] > CROW_MAX_REL:
        why.append(f"cell {worst[0]} at {worst[1]:.4f} > {CROW_MAX_REL}")
    if not (g <= CROW_GEO):
        why.append(f"geo-mean over d <= {CROW_LOW_D} {g:.4f} > {CROW_GEO}")
    ctl_low = geo([v for k, v in ctl.items() if k[4] <= CROW_LOW_D])
    return dict(lever="c_row", adopted=not why, why=why, cells=len(rel), low_cells=len(low), geo_low=g,
                control_geo_low=ctl_low, max=worst[1], max_cell=worst[0], control_geo=gc,
                control_max_dev=max((abs(v - 1) for v in ctl.values()), default=float("nan")),
                rel={str(k): round(v, 4) for k, v in sorted(rel.items())},
                control={str(k): round(v, 4) for k, v in sorted(ctl.items())})


def _read(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gran", default=None, help="the --bench-only gran CSV (lever 1)")
    ap.add_argument("--fg", default=None, help="the --bench-only fg128 CSV (lever 2)")
    ap.add_argument("--check-ok", choices=("yes", "no"), required=True)
    ap.add_argument("--crow-check-ok", choices=("yes", "no"), default=None, help="default: --check-ok")
    ap.add_argument("--json", default=None, help="write the verdicts here")
    args = ap.parse_args(argv)
    for name in (args.gran, args.fg):
        if name is not None:
            try:
                open(name).close()
            except OSError as e:
                print(f"gran_expand_analyze: {name}: {e.strerror}", file=sys.stderr)
                return 2
    out = {}
    if args.gran:
        out["expand"] = expand_verdict(_read(args.gran), args.check_ok == "yes")
    if args.fg:
        out["c_row"] = crow_verdict(_read(args.fg), (args.crow_check_ok or args.check_ok) == "yes")
    for v in out.values():
        keys = [k for k in v if k not in ("rel", "control")]
        print(f"[{v['lever']}] " + ("ADOPT" if v["adopted"] else "NOT ADOPTED") + ": "
              + ", ".join(f"{k}={v[k]:.4f}" if isinstance(v[k], float) else f"{k}={v[k]}" for k in keys), flush=True)
        for k, r in v["rel"].items():
            print(f"[{v['lever']}]   {k}: rel {r:.4f} control {v['control'].get(k, float('nan')):.4f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
