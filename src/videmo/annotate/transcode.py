"""Playable copies of clips for the annotation page: WebM/VP9 + Opus, made once, cached.

Browsers play MP4 (H.264) and WebM (VP8/VP9/AV1); corpora hold FLV, AVI, MPEG-4 Part 2, ...
Debian's Chromium may also lack H.264, hence ``annotate.transcode: always``. A copy is keyed by
the original's resolved path, size and mtime (and this module's encoder settings), so a changed
file gets a new copy and the original is only ever read. ffmpeg writes to a temporary name in the
cache and the copy is renamed into place when complete, so a killed server leaves no half copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from videmo.extract.corpus import Clip
from videmo.store.files import atomic_path

log = logging.getLogger(__name__)

# Changing the encoder arguments changes every cache key (old copies are simply not used).
ENCODER_VERSION = "vp9-rt8-crf36-opus96-1"
ENCODE_ARGS = ["-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libvpx-vp9", "-deadline", "realtime",
               "-cpu-used", "8", "-row-mt", "1", "-crf", "36", "-b:v", "0", "-pix_fmt", "yuv420p",
               "-c:a", "libopus", "-b:a", "96k", "-ac", "2", "-f", "webm"]
# (extension, video codecs) a browser plays as they are; audio must be one of PLAYABLE_AUDIO
PLAYABLE = {".mp4": {"h264", "vp9", "av1"}, ".m4v": {"h264", "vp9", "av1"},
            ".webm": {"vp8", "vp9", "av1"}}
PLAYABLE_AUDIO = {None, "aac", "mp3", "opus", "vorbis"}
MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm"}


class TranscodeError(RuntimeError):
    """ffmpeg is missing, or could not make a playable copy of a clip (the message says which)."""


def find_ffmpeg() -> tuple[str, str]:
    """Paths of ffmpeg and ffprobe, or a TranscodeError that says how to install them."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not ffmpeg or not ffprobe:
        missing = " and ".join(n for n, p in (("ffmpeg", ffmpeg), ("ffprobe", ffprobe)) if not p)
        raise TranscodeError(f"{missing} not found on PATH: the annotation page needs it to play "
                             "clips browsers cannot (flv, avi, ...). Install it: "
                             "apt-get install ffmpeg")
    return ffmpeg, ffprobe


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "videmo" / "transcode"


@dataclass(frozen=True)
class Playable:
    """What the server sends for a clip: a file and its content type."""

    path: Path
    mime: str
    transcoded: bool


def cache_key(path: Path) -> str:
    """Key of a clip's copy: resolved path, size, mtime (ns) and the encoder settings."""
    st = path.stat()
    blob = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{ENCODER_VERSION}"
    return hashlib.sha256(blob.encode("utf-8", "surrogateescape")).hexdigest()[:24]


class Transcoder:
    """Finds or makes the playable file of a clip; one ffmpeg at a time, one copy per clip."""

    def __init__(self, cache_dir: Path, mode: str = "auto", ffmpeg: str | None = None,
                 ffprobe: str | None = None):
        if ffmpeg is None or ffprobe is None:
            ffmpeg, ffprobe = find_ffmpeg()
        self.ffmpeg, self.ffprobe, self.mode = ffmpeg, ffprobe, mode
        self.cache_dir = cache_dir
        self._lock = threading.Lock()  # guards the dicts below
        self._clip_locks: dict[str, threading.Lock] = {}
        self._encode = threading.Semaphore(1)  # ffmpeg uses the cores; two at once gain nothing
        self._known: dict[str, Playable] = {}
        self._procs: set[subprocess.Popen] = set()
        self._closed = False

    def _clip_lock(self, clip_id: str) -> threading.Lock:
        with self._lock:
            return self._clip_locks.setdefault(clip_id, threading.Lock())

    def plays_natively(self, path: Path) -> bool:
        """True when a browser plays the file as it is (by extension and ffprobe's codecs)."""
        codecs = PLAYABLE.get(path.suffix.lower())
        if self.mode == "always" or not codecs:
            return False
        try:
            out = subprocess.run([self.ffprobe, "-v", "error", "-show_entries",
                                  "stream=codec_type,codec_name", "-of", "json", str(path)],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            streams = json.loads(out).get("streams", [])
        except (subprocess.SubprocessError, OSError, ValueError) as e:
            log.warning("ffprobe cannot read %s (%s): transcoding it", path, e)
            return False
        video = [s.get("codec_name") for s in streams if s.get("codec_type") == "video"]
        audio = [s.get("codec_name") for s in streams if s.get("codec_type") == "audio"]
        return bool(video) and video[0] in codecs and (audio[0] if audio else None) \
            in PLAYABLE_AUDIO

    def playable(self, clip: Clip) -> Playable:
        """The file to serve for ``clip``, transcoding it first when needed (may take seconds)."""
        with self._lock:
            if clip.clip_id in self._known:
                return self._known[clip.clip_id]
        with self._clip_lock(clip.clip_id):
            with self._lock:
                if clip.clip_id in self._known:
                    return self._known[clip.clip_id]
            if self.plays_natively(clip.path):
                result = Playable(clip.path, MIME[clip.path.suffix.lower()], False)
            else:
                result = Playable(self._transcode(clip), "video/webm", True)
            with self._lock:
                self._known[clip.clip_id] = result
            return result

    def prefetch(self, clip: Clip) -> None:
        """Make ``clip``'s copy in the background (the page asks for it next)."""
        def work() -> None:
            with contextlib.suppress(TranscodeError, OSError):
                self.playable(clip)

        threading.Thread(target=work, name=f"prefetch {clip.clip_id}", daemon=True).start()

    def _transcode(self, clip: Clip) -> Path:
        try:
            target = self.cache_dir / f"{cache_key(clip.path)}.webm"
        except OSError as e:
            raise TranscodeError(f"cannot read {clip.path}: {e}") from None
        if target.is_file() and target.stat().st_size > 0:
            return target
        with self._encode, atomic_path(target, keep_suffix=True) as tmp:
            if self._closed:
                raise TranscodeError("the server is stopping")
            log.info("transcoding %s -> %s", clip.path, target)
            proc = subprocess.Popen([self.ffmpeg, "-nostdin", "-v", "error", "-y", "-i",
                                     str(clip.path), *ENCODE_ARGS, str(tmp)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            with self._lock:
                self._procs.add(proc)
            try:
                _, err = proc.communicate()
            finally:
                with self._lock:
                    self._procs.discard(proc)
            if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
                raise TranscodeError(f"ffmpeg could not transcode {clip.path} (exit "
                                     f"{proc.returncode}): {err.strip()[-500:]}")
        return target

    def close(self) -> None:
        """Stop any ffmpeg still running (its temporary file is removed by its thread)."""
        with self._lock:
            self._closed = True
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
