"""The list planner's row cost in 128-key tiles (``fgattn.gluon_fg_list.C_ROW_TILES``, K6's adoption step 4), as
the committed calibration prices the fg D=128 M=128 g1 Gluon entry's rows: c_row = the per-row fixed cycles (the row
end's row_cycles / row_cycles_rcp + O store + next Q), c_tile = one full 128-key tile's cycles, at H12 N32760 with
every SM busy; C_ROW_TILES = c_row / c_tile (units: 128-key tiles; cycles and µs at the GPU file's clock beside).

    python validation/costmodel_c_row_tiles.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace


def c_row_tiles(epilogue: str, n: int = 32760, heads: int = 12) -> dict[str, float]:
    from fgsim.calibration import resolve
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.cta_cost import cta_tables

    gpu = load_gpu("h200")
    cal = resolve(gpu)
    cfg = launch_config("fg", "h200", 128, 128, 1)
    g = dict(cfg.extra.get("gluon") or {})
    g["epilogue"] = epilogue
    cfg = replace(cfg, extra={**cfg.extra, "gluon": g})
    qb = -(-n // 128)
    tab = cta_tables(cfg, gpu, cal.params, n, n_ctas=heads * qb, resources=cal.resources)
    rw = tab.row_work  # per kept-key count
    c_tile = float(rw[128 * 11] - rw[128 * 10])  # one more full tile
    c_row = float(rw[128 * 10] - 10 * c_tile)  # the row's cycles beyond its tiles
    mhz = gpu.sustained_clock_mhz
    return {"epilogue": epilogue, "c_row_cycles": c_row, "c_tile_cycles": c_tile, "c_row_us": c_row / mhz,
            "c_tile_us": c_tile / mhz, "c_row_tiles": c_row / c_tile, "clock_mhz": mhz}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    out = [c_row_tiles(e) for e in ("stg", "tma_sel")]
    for d in out:
        print(f"{d['epilogue']:8s} c_row {d['c_row_cycles']:7.0f} cycles ({d['c_row_us']:.2f} us) c_tile "
              f"{d['c_tile_cycles']:6.0f} cycles ({d['c_tile_us']:.3f} us) -> C_ROW_TILES {d['c_row_tiles']:.2f}")
    if a.json:
        from fgsim.fileio import write_text_atomic

        write_text_atomic(a.json, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
