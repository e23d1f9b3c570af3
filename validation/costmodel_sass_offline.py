"""Compile the launch configurations of results CSVs offline for sm_90 and record their tile loop's local-memory
traffic (fgsim.validation.sass), for rows measured before the harness recorded it.

    PYTHONPATH=/path/to/triton-3.6:. python validation/costmodel_sass_offline.py --kernels DIR --out FILE.json CSV...

Use the Triton the measurements ran with (3.6 on the H200 machine): the table records its version, the offline
registers / spill count next to the measured ones (a check that the offline compile is the measured kernel), and
per model config key {loop_ldst, loop_ldst_bytes, loop_mma}. ``fgsim.validation.report.predict_rows`` fills rows
that lack these fields from the committed table (``validation/results/h200-sass-offline.json``). An ``impl: gluon``
row (revision 9) is compiled as its Gluon form (``compile_report.gluon_compile_sm90``) and read by the Gluon SASS
reader (``cubin_traffic(..., gluon=True)``: the consumer loop and ``producer_loop_instr``; its entry says
``"gluon": true``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _compile(job: tuple[str, dict[str, Any], str]) -> tuple[str, dict[str, Any]]:
    key, r, kdir = job
    sys.path[:0] = [str(ROOT), kdir, str(ROOT / "kernels" / "tools")]
    from fgattn.attention import _attn_fwd, _attn_fwd_persistent  # type: ignore[import-not-found]

    # after fgattn: compile_report puts this checkout's kernels/ on the path, and kdir's fgattn must win
    compile_sm90 = __import__("compile_report").compile_sm90  # kernels/tools: the shared sm_90 compile

    from fgsim.validation.sass import cubin_traffic, cuobjdump

    extra = json.loads(r.get("launch_extra") or "{}")
    if extra.get("impl") == "gluon":  # fgattn.gluon_fg's form: compile_report's Gluon compile, the Gluon SASS reader
        return key, _compile_gluon(extra, r)
    kernel, d, m = r["kernel"], int(r["head_dim"]), int(r["block_m"])
    bn, st, w = int(r["block_n"]), int(r["num_stages"]), int(r["num_warps"])
    mode = {"dense": 0, "block": 1, "fg": 2}[kernel]
    one_row = bool(extra.get("one_row", False))
    persistent = bool(extra.get("persistent", False)) or one_row  # one_row: the nested persistent kernel's row code
    fn = _attn_fwd_persistent if persistent else _attn_fwd
    names = list(fn.arg_names)
    el = "*fp16" if r.get("dtype") == "fp16" else "*bf16"
    ptr = {"Q": el, "K": el, "V": el, "Out": el, "Lse": "*fp32", "Offsets": "*i64", "Indices": "*i32",
           "Order": "*i32", "Counter": "*i32"}
    ordered = mode != 0 and bool(extra.get("lpt", True))
    gran = int(r["gran_n"]) if mode == 2 else (m if mode == 1 else 1)
    tma_q = bool(extra.get("tma_q")) and not extra.get("tma_qo")
    # the constexprs fgattn.attention._launch gives each launch option (kernels/tools/compile_report.table_variants)
    if persistent:
        flat = bool(extra.get("flatten", True)) and not one_row
        const: dict[str, Any] = dict(HEAD_DIM=d, BLOCK_M=m, BLOCK_N=bn, GRAN_N=gran, MODE=mode, ORDERED=ordered,
                                     NUM_STAGES=st, RETURN_LSE=False, FLAT=flat,
                                     QUEUE=bool(extra.get("queue", False)),
                                     IDX_EARLY=bool(extra.get("idx_early", False)) and not flat, TMA_Q=tma_q,
                                     GUARD=bool(extra.get("guard_next", False)) and not flat,
                                     TMA_O=bool(extra.get("tma_o", False)) and not flat,
                                     FOLD=bool(extra.get("tail_fold", False)) and not flat and mode == 2 and gran == 1)
    else:
        tma = mode != 2 and bool(extra.get("tma", False))
        const = dict(HEAD_DIM=d, BLOCK_M=m, BLOCK_N=bn, GRAN_N=gran, MODE=mode, IDX_AHEAD=int(extra.get("idx_ahead", 0)),
                     ORDERED=ordered, NUM_STAGES=st, USE_TMA=tma, WARP_SPEC=tma and bool(extra.get("warp_specialize")),
                     OVERLAP=bool(extra.get("overlap", False)), RETURN_LSE=False, TMA_QO=bool(extra.get("tma_qo")),
                     TMA_Q=tma_q, TAIL_BRANCH=bool(extra.get("tail_branch", False)) and mode == 0,
                     TAIL_REUSE=bool(extra.get("tail_reuse")) and mode == 2 and int(extra.get("idx_ahead", 0)) == 1)
    poly = {0: 0, 0.125: 8, 0.25: 4, 0.5: 2, 1: 1}.get(extra.get("exp_poly", 0), 0)
    if poly:
        const["EXP_POLY"] = poly
    qdesc = f"tensordesc<{el[1:]}[1, 1, {m}, {d}]>" if const.get("TMA_Q") else None
    odesc = f"tensordesc<{el[1:]}[1, 1, {m}, {d}]>" if const.get("TMA_O") else None
    const.update({a: 0 for a in names if a.startswith("_DIAG_")})
    const = {k: v for k, v in const.items() if k in names}  # kernels of older commits lack the newer switches
    try:
        k = compile_sm90(fn, const, ptr, w, st, maxnreg=extra.get("maxnreg"), qdesc=qdesc, odesc=odesc)
        tool = cuobjdump()
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(k.asm["cubin"])
            f.flush()
            use = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True).stdout
        regs = re.search(r"REG:(\d+)", use)
        stack = re.search(r"STACK:(\d+)", use)
        out = {"offline_regs": int(regs.group(1)) if regs else 0,
               "offline_spills": int(stack.group(1)) // 4 if stack else 0, **cubin_traffic(k.asm["cubin"], tool)}
    except Exception as exc:  # noqa: BLE001 - a configuration that does not compile is recorded as such
        out = {"error": repr(exc)[-200:]}
    out["measured_regs"] = int(float(r.get("n_regs") or 0))
    out["measured_spills"] = int(float(r.get("n_spills") or 0))
    return key, out


def _compile_gluon(extra: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    """Offline figures of an ``impl: gluon`` row's Gluon form (``extra["gluon"]`` knobs; the kernels on the path):
    registers / stack from ``cuobjdump -res-usage`` and ``fgsim.validation.sass.cubin_traffic(..., gluon=True)``
    (the consumer loop's figures and ``producer_loop_instr``)."""
    from fgsim.validation.sass import cubin_traffic, cuobjdump

    try:
        k = __import__("compile_report").gluon_compile_sm90(dict(extra["gluon"]), r.get("dtype") or "bf16")
        tool = cuobjdump()
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(k.asm["cubin"])
            f.flush()
            use = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True).stdout
        regs = re.search(r"REG:(\d+)", use)
        stack = re.search(r"STACK:(\d+)", use)
        out = {"offline_regs": int(regs.group(1)) if regs else 0,
               "offline_spills": int(stack.group(1)) // 4 if stack else 0, "gluon": True,
               **cubin_traffic(k.asm["cubin"], tool, gluon=True)}
    except Exception as exc:  # noqa: BLE001 - a configuration that does not compile is recorded as such
        out = {"error": repr(exc)[-200:]}
    out["measured_regs"] = int(float(r.get("n_regs") or 0))
    out["measured_spills"] = int(float(r.get("n_spills") or 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kernels", default=str(ROOT / "kernels"),
                    help="directory holding the fgattn package as measured (e.g. `git archive <commit> kernels`)")
    a = ap.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "kernels")]
    import triton

    from fgsim.model.occupancy import config_key
    from fgsim.validation.report import read_results, row_config

    jobs: dict[str, dict[str, Any]] = {}
    for r in read_results(a.csv):
        if (r.get("kind") or "kernel") != "kernel" or not r.get("block_n") or (r.get("status") or "ok") != "ok":
            continue
        key = config_key(row_config(r))
        if key not in jobs or (r.get("n_regs") and not jobs[key].get("n_regs")):
            jobs[key] = r
    table: dict[str, Any] = {}
    with ProcessPoolExecutor(a.workers) as ex:
        for key, res in ex.map(_compile, [(k, r, a.kernels) for k, r in jobs.items()]):
            table[key] = res
            print(key, res, flush=True)
    doc = {"triton": triton.__version__, "kernels": a.kernels, "target": "cuda sm_90", "inputs": sorted({Path(c).name for c in a.csv}),
           "note": "offline compile of each launch configuration; loop_* = local-memory instructions / bytes per "
                   "thread and tensor-core instructions of the tile loop (fgsim.validation.sass)",
           "configs": dict(sorted(table.items()))}
    from fgsim.fileio import write_text_atomic

    write_text_atomic(a.out, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
