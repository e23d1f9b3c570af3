"""kernels/tools/row_cost_fit.py: the per-row / per-tile split recovers known costs and rejects a missing CSV."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kernels" / "tools"))

import row_cost_fit  # noqa: E402


def test_fit_recovers_row_and_tile_costs(tmp_path: Path) -> None:
    seed = random.randrange(2**31)
    rng = random.Random(seed)
    c_row, c_tile = rng.uniform(1, 20), rng.uniform(0.5, 3)  # µs
    h, n, m = 12, 32760, 128
    n_rows = h * -(-n // m)
    path = tmp_path / "bench.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["shape", "kernel", "M", "gran_n", "config", "density", "ms", "H", "N"])
        w.writeheader()
        for d in (0.02, 0.05, 0.1, 0.3, 0.7):
            ms = (n_rows / 132 * c_row + d * n_rows * n / 128 / 132 * c_tile) / 1e3
            w.writerow(dict(shape="s", kernel="fg_attention", M=m, gran_n=1, config="c", density=d, ms=ms, H=h, N=n))
    got = row_cost_fit.fit(n_rows / 132, n_rows * n / 128 / 132, [0.02, 0.05, 0.1, 0.3],
                           [float(r["ms"]) for r in list(csv.DictReader(open(path)))[:4]])
    assert abs(got[0] - c_row) < 1e-6 * c_row and abs(got[1] - c_tile) < 1e-6 * c_tile, f"{got} seed {seed}"
    assert row_cost_fit.main([str(path)]) == 0
    assert row_cost_fit.main([str(tmp_path / "missing.csv")]) == 2


def test_compile_report_table_variants_follow_the_launch_options(tmp_path: Path) -> None:
    """compile_report --table compiles each launch-table entry with the constexprs the launcher gives it."""
    import json

    sys.path.insert(0, str(ROOT / "kernels"))
    import compile_report

    def entry(kernel, d, m, g, bn, st, w, **extra):
        return dict(kernel=kernel, gpu="h200", head_dim=d, block_m=m, gran_n=g, block_n=bn, num_stages=st,
                    num_warps=w, extra=extra, source="test")

    table = tmp_path / "t.json"
    table.write_text(json.dumps({"entries": [
        entry("dense", 128, 128, 1, 128, 3, 8, tma=True, tail_branch=True),
        entry("fg", 128, 64, 1, 64, 3, 4, one_row=True, idx_early=True, lpt=True),
        entry("fg", 128, 128, 1, 128, 3, 8, one_row=True, idx_early=True, guard_next=True, tma_o=True,
              tail_fold=True),
        entry("fg", 128, 64, 16, 64, 3, 4, one_row=True, idx_early=True, tail_fold=True),
        entry("block", 128, 128, 128, 64, 2, 8, tma=True, maxnreg=128),
        entry("fg", 128, 128, 16, 128, 3, 8, idx_ahead=1, tma_q=True, tail_branch=True)]}))
    vs = {v[0]: v for v in compile_report.table_variants(path=str(table))}
    assert len(vs) == 6
    dense = vs["table dense D128 M128 g1 bn128 st3 w8"]
    assert dense[1] == 0 and dense[8]["TAIL_BRANCH"] is True and dense[8]["USE_TMA"] is True
    one_row = vs["table fg D128 M64 g1 bn64 st3 w4"][8]  # one_row: the nested persistent kernel, idx_early
    assert one_row["persistent"] and one_row["flatten"] is False and one_row["idx_early"] is True
    assert not (one_row["GUARD"] or one_row["TMA_O"] or one_row["FOLD"])
    s7 = vs["table fg D128 M128 g1 bn128 st3 w8"][8]  # session 7's options reach the persistent kernel
    assert s7["GUARD"] is True and s7["TMA_O"] is True and s7["FOLD"] is True
    assert vs["table fg D128 M64 g16 bn64 st3 w4"][8]["FOLD"] is False  # tail_fold: gran 1 only
    capped = vs["table block D128 M128 g128 bn64 st2 w8"][8]
    assert capped["maxnreg"] == 128 and capped["TAIL_BRANCH"] is False and capped["USE_TMA"] is True
    fg = vs["table fg D128 M128 g16 bn128 st3 w8"][8]  # tail_branch reaches dense only, TMA K/V not fg
    assert fg["TAIL_BRANCH"] is False and fg["TMA_Q"] is True and fg["IDX_AHEAD"] == 1 and fg["USE_TMA"] is False


def _sass(instrs: list[tuple[int, str, int, int]]) -> str:
    """cuobjdump -sass text: (address, instruction, stall cycles, scoreboard wait mask) per instruction."""
    out = ["        Function : k", "        .headerflags    @\"EF_CUDA_SM90\""]
    for a, text, stall, wait in instrs:
        hi = (stall << 41) | (wait << 52)  # control bits of the instruction's second word
        out.append(f"        /*{a:04x}*/                   {text} ;{' ' * 40}/* 0x000000000000{a:04x} */")
        out.append(f"{' ' * 103}/* 0x{hi:016x} */")
    return "\n".join(out) + "\n"


def test_compile_report_loop_figures_pick_the_inner_hgmma_loop() -> None:
    """loop_figures reads the innermost backward-branch span that holds an HGMMA: its instruction count, the sum of
    the stall counts in the control words and the instructions waiting on a scoreboard; None without one."""
    sys.path.insert(0, str(ROOT / "kernels"))
    import compile_report

    sass = _sass([(0x00, "MOV R1, c[0x0][0x28]", 2, 0),
                  (0x10, "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR32], RZ, !UPT", 1, 0),  # inner loop start
                  (0x20, "FADD R2, R3, R4", 4, 0b000001),
                  (0x30, "@P1 BRA 0x10", 5, 0),  # inner back edge: 3 instructions, stalls 1 + 4 + 5
                  (0x40, "IADD3 R5, R5, 0x1, RZ", 3, 0),
                  (0x50, "BRA 0x0", 7, 0b100000),  # outer loop: longer span
                  (0x60, "EXIT", 1, 0),
                  (0x70, "BRA 0x70", 0, 0)])  # the trailing self-loop is not a loop body
    assert compile_report.loop_figures(sass) == dict(loop_insts=3, loop_stall_cycles=10, loop_sb_waits=1,
                                                     loop_mufu=0, loop_wgmma_waits=0)
    # the softmax's MUFU and the wgmma waits of the loop (the Gluon entries' figures, session 9 helper K2)
    sass2 = sass.replace("FADD R2, R3, R4", "MUFU.EX2 R2, R3").replace("MOV R1, c[0x0][0x28]", "MUFU.EX2 R1, R1")
    sass2 = sass2.replace("@P1 BRA 0x10", "WARPGROUP.DEPBAR.LE gsb0, 0x0").replace(
        "IADD3 R5, R5, 0x1, RZ", "@P1 BRA 0x10")
    got = compile_report.loop_figures(sass2)
    assert (got["loop_mufu"], got["loop_wgmma_waits"], got["loop_insts"]) == (1, 1, 4)
    no_mma = sass.replace("HGMMA.64x128x16.F32.BF16 R24, gdesc[UR32], RZ, !UPT", "FMUL R24, R24, R24")
    assert compile_report.loop_figures(no_mma) is None


def test_entry_regress_fit_recovers_per_variant_costs(tmp_path: Path, capsys) -> None:
    """--entry-regress: one relative least-squares fit per variant over the cells' own rows per SM and executed
    tiles per row recovers known (c_row, c_tile); cuDNN rows are skipped."""
    seed = random.randrange(2**31)
    rng = random.Random(seed)
    costs = {"entry": (rng.uniform(5, 9), rng.uniform(1.5, 2.5)), "row_ahead": (rng.uniform(5, 9), rng.uniform(1.5, 2.5))}
    path = tmp_path / "er.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["variant", "rows", "rows_per_sm", "exec_tiles_per_row", "ms"])
        w.writeheader()
        w.writerow(dict(variant="cudnn", rows="", rows_per_sm="", exec_tiles_per_row="", ms=35.0))
        for rps, tpr in ((77.58, 4.3), (77.58, 26.0), (23.27, 5.9), (23.27, 128.0)):
            for v, (cr, ct) in costs.items():
                w.writerow(dict(variant=v, rows=int(rps * 132), rows_per_sm=rps, exec_tiles_per_row=tpr,
                                ms=(rps * cr + rps * tpr * ct) / 1e3))
    cells = [(float(r["rows_per_sm"]), float(r["rows_per_sm"]) * float(r["exec_tiles_per_row"]), float(r["ms"]))
             for r in csv.DictReader(open(path)) if r["variant"] == "row_ahead"]
    c_row, c_tile, res = row_cost_fit.fit_cells(cells)
    assert abs(c_row - costs["row_ahead"][0]) < 1e-6 and abs(c_tile - costs["row_ahead"][1]) < 1e-6, seed
    assert res < 1e-9
    assert row_cost_fit.main(["--entry-regress", str(path)]) == 0
    out = capsys.readouterr().out
    want = f"row_ahead - entry: c_row {costs['row_ahead'][0] - costs['entry'][0]:+.2f} us"
    assert want in out, (out, seed)
