"""The learner interface: what the cross-validation loop, the refit and the model folder know
of a classifier, and the registry of learners by name (``learn.classifiers``).

A :class:`ClipLearner` is a recipe in scikit-learn's spirit. It turns the per-clip data into
its input matrix (:meth:`~ClipLearner.inputs`: pooled statistics, frame sequences, ...), names
the candidate settings an inner CV may choose among (:meth:`~ClipLearner.grid`), and makes an
estimator for one setting (:meth:`~ClipLearner.estimator`) with ``fit(X, y) -> self`` and
``predict(X)``. A fitted estimator is written to a model folder by :meth:`~ClipLearner.export`
and read back by :meth:`~ClipLearner.load`, both without pickle. The CV loop
(:mod:`videmo.evaluate.learn.cv`) never asks which learner it holds.

The shipped learners are entries of :data:`LEARNERS`; add one with :func:`register_learner`.
``learn.classifiers`` accepts every registered name (config validation reads :data:`LEARNERS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from videmo import schema
from videmo.config import ConfigError
from videmo.registry import Registry

if TYPE_CHECKING:
    from videmo.config import Config, LearnConfig
    from videmo.evaluate.learn.clips import Clips

CLASSES: tuple[str, ...] = schema.CLASSES


class LearnError(ConfigError):
    """A run cannot be learned from as asked (no labels, a feature family the run lacks, one
    group with ``learn.one_group: refuse``); the message says what to do."""


class ModelError(ConfigError):
    """A saved model folder (report.classifier) is not one videmo can load: missing, changed
    since it was written, or of another format."""


class Estimator(Protocol):
    """What :meth:`ClipLearner.estimator` makes and :meth:`ClipLearner.load` gives back."""

    def fit(self, x: Any, y: np.ndarray) -> Estimator: ...

    def predict(self, x: Any) -> np.ndarray: ...


class ClipLearner:
    """One way to learn a clip's class from its frames (see the module doc).

    ``name`` is the ``learn.classifiers`` value. ``tuned``: its :meth:`grid` is searched (with
    the feature set, when ``learn.features`` has several: the ``selected`` row) by an inner CV
    on each training fold; an untuned learner fits ``grid(lc)[0]`` directly, one row per
    feature set. ``describes`` says in a sentence what it reads (for the model card)."""

    name: ClassVar[str] = ""
    tuned: ClassVar[bool] = True
    describes: ClassVar[str] = ""

    def setup(self, cfg: Config) -> None:
        """Called once before the first fit of ``videmo learn`` (e.g. thread budgets)."""

    def grid(self, lc: LearnConfig) -> list[dict[str, Any]]:
        raise NotImplementedError

    def inputs(self, clips: Clips, fs: tuple[str, ...], max_frames: int) -> Any:
        """One input per clip of ``clips`` (an array's rows or a list), indexable by an
        integer array through :func:`take`."""
        raise NotImplementedError

    def input_names(self, clips: Clips, fs: tuple[str, ...]) -> list[str]:
        """The names of the features :meth:`inputs` gives, stored in the model folder and
        checked when a saved model reads a run."""
        raise NotImplementedError

    def estimator(self, params: dict[str, Any], lc: LearnConfig, seed: int,
                  fold: int) -> Estimator:
        """An unfitted estimator for one setting; ``fold`` is the outer fold's index (0 for
        the refit on every clip), for learners whose fits are seeded per fold."""
        raise NotImplementedError

    def export(self, model: Estimator, x: Any, model_dir: Path) -> dict[str, Any]:
        """Write what ``model`` needs beside model.json into ``model_dir``; return the entries
        of model.json that describe it (``files``: {name: sha256} of the files written)."""
        raise NotImplementedError

    def load(self, meta: dict[str, Any], model_dir: Path) -> tuple[Estimator, int]:
        """The estimator saved by :meth:`export` and the ``max_frames`` its inputs use."""
        raise NotImplementedError


# learn.classifiers: the shipped learners, cheapest first (their modules import their
# libraries lazily); a learner made elsewhere joins with register_learner
LEARNERS = Registry("learner (learn.classifiers)", {
    "logistic": "videmo.evaluate.learn.pooled:LOGISTIC",
    "gboost": "videmo.evaluate.learn.pooled:GBOOST",
    "lstm": "videmo.evaluate.learn.lstm:LSTM",
})


def register_learner(learner: ClipLearner) -> ClipLearner:
    """Add (or replace) a learner under its name; ``learn.classifiers`` then accepts it."""
    if not learner.name:
        raise ValueError(f"{type(learner).__name__}: a learner needs a name")
    return LEARNERS.register(learner.name, learner)


def learner_names() -> tuple[str, ...]:
    """Every registered learner's name, the shipped ones first."""
    return LEARNERS.names()


def get_learner(name: str) -> ClipLearner:
    try:
        return LEARNERS.get(name)
    except KeyError as e:
        raise LearnError(str(e.args[0]).replace("learner (learn.classifiers)", "classifier")) \
            from None


def take(x: Any, idx: Sequence[int] | np.ndarray) -> Any:
    """Rows ``idx`` of an input: an array's rows, or a list's items."""
    if isinstance(x, np.ndarray):
        return x[idx]
    return [x[i] for i in idx]


@dataclass
class Fitted:
    """A learner fitted on every clip (the deployed model) and what it read."""

    classifier: str
    features: tuple[str, ...]
    params: dict[str, Any]
    model: Any  # what the learner's estimator() made, fitted
    feature_names: list[str]
