"""The report (and a comparison of runs) as one self-contained HTML page.

``report.html`` renders the same :class:`videmo.report.Report` that clips.csv, metrics.json and
summary.txt come from; ``comparison.html`` renders ``videmo compare``'s table. Each page is one
file that opens offline: figures are embedded as base64 PNG data URIs, the stylesheet and the
small sort / filter script (report/templates/report.css, report.js) are inlined, and a
Content-Security-Policy forbids the browser to load anything else, so a page cannot depend on a
network by accident. The only links are in-page anchors and relative paths to files beside the
page (annotations_merged.csv, other runs' report.html).

The HTML comes from Jinja2 templates shipped as package data (report/templates/) with
autoescaping on, so a clip id or a failure reason is text, never markup. Python only turns
pandas tables and metrics into :class:`Table` values (cells of text, a sort key, a link); the
templates lay them out. Figures are the PNGs :func:`videmo.report.build.write_figures` wrote
(matplotlib), read back and embedded.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from videmo import schema
from videmo.evaluate.metrics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL, PRED_CLASSES
from videmo.store import now, safe_name, write_text_atomic

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report, ReportMetrics

REPORT_HTML = "report.html"
COMPARISON_HTML = "comparison.html"
# the browser may load nothing but this page's inline style, inline script and data: images
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")

_env: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    """The Jinja2 environment over the package data report/templates (autoescaped, strict)."""
    global _env
    if _env is None:
        _env = jinja2.Environment(
            loader=jinja2.PackageLoader("videmo.report", "templates"),
            autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        _env.filters["pct"] = pct
    return _env


# ------------------------------------------------------------------ values as text
def missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def pct(value: Any, digits: int = 1) -> str:
    """A rate as a percentage; None / NaN (nothing to rate) as "n/a"."""
    return "n/a" if missing(value) else f"{float(value):.{digits}%}"


def dec(value: Any, digits: int = 3) -> str:
    return "n/a" if missing(value) else f"{float(value):.{digits}f}"


def count(value: Any) -> str:
    return "" if missing(value) else str(int(value))


def interval(low: Any, high: Any, form: Callable[[Any], str] = pct) -> str:
    """A confidence interval as "a - b" ("" when there is none)."""
    return "" if missing(low) or missing(high) else f"{form(low)} - {form(high)}"


def data_uri(path: Path | None) -> str | None:
    """A PNG as a data: URI (None when there is no such file: figures off or not drawn)."""
    if path is None or not Path(path).is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def anchor(clip_id: str) -> str:
    """The element id of a clip's timeline section (safe_name: unique, no spaces)."""
    return "timeline-" + safe_name(clip_id)


# ------------------------------------------------------------------ tables for the templates
@dataclass(frozen=True)
class Cell:
    text: str
    sort: str | None = None  # data-sort: the raw value the script sorts by ("" sorts last)
    href: str | None = None  # an in-page anchor or a relative path, never a URL
    css: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    title: str = ""  # tooltip: what the column means
    numeric: bool = False


@dataclass
class Row:
    cells: list[Cell]
    attrs: dict[str, str] = field(default_factory=dict)  # data-* attributes for the filter


@dataclass
class Table:
    id: str
    columns: list[Column]
    rows: list[Row]
    sortable: bool = False
    caption: str = ""


def sort_key(value: Any) -> str:
    if missing(value):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


CellMaker = Callable[[pd.Series], Cell]


def value(column: str, form: Callable[[Any], str] = str) -> CellMaker:
    """A cell showing ``form(row[column])``, sorted by the raw value."""
    return lambda r: Cell(form(r[column]), sort_key(r[column]))


def ci_cell(low: str, high: str, form: Callable[[Any], str] = pct) -> CellMaker:
    """A confidence interval's cell (empty when the row has none, e.g. an older run)."""
    return lambda r: Cell(interval(r.get(low), r.get(high), form), sort_key(r.get(low)))


def table_of(df: pd.DataFrame, table_id: str, spec: Iterable[tuple[Column, CellMaker]],
             sortable: bool = True, caption: str = "") -> Table:
    """A table with one row per row of ``df`` and one column per (heading, cell maker)."""
    spec = list(spec)
    rows = [Row([make(r) for _, make in spec]) for _, r in df.iterrows()]
    return Table(table_id, [c for c, _ in spec], rows, sortable, caption)


def table_from_frame(df: pd.DataFrame, table_id: str,
                     columns: Iterable[tuple[str, str, Callable[[Any], str]]],
                     sortable: bool = True, caption: str = "") -> Table:
    """A table of ``df``'s columns: (column, heading, formatter) each; sorted by raw values."""
    return table_of(df, table_id, [
        (Column(h, numeric=pd.api.types.is_numeric_dtype(df[c])
                and not pd.api.types.is_bool_dtype(df[c])), value(c, form))
        for c, h, form in columns], sortable, caption)


def key_value_table(table_id: str, items: Iterable[tuple[str, Any]], caption: str = "") -> Table:
    rows = [Row([Cell(str(k)), Cell(v if isinstance(v, str) else json.dumps(v, default=str))])
            for k, v in items]
    return Table(table_id, [Column("key"), Column("value")], rows, False, caption)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A nested config as (dotted key, value) pairs: ``report.labels``, ..."""
    out: list[tuple[str, Any]] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and all(isinstance(x, str) for x in v) and not prefix:
            out.extend(flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


# ------------------------------------------------------------------ the report page
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


CI_HEAD = f"{CI_LEVEL:.0%} CI"


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


def events_table(events: pd.DataFrame, table_id: str) -> Table:
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
    from videmo.annotate.merge import AGREEMENT, EVENTS, WITH_FACE

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


@dataclass
class Timeline:
    clip_id: str
    anchor: str
    image: str | None  # data: URI
    caption: str
    events: Table | None
    blendshapes: str | None = None  # data: URI of the blendshape timeline (features: mesh)


def report_context(report: Report, cfg: Config) -> dict[str, Any]:
    m = report.metrics
    o = m.overall
    obs = report.observers if report.observers is not None and not report.observers.error \
        else None
    events = obs.counts() if obs else {}
    timelines = []
    by_id = report.clips.set_index(report.clips[schema.FILENAME].astype(str))
    for cid in by_id.index:
        fig = report.figures.timelines.get(cid)
        clip_events = obs.events_of(cid) if obs and cid in events else None
        if fig is None and clip_events is None:
            continue
        row = by_id.loc[cid]
        golden = "" if missing(row[schema.GOLDEN]) else f", golden {row[schema.GOLDEN]}"
        timelines.append(Timeline(
            cid, anchor(cid), data_uri(fig),
            f"predicted {row[schema.PREDICT]}{golden}; {row[schema.FRAMES_WITH_FACE]} of "
            f"{row[schema.FRAMES_SAMPLED]} sampled frames with a face",
            events_table(clip_events, f"events-{safe_name(cid)}")
            if clip_events is not None else None,
            data_uri(report.figures.blendshapes.get(cid))))
    linked = {t.clip_id for t in timelines}
    meta = report.run_meta or {}
    run_dir = Path(report.run_dir or cfg.out_dir)
    run_items = [("run directory", str(run_dir)), ("report directory", str(report.out_dir)),
                 ("report written", now()),
                 *((k, meta[k]) for k in ("extract_hash", "created", "updated", "command",
                                          "host") if k in meta),
                 ("labels", m.labels_file or "none (no evaluation)"),
                 ("frame rows", m.frames),
                 ("seconds per clip", dec(m.seconds_per_clip, 2))]
    figures = report.figures
    return {
        "title": f"videmo report: {run_dir.resolve().name}",
        "csp": CSP,
        "notes": report.notes(),
        "counts": counts_items(m),
        "metrics": metric_items(o),
        "labelled": bool(o["labelled"]),
        "ci_method": (f"{CI_LEVEL:.0%} percentile bootstrap over clips ({BOOTSTRAP_RESAMPLES} "
                      f"resamples, numpy seed {BOOTSTRAP_SEED})"),
        "per_class": per_class_table(o),
        "confusion": confusion_table(o),
        "confusion_image": data_uri(figures.confusion),
        "groups": group_table(report),
        "group_images": [(g, data_uri(p)) for g, p in figures.groups.items()],
        "recording_images": [(r, data_uri(p)) for r, p in figures.recordings.items()],
        "clips": clip_table(report, linked, events),
        "statuses": [s for s in (schema.DONE, schema.FAILED, schema.NOT_EXTRACTED)
                     if (report.clips[schema.STATUS] == s).any()],
        "no_face": bool((report.clips[schema.PREDICT] == schema.NO_FACE).any()),
        "failed": m.failed_clips,
        "timelines": timelines,
        "timeline_limit": cfg.report.timeline_clips,
        "figures_on": cfg.report.figures,
        "observers": obs,
        "observer_overall": obs.overall if obs else None,
        "observer_clips": agreement_table(obs.per_clip, schema.CLIP_ID, "agreement-clips",
                                          "clip", linked) if obs else None,
        "observer_people": agreement_table(obs.per_observer, schema.OBSERVER,
                                           "agreement-observers", "observer") if obs else None,
        "observer_list": sorted(obs.joined[schema.OBSERVER].dropna().unique()) if obs else [],
        "run": key_value_table("run", run_items),
        "versions": key_value_table("versions", sorted((meta.get("versions") or {}).items())),
        "models": key_value_table("models", sorted((meta.get("model_sha256") or {}).items())),
        "options": key_value_table("options", flatten(cfg.to_dict())),
        "summary": report.summary(),
    }


def render_report(report: Report, cfg: Config) -> str:
    return environment().get_template("report.html").render(**report_context(report, cfg))


def write_report_html(report: Report, cfg: Config) -> Path:
    """Write ``report.out_dir/report.html`` (atomically) and return its path."""
    path = report.out_dir / REPORT_HTML
    write_text_atomic(path, render_report(report, cfg))
    return path


# ------------------------------------------------------------------ the comparison page
def comparison_table(table: pd.DataFrame, links: dict[str, str]) -> Table:
    """``videmo compare``'s table; each run linked (relative path) to its report.html."""
    def run(r: pd.Series) -> Cell:
        name = str(r["run"])
        return Cell(name, name, links.get(name))

    return table_of(table, "comparison", [
        (Column("run", "a link opens the run's report.html"), run),
        (Column("dataset"), value("dataset")),
        (Column("clips", numeric=True), value("clips", count)),
        (Column("MTCNN?"), value("mtcnn")),
        (Column("accuracy", numeric=True), value("accuracy", pct)),
        (Column("accuracy " + CI_HEAD), ci_cell("accuracy_ci_low", "accuracy_ci_high")),
        (Column("macro-F1", numeric=True), value("macro_f1", dec)),
        (Column("macro-F1 " + CI_HEAD), ci_cell("macro_f1_ci_low", "macro_f1_ci_high", dec)),
        (Column("coverage", numeric=True), value("coverage", pct)),
        (Column("majority baseline", numeric=True), value("majority_baseline", pct)),
        (Column("s / clip", numeric=True), value("seconds_per_clip", lambda v: dec(v, 2))),
        (Column("detector"), value("detector")),
        (Column("frame model", "emotions.model: what scored the faces"),
         value("frame_model")),
        (Column("clip labels by", "report.aggregate, or a classifier of videmo learn"),
         value("classifier")),
        (Column("vs", "the reference row this row is set against (compare.reference)"),
         value("reference", lambda v: "" if missing(v) else str(v))),
        (Column("paired clips", "clips labelled in both rows' reports", numeric=True),
         value("paired_clips", count)),
        (Column("accuracy difference", "this row's accuracy minus the reference's, on the "
                "paired clips, in percentage points", numeric=True),
         value("accuracy_diff", points)),
        (Column("difference " + CI_HEAD), ci_cell("accuracy_diff_ci_low",
                                                   "accuracy_diff_ci_high", points)),
        (Column("McNemar p", "exact McNemar test of the two rows' verdicts on the paired "
                "clips", numeric=True),
         value("mcnemar_p", lambda v: "" if missing(v) else f"{float(v):.3g}"))])


def points(value: Any) -> str:
    """A difference of two rates in percentage points, signed ("" when there is none)."""
    return "" if missing(value) else f"{100 * float(value):+.2f} pp"


def write_comparison_html(table: pd.DataFrame, out: Path, reports: dict[str, Path],
                          figure: Path | None) -> Path:
    """Write ``out/comparison.html``: the table, the figure, links to each run's report.html
    (``reports``: run name -> its report directory; relative links, so the folder can move)."""
    links = {name: os.path.relpath(Path(d) / REPORT_HTML, out).replace(os.sep, "/")
             for name, d in reports.items() if (Path(d) / REPORT_HTML).is_file()}
    context = {"title": f"videmo comparison: {out.name}", "csp": CSP,
               "table": comparison_table(table, links), "image": data_uri(figure),
               "written": now(), "out": str(out),
               "ci_method": (f"{CI_LEVEL:.0%} percentile bootstrap over clips "
                             f"({BOOTSTRAP_RESAMPLES} resamples, numpy seed {BOOTSTRAP_SEED})")}
    path = out / COMPARISON_HTML
    write_text_atomic(path, environment().get_template("comparison.html").render(**context))
    return path
