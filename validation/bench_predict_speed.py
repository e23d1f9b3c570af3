"""How long predicting a whole Wan2.1-14B 720p run takes on this CPU machine (issue 10's target: <= 2 s on 2 cores).

Command rows: wall clock of a fresh process running `fgsim predict --model wan2.1-14b --resolution 720p
--no-progress` (stdout discarded; numba's compiled scheduler already cached by a warm-up run), by where the
operator list of the transformer pass comes from; the paths are interleaved, one run of each per round:

  bundled     the list bundled with fgsim (fgsim/data/oplists): every run of fgsim's own model files
  user-cache  the bundled lists hidden (fgsim.opmodel.OPLIST_DIR pointed elsewhere in the process): the list the
              user's cache holds from an earlier trace, as for a model file fgsim does not bundle
  traced      FGSIM_NO_CACHE=1: torch and diffusers imported and the transformer traced on the meta device, as
              the first run of a model file fgsim does not bundle

The three paths' outputs are checked byte-identical. Model rows: fgsim.costmodel.predict_workload in process, per
kernel, over a 4,000-call run whose calls all have different counts (a captured trace of a whole run; predict
--model's synthesized counts repeat per layer, so each layer is simulated once), counts prepared in the timed loop
by a copy per call as a trace reader would. Writes validation/results/predict-speed-command.csv (appends).
Run: python validation/bench_predict_speed.py [--runs 5]
Older code, for a before/after (command rows; the README shows the latest such run beside the current one):
  git archive b61e3bb | tar -x -C /tmp/before
  python validation/bench_predict_speed.py --code /tmp/before --label "before: b61e3bb"
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

ARGS = ["predict", "--model", "wan2.1-14b", "--resolution", "720p", "--no-progress"]
PATHS = {
    "bundled": ("-m", "fgsim", *ARGS),
    "user-cache": ("-c", "import sys, pathlib, fgsim.opmodel as om\n"
                         "om.OPLIST_DIR = pathlib.Path('/nonexistent-fgsim-oplists')\n"
                         f"from fgsim.cli import main\nsys.exit(main({ARGS!r}))"),
    "traced": ("-m", "fgsim", *ARGS),
}
WHAT = {
    "bundled": "operator list bundled with fgsim",
    "user-cache": "operator list from the user's cache (bundled lists hidden)",
    "traced": "FGSIM_NO_CACHE=1: torch + diffusers imported, pass traced on the meta device",
}


def _run(path: str, cache: str, out: Path | None = None, code: Path = ROOT) -> float:
    env = dict(os.environ, XDG_CACHE_HOME=cache, PYTHONPATH=os.pathsep.join([str(code), str(code / "kernels")]))
    env.pop("FGSIM_NO_CACHE", None)
    if path == "traced":
        env["FGSIM_NO_CACHE"] = "1"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, *PATHS[path]], env=env, cwd=cache, capture_output=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"{path}: exit {r.returncode}: {r.stderr.decode()[-2000:]}")
    if out is not None:
        out.write_bytes(r.stdout)
    return dt


class DistinctCounts:
    """A whole run (passes x layers) whose every call has its own counts: the synthesized counts of the layer with
    one CTA's count moved by one, copied per call (as a trace reader returns a fresh array per call)."""

    def __init__(self, base: object, passes: int) -> None:
        self.base, self.passes = base, passes
        self.n_tokens = base.n_tokens  # type: ignore[attr-defined]

    def entries(self) -> list[tuple[int, int]]:
        return [(p, lay) for p in range(self.passes) for lay in range(self.base.layers)]  # type: ignore[attr-defined]

    def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
        c = self.base.counts(0, layer, m=m, n=n).copy()  # type: ignore[attr-defined]
        i = p % c.size
        c.flat[i] += -1 if c.flat[i] > 1 else 1
        return c


def _model_rows(runs: int) -> list[dict[str, object]]:
    from fgsim.calibration import resolve
    from fgsim.costmodel import predict_workload
    from fgsim.endtoend import SyntheticDensityCounts
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config

    n_tok, heads, layers, passes, m = 75600, 40, 40, 100, 128  # Wan2.1-14B 720p: 50 steps x 2 passes
    gpu = load_gpu("h200")
    r = resolve(gpu)
    wl = DistinctCounts(SyntheticDensityCounts(n_tok, heads, layers, passes, m, density=0.6, frame_tokens=3600),
                        passes)
    rows = []
    for k in ("fg", "block", "dense"):
        cfg = launch_config(k, gpu.name, 128, m, 1, "bf16")
        kw = dict(params_source=r.note, num_heads=heads, stored_block_m=m, resources=r.resources)
        predict_workload(wl, cfg, gpu, r.params, entries=wl.entries()[:2], **kw)  # numba load, layer counts made
        for lay in range(layers):
            wl.base.counts(0, lay, m=m, n=1 if k != "block" else cfg.gran_n)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            pr = predict_workload(wl, cfg, gpu, r.params, **kw)
            times.append(time.perf_counter() - t0)
        ctas = len(pr.entries) * heads * (-(-n_tok // m))
        print(f"model {k}: {len(pr.entries)} calls, {ctas / 1e6:.1f} M CTAs: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {runs} runs)", flush=True)
        rows.append({"kind": "model", "path": k, "what": "kernel model in process, every call's counts distinct",
                     "calls": len(pr.entries), "distinct_calls": len(pr.entries) if k != "dense" else 1, "ctas": ctas,
                     "times": times})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs per path (interleaved rounds; default 5)")
    ap.add_argument("--no-model", action="store_true", help="command rows only")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="time the fgsim package of another checkout (e.g. the code before a change; command rows "
                         "only; code without bundled lists takes its own cache on the 'bundled' path)")
    ap.add_argument("--label", default="current", help="what --code is, recorded in the CSV (default current)")
    ap.add_argument("--record", default=str(ROOT / "validation" / "results" / "predict-speed-command.csv"),
                    help="CSV to append to ('' to skip)")
    a = ap.parse_args()
    if a.runs < 3:
        raise SystemExit("--runs must be >= 3 (the statistic is a median)")
    load0 = os.getloadavg()[0]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as cache:
        outs = {p: Path(cache) / f"{p}.out" for p in PATHS}
        for p in PATHS:  # warm-up: numba's cache, the user's operator-list cache, the OS file cache
            _run(p, cache, outs[p], a.code)
        ref = outs["bundled"].read_bytes()
        same = {p: outs[p].read_bytes() == ref for p in PATHS}
        if not all(same.values()):
            raise SystemExit(f"outputs differ between paths: {same}")
        times: dict[str, list[float]] = {p: [] for p in PATHS}
        for i in range(a.runs):
            for p in PATHS:
                times[p].append(_run(p, cache, code=a.code))
            print(f"round {i + 1}: " + ", ".join(f"{p} {times[p][-1]:.2f} s" for p in PATHS), flush=True)
    for p in PATHS:
        rows.append({"kind": "command", "path": p, "what": WHAT[p], "calls": 4000, "distinct_calls": 40, "ctas": "",
                     "times": times[p]})
    if not a.no_model and a.code == ROOT:
        rows += _model_rows(a.runs)
    load1 = os.getloadavg()[0]
    date = datetime.now(UTC).isoformat(timespec="seconds")
    commit = os.environ.get("FGSIM_COMMIT") or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                                              capture_output=True, text=True).stdout.strip()
    if a.code != ROOT and a.label == "current":
        raise SystemExit("--code needs a --label saying what that code is")
    out = []
    for r in rows:
        t = r.pop("times")
        out.append({"date": date, "commit": commit, "code": a.label, **r, "runs": len(t), "median_s": round(statistics.median(t), 4),
                    "min_s": round(min(t), 4), "max_s": round(max(t), 4), "target_s": 2.0,
                    "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "loadavg_1min_start": round(load0, 2), "loadavg_1min_end": round(load1, 2),
                    "python": platform.python_version(), "numba": version("numba"), "torch": version("torch"),
                    "diffusers": version("diffusers")})
    print(f"{'kind':<8} {'path':<11} {'median':>7} {'min':>6} {'max':>6}  (target <= 2 s; load average "
          f"{load0:.1f} -> {load1:.1f} on {os.cpu_count()} cores)")
    for r in out:
        print(f"{r['kind']:<8} {r['path']:<11} {r['median_s']:>6.2f}s {r['min_s']:>5.2f}s {r['max_s']:>5.2f}s")
    if a.record:
        from fgsim.fileio import write_text_atomic

        path = Path(a.record)
        old = path.read_text() if path.exists() else ""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(out[0]), lineterminator="\n")
        if not old:
            w.writeheader()
        w.writerows(out)
        write_text_atomic(path, old + buf.getvalue())
        print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
