"""Clip-level metrics on hand-made predictions: every labelled clip counts, fixed classes,
nothing rated without labels."""

from __future__ import annotations

import json

import pytest

from videmo import schema
from videmo.evaluate.metrics import PRED_CLASSES, evaluate, summary_lines

POS, NEG, NEUT = schema.POSITIVE, schema.NEGATIVE, schema.NEUTRAL


def test_failed_and_not_extracted_clips_count_as_wrong():
    predicted = [POS, POS, NEG, schema.NO_FACE, schema.FAILED, schema.NOT_EXTRACTED, NEUT]
    golden = [POS, NEG, NEG, POS, NEUT, NEG, None]  # the last clip has no label
    m = evaluate(predicted, golden)
    assert (m["clips"], m["labelled"], m["done"], m["failed"], m["not_extracted"]) == \
        (7, 6, 5, 1, 1)
    assert m["correct"] == 2
    assert m["accuracy"] == pytest.approx(2 / 6)
    assert m["labelled_with_face"] == 3
    assert m["accuracy_covered"] == pytest.approx(2 / 3)
    assert m["clips_with_face"] == 4 and m["coverage"] == pytest.approx(4 / 7)
    pc = m["per_class"]
    assert (pc[POS]["precision"], pc[POS]["recall"], pc[POS]["f1"]) == pytest.approx(
        (1 / 2, 1 / 2, 1 / 2))
    assert (pc[NEG]["precision"], pc[NEG]["recall"], pc[NEG]["f1"]) == pytest.approx(
        (1.0, 1 / 3, 1 / 2))
    assert (pc[NEUT]["precision"], pc[NEUT]["recall"], pc[NEUT]["f1"]) == (0.0, 0.0, 0.0)
    assert [pc[c]["support"] for c in schema.CLASSES] == [2, 3, 1]
    assert m["macro_f1"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    # every labelled clip is in the confusion matrix, in the column of its prediction
    conf = m["confusion"]
    assert list(conf[POS]) == list(PRED_CLASSES)
    assert sum(sum(row.values()) for row in conf.values()) == 6
    assert conf[POS] == {POS: 1, NEG: 0, NEUT: 0, schema.NO_FACE: 1, schema.FAILED: 0,
                         schema.NOT_EXTRACTED: 0}
    assert conf[NEG] == {POS: 1, NEG: 1, NEUT: 0, schema.NO_FACE: 0, schema.FAILED: 0,
                         schema.NOT_EXTRACTED: 1}
    assert conf[NEUT][schema.FAILED] == 1
    assert m["predicted_counts"] == {POS: 2, NEG: 1, NEUT: 1, schema.NO_FACE: 1,
                                     schema.FAILED: 1, schema.NOT_EXTRACTED: 1}
    assert m["golden_counts"] == {POS: 2, NEG: 3, NEUT: 1}
    assert m["majority_class"] == NEG and m["majority_baseline"] == pytest.approx(3 / 6)


def test_macro_f1_is_over_the_three_classes_even_when_one_never_occurs():
    # neutral is neither a golden label nor predicted: its F1 is 0 and weighs a third
    m = evaluate([POS, NEG, NEG, NEG], [POS, POS, NEG, NEG])
    f1_pos, f1_neg = 2 / 3, 4 / 5  # P 1, R 1/2; P 2/3, R 1
    assert m["per_class"][NEUT] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0,
                                    "predicted": 0}
    assert m["macro_f1"] == pytest.approx((f1_pos + f1_neg) / 3)
    assert m["macro_f1"] != pytest.approx((f1_pos + f1_neg) / 2)  # the "active classes" mean


def test_an_unlabelled_run_has_the_same_keys_and_null_rates():
    labelled = evaluate([POS, NEG], [POS, NEG])
    m = evaluate([POS, POS, schema.NO_FACE, schema.FAILED], [None] * 4)
    assert set(m) == set(labelled)
    for key in ("accuracy", "accuracy_covered", "macro_f1", "majority_baseline",
                "majority_class"):
        assert m[key] is None, key
    assert all(m["per_class"][c]["f1"] is None for c in schema.CLASSES)
    assert m["labelled"] == 0 and m["correct"] == 0
    assert m["coverage"] == pytest.approx(2 / 4)
    assert m["predicted_counts"][POS] == 2 and m["predicted_counts"][schema.FAILED] == 1
    assert '"accuracy": null' in json.dumps(m)
    text = "\n".join(summary_lines(m))
    assert "accuracy n/a, macro-F1 n/a" in text
    assert "0.00%" not in text and "positive 2" in text


def test_summary_says_what_counts_as_wrong():
    m = evaluate([POS, schema.FAILED, schema.NOT_EXTRACTED], [POS, NEG, NEUT])
    text = "\n".join(summary_lines(m))
    assert "clips 3 (1 done, 1 failed, 1 not extracted)" in text
    assert "accuracy 33.33% (1/3 labelled clips" in text


def test_unknown_prediction_is_a_bug_not_a_number():
    with pytest.raises(ValueError, match="predictions outside"):
        evaluate(["happy"], [POS])
