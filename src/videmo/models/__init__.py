"""The model files that ship inside videmo, and their recorded sha256.

Nothing is downloaded at run time: compute nodes are often offline. Every file is checked
against its recorded hash before it is loaded, so a corrupted or swapped file is refused with a
clear message instead of silently changing results.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent

EMOTION_TFLITE = "emotion_model_quantized.tflite"
EMOTION_KERAS = "emotion_model.hdf5"
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# MediaPipe Face Landmarker bundle (a zip of three tflite models and the canonical face geometry)
FACE_LANDMARKER = "face_landmarker.task"
# MTCNN's P-, R- and O-Net from the mtcnn 1.0.0 package's weights, as TFLite
# (scripts/mtcnn_tflite.py), for faces.mtcnn_engine: litert
MTCNN_PNET, MTCNN_RNET, MTCNN_ONET = "mtcnn_pnet.tflite", "mtcnn_rnet.tflite", "mtcnn_onet.tflite"
# MediaPipe's full-range BlazeFace (mediapipe 0.10.14 wheel, Apache-2.0): faces.detector
# blazeface_full
BLAZEFACE_FULL = "face_detection_full_range_sparse.tflite"
# YuNet, OpenCV's model zoo (MIT): faces.detector yunet; the ONNX file (OpenCV's
# FaceDetectorYN: faces.yunet.engine opencv) and its TFLite conversion (scripts/yunet_tflite.py:
# engine litert, the default)
YUNET = "face_detection_yunet_2023mar.onnx"
YUNET_TFLITE = "face_detection_yunet_2023mar.tflite"

# Frame models trained by `videmo train` on FER2013 (MODELS.md): a Keras network (loaded in safe
# mode) and its JSON card (features, preprocessing, numbers), by frame model name.
FRAME_BLENDSHAPES, FRAME_BLENDSHAPES_CARD = "frame_blendshapes.keras", "frame_blendshapes.json"
FRAME_LANDMARKS, FRAME_LANDMARKS_CARD = "frame_landmarks.keras", "frame_landmarks.json"
FRAME_MODEL_FILES: dict[str, tuple[str, str]] = {
    "blendshapes": (FRAME_BLENDSHAPES, FRAME_BLENDSHAPES_CARD),
    "landmarks": (FRAME_LANDMARKS, FRAME_LANDMARKS_CARD),
}

# The pixel frame model (emotions.model: pixels): a TFLite network trained by `videmo train`
# (MODELS.md), its card, the crop framing per detector measured on FER2013
# (scripts/calibrate_framing.py) and OpenCV's eye cascade (eyes of boxes without keypoints).
PIXEL_MODEL, PIXEL_MODEL_CARD = "pixels.tflite", "pixels.json"
# emotions.model: pixels_real: the same three networks, their last layers replaced by one fitted
# on real photos + FER2013 (scripts/train_pixels_real.py, MODELS.md "Real photos").
PIXELS_REAL, PIXELS_REAL_CARD = "pixels_real.tflite", "pixels_real.json"
# emotions.model: pixels_distilled: one of the three networks, trained on pixels_real's outputs
# (scripts/distil_pixels.py, MODELS.md "pixels_distilled"): about a third of the cost.
PIXELS_DISTILLED, PIXELS_DISTILLED_CARD = "pixels_distilled.tflite", "pixels_distilled.json"
PIXEL_MODELS: dict[str, tuple[str, str]] = {
    "pixels": (PIXEL_MODEL, PIXEL_MODEL_CARD),
    "pixels_real": (PIXELS_REAL, PIXELS_REAL_CARD),
    "pixels_distilled": (PIXELS_DISTILLED, PIXELS_DISTILLED_CARD),
}
FACE_FRAMING = "face_framing.json"
EYE_CASCADE = "haarcascade_eye.xml"

SHA256: dict[str, str] = {
    EMOTION_TFLITE: "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
    EMOTION_KERAS: "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    HAAR_CASCADE: "0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0",
    FACE_LANDMARKER: "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    MTCNN_PNET: "665245397893619bde95fb4645077d9dc9053e0e39efbb759cf0b88c3773c64f",
    MTCNN_RNET: "ade8912665262346f5da2240462d4bc6b665ed771588850825018bf326b47adf",
    BLAZEFACE_FULL: "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    YUNET: "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    YUNET_TFLITE: "6e93762ae5461bd55db3c15afde165e77891b6d63e59f917b32e74c54ad71d7a",
    MTCNN_ONET: "e303dadee2ca059a5be7d0371f13139d38d1bacc107869489272c0a3491b35d9",
    FRAME_BLENDSHAPES: "a6a7d0ea9a754aebd26b9b6deb2f589739a06396b5e761e4efaa291e480d7c5f",
    FRAME_BLENDSHAPES_CARD: "dcfc2eda8bf267a4cca14b377ddffc8f19ac9a1074f99adbcb860ed59e4afe1c",
    FRAME_LANDMARKS: "5e521f08f2e74aa9257bb19aad2fb20175e920bdd607d87d9e99b9ecc19c4590",
    FRAME_LANDMARKS_CARD: "9db1bbe8c5827a3ae2e6aef597a3403264da584b7b88b4112e4194e5297fe422",
    PIXEL_MODEL: "e2f7371803216528b67ee9b7875e89ce5875e39f13d3f66c082460eb97bbcd90",
    PIXEL_MODEL_CARD: "75d7d03a9e0d808efff56711fddb11503eb15c40abd831c0013dc52f9675b718",
    PIXELS_REAL: "777f5738dd1ceb378c675ad7e52d6376c9a51de56946f02bc4daea87988befa2",
    PIXELS_REAL_CARD: "3bfe955642cc4eefb0d326f8cb9bd85e371fe2de02b3731f2517d709b1fd2dab",
    PIXELS_DISTILLED: "8e6ab55b28fd2670755989db721db0f89d4b7b4e9024d836b7b526dcfce32224",
    PIXELS_DISTILLED_CARD: "281d1e29205d94b63ed57f37317c7ea5b2073bbf4e44f4870be1e99b1ad24117",
    FACE_FRAMING: "080dea9ae746124d988aea00ca7fdf3fb8de83f50e2e7da6af78bca11b7996a6",
    EYE_CASCADE: "71cc64fc305a355dc60067880f6fbbd43dd155bd63ee3844661a1bda34b2fd8c",
}


class ModelFileError(RuntimeError):
    """A shipped model file is missing or does not match its recorded sha256."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@cache
def _verified(path: Path, expected: str, mtime_ns: int, size: int) -> Path:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFileError(
            f"model file {path} has sha256 {actual}, expected {expected}: it was modified or "
            f"corrupted. Reinstall videmo (pip install --force-reinstall videmo) to restore it."
        )
    return path


def model_path(name: str, directory: Path | None = None) -> Path:
    """Path of a shipped model file, after checking its sha256 (cached per file version)."""
    if name not in SHA256:
        raise KeyError(f"unknown model file {name!r}; known: {', '.join(SHA256)}")
    path = (directory or MODEL_DIR) / name
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} is missing; reinstall videmo") from None
    return _verified(path, SHA256[name], st.st_mtime_ns, st.st_size)


def model_hashes() -> dict[str, str]:
    """The recorded hashes, as written into every run's provenance."""
    return dict(SHA256)
