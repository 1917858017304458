"""Pose-normalised landmarks: the face mesh without the head's position, rotation and size.

Classifiers on landmarks should see expressions, not where the head was or how it was turned.
:func:`normalize_landmarks` maps FaceMesh's 478 landmarks (pixels) to a canonical frontal face:

- ``"procrustes"`` (default): a weighted similarity fit (rotation, uniform scale, translation) of
  the landmarks onto MediaPipe's canonical face model, on the 33 stable landmarks and weights that
  MediaPipe's own geometry pipeline uses (eye corners, nose, cheekbones, forehead: points that
  expressions move little), applied to all 478 points; then scaled to unit inter-ocular distance.
  The result is in the canonical face's frame, turned to read like an image: x to the image's
  right, y down, z away from the camera, origin near the centre of the head; the outer eye corners
  (33, 263) are 1 apart. Invariant to 3D rotation, scale and translation of the input.
- ``"minmax"``: each axis shifted and scaled to [0, 1] over the face. Simpler, and invariant to
  translation and scale only: the head's rotation stays in the numbers.

``inter_ocular_distance`` is the distance between the outer eye corners (landmarks 33 and 263).
"""

from __future__ import annotations

import numpy as np

from videmo.extract.features import face_geometry

OUTER_EYE_CORNERS = (33, 263)
METHODS = ("procrustes", "minmax")


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (33, 263), in the landmarks' units (x, y, z)."""
    a, b = OUTER_EYE_CORNERS
    return float(np.linalg.norm(np.asarray(landmarks[a], np.float64) -
                                np.asarray(landmarks[b], np.float64)))


def _reference() -> tuple[np.ndarray, np.ndarray]:
    """The canonical face in image-like axes (x right, y down, z away from the camera), weights."""
    face = face_geometry.canonical_face()
    return face.vertices * [1.0, -1.0, -1.0], face.weights


def normalize_landmarks(landmarks: np.ndarray, method: str = "procrustes") -> np.ndarray:
    """(478, 3) or (468, 3) landmarks -> float32 landmarks of the same shape, normalised for
    head pose (``"procrustes"``) or only for position and size (``"minmax"``); see the module
    docstring for the frames and what each removes."""
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] < face_geometry.N_CANONICAL:
        raise ValueError(f"landmarks must have shape (478, 3) or (468, 3), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or infinite values")
    if method == "minmax":
        lo, hi = points.min(0), points.max(0)
        span = np.where(hi > lo, hi - lo, 1.0)
        return ((points - lo) / span).astype(np.float32)
    if method != "procrustes":
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    reference, weights = _reference()
    n = face_geometry.N_CANONICAL
    fit = face_geometry.weighted_procrustes(points[:n], reference, weights)
    aligned = points @ fit[:3, :3].T + fit[:3, 3]
    return (aligned / inter_ocular_distance(aligned)).astype(np.float32)
