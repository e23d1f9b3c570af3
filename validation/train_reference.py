"""Train fgsim's reference video DiT (issue 6); see docs/reference_dit.md, and docs/contributing.md for the GPU recipe.

    PYTHONPATH=.:kernels python3 validation/train_reference.py --minutes 8 --out OUT

Writes OUT/weights.safetensors (EMA, bfloat16), OUT/loss.csv, OUT/loss.png, OUT/train.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fgsim.reference.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
