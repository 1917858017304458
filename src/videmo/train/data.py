"""A still-image emotion set and its three splits, read from FER2013's folders or its csv.

FER2013 has three splits, named in its csv's ``Usage`` column and in the copies' file names:
``Training`` (fit), ``PublicTest`` (select: early stopping) and ``PrivateTest`` (report once).
A folder copy keeps the originals as ``<emotion>/<Split>_<n>.jpg`` (anywhere below the root);
any other file (an augmented copy, a README) is skipped and counted. When a set has no
PublicTest images (the GitHub copy this project uses has none), the selection split is a fixed
10% of each class of Training, chosen by :func:`holdout` from the seed: reproducible, and
documented in the results.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from videmo import schema

TRAINING, PUBLIC, PRIVATE = "Training", "PublicTest", "PrivateTest"
SPLITS: tuple[str, ...] = (TRAINING, PUBLIC, PRIVATE)
ORIGINAL = re.compile(r"^(Training|PublicTest|PrivateTest)_(\d+)\.jpg$")
HOLDOUT_SHARE = 0.10
# FER2013 csv: its `emotion` column indexes this order, which is schema.EMOTIONS'.
CSV_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise",
                                 "neutral")
assert CSV_EMOTIONS == schema.EMOTIONS


class DataError(ValueError):
    """The image set cannot be read: the message names the path, file, row or value."""


@dataclass(frozen=True)
class Item:
    """One image: its split, its label (index into schema.EMOTIONS) and where it is: a file,
    or a row of the csv (``row``, with the pixels kept in ``pixels``)."""

    split: str
    label: int
    key: str  # folder: the path below the root; csv: "row <n>"
    path: Path | None = None
    pixels: str | None = None

    def read(self) -> np.ndarray:
        """The image as 8-bit grey (h, w)."""
        if self.path is not None:
            image = cv2.imread(str(self.path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise DataError(f"cannot read image {self.path}")
            return image
        values = np.array(self.pixels.split(), dtype=np.uint8) if self.pixels else np.zeros(0)
        if values.size != 48 * 48:
            raise DataError(f"fer2013.csv {self.key}: {values.size} pixel values, expected 2304")
        return values.reshape(48, 48)


@dataclass
class ImageSet:
    """The items of each split (in a fixed order) and what was skipped while reading."""

    items: dict[str, list[Item]]
    skipped: int
    source: str

    def counts(self) -> dict[str, int]:
        return {s: len(self.items.get(s, [])) for s in SPLITS}

    def class_counts(self, split: str) -> dict[str, int]:
        c = Counter(schema.EMOTIONS[i.label] for i in self.items.get(split, []))
        return {e: c.get(e, 0) for e in schema.EMOTIONS}


def _emotion_of(folder: str, path: Path) -> int:
    name = folder.casefold()
    if name not in schema.EMOTIONS:
        raise DataError(f"{path}: folder {folder!r} is not an emotion; expected one of "
                        f"{', '.join(schema.EMOTIONS)}")
    return schema.EMOTIONS.index(name)


def read_folders(root: Path) -> ImageSet:
    """Every ``<emotion>/<Split>_<n>.jpg`` below ``root``; ordered by split, then number."""
    if not root.is_dir():
        raise DataError(f"train.data: {root} is not a folder (train.format: folders)")
    found: dict[str, list[tuple[int, Item]]] = {s: [] for s in SPLITS}
    skipped = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        m = ORIGINAL.match(path.name)
        if not m:
            skipped += 1
            continue
        item = Item(m.group(1), _emotion_of(path.parent.name, path),
                    path.relative_to(root).as_posix(), path=path)
        found[m.group(1)].append((int(m.group(2)), item))
    items = {s: [it for _, it in sorted(v, key=lambda t: (t[0], t[1].key))]
             for s, v in found.items()}
    if not items[TRAINING]:
        raise DataError(f"train.data: no Training_<n>.jpg under {root} (in emotion folders)")
    return ImageSet(items, skipped, f"folders {root}")


def read_csv(path: Path) -> ImageSet:
    """The standard fer2013.csv: columns emotion (0-6), pixels (2304 values), Usage."""
    if not path.is_file():
        raise DataError(f"train.data: {path} is not a file (train.format: csv)")
    items: dict[str, list[Item]] = {s: [] for s in SPLITS}
    skipped = 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected "
                            f"fer2013.csv's emotion, pixels, Usage")
        for n, row in enumerate(reader, start=2):
            usage = row["Usage"].strip()
            if usage not in SPLITS:
                skipped += 1
                continue
            try:
                label = int(row["emotion"])
            except ValueError:
                raise DataError(f"{path} line {n}: emotion {row['emotion']!r} is not 0-6") from None
            if not 0 <= label < len(CSV_EMOTIONS):
                raise DataError(f"{path} line {n}: emotion {label} is not 0-6")
            items[usage].append(Item(usage, label, f"row {n}", pixels=row["pixels"]))
    if not items[TRAINING]:
        raise DataError(f"{path}: no rows with Usage Training")
    return ImageSet(items, skipped, f"csv {path}")


def read(path: Path, fmt: str) -> ImageSet:
    if fmt == "folders":
        return read_folders(path)
    if fmt == "csv":
        return read_csv(path)
    raise DataError(f"train.format: {fmt!r}; expected folders or csv")


def holdout(labels: np.ndarray, seed: int, share: float = HOLDOUT_SHARE) -> np.ndarray:
    """Boolean mask of a stratified ``share`` of ``labels`` (per class: round(share * n) items,
    drawn by numpy's default_rng(seed) over the items in their fixed order); used as the
    selection split when a set has no PublicTest."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(share * len(idx)))
        mask[rng.permutation(idx)[:k]] = True
    return mask


def folder_sample(root: Path, split: str, per_class: int | None = None, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The original images of ``split`` below a FER2013 folder copy (``<emotion>/<Split>_<n>.jpg``,
    in path order), at most ``per_class`` of each emotion (drawn by numpy's default_rng(seed)),
    as grey (n, 48, 48) uint8 and their emotion names: the real-photo benchmarks' FER2013 rows
    (bench/real_head.py, scripts/train_pixels_real.py)."""
    paths = [p for p in sorted(root.glob("*/*/*.jpg"))
             if (m := ORIGINAL.match(p.name)) and m.group(1) == split]
    if per_class:
        rng = np.random.default_rng(seed)
        keep = []
        for e in schema.EMOTIONS:
            of_e = [p for p in paths if p.parent.name == e]
            keep += list(rng.choice(of_e, min(per_class, len(of_e)), replace=False))
        paths = sorted(keep)
    images = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])
    return images, np.array([p.parent.name for p in paths])
