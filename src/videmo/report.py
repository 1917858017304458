"""The report stage: per-frame table -> per-clip CSV, metrics, figures. Never touches a video.

Outputs (RUN/report/ unless ``report.out``): ``clips.csv`` (schema.CLIP_TABLE_COLUMNS, the
study's columns first: filename, predict, golden, pos, neg, neut; classes spelled Pos, Neg,
Neut), ``groups.csv``, ``metrics.json``, ``summary.txt``, ``report_config.yaml`` and
``figures/``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from . import figures, schema
from .config import Config, ReportConfig, dump
from .labels import LabelIssues, match_labels, read_labels_csv
from .metrics import PRED_CLASSES, evaluate, summary_lines
from .store import RunDir, safe_name, write_csv_atomic, write_text_atomic
from .vote import balance, clip_votes, frame_labels, top_emotions

log = logging.getLogger(__name__)


def short(label: str | None) -> str:
    """The study's spelling of a class (Pos, Neg, Neut); other labels as they are."""
    if label is None or (isinstance(label, float) and pd.isna(label)):
        return ""
    return schema.CLASS_SHORT.get(label, label)


def group_of(clip_id: str, pattern: str) -> str:
    name = PurePosixPath(clip_id).name
    m = re.search(pattern, name)
    if not m:
        return "other"
    return m.group(1) if m.groups() and m.group(1) is not None else m.group(0)


@dataclass
class Report:
    out_dir: Path
    clips: pd.DataFrame  # schema.CLIP_TABLE_COLUMNS, labels spelled in full (positive, ...)
    groups: pd.DataFrame
    metrics: dict[str, Any]
    label_issues: LabelIssues | None

    def summary(self) -> str:
        lines = summary_lines(self.metrics["overall"], f"report -> {self.out_dir}")
        if self.metrics.get("failed_clips"):
            lines.append(f"failed clips (not in the table): {len(self.metrics['failed_clips'])}")
        if self.label_issues is not None and self.label_issues.any():
            lines.extend("labels: " + s for s in self.label_issues.lines())
        return "\n".join(lines)

    def study_table(self) -> pd.DataFrame:
        """The per-clip table as written to clips.csv: classes as the study spelled them."""
        out = self.clips.copy()
        for col in (schema.PREDICT, schema.GOLDEN, schema.PREDICT_UNBALANCED):
            out[col] = out[col].map(short)
        return out


def build_clip_table(frames: pd.DataFrame, clip_ids: list[str], rc: ReportConfig,
                     golden: dict[str, str]) -> pd.DataFrame:
    votes = clip_votes(frames, clip_ids, rc.mapping, frame_rule=rc.frame_label,
                       aggregate=rc.aggregate, tie=rc.tie, interval_frames=rc.interval_frames,
                       rules=rc.rules,
                       groups={c: group_of(c, rc.group_pattern) for c in clip_ids})
    votes[schema.PREDICT_UNBALANCED] = votes[schema.PREDICT]
    if rc.balance != "none":
        votes[schema.PREDICT] = balance(votes, _balance_shares(rc, golden))
    frame_keys = [schema.CLIP_ID, schema.FRAME_INDEX]
    sampled = frames.drop_duplicates(frame_keys).groupby(schema.CLIP_ID).size()
    with_face = frames[frames[schema.FACE_INDEX] >= 0].drop_duplicates(frame_keys).groupby(
        schema.CLIP_ID).size()
    cid = votes[schema.CLIP_ID]
    table = votes.rename(columns={schema.CLIP_ID: schema.FILENAME})
    table[schema.GOLDEN] = cid.map(golden)
    table[schema.FRAMES_SAMPLED] = cid.map(sampled).fillna(0).astype(int)
    table[schema.FRAMES_WITH_FACE] = cid.map(with_face).fillna(0).astype(int)
    table[schema.CORRECT] = [(golden[c] == p) if c in golden else pd.NA
                             for c, p in zip(cid, votes[schema.PREDICT], strict=True)]
    table[list(schema.MEAN_EMOTIONS)] = table[list(schema.MEAN_EMOTIONS)].round(4)
    table[schema.GROUP] = cid.map(lambda c: group_of(c, rc.group_pattern))
    return table[list(schema.CLIP_TABLE_COLUMNS)]


def _balance_shares(rc: ReportConfig, golden: dict[str, str]) -> dict[str, float]:
    if rc.balance == "uniform":
        return dict.fromkeys(schema.CLASSES, 1.0)
    if rc.balance == "shares":
        return {c: float(rc.balance_shares.get(c, 0.0)) for c in schema.CLASSES}
    counts = {c: sum(1 for g in golden.values() if g == c) for c in schema.CLASSES}
    if not any(counts.values()):
        raise ValueError("report.balance: golden needs golden labels (report.labels)")
    return {c: float(v) for c, v in counts.items()}


def _evaluate(table: pd.DataFrame) -> dict[str, Any]:
    golden = [None if pd.isna(g) else g for g in table[schema.GOLDEN]]
    return evaluate(list(table[schema.PREDICT]), golden)


def build_report(run: RunDir, cfg: Config, out_dir: Path | None = None,
                 labels_path: Path | None = None, frames: pd.DataFrame | None = None) -> Report:
    """Build and write the report. ``frames`` is the run's per-frame table when the caller
    already holds it (``videmo run`` after extract); otherwise it is read from the run."""
    rc = cfg.report
    out_dir = Path(out_dir or cfg.resolve(rc.out) or run.path / "report")
    if frames is None:
        frames = run.frames(cfg.extract_hash())
    manifest = run.manifest()
    done = manifest[manifest[schema.STATUS] == schema.DONE]
    done = done[done[schema.CONFIG_HASH] == cfg.extract_hash()]
    clip_ids = sorted(done[schema.CLIP_ID].astype(str))
    failed = manifest[manifest[schema.STATUS] == schema.FAILED]
    labels_path = labels_path or cfg.resolve(rc.labels)
    golden: dict[str, str] = {}
    issues = None
    if labels_path is not None:
        golden, issues = match_labels(read_labels_csv(Path(labels_path)), clip_ids, rc.mapping,
                                      strict=rc.strict_labels)
        for line in issues.lines():
            log.warning("labels %s: %s", labels_path, line)
    table = build_clip_table(frames, clip_ids, rc, golden)
    group_rows, group_metrics = [], {}
    for g, part in table.groupby(schema.GROUP, sort=True):
        m = _evaluate(part)
        group_metrics[g] = m
        group_rows.append({schema.GROUP: g, "clips": m["clips"], "labelled": m["labelled"],
                           "coverage": round(m["coverage"], 4),
                           "accuracy": round(m["accuracy"], 4),
                           "macro_f1": round(m["macro_f1"], 4),
                           **{p: m["predicted_counts"][p] for p in PRED_CLASSES}})
    seconds = pd.to_numeric(done[schema.SECONDS], errors="coerce")
    metrics = {
        "overall": _evaluate(table),
        "groups": group_metrics,
        "failed_clips": {str(r[schema.CLIP_ID]): str(r[schema.REASON])
                         for _, r in failed.iterrows()},
        "seconds_per_clip": float(seconds.mean()) if len(seconds) else None,
        "frames": int(len(frames)),
        "labels_file": str(labels_path) if labels_path else None,
        "label_issues": issues.to_dict() if issues else None,
        "detector": cfg.faces.detector,
        "extract_hash": cfg.extract_hash(),
        "report_options": cfg.to_dict()["report"],
    }
    report = Report(out_dir, table, pd.DataFrame(group_rows), metrics, issues)
    write_report(report, cfg, frames)
    return report


def write_report(report: Report, cfg: Config, frames: pd.DataFrame) -> None:
    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(report.study_table(), out / "clips.csv")
    write_csv_atomic(report.groups, out / "groups.csv")
    write_text_atomic(out / "metrics.json", json.dumps(report.metrics, indent=2, default=str)
                      + "\n")
    write_text_atomic(out / "report_config.yaml", dump(cfg))
    write_text_atomic(out / "summary.txt", report.summary() + "\n")
    if cfg.report.figures:
        write_figures(report, cfg, frames)


def write_figures(report: Report, cfg: Config, frames: pd.DataFrame) -> None:
    rc = cfg.report
    fig_dir = report.out_dir / "figures"
    table = report.clips.set_index(schema.FILENAME)
    rows = frames[frames[schema.FACE_INDEX] >= 0]
    top7 = top_emotions(frames)
    labels3 = frame_labels(frames, rc.mapping, rc.frame_label)
    groups = rows[schema.CLIP_ID].map(table[schema.GROUP])
    for g in sorted(table[schema.GROUP].unique())[:30]:
        mask = groups == g
        n_clips = int((table[schema.GROUP] == g).sum())
        figures.group_distribution(str(g), top7[mask], labels3[mask], n_clips,
                                   fig_dir / f"group_{safe_name(str(g))}.png")
    if report.metrics["overall"]["labelled"]:
        m = report.metrics["overall"]
        figures.confusion(m["confusion"], f"accuracy {m['accuracy']:.1%}, macro-F1 "
                                          f"{m['macro_f1']:.2f} ({m['labelled']} clips)",
                          fig_dir / "confusion.png")
    limit = rc.timeline_clips
    by_clip = dict(tuple(frames.groupby(schema.CLIP_ID, sort=True)))
    for cid in list(table.index)[: limit if limit is not None else None]:
        if cid in by_clip:
            golden = table.at[cid, schema.GOLDEN]
            figures.timeline(cid, by_clip[cid], short(table.at[cid, schema.PREDICT]),
                             None if pd.isna(golden) else short(golden),
                             fig_dir / "timelines" / f"{safe_name(cid)}.png")
