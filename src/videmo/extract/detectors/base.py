"""What every face detector shares: the :class:`Face` box, the :class:`FaceDetector`
interface, selection of faces, and detection on downscaled frames.

A detector maps a batch of BGR frames to one list of :class:`Face` per frame, boxes in the
pixels of the frames it was given. :func:`detect_faces` adds what every detector shares:
optional downscaling before detection (boxes mapped back to full resolution) and face
selection. A new detector implements ``detect`` in its own module and adds one spec to the
registry in ``videmo.extract.detectors`` (:class:`videmo.extract.specs.DetectorSpec`).
"""


from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from videmo.extract.images import to_grey

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
                 max_width: int | None = None, grey: bool = False) -> list[list[Face]]:
    """Faces per frame in full-resolution pixels, optionally detected on downscaled frames;
    ``grey``: the detector reads grey frames (its spec says so), converted before shrinking."""
    if max_width is not None and grey:
        frames = [to_grey(f) for f in frames]
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
