"""Assemble report clips (segments, windows) from the per-recording frame table.

The per-frame table stays keyed by recording and frame, with each frame's exact timestamp; a
segment ``[start_s, end_s)`` of a recording is the recording's rows with ``start_s <= time_s <
end_s``, re-keyed to the segment's id. A frame inside two segments was analysed once and
appears in both; nothing here reads a video, so another segments file or another window length
re-labels a finished run in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from videmo import schema
from videmo.evaluate.segments import Segment

# clips.csv's columns for a report whose clips are cut from recordings
RECORDING, START_S, END_S = "recording", "start_s", "end_s"
SPAN_COLUMNS = (RECORDING, START_S, END_S)


@dataclass
class Assembled:
    """The report's view of a run whose clips are segments: a frame table keyed by segment id,
    each segment's state, golden label and group, and the segments whose times were never
    sampled (their recording is done, but not over the whole segment)."""

    frames: pd.DataFrame
    states: dict[str, str]
    golden: dict[str, str]
    groups: dict[str, str]
    spans: pd.DataFrame  # segment id -> recording, start_s, end_s (index: segment id)
    unsampled: list[Segment] = field(default_factory=list)


def covers(spans: Sequence[tuple[float, float]] | None, start: float, end: float) -> bool:
    """Whether ``[start, end)`` lies inside the union of ``spans`` (None: all time)."""
    if spans is None:
        return True
    at = start
    for a, b in sorted(spans):
        if a > at + 1e-9:
            return False
        at = max(at, b)
        if at >= end - 1e-9:
            return True
    return at >= end - 1e-9


def segment_rows(frames: pd.DataFrame, segments: Sequence[Segment]) -> pd.DataFrame:
    """The rows of every segment (``start_s <= time_s < end_s`` of its recording), with
    ``clip_id`` set to the segment's id, ordered by segment then frame and face."""
    if not segments or frames.empty:
        return frames.iloc[0:0].copy()
    parts: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    by_rec = {rec: idx for rec, idx in frames.groupby(schema.CLIP_ID, sort=False).indices.items()}
    times = frames[schema.TIME_S].to_numpy(dtype=float)
    order_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for seg in segments:
        idx = by_rec.get(seg.recording)
        if idx is None:
            continue
        if seg.recording not in order_cache:
            order = idx[np.argsort(times[idx], kind="stable")]
            order_cache[seg.recording] = (order, times[order])
        order, t = order_cache[seg.recording]
        lo = np.searchsorted(t, seg.start_s - 1e-9, side="left")
        hi = np.searchsorted(t, seg.end_s - 1e-9, side="left")
        if hi > lo:
            parts.append(order[lo:hi])
            ids.append(np.full(hi - lo, seg.segment_id, dtype=object))
    if not parts:
        return frames.iloc[0:0].copy()
    out = frames.iloc[np.concatenate(parts)].copy()
    out[schema.CLIP_ID] = np.concatenate(ids)
    return out.sort_values([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX],
                           kind="stable").reset_index(drop=True)


def assemble(frames: pd.DataFrame, segments: Sequence[Segment], states: Mapping[str, str],
             covered: Mapping[str, Sequence[tuple[float, float]] | None] | None = None,
             group_of_recording: Mapping[str, str] | None = None) -> Assembled:
    """The report's clips are ``segments``. A segment's state is its recording's
    (``states``: recording -> DONE / FAILED / NOT_EXTRACTED); a segment of a done recording
    whose times the recording's extraction did not cover (``covered``: recording -> sampled
    spans, None or absent: all of it) is not extracted. Its group is its person, else its
    recording's group (``group_of_recording``, else the recording id)."""
    covered = covered or {}
    group_of_recording = group_of_recording or {}
    seg_states: dict[str, str] = {}
    unsampled: list[Segment] = []
    for seg in segments:
        state = states.get(seg.recording, schema.NOT_EXTRACTED)
        if state == schema.DONE and not covers(covered.get(seg.recording), seg.start_s,
                                               seg.end_s):
            state = schema.NOT_EXTRACTED
            unsampled.append(seg)
        seg_states[seg.segment_id] = state
    done = [s for s in segments if seg_states[s.segment_id] == schema.DONE]
    golden = {s.segment_id: s.label for s in segments if s.label is not None}
    groups = {s.segment_id: s.person or group_of_recording.get(s.recording, s.recording)
              for s in segments}
    spans = pd.DataFrame({RECORDING: [s.recording for s in segments],
                          START_S: [round(s.start_s, 3) for s in segments],
                          END_S: [round(s.end_s, 3) for s in segments]},
                         index=pd.Index([s.segment_id for s in segments], name=schema.CLIP_ID))
    return Assembled(segment_rows(frames, done), seg_states, golden, groups, spans, unsampled)
