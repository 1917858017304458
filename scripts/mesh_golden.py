"""Write tests/data/mesh_golden.npz: the real MediaPipe Face Landmarker on the sample frames.

videmo runs the three models of MediaPipe's face_landmarker.task itself (videmo.extract.features
.mesh) on ai-edge-litert, because the ``mediapipe`` wheel brings a second OpenCV, TensorFlow,
unbounded threads, native log noise and a usage-statistics upload. This script is how we prove
that our re-implementation of its graphs gives the same numbers: it runs the real ``mediapipe``
once, in a throwaway virtual environment outside the repository's, and records its outputs.

Run it from the repository root with videmo's own Python (the one that runs the tests):

    /work/main/.venv/bin/python scripts/mesh_golden.py            # or: python scripts/...

It (1) decodes frames FRAMES of every clip in data/sample/crema-d with this Python's OpenCV,
exactly as tests/test_mesh.py does, (2) creates /tmp/videmo-mesh-golden/venv (reused if present)
and ``pip install mediapipe==1.2.2`` there (it pulls opencv-contrib-python; none of that touches
videmo's environment), (3) runs this file inside that venv with ``--inner`` on the decoded frames,
with ``https_proxy`` pointing at a closed local port so mediapipe's usage-statistics post fails at
once, and (4) writes tests/data/mesh_golden.npz:

- ``clip`` (n,) str, ``frame`` (n,) int: which frames, ``frame_sha256`` (n,) str of the BGR bytes
- ``landmarks`` (n, 478, 3) float32: x, y in pixels, z times the image width (MediaPipe's scale)
- ``blendshapes`` (n, 52) float32 in MediaPipe's order, ``blendshape_names`` (52,) str
- ``matrix`` (n, 4, 4) float32: the facial transformation matrix
- ``det_box`` (n, 4) float32 x, y, w, h pixels; ``det_keypoints`` (n, 6, 2) pixels; ``det_score``
  (n,): the FaceDetector task on the bundle's face_detector.tflite (its first detection)
- ``has_face`` (n,) bool: whether the landmarker found a face (rows without one hold NaN)
- ``mediapipe_version`` str

Options: IMAGE running mode, one face, min confidences 0.5 (MediaPipe's defaults), blendshapes
and transformation matrices on; the detector task with min_suppression_threshold 0.5, the value
the landmarker's own detector graph uses.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "crema-d"
BUNDLE = REPO / "src" / "videmo" / "models" / "face_landmarker.task"
OUT = REPO / "tests" / "data" / "mesh_golden.npz"
WORK = Path("/tmp/videmo-mesh-golden")
MEDIAPIPE = "mediapipe==1.2.2"
FRAMES = (0, 25, 50)


def decode(path: Path, wanted: tuple[int, ...]):
    """The wanted frames of a clip, decoded sequentially with cv2.VideoCapture.read()."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out, index = {}, 0
    while index <= max(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            out[index] = frame
        index += 1
    cap.release()
    missing = set(wanted) - set(out)
    if missing:
        raise SystemExit(f"{path}: frames {sorted(missing)} could not be decoded")
    return out


def outer() -> None:
    import numpy as np

    clips = sorted(SAMPLE.glob("*.flv"))
    if not clips:
        raise SystemExit(f"no sample clips in {SAMPLE}")
    names, frames, images = [], [], []
    for path in clips:
        for index, image in decode(path, FRAMES).items():
            names.append(path.stem)
            frames.append(index)
            images.append(image)
    WORK.mkdir(parents=True, exist_ok=True)
    frames_file = WORK / "frames.npz"
    np.savez(frames_file, clip=np.array(names), frame=np.array(frames),
             images=np.stack(images))
    venv = WORK / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", MEDIAPIPE], check=True)
    env = dict(os.environ, https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
               PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), __file__, "--inner", str(frames_file), str(OUT)], check=True,
                   env=env, cwd=WORK)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


def inner(frames_file: Path, out: Path) -> None:
    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks.python import BaseOptions, vision

    data = np.load(frames_file)
    images = data["images"]
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(BUNDLE) as z:
            detector_path = Path(tmp) / "face_detector.tflite"
            detector_path.write_bytes(z.read("face_detector.tflite"))
        landmarker = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(BUNDLE)),
            running_mode=vision.RunningMode.IMAGE, num_faces=1,
            min_face_detection_confidence=0.5, min_face_presence_confidence=0.5,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True))
        detector = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(detector_path)),
            running_mode=vision.RunningMode.IMAGE, min_detection_confidence=0.5,
            min_suppression_threshold=0.5))
        n = len(images)
        landmarks = np.full((n, 478, 3), np.nan, np.float32)
        blendshapes = np.full((n, 52), np.nan, np.float32)
        matrix = np.full((n, 4, 4), np.nan, np.float32)
        det_box = np.full((n, 4), np.nan, np.float32)
        det_kp = np.full((n, 6, 2), np.nan, np.float32)
        det_score = np.full(n, np.nan, np.float32)
        has_face = np.zeros(n, bool)
        names: list[str] = []
        sha = []
        for i, bgr in enumerate(images):
            sha.append(hashlib.sha256(np.ascontiguousarray(bgr).tobytes()).hexdigest())
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            h, w = rgb.shape[:2]
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            result = landmarker.detect(image)
            if result.face_landmarks:
                has_face[i] = True
                landmarks[i] = [(p.x * w, p.y * h, p.z * w) for p in result.face_landmarks[0]]
                cats = result.face_blendshapes[0]
                names = [c.category_name for c in cats]
                blendshapes[i] = [c.score for c in cats]
                matrix[i] = np.asarray(result.facial_transformation_matrixes[0], np.float32)
            found = detector.detect(image).detections
            if found:
                d = found[0]
                b = d.bounding_box
                det_box[i] = (b.origin_x, b.origin_y, b.width, b.height)
                det_kp[i] = [(k.x * w, k.y * h) for k in d.keypoints]
                det_score[i] = d.categories[0].score
        landmarker.close()
        detector.close()
    np.savez_compressed(
        out, clip=data["clip"], frame=data["frame"], frame_sha256=np.array(sha),
        landmarks=landmarks, blendshapes=blendshapes, blendshape_names=np.array(names),
        matrix=matrix, det_box=det_box, det_keypoints=det_kp, det_score=det_score,
        has_face=has_face, mediapipe_version=np.array(mp.__version__))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inner", nargs=2, metavar=("FRAMES", "OUT"), type=Path,
                        help="(internal) run inside the mediapipe venv")
    args = parser.parse_args()
    if args.inner:
        inner(*args.inner)
    else:
        outer()


if __name__ == "__main__":
    main()
