from __future__ import annotations

import shutil

import pytest

from videmo import models
from videmo.models import ModelFileError, model_path, sha256_of


def test_shipped_files_match_their_recorded_hashes():
    for name, expected in models.SHA256.items():
        assert sha256_of(model_path(name)) == expected
    assert (models.MODEL_DIR / "LICENSE-fer.txt").read_text().startswith("MIT License")
    mtcnn = (models.MODEL_DIR / "LICENSE-mtcnn.txt").read_text()
    assert mtcnn.startswith("MIT License") and "Iván de Paz Centeno" in mtcnn
    yunet = (models.MODEL_DIR / "LICENSE-yunet.txt").read_text()
    assert yunet.startswith("MIT License") and "Shiqi Yu" in yunet
    listed = (models.MODEL_DIR / "README.md").read_text().splitlines()
    for name, expected in models.SHA256.items():  # each file's row names its current hash
        rows = [line for line in listed if line.startswith(f"| `{name}` |")]
        assert len(rows) == 1 and f"`{expected}`" in rows[0], f"models/README.md: {name}"


def test_a_modified_model_file_is_refused(tmp_path):
    for name in models.SHA256:
        shutil.copy(models.MODEL_DIR / name, tmp_path / name)
    assert model_path(models.EMOTION_TFLITE, tmp_path) == tmp_path / models.EMOTION_TFLITE
    with open(tmp_path / models.EMOTION_KERAS, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelFileError, match="modified or corrupted"):
        model_path(models.EMOTION_KERAS, tmp_path)
    (tmp_path / models.HAAR_CASCADE).unlink()
    with pytest.raises(ModelFileError, match="missing"):
        model_path(models.HAAR_CASCADE, tmp_path)
