"""Compile fgattn variants offline for sm_90 (no GPU) and print registers, spills and shared memory.

    PYTHONPATH=/path/to/triton-3.6:kernels python kernels/tools/compile_report.py [NAME-SUBSTRING ...]
    FGATTN_DUMP=DIR ... also writes each variant's TTGIR, PTX and SASS into DIR

Uses the Triton on the path (the device machines run 3.6); pointer and stride arguments get the
16-divisibility the real launches get.  A variant that fails to compile here will fail there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = [
    # (name, mode, D, M, BN, GRAN, stages, warps, extra)
    ("fg g1 bn128 st3 ia1", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1}),
    ("fg g1 bn128 st3 ia1 tail_reuse", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TAIL_REUSE": True}),
    ("fg g16 bn128 st3 ia1 tail_reuse", 2, 128, 128, 128, 16, 3, 8, {"IDX_AHEAD": 1, "TAIL_REUSE": True}),
    ("fg g1 bn128 st3 ia1 tma_q", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TMA_Q": True}),
    ("fg g1 bn128 st3 ia1 tma_q tail_reuse", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TMA_Q": True, "TAIL_REUSE": True}),
    ("fg g1 bn128 st3 ia1 tma_qo", 2, 128, 128, 128, 1, 3, 8, {"IDX_AHEAD": 1, "TMA_QO": True}),
    ("fg g1 M64 bn64 st2 ia1 w4", 2, 128, 64, 64, 1, 2, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn64 st3 ia1 w4", 2, 128, 64, 64, 1, 3, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn64 st5 ia0 w4", 2, 128, 64, 64, 1, 5, 4, {"IDX_AHEAD": 0}),
    ("fg g1 M64 bn32 st4 ia1 w4", 2, 128, 64, 32, 1, 4, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn128 st2 ia1 w4", 2, 128, 64, 128, 1, 2, 4, {"IDX_AHEAD": 1}),
    ("fg g1 M64 bn128 st2 ia1 w8", 2, 128, 64, 128, 1, 2, 8, {"IDX_AHEAD": 1}),
    ("dense bn128 st3 tma", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True}),
    ("dense bn128 st3 tma ws", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "WARP_SPEC": True}),
    ("dense bn128 st3 tma tma_qo", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TMA_QO": True}),
    ("dense M64 bn64 st2 tma w4", 0, 128, 64, 64, 1, 2, 4, {"USE_TMA": True}),
    ("dense M64 bn128 st2 tma w4", 0, 128, 64, 128, 1, 2, 4, {"USE_TMA": True}),
    ("dense M64 bn128 st3 tma w4", 0, 128, 64, 128, 1, 3, 4, {"USE_TMA": True}),
    ("block bn128 st3 tma", 1, 128, 128, 128, 128, 3, 8, {"USE_TMA": True}),
    ("fg g1 bn64 st2 ia1 r128", 2, 128, 128, 64, 1, 2, 8, {"IDX_AHEAD": 1, "maxnreg": 128}),
    ("fg g1 bn64 st2 ia0 r128", 2, 128, 128, 64, 1, 2, 8, {"IDX_AHEAD": 0, "maxnreg": 128}),
    ("fg g1 bn32 st3 ia1 r128", 2, 128, 128, 32, 1, 3, 8, {"IDX_AHEAD": 1, "maxnreg": 128}),
    ("dense bn64 st2 tma r128", 0, 128, 128, 64, 1, 2, 8, {"USE_TMA": True, "maxnreg": 128}),
    ("fg M64 bn64 st2 ia1 r168 w4", 2, 128, 64, 64, 1, 2, 4, {"IDX_AHEAD": 1, "maxnreg": 168}),
    # persistent FG kernel (_attn_fwd_persistent), issue 12 session 3
    ("pfg g1 bn128 st2", 2, 128, 128, 128, 1, 2, 8, {"persistent": True}),
    ("pfg g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8, {"persistent": True}),
    ("pfg g1 bn128 st4", 2, 128, 128, 128, 1, 4, 8, {"persistent": True}),
    ("pfg g1 bn64 st3", 2, 128, 128, 64, 1, 3, 8, {"persistent": True}),
    ("pfg g1 bn64 st4", 2, 128, 128, 64, 1, 4, 8, {"persistent": True}),
    ("pfg g1 bn64 st2 r128", 2, 128, 128, 64, 1, 2, 8, {"persistent": True, "maxnreg": 128}),
    ("pfg g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8, {"persistent": True}),
    ("pfg g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8, {"persistent": True}),
    ("pfg g64 bn64 st2 r128", 2, 128, 128, 64, 64, 2, 8, {"persistent": True, "maxnreg": 128}),
    ("pfg M64 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4, {"persistent": True}),
    ("pfg M64 bn64 st4 w4", 2, 128, 64, 64, 1, 4, 4, {"persistent": True}),
    ("pfg M64 bn128 st2 w4", 2, 128, 64, 128, 1, 2, 4, {"persistent": True}),
    ("pfg M64 bn64 st2 w4 r168", 2, 128, 64, 64, 1, 2, 4, {"persistent": True, "maxnreg": 168}),
    ("pfg D64 bn64 st4", 2, 64, 128, 64, 1, 4, 8, {"persistent": True}),
    ("pfg D64 bn128 st3", 2, 64, 128, 128, 1, 3, 8, {"persistent": True}),
    ("pfg nested g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g1 bn64 st3", 2, 128, 128, 64, 1, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g1 bn128 st2", 2, 128, 128, 128, 1, 2, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8, {"persistent": True, "flatten": False}),
    ("pfg nested M64 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4, {"persistent": True, "flatten": False}),
    ("pfg nested M64 bn64 st5 w4", 2, 128, 64, 64, 1, 5, 4, {"persistent": True, "flatten": False}),
    ("pfg queue g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue idx_early g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "queue": True, "idx_early": True}),
    ("pfg queue g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue M64 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue M64 bn64 st5 w4", 2, 128, 64, 64, 1, 5, 4, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue D64 bn64 st4", 2, 64, 128, 64, 1, 4, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pfg queue D64 bn128 st3", 2, 64, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("pblock queue bn128 st3", 1, 128, 128, 128, 128, 3, 8, {"persistent": True, "flatten": False, "queue": True}),
    ("fg g16 bn128 st3 ia1 tma_q", 2, 128, 128, 128, 16, 3, 8, {"IDX_AHEAD": 1, "TMA_Q": True}),
    ("fg g64 bn64 st2 ia1 r128 tma_q", 2, 128, 128, 64, 64, 2, 8, {"IDX_AHEAD": 1, "TMA_Q": True, "maxnreg": 128}),
    ("fg g1 M64 bn64 st5 ia0 w4 tma_q", 2, 128, 64, 64, 1, 5, 4, {"IDX_AHEAD": 0, "TMA_Q": True}),
    ("pblock nested bn128 st3", 1, 128, 128, 128, 128, 3, 8, {"persistent": True, "flatten": False}),
    ("pdense nested bn128 st3", 0, 128, 128, 128, 1, 3, 8, {"persistent": True, "flatten": False}),
    ("pblock bn128 st3", 1, 128, 128, 128, 128, 3, 8, {"persistent": True}),
    ("pblock bn64 st3", 1, 128, 128, 64, 128, 3, 8, {"persistent": True}),
    ("pblock bn64 st2 r128", 1, 128, 128, 64, 128, 2, 8, {"persistent": True, "maxnreg": 128}),
    ("pdense bn128 st3", 0, 128, 128, 128, 1, 3, 8, {"persistent": True}),
    ("pdense bn64 st2 r128", 0, 128, 128, 64, 1, 2, 8, {"persistent": True, "maxnreg": 128}),
    # launch option tail_branch (dense: the masked tail under a scalar branch; without it ptxas serialises every
    # wgmma of the dense kernels, C7515)
    ("dense bn64 st2 tma r128 tail_branch", 0, 128, 128, 64, 1, 2, 8, {"USE_TMA": True, "maxnreg": 128,
                                                                      "TAIL_BRANCH": True}),
    ("dense M64 bn64 st3 tma tma_qo w4 tail_branch", 0, 128, 64, 64, 1, 3, 4, {"USE_TMA": True, "TMA_QO": True,
                                                                             "TAIL_BRANCH": True}),
    ("dense D64 bn64 st4 tma tma_qo tail_branch", 0, 64, 128, 64, 1, 4, 8, {"USE_TMA": True, "TMA_QO": True,
                                                                          "TAIL_BRANCH": True}),
    ("dense D64 bn64 st4 tma tma_qo", 0, 64, 128, 64, 1, 4, 8, {"USE_TMA": True, "TMA_QO": True}),
    ("dense M64 bn64 st3 tma tma_qo w4", 0, 128, 64, 64, 1, 3, 4, {"USE_TMA": True, "TMA_QO": True}),
    ("dense bn128 st3 tma tail_branch", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TAIL_BRANCH": True}),
    ("dense bn128 st2 tma tail_branch", 0, 128, 128, 128, 1, 2, 8, {"USE_TMA": True, "TAIL_BRANCH": True}),
    # session 6 (helper K2): further tail_branch forms considered for the v7 sweep
    ("dense bn128 st3 tma tma_qo tail_branch", 0, 128, 128, 128, 1, 3, 8, {"USE_TMA": True, "TMA_QO": True,
                                                                          "TAIL_BRANCH": True}),
    ("dense M64 bn128 st2 tma w4 tail_branch", 0, 128, 64, 128, 1, 2, 4, {"USE_TMA": True, "TAIL_BRANCH": True}),
    ("dense M64 bn64 st4 tma tma_qo w4 tail_branch", 0, 128, 64, 64, 1, 4, 4, {"USE_TMA": True, "TMA_QO": True,
                                                                             "TAIL_BRANCH": True}),
    ("dense D64 bn128 st3 tma tail_branch", 0, 64, 128, 128, 1, 3, 8, {"USE_TMA": True, "TAIL_BRANCH": True}),
    ("dense D64 bn128 st2 tma tma_qo tail_branch", 0, 64, 128, 128, 1, 2, 8, {"USE_TMA": True, "TMA_QO": True,
                                                                            "TAIL_BRANCH": True}),
    ("fg g64 bn64 st2 ia1 r128 tail_reuse", 2, 128, 128, 64, 64, 2, 8, {"IDX_AHEAD": 1, "TAIL_REUSE": True,
                                                                       "maxnreg": 128}),
    ("block bn64 st2 tma r128", 1, 128, 128, 64, 128, 2, 8, {"USE_TMA": True, "maxnreg": 128}),
    # launch option one_row (grid = rows) compiles the nested form: the fg M128 g1 entry since session 5
    ("pfg nested idx_early g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early tma_q g1 bn128 st3", 2, 128, 128, 128, 1, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True, "TMA_Q": True}),
    ("pfg nested idx_early g16 bn128 st3", 2, 128, 128, 128, 16, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early g64 bn128 st3", 2, 128, 128, 128, 64, 3, 8,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early M64 g1 bn64 st3 w4", 2, 128, 64, 64, 1, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early M64 g16 bn64 st3 w4", 2, 128, 64, 64, 16, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True}),
    ("pfg nested idx_early M64 g64 bn64 st3 w4", 2, 128, 64, 64, 64, 3, 4,
     {"persistent": True, "flatten": False, "idx_early": True}),
]


def compile_sm90(fn: Any, const: dict[str, Any], ptr: dict[str, str], num_warps: int, num_stages: int,
                 maxnreg: int | None = None, qdesc: str | None = None) -> Any:
    """Compile the Triton kernel ``fn`` for sm_90 without a GPU: ``const`` its constexprs, ``ptr`` the pointer
    arguments' types (16-byte aligned, as the real launches' tensors), strides 16-divisible, ``qk_scale`` fp32,
    other arguments i32; ``QDesc`` the TMA descriptor type ``qdesc`` or, without one, an unused pointer."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(fn.arg_names)
    # constexpr switches the caller does not name take their defaults (compiled as constants, not i32 arguments)
    const = {**{p.name: p.default for p in fn.params if p.is_constexpr and p.has_default}, **const}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list[list[Any]]] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a == "QDesc":
            sig[a] = qdesc or "*bf16"
        elif a in ptr:
            sig[a] = ptr[a]
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    opts: dict[str, Any] = {"num_warps": num_warps, "num_stages": num_stages}
    if maxnreg:
        opts["maxnreg"] = int(maxnreg)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)


def compile_one(v: tuple) -> dict:
    import triton
    from fgattn.attention import _attn_fwd, _attn_fwd_persistent

    name, mode, d, m, bn, gran, st, w, extra = v
    extra = dict(extra)
    persistent = bool(extra.pop("persistent", False))
    fn = _attn_fwd_persistent if persistent else _attn_fwd
    names = list(fn.arg_names)
    ptr = {"Q": "*bf16", "K": "*bf16", "V": "*bf16", "Out": "*bf16", "Lse": "*fp32", "Offsets": "*i64",
           "Indices": "*i32", "Order": "*i32", "Counter": "*i32"}
    if persistent:
        const = dict(HEAD_DIM=d, BLOCK_M=m, BLOCK_N=bn, GRAN_N=gran if mode == 2 else (m if mode == 1 else 1),
                     MODE=mode, ORDERED=mode != 0, NUM_STAGES=st, RETURN_LSE=False,
                     FLAT=bool(extra.pop("flatten", True)), QUEUE=bool(extra.pop("queue", False)),
                     IDX_EARLY=bool(extra.pop("idx_early", False)))
    else:
        const = dict(HEAD_DIM=d, BLOCK_M=m, BLOCK_N=bn, GRAN_N=gran if mode == 2 else (m if mode == 1 else 1),
                     MODE=mode, IDX_AHEAD=0, ORDERED=mode != 0, NUM_STAGES=st, USE_TMA=False, WARP_SPEC=False,
                     OVERLAP=False, RETURN_LSE=False, TMA_QO=False, TMA_Q=False,
                     TAIL_REUSE=False)
    const.update({a: 0 for a in names if a.startswith("_DIAG_")})  # diagnosis-only switches: off unless given
    const.update({k: val for k, val in extra.items() if k != "maxnreg"})
    t0 = time.time()
    try:
        maxnreg = extra.pop("maxnreg", None)
        const.pop("maxnreg", None)
        qdesc = f"tensordesc<bf16[1, 1, {m}, {d}]>" if const.get("TMA_Q") else None
        k = compile_sm90(fn, const, ptr, w, st, maxnreg=maxnreg, qdesc=qdesc)
        md = k.metadata
        ttgir = k.asm.get("ttgir", "")
        sass_hint = k.asm.get("ptx", "")
        tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(k.asm["cubin"])
            f.flush()
            res = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True).stdout
        dump = os.environ.get("FGATTN_DUMP")  # a folder: write the variant's TTGIR, PTX and SASS there
        if dump:
            stem = Path(dump) / re.sub(r"[^\w.-]+", "_", name)
            stem.parent.mkdir(parents=True, exist_ok=True)
            stem.with_suffix(".ttgir").write_text(ttgir)
            stem.with_suffix(".ptx").write_text(sass_hint)
            with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
                f.write(k.asm["cubin"])
                f.flush()
                stem.with_suffix(".sass").write_text(
                    subprocess.run([str(tool), "-sass", f.name], capture_output=True, text=True).stdout)
        # serialised wgmma (ptxas C7515: each HGMMA waits for the previous one): in the compiled SASS every HGMMA
        # then carries the gsb0 scoreboard, where a pipelined chain sets it on the last of a group only
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(k.asm["cubin"])
            f.flush()
            sass = subprocess.run([str(tool), "-sass", f.name], capture_output=True, text=True).stdout
        hgmma = [ln for ln in sass.splitlines() if "HGMMA" in ln]
        gsb0 = sum("gsb0" in ln for ln in hgmma)
        regs = re.search(r"REG:(\d+)", res)
        stack = re.search(r"STACK:(\d+)", res)
        return dict(name=name, ok=True, regs=int(regs.group(1)) if regs else None,
                    stack=int(stack.group(1)) if stack else None,
                    smem_kb=round(md.shared / 1024, 1), ws="warp_specialize" in ttgir,
                    wgmma="wgmma" in sass_hint, cp_async="cp.async" in sass_hint,
                    tma="cp.async.bulk.tensor" in sass_hint,
                    async_copies=ttgir.count("ttg.async_copy_global_to_local"),
                    async_waits=ttgir.count("ttg.async_wait"), hgmma=len(hgmma), hgmma_gsb0=gsb0,
                    wgmma_serialized=len(hgmma) > 4 and gsb0 == len(hgmma),
                    s=round(time.time() - t0, 1))
    except Exception as e:  # noqa: BLE001
        return dict(name=name, ok=False, err=repr(e)[-400:], s=round(time.time() - t0, 1))


def main() -> None:
    only = sys.argv[1:]
    vs = [v for v in VARIANTS if not only or any(o in v[0] for o in only)]
    with ProcessPoolExecutor(max_workers=2) as ex:
        for r in ex.map(compile_one, vs):
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
