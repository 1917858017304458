"""Small operations on frames and boxes that several stages share, written once.

* :func:`to_grey`: a BGR (or already grey) frame as one grey channel, OpenCV's weights;
* :func:`iou`: intersection over union of one box with many (tracks, BlazeFace's NMS).
"""

from __future__ import annotations

import cv2
import numpy as np


def to_grey(image: np.ndarray) -> np.ndarray:
    """A grey image: BGR converted the way OpenCV does (``COLOR_BGR2GRAY``); a grey one, or a
    single-channel (h, w, 1) one, as it is (no copy)."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of ``box`` (x0, y0, x1, y1) with each row of ``boxes`` (n, 4), 0 where the union is
    empty."""
    boxes = np.atleast_2d(boxes)
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.where((ix > 0) & (iy > 0), ix * iy, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
