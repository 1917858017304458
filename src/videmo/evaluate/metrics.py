"""Clip-level metrics against golden labels, over every labelled clip of the corpus.

A clip's prediction is one of the three classes, or a value that says why it has none:
``no_face`` (no face in any sampled frame), ``failed`` (its extraction failed) or
``not_extracted`` (never extracted with this config: pending, interrupted, or the run is
unfinished). Those clips are kept and count as wrong, so ``accuracy`` = correct / labelled is
over every labelled clip; ``accuracy_covered`` is the rate over labelled clips with a face vote.

Macro-F1, per-class precision / recall / F1 and the confusion matrix come from scikit-learn with
the fixed classes as ``labels=``: a class that never occurs has F1 0 and still weighs a third of
the macro average (zero_division=0). The confusion matrix's rows are the three golden classes,
its columns the three classes and the three non-class predictions, so every labelled clip is in
it. Without a single golden label, every rate is ``None`` (JSON null, "n/a" when printed), never
0, and the keys stay the same.

**Confidence intervals** (``accuracy_ci_low`` / ``_high``, ``macro_f1_ci_low`` / ``_high``): 95%
percentile bootstrap over clips. The labelled clips are resampled with replacement
``stats.BOOTSTRAP_RESAMPLES`` times by ``numpy.random.default_rng(BOOTSTRAP_SEED)`` (a fixed seed:
the same report gives the same interval), accuracy and macro-F1 are recomputed on each resample
exactly as above (a class absent from a resample's golden and predicted labels has F1 0), and the
interval is the 2.5th and 97.5th percentile. Clips are the unit because clips, not frames, are
the independent draws; clips of one speaker are not independent, so with few speakers the
interval is optimistic. Without labels the four keys are ``None``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from videmo import schema
from videmo.evaluate.stats import (  # noqa: F401  (CI_KEYS: the keys the report writes)
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CI_KEYS,
    CI_LEVEL,
    bootstrap_intervals,
)


def group_of(clip_id: str, pattern: str) -> str:
    """The group (usually the person) of a clip: the first group of ``pattern``
    (report.group_pattern) matched on the clip's file name, the whole match without a group,
    or "other" when it does not match."""
    name = PurePosixPath(clip_id).name
    m = re.search(pattern, name)
    if not m:
        return "other"
    return m.group(1) if m.groups() and m.group(1) is not None else m.group(0)

# predictions that are not a class: a clip without a face vote, and why it has none
NON_CLASS = (schema.NO_FACE, schema.FAILED, schema.NOT_EXTRACTED)
PRED_CLASSES: tuple[str, ...] = (*schema.CLASSES, *NON_CLASS)



def _rate(a: int, b: int) -> float | None:
    return a / b if b else None


def evaluate(predicted: list[str], golden: list[str | None]) -> dict[str, Any]:
    """Metrics of one set of clips. ``predicted`` holds a value of :data:`PRED_CLASSES` per
    clip, ``golden`` its class or None (unlabelled: counted in coverage and predicted counts
    only)."""
    unknown = sorted(set(predicted) - set(PRED_CLASSES))
    if unknown:  # a bug upstream, not a user error
        raise ValueError(f"predictions outside {PRED_CLASSES}: {unknown}")
    n_clips = len(predicted)
    with_face = sum(p in schema.CLASSES for p in predicted)
    pairs = [(p, g) for p, g in zip(predicted, golden, strict=True) if g is not None]
    y_pred = [p for p, _ in pairs]
    y_true = [g for _, g in pairs]
    n = len(pairs)
    correct = sum(p == g for p, g in pairs)
    covered = [(p, g) for p, g in pairs if p in schema.CLASSES]
    classes = list(schema.CLASSES)
    golden_counts = {c: y_true.count(c) for c in classes}
    predicted_counts = {p: predicted.count(p) for p in PRED_CLASSES}
    per_class: dict[str, dict[str, Any]] = {}
    if n:
        # scikit-learn (and SciPy under it) only where metrics are computed: the extract path
        # imports this module's neighbours and must not pay ~1.4 s for them (issue 32)
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=classes, zero_division=0.0)
        matrix = confusion_matrix(y_true, y_pred, labels=list(PRED_CLASSES))
        for i, c in enumerate(classes):
            per_class[c] = {"precision": float(precision[i]), "recall": float(recall[i]),
                            "f1": float(f1[i]), "support": int(support[i]),
                            "predicted": y_pred.count(c)}
        confusion = {g: {p: int(matrix[i, j]) for j, p in enumerate(PRED_CLASSES)}
                     for i, g in enumerate(classes)}
        macro_f1: float | None = float(f1.mean())
        majority_class: str | None = max(classes, key=lambda c: golden_counts[c])
    else:
        per_class = {c: {"precision": None, "recall": None, "f1": None, "support": 0,
                         "predicted": 0} for c in classes}
        confusion = {g: dict.fromkeys(PRED_CLASSES, 0) for g in classes}
        macro_f1 = majority_class = None
    return {
        "clips": n_clips,
        "labelled": n,
        "done": n_clips - predicted_counts[schema.FAILED]
        - predicted_counts[schema.NOT_EXTRACTED],
        "failed": predicted_counts[schema.FAILED],
        "not_extracted": predicted_counts[schema.NOT_EXTRACTED],
        "clips_with_face": with_face,
        "coverage": _rate(with_face, n_clips),
        "correct": correct,
        "accuracy": _rate(correct, n),
        "labelled_with_face": len(covered),
        "accuracy_covered": _rate(sum(p == g for p, g in covered), len(covered)),
        "macro_f1": macro_f1,
        "per_class": per_class,
        "confusion": confusion,
        "golden_counts": golden_counts,
        "predicted_counts": predicted_counts,
        "majority_class": majority_class,
        "majority_baseline": _rate(golden_counts[majority_class], n) if majority_class else None,
        **bootstrap_intervals(y_pred, y_true),
    }


def fmt(value: float | None, spec: str) -> str:
    """A rate as text; ``None`` (nothing to rate) is "n/a"."""
    return "n/a" if value is None else format(value, spec)


def summary_lines(m: dict[str, Any], title: str = "") -> list[str]:
    """A short printed summary of :func:`evaluate`'s result."""
    lines = [title] if title else []
    missing = m["failed"] + m["not_extracted"]
    status = f" ({m['done']} done, {m['failed']} failed, {m['not_extracted']} not extracted)" \
        if missing else ""
    lines.append(f"clips {m['clips']}{status}, labelled {m['labelled']}, with a face "
                 f"{m['clips_with_face']} (coverage {fmt(m['coverage'], '.1%')})")
    if m["labelled"]:
        lines.append(f"accuracy {fmt(m['accuracy'], '.2%')} ({m['correct']}/{m['labelled']} "
                     f"labelled clips; no face, failed and not extracted count as wrong), on "
                     f"the {m['labelled_with_face']} with a face "
                     f"{fmt(m['accuracy_covered'], '.2%')}, macro-F1 {fmt(m['macro_f1'], '.3f')}, "
                     f"majority baseline {fmt(m['majority_baseline'], '.2%')} "
                     f"({m['majority_class']})")
        if m.get("accuracy_ci_low") is not None:
            lines.append(f"{CI_LEVEL:.0%} bootstrap intervals ({BOOTSTRAP_RESAMPLES} resamples "
                         f"of clips, seed {BOOTSTRAP_SEED}): accuracy "
                         f"{m['accuracy_ci_low']:.2%} - {m['accuracy_ci_high']:.2%}, macro-F1 "
                         f"{m['macro_f1_ci_low']:.3f} - {m['macro_f1_ci_high']:.3f}")
        for c, v in m["per_class"].items():
            lines.append(f"  {c:<8} precision {v['precision']:.2f} recall {v['recall']:.2f} "
                         f"f1 {v['f1']:.2f} support {v['support']}")
    else:
        lines.append("accuracy n/a, macro-F1 n/a (no golden labels: set report.labels or pass "
                     "--labels)")
    lines.append("predicted: " + ", ".join(f"{p} {m['predicted_counts'][p]}"
                                          for p in PRED_CLASSES))
    return lines
