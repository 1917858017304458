"""Frame models on face mesh features: 7 emotion probabilities from a face's :class:`MeshResult`.

The alternatives to fer's pixel model, chosen with ``emotions.model`` (run by
:class:`videmo.extract.features.emotions.EmotionsExtractor`): ``blendshapes`` (a network on the
blendshape scores selected at training) and ``landmarks`` (a 1D-CNN on the 478 landmarks after
pose normalisation). Both were trained by ``videmo train`` on FER2013 (MODELS.md) and ship
inside the package as a Keras ``.keras`` file, loaded in safe mode (no code in the file runs),
beside a JSON card that says which features, in which order, with which preprocessing: the
training and this module share :func:`features`, so the two cannot drift apart.

Use::

    model = load_frame_model("blendshapes")
    probabilities = model.predict(mesh_results)   # (n, 7), schema.EMOTIONS order
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videmo import schema
from videmo.extract.features.pose import normalize_landmarks
from videmo.models import FRAME_MODEL_FILES, model_path

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.extract.features.base import FaceBatch

KINDS = ("blendshapes", "landmarks")


class FrameModelError(RuntimeError):
    """A frame model's card or file is inconsistent with this code."""


def blendshape_features(blendshapes: np.ndarray, names: list[str]) -> np.ndarray:
    """(n, 52) scores in schema.BLENDSHAPES order -> (n, k) float32, the named ones in order."""
    unknown = [n for n in names if n not in schema.BLENDSHAPES]
    if unknown:
        raise FrameModelError(f"unknown blendshape name(s) {unknown}; see schema.BLENDSHAPES")
    idx = [schema.BLENDSHAPES.index(n) for n in names]
    return np.asarray(blendshapes, np.float32)[:, idx]


def landmark_features(landmarks: np.ndarray, method: str) -> np.ndarray:
    """(n, 478, 3) landmarks (any pixel scale) -> (n, 478, 3) float32, each face normalised by
    :func:`videmo.extract.features.pose.normalize_landmarks` (``procrustes`` or ``minmax``)."""
    return np.stack([normalize_landmarks(lm, method) for lm in landmarks]).astype(np.float32) \
        if len(landmarks) else np.zeros((0, 478, 3), np.float32)


def features(card: dict[str, Any], blendshapes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The network's input for faces given as (n, 52) blendshapes and (n, 478, 3) landmarks, as
    the card says: ``kind`` blendshapes (``features``: names; ``sequence``: add a last axis of
    1, the LSTM's time steps) or landmarks (``normalization``)."""
    if card["kind"] == "blendshapes":
        x = blendshape_features(blendshapes, card["features"])
        return x[:, :, None] if card.get("sequence") else x
    if card["kind"] == "landmarks":
        return landmark_features(landmarks, card["normalization"])
    raise FrameModelError(f"frame model card: kind {card['kind']!r}; expected {KINDS}")


@dataclass
class FrameModel:
    """A loaded frame model: its card (features, preprocessing, numbers) and its network."""

    name: str
    card: dict[str, Any]
    network: Any

    def predict(self, meshes: list) -> np.ndarray:
        """(n, 7) probabilities in schema.EMOTIONS order for n faces' MeshResults."""
        if not meshes:
            return np.zeros((0, len(schema.EMOTIONS)), np.float32)
        blend = np.stack([m.blendshapes for m in meshes])
        lms = np.stack([m.landmarks for m in meshes])
        return self.predict_features(features(self.card, blend, lms))

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """(n, 7) probabilities for inputs already made by :func:`features`."""
        out = np.asarray(self.network(x, training=False), np.float32)
        if out.shape != (len(x), len(schema.EMOTIONS)):
            raise FrameModelError(f"frame model {self.name}: output {out.shape}, expected "
                                  f"({len(x)}, {len(schema.EMOTIONS)})")
        return out


def load(network_path: Path, card_path: Path, name: str) -> FrameModel:
    """A frame model from its .keras file (safe mode) and its JSON card."""
    import keras

    card = json.loads(card_path.read_text(encoding="utf-8"))
    if list(card.get("emotions", [])) != list(schema.EMOTIONS):
        raise FrameModelError(f"{card_path}: emotions {card.get('emotions')} are not "
                              f"schema.EMOTIONS {list(schema.EMOTIONS)}")
    network = keras.saving.load_model(network_path, compile=False, safe_mode=True)
    return FrameModel(name, card, network)


@cache
def load_frame_model(name: str) -> FrameModel:
    """A shipped frame model by name (``blendshapes`` or ``landmarks``), its files checked
    against their recorded sha256; loaded once per process."""
    if name not in FRAME_MODEL_FILES:
        raise KeyError(f"unknown frame model {name!r}; known: {', '.join(FRAME_MODEL_FILES)}")
    network, card = FRAME_MODEL_FILES[name]
    return load(model_path(network), model_path(card), name)


class MeshScorer:
    """``emotions.model: blendshapes | landmarks``: a frame model on each face's mesh (the
    ``mesh`` extractor's outputs); a face without a mesh gets NaN scores."""

    def __init__(self, cfg: Config, threads: int) -> None:
        from videmo.runtime import import_tensorflow

        import_tensorflow()  # quietly, with this process's thread budget, before Keras
        self.frame_model = load_frame_model(cfg.emotions.model)

    def score(self, batch: FaceBatch) -> list[np.ndarray]:
        meshes = batch.outputs["mesh"]
        out = [np.full(len(schema.EMOTIONS), np.nan, np.float32) for _ in meshes]
        have = [i for i, m in enumerate(meshes) if m is not None]
        if have:
            probs = self.frame_model.predict([meshes[i] for i in have])
            for i, p in zip(have, probs, strict=True):
                out[i] = p
        return out

