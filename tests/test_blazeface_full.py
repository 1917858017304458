"""The full-range BlazeFace (videmo.extract.detectors.blazeface_full) against MediaPipe, and the
tiles that see small faces.

Parity: tests/data/blazeface_full_golden.npz holds the real mediapipe 0.10.14's full-range
face detection graph (solutions.face_detection, model_selection=1) on the images of
scripts/blazeface_full_golden.py: frames 0, 25 and 50 of each sample clip, each clip's frame 25
shrunk onto a grey 960x540 canvas (the letterbox of a wide frame) and its central square (a
tile). The LiteRT detector, with the whole frame only, must find the same faces with the same
boxes, keypoints and scores. Measured 2026-12-06 (LiteRT 2.x XNNPACK): 7.6e-5 px worst corner,
scores to 1e-4; the tolerances are far above that and far below what changes a face.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from videmo import config as config_mod
from videmo.extract.detectors import make_detector
from videmo.extract.detectors.blazeface_full import BlazeFaceFullDetector, squares

from .conftest import REPO, SAMPLE_CLIPS, read_frames

GOLDEN = Path(__file__).parent / "data" / "blazeface_full_golden.npz"
SCORE_TOL = 1e-3
PX_TOL = 0.05


def _golden_images():
    spec = importlib.util.spec_from_file_location(
        "blazeface_full_golden", REPO / "scripts" / "blazeface_full_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.images()


@pytest.fixture(scope="module")
def detector() -> BlazeFaceFullDetector:
    return BlazeFaceFullDetector(tiles=0)


def test_matches_mediapipe_on_the_golden_images(detector):
    with np.load(GOLDEN) as g:
        golden = {k: g[k] for k in g.files}
    names, images = _golden_images()
    assert list(golden["name"]) == names
    for i, image in enumerate(images):
        sha = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
        assert sha == golden["image_sha256"][i], f"{names[i]} decodes differently here"
        ours = detector.detect_one(image)
        rows = np.flatnonzero(golden["image"] == i)
        assert len(ours) == len(rows), names[i]
        for face, j in zip(ours, rows, strict=True):
            np.testing.assert_allclose(face.box, golden["box"][j], atol=PX_TOL, err_msg=names[i])
            np.testing.assert_allclose(face.keypoints, golden["keypoints"][j], atol=PX_TOL)
            assert abs(face.confidence - golden["score"][j]) < SCORE_TOL
    assert len(golden["score"]) >= len(names) - 1  # the goldens hold faces, not empty lists


@pytest.mark.parametrize(("size", "tiles", "count", "side"), [
    ((1280, 720), 0, 1, 1280), ((1280, 720), 1, 2, 720), ((1280, 720), 2, 5, 640),
    ((1280, 720), 4, 13, 320), ((1920, 1080), 2, 5, 960), ((720, 1280), 2, 5, 640),
    ((480, 360), 2, 5, 240),
])
def test_tiles_cover_the_frame(size, tiles, count, side):
    w, h = size
    sq = squares(w, h, tiles)
    assert len(sq) == count
    assert sq[0][2] == max(w, h)  # the letterboxed whole frame first
    covered = np.zeros((h, w), bool)
    for x0, y0, s in sq[1:]:
        assert s == pytest.approx(side)
        assert x0 >= -1e-9 and y0 >= -1e-9 and x0 + s <= w + 1e-6 and y0 + s <= h + 1e-6
        covered[round(y0):round(y0 + s), round(x0):round(x0 + s)] = True
    assert tiles < 2 or covered.all()  # one tile is the centred square


def _wide_shot(frame: np.ndarray, face_scale: float, at=(700, 400)) -> np.ndarray:
    canvas = np.full((720, 1280, 3), (90, 110, 120), np.uint8)
    small = cv2.resize(frame, None, fx=face_scale, fy=face_scale, interpolation=cv2.INTER_AREA)
    x, y = at
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def test_tiles_find_a_small_face_the_whole_frame_misses():
    (frame,) = read_frames(SAMPLE_CLIPS[3], 1)  # happy: a 105 px face at 480x360
    wide = _wide_shot(frame, 0.45)  # a face about 47 px wide in 1280x720
    assert BlazeFaceFullDetector(tiles=0).detect_one(wide) == []
    (faces,) = BlazeFaceFullDetector(tiles=2).detect([wide])
    assert len(faces) == 1
    f = faces[0]
    assert 700 < f.x + f.w / 2 < 700 + 480 * 0.45 and 35 < f.w < 65


def test_min_size_is_in_full_resolution_pixels():
    (frame,) = read_frames(SAMPLE_CLIPS[3], 1)
    wide = _wide_shot(frame, 0.45)
    det = BlazeFaceFullDetector(tiles=2, min_size=60)
    assert det.detect([wide], 1.0) == [[]]
    small = cv2.resize(wide, (640, 360), interpolation=cv2.INTER_AREA)
    assert det.detect([small], 0.5) == [[]]  # 23 px at half size is 47 px at full size


def test_the_registry_builds_it_from_the_config(tmp_path):
    cfg = config_mod.from_dict({"faces": {"detector": "blazeface_full",
                                          "blazeface_full": {"tiles": 3, "min_score": 0.7}}})
    det = make_detector(cfg)
    assert isinstance(det, BlazeFaceFullDetector) and det.tiles == 3 and det.min_score == 0.7


def test_its_model_file_and_options_enter_the_extract_key_only_when_chosen():
    base = config_mod.from_dict({})
    full = config_mod.from_dict({"faces": {"detector": "blazeface_full"}})
    assert "blazeface_full" not in base.extract_key()["faces"]
    assert "face_detection_full_range_sparse.tflite" not in base.extract_key()["model_sha256"]
    key = full.extract_key()
    assert key["faces"]["blazeface_full"]["tiles"] == 2
    assert "face_detection_full_range_sparse.tflite" in key["model_sha256"]
    other = config_mod.from_dict({"faces": {"detector": "blazeface_full",
                                            "blazeface_full": {"tiles": 4}}})
    assert other.extract_hash() != full.extract_hash()


def test_its_pixel_crop_matches_the_short_range_detectors_on_a_close_up(detector):
    """The derived framing (scripts/framing_full_range.py) carries the short-range crop over to
    the full-range box: the two crops of one face nearly agree, closer than with the short-range
    framing applied to the full-range box as it is."""
    from videmo.extract.crop import Framing
    from videmo.extract.detectors import detector_spec
    from videmo.extract.detectors.blazeface import BlazeFaceDetector
    from videmo.extract.features.pixel_model import crops_for, framing_for

    (frame,) = read_frames(SAMPLE_CLIPS[4], 1)
    (short,) = BlazeFaceDetector().detect_one(frame)
    (full,) = detector.detect_one(frame)
    ref = crops_for(frame, [short], framing_for("mediapipe"), False).astype(float)
    own = Framing(*detector_spec("blazeface_full").framing)  # its spec carries it
    derived = crops_for(frame, [full], own, False).astype(float)
    as_is = crops_for(frame, [full], framing_for("mediapipe"), False).astype(float)
    assert np.abs(derived - ref).mean() < np.abs(as_is - ref).mean()
    assert np.abs(derived - ref).mean() < 8
