"""MTCNN from the ``mtcnn`` 1.0.0 package on TensorFlow (``faces.mtcnn_engine: tensorflow``).

The reference for :mod:`videmo.extract.detectors.mtcnn_litert` (the default engine), kept for
runs that must continue bit for bit from earlier ones and for the parity golden files."""

from __future__ import annotations

import cv2
import numpy as np

from videmo.extract.detectors.base import Face


class MtcnnDetector:
    """MTCNN (the ``mtcnn`` 1.0.0 package, TensorFlow), fed RGB, batched per call.

    mtcnn runs with its own ``min_face_size`` of 20 (above 20 it silently returns nothing);
    smaller faces and faces under ``min_confidence`` are dropped afterwards. ``onet``: the
    package's three stages (``face_and_landmarks_detection``), else P- and R-Net only.
    """

    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.9, min_size: int = 20, onet: bool = False):
        from videmo.runtime import import_tensorflow, tf_device

        tf = import_tensorflow()
        from mtcnn import MTCNN

        self.device = tf_device(tf)
        stages = "face_and_landmarks_detection" if onet else "face_detection_only"
        self.mtcnn = MTCNN(stages=stages, device=self.device)
        self.min_confidence = min_confidence
        self.min_size = min_size

    def detect(self, frames: list[np.ndarray], scale: float = 1.0) -> list[list[Face]]:
        if not frames:
            return []
        rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
        same_size = all(f.shape == rgb[0].shape for f in rgb)
        if same_size and len(rgb) > 1:
            results = self.mtcnn.detect_faces(rgb, min_face_size=20, box_format="xywh")
        else:
            results = [self.mtcnn.detect_faces(f, min_face_size=20, box_format="xywh")
                       for f in rgb]
        min_side = self.min_size * scale
        out = []
        for found in results:
            faces = []
            for d in found:
                x, y, w, h = (int(round(v)) for v in d["box"])
                conf = float(d["confidence"])
                if conf < self.min_confidence or min(w, h) < min_side:
                    continue
                faces.append(Face(max(0, x), max(0, y), w, h, conf))
            out.append(faces)
        return out
