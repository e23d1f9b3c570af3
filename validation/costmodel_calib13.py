"""calib13 = calib12's rows with the dense / block D=128 M=128 calibration rows that the final launch table changed
replaced by their re-measurement on it (session 14: the Gluon contig form; validation/MODEL_NOTES.md, "Session 14"),
plus the benchmark-sized calibration cases c-110..c-115 measured in the same call.

    python validation/costmodel_calib13.py CALIB12_CSV CONTIG_CSV OUT_CSV --commit <FGSIM_COMMIT>

A calib12 kernel row is replaced when the new CSV has a row of the same (case_id, kernel): the new row takes its place
(new cases at the end) and the old row is kept at the very end with split ``calib-tl`` (recorded, not fitted: the
entry's tl fallback, which return_lse / context-parallel calls still run, keeps its compiled figures in the
calibration's resources table). Every other row is copied as it is. The new rows' ``commit`` is set to ``--commit``
(the device copy's .git is stale); their other columns are the harness's.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calib12", type=Path)
    ap.add_argument("contig", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--commit", required=True)
    a = ap.parse_args(argv)
    for p in (a.calib12, a.contig):
        if not p.is_file():
            print(f"costmodel_calib13: {p}: no such file", file=sys.stderr)
            return 2
    rows = list(csv.DictReader(a.calib12.open(newline="")))
    fields = list(rows[0])
    new = list(csv.DictReader(a.contig.open(newline="")))
    if not new or {"case_id", "kernel", "measured_ms", "launch_extra"} - set(new[0]):
        print(f"costmodel_calib13: {a.contig}: not a harness CSV of validation/costmodel_run15.sh", file=sys.stderr)
        return 2
    by_key = {(r["case_id"], r["kernel"]): r for r in new}
    out_rows, replaced, kept_tl = [], 0, []
    for r in rows:
        k = (r.get("case_id"), r.get("kernel"))
        if (r.get("kind") or "kernel") == "kernel" and k in by_key:
            out_rows.append(by_key.pop(k))
            kept_tl.append(dict(r, split="calib-tl"))
            replaced += 1
        else:
            out_rows.append(r)
    added = list(by_key.values())
    out_rows += added + kept_tl
    for r in new:
        r["commit"] = a.commit
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(out_rows)
    from fgsim.fileio import write_text_atomic

    write_text_atomic(a.out, buf.getvalue())
    print(f"wrote {a.out}: {len(out_rows)} rows ({replaced} kernel rows replaced and kept as calib-tl, {len(added)} "
          "added)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
