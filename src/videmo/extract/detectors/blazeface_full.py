"""BlazeFace full range (MediaPipe's ``face_detection_full_range_sparse.tflite``) on LiteRT, on
the whole frame and on overlapping tiles, for faces as wide shots show them
(``faces.detector: blazeface_full``).

The short-range model (``faces.detector: mediapipe``) sees the whole frame at 128x128: a face
40 px wide in a 1280x720 frame is 4 px there, and it finds none. The full-range model (192x192,
made for faces up to about 5 m) is run as MediaPipe's FaceDetectionFullRange graph runs it:

1. the image, RGB, letterboxed to a square and resized to 192x192 (bilinear), in [-1, 1];
2. 2304 SSD anchors: one layer, stride 4 (48x48 centres, one anchor each, offset 0.5);
3. boxes and 6 keypoints decoded against the anchors (scales of 192); sigmoid scores of the
   logits clipped to +-100; min score ``faces.blazeface_full.min_score`` (MediaPipe's 0.6);
4. weighted non-maximum suppression at IoU 0.3 (MediaPipe's full-range setting).

A frame is seen whole and, with ``faces.blazeface_full.tiles`` N > 0, also as a grid of
squares of side (long side) / N, N along the long side and as many as cover the short side,
evenly overlapping (:func:`squares`); each goes through the same steps, and all detections,
mapped back to frame pixels, go through one more weighted suppression. The model needs a face
about 15 px wide in its 192x192 input: a 24 px face of a 1280x720 frame is 3.6 px there when
the frame is seen whole, 7 px in a tile of N = 2 and 14 px with N = 4 (numbers by face size:
BENCHMARKS.md "Face size"). Each square costs one model call (about 13 ms on one core).

Faces come as :class:`~videmo.extract.detectors.blazeface.KeypointFace` with the same six
keypoints as the short-range model's, so the face mesh and the pixel model's eye alignment
use them as they use BlazeFace's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from videmo import models
from videmo.config.fields import opt
from videmo.extract.detectors.blazeface import KeypointFace, decode, weighted_nms


@dataclass(frozen=True)
class BlazefaceFullConfig:
    min_score: float = opt(0.6, "Drop full-range BlazeFace detections below this score (0-1; "
                                "MediaPipe's default 0.6).", minimum=0)
    tiles: int = opt(2, "Besides the whole frame, also run the model on a grid of square tiles, "
                        "this many along the frame's long side (0: whole frame only; at 720p, 2 "
                        "finds wide shots' faces from about 48 px, 4 from about 20 px at 3x the "
                        "cost: BENCHMARKS.md, Face size).", minimum=0)
    min_size: int = opt(0, "Drop faces narrower or shorter than this many full-resolution "
                           "pixels (0: keep all the model finds).", minimum=0)


INPUT_SIZE = 192
STRIDE = 4
NUM_ANCHORS = (INPUT_SIZE // STRIDE) ** 2
NMS_THRESHOLD = 0.3


def ssd_anchors() -> np.ndarray:
    """(2304, 2) anchor centres (x, y) in [0, 1], row by row (the model's output order)."""
    side = INPUT_SIZE // STRIDE
    ys, xs = np.mgrid[0:side, 0:side]
    return np.stack([(xs.ravel() + 0.5) / side, (ys.ravel() + 0.5) / side], 1).astype(np.float32)


def squares(width: int, height: int, tiles: int) -> list[tuple[float, float, float]]:
    """The squares (x0, y0, side) in frame pixels the model sees: the letterboxed whole frame,
    then, for ``tiles`` N > 0, a grid of squares of side (long side) / N: N along the long side
    and as many as cover the short side, evenly overlapping."""
    long_, short = max(width, height), min(width, height)
    out = [((width - long_) / 2.0, (height - long_) / 2.0, float(long_))]
    if tiles < 1:
        return out
    side = long_ / tiles
    rows = max(1, math.ceil(short / side - 1e-9))
    side = min(side, float(short)) if rows == 1 else side
    along = ([(long_ - side) / 2.0] if tiles == 1
             else [i * (long_ - side) / (tiles - 1) for i in range(tiles)])
    across = ([(short - side) / 2.0] if rows == 1
              else [j * (short - side) / (rows - 1) for j in range(rows)])
    for a in along:
        for c in across:
            out.append((a, c, side) if width >= height else (c, a, side))
    return out


def square_input(rgb: np.ndarray, x0: float, y0: float, side: float) -> np.ndarray:
    """The model input (1, 192, 192, 3) in [-1, 1]: the square at (x0, y0) of side ``side``
    (zero outside the frame), corners to corners as MediaPipe's warpPerspective maps them."""
    s = INPUT_SIZE / side
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
    crop = cv2.warpAffine(rgb, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return (crop.astype(np.float32) * (1.0 / 127.5) - 1.0)[None]


class BlazeFaceFullDetector:
    """``faces.detector: blazeface_full``: BlazeFace full range on LiteRT, whole frame plus
    ``tiles`` square tiles; faces best score first, as :class:`KeypointFace`."""

    name = "blazeface_full"

    def __init__(self, threads: int = 1, min_score: float = 0.6, tiles: int = 2,
                 min_size: int = 0):
        from videmo.extract.bundle import litert

        path = models.model_path(models.BLAZEFACE_FULL)
        self.interpreter = litert(threads, path=path)
        inp = self.interpreter.get_input_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise models.ModelFileError(f"{path}: input shape {inp['shape']}, expected "
                                        f"(1, {INPUT_SIZE}, {INPUT_SIZE}, 3)")
        self.input = inp["index"]
        outs = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        if set(outs) != {16, 1}:
            raise models.ModelFileError(f"{path}: outputs of last dimension {sorted(outs)}, "
                                        f"expected 16 (boxes) and 1 (scores)")
        self.out_boxes, self.out_scores = outs[16], outs[1]
        self.anchors = ssd_anchors()
        self.min_score = min_score
        self.tiles = tiles
        self.min_size = min_size

    def detect(self, frames: list[np.ndarray], scale: float = 1.0) -> list[list[KeypointFace]]:
        side = self.min_size * scale
        return [[f for f in self.detect_one(frame) if min(f.w, f.h) >= side] for frame in frames]

    def detect_one(self, frame: np.ndarray) -> list[KeypointFace]:
        rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        boxes, kps, scores = [], [], []
        for x0, y0, side in squares(w, h, self.tiles):
            self.interpreter.set_tensor(self.input, square_input(rgb, x0, y0, side))
            self.interpreter.invoke()
            b, k, s = decode(self.interpreter.get_tensor(self.out_boxes),
                             self.interpreter.get_tensor(self.out_scores), self.anchors,
                             self.min_score, INPUT_SIZE, empty_boxes=False)
            boxes.append(b * side + np.array([x0, y0, x0, y0]))
            kps.append(k * side + np.array([x0, y0]))
            scores.append(s)
        found = weighted_nms(np.concatenate(boxes), np.concatenate(kps), np.concatenate(scores),
                             NMS_THRESHOLD)
        return [KeypointFace.from_box(b[0], b[1], b[2] - b[0], b[3] - b[1], s, k)
                for b, k, s in found]


def from_config(o: BlazefaceFullConfig, threads: int = 1) -> BlazeFaceFullDetector:
    """``faces.detector: blazeface_full`` (its spec in :data:`videmo.extract.detectors.DETECTORS`
    declares ``faces.blazeface_full`` as its own options section: ``o``)."""
    return BlazeFaceFullDetector(threads, min_score=o.min_score, tiles=o.tiles,
                                 min_size=o.min_size)
