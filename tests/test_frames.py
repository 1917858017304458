from __future__ import annotations

import numpy as np
import pytest

from videmo.config import SamplingConfig
from videmo.corpus import Clip
from videmo.frames import ClipError, Sampler, SourceInfo, prefetch, sample_frames

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
