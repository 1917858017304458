"""Cross-validation that knows no learner by name: person-grouped outer folds, an inner CV on
each training fold for a tuned learner's settings (and, with several ``learn.features`` sets,
the feature set: the ``selected`` row), and the refit of a chosen row on every clip.

* Folds are grouped by person (``report.group_pattern``): up to ``learn.logo_max_groups``
  groups one group is left out at a time, above that ``GroupKFold`` with ``learn.folds`` splits.
  No person is in both the training and the test part of a fold. With a single group (one
  person's clips) person-grouped CV is impossible: ``learn.one_group: clips`` leaves one clip
  out and says so in every output (its numbers say nothing about new persons), ``refuse`` stops.
* Nested selection: a tuned learner's candidates (:meth:`ClipLearner.grid`) and the feature
  set are chosen by an inner CV on the training fold only, grouped by person
  (``learn.inner_folds``; by clip when the training fold holds one group), scored by the
  macro-F1 of the pooled inner out-of-fold predictions, ties to the simpler (earlier)
  candidate. An untuned learner (the LSTM: its settings are fixed by config) needs no inner
  loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, LeaveOneOut

from videmo import schema
from videmo.config import LearnConfig
from videmo.evaluate.learn.base import CLASSES, ClipLearner, Fitted, LearnError, take
from videmo.evaluate.learn.clips import Clips
from videmo.evaluate.learn.families import parse_feature_set, set_name

SELECTED = "selected"


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


def inner_scores(learner: ClipLearner, xs: dict[tuple[str, ...], Any], y: np.ndarray,
                 groups: np.ndarray, lc: LearnConfig, seed: int
                 ) -> dict[tuple[tuple[str, ...], int], float]:
    """Macro-F1 of the pooled inner out-of-fold predictions of every (feature set, grid
    entry) of a tuned learner on one training fold (``xs``, ``y``, ``groups`` are that
    fold's)."""
    splits = inner_folds(groups, lc, seed)
    out = {}
    for fs, x in xs.items():
        for k, params in enumerate(learner.grid(lc)):
            if not splits:
                out[(fs, k)] = 0.0
                continue
            pred = np.empty(len(y), dtype=object)
            for a, b in splits:
                model = learner.estimator(params, lc, seed, 0).fit(take(x, a), y[a])
                pred[b] = model.predict(take(x, b))
            out[(fs, k)] = macro_f1(y, pred)
    return out


def best(scores: dict[tuple[tuple[str, ...], int], float],
         among: list[tuple[str, ...]]) -> tuple[tuple[str, ...], int]:
    """The highest score among feature sets ``among``; ties to the earlier candidate."""
    keys = [k for k in scores if k[0] in among]
    return max(keys, key=lambda k: (scores[k], -among.index(k[0]), -k[1]))



@dataclass
class Row:
    """One row of results: a classifier's out-of-fold predictions over the evaluated clips."""

    classifier: str
    kind: str
    features: str
    pred: np.ndarray  # over the evaluated clips
    chosen: list[str] = field(default_factory=list)  # per outer fold: what selection chose


class Inputs:
    """Each learner's inputs per feature set over every clip, made once and shared by the
    learners that read the same kind (logistic and gboost both read pooled statistics)."""

    def __init__(self, clips: Clips, max_frames: int):
        self.clips, self.max_frames = clips, max_frames
        self._cache: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def __call__(self, learner: ClipLearner, fs: tuple[str, ...]) -> Any:
        key = (type(learner).inputs, fs)
        if key not in self._cache:
            self._cache[key] = learner.inputs(self.clips, fs, self.max_frames)
        return self._cache[key]


def no_face(n: int) -> np.ndarray:
    return np.full(n, schema.NO_FACE, dtype=object)


def learned_rows(learners: list[ClipLearner], sets: list[tuple[str, ...]],
                 n: int) -> dict[tuple[str, str], Row]:
    """The empty rows of every learner: one per feature set, and ``selected`` for a tuned
    learner when there are several sets."""
    rows: dict[tuple[str, str], Row] = {}
    for learner in learners:
        for fs in sets:
            rows[(learner.name, set_name(fs))] = Row(learner.name, schema.KIND_LEARNED,
                                                     set_name(fs), no_face(n))
        if learner.tuned and len(sets) > 1:
            rows[(learner.name, SELECTED)] = Row(learner.name, schema.KIND_LEARNED, SELECTED,
                                                 no_face(n))
    return rows


def cross_validate(learners: list[ClipLearner], inputs: Inputs, sets: list[tuple[str, ...]],
                   folds: Folds, lc: LearnConfig, rows: dict[tuple[str, str], Row],
                   face_pos: np.ndarray, bar: Any = None) -> None:
    """Fill ``rows`` (:func:`learned_rows`) with every learner's out-of-fold predictions.
    ``bar`` (a tqdm bar, optional) is told each (fold, learner) step and advanced after it."""
    for k, (train, test) in enumerate(folds.splits):
        for learner in learners:
            if bar is not None:
                bar.set_postfix_str(f"fold {k + 1}/{len(folds.splits)} {learner.name}")
            _fold(learner, inputs, sets, lc, rows, k, train, test, face_pos)
            if bar is not None:
                bar.update(1)


def _fold(learner: ClipLearner, inputs: Inputs, sets: list[tuple[str, ...]], lc: LearnConfig,
          rows: dict[tuple[str, str], Row], k: int, train: np.ndarray, test: np.ndarray,
          face_pos: np.ndarray) -> None:
    """One learner on outer fold ``k``: fit on ``train`` (after the inner selection of a
    tuned learner), predict ``test`` into its rows."""
    y, groups, grid = inputs.clips.y, inputs.clips.groups, learner.grid(lc)
    if not learner.tuned:
        for fs in sets:
            x = inputs(learner, fs)
            model = learner.estimator(grid[0], lc, lc.seed, k).fit(take(x, train), y[train])
            rows[(learner.name, set_name(fs))].pred[face_pos[test]] = \
                model.predict(take(x, test))
        return
    xs = {fs: take(inputs(learner, fs), train) for fs in sets}
    scores = inner_scores(learner, xs, y[train], groups[train], lc, lc.seed)
    for key, among in [*((set_name(fs), [fs]) for fs in sets),
                       *([(SELECTED, sets)] if len(sets) > 1 else [])]:
        fs, g = best(scores, among)
        x = inputs(learner, fs)
        model = learner.estimator(grid[g], lc, lc.seed, k).fit(take(x, train), y[train])
        row = rows[(learner.name, key)]
        row.pred[face_pos[test]] = model.predict(take(x, test))
        row.chosen.append(f"{set_name(fs)} {json.dumps(grid[g])}")


def refit(learner: ClipLearner, features: str, inputs: Inputs, sets: list[tuple[str, ...]],
          lc: LearnConfig) -> Fitted:
    """The chosen row's procedure on every clip: the same inner selection, then one fit."""
    clips = inputs.clips
    y, grid = clips.y, learner.grid(lc)
    if not learner.tuned:
        fs, g = parse_feature_set(features), 0
    else:
        among = sets if features == SELECTED else [parse_feature_set(features)]
        scores = inner_scores(learner, {fs: inputs(learner, fs) for fs in among}, y,
                              clips.groups, lc, lc.seed)
        fs, g = best(scores, among)
    model = learner.estimator(grid[g], lc, lc.seed, 0).fit(inputs(learner, fs), y)
    return Fitted(learner.name, fs, grid[g], model, learner.input_names(clips, fs))
