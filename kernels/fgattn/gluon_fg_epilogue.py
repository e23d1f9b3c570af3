"""Research (issue 12, session 14, helper E): the list-scheduled Gluon ws2 fg kernel with a cheaper row end.

Not part of fgattn's dispatch or launch table: reachable only as
``fgattn.gluon_fg_epilogue.fg_attention_gluon_epilogue``.  The CTA is the packaged fg D128 M128 gran-1 entry's
(:func:`fgattn.gluon_fg._fg_gluon_ws2` with ``PLANNED``, pipeline 1, no fence: the producer warpgroup is
:func:`fgattn.gluon_fg._ws_producer` itself, the softmax / Q / turn helpers are :mod:`fgattn.gluon_fg`'s jit
functions); only the consumer warpgroups' once-per-row code differs (kernels/NOTES.md, "Session 13, P: where the
per-row cost goes (ncu)": the row end is more than half of the ≈ 4.4 µs per row the consumers spend outside the
tile loop).  Knobs (each alone or together):

* ``tma_o`` (lever a): O leaves through shared memory and one TMA bulk store per warpgroup instead of 32 4-byte
  ``STG`` per thread.  The staging buffer is the last tile's K stage (32 KB = 2 × the 16 KB O half of a
  warpgroup): it is free once *both* warpgroups' last QK has read it, so the two warpgroups meet on a named barrier
  (id 12, 256 threads) right before writing O there.  The store is not waited for at the row end: at the next
  row's start, once its tile-0 QK is issued, the warpgroup waits until the bulk store has read the stage
  (``cp.async.bulk.wait_group.read 0``) and only then releases the stage to the producer (``empty``); after the
  last row it waits before exiting.  Rows past N are clipped by the descriptor.
* ``offs_ahead`` (lever b): the next row's (lo, hi) are loaded at this row's start (the dependent Order → Offsets
  loads overlap the row's tiles), not after the store at its end (an ``LDG`` whose result feeds ``R2UR`` at once).
* ``rcp`` (lever c): O = acc · (1 / l) with one reciprocal per query row, and a row with no kept key (whose running
  max stays −∞, so its acc is NaN) zeroed by a uniform branch instead of a select per element.
* ``pingpong``: FlashAttention-3's inter-warpgroup turns around each wgmma issue (Shah et al., "FlashAttention-3",
  arXiv 2407.08608, sec. 3.1), :mod:`fgattn.gluon_fg`'s named barriers 10 / 11, so that one warpgroup's row end
  can overlap the other's wgmmas.  Not with ``tma_o`` (its row-end meeting point would undo the offset).

The host side is :func:`fgattn.gluon_fg_list.prepare_list_call` (the same checks, row plan and Q descriptor as the
packaged entry) plus an O descriptor of the same [1, 1, 64, 128] box and 128-byte swizzle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KNOBS", "VARIANT_KNOBS", "check_epilogue_knobs", "compile_epilogue_sm90", "compile_list_pp_sm90",
           "fg_attention_gluon_epilogue", "fg_attention_gluon_list_pp", "o_desc_ok"]

#: knob -> its constexpr name in :func:`_fg_gluon_ws2e` (every knob a bool, default False)
KNOBS: dict[str, str] = {"tma_o": "TMA_O", "offs_ahead": "OFFS_AHEAD", "rcp": "RCP", "pingpong": "PINGPONG"}
#: the probe's named variants (kernels/tools/epilogue_probe.py): each lever alone, the three together, and the
#: pingpong combination (``pp``, the packaged kernel's own pingpong knob, is launched by the probe through
#: :mod:`fgattn.gluon_fg`, not by this module)
VARIANT_KNOBS: dict[str, dict[str, bool]] = {
    "e_base": dict(),
    "e_tma": dict(tma_o=True),
    "e_offs": dict(offs_ahead=True),
    "e_rcp": dict(rcp=True),
    "e_all": dict(tma_o=True, offs_ahead=True, rcp=True),
    "e_bc_pp": dict(offs_ahead=True, rcp=True, pingpong=True),
}
#: named barrier of the tma_o row-end meeting (Triton uses 0-3 for CTA / partition barriers, gluon_fg's pingpong
#: 10 and 11)
O_BAR = 12

try:  # Gluon (Triton >= 3.5); the kernel is defined only where it imports (the CPU tests need none of it)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (
        fence_async_shared,
        mbarrier,
        tma,
        warpgroup_mma,
        warpgroup_mma_wait,
    )

    from . import gluon_fg as _g

    _GLUON_ERR: str | None = _g.gluon_available()
except Exception as e:  # noqa: BLE001
    _GLUON_ERR = f"{type(e).__name__}: {e}"


def check_epilogue_knobs(**knobs: Any) -> dict[str, bool]:
    """The kernel's constexprs (``TMA_O``, ``OFFS_AHEAD``, ``RCP``, ``PINGPONG``) from the knobs (each a bool,
    default False); one ValueError line naming the knob otherwise (runs on any machine)."""
    bad = sorted(set(knobs) - set(KNOBS))
    if bad:
        _fail(f"unknown knob(s) {bad} (known: {list(KNOBS)})")
    for name, v in knobs.items():
        if not isinstance(v, bool):
            _fail(f"{name}={v!r} must be a bool")
    if knobs.get("tma_o", False) and knobs.get("pingpong", False):
        _fail("tma_o and pingpong do not combine (the O staging meets both warpgroups at every row end)")
    return {c: bool(knobs.get(k, False)) for k, c in KNOBS.items()}


def o_desc_ok(out: Any, layout: str) -> str | None:
    """None if ``out``'s (batch, head, sequence) strides are 16-byte aligned (a TMA descriptor needs it), else why
    not (one line)."""
    st = (out.stride(0), out.stride(1), out.stride(2)) if layout == "bhnd" else (out.stride(0), out.stride(2),
                                                                               out.stride(1))
    esz = out.element_size()
    if any(s * esz % 16 for s in st) or out.data_ptr() % 16:
        return f"out strides {tuple(out.stride())} / address are not 16-byte aligned (needed by the O TMA store)"
    return None


def _fail(msg: str) -> None:
    raise ValueError(f"fgattn.gluon_fg_epilogue: {msg}")


# ------------------------------------------------------------------------------------------------ kernel
if _GLUON_ERR is None:
    _BN: gl.constexpr = gl.constexpr(_g.BLOCK_N)
    _BM: gl.constexpr = gl.constexpr(_g.BLOCK_M)
    _HALF: gl.constexpr = gl.constexpr(_g.BLOCK_M // 2)
    _D: gl.constexpr = gl.constexpr(_g.HEAD_DIM)
    _ST: gl.constexpr = gl.constexpr(_g.STAGES)
    _PW: gl.constexpr = gl.constexpr(4)  # producer warps
    _CW: gl.constexpr = gl.constexpr(4)  # warps per consumer warpgroup
    _PP_BAR: gl.constexpr = gl.constexpr(10)
    _O_BAR: gl.constexpr = gl.constexpr(O_BAR)
    _softmax_p = _g._softmax_p
    _p_op = _g._p_op
    _q_next = _g._q_next
    _pp_sync = _g._pp_sync
    _pp_arrive = _g._pp_arrive
    _my_rows = _g._my_rows
    _next_row = _g._next_row
    _ws_producer = _g._ws_producer

    @gluon.jit
    def _normalize(acc, l_i, cnt, RCP: gl.constexpr):
        """O = acc / l (zeros for a row with no kept key): the packaged form (a division per element, a select per
        element) or, ``RCP``, one reciprocal per query row and a uniform branch for the empty row."""
        if RCP:
            if cnt == 0:
                out = gl.zeros_like(acc)
            else:
                out = acc * (1.0 / l_i)[:, None]
        else:
            l_safe = gl.where(l_i == 0.0, 1.0, l_i)
            out = gl.where(cnt == 0, 0.0, acc / l_safe[:, None])
        return out

    @gluon.jit
    def _store_direct(Out, out, b, h, qb2, stride_ob, stride_oh, stride_on, N_Q, S_LAYOUT: gl.constexpr):
        """O half ``qb2`` (64 query rows) by per-thread stores, rows past N_Q not stored (the store of
        :func:`fgattn.gluon_fg._store_out`)."""
        offs_m = qb2 * _HALF + gl.arange(0, _HALF, gl.SliceLayout(1, S_LAYOUT))
        offs_o = gl.arange(0, _D, gl.SliceLayout(0, S_LAYOUT))
        ptrs = (Out + b.to(gl.int64) * stride_ob + h.to(gl.int64) * stride_oh + offs_m[:, None] * stride_on
                + offs_o[None, :])
        gl.store(ptrs, out.to(Out.dtype.element_ty), mask=(offs_m < N_Q)[:, None])

    @gluon.jit
    def _store_tma(o_desc, out, k_stage, b, h, qb2, half, dtype: gl.constexpr):
        """O half ``qb2`` through shared memory: both warpgroups meet (their last QK has read the K stage), each
        writes its half into its 16 KB of the stage and issues one TMA bulk store (not waited for here: the stage
        is released by :func:`_release_after_store` at the next row's start)."""
        _pp_sync(_O_BAR)
        o_all = k_stage._reinterpret(dtype, [2] + o_desc.block_type.shape, o_desc.layout)
        o_s = o_all.index(half)
        o_s.reshape([_HALF, _D]).store(out.to(dtype))
        fence_async_shared()
        gl.thread_barrier()
        tma.async_copy_shared_to_global(o_desc, [b, h, qb2 * _HALF, 0], o_s)

    @gluon.jit
    def _release_after_store(empty, stage):
        """Wait until this warpgroup's outstanding O bulk store has read its shared memory
        (``cp.async.bulk.wait_group.read 0``), then release that K/V ``stage`` to the producer."""
        tma.store_wait(0)
        gl.thread_barrier()
        mbarrier.arrive(empty.index(stage), count=1)

    @gluon.jit
    def _ws2e_consumer(half, q_desc, o_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full, empty,
                       qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, TMA_O: gl.constexpr,
                       OFFS_AHEAD: gl.constexpr, RCP: gl.constexpr, PINGPONG: gl.constexpr):
        """One consumer warpgroup: :func:`fgattn.gluon_fg._ws2x_consumer` with ``PIPE`` 1, no fence, ``PLANNED``
        (the packaged entry's path), with the row end of the knobs (module docstring)."""
        S_LAYOUT: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[_CW, 1],
                                                           instr_shape=[16, _BN, 16])
        P_LAYOUT: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=S_LAYOUT, k_width=2)
        dtype: gl.constexpr = k_smem.dtype
        my_q = q_smem.index(half)
        my_bar = q_bar.index(half)
        q_s = my_q.reshape([_HALF, _D])
        my_turn = _PP_BAR + half
        other_turn = _PP_BAR + 1 - half
        pos, end, step, row = _my_rows(Order, Start, N_ROWS, True)
        bh = row // QB
        mbarrier.expect(my_bar, q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [bh // H, bh % H, (row % QB) * _BM + half * _HALF, 0], my_bar, my_q)
        if PINGPONG:  # warpgroup 0 takes the first turn: warpgroup 1 pre-arrives on its barrier
            if half == 1:
                _pp_arrive(other_turn)
        lo = gl.load(Offsets + row).to(gl.int32)
        hi = gl.load(Offsets + row + 1).to(gl.int32)
        it = 0
        phase = 0
        while pos < end:
            cnt = hi - lo
            n_t = gl.maximum(gl.cdiv(cnt, _BN), 1)
            pos_n = pos + step
            row_n = _next_row(Order, pos_n, end, True)
            has_next = pos_n < end
            if OFFS_AHEAD:  # the next row's range now, used at this row's end
                lo_n = gl.load(Offsets + row_n).to(gl.int32)
                hi_n = gl.load(Offsets + row_n + 1).to(gl.int32)
            bh = row // QB
            m_i = gl.full([_HALF], float("-inf"), gl.float32, gl.SliceLayout(1, S_LAYOUT))
            l_i = gl.zeros([_HALF], gl.float32, gl.SliceLayout(1, S_LAYOUT))
            acc = gl.zeros([_HALF, _D], gl.float32, S_LAYOUT)
            zero_s = gl.zeros([_HALF, _BN], gl.float32, S_LAYOUT)
            mbarrier.wait(my_bar, phase)
            # tile 0: QK alone, its softmax masked to min(cnt, BN) columns
            st = it % _ST
            mbarrier.wait(full.index(st), (it // _ST) & 1)
            if PINGPONG:
                _pp_sync(my_turn)
            s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            if PINGPONG:
                _pp_arrive(other_turn)
            if TMA_O:  # the previous row's O store, issued at its end, has had this row's start to read its stage
                if it > 0:
                    _release_after_store(empty, (it + _ST - 1) % _ST)
            s = warpgroup_mma_wait(0, deps=(s, ))
            _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next & (n_t == 1))
            p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, gl.minimum(cnt, _BN), True, S_LAYOUT, P_LAYOUT,
                                            _BN, 0, dtype)
            pc = _p_op(p, P_LAYOUT, dtype)
            prev = st
            it += 1
            for _t in range(1, n_t - 1):  # full tiles: QK(t) and PV(t-1) in flight together
                st = it % _ST
                mbarrier.wait(full.index(st), (it // _ST) & 1)
                if PINGPONG:
                    _pp_sync(my_turn)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]  # the previous tile's alpha, while this QK runs
                acc = warpgroup_mma(pc, v_smem.index(prev), acc, is_async=True)
                if PINGPONG:
                    _pp_arrive(other_turn)
                s = warpgroup_mma_wait(1, deps=(s, ))
                p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, _BN, False, S_LAYOUT, P_LAYOUT, _BN, 0, dtype)
                acc, pc, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, pc, p, alpha, m_i, l_i))
                pc = _p_op(p, P_LAYOUT, dtype)
                gl.thread_barrier()  # this warpgroup is done with the previous tile's stage
                mbarrier.arrive(empty.index(prev), count=1)
                prev = st
                it += 1
            if n_t > 1:  # the row's last (masked) tile
                st = it % _ST
                mbarrier.wait(full.index(st), (it // _ST) & 1)
                if PINGPONG:
                    _pp_sync(my_turn)
                s = warpgroup_mma(q_s, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = acc * alpha[:, None]
                acc = warpgroup_mma(pc, v_smem.index(prev), acc, is_async=True)
                if PINGPONG:
                    _pp_arrive(other_turn)
                s = warpgroup_mma_wait(1, deps=(s, ))
                _q_next(q_desc, my_bar, my_q, row_n, half, QB, H, has_next)
                p, alpha, m_i, l_i = _softmax_p(s, m_i, l_i, qk_scale, cnt - (n_t - 1) * _BN, True, S_LAYOUT,
                                                P_LAYOUT, _BN, 0, dtype)
                acc, pc, p, alpha, m_i, l_i = warpgroup_mma_wait(0, deps=(acc, pc, p, alpha, m_i, l_i))
                pc = _p_op(p, P_LAYOUT, dtype)
                gl.thread_barrier()
                mbarrier.arrive(empty.index(prev), count=1)
                prev = st
                it += 1
            # the last tile's PV
            acc = acc * alpha[:, None]
            if PINGPONG:
                _pp_sync(my_turn)
            acc = warpgroup_mma(pc, v_smem.index(prev), acc, is_async=True)
            if PINGPONG:
                _pp_arrive(other_turn)
            acc, pc = warpgroup_mma_wait(0, deps=(acc, pc))
            out = _normalize(acc, l_i, cnt, RCP)
            if TMA_O:  # O staged in the last K stage; the stage released once the bulk store has read it
                _store_tma(o_desc, out, k_smem.index(prev), bh // H, bh % H, (row % QB) * 2 + half, half, dtype)
            else:
                gl.thread_barrier()
                mbarrier.arrive(empty.index(prev), count=1)
                _store_direct(Out, out, bh // H, bh % H, (row % QB) * 2 + half, stride_ob, stride_oh, stride_on, N_Q,
                              S_LAYOUT)
            if OFFS_AHEAD:
                lo = lo_n
                hi = hi_n
            else:
                lo = gl.load(Offsets + row_n).to(gl.int32)
                hi = gl.load(Offsets + row_n + 1).to(gl.int32)
            row = row_n
            pos = pos_n
            phase ^= 1
        if TMA_O:  # the last row's O store must have read its stage before the CTA's shared memory goes away
            _release_after_store(empty, (it + _ST - 1) % _ST)
        if PINGPONG:  # warpgroup 0 consumes warpgroup 1's last hand-over (no arrival left pending at exit)
            if half == 0:
                _pp_sync(my_turn)

    @gluon.jit
    def _fg_gluon_ws2e(q_desc, o_desc, K, V, Out, Offsets, Indices, Order, Start, qk_scale,
                       stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                       stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS,
                       PRODUCER_REGS: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr,
                       TMA_O: gl.constexpr = False, OFFS_AHEAD: gl.constexpr = False, RCP: gl.constexpr = False,
                       PINGPONG: gl.constexpr = False):
        """The packaged ws2 list CTA (:func:`fgattn.gluon_fg._fg_gluon_ws2`, ``PLANNED``, pipeline 1, no fence)
        with :func:`_ws2e_consumer`'s row end: program p runs ``Order[Start[p]:Start[p + 1]]``; default partition
        = consumer half 0 (``num_warps`` 4), workers = consumer half 1 and the producer.  ``q_desc`` / ``o_desc``
        have [1, 1, 64, D] boxes."""
        gl.static_assert(num_warps == _CW)
        gl.static_assert(not (TMA_O and PINGPONG), "tma_o and pingpong do not combine")
        dtype: gl.constexpr = K.dtype.element_ty
        KV_SMEM: gl.constexpr = gl.NVMMASharedLayout.get_default_for([_BN, _D], dtype)
        q_smem = gl.allocate_shared_memory(dtype, [2] + q_desc.block_type.shape, q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [_ST, _BN, _D], KV_SMEM)
        v_smem = gl.allocate_shared_memory(dtype, [_ST, _BN, _D], KV_SMEM)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        full = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [_ST, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(q_bar.index(i), count=1)
        for i in gl.static_range(_ST):
            mbarrier.init(full.index(i), count=_PW * 32)
            mbarrier.init(empty.index(i), count=2)
        gl.warp_specialize([
            (_ws2e_consumer, (0, q_desc, o_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full,
                              empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, TMA_O, OFFS_AHEAD,
                              RCP, PINGPONG)),
            (_ws2e_consumer, (1, q_desc, o_desc, Out, Offsets, Order, Start, q_smem, k_smem, v_smem, q_bar, full,
                              empty, qk_scale, stride_ob, stride_oh, stride_on, H, N_Q, QB, N_ROWS, TMA_O, OFFS_AHEAD,
                              RCP, PINGPONG)),
            (_ws_producer, (K, V, Offsets, Indices, Order, Start, k_smem, v_smem, full, empty, stride_kb, stride_kh,
                            stride_kn, stride_vb, stride_vh, stride_vn, H, QB, N_ROWS, True)),
        ], [_CW, _PW], [CONSUMER_REGS, PRODUCER_REGS])
        for i in gl.static_range(2):
            mbarrier.invalidate(q_bar.index(i))
        for i in gl.static_range(_ST):
            mbarrier.invalidate(full.index(i))
            mbarrier.invalidate(empty.index(i))


# ------------------------------------------------------------------------------------------------ host side
def compile_epilogue_sm90(dtype: str = "bf16", **knobs: bool) -> Any:
    """Compile the kernel for sm_90 without a GPU (Triton 3.6 with Gluon on the path) with the signature
    :func:`fg_attention_gluon_epilogue` launches with (as :func:`fgattn.gluon_fg.compile_sm90`, plus the O
    descriptor, which that function does not know); ``knobs`` as :func:`check_epilogue_knobs`."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    if _GLUON_ERR is not None:
        _fail(f"this Triton has no usable Gluon Hopper API ({_GLUON_ERR})")
    if dtype not in ("bf16", "fp16"):
        _fail(f"dtype={dtype!r} must be 'bf16' or 'fp16'")
    fn = _fg_gluon_ws2e
    const = dict(check_epilogue_knobs(**knobs), PRODUCER_REGS=_g.PRODUCER_REGS, CONSUMER_REGS=_g.CONSUMER_REGS,
                 num_warps=4)
    names = list(fn.arg_names)
    lay = ("NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=4, transposed=False, "
           "fp4_padded=False, cga_layout=[])")
    ptr = {"K": f"*{dtype}", "V": f"*{dtype}", "Out": f"*{dtype}", "Offsets": "*i64", "Indices": "*i32",
           "Order": "*i32", "Start": "*i32"}
    sig: dict[str, str] = {}
    attrs: dict[tuple[int, ...], list] = {}
    for i, a in enumerate(names):
        if a in const:
            sig[a] = "constexpr"
        elif a in ("q_desc", "o_desc"):
            sig[a] = f"tensordesc<{dtype}[1, 1, 64, 128],{lay}>"
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


def fg_attention_gluon_epilogue(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                                sm_scale: float | None = None, out: Any = None, plan: Any = None,
                                programs: int | None = None, **knobs: bool) -> Any:
    """:func:`fgattn.fg_attention` for fg D128 M128 gran 1 on sm_90 by this module's CTA over a row plan
    (:func:`fgattn.gluon_fg_list.plan_ws2_list`; built here if ``plan`` is None, which reads the row counts on the
    host and so cannot run under CUDA-graph capture).  Same output as the packaged entry (q's layout and dtype;
    zeros for a query block with no kept key).  ``knobs``: ``tma_o``, ``offs_ahead``, ``rcp``, ``pingpong``
    (module docstring).  ``programs``: grid size when the plan is built here (default the SM count)."""
    meta = check_epilogue_knobs(**knobs)
    from .gluon_fg_list import prepare_list_call

    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=programs, fail=_fail)
    o_desc = q_desc
    if meta["TMA_O"]:
        why = o_desc_ok(out, layout)
        if why is not None:
            _fail(why)
        from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

        o_desc = TensorDescriptor(out, [p.batch, p.heads, p.n_q, _g.HEAD_DIM], [*_g._strides(out, layout), 1],
                                  list(q_desc.block_shape), q_desc.layout)
    st = _g._strides
    _fg_gluon_ws2e[(plan.programs,)](
        q_desc, o_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows, **meta,
        PRODUCER_REGS=_g.PRODUCER_REGS, CONSUMER_REGS=_g.CONSUMER_REGS, num_warps=4)
    return out


def _list_pp_constexprs() -> dict[str, Any]:
    """The packaged list kernel's constexprs (``fgattn.gluon_fg_list``) with its own ``PINGPONG`` knob on."""
    from .gluon_fg_list import _constexprs

    return {**_constexprs(), "PINGPONG": True}


def compile_list_pp_sm90(dtype: str = "bf16") -> Any:
    """The packaged list kernel with pingpong (:func:`fg_attention_gluon_list_pp`) compiled for sm_90 offline."""
    return _g.compile_sm90(_g._fg_gluon_ws2, _list_pp_constexprs(), dtype, _g.BLOCK_M, _g.HEAD_DIM, ws2=True)


def fg_attention_gluon_list_pp(q: Any, k: Any, v: Any, index: Any, *, layout: str = "bhnd",
                               sm_scale: float | None = None, out: Any = None, plan: Any = None,
                               programs: int | None = None) -> Any:
    """The packaged list kernel (:func:`fgattn.gluon_fg_list.fg_attention_gluon_list`) with
    :mod:`fgattn.gluon_fg`'s ``pingpong`` knob on (the probe's ``pp`` variant; the same row plan)."""
    from .gluon_fg_list import prepare_list_call

    p, plan, out, q_desc, scale = prepare_list_call(q, k, v, index, layout=layout, sm_scale=sm_scale, out=out,
                                                    plan=plan, programs=programs, fail=_fail)
    st = _g._strides
    _g._fg_gluon_ws2[(plan.programs,)](
        q_desc, k, v, out, index.offsets, index.indices, plan.rows, plan.start, scale * 1.4426950408889634,
        *st(k, layout), *st(v, layout), *st(out, layout), p.heads, p.n_q, p.n_qblocks, p.n_rows,
        **_list_pp_constexprs())
    return out
