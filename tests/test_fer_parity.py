"""videmo's Haar boxes and seven scores equal the real fer package's on real frames.

fer 25.10.3 is installed into the test environment only (scripts/bootstrap.sh --test, with
--no-deps); videmo never imports it. Under CI a missing fer is a failure, not a skip.
"""

from __future__ import annotations

import warnings

import pytest

from videmo import schema
from videmo.extract.detectors.haar import HaarDetector
from videmo.extract.features.emotions import TfliteModel, crop_faces

from .conftest import IN_CI

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fer.fer import FER
except ImportError as e:  # pragma: no cover - depends on the environment
    if IN_CI:
        raise
    pytest.skip(f"fer not installed ({e}); run scripts/bootstrap.sh --test",
                allow_module_level=True)


def test_same_boxes_and_scores_as_fer(clip_frames):
    fer = FER()
    haar, model = HaarDetector(), TfliteModel()
    compared = 0
    for clip_id, frames in clip_frames.items():
        for i, frame in enumerate(frames[::6]):
            theirs = fer.detect_emotions(frame)
            (faces,) = haar.detect([frame])
            assert [tuple(int(v) for v in t["box"]) for t in theirs] == [
                (f.x, f.y, f.w, f.h) for f in faces], (clip_id, i)
            inputs, kept = crop_faces(frame, faces)
            probs = model.predict(inputs)
            for t, p in zip(theirs, probs, strict=True):
                ours = {e: round(float(s), 2) for e, s in zip(schema.EMOTIONS, p, strict=True)}
                assert ours == t["emotions"], (clip_id, i)
                compared += 1
    assert compared >= 60
