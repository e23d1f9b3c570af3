"""Predicted vs measured context-parallel attention on P GPUs, from the outputs of ``validation/cp_run.py``.

    python validation/cp_validate.py RESULTS_DIR --gpu h200 --tag h200x2-2026-11-30 [--write-gpu]

1. Interconnect calibration: fits ``t = latency + bytes_moved / bandwidth`` to the NCCL all-to-all, all-gather
   and send/recv microbenchmarks (``cp-comm.csv``; bytes moved per rank in nccl-tests' bus-bandwidth convention)
   and ``t = 2·bytes / rate`` to the layout copies; ``--write-gpu`` stores the fit in the GPU description's
   ``interconnect`` block (with provenance).
2. Per rank: attention kernels predicted by the single-GPU cost model on the rank's kept-tile counts
   (``cp-counts.npz``: Ulysses = the rank's heads, ring = its query blocks in each key shard, plus the LSE
   merge), communication by :func:`fgsim.parallel.comm_cost` with the fitted link; compared with the measured
   medians (``cp-timing.csv``).

Writes ``validation/results/cp-<tag>-{timing,comm,numerics,capture}.csv`` and prints the error table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]

from fgsim.errors import FgsimError  # noqa: E402
from fgsim.parallel import CpPlan, Link, comm_cost, rank_attention_s  # noqa: E402

ENV_COLS = ("gpu_name", "driver", "cuda", "torch", "triton", "nccl", "diffusers", "commit", "date", "nvls")


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fit_line(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(intercept s, slope s/byte) of t ≈ a + b·x, least squares weighted by 1/t (relative error), a ≥ 0."""
    w = 1.0 / np.maximum(t, 1e-9)
    a_mat = np.stack([np.ones_like(x), x], axis=1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(a_mat, t * w, rcond=None)
    if a < 0:
        b = float(np.sum(w * w * x * t) / np.sum(w * w * x * x))
        a = 0.0
    return float(a), float(b)


def fit_link(rows: list[dict[str, str]], p: int, link_name: str, copy_gbs: float
             ) -> tuple[Link, list[dict[str, Any]]]:
    """Link constants from the microbenchmark rows (per size: the slower rank's median): latency/bandwidth
    lines, and the measured tables that replace them inside their size range. ``copy_gbs``: the plain copy rate
    (the GPU description's; the strided copy microbenchmark is reported, not used)."""
    by: dict[tuple[str, int], float] = {}
    for r in rows:
        key = (r["op"], int(r["bytes"]))
        by[key] = max(by.get(key, 0.0), float(r["median_s"]))
    fits: dict[str, tuple[float, float]] = {}
    out = []
    for op in ("alltoall", "allgather", "p2p", "copy"):
        pts = sorted((b, t) for (o, b), t in by.items() if o == op)
        if len(pts) < 2:
            raise FgsimError(f"cp-comm.csv has fewer than 2 sizes for {op}")
        x = np.array([b for b, _ in pts], float)
        t = np.array([t for _, t in pts], float)
        moved = x * (p - 1) / p if op in ("alltoall", "allgather") else (2 * x if op == "copy" else x)
        a, b = fit_line(moved, t)
        fits[op] = (a, b)
        for (bb, tt), mv in zip(pts, moved, strict=True):
            out.append({"op": op, "bytes": bb, "bytes_moved": mv, "measured_s": tt, "fit_s": a + b * mv,
                        "fit_err": (a + b * mv) / tt - 1, "fit_latency_us": a * 1e6, "fit_gbs": 1 / b / 1e9})
    lat = float(np.mean([fits["alltoall"][0], fits["allgather"][0]]))
    tables = {op: tuple(sorted((float(b), t) for (o, b), t in by.items() if o == op))
              for op in ("alltoall", "allgather", "p2p")}
    link = Link(alltoall_busbw_gbs=1 / fits["alltoall"][1] / 1e9, allgather_busbw_gbs=1 / fits["allgather"][1] / 1e9,
                p2p_bw_gbs=1 / fits["p2p"][1] / 1e9, latency_us=lat * 1e6, copy_gbs=copy_gbs,
                link=link_name, source="", tables=tables, table_degree=p)
    return link, out


def fit_permute(timing: list[dict[str, str]], link: Link, shape: str) -> float:
    """Rate (bytes read + written per second) of the Ulysses permute copies on ``shape``'s rows: the measured
    communication minus the 4 all-to-alls (measured tables), over the 8 copies of the local tensor."""
    rates = []
    for r in timing:
        if r["scheme"] != "ulysses" or r["shape"] != shape:
            continue
        s, h, d, p = (int(r[k]) for k in ("S", "heads", "head_dim", "P"))
        local = s // p * h * d * 2
        copies = float(r["comm_median_s"]) - 4 * link.alltoall_s(local, p)
        if copies > 0:
            rates.append(8 * 2 * local / copies)
    if not rates:
        raise FgsimError(f"no Ulysses rows of {shape} to fit the permute-copy rate on")
    return float(np.median(rates)) / 1e9


def predict_rows(timing: list[dict[str, str]], counts: Any, gpu: Any, link: Link, params: Any
                 ) -> list[dict[str, Any]]:
    """Measured rows of ``cp-timing.csv`` with the per-rank prediction and errors added."""
    out = []
    for r in timing:
        kernel = r["kernel"]
        if kernel not in ("fg", "block", "dense"):
            continue
        s, h, d, m, p, rank = (int(r[k]) for k in ("S", "heads", "head_dim", "block_m", "P", "rank"))
        dens = float(r["density"])
        plan = CpPlan(r["scheme"], p)
        dkey = f"{r['shape']}-d{dens}"
        n = 1 if kernel == "fg" else m
        if kernel == "dense":
            src: Any = None
        elif plan.scheme == "ulysses":
            src = counts[f"{dkey}__n{n}"]
        else:
            src = (lambda rr, j, dkey=dkey, n=n, p=p: counts[f"{dkey}__ring{p}__r{rr}__j{j}__n{n}"])
        attn = rank_attention_s(kernel, plan, rank, src, s, h, d, m, gpu, params, link)
        cc = comm_cost(plan, s, h, d, link)
        comm = cc.collectives_s + cc.copies_s
        out.append({**{k: r[k] for k in ("shape", "S", "heads", "head_dim", "block_m", "density", "kernel", "scheme",
                                         "P", "rank", "rounds", "sm_clock_mhz", "mem_clock_mhz")},
                    "measured_attn_s": float(r["attn_median_s"]), "predicted_attn_s": attn,
                    "measured_comm_s": float(r["comm_median_s"]), "predicted_comm_s": comm,
                    "measured_rank_s": float(r["attn_median_s"]) + float(r["comm_median_s"]),
                    "predicted_rank_s": attn + comm, "measured_total_s": float(r["total_median_s"]),
                    "attn_spread": (float(r["attn_max_s"]) - float(r["attn_min_s"])) / float(r["attn_median_s"]),
                    "total_spread": (float(r["total_max_s"]) - float(r["total_min_s"])) / float(r["total_median_s"])})
    # the pass: slowest rank + communication (the other rank waits in the output collective)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for o in out:
        groups.setdefault((o["shape"], o["kernel"], o["density"], o["scheme"]), []).append(o)
    for rows in groups.values():
        pmax = max(x["predicted_attn_s"] for x in rows)
        for x in rows:
            x["predicted_total_s"] = pmax + x["predicted_comm_s"]
            x["imbalance_measured"] = max(y["measured_attn_s"] for y in rows) / np.mean(
                [y["measured_attn_s"] for y in rows])
            x["imbalance_predicted"] = pmax / np.mean([y["predicted_attn_s"] for y in rows])
            for part in ("attn", "comm", "rank", "total"):
                x[f"err_{part}"] = x[f"predicted_{part}_s"] / x[f"measured_{part}_s"] - 1
    return out


def write_csv(path: Path, rows: list[dict[str, Any]], env: dict[str, str], extra: dict[str, Any]) -> None:
    if not rows:
        return
    from fgsim.fileio import write_text_atomic

    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    cols = keys + list(extra) + [c for c in ENV_COLS if c not in keys]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**{c: env.get(c, "") for c in ENV_COLS}, **extra, **{k: _fmt(v) for k, v in r.items()}})
    write_text_atomic(path, buf.getvalue())


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def write_gpu_interconnect(gpu_path: Path, link: Link, source: str) -> None:
    """Replace the ``interconnect`` block of a GPU description (other fields untouched)."""
    import re

    from fgsim.fileio import write_text_atomic

    text = gpu_path.read_text()
    block = {"link": link.link, "alltoall_busbw_gbs": round(link.alltoall_busbw_gbs, 1),
             "allgather_busbw_gbs": round(link.allgather_busbw_gbs, 1), "p2p_bw_gbs": round(link.p2p_bw_gbs, 1),
             "latency_us": round(link.latency_us, 1), "copy_gbs": round(link.copy_gbs, 0),
             "permute_copy_gbs": round(link.permute_copy_gbs, 0), "table_degree": link.table_degree,
             "tables": {op: [[int(b), float(f"{t:.6g}")] for b, t in pts] for op, pts in link.tables.items()},
             "source": source}
    inner = "\n".join(json.dumps({"interconnect": block}, indent=2, ensure_ascii=False).splitlines()[1:-1])
    new, n = re.subn(r'\n  "interconnect": \{.*?\n  \}', "\n" + inner, text, count=1, flags=re.S)
    if n != 1:
        raise FgsimError(f"{gpu_path}: no interconnect block to replace")
    json.loads(new)
    write_text_atomic(gpu_path, new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="directory with cp_run.py's outputs")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--tag", required=True, help="results name, e.g. h200x2-2026-11-30")
    ap.add_argument("--out-dir", default=str(ROOT / "validation" / "results"))
    ap.add_argument("--write-gpu", action="store_true", help="store the fitted interconnect in the GPU description")
    ap.add_argument("--calibration", help="cost-model calibration .json (default: the GPU's own)")
    ap.add_argument("--fit-permute-on", default="wan2.1-1.3b-480p",
                    help="shape whose Ulysses rows fit the permute-copy rate (the others are held out)")
    ap.add_argument("--commit", default="", help="commit the device ran (its copy of the tree has no git)")
    args = ap.parse_args()
    res = Path(args.results)
    if not (res / "cp-comm.csv").is_file():
        print(f"cp_validate: error: {res}/cp-comm.csv: no such file (run validation/cp_run.py first)",
              file=sys.stderr)
        return 2
    from fgsim.calibration import resolve_params
    from fgsim.hardware import load_gpu
    from fgsim.parallel import link_for

    gpu = load_gpu(args.gpu)
    env = json.loads((res / "cp-env.json").read_text()) if (res / "cp-env.json").is_file() else {}
    if args.commit and not env.get("commit"):
        env["commit"] = args.commit
    comm_rows = read_csv(res / "cp-comm.csv")
    p = int(comm_rows[0]["P"])
    prior = link_for(gpu)
    link, fit_rows = fit_link(comm_rows, p, prior.link, prior.copy_gbs)
    timing = read_csv(res / "cp-timing.csv")
    from dataclasses import replace

    link = replace(link, permute_copy_gbs=fit_permute(timing, link, args.fit_permute_on))
    try:
        params, note = resolve_params(gpu, args.calibration)
    except FgsimError as exc:  # a calibration file this fgsim cannot read: say so in every row
        from fgsim.costmodel import ModelParams

        params, note = ModelParams(), f"UNCALIBRATED spec priors ({exc})"
    counts = np.load(res / "cp-counts.npz") if (res / "cp-counts.npz").is_file() else {}
    rows = predict_rows(timing, counts, gpu, link, params)
    for r in rows:
        r["split"] = "permute-copy fit" if r["shape"] == args.fit_permute_on and r["scheme"] == "ulysses" \
            else "held-out"
    out = Path(args.out_dir)
    method = "CUDA events per rank, barrier before each measurement, median of interleaved rounds"
    write_csv(out / f"cp-{args.tag}-timing.csv", rows, env,
              {"timing": method, "cost_model": note, "link_fit": f"cp-{args.tag}-comm.csv"})
    write_csv(out / f"cp-{args.tag}-comm.csv", fit_rows + [
        {"op": "fit", "alltoall_busbw_gbs": link.alltoall_busbw_gbs, "allgather_busbw_gbs": link.allgather_busbw_gbs,
         "p2p_bw_gbs": link.p2p_bw_gbs, "latency_us": link.latency_us, "copy_gbs": link.copy_gbs}],
        env, {"timing": "CUDA events, slower rank's median of 9 rounds, barrier before each", "P": p})
    for name in ("numerics", "capture"):
        src = read_csv(res / f"cp-{name}.csv")
        write_csv(out / f"cp-{args.tag}-{name}.csv", src, env, {})
    if args.write_gpu:
        write_gpu_interconnect(Path(gpu.path), link, (
            f"fitted by validation/cp_validate.py to NCCL microbenchmarks on {p} x {env.get('gpu_name', gpu.name)} "
            f"({env.get('date', '')[:10]}, NCCL {env.get('nccl', '')}, NVLS off; validation/results/cp-{args.tag}-"
            "comm.csv): tables = measured medians (bytes, s) at table_degree GPUs, used inside their range; outside, "
            "t = latency + bytes moved per rank (nccl-tests bus-bandwidth convention, doc/PERFORMANCE.md) / "
            "bandwidth; permute_copy_gbs fitted on the Wan2.1-1.3B Ulysses rows (communication minus the measured "
            "all-to-alls, over 8 copies; bytes read + written); copy_gbs = the prior plain-copy rate (device-to-"
            "device copy measured on this workplace's H200, 2026-10-28), used for the ring's stacking copy and merge"))
    print(f"link fit ({p} GPUs): all-to-all {link.alltoall_busbw_gbs:.0f} GB/s, all-gather "
          f"{link.allgather_busbw_gbs:.0f} GB/s, p2p {link.p2p_bw_gbs:.0f} GB/s, latency {link.latency_us:.1f} us, "
          f"copy {link.copy_gbs:.0f} GB/s, permute copy {link.permute_copy_gbs:.0f} GB/s (fitted on "
          f"{args.fit_permute_on}); cost model: {note}")
    print(f"{'shape':<18} {'kern':<5} {'dens':>5} {'scheme':<7} {'rk':>2} {'attn meas/pred ms':>20} "
          f"{'comm meas/pred ms':>18} {'rank err':>8} {'total err':>9}")
    for r in rows:
        print(f"{r['shape']:<18} {r['kernel']:<5} {float(r['density']):>5.2f} {r['scheme']:<7} {r['rank']:>2} "
              f"{r['measured_attn_s'] * 1e3:>9.3f}/{r['predicted_attn_s'] * 1e3:<9.3f} "
              f"{r['measured_comm_s'] * 1e3:>8.3f}/{r['predicted_comm_s'] * 1e3:<8.3f} "
              f"{r['err_rank'] * 100:>7.1f}% {r['err_total'] * 100:>8.1f}%")
    if rows:
        e = np.abs([r["err_rank"] for r in rows])
        print(f"|error| of per-rank attention + communication: median {np.median(e) * 100:.1f}%, max "
              f"{e.max() * 100:.1f}%, within 8%: {int((e <= 0.08).sum())}/{e.size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
