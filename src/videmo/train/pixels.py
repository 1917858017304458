"""Pixel frame models: convolutional networks on 48x48 grey face crops, trained on FER2013.

What the literature shows matters on FER2013 (Goodfellow et al. 2013; Pramerdorfer & Kampel
2016; Khaireddin & Chen 2021) and is done here: a VGG-style network with batch normalisation,
random shifts and scale (a random resized crop), horizontal flips, small rotations, random
erasing, label smoothing, SGD with Nesterov momentum and weight decay under a cosine learning
rate with a warm-up. Selection (the epoch kept) is on the selection split; PrivateTest is
scored once, at the end, with and without test-time flipping (two rows, never mixed).

Training is seeded and resumable: after every epoch the whole state (weights, optimizer,
epoch, history) is saved atomically to ``OUT/checkpoints/<model>/``; a killed training started
again with the same command continues at the next epoch, with the same data order and
augmentation it would have had (both are functions of the seed and the epoch).

The images are read once through :func:`videmo.extract.crop.face_crop` (the whole image as the
box: the crop step that extraction uses) and cached as one uint8 array per split under
``train.cache`` (outside the repository: FER2013 has no open licence).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videmo import schema
from videmo.extract.crop import SIZE, WHOLE, face_crop
from videmo.store.files import atomic_path, write_text_atomic
from videmo.train import data, models_reading

# filters per stage; pixel_vgg is the one shipped, the wider two are measured beside it
WIDTHS = {"pixel_vgg": (32, 64, 128, 256), "pixel_vgg_48": (48, 96, 192, 384),
          "pixel_vgg_64": (64, 128, 256, 512)}
PIXEL_MODELS: tuple[str, ...] = models_reading("pixels")
# largest difference allowed between the imported network's probabilities here and where it
# was trained: the check probabilities of the session-6 GPU runs were computed with cuDNN's
# TF32 convolutions (torch's default then), 7.8e-3 at most from float32 here (median 4e-5;
# the same weights in torch on this CPU: 1.4e-6). A wrong mapping is off by far more.
IMPORT_ATOL = 0.02
IMPORT_MEDIAN_ATOL = 1e-3
CACHE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """The training recipe of a pixel model (what the card records)."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.05
    warmup_epochs: int = 2
    weight_decay: float = 5e-4
    momentum: float = 0.9
    label_smoothing: float = 0.1
    rotate_deg: float = 10.0
    min_scale: float = 0.8
    max_shift: float = 0.1
    erase_p: float = 0.5
    dropout: float = 0.4


# ---------------------------------------------------------------------------------- images


def read_crops(images: data.ImageSet, cache: Path, progress: bool = True) -> dict[str, Any]:
    """{split: (uint8 (n, 48, 48) crops, int labels)}, read once and cached by image list."""
    from tqdm import tqdm

    out: dict[str, Any] = {}
    for split, items in images.items.items():
        if not items:
            continue
        key = hashlib.sha256(json.dumps([CACHE_VERSION, SIZE, [i.key for i in items]])
                             .encode()).hexdigest()[:16]
        path = cache / f"pixels-{split}-{key}.npz"
        if path.is_file():
            with np.load(path) as z:
                out[split] = (z["x"], z["y"])
            continue
        x = np.zeros((len(items), SIZE, SIZE), np.uint8)
        for n, item in enumerate(tqdm(items, desc=f"read {split}", unit="img",
                                      disable=not progress)):
            img = item.read()
            x[n] = face_crop(img, (0, 0, img.shape[1], img.shape[0]), WHOLE)
        y = np.array([i.label for i in items], np.int64)
        with atomic_path(path, keep_suffix=True) as tmp:
            np.savez(tmp, x=x, y=y)
        out[split] = (x, y)
    return out


# --------------------------------------------------------------------------------- network


def build_network(name: str, recipe: Recipe, steps_per_epoch: int, seed: int,
                  tag: str | None = None):
    """The compiled Keras network ``name`` (called ``tag``, default ``name``): uint8-range grey
    (48, 48, 1) in, 7 softmax out."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 1), name="face")
    h = layers.Rescaling(1.0 / 255.0)(inputs)
    for stage, width in enumerate(WIDTHS[name]):
        for k in range(2):
            h = layers.Conv2D(width, 3, padding="same", use_bias=False,
                              name=f"conv{stage}_{k}")(h)
            h = layers.BatchNormalization(name=f"bn{stage}_{k}")(h)
            h = layers.ReLU()(h)
        h = layers.MaxPooling2D(2)(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(recipe.dropout)(h)
    outputs = layers.Dense(len(schema.EMOTIONS), activation="softmax", name="emotions")(h)
    model = keras.Model(inputs, outputs, name=tag or name)
    total = recipe.epochs * steps_per_epoch
    warm = min(recipe.warmup_epochs * steps_per_epoch, max(1, total - 1))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total - warm), alpha=0.0,
        warmup_target=recipe.lr, warmup_steps=warm)
    optimizer = keras.optimizers.SGD(schedule, momentum=recipe.momentum, nesterov=True,
                                     weight_decay=recipe.weight_decay)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(
                      label_smoothing=recipe.label_smoothing),
                  metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------------- augmentation


def augment(x: np.ndarray, rng: np.random.Generator, recipe: Recipe) -> np.ndarray:
    """A randomly moved, scaled, rotated, flipped and partly erased copy of the uint8 batch
    ``x`` (n, 48, 48): one affine warp per image (border pixels repeated), then erasing."""
    import cv2

    n = len(x)
    out = np.empty_like(x)
    c = SIZE / 2
    scale = rng.uniform(1.0, 1.0 / recipe.min_scale, n)  # zoom in: a crop of 80-100%
    angle = rng.uniform(-recipe.rotate_deg, recipe.rotate_deg, n)
    shift = rng.uniform(-recipe.max_shift, recipe.max_shift, (n, 2)) * SIZE
    flip = rng.random(n) < 0.5
    erase = rng.random(n) < recipe.erase_p
    for i in range(n):
        m = cv2.getRotationMatrix2D((c, c), angle[i], scale[i])
        m[:, 2] += shift[i]
        if flip[i]:
            m[0] = [-m[0, 0], -m[0, 1], SIZE - m[0, 2]]
        out[i] = cv2.warpAffine(x[i], m, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        if erase[i]:  # random erasing (Zhong et al. 2017): 2-25% of the area, noise-filled
            area = rng.uniform(0.02, 0.25) * SIZE * SIZE
            ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
            eh = min(SIZE, int(round(math.sqrt(area * ratio))))
            ew = min(SIZE, int(round(math.sqrt(area / ratio))))
            y0, x0 = rng.integers(0, SIZE - eh + 1), rng.integers(0, SIZE - ew + 1)
            out[i, y0:y0 + eh, x0:x0 + ew] = rng.integers(0, 256, (eh, ew), dtype=np.uint8)
    return out


def _batches(x: np.ndarray, y: np.ndarray, recipe: Recipe, seed: int, epoch: int):
    """The epoch's shuffled, augmented batches: a function of (seed, epoch) alone."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(x))
    eye = np.eye(len(schema.EMOTIONS), dtype=np.float32)
    for start in range(0, len(order), recipe.batch_size):
        idx = order[start:start + recipe.batch_size]
        yield augment(x[idx], rng, recipe)[..., None], eye[y[idx]]


def predict(network, x: np.ndarray, flip: bool = False, batch: int = 512) -> np.ndarray:
    """(n, 7) probabilities for uint8 crops (n, 48, 48); ``flip``: the mean with the mirrored
    crops (test-time augmentation)."""
    out = np.asarray(network.predict(x[..., None], batch_size=batch, verbose=0), np.float32)
    if flip:
        mirrored = np.ascontiguousarray(x[:, :, ::-1])
        out = (out + np.asarray(network.predict(mirrored[..., None], batch_size=batch,
                                                verbose=0), np.float32)) / 2
    return out


# ---------------------------------------------------------------------------------- resume


def _save_state(ckpt: Path, network, state: dict[str, Any]) -> None:
    """Weights + optimizer (``last.keras``) and ``state.json``, each replaced atomically;
    the state names the epoch it belongs to, so a kill between the two is detected."""
    with atomic_path(ckpt / "last.keras", keep_suffix=True) as tmp:
        network.save(tmp)
    write_text_atomic(ckpt / "state.json", json.dumps(state, indent=1))


def _load_state(ckpt: Path, fingerprint: str):
    """(network, state) of the last finished epoch, or (None, None) to start afresh."""
    import keras

    state_path, model_path = ckpt / "state.json", ckpt / "last.keras"
    if not (state_path.is_file() and model_path.is_file()):
        return None, None
    state = json.loads(state_path.read_text())
    if state.get("fingerprint") != fingerprint:
        raise data.DataError(
            f"{ckpt} holds a training with other settings (data, recipe or seed); remove it "
            f"or choose another train.out")
    network = keras.models.load_model(model_path, safe_mode=True)
    if int(network.optimizer.iterations.numpy()) != state["steps"]:
        raise data.DataError(f"{ckpt}: last.keras and state.json are of different epochs; "
                             f"remove the folder to start this model again")
    return network, state


# -------------------------------------------------------------------------------- import


def import_weights(name: str, recipe: Recipe, folder: Path, seed: int):
    """(network, meta): the Keras network ``name`` with the weights that
    ``scripts/train_pixels_gpu.py`` wrote to ``folder/<name>-s<seed>.npz`` (and ``.part2.npz``),
    and that training's record from ``folder/summary*.json``. The file's ``check_x`` crops are
    run through the network here and must give its ``check_p`` (to :data:`IMPORT_ATOL`): a
    mapping of weights that is wrong anywhere (a transposed kernel, a batch-norm epsilon) fails
    here instead of shipping."""
    tag = f"{name}-s{seed}"
    paths = sorted(folder.glob(f"{tag}.npz")) + sorted(folder.glob(f"{tag}.part*.npz"))
    if not paths:
        raise data.DataError(f"train.import_weights: no {tag}.npz in {folder} (made by "
                             f"scripts/train_pixels_gpu.py --models {name}:{seed})")
    arrays: dict[str, np.ndarray] = {}
    for path in paths:
        with np.load(path) as z:
            arrays.update({k: z[k] for k in z.files})
    meta = None
    for path in sorted(folder.glob("summary*.json")):
        meta = json.loads(path.read_text()).get(tag, meta)
    if meta is None:
        raise data.DataError(f"train.import_weights: {tag} is in no summary*.json of {folder}")
    if tuple(meta["widths"]) != WIDTHS[name]:
        raise data.DataError(f"{tag}: trained with filters {meta['widths']}, {name} has "
                             f"{WIDTHS[name]}")
    network = build_network(name, recipe, 1, seed, tag=f"{name}_s{seed}")
    for layer in network.layers:
        if layer.name.startswith("conv"):
            layer.set_weights([arrays[f"{layer.name}/kernel"]])
        elif layer.name.startswith("bn"):
            layer.set_weights([arrays[f"{layer.name}/{k}"] for k in
                               ("gamma", "beta", "moving_mean", "moving_variance")])
        elif layer.name == "emotions":
            layer.set_weights([arrays["emotions/kernel"], arrays["emotions/bias"]])
    gap = np.abs(predict(network, arrays["check_x"]) - arrays["check_p"])
    diff = float(gap.max())
    if diff > IMPORT_ATOL or float(np.median(gap)) > IMPORT_MEDIAN_ATOL:
        raise data.DataError(f"{tag}: the imported network differs from the trained one by "
                             f"{diff:.2g} at most, {float(np.median(gap)):.2g} median, on its "
                             f"check crops (allowed {IMPORT_ATOL:g}, {IMPORT_MEDIAN_ATOL:g})")
    meta = dict(meta, import_check_max_abs_diff=diff, files=[p.name for p in paths])
    return network, meta


def ensemble(name: str, members: list):
    """One Keras model averaging the softmax outputs of ``members`` (networks with the same
    input): the form in which several seeds ship as one TFLite file."""
    import keras
    from keras import layers

    if len(members) == 1:
        return members[0]
    inputs = keras.Input((SIZE, SIZE, 1), name="face")
    outputs = layers.Average(name="emotions_mean")([m(inputs) for m in members])
    return keras.Model(inputs, outputs, name=name)


# ------------------------------------------------------------------------------- training


@dataclass
class PixelFitted:
    name: str
    network: Any
    epochs: int
    history: dict[str, list[float]]
    seconds: float


def fit(name: str, x_fit: np.ndarray, y_fit: np.ndarray, x_sel: np.ndarray,
        y_sel: np.ndarray, recipe: Recipe, seed: int, out: Path,
        progress: bool = True, tag: str | None = None) -> PixelFitted:
    """Train ``name`` for ``recipe.epochs`` epochs (resuming from ``out/checkpoints/<tag>``,
    ``tag`` default ``name``); the returned network has the weights of the epoch with the best
    selection accuracy."""
    from tqdm import tqdm

    steps = math.ceil(len(x_fit) / recipe.batch_size)
    fingerprint = hashlib.sha256(json.dumps(
        [name, WIDTHS[name], recipe.__dict__, seed, len(x_fit), int(x_fit[:64].sum()),
         len(x_sel)], default=str).encode()).hexdigest()[:16]
    ckpt = out / "checkpoints" / (tag or name)
    network, state = _load_state(ckpt, fingerprint)
    if network is None:
        network = build_network(name, recipe, steps, seed)
        state = {"fingerprint": fingerprint, "epoch": 0, "steps": 0, "best_epoch": 0,
                 "best_selection": -1.0, "seconds": 0.0,
                 "history": {"loss": [], "accuracy": [], "selection_accuracy": []}}
    elif progress:
        print(f"{name}: resuming after epoch {state['epoch']} of {recipe.epochs} "
              f"(best selection {state['best_selection']:.1%} at epoch {state['best_epoch']})",
              flush=True)
    bar = tqdm(total=recipe.epochs, initial=state["epoch"], desc=name, unit="epoch",
               disable=not progress, dynamic_ncols=True)
    for epoch in range(state["epoch"], recipe.epochs):
        t0 = time.time()
        losses, accs = [], []
        inner = tqdm(_batches(x_fit, y_fit, recipe, seed, epoch), total=steps, leave=False,
                     desc=f"epoch {epoch + 1}", unit="batch", disable=not progress,
                     dynamic_ncols=True)
        for xb, yb in inner:
            loss, acc = network.train_on_batch(xb, yb, return_dict=False)
            losses.append(float(loss))
            accs.append(float(acc))
            if len(losses) % 20 == 0:
                inner.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        sel = float(np.mean(np.argmax(predict(network, x_sel), 1) == y_sel))
        state["history"]["loss"].append(float(np.mean(losses)))
        state["history"]["accuracy"].append(float(np.mean(accs)))
        state["history"]["selection_accuracy"].append(sel)
        state["epoch"], state["steps"] = epoch + 1, int(network.optimizer.iterations.numpy())
        state["seconds"] += time.time() - t0
        if sel > state["best_selection"]:
            state["best_selection"], state["best_epoch"] = sel, epoch + 1
            with atomic_path(ckpt / "best.weights.h5", keep_suffix=True) as tmp:
                network.save_weights(tmp)
        _save_state(ckpt, network, state)
        bar.update(1)
        bar.set_postfix(loss=f"{state['history']['loss'][-1]:.3f}", sel=f"{sel:.1%}",
                        best=f"{state['best_selection']:.1%}@{state['best_epoch']}")
        if progress:
            bar.write(f"{name} epoch {epoch + 1}/{recipe.epochs}: loss "
                      f"{state['history']['loss'][-1]:.4f}, train acc "
                      f"{state['history']['accuracy'][-1]:.1%}, selection {sel:.1%} "
                      f"({time.time() - t0:.0f} s)")
    bar.close()
    best = build_network(name, recipe, steps, seed, tag=f"{name}_s{seed}")
    with warnings.catch_warnings():  # the file also holds the optimizer's state: not needed
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        best.load_weights(ckpt / "best.weights.h5")
    return PixelFitted(name, best, state["best_epoch"], state["history"], state["seconds"])
