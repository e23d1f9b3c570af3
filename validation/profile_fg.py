"""Launch fg_attention and dense_attention a few times so Nsight Compute can profile one launch of each.

Run on the GPU under ncu, e.g.::

    ncu --clock-control none --kernel-name regex:_attn_fwd --launch-skip 2 --launch-count 2 \\
        --section SpeedOfLight --section WarpStateStats --section Occupancy \\
        python3 validation/profile_fg.py --density 0.5

Launch order: 2 warm-up fg launches, then one fg launch and one dense launch (the profiled pair); ``--no-dense``
leaves the dense launch out (validation/profile_row_cost.py --ncu profiles the third fg launch only, with
``--launch-skip 2 --launch-count 1``).
Shape: the Wan2.1-1.3B 480p attention call (B=1, H=12, N=32,760, D=128, bf16), structured window mask; fg runs the
launch-table entry with the launch order of ``build_index(order=True)``.
"""

from __future__ import annotations

import argparse

import fgattn
import torch
from fgattn.masks import window_mask


def main() -> None:
    """Build one structured mask and launch the kernels in the order the docstring gives."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=32760)
    ap.add_argument("--block-m", type=int, default=128)
    ap.add_argument("--no-dense", action="store_true", help="launch fg only")
    args = ap.parse_args()
    torch.manual_seed(0)
    b, h, n, d, m = 1, args.heads, args.tokens, 128, args.block_m
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    mask = window_mask(b, h, n, m, args.density, device="cuda")
    index = fgattn.build_index(mask, block_m=m, gran_n=1, n_keys=n, batch=b, heads=h, device="cuda", order=True)
    for _ in range(3):
        fgattn.fg_attention(q, k, v, index, block_m=m)
    if not args.no_dense:
        fgattn.dense_attention(q, k, v, block_m=m)
    torch.cuda.synchronize()
    print(f"density {mask.float().mean().item():.3f}: launched fg ×3" + ("" if args.no_dense else ", dense ×1"))


if __name__ == "__main__":
    main()
