"""Copy a trained pixel model of a ``videmo train`` output into the package.

``OUT/models/<name>.tflite`` and its card ``<name>.json`` become
src/videmo/models/pixels.tflite and pixels.json (emotions.model: pixels); the sha256 lines to
record in src/videmo/models/__init__.py are printed. Then rerun scripts/pixels_golden.py.
Usage: ``python scripts/ship_pixel_model.py runs/train-pixels [pixel_vgg]``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from videmo.models import MODEL_DIR, PIXEL_MODEL, PIXEL_MODEL_CARD, sha256_of


def main(out: Path, name: str = "pixel_vgg") -> None:
    for ext, target in (("tflite", PIXEL_MODEL), ("json", PIXEL_MODEL_CARD)):
        dst = MODEL_DIR / target
        shutil.copyfile(out / "models" / f"{name}.{ext}", dst)
        print(f"{target} ({name}): {sha256_of(dst)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
