"""The frame models on real photos: muxspace/facial_expressions, person-held-out splits.

FER2013's test sets come from its own crawl, crop and labellers; this scores the frame models
on real still photos instead, cropped exactly as at run time: each detector's real box on the
photo (``faces.detector`` with its default options, the largest face), then fer's crop for fer
and the detector's framing (``models/face_framing.json``) -> grey 48x48 for the pixel model,
with and without ``emotions.flip``. A photo's label is its dataset label through the study's
7 -> 3 mapping (contempt: negative); a face's class is its top emotion's (the ``top`` rule).

The photos stay outside the repository (``fetch github:muxspace/facial_expressions``); the
splits are data/splits/facial_expressions/ (scripts/split_real_photos.py: the evaluation
identities dropped, split by person). Per-photo scores are cached outside the repository
(``--cache``); only the aggregate numbers are written (``--out``, JSON).

    python bench/real_photos.py score /tmp/realfaces --splits selection test \\
        --detectors haar mediapipe
    python bench/real_photos.py report --splits selection test --out bench/results/real_photos.json
    python bench/real_photos.py report --detectors mtcnn yunet --pixel-models pixels_real \
        pixels_distilled --root /tmp/realfaces      # shipped pixel models on the cached boxes
    python bench/real_photos.py framing /tmp/realfaces --split selection   # pixel crop framing

Metrics per (split, detector, model): 3-class accuracy, macro-F1 and per-class recall over the
photos where the detector found a face (``found``: that share), and accuracy over all photos
with a photo without a face counted wrong (``accuracy_all``); for the pixel model, the 95%
bootstrap interval of its accuracy minus fer's on the same faces (``minus_fer_95``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import platform
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from videmo import schema
from videmo.train import real_photos as rp

REPO = Path(__file__).resolve().parents[1]
CACHE = Path("~/.cache/videmo/real_photos").expanduser()
MODELS = ("fer", "pixels", "pixels_flip")


def cached(cache: Path, split: str, detector: str) -> Path:
    return cache / f"{split}-{detector}.parquet"


def labels(root: Path) -> dict[str, str]:
    return {r["image"]: r["label"] for r in rp.load_legend(root / "data" / "legend.csv")}


def subset(ids: list[str], label: dict[str, str], per_class: int | None, seed: int = 0
           ) -> list[str]:
    """At most ``per_class`` photos of each class (a seeded sample, in split order)."""
    if per_class is None:
        return ids
    rng = np.random.default_rng(seed)
    keep: set[str] = set()
    for c in schema.CLASSES:
        of_c = [i for i in ids if label[i] == c]
        keep.update(of_c if len(of_c) <= per_class
                    else rng.choice(of_c, per_class, replace=False).tolist())
    return [i for i in ids if i in keep]


def score(root: Path, split: str, detector: str, cache: Path, limit: int | None,
          per_class: int | None = None) -> Path:
    """Detect, crop and score the photos of ``split``; one row per photo (NaN without a face)."""
    from videmo.config import from_dict
    from videmo.extract.detectors import detect_faces, make_detector, select_faces
    from videmo.extract.features.emotions import FerScorer, croppable
    from videmo.extract.features.pixel_model import PixelModel, crops_for, framing_for

    cfg = from_dict({"faces": {"detector": detector}})
    det = make_detector(cfg.faces, 1)
    fer = FerScorer(cfg, 1)
    pixels = PixelModel.load(1)
    framing = framing_for(detector)
    label = labels(root)
    ids = subset(rp.read_split(rp.SPLITS / f"{split}.txt"), label, per_class)[:limit]
    rows = []
    t0 = time.time()
    for n, image in enumerate(ids):
        path = root / "images" / image
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise FileNotFoundError(f"{path}: not a readable image (split {split})")
        (faces,) = detect_faces(det, [frame], cfg.faces.max_width)
        chosen = select_faces(faces, cfg.faces.select)
        chosen = [chosen[i] for i in croppable(frame, chosen)]
        row = {"image": image, "label": label[image], "n_faces": len(faces)}
        if chosen:
            from videmo.extract.features.base import FaceBatch

            face = chosen[0]
            row.update(x=face.x, y=face.y, w=face.w, h=face.h)
            (p_fer,) = fer.score(FaceBatch(frame, [face]))
            crop = crops_for(frame, [face], framing, align=False)
            both = pixels.predict(np.concatenate([crop, crop[:, :, ::-1]]))
            for name, p in (("fer", p_fer), ("pixels", both[0]),
                            ("pixels_flip", (both[0] + both[1]) / 2)):
                row.update({f"{name}.{e}": float(v) for e, v in zip(schema.EMOTIONS, p,
                                                                      strict=True)})
        rows.append(row)
        if (n + 1) % 200 == 0:
            print(f"{split}/{detector}: {n + 1}/{len(ids)} ({time.time() - t0:.0f} s)",
                  flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    out = cached(cache, split, detector)
    tmp = out.with_suffix(".tmp")
    pd.DataFrame(rows).to_parquet(tmp)
    tmp.replace(out)
    return out


def probabilities(df: pd.DataFrame, model: str) -> np.ndarray:
    return df[[f"{model}.{e}" for e in schema.EMOTIONS]].to_numpy(dtype=float)


def top_class(p: np.ndarray) -> np.ndarray:
    return np.asarray([schema.STUDY_MAPPING[e] for e in schema.EMOTIONS])[p.argmax(1)]


def metrics(y: np.ndarray, pred: np.ndarray, n_all: int) -> dict:
    """3-class accuracy, macro-F1 and per-class recall (schema.CLASSES order, with counts)."""
    from sklearn.metrics import f1_score, recall_score

    classes = list(schema.CLASSES)
    recall = recall_score(y, pred, labels=classes, average=None, zero_division=0)
    return {
        "n": int(len(y)),
        "found": round(len(y) / n_all, 4) if n_all else 0.0,
        "accuracy": round(float(np.mean(y == pred)), 4),
        "accuracy_all": round(float(np.sum(y == pred)) / n_all, 4) if n_all else 0.0,
        "macro_f1": round(float(f1_score(y, pred, labels=classes, average="macro",
                                         zero_division=0)), 4),
        "recall": {c: round(float(r), 4) for c, r in zip(classes, recall, strict=True)},
        "support": {c: int(np.sum(y == c)) for c in classes},
    }


def paired_interval(y: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = 2000,
                    seed: int = 0) -> list[float]:
    """95% bootstrap interval (photos resampled, seeded) of accuracy(a) - accuracy(b)."""
    rng = np.random.default_rng(seed)
    diff = (a == y).astype(float) - (b == y).astype(float)
    means = [diff[rng.integers(0, len(y), len(y))].mean() for _ in range(n)]
    return [round(float(v), 4) for v in np.percentile(means, [2.5, 97.5])]


def report(splits: list[str], detectors: list[str], cache: Path, root: Path | None = None,
           pixel_models: list[str] = ()) -> dict:
    """Metrics of the cached scores per split, detector and model; ``pixel_models``: also these
    shipped pixel models (no flip), on crops cut again from the cached boxes with the
    detector's framing (the photos under ``root`` are read again)."""
    out: dict = {}
    for split in splits:
        for detector in detectors:
            path = cached(cache, split, detector)
            if not path.is_file():
                continue
            df = pd.read_parquet(path)
            found = df.dropna(subset=["fer.happy"])
            y = found["label"].to_numpy()
            fer = top_class(probabilities(found, "fer"))
            preds = {model: top_class(probabilities(found, model)) for model in MODELS}
            if pixel_models:
                crops = recrop(root, found, detector)
                for name in pixel_models:
                    preds[name] = top_class(pixel_model(name).predict(crops))
            for model, pred in preds.items():
                m = out.setdefault(split, {}).setdefault(detector, {})[model] = metrics(
                    y, pred, len(df))
                if model != "fer":
                    m["minus_fer_95"] = paired_interval(y, pred, fer)
    return out


def recrop(root: Path | None, found: pd.DataFrame, detector: str) -> np.ndarray:
    """The pixel models' 48x48 grey crops of the cached boxes, framed for ``detector``, as
    ``score`` cut them."""
    from videmo.extract.detectors.base import Face
    from videmo.extract.features.pixel_model import crops_for, framing_for

    if root is None:
        raise SystemExit("report --pixel-models needs --root (the photos)")
    framing = framing_for(detector)
    crops = [crops_for(cv2.imread(str(root / "images" / r.image), cv2.IMREAD_COLOR),
                       [Face(int(r.x), int(r.y), int(r.w), int(r.h))], framing, align=False)
             for r in found.itertuples()]
    return np.concatenate(crops) if crops else np.zeros((0, 48, 48), np.uint8)


@functools.cache
def pixel_model(name: str):
    from videmo.extract.features.pixel_model import PixelModel

    return PixelModel.load(1, name=name)


def framing_grid(root: Path, split: str, detector: str, cache: Path,
                 scales: list[float], dys: list[float]) -> dict:
    """The pixel model's accuracy and macro-F1 on ``split`` for each crop framing (scale, dy),
    from the cached boxes: the real-photo check of face_framing.json (measured on FER2013)."""
    from videmo.extract.crop import Framing, face_crop
    from videmo.extract.features.pixel_model import PixelModel

    df = pd.read_parquet(cached(cache, split, detector)).dropna(subset=["fer.happy"])
    pixels = PixelModel.load(1)
    greys = {}
    for image in df["image"]:
        greys[image] = cv2.imread(str(root / "images" / image), cv2.IMREAD_GRAYSCALE)
    y = df["label"].to_numpy()
    result = {}
    for scale in scales:
        for dy in dys:
            f = Framing(scale, 0.0, dy)
            crops = np.stack([face_crop(greys[r.image], (r.x, r.y, r.w, r.h), f)
                              for r in df.itertuples()])
            m = metrics(y, top_class(pixels.predict(crops)), len(df))
            result[f"scale={scale},dy={dy}"] = {k: m[k] for k in ("accuracy", "macro_f1")}
            print(detector, scale, dy, result[f"scale={scale},dy={dy}"], flush=True)
    return result


def header(command: str) -> dict:
    import ai_edge_litert
    import sklearn

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()} (2 shared CPU cores)",
            "python": platform.python_version(), "opencv": cv2.__version__,
            "ai_edge_litert": getattr(ai_edge_litert, "__version__", "?"),
            "scikit-learn": sklearn.__version__, "commit": commit, "command": command}


def main(argv: list[str] | None = None) -> int:
    import sys

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("score", help="detect, crop and score the photos of the splits (cached)")
    s.add_argument("root", type=Path, help="facial_expressions (images/, data/legend.csv)")
    s.add_argument("--limit", type=int, default=None, help="the first N photos of each split")
    s.add_argument("--per-class", type=int, default=None,
                   help="at most N photos of each class (seeded; for the train split)")
    r = sub.add_parser("report", help="metrics from the cached scores")
    r.add_argument("--out", type=Path, default=None, help="write the metrics as JSON here")
    r.add_argument("--pixel-models", nargs="+", default=[],
                   help="also score these shipped pixel models (pixels_real ...) on the cached "
                        "boxes, cut again from the photos under --root")
    r.add_argument("--root", type=Path, default=None, help="facial_expressions, for "
                   "--pixel-models")
    f = sub.add_parser("framing", help="the pixel model's score per crop framing")
    f.add_argument("root", type=Path)
    f.add_argument("--split", default="selection")
    f.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.1, 1.2, 1.3, 1.4])
    f.add_argument("--dys", type=float, nargs="+", default=[-0.1, -0.05, 0.0])
    f.add_argument("--out", type=Path, default=None)
    for p in (s, r):
        p.add_argument("--splits", nargs="+", default=["selection", "test"],
                       choices=rp.SPLIT_NAMES)
    for p in (s, r, f):
        p.add_argument("--detectors", nargs="+", default=["haar", "mediapipe"])
        p.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args(argv)
    command = "python bench/real_photos.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.what == "score":
        for split in args.splits:
            for detector in args.detectors:
                print("wrote", score(args.root, split, detector, args.cache, args.limit,
                                    args.per_class))
        return 0
    if args.what == "report":
        result = {**header(command), "metrics": report(args.splits, args.detectors, args.cache,
                                                        args.root, args.pixel_models)}
    else:
        result = {**header(command), "split": args.split, "framing": {
            d: framing_grid(args.root, args.split, d, args.cache, args.scales, args.dys)
            for d in args.detectors}}
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
