"""Record the shipped frame models' golden inputs and outputs.

Writes two files:

- tests/data/frame_models_golden.npz, the inputs: six grey 48x48 faces (``crops``, uint8), the
  PrivateTest images of the CREMA-D crops that tests/train_fixture.py makes (one per emotion;
  CREMA-D is ODbL, see tests/data/README.md), and what the training preprocessing
  (videmo.train.features: bicubic upscale to 192, BlazeFace else the whole image, the face mesh)
  made of them on the recording machine: ``source`` (n,) int8, ``blendshapes`` (n, 52) float32
  and ``landmarks`` (n, 478, 3) float32, pixels of the 192x192 image.
- tests/data/frame_models_golden.json: each shipped model's card keys and its probabilities on
  exactly those stored blendshapes and landmarks.

The model test feeds the stored numbers to the models, so it checks the models (Keras) alone;
the mesh's LiteRT kernels differ by CPU and are checked against the stored numbers with their
own tolerance (tests/test_train.py, scripts/kernel_spread.py). Rerun only when the shipped
models or the mesh change on purpose: ``PYTHONPATH=src:. python scripts/frame_models_golden.py``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from tests.train_fixture import build
from videmo.extract.features import frame_model as FM
from videmo.extract.features.mesh import FaceMesh
from videmo.models import FRAME_MODEL_FILES
from videmo.train import data, features

IMAGES = ["angry/PrivateTest_7.jpg", "disgust/PrivateTest_15.jpg", "fear/PrivateTest_23.jpg",
          "happy/PrivateTest_31.jpg", "neutral/PrivateTest_39.jpg", "sad/PrivateTest_47.jpg"]
CARD_KEYS = {"blendshapes": ("kind", "features", "sequence"),
             "landmarks": ("kind", "normalization")}
UPSCALE = 192
OUT = Path("tests/data")


def main() -> None:
    mesh = FaceMesh(1)
    fixture = build(Path(tempfile.mkdtemp(prefix="fer-like-")))
    crops = np.stack([data.Item("PrivateTest", 0, name, fixture / name).read()
                      for name in IMAGES])
    results, sources = zip(*(features.mesh_image(mesh, features.upscale(grey, UPSCALE))
                             for grey in crops), strict=True)
    if any(r is None for r in results):
        missing = [n for n, r in zip(IMAGES, results, strict=True) if r is None]
        raise SystemExit(f"no mesh for {missing}")
    inputs = {"crops": crops, "source": np.array(sources, np.int8),
              "blendshapes": np.stack([r.blendshapes for r in results]).astype(np.float32),
              "landmarks": np.stack([r.landmarks for r in results]).astype(np.float32)}
    np.savez_compressed(OUT / "frame_models_golden.npz", **inputs)
    out: dict = {"images": IMAGES, "upscale": UPSCALE, "inputs": "frame_models_golden.npz"}
    for name in FRAME_MODEL_FILES:
        model = FM.load_frame_model(name)
        x = FM.features(model.card, inputs["blendshapes"], inputs["landmarks"])
        out[name] = {"card": {k: model.card[k] for k in CARD_KEYS[name]},
                     "probabilities": np.round(model.predict_features(x), 7).tolist()}
    (OUT / "frame_models_golden.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
