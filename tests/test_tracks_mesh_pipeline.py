"""Face tracks, the mesh as a second per-frame feature table, and the mediapipe detector, in
the pipeline on real frames of the sample corpus."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.evaluate.vote import clip_votes, main_track, main_track_rows
from videmo.extract.features.mesh import landmarks_array
from videmo.extract.pipeline import frame_table
from videmo.extract.tracks import assign_tracks
from videmo.store import RunDir

from .conftest import SAMPLE

NAN4 = [np.nan] * 4


# ------------------------------------------------------------------ tracks (counting)
@pytest.mark.parametrize(("frames", "boxes", "expected"), [
    # one face drifting slowly: one track
    ([0, 1, 2], [[10, 10, 50, 50], [14, 12, 50, 50], [18, 14, 52, 52]], [0, 0, 0]),
    # two faces side by side, listed in either order: each keeps its track
    ([0, 0, 1, 1], [[0, 0, 40, 40], [200, 0, 40, 40], [202, 2, 40, 40], [2, 1, 40, 40]],
     [0, 1, 1, 0]),
    # a face that jumped further than one box width: a new person
    ([0, 1], [[0, 0, 40, 40], [300, 0, 40, 40]], [0, 1]),
    # little overlap (IoU 0.14) but a move of 0.75 box widths (sparse sampling): the same track
    ([0, 1], [[0, 0, 40, 40], [30, 0, 40, 40]], [0, 0]),
    # the same place but four times the size (a cut to a close-up): a new track
    ([0, 1], [[0, 0, 40, 40], [0, 0, 160, 160]], [0, 1]),
    # frames without a face get -1 and do not end a track shorter than max_gap
    ([0, 1, 2], [[0, 0, 40, 40], NAN4, [1, 1, 40, 40]], [0, -1, 0]),
])
def test_assign_tracks(frames, boxes, expected):
    assert assign_tracks(np.array(frames), np.array(boxes, float)).tolist() == expected


def test_a_track_ends_after_max_gap_sampled_frames():
    frames = np.arange(8)
    boxes = np.array([[0, 0, 40, 40]] + [NAN4] * 6 + [[0, 0, 40, 40]], float)
    assert assign_tracks(frames, boxes, max_gap=5).tolist()[-1] == 1
    assert assign_tracks(frames, boxes, max_gap=7).tolist()[-1] == 0


def test_main_track_is_the_longest_then_the_largest():
    assert main_track(np.array([0, 1, 1, 0, 1]), np.ones(5)) == 1
    assert main_track(np.array([0, 1, 0, 1]), np.array([1, 4, 1, 4.0])) == 1
    assert main_track(np.array([-1, -1]), np.ones(2)) == -1


def test_report_track_main_votes_on_one_person():
    """faces.select: all in a two-person clip: the frame majority of all faces is angry (the
    second person, in fewer frames), the main person (in every frame) is happy."""
    happy = [0.01, 0, 0, 0.95, 0.02, 0.01, 0.01]
    angry = [0.95, 0, 0, 0.01, 0.02, 0.01, 0.01]
    rows = []
    for f in range(4):  # person A everywhere; person B in frames 0-2, twice as many rows
        rows.append(("c", f, f / 10, 3 if f < 3 else 1, 0, 10, 10, 50, 50, 1.0, *happy))
        if f < 3:
            rows.append(("c", f, f / 10, 3, 1, 200, 10, 50, 50, 1.0, *angry))
            rows.append(("c", f, f / 10, 3, 2, 400, 10, 50, 50, 1.0, *angry))
    df = frame_table(rows).to_pandas()
    assert sorted(set(df[schema.TRACK])) == [0, 1, 2]
    assert clip_votes(df, ["c"], schema.STUDY_MAPPING)[schema.PREDICT][0] == schema.NEGATIVE
    main = main_track_rows(df)
    assert set(main[schema.TRACK]) == {0}
    assert clip_votes(main, ["c"], schema.STUDY_MAPPING)[schema.PREDICT][0] == schema.POSITIVE
    with pytest.raises(ValueError, match="track column"):
        main_track_rows(df.drop(columns=schema.TRACK))


# ------------------------------------------------------------------ the mesh in a run
def _job(tmp_path, features="[emotions, mesh]", detector="haar"):
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{SAMPLE}], include: ['*HAP*', '*NEU*']}}\n"
                   f"sampling: {{every_n: 5}}\nfaces: {{detector: {detector}}}\n"
                   f"features: {features}\nrun: {{out: {tmp_path / 'run'}, jobs: 1}}\n"
                   f"report: {{labels: {SAMPLE / 'labels.csv'}, timeline_clips: 1}}\n")
    return job


def test_mesh_run_writes_a_joinable_compact_table_and_the_figures(tmp_path):
    assert main(["run", str(_job(tmp_path)), "--no-progress"]) == 0
    run = RunDir(tmp_path / "run")
    frames = pd.read_parquet(run.frames_path)
    mesh = pd.read_parquet(run.path / schema.MESH_TABLE)
    assert list(mesh.columns) == list(schema.MESH_COLUMNS)
    faces = frames[frames[schema.FACE_INDEX] >= 0]
    keys = list(schema.MESH_KEYS)
    joined = faces.merge(mesh, on=keys, how="left", validate="one_to_one")
    assert len(mesh) == len(faces) and joined[schema.PRESENCE].notna().all()
    assert mesh[schema.PRESENCE].ge(0.5).mean() >= 0.9  # a mesh in 90% of the face rows
    smile = mesh.assign(s=(mesh.mouthSmileLeft + mesh.mouthSmileRight) / 2).groupby(
        schema.CLIP_ID)["s"].mean()
    assert smile["1001_DFA_HAP_XX"] > smile["1001_DFA_NEU_XX"] + 0.1
    assert mesh[schema.YAW].abs().max() < 20
    lm = landmarks_array(mesh)
    assert lm.shape == (len(mesh), 478, 3) and lm.dtype == np.float32
    x, y = lm[..., 0], lm[..., 1]
    box = joined[list(schema.BOX)].to_numpy(float)
    margin = 0.25 * box[:, 2:3]
    assert ((x >= box[:, :1] - margin) & (x <= box[:, :1] + box[:, 2:3] + margin)).mean() > 0.99
    assert ((y >= box[:, 1:2] - margin) & (y <= box[:, 1:2] + box[:, 3:4] + margin)).mean() > 0.99
    # compact: float32 landmarks in one fixed-size list column, well under a CSV of the numbers
    csv_bytes = len(mesh.drop(columns=schema.LANDMARKS).to_csv(index=False)) + sum(
        len(",".join(f"{v:.6g}" for v in row)) + 1 for row in lm.reshape(len(lm), -1))
    assert os.path.getsize(run.path / schema.MESH_TABLE) < 0.6 * csv_bytes
    figures = list((tmp_path / "run" / "report" / "figures" / "timelines").glob("*-blendshapes*"))
    assert len(figures) == 1  # timeline_clips: 1
    assert "blendshapes over time of" in (tmp_path / "run" / "report" / "report.html").read_text()


def test_turning_the_mesh_on_for_a_finished_run_extracts_only_the_mesh(tmp_path, monkeypatch,
                                                                       capsys):
    from videmo.extract import pipeline

    job = _job(tmp_path, features="[emotions]")
    assert main(["extract", str(job), "--no-progress"]) == 0
    run = RunDir(tmp_path / "run")
    table = pd.read_parquet(run.frames_path)
    parts = {p: p.stat().st_mtime_ns for p in run.parts.glob("*.parquet")}
    calls = []
    real = pipeline.analyze_clip

    def spy(clip, cfg, models, on_frames=None, **kw):
        calls.append((clip.clip_id, kw))
        return real(clip, cfg, models, on_frames, **kw)

    monkeypatch.setattr("videmo.execute.local.analyze_clip", spy)
    job.write_text(job.read_text().replace("features: [emotions]",
                                           "features: [emotions, mesh]"))
    assert main(["extract", str(job), "--no-progress"]) == 0
    assert sorted(c for c, _ in calls) == ["1001_DFA_HAP_XX", "1001_DFA_NEU_XX"]
    assert all(kw == {"tables": ["mesh"]} for _, kw in calls)
    assert {p: p.stat().st_mtime_ns for p in run.parts.glob("*.parquet")} == parts
    pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path), table)
    assert (run.path / schema.MESH_TABLE).exists()
    rec = json.loads(run.record_path("1001_DFA_HAP_XX").read_text())
    assert rec["mesh_hash"] and rec[schema.STATUS] == schema.DONE
    calls.clear()
    assert main(["extract", str(job), "--no-progress"]) == 0  # nothing left to do
    assert calls == [] and "0 done, 2 already done" in capsys.readouterr().out
    # turning it off again keeps the per-frame table done: nothing is redone
    job.write_text(job.read_text().replace("features: [emotions, mesh]",
                                           "features: [emotions]"))
    assert main(["extract", str(job), "--no-progress"]) == 0 and calls == []


def test_mediapipe_detector_feeds_the_emotion_scores(tmp_path):
    assert main(["extract", str(_job(tmp_path, features="[emotions]", detector="mediapipe")),
                 "--no-progress"]) == 0
    frames = pd.read_parquet(tmp_path / "run" / "frames.parquet")
    faces = frames[frames[schema.FACE_INDEX] >= 0]
    assert len(faces) == len(frames.drop_duplicates([schema.CLIP_ID, schema.FRAME_INDEX]))
    assert faces[schema.CONFIDENCE].between(0.5, 1).all()
    top = faces.groupby(schema.CLIP_ID)["happy"].mean()
    assert top["1001_DFA_HAP_XX"] > top["1001_DFA_NEU_XX"]
    assert (faces[schema.TRACK] == 0).all()  # one actor, one track
