"""The pixel models' part of ``videmo train``: crops -> network -> TFLite -> PrivateTest rows.

For each pixel model of ``train.models`` (:data:`videmo.train.pixels.PIXEL_MODELS`):

1. the FER2013 images through the crop step (:func:`videmo.train.pixels.read_crops`, cached);
2. training, resumable per epoch (:func:`videmo.train.pixels.fit`), the epoch kept by the
   selection split's accuracy (PublicTest when the data has it, else the fixed 10% of Training);
3. export to TFLite twice, with float16 weights and full integer (int8, calibrated on
   :data:`CALIBRATION_IMAGES` Training crops drawn by the seed); from here on everything is
   measured on the exported files as videmo runs them
   (:class:`videmo.extract.features.pixel_model.PixelModel`, LiteRT); the int8 file is the one
   shipped (its rows are the model's rows; float16 is a row of its own);
4. PrivateTest scored once per row: the model, the model with test-time flipping, fer's
   mini-Xception on the same images (its own preprocessing: the image as the face, 64x64), their
   mean, and a logistic stacker on both models' log-probabilities fitted on the selection split.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from videmo import schema
from videmo.models import sha256_of
from videmo.store import write_text_atomic
from videmo.store.files import atomic_path
from videmo.train import data, models, pixels

CALIBRATION_IMAGES = 300
RECIPE_NOTE = ("VGG-style: 4 stages of two 3x3 conv + batch norm + ReLU, max pooling, global "
               "average pooling, dropout, softmax; SGD Nesterov momentum 0.9, weight decay 5e-4, "
               "cosine learning rate after a 2-epoch warm-up to 0.05, label smoothing 0.1; "
               "augmentation per image: random zoom 1-1.25x, shift up to 10%, rotation up to 10 "
               "degrees, horizontal flip (p 0.5), random erasing (p 0.5, 2-25% of the area)")


def export_tflite(network, path: Path, representative: np.ndarray | None = None) -> None:
    """The Keras network as a TFLite file with a resizable batch: float16 weights, or, given
    ``representative`` uint8 crops (n, 48, 48) to calibrate on, full integer (int8 weights and
    activations; float input and output), which XNNPACK runs about 4x faster on one core."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        network.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if representative is None:
            converter.target_spec.supported_types = [tf.float16]
        else:
            converter.representative_dataset = lambda: (
                [r[None, :, :, None].astype(np.float32)] for r in representative)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        blob = converter.convert()
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)


def fer_probabilities(x: np.ndarray) -> np.ndarray:
    """fer's mini-Xception (the shipped tflite, LiteRT) on 48x48 grey faces taken whole, with
    fer's own preprocessing of a face crop (resize to 64x64, scale to [-1, 1])."""
    import cv2

    from videmo.extract.features.emotions import INPUT_SIZE, TfliteModel, scale_input

    model = TfliteModel(1)
    out = np.zeros((len(x), len(schema.EMOTIONS)), np.float32)
    for start in range(0, len(x), 256):
        batch = np.stack([cv2.resize(img, INPUT_SIZE) for img in x[start:start + 256]])
        out[start:start + 256] = model.predict(scale_input(batch))
    return out


def _stacker(train_p: list[np.ndarray], y: np.ndarray, seed: int):
    from sklearn.linear_model import LogisticRegression

    x = np.log(np.clip(np.concatenate(train_p, 1), 1e-6, 1.0))
    return LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, y)


def _stack_predict(est, probs: list[np.ndarray]) -> np.ndarray:
    x = np.log(np.clip(np.concatenate(probs, 1), 1e-6, 1.0))
    out = np.zeros((len(x), len(schema.EMOTIONS)), np.float32)
    out[:, est.classes_] = est.predict_proba(x)
    return out


def _networks(cfg, name: str, recipe, seeds: list[int], split, out: Path, machine: str,
              progress: bool) -> tuple[list, list[dict[str, Any]]]:
    """One Keras network per seed, imported (``train.import_weights``) or trained here, and
    each one's record for the card."""
    t = cfg.train
    x_fit, y_fit, x_sel, y_sel = split
    networks, members = [], []
    for seed in seeds:
        if t.import_weights:
            network, meta = pixels.import_weights(name, recipe, cfg.resolve(t.import_weights),
                                                  seed)
            if (meta["n_train"], meta["n_selection"]) != (len(y_fit), len(y_sel)):
                raise data.DataError(
                    f"{name}-s{seed} was trained on {meta['n_train']} images (selection "
                    f"{meta['n_selection']}), this data has {len(y_fit)} ({len(y_sel)})")
            members.append({
                "seed": seed, "epochs": meta["epochs"], "best_epoch": meta["best_epoch"],
                "train_seconds": meta["train_seconds"], "recipe": meta["recipe"],
                "trained_on": f"{meta['device']}, PyTorch {meta['torch']} "
                              f"(scripts/train_pixels_gpu.py), bf16 autocast",
                "import_check_max_abs_diff": meta["import_check_max_abs_diff"],
                "history": meta["history"]})
        else:
            tag = name if len(seeds) == 1 else f"{name}-s{seed}"
            fitted = pixels.fit(name, x_fit, y_fit, x_sel, y_sel, recipe, seed, out, progress,
                                tag=tag)
            network = fitted.network
            members.append({
                "seed": seed, "epochs": recipe.epochs, "best_epoch": fitted.epochs,
                "train_seconds": round(fitted.seconds, 1), "recipe": recipe.__dict__,
                "trained_on": f"{machine}, TensorFlow (videmo train)",
                "history": fitted.history})
        networks.append(network)
    return networks, members


def train_pixel_models(cfg, images: data.ImageSet, out: Path, results: dict[str, Any],
                       progress: bool = True) -> None:
    """Train, export and score every pixel model of ``cfg.train.models`` into ``results``."""
    from videmo.extract.features.pixel_model import PixelModel

    t = cfg.train
    crops = pixels.read_crops(images, cfg.resolve(t.cache), progress)
    x_fit, y_fit = crops[data.TRAINING]
    if data.PUBLIC in crops:
        x_sel, y_sel = crops[data.PUBLIC]
        selection = "PublicTest"
    else:
        mask = data.holdout(y_fit, t.seed)
        x_fit, y_fit, x_sel, y_sel = x_fit[~mask], y_fit[~mask], x_fit[mask], y_fit[mask]
        selection = (f"{int(data.HOLDOUT_SHARE * 100)}% of each class of Training "
                     f"(numpy default_rng({t.seed}), no PublicTest in the data)")
    x_test, y_test = crops[data.PRIVATE]
    ok_test, ok_sel = np.ones(len(y_test), bool), np.ones(len(y_sel), bool)
    fer_test, fer_sel = fer_probabilities(x_test), fer_probabilities(x_sel)
    results["models"]["fer (mini-Xception, fer 25.10.3 tflite)"] = {
        "kind": "pixels 64x64 (fer)", "epochs": None, "train_seconds": None,
        "selection": models.evaluate(fer_sel, ok_sel, y_sel),
        "private_test": models.evaluate(fer_test, ok_test, y_test)}
    seeds = t.seeds or [t.seed]
    for name in [m for m in t.models if m in pixels.PIXEL_MODELS]:
        recipe = pixels.Recipe(epochs=t.epochs, batch_size=t.batch_size)
        networks, members = _networks(cfg, name, recipe, seeds, (x_fit, y_fit, x_sel, y_sel),
                                      out, results["machine"], progress)
        network = pixels.ensemble(name, networks)
        seconds = round(sum(m["train_seconds"] for m in members), 1)
        best_epochs = [m["best_epoch"] for m in members]
        tflite = out / "models" / f"{name}.tflite"
        f16 = out / "models" / f"{name}.float16.tflite"
        calib = x_fit[np.random.default_rng(t.seed).choice(len(x_fit), min(
            CALIBRATION_IMAGES, len(x_fit)), replace=False)]
        export_tflite(network, tflite, calib)
        export_tflite(network, f16)
        what = (f"the mean of {len(seeds)} networks (seeds {seeds}) in one file" if
                len(seeds) > 1 else f"one network (seed {seeds[0]})")
        card = {"name": name, "kind": "pixels", "emotions": list(schema.EMOTIONS),
                "input": "uint8-range grey face crop (n, 48, 48, 1), 0-255",
                "crop": "videmo.extract.crop.face_crop: FER2013 images whole (scale 1); at run "
                        "time the detector's box framed by models/face_framing.json",
                "network": f"{name}: {pixels.WIDTHS[name]} filters, {what}; {RECIPE_NOTE}",
                "recipe": members[0]["recipe"], "seeds": seeds,
                "epochs": best_epochs[0] if len(seeds) == 1 else best_epochs,
                "train_seconds": seconds, "date": results["date"],
                "commit": results["commit"], "command": results["command"],
                "trained_on": sorted({m["trained_on"] for m in members}),
                "data": f"FER2013 (Training fitted: {len(y_fit)}, selection: {selection} "
                        f"({len(y_sel)}), PrivateTest reported ({len(y_test)}))",
                "quantization": f"full integer (int8), calibrated on {len(calib)} Training "
                                f"crops (numpy default_rng({t.seed}))",
                "tflite_sha256": sha256_of(tflite)}
        shipped = PixelModel(tflite, card, threads=1)
        flipped = PixelModel(tflite, card, threads=1, flip=True)
        half = PixelModel(f16, card, threads=1)
        rows = {}
        if len(networks) > 1:  # each member alone, exported and run as the shipped file is
            for seed, member in zip(seeds, networks, strict=True):
                path = out / "models" / "members" / f"{name}-s{seed}.tflite"
                export_tflite(member, path, calib)
                alone = PixelModel(path, card, threads=1)
                rows[f"{name} seed {seed}"] = (alone.predict(x_test), alone.predict(x_sel))
        rows |= {name: (shipped.predict(x_test), shipped.predict(x_sel)),
                f"{name} (float16)": (half.predict(x_test), half.predict(x_sel)),
                f"{name} + flip": (flipped.predict(x_test), flipped.predict(x_sel))}
        p_test, p_sel = rows[name]
        rows[f"{name} + fer (mean)"] = ((p_test + fer_test) / 2, (p_sel + fer_sel) / 2)
        # the stacker is fitted on the selection split; its selection row is in-sample
        stack = _stacker([p_sel, fer_sel], y_sel, t.seed)
        rows[f"{name} + fer (stacker)"] = (_stack_predict(stack, [p_test, fer_test]),
                                           _stack_predict(stack, [p_sel, fer_sel]))
        alone = {f"{name} seed {m['seed']}": m for m in members}
        for row, (pt, ps) in rows.items():
            m = alone.get(row)
            results["models"][row] = {
                "kind": "pixels 48x48", "epochs": m["best_epoch"] if m else card["epochs"],
                "train_seconds": m["train_seconds"] if m else seconds,
                "selection": models.evaluate(ps, ok_sel, y_sel),
                "private_test": models.evaluate(pt, ok_test, y_test)}
        pt = results["models"][name]["private_test"]
        card["private_test"] = {k: pt[k] for k in ("accuracy_7", "macro_f1_7", "accuracy_3",
                                                   "macro_f1_3", "recall_7", "confusion_7")}
        card["private_test_flip"] = {
            k: results["models"][f"{name} + flip"]["private_test"][k]
            for k in ("accuracy_7", "macro_f1_7", "accuracy_3", "macro_f1_3")}
        card["members"] = members
        write_text_atomic(out / "models" / f"{name}.json", json.dumps(card, indent=1))
        write_text_atomic(out / "results.json", json.dumps(results, indent=1))
