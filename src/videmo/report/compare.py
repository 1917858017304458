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

Each row is also set against a reference row (:func:`references`) on the clips both labelled,
read from the two reports' clips.csv: the difference in accuracy, its paired bootstrap
interval and McNemar's exact p (:mod:`videmo.evaluate.stats`, as ``videmo learn`` tests its
classifiers against the vote).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from videmo import schema
from videmo.config import Config, ConfigError
from videmo.evaluate.metrics import CI_KEYS
from videmo.evaluate.stats import mcnemar_exact, paired_difference
from videmo.report import figures
from videmo.store import RunDir, write_csv_atomic, write_text_atomic

log = logging.getLogger(__name__)

# against the reference row: its name, the clips both labelled, this row's accuracy minus the
# reference's on them, the paired bootstrap interval of that difference, McNemar's exact p
PAIRED_COLUMNS = ("reference", "paired_clips", "accuracy_diff", "accuracy_diff_ci_low",
                  "accuracy_diff_ci_high", "mcnemar_p")
TABLE_COLUMNS = ("run", "dataset", "clips", "mtcnn", "accuracy", "macro_f1", "coverage",
                 "majority_baseline", "seconds_per_clip", "detector", "frame_model", *CI_KEYS,
                 "classifier", *PAIRED_COLUMNS)


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


def references(names: list[str], datasets: list[str], reference: str | None = None,
               settings: list[Any] | None = None) -> list[str | None]:
    """The row each row is set against: the reference row (``reference``, else the first) on
    the row's own dataset. A row of another dataset takes the row of its dataset with the
    reference's ``settings`` (a comparison job's values of every axis but the dataset), or
    without settings (``--runs``) the first row of its dataset. The reference of a dataset
    has none (None)."""
    ref = names[0] if reference is None else reference
    if ref not in names:
        raise ConfigError(f"compare.reference: no row named {ref!r}; the rows: "
                          f"{', '.join(names)}")
    r = names.index(ref)
    out: list[str | None] = []
    for i, dataset in enumerate(datasets):
        same = [j for j, d in enumerate(datasets) if d == dataset]
        j = r if r in same else next(
            (k for k in same if settings is None or settings[k] == settings[r]), None)
        out.append(None if j is None or j == i else names[j])
    return out


def clip_verdicts(report: Path) -> pd.DataFrame:
    """A report's labelled clips: clip id -> golden label and whether the clip was right (a
    clip without a face, failed or not extracted is wrong, as in its accuracy)."""
    path = report / "clips.csv"
    try:
        clips = pd.read_csv(path, dtype={schema.FILENAME: str})
    except FileNotFoundError:
        raise ConfigError(f"{report} has no clips.csv: rebuild it with `videmo report`") \
            from None
    clips = clips[clips[schema.GOLDEN].notna()]
    return pd.DataFrame({schema.GOLDEN: clips[schema.GOLDEN].astype(str).to_numpy(),
                         schema.CORRECT: (clips[schema.PREDICT] == clips[schema.GOLDEN])
                         .to_numpy()}, index=clips[schema.FILENAME].to_numpy())


def paired(row: pd.DataFrame, ref: pd.DataFrame) -> dict[str, Any]:
    """The paired columns of a row against its reference, over the clips both labelled (the
    same golden label in both: two label files that disagree on a clip leave it out)."""
    both = row.add_suffix("_row").join(ref.add_suffix("_ref"), how="inner")
    both = both[both[schema.GOLDEN + "_row"] == both[schema.GOLDEN + "_ref"]]
    out: dict[str, Any] = {"paired_clips": len(both)}
    if both.empty:
        return {**out, **dict.fromkeys(PAIRED_COLUMNS[2:])}
    a, b = both[schema.CORRECT + "_row"].to_numpy(), both[schema.CORRECT + "_ref"].to_numpy()
    diff, lo, hi = paired_difference(a, b)
    return {**out, "accuracy_diff": _round(diff), "accuracy_diff_ci_low": _round(lo),
            "accuracy_diff_ci_high": _round(hi),
            "mcnemar_p": float(f"{mcnemar_exact(a, b):.4g}")}


def collect(runs: list[tuple], out: Path, reference: str | None = None,
            settings: list[Any] | None = None) -> pd.DataFrame:
    """Tabulate finished runs into OUT/comparison.{csv,md,png,html}: (run directory, dataset,
    row name[, its report directory: by default the run's own]); each row against its
    reference (:func:`references`: ``reference`` names a row, ``settings`` are the rows'
    values of every axis but the dataset)."""
    from videmo.report.html import write_comparison_html

    runs = [(*r, None) if len(r) == 3 else tuple(r) for r in runs]
    rows = [_row(*r) for r in runs]
    reports = {name: rep or report_dir(d) for d, _, name, rep in runs}
    refs = references([r["run"] for r in rows], [r["dataset"] for r in rows], reference,
                      settings)
    wanted = {ref for ref in refs if ref} | {r["run"] for r, ref in zip(rows, refs,
                                                                         strict=True) if ref}
    verdicts = {name: clip_verdicts(reports[name]) for name in wanted}
    for r, ref in zip(rows, refs, strict=True):
        r["reference"] = ref
        r.update(dict.fromkeys(PAIRED_COLUMNS[1:]) if ref is None
                 else paired(verdicts[r["run"]], verdicts[ref]))
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(table, out / "comparison.csv")
    write_text_atomic(out / "comparison.md", to_markdown(table))
    png = figures.comparison(table, out / "comparison.png")
    write_comparison_html(table, out, reports, png)
    return table


def _model_note(r: pd.Series) -> str:
    """The frame model after the run's name when it is not fer (the study's table has no
    column for it)."""
    model = r.get("frame_model")
    return "" if model in (None, "fer") or pd.isna(model) else f" (emotions.model {model})"


def diff_text(r: pd.Series) -> str:
    """``+4.17 pp [-8.33, +16.67] on 6 clips``: the paired difference against the reference,
    in percentage points ("" for a reference; "n/a" without clips both labelled)."""
    ref = r.get("reference")
    if ref is None or pd.isna(ref):
        return ""
    if pd.isna(r.get("accuracy_diff")):
        return "n/a (no clips both labelled)"
    return (f"{100 * r['accuracy_diff']:+.2f} pp [{100 * r['accuracy_diff_ci_low']:+.2f}, "
            f"{100 * r['accuracy_diff_ci_high']:+.2f}] on {int(r['paired_clips'])} clips")


def to_markdown(table: pd.DataFrame) -> str:
    head = ["dataset", "clips", "MTCNN?", "accuracy", "macro-F1", "coverage",
            "majority baseline", "s / clip", "run", "clip labels by", "vs",
            "accuracy difference [95% CI]", "McNemar p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        ref = r.get("reference")
        ref = "" if ref is None or pd.isna(ref) else ref
        lines.append(f"| {r['dataset']} | {r['clips']} | {r['mtcnn']} | "
                     f"{_pct(r['accuracy'], '.2%')} | {_pct(r['macro_f1'], '.3f')} | "
                     f"{_pct(r['coverage'], '.1%')} | {_pct(r['majority_baseline'], '.2%')} "
                     f"| {r['seconds_per_clip']:.2f} | {r['run']}{_model_note(r)} | "
                     f"{r['classifier']} | {ref} | "
                     f"{diff_text(r)} | {_pct(r.get('mcnemar_p'), '.3g') if ref else ''} |")
    return "\n".join(lines) + "\n"
