"""Derive the pixel model's crop framing for ``faces.detector: blazeface_full`` from the
short-range BlazeFace's (models/face_framing.json, "mediapipe"), by how the two detectors' boxes
differ on the same close-ups.

    python scripts/framing_full_range.py --photos FACIAL_EXPRESSIONS [--n 150]

On every frame of the six sample clips and ``--n`` photos of muxspace/facial_expressions (seed 0;
never a person of ../shared/data/evaluation-identities.txt), where each detector finds exactly
one face: r = full side / short side, (ox, oy) = (full centre - short centre) / short side. The
full-range crop equals the short-range one when scale = scale_mp / r and d = (d_mp - o) / r;
prints the medians and quartiles, and the framing to put in
videmo.extract.features.pixel_model.FRAMED_AS.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from videmo.extract.detectors.blazeface import BlazeFaceDetector
from videmo.extract.detectors.blazeface_full import BlazeFaceFullDetector
from videmo.extract.features.pixel_model import framings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, required=True)
    shared = next((p / "shared" for p in (ROOT.parent, ROOT.parent.parent)
                   if (p / "shared").is_dir()), ROOT.parent / "shared")
    ap.add_argument("--exclude", type=Path,
                    default=shared / "data" / "evaluation-identities.txt")
    ap.add_argument("--n", type=int, default=150)
    args = ap.parse_args()
    images = []
    for clip in sorted((ROOT / "data" / "sample" / "crema-d").glob("*.flv")):
        cap = cv2.VideoCapture(str(clip))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            images.append(frame)
    excluded = tuple(ln.strip().lower() + "_" for ln in args.exclude.read_text().splitlines()
                     if ln.strip() and not ln.startswith("#"))
    names = sorted(p.name for p in (args.photos / "images").iterdir()
                   if not p.name.lower().startswith(excluded + ("facial-expressions",)))
    random.Random(0).shuffle(names)
    images += [cv2.imread(str(args.photos / "images" / n)) for n in names[: args.n]]
    short, full = BlazeFaceDetector(), BlazeFaceFullDetector(tiles=0)
    r, ox, oy = [], [], []
    for image in images:
        if image is None:
            continue
        a, b = short.detect_one(image), full.detect_one(image)
        if len(a) != 1 or len(b) != 1:
            continue
        (sx, sy, sw, sh), (fx, fy, fw, fh) = a[0].box, b[0].box
        s = max(sw, sh)
        r.append(max(fw, fh) / s)
        ox.append((fx + fw / 2 - sx - sw / 2) / s)
        oy.append((fy + fh / 2 - sy - sh / 2) / s)
    q = {k: np.percentile(v, [25, 50, 75]).round(4).tolist() for k, v in
         {"r": r, "ox": ox, "oy": oy}.items()}
    mp = framings()["mediapipe"]
    rm, oxm, oym = (float(np.median(v)) for v in (r, ox, oy))
    print(f"{len(r)} images with one face from each: quartiles {q}")
    print(f"framing: scale {mp.scale / rm:.4f}, dx {(mp.dx - oxm) / rm:.4f}, "
          f"dy {(mp.dy - oym) / rm:.4f}")


if __name__ == "__main__":
    main()
