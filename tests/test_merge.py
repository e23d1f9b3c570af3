"""fgattn.merge_attention_ (Triton interpreter): the fused LSE merge of two partial attentions equals attention over
the union of the key sets (float64 reference), in place, with −inf rows, for fp16 / fp32 partials."""

from __future__ import annotations

import math
import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "kernels")]


def _partial(q: object, k: object, v: object, keep: object) -> tuple[object, object]:
    """float64 (out (B, S, H, D), lse (B, H, S)) of q against the kept keys (rows with none: 0, −inf)."""
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~keep, -math.inf)
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[..., None])
    return torch.einsum("bhqk,bkhd->bqhd", p, v), lse


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float16, 2e-3)])
def test_merge_matches_union_float64(dtype: object, tol: float) -> None:
    assert os.environ["TRITON_INTERPRET"] == "1"
    from fgattn.merge import merge_attention_

    seed = 23
    print(f"seed {seed}")
    g = torch.Generator().manual_seed(seed)
    b, s, h, d, n = 2, 5, 3, 16, 12
    q, k, v = (torch.randn(b, x, h, d, generator=g, dtype=torch.float64) for x in (s, n, n))
    keep = torch.rand(b, h, s, n, generator=g) < 0.5
    keep[0, 1, 2] = False  # a row with no kept key at all: 0 and −inf on both sides
    keep[1, 0, 3, :6] = False  # a row with keys only in the second half: −inf on side a
    keep[1, 2, 4, 6:] = False  # and only in the first half: −inf on side b
    ref, ref_lse = _partial(q, k, v, keep)
    oa, la = _partial(q, k[:, :6], v[:, :6], keep[..., :6])
    ob, lb = _partial(q, k[:, 6:], v[:, 6:], keep[..., 6:])
    assert not torch.isfinite(la[1, 0, 3]) and not torch.isfinite(lb[1, 2, 4])
    oa, ob = oa.to(dtype), ob.to(dtype)
    # the −inf side's rows are never read: poison them (an unwritten kernel output)
    oa[1, 3, 0] = float("nan")
    ob[1, 4, 2] = float("inf")
    la32, lb32 = la.float(), lb.float()
    out, lse = merge_attention_(oa, la32, ob, lb32)  # in place into oa / la32
    assert out.data_ptr() == oa.data_ptr() and lse.data_ptr() == la32.data_ptr()
    assert torch.isfinite(out).all()
    err = float((out.double() - ref).norm() / ref.norm())
    assert err < tol, err
    assert float(out[0, 2, 1].abs().max()) == 0.0 and lse[0, 1, 2] == -math.inf
    fin = torch.isfinite(ref_lse)
    assert torch.allclose(lse.double()[fin], ref_lse[fin], atol=1e-5)
    # a separate output of another dtype (float32 accumulator), strided views (a slice of the sequence)
    oa2, la2 = _partial(q, k[:, :6], v[:, :6], keep[..., :6])
    big = torch.zeros(b, s + 3, h, d, dtype=torch.float32)
    dst = big[:, 3:]
    la2 = la2.float()
    merge_attention_(oa2.to(dtype), la2, ob.to(dtype), lb.float(), out=dst)
    assert float(big[:, :3].abs().max()) == 0.0  # nothing outside the view written
    assert float((dst.double() - ref).norm() / ref.norm()) < tol


def test_merge_rejects_bad_input() -> None:
    from fgattn.merge import merge_attention_, merge_bytes

    o = torch.zeros(1, 4, 2, 16)
    lse = torch.zeros(1, 2, 4)
    with pytest.raises(ValueError, match="lse_b"):
        merge_attention_(o, lse, o, lse.double())
    with pytest.raises(ValueError, match="out_b"):
        merge_attention_(o, lse, torch.zeros(1, 4, 2, 8), lse)
    assert merge_bytes(10, 128, 2, 2, 2) == 10 * (128 * 6 + 12)


@pytest.mark.parametrize("degree, align", [(2, 1), (2, 4), (3, 4)])
def test_ring_compute_fused_merge_equals_one_process(degree: int, align: int) -> None:
    """Every rank's ring (key chunks aligned to ``align``, queries padded to blocks of 4, fused merges in the
    interpreter) gives the one-process masked attention of its rows."""
    from fgsim.integrations.context_parallel import MaskedAttention, ring_compute

    seed = 31 + degree + align
    print(f"seed {seed}")
    g = torch.Generator().manual_seed(seed)
    b, h, d, m = 1, 2, 16, 4
    s = 9 * degree  # S/P = 9: query blocks of 4 straddle the ranks
    q, k, v = (torch.randn(b, s, h, d, generator=g) for _ in range(3))
    mask = torch.rand(b, h, -(-s // m), s, generator=g) < 0.4
    mask[:, 0, 1] = False  # a query block with no kept key
    ref = MaskedAttention("torch", mask.clone(), block_m=m).heads(q.double(), k.double(), v.double(), range(h))
    sl = s // degree
    k_all = k.reshape(b, degree, sl, h, d).transpose(0, 1).contiguous()
    v_all = v.reshape(b, degree, sl, h, d).transpose(0, 1).contiguous()
    for r in range(degree):
        ma = MaskedAttention("torch", mask, block_m=m)
        out = ring_compute(q[:, r * sl:(r + 1) * sl].contiguous(), (k_all, v_all), ma.shard, r, degree,
                           query_align=ma.query_align, key_align=align, fused=True)
        want = ref[:, r * sl:(r + 1) * sl]
        err = float((out.double() - want).norm() / want.norm())
        assert out.dtype == torch.float32 and err < 1e-5, (r, err)
