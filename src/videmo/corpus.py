"""Find the clips of a corpus: video files and image-sequence directories.

A clip's id is its path relative to its corpus root, without extension, in POSIX form
(``2019/biden_58.0``). Ids are what every table, report and resume check keys on, so two files
that would get the same id are an error that names both.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .config import Config

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
        visible = [f for f in filenames if not f.startswith(".")]
        images = [f for f in visible if Path(f).suffix.lower() in image_ext]
        if images and len(images) == len(visible) and not dirnames:
            clip_id = rel_dir if rel_dir != "." else root.name
            if _matches(clip_id, cfg.corpus.include, cfg.corpus.exclude):
                found.append(Clip(clip_id, here, "images"))
            continue
        for name in sorted(visible):
            if Path(name).suffix.lower() not in video_ext:
                continue
            rel = (here / name).relative_to(root).as_posix()
            if not _matches(rel, cfg.corpus.include, cfg.corpus.exclude):
                continue
            clip_id = rel[: -len(Path(name).suffix)]
            found.append(Clip(clip_id, here / name))
    return found


def image_files(clip: Clip, cfg: Config) -> list[Path]:
    """The frames of an image-sequence clip, in natural name order."""
    image_ext = {e.lower() for e in cfg.corpus.image_extensions}
    files = [p for p in clip.path.iterdir()
             if p.suffix.lower() in image_ext and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))
