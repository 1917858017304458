"""Learn a clip's label from labelled clips, and evaluate it as a careful researcher would.

``videmo learn RUN`` reads a labelled run's own per-frame table and recorded config (nothing
is re-extracted) and writes ``RUN/learn/`` (``learn.out``, ``--out``):

* ``results.csv`` (schema.LEARN_RESULT_COLUMNS): one row per (classifier, features) with
  accuracy and macro-F1, their 95% bootstrap intervals, the clips and groups they were
  measured on, and the exact McNemar p-value against the majority vote. Rows of kind
  ``baseline`` (the majority vote, the mean, ``prior``: always the commonest class of the
  training fold, the chance level to beat), ``rule`` (the expressive-frame rules of
  :mod:`videmo.evaluate.rules`) and ``learned`` (out-of-fold predictions of the classifiers).
* ``predictions.csv`` (every clip's out-of-fold prediction of every row, its group and fold),
  ``summary.txt``, ``results.png`` (accuracy with its interval per row), ``learn_config.yaml``.
* ``model/``: the best learned row by the outer CV, refitted on every clip, with its card.

**Learners.** ``logistic`` and ``gboost`` read *pooled statistics* per clip of each feature
family's columns over the clip's face rows in frame order (:data:`STATS`: mean, std, max, 10th /
50th / 90th percentile, slope over time, time of peak as a fraction of the clip), in a
scikit-learn Pipeline whose imputer and scaler are fitted on the training fold only
(logistic regression also keeps the :data:`LOGISTIC_MAX_FEATURES` features of largest ANOVA F
on the training fold, when there are more). ``lstm``
reads the frame sequence itself (each row's family values, standardised with the training
fold's mean and std, its time as a fraction of the clip and a constant 1 so that no real row is
all zeros), padded with zeros and masked; clips with more than ``learn.max_frames`` face rows
are subsampled evenly to that many, so one-frame photos and long debate clips both work.
TensorFlow is imported only when ``lstm`` is asked for, with this process's thread budget.

**Honest evaluation.**

* Folds are grouped by person (``report.group_pattern``): up to ``learn.logo_max_groups``
  groups one group is left out at a time, above that ``GroupKFold`` with ``learn.folds`` splits.
  No person is in both the training and the test part of a fold. With a single group (one
  person's clips) person-grouped CV is impossible: ``learn.one_group: clips`` leaves one clip
  out and says so in every output (its numbers say nothing about new persons), ``refuse`` stops.
* Nested selection: hyper-parameters (:data:`GRIDS`) and, with several ``learn.features`` sets,
  the feature set (the ``selected`` rows) are chosen by an inner CV on the training fold only,
  grouped by person (``learn.inner_folds``; by clip when the training fold holds one group),
  scored by the macro-F1 of the pooled inner out-of-fold predictions, ties to the simpler
  (earlier) candidate. The LSTM's settings are fixed by config, not tuned, so it needs no inner
  loop. Choosing the *deployed* model as the best learned row of the outer CV is itself a
  choice among rows: its outer number is optimistic by that choice (the card says so).
* Intervals: percentile bootstrap (``learn.bootstrap`` resamples, seeded) of accuracy and
  macro-F1. Clips of one person are not independent, so the resampled unit is the group when
  there are at least :data:`MIN_BOOTSTRAP_GROUPS` groups (a cluster bootstrap); with fewer
  groups it has too few distinct resamples to mean anything and clips are resampled instead
  (``learn.bootstrap_unit`` forces either). Every row uses the same resamples.
* ``p_vs_vote``: the exact McNemar test (two-sided binomial on the clips where exactly one of
  the row and the majority vote is right), paired on the same clips.
* Every labelled clip that was extracted counts; a clip without a face row is ``no_face`` for
  every row (wrong). Labelled clips that failed or were never extracted are left out and
  named in the summary.

**Feature families** are a registry (:data:`FAMILIES`, :func:`register_family`): a family
declares its name, the per-frame columns it reads (a number per row, or a fixed-length float
array per row: landmarks stay arrays, each element a feature), what puts those columns into a
run (``enabled_by``), whether they come from the face mesh, and one line of doc.
``learn.features`` names families; a family whose columns are missing from the run is an error
naming it and what turns it on.

* ``fer``: the seven FER probabilities of the per-frame table.
* ``blendshapes``: MediaPipe's 52 blendshape scores (schema.BLENDSHAPES) and ``landmarks``:
  pose-normalised landmarks, both from the run's face mesh table (``features: [emotions,
  mesh]``; RUN/features/mesh.parquet), joined to the per-frame rows on (clip_id, frame_index,
  face_index) by :func:`with_mesh` when a mesh family is asked for (by ``videmo learn`` and by
  a saved model applied in ``videmo report``). The mesh must have been made under the run's
  extract and mesh settings (``Config.mesh_hash``); a run without one is a LearnError naming
  ``features: [emotions, mesh]``. A face whose mesh is missing (presence under
  ``mesh.min_presence``: the mesh table keeps the row with empty columns) is NaN: the pooled
  statistics replace it by the clip's mean of that column (a clip without any mesh stays NaN
  and the Pipeline's imputer gives it the training fold's median), the LSTM by the training
  fold's mean (0 after standardising).
* **Landmark dimensionality.** All 478 x 3 landmarks are 1,434 values a row, 11,472 pooled
  features a clip: on ~50 clips a fit would be mostly noise, and the normalisation pins the
  33 points it is fitted on anyway. The family reads a fixed, documented subset instead
  (:data:`LANDMARK_SUBSET`): x, y, z of 23 points that expressions move (brows, eyelids, nose
  wings, mouth corners, lips, chin), none of the Procrustes anchors, after
  :func:`videmo.extract.features.pose.normalize_landmarks` ("procrustes": a frontal canonical
  face, outer eye corners 1 apart, so head pose and size are gone): 69 values a row, 552 pooled
  features, the order of the blendshapes' 416. A fixed subset, not a projection, so that
  nothing is fitted outside the training fold and a saved model reads named features
  (``mouth_corner_l.y_mean``; changing the subset makes old models refuse to load runs, by
  their feature names). Logistic regression then keeps the 64 pooled features of largest
  ANOVA F on the training fold (:data:`LOGISTIC_MAX_FEATURES`): on simulated clips where 2 of
  52 blendshapes (or 4 of the 69 landmark values) carry the label, all 416 (552) standardised
  features diluted it to 80% (62%); with the filter it finds it, as gradient boosting does.
**Saved models** load without pickle: logistic regression and gradient boosting as numbers in
``model.json`` (imputer, scaler, coefficients; every tree's nodes), evaluated here in numpy and
checked against scikit-learn when saved; the LSTM as a ``.keras`` file loaded with Keras's safe
mode. ``model.json`` records each file's sha256, checked before loading. Load only model
folders you made yourself.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import logging
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, LeaveOneOut
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from videmo import __version__, schema
from videmo.config import Config, ConfigError, LearnConfig, dump
from videmo.evaluate.labels import golden_labels
from videmo.evaluate.vote import clip_votes, face_rows
from videmo.store import RunDir, write_csv_atomic, write_text_atomic

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = schema.CLASSES
MIN_BOOTSTRAP_GROUPS = 10
MODEL_FORMAT = "videmo-clip-classifier"
LSTM_BATCH = 16  # clips per training step of the LSTM
SELECTED = "selected"


class LearnError(ConfigError):
    """A run cannot be learned from as asked (no labels, a feature family the run lacks, one
    group with ``learn.one_group: refuse``); the message says what to do."""


class ModelError(ConfigError):
    """A saved model folder (report.classifier) is not one videmo can load: missing, changed
    since it was written, or of another format."""


# ---------------------------------------------------------------- feature families
@dataclass(frozen=True)
class FeatureFamily:
    """A named group of per-frame columns the learners read (see the module doc).

    ``columns`` are read in order; each holds a number per row or a float array of one fixed
    length per row (every element becomes a feature, named by ``element_names`` when given,
    else ``column[i]``). An empty ``columns`` declares a family whose extractor does not write
    the per-frame table yet. ``mesh``: the columns come from the run's face mesh table
    (RUN/features/mesh.parquet), joined to the per-frame rows by :func:`with_mesh`.
    ``enabled_by`` is named in the error when a run lacks the columns: say which config key or
    extractor writes them."""

    name: str
    columns: tuple[str, ...]
    enabled_by: str
    doc: str
    mesh: bool = False
    element_names: tuple[str, ...] = ()

    def missing(self, frames: pd.DataFrame) -> list[str]:
        return [c for c in self.columns if c not in frames.columns]

    def values(self, rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """(rows x features) float64 values and their names (array columns as name[i])."""
        parts, names = [], []
        for col in self.columns:
            s = rows[col]
            if s.dtype == object:  # an array per row
                width = len(self.element_names) or None
                arr = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in s]) \
                    if len(s) else np.zeros((0, width or 0))
                parts.append(arr)
                names.extend(self.element_names if width == arr.shape[1] else
                             [f"{col}[{i}]" for i in range(arr.shape[1])])
            else:
                parts.append(s.to_numpy(dtype=np.float64, na_value=np.nan)[:, None])
                names.append(col)
        return np.hstack(parts) if parts else np.zeros((len(rows), 0)), names


FAMILIES: dict[str, FeatureFamily] = {}


def register_family(family: FeatureFamily) -> FeatureFamily:
    """Add (or replace) a family under its name; ``learn.features`` then accepts it."""
    if not family.name or "+" in family.name:
        raise ValueError(f"feature family name {family.name!r}: give a name without '+'")
    FAMILIES[family.name] = family
    return family


MESH_ON = "the face mesh: extract with `features: [emotions, mesh]`"

# The landmarks family's fixed subset of MediaPipe's 478 (indices into the face mesh), each
# named by the region it describes; subject's right side first. Points that expressions move
# (FACS regions): brows (AU1/2/4), upper and lower eyelids (AU5/7, 43), nose wings (AU9/10),
# mouth corners (AU12/15/20), upper and lower lip, outer and inner (AU10/16/23/25), chin (jaw
# drop, AU26/27). None of the 33 points the Procrustes fit of
# :func:`videmo.extract.features.pose.normalize_landmarks` is weighted on (eye corners, nose
# bridge, cheekbones, forehead): the normalisation pins those, so they would carry mostly noise.
LANDMARK_SUBSET: tuple[tuple[int, str], ...] = (
    (70, "brow_outer_r"), (105, "brow_mid_r"), (107, "brow_inner_r"),
    (336, "brow_inner_l"), (334, "brow_mid_l"), (300, "brow_outer_l"),
    (159, "lid_upper_r"), (145, "lid_lower_r"), (386, "lid_upper_l"), (374, "lid_lower_l"),
    (98, "nose_wing_r"), (327, "nose_wing_l"),
    (61, "mouth_corner_r"), (291, "mouth_corner_l"),
    (37, "lip_upper_r"), (0, "lip_upper_mid"), (267, "lip_upper_l"), (13, "lip_upper_inner"),
    (14, "lip_lower_inner"), (84, "lip_lower_r"), (17, "lip_lower_mid"), (314, "lip_lower_l"),
    (152, "chin"),
)
LANDMARK_NAMES: tuple[str, ...] = tuple(f"{name}.{axis}" for _, name in LANDMARK_SUBSET
                                        for axis in "xyz")


def pose_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(rows, 478, 3) landmarks in pixels -> (rows, 3 x len(LANDMARK_SUBSET)) float32: each
    row normalised for head pose (``normalize_landmarks``, "procrustes": canonical frontal
    face, outer eye corners 1 apart), then the subset's x, y, z. Rows without a mesh (NaN)
    stay NaN."""
    from videmo.extract.features.pose import normalize_landmarks

    idx = [i for i, _ in LANDMARK_SUBSET]
    out = np.full((len(landmarks), 3 * len(idx)), np.nan, dtype=np.float32)
    for r, lm in enumerate(landmarks):
        if np.isfinite(lm).all():
            out[r] = normalize_landmarks(lm)[idx].reshape(-1)
    return out


register_family(FeatureFamily(
    "fer", schema.EMOTIONS, "every run (the FER model's seven probabilities per face)",
    "The seven FER emotion probabilities of each face row."))
register_family(FeatureFamily(
    "blendshapes", schema.BLENDSHAPES, MESH_ON,
    "MediaPipe's 52 blendshape scores of each face row (0-1).", mesh=True))
register_family(FeatureFamily(
    "landmarks", (schema.LANDMARKS_POSE,), MESH_ON,
    f"Pose-normalised face landmarks of each face row: x, y, z of {len(LANDMARK_SUBSET)} "
    f"expression-bearing points (LANDMARK_SUBSET), {len(LANDMARK_NAMES)} values.",
    mesh=True, element_names=LANDMARK_NAMES))


def _landmarks(table) -> np.ndarray:
    """The mesh table's landmarks as float32 (rows, 478, 3), rows without a mesh NaN: what
    ``mesh.landmarks_array`` gives, read from Arrow's flat buffer instead of one Python list
    per row (a long run's 1,434 values a row would be hundreds of millions of objects)."""
    col = table.column(schema.LANDMARKS).combine_chunks()
    width = schema.N_LANDMARKS * 3
    flat = col.values.slice(col.offset * width, len(col) * width)
    out = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=True)
    out = out.reshape(len(col), schema.N_LANDMARKS, 3)
    out[col.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return out


def with_mesh(frames: pd.DataFrame, run: RunDir, cfg: Config, families: set[str],
              where: str) -> pd.DataFrame:
    """``frames`` with the columns of the mesh families among ``families`` joined from the
    run's mesh table (made under ``cfg``'s extract and mesh settings) on
    (clip_id, frame_index, face_index); ``frames`` itself when none is asked for.

    A face row without a mesh (presence under ``mesh.min_presence``: the mesh table keeps the
    row with empty columns) or without a mesh row at all gets NaN, which the learners impute
    (see the module doc). A run without a mesh table is a LearnError naming what turns it on;
    clips with face rows but no mesh rows are named in a warning."""
    need = sorted(n for n in families if FAMILIES[n].mesh)
    if not need:
        return frames
    mesh_hash = cfg.mesh_hash()
    table = run.mesh(cfg.extract_hash(), mesh_hash) if mesh_hash is not None else None
    if table is None:
        why = ("its config has no mesh among `features`" if mesh_hash is None else
               "no clip has a mesh made under its config")
        raise LearnError(f"feature famil{'ies' if len(need) > 1 else 'y'} "
                         f"{', '.join(map(repr, need))} come{'' if len(need) > 1 else 's'} "
                         f"from the face mesh, and {where} has no mesh table ({why}): "
                         f"extract with `features: [emotions, mesh]` (e.g. videmo extract "
                         f"CONFIG --set 'features=[emotions, mesh]': only the mesh is "
                         f"computed for clips already done), or drop "
                         f"{'them' if len(need) > 1 else 'it'} from learn.features")
    keys = list(schema.MESH_KEYS)
    cols = [c for n in need for c in FAMILIES[n].columns if c in schema.BLENDSHAPES]
    mesh = table.select([*keys, *cols]).to_pandas()
    if "landmarks" in need:
        mesh[schema.LANDMARKS_POSE] = list(pose_landmarks(_landmarks(table)))
    mesh[schema.FACE_INDEX] = mesh[schema.FACE_INDEX].astype(frames[schema.FACE_INDEX].dtype)
    out = frames.drop(columns=[c for c in mesh.columns if c not in keys and c in frames],
                      errors="ignore").merge(mesh, on=keys, how="left", validate="many_to_one")
    if schema.LANDMARKS_POSE in out:
        blank = np.full(len(LANDMARK_NAMES), np.nan, dtype=np.float32)
        out[schema.LANDMARKS_POSE] = [v if isinstance(v, np.ndarray) else blank
                                      for v in out[schema.LANDMARKS_POSE]]
    faces = frames[schema.FACE_INDEX] >= 0
    without = sorted(set(frames.loc[faces, schema.CLIP_ID].astype(str))
                     - set(mesh[schema.CLIP_ID].astype(str)))
    if without:
        log.warning("%s: %d clip(s) with faces have no mesh rows (their %s features are "
                    "missing and imputed): %s", where, len(without), "+".join(need),
                    ", ".join(without[:10]) + (" ..." if len(without) > 10 else ""))
    return out


def parse_feature_set(spec: str) -> tuple[str, ...]:
    """``fer+blendshapes`` -> ("fer", "blendshapes"); unknown names fail with a hint."""
    names = tuple(n.strip() for n in spec.split("+"))
    for n in names:
        if n not in FAMILIES:
            hint = difflib.get_close_matches(n, list(FAMILIES), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise LearnError(f"config key 'learn.features': unknown feature family {n!r} in "
                             f"{spec!r}{extra}; known: {', '.join(FAMILIES)}")
    if len(set(names)) != len(names):
        raise LearnError(f"config key 'learn.features': {spec!r} names a family twice")
    return names


def feature_sets(lc: LearnConfig) -> list[tuple[str, ...]]:
    sets = [parse_feature_set(s) for s in lc.features]
    if not sets:
        raise LearnError("config key 'learn.features': give at least one feature set, e.g. "
                         "[fer]")
    return list(dict.fromkeys(sets))


def check_families(frames: pd.DataFrame, names: set[str], where: str) -> None:
    """Every named family's columns are in ``frames``; else a LearnError naming the family
    and what turns it on."""
    have = [n for n, f in FAMILIES.items() if f.columns and not f.missing(frames)]
    for n in sorted(names):
        fam = FAMILIES[n]
        missing = fam.missing(frames)
        if fam.columns and not missing:
            continue
        detail = f" (missing columns: {', '.join(missing[:5])}" \
                 f"{' ...' if len(missing) > 5 else ''})" if fam.columns else ""
        raise LearnError(f"feature family {n!r} is not in the per-frame table of {where}"
                         f"{detail}: it comes from {fam.enabled_by}; extract with it on, or "
                         f"drop it from learn.features (available here: {', '.join(have)})")


def set_name(fs: tuple[str, ...]) -> str:
    return "+".join(fs)


# ---------------------------------------------------------------- per-clip data
STATS: tuple[str, ...] = ("mean", "std", "max", "q10", "q50", "q90", "slope", "t_peak")


@dataclass
class Clips:
    """The clips the learners see: those with at least one face row, sorted by id.

    ``seqs[family][i]`` holds clip i's face rows (in frame order) x the family's features;
    ``times[i]`` each row's time as a fraction of the clip's sampled span (0 for one frame)."""

    ids: list[str]
    groups: np.ndarray
    y: np.ndarray  # golden class per clip ("" when unlabelled: applying a model)
    times: list[np.ndarray]
    seqs: dict[str, list[np.ndarray]]
    names: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.ids)


def build_clips(frames: pd.DataFrame, clip_ids: list[str], families: set[str],
                golden: dict[str, str] | None = None,
                groups: dict[str, str] | None = None) -> Clips:
    rows = face_rows(frames)
    cid_all = frames[schema.CLIP_ID].astype(str)
    wanted = set(clip_ids)
    rows = rows[rows[schema.CLIP_ID].astype(str).isin(wanted)]
    rows = rows.sort_values([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX],
                            kind="stable")
    t_all = frames[schema.TIME_S].astype(float)
    t0 = t_all.groupby(cid_all).min()
    t1 = t_all.groupby(cid_all).max()
    cid = rows[schema.CLIP_ID].astype(str).to_numpy()
    ids, starts = np.unique(cid, return_index=True)
    ends = np.append(starts[1:], len(cid))
    t = rows[schema.TIME_S].astype(float).to_numpy()
    values = {n: FAMILIES[n].values(rows) for n in sorted(families)}
    times, seqs = [], {n: [] for n in values}
    for c, a, b in zip(ids, starts, ends, strict=True):
        span = float(t1[c] - t0[c])
        times.append((t[a:b] - float(t0[c])) / span if span > 0 else np.zeros(b - a))
        for n, (v, _) in values.items():
            seqs[n].append(v[a:b])
    ids_l = [str(c) for c in ids]
    golden = golden or {}
    groups = groups or {}
    return Clips(ids_l, np.asarray([groups.get(c, c) for c in ids_l], dtype=object),
                 np.asarray([golden.get(c, "") for c in ids_l], dtype=object), times, seqs,
                 {n: names for n, (_, names) in values.items()})


def pool(seq: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The :data:`STATS` of each column of one clip's rows, stat-major. A NaN value (a face
    the family could not describe) is replaced by its column's mean in the clip first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        col_mean = np.nanmean(seq, axis=0)
    seq = np.where(np.isnan(seq), col_mean, seq)
    q = np.quantile(seq, [0.1, 0.5, 0.9], axis=0)
    tc = t - t.mean()
    var = float(tc @ tc)
    slope = tc @ (seq - col_mean) / var if var > 0 else np.zeros(seq.shape[1])
    peak = t[np.argmax(np.nan_to_num(seq, nan=-np.inf), axis=0)]
    return np.concatenate([col_mean, seq.std(axis=0), seq.max(axis=0), q[0], q[1], q[2],
                           slope, peak])


def pooled(clips: Clips, fs: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """One row per clip: the pooled statistics of every family of ``fs``, and their names."""
    blocks, names = [], []
    for n in fs:
        blocks.append(np.stack([pool(s, t) for s, t in zip(clips.seqs[n], clips.times,
                                                             strict=True)])
                      if len(clips) else np.zeros((0, len(STATS) * len(clips.names[n]))))
        names.extend(f"{c}_{s}" for s in STATS for c in clips.names[n])
    return np.hstack(blocks), names


def sequence(clips: Clips, i: int, fs: tuple[str, ...], max_frames: int) -> np.ndarray:
    """Clip i's rows x (family values..., time fraction), subsampled evenly to max_frames."""
    x = np.hstack([clips.seqs[n][i] for n in fs] + [clips.times[i][:, None]])
    if len(x) > max_frames:
        x = x[np.round(np.linspace(0, len(x) - 1, max_frames)).astype(int)]
    return x


# ---------------------------------------------------------------- learners
class Constant:
    """What a training set with one class learns: that class."""

    def __init__(self, label: str):
        self.label = label

    def predict(self, x) -> np.ndarray:
        return np.full(len(x), self.label, dtype=object)


GRIDS: dict[str, list[dict[str, Any]]] = {
    "logistic": [{"C": 0.1}, {"C": 1.0}, {"C": 10.0}],
    # 50 trees at learning rate 0.2: on ~50 clips a fit takes a quarter of a second
    "gboost": [{"n_estimators": 50, "max_depth": 1}, {"n_estimators": 50, "max_depth": 2}],
    "lstm": [{}],  # fixed by learn.lstm_units / lstm_epochs
}


def _imputer() -> SimpleImputer:
    """The training fold's median of each pooled feature; a feature without any value in the
    training fold (a mesh family on clips without a mesh) is kept and imputed as 0, so that
    every model reads the same columns (and its JSON form stays aligned)."""
    return SimpleImputer(strategy="median", keep_empty_features=True)


# Logistic regression reads at most this many pooled features: the ones with the largest
# ANOVA F between the classes on the training fold (SelectKBest inside the Pipeline, so the
# test fold never takes part). Fixed, not tuned: about the number of training clips of a
# study-sized corpus. fer's 56 pooled features pass whole; a mesh family's 416-552 would
# otherwise, once standardised, weigh as much as the few that carry the label.
LOGISTIC_MAX_FEATURES = 64


def _f_scores(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ANOVA F per feature; a constant feature (NaN) scores 0, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant features: division by zero
        f, p = f_classif(x, y)
    return np.nan_to_num(f, nan=0.0), np.nan_to_num(p, nan=1.0)


def make_pipeline(name: str, params: dict[str, Any], seed: int) -> Pipeline:
    if name == "logistic":
        return Pipeline([("impute", _imputer()),
                         ("select", SelectKBest(_f_scores, k=LOGISTIC_MAX_FEATURES)),
                         ("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=params["C"], max_iter=5000))])
    if name == "gboost":
        return Pipeline([("impute", _imputer()),
                         ("clf", GradientBoostingClassifier(
                             n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                             learning_rate=0.2, random_state=seed))])
    raise ValueError(f"no pipeline for {name!r}")


def fit_pooled(name: str, x: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int):
    if len(set(y)) == 1:
        return Constant(str(y[0]))
    pipe = make_pipeline(name, params, seed)
    if "select" in pipe.named_steps and x.shape[1] <= LOGISTIC_MAX_FEATURES:
        pipe.set_params(select="passthrough")
    return pipe.fit(x, y)


@dataclass
class LstmModel:
    """A trained LSTM and the standardisation of its inputs (from its training clips)."""

    model: Any
    mean: np.ndarray
    std: np.ndarray
    max_frames: int

    def prepare(self, seqs: list[np.ndarray]) -> np.ndarray:
        length = max(len(s) for s in seqs)
        x = np.zeros((len(seqs), length, len(self.mean) + 1), dtype=np.float32)
        for i, s in enumerate(seqs):
            z = np.nan_to_num((s - self.mean) / self.std, nan=0.0)  # missing: the mean
            x[i, :len(s), :-1] = z
            x[i, :len(s), -1] = 1.0  # a real row is never all zeros: padding is masked
        return x

    def predict(self, seqs: list[np.ndarray]) -> np.ndarray:
        if not seqs:
            return np.asarray([], dtype=object)
        p = np.asarray(self.model(self.prepare(seqs), training=False))
        return np.asarray(CLASSES, dtype=object)[p.argmax(axis=1)]


def _tensorflow():
    from videmo.runtime import import_tensorflow, quiet_native_logs

    with quiet_native_logs():
        tf = import_tensorflow()
    try:
        tf.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError):  # pragma: no cover - older TensorFlow
        pass
    return tf


def _lstm_model(keras, width: int, units: int):
    return keras.Sequential([
        keras.Input(shape=(None, width)),
        keras.layers.Masking(mask_value=0.0),
        keras.layers.LSTM(units),
        keras.layers.Dense(len(CLASSES), activation="softmax"),
    ])


_TRAINERS: dict[tuple[int, int], tuple[Any, Any, Any, list[np.ndarray]]] = {}


def _trainer(tf, width: int, units: int):
    """A model, an Adam optimizer and their traced training step, made once per shape: tracing
    the masked LSTM's step costs seconds, more than training it on a fold. Each fit resets the
    weights and the optimizer's state, so a fit does not depend on the ones before."""
    key = (width, units)
    if key not in _TRAINERS:
        keras = tf.keras
        model = _lstm_model(keras, width, units)
        opt = keras.optimizers.Adam(learning_rate=0.01)
        opt.build(model.trainable_variables)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()

        @tf.function(input_signature=[tf.TensorSpec((None, None, width), tf.float32),
                                      tf.TensorSpec((None,), tf.int32)])
        def step(xb, yb):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        _TRAINERS[key] = (model, opt, step, [v.numpy() for v in opt.variables])
    return _TRAINERS[key]


def fit_lstm(seqs: list[np.ndarray], y: np.ndarray, lc: LearnConfig, seed: int) -> LstmModel:
    """Train the LSTM on the training clips' sequences with a plain loop of seeded
    mini-batches (Keras's ``fit`` would build a tf.data pipeline per call: slower here, and it
    writes native warnings of TensorFlow 2.21's op registry)."""
    tf = _tensorflow()
    keras = tf.keras
    allrows = np.vstack(seqs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column without any value
        mean = np.nan_to_num(np.nanmean(allrows, axis=0), nan=0.0)
        std = np.nan_to_num(np.nanstd(allrows, axis=0), nan=0.0)
    std = np.where(std > 1e-8, std, 1.0)
    m = LstmModel(None, mean, std, lc.max_frames)
    x = m.prepare(seqs)
    yi = np.asarray([CLASSES.index(c) for c in y], dtype=np.int32)
    model, opt, step, opt_start = _trainer(tf, x.shape[2], lc.lstm_units)
    keras.utils.set_random_seed(seed)
    fresh = _lstm_model(keras, x.shape[2], lc.lstm_units)  # this fit's seeded initial weights
    model.set_weights(fresh.get_weights())
    for v, start in zip(opt.variables, opt_start, strict=True):
        v.assign(start)
    rng = np.random.default_rng(seed)
    for _ in range(lc.lstm_epochs):
        order = rng.permutation(len(x))
        for a in range(0, len(x), LSTM_BATCH):
            b = order[a:a + LSTM_BATCH]
            step(tf.constant(x[b]), tf.constant(yi[b]))
    fresh.set_weights(model.get_weights())
    m.model = fresh
    return m


# ---------------------------------------------------------------- folds
@dataclass
class Folds:
    splits: list[tuple[np.ndarray, np.ndarray]]
    scheme: str  # how the folds were made, for the summary and the card
    grouped: bool  # False: one group, clips left out one at a time


def outer_folds(groups: np.ndarray, lc: LearnConfig) -> Folds:
    """Person-grouped folds (see the module doc); one group: leave one clip out, or refuse."""
    n, n_groups = len(groups), len(set(groups))
    if n < 2:
        raise LearnError(f"learning needs at least 2 labelled clips with a face, got {n}")
    x = np.zeros((n, 1))
    if n_groups == 1:
        if lc.one_group == "refuse":
            raise LearnError(f"every clip is in one group ({groups[0]!r} by "
                             f"report.group_pattern): person-grouped cross-validation is "
                             f"impossible; label clips of more persons, fix "
                             f"report.group_pattern, or set learn.one_group: clips")
        return Folds(list(LeaveOneOut().split(x)),
                     f"leave-one-clip-out ({n} folds): ONE group ({groups[0]!r}), so NOT "
                     f"person-grouped; these numbers say nothing about new persons", False)
    if n_groups <= lc.logo_max_groups:
        return Folds(list(LeaveOneGroupOut().split(x, groups=groups)),
                     f"leave-one-group-out ({n_groups} groups, at most learn.logo_max_groups "
                     f"= {lc.logo_max_groups})", True)
    k = min(lc.folds, n_groups)
    return Folds(list(GroupKFold(n_splits=k).split(x, groups=groups)),
                 f"GroupKFold, {k} folds over {n_groups} groups (more than "
                 f"learn.logo_max_groups = {lc.logo_max_groups})", True)


def inner_folds(groups: np.ndarray, lc: LearnConfig, seed: int) -> list[tuple[np.ndarray,
                                                                            np.ndarray]]:
    """Folds of a training fold for selection: grouped, or by clip when it has one group."""
    n, n_groups = len(groups), len(set(groups))
    x = np.zeros((n, 1))
    if n_groups >= 2:
        return list(GroupKFold(n_splits=min(lc.inner_folds, n_groups)).split(x, groups=groups))
    if n >= 2:
        return list(KFold(n_splits=min(lc.inner_folds, n), shuffle=True,
                          random_state=seed).split(x))
    return []


def macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    return float(f1_score(list(y), list(p), labels=list(CLASSES), average="macro",
                          zero_division=0.0))


def inner_scores(name: str, xs: dict[tuple[str, ...], np.ndarray], y: np.ndarray,
                 groups: np.ndarray, lc: LearnConfig, seed: int
                 ) -> dict[tuple[tuple[str, ...], int], float]:
    """Macro-F1 of the pooled inner out-of-fold predictions of every (feature set, grid
    entry) on one training fold (``xs``, ``y``, ``groups`` are that fold's)."""
    splits = inner_folds(groups, lc, seed)
    out = {}
    for fs, x in xs.items():
        for k, params in enumerate(GRIDS[name]):
            if not splits:
                out[(fs, k)] = 0.0
                continue
            pred = np.empty(len(y), dtype=object)
            for a, b in splits:
                pred[b] = fit_pooled(name, x[a], y[a], params, seed).predict(x[b])
            out[(fs, k)] = macro_f1(y, pred)
    return out


def best(scores: dict[tuple[tuple[str, ...], int], float],
         among: list[tuple[str, ...]]) -> tuple[tuple[str, ...], int]:
    """The highest score among feature sets ``among``; ties to the earlier candidate."""
    keys = [k for k in scores if k[0] in among]
    return max(keys, key=lambda k: (scores[k], -among.index(k[0]), -k[1]))


# ---------------------------------------------------------------- statistics
def bootstrap_weights(n: int, units: np.ndarray | None, reps: int, seed: int) -> np.ndarray:
    """(reps x n) resample counts of each clip: clips drawn with replacement, or (``units``
    given) whole units (groups) drawn with replacement, each bringing all its clips."""
    rng = np.random.default_rng(seed)
    if units is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=reps).astype(float)
    _, inv = np.unique(units, return_inverse=True)
    g = int(inv.max()) + 1
    return rng.multinomial(g, np.full(g, 1.0 / g), size=reps)[:, inv].astype(float)


def weighted_rates(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Accuracy and macro-F1 (over the three classes, a class absent from both weighing 0,
    as in :mod:`videmo.evaluate.metrics`) of each row of weights ``w`` (reps x n)."""
    total = w.sum(axis=1)
    acc = w @ (y == p).astype(float) / np.where(total > 0, total, 1)
    f1 = np.zeros(len(w))
    for c in CLASSES:
        tp = w @ ((y == c) & (p == c)).astype(float)
        denom = w @ (y == c).astype(float) + w @ (p == c).astype(float)
        f1 += np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return acc, f1 / len(CLASSES)


def interval(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def mcnemar_p(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value of predictions ``a`` vs ``b`` on the same clips."""
    ra, rb = a == y, b == y
    only_a, only_b = int((ra & ~rb).sum()), int((rb & ~ra).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


# ---------------------------------------------------------------- the command
@dataclass
class Row:
    classifier: str
    kind: str
    features: str
    pred: np.ndarray  # over the evaluated clips
    chosen: list[str] = field(default_factory=list)  # per outer fold: what selection chose


@dataclass
class LearnResult:
    out_dir: Path
    results: pd.DataFrame
    summary: str
    model_dir: Path | None


def _commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--",
                                str(here)], capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def learn(run: RunDir, cfg: Config, *, out_dir: Path | None = None,
          progress: bool | None = None) -> LearnResult:
    """Evaluate baselines, rules and learned classifiers on a labelled run; save the best
    learned model. ``cfg`` is the run's config (with any report./learn. overrides)."""
    from videmo.evaluate.metrics import group_of

    lc, rc = cfg.learn, cfg.report
    out_dir = Path(out_dir or cfg.resolve(lc.out) or run.path / "learn")
    sets = feature_sets(lc)
    fam_names = {n for fs in sets for n in fs}
    frames = with_mesh(run.frames(cfg.extract_hash()), run, cfg, fam_names, str(run.path))
    done_ids = sorted(set(frames[schema.CLIP_ID].astype(str)))
    check_families(frames, fam_names, str(run.path))
    labels_path = cfg.resolve(rc.labels)
    if labels_path is None:
        raise LearnError("learning needs golden labels: set report.labels in the run's config "
                         "or pass --labels FILE")
    golden, issues = golden_labels(Path(labels_path), sorted(set(done_ids) | set(
        str(r[schema.CLIP_ID]) for _, r in run.manifest().iterrows())), rc)
    ids = [c for c in done_ids if c in golden]
    not_done = sorted(set(golden) - set(done_ids))
    if not ids:
        raise LearnError(f"no clip of {run.path} that was extracted has a label in "
                         f"{labels_path}; check the labels file's clip column")
    group = {c: group_of(c, rc.group_pattern) for c in ids}
    y_all = np.asarray([golden[c] for c in ids], dtype=object)
    units_all = np.asarray([group[c] for c in ids], dtype=object)
    clips = build_clips(frames[frames[schema.CLIP_ID].isin(ids)], ids, fam_names, golden,
                        group)
    pos = {c: i for i, c in enumerate(ids)}
    face_pos = np.asarray([pos[c] for c in clips.ids], dtype=int)
    folds = outer_folds(clips.groups, lc)
    if not folds.grouped:
        log.warning("learn: %s", folds.scheme)
    seed = lc.seed
    fold_of = np.full(len(ids), -1)
    for k, (_, test) in enumerate(folds.splits):
        fold_of[face_pos[test]] = k

    rows = _baseline_rows(frames, ids, group, rc, clips, folds, face_pos)
    xs = {fs: pooled(clips, fs)[0] for fs in sets}
    learned: dict[tuple[str, str], Row] = {}
    for name in lc.classifiers:
        for fs in sets:
            learned[(name, set_name(fs))] = Row(name, schema.KIND_LEARNED, set_name(fs),
                                                _no_face(len(ids)))
        if name != "lstm" and len(sets) > 1:
            learned[(name, SELECTED)] = Row(name, schema.KIND_LEARNED, SELECTED,
                                            _no_face(len(ids)))
    if "lstm" in lc.classifiers:
        from videmo.runtime import configure_threads, threads_for

        configure_threads(threads_for(1, cfg.run.threads))
    show = sys.stderr.isatty() if progress is None else progress
    steps = len(folds.splits) * len(lc.classifiers) + (1 if lc.classifiers else 0)
    bar = tqdm(total=steps, unit="fit", desc="learn", disable=not show, dynamic_ncols=True)
    y = clips.y
    try:
        for k, (train, test) in enumerate(folds.splits):
            for name in lc.classifiers:
                bar.set_postfix_str(f"fold {k + 1}/{len(folds.splits)} {name}")
                if name == "lstm":
                    for fs in sets:
                        m = fit_lstm([sequence(clips, i, fs, lc.max_frames) for i in train],
                                     y[train], lc, seed + k)
                        pred = m.predict([sequence(clips, i, fs, lc.max_frames) for i in test])
                        learned[(name, set_name(fs))].pred[face_pos[test]] = pred
                    bar.update(1)
                    continue
                scores = inner_scores(name, {fs: x[train] for fs, x in xs.items()}, y[train],
                                      clips.groups[train], lc, seed)
                for key in [*((set_name(fs), [fs]) for fs in sets),
                            *([(SELECTED, sets)] if len(sets) > 1 else [])]:
                    fs, g = best(scores, key[1])
                    model = fit_pooled(name, xs[fs][train], y[train], GRIDS[name][g], seed)
                    row = learned[(name, key[0])]
                    row.pred[face_pos[test]] = model.predict(xs[fs][test])
                    row.chosen.append(f"{set_name(fs)} {json.dumps(GRIDS[name][g])}")
                bar.update(1)
        rows.extend(learned.values())
        table, stats = _results(rows, y_all, units_all, lc)
        chosen = _choose(table)
        model_dir = None
        if chosen is not None:
            bar.set_postfix_str(f"refit {chosen[0]} ({chosen[1]}) on all clips")
            model_dir = out_dir / "model"
            fitted = _refit(chosen[0], chosen[1], clips, xs, sets, lc)
            save_model(fitted, model_dir, clips, run, cfg)
            bar.update(1)
    finally:
        bar.close()
    summary = _summary(run, out_dir, ids, y_all, units_all, clips, folds, table, stats,
                       chosen, not_done, issues.lines() if issues else [], lc)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(table, out_dir / "results.csv")
    preds = pd.DataFrame({schema.CLIP_ID: ids, schema.GROUP: units_all, schema.GOLDEN: y_all,
                          schema.FOLD: fold_of,
                          **{f"{r.classifier}|{r.features}": r.pred for r in rows}})
    write_csv_atomic(preds, out_dir / "predictions.csv")
    write_text_atomic(out_dir / "learn_config.yaml", dump(cfg))
    write_text_atomic(out_dir / "summary.txt", summary + "\n")
    plot_results(table, out_dir / "results.png", folds.scheme)
    if model_dir is not None:
        write_card(model_dir, run, cfg, ids, y_all, units_all, folds, table, chosen, stats)
    return LearnResult(out_dir, table, summary, model_dir)


def _no_face(n: int) -> np.ndarray:
    return np.full(n, schema.NO_FACE, dtype=object)


def _baseline_rows(frames: pd.DataFrame, ids: list[str], group: dict[str, str], rc,
                   clips: Clips, folds: Folds, face_pos: np.ndarray) -> list[Row]:
    """The majority vote, the mean and the rules on every evaluated clip (no training), and
    ``prior``: the commonest class of each training fold."""
    mine = frames[frames[schema.CLIP_ID].isin(ids)]
    rows = []
    for name, kind in [("majority", schema.KIND_BASELINE), ("mean", schema.KIND_BASELINE),
                       ("expressive", schema.KIND_RULE), ("confident", schema.KIND_RULE),
                       ("peak", schema.KIND_RULE)]:
        v = clip_votes(mine, ids, rc.mapping, frame_rule=rc.frame_label, aggregate=name,
                       tie=rc.tie, interval_frames=rc.interval_frames, rules=rc.rules,
                       groups=group)
        rows.append(Row(name, kind, "fer", v[schema.PREDICT].to_numpy(dtype=object)))
    prior = Row("prior", schema.KIND_BASELINE, "none", _no_face(len(ids)))
    for train, test in folds.splits:
        counts = {c: int((clips.y[train] == c).sum()) for c in CLASSES}
        prior.pred[face_pos[test]] = max(CLASSES, key=lambda c: counts[c])  # ties: class order
    rows.append(prior)
    return rows


def _results(rows: list[Row], y: np.ndarray, units: np.ndarray, lc: LearnConfig
             ) -> tuple[pd.DataFrame, dict[str, Any]]:
    n_groups = len(set(units))
    unit = lc.bootstrap_unit
    if unit == "auto":
        unit = "groups" if n_groups >= MIN_BOOTSTRAP_GROUPS else "clips"
    w = bootstrap_weights(len(y), units if unit == "groups" else None, lc.bootstrap, lc.seed)
    ones = np.ones((1, len(y)))
    vote = rows[0].pred
    out = []
    for r in rows:
        acc, f1 = (float(v[0]) for v in weighted_rates(y, r.pred, ones))
        acc_b, f1_b = weighted_rates(y, r.pred, w)
        out.append({schema.CLASSIFIER: r.classifier, schema.KIND: r.kind,
                    schema.FEATURES: r.features, schema.ACCURACY: acc,
                    schema.ACCURACY + schema.CI_LOW: interval(acc_b)[0],
                    schema.ACCURACY + schema.CI_HIGH: interval(acc_b)[1],
                    schema.MACRO_F1: f1, schema.MACRO_F1 + schema.CI_LOW: interval(f1_b)[0],
                    schema.MACRO_F1 + schema.CI_HIGH: interval(f1_b)[1],
                    schema.N_CLIPS: len(y), schema.N_GROUPS: n_groups,
                    schema.P_VS_VOTE: np.nan if r is rows[0] else mcnemar_p(y, r.pred, vote)})
    table = pd.DataFrame(out, columns=list(schema.LEARN_RESULT_COLUMNS))
    rates = [c for c in table.columns if c not in (schema.P_VS_VOTE, schema.CLASSIFIER,
                                                   schema.KIND, schema.FEATURES)]
    table[rates] = table[rates].round(4)  # p-values keep their small values
    return table, {"unit": unit, "reps": lc.bootstrap,
                   "chosen": {f"{r.classifier}|{r.features}": r.chosen for r in rows
                              if r.chosen}}


def _choose(table: pd.DataFrame) -> tuple[str, str] | None:
    """The learned row with the best outer-CV accuracy (then macro-F1, then table order)."""
    learned = table[table[schema.KIND] == schema.KIND_LEARNED]
    if learned.empty:
        return None
    order = learned.assign(_i=-np.arange(len(learned))).sort_values(
        [schema.ACCURACY, schema.MACRO_F1, "_i"], ascending=False)
    r = order.iloc[0]
    return str(r[schema.CLASSIFIER]), str(r[schema.FEATURES])


# ---------------------------------------------------------------- the deployed model
@dataclass
class Fitted:
    classifier: str
    features: tuple[str, ...]
    params: dict[str, Any]
    model: Any  # a Pipeline, a Constant or an LstmModel
    feature_names: list[str]


def _refit(name: str, features: str, clips: Clips, xs: dict, sets: list,
           lc: LearnConfig) -> Fitted:
    """The chosen row's procedure on every clip: the same inner selection, then one fit."""
    y = clips.y
    if name == "lstm":
        fs = parse_feature_set(features)
        m = fit_lstm([sequence(clips, i, fs, lc.max_frames) for i in range(len(clips))], y, lc,
                     lc.seed)
        names = [c for n in fs for c in clips.names[n]] + ["time_fraction"]
        return Fitted(name, fs, {"units": lc.lstm_units, "epochs": lc.lstm_epochs}, m, names)
    among = sets if features == SELECTED else [parse_feature_set(features)]
    scores = inner_scores(name, {fs: xs[fs] for fs in among}, y, clips.groups, lc, lc.seed)
    fs, g = best(scores, among)
    model = fit_pooled(name, xs[fs], y, GRIDS[name][g], lc.seed)
    return Fitted(name, fs, GRIDS[name][g], model, pooled(clips, fs)[1])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_json(tree) -> dict[str, list]:
    t = tree.tree_
    return {"left": t.children_left.tolist(), "right": t.children_right.tolist(),
            "feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
            "value": t.value[:, 0, 0].tolist()}


def _export(fitted: Fitted, x: np.ndarray) -> dict[str, Any]:
    """A pooled model as plain numbers (see :func:`_predict_json`), checked on ``x``."""
    m = fitted.model
    if isinstance(m, Constant):
        spec: dict[str, Any] = {"kind": "constant", "label": m.label}
    else:
        imp = m.named_steps["impute"].statistics_.tolist()
        clf = m.named_steps["clf"]
        spec = {"impute": imp, "classes": [str(c) for c in clf.classes_]}
        if fitted.classifier == "logistic":
            select = m.named_steps["select"]
            if select != "passthrough":
                spec["keep"] = select.get_support(indices=True).tolist()
            sc = m.named_steps["scale"]
            spec.update(kind="logistic", mean=sc.mean_.tolist(), scale=sc.scale_.tolist(),
                        coef=clf.coef_.tolist(), intercept=clf.intercept_.tolist())
        else:
            xi = m.named_steps["impute"].transform(x)
            trees = [[_tree_json(t) for t in stage] for stage in clf.estimators_]
            spec.update(kind="gboost", learning_rate=clf.learning_rate, trees=trees,
                        init=[0.0] * clf.estimators_.shape[1])
            raw = np.asarray(clf.decision_function(xi)).reshape(len(xi), -1)
            init = raw - _trees_raw(spec, xi)
            if not np.allclose(init, init[0], atol=1e-9):  # a bug, not a user error
                raise RuntimeError("gradient boosting's initial prediction is not constant")
            spec["init"] = init[0].tolist()
    mine = _predict_json(spec, x)
    theirs = m.predict(x)
    if not np.array_equal(mine, np.asarray(theirs, dtype=object)):
        raise RuntimeError(f"the JSON form of {fitted.classifier} does not reproduce "
                           f"scikit-learn's predictions")
    return spec


def _trees_raw(spec: dict[str, Any], x: np.ndarray) -> np.ndarray:
    x32 = x.astype(np.float32).astype(np.float64)  # scikit-learn's trees compare float32
    raw = np.zeros((len(x), len(spec["trees"][0])))
    rows = np.arange(len(x))
    for stage in spec["trees"]:
        for k, t in enumerate(stage):
            left, right = np.asarray(t["left"]), np.asarray(t["right"])
            feat, thr = np.asarray(t["feature"]), np.asarray(t["threshold"])
            node = np.zeros(len(x), dtype=int)
            while True:
                inner = left[node] != -1
                if not inner.any():
                    break
                go_left = x32[rows, np.where(inner, feat[node], 0)] <= thr[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            raw[:, k] += spec["learning_rate"] * np.asarray(t["value"])[node]
    return raw


def _predict_json(spec: dict[str, Any], x: np.ndarray) -> np.ndarray:
    if spec["kind"] == "constant":
        return np.full(len(x), spec["label"], dtype=object)
    x = np.where(np.isnan(x), np.asarray(spec["impute"]), x)
    classes = np.asarray(spec["classes"], dtype=object)
    if spec["kind"] == "logistic":
        if "keep" in spec:
            x = x[:, spec["keep"]]
        z = (x - np.asarray(spec["mean"])) / np.asarray(spec["scale"])
        raw = z @ np.asarray(spec["coef"]).T + np.asarray(spec["intercept"])
    else:
        raw = np.asarray(spec["init"]) + _trees_raw(spec, x)
    if raw.shape[1] == 1:  # two classes: one decision value, positive means classes[1]
        return classes[(raw[:, 0] > 0).astype(int)]
    return classes[raw.argmax(axis=1)]


def save_model(fitted: Fitted, model_dir: Path, clips: Clips, run: RunDir, cfg: Config) -> None:
    """Write model.json (and model.keras for the LSTM) to ``model_dir``; no pickle."""
    model_dir.mkdir(parents=True, exist_ok=True)
    d = cfg.to_dict()
    mesh = any(FAMILIES[n].mesh for n in fitted.features)
    meta: dict[str, Any] = {
        "format": MODEL_FORMAT, "format_version": 1, "classifier": fitted.classifier,
        "features": list(fitted.features), "params": fitted.params,
        "feature_names": fitted.feature_names, "stats": list(STATS),
        "classes": list(CLASSES), "videmo": __version__, "commit": _commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "trained_on": {"run": str(run.path.resolve()), "clips": len(clips),
                       "extract_hash": cfg.extract_hash(), "clip_ids": list(clips.ids),
                       "mesh_hash": cfg.mesh_hash() if mesh else None},
        "extract_config": {k: d[k] for k in ("sampling", "faces", "emotions",
                                             *(("features", "mesh") if mesh else ()))},
        "files": {},
    }
    if isinstance(fitted.model, LstmModel):
        path = model_dir / "model.keras"
        with warnings.catch_warnings():  # Keras 3.15's own use of numpy 2's __array__
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    message="__array__ implementation doesn't accept a copy")
            fitted.model.model.save(path)
        meta["lstm"] = {"mean": fitted.model.mean.tolist(), "std": fitted.model.std.tolist(),
                        "max_frames": fitted.model.max_frames}
        meta["files"][path.name] = _sha256(path)
    else:
        meta["model"] = _export(fitted, pooled(clips, fitted.features)[0])
    write_text_atomic(model_dir / "model.json", json.dumps(meta, indent=1) + "\n")


@dataclass
class ClipClassifier:
    """A saved clip classifier (:func:`load_classifier`), applied by ``videmo report``."""

    path: Path
    meta: dict[str, Any]
    lstm: LstmModel | None = None

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
        trained = self.meta["trained_on"].get("mesh_hash")
        if trained and cfg.mesh_hash() and trained != cfg.mesh_hash():
            log.warning("model %s was trained on a mesh made with other settings (mesh hash "
                        "%s, this run %s)", self.path, trained, cfg.mesh_hash())
        return with_mesh(frames, run, cfg, set(self.features),
                         f"run {run.path} (model {self.path} reads {'+'.join(self.features)})")

    def predict(self, frames: pd.DataFrame, clip_ids: list[str]) -> dict[str, str]:
        """A class for every clip of ``clip_ids`` with a face row (others are left out).
        ``frames`` must hold the model's feature columns (:meth:`with_features`)."""
        features = self.features
        check_families(frames, set(features), f"the run (model {self.path})")
        clips = build_clips(frames, clip_ids, set(features))
        if not len(clips):
            return {}
        if self.lstm is not None:
            names = [c for n in features for c in clips.names[n]] + ["time_fraction"]
            self._check_names(names, features)
            mf = self.lstm.max_frames
            pred = self.lstm.predict([sequence(clips, i, features, mf)
                                      for i in range(len(clips))])
        else:
            x, names = pooled(clips, features)
            self._check_names(names, features)
            pred = _predict_json(self.meta["model"], x)
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
    lstm = None
    if "lstm" in meta:
        tf = _tensorflow()
        model = tf.keras.models.load_model(path / "model.keras", compile=False, safe_mode=True)
        lstm = LstmModel(model, np.asarray(meta["lstm"]["mean"]),
                         np.asarray(meta["lstm"]["std"]), int(meta["lstm"]["max_frames"]))
    return ClipClassifier(path, meta, lstm)


# ---------------------------------------------------------------- text, card and figure
def _fmt_row(r: pd.Series) -> str:
    p = r[schema.P_VS_VOTE]
    return (f"  {r[schema.CLASSIFIER]:<11}{r[schema.KIND]:<9}{r[schema.FEATURES]:<17}"
            f"{r[schema.ACCURACY]:6.1%} [{r[schema.ACCURACY + schema.CI_LOW]:6.1%}, "
            f"{r[schema.ACCURACY + schema.CI_HIGH]:6.1%}]  "
            f"{r[schema.MACRO_F1]:.3f} [{r[schema.MACRO_F1 + schema.CI_LOW]:.3f}, "
            f"{r[schema.MACRO_F1 + schema.CI_HIGH]:.3f}]  "
            f"{'-' if pd.isna(p) else format(p, '.3g')}")


def _balance_line(y: np.ndarray) -> str:
    n = len(y)
    parts = [f"{c} {int((y == c).sum())} ({(y == c).mean():.0%})" for c in CLASSES]
    top = max(CLASSES, key=lambda c: (y == c).sum())
    return (f"class balance: {', '.join(parts)}; always '{top}' would be right on "
            f"{(y == top).sum() / n:.1%}")


def _summary(run, out_dir, ids, y, units, clips, folds, table, stats, chosen, not_done,
             label_lines, lc) -> str:
    lines = [f"learn: {run.path} -> {out_dir}"]
    if not folds.grouped:
        lines.append("!" * 78)
        lines.append(f"!! {folds.scheme}")
        lines.append("!" * 78)
    lines.append(f"clips: {len(ids)} labelled and extracted ({len(clips)} with a face), "
                 f"{len(set(units))} group(s) by report.group_pattern")
    lines.append(_balance_line(y))
    lines.append(f"folds: {folds.scheme}; hyper-parameters"
                 f"{' and feature set' if len(lc.features) > 1 else ''} chosen by an inner "
                 f"CV on each training fold (learn.inner_folds = {lc.inner_folds}); seed "
                 f"{lc.seed}")
    why = "persons: clips of one person are not independent" if stats["unit"] == "groups" \
        else (f"fewer than {MIN_BOOTSTRAP_GROUPS} groups: too few for a group bootstrap"
              if lc.bootstrap_unit == "auto" else "learn.bootstrap_unit: clips")
    lines.append(f"95% intervals: percentile bootstrap, {stats['reps']} resamples of "
                 f"{stats['unit']} ({why}); p_vs_vote: exact McNemar test against the "
                 f"majority vote")
    lines.append(f"  {'classifier':<11}{'kind':<9}{'features':<17}{'accuracy [95% CI]':<26}"
                 f"{'macro-F1 [95% CI]':<23}p_vs_vote")
    lines.extend(_fmt_row(r) for _, r in table.iterrows())
    if chosen is not None:
        r = table[(table[schema.CLASSIFIER] == chosen[0])
                  & (table[schema.FEATURES] == chosen[1])].iloc[0]
        vote = table.iloc[0]
        lines.append(f"chosen model: {chosen[0]} ({chosen[1]}), refitted on all {len(clips)} "
                     f"clips -> {out_dir / 'model'} (the best of the learned rows: its "
                     f"accuracy is optimistic by that choice)")
        if r[schema.ACCURACY] <= vote[schema.ACCURACY]:
            lines.append("  it does not beat the majority vote here")
    for key, picks in stats["chosen"].items():
        lines.append(f"selected per fold, {key}: " + "; ".join(dict.fromkeys(picks)))
    if not_done:
        lines.append(f"left out: {len(not_done)} labelled clips not extracted (failed or not "
                     f"done): {', '.join(not_done[:10])}{' ...' if len(not_done) > 10 else ''}")
    lines.extend("labels: " + s for s in label_lines)
    return "\n".join(lines)


def write_card(model_dir: Path, run: RunDir, cfg: Config, ids, y, units, folds: Folds,
               table: pd.DataFrame, chosen: tuple[str, str], stats: dict[str, Any]) -> None:
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    lc = cfg.learn
    r = table[(table[schema.CLASSIFIER] == chosen[0])
              & (table[schema.FEATURES] == chosen[1])].iloc[0]
    files = ", ".join(["model.json", *meta["files"]])
    learned_rows = int((table[schema.KIND] == schema.KIND_LEARNED).sum())
    inputs = "the frame sequence" if chosen[0] == "lstm" else \
        f"pooled statistics per clip ({', '.join(STATS)})"
    lines = [
        f"# Model card: videmo clip classifier `{chosen[0]}` ({chosen[1]})", "",
        f"Made by `videmo learn` on {meta['created']} with videmo {meta['videmo']}, commit "
        f"{meta['commit']}.", "",
        "## What it does", "",
        "Labels a clip positive / negative / neutral from the per-frame table of a videmo run "
        f"(feature families: {', '.join(meta['features'])}).",
        f"Apply it with `videmo report RUN --classifier {model_dir}` (or `report.classifier`).",
        f"Files: {files}; no pickle: the sha256 of every other file is in model.json and is "
        "checked before loading. Load only model folders you made yourself.", "",
        "## Data", "",
        f"Run `{run.path.resolve()}` (extract hash {cfg.extract_hash()}; detector "
        f"{cfg.faces.detector}; sampling every_n {cfg.sampling.every_n}, fps "
        f"{cfg.sampling.fps}).",
        *([f"Face mesh (features: [emotions, mesh]): mesh.min_presence "
           f"{cfg.mesh.min_presence}, mesh hash {cfg.mesh_hash()}"
           + (f"; landmarks: x, y, z of {len(LANDMARK_SUBSET)} pose-normalised points "
              f"(videmo.evaluate.learn.LANDMARK_SUBSET)" if "landmarks" in meta["features"]
              else "") + "."]
          if any(FAMILIES[n].mesh for n in meta["features"]) else []),
        f"{len(ids)} labelled clips of {len(set(units))} group(s) by report.group_pattern "
        f"`{cfg.report.group_pattern}`.",
        f"{_balance_line(y)[0].upper()}{_balance_line(y)[1:]}.", "",
        "## Training", "",
        f"{chosen[0]} on {inputs}; settings {json.dumps(meta['params'])}, chosen by an inner "
        f"CV over all clips (learn.inner_folds {lc.inner_folds}), then refitted on all "
        f"{meta['trained_on']['clips']} clips with a face. Seed {lc.seed}.", "",
        "## Evaluation (outer cross-validation, out-of-fold predictions)", "",
        f"Folds: {folds.scheme}.",
        f"Accuracy {r[schema.ACCURACY]:.1%} (95% CI {r[schema.ACCURACY + schema.CI_LOW]:.1%} to "
        f"{r[schema.ACCURACY + schema.CI_HIGH]:.1%}), macro-F1 {r[schema.MACRO_F1]:.3f} "
        f"({r[schema.MACRO_F1 + schema.CI_LOW]:.3f} to {r[schema.MACRO_F1 + schema.CI_HIGH]:.3f}); "
        f"percentile bootstrap, {stats['reps']} resamples of {stats['unit']}.",
        f"Majority vote on the same clips: {table.iloc[0][schema.ACCURACY]:.1%}; exact McNemar "
        f"p = {r[schema.P_VS_VOTE]:.3g}.",
        f"This model is the best of {learned_rows} learned rows by the same outer CV, so its "
        "number is optimistic by that choice; every row is in results.csv beside this folder.",
        "", "## Limits", "",
        "The numbers hold for clips like these (the same kind of persons and footage, the same "
        "extract settings); applying the model to a run with other extract settings logs a "
        "warning, and to its own training clips too (their accuracy is no estimate).",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(model_dir / "model-card.md", text)


def plot_results(table: pd.DataFrame, path: Path, scheme: str) -> Path:
    """Accuracy with its 95% interval per row, coloured by kind; the vote as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colours = {schema.KIND_BASELINE: "#8d99ae", schema.KIND_RULE: "#e9c46a",
               schema.KIND_LEARNED: "#2a9d8f"}
    n = len(table)
    fig, ax = plt.subplots(figsize=(7, 1.0 + 0.35 * n))
    ypos = np.arange(n)[::-1]
    acc = table[schema.ACCURACY].to_numpy(float)
    lo = acc - table[schema.ACCURACY + schema.CI_LOW].to_numpy(float)
    hi = table[schema.ACCURACY + schema.CI_HIGH].to_numpy(float) - acc
    ax.barh(ypos, acc, color=[colours[k] for k in table[schema.KIND]],
            xerr=np.vstack([lo, hi]), capsize=3)
    labels = [f"{c} ({f})" for c, f in zip(table[schema.CLASSIFIER], table[schema.FEATURES],
                                            strict=True)]
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.axvline(acc[0], color="black", linestyle="dashed", linewidth=1, label="majority vote")
    for k, c in colours.items():
        ax.barh([np.nan], [np.nan], color=c, label=k)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"accuracy per clip (95% bootstrap CI), {int(table[schema.N_CLIPS].iloc[0])} "
                  f"clips")
    ax.set_title(scheme if len(scheme) < 70 else scheme[:67] + "...", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
