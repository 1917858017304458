"""YuNet (``faces.detector: yunet``): OpenCV's small CNN face detector, run by OpenCV's own
``cv2.FaceDetectorYN`` on the model file of the OpenCV model zoo
(``face_detection_yunet_2023mar.onnx``, MIT, shipped).

YuNet sees the whole frame at its own resolution (OpenCV pads it to a multiple of 32): no image
pyramid, one pass of a network of about 75,000 parameters, trained for faces of about 10 to 300
pixels. That makes it the detector for faces as wide shots show them at a fraction of MTCNN's
cost (numbers by face size and cost: BENCHMARKS.md, Face size). ``faces.yunet.scale`` runs it
on the frame resized by a factor (below 1: cheaper, larger faces only; above 1: smaller faces,
dearer), boxes mapped back to the frame's pixels.

Faces come as plain boxes, best score first (OpenCV's order after its non-maximum suppression).
YuNet also gives five landmarks (eyes, nose tip, mouth corners); they are not passed on: the
face mesh and the pixel model's eye alignment treat YuNet's boxes as they treat MTCNN's.
OpenCV's DNN module runs the network on OpenCV's thread pool, so ``run.threads`` (and the
cores lent to the last units of a run) set its threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from videmo import models
from videmo.config.fields import opt
from videmo.extract.detectors.base import Face


@dataclass(frozen=True)
class YunetConfig:
    min_score: float = opt(0.6, "Drop YuNet detections below this score (0-1; OpenCV's model "
                                "zoo demo uses 0.9, which misses some faces below about 32 "
                                "px: BENCHMARKS.md, Face size).", minimum=0)
    nms_iou: float = opt(0.3, "Non-maximum suppression: of two boxes overlapping by more than "
                              "this IoU, keep the better scored (OpenCV's default 0.3).",
                         minimum=0)
    scale: float = opt(1.0, "Run YuNet on the frame resized by this factor (boxes mapped back "
                            "to full resolution): below 1 is cheaper and misses the smallest "
                            "faces (YuNet needs about 10 px), above 1 finds smaller faces at "
                            "a higher cost.", minimum=0, exclusive=True)
    min_size: int = opt(0, "Drop faces narrower or shorter than this many full-resolution "
                           "pixels (0: keep all the model finds).", minimum=0)


# OpenCV keeps at most this many boxes before and after suppression (its default 5000)
TOP_K = 5000


class YunetDetector:
    """``faces.detector: yunet``: OpenCV's ``FaceDetectorYN`` with the shipped model; faces
    best score first."""

    name = "yunet"

    def __init__(self, min_score: float = 0.6, nms_iou: float = 0.3, scale: float = 1.0,
                 min_size: int = 0):
        if not 0 <= min_score <= 1:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        path = models.model_path(models.YUNET)
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), float(min_score),
                                                 float(nms_iou), TOP_K)
        except cv2.error as e:
            raise models.ModelFileError(f"OpenCV could not load YuNet from {path}: {e}") from e
        self.size: tuple[int, int] = (320, 320)
        self.scale = scale
        self.min_size = min_size

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
        ih, iw = image.shape[:2]
        if (iw, ih) != self.size:
            self.net.setInputSize((iw, ih))
            self.size = (iw, ih)
        _, found = self.net.detect(image)
        if found is None:
            return []
        # rows: x, y, w, h, five landmarks (x, y), score; in the resized image's pixels (a box
        # may reach past the frame's edge, as BlazeFace's do: the crop step pads)
        fx, fy = w / iw, h / ih
        out = []
        for row in found:
            x0, y0 = float(row[0]) * fx, float(row[1]) * fy
            x1, y1 = float(row[0] + row[2]) * fx, float(row[1] + row[3]) * fy
            ix, iy = round(x0), round(y0)
            if round(x1) - ix < 1 or round(y1) - iy < 1:
                continue
            out.append(Face(ix, iy, round(x1) - ix, round(y1) - iy, float(row[-1])))
        return out


def from_config(o: YunetConfig, threads: int = 1) -> YunetDetector:
    """``faces.detector: yunet`` (its spec in :data:`videmo.extract.detectors.DETECTORS`
    declares ``faces.yunet`` as its own options section: ``o``). ``threads`` is LiteRT's;
    OpenCV's DNN module runs on OpenCV's thread pool, which the pipeline sets."""
    return YunetDetector(o.min_score, o.nms_iou, o.scale, o.min_size)
