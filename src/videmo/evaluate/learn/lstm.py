"""The ``lstm`` learner: a small LSTM over the frame sequence (:func:`clips.sequence`: each
row's family values, standardised with the training fold's mean and std, its time as a
fraction of the clip and a constant 1 so that no real row is all zeros), padded with zeros and
masked; clips with more than ``learn.max_frames`` face rows are subsampled evenly to that many,
so one-frame photos and long debate clips both work. Its settings are fixed by config
(``learn.lstm_units``, ``lstm_epochs``), not tuned. TensorFlow is imported only when it fits
or loads, with this process's thread budget. Saved as a ``.keras`` file loaded with Keras's
safe mode."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videmo.evaluate.learn.base import CLASSES, ClipLearner
from videmo.evaluate.learn.clips import Clips, sequence

if TYPE_CHECKING:
    from videmo.config import LearnConfig

LSTM_BATCH = 16  # clips per training step of the LSTM


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



class LstmEstimator:
    """``fit`` trains :func:`fit_lstm` with one fold's seed; ``predict`` uses the result."""

    def __init__(self, lc, seed: int):
        self.lc, self.seed = lc, seed
        self.model: LstmModel | None = None

    def fit(self, x: list[np.ndarray], y: np.ndarray) -> LstmEstimator:
        self.model = fit_lstm(x, y, self.lc, self.seed)
        return self

    def predict(self, x: list[np.ndarray]) -> np.ndarray:
        return self.model.predict(x)


class Lstm(ClipLearner):
    name = "lstm"
    tuned = False
    describes = "the frame sequence"

    def setup(self, cfg) -> None:
        from videmo.runtime import configure_threads, threads_for

        configure_threads(threads_for(cfg.run.jobs, cfg.run.threads, workers=1))

    def grid(self, lc) -> list[dict[str, Any]]:
        return [{"units": lc.lstm_units, "epochs": lc.lstm_epochs}]

    def inputs(self, clips: Clips, fs: tuple[str, ...], max_frames: int) -> list[np.ndarray]:
        return [sequence(clips, i, fs, max_frames) for i in range(len(clips))]

    def input_names(self, clips: Clips, fs: tuple[str, ...]) -> list[str]:
        return [c for n in fs for c in clips.names[n]] + ["time_fraction"]

    def estimator(self, params, lc, seed, fold) -> LstmEstimator:
        return LstmEstimator(lc, seed + fold)  # each outer fold its own seeded start

    def export(self, model: LstmEstimator | LstmModel, x, model_dir: Path) -> dict[str, Any]:
        m = model.model if isinstance(model, LstmEstimator) else model
        path = model_dir / "model.keras"
        with warnings.catch_warnings():  # Keras 3.15's own use of numpy 2's __array__
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    message="__array__ implementation doesn't accept a copy")
            m.model.save(path)
        return {"lstm": {"mean": m.mean.tolist(), "std": m.std.tolist(),
                         "max_frames": m.max_frames},
                "files": {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}}

    def load(self, meta: dict[str, Any], model_dir: Path) -> tuple[LstmModel, int]:
        tf = _tensorflow()
        model = tf.keras.models.load_model(model_dir / "model.keras", compile=False,
                                           safe_mode=True)
        spec = meta["lstm"]
        return (LstmModel(model, np.asarray(spec["mean"]), np.asarray(spec["std"]),
                          int(spec["max_frames"])), int(spec["max_frames"]))


LSTM = Lstm()  # an entry of base.LEARNERS
