"""The cache keys: what makes a clip's extracted numbers what they are.

A run directory records the hash of the extract key (and of each extractor's key); a clip
done under another hash is redone or refused. The key holds the options that change the numbers,
:data:`EXTRACT_VERSION`, the sha256 of the model files the config loads and the versions of the
packages that run them; it is assembled from the detectors' and frame models' specs by
:func:`videmo.extract.keys.extract_key`. Here: what the config knows of it (which sections
count, the version, the hash).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

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
    """``cfg.extract_key()``: assembled by the extract stage from the parts' specs
    (:func:`videmo.extract.keys.extract_key`)."""
    return cfg.extract_key()
