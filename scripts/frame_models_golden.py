"""Record tests/data/frame_models_golden.json: the shipped frame models' outputs on fixed faces.

The faces are PrivateTest images of the CREMA-D crops that tests/train_fixture.py makes (one per
emotion), through the same
preprocessing as training (videmo.train.features: bicubic upscale to 192, BlazeFace else the
whole image, the face mesh). Rerun only when the shipped models change on purpose:
``PYTHONPATH=src:. python scripts/frame_models_golden.py``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from tests.train_fixture import build
from videmo.extract.features import frame_model as FM
from videmo.extract.features.mesh import FaceMesh
from videmo.train import data, features

IMAGES = ["angry/PrivateTest_7.jpg", "disgust/PrivateTest_15.jpg", "fear/PrivateTest_23.jpg",
          "happy/PrivateTest_31.jpg", "neutral/PrivateTest_39.jpg", "sad/PrivateTest_47.jpg"]
CARD_KEYS = {"blendshapes": ("kind", "features", "sequence"),
             "landmarks": ("kind", "normalization")}


def main() -> None:
    mesh = FaceMesh(1)
    meshes = []
    fixture = build(Path(tempfile.mkdtemp(prefix="fer-like-")))
    for name in IMAGES:
        grey = data.Item("PrivateTest", 0, name, fixture / name).read()
        result, _ = features.mesh_image(mesh, features.upscale(grey, 192))
        meshes.append(result)
    out: dict = {"images": IMAGES}
    for name in FM.FRAME_MODELS:
        model = FM.load_frame_model(name)
        out[name] = {"card": {k: model.card[k] for k in CARD_KEYS[name]},
                     "probabilities": np.round(model.predict(meshes), 7).tolist()}
    Path("tests/data/frame_models_golden.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
