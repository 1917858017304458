"""emotions.model: the shipped mesh frame models score the faces of a run (issue 13), through
the feature-extractor interface (issue 12), on real frames of the sample corpus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from videmo import config as config_mod
from videmo import schema
from videmo.cli import main
from videmo.evaluate.vote import clip_votes, face_rows
from videmo.extract.corpus import Clip
from videmo.extract.features import EXTRACTORS, extractor_class, ordered
from videmo.extract.features.frame_model import load_frame_model
from videmo.extract.features.mesh import FaceMesh
from videmo.extract.pipeline import analyze_clip, load_models
from videmo.models import FRAME_MODEL_FILES
from videmo.store import RunDir

from .conftest import SAMPLE, make_config

HAPPY = SAMPLE / "1001_DFA_HAP_XX.flv"


def test_a_mesh_frame_model_turns_the_mesh_on_and_keys_the_table(tmp_path):
    fer = make_config(tmp_path, SAMPLE, emotions={"model": "fer"})
    blend = make_config(tmp_path, SAMPLE, emotions={"model": "blendshapes"})
    land = make_config(tmp_path, SAMPLE, emotions={"model": "landmarks"})
    assert fer.features == ["emotions"]
    assert blend.features == ["emotions", "mesh"] and blend.table_hash("mesh") is not None
    assert len({fer.extract_hash(), blend.extract_hash(), land.extract_hash()}) == 3
    key = blend.extract_key()
    assert set(FRAME_MODEL_FILES["blendshapes"]) <= set(key["model_sha256"])
    assert "emotion_model_quantized.tflite" not in key["model_sha256"]
    assert key["emotions"] == {"model": "blendshapes"}  # engine/batch_size apply to fer only
    # fer's key is the one it had before emotions.model existed: old runs stay done
    assert "model" not in fer.extract_key()["emotions"]
    assert make_config(tmp_path, SAMPLE, emotions={"model": "blendshapes", "engine": "keras"}
                       ).extract_hash() == blend.extract_hash()
    with pytest.raises(config_mod.ConfigError, match="emotions.model"):
        make_config(tmp_path, SAMPLE, emotions={"model": "blendshape"})


def test_extractors_run_after_what_they_need(tmp_path):
    fer = make_config(tmp_path, SAMPLE)
    blend = make_config(tmp_path, SAMPLE, emotions={"model": "blendshapes"})
    assert ordered(["emotions"], fer) == ["emotions"]
    assert ordered(["emotions"], blend) == ["mesh", "emotions"]
    assert ordered(["emotions", "mesh"], blend) == ["mesh", "emotions"]
    for name in EXTRACTORS:
        cls = extractor_class(name)
        assert cls.name == name and cls.columns and cls.table
        assert cls.cache_hash(blend) == {"emotions": blend.extract_hash(),
                                         "mesh": blend.table_hash("mesh")}[name]
    with pytest.raises(KeyError, match="known: emotions, mesh"):
        extractor_class("pose")


@pytest.mark.parametrize("model", ["blendshapes", "landmarks"])
def test_frame_model_scores_are_the_model_on_each_face_mesh(tmp_path, model):
    """The table's seven scores of every face are the frame model on that face's own mesh row
    (same face, same order), and the mesh table is written beside them."""
    cfg = make_config(tmp_path, SAMPLE, sampling={"every_n": 15},
                      emotions={"model": model})
    result = analyze_clip(Clip("hap", HAPPY), cfg, load_models(cfg, 1))
    assert result.status == schema.DONE
    table = result.rows.to_pandas()
    rows = table[table[schema.FACE_INDEX] >= 0]
    mesh = result.tables["mesh"].to_pandas()
    assert len(rows) == len(mesh) > 0
    probs = rows[list(schema.EMOTIONS)].to_numpy(float)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    # recompute from the stored mesh: the frame model's own features of each row
    from videmo.extract.features import frame_model as fm
    from videmo.extract.features.mesh import landmarks_array

    net = load_frame_model(model)
    x = fm.features(net.card, mesh[list(schema.BLENDSHAPES)].to_numpy(np.float32),
                    landmarks_array(mesh))
    np.testing.assert_allclose(net.predict_features(x), probs, atol=2e-3)
    # a posed happy face: the frame model finds the smile in most frames
    assert (np.asarray(schema.EMOTIONS)[probs.argmax(axis=1)] == "happy").mean() >= 0.5


def test_a_face_without_a_mesh_has_no_scores_and_no_vote(tmp_path):
    cfg = make_config(tmp_path, SAMPLE, sampling={"every_n": 15},
                      emotions={"model": "blendshapes"}, mesh={"min_presence": 1.0})
    result = analyze_clip(Clip("hap", HAPPY), cfg, load_models(cfg, 1))
    table = result.rows.to_pandas()
    faces = table[table[schema.FACE_INDEX] >= 0]
    assert len(faces) > 0 and faces[list(schema.EMOTIONS)].isna().all().all()
    assert face_rows(table).empty
    vote = clip_votes(table, ["hap"], schema.STUDY_MAPPING)
    assert vote[schema.PREDICT][0] == schema.NO_FACE


def test_videmo_run_with_a_frame_model_writes_both_tables_and_records_the_model(tmp_path,
                                                                                 capsys):
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{SAMPLE}], include: ['*HAP*', '*NEU*']}}\n"
                   f"sampling: {{every_n: 10}}\nrun: {{out: {tmp_path / 'run'}}}\n"
                   f"emotions: {{model: fer}}\nreport: {{labels: {SAMPLE / 'labels.csv'}}}\n")
    assert main(["run", str(job), "--no-progress", "--set", "emotions.model=blendshapes"]) == 0
    run = RunDir(tmp_path / "run")
    recorded = run.config()
    assert recorded.emotions.model == "blendshapes" and "mesh" in recorded.features
    frames = pd.read_parquet(run.frames_path)
    assert (run.path / schema.MESH_TABLE).exists() and len(face_rows(frames)) > 0
    assert "no_face 0, failed 0, not_extracted 0" in capsys.readouterr().out
    # the same run directory under fer: refused, naming the model; with --force redone by fer
    assert main(["extract", str(job), "--no-progress"]) == 2
    assert "emotions.model: blendshapes" in capsys.readouterr().err
    import shutil

    shutil.copytree(tmp_path / "run", tmp_path / "blend")
    assert main(["run", str(job), "--no-progress", "--force"]) == 0
    assert "2 done, 0 already done" in capsys.readouterr().out
    assert RunDir(tmp_path / "run").config().emotions.model == "fer"
    # side by side as rows of a comparison, each naming its frame model
    assert main(["compare", "--runs", str(tmp_path / "run"), str(tmp_path / "blend"),
                 "--out", str(tmp_path / "cmp")]) == 0
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert table.set_index("run")["frame_model"].to_dict() == {"run": "fer",
                                                               "blend": "blendshapes"}
    assert "blend (emotions.model blendshapes)" in (tmp_path / "cmp" / "comparison.md"
                                                   ).read_text()


def test_mesh_models_load_once_per_process(tmp_path):
    cfg = make_config(tmp_path, SAMPLE, emotions={"model": "landmarks"})
    a, b = load_models(cfg, 1), load_models(cfg, 1)
    assert a is b and list(a.extractors) == ["mesh", "emotions"]
    assert isinstance(a.extractors["mesh"].mesh, FaceMesh)


def test_sharded_extraction_with_a_frame_model_merges_both_tables(tmp_path):
    """What a SLURM array runs (videmo extract --shard I/N, then videmo report as the merge
    job) with a mesh frame model."""
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{SAMPLE}], include: ['*HAP*', '*NEU*']}}\n"
                   f"sampling: {{every_n: 15}}\nemotions: {{model: landmarks}}\n"
                   f"run: {{out: {tmp_path / 'run'}}}\n")
    for shard in ("0/2", "1/2"):
        assert main(["extract", str(job), "--shard", shard, "--no-progress"]) == 0
    run = RunDir(tmp_path / "run")
    assert not (run.path / schema.MESH_TABLE).exists()  # a shard leaves the merge to the merge job
    assert main(["report", str(run.path)]) == 0
    frames, mesh = pd.read_parquet(run.frames_path), pd.read_parquet(run.path / schema.MESH_TABLE)
    assert sorted(set(mesh[schema.CLIP_ID])) == sorted(set(frames[schema.CLIP_ID])) == [
        "1001_DFA_HAP_XX", "1001_DFA_NEU_XX"]
    assert len(mesh) == int((frames[schema.FACE_INDEX] >= 0).sum())
