"""Find the clips of a corpus: video files and image-sequence directories.

A clip's id is its path relative to its corpus root, without extension, in POSIX form
(``2019/biden_58.0``). Ids are what every table, report and resume check keys on, so two files
that would get the same id are an error that names both.

What a folder holds decides what its clips are:

* every video file (``corpus.video_extensions``) is a clip;
* a folder that holds images (``corpus.image_extensions``) and no video is one image-sequence
  clip, whatever else it holds (``README.txt``, ``Thumbs.db``, subfolders): a stray file must
  not drop a whole clip;
* images beside videos are not a clip: there they are thumbnails, posters or frames exported from
  the video beside them, and analysing them would count a clip twice or invent a one-frame
  clip. An image sequence that belongs beside videos goes in a folder of its own;
* every other file is ignored, and named: one warning per corpus root lists the ignored files
  (the first ten, and how many), so a video whose extension is missing from
  ``corpus.video_extensions`` is not skipped in silence. Hidden files (``.DS_Store``,
  ``._frame1.png``) are never clips or frames; the warning only counts them.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from videmo.config import Config

log = logging.getLogger(__name__)


class CorpusError(ValueError):
    """The corpus as configured cannot be used (missing root, duplicate ids, no clips)."""


@dataclass(frozen=True, order=True)
class Clip:
    clip_id: str
    path: Path
    kind: Literal["video", "images"] = "video"


def natural_key(name: str) -> list:
    """Sort key that orders frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _matches(rel: str, include: list[str], exclude: list[str]) -> bool:
    ok = any(fnmatch.fnmatch(rel, pat) for pat in include)
    return ok and not any(fnmatch.fnmatch(rel, pat) for pat in exclude)


def discover(cfg: Config) -> list[Clip]:
    """All clips of the configured corpus roots, sorted by id."""
    if not cfg.corpus.paths:
        raise CorpusError("config key 'corpus.paths' is empty: name at least one directory "
                          "of clips")
    clips: dict[str, Clip] = {}
    for root in cfg.corpus_paths:
        for clip in discover_root(root, cfg):
            if clip.clip_id in clips:
                other = clips[clip.clip_id]
                raise CorpusError(f"two clips have the id {clip.clip_id!r}: {other.path} and "
                                  f"{clip.path}; rename one or exclude it (corpus.exclude)")
            clips[clip.clip_id] = clip
    if not clips:
        roots = ", ".join(str(r) for r in cfg.corpus_paths)
        raise CorpusError(f"no clips found under {roots} (extensions: "
                          f"{' '.join(cfg.corpus.video_extensions)}; include "
                          f"{cfg.corpus.include}, exclude {cfg.corpus.exclude})")
    return sorted(clips.values())


def discover_root(root: Path, cfg: Config) -> list[Clip]:
    """Clips under one root. Symlinked folders are followed once (loops are cut)."""
    video_ext = {e.lower() for e in cfg.corpus.video_extensions}
    image_ext = {e.lower() for e in cfg.corpus.image_extensions}
    if not root.exists():
        raise CorpusError(f"corpus path does not exist: {root} (config key 'corpus.paths')")
    if root.is_file():
        return [Clip(root.stem, root)]
    if not os.access(root, os.R_OK | os.X_OK):
        raise CorpusError(f"corpus path is not readable: {root}")
    found: list[Clip] = []
    seen: set[str] = set()
    ignored: list[str] = []  # neither video nor image, relative to root
    beside: list[str] = []  # images in a folder that holds videos
    hidden = 0

    def on_error(err: OSError) -> None:
        log.warning("cannot list %s: %s", err.filename, err.strerror)

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            log.warning("skipping %s: symlink loop (already visited as %s)", dirpath, real)
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        visible = sorted(f for f in filenames if not f.startswith("."))
        hidden += len(filenames) - len(visible)
        videos = [f for f in visible if Path(f).suffix.lower() in video_ext]
        images = [f for f in visible if Path(f).suffix.lower() in image_ext]
        prefix = "" if rel_dir == "." else rel_dir + "/"
        ignored += [prefix + f for f in visible
                    if f not in videos and Path(f).suffix.lower() not in image_ext]
        if images and not videos:
            clip_id = rel_dir if rel_dir != "." else root.name
            if _matches(clip_id, cfg.corpus.include, cfg.corpus.exclude):
                found.append(Clip(clip_id, here, "images"))
        elif images:
            beside += [prefix + f for f in images]
        for name in videos:
            rel = prefix + name
            if not _matches(rel, cfg.corpus.include, cfg.corpus.exclude):
                continue
            clip_id = rel[: -len(Path(name).suffix)]
            found.append(Clip(clip_id, here / name))
    if ignored or beside:
        log.warning("corpus %s: %s", root, _ignored_summary(ignored, beside, hidden))
    return found


def _ignored_summary(ignored: list[str], beside: list[str], hidden: int, shown: int = 10) -> str:
    """One line naming what discovery left out (the first ``shown`` of each kind)."""

    def names(paths: list[str]) -> str:
        more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
        return ", ".join(paths[:shown]) + more

    parts = []
    if ignored:
        parts.append(f"ignored {len(ignored)} file(s) that are neither videos nor images "
                     f"(corpus.video_extensions, corpus.image_extensions): {names(ignored)}")
    if beside:
        parts.append(f"ignored {len(beside)} image(s) in folders that hold videos (an image "
                     f"sequence needs a folder of its own): {names(beside)}")
    if hidden:
        parts.append(f"skipped {hidden} hidden file(s)")
    return "; ".join(parts)


def image_files(clip: Clip, cfg: Config) -> list[Path]:
    """The frames of an image-sequence clip, in natural name order."""
    image_ext = {e.lower() for e in cfg.corpus.image_extensions}
    files = [p for p in clip.path.iterdir()
             if p.suffix.lower() in image_ext and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))
