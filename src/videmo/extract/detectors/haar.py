"""OpenCV's frontal-face Haar cascade, with fer's parameters (faces.detector: haar)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from videmo import models
from videmo.extract.detectors.base import Face
from videmo.extract.images import to_grey

if TYPE_CHECKING:
    from videmo.config import FacesConfig


class HaarDetector:
    """OpenCV's frontal-face Haar cascade with fer's parameters (on the grey image)."""

    name = "haar"  # works on grey frames: its spec says grey, so frames are converted first

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
            grey = to_grey(frame)
            boxes = self.cascade.detectMultiScale(
                grey,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                flags=cv2.CASCADE_SCALE_IMAGE,
                minSize=(side, side),
            )
            out.append([Face(int(x), int(y), int(w), int(h)) for (x, y, w, h) in boxes])
        return out


def from_config(cfg: FacesConfig, threads: int = 1) -> HaarDetector:
    """``faces.detector: haar`` (an entry of :data:`videmo.extract.detectors.DETECTORS`)."""
    return HaarDetector(cfg.haar.scale_factor, cfg.haar.min_neighbors, cfg.haar.min_size)
