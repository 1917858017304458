"""Sample frames from a clip, streaming: one decoded frame in memory at a time.

Skipped frames are only ``grab()``-ed (demuxed and decoded, never converted to BGR); seeking is
avoided because ``CAP_PROP_POS_FRAMES`` is slow on long-GOP video and has returned the wrong frame.
Timestamps are the container's presentation times (``CAP_PROP_POS_MSEC`` after each grab), with
``index / fps`` as the fallback; never a hard-coded frame rate, so variable-frame-rate video
(phones, screen recordings) keeps its real clock.

Videos with rotation metadata (a phone's display matrix) are decoded upright:
``CAP_PROP_ORIENTATION_AUTO`` is set explicitly, because the default is the build's choice
(OpenCV's FFmpeg backend turns it on only when built against libavutil >= 52.92, as 4.14's wheels
are; releases before 4.5 ignore the metadata) and a face on its side is not found by the
detector. A build that cannot apply it says so in the clip's reason. Image files are upright
already (``imread`` applies EXIF orientation).

Decoding counts what it finds against what the clip should hold (:class:`SourceInfo`): a
shortfall above ``schema.TRUNCATED_SHORTFALL`` marks the clip truncated (its status stays done).
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from videmo import schema
from videmo.config import Config, SamplingConfig
from videmo.extract.corpus import Clip, image_files
from videmo.runtime import current_threads

log = logging.getLogger(__name__)


class ClipError(RuntimeError):
    """This clip cannot be analysed (unreadable, not a video, no frames); the run goes on."""


@dataclass
class Frame:
    index: int  # position in decode order, 0-based
    time_s: float
    image: np.ndarray  # BGR, full resolution


@dataclass
class SourceInfo:
    """What the container says about a clip, and what decoding found.

    ``frames_expected`` is what the clip should hold: the container's frame count (OpenCV's
    FFmpeg backend falls back to duration x fps when the header has no count), the number of
    images of an image sequence; None when unknown. ``frames_decoded`` is what was read: frames
    grabbed from a video, images reached in name order less those found unreadable (only sampled
    images are read). ``truncated``: decoding ended before its stop point (the clip's end, or
    ``sampling.end_s``) more than ``schema.TRUNCATED_SHORTFALL`` short of the frames expected up
    to that point; stopping early on purpose (``end_s``, ``max_frames``) is never truncation.
    """

    fps: float = math.nan
    frame_count: int = -1  # as announced by the container; may be wrong
    width: int = 0  # upright (after rotation metadata is applied)
    height: int = 0
    frames_decoded: int = 0
    frames_expected: int | None = None
    truncated: bool = False
    duration_s: float | None = None  # see schema.DURATION_S
    warnings: list[str] = field(default_factory=list)

    def container_duration(self) -> float | None:
        """Frame count / fps as the container announces them; None when unknown."""
        if self.frame_count > 0 and math.isfinite(self.fps) and self.fps > 0:
            return self.frame_count / self.fps
        return None

    def check_shortfall(self, s: SamplingConfig, stopped: bool, cause: str) -> None:
        """Set ``truncated`` (and say why, ``cause``, in ``warnings``) once decoding has ended;
        ``stopped``: the sampler ended it on purpose, before the clip's end."""
        if stopped or not self.frames_expected:
            return
        due = self.frames_expected
        if s.end_s is not None and math.isfinite(self.fps):  # frames before end_s
            due = min(due, math.ceil(s.end_s * self.fps - 1e-6))
        if self.frames_decoded < due * (1 - schema.TRUNCATED_SHORTFALL):
            self.truncated = True
            until = "" if due == self.frames_expected else " before sampling.end_s"
            self.warnings.append(f"decoded {self.frames_decoded} of {due} frames expected"
                                 f"{until} ({cause})")


class Sampler:
    """Decides, frame by frame in decode order, which frames are analysed.

    ``every_n``: the first frame at or after ``start_s`` and every Nth frame after it.
    ``fps``: the first frame at or after each tick ``start_s + k / fps``.
    Frames at or after ``end_s`` stop the clip; ``max_frames`` caps the picks.
    """

    def __init__(self, s: SamplingConfig):
        self.s = s
        self.first: int | None = None
        self.next_tick = s.start_s
        self.picked = 0

    def done(self, time_s: float) -> bool:
        if self.s.max_frames is not None and self.picked >= self.s.max_frames:
            return True
        return self.s.end_s is not None and time_s >= self.s.end_s - 1e-9

    def pick(self, index: int, time_s: float) -> bool:
        if time_s < self.s.start_s - 1e-9:
            return False
        if self.s.fps is not None:
            if time_s + 1e-6 < self.next_tick:
                return False
            # advance past this frame's time so one frame answers one tick at most
            k = math.floor((time_s - self.s.start_s) * self.s.fps + 1e-6) + 1
            self.next_tick = self.s.start_s + k / self.s.fps
        else:
            if self.first is None:
                self.first = index
            if (index - self.first) % self.s.every_n:
                return False
        self.picked += 1
        return True


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ClipError(f"cannot stat file: {e.strerror}") from None
    if path.is_dir():
        raise ClipError("is a directory, not a video file")
    if size == 0:
        raise ClipError("empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise ClipError("permission denied: the file is not readable")


def _open_upright(path: Path, info: SourceInfo) -> cv2.VideoCapture:
    """Open a video so that its frames come out upright (rotation metadata applied), decoded
    by at most this worker's threads (:func:`videmo.runtime.current_threads`): FFmpeg's
    decoder otherwise starts one thread per core in every worker, so ``--jobs 2`` on two
    cores ran four decoder threads and ``run.threads`` did not bound a worker."""
    threads = current_threads()
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if not cap.isOpened():
        return cap
    rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360
    if not cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1) and rotation:
        info.warnings.append(f"rotation metadata ({rotation} degrees) could not be applied by "
                             f"this OpenCV build: frames analysed as stored, on their side")
    return cap


def sample_video(clip: Clip, s: SamplingConfig, info: SourceInfo) -> Iterator[Frame]:
    """Stream the sampled frames of a video file; fills ``info`` as it goes."""
    _check_readable(clip.path)
    cap = _open_upright(clip.path, info)
    try:
        if not cap.isOpened():
            raise ClipError("cannot open as video (not a video, truncated or unsupported codec)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        info.fps = fps if fps and math.isfinite(fps) and 0 < fps < 10_000 else math.nan
        info.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or -1)
        info.frames_expected = info.frame_count if info.frame_count > 0 else None
        # upright with ORIENTATION_AUTO; the first decoded frame has the last word
        info.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        info.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        step = 1.0 / info.fps if math.isfinite(info.fps) else 1.0 / 30.0
        sampler = Sampler(s)
        index, prev_t, failed_retrieve, sized, stopped = -1, -math.inf, 0, False, False
        while True:
            if not cap.grab():
                break
            index += 1
            pos = cap.get(cv2.CAP_PROP_POS_MSEC)
            # trust the container's timestamp when it moves forward; else extrapolate
            t = pos / 1000.0 if pos is not None and math.isfinite(pos) else math.nan
            if not math.isfinite(t) or t <= prev_t or (index > 0 and pos == 0):
                t = index * step if index == 0 or not math.isfinite(prev_t) else prev_t + step
            prev_t = t
            info.frames_decoded = index + 1
            if sampler.done(t):
                stopped = True
                break
            if not sampler.pick(index, t):
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                failed_retrieve += 1
                sampler.picked -= 1
                continue
            if not sized:
                info.height, info.width = image.shape[:2]
                sized = True
            yield Frame(index, t, image)
        if info.frames_decoded == 0:
            raise ClipError("no decodable frames (empty or corrupt video stream)")
        info.duration_s = info.container_duration() if stopped else prev_t + step
        if failed_retrieve:
            info.warnings.append(f"{failed_retrieve} sampled frame(s) could not be decoded")
        info.check_shortfall(s, stopped, "truncated file or wrong header: the container "
                                         "announces more frames than it holds")
    finally:
        cap.release()


def sample_images(clip: Clip, cfg: Config, info: SourceInfo) -> Iterator[Frame]:
    """Stream the sampled frames of an image-sequence clip (fps from ``corpus.image_fps``)."""
    files = image_files(clip, cfg)
    if not files:
        raise ClipError("image-sequence folder holds no images")
    info.fps = cfg.corpus.image_fps
    info.frame_count = info.frames_expected = len(files)
    info.duration_s = len(files) / cfg.corpus.image_fps
    sampler = Sampler(cfg.sampling)
    unreadable: list[str] = []
    stopped = False
    for index, path in enumerate(files):
        t = index / cfg.corpus.image_fps
        if sampler.done(t):
            stopped = True
            break
        info.frames_decoded = index + 1 - len(unreadable)
        if not sampler.pick(index, t):
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if os.access(path, os.R_OK) else None
        if image is None:
            unreadable.append(path.name)
            info.frames_decoded -= 1
            sampler.picked -= 1
            continue
        if not info.width:
            info.height, info.width = image.shape[:2]
        yield Frame(index, t, image)
    if unreadable:
        info.warnings.append(f"{len(unreadable)} unreadable image(s) skipped: "
                             f"{', '.join(unreadable[:5])}")
    info.check_shortfall(cfg.sampling, stopped, "unreadable images")


def sample_frames(clip: Clip, cfg: Config, info: SourceInfo | None = None) -> Iterator[Frame]:
    """The sampled frames of any clip, in order. Raises :class:`ClipError` for a bad clip."""
    info = info if info is not None else SourceInfo()
    if clip.kind == "images":
        return sample_images(clip, cfg, info)
    return sample_video(clip, cfg.sampling, info)



class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(frames: Iterator[Frame], depth: int) -> Iterator[Frame]:
    """Decode ahead in a background thread, at most ``depth`` frames, so that decoding overlaps
    face detection (OpenCV releases the GIL in both). Same frames, same order, same errors;
    worth it only with a second core (videmo uses it when a worker has 2+ threads)."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    return
            put(end)
        except BaseException as e:  # ClipError and the like: raised again in the consumer
            put(_Failure(e))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # releases the VideoCapture in this thread, where the generator runs

    worker = threading.Thread(target=produce, name="videmo-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
