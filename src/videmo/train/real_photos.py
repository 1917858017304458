"""Real photos beside FER2013: muxspace/facial_expressions, its labels, its people and their split.

The photos (about 13,700, Apache-2.0, many of them LFW news photos) are not in the repository:
``fetch github:muxspace/facial_expressions`` gives ``images/`` and ``data/legend.csv`` (user.id,
image, emotion). What the repository holds is the split: ``data/splits/facial_expressions/``
lists the file names of each split (train, selection, test), rebuilt by
``scripts/split_real_photos.py``.

A photo's person is its file name without the trailing number (``Colin_Powell_0012.jpg`` ->
``Colin_Powell``). The people of the project's independent evaluation
(``evaluation-identities.txt``, one ``Name_Surname`` a line) are dropped before the split, all
their photos: a person matches when the names are equal ignoring case, ``_``, ``-`` and spaces,
or when one name's words begin the other's (``Vicente_Fox`` drops ``Vicente_Fox_de_la_Concha``,
``Abdullah_Nasseef`` drops ``Abdullah``): stricter than needed, never looser. The rest is split
by person (all of a person's photos in one split) with scikit-learn's ``StratifiedGroupKFold``
on the three classes, a fixed seed: one fold selection, one test, the others train
(:func:`split_people`).

Use::

    photos = load_legend(root / "data" / "legend.csv")      # image, emotion, label, person
    ids = read_split(SPLITS / "selection.txt")
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from videmo import schema

SPLITS = Path(__file__).resolve().parents[3] / "data" / "splits" / "facial_expressions"
SPLIT_NAMES = ("train", "selection", "test")

# the dataset's eight labels -> schema.EMOTIONS (contempt has no column: it counts as negative)
EMOTION_OF_LABEL = {
    "anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
    "sadness": "sad", "surprise": "surprise", "neutral": "neutral", "contempt": None,
}


def class_of(label: str, mapping: dict[str, str] | None = None) -> str:
    """The three-class label of a dataset label (any case), by ``mapping`` (the study's)."""
    key = label.strip().casefold()
    if key not in EMOTION_OF_LABEL:
        raise ValueError(f"unknown facial_expressions label {label!r}; known: "
                         f"{', '.join(EMOTION_OF_LABEL)}")
    emotion = EMOTION_OF_LABEL[key]
    if emotion is None:
        return schema.NEGATIVE
    return (mapping or schema.STUDY_MAPPING)[emotion]


def person_of(image: str) -> str:
    """``Colin_Powell_0012.jpg`` -> ``Colin_Powell``; ``Dileep_12.jpg`` -> ``Dileep``."""
    stem = image.rsplit(".", 1)[0]
    m = re.match(r"^(.*?)[_ -]*\d+[a-z]?$", stem)
    return m.group(1) if m and m.group(1) else stem


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[_\s]+", name.casefold().replace("-", "")) if w]


def is_excluded(person: str, excluded: list[str]) -> bool:
    """Whether ``person`` may be one of ``excluded`` (see the module doc: equal names, or one
    name's words beginning the other's)."""
    mine = _words(person)
    flat = "".join(mine)
    for other in excluded:
        theirs = _words(other)
        if flat == "".join(theirs):
            return True
        k = min(len(mine), len(theirs))
        if k and mine[:k] == theirs[:k]:
            return True
    return False


def read_identities(path: Path) -> list[str]:
    """The names of an identities file (``#`` comments and blank lines skipped)."""
    lines = Path(path).read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def load_legend(path: Path) -> list[dict[str, str]]:
    """Rows of ``data/legend.csv``: image, emotion (lower case), label (three classes), person."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no facial_expressions legend (fetch "
                                "github:muxspace/facial_expressions, then data/legend.csv)")
    out = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                image, emotion = row["image"], row["emotion"]
            except KeyError as e:
                raise ValueError(f"{path}: no column {e} (expected user.id,image,emotion)"
                                 ) from None
            out.append({"image": image, "emotion": emotion.strip().casefold(),
                        "label": class_of(emotion), "person": person_of(image)})
    return out


def split_people(rows: list[dict[str, str]], seed: int = 0, folds: int = 7
                 ) -> dict[str, list[str]]:
    """Image names per split: ``StratifiedGroupKFold`` by person on the three classes; fold 1 is
    selection, fold 2 test, the rest train (each list sorted). Fold 0 goes to train: the fold
    the largest groups go to first, it holds the one person with a third of the negative photos
    (109 of 327), who would make a selection split of one face."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([r["label"] for r in rows])
    groups = np.array([r["person"] for r in rows])
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    parts = [test for _, test in cv.split(np.zeros(len(rows)), y, groups)]
    which = {"selection": parts[1], "test": parts[2],
             "train": np.concatenate([parts[0], *parts[3:]])}
    return {name: sorted(rows[i]["image"] for i in which[name]) for name in SPLIT_NAMES}


def read_split(path: Path) -> list[str]:
    """The image names of a committed split file (one a line)."""
    return [s for s in Path(path).read_text().splitlines() if s.strip()]
