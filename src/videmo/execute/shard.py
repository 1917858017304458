"""Split a corpus into N shards of about equal work, the same way on every machine.

Work is the number of frames a clip will have sampled, estimated from its container (frame
count, else duration x fps) and the sampling config; a clip whose container says neither is
weighed by its file size, converted to frames with the corpus' median bytes per frame. Clips are
dealt largest first to the least loaded shard (ties: lowest shard, then clip id), so the plan
depends only on the corpus and the config.

The plan is saved as ``RUN/shards.json`` when a run is submitted. It follows the corpus on
every resume (:func:`reconcile`): clips added are dealt to the least loaded shards, clips
removed (excluded, deleted) leave it, and every other clip keeps its shard while it is in the
corpus, so a fixed or changed file reruns only its own shard. ``videmo submit`` (also with
``--resume``) and every whole-run extract save the reconciled plan; an array task reconciles in
memory and saves nothing, so tasks never race on the file.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videmo.config import Config, ConfigError
from videmo.extract.corpus import Clip, image_files
from videmo.store import RunDir, write_text_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based, like SLURM array task ids)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` -> Shard(I, N), with a message that says what is wrong."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. --shard 0/8 (shards count "
                          f"from 0)")
    index, count = int(m[1]), int(m[2])
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: I must be in 0..N-1 and N at least 1")
    return Shard(index, count)


def shard_from_env(environ: dict[str, str] | None = None) -> Shard | None:
    """The shard of a SLURM array task (``--array=0-(N-1)``), or None outside an array."""
    env = os.environ if environ is None else environ
    task, count = env.get("SLURM_ARRAY_TASK_ID"), env.get("SLURM_ARRAY_TASK_COUNT")
    if task is None or count is None:
        return None
    return parse_shard(f"{task}/{count}")


# ------------------------------------------------------------------ work estimates
@dataclass(frozen=True)
class Work:
    frames: float | None  # frames to sample; None when the container says nothing usable
    size: int  # bytes on disk (a folder: the sum of its images)


def estimate(clip: Clip, cfg: Config) -> Work:
    """Frames ``clip`` will have sampled under ``cfg.sampling`` (an estimate; never fails)."""
    if clip.kind == "images":
        try:
            files = image_files(clip, cfg)
        except OSError:
            files = []
        size = sum(_size(f) for f in files)
        return Work(_sampled(len(files), cfg.corpus.image_fps, cfg), size)
    size = _size(clip.path)
    count, fps = _probe(clip.path)
    return Work(_sampled(count, fps, cfg) if count else None, size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _probe(path: Path) -> tuple[int, float]:
    """Frame count and fps from the container header (0 when missing or unreadable)."""
    import cv2

    if not os.access(path, os.R_OK):
        return 0, 0.0
    cap = cv2.VideoCapture(str(path), cv2.CAP_ANY)
    try:
        if not cap.isOpened():
            return 0, 0.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    count = int(count) if math.isfinite(count) and count > 0 else 0
    fps = float(fps) if math.isfinite(fps) and 0 < fps < 1000 else 0.0
    return count, fps


def _sampled(count: int, fps: float, cfg: Config) -> float:
    s = cfg.sampling
    if fps > 0:  # the time window, in frames
        first = int(s.start_s * fps)
        last = count if s.end_s is None else min(count, int(math.ceil(s.end_s * fps)))
        count = max(0, last - first)
    if s.fps is not None and fps > 0:
        n = count * min(1.0, s.fps / fps)
    else:
        n = math.ceil(count / s.every_n)
    return float(min(n, s.max_frames) if s.max_frames is not None else n)


def weights(clips: list[Clip], cfg: Config) -> dict[str, float]:
    """Work per clip id, in frames to sample; file sizes fill the gaps (see module doc)."""
    works = {c.clip_id: estimate(c, cfg) for c in clips}
    per_frame = sorted(w.size / w.frames for w in works.values() if w.frames and w.size)
    bytes_per_frame = per_frame[len(per_frame) // 2] if per_frame else None
    out = {}
    for cid, w in works.items():
        if w.frames is not None:
            out[cid] = w.frames
        elif bytes_per_frame:
            out[cid] = w.size / bytes_per_frame
        else:  # nothing probed: sizes alone still balance the shards against each other
            out[cid] = float(w.size)
    return out


# ------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Plan:
    count: int
    assignment: dict[str, int]  # clip id -> shard index
    work: dict[str, float]  # clip id -> estimated frames to sample
    # a long recording spread over shards (run.chunk_s): recording -> chunk number -> shard
    chunks: dict[str, dict[int, int]] = field(default_factory=dict)

    def clips(self, index: int) -> list[str]:
        """The clips shard ``index`` works on: its own, and recordings it holds chunks of."""
        return sorted(cid for cid, s in self.assignment.items()
                      if s == index or index in self.chunks.get(cid, {}).values())

    def chunks_of(self, index: int) -> dict[str, set[int]]:
        """Recording -> the chunks shard ``index`` analyses (recordings spread over shards)."""
        return {cid: {k for k, s in m.items() if s == index} for cid, m in self.chunks.items()
                if index in m.values()}

    def load_of(self, index: int) -> float:
        return sum(self.work[c] for c in self.clips(index))

    def to_json(self) -> dict[str, Any]:
        out = {"count": self.count, "clips": dict(sorted(self.assignment.items())),
               "work": {k: round(v, 3) for k, v in sorted(self.work.items())}}
        if self.chunks:
            out["chunks"] = {cid: {str(k): s for k, s in sorted(m.items())}
                             for cid, m in sorted(self.chunks.items())}
        return out

    def save(self, run: RunDir) -> None:
        write_text_atomic(plan_path(run), json.dumps(self.to_json(), indent=1) + "\n")


def plan_path(run: RunDir) -> Path:
    return run.path / "shards.json"


def make_plan(clips: list[Clip], count: int, cfg: Config) -> Plan:
    """Deal clips to ``count`` shards (some stay empty when there are fewer clips). A long
    recording (``run.chunk_s``) is dealt chunk by chunk, each weighed by its frames to sample,
    so one recording can keep every shard busy."""
    work = weights(clips, cfg)
    spread = _chunk_work(clips, cfg) if count > 1 else {}
    items = [(w, cid, k) for cid, m in spread.items() for k, w in m.items()]
    items += [(work[c.clip_id], c.clip_id, -1) for c in clips if c.clip_id not in spread]
    heap = [(0.0, i) for i in range(count)]
    assignment: dict[str, int] = {}
    chunks: dict[str, dict[int, int]] = {}
    for weight, cid, k in sorted(items, key=lambda x: (-x[0], x[1], x[2])):
        load, index = heapq.heappop(heap)
        if k < 0:
            assignment[cid] = index
        else:
            chunks.setdefault(cid, {})[k] = index
            assignment.setdefault(cid, index)
        heapq.heappush(heap, (load + weight, index))
    for cid, m in spread.items():
        work[cid] = float(sum(m.values()))
    return Plan(count, assignment, work, chunks)


def _chunk_work(clips: list[Clip], cfg: Config) -> dict[str, dict[int, float]]:
    """Recording -> chunk -> frames to sample, for recordings analysed in 2+ chunks."""
    from videmo.execute.chunked import needed_chunks

    out = {}
    for clip in clips:
        needed = needed_chunks(clip, cfg, clips)
        if needed is not None and len(needed) > 1:
            out[clip.clip_id] = {c.index: float(c.picks) for c in needed}
    return out


def unit_count(clips: list[Clip], cfg: Config) -> int:
    """Units of work: clips, with a long recording counted by its chunks (the most shards
    that can be kept busy)."""
    spread = _chunk_work(clips, cfg)
    return len(clips) - len(spread) + sum(len(m) for m in spread.values())


def load_plan(run: RunDir) -> Plan | None:
    try:
        data = json.loads(plan_path(run).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the shard plan {plan_path(run)}: {e}") from None
    return Plan(int(data["count"]), {k: int(v) for k, v in data["clips"].items()},
                {k: float(v) for k, v in data["work"].items()},
                {cid: {int(k): int(v) for k, v in m.items()}
                 for cid, m in data.get("chunks", {}).items()})


def reconcile(plan: Plan, clips: list[Clip], cfg: Config) -> Plan:
    """``plan`` brought up to the corpus ``clips``: clips gone are dropped, clips kept stay in
    their shard, new clips go (largest first) to the least loaded shard. Deterministic: every
    task of an array that reconciles the same plan with the same corpus gets the same result."""
    ids = {c.clip_id for c in clips}
    assignment = {cid: s for cid, s in plan.assignment.items() if cid in ids}
    work = {cid: plan.work.get(cid, 0.0) for cid in assignment}
    added = [c for c in clips if c.clip_id not in assignment]
    if added:
        new_work = weights(added, cfg)
        loads = [0.0] * plan.count
        for cid, index in assignment.items():
            loads[index] += work[cid]
        heap = [(load, i) for i, load in enumerate(loads)]
        heapq.heapify(heap)
        for clip in sorted(added, key=lambda c: (-new_work[c.clip_id], c.clip_id)):
            load, index = heapq.heappop(heap)
            assignment[clip.clip_id] = index
            work[clip.clip_id] = new_work[clip.clip_id]
            heapq.heappush(heap, (load + new_work[clip.clip_id], index))
    chunks = {cid: m for cid, m in plan.chunks.items() if cid in ids}
    return Plan(plan.count, assignment, work, chunks)


def describe_change(old: Plan, new: Plan) -> str:
    added = sorted(set(new.assignment) - set(old.assignment))
    removed = sorted(set(old.assignment) - set(new.assignment))
    parts = []
    if added:
        parts.append(f"{len(added)} added (first: {added[0]}, to shard "
                     f"{new.assignment[added[0]]})")
    if removed:
        parts.append(f"{len(removed)} removed (first: {removed[0]})")
    return ", ".join(parts)


def follow_corpus(run: RunDir, clips: list[Clip], cfg: Config) -> Plan | None:
    """Reconcile the run's saved plan (if it has one) with the corpus and save it. Called by
    writers that hold the whole run's lock."""
    plan = load_plan(run)
    if plan is None:
        return None
    new = reconcile(plan, clips, cfg)
    if new.assignment != plan.assignment:
        log.info("the corpus changed since %s was saved: %s", plan_path(run),
                 describe_change(plan, new))
        new.save(run)
    return new


def select(clips: list[Clip], shard: Shard, run: RunDir, cfg: Config) -> list[Clip]:
    """The clips of ``shard`` (see :func:`select_units`)."""
    return select_units(clips, shard, run, cfg)[0]


def select_units(clips: list[Clip], shard: Shard, run: RunDir, cfg: Config
                 ) -> tuple[list[Clip], dict[str, set[int]]]:
    """The clips of ``shard``, and the chunks it analyses of recordings spread over shards:
    from the run's saved plan reconciled with the corpus (in memory), or a new plan saved for
    the others when the run has none."""
    plan = load_plan(run)
    if plan is None:
        plan = make_plan(clips, shard.count, cfg)
        plan.save(run)
    if plan.count != shard.count:
        raise ConfigError(f"{plan_path(run)} splits this run into {plan.count} shards, but "
                          f"--shard {shard} asks for {shard.count}; use --shard I/{plan.count}")
    new = reconcile(plan, clips, cfg)
    if new.assignment != plan.assignment:
        log.warning("shard %s: the corpus changed since %s was saved (%s); this task uses the "
                    "plan reconciled with it (videmo submit --resume saves it)", shard,
                    plan_path(run), describe_change(plan, new))
    by_id = {c.clip_id: c for c in clips}
    return [by_id[cid] for cid in new.clips(shard.index)], new.chunks_of(shard.index)
