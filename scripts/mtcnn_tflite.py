"""Write src/videmo/models/mtcnn_{pnet,rnet,onet}.tflite from the ``mtcnn`` 1.0.0 package's weights.

videmo runs MTCNN's three networks on LiteRT (videmo.extract.detectors.mtcnn_litert) so that a
run with ``faces.detector: mtcnn`` never imports TensorFlow. This script is the one place that
does: it builds the package's own P-, R- and O-Net (``mtcnn.network``, Keras), loads the
package's weights (``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``, read by the package's
``load_weights``) and converts each network with TensorFlow's TFLite converter, float32, no
quantisation, built-in ops only:

- ``mtcnn_pnet.tflite``: input [-1, -1, -1, 3] (batch, height, width resizable; the detector
  resizes it per pyramid scale with ``Interpreter.resize_tensor_input``), outputs the box
  regression [n, h', w', 4] and the face probability (softmax) [n, h', w', 2];
- ``mtcnn_rnet.tflite``: input [-1, 24, 24, 3], outputs [n, 4] and [n, 2];
- ``mtcnn_onet.tflite``: input [-1, 48, 48, 3], outputs [n, 4], [n, 10] (landmarks) and [n, 2].

Run from the repository root with videmo's Python (TensorFlow and mtcnn==1.0.0 installed):

    /work/main/.venv/bin/python scripts/mtcnn_tflite.py          # or: python scripts/...

It prints each file's sha256 for ``videmo/models/__init__.py`` and checks every converted
network against the Keras one on random inputs (max abs difference printed). The mtcnn package
is MIT licensed (Copyright (c) 2019 Iván de Paz Centeno); its notice is shipped as
``src/videmo/models/LICENSE-mtcnn.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "videmo" / "models"
MTCNN_VERSION = "1.0.0"


def networks():
    """(file name, built Keras network with the package's weights, input signature shape)."""
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    out = []
    for name, cls, weights, shape in (
            ("mtcnn_pnet.tflite", PNet, "pnet.lz4", [None, None, None, 3]),
            ("mtcnn_rnet.tflite", RNet, "rnet.lz4", [None, 24, 24, 3]),
            ("mtcnn_onet.tflite", ONet, "onet.lz4", [None, 48, 48, 3])):
        model = cls()
        model.build()
        model.set_weights(load_weights(weights))
        out.append((name, model, shape))
    return out


def convert(model, shape) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:  # a SavedModel freezes the weights as constants
        model.export(tmp, format="tf_saved_model",
                     input_signature=[tf.TensorSpec(shape, tf.float32)], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def check(content: bytes, model, shape) -> float:
    """Max abs difference between LiteRT and Keras outputs on random inputs in [-1, 1]."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    size = [3] + [s if s is not None else 61 for s in shape[1:]]
    x = rng.uniform(-1, 1, size).astype(np.float32)
    it = Interpreter(model_content=content)
    it.resize_tensor_input(it.get_input_details()[0]["index"], size)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    ours = sorted((it.get_tensor(d["index"]) for d in it.get_output_details()),
                  key=lambda a: a.shape[-1])
    theirs = sorted((np.asarray(t) for t in model(x)), key=lambda a: a.shape[-1])
    return max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = p.parse_args()
    version = importlib.metadata.version("mtcnn")
    if version != MTCNN_VERSION:
        raise SystemExit(f"mtcnn {version} is installed; the shipped files come from "
                         f"mtcnn=={MTCNN_VERSION} (pip install mtcnn=={MTCNN_VERSION})")
    for name, model, shape in networks():
        content = convert(model, shape)
        diff = check(content, model, shape)
        path = args.out / name
        path.write_bytes(content)
        print(f"{name}: {len(content)} bytes, sha256 {hashlib.sha256(content).hexdigest()}, "
              f"max |LiteRT - Keras| {diff:.2e}")


if __name__ == "__main__":
    main()
