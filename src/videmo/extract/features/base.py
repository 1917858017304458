"""The feature-extractor interface: what every per-face feature of videmo declares.

A feature extractor turns the faces the detector chose in one sampled frame into one output per
face. It declares

* ``name``: its name in the config's ``features`` list (``emotions``, ``mesh``);
* ``section``: its config section (the options that change its numbers);
* ``table``: where its table lives in the run directory, and ``columns``: what that table
  holds beside the keys (clip_id, frame_index, face_index) every table shares, so tables join
  row by row;
* ``cache_key(cfg)``: everything its numbers depend on (its options, the sha256 of its model
  files, the versions of the packages that run them); a clip whose record holds another key is
  redone, one whose key matches is skipped (resume, shards, SLURM, kill-safety);
* ``needs(cfg)``: the extractors whose outputs it reads (the frame models of ``emotions.model``
  read the mesh), so the pipeline runs those first;
* one batched call per frame, :meth:`FeatureExtractor.extract`, on a :class:`FaceBatch`: the
  frame, its chosen faces, their FER crops and what the extractors before it returned.

The pipeline (:func:`videmo.extract.pipeline.analyze_clip`) calls the extractors a config turns
on in dependency order (:func:`videmo.extract.features.ordered`) and knows nothing of what they
compute; the run directory (:mod:`videmo.store`) persists each extractor's rows under its own
cache key. Adding an extractor is a class here, an entry in
:data:`videmo.extract.features.EXTRACTORS`, its columns in :mod:`videmo.schema` and its table in
the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.extract.detectors import Face


@dataclass
class FaceBatch:
    """One sampled frame's chosen faces, as every extractor sees them.

    ``image``: the full-resolution BGR frame; ``faces``: the chosen faces in face_index order
    (after :func:`videmo.extract.features.emotions.crop_faces` dropped any it could not crop);
    ``crops``: their (n, 64, 64) grey FER inputs; ``outputs``: what the extractors that ran
    before returned for these faces, by name."""

    image: np.ndarray
    faces: list[Face]
    crops: np.ndarray
    outputs: dict[str, list[Any]] = field(default_factory=dict)


class FeatureExtractor(ABC):
    """One per-face feature (see the module doc). Instances hold loaded models; build one with
    ``cls(cfg, threads)`` once per process."""

    name: ClassVar[str]
    section: ClassVar[str]
    table: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]

    @classmethod
    def needs(cls, cfg: Config) -> tuple[str, ...]:
        """Extractors whose outputs :meth:`extract` reads (they run first)."""
        return ()

    @classmethod
    @abstractmethod
    def cache_key(cls, cfg: Config) -> dict[str, Any]:
        """What this extractor's rows depend on (plain JSON-able data)."""

    @classmethod
    def cache_hash(cls, cfg: Config) -> str:
        from videmo.config import key_hash

        return key_hash(cls.cache_key(cfg))

    @abstractmethod
    def __init__(self, cfg: Config, threads: int) -> None:
        """Load the models (once per process)."""

    @abstractmethod
    def extract(self, batch: FaceBatch) -> list[Any]:
        """One output per face of ``batch``, in its order."""
