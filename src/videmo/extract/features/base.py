"""The feature-extractor interface: what every per-face feature of videmo declares.

A feature extractor turns the faces the detector chose in one sampled frame into one output per
face. It declares

* ``name``: its name in the config's ``features`` list (``emotions``, ``mesh``);
* ``section``: its config section (the options that change its numbers);
* ``table``: where its merged table lives in the run directory, and ``columns``: what that
  table holds beside the keys (clip_id, frame_index, face_index) every table shares, so tables
  join row by row; ``parquet``: how the table is written (pyarrow options);
* ``cache_key(cfg)``: everything its numbers depend on (its options, the sha256 of its model
  files, the versions of the packages that run them); a clip whose record holds another key is
  redone, one whose key matches is skipped (resume, shards, SLURM, kill-safety);
* ``needs(cfg)``: the extractors whose outputs it reads (the frame models of ``emotions.model``
  read the mesh), so the pipeline runs those first;
* one batched call per frame, :meth:`FeatureExtractor.extract`, on a :class:`FaceBatch`: the
  frame, its chosen faces and what the extractors before it returned; an extractor cuts its own
  inputs from the frame (fer's 64x64 crops are cut only where fer scores);
* :meth:`FeatureExtractor.rows` and :meth:`FeatureExtractor.to_table`: its outputs as table
  rows (keys first) and the rows of a clip as an Arrow table.

``emotions`` is the base extractor (:data:`videmo.extract.features.BASE`): its rows are the
per-frame table (every sampled frame a row, faces or not) and its cache key is the run's
extract hash; it also says which chosen faces get rows (:meth:`FeatureExtractor.keep`).
Every other extractor writes a side table under its own cache key: the pipeline
(:func:`videmo.extract.pipeline.analyze_clip`), the runner and the run directory
(:mod:`videmo.store`, through :class:`videmo.schema.FeatureTable`) read the name, table, write
options and cache hash from here and know nothing of what it computes. Adding an extractor is
one module with its class and one entry in :data:`videmo.extract.features.EXTRACTORS` (or
``EXTRACTORS.register`` at run time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from videmo.config import Config
    from videmo.extract.detectors import Face
    from videmo.schema import FeatureTable


@dataclass
class FaceBatch:
    """One sampled frame's chosen faces, as every extractor sees them.

    ``image``: the full-resolution BGR frame; ``faces``: the chosen faces in face_index order
    (those the base extractor keeps, :meth:`FeatureExtractor.keep`); ``outputs``: what the
    extractors that ran before returned for these faces, by name."""

    image: np.ndarray
    faces: list[Face]
    outputs: dict[str, list[Any]] = field(default_factory=dict)


class FeatureExtractor(ABC):
    """One per-face feature (see the module doc). Instances hold loaded models; build one with
    ``cls(cfg, threads)`` once per process."""

    name: ClassVar[str]
    section: ClassVar[str]
    table: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    parquet: ClassVar[dict[str, Any]] = {}

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

    @classmethod
    def feature_table(cls, cfg: Config) -> FeatureTable:
        """What the run directory needs to store this extractor's side table under ``cfg``."""
        from videmo.schema import FeatureTable

        return FeatureTable(cls.name, cls.table, cls.cache_hash(cfg), dict(cls.parquet))

    @classmethod
    def keep(cls, image: np.ndarray, faces: list[Face]) -> list[int]:
        """The base extractor only: indices of the chosen faces that get rows (all)."""
        return list(range(len(faces)))

    @abstractmethod
    def __init__(self, cfg: Config, threads: int) -> None:
        """Load the models (once per process)."""

    @abstractmethod
    def extract(self, batch: FaceBatch) -> list[Any]:
        """One output per face of ``batch``, in its order."""

    @classmethod
    def rows(cls, clip_id: str, frame_index: int, outputs: list[Any]) -> list[tuple]:
        """A side table's rows of one frame: by default (clip_id, frame_index, face_index,
        *output) per face, an output being a sequence of ``columns`` values."""
        return [(clip_id, frame_index, i, *out) for i, out in enumerate(outputs)]

    @classmethod
    def to_table(cls, rows: list[tuple]) -> pa.Table:
        """A clip's side-table rows as an Arrow table (keys, then ``columns`` as float32)."""
        import pyarrow as pa

        from videmo import arrow, schema

        fields = [(schema.CLIP_ID, pa.string()), (schema.FRAME_INDEX, pa.int64()),
                  (schema.FACE_INDEX, pa.int16())] + [(c, pa.float32()) for c in cls.columns]
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in fields]
        return arrow.table(columns, pa.schema(fields), nan_is_null=False)
