"""The extract stage end to end: the CLI on the sample corpus, resume, bad inputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.extract import pipeline
from videmo.extract.corpus import Clip
from videmo.extract.detectors import Face
from videmo.extract.features.emotions import EmotionsExtractor
from videmo.store import RunDir, safe_name

from .conftest import REPO, SAMPLE_CLIPS, make_config, write_video


def write_job(tmp_path: Path, corpus: Path, **extra) -> Path:
    lines = [f"corpus:\n  paths: [{corpus}]", "sampling:\n  every_n: 10",
             f"run:\n  out: {tmp_path / 'run'}\n  jobs: 1"]
    for section, body in extra.items():
        lines.append(f"{section}:\n" + "".join(f"  {k}: {v}\n" for k, v in body.items()))
    p = tmp_path / "job.yaml"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_extract_sample_corpus(tmp_path, sample_corpus, capsys):
    job = write_job(tmp_path, sample_corpus)
    assert main(["extract", str(job), "--no-progress"]) == 0
    run = tmp_path / "run"
    df = pd.read_parquet(run / "frames.parquet")
    assert list(df.columns) == list(schema.FRAME_COLUMNS)
    assert sorted(df[schema.CLIP_ID].unique()) == sorted(p.stem for p in SAMPLE_CLIPS)
    # every 10th of 56-70 frames: 6 or 7 rows a clip, a face in every one
    assert df.groupby(schema.CLIP_ID).size().between(6, 7).all()
    assert (df[schema.N_FACES] >= 1).all()
    assert np.allclose(df[list(schema.EMOTIONS)].sum(axis=1), 1, atol=1e-3)
    manifest = pd.read_csv(run / "manifest.csv")
    assert (manifest[schema.STATUS] == schema.DONE).all()
    assert manifest[schema.FRAMES_SAMPLED].sum() == len(df)
    meta = json.loads((run / "run.json").read_text())
    assert meta["model_sha256"] and meta["versions"]["opencv-python-headless"]
    assert (run / "config.yaml").exists()
    assert "6 done" in capsys.readouterr().out


class FakeDetector:
    """Counts frames; finds two faces in even frames, none in odd ones."""

    name = "fake"

    def __init__(self):
        self.frames = 0

    def detect(self, frames, scale=1.0):
        self.frames += len(frames)
        return [[Face(100, 60, 120, 120), Face(300, 60, 60, 60)] if i % 2 == 0 else []
                for i in range(self.frames - len(frames), self.frames)]


class FakeModel:
    name = "fake"

    def predict(self, faces):
        out = np.zeros((len(faces), 7), np.float32)
        out[:, 3] = 1.0
        return out


@pytest.mark.parametrize(("select", "rows_with_face"), [("largest", 1), ("first", 1), ("all", 2)])
def test_rows_keep_no_face_frames_and_follow_selection(tmp_path, select, rows_with_face):
    cfg = make_config(tmp_path, SAMPLE_CLIPS[0].parent, sampling={"every_n": 10},
                      faces={"select": select})
    models = pipeline.Models(FakeDetector(), {"emotions": EmotionsExtractor.of(FakeModel())})
    result = pipeline.analyze_clip(Clip("a", SAMPLE_CLIPS[0]), cfg, models)
    df = result.rows.to_pandas()
    assert result.status == schema.DONE and result.frames_sampled == 7
    assert models.detector.frames == 7 and result.frames_with_face == 4
    no_face = df[df[schema.N_FACES] == 0]
    assert len(no_face) == 3 and (no_face[schema.FACE_INDEX] == -1).all()
    assert no_face[schema.BOX_X].isna().all() and no_face["happy"].isna().all()
    faces = df[df[schema.N_FACES] == 2]
    assert len(faces) == 4 * rows_with_face
    if select == "all":
        assert sorted(faces[schema.FACE_INDEX].unique()) == [0, 1]
    else:
        assert set(faces[schema.BOX_W]) == {120} and (faces["happy"] == 1).all()


def count_analysed(monkeypatch) -> list[str]:
    """The ids of the clips analysed from now on (in this process), in order."""
    analysed: list[str] = []
    real = pipeline.analyze_clip

    def counting(clip, *args, **kwargs):
        analysed.append(clip.clip_id)
        return real(clip, *args, **kwargs)

    monkeypatch.setattr("videmo.execute.local.analyze_clip", counting)
    return analysed


def test_resume_skips_done_clips_and_refuses_other_config(tmp_path, sample_corpus, monkeypatch,
                                                          capsys):
    job = write_job(tmp_path, sample_corpus)
    assert main(["extract", str(job), "--no-progress"]) == 0
    run = RunDir(tmp_path / "run")
    before = pd.read_parquet(run.frames_path)
    # a killed run: one clip's record is gone, another left a temp file behind
    run.record_path("1001_DFA_SAD_XX").unlink()
    (run.parts / ".junk.parquet.x.tmp").write_bytes(b"half a file")
    analysed = count_analysed(monkeypatch)
    capsys.readouterr()
    assert main(["extract", str(job), "--no-progress"]) == 0
    assert analysed == ["1001_DFA_SAD_XX"]
    assert "1 done, 5 already done" in capsys.readouterr().out
    after = pd.read_parquet(run.frames_path)
    pd.testing.assert_frame_equal(before, after)  # no lost or duplicated rows
    # another extract config is refused, --force redoes everything
    assert main(["extract", str(job), "--no-progress", "--set", "sampling.every_n=15"]) == 2
    assert "different config" in capsys.readouterr().err
    analysed.clear()
    assert main(["extract", str(job), "--no-progress", "--force"]) == 0
    assert len(analysed) == 6
    # report-only options do not invalidate the run
    analysed.clear()
    assert main(["extract", str(job), "--no-progress", "--set", "run.jobs=1"]) == 0
    assert analysed == []


def test_recovery_redoes_exactly_the_changed_and_unfinished_clips(tmp_path, sample_corpus,
                                                                 monkeypatch, capsys):
    """The README's recovery: fix one broken file, exclude another, replace a done clip's file
    and add a clip; the same `videmo run` (plus the exclusion) does exactly those clips, and
    the manifest, the table and the report hold the corpus as it is now."""
    (sample_corpus / "broken.mp4").write_text("not a video\n" * 100)
    (sample_corpus / "hopeless.mp4").write_bytes(b"")
    job = write_job(tmp_path, sample_corpus, report={"figures": "false"})
    assert main(["run", str(job), "--no-progress"]) == 1
    run = RunDir(tmp_path / "run")
    manifest = pd.read_csv(run.manifest_path).set_index(schema.CLIP_ID)
    assert manifest.loc[["broken", "hopeless"], schema.STATUS].eq(schema.FAILED).all()
    assert manifest[schema.FILE_SIZE].notna().all() and manifest[schema.FILE_MTIME_NS].gt(0).all()

    fixed, replaced, source = SAMPLE_CLIPS[0], SAMPLE_CLIPS[1].stem, SAMPLE_CLIPS[2]
    shutil.copy(fixed, sample_corpus / "broken.mp4")  # fixed in place: same name, new bytes
    shutil.copy(source, sample_corpus / SAMPLE_CLIPS[1].name)  # a done clip's file replaced
    shutil.copy(source, sample_corpus / "added.flv")
    analysed = count_analysed(monkeypatch)
    capsys.readouterr()
    assert main(["run", str(job), "--no-progress", "--set", "corpus.exclude=[hopeless*]"]) == 0
    assert sorted(analysed) == sorted(["added", "broken", replaced])
    assert "3 done, 5 already done, 0 failed of 8 clips" in capsys.readouterr().out

    manifest = pd.read_csv(run.manifest_path)
    assert sorted(manifest[schema.CLIP_ID]) == sorted(
        ["added", "broken"] + [p.stem for p in SAMPLE_CLIPS])
    assert (manifest[schema.STATUS] == schema.DONE).all()  # no stale failed record
    frames = pd.read_parquet(run.frames_path)
    rows = {cid: g.drop(columns=schema.CLIP_ID).reset_index(drop=True)
            for cid, g in frames.groupby(schema.CLIP_ID)}
    pd.testing.assert_frame_equal(rows[replaced], rows[source.stem])  # the new content's rows
    pd.testing.assert_frame_equal(rows["added"], rows[source.stem])
    pd.testing.assert_frame_equal(rows["broken"], rows[fixed.stem])
    clips = pd.read_csv(run.path / "report" / "clips.csv")
    assert {"broken", "added"} <= set(clips[schema.FILENAME]) and len(clips) == 8
    metrics = json.loads((run.path / "report" / "metrics.json").read_text())
    assert metrics["failed_clips"] == {}
    # the excluded clip's record stays on disk, out of the merged views; nothing left to do
    assert "hopeless" in {r[schema.CLIP_ID] for r in run.records(all_clips=True)}
    analysed.clear()
    assert main(["run", str(job), "--no-progress", "--set", "corpus.exclude=[hopeless*]"]) == 0
    assert analysed == []
    # a touched file (same bytes, new mtime) is redone: its record no longer matches it
    os.utime(sample_corpus / "added.flv", ns=(1, 1_600_000_000_000_000_000))
    assert main(["run", str(job), "--no-progress", "--set", "corpus.exclude=[hopeless*]"]) == 0
    assert analysed == ["added"]


def test_bad_inputs_fail_only_their_clip(tmp_path, sample_corpus, clip_frames, capsys):
    (sample_corpus / "zero.mp4").write_bytes(b"")
    (sample_corpus / "text.mp4").write_text("not a video\n" * 100)
    good = (SAMPLE_CLIPS[0]).read_bytes()  # 67 frames, the FLV header says 67
    (sample_corpus / "stub.flv").write_bytes(good[: len(good) // 40])  # not even a header
    (sample_corpus / "truncated.flv").write_bytes(good[: len(good) // 2])  # its first half
    noface = [np.full((240, 320, 3), 90, np.uint8)] * 25
    write_video(sample_corpus / "noface.mp4", noface, fps=25)
    import cv2  # a container with a header and no frames

    cv2.VideoWriter(str(sample_corpus / "noframes.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                    (320, 240)).release()
    job = write_job(tmp_path, sample_corpus)
    assert main(["extract", str(job), "--no-progress", "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    manifest = pd.read_csv(tmp_path / "run" / "manifest.csv").set_index(schema.CLIP_ID)
    assert manifest.loc["zero", schema.REASON] == "empty file (0 bytes)"
    assert "cannot open as video" in manifest.loc["text", schema.REASON]
    cannot_open = "cannot open as video (not a video, truncated or unsupported codec)"
    for name in ("stub", "noframes"):  # FFmpeg finds no stream in either
        assert manifest.loc[name, schema.STATUS] == schema.FAILED
        assert manifest.loc[name, schema.REASON] == cannot_open
    # half a file is a clip: what decodes is analysed, the shortfall is on record
    cut = manifest.loc["truncated"]
    decoded = int(cut[schema.FRAMES_DECODED])
    assert cut[schema.STATUS] == schema.DONE and cut[schema.FRAME_COUNT] == 67
    assert 0 < decoded < 67 and f"decoded {decoded} of 67" in cut[schema.REASON]
    assert cut[schema.FRAMES_SAMPLED] == len(range(0, decoded, 10))
    for name in ("zero", "text", "stub"):
        assert manifest.loc[name, schema.STATUS] == schema.FAILED
        assert f"failed: {name} (" in out
    # no face is not an error: rows with n_faces = 0
    assert manifest.loc["noface", schema.STATUS] == schema.DONE
    df = pd.read_parquet(tmp_path / "run" / "frames.parquet")
    noface_rows = df[df[schema.CLIP_ID] == "noface"]
    assert len(noface_rows) == 3 and (noface_rows[schema.N_FACES] == 0).all()
    cut_rows = df[df[schema.CLIP_ID] == "truncated"]
    assert list(cut_rows[schema.FRAME_INDEX]) == list(range(0, decoded, 10))
    assert (manifest.loc[[p.stem for p in SAMPLE_CLIPS], schema.STATUS] == schema.DONE).all()


def test_clip_ids_cannot_escape_the_run_dir(tmp_path):
    run = RunDir(tmp_path / "run")
    for clip_id in ("../../etc/passwd", "/abs/path", "a/b c'\"é", "..", ""):
        part = run.part_path(clip_id).resolve()
        assert part.parent == (tmp_path / "run" / "parts").resolve()
        assert safe_name(clip_id) != safe_name(clip_id + "x")


def test_sample_job_in_repo_extracts_with_mtcnn(tmp_path):
    """The README's main job with MTCNN: a face in most sampled frames of every clip."""
    shutil.copy(REPO / "jobs" / "sample.yaml", tmp_path / "sample.yaml")
    job = tmp_path / "sample.yaml"
    job.write_text(job.read_text().replace("../data", str(REPO / "data")))
    out = tmp_path / "mtcnn"
    assert main(["extract", str(job), "--detector", "mtcnn", "--out", str(out),
                 "--no-progress"]) == 0
    df = pd.read_parquet(out / "frames.parquet")
    share = (df[schema.N_FACES] > 0).groupby(df[schema.CLIP_ID]).mean()
    assert len(share) == 6 and (share >= 0.8).all()
    assert df[schema.CONFIDENCE].dropna().between(0.9, 1).all()
    assert os.path.exists(out / "manifest.csv")


def test_a_relative_run_out_lands_in_this_directory_with_reused_workers(tmp_path, monkeypatch):
    """Two `--jobs 2` runs in one process, the second from another directory with a relative
    run.out: loky hands the second run the workers of the first, which started in the first
    directory. They must write where the run is (they wrote into the first directory, found by
    the suite under pytest-xdist: tests/test_readme.py's `videmo run my.yaml --jobs 2`)."""
    first, second = tmp_path / "first", tmp_path / "second"
    for d in (first, second):
        d.mkdir()
        (d / "job.yaml").write_text(f"corpus: {{paths: ['{SAMPLE_CLIPS[0].parent}'], "
                                    f"include: ['*HAP*', '*SAD*']}}\n"
                                    "sampling: {every_n: 30}\nrun: {out: runs/a}\n")
    monkeypatch.chdir(first)
    assert main(["extract", "job.yaml", "--jobs", "2", "--no-progress"]) == 0
    monkeypatch.chdir(second)
    assert main(["extract", "job.yaml", "--jobs", "2", "--no-progress"]) == 0
    assert len(RunDir(second / "runs" / "a").records()) == 2
    assert len(list((first / "runs" / "a" / "clips").glob("*.json"))) == 2  # its own, no more
