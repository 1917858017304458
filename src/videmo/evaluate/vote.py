"""From per-frame scores to one label per clip: frame labels, votes, ties, intervals, balancing.

All functions take the per-frame table (schema.FRAME_COLUMNS) and return new tables; nothing
here touches a video, so a report with other options takes seconds.

Rules, as documented in the README ("How a clip gets its label"):

* **Frame label** (``report.frame_label``): ``top`` takes the top of the seven emotions and maps
  it (the study); ``sum`` sums the seven probabilities into the three classes and takes the top.
  Only rows with a face get a frame label. With ``faces.select: all`` every face row votes.
* **Clip vote** (``report.aggregate``): ``majority`` counts frame labels; ``mean`` averages the
  seven probabilities over the face rows and labels that mean like a frame; ``interval`` cuts the
  clip into intervals of ``report.interval_frames`` decoded frames, takes the majority in each
  interval, then the majority over intervals (each tie broken by the tie rule).
* **Ties** (``report.tie``): ``probability`` gives a tie to the tied class with the larger summed
  probability over the clip's face rows (then class order); ``neutral`` gives it to neutral when
  neutral is among the tied classes (else ``probability``); ``order`` to the first tied class in
  positive, negative, neutral order.
* **No face**: a clip without a single face row gets ``no_face``; it is kept and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from videmo import schema
from videmo.config import ConfigError
from videmo.evaluate import rules as rule_mod
from videmo.evaluate.aggregates import AGGREGATES  # the votes above and the rules, by name

COUNTS = schema.CLASS_COUNTS


def face_rows(frames: pd.DataFrame) -> pd.DataFrame:
    """The rows of scored faces: a face without scores (under a mesh frame model, a face the
    mesh could not read) counts like a frame without a face."""
    scored = frames[list(schema.EMOTIONS)].notna().all(axis=1)
    return frames[(frames[schema.FACE_INDEX] >= 0) & scored]


def main_track(tracks: np.ndarray, areas: np.ndarray) -> int:
    """A clip's main face track: the most rows, then the largest mean box area, then the
    lowest id; -1 when the clip has no face."""
    tracks = np.asarray(tracks)
    ids = sorted(set(tracks[tracks >= 0].tolist()))
    if not ids:
        return -1
    areas = np.asarray(areas, dtype=float)
    return min(ids, key=lambda t: (-int((tracks == t).sum()),
                                   -float(np.nanmean(areas[tracks == t])), t))


def main_track_rows(frames: pd.DataFrame) -> pd.DataFrame:
    """The rows of each clip's main face track (:func:`main_track`), plus the rows without a
    face; other faces are dropped."""
    if schema.TRACK not in frames.columns:
        raise ConfigError("config key 'report.track': main needs the per-frame table's track "
                          "column; this "
                         "run was extracted before face tracks: redo it with videmo extract "
                         "--force")
    keep = frames[schema.FACE_INDEX] < 0
    faces = frames[~keep]
    area = (faces[schema.BOX_W].astype(float) * faces[schema.BOX_H].astype(float))
    for _, part in faces.groupby(schema.CLIP_ID, sort=False):
        main = main_track(part[schema.TRACK].to_numpy(), area.loc[part.index].to_numpy())
        keep.loc[part.index] = part[schema.TRACK].to_numpy() == main
    return frames[keep]


def class_probabilities(frames: pd.DataFrame, mapping: dict[str, str]) -> pd.DataFrame:
    """The seven probabilities summed into the three classes (columns schema.CLASSES)."""
    out = pd.DataFrame(index=frames.index)
    for cls in schema.CLASSES:
        cols = [e for e in schema.EMOTIONS if mapping[e] == cls]
        out[cls] = frames[cols].sum(axis=1) if cols else 0.0
    return out


def frame_labels(frames: pd.DataFrame, mapping: dict[str, str], rule: str = "top") -> pd.Series:
    """Three-class label of every face row (rows without a face are dropped)."""
    rows = face_rows(frames)
    if rows.empty:
        return pd.Series([], dtype="string", index=rows.index)
    if rule == "top":
        probs = rows[list(schema.EMOTIONS)].to_numpy()
        top = np.asarray(schema.EMOTIONS)[probs.argmax(axis=1)]
        return pd.Series([mapping[e] for e in top], index=rows.index, dtype="string")
    if rule == "sum":
        probs = class_probabilities(rows, mapping).to_numpy()
        return pd.Series(np.asarray(schema.CLASSES)[probs.argmax(axis=1)], index=rows.index,
                         dtype="string")
    raise ValueError(f"unknown frame label rule {rule!r}")


def top_emotions(frames: pd.DataFrame) -> pd.Series:
    """The top of the seven emotions of every face row."""
    rows = face_rows(frames)
    probs = rows[list(schema.EMOTIONS)].to_numpy()
    return pd.Series(np.asarray(schema.EMOTIONS)[probs.argmax(axis=1)] if len(rows) else [],
                     index=rows.index, dtype="string")


def break_tie(tied: list[str], prob_sums: dict[str, float], rule: str) -> str:
    """One class out of several with the same vote count (see the module doc)."""
    ordered = [c for c in schema.CLASSES if c in tied]
    if len(ordered) == 1 or rule == "order":
        return ordered[0]
    if rule == "neutral" and schema.NEUTRAL in ordered:
        return schema.NEUTRAL
    if rule in ("probability", "neutral"):
        best = max(prob_sums.get(c, 0.0) for c in ordered)
        return next(c for c in ordered if prob_sums.get(c, 0.0) == best)
    raise ValueError(f"unknown tie rule {rule!r}")


def majority(counts: dict[str, int], prob_sums: dict[str, float], tie: str) -> str:
    top = max(counts.values()) if counts else 0
    if top == 0:
        return schema.NO_FACE
    return break_tie([c for c, n in counts.items() if n == top], prob_sums, tie)


def _label_of_mean(mean7: pd.Series, mapping: dict[str, str], rule: str, tie: str) -> str:
    if rule == "top":
        values = mean7[list(schema.EMOTIONS)].to_numpy(dtype=float)
        return mapping[schema.EMOTIONS[int(values.argmax())]]
    sums = {c: float(sum(mean7[e] for e in schema.EMOTIONS if mapping[e] == c))
            for c in schema.CLASSES}
    best = max(sums.values())
    return break_tie([c for c, v in sums.items() if v == best], sums, tie)


@dataclass(frozen=True)
class _ClipVote:
    """One clip's face rows as a vote aggregate reads them: its frame-label counts, summed and
    mean probabilities, and (for ``interval``) its rows, their three-class probabilities and
    interval numbers."""

    counts: dict[str, int]
    sums: dict[str, float]
    mean7: pd.Series
    rows: pd.DataFrame | None
    probs3: pd.DataFrame | None
    interval_of: pd.Series | None
    mapping: dict[str, str]
    frame_rule: str
    tie: str


def by_majority(c: _ClipVote) -> str:
    """``majority``: the commonest frame label."""
    return majority(c.counts, c.sums, c.tie)


def by_mean(c: _ClipVote) -> str:
    """``mean``: the label of the mean seven probabilities, as of a frame."""
    return _label_of_mean(c.mean7, c.mapping, c.frame_rule, c.tie)


def by_intervals(c: _ClipVote) -> str:
    """``interval``: the majority in each interval, then the majority over intervals."""
    assert c.rows is not None and c.probs3 is not None and c.interval_of is not None
    votes = {k: 0 for k in schema.CLASSES}
    for _, part in c.rows.groupby(c.interval_of):
        pc = {k: int((part["_label"] == k).sum()) for k in schema.CLASSES}
        ps = {k: float(c.probs3.loc[part.index, k].sum()) for k in schema.CLASSES}
        votes[majority(pc, ps, c.tie)] += 1
    return majority(votes, c.sums, c.tie)


def clip_votes(frames: pd.DataFrame, clip_ids: list[str], mapping: dict[str, str], *,
               frame_rule: str = "top", aggregate: str = "majority", tie: str = "probability",
               interval_frames: int = 1000, rules=None,
               groups: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per clip id: predict, the three frame-label counts (schema.CLASS_COUNTS), face
    rows, intervals, the mean of each of the seven probabilities over face rows, and which
    aggregate decided (an expressive-frame rule of :mod:`videmo.evaluate.rules` or its fallback).

    ``rules`` is ``report.rules`` (needed for the rule aggregates); ``groups`` maps clip id ->
    group for ``rules.baseline: group``."""
    labels = frame_labels(frames, mapping, frame_rule)
    rows = face_rows(frames).assign(_label=labels)
    probs3 = class_probabilities(rows, mapping)
    agg = AGGREGATES.get(aggregate)
    verdicts = {}
    if isinstance(agg, rule_mod.ClipRule):
        if rules is None:
            raise ValueError(f"aggregate {aggregate!r} needs report.rules")
        verdicts = rule_mod.rule_labels(rows, probs3, agg, rules, groups)
    # per-clip statistics in one pass each (a loop of .loc lookups took seconds per 1,000 clips)
    cid_col = rows[schema.CLIP_ID].astype(str)
    counts_by = rows.groupby([cid_col, "_label"]).size().unstack(fill_value=0) \
        .reindex(columns=list(schema.CLASSES), fill_value=0)
    sums_by = probs3.groupby(cid_col).sum()
    mean_by = rows.groupby(cid_col)[list(schema.EMOTIONS)].mean()
    interval_of = rows[schema.FRAME_INDEX] // interval_frames
    n_intervals_by = interval_of.groupby(cid_col).nunique()
    face_rows_by = cid_col.value_counts()
    out = []
    for cid in clip_ids:
        rec = {schema.CLIP_ID: cid}
        if cid not in face_rows_by.index:
            rec.update({schema.PREDICT: schema.NO_FACE, **dict.fromkeys(COUNTS.values(), 0),
                        schema.FACE_ROWS: 0, schema.INTERVALS: 0,
                        **dict.fromkeys(schema.MEAN_EMOTIONS, np.nan),
                        schema.DECIDED_BY: "", schema.PEAK_FRAMES: ""})
            out.append(rec)
            continue
        counts = {c: int(n) for c, n in counts_by.loc[cid].items()}
        sums = {c: float(v) for c, v in sums_by.loc[cid].items()}
        mean7 = mean_by.loc[cid]
        decided_by, peak_frames = aggregate, ""
        if isinstance(agg, rule_mod.ClipRule):
            verdict = verdicts[cid]
            peak_frames = " ".join(map(str, verdict.peak_frames))
            if verdict.label is not None:
                predict = verdict.label
            else:
                decided_by = rules.fallback
                predict = AGGREGATES.get(rules.fallback)(
                    _ClipVote(counts, sums, mean7, None, None, None, mapping, frame_rule, tie))
        else:
            mine = cid_col == cid if agg is by_intervals else None
            predict = agg(_ClipVote(counts, sums, mean7, None if mine is None else rows[mine],
                                    None if mine is None else probs3[mine],
                                    None if mine is None else interval_of[mine], mapping,
                                    frame_rule, tie))
        rec.update({schema.PREDICT: predict, **{COUNTS[c]: n for c, n in counts.items()},
                    schema.FACE_ROWS: int(face_rows_by[cid]),
                    schema.INTERVALS: int(n_intervals_by[cid]),
                    **{schema.MEAN_PREFIX + e: float(mean7[e]) for e in schema.EMOTIONS},
                    schema.DECIDED_BY: decided_by, schema.PEAK_FRAMES: peak_frames})
        out.append(rec)
    return pd.DataFrame(out)


def target_counts(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Split n clips by shares with the largest-remainder method (sums to n exactly)."""
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("balance shares must add up to more than 0")
    exact = {c: n * shares.get(c, 0.0) / total for c in schema.CLASSES}
    counts = {c: int(np.floor(v)) for c, v in exact.items()}
    left = n - sum(counts.values())
    for c in sorted(schema.CLASSES, key=lambda c: (-(exact[c] - counts[c]),
                                                   schema.CLASSES.index(c)))[:left]:
        counts[c] += 1
    return counts


def balance(votes: pd.DataFrame, shares: dict[str, float]) -> pd.Series:
    """Reassign clip labels by rank so predicted class proportions match ``shares``.

    Our reading of the study's "sorted the results of FER and then converted them into new class
    labels". Each clip with a face has a share per class (its frame-label count / face rows).
    Target counts per class come from ``shares`` (largest remainder). Then, greedily, the
    highest remaining (clip, class) share whose class still has room assigns that clip to that
    class (ties: class order, then clip id). Every clip is assigned exactly once; a class's
    clips are those that rank highest for it. ``no_face`` clips keep ``no_face``.
    """
    out = votes[schema.PREDICT].copy()
    has_face = votes[schema.FACE_ROWS] > 0
    sub = votes[has_face]
    if sub.empty:
        return out
    room = target_counts(len(sub), shares)
    counts = sub[[COUNTS[c] for c in schema.CLASSES]].to_numpy(float)
    shares_of = counts / sub[schema.FACE_ROWS].to_numpy(float)[:, None]
    positions = np.flatnonzero(has_face.to_numpy())  # row of each sub clip in votes
    pairs = sorted(
        ((-shares_of[i, j], j, str(sub[schema.CLIP_ID].iloc[i]), i)
         for i in range(len(sub)) for j in range(len(schema.CLASSES))),
    )
    done: set[int] = set()
    for _neg, j, _cid, i in pairs:
        cls = schema.CLASSES[j]
        if i in done or room[cls] == 0:
            continue
        out.iloc[positions[i]] = cls
        room[cls] -= 1
        done.add(i)
    return out
