"""Write tests/data/blazeface_full_golden.npz: the real MediaPipe full-range face detector on
the sample frames and on wide shots made of them.

videmo runs ``face_detection_full_range_sparse.tflite`` itself on ai-edge-litert
(videmo.extract.detectors.blazeface_full); this script records what MediaPipe's own graph
(``mediapipe==0.10.14``, the last wheel that carries the file: ``solutions.face_detection``
with ``model_selection=1``) returns, so tests/test_blazeface_full.py can hold the
re-implementation to it. Run from the repository root with videmo's Python:

    python scripts/blazeface_full_golden.py [--wheel mediapipe-0.10.14-....whl]

It decodes frames FRAMES of every sample clip (data/sample/crema-d) and builds, from each clip's
frame 25, a wide shot: the frame scaled to 0.75 on a mid-grey 960x540 canvas, and the same frame
as a square tile (the frame's central 360x360): the images of the whole-frame path and of a tile.
It installs mediapipe 0.10.14 with --no-deps (plus numpy<2, protobuf<5, absl-py, attrs,
flatbuffers, opencv-python-headless, matplotlib) in /tmp/videmo-bff-golden/venv, outside videmo's
environment, runs itself there with ``--inner`` and writes, per image, every detection
(min_detection_confidence 0.5): ``box`` (k, 4) x, y, w, h pixels, ``keypoints`` (k, 6, 2)
pixels, ``score`` (k,), ``image`` (k,) the image index, plus ``images`` (the BGR images
themselves are rebuilt by the test: their sha256 ``image_sha256``), ``name`` and
``mediapipe_version``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "crema-d"
OUT = REPO / "tests" / "data" / "blazeface_full_golden.npz"
WORK = Path("/tmp/videmo-bff-golden")
FRAMES = (0, 25, 50)
DEPS = ("numpy<2", "protobuf<5", "absl-py", "attrs", "flatbuffers", "opencv-python-headless",
        "matplotlib")


def images() -> tuple[list[str], list]:
    """The golden images (names, BGR arrays), as tests/test_blazeface_full.py rebuilds them."""
    import cv2
    import numpy as np

    names, out = [], []
    for path in sorted(SAMPLE.glob("*.flv")):
        cap = cv2.VideoCapture(str(path))
        index = 0
        while index <= max(FRAMES):
            ok, frame = cap.read()
            if not ok:
                raise SystemExit(f"{path}: frame {index} could not be decoded")
            if index in FRAMES:
                names.append(f"{path.stem}:{index}")
                out.append(frame)
            if index == 25:
                canvas = np.full((540, 960, 3), 128, np.uint8)
                small = cv2.resize(frame, (360, 270), interpolation=cv2.INTER_AREA)
                canvas[200:470, 500:860] = small
                names.append(f"{path.stem}:25:wide")
                out.append(canvas)
                names.append(f"{path.stem}:25:tile")
                out.append(np.ascontiguousarray(frame[:, 60:420]))
            index += 1
        cap.release()
    return names, out


def outer(wheel: Path) -> None:
    import numpy as np

    names, imgs = images()
    WORK.mkdir(parents=True, exist_ok=True)
    frames_file = WORK / "images.npz"
    np.savez(frames_file, *imgs)
    venv = WORK / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                       check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *DEPS], check=True)
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), __file__, "--inner", str(frames_file), str(OUT)], check=True,
                   env=env, cwd=WORK)
    data = dict(np.load(OUT))
    data["name"] = np.array(names)
    data["image_sha256"] = np.array([hashlib.sha256(np.ascontiguousarray(i).tobytes())
                                     .hexdigest() for i in imgs])
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(data['score'])} detections on "
          f"{len(imgs)} images")


def inner(frames_file: Path, out: Path) -> None:
    import mediapipe as mp
    import numpy as np
    from mediapipe.python.solutions import face_detection

    data = np.load(frames_file)
    imgs = [data[f"arr_{i}"] for i in range(len(data.files))]
    boxes, kps, scores, which = [], [], [], []
    with face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        for i, bgr in enumerate(imgs):
            h, w = bgr.shape[:2]
            result = det.process(np.ascontiguousarray(bgr[:, :, ::-1]))
            for d in result.detections or []:
                b = d.location_data.relative_bounding_box
                boxes.append([b.xmin * w, b.ymin * h, b.width * w, b.height * h])
                kps.append([[k.x * w, k.y * h] for k in d.location_data.relative_keypoints])
                scores.append(d.score[0])
                which.append(i)
    np.savez(out, box=np.array(boxes, np.float32).reshape(-1, 4),
             keypoints=np.array(kps, np.float32).reshape(-1, 6, 2),
             score=np.array(scores, np.float32), image=np.array(which, np.int64),
             mediapipe_version=np.array(mp.__version__))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inner", nargs=2, type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--wheel", type=Path, default=Path("/tmp/mp").glob("mediapipe-0.10.14-*.whl"),
                    help="the mediapipe 0.10.14 wheel (pip download mediapipe==0.10.14 --no-deps)")
    args = ap.parse_args()
    if args.inner:
        inner(*args.inner)
        return
    wheel = args.wheel if isinstance(args.wheel, Path) else next(args.wheel, None)
    if wheel is None:
        raise SystemExit("no mediapipe 0.10.14 wheel: pass --wheel")
    outer(wheel)


if __name__ == "__main__":
    main()
