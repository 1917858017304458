"""One face for every way of mapping the per-clip unit of work over a corpus (submitit's
``Executor``): an executor maps the clips of a run's config and hands back a :class:`Job`
with a state, which can be waited for, read for its result, cancelled and resumed.

Executors are chosen by name from :data:`EXECUTORS` (``compare.executor``; ``videmo run`` and
``extract`` use ``local``, ``videmo submit`` ``slurm``):

* ``local``, :class:`LocalExecutor`: this machine, in-process or over a process pool
  (:mod:`videmo.execute.local`); its jobs have ended when it returns them (``waits``).
* ``slurm``, :class:`videmo.execute.slurm.SlurmExecutor`: a SLURM array of ``videmo extract
  --shard I/N`` tasks and a merge job that reports; its jobs are the scheduler's.

``videmo status`` reads a run's job back with :func:`job_of` without knowing which executor
made it; a job made of scheduled tasks shows them per shard through :meth:`Job.tasks`.
:meth:`Executor.after` runs one last step once jobs have ended (compare's table): a function
here, a dependent job on a cluster.

Adding an executor: a subclass of :class:`Executor` (with its :class:`Job`) and one line,
``EXECUTORS.register("name", "module:Class")`` or the class itself;
``tests/test_compare.py::test_an_executor_registered_in_a_test_runs_a_comparison`` proves it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from videmo import schema
from videmo.config import Config
from videmo.execute.local import ExtractSummary, extract
from videmo.execute.shard import Shard
from videmo.registry import Registry
from videmo.store import RunDir

# A job's state, in SLURM's words (a local job is COMPLETED, FAILED or INTERRUPTED).
PENDING, RUNNING, COMPLETED, FAILED, INTERRUPTED, UNKNOWN = (
    "PENDING", "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "UNKNOWN")
ACTIVE = (PENDING, RUNNING)


class Tasks(Protocol):
    """A job's parts as a scheduler sees them, per shard (``videmo status``'s table): the
    array task that last ran a shard, the final part (SLURM: the merge job), their logs."""

    @property
    def scheduler_available(self) -> bool: ...

    def array_of(self, shard: int) -> str | None: ...

    def task_of(self, shard: int) -> Any: ...

    def final(self) -> Any: ...

    def log_of(self, task: Any) -> Path | None: ...


class Job(ABC):
    """Work mapped over a run directory: what every job has (a state, a wait, a result, a
    cancel) and how to finish it."""

    run_dir: Path

    @abstractmethod
    def state(self) -> str:
        """One of PENDING, RUNNING, COMPLETED, FAILED, INTERRUPTED, UNKNOWN."""

    def wait(self, timeout: float | None = None, poll: float = 1.0) -> str:
        """Until the job has ended (or the scheduler forgot it); its final state. A deadline
        passed raises :class:`TimeoutError` naming the job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (state := self.state()) in ACTIVE:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self} still {state} after {timeout:.0f} s")
            time.sleep(poll)
        return state

    def result(self, timeout: float | None = None) -> Any:
        """Waits for the job, then what it produced (here: the step's value or the run's
        report; a cluster's job: the directory it wrote)."""
        self.wait(timeout)
        return self.run_dir

    def cancel(self) -> None:  # noqa: B027  (a job that has ended has nothing to cancel)
        """Stop the job where it still runs (a job that has ended: nothing to do)."""

    def job_ids(self) -> list[str]:
        """The scheduler's ids of this job's parts (none for a job of this machine)."""
        return []

    def resume_command(self) -> str | None:
        """The command that finishes the run; None: rerun what made it."""
        return None

    def tasks(self) -> Tasks | None:
        """The per-shard view of a scheduler's job (None: a job without scheduled parts)."""
        return None

    def describe(self, dry_run: bool = False) -> str:
        """What the command that started the job prints: what was submitted, or (dry run)
        what would have been."""
        return f"{self.state()}: {self.run_dir}\n"

    def brief(self) -> str:
        """One line for a listing (compare's variants)."""
        return f"{self.state()} -> {self.run_dir}"


@dataclass(frozen=True)
class Step:
    """A last piece of work run once other jobs have ended: ``fn`` on this machine, or the
    command ``videmo ARGV`` as a job on a cluster (``cfg.slurm`` sizes it): an executor runs
    the one it can. Its scripts and logs go to OUT/slurm/."""

    name: str
    fn: Callable[[], Any]
    argv: tuple[str, ...]
    cfg: Config
    out: Path


class Executor(ABC):
    """Maps the unit of work (one clip: :func:`videmo.extract.pipeline.analyze_clip`) over the
    corpus of a config into its run directory, and hands back a :class:`Job`.

    Every executor takes the same options and uses those that apply to it: ``force`` (redo
    done clips), ``command`` (recorded in the run), ``progress``, ``jobs`` (processes),
    ``shards`` (tasks), ``dry_run`` (write nothing; only where ``dry_runs``)."""

    waits: bool = True  # map_clips returns ended jobs; False: they run on (a cluster's)
    dry_runs: bool = False  # dry_run shows what would be submitted

    def __init__(self, *, force: bool = False, command: str = "", progress: bool | None = None,
                 jobs: int | None = None, shards: int | None = None, dry_run: bool = False):
        if dry_run and not self.dry_runs:
            raise ValueError(f"{type(self).__name__} has no dry run")
        self.force, self.command, self.progress = force, command, progress
        self.jobs, self.shards, self.dry_run = jobs, shards, dry_run

    @abstractmethod
    def map_clips(self, cfg: Config, *, report: bool = True, command: str | None = None,
                  **options: Any) -> Job:
        """Extract every clip of ``cfg``'s corpus (resuming: finished clips are skipped) into
        ``cfg.out_dir``; with ``report``, then write the run's report."""

    @abstractmethod
    def resume(self, run_dir: Path, overrides: list[str] | None = None) -> Job:
        """Map again what a run directory has not finished, with its own config."""

    @abstractmethod
    def after(self, jobs: Iterable[Job], step: Step) -> Job:
        """Run ``step`` once every job of ``jobs`` has ended, however it ended."""

    @classmethod
    def check(cls, cfg: Config) -> None:
        """Before any work: what this executor needs of a config is there (its templates)."""
        return None

    @classmethod
    def read_job(cls, run: RunDir) -> Job | None:
        """The job of this executor that made ``run``, when the run directory says so."""
        return None


EXECUTORS = Registry("executor", {
    "local": "videmo.execute.executor:LocalExecutor",
    "slurm": "videmo.execute.slurm:SlurmExecutor",
})


# ------------------------------------------------------------------ this machine
@dataclass
class LocalJob(Job):
    """A run made on this machine. It has ended when :class:`LocalExecutor` returns it; read
    back from its directory (:func:`job_of`), its state comes from the clip records."""

    run_dir: Path
    summary: ExtractSummary | None = None
    report: Any = None  # the report written after the extract, when one was asked for
    value: Any = None  # what an :meth:`Executor.after` step returned

    def state(self) -> str:
        if self.summary is not None:
            s = self.summary
            return INTERRUPTED if s.interrupted else COMPLETED if s.ok else FAILED
        if self.value is not None:
            return COMPLETED
        run = RunDir(self.run_dir)
        meta = run.read_meta() or {}
        ids = run.corpus_ids()
        done = {r.get(schema.CLIP_ID) for r in run.records()
                if r.get(schema.STATUS) == schema.DONE
                and r.get(schema.CONFIG_HASH) == meta.get("extract_hash")}
        return COMPLETED if ids is not None and ids <= done else FAILED

    def result(self, timeout: float | None = None) -> Any:
        """The step's value, else the report, else the extract's summary."""
        return next((v for v in (self.value, self.report, self.summary) if v is not None),
                    self.run_dir)


class LocalExecutor(Executor):
    """This machine: ``run.jobs`` processes (or ``jobs``), each loading its models once."""

    def map_clips(self, cfg: Config, *, report: bool = True, command: str | None = None,
                  clips: list | None = None, shard: Shard | None = None) -> LocalJob:
        """``videmo extract`` (``report=False``; ``shard``: one shard of it) or ``videmo run``:
        extract and report under one lock of the whole run. No report after an interrupted
        extract or a run directory that cannot be written."""
        command = self.command if command is None else command
        kw = dict(jobs=self.jobs, force=self.force, clips=clips, progress=self.progress,
                  command=command)
        if not report:
            summary = extract(cfg, shard=shard, **kw)
            return LocalJob(summary.run_dir.path, summary)
        with RunDir(cfg.out_dir).lock(command=command):
            summary = extract(cfg, **kw)
            job = LocalJob(summary.run_dir.path, summary)
            if not summary.interrupted and not summary.write_error:
                # the report's libraries (matplotlib, jinja2, scikit-learn) load only now,
                # after the extraction, which never needs them (tests/test_imports.py)
                from videmo.report.build import build_report

                job.report = build_report(summary.run_dir, cfg, frames=summary.table)
        return job

    def resume(self, run_dir: Path, overrides: list[str] | None = None) -> LocalJob:
        from videmo import config as config_mod

        cfg = RunDir(run_dir).config()
        if overrides:
            cfg = config_mod.from_dict(config_mod.apply_overrides(cfg.to_dict(), overrides),
                                       base_dir=cfg.base_dir)
        return self.map_clips(cfg)

    def after(self, jobs: Iterable[Job], step: Step) -> LocalJob:
        for job in jobs:
            job.wait()
        return LocalJob(step.out, value=step.fn())


# ------------------------------------------------------------------ reading a run back
def job_of(run: RunDir) -> Job:
    """The job that made a run directory: the first executor that recognises it (SLURM's
    RUN/slurm/jobs.json), else a job of this machine."""
    for name in EXECUTORS:
        job = EXECUTORS.get(name).read_job(run)
        if job is not None:
            return job
    return LocalJob(run.path)
