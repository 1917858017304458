"""Score faces with the FER model (mini-Xception): seven probabilities in fer's label order.

Preprocessing reproduces ``fer.FER.detect_emotions`` exactly, because the model was trained
and published with it: square the box by growing its short side, widen it by offsets (10, 10),
crop from the grey frame padded by 40 px filled with the mean of its bottom two rows, resize
to 64x64 and scale to [-1, 1]. The parity test (tests/test_fer_parity.py) holds us to it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from videmo import models, schema
from videmo.extract.detectors import Face
from videmo.extract.features.base import FaceBatch, FeatureExtractor
from videmo.extract.images import to_grey

if TYPE_CHECKING:
    from videmo.config import Config

log = logging.getLogger(__name__)

PADDING = 40
OFFSETS = (10, 10)
INPUT_SIZE = (64, 64)


def scale_input(crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """fer's input scaling: 64x64 grey crops (0-255) as float32 in [-1, 1]."""
    return (np.asarray(crops, dtype=np.float32) / 255.0 - 0.5) * 2.0


def pad(grey: np.ndarray) -> np.ndarray:
    """fer's pad(): a 40 px border filled with the mean of the bottom two rows."""
    rows = grey.shape[0]
    mean = cv2.mean(grey[rows - 2: rows, :])[0]
    return cv2.copyMakeBorder(grey, PADDING, PADDING, PADDING, PADDING,
                              cv2.BORDER_CONSTANT, value=[mean, mean, mean])


def to_square(face: Face) -> tuple[int, int, int, int]:
    """fer's tosquare(): grow the shorter side, centred (integer halves as fer does)."""
    x, y, w, h = face.x, face.y, face.w, face.h
    if h > w:
        diff = h - w
        x -= diff // 2
        w += diff
    elif w > h:
        diff = w - h
        y -= diff // 2
        h += diff
    return x, y, w, h


def _window(face: Face) -> tuple[int, int, int, int]:
    """(x1, x2, y1, y2): fer's widened square box in the padded frame's coordinates."""
    x, y, w, h = to_square(face)
    return (x - OFFSETS[0] + PADDING, x + w + OFFSETS[0] + PADDING,
            y - OFFSETS[1] + PADDING, y + h + OFFSETS[1] + PADDING)


def crop_faces(frame: np.ndarray, faces: list[Face]) -> tuple[np.ndarray, list[int]]:
    """Model inputs (k, 64, 64) float32 in [-1, 1] and the indices of faces that could be cropped.

    The crop equals fer's (grey frame, padded by :func:`pad`, sliced by the widened square box)
    pixel for pixel, but only the box's region is converted and padded: at 1080p that skips a
    full-frame grey conversion and border copy per frame. A box that lies wholly outside the
    padded frame gives an empty crop; fer skips such a face and so do we (its index is missing
    from the returned list).
    """
    rows, cols = frame.shape[:2]
    fill = _pad_value(frame)
    crops, kept = [], []
    for i, face in enumerate(faces):
        x1, x2, y1, y2 = _window(face)
        if x2 <= 0 or y2 <= 0:  # numpy would count a negative end from the far side
            crop = pad(to_grey(frame))[max(0, y1): y2, max(0, x1): x2]
        else:
            crop = _padded_region(frame, fill, max(0, y1), min(y2, rows + 2 * PADDING),
                                  max(0, x1), min(x2, cols + 2 * PADDING))
        if crop.size == 0:
            log.debug("face %s gives an empty crop; skipped", face)
            continue
        crops.append(cv2.resize(crop, INPUT_SIZE))
        kept.append(i)
    if not crops:
        return np.empty((0, *INPUT_SIZE), np.float32), kept
    return scale_input(crops), kept


def croppable(image: np.ndarray, faces: list[Face]) -> list[int]:
    """Indices of the faces :func:`crop_faces` keeps, from the boxes alone (no pixel is
    touched): a face whose widened square box gives an empty slice of the padded frame is
    skipped, as fer skips it. Every emotions.model keeps the same faces, so a run's rows do not
    depend on whether fer's crops are cut."""
    rows, cols = image.shape[:2]
    padded_rows, padded_cols = range(rows + 2 * PADDING), range(cols + 2 * PADDING)
    kept = []
    for i, face in enumerate(faces):
        x1, x2, y1, y2 = _window(face)
        # the slice crop_faces takes (a negative end counts from the far side, as in numpy)
        if len(padded_rows[max(0, y1): y2]) and len(padded_cols[max(0, x1): x2]):
            kept.append(i)
    return kept


def _pad_value(frame: np.ndarray) -> int:
    """The border value :func:`pad` writes, as uint8 (rounded by OpenCV, as fer's is)."""
    rows = frame.shape[0]
    mean = cv2.mean(to_grey(frame[rows - 2: rows]))[0]
    one = cv2.copyMakeBorder(np.zeros((1, 1), np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT,
                             value=[mean, mean, mean])
    return int(one[0, 0])


def _padded_region(frame: np.ndarray, fill: int, y1: int, y2: int, x1: int,
                   x2: int) -> np.ndarray:
    """``pad(grey(frame))[y1:y2, x1:x2]`` for 0 <= y1, x1 and ends within the padded frame."""
    out = np.full((max(0, y2 - y1), max(0, x2 - x1)), fill, np.uint8)
    rows, cols = frame.shape[:2]
    iy1, iy2 = max(y1, PADDING), min(y2, PADDING + rows)
    ix1, ix2 = max(x1, PADDING), min(x2, PADDING + cols)
    if iy2 > iy1 and ix2 > ix1:
        region = frame[iy1 - PADDING: iy2 - PADDING, ix1 - PADDING: ix2 - PADDING]
        out[iy1 - y1: iy2 - y1, ix1 - x1: ix2 - x1] = to_grey(region)
    return out


class EmotionModel(Protocol):
    name: str

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(k, 64, 64) inputs -> (k, 7) probabilities in schema.EMOTIONS order."""
        ...


class TfliteModel:
    """fer's quantized tflite model on the LiteRT runtime (no TensorFlow needed)."""

    name = "tflite"

    def __init__(self, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        from videmo.runtime import quiet_native_logs

        path = models.model_path(models.EMOTION_TFLITE)
        with quiet_native_logs():  # LiteRT's "Created ... XNNPACK delegate" line, from C++
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def predict(self, faces: np.ndarray) -> np.ndarray:
        out = np.empty((len(faces), 7), np.float32)
        for i, face in enumerate(faces):  # the file has a fixed batch of 1, as fer runs it
            self.interpreter.set_tensor(self.input, face[None, :, :, None].astype(np.float32))
            self.interpreter.invoke()
            out[i] = self.interpreter.get_tensor(self.output)[0]
        return out


class KerasModel:
    """fer's Keras ``.hdf5`` model, run in fixed-size batches (one traced shape; GPU-friendly)."""

    name = "keras"

    def __init__(self, batch_size: int = 64):
        from videmo.runtime import import_tensorflow

        tf = import_tensorflow()
        path = models.model_path(models.EMOTION_KERAS)
        self.model = tf.keras.models.load_model(str(path), compile=False)
        self.batch_size = batch_size
        self._predict = tf.function(lambda x: self.model(x, training=False),
                                    reduce_retracing=True)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        n = len(faces)
        if n == 0:
            return np.empty((0, 7), np.float32)
        out = []
        for start in range(0, n, self.batch_size):
            chunk = faces[start: start + self.batch_size][..., None].astype(np.float32)
            k = len(chunk)
            if k < self.batch_size:  # pad to the one traced shape
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - k, *chunk.shape[1:]),
                                                        np.float32)])
            out.append(np.asarray(self._predict(chunk))[:k])
        return np.concatenate(out)


def make_model(engine: str, threads: int = 1, batch_size: int = 64) -> EmotionModel:
    if engine == "tflite":
        return TfliteModel(threads)
    if engine == "keras":
        return KerasModel(batch_size)
    raise ValueError(f"unknown emotion engine {engine!r}")


def files(cfg: Config) -> tuple[str, ...]:
    """fer's network as ``emotions.engine`` loads it (its spec in frame_models.py)."""
    return (models.EMOTION_TFLITE if cfg.emotions.engine == "tflite" else models.EMOTION_KERAS,)


def packages(cfg: Config) -> tuple[str, ...]:
    return ("ai-edge-litert",) if cfg.emotions.engine == "tflite" else ("tensorflow", "keras")


class FerScorer:
    """``emotions.model: fer``: fer's mini-Xception on the face's FER crop
    (``emotions.engine``)."""

    def __init__(self, cfg: Config, threads: int) -> None:
        self.model = make_model(cfg.emotions.engine, threads, cfg.emotions.batch_size)

    @classmethod
    def of(cls, model: EmotionModel) -> FerScorer:
        self = cls.__new__(cls)
        self.model = model
        return self

    def score(self, batch: FaceBatch) -> list[np.ndarray]:
        crops, kept = crop_faces(batch.image, batch.faces)  # all of them, after keep()
        out = [np.full(len(schema.EMOTIONS), np.nan, np.float32) for _ in batch.faces]
        for i, p in zip(kept, self.model.predict(crops), strict=True):
            out[i] = p
        return out


class EmotionsExtractor(FeatureExtractor):
    """The seven emotion probabilities of each face: the per-frame table (frames.parquet),
    scored by the frame model ``emotions.model`` names
    (:data:`videmo.extract.features.frame_models.FRAME_MODELS`).

    ``fer`` scores the face's FER crop with fer's mini-Xception (``emotions.engine``);
    ``pixels`` scores a 48x48 crop of the face framed for the run's detector with videmo's
    pixel model (:mod:`videmo.extract.features.pixel_model`, LiteRT); ``blendshapes`` and
    ``landmarks`` score its face mesh with a frame model of
    :mod:`videmo.extract.features.frame_model` (so they need the ``mesh`` extractor). A face
    without a mesh then has no scores (NaN): :func:`videmo.evaluate.vote.face_rows` leaves it
    out of the votes, as a frame without a scored face."""

    name = "emotions"
    section = "emotions"
    table = "frames.parquet"
    columns = schema.EMOTIONS

    @classmethod
    def needs(cls, cfg: Config) -> tuple[str, ...]:
        from videmo.extract.features.frame_models import frame_model_spec

        return frame_model_spec(cfg.emotions.model).reads

    @classmethod
    def cache_key(cls, cfg: Config) -> dict:
        return cfg.extract_key()

    @classmethod
    def keep(cls, image: np.ndarray, faces: list[Face]) -> list[int]:
        """fer's rule for every frame model: a face it cannot crop gets no row."""
        return croppable(image, faces)

    def __init__(self, cfg: Config, threads: int) -> None:
        from videmo.extract.features.frame_models import frame_model_spec

        self.model_name = cfg.emotions.model
        self.scorer = frame_model_spec(self.model_name).build(cfg, threads)

    @classmethod
    def of(cls, model: EmotionModel) -> EmotionsExtractor:
        """An extractor around an already loaded fer-like model (tests, benchmarks)."""
        self = cls.__new__(cls)
        self.model_name, self.scorer = "fer", FerScorer.of(model)
        return self

    def extract(self, batch: FaceBatch) -> list[np.ndarray]:
        if not batch.faces:
            return []
        return self.scorer.score(batch)
