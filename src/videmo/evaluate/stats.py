"""Statistics shared by the report's metrics and ``videmo learn``: percentile bootstrap
intervals of accuracy and macro-F1 over resampled clips (or whole groups of clips), and the
exact McNemar test of two classifiers on the same clips.

A resample is a row of *weights*: how often each clip was drawn. Accuracy and macro-F1 of a
resample (:func:`weighted_rates`) are those of the clips drawn, as scikit-learn computes them
over the three classes with ``zero_division=0`` (a class absent from a resample's golden and
predicted labels has F1 0 and still weighs a third)."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from videmo import schema

CLASSES: tuple[str, ...] = schema.CLASSES
CI_LEVEL = 0.95
# A cluster bootstrap (whole groups of clips resampled) needs this many groups; with fewer it
# has too few distinct resamples to mean anything, and clips are resampled instead.
MIN_BOOTSTRAP_GROUPS = 10


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
    see the module doc) of each row of weights ``w`` (reps x n)."""
    total = w.sum(axis=1)
    acc = w @ (y == p).astype(float) / np.where(total > 0, total, 1)
    f1 = np.zeros(len(w))
    for c in CLASSES:
        tp = w @ ((y == c) & (p == c)).astype(float)
        denom = w @ (y == c).astype(float) + w @ (p == c).astype(float)
        f1 += np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return acc, f1 / len(CLASSES)


def interval(values: np.ndarray) -> tuple[float, float]:
    """The central 95% (:data:`CI_LEVEL`) percentile interval of bootstrap values."""
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def mcnemar_p(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value of predictions ``a`` vs ``b`` on the same clips."""
    ra, rb = a == y, b == y
    only_a, only_b = int((ra & ~rb).sum()), int((rb & ~ra).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)

