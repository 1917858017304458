"""Observer events in the report: RUN/annotations.csv merged with the per-frame table by time.

``videmo annotate`` appends one row per button press to ``RUN/annotations.csv``; when that file
is there, ``videmo report`` joins each event to the nearest sampled frame of its clip
(:func:`videmo.annotate.merge.join_frames`: within half the clip's sampling interval), writes
the joined table to ``report/annotations_merged.csv``, puts the agreement of the observers'
emotion events with the predicted frame emotions (per clip, per observer and overall) into
``metrics.json`` (``observer_agreement``) and the summary, and marks the events on the timeline
figures. A file that cannot be read does not stop the report: its error is warned, written to
``observer_agreement.error`` and shown on the page.

The observers contribute :data:`OBSERVERS`, the page's "Observer events" section (agreement
tiles, per clip and per observer), and each clip's events table in its timeline.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from videmo import schema
from videmo.annotate import ANNOTATIONS_CSV
from videmo.annotate.merge import (
    AGREEMENT,
    EVENTS,
    WITH_FACE,
    AnnotationsError,
    agreement,
    join_frames,
    read_annotations,
)
from videmo.report.sections import Section
from videmo.report.tables import Cell, Table, anchor, count, dec, missing, pct, table_from_frame

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report

log = logging.getLogger(__name__)

MERGED_CSV = "annotations_merged.csv"
TOLERANCE_NOTE = "nearest sampled frame within half of the clip's sampling interval"


def _number(value: Any) -> Any:
    """A JSON-ready count or rate: numpy scalars as Python numbers, NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _records(table: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    return {str(r[key]): {c: _number(r[c]) for c in table.columns if c != key}
            for _, r in table.iterrows()}


@dataclass
class ObserverEvents:
    """The run's observer events joined to its frames, and their agreement with the model."""

    source: Path
    joined: pd.DataFrame = field(default_factory=pd.DataFrame)  # merge.JOINED_COLUMNS
    per_clip: pd.DataFrame = field(default_factory=pd.DataFrame)  # merge.AGREEMENT_COLUMNS
    per_observer: pd.DataFrame = field(default_factory=pd.DataFrame)
    overall: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the file could not be read: why

    def events_of(self, clip_id: str) -> pd.DataFrame:
        """This clip's events, in media-time order (empty when none or unreadable)."""
        if self.error or self.joined.empty:
            return self.joined
        rows = self.joined[self.joined[schema.CLIP_ID] == clip_id]
        return rows.sort_values(schema.MEDIA_MS, kind="stable")

    def counts(self) -> dict[str, int]:
        """Events (any button) per clip id."""
        if self.error or self.joined.empty:
            return {}
        return {str(k): int(v) for k, v in self.joined[schema.CLIP_ID].value_counts().items()}

    def metrics(self) -> dict[str, Any]:
        """metrics.json's ``observer_agreement``."""
        if self.error:
            return {"file": str(self.source), "error": self.error}
        return {
            "file": str(self.source),
            "merged_file": MERGED_CSV,
            "join": TOLERANCE_NOTE,
            "events": len(self.joined),
            "observers": sorted(self.joined[schema.OBSERVER].dropna().unique().tolist()),
            "overall": self.overall,
            "clips": _records(self.per_clip, schema.CLIP_ID),
            "by_observer": _records(self.per_observer, schema.OBSERVER),
        }

    def summary_lines(self) -> list[str]:
        if self.error:
            return [f"observer events: {self.source} not used: {self.error}"]
        o = self.overall
        rate = "n/a" if o["agreement"] is None else f"{o['agreement']:.1%}"
        return [f"observer events: {len(self.joined)} from {self.source.name} "
                f"({self.joined[schema.OBSERVER].nunique()} observer(s)); emotion events "
                f"{o['emotion_events']}, matched to a frame {o['matched']}, with a face "
                f"{o['with_face']}, agreeing with the predicted emotion {o['agree']} "
                f"(agreement {rate}); merged table: {MERGED_CSV}"]


def observer_events(run_path: Path, frames: pd.DataFrame) -> ObserverEvents | None:
    """RUN/annotations.csv merged with ``frames`` (None when the run has no such file)."""
    path = Path(run_path) / ANNOTATIONS_CSV
    if not path.exists():
        return None
    try:
        ann = read_annotations(path)
    except AnnotationsError as e:
        log.warning("observer events not used: %s", e)
        return ObserverEvents(path, error=str(e))
    joined = join_frames(ann, frames)
    total = agreement(joined, by=None)  # one row; per column, so counts stay integers
    overall = {c: _number(total[c].iloc[0]) for c in total.columns}
    return ObserverEvents(path, joined, agreement(joined, schema.CLIP_ID),
                          agreement(joined, schema.OBSERVER), overall)


# ------------------------------------------------------------------ on the page
def events_table(events: pd.DataFrame, table_id: str) -> Table:
    """A clip's events, for its timeline."""
    s = schema
    df = events.assign(media_s=events[s.MEDIA_MS] / 1000.0)
    agree = {True: "yes", False: "no"}
    return table_from_frame(df, table_id, [
        (s.OBSERVER, "observer", str), (s.BUTTON, "button", str),
        ("media_s", "media time (s)", lambda v: dec(v, 2)),
        (s.TIME_S, "frame time (s)", lambda v: dec(v, 2)),
        (s.MATCHED, "matched", lambda v: "yes" if v else "no"),
        (s.N_FACES, "faces", count),
        (s.PREDICTED_EMOTION, "predicted emotion", lambda v: "" if missing(v) else str(v)),
        (s.AGREE, "agree", lambda v: "" if missing(v) else agree[bool(v)])], False)


def agreement_table(df: pd.DataFrame, key: str, table_id: str, heading: str,
                    linked: set[str] | None = None) -> Table:
    """Agreement per clip (each linked to its timeline when in ``linked``) or per observer."""
    table = table_from_frame(df, table_id, [
        (key, heading, str), (EVENTS, "emotion events", count),
        (schema.MATCHED, "matched to a frame", count), (WITH_FACE, "with a face", count),
        (schema.AGREE, "agree", count), (AGREEMENT, "agreement", pct)])
    if linked is not None:
        for row in table.rows:
            cid = row.cells[0].text
            if cid in linked:
                row.cells[0] = Cell(cid, cid, f"#{anchor(cid)}")
    return table


def observers_context(report: Report, cfg: Config) -> dict[str, Any]:
    obs = report.observer_events()
    if obs is None:
        raise ValueError("the observer events section needs readable observer events "
                         "(RUN/annotations.csv); its available() says when")
    return {
        "observers": obs,
        "observer_overall": obs.overall,
        "observer_clips": agreement_table(obs.per_clip, schema.CLIP_ID, "agreement-clips",
                                          "clip", set(report.timeline_clips())),
        "observer_people": agreement_table(obs.per_observer, schema.OBSERVER,
                                           "agreement-observers", "observer"),
        "observer_list": sorted(obs.joined[schema.OBSERVER].dropna().unique()),
        "merged_file": MERGED_CSV,
    }


OBSERVERS = Section("observers", "Observer events", "sections/observers.html",
                    context=observers_context,
                    available=lambda report: report.observer_events() is not None)
