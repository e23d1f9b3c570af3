"""Where the TMA-gather CTA's extra per-row time goes (issue 12, session 16, helper W; prepared, not run).

T's in-kernel timeline (``fgattn.timeline``, level 1: row-boundary events of both consumer warpgroups and the
producer) recorded for the packaged kernel (``fgattn.timeline.fg_attention_timeline``) and for the TMA-gather CTA
(``fgattn.gluon_fg_tmagather.fg_attention_tmagather(..., timeline=buf)``: the same consumer code and slots) on the
same index, plan and inputs; per-row phase medians side by side (kernels/NOTES-tma-gather.md, "Next")::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/tmagather_timeline.py --out $OUT     # GPU, ≈ 40 s
    python3 kernels/tools/tmagather_timeline.py --analyze CSV                                    # CPU

Each cell: one warm-up launch of each kernel, one plain launch of the TMA CTA, then one instrumented launch of each
(fresh buffers); the instrumented TMA output must equal the plain one bit for bit.  CSV: per (cell, variant,
quantity) n, median, p10, p90 (cycles) and the median in µs at the launch's own SM clock.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

#: (H, N video, text, density) of the recorded cells: the two d 0.02 cells that lost 7-10 %, one d 0.1 and the
#: d 0.5 cell that gained 5 % (kernels/NOTES-tma-gather.md, call 2)
CELLS = ((12, 32760, 0, 0.02), (40, 32760, 0, 0.02), (12, 32760, 0, 0.1), (12, 32760, 0, 0.5))
#: the quantities compared first (``fgattn.timeline.decode`` fields): the hypotheses' signatures
KEY = ("row_cycles", "c0_q_wait", "c1_q_wait", "c0_full0_wait", "c1_full0_wait", "c0_body", "c0_last_full_wait",
       "c0_meet", "c0_next", "p_lead", "p_empty0_wait", "p_gather0_issue", "idle_boundary")
COLS = ["cell", "variant", "quantity", "n", "median", "p10", "p90", "median_us", "ghz", "row_fit_c_row",
        "row_fit_c_tile", "bit_equal", "gpu_name", "torch", "triton", "date", "git_commit"]


def compare(rows: list[dict[str, Any]]) -> list[str]:
    """Lines 'cell quantity list tg tg-list' (median µs) for the :data:`KEY` quantities present for both."""
    med: dict[tuple[str, str, str], float] = {}
    for r in rows:
        if r["median_us"] not in ("", None):
            med[(r["cell"], r["variant"], r["quantity"])] = float(r["median_us"])
    out = []
    for cell in dict.fromkeys(r["cell"] for r in rows):
        for q in KEY:
            a, b = med.get((cell, "list", q)), med.get((cell, "tg", q))
            if a is not None and b is not None:
                out.append(f"{cell:<22} {q:<18} list {a:8.3f} us  tg {b:8.3f} us  tg-list {b - a:+8.3f} us")
    return out


def run(out_dir: Path) -> Path:
    import torch
    from bench_kernels import env_metadata, make_qkv
    from entry_regress import build_index
    from fgattn import timeline as T
    from fgattn.gluon_fg_list import plan_ws2_list
    from fgattn.gluon_fg_tmagather import fg_attention_tmagather, plan_pieces

    from fgsim.fileio import write_csv_atomic

    m = env_metadata()
    meta = dict(gpu_name=m.get("gpu_name", ""), torch=m["torch"], triton=m["triton"], date=m["date"],
                git_commit=m.get("git_commit", ""))
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows: list[dict[str, Any]] = []
    for h, nv, nt, d in CELLS:
        cell = f"H{h} N{nv}" + (f"+{nt}" if nt else "") + f" d {d}"
        q, k, v = make_qkv(1, h, nv + nt, 128, 1)[0]
        idx = build_index(h, nv, nt, d, "cuda")
        plan = plan_ws2_list(idx, programs=sms)
        pieces = plan_pieces(idx)
        o_list, o_tg, o_plain = (torch.empty_like(q) for _ in range(3))
        T.fg_attention_timeline(q, k, v, idx, T.new_buffer(plan.programs), plan=plan, out=o_list)  # warm-up
        fg_attention_tmagather(q, k, v, idx, plan=plan, pieces=pieces, out=o_plain,
                               timeline=T.new_buffer(plan.programs))
        fg_attention_tmagather(q, k, v, idx, plan=plan, pieces=pieces, out=o_plain)
        torch.cuda.synchronize()
        for var in ("list", "tg"):
            buf = T.new_buffer(plan.programs)
            if var == "list":
                T.fg_attention_timeline(q, k, v, idx, buf, plan=plan, out=o_list)
            else:
                fg_attention_tmagather(q, k, v, idx, plan=plan, pieces=pieces, out=o_tg, timeline=buf)
            torch.cuda.synchronize()
            dec = T.decode(buf)
            ghz = T.clock_ghz(buf)
            fit = T.row_fit(dec) or {}
            eq = "" if var == "list" else str(bool(torch.equal(o_tg, o_plain)))
            for s in T.summarize(dec, ghz):
                rows.append(dict(cell=cell, variant=var, quantity=s["quantity"], n=s["n"], median=s["median"],
                                 p10=s["p10"], p90=s["p90"], median_us=round(s["median_us"], 4), ghz=round(ghz, 4),
                                 row_fit_c_row=fit.get("c_row_cycles", ""), row_fit_c_tile=fit.get("c_tile_cycles", ""),
                                 bit_equal=eq, **meta))
            print(f"[timeline] {cell} {var}: {len(dec)} rows decoded, {ghz:.3f} GHz, fit {fit}, bit-equal {eq}",
                  flush=True)
        del q, k, v
        torch.cuda.empty_cache()
    path = out_dir / f"kernels-h200-{meta['date'][:10]}-tmagather-timeline.csv"
    write_csv_atomic(path, rows, COLS)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU run)")
    ap.add_argument("--analyze", type=Path, default=None, metavar="CSV", help="no GPU: the comparison of a CSV")
    a = ap.parse_args(argv)
    if a.analyze is not None:
        if not a.analyze.is_file():
            ap.error(f"--analyze: {a.analyze} is not a file")
        for ln in compare(list(csv.DictReader(open(a.analyze, newline="")))):
            print(ln)
        return 0
    if a.out is None:
        ap.error("--out is required for a GPU run (or --analyze CSV)")
    import torch

    if not torch.cuda.is_available():
        print("tmagather_timeline: no CUDA device (use --analyze here)", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    path = run(a.out)
    for ln in compare(list(csv.DictReader(open(path, newline="")))):
        print(ln, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
