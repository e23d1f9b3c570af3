"""What 1, 2, 4 and 8 GPUs predict under Ulysses and ring context parallelism for the Wan2.1 attention shapes.

    python validation/cp_scaling.py validation/results/cp-h200x2-2026-11-30-run2-counts.npz --gpu h200 \
        --out validation/results/cp-scaling-h200-2026-11-30.csv

Reads the kept-tile counts ``validation/cp_run.py`` saved (per head and query block; per rank and key shard for
P = 2, 4, 8) and predicts, per call: each rank's attention (single-GPU cost model on its share), the
communication (:func:`fgsim.parallel.comm_cost` with the GPU description's interconnect), the pass (slowest rank +
communication), the imbalance, and the speedup over one GPU; Ulysses also with a head assignment that balances
each head's modelled time (:func:`fgsim.parallel.balanced_heads`; the natural split when that is not faster).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]

from fgsim.errors import FgsimError  # noqa: E402
from fgsim.parallel import CpPlan, balanced_heads, comm_cost, link_for, rank_attention_s  # noqa: E402

#: attention shapes the counts were saved for: name -> (tokens, heads, head_dim)
SHAPES = {"wan2.1-1.3b-480p": (32760, 12, 128), "wan2.1-14b-720p": (75600, 40, 128), "tiny": (192, 4, 64)}


def scaling_rows(counts: Any, gpu: Any, params: Any, degrees: tuple[int, ...] = (2, 4, 8)) -> list[dict[str, Any]]:
    """One row per shape × density × kernel × plan (and the balanced-heads what-if)."""
    from fgsim.costmodel import predict_counts
    from fgsim.launchcfg import launch_config

    link = link_for(gpu)
    keys = sorted({m.group(1) for k in counts for m in [re.match(r"(.+-d[0-9.]+)__n1$", k)] if m})
    rows: list[dict[str, Any]] = []
    for dkey in keys:
        shape, dens = dkey.rsplit("-d", 1)
        if shape not in SHAPES:
            continue
        s, h, d = SHAPES[shape]
        m = int(next(k for k in counts if k.startswith(f"{dkey}__n") and k != f"{dkey}__n1").rsplit("__n", 1)[1])
        for kernel in ("fg", "block", "dense"):
            n = 1 if kernel == "fg" else m
            full = np.asarray(counts[f"{dkey}__n{n}"]).astype(np.int32)
            cfg = launch_config(kernel, gpu.name, d, m, 1, "bf16")
            c1 = np.zeros_like(full) if kernel == "dense" else full
            one = predict_counts(c1, s, cfg, gpu, params)[0]
            # per-head modelled time (each head alone), the weight the balanced what-if balances
            head_w = [predict_counts(c1[i:i + 1], s, cfg, gpu, params)[0] for i in range(h)] \
                if kernel != "dense" else [1.0] * h
            base = {"shape": shape, "S": s, "heads": h, "head_dim": d, "block_m": m,
                    "density": float(dens) if kernel != "dense" else 1.0, "kernel": kernel,
                    "kept_fraction": float(np.asarray(counts[f"{dkey}__n1"]).sum()) * m / (h * s * s),
                    "one_gpu_s": one}
            if kernel == "dense" and dens != min(k.rsplit("-d", 1)[1] for k in keys if k.startswith(shape)):
                continue
            rows.append({**base, "plan": "1 GPU", "P": 1, "rank_min_s": one, "rank_max_s": one, "imbalance": 1.0,
                         "comm_s": 0.0, "pass_s": one, "speedup": 1.0, "efficiency": 1.0})
            for scheme in ("ulysses", "ring"):
                for p in degrees:
                    plan = CpPlan(scheme, p)
                    if scheme == "ulysses" and h % p:
                        rows.append({**base, "plan": plan.describe(), "P": p,
                                     "note": f"{h} heads not divisible by {p}"})
                        continue
                    if s % p:
                        continue
                    variants: list[tuple[str, Any]] = [("", None)]
                    if scheme == "ulysses" and kernel != "dense":
                        variants.append(("balanced heads", balanced_heads(head_w, p)))
                    plain_pass = None
                    for tag, groups in variants:
                        try:
                            if scheme == "ulysses":
                                src = full if groups is None else full[np.concatenate(groups)]
                                ts = [rank_attention_s(kernel, plan, r, src, s, h, d, m, gpu, params, link)
                                      for r in range(p)]
                                if groups is not None and plain_pass is not None and max(ts) > plain_pass[0]:
                                    ts = plain_pass[1]  # the natural split is a candidate: never worse than it
                            else:
                                ring_key = f"{dkey}__ring{p}__r0__j0__n{n}"
                                if kernel != "dense" and ring_key not in counts:
                                    rows.append({**base, "plan": plan.describe(), "P": p,
                                                 "note": f"no {n}-key chunk counts for P={p} in this counts file"})
                                    continue
                                fn = (lambda r, j, p=p, n=n, dkey=dkey: counts[f"{dkey}__ring{p}__r{r}__j{j}__n{n}"])
                                ts = [rank_attention_s(kernel, plan, r, fn, s, h, d, m, gpu, params, link)
                                      for r in range(p)]
                        except FgsimError as exc:
                            rows.append({**base, "plan": plan.describe(), "P": p, "note": str(exc)})
                            continue
                        if groups is None:
                            plain_pass = (max(ts), ts)
                        cc = comm_cost(plan, s, h, d, link)
                        comm = cc.collectives_s + cc.copies_s
                        pas = max(ts) + comm
                        rows.append({**base, "plan": plan.describe(), "P": p, "what_if": tag,
                                     "rank_min_s": min(ts), "rank_max_s": max(ts),
                                     "imbalance": max(ts) / float(np.mean(ts)), "comm_s": comm, "pass_s": pas,
                                     "comm_share": comm / pas, "speedup": one / pas, "efficiency": one / pas / p})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("counts", help="cp-counts.npz from validation/cp_run.py")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--out", required=True, help="CSV to write")
    ap.add_argument("--calibration")
    args = ap.parse_args()
    if not Path(args.counts).is_file():
        print(f"cp_scaling: error: {args.counts}: no such file", file=sys.stderr)
        return 2
    from fgsim.calibration import resolve_params
    from fgsim.fileio import write_text_atomic
    from fgsim.hardware import load_gpu

    gpu = load_gpu(args.gpu)
    try:
        params, note = resolve_params(gpu, args.calibration)
    except FgsimError as exc:
        from fgsim.costmodel import ModelParams

        params, note = ModelParams(), f"UNCALIBRATED spec priors ({exc})"
    counts = dict(np.load(args.counts))
    rows = scaling_rows(counts, gpu, params)
    link = link_for(gpu)
    extra = {"gpu": gpu.name, "cost_model": note, "interconnect": link.source[:200],
             "counts": Path(args.counts).name, "method": "predicted per call (no measurement)"}
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys + list(extra), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()}, **extra})
    write_text_atomic(args.out, buf.getvalue())
    print(f"{'shape':<18} {'dens':>5} {'kern':<5} {'plan':<10} {'what-if':<15} {'pass ms':>9} {'imbal':>6} "
          f"{'comm':>6} {'speedup':>8}")
    for r in rows:
        if "pass_s" not in r:
            print(f"{r['shape']:<18} {r['density']:>5.2f} {r['kernel']:<5} {r['plan']:<10} {r.get('note', '')}")
            continue
        print(f"{r['shape']:<18} {r['density']:>5.2f} {r['kernel']:<5} {r['plan']:<10} {r.get('what_if', ''):<15} "
              f"{r['pass_s'] * 1e3:>9.3f} {r['imbalance']:>6.3f} {r.get('comm_share', 0) * 100:>5.1f}% "
              f"{r['speedup']:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
