"""MTCNN on LiteRT: the ``mtcnn`` 1.0.0 package's pipeline, its three networks without TensorFlow.

``faces.detector: mtcnn`` with ``faces.mtcnn_engine: litert`` (the default). The networks are the
package's own P-, R- and O-Net with the package's weights, converted once to TFLite by
``scripts/mtcnn_tflite.py`` and shipped in ``videmo.models`` (sha256-checked). Around them this
module re-implements, in NumPy and OpenCV, what ``mtcnn.MTCNN.detect_faces`` does (its stages in
``mtcnn/stages`` and helpers in ``mtcnn/utils``), step for step:

1. RGB pixels normalised as ``(p - 127.5) / 128``;
2. the image pyramid: scales ``0.6 * 0.709 ** k`` (12 / min_face_size 20, scale factor 0.709),
   as many as ``round(-(log(min_side / 12) / log(0.709) + 1))``; each level resized by area
   (TensorFlow's ``resize(method=AREA)``; OpenCV's INTER_AREA) to ``int(side * scale)``;
3. P-Net on each level (its input resized with ``resize_tensor_input``; one interpreter per
   level shape, kept, since a video's levels never change); cells above 0.6 become 12x12 windows
   (stride 2) moved by the regression, mapped back to the frame; the package's NMS per level
   (IoU > 0.5) and across levels (IoU > 0.7), then boxes squared;
4. R-Net on 24x24 crops (TensorFlow's ``crop_and_resize``: bilinear, 0 outside the frame) of the
   squared boxes: its confidence replaces the box's, its regression moves the box, above 0.7
   kept, NMS (IoU > 0.7), squared;
5. with ``faces.mtcnn.onet`` only, O-Net on 48x48 crops: five landmarks, its confidence and
   regression, above 0.8 kept, NMS by the smaller box's area (> 0.7);
6. corners clipped to the frame, ``box = round(x1, y1, x2 - x1, y2 - y1)`` as the package's JSON.

The package's NMS is not the greedy one: a box is dropped when any box before it (in score
order) overlaps it above the threshold, even one that was dropped itself; this is kept as is.
Parity with the package on golden frames: ``tests/test_mtcnn.py`` (``scripts/mtcnn_golden.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from videmo import models
from videmo.extract.detectors.base import Face

if TYPE_CHECKING:
    from videmo.config import Config, FacesConfig

MIN_FACE_SIZE = 20  # the package's default min_face_size, which videmo always runs with
CELL, STRIDE, PNET_MIN_INPUT = 12, 2, 12
SCALE_FACTOR = 0.709
THRESHOLDS = {"pnet": 0.6, "rnet": 0.7, "onet": 0.8}
NMS = {"pnet_level": 0.5, "pnet": 0.7, "rnet": 0.7, "onet": 0.7}


# ------------------------------------------------------------------ the package's arithmetic
def pyramid(height: int, width: int, min_face_size: int = MIN_FACE_SIZE,
            scale_factor: float = SCALE_FACTOR) -> np.ndarray:
    """The pyramid's scales (``mtcnn.utils.images.build_scale_pyramid``)."""
    count = round(-((np.log(min(width, height) / PNET_MIN_INPUT) / np.log(scale_factor)) + 1))
    return (PNET_MIN_INPUT / min_face_size) * scale_factor ** np.arange(count)


def proposals(reg: np.ndarray, prob: np.ndarray, threshold: float) -> np.ndarray:
    """P-Net cells above ``threshold`` of a batch (n, h, w, .) as rows ``(frame, x1, y1, x2, y2,
    score)`` in level pixels, best score first over the whole batch (``generate_bounding_box``:
    the package's argsort, reversed)."""
    ns, ys, xs = np.nonzero(prob[..., 1] > threshold)
    score = prob[ns, ys, xs, 1].astype(np.float64)
    r = reg[ns, ys, xs].astype(np.float64)
    x0, y0 = xs * STRIDE + 1.0, ys * STRIDE + 1.0
    x1, y1 = xs * STRIDE + float(CELL), ys * STRIDE + float(CELL)
    size = CELL - 1.0
    rows = np.stack([ns.astype(np.float64), x0 + r[:, 0] * size, y0 + r[:, 1] * size,
                     x1 + r[:, 2] * size, y1 + r[:, 3] * size, score], axis=1)
    return rows[np.argsort(rows[:, 5])[::-1]]


def overlap(boxes: np.ndarray, method: str = "union") -> np.ndarray:
    """Pairwise IoU of ``(x1, y1, x2, y2)`` rows (``mtcnn.utils.bboxes.iou``; ``min``: the
    intersection over the smaller area)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    w = np.maximum(0, np.minimum(boxes[None, :, 2], boxes[:, None, 2])
                   - np.maximum(boxes[None, :, 0], boxes[:, None, 0]))
    h = np.maximum(0, np.minimum(boxes[None, :, 3], boxes[:, None, 3])
                   - np.maximum(boxes[None, :, 1], boxes[:, None, 1]))
    inter = w * h
    if method == "union":
        denom = area[:, None] + area[None, :] - inter
    else:
        denom = np.minimum(area[:, None], area[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / denom


def nms(rows: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """The package's NMS on the rows of one frame, ``(x1, y1, x2, y2, ...)`` in their order:
    drop a row when any earlier row overlaps it above ``threshold`` (``nms``)."""
    if len(rows) == 0:
        return rows
    suppressed = np.triu(overlap(rows[:, :4], method) > threshold, k=1).any(axis=0)
    return rows[~suppressed]


def per_frame_nms(rows: np.ndarray, threshold: float, method: str = "union",
                  sort: bool = True) -> np.ndarray:
    """``smart_nms_from_bboxes``: rows ``(frame, x1, y1, x2, y2, score, ...)`` of a batch,
    ``sort``: first ordered by score over the whole batch (the package's argsort, reversed),
    then NMS frame by frame, the frames' survivors concatenated in frame order."""
    if len(rows) == 0:
        return rows
    if sort:
        rows = rows[np.argsort(rows[:, 5])[::-1]]
    kept = []
    for n in np.unique(rows[:, 0]):
        mine = rows[rows[:, 0] == n]
        suppressed = np.triu(overlap(mine[:, 1:5], method) > threshold, k=1).any(axis=0)
        kept.append(mine[~suppressed])
    return np.concatenate(kept)


def square(rows: np.ndarray) -> np.ndarray:
    """Boxes of rows ``(frame, x1, y1, x2, y2, ...)`` grown to squares about their centres
    (``resize_to_square``)."""
    rows = rows.copy()
    w, h = rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2]
    side = np.maximum(w, h)
    rows[:, 1] += w * 0.5 - side * 0.5
    rows[:, 2] += h * 0.5 - side * 0.5
    rows[:, 3] = rows[:, 1] + side
    rows[:, 4] = rows[:, 2] + side
    return rows


def regress(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes of rows ``(frame, x1, y1, x2, y2, ...)`` moved by a network's regression, in units
    of the box side + 1 (``adjust_bboxes``)."""
    rows = rows.copy()
    w = rows[:, 3] - rows[:, 1] + 1
    h = rows[:, 4] - rows[:, 2] + 1
    rows[:, 1:5] += offsets.astype(np.float64) * np.stack([w, h, w, h], axis=1)
    return rows


def crop_and_resize(image: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size, 3) float32 crops of ``image`` (h, w, 3) for boxes ``(x1, y1, x2, y2)``
    (the first four columns of ``rows``):
    TensorFlow's ``crop_and_resize`` with the package's box normalisation (by h and w, sampled
    over h - 1 and w - 1), bilinear, 0 where a sample falls outside the image."""
    h, w = image.shape[:2]
    t = np.arange(size, dtype=np.float64) / (size - 1)

    def axis(lo: np.ndarray, hi: np.ndarray, n: int):
        start, span = lo / n * (n - 1), (hi - lo) / n * (n - 1)
        pos = start[:, None] + t[None, :] * span[:, None]
        inside = (pos >= 0) & (pos <= n - 1)
        low = np.clip(np.floor(pos), 0, n - 1).astype(np.intp)
        high = np.clip(np.ceil(pos), 0, n - 1).astype(np.intp)
        return low, high, (pos - np.floor(pos)).astype(np.float32), inside

    y0, y1, fy, iny = axis(rows[:, 1], rows[:, 3], h)
    x0, x1, fx, inx = axis(rows[:, 0], rows[:, 2], w)
    img = image.astype(np.float32, copy=False)
    fxx = fx[:, None, :, None]
    tl, tr = img[y0[:, :, None], x0[:, None, :]], img[y0[:, :, None], x1[:, None, :]]
    bl, br = img[y1[:, :, None], x0[:, None, :]], img[y1[:, :, None], x1[:, None, :]]
    top = tl + (tr - tl) * fxx
    bottom = bl + (br - bl) * fxx
    out = top + (bottom - top) * fy[:, :, None, None]
    out[~(iny[:, :, None] & inx[:, None, :])] = 0.0
    return out


def normalise(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) - 127.5) / 128.0


# ------------------------------------------------------------------ the detector
class _Net:
    """One shipped network on LiteRT; outputs told apart by their last dimension (4: box
    regression, 10: landmarks, 2: face probability)."""

    def __init__(self, name: str, threads: int, op_resolver=None, shape=None):
        from ai_edge_litert.interpreter import Interpreter

        from videmo.runtime import quiet_native_logs

        path = models.model_path(name)
        kw = {} if op_resolver is None else {"experimental_op_resolver_type": op_resolver}
        with quiet_native_logs():  # LiteRT's "Created ... XNNPACK delegate" line, from C++
            self.it = Interpreter(model_path=str(path), num_threads=threads, **kw)
            self.input = self.it.get_input_details()[0]["index"]
            if shape is not None:
                self.it.resize_tensor_input(self.input, list(shape), strict=False)
            self.it.allocate_tensors()
        self.outputs = {d["shape_signature"][-1]: d["index"] for d in self.it.get_output_details()}
        self.name = name
        self.shape = tuple(self.it.get_input_details()[0]["shape"])

    def __call__(self, x: np.ndarray) -> dict[int, np.ndarray]:
        if x.shape != self.shape:
            self.it.resize_tensor_input(self.input, list(x.shape), strict=False)
            self.it.allocate_tensors()
            self.shape = x.shape
        self.it.set_tensor(self.input, np.ascontiguousarray(x, np.float32))
        self.it.invoke()
        return {k: self.it.get_tensor(i) for k, i in self.outputs.items()}


class MtcnnLiteDetector:
    """MTCNN (the ``mtcnn`` 1.0.0 package's networks and pipeline) on LiteRT, ``threads``
    threads; same options and faces as :class:`videmo.extract.detectors.mtcnn.MtcnnDetector`.

    ``onet``: also run O-Net (boxes refined, its confidence, five landmarks), as the package's
    default ``face_and_landmarks_detection`` does; without it, P- and R-Net only
    (``face_detection_only``, videmo's MTCNN until now). ``op_resolver``: LiteRT's op resolver
    (None: its default, XNNPACK; tests compare it with the reference kernels)."""

    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.9, min_size: int = 20, onet: bool = False,
                 threads: int = 1, op_resolver=None):
        self.min_confidence = min_confidence
        self.min_size = min_size
        self.onet = onet
        self.threads = threads
        self.op_resolver = op_resolver
        self.rnet = _Net(models.MTCNN_RNET, threads, op_resolver)
        self.onet_net = _Net(models.MTCNN_ONET, threads, op_resolver) if onet else None
        self._pnets: dict[tuple[int, int], _Net] = {}
        self._pnet(PNET_MIN_INPUT, PNET_MIN_INPUT)  # check the file now, not at the first frame

    def _pnet(self, h: int, w: int) -> _Net:
        net = self._pnets.get((h, w))
        if net is None:
            if len(self._pnets) > 64:  # frames of many sizes: keep memory bounded
                self._pnets.clear()
            net = self._pnets[(h, w)] = _Net(models.MTCNN_PNET, self.threads, self.op_resolver,
                                             (1, h, w, 3))
        return net

    def detect(self, frames: list[np.ndarray], scale: float = 1.0) -> list[list[Face]]:
        min_side = self.min_size * scale
        out = []
        for rows in self.detect_rows(frames):
            faces = []
            for x1, y1, x2, y2, conf in rows[:, :5]:
                x, y, w, h = (int(v) for v in np.round([x1, y1, x2 - x1, y2 - y1]))
                if conf < self.min_confidence or min(w, h) < min_side:
                    continue
                faces.append(Face(max(0, x), max(0, y), w, h, float(conf)))
            out.append(faces)
        return out

    def detect_rows(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Per BGR frame, the package's detections before rounding: rows ``(x1, y1, x2, y2,
        confidence)`` and, with O-Net, the five landmarks ``(x, y)`` in the package's order (the
        eye on the image's left, the other eye, nose, mouth left, mouth right): 15 columns.

        Frames of one size are one batch, as videmo's TensorFlow engine passes them to the
        package; others go one by one. The package is not batch-invariant: it sorts the
        candidates of the whole batch together, and ties in score (probabilities that round to
        exactly 1.0) then come out in an order that depends on the other frames, which changes
        what its NMS keeps. The rows below keep the package's layout (the frame's number in
        column 0) and its sorts, so a batch gives the package's batch result."""
        images = [normalise(cv2.cvtColor(f if f.ndim == 3 else cv2.cvtColor(f, cv2.COLOR_GRAY2BGR),
                                         cv2.COLOR_BGR2RGB)) for f in frames]
        if len(images) > 1 and all(i.shape == images[0].shape for i in images):
            return self._batch(images)
        return [self._batch([img])[0] for img in images]

    def _batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        rows = self._stage_pnet(images)
        rows = self._refine(images, rows, self.rnet, 24, "rnet")
        if self.onet_net is not None:
            rows = self._refine(images, rows, self.onet_net, 48, "onet")
        h, w = images[0].shape[:2]
        out = []
        for n in range(len(images)):
            mine = rows[rows[:, 0] == n]
            box = mine[:, 1:6].copy()
            box[:, [0, 2]] = np.clip(box[:, [0, 2]], 0, w - 1)
            box[:, [1, 3]] = np.clip(box[:, [1, 3]], 0, h - 1)
            if mine.shape[1] == 16:  # landmarks x1..x5, y1..y5 -> (x, y) pairs
                marks = np.stack([mine[:, 6:11], mine[:, 11:16]], axis=2).reshape(len(mine), 10)
                box = np.concatenate([box, marks], axis=1)
            out.append(box)
        return out

    def _stage_pnet(self, images: list[np.ndarray]) -> np.ndarray:
        """P-Net over the pyramid of a batch of same-size frames: rows ``(frame, x1, y1, x2, y2,
        score)`` (``StagePNet``). P-Net runs frame by frame (the same numbers as a batch, a
        sixteenth of the memory)."""
        h, w = images[0].shape[:2]
        levels = []
        for s in pyramid(h, w):
            lh, lw = int(h * s), int(w * s)
            if min(lh, lw) < PNET_MIN_INPUT - 1:  # P-Net's output would be empty
                continue
            net = self._pnet(lh, lw)
            res = [net(cv2.resize(img, (lw, lh), interpolation=cv2.INTER_AREA)[None])
                   for img in images]
            reg = np.concatenate([r[4] for r in res])
            prob = np.concatenate([r[2] for r in res])
            rows = proposals(reg, prob, THRESHOLDS["pnet"])
            rows[:, 1:5] /= s
            levels.append(per_frame_nms(rows, NMS["pnet_level"], sort=False))
        rows = np.concatenate(levels) if levels else np.empty((0, 6))
        return square(per_frame_nms(rows, NMS["pnet"]))

    def _refine(self, images: list[np.ndarray], rows: np.ndarray, net: _Net, size: int,
                stage: str) -> np.ndarray:
        """R-Net or O-Net over every candidate of the batch at once (``StageRNet``,
        ``StageONet``)."""
        if len(rows) == 0:
            return np.empty((0, 16 if stage == "onet" else 6))
        crops = np.empty((len(rows), size, size, 3), np.float32)
        for n in np.unique(rows[:, 0]).astype(int):
            sel = rows[:, 0] == n
            crops[sel] = crop_and_resize(images[n], rows[sel][:, 1:5], size)
        res = net(crops)
        rows = rows.copy()
        if stage == "onet":
            marks = self._landmarks(res[10], rows)
        rows[:, 5] = res[2][:, 1]
        rows = regress(rows, res[4])
        if stage == "onet":
            rows = np.concatenate([rows, marks], axis=1)
        rows = rows[rows[:, 5] > THRESHOLDS[stage]]
        if stage == "onet":
            return per_frame_nms(rows, NMS["onet"], method="min")
        return square(per_frame_nms(rows, NMS["rnet"]))

    @staticmethod
    def _landmarks(raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """O-Net's landmarks (x1..x5, y1..y5 in the box's unit square) in frame pixels
        (``adjust_landmarks``: box side + 1, shifted by one pixel)."""
        w = rows[:, 3:4] - rows[:, 1:2] + 1
        h = rows[:, 4:5] - rows[:, 2:3] + 1
        return np.concatenate([w * raw[:, 0:5] + rows[:, 1:2] - 1,
                               h * raw[:, 5:10] + rows[:, 2:3] - 1], axis=1)


def from_config(cfg: FacesConfig, threads: int = 1):
    """``faces.detector: mtcnn`` (an entry of :data:`videmo.extract.detectors.DETECTORS`): on
    LiteRT, or on TensorFlow via the mtcnn package with ``faces.mtcnn_engine: tensorflow``."""
    if cfg.mtcnn_engine == "tensorflow":
        from videmo.extract.detectors.mtcnn import MtcnnDetector

        return MtcnnDetector(cfg.mtcnn.min_confidence, cfg.mtcnn.min_size, cfg.mtcnn.onet)
    return MtcnnLiteDetector(cfg.mtcnn.min_confidence, cfg.mtcnn.min_size, cfg.mtcnn.onet,
                             threads)


# ---------------------------------------------------------------- its spec (detectors/__init__.py)
def _litert(cfg: Config) -> bool:
    return cfg.faces.detector == "mtcnn" and cfg.faces.mtcnn_engine == "litert"


def files(cfg: Config) -> tuple[str, ...]:
    """The networks the LiteRT engine loads (the TensorFlow one reads the mtcnn package's)."""
    if not _litert(cfg):
        return ()
    return (models.MTCNN_PNET, models.MTCNN_RNET) + ((models.MTCNN_ONET,)
                                                     if cfg.faces.mtcnn.onet else ())


def packages(cfg: Config) -> tuple[str, ...]:
    return ("ai-edge-litert",) if _litert(cfg) else ("tensorflow", "keras", "mtcnn")


def batch_size(cfg: Config) -> int:
    return cfg.faces.mtcnn.batch_size


def key(faces: dict, cfg: Config) -> dict:
    """Options added later stay out of the cache key while they hold the behaviour of before:
    ``mtcnn_engine`` unless MTCNN runs on LiteRT, ``mtcnn.onet`` unless on."""
    faces = dict(faces)
    if not _litert(cfg):
        faces.pop("mtcnn_engine", None)
    if not cfg.faces.mtcnn.onet:
        faces["mtcnn"] = {k: v for k, v in faces["mtcnn"].items() if k != "onet"}
    return faces
