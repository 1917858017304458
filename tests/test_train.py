"""videmo train and the shipped frame models: the FER2013 reader and its splits, the feature
selection rule, the command end to end on a tiny set of faces cropped from the CREMA-D sample
when the tests run (tests/train_fixture.py), a resumable cache, and the shipped weights against
recorded outputs on stored inputs (tests/data/frame_models_golden.npz, made with
scripts/frame_models_golden.py), so that the golden test checks the models, not the CPU's
LiteRT kernels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videmo import cli, schema
from videmo.config import ConfigError, from_dict
from videmo.extract.features import frame_model as FM
from videmo.models import FRAME_MODEL_FILES
from videmo.train import data, features, run

from .conftest import REPO
from .train_fixture import build

GOLDEN = REPO / "tests" / "data" / "frame_models_golden.json"
# Tolerances from the kernel spread measured by scripts/kernel_spread.py (the numbers and the
# machine: tests/data/README.md, "Tolerances of the golden tests"); each is 10 times the widest
# spread one CPU shows between kernel families, which bounds what another CPU's kernels give.
# The Keras frame models on the stored inputs: spread 1.8e-7 (oneDNN on / off, batched / one
# face at a time).
GOLDEN_ATOL = 2e-6
# The mesh (LiteRT) on the stored crops, upscaled to 192 px: spreads 0.019 px (landmarks, max
# over points) and 6.0e-4 (blendshapes); the frame models' outputs on those meshes: 3.2e-4.
MESH_LANDMARKS_ATOL = 0.2
MESH_BLENDSHAPES_ATOL = 6e-3
MESH_PROBABILITY_SPREAD = 3.2e-4


@pytest.fixture(scope="session")
def fer_like(tmp_path_factory) -> Path:
    """FER2013-shaped faces cropped from the CREMA-D sample (tests/train_fixture.py)."""
    return build(tmp_path_factory.mktemp("fer-like"))


def test_folders_reader_counts_splits_and_skips_other_files(fer_like, tmp_path):
    images = data.read(fer_like, "folders")
    assert images.counts() == {"Training": 36, "PublicTest": 0, "PrivateTest": 12}
    assert images.skipped == 1  # NOTE.md
    assert images.class_counts("Training")["surprise"] == 0
    assert images.class_counts("Training")["happy"] == 6
    # augmented copies (other names) are skipped; an unknown emotion folder is an error
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "Training_1.jpg").write_bytes((fer_like / "happy" / "Training_25.jpg")
                                                         .read_bytes())
    (tmp_path / "happy" / "aug_Training_2.jpg").write_bytes(b"x")
    assert data.read(tmp_path, "folders").skipped == 1
    (tmp_path / "smirk").mkdir()
    (tmp_path / "smirk" / "Training_3.jpg").write_bytes(b"x")
    with pytest.raises(data.DataError, match="smirk"):
        data.read(tmp_path, "folders")


def test_csv_reader(tmp_path):
    pixels = " ".join(["7"] * 2304)
    (tmp_path / "fer2013.csv").write_text(
        "emotion,pixels,Usage\n3," + pixels + ",Training\n6," + pixels + ",PrivateTest\n"
        "0," + pixels + ",PublicTest\n")
    images = data.read(tmp_path / "fer2013.csv", "csv")
    assert images.counts() == {"Training": 1, "PublicTest": 1, "PrivateTest": 1}
    item = images.items["Training"][0]
    assert schema.EMOTIONS[item.label] == "happy"
    assert item.read().shape == (48, 48) and item.read()[0, 0] == 7
    (tmp_path / "bad.csv").write_text("emotion,pixels,Usage\n9," + pixels + ",Training\n")
    with pytest.raises(data.DataError, match="line 2"):
        data.read(tmp_path / "bad.csv", "csv")


def test_holdout_is_stratified_and_fixed():
    labels = np.repeat(np.arange(7), [40, 5, 30, 70, 50, 30, 50])
    a, b = data.holdout(labels, 0), data.holdout(labels, 0)
    assert (a == b).all() and not (a == data.holdout(labels, 1)).all()
    for c, n in zip(range(7), [40, 5, 30, 70, 50, 30, 50], strict=True):
        assert a[labels == c].sum() == round(0.1 * n)


@pytest.mark.parametrize(("min_score", "min_images", "expected"), [
    (0.4, 2, ["_neutral", "browDownLeft"]),  # 3 and 4 images above 0.4
    (0.4, 3, ["browDownLeft"]),  # more than 3: only the one above in 4 images
    (0.5, 2, ["browDownLeft"]),  # 0.45 no longer counts
])
def test_blendshape_selection_rule(min_score, min_images, expected):
    blend = np.zeros((6, 52), np.float32)
    blend[:3, 0] = 0.45
    blend[:4, 1] = 0.9
    blend[:2, 2] = 0.9
    blend[5, 3] = np.nan
    assert run.select_blendshapes(blend, min_score, min_images) == expected


def test_train_config_is_typed_and_checked():
    cfg = from_dict({"train": {"data": "x", "epochs": 3, "models": ["blend_mlp"]}})
    assert cfg.train.epochs == 3
    with pytest.raises(ConfigError):
        from_dict({"train": {"models": ["blend_svm"]}})
    with pytest.raises(ConfigError):
        from_dict({"emotions": {"model": "resnet"}})


def test_train_end_to_end_on_the_fixture(fer_like, tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"train:\n  data: {fer_like}\n  cache: {tmp_path / 'cache'}\n"
                   f"  out: {tmp_path / 'out'}\n  epochs: 2\n  min_images: 2\n  workers: 1\n"
                   "  models: [blend_mlp, blend_gboost, land_cnn_procrustes]\n")
    assert cli.main(["train", str(cfg), "--no-progress"]) == 0
    assert "| blend_mlp | blendshapes |" in capsys.readouterr().out
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["split_counts_found"] == {"Training": 36, "PublicTest": 0, "PrivateTest": 12}
    assert res["images"] == {"fit": 30, "select": 6, "test": 12}  # 1 of 6 per class held out
    assert res["no_mesh"] == {"Training": 0, "PrivateTest": 0}
    assert 0 < res["n_blendshapes_kept"] < 52
    for name in ("blend_mlp", "blend_gboost", "land_cnn_procrustes"):
        p = res["models"][name]["private_test"]
        assert np.array(p["confusion_7"]).sum() == 12 and np.array(p["confusion_3"]).sum() == 12
        assert 0 <= p["accuracy_7"] <= 1 and len(p["recall_7"]) == 7
    # a Keras model and its card are written, and load through the FrameModel interface
    card = json.loads((tmp_path / "out" / "models" / "blend_mlp.json").read_text())
    assert card["features"] == res["blendshapes_kept"] and card["emotions"] == list(
        schema.EMOTIONS)
    model = FM.load(tmp_path / "out" / "models" / "blend_mlp.keras",
                    tmp_path / "out" / "models" / "blend_mlp.json", "blend_mlp")
    meshes = _meshes(fer_like, ["happy/PrivateTest_31.jpg"])
    p = model.predict(meshes)
    assert p.shape == (1, 7) and abs(float(p.sum()) - 1) < 1e-5


def test_feature_cache_resumes_at_the_missing_chunk(fer_like, tmp_path, monkeypatch):
    images = data.read(fer_like, "folders")
    monkeypatch.setattr(features, "CHUNK", 8)
    first = features.extract(images, tmp_path, 192, 1, progress=False)
    chunks = sorted(tmp_path.rglob("chunk_*.npz"))
    assert len(chunks) == 5 + 2  # 36 Training images in chunks of 8, 12 PrivateTest
    chunks[1].unlink()
    stamps = {c: c.stat().st_mtime_ns for c in chunks if c.exists()}
    again = features.extract(images, tmp_path, 192, 1, progress=False)
    assert chunks[1].exists()
    assert all(c.stat().st_mtime_ns == t for c, t in stamps.items())  # only the missing one
    np.testing.assert_array_equal(first["Training"].blendshapes, again["Training"].blendshapes)
    # another upscale is another cache entry
    assert features.cache_key(images.items["Training"], 160) != features.cache_key(
        images.items["Training"], 192)


def _meshes(fer_like, names: list[str]):
    from videmo.extract.features.mesh import FaceMesh

    mesh = FaceMesh(1)
    out = []
    for name in names:
        result, source = features.mesh_image(
            mesh, features.upscale(data.Item("PrivateTest", 0, name, fer_like / name).read(), 192))
        assert source != features.SOURCE_NONE, name
        out.append(result)
    return out


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def golden_inputs(golden) -> dict[str, np.ndarray]:
    """The stored crops and the mesh numbers the recording machine made of them."""
    with np.load(GOLDEN.with_name(golden["inputs"])) as g:
        return {k: g[k] for k in g.files}


@pytest.mark.parametrize("name", tuple(FRAME_MODEL_FILES))
def test_shipped_frame_models_give_the_recorded_outputs(name, golden, golden_inputs):
    """The model alone, on stored inputs: Keras on the same numbers, on any CPU."""
    model = FM.load_frame_model(name)
    assert model.card["kind"] == name
    assert {k: model.card[k] for k in golden[name]["card"]} == golden[name]["card"]
    x = FM.features(model.card, golden_inputs["blendshapes"], golden_inputs["landmarks"])
    p = model.predict_features(x)
    np.testing.assert_allclose(p, np.array(golden[name]["probabilities"]), rtol=0,
                               atol=GOLDEN_ATOL)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)


def test_golden_inputs_are_what_the_mesh_makes_of_the_stored_crops(golden, golden_inputs):
    """The stored inputs are the training preprocessing's output, within the kernel spread:
    the same mesh source, landmarks within MESH_LANDMARKS_ATOL px, blendshapes within
    MESH_BLENDSHAPES_ATOL."""
    from videmo.extract.features.mesh import FaceMesh

    mesh = FaceMesh(1)
    for i, grey in enumerate(golden_inputs["crops"]):
        result, source = features.mesh_image(mesh, features.upscale(grey, golden["upscale"]))
        assert source == golden_inputs["source"][i], golden["images"][i]
        np.testing.assert_allclose(result.landmarks, golden_inputs["landmarks"][i], rtol=0,
                                   atol=MESH_LANDMARKS_ATOL, err_msg=golden["images"][i])
        np.testing.assert_allclose(result.blendshapes, golden_inputs["blendshapes"][i], rtol=0,
                                   atol=MESH_BLENDSHAPES_ATOL, err_msg=golden["images"][i])


def test_a_change_in_feature_order_or_preprocessing_is_caught(golden, golden_inputs):
    """The golden tests above can fail: a swapped blendshape order or landmarks min-max scaled
    instead of pose-normalised move the outputs far beyond GOLDEN_ATOL, and another upscale
    moves them far beyond what the mesh's kernels may (MESH_PROBABILITY_SPREAD)."""
    blend = FM.load_frame_model("blendshapes")
    x = FM.features(blend.card, golden_inputs["blendshapes"], None)
    reordered = x[:, ::-1].copy()
    assert np.abs(blend.predict_features(reordered) -
                  np.array(golden["blendshapes"]["probabilities"])).max() > 5000 * GOLDEN_ATOL
    land = FM.load_frame_model("landmarks")
    other = "minmax" if land.card["normalization"] == "procrustes" else "procrustes"
    assert np.abs(land.predict_features(FM.landmark_features(golden_inputs["landmarks"], other)) -
                  np.array(golden["landmarks"]["probabilities"])).max() > 5000 * GOLDEN_ATOL
    from videmo.extract.features.mesh import FaceMesh

    mesh = FaceMesh(1)
    bigger = [features.mesh_image(mesh, features.upscale(grey, 320))[0]
              for grey in golden_inputs["crops"]]
    for model in (blend, land):
        moved = np.abs(model.predict(bigger) - np.array(golden[model.name]["probabilities"]))
        assert moved.max() > 10 * MESH_PROBABILITY_SPREAD, model.name


def test_shipped_frame_model_files_are_registered():
    from videmo.models import FRAME_MODEL_FILES, SHA256, model_path

    for network, card in FRAME_MODEL_FILES.values():
        assert network in SHA256 and card in SHA256
        model_path(network), model_path(card)
    readme = (REPO / "src" / "videmo" / "models" / "README.md").read_text()
    for network, card in FRAME_MODEL_FILES.values():
        assert network in readme and card in readme


def test_train_without_data_is_a_usage_error(tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"train:\n  data: {tmp_path / 'missing'}\n")
    assert cli.main(["train", str(cfg)]) == cli.EXIT_USAGE
    assert "missing is not a folder" in capsys.readouterr().err
    cfg.write_text("train:\n  epochs: 2\n")
    assert cli.main(["train", str(cfg)]) == cli.EXIT_USAGE
    assert "train.data: not set" in capsys.readouterr().err
