"""Context parallelism: partitioning (heads / key shards → per-rank counts), the communication model, the balanced
head assignment, and (gloo, 2 CPU processes) the Ulysses / ring wrappers against one process."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

from fgsim.errors import FgsimError
from fgsim.parallel import (
    CommCost,
    CpPlan,
    Link,
    balanced_heads,
    block_rows,
    coarsen_queries,
    comm_cost,
    imbalance,
    ring_counts,
    sequence_shards,
    tile_counts,
    ulysses_counts,
    ulysses_heads,
)

LINK = Link(alltoall_busbw_gbs=100.0, allgather_busbw_gbs=200.0, p2p_bw_gbs=50.0, latency_us=10.0, copy_gbs=1000.0)


def test_plan_parse() -> None:
    assert CpPlan.parse("Ulysses:4") == CpPlan("ulysses", 4)
    assert CpPlan.parse("ring:2").describe() == "ring:2"
    for bad in ("ulysses", "tp:2", "ring:x", "ring:0"):
        with pytest.raises(FgsimError):
            CpPlan.parse(bad)


def test_ulysses_heads_and_counts() -> None:
    assert ulysses_heads(12, 4) == [range(0, 3), range(3, 6), range(6, 9), range(9, 12)]
    with pytest.raises(FgsimError):
        ulysses_heads(12, 5)
    c = np.arange(12).reshape(4, 3)
    parts = ulysses_counts(c, 2)
    assert [p.tolist() for p in parts] == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]
    parts = ulysses_counts(c, 2, assignment=[[0, 3], [1, 2]])
    assert parts[0].tolist() == [[0, 1, 2], [9, 10, 11]]


def test_sequence_shards_and_blocks() -> None:
    assert sequence_shards(12, 3) == [(0, 4), (4, 8), (8, 12)]
    with pytest.raises(FgsimError):
        sequence_shards(10, 4)
    assert block_rows(6, 12, 4) == (1, 3)  # rows 6..11 touch blocks 1 and 2
    assert block_rows(8, 12, 4) == (2, 3)


def test_tile_and_ring_counts_by_hand() -> None:
    # 1 head, N = 8 tokens, M = 2 (4 query blocks), P = 2 (shards [0,4) and [4,8))
    mask = np.zeros((1, 4, 8), bool)
    mask[0, 0, [0, 1, 5]] = True  # block 0 (rank 0): 2 keys in shard 0, 1 in shard 1
    mask[0, 1, [7]] = True  # block 1 (rank 0): 0 / 1
    mask[0, 2, [2, 3, 4, 6]] = True  # block 2 (rank 1): 2 / 2
    mask[0, 3, :] = True  # block 3 (rank 1): 4 / 4
    rc = ring_counts(mask, 2, 2)
    assert rc[0][0].tolist() == [[2, 0]] and rc[0][1].tolist() == [[1, 1]]
    assert rc[1][0].tolist() == [[2, 4]] and rc[1][1].tolist() == [[2, 4]]
    # all shards together give back the per-row counts
    tot = np.concatenate([rc[0][0] + rc[0][1], rc[1][0] + rc[1][1]], axis=1)
    assert tot.tolist() == [mask[0].sum(1).tolist()]
    # tiles of 2 keys, aligned to each shard start
    assert tile_counts(mask[0, 2, 4:8], 2) == 2  # keys 4 and 6: two tiles
    assert tile_counts(mask[0, 0, 0:4], 2) == 1
    rc2 = ring_counts(mask, 2, 2, n=2)
    assert rc2[1][1].tolist() == [[2, 2]]
    # shards starting at 3 with 2-key tiles: the key chunks move the boundary down to 2, the tiles stay global
    rng = np.random.default_rng(5)
    print("seed 5")
    m6 = rng.random((2, 3, 6)) < 0.5
    rc3 = ring_counts(m6, 2, 2, n=2)
    assert rc3[0][0].shape == (2, 2) and rc3[1][0].shape == (2, 2)  # rank 1 touches blocks 1 and 2 (split block 1)
    assert (rc3[0][0] + rc3[0][1]).tolist() == tile_counts(m6[:, 0:2], 2).tolist()
    assert (rc3[1][0] + rc3[1][1]).tolist() == tile_counts(m6[:, 1:3], 2).tolist()


def test_key_chunks() -> None:
    from fgsim.parallel import key_chunks

    assert key_chunks(12, 3, 1) == [(0, 4), (4, 8), (8, 12)] == key_chunks(12, 3, 4)
    assert key_chunks(10, 2, 4) == [(0, 4), (4, 10)]  # the last chunk ends in a partial block of 2
    assert key_chunks(4, 2, 4) == [(0, 0), (0, 4)]  # tile longer than a shard: an empty chunk
    assert key_chunks(32760, 2, 128) == [(0, 16256), (16256, 32760)]


def test_ring_counts_split_block() -> None:
    # N = 6, M = 4: blocks [0,4) and [4,6); P = 2 shards [0,3), [3,6): block 0 is split between ranks
    mask = np.ones((1, 2, 6), bool)
    rc = ring_counts(mask, 4, 2)
    assert rc[0][0].shape == (1, 1) and rc[1][0].shape == (1, 2)  # rank 1 touches blocks 0 and 1
    assert rc[1][1].tolist() == [[3, 3]]


def test_coarsen_queries() -> None:
    m = np.zeros((1, 3, 4), bool)
    m[0, 0, 0] = m[0, 1, 1] = m[0, 2, 3] = True
    c = coarsen_queries(m, 64, 128, 160)  # 3 blocks of 64 → 2 of 128
    assert c.shape == (1, 2, 4)
    assert c[0, 0].tolist() == [True, True, False, False] and c[0, 1].tolist() == [False, False, False, True]
    with pytest.raises(FgsimError):
        coarsen_queries(m, 64, 96, 160)


def test_balanced_heads() -> None:
    w = [10, 1, 1, 10, 5, 5]
    g = balanced_heads(w, 2)
    assert sorted(len(x) for x in g) == [3, 3]
    loads = [sum(w[i] for i in x) for x in g]
    assert loads == [16, 16]
    # contiguous split would be 12 vs 20
    assert imbalance([12, 20]) == pytest.approx(20 / 16)
    assert imbalance(loads) == 1.0
    with pytest.raises(FgsimError):
        balanced_heads(w, 4)
    from fgsim.parallel import equal_partitions

    assert equal_partitions(4, 2) == [[[0, 1], [2, 3]], [[0, 2], [1, 3]], [[0, 3], [1, 2]]]
    assert len(equal_partitions(8, 2)) == 35 and equal_partitions(12, 2) is None


def test_link_times() -> None:
    # all-to-all of 1 MB among 4: 3/4 MB at 100 GB/s + 10 us
    assert LINK.alltoall_s(1e6, 4) == pytest.approx(10e-6 + 0.75e6 / 100e9)
    assert LINK.alltoall_s(1e6, 1) == 0.0
    assert LINK.allgather_s(4e6, 2) == pytest.approx(10e-6 + 2e6 / 200e9)
    assert LINK.p2p_s(1e6) == pytest.approx(10e-6 + 1e6 / 50e9)
    assert LINK.copy_s(1e6) == pytest.approx(2e6 / 1000e9)


def test_comm_cost_ulysses_and_ring() -> None:
    n, h, d = 1024, 8, 64
    local = (n // 2) * h * d * 2  # bf16 bytes of one local q/k/v/out shard
    u = comm_cost(CpPlan("ulysses", 2), n, h, d, LINK)
    assert u.collectives_s == pytest.approx(4 * (10e-6 + local / 2 / 100e9))
    assert u.copies_s == pytest.approx(8 * 2 * local / 1000e9)
    assert u.bytes_per_rank == pytest.approx(4 * local / 2)
    r = comm_cost(CpPlan("ring", 2), n, h, d, LINK)
    assert r.collectives_s == pytest.approx(2 * (10e-6 + local * 2 / 2 / 200e9))  # k and v, gathered each
    # one fused merge of two bf16 partials into bf16: 6 bytes per element + 12 per row, at the copy rate
    rows = (n // 2) * h
    assert r.merge_s == pytest.approx(rows * (d * 6 + 12) / 1000e9)
    from fgsim.parallel import ring_merge_bytes

    # 4 ranks: bf16+bf16 -> fp32, fp32+bf16 -> fp32, fp32+bf16 -> bf16
    assert ring_merge_bytes(10, d, 4) == 10 * (d * (2 + 2 + 4) + 12 + d * (4 + 2 + 4) + 12 + d * (4 + 2 + 2) + 12)
    assert comm_cost(CpPlan("ulysses", 1), n, h, d, LINK) == CommCost(0.0, 0.0, 0.0, 0.0)
    # Ulysses volume per rank shrinks as (P-1)/P^2 of the whole tensor: 8 GPUs send less each than 2
    u8 = comm_cost(CpPlan("ulysses", 8), n, h, d, LINK)
    assert u8.bytes_per_rank < u.bytes_per_rank


def test_predict_cp_synthetic() -> None:
    from fgsim.costmodel import ModelParams
    from fgsim.hardware import load_gpu
    from fgsim.parallel import predict_cp
    from fgsim.runpredict import RunInfo

    rng = np.random.default_rng(7)
    print("seed 7")
    h, n, m = 8, 16384, 128  # 128 query blocks x 4 heads per rank: the grid fills the GPU
    qb = n // m
    masks = rng.random((h, qb, n // 64)) < np.array([0.05, 0.05, 0.1, 0.1, 0.4, 0.4, 0.8, 0.8])[:, None, None]
    masks = masks.repeat(64, axis=2)

    class Wl:
        n_tokens = n

        def entries(self) -> list[tuple[int, int]]:
            return [(0, 0)]

        def counts(self, p: int, layer: int, m: int | None = None, n: int = 1) -> np.ndarray:
            return tile_counts(masks, n).astype(np.int32)

        def mask(self, p: int, layer: int) -> np.ndarray:
            return masks

    info = RunInfo("toy", n, h, 64, m, 1, 1, 1, {0: 0}, [0])
    gpu = load_gpu("h200")
    link = LINK
    kw = {"link": link, "params": ModelParams()}  # spec priors: independent of calibration files
    u = predict_cp(Wl(), info, gpu, "fg", CpPlan("ulysses", 2), **kw)
    assert u.attention_s.shape == (2, 1)
    assert u.attention_s[1, 0] > 2 * u.attention_s[0, 0]  # rank 1 has the dense heads
    bal = predict_cp(Wl(), info, gpu, "fg", CpPlan("ulysses", 2), **kw, assignment=[[0, 2, 4, 6], [1, 3, 5, 7]])
    assert bal.attention_s.max() < u.attention_s.max()
    r = predict_cp(Wl(), info, gpu, "fg", CpPlan("ring", 2), **kw)
    assert r.attention_s.shape == (2, 1) and (r.attention_s > 0).all()
    d = predict_cp(Wl(), info, gpu, "dense", CpPlan("ring", 2), **kw)
    assert d.attention_s[0, 0] == pytest.approx(d.attention_s[1, 0])
    s = u.summary()
    assert s["imbalance_run"] > 1.0 and s["speedup_vs_1gpu"] > 0


# --------------------------------------------------------------------------------------------------------------------
# gloo: two processes on the CPU


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tiny_wan() -> tuple[object, dict[str, object]]:
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=16, in_channels=4,
                                  out_channels=4, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2,
                                  rope_max_seq_len=64).eval()
    g = torch.Generator().manual_seed(1)
    kw = {"hidden_states": torch.randn(1, 4, 2, 8, 8, generator=g), "timestep": torch.tensor([500]),
          "encoder_hidden_states": torch.randn(1, 8, 32, generator=g), "return_dict": False}
    return model, kw


def _diffusers_cp(rank: int, tmp: str) -> dict[str, object]:
    """Under diffusers' enable_parallelism (gloo): the capture and the FG-Attn integration (torch backends)."""
    import torch
    from diffusers import ContextParallelConfig

    from fgsim.capture.predictors import ExactThreshold
    from fgsim.capture.run import capture_transformer

    torch.accelerator.device_count = lambda: 1  # diffusers' mesh set-up divides by it; the CPU has none
    out: dict[str, object] = {}
    model, kw = _tiny_wan()
    model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=2))
    capture_transformer(model, lambda: iter([{**kw, "_branch": "cond", "_step": 0}]), f"{tmp}/cp.fgt",
                        ExactThreshold(block_m=16, backend="torch"), write=rank == 0)
    try:
        from fgsim.integrations.context_parallel import enable_context_parallel
        from fgsim.integrations.diffusers import FgSchedule, enable_fgattn
    except ImportError:  # the diffusers integration is not installed
        return out
    for scheme in ("ulysses", "ring"):
        model, kw = _tiny_wan()
        deg = {"ulysses_degree": 2} if scheme == "ulysses" else {"ring_degree": 2}
        model.enable_parallelism(config=ContextParallelConfig(**deg))
        st = enable_fgattn(model, FgSchedule(backend="sdpa", warmup_steps=0, block_m=64, recompute=None,
                                             dense_backend="sdpa"))
        assert enable_context_parallel(st, model) == scheme
        with torch.no_grad():
            out[f"diffusers-{scheme}"] = model(**kw)[0].clone()
    return out


def _worker(rank: int, world: int, port: int, q: object, k: object, v: object, mask: object, res: object,
            tmp: str) -> None:
    import torch
    import torch.distributed as dist

    from fgsim.integrations.context_parallel import MaskedAttention, ring_attention, ulysses_attention

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        sl = q.shape[1] // world
        sh = slice(rank * sl, (rank + 1) * sl)
        out = {}
        for name, ma in (("dense", MaskedAttention("torch")), ("fg", MaskedAttention("torch", mask, block_m=4))):
            out[f"ulysses-{name}"] = ulysses_attention(q[:, sh], k[:, sh], v[:, sh], ma.heads)
            out[f"ring-{name}"] = ring_attention(q[:, sh], k[:, sh], v[:, sh], ma.shard)
        try:
            import diffusers  # noqa: F401
        except ImportError:
            pass
        else:
            out.update(_diffusers_cp(rank, tmp))
        res[rank] = {key: val.clone() for key, val in out.items()}
    finally:
        dist.destroy_process_group()


def test_gloo_ulysses_and_ring_match_one_process(tmp_path: object) -> None:
    torch = pytest.importorskip("torch")
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    from fgsim.integrations.context_parallel import MaskedAttention

    seed = 11
    print(f"seed {seed}")
    g = torch.Generator().manual_seed(seed)
    b, s, h, d, m = 1, 22, 4, 8, 4  # S/P = 11: query blocks of 4 straddle the two ranks
    q, k, v = (torch.randn(b, s, h, d, generator=g, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(b, h, -(-s // m), s, generator=g) < 0.4
    mask[:, 0, 1] = False  # a query block with no kept key
    ref = {"dense": MaskedAttention("torch").heads(q, k, v, range(0, h)),
           "fg": MaskedAttention("torch", mask, block_m=m).heads(q, k, v, range(0, h))}
    assert float(ref["fg"][:, 4:8, 0].abs().max()) == 0.0
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    res = manager.dict()
    port = _free_port()
    env = {"OMP_NUM_THREADS": "1"}
    os.environ.update(env)
    procs = [ctx.Process(target=_worker, args=(r, 2, port, q, k, v, mask, res, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    if any(p.exitcode != 0 for p in procs):
        pytest.fail(f"gloo workers failed: exit codes {[p.exitcode for p in procs]}")
    for scheme in ("ulysses", "ring"):
        for name in ("dense", "fg"):
            got = torch.cat([res[0][f"{scheme}-{name}"], res[1][f"{scheme}-{name}"]], dim=1)
            err = float((got - ref[name]).abs().max())
            assert err < 1e-12, (scheme, name, err)
    try:
        import diffusers  # noqa: F401
    except ImportError:
        return
    # capture under diffusers' Ulysses: the trace equals the one-process capture of the same inputs
    from fgsim.capture.predictors import ExactThreshold
    from fgsim.capture.run import capture_transformer
    from fgsim.trace import open_trace

    model, kw = _tiny_wan()
    one = capture_transformer(model, lambda: iter([{**kw, "_branch": "cond", "_step": 0}]), tmp_path / "one.fgt",
                              ExactThreshold(block_m=16, backend="torch"), keep_outputs=True)
    ta, tb = open_trace(tmp_path / "one.fgt"), open_trace(tmp_path / "cp.fgt")
    try:
        assert ta.entries() == tb.entries() and len(ta.entries()) == 2
        for e in ta.entries():
            assert np.array_equal(np.asarray(ta.packed_mask(*e)), np.asarray(tb.packed_mask(*e)))
            for name, val in ta.stats(*e).items():
                assert np.array_equal(val, tb.stats(*e)[name]), name
    finally:
        ta.close()
        tb.close()
    # FG-Attn's processors under diffusers' Ulysses / ring (torch SDPA backends on the CPU) = one process
    for scheme in ("ulysses", "ring"):
        key = f"diffusers-{scheme}"
        if key in res[0]:
            assert torch.allclose(res[0][key], one.outputs[0], rtol=1e-5, atol=1e-5), scheme
            assert torch.equal(res[0][key], res[1][key])


def test_link_tables_and_gpu_interconnect() -> None:
    from dataclasses import replace

    from fgsim.hardware import load_gpu
    from fgsim.parallel import link_for, link_from_dict

    lk = replace(LINK, tables={"alltoall": ((1e6, 1e-4), (3e6, 3e-4))}, table_degree=2, permute_copy_gbs=500.0)
    assert lk.alltoall_s(2e6, 2) == pytest.approx(2e-4)  # interpolated inside the measured range
    assert lk.alltoall_s(4e6, 2) == pytest.approx(LINK.alltoall_s(4e6, 2))  # the line outside it
    assert lk.alltoall_s(2e6, 4) == pytest.approx(LINK.alltoall_s(2e6, 4))  # another degree: the line
    assert lk.permute_s(1e6) == pytest.approx(2e6 / 500e9) and LINK.permute_s(1e6) == LINK.copy_s(1e6)
    with pytest.raises(FgsimError):
        link_from_dict({"alltoall_busbw_gbs": 1}, "x.json")
    h200 = link_for(load_gpu("h200"))
    assert h200.table_degree == 2 and h200.tables["alltoall"] and h200.permute_copy_gbs > 0


def test_ring_rank_pad_and_chunks() -> None:
    """Ring per-rank time: the rank whose first row splits a block pays the query padding; block-sparse runs on
    key chunks moved to multiples of M (no refusal); all-kept counts cost about what dense costs."""
    from fgsim.costmodel import ModelParams
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.parallel import key_chunks, ring_pad_s, ring_rank_s

    n, h, d, m, p = 8190 * 2, 4, 128, 128, 2
    assert ring_pad_s(n, p, h, d, m, 0, LINK) == 0.0
    assert ring_pad_s(n, p, h, d, m, 1, LINK) == pytest.approx(
        LINK.copy_s(8190 * h * d * 2) + (8190 % 128) * h * d * 2 / 1000e9)
    gpu, params = load_gpu("h200"), ModelParams()
    chunks = key_chunks(n, p, m)
    assert chunks == [(0, 8064), (8064, 16380)]
    qb = {0: 64, 1: 65}  # rank 1: rows 8190..16379 touch blocks 63..127 (its first block is split)

    def full(r: int):
        return lambda j: np.full((h, qb[r]), -(-(chunks[j][1] - chunks[j][0]) // m), np.int32)

    cfg = launch_config("block", "h200", d, m, 1, "bf16")
    blk = [ring_rank_s("block", n, p, r, h, m, m, full(r), cfg, gpu, params, LINK, head_dim=d) for r in range(p)]
    assert blk[1] > blk[0] > 0
    half = [ring_rank_s("block", n, p, r, h, m, m, lambda j, r=r: full(r)(j) // 2, cfg, gpu, params, LINK,
                        head_dim=d) for r in range(p)]
    assert half[0] < blk[0]


def test_ring_prices_a_gluon_entry_as_its_tl_fallback() -> None:
    """Ring chunk calls return their LSE, which the Gluon form lacks: fgattn runs the entry's tl kernel, and
    the ring pricing must price that, not the Gluon form (which the packaged fg D128 M128 g1 entry names)."""
    from fgsim.calibration import resolve_params
    from fgsim.costmodel import predict_counts
    from fgsim.hardware import load_gpu
    from fgsim.launchcfg import launch_config
    from fgsim.model.gluon import gluon_requested, tl_config
    from fgsim.parallel import key_chunks, ring_rank_s

    n, h, d, m, p = 8192 * 2, 4, 128, 128, 2
    gpu = load_gpu("h200")
    params, _ = resolve_params(gpu, None)
    cfg = launch_config("fg", "h200", d, m, 1, "bf16")
    assert gluon_requested(cfg)  # the packaged table's entry (d370267)
    rng = np.random.default_rng(7)
    print("seed 7")
    kept = {j: rng.integers(1, ke - ks, size=(h, 64)).astype(np.int32)
            for j, (ks, ke) in enumerate(key_chunks(n, p, 1))}
    got = ring_rank_s("fg", n, p, 0, h, m, 1, lambda j: kept[j], cfg, gpu, params, LINK, head_dim=d)
    want = ring_rank_s("fg", n, p, 0, h, m, 1, lambda j: kept[j], tl_config(cfg), gpu, params, LINK, head_dim=d)
    assert got == want
    c0, (ks, ke) = kept[0], key_chunks(n, p, 1)[0]
    t_gluon = predict_counts(c0, n // p, cfg, gpu, params, n_keys=ke - ks)[0]
    t_tl = predict_counts(c0, n // p, tl_config(cfg), gpu, params, n_keys=ke - ks)[0]
    assert t_gluon != pytest.approx(t_tl, rel=1e-3)  # the two forms are priced differently, so the test can fail
