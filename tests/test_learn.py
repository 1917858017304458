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
from videmo.evaluate import stats
from videmo.evaluate.learn import base, cv, families, lstm, model_io, pooled
from videmo.evaluate.learn import clips as LC
from videmo.evaluate.learn import run as R
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


def fake_run(tmp_path: Path, clips, golden, extract_features=("emotions",),
             **learn) -> tuple[RunDir, object]:
    """A labelled run directory written with videmo.store's helpers (no video is read)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir(parents=True)
    for cid in clips:
        (corpus / f"{cid}.mp4").write_bytes(b"")
    (tmp_path / "labels.csv").write_text(
        "clip,label\n" + "".join(f"{c},{g}\n" for c, g in golden.items()))
    cfg = make_config(tmp_path, corpus, report={"labels": "labels.csv", "figures": False},
                      learn={"bootstrap": 200, **learn})
    cfg = from_dict({**cfg.to_dict(), "features": list(extract_features)}, base_dir=tmp_path)
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
    res = R.learn(run, cfg, progress=False)
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
    folds = cv.outer_folds(groups, lc)
    assert scheme in folds.scheme and folds.grouped == (n_groups > 1)
    tested = np.concatenate([test for _, test in folds.splits])
    assert sorted(tested) == list(range(60))  # every clip tested exactly once
    for train, test in folds.splits:
        if n_groups > 1:
            assert not set(groups[train]) & set(groups[test])
        inner_groups = groups[train]
        for a, b in cv.inner_folds(inner_groups, lc, seed=0):
            if len(set(inner_groups)) > 1:
                assert not set(inner_groups[a]) & set(inner_groups[b])


def test_one_group_is_refused_when_asked():
    groups = np.asarray(["1001"] * 6, dtype=object)
    with pytest.raises(base.LearnError, match="person-grouped cross-validation is impossible"):
        cv.outer_folds(groups, LearnConfig(one_group="refuse"))


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
        w = stats.bootstrap_weights(n, None, 1000, rep)
        lo, hi = stats.interval(stats.weighted_rates(y, pred, w)[0])
        covered["clips"] += lo <= truth <= hi
        p_person = rng.beta(1.4, 0.6, 15)[persons]  # mean 0.7, persons differ a lot
        pred = np.where(rng.random(n) < p_person, y, wrong)
        for unit, units in (("groups", persons), ("clips_on_clustered", None)):
            w = stats.bootstrap_weights(n, units, 1000, rep)
            lo, hi = stats.interval(stats.weighted_rates(y, pred, w)[0])
            covered[unit] += lo <= truth <= hi
    assert 0.90 <= covered["clips"] / 200 <= 0.99, covered
    assert 0.90 <= covered["groups"] / 200 <= 0.99, covered
    assert covered["clips_on_clustered"] < covered["groups"], covered


def test_weighted_rates_match_scikit_learn_and_mcnemar_is_exact():
    rng = np.random.default_rng(0)
    y = rng.choice(C, 40).astype(object)
    p = np.where(rng.random(40) < 0.6, y, rng.choice(C, 40)).astype(object)
    acc, f1 = stats.weighted_rates(y, p, np.ones((1, 40)))
    assert acc[0] == pytest.approx(np.mean(y == p)) and f1[0] == pytest.approx(cv.macro_f1(y, p))
    # one is right on 8 clips where the other is wrong, the other on 2: 2 * P(X <= 2), X~B(10,.5)
    y = np.asarray(["positive"] * 10, dtype=object)
    a = np.asarray(["positive"] * 8 + ["neutral"] * 2, dtype=object)
    b = np.asarray(["neutral"] * 8 + ["positive"] * 2, dtype=object)
    assert stats.mcnemar_p(y, a, b) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert stats.mcnemar_p(y, a, a) == 1.0


def test_pooled_statistics_of_one_clip():
    t = np.asarray([0.0, 0.5, 1.0])
    seq = np.asarray([[0.1, 0.9], [0.2, 0.5], [0.9, 0.1]])
    pooled_ = LC.pool(seq, t).reshape(len(LC.STATS), 2)
    got = dict(zip(LC.STATS, pooled_, strict=True))
    assert got["mean"] == pytest.approx([0.4, 0.5])
    assert got["max"] == pytest.approx([0.9, 0.9])
    assert got["q50"] == pytest.approx([0.2, 0.5])
    assert got["slope"] == pytest.approx([0.8, -0.8])
    assert got["t_peak"] == pytest.approx([1.0, 0.0])
    one = LC.pool(seq[:1], np.zeros(1)).reshape(len(LC.STATS), 2)  # a still photo
    assert one[LC.STATS.index("slope")] == pytest.approx([0, 0]) and np.isfinite(one).all()


def test_feature_families_plug_in_by_name(tmp_path):
    """A family declared in one line (here the detector's box size, which says nothing about
    emotion) becomes a feature set; the inner CV chooses between sets per training fold."""
    clips, golden = simulated(seed=5, n_clips=24, persons=4)
    run, cfg = fake_run(tmp_path, clips, golden, classifiers=["logistic"],
                        features=["fer", "box", "fer+box"])
    families.register_family(families.FeatureFamily(
        "box", (schema.BOX_W, schema.BOX_H), "the face detector", "Box size of each face row."))
    try:
        res = R.learn(run, cfg, progress=False)
    finally:
        families.FAMILIES.pop("box")
    t = res.results
    assert {"fer", "box", "fer+box", "selected"} <= set(t[schema.FEATURES])
    assert _row(t, "logistic", "box")[schema.ACCURACY] < 0.5  # constant features: no signal
    assert _row(t, "logistic", "selected")[schema.ACCURACY] >= 0.9
    line = next(s for s in res.summary.splitlines()
                if s.startswith("selected per fold, logistic|selected"))
    assert " box {" not in line  # never the set without signal


def test_a_family_the_run_lacks_names_itself_and_what_turns_it_on(tmp_path):
    clips, golden = simulated(seed=1, n_clips=6, persons=2)
    run, cfg = fake_run(tmp_path, clips, golden, features=["fer+box"])
    families.register_family(families.FeatureFamily("box", ("box_depth",), "a detector with depth",
                                      "An unknown column."))
    try:
        with pytest.raises(base.LearnError, match=r"'box' is not in the per-frame table.*"
                                               r"a detector with depth.*available here: fer"):
            R.learn(run, cfg, progress=False)
    finally:
        families.FAMILIES.pop("box")
    with pytest.raises(base.LearnError, match="did you mean 'fer'"):
        families.parse_feature_set("fre")
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
    clips = LC.build_clips(frames, ids, {"fer"}, golden)
    lc = LearnConfig()
    x = LC.pooled(clips, ("fer",))[0]
    fitted = cv.refit(base.get_learner(name), "fer", cv.Inputs(clips, lc.max_frames),
                      [("fer",)], lc)
    mine = fitted.model.predict(x)
    run, cfg = fake_run(tmp_path, {c: clips_[c] for c in ids}, {c: golden[c] for c in ids})
    model_io.save_model(fitted, tmp_path / "model", clips, run, cfg)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json"]
    loaded = model_io.load_classifier(tmp_path / "model")
    assert loaded.predict(frames, ids) == dict(zip(ids, mine, strict=True))


def test_the_lstm_learns_the_peak_on_short_and_long_clips_and_reloads(tmp_path):
    """Clips of 1 to 150 face rows (the long ones subsampled to learn.max_frames), persons
    p0-p3 for training and p4-p5 held out."""
    clips_, golden = simulated(seed=2, n_clips=48, persons=6, lengths=(1, 150))
    frames = table(clips_)
    clips = LC.build_clips(frames, sorted(golden), {"fer"}, golden,
                          {c: c.split("_")[0] for c in golden})
    assert min(len(s) for s in clips.seqs["fer"]) < 5 < 100 < max(len(s) for s in
                                                                 clips.seqs["fer"])
    lc = LearnConfig(max_frames=32)
    held = np.isin(clips.groups, ["p4", "p5"])
    seqs = [LC.sequence(clips, i, ("fer",), lc.max_frames) for i in range(len(clips))]
    assert max(len(s) for s in seqs) == 32
    train = np.flatnonzero(~held)
    m = lstm.fit_lstm([seqs[i] for i in train], clips.y[train], lc, seed=0)
    test = np.flatnonzero(held)
    pred = m.predict([seqs[i] for i in test])
    assert np.mean(pred == clips.y[test]) >= 0.8
    fitted = base.Fitted("lstm", ("fer",), {}, m, [*schema.EMOTIONS, "time_fraction"])
    run, cfg = fake_run(tmp_path, clips_, golden)
    model_io.save_model(fitted, tmp_path / "model", clips, run, cfg)
    loaded = model_io.load_classifier(tmp_path / "model", cfg.extract_hash())
    ids = [clips.ids[i] for i in test]
    assert loaded.predict(frames, ids) == dict(zip(ids, pred, strict=True))
    keras_file = tmp_path / "model" / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes() + b"\0")
    with pytest.raises(base.ModelError, match="changed since videmo learn wrote it"):
        model_io.load_classifier(tmp_path / "model")


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
    expected = model_io.load_classifier(model).predict(run.frames(), sorted(golden))
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


# ---------------------------------------------------------------- the face mesh's families
BLEND = {schema.POSITIVE: ("mouthSmileLeft", "mouthSmileRight"),
         schema.NEGATIVE: ("browDownLeft", "browDownRight")}


def _rotation(rng: np.random.Generator, degrees: float) -> np.ndarray:
    a, b, c = np.radians(rng.uniform(-degrees, degrees, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def simulated_mesh_row(rng, cid: str, frame: int, label: str, strength: float) -> tuple:
    """A mesh-table row (schema.MESH_COLUMNS) of a face whose blendshapes and landmarks show
    ``label`` with ``strength`` (0-1): smiles and raised mouth corners for positive, a lowered
    brow for negative. The landmarks are MediaPipe's canonical face (cm, image-like axes)
    moved, turned up to 25 degrees and scaled into pixels, with noise: only a pose-normalised
    reading can see the expression."""
    from videmo.extract.features import face_geometry

    blend = rng.uniform(0, 0.1, len(schema.BLENDSHAPES))
    face = face_geometry.canonical_face().vertices * [1.0, -1.0, -1.0]
    face = np.vstack([face, face[[33] * 5 + [263] * 5]])  # the 10 iris points
    face = face + rng.normal(0, 0.03, face.shape)
    for name in BLEND.get(label, ()):
        blend[schema.BLENDSHAPES.index(name)] = 0.1 + 0.7 * strength
    if label == schema.POSITIVE:
        face[[61, 291], 1] -= 0.6 * strength
    elif label == schema.NEGATIVE:
        face[[105, 107, 334, 336], 1] += 0.5 * strength
    pixels = rng.uniform(12, 30) * face @ _rotation(rng, 25).T + [rng.uniform(200, 400),
                                                                    rng.uniform(150, 300), 0]
    return (cid, frame, 0, 0.99, 0.0, 0.0, 0.0, 0.0, 0.0, 50.0, *blend,
            pixels.astype(np.float32).reshape(-1))


def _no_mesh(cid: str, frame: int) -> tuple:
    """A face row below mesh.min_presence, as the mesh writes it: keys, empty columns."""
    from videmo.extract.features.mesh import mesh_row

    return mesh_row(cid, frame, 0, None)


def mesh_run(tmp_path: Path, seed: int, n_clips: int, persons: int, lengths=(8, 30),
             **learn) -> tuple[RunDir, object, dict[str, str]]:
    """A labelled run with ``features: [emotions, mesh]`` whose FER rows carry NO label (a
    resting face throughout) and whose mesh rows carry it in the peak at the end of each clip
    (the last 40% of frames); 15% of face rows have no mesh."""
    from videmo.extract.features.mesh import mesh_table
    from videmo.schema import MESH_PARQUET

    rng = np.random.default_rng(seed)
    clips, golden, mesh = {}, {}, {}
    for k in range(n_clips):
        cid = f"p{k % persons}_{k}"
        golden[cid] = C[k % 3]
        n = int(rng.integers(*lengths))
        clips[cid] = simulate(rng, schema.NEUTRAL, n)  # FER sees no emotion
        start = int(n * 0.6)
        mesh[cid] = [_no_mesh(cid, 5 * i) if rng.random() < 0.15 else
                     simulated_mesh_row(rng, cid, 5 * i, golden[cid],
                                        max(0.0, (i - start + 1) / (n - start)))
                     for i in range(n)]
    run, cfg = fake_run(tmp_path, clips, golden, extract_features=["emotions", "mesh"], **learn)
    for cid, rows in mesh.items():
        write_parquet_atomic(mesh_table(rows), run.table_part_path("mesh", cid), **MESH_PARQUET)
        rec = json.loads(run.record_path(cid).read_text())
        rec["mesh_hash"] = cfg.mesh_hash()
        write_text_atomic(run.record_path(cid), json.dumps(rec) + "\n")
    return run, cfg, golden


def test_blendshapes_and_landmarks_find_what_fer_does_not_see(tmp_path):
    run, cfg, golden = mesh_run(tmp_path, seed=7, n_clips=45, persons=15,
                                classifiers=["logistic", "gboost"], folds=3,
                                features=["fer", "blendshapes", "landmarks"])
    res = R.learn(run, cfg, progress=False)
    t = res.results
    assert _row(t, "majority")[schema.ACCURACY] < 0.5
    for name in ("logistic", "gboost"):
        assert _row(t, name, "fer")[schema.ACCURACY] < 0.5  # chance is 1/3
        line = next(s for s in res.summary.splitlines()
                    if s.startswith(f"selected per fold, {name}|selected"))
        assert " fer {" not in line  # the inner CV never picks the set without signal
        for fam in ("blendshapes", "landmarks", "selected"):
            r = _row(t, name, fam)
            assert r[schema.ACCURACY] >= 0.9 and r[schema.MACRO_F1] >= 0.9, r
            assert r[schema.P_VS_VOTE] < 0.001
    meta = json.loads((res.model_dir / "model.json").read_text())
    assert meta["trained_on"]["mesh_hash"] == cfg.mesh_hash()
    assert meta["extract_config"]["features"] == ["emotions", "mesh"]


def test_mesh_rows_join_the_face_rows_and_missing_meshes_are_nan_then_imputed(tmp_path):
    run, cfg, golden = mesh_run(tmp_path, seed=3, n_clips=6, persons=2)
    frames = families.with_mesh(run.frames(cfg.extract_hash()), run, cfg, {"blendshapes",
                                                                     "landmarks"}, "test")
    assert len(frames) == len(run.frames(cfg.extract_hash()))
    merged = run.path / schema.MESH_TABLE
    mesh = pd.read_parquet(merged) if merged.exists() else \
        run.side_table("mesh", cfg.extract_hash(), cfg.mesh_hash()).to_pandas()
    keys = list(schema.MESH_KEYS)
    both = frames.merge(mesh, on=keys, suffixes=("", "_mesh"))
    for col in ("mouthSmileLeft", "browDownRight"):
        np.testing.assert_array_equal(both[col], both[col + "_mesh"])
    blank = both[schema.PRESENCE].isna()
    assert 0 < blank.sum() < len(both)
    from videmo.extract.features.mesh import landmarks_array

    table = run.side_table("mesh", cfg.extract_hash(), cfg.mesh_hash())
    # NaN rows too
    np.testing.assert_array_equal(families._landmarks(table), landmarks_array(table))
    lm = np.stack(both[schema.LANDMARKS_POSE])
    assert lm.shape == (len(both), 3 * len(families.LANDMARK_SUBSET))
    assert np.isnan(lm[blank]).all() and np.isfinite(lm[~blank]).all()
    assert both.loc[blank, "mouthSmileLeft"].isna().all()
    # pose-normalised: the canonical face's geometry whatever the head's pose and size
    xyz = lm[~blank].reshape(-1, len(families.LANDMARK_SUBSET), 3)
    at = {name: xyz[:, k] for k, (_, name) in enumerate(families.LANDMARK_SUBSET)}
    assert (at["mouth_corner_r"][:, 0] < 0).all() and (at["mouth_corner_l"][:, 0] > 0).all()
    assert (at["brow_inner_r"][:, 1] < at["lid_upper_r"][:, 1]).all()  # y down: brow above
    assert (at["lid_upper_l"][:, 1] < at["lid_lower_l"][:, 1]).all()
    assert (at["chin"][:, 1] > at["lip_lower_mid"][:, 1]).all()
    width = at["mouth_corner_l"][:, 0] - at["mouth_corner_r"][:, 0]
    assert width.std() < 0.05 and 0.4 < width.mean() < 0.8  # eye corners are 1 apart
    clips = LC.build_clips(frames, sorted(golden), {"blendshapes", "landmarks"}, golden)
    x, names = LC.pooled(clips, ("blendshapes", "landmarks"))
    assert np.isfinite(x).all()  # a clip's missing rows take its own mean
    assert len(names) == len(LC.STATS) * (52 + 69) and "chin.y_mean" in names


def test_a_run_without_the_mesh_names_features_emotions_mesh(tmp_path):
    clips, golden = simulated(seed=1, n_clips=6, persons=2)
    run, cfg = fake_run(tmp_path, clips, golden, features=["fer+blendshapes"])
    with pytest.raises(base.LearnError, match=r"'blendshapes' comes from the face mesh.*no mesh "
                                           r"table \(its config has no mesh.*`features: "
                                           r"\[emotions, mesh\]`"):
        R.learn(run, cfg, progress=False)
    run, cfg = fake_run(tmp_path / "on", clips, golden, extract_features=["emotions", "mesh"],
                        features=["landmarks", "blendshapes"])
    with pytest.raises(base.LearnError, match=r"'blendshapes', 'landmarks' come from the face "
                                           r"mesh.*no clip has a mesh made under its config"):
        R.learn(run, cfg, progress=False)


def test_the_lstm_on_mesh_families_then_report_classifier_on_mesh_runs(tmp_path, capsys):
    run, cfg, golden = mesh_run(tmp_path / "train", seed=5, n_clips=12, persons=4)
    code = cli.main(["learn", str(run.path), "--no-progress", "--set", "learn.lstm_epochs=3",
                     "--set", "learn.classifiers=[lstm]", "--set", "learn.lstm_units=4",
                     "--set", "learn.features=[blendshapes+landmarks]",
                     "--set", "learn.bootstrap=100"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "chosen model: lstm (blendshapes+landmarks)" in out
    model = run.path / "learn" / "model"
    card = (model / "model-card.md").read_text()
    assert f"mesh hash {cfg.mesh_hash()}; landmarks: x, y, z of 23 pose-normalised" in card
    loaded = model_io.load_classifier(model)
    frames = run.frames(cfg.extract_hash())
    with pytest.raises(base.LearnError, match="not in the per-frame table"):
        loaded.predict(frames, sorted(golden))  # the mesh columns are joined, not stored
    expected = loaded.predict(loaded.with_features(frames, run, cfg), sorted(golden))
    assert set(expected) == set(golden)
    code = cli.main(["report", str(run.path), "--classifier", str(model), "--out",
                     str(tmp_path / "rep")])
    assert code == 0
    rep = pd.read_csv(tmp_path / "rep" / "clips.csv").set_index(schema.FILENAME)
    assert set(rep[schema.DECIDED_BY]) == {"lstm"}
    assert rep[schema.PREDICT].to_dict() == {c: schema.CLASS_SHORT[p]
                                             for c, p in expected.items()}
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["classifier"]["features"] == "blendshapes+landmarks"
    # a target run without the mesh: a clear error before any report is written
    clips, golden2 = simulated(seed=1, n_clips=4, persons=2)
    plain, _ = fake_run(tmp_path / "plain", clips, golden2)
    capsys.readouterr()
    assert cli.main(["report", str(plain.path), "--classifier", str(model), "--out",
                     str(tmp_path / "rep2")]) == 2
    err = capsys.readouterr().err
    assert "reads blendshapes+landmarks" in err and "features: [emotions, mesh]" in err
    assert not (tmp_path / "rep2" / "clips.csv").exists()


# ---------------------------------------------------------------- on the sample's real mesh
def _sample_job(folder: Path) -> Path:
    """Three sample clips, four sampled frames each, the mesh on (a few seconds)."""
    from .conftest import SAMPLE

    job = folder / "job.yaml"
    job.write_text(f"corpus: {{paths: [{SAMPLE}], include: ['*HAP*', '*NEU*', '*ANG*']}}\n"
                   f"sampling: {{every_n: 10, max_frames: 4}}\nfeatures: [emotions, mesh]\n"
                   f"run: {{out: {folder / 'run'}}}\n"
                   f"report: {{labels: {SAMPLE / 'labels.csv'}, figures: false}}\n")
    return job


@pytest.fixture(scope="module")
def sample_mesh_run(tmp_path_factory) -> RunDir:
    folder = tmp_path_factory.mktemp("sample-mesh")
    assert cli.main(["extract", str(_sample_job(folder)), "--no-progress"]) == 0
    return RunDir(folder / "run")


def test_mesh_families_read_the_real_mesh_rows_of_the_sample(sample_mesh_run):
    run = sample_mesh_run
    cfg = run.config()
    frames = families.with_mesh(run.frames(cfg.extract_hash()), run, cfg,
                         {"blendshapes", "landmarks"}, "sample")
    mesh = pd.read_parquet(run.path / schema.MESH_TABLE)
    faces = frames[frames[schema.FACE_INDEX] >= 0]
    assert len(faces) == len(mesh) == 12
    both = faces.merge(mesh, on=list(schema.MESH_KEYS), suffixes=("", "_mesh"))
    for col in schema.BLENDSHAPES:
        np.testing.assert_array_equal(both[col], both[col + "_mesh"])
    from videmo.extract.features.mesh import landmarks_array
    from videmo.extract.features.pose import normalize_landmarks

    idx = [i for i, _ in families.LANDMARK_SUBSET]
    expected = np.stack([normalize_landmarks(lm)[idx].reshape(-1)
                         for lm in landmarks_array(both)])
    np.testing.assert_array_equal(np.stack(both[schema.LANDMARKS_POSE]), expected)
    table = run.side_table("mesh", cfg.extract_hash(), cfg.mesh_hash())
    np.testing.assert_array_equal(families._landmarks(table.slice(3, 5)),  # an offset into a buffer
                                  landmarks_array(table)[3:8])
    xyz = expected.reshape(len(both), -1, 3)
    at = {name: xyz[:, k] for k, (_, name) in enumerate(families.LANDMARK_SUBSET)}
    assert (at["mouth_corner_r"][:, 0] < 0).all() and (at["mouth_corner_l"][:, 0] > 0).all()
    assert (at["brow_mid_l"][:, 1] < at["lid_upper_l"][:, 1]).all()
    assert (at["lip_upper_inner"][:, 1] <= at["lip_lower_inner"][:, 1]).all()
    width = pd.Series(at["mouth_corner_l"][:, 0] - at["mouth_corner_r"][:, 0]).groupby(
        both[schema.CLIP_ID].to_numpy()).mean()
    assert width["1001_DFA_HAP_XX"] > width["1001_DFA_NEU_XX"]  # a smile widens the mouth


def test_report_and_compare_take_a_mesh_model_as_rows(sample_mesh_run, tmp_path):
    """A logistic model on blendshapes (trained on simulated mesh rows) labels the sample's
    real clips through report --classifier, and a comparison job varying report.classifier
    has the vote and the model as rows."""
    import yaml

    train, tcfg, _ = mesh_run(tmp_path / "train", seed=2, n_clips=12, persons=4,
                              classifiers=["logistic"], features=["blendshapes"])
    model = R.learn(train, tcfg, progress=False).model_dir
    meta = json.loads((model / "model.json").read_text())
    assert meta["features"] == ["blendshapes"]
    assert len(meta["model"]["keep"]) == pooled.LOGISTIC_MAX_FEATURES < len(meta["feature_names"])
    assert cli.main(["report", str(sample_mesh_run.path), "--classifier", str(model),
                     "--out", str(tmp_path / "rep")]) == 0
    rep = pd.read_csv(tmp_path / "rep" / "clips.csv")
    assert set(rep[schema.DECIDED_BY]) == {"logistic"} and len(rep) == 3
    job = tmp_path / "cmp.yaml"
    job.write_text(yaml.safe_dump({"compare": {
        "base": str(_sample_job(sample_mesh_run.path.parent)), "out": str(tmp_path / "cmp"),
        "vary": {"report.classifier": [None, str(model)]}}}))
    assert cli.main(["compare", str(job), "--no-progress"]) == 0
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert list(table["classifier"]) == ["majority", "logistic (blendshapes)"]
    assert table["clips"].tolist() == [3, 3]
    cmp_rep = pd.read_csv(Path(tmp_path / "cmp") / table["run"][1] / "report" / "clips.csv")
    assert list(cmp_rep[schema.PREDICT]) == list(rep[schema.PREDICT])
    assert "| logistic (blendshapes) |" in (tmp_path / "cmp" / "comparison.md").read_text()


class _Centroid(base.ClipLearner):
    """A stranger: nearest class centroid of the pooled statistics, the distance measured on
    the features scaled by the training fold's std (``scale``: tuned on/off)."""

    name = "centroid"
    describes = "class centroids of the pooled statistics"

    def grid(self, lc):
        return [{"scale": False}, {"scale": True}]

    def inputs(self, clips, fs, max_frames):
        return np.nan_to_num(LC.pooled(clips, fs)[0])

    def input_names(self, clips, fs):
        return LC.pooled(clips, fs)[1]

    def estimator(self, params, lc, seed, fold):
        learner = self

        class Est:
            def fit(self, x, y):
                self.classes = sorted(set(y))
                self.std = x.std(axis=0) + 1e-9 if params["scale"] else np.ones(x.shape[1])
                self.centres = np.stack([x[y == c].mean(axis=0) for c in self.classes])
                return self

            def predict(self, x):
                d = (((x[:, None, :] - self.centres[None]) / self.std) ** 2).sum(axis=2)
                return np.asarray(self.classes, dtype=object)[d.argmin(axis=1)]

        learner.last = Est()
        return learner.last

    def export(self, model, x, model_dir):
        return {"centroid": {"classes": model.classes, "std": model.std.tolist(),
                             "centres": model.centres.tolist()}, "files": {}}

    def load(self, meta, model_dir):
        est = self.estimator({"scale": False}, None, 0, 0)
        spec = meta["centroid"]
        est.classes, est.std = spec["classes"], np.asarray(spec["std"])
        est.centres = np.asarray(spec["centres"])
        return est, 0


def test_a_learner_defined_here_is_cross_validated_saved_and_loaded_by_name(tmp_path):
    """The CV loop, the refit, the model folder and its loading know no learner by name: a
    learner registered here runs end to end with no other module edited."""
    import dataclasses

    clips, golden = simulated(seed=11, n_clips=30, persons=10)
    run, cfg = fake_run(tmp_path, clips, golden, classifiers=["logistic"], folds=3)
    base.register_learner(_Centroid())
    try:
        cfg = dataclasses.replace(cfg, learn=dataclasses.replace(cfg.learn,
                                                                 classifiers=["centroid"]))
        res = R.learn(run, cfg, progress=False)
        row = _row(res.results, "centroid")
        assert row[schema.KIND] == schema.KIND_LEARNED
        assert row[schema.ACCURACY] > _row(res.results, "majority")[schema.ACCURACY]
        summary = (res.out_dir / "summary.txt").read_text()
        assert "selected per fold, centroid|fer: fer {\"scale\"" in summary
        assert "class centroids of the pooled statistics" in \
            (res.model_dir / "model-card.md").read_text()
        meta = json.loads((res.model_dir / "model.json").read_text())
        assert meta["classifier"] == "centroid" and "centroid" in meta
        frames = run.frames(cfg.extract_hash())
        ids = sorted(golden)
        got = model_io.load_classifier(res.model_dir).predict(frames, ids)
        clips_ = LC.build_clips(frames, ids, {"fer"}, golden)
        x = np.nan_to_num(LC.pooled(clips_, ("fer",))[0])
        want = base.get_learner("centroid").load(meta, res.model_dir)[0].predict(x)
        assert got == dict(zip(clips_.ids, want, strict=True))
    finally:
        base.LEARNERS.pop("centroid")


def test_applying_a_saved_model_imports_neither_the_training_code_nor_scikit_learn():
    import subprocess
    import sys

    code = ("import sys; import videmo.evaluate.learn.model_io; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sklearn', 'matplotlib', 'tensorflow', 'tqdm') or m.startswith("
            "('videmo.evaluate.learn.cv', 'videmo.evaluate.learn.run', "
            "'videmo.evaluate.learn.card'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
