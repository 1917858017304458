"""``videmo train CONFIG``: still images -> face mesh features -> frame classifiers -> metrics.

1. Read the image set (``train.data``, ``train.format``) and count its splits; no PublicTest:
   the selection split is a fixed, stratified 10% of Training (:func:`data.holdout`, seed
   ``train.seed``), and the rest of Training is fitted.
2. Extract blendshapes and landmarks per image (:mod:`videmo.train.features`, cached).
3. Select blendshapes on the fitted images only: those above ``train.min_score`` in more than
   ``train.min_images`` images (the published rule, 0.4 and 100).
4. Train each of ``train.models`` with seed ``train.seed``, early-stopped on the selection
   split; then evaluate each once on PrivateTest: 7 classes and 3 (schema.STUDY_MAPPING).
5. Write OUT/results.json, OUT/results.md and OUT/models/<name>.keras + <name>.json (the card:
   features, preprocessing, numbers, seed, date, commit) for each Keras model.

Images without a mesh are left out of fitting and selection (counted) and count as wrong
predictions in the PrivateTest numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from videmo import __version__, schema
from videmo.config import Config, dump
from videmo.extract.features.frame_model import features as model_features
from videmo.models import FACE_LANDMARKER, model_hashes
from videmo.runtime import git_commit, import_tensorflow, package_version, quiet_native_logs
from videmo.store import write_text_atomic
from videmo.train import data, features, models, pixels


def select_blendshapes(blend: np.ndarray, min_score: float, min_images: int) -> list[str]:
    """Names (schema.BLENDSHAPES order) of the blendshapes above ``min_score`` in more than
    ``min_images`` of the rows of ``blend`` (n, 52)."""
    counts = (np.nan_to_num(blend, nan=0.0) > min_score).sum(0)
    return [n for n, c in zip(schema.BLENDSHAPES, counts, strict=True) if c > min_images]


def _limit(items: list[data.Item], limit: int | None) -> list[data.Item]:
    if limit is None or len(items) <= limit:
        return items
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in idx]


def _versions() -> dict[str, str]:

    return {"videmo": __version__, "python": platform.python_version(),
            "tensorflow": package_version("tensorflow"), "keras": package_version("keras"),
            "scikit-learn": package_version("scikit-learn"),
            "ai-edge-litert": package_version("ai-edge-litert"),
            "opencv": package_version("opencv-python-headless", "opencv-python")}


def train(cfg: Config, out_dir: Path | None = None, progress: bool = True,
          command: str = "") -> dict[str, Any]:
    """Run the whole training (see the module docstring); returns what results.json holds."""
    t = cfg.train
    if t.data is None:
        raise data.DataError("train.data: not set; give the FER2013 folder or fer2013.csv")
    out = out_dir or cfg.resolve(t.out)
    assert out is not None
    started = time.time()
    images = data.read(cfg.resolve(t.data), t.format)
    counts = images.counts()
    images.items = {s: _limit(v, t.limit) for s, v in images.items.items()}
    results: dict[str, Any] = {
        "data": images.source, "split_counts_found": counts, "skipped_files": images.skipped,
        "limit": t.limit, "seed": t.seed, "epochs_max": t.epochs, "batch_size": t.batch_size,
        "patience": t.patience, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, "
                   f"{len(__import__('os').sched_getaffinity(0))} CPUs",
        "versions": _versions(), "commit": git_commit(), "command": command, "models": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    if any(n != "blend_gboost" for n in t.models):  # the Keras networks
        with quiet_native_logs():  # TensorFlow's start-up chatter, with the thread budget
            import_tensorflow()
    if any(n not in pixels.PIXEL_MODELS for n in t.models):
        _train_mesh_models(cfg, images, out, results, progress)
    if any(n in pixels.PIXEL_MODELS for n in t.models):
        from videmo.train.pixel_run import train_pixel_models

        train_pixel_models(cfg, images, out, results, progress)
    results["seconds"] = round(time.time() - started, 1)
    write_text_atomic(out / "results.json", json.dumps(results, indent=1))
    write_text_atomic(out / "results.md", render(results))
    write_text_atomic(out / "config.yaml", dump(cfg))
    return results


def _train_mesh_models(cfg: Config, images: data.ImageSet, out: Path, results: dict[str, Any],
                       progress: bool) -> None:
    """Steps 2-4 of the module doc for the mesh models of ``train.models``, into ``results``."""
    t = cfg.train
    feats = features.extract(images, cfg.resolve(t.cache), t.upscale,
                             t.workers or features.default_workers(), progress)
    train_f = feats[data.TRAINING]
    if feats.get(data.PUBLIC) is not None and len(feats[data.PUBLIC].labels):
        fit_f, sel_f, selection = train_f, feats[data.PUBLIC], "PublicTest"
    else:
        mask = data.holdout(train_f.labels, t.seed)
        fit_f, sel_f = train_f.subset(~mask), train_f.subset(mask)
        selection = (f"{int(data.HOLDOUT_SHARE * 100)}% of each class of Training "
                     f"(numpy default_rng({t.seed}), no PublicTest in the data)")
    test_f = feats[data.PRIVATE]
    names = select_blendshapes(fit_f.blendshapes[fit_f.ok], t.min_score, t.min_images)
    if not names:
        raise data.DataError(f"no blendshape is above {t.min_score} in more than "
                             f"{t.min_images} training images; lower train.min_images")
    results.update({
        "selection_split": selection,
        "images": {"fit": int(len(fit_f.labels)), "select": int(len(sel_f.labels)),
                   "test": int(len(test_f.labels))},
        "no_mesh": {s: int((~f.ok).sum()) for s, f in feats.items()},
        "mesh_from": {s: {name: int((f.source == code).sum())
                          for code, name in features.SOURCES.items()}
                      for s, f in feats.items()},
        "preprocessing": f"48x48 grey -> {t.upscale}x{t.upscale} bicubic (cv2.INTER_CUBIC), "
                         f"grey copied to 3 channels; BlazeFace, else the whole image as the "
                         f"face box, else BlazeFace in a black border of a quarter side, "
                         f"else the central two thirds as the box",
        "blendshape_rule": f"> {t.min_score} in more than {t.min_images} fitted images",
        "blendshapes_kept": names, "n_blendshapes_kept": len(names),
        "mesh_model_sha256": model_hashes()[FACE_LANDMARKER],
    })
    for name in [m for m in t.models if m not in pixels.PIXEL_MODELS]:
        card = models.card_for(name, names)
        card["kind"] = models.KIND[name]
        x_fit = model_features(card, fit_f.blendshapes[fit_f.ok], fit_f.landmarks[fit_f.ok])
        x_sel = model_features(card, sel_f.blendshapes[sel_f.ok], sel_f.landmarks[sel_f.ok])
        x_test = model_features(card, test_f.blendshapes[test_f.ok], test_f.landmarks[test_f.ok])
        t0 = time.time()
        fitted = models.fit(name, x_fit, fit_f.labels[fit_f.ok].astype(int), x_sel,
                            sel_f.labels[sel_f.ok].astype(int), t.seed, t.epochs, t.batch_size,
                            t.patience, progress)
        seconds = time.time() - t0
        proba = np.zeros((len(test_f.labels), len(schema.EMOTIONS)), np.float32)
        proba[test_f.ok] = fitted.predict(x_test)
        sel_proba = np.zeros((len(sel_f.labels), len(schema.EMOTIONS)), np.float32)
        sel_proba[sel_f.ok] = fitted.predict(x_sel)
        entry = {"kind": models.KIND[name], "epochs": fitted.epochs,
                 "train_seconds": round(seconds, 1),
                 "selection": models.evaluate(sel_proba, sel_f.ok, sel_f.labels),
                 "private_test": models.evaluate(proba, test_f.ok, test_f.labels)}
        results["models"][name] = entry
        if fitted.network is not None:
            card.update({"name": name, "emotions": list(schema.EMOTIONS),
                         "upscale_in_training": t.upscale, "seed": t.seed,
                         "epochs": fitted.epochs, "date": results["date"],
                         "commit": results["commit"], "data": "FER2013 (Training fitted, "
                         f"selection: {selection}, PrivateTest reported)",
                         "private_test": {k: entry["private_test"][k] for k in (
                             "accuracy_7", "macro_f1_7", "accuracy_3", "macro_f1_3")}})
            (out / "models").mkdir(exist_ok=True)
            fitted.network.save(out / "models" / f"{name}.keras")
            write_text_atomic(out / "models" / f"{name}.json", json.dumps(card, indent=1))
        write_text_atomic(out / "results.json", json.dumps(results, indent=1))


def render(results: dict[str, Any]) -> str:
    """The side-by-side table of results.json as Markdown."""
    lines = ["| model | features | 7-class acc | 7-class macro-F1 | 3-class acc | "
             "3-class macro-F1 | selection acc (7) | epochs |",
             "|---|---|---|---|---|---|---|---|"]
    for name, e in results["models"].items():
        p, s = e["private_test"], e["selection"]
        epochs = e["epochs"]  # the epoch kept; one per seed for a mean of several networks
        epochs = "/".join(map(str, epochs)) if isinstance(epochs, list) else epochs
        lines.append(f"| {name} | {e['kind']} | {p['accuracy_7']:.1%} | {p['macro_f1_7']:.1%} | "
                     f"{p['accuracy_3']:.1%} | {p['macro_f1_3']:.1%} | {s['accuracy_7']:.1%} | "
                     f"{epochs} |")
    recall = ["", "PrivateTest recall per class (7):", "",
              "| model | " + " | ".join(schema.EMOTIONS) + " |",
              "|---|" + "---|" * len(schema.EMOTIONS)]
    for name, e in results["models"].items():
        r = e["private_test"]["recall_7"]
        recall.append(f"| {name} | " + " | ".join(f"{r[c]:.0%}" for c in schema.EMOTIONS) + " |")
    head = [f"Images: {results['images']}; no mesh: {results['no_mesh']}; "
            f"mesh from: {results['mesh_from']}.",
            f"Blendshapes kept ({results['blendshape_rule']}): {results['n_blendshapes_kept']}.",
            ""] if "no_mesh" in results else [f"Images: {results['split_counts_found']}.", ""]
    return "\n".join(head + lines + recall) + "\n"
