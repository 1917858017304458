"""Expressive-frame rules: label a clip from its most expressive frames, not from all of them.

Most frames of an emotional clip are lead-in: a face at rest before the expression peaks, and
the majority vote of :mod:`videmo.evaluate.vote` labels such clips neutral. These rules look for the
frames where a non-neutral class stands out and label the clip from them; when nothing stands
out they *abstain*, and the clip keeps its fallback label (the majority vote by default, or the
mean, ``report.rules.fallback``). That is what keeps truly neutral clips neutral and still
photos (a one-frame clip: nothing can rise) at their frame label.

They need only the per-frame table, know nothing of where a peak is in a clip, and work on any
run (``videmo report RUN --set report.aggregate=expressive``). Every rule works on the three
class probabilities of each face row (the seven summed by ``report.mapping``):

* ``expressive``: the person's *baseline* is the mean of their least expressive rows (the
  ``baseline_fraction`` of rows with the highest neutral probability, within the clip or, with
  ``baseline: group``, within all clips of the person's group). A row's *rise* for a
  non-neutral class is its probability minus the baseline's. The clip's peak rows are the
  ``top_fraction`` of rows (at least ``min_frames``) with the largest rise; the class with the
  largest mean rise over them wins when that mean rise is at least ``min_rise`` and, over the
  peak rows, the class is more probable than neutral (and than the other non-neutral class).
* ``confident``: the peak rows are those with the most probable non-neutral class, no
  baseline; the class wins when its mean probability over them is at least
  ``min_confidence`` and above neutral's.
* ``peak``: the peak-intensity segment: of all runs of ``window_frames`` consecutive face
  rows (in frame order), the one with the largest mean rise over the baseline; judged like
  ``expressive``.

The defaults were chosen from what the numbers mean, not fitted to a corpus: a fifth of the
rows is a peak for onset-to-peak clips and still several rows for short ones; a quarter of the
rows is a resting face in most clips; a rise of 0.1 is ten points of probability; a
non-neutral class must beat neutral at the peak.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from videmo import schema

NON_NEUTRAL: tuple[str, ...] = tuple(c for c in schema.CLASSES if c != schema.NEUTRAL)


@dataclass(frozen=True)
class Verdict:
    """What a rule says about one clip: a class, or None (abstain: use the fallback)."""

    label: str | None
    strength: float  # the winning class's mean rise (or probability, for confident)
    peak_frames: tuple[int, ...]  # frame indices of the rows the rule looked at


def _k(n: int, top_fraction: float, min_frames: int) -> int:
    return max(1, min(n, max(min_frames, math.ceil(top_fraction * n))))


_NEUTRAL = schema.CLASSES.index(schema.NEUTRAL)
_NN = [schema.CLASSES.index(c) for c in NON_NEUTRAL]


def baselines(p: np.ndarray, units: np.ndarray, fraction: float) -> dict[str, np.ndarray]:
    """Mean three-class probabilities of each unit's least expressive rows.

    ``p`` has one row per face row (columns in schema.CLASSES order); ``units`` names each
    row's unit (its clip, or its person's group). The least expressive rows are the
    ``fraction`` (at least one row) with the highest neutral probability; ties keep row order.
    """
    out = {}
    for unit in dict.fromkeys(units.tolist()):
        part = p[units == unit]
        n = max(1, math.ceil(fraction * len(part)))
        out[unit] = part[np.argsort(-part[:, _NEUTRAL], kind="stable")[:n]].mean(axis=0)
    return out


def _judge(p: np.ndarray, rise: np.ndarray, rows: np.ndarray, frames: np.ndarray,
           min_rise: float) -> Verdict:
    """The class with the largest mean rise over ``rows`` wins if it rose enough and beats
    neutral and the other non-neutral class in mean probability there."""
    mean_rise = rise[rows].mean(axis=0)
    mean_p = p[rows].mean(axis=0)
    j = int(np.argmax(mean_rise))  # first in class order on a tie
    c = _NN[j]
    beats = all(mean_p[c] > mean_p[o] for o in range(len(schema.CLASSES)) if o != c)
    label = NON_NEUTRAL[j] if mean_rise[j] >= min_rise and beats else None
    return Verdict(label, float(mean_rise[j]), tuple(int(f) for f in frames[rows]))


def expressive(p: np.ndarray, frames: np.ndarray, baseline: np.ndarray, *,
               top_fraction: float, min_frames: int, min_rise: float) -> Verdict:
    """The ``expressive`` rule on one clip's rows in frame order (see the module doc)."""
    rise = p[:, _NN] - baseline[_NN]
    k = _k(len(p), top_fraction, min_frames)
    rows = np.sort(np.argsort(-rise.max(axis=1), kind="stable")[:k])
    return _judge(p, rise, rows, frames, min_rise)


def confident(p: np.ndarray, frames: np.ndarray, *, top_fraction: float, min_frames: int,
              min_confidence: float) -> Verdict:
    """The ``confident`` rule on one clip's rows in frame order (see the module doc)."""
    nn = p[:, _NN]
    k = _k(len(p), top_fraction, min_frames)
    rows = np.sort(np.argsort(-nn.max(axis=1), kind="stable")[:k])
    j = int(np.argmax(nn[rows].mean(axis=0)))
    c = _NN[j]
    mean_p = p[rows].mean(axis=0)
    beats = all(mean_p[c] > mean_p[o] for o in range(len(schema.CLASSES)) if o != c)
    label = NON_NEUTRAL[j] if mean_p[c] >= min_confidence and beats else None
    return Verdict(label, float(mean_p[c]), tuple(int(f) for f in frames[rows]))


def peak(p: np.ndarray, frames: np.ndarray, baseline: np.ndarray, *, window_frames: int,
         min_rise: float) -> Verdict:
    """The ``peak`` rule on one clip's rows in frame order (see the module doc)."""
    rise = p[:, _NN] - baseline[_NN]
    w = max(1, min(window_frames, len(p)))
    kernel = np.ones(w) / w
    # mean rise of each class over every window of w rows; the best window by its top class
    windows = np.stack([np.convolve(rise[:, j], kernel, mode="valid")
                        for j in range(rise.shape[1])], axis=1)
    start = int(np.argmax(windows.max(axis=1)))  # the earliest of equally strong windows
    return _judge(p, rise, np.arange(start, start + w), frames, min_rise)


def rule_labels(rows: pd.DataFrame, p3: pd.DataFrame, rule: str | ClipRule, params,
                groups: dict[str, str] | None = None) -> dict[str, Verdict]:
    """A verdict per clip with face rows.

    ``rows`` are the face rows of the per-frame table, ``p3`` their three-class probabilities
    (same index); ``params`` is ``report.rules`` (:class:`videmo.config.RulesConfig`);
    ``groups`` maps clip id -> group, needed for ``baseline: group``.
    """
    judge = RULES.get(rule) if isinstance(rule, str) else rule
    if judge is None:
        raise ValueError(f"unknown rule {rule!r}; known: {', '.join(RULES)}")
    if rows.empty:
        return {}
    clip = rows[schema.CLIP_ID].astype(str).to_numpy()
    frame = rows[schema.FRAME_INDEX].to_numpy()
    order = np.lexsort((frame, clip))
    clip, frame = clip[order], frame[order]
    p = p3[list(schema.CLASSES)].to_numpy(float)[order]
    if params.baseline == "group":
        if groups is None:
            raise ValueError("report.rules.baseline: group needs each clip's group")
        units = np.asarray([groups.get(c, c) for c in clip], dtype=object)
    else:
        units = clip
    base = baselines(p, units, params.baseline_fraction) if judge.uses_baseline else {}
    ids, starts = np.unique(clip, return_index=True)
    ends = np.append(starts[1:], len(clip))
    return {str(cid): judge(p[a:b], frame[a:b], base.get(units[a]), params)
            for cid, a, b in zip(ids, starts, ends, strict=True)}


@dataclass(frozen=True)
class ClipRule:
    """An expressive-frame rule as ``report.aggregate`` names it: ``judge(p, frames,
    baseline, params)`` gives one clip's :class:`Verdict` (``baseline``: the person's resting
    three-class probabilities, None when ``uses_baseline`` is false)."""

    name: str
    judge: Callable[..., Verdict]
    uses_baseline: bool = True

    def __call__(self, p: np.ndarray, frames: np.ndarray, baseline: np.ndarray | None,
                 params) -> Verdict:
        return self.judge(p, frames, baseline, params)


# the rules; videmo.evaluate.aggregates.AGGREGATES (report.aggregate) names them beside the votes
EXPRESSIVE = ClipRule("expressive", lambda p, f, b, r: expressive(
    p, f, b, top_fraction=r.top_fraction, min_frames=r.min_frames, min_rise=r.min_rise))
CONFIDENT = ClipRule("confident", lambda p, f, b, r: confident(
    p, f, top_fraction=r.top_fraction, min_frames=r.min_frames,
    min_confidence=r.min_confidence), uses_baseline=False)
PEAK = ClipRule("peak", lambda p, f, b, r: peak(
    p, f, b, window_frames=r.window_frames, min_rise=r.min_rise))
RULES: dict[str, ClipRule] = {r.name: r for r in (EXPRESSIVE, CONFIDENT, PEAK)}
