"""Write src/videmo/models/face_detection_yunet_2023mar.tflite from the shipped YuNet ONNX file.

``faces.detector: yunet`` runs YuNet on LiteRT by default (``faces.yunet.engine: litert``):
XNNPACK runs the network in about half the time OpenCV's DNN module takes (12 against 24 ms a
640x384 input on one core, BENCHMARKS.md), and the rest of FaceDetectorYN (padding, decoding,
suppression) is a few lines of NumPy (videmo.extract.detectors.yunet). This script is the one
place that converts:

1. it reads the ONNX graph with a small protobuf reader (no ``onnx`` package: the file holds
   only Conv, Relu, MaxPool, Resize (nearest, x2), Add, Transpose, Reshape and Sigmoid nodes);
2. rebuilds it in Keras, channels last (a Conv with a stride and padding gets explicit zero
   padding, as ONNX pads both sides; grouped convolutions here are all depthwise), the weights
   copied from the ONNX initialisers;
3. converts it with TensorFlow's TFLite converter, float32, built-in ops, input
   [1, -1, -1, 3] (BGR, 0-255, as OpenCV's ``blobFromImage`` gives it; height and width
   multiples of 32, resized per frame size), twelve outputs named as the ONNX graph's
   (``cls_8`` ... ``kps_32``, in the signature ``serving_default``);
4. checks the file against OpenCV's DNN module on the ONNX file over real frames (the sample
   clips, and a 1280x720 frame made of them), printing the largest difference of any output.

    .venv/bin/python scripts/yunet_tflite.py

It prints the file's sha256 for ``videmo/models/__init__.py``. YuNet is MIT licensed
(Copyright (c) 2020 Shiqi Yu; ``src/videmo/models/LICENSE-yunet.txt``).
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

import cv2
import numpy as np

from videmo.extract import protobuf

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "src" / "videmo" / "models"
ONNX = MODELS / "face_detection_yunet_2023mar.onnx"
OUT = MODELS / "face_detection_yunet_2023mar.tflite"
OUTPUTS = ("cls_8", "cls_16", "cls_32", "obj_8", "obj_16", "obj_32", "bbox_8", "bbox_16",
           "bbox_32", "kps_8", "kps_16", "kps_32")


# ---------------------------------------------------------------- a minimal ONNX reader
# (the wire format: videmo.extract.protobuf)
def _fields(b: bytes) -> list[tuple[int, int, object]]:
    return list(protobuf.fields(b, "ONNX"))


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _ints(wt: int, v) -> list[int]:
    if wt != 2:
        return [_signed(v)]
    out, j = [], 0
    while j < len(v):
        x, j = protobuf.varint(v, j)
        out.append(_signed(x))
    return out


def _tensor(b: bytes) -> tuple[str, np.ndarray]:
    dims, dtype, name, raw, floats, ints = [], 1, "", None, [], []
    for f, wt, v in _fields(b):
        if f == 1:
            dims += _ints(wt, v)
        elif f == 2:
            dtype = v
        elif f == 4:
            floats += list(struct.unpack(f"<{len(v) // 4}f", v)) if wt == 2 else [
                struct.unpack("<f", v)[0]]
        elif f == 7:
            ints += _ints(wt, v)
        elif f == 8:
            name = v.decode()
        elif f == 9:
            raw = v
    np_type = {1: np.float32, 6: np.int32, 7: np.int64}[dtype]
    if raw is not None:
        return name, np.frombuffer(raw, np_type).reshape(dims)
    return name, np.array(floats or ints, np_type).reshape(dims)


def _attribute(b: bytes) -> tuple[str, object]:
    name, value, ints = "", None, []
    for f, wt, v in _fields(b):
        if f == 1:
            name = v.decode()
        elif f == 2:
            value = struct.unpack("<f", v)[0]
        elif f == 3:
            value = _signed(v)
        elif f == 4:
            value = v.decode(errors="replace")
        elif f == 8:
            ints += _ints(wt, v)
    return name, ints if ints else value


def read_onnx(path: Path) -> tuple[list[dict], dict[str, np.ndarray], list[str]]:
    """The graph's nodes (op, inputs, outputs, attributes), initialisers and output names."""
    (graph,) = [v for f, _, v in _fields(path.read_bytes()) if f == 7]
    nodes, inits, outputs = [], {}, []
    for f, _, v in _fields(graph):
        if f == 1:
            node = {"input": [], "output": [], "attr": {}}
            for ff, _, vv in _fields(v):
                if ff == 1:
                    node["input"].append(vv.decode())
                elif ff == 2:
                    node["output"].append(vv.decode())
                elif ff == 4:
                    node["op"] = vv.decode()
                elif ff == 5:
                    k, a = _attribute(vv)
                    node["attr"][k] = a
            nodes.append(node)
        elif f == 5:
            name, arr = _tensor(v)
            inits[name] = arr
        elif f == 12:
            outputs.append(next(vv.decode() for ff, _, vv in _fields(v) if ff == 1))
    return nodes, inits, outputs


# ---------------------------------------------------------------- Keras, then TFLite
def keras_model(path: Path):
    from tensorflow import keras

    layers = keras.layers
    nodes, inits, outputs = read_onnx(path)
    if tuple(outputs) != OUTPUTS:
        raise SystemExit(f"{path}: outputs {outputs}, expected {OUTPUTS}")
    x = keras.Input((None, None, 3), batch_size=1, name="input")
    t = {"input": x}
    for n in nodes:
        op, a, ins = n["op"], n["attr"], n["input"]
        if op == "Conv":
            w, b = inits[ins[1]], inits[ins[2]]
            k, s, pad = a["kernel_shape"][0], a["strides"][0], a["pads"][0]
            h = t[ins[0]]
            if pad and s != 1:  # ONNX pads both sides; "same" with a stride would not
                h, padding = layers.ZeroPadding2D(pad)(h), "valid"
            else:
                padding = "same" if pad else "valid"
            if a.get("group", 1) == 1:
                layer = layers.Conv2D(w.shape[0], k, s, padding=padding)
                y = layer(h)
                layer.set_weights([w.transpose(2, 3, 1, 0), b])
            elif a["group"] == w.shape[0] and w.shape[1] == 1:
                layer = layers.DepthwiseConv2D(k, s, padding=padding)
                y = layer(h)
                layer.set_weights([w.transpose(2, 3, 0, 1), b])
            else:
                raise SystemExit(f"Conv group {a['group']} of weights {w.shape}: not depthwise")
        elif op == "Relu":
            y = layers.ReLU()(t[ins[0]])
        elif op == "MaxPool":
            if a["kernel_shape"] != [2, 2] or a["strides"] != [2, 2] or any(a.get("pads", [])):
                raise SystemExit(f"MaxPool {a}: only 2x2, stride 2, no padding is rebuilt")
            y = layers.MaxPool2D(2, 2)(t[ins[0]])
        elif op == "Resize":
            if a.get("mode") != "nearest" or list(inits[ins[2]]) != [1, 1, 2, 2]:
                raise SystemExit(f"Resize {a}: only nearest x2 is rebuilt")
            y = layers.UpSampling2D(2, interpolation="nearest")(t[ins[0]])
        elif op == "Add":
            y = layers.Add()([t[ins[0]], t[ins[1]]])
        elif op == "Transpose":
            if a["perm"] != [0, 2, 3, 1]:
                raise SystemExit(f"Transpose {a['perm']}: only NCHW -> NHWC is rebuilt")
            y = t[ins[0]]  # the Keras graph is channels last already
        elif op == "Reshape":
            y = layers.Reshape((-1, int(inits[ins[1]][-1])))(t[ins[0]])
        elif op == "Sigmoid":
            y = layers.Activation("sigmoid")(t[ins[0]])
        else:
            raise SystemExit(f"ONNX op {op} is not rebuilt here")
        t[n["output"][0]] = y
    return keras.Model(x, {name: t[name] for name in OUTPUTS})


def convert(path: Path) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(keras_model(path)).convert()


def frames() -> list[np.ndarray]:
    clips = sorted((REPO / "data" / "sample" / "crema-d").glob("*.flv"))
    out = []
    for clip in clips:
        cap = cv2.VideoCapture(str(clip))
        ok, frame = cap.read()
        if ok:
            out.append(frame)
    wide = np.full((720, 1280, 3), 100, np.uint8)
    for i, f in enumerate(out):
        small = cv2.resize(f, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
        y, x = 100 + 250 * (i // 3), 100 + 350 * (i % 3)
        wide[y:y + small.shape[0], x:x + small.shape[1]] = small
    return [*out, wide]


def check(data: bytes) -> float:
    """The largest difference of any output between LiteRT on ``data`` and OpenCV's DNN module
    on the ONNX file, over :func:`frames` padded to multiples of 32."""
    from ai_edge_litert.interpreter import Interpreter

    net = cv2.dnn.readNet(str(ONNX))
    it = Interpreter(model_content=data, num_threads=1)
    runner = it.get_signature_runner("serving_default")
    worst = 0.0
    for frame in frames():
        h, w = frame.shape[:2]
        pad = cv2.copyMakeBorder(frame, 0, -h % 32, 0, -w % 32, cv2.BORDER_CONSTANT, value=0)
        net.setInput(cv2.dnn.blobFromImage(pad))
        ref = dict(zip(OUTPUTS, net.forward(list(OUTPUTS)), strict=True))
        got = runner(input=pad.astype(np.float32)[None])
        for name in OUTPUTS:
            diff = float(np.abs(got[name] - ref[name]).max())
            worst = max(worst, diff if np.isfinite(diff) else np.inf)  # NaN: a broken file
    return worst


def main() -> int:
    data = convert(ONNX)
    worst = check(data)
    print(f"largest difference from OpenCV's DNN module over {len(frames())} frames: {worst:.2e}")
    if worst > 1e-4:
        print("too far from OpenCV: not written", file=sys.stderr)
        return 1
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data):,} bytes), sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
