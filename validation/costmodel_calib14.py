"""calib14 = calib13's rows (the ``stg`` row-end rows of the fg Gluon entry stay as measured) plus the rows of
session 15's call on the final launch table (the fg entry's row end ``tma_sel``; validation/MODEL_NOTES.md,
"Session 15"), with a ``row_end`` column naming each Gluon row's row end.

    python validation/costmodel_calib14.py CALIB13_CSV NEW_CSV OUT_CSV --commit <FGSIM_COMMIT>

A new kernel row of a (case_id, kernel) that calib13 already has is added only when it ran another row end (then its
case_id becomes ``<case_id>/<row end>``: the old row stays, as measured, and both are fitted); a new row with the
same row end as calib13's (an unchanged entry re-measured with its case) is dropped; rows of new cases are added.
Every Gluon row's ``row_end`` is its ``extra.gluon.epilogue`` (``stg`` where the entry named none: the binary
without the knob); tl rows leave it empty. The new rows' ``commit`` is set to ``--commit`` (the device copy's .git is
stale); their other columns are the harness's.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path


def row_end(r: dict[str, str]) -> str:
    """The Gluon row end a row ran (``stg`` by default), '' for a tl row or a micro row."""
    try:
        ex = json.loads(r.get("launch_extra") or "{}")
    except ValueError:
        return ""
    if ex.get("impl") != "gluon":
        return ""
    return str((ex.get("gluon") or {}).get("epilogue", "stg"))


def build(old: list[dict[str, str]], new: list[dict[str, str]], commit: str) -> tuple[list[dict[str, str]], dict]:
    """(calib14 rows, counts): see the module docstring."""
    have = {(r["case_id"], r["kernel"]): r for r in old
            if (r.get("kind") or "kernel") == "kernel" and r.get("split") == "calib"}  # the fitted rows
    out = [dict(r, row_end=row_end(r)) for r in old]
    added, renamed, dropped = [], 0, 0
    for r in new:
        if (r.get("kind") or "kernel") != "kernel" or r.get("status") != "ok":
            continue
        r = dict(r, commit=commit, row_end=row_end(r))
        k = (r["case_id"], r["kernel"])
        if k in have:
            if row_end(have[k]) == r["row_end"]:
                dropped += 1
                continue
            r["case_id"] = f"{r['case_id']}/{r['row_end']}"
            renamed += 1
        added.append(r)
    # the fitted rows first, the recorded-not-fitted ones (split calib-tl) stay at the end
    fitted = [r for r in out if r.get("split") != "calib-tl"]
    rest = [r for r in out if r.get("split") == "calib-tl"]
    return fitted + added + rest, {"added": len(added), "renamed": renamed, "dropped_same_row_end": dropped}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calib13", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--commit", required=True)
    a = ap.parse_args(argv)
    for p in (a.calib13, a.new):
        if not p.is_file():
            print(f"costmodel_calib14: {p}: no such file", file=sys.stderr)
            return 2
    old = list(csv.DictReader(a.calib13.open(newline="")))
    new = list(csv.DictReader(a.new.open(newline="")))
    if not new or {"case_id", "kernel", "measured_ms", "launch_extra"} - set(new[0]):
        print(f"costmodel_calib14: {a.new}: not a harness CSV of validation/costmodel_run17.sh", file=sys.stderr)
        return 2
    rows, counts = build(old, new, a.commit)
    fields = list(old[0]) + (["row_end"] if "row_end" not in old[0] else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    from fgsim.fileio import write_text_atomic

    write_text_atomic(a.out, buf.getvalue())
    print(f"{a.out}: {len(rows)} rows ({counts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
