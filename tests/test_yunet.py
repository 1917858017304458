"""YuNet (videmo.extract.detectors.yunet) on real frames of the sample clips, close up and shrunk
into wide shots: the LiteRT engine (the default) against OpenCV's own FaceDetectorYN on the ONNX
file (the reference), then what is videmo's: the scale it runs at, the boxes mapped back to the
frame, the size and score filters and the config. Numbers by face size: BENCHMARKS.md, Face
size.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from videmo import config as config_mod
from videmo import models
from videmo.extract.detectors import detect_faces, detector_spec, make_detector
from videmo.extract.detectors.blazeface import BlazeFaceDetector
from videmo.extract.detectors.yunet import YunetDetector

from .conftest import SAMPLE_CLIPS, read_frames


@pytest.fixture(scope="module")
def detector() -> YunetDetector:
    return YunetDetector()


@pytest.fixture(scope="module")
def close_ups() -> list[np.ndarray]:
    return [read_frames(clip, 1)[0] for clip in SAMPLE_CLIPS]


def _centre(f) -> np.ndarray:
    return np.array([f.x + f.w / 2, f.y + f.h / 2])


def _wide_shot(frame: np.ndarray, width: int, face_w: float, at=(700, 400)) -> np.ndarray:
    """``frame`` shrunk so its face (``face_w`` px wide at full size) is ``width`` px wide,
    pasted into a 1280x720 grey frame at ``at``."""
    canvas = np.full((720, 1280, 3), (90, 110, 120), np.uint8)
    k = width / face_w
    small = cv2.resize(frame, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    x, y = at
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def _scenes(close_ups) -> list[np.ndarray]:
    """The close-ups, and 1280x720 frames holding all six at 14-64 px and at odd positions."""
    out = list(close_ups)
    for width in (14, 20, 24, 32, 48, 64):
        canvas = np.full((720, 1280, 3), (90, 110, 120), np.uint8)
        for i, frame in enumerate(close_ups):
            k = width / 100  # the close-ups' faces are about 100 px wide
            small = cv2.resize(frame, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            y, x = 37 + 300 * (i // 3), 51 + 401 * (i % 3)
            canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
        out.append(canvas)
    return out


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_the_litert_engine_finds_what_opencvs_facedetectoryn_finds(close_ups, scale):
    """The same rows (box, landmarks, score; best first) as OpenCV's FaceDetectorYN on the
    ONNX file: measured 2026-12-07, 1.2e-4 px and 1e-6 in score at worst on 720p TV frames."""
    litert = YunetDetector(min_score=0.5)  # raw() reads the image it is given: resized here
    opencv = YunetDetector(min_score=0.5, engine="opencv")
    faces = 0
    for i, image in enumerate(_scenes(close_ups)):
        if scale != 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ours, ref = litert.raw(image), opencv.raw(image)
        assert ours.shape == ref.shape, f"scene {i}: {len(ours)} faces against {len(ref)}"
        np.testing.assert_allclose(ours[:, :14], ref[:, :14], atol=0.01, err_msg=f"scene {i}")
        np.testing.assert_allclose(ours[:, 14], ref[:, 14], atol=1e-4, err_msg=f"scene {i}")
        faces += len(ref)
    assert faces >= 6 + 4 * 6  # the scenes hold faces (at half size not the 14-20 px ones)


def test_finds_the_one_face_of_each_close_up_where_blazeface_does(detector, close_ups):
    reference = BlazeFaceDetector()
    for clip, frame in zip(SAMPLE_CLIPS, close_ups, strict=True):
        (faces,) = detector.detect([frame])
        (ref,) = reference.detect([frame])
        assert len(faces) == 1 and len(ref) == 1, clip.name
        f = faces[0]
        assert np.hypot(*(_centre(f) - _centre(ref[0]))) < 0.25 * ref[0].w, clip.name
        assert 0.7 < f.w / ref[0].w < 1.5 and f.confidence > 0.8, clip.name


@pytest.mark.parametrize("width", [24, 32])
def test_finds_a_small_face_of_a_wide_shot_that_blazeface_misses(detector, close_ups, width):
    (face,) = detector.detect_one(close_ups[3])
    wide = _wide_shot(close_ups[3], width, face.w)
    assert BlazeFaceDetector().detect([wide]) == [[]]
    (found,) = detector.detect([wide])
    assert len(found) == 1
    f = found[0]
    k = width / face.w  # where the close-up's face went
    expected = np.array([700, 400]) + _centre(face) * k
    assert np.hypot(*(_centre(f) - expected)) < 0.3 * width
    assert 0.7 * width < f.w < 1.4 * width


def test_nothing_on_a_frame_without_a_face(detector, close_ups):
    blank = np.full((720, 1280, 3), (90, 110, 120), np.uint8)
    assert detector.detect([blank]) == [[]]
    noise = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    assert detector.detect([noise]) == [[]]


def test_scale_maps_its_boxes_back_to_the_frame(close_ups):
    """Run at half size, the face of a 1280x720 wide shot is found where the full-size run finds
    it, in full-size pixels (not the half-size image's)."""
    (face,) = YunetDetector().detect_one(close_ups[2])
    wide = _wide_shot(close_ups[2], 64, face.w)
    (full,) = YunetDetector().detect_one(wide)
    (half,) = YunetDetector(scale=0.5).detect_one(wide)
    assert np.hypot(*(_centre(half) - _centre(full))) < 0.1 * full.w
    assert abs(half.w - full.w) < 0.1 * full.w and abs(half.h - full.h) < 0.15 * full.h
    # a 14 px face is 7 px at half size, below what YuNet sees (about 10 px): scale trades the
    # smallest faces for cost
    small = _wide_shot(close_ups[2], 14, face.w)
    assert len(YunetDetector().detect_one(small)) == 1
    assert YunetDetector(scale=0.5).detect_one(small) == []


def test_frames_of_other_sizes_and_grey_frames(detector, close_ups):
    frame = close_ups[0]
    (a,) = detector.detect_one(frame)
    (b,) = detector.detect_one(_wide_shot(frame, 48, a.w))  # another input size
    (c,) = detector.detect_one(frame)  # and back
    assert (c.x, c.y, c.w, c.h) == (a.x, a.y, a.w, a.h)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    (g,) = detector.detect_one(grey)
    assert np.hypot(*(_centre(g) - _centre(a))) < 5


def test_min_score_and_min_size(close_ups):
    frame = close_ups[1]
    (face,) = YunetDetector().detect_one(frame)
    assert YunetDetector(min_score=min(1.0, face.confidence + 0.01)).detect_one(frame) == []
    det = YunetDetector(min_size=face.w + 1)
    assert det.detect([frame], 1.0) == [[]]
    # min_size is in full-resolution pixels: a frame downscaled by faces.max_width keeps it
    (kept,) = detect_faces(YunetDetector(min_size=face.w - 10), [frame], max_width=240)
    assert len(kept) == 1 and abs(kept[0].w - face.w) < 8


def test_the_registry_builds_it_from_the_config():
    cfg = config_mod.from_dict({"faces": {"detector": "yunet",
                                          "yunet": {"scale": 0.75, "min_score": 0.7}}})
    det = make_detector(cfg)
    assert isinstance(det, YunetDetector) and det.scale == 0.75 and det.engine == "litert"
    assert make_detector(config_mod.from_dict({"faces": {
        "detector": "yunet", "yunet": {"engine": "opencv"}}})).engine == "opencv"
    with pytest.raises(config_mod.ConfigError, match="faces.yunet.scale"):
        config_mod.from_dict({"faces": {"detector": "yunet", "yunet": {"scale": 0}}})


def test_its_model_file_and_options_enter_the_extract_key_only_when_chosen():
    base = config_mod.from_dict({})
    key = config_mod.from_dict({"faces": {"detector": "yunet"}}).extract_key()
    assert "yunet" not in base.extract_key()["faces"]
    assert models.YUNET not in base.extract_key()["model_sha256"]
    assert key["faces"]["yunet"]["scale"] == 1.0
    assert key["model_sha256"][models.YUNET_TFLITE] == models.SHA256[models.YUNET_TFLITE]
    cfg = config_mod.from_dict({"faces": {"detector": "yunet"}})
    assert detector_spec("yunet").packages_for(cfg) == ("ai-edge-litert",)
    opencv = config_mod.from_dict({"faces": {"detector": "yunet", "yunet": {"engine": "opencv"}}})
    assert detector_spec("yunet").packages_for(opencv) == ()  # OpenCV is in every key
    reference = opencv.extract_key()
    assert models.YUNET in reference["model_sha256"]
    assert models.YUNET_TFLITE not in reference["model_sha256"]
    assert reference["faces"]["yunet"]["engine"] == "opencv"
    other = config_mod.from_dict({"faces": {"detector": "yunet", "yunet": {"scale": 0.5}}})
    assert other.extract_hash() != config_mod.from_dict(
        {"faces": {"detector": "yunet"}}).extract_hash()

