"""The report (and a comparison of runs) as one self-contained HTML page.

``report.html`` renders the same :class:`videmo.report.Report` that clips.csv, metrics.json and
summary.txt come from; ``comparison.html`` renders ``videmo compare``'s table. Each page is one
file that opens offline: figures are embedded as base64 PNG data URIs, the stylesheet and the
small sort / filter script (report/templates/report.css, report.js) are inlined, and a
Content-Security-Policy forbids the browser to load anything else, so a page cannot depend on a
network by accident. The only links are in-page anchors and relative paths to files beside the
page (annotations_merged.csv, other runs' report.html).

report.html is a list of sections (:mod:`videmo.report.sections`): the page lays out the
warnings, a table of contents and each available section's body; what a section shows is its
own (its context and its partial under report/templates/sections/). The built-in sections are
registered below, in page order; the recordings (clips cut from long recordings), the observer
events, the classifier and the face mesh contribute theirs from their modules. The HTML comes
from Jinja2 templates shipped as package data (report/templates/) with autoescaping on, so a
clip id or a failure reason is text, never markup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd
from markupsafe import Markup

from videmo.report import core
from videmo.report.annotations import OBSERVERS
from videmo.report.classifier import CLASSIFIER
from videmo.report.face_size import FACE_SIZE
from videmo.report.mesh import MESH
from videmo.report.sections import register, sections_of
from videmo.report.segmented import RECORDINGS
from videmo.report.tables import (
    CI_HEAD,
    CI_METHOD,
    Cell,
    Column,
    Table,
    anchor,
    ci_cell,
    count,
    data_uri,
    dec,
    missing,
    pct,
    table_of,
    value,
)
from videmo.store import now, write_text_atomic

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report

__all__ = ["CSP", "anchor", "render_report", "write_comparison_html", "write_report_html"]

REPORT_HTML = "report.html"
COMPARISON_HTML = "comparison.html"
# the browser may load nothing but this page's inline style, inline script and data: images
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")

# the page, top to bottom
for _section in (core.CORPUS, FACE_SIZE, core.METRICS, core.PER_CLASS, core.CONFUSION, core.GROUPS,
                 RECORDINGS, OBSERVERS, CLASSIFIER, core.CLIPS, core.TIMELINES, MESH,
                 core.PROVENANCE):
    register(_section)

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


# ------------------------------------------------------------------ the report page
@dataclass(frozen=True)
class RenderedSection:
    anchor: str
    title: str
    body: Markup


def report_context(report: Report, cfg: Config) -> dict[str, Any]:
    """The page's own context: its title, warnings and the rendered available sections."""
    env = environment()
    return {
        "title": f"videmo report: {core.run_directory(report, cfg).resolve().name}",
        "csp": CSP,
        "notes": report.notes(),
        "sections": [RenderedSection(s.anchor, s.title, s.render(env, report, cfg))
                     for s in sections_of(report)],
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
               "ci_method": CI_METHOD}
    path = out / COMPARISON_HTML
    write_text_atomic(path, environment().get_template("comparison.html").render(**context))
    return path
