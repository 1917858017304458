"""A tiny FER2013-shaped image set, made when the tests run from the CREMA-D sample clips.

48 grey 48x48 faces in FER2013's folder layout (``<emotion>/Training_<n>.jpg``,
``<emotion>/PrivateTest_<n>.jpg``; no PublicTest, like the FER2013 copy videmo trains on): from
each of the six clips of actor 1001 in data/sample/crema-d (CREMA-D, ODbL), 8 evenly spaced
frames; BlazeFace's best face, its box squared on the long side and enlarged by 10%, grey,
resized to 48x48 (cv2.INTER_AREA). The first 6 of a clip are Training, the last 2 PrivateTest.
It exercises ``videmo train`` end to end and says nothing about accuracy. Nothing of FER2013
itself is in the repository: it has no open licence.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIPS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
         "SAD": "sad"}
PER_CLIP, TRAINING = 8, 6


def build(out: Path) -> Path:
    """Write the set into ``out`` (with a NOTE.md saying where it comes from); returns ``out``."""
    from videmo.extract.features.mesh import FaceMesh

    src = REPO / "data" / "sample" / "crema-d"
    mesh = FaceMesh(1)
    n = 0
    for code, emotion in CLIPS.items():
        cap = cv2.VideoCapture(str(src / f"1001_DFA_{code}_XX.flv"))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        picks = np.linspace(5, len(frames) - 6, PER_CLIP).round().astype(int)
        for k, i in enumerate(picks):
            face = mesh.detect([frames[i]])[0][0]
            side = max(face.w, face.h) * 1.1
            cx, cy = face.x + face.w / 2, face.y + face.h / 2
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            crop = frames[i][max(y0, 0):y0 + int(side), max(x0, 0):x0 + int(side)]
            grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48),
                              interpolation=cv2.INTER_AREA)
            n += 1
            split = "Training" if k < TRAINING else "PrivateTest"
            path = out / emotion / f"{split}_{n}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), grey, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (out / "NOTE.md").write_text(__doc__, encoding="utf-8")
    return out
