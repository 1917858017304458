"""The report of a run whose clips are segments or windows of its recordings.

Reads only the run's records and per-frame table (never a video): recordings' lengths come from
their records (``duration_s``), the times each recording's extraction sampled from its record
(``sampled_spans`` for a recording extracted in chunks, else ``sampling.start_s`` to
``sampling.end_s``), and the segments are cut by :mod:`videmo.evaluate.assemble`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from videmo import schema
from videmo.config import Config
from videmo.evaluate.assemble import END_S, RECORDING, SPAN_COLUMNS, START_S, Assembled, assemble
from videmo.evaluate.metrics import group_of
from videmo.evaluate.segments import SegmentIssues, format_time, load_segments
from videmo.report.figures import CLASS_COLOURS, _save
from videmo.store import RunDir, safe_name

log = logging.getLogger(__name__)

SAMPLED_SPANS = "sampled_spans"  # a chunked recording's record: the [start, end) extracted


def clips_cut(cfg: Config) -> bool:
    """Whether the report's clips are cut from recordings (corpus.segments or window_s)."""
    return cfg.corpus.segments is not None or cfg.corpus.window_s is not None


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


def with_spans(table: pd.DataFrame, view: Assembled) -> pd.DataFrame:
    """clips.csv with ``recording, start_s, end_s`` after the clip's id."""
    spans = view.spans.reindex(table[schema.FILENAME].astype(str))
    out = table.copy()
    at = list(out.columns).index(schema.FILENAME) + 1
    for i, col in enumerate(SPAN_COLUMNS):
        out.insert(at + i, col, spans[col].to_numpy())
    return out


def recording_timelines(clips: pd.DataFrame, out_dir: Path, limit: int = 50
                        ) -> dict[str, Path]:
    """One PNG per recording (the first ``limit``): its clips as bars along its time line,
    coloured by predicted class (and golden, below, when labelled)."""
    paths: dict[str, Path] = {}
    for rec, part in list(clips.groupby(RECORDING, sort=True))[:limit]:
        part = part.sort_values([START_S, END_S])
        labelled = part[schema.GOLDEN].notna().any()
        rows = [("predicted", schema.PREDICT)] + ([("golden", schema.GOLDEN)] if labelled else [])
        fig, ax = plt.subplots(figsize=(10, 0.9 + 0.45 * len(rows) * _lanes(part)))
        lanes = _lane_of(part)
        n_lanes = max(lanes.values(), default=0) + 1
        for r, (_name, col) in enumerate(rows):
            for _, row in part.iterrows():
                value = row[col]
                if value is None or (isinstance(value, float) and pd.isna(value)):
                    continue
                y = r * (n_lanes + 0.5) + lanes[row[schema.FILENAME]]
                ax.broken_barh([(row[START_S], row[END_S] - row[START_S])], (y, 0.8),
                               facecolors=CLASS_COLOURS.get(value, "#ffffff"),
                               edgecolors="#333333", linewidth=0.3)
        ax.set_yticks([r * (n_lanes + 0.5) + n_lanes / 2 for r in range(len(rows))])
        ax.set_yticklabels([name for name, _ in rows])
        ax.set_xlabel("time in the recording (s)")
        end = float(part[END_S].max())
        ax.set_xlim(0, end)
        ax.set_title(f"{rec}: {len(part)} clips, 0 to {format_time(end)}")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in CLASS_COLOURS.values()]
        ax.legend(handles, list(CLASS_COLOURS), loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  fontsize=7)
        paths[str(rec)] = _save(fig, out_dir / "recordings" / f"{safe_name(str(rec))}.png")
    return paths


def _lane_of(part: pd.DataFrame) -> dict[str, int]:
    """Overlapping clips in separate lanes (greedy, by start)."""
    ends: list[float] = []
    lanes = {}
    for _, row in part.iterrows():
        for i, e in enumerate(ends):
            if row[START_S] >= e - 1e-9:
                ends[i] = row[END_S]
                lanes[row[schema.FILENAME]] = i
                break
        else:
            ends.append(row[END_S])
            lanes[row[schema.FILENAME]] = len(ends) - 1
    return lanes


def _lanes(part: pd.DataFrame) -> int:
    return max(_lane_of(part).values(), default=0) + 1
