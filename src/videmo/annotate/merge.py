"""Observer events joined to the per-frame table by time, and their agreement with the model.

Pure functions on tables (no file but :func:`read_annotations`), so ``videmo report`` can mark
events on timelines and report agreement in seconds.

**Join** (:func:`join_frames`): an event of clip C at media time ``media_ms`` is joined to the
sampled frame of C whose ``time_s`` is nearest to ``media_ms / 1000`` (on an exact tie, the
earlier frame). It is *matched* when that frame lies within the tolerance: by default half the
clip's sampling interval (the median gap between its sampled frames' times), so every media time
between two sampled frames goes to one of them and none is matched twice over a gap; a clip with
one sampled frame has no interval, and its events match only with an explicit ``tolerance_s``.
``media_ms`` is the browser's playback position; ``time_s`` counts from the video stream's first
frame, so the two may differ by a container's start offset (about 30-40 ms in the sample FLVs),
small beside the default tolerance (333 ms at every 20th frame of 30 fps).

**Predicted emotion**: the top of the seven emotions of the frame's face row; with
``faces.select: all`` the largest face (box area) of the frame; NA when the frame has no face.

**Agreement** (:func:`agreement`): over events whose button is one of the seven emotions and
that are matched to a frame with a face, the share whose emotion equals the predicted one.
Other buttons (laughing, applause, ...) stay in the joined table but are not compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from videmo import schema

S = schema
EMOTIONS = list(S.EMOTIONS)
# columns of agreement(): events compared and how many agreed
EVENTS, WITH_FACE, AGREEMENT = "emotion_events", "with_face", "agreement"
AGREEMENT_COLUMNS = (EVENTS, S.MATCHED, WITH_FACE, S.AGREE, AGREEMENT)
JOINED_COLUMNS = (*S.ANNOTATION_COLUMNS, S.FRAME_INDEX, S.TIME_S, S.FRAME_DT_S, S.TOLERANCE_S,
                  S.MATCHED, S.N_FACES, S.PREDICTED_EMOTION, S.AGREE)


class AnnotationsError(ValueError):
    """An annotations table or file lacks a column or holds a bad value (named in the message)."""


def read_annotations(path: str | Path) -> pd.DataFrame:
    """RUN/annotations.csv as a table with typed columns (media_ms int, times as UTC)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={S.OBSERVER: "string", S.CLIP_ID: "string",
                                      S.BUTTON: "string"}, keep_default_na=False)
    except FileNotFoundError:
        raise AnnotationsError(f"no annotations file: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise AnnotationsError(f"{path}: not an annotations CSV: {e}") from None
    return check_annotations(df, str(path))


def check_annotations(df: pd.DataFrame, where: str = "annotations") -> pd.DataFrame:
    """The table with checked columns; an AnnotationsError names a missing column or bad value."""
    missing = [c for c in (S.OBSERVER, S.CLIP_ID, S.BUTTON, S.MEDIA_MS) if c not in df.columns]
    if missing:
        raise AnnotationsError(f"{where}: missing column(s) {', '.join(missing)} (expected "
                               f"{', '.join(S.ANNOTATION_COLUMNS)})")
    out = df.copy()
    media = pd.to_numeric(out[S.MEDIA_MS], errors="coerce")
    bad = media.isna() | (media < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise AnnotationsError(f"{where}: row {row + 1}: {S.MEDIA_MS} "
                               f"{df[S.MEDIA_MS].iloc[row]} is not a time in ms >= 0")
    out[S.MEDIA_MS] = media.astype("int64")
    for col in (S.WALL_TIME, S.RECEIVED_AT):
        if col in out.columns:
            out[col] = pd.to_datetime(out[col], utc=True, errors="coerce", format="ISO8601")
    return out


def sampling_intervals(frames: pd.DataFrame) -> pd.Series:
    """Median gap (seconds) between a clip's sampled frame times, by clip id; NaN for 1 frame."""
    times = frames[[S.CLIP_ID, S.TIME_S]].drop_duplicates().sort_values([S.CLIP_ID, S.TIME_S])
    gaps = times.groupby(S.CLIP_ID, sort=True)[S.TIME_S].diff()
    return gaps.groupby(times[S.CLIP_ID]).median().rename("interval_s")


def frame_predictions(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per sampled frame: clip, frame index, time, faces, predicted emotion (NA: none)."""
    df = frames.copy()
    has_face = df[S.FACE_INDEX] >= 0
    df["_area"] = np.where(has_face, df[S.BOX_W].fillna(0) * df[S.BOX_H].fillna(0), -1.0)
    df = df.sort_values([S.CLIP_ID, S.FRAME_INDEX, "_area"], ascending=[True, True, False],
                        kind="stable")
    df = df.drop_duplicates([S.CLIP_ID, S.FRAME_INDEX], keep="first")
    probs = df[EMOTIONS].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        ok = (df[S.FACE_INDEX] >= 0).to_numpy() & np.isfinite(probs).all(axis=1)
    top = np.asarray(EMOTIONS, dtype=object)[np.nan_to_num(probs, nan=-1).argmax(axis=1)]
    predicted = pd.Series(np.where(ok, top, None), index=df.index, dtype="string")
    return pd.DataFrame({S.CLIP_ID: df[S.CLIP_ID].to_numpy(),
                         S.FRAME_INDEX: df[S.FRAME_INDEX].to_numpy(),
                         S.TIME_S: df[S.TIME_S].to_numpy(dtype=float),
                         S.N_FACES: df[S.N_FACES].to_numpy(),
                         S.PREDICTED_EMOTION: predicted.to_numpy()})


def join_frames(annotations: pd.DataFrame, frames: pd.DataFrame,
                tolerance_s: float | None = None) -> pd.DataFrame:
    """Each event with the nearest sampled frame of its clip (columns :data:`JOINED_COLUMNS`).

    ``tolerance_s``: the largest distance between the event and its frame (seconds); None: half
    of each clip's sampling interval (see the module doc). Events of clips absent from ``frames``
    or farther than the tolerance keep their row with ``matched`` False and NA frame columns.
    Rows keep the annotations' order.
    """
    if tolerance_s is not None and not tolerance_s >= 0:
        raise ValueError(f"tolerance_s must be a number >= 0 or None, got {tolerance_s!r}")
    ann = check_annotations(annotations).reset_index(drop=True)
    per_frame = frame_predictions(frames)
    intervals = sampling_intervals(frames)
    n = len(ann)
    frame_index = np.full(n, -1, dtype="int64")
    time_s = np.full(n, np.nan)
    dt_s = np.full(n, np.nan)
    tol = np.full(n, np.nan)
    n_faces = np.full(n, -1, dtype="int64")
    predicted = np.full(n, None, dtype=object)
    matched = np.zeros(n, dtype=bool)
    for clip_id, rows in ann.groupby(S.CLIP_ID, sort=False).groups.items():
        clip_frames = per_frame[per_frame[S.CLIP_ID] == clip_id].sort_values(S.TIME_S)
        if clip_frames.empty:
            continue
        limit = tolerance_s if tolerance_s is not None else intervals.get(clip_id, np.nan) / 2
        t = clip_frames[S.TIME_S].to_numpy()
        at = ann.loc[rows, S.MEDIA_MS].to_numpy(dtype=float) / 1000.0
        right = np.clip(np.searchsorted(t, at, side="left"), 0, len(t) - 1)
        left = np.clip(right - 1, 0, len(t) - 1)
        nearest = np.where(np.abs(t[left] - at) <= np.abs(t[right] - at), left, right)
        idx = np.asarray(rows)
        gap = t[nearest] - at
        ok = np.abs(gap) <= limit + 1e-9 if np.isfinite(limit) else np.zeros(len(idx), bool)
        tol[idx] = limit
        dt_s[idx] = gap
        matched[idx] = ok
        sel = idx[ok]
        hit = nearest[ok]
        frame_index[sel] = clip_frames[S.FRAME_INDEX].to_numpy()[hit]
        time_s[sel] = t[hit]
        n_faces[sel] = clip_frames[S.N_FACES].to_numpy()[hit]
        predicted[sel] = clip_frames[S.PREDICTED_EMOTION].to_numpy()[hit]
    out = ann.copy()
    for col, values in ((S.FRAME_INDEX, frame_index), (S.N_FACES, n_faces)):
        arr = pd.array(values, dtype="Int64")
        arr[~matched] = pd.NA
        out[col] = arr
    out[S.TIME_S] = time_s
    out[S.FRAME_DT_S] = dt_s
    out[S.TOLERANCE_S] = tol
    out[S.MATCHED] = matched
    out[S.PREDICTED_EMOTION] = pd.array([p if isinstance(p, str) else pd.NA for p in predicted],
                                        dtype="string")
    is_emotion = out[S.BUTTON].isin(EMOTIONS).to_numpy()
    comparable = is_emotion & matched & out[S.PREDICTED_EMOTION].notna().to_numpy()
    agree = pd.array([pd.NA] * n, dtype="boolean")
    agree[comparable] = (out[S.BUTTON].to_numpy()[comparable]
                         == out[S.PREDICTED_EMOTION].to_numpy()[comparable])
    out[S.AGREE] = agree
    return out[[c for c in JOINED_COLUMNS if c in out.columns]]


def agreement(joined: pd.DataFrame, by: str | Sequence[str] | None = S.CLIP_ID) -> pd.DataFrame:
    """Agreement of observers' emotion events with the predicted frame emotion.

    One row per group of ``by`` (clip id by default; ``[observer]``, ``[observer, clip_id]``...;
    None: one overall row). Columns: emotion_events (events with an emotion button), matched
    (of those, joined to a frame within tolerance), with_face (of those, the frame had a face),
    agree (of those, same emotion), agreement (agree / with_face; NaN when with_face is 0).
    Groups with no emotion event are left out.
    """
    em = joined[joined[S.BUTTON].isin(EMOTIONS)]
    counts = pd.DataFrame({
        EVENTS: 1,
        S.MATCHED: em[S.MATCHED].astype(int),
        WITH_FACE: em[S.AGREE].notna().astype(int),
        S.AGREE: em[S.AGREE].fillna(False).astype(int),
    }, index=em.index)
    if by is None:
        out = counts.sum().to_frame().T.astype("int64")
    else:
        keys = [by] if isinstance(by, str) else list(by)
        out = counts.groupby([em[k] for k in keys], sort=True).sum().reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        out[AGREEMENT] = np.where(out[WITH_FACE] > 0, out[S.AGREE] / out[WITH_FACE].where(
            out[WITH_FACE] > 0, 1), np.nan)
    return out


def confusion(joined: pd.DataFrame) -> pd.DataFrame:
    """Observer emotion (rows) x predicted emotion (columns), counts of comparable events."""
    comp = joined[joined[S.AGREE].notna()]
    table = pd.crosstab(pd.Categorical(comp[S.BUTTON], EMOTIONS),
                        pd.Categorical(comp[S.PREDICTED_EMOTION], EMOTIONS), dropna=False)
    table.index.name, table.columns.name = S.BUTTON, S.PREDICTED_EMOTION
    return table
