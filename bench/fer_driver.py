"""The peer, as its users run it: fer's FER().detect_emotions on every Nth frame of a video.

Runs inside a throwaway virtual environment that holds one fer version (made by bench/run.py);
never imports videmo. Prints one JSON object: loop seconds (decode + detect + score, after the
detector is built, like videmo's per-clip seconds), CPU seconds, and per sampled frame the
number of faces and the top emotion of the largest face.

    python fer_driver.py VIDEO EVERY_N [--mtcnn] [--max-frames=K]

``--max-frames=K`` stops after K sampled frames (bench/run.py measures start-up with K = 1).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")


def main() -> None:
    video, every_n, use_mtcnn = sys.argv[1], int(sys.argv[2]), "--mtcnn" in sys.argv
    limit = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--max-frames=")),
                 None)
    import cv2

    try:
        from fer import FER  # fer 22.4.0
    except ImportError:
        from fer.fer import FER  # fer 25.10.3

    t_build = time.perf_counter()
    detector = FER(mtcnn=use_mtcnn)
    build_s = time.perf_counter() - t_build
    cap = cv2.VideoCapture(video)
    frames = []
    c0, t0 = time.process_time(), time.perf_counter()
    index = 0
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()  # fer's users (and fer.Video) read every frame
        if not ok:
            break
        if index % every_n == 0:
            faces = detector.detect_emotions(frame)
            top = None
            if faces:
                largest = max(faces, key=lambda f: f["box"][2] * f["box"][3])
                top = max(largest["emotions"], key=largest["emotions"].get)
            frames.append({"frame": index, "faces": len(faces), "top": top})
        index += 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    cap.release()
    import importlib.metadata as md

    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "build_seconds": build_s,
                      "frames_decoded": index, "frames": frames,
                      "fer": md.version("fer"), "mtcnn": use_mtcnn}))


if __name__ == "__main__":
    main()
