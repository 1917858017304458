"""Build ``models/pixels_real.tflite``: the pixel networks with a last layer fitted on real photos.

The shipped pixel model's three networks (``models/pixels.tflite``, trained on FER2013) are
kept as they are; their three last layers are replaced by one class-balanced 7-emotion
logistic layer on their pooled vectors (3 x 256 values), fitted on

- the real-photo **train** split of muxspace/facial_expressions (``data/splits/``: evaluation
  identities dropped, split by person; the class-balanced sample of ``bench/real_photos.py
  score --splits train --per-class 700``), each photo's face cropped **as at run time** by
  every detector in ``--detectors`` (their cached boxes; the detector's framing -> grey 48x48;
  contempt photos left out: no column), and
- ``--fer2013-per-class`` FER2013 Training images of each emotion (the image whole),

C chosen among ``--cs`` by the 3-class macro-F1 on the **selection** split (all detectors'
faces together). The pooled vectors are read from the edited file itself with LiteRT's
default kernels (:func:`videmo.train.tflite_head.with_outputs`), then the standardisation is
folded into the layer and the layer appended to the graph
(:func:`~videmo.train.tflite_head.with_dense_head`): one TFLite file, seven probabilities, no
TensorFlow at run time.

Then the written file is scored through videmo's own pixel-model code (``PixelModel``), with
and without ``emotions.flip``, on the selection and test splits per detector (beside fer on
the same faces, paired bootstrap interval) and on FER2013 PrivateTest; the card
(``models/pixels_real.json``) and ``bench/results/pixels_real.json`` get the numbers.

Prerequisites (outside the repository: photos and per-photo boxes are never committed)::

    python bench/real_photos.py score /tmp/realfaces --splits train --per-class 700 \\
        --detectors haar mediapipe mtcnn
    python bench/real_photos.py score /tmp/realfaces --splits selection test \\
        --detectors haar mediapipe mtcnn
    python scripts/train_pixels_real.py /tmp/realfaces --fer2013 /tmp/fer2013

Needs TensorFlow (a dependency of videmo, for ``videmo train``) to edit the flatbuffer; the
file it writes runs on ai-edge-litert alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import real_photos as rph  # noqa: E402

from videmo import schema  # noqa: E402
from videmo.extract.crop import face_crop  # noqa: E402
from videmo.extract.features.pixel_model import PixelModel, framing_for  # noqa: E402
from videmo.extract.images import to_grey  # noqa: E402
from videmo.models import PIXEL_MODEL, model_path  # noqa: E402
from videmo.train import real_photos as rp  # noqa: E402
from videmo.train import tflite_head as th  # noqa: E402
from videmo.train.data import folder_sample  # noqa: E402

POOLED = "global_average_pooling2d"
OUT = REPO / "src" / "videmo" / "models"


def pooled_tensors(model_bytes: bytes) -> list[int]:
    """The three networks' global-average-pooling outputs, in network order."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes)
    found = sorted((d["name"], d["index"]) for d in it.get_tensor_details() if POOLED in d["name"])
    return [i for _, i in found]


def features_of(model_bytes: bytes) -> th.BatchedOutputs:
    """The dequantised outputs of 48x48 grey crops through ``model_bytes`` (LiteRT's default
    XNNPACK kernels, as at run time), concatenated per crop."""
    from ai_edge_litert.interpreter import Interpreter

    return th.BatchedOutputs(Interpreter(model_content=model_bytes, num_threads=2))


def real_crops(root: Path, split: str, detector: str, cache: Path) -> tuple[pd.DataFrame,
                                                                             np.ndarray, int]:
    """The photos of ``split`` where ``detector`` found a face, their crops as at run time
    (BGR photo -> grey -> the detector's framing), and the split's photo count."""
    path = rph.cached(cache, split, detector)
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run bench/real_photos.py score --splits {split} "
                         f"--detectors {detector} first")
    every = pd.read_parquet(path)
    df = every.dropna(subset=["fer.happy"]).reset_index(drop=True)
    framing = framing_for(detector)
    crops = []
    for r in df.itertuples():
        frame = cv2.imread(str(root / "images" / r.image), cv2.IMREAD_COLOR)
        crops.append(face_crop(to_grey(frame), (r.x, r.y, r.w, r.h), framing))
    return df.assign(detector=detector), np.stack(crops), len(every)


def to_class(labels: np.ndarray) -> np.ndarray:
    return np.array([schema.STUDY_MAPPING.get(v, v) for v in labels])


def fit_head(x: np.ndarray, y: np.ndarray, sel_x: np.ndarray, sel_y: np.ndarray,
             cs: list[float]) -> tuple[dict, list[dict]]:
    """Class-balanced 7-emotion logistic regression on standardised features; C by the
    selection split's 3-class macro-F1. Returns the chosen fit and every C's score."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    z, sel_z = scaler.transform(x), scaler.transform(sel_x)
    tried, best = [], None
    for c in cs:
        t0 = time.time()
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(z, y)
        pred = to_class(lr.predict(sel_z))
        f1 = f1_score(sel_y, pred, labels=list(schema.CLASSES), average="macro")
        acc = float(np.mean(pred == sel_y))
        tried.append({"C": c, "selection_macro_f1": round(float(f1), 4),
                      "selection_accuracy": round(acc, 4), "seconds": round(time.time() - t0)})
        print(f"C {c}: selection F1 {f1:.4f} acc {acc:.4f}", flush=True)
        if best is None or f1 > best[0]:
            best = (f1, c, lr)
    _, c, lr = best
    order = [list(lr.classes_).index(e) for e in schema.EMOTIONS]
    w, b = th.fold_standardisation(lr.coef_[order], lr.intercept_[order], scaler.mean_,
                                   scaler.scale_)
    return {"C": c, "weights": w, "bias": b}, tried


def evaluate(path: Path, card: dict, data: dict, fer_private: tuple) -> dict:
    """The written file through PixelModel (no flip, flip) per split and detector, + FER2013."""
    out: dict = {}
    for flip in (False, True):
        model = PixelModel(path, card, threads=2, flip=flip)
        name = "pixels_real_flip" if flip else "pixels_real"
        for split in ("selection", "test"):
            for df, crops, n_all in data[split]:
                d = df["detector"].iloc[0]
                y = df["label"].to_numpy()
                pred = rph.top_class(model.predict(crops))
                fer = rph.top_class(rph.probabilities(df, "fer"))
                pix = rph.top_class(rph.probabilities(df, "pixels"))
                row = out.setdefault(split, {}).setdefault(d, {})
                row.setdefault("fer", rph.metrics(y, fer, n_all))
                row.setdefault("pixels", rph.metrics(y, pix, n_all))
                row[name] = rph.metrics(y, pred, n_all)
                row[name]["minus_fer_95"] = rph.paired_interval(y, pred, fer)
        x, e = fer_private
        out.setdefault("fer2013_private", {}).setdefault("image", {})[name] = rph.metrics(
            to_class(e), rph.top_class(model.predict(x)), len(e))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="facial_expressions (images/, data/legend.csv)")
    ap.add_argument("--fer2013", type=Path, required=True, help="FER2013 as emotion folders")
    ap.add_argument("--fer2013-per-class", type=int, default=400)
    ap.add_argument("--detectors", nargs="+", default=["haar", "mediapipe", "mtcnn"])
    ap.add_argument("--cs", type=float, nargs="+", default=[0.003, 0.01, 0.03, 0.1])
    ap.add_argument("--cache", type=Path, default=rph.CACHE)
    ap.add_argument("--out", type=Path, default=OUT, help="folder for pixels_real.tflite/.json")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results" /
                    "pixels_real.json")
    args = ap.parse_args(argv)
    command = "python scripts/train_pixels_real.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    src = model_path(PIXEL_MODEL).read_bytes()
    pooled = pooled_tensors(src)
    features = features_of(th.with_outputs(src, pooled))
    data = {s: [real_crops(args.root, s, d, args.cache) for d in args.detectors]
            for s in ("train", "selection", "test")}
    emotion = {r["image"]: rp.EMOTION_OF_LABEL[r["emotion"]]
               for r in rp.load_legend(args.root / "data" / "legend.csv")}
    x_real = np.vstack([features(c) for _, c, _ in data["train"]])
    e_real = np.array([emotion[i] or "" for df, _, _ in data["train"] for i in df["image"]])
    has = e_real != ""
    x_fer, e_fer = folder_sample(args.fer2013, "Training", args.fer2013_per_class)
    x = np.vstack([x_real[has], features(x_fer)])
    y = np.concatenate([e_real[has], e_fer])
    sel_x = np.vstack([features(c) for _, c, _ in data["selection"]])
    sel_y = np.concatenate([df["label"].to_numpy() for df, _, _ in data["selection"]])
    print(f"fitting on {len(y)} faces ({int(has.sum())} real, {len(e_fer)} FER2013)", flush=True)
    head, tried = fit_head(x, y, sel_x, sel_y, args.cs)
    model_bytes = th.with_dense_head(src, pooled, head["weights"], head["bias"])
    # the file computes what the fitted layer does on the features it was fitted on
    sample = np.concatenate([crops[:32] for _, crops, _ in data["selection"]])
    check = features_of(model_bytes)(sample)
    expected = th.dense_softmax(features(sample), head["weights"], head["bias"])
    gap = float(np.abs(check - expected).max())
    if gap > 1e-4:
        raise SystemExit(f"the edited file differs from the fitted layer by {gap}")
    tflite = args.out / "pixels_real.tflite"
    tflite.write_bytes(model_bytes)
    base = json.loads(model_path("pixels.json").read_text())
    card = {
        "name": "pixels_real", "kind": "pixels", "emotions": list(schema.EMOTIONS),
        "input": base["input"],
        "crop": "videmo.extract.crop.face_crop: the run's detector's box framed by "
                "models/face_framing.json -> grey 48x48 (FER2013 images whole)",
        "network": "the three networks of pixels.tflite (weights unchanged, int8) up to their "
                   "global average pooling (3 x 256), then one float dense softmax layer over "
                   "the 768 values (standardisation folded in)",
        "head": {"fit": "scikit-learn LogisticRegression, class_weight balanced, lbfgs, "
                        "7 emotions; C by 3-class macro-F1 on the selection split",
                 "C": head["C"], "tried": tried,
                 "fitted_faces": {"real_photos": int(has.sum()), "fer2013": int(len(e_fer))},
                 "detectors": args.detectors},
        "data": {"real_photos": "muxspace/facial_expressions (Apache-2.0), person-held-out "
                                "splits data/splits/facial_expressions/, evaluation identities "
                                "dropped (MODELS.md)",
                 "fer2013": f"FER2013 Training, {args.fer2013_per_class} images of each emotion "
                            "(seed 0)"},
        "base_model": {"file": PIXEL_MODEL,
                       "sha256": hashlib.sha256(src).hexdigest()},
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - t0),
    }
    x_priv, e_priv = folder_sample(args.fer2013, "PrivateTest")
    card["metrics"] = evaluate(tflite, card, data, (x_priv, e_priv))
    (args.out / "pixels_real.json").write_text(json.dumps(card, indent=1) + "\n")
    args.results.write_text(json.dumps({**rph.header(command), "metrics": card["metrics"],
                                        "head": card["head"]}, indent=1) + "\n")
    for split, by_d in card["metrics"].items():
        for d, models in by_d.items():
            for name, m in models.items():
                r = m["recall"]
                print(f"{split:15s} {d:9s} {name:18s} acc {m['accuracy']:.3f} F1 "
                      f"{m['macro_f1']:.3f} rec pos {r['positive']:.2f} neg {r['negative']:.2f}"
                      f" neu {r['neutral']:.2f} n {m['n']} found {m['found']:.3f}")
    print(f"wrote {tflite} ({len(model_bytes)} bytes) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
