"""Face-size benchmark: which detector finds small faces in 720p and 1080p frames, how well fer
and the pixel models label them, what the mesh makes of them, and at what cost.

    nice .venv/bin/python bench/face_size.py --photos FACIAL_EXPRESSIONS [--backgrounds DIR]
        [--per-emotion 6] [--out bench/results/face-size.json]

Real faces, pasted at benchmark time (nothing is written but the JSON of numbers):
- photos of muxspace/facial_expressions (Apache-2.0; ``--photos``: a checkout, or any folder
  with its ``data/legend.csv`` and ``images/``), ``--per-emotion`` of each of the seven emotions
  (seed 0), never a person of ``--exclude`` (the project's evaluation identities) nor the
  unnamed ``facial-expressions_*`` photos; plus 2 frames of each sample clip
  (data/sample/crema-d, labelled by its file name);
- each face's reference box is the short-range BlazeFace's on the original (a close-up); the
  face and its surroundings (1.8x the box, an elliptic feathered edge) are scaled so that box
  is ``W`` px wide, W in 16 20 24 32 48 64 96 128, and pasted, six to a frame on a 3x2 grid
  with a random offset, into 1280x720 and 1920x1080 backgrounds;
- backgrounds: frames of the videos in ``--backgrounds`` (default ../shared/data/fer-videos)
  and of the sample clips, their faces blurred away (the short-range BlazeFace's box, doubled,
  blurred with sigma 0.4 box), scaled and cropped to fill the frame;
- head turn: each face also mirrored and rolled by 30 degrees at 32 and 64 px (720p).

A pasted face is found when a detection's centre lies within half its reference width of the
reference centre and its width is 0.5-2x the reference width; every other detection is false.
False detections are also counted on the face-free backgrounds alone. Accuracy: the share of
all pasted faces whose found box gets the right one of seven emotions (a missed face counts as
wrong), with fer (tflite), the pixel model (framed for the detector, with flip) and pixels_real
(framed for the detector, no flip: the default and recommended setting); the
ceiling is each model on the original photo with the reference box. Mesh: the share of found
faces the face mesh reads (presence >= 0.5). Cost: ms per face-free frame, one thread, median
and range of 5 passes. Prints a Markdown table (BENCHMARKS.md, Face size) and writes the JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import random
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from videmo.config import from_dict
from videmo.extract.detectors import make_detector
from videmo.extract.detectors.base import Face
from videmo.extract.detectors.blazeface import BlazeFaceDetector
from videmo.extract.features.emotions import TfliteModel, crop_faces
from videmo.extract.features.mesh import FaceMesh
from videmo.extract.features.pixel_model import PixelModel, crops_for, framing_for
from videmo.schema import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "crema-d"
# ../shared beside the checkout (or beside the folder of worktrees)
SHARED = next((p / "shared" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()),
              ROOT.parent / "shared")
WIDTHS = (16, 20, 24, 32, 48, 64, 96, 128)
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
LEGEND = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
          "sadness": "sad", "surprise": "surprise", "neutral": "neutral"}
CREMA = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
         "SAD": "sad"}
# name -> faces options (the detectors compared; each config's name is the table's row)
DETECTORS = {
    "haar": {"detector": "haar"},
    "haar min_size 20": {"detector": "haar", "haar": {"min_size": 20}},
    "mtcnn": {"detector": "mtcnn"},
    "mediapipe": {"detector": "mediapipe"},
    "blazeface_full tiles 0": {"detector": "blazeface_full", "blazeface_full": {"tiles": 0}},
    "blazeface_full tiles 2": {"detector": "blazeface_full", "blazeface_full": {"tiles": 2}},
    "blazeface_full tiles 4": {"detector": "blazeface_full", "blazeface_full": {"tiles": 4}},
    "yunet": {"detector": "yunet"},
    "yunet min_score 0.9": {"detector": "yunet", "yunet": {"min_score": 0.9}},
    "yunet scale 0.75": {"detector": "yunet", "yunet": {"scale": 0.75}},
    "yunet scale 0.5": {"detector": "yunet", "yunet": {"scale": 0.5}},
}


def read_frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    out = []
    for i in range(n):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int((i + 0.5) * total / n))
        ok, frame = cap.read()
        if ok:
            out.append(frame)
    cap.release()
    return out


def faces_of(photos: Path, per_emotion: int, exclude: list[str], ref: BlazeFaceDetector):
    """[(image, reference Face, emotion)] from the photos, then the sample clips; and how many
    come from the photos."""
    excluded = tuple(e.lower() + "_" for e in exclude)
    by: dict[str, list[str]] = {}
    with open(photos / "data" / "legend.csv", newline="") as f:
        for row in csv.DictReader(f):
            img, emo = row["image"], LEGEND.get(row["emotion"].strip().lower())
            if emo and not img.lower().startswith(excluded + ("facial-expressions",)):
                by.setdefault(emo, []).append(img)
    rnd = random.Random(0)
    out = []
    for emo in sorted(by):
        names = sorted(by[emo])
        rnd.shuffle(names)
        taken = 0
        for name in names:
            if taken == per_emotion:
                break
            path = photos / "images" / name
            image = cv2.imread(str(path)) if path.is_file() else None
            if image is None:
                continue
            found = ref.detect_one(image)
            if found and found[0].w >= 40:
                out.append((image, found[0], emo))
                taken += 1
    photos_found = len(out)
    for clip in sorted(SAMPLE.glob("*.flv")):
        for frame in read_frames(clip, 2):
            found = ref.detect_one(frame)
            if found:
                out.append((frame, found[0], CREMA[clip.stem.split("_")[2]]))
    return out, photos_found


def backgrounds(folder: Path, ref: BlazeFaceDetector) -> list[np.ndarray]:
    """Face-free scenes: frames with every face the short-range BlazeFace finds blurred away."""
    frames = []
    for path in sorted(folder.glob("*.mp4")) + sorted(SAMPLE.glob("*.flv"))[:2]:
        frames += read_frames(path, 3)
    out = []
    for frame in frames:
        frame = frame.copy()
        for f in ref.detect_one(frame):
            cx, cy, s = f.x + f.w / 2, f.y + f.h / 2, max(f.w, f.h)
            x0, y0 = max(0, int(cx - s)), max(0, int(cy - s))
            x1, y1 = min(frame.shape[1], int(cx + s)), min(frame.shape[0], int(cy + s))
            frame[y0:y1, x0:x1] = cv2.GaussianBlur(frame[y0:y1, x0:x1], (0, 0), 0.4 * s)
        out.append(frame)
    return out


def fill(background: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    bh, bw = background.shape[:2]
    k = max(w / bw, h / bh)
    big = cv2.resize(background, (math.ceil(bw * k), math.ceil(bh * k)),
                     interpolation=cv2.INTER_LINEAR)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y0:y0 + h, x0:x0 + w].copy()


def patch_of(image: np.ndarray, face: Face, width: int, mirror: bool, roll: float):
    """The face and its surroundings (1.8x the reference box), scaled so the reference box is
    ``width`` px wide (mirrored, rolled), an elliptic feathered alpha mask that is zero where
    the photo ends, and the reference box's centre within the patch."""
    if mirror:
        image = cv2.flip(image, 1)
        face = Face(image.shape[1] - face.x - face.w, face.y, face.w, face.h)
    k = width / face.w
    cx, cy, half = face.x + face.w / 2, face.y + face.h / 2, 0.9 * max(face.w, face.h)
    side = max(4, round(2 * half * k))
    m = cv2.getRotationMatrix2D((cx, cy), roll, k)
    m[0, 2] += side / 2 - cx
    m[1, 2] += side / 2 - cy
    patch = cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_AREA,
                           borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.float32), m, (side, side),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.40), int(side * 0.47)), 0, 0, 360,
                1.0, -1)
    mask = cv2.GaussianBlur(mask * inside, (0, 0), max(1.0, side * 0.04))[..., None]
    return patch, mask, side / 2


def shots(faces, bgs, size, width, rnd, first):
    """Wide shots: each sample clip frame (faces[first:]) whole, shrunk so its face is
    ``width`` px wide, at a random place of a background (the speaker with head, shoulders and
    room, as a wide shot shows them): [(frame, [(truth Face, face index)])]."""
    w, h = size
    out = []
    for n, i in enumerate(range(first, len(faces))):
        image, ref, _ = faces[i]
        k = width / ref.w
        small = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        frame = fill(bgs[n % len(bgs)], size)
        x0, y0 = rnd.randint(0, max(0, w - sw)), rnd.randint(0, max(0, h - sh))
        frame[y0:y0 + sh, x0:x0 + sw] = small[:h - y0, :w - x0]
        truth = Face(round(x0 + ref.x * k), round(y0 + ref.y * k), round(ref.w * k),
                     round(ref.h * k))
        out.append((frame, [(truth, i)]))
    return out


def scenes(faces, bgs, size, width, rnd, mirror=False, roll=0.0):
    """Frames with six pasted faces each: [(frame, [(truth Face, face index)])]."""
    w, h = size
    cw, ch = w // 3, h // 2
    order = list(range(len(faces)))
    out = []
    for start in range(0, len(order), 6):
        frame = fill(bgs[(start // 6) % len(bgs)], size).astype(np.float32)
        truths = []
        for cell, i in enumerate(order[start:start + 6]):
            image, ref, _ = faces[i]
            patch, mask, c = patch_of(image, ref, width, mirror, roll)
            side = patch.shape[0]
            gx, gy = (cell % 3) * cw, (cell // 3) * ch
            x0 = gx + rnd.randint(0, max(0, cw - side))
            y0 = gy + rnd.randint(0, max(0, ch - side))
            region = frame[y0:y0 + side, x0:x0 + side]
            rh, rw = region.shape[:2]
            p, a = patch[:rh, :rw], mask[:rh, :rw]
            region[:] = region * (1 - a) + p * a
            tw = width
            th = ref.h * width / ref.w
            truths.append((Face(round(x0 + c - tw / 2), round(y0 + c - th / 2), round(tw),
                                round(th)), i))
        out.append((frame.astype(np.uint8), truths))
    return out


def matches(det: Face, truth: Face) -> bool:
    dx = det.x + det.w / 2 - (truth.x + truth.w / 2)
    dy = det.y + det.h / 2 - (truth.y + truth.h / 2)
    return math.hypot(dx, dy) <= truth.w / 2 and 0.5 <= det.w / truth.w <= 2.0


def timed(detector, frames, repeats=5) -> dict:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for f in frames:
            detector.detect([f], 1.0)
        runs.append((time.perf_counter() - t0) / len(frames) * 1000)
    return {"median": round(statistics.median(runs), 1), "min": round(min(runs), 1),
            "max": round(max(runs), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, required=True,
                    help="muxspace/facial_expressions checkout (data/legend.csv, images/)")
    ap.add_argument("--backgrounds", type=Path, default=SHARED / "data" / "fer-videos")
    ap.add_argument("--exclude", type=Path,
                    default=SHARED / "data" / "evaluation-identities.txt")
    ap.add_argument("--per-emotion", type=int, default=6)
    ap.add_argument("--detectors", nargs="*", default=list(DETECTORS))
    ap.add_argument("--kinds", nargs="*", choices=["upright", "mirrored", "rolled 30", "wide shot"],
                    help="only these sets (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "face-size.json")
    ap.add_argument("--merge", nargs="+", type=Path,
                    help="print the table of these result files together (and write --out)")
    args = ap.parse_args()
    if args.merge:
        result = merge(args.merge)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(table(result))
        return
    cv2.setNumThreads(1)
    exclude = [ln.strip() for ln in args.exclude.read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    ref = BlazeFaceDetector()
    faces, first_clip = faces_of(args.photos, args.per_emotion, exclude, ref)
    bgs = backgrounds(args.backgrounds, ref)
    fer, pixels, mesh = TfliteModel(), PixelModel.load(flip=True), FaceMesh()
    real = PixelModel.load(name="pixels_real")  # the default frame model, no flip
    rnd = random.Random(1)
    sets = {(res, w, "upright"): scenes(faces, bgs, SIZES[res], w, rnd)
            for res in SIZES for w in WIDTHS}
    for w in (32, 64):
        sets[("720p", w, "mirrored")] = scenes(faces, bgs, SIZES["720p"], w, rnd, mirror=True)
        sets[("720p", w, "rolled 30")] = scenes(faces, bgs, SIZES["720p"], w, rnd, roll=30.0)
    for res in SIZES:
        for w in WIDTHS:
            sets[(res, w, "wide shot")] = shots(faces, bgs, SIZES[res], w, rnd, first_clip)
    if args.kinds:
        sets = {k: v for k, v in sets.items() if k[2] in args.kinds}
    empty = {res: [fill(b, SIZES[res]) for b in bgs] for res in SIZES}

    def label(model, crops):
        return [EMOTIONS[int(np.argmax(p))] for p in model.predict(crops)] if len(crops) else []

    ceiling = {"fer": 0, "pixels": 0, "pixels_real": 0}
    for image, r, emo in faces:
        batch, kept = crop_faces(image, [r])
        ceiling["fer"] += bool(kept) and label(fer, batch)[0] == emo
        crop = crops_for(image, [r], framing_for("mediapipe"), False)
        ceiling["pixels"] += label(pixels, crop)[0] == emo
        ceiling["pixels_real"] += label(real, crop)[0] == emo
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d"),
              "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
              "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
              "opencv": cv2.__version__, "faces": len(faces), "backgrounds": len(bgs),
              "ceiling": {k: round(v / len(faces), 3) for k, v in ceiling.items()},
              "detectors": {}}
    for name in args.detectors:
        cfg = from_dict({"faces": DETECTORS[name]})
        det = make_detector(cfg, 1)
        framing = framing_for(cfg.faces.detector)
        rows = {}
        for (res, w, kind), frames in sets.items():
            n = found = false = right_fer = right_px = right_real = meshed = 0
            for frame, truths in frames:
                (dets,) = det.detect([frame], 1.0)
                used = set()
                for truth, i in truths:
                    n += 1
                    hit = next((d for j, d in enumerate(dets) if j not in used
                                and matches(d, truth)), None)
                    if hit is None:
                        continue
                    used.add(dets.index(hit))
                    found += 1
                    emo = faces[i][2]
                    batch, kept = crop_faces(frame, [hit])
                    right_fer += bool(kept) and label(fer, batch)[0] == emo
                    crop = crops_for(frame, [hit], framing, False)
                    right_px += label(pixels, crop)[0] == emo
                    right_real += label(real, crop)[0] == emo
                    if kind in ("upright", "wide shot") and res == "720p":
                        meshed += mesh.mesh(frame, hit) is not None
                false += len(dets) - len(used)
            rows[f"{res} {w} {kind}"] = {
                "faces": n, "found": round(found / n, 3),
                "false_per_frame": round(false / len(frames), 2),
                "fer": round(right_fer / n, 3), "pixels": round(right_px / n, 3),
                "pixels_real": round(right_real / n, 3),
                **({"mesh_of_found": round(meshed / found, 3) if found else None}
                   if kind in ("upright", "wide shot") and res == "720p" else {})}
        false_empty = {res: round(sum(len(det.detect([f], 1.0)[0]) for f in fr) / len(fr), 2)
                       for res, fr in empty.items()}
        cost = {res: timed(det, fr) for res, fr in empty.items()}
        result["detectors"][name] = {"rows": rows, "false_on_empty": false_empty, "ms": cost}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")  # after each detector
        print(f"{name}: done", flush=True)
    print(table(result))


def table(result: dict) -> str:
    """The Markdown table: per detector, resolution and set, faces found (and labelled right by
    fer / the pixel model) by width; head turn; false detections; cost."""
    lines = [f"{result['faces']} faces, {result['backgrounds']} backgrounds; ceiling on the "
             f"originals: fer {result['ceiling']['fer']:.0%}, "
             f"pixels {result['ceiling']['pixels']:.0%}"
             + (f", pixels_real {result['ceiling']['pixels_real']:.0%}"
                if "pixels_real" in result["ceiling"] else ""),
             "", "| detector | res | set | " + " | ".join(f"{w} px" for w in WIDTHS)
             + " | mirrored 32/64 | rolled 30 32/64 | false/empty frame | ms/frame (range) |",
             "|---" * (len(WIDTHS) + 7) + "|"]
    for name, d in result["detectors"].items():
        r = d["rows"]
        for res in SIZES:
            for kind in ("upright", "wide shot"):
                up = [r.get(f"{res} {w} {kind}") for w in WIDTHS]
                if not any(up):
                    continue
                cells = [f"{u['found']:.0%} ({u['fer']:.0%}/{u['pixels']:.0%}"
                         + (f"/{u['pixels_real']:.0%})" if "pixels_real" in u else ")")
                         if u else "-" for u in up]
                turn = ["-", "-"]
                if res == "720p" and kind == "upright" and "720p 32 mirrored" in r:
                    turn = [" / ".join(f"{r[f'720p {w} {k}']['found']:.0%}" for w in (32, 64))
                            for k in ("mirrored", "rolled 30")]
                ms = d["ms"][res]
                lines.append(f"| {name} | {res} | {kind} | " + " | ".join(cells)
                             + f" | {turn[0]} | {turn[1]} | {d['false_on_empty'][res]} | "
                             f"{ms['median']} ({ms['min']}-{ms['max']}) |")
    return "\n".join(lines)


def merge(paths: list[Path]) -> dict:
    """One result from runs of the same command over different detectors or sets."""
    out = json.loads(paths[0].read_text())
    for p in paths[1:]:
        other = json.loads(p.read_text())
        for name, d in other["detectors"].items():
            mine = out["detectors"].setdefault(name, d)
            if mine is not d:
                mine["rows"].update(d["rows"])
    return out


if __name__ == "__main__":
    main()
