"""Cheap models over fer and the pixel model, fitted on real photos, chosen on the selection split.

Reads the per-photo scores ``bench/real_photos.py score`` cached (train split: a class-balanced
sample, ``--per-class``; selection and test splits whole) and fits, on the train photos of both
detectors together, class-balanced logistic regressions (``class_weight="balanced"``, scikit-learn)
that map the frame models' log-probabilities straight to the three classes (a 3-class head)
instead of the 7 -> 3 mapping of the top emotion:

- ``head(fer)``, ``head(pixels)``, ``head(pixels_flip)``: one model's seven log-probabilities;
- ``stack(fer+pixels)``, ``stack(fer+pixels_flip)``: both models' fourteen;
- ``prior(...)``: the 7 -> 3 sums of probabilities with three fitted class weights only.

The regularisation C of each is chosen on the selection split (macro-F1), then every row is
scored once on the selection and test splits, per detector, beside the unfitted models.

    python bench/real_stack.py --out bench/results/real_stack.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_photos as rph  # noqa: E402

from videmo import schema  # noqa: E402

CS = (0.01, 0.1, 1.0, 10.0)
FEATURES = {
    "head(fer)": ("fer",),
    "head(pixels)": ("pixels",),
    "head(pixels_flip)": ("pixels_flip",),
    "stack(fer+pixels)": ("fer", "pixels"),
    "stack(fer+pixels_flip)": ("fer", "pixels_flip"),
    "prior(fer)": ("fer",),
    "prior(pixels_flip)": ("pixels_flip",),
}
CLASS_OF = np.asarray([schema.STUDY_MAPPING[e] for e in schema.EMOTIONS])


def load(cache: Path, split: str, detectors: list[str]) -> pd.DataFrame:
    parts = []
    for d in detectors:
        df = pd.read_parquet(rph.cached(cache, split, d)).dropna(subset=["fer.happy"])
        parts.append(df.assign(detector=d))
    return pd.concat(parts, ignore_index=True)


def features(df: pd.DataFrame, models: tuple[str, ...], prior: bool) -> np.ndarray:
    if prior:  # the three class sums of the 7 -> 3 mapping, as log-probabilities
        p = rph.probabilities(df, models[0])
        sums = np.stack([p[:, CLASS_OF == c].sum(1) for c in schema.CLASSES], 1)
        return np.log(np.clip(sums, 1e-6, 1))
    return np.hstack([np.log(np.clip(rph.probabilities(df, m), 1e-6, 1)) for m in models])


def fit(name: str, train: pd.DataFrame, c: float):
    from sklearn.linear_model import LogisticRegression

    prior = name.startswith("prior")
    x = features(train, FEATURES[name], prior)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit(x, train["label"].to_numpy())
    return model


def predict(name: str, model, df: pd.DataFrame) -> np.ndarray:
    return model.predict(features(df, FEATURES[name], name.startswith("prior")))


def fer2013(root: Path, cache: Path) -> pd.DataFrame:
    """fer (the image as the face, fer's 64x64 preprocessing, as MODELS.md scores it), the
    pixel model and its flip on FER2013 PrivateTest (emotion folders of ``root``), cached."""
    from videmo.train.data import ORIGINAL

    out = cache / "fer2013-private.parquet"
    if out.is_file():  # the original 3,589 only: the copy's augmented extras are skipped
        df = pd.read_parquet(out)
        return df[[bool(ORIGINAL.match(i)) for i in df["image"]]].reset_index(drop=True)
    import cv2

    from videmo.extract.features.pixel_model import PixelModel
    from videmo.train.pixel_run import fer_probabilities

    paths = sorted(root.glob("*/*/PrivateTest_*.jpg"))
    x = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])
    emotion = [p.parent.name for p in paths]
    pixels = PixelModel.load(1)
    p_pix = pixels.predict(x)
    p_flip = (p_pix + pixels.predict(x[:, :, ::-1])) / 2
    df = pd.DataFrame({"image": [p.name for p in paths],
                       "label": [schema.STUDY_MAPPING[e] for e in emotion]})
    for name, p in (("fer", fer_probabilities(x)), ("pixels", p_pix), ("pixels_flip", p_flip)):
        for j, e in enumerate(schema.EMOTIONS):
            df[f"{name}.{e}"] = p[:, j]
    df.to_parquet(out)
    return fer2013(root, cache)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detectors", nargs="+", default=["haar", "mediapipe"])
    ap.add_argument("--cache", type=Path, default=rph.CACHE)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--fer2013", type=Path, default=None,
                    help="FER2013 as emotion folders: also score its PrivateTest")
    args = ap.parse_args(argv)
    train = load(args.cache, "train", args.detectors)
    sel = load(args.cache, "selection", args.detectors)
    test = load(args.cache, "test", args.detectors)
    n_all = {(s, d): len(pd.read_parquet(rph.cached(args.cache, s, d)))
             for s in ("selection", "test") for d in args.detectors}
    rows: dict = {}
    chosen = {}
    for name in FEATURES:
        best = None
        for c in CS:
            model = fit(name, train, c)
            m = rph.metrics(sel["label"].to_numpy(), predict(name, model, sel), len(sel))
            if best is None or m["macro_f1"] > best[0]:
                best = (m["macro_f1"], c, model)
        chosen[name] = {"C": best[1]}
        for split, df in (("selection", sel), ("test", test)):
            for d in args.detectors:
                part = df[df["detector"] == d]
                rows.setdefault(split, {}).setdefault(d, {})[name] = rph.metrics(
                    part["label"].to_numpy(), predict(name, best[2], part), n_all[(split, d)])
    for split, df in (("selection", sel), ("test", test)):
        for d in args.detectors:
            part = df[df["detector"] == d]
            for m in rph.MODELS:
                rows[split][d][m] = rph.metrics(part["label"].to_numpy(),
                                                rph.top_class(rph.probabilities(part, m)),
                                                n_all[(split, d)])
    if args.fer2013:
        fer = fer2013(args.fer2013, args.cache)
        y = fer["label"].to_numpy()
        private = rows.setdefault("fer2013_private", {}).setdefault("image", {})
        for m in rph.MODELS:
            private[m] = rph.metrics(y, rph.top_class(rph.probabilities(fer, m)), len(fer))
        for name in FEATURES:
            model = fit(name, train, chosen[name]["C"])
            private[name] = rph.metrics(y, predict(name, model, fer), len(fer))
    command = "python bench/real_stack.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {**rph.header(command), "train_photos": int(len(train)), "chosen": chosen,
              "metrics": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    for split in rows:
        for d in rows[split]:
            for name, m in rows[split][d].items():
                r = m["recall"]
                print(f"{split:9s} {d:9s} {name:24s} acc {m['accuracy']:.3f} "
                      f"F1 {m['macro_f1']:.3f} rec pos {r['positive']:.2f} "
                      f"neg {r['negative']:.2f} neu {r['neutral']:.2f} n {m['n']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
