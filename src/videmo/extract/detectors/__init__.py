"""Face detectors: one interface (:mod:`.base`), chosen by name with ``faces.detector``.

``haar`` (OpenCV's cascade, fer's default), ``mtcnn`` (the mtcnn package's networks on LiteRT,
or on TensorFlow with ``faces.mtcnn_engine: tensorflow``), ``mediapipe`` (the BlazeFace
short-range model of MediaPipe's face landmarker, run with LiteRT), ``blazeface_full`` (its
full-range model, on tiles) and ``yunet`` (OpenCV's YuNet: small faces in one pass). Each lives
in its own module and is imported only when chosen, so only ``mtcnn_engine: tensorflow``
imports TensorFlow. A detector is that module plus one
:class:`~videmo.extract.specs.DetectorSpec` here (or ``DETECTORS.register(name, spec)`` at run
time): the spec says its options section, model files, packages, batch size, grey input,
keypoints and crop framing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from videmo import models
from videmo.extract.detectors.base import (
    Face,
    FaceDetector,
    detect_faces,
    downscale,
    select_faces,
)
from videmo.extract.specs import DetectorSpec, _call, spec_of
from videmo.registry import Registry

if TYPE_CHECKING:
    from videmo.config import Config, FacesConfig

__all__ = ["DETECTORS", "DetectorSpec", "Face", "FaceDetector", "detect_faces",
           "detector_spec", "downscale", "make_detector", "select_faces"]

# faces.detector: name -> its spec (what it loads, its options, its batch size ...); the code
# is imported only when the detector is made
DETECTORS = Registry("face detector (faces.detector)", {
    "haar": DetectorSpec(
        "videmo.extract.detectors.haar:from_config", section="faces.haar",
        files=(models.HAAR_CASCADE,), grey=True,
        doc="OpenCV's frontal-face Haar cascade with fer's parameters."),
    "mtcnn": DetectorSpec(
        "videmo.extract.detectors.mtcnn_litert:from_config", section="faces.mtcnn",
        files="videmo.extract.detectors.mtcnn_litert:files",
        packages="videmo.extract.detectors.mtcnn_litert:packages",
        batch_size="videmo.extract.detectors.mtcnn_litert:batch_size",
        key="videmo.extract.detectors.mtcnn_litert:key",
        doc="MTCNN (P- and R-Net, optionally O-Net) on LiteRT or on TensorFlow."),
    "mediapipe": DetectorSpec(
        "videmo.extract.detectors.blazeface:from_config", section="faces.mediapipe",
        files=(models.FACE_LANDMARKER,), packages=("ai-edge-litert",), keypoints=True,
        doc="MediaPipe's BlazeFace short-range detector on LiteRT, with eye keypoints."),
    "blazeface_full": DetectorSpec(
        "videmo.extract.detectors.blazeface_full:from_config", section="faces.blazeface_full",
        options="videmo.extract.detectors.blazeface_full:BlazefaceFullConfig",
        files=(models.BLAZEFACE_FULL,), packages=("ai-edge-litert",), keypoints=True,
        framing=(1.1114, 0.0022, -0.0270),
        doc="MediaPipe's BlazeFace full-range detector on LiteRT, on the frame and on tiles, "
            "with eye keypoints."),
    "yunet": DetectorSpec(
        "videmo.extract.detectors.yunet:from_config", section="faces.yunet",
        options="videmo.extract.detectors.yunet:YunetConfig",
        files="videmo.extract.detectors.yunet:files",
        packages="videmo.extract.detectors.yunet:packages",
        # FER2013's framing of its boxes: scripts/calibrate_framing.py /tmp/fer2013 --n 1500
        # --detectors yunet --spec (found 1,352 of 1,500)
        framing=(1.0, 0.0, -0.0055),
        doc="YuNet (OpenCV's model zoo) on LiteRT, or OpenCV's FaceDetectorYN: small faces in "
            "one pass."),
})


def detector_spec(name: str) -> DetectorSpec:
    """The spec of detector ``name`` (a bare factory registered the old way: the defaults)."""
    return spec_of(DETECTORS.get(name), DetectorSpec)


def make_detector(cfg: Config | FacesConfig, threads: int = 1) -> FaceDetector:
    """The detector ``faces.detector`` names, with its options (``threads``: LiteRT's). Given
    the whole config, a plug-in with its own options section reads them from it (as the
    pipeline does: :meth:`DetectorSpec.build`); given the ``faces`` section alone, it gets its
    defaults."""
    if hasattr(cfg, "faces"):
        return detector_spec(cfg.faces.detector).build(cfg, threads)
    spec = detector_spec(cfg.detector)
    options = spec.options_type()
    return _call(spec.make, options() if options is not None else cfg, threads)
