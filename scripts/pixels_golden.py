"""Golden inputs and outputs of a shipped pixel model (emotions.model: pixels, pixels_real, ...).

From each of the six sample clips (data/sample/crema-d, CREMA-D, ODbL) three evenly spaced
frames; BlazeFace's faces there; each face's box, eye angle and 48x48 crop as the run makes
them (:func:`videmo.extract.features.pixel_model.crops_for`, framing ``mediapipe``, aligned);
and the shipped model's probabilities for the crops, with LiteRT's default (XNNPACK) kernels
and with its reference kernels (``OpResolverType.BUILTIN_REF``), whose difference bounds how far
kernels on another CPU may move the numbers (tests/test_pixels.py derives its tolerance from
it). Writes tests/data/pixels_golden.npz (``pixels``) or tests/data/<model>_golden.npz. Rerun
after shipping a new model.

    python scripts/pixels_golden.py [--model pixels_real | pixels_distilled]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from videmo.extract.detectors.blazeface import BlazeFaceDetector
from videmo.extract.features import pixel_model as pm
from videmo.models import model_path, sha256_of

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="pixels", choices=tuple(pm.PIXEL_MODELS))
    args = ap.parse_args()
    out = REPO / "tests" / "data" / f"{args.model}_golden.npz"
    detector = BlazeFaceDetector(1)
    framing = pm.framing_for("mediapipe")
    boxes, angles, crops, clips = [], [], [], []
    for clip in sorted((REPO / "data" / "sample" / "crema-d").glob("*.flv")):
        cap = cv2.VideoCapture(str(clip))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for i in np.linspace(5, n - 6, 3).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, frame = cap.read()
            assert ok, (clip, i)
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            for face in detector.detect([frame], 1.0)[0]:
                boxes.append(face.box)
                angles.append(pm.face_angle(face, grey, None))
                crops.append(pm.crops_for(frame, [face], framing, True)[0])
                clips.append(f"{clip.stem}@{i}")
    crops_a = np.stack(crops)
    default = pm.PixelModel.load(name=args.model).predict(crops_a)
    path = model_path(pm.model_files(args.model)[0])
    reference = pm.PixelModel(path, {}, 1, reference_kernels=True).predict(crops_a)
    spread = float(np.abs(default - reference).max())
    np.savez_compressed(out, crops=crops_a, boxes=np.array(boxes, np.float64),
                        angles=np.array(angles, np.float64), clips=np.array(clips),
                        probabilities=default, reference=reference,
                        model_sha256=np.array(sha256_of(path)))
    print(f"{len(crops_a)} faces; default vs reference kernels: max |diff| {spread:.2e}; "
          f"wrote {out}")


if __name__ == "__main__":
    main()
