"""README block: how long predicting a whole Wan2.1-14B 720p run takes on the CPU (validation/bench_predict_speed.py)."""

from __future__ import annotations

from _common import provenance, read_rows  # type: ignore[import-not-found]

CSV = "predict-speed-command.csv"
LABEL = {
    "bundled": "bundled with fgsim (its own model files)",
    "user-cache": "from the user's cache (a model file fgsim does not bundle, after its first run)",
    "traced": "traced: torch + diffusers imported, the pass run on the meta device (that file's first run)",
}


def _s(x: str) -> str:
    v = float(x)
    return f"{v:.2f} s" if v >= 0.01 else f"{v * 1e3:.1f} ms"


def render() -> str:
    rows = read_rows(CSV)
    latest = max(r["date"] for r in rows if r["code"] == "current")
    cur = [r for r in rows if r["date"] == latest]  # one run of the benchmark on this checkout's code
    befores = [r for r in rows if r["code"].startswith("before")]
    before_date = max((r["date"] for r in befores), default="")
    before = {r["path"]: r for r in befores if r["date"] == before_date}
    cmd = [r for r in cur if r["kind"] == "command"]
    model = [r for r in cur if r["kind"] == "model"]
    c0 = cur[0]
    target = float(c0["target_s"])
    b0 = next(iter(before.values()), None)
    lines = [f"`fgsim predict --model wan2.1-14b --resolution 720p` (fg, block-sparse and dense over the run's "
             f"{int(cmd[0]['calls']):,} attention calls of synthesized counts, the best-dense reference, every operator "
             f"of the transformer pass priced) on a {c0['cores']}-core CPU machine, a fresh process per run; issue "
             f"10's target is ≤ {target:g} s:", ""]
    head = "| operator list of the pass | median | min – max | runs | ≤ 2 s |"
    rule = "|---|---|---|---|---|"
    if b0 is not None:
        head += f" {b0['code'].replace('before: ', 'before, commit ')} |"
        rule += "---|"
    lines += [head, rule]
    for r in cmd:
        ok = "yes" if float(r["median_s"]) <= target else "no"
        line = (f"| {LABEL.get(r['path'], r['path'])} | {_s(r['median_s'])} | {_s(r['min_s'])} – "
                f"{_s(r['max_s'])} | {r['runs']} | {ok} |")
        if b0 is not None:
            b = before.get(r["path"])
            line += f" {_s(b['median_s'])} |" if b else " |"
        lines.append(line)
    if b0 is not None:
        lines += ["", f"Before (the same benchmark on that commit's code, {b0['date'][:16].replace('T', ' ')} UTC, load "
                  f"average {b0['loadavg_1min_start']} → {b0['loadavg_1min_end']}), equal calls were simulated once per "
                  "chunk of 64 calls (~2,500 simulations per sparse kernel, now 40) and no operator list was "
                  "bundled: its first two rows both read the user's cache."]
    lines.append("")
    if model:
        parts = ", ".join(f"{r['path']} {_s(r['median_s'])}" for r in model)
        m0 = model[0]
        lines.append(f"The synthesized counts repeat per layer, so each kernel simulates 40 distinct calls. A captured "
                     f"trace whose {int(m0['calls']):,} calls all differ ({int(m0['ctas']) / 1e6:.1f} M CTAs per "
                     f"kernel) costs the kernel cost model, in process: {parts} (median of {m0['runs']}).")
    lines.append(provenance([CSV], len(cur) + len(before), f"wall clock of fresh `python -m fgsim predict ...` processes "
                            f"(`validation/bench_predict_speed.py`, commit {c0['commit']}, {latest[:10]}), the three "
                            "paths interleaved after one warm-up run each, outputs checked byte-identical; load average "
                            f"{c0['loadavg_1min_start']} → {c0['loadavg_1min_end']} on the shared machine; kernel model: "
                            "`fgsim.costmodel.predict_workload` in process",
                            "median (min – max) of each row's runs"))
    return "\n".join(lines)
