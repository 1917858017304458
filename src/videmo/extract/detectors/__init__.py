"""Face detectors: one interface (:mod:`.base`), chosen by name with ``faces.detector``.

``haar`` (OpenCV's cascade, fer's default), ``mtcnn`` (the mtcnn package's networks on LiteRT,
or on TensorFlow with ``faces.mtcnn_engine: tensorflow``) and ``mediapipe`` (the BlazeFace
short-range model of MediaPipe's face landmarker, run with LiteRT). Each lives in its own module
and is imported only when chosen, so only ``mtcnn_engine: tensorflow`` imports TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from videmo.extract.detectors.base import (
    Face,
    FaceDetector,
    detect_faces,
    downscale,
    select_faces,
)
from videmo.registry import Registry

if TYPE_CHECKING:
    from videmo.config import FacesConfig

__all__ = ["DETECTORS", "Face", "FaceDetector", "detect_faces", "downscale", "make_detector",
           "select_faces"]

# faces.detector: name -> "module:function(cfg: FacesConfig, threads) -> FaceDetector"
DETECTORS = Registry("face detector (faces.detector)", {
    "haar": "videmo.extract.detectors.haar:from_config",
    "mtcnn": "videmo.extract.detectors.mtcnn_litert:from_config",
    "mediapipe": "videmo.extract.detectors.blazeface:from_config",
    "blazeface_full": "videmo.extract.detectors.blazeface_full:from_config",
})


def make_detector(cfg: FacesConfig, threads: int = 1) -> FaceDetector:
    """The detector ``cfg.detector`` names, with its options (``threads``: LiteRT's)."""
    return DETECTORS.get(cfg.detector)(cfg, threads)
