"""The pooled learners: ``logistic`` (logistic regression) and ``gboost`` (gradient boosting),
scikit-learn Pipelines on the pooled statistics per clip (:func:`clips.pooled`), whose imputer
and scaler are fitted on the training fold only (logistic regression also keeps the
:data:`LOGISTIC_MAX_FEATURES` features of largest ANOVA F on the training fold, when there are
more). Their settings (:meth:`grid`) are chosen by an inner CV.

**Saved without pickle**: a fitted Pipeline is written as plain numbers in ``model.json``
(imputer, scaler, coefficients; every tree's nodes), evaluated here in numpy
(:func:`predict_json`) and checked against scikit-learn when saved. scikit-learn is imported
only to fit, so that applying a saved model (``videmo report --classifier``) does not load it.

Why not skops (``skops.io``, the maintained pickle-free format for scikit-learn objects; it is
on PyPI, 0.16 checked in December 2026): it stores the estimators' own attributes, so (1) a
model folder would load only with a scikit-learn close to the one that fitted it (skops makes
no promise across versions; this JSON is plain numbers any numpy reads); (2) loading imports
scikit-learn (1.4-2.6 s for ``sklearn.ensemble`` on the 2-core test machine, 5 runs) into
every ``report --classifier``; (3) its safety rests on an allow-list of types that each
release of scikit-learn may change (``trusted=``), where this form has no types at all. What
it would save is the ~25 lines of :func:`_trees_raw`, which the save-time check pins to
scikit-learn's own predictions on the training clips (a mismatch refuses to save).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from videmo.evaluate.learn.base import ClipLearner
from videmo.evaluate.learn.clips import STATS, Clips, pooled

# Logistic regression reads at most this many pooled features: the ones with the largest
# ANOVA F between the classes on the training fold (SelectKBest inside the Pipeline, so the
# test fold never takes part). Fixed, not tuned: about the number of training clips of a
# study-sized corpus. fer's 56 pooled features pass whole; a mesh family's 416-552 would
# otherwise, once standardised, weigh as much as the few that carry the label.
LOGISTIC_MAX_FEATURES = 64


class Constant:
    """What a training set with one class learns: that class."""

    def __init__(self, label: str):
        self.label = label

    def predict(self, x) -> np.ndarray:
        return np.full(len(x), self.label, dtype=object)


def _imputer():
    """The training fold's median of each pooled feature; a feature without any value in the
    training fold (a mesh family on clips without a mesh) is kept and imputed as 0, so that
    every model reads the same columns (and its JSON form stays aligned)."""
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy="median", keep_empty_features=True)


def _f_scores(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ANOVA F per feature; a constant feature (NaN) scores 0, quietly."""
    from sklearn.feature_selection import f_classif

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant features: division by zero
        f, p = f_classif(x, y)
    return np.nan_to_num(f, nan=0.0), np.nan_to_num(p, nan=1.0)


class PooledEstimator:
    """A Pipeline made by :meth:`PooledLearner.pipeline`, or :class:`Constant` when the
    training set holds one class."""

    def __init__(self, learner: PooledLearner, params: dict[str, Any], seed: int):
        self.learner, self.params, self.seed = learner, params, seed
        self.model: Any = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> PooledEstimator:
        if len(set(y)) == 1:
            self.model = Constant(str(y[0]))
            return self
        pipe = self.learner.pipeline(self.params, self.seed)
        if "select" in pipe.named_steps and x.shape[1] <= LOGISTIC_MAX_FEATURES:
            pipe.set_params(select="passthrough")
        self.model = pipe.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


class JsonModel:
    """A pooled model read back from model.json: predicts in numpy, no scikit-learn."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec

    def fit(self, x, y):  # pragma: no cover - a saved model is not refitted
        raise TypeError("a saved model cannot be refitted; run videmo learn")

    def predict(self, x: np.ndarray) -> np.ndarray:
        return predict_json(self.spec, x)


class PooledLearner(ClipLearner):
    """Shared by the pooled learners: inputs, export and load; a subclass gives its grid and
    its Pipeline."""

    describes = f"pooled statistics per clip ({', '.join(STATS)})"
    _grid: list[dict[str, Any]] = []

    def grid(self, lc) -> list[dict[str, Any]]:
        return self._grid

    def pipeline(self, params: dict[str, Any], seed: int):
        raise NotImplementedError

    def inputs(self, clips: Clips, fs: tuple[str, ...], max_frames: int) -> np.ndarray:
        return pooled(clips, fs)[0]

    def input_names(self, clips: Clips, fs: tuple[str, ...]) -> list[str]:
        return pooled(clips, fs)[1]

    def estimator(self, params, lc, seed, fold) -> PooledEstimator:
        return PooledEstimator(self, params, seed)

    def export(self, model: PooledEstimator, x: np.ndarray, model_dir: Path) -> dict[str, Any]:
        return {"model": _export(self.name, model.model, x), "files": {}}

    def load(self, meta: dict[str, Any], model_dir: Path) -> tuple[JsonModel, int]:
        return JsonModel(meta["model"]), 0


class Logistic(PooledLearner):
    name = "logistic"
    _grid = [{"C": 0.1}, {"C": 1.0}, {"C": 10.0}]

    def pipeline(self, params: dict[str, Any], seed: int):
        from sklearn.feature_selection import SelectKBest
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("impute", _imputer()),
                         ("select", SelectKBest(_f_scores, k=LOGISTIC_MAX_FEATURES)),
                         ("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=params["C"], max_iter=5000))])


class GBoost(PooledLearner):
    name = "gboost"
    # 50 trees at learning rate 0.2: on ~50 clips a fit takes a quarter of a second
    _grid = [{"n_estimators": 50, "max_depth": 1}, {"n_estimators": 50, "max_depth": 2}]

    def pipeline(self, params: dict[str, Any], seed: int):
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.pipeline import Pipeline

        return Pipeline([("impute", _imputer()),
                         ("clf", GradientBoostingClassifier(
                             n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                             learning_rate=0.2, random_state=seed))])


LOGISTIC = Logistic()  # entries of base.LEARNERS
GBOOST = GBoost()


# ---------------------------------------------------------------- plain-number form
def _tree_json(tree) -> dict[str, list]:
    t = tree.tree_
    return {"left": t.children_left.tolist(), "right": t.children_right.tolist(),
            "feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
            "value": t.value[:, 0, 0].tolist()}


def _export(name: str, m: Any, x: np.ndarray) -> dict[str, Any]:
    """A fitted pooled model (a Pipeline or a :class:`Constant`) as plain numbers (see
    :func:`predict_json`), checked on ``x``."""
    if isinstance(m, Constant):
        spec: dict[str, Any] = {"kind": "constant", "label": m.label}
    else:
        imp = m.named_steps["impute"].statistics_.tolist()
        clf = m.named_steps["clf"]
        spec = {"impute": imp, "classes": [str(c) for c in clf.classes_]}
        if name == "logistic":
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
    mine = predict_json(spec, x)
    theirs = m.predict(x)
    if not np.array_equal(mine, np.asarray(theirs, dtype=object)):
        raise RuntimeError(f"the JSON form of {name} does not reproduce "
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


def predict_json(spec: dict[str, Any], x: np.ndarray) -> np.ndarray:
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

