"""Where the TMA-gather CTA's extra per-row time goes (issue 12, session 16, helpers W and W2).

T's in-kernel timeline (``fgattn.timeline``, level 1: row-boundary events of both consumer warpgroups and the
producer) recorded for the packaged kernel (``fgattn.timeline.fg_attention_timeline``) and for the TMA-gather CTA
(``fgattn.gluon_fg_tmagather.fg_attention_tmagather(..., timeline=buf)``: the same consumer code and slots) and for
helper W2's candidates (``fg_attention_tgc(..., timeline=buf)``: the same slots) on the same index, plan and inputs;
per-row phase medians side by side (kernels/NOTES-tma-gather.md)::

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
KEY = ("row_cycles", "c0_q_wait", "c1_q_wait", "c0_full0_wait", "c1_full0_wait", "c0_o_release", "c1_o_release",
       "c0_qk0_rest", "c0_body", "c0_last_full_wait", "c0_last_tile", "c0_last_pv", "c0_meet", "c0_stage_o",
       "c0_store_issue", "c0_next", "p_lead", "p_empty0_wait", "p_gather0_issue", "p_row", "idle_boundary")
#: the TMA-gather forms recorded beside the packaged ``list``: W's ``tg`` and helper W2's candidates (the W2 consumer,
#: ``fgattn.gluon_fg_tmagather.fg_attention_tgc`` with ``TGC_KNOBS[name]``)
TG_FORMS = ("tg", "tgq", "tgqo")
COLS = ["cell", "variant", "quantity", "n", "median", "p10", "p90", "median_us", "ghz", "row_fit_c_row",
        "row_fit_c_tile", "bit_equal", "gpu_name", "torch", "triton", "date", "git_commit"]


def compare(rows: list[dict[str, Any]]) -> list[str]:
    """Lines 'cell quantity list, then each TMA-gather form and its difference to list' (median µs) for the
    :data:`KEY` quantities present for list and at least one form."""
    med: dict[tuple[str, str, str], float] = {}
    for r in rows:
        if r["median_us"] not in ("", None):
            med[(r["cell"], r["variant"], r["quantity"])] = float(r["median_us"])
    out = []
    forms = [f for f in TG_FORMS if any(r["variant"] == f for r in rows)]
    for cell in dict.fromkeys(r["cell"] for r in rows):
        for q in KEY:
            a = med.get((cell, "list", q))
            if a is None:
                continue
            parts = [f"{f} {med[(cell, f, q)]:8.3f} us ({f}-list {med[(cell, f, q)] - a:+.3f} us)" for f in forms
                     if (cell, f, q) in med]
            if parts:
                out.append(f"{cell:<22} {q:<18} list {a:8.3f} us  " + "  ".join(parts))
    return out


def run(out_dir: Path, forms: tuple[str, ...] = TG_FORMS, cells: tuple = CELLS) -> Path:
    import torch
    from bench_kernels import env_metadata, make_qkv
    from entry_regress import build_index
    from fgattn import timeline as T
    from fgattn.gluon_fg_list import plan_ws2_list
    from fgattn.gluon_fg_tmagather import TGC_KNOBS, fg_attention_tgc, fg_attention_tmagather, plan_pieces

    from fgsim.fileio import write_csv_atomic

    m = env_metadata()
    meta = dict(gpu_name=m.get("gpu_name", ""), torch=m["torch"], triton=m["triton"], date=m["date"],
                git_commit=m.get("git_commit", ""))
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows: list[dict[str, Any]] = []
    path = out_dir / f"kernels-h200-{meta['date'][:10]}-tmagather-timeline.csv"
    for h, nv, nt, d in cells:
        cell = f"H{h} N{nv}" + (f"+{nt}" if nt else "") + f" d {d}"
        q, k, v = make_qkv(1, h, nv + nt, 128, 1)[0]
        idx = build_index(h, nv, nt, d, "cuda")
        plan = plan_ws2_list(idx, programs=sms)
        pieces = plan_pieces(idx)
        def launch(var: str, o: Any, buf: Any = None, t: tuple = (q, k, v, idx, plan, pieces)) -> None:
            if var == "tg":
                fg_attention_tmagather(*t[:4], plan=t[4], pieces=t[5], out=o, timeline=buf)
            else:
                fg_attention_tgc(*t[:4], plan=t[4], pieces=t[5], out=o, timeline=buf, **TGC_KNOBS[var])

        o_list = torch.empty_like(q)
        T.fg_attention_timeline(q, k, v, idx, T.new_buffer(plan.programs), plan=plan, out=o_list)  # warm-up
        plain: dict[str, Any] = {}
        for var in forms:
            plain[var] = torch.empty_like(q)
            launch(var, plain[var], T.new_buffer(plan.programs))  # warm-up (compiles the instrumented form)
            launch(var, plain[var])
        torch.cuda.synchronize()
        ghz_list = float("nan")
        for var in ("list",) + tuple(forms):
            buf = T.new_buffer(plan.programs)
            o_var = torch.empty_like(q)
            try:
                if var == "list":
                    T.fg_attention_timeline(q, k, v, idx, buf, plan=plan, out=o_list)
                else:
                    launch(var, o_var, buf)
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001 (one form's failure leaves the others' rows)
                print(f"[timeline] {cell} {var}: FAILED {type(e).__name__}: {e}"[:300], flush=True)
                continue
            dec = T.decode(buf)
            ghz = T.clock_ghz(buf)
            if var == "list":
                ghz_list = ghz
            elif not ghz > 0:  # no header clock from this form: the list launch's clock of the same cell
                print(f"[timeline] {cell} {var}: no header clock, using list's {ghz_list:.3f} GHz", flush=True)
                ghz = ghz_list
            fit = T.row_fit(dec) or {}
            eq = "" if var == "list" else str(bool(torch.equal(o_var, plain[var])))
            for s in T.summarize(dec, ghz):
                rows.append(dict(cell=cell, variant=var, quantity=s["quantity"], n=s["n"], median=s["median"],
                                 p10=s["p10"], p90=s["p90"], median_us=round(s["median_us"], 4), ghz=round(ghz, 4),
                                 row_fit_c_row=fit.get("c_row_cycles", ""), row_fit_c_tile=fit.get("c_tile_cycles", ""),
                                 bit_equal=eq, **meta))
            print(f"[timeline] {cell} {var}: {len(dec)} rows decoded, {ghz:.3f} GHz, fit {fit}, bit-equal {eq}",
                  flush=True)
        del q, k, v
        torch.cuda.empty_cache()
        write_csv_atomic(path, rows, COLS)  # after every cell (a later cell's hang or time limit keeps these)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (GPU run)")
    ap.add_argument("--analyze", type=Path, default=None, metavar="CSV", help="no GPU: the comparison of a CSV")
    ap.add_argument("--forms", default=",".join(TG_FORMS), help=f"TMA-gather forms beside list, of {TG_FORMS}")
    ap.add_argument("--cells", default=",".join(str(i) for i in range(len(CELLS))),
                    help="positions in CELLS to record, comma-separated, in that order")
    a = ap.parse_args(argv)
    bad = [f for f in a.forms.split(",") if f not in TG_FORMS]
    if bad:
        ap.error(f"--forms: {bad} not in {TG_FORMS}")
    if not all(x.isdigit() and int(x) < len(CELLS) for x in a.cells.split(",")):
        ap.error(f"--cells: {a.cells!r} must be positions 0..{len(CELLS) - 1}, comma-separated")
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
    path = run(a.out, tuple(a.forms.split(",")), tuple(CELLS[int(i)] for i in a.cells.split(",")))
    for ln in compare(list(csv.DictReader(open(path, newline="")))):
        print(ln, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
