"""Mapping, votes, ties, intervals, balancing, labels, groups and metrics on hand-made tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.metrics import evaluate
from videmo.pipeline import frame_table
from videmo.report import group_of
from videmo.vote import balance, break_tie, clip_votes, frame_labels, target_counts

M = dict(schema.STUDY_MAPPING)
E = schema.EMOTIONS


def probs(**kw):
    """Seven probabilities: named ones as given, the rest share what is left."""
    rest = (1 - sum(kw.values())) / (7 - len(kw))
    return [kw.get(e, rest) for e in E]


def rows_for(clip, frames):
    """frames: list of (frame_index, probs or None for no face)."""
    out = []
    for idx, p in frames:
        if p is None:
            out.append((clip, idx, idx / 30, 0, -1, None, None, None, None, np.nan,
                        *([np.nan] * 7)))
        else:
            out.append((clip, idx, idx / 30, 1, 0, 10, 10, 50, 50, np.nan, *p))
    return out


HAPPY, ANGRY, NEUTRAL = probs(happy=0.9), probs(angry=0.9), probs(neutral=0.9)
# top is fear (-> neutral), but summed: positive 0.5 > neutral 0.4 (fear 0.3 + sad/neutral)
SPLIT = [0.05, 0.05, 0.3, 0.25, 0.05, 0.25, 0.05]


def test_frame_labels_top_vs_sum():
    df = frame_table(rows_for("a", [(0, HAPPY), (1, ANGRY), (2, None), (3, SPLIT)]))
    assert list(frame_labels(df, M, "top")) == ["positive", "negative", "neutral"]
    assert list(frame_labels(df, M, "sum")) == ["positive", "negative", "positive"]


def test_majority_counts_no_face_and_mapping():
    df = frame_table(rows_for("a", [(0, HAPPY), (20, HAPPY), (40, ANGRY), (60, None)])
                     + rows_for("b", [(0, None), (20, None)]))
    v = clip_votes(df, ["a", "b", "c"], M).set_index(schema.CLIP_ID)
    assert v.loc["a", "predict"] == "positive"
    assert (v.loc["a", "pos"], v.loc["a", "neg"], v.loc["a", "neut"]) == (2, 1, 0)
    assert v.loc["b", "predict"] == v.loc["c", "predict"] == schema.NO_FACE
    assert v.loc["b", "face_rows"] == 0
    custom = {**M, "happy": "neutral"}
    assert clip_votes(df, ["a"], custom)["predict"][0] == "neutral"


def test_tie_rules():
    # one happy frame (0.9) vs one angry frame at 0.6: tied 1-1
    weak_angry = probs(angry=0.6)
    df = frame_table(rows_for("a", [(0, HAPPY), (1, weak_angry)]))
    pick = {t: clip_votes(df, ["a"], M, tie=t)["predict"][0]
            for t in ("probability", "order", "neutral")}
    # summed positive = 0.9 + 0.4/6*2 + ..., negative = angry+disgust: 0.6+..: positive wins
    assert pick == {"probability": "positive", "order": "positive", "neutral": "positive"}
    df2 = frame_table(rows_for("a", [(0, weak_angry), (1, NEUTRAL)]))
    assert clip_votes(df2, ["a"], M, tie="neutral")["predict"][0] == "neutral"
    assert clip_votes(df2, ["a"], M, tie="order")["predict"][0] == "negative"
    assert break_tie(["neutral", "negative"], {"negative": 1.0, "neutral": 2.0},
                     "probability") == "neutral"
    assert break_tie(["neutral", "negative"], {"negative": 2.0, "neutral": 2.0},
                     "probability") == "negative"  # equal: class order


def test_mean_and_interval_aggregation():
    # majority of frames is angry (3 vs 2) but the mean favours happy strongly
    frames = [(0, HAPPY), (1, probs(happy=1.0)), (2, probs(angry=0.4)), (3, probs(angry=0.4)),
              (4, probs(angry=0.4))]
    df = frame_table(rows_for("a", frames))
    assert clip_votes(df, ["a"], M)["predict"][0] == "negative"
    assert clip_votes(df, ["a"], M, aggregate="mean")["predict"][0] == "positive"
    # intervals of 1000 frames: [happy x3] [angry x1] [angry x1]  -> intervals vote negative 2-1,
    # while the frame majority is positive 3-2
    frames = [(0, HAPPY), (10, HAPPY), (20, HAPPY), (1000, ANGRY), (2000, ANGRY)]
    df = frame_table(rows_for("a", frames))
    assert clip_votes(df, ["a"], M)["predict"][0] == "positive"
    v = clip_votes(df, ["a"], M, aggregate="interval", interval_frames=1000)
    assert v["predict"][0] == "negative" and v["intervals"][0] == 3


def test_target_counts_and_balance():
    assert target_counts(10, {"positive": 1, "negative": 1, "neutral": 1}) == {
        "positive": 4, "negative": 3, "neutral": 3}
    assert sum(target_counts(7, {"positive": 0.2, "negative": 0.5, "neutral": 0.3}).values()) == 7
    # six clips, all voted neutral; balancing to uniform gives 2/2/2 by rank of class share
    shares = {"a": (5, 0, 5), "b": (4, 1, 5), "c": (0, 5, 5), "d": (1, 4, 5), "e": (0, 0, 10),
              "f": (1, 1, 8)}
    votes = pd.DataFrame([{schema.CLIP_ID: k, "predict": "neutral", "pos": p, "neg": n,
                           "neut": u, "face_rows": 10} for k, (p, n, u) in shares.items()])
    votes.loc[len(votes)] = {schema.CLIP_ID: "g", "predict": schema.NO_FACE, "pos": 0,
                             "neg": 0, "neut": 0, "face_rows": 0}
    out = dict(zip(votes[schema.CLIP_ID], balance(votes, dict.fromkeys(schema.CLASSES, 1.0)),
                   strict=True))
    assert out == {"a": "positive", "b": "positive", "c": "negative", "d": "negative",
                   "e": "neutral", "f": "neutral", "g": schema.NO_FACE}


@pytest.mark.parametrize(("clip_id", "group"), [("biden_58.0", "biden"),
                                                ("2020/trump_12", "trump"),
                                                ("1001_DFA_ANG_XX", "1001"), ("solo", "solo")])
def test_group_pattern(clip_id, group):
    assert group_of(clip_id, r"^([^_]+)") == group


def test_metrics_against_hand_computed_values():
    predicted = ["positive", "positive", "negative", "neutral", "neutral", schema.NO_FACE]
    golden = ["positive", "negative", "negative", "neutral", "positive", "neutral"]
    m = evaluate(predicted, golden)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["accuracy_covered"] == pytest.approx(3 / 5)
    assert m["coverage"] == pytest.approx(5 / 6)
    pc = m["per_class"]
    assert pc["positive"]["precision"] == pytest.approx(1 / 2)
    assert pc["positive"]["recall"] == pytest.approx(1 / 2)
    assert pc["negative"]["precision"] == pytest.approx(1.0)
    assert pc["negative"]["recall"] == pytest.approx(1 / 2)
    assert pc["neutral"]["precision"] == pytest.approx(1 / 2)
    assert pc["neutral"]["recall"] == pytest.approx(1 / 2)
    f1 = {"positive": 0.5, "negative": 2 / 3, "neutral": 0.5}
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert m["confusion"]["neutral"][schema.NO_FACE] == 1
    assert m["confusion"]["positive"]["neutral"] == 1
    assert m["majority_baseline"] == pytest.approx(2 / 6)


def test_report_on_sample_run_matches_a_direct_count(tmp_path, sample_corpus, capsys):
    (tmp_path / "labels.csv").write_text(
        "clip,label\n" + "".join(f"{p.stem},{p.stem.split('_')[2].lower()}\n"
                                 for p in sorted(sample_corpus.glob("*.flv")))
        .replace("ang", "angry").replace("dis", "disgust").replace("fea", "fear")
        .replace("hap", "happy").replace("neu,", "neutral,").replace(",neu\n", ",neutral\n"))
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{sample_corpus}]}}\nsampling: {{every_n: 10}}\n"
                   f"run: {{out: {tmp_path / 'run'}}}\nreport: {{labels: labels.csv, "
                   f"timeline_clips: 2}}\n")
    assert main(["run", str(job), "--no-progress"]) == 0
    rep = tmp_path / "run" / "report"
    clips = pd.read_csv(rep / "clips.csv")
    assert list(clips.columns[:6]) == ["filename", "predict", "golden", "pos", "neg", "neut"]
    frames = pd.read_parquet(tmp_path / "run" / "frames.parquet")
    top = frames[list(E)].to_numpy().argmax(axis=1)
    frames["cls"] = [M[E[i]] for i in top]
    for _, r in clips.iterrows():
        f = frames[frames[schema.CLIP_ID] == r["filename"]]
        assert r["frames_sampled"] == f[schema.FRAME_INDEX].nunique()
        assert r["frames_with_face"] == (f[schema.FACE_INDEX] >= 0).sum()
        assert (r["pos"], r["neg"], r["neut"]) == tuple(
            int((f["cls"] == c).sum()) for c in schema.CLASSES)
    assert set(clips["golden"]) == {"Pos", "Neg", "Neut"}
    metrics = json.loads((rep / "metrics.json").read_text())
    assert metrics["overall"]["labelled"] == 6
    assert metrics["overall"]["accuracy"] == pytest.approx(clips["correct"].mean())
    figs = sorted(p.relative_to(rep).as_posix() for p in rep.rglob("*.png"))
    assert "figures/confusion.png" in figs and len(figs) == 4  # group, confusion, 2 timelines
    assert all((rep / f).stat().st_size > 10_000 for f in figs)
    # the same report with other options, without touching a video
    capsys.readouterr()
    assert main(["report", str(tmp_path / "run"), "--set", "report.balance=uniform",
                 "--out", str(tmp_path / "rep2")]) == 0
    balanced = pd.read_csv(tmp_path / "rep2" / "clips.csv")
    assert balanced["predict"].value_counts().to_dict() == {"Pos": 2, "Neg": 2, "Neut": 2}
    assert main(["report", str(tmp_path / "run"), "--set", "sampling.every_n=3"]) == 2


def test_compare_sample(tmp_path, capsys):
    from .conftest import REPO

    base = tmp_path / "base.yaml"
    base.write_text(f"corpus: {{paths: [{REPO / 'data/sample/crema-d'}]}}\n"
                    f"sampling: {{every_n: 15}}\n"
                    f"report: {{labels: {REPO / 'data/sample/crema-d/labels.csv'}, "
                    f"figures: false}}\n")
    job = tmp_path / "cmp.yaml"
    job.write_text(f"compare:\n  base: base.yaml\n  out: {tmp_path / 'cmp'}\n"
                   f"  vary:\n    faces.detector: [haar, mtcnn]\n")
    assert main(["compare", str(job), "--no-progress"]) == 0
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert list(table["mtcnn"]) == ["no", "yes"] and list(table["clips"]) == [6, 6]
    assert table["accuracy"].between(0, 1).all() and (table["coverage"] == 1).all()
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 10_000
    assert "| crema-d | 6 | yes |" in (tmp_path / "cmp" / "comparison.md").read_text()
