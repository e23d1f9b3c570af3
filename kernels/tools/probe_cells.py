"""What the paired-timing research probes (rowpipe_probe, l2plan_probe, epilogue_probe) share: parsing the cells
they time (shapes x densities) and the validity test of their control (the entry timed a second time)."""
from __future__ import annotations

import argparse

import numpy as np


def geo_mean(xs: list[float]) -> float:
    """Geometric mean of positive ratios."""
    return float(np.exp(np.mean(np.log(xs))))


def parse_cells(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Sets ``a.shape_list``, ``a.density_list`` and ``a.per_shape`` from ``--shapes``, ``--densities`` and
    ``--shape-densities``; a bad value is one ``ap.error`` line naming its flag."""
    from entry_regress import parse_shapes
    from gluon_m64_probe import shape_density_items

    try:
        a.shape_list = parse_shapes(a.shapes)
        a.density_list = [float(x) for x in a.densities.split(",")]
    except ValueError as e:
        ap.error(str(e) if "shapes" in str(e) else f"--densities: {a.densities!r} is not a comma-separated list")
    if any(not 0 < x <= 1 for x in a.density_list):
        ap.error(f"--densities: {a.densities!r} must lie in (0, 1]")
    a.per_shape = dict(shape_density_items(ap, "--shape-densities", a.shape_densities or ""))


def control_void_reasons(label: str, ctl: dict[tuple[str, float], float], geo_band: float,
                         cell_band: float) -> list[str]:
    """Why the control (the entry timed twice, ratios per (shape, density) cell) voids a paired timing: its
    geo-mean outside 1 +- ``geo_band`` or a cell outside 1 +- ``cell_band``; empty when it is valid."""
    why = []
    geo = geo_mean(list(ctl.values()))
    if abs(geo - 1.0) > geo_band:
        why.append(f"{label} geo-mean {geo:.3f} outside 1 +- {geo_band}")
    why += [f"{label} {v:.3f} at {k[0]} d {k[1]} outside 1 +- {cell_band}"
            for k, v in sorted(ctl.items()) if abs(v - 1.0) > cell_band]
    return why
