"""FG-Attn, block-sparse and dense attention under context parallelism (Ulysses all-to-all, ring with LSE merge).

Tensors are ``(B, S, H, D)`` (diffusers' layout, fgattn's ``bnhd``); each rank holds the sequence shard
``[r·S/P, (r+1)·S/P)`` (diffusers' equipartition).

* :func:`ulysses_attention`: the collectives of diffusers' ``TemplatedUlyssesAttention`` (one all-to-all each for
  q, k, v: sequence shards → heads ``[r·H/P, (r+1)·H/P)`` over the whole sequence; attention; one all-to-all
  back), with the same permute copies, so its cost is what diffusers' Ulysses costs. The attention callable
  sees whole heads, so each rank predicts masks and builds the FG index for its own heads.
* :func:`ring_attention`: diffusers' ``TemplatedRingAttention`` schedule: k and v all-gathered once (one
  all-gather each), then rank r's queries attend each key chunk (own chunk first) and the partial outputs merge
  through their log-sum-exps (``fgattn``'s ``return_lse=True``) in one fused kernel per merge
  (``fgattn.merge_attention_``, float32 inside; torch on the CPU). Key chunks start on multiples of the kernel's
  key tile (M for block-sparse, whose M×M blocks are never cut; the last chunk of a shard then ends in a
  partial, masked block); queries whose first row splits a query block (``S/P`` not a multiple of M) are padded
  in front once, so every query row keeps exactly the keys of its global block in one kernel call per chunk.
* :class:`MaskedAttention`: the per-rank kernels (fgattn ``fg`` / ``block`` / ``dense``, or a float32 torch
  reference for CPU tests) driven by a global slice mask ``(B, H, QB, S)``.
* :func:`enable_context_parallel`: makes an :class:`~fgsim.integrations.diffusers.FgAttnState` (from
  ``enable_fgattn``) work on a transformer after diffusers' ``enable_parallelism(ContextParallelConfig(...))``.
  diffusers' context parallelism runs inside its attention *backends* (``dispatch_attention_fn``), which FG-Attn's
  processor does not call, so the wrapper does the all-to-all (or the ring) itself at the processor level, on the
  process group of diffusers' context-parallel mesh; diffusers still shards the sequence at the model's input and
  gathers it at the output through the model's ``_cp_plan``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fgsim.errors import FgsimError

if TYPE_CHECKING:
    import torch

HeadsFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor", range], "torch.Tensor"]
ShardFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor", tuple[int, int], tuple[int, int]],
                   tuple["torch.Tensor", "torch.Tensor"]]


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def world(group: Any = None) -> tuple[int, int]:
    """(rank, size) in ``group`` (the default group if None)."""
    dist = _dist()
    return dist.get_rank(group), dist.get_world_size(group)


# --------------------------------------------------------------------------------------------------------------------
# collectives with diffusers' layouts


def _a2a(x: torch.Tensor, group: Any) -> torch.Tensor:
    """All-to-all of a contiguous tensor split along dim 0 in ``P`` equal chunks."""
    import torch

    out = torch.empty_like(x)
    _dist().all_to_all_single(out, x, group=group)
    return out


def heads_pack(x: torch.Tensor, p: int) -> torch.Tensor:
    """Ulysses' copy before the q/k/v all-to-all: ``(B, S/P, H, D)`` → contiguous ``(P, S/P, B, H/P, D)``."""
    b, sl, h, d = x.shape
    return x.reshape(b, sl, p, h // p, d).permute(2, 1, 0, 3, 4).contiguous()


def heads_unpack(x: torch.Tensor) -> torch.Tensor:
    """The copy after it: ``(P, S/P, B, H/P, D)`` → ``(B, S, H/P, D)``."""
    return x.flatten(0, 1).permute(1, 0, 2, 3).contiguous()


def seq_pack(x: torch.Tensor, p: int) -> torch.Tensor:
    """The copy before the output all-to-all: ``(B, S, H/P, D)`` → contiguous ``(P, H/P, B, S/P, D)``."""
    b, s, hl, d = x.shape
    return x.reshape(b, p, s // p, hl, d).permute(1, 3, 0, 2, 4).contiguous()


def seq_unpack(x: torch.Tensor) -> torch.Tensor:
    """The copy after it: ``(P, H/P, B, S/P, D)`` → ``(B, S/P, H, D)``."""
    return x.flatten(0, 1).permute(1, 2, 0, 3).contiguous()


def seq_to_heads(x: torch.Tensor, group: Any = None) -> torch.Tensor:
    """``(B, S/P, H, D)`` sequence shard → ``(B, S, H/P, D)`` this rank's heads over the whole sequence."""
    _, p = world(group)
    h = x.shape[2]
    if h % p:
        raise FgsimError(f"Ulysses degree {p} must divide the {h} attention heads")
    return heads_unpack(_a2a(heads_pack(x, p), group))


def heads_to_seq(x: torch.Tensor, group: Any = None) -> torch.Tensor:
    """Inverse of :func:`seq_to_heads`: ``(B, S, H/P, D)`` → ``(B, S/P, H, D)``."""
    _, p = world(group)
    return seq_unpack(_a2a(seq_pack(x, p), group))


def all_gather_seq(x: torch.Tensor, group: Any = None) -> torch.Tensor:
    """``(B, S/P, ...)`` shards → ``(B, S, ...)`` in rank order."""
    import torch

    _, p = world(group)
    if p == 1:
        return x
    flat = x.contiguous()
    buf = torch.empty((p, *flat.shape), dtype=flat.dtype, device=flat.device)
    dist = _dist()
    fused = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # torch >= 2.13 renames it
    try:
        fused(buf, flat, group=group)
    except (RuntimeError, NotImplementedError, AttributeError):  # backends without the fused form (old gloo)
        dist.all_gather(list(buf.unbind(0)), flat, group=group)
    return torch.cat(list(buf.unbind(0)), dim=1)


def merge_partial(out: torch.Tensor, lse: torch.Tensor, out2: torch.Tensor, lse2: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two partial attentions over disjoint key sets: float32 ``out (B, S, H, D)``, ``lse (B, H, S)``.

    Rows with no kept key have ``lse = −inf`` and zero output; the merge keeps them exact (no NaN).
    """
    import torch

    m = torch.maximum(lse, lse2)
    m_safe = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    w1 = torch.exp(lse - m_safe)
    w2 = torch.exp(lse2 - m_safe)
    tot = w1 + w2
    lse_new = torch.where(tot > 0, m_safe + torch.log(tot), torch.full_like(m, -math.inf))
    inv = torch.where(tot > 0, 1.0 / tot, torch.zeros_like(tot))
    a = (w1 * inv).transpose(1, 2).unsqueeze(-1)  # (B, S, H, 1)
    c = (w2 * inv).transpose(1, 2).unsqueeze(-1)
    return out * a + out2 * c, lse_new


def ulysses_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn: HeadsFn, group: Any = None
                      ) -> torch.Tensor:
    """Ulysses context-parallel attention of local shards ``(B, S/P, H, D)``; ``attn(q, k, v, heads)`` gets
    ``(B, S, H/P, D)`` and the global head range of this rank. Returns the local output shard."""
    r, p = world(group)
    h = int(q.shape[2])
    qf, kf, vf = (seq_to_heads(x, group) for x in (q, k, v))
    g = h // p
    out = attn(qf, kf, vf, range(r * g, (r + 1) * g))
    return heads_to_seq(out.contiguous(), group)


def ring_gather_kv(k: torch.Tensor, v: torch.Tensor, group: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ring's collectives: k and v of every rank, each ``(P, B, S/P, H, D)`` in rank order (one all-gather
    each; no stacking copy). For ``B = 1`` each is the whole sequence, contiguous, so any key range is a view
    (:func:`key_range`)."""
    import torch

    _, p = world(group)
    if p == 1:
        return k.unsqueeze(0), v.unsqueeze(0)
    dist = _dist()
    fused = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    outs = []
    for x in (k, v):
        x = x.contiguous()
        buf = torch.empty((p, *x.shape), dtype=x.dtype, device=x.device)
        try:
            fused(buf, x, group=group)
        except (RuntimeError, NotImplementedError, AttributeError):
            dist.all_gather(list(buf.unbind(0)), x, group=group)
        outs.append(buf)
    return outs[0], outs[1]


def key_range(x_all: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Keys ``[start, end)`` of a gathered ``(P, B, S/P, H, D)`` tensor as ``(B, end − start, H, D)``: a view
    when the range lies in one shard or ``B = 1``, else a copy."""
    p, b, sl = (int(x) for x in x_all.shape[:3])
    j = start // sl
    if end <= (j + 1) * sl:
        return x_all[j][:, start - j * sl:end - j * sl]
    if b == 1:
        return x_all.reshape(1, p * sl, *x_all.shape[3:])[:, start:end]
    return x_all.transpose(0, 1).reshape(b, p * sl, *x_all.shape[3:])[:, start:end]


def _fused_merge_ok(x: torch.Tensor) -> bool:
    import os

    return x.dtype != _torch().float64 and (x.device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1")


def _torch() -> Any:
    import torch

    return torch


def ring_compute(q: torch.Tensor, kv_all: tuple[torch.Tensor, torch.Tensor], attn: ShardFn, rank: int,
                 degree: int, *, query_align: int = 1, key_align: int = 1, fused: bool | None = None
                 ) -> torch.Tensor:
    """The ring's compute: rank ``rank``'s queries against each key chunk of the gathered ``kv_all``
    (:func:`ring_gather_kv`; own chunk first, diffusers' order), merged through their log-sum-exps.

    ``key_align``: key chunks start on multiples of it (:func:`fgsim.parallel.key_chunks`; the block-sparse
    kernel's M×M blocks are never cut). ``query_align``: the queries are copied once behind a zero pad so they
    start on a multiple of it (a query block split between ranks runs inside the one kernel call); ``attn`` then
    gets the padded queries with the real ``rows`` and returns outputs for all of them. ``fused``: merge with
    ``fgattn.merge_attention_`` (one kernel per merge, float32 inside; default: on CUDA), else in torch
    (float32, float64 for float64 inputs)."""
    import torch

    from fgsim.parallel import key_chunks

    sl = int(q.shape[1])
    rows = (rank * sl, (rank + 1) * sl)
    pad = rows[0] % query_align if query_align > 1 else 0
    if pad:
        qp = q.new_empty((q.shape[0], pad + sl, *q.shape[2:]))
        qp[:, :pad].zero_()
        qp[:, pad:].copy_(q)
    else:
        qp = q
    k_all, v_all = kv_all
    n_tok = sl * degree
    chunks = key_chunks(n_tok, degree, key_align)
    fused = _fused_merge_ok(q) if fused is None else fused
    acc_t = torch.float64 if q.dtype == torch.float64 else torch.float32
    order = [c for c in ((rank + i) % degree for i in range(degree)) if chunks[c][1] > chunks[c][0]]
    out = lse = None
    for i, j in enumerate(order):
        ks, ke = chunks[j]
        o, s = attn(qp, key_range(k_all, ks, ke), key_range(v_all, ks, ke), rows, (ks, ke))
        if pad:
            o, s = o[:, pad:], s[:, :, pad:]
        if out is None:
            out, lse = o, s
            continue
        if fused:
            import fgattn

            want = q.dtype if i == len(order) - 1 else torch.float32  # float32 between merges, q's dtype last
            dst = out if out.dtype == want and out.is_contiguous() else \
                torch.empty(q.shape, dtype=want, device=q.device)
            out, lse = fgattn.merge_attention_(out, lse, o, s, out=dst)  # lse merged in place
        else:
            out, lse = merge_partial(out.to(acc_t), lse.to(acc_t), o.to(acc_t), s.to(acc_t))
    assert out is not None
    return out if out.dtype == q.dtype and out.is_contiguous() else out.to(q.dtype).contiguous()


def ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn: ShardFn, group: Any = None, *,
                   query_align: int = 1, key_align: int = 1) -> torch.Tensor:
    """Ring context-parallel attention of local shards ``(B, S/P, H, D)`` (k, v all-gathered, own chunk first,
    LSE merge; :func:`ring_compute`). ``attn(q, k_j, v_j, rows, keys)`` returns ``(out, lse (B, H, rows))`` for
    this rank's query rows ``rows = (start, end)`` against the key chunk ``keys = (start, end)`` (global
    positions); with ``query_align`` > 1 its ``q`` is padded in front to start on a multiple of it (outputs for
    the padded rows too)."""
    r, p = world(group)
    return ring_compute(q, ring_gather_kv(k, v, group), attn, r, p, query_align=query_align, key_align=key_align)


# --------------------------------------------------------------------------------------------------------------------
# per-rank kernels from a global mask


def torch_attention_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor | None = None,
                        scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 (float64 for float64 inputs) reference: ``(out (B, S_q, H, D), lse (B, H, S_q))``; ``keep``: bool
    ``(B, H, S_q, S_k)`` per query row (None = dense); rows with no kept key give 0 and −inf."""
    import torch

    dt = torch.float64 if q.dtype == torch.float64 else torch.float32
    qh, kh, vh = (x.transpose(1, 2).to(dt) for x in (q, k, v))
    sc = (q.shape[-1] ** -0.5) if scale is None else scale
    s = torch.einsum("bhqd,bhkd->bhqk", qh, kh) * sc
    if keep is not None:
        s = s.masked_fill(~keep, -math.inf)
    lse = torch.logsumexp(s, dim=-1)
    pr = torch.exp(s - torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[..., None])
    out = torch.einsum("bhqk,bhkd->bhqd", pr, vh)
    return out.transpose(1, 2), lse


@dataclass
class MaskedAttention:
    """One attention call's kernels for the context-parallel wrappers, from a global slice mask.

    ``kernel``: ``fg`` | ``block`` | ``dense`` (fgattn) or ``torch`` (float32 reference, CPU). ``mask``: bool
    ``(B, H, QB, S)`` of the whole call at query block ``block_m`` (None for dense). ``index_cache``: per
    (heads | rows, keys) FG indices, built once and reused across calls (FG-Attn reuses masks between steps).
    """

    kernel: str
    mask: torch.Tensor | None = None
    block_m: int = 64
    gran_n: int = 1
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.kernel not in ("fg", "block", "dense", "torch"):
            raise FgsimError(f"unknown kernel {self.kernel!r}: fg, block, dense or torch")
        if self.kernel in ("fg", "block") and self.mask is None:
            raise FgsimError(f"the {self.kernel} kernel needs a mask")
        self.index_cache: dict[Any, Any] = {}

    # -- index building --------------------------------------------------------------------------------
    def _index(self, key: Any, mask: torch.Tensor, n_keys: int) -> Any:
        import fgattn

        hit = self.index_cache.get(key)
        if hit is None:
            if self.kernel == "fg":
                hit = fgattn.build_index(mask.contiguous(), block_m=self.block_m, gran_n=self.gran_n)
            else:
                hit = fgattn.block_index_from_mask(mask.contiguous(), block_m=self.block_m, n_keys=n_keys)
            self.index_cache[key] = hit
        return hit

    def _run(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, key: Any,
             lse: bool) -> Any:
        """One kernel call on ``(B, S_q, H, D)`` with ``mask`` (B, H, ⌈S_q/M⌉, S_k) aligned to q's first row."""
        if self.kernel == "torch":
            keep = None
            if mask is not None:
                keep = mask.repeat_interleave(self.block_m, dim=2)[:, :, :q.shape[1]]
            o, s = torch_attention_lse(q, k, v, keep, self.scale)
            return (o.to(q.dtype), s) if lse else o.to(q.dtype)
        import fgattn

        q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
        kw = {"layout": "bnhd", "sm_scale": self.scale}
        if lse:
            kw["return_lse"] = True
        if self.kernel == "dense":
            return fgattn.dense_attention(q, k, v, **kw)
        idx = self._index(key, mask, int(k.shape[1]))
        if self.kernel == "fg":
            return fgattn.fg_attention(q, k, v, idx, block_m=self.block_m, gran_n=self.gran_n, **kw)
        return fgattn.block_sparse_attention(q, k, v, idx, block_m=self.block_m, **kw)

    # -- the two wrapper contracts ---------------------------------------------------------------------
    def heads(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: range) -> torch.Tensor:
        """Ulysses: whole-sequence attention of the heads ``heads`` (the rank builds their index)."""
        mask = None if self.mask is None else self.mask[:, heads.start:heads.stop]
        return self._run(q, k, v, mask, ("heads", heads.start, heads.stop), lse=False)

    @property
    def query_align(self) -> int:
        """Ring: pad the queries to start on a multiple of this (M for masked kernels: a query block split
        between ranks stays one block of the kernel call; 1 for dense)."""
        return 1 if self.mask is None else self.block_m

    @property
    def key_align(self) -> int:
        """Ring: key chunks start on multiples of this (block: M, whose M×M blocks cannot be cut; fg: gran_n)."""
        if self.mask is None:
            return 1
        return self.block_m if self.kernel == "block" else (self.gran_n if self.kernel == "fg" else 1)

    def shard(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rows: tuple[int, int],
              keys: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ring: query rows ``rows`` against the key chunk ``keys``: ``(out, lse)`` for the rows of ``q``.

        ``q`` holds the rows ``rows``, or (padded by :func:`ring_compute`) the rows from the start of the query
        block of ``rows[0]``; unpadded queries whose first row splits a block are padded here (one copy)."""
        qs, qe = rows
        ks, ke = keys
        m = self.block_m
        if self.mask is None and self.kernel in ("dense", "torch"):
            return self._run(q, k, v, None, None, lse=True)
        if self.kernel == "block" and ks % m:
            raise FgsimError(f"block-sparse ring attention needs key chunks on multiples of M={m} "
                             f"(chunk starts at {ks}); ring_attention(..., key_align=M) gives them")
        if self.kernel == "fg" and self.gran_n > 1 and ks % self.gran_n:
            raise FgsimError(f"FG ring attention with gran_n={self.gran_n} needs key chunks on multiples of it")
        q0 = qs // m * m
        pad = qs - q0
        if pad and q.shape[1] == qe - qs:  # not padded by the caller
            qp = q.new_zeros((q.shape[0], pad + q.shape[1], *q.shape[2:]))
            qp[:, pad:] = q
            o, s = self.shard(qp, k, v, rows, keys)
            return o[:, pad:], s[:, :, pad:]
        if q.shape[1] != qe - q0:
            raise FgsimError(f"ring shard: q has {q.shape[1]} rows, expected {qe - qs} or {qe - q0} (padded)")
        mk = self.mask[:, :, q0 // m:-(-qe // m), ks:ke]
        return self._run(q, k, v, mk, ("shard", q0, qe, ks, ke), lse=True)


# --------------------------------------------------------------------------------------------------------------------
# diffusers: FG-Attn's processors under enable_parallelism


def cp_group(transformer: Any) -> tuple[str, Any]:
    """(scheme, process group) of diffusers' context-parallel config on ``transformer``, or ("", None)."""
    pc = getattr(transformer, "_parallel_config", None)
    cp = getattr(pc, "context_parallel_config", None)
    if cp is None or (getattr(cp, "_world_size", 1) or 1) <= 1:
        return "", None
    if cp.ring_degree > 1 and cp.ulysses_degree > 1:
        raise FgsimError("FG-Attn under context parallelism supports ulysses_degree or ring_degree, not both")
    if cp.ulysses_degree > 1:
        return "ulysses", cp._ulysses_mesh.get_group()
    return "ring", cp._ring_mesh.get_group()


def enable_context_parallel(state: Any, transformer: Any | None = None) -> str:
    """Route an ``FgAttnState``'s attention through Ulysses or ring on ``transformer``'s diffusers CP mesh.

    Call after ``transformer.enable_parallelism(config=ContextParallelConfig(...))`` and ``enable_fgattn``.
    Ulysses: each rank gets its heads over the whole sequence and runs the state's own ``attend`` (predictor,
    index cache, kernel) on them. Ring: the state's mask (predictor or ``mask_fn``) is computed on the
    all-gathered q, k at recompute steps (one extra all-gather of q), split per key shard, and merged by LSE.
    Returns the scheme ("" when the transformer is not context-parallel: nothing changes).
    """
    tr = transformer or state.transformer
    scheme, group = cp_group(tr)
    if not scheme:
        return ""
    base = state.attend
    if getattr(base, "_fgsim_cp", False):
        return scheme
    for proc in getattr(state, "saved", {}).values():  # dense calls run the original processors: they need the
        if hasattr(proc, "_parallel_config") and proc._parallel_config is None:  # config too (any enable order)
            proc._parallel_config = tr._parallel_config

    # ``parallel_config`` (diffusers' config, passed by the processors) is consumed here: the state's own attend
    # then sees whole-sequence tensors, as on one GPU
    if scheme == "ulysses":
        def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int, key_mask: Any = None,
                   scale: float | None = None, parallel_config: Any = None) -> torch.Tensor:
            if key_mask is not None:
                key_mask = all_gather_seq(key_mask, group)
            return ulysses_attention(q, k, v, lambda qf, kf, vf, hs: base(qf, kf, vf, layer, key_mask, scale),
                                     group)
    else:
        rings: dict[Any, tuple[int, MaskedAttention]] = {}

        def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int, key_mask: Any = None,
                   scale: float | None = None, parallel_config: Any = None) -> torch.Tensor:
            return _ring_attend(state, rings, group, q, k, v, layer, key_mask, scale)

    attend._fgsim_cp = True  # type: ignore[attr-defined]
    state.attend = attend
    return scheme


def _ring_attend(state: Any, rings: dict[Any, tuple[int, MaskedAttention]], group: Any, q: torch.Tensor,
                 k: torch.Tensor, v: torch.Tensor, layer: int, key_mask: Any, scale: float | None) -> torch.Tensor:
    from fgsim.integrations.diffusers import SPARSE_BACKENDS, CallContext

    s = state.schedule
    step = max(state.step, 0)
    backend = s.backend if s.sparse_at(step, layer) else s.dense_backend
    if key_mask is not None:
        raise FgsimError("ring attention with a key-padding mask is not supported; use Ulysses")
    ctx = CallContext(layer, step, state.branch, state.pass_index, None, scale, backend)
    if backend not in SPARSE_BACKENDS:
        if backend != "dense" and q.device.type == "cuda":
            raise FgsimError(f"ring attention runs fg, block or dense (fgattn kernels with LSE), not {backend!r}")
        # on the CPU the other dense backends run the float32 reference (tests)
        ma = MaskedAttention("dense" if backend == "dense" else "torch", scale=scale)
    else:
        key = (layer, state.branch if s.cfg == "separate" else "*")
        hit = rings.get(key)
        due = s.recompute is None or step in s.recompute
        if hit is None or (due and hit[0] != step) or hit[1].mask is None or hit[1].mask.shape[0] != q.shape[0]:
            qf, kf = all_gather_seq(q, group), all_gather_seq(k, group)
            qh, kh = qf.transpose(1, 2), kf.transpose(1, 2)
            mask = state.mask_fn(qh, kh, ctx) if state.mask_fn is not None else state.predictor(qh, kh, None, scale)
            if not hasattr(mask, "dtype"):
                raise FgsimError("ring attention needs a bool mask from the predictor / mask_fn, not an index")
            ctx.predicted = True
            hit = (step, MaskedAttention(backend, mask, s.block_m, s.gran_n, scale))
            rings[key] = hit
        ma = hit[1]
    out = ring_attention(q, k, v, ma.shard, group, query_align=ma.query_align, key_align=ma.key_align)
    if state.record:
        state.log.append((state.pass_index, step, state.branch, layer, backend, None, ctx.predicted))
    return out
