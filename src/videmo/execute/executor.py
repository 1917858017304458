"""One face for every way of mapping the per-clip unit of work over a corpus (submitit's
``Executor``): an executor maps the clips of a run's config and hands back a :class:`Job`
with a state, which can be waited for and resumed.

* :class:`LocalExecutor`: this machine, in-process or over a process pool
  (:mod:`videmo.execute.local`); its jobs have ended when it returns.
* :class:`SlurmExecutor`: a SLURM array of ``videmo extract --shard I/N`` tasks and a merge job
  that reports (:mod:`videmo.execute.slurm`); its jobs are the scheduler's.

``videmo run`` and ``videmo extract`` map with the first, ``videmo submit`` with the second,
``videmo compare`` with either (``--slurm``), and ``videmo status`` reads a run's job back with
:func:`job_of` without knowing which kind made it. :meth:`Executor.after` runs one last step
once jobs have ended (compare's table): a function here, a dependent job on a cluster.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videmo import schema
from videmo.config import Config
from videmo.execute import slurm
from videmo.execute.local import ExtractSummary, extract
from videmo.execute.shard import Shard
from videmo.store import RunDir

# A job's state, in SLURM's words (a local job is COMPLETED, FAILED or INTERRUPTED).
PENDING, RUNNING, COMPLETED, FAILED, INTERRUPTED, UNKNOWN = (
    "PENDING", "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "UNKNOWN")
ACTIVE = (PENDING, RUNNING)
# the scheduler's states of a task that is still queued or running
ACTIVE_STATES = slurm.ACTIVE_STATES
# SLURM states that mean "stopped from outside" rather than "went wrong"
_STOPPED = {"CANCELLED", "TIMEOUT", "PREEMPTED", "DEADLINE", "NODE_FAIL"}


@dataclass
class TaskState:
    """What the scheduler says about one array task (or a plain job, ``task`` '')."""

    job_id: str
    task: str  # array task id; '' for a plain job
    state: str
    source: str  # squeue, scontrol or sacct
    exit_code: str = ""
    reason: str = ""


def job_state(slurm_state: str | None) -> str:
    """A SLURM state as a job state (None: the scheduler does not know the job any more)."""
    if slurm_state is None:
        return UNKNOWN
    if slurm_state == "PENDING":
        return PENDING
    if slurm_state in slurm.ACTIVE_STATES:
        return RUNNING
    if slurm_state == "COMPLETED":
        return COMPLETED
    return INTERRUPTED if slurm_state in _STOPPED else FAILED


class Job(ABC):
    """Work mapped over a run directory: its state, and what finishes it."""

    kind: str = ""
    run_dir: Path

    @abstractmethod
    def state(self) -> str:
        """One of PENDING, RUNNING, COMPLETED, FAILED, INTERRUPTED, UNKNOWN."""

    def job_ids(self) -> list[str]:
        """The scheduler's ids of this job's parts (none for a local job)."""
        return []

    def array_of(self, shard: int) -> str | None:
        """The scheduler's id of the array that last ran ``shard`` (None: none, or local)."""
        return None

    def task_of(self, shard: int) -> TaskState | None:
        """The scheduler's word on the task that last ran ``shard`` (None: none, or local)."""
        return None

    def final(self) -> TaskState | None:
        """The scheduler's word on the part that ends the job (SLURM: the merge job)."""
        return None

    def log_of(self, task: TaskState) -> Path | None:
        """The log file of a task or of the final part, when there is one."""
        return None

    @property
    def scheduler_available(self) -> bool:
        return True

    def resume_command(self) -> str | None:
        """The command that finishes the run; None: rerun what made it."""
        return None

    def wait(self, timeout: float | None = None, poll: float = 1.0) -> str:
        """Until the job has ended (or the scheduler forgot it); its final state. A deadline
        passed raises :class:`TimeoutError` naming the job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (state := self.state()) in ACTIVE:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self} still {state} after {timeout:.0f} s")
            time.sleep(poll)
        return state


@dataclass(frozen=True)
class Step:
    """A last piece of work run once other jobs have ended: ``fn`` on this machine, or the
    command ``videmo ARGV`` as a job on a cluster (``cfg.slurm`` sizes it). Its scripts and
    logs go to OUT/slurm/."""

    name: str
    fn: Callable[[], Any]
    argv: tuple[str, ...]
    cfg: Config
    out: Path


class Executor(ABC):
    """Maps the unit of work (one clip: :func:`videmo.extract.pipeline.analyze_clip`) over the
    corpus of a config into its run directory, and hands back a :class:`Job`."""

    kind: str = ""

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


# ------------------------------------------------------------------ this machine
@dataclass
class LocalJob(Job):
    """A run made on this machine. It has ended when :class:`LocalExecutor` returns it; read
    back from its directory (:func:`job_of`), its state comes from the clip records."""

    run_dir: Path
    summary: ExtractSummary | None = None
    report: Any = None  # the report written after the extract, when one was asked for
    result: Any = None  # what an :meth:`Executor.after` step returned
    kind: str = field(default="local", init=False)

    def state(self) -> str:
        if self.summary is not None:
            s = self.summary
            return INTERRUPTED if s.interrupted else COMPLETED if s.ok else FAILED
        if self.result is not None:
            return COMPLETED
        run = RunDir(self.run_dir)
        meta = run.read_meta() or {}
        ids = run.corpus_ids()
        done = {r.get(schema.CLIP_ID) for r in run.records()
                if r.get(schema.STATUS) == schema.DONE
                and r.get(schema.CONFIG_HASH) == meta.get("extract_hash")}
        return COMPLETED if ids is not None and ids <= done else FAILED


class LocalExecutor(Executor):
    """This machine: ``run.jobs`` processes (or ``jobs``), each loading its models once."""

    kind = "local"

    def __init__(self, *, jobs: int | None = None, force: bool = False,
                 progress: bool | None = None, command: str = ""):
        self.jobs, self.force, self.progress, self.command = jobs, force, progress, command

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
        return LocalJob(step.out, result=step.fn())


# ------------------------------------------------------------------ SLURM
@dataclass
class SlurmJob(Job):
    """Jobs of a SLURM submission: an array and its merge job (or one plain job, ``array``
    None), asked about through squeue, scontrol and sacct. For a run directory, every
    submission of ``RUN/slurm/jobs.json`` is known: a shard's task is the latest one that ran
    it."""

    run_dir: Path
    final_job: str | None
    array: str | None = None
    shards: list[int] = field(default_factory=list)
    count: int = 0
    submission: slurm.Submission | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    kind: str = field(default="slurm", init=False)
    _states: dict[tuple[str, str], TaskState] | None = field(default=None, init=False,
                                                              repr=False)
    _squeue: bool = field(default=True, init=False, repr=False)

    def __str__(self) -> str:
        return f"SLURM job {self.final_job} of {self.run_dir}"

    @classmethod
    def from_run(cls, run: RunDir) -> SlurmJob:
        subs = slurm.submissions(run)
        last = subs[-1] if subs else {}
        return cls(run.path, last.get("merge_job"), last.get("array_job"),
                   list(last.get("shards") or []), int(last.get("count") or 0), history=subs)

    @classmethod
    def from_submission(cls, sub: slurm.Submission) -> SlurmJob:
        return cls(sub.run_dir, sub.merge_job, sub.array_job, list(sub.shards), sub.count,
                   sub, history=slurm.submissions(RunDir(sub.run_dir)))

    def job_ids(self) -> list[str]:
        if self.history:
            return [j for s in self.history for j in (s.get("array_job"), s.get("merge_job"))
                    if j]
        return [j for j in (self.array, self.final_job) if j]

    def refresh(self) -> dict[tuple[str, str], TaskState]:
        """Ask the scheduler again: squeue (queued, running), scontrol (recently ended),
        sacct (ended, where the cluster keeps accounting)."""
        states: dict[tuple[str, str], TaskState] = {}
        ids = self.job_ids()
        queued = slurm.squeue(ids)
        self._squeue = queued is not None
        for q in queued or []:
            source = "squeue" if q.state in slurm.ACTIVE_STATES else "scontrol"
            for i in task_indices(q.task) if q.task else [None]:
                key = (q.job_id, "" if i is None else str(i))
                states[key] = TaskState(q.job_id, key[1], q.state, source, reason=q.reason)
        missing = [j for j in ids if not any(k[0] == j for k in states)]
        for t in sacct(missing):
            states.setdefault((t.job_id, t.task), t)
        self._states = states
        return states

    def _known(self) -> dict[tuple[str, str], TaskState]:
        return self._states if self._states is not None else self.refresh()

    @property
    def scheduler_available(self) -> bool:
        self._known()
        return self._squeue

    def task_of(self, shard: int) -> TaskState | None:
        array = self.array_of(shard)
        return None if array is None else self._known().get((array, str(shard)))

    def array_of(self, shard: int) -> str | None:
        """The latest array job that ran ``shard``."""
        array = None
        for sub in self.history or [{"shards": self.shards, "array_job": self.array}]:
            if shard in (sub.get("shards") or []) and sub.get("array_job"):
                array = sub["array_job"]
        return array

    def final(self) -> TaskState | None:
        return self._known().get((self.final_job or "", ""))

    def state(self) -> str:
        """The final job's state, asked afresh (UNKNOWN once SLURM has forgotten it and
        keeps no accounting)."""
        self.refresh()
        final = self.final()
        return job_state(None if final is None else final.state)

    def log_of(self, task: TaskState) -> Path | None:
        logs = self.run_dir / "slurm" / "logs"
        if task.task:
            default = logs / f"extract-{task.job_id}_{task.task}.out"
            pattern = f"*{task.job_id}_{task.task}.*"
        else:
            default = logs / f"merge-{task.job_id}.out"
            pattern = f"*{task.job_id}.*"
        if default.exists():
            return default
        found = sorted(logs.glob(pattern)) if logs.is_dir() else []
        return found[0] if found else None

    def resume_command(self) -> str | None:
        return f"videmo submit --resume {shlex.quote(str(self.run_dir))}"


class SlurmExecutor(Executor):
    """A SLURM cluster, from a login node: ``slurm.*`` of each config sizes its jobs."""

    kind = "slurm"

    def __init__(self, *, shards: int | None = None, dry_run: bool = False,
                 force: bool = False, command: str = ""):
        self.shards, self.dry_run, self.force, self.command = shards, dry_run, force, command

    def map_clips(self, cfg: Config, *, report: bool = True,
                  command: str | None = None) -> SlurmJob:
        """``videmo submit``: the array of shards not done, then the merge job (which reports:
        on a cluster the report is always the merge job's)."""
        if not report:
            raise ValueError("on SLURM the merge job always writes the report")
        sub = slurm.submit(cfg, shards=self.shards, dry_run=self.dry_run, force=self.force,
                           command=self.command if command is None else command)
        return SlurmJob.from_submission(sub)

    def resume(self, run_dir: Path, overrides: list[str] | None = None) -> SlurmJob:
        sub = slurm.resume(Path(run_dir), dry_run=self.dry_run, overrides=overrides,
                           command=self.command)
        return SlurmJob.from_submission(sub)

    def after(self, jobs: Iterable[Job], step: Step) -> SlurmJob:
        """Submit ``videmo ARGV`` with ``--dependency=afterany:`` on the final part of every
        job (for a dry run: the script, with placeholders for the ids)."""
        finals = [j.final_job or slurm.ARRAY_ID_PLACEHOLDER for j in jobs
                  if isinstance(j, SlurmJob)]
        cfg = step.cfg.absolute()
        out = step.out.resolve()
        text = slurm.render_after(cfg, out, step.name, step.argv, finals)
        if self.dry_run:
            return SlurmJob(out, None, submission=slurm.Submission(
                out, [], 0, slurm.Scripts(None, text)))
        job_id = slurm.submit_script(out, f"{step.name}.sbatch", text)
        return SlurmJob(out, job_id)


# ------------------------------------------------------------------ reading a run back
def job_of(run: RunDir) -> Job:
    """The job that made a run directory: SLURM's when it was submitted (RUN/slurm/jobs.json),
    else a local one."""
    if slurm.jobs_path(run).exists():
        return SlurmJob.from_run(run)
    return LocalJob(run.path)


def sacct(job_ids: list[str]) -> list[TaskState]:
    """Ended jobs and array tasks from SLURM's accounting (empty without sacct or accounting).

    squeue forgets a job when it ends and scontrol some minutes later (MinJobAge); sacct keeps
    them, where the cluster stores accounting.
    """
    exe = shutil.which("sacct")
    if exe is None or not job_ids:
        return []
    proc = subprocess.run([exe, "-n", "-P", "-X", "-j", ",".join(job_ids),
                           "--format=JobID,State,ExitCode"], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3:
            continue
        job, state, exit_code = parts
        job_id, _, task = job.partition("_")
        state = state.split()[0] if state.strip() else ""  # 'CANCELLED by 0' -> 'CANCELLED'
        if job_id not in job_ids or not state:
            continue
        for i in task_indices(task) if task else [None]:
            out.append(TaskState(job_id, "" if i is None else str(i), state, "sacct",
                                 exit_code=exit_code))
    return out


def task_indices(spec: str) -> list[int]:
    """'3' -> [3]; '1-3%2' or '[1,4]' (pending tasks not yet split off) -> their indices."""
    spec = spec.strip("[]").split("%")[0]
    out = []
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out
