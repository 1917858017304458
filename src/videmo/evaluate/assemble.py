"""Assemble report clips (segments, windows) from the per-recording frame table.

The per-frame table stays keyed by recording and frame, with each frame's exact timestamp; a
segment ``[start_s, end_s)`` of a recording is the recording's rows with ``start_s <= time_s <
end_s``, re-keyed to the segment's id. A frame inside two segments was analysed once and
appears in both; nothing here reads a video, so another segments file or another window length
re-labels a finished run in seconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from videmo import schema
from videmo.evaluate.metrics import group_of
from videmo.evaluate.segments import Segment, SegmentIssues, load_segments

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.store import RunDir

log = logging.getLogger(__name__)

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


# -------------------------------------------------------------- from a run's records
def clips_cut(cfg: Config) -> bool:
    """Whether the report's clips are cut from recordings (corpus.segments or window_s)."""
    return cfg.corpus.segments is not None or cfg.corpus.window_s is not None


SAMPLED_SPANS = schema.SAMPLED_SPANS


def record_duration(rec: Mapping) -> float | None:
    """A recording's length from its record: ``duration_s``, else frames decoded / fps."""
    value = rec.get(schema.DURATION_S)
    if value is not None and not pd.isna(value):
        return float(value)
    decoded, fps = rec.get(schema.FRAMES_DECODED), rec.get(schema.FPS)
    if decoded is not None and fps is not None and not pd.isna(decoded) and not pd.isna(fps) \
            and fps > 0:
        return float(decoded) / float(fps)
    return None


def sampled_spans(rec: Mapping | None, cfg: Config) -> list[tuple[float, float]] | None:
    """The times a done recording's extraction covered (None: all of it)."""
    if rec is not None and rec.get(SAMPLED_SPANS):
        return [(float(a), float(b)) for a, b in rec[SAMPLED_SPANS]]
    s = cfg.sampling
    if s.start_s == 0 and s.end_s is None:
        return None
    return [(s.start_s, s.end_s if s.end_s is not None else math.inf)]


def segment_view(run: RunDir, cfg: Config, states: Mapping[str, str], frames: pd.DataFrame
                 ) -> tuple[Assembled, SegmentIssues | None]:
    """The report's clips cut from the run's recordings (``states``: recording -> state),
    with the rows of the segments file that are not segments (None for windows)."""
    records = {str(r[schema.CLIP_ID]): r for r in run.records()}
    durations = {cid: record_duration(records[cid]) if cid in records else None
                 for cid in states}
    segments, issues = load_segments(cfg, list(states), durations)
    if issues is not None:
        for line in issues.lines():
            log.warning("segments %s: %s", issues.path, line)
    covered = {cid: sampled_spans(records.get(cid), cfg) for cid in states
               if states[cid] == schema.DONE}
    groups = {cid: group_of(cid, cfg.report.group_pattern) for cid in states}
    view = assemble(frames, segments, states, covered, groups)
    if view.unsampled:
        shown = ", ".join(s.segment_id for s in view.unsampled[:5])
        more = f" and {len(view.unsampled) - 5} more" if len(view.unsampled) > 5 else ""
        log.warning("%d segment(s) need times their recording's extraction never sampled "
                    "(%s%s): they count as not extracted; `videmo run` (or extract) on the "
                    "same run directory extracts only those times", len(view.unsampled), shown,
                    more)
    return view, issues


