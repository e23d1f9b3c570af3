"""calib12 = calib11's rows with the pointer-chase latency rows replaced by the fixed microbenchmark's (session 13,
revision 10: ``fgsim.calibrate_micro.chase_rows``; validation/MODEL_NOTES.md, "Revision 10 of session 13").

    python validation/costmodel_calib12.py CALIB11_CSV CHASE14_CSV OUT_CSV --commit <FGSIM_COMMIT> --date <ISO>

The chase rows of calib11 (``chase_l2`` 4 MiB; ``chase_hbm`` 1 GiB restarting at the same element every launch, so
an L2 latency) are dropped; the new rows (``chase_l2``; ``chase_hbm`` 256 MiB / 1 GiB with fresh addresses every
launch; ``chase_hbm_restart``: the old pattern in the same call, recorded, not used) take their device columns
(GPU, driver, versions) from calib11's chase rows and their commit, date and clocks from the new call. Every other
row is copied byte for byte in content. The chase is recorded, not fitted.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calib11", type=Path)
    ap.add_argument("chase", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--date", required=True)
    a = ap.parse_args(argv)
    for p in (a.calib11, a.chase):
        if not p.is_file():
            print(f"costmodel_calib12: {p}: no such file", file=sys.stderr)
            return 2
    rows = list(csv.DictReader(a.calib11.open(newline="")))
    fields = list(rows[0])
    old = [r for r in rows if r.get("kind") == "micro" and r.get("micro", "").startswith("chase")]
    if not old:
        print(f"costmodel_calib12: {a.calib11}: no chase rows", file=sys.stderr)
        return 2
    new = list(csv.DictReader(a.chase.open(newline="")))
    if not new or {"micro", "micro_args", "measured_ms"} - set(new[0]):
        print(f"costmodel_calib12: {a.chase}: not a chase CSV of validation/costmodel_run14.sh", file=sys.stderr)
        return 2
    at = rows.index(old[0])
    keep = [r for r in rows if r not in old]
    add = []
    for r in new:
        d = dict(old[0])
        d.update({k: r[k] for k in ("case_id", "micro", "micro_args", "measured_ms", "status", "bench")})
        d.update({"commit": a.commit, "date": a.date, "sm_clock_mhz": r.get("sm_clock_mhz", ""),
                  "mem_clock_mhz": r.get("mem_clock_mhz", ""), "source_digest": ""})
        add.append(d)
    out_rows = keep[:at] + add + keep[at:]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(out_rows)
    from fgsim.fileio import write_text_atomic

    write_text_atomic(a.out, buf.getvalue())
    print(f"wrote {a.out}: {len(out_rows)} rows ({len(old)} chase rows replaced by {len(add)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
