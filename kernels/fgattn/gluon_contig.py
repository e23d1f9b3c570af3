"""Research prototype (issue 12, session 13, helper D): the Gluon ws2 CTA for *contiguous* key tiles (dense and
block-sparse attention, D 128, M 128), K/V loaded by TMA instead of gathered.

Not part of fgattn's dispatch or launch table: reachable only as ``fgattn.gluon_contig.contig_attention_gluon``.
The CTA is :mod:`fgattn.gluon_fg`'s form ``ws2`` (two consumer warpgroups of 64 query rows each with
FlashAttention-3's intra-warpgroup QK/PV overlap, a producer warpgroup, a 3-stage K/V ring with ``full`` / ``empty``
mbarriers, the list schedule's host plan ``Rows[Start[p]:Start[p + 1]]``); the consumers are
:func:`fgattn.gluon_fg._ws2x_consumer` itself (imported, unchanged).  Only the producer differs:

* K and V tiles of 128 contiguous keys arrive by TMA (host-built (B, H, N, D) tensor descriptors, [1, 1, 128, 128]
  boxes in the 128-byte swizzle, keys past N zero-filled by the hardware), one ``expect``-tx arrival per stage on
  the stage's ``full`` barrier instead of 128 cp.async arrivals; one thread issues both copies, nothing is gathered
  and no index entry is loaded per key.
* Dense: every row runs key blocks 0 .. ceil(N / 128) - 1.  Block-sparse: the row's kept 128-key blocks from the
  M×M block index (:func:`fgattn.block_index_from_mask`, ``gran_n = block_m = 128``; the same CSR the tl block
  kernel reads), the next block number loaded one tile ahead.
* The consumers read a row's kept-key count from ``KOffsets`` (``hi - lo``) and mask columns past it in the row's
  last tile; for contiguous tiles that count is N (dense) or 128 per kept block with the partial last key block
  (N mod 128 keys) counted exactly: the block index is sorted within a row, so a kept partial block is always the
  row's last tile, where the consumers mask.  ``KOffsets`` is built once per plan on the host side (torch ops).

Row schedule: greedy list scheduling in launch order (``fgattn.gluon_fg_m64.lane_list``, row cost ``c_row`` +
tiles, as :func:`fgattn.gluon_fg_list.plan_ws2_list`): for dense every row costs the same and the plan is the
natural-order walk; block mode follows ``block_index.order`` (longest-first per head) when the index has one.

API used (Triton 3.6 Gluon, learnt from the public tutorials python/tutorials/gluon/04-tma.py and
08-warp-specialization.py of https://github.com/triton-lang/triton): ``TensorDescriptor`` (host),
``tma.async_copy_global_to_shared`` with an mbarrier, ``mbarrier.expect``, ``warp_specialize``.  The schedule is
FlashAttention-3's (Shah et al., arXiv 2407.08608): TMA producer warp + consumer warpgroups.  Own code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ContigPlan", "plan_contig", "key_offsets", "contig_attention_gluon", "compile_contig_sm90",
           "contig_available", "check_regs", "DEFAULT_REGS"]

HEAD_DIM = 128
BLOCK = 128  # queries per row and keys per tile (M = N tile = the block index's block size)
#: (consumer, producer) registers per thread of the two worker partitions (the default partition, consumer half 0,
#: gets 504 - both): the adopted fg entry's split; a TMA producer needs few registers, so (240, 24) is the
#: FlashAttention-3-like split (both consumers at 240)
DEFAULT_REGS = (216, 64)
C_ROW_TILES = 3.0  # the planner's row cost in tiles (fgattn.gluon_fg_list.C_ROW_TILES, the fg entry's fit)

try:  # Gluon (Triton >= 3.5); the kernel is defined only where it imports (the CPU tests need none of it)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma

    from . import gluon_fg as _g

    _GLUON_ERR: str | None = _g.gluon_available()
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


def contig_available() -> str | None:
    """None if this Triton has the Gluon Hopper API the prototype uses, else why not (one line)."""
    return _GLUON_ERR


# ------------------------------------------------------------------------------------------------ kernel
if _GLUON_ERR is None:
    _C_STAGES: gl.constexpr = gl.constexpr(_g.STAGES)
    _C_BN: gl.constexpr = gl.constexpr(_g.BLOCK_N)

    @gluon.jit
    def _tma_producer(k_desc, v_desc, BOffsets, Blocks, Order, Start, k_smem, v_smem, full, empty, H, QB, N_KV,
                      N_ROWS, DENSE: gl.constexpr):
        """Producer partition: for every row of this program's plan and every tile, once both consumer halves
        have released the stage, K and V of one 128-key block by TMA onto the stage's ``full`` barrier (one
        expect-tx arrival).  Dense: blocks 0 .. ceil(N_KV / 128) - 1; block-sparse: ``Blocks[BOffsets[row] ..
        BOffsets[row + 1])`` (block numbers), one tile of block 0 for a row with none (its consumers mask it all,
        as the fg entry's empty rows)."""
        nbytes: gl.constexpr = 2 * k_desc.block_type.nbytes
        pos, end, step, row = _g._my_rows(Order, Start, N_ROWS, True)
        it = 0
        while pos < end:
            bh = row // QB
            b = bh // H
            h = bh % H
            if DENSE:
                lo = 0
                hi = gl.cdiv(N_KV, _C_BN)
                kb = 0
            else:
                lo = gl.load(BOffsets + row).to(gl.int32)
                hi = gl.load(BOffsets + row + 1).to(gl.int32)
                kb = gl.load(Blocks + gl.minimum(lo, gl.maximum(hi - 1, 0)))
                kb = gl.where(hi > lo, kb, 0)
            n_t = gl.maximum(hi - lo, 1)
            for t in range(0, n_t):
                if DENSE:
                    kb_n = t + 1
                else:  # the next tile's block number, loaded before this tile's stage wait
                    e = lo + t + 1
                    kb_n = gl.load(Blocks + gl.minimum(e, gl.maximum(hi - 1, 0)))
                st = it % _C_STAGES
                mbarrier.wait(empty.index(st), ((it // _C_STAGES) & 1) ^ 1)
                mbarrier.expect(full.index(st), nbytes)
                tma.async_copy_global_to_shared(k_desc, [b, h, kb * _C_BN, 0], full.index(st),
                                                k_smem.index(st).reshape(k_desc.block_type.shape))
                tma.async_copy_global_to_shared(v_desc, [b, h, kb * _C_BN, 0], full.index(st),
                                                v_smem.index(st).reshape(v_desc.block_type.shape))
                kb = kb_n
                it += 1
            pos = pos + step
            row = _g._next_row(Order, pos, end, True)

    # integer sizes are not specialised (one compile per dtype / mode / knobs; they enter only per-row index
    # arithmetic and the store mask, not the tile loop)
    @gluon.jit(do_not_specialize=["H", "N_Q", "QB", "N_KV", "N_ROWS"])
    def _contig_ws2(q_desc, k_desc, v_desc, Out, KOffsets, BOffsets, Blocks, Order, Start, qk_scale,
                    stride_ob, stride_oh, stride_on, H, N_Q, QB, N_KV, N_ROWS,
                    HEAD_DIM: gl.constexpr, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                    PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr,
                    DENSE: gl.constexpr, PIPE: gl.constexpr = 1, PINGPONG: gl.constexpr = False, o_desc=None,
                    TMA_O: gl.constexpr = False, OFFS_AHEAD: gl.constexpr = False, RCP: gl.constexpr = False,
                    Tl=None, TIMELINE: gl.constexpr = False):
        """The ws2 CTA with a TMA producer (module docstring): program p runs rows ``Order[Start[p]:Start[p+1]]``;
        default partition = consumer half 0 (``num_warps`` 4), workers = consumer half 1 and the producer.
        ``o_desc`` / TMA_O / OFFS_AHEAD / RCP: the consumers' row end (``gluon_fg.EPILOGUES``; all off = "stg").
        ``TIMELINE`` (research, issue 12 session 16): the consumers' in-kernel timeline into ``Tl`` (roles 0 / 1 of
        ``gluon_fg._TL_CAP``'s buffer; the producer records nothing; None = a constexpr when off)."""
        gl.static_assert(HEAD_DIM == 128 and BLOCK_M == 128 and BLOCK_N == 128 and STAGES == _C_STAGES)
        gl.static_assert(num_warps == 4)
        dtype: gl.constexpr = q_desc.dtype
        # the ring as the fg entry's (NVMMA 128-byte swizzle, [STAGES, 128, 128]); TMA writes a rank-4 [1, 1, 128,
        # 128] view of a stage (the same bytes: leading unit dimensions)
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, HEAD_DIM], dtype)
        k_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_N, HEAD_DIM], KV_SMEM)
        q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(q_bar.index(i), count=1)
        for i in gl.static_range(STAGES):
            mbarrier.init(full.index(i), count=1)
            mbarrier.init(empty.index(i), count=2)
        gl.warp_specialize([
            (_g._ws2x_consumer, (0, q_desc, Out, KOffsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                                 qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, False, PIPE, 0,
                                 PINGPONG, True, o_desc, TMA_O, OFFS_AHEAD, RCP, False, Tl, TIMELINE)),
            (_g._ws2x_consumer, (1, q_desc, Out, KOffsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                                 qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, False, PIPE, 0,
                                 PINGPONG, True, o_desc, TMA_O, OFFS_AHEAD, RCP, False, Tl, TIMELINE)),
            (_tma_producer, (k_desc, v_desc, BOffsets, Blocks, Order, Start, k_smem, v_smem, full, empty, H, QB,
                             N_KV, N_ROWS, DENSE)),
        ], [4, 4], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(STAGES):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


# ------------------------------------------------------------------------------------------------ host side
def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_contig: {msg}")


def check_regs(regs: Any) -> tuple[int, int]:
    """Validate ``regs`` = (consumer, producer) registers per thread (one ValueError line naming the argument)."""
    ok = (isinstance(regs, tuple) and len(regs) == 2
          and all(isinstance(r, int) and not isinstance(r, bool) for r in regs))
    cr, pr = regs if ok else (0, 0)
    if not ok or cr % 8 or pr % 8 or not 24 <= pr <= cr <= 240 or cr + pr > 280:
        _fail(f"regs={regs!r} must be (consumer, producer) multiples of 8 with 24 <= producer <= consumer <= 240 "
              "and consumer + producer <= 280 (the default partition gets 504 - consumer - producer)")
    return cr, pr


def key_offsets(block_index: Any) -> Any:
    """Kept keys per row as CSR offsets (int64, n_rows + 1) of a block index (``gran_n = block_m``): 128 per kept
    block, the partial last key block (n_keys mod 128 keys) counted exactly (torch ops on the index's device)."""
    import torch

    bm = block_index.gran_n
    nb = -(-block_index.n_keys // bm)
    last = block_index.n_keys - (nb - 1) * bm
    per_block = torch.where(block_index.indices.long() == nb - 1, last, bm)
    csum = torch.zeros(block_index.indices.numel() + 1, dtype=torch.int64, device=block_index.indices.device)
    csum[1:] = torch.cumsum(per_block, 0)
    return csum[block_index.offsets.long()]


@dataclass(frozen=True)
class ContigPlan:
    """What a launch runs (build once per problem with :func:`plan_contig`, outside CUDA-graph capture): the row
    plan (``rows``, ``start``: program p runs ``rows[start[p]:start[p + 1]]``), the consumers' kept-key CSR
    ``koffsets``, the block index's CSR (None for dense), the planned makespan / mean (tile units)."""

    rows: Any
    start: Any
    koffsets: Any
    boffsets: Any
    blocks: Any
    programs: int
    n_rows: int
    n_kv: int
    dense: bool
    makespan: float
    mean_load: float


def plan_contig(*, batch: int, heads: int, n_q: int, n_kv: int, programs: int, block_index: Any = None,
                device: Any = "cpu", c_row: float = C_ROW_TILES) -> ContigPlan:
    """Row plan of a dense (``block_index`` None) or block-sparse launch: greedy list scheduling in launch order
    (``block_index.order`` if set, else natural order), row cost ``c_row`` + executed 128-key tiles, each row to
    the least-loaded program (ties: lowest); ``programs`` is clipped to the row count.  Host work (one copy of
    the row counts): not under CUDA-graph capture."""
    import torch

    from .gluon_fg_m64 import flatten_lanes, lane_list, lanes_makespan
    from .index import FgIndex

    for name, x in (("batch", batch), ("heads", heads), ("n_q", n_q), ("n_kv", n_kv), ("programs", programs)):
        if not isinstance(x, int) or isinstance(x, bool) or x < 1:
            _fail(f"{name}={x!r} must be a positive int")
    if isinstance(c_row, bool) or not isinstance(c_row, (int, float)) or not 0 <= c_row < 1e6:
        _fail(f"c_row={c_row!r} must be a number in [0, 1e6) (tile units)")
    qb = -(-n_q // BLOCK)
    n_rows = batch * heads * qb
    if block_index is None:
        tiles = [-(-n_kv // BLOCK)] * n_rows
        order = list(range(n_rows))
        koff = torch.arange(n_rows + 1, dtype=torch.int64, device=device) * n_kv
        boff = blk = None
    else:
        if not isinstance(block_index, FgIndex):
            _fail(f"block_index must be an FgIndex, got {type(block_index).__name__}")
        if (block_index.block_m, block_index.gran_n) != (BLOCK, BLOCK):
            _fail(f"block_index has block_m={block_index.block_m}, gran_n={block_index.gran_n} (needs 128, 128: "
                  "fgattn.block_index_from_mask(..., block_m=128))")
        if (block_index.batch, block_index.heads, block_index.n_qblocks, block_index.n_keys) != (
                batch, heads, qb, n_kv):
            _fail(f"block_index (batch, heads, n_qblocks, n_keys)=({block_index.batch}, {block_index.heads}, "
                  f"{block_index.n_qblocks}, {block_index.n_keys}) does not match ({batch}, {heads}, {qb}, {n_kv})")
        if block_index.indices.dtype != torch.int32:
            _fail(f"block_index.indices must be int32, got {block_index.indices.dtype}")
        if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
            _fail("plan_contig reads the row counts on the host: build the plan before CUDA-graph capture")
        tiles = [max(int(c), 1) for c in block_index.counts().tolist()]
        order = list(range(n_rows)) if block_index.order is None else block_index.order.tolist()
        koff = key_offsets(block_index)
        boff, blk = block_index.offsets, block_index.indices
        if blk.numel() == 0:  # no kept block at all: the producer still reads one (masked) block number
            blk = torch.zeros(1, dtype=torch.int32, device=blk.device)
        device = block_index.indices.device
    g = min(programs, n_rows)
    costs = [c_row + t for t in tiles]
    lists = lane_list(costs, order, g, 1)
    flat, start = flatten_lanes(lists)
    mx, mean = lanes_makespan(costs, lists)
    return ContigPlan(rows=torch.tensor(flat, dtype=torch.int32, device=device),
                      start=torch.tensor(start, dtype=torch.int32, device=device), koffsets=koff.to(device),
                      boffsets=boff, blocks=blk, programs=g, n_rows=n_rows, n_kv=n_kv,
                      dense=block_index is None, makespan=mx, mean_load=mean)


def _strides(t: Any, layout: str) -> tuple[int, int, int]:
    return (t.stride(0), t.stride(1), t.stride(2)) if layout == "bhnd" else (t.stride(0), t.stride(2), t.stride(1))


def _constexprs(dense: bool, regs: tuple[int, int], pipeline: int, pingpong: bool,
                epilogue: str = "stg") -> dict[str, Any]:
    from .gluon_fg import EPILOGUES

    cr, pr = check_regs(regs)
    if pipeline not in (1, 3) or isinstance(pipeline, bool):
        _fail(f"pipeline={pipeline!r} must be 1 or 3 (the overlapped consumer of fgattn.gluon_fg)")
    if not isinstance(pingpong, bool):
        _fail(f"pingpong={pingpong!r} must be a bool")
    if not isinstance(epilogue, str) or epilogue not in EPILOGUES:
        _fail(f"epilogue={epilogue!r} must be one of {tuple(EPILOGUES)} (fgattn.gluon_fg.EPILOGUES)")
    return dict(HEAD_DIM=HEAD_DIM, BLOCK_M=BLOCK, BLOCK_N=BLOCK, STAGES=3, PRODUCER_REGS=pr, CONSUMER_REGS=cr,
                num_warps=4, DENSE=dense, PIPE=pipeline, PINGPONG=pingpong, **EPILOGUES[epilogue])


def contig_attention_gluon(q: Any, k: Any, v: Any, *, block_index: Any = None, plan: ContigPlan | None = None,
                           layout: str = "bhnd", sm_scale: float | None = None, out: Any = None,
                           programs: int | None = None, regs: tuple[int, int] = DEFAULT_REGS, pipeline: int = 1,
                           pingpong: bool = False, epilogue: str = "stg", timeline: Any = None) -> Any:
    """Dense (``block_index`` None) or block-sparse attention (kept 128×128 blocks of ``block_index``) by the ws2
    CTA with TMA K/V loads, D 128, M 128, sm_90: same output as :func:`fgattn.dense_attention` /
    :func:`fgattn.block_sparse_attention` (q's layout and dtype; zeros for a query block with no kept block).
    ``plan``: :func:`plan_contig` (built here if None: host work, not under CUDA-graph capture); ``programs``:
    grid when the plan is built here (default the SM count); ``regs`` / ``pipeline`` / ``pingpong`` / ``epilogue``:
    the ws2 consumer's knobs (``epilogue``: its row end, ``fgattn.gluon_fg.EPILOGUES``; a TMA row end with an
    ``out`` whose strides or address are not 16-byte aligned runs ``"stg"``, as the fg entry).  ``timeline``
    (research): an int64 CUDA buffer of ``fgattn.timeline.buffer_shape(plan.programs)``: the consumers record the
    in-kernel timeline into it (``fgattn.timeline``; needs a TMA row end and an aligned ``out``)."""
    import torch

    if _GLUON_ERR is not None:
        _fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if not isinstance(q, torch.Tensor) or q.device.type != "cuda":
        _fail("q must be a CUDA tensor (no CPU / interpreter path)")
    if torch.cuda.get_device_capability(q.device)[0] != 9:
        _fail("needs an sm_90 GPU (Hopper: wgmma, TMA)")
    if layout not in ("bhnd", "bnhd"):
        _fail(f"layout must be 'bhnd' or 'bnhd', got {layout!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.dtype not in (torch.bfloat16, torch.float16):
            _fail(f"{name} must be a 4-D bf16 / fp16 tensor ({layout})")
        if t.dtype != q.dtype or t.device != q.device or t.stride(-1) != 1:
            _fail(f"{name}: dtype / device differ from q's or the head dimension is not contiguous")
        if any(st * t.element_size() % 16 for st in _strides(t, layout)):
            _fail(f"{name} strides {tuple(t.stride())} are not 16-byte aligned (needed by the TMA descriptors)")
    b, h, nq, d = q.shape if layout == "bhnd" else (q.shape[0], q.shape[2], q.shape[1], q.shape[3])
    nk = k.shape[2] if layout == "bhnd" else k.shape[1]
    kv_shape = (b, h, nk, d) if layout == "bhnd" else (b, nk, h, d)
    if d != HEAD_DIM or tuple(k.shape) != kv_shape or tuple(v.shape) != kv_shape:
        _fail(f"shapes q {tuple(q.shape)} k {tuple(k.shape)} v {tuple(v.shape)}: need D 128 and matching k / v")
    knobs = _constexprs(block_index is None, regs, pipeline, pingpong, epilogue)
    if plan is None:
        sms = torch.cuda.get_device_properties(q.device).multi_processor_count if programs is None else programs
        plan = plan_contig(batch=b, heads=h, n_q=nq, n_kv=nk, programs=sms, block_index=block_index,
                           device=q.device)
    qb = -(-nq // BLOCK)
    if plan.n_rows != b * h * qb or plan.n_kv != nk or plan.dense != (block_index is None):
        _fail(f"plan is for {plan.n_rows} rows / {plan.n_kv} keys / dense {plan.dense}, the call has "
              f"{b * h * qb} / {nk} / {block_index is None}")
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.stride(-1) != 1:
        _fail("out must match q's shape and dtype with a contiguous head dimension")
    if knobs.get("TMA_O") and _g.o_desc_ok(out, layout) is not None:  # the O TMA store cannot write it: "stg"
        knobs = _constexprs(block_index is None, regs, pipeline, pingpong)
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    el = gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16
    qbox = [1, 1, BLOCK // 2, HEAD_DIM]
    kbox = [1, 1, BLOCK, HEAD_DIM]
    q_desc = TensorDescriptor(q, [b, h, nq, HEAD_DIM], [*_strides(q, layout), 1], qbox,
                              gl.NVMMASharedLayout.get_default_for(qbox, el))
    kv_layout = gl.NVMMASharedLayout.get_default_for(kbox, el)
    k_desc = TensorDescriptor(k, [b, h, nk, HEAD_DIM], [*_strides(k, layout), 1], kbox, kv_layout)
    v_desc = TensorDescriptor(v, [b, h, nk, HEAD_DIM], [*_strides(v, layout), 1], kbox, kv_layout)
    scale = (1.0 / math.sqrt(HEAD_DIM)) if sm_scale is None else float(sm_scale)
    boff = plan.koffsets if plan.boffsets is None else plan.boffsets
    blk = plan.rows if plan.blocks is None else plan.blocks
    o_desc = (TensorDescriptor(out, [b, h, nq, HEAD_DIM], [*_strides(out, layout), 1], qbox, q_desc.layout)
              if knobs.get("TMA_O") else None)
    if timeline is not None:
        if not knobs.get("TMA_O"):
            _fail("timeline needs a TMA row end (epilogue 'tma' / 'tma_offs' / 'tma_sel') and an aligned out")
        knobs = {**knobs, "TIMELINE": 1}
    _contig_ws2[(plan.programs,)](q_desc, k_desc, v_desc, out, plan.koffsets, boff, blk, plan.rows, plan.start,
                                  scale * 1.4426950408889634, *_strides(out, layout), h, nq, qb, nk, plan.n_rows,
                                  **knobs, o_desc=o_desc, **({"Tl": timeline} if timeline is not None else {}))
    return out


def compile_contig_sm90(dense: bool, dtype: str = "bf16", regs: tuple[int, int] = DEFAULT_REGS, pipeline: int = 1,
                        pingpong: bool = False, epilogue: str = "stg", **more: Any) -> Any:
    """Compile the kernel for sm_90 without a GPU (Triton 3.6 with Gluon on the path), with the signature
    :func:`contig_attention_gluon` launches with (descriptors [1, 1, 64 | 128, 128] in the 128-byte swizzle,
    16-byte divisible pointers and strides).  Returns the compiled kernel."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    const = _constexprs(dense, regs, pipeline, pingpong, epilogue)
    const = {**{p.name: p.default for p in _contig_ws2.params if p.is_constexpr and p.has_default}, **const}
    if not const.get("TMA_O"):
        const["o_desc"] = None  # no O descriptor: a constexpr None, as a launch passing o_desc=None specialises it
    const.update(more)  # research constexprs (TIMELINE: fgattn.timeline)
    if not const.get("TIMELINE"):
        const["Tl"] = None  # no timeline buffer: a constexpr None (the binary without the knob)
    fn = _contig_ws2
    names = list(fn.arg_names)
    lay = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
           "fp4_padded=False, cga_layout=[])")
    ptr = {"Out": f"*{dtype}", "KOffsets": "*i64", "BOffsets": "*i64", "Blocks": "*i32",
           "Order": "*i32", "Start": "*i32", "Tl": "*i64"}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a.endswith("_desc"):
            rows = BLOCK // 2 if a in ("q_desc", "o_desc") else BLOCK
            sig[a] = f"tensordesc<{dtype}[1, 1, {rows}, {HEAD_DIM}],{lay}>"
        elif a in ptr:
            sig[a], attrs[(i,)] = ptr[a], [["tt.divisibility", 16]]
        elif a == "qk_scale":
            sig[a] = "fp32"
        else:
            sig[a] = "i32"
            if a.startswith("stride"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = GluonASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in const.items()}, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
