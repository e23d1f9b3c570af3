"""Device check of the ``l2_smem`` microbenchmark (fgsim.calibrate_micro.l2_smem_stream) before it enters
``fgsim calibrate``: prints GB/s and per-SM bytes per clock of each (load path, programs per SM) and the plain-load
L2 stream beside it; writes the rows as JSON to ``$OUT/l2port.json``.

    PYTHONPATH=.:kernels python3 validation/costmodel_l2port_check.py
"""

from __future__ import annotations

import json
import os
import time


def main() -> None:
    import torch

    from fgsim.calibrate_micro import l2_smem_stream

    t0 = time.time()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows = l2_smem_stream(sms)
    out = os.environ.get("OUT", "/tmp")
    with open(os.path.join(out, "l2port.json"), "w") as fh:
        json.dump({"rows": rows, "commit": os.environ.get("FGSIM_COMMIT", ""), "gpu": torch.cuda.get_device_name(0),
                   "torch": torch.__version__, "seconds": time.time() - t0}, fh, indent=1)
    print(f"{'path':9s} {'per_sm':>6s} {'ms':>8s} {'GB/s':>8s} {'B/clk/SM':>9s} {'MHz':>6s} ptx(tma, cp.async)  bench")
    for r in rows:
        a = r["args"]
        mhz = float(a["sm_clock_mhz"] or 1980.0)
        print(f"{a['path']:9s} {a['per_sm']:6d} {r['ms']:8.4f} {r['value']:8.0f} "
              f"{r['value'] * 1e9 / (sms * mhz * 1e6):9.2f} {mhz:6.0f} ({a['ptx_tma_copies']}, {a['ptx_cp_async']})  "
              f"{r['bench']}")
    print(f"{time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
