"""Face detectors: one interface (:mod:`.base`), chosen by name with ``faces.detector``.

``haar`` (OpenCV's cascade, fer's default), ``mtcnn`` (the mtcnn package's networks on LiteRT,
or on TensorFlow with ``faces.mtcnn_engine: tensorflow``) and ``mediapipe`` (the BlazeFace
short-range model of MediaPipe's face landmarker, run with LiteRT). Each lives in its own module
and is imported only when chosen, so only ``mtcnn_engine: tensorflow`` imports TensorFlow.
"""

from __future__ import annotations

from videmo.config import FacesConfig
from videmo.extract.detectors.base import (
    Face,
    FaceDetector,
    detect_faces,
    downscale,
    select_faces,
)

__all__ = ["DETECTORS", "Face", "FaceDetector", "detect_faces", "downscale", "make_detector",
           "select_faces"]

DETECTORS = ("haar", "mtcnn", "mediapipe")


def make_detector(cfg: FacesConfig, threads: int = 1) -> FaceDetector:
    """The detector ``cfg.detector`` names, with its options (``threads``: LiteRT's)."""
    if cfg.detector == "haar":
        from videmo.extract.detectors.haar import HaarDetector

        return HaarDetector(cfg.haar.scale_factor, cfg.haar.min_neighbors, cfg.haar.min_size)
    if cfg.detector == "mtcnn" and cfg.mtcnn_engine == "tensorflow":
        from videmo.extract.detectors.mtcnn import MtcnnDetector

        return MtcnnDetector(cfg.mtcnn.min_confidence, cfg.mtcnn.min_size, cfg.mtcnn.onet)
    if cfg.detector == "mtcnn":
        from videmo.extract.detectors.mtcnn_litert import MtcnnLiteDetector

        return MtcnnLiteDetector(cfg.mtcnn.min_confidence, cfg.mtcnn.min_size, cfg.mtcnn.onet,
                                 threads)
    if cfg.detector == "mediapipe":
        from videmo.extract.detectors.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(threads, min_score=cfg.mediapipe.min_score)
    raise ValueError(f"unknown detector {cfg.detector!r}; known: {', '.join(DETECTORS)}")
