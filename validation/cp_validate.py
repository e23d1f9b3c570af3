"""Predicted vs measured context-parallel attention on P GPUs, from the outputs of ``validation/cp_run.py``.

    python validation/cp_validate.py RESULTS_DIR --gpu h200 --tag h200x2-2026-11-30-run2

The interconnect constants are the GPU description's ``interconnect`` block, made by ``fgsim calibrate
--interconnect`` (its CSV is copied next to the results when ``RESULTS_DIR/interconnect.csv`` exists); nothing is
fitted here. Per rank: attention kernels predicted by the single-GPU cost model on the rank's kept-tile counts
(``cp-counts.npz``: Ulysses = the rank's heads; ring = its query blocks in each key chunk, the fused LSE merges
and the query padding), communication by :func:`fgsim.parallel.comm_cost`; compared with the measured medians
(``cp-timing.csv``, CUDA-graph replay). The fused merge kernel alone is compared with its bytes at the copy rate.

Writes ``validation/results/cp-<tag>-{timing,merge,numerics,capture,interconnect}.csv`` and prints the error table.
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
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation")]

from fgsim.errors import FgsimError  # noqa: E402
from fgsim.parallel import CpPlan, Link, comm_cost, rank_attention_s, ring_merge_bytes  # noqa: E402

ENV_COLS = ("gpu_name", "driver", "cuda", "torch", "triton", "nccl", "diffusers", "commit", "date", "nvls")


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def predict_rows(timing: list[dict[str, str]], counts: Any, gpu: Any, link: Link, params: Any,
                 resources: Any = None) -> list[dict[str, Any]]:
    """Measured rows of ``cp-timing.csv`` with the per-rank prediction and errors added (``resources``: compiled
    kernel figures by config key; default the calibration's)."""
    out = []
    for r in timing:
        kernel = r["kernel"]
        if kernel not in ("fg", "block", "dense") or not r.get("total_median_s"):
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
        attn = rank_attention_s(kernel, plan, rank, src, s, h, d, m, gpu, params, link, resources=resources)
        cc = comm_cost(plan, s, h, d, link)
        comm = cc.collectives_s + cc.copies_s
        out.append({**{k: r[k] for k in ("shape", "S", "heads", "head_dim", "block_m", "density", "kernel", "scheme",
                                         "P", "rank", "rounds", "sm_clock_mhz", "mem_clock_mhz")},
                    "measured_attn_s": float(r["attn_median_s"]), "predicted_attn_s": attn,
                    "measured_comm_s": float(r["comm_median_s"]), "predicted_comm_s": comm,
                    "measured_rank_s": float(r["attn_median_s"]) + float(r["comm_median_s"]),
                    "predicted_rank_s": attn + comm, "measured_total_s": float(r["total_median_s"]),
                    "attn_spread": (float(r["attn_max_s"]) - float(r["attn_min_s"])) / float(r["attn_median_s"]),
                    "comm_spread": (float(r["comm_max_s"]) - float(r["comm_min_s"])) / float(r["comm_median_s"]),
                    "total_spread": (float(r["total_max_s"]) - float(r["total_min_s"])) / float(r["total_median_s"]),
                    "measured_total_eager_s": float(r.get("total_eager_median_s") or "nan"),
                    "host_overhead_s": (float(r.get("total_eager_median_s") or "nan") - float(r["total_median_s"]))
                    if r.get("total_method", "").startswith("CUDA graph") else float("nan"),
                    "method_attn": r.get("attn_method", ""), "method_comm": r.get("comm_method", ""),
                    "method_total": r.get("total_method", "")})
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


def merge_rows(timing: list[dict[str, str]], bw_gbs: float) -> list[dict[str, Any]]:
    """The fused LSE merge alone (two bf16 partials of a rank's rows → bf16): measured vs its bytes at the
    GPU's measured streaming bandwidth ``bw_gbs`` (:func:`fgsim.parallel.stream_gbs`)."""
    out = []
    for r in timing:
        if r["kernel"] != "merge":
            continue
        s, h, d, p = (int(r[k]) for k in ("S", "heads", "head_dim", "P"))
        nbytes = ring_merge_bytes(s // p * h, d, 2)
        meas = float(r["attn_median_s"])
        pred = nbytes / (bw_gbs * 1e9)
        out.append({"shape": r["shape"], "S": s, "heads": h, "head_dim": d, "P": p, "rank": r["rank"], "bytes": nbytes,
                    "measured_s": meas, "predicted_s": pred, "err": pred / meas - 1, "achieved_gbs": nbytes / meas / 1e9,
                    "stream_gbs": bw_gbs, "method": r.get("attn_method", ""), "rounds": r["rounds"],
                    "sm_clock_mhz": r.get("sm_clock_mhz", ""), "mem_clock_mhz": r.get("mem_clock_mhz", "")})
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


def timing_from_committed(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """``cp-timing.csv`` rows (cp_run.py's format) rebuilt from a committed ``cp-<tag>-timing.csv``: its measured
    medians and methods; min/max from its relative spreads (only their difference is used)."""
    out = []
    for r in rows:
        t = {k: r[k] for k in ("shape", "S", "heads", "head_dim", "block_m", "density", "kernel", "scheme", "P",
                               "rank", "rounds", "sm_clock_mhz", "mem_clock_mhz")}
        for part, col in (("attn", "measured_attn_s"), ("comm", "measured_comm_s"), ("total", "measured_total_s")):
            med = float(r[col])
            t[f"{part}_median_s"], t[f"{part}_min_s"] = r[col], r[col]
            t[f"{part}_max_s"] = repr(med * (1 + float(r[f"{part}_spread"])))
        t["total_eager_median_s"] = r.get("measured_total_eager_s", "")
        t["attn_method"], t["comm_method"], t["total_method"] = r["method_attn"], r["method_comm"], r["method_total"]
        out.append(t)
    return out


def resolve_same_as(path: Path) -> Path:
    """``path``, or the committed file that ``path.same-as`` names when ``path`` was deduplicated: the alias holds
    "<file name> <sha256>" of a byte-identical file in the same folder (checked; a mismatch is an error)."""
    alias = path.with_name(path.name + ".same-as")
    if path.is_file() or not alias.is_file():
        return path
    import hashlib

    name, digest = alias.read_text().split()
    target = path.with_name(name)
    if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != digest:
        raise SystemExit(f"cp_validate: error: {alias}: {name} is missing or its sha256 differs")
    return target


def repredict(tag: str, out_dir: Path, gpu_name: str, calibration: str | None) -> int:
    """Re-price a committed run's per-rank rows (``cp-<tag>-timing.csv`` + ``cp-<tag>-counts.npz``) and its merge
    rows with the current cost model and calibration; the measured columns and the environment stay as they were.
    Set ``FGATTN_LAUNCH_TABLE`` to the launch table the run used; compiled figures come from every calibration
    measurement (:mod:`compiled_figures`)."""
    from fgsim.calibration import resolve_params
    from fgsim.hardware import load_gpu
    from fgsim.parallel import link_for, stream_gbs

    tpath, cpath, mpath = (out_dir / f"cp-{tag}-{x}" for x in ("timing.csv", "counts.npz", "merge.csv"))
    cpath = resolve_same_as(cpath)
    for p in (tpath, cpath):
        if not p.is_file():
            print(f"cp_validate: error: {p}: no such file", file=sys.stderr)
            return 2
    committed = read_csv(tpath)
    gpu = load_gpu(gpu_name)
    link = link_for(gpu)
    params, note = resolve_params(gpu, calibration)
    from compiled_figures import measured_resources  # type: ignore[import-not-found]

    # the run's launch configurations are those of FGATTN_LAUNCH_TABLE; their compiled figures from every
    # calibration measurement (the committed calibration's rows ran the final table only)
    rows = predict_rows(timing_from_committed(committed), np.load(cpath), gpu, link, params,
                        resources=measured_resources(gpu_name))
    env = {c: committed[0].get(c, "") for c in ENV_COLS}
    write_csv(tpath, rows, env, {"timing": committed[0]["timing"], "cost_model": note,
                                 "interconnect": committed[0]["interconnect"]})
    if mpath.is_file():
        bw = stream_gbs(gpu, params)
        merged = read_csv(mpath)
        for r in merged:
            r["predicted_s"] = _fmt(float(r["bytes"]) / (bw * 1e9))
            r["err"] = _fmt(float(r["predicted_s"]) / float(r["measured_s"]) - 1)
            r["stream_gbs"] = _fmt(bw)
        import io

        from fgsim.fileio import write_text_atomic

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(merged[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(merged)
        write_text_atomic(mpath, buf.getvalue())
    e = np.abs([r["err_rank"] for r in rows])
    print(f"{tpath.name}: re-priced with {note}; |error| of per-rank attention + communication: median "
          f"{np.median(e) * 100:.1f}%, max {e.max() * 100:.1f}%, within 8%: {int((e <= 0.08).sum())}/{e.size}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", help="directory with cp_run.py's outputs")
    ap.add_argument("--repredict", action="store_true",
                    help="re-price the committed cp-<tag>-timing.csv / -merge.csv in --out-dir with the current cost "
                         "model (no results directory; FGATTN_LAUNCH_TABLE = the launch table the run used)")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--tag", required=True, help="results name, e.g. h200x2-2026-11-30-run2")
    ap.add_argument("--out-dir", default=str(ROOT / "validation" / "results"))
    ap.add_argument("--calibration", help="cost-model calibration .json (default: the GPU's own)")
    ap.add_argument("--commit", default="", help="commit the device ran (its copy of the tree has no git)")
    args = ap.parse_args()
    if args.repredict:
        return repredict(args.tag, Path(args.out_dir), args.gpu, args.calibration)
    if not args.results:
        print("cp_validate: error: results: a directory with cp_run.py's outputs is required (or --repredict)",
              file=sys.stderr)
        return 2
    res = Path(args.results)
    if not (res / "cp-timing.csv").is_file():
        print(f"cp_validate: error: {res}/cp-timing.csv: no such file (run validation/cp_run.py first)",
              file=sys.stderr)
        return 2
    from fgsim.calibration import resolve_params
    from fgsim.hardware import load_gpu
    from fgsim.parallel import link_for

    gpu = load_gpu(args.gpu)
    env = json.loads((res / "cp-env.json").read_text()) if (res / "cp-env.json").is_file() else {}
    if args.commit:  # the device's copy of the tree may carry a stale .git
        env["commit"] = args.commit
    link = link_for(gpu)
    timing = read_csv(res / "cp-timing.csv")
    try:
        params, note = resolve_params(gpu, args.calibration)
    except FgsimError as exc:  # a calibration file this fgsim cannot read: say so in every row
        from fgsim.costmodel import ModelParams

        params, note = ModelParams(), f"UNCALIBRATED spec priors ({exc})"
    counts = np.load(res / "cp-counts.npz") if (res / "cp-counts.npz").is_file() else {}
    rows = predict_rows(timing, counts, gpu, link, params)
    out = Path(args.out_dir)
    def how(col: str) -> str:
        ms = {r[col] for r in rows if r.get(col)}
        if ms and all(m.startswith("CUDA graph") for m in ms):
            return "CUDA-graph replay"
        if ms and all("eager" in m for m in ms):
            import re

            reps = sorted({int(x) for m in ms for x in re.findall(r"(\d+) back-to-back", m)})
            b2b = (f", {reps[0]}–{reps[-1]} back-to-back calls per timing" if len(reps) > 1 else
                   f", {reps[0]} back-to-back calls per timing" if reps else ", one call per timing")
            return "eager with CUDA events" + b2b + (" (captured NCCL collectives did not complete on this machine)"
                                                     if any("FGSIM_EAGER_COLLECTIVES" in m for m in ms) else "")
        return "CUDA-graph replay where captured, else eager with CUDA events"

    rounds = sorted({r["rounds"] for r in rows})
    method = (f"per rank, attention: {how('method_attn')}; communication and the whole wrapper: "
              f"{how('method_comm')}; barrier before each; median of {'/'.join(rounds)} interleaved rounds")
    ic = f"{Path(gpu.path).name} interconnect: {link.source[:160]}"
    write_csv(out / f"cp-{args.tag}-timing.csv", rows, env, {"timing": method, "cost_model": note, "interconnect": ic})
    from fgsim.parallel import stream_gbs

    bw = stream_gbs(gpu, params)
    write_csv(out / f"cp-{args.tag}-merge.csv", merge_rows(timing, bw), env,
              {"timing": method, "interconnect": ic})
    for name in ("numerics", "capture"):
        src = read_csv(res / f"cp-{name}.csv")
        write_csv(out / f"cp-{args.tag}-{name}.csv", src, env, {})
    if (res / "interconnect.csv").is_file():
        import shutil

        shutil.copyfile(res / "interconnect.csv", out / f"cp-{args.tag}-interconnect.csv")
    print(f"interconnect ({link.table_degree} GPUs): all-to-all {link.alltoall_busbw_gbs:.0f} GB/s, all-gather "
          f"{link.allgather_busbw_gbs:.0f} GB/s, latency {link.latency_us:.1f} us, copy {link.copy_gbs:.0f} GB/s, "
          f"permute copy {link.permute_copy_gbs:.0f} GB/s; cost model: {note}")
    print(f"{'shape':<18} {'kern':<5} {'dens':>5} {'scheme':<7} {'rk':>2} {'attn meas/pred ms':>20} "
          f"{'comm meas/pred ms':>18} {'rank err':>8} {'total err':>9}")
    for r in rows:
        print(f"{r['shape']:<18} {r['kernel']:<5} {float(r['density']):>5.2f} {r['scheme']:<7} {r['rank']:>2} "
              f"{r['measured_attn_s'] * 1e3:>9.3f}/{r['predicted_attn_s'] * 1e3:<9.3f} "
              f"{r['measured_comm_s'] * 1e3:>8.3f}/{r['predicted_comm_s'] * 1e3:<8.3f} "
              f"{r['err_rank'] * 100:>7.1f}% {r['err_total'] * 100:>8.1f}%")
    for r in merge_rows(timing, bw):
        print(f"merge {r['shape']} rank {r['rank']}: {r['measured_s'] * 1e6:.1f} us measured, {r['predicted_s'] * 1e6:.1f}"
              f" us predicted ({r['achieved_gbs']:.0f} GB/s achieved)")
    if rows:
        e = np.abs([r["err_rank"] for r in rows])
        print(f"|error| of per-rank attention + communication: median {np.median(e) * 100:.1f}%, max "
              f"{e.max() * 100:.1f}%, within 8%: {int((e <= 0.08).sum())}/{e.size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
