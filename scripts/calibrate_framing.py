"""Measure how each face detector frames a FER2013 face, for the pixel models' crop step.

FER2013's 48x48 images are the crops the pixel models learn on. A detector's box on the same
face is smaller or larger than the image and sits a little higher or lower; the crop step
(:mod:`videmo.extract.crop`) undoes that with one :class:`~videmo.extract.crop.Framing` per
detector. This script runs each detector on ``--n`` Training images (a fixed, seeded sample),
upscaled ``--upscale`` times (bicubic) inside a border of a quarter side (edge pixels repeated)
so the detectors see a face of a usual size with some context, keeps the largest face whose
centre lies inside the image, and writes the medians of

    scale = image side / box side (the longer one),  dx, dy = (image centre - box centre) / box side

to ``src/videmo/models/face_framing.json`` with the counts and the command. Development work:
it reads FER2013 (never committed) and may import TensorFlow (MTCNN).

    python scripts/calibrate_framing.py /tmp/fer2013 --n 1500

With ``--spec`` it writes nothing and prints each detector's framing as the tuple its
:class:`~videmo.extract.specs.DetectorSpec` takes (``framing=(scale, dx, dy)``): a detector added
later gets its framing without changing face_framing.json, whose hash is in every pixel model's
extract key (so runs made before stay done).

    python scripts/calibrate_framing.py /tmp/fer2013 --n 1500 --detectors yunet --spec
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from videmo.config import FacesConfig
from videmo.extract.detectors import make_detector
from videmo.train import data

OUT = Path(__file__).resolve().parents[1] / "src" / "videmo" / "models" / "face_framing.json"


def measure(detector, images: list[np.ndarray], upscale: int) -> dict:
    scales, dxs, dys, found = [], [], [], 0
    for img in images:
        side = img.shape[0] * upscale
        big = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
        border = side // 4
        framed = cv2.copyMakeBorder(big, border, border, border, border, cv2.BORDER_REPLICATE)
        bgr = cv2.cvtColor(framed, cv2.COLOR_GRAY2BGR)
        (faces,) = detector.detect([bgr], 1.0)
        c = border + side / 2
        inside = [f for f in faces if border <= f.x + f.w / 2 <= border + side
                  and border <= f.y + f.h / 2 <= border + side]
        if not inside:
            continue
        f = max(inside, key=lambda f: f.w * f.h)
        box = getattr(f, "box", None) or (f.x, f.y, f.w, f.h)
        bside = max(box[2], box[3])
        found += 1
        scales.append(side / bside)
        dxs.append((c - (box[0] + box[2] / 2)) / bside)
        dys.append((c - (box[1] + box[3] / 2)) / bside)
    q = lambda v: [round(float(np.percentile(v, p)), 4) for p in (25, 50, 75)]  # noqa: E731
    return {"scale": round(float(np.median(scales)), 4), "dx": round(float(np.median(dxs)), 4),
            "dy": round(float(np.median(dys)), 4), "found": found, "of": len(images),
            "quartiles": {"scale": q(scales), "dx": q(dxs), "dy": q(dys)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="FER2013 as emotion folders (train.format: folders)")
    ap.add_argument("--n", type=int, default=1500, help="Training images to sample")
    ap.add_argument("--upscale", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detectors", nargs="+", default=["haar", "mediapipe", "mtcnn"])
    ap.add_argument("--spec", action="store_true",
                    help="print each framing as a DetectorSpec tuple; write nothing")
    args = ap.parse_args(argv)
    items = data.read_folders(args.data).items[data.TRAINING]
    pick = np.random.default_rng(args.seed).choice(len(items), args.n, replace=False)
    images = [items[i].read() for i in sorted(pick)]
    result = {"command": "python scripts/calibrate_framing.py " + " ".join(sys.argv[1:]),
              "date": dt.date.today().isoformat(), "upscale": args.upscale,
              "border": "a quarter side, edge pixels repeated", "detectors": {}}
    for name in args.detectors:
        detector = make_detector(FacesConfig(detector=name))
        result["detectors"][name] = measure(detector, images, args.upscale)
        print(name, result["detectors"][name], flush=True)
        if args.spec:
            m = result["detectors"][name]
            print(f"{name}: framing=({m['scale']}, {m['dx']}, {m['dy']})  # {result['command']}")
    if args.spec:
        return 0
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
