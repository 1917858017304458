"""The report stage: per-frame table -> per-clip CSV, metrics, figures. Never touches a video.

Outputs (RUN/report/ unless ``report.out``): ``clips.csv`` (the study's columns first:
filename, predict, golden, pos, neg, neut), ``groups.csv``, ``metrics.json``, ``summary.txt``,
``report_config.yaml`` and ``figures/``.
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
from .metrics import evaluate, summary_lines
from .store import RunDir, safe_name, write_csv_atomic, write_text_atomic
from .vote import CLASS_COLS, balance, clip_votes, frame_labels, top_emotions

log = logging.getLogger(__name__)

CLIP_TABLE_COLUMNS = ("filename", "predict", "golden", *CLASS_COLS, schema.FRAMES_SAMPLED,
                      schema.FRAMES_WITH_FACE, "correct",
                      *(f"mean_{e}" for e in schema.EMOTIONS), "group", "predict_unbalanced",
                      "intervals")


def short(label: str | None) -> str:
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
    clips: pd.DataFrame
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


def build_clip_table(frames: pd.DataFrame, clip_ids: list[str], rc: ReportConfig,
                     golden: dict[str, str]) -> pd.DataFrame:
    votes = clip_votes(frames, clip_ids, rc.mapping, frame_rule=rc.frame_label,
                       aggregate=rc.aggregate, tie=rc.tie, interval_frames=rc.interval_frames)
    votes["predict_unbalanced"] = votes["predict"]
    if rc.balance != "none":
        votes["predict"] = balance(votes, _balance_shares(rc, golden))
    per_frame = frames.drop_duplicates([schema.CLIP_ID, schema.FRAME_INDEX])
    sampled = per_frame.groupby(schema.CLIP_ID).size()
    with_face = frames[frames[schema.FACE_INDEX] >= 0].drop_duplicates(
        [schema.CLIP_ID, schema.FRAME_INDEX]).groupby(schema.CLIP_ID).size()
    cid = votes[schema.CLIP_ID]
    table = pd.DataFrame({
        "filename": cid,
        "predict": votes["predict"].map(short),
        "golden": cid.map(lambda c: short(golden.get(c))),
        **{c: votes[c] for c in CLASS_COLS},
        schema.FRAMES_SAMPLED: cid.map(sampled).fillna(0).astype(int),
        schema.FRAMES_WITH_FACE: cid.map(with_face).fillna(0).astype(int),
        "correct": [(golden.get(c) == p) if c in golden else pd.NA
                    for c, p in zip(cid, votes["predict"], strict=True)],
        **{f"mean_{e}": votes[f"mean_{e}"].round(4) for e in schema.EMOTIONS},
        "group": cid.map(lambda c: group_of(c, rc.group_pattern)),
        "predict_unbalanced": votes["predict_unbalanced"].map(short),
        "intervals": votes["intervals"],
    })
    return table[list(CLIP_TABLE_COLUMNS)]


def _balance_shares(rc: ReportConfig, golden: dict[str, str]) -> dict[str, float]:
    if rc.balance == "uniform":
        return dict.fromkeys(schema.CLASSES, 1.0)
    if rc.balance == "shares":
        return {c: float(rc.balance_shares.get(c, 0.0)) for c in schema.CLASSES}
    counts = {c: sum(1 for g in golden.values() if g == c) for c in schema.CLASSES}
    if not any(counts.values()):
        raise ValueError("report.balance: golden needs golden labels (report.labels)")
    return {c: float(v) for c, v in counts.items()}


def _long(label: str) -> str:
    inverse = {v: k for k, v in schema.CLASS_SHORT.items()}
    return inverse.get(label, label)


def build_report(run: RunDir, cfg: Config, out_dir: Path | None = None,
                 labels_path: Path | None = None) -> Report:
    rc = cfg.report
    out_dir = Path(out_dir or cfg.resolve(rc.out) or run.path / "report")
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
    long_pred = [_long(p) for p in table["predict"]]
    long_gold = [golden.get(c) for c in table["filename"]]
    overall = evaluate(long_pred, long_gold)
    group_rows, group_metrics = [], {}
    for g, part in table.groupby("group", sort=True):
        m = evaluate([_long(p) for p in part["predict"]], [golden.get(c) for c in part["filename"]])
        group_metrics[g] = m
        group_rows.append({"group": g, "clips": m["clips"], "labelled": m["labelled"],
                           "coverage": round(m["coverage"], 4),
                           "accuracy": round(m["accuracy"], 4),
                           "macro_f1": round(m["macro_f1"], 4),
                           **{c: int((part["predict"] == short(c)).sum()) for c in schema.CLASSES},
                           "no_face": int((part["predict"] == schema.NO_FACE).sum())})
    groups = pd.DataFrame(group_rows)
    seconds = pd.to_numeric(done[schema.SECONDS], errors="coerce")
    metrics = {
        "overall": overall,
        "groups": group_metrics,
        "failed_clips": {str(r[schema.CLIP_ID]): str(r[schema.REASON])
                         for _, r in failed.iterrows()},
        "seconds_per_clip": float(seconds.mean()) if len(seconds) else None,
        "frames": int(len(frames)),
        "labels_file": str(labels_path) if labels_path else None,
        "label_issues": issues.to_dict() if issues else None,
        "detector": cfg.faces.detector,
        "extract_hash": cfg.extract_hash(),
        "report_options": {k: v for k, v in cfg.to_dict()["report"].items()},
    }
    report = Report(out_dir, table, groups, metrics, issues)
    write_report(report, cfg, frames, golden)
    return report


def write_report(report: Report, cfg: Config, frames: pd.DataFrame,
                 golden: dict[str, str]) -> None:
    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(report.clips, out / "clips.csv")
    write_csv_atomic(report.groups, out / "groups.csv")
    write_text_atomic(out / "metrics.json", json.dumps(report.metrics, indent=2, default=str)
                      + "\n")
    write_text_atomic(out / "report_config.yaml", dump(cfg))
    write_text_atomic(out / "summary.txt", report.summary() + "\n")
    if cfg.report.figures:
        write_figures(report, cfg, frames, golden)


def write_figures(report: Report, cfg: Config, frames: pd.DataFrame,
                  golden: dict[str, str]) -> None:
    rc = cfg.report
    fig_dir = report.out_dir / "figures"
    table = report.clips
    group_of_clip = dict(zip(table["filename"], table["group"], strict=True))
    rows = frames[frames[schema.FACE_INDEX] >= 0]
    top7 = top_emotions(frames)
    labels3 = frame_labels(frames, rc.mapping, rc.frame_label)
    groups = rows[schema.CLIP_ID].map(group_of_clip)
    for g in sorted(table["group"].unique())[:30]:
        mask = groups == g
        n_clips = int((table["group"] == g).sum())
        figures.group_distribution(str(g), top7[mask], labels3[mask], n_clips,
                                   fig_dir / f"group_{safe_name(str(g))}.png")
    if report.metrics["overall"]["labelled"]:
        m = report.metrics["overall"]
        figures.confusion(m["confusion"], f"accuracy {m['accuracy']:.1%}, macro-F1 "
                                          f"{m['macro_f1']:.2f} ({m['labelled']} clips)",
                          fig_dir / "confusion.png")
    limit = rc.timeline_clips
    by_clip = dict(tuple(frames.groupby(schema.CLIP_ID, sort=True)))
    predicted = dict(zip(table["filename"], table["predict"], strict=True))
    for cid in list(table["filename"])[: limit if limit is not None else None]:
        if cid in by_clip:
            figures.timeline(cid, by_clip[cid], predicted[cid], short(golden.get(cid)) or None,
                             fig_dir / "timelines" / f"{safe_name(cid)}.png")
