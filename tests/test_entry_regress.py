"""validation/entry_regress.py: argument errors, paired ratios, variant configs, the ncu summary parser (no GPU)."""

import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "validation"), str(ROOT / "kernels")]

import entry_regress as er  # noqa: E402


@pytest.mark.parametrize("argv, needle", [
    (["--shapes", "40x32760,40y1"], "--shapes: bad item '40y1'"),
    (["--shapes", "0x32760"], "sizes must be positive"),
    (["--densities", "0.1,x"], "--densities"),
    (["--ncu", "12x32760:0.5:entry/nosuch"], "unknown variant 'nosuch'"),
    (["--ncu", "12x32760:0.5"], "--ncu: bad item"),
    (["--variants", "previous,fold"], "no 'entry'"),
    (["--old-table", "/nonexistent/table.json"], "--old-table /nonexistent/table.json does not exist"),
    (["--rounds", "0"], "--rounds must be >= 1"),
    ([], "--out is required"),
])
def test_bad_input_exits_2_with_one_line(argv, needle, capsys):
    assert er.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_paired_ratio_is_per_round():
    seed = random.randrange(2**31)
    print("seed", seed)
    rng = random.Random(seed)
    ref = [rng.uniform(1.0, 2.0) for _ in range(7)]
    ms = [r * f for r, f in zip(ref, (1.10, 1.05, 1.20, 1.00, 1.08, 1.12, 1.02), strict=True)]
    med, lo, hi = er.paired(ms, ref)
    assert (med, lo, hi) == pytest.approx((1.08, 1.00, 1.20), abs=1e-12)
    with pytest.raises(ValueError, match="7 vs 6 rounds"):
        er.paired(ms, ref[:6])


def test_variant_configs_previous_entry_and_options():
    prev = er.variant_config("previous")
    assert prev.extra.get("tail_reuse") and not prev.extra.get("one_row")  # the pre-session-5 `_attn_fwd` entry
    entry = er.variant_config("entry")
    assert entry.extra.get("one_row") and entry.extra.get("idx_early") and not entry.extra.get("tail_fold")
    fold = er.variant_config("fold")
    assert {k: fold.extra[k] for k in ("tail_fold", "guard_next", "tma_o")} == dict.fromkeys(
        ("tail_fold", "guard_next", "tma_o"), True)
    assert (fold.block_n, fold.num_stages, fold.num_warps) == (entry.block_n, entry.num_stages, entry.num_warps)
    # the variants are the tl kernel's switches: a Gluon table entry is studied as its tl kernel
    assert all("impl" not in er.variant_config(v).extra for v in er.VARIANTS)
    assert er.parse_ncu("40x32760+512:0.02:entry/previous") == [((40, 32760, 512), 0.02, "entry"),
                                                                ((40, 32760, 512), 0.02, "previous")]


def test_ncu_summary_reads_units_and_cycles_per_tile():
    hdr = ["ID", "Kernel Name", "gpu__time_duration.sum", "sm__cycles_elapsed.avg.per_second",
           "sm__cycles_active.min", "sm__cycles_active.max", "sm__cycles_active.avg",
           "smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio",
           "smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio"]
    units = ["", "", "usecond", "cycle/nsecond", "cycle", "cycle", "cycle", "", ""]
    row = ["0", "_attn_fwd_persistent", "1,500.0", "1.8", "900", "1000", "2,640,000", "1.7", "0.4"]
    csv_text = "\n".join(",".join(f'"{x}"' for x in r) for r in (hdr, units, row))
    text = er.ncu_summary(csv_text, [dict(shape="H12 N32760 D128", d=0.5, variant="entry", exec_tiles=132 * 660,
                                          sms=132)])
    line = text.splitlines()[1]
    assert "1.500" in line and "1.800" in line and "0.900" in line and line.rstrip().endswith("4000")
    assert "barrier 1.70, long_scoreboard 0.40" in text


def test_bench_final_plan_rounds_shuffle_and_all_kernels(monkeypatch, capsys):
    """bench_kernels --final: --bench-rounds / --bench-all-kernels reach every selected shape (run 7c: 7 shuffled
    rounds, M=64 and Flex on the shapes run 7b timed without them); --bench-rounds 0 is one error line, exit 2."""
    import argparse

    import bench_kernels

    args = argparse.Namespace(bench_shapes="4,5,6,7", bench_short=False, bench_rounds=7, bench_all_kernels=True)
    plan = bench_kernels.final_plan(args)
    assert [(s["h"], s["n_video"], s["n_text"]) for s in plan] == [(12, 75600, 0), (12, 75600, 512), (40, 32760, 0),
                                                                    (40, 32760, 512)]
    assert all(s["rounds"] == 7 and s["with_flex"] and s["m64"] == (0.02, 0.1, 0.5) for s in plan)
    plain = bench_kernels.final_plan(argparse.Namespace(bench_shapes="6", bench_short=False, bench_rounds=None,
                                                        bench_all_kernels=False))
    assert "rounds" not in plain[0] and not plain[0].get("m64") and not plain[0].get("with_flex")
    assert bench_kernels.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)
    monkeypatch.setattr(sys, "argv", ["bench_kernels.py", "--final", "--bench-rounds", "0"])
    with pytest.raises(SystemExit) as e:
        bench_kernels.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--bench-rounds 0" in err and len(err.splitlines()) == 1


def _source_page(path, instrs):
    """A minimal ncu SASS source page: (SASS, warp-stall samples, executions, stall reason)."""
    head = ["Address", "Source", "Warp Stall Sampling (All Samples)", "Instructions Executed", "stall_long_sb",
            "stall_barrier"]
    lines = ['"Kernel Name","_attn_fwd_persistent"', ",".join(f'"{h}"' for h in head)]
    for i, (src, s, ex, why) in enumerate(instrs):
        vals = [hex(0x1000 + 16 * i), src, s, ex, s if why == "long_sb" else 0, s if why == "barrier" else 0]
        lines.append(",".join(f'"{v}"' for v in vals))
    path.write_text("\n".join(lines) + "\n")


def test_ncu_stages_splits_samples_by_landmark(tmp_path, capsys):
    """kernels/tools/ncu_stages.py: samples per stage -> us per row; bad input is one line, exit 2."""
    sys.path.insert(0, str(ROOT / "kernels" / "tools"))
    import ncu_stages

    page = tmp_path / "src.csv"
    _source_page(page, [("LDG.E R1, [R2]", 10, 8, "long_sb"), ("PRMT R3, R4", 20, 8, "long_sb"),
                        ("STS.128 [R1], R4", 0, 8, ""), ("BAR.SYNC 0x0", 10, 8, "barrier"),
                        ("LDGSTS [R5], [R2]", 10, 8, ""), ("HGMMA R24", 30, 24, "barrier"),
                        ("BRA 0x1050", 0, 24, ""), ("BAR.SYNC 0x0", 0, 8, ""), ("LDG.E.128 R8, [R2]", 15, 8, ""),
                        ("BAR.SYNC 0x0", 0, 8, ""), ("HGMMA R24, RZ", 5, 8, ""), ("WARPGROUP.DEPBAR.LE gsb0", 0, 8, ""),
                        ("BAR.SYNC 0x0", 0, 8, ""), ("STG.E.128 [R2], R4", 0, 8, ""), ("EXIT", 0, 8, ""),
                        ("LDG.E R16, [R6]", 0, 0, "")])
    text = ncu_stages.table(page, 100.0, 1.0, 2.0)
    assert "P2 wait for Q" in text and " 20.0 %  20.00 us/row" in text
    assert "L  pipelined loop" in text and " 30.0 %  30.00 us/row" in text and "15.000 us per tile" in text
    assert ncu_stages.main([str(tmp_path / "nope.csv"), "1", "1", "1"]) == 2
    assert ncu_stages.main([str(page), "1", "-1", "1"]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text('"a","b"\n')
    assert ncu_stages.main([str(bad), "1", "1", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "does not exist" in err[0] and "positive numbers" in err[1] and "not an ncu source" in err[2]


def test_accuracy_check_flags_nan_and_writes_csv(tmp_path):
    """--check's accuracy(): interpreter (fp16, a window + text mask, an emptied query block), entry and row_ahead
    match float64 and the CSV has one row per (case, variant); a variant whose output keeps NaN is a failure."""
    import subprocess

    code = f"""
import sys, csv
sys.path[:0] = [{str(ROOT / "validation")!r}, {str(ROOT / "kernels")!r}, {str(ROOT)!r}]
from pathlib import Path
import entry_regress as er
import fgattn
out, meta, case = Path({str(tmp_path)!r}), {{"date": "2026-11-30T00:00:00Z"}}, ((1, 300, 44, 0.3),)
assert er.accuracy(["entry", "row_ahead"], str(er.OLD_TABLE), out, "-t", meta, case, "cpu", "fp16") == 0
rows = list(csv.DictReader(open(out / "kernels-h200-2026-11-30-entry-regress-t-accuracy.csv")))
assert [r["variant"] for r in rows] == ["entry", "row_ahead"] and all(r["ok"] == "True" for r in rows), rows
real = fgattn.fg_attention
def broken(q, k, v, idx, **kw):
    o = real(q, k, v, idx, **kw)
    if "row_ahead" in kw["config"].extra:
        o[0, 0, 5, 3] = float("nan")
    return o
fgattn.fg_attention = broken
assert er.accuracy(["entry", "row_ahead"], str(er.OLD_TABLE), out, "-t", meta, case, "cpu", "fp16") == 1
print("OK")
"""
    env = {**__import__("os").environ, "TRITON_INTERPRET": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]


def test_profile_attempts_falls_back_to_the_next_metric_set(tmp_path):
    """ncu_persistent.profile_attempts: a failing attempt is logged and the next metric set runs; the report path
    comes back only once ncu wrote it; no time left means no attempt and None."""
    import time

    from ncu_persistent import profile_attempts

    fake = tmp_path / "ncu"
    # fails (rc 3) when asked for metric "bad", else writes <-o>.ncu-rep
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do case $a in bad*) exit 3;; esac; done\n"
                    "while [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then touch \"$2.ncu-rep\"; fi; shift; done\n")
    fake.chmod(0o755)
    rep, log = tmp_path / "ncu", tmp_path / "run.log"
    got = profile_attempts(str(fake), rep, ["SpeedOfLight"], [["bad"], ["good"], []], ["prog"],
                           time.perf_counter() + 30, log)
    assert got == rep.with_suffix(".ncu-rep") and got.exists()
    text = log.read_text()
    assert "rc=3" in text and "--metrics good" in text and text.count("$ ") == 2
    got.unlink()
    assert profile_attempts(str(fake), rep, [], [["good"]], ["prog"], time.perf_counter(), log) is None
    assert log.read_text() == ""


def test_profile_row_cost_variants_run_the_tl_kernel():
    import profile_row_cost as prc

    assert all("impl" not in prc.config(v).extra and "gluon" not in prc.config(v).extra for v in prc.VARIANTS)
