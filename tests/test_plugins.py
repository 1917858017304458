"""A detector, a frame model and a feature extractor defined here, registered here, with options
of their own, run end to end: the config reads, validates, documents and writes back their
options; the cache key holds them (and nothing of theirs leaks into other configs' keys); the
run resumes, redoes only what an option change touches, and the report reads it. No other
module is edited for them: each is one class and one registry entry (a spec)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import pytest

from videmo import config as config_mod
from videmo import schema
from videmo.cli import main
from videmo.config import ConfigError, opt
from videmo.execute.local import extract
from videmo.extract.detectors import DETECTORS, DetectorSpec, Face
from videmo.extract.features import EXTRACTORS, FaceBatch, FeatureExtractor
from videmo.extract.features.frame_models import FRAME_MODELS, FrameModelSpec
from videmo.store import RunDir

from .conftest import SAMPLE

TWO_CLIPS = ["*HAP*", "*NEU*"]


@dataclass(frozen=True)
class CentreOptions:
    size: float = opt(0.5, "Side of the centred box, as a share of the frame's shorter side.",
                      minimum=0, exclusive=True)


class CentreDetector:
    """One square box in the middle of every frame (where the sample's faces are)."""

    name = "centre"
    calls: list[int] = []

    def __init__(self, size: float):
        self.size = size

    def detect(self, frames: list[np.ndarray], scale: float = 1.0) -> list[list[Face]]:
        type(self).calls.append(len(frames))
        out = []
        for f in frames:
            h, w = f.shape[:2]
            side = int(self.size * min(h, w))
            out.append([Face((w - side) // 2, (h - side) // 2, side, side, 1.0)])
        return out


def make_centre(options: CentreOptions, threads: int) -> CentreDetector:
    return CentreDetector(options.size)


@dataclass(frozen=True)
class ToneOptions:
    gain: float = opt(1.0, "How strongly the box's brightness moves the scores.", minimum=0)


class ToneScorer:
    """Seven scores from the mean grey level inside each box: bright is happy."""

    def __init__(self, cfg, threads):
        self.gain = cfg.options("emotions.tone").gain

    def score(self, batch: FaceBatch) -> list[np.ndarray]:
        grey = cv2.cvtColor(batch.image, cv2.COLOR_BGR2GRAY)
        out = []
        for f in batch.faces:
            level = float(grey[f.y: f.y + f.h, f.x: f.x + f.w].mean()) / 255
            logits = np.zeros(len(schema.EMOTIONS))
            logits[schema.EMOTIONS.index("happy")] = self.gain * level
            p = np.exp(logits) / np.exp(logits).sum()
            out.append(p.astype(np.float32))
        return out


@dataclass(frozen=True)
class ContrastOptions:
    scale: float = opt(1.0, "Multiplies each box's grey-level standard deviation.", minimum=0)


class Contrast(FeatureExtractor):
    """The grey-level standard deviation inside each box, times ``contrast.scale``."""

    name = "contrast"
    section = "contrast"
    options = ContrastOptions
    table = "features/contrast.parquet"
    columns = ("contrast",)
    calls = 0

    @classmethod
    def cache_key(cls, cfg):
        return {"extract_hash": cfg.extract_hash(), "contrast": cfg.to_dict()["contrast"]}

    def __init__(self, cfg, threads):
        self.scale = cfg.options("contrast").scale

    def extract(self, batch: FaceBatch) -> list[tuple[float]]:
        type(self).calls += 1
        grey = cv2.cvtColor(batch.image, cv2.COLOR_BGR2GRAY)
        return [(self.scale * float(grey[f.y: f.y + f.h, f.x: f.x + f.w].std()),)
                for f in batch.faces]


@pytest.fixture
def plugins():
    DETECTORS.register("centre", DetectorSpec(
        make_centre, section="faces.centre", options=CentreOptions, batch_size=3,
        framing=(1.0, 0.0, 0.0), doc="A box in the middle of the frame (a test's detector)."))
    FRAME_MODELS.register("tone", FrameModelSpec(  # options by reference, as shipped parts do
        ToneScorer, section="emotions.tone", options=f"{__name__}:ToneOptions",
        doc="Brightness as happiness (a test's frame model)."))
    EXTRACTORS.register("contrast", Contrast)
    CentreDetector.calls, Contrast.calls = [], 0
    yield
    DETECTORS.pop("centre")
    FRAME_MODELS.pop("tone")
    EXTRACTORS.pop("contrast")


def _data(tmp_path, size=0.6, gain=2.0, scale=3.0) -> dict:
    return {"corpus": {"paths": [str(SAMPLE)], "include": TWO_CLIPS},
            "sampling": {"every_n": 10},
            "faces": {"detector": "centre", "centre": {"size": size}},
            "emotions": {"model": "tone", "tone": {"gain": gain}},
            "features": ["emotions", "contrast"], "contrast": {"scale": scale},
            "run": {"out": str(tmp_path / "run")}}


def _config(tmp_path, **kw) -> config_mod.Config:
    return config_mod.from_dict(_data(tmp_path, **kw), base_dir=tmp_path)


def test_plugin_options_are_read_validated_documented_and_written_back(tmp_path, plugins):
    cfg = _config(tmp_path)
    assert cfg.options("faces.centre") == CentreOptions(0.6)
    assert cfg.options("emotions.tone") == ToneOptions(2.0)
    assert cfg.options("contrast") == ContrastOptions(3.0)
    d = cfg.to_dict()
    assert (d["faces"]["centre"], d["emotions"]["tone"], d["contrast"]) == (
        {"size": 0.6}, {"gain": 2.0}, {"scale": 3.0})
    again = config_mod.from_dict(__import__("yaml").safe_load(config_mod.dump(cfg)),
                                 base_dir=tmp_path)
    assert again == cfg
    # defaults when the file does not give the section
    bare = config_mod.from_dict({"faces": {"detector": "centre"}})
    assert bare.options("faces.centre") == CentreOptions() and bare.plugins == {}
    # --set reads a plug-in's option by its type; a wrong value or key names it
    data = config_mod.apply_overrides(_data(tmp_path), ["faces.centre.size=0.7"])
    assert config_mod.from_dict(data).options("faces.centre").size == 0.7
    with pytest.raises(ConfigError, match=r"'faces.centre.size': must be greater than 0"):
        config_mod.from_dict(_data(tmp_path, size=0))
    bad = _data(tmp_path)
    bad["contrast"] = {"scal": 2}
    with pytest.raises(ConfigError, match=r"unknown config key 'contrast.scal' \(did you mean "
                                          r"'contrast.scale'\?\)"):
        config_mod.from_dict(bad)
    # the template and docs/config.md's reference list them with their docs
    for text in (config_mod.template(), config_mod.reference_markdown()):
        assert "Side of the centred box" in text and "box's brightness" in text
        assert "grey-level standard deviation" in text
    assert "| `faces.centre.size` | a number | `0.5` |" in config_mod.reference_markdown()


def test_plugin_sections_leave_with_their_plugins(tmp_path, plugins):
    data = _data(tmp_path)
    DETECTORS.pop("centre")
    try:
        with pytest.raises(ConfigError, match="unknown config key 'faces.centre'"):
            config_mod.from_dict(data)
        data["faces"] = {"detector": "centre"}
        with pytest.raises(ConfigError, match="'faces.detector': 'centre' is not one of"):
            config_mod.from_dict(data)
    finally:
        DETECTORS.register("centre", DetectorSpec(make_centre, section="faces.centre",
                                                  options=CentreOptions))


def test_plugin_options_enter_the_cache_key_and_nothing_else_moves(tmp_path, plugins):
    haar = config_mod.from_dict({"corpus": {"paths": [str(SAMPLE)]}})
    cfg = _config(tmp_path)
    key = cfg.extract_key()
    assert key["faces"]["centre"] == {"size": 0.6}
    assert key["emotions"] == {"model": "tone", "tone": {"gain": 2.0}}
    assert set(key["packages"]) == {"opencv"} and key["model_sha256"] == {}
    hashes = {cfg.extract_hash(), _config(tmp_path, size=0.5).extract_hash(),
              _config(tmp_path, gain=1.0).extract_hash()}
    assert len(hashes) == 3
    assert _config(tmp_path, scale=1.0).extract_hash() == cfg.extract_hash()
    assert _config(tmp_path, scale=1.0).table_hash("contrast") != cfg.table_hash("contrast")
    before = haar.extract_hash()
    DETECTORS.pop("centre")
    FRAME_MODELS.pop("tone")
    try:
        assert haar.extract_hash() == before  # registering plug-ins moves no other key
    finally:
        DETECTORS.register("centre", DetectorSpec(make_centre, section="faces.centre",
                                                  options=CentreOptions))
        FRAME_MODELS.register("tone", FrameModelSpec(ToneScorer, section="emotions.tone",
                                                     options=ToneOptions))


def test_plugins_run_end_to_end_resume_and_report(tmp_path, plugins):
    cfg = _config(tmp_path)
    summary = extract(cfg, jobs=1, progress=False)
    assert summary.skipped == 0
    assert max(CentreDetector.calls) == 3  # the spec's batch size
    run = RunDir(cfg.out_dir)
    frames = pd.read_parquet(run.frames_path)
    faces = frames[frames[schema.FACE_INDEX] >= 0]
    assert len(faces) == len(frames) > 0  # the centre box is always there
    assert (faces[schema.BOX_W] == faces[schema.BOX_H]).all()
    happy = faces["happy"]
    assert happy.between(1 / 7, 1).all() and (happy > faces["sad"]).all()
    contrast = pd.read_parquet(run.path / "features" / "contrast.parquet")
    assert len(contrast) == len(faces) and (contrast["contrast"] > 0).all()
    rec = json.loads(run.record_path("1001_DFA_HAP_XX").read_text())
    assert rec[schema.CONFIG_HASH] == cfg.extract_hash()
    assert rec["contrast_hash"] == cfg.table_hash("contrast")

    # resume: nothing is redone
    calls, contrast_calls = len(CentreDetector.calls), Contrast.calls
    assert extract(cfg, jobs=1, progress=False).skipped == 2
    assert (len(CentreDetector.calls), Contrast.calls) == (calls, contrast_calls)

    # the extractor's own option: only its table is redone, the per-frame table stays
    scaled = _config(tmp_path, scale=1.0)
    extract(scaled, jobs=1, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path), frames)
    again = pd.read_parquet(run.path / "features" / "contrast.parquet")
    np.testing.assert_allclose(again["contrast"] * 3, contrast["contrast"], rtol=1e-5)

    # the detector's option changes the extract hash: the run directory refuses it
    with pytest.raises(Exception, match="extract"):
        extract(_config(tmp_path, size=0.5, scale=1.0), jobs=1, progress=False)

    # the report reads the run (its recorded config names the plug-ins' sections)
    assert main(["report", str(run.path)]) == 0
    assert (run.path / "report" / "report.html").exists() or any(run.path.rglob("report.html"))


def test_models_md_and_the_config_reference_list_what_each_shipped_part_loads():
    from pathlib import Path

    from videmo.extract.keys import parts_markdown

    root = Path(__file__).resolve().parent.parent
    for doc in ("MODELS.md", "docs/config.md"):
        text = (root / doc).read_text(encoding="utf-8")
        assert parts_markdown() in text, f"{doc}: regenerate the table of what each part loads"
