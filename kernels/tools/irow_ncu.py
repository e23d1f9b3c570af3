"""Nsight Compute of the packaged fg entry and the independent-row kernel (``fgattn.gluon_fg_irow``) at d 0.02 and
0.5: tensor-pipe and issue activity, and per warp role (producer / consumer) where the stall samples go.

Issue 12, session 15, helper X2 (kernels/NOTES.md, "Session 15 research: independent-row warpgroups (helper X2)").
``ncu_rowcost``'s machinery (one launch per case under ``--set full``, SASS source counters, clocks as found,
caches flushed per replay pass) with this file's cases::

    PYTHONPATH=.:kernels:validation python3 kernels/tools/irow_ncu.py --out $OUT          # GPU
    python3 kernels/tools/irow_ncu.py --analyze DIR [--write PREFIX --meta k=v|...]        # CPU

Cases (H12 N32760 D128 bf16, the benchmark's window masks, index in launch order, as ``ncu_rowcost``): ``entry``
= ``fgattn.fg_attention`` (the launch table's fg entry at 772420a: Gluon ws2, list schedule, tma_sel) and ``irow``
= :func:`fgattn.gluon_fg_irow.fg_attention_gluon_irow` (2 x SM-count programs), each at d 0.02 and 0.5.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "kernels"), str(ROOT / "validation"), str(ROOT / "kernels" / "tools")]

import ncu_rowcost as nr  # noqa: E402

CASES = (("entry", 0.02), ("entry", 0.5), ("irow", 0.02), ("irow", 0.5))


def build(with_time: bool) -> list[dict]:
    """The cases (inputs, index, launcher) in CASES order; with ``with_time`` each is timed (CUDA events, 20
    launches, median; before the profiler range)."""
    import fgattn
    import torch
    from fgattn.attention import fg_route, resolve_config
    from fgattn.gluon_fg_irow import fg_attention_gluon_irow, irow_plan, irow_programs
    from fgattn.masks import window_mask

    H, N, D, M = nr.H, nr.N, nr.D, nr.M
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = torch.empty_like(q)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    cases = []
    for name, d in CASES:
        torch.manual_seed(int(d * 1000) + 7)
        idx = fgattn.build_index(window_mask(1, H, N, M, d), block_m=M, order=True)
        cnt = idx.counts()
        tiles = float(((cnt + 127) // 128).clamp(min=1).sum())
        rows = int(cnt.numel())
        if name == "entry":
            fn = lambda idx=idx: fgattn.fg_attention(q, k, v, idx, block_m=M, out=out)  # noqa: E731
            cfg = resolve_config("fg", q, M)
            route = " ".join(fg_route(q, cfg, k=k, v=v, index=idx)) + f" | {cfg.extra}"
            lanes = sms
        else:
            plan = irow_plan(idx, irow_programs(sms))
            fn = lambda idx=idx, plan=plan: fg_attention_gluon_irow(q, k, v, idx, out=out, plan=plan)  # noqa: E731
            route = f"gluon_fg_irow ({plan.programs} programs, 2 CTAs per SM)"
            lanes = plan.programs
        c = dict(variant=name, d=d, density=round(float(cnt.sum()) / (rows * N), 4), rows=rows,
                 rows_per_sm=round(rows / sms, 3), rows_per_lane=round(rows / lanes, 3),
                 tiles_per_row=round(tiles / rows, 3), sms=sms, route=route, fn=fn)
        nr.warm_and_time(c, with_time)
        print(f"[build] {name} d={d}: {({x: y for x, y in c.items() if x != 'fn'})}", flush=True)
        cases.append(c)
    return cases


def irow_roles(ins: list[dict]) -> list[tuple[str, int, int]]:
    """(role, first offset, end offset) of the irow CTA in SASS: the producer from its register release
    (USETMAXREG.DEALLOC 0x18) to the consumer's USETMAXREG.TRY_ALLOC 0xe8, the consumer from there to the last
    executed EXIT."""
    p0 = next(x["off"] for x in ins if x["src"].startswith("USETMAXREG.DEALLOC.CTAPOOL 0x18"))
    c0 = next(x["off"] for x in ins if x["src"].startswith("USETMAXREG.TRY_ALLOC.CTAPOOL UP0, 0xe8"))
    ex = max(x["off"] for x in ins if x["src"].endswith("EXIT") and x["ex"] > 0) + 0x10
    return [("producer", p0, c0), ("consumer", c0, ex), ("stubs", ex, 1 << 40)]


def analyze(src: Path) -> tuple[list[dict], list[dict], str]:
    """Case table (times.json + raw page) and per-role sections (``ncu_rowcost.sections``; for irow with
    :func:`irow_roles` and µs per row per *lane*: two lanes per SM)."""
    import csv

    cases = json.loads((src / "times.json").read_text())
    rows = list(csv.reader((src / "ncu-raw.csv").open()))
    hdr, data = rows[0], rows[2:]
    table, split_rows, text = [], [], []
    for i, c in enumerate(cases):
        r = dict(zip(hdr, data[i], strict=True))
        row = {k: c.get(k) for k in ("variant", "d", "density", "rows", "rows_per_sm", "rows_per_lane", "tiles_per_row",
                                     "us", "us_min", "us_max", "us_per_row_per_sm")}
        row["kernel"] = r.get("Kernel Name", "?")
        for name, m, sc in nr.RAW:
            if m is None:
                row[name] = round(float(r["sm__cycles_active.min"]) / float(r["sm__cycles_active.max"]), 4)
            else:
                row[name] = round(float(r[m].replace(",", "")) * sc, 4)
        row["tensor_active_pct"] = round(float(r["sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active"]), 2)
        table.append(row)
        ins = nr.load_source(src / f"ncu-source-{i}.csv")
        saved = nr.roles
        try:
            if c["variant"] == "irow":
                nr.roles = irow_roles
                sp = nr.sections(ins, dict(c, rows_per_sm=c["rows_per_lane"]), row["ncu_us"])
            else:
                sp = nr.sections(ins, c, row["ncu_us"])
        except (StopIteration, ValueError) as e:
            sp = []
            text.append(f"  (sections failed: {type(e).__name__}: {e})")
        finally:
            nr.roles = saved
        split_rows += [dict(variant=c["variant"], d=c["d"], **x) for x in sp]
        text.append(f"== {c['variant']} d={c['d']} ({row['kernel']}): ncu {row['ncu_us']} us at {row['sm_ghz']} GHz, "
                    f"{c['rows_per_sm']} rows/SM, {c['tiles_per_row']} tiles/row; issue {row['issue_active_pct']} %, "
                    f"tensor pipe {row['tensor_active_pct']} % of active cycles, warps active "
                    f"{row['warps_active_pct']} %, L2 hit {row['l2_hit_pct']} %, regs {row['regs']}, block "
                    f"{row['block_threads']}")
        for x in sp:
            text.append(f"  {x['role']:<17} {x['section']:<58} {x['instructions']:5d} instr {x['samples']:7d} "
                        f"{100 * x['share_of_role']:5.1f}% {x['us_per_row_per_sm']:8.3f} us/row/lane  [{x['top_stalls']}]")
    return table, split_rows, "\n".join(text) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``ncu_rowcost.main`` (GPU run, driver, ``--analyze`` / ``--write`` / ``--meta``) with this file's cases,
    launcher and analysis (its module globals patched)."""
    nr.CASES = CASES
    nr.build = build
    nr.analyze = analyze
    nr.__file__ = str(Path(__file__).resolve())  # ncu re-runs this file as the driver
    return nr.main(argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
