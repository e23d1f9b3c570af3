"""The FP32 work per score of a key tile's online softmax: the quantity the model's ``fp32_per_score`` stands for.

A microbenchmark kernel runs exactly the fgattn tile's online softmax (``fgattn.attention._softmax_pv`` without its
``tl.dot``: row max of the scaled scores, the scaled subtraction feeding ``exp2`` on the MUFU, the rescale factor
``alpha``, the row sum, the O rescale ``acc * alpha``, the bf16 pack of P) on a register-resident
``BLOCK_M x BLOCK_N`` score tile, ``T`` times. The MMAs are left out: the score and accumulator tiles come from one
``tl.dot`` before the loop, so they carry the wgmma register layout (and the row reductions the real tile's
4-thread row groups), and each iteration feeds the packed P back into the next scores (``qk = qk0 + p``: one FADD
per score, the loop-carried dependence an S = QK^T of the next tile would give). Two figures, units FP32-pipe
instructions per score (``fp32_per_score``'s unit, range 1..24 in :mod:`fgsim.model.params`):

* ``sass`` (CPU: compiled offline for sm_90): the FP32-pipe instructions of the compiled loop
  (:data:`fgsim.validation.sass.FP32_OPS`: FFMA / FADD / FMUL / FMNMX) per score, less the O rescale (``D`` FMUL per
  query row, which the model adds separately as ``M D``) and the feedback FADD (1 per score). A count: the pipe's
  throughput floor, the quantity the model's revision-8 term ``SOFTMAX_FP32_PIPE`` (3.16, the packaged fg tile
  loop's SASS) already reads.
* ``timed`` (GPU): the loop's time per score on every SM at once, in FP32-instruction equivalents at the FP32 rate
  the same run measures (``fgsim.calibrate_micro``'s FFMA chains), less the same two terms. It includes what the
  count does not: the row reductions' dependent latencies, the shuffles, the conversions, issue slots; this is
  what the model's *effective* ``fp32_per_score`` (``t_fp_eff``, fitted so far) prices, so the timed figure is
  the parameter's measured value. Its floor from the MUFU is reported with it (``mufu_floor``: the loop's MUFU
  instructions per score at the measured exp2 rate, same units): where the timed figure sits at that floor the
  loop was MUFU-bound and the timed figure is only an upper bound of the FP32 work.

Two loops (:data:`LOOPS`, ``fgsim calibrate --fp32-per-score OUT --softmax-loop``): ``feedback`` (the loop above,
session 15; the default) and ``independent`` (session 16, helper M9): the scores of step ``t`` are ``qk0 + t 1e-6``
(one FFMA per score, counted and subtracted like the feedback FADD), which depend on no earlier P, as the real
tile's next S = QK^T comes from the tensor cores and not from this tile's P; the packed P is folded into an integer
sink by XOR (0.5 LOP3 per score on the INT pipe, off the scores' chain) so it is not dead code. Same FP32-pipe and
MUFU instructions per score as ``feedback``; what differs is the serial dependence P -> next scores (and ~1.6
INT-pipe unpack instructions per score fewer). Tiles of an ``independent`` row are keyed ``MxNxDwWpP/independent``.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fgsim.errors import FgsimError

#: tile shapes measured: (BLOCK_M, BLOCK_N, HEAD_DIM, num_warps): the fg / dense D=128 M=128 tile (8 warps, two
#: warpgroups of 64 rows) and the M=64 tile (4 warps)
SOFTMAX_TILES: tuple[tuple[int, int, int, int], ...] = ((128, 128, 128, 8), (64, 64, 128, 4), (64, 128, 128, 4))
#: FP32-pipe instructions per score the loop adds beyond the real tile's softmax: the feedback FADD ``qk0 + p``
FEEDBACK_FP32_PER_SCORE = 1.0
#: the microbenchmark's loops (module docstring) and the FP32-pipe instructions per score each adds beyond the real
#: tile's softmax: ``feedback`` the FADD ``qk0 + p``, ``independent`` the FFMA ``qk0 + t 1e-6`` (SASS: FFMA)
LOOPS: dict[str, float] = {"feedback": FEEDBACK_FP32_PER_SCORE, "independent": 1.0}
#: loop iterations per program on the GPU (about 2 ms per launch at 1 program per SM for the 128 x 128 tile)
SOFTMAX_ITERS = 4096
#: programs per SM timed: 1 (the M=128 tile's occupancy in the kernels) and 2 (two co-resident CTAs' chains)
PROGRAMS_PER_SM = (1, 2)
#: the FP32 / exp2 rate kernels of fgsim.calibrate_micro as this run launches them: programs per SM, 64 x 64 tiles,
#: loop iterations (two FFMA per element per iteration; one exp2)
RATE_PER_SM, RATE_TILE, FMA_ITERS, EXP_ITERS = 8, 64, 8192, 4096


def check_loop(loop: str) -> float:
    """The FP32 instructions per score ``loop`` adds (:data:`LOOPS`); :class:`FgsimError` (one line) if unknown."""
    if loop not in LOOPS:
        raise FgsimError(f"softmax microbenchmark: loop must be one of {', '.join(LOOPS)}, got {loop!r}")
    return LOOPS[loop]


def parse_loops(text: str) -> tuple[str, ...]:
    """``--softmax-loop`` ``LOOP[,LOOP]``: the loops to time in one run, the first one the record's headline;
    :class:`FgsimError` (one line naming the flag) for an unknown, repeated or empty name."""
    names = tuple(x.strip() for x in str(text).split(","))
    for n in names:
        if n not in LOOPS:
            raise FgsimError(f"--softmax-loop: each of {text!r} must be one of {', '.join(LOOPS)} (comma-separated), "
                             f"got {n!r}")
    if len(set(names)) != len(names):
        raise FgsimError(f"--softmax-loop: {text!r} names a loop twice")
    return names


def tile_key(bm: int, bn: int, d: int, warps: int, per_sm: int | None = None, loop: str = "feedback") -> str:
    """A record's tile key: ``MxNxDwW`` (+ ``pP`` for a timed row) (+ ``/independent`` for that loop)."""
    return (f"{bm}x{bn}x{d}w{warps}" + (f"p{per_sm}" if per_sm is not None else "")
            + ("" if loop == "feedback" else f"/{loop}"))


def _kernel(loop: str = "feedback") -> Any:
    check_loop(loop)
    import triton
    import triton.language as tl

    if loop == "independent":
        @triton.jit
        def softmax_indep_k(A, B, C, Out, T, qk_scale, BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr):
            # as softmax_k, but the scores of step t are qk0 + t 1e-6: independent of every P (the real tile's next
            # S = QK^T comes from the tensor cores); P packed to bf16 pairs and XOR-folded into an integer sink
            pid = tl.program_id(0)
            a = tl.load(A + tl.arange(0, BM)[:, None] * 16 + tl.arange(0, 16)[None, :])
            b = tl.load(B + tl.arange(0, 16)[:, None] * BN + tl.arange(0, BN)[None, :])
            c = tl.load(C + tl.arange(0, 16)[:, None] * D + tl.arange(0, D)[None, :])
            qk0 = tl.dot(a, b) + pid * 1e-6
            acc = tl.dot(a, c)
            m_i = tl.full([BM], float("-inf"), tl.float32)
            l_i = tl.zeros([BM], tl.float32)
            sink = tl.zeros([BM, BN], tl.int16)
            for t in range(T):
                qk = qk0 + t.to(tl.float32) * 1e-6
                m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
                p = tl.math.exp2(qk * qk_scale - m_new[:, None])
                alpha = tl.math.exp2(m_i - m_new)
                l_i = l_i * alpha + tl.sum(p, 1)
                acc = acc * alpha[:, None]
                m_i = m_new
                pb = tl.inline_asm_elementwise(
                    "cvt.rn.bf16x2.f32 $0, $2, $1;", "=r,f,f", [p],
                    dtype=tl.bfloat16, is_pure=True, pack=2)
                sink = sink ^ pb.to(tl.int16, bitcast=True)
            offs = tl.arange(0, BM)
            tl.store(Out + pid * BM + offs, tl.sum(acc, 1) + l_i + m_i + tl.sum(sink.to(tl.float32), 1))

        return softmax_indep_k

    @triton.jit
    def softmax_k(A, B, C, Out, T, qk_scale, BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr):
        # score / accumulator tiles from one wgmma each (the kernels' register layout), then T online-softmax steps
        # exactly as fgattn.attention._softmax_pv, the P V dot replaced by feeding P back into the next scores
        pid = tl.program_id(0)
        a = tl.load(A + tl.arange(0, BM)[:, None] * 16 + tl.arange(0, 16)[None, :])
        b = tl.load(B + tl.arange(0, 16)[:, None] * BN + tl.arange(0, BN)[None, :])
        c = tl.load(C + tl.arange(0, 16)[:, None] * D + tl.arange(0, D)[None, :])
        qk0 = tl.dot(a, b) + pid * 1e-6
        acc = tl.dot(a, c)
        m_i = tl.full([BM], float("-inf"), tl.float32)
        l_i = tl.zeros([BM], tl.float32)
        qk = qk0
        for _ in range(T):
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            p = tl.math.exp2(qk * qk_scale - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            m_i = m_new
            # P to bf16 two scores per instruction (cvt.rn.bf16x2.f32: F2FP.BF16.F32.PACK_AB, as the dot operand
            # P of the real tile is packed), then back to fp32 for the feedback
            pb = tl.inline_asm_elementwise(
                "cvt.rn.bf16x2.f32 $0, $2, $1;", "=r,f,f", [p],
                dtype=tl.bfloat16, is_pure=True, pack=2)
            qk = qk0 + pb.to(tl.float32)
        offs = tl.arange(0, BM)
        tl.store(Out + pid * BM + offs, tl.sum(acc, 1) + l_i + m_i + tl.sum(qk, 1))

    return softmax_k


def check_tile(bm: int, bn: int, d: int, warps: int) -> None:
    """Raise :class:`FgsimError` (one line) unless the tile is one the kernel compiles: powers of two, M >= 16 x
    warps / 4 rows per warpgroup, BLOCK_N and D 16..256."""
    for name, v in (("BLOCK_M", bm), ("BLOCK_N", bn), ("HEAD_DIM", d), ("num_warps", warps)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0 or v & (v - 1):
            raise FgsimError(f"softmax tile: {name} must be a positive power of two, got {v!r}")
    if not 16 <= bn <= 256 or not 16 <= d <= 256:
        raise FgsimError(f"softmax tile: BLOCK_N and HEAD_DIM must be 16..256, got {bn} / {d}")
    if warps not in (4, 8) or bm < 16 * warps:
        raise FgsimError(f"softmax tile: num_warps must be 4 or 8 with BLOCK_M >= 16 x num_warps, got M={bm}, "
                         f"warps={warps}")


# ---------------------------------------------------------------------------------------------------------
# CPU side: the compiled loop's instructions
# ---------------------------------------------------------------------------------------------------------


def loop_counts(sass: str) -> dict[str, int]:
    """Per thread and iteration of the microbenchmark's loop (the innermost backward branch span without ``EXIT``):
    FP32-pipe instructions by opcode (FFMA, FADD, FMUL, FMNMX), MUFU, conversions (F2F / F2FP) and all
    instructions (NOPs left out). Raises :class:`FgsimError` if the listing has no such loop."""
    from fgsim.validation.sass import FP32_OPS, _backward_spans, parse

    ins = parse(sass)
    spans = [(lo, hi, body) for lo, hi, body in _backward_spans(ins) if body and not any(x[1] == "EXIT" for x in body)]
    inner = [s for s in spans if not any(o is not s and s[0] <= o[0] and o[1] <= s[1] for o in spans)]
    if not inner:
        raise FgsimError("softmax microbenchmark SASS: no loop found (is this the softmax_k listing?)")
    _, _, body = max(inner, key=lambda s: len(s[2]))
    out = {op: sum(1 for x in body if x[1].split(".")[0] == op) for op in FP32_OPS}
    out["MUFU"] = sum(1 for x in body if x[1].startswith("MUFU"))
    out["F2F"] = sum(1 for x in body if x[1].startswith("F2F"))
    out["instr"] = sum(1 for x in body if x[1] != "NOP")
    out["fp32_pipe"] = sum(out[op] for op in FP32_OPS)
    return out


def per_score(counts: Mapping[str, int], bm: int, bn: int, d: int, warps: int,
              loop: str = "feedback") -> dict[str, float]:
    """The loop's counts per score (x threads / (BLOCK_M BLOCK_N)) and ``fp32_per_score_sass``: FP32-pipe
    instructions per score less the O rescale (D / BLOCK_N) and the loop's own FP32 op (:data:`LOOPS`)."""
    check_tile(bm, bn, d, warps)
    extra = check_loop(loop)
    f = 32.0 * warps / (bm * bn)
    res = {f"{k}_per_score": v * f for k, v in counts.items()}
    res["fp32_per_score_sass"] = counts["fp32_pipe"] * f - d / bn - extra
    return res


def offline_sass(bm: int, bn: int, d: int, warps: int, loop: str = "feedback") -> str:
    """``cuobjdump -sass`` of the microbenchmark compiled for sm_90 without a GPU (the Triton on the path; the
    device's 3.6 for the figures the model reads; not under ``TRITON_INTERPRET=1``, which replaces the compiler).
    Raises :class:`FgsimError` if Triton cannot compile for sm_90."""
    check_tile(bm, bn, d, warps)
    check_loop(loop)
    try:
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:
        raise FgsimError(f"softmax microbenchmark: triton is needed to compile for sm_90 ({exc})") from None
    fn = _kernel(loop)
    names = list(fn.arg_names)
    sig = {"A": "*bf16", "B": "*bf16", "C": "*bf16", "Out": "*fp32", "T": "i32", "qk_scale": "fp32",
           "BM": "constexpr", "BN": "constexpr", "D": "constexpr"}
    const = {(names.index(k),): v for k, v in (("BM", bm), ("BN", bn), ("D", d))}
    attrs = {(names.index(k),): [["tt.divisibility", 16]] for k in ("A", "B", "C", "Out")}
    try:
        k = triton.compile(ASTSource(fn, sig, constexprs=const, attrs=attrs), target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": warps, "num_stages": 1})
    except Exception as exc:  # noqa: BLE001 - a backend without sm_90 / ptxas: one line, the cause named
        raise FgsimError(f"softmax microbenchmark: compiling for sm_90 failed ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return _cuobjdump(k.asm["cubin"])


def _cuobjdump(cubin: bytes) -> str:
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.is_file():
        raise FgsimError(f"softmax microbenchmark: {tool} not found (Triton's bundled cuobjdump)")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as fh:
        fh.write(cubin)
        fh.flush()
        return subprocess.run([str(tool), "-sass", fh.name], capture_output=True, text=True, check=True).stdout


def sass_rows(tiles: tuple[tuple[int, int, int, int], ...] = SOFTMAX_TILES,
              loops: tuple[str, ...] = ("feedback",)) -> list[dict[str, Any]]:
    """One row per loop and tile: the offline sm_90 loop counts per score (:func:`per_score`)."""
    rows = []
    for loop in loops:
        for bm, bn, d, w in tiles:
            c = loop_counts(offline_sass(bm, bn, d, w, loop))
            rows.append({"block_m": bm, "block_n": bn, "head_dim": d, "num_warps": w, "loop": loop,
                         "source": "sass sm_90 offline", **{f"loop_{k}": v for k, v in c.items()},
                         **per_score(c, bm, bn, d, w, loop)})
    return rows


# ---------------------------------------------------------------------------------------------------------
# GPU side: the timed figure
# ---------------------------------------------------------------------------------------------------------


def timed_figure(ms_softmax: float, scores_per_sm: float, fp32_instr_per_s_per_sm: float, mufu_per_s_per_sm: float,
                 mufu_per_score: float, bn: int, d: int, loop: str = "feedback") -> dict[str, float]:
    """``fp32_per_score_timed``: the softmax loop's seconds per score on one SM x the measured FP32 instruction rate
    per SM, less the O rescale (D / BLOCK_N) and the feedback FADD; ``mufu_floor`` the same units' floor the MUFU
    sets (the loop's MUFU per score at the measured exp2 rate), less the same terms (module docstring); ``loop``'s own
    FP32 op (:data:`LOOPS`) in place of the feedback FADD."""
    extra = d / bn + check_loop(loop)
    for name, v in (("ms", ms_softmax), ("scores per SM", scores_per_sm), ("FP32 rate", fp32_instr_per_s_per_sm),
                    ("MUFU rate", mufu_per_s_per_sm)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise FgsimError(f"softmax microbenchmark: {name} must be a positive number, got {v!r}")
    eq = ms_softmax * 1e-3 * fp32_instr_per_s_per_sm / scores_per_sm
    floor = mufu_per_score * fp32_instr_per_s_per_sm / mufu_per_s_per_sm
    return {"fp32_eq_per_score": eq, "fp32_per_score_timed": eq - extra, "mufu_floor": floor - extra,
            "mufu_bound": float(eq <= 1.05 * floor)}


def gpu_rows(sm_count: int, iters: int = SOFTMAX_ITERS, rounds: int = 7,
             loops: tuple[str, ...] = ("feedback",)) -> list[dict[str, Any]]:
    """Time the microbenchmark's ``loops`` on the current GPU at :data:`PROGRAMS_PER_SM` for each tile of
    :data:`SOFTMAX_TILES`, with the FP32 (FFMA chains) and exp2 rates measured in the same run
    (``fgsim.calibrate_micro``'s kernels), CUDA events, interleaved rounds (every loop in every round), median; the
    compiled kernel's own SASS gives the per-score counts."""
    for loop in loops:
        check_loop(loop)
    import torch

    from fgsim.calibrate_micro import _kernels

    if not torch.cuda.is_available():
        raise FgsimError("the timed softmax microbenchmark needs a GPU (the SASS count runs on a CPU)")
    km = _kernels()
    fns = {loop: _kernel(loop) for loop in loops}
    dev = "cuda"
    g = torch.Generator(device="cpu").manual_seed(0)
    print("softmax microbenchmark: seed 0", flush=True)
    jobs: dict[str, Any] = {}
    o_r = torch.empty(sm_count * RATE_PER_SM, device=dev, dtype=torch.float32)
    jobs["fp32"] = lambda: km["fma"][(sm_count * RATE_PER_SM,)](o_r, FMA_ITERS, BM=RATE_TILE, BN=RATE_TILE,
                                                               num_warps=4)
    jobs["exp2"] = lambda: km["exp"][(sm_count * RATE_PER_SM,)](o_r, EXP_ITERS, BM=RATE_TILE, BN=RATE_TILE,
                                                               num_warps=4)
    for (bm, bn, d, w), per_sm in ((t, p) for t in SOFTMAX_TILES for p in PROGRAMS_PER_SM):
        a = (torch.randn(bm, 16, generator=g) * 0.1).to(dev, torch.bfloat16)
        b = (torch.randn(16, bn, generator=g) * 0.1).to(dev, torch.bfloat16)
        c = (torch.randn(16, d, generator=g) * 0.1).to(dev, torch.bfloat16)
        progs = sm_count * per_sm
        out = torch.empty(progs * bm, device=dev, dtype=torch.float32)
        for loop, fn in fns.items():
            jobs[tile_key(bm, bn, d, w, per_sm, loop)] = (
                lambda a=a, b=b, c=c, out=out, bm=bm, bn=bn, d=d, w=w, progs=progs, fn=fn:
                fn[(progs,)](a, b, c, out, iters, 0.125 * 1.4426950408889634, BM=bm, BN=bn, D=d, num_warps=w))
    for f in jobs.values():  # compile and warm
        f()
    torch.cuda.synchronize()
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(rounds):  # interleaved rounds
        for k, f in jobs.items():
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            f()
            e.record()
            torch.cuda.synchronize()
            times[k].append(s.elapsed_time(e))
    counts = {loop: {t: loop_counts(offline_sass(*t, loop)) for t in SOFTMAX_TILES} for loop in loops}
    return timed_rows(times, sm_count, iters, counts)


def timed_rows(times: Mapping[str, list[float]], sm_count: int, iters: int,
               counts: Mapping[str, Mapping[tuple[int, int, int, int], Mapping[str, int]]]) -> list[dict[str, Any]]:
    """Rows of :func:`gpu_rows` from its timed rounds (ms per launch: ``fp32``, ``exp2`` and :func:`tile_key` per
    loop, tile and programs per SM) and per loop (the keys of ``counts``, in order) the tiles' loop counts
    (:func:`loop_counts`); median and spread (max - min) / median."""
    import numpy as np

    for loop in counts:
        check_loop(loop)
    need = ["fp32", "exp2"] + [tile_key(bm, bn, d, w, p, loop) for loop in counts for bm, bn, d, w in SOFTMAX_TILES
                               for p in PROGRAMS_PER_SM]
    missing = [k for k in need if not times.get(k)]
    if missing:
        raise FgsimError(f"softmax microbenchmark: no timings for {missing[0]}")
    med = {k: float(np.median(v)) for k, v in times.items()}
    spread = {k: float((max(v) - min(v)) / np.median(v) * 100) for k, v in times.items()}
    # FFMA instructions and exp2 per s per SM of calibrate's rate kernels
    fp32_rate = RATE_PER_SM * RATE_TILE**2 * 2 * FMA_ITERS / (med["fp32"] * 1e-3)
    exp_rate = RATE_PER_SM * RATE_TILE**2 * EXP_ITERS / (med["exp2"] * 1e-3)
    rows = []
    for loop, (bm, bn, d, w), per_sm in ((lp, t, p) for lp in counts for t in SOFTMAX_TILES for p in PROGRAMS_PER_SM):
        key = tile_key(bm, bn, d, w, per_sm, loop)
        c = counts[loop][(bm, bn, d, w)]
        ps = per_score(c, bm, bn, d, w, loop)
        fig = timed_figure(med[key], float(per_sm * bm * bn * iters), fp32_rate, exp_rate, ps["MUFU_per_score"], bn,
                           d, loop)
        rows.append({"block_m": bm, "block_n": bn, "head_dim": d, "num_warps": w, "programs_per_sm": per_sm,
                     "loop": loop,
                     "iters": iters, "ms": med[key], "spread_pct": spread[key], "fp32_ms": med["fp32"],
                     "exp2_ms": med["exp2"], "fp32_instr_per_s_per_sm": fp32_rate, "exp2_per_s_per_sm": exp_rate,
                     "rounds": len(times[key]), "bench": "cuda events, interleaved rounds, median",
                     **{f"loop_{k}": v for k, v in c.items()}, **ps, **fig})
    return rows


def summary(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``fp32_per_score_measured``: per loop and tile (:func:`tile_key`) the SASS count and (GPU rows) the timed
    figure and its MUFU floor; the first row's loop's D=128 M=128 tile's timed figure (else its SASS count) as the
    headline value, with its source and ``loop``."""
    if not rows:
        raise FgsimError("softmax microbenchmark: no rows")
    tiles = {tile_key(r["block_m"], r["block_n"], r["head_dim"], r["num_warps"], r.get("programs_per_sm"),
                      r.get("loop", "feedback")):
             {k: r[k] for k in ("fp32_per_score_sass", "fp32_per_score_timed", "mufu_floor", "mufu_bound")
              if k in r} for r in rows}
    loop = rows[0].get("loop", "feedback")
    head = next((r for r in rows if r["block_m"] == 128 and r["block_n"] == 128 and r.get("loop", "feedback") == loop
                 and r.get("programs_per_sm", 1) == 1), rows[0])
    src = "timed" if "fp32_per_score_timed" in head else "sass"
    return {"fp32_per_score_measured": float(head[f"fp32_per_score_{src}"]), "source": src, "loop": loop,
            "unit": "FP32 instr/score", "tile": f"{head['block_m']}x{head['block_n']}x{head['head_dim']}"
            f"w{head['num_warps']}", "tiles": tiles, "used_by_fit": False}


#: how a fit takes the record (``fgsim calibrate --fp32-per-score-rule``): ``auto`` (session 16, M7 / M8: pin where
#: the loop is not MUFU-bound, else bounds) or ``bound`` (session 16, M9: always fitted within [SASS count, timed
#: figure], the timed figure an upper bound because the loop is issue-bound; validation/MODEL_NOTES.md)
FIT_RULES = ("auto", "bound")


def fit_constraint(path: str | Path, rule: str = "auto") -> dict[str, Any]:
    """What a calibration fit takes from a GPU record of :func:`run` (``fgsim calibrate --fp32-per-score`` on a GPU):
    the headline tile's timed figure and, by the pre-registered rule (validation/MODEL_NOTES.md, session 16), either
    ``pin`` (the loop is not MUFU-bound: ``fp32_per_score`` is that figure) or ``bounds`` (MUFU-bound: the timed
    figure only bounds the FP32 work from above; fitted within [SASS count, timed figure]). Raises
    :class:`FgsimError` (one line naming the file) for a missing or malformed file or a CPU (SASS-only) record. The
    record's headline ``loop`` (``feedback`` where absent) names the tile read; ``rule`` ``bound`` (:data:`FIT_RULES`)
    takes the bounds branch whatever the MUFU flag says."""
    import json

    from fgsim.model.params import SPECS

    if rule not in FIT_RULES:
        raise FgsimError(f"--fp32-per-score-rule: must be one of {', '.join(FIT_RULES)}, got {rule!r}")
    p = Path(path)
    if not p.is_file():
        raise FgsimError(f"{p}: no such file (the record of `fgsim calibrate --fp32-per-score` on a GPU)")
    try:
        rec = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FgsimError(f"{p}: not a JSON record ({exc})") from None
    if not isinstance(rec, dict) or rec.get("source") != "timed":
        raise FgsimError(f"{p}: not a GPU-timed softmax microbenchmark record (source "
                         f"{rec.get('source') if isinstance(rec, dict) else None!r}; a CPU record holds the SASS "
                         "count only, which bounds the parameter from below and is no measurement of it)")
    loop = rec.get("loop", "feedback")  # records before session 16 (M9) are of the feedback loop
    if not isinstance(loop, str) or loop not in LOOPS:
        raise FgsimError(f"{p}: loop {loop!r} is none of {', '.join(LOOPS)}")
    tile = f"{rec.get('tile')}p1" + ("" if loop == "feedback" else f"/{loop}")
    t = (rec.get("tiles") or {}).get(tile)
    need = ("fp32_per_score_timed", "fp32_per_score_sass", "mufu_floor", "mufu_bound")
    if not isinstance(t, dict) or any(not isinstance(t.get(k), (int, float)) or isinstance(t.get(k), bool)
                                      or not math.isfinite(t[k]) for k in need):
        raise FgsimError(f"{p}: tile {tile} lacks one of {', '.join(need)}")
    lo, hi = SPECS["fp32_per_score"].lo, SPECS["fp32_per_score"].hi
    timed, sass = float(t["fp32_per_score_timed"]), float(t["fp32_per_score_sass"])
    if not lo <= timed <= hi:
        raise FgsimError(f"{p}: timed figure {timed:.3f} outside fp32_per_score's range [{lo:g}, {hi:g}]")
    out: dict[str, Any] = {"tile": tile, "loop": loop, "timed": timed, "sass": sass, "mufu_floor": float(t["mufu_floor"]),
                           "mufu_bound": bool(t["mufu_bound"]), "device": rec.get("device", ""),
                           "commit": rec.get("commit", "")}
    if out["mufu_bound"] or rule == "bound":
        out["bounds"] = (max(lo, min(sass, timed)), timed)
        out["rule"] = ("MUFU-bound" if out["mufu_bound"] else "rule bound (issue-bound loop)") + \
            ": fitted within [SASS count, timed figure]"
    else:
        out["pin"] = timed
        out["rule"] = "not MUFU-bound: pinned at the timed figure"
    return out


def run(out_json: str | Path, gpu: bool, commit: str = "", loops: tuple[str, ...] = ("feedback",)) -> dict[str, Any]:
    """Measure ``loops`` (``gpu``: timed + SASS, interleaved in one run; else the offline SASS count) and write
    ``out_json`` atomically; the first loop is the record's headline (``loop``)."""
    for loop in loops:
        check_loop(loop)
    import json

    from fgsim.fileio import write_text_atomic

    t0 = time.time()
    if gpu:
        import torch

        rows = gpu_rows(torch.cuda.get_device_properties(0).multi_processor_count, loops=loops)
        name = torch.cuda.get_device_name(0)
    else:
        rows = sass_rows(loops=loops)
        name = "offline sm_90"
    import triton

    res = {**summary(rows), "device": name, "triton": triton.__version__, "commit": commit, "rows": rows,
           "seconds": round(time.time() - t0, 1)}
    write_text_atomic(out_json, json.dumps(res, indent=1, sort_keys=True) + "\n")
    return res
