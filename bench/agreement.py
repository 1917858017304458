"""Two detectors on real footage, frame by frame: which faces each finds that the other misses.

    python bench/agreement.py VIDEO [VIDEO ...] --a mtcnn --b "yunet scale 0.5" \\
        [--every-n 20] [--out bench/results/agreement.json] [--crops DIR]

No labels: where the face-size benchmark pastes faces of known size, this runs the detectors on
recordings as they are (broadcast scenes, the fer videos) and matches their boxes (a match:
centres within half the smaller box's width, widths within 2x). Counts per face-width bin of
the faces each finds, how many of them the other finds too, and the faces only one finds;
``--crops`` writes each unmatched face (box and surroundings, outlined) as a JPEG to look at.
Detector names are bench/face_size.py's (a name and its options). One thread, every
``--every-n``th frame.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from face_size import DETECTORS, ROOT  # noqa: E402

from videmo.config import from_dict  # noqa: E402
from videmo.extract.corpus import Clip  # noqa: E402
from videmo.extract.detectors import detect_faces, make_detector  # noqa: E402
from videmo.extract.frames import sample_frames  # noqa: E402

BINS = (0, 24, 32, 48, 96, 10_000)
LABELS = [f"{lo}-{hi - 1} px" if hi < BINS[-1] else f">= {lo} px"
          for lo, hi in zip(BINS, BINS[1:], strict=False)]


def same(a, b) -> bool:
    dx = a.x + a.w / 2 - (b.x + b.w / 2)
    dy = a.y + a.h / 2 - (b.y + b.h / 2)
    return math.hypot(dx, dy) <= min(a.w, b.w) / 2 and 0.5 <= a.w / b.w <= 2.0


def bin_of(w: int) -> str:
    return next(label for label, hi in zip(LABELS, BINS[1:], strict=True) if w < hi)


def crop_of(frame: np.ndarray, f, colour) -> np.ndarray:
    h, w = frame.shape[:2]
    side = int(max(f.w, f.h) * 3)
    cx, cy = f.x + f.w // 2, f.y + f.h // 2
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    out = frame[y0:min(h, y0 + side), x0:min(w, x0 + side)].copy()
    cv2.rectangle(out, (f.x - x0, f.y - y0), (f.x - x0 + f.w, f.y - y0 + f.h), colour, 1)
    k = max(1, 160 // max(1, out.shape[1]))
    return cv2.resize(out, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--a", default="mtcnn", choices=list(DETECTORS))
    ap.add_argument("--b", default="yunet scale 0.5", choices=list(DETECTORS))
    ap.add_argument("--every-n", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--crops", type=Path, default=None, help="write unmatched faces here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    dets = {k: make_detector(from_dict({"faces": DETECTORS[n]}), 1)
            for k, n in (("a", args.a), ("b", args.b))}
    counts: dict = {}
    seconds = {"a": 0.0, "b": 0.0}
    n_frames = 0
    sampling = from_dict({"sampling": {"every_n": args.every_n}})  # the pipeline's sampler
    if args.crops:
        args.crops.mkdir(parents=True, exist_ok=True)
    for video in args.videos:
        for sampled in sample_frames(Clip(video.stem, video), sampling):
            index, frame = sampled.index, sampled.image
            n_frames += 1
            found = {}
            for k, det in dets.items():
                t0 = time.perf_counter()
                (found[k],) = detect_faces(det, [frame])
                seconds[k] += time.perf_counter() - t0
            for k, other in (("a", "b"), ("b", "a")):
                for f in found[k]:
                    row = counts.setdefault(k, {}).setdefault(bin_of(f.w), {"found": 0,
                                                                             "also": 0})
                    row["found"] += 1
                    if any(same(f, g) for g in found[other]):
                        row["also"] += 1
                    elif args.crops:
                        name = f"{video.stem}-{index:06d}-only-{k}-{f.x}-{f.y}-{f.w}.jpg"
                        cv2.imwrite(str(args.crops / name),
                                    crop_of(frame, f, (0, 0, 255) if k == "a" else (0, 255, 0)))
    names = {"a": args.a, "b": args.b}
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d"),
              "machine": f"{platform.node()} {platform.machine()}",
              "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
              "command": "python bench/agreement.py " + " ".join(sys.argv[1:]),
              "videos": [v.name for v in args.videos], "frames": n_frames,
              "every_n": args.every_n, "detectors": names,
              "ms_per_frame": {names[k]: round(1000 * s / max(1, n_frames), 1)
                               for k, s in seconds.items()},
              "faces": {names[k]: v for k, v in counts.items()}}
    print(f"{n_frames} frames of {', '.join(result['videos'])}, every {args.every_n}th\n")
    print("| detector | face width | faces found | also found by the other |\n|---|---|---|---|")
    for k, other in (("a", "b"), ("b", "a")):
        for b in LABELS:
            row = counts.get(k, {}).get(b)
            if row is None:
                continue
            share = row["also"] / row["found"]
            print(f"| {names[k]} | {b} | {row['found']} | {row['also']} ({share:.0%}) "
                  f"by {names[other]} |")
    print(f"\nms a frame (one thread): {result['ms_per_frame']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
