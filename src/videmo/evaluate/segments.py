"""Report clips cut from long recordings: coded segments (a CSV) and regular time windows.

A researcher of debates or classrooms holds whole recordings and a table of the time ranges
coded in them (exported from ELAN, a spreadsheet or an earlier pass): ``recording, start, end``
and perhaps a segment id, a label and the person speaking. Each row becomes a clip of the
report; its frames are the recording's sampled frames with ``start <= time_s < end``
(:mod:`videmo.evaluate.assemble`), so overlapping and nested segments share frames that were
analysed once, and another segments file re-labels a finished run without touching a video.

The file is read as forgivingly as the labels file (BOM, comma / semicolon / tab, CRLF, any
header case; a decimal comma in a semicolon file) and as strictly in its values: every row that
cannot be a segment (no recording, a recording not in the corpus, a time that does not parse,
end not after start, end beyond the recording's end, an unknown label, an id used twice) is
collected with its line number in :class:`SegmentIssues` before any work starts;
``report.strict_labels`` makes them fatal, otherwise they are warned about and left out.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from videmo.evaluate.labels import (
    DELIMITERS,
    LABEL_COLUMNS,
    ClipIndex,
    LabelsError,
    _norm,
    _read_text,
    _sniff_delimiter,
    label_lookup,
)

if TYPE_CHECKING:
    from videmo.config import Config, ReportConfig
    from videmo.schema import Clip

ROLES = ("recording", "start", "end", "id", "label", "person")
REQUIRED = ("recording", "start", "end")
# header names recognised per role when corpus.segments_columns does not name the column, in
# order of preference (compared like the labels file's: any case, no spaces/dashes/dots)
KNOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "recording": ("recording", "recordingid", "video", "videoid", "videofile", "file", "filename",
                  "media", "mediafile",
                  "clip", "clipid", "source", "session", "path"),
    "start": ("start", "starts", "starttime", "begin", "begintime", "begins", "from",
              "onset", "tstart", "in"),
    "end": ("end", "ends", "endtime", "stop", "to", "offset", "tend", "out"),
    "id": ("segment", "segmentid", "segid", "id", "annotationid", "item"),
    "label": LABEL_COLUMNS + ("annotation", "code", "value"),
    "person": ("person", "speaker", "participant", "subject", "actor", "tier", "who"),
}
# a segment may end this far past the recording's last frame (its frame period, and rounding in
# exported times) before its row is called "beyond the recording's end"
END_SLACK_S = 0.05
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$")
_SECONDS = re.compile(r"^\d+(?:[.,]\d*)?$|^[.,]\d+$")


log = logging.getLogger(__name__)


class SegmentsError(LabelsError):
    """The segments file cannot be used (unreadable, no header naming the columns, or bad
    rows with ``report.strict_labels``)."""


def parse_time(text: str) -> float:
    """Seconds from ``12.5``, ``12,5``, ``MM:SS(.mmm)`` or ``HH:MM:SS(.mmm)``; raises ValueError."""
    t = text.strip()
    if _SECONDS.match(t):
        return float(t.replace(",", "."))
    m = _CLOCK.match(t)
    if not m:
        raise ValueError(f"not a time: {text!r} (seconds such as 62.5, or HH:MM:SS.mmm)")
    hours, minutes, seconds = int(m.group(1) or 0), int(m.group(2)), float(
        m.group(3).replace(",", "."))
    if minutes >= 60 or seconds >= 60:
        raise ValueError(f"not a time: {text!r} (minutes and seconds must be below 60)")
    return hours * 3600 + minutes * 60 + seconds


def format_time(seconds: float) -> str:
    """``HH:MM:SS.mmm``: how segment and window ids spell times (they sort as they read)."""
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h:02d}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def span_id(recording: str, start: float, end: float) -> str:
    """The id of a segment without one, and of a window: recording and times."""
    return f"{recording}@{format_time(start)}-{format_time(end)}"


@dataclass(frozen=True)
class Segment:
    """One clip of the report cut from a recording: ``start_s <= time_s < end_s``."""

    segment_id: str
    recording: str  # the recording's clip id
    start_s: float
    end_s: float
    label: str | None = None  # its class, from the label column
    person: str | None = None  # the group it counts in, from the person column
    line: int = 0  # line of the segments file (0: a window)


@dataclass
class SegmentIssues:
    """Rows that are not segments, by line: (line, what is wrong)."""

    path: Path
    rows: list[tuple[int, str]] = field(default_factory=list)

    def any(self) -> bool:
        return bool(self.rows)

    def lines(self, limit: int = 10) -> list[str]:
        out = [f"line {line}: {why}" for line, why in self.rows[:limit]]
        if len(self.rows) > limit:
            out.append(f"... and {len(self.rows) - limit} more bad rows")
        return out

    def message(self) -> str:
        return (f"segments file {self.path}: {len(self.rows)} bad row(s): "
                + "; ".join(self.lines()))


@dataclass(frozen=True)
class SegmentsFile:
    """A segments file as read: its columns (by role) and its rows, before any check against
    the corpus."""

    path: Path
    delimiter: str
    header: tuple[str, ...]
    columns: dict[str, int]  # role -> column index
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (line, cells)

    def cell(self, cells: tuple[str, ...], role: str) -> str:
        i = self.columns.get(role)
        return cells[i] if i is not None and i < len(cells) else ""

    def describe(self) -> str:
        named = ", ".join(f"{r}: {self.header[i]!r}" for r, i in self.columns.items())
        return f"{DELIMITERS[self.delimiter]}-separated; {named}"


def read_segments(path: Path, columns: Mapping[str, str] | None = None, *,
                  given: str | None = None) -> SegmentsFile:
    """Read the file and find its columns: ``columns`` (corpus.segments_columns) names them by
    role, the rest are recognised by :data:`KNOWN_COLUMNS`. Raises :class:`SegmentsError`."""
    path = Path(path)
    columns = dict(columns or {})
    origin = "config key 'corpus.segments'"
    if given is not None:
        origin += f" = {given!r}, relative to the config file's folder"
    where = f"segments file {path} ({origin})"
    bad_roles = sorted(set(columns) - set(ROLES))
    if bad_roles:
        raise SegmentsError(f"config key 'corpus.segments_columns': unknown role(s) "
                            f"{', '.join(map(repr, bad_roles))}; roles: {', '.join(ROLES)}")
    try:
        text = _read_text(path, where, "corpus.segments")
    except SegmentsError:
        raise
    except LabelsError as e:
        raise SegmentsError(str(e)) from None
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    try:
        rows = [(reader.line_num, tuple(c.strip() for c in r)) for r in reader
                if any(c.strip() for c in r)]
    except csv.Error as e:
        raise SegmentsError(f"{where} is not a readable CSV file (line {reader.line_num}): "
                            f"{e}") from None
    if not rows:
        raise SegmentsError(f"{where} has no rows")
    header = rows[0][1]
    names = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for role, name in columns.items():
        if _norm(name) not in names:
            raise SegmentsError(
                f"config key 'corpus.segments_columns.{role}' is {name!r}, but {where} has no "
                f"such column; its header ({DELIMITERS[delimiter]}-separated): "
                f"{', '.join(repr(h) for h in header)}")
        found[role] = names.index(_norm(name))
    for role in ROLES:
        if role in found:
            continue
        for known in KNOWN_COLUMNS[role]:
            hits = [i for i, n in enumerate(names) if n == known and i not in found.values()]
            if hits:
                found[role] = hits[0]
                break
    missing = [r for r in REQUIRED if r not in found]
    if missing:
        raise SegmentsError(
            f"{where}: no {' / '.join(missing)} column in its first row "
            f"({', '.join(repr(h) for h in header)}); the first row must name the columns: "
            f"give them common names (recording, start, end, label, person) or name them in "
            f"corpus.segments_columns, e.g. {{{missing[0]}: <header>}}")
    return SegmentsFile(path, delimiter, header, found, tuple(rows[1:]))


def check_segments(seg: SegmentsFile, recordings: Iterable[str],
                   durations: Mapping[str, float | None], rc: ReportConfig | None = None
                   ) -> tuple[list[Segment], SegmentIssues]:
    """The rows that are segments of the corpus's ``recordings`` (clip ids; a row may name a
    recording by id, file name, base name or path, as a labels file does), and the others by
    line. ``durations``: each recording's length in seconds (None: unknown, not checked)."""
    from videmo.config import ReportConfig

    rc = rc or ReportConfig()
    lookup = label_lookup(rc.mapping, rc.label_aliases)
    index = ClipIndex(recordings)
    issues = SegmentIssues(seg.path)
    out: list[Segment] = []
    seen: dict[str, int] = {}
    for line, cells in seg.rows:
        rec_key = seg.cell(cells, "recording")
        if not rec_key:
            issues.rows.append((line, "no recording"))
            continue
        matches = index.find(rec_key)
        if not matches:
            issues.rows.append((line, f"unknown recording {rec_key!r} (not a clip of the "
                                      f"corpus)"))
            continue
        if len(matches) > 1:
            issues.rows.append((line, f"recording {rec_key!r} names {len(matches)} clips: "
                                      f"{', '.join(matches[:3])}; give its id"))
            continue
        recording = matches[0]
        times = []
        for role in ("start", "end"):
            raw = seg.cell(cells, role)
            try:
                value = parse_time(raw)
            except ValueError as e:
                issues.rows.append((line, f"{role}: {e}" if raw else f"no {role} time"))
                break
            times.append(value)
        if len(times) < 2:
            continue
        start, end = times
        if end <= start:
            issues.rows.append((line, f"end {seg.cell(cells, 'end')} is not after start "
                                      f"{seg.cell(cells, 'start')}"))
            continue
        duration = durations.get(recording)
        if duration is not None and math.isfinite(duration) and end > duration + END_SLACK_S:
            issues.rows.append((line, f"end {seg.cell(cells, 'end')} ({end:.3f} s) is beyond "
                                      f"the end of {recording} ({duration:.3f} s)"))
            continue
        raw_label = seg.cell(cells, "label")
        label = lookup.get(raw_label.casefold()) if raw_label else None
        if raw_label and label is None:
            issues.rows.append((line, f"unknown label {raw_label!r} (a class, its short form, "
                                      f"an emotion, or a value of report.label_aliases)"))
            continue
        segment_id = seg.cell(cells, "id") or span_id(recording, start, end)
        if segment_id in seen:
            issues.rows.append((line, f"segment id {segment_id!r} is also on line "
                                      f"{seen[segment_id]}"))
            continue
        seen[segment_id] = line
        out.append(Segment(segment_id, recording, start, end, label,
                           seg.cell(cells, "person") or None, line))
    return out, issues


def windows(durations: Mapping[str, float | None], window_s: float,
            step_s: float | None = None) -> list[Segment]:
    """Windows ``[k * step, k * step + window)`` of every recording with a known duration, for
    every k whose window starts before the recording's end; the last one ends at the end."""
    step = step_s or window_s
    out = []
    for recording, duration in sorted(durations.items()):
        if duration is None or not math.isfinite(duration) or duration <= 0:
            continue
        k = 0
        while k * step < duration - 1e-9:
            start = round(k * step, 6)
            end = round(min(start + window_s, duration), 6)
            out.append(Segment(span_id(recording, start, end), recording, start, end))
            k += 1
    return out


def load_segments(cfg: Config, recordings: Iterable[str],
                  durations: Mapping[str, float | None]) -> tuple[list[Segment],
                                                                  SegmentIssues | None]:
    """The report's clips cut from recordings as ``cfg.corpus`` asks (segments or windows),
    or ([], None) when it asks for neither. With ``report.strict_labels`` a bad row raises
    :class:`SegmentsError`."""
    c = cfg.corpus
    if c.window_s is not None:
        return windows(durations, c.window_s, c.window_step_s), None
    if c.segments is None:
        return [], None
    path = cfg.resolve(c.segments)
    given = c.segments if not Path(c.segments).expanduser().is_absolute() else None
    seg = read_segments(path, c.segments_columns, given=given)
    segments, issues = check_segments(seg, recordings, durations, cfg.report)
    if issues.any() and cfg.report.strict_labels:
        raise SegmentsError(issues.message() + " (report.strict_labels: true; fix the rows, or "
                                               "set it false to leave them out with a warning)")
    return segments, issues


def preflight_segments(cfg: Config, clips: list[Clip] | None) -> list[str]:
    """Check the segments file against the corpus and the recordings' lengths (from their
    containers' headers) before any work: bad rows are warned about by line, or stop the run
    with ``report.strict_labels``. Returns the line ``videmo config check`` prints (none
    without ``corpus.segments`` or without the corpus's ``clips``)."""
    from videmo.config import ConfigError
    from videmo.extract.chunks import probe_duration

    if clips is None or cfg.corpus.segments is None:
        return []

    path = cfg.resolve(cfg.corpus.segments)
    if path is None or not path.is_file():
        raise ConfigError(f"config key 'corpus.segments': {path} is not a file (relative paths "
                          f"are relative to the config file's folder {cfg.base_dir})")
    segments, issues = load_segments(cfg, [c.clip_id for c in clips],
                                     {c.clip_id: probe_duration(c, cfg) for c in clips})
    for line in issues.lines() if issues else []:
        log.warning("segments %s: %s (left out; report.strict_labels: true stops here)", path,
                    line)
    bad = f", {len(issues.rows)} bad rows left out" if issues and issues.any() else ""
    return [f"corpus.segments: {path}: {len(segments)} segments{bad}"]
