"""A new last layer for the pixel model, fitted on real photos (+ FER2013): the CPU-sized fine-tune.

The shipped pixel model averages three networks; each ends in global average pooling (256
values) and one dense softmax layer. This reads the three pooled vectors (768 values, from the
shipped int8 TFLite file's own tensors) of each face cropped as at run time (the cached boxes of
``bench/real_photos.py score``, the detector's framing) and fits a new class-balanced 3-class
last layer (logistic regression on the standardised vectors, C chosen on the selection split):

- ``head(real)``: on the real-photo train split (the class-balanced sample, both detectors);
- ``head(real+fer2013)``: the same plus ``--fer2013-per-class`` FER2013 Training images of each
  emotion (joint training; the 7 emotions mapped to the 3 classes);
- ``head7(real+fer2013)``: the same photos, a 7-emotion last layer (what a frame model's seven
  columns need; contempt photos left out), scored through the 7 -> 3 mapping of its top emotion.

Scored on the selection and test splits per detector (with the 95% paired bootstrap interval of
the accuracy minus fer's on the same faces) and on FER2013 PrivateTest. The pooled
vectors are cached outside the repository (``--cache``): they are per-image features.

    python bench/real_head.py /tmp/realfaces --fer2013 /tmp/fer2013 \\
        --out bench/results/real_head.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_photos as rph  # noqa: E402

from videmo import schema  # noqa: E402
from videmo.train import real_photos as rp  # noqa: E402

CS = (0.001, 0.01, 0.1, 1.0)
POOLED = "global_average_pooling2d"


def pooled_reader():
    """The shipped pixel model's three pooled vectors per crop (dequantised), 768 values, read
    from the int8 file's own tensors on LiteRT's reference kernels (XNNPACK would not keep the
    intermediate tensors): a debugging path; scripts/train_pixels_real.py reads them from a
    pruned file on the run-time kernels instead."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from videmo.models import PIXEL_MODEL, model_path
    from videmo.train.tflite_head import BatchedOutputs

    it = Interpreter(model_path=str(model_path(PIXEL_MODEL)), num_threads=1,
                     experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType
                     .BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    pooled = sorted((d for d in it.get_tensor_details() if POOLED in d["name"]),
                    key=lambda d: d["name"])
    return BatchedOutputs(it, pooled)


def real_features(root: Path, split: str, detector: str, cache: Path, pooled
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    path = cache / f"pooled-{split}-{detector}.npz"
    df = pd.read_parquet(rph.cached(cache, split, detector)).dropna(subset=["fer.happy"])
    df = df.reset_index(drop=True)
    if not path.is_file():
        from videmo.extract.crop import face_crop
        from videmo.extract.features.pixel_model import framing_for

        f = framing_for(detector)
        crops = np.stack([face_crop(cv2.imread(str(root / "images" / r.image),
                                               cv2.IMREAD_GRAYSCALE), (r.x, r.y, r.w, r.h), f)
                          for r in df.itertuples()])
        np.savez(path, x=pooled(crops))
    return df.assign(detector=detector), np.load(path)["x"]


def fer2013_features(root: Path, split: str, per_class: int | None, cache: Path,
                     pooled) -> tuple[np.ndarray, np.ndarray]:
    from videmo.train.data import folder_sample

    path = cache / f"pooled-fer2013-{split}-{per_class}.npz"
    x, emotions = folder_sample(root, split, per_class)
    if not path.is_file():
        np.savez(path, x=pooled(x))
    return np.load(path)["x"], emotions


def to_class(labels: np.ndarray) -> np.ndarray:
    """Emotions -> the study's three classes; class labels stay as they are."""
    return np.array([schema.STUDY_MAPPING.get(v, v) for v in labels])


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="facial_expressions (images/, data/legend.csv)")
    ap.add_argument("--fer2013", type=Path, required=True, help="FER2013 as emotion folders")
    ap.add_argument("--fer2013-per-class", type=int, default=400)
    ap.add_argument("--detectors", nargs="+", default=["haar", "mediapipe"])
    ap.add_argument("--cache", type=Path, default=rph.CACHE)
    ap.add_argument("--single", action="store_true",
                    help="also fit the 7-emotion layer on each network's 256 values alone")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    pooled = pooled_reader()
    data = {s: [real_features(args.root, s, d, args.cache, pooled) for d in args.detectors]
            for s in ("train", "selection", "test")}
    x_real = np.vstack([x for _, x in data["train"]])
    y_real = np.concatenate([df["label"].to_numpy() for df, _ in data["train"]])
    x_fer, e_fer = fer2013_features(args.fer2013, "Training", args.fer2013_per_class,
                                    args.cache, pooled)
    x_priv, e_priv = fer2013_features(args.fer2013, "PrivateTest", None, args.cache, pooled)
    y_fer, y_priv = to_class(e_fer), to_class(e_priv)
    # the real photos' emotions (contempt has no column: left out of the 7-emotion fit)
    emotion = {r["image"]: rp.EMOTION_OF_LABEL[r["emotion"]]
               for r in rp.load_legend(args.root / "data" / "legend.csv")}
    e_real = np.array([emotion[i] or "" for df, _ in data["train"] for i in df["image"]])
    has = e_real != ""
    fits = {"head(real)": (x_real, y_real),
            "head(real+fer2013)": (np.vstack([x_real, x_fer]), np.concatenate([y_real, y_fer])),
            "head7(real+fer2013)": (np.vstack([x_real[has], x_fer]),
                                    np.concatenate([e_real[has], e_fer]))}
    # one network alone (its 256 pooled values): what a single network at fer's cost could
    # read with the same last layer (issue 32, item 4)
    cols = {name: slice(None) for name in fits}
    for k in range(3) if args.single else ():
        fits[f"head7 net {k} alone"] = fits["head7(real+fer2013)"]
        cols[f"head7 net {k} alone"] = slice(256 * k, 256 * (k + 1))
    rows: dict = {}
    chosen = {}
    sel_x = np.vstack([x for _, x in data["selection"]])
    sel_y = np.concatenate([df["label"].to_numpy() for df, _ in data["selection"]])
    for name, (x, y) in fits.items():
        best = None
        c_ = cols[name]
        for c in CS:
            model = make_pipeline(StandardScaler(), LogisticRegression(
                C=c, class_weight="balanced", max_iter=3000)).fit(x[:, c_], y)
            f1 = rph.metrics(sel_y, to_class(model.predict(sel_x[:, c_])), len(sel_y))[
                "macro_f1"]
            if best is None or f1 > best[0]:
                best = (f1, c, model)
        chosen[name] = {"C": best[1], "fitted": int(len(y))}
        for split in ("selection", "test"):
            for df, x_s in data[split]:
                d = df["detector"].iloc[0]
                n_all = len(pd.read_parquet(rph.cached(args.cache, split, d)))
                y_s, pred = df["label"].to_numpy(), to_class(best[2].predict(x_s[:, c_]))
                m = rows.setdefault(split, {}).setdefault(d, {})[name] = rph.metrics(
                    y_s, pred, n_all)
                fer = rph.top_class(rph.probabilities(df, "fer"))
                m["minus_fer_95"] = rph.paired_interval(y_s, pred, fer)
        rows.setdefault("fer2013_private", {}).setdefault("image", {})[name] = rph.metrics(
            y_priv, to_class(best[2].predict(x_priv[:, c_])), len(y_priv))
    command = "python bench/real_head.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {**rph.header(command), "chosen": chosen, "metrics": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    for split in rows:
        for d in rows[split]:
            for name, m in rows[split][d].items():
                r = m["recall"]
                print(f"{split:15s} {d:9s} {name:20s} acc {m['accuracy']:.3f} "
                      f"F1 {m['macro_f1']:.3f} rec pos {r['positive']:.2f} "
                      f"neg {r['negative']:.2f} neu {r['neutral']:.2f} n {m['n']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
