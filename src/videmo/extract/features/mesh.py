"""The face mesh: 478 landmarks, 52 blendshapes, head pose per face; MediaPipe's models on LiteRT.

Re-implements MediaPipe's FaceLandmarker graphs (IMAGE mode) around the three models of the
shipped ``face_landmarker.task``, so videmo gets MediaPipe's numbers without the ``mediapipe``
wheel (see videmo.extract.bundle for why). tests/test_mesh.py holds it to golden outputs of the
real mediapipe 1.2.2 (scripts/mesh_golden.py).

Per face:

1. **Region of interest.** From a BlazeFace detection (with keypoints): the box's centre and
   size, rotated so that the line between the two eye keypoints is horizontal, scaled by 1.5
   (FaceDetectorGraph's DetectionsToRects + RectTransformation). From a box without keypoints
   (Haar, MTCNN): the box's centre, its longer side times 1.5, upright; the landmarks of this
   first pass then give a second region exactly as MediaPipe's tracking (VIDEO) mode derives the
   next frame's region (the landmarks' bounding box, rotated by the line from landmark 33 to 263,
   squared on its long side, scaled by 1.5) and the landmarks are computed again in it.
2. **Landmarks.** The rotated region, RGB, warped (bilinear, replicated border) to 256x256 and
   scaled to [0, 1]; the model's 478 (x, y, z) in crop pixels are mapped back through the same
   rotation: x, y in full-resolution pixels, z in pixels at about the same scale (relative depth,
   smaller is nearer the camera; exactly MediaPipe's normalised z times the image width, see
   :func:`_z_scale`). The presence score is
   the sigmoid of the model's face flag; faces under ``min_presence`` (0.5, MediaPipe's
   min_face_presence_confidence) give no mesh.
3. **Blendshapes.** 146 of the landmarks (FaceBlendshapesGraph's subset), x and y in pixels, into
   the blendshapes model: 52 scores in schema.BLENDSHAPES order (MediaPipe's names).
4. **Head pose.** MediaPipe's facial transformation matrix (face_geometry.transformation_matrix)
   and yaw, pitch, roll in degrees from it; conventions in face_geometry's docstring.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from videmo import schema
from videmo.extract import bundle
from videmo.extract.detectors import Face
from videmo.extract.detectors.blazeface import BlazeFaceDetector, KeypointFace
from videmo.extract.features import face_geometry
from videmo.extract.features.base import FaceBatch, FeatureExtractor

if TYPE_CHECKING:
    from videmo.config import Config

LANDMARKS_INPUT = 256
N_LANDMARKS = 478
ROI_SCALE = 1.5
# Landmarks that orient the region built from landmarks (the outer eye corners).
ROTATION_FROM, ROTATION_TO = 33, 263

# FaceBlendshapesGraph's kLandmarksSubsetIdxs: the landmarks the blendshapes model reads.
BLENDSHAPE_LANDMARKS: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172,
    173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283,
    284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324,
    332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385,
    386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477,
)


@dataclass(frozen=True)
class Roi:
    """A rotated square-ish region in full-resolution pixels; ``rotation`` in radians, positive
    clockwise as the image is viewed (MediaPipe's NormalizedRect, in pixels)."""

    cx: float
    cy: float
    w: float
    h: float
    rotation: float = 0.0

    def to_image(self, points: np.ndarray, size: int) -> np.ndarray:
        """Crop pixels (n, 2) of a ``size`` x ``size`` crop of this region -> image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        u = points[:, 0] / size - 0.5
        v = points[:, 1] / size - 0.5
        x = self.cx + u * self.w * c - v * self.h * s
        y = self.cy + u * self.w * s + v * self.h * c
        return np.stack([x, y], axis=1)

    def crop_matrix(self, size: int) -> np.ndarray:
        """2x3 affine: crop pixel -> image pixel (for cv2.warpAffine with WARP_INVERSE_MAP)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        a, b = self.w / size, self.h / size
        x0 = self.cx - 0.5 * self.w * c + 0.5 * self.h * s
        y0 = self.cy - 0.5 * self.w * s - 0.5 * self.h * c
        return np.array([[a * c, -b * s, x0], [a * s, b * c, y0]], np.float64)


def _normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def _rotation(x0: float, y0: float, x1: float, y1: float) -> float:
    """DetectionsToRects' rotation: the angle that makes (x0, y0) -> (x1, y1) horizontal."""
    return _normalize_radians(-math.atan2(-(y1 - y0), x1 - x0))


def _z_scale(roi: Roi, width: int, height: int) -> float:
    """Pixels per unit of crop-normalised z, as MediaPipe's LandmarkProjectionCalculator sets it:
    the length of the crop's unit x axis in normalised image coordinates, times the image width.
    That is the region's width in pixels for an upright region or a square frame; a rotated
    region in a non-square frame differs by up to a few per cent, kept for parity."""
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    return roi.w * math.hypot(c, s * width / height)


def roi_from_detection(face: KeypointFace) -> Roi:
    """MediaPipe's face-detector region: box centre and size, eye-line rotation, times 1.5."""
    x, y, w, h = face.box if face.box is not None else (face.x, face.y, face.w, face.h)
    (x0, y0), (x1, y1) = face.keypoints[0], face.keypoints[1]
    return Roi(x + w / 2, y + h / 2, w * ROI_SCALE, h * ROI_SCALE, _rotation(x0, y0, x1, y1))


def roi_from_box(face: Face) -> Roi:
    """A first-pass region for a box without keypoints: upright, its long side times 1.5."""
    side = max(face.w, face.h) * ROI_SCALE
    return Roi(face.x + face.w / 2, face.y + face.h / 2, side, side, 0.0)


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    """MediaPipe's next-frame region from landmarks: their bounding box, rotated by the line from
    landmark 33 to 263, squared on its long side, times 1.5."""
    xy = landmarks[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    (x0, y0), (x1, y1) = xy[ROTATION_FROM], xy[ROTATION_TO]
    side = float(max(hi - lo)) * ROI_SCALE
    centre = (lo + hi) / 2
    return Roi(float(centre[0]), float(centre[1]), side, side,
               _rotation(float(x0), float(y0), float(x1), float(y1)))


@dataclass
class MeshResult:
    """One face's mesh. ``landmarks`` (478, 3) float32: x, y in full-resolution pixels, z in
    pixels at the same scale; ``blendshapes`` (52,) float32 in schema.BLENDSHAPES order;
    ``matrix`` (4, 4) the facial transformation matrix (canonical face -> camera space, cm);
    ``yaw``, ``pitch``, ``roll`` degrees; ``translation`` (3,) cm; ``presence`` in [0, 1];
    ``roi`` the region the landmarks came from; ``next_roi`` the region they give (to track the
    face into the next frame without detection, as MediaPipe's VIDEO mode does)."""

    landmarks: np.ndarray
    blendshapes: np.ndarray
    matrix: np.ndarray
    yaw: float
    pitch: float
    roll: float
    translation: np.ndarray
    presence: float
    roi: Roi
    next_roi: Roi


class FaceMesh:
    """MediaPipe's face landmarker on LiteRT, ``threads`` threads per model.

    ``detect(images)`` finds faces with the bundle's BlazeFace; ``mesh(image, face)`` gives one
    face's :class:`MeshResult` (or None when the landmark model says there is no face), for a
    BlazeFace face, any detector's box, or a :class:`Roi` (e.g. the previous frame's
    ``next_roi``). Images are BGR, as OpenCV decodes them. Load once per process and reuse.
    """

    def __init__(self, threads: int = 1, min_presence: float = 0.5,
                 min_detection: float = 0.5, blendshapes: bool = True):
        self.threads = threads
        self.min_presence = min_presence
        self.detector = BlazeFaceDetector(threads, min_score=min_detection)
        self._landmarks = bundle.interpreter(bundle.LANDMARKS, threads)
        inp = self._landmarks.get_input_details()[0]
        if tuple(inp["shape"]) != (1, LANDMARKS_INPUT, LANDMARKS_INPUT, 3):
            raise bundle.BundleError(f"{bundle.LANDMARKS}: input shape {inp['shape']}, expected "
                                     f"(1, {LANDMARKS_INPUT}, {LANDMARKS_INPUT}, 3)")
        self._lm_in = inp["index"]
        outs = self._landmarks.get_output_details()  # [landmarks, face flag, tongue out]
        if int(np.prod(outs[0]["shape"])) != N_LANDMARKS * 3 or int(np.prod(outs[1]["shape"])) != 1:
            raise bundle.BundleError(f"{bundle.LANDMARKS}: outputs "
                                     f"{[tuple(o['shape']) for o in outs]}, expected 1434 + 1")
        self._lm_out, self._flag_out = outs[0]["index"], outs[1]["index"]
        self._blend = None
        if blendshapes:
            self._blend = bundle.interpreter(bundle.BLENDSHAPES, threads)
            b_in = self._blend.get_input_details()[0]
            b_out = self._blend.get_output_details()[0]
            if tuple(b_in["shape"]) != (1, len(BLENDSHAPE_LANDMARKS), 2) or \
                    int(np.prod(b_out["shape"])) != len(schema.BLENDSHAPES):
                raise bundle.BundleError(f"{bundle.BLENDSHAPES}: shapes {b_in['shape']} -> "
                                         f"{b_out['shape']}, expected (1, 146, 2) -> (52,)")
            self._b_in, self._b_out = b_in["index"], b_out["index"]

    def detect(self, images: list[np.ndarray]) -> list[list[KeypointFace]]:
        """BlazeFace faces per image, best first, in full-resolution pixels."""
        return self.detector.detect(images)

    def landmarks(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """(478, 3) float32 landmarks in image pixels and the presence score for one region."""
        bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        crop = cv2.warpAffine(bgr, roi.crop_matrix(LANDMARKS_INPUT),
                              (LANDMARKS_INPUT, LANDMARKS_INPUT),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * (1.0 / 255.0)
        self._landmarks.set_tensor(self._lm_in, tensor[None])
        self._landmarks.invoke()
        raw = self._landmarks.get_tensor(self._lm_out).reshape(N_LANDMARKS, 3)
        flag = float(self._landmarks.get_tensor(self._flag_out).reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-flag))
        out = np.empty((N_LANDMARKS, 3), np.float32)
        out[:, :2] = roi.to_image(raw[:, :2].astype(np.float64), LANDMARKS_INPUT)
        h, w = image.shape[:2]
        out[:, 2] = raw[:, 2] / LANDMARKS_INPUT * _z_scale(roi, w, h)
        return out, presence

    def blendshapes(self, landmarks: np.ndarray) -> np.ndarray:
        """(52,) float32 blendshape scores from (478, 3) landmarks in pixels."""
        if self._blend is None:
            raise RuntimeError("this FaceMesh was made with blendshapes=False")
        points = landmarks[list(BLENDSHAPE_LANDMARKS), :2].astype(np.float32)[None]
        self._blend.set_tensor(self._b_in, points)
        self._blend.invoke()
        return self._blend.get_tensor(self._b_out).reshape(-1).astype(np.float32).copy()

    def mesh(self, image: np.ndarray, face: Face | Roi) -> MeshResult | None:
        """The mesh of one face (a BlazeFace face, any detector's box, or a region)."""
        if isinstance(face, Roi):
            roi = face
        elif isinstance(face, KeypointFace) and len(face.keypoints) >= 2:
            roi = roi_from_detection(face)
        else:
            first, presence = self.landmarks(image, roi_from_box(face))
            if presence < self.min_presence:
                return None
            roi = roi_from_landmarks(first)
        landmarks, presence = self.landmarks(image, roi)
        if presence < self.min_presence:
            return None
        h, w = image.shape[:2]
        matrix = face_geometry.transformation_matrix(landmarks, w, h)
        pose = face_geometry.head_pose(matrix)
        blend = (self.blendshapes(landmarks) if self._blend is not None
                 else np.full(len(schema.BLENDSHAPES), np.nan, np.float32))
        return MeshResult(landmarks, blend, matrix.astype(np.float32), pose.yaw, pose.pitch,
                          pose.roll, pose.translation, presence, roi,
                          roi_from_landmarks(landmarks))

    def mesh_faces(self, image: np.ndarray, faces: list[Face]) -> list[MeshResult | None]:
        """:meth:`mesh` for each face of one image, in the order given."""
        return [self.mesh(image, face) for face in faces]


# ---------------------------------------------------------------- the mesh table
def mesh_row(clip_id: str, frame_index: int, face_index: int,
             result: MeshResult | None) -> tuple:
    """One row of the mesh table (schema.MESH_COLUMNS); a face without a mesh (presence under
    ``mesh.min_presence``) keeps its keys, with every other column empty (NaN / null)."""
    if result is None:
        nan = math.nan
        return (clip_id, frame_index, face_index, nan, nan, nan, nan, nan, nan, nan,
                *([nan] * len(schema.BLENDSHAPES)), None)
    t = result.translation
    return (clip_id, frame_index, face_index, float(result.presence), float(result.yaw),
            float(result.pitch), float(result.roll), float(t[0]), float(t[1]), float(t[2]),
            *map(float, result.blendshapes),
            np.asarray(result.landmarks, dtype=np.float32).reshape(-1))


@functools.cache
def mesh_schema():
    """The mesh table's Arrow schema (pyarrow is imported here, not with the engine)."""
    import pyarrow as pa

    return pa.schema(
        [(schema.CLIP_ID, pa.string()), (schema.FRAME_INDEX, pa.int64()),
         (schema.FACE_INDEX, pa.int16())]
        + [(c, pa.float32()) for c in schema.MESH_COLUMNS[3:-1]]
        + [(schema.LANDMARKS, pa.list_(pa.float32(), schema.N_LANDMARKS * 3))])


def mesh_table(rows: list[tuple]):
    """Rows of :func:`mesh_row` as an Arrow table: landmarks stay one fixed-size float32 list
    per row (1,434 values), never 1,434 columns. ``pandas.read_parquet`` gives them back as
    one numpy array per row; :func:`landmarks_array` stacks them to (rows, 478, 3)."""
    from videmo import arrow

    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema.MESH_COLUMNS]
    return arrow.table(columns, mesh_schema(), nan_is_null=False)


def landmarks_array(table) -> np.ndarray:
    """The landmarks column of a mesh table (pandas or Arrow) as float32 (rows, 478, 3); rows
    without a mesh are NaN."""
    values = table[schema.LANDMARKS]
    values = values.to_pylist() if hasattr(values, "to_pylist") else values
    out = np.full((len(values), schema.N_LANDMARKS, 3), np.nan, dtype=np.float32)
    for i, v in enumerate(values):
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            out[i] = np.asarray(v, dtype=np.float32).reshape(schema.N_LANDMARKS, 3)
    return out


class MeshExtractor(FeatureExtractor):
    """The face mesh of each face (a :class:`MeshResult`, or None under ``mesh.min_presence``):
    the mesh table RUN/features/mesh.parquet (schema.MESH_COLUMNS, :func:`mesh_row`)."""

    name = "mesh"
    section = "mesh"
    table = schema.MESH_TABLE
    columns = schema.MESH_COLUMNS[3:]
    parquet = schema.MESH_PARQUET

    @classmethod
    def cache_key(cls, cfg: Config) -> dict:
        """The per-frame table's key (the same sampled frames and faces), the mesh options,
        the bundle's sha256 and the LiteRT version."""
        from videmo.models import FACE_LANDMARKER, model_hashes
        from videmo.runtime import package_version

        return {"extract_hash": cfg.extract_hash(), "mesh": cfg.to_dict()["mesh"],
                "model_sha256": {FACE_LANDMARKER: model_hashes()[FACE_LANDMARKER]},
                "packages": {"ai-edge-litert": package_version("ai-edge-litert")}}

    @classmethod
    def rows(cls, clip_id: str, frame_index: int, outputs: list) -> list[tuple]:
        return [mesh_row(clip_id, frame_index, i, m) for i, m in enumerate(outputs)]

    @classmethod
    def to_table(cls, rows: list[tuple]):
        return mesh_table(rows)

    def __init__(self, cfg: Config, threads: int) -> None:
        self.mesh = FaceMesh(threads, min_presence=cfg.mesh.min_presence)

    def extract(self, batch: FaceBatch) -> list[MeshResult | None]:
        return self.mesh.mesh_faces(batch.image, batch.faces)
