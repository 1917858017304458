"""Blendshapes and landmarks of every still image, from the face mesh, cached per split.

Each 48x48 grey FER2013 face is upscaled to ``upscale`` x ``upscale`` with bicubic
interpolation (cv2.INTER_CUBIC) and turned to 3 equal colour channels: the mesh's detector and
landmark model want an RGB face of at least ~100 px, and the faces are tight crops. Four tries,
the first that gives a mesh wins (:func:`mesh_image`): BlazeFace; the whole image as the face
box (the mesh then refines its region from its own landmarks, as for any box without
keypoints); BlazeFace on the image in a black border; the central two thirds as the box. On
FER2013 the first two alone leave 12.6% of Training without a mesh; the border recovers about
half of those. An image whose mesh says "no face" in every try has no features: it is an
error, counted and reported, and scored as wrong by the evaluation (never dropped silently).

The cache (``train.cache``) holds one folder per (image list, preprocessing, mesh model) and in
it one ``.npz`` per chunk of ``CHUNK`` images of a split, each written atomically: an interrupted
extraction resumes at the first missing chunk. Per-image features derived from FER2013 stay in
this cache, outside the repository (FER2013 has no open licence).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from videmo import schema
from videmo.models import FACE_LANDMARKER, model_hashes
from videmo.store import atomic_path
from videmo.train.data import ImageSet, Item

# Bump when the numbers computed per image change for the same images and settings.
FEATURE_VERSION = 2
CHUNK = 512
INTERPOLATION = "bicubic"  # cv2.INTER_CUBIC
SOURCE_NONE, SOURCE_BLAZEFACE, SOURCE_WHOLE_IMAGE, SOURCE_PADDED, SOURCE_CENTRE = -1, 0, 1, 2, 3
SOURCES = {SOURCE_BLAZEFACE: "blazeface", SOURCE_WHOLE_IMAGE: "whole_image",
           SOURCE_PADDED: "blazeface_padded", SOURCE_CENTRE: "centre_box"}


@dataclass
class Features:
    """The features of one split's images, in the split's order. ``source``: where the mesh
    came from (SOURCE_BLAZEFACE, SOURCE_WHOLE_IMAGE) or SOURCE_NONE (no face: features NaN)."""

    labels: np.ndarray  # (n,) int8, index into schema.EMOTIONS
    source: np.ndarray  # (n,) int8
    blendshapes: np.ndarray  # (n, 52) float32
    landmarks: np.ndarray  # (n, 478, 3) float32, pixels of the upscaled image

    @property
    def ok(self) -> np.ndarray:
        return self.source != SOURCE_NONE

    def subset(self, mask: np.ndarray) -> Features:
        return Features(self.labels[mask], self.source[mask], self.blendshapes[mask],
                        self.landmarks[mask])


def upscale(grey: np.ndarray, size: int) -> np.ndarray:
    """8-bit grey (h, w) -> BGR (size, size, 3), bicubic; the preprocessing of training."""
    big = cv2.resize(grey, (size, size), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


_MESH = None


def _init_worker(threads: int) -> None:
    global _MESH
    from videmo.extract.features.mesh import FaceMesh

    _MESH = FaceMesh(threads)


def mesh_image(mesh, image: np.ndarray):
    """The first mesh of: BlazeFace's best face; the whole image as the face box; BlazeFace on
    the image inside a black border of a quarter of its side (the detector misses many faces
    that fill the frame); the central two thirds as the box. Returns (MeshResult | None,
    source); landmarks are in the pixels of ``image`` whichever step found them."""
    from videmo.extract.detectors import Face

    faces = mesh.detect([image])[0]
    if faces:
        result = mesh.mesh(image, faces[0])
        if result is not None:
            return result, SOURCE_BLAZEFACE
    h, w = image.shape[:2]
    result = mesh.mesh(image, Face(0, 0, w, h))
    if result is not None:
        return result, SOURCE_WHOLE_IMAGE
    pad = w // 4
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    faces = mesh.detect([padded])[0]
    if faces:
        result = mesh.mesh(padded, faces[0])
        if result is not None:
            result.landmarks[:, :2] -= pad
            return result, SOURCE_PADDED
    result = mesh.mesh(image, Face(w // 6, h // 6, w - 2 * (w // 6), h - 2 * (h // 6)))
    return (result, SOURCE_CENTRE) if result is not None else (None, SOURCE_NONE)


def _extract_chunk(job: tuple[list[Item], int, str]) -> tuple[str, int]:
    items, size, out = job
    n = len(items)
    source = np.full(n, SOURCE_NONE, np.int8)
    blend = np.full((n, len(schema.BLENDSHAPES)), np.nan, np.float32)
    lms = np.full((n, 478, 3), np.nan, np.float32)
    for i, item in enumerate(items):
        result, source[i] = mesh_image(_MESH, upscale(item.read(), size))
        if result is not None:
            blend[i] = result.blendshapes
            lms[i] = result.landmarks
    labels = np.array([it.label for it in items], np.int8)
    with atomic_path(Path(out)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, labels=labels, source=source, blendshapes=blend, landmarks=lms)
    return out, n


def cache_key(items: list[Item], size: int) -> str:
    """What the cached numbers depend on: the images (keys and labels), the preprocessing, the
    mesh model file and :data:`FEATURE_VERSION`."""
    blob = json.dumps({"version": FEATURE_VERSION, "upscale": size, "interpolation": INTERPOLATION,
                       "mesh": model_hashes()[FACE_LANDMARKER],
                       "items": [(it.key, it.label) for it in items]}).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def extract(images: ImageSet, cache: Path, size: int, workers: int,
            progress: bool = True) -> dict[str, Features]:
    """The features of every split (computing the chunks not in the cache yet)."""
    jobs: list[tuple[list[Item], int, str]] = []
    paths: dict[str, list[Path]] = {}
    for split, items in images.items.items():
        if not items:
            continue
        folder = cache / f"{split}-{len(items)}-{cache_key(items, size)}"
        paths[split] = []
        for start in range(0, len(items), CHUNK):
            path = folder / f"chunk_{start // CHUNK:05d}.npz"
            paths[split].append(path)
            if not path.exists():
                jobs.append((items[start:start + CHUNK], size, str(path)))
    if jobs:
        total = sum(len(j[0]) for j in jobs)
        bar = tqdm(total=total, desc="face mesh", unit="img", disable=not progress)
        if workers <= 1:
            _init_worker(1)
            for job in jobs:
                bar.update(_extract_chunk(job)[1])
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                     initializer=_init_worker, initargs=(1,)) as pool:
                for _, n in pool.map(_extract_chunk, jobs):
                    bar.update(n)
        bar.close()
    out = {}
    for split, chunk_paths in paths.items():
        parts = [np.load(p) for p in chunk_paths]
        out[split] = Features(*(np.concatenate([p[k] for p in parts])
                                for k in ("labels", "source", "blendshapes", "landmarks")))
    return out


def default_workers() -> int:
    """SLURM's CPUs for this task, else the CPUs this process may use."""
    env = os.environ.get("SLURM_CPUS_PER_TASK")
    return int(env) if env and env.isdigit() else len(os.sched_getaffinity(0))
