"""Copy the best trained frame models of a ``videmo train`` output into the package.

For each kind (blendshapes, landmarks) the Keras model with the best 7-class accuracy on the
*selection* split (never PrivateTest) is copied to src/videmo/models/frame_<kind>.keras with its
card frame_<kind>.json; the sha256 lines to record in src/videmo/models/__init__.py are printed.
Usage: ``python scripts/ship_frame_models.py runs/train``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from videmo.models import MODEL_DIR, sha256_of


def main(out: Path) -> None:
    results = json.loads((out / "results.json").read_text())
    for kind in ("blendshapes", "landmarks"):
        candidates = [(e["selection"]["accuracy_7"], name) for name, e in results["models"].items()
                      if e["kind"] == kind and (out / "models" / f"{name}.keras").exists()]
        if not candidates:
            continue
        _, best = max(candidates)
        for ext in ("keras", "json"):
            target = MODEL_DIR / f"frame_{kind}.{ext}"
            shutil.copyfile(out / "models" / f"{best}.{ext}", target)
            print(f"{target.name} ({best}): {sha256_of(target)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
