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
* every other file is left out. A warning per corpus root names those that may be media videmo
  does not read (the first ten, and how many): a known video or image extension missing from
  the config, first bytes of a video or image container, or a file that cannot be read; so a
  clip is never skipped in silence. The rest (README, CSV tables, checksums: files beside a
  corpus) is one INFO line of counts by kind, however many there are. Hidden files
  (``.DS_Store``, ``._frame1.png``) are never clips or frames; they are only counted.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path

from videmo.config import Config
from videmo.schema import Clip, natural_key  # noqa: F401  (Clip: part of this module's API)

log = logging.getLogger(__name__)


class CorpusError(ValueError):
    """The corpus as configured cannot be used (missing root, duplicate ids, no clips)."""




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
        _report_left_out(root, ignored, beside, hidden)
    return found


# Extensions of video and image formats (beyond the config's lists, which are read); a file
# with one that the config does not list is media left out, not a file beside the corpus.
MEDIA_EXTENSIONS = frozenset(
    ".3g2 .3gp .asf .avi .avif .bmp .divx .dv .f4v .flv .gif .heic .heif .jp2 .jpeg .jpg .m2ts "
    ".m2v .m4v .mkv .mov .mp4 .mpeg .mpg .mts .mxf .ogv .png .qt .rm .rmvb .tif .tiff .ts .vob "
    ".webm .webp .wmv .y4m".split())
# First bytes of video and image containers: (offset, bytes, what)
SIGNATURES = ((4, b"ftyp", "an MP4/QuickTime file"),
              (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM file"),
              (0, b"FLV\x01", "an FLV file"), (0, b"\x00\x00\x01\xba", "an MPEG program stream"),
              (0, b"\x00\x00\x01\xb3", "an MPEG video stream"),
              (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "an ASF/WMV file"),
              (0, b"OggS", "an Ogg file"), (0, b"\xff\xd8\xff", "a JPEG image"),
              (0, b"\x89PNG\r\n\x1a\n", "a PNG image"), (0, b"GIF8", "a GIF image"),
              (0, b"II*\x00", "a TIFF image"), (0, b"MM\x00*", "a TIFF image"))


def media_suspicion(path: Path) -> str | None:
    """Why a file left out of the corpus may be media videmo does not read, or None: a media
    extension, the first bytes of a video or image container (RIFF: AVI, WebP; MPEG-TS: sync
    bytes 188 apart), or a file that cannot be read."""
    if path.suffix.lower() in MEDIA_EXTENSIONS:
        return f"extension {path.suffix} not in corpus.video_extensions/image_extensions"
    try:
        with open(path, "rb") as f:
            head = f.read(189)
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    for offset, magic, what in SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return f"{what} by its first bytes"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"WEBP"):
        return f"a {'video' if head[8:11] == b'AVI' else 'WebP image'} (RIFF) by its first bytes"
    if len(head) == 189 and head[0] == head[188] == 0x47:
        return "an MPEG transport stream by its first bytes"
    return None


def _report_left_out(root: Path, ignored: list[str], beside: list[str], hidden: int,
                     shown: int = 10) -> None:
    """One WARNING for what may be media left out, one INFO line counting the rest."""

    def names(items: list[str]) -> str:
        more = f" and {len(items) - shown} more" if len(items) > shown else ""
        return ", ".join(items[:shown]) + more

    suspect, other = [], []
    for rel in ignored:
        why = media_suspicion(root / rel)
        if why:
            suspect.append(f"{rel} ({why})")
        else:
            other.append(rel)
    warn = []
    if suspect:
        warn.append(f"ignored {len(suspect)} file(s) that may be media videmo does not read "
                    f"(add the extension to corpus.video_extensions or rename the file): "
                    f"{names(suspect)}")
    if beside:
        warn.append(f"ignored {len(beside)} image(s) in folders that hold videos (an image "
                    f"sequence needs a folder of its own): {names(beside)}")
    hidden_note = [f"skipped {hidden} hidden file(s)"] if hidden else []
    if warn:
        log.warning("corpus %s: %s", root, "; ".join(warn + (hidden_note if not other else [])))
    if other:
        kinds: dict[str, int] = {}
        for rel in other:
            kind = Path(rel).suffix.lower() or Path(rel).name
            kinds[kind] = kinds.get(kind, 0) + 1
        counts = [f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])]
        log.info("corpus %s: %s", root, "; ".join([
            f"left out {len(other)} file(s) that are not media ({names(counts)})",
            *hidden_note]))


def image_files(clip: Clip, cfg: Config) -> list[Path]:
    """The frames of an image-sequence clip, in natural name order."""
    return clip.image_files(cfg.corpus.image_extensions)


def current_clips(cfg: Config, recorded: Path) -> list[Clip] | None:
    """The corpus of ``cfg`` as it is now; None when it cannot be listed (moved, another
    machine): the corpus last recorded in ``recorded`` (a run's corpus.json) then stands."""
    try:
        return discover(cfg)
    except (CorpusError, OSError) as e:
        log.warning("cannot list the corpus (%s): the merged files keep the clips recorded "
                    "in %s", e, recorded)
        return None


def check_corpus(cfg: Config, lines: list[str]) -> list[Clip]:
    """Before any work: every ``corpus.paths`` root exists and holds clips (a
    :class:`videmo.config.ConfigError` naming the key and the path); one line per root
    appended to ``lines``. The clips found, which extract reuses."""
    from videmo.config import ConfigError
    from videmo.config.paths import given

    roots = cfg.corpus_paths
    for raw, root in zip(cfg.corpus.paths, roots, strict=True):
        if not root.exists():
            raise ConfigError(f"config key 'corpus.paths': {root} does not exist"
                              f"{given(cfg, raw)}")
    try:
        clips = discover(cfg)
    except CorpusError:
        for raw, root in zip(cfg.corpus.paths, roots, strict=True):
            if not discover_root(root, cfg):
                raise _no_clips(cfg, raw, root) from None
        raise
    for raw, root in zip(cfg.corpus.paths, roots, strict=True):
        n = sum(1 for c in clips if c.path == root or root in c.path.parents)
        if n == 0:
            raise _no_clips(cfg, raw, root)
        lines.append(f"corpus.paths: {root}: {n} clip{'s' * (n != 1)}")
    return clips


def _no_clips(cfg: Config, raw: str, root: Path) -> Exception:
    from videmo.config import ConfigError
    from videmo.config.paths import given

    return ConfigError(
        f"config key 'corpus.paths': no clips in {root}{given(cfg, raw)} (video extensions "
        f"{' '.join(cfg.corpus.video_extensions)}, or folders of images; corpus.include "
        f"{cfg.corpus.include}, corpus.exclude {cfg.corpus.exclude})")
