"""Face tracks: link one clip's face boxes across sampled frames into people over time.

Sampled frames are sparse (every 20th frame is two thirds of a second at 30 fps), so a track
links a box to the track whose last box it overlaps most (IoU at least ``min_iou``), or, when a
face moved further than its own size allows an overlap, whose last box is nearest (centre
distance under ``max_shift`` box widths) and of a similar size (side ratio within 2). Matches
are made greedily, the most similar pair first, so the result depends only on the boxes. A
track ends after ``max_gap`` sampled frames without a match (a cut to another camera, a face
turned away); a face that comes back later starts a new track.

Track ids count from 0 in order of first appearance within the clip; rows without a face get
-1. :func:`videmo.evaluate.vote.main_track` picks a clip's main person from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from videmo.extract.images import iou


@dataclass
class _Track:
    id: int
    box: np.ndarray  # x, y, w, h of its last box
    last: int  # ordinal of the sampled frame of its last box


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (x, y, w, h) boxes."""
    def corners(box: np.ndarray) -> np.ndarray:
        return np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]], np.float64)

    return float(iou(corners(a), corners(b))[0])


def _similarity(a: np.ndarray, b: np.ndarray, min_iou: float, max_shift: float) -> float:
    """> 1 for an overlap (1 + IoU), in (0, 1] for a near box of similar size, 0 for none."""
    iou = _iou(a, b)
    if iou >= min_iou:
        return 1.0 + iou
    ratio = max(a[2], b[2]) / max(1e-9, min(a[2], b[2]))
    if ratio > 2.0:
        return 0.0
    ca = a[:2] + a[2:] / 2
    cb = b[:2] + b[2:] / 2
    shift = float(np.hypot(*(ca - cb))) / max(1e-9, (a[2] + b[2]) / 2)
    return 1.0 - shift / max_shift if shift < max_shift else 0.0


def assign_tracks(frame_index: np.ndarray, boxes: np.ndarray, *, min_iou: float = 0.3,
                  max_shift: float = 1.0, max_gap: int = 5) -> np.ndarray:
    """Track id of every face row of one clip.

    ``frame_index`` (n,) and ``boxes`` (n, 4: x, y, w, h) are the clip's rows in frame order;
    rows without a face have a NaN box and get -1. Frames are counted by their order among
    the distinct frame indices given (sampled frames), so ``max_gap`` is in sampled frames.
    """
    frame_index = np.asarray(frame_index)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    out = np.full(len(frame_index), -1, dtype=np.int32)
    ordinal = {f: i for i, f in enumerate(dict.fromkeys(frame_index.tolist()))}
    active: list[_Track] = []
    next_id = 0
    for f, k in ordinal.items():
        rows = [r for r in np.flatnonzero(frame_index == f) if not np.isnan(boxes[r]).any()]
        active = [t for t in active if k - t.last <= max_gap]
        pairs = sorted(((-_similarity(boxes[r], t.box, min_iou, max_shift), i, r)
                        for i, t in enumerate(active) for r in rows), key=lambda p: p[:3])
        used_t: set[int] = set()
        used_r: set[int] = set()
        for neg, i, r in pairs:
            if neg >= 0 or i in used_t or r in used_r:
                continue
            used_t.add(i)
            used_r.add(r)
            active[i].box, active[i].last = boxes[r], k
            out[r] = active[i].id
        for r in rows:
            if r not in used_r:
                active.append(_Track(next_id, boxes[r], k))
                out[r] = next_id
                next_id += 1
    return out
