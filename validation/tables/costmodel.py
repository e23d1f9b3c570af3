"""README block: cost-model error per axis (H200, issue 10): the model before issue 10, revisions 3, 4 and 5 on their
frozen lists test4 / test5 / test6 (blind), revision 5 with calibration calib7 on test7 (blind), revision 6 with
calib8 on test8 (blind), revision 7 with calib9 on test9 (blind), revision 8 with calib9 on test10 (blind), the
revision 9 with calibration calib10 on test11 and test12 (blind), revision 9 with calibration calib11 on test13 (blind),
revision 9 with calibration calib12 on test14 (blind), revision 11 with calib13's first fit on test15 (blind), and the
revision 11 + calib13 on test16 (blind), revision 13 + calib14 on test17 (blind), revision 13 with calibration
calib15 (fp32_per_score pinned at the softmax microbenchmark's timed figure; not accepted) on test18 (blind), and the
model of the newest blind scoring (``fgsim.validation.report.MODEL_LABEL``) on the development data and on its frozen
list test19 (blind); when the committed calibration is another one (``validation/costmodel_summary_rescored.json``),
its development numbers and the frozen list rescored, not blind.

Numbers come from ``validation/costmodel_summary.json`` (development + test19),
``validation/costmodel_summary_rev13_test18.json`` (revision 13 + calib15: development + test18, launch table 772420a),
``validation/costmodel_summary_rev13_test17.json`` (revision 13 + calib14: development + test17, launch table 772420a),
``validation/costmodel_summary_rev11_test16.json`` (revision 11 + calib13: development + test16, launch table 300ad25),
``validation/costmodel_summary_rev11_test15.json`` (revision 11 + calib13's first fit: development + test15, launch
table 300ad25),
``validation/costmodel_summary_rev9_test14.json`` (revision 9 + calib12: development + test14, launch table 181d183),
``validation/costmodel_summary_rev9_test13.json`` (revision 9 + calib11: development + test13, launch table 181d183),
``validation/costmodel_summary_rev9_test12.json`` (revision 9 + calib10: development + test12, launch table d370267),
``validation/costmodel_summary_rev9_test11.json`` (revision 9 + calib10: development + test11, launch table d370267),
``validation/costmodel_summary_rev8_test10.json`` (revision 8 + calib9: development + test10, launch table 9245ed4),
``validation/costmodel_summary_rev7_test9.json`` (revision 7 + calib9: development + test9, launch table 9245ed4),
``validation/costmodel_summary_rev6_test8.json`` (revision 6 + calib8: development + test8, launch table 05f21a8),
``validation/costmodel_summary_rev5_test7.json`` (revision 5 + calib7: development + test7, launch table 08559f8),
``validation/costmodel_summary_rev5.json`` (revision 5's development + test6, calib6, launch table ea5ad41),
``validation/costmodel_summary_rev4.json`` (revision 4's development + test5) and
``validation/costmodel_summary_rev3.json`` (revision 3's development + test4), which
``python -m fgsim validate --dev ... --test ...`` writes when it scores the committed results CSVs with the
committed calibration (the same run writes validation/REPORT.md, which also keeps the rebuilt model's and revision 2's
blind scorings); this renderer only formats them.
"""

from __future__ import annotations

import json

from _common import ROOT  # type: ignore[import-not-found]

from fgsim.validation.report import (
    BLIND_RECORD,
    FROZEN_LIST,
    MODEL_LABEL,
    PREV_FROZEN_LIST,
    PREV_LABEL,
    RESCORED_LABEL,
    TEST_TABLE,
    comparison_lines,
    rescored_lines,
)

SUMMARY = ROOT / "validation" / "costmodel_summary.json"
REV3 = ROOT / "validation" / "costmodel_summary_rev3.json"
REV4 = ROOT / "validation" / "costmodel_summary_rev4.json"
REV5 = ROOT / "validation" / "costmodel_summary_rev5.json"
REV5B = ROOT / "validation" / "costmodel_summary_rev5_test7.json"
REV6 = ROOT / "validation" / "costmodel_summary_rev6_test8.json"
REV7 = ROOT / "validation" / "costmodel_summary_rev7_test9.json"
REV8 = ROOT / "validation" / "costmodel_summary_rev8_test10.json"
REV9 = ROOT / "validation" / "costmodel_summary_rev9_test11.json"
REV9B = ROOT / "validation" / "costmodel_summary_rev9_test12.json"
REV9C = ROOT / "validation" / "costmodel_summary_rev9_test13.json"
REV9D = ROOT / "validation" / "costmodel_summary_rev9_test14.json"
REV11 = ROOT / "validation" / "costmodel_summary_rev11_test15.json"
REV11B = ROOT / "validation" / "costmodel_summary_rev11_test16.json"
REV13 = ROOT / "validation" / "costmodel_summary_rev13_test17.json"
REV13B = ROOT / "validation" / "costmodel_summary_rev13_test18.json"
RESCORED = ROOT / "validation" / "costmodel_summary_rescored.json"


def render() -> str:
    s = json.loads(SUMMARY.read_text())
    band = json.loads((ROOT / "fgsim" / "data" / "transfer_bands.json").read_text())["band_pct"]
    r3 = json.loads(REV3.read_text()) if REV3.is_file() else None
    r4 = json.loads(REV4.read_text()) if REV4.is_file() else None
    r5 = json.loads(REV5.read_text()) if REV5.is_file() else None
    r5b = json.loads(REV5B.read_text()) if REV5B.is_file() else None
    r6 = json.loads(REV6.read_text()) if REV6.is_file() else None
    r7 = json.loads(REV7.read_text()) if REV7.is_file() else None
    r8 = json.loads(REV8.read_text()) if REV8.is_file() else None
    r9 = json.loads(REV9.read_text()) if REV9.is_file() else None
    r9b = json.loads(REV9B.read_text()) if REV9B.is_file() else None
    r9c = json.loads(REV9C.read_text()) if REV9C.is_file() else None
    r9d = json.loads(REV9D.read_text()) if REV9D.is_file() else None
    r11 = json.loads(REV11.read_text()) if REV11.is_file() else None
    r11b = json.loads(REV11B.read_text()) if REV11B.is_file() else None
    r13 = json.loads(REV13.read_text()) if REV13.is_file() else None
    r13b = json.loads(REV13B.read_text()) if REV13B.is_file() else None
    lines = comparison_lines(s, r3, r4, r5, r5b, r6, r7, r8, r9, r9b, r9c, r9d, r11, r11b, r13, r13b)
    cal = s.get("calibration", {})
    dev = ", ".join(f"`{f}`" for f in s.get("development_files", []))
    test = ", ".join(f"`{f}`" for f in s.get("test_files", [])) or "not measured"
    lines.append("")
    lines.append(
        f"*Source: `validation/results/` {test} ({s.get('test_rows', 0)} rows: the frozen test list {FROZEN_LIST} on "
        f"the launch table {TEST_TABLE}, written before calibration rows c-117..c-132 were measured and before "
        f"calib16 was fitted, measured once, scored once, blind, with {MODEL_LABEL}; {PREV_FROZEN_LIST} is "
        f"development data since its blind scoring with {PREV_LABEL}) and "
        f"{dev} ({s.get('development_rows', 0)} rows: development data, used to choose between model variants; the "
        "earlier frozen lists became development data after their one blind scoring, shown in the "
        f"revision 3 to 13 (test11, test12, test13, test14, test15, test16, test17, {PREV_FROZEN_LIST}) columns), "
        "scored with "
        + (f"the {BLIND_RECORD} (then `fgsim/data/calibrations/{s.get('calibration_file')}`, " if RESCORED.is_file()
           else f"`fgsim/data/calibrations/{s.get('calibration_file')}` (")
        + f"fitted on {cal.get('n')} calibration rows only, fit MAPE {cal.get('mape', 0):.1f} %). Cells: fg / block / dense MAPE and the worst row's error. Timing: CUDA "
        "graphs, 3 interleaved rounds (long-run twins: ~250 ms replays, 5 rounds; SM partitions: CUDA events around "
        "back-to-back calls on a green context); "
        "statistic: median per call, error = predicted / measured - 1. Other architectures (A100, L40S, B200): "
        f"extrapolations, ±{band:.0f} % band (`fgsim/data/transfer_bands.json`). Summary written by "
        "`python -m fgsim validate`; generated by `python validation/readme_tables.py --write`.*")
    lines += ["", facts(s, r13b)]
    if RESCORED.is_file():  # the committed calibration is a later one (the final launch table): shown beside
        rs = json.loads(RESCORED.read_text())
        rc = rs.get("calibration", {})
        inputs = ", ".join(f"`{f}`" for f in rs.get("rescored_of", {}).get("calibration_inputs", []))
        lines += ["", f"The committed calibration `fgsim/data/calibrations/{rs.get('calibration_file')}` is not the "
                  f"one of the blind scoring: it is fitted on {inputs} ({rc.get('n')} calibration rows, fit MAPE "
                  f"{rc.get('mape', 0):.1f} %; validation/MODEL_NOTES.md); its development numbers and its "
                  + RESCORED_LABEL + ":", ""]
        lines += rescored_lines(rs, s)
        lines += ["", f"*Source: `validation/costmodel_summary_rescored.json` ({rs.get('development_rows', 0)} "
                  f"development rows of {', '.join(f'`{f}`' for f in rs.get('development_files', []))}; "
                  f"{rs.get('test_rows', 0)} rows of {', '.join(f'`{f}`' for f in rs.get('test_files', []))}), "
                  "written by `python -m fgsim validate --dev ... --test ...` with the committed calibration; same "
                  "timing and statistic as above; the blind column is the record above. Generated by "
                  "`python validation/readme_tables.py --write`.*"]
    return "\n".join(lines)


def facts(s: dict, prev: dict | None) -> str:
    """The README prose's numbers, from the committed calibration (``fgsim/data/calibrations/h200.json``: its
    parameters, fit and measured GPU properties) and two blind summaries: the previous frozen list's (``prev``:
    revision 13 + calib15 on test18) and the newest (``s``)."""
    cal = json.loads((ROOT / "fgsim" / "data" / "calibrations" / "h200.json").read_text())
    fit = cal.get("fit", {})
    n_par, n_free = len(cal.get("params", {})), len(fit.get("free", []))
    fixed = ", ".join(k.replace("_", " ") for k in fit.get("fixed_by_measurement", {}))
    gp = cal.get("gpu_properties", {})
    port = gp.get("l2_port_bytes_per_clk", {})
    mufu, fp32 = gp.get("mufu_exp_per_clk_per_sm", {}), gp.get("fp32_flop_per_clk_per_sm", {})
    meas = fit.get("measured", {})
    t10 = s.get("test", {})
    t9 = (prev or {}).get("test", {})

    def m(t: dict, ax: str, k: str, q: str = "mape") -> float:
        return float(t.get(ax, {}).get(k, {}).get(q, float("nan")))

    def fam(t: dict, ax: str) -> str:
        return " / ".join(f"{m(t, ax, k):.1f}" for k in ("fg", "block", "dense"))

    def v(d: dict) -> float:
        return float(d.get("value", float("nan")))

    out = (f"Model facts (`fgsim/data/calibrations/h200.json`): {n_par} parameters that are GPU properties, {n_free} "
           f"fitted and {n_par - n_free} measured ({fixed}); GPU properties the calibration measured on the H200 "
           f"(replacing the GPU file's spec values): the L2 -> SM port {v(port):.1f} {port.get('unit', '')} "
           f"(spec {port.get('gpu_file_value', '—')}), the MUFU rate {v(mufu):.2f} {mufu.get('unit', '')} (spec "
           f"{mufu.get('gpu_file_value', '—')}) that prices the tile loop's MUFU instructions read off its SASS, the "
           f"FP32 rate {v(fp32):.0f} {fp32.get('unit', '')} (spec {fp32.get('gpu_file_value', '—')}), and (revision 8) "
           f"the tensor-core efficiency mma_eff {float(cal.get('params', {}).get('mma_eff', float('nan'))):.3f} from "
           f"the wgmma microbenchmark (achieved fraction of the bf16 peak "
           f"{float(meas.get('mma_eff_measured', float('nan'))):.3f}).")
    if t9:
        out += (f" Two frozen lists, each scored once, blind ({PREV_FROZEN_LIST} with {PREV_LABEL} "
                f"→ {FROZEN_LIST} with {MODEL_LABEL}): "
                f"tuned fg / block / dense MAPE {m(t9, 'tuned', 'fg'):.1f} / {m(t9, 'tuned', 'block'):.1f} / "
                f"{m(t9, 'tuned', 'dense'):.1f} → {m(t10, 'tuned', 'fg'):.1f} / {m(t10, 'tuned', 'block'):.1f} / "
                f"{m(t10, 'tuned', 'dense'):.1f} %, launch configs {fam(t9, 'config')} → {fam(t10, 'config')} %, "
                f"SM partitions {fam(t9, 'sm')} → {fam(t10, 'sm')} %, extrapolation band "
                f"±{float(prev.get('extrapolation_band_pct', float('nan'))):.0f} → "
                f"±{float(s.get('extrapolation_band_pct', float('nan'))):.0f} %. Bias on {FROZEN_LIST} (predicted / "
                f"measured - 1), dense: {m(t10, 'tuned', 'dense', 'bias_pct'):+.1f} % tuned, "
                f"{m(t10, 'config', 'dense', 'bias_pct'):+.1f} % launch configs, "
                f"{m(t10, 'sm', 'dense', 'bias_pct'):+.1f} % in SM partitions; fg: "
                f"{m(t10, 'tuned', 'fg', 'bias_pct'):+.1f} / {m(t10, 'config', 'fg', 'bias_pct'):+.1f} / "
                f"{m(t10, 'sm', 'fg', 'bias_pct'):+.1f} %.")
    if "bench" in t10:
        out += (f" The entries at benchmark shapes ({FROZEN_LIST}'s axis `bench`): fg "
                f"D=128 M=128 Gluon (the packaged list entry, launch-ordered / natural index, "
                f"{int(m(t10, 'bench', 'fg', 'n'))} rows) MAPE "
                f"{m(t10, 'bench', 'fg'):.1f} %, max {m(t10, 'bench', 'fg', 'max_ape'):.1f} %, bias "
                f"{m(t10, 'bench', 'fg', 'bias_pct'):+.1f} %")
        for k in ("block", "dense"):
            if k in t10["bench"]:
                what = "D=128 M=128 contig"
                out += (f"; {k} {what} ({int(m(t10, 'bench', k, 'n'))} rows) MAPE "
                        f"{m(t10, 'bench', k):.1f} %, max {m(t10, 'bench', k, 'max_ape'):.1f} %, bias "
                        f"{m(t10, 'bench', k, 'bias_pct'):+.1f} %")
        out += "."
    return out
