"""Long recordings in chunks: the frame clock, the chunk plan and exact chunk decoding.

A chunk is the frames of a recording whose timestamps fall in ``[k * run.chunk_s,
(k + 1) * run.chunk_s)`` (or, to keep ``--jobs`` workers busy, ``[k * L, (k + 1) * L)`` for a
shorter ``L``: :func:`chunk_count`). Chunks are the units of ``--jobs``, SLURM shards and
resume, and the merged per-frame table of a chunked recording must equal the table of one
sequential pass (:func:`videmo.extract.frames.sample_video`): the same frames, the same
``frame_index`` (the frame's position in decode order from the start) and the same ``time_s``.

That needs every frame's index without decoding everything before it. The **frame clock** is
read once per recording in OpenCV's raw mode (``CAP_PROP_FORMAT = -1``: packets are demuxed,
never decoded), as the sorted presentation times of the video packets: frame ``i`` of a
sequential pass is the ``i``-th time, for constant and variable frame rates alike. Which frames
are sampled is then decided on the clock by the same :class:`~videmo.extract.frames.Sampler`
the sequential pass uses, so ``every_n``, ``fps``, ``start_s``, ``end_s`` and ``max_frames``
pick the same frames. A chunk's worker seeks to a little before its first frame, decodes
forward and checks each decoded frame's timestamp against the clock (the timestamp, not only
the count); on any mismatch it decodes that chunk again from the recording's start, which is
the sequential pass itself. A recording whose clock cannot be trusted (a timestamp missing or
repeated: the sequential pass would extrapolate) is not chunked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from videmo.config import Config, SamplingConfig
from videmo.extract.frames import ClipError, Frame, Sampler, SourceInfo, _open_upright
from videmo.schema import Clip

MIN_CHUNK_S = 30.0  # a recording is not cut finer than this to keep more workers busy
SEEK_LEAD_S = 2.0  # seek this far before a chunk's first frame (then further, if it lands late)


@dataclass(frozen=True)
class FrameClock:
    """Every frame's time in seconds, in the order a sequential pass decodes them."""

    times: np.ndarray
    fps: float
    frame_count: int  # as the container announces it

    @property
    def step(self) -> float:
        return 1.0 / self.fps if math.isfinite(self.fps) and self.fps > 0 else 1.0 / 30.0

    @property
    def duration_s(self) -> float:
        return float(self.times[-1]) + self.step if len(self.times) else 0.0


def probe_duration(clip: Clip, cfg: Config) -> float | None:
    """A recording's length from its container's header (frame count / fps), without decoding;
    image sequences: images / corpus.image_fps. None when unknown."""
    if clip.kind == "images":
        return len(clip.image_files(cfg.corpus.image_extensions)) / cfg.corpus.image_fps
    cap = cv2.VideoCapture(str(clip.path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return None
        count, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if count and count > 0 and fps and math.isfinite(fps) and 0 < fps < 10_000:
        return float(count) / float(fps)
    return None


def read_clock(path: Path) -> FrameClock | None:
    """The frame clock of a video (see the module doc); None when it cannot be trusted."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened() or not cap.set(cv2.CAP_PROP_FORMAT, -1):
            return None
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or -1)
        raw = []
        while cap.grab():
            raw.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    finally:
        cap.release()
    if not raw:
        return None
    ms = np.sort(np.asarray(raw, dtype=float))
    # what the sequential pass would have to extrapolate is not a clock to cut on
    if not np.isfinite(ms).all() or (len(ms) > 1 and (np.diff(ms) <= 0).any()) or \
            (len(ms) > 1 and ms[1] == 0):
        return None
    fps = fps if fps and math.isfinite(fps) and 0 < fps < 10_000 else math.nan
    return FrameClock(ms / 1000.0, fps, count)


def planned_picks(clock: FrameClock, s: SamplingConfig) -> np.ndarray:
    """Indices of the frames a sequential pass samples, decided on the clock."""
    sampler = Sampler(s)
    picks = []
    for index, t in enumerate(clock.times.tolist()):
        if sampler.done(t):
            break
        if sampler.pick(index, t):
            picks.append(index)
    return np.asarray(picks, dtype=np.int64)


@dataclass(frozen=True)
class ChunkSpan:
    """Chunk ``index`` of a recording: frames ``lo <= i < hi``, times ``[start_s, end_s)``."""

    index: int
    lo: int
    hi: int
    start_s: float
    end_s: float
    picks: int  # frames sampled in it


def chunk_count(duration_s: float, chunk_s: float, workers: int = 1) -> tuple[int, float]:
    """How many chunks a recording is cut into, and their length.

    ``ceil(duration / chunk_s)`` chunks of ``chunk_s`` (the last one shorter), as long as
    that keeps ``workers`` busy. Otherwise (fewer chunks than workers, or a count that leaves
    some workers idle for the last round) the count is rounded up to a multiple of
    ``workers`` and the recording cut into that many equal chunks, none shorter than
    :data:`MIN_CHUNK_S` (a worker's start and its seek are not worth less): a 3-minute
    recording with ``--jobs 2`` is two 90 s chunks, a 15-minute one four of 225 s, instead of
    one chunk (one busy worker) and 300 + 300 + 300 (the last alone). A last piece shorter
    than half a chunk and than :data:`MIN_CHUNK_S` joins the chunk before it: a "15-minute"
    recording is often a frame longer (900.04 s), which made four chunks, the last of one
    frame, and three workers' worth of work for two (measured: BENCHMARKS.md, --jobs 2)."""
    tail = min(MIN_CHUNK_S, chunk_s / 2)
    base = max(1, math.ceil(max(duration_s - tail, 0.0) / chunk_s))
    workers = max(1, workers)
    if workers == 1 or base % workers == 0:
        return base, chunk_s
    balanced = min(math.ceil(base / workers) * workers, int(duration_s // MIN_CHUNK_S))
    if balanced <= base:
        return base, chunk_s
    return balanced, duration_s / balanced


def plan_chunks(clock: FrameClock, s: SamplingConfig, chunk_s: float,
                workers: int = 1) -> list[ChunkSpan]:
    """Every chunk of a recording (:func:`chunk_count` for ``workers``), with the frames
    sampled in each (0: nothing to do there)."""
    picks = planned_picks(clock, s)
    n_chunks, length = chunk_count(clock.duration_s, chunk_s, workers)
    out = []
    for k in range(n_chunks):
        last = k == n_chunks - 1
        # the last chunk runs to the recording's end (a short tail joins it: chunk_count)
        start, end = k * length, max((k + 1) * length, clock.duration_s) if last else (
            (k + 1) * length)
        lo = int(np.searchsorted(clock.times, start - 1e-9, side="left"))
        hi = len(clock.times) if last else int(
            np.searchsorted(clock.times, end - 1e-9, side="left"))
        n = int(np.count_nonzero((picks >= lo) & (picks < hi)))
        out.append(ChunkSpan(k, lo, hi, start, end, n))
    return out


class ClockMismatch(RuntimeError):
    """A decoded frame's timestamp is not the clock's: the chunk is decoded from the start."""


def sample_chunk(clip: Clip, cfg: Config, clock: FrameClock, span: ChunkSpan,
                 info: SourceInfo) -> Iterator[Frame]:
    """The sampled frames of one chunk, as a sequential pass yields them. Seeks near the
    chunk's start; if the decoded timestamps disagree with the clock, decodes from the start."""
    picks = set(planned_picks(clock, cfg.sampling).tolist())
    info.fps, info.frame_count = clock.fps, clock.frame_count
    info.frames_expected = clock.frame_count if clock.frame_count > 0 else None
    info.duration_s = clock.duration_s
    lead = SEEK_LEAD_S
    last = -1  # the last frame yielded: a retry goes on after it
    while True:
        seek_to = clock.times[span.lo] - lead if span.lo > 0 else -1.0
        try:
            for frame in _decode_span(clip, clock, span, picks, info, max(seek_to, -1.0), last):
                last = frame.index
                yield frame
            return
        except ClockMismatch as e:
            if seek_to < 0:
                raise ClipError(f"frame timestamps differ from the container's packet times "
                                f"({e}): set run.chunk_s: null to analyse this recording in "
                                f"one pass") from None
            lead = math.inf  # decode from the start: exact by construction, only slower
        except _LandedLate:
            lead *= 4


class _LandedLate(RuntimeError):
    """The seek landed after the chunk's first frame: seek earlier."""


def _decode_span(clip: Clip, clock: FrameClock, span: ChunkSpan, picks: set[int],
                 info: SourceInfo, seek_to: float, after: int) -> Iterator[Frame]:
    cap = _open_upright(clip.path, info)
    try:
        if not cap.isOpened():
            raise ClipError("cannot open as video (not a video, truncated or unsupported codec)")
        if seek_to > 0:
            cap.set(cv2.CAP_PROP_POS_MSEC, seek_to * 1000.0)
        index = None
        times = clock.times
        while True:
            if not cap.grab():
                if index is not None and index + 1 < span.hi:
                    raise ClockMismatch(f"decoding ended at frame {index}, the clock has "
                                        f"{len(times)}")
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if index is None:
                found = int(np.searchsorted(times, t - 1e-9, side="left"))
                if found >= len(times) or times[found] != t:
                    raise ClockMismatch(f"a frame at {t:.6f} s is not on the clock")
                if found > span.lo:
                    if seek_to <= 0:
                        raise ClockMismatch(f"the first frame is at {t:.6f} s")
                    raise _LandedLate()
                index = found
            else:
                index += 1
                if index >= len(times) or times[index] != t:
                    raise ClockMismatch(f"frame {index} is at {t:.6f} s, the clock says "
                                        f"{times[index] if index < len(times) else 'none'}")
            if index >= span.hi:
                break
            if index < span.lo or index <= after or index not in picks:
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                info.warnings.append(f"sampled frame {index} could not be decoded")
                continue
            if not info.width:
                info.height, info.width = image.shape[:2]
            yield Frame(index, float(t), image)
    finally:
        cap.release()
