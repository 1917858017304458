"""Long recordings as chunks of work (``run.chunk_s``): plan, run, save and merge them.

A recording longer than ``run.chunk_s`` (a video, with no side table such as the mesh) becomes one
unit of work per chunk that holds sampled frames (:mod:`videmo.extract.chunks`). Each unit is
analysed and saved by itself under ``RUN/chunks/<recording>/``: a Parquet part and a JSON record
with the extract hash, the file's stamp and the chunk's frame range. So ``--jobs`` and SLURM
shards spread one recording over workers, and a kill loses at most the chunks in progress.
When every chunk a recording needs is done, its parts are merged (face tracks recomputed over
the whole recording) into the recording's usual part and record, which everything downstream
(manifest, report, status) reads as before. With ``corpus.segments``, only the chunks that
segments reach are needed: the record's ``sampled_spans`` says which times were extracted, and a
later segments file that reaches other times makes ``videmo run`` extract only those chunks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from videmo import arrow, schema
from videmo.config import Config
from videmo.extract.chunks import (
    ChunkSpan,
    FrameClock,
    chunk_count,
    plan_chunks,
    probe_duration,
    read_clock,
    sample_chunk,
)
from videmo.extract.features import BASE
from videmo.extract.frames import SourceInfo
from videmo.extract.pipeline import (
    SCORED_COLUMNS,
    ClipResult,
    analyze_clip,
    frame_table,
    load_models,
)
from videmo.runtime import jobs_for
from videmo.schema import Clip
from videmo.store import (
    RunDir,
    file_stamp,
    matches_file,
    now,
    safe_name,
    write_parquet_atomic,
    write_text_atomic,
)

log = logging.getLogger(__name__)

CHUNK = "chunk"  # a chunk record's chunk number
CHUNK_S = "chunk_s"
WORKERS = "workers"  # the worker count the recording was planned for (run.jobs)
FRAME_RANGE = "frames"  # [lo, hi): the chunk's frames by index


@dataclass(frozen=True)
class ChunkUnit:
    """One chunk of one recording: a unit of work like a clip. ``clock`` is the recording's
    frame clock as the planning process read it (its :func:`clock_of` key and value): a worker
    uses it while the file is unchanged instead of reading every packet again."""

    clip: Clip
    span: ChunkSpan
    chunk_s: float
    clock: tuple[tuple, FrameClock | None] | None = field(default=None, compare=False,
                                                          repr=False)

    @property
    def clip_id(self) -> str:
        return self.clip.clip_id

    @property
    def unit_id(self) -> str:
        return f"{self.clip.clip_id}#{self.span.index:05d}"


Unit = Clip | ChunkUnit

_CLOCKS: dict[tuple, FrameClock | None] = {}


def _clock_key(clip: Clip) -> tuple:
    st = clip.path.stat()
    return str(clip.path), st.st_size, st.st_mtime_ns


def clock_of(clip: Clip) -> FrameClock | None:
    """The recording's frame clock, read once per process and file version."""
    key = _clock_key(clip)
    if key not in _CLOCKS:
        _CLOCKS[key] = read_clock(clip.path)
        if _CLOCKS[key] is None:
            log.info("%s: its frame timestamps cannot be cut on (missing or repeated): "
                     "analysed in one pass", clip.clip_id)
    return _CLOCKS[key]


def chunk_plan(clip: Clip, cfg: Config, workers: int | None = None) -> list[ChunkSpan] | None:
    """Every chunk of ``clip`` for ``workers`` (default ``run.jobs``; see
    :func:`~videmo.extract.chunks.chunk_count`); None when it is analysed in one pass (no
    ``run.chunk_s``, not a video, one chunk, a side table (the mesh) on, or timestamps that
    cannot be cut on)."""
    chunk_s = cfg.run.chunk_s
    if chunk_s is None or clip.kind != "video" or cfg.feature_tables():
        return None
    workers = jobs_for(cfg.run.jobs) if workers is None else workers
    try:
        duration = probe_duration(clip, cfg)
        if duration is None or chunk_count(duration, chunk_s, workers)[0] <= 1:
            return None
        clock = clock_of(clip)
    except OSError:
        return None  # the clip fails in its one pass, with the reason
    if clock is None or chunk_count(clock.duration_s, chunk_s, workers)[0] <= 1:
        return None
    return plan_chunks(clock, cfg.sampling, chunk_s, workers)


def needed_spans(cfg: Config, clips: list[Clip]) -> dict[str, list[tuple[float, float]]] | None:
    """With ``corpus.segments``: the times each recording's segments reach (only these are
    extracted); None without a segments file (every recording whole)."""
    if cfg.corpus.segments is None:
        return None
    from videmo.evaluate.segments import check_segments, read_segments

    # bad rows were reported (or stopped the run) before any work: here only the good ones
    segments, _ = check_segments(read_segments(cfg.resolve(cfg.corpus.segments),
                                               cfg.corpus.segments_columns),
                                 [c.clip_id for c in clips], {}, cfg.report)
    out: dict[str, list[tuple[float, float]]] = {c.clip_id: [] for c in clips}
    for s in segments:
        out[s.recording].append((s.start_s, s.end_s))
    return out


def needed_chunks(clip: Clip, cfg: Config, corpus: list[Clip]) -> list[ChunkSpan] | None:
    """The chunks of ``clip`` with work to do (reached by segments, when there are any); None
    when it is analysed in one pass."""
    plan = chunk_plan(clip, cfg)
    if plan is None:
        return None
    spans = needed_spans(cfg, corpus)
    return _needed(plan, None if spans is None else spans.get(clip.clip_id, []))


def _needed(plan: list[ChunkSpan], spans: list[tuple[float, float]] | None) -> list[ChunkSpan]:
    """The chunks with sampled frames that ``spans`` (None: all) reach."""
    return [c for c in plan if c.picks and (spans is None or any(
        a < c.end_s and b > c.start_s for a, b in spans))]


# -------------------------------------------------------------- chunk files
def chunk_dir(run: RunDir, clip_id: str) -> Path:
    return run.path / "chunks" / safe_name(clip_id)


def _paths(run: RunDir, clip_id: str, index: int) -> tuple[Path, Path]:
    base = chunk_dir(run, clip_id) / f"{index:05d}"
    return base.with_suffix(".parquet"), base.with_suffix(".json")


def chunk_record(run: RunDir, clip_id: str, index: int) -> dict[str, Any] | None:
    try:
        return json.loads(_paths(run, clip_id, index)[1].read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def chunk_done(run: RunDir, unit: ChunkUnit, cfg: Config, config_hash: str,
               stamp: dict[str, int | None]) -> bool:
    """Done under this extract hash, from the file as it is now, for the same frames."""
    rec = chunk_record(run, unit.clip_id, unit.span.index)
    return bool(rec and rec.get(schema.STATUS) == schema.DONE
                and rec.get(schema.CONFIG_HASH) == config_hash
                and rec.get(CHUNK_S) == unit.chunk_s
                and rec.get(FRAME_RANGE) == [unit.span.lo, unit.span.hi]
                and matches_file(rec, stamp)
                and _paths(run, unit.clip_id, unit.span.index)[0].exists())


# -------------------------------------------------------------- planning
def expand(todo: list[Clip], cfg: Config, run: RunDir, force: bool = False,
           done: Iterable[Clip] = (), only: dict[str, set[int]] | None = None
           ) -> tuple[list[Unit], dict[str, int]]:
    """The units of work for ``todo`` (clips not done) and for ``done`` recordings whose
    needed times (``corpus.segments``) were never sampled: a clip as it is, or the chunks of a
    long recording not done yet (of a recording spread over shards, only the chunks ``only``
    gives this shard). Also, per chunked recording, how many units it waits for (0: all its
    chunks are done already; it is merged without any work)."""
    only = only or {}
    config_hash = cfg.extract_hash()
    spans = needed_spans(cfg, [*todo, *done])
    units: list[Unit] = []
    waiting: dict[str, int] = {}
    for clip, was_done in [*((c, False) for c in todo), *((c, True) for c in done)]:
        plan = chunk_plan(clip, cfg)
        if plan is None:
            if not was_done:
                units.append(clip)
            continue
        needed = _needed(plan, None if spans is None else spans.get(clip.clip_id, []))
        stamp = file_stamp(clip, cfg)
        key = _clock_key(clip)  # chunk_plan read the clock under it
        chunks = [ChunkUnit(clip, c, cfg.run.chunk_s, (key, _CLOCKS.get(key))) for c in needed
                  if clip.clip_id not in only or c.index in only[clip.clip_id]]
        if was_done and all(chunk_done(run, u, cfg, config_hash, stamp) for u in chunks) and \
                _covered(run.record(clip.clip_id), needed):
            continue
        pending = [u for u in chunks if force or not chunk_done(run, u, cfg, config_hash, stamp)]
        units.extend(pending)
        waiting[clip.clip_id] = len(pending)
    return units, waiting


def _covered(rec: dict[str, Any] | None, needed: list[ChunkSpan]) -> bool:
    """Whether a done recording's record covers the ``needed`` chunks already."""
    if rec is None:
        return False
    spans = rec.get(schema.SAMPLED_SPANS)
    if not spans:
        return True  # extracted whole
    return all(any(a <= c.start_s + 1e-9 and b >= c.end_s - 1e-9
                   for a, b in spans) for c in needed)


# -------------------------------------------------------------- the worker
def process_chunk(unit: ChunkUnit, cfg: Config, run_path: str, threads: int,
                  on_frames: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Worker entry point: analyse one chunk and save it; returns its chunk record."""
    clip = unit.clip
    stamp = file_stamp(clip, cfg)
    run = RunDir(run_path)
    models = load_models(cfg, threads)
    if unit.clock is not None:  # the planner's: kept while the file is what it read
        _CLOCKS.setdefault(*unit.clock)
    clock = clock_of(clip)
    if clock is None:  # the file changed since the plan: its one pass will say what happened
        result = ClipResult(clip, schema.FAILED, None, "the recording's frame clock cannot be "
                                                       "read any more; rerun to redo it whole")
    else:
        result = analyze_clip(clip, cfg, models, on_frames, tables=[BASE],
                              frames_of=lambda info: sample_chunk(clip, cfg, clock, unit.span,
                                                                  info))
    record = {schema.CLIP_ID: clip.clip_id, CHUNK: unit.span.index, CHUNK_S: unit.chunk_s,
              WORKERS: jobs_for(cfg.run.jobs),
              FRAME_RANGE: [unit.span.lo, unit.span.hi],
              "start_s": unit.span.start_s, "end_s": unit.span.end_s,
              schema.STATUS: result.status, schema.REASON: result.reason,
              schema.FRAMES_SAMPLED: result.frames_sampled,
              schema.FRAMES_WITH_FACE: result.frames_with_face,
              schema.SECONDS: round(result.seconds, 3), schema.CONFIG_HASH: cfg.extract_hash(),
              schema.FINISHED_AT: now(), **stamp}
    part, rec_path = _paths(run, clip.clip_id, unit.span.index)
    part.parent.mkdir(parents=True, exist_ok=True)
    if result.status == schema.DONE:
        scored = schema.frame_arrow_schema(SCORED_COLUMNS)  # the track comes with the merge
        write_parquet_atomic(result.rows.select(list(SCORED_COLUMNS)).replace_schema_metadata(
            scored.metadata), part)
    else:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    write_text_atomic(rec_path, json.dumps(record) + "\n")
    return record


# -------------------------------------------------------------- merging
def _worker_counts(run: RunDir, clip: Clip, cfg: Config) -> list[int]:
    """The worker counts to look for a recording's finished plan under: ``run.jobs``, then
    those its chunk records were planned for (a ``videmo report`` with another ``run.jobs``
    than the extraction's still merges its chunks)."""
    out = [jobs_for(cfg.run.jobs)]
    for path in sorted(chunk_dir(run, clip.clip_id).glob("*.json")):
        try:
            workers = int(json.loads(path.read_text(encoding="utf-8")).get(WORKERS) or 1)
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        if workers not in out:
            out.append(workers)
    return out


def merge(run: RunDir, clip: Clip, cfg: Config,
          corpus: list[Clip] | None = None) -> dict[str, Any] | None:
    """Merge a recording's done chunks into its part and record, when every chunk it needs is
    done; else None. Safe to call from several processes: the result is the same. ``corpus``:
    the clips the segments file is matched against, as when the chunks were planned (a file
    name that two clips share names neither; alone it would name this one)."""
    config_hash = cfg.extract_hash()
    stamp = file_stamp(clip, cfg)
    spans = needed_spans(cfg, corpus if corpus is not None else [clip])
    for workers in _worker_counts(run, clip, cfg):
        plan = chunk_plan(clip, cfg, workers)
        if plan is None:
            continue
        needed = _needed(plan, None if spans is None else spans.get(clip.clip_id, []))
        done = [c for c in plan if c.picks and chunk_done(
            run, ChunkUnit(clip, c, cfg.run.chunk_s), cfg, config_hash, stamp)]
        if {c.index for c in needed} <= {c.index for c in done}:
            break
    else:
        return None
    records = [chunk_record(run, clip.clip_id, c.index) or {} for c in done]
    scored = schema.frame_arrow_schema(SCORED_COLUMNS)
    parts = [arrow.read_parquet(_paths(run, clip.clip_id, c.index)[0], SCORED_COLUMNS)
             .cast(scored) for c in done]
    rows = frame_table(pa.concat_tables(parts) if parts else [], cfg.faces.tracks)
    clock = clock_of(clip)
    info = SourceInfo(fps=clock.fps, frame_count=clock.frame_count,
                      frames_decoded=len(clock.times), duration_s=clock.duration_s,
                      frames_expected=clock.frame_count if clock.frame_count > 0 else None)
    info.check_shortfall(cfg.sampling, False, "truncated file or wrong header: the container "
                                              "announces more frames than it holds")
    covered = {c.index for c in done} | {c.index for c in plan if not c.picks}
    extra = {} if len(covered) == len(plan) else {schema.SAMPLED_SPANS: _spans(plan, covered)}
    width, height = _frame_size(clip)
    info.width, info.height = width, height
    reasons = sorted({r.get(schema.REASON) for r in records if r.get(schema.REASON)})
    if info.warnings:
        reasons.extend(info.warnings)
    result = ClipResult(clip, schema.DONE, rows, "; ".join(reasons),
                        int(sum(r.get(schema.FRAMES_SAMPLED) or 0 for r in records)),
                        int(sum(r.get(schema.FRAMES_WITH_FACE) or 0 for r in records)),
                        float(sum(r.get(schema.SECONDS) or 0 for r in records)), info,
                        extra=extra)
    return run.save(result, config_hash, stamp)


def _spans(plan: list[ChunkSpan], covered: set[int]) -> list[list[float]]:
    out: list[list[float]] = []
    for c in plan:
        if c.index not in covered:
            continue
        end = c.end_s if c.index < len(plan) - 1 else math.inf
        if out and abs(out[-1][1] - c.start_s) < 1e-9:
            out[-1][1] = end
        else:
            out.append([c.start_s, end])
    return [[a, b if math.isfinite(b) else 1e12] for a, b in out]


def _frame_size(clip: Clip) -> tuple[int, int]:
    import cv2

    cap = cv2.VideoCapture(str(clip.path), cv2.CAP_FFMPEG)
    try:
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


def merging(records: Iterator[dict[str, Any]], waiting: dict[str, int],
            clips: dict[str, Clip], run: RunDir, cfg: Config, *,
            partial: bool = False) -> Iterator[dict[str, Any]]:
    """Clip records from a stream of clip and chunk records: a chunked recording's merged
    record once its last chunk is in (at once for those waiting for none), or its failure at
    its first failed chunk (the done chunks stay for a rerun). ``partial`` (a shard): chunks
    of the recording may be another shard's; when this one's are done and others are not, the
    recording counts as done here, and the last shard (or the merge job) merges it.
    ``clips``: every clip of the run (the segments file is matched against them all, as in
    :func:`expand`)."""
    left = dict(waiting)
    corpus = list(clips.values())
    failed: set[str] = set()
    frames: dict[str, int] = dict.fromkeys(waiting, 0)

    def finish(cid: str) -> dict[str, Any]:
        merged = merge(run, clips[cid], cfg, corpus)
        if merged is not None:
            return merged
        if partial:
            log.info("%s: this shard's chunks are done; the task that finishes its last chunk "
                     "(or the merge job) merges them", cid)
            return {schema.CLIP_ID: cid, schema.STATUS: schema.DONE, schema.REASON: "",
                    schema.FRAMES_SAMPLED: frames[cid]}
        return _failed_merge(run, clips[cid], cfg)

    try:
        for cid in [c for c, n in left.items() if n == 0]:
            yield finish(cid)
        for record in records:
            if CHUNK not in record:
                yield record
                continue
            cid = record[schema.CLIP_ID]
            if cid in failed:
                continue
            if record[schema.STATUS] != schema.DONE:
                failed.add(cid)
                reason = (f"chunk {record[CHUNK]} ({record['start_s']:g}-{record['end_s']:g} s):"
                          f" {record[schema.REASON]}")
                run.note(clips[cid], schema.FAILED, reason, cfg.extract_hash(),
                         file_stamp(clips[cid], cfg))
                yield {**(run.record(cid) or {}), schema.FRAMES_SAMPLED: 0}
                continue
            left[cid] -= 1
            frames[cid] += record[schema.FRAMES_SAMPLED] or 0
            if left[cid] == 0:
                yield finish(cid)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def _failed_merge(run: RunDir, clip: Clip, cfg: Config) -> dict[str, Any]:
    run.note(clip, schema.FAILED, "its chunks could not be merged (a chunk is missing or was "
                                  "made from another version of the file); rerun to redo them",
             cfg.extract_hash(), file_stamp(clip, cfg))
    return {**(run.record(clip.clip_id) or {}), schema.FRAMES_SAMPLED: 0}


def merge_finished(run: RunDir, clips: Iterable[Clip], cfg: Config) -> list[str]:
    """Merge every chunked recording of ``clips`` whose chunks are all done but whose record
    is not (a SLURM task that finished another shard's last chunk, or the merge job)."""
    merged = []
    config_hash = cfg.extract_hash()
    clips = list(clips)
    for clip in clips:
        if not (chunk_dir(run, clip.clip_id)).is_dir() or run.is_done(clip, cfg, config_hash):
            continue
        if merge(run, clip, cfg, clips) is not None:
            merged.append(clip.clip_id)
    return merged


def consolidate(run: RunDir, cfg: Config, clips: list[Clip] | None) -> pa.Table:
    """The merge job's step (``videmo report``): merge the chunked recordings whose chunks are
    all done, then rebuild the merged tables from the per-clip files of the corpus ``clips``
    (None: the corpus last recorded)."""
    merge_finished(run, clips or [], cfg)
    return run.consolidate(cfg.extract_hash(), clips, tables=cfg.feature_tables())
