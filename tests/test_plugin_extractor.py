"""An extractor plugs in: one class and one registry entry give it its own table, cache and
resume, with no other module touched (the pipeline, the runner and the run directory read its
name, table, write options and cache key from the interface). And an extractor asks for its
own inputs: fer's 64x64 crops are cut only where fer scores."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from videmo import config as config_mod
from videmo import schema
from videmo.execute.local import extract
from videmo.extract.detectors import Face
from videmo.extract.features import EXTRACTORS, FaceBatch, FeatureExtractor
from videmo.extract.features import emotions as emotions_mod
from videmo.store import RunDir

from .conftest import SAMPLE, make_config

TWO_CLIPS = {"include": ["*HAP*", "*NEU*"]}


class Brightness(FeatureExtractor):
    """The mean grey level (0-255) inside each face box: a feature defined only here."""

    name = "brightness"
    section = "sampling"
    table = "features/brightness.parquet"
    columns = ("brightness",)
    version = 1
    calls = 0

    @classmethod
    def cache_key(cls, cfg):
        return {"extract_hash": cfg.extract_hash(), "version": cls.version}

    def __init__(self, cfg, threads):
        pass

    def extract(self, batch: FaceBatch) -> list[tuple[float]]:
        type(self).calls += 1
        grey = cv2.cvtColor(batch.image, cv2.COLOR_BGR2GRAY)
        return [(float(grey[max(0, f.y): f.y + f.h, max(0, f.x): f.x + f.w].mean()),)
                for f in batch.faces]


@pytest.fixture
def brightness():
    EXTRACTORS.register("brightness", Brightness)
    Brightness.calls, Brightness.version = 0, 1
    yield Brightness
    EXTRACTORS.pop("brightness")


def _config(tmp_path, features):
    data = {"corpus": {"paths": [str(SAMPLE)], **TWO_CLIPS}, "sampling": {"every_n": 10},
            "features": features, "run": {"out": str(tmp_path / "run")}}
    return config_mod.from_dict(data, base_dir=tmp_path)


def test_a_registered_extractor_gets_its_own_table_cache_and_resume(tmp_path, brightness,
                                                                     monkeypatch):
    cfg = _config(tmp_path, ["emotions", "brightness"])
    (table,) = cfg.feature_tables()
    assert (table.name, table.path) == ("brightness", "features/brightness.parquet")
    extract(cfg, jobs=1, progress=False)
    run = RunDir(cfg.out_dir)
    frames = pd.read_parquet(run.frames_path)
    faces = frames[frames[schema.FACE_INDEX] >= 0]
    merged = pd.read_parquet(run.path / "features" / "brightness.parquet")
    assert list(merged.columns) == [*schema.MESH_KEYS, "brightness"]
    keys = list(schema.MESH_KEYS)
    assert merged[keys].astype(str).values.tolist() == faces[keys].astype(str).values.tolist()
    assert merged["brightness"].between(1, 254).all() and len(merged) > 0
    rec = json.loads(run.record_path("1001_DFA_HAP_XX").read_text())
    assert rec["brightness_hash"] == Brightness.cache_hash(cfg) == table.cache_hash
    assert run.table_part_path("brightness", "1001_DFA_HAP_XX").exists()

    # resume: nothing is extracted again
    calls = Brightness.calls
    assert calls > 0
    assert extract(cfg, jobs=1, progress=False).skipped == 2
    assert Brightness.calls == calls

    # its cache key changes: only its table is redone, the per-frame parts stay as they are
    parts = {p: p.stat().st_mtime_ns for p in run.parts.glob("*.parquet")}
    seen = []
    real = extract.__globals__["analyze_clip"]

    def spy(clip, cfg, models, on_frames=None, **kw):
        seen.append(kw)
        return real(clip, cfg, models, on_frames, **kw)

    monkeypatch.setattr("videmo.execute.local.analyze_clip", spy)
    Brightness.version = 2
    extract(cfg, jobs=1, progress=False)
    assert seen == [{"tables": ["brightness"]}] * 2
    assert {p: p.stat().st_mtime_ns for p in run.parts.glob("*.parquet")} == parts
    pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path), frames)
    rec = json.loads(run.record_path("1001_DFA_HAP_XX").read_text())
    assert rec["brightness_hash"] == Brightness.cache_hash(cfg) != table.cache_hash


def test_the_config_accepts_an_extractor_only_while_it_is_registered(tmp_path, brightness):
    assert _config(tmp_path, ["emotions", "brightness"]).features == ["emotions", "brightness"]
    EXTRACTORS.pop("brightness")
    try:
        with pytest.raises(ValueError, match="'features\\[1\\]': 'brightness' is not one of"):
            _config(tmp_path, ["emotions", "brightness"])
    finally:
        EXTRACTORS.register("brightness", Brightness)


@pytest.mark.parametrize("seed", range(5))
def test_the_faces_that_get_rows_follow_fers_crop_without_cutting_it(seed):
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    faces = [Face(int(x), int(y), int(w), int(h)) for x, y, w, h in zip(
        rng.integers(-300, 200, 60), rng.integers(-300, 150, 60), rng.integers(1, 120, 60),
        rng.integers(1, 120, 60), strict=True)]
    assert emotions_mod.croppable(frame, faces) == emotions_mod.crop_faces(frame, faces)[1]
    assert len(emotions_mod.croppable(frame, faces)) < len(faces)  # some are dropped


def test_a_pixels_run_cuts_no_fer_crop(tmp_path, monkeypatch):
    from videmo.extract.pipeline import analyze_clip, load_models

    def no_fer_crops(*_args):
        raise AssertionError("fer's crops were cut for emotions.model: pixels")

    monkeypatch.setattr(emotions_mod, "crop_faces", no_fer_crops)
    cfg = make_config(tmp_path, SAMPLE, corpus={"include": ["*HAP*"]},
                      sampling={"every_n": 10}, emotions={"model": "pixels"})
    from videmo.extract.corpus import discover

    (clip,) = discover(cfg)
    result = analyze_clip(clip, cfg, load_models(cfg, 1))
    assert result.status == schema.DONE, result.reason
    assert (result.rows.to_pandas()[schema.FACE_INDEX] >= 0).any()
    fer = make_config(tmp_path, SAMPLE, corpus={"include": ["*HAP*"]}, sampling={"every_n": 10},
                      emotions={"model": "fer"})
    with pytest.raises(AssertionError, match="fer's crops were cut"):
        load_models(fer, 1).extractors["emotions"].extract(
            FaceBatch(np.zeros((40, 40, 3), np.uint8), [Face(5, 5, 20, 20)]))
