"""The physical cost model of the fgattn kernels, split by job:

* :mod:`fgsim.model.params` — the free parameters (GPU properties with units and bounds) and measured constants;
* :mod:`fgsim.model.occupancy` — resident CTAs per SM from the compiled kernel's registers / shared memory;
* :mod:`fgsim.model.cta_cost` — cycles of one key tile and of one CTA, per kept-key count (tables);
* :mod:`fgsim.model.assemble` — the plan/run API: tables built once per (config, GPU, N), then many calls priced
  through the event-driven CTA scheduler (:mod:`fgsim.scheduler`) plus the call-level L2/HBM floors.

``fgsim.costmodel`` re-exports the public names for older imports.
"""
