"""Expressive-frame rules (report.aggregate: expressive, confident, peak) on simulated clips
where the answer is known, and on the edges: still photos, neutral clips, group baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from videmo import config as config_mod
from videmo import schema
from videmo.evaluate.rules import baselines, rule_labels
from videmo.evaluate.vote import class_probabilities, clip_votes, face_rows
from videmo.extract.pipeline import frame_table
from videmo.report.build import build_clip_table

M = schema.STUDY_MAPPING
RULES = config_mod.RulesConfig()
E = {e: i for i, e in enumerate(schema.EMOTIONS)}


def _vec(**kw) -> np.ndarray:
    v = np.full(len(schema.EMOTIONS), 0.01)
    for k, x in kw.items():
        v[E[k]] = x
    return v / v.sum()


REST = _vec(neutral=0.62, sad=0.14, angry=0.12, fear=0.05, happy=0.03, surprise=0.02)
PEAK = {schema.POSITIVE: _vec(happy=0.82, neutral=0.08, surprise=0.05),
        schema.NEGATIVE: _vec(angry=0.62, disgust=0.06, sad=0.12, neutral=0.1, fear=0.08)}


def simulate(rng: np.random.Generator, label: str, n: int, concentration: float = 40.0):
    """One clip's seven-probability rows: onset-to-peak (rest, then a ramp over the last 40%
    of frames to the peak, so only the last few frames show the emotion clearly) or, for
    neutral, a resting face throughout. Rows are Dirichlet draws around the mean."""
    rows = []
    ramp_start = int(n * 0.6)
    for i in range(n):
        if label == schema.NEUTRAL or i < ramp_start:
            mean = REST
        else:
            t = (i - ramp_start + 1) / (n - ramp_start)
            mean = (1 - t) * REST + t * PEAK[label]
        rows.append(rng.dirichlet(mean * concentration))
    return rows


def table(clips: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    recs = []
    for cid, rows in clips.items():
        for i, p in enumerate(rows):
            recs.append((cid, 5 * i, i / 6.0, 1, 0, 10, 10, 50, 50, np.nan, *map(float, p)))
    return frame_table(recs).to_pandas()


def corpus(seed: int, n_clips: int = 300):
    rng = np.random.default_rng(seed)
    golden, clips = {}, {}
    for k in range(n_clips):
        label = schema.CLASSES[k % 3]
        cid = f"p{k % 25}_{k}"
        clips[cid] = simulate(rng, label, int(rng.integers(10, 40)))
        golden[cid] = label
    return table(clips), golden


def accuracy(frames, golden, aggregate, rules=RULES, only=None) -> float:
    ids = sorted(golden)
    v = clip_votes(frames, ids, M, aggregate=aggregate, rules=rules).set_index(schema.CLIP_ID)
    keep = [c for c in ids if only is None or golden[c] == only]
    return float(np.mean([v.loc[c, schema.PREDICT] == golden[c] for c in keep]))


def test_rules_find_a_short_peak_that_the_majority_vote_misses():
    frames, golden = corpus(seed=7)
    vote = accuracy(frames, golden, "majority")
    assert vote < 0.6  # most frames are the resting face: the vote says neutral
    for rule in ("expressive", "confident", "peak"):
        acc = accuracy(frames, golden, rule)
        assert acc >= 0.9, (rule, acc, vote)
        # no loss on the truly neutral clips
        assert accuracy(frames, golden, rule, only=schema.NEUTRAL) >= \
            accuracy(frames, golden, "majority", only=schema.NEUTRAL) - 0.02, rule


def test_a_still_photo_keeps_its_frame_label():
    """One frame: nothing rises over a baseline made of that frame; the rule abstains and the
    fallback (the vote) labels it, for every class."""
    photos = {f"photo_{c}": [p] for c, p in [("pos", PEAK[schema.POSITIVE]),
                                             ("neg", PEAK[schema.NEGATIVE]), ("neu", REST)]}
    frames = table(photos)
    ids = sorted(photos)
    vote = clip_votes(frames, ids, M)[schema.PREDICT].tolist()
    assert vote == [schema.NEGATIVE, schema.NEUTRAL, schema.POSITIVE]
    for rule in ("expressive", "peak"):
        v = clip_votes(frames, ids, M, aggregate=rule, rules=RULES)
        assert v[schema.PREDICT].tolist() == vote
        assert set(v[schema.DECIDED_BY]) == {"majority"}
    # confident needs no baseline: it labels the expressive photos itself
    v = clip_votes(frames, ids, M, aggregate="confident", rules=RULES).set_index(schema.CLIP_ID)
    assert v.loc["photo_pos", schema.DECIDED_BY] == "confident"
    assert v.loc["photo_neu", schema.DECIDED_BY] == "majority"
    assert v[schema.PREDICT].tolist() == vote


def test_a_neutral_clip_with_a_passing_twitch_stays_neutral():
    rest = [REST] * 12
    twitch = rest[:5] + [_vec(angry=0.45, neutral=0.35, fear=0.1)] + rest[6:]
    frames = table({"a": twitch})
    for rule in ("expressive", "confident", "peak"):
        v = clip_votes(frames, ["a"], M, aggregate=rule, rules=RULES)
        assert v[schema.PREDICT][0] == schema.NEUTRAL, rule


def test_the_peak_frames_and_the_decision_are_reported():
    rest = [REST] * 8
    peak = [PEAK[schema.POSITIVE]] * 3
    frames = table({"a": rest + peak + rest})  # frame indices 0, 5, ... 90
    v = clip_votes(frames, ["a"], M, aggregate="peak", rules=RULES)
    assert v[schema.PREDICT][0] == schema.POSITIVE
    assert v[schema.DECIDED_BY][0] == "peak"
    assert v[schema.PEAK_FRAMES][0] == "40 45 50"
    e = clip_votes(frames, ["a"], M, aggregate="expressive", rules=RULES)
    # top 20% of 19 rows: 4 (at least 3); the fourth is the earliest of the equal rest rows
    assert e[schema.PEAK_FRAMES][0] == "0 40 45 50"
    m = clip_votes(frames, ["a"], M)
    assert m[schema.PREDICT][0] == schema.NEUTRAL and m[schema.PEAK_FRAMES][0] == ""


def test_min_rise_makes_a_rule_abstain():
    frames, golden = corpus(seed=3, n_clips=60)
    strict = config_mod.RulesConfig(min_rise=1.0)  # nothing can rise a full probability unit
    assert accuracy(frames, golden, "expressive", strict) == accuracy(frames, golden,
                                                                      "majority")
    v = clip_votes(frames, sorted(golden), M, aggregate="expressive", rules=strict)
    assert set(v[schema.DECIDED_BY]) == {"majority"}
    mean = config_mod.RulesConfig(min_rise=1.0, fallback="mean")
    assert accuracy(frames, golden, "expressive", mean) == accuracy(frames, golden, "mean")


def test_baselines_use_the_least_expressive_rows_of_each_unit():
    rows = [_vec(neutral=0.9), _vec(neutral=0.8), _vec(angry=0.7), _vec(angry=0.8)]
    frames = face_rows(table({"a": rows[:2], "b": rows[2:]}))
    p = class_probabilities(frames, M)[list(schema.CLASSES)].to_numpy()
    n, neu = schema.CLASSES.index(schema.NEGATIVE), schema.CLASSES.index(schema.NEUTRAL)
    by_clip = baselines(p, frames[schema.CLIP_ID].to_numpy(), 0.5)
    assert by_clip["a"][neu] == pytest.approx(p[0][neu])  # the more neutral of a's two rows
    assert by_clip["b"][n] == pytest.approx(p[2][n])  # b's least angry row
    one_person = baselines(p, np.asarray(["x"] * 4), 0.25)
    assert one_person["x"] == pytest.approx(p[0])
    assert baselines(p, np.asarray(["x"] * 4), 1.0)["x"] == pytest.approx(p.mean(axis=0))


def test_a_group_baseline_reads_a_rise_against_the_persons_other_clips():
    """Clip b is expressive from its first frame (a smile throughout): against its own rows
    nothing rises, against the person's neutral clip a it does."""
    smile = [_vec(happy=0.6, neutral=0.25, sad=0.05)] * 6
    frames = table({"p1_a": [REST] * 6, "p1_b": smile})
    groups = {"p1_a": "p1", "p1_b": "p1"}
    rows = face_rows(frames)
    p3 = class_probabilities(rows, M)
    own = rule_labels(rows, p3, "expressive", RULES)
    group = rule_labels(rows, p3, "expressive", config_mod.RulesConfig(baseline="group"),
                        groups)
    assert own["p1_b"].label is None and own["p1_b"].strength == pytest.approx(0.0)
    assert group["p1_b"].label == schema.POSITIVE and group["p1_b"].strength > 0.3
    assert group["p1_a"].label is None


def test_clip_table_carries_the_rule_columns():
    frames, golden = corpus(seed=1, n_clips=9)
    rc = config_mod.from_dict({"report": {"aggregate": "expressive"}}).report
    t = build_clip_table(frames, dict.fromkeys(sorted(golden), schema.DONE), rc, golden)
    assert list(t.columns) == list(schema.CLIP_TABLE_COLUMNS)
    assert set(t[schema.DECIDED_BY]) <= {"expressive", "majority"}
    assert t[schema.PEAK_FRAMES].str.len().gt(0).all()


def test_unknown_aggregate_is_a_config_error_naming_the_choices():
    with pytest.raises(config_mod.ConfigError, match="expressive"):
        config_mod.from_dict({"report": {"aggregate": "expresive"}})
    with pytest.raises(config_mod.ConfigError, match="report.rules.baseline"):
        config_mod.from_dict({"report": {"rules": {"baseline": "person"}}})
