"""Pixel frame models: seven emotion probabilities from a 48x48 grey face crop, on LiteRT.

``emotions.model: pixels`` scores each face with the convolutional networks that
``videmo train`` trained on FER2013 (MODELS.md), exported to a TFLite file and run with
ai-edge-litert: no TensorFlow at run time. ``emotions.model: pixels_real`` is the same three
networks with one new last layer fitted on real photos + FER2013
(``scripts/train_pixels_real.py``; MODELS.md "Real photos"): same input, same cost.
``emotions.model: pixels_distilled`` is one of the three networks trained on ``pixels_real``'s
outputs (``scripts/distil_pixels.py``; MODELS.md "pixels_distilled"): same input and output,
about a third of the cost. The face
is cut by :mod:`videmo.extract.crop`, the step the training read its images through, framed
for the run's detector (``models/face_framing.json``, measured on FER2013) and, with
``emotions.align``, rotated so the eyes are level (BlazeFace's eye keypoints; for boxes without
keypoints, the eyes found by OpenCV's eye cascade inside the box, else no rotation).

Use::

    model = PixelModel.load()                    # the shipped network and its card
    model = PixelModel.load(name="pixels_real")  # the real-photo last layer
    model = PixelModel.load(name="pixels_distilled")  # one network, distilled
    probabilities = model.predict(crops)         # uint8 (n, 48, 48) -> (n, 7) float32
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from videmo import schema
from videmo.extract.crop import SIZE, Framing, eye_angle, face_crop
from videmo.extract.detectors import DETECTORS, detector_spec
from videmo.extract.images import to_grey
from videmo.models import EYE_CASCADE, FACE_FRAMING, PIXEL_MODELS, model_path

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.extract.features.base import FaceBatch

MAX_ALIGN_DEG = 30.0  # a larger eye angle is more likely a wrong eye pair than a tilted head
EYE_SEARCH_WIDTH = 80  # px: the box width the eye cascade searches (see EyeFinder)


class PixelModel:
    """A TFLite pixel model with a resizable batch; ``flip`` adds the mirrored crops' mean
    (test-time augmentation, measured as its own row in MODELS.md)."""

    def __init__(self, path: Path, card: dict[str, Any], threads: int = 1, flip: bool = False,
                 reference_kernels: bool = False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from videmo.runtime import quiet_native_logs

        # reference_kernels: LiteRT's portable kernels instead of XNNPACK (golden tolerances)
        resolver = (OpResolverType.BUILTIN_REF if reference_kernels
                    else OpResolverType.AUTO)
        with quiet_native_logs():
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads,
                                           experimental_op_resolver_type=resolver)
        self.card = card
        self.flip = flip
        detail = self.interpreter.get_input_details()[0]
        self.input, self.output = detail["index"], self.interpreter.get_output_details()[0]["index"]
        self._batch = -1

    @classmethod
    def load(cls, threads: int = 1, flip: bool = False, name: str = "pixels") -> PixelModel:
        """A shipped pixel model (a name of ``models.PIXEL_MODELS``; sha256 checked) and its
        card."""
        return cls(model_path(model_files(name)[0]), shipped_card(name), threads, flip)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch:
            self.interpreter.resize_tensor_input(self.input, [len(x), SIZE, SIZE, 1])
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self.input, x[..., None].astype(np.float32))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output).astype(np.float32)
        # an int8 model's softmax comes in steps of 1/256: rows are made to sum to 1 again
        return out / np.maximum(out.sum(1, keepdims=True), 1e-12)

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """uint8 or float (n, 48, 48) grey crops (0-255) -> (n, 7) in schema.EMOTIONS order."""
        if len(crops) == 0:
            return np.zeros((0, len(schema.EMOTIONS)), np.float32)
        x = np.asarray(crops)
        if self.flip:
            both = self._run(np.concatenate([x, x[:, :, ::-1]]))
            return (both[: len(x)] + both[len(x):]) / 2
        return self._run(x)


def model_files(name: str) -> tuple[str, str]:
    """The network and card files of pixel model ``name`` (models.PIXEL_MODELS)."""
    try:
        return PIXEL_MODELS[name]
    except KeyError:
        raise ValueError(f"no pixel model {name!r}; shipped: {', '.join(PIXEL_MODELS)}") from None


@cache
def shipped_card(name: str = "pixels") -> dict[str, Any]:
    return json.loads(model_path(model_files(name)[1]).read_text())


@cache
def framings() -> dict[str, Framing]:
    """The crop framing of each detector, as measured on FER2013 (face_framing.json)."""
    measured = json.loads(model_path(FACE_FRAMING).read_text())["detectors"]
    return {name: Framing(m["scale"], m["dx"], m["dy"]) for name, m in measured.items()}


def framing_for(detector: str) -> Framing:
    """The crop framing of ``detector``'s boxes: its spec's own (a measured tuple, or the name of
    a detector whose boxes frame faces alike), else face_framing.json's."""
    own = detector_spec(detector).framing if detector in DETECTORS else None
    if isinstance(own, tuple):
        return Framing(*own)
    measured = own if isinstance(own, str) else detector  # a name: its measured framing
    try:
        return framings()[measured]
    except KeyError:
        raise ValueError(f"no crop framing measured for detector {detector!r}; known: "
                         f"{', '.join(framings())} (scripts/calibrate_framing.py)") from None


class EyeFinder:
    """Eye centres for a face box without keypoints: OpenCV's eye cascade in the box's upper
    part, one eye on each side of its centre line (the largest on each side), else None."""

    def __init__(self) -> None:
        self.cascade = cv2.CascadeClassifier(str(model_path(EYE_CASCADE)))

    def eyes(self, grey: np.ndarray, box: tuple[int, int, int, int]):
        x, y, w, h = (int(v) for v in box)
        x0, y0 = max(0, x), max(0, y)
        roi = grey[y0: max(y0, y + int(h * 0.6)), x0: max(x0, x + w)]
        if roi.shape[0] < 10 or roi.shape[1] < 20:
            return None
        # the search runs on the box shrunk to EYE_SEARCH_WIDTH: eyes are then 10-40 px, and
        # the cascade costs about a millisecond whatever the face's size
        k = min(1.0, EYE_SEARCH_WIDTH / roi.shape[1])
        if k < 1.0:
            roi = cv2.resize(roi, (EYE_SEARCH_WIDTH, max(1, round(roi.shape[0] * k))),
                             interpolation=cv2.INTER_AREA)
        ws = w * k
        found = self.cascade.detectMultiScale(roi, 1.1, 3, minSize=(max(5, int(ws / 8)),) * 2,
                                              maxSize=(max(6, int(ws / 2)),) * 2)
        found = [tuple(v / k for v in f) for f in found]
        mid = x + w / 2 - x0
        left = [f for f in found if f[0] + f[2] / 2 < mid]
        right = [f for f in found if f[0] + f[2] / 2 >= mid]
        if not left or not right:
            return None
        a = max(left, key=lambda f: f[2] * f[3])
        b = max(right, key=lambda f: f[2] * f[3])
        centre = lambda f: (x0 + f[0] + f[2] / 2, y0 + f[1] + f[3] / 2)  # noqa: E731
        return centre(a), centre(b)


def face_angle(face, grey: np.ndarray | None, finder: EyeFinder | None) -> float:
    """Degrees that level the eyes of ``face`` (0 when they cannot be placed). Keypoints first
    (BlazeFace: image-left eye, image-right eye), then ``finder`` on the grey frame."""
    eyes = None
    keypoints = getattr(face, "keypoints", ())
    if len(keypoints) >= 2:
        eyes = (keypoints[0], keypoints[1])
    elif finder is not None and grey is not None:
        eyes = finder.eyes(grey, (face.x, face.y, face.w, face.h))
    if eyes is None:
        return 0.0
    # eye_angle takes the subject's left eye (image right) first
    angle = eye_angle(eyes[1], eyes[0])
    return angle if abs(angle) <= MAX_ALIGN_DEG and not math.isnan(angle) else 0.0


def crops_for(frame: np.ndarray, faces: list, framing: Framing, align: bool,
              finder: EyeFinder | None = None) -> np.ndarray:
    """(k, 48, 48) uint8 crops of ``faces`` in a BGR ``frame`` for a pixel model."""
    if not faces:
        return np.zeros((0, SIZE, SIZE), np.uint8)
    grey = to_grey(frame)
    out = []
    for face in faces:
        angle = face_angle(face, grey, finder) if align else 0.0
        box = getattr(face, "box", None) or (face.x, face.y, face.w, face.h)
        out.append(face_crop(grey, box, framing, SIZE, angle))
    return np.stack(out)


def files(cfg: Config) -> tuple[str, ...]:
    """The network, its card, the framings and, with ``emotions.align``, the eye cascade (its
    spec in frame_models.py)."""
    return (*model_files(cfg.emotions.model), FACE_FRAMING) + (
        (EYE_CASCADE,) if cfg.emotions.align else ())


class PixelScorer:
    """``emotions.model: pixels``, ``pixels_real`` or ``pixels_distilled``: that pixel model on a
    48x48 crop of each face, framed for the run's detector (``emotions.align``,
    ``emotions.flip``)."""

    def __init__(self, cfg: Config, threads: int) -> None:
        self.pixels = PixelModel.load(threads, flip=cfg.emotions.flip, name=cfg.emotions.model)
        self.framing = framing_for(cfg.faces.detector)
        self.align = cfg.emotions.align
        self.eye_finder = EyeFinder() if cfg.emotions.align else None

    def score(self, batch: FaceBatch) -> list[np.ndarray]:
        crops = crops_for(batch.image, batch.faces, self.framing, self.align, self.eye_finder)
        return list(self.pixels.predict(crops))

