"""Tabulate finished runs like the study: the comparison table and chart of ``videmo
compare`` (running the variants is :mod:`videmo.execute.compare`'s; this module only reads
finished runs and their reports).

Output: ``comparison.csv``, ``comparison.md`` and ``comparison.png`` with the study's columns
(dataset, clips, MTCNN?, accuracy) plus macro-F1, coverage, majority baseline, seconds per
clip, the 95% bootstrap intervals of accuracy and macro-F1 and ``classifier`` (what labelled
the clips: the ``report.aggregate`` rule, or a model of ``videmo learn`` as ``name
(features)``: vary ``report.classifier`` to get classifiers as rows), and ``comparison.html``
(the table and figure as one self-contained page, each run linked to its report.html;
:mod:`videmo.report.html`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from videmo.config import Config, ConfigError
from videmo.evaluate.metrics import CI_KEYS
from videmo.report import figures
from videmo.store import RunDir, write_csv_atomic, write_text_atomic

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("run", "dataset", "clips", "mtcnn", "accuracy", "macro_f1", "coverage",
                 "majority_baseline", "seconds_per_clip", "detector", "frame_model", *CI_KEYS,
                 "classifier")


def report_dir(run_dir: Path) -> Path:
    """Where a run's report is (``report.out`` of its config, else RUN/report)."""
    run = RunDir(run_dir)
    cfg: Config = run.config()
    return Path(cfg.resolve(cfg.report.out) or run.path / "report")


def _row(run_dir: Path, dataset: str | None, name: str,
         report: Path | None = None) -> dict[str, Any]:
    run = RunDir(run_dir)
    cfg: Config = run.config()
    metrics_path = (report or report_dir(run_dir)) / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} has no report yet: run `videmo report {run_dir}`") from None
    m = metrics["overall"]
    roots = cfg.corpus.paths
    return {
        "run": name,
        "dataset": dataset or (PurePosixPath(roots[0]).name if roots else "?"),
        "clips": m["clips"],
        "mtcnn": "yes" if cfg.faces.detector == "mtcnn" else "no",
        "accuracy": _round(m["accuracy"]),
        "macro_f1": _round(m["macro_f1"]),
        "coverage": _round(m["coverage"]),
        "majority_baseline": _round(m["majority_baseline"]),
        "seconds_per_clip": round(metrics["seconds_per_clip"] or 0.0, 3),
        "detector": cfg.faces.detector,
        "frame_model": cfg.emotions.model,
        **{k: _round(m.get(k)) for k in CI_KEYS},  # reports before the intervals: None
        "classifier": clip_labels_by(metrics),
    }


def clip_labels_by(metrics: dict[str, Any]) -> str:
    """What labelled the clips of a report: a classifier of videmo learn as ``name
    (features)`` (report.classifier), else ``report.aggregate`` (e.g. majority)."""
    cls = metrics.get("classifier")
    if cls:
        return f"{cls['classifier']} ({cls['features']})"
    return str((metrics.get("report_options") or {}).get("aggregate", "majority"))


def _round(value: float | None) -> float | None:
    """A rate from metrics.json; None (an unlabelled run: nothing to rate) stays None."""
    return None if value is None else round(value, 4)


def _pct(value: Any, spec: str) -> str:
    return "n/a" if value is None or pd.isna(value) else format(value, spec)


def collect(runs: list[tuple], out: Path) -> pd.DataFrame:
    """Tabulate finished runs into OUT/comparison.{csv,md,png,html}: (run directory, dataset,
    row name[, its report directory: by default the run's own])."""
    from videmo.report.html import write_comparison_html

    runs = [(*r, None) if len(r) == 3 else tuple(r) for r in runs]

    table = pd.DataFrame([_row(*r) for r in runs], columns=list(TABLE_COLUMNS))
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(table, out / "comparison.csv")
    write_text_atomic(out / "comparison.md", to_markdown(table))
    png = figures.comparison(table, out / "comparison.png")
    write_comparison_html(table, out, {name: rep or report_dir(d) for d, _, name, rep in runs},
                          png)
    return table


def _model_note(r: pd.Series) -> str:
    """The frame model after the run's name when it is not fer (the study's table has no
    column for it)."""
    model = r.get("frame_model")
    return "" if model in (None, "fer") or pd.isna(model) else f" (emotions.model {model})"


def to_markdown(table: pd.DataFrame) -> str:
    head = ["dataset", "clips", "MTCNN?", "accuracy", "macro-F1", "coverage",
            "majority baseline", "s / clip", "run", "clip labels by"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        lines.append(f"| {r['dataset']} | {r['clips']} | {r['mtcnn']} | "
                     f"{_pct(r['accuracy'], '.2%')} | {_pct(r['macro_f1'], '.3f')} | "
                     f"{_pct(r['coverage'], '.1%')} | {_pct(r['majority_baseline'], '.2%')} "
                     f"| {r['seconds_per_clip']:.2f} | {r['run']}{_model_note(r)} | "
                     f"{r['classifier']} |")
    return "\n".join(lines) + "\n"
