"""README block: fgattn kernels vs cuDNN SDPA and FlexAttention on Wan2.1 shapes (H200, issue 12).

Session 17 (helper K): the fg D=128 M=128 gran-16 / 64 entries run the gran-1 Gluon list kernel on the expanded
index since table 514ce3e (adopted by kernels/NOTES.md "Session 17, K"); their "Coarser runs" rows are
:data:`GRAN_RUN` (re-timed on that table), not run 15's, and the line names the paired comparison of :data:`GRAN_AB`.

Run 15 (2026-12-01, session 15, K7): the launch table 772420a (the fg D128 M128 g1 and the block D128 M128 contig
entries adopt the row end ``tma_sel``, each by a rule pre-registered before its timing call: kernels/NOTES.md
"Session 14, K6" on run 14, "Session 15, K7" on run 15a) → one H200 call of kernels/tools/k7_call2.sh
(``validation/bench_kernels.py --final --check-gluon 200 --check-gluon-entry --check-contig 200 --check-gluon-only
--bench-shapes 6,0,4,1,7,5,2,3 --bench-rounds 5 --bench-shuffle-seed 15 --bench-all-kernels --previous-table
kernels/logs/launch_configs-at-300ad25.json``: the GPU check first, then the 8 D=128 shapes; the D=64 shape was not
run, its entries unchanged since run 10, from which it is taken whole).  The entries of the table before (300ad25)
that changed ran beside them (``*_previous``: fg at H12 / H40 N32760, block at every cell) in the same rounds.
cuDNN and FlexAttention in the same interleaved rounds in a fresh random order per round; the ``run`` column names
each shape's CSV.  The target table also counts run 11 (:data:`BEFORE`, the table before, 300ad25) per target.  Per density: d·t_cuDNN/t,
the fraction of cuDNN's dense throughput reached on the kept slices (targets 0.92 at M=128, 0.85 at M=64).  The
route table says what each kernel's timed CUDA graphs launched (run 11's ``route`` column: the Gluon launches
counted during capture).
"""

from __future__ import annotations

import json
import math
import statistics

from _common import ROOT, provenance, read_rows  # type: ignore[import-not-found]

#: the final table's runs; a shape is taken whole from the first run that has it (run 10: the D=64 shape only)
RUNS = ("kernels-h200-2026-12-01-issue12-run15.csv", "kernels-h200-2026-11-30-issue12-run10.csv")
LABELS = ("15", "10")
#: the runs on the table before (300ad25: fg and block D=128 M=128 with the "stg" row end), counted per target
BEFORE = ("kernels-h200-2026-11-30-issue12-run11.csv",)
BEFORE_LABELS = ("11",)
#: the table before, as the target table's header says it
BEFORE_DESC = "300ad25, whose fg and block D=128 M=128 Gluon entries ended each row with per-thread stores"
#: what the previous table ran for the entries that changed (the ``*_previous`` rows)
CHANGE = ("300ad25: the fg D=128 M=128 gran-1 entry and the block D=128 M=128 contig entry ended each query row with "
          "a division per element and per-thread stores; now the row end `tma_sel`: one reciprocal per query row, "
          "the empty row zeroed by selects, O stored by one TMA bulk store per warpgroup through the row's last K "
          "stage, the next row's offsets loaded a row ahead")
#: the rules that adopted the changed entries (written before their timing calls)
RULES = ("fg: kernels/NOTES.md \"Session 14, K6\" on run 14 (every cell ≤ 1 + T, geometric mean ≤ 0.97 at d ≤ 0.1 "
         "and ≤ 1.01 at d ≥ 0.2); block: \"Session 15, K7\" on run 15a (every cell ≤ 1.02, geometric mean ≤ 0.98 "
         "at d ≤ 0.1); the dense entry's twin failed its part (≤ 1.01 at every shape) and did not change")
#: the fg D=128 M=128 gran-16 / 64 rows ("Coarser runs"): since table 514ce3e (session 17, helper K) those entries run
#: the gran-1 Gluon list kernel on the expanded index; re-timed on that table (H12 N32760 d 0.1 / 0.5, cuDNN in the
#: same rounds) and taken from here instead of run 15; the paired comparison with the previous tl entries from GRAN_AB
GRAN_RUN = "kernels-h200-2026-12-01-issue12-s17k-record.csv"
GRAN_LABEL = "17K"
GRAN_AB = "kernels-h200-2026-12-01-issue12-s17k-gran.csv"
#: the timing call that chose the final table's one change (the list schedule; paired rel = t_list / t_walk entry)
ADOPTION = "kernels-h200-2026-11-30-ws2-list-rule3.csv"
TABLE = ROOT / "kernels" / "fgattn" / "data" / "launch_configs.json"


def adopted() -> tuple[list[float], list[float]]:
    """The list schedule's paired median time / the walk entry's per problem in :data:`ADOPTION`: (launch-ordered
    problems, natural-order problems); empty when the table's fg D128 M128 g1 entry does not run the list."""
    e = next(e for e in json.loads(TABLE.read_text())["entries"] if e["gpu"] == "h200" and
             (e["kernel"], e["head_dim"], e["block_m"], e["gran_n"]) == ("fg", 128, 128, 1))
    if e["extra"].get("gluon", {}).get("schedule") != "list":
        return [], []
    rel = [(r["shape"].endswith("natural"), float(r["rel_entry"])) for r in read_rows(ADOPTION) if r["variant"] == "list"]
    return [v for nat, v in rel if not nat], [v for nat, v in rel if nat]


def load(runs: tuple[str, ...] = RUNS, labels: tuple[str, ...] = LABELS
         ) -> tuple[list[dict[str, str]], list[dict[str, str]], dict[str, int]]:
    """(rows of the final kernels, Flex rows, rows used per CSV); each shape's rows all from one run, named in the
    row's ``run`` key (:data:`LABELS`)."""
    rows: list[dict[str, str]] = []
    used: dict[str, int] = {}
    seen: set[str] = set()
    for i, name in enumerate(runs):
        got = [dict(r) for r in read_rows(name) if r["shape"] not in seen]
        seen |= {r["shape"] for r in got}
        for r in got:
            r["run"] = labels[i]
        used[name] = len(got)
        rows += got
    return rows, [r for r in rows if r["kernel"] == "flex_block128"], used


def _is_gran(r: dict[str, str]) -> bool:
    return r["kernel"] == "fg_attention" and r["M"] == "128" and r["gran_n"] in ("16", "64")


def with_gran_run(rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], int]:
    """``rows`` with the fg M=128 gran-16 / 64 rows replaced by :data:`GRAN_RUN`'s (run :data:`GRAN_LABEL`, on the
    table whose gran entries run the Gluon list kernel on the expanded index); (rows, rows taken from it)."""
    gran = [dict(r, run=GRAN_LABEL) for r in read_rows(GRAN_RUN) if _is_gran(r)]
    return [r for r in rows if not _is_gran(r)] + gran, len(gran)


def gran_ab() -> list[float]:
    """Per cell of :data:`GRAN_AB`: the median over rounds of t(Gluon on the expanded index) / t(previous tl entry)
    in the same round (lever 1's adoption statistic, kernels/NOTES.md "Session 17, K")."""
    rows = read_rows(GRAN_AB)
    base = {(r["shape"], r["gran_n"], r["density_target"]): r for r in rows if _is_gran(r)}
    return [_paired(r, base[(r["shape"], r["gran_n"], r["density_target"])]) for r in rows
            if r["kernel"] == "fg_attention_expand" and (r["shape"], r["gran_n"], r["density_target"]) in base]


DENS = ("0.02", "0.05", "0.1", "0.2", "0.3", "0.5", "0.7", "0.9", "1.0")


def _f(x: float) -> str:
    return f"{x:.2f}"


def target_cells(rows: list[dict[str, str]]) -> list[tuple[str, list[float], list[bool], str]]:
    """The issue-12 targets on the D=128 shapes: (name, measured values, met per cell, unit) each."""
    d128 = [r for r in rows if r["D"] == "128"]

    def sel(kernel: str, m: str, g: str) -> list[dict[str, str]]:
        return [r for r in d128 if r["kernel"] == kernel and r["M"] == m and r["gran_n"] == g]

    out: list[tuple[str, list[float], list[bool], str]] = []

    def line(name: str, vals: list[float], ok: list[bool], unit: str = "") -> None:
        out.append((name, vals, ok, unit))

    fg = sel("fg_attention", "128", "1")
    for d in DENS:
        at = [r for r in fg if r["density_target"] == d]
        v = [float(r["ratio_vs_cudnn"]) for r in at]
        line(f"fg M=128 ≥ 0.92 at d = {d}", v, [x >= 0.92 for x in v])
    v = [float(r["ratio_vs_cudnn"]) for r in fg]
    line("**fg M=128 ≥ 0.92, every d ≥ 0.02 (all cells)**", v, [x >= 0.92 for x in v])
    v = [float(r["ratio_vs_cudnn"]) for r in sel("fg_attention", "64", "1")]
    line("fg M=64 ≥ 0.85", v, [x >= 0.85 for x in v])
    v = [float(r["ratio_vs_cudnn"]) for r in sel("fg_dense", "128", "1")]
    line("dense fgattn M=128 ≥ 0.97 of cuDNN (one cell per shape)", v, [x >= 0.97 for x in v])
    v = [float(r["ratio_vs_cudnn"]) for r in sel("fg_block128", "128", "128")]
    line("block-sparse ≥ 0.92 on kept blocks", v, [x >= 0.92 for x in v])
    flex = {(r["shape"], r["density_target"]): float(r["ms"]) for r in d128 if r["kernel"] == "flex_block128"}
    sp = [flex[(r["shape"], r["density_target"])] / float(r["ms"]) for r in fg
          if (r["shape"], r["density_target"]) in flex]
    line("fg faster than Flex BlockMask (t_Flex / t_fg > 1)", sp, [x > 1 for x in sp], "×")
    sc = [float(r["speedup_vs_cudnn"]) for r in fg if float(r["density_target"]) <= 0.9]
    line("fg faster than cuDNN at d ≤ 0.9 (t_cuDNN / t_fg > 1)", sc, [x > 1 for x in sc], "×")
    return out


def targets(rows: list[dict[str, str]], before: list[dict[str, str]]) -> list[str]:
    """The issue-12 targets on the D=128 shapes, one line each: cells counted, cells met (and met in ``before``,
    the runs on the previous table), range, verdict."""
    shapes = list(dict.fromkeys(r["shape"] for r in rows if r["D"] == "128"))
    prev = {name: f"{sum(ok)} / {len(ok)}" for name, _, ok, _ in target_cells(before)}
    out = ["Issue-12 targets on the eight D=128 Wan shapes (H200, bf16, graph timing, cuDNN in the same rounds; "
           f"a cell = one shape × one density; ratio = d·t_cuDNN/t; run {BEFORE_LABELS[0]} = the same benchmark on "
           f"the table before, {BEFORE_DESC}):", "",
           f"| target | cells counted | cells met | met in run {BEFORE_LABELS[0]} | measured range | verdict |",
           "|---|---|---|---|---|---|"]
    for name, vals, ok, unit in target_cells(rows):
        met = sum(ok)
        verdict = "**met**" if met == len(ok) else "missed" if met == 0 else "partly"
        rng = f"{_f(min(vals))}–{_f(max(vals))}{unit}" if vals else ""
        out.append(f"| {name} | {len(ok)} | {met} | {prev.get(name, '')} | {rng} | {verdict} |")
    out += ["", f"Shapes counted: {', '.join(shapes)}; the text shapes H40 N32760+512 and H12 N75600+512 have "
            "4 densities (0.02, 0.1, 0.3, 0.5), the others 9. Verdict: met = every counted cell, partly = some.", ""]
    return out


def cell_clock(rows: list[dict[str, str]]) -> str:
    """The per-cell SM clock (``sm_mhz``: NVML polled during the cell's own timed replays), as one phrase."""
    v = sorted(int(r["sm_mhz"]) for r in rows if r.get("sm_mhz"))
    if not v:
        return ""
    return (f"; per-cell SM clock (`sm_mhz`, NVML read about every ms during the cell's own timed replays, "
            f"{len(v)} cells) median {statistics.median(v):.0f} MHz, {v[0]}–{v[-1]} MHz")


def routes(rows: list[dict[str, str]]) -> list[str]:
    """A table: per kernel (M, gran_n), the launch-table form and what its timed CUDA graphs launched (``route``)."""
    groups: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in rows:
        if r["kernel"] in ("sdpa_cudnn", "flex_block128") or not r.get("route"):
            continue
        route = r["route"].split(" captured")[0].rsplit(" ", 1)[0] if r["route"].startswith("gluon") else r["route"]
        groups.setdefault((r["kernel"], r["M"], r["gran_n"]), {}).setdefault(route, 0)
        groups[(r["kernel"], r["M"], r["gran_n"])][route] += 1
    if not groups:
        return []
    out = [f"Route each kernel took in run {LABELS[0]}'s timed CUDA graphs (the fg M=128 gran-16 / 64 rows: run "
           f"{GRAN_LABEL}'s; Gluon launches counted while each graph was "
           "captured; the row plans were memoised by the warm-up before capture):", "",
           "| kernel | M | gran_n | launch-table entry | route (cells) |", "|---|---|---|---|---|"]
    entry = {"fg_attention": "fg", "fg_attention_headmajor_lpt": "fg (head-major order)", "fg_dense": "dense",
             "fg_block128": "block", "fg_attention_previous": f"fg, table before ({BEFORE_DESC.split(',')[0]})",
             "fg_dense_previous": f"dense, table before ({BEFORE_DESC.split(',')[0]})",
             "fg_block128_previous": f"block, table before ({BEFORE_DESC.split(',')[0]})",
             "fg_dense_contig216": "dense as contig regs 216/64 (record only)",
             "fg_block128_contig216": "block as contig regs 216/64 (record only)"}
    for (k, m, g), rs in groups.items():
        out.append(f"| {k} | {m} | {g} | {entry.get(k, k)} | "
                   + ", ".join(f"{route} ({n})" for route, n in rs.items()) + " |")
    return out + [""]


def _paired(new: dict[str, str], old: dict[str, str]) -> float:
    """Median over rounds of t_new / t_old in the same round (``ms_rounds``); the medians' ratio without it."""
    if new.get("ms_rounds") and old.get("ms_rounds"):
        r = sorted(float(a) / float(b) for a, b in zip(new["ms_rounds"].split(";"), old["ms_rounds"].split(";"),
                                                        strict=True))
        return r[len(r) // 2]
    return float(new["ms"]) / float(old["ms"])


def clock_range(rows: list[dict[str, str]]) -> str:
    """The SM / memory clocks sampled under load (nvidia-smi during each shape's timed rounds), as one phrase."""
    import re

    sm, mem = [], []
    for clk in {r["shape"]: r.get("clocks_under_load", "") for r in rows}.values():
        m = re.match(r"sm (\d+) \((\d+)-(\d+)\) MHz, mem (\d+) MHz", clk or "")
        if m:
            sm.append(int(m.group(1)))
            mem.append(int(m.group(4)))
    if not sm:
        return "SM clocks under load per shape in the CSV"
    return (f"SM clock under load {min(sm)}–{max(sm)} MHz (median per shape, sampled during the timed rounds), "
            + (f"memory {mem[0]} MHz" if min(mem) == max(mem) else f"memory {min(mem)}–{max(mem)} MHz"))


def render() -> str:
    rows, flex1, used = load()
    for lab, name in zip(LABELS, RUNS, strict=True):  # the gran rows replaced by GRAN_RUN's are not used
        used[name] -= sum(1 for r in rows if r["run"] == lab and _is_gran(r))
    rows, n_gran = with_gran_run(rows)
    before, _, used_before = load(BEFORE, BEFORE_LABELS)
    shapes: list[str] = []
    for r in rows:
        if r["shape"] not in shapes:
            shapes.append(r["shape"])

    def pick(shape: str, kernel: str, m: str = "128", g: str = "1") -> dict[str, dict[str, str]]:
        return {r["density_target"]: r for r in rows
                if r["shape"] == shape and r["kernel"] == kernel and r["M"] == m and r["gran_n"] == g}

    out = targets(rows, before) + routes(rows) + ["fg_attention (M=128, M×1 slices) as d·t_cuDNN/t per target density d (3D window masks + 64 "
           "sink keys; text rows and columns full when 512 text tokens are appended; target ≥ 0.92):", "",
           "| shape | run | cuDNN ms (TF/s) | " + " | ".join(f"d={d}" for d in DENS) + " | met | round spread |",
           "|---|---|---|" + "---|" * len(DENS) + "---|---|"]
    met = total = 0
    for s in shapes:
        cud = next((r for r in rows if r["shape"] == s and r["kernel"] == "sdpa_cudnn"), None)
        fg = pick(s, "fg_attention")
        if cud is None or not fg:
            continue
        cells, m_s, t_s, spread = [], 0, 0, []
        for d in DENS:
            r = fg.get(d)
            if r is None:
                cells.append("")
                continue
            v = float(r["ratio_vs_cudnn"])
            spread.append((float(r["ratio_max"]) - float(r["ratio_min"])) / 2 / v)
            t_s += 1
            m_s += v >= 0.92
            cells.append(_f(v))
        targeted = "D128" in s  # the target is on D=128 Wan shapes
        met += m_s if targeted else 0
        total += t_s if targeted else 0
        out.append(f"| {s} | {cud['run']} | {float(cud['ms']):.2f} ({float(cud['eff_tflops']):.0f}) | "
                   + " | ".join(cells)
                   + (f" | {m_s}/{t_s} |" if targeted else " | (D=64: no target) |")
                   + f" ±{100 * statistics.median(spread):.0f} % (max ±{100 * max(spread):.0f} %) |")
    rounds = {lab: sorted({r["rounds"] for r in rows if r["run"] == lab}) for lab in LABELS}
    out += ["", f"Target met in {met} of {total} D=128 cells.", "",
            "run: " + ", ".join(f"{a} = {b} ({'/'.join(rounds[a])} interleaved rounds in a fresh random order per "
                                f"round, {used[b]} rows)" for a, b in zip(LABELS, RUNS, strict=True))
            + ", on the final launch table's entries. Round spread: half the range over rounds of the per-round ratio, relative to the "
            "median, median and max over the row's cells."
            + (" The paragraph on changed entries below compares new and previous entries in the same rounds."
               if any(r["kernel"].endswith("_previous") for r in rows) else ""), "",
            "Dense, block-sparse and M=64 kernels (ratios d·t_cuDNN/t, block with the kept 128×128 blocks' "
            "area as d; targets dense ≥ 0.97, block ≥ 0.92, M=64 ≥ 0.85) and FlexAttention BlockMask "
            "(speed-up = t_Flex/t_fg at the same mask):", "",
            "| shape | run | fg_dense M=128 | fg_dense M=64 | fg M=64 (d: ratio) | block128 min–max | "
            "fg vs Flex BlockMask min–max | fg faster than cuDNN at every d ≤ |",
            "|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        cud = pick(s, "sdpa_cudnn").get("1.0")
        if cud is None:
            continue
        dense = pick(s, "fg_dense").get("1.0")
        dense64 = pick(s, "fg_dense", "64").get("1.0")
        fg64 = pick(s, "fg_attention", "64")
        blk = [float(r["ratio_vs_cudnn"]) for r in pick(s, "fg_block128", "128", "128").values()]
        fg = pick(s, "fg_attention")
        flex = {r["density_target"]: r for r in flex1 if r["shape"] == s}  # same run as the fg rows
        sp = [float(flex[d]["ms"]) / float(fg[d]["ms"]) for d in flex if d in fg]
        slower = [float(d) for d, r in fg.items() if float(r["speedup_vs_cudnn"]) <= 1.0]
        faster = [float(d) for d in fg if float(d) < min(slower, default=2.0)]
        m64 = ", ".join(f"{d}: {_f(float(r['ratio_vs_cudnn']))}" for d, r in sorted(fg64.items(), key=lambda x: float(x[0])))
        out.append(f"| {s} | {cud['run']} | {_f(float(dense['ratio_vs_cudnn'])) if dense else ''} | "
                   f"{_f(float(dense64['ratio_vs_cudnn'])) if dense64 else ''} | {m64} | "
                   f"{_f(min(blk)) + '–' + _f(max(blk)) if blk else ''} | "
                   f"{(_f(min(sp)) + '–' + _f(max(sp)) + '×') if sp else 'not run'} | {max(faster) if faster else ''} |")
    g = [r for r in rows if r["kernel"] == "fg_attention" and r["gran_n"] in ("16", "64")]
    if g:
        ab = gran_ab()
        out += ["", "Coarser runs (gran_n keys per gathered run, H12 N32760): " + "; ".join(
            f"M={r['M']} gran_n={r['gran_n']} d={r['density_target']}: {_f(float(r['ratio_vs_cudnn']))}"
            + (f" (run {r['run']})" if r["run"] == GRAN_LABEL else "")
            for r in g) + f". Run {GRAN_LABEL} (`{GRAN_RUN}`, 5 interleaved rounds, cuDNN in the same rounds) is the "
            "launch table since 514ce3e, whose fg M=128 gran-16 / 64 entries run the gran-1 Gluon list kernel on the "
            "index expanded to its kept keys (`extra.gluon.expand`, fgattn.gran_expand)"
            + (f"; against the previous (tl) entries in the same rounds of `{GRAN_AB}`, time ratio "
               f"{math.exp(sum(map(math.log, ab)) / len(ab)):.3f} (geometric mean of {len(ab)} cells: H12 N32760 "
               f"with and without 512 text tokens and H40 N75600 at d 0.02–0.9, gran 16 and 64; {min(ab):.3f}–"
               f"{max(ab):.3f}), the rule written before that call: every cell ≤ 1.02 and geometric mean ≤ 0.95"
               if ab else "") + "."]
    hm = [r for r in rows if r["kernel"] == "fg_attention_headmajor_lpt"]
    if hm:
        parts = []
        for r in hm:
            new = pick(r["shape"], "fg_attention").get(r["density_target"])
            if new:
                parts.append(f"{r['shape']} d={r['density_target']}: {_f(float(new['ratio_vs_cudnn']))} with the "
                             f"promoted order vs {_f(float(r['ratio_vs_cudnn']))} head-major only")
        out += ["", "Launch order with text tokens (heavy text rows promoted first): " + "; ".join(parts) + "."]
    name = {"fg_attention": "fg", "fg_dense": "dense", "fg_block128": "block"}

    def versus(suffix: str) -> list[str]:
        groups: dict[tuple[str, str, str], list[float]] = {}
        for r in rows:
            if not r["kernel"].endswith(suffix):
                continue
            kern = r["kernel"].removesuffix(suffix)
            new = pick(r["shape"], kern, r["M"], r["gran_n"]).get(r["density_target"])
            if new:
                v = _paired(new, r) if suffix == "_previous" else _paired(r, new)
                groups.setdefault((kern, r["M"], r["gran_n"]), []).append(v)
        return [f"{name.get(k, k)} M={m}" + (f" gran_n={g}" if k == "fg_attention" else "")
                + f": {math.exp(sum(map(math.log, v)) / len(v)):.3f} ({len(v)} cell"
                + (f"s, geometric mean, {min(v):.3f}–{max(v):.3f})" if len(v) > 1 else ")")
                for (k, m, g), v in groups.items()]

    if parts := versus("_previous"):
        out += ["", f"Entries changed since the previous table ({CHANGE}), time of the new entry / the previous one "
                f"in the same rounds (per cell the median over rounds of the per-round ratio; adopted by {RULES}): "
                + "; ".join(parts) + "."]
    if parts := versus("_contig216"):
        out += ["", "The same contig form with the fg entry's register split (216 / 64, no ping-pong) / the "
                "adopted one (240 / 24, ping-pong), paired the same way: " + "; ".join(parts) + "."]
    ad, nat = adopted()
    if ad:
        out += ["", f"The fg entry's list schedule (since table 181d183): in the timing call that chose it ({ADOPTION}, paired median of 9 shuffled rounds per problem; "
                "rule written before the call: the walk control's geo-mean within 1 ± 0.01 and list ≤ 1.02 × the "
                "walk entry at all 8 launch-ordered sweep problems), list / walk entry: median "
                f"{statistics.median(ad):.3f} of {len(ad)} problems ({min(ad):.3f}–{max(ad):.3f})"
                + (f"; natural-order index (no launch order) {', '.join(f'{x:.3f}' for x in nat)}" if nat else "")
                + "."]
    first = rows[0]
    method = ("CUDA graphs, interleaved rounds (" + ", ".join(f"run {a}: {'/'.join(rounds[a])}" for a in LABELS)
              + ") in a fresh random order per round, >= 30 ms untimed replays before each timed one, "
              f"on {first['gpu_name']} (driver {first['smi_driver_version']}, torch {first['torch']}, "
              f"Triton {first['triton']}, cuDNN {first['cudnn']}), "
              + clock_range([r for r in rows if r["run"] in LABELS]) + cell_clock(rows))
    method += ("; rows per CSV: " + ", ".join(f"{n} {used[n]}" for n in RUNS)
               + " (on the final launch table's entries; each shape whole from one CSV, named in the run column; "
               f"run {LABELS[-1]} supplies the D=64 shape only, not re-run in run {LABELS[0]}: its entries are "
               f"unchanged since run {LABELS[-1]}); "
               + ", ".join(f"{n} {used_before[n]}" for n in BEFORE) + f" (run {BEFORE_LABELS[0]}, the table before: "
               f"the met-in-run-{BEFORE_LABELS[0]} column only)"
               + f", {GRAN_RUN} {n_gran} (run {GRAN_LABEL}: the fg M=128 gran-16 / 64 rows)"
               + f", {GRAN_AB} {2 * len(gran_ab())} (the gran entries' paired comparison)")
    n_ad = len(ad) + len(nat)
    out += ["", provenance(list(dict.fromkeys(list(RUNS) + list(BEFORE) + [GRAN_RUN, GRAN_AB]
                                              + ([ADOPTION] if ad else []))),
                           len(rows) + len(before) + n_ad + 2 * len(gran_ab()), method
                           + (f"; {ADOPTION} {n_ad} rows (the list variant's paired rel)" if ad else ""),
                           first["statistic"])]
    return "\n".join(out) + "\n"
