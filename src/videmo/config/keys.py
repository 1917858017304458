"""The cache keys: what makes a clip's extracted numbers what they are.

A run directory records the hash of :func:`extract_key` (and of each extractor's key); a clip
done under another hash is redone or refused. The key holds the options that change the numbers,
:data:`EXTRACT_VERSION`, the sha256 of the model files the config loads and the versions of the
packages that run them.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from videmo.runtime import package_version as _package_version

if TYPE_CHECKING:
    from videmo.config.options import Config

# Sections whose values change what `extract` computes; their hash guards a run directory.
EXTRACT_SECTIONS = ("corpus", "sampling", "faces", "emotions")
# corpus keys that only choose which clips are in the run: they change no clip's numbers, so
# excluding a broken file (or adding a folder) resumes the same run instead of refusing it
CORPUS_SELECTION_KEYS = ("paths", "include", "exclude", "video_extensions")
# corpus keys that cut recordings into report clips: applied to the per-frame table at report time
CORPUS_CLIP_KEYS = ("segments", "segments_columns", "window_s", "window_step_s")
# what `videmo report --set` may change: report options and how recordings are cut into clips
REPORT_PREFIXES = ("report.", *(f"corpus.{k}" for k in CORPUS_CLIP_KEYS))

# The version of what extraction computes from a clip (frames, boxes, scores). Bump it in the
# commit that changes the per-frame numbers for the same config and models (sampling, decoding,
# detection or scoring code), not at every release: it is part of the extract hash, so a run
# directory made by older code is then refused (or redone with --force) instead of mixing rows.
EXTRACT_VERSION = 2  # 2: the per-frame table gained `track` (face tracks)

# packages whose code computes the numbers, by what the config uses (distribution names; the
# first one installed counts for OpenCV, which ships under several names)
OPENCV_DISTRIBUTIONS = ("opencv-python-headless", "opencv-python", "opencv-contrib-python",
                        "opencv-contrib-python-headless")


def key_hash(key: dict[str, Any]) -> str:
    """The 16-hex-digit hash of a cache key (plain data), as records store it."""
    blob = json.dumps(key, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def extract_key(cfg: Config) -> dict[str, Any]:
    """Everything that changes the per-frame numbers, as plain data (kept in run.json so a
    refusal can name what differs): the extract sections without the keys that only choose
    clips, :data:`EXTRACT_VERSION`, the sha256 of the model files this config loads and the
    versions of the packages that run them (TensorFlow counts only where MTCNN's TensorFlow
    engine, the Keras engine or a mesh frame model use it; a Haar, mediapipe or LiteRT-MTCNN
    run with the tflite engine never imports it). With
    ``emotions.model`` blendshapes or landmarks the key holds that model (its network, its
    card and the mesh bundle it reads) instead of fer's options."""
    from videmo.extract.features.frame_models import FRAME_MODELS
    from videmo.models import (
        BLAZEFACE_FULL,
        EMOTION_KERAS,
        EMOTION_TFLITE,
        EYE_CASCADE,
        FACE_FRAMING,
        FACE_LANDMARKER,
        FRAME_MODEL_FILES,
        HAAR_CASCADE,
        MTCNN_ONET,
        MTCNN_PNET,
        MTCNN_RNET,
        PIXEL_MODEL,
        PIXEL_MODEL_CARD,
        model_hashes,
    )

    d = cfg.to_dict()
    key: dict[str, Any] = {k: d[k] for k in EXTRACT_SECTIONS}
    mtcnn = cfg.faces.detector == "mtcnn"
    litert_mtcnn = mtcnn and cfg.faces.mtcnn_engine == "litert"
    # keys added later are left out where they hold the behaviour of before they existed, so
    # Haar, mediapipe and TensorFlow-MTCNN runs made then stay done
    if not litert_mtcnn:
        key["faces"] = {k: v for k, v in key["faces"].items() if k != "mtcnn_engine"}
    if cfg.faces.detector != "blazeface_full":
        key["faces"] = {k: v for k, v in key["faces"].items() if k != "blazeface_full"}
    if not cfg.faces.mtcnn.onet:
        key["faces"]["mtcnn"] = {k: v for k, v in key["faces"]["mtcnn"].items()
                                 if k != "onet"}
    key["corpus"] = {k: v for k, v in key["corpus"].items()
                     if k not in CORPUS_SELECTION_KEYS + CORPUS_CLIP_KEYS}
    fer = cfg.emotions.model == "fer"
    pixels = cfg.emotions.model == "pixels"
    mesh_model = FRAME_MODELS.get(cfg.emotions.model).reads_mesh
    if fer:  # as before emotions.model existed, so the runs made then stay done
        key["emotions"] = {k: v for k, v in key["emotions"].items()
                           if k not in ("model", "align", "flip")}
    elif pixels:  # its crop options; engine and batch_size apply to fer only
        key["emotions"] = {k: key["emotions"][k] for k in ("model", "align", "flip")}
    else:
        key["emotions"] = {"model": cfg.emotions.model}
    tensorflow = ((mtcnn and not litert_mtcnn) or mesh_model
                  or (fer and cfg.emotions.engine == "keras"))
    files = [HAAR_CASCADE] if cfg.faces.detector == "haar" else []
    if litert_mtcnn:
        files.extend([MTCNN_PNET, MTCNN_RNET] + ([MTCNN_ONET] if cfg.faces.mtcnn.onet else []))
    if cfg.faces.detector == "blazeface_full":
        files.append(BLAZEFACE_FULL)
    if cfg.faces.detector == "mediapipe" or mesh_model:
        files.append(FACE_LANDMARKER)
    if fer:
        files.append(EMOTION_TFLITE if cfg.emotions.engine == "tflite" else EMOTION_KERAS)
    elif pixels:
        files.extend([PIXEL_MODEL, PIXEL_MODEL_CARD, FACE_FRAMING])
        if cfg.emotions.align:
            files.append(EYE_CASCADE)
    else:
        files.extend(FRAME_MODEL_FILES[cfg.emotions.model])
    packages = {"opencv": _package_version(*OPENCV_DISTRIBUTIONS)}
    if (fer and cfg.emotions.engine == "tflite") or cfg.faces.detector in ("mediapipe",
                                                                            "blazeface_full") \
            or not fer or litert_mtcnn:
        packages["ai-edge-litert"] = _package_version("ai-edge-litert")
    if tensorflow:
        packages["tensorflow"] = _package_version("tensorflow")
        packages["keras"] = _package_version("keras")
    if mtcnn and not litert_mtcnn:
        packages["mtcnn"] = _package_version("mtcnn")
    hashes = model_hashes()
    key["extract_version"] = EXTRACT_VERSION
    key["model_sha256"] = {f: hashes[f] for f in files}
    key["packages"] = packages
    return key

