"""Clip-level metrics against golden labels.

Accuracy counts every labelled clip: a ``no_face`` prediction is wrong (honest about coverage);
``accuracy_covered`` is the same over clips with a face. Macro-F1 averages the three classes'
F1 (a class with neither support nor predictions is left out). The majority baseline is the
accuracy of always predicting the most common golden class.
"""

from __future__ import annotations

from typing import Any

from . import schema

PRED_CLASSES = (*schema.CLASSES, schema.NO_FACE)


def _safe_div(a: float, b: float) -> float:
    return a / b if b else 0.0


def evaluate(predicted: list[str], golden: list[str | None]) -> dict[str, Any]:
    """Metrics over pairs; pairs without a golden label count only towards coverage."""
    n_clips = len(predicted)
    covered = sum(p != schema.NO_FACE for p in predicted)
    pairs = [(p, g) for p, g in zip(predicted, golden, strict=True) if g is not None]
    n = len(pairs)
    correct = sum(p == g for p, g in pairs)
    cov_pairs = [(p, g) for p, g in pairs if p != schema.NO_FACE]
    confusion = {g: {p: 0 for p in PRED_CLASSES} for g in schema.CLASSES}
    for p, g in pairs:
        confusion[g][p] += 1
    per_class = {}
    for c in schema.CLASSES:
        tp = confusion[c][c]
        support = sum(confusion[c].values())
        predicted_c = sum(confusion[g][c] for g in schema.CLASSES)
        precision = _safe_div(tp, predicted_c)
        recall = _safe_div(tp, support)
        f1 = _safe_div(2 * precision * recall, precision + recall)
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1,
                        "support": support, "predicted": predicted_c}
    active = [c for c in schema.CLASSES
              if per_class[c]["support"] or per_class[c]["predicted"]]
    golden_counts = {c: sum(g == c for _, g in pairs) for c in schema.CLASSES}
    majority_class = max(schema.CLASSES, key=lambda c: golden_counts[c]) if n else None
    return {
        "clips": n_clips,
        "labelled": n,
        "clips_with_face": covered,
        "coverage": _safe_div(covered, n_clips),
        "correct": correct,
        "accuracy": _safe_div(correct, n),
        "accuracy_covered": _safe_div(sum(p == g for p, g in cov_pairs), len(cov_pairs)),
        "macro_f1": _safe_div(sum(per_class[c]["f1"] for c in active), len(active)),
        "per_class": per_class,
        "confusion": confusion,
        "golden_counts": golden_counts,
        "predicted_counts": {p: sum(x == p for x in predicted) for p in PRED_CLASSES},
        "majority_class": majority_class,
        "majority_baseline": _safe_div(golden_counts[majority_class], n) if n else 0.0,
    }


def summary_lines(m: dict[str, Any], title: str = "") -> list[str]:
    """A short printed summary of :func:`evaluate`'s result."""
    lines = [title] if title else []
    lines.append(f"clips {m['clips']}, labelled {m['labelled']}, with a face "
                 f"{m['clips_with_face']} (coverage {m['coverage']:.1%})")
    if m["labelled"]:
        lines.append(f"accuracy {m['accuracy']:.2%} ({m['correct']}/{m['labelled']}), "
                     f"on clips with a face {m['accuracy_covered']:.2%}, macro-F1 "
                     f"{m['macro_f1']:.3f}, majority baseline {m['majority_baseline']:.2%} "
                     f"({m['majority_class']})")
        for c, v in m["per_class"].items():
            lines.append(f"  {c:<8} precision {v['precision']:.2f} recall {v['recall']:.2f} "
                         f"f1 {v['f1']:.2f} support {v['support']}")
    return lines
