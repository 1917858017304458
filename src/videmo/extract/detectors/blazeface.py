"""BlazeFace short range, the face detector inside MediaPipe's Face Landmarker bundle.

Re-implements MediaPipe's FaceDetectorGraph for the 128x128 model (its short-range defaults, as
the bundle's model carries no detector metadata) around ``face_detector.tflite`` on LiteRT:

1. the whole frame, RGB, letterboxed to a square (zero border, centred) and resized to 128x128
   with bilinear interpolation, scaled to [-1, 1] (the model's normalisation: mean and std 127.5);
2. 896 SSD anchors (SsdAnchorsCalculator: 4 layers, strides 8, 16, 16, 16, one aspect ratio plus
   the interpolated one, fixed anchor size 1, offset 0.5): 16x16x2 then 8x8x6 centres;
3. boxes and the 6 keypoints decoded against the anchors (x, y, w, h order; scales of 128);
   scores are sigmoids of the logits clipped to +-100; min score 0.5;
4. weighted non-maximum suppression (IoU > 0.5: the overlapping boxes and keypoints are averaged,
   weighted by score, into the best one);
5. boxes and keypoints mapped from the letterbox back to full-resolution pixels.

The keypoints are, in order: the eye on the image's left (the person's right eye), the eye on the
image's right, the nose tip, the mouth centre, the ear tragion on the image's left, the one on
the image's right. BlazeFace is a short-range model (faces within about 2 m of the camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from videmo.extract import bundle
from videmo.extract.detectors.base import Face
from videmo.extract.images import iou

if TYPE_CHECKING:
    from videmo.config import FacesConfig

INPUT_SIZE = 128
NUM_ANCHORS = 896
NUM_KEYPOINTS = 6
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class KeypointFace(Face):
    """A :class:`videmo.extract.detectors.Face` (integer box in pixels, confidence) with
    BlazeFace's six keypoints (pixels, see the module docstring) and the unrounded box
    ``(x, y, w, h)``.

    The float box and keypoints let the face mesh place its crop exactly as MediaPipe does;
    everything that only needs a box treats it as a plain Face.
    """

    keypoints: tuple[tuple[float, float], ...] = ()
    box: tuple[float, float, float, float] | None = None

    def scaled(self, factor: float) -> KeypointFace:
        if factor == 1.0:
            return self
        base = Face.scaled(self, factor)
        box = None if self.box is None else tuple(v * factor for v in self.box)
        return KeypointFace(base.x, base.y, base.w, base.h, self.confidence,
                            tuple((x * factor, y * factor) for x, y in self.keypoints), box)

    @classmethod
    def from_box(cls, x: float, y: float, w: float, h: float, confidence: float,
                 keypoints: np.ndarray) -> KeypointFace:
        x0, y0 = round(x), round(y)
        return cls(x0, y0, round(x + w) - x0, round(y + h) - y0, float(confidence),
                   tuple((float(px), float(py)) for px, py in keypoints), (x, y, w, h))


def ssd_anchors() -> np.ndarray:
    """(896, 2) anchor centres (x, y) in [0, 1], in the model's output order."""
    strides = (8, 16, 16, 16)
    out = []
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 2  # aspect ratio 1.0 and the interpolated scale (ratio 1.0)
            last += 1
        side = math.ceil(INPUT_SIZE / strides[layer])
        for y in range(side):
            for x in range(side):
                out.extend([((x + 0.5) / side, (y + 0.5) / side)] * per_cell)
        layer = last
    anchors = np.asarray(out, np.float32)
    assert len(anchors) == NUM_ANCHORS
    return anchors


def letterbox(frame: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """The model input (1, 128, 128, 3) float32 in [-1, 1] from a BGR frame, and the square's
    side and top-left corner in frame pixels (to map detections back)."""
    h, w = frame.shape[:2]
    side = float(max(w, h))
    x0, y0 = (w - side) / 2.0, (h - side) / 2.0
    s = INPUT_SIZE / side
    # tensor pixel (u, v) samples the frame at (x0 + u / s, y0 + v / s): the square's corners map
    # to the tensor's corners with no half-pixel shift, as MediaPipe's cv::warpPerspective does
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    crop = cv2.warpAffine(rgb, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    tensor = crop.astype(np.float32) * (1.0 / 127.5) - 1.0
    return tensor[None], side, x0, y0


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
           min_score: float, input_size: int = INPUT_SIZE, empty_boxes: bool = True
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (k, 4) as (xmin, ymin, xmax, ymax), keypoints (k, 6, 2) and scores (k,), all in
    [0, 1] of the letterboxed square, for the anchors scoring at least ``min_score``: a
    BlazeFace model's raw outputs on its ``input_size`` square (128 here, 192 for the full
    range model). ``empty_boxes``: keep boxes of zero width or height (the short-range graph
    does; blazeface_full drops them)."""
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= min_score)
    raw = raw_boxes.reshape(-1, 16)[keep].astype(np.float64)
    a = anchors[keep].astype(np.float64)
    cx = raw[:, 0] / input_size + a[:, 0]
    cy = raw[:, 1] / input_size + a[:, 1]
    w = raw[:, 2] / input_size
    h = raw[:, 3] / input_size
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = raw[:, 4:16].reshape(-1, NUM_KEYPOINTS, 2) / input_size + a[:, None, :]
    valid = (w >= 0) & (h >= 0) if empty_boxes else (w > 0) & (h > 0)
    return boxes[valid], kp[valid], scores[keep][valid]


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression: take the best remaining detection, average
    every remaining one overlapping it by IoU > ``threshold`` (itself included) weighted by score,
    keep the best one's score, drop them all; repeat."""
    order = np.argsort(-scores, kind="stable")
    remaining = order
    out = []
    while remaining.size:
        best = remaining[0]
        overlap = iou(boxes[best], boxes[remaining]) > threshold
        members = remaining[overlap]
        if members.size == 0:  # a degenerate box does not overlap itself; keep it as it is
            members = remaining[:1]
            overlap = np.zeros(remaining.size, bool)
            overlap[0] = True
        wts = scores[members][:, None]
        total = wts.sum()
        box = (boxes[members] * wts).sum(0) / total
        kp = (keypoints[members] * wts[:, :, None]).sum(0) / total
        out.append((box, kp, float(scores[best])))
        remaining = remaining[~overlap]
    return out


class BlazeFaceDetector:
    """``faces.detector: mediapipe``: BlazeFace short range on LiteRT, ``threads`` threads.

    ``detect`` follows videmo's detector interface (frames in, faces per frame out, boxes in the
    pixels of the frames given); faces come best score first, as :class:`KeypointFace`.
    """

    name = "mediapipe"

    def __init__(self, threads: int = 1, min_score: float = 0.5,
                 nms_threshold: float = 0.5, max_faces: int | None = None):
        self.interpreter = bundle.interpreter(bundle.DETECTOR, threads)
        inp = self.interpreter.get_input_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise bundle.BundleError(f"{bundle.DETECTOR}: input shape {inp['shape']}, expected "
                                     f"(1, {INPUT_SIZE}, {INPUT_SIZE}, 3)")
        self.input = inp["index"]
        outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        try:
            self.out_boxes, self.out_scores = outputs["regressors"], outputs["classificators"]
        except KeyError:
            raise bundle.BundleError(f"{bundle.DETECTOR}: outputs {sorted(outputs)}, expected "
                                     f"'regressors' and 'classificators'") from None
        self.anchors = ssd_anchors()
        self.min_score = min_score
        self.nms_threshold = nms_threshold
        self.max_faces = max_faces

    def detect(self, frames: list[np.ndarray], scale: float = 1.0) -> list[list[KeypointFace]]:
        return [self.detect_one(frame) for frame in frames]

    def detect_one(self, frame: np.ndarray) -> list[KeypointFace]:
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        tensor, side, x0, y0 = letterbox(frame)
        self.interpreter.set_tensor(self.input, tensor)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.out_boxes)
        raw_scores = self.interpreter.get_tensor(self.out_scores)
        boxes, kps, scores = decode(raw_boxes, raw_scores, self.anchors, self.min_score)
        found = weighted_nms(boxes, kps, scores, self.nms_threshold)
        if self.max_faces is not None:
            found = found[: self.max_faces]
        faces = []
        for box, kp, score in found:
            bx, by = box[0] * side + x0, box[1] * side + y0
            bw, bh = (box[2] - box[0]) * side, (box[3] - box[1]) * side
            faces.append(KeypointFace.from_box(bx, by, bw, bh, score,
                                               kp * side + np.array([x0, y0])))
        return faces


def from_config(cfg: FacesConfig, threads: int = 1) -> BlazeFaceDetector:
    """``faces.detector: mediapipe`` (an entry of :data:`videmo.extract.detectors.DETECTORS`)."""
    return BlazeFaceDetector(threads, min_score=cfg.mediapipe.min_score)
