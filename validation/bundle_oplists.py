"""Bundle the operator lists of fgsim's model files: fgsim/data/oplists/<model>-<resolution>-<key>.json.xz.

One transformer pass of every (model file with a ``diffusers`` entry, resolution) is traced on the meta device with
the installed torch / diffusers (recorded in each file) and written as xz-compressed JSON, so that
``fgsim predict --model`` needs neither diffusers nor tracing for fgsim's own models. Run it after editing
fgsim/optrace.py or a model file's diffusers config, latent grid or text tokens (tests/test_opmodel_lists.py fails
until the bundle is current): python validation/bundle_oplists.py
"""

from __future__ import annotations

import lzma
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fgsim.endtoend import list_models, load_model  # noqa: E402
from fgsim.fileio import write_bytes_atomic  # noqa: E402
from fgsim.opmodel import OPLIST_DIR, _oplist_json, oplist_key, trace_model_ops  # noqa: E402


def main() -> int:
    OPLIST_DIR.mkdir(parents=True, exist_ok=True)
    keep: set[str] = set()
    for name in list_models():
        model = load_model(name)
        if not model.diffusers:
            continue
        for res in model.resolutions:
            key = oplist_key(model, res)
            path = OPLIST_DIR / f"{model.name}-{res}-{key[:12]}.json.xz"
            keep.add(path.name)
            if path.is_file():
                print(f"{path.name}: current")
                continue
            t0 = time.perf_counter()
            ops = trace_model_ops(model, res)
            text = _oplist_json(ops, key, model, res)
            write_bytes_atomic(path, lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME))
            print(f"{path.name}: {len(ops)} operators traced in {time.perf_counter() - t0:.1f} s, "
                  f"{path.stat().st_size / 1e3:.0f} kB")
    for p in OPLIST_DIR.glob("*.json.xz"):
        if p.name not in keep:
            print(f"{p.name}: stale, removed")
            p.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
