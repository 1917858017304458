"""The frame classifiers compared by ``videmo train``, their training and their metrics.

Keras networks (all seeded by ``keras.utils.set_random_seed``, trained with Adam on
cross-entropy, early-stopped on the selection split's accuracy with the best epoch's weights
kept; each standardises its input with a Normalization layer adapted on the training images):

- ``blend_lstm``: the published system: the selected blendshapes as a sequence of k steps of
  one value, 4 stacked LSTM layers, a softmax.
- ``blend_mlp``: the same features through two dense layers with dropout.
- ``land_cnn_procrustes`` / ``land_cnn_minmax``: a 1D-CNN over the 478 landmarks (3 channels:
  x, y, z) after pose normalisation, or after min-max scaling only (the published ablation).

And scikit-learn's ``blend_gboost`` (HistGradientBoostingClassifier, early-stopped on the same
selection split by picking its number of iterations there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, recall_score

from videmo import schema
from videmo.train import TRAIN_MODELS, models_reading

MODELS: tuple[str, ...] = models_reading("blendshapes", "landmarks")  # on the face mesh
KIND = {name: TRAIN_MODELS.get(name) for name in MODELS}
LSTM_UNITS = 64
NO_FACE = schema.NO_FACE


def card_for(name: str, blend_names: list[str]) -> dict[str, Any]:
    """The feature part of a model's card (what :func:`frame_model.features` reads)."""
    if KIND[name] == "blendshapes":
        return {"kind": "blendshapes", "features": list(blend_names),
                "sequence": name == "blend_lstm"}
    return {"kind": "landmarks", "normalization": name.rsplit("_", 1)[1]}


def build_network(name: str, x_train: np.ndarray, seed: int):
    """A compiled Keras network for ``name``, its Normalization adapted on ``x_train``."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    n_classes = len(schema.EMOTIONS)
    inputs = keras.Input(x_train.shape[1:])
    if name == "blend_lstm":
        norm = layers.Normalization(axis=1)
        norm.adapt(x_train)
        h = norm(inputs)
        for _ in range(3):
            h = layers.LSTM(LSTM_UNITS, return_sequences=True)(h)
        h = layers.LSTM(LSTM_UNITS)(h)
        h = layers.Dropout(0.2)(h)
    elif name == "blend_mlp":
        norm = layers.Normalization(axis=-1)
        norm.adapt(x_train)
        h = norm(inputs)
        for units in (256, 128):
            h = layers.Dense(units, activation="relu")(h)
            h = layers.Dropout(0.3)(h)
    elif name.startswith("land_cnn"):
        norm = layers.Normalization(axis=(1, 2))
        norm.adapt(x_train)
        h = norm(inputs)
        for filters, kernel in ((32, 5), (64, 3), (64, 3)):
            h = layers.Conv1D(filters, kernel, padding="same", activation="relu")(h)
            h = layers.MaxPooling1D(2)(h)
        h = layers.GlobalAveragePooling1D()(h)
        h = layers.Dense(64, activation="relu")(h)
        h = layers.Dropout(0.3)(h)
    else:
        raise ValueError(f"not a Keras model: {name!r}")
    outputs = layers.Dense(n_classes, activation="softmax")(h)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@dataclass
class Fitted:
    """A trained model: ``predict(x) -> (n, 7)``; ``network`` the Keras model (None for
    gradient boosting); ``epochs``: epochs (or boosting iterations) kept; ``history``."""

    name: str
    network: Any
    estimator: Any
    epochs: int
    history: dict[str, list[float]]

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, len(schema.EMOTIONS)), np.float32)
        if self.network is not None:
            return np.asarray(self.network.predict(x, batch_size=1024, verbose=0), np.float32)
        return _full_proba(self.estimator, x)


def _full_proba(estimator, x: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), len(schema.EMOTIONS)), np.float32)
    out[:, estimator.classes_] = estimator.predict_proba(x)
    return out


def fit(name: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
        y_val: np.ndarray, seed: int, epochs: int, batch_size: int, patience: int,
        progress: bool = True) -> Fitted:
    """Train ``name`` on (x_train, y_train), early-stopped on (x_val, y_val)."""
    if name == "blend_gboost":
        return _fit_gboost(x_train, y_train, x_val, y_val, seed)
    import keras

    network = build_network(name, x_train, seed)
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                         restore_best_weights=True, mode="max")
    hist = network.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                       batch_size=batch_size, shuffle=True, callbacks=[stop],
                       verbose=2 if progress else 0)
    acc = hist.history["val_accuracy"]
    return Fitted(name, network, None, int(np.argmax(acc)) + 1,
                  {k: [float(v) for v in vs] for k, vs in hist.history.items()})


def _fit_gboost(x_train, y_train, x_val, y_val, seed: int) -> Fitted:
    from sklearn.ensemble import HistGradientBoostingClassifier

    est = HistGradientBoostingClassifier(max_iter=400, learning_rate=0.1, max_leaf_nodes=31,
                                         early_stopping=False, random_state=seed)
    est.fit(x_train, y_train)
    # choose the number of iterations on the selection split (its early stopping)
    accs = [float(np.mean(np.argmax(p, 1) == y_val)) for p in est.staged_predict_proba(x_val)]
    best = int(np.argmax(accs)) + 1
    if best < est.n_iter_:
        est = HistGradientBoostingClassifier(max_iter=best, learning_rate=0.1, max_leaf_nodes=31,
                                             early_stopping=False, random_state=seed)
        est.fit(x_train, y_train)
    return Fitted("blend_gboost", None, est, best, {"val_accuracy": accs})


def evaluate(proba: np.ndarray, ok: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class recall and confusion, 7 classes and 3 (study mapping).

    ``proba`` (n, 7) for all n images; images without a mesh (``ok`` False) are predicted
    ``no_face``: wrong, in the denominators, and a column of their own in the confusion."""
    out: dict[str, Any] = {"n": int(len(labels)), "no_face": int((~ok).sum())}
    emotions = list(schema.EMOTIONS)
    pred7 = np.array([emotions[i] if k else NO_FACE
                      for i, k in zip(np.argmax(proba, 1), ok, strict=True)], dtype=object)
    true7 = np.array([emotions[i] for i in labels], dtype=object)
    classes = list(schema.CLASSES)
    mapping = schema.STUDY_MAPPING
    proba3 = np.stack([proba[:, [emotions.index(e) for e in emotions if mapping[e] == c]]
                       .sum(1) for c in classes], 1)
    pred3 = np.array([classes[i] if k else NO_FACE
                      for i, k in zip(np.argmax(proba3, 1), ok, strict=True)], dtype=object)
    true3 = np.array([mapping[e] for e in true7], dtype=object)
    for tag, true, pred, names in (("7", true7, pred7, emotions), ("3", true3, pred3, classes)):
        out[f"accuracy_{tag}"] = float(np.mean(true == pred))
        out[f"macro_f1_{tag}"] = float(f1_score(true, pred, labels=names, average="macro",
                                                zero_division=0))
        out[f"recall_{tag}"] = dict(zip(names, (float(r) for r in recall_score(
            true, pred, labels=names, average=None, zero_division=0)), strict=True))
        out[f"confusion_{tag}"] = confusion_matrix(true, pred, labels=[*names, NO_FACE]
                                                   )[:len(names)].tolist()
    return out
