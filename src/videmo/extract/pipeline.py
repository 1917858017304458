"""The unit of work: one clip in, its per-frame rows and a status record out.

:func:`analyze_clip` is pure apart from reading the clip: it writes nothing. The local loop,
the process pool and the SLURM array are only different ways of mapping it over a corpus
(see ``videmo.execute``); persisting a result is ``store.RunDir.save``.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from videmo import arrow, schema
from videmo.config import Config, TracksConfig
from videmo.extract.corpus import Clip
from videmo.extract.detectors import (
    DetectorSpec,
    Face,
    FaceDetector,
    detect_faces,
    detector_spec,
    make_detector,
    select_faces,
)
from videmo.extract.features import (
    BASE,
    FaceBatch,
    FeatureExtractor,
    extractor_class,
    ordered,
)
from videmo.extract.frames import ClipError, Frame, SourceInfo, prefetch, sample_frames
from videmo.extract.tracks import assign_tracks
from videmo.runtime import configure_threads, current_threads, quiet_native_logs

log = logging.getLogger(__name__)


@dataclass
class Models:
    """What a worker loads once and reuses for every clip: the detector (and its spec) and the
    feature extractors of ``cfg.features`` (and what they need), by name, in the order they
    run."""

    detector: FaceDetector
    extractors: dict[str, FeatureExtractor]
    spec: DetectorSpec = field(default_factory=lambda: DetectorSpec(make=make_detector))


_MODELS: dict[tuple, Models] = {}


def load_models(cfg: Config, threads: int | None = None) -> Models:
    """The detector and the feature extractors for ``cfg``, loaded once per process."""
    if threads is not None:
        configure_threads(threads)
    names = ordered(cfg.features, cfg)
    # what the models depend on: the detector's options, each extractor's config section and
    # the plug-ins' sections
    key = (repr(cfg.faces), tuple(names), repr(sorted(cfg.plugins.items())),
           *(repr(cfg.options(extractor_class(n).section)) for n in names))
    if key not in _MODELS:
        t0 = time.perf_counter()
        spec = detector_spec(cfg.faces.detector)
        with quiet_native_logs():  # TensorFlow / LiteRT start-up chatter, written natively
            detector = spec.build(cfg, current_threads())
            extractors = {name: extractor_class(name)(cfg, current_threads()) for name in names}
            _MODELS[key] = Models(detector, extractors, spec)
        log.debug("loaded %s + %s in %.1fs", cfg.faces.detector, ", ".join(extractors),
                  time.perf_counter() - t0)
    return _MODELS[key]


@dataclass
class ClipResult:
    clip: Clip
    status: str  # schema.DONE or schema.FAILED
    rows: pa.Table | None  # the per-frame table (None when not computed or failed)
    reason: str = ""
    frames_sampled: int = 0
    frames_with_face: int = 0
    seconds: float = 0.0
    info: SourceInfo = field(default_factory=SourceInfo)
    # the side tables computed (extractor name -> its rows of this clip, e.g. "mesh")
    tables: dict[str, pa.Table] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # more record keys (a chunked recording)

    def record(self, config_hash: str) -> dict[str, Any]:
        """This result as one manifest row (see schema.MANIFEST_COLUMNS). ``truncated`` is
        True for a done clip that decoded too few frames (the warning is in ``reason``);
        ``width``/``height`` are the upright frame size."""
        fps = self.info.fps
        return {
            schema.CLIP_ID: self.clip.clip_id,
            schema.PATH: str(self.clip.path),
            schema.STATUS: self.status,
            schema.REASON: self.reason,
            schema.FRAMES_SAMPLED: self.frames_sampled,
            schema.FRAMES_WITH_FACE: self.frames_with_face,
            schema.SECONDS: round(self.seconds, 3),
            schema.FPS: None if fps is None or not math.isfinite(fps) else round(fps, 4),
            schema.FRAME_COUNT: self.info.frame_count,
            schema.FRAMES_EXPECTED: self.info.frames_expected,
            schema.FRAMES_DECODED: self.info.frames_decoded,
            schema.TRUNCATED: self.info.truncated,
            schema.WIDTH: self.info.width,
            schema.HEIGHT: self.info.height,
            schema.DURATION_S: None if self.info.duration_s is None else round(
                self.info.duration_s, 6),
            schema.CONFIG_HASH: config_hash,
            **self.extra,
        }


_FACE_INDEX_POS = schema.FRAME_COLUMNS.index(schema.FACE_INDEX)
SCORED_COLUMNS = schema.FRAME_COLUMNS[:-1]  # what a frame's rows hold; the track comes after


def _batches(frames, size: int):
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rows_for_frame(frame: Frame, faces: list[Face], how: str, base: type[FeatureExtractor],
                    extractors: dict[str, FeatureExtractor], clip_id: str
                    ) -> tuple[list[tuple], FaceBatch]:
    """The frame's rows (SCORED_COLUMNS) and its :class:`FaceBatch` (the chosen faces the base
    extractor keeps, in face_index order, with every extractor's outputs). Without the base
    extractor (the per-frame table is done already) the scores are left empty."""
    chosen = select_faces(faces, how)
    batch = FaceBatch(frame.image, [chosen[i] for i in base.keep(frame.image, chosen)])
    for name, extractor in extractors.items():
        batch.outputs[name] = extractor.extract(batch) if batch.faces else []
    n = len(faces)
    nan = (math.nan,) * len(schema.EMOTIONS)
    if not batch.faces:
        return [(clip_id, frame.index, frame.time_s, n, -1, None, None, None, None, math.nan,
                 *nan)], batch
    probs = batch.outputs.get(BASE) or [nan] * len(batch.faces)
    return [
        (clip_id, frame.index, frame.time_s, n, i, f.x, f.y, f.w, f.h, f.confidence,
         *map(float, p))
        for i, (f, p) in enumerate(zip(batch.faces, probs, strict=True))
    ], batch


def frame_table(rows: list[tuple] | pa.Table, tracks: TracksConfig | None = None) -> pa.Table:
    """Rows in SCORED_COLUMNS order (schema.FRAME_COLUMNS without the track), as tuples or an
    Arrow table (a long recording's chunks, read back), -> the per-frame table with its fixed
    types (:func:`videmo.schema.frame_arrow_schema`; NaN scores are nulls, as pandas writes
    them); the ``track`` column is computed here from each clip's boxes
    (:func:`videmo.extract.tracks.assign_tracks`, options ``faces.tracks``). Arrow alone: the
    extraction never imports pandas."""
    if isinstance(rows, pa.Table):
        columns = [rows.column(c).to_pylist() for c in SCORED_COLUMNS]
    else:
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else \
            [[] for _ in SCORED_COLUMNS]
    t = tracks or TracksConfig()
    track = np.full(len(columns[0]), -1, dtype=np.int32)
    clips: dict[str, list[int]] = {}
    for i, clip_id in enumerate(columns[_CLIP_POS]):
        clips.setdefault(clip_id, []).append(i)
    frame_index = np.asarray(columns[_FRAME_POS])
    boxes = np.array([columns[i] for i in _BOX_POS], dtype=float).T  # a missing box: NaN
    for at in clips.values():
        track[at] = assign_tracks(frame_index[at], boxes[at], min_iou=t.min_iou,
                                  max_shift=t.max_shift, max_gap=t.max_gap)
    return arrow.table([*columns, track.tolist()], schema.frame_arrow_schema())


_CLIP_POS = SCORED_COLUMNS.index(schema.CLIP_ID)
_FRAME_POS = SCORED_COLUMNS.index(schema.FRAME_INDEX)
_BOX_POS = [SCORED_COLUMNS.index(c) for c in schema.BOX]


def analyze_clip(clip: Clip, cfg: Config, models: Models,
                 on_frames: Callable[[int], None] | None = None, *,
                 tables: Iterable[str] | None = None,
                 frames_of: Callable[[SourceInfo], Iterator[Frame]] | None = None) -> ClipResult:
    """Sample, detect, select and run the feature extractors on one clip. Never raises for a
    bad clip: a clip that cannot be read comes back with status ``failed`` and the reason.

    ``tables``: the tables to compute, by extractor name (default: every loaded one); the base
    extractor's (:data:`~videmo.extract.features.BASE`) is the per-frame table, the others are
    side tables. A finished run that turns the mesh on computes only the mesh: the same frames
    and faces (detection is deterministic) without scoring them again. An extractor the ones
    asked for need runs too (the mesh under a mesh frame model), and its table is kept when it
    is loaded.
    ``on_frames(n)`` is told after each batch that ``n`` more frames were analysed, so progress
    moves within a long clip; it must not raise. ``frames_of(info)`` replaces
    :func:`sample_frames` as the source of frames (one chunk of a long recording)."""
    wanted = list(models.extractors) if tables is None else list(tables)
    base_table = BASE in wanted
    run_names = ordered(wanted, cfg) if wanted else []
    unloaded = [n for n in run_names if n not in models.extractors]
    if unloaded:
        raise ValueError(f"analyze_clip: extractor(s) {unloaded} are not loaded "
                         f"(features: {cfg.features})")
    extractors = {n: models.extractors[n] for n in run_names}
    kept = [n for n in extractors if n != BASE]  # side tables computed, so written
    base = extractor_class(BASE)
    t0 = time.perf_counter()
    info = SourceInfo()
    rows: list[tuple] = []
    side_rows: dict[str, list[tuple]] = {n: [] for n in kept}
    sampled = with_face = 0
    batch_size = models.spec.batch_for(cfg)
    try:
        frames = sample_frames(clip, cfg, info) if frames_of is None else frames_of(info)
        if current_threads() >= 2:  # a spare core: decode the next frames while detecting
            frames = prefetch(frames, batch_size)
        for batch in _batches(frames, batch_size):
            found = detect_faces(models.detector, [f.image for f in batch], cfg.faces.max_width,
                                 models.spec.grey)
            for frame, faces in zip(batch, found, strict=True):
                frame_rows, faces_batch = _rows_for_frame(
                    frame, faces, cfg.faces.select, base, extractors, clip.clip_id)
                sampled += 1
                with_face += frame_rows[0][_FACE_INDEX_POS] >= 0
                rows.extend(frame_rows)
                for n in kept:
                    side_rows[n].extend(extractors[n].rows(clip.clip_id, frame.index,
                                                           faces_batch.outputs[n]))
            if on_frames is not None:
                on_frames(len(batch))
        if sampled == 0:
            raise ClipError(f"no frame sampled (decoded {info.frames_decoded}; check "
                            f"sampling.start_s/end_s against the clip's length)")
    except ClipError as e:
        return ClipResult(clip, schema.FAILED, None, str(e), sampled, with_face,
                          time.perf_counter() - t0, info)
    except Exception as e:  # a bug or a library failure on this clip: record it, keep going
        log.debug("clip %s failed:\n%s", clip.clip_id, traceback.format_exc())
        return ClipResult(clip, schema.FAILED, None, f"{type(e).__name__}: {e}", sampled,
                          with_face, time.perf_counter() - t0, info)
    return ClipResult(clip, schema.DONE,
                      frame_table(rows, cfg.faces.tracks) if base_table else None,
                      "; ".join(info.warnings), sampled, with_face, time.perf_counter() - t0,
                      info, {n: extractors[n].to_table(side_rows[n]) for n in kept})

