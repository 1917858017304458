"""Train videmo's pixel networks on a GPU with PyTorch; the weights come back as Keras arrays.

The device machine lent to some sessions has PyTorch but no TensorFlow, so this script is the
GPU twin of :func:`videmo.train.pixels.fit`: the same network (``build_network``: 4 stages of
two 3x3 conv without bias + batch norm + ReLU, 2x2 max pooling, global average pooling,
dropout, softmax; Rescaling 1/255 first), the same recipe (SGD Nesterov 0.9, decoupled weight
decay as Keras applies it, cosine learning rate after a linear warm-up, label smoothing 0.1,
random zoom 1-1.25x / shift 10% / rotation 10 degrees / flip / erasing with noise), the same
selection (accuracy on the selection split, best epoch kept). The crops are the ones
``videmo train`` cached (``read_crops``: :func:`videmo.extract.crop.face_crop` of each image
whole), so training and run time see the same crop step.

Each model of ``--models`` trains in its own process (they share the GPU). The number of epochs
is fixed before training from a timed calibration of each model (``--budget-s`` of wall time,
``--max-epochs`` at most) and recorded. Out: ``OUT/<name>-s<seed>.npz`` (a second part
``.part2.npz`` over 15 MB): the best epoch's weights under
their Keras names (``conv0_0/kernel`` (3, 3, in, out), ``bn0_0/gamma|beta|moving_mean|
moving_variance``, ``emotions/kernel|bias``) plus ``check_x``/``check_p``: 256 selection crops and
the network's float32 probabilities on them, which ``videmo train`` (``train.import_weights``)
compares after loading the weights into Keras; ``OUT/summary.json``: recipe, epochs,
history of each.

Needs numpy, OpenCV and torch:  python scripts/train_pixels_gpu.py DATA OUT --models ...
DATA holds ``train.npz`` (x uint8 (n, 48, 48), y) or ``train-*.npz`` parts, and ``select.npz``.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# the network's widths and the recipe are the package's (videmo.train.pixels imports numpy and
# OpenCV only, both on the GPU machine): one definition for the CPU and the GPU training
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from videmo import schema  # noqa: E402
from videmo.extract.crop import SIZE  # noqa: E402
from videmo.train.pixels import WIDTHS, Recipe  # noqa: E402

CLASSES = len(schema.EMOTIONS)
RECIPE = {k: v for k, v in dataclasses.asdict(Recipe(epochs=0)).items() if k != "epochs"}


def load(data: str):
    parts = sorted(glob.glob(os.path.join(data, "train-*.npz"))) or [
        os.path.join(data, "train.npz")]
    xs, ys = [], []
    for p in parts:
        with np.load(p) as z:
            xs.append(z["x"])
            if "y" in z:
                ys.append(z["y"])
    with np.load(os.path.join(data, "select.npz")) as z:
        xs_, ys_ = z["x"], z["y"]
    return np.concatenate(xs), np.concatenate(ys), xs_, ys_


def network(widths, dropout):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 1
            self.names = []
            for stage, w in enumerate(widths):
                for k in range(2):
                    layers += [nn.Conv2d(c, w, 3, padding=1, bias=False),
                               nn.BatchNorm2d(w, eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)]
                    self.names.append(f"{stage}_{k}")
                    c = w
                layers.append(nn.MaxPool2d(2))
            self.body = nn.Sequential(*layers)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(c, CLASSES)

        def forward(self, x):  # x: float 0-255, (n, 1, 48, 48)
            h = self.body(x * (1.0 / 255.0))
            return self.head(self.drop(torch.mean(h, dim=(2, 3))))

    return Net()


def keras_weights(net) -> dict[str, np.ndarray]:
    from torch import nn

    out, convs, bns = {}, [], []
    for m in net.body:
        if isinstance(m, nn.Conv2d):
            convs.append(m)
        elif isinstance(m, nn.BatchNorm2d):
            bns.append(m)
    for name, conv, bn in zip(net.names, convs, bns, strict=True):
        out[f"conv{name}/kernel"] = conv.weight.detach().cpu().float().numpy().transpose(
            2, 3, 1, 0)
        out[f"bn{name}/gamma"] = bn.weight.detach().cpu().float().numpy()
        out[f"bn{name}/beta"] = bn.bias.detach().cpu().float().numpy()
        out[f"bn{name}/moving_mean"] = bn.running_mean.detach().cpu().float().numpy()
        out[f"bn{name}/moving_variance"] = bn.running_var.detach().cpu().float().numpy()
    out["emotions/kernel"] = net.head.weight.detach().cpu().float().numpy().T
    out["emotions/bias"] = net.head.bias.detach().cpu().float().numpy()
    return out


def theta(scale, angle, shift, flip):
    """affine_grid's (n, 2, 3) for cv2.warpAffine with cv2.getRotationMatrix2D's zoom
    ``scale`` and rotation ``angle`` (radians) about the centre, then ``shift`` (pixels) and a
    horizontal ``flip``: cv2's forward pixel map inverted and put in normalised coordinates."""
    import torch

    n, dev, c = len(scale), scale.device, SIZE / 2
    a, b = scale * torch.cos(angle), scale * torch.sin(angle)
    m = torch.zeros(n, 3, 3, device=dev)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = a, b, (1 - a) * c - b * c + shift[:, 0]
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = -b, a, b * c + (1 - a) * c + shift[:, 1]
    m[:, 2, 2] = 1
    fl = flip.float()
    m[:, 0, :] = m[:, 0, :] * (1 - 2 * fl[:, None])
    m[:, 0, 2] += fl * SIZE
    inv = torch.linalg.inv(m)  # dst -> src (what a sampler needs)
    norm = torch.tensor([[SIZE / 2, 0, (SIZE - 1) / 2], [0, SIZE / 2, (SIZE - 1) / 2],
                         [0, 0, 1]], device=dev)  # normalised -> pixel (align_corners=False)
    return (torch.linalg.inv(norm) @ inv @ norm)[:, :2]


def augment(x, gen, r):
    """The recipe's augmentation of a float batch (n, 1, 48, 48) on the GPU: one affine warp
    per image (cv2.getRotationMatrix2D's zoom and rotation about the centre, a shift, a flip;
    bilinear, border repeated) and random erasing filled with uniform noise."""
    import torch
    import torch.nn.functional as F

    n, dev = len(x), x.device

    def u(lo, hi, *shape):
        return torch.rand(*shape, generator=gen, device=dev) * (hi - lo) + lo

    scale = u(1.0, 1.0 / r["min_scale"], n)
    angle = torch.deg2rad(u(-r["rotate_deg"], r["rotate_deg"], n))
    shift = u(-r["max_shift"], r["max_shift"], n, 2) * SIZE
    flip = torch.rand(n, generator=gen, device=dev) < 0.5
    grid = F.affine_grid(theta(scale, angle, shift, flip), (n, 1, SIZE, SIZE),
                         align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # random erasing (Zhong et al. 2017): 2-25% of the area, aspect 0.3-3.3, noise-filled
    erase = torch.rand(n, generator=gen, device=dev) < r["erase_p"]
    area = u(0.02, 0.25, n) * SIZE * SIZE
    ratio = torch.exp(u(math.log(0.3), math.log(3.3), n))
    eh = torch.clamp(torch.round(torch.sqrt(area * ratio)), max=SIZE)
    ew = torch.clamp(torch.round(torch.sqrt(area / ratio)), max=SIZE)
    y0 = torch.floor(torch.rand(n, generator=gen, device=dev) * (SIZE - eh + 1))
    x0 = torch.floor(torch.rand(n, generator=gen, device=dev) * (SIZE - ew + 1))
    ar = torch.arange(SIZE, device=dev, dtype=torch.float32)
    rows = (ar[None] >= y0[:, None]) & (ar[None] < (y0 + eh)[:, None])
    cols = (ar[None] >= x0[:, None]) & (ar[None] < (x0 + ew)[:, None])
    mask = (rows[:, :, None] & cols[:, None, :] & erase[:, None, None])[:, None]
    noise = torch.floor(torch.rand(x.shape, generator=gen, device=dev) * 256)
    return torch.where(mask, noise, torch.round(out.clamp(0, 255)))


def predict(net, x, flip=False, batch=1024):
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb = x[s:s + batch].float()[:, None]
            p = torch.softmax(net(xb).float(), 1)
            if flip:
                p = (p + torch.softmax(net(torch.flip(xb, dims=[3])).float(), 1)) / 2
            out.append(p)
    return torch.cat(out)


def train_one(name: str, seed: int, args) -> None:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    x, y, xs, ys = load(args.data)
    if args.limit:
        x, y, xs, ys = x[:args.limit], y[:args.limit], xs[:args.limit // 4], ys[:args.limit // 4]
    x, y = torch.from_numpy(x).to(dev), torch.from_numpy(y).long().to(dev)
    xs_t, ys_t = torch.from_numpy(xs).to(dev), torch.from_numpy(ys).long().to(dev)
    r = dict(RECIPE)
    net = network(WIDTHS[name], r["dropout"]).to(dev).to(memory_format=torch.channels_last)
    bs = r["batch_size"]
    steps = math.ceil(len(x) / bs)
    opt = torch.optim.SGD(net.parameters(), lr=0.0, momentum=r["momentum"], nesterov=True)
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")

    def step(xb, yb, lr):
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.no_grad():  # decoupled weight decay, as Keras applies it
            for p in net.parameters():
                p.mul_(1 - lr * r["weight_decay"])
        with torch.autocast(**amp):
            loss = F.cross_entropy(net(xb.contiguous(memory_format=torch.channels_last)), yb,
                                   label_smoothing=r["label_smoothing"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    # calibration: time steps of this model while the others calibrate too, then fix epochs
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed * 1000 + 999)
    state0 = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    for i in range(25):
        if i == 5:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.time()
        idx = torch.randint(0, len(x), (bs,), generator=gen, device=dev)
        step(augment(x[idx].float()[:, None], gen, r), y[idx], 1e-6)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    per_step = (time.time() - t0) / 20
    per_epoch = per_step * steps * 1.1 + 0.05  # + selection scoring
    epochs = int(max(3, min(args.max_epochs, (args.budget_s - 5) // per_epoch)))
    net.load_state_dict(state0)
    opt = torch.optim.SGD(net.parameters(), lr=0.0, momentum=r["momentum"], nesterov=True)
    print(f"{name} seed {seed}: {per_step * 1000:.1f} ms/step, {per_epoch:.2f} s/epoch "
          f"estimated -> {epochs} epochs", flush=True)
    total, warm = epochs * steps, r["warmup_epochs"] * steps
    hist = {"loss": [], "selection_accuracy": [], "selection_accuracy_flip": [], "seconds": []}
    best, best_acc, best_epoch, t_start = None, -1.0, 0, time.time()
    it = 0
    deadline = t_start + args.budget_s + 60  # a slow estimate must not lose the whole run
    for epoch in range(epochs):
        if time.time() > deadline:
            print(f"{name} seed {seed}: deadline reached after {epoch} epochs", flush=True)
            hist["stopped_at_deadline"] = epoch
            break
        t0 = time.time()
        gen.manual_seed(seed * 1000 + epoch)
        order = torch.randperm(len(x), generator=gen, device=dev)
        net.train()
        losses = torch.zeros((), device=dev)
        for s in range(steps):
            idx = order[s * bs:(s + 1) * bs]
            lr = (r["lr"] * (it + 1) / warm if it < warm else
                  0.5 * r["lr"] * (1 + math.cos(math.pi * (it - warm) / max(1, total - warm))))
            losses += step(augment(x[idx].float()[:, None], gen, r), y[idx], lr).detach()
            it += 1
        p = predict(net, xs_t)
        acc = float((p.argmax(1) == ys_t).float().mean())
        acc_f = float((predict(net, xs_t, flip=True).argmax(1) == ys_t).float().mean())
        hist["loss"].append(float(losses) / steps)
        hist["selection_accuracy"].append(acc)
        hist["selection_accuracy_flip"].append(acc_f)
        hist["seconds"].append(time.time() - t0)
        if acc > best_acc:
            best_acc, best_epoch = acc, epoch + 1
            best = {k: v.detach().clone() for k, v in net.state_dict().items()}
        print(f"{name} seed {seed} epoch {epoch + 1}/{epochs}: loss {hist['loss'][-1]:.4f} "
              f"selection {acc:.2%} (flip {acc_f:.2%}) best {best_acc:.2%}@{best_epoch} "
              f"{time.time() - t0:.1f} s", flush=True)
    net.load_state_dict(best)
    net.eval().float()
    torch.backends.cudnn.allow_tf32 = False  # the check probabilities in true float32
    torch.backends.cuda.matmul.allow_tf32 = False
    check_x = xs[:256]
    check_p = predict(net, torch.from_numpy(check_x).to(dev)).cpu().numpy()
    tag = f"{name}-s{seed}"
    weights = keras_weights(net)
    # files come back from the device up to 16 MiB each: a larger network is cut in two
    keys, total = list(weights), sum(v.nbytes for v in weights.values())
    sizes = np.cumsum([weights[k].nbytes for k in keys])
    half = total > 15e6
    cut = max(1, int(np.searchsorted(sizes, total / 2))) if half else len(keys)
    np.savez(os.path.join(args.out, f"{tag}.npz"), check_x=check_x, check_p=check_p,
             **{k: weights[k] for k in keys[:cut]})
    if half:
        np.savez(os.path.join(args.out, f"{tag}.part2.npz"), **{k: weights[k] for k in keys[cut:]})
    meta = {"name": name, "widths": WIDTHS[name], "seed": seed, "recipe": r,
            "epochs": epochs, "best_epoch": best_epoch, "best_selection": best_acc,
            "train_seconds": round(time.time() - t_start, 1), "history": hist,
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
            "n_train": int(len(x)), "n_selection": int(len(xs)),
            "parameters": int(sum(v.size for v in weights.values()))}
    with open(os.path.join(args.out, f"{tag}.json"), "w") as f:
        json.dump(meta, f, indent=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--models", nargs="+", default=["pixel_vgg:0"],
                    help="NAME:SEED, each trained in its own process")
    ap.add_argument("--budget-s", type=float, default=300.0,
                    help="wall time for each model's epochs (they run at once)")
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--limit", type=int, default=0, help="first N images only (a smoke test)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.one:
        name, seed = args.one.split(":")
        train_one(name, int(seed), args)
        return 0
    procs = []
    for spec in args.models:
        cmd = [sys.executable, __file__, args.data, args.out, "--one", spec,
               "--budget-s", str(args.budget_s), "--max-epochs", str(args.max_epochs),
               "--limit", str(args.limit)]
        procs.append((spec, subprocess.Popen(cmd)))
    failed = [spec for spec, p in procs if p.wait() != 0]
    summary = {}
    for path in sorted(glob.glob(os.path.join(args.out, "*.json"))):
        if os.path.basename(path) != "summary.json":
            with open(path) as f:
                summary[os.path.basename(path)[:-5]] = json.load(f)
            os.remove(path)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
