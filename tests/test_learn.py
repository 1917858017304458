"""videmo learn: learners on simulated clips where the answer is known, person-grouped folds,
bootstrap intervals that cover, saved models that reload, and the command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videmo import cli, schema
from videmo.config import ConfigError, LearnConfig, from_dict
from videmo.evaluate import learn as L
from videmo.store import RunDir, write_parquet_atomic, write_text_atomic

from .conftest import make_config
from .test_rules import simulate, table

C = schema.CLASSES


def simulated(seed: int, n_clips: int, persons: int, lengths=(10, 40)):
    """Clips of ``persons`` persons (p0_..), labels in turn; the label shows only in the
    ramp to the peak at the end of each clip (tests/test_rules.py's simulator)."""
    rng = np.random.default_rng(seed)
    clips, golden = {}, {}
    for k in range(n_clips):
        cid = f"p{k % persons}_{k}"
        golden[cid] = C[k % 3]
        clips[cid] = simulate(rng, golden[cid], int(rng.integers(*lengths)))
    return clips, golden


def fake_run(tmp_path: Path, clips, golden, **learn) -> tuple[RunDir, object]:
    """A labelled run directory written with videmo.store's helpers (no video is read)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir(parents=True)
    for cid in clips:
        (corpus / f"{cid}.mp4").write_bytes(b"")
    (tmp_path / "labels.csv").write_text(
        "clip,label\n" + "".join(f"{c},{g}\n" for c, g in golden.items()))
    cfg = make_config(tmp_path, corpus, report={"labels": "labels.csv", "figures": False},
                      learn={"bootstrap": 200, **learn})
    run = RunDir.prepare(cfg)
    for cid, rows in clips.items():
        write_parquet_atomic(table({cid: rows}), run.part_path(cid))
        rec = {**dict.fromkeys(schema.MANIFEST_COLUMNS), schema.CLIP_ID: cid,
               schema.PATH: str(corpus / f"{cid}.mp4"), schema.STATUS: schema.DONE,
               schema.CONFIG_HASH: cfg.extract_hash(), schema.SECONDS: 1.0,
               schema.FRAMES_SAMPLED: len(rows), schema.FRAMES_WITH_FACE: len(rows)}
        write_text_atomic(run.record_path(cid), json.dumps(rec) + "\n")
    return run, cfg


def _row(results: pd.DataFrame, classifier: str, features: str = "fer") -> pd.Series:
    hit = results[(results[schema.CLASSIFIER] == classifier)
                  & (results[schema.FEATURES] == features)]
    assert len(hit) == 1, (classifier, features, results)
    return hit.iloc[0]


def test_learners_find_a_short_peak_that_the_majority_vote_misses(tmp_path):
    clips, golden = simulated(seed=11, n_clips=45, persons=15)
    run, cfg = fake_run(tmp_path, clips, golden, classifiers=["logistic", "gboost"], folds=3)
    res = L.learn(run, cfg, progress=False)
    t = res.results
    assert list(t.columns) == list(schema.LEARN_RESULT_COLUMNS)
    assert list(t[schema.CLASSIFIER]) == ["majority", "mean", "expressive", "confident", "peak",
                                          "prior", "logistic", "gboost"]
    vote = _row(t, "majority")
    assert vote[schema.ACCURACY] < 0.6  # most frames are the resting face
    for name in ("logistic", "gboost"):
        r = _row(t, name)
        assert r[schema.KIND] == schema.KIND_LEARNED
        assert r[schema.ACCURACY] >= 0.9 and r[schema.MACRO_F1] >= 0.9, r
        assert r[schema.P_VS_VOTE] < 0.001
        assert r[schema.ACCURACY + schema.CI_LOW] <= r[schema.ACCURACY] \
            <= r[schema.ACCURACY + schema.CI_HIGH]
    assert (t[schema.N_CLIPS] == 45).all() and (t[schema.N_GROUPS] == 15).all()
    assert ((t[[schema.ACCURACY, schema.MACRO_F1]] >= 0) & (t[[schema.ACCURACY,
                                                                schema.MACRO_F1]] <= 1)).all().all()
    # the folds used never put a person in two folds (so never in train and test)
    preds = pd.read_csv(res.out_dir / "predictions.csv")
    assert preds.groupby(schema.GROUP)[schema.FOLD].nunique().max() == 1
    assert preds[schema.FOLD].nunique() == 3
    summary = (res.out_dir / "summary.txt").read_text()
    assert "GroupKFold, 3 folds over 15 groups" in summary
    assert "resamples of groups" in summary and "class balance: positive 15 (33%)" in summary
    assert (res.out_dir / "results.png").stat().st_size > 0
    card = (res.out_dir / "model" / "model-card.md").read_text()
    assert "Seed 0" in card and "GroupKFold" in card and "commit" in card


@pytest.mark.parametrize("n_groups, scheme", [(1, "leave-one-clip-out"),
                                              (4, "leave-one-group-out"),
                                              (25, "GroupKFold, 5 folds")])
def test_grouped_folds_never_share_a_person(n_groups, scheme):
    groups = np.asarray([f"p{i % n_groups}" for i in range(60)], dtype=object)
    lc = LearnConfig()
    folds = L.outer_folds(groups, lc)
    assert scheme in folds.scheme and folds.grouped == (n_groups > 1)
    tested = np.concatenate([test for _, test in folds.splits])
    assert sorted(tested) == list(range(60))  # every clip tested exactly once
    for train, test in folds.splits:
        if n_groups > 1:
            assert not set(groups[train]) & set(groups[test])
        inner_groups = groups[train]
        for a, b in L.inner_folds(inner_groups, lc, seed=0):
            if len(set(inner_groups)) > 1:
                assert not set(inner_groups[a]) & set(inner_groups[b])


def test_one_group_is_refused_when_asked():
    groups = np.asarray(["1001"] * 6, dtype=object)
    with pytest.raises(L.LearnError, match="person-grouped cross-validation is impossible"):
        L.outer_folds(groups, LearnConfig(one_group="refuse"))


def test_bootstrap_intervals_cover_the_true_accuracy():
    """A closed-form simulated classifier (each clip right with a known probability), 200
    repetitions with a fixed seed: the 95% intervals cover the true accuracy 0.7 in 90-99% of
    them, resampling clips when clips are independent and persons when a person's clips share
    an accuracy (where resampling clips would make the intervals too narrow)."""
    rng = np.random.default_rng(2024)
    n, truth = 60, 0.7
    y = np.asarray([C[k % 3] for k in range(n)], dtype=object)
    wrong = np.asarray([C[(k + 1) % 3] for k in range(n)], dtype=object)
    persons = np.repeat(np.arange(15), 4)
    covered = {"clips": 0, "groups": 0, "clips_on_clustered": 0}
    for rep in range(200):
        pred = np.where(rng.random(n) < truth, y, wrong)
        lo, hi = L.interval(L.weighted_rates(y, pred, L.bootstrap_weights(n, None, 1000,
                                                                          rep))[0])
        covered["clips"] += lo <= truth <= hi
        p_person = rng.beta(1.4, 0.6, 15)[persons]  # mean 0.7, persons differ a lot
        pred = np.where(rng.random(n) < p_person, y, wrong)
        for unit, units in (("groups", persons), ("clips_on_clustered", None)):
            lo, hi = L.interval(L.weighted_rates(y, pred, L.bootstrap_weights(n, units, 1000,
                                                                              rep))[0])
            covered[unit] += lo <= truth <= hi
    assert 0.90 <= covered["clips"] / 200 <= 0.99, covered
    assert 0.90 <= covered["groups"] / 200 <= 0.99, covered
    assert covered["clips_on_clustered"] < covered["groups"], covered


def test_weighted_rates_match_scikit_learn_and_mcnemar_is_exact():
    rng = np.random.default_rng(0)
    y = rng.choice(C, 40).astype(object)
    p = np.where(rng.random(40) < 0.6, y, rng.choice(C, 40)).astype(object)
    acc, f1 = L.weighted_rates(y, p, np.ones((1, 40)))
    assert acc[0] == pytest.approx(np.mean(y == p)) and f1[0] == pytest.approx(L.macro_f1(y, p))
    # one is right on 8 clips where the other is wrong, the other on 2: 2 * P(X <= 2), X~B(10,.5)
    y = np.asarray(["positive"] * 10, dtype=object)
    a = np.asarray(["positive"] * 8 + ["neutral"] * 2, dtype=object)
    b = np.asarray(["neutral"] * 8 + ["positive"] * 2, dtype=object)
    assert L.mcnemar_p(y, a, b) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert L.mcnemar_p(y, a, a) == 1.0


def test_pooled_statistics_of_one_clip():
    t = np.asarray([0.0, 0.5, 1.0])
    seq = np.asarray([[0.1, 0.9], [0.2, 0.5], [0.9, 0.1]])
    stats = L.pool(seq, t).reshape(len(L.STATS), 2)
    got = dict(zip(L.STATS, stats, strict=True))
    assert got["mean"] == pytest.approx([0.4, 0.5])
    assert got["max"] == pytest.approx([0.9, 0.9])
    assert got["q50"] == pytest.approx([0.2, 0.5])
    assert got["slope"] == pytest.approx([0.8, -0.8])
    assert got["t_peak"] == pytest.approx([1.0, 0.0])
    one = L.pool(seq[:1], np.zeros(1)).reshape(len(L.STATS), 2)  # a still photo
    assert one[L.STATS.index("slope")] == pytest.approx([0, 0]) and np.isfinite(one).all()


def test_feature_families_plug_in_by_name(tmp_path):
    """A family declared in one line (here the detector's box size, which says nothing about
    emotion) becomes a feature set; the inner CV chooses between sets per training fold."""
    clips, golden = simulated(seed=5, n_clips=24, persons=4)
    run, cfg = fake_run(tmp_path, clips, golden, classifiers=["logistic"],
                        features=["fer", "box", "fer+box"])
    L.register_family(L.FeatureFamily("box", (schema.BOX_W, schema.BOX_H), "the face detector",
                                      "Box size of each face row."))
    try:
        res = L.learn(run, cfg, progress=False)
    finally:
        L.FAMILIES.pop("box")
    t = res.results
    assert {"fer", "box", "fer+box", "selected"} <= set(t[schema.FEATURES])
    assert _row(t, "logistic", "box")[schema.ACCURACY] < 0.5  # constant features: no signal
    assert _row(t, "logistic", "selected")[schema.ACCURACY] >= 0.9
    line = next(s for s in res.summary.splitlines()
                if s.startswith("selected per fold, logistic|selected"))
    assert " box {" not in line  # never the set without signal


def test_a_family_the_run_lacks_names_itself_and_what_turns_it_on(tmp_path):
    clips, golden = simulated(seed=1, n_clips=6, persons=2)
    run, cfg = fake_run(tmp_path, clips, golden, features=["fer+blendshapes"])
    with pytest.raises(L.LearnError, match=r"'blendshapes' is not in the per-frame table.*"
                                           r"face mesh.*available here: fer"):
        L.learn(run, cfg, progress=False)
    with pytest.raises(L.LearnError, match="did you mean 'fer'"):
        L.parse_feature_set("fre")
    with pytest.raises(ConfigError, match="report.balance"):
        from_dict({"report": {"classifier": "m", "balance": "uniform"}})


@pytest.mark.parametrize("name", ["logistic", "gboost"])
@pytest.mark.parametrize("classes", [3, 2])
def test_a_saved_pooled_model_reproduces_its_predictions_without_pickle(tmp_path, name,
                                                                        classes):
    clips_, golden = simulated(seed=3, n_clips=30, persons=5)
    keep = {c for c, g in golden.items() if C.index(g) < classes}
    frames = table({c: r for c, r in clips_.items() if c in keep})
    ids = sorted(keep)
    clips = L.build_clips(frames, ids, {"fer"}, golden)
    lc = LearnConfig()
    xs = {("fer",): L.pooled(clips, ("fer",))[0]}
    fitted = L._refit(name, "fer", clips, xs, [("fer",)], lc)
    mine = fitted.model.predict(xs[("fer",)])
    run, cfg = fake_run(tmp_path, {c: clips_[c] for c in ids}, {c: golden[c] for c in ids})
    L.save_model(fitted, tmp_path / "model", clips, run, cfg)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json"]
    loaded = L.load_classifier(tmp_path / "model")
    assert loaded.predict(frames, ids) == dict(zip(ids, mine, strict=True))


def test_the_lstm_learns_the_peak_on_short_and_long_clips_and_reloads(tmp_path):
    """Clips of 1 to 150 face rows (the long ones subsampled to learn.max_frames), persons
    p0-p3 for training and p4-p5 held out."""
    clips_, golden = simulated(seed=2, n_clips=48, persons=6, lengths=(1, 150))
    frames = table(clips_)
    clips = L.build_clips(frames, sorted(golden), {"fer"}, golden,
                          {c: c.split("_")[0] for c in golden})
    assert min(len(s) for s in clips.seqs["fer"]) < 5 < 100 < max(len(s) for s in
                                                                 clips.seqs["fer"])
    lc = LearnConfig(max_frames=32)
    held = np.isin(clips.groups, ["p4", "p5"])
    seqs = [L.sequence(clips, i, ("fer",), lc.max_frames) for i in range(len(clips))]
    assert max(len(s) for s in seqs) == 32
    train = np.flatnonzero(~held)
    m = L.fit_lstm([seqs[i] for i in train], clips.y[train], lc, seed=0)
    test = np.flatnonzero(held)
    pred = m.predict([seqs[i] for i in test])
    assert np.mean(pred == clips.y[test]) >= 0.8
    fitted = L.Fitted("lstm", ("fer",), {}, m, [])
    run, cfg = fake_run(tmp_path, clips_, golden)
    L.save_model(fitted, tmp_path / "model", clips, run, cfg)
    loaded = L.load_classifier(tmp_path / "model", cfg.extract_hash())
    ids = [clips.ids[i] for i in test]
    assert loaded.predict(frames, ids) == dict(zip(ids, pred, strict=True))
    keras_file = tmp_path / "model" / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes() + b"\0")
    with pytest.raises(L.ModelError, match="changed since videmo learn wrote it"):
        L.load_classifier(tmp_path / "model")


def test_videmo_learn_end_to_end_then_report_with_the_model(tmp_path, capsys):
    clips, golden = simulated(seed=4, n_clips=16, persons=4, lengths=(3, 20))
    run, _ = fake_run(tmp_path, clips, golden)
    code = cli.main(["learn", str(run.path), "--no-progress", "--set", "learn.lstm_epochs=2",
                     "--set", "learn.classifiers=[logistic, lstm]",
                     "--set", "learn.lstm_units=4", "--set", "learn.bootstrap=100"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "leave-one-group-out (4 groups" in out and "chosen model:" in out
    learn_dir = run.path / "learn"
    t = pd.read_csv(learn_dir / "results.csv")
    assert list(t.columns) == list(schema.LEARN_RESULT_COLUMNS)
    assert {"logistic", "lstm"} <= set(t[schema.CLASSIFIER])
    assert set(t[schema.KIND]) == {"baseline", "rule", "learned"}
    model = learn_dir / "model"
    meta = json.loads((model / "model.json").read_text())
    assert (model / "model-card.md").exists()
    code = cli.main(["report", str(run.path), "--classifier", str(model), "--out",
                     str(tmp_path / "rep")])
    assert code == 0
    rep = pd.read_csv(tmp_path / "rep" / "clips.csv").set_index(schema.FILENAME)
    assert set(rep[schema.DECIDED_BY]) == {meta["classifier"]}
    expected = L.load_classifier(model).predict(run.frames(), sorted(golden))
    assert rep[schema.PREDICT].to_dict() == {c: schema.CLASS_SHORT[p]
                                             for c, p in expected.items()}
    # the out-of-fold predictions of the chosen row are in predictions.csv
    preds = pd.read_csv(learn_dir / "predictions.csv")
    assert f"{meta['classifier']}|fer" in preds.columns


def test_learn_refuses_other_keys_and_a_run_without_labels(tmp_path, capsys):
    clips, golden = simulated(seed=1, n_clips=6, persons=2)
    run, _ = fake_run(tmp_path, clips, golden)
    assert cli.main(["learn", str(run.path), "--set", "faces.detector=mtcnn"]) == 2
    assert "only learn.* and report.* keys" in capsys.readouterr().err
    assert cli.main(["learn", str(run.path), "--set", "report.labels=null"]) == 2
    assert "needs golden labels" in capsys.readouterr().err
