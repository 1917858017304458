"""The report of a run whose clips are segments or windows of its recordings: clips.csv's
span columns and the per-recording timeline (the clips themselves: :mod:`videmo.evaluate.assemble`),
shown in report.html's "Recordings" section (:data:`RECORDINGS`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd

from videmo import schema
from videmo.evaluate.assemble import (
    END_S,
    RECORDING,
    SPAN_COLUMNS,
    START_S,
    Assembled,
)
from videmo.evaluate.segments import format_time
from videmo.report.figures import CLASS_COLOURS, _save
from videmo.report.sections import Section
from videmo.report.tables import data_uri, missing
from videmo.store import safe_name

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report

log = logging.getLogger(__name__)

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
        lanes = _lane_of(part)
        n_lanes = max(lanes.values(), default=0) + 1
        fig, ax = plt.subplots(figsize=(10, 0.9 + 0.45 * len(rows) * n_lanes))
        for r, (_name, col) in enumerate(rows):
            for _, row in part.iterrows():
                value = row[col]
                if missing(value):
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


# ------------------------------------------------------------------ on the page
def recordings_context(report: Report, cfg: Config) -> dict[str, Any]:
    return {"recording_images": [(r, data_uri(p))
                                 for r, p in report.figures.recordings.items()]}


RECORDINGS = Section("recordings", "Recordings", "sections/recordings.html",
                     context=recordings_context,
                     available=lambda report: bool(report.figures.recordings))
