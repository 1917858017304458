"""Map the unit of work over a corpus on this machine: in-process or over a process pool.

Each worker loads its models once, analyses a clip and persists it itself (rows, then record),
so what is finished survives a kill of the parent. The parent only counts, shows progress and
merges the per-clip files at the end.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from videmo import schema
from videmo.config import Config
from videmo.execute import chunked
from videmo.execute import shard as shard_mod
from videmo.execute.chunked import ChunkUnit, process_chunk
from videmo.extract.corpus import Clip, discover
from videmo.extract.features import BASE
from videmo.extract.pipeline import analyze_clip, load_models
from videmo.runtime import CoreShare, cpu_seconds, jobs_for, threads_for
from videmo.store import RunDir, file_stamp

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)


@dataclass
class ExtractSummary:
    run_dir: RunDir
    total: int = 0
    skipped: int = 0  # already done with the same config
    done: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    write_error: str | None = None  # the run directory could not be written (disk full, ...)
    frames: int = 0
    seconds: float = 0.0  # wall time of the extract stage
    cpu_seconds: float = 0.0  # CPU time of the same, this process and its workers
    merged: pa.Table | None = None  # the consolidated per-frame table (None for a shard)

    @property
    def table(self) -> pd.DataFrame | None:
        """:attr:`merged` as pandas reads it (RunDir.frames), for the report."""
        return None if self.merged is None else self.merged.to_pandas()

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted and not self.write_error

    def text(self) -> str:
        """What ``videmo extract`` and ``videmo run`` print: counts, then each failed clip."""
        run = self.run_dir
        where = run.frames_path if self.merged is not None else \
            f"{run.parts} (a shard: `videmo report {run.path}` merges them)"
        lines = [f"extract: {self.done} done, {self.skipped} already done, "
                 f"{len(self.failed)} failed of {self.total} clips; {self.frames} frames in "
                 f"{self.seconds:.1f}s wall, {self.cpu_seconds:.1f}s CPU -> {where}"]
        lines += [f"  failed: {rec['clip_id']} ({rec['path']}): {rec['reason']}"
                  for rec in self.failed]
        if self.interrupted:
            lines.append("  interrupted: rerun the same command to resume")
        if self.write_error:
            lines.append(f"  stopped: {self.write_error}")
        return "\n".join(lines) + "\n"


def process_clip(clip: Clip, cfg: Config, run_path: str, threads: int,
                 on_frames: Callable[[int], None] | None = None,
                 force: bool = False) -> dict[str, Any]:
    """Worker entry point: analyse one clip and persist it. Returns its manifest record.

    A clip whose per-frame table is done already (e.g. a finished run that turned the mesh
    on) computes only the tables it lacks; ``force`` computes them all."""
    stamp = file_stamp(clip, cfg)  # before reading: a file changed meanwhile is redone later
    run = RunDir(run_path)
    models = load_models(cfg, threads)
    table_done = not force and run.table_done(clip, cfg)
    tables = cfg.feature_tables()
    todo = [t.name for t in tables if force or not run.table_part_done(clip, t)]
    result = analyze_clip(clip, cfg, models, on_frames,
                          tables=([] if table_done else [BASE]) + todo)
    return run.save(result, cfg.extract_hash(), stamp, tables)


def process_unit(unit: Clip | ChunkUnit, cfg: Config, run_path: str, threads: int,
                 on_frames: Callable[[int], None] | None = None,
                 force: bool = False, share: str | None = None) -> dict[str, Any]:
    """Worker entry point for a clip or a chunk of a long recording (execute.chunked).
    ``share``: the pool's :class:`~videmo.runtime.CoreShare`, followed between batches."""
    follow = CoreShare.follower(share)
    if follow is not None:
        on_frames = functools.partial(_follow_and_report, follow, on_frames)
    if isinstance(unit, ChunkUnit):
        return process_chunk(unit, cfg, run_path, threads, on_frames)
    return process_clip(unit, cfg, run_path, threads, on_frames, force)


def _follow_and_report(follow: Callable[[], None], report: Callable[[int], None] | None,
                       n: int) -> None:
    follow()
    if report is not None:
        report(n)


# errors that mean "the run directory cannot take more", not "this clip is bad"
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class Interrupted(BaseException):
    """SIGTERM arrived. A BaseException, so no per-clip ``except Exception`` can swallow it."""


def _raise_interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


# Only the parent decides what a signal means. Ctrl-C reaches the whole process group and
# scancel every process of the job: a worker that also reacted would print its own
# KeyboardInterrupt traceback, or die under the pool while the parent is still collecting.
# Workers ignore these; the parent stops them (SIGKILL, via the pool) when it stops.
WORKER_IGNORED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _init_worker() -> None:
    """Pool worker initializer: ignore the parent's signals, then take delivery again.

    Workers are started with these signals blocked (see ``_map``), so one that arrives
    while a worker boots stays pending and is discarded here instead of interrupting it.
    """
    for s in WORKER_IGNORED_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_IGNORED_SIGNALS)


def extract(cfg: Config, *, jobs: int | None = None, force: bool = False,
            clips: list[Clip] | None = None, shard: shard_mod.Shard | None = None,
            progress: bool | None = None, command: str = "") -> ExtractSummary:
    """Run the extract stage over the corpus (or ``clips``), or over one ``shard`` of it.

    A shard run leaves the merged tables to the merge job (``videmo report``): many shards
    finishing at once would otherwise each rebuild them from every clip.

    Resume: a clip is skipped only when it is done with this extract hash and its file is
    unchanged (:meth:`RunDir.is_done`). The run directory is locked while this runs: the whole
    run, or only ``shard`` (:class:`videmo.store.RunLock`).
    """
    jobs = jobs_for(jobs or cfg.run.jobs)
    if jobs != cfg.run.jobs:  # recordings are cut for the workers there are (chunked.chunk_plan)
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, jobs=jobs))
    clips = discover(cfg) if clips is None else clips
    with RunDir.open(cfg, force=force, command=command,
                     shard=None if shard is None else shard.index) as run:
        only = None
        if shard is not None:
            clips, only = shard_mod.select_units(clips, shard, run, cfg)
        else:  # the merged views follow the corpus; a submitted run's plan follows it too
            run.save_corpus(clips)
            shard_mod.follow_corpus(run, clips, cfg)
        return _extract(cfg, run, clips, jobs=jobs, force=force, shard=shard,
                        progress=progress, only=only)


def _extract(cfg: Config, run: RunDir, clips: list[Clip], *, jobs: int, force: bool,
             shard: shard_mod.Shard | None, progress: bool | None,
             only: dict[str, set[int]] | None = None) -> ExtractSummary:
    """The extract stage over ``clips``, with the run directory locked."""
    config_hash = cfg.extract_hash()
    tables = cfg.feature_tables()
    todo = [c for c in clips if force or not run.is_done(c, cfg, config_hash, tables)]
    # long recordings go as chunks; with corpus.segments, done ones may lack times segments need
    todo_ids = {c.clip_id for c in todo}
    reopen = ([c for c in clips if c.clip_id not in todo_ids]
              if cfg.corpus.segments is not None else [])
    units, waiting = chunked.expand(todo, cfg, run, force, done=reopen, only=only)
    todo += [c for c in reopen if c.clip_id in waiting]
    # --jobs N is N cores: a worker each, or fewer workers with the cores shared among them
    threads = threads_for(jobs, cfg.run.threads, workers=_workers(jobs, units))
    summary = ExtractSummary(run, total=len(clips), skipped=len(clips) - len(todo))
    where = f"shard {shard}: " if shard is not None else ""
    log.info("%s%d clips, %d already done, %d to do -> %s (%s, %d job(s) x %d thread(s))",
             where, len(clips), summary.skipped, len(todo), run.path, cfg.faces.detector,
             jobs, threads)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(todo), unit="clip", disable=not show, dynamic_ncols=True)
    frames_bar = tqdm(unit="frame", disable=not show, dynamic_ncols=True, leave=False)
    old = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM,)}
    old[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    finished: set[str] = set()
    results = chunked.merging(
        _map(units, cfg, run, jobs, threads, frames_bar.update if show else None, force),
        waiting, {c.clip_id: c for c in clips}, run, cfg, partial=shard is not None)
    try:
        for record in results:
            finished.add(record[schema.CLIP_ID])
            summary.frames += record[schema.FRAMES_SAMPLED] or 0
            if record[schema.STATUS] == schema.DONE:
                summary.done += 1
            else:
                summary.failed.append(record)
                log.warning("clip %s failed: %s", record[schema.CLIP_ID], record[schema.REASON])
                if cfg.run.on_error == "abort":
                    log.error("run.on_error is 'abort': stopping after the first failed clip")
                    results.close()  # stops the workers: nothing is saved after this point
                    _note_interrupted(
                        run, [c for c in todo if c.clip_id not in finished], cfg,
                        f"run.on_error: abort (clip {record[schema.CLIP_ID]} failed)")
                    break
            bar.update(1)
            bar.set_postfix(failed=len(summary.failed), refresh=False)
    except (KeyboardInterrupt, Interrupted) as e:
        summary.interrupted = True
        cause = str(e) or "SIGINT (Ctrl-C)"
        for s in WORKER_IGNORED_SIGNALS:  # a second Ctrl-C must not cut the shutdown or notes
            signal.signal(s, signal.SIG_IGN)
        log.error("interrupted by %s: finished clips are kept; rerun the same command to "
                  "resume", cause)
        results.close()  # kills the workers: the clips in progress are abandoned, not saved late
        _note_interrupted(run, [c for c in todo if c.clip_id not in finished], cfg, cause)
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        summary.write_error = (f"cannot write to the run directory {run.path}: {e.strerror} "
                               f"({e.filename or 'a result file'}); the clips finished before "
                               f"are kept: make room and rerun the same command to continue")
        log.error("%s", summary.write_error)
    finally:
        results.close()
        frames_bar.close()
        bar.close()
        for s, handler in old.items():
            signal.signal(s, handler)
        summary.seconds = time.perf_counter() - t0
        summary.cpu_seconds = cpu_seconds() - cpu0
        if shard is None and summary.write_error is None:
            summary.merged = run.consolidate(config_hash, tables=cfg.feature_tables())
    return summary


def _note_interrupted(run: RunDir, clips: list[Clip], cfg: Config, cause: str) -> None:
    """Record the clips this run did not finish, so the manifest says what happened to them.

    The note never replaces a finished clip: a worker may have saved one after the signal.
    """
    config_hash = cfg.extract_hash()
    for clip in clips:
        if run.is_done(clip, cfg, config_hash):
            continue
        run.note(clip, schema.INTERRUPTED, f"run interrupted by {cause} before this clip "
                                           f"finished; rerun to resume", config_hash,
                 file_stamp(clip, cfg))


def _workers(jobs: int, todo: list) -> int:
    """Processes :func:`_map` runs ``todo`` on: this one, or a pool of at most ``jobs``."""
    return 1 if jobs <= 1 or len(todo) <= 1 else min(jobs, len(todo))


def _map(todo: list[Clip | ChunkUnit], cfg: Config, run: RunDir, jobs: int, threads: int,
         on_frames: Callable[[int], None] | None = None, force: bool = False):
    """Each unit's record, from this process or a pool of ``jobs`` workers.

    Workers get the run directory as an absolute path: joblib keeps its loky workers between
    calls (300 s idle) in the working directory they started in, so a relative ``run.out``
    (``runs/a``) would be resolved there after this process changed directory (a notebook's
    ``os.chdir``, tests/test_readme.py's sandbox) and the clips saved into another run."""
    if not todo:
        return
    run_path = str(run.path.absolute())
    if _workers(jobs, todo) == 1:
        for unit in todo:
            yield process_unit(unit, cfg, run_path, threads, on_frames, force)
        return
    from joblib import Parallel, delayed

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    workers = _workers(jobs, todo)
    pool = Parallel(n_jobs=workers, backend="loky",
                    return_as="generator_unordered", batch_size=1, pre_dispatch="2*n_jobs",
                    initializer=_init_worker)
    # run.threads set: each worker keeps it; unset: idle workers' cores go to the busy ones
    share = CoreShare.open(jobs, threads, workers) if not cfg.run.threads else None
    path = share.path if share is not None else None
    try:
        with _relay(on_frames) as report:
            # The first dispatch starts the workers: they inherit this mask, so a signal cannot
            # reach one before _init_worker ignores it. One sent to the parent meanwhile waits,
            # then is raised here. Closing this generator (the caller does on a signal) kills
            # the workers.
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_IGNORED_SIGNALS)
            try:
                outputs = pool(delayed(process_unit)(c, cfg, run_path, threads, report, force,
                                                     path) for c in todo)
            except BaseException:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                raise
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                left = len(todo)
                for record in outputs:
                    left -= 1
                    if share is not None:
                        share.update(left)
                    yield record
            finally:
                outputs.close()
    finally:
        if share is not None:
            share.close()


@contextmanager
def _relay(on_frames: Callable[[int], None] | None) -> Iterator[Callable[[int], None] | None]:
    """A callback that pool workers can call, whose calls reach ``on_frames`` here.

    Workers put frame counts on a Manager queue (started ignoring SIGINT, so a Ctrl-C reaches
    the workers and this process, not the queue they report to); a thread here drains it."""
    if on_frames is None:
        yield None
        return
    from multiprocessing.managers import SyncManager

    manager = SyncManager()
    manager.start(_ignore_sigint)
    queue = manager.Queue()

    def drain() -> None:
        try:
            for n in iter(queue.get, None):
                on_frames(n)
        except (OSError, EOFError):  # the manager is gone: the run is ending
            pass

    thread = threading.Thread(target=drain, name="videmo-progress", daemon=True)
    thread.start()
    try:
        yield functools.partial(_put, queue)
    finally:
        try:
            queue.put(None)
            thread.join(timeout=5)
        except (OSError, EOFError):
            pass
        manager.shutdown()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _put(queue, n: int) -> None:
    """Progress is best effort: a worker never fails a clip because the bar is gone."""
    try:
        queue.put(n)
    except (OSError, EOFError):
        pass
