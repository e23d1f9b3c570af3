"""CPU tests of kernels/tools/ncu_rowcost.py's analysis (role ranges, execution classes, per-row sections)."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "kernels"), str(ROOT / "kernels" / "tools"), str(ROOT / "validation")]

import ncu_rowcost as nr  # noqa: E402

ROWS = 10  # rows of the synthetic case: per-row instructions run 4 x ROWS = 40 times (warp level)


def _page(path: Path, prog: list[tuple[str, int, int, str]]) -> None:
    """An ncu source page (SASS) of ``prog``: (sass, executions, samples, stall reason) per instruction."""
    head = ["Address", "Source", "Warp Stall Sampling (All Samples)", "Instructions Executed"]
    head += [f"stall_{r}" for r in nr.REASONS]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Kernel Name", "_fg_gluon_ws2"])
        w.writerow(head)
        for i, (src, ex, s, why) in enumerate(prog):
            w.writerow([hex(0x7F0000 + 16 * i), src, s, ex] + [s if r == why else 0 for r in nr.REASONS])


def _prog(rng: random.Random) -> tuple[list[tuple[str, int, int, str]], dict[str, int]]:
    """A ws2-shaped SASS: worker consumer, producer, default consumer, stubs; and the expected sample sums."""
    r4, t4 = 4 * ROWS, 4 * ROWS * 5
    cons = [("LDG.E R0", r4, 0, "lg"), ("SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR4]", r4, 0, "long_sb"),
            ("@!P0 BRA 0x1", r4, 0, "long_sb"), ("HGMMA.64x128x16", t4, 0, "wait"),
            ("WARPGROUP.DEPBAR.LE gsb0, 0x0", r4, 0, "barrier"), ("FMUL R1", r4, 0, "no_inst"),
            ("@!P3 STG.E [R4]", r4, 0, "lg"), ("R2UR UR8, R0", r4, 0, "long_sb")]
    prod = [("USETMAXREG.DEALLOC.CTAPOOL 0x40", 4, 0, "barrier"), ("LDG.E R5", r4, 0, "long_sb"),
            ("SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [R39]", t4, 0, "barrier"), ("IADD R1", t4, 0, "selected"),
            ("@!P0 BRA 0x2", t4, 0, "long_sb"), ("LDGSTS.E.BYPASS.128", t4, 0, "wait")]
    prog, want = [("S2R R0, SR_TID.X", 4, 0, "no_inst")], {}
    for role, body in (("consumer_worker", cons), ("producer", prod),
                       ("consumer_default", [("USETMAXREG.TRY_ALLOC.CTAPOOL UP0, 0x100", 4, 0, "wait")] + cons)):
        want[role] = 0
        for src, ex, _, why in body:
            s = rng.randint(1, 50)
            want[role] += s
            prog.append((src, ex, s, why))
        if role == "consumer_default":
            prog.append(("EXIT", 4, 0, "wait"))
    prog.append(("SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR4]", 10_000, 0, "wait"))  # retry stub
    return prog, want


def test_roles_classes_sections(tmp_path):
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    prog, want = _prog(rng)
    _page(tmp_path / "p.csv", prog)
    ins = nr.load_source(tmp_path / "p.csv")
    names = [r[0] for r in nr.roles(ins)]
    assert names == ["consumer_worker", "producer", "consumer_default", "stubs"]
    case = dict(rows=ROWS, rows_per_sm=2.0)
    out = nr.sections(ins, case, us=100.0)
    for role, total in want.items():
        cls = [x for x in out if x["role"] == role and x["section"].startswith("class ")]
        assert sum(x["samples"] for x in cls) == total
        assert sum(x["us_per_row_per_sm"] for x in cls) == pytest.approx(100.0 / 2.0, abs=0.01)
    sec = {(x["role"], x["section"]): x for x in out}
    stores = [s for src, _, s, _ in prog if "STG" in src]
    assert sec[("consumer_worker", "O stores (STG span)")]["samples"] == stores[0]
    assert sec[("consumer_default", "O stores (STG span)")]["samples"] == stores[1]
    nxt = [s for src, _, s, _ in prog if src.startswith("R2UR")]
    assert sec[("consumer_worker", "next row (offsets load + wait)")]["samples"] == nxt[0]
    # the producer's empty wait: its TRYWAIT and the branch after it (not the IADD in between)
    p = [s for src, ex, s, _ in prog if ex == 4 * ROWS * 5 and src.startswith(("SYNCS", "@!P0 BRA 0x2"))]
    assert sec[("producer", "loop: empty-stage wait (TRYWAIT + branch)")]["samples"] == sum(p)


@pytest.mark.parametrize("ex,k", [(0, "unexecuted"), (4, "per_cta"), (40, "per_row"), (40.5, "per_row"), (41, "per_tile"),
                                  (200, "per_tile")])
def test_klass(ex, k):
    assert nr.klass(ex, ROWS) == k


def test_not_a_source_page(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not an ncu source page"):
        nr.load_source(tmp_path / "x.csv")


def test_cli_bad_input(tmp_path, capsys):
    assert nr.main(["--analyze", str(tmp_path)]) == 2
    assert "has no times.json" in capsys.readouterr().err
    assert nr.main([]) == 2
    assert "--out is required" in capsys.readouterr().err
