"""Speed of the face mesh engine on one core: ms per face, and BlazeFace against Haar.

    taskset -c 1 .venv/bin/python bench/mesh_speed.py [--repeat 3]

Decodes every frame of the six CREMA-D sample clips (480x360) once, then times, with
run.threads = 1 (OpenCV and LiteRT): BlazeFace (videmo.extract.detectors.blazeface) and the Haar
cascade (videmo.extract.detectors.haar.HaarDetector, fer's parameters, grey conversion
included) over all frames
(frames per second), and the mesh of each BlazeFace face split into its stages (landmarks model
with its crop, blendshapes model, transformation matrix and pose). Each figure is the best of
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
from videmo.extract.features.mesh import FaceMesh, roi_from_detection

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "crema-d"


def frames() -> list[np.ndarray]:
    out = []
    for path in sorted(SAMPLE.glob("*.flv")):
        cap = cv2.VideoCapture(str(path))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            out.append(frame)
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
    args = parser.parse_args()
    runtime.configure_threads(1)
    images = frames()
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
    print(json.dumps({
        "host": platform.node(), "cpu": platform.processor() or platform.machine(),
        "affinity": sorted(os.sched_getaffinity(0)), "frames": n, "faces": k,
        "frame_size": f"{w}x{h}",
        "blazeface_fps": round(n / t_blaze, 1), "haar_fps": round(n / t_haar, 1),
        "mesh_ms_per_face": round(1000 * t_all / k, 2),
        "landmarks_ms": round(1000 * t_lm / k, 2), "blendshapes_ms": round(1000 * t_bs / k, 2),
        "geometry_ms": round(1000 * t_geo / k, 2),
        "detect_plus_mesh_ms_per_frame": round(1000 * (t_blaze / n + t_all / k), 2),
    }, indent=1))


if __name__ == "__main__":
    main()
