"""The report model: what a report holds (:class:`Report`), its typed metrics record
(:class:`ReportMetrics`, written to metrics.json with the same keys) and the cautions a reader
must see before trusting the numbers. :mod:`.build` makes a Report; :mod:`.html` and the text
summary render it; neither renderer rebuilds what build decided."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from videmo import schema
from videmo.evaluate.metrics import summary_lines
from videmo.report.face_size import face_size_warning

if TYPE_CHECKING:
    from videmo.evaluate.labels import LabelIssues
    from videmo.report.annotations import ObserverEvents

ORACLE_NOTE = ("report.balance: golden is an ORACLE: predicted class shares were set from the "
               "test labels themselves, so accuracy and F1 are not an estimate of how videmo "
               "does on unseen clips (use none, uniform or shares for that)")
CORPUS_NOT_LISTED = ("the corpus could not be listed: clips never recorded by the run are not "
                     "counted")


def short(label: str | None) -> str:
    """The study's spelling of a class (Pos, Neg, Neut); other labels as they are."""
    if label is None or (isinstance(label, float) and pd.isna(label)):
        return ""
    return schema.CLASS_SHORT.get(label, label)


def unfinished_message(overall: dict[str, Any]) -> str:
    missing = overall["failed"] + overall["not_extracted"]
    return (f"not complete: {missing} of {overall['clips']} clips are not done "
            f"({overall['failed']} failed, {overall['not_extracted']} not extracted) and count "
            f"as wrong; finish the run (rerun `videmo run`, or `videmo submit --resume RUN` for "
            f"SLURM runs) after fixing or excluding the failed clips")


def segment_lines(segments: dict[str, Any] | None) -> list[str]:
    """What a reader must know about clips cut from recordings: bad rows, unsampled times."""
    if not segments:
        return []
    out = [f"segments: {r}" for r in segments.get("bad_rows", [])]
    if segments.get("unsampled"):
        out.append(f"segments: {len(segments['unsampled'])} need times their recording's "
                   f"extraction never sampled (not extracted): rerun `videmo run` on this run "
                   f"directory to extract only those times")
    return out


@dataclass(frozen=True)
class ReportMetrics:
    """metrics.json: :meth:`to_dict` gives its keys in this order. ``overall`` and each of
    ``groups`` are :func:`videmo.evaluate.metrics.evaluate`'s record of a set of clips."""

    overall: dict[str, Any]
    groups: dict[str, dict[str, Any]]
    complete: bool  # every clip of the corpus is done
    corpus_listed: bool  # False: only the clips the run recorded are known
    failed_clips: dict[str, str]  # clip id -> reason
    not_extracted_clips: list[str]
    truncated: int
    truncated_clips: list[str]
    balance: str
    balance_oracle: bool
    balance_note: str | None
    seconds_per_clip: float | None
    frames: int
    labels_file: str | None
    label_issues: dict[str, Any] | None
    detector: str
    extract_hash: str
    report_options: dict[str, Any]
    classifier: dict[str, str] | None  # path, classifier, features of report.classifier
    observer_agreement: dict[str, Any] | None
    # clips cut from recordings (corpus.segments / window_s): counts and the file's bad rows
    segments: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """metrics.json; ``segments`` only for a report whose clips are cut from recordings."""
        out = dataclasses.asdict(self)
        if out["segments"] is None:
            del out["segments"]
        return out


@dataclass
class ReportFigures:
    """The PNG files :func:`build.write_figures` wrote (none with ``report.figures: false``)."""
    confusion: Path | None = None
    groups: dict[str, Path] = field(default_factory=dict)  # group -> figure
    timelines: dict[str, Path] = field(default_factory=dict)  # clip id -> figure
    blendshapes: dict[str, Path] = field(default_factory=dict)  # clip id -> figure (mesh)
    recordings: dict[str, Path] = field(default_factory=dict)  # recording -> its clips' labels

    def paths(self) -> set[Path]:
        """Every file drawn (the others under figures/ are an earlier build's)."""
        found = [self.confusion, *self.groups.values(), *self.timelines.values(),
                 *self.blendshapes.values(), *self.recordings.values()]
        return {Path(p) for p in found if p is not None}


@dataclass
class Report:
    out_dir: Path
    clips: pd.DataFrame  # schema.CLIP_TABLE_COLUMNS, labels spelled in full (positive, ...)
    groups: pd.DataFrame
    metrics: ReportMetrics
    label_issues: LabelIssues | None
    observers: ObserverEvents | None = None  # RUN/annotations.csv merged by time
    run_meta: dict[str, Any] | None = None  # run.json: provenance (versions, model hashes)
    run_dir: Path | None = None  # the run directory read (it may have moved since run.json)
    figures: ReportFigures = field(default_factory=ReportFigures)

    def observer_events(self) -> ObserverEvents | None:
        """The run's observer events when its annotations.csv could be read (else None)."""
        return self.observers if self.observers is not None and not self.observers.error \
            else None

    def timeline_clips(self) -> list[str]:
        """The clips with a timeline on the page, in table order: a timeline figure, or
        observer events (shown as a table when figures are off)."""
        obs = self.observer_events()
        events = obs.counts() if obs else {}
        return [c for c in self.clips[schema.FILENAME].astype(str)
                if c in self.figures.timelines or c in events]

    def notes(self) -> list[str]:
        """What a reader must know before trusting the numbers (the page's warnings)."""
        m = self.metrics
        out = []
        if not m.complete:
            out.append(unfinished_message(m.overall))
        if m.balance_oracle:
            out.append(ORACLE_NOTE)
        if not m.corpus_listed:
            out.append(CORPUS_NOT_LISTED)
        if self.label_issues is not None and self.label_issues.any():
            out.extend("labels: " + s for s in self.label_issues.lines())
        if self.observers is not None and self.observers.error:
            out.extend(self.observers.summary_lines())
        out.extend(segment_lines(m.segments))
        return out

    def summary(self) -> str:
        """summary.txt."""
        m = self.metrics
        lines = summary_lines(m.overall, f"report -> {self.out_dir}")
        if m.balance_oracle:
            lines.append(ORACLE_NOTE)
        if not m.corpus_listed:
            lines.append(CORPUS_NOT_LISTED)
        if not m.complete:
            lines.append(unfinished_message(m.overall))
        failed = m.failed_clips
        for cid, reason in list(failed.items())[:10]:
            lines.append(f"  failed: {cid}: {reason}")
        if len(failed) > 10:
            lines.append(f"  ... and {len(failed) - 10} more failed clips (metrics.json)")
        if m.truncated:
            shown = ", ".join(m.truncated_clips[:10])
            more = " ..." if m.truncated > 10 else ""
            lines.append(f"truncated clips (decoded more than {schema.TRUNCATED_SHORTFALL:.0%} "
                         f"fewer frames than expected; kept, as done): {m.truncated}: "
                         f"{shown}{more}")
        if self.label_issues is not None and self.label_issues.any():
            lines.extend("labels: " + s for s in self.label_issues.lines())
        if self.observers is not None:
            lines.extend(self.observers.summary_lines())
        lines.extend(segment_lines(m.segments))
        small = face_size_warning(self.clips)
        if small:
            lines.append(small)
        return "\n".join(lines)

    def study_table(self) -> pd.DataFrame:
        """The per-clip table as written to clips.csv: classes as the study spelled them."""
        out = self.clips.copy()
        for col in (schema.PREDICT, schema.GOLDEN, schema.PREDICT_UNBALANCED):
            out[col] = out[col].map(short)
        return out
