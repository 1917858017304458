"""MediaPipe's face geometry: the canonical face model, its weighted Procrustes fit, head pose.

The bundle's ``geometry_pipeline_metadata_landmarks.binarypb`` holds the canonical face mesh
(468 vertices in centimetres, x right, y up, z towards the viewer) and 33 weighted landmarks for
the Procrustes fit. It is read here with a minimal protobuf wire-format reader (four fields), so
videmo needs no protobuf dependency.

:func:`transformation_matrix` re-implements MediaPipe's geometry pipeline for the landmarks input
(``FaceGeometryFromLandmarksGraph`` with its default environment: a perspective camera with a
63 degree vertical field of view, near plane 1 cm, origin at the top-left corner): the screen
landmarks are put into the camera frustum, their depth is rescaled by two iterations of a scale
estimate, they are un-projected into metric space, and a weighted orthogonal Procrustes fit of the
canonical model onto them gives the 4x4 facial transformation matrix (canonical -> camera space,
rotation times scale, translation in centimetres).

Head pose (:func:`head_pose`), in degrees, from that matrix, in camera space (x right, y up,
z from the face towards the camera): ``R = Ry(yaw) @ Rx(-pitch) @ Rz(-roll)``, so

- ``yaw`` > 0: the face turns towards the image's right (the person looks to their own left);
- ``pitch`` > 0: the face turns up (chin forward, looking up);
- ``roll`` > 0: the head tilts clockwise as the image is viewed (the eye on the image's right
  drops);

and all three are 0 for a face looking straight into the camera. tests/test_mesh.py renders the
canonical face under known rotations and checks each sign.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import cache

import numpy as np

from videmo.extract import bundle, protobuf

# The environment MediaPipe's FaceLandmarker gives its geometry graph.
VERTICAL_FOV_DEGREES = 63.0
NEAR = 1.0
N_CANONICAL = 468  # the canonical mesh has no iris vertices; landmarks 468..477 are not fitted


@dataclass(frozen=True)
class CanonicalFace:
    """The canonical face model: (468, 3) vertices in cm and (468,) Procrustes weights."""

    vertices: np.ndarray
    weights: np.ndarray
    input_source: int


def _fields(buf: bytes):
    """(field number, wire type, value) of each field of one protobuf message."""
    return protobuf.fields(buf, bundle.GEOMETRY, bundle.BundleError)


def parse_geometry_metadata(data: bytes) -> CanonicalFace:
    """Parse GeometryPipelineMetadata: canonical_mesh (1), procrustes_landmark_basis (2),
    input_source (3); Mesh3d: vertex_type (1, VERTEX_PT = x y z u v), vertex_buffer (3)."""
    floats: list[float] = []
    basis: list[tuple[int, float]] = []
    source = 0
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            for n, w, v in _fields(value):
                if n == 1 and w == 0 and v != 0:
                    raise bundle.BundleError(f"{bundle.GEOMETRY}: vertex type {v} is not VERTEX_PT")
                if n == 3 and w == 2:  # packed
                    floats.extend(struct.unpack(f"<{len(v) // 4}f", v))
                elif n == 3 and w == 5:
                    floats.append(struct.unpack("<f", v)[0])
        elif number == 2 and wire == 2:
            landmark, weight = 0, 0.0
            for n, w, v in _fields(value):
                if n == 1 and w == 0:
                    landmark = v
                elif n == 2 and w == 5:
                    weight = struct.unpack("<f", v)[0]
            basis.append((landmark, weight))
        elif number == 3 and wire == 0:
            source = value
    if len(floats) != N_CANONICAL * 5:
        raise bundle.BundleError(f"{bundle.GEOMETRY}: {len(floats)} vertex floats, expected "
                                 f"{N_CANONICAL * 5} (468 vertices x (x, y, z, u, v))")
    vertices = np.asarray(floats, np.float64).reshape(N_CANONICAL, 5)[:, :3]
    weights = np.zeros(N_CANONICAL)
    for landmark, weight in basis:
        weights[landmark] = weight
    if weights.sum() <= 0:
        raise bundle.BundleError(f"{bundle.GEOMETRY}: no Procrustes landmark weights")
    return CanonicalFace(vertices, weights, source)


@cache
def canonical_face() -> CanonicalFace:
    """The canonical face of the shipped bundle (parsed once per process)."""
    return parse_geometry_metadata(bundle.read_member(bundle.GEOMETRY))


def weighted_procrustes(source: np.ndarray, target: np.ndarray,
                        weights: np.ndarray) -> np.ndarray:
    """4x4 similarity (scale * rotation, translation) minimising the weighted squared distance
    from ``transform(source)`` to ``target``; both (n, 3). MediaPipe's solver: the rotation from
    the SVD of the weighted cross-covariance (reflection removed), the scale from the rotated
    centred sources, the translation from the weighted residual mean."""
    sw = np.sqrt(weights)[:, None]
    total = float(weights.sum())
    ws, wt = source * sw, target * sw
    centre = (source * weights[:, None]).sum(0) / total
    centred = ws - centre[None, :] * sw
    u, _, vt = np.linalg.svd(wt.T @ centred)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        u[:, 2] *= -1
    rotation = u @ vt
    scale = float((centred @ rotation.T * wt).sum() / (centred * ws).sum())
    rs = scale * rotation
    translation = ((wt - ws @ rs.T) * sw).sum(0) / total
    out = np.eye(4)
    out[:3, :3] = rs
    out[:3, 3] = translation
    return out


def _frustum(width: int, height: int) -> tuple[float, float, float, float]:
    """(left, bottom, x_scale, y_scale) of the perspective camera at the near plane."""
    h = 2.0 * NEAR * math.tan(0.5 * math.radians(VERTICAL_FOV_DEGREES))
    w = width * h / height
    return -0.5 * w, -0.5 * h, w, h


def transformation_matrix(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe's facial transformation matrix (4x4 float64) for one face.

    ``landmarks`` (>= 468, 3): x, y in pixels of a ``width`` x ``height`` image and z in pixels
    scaled as x (MediaPipe's normalised z times the image width), as FaceMesh returns them.
    """
    face = canonical_face()
    canon, weights = face.vertices, face.weights
    screen = np.asarray(landmarks[:N_CANONICAL], np.float64) / [width, height, width]
    left, bottom, xs, ys = _frustum(width, height)
    screen = screen.copy()
    screen[:, 1] = 1.0 - screen[:, 1]  # top-left origin -> y up
    screen *= [xs, ys, xs]
    screen[:, :2] += [left, bottom]
    depth_offset = screen[:, 2].mean()

    def scale_of(points: np.ndarray) -> float:
        return float(np.linalg.norm(weighted_procrustes(canon, points, weights)[:3, 0]))

    def metric(points: np.ndarray, scale: float) -> np.ndarray:
        out = points.copy()
        out[:, 2] = (out[:, 2] - depth_offset + NEAR) / scale
        out[:, 0] *= out[:, 2] / NEAR
        out[:, 1] *= out[:, 2] / NEAR
        out[:, 2] *= -1.0  # change handedness: z towards the viewer
        return out

    flipped = screen.copy()
    flipped[:, 2] *= -1.0
    first = scale_of(flipped)
    second = scale_of(metric(screen, first))
    return weighted_procrustes(canon, metric(screen, first * second), weights)


@dataclass(frozen=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float
    translation: np.ndarray  # (3,) cm, camera space (x right, y up, z towards the viewer)
    scale: float


def head_pose(matrix: np.ndarray) -> HeadPose:
    """Yaw, pitch, roll in degrees of a transformation matrix (conventions: module docstring)."""
    m = np.asarray(matrix, np.float64)
    scale = float(np.cbrt(abs(np.linalg.det(m[:3, :3]))))
    r = m[:3, :3] / scale
    ax = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    ay = math.atan2(r[0, 2], r[2, 2])
    az = math.atan2(r[1, 0], r[1, 1])
    return HeadPose(math.degrees(ay), -math.degrees(ax), -math.degrees(az),
                    m[:3, 3].astype(np.float32), scale)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The 3x3 camera-space rotation of a head pose in degrees (inverse of :func:`head_pose`)."""
    y, x, z = math.radians(yaw), math.radians(-pitch), math.radians(-roll)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return ry @ rx @ rz


def project(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Camera-space points (n, 3) in cm -> landmarks in pixels as FaceMesh returns them (x, y in
    pixels, z in pixels scaled as x, relative to the mean depth). For synthetic tests."""
    left, bottom, xs, ys = _frustum(width, height)
    depth = -points[:, 2]
    x = points[:, 0] * NEAR / depth
    y = points[:, 1] * NEAR / depth
    u = (x - left) / xs
    v = 1.0 - (y - bottom) / ys
    # relative depth as a length at the face's mean distance, in the units of x (weak perspective)
    mean = depth.mean()
    z = (depth - mean) * NEAR / mean / xs
    return np.stack([u * width, v * height, z * width], axis=1)
