"""Build ``models/pixels_distilled.tflite``: one pixel network distilled from ``pixels_real``.

``pixels_real`` (the teacher) runs three ``pixel_vgg`` networks per face, about four times
fer's cost. The student is **one** of them (``--member``, default 2: the best single network
with a fitted last layer on the real-photo selection split, ``bench/results/real_head.json``)
with a fresh 7-way softmax layer, trained to reproduce the teacher's probabilities:

1. **Rebuild** the member as a float Keras network from ``models/pixels.tflite``'s int8
   weights (per-channel dequantised; batch normalisation is already folded into the
   convolutions there, so each layer is conv + bias + ReLU). Its pooled vector is compared
   with LiteRT's on real selection crops (the gap is printed and recorded in the card).
2. **Teacher targets**: ``pixels_real``'s probabilities, averaged with those of the mirrored
   crop, on every FER2013 Training image (whole) and every real-photo **train** face of every
   detector in ``--detectors`` (cropped as at run time from the cached boxes of
   ``bench/real_photos.py score``; all found faces, labels unused). Computed once and cached
   under ``--work`` (outside the repository: FER2013 has no open licence).
3. **Head**: the last layer starts as a multinomial logistic fit of the student's pooled
   vectors to the teacher's soft targets (a few hundred full-batch steps).
4. **Distillation**: the whole network trained on the soft targets (cross-entropy at
   temperature ``--temperature``, scaled by T^2) and, with ``--hard-weight a``, on FER2013's
   own labels too (loss: (1 - a) x the soft term + a x the labels' cross-entropy summed over
   the FER2013 faces of a batch and divided by the batch's size, real faces included: with
   ``--fer-fraction 0.5 --real-repeat 2`` FER2013 is 61% of a batch, so the labels' weight is
   about 0.31 at ``a`` 0.5; ``--balanced`` weights each emotion by 1 / its frequency, so
   disgust and the other rare ones count), Adam with a cosine learning rate, light
   augmentation (mirror; shift and scale by a small random affine warp), the real faces
   repeated ``--real-repeat`` times per epoch beside a ``--fer-fraction`` sample of FER2013.
   The whole state is checkpointed after every epoch under ``--work``; ``--resume``
   continues at the next epoch with the same data order and augmentation (both functions of
   the seed and the epoch).
5. **Selection**: the epoch kept is the best 3-class accuracy on the real **selection** split
   (MTCNN faces) plus FER2013 **PublicTest** (each epoch's float network; epoch 0 is the
   fitted head on the rebuilt network).
6. **Export**: int8 TFLite (float crop in, 7 probabilities out: the contract of ``pixels`` and
   ``pixels_real``, so ``PixelModel`` runs it unchanged), calibrated on ``--calibration``
   training crops; then scored through ``PixelModel`` beside ``pixels_real`` and fer exactly
   as ``scripts/train_pixels_real.py`` scores ``pixels_real`` (selection and test splits per
   detector, FER2013 PrivateTest, with and without ``emotions.flip``) plus FER2013
   PublicTest; the card and ``bench/results/pixels_distilled.json`` get the numbers.

Prerequisites as for ``scripts/train_pixels_real.py`` (the cached detector boxes of the
train, selection and test splits). Run it under ``nice`` on a shared machine::

    nice -n 19 python scripts/distil_pixels.py /tmp/realfaces --fer2013 /tmp/fer2013 \\
        --epochs 4 --fer-fraction 0.5 --lr 1e-4 --hard-weight 0.5 --balanced [--resume]

(the shipped model's command, MODELS.md "pixels_distilled").

Needs TensorFlow (a dependency of videmo); the written file runs on ai-edge-litert alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))
import real_photos as rph  # noqa: E402
import train_pixels_real as tpr  # noqa: E402

from videmo import schema  # noqa: E402
from videmo.extract.features.pixel_model import PixelModel  # noqa: E402
from videmo.models import PIXEL_MODEL, PIXELS_REAL, model_path  # noqa: E402
from videmo.train import tflite_head as th  # noqa: E402
from videmo.train.data import folder_sample  # noqa: E402

NAME = "pixels_distilled"
OUT = REPO / "src" / "videmo" / "models"
SIZE = 48


# ------------------------------------------------------------------------------ teacher data


def teacher_probabilities(crops: np.ndarray, batch: int = 256) -> np.ndarray:
    """``pixels_real`` with ``emotions.flip`` (mean of the crop and its mirror), 2 threads,
    ``batch`` crops a call (one call for all would hold every activation at once)."""
    model = PixelModel.load(threads=2, flip=True, name="pixels_real")
    return np.vstack([model.predict(crops[s:s + batch]) for s in range(0, len(crops), batch)])


def training_data(root: Path, fer2013: Path, detectors: list[str], cache: Path,
                  work: Path) -> dict[str, np.ndarray]:
    """Crops, teacher targets and source (0 FER2013, 1 real) of every training face; the
    selection crops (MTCNN and all detectors) and FER2013 PublicTest for epoch selection.
    Cached in ``work/data.npz``."""
    path = work / "data.npz"
    if path.is_file():
        with np.load(path) as z:
            return dict(z)
    t0 = time.time()
    x_fer, _ = folder_sample(fer2013, "Training")
    real = [tpr.real_crops(root, "train", d, cache) for d in detectors]
    x_real = np.concatenate([c for _, c, _ in real])
    sel = {d: tpr.real_crops(root, "selection", d, cache) for d in detectors}
    x_pub, e_pub = folder_sample(fer2013, "PublicTest")
    print(f"teacher on {len(x_fer)} FER2013 + {len(x_real)} real faces", flush=True)
    x = np.concatenate([x_fer, x_real]).astype(np.uint8)
    out = {"x": x, "p": teacher_probabilities(x).astype(np.float32),
           "source": np.r_[np.zeros(len(x_fer), np.int8), np.ones(len(x_real), np.int8)],
           "public_x": x_pub, "public_y": tpr.to_class(e_pub)}
    for d, (df, crops, _) in sel.items():
        out[f"sel_{d}_x"], out[f"sel_{d}_y"] = crops, df["label"].to_numpy().astype(str)
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / "data.tmp.npz"
    np.savez(tmp, **out)
    tmp.replace(path)
    print(f"teacher targets cached in {path} ({time.time() - t0:.0f} s)", flush=True)
    return out


def fer_labels(fer2013: Path, source: np.ndarray, work: Path) -> np.ndarray:
    """FER2013 Training's own emotion (index into schema.EMOTIONS) of every training face,
    -1 for the real photos (their labels are three classes, not seven); cached beside the
    data as ``work/fer_labels.npy``."""
    path = work / "fer_labels.npy"
    if path.is_file() and len(np.load(path)) != len(source):
        raise SystemExit(f"{path} does not match {work / 'data.npz'}: remove it")
    if not path.is_file():
        _, e = folder_sample(fer2013, "Training")
        y = np.full(len(source), -1, np.int32)
        y[source == 0] = [schema.EMOTIONS.index(v) for v in e]
        np.save(path, y)
    return np.load(path)


# --------------------------------------------------------------------------- the student


def member_weights(model_bytes: bytes, member: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel (3, 3, in, out), bias) of member ``member``'s eight convolutions, dequantised
    from the int8 file (per-channel scales; the bias at input scale x weight scale)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes)
    it.allocate_tensors()
    tensors = {d["index"]: d for d in it.get_tensor_details()}
    tag = f"pixel_vgg_s{member}_"
    out = []
    for op in it._get_ops_details():
        if op["op_name"] != "CONV_2D" or tag not in tensors[op["outputs"][0]]["name"]:
            continue
        w_d, b_d = tensors[op["inputs"][1]], tensors[op["inputs"][2]]
        w_q = w_d["quantization_parameters"]
        w = it.get_tensor(w_d["index"]).astype(np.float32) * w_q["scales"][:, None, None, None]
        b = it.get_tensor(b_d["index"]).astype(np.float32) * b_d["quantization_parameters"][
            "scales"]
        out.append((w.transpose(1, 2, 3, 0), b))
    if len(out) != 8:
        raise SystemExit(f"member {member}: {len(out)} convolutions found in {PIXEL_MODEL}, "
                         "expected 8")
    return out


def build_student(convs: list[tuple[np.ndarray, np.ndarray]]):
    """Float Keras network: 0-255 grey (48, 48, 1) -> (pooled 256, logits 7)."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 1), name="face")
    h = inputs
    for i, (w, b) in enumerate(convs):
        conv = layers.Conv2D(w.shape[-1], 3, padding="same", activation="relu", name=f"conv{i}")
        h = conv(h)
        conv.set_weights([w, b])
        if i % 2 == 1:
            h = layers.MaxPooling2D(2, name=f"pool{i // 2}")(h)
    pooled = layers.GlobalAveragePooling2D(name="pooled")(h)
    logits = layers.Dense(7, name="emotions")(pooled)
    return keras.Model(inputs, [pooled, logits], name="pixels_distilled")


def predict(model, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    pooled, logits = [], []
    for s in range(0, len(x), batch):
        p, z = model(x[s:s + batch, ..., None].astype(np.float32), training=False)
        pooled.append(p.numpy())
        logits.append(z.numpy())
    return np.vstack(pooled), np.vstack(logits)


def pooled_gap(model, src: bytes, member: int, crops: np.ndarray) -> dict:
    """The rebuilt network's pooled vector against LiteRT's (int8, XNNPACK) on ``crops``."""
    pooled = tpr.pooled_tensors(src)[member]
    ref = tpr.features_of(th.with_outputs(src, [pooled]))(crops)
    mine, _ = predict(model, crops)
    gap = np.abs(mine - ref)
    return {"crops": len(crops), "max_abs": round(float(gap.max()), 4),
            "mean_abs": round(float(gap.mean()), 5),
            "mean_abs_litert_value": round(float(np.abs(ref).mean()), 4),
            "correlation": round(float(np.corrcoef(mine.ravel(), ref.ravel())[0, 1]), 5)}


def fit_head(pooled: np.ndarray, targets: np.ndarray, steps: int = 400,
             l2: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic layer (256 -> 7) on soft targets, full-batch Adam in TensorFlow
    on standardised features, the standardisation folded back in: (kernel (256, 7), bias)."""
    import tensorflow as tf

    mean, scale = pooled.mean(0), pooled.std(0) + 1e-6
    z = tf.constant((pooled - mean) / scale, tf.float32)
    t = tf.constant(targets, tf.float32)
    w = tf.Variable(tf.zeros((pooled.shape[1], 7)))
    b = tf.Variable(tf.math.log(tf.reduce_mean(t, 0) + 1e-6))
    opt = tf.keras.optimizers.Adam(0.05)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(t, z @ w + b)) \
                + l2 * tf.reduce_sum(w * w)
        opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b], strict=True))
    kernel = w.numpy() / scale[:, None]
    return kernel.astype(np.float32), (b.numpy() - mean @ kernel).astype(np.float32)


# ------------------------------------------------------------------------------ training


def augment(x: np.ndarray, rng: np.random.Generator, shift: float, scale: float) -> np.ndarray:
    """Mirror half the crops; shift by up to ``shift`` of the side and scale by up to
    ``scale`` (one affine warp each, edges replicated)."""
    out = np.empty_like(x)
    flips = rng.random(len(x)) < 0.5
    s = 1 + rng.uniform(-scale, scale, len(x))
    d = rng.uniform(-shift, shift, (len(x), 2)) * SIZE
    c = (SIZE - 1) / 2
    for i in range(len(x)):
        m = np.array([[s[i], 0, c - s[i] * c + d[i, 0]], [0, s[i], c - s[i] * c + d[i, 1]]])
        img = x[i, :, ::-1] if flips[i] else x[i]
        out[i] = cv2.warpAffine(np.ascontiguousarray(img), m, (SIZE, SIZE),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def epoch_order(source: np.ndarray, real_repeat: int, fer_fraction: float,
                rng: np.random.Generator) -> np.ndarray:
    """One epoch's faces: a ``fer_fraction`` sample of FER2013, the real faces
    ``real_repeat`` times, shuffled."""
    fer = np.flatnonzero(source == 0)
    fer = rng.choice(fer, round(fer_fraction * len(fer)), replace=False)
    return rng.permutation(np.r_[fer, np.tile(np.flatnonzero(source == 1), real_repeat)])


def score_float(model, data: dict[str, np.ndarray], detectors: list[str]) -> dict:
    """3-class accuracy of the float network on each selection split and PublicTest."""
    out = {}
    for d in detectors:
        _, z = predict(model, data[f"sel_{d}_x"])
        out[f"selection_{d}"] = round(float(np.mean(rph.top_class(z) == data[f"sel_{d}_y"])), 4)
    _, z = predict(model, data["public_x"])
    out["fer2013_public"] = round(float(np.mean(rph.top_class(z) == data["public_y"])), 4)
    return out


def distil(model, data: dict[str, np.ndarray], args, ckpt_dir: Path, history: list[dict]
           ) -> list[dict]:
    """Train ``args.epochs`` epochs (resuming after the last checkpoint), one checkpoint and
    one history row per epoch."""
    import tensorflow as tf

    order0 = epoch_order(data["source"], args.real_repeat, args.fer_fraction,
                         np.random.default_rng(0))
    steps_per_epoch = math.ceil(len(order0) / args.batch)
    total = steps_per_epoch * args.epochs
    lr = tf.keras.optimizers.schedules.CosineDecay(args.lr, total, alpha=0.02)
    opt = tf.keras.optimizers.Adam(lr)
    epoch = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, epoch=epoch)
    manager = tf.train.CheckpointManager(ckpt, str(ckpt_dir), max_to_keep=None)
    if args.resume and manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).expect_partial()
        print(f"resumed from {manager.latest_checkpoint} (epoch {int(epoch.numpy())} done)",
              flush=True)
    elif manager.latest_checkpoint and not args.resume:
        raise SystemExit(f"{ckpt_dir} holds checkpoints: add --resume, or remove it to restart")
    else:
        manager.save(checkpoint_number=0)
    T, alpha = args.temperature, args.hard_weight
    hard = data.get("y", np.full(len(data["x"]), -1, np.int32))
    # --balanced: each emotion's hard labels weighted by 1 / its frequency (mean weight 1)
    counts = np.bincount(hard[hard >= 0], minlength=7).astype(np.float64)
    weights = np.ones(7, np.float32)
    if args.balanced and counts.sum():
        weights = (counts.sum() / (7 * np.maximum(counts, 1))).astype(np.float32)
    class_weight = tf.constant(weights)
    log_p = np.log(np.clip(data["p"], 1e-7, 1.0)) / T
    soft = np.exp(log_p - log_p.max(1, keepdims=True))
    soft = (soft / soft.sum(1, keepdims=True)).astype(np.float32)

    @tf.function(reduce_retracing=True)
    def step(x, t, y):
        with tf.GradientTape() as tape:
            _, z = model(x, training=True)
            loss = T * T * tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(t, z / T))
            if alpha:
                known = y >= 0
                y_known = tf.boolean_mask(y, known)
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    y_known, tf.boolean_mask(z, known)) * tf.gather(class_weight, y_known)
                loss = (1 - alpha) * loss + alpha * tf.reduce_sum(ce) / tf.cast(
                    tf.maximum(tf.size(y), 1), tf.float32)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    while int(epoch.numpy()) < args.epochs:
        e = int(epoch.numpy()) + 1
        rng = np.random.default_rng([args.seed, e])
        order = epoch_order(data["source"], args.real_repeat, args.fer_fraction, rng)
        x = augment(data["x"][order], rng, args.shift, args.scale)
        t_epoch, y_epoch = soft[order], hard[order]
        t0, losses = time.time(), []
        for s in range(0, len(order), args.batch):
            losses.append(float(step(tf.constant(x[s:s + args.batch, ..., None], tf.float32),
                                     tf.constant(t_epoch[s:s + args.batch]),
                                     tf.constant(y_epoch[s:s + args.batch]))))
            if len(losses) % 50 == 0:
                print(f"epoch {e} step {len(losses)}/{steps_per_epoch} loss "
                      f"{np.mean(losses[-50:]):.4f} ({time.time() - t0:.0f} s)", flush=True)
        epoch.assign(e)
        manager.save(checkpoint_number=e)
        row = {"epoch": e, "loss": round(float(np.mean(losses)), 4),
               "seconds": round(time.time() - t0), **score_float(model, data, args.detectors)}
        history = [h for h in history if h["epoch"] != e] + [row]
        (ckpt_dir / "history.json").write_text(json.dumps(history, indent=1))
        print(row, flush=True)
    return history


# -------------------------------------------------------------------------------- export


def to_tflite(model, calibration: np.ndarray) -> bytes:
    """int8 weights and activations, float crop in and 7 float probabilities out."""
    import keras
    import tensorflow as tf

    _, logits = model.outputs
    probs = keras.layers.Softmax(name="probabilities")(logits)
    export = keras.Model(model.inputs, probs)

    def representative():
        for c in calibration:
            yield [c[None, ..., None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(export)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.float32
    conv.inference_output_type = tf.float32
    return bytes(conv.convert())


def evaluate(path: Path, card: dict, data: dict, fer_private: tuple, fer_public: tuple,
             teacher_card: dict) -> dict:
    """Student and teacher through PixelModel (no flip, flip) per split and detector, fer
    beside them (paired interval student - teacher too), FER2013 PrivateTest and PublicTest."""
    out: dict = {}
    models = {NAME: (path, card), "pixels_real": (model_path(PIXELS_REAL), teacher_card)}
    preds: dict = {}
    for flip in (False, True):
        for base, (p, c) in models.items():
            model = PixelModel(p, c, threads=2, flip=flip)
            name = f"{base}_flip" if flip else base
            for split in ("selection", "test"):
                for df, crops, n_all in data[split]:
                    d = df["detector"].iloc[0]
                    y = df["label"].to_numpy()
                    pred = rph.top_class(model.predict(crops))
                    preds[(split, d, name)] = pred
                    fer = rph.top_class(rph.probabilities(df, "fer"))
                    row = out.setdefault(split, {}).setdefault(d, {})
                    row.setdefault("fer", rph.metrics(y, fer, n_all))
                    row[name] = rph.metrics(y, pred, n_all)
                    row[name]["minus_fer_95"] = rph.paired_interval(y, pred, fer)
                    if base == "pixels_real":
                        student = preds[(split, d, name.replace("pixels_real", NAME))]
                        row[name.replace("pixels_real", NAME)]["minus_pixels_real_95"] = \
                            rph.paired_interval(y, student, pred)
            for key, (x, e) in (("fer2013_private", fer_private),
                                ("fer2013_public", fer_public)):
                out.setdefault(key, {}).setdefault("image", {})[name] = rph.metrics(
                    tpr.to_class(e), rph.top_class(model.predict(x)), len(e))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="facial_expressions (images/, data/legend.csv)")
    ap.add_argument("--fer2013", type=Path, required=True, help="FER2013 as emotion folders")
    ap.add_argument("--detectors", nargs="+", default=["haar", "mediapipe", "mtcnn"])
    ap.add_argument("--member", type=int, default=2, help="which of pixels.tflite's networks")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--hard-weight", type=float, default=0.0,
                    help="weight of FER2013's own labels beside the teacher's (0: soft only)")
    ap.add_argument("--balanced", action="store_true",
                    help="weight FER2013's labels by 1 / the emotion's frequency")
    ap.add_argument("--real-repeat", type=int, default=2)
    ap.add_argument("--fer-fraction", type=float, default=1.0,
                    help="share of the FER2013 Training images in each epoch (a new sample each)")
    ap.add_argument("--shift", type=float, default=0.06)
    ap.add_argument("--scale", type=float, default=0.08)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", type=int, default=500)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--train-only", action="store_true", help="stop after the epochs")
    ap.add_argument("--cache", type=Path, default=rph.CACHE)
    ap.add_argument("--work", type=Path, default=Path("/tmp/distil"))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results" /
                    f"{NAME}.json")
    args = ap.parse_args(argv)
    if args.balanced and not args.hard_weight:
        ap.error("--balanced weights FER2013's labels: give --hard-weight too")
    command = "python scripts/distil_pixels.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.keras.utils.set_random_seed(args.seed)
    t0 = time.time()
    data = training_data(args.root, args.fer2013, args.detectors, args.cache, args.work)
    if args.hard_weight:
        data["y"] = fer_labels(args.fer2013, data["source"], args.work)
    src = model_path(PIXEL_MODEL).read_bytes()
    model = build_student(member_weights(src, args.member))
    ckpt_dir = args.work / f"member{args.member}"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    history_path = ckpt_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else []
    gap = pooled_gap(model, src, args.member, data["sel_mtcnn_x"][:512])
    print(f"rebuilt network vs LiteRT pooled vector: {gap}", flush=True)
    if not (args.resume and history):
        pooled, _ = predict(model, data["x"])
        kernel, bias = fit_head(pooled, data["p"])
        model.get_layer("emotions").set_weights([kernel, bias])
        history = [{"epoch": 0, **score_float(model, data, args.detectors)}]
        history_path.write_text(json.dumps(history, indent=1))
        print(history[0], flush=True)
    history = distil(model, data, args, ckpt_dir, history)
    if args.train_only:
        return 0

    def key(h):
        return h["selection_mtcnn"] + h["fer2013_public"]

    best = max(history, key=key)
    import tensorflow as tf  # noqa: F811

    tf.train.Checkpoint(model=model).restore(
        str(ckpt_dir / f"ckpt-{best['epoch']}")).expect_partial()
    print(f"kept epoch {best['epoch']}: {best}", flush=True)
    calib = data["x"][np.random.default_rng(args.seed).choice(len(data["x"]), args.calibration,
                                                              replace=False)]
    model_bytes = to_tflite(model, calib)
    tflite = args.out / f"{NAME}.tflite"
    args.out.mkdir(parents=True, exist_ok=True)
    tflite.write_bytes(model_bytes)
    teacher_card = json.loads(model_path("pixels_real.json").read_text())
    card = {
        "name": NAME, "kind": "pixels", "emotions": list(schema.EMOTIONS),
        "input": teacher_card["input"], "crop": teacher_card["crop"],
        "network": f"network {args.member} of pixels.tflite (pixel_vgg: 4 stages of two 3x3 "
                   "conv + ReLU, batch normalisation folded in, widths 32/64/128/256, max "
                   "pooling, global average pooling) with a new 7-way softmax layer, "
                   "distilled from pixels_real; int8",
        "distillation": {
            "teacher": {"file": PIXELS_REAL,
                        "sha256": hashlib.sha256(model_path(PIXELS_REAL).read_bytes())
                        .hexdigest(), "flip": True},
            "faces": {"fer2013": int(np.sum(data["source"] == 0)),
                      "real_photos": int(np.sum(data["source"] == 1)),
                      "detectors": args.detectors},
            "rebuilt_vs_litert_pooled": gap,
            "temperature": args.temperature, "hard_weight": args.hard_weight,
            "balanced": args.balanced,
            "epochs": args.epochs, "batch": args.batch,
            "lr": args.lr, "schedule": "Adam, cosine decay to 2%",
            "real_repeat": args.real_repeat, "fer_fraction": args.fer_fraction,
            "augment": {"mirror": 0.5, "shift": args.shift, "scale": args.scale},
            "seed": args.seed, "history": history, "kept_epoch": best["epoch"],
            "kept_by": "selection split (mtcnn) 3-class accuracy + FER2013 PublicTest "
                       "3-class accuracy (float network)",
            "calibration_crops": args.calibration},
        "data": teacher_card["data"] | {"fer2013": "FER2013 Training, all images"},
        "base_model": {"file": PIXEL_MODEL, "sha256": hashlib.sha256(src).hexdigest()},
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    real = {s: [tpr.real_crops(args.root, s, d, args.cache) for d in args.detectors]
            for s in ("selection", "test")}
    card["metrics"] = evaluate(tflite, card, real, folder_sample(args.fer2013, "PrivateTest"),
                               folder_sample(args.fer2013, "PublicTest"), teacher_card)
    card["seconds"] = round(time.time() - t0)
    (args.out / f"{NAME}.json").write_text(json.dumps(card, indent=1) + "\n")
    args.results.write_text(json.dumps({**rph.header(command), "metrics": card["metrics"],
                                        "distillation": card["distillation"]}, indent=1)
                            + "\n")
    for split, by_d in card["metrics"].items():
        for d, models in by_d.items():
            for name, m in models.items():
                print(f"{split:15s} {d:9s} {name:22s} acc {m['accuracy']:.4f} F1 "
                      f"{m['macro_f1']:.4f} n {m['n']}")
    print(f"wrote {tflite} ({len(model_bytes)} bytes) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
