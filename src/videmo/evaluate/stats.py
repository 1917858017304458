"""Statistics shared by the report's metrics, ``videmo learn`` and ``videmo compare``:
percentile bootstrap intervals of accuracy and macro-F1 over resampled clips (or whole groups of
clips), of a paired difference in accuracy, and the exact McNemar test of two classifiers on
the same clips.

A resample is a row of *weights*: how often each clip was drawn. Accuracy and macro-F1 of a
resample (:func:`weighted_rates`) are those of the clips drawn, as scikit-learn computes them
over the three classes with ``zero_division=0`` (a class absent from a resample's golden and
predicted labels has F1 0 and still weighs a third)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from videmo import schema

CLASSES: tuple[str, ...] = schema.CLASSES
CI_LEVEL = 0.95
# The report's intervals (metrics.json): clips resampled this many times by
# numpy's default_rng(BOOTSTRAP_SEED), so that a report repeats its intervals.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CI_KEYS: tuple[str, ...] = ("accuracy_ci_low", "accuracy_ci_high", "macro_f1_ci_low",
                            "macro_f1_ci_high")
_DRAW_CELLS = 4_000_000  # resample indices held at once (memory bound for large corpora)
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


def interval(values: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values."""
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def index_weights(draws: np.ndarray, n: int) -> np.ndarray:
    """(reps x n) resample counts from (reps x k) drawn clip indices."""
    reps = len(draws)
    flat = (draws + n * np.arange(reps)[:, None]).ravel()
    return np.bincount(flat, minlength=reps * n).reshape(reps, n).astype(float)


def bootstrap_intervals(predicted: list[str], golden: list[str],
                        resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                        level: float = CI_LEVEL) -> dict[str, float | None]:
    """The report's percentile bootstrap intervals of accuracy and macro-F1 (keys
    :data:`CI_KEYS`) over labelled clips: ``predicted[i]`` a class or a non-class value (no
    face, failed, not extracted: wrong, and no class's prediction), ``golden[i]`` a class.
    Clips are drawn with replacement (``default_rng(seed).integers``, in chunks that bound
    memory); no clips: every key None."""
    if not golden:
        return dict.fromkeys(CI_KEYS)
    y = np.asarray(golden, dtype=object)
    p = np.asarray(predicted, dtype=object)
    acc, f1 = np.empty(resamples), np.empty(resamples)
    for rows, w in resampled(len(y), resamples, seed):
        acc[rows], f1[rows] = weighted_rates(y, p, w)
    (a_lo, a_hi), (f_lo, f_hi) = interval(acc, level), interval(f1, level)
    return dict(zip(CI_KEYS, (a_lo, a_hi, f_lo, f_hi), strict=True))


def resampled(n: int, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED) -> Iterator[tuple[slice, np.ndarray]]:
    """The report's resamples of ``n`` clips, in chunks that bound memory: (which resamples,
    their (k x n) weights), the clips drawn with replacement by
    ``default_rng(seed).integers(0, n, (resamples, n))``, row by row."""
    rng = np.random.default_rng(seed)
    step = max(1, _DRAW_CELLS // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        yield slice(start, stop), index_weights(rng.integers(0, n, (stop - start, n)), n)


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                      level: float = CI_LEVEL) -> tuple[float, float, float]:
    """Accuracy of ``a`` minus accuracy of ``b`` on the same clips (``correct_*[i]``: was
    clip i right), and its percentile bootstrap interval: clips are drawn with replacement
    (:func:`resampled`), each bringing both its verdicts, so the interval holds what the two
    share (a clip hard for both moves both)."""
    d = np.asarray(correct_a, dtype=float) - np.asarray(correct_b, dtype=float)
    if not len(d):
        raise ValueError("a paired difference needs at least one clip")
    diffs = np.empty(resamples)
    for rows, w in resampled(len(d), resamples, seed):
        diffs[rows] = w @ d / len(d)
    lo, hi = interval(diffs, level)
    return float(d.mean()), lo, hi


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value from two verdicts per clip (right or wrong): a binomial
    test of the clips only ``a`` got right among those exactly one of them got right."""
    ra, rb = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int((ra & ~rb).sum()), int((rb & ~ra).sum())
    if only_a + only_b == 0:
        return 1.0
    from scipy.stats import binomtest  # SciPy only where a test is run

    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def mcnemar_p(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value of predictions ``a`` vs ``b`` on the same clips."""
    return mcnemar_exact(a == y, b == y)

