from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from videmo import schema
from videmo.config import SamplingConfig
from videmo.extract import pipeline
from videmo.extract.corpus import Clip
from videmo.extract.detectors import make_detector
from videmo.extract.features.emotions import EmotionsExtractor
from videmo.extract.frames import ClipError, Sampler, SourceInfo, prefetch, sample_frames
from videmo.store import RunDir

from .conftest import SAMPLE, SAMPLE_CLIPS, make_config, write_video


def picks(times, **kw):
    s = Sampler(SamplingConfig(**kw))
    out = []
    for i, t in enumerate(times):
        if s.done(t):
            break
        if s.pick(i, t):
            out.append(i)
    return out


T30 = [i / 30 for i in range(100)]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, [0, 20, 40, 60, 80]),
        ({"every_n": 7, "max_frames": 3}, [0, 7, 14]),
        ({"every_n": 20, "start_s": 1.0}, [30, 50, 70, 90]),  # counts from the first in window
        ({"every_n": 10, "end_s": 1.0}, [0, 10, 20]),  # frame 30 is at t = 1.0: excluded
        ({"fps": 3.0}, list(range(0, 100, 10))),
        ({"fps": 2.0, "start_s": 0.5, "end_s": 2.0}, [15, 30, 45]),
        ({"fps": 100.0, "max_frames": 4}, [0, 1, 2, 3]),  # above the file rate: every frame
    ],
)
def test_sampler_indices(kw, expected):
    assert picks(T30, **kw) == expected


def test_fps_sampling_on_an_irregular_clock():
    # 12.5 fps clock: 2 samples a second land on the first frame at/after each 0.5 s tick
    times = [i / 12.5 for i in range(30)]
    assert picks(times, fps=2.0) == [0, 7, 13, 19, 25]


def test_real_fps_other_than_30_gives_real_timestamps(tmp_path, clip_frames):
    frames = clip_frames["1001_DFA_HAP_XX"][:40]
    path = write_video(tmp_path / "clip.mp4", frames, fps=12.5)
    cfg = make_config(tmp_path, tmp_path, sampling={"every_n": 5})
    info = SourceInfo()
    got = list(sample_frames_of(path, cfg, info))
    assert [f.index for f in got] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert np.allclose([f.time_s for f in got], [i / 12.5 for i in range(0, 40, 5)], atol=1e-3)
    assert info.fps == pytest.approx(12.5) and info.frames_decoded == 40
    assert got[1].image.shape == frames[0].shape
    # the sampled frame is the real frame 5 (mp4v is lossy: compare loosely)
    assert np.abs(got[1].image.astype(int) - frames[5]).mean() < 6


def sample_frames_of(path, cfg, info):
    return sample_frames(Clip("clip", path), cfg, info)


def test_flv_sample_timestamps_follow_the_container(tmp_path):
    cfg = make_config(tmp_path, SAMPLE, sampling={"every_n": 20})
    info = SourceInfo()
    got = list(sample_frames(Clip("x", SAMPLE / "1001_DFA_ANG_XX.flv"), cfg, info))
    assert [f.index for f in got] == [0, 20, 40, 60]
    assert info.fps == pytest.approx(29.97, abs=0.01) and info.frames_decoded == 67
    assert [round(f.time_s, 2) for f in got] == [0.0, 0.67, 1.33, 2.0]  # not i / 30


def test_image_sequence_clip(tmp_path, clip_frames):
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, frame in enumerate(clip_frames["1001_DFA_NEU_XX"][:12]):
        import cv2
        cv2.imwrite(str(seq / f"img{i}.png"), frame)  # img10 sorts after img9
    cfg = make_config(tmp_path, tmp_path, sampling={"every_n": 4},
                      corpus={"image_fps": 10.0})
    info = SourceInfo()
    got = list(sample_frames(Clip("seq", seq, "images"), cfg, info))
    assert [f.index for f in got] == [0, 4, 8]
    assert [f.time_s for f in got] == [0.0, 0.4, 0.8]
    assert np.array_equal(got[2].image, clip_frames["1001_DFA_NEU_XX"][8])
    # one unreadable image: skipped with a warning, the clip goes on
    (seq / "img4.png").write_bytes(b"not a png")
    info = SourceInfo()
    got = list(sample_frames(Clip("seq", seq, "images"), cfg, info))
    assert [f.index for f in got] == [0, 8]
    assert "img4.png" in info.warnings[0]


def test_grab_skips_without_retrieving(tmp_path, monkeypatch):
    """Skipped frames are grabbed, never retrieved (converted)."""
    import cv2

    calls = {"grab": 0, "retrieve": 0}
    real = cv2.VideoCapture

    class Counting:
        def __init__(self, *a):
            self.cap = real(*a)

        def grab(self):
            calls["grab"] += 1
            return self.cap.grab()

        def retrieve(self):
            calls["retrieve"] += 1
            return self.cap.retrieve()

        def __getattr__(self, name):
            return getattr(self.cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", Counting)
    cfg = make_config(tmp_path, SAMPLE, sampling={"every_n": 10})
    got = list(sample_frames(Clip("x", SAMPLE / "1001_DFA_ANG_XX.flv"), cfg))
    assert len(got) == 7 and calls == {"grab": 68, "retrieve": 7}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"empty file \(0 bytes\)"),
        (b"this is a text file, not a video\n" * 20, "cannot open as video"),
    ],
)
def test_bad_files_raise_clip_errors(tmp_path, content, message):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    cfg = make_config(tmp_path, tmp_path)
    with pytest.raises(ClipError, match=message):
        list(sample_frames(Clip("bad", p), cfg))


def test_prefetch_gives_the_same_frames_and_errors(tmp_path):
    cfg = make_config(tmp_path, SAMPLE, sampling={"every_n": 3})
    clip = Clip("x", SAMPLE_CLIPS[0])
    plain = list(sample_frames(clip, cfg))
    ahead = list(prefetch(sample_frames(clip, cfg), 2))
    assert [(f.index, f.time_s) for f in ahead] == [(f.index, f.time_s) for f in plain]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(ahead, plain, strict=True))
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video\n" * 50)
    with pytest.raises(ClipError, match="cannot open as video"):
        list(prefetch(sample_frames(Clip("bad", bad), cfg), 2))
    closed = []

    def endless():
        try:
            yield from range(10**9)
        finally:
            closed.append(True)

    it = prefetch(endless(), 2)
    assert next(it) == 0
    it.close()  # the consumer stops early: the producer stops and closes its source
    assert closed == [True]


# ---------------------------------------------------------------- fixtures made from the sample
DATA = Path(__file__).parent / "data"

# tests/data/vfr.mp4's frame times as ffprobe lists them (make_fixtures.sh prints them): 10
# frames 33 ms apart, a stall, then 67 ms apart. No single fps gives these times.
VFR_TIMES = [0.0, 0.033, 0.066, 0.099, 0.132, 0.165, 0.198, 0.231, 0.264, 0.297,
             0.55, 0.617, 0.684, 0.751, 0.818, 0.885, 0.952, 1.019, 1.086, 1.153]


def test_variable_frame_rate_times_are_the_containers(tmp_path, clip_frames):
    cfg = make_config(tmp_path, DATA, sampling={"every_n": 1})
    info = SourceInfo()
    got = list(sample_frames(Clip("vfr", DATA / "vfr.mp4"), cfg, info))
    assert [f.index for f in got] == list(range(20))
    assert [f.time_s for f in got] == pytest.approx(VFR_TIMES, abs=1e-6)
    # no single rate gives these times: index / fps (at the rate the container announces,
    # its average) is a fifth of a second off around the stall
    assert set(np.diff(VFR_TIMES).round(3)) == {0.033, 0.253, 0.067}
    assert math.isfinite(info.fps)
    assert max(abs(f.time_s - f.index / info.fps) for f in got) > 0.15
    # the frames are the source's, in order (H.264 is lossy: compare loosely)
    neutral = clip_frames["1001_DFA_NEU_XX"]
    assert all(np.abs(f.image.astype(int) - neutral[f.index]).mean() < 6 for f in got)


def test_fps_sampling_follows_the_variable_clock(tmp_path):
    """fps: 5 takes the first frame at or after 0, 0.2, 0.4, ... s on the container's clock."""
    cfg = make_config(tmp_path, DATA, sampling={"fps": 5.0})
    got = list(sample_frames(Clip("vfr", DATA / "vfr.mp4"), cfg))
    assert [f.index for f in got] == [0, 7, 10, 11, 14, 17]  # 0, .231, .55, .617, .818, 1.019


def _orientation_off_by_default(real):
    """VideoCapture as older OpenCV 4.x builds open one: rotation metadata not applied."""

    class Capture:
        def __init__(self, *args):
            self.cap = real(*args)
            self.cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)

        def __getattr__(self, name):
            return getattr(self.cap, name)

    return Capture


@pytest.mark.parametrize("opencv_default", ["as installed", "off"])
def test_rotated_phone_video_is_analysed_upright(tmp_path, monkeypatch, clip_frames,
                                                 opencv_default):
    """rotated90.mp4 stores the happy clip's frames turned 90 degrees (360x480) with a display
    matrix; decoded, they are the sample's frames at 480x360 whatever OpenCV's default is."""
    if opencv_default == "off":
        monkeypatch.setattr(cv2, "VideoCapture", _orientation_off_by_default(cv2.VideoCapture))
    cfg = make_config(tmp_path, DATA, sampling={"every_n": 1})
    info = SourceInfo()
    got = list(sample_frames(Clip("rot", DATA / "rotated90.mp4"), cfg, info))
    assert len(got) == 12 and (info.width, info.height) == (480, 360)
    happy = clip_frames["1001_DFA_HAP_XX"]
    for f in got:
        assert f.image.shape == happy[0].shape
        assert np.abs(f.image.astype(int) - happy[f.index]).mean() < 6
    # and the record says so, with a real detector finding the face in upright frames
    models = pipeline.Models(make_detector(cfg.faces),
                             {"emotions": EmotionsExtractor.of(_HappyModel())})
    result = pipeline.analyze_clip(Clip("rot", DATA / "rotated90.mp4"), cfg, models)
    record = result.record("h")
    assert (record[schema.WIDTH], record[schema.HEIGHT]) == (480, 360)
    assert result.frames_with_face == 12
    boxes = result.rows.to_pandas()[[schema.BOX_X, schema.BOX_W]].astype(int)
    assert ((boxes[schema.BOX_X] + boxes[schema.BOX_W] / 2 - 240).abs() < 80).all()  # centred


class _HappyModel:
    name = "fake"

    def predict(self, faces):
        out = np.zeros((len(faces), 7), np.float32)
        out[:, 3] = 1.0
        return out


# ---------------------------------------------------------------- frames expected, truncated
HAPPY = SAMPLE / "1001_DFA_HAP_XX.flv"  # 56 frames at 29.97 fps (the flv's duration x fps)


def _cut(tmp_path, fraction: float):
    data = HAPPY.read_bytes()
    path = tmp_path / f"cut{fraction}.flv"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize(
    ("fraction", "sampling", "truncated"),
    [
        (1.0, {"every_n": 5}, False),
        (0.97, {"every_n": 5}, False),  # 55 of 56: within the 5 % allowed
        (0.5, {"every_n": 5}, True),
        (0.5, {"every_n": 1, "end_s": 0.5}, False),  # stopped on purpose before the cut
        (0.5, {"every_n": 1, "max_frames": 3}, False),
        (0.5, {"every_n": 1, "end_s": 1.5}, True),  # the cut comes before end_s
        (1.0, {"every_n": 1, "end_s": 5.0}, False),  # end_s past the end: the whole clip
    ],
)
def test_frames_expected_and_truncated(tmp_path, fraction, sampling, truncated):
    path = HAPPY if fraction == 1.0 else _cut(tmp_path, fraction)
    cfg = make_config(tmp_path, tmp_path, sampling=sampling)
    info = SourceInfo()
    list(sample_frames(Clip("c", path), cfg, info))
    assert info.frames_expected == 56 and info.truncated is truncated
    assert any("decoded" in w for w in info.warnings) is truncated
    if fraction == 0.5 and truncated:
        assert 10 < info.frames_decoded < 40


def test_truncated_clip_is_done_and_flagged_in_the_record_and_manifest(tmp_path):
    cfg = make_config(tmp_path, tmp_path, sampling={"every_n": 5})
    models = pipeline.Models(make_detector(cfg.faces),
                             {"emotions": EmotionsExtractor.of(_HappyModel())})
    run = RunDir.prepare(cfg)
    cut = pipeline.analyze_clip(Clip("cut", _cut(tmp_path, 0.5)), cfg, models)
    whole = pipeline.analyze_clip(Clip("whole", HAPPY), cfg, models)
    for result in (cut, whole):
        run.save(result, "h")
    rec = cut.record("h")
    assert rec[schema.STATUS] == schema.DONE and rec[schema.TRUNCATED] is True
    assert rec[schema.FRAMES_EXPECTED] == 56 and rec[schema.FRAMES_DECODED] < 40
    assert f"decoded {rec[schema.FRAMES_DECODED]} of 56 frames expected" in rec[schema.REASON]
    assert whole.record("h")[schema.TRUNCATED] is False
    m = run.manifest().set_index(schema.CLIP_ID)
    assert m[schema.TRUNCATED].dtype == "boolean" and m[schema.FRAMES_EXPECTED].dtype == "Int64"
    assert m.loc["cut", schema.TRUNCATED] and not m.loc["whole", schema.TRUNCATED]
    assert m.loc["whole", schema.FRAMES_EXPECTED] == 56


def test_image_sequence_expects_every_image(tmp_path, clip_frames):
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, frame in enumerate(clip_frames["1001_DFA_NEU_XX"][:12]):
        cv2.imwrite(str(seq / f"img{i}.png"), frame)
    (seq / "img4.png").write_bytes(b"not a png")
    for sampling, decoded, truncated in (({"every_n": 1}, 11, True),  # 1 of 12 short: 8 %
                                         ({"every_n": 3}, 12, False),  # img4 never read
                                         ({"every_n": 1, "max_frames": 2}, 2, False)):
        cfg = make_config(tmp_path, tmp_path, sampling=sampling)
        info = SourceInfo()
        list(sample_frames(Clip("seq", seq, "images"), cfg, info))
        assert (info.frames_expected, info.frames_decoded, info.truncated) == (
            12, decoded, truncated), sampling
