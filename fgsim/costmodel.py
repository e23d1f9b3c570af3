"""The cost model's public names (compatibility module): the implementation lives in :mod:`fgsim.model`.

* parameters (15 GPU properties with units and ranges): :mod:`fgsim.model.params`;
* occupancy from the compiled kernel's registers / shared memory: :mod:`fgsim.model.occupancy`;
* per-tile and per-CTA cycles: :mod:`fgsim.model.cta_cost`;
* plan/run assembly through the CTA scheduler: :mod:`fgsim.model.assemble`.
"""

from __future__ import annotations

from fgsim.model.assemble import (
    COMPONENTS,
    COUNT_GRANULARITIES,
    KernelPlan,
    KernelPrediction,
    Workload,
    counts_m_n,
    iter_kernels,
    launch_order,
    predict_counts,
    predict_workload,
    timeline,
)
from fgsim.model.cta_cost import CtaTables, coresident_rates, cta_tables, skip_n, tile_costs
from fgsim.model.occupancy import ELT_BYTES, Occupancy, config_key, occupancy, shared_bytes
from fgsim.model.params import PARAM_BOUNDS, SPECS, ModelParams, param_bounds

__all__ = [
    "COMPONENTS", "COUNT_GRANULARITIES", "ELT_BYTES", "PARAM_BOUNDS", "SPECS", "CtaTables", "KernelPlan",
    "KernelPrediction", "ModelParams", "Occupancy", "Workload", "config_key", "coresident_rates", "counts_m_n",
    "cta_tables", "iter_kernels", "launch_order", "occupancy", "param_bounds", "predict_counts", "predict_workload",
    "shared_bytes", "skip_n", "tile_costs", "timeline",
]
