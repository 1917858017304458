"""Mapping, votes, ties, intervals, balancing, labels, groups and metrics on hand-made tables."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.config import ConfigError
from videmo.evaluate.metrics import evaluate, group_of
from videmo.evaluate.vote import balance, break_tie, clip_votes, frame_labels, target_counts
from videmo.extract.pipeline import frame_table
from videmo.report.build import build_report
from videmo.store import RunDir, write_parquet_atomic, write_text_atomic

from .conftest import make_config

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
    df = frame_table(rows_for("a", [(0, HAPPY), (1, ANGRY), (2, None), (3, SPLIT)])).to_pandas()
    assert list(frame_labels(df, M, "top")) == ["positive", "negative", "neutral"]
    assert list(frame_labels(df, M, "sum")) == ["positive", "negative", "positive"]


def test_majority_counts_no_face_and_mapping():
    df = frame_table(rows_for("a", [(0, HAPPY), (20, HAPPY), (40, ANGRY), (60, None)])
                     + rows_for("b", [(0, None), (20, None)])).to_pandas()
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
    df = frame_table(rows_for("a", [(0, HAPPY), (1, weak_angry)])).to_pandas()
    pick = {t: clip_votes(df, ["a"], M, tie=t)["predict"][0]
            for t in ("probability", "order", "neutral")}
    # summed positive = 0.9 + 0.4/6*2 + ..., negative = angry+disgust: 0.6+..: positive wins
    assert pick == {"probability": "positive", "order": "positive", "neutral": "positive"}
    df2 = frame_table(rows_for("a", [(0, weak_angry), (1, NEUTRAL)])).to_pandas()
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
    df = frame_table(rows_for("a", frames)).to_pandas()
    assert clip_votes(df, ["a"], M)["predict"][0] == "negative"
    assert clip_votes(df, ["a"], M, aggregate="mean")["predict"][0] == "positive"
    # intervals of 1000 frames: [happy x3] [angry x1] [angry x1]  -> intervals vote negative 2-1,
    # while the frame majority is positive 3-2
    frames = [(0, HAPPY), (10, HAPPY), (20, HAPPY), (1000, ANGRY), (2000, ANGRY)]
    df = frame_table(rows_for("a", frames)).to_pandas()
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
    # each clip's vote, counted here from the frames: majority of the mapped top emotion, a tie
    # to the larger summed probability (report.tie: probability), then class order
    golden = {p.stem: M[{"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy",
                         "NEU": "neutral", "SAD": "sad"}[p.stem.split("_")[2]]]
              for p in sample_corpus.glob("*.flv")}
    expected = {}
    for cid in golden:
        f = frames[(frames[schema.CLIP_ID] == cid) & (frames[schema.FACE_INDEX] >= 0)]
        votes = {c: int((f["cls"] == c).sum()) for c in schema.CLASSES}
        top = max(votes.values())
        tied = [c for c in schema.CLASSES if votes[c] == top]
        sums = {c: float(f[[e for e in E if M[e] == c]].to_numpy().sum()) for c in tied}
        expected[cid] = schema.NO_FACE if top == 0 else max(tied, key=lambda c: sums[c])
    assert dict(zip(clips["filename"], clips["predict"], strict=True)) == {
        c: schema.CLASS_SHORT.get(p, p) for c, p in expected.items()}
    metrics = json.loads((rep / "metrics.json").read_text())
    m = metrics["overall"]
    assert (m["clips"], m["labelled"], m["failed"], m["not_extracted"]) == (6, 6, 0, 0)
    n_correct = sum(expected[c] == golden[c] for c in golden)
    assert m["correct"] == n_correct and m["accuracy"] == pytest.approx(n_correct / 6)
    for g in schema.CLASSES:
        for p in schema.CLASSES:
            assert m["confusion"][g][p] == sum(golden[c] == g and expected[c] == p
                                               for c in golden), (g, p)
    assert metrics["complete"] is True and metrics["truncated"] == 0
    # the typed record (report.model.ReportMetrics) writes the keys metrics.json always had
    assert list(metrics) == ["overall", "groups", "complete", "corpus_listed", "failed_clips",
                             "not_extracted_clips", "truncated", "truncated_clips", "balance",
                             "balance_oracle", "balance_note", "seconds_per_clip", "frames",
                             "labels_file", "label_issues", "detector", "extract_hash",
                             "report_options", "classifier", "observer_agreement"]
    assert metrics["balance_oracle"] is False
    assert set(clips[schema.STATUS]) == {schema.DONE}
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
    # each row of the table, recounted from that run's clips.csv
    for _, row in table.iterrows():
        clips = pd.read_csv(tmp_path / "cmp" / row["run"] / "report" / "clips.csv")
        hit = clips["predict"] == clips["golden"]
        assert row["accuracy"] == pytest.approx(hit.mean(), abs=1e-4)
        assert row["coverage"] == pytest.approx(clips["predict"].isin(["Pos", "Neg", "Neut"])
                                                .mean(), abs=1e-4)
        f1 = []
        for c in ("Pos", "Neg", "Neut"):
            tp = int((hit & (clips["golden"] == c)).sum())
            n_pred, n_gold = int((clips["predict"] == c).sum()), int((clips["golden"] == c).sum())
            f1.append(2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0)
        assert row["macro_f1"] == pytest.approx(sum(f1) / 3, abs=1e-4)
        shares = clips["golden"].value_counts(normalize=True)
        assert row["majority_baseline"] == pytest.approx(shares.max(), abs=1e-4)
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 10_000
    assert "| crema-d | 6 | yes |" in (tmp_path / "cmp" / "comparison.md").read_text()
    # MTCNN against Haar (the first row) on the clips both labelled, recounted from clips.csv
    from scipy.stats import binomtest

    haar, mtcnn = (pd.read_csv(tmp_path / "cmp" / name / "report" / "clips.csv",
                               index_col="filename") for name in table["run"])
    right_h, right_m = (c["predict"] == c["golden"] for c in (haar, mtcnn))
    only_m, only_h = int((right_m & ~right_h).sum()), int((right_h & ~right_m).sum())
    first, second = table.iloc[0], table.iloc[1]
    assert pd.isna(first["reference"]) and pd.isna(first["accuracy_diff"])
    assert second["reference"] == first["run"] and second["paired_clips"] == 6
    assert second["accuracy_diff"] == pytest.approx(right_m.mean() - right_h.mean(), abs=1e-4)
    p = binomtest(only_m, only_m + only_h).pvalue if only_m + only_h else 1.0
    assert second["mcnemar_p"] == pytest.approx(p, rel=1e-3)
    assert second["accuracy_diff_ci_low"] <= second["accuracy_diff"] <= \
        second["accuracy_diff_ci_high"]
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert f"| {first['run']} | {100 * second['accuracy_diff']:+.2f} pp [" in md
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "McNemar p" in html and f"{100 * second['accuracy_diff']:+.2f} pp" in html
    # the same runs collected with the other row as the reference
    assert main(["compare", "--runs", *(str(tmp_path / "cmp" / r) for r in table["run"]),
                 "--out", str(tmp_path / "again"), "--reference", second["run"]]) == 0
    again = pd.read_csv(tmp_path / "again" / "comparison.csv")
    assert again["reference"].tolist()[0] == second["run"] and pd.isna(again["reference"][1])
    assert again["accuracy_diff"][0] == pytest.approx(-second["accuracy_diff"], abs=1e-4)
    assert again["mcnemar_p"][0] == pytest.approx(second["mcnemar_p"])


# ------------------------------------------------------------------ reports of hand-made runs
# clip -> (record status or None for no record, frames of a done clip, extra record fields)
UNFINISHED = {
    "a_1": (schema.DONE, [(0, HAPPY), (20, HAPPY), (40, HAPPY)], {schema.TRUNCATED: True}),
    "a_2": (schema.DONE, [(0, ANGRY), (20, ANGRY)], {}),  # an old record: no truncated field
    "b_1": (schema.FAILED, None, {schema.REASON: "cannot decode: moov atom not found"}),
    "b_2": (schema.INTERRUPTED, None, {schema.REASON: "interrupted (SIGTERM)"}),
    "b_3": (None, None, {}),  # in the corpus, never started
}
GOLDEN = {"a_1": "Pos", "a_2": "positive", "b_1": "neutral", "b_2": "Neg", "b_3": "neutral"}


def fake_run(tmp_path, clips=UNFINISHED, labels=GOLDEN, **report):
    """A run directory with hand-written records and rows (no video is read): the corpus holds
    an empty file per clip, which discovery lists and nothing opens."""
    corpus = tmp_path / "corpus"
    corpus.mkdir(parents=True)
    for cid in clips:
        (corpus / f"{cid}.mp4").write_bytes(b"")
    if labels is not None:
        (tmp_path / "labels.csv").write_text(
            "clip,label\n" + "".join(f"{c},{g}\n" for c, g in labels.items()))
        report = {"labels": "labels.csv", **report}
    cfg = make_config(tmp_path, corpus, report={"figures": False, **report})
    run = RunDir.prepare(cfg)
    for cid, (status, frames, extra) in clips.items():
        if status is None:
            continue
        rec = {**dict.fromkeys(schema.MANIFEST_COLUMNS), schema.CLIP_ID: cid,
               schema.PATH: str(corpus / f"{cid}.mp4"), schema.STATUS: status,
               schema.CONFIG_HASH: cfg.extract_hash(), schema.SECONDS: 2.0, **extra}
        if schema.TRUNCATED not in extra:
            del rec[schema.TRUNCATED]
        if status == schema.DONE:
            rec[schema.FRAMES_SAMPLED] = rec[schema.FRAMES_WITH_FACE] = len(frames)
            write_parquet_atomic(frame_table(rows_for(cid, frames)), run.part_path(cid))
        write_text_atomic(run.record_path(cid), json.dumps(rec) + "\n")
    return run, cfg


def test_every_labelled_clip_of_the_corpus_counts(tmp_path, caplog):
    run, cfg = fake_run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="videmo"):
        rep = build_report(run, cfg)
    m = rep.metrics.overall
    assert (m["clips"], m["labelled"], m["done"], m["failed"], m["not_extracted"]) == \
        (5, 5, 2, 1, 2)
    assert m["correct"] == 1 and m["accuracy"] == pytest.approx(1 / 5)
    assert m["accuracy_covered"] == pytest.approx(1 / 2)
    assert m["confusion"]["neutral"] == {"positive": 0, "negative": 0, "neutral": 0,
                                         "no_face": 0, "failed": 1, "not_extracted": 1}
    assert m["confusion"]["negative"]["not_extracted"] == 1
    assert m["confusion"]["positive"] == {"positive": 1, "negative": 1, "neutral": 0,
                                          "no_face": 0, "failed": 0, "not_extracted": 0}
    # per group too: a_* are done, b_* are not
    g = rep.metrics.groups
    assert (g["a"]["labelled"], g["a"]["accuracy"]) == (2, pytest.approx(0.5))
    assert (g["b"]["labelled"], g["b"]["failed"], g["b"]["not_extracted"], g["b"]["accuracy"]) \
        == (3, 1, 2, 0.0)
    out = tmp_path / "run" / "report"
    clips = pd.read_csv(out / "clips.csv").set_index(schema.FILENAME)
    assert list(clips.index) == ["a_1", "a_2", "b_1", "b_2", "b_3"]
    assert list(clips[schema.STATUS]) == ["done", "done", "failed", "not_extracted",
                                          "not_extracted"]
    assert list(clips[schema.PREDICT]) == ["Pos", "Neg", "failed", "not_extracted",
                                           "not_extracted"]
    assert list(clips[schema.CORRECT]) == [True, False, False, False, False]
    assert list(clips[schema.FRAMES_SAMPLED]) == [3, 2, 0, 0, 0]
    groups = pd.read_csv(out / "groups.csv").set_index(schema.GROUP)
    assert groups.loc["b", "accuracy"] == 0.0 and groups.loc["b", "predicted_failed"] == 1
    # item 5: an unfinished run says so, in metrics, the summary and a warning
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] is False
    assert metrics["failed_clips"] == {"b_1": "cannot decode: moov atom not found"}
    assert metrics["not_extracted_clips"] == ["b_2", "b_3"]
    assert "not complete: 3 of 5 clips are not done (1 failed, 2 not extracted)" in \
        (out / "summary.txt").read_text()
    assert [r for r in caplog.records if r.levelno == logging.WARNING
            and "not complete: 3 of 5 clips are not done" in r.getMessage()]
    # truncated clips: counted and named; an old record without the field is not truncated
    assert metrics["truncated"] == 1 and metrics["truncated_clips"] == ["a_1"]
    assert clips.loc["a_1", schema.TRUNCATED] == True  # noqa: E712 (read back from CSV)
    assert clips.loc["a_2", schema.TRUNCATED] == False  # noqa: E712
    assert "truncated clips" in rep.summary() and "a_1" in rep.summary()


def test_report_when_the_corpus_is_gone_uses_the_records(tmp_path, caplog):
    run, cfg = fake_run(tmp_path)
    shutil.rmtree(tmp_path / "corpus")
    with caplog.at_level(logging.WARNING, logger="videmo"):
        rep = build_report(run, cfg)
    listing = [r for r in caplog.records if "cannot list the corpus" in r.getMessage()]
    assert len(listing) == 1
    m = rep.metrics
    assert m.corpus_listed is False and m.complete is False
    assert (m.overall["clips"], m.overall["labelled"]) == (4, 4)  # b_3 was never recorded
    assert m.not_extracted_clips == ["b_2"]


def test_videmo_report_on_an_unfinished_run_says_how_many_are_missing(tmp_path, capsys):
    run, _ = fake_run(tmp_path)
    assert main(["report", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "not complete: 3 of 5 clips are not done" in out
    assert "accuracy 20.00% (1/5 labelled clips" in out


def test_unlabelled_report_has_null_rates_and_predicted_counts(tmp_path):
    run, cfg = fake_run(tmp_path, labels=None)
    rep = build_report(run, cfg)
    out = tmp_path / "run" / "report"
    metrics = json.loads((out / "metrics.json").read_text())
    m = metrics["overall"]
    assert m["labelled"] == 0
    assert m["accuracy"] is None and m["macro_f1"] is None and m["accuracy_covered"] is None
    assert m["predicted_counts"] == {"positive": 1, "negative": 1, "neutral": 0, "no_face": 0,
                                     "failed": 1, "not_extracted": 2}
    assert metrics["groups"]["b"]["accuracy"] is None
    labelled = fake_run(tmp_path / "l")[0]
    build_report(labelled, labelled.config())
    other = json.loads((tmp_path / "l" / "run" / "report" / "metrics.json").read_text())
    assert set(m) == set(other["overall"]) and set(metrics) == set(other)
    assert "accuracy n/a" in (out / "summary.txt").read_text()
    groups = pd.read_csv(out / "groups.csv").set_index(schema.GROUP)
    assert groups["accuracy"].isna().all() and groups["macro_f1"].isna().all()
    assert (groups.loc["a", "predicted_positive"], groups.loc["a", "predicted_negative"]) == (1, 1)
    assert groups.loc["b", "predicted_not_extracted"] == 2
    assert rep.groups.columns[0] == schema.GROUP


def test_complete_run(tmp_path):
    done = {k: v for k, v in UNFINISHED.items() if v[0] == schema.DONE}
    run, cfg = fake_run(tmp_path, clips=done)
    rep = build_report(run, cfg)
    assert rep.metrics.complete is True and "not complete" not in rep.summary()
    assert rep.metrics.overall["labelled"] == 2  # labels of clips outside the corpus: extra
    assert rep.metrics.overall["accuracy"] == pytest.approx(1 / 2)


def test_golden_balance_is_an_oracle_and_needs_labels(tmp_path, capsys, monkeypatch):
    with pytest.raises(ConfigError, match="report.balance"):
        make_config(tmp_path, tmp_path, report={"balance": "golden"})
    run, _ = fake_run(tmp_path, labels=None)
    # before any extraction: no run directory is made
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: ['{tmp_path / 'corpus'}']}}\n"
                   f"run: {{out: '{tmp_path / 'other'}'}}\n")
    assert main(["run", str(job), "--set", "report.balance=golden", "--no-progress"]) == 2
    assert "report.balance" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
    assert main(["report", str(run.path), "--set", "report.balance=golden"]) == 2
    assert "report.balance" in capsys.readouterr().err
    # --labels is report.labels (relative to the current directory), seen by validation
    (tmp_path / "labels.csv").write_text("clip,label\n" + "".join(
        f"{c},{g}\n" for c, g in GOLDEN.items()))
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(run.path), "--set", "report.balance=golden", "--labels",
                 "labels.csv", "--out", str(tmp_path / "oracle")]) == 0
    assert "ORACLE" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "oracle" / "metrics.json").read_text())
    assert metrics["balance_oracle"] is True and "oracle" in metrics["balance_note"].lower()
    assert metrics["overall"]["labelled"] == 5
    assert "ORACLE" in (tmp_path / "oracle" / "summary.txt").read_text()
    clips = pd.read_csv(tmp_path / "oracle" / "clips.csv")
    assert set(clips[schema.BALANCE]) == {schema.BALANCE_ORACLE}
    assert set(pd.read_csv(tmp_path / "oracle" / "groups.csv")[schema.BALANCE]) == {
        schema.BALANCE_ORACLE}
    assert not (run.path / "report").exists()  # the refused report wrote nothing


def test_compare_shows_an_unlabelled_run_as_na(tmp_path):
    from videmo.report import compare

    run, cfg = fake_run(tmp_path, labels=None)
    build_report(run, cfg)
    table = compare.collect([(run.path, "d", "unlabelled")], tmp_path / "cmp")
    assert table["accuracy"].isna().all() and table["macro_f1"].isna().all()
    assert table["clips"].tolist() == [5] and table["coverage"].tolist() == [0.4]
    assert "| d | 5 | no | n/a | n/a | 40.0% | n/a |" in (tmp_path / "cmp" / "comparison.md") \
        .read_text()


def test_a_clip_whose_file_changed_after_it_was_done_is_not_counted_as_done(tmp_path):
    """Records without a file stamp (older runs) are taken as they are; a stamped record whose
    file has changed since counts as not extracted in the report and pending in status."""
    from videmo.execute.status import run_status
    from videmo.extract.corpus import current_clips
    from videmo.store import file_stamp

    run, cfg = fake_run(tmp_path)
    assert build_report(run, cfg).metrics.overall["done"] == 2
    clips = {c.clip_id: c for c in current_clips(cfg, run.corpus_json)}
    for cid in ("a_1", "a_2"):
        rec = json.loads(run.record_path(cid).read_text())
        rec.update(file_stamp(clips[cid], cfg))
        write_text_atomic(run.record_path(cid), json.dumps(rec) + "\n")
    assert build_report(run, cfg).metrics.overall["done"] == 2
    (clips["a_2"].path).write_bytes(b"a new version of the file")
    m = build_report(run, cfg).metrics
    assert m.overall["done"] == 1 and "a_2" in m.not_extracted_clips
    st = run_status(run)
    assert st.total[schema.DONE] == 1 and st.total[schema.PENDING] == 2


def test_compare_variants_that_differ_in_report_options_share_one_extraction(tmp_path,
                                                                             monkeypatch):
    """vary: {report.aggregate: [...]} extracts once; each row has its own report, and the
    table's numbers are each report's own."""
    from .conftest import REPO

    calls = []
    real = __import__("videmo.execute.local", fromlist=["analyze_clip"]).analyze_clip

    def spy(clip, *a, **kw):
        calls.append(clip.clip_id)
        return real(clip, *a, **kw)

    monkeypatch.setattr("videmo.execute.local.analyze_clip", spy)
    base = tmp_path / "base.yaml"
    base.write_text(f"corpus: {{paths: [{REPO / 'data/sample/crema-d'}], "
                    f"include: ['*HAP*', '*ANG*', '*NEU*']}}\nsampling: {{every_n: 15}}\n"
                    f"run: {{jobs: 1}}\n"
                    f"report: {{labels: {REPO / 'data/sample/crema-d/labels.csv'}, "
                    f"figures: false}}\n")
    job = tmp_path / "cmp.yaml"
    job.write_text(f"compare:\n  base: base.yaml\n  out: {tmp_path / 'cmp'}\n"
                   f"  vary:\n    report.aggregate: [majority, mean]\n"
                   f"    sampling.every_n: [15, 10]\n")
    assert main(["compare", str(job), "--no-progress"]) == 0
    assert len(calls) == 6  # 3 clips x 2 sampling settings, not x 4 variants
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv").set_index("run")
    assert list(table["classifier"]) == ["majority", "majority", "mean", "mean"]
    for name, row in table.iterrows():
        clips = pd.read_csv(tmp_path / "cmp" / name / "report" / "clips.csv")
        assert row["accuracy"] == pytest.approx((clips["predict"] == clips["golden"]).mean(),
                                                abs=1e-4)
        decided = set(clips["decided_by"].dropna())
        assert decided == {row["classifier"]}, name
    shared = tmp_path / "cmp" / "aggregate-mean_every_n-15"
    assert not (shared / "run.json").exists() and (shared / "report" / "metrics.json").exists()
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert 'href="aggregate-mean_every_n-15/report/report.html"' in html
