"""Local-memory (spill) traffic of a compiled kernel's tile loop, read off its SASS.

The cost of spilled registers depends on which values spill: a loop-invariant pointer spilled once costs
nothing per tile, a spilled accumulator fragment is stored and reloaded every tile. The SASS says which: the
model reads, for the kernel's innermost loop that issues the tensor-core instructions (HGMMA / HMMA), the number
of local-memory instructions (``LDL`` / ``STL``) and their bytes per thread, and the tensor-core instructions of
that loop (to convert a loop iteration into tiles), all the instructions one warp issues per iteration (the
issue slots a tile takes from the SM's warp schedulers), the wgmma instructions each waited for (``gsb0``:
a serialised chain) and (revision 7) the softmax's instructions by pipe: ``loop_mufu`` (MUFU: exp2 and the other
quarter-rate transcendentals) and ``loop_fp32`` (FFMA / FADD / FMUL / FMNMX: the FP32 pipe), which the model prices
at the SM's measured MUFU and FP32 rates (``fgsim calibrate``'s ``exp2`` and ``fp32`` microbenchmarks). ``cuobjdump -sass`` (shipped with Triton under
``triton/backends/nvidia/bin``) disassembles the cubin.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_INS = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);")
_TARGET = re.compile(r"0x([0-9a-f]+)")
#: fields of a resources-table entry this module fills (per thread, one iteration of the tile loop)
FIELDS = ("loop_ldst", "loop_ldst_bytes", "loop_mma", "loop_instr", "loop_mma_wait", "loop_mufu", "loop_fp32")
#: SASS opcodes of the FP32 pipe counted as ``loop_fp32`` (fused multiply-add, add, multiply, min / max)
FP32_OPS = ("FFMA", "FADD", "FMUL", "FMNMX")


def _width(op: str) -> int:
    for suffix, nbytes in ((".128", 16), (".64", 8), (".U8", 1), (".S8", 1), (".U16", 2), (".S16", 2)):
        if suffix in op:
            return nbytes
    return 4


def parse(sass: str) -> list[tuple[int, str, str]]:
    """(address, opcode, operands) of every instruction of a ``cuobjdump -sass`` listing."""
    out = []
    for line in sass.splitlines():
        m = _INS.search(line)
        if m:
            out.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return out


def _is_mma(op: str) -> bool:
    return op.startswith("HGMMA") or op.startswith("HMMA")


def loop_traffic(sass: str) -> dict[str, int]:
    """{loop_ldst, loop_ldst_bytes, loop_mma, loop_instr, ...} of the tile loop (``loop_instr``: instructions one
    warp issues per iteration, NOPs left out): among the loops (backward branches) that issue tensor-core
    instructions, contain no ``EXIT`` and contain no other such loop, the one with the most of them. Zeros if none.

    The ``EXIT`` rule (revision 9): ptxas may place a block behind the function's exit that branches back into the
    loop (the dense ``tail_branch`` kernels' layout back edge, which spans the main loop, the masked tail tile and
    the epilogue; the mbarrier try-wait retry blocks of Gluon kernels); such a span is not a loop iteration. Before
    revision 9 the reader picked it (1.7-2.5x the tile loop's instructions; MODEL_NOTES, revision 8)."""
    ins = parse(sass)
    loops = []
    for lo, hi, body in _backward_spans(ins):
        if any(x[1] == "EXIT" for x in body):
            continue
        n_mma = sum(1 for x in body if _is_mma(x[1]))
        if n_mma:
            loops.append((lo, hi, body, n_mma))
    inner = [lp for lp in loops if not any(o is not lp and lp[0] <= o[0] and o[1] <= lp[1] for o in loops)]
    if not inner:
        return {k: 0 for k in FIELDS}
    lo, hi, body, _ = max(inner, key=lambda lp: (lp[3], lp[1] - lp[0]))
    return _iteration_figures(body, hi)


def _iteration_figures(body: list[tuple[int, str, str]], hi: int) -> dict[str, int]:
    """:data:`FIELDS` of one loop (its instructions ``body``, back edge at ``hi``) on the path every iteration runs."""
    # only the path every iteration runs: code a conditional forward branch inside the loop jumps over (e.g. the
    # row switch of a flattened persistent loop) runs on some iterations only
    skip: list[tuple[int, int]] = []
    for line_addr, op, args in body:
        t = _TARGET.search(args) if op.startswith("BRA") else None
        if t and line_addr < int(t.group(1), 16) <= hi:
            skip.append((line_addr, int(t.group(1), 16)))
    body = [x for x in body if not any(a < x[0] < b for a, b in skip)]
    n_mma = sum(1 for x in body if _is_mma(x[1]))
    local = [x for x in body if x[1].startswith("LDL") or x[1].startswith("STL")]
    # wgmma instructions that carry the gsb0 scoreboard (each waited for before the next: ptxas serialised the
    # chain, note C7515) versus a pipelined chain, which sets it on the last of a group only
    n_wait = sum(1 for x in body if x[1].startswith("HGMMA") and "gsb0" in x[2])
    n_mufu = sum(1 for x in body if x[1].startswith("MUFU"))
    n_fp32 = sum(1 for x in body if x[1].split(".")[0] in FP32_OPS)
    return {"loop_ldst": len(local), "loop_ldst_bytes": sum(_width(x[1]) for x in local), "loop_mma": n_mma,
            "loop_instr": sum(1 for x in body if x[1] != "NOP"), "loop_mma_wait": n_wait, "loop_mufu": n_mufu,
            "loop_fp32": n_fp32}


def _backward_spans(ins: list[tuple[int, str, str]]) -> list[tuple[int, int, list[tuple[int, str, str]]]]:
    """(target, branch address, instructions between) of every backward branch."""
    out = []
    for addr, op, args in ins:
        t = _TARGET.search(args) if op.startswith("BRA") else None
        if t and int(t.group(1), 16) < addr:
            lo = int(t.group(1), 16)
            out.append((lo, addr, [x for x in ins if lo <= x[0] <= addr]))
    return out


def gluon_loop_traffic(sass: str) -> dict[str, int]:
    """:data:`FIELDS` of a Gluon warp-specialized kernel's consumer tile loop, plus ``producer_loop_instr``.

    Gluon kernels (fgattn.gluon_fg) place their mbarrier try-wait retry branches behind the function's ``EXIT``;
    a branch from there back into the loop spans the whole consumer code (:func:`loop_traffic`'s rule, the inner
    loop with the most tensor-core instructions, picks it). Here the consumer loop is the shortest backward-branch
    span that holds a tensor-core instruction and no ``EXIT`` (``kernels/tools/compile_report.loop_figures``'s
    rule, with the exit rule); the producer loop the shortest one with ``LDGSTS`` (cp.async; for a TMA producer,
    fgattn.gluon_contig, with ``UTMALDG``) and no tensor-core instruction or ``EXIT`` (``producer_loop_instr``: instructions one producer warp issues per tile, NOPs left
    out; 0 if none). Zeros if there is no consumer loop. Only for Gluon kernels (its ``producer_loop_instr``);
    :func:`loop_traffic` with its ``EXIT`` rule picks the same consumer loop on the ws2 compile (16 HGMMA, 66 MUFU,
    268 FP32; its tie-break between the two consumer partitions' loops takes the longer, 480 vs 479 instructions)."""
    ins = parse(sass)
    spans = [sp for sp in _backward_spans(ins) if not any(x[1] == "EXIT" for x in sp[2])]
    cons = [sp for sp in spans if any(_is_mma(x[1]) for x in sp[2])]
    prod = [sp for sp in spans if not any(_is_mma(x[1]) for x in sp[2])
            and any(x[1].startswith("LDGSTS") for x in sp[2])]
    if not prod:  # a TMA producer (fgattn.gluon_contig): the shortest loop issuing UTMALDG without tensor-core work
        prod = [sp for sp in spans if not any(_is_mma(x[1]) for x in sp[2])
                and any(x[1].startswith("UTMALDG") for x in sp[2])]
    if not cons:
        out = {k: 0 for k in FIELDS}
    else:
        lo, hi, body = min(cons, key=lambda sp: (sp[1] - sp[0], sp[0]))
        out = _iteration_figures(body, hi)
    if prod:
        lo, hi, body = min(prod, key=lambda sp: (sp[1] - sp[0], sp[0]))
        out["producer_loop_instr"] = _iteration_figures(body, hi)["loop_instr"]
    else:
        out["producer_loop_instr"] = 0
    return out


def cuobjdump() -> str | None:
    """Path of the ``cuobjdump`` Triton ships (or one on PATH); None if there is none."""
    try:
        import triton

        p = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        if p.is_file():
            return str(p)
    except ImportError:
        pass
    return shutil.which("cuobjdump")


def cubin_traffic(cubin: bytes, tool: str | None = None, gluon: bool = False) -> dict[str, int]:
    """:func:`loop_traffic` (``gluon``: :func:`gluon_loop_traffic`) of a cubin (empty dict if no disassembler is
    available or it fails)."""
    tool = tool or cuobjdump()
    if not tool or not cubin:
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        try:
            out = subprocess.run([tool, "-sass", f.name], capture_output=True, text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
    return gluon_loop_traffic(out) if gluon else loop_traffic(out)


def kernel_traffic(kern: Any, gluon: bool = False) -> dict[str, int]:
    """:func:`cubin_traffic` of a Triton ``CompiledKernel`` (its ``asm['cubin']``); ``gluon``: a Gluon kernel."""
    asm = getattr(kern, "asm", None) or {}
    cubin = asm.get("cubin") if isinstance(asm, dict) else None
    return cubin_traffic(cubin, gluon=gluon) if isinstance(cubin, bytes | bytearray) else {}
