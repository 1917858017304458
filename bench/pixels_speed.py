"""Cost per face of the pixel models (emotions.model: pixels, pixels_real, pixels_distilled)
beside fer's.

Both on LiteRT with one thread, in this process pinned to one CPU, on the recorded crops of
the sample corpus (tests/data/pixels_golden.npz: 18 faces), called one face at a time (a frame
with one face, the common case) and in batches of 16 faces. Also the crop step itself
(framing + eye alignment with OpenCV's eye cascade, as a Haar run does it). ``--repeats`` runs
of each; min / median / max milliseconds per face.

    python bench/pixels_speed.py --repeats 7
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def per_face(fn, faces: np.ndarray, batch: int, rounds: int = 20) -> float:
    fn(faces[:batch])  # warm: allocate tensors for this batch size
    t0 = time.process_time()
    n = 0
    for _ in range(rounds):
        for start in range(0, len(faces) - batch + 1, batch):
            fn(faces[start:start + batch])
            n += batch
    return (time.process_time() - t0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import cv2

    from videmo.extract.crop import face_crop
    from videmo.extract.features.emotions import TfliteModel, scale_input
    from videmo.extract.features.pixel_model import EyeFinder, PixelModel, framing_for

    with np.load(REPO / "tests" / "data" / "pixels_golden.npz") as z:
        crops = z["crops"]
    faces48 = np.concatenate([crops] * 2)[:32]
    fer_in = scale_input([cv2.resize(c, (64, 64)) for c in faces48])
    pixels, flip, fer = PixelModel.load(1), PixelModel.load(1, flip=True), TfliteModel(1)
    real = PixelModel.load(1, name="pixels_real")
    distilled = PixelModel.load(1, name="pixels_distilled")
    frame = cv2.VideoCapture(str(sorted((REPO / "data" / "sample" / "crema-d")
                                        .glob("*.flv"))[0])).read()[1]
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    finder, framing = EyeFinder(), framing_for("haar")
    box = (160, 80, 150, 150)

    def crop_step(faces):
        for _ in faces:
            eyes = finder.eyes(grey, box)
            angle = 0.0 if eyes is None else 1.0
            face_crop(grey, box, framing, 48, angle)

    rows = {"fer (mini-Xception, 64x64)": (fer.predict, fer_in),
            "pixels (pixel_vgg, 48x48)": (pixels.predict, faces48),
            "pixels + flip": (flip.predict, faces48),
            "pixels_real (pixel_vgg x3, new last layer)": (real.predict, faces48),
            "pixels_distilled (one pixel_vgg)": (distilled.predict, faces48),
            "crop step (framing + eye cascade)": (crop_step, faces48)}
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, one CPU, "
          f"{args.repeats} runs, ms CPU per face (min / median / max)")
    for name, (fn, x) in rows.items():
        for batch in (1, 16):
            v = [per_face(fn, x, batch) for _ in range(args.repeats)]
            print(f"| {name} | {batch} | {min(v):.2f} / {np.median(v):.2f} / {max(v):.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
