"""Golden labels: a CSV of clip (id or file name) and label, read forgivingly, reported strictly.

Labels may be in any case, full or short (Positive/Pos, Neutral/Neut/Neu, Negative/Neg), or one
of the seven emotions (mapped with the run's 7 -> 3 table). Missing, extra, duplicate and unknown
labels are collected by name in :class:`LabelIssues`; they are fatal only when asked.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import schema

CLIP_COLUMNS = ("clip_id", "clip", "filename", "file", "file_name", "name", "video", "id")
LABEL_COLUMNS = ("label", "golden", "gold", "class", "sentiment", "emotion", "target")

SHORT = {
    "pos": schema.POSITIVE, "positive": schema.POSITIVE, "p": schema.POSITIVE,
    "neg": schema.NEGATIVE, "negative": schema.NEGATIVE, "n": schema.NEGATIVE,
    "neut": schema.NEUTRAL, "neutral": schema.NEUTRAL, "neu": schema.NEUTRAL,
}


class LabelsError(ValueError):
    """The labels file cannot be used (unreadable, no rows, or issues with strict checking)."""


def parse_label(raw: str, mapping: dict[str, str]) -> str | None:
    """One label -> positive / negative / neutral, or None if it is not a label we know."""
    key = raw.strip().lower()
    if key in SHORT:
        return SHORT[key]
    if key in mapping:
        return mapping[key]
    return None


@dataclass
class LabelIssues:
    missing: list[str] = field(default_factory=list)  # clips in the run without a label
    extra: list[str] = field(default_factory=list)  # labels without a clip in the run
    duplicates: list[str] = field(default_factory=list)  # keys given more than once
    conflicting: list[str] = field(default_factory=list)  # duplicates with different labels
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (key, raw label)

    def any(self) -> bool:
        return bool(self.missing or self.extra or self.duplicates or self.unknown)

    def lines(self, limit: int = 10) -> list[str]:
        def show(items):
            items = [i if isinstance(i, str) else f"{i[0]}={i[1]!r}" for i in items]
            more = f" ... (+{len(items) - limit})" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        out = []
        for name in ("missing", "extra", "duplicates", "conflicting", "unknown"):
            items = getattr(self, name)
            if items:
                out.append(f"{len(items)} {name}: {show(items)}")
        return out

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


def _strip_ext(name: str) -> str:
    p = PurePosixPath(name.replace("\\", "/"))
    return str(p.with_suffix("")) if p.suffix and len(p.suffix) <= 5 and not \
        p.suffix[1:].replace(".", "").isdigit() else str(p)


def read_labels_csv(path: Path) -> list[tuple[str, str]]:
    """(key, raw label) rows. Handles a BOM, CRLF, extra columns and a missing header."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LabelsError(f"labels file not found: {path} (config key 'report.labels')") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LabelsError(f"cannot read labels file {path}: {e}") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    if not rows:
        raise LabelsError(f"labels file {path} has no rows")
    header = [c.strip().lower() for c in rows[0]]
    if len(header) < 2:
        raise LabelsError(f"labels file {path}: expected at least two columns (clip, label)")
    has_header = any(h in CLIP_COLUMNS or h in LABEL_COLUMNS for h in header)
    ci = next((header.index(c) for c in CLIP_COLUMNS if c in header), 0) if has_header else 0
    li = next((header.index(c) for c in LABEL_COLUMNS if c in header), 1) if has_header else 1
    body = rows[1:] if has_header else rows
    out = []
    for r in body:
        if len(r) <= max(ci, li):
            out.append((r[0].strip() if r else "", ""))
            continue
        out.append((r[ci].strip(), r[li].strip()))
    return out


def match_labels(rows: list[tuple[str, str]], clip_ids: list[str], mapping: dict[str, str],
                 strict: bool = False) -> tuple[dict[str, str], LabelIssues]:
    """Golden class per clip id, matching keys by clip id, by file name or by base name."""
    issues = LabelIssues()
    by_key: dict[str, str] = {}
    for cid in clip_ids:
        by_key.setdefault(cid, cid)
    for cid in clip_ids:  # base names only where unambiguous
        base = PurePosixPath(cid).name
        by_key.setdefault(base, cid)
    golden: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, raw in rows:
        cid = by_key.get(key) or by_key.get(_strip_ext(key)) or by_key.get(
            PurePosixPath(_strip_ext(key)).name)
        label = parse_label(raw, mapping)
        if label is None:
            issues.unknown.append((key, raw))
            continue
        if cid is None:
            issues.extra.append(key)
            continue
        if cid in seen:
            issues.duplicates.append(key)
            if seen[cid] != label:
                issues.conflicting.append(key)
            continue
        seen[cid] = label
        golden[cid] = label
    issues.missing = [c for c in clip_ids if c not in golden]
    if strict and issues.any():
        raise LabelsError("labels do not match the run (report.strict_labels): "
                          + "; ".join(issues.lines()))
    return golden, issues
