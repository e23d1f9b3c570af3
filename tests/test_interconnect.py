"""fgsim calibrate --interconnect: the fit from measured rows (tables inside their range, a line outside), the
GPU description's interconnect block rewritten with provenance and nothing else, and the refusal off torchrun."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fgsim.cli import main
from fgsim.interconnect import CSV_FIELDS, fit_link
from fgsim.parallel import link_from_dict

REPO = Path(__file__).resolve().parents[1]


def _rows(p: int = 2) -> list[dict[str, object]]:
    """Synthetic per-rank medians: collectives on a 20 us + bytes/200 GB/s line, copies at 4 TB/s."""
    rows: list[dict[str, object]] = []
    for rank in range(p):
        for op in ("alltoall", "allgather", "p2p"):
            for b in (1 << 20, 1 << 24, 1 << 28):
                moved = b * (p - 1) / p if op != "p2p" else b
                rows.append({"op": op, "bytes": b, "P": p, "rank": rank, "median_s": 20e-6 + moved / 200e9 + rank * 1e-6,
                             "method": "CUDA graph, 1 calls per replay", "gpu_name": "NVIDIA H200", "nccl": "2.28.9",
                             "date": "2026-11-30T07:00:00"})
        rows.append({"op": "copy", "bytes": 1 << 29, "P": p, "rank": rank, "median_s": 2 * (1 << 29) / 4e12,
                     "method": "CUDA graph"})
        rows.append({"op": "permute", "shape": "x", "bytes": 1 << 26, "P": p, "rank": rank,
                     "median_s": 2 * (1 << 26) / 2e12, "method": "CUDA graph"})
    return rows


def test_fit_link_recovers_the_line_and_tables() -> None:
    link, fit = fit_link(_rows(), "test link")
    assert link.alltoall_busbw_gbs == pytest.approx(200, rel=0.02)
    assert link.latency_us == pytest.approx(21, rel=0.1)  # the slower rank's (+1 us)
    assert link.copy_gbs == pytest.approx(4000) and link.permute_copy_gbs == pytest.approx(2000)
    assert link.table_degree == 2
    assert link.alltoall_s(1 << 24, 2) == pytest.approx(21e-6 + (1 << 23) / 200e9)  # a measured point
    assert link.permute_s(1 << 26, 2) == pytest.approx(2 * (1 << 26) / 2e12)
    assert all(abs(r["fit_err"]) < 0.05 for r in fit if r["op"] in ("alltoall", "allgather", "p2p"))
    with pytest.raises(Exception, match="GPU counts"):
        fit_link([*_rows(2), *_rows(4)], "")


def test_calibrate_interconnect_from_csv_writes_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "ic.csv"
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(_rows())
    out = tmp_path / "h200.json"
    assert main(["calibrate", "--interconnect", "--from-csv", str(src), "--gpu", "h200", "--out", str(out)]) == 0
    new, old = json.loads(out.read_text()), json.loads((REPO / "fgsim/data/gpus/h200.json").read_text())
    assert {k: v for k, v in new.items() if k != "interconnect"} == {k: v for k, v in old.items() if k != "interconnect"}
    lk = link_from_dict(new["interconnect"], str(out))
    assert lk.alltoall_busbw_gbs == pytest.approx(200, rel=0.02) and "fgsim calibrate --interconnect" in lk.source
    assert new["interconnect"]["link"] == old["interconnect"]["link"]
    assert "interconnect of h200 written" in capsys.readouterr().out


def test_calibrate_interconnect_from_csv_reads_the_gpu_from_the_rows(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Without --gpu the GPU comes from the rows' device name ('NVIDIA H200' -> h200); an unknown name is one
    error line, exit 2 (it was an ImportError traceback)."""
    src = tmp_path / "ic.csv"
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(_rows())
    out = tmp_path / "h200.json"
    assert main(["calibrate", "--interconnect", "--from-csv", str(src), "--out", str(out)]) == 0
    assert "interconnect of h200 written" in capsys.readouterr().out and out.is_file()
    bad = tmp_path / "bad.csv"
    bad.write_text(src.read_text().replace("NVIDIA H200", "Acme X9"))
    assert main(["calibrate", "--interconnect", "--from-csv", str(bad), "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Acme X9" in err[0] and "--gpu" in err[0]
    assert not (tmp_path / "x.json").exists()


def test_calibrate_interconnect_refuses_off_torchrun(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--interconnect"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torchrun" in err[0]


def _gloo_worker(rank: int, port: int, res: object) -> None:
    import torch
    import torch.distributed as dist

    from fgsim.interconnect import measure

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        res[rank] = measure(torch.device("cpu"), rank, 2, rounds=2, shapes={"tiny": (64, 4, 16)},
                            line_sizes=(1 << 12, 1 << 14), log=lambda _m: None)
    finally:
        dist.destroy_process_group()


def test_measure_runs_every_op_on_gloo() -> None:
    """The measurement loop (gloo, two CPU processes, tiny sizes): every op and size, then a fit."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ctx = mp.get_context("spawn")
    res = ctx.Manager().dict()
    procs = [ctx.Process(target=_gloo_worker, args=(r, port, res)) for r in range(2)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(60)
    assert all(pr.exitcode == 0 for pr in procs), [pr.exitcode for pr in procs]
    rows = [*res[0], *res[1]]
    ops = {(r["op"], r["shape"]) for r in rows}
    assert {("alltoall", "tiny"), ("allgather", "tiny"), ("p2p", "tiny"), ("permute", "tiny"), ("copy", "")} <= ops
    assert all(r["median_s"] > 0 and r["method"].startswith("perf_counter") for r in rows)
    link, _ = fit_link(rows, "gloo")
    assert link.table_degree == 2 and link.alltoall_busbw_gbs > 0


def _agree_worker(rank: int, port: int, res: object) -> None:
    import torch
    import torch.distributed as dist

    from fgsim.interconnect import agree_reps

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        res[rank] = agree_reps(3 + 4 * rank, torch.device("cpu"))
    finally:
        dist.destroy_process_group()


def test_agree_reps_takes_the_largest_rank_value() -> None:
    """Ranks that chose different back-to-back counts (7 vs 3) all time 7 calls (else their collectives pair up
    wrongly: the 2026-11-30 run-3 interconnect calibration hung); outside a process group reps is unchanged."""
    import socket

    import torch
    import torch.multiprocessing as mp

    from fgsim.interconnect import agree_reps

    assert agree_reps(5, torch.device("cpu")) == 5
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ctx = mp.get_context("spawn")
    res = ctx.Manager().dict()
    procs = [ctx.Process(target=_agree_worker, args=(r, port, res)) for r in range(2)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(60)
    assert all(pr.exitcode == 0 for pr in procs), [pr.exitcode for pr in procs]
    assert dict(res) == {0: 7, 1: 7}
