"""Write tests/data/mtcnn_golden.npz: the ``mtcnn`` 1.0.0 package's MTCNN (TensorFlow) on
committed frames, for the parity test of videmo's LiteRT MTCNN (tests/test_mtcnn.py).

Run from the repository root with videmo's Python (TensorFlow and mtcnn==1.0.0 installed):

    /work/main/.venv/bin/python scripts/mtcnn_golden.py

The frames (:func:`golden_frames`, which the test imports, so both build them alike) are all
made from the sample corpus data/sample/crema-d, decoded with cv2.VideoCapture.read():

- ``sample``: frames 0, 25 and 50 of each of the six clips (480x360, one face of ~125 px);
- ``tiled``: frame 25 of four clips in a 2x2 grid (960x720, four faces);
- ``small``: frame 25 of the six clips shrunk by INTER_AREA to 0.2 and 0.17 of their size, in a
  grid of 4x3 tiles (faces of ~20-25 px, the package's minimum face is 20);
- ``noface``: the left 150 columns of frame 0 of each of two clips (the background beside the
  actor) side by side, and a mid-grey frame.

For each frame and each stage set (``pr``: P- and R-Net, the package's ``face_detection_only``;
``pro``: all three, ``face_and_landmarks_detection``) it stores the package's detections
before rounding (``output_type="numpy"``, corners clipped to the frame as the package does):
``{set}_rows`` (k, 6) = frame number, x1, y1, x2, y2, confidence, and for ``pro`` also
``pro_landmarks`` (k, 5, 2) in the package's order (left eye, right eye, nose, mouth left,
mouth right). ``frame_sha256`` (n,) holds each frame's BGR bytes' sha256, ``frame_name`` (n,)
its name.

It also measures, on the same frames, how far videmo's LiteRT detector moves with LiteRT's
reference kernels (``OpResolverType.BUILTIN_REF``, plain C++ loops, the same on every CPU)
against its default XNNPACK kernels (SIMD code chosen per CPU): ``spread_score`` and
``spread_corner`` (max abs difference over matched faces, both stage sets). The test's
tolerances are derived from these and from the LiteRT-vs-TensorFlow differences printed here.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "crema-d"
OUT = REPO / "tests" / "data" / "mtcnn_golden.npz"
FRAMES = (0, 25, 50)
STAGE_SETS = {"pr": "face_detection_only", "pro": "face_and_landmarks_detection"}


def decode(path: Path, wanted: tuple[int, ...]) -> dict[int, np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    out, index = {}, 0
    while index <= max(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            out[index] = frame
        index += 1
    cap.release()
    if set(wanted) - set(out):
        raise SystemExit(f"{path}: frames {sorted(set(wanted) - set(out))} not decodable")
    return out


def _grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    out = np.full((rows * h, cols * w, 3), 127, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return out


def golden_frames(sample: Path = SAMPLE) -> list[tuple[str, np.ndarray]]:
    """(name, BGR frame) for every golden frame, built from the sample clips."""
    import cv2

    clips = sorted(sample.glob("*.flv"))
    if len(clips) != 6:
        raise SystemExit(f"expected the six sample clips in {sample}, found {len(clips)}")
    decoded = {p.stem: decode(p, FRAMES) for p in clips}
    out = [(f"sample/{stem}/{i}", f) for stem, frames in decoded.items()
           for i, f in sorted(frames.items())]
    mid = [frames[25] for frames in decoded.values()]
    out.append(("tiled/2x2", _grid(mid[:4], 2)))
    for factor in (0.2, 0.17):
        small = [cv2.resize(f, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
                 for f in mid]
        out.append((f"small/{factor}", _grid(small + small[:6], 4)))
    first = [frames[0] for frames in decoded.values()]
    out.append(("noface/background", np.ascontiguousarray(np.hstack([first[0][:, :150],
                                                                       first[1][:, :150]]))))
    out.append(("noface/grey", np.full((360, 480, 3), 128, np.uint8)))
    return out


def sha256(frame: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest()


def package_rows(frames: list[np.ndarray], stages: str) -> tuple[np.ndarray, np.ndarray]:
    """The package's detections of every frame, one call per frame: (rows (k, 6), landmarks)."""
    import cv2
    from mtcnn import MTCNN

    detector = MTCNN(stages=stages)
    rows, marks = [], []
    for n, frame in enumerate(frames):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        width = 16 if stages == STAGE_SETS["pro"] else 6
        r = np.asarray(detector.detect_faces(rgb, min_face_size=20, box_format="xyxy",
                                             output_type="numpy"), np.float64).reshape(-1, width)
        rows.append(np.column_stack([np.full(len(r), n), r[:, 1:6]]))
        if r.shape[1] == 16:
            marks.append(np.stack([r[:, 6:11], r[:, 11:16]], axis=2))
    rows_a = np.concatenate(rows) if rows else np.empty((0, 6))
    marks_a = np.concatenate(marks) if marks else np.empty((0, 5, 2))
    return rows_a, marks_a


def litert_rows(frames: list[np.ndarray], onet: bool, op_resolver=None) -> list[np.ndarray]:
    sys.path.insert(0, str(REPO / "src"))
    from videmo.extract.detectors.mtcnn_litert import MtcnnLiteDetector

    det = MtcnnLiteDetector(onet=onet, op_resolver=op_resolver)
    return [det.detect_rows([f])[0] for f in frames]


def spread(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float, int]:
    """Max |score| and |corner| difference over faces found by both, and faces found by one."""
    score = corner = 0.0
    unmatched = 0
    for x, y in zip(a, b, strict=True):
        unmatched += abs(len(x) - len(y))
        k = min(len(x), len(y))
        if k:
            corner = max(corner, float(np.abs(x[:k, :4] - y[:k, :4]).max()))
            score = max(score, float(np.abs(x[:k, 4] - y[:k, 4]).max()))
    return score, corner, unmatched


def main() -> None:
    from ai_edge_litert.interpreter import OpResolverType

    named = golden_frames()
    frames = [f for _, f in named]
    data = {"frame_name": np.array([n for n, _ in named]),
            "frame_sha256": np.array([sha256(f) for f in frames])}
    spreads = {"score": 0.0, "corner": 0.0}
    for key, stages in STAGE_SETS.items():
        rows, marks = package_rows(frames, stages)
        data[f"{key}_rows"] = rows
        if key == "pro":
            data["pro_landmarks"] = marks
        onet = key == "pro"
        xnn = litert_rows(frames, onet)
        ref = litert_rows(frames, onet, OpResolverType.BUILTIN_REF)
        s, c, u = spread(xnn, ref)
        spreads["score"], spreads["corner"] = max(spreads["score"], s), max(spreads["corner"], c)
        pkg = [rows[rows[:, 0] == n][:, 1:] for n in range(len(frames))]
        ts, tc, tu = spread(xnn, pkg)
        print(f"{key}: {len(rows)} faces in {len(frames)} frames; LiteRT XNNPACK vs reference "
              f"kernels: score {s:.2e}, corner {c:.2e} px, {u} unmatched; LiteRT vs TensorFlow: "
              f"score {ts:.2e}, corner {tc:.2e} px, {tu} unmatched")
    data["spread_score"] = np.float64(spreads["score"])
    data["spread_corner"] = np.float64(spreads["corner"])
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
