"""Find faces in frames: one interface, two detectors (Haar cascade, MTCNN).

A detector maps a batch of BGR frames to one list of :class:`Face` per frame, boxes in the
pixels of the frames it was given. :func:`detect_faces` adds what every detector shares:
optional downscaling before detection (boxes mapped back to full resolution) and face
selection. A third detector only has to implement ``detect``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from . import models
from .config import FacesConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    w: int
    h: int
    confidence: float = math.nan

    @property
    def area(self) -> int:
        return self.w * self.h

    def scaled(self, factor: float) -> Face:
        """This box in pixels of an image ``factor`` times larger."""
        if factor == 1.0:
            return self
        x0, y0 = round(self.x * factor), round(self.y * factor)
        x1, y1 = round((self.x + self.w) * factor), round((self.y + self.h) * factor)
        return Face(x0, y0, x1 - x0, y1 - y0, self.confidence)


class FaceDetector(Protocol):
    name: str

    def detect(self, frames: list[np.ndarray], scale: float) -> list[list[Face]]:
        """Faces per frame, in the detector's own order. ``scale`` is the downscale factor
        the frames were given (1.0 at full resolution), for size thresholds in full-res px."""
        ...


class HaarDetector:
    """OpenCV's frontal-face Haar cascade with fer's parameters (on the grey image)."""

    name = "haar"
    grey = True  # works on grey frames: detect_faces converts before shrinking (1/3 the work)

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 50):
        path = models.model_path(models.HAAR_CASCADE)
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise models.ModelFileError(f"OpenCV could not load the Haar cascade {path}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, frames: list[np.ndarray], scale: float = 1.0) -> list[list[Face]]:
        side = max(1, int(self.min_size * scale))
        out = []
        for frame in frames:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
            boxes = self.cascade.detectMultiScale(
                grey,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                flags=cv2.CASCADE_SCALE_IMAGE,
                minSize=(side, side),
            )
            out.append([Face(int(x), int(y), int(w), int(h)) for (x, y, w, h) in boxes])
        return out


class MtcnnDetector:
    """MTCNN (the ``mtcnn`` 1.0.0 package, TensorFlow), fed RGB, batched per call.

    mtcnn runs with its own ``min_face_size`` of 20 (above 20 it silently returns nothing);
    smaller faces and faces under ``min_confidence`` are dropped afterwards.
    """

    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.9, min_size: int = 20):
        from .runtime import import_tensorflow

        import_tensorflow()
        from mtcnn import MTCNN

        self.mtcnn = MTCNN(stages="face_detection_only", device=_tf_device())
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


def _tf_device() -> str:
    import tensorflow as tf

    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"


def make_detector(cfg: FacesConfig) -> FaceDetector:
    if cfg.detector == "haar":
        return HaarDetector(cfg.haar.scale_factor, cfg.haar.min_neighbors, cfg.haar.min_size)
    if cfg.detector == "mtcnn":
        return MtcnnDetector(cfg.mtcnn.min_confidence, cfg.mtcnn.min_size)
    raise ValueError(f"unknown detector {cfg.detector!r}")


def select_faces(faces: list[Face], how: str) -> list[Face]:
    """``largest`` (by area; first wins a tie), ``first`` (detector order), or ``all``."""
    if not faces or how == "all":
        return list(faces)
    if how == "first":
        return [faces[0]]
    if how == "largest":
        return [max(faces, key=lambda f: f.area)]
    raise ValueError(f"unknown face selection {how!r}")


def downscale(frame: np.ndarray, max_width: int | None) -> tuple[np.ndarray, float]:
    """The frame shrunk to at most ``max_width`` pixels wide, and the factor applied."""
    h, w = frame.shape[:2]
    if max_width is None or w <= max_width:
        return frame, 1.0
    scale = max_width / w
    small = cv2.resize(frame, (max_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return small, scale


def detect_faces(detector: FaceDetector, frames: list[np.ndarray],
                 max_width: int | None = None) -> list[list[Face]]:
    """Faces per frame in full-resolution pixels, optionally detected on downscaled frames."""
    if max_width is not None and getattr(detector, "grey", False):
        frames = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) if f.ndim == 3 else f for f in frames]
    if max_width is None:
        return detector.detect(frames, 1.0)
    shrunk = [downscale(f, max_width) for f in frames]
    scales = {s for _, s in shrunk}
    if len(scales) == 1:
        (scale,) = scales
        found = detector.detect([f for f, _ in shrunk], scale)
        return [[face.scaled(1 / scale) for face in faces] for faces in found]
    out = []
    for small, scale in shrunk:
        (faces,) = detector.detect([small], scale)
        out.append([face.scaled(1 / scale) for face in faces])
    return out
