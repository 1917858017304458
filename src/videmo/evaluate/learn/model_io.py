"""The model folder of ``videmo learn``: write the deployed model (:func:`save_model`) and load
it to label a run's clips (:func:`load_classifier`, what ``videmo report --classifier``
imports: this module reads feature families and clips, never the training code).

Saved models load without pickle: each learner writes its own plain form (the pooled learners
as numbers in ``model.json``, the LSTM as a ``.keras`` file loaded with Keras's safe mode).
``model.json`` records each file's sha256, checked before loading. Load only model folders you
made yourself."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from videmo import __version__, schema
from videmo.evaluate.learn.base import (
    CLASSES,
    ClipLearner,
    Estimator,
    Fitted,
    LearnError,
    ModelError,
    get_learner,
)
from videmo.evaluate.learn.clips import STATS, Clips, build_clips
from videmo.evaluate.learn.families import (
    FAMILIES,
    check_families,
    side_table_families,
    with_side_tables,
)
from videmo.runtime import git_commit
from videmo.store import write_text_atomic

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.store import RunDir

log = logging.getLogger(__name__)

MODEL_FORMAT = "videmo-clip-classifier"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(fitted: Fitted, model_dir: Path, clips: Clips, run: RunDir, cfg: Config) -> None:
    """Write model.json (and model.keras for the LSTM) to ``model_dir``; no pickle."""
    model_dir.mkdir(parents=True, exist_ok=True)
    d = cfg.to_dict()
    tables = side_table_families(fitted.features)
    meta: dict[str, Any] = {
        "format": MODEL_FORMAT, "format_version": 1, "classifier": fitted.classifier,
        "features": list(fitted.features), "params": fitted.params,
        "feature_names": fitted.feature_names, "stats": list(STATS),
        "classes": list(CLASSES), "videmo": __version__, "commit": git_commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "trained_on": {"run": str(run.path.resolve()), "clips": len(clips),
                       "extract_hash": cfg.extract_hash(), "clip_ids": list(clips.ids),
                       # a side table's cache hash under "<name>_hash" (mesh_hash), as records
                       **{f"{t}_hash": cfg.table_hash(t) for t in tables}},
        "extract_config": {k: d[k] for k in ("sampling", "faces", "emotions",
                                             *(("features", *(t for t in tables if t in d))
                                               if tables else ()))},
        "files": {},
    }
    learner = get_learner(fitted.classifier)
    x = learner.inputs(clips, fitted.features, cfg.learn.max_frames)
    meta.update(learner.export(fitted.model, x, model_dir))
    write_text_atomic(model_dir / "model.json", json.dumps(meta, indent=1) + "\n")


@dataclass
class ClipClassifier:
    """A saved clip classifier (:func:`load_classifier`), applied by ``videmo report``."""

    path: Path
    meta: dict[str, Any]
    learner: ClipLearner
    model: Estimator
    max_frames: int = 0

    @property
    def name(self) -> str:
        return str(self.meta["classifier"])

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.meta["features"])

    def with_features(self, frames: pd.DataFrame, run: RunDir, cfg: Config) -> pd.DataFrame:
        """``frames`` (of ``run``, extracted under ``cfg``) with the columns this model reads
        that are not in the per-frame table: the face mesh's (:func:`with_mesh`), when the
        model was trained on a mesh family; a run without a mesh is then a LearnError naming
        ``features: [emotions, mesh]``."""
        unknown = [n for n in self.features if n not in FAMILIES]
        if unknown:
            raise ModelError(f"{self.path}: feature famil{'ies' if len(unknown) > 1 else 'y'} "
                             f"{', '.join(unknown)} unknown to this videmo (known: "
                             f"{', '.join(FAMILIES)})")
        for table in side_table_families(self.features):
            trained, now = self.meta["trained_on"].get(f"{table}_hash"), cfg.table_hash(table)
            if trained and now and trained != now:
                log.warning("model %s was trained on a %s table made with other settings (%s "
                            "hash %s, this run %s)", self.path, table, table, trained, now)
        return with_side_tables(frames, run, cfg, set(self.features),
                         f"run {run.path} (model {self.path} reads {'+'.join(self.features)})")

    def predict(self, frames: pd.DataFrame, clip_ids: list[str]) -> dict[str, str]:
        """A class for every clip of ``clip_ids`` with a face row (others are left out).
        ``frames`` must hold the model's feature columns (:meth:`with_features`)."""
        features = self.features
        check_families(frames, set(features), f"the run (model {self.path})")
        clips = build_clips(frames, clip_ids, set(features))
        if not len(clips):
            return {}
        self._check_names(self.learner.input_names(clips, features), features)
        pred = self.model.predict(self.learner.inputs(clips, features, self.max_frames))
        return dict(zip(clips.ids, (str(p) for p in pred), strict=True))

    def _check_names(self, names: list[str], features: tuple[str, ...]) -> None:
        if names != self.meta["feature_names"]:
            raise ModelError(f"{self.path}: the run's {'+'.join(features)} features differ "
                             f"from the model's ({len(names)} vs "
                             f"{len(self.meta['feature_names'])} columns)")

    def relabel(self, votes: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
        """``clip_votes``' table with every clip with a face labelled by this classifier."""
        pred = self.predict(frames, [str(c) for c in votes[schema.CLIP_ID]])
        seen = set(pred) & set(self.meta["trained_on"].get("clip_ids", []))
        if seen:
            log.warning("%d of the %d clips labelled by model %s are clips it was trained on: "
                        "its accuracy on them is no estimate (the cross-validated numbers are "
                        "in the results.csv of videmo learn)", len(seen), len(pred), self.path)
        out = votes.copy()
        hit = out[schema.CLIP_ID].astype(str).isin(pred)
        out.loc[hit, schema.PREDICT] = out.loc[hit, schema.CLIP_ID].astype(str).map(pred)
        out.loc[hit, schema.DECIDED_BY] = self.name
        out.loc[hit, schema.PEAK_FRAMES] = ""
        return out


def load_classifier(model_dir: str | Path, extract_hash: str | None = None) -> ClipClassifier:
    """Load a model folder written by ``videmo learn`` after checking every file's sha256.

    Only load folders you made yourself: the JSON models are plain numbers, and the LSTM's
    ``.keras`` file is loaded with Keras's safe mode (no code), but a changed file is refused
    rather than trusted. A model trained on another extract config (``extract_hash``) is
    applied with a warning: its features may be distributed differently."""
    path = Path(model_dir)
    meta_path = path / "model.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{meta_path} not found: give the model folder written by videmo "
                         f"learn (RUN/learn/model)") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {meta_path}: {e}") from None
    if meta.get("format") != MODEL_FORMAT or meta.get("format_version") != 1:
        raise ModelError(f"{meta_path} is not a videmo clip classifier (format "
                         f"{meta.get('format')!r} version {meta.get('format_version')!r})")
    for name, digest in meta["files"].items():
        f = path / name
        if not f.is_file() or _sha256(f) != digest:
            raise ModelError(f"{f} is missing or changed since videmo learn wrote it (sha256 "
                             f"differs from model.json); refusing to load it")
    trained = meta["trained_on"]["extract_hash"]
    if extract_hash is not None and trained != extract_hash:
        log.warning("model %s was trained on a run with another extract config (hash %s, this "
                    "run %s): its numbers do not carry over as they are", path, trained,
                    extract_hash)
    try:
        learner = get_learner(str(meta["classifier"]))
    except LearnError:
        raise ModelError(f"{meta_path}: classifier {meta['classifier']!r} is unknown to this "
                         f"videmo") from None
    model, max_frames = learner.load(meta, path)
    return ClipClassifier(path, meta, learner, model, max_frames)
