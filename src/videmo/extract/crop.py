"""One face crop for the pixel frame models: the same step in training and at run time.

FER2013's faces are tight, roughly frontal, grey 48x48 images. A network trained on them reads
a face well only when the face fills its input the way FER2013's do, so the crop a detector's
box gives at run time must match: :func:`face_crop` squares the box around its centre, widens
it by the detector's ``scale`` and moves it by (``dx``, ``dy``) box sides (a :class:`Framing`,
measured per detector on FER2013 by scripts/calibrate_framing.py into
``models/face_framing.json``), optionally rotates the face so its eyes are level, converts to
grey the way OpenCV does (``COLOR_BGR2GRAY``) and resizes to ``size`` (area interpolation when
shrinking, cubic when growing). In training the box of a FER2013 image is the whole image with
:data:`WHOLE` framing: the crop is then the image itself, pixel for pixel (a test holds it).

Use::

    crop = face_crop(frame, (x, y, w, h), framing, angle=eye_angle(left_eye, right_eye))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from videmo.extract.images import to_grey

SIZE = 48


@dataclass(frozen=True)
class Framing:
    """How a detector's box maps to a FER2013-like crop: the square's side is ``scale`` times
    the box's longer side, its centre moved by (``dx``, ``dy``) box sides."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0


WHOLE = Framing()  # a FER2013 image: its own box, as it is


def eye_angle(left_eye: Sequence[float], right_eye: Sequence[float]) -> float:
    """Degrees to rotate (counter-clockwise, OpenCV's sign) so the eyes are level. ``left_eye``
    is the subject's left eye (on the image's right side for a frontal face)."""
    dx = left_eye[0] - right_eye[0]
    dy = left_eye[1] - right_eye[1]
    if dx == 0 and dy == 0:
        return 0.0
    return math.degrees(math.atan2(dy, dx))


def face_crop(image: np.ndarray, box: tuple[float, float, float, float],
              framing: Framing = Framing(), size: int = SIZE,
              angle: float = 0.0) -> np.ndarray:
    """The ``size`` x ``size`` uint8 grey crop of the face in ``box`` (x, y, w, h, pixels of
    ``image``, BGR or grey), framed by ``framing`` and rotated by ``angle`` degrees about its
    centre (0: no rotation). Parts outside the image repeat its border pixels."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * framing.scale
    if side < 1:
        raise ValueError(f"face box {box} is empty")
    cx = x + w / 2 + framing.dx * max(w, h)
    cy = y + h / 2 + framing.dy * max(w, h)
    grey = to_grey(image)
    if angle == 0.0 and _is_whole(grey, cx, cy, side):
        region = grey
    else:
        n = max(1, int(round(side)))
        # output pixel (u, v) of an n x n patch -> source point, rotated about (cx, cy)
        m = cv2.getRotationMatrix2D((n / 2, n / 2), angle, n / side)
        m = np.vstack([m, [0, 0, 1]])
        shift = np.array([[1, 0, cx - n / 2], [0, 1, cy - n / 2], [0, 0, 1]])
        to_src = shift @ np.linalg.inv(m)
        region = cv2.warpAffine(grey, to_src[:2], (n, n),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
    if region.shape[0] == size and region.shape[1] == size:
        return np.ascontiguousarray(region, dtype=np.uint8)
    shrink = region.shape[0] > size
    return cv2.resize(region, (size, size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _is_whole(grey: np.ndarray, cx: float, cy: float, side: float) -> bool:
    """Whether the square is exactly the whole (square) image: no resampling needed."""
    h, w = grey.shape[:2]
    return h == w and abs(side - w) < 1e-6 and abs(cx - w / 2) < 1e-6 and abs(cy - h / 2) < 1e-6

