"""Session 15, K8: per timed fg cell, the share of rows that take the 64-key last tile (>= 2 packed tiles, last one
<= 64 kept keys) and the mean executed tiles per row, on the benchmark's own masks (bench_kernels.final_shape's
window masks and seeds, CPU).  Prints one line per cell and the prediction model's ratio
1 - share * SAVE_US / (C_ROW_US + C_TILE_US * tiles) (kernels/NOTES.md "Session 15, K8").

    python kernels/tools/k8_tailfrac.py > kernels/logs/k8-tail-fractions.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

#: the timed cells: (H, N video, text tokens, density)
CELLS = [(h, n, t, d) for h, n, t in ((12, 32760, 0), (40, 32760, 0), (12, 32760, 512), (12, 75600, 0),
                                      (40, 75600, 0), (40, 75600, 512)) for d in (0.02, 0.05, 0.1)]
CELLS += [(h, n, 512, d) for h, n in ((12, 75600), (40, 32760)) for d in (0.02, 0.1)]
CELLS += [(12, 32760, 0, 0.5), (40, 75600, 0, 0.5)]
#: model (offline, not measured): the 64-key last tile saves SAVE_US per such row; a row costs C_ROW_US +
#: C_TILE_US per executed 128-key tile (session 13 ncu, less the tma_sel row end)
SAVE_US, C_ROW_US, C_TILE_US = 0.6, 3.6, 1.8


def main() -> None:
    import torch
    from fgattn.masks import window_mask, with_text

    for h, n, text, d in CELLS:
        torch.manual_seed(int(d * 1000) + 7)  # bench_kernels.final_shape's video_mask seed
        m = window_mask(1, h, n, 128, d, device="cpu")
        if text:
            m = with_text(m, text, 128)
        c = m.sum(-1).flatten().tolist()
        tiles = sum(max(1, -(-x // 128)) for x in c) / len(c)
        share = sum(1 for x in c if x > 128 and x - (-(-x // 128) - 1) * 128 <= 64) / len(c)
        model = 1 - share * SAVE_US / (C_ROW_US + C_TILE_US * tiles)
        print(f"H{h} N{n + text} text {text} d {d}: rows {len(c)}, tiles/row {tiles:.1f}, 64-key last tile "
              f"{share:.2f}, model rel {model:.4f}", flush=True)


if __name__ == "__main__":
    main()
