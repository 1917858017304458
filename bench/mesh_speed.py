"""Speed of the face mesh engine on one core: ms per face, and BlazeFace against Haar.

    taskset -c 1 .venv/bin/python bench/mesh_speed.py [--repeat 3] [--video V [--every-n 20]]

Decodes every frame of the six CREMA-D sample clips (480x360) once, then times, with
run.threads = 1 (OpenCV and LiteRT): BlazeFace (videmo.extract.detectors.blazeface) and the Haar
cascade (videmo.extract.detectors.haar.HaarDetector, fer's parameters, grey conversion
included) over all frames
(frames per second), and the mesh of each BlazeFace face split into its stages (landmarks model
with its crop, blendshapes model, transformation matrix and pose), and the shipped frame models
(emotions from the mesh: ``load_frame_model``) per face. ``--video``: every ``--every-n``th frame
of that video instead (e.g. the 720p TV scene of bench/run.py). Each figure is the best of
``--repeat`` passes. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from videmo import runtime
from videmo.extract.detectors.haar import HaarDetector
from videmo.extract.features import face_geometry
from videmo.extract.features.frame_model import load_frame_model
from videmo.extract.features.mesh import FaceMesh, roi_from_detection
from videmo.models import FRAME_MODEL_FILES

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "crema-d"


def frames(video: Path | None = None, every_n: int = 1) -> list[np.ndarray]:
    out = []
    for path in [video] if video else sorted(SAMPLE.glob("*.flv")):
        cap = cv2.VideoCapture(str(path))
        i = 0
        while cap.grab():
            if i % every_n == 0:
                out.append(cap.retrieve()[1])
            i += 1
        cap.release()
    return out


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--video", type=Path, help="a video instead of the sample corpus")
    parser.add_argument("--every-n", type=int, default=20, help="with --video (default 20)")
    args = parser.parse_args()
    runtime.configure_threads(1)
    images = frames(args.video, args.every_n if args.video else 1)
    mesh = FaceMesh(threads=1)
    haar = HaarDetector()
    mesh.detect(images[:3])
    haar.detect(images[:3])
    t_blaze = best(lambda: [mesh.detector.detect_one(f) for f in images], args.repeat)
    t_haar = best(lambda: [haar.detect([f]) for f in images], args.repeat)
    faces = [(f, d[0]) for f, d in zip(images, mesh.detect(images), strict=True) if d]
    h, w = images[0].shape[:2]
    landmarks = [mesh.landmarks(f, roi_from_detection(face))[0] for f, face in faces]
    t_lm = best(lambda: [mesh.landmarks(f, roi_from_detection(face)) for f, face in faces],
                args.repeat)
    t_bs = best(lambda: [mesh.blendshapes(lm) for lm in landmarks], args.repeat)
    t_geo = best(lambda: [face_geometry.head_pose(face_geometry.transformation_matrix(lm, w, h))
                          for lm in landmarks], args.repeat)
    t_all = best(lambda: [mesh.mesh(f, face) for f, face in faces], args.repeat)
    n, k = len(images), len(faces)
    results = [r for r in (mesh.mesh(f, face) for f, face in faces) if r is not None]
    frame_models = {}
    for name in FRAME_MODEL_FILES:
        model = load_frame_model(name)
        model.predict(results[:1])  # the first call builds the graph
        t = best(lambda m=model: [m.predict([r]) for r in results], args.repeat)
        frame_models[name] = round(1000 * t / max(1, len(results)), 2)
    print(json.dumps({
        "host": platform.node(), "cpu": platform.processor() or platform.machine(),
        "affinity": sorted(os.sched_getaffinity(0)), "frames": n, "faces": k,
        "frame_size": f"{w}x{h}",
        "blazeface_fps": round(n / t_blaze, 1), "haar_fps": round(n / t_haar, 1),
        "mesh_ms_per_face": round(1000 * t_all / k, 2),
        "landmarks_ms": round(1000 * t_lm / k, 2), "blendshapes_ms": round(1000 * t_bs / k, 2),
        "geometry_ms": round(1000 * t_geo / k, 2),
        "detect_plus_mesh_ms_per_frame": round(1000 * (t_blaze / n + t_all / k), 2),
        "frame_models_ms": frame_models,
    }, indent=1))


if __name__ == "__main__":
    main()
