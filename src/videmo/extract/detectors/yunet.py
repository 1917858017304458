"""YuNet (``faces.detector: yunet``): the small CNN face detector of OpenCV's model zoo
(``face_detection_yunet_2023mar.onnx``, MIT, shipped), on LiteRT or on OpenCV's DNN module.

YuNet sees the whole frame at its own resolution (padded to a multiple of 32): no image
pyramid, one pass of a network of about 55,000 parameters (YuNet-s), trained for faces of
about 10 to 300 pixels. That makes it the detector for faces as wide shots show them at a
fraction of MTCNN's cost (numbers by face size and cost: BENCHMARKS.md, Face size).
``faces.yunet.scale`` runs it on the frame resized by a factor (below 1: cheaper, larger faces
only; above 1: smaller faces, dearer), boxes mapped back to the frame's pixels.

Two engines (``faces.yunet.engine``), the same detections:

- ``litert`` (the default): the same network converted to TFLite
  (``face_detection_yunet_2023mar.tflite``, scripts/yunet_tflite.py: its outputs within 1e-5
  of OpenCV's) and run with LiteRT's XNNPACK, about half OpenCV's time; what OpenCV's
  ``FaceDetectorYN`` does around the network is done here as it does it (modules/objdetect/
  src/face_detect.cpp, OpenCV 4.x): the frame padded with zeros at the right and bottom to
  multiples of 32, BGR 0-255 as it is; at strides 8, 16 and 32 the score sqrt(cls x obj) (both
  clamped to [0, 1]), kept from ``min_score``; the box centre (col + dx, row + dy) x stride, its
  size exp(dw, dh) x stride; then OpenCV's ``NMSBoxes`` on the boxes truncated to integers, at
  ``nms_iou``, best score first. A test holds the two engines to the same faces.
- ``opencv``: OpenCV's own ``cv2.FaceDetectorYN`` on the ONNX file (the reference).

Faces come as plain boxes, best score first. YuNet also gives five landmarks (eyes, nose tip,
mouth corners); they are not passed on: the face mesh and the pixel model's eye alignment treat
YuNet's boxes as they treat MTCNN's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from videmo import models
from videmo.config.fields import opt
from videmo.extract.detectors.base import Face

if TYPE_CHECKING:
    from videmo.config import Config


@dataclass(frozen=True)
class YunetConfig:
    min_score: float = opt(0.6, "Drop YuNet detections below this score (0-1; OpenCV's model "
                                "zoo demo uses 0.9, which misses more of the small faces: "
                                "BENCHMARKS.md, Face size).", minimum=0)
    nms_iou: float = opt(0.3, "Non-maximum suppression: of two boxes overlapping by more than "
                              "this IoU, keep the better scored (OpenCV's default 0.3).",
                         minimum=0)
    scale: float = opt(1.0, "Run YuNet on the frame resized by this factor (boxes mapped back "
                            "to full resolution): below 1 is cheaper and misses the smallest "
                            "faces (YuNet needs about 10 px), above 1 finds smaller faces at "
                            "a higher cost.", minimum=0, exclusive=True)
    min_size: int = opt(0, "Drop faces narrower or shorter than this many full-resolution "
                           "pixels (0: keep all the model finds).", minimum=0)
    engine: Literal["litert", "opencv"] = opt(
        "litert", "What runs the network: LiteRT (its TFLite conversion, about half the time) "
                  "or OpenCV's FaceDetectorYN on the ONNX file (the reference; the same faces "
                  "within float rounding).")


# OpenCV keeps at most this many boxes before and after suppression (its default 5000)
TOP_K = 5000
STRIDES = (8, 16, 32)
DIVISOR = 32


class YunetDetector:
    """``faces.detector: yunet``: YuNet on LiteRT (``engine="litert"``) or OpenCV's
    ``FaceDetectorYN`` (``"opencv"``); faces best score first."""

    name = "yunet"

    def __init__(self, min_score: float = 0.6, nms_iou: float = 0.3, scale: float = 1.0,
                 min_size: int = 0, engine: str = "litert", threads: int = 1):
        if not 0 <= min_score <= 1:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if engine not in ("litert", "opencv"):
            raise ValueError(f"engine must be litert or opencv, got {engine!r}")
        self.min_score, self.nms_iou = float(min_score), float(nms_iou)
        self.scale, self.min_size, self.engine = scale, min_size, engine
        self.size: tuple[int, int] = (0, 0)
        if engine == "opencv":
            path = models.model_path(models.YUNET)
            try:
                self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.min_score,
                                                     self.nms_iou, TOP_K)
            except cv2.error as e:
                raise models.ModelFileError(f"OpenCV could not load YuNet from {path}: {e}") from e
            self.size = (320, 320)
        else:
            self._load_litert(threads)

    def _load_litert(self, threads: int) -> None:
        from videmo.extract.bundle import litert

        path = models.model_path(models.YUNET_TFLITE)
        self.interpreter = litert(threads, path=path, allocate=False)  # resized per frame size
        signature = self.interpreter.get_signature_runner("serving_default")
        outputs = signature.get_output_details()
        names = {f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES}
        if set(outputs) != names:
            raise models.ModelFileError(f"{path}: outputs {sorted(outputs)}, expected "
                                        f"{sorted(names)}")
        self.outputs = {name: d["index"] for name, d in outputs.items()}
        self.input = self.interpreter.get_input_details()[0]["index"]

    def detect(self, frames: list[np.ndarray], scale: float = 1.0) -> list[list[Face]]:
        side = self.min_size * scale
        return [[f for f in self.detect_one(frame) if min(f.w, f.h) >= side] for frame in frames]

    def detect_one(self, frame: np.ndarray) -> list[Face]:
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        h, w = frame.shape[:2]
        k = self.scale
        image = frame
        if k != 1.0:
            size = (max(1, round(w * k)), max(1, round(h * k)))
            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if k < 1
                               else cv2.INTER_LINEAR)
        rows = self.raw(image)
        # rows: x, y, w, h, five landmarks (x, y), score; in the resized image's pixels (a box
        # may reach past the frame's edge, as BlazeFace's do: the crop step pads)
        ih, iw = image.shape[:2]
        fx, fy = w / iw, h / ih
        out = []
        for row in rows:
            x0, y0 = float(row[0]) * fx, float(row[1]) * fy
            x1, y1 = float(row[0] + row[2]) * fx, float(row[1] + row[3]) * fy
            ix, iy = round(x0), round(y0)
            if round(x1) - ix < 1 or round(y1) - iy < 1:
                continue
            out.append(Face(ix, iy, round(x1) - ix, round(y1) - iy, float(row[-1])))
        return out

    def raw(self, image: np.ndarray) -> np.ndarray:
        """FaceDetectorYN's (n, 15) rows for a BGR ``image``: x, y, w, h, five landmarks, score,
        in the image's pixels, best score first."""
        ih, iw = image.shape[:2]
        if self.engine == "opencv":
            if (iw, ih) != self.size:
                self.net.setInputSize((iw, ih))
                self.size = (iw, ih)
            _, found = self.net.detect(image)
            return np.zeros((0, 15), np.float32) if found is None else found
        pad_w, pad_h = -(-iw // DIVISOR) * DIVISOR, -(-ih // DIVISOR) * DIVISOR
        if (pad_w, pad_h) != self.size:
            self.interpreter.resize_tensor_input(self.input, [1, pad_h, pad_w, 3])
            self.interpreter.allocate_tensors()
            self.size = (pad_w, pad_h)
        # the frame and its zero padding written straight into the input tensor (one copy,
        # converted on the way; padding and casting apart cost 0.3 ms more a 640x384 frame)
        tensor = self.interpreter.tensor(self.input)()[0]
        tensor[:ih, :iw] = image
        tensor[:ih, iw:] = 0
        tensor[ih:] = 0
        del tensor  # LiteRT refuses to run while a view of its buffers is held
        self.interpreter.invoke()
        out = {name: self.interpreter.get_tensor(i) for name, i in self.outputs.items()}
        return decode(out, pad_w, pad_h, self.min_score, self.nms_iou)


def decode(out: dict[str, np.ndarray], pad_w: int, pad_h: int, min_score: float,
           nms_iou: float) -> np.ndarray:
    """FaceDetectorYN's post-processing of the network's twelve outputs (face_detect.cpp's
    postProcess), in float32 as it computes: (n, 15) rows, best score first."""
    rows = []
    for s in STRIDES:
        cols = pad_w // s
        cls = np.clip(out[f"cls_{s}"].reshape(-1), 0, 1)
        obj = np.clip(out[f"obj_{s}"].reshape(-1), 0, 1)
        score = np.sqrt(cls * obj)
        (keep,) = np.nonzero(score >= np.float32(min_score))
        if not len(keep):
            continue
        bbox = out[f"bbox_{s}"].reshape(-1, 4)[keep]
        kps = out[f"kps_{s}"].reshape(-1, 10)[keep]
        c = (keep % cols).astype(np.float32)
        r = (keep // cols).astype(np.float32)
        stride = np.float32(s)
        cx = (c + bbox[:, 0]) * stride
        cy = (r + bbox[:, 1]) * stride
        w = np.exp(bbox[:, 2]) * stride
        h = np.exp(bbox[:, 3]) * stride
        marks = np.empty((len(keep), 10), np.float32)
        marks[:, 0::2] = (kps[:, 0::2] + c[:, None]) * stride
        marks[:, 1::2] = (kps[:, 1::2] + r[:, None]) * stride
        rows.append(np.column_stack([cx - w / np.float32(2), cy - h / np.float32(2), w, h, marks,
                                     score[keep]]).astype(np.float32))
    if not rows:
        return np.zeros((0, 15), np.float32)
    faces = np.concatenate(rows)
    if len(faces) == 1:
        return faces
    boxes = np.trunc(faces[:, :4]).astype(np.int64).tolist()  # C++ int(): toward zero
    keep = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), min_score, nms_iou, 1.0, TOP_K)
    return faces[np.asarray(keep, np.int64).reshape(-1)]


def files(cfg: Config) -> tuple[str, ...]:
    """The model file the chosen engine loads."""
    engine = cfg.options("faces.yunet").engine
    return (models.YUNET_TFLITE,) if engine == "litert" else (models.YUNET,)


def packages(cfg: Config) -> tuple[str, ...]:
    return ("ai-edge-litert",) if cfg.options("faces.yunet").engine == "litert" else ()


def from_config(o: YunetConfig, threads: int = 1) -> YunetDetector:
    """``faces.detector: yunet`` (its spec in :data:`videmo.extract.detectors.DETECTORS`
    declares ``faces.yunet`` as its own options section: ``o``). ``threads``: LiteRT's; OpenCV's
    DNN module runs on OpenCV's thread pool, which the pipeline sets."""
    return YunetDetector(o.min_score, o.nms_iou, o.scale, o.min_size, o.engine, threads)
