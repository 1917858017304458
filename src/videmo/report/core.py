"""The core sections of report.html: corpus, metrics, per class, confusion matrix, groups,
clips, timelines, options and versions (:class:`videmo.report.sections.Section` each).

Each turns what :mod:`videmo.report.build` decided (the :class:`~videmo.report.model.Report`)
into text cells and data URIs for its partial under report/templates/sections/; none rebuilds
a number. The observer events, the classifier and the face mesh contribute their own sections
(:mod:`.annotations`, :mod:`.classifier`, :mod:`.mesh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from videmo import schema
from videmo.evaluate.metrics import CI_LEVEL, PRED_CLASSES
from videmo.report.annotations import events_table
from videmo.report.sections import Section
from videmo.report.tables import (
    CI_HEAD,
    CI_METHOD,
    Cell,
    Column,
    Row,
    Table,
    anchor,
    ci_cell,
    count,
    data_uri,
    dec,
    flatten,
    interval,
    key_value_table,
    missing,
    pct,
    sort_key,
    table_from_frame,
    table_of,
    value,
)
from videmo.store import now, safe_name

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report, ReportMetrics


# ------------------------------------------------------------------ tables
def _reason(row: pd.Series, failed: dict[str, str]) -> str:
    """Why a clip has no class, or what to know about it."""
    cid, status = str(row[schema.FILENAME]), row[schema.STATUS]
    if status == schema.FAILED:
        return failed.get(cid, "failed (no reason recorded)")
    if status == schema.NOT_EXTRACTED:
        return ("not extracted with this config (no done record: pending, interrupted or "
                "another config)")
    notes = []
    if row[schema.PREDICT] == schema.NO_FACE:
        notes.append("no face in any sampled frame")
    if row[schema.TRUNCATED] is True:
        notes.append(f"truncated: decoded more than {schema.TRUNCATED_SHORTFALL:.0%} fewer "
                     "frames than expected (kept)")
    return "; ".join(notes)


def clip_table(report: Report, linked: set[str], events: dict[str, int]) -> Table:
    """The per-clip table: every clip of the corpus, each linked to its timeline when it has
    one; rows carry data-status / data-predict / data-correct for the filter."""
    failed = report.metrics.failed_clips
    columns = [Column("clip", "clip id; a link opens its timeline"), Column("group"),
               Column("golden", "golden label (report.labels)"),
               Column("predicted", "the clip's vote, or why it has none"),
               Column("correct"),
               Column("pos", "frames voting positive", True),
               Column("neg", "frames voting negative", True),
               Column("neut", "frames voting neutral", True),
               Column("faces", "sampled frames with a face / sampled frames", True),
               Column("status", "done / failed / not_extracted"), Column("reason")]
    if events:
        columns.append(Column("events", "observer events (RUN/annotations.csv)", True))
    rows = []
    for _, r in report.clips.iterrows():
        cid = str(r[schema.FILENAME])
        golden = r[schema.GOLDEN]
        correct = r[schema.CORRECT]
        faces = int(r[schema.FRAMES_WITH_FACE])
        sampled = int(r[schema.FRAMES_SAMPLED])
        cells = [Cell(cid, cid, f"#{anchor(cid)}" if cid in linked else None),
                 Cell(str(r[schema.GROUP])),
                 Cell("" if missing(golden) else str(golden)),
                 Cell(str(r[schema.PREDICT]), css=f"p-{r[schema.PREDICT]}"),
                 Cell("" if missing(correct) else ("yes" if correct else "no"),
                      sort_key(correct)),
                 *(Cell(count(r[c]), sort_key(r[c])) for c in schema.CLASS_COUNTS.values()),
                 Cell(f"{faces} / {sampled}", str(faces)),
                 Cell(str(r[schema.STATUS]), css=f"s-{r[schema.STATUS]}"),
                 Cell(_reason(r, failed))]
        if events:
            cells.append(Cell(str(events.get(cid, 0)), str(events.get(cid, 0))))
        attrs = {"data-clip": cid, "data-status": str(r[schema.STATUS]),
                 "data-predict": str(r[schema.PREDICT]),
                 "data-correct": "" if missing(correct) else str(bool(correct)).lower()}
        rows.append(Row(cells, attrs))
    return Table("clips", columns, rows, sortable=True)


def group_table(report: Report) -> Table:
    """groups.csv as a sortable table, the intervals beside their metric."""
    n = [(Column(h, numeric=True), value(c, count)) for c, h in (
        ("clips", "clips"), ("labelled", "labelled"), ("done", "done"), ("failed", "failed"),
        ("not_extracted", "not extracted"), ("clips_with_face", "with a face"))]
    return table_of(report.groups, "groups", [
        (Column("group"), value(schema.GROUP)), *n,
        (Column("coverage", numeric=True), value("coverage", pct)),
        (Column("accuracy", numeric=True), value("accuracy", pct)),
        (Column("accuracy " + CI_HEAD), ci_cell("accuracy_ci_low", "accuracy_ci_high")),
        (Column("macro-F1", numeric=True), value("macro_f1", dec)),
        (Column("macro-F1 " + CI_HEAD), ci_cell("macro_f1_ci_low", "macro_f1_ci_high", dec))])


def per_class_table(overall: dict[str, Any]) -> Table:
    df = pd.DataFrame([{"class": c, **v} for c, v in overall["per_class"].items()])
    return table_from_frame(df, "per-class", [("class", "class", str),
                                              ("precision", "precision", dec),
                                              ("recall", "recall", dec), ("f1", "F1", dec),
                                              ("support", "golden clips", count),
                                              ("predicted", "predicted", count)], False)


def confusion_table(overall: dict[str, Any]) -> Table:
    conf = overall["confusion"]
    cols = [p for p in PRED_CLASSES if p in schema.CLASSES or any(conf[g][p] for g in conf)]
    df = pd.DataFrame([{"golden": g, **{p: conf[g][p] for p in cols}} for g in schema.CLASSES])
    return table_from_frame(df, "confusion", [("golden", "golden \\ predicted", str),
                                              *((p, p, count) for p in cols)], False)


def counts_items(m: ReportMetrics) -> list[tuple[str, str, str]]:
    """Corpus counts as (label, value, tooltip) tiles."""
    o = m.overall
    no_face = o["predicted_counts"][schema.NO_FACE]
    return [("clips", str(o["clips"]), "every clip of the corpus (and any the run recorded)"),
            ("done", str(o["done"]), "extracted with this config"),
            ("failed", str(o["failed"]), "extraction failed: see the reasons below"),
            ("truncated", str(m.truncated), "done, but decoded fewer frames than expected"),
            ("not extracted", str(o["not_extracted"]), "pending, interrupted or another config"),
            ("no face", str(no_face), "done, without a face in any sampled frame"),
            ("labelled", str(o["labelled"]), "clips with a golden label"),
            ("coverage", pct(o["coverage"]), "clips with a face vote / clips")]


def metric_items(o: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Headline metrics as (label, value, interval) tiles."""
    level = f"{CI_LEVEL:.0%} CI "
    acc_ci = interval(o["accuracy_ci_low"], o["accuracy_ci_high"])
    f1_ci = interval(o["macro_f1_ci_low"], o["macro_f1_ci_high"], dec)
    return [("accuracy", pct(o["accuracy"]), level + acc_ci if acc_ci else ""),
            ("macro-F1", dec(o["macro_f1"]), level + f1_ci if f1_ci else ""),
            ("accuracy on clips with a face", pct(o["accuracy_covered"]),
             f"{o['labelled_with_face']} labelled clips with a face"),
            ("majority baseline", pct(o["majority_baseline"]),
             f"always {o['majority_class']}" if o["majority_class"] else "")]


@dataclass
class Timeline:
    """One clip's article in the timelines section."""

    clip_id: str
    anchor: str
    image: str | None  # data: URI
    caption: str
    events: Table | None  # the clip's observer events


def timelines(report: Report) -> list[Timeline]:
    obs = report.observer_events()
    by_id = report.clips.set_index(report.clips[schema.FILENAME].astype(str))
    out = []
    for cid in report.timeline_clips():
        row = by_id.loc[cid]
        clip_events = obs.events_of(cid) if obs else None
        golden = "" if missing(row[schema.GOLDEN]) else f", golden {row[schema.GOLDEN]}"
        out.append(Timeline(
            cid, anchor(cid), data_uri(report.figures.timelines.get(cid)),
            f"predicted {row[schema.PREDICT]}{golden}; {row[schema.FRAMES_WITH_FACE]} of "
            f"{row[schema.FRAMES_SAMPLED]} sampled frames with a face",
            events_table(clip_events, f"events-{safe_name(cid)}")
            if clip_events is not None and len(clip_events) else None))
    return out


# ------------------------------------------------------------------ the sections
def labelled(report: Report) -> bool:
    return bool(report.metrics.overall["labelled"])


def corpus_context(report: Report, cfg: Config) -> dict[str, Any]:
    return {"counts": counts_items(report.metrics), "failed": report.metrics.failed_clips}


def metrics_context(report: Report, cfg: Config) -> dict[str, Any]:
    return {"labelled": labelled(report), "metrics": metric_items(report.metrics.overall),
            "ci_method": CI_METHOD}


def confusion_context(report: Report, cfg: Config) -> dict[str, Any]:
    return {"confusion": confusion_table(report.metrics.overall),
            "confusion_image": data_uri(report.figures.confusion)}


def groups_context(report: Report, cfg: Config) -> dict[str, Any]:
    return {"groups": group_table(report),
            "group_images": [(g, data_uri(p)) for g, p in report.figures.groups.items()]}


def clips_context(report: Report, cfg: Config) -> dict[str, Any]:
    obs = report.observer_events()
    status = report.clips[schema.STATUS]
    return {"clips": clip_table(report, set(report.timeline_clips()),
                                obs.counts() if obs else {}),
            "statuses": [s for s in (schema.DONE, schema.FAILED, schema.NOT_EXTRACTED)
                         if (status == s).any()],
            "no_face": bool((report.clips[schema.PREDICT] == schema.NO_FACE).any()),
            "labelled": labelled(report)}


def timelines_context(report: Report, cfg: Config) -> dict[str, Any]:
    return {"timelines": timelines(report), "timeline_limit": cfg.report.timeline_clips,
            "figures_on": cfg.report.figures}


def provenance_context(report: Report, cfg: Config) -> dict[str, Any]:
    m = report.metrics
    meta = report.run_meta or {}
    run_items = [("run directory", str(run_directory(report, cfg))),
                 ("report directory", str(report.out_dir)),
                 ("report written", now()),
                 *((k, meta[k]) for k in ("extract_hash", "created", "updated", "command",
                                          "host") if k in meta),
                 ("labels", m.labels_file or "none (no evaluation)"),
                 ("frame rows", m.frames),
                 ("seconds per clip", dec(m.seconds_per_clip, 2))]
    return {
        "run": key_value_table("run", run_items),
        "versions": key_value_table("versions", sorted((meta.get("versions") or {}).items())),
        "models": key_value_table("models", sorted((meta.get("model_sha256") or {}).items())),
        "options": key_value_table("options", flatten(cfg.to_dict())),
        "summary": report.summary(),
    }


def run_directory(report: Report, cfg: Config) -> Path:
    return Path(report.run_dir or cfg.out_dir)


CORPUS = Section("corpus", "Corpus", "sections/corpus.html", context=corpus_context)
METRICS = Section("metrics", "Metrics", "sections/metrics.html", context=metrics_context)
PER_CLASS = Section("class-metrics", "Per class", "sections/per_class.html",
                    context=lambda r, c: {"per_class": per_class_table(r.metrics.overall)},
                    available=labelled)
CONFUSION = Section("confusion-matrix", "Confusion matrix", "sections/confusion.html",
                    context=confusion_context, available=labelled)
GROUPS = Section("groups", "Groups", "sections/groups.html", context=groups_context)
CLIPS = Section("clip-list", "Clips", "sections/clips.html", context=clips_context)
TIMELINES = Section("timelines", "Timelines", "sections/timelines.html",
                    context=timelines_context)
PROVENANCE = Section("provenance", "Options and versions", "sections/provenance.html",
                     context=provenance_context)
