"""Golden labels: a CSV of clip and label, read with care and matched strictly.

A published accuracy is only as good as the labels it is computed against, so nothing here is
guessed silently: a label value must be one videmo knows (a class, its short form, one of the
seven emotions, or a value the user mapped in ``report.label_aliases``), and a clip key must
name exactly one clip. What can be forgiven is only the file's form: its separator (comma,
semicolon, tab), a UTF-8 BOM, CRLF line ends, any header names, no header at all, extra columns.

Missing, extra, duplicate and empty labels are collected by name in :class:`LabelIssues` and are
fatal only with ``report.strict_labels``; an unknown value, an ambiguous key, a file that is not
UTF-8 or that is a spreadsheet workbook are always a :class:`LabelsError`.
"""

from __future__ import annotations

import csv
import io
import itertools
import shlex
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from videmo import schema

if TYPE_CHECKING:
    from videmo.config import Config, ReportConfig

# Header names recognised when report.labels_clip_column / labels_label_column are unset, in
# order of preference (compared in any case, without spaces, dashes, underscores or dots, so
# "File Name" is filename). A first row holding one of them is the header. videmo's own
# clips.csv (filename, predict, golden) reads as a labels file: golden, not predict.
CLIP_COLUMNS = ("clipid", "clip", schema.FILENAME, "file", "videoid", "video", "name", "path",
                "id")
LABEL_COLUMNS = ("label", schema.GOLDEN, "goldlabel", "gold", "class", "sentiment", "emotion",
                 "target", "truth", "groundtruth")

# Spellings of the three classes: the full names, the study's short forms (Pos, Neg, Neut: what
# videmo's own clips.csv writes) and Neu, a common short form of neutral.
DELIMITERS: dict[str, str] = {"\t": "tab", ";": "semicolon", ",": "comma"}  # ties: this order
SPREADSHEET_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx, .ods and .numbers are zip archives
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # legacy .xls
SNIFF_ROWS = 50
SHOW = 5  # unknown values / ambiguous keys named in one message


class LabelsError(ValueError):
    """The labels file cannot be used: unreadable, not CSV, unknown values, ambiguous keys, or
    (with ``report.strict_labels``) labels that do not match the run."""


def label_lookup(mapping: Mapping[str, str],
                 aliases: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every accepted value (case-folded) -> its class: the built-in ones, plus ``aliases``
    (report.label_aliases), which map extra values to a built-in value (a class, a short form
    or an emotion)."""
    known = schema.accepted_values(mapping)
    lookup = dict(known)
    for alias, target in (aliases or {}).items():
        cls = known.get(target.strip().casefold())
        if cls is not None:
            lookup.setdefault(alias.strip().casefold(), cls)
    return lookup


def parse_label(raw: str, mapping: Mapping[str, str],
                aliases: Mapping[str, str] | None = None) -> str | None:
    """One label value -> positive / negative / neutral, or None if it is not a value we know."""
    return label_lookup(mapping, aliases).get(raw.strip().casefold())


def _accepted_text(mapping: Mapping[str, str], aliases: Mapping[str, str]) -> str:
    shorts = [*schema.CLASS_SHORT.values(), "Neu"]
    text = (f"{', '.join(schema.CLASSES)}, {', '.join(shorts)}, or one of the seven emotions "
            f"({', '.join(sorted(mapping))}, mapped with report.mapping), in any case")
    if aliases:
        text += "; and report.label_aliases: " + ", ".join(f"{k} -> {v}"
                                                          for k, v in aliases.items())
    return text


# ---------------------------------------------------------------- reading the file
@dataclass(frozen=True)
class LabelRow:
    line: int  # line of the file where the row ends (1-based)
    key: str  # the clip as written: id, file name, base name or path
    raw: str  # the label as written
    label: str | None  # its class; None when the cell is empty (the clip stays unlabelled)


@dataclass(frozen=True)
class LabelsFile:
    """A labels file as read: which separator and columns were used, and its rows."""

    path: Path
    delimiter: str
    header: tuple[str, ...] | None  # None: the file has no header row
    clip_column: int
    label_column: int
    rows: tuple[LabelRow, ...]

    def column_name(self, index: int) -> str:
        if self.header is None or index >= len(self.header):
            return f"column {index + 1} (no header name)"
        return f"{self.header[index]!r} (column {index + 1})"

    def describe(self) -> str:
        return (f"{DELIMITERS[self.delimiter]}-separated; clip: "
                f"{self.column_name(self.clip_column)}, label: "
                f"{self.column_name(self.label_column)}")


def _read_text(path: Path, where: str, source: str) -> str:
    """The file's text, after refusing what is not a UTF-8 (or UTF-16 with BOM) CSV file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabelsError(f"{where} not found") from None
    except IsADirectoryError:
        raise LabelsError(f"{where} is a directory; give the labels CSV file") from None
    except OSError as e:
        raise LabelsError(f"cannot read {where}: {e.strerror or e}") from None
    spreadsheet = path.suffix.casefold() in SPREADSHEET_EXTENSIONS
    if spreadsheet or data.startswith((ZIP_MAGIC, OLE_MAGIC)):
        kind = (f"a {path.suffix} file" if spreadsheet else "a zip archive, as .xlsx and .ods"
                if data.startswith(ZIP_MAGIC) else "an OLE file, as legacy .xls")
        raise LabelsError(f"{where} is a spreadsheet workbook ({kind}), not a CSV file: open it "
                          f"and save it as CSV (File > Save As > 'CSV UTF-8'), then point "
                          f"{source} at the .csv file")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")  # Excel's "Unicode text" export: unambiguous with its BOM
    bom = len(b"\xef\xbb\xbf") if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        pos = bom + e.start
        line = data.count(b"\n", 0, pos) + 1
        target = shlex.quote(str(path.with_name(path.stem + "-utf8.csv")))
        raise LabelsError(
            f"{where} is not UTF-8: byte 0x{data[pos]:02x} at position {pos} (line {line}) is "
            f"not valid UTF-8; the file is probably latin-1 / Windows-1252. Convert it, e.g. "
            f"iconv -f latin1 -t utf-8 {shlex.quote(str(path))} > {target} (or save it from "
            f"your spreadsheet as 'CSV UTF-8') and point {source} at the new file") from None
    if "\x00" in text:
        raise LabelsError(f"{where} holds NUL bytes (UTF-16 without a BOM?): save it as "
                          f"'CSV UTF-8'")
    return text


def _sniff_delimiter(text: str) -> str:
    """Comma, semicolon or tab: the one that splits most of the first rows into two or more
    cells, then the one that splits them most evenly (a free-text column with commas does not
    fool it, as csv.Sniffer can be), then the one that leaves fewest empty cells (a clip named
    ``;x`` in a comma file splits on ``;`` too, but into an empty cell); ties go to tab, then
    semicolon."""
    best, best_score = ",", (0.0, 0.0, 0.0)
    for d in DELIMITERS:
        rows = [r for r in itertools.islice(
            csv.reader(io.StringIO(text, newline=None), delimiter=d), SNIFF_ROWS) if any(r)]
        if not rows:
            continue
        widths = [len(r) for r in rows]
        split = sum(w >= 2 for w in widths) / len(widths)
        full = sum(all(c.strip() for c in r) for r in rows) / len(rows)
        score = (split, Counter(widths).most_common(1)[0][1] / len(widths), full)
        if score > best_score:
            best, best_score = d, score
    return best


def _norm(name: str) -> str:
    """A header name as compared: any case, without spaces, dashes, underscores or dots."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _find_column(names: list[str], wanted: str | None, key: str, path: Path, header: list[str],
                 delimiter: str) -> int | None:
    """The column ``wanted`` (config ``key``) names in the header; None when it is unset."""
    if wanted is None:
        return None
    if _norm(wanted) in names:
        return names.index(_norm(wanted))
    raise LabelsError(f"config key '{key}' is {wanted!r}, but labels file {path} has no such "
                      f"column; its header ({DELIMITERS[delimiter]}-separated): "
                      f"{', '.join(repr(h) for h in header)}")


def _known_column(names: list[str], known: tuple[str, ...], other: int | None) -> int | None:
    for name in known:
        for i, n in enumerate(names):
            if n == name and i != other:
                return i
    return None


def _first_other(width: int, other: int | None) -> int:
    return next(i for i in range(width) if i != other)


def read_labels(path: Path, rc: ReportConfig | None = None, *, source: str = "report.labels",
                given: str | None = None) -> LabelsFile:
    """Read and check a labels file with the report options ``rc`` (columns, mapping, aliases).

    Raises :class:`LabelsError` naming the path and ``source`` (the config key, or the flag
    such as ``--labels``, that gave it; ``given``: the value as written when it was relative)
    when the file cannot be read as a CSV with the chosen columns, or when a label value is not
    one we know."""
    from videmo.config import ReportConfig

    rc = rc or ReportConfig()
    path = Path(path)
    origin = source if source.startswith("-") else f"config key '{source}'"
    if given is not None:
        origin += f" = {given!r}, relative to the config file's folder"
    where = f"labels file {path} ({origin})"
    text = _read_text(path, where, source)
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    try:
        rows = [(reader.line_num, [c.strip() for c in r]) for r in reader if any(c.strip()
                                                                               for c in r)]
    except csv.Error as e:
        raise LabelsError(f"{where} is not a readable CSV file "
                          f"(line {reader.line_num}): {e}") from None
    if not rows:
        raise LabelsError(f"{where} has no rows")
    width = max(len(r) for _, r in rows)
    if width < 2:
        raise LabelsError(f"{where}: expected at least two columns (clip, "
                          f"label), separated by comma, semicolon or tab; found one")

    first = rows[0][1]
    names = [_norm(c) for c in first]
    lookup = label_lookup(rc.mapping, rc.label_aliases)
    clip_key, label_key = rc.labels_clip_column, rc.labels_label_column
    if clip_key is not None or label_key is not None:
        has_header = True
        ci = _find_column(names, clip_key, "report.labels_clip_column", path, first, delimiter)
        li = _find_column(names, label_key, "report.labels_label_column", path, first, delimiter)
        if ci is not None and ci == li:
            raise LabelsError(f"config keys 'report.labels_clip_column' and "
                              f"'report.labels_label_column' name the same column {first[ci]!r} "
                              f"of labels file {path}")
    else:
        # a first row naming a known column is the header, unless its second cell is a label
        # value: "video,happy" is the clip "video", labelled, as in a file without a header
        has_header = any(n in CLIP_COLUMNS or n in LABEL_COLUMNS for n in names) and not (
            len(first) > 1 and first[1].casefold() in lookup)
        ci = li = None
    if has_header:
        ci = ci if ci is not None else _known_column(names, CLIP_COLUMNS, li)
        ci = ci if ci is not None else _first_other(width, li)
        li = li if li is not None else _known_column(names, LABEL_COLUMNS, ci)
        li = li if li is not None else _first_other(width, ci)
    else:
        ci, li = 0, 1

    header = tuple(first) if has_header else None
    body = rows[1:] if has_header else rows
    out: list[LabelRow] = []
    keyless: list[int] = []
    for line, cells in body:
        key = cells[ci] if ci < len(cells) else ""
        raw = cells[li] if li < len(cells) else ""
        if not key:
            keyless.append(line)
            continue
        out.append(LabelRow(line, key, raw, lookup.get(raw.casefold())))
    labels = LabelsFile(path, delimiter, header, ci, li, tuple(out))
    if keyless:
        raise LabelsError(f"labels file {path} ({labels.describe()}): no clip on line(s) "
                          f"{', '.join(map(str, keyless[:SHOW]))}"
                          f"{f' (+{len(keyless) - SHOW} more)' if len(keyless) > SHOW else ''}; "
                          f"every row needs a clip and a label")
    _check_values(labels, rc)
    return labels


def _check_values(labels: LabelsFile, rc: ReportConfig) -> None:
    unknown: dict[str, list[LabelRow]] = defaultdict(list)
    for row in labels.rows:
        if row.raw and row.label is None:
            unknown[row.raw].append(row)
    if not unknown:
        return
    parts = []
    for raw, rows in list(unknown.items())[:SHOW]:
        keys = ", ".join(repr(r.key) for r in rows[:3])
        more = f" +{len(rows) - 3} more" if len(rows) > 3 else ""
        parts.append(f"{raw!r} ({len(rows)} clip{'s' if len(rows) > 1 else ''}: {keys}{more})")
    rest = f"; and {len(unknown) - SHOW} more values" if len(unknown) > SHOW else ""
    example = next(iter(unknown))
    hint = "" if rc.labels_label_column else "; if this is the wrong column, set " \
        "report.labels_label_column"
    first = labels.rows[0] if labels.rows else None
    if labels.header is None and first is not None and first.raw in unknown:
        hint += (f"; if line {first.line} is a header, name its columns in "
                 f"report.labels_clip_column and report.labels_label_column")
    raise LabelsError(
        f"labels file {labels.path} ({labels.describe()}): {len(unknown)} unknown label "
        f"value{'s' if len(unknown) > 1 else ''}: {'; '.join(parts)}{rest}. Accepted: "
        f"{_accepted_text(rc.mapping, rc.label_aliases)}. To accept another value, map it in "
        f"report.label_aliases (e.g. report.label_aliases: {{{example}: <class or emotion>}}); "
        f"nothing is mapped silently{hint}")


# ---------------------------------------------------------------- matching clips
@dataclass
class LabelIssues:
    missing: list[str] = field(default_factory=list)  # clips in the run without a label
    extra: list[str] = field(default_factory=list)  # labels without a clip in the run
    duplicates: list[str] = field(default_factory=list)  # keys given more than once
    conflicting: list[str] = field(default_factory=list)  # duplicates with different labels
    empty: list[str] = field(default_factory=list)  # keys whose label cell is empty

    def any(self) -> bool:
        return bool(self.missing or self.extra or self.duplicates or self.empty)

    def lines(self, limit: int = 10) -> list[str]:
        def show(items: list[str]) -> str:
            more = f" ... (+{len(items) - limit})" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        out = []
        for name in ("missing", "extra", "duplicates", "conflicting", "empty"):
            items = getattr(self, name)
            if items:
                out.append(f"{len(items)} {name}: {show(items)}")
        return out

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


def _strip_ext(name: str) -> str:
    """``name`` without a file extension; a numeric suffix (biden_58.0) is not one."""
    p = PurePosixPath(name)
    if p.suffix and len(p.suffix) <= 5 and not p.suffix[1:].isdigit():
        return str(p.with_suffix(""))
    return name


class ClipIndex:
    """Finds the clips a label key names: by clip id, by file name (id plus an extension), then
    by base name, all in any case. A key with folders narrows base-name matches to the clip whose
    id ends the key (/data/2019/trump_1.mp4 -> 2019/trump_1)."""

    def __init__(self, clip_ids: Iterable[str]):
        self.ids = set(clip_ids)
        self.folded: dict[str, list[str]] = defaultdict(list)
        self.base: dict[str, list[str]] = defaultdict(list)
        for cid in sorted(self.ids):
            self.folded[cid.casefold()].append(cid)
            self.base[PurePosixPath(cid).name.casefold()].append(cid)

    def find(self, key: str) -> list[str]:
        """The clips ``key`` names: one, none, or several (ambiguous)."""
        if key in self.ids:
            return [key]
        k = str(PurePosixPath(key.replace("\\", "/")))
        stem = _strip_ext(k)
        for form in dict.fromkeys((k, stem)):
            if form.casefold() in self.folded:
                return self.folded[form.casefold()]
        hits = self.base.get(PurePosixPath(stem).name.casefold(), [])
        if len(hits) > 1:
            narrowed = [h for h in hits if stem.casefold().endswith("/" + h.casefold())]
            if len(narrowed) == 1:
                return narrowed
        return hits


def match_labels(labels: LabelsFile, clip_ids: Iterable[str], strict: bool = False
                 ) -> tuple[dict[str, str], LabelIssues]:
    """Golden class per clip id. A key that names two clips is an error naming both; missing,
    extra, duplicate and empty labels are reported by name, and fatal when ``strict``."""
    clip_ids = list(clip_ids)
    index = ClipIndex(clip_ids)
    issues = LabelIssues()
    golden: dict[str, str] = {}
    ambiguous: list[tuple[LabelRow, list[str]]] = []
    for row in labels.rows:
        if row.label is None:
            issues.empty.append(row.key)
            continue
        hits = index.find(row.key)
        if len(hits) > 1:
            ambiguous.append((row, hits))
            continue
        if not hits:
            issues.extra.append(row.key)
            continue
        cid = hits[0]
        if cid in golden:
            issues.duplicates.append(row.key)
            if golden[cid] != row.label:
                issues.conflicting.append(row.key)
            continue
        golden[cid] = row.label
    if ambiguous:
        shown = "; ".join(f"{row.key!r} (line {row.line}) matches {', '.join(hits)}"
                          for row, hits in ambiguous[:SHOW])
        more = f"; and {len(ambiguous) - SHOW} more" if len(ambiguous) > SHOW else ""
        raise LabelsError(f"labels file {labels.path}: {len(ambiguous)} clip key"
                          f"{'s' if len(ambiguous) > 1 else ''} name more than one clip: "
                          f"{shown}{more}. Write the clip id (its path below the corpus folder, "
                          f"without extension, as in clips.csv's filename column) instead")
    issues.missing = [c for c in clip_ids if c not in golden]
    if strict and issues.any():
        raise LabelsError(f"labels file {labels.path} does not match the run "
                          f"(report.strict_labels: true): " + "; ".join(issues.lines()))
    return golden, issues


# ---------------------------------------------------------------- entry points
def golden_labels(path: Path, clip_ids: Iterable[str], rc: ReportConfig,
                  source: str = "report.labels") -> tuple[dict[str, str], LabelIssues]:
    """Read ``path`` with the report options and match it to the run's clips (report stage)."""
    return match_labels(read_labels(path, rc, source=source), clip_ids, strict=rc.strict_labels)


def check_labels(cfg: Config, path: Path | str | None = None) -> LabelsFile | None:
    """Validate the labels file before any work: it exists, is a UTF-8 CSV, has the chosen
    columns and only known label values. ``path`` is a ``--labels`` override; without it the
    file is ``report.labels`` resolved against the config file's folder. None: no labels."""
    if path is not None:
        return read_labels(Path(path), cfg.report, source="--labels")
    if cfg.report.labels is None:
        return None
    given = cfg.report.labels
    relative = not Path(given).expanduser().is_absolute()
    return read_labels(Path(str(cfg.resolve(given))), cfg.report,
                       given=given if relative else None)


def check_labels_path(cfg: Config, lines: list[str]) -> None:
    """Before any work: ``report.labels``, when set, is a file that parses (a
    :class:`videmo.config.ConfigError` naming the key and the path); one line to ``lines``."""
    from videmo.config import ConfigError
    from videmo.config.paths import given

    raw = cfg.report.labels
    if raw is None:
        lines.append("report.labels: not set (no evaluation)")
        return
    path = cfg.resolve(raw)
    if path is None or not path.exists():
        raise ConfigError(f"config key 'report.labels': {path} does not exist{given(cfg, raw)}")
    if not path.is_file():
        raise ConfigError(f"config key 'report.labels': {path} is not a file{given(cfg, raw)}")
    found = check_labels(cfg)  # parses with the chosen columns, known values
    rows = len(found.rows) if found is not None else None
    lines.append(f"report.labels: {path}" + ("" if rows is None else f": {rows} rows"))
