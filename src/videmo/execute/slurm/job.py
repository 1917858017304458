"""SLURM behind the executor face: :class:`SlurmExecutor` submits, :class:`SlurmJob` asks the
scheduler (squeue, scontrol, sacct) how the submitted jobs stand and where their logs are."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videmo.config import Config
from videmo.execute.executor import Executor, Job, Step
from videmo.execute.slurm import submission as submit_mod
from videmo.execute.slurm.queue import (
    ACTIVE_STATES,
    TaskState,
    job_state,
    sacct,
    scancel,
    squeue,
    submit_script,
    task_indices,
)
from videmo.execute.slurm.render import (
    ARRAY_ID_PLACEHOLDER,
    Scripts,
    check_templates,
    render_after,
)
from videmo.store import RunDir


@dataclass
class SlurmJob(Job):
    """Jobs of a SLURM submission: an array and its merge job (or one plain job, ``array``
    None), asked about through squeue, scontrol and sacct. For a run directory, every
    submission of ``RUN/slurm/jobs.json`` is known: a shard's task is the latest one that ran
    it. It is also its own :class:`videmo.execute.executor.Tasks` (the per-shard view)."""

    run_dir: Path
    final_job: str | None
    array: str | None = None
    shards: list[int] = field(default_factory=list)
    count: int = 0
    submission: submit_mod.Submission | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    name: str = ""  # a step's name (after()); '' for a run's array + merge job
    _states: dict[tuple[str, str], TaskState] | None = field(default=None, init=False,
                                                              repr=False)
    _squeue: bool = field(default=True, init=False, repr=False)

    def __str__(self) -> str:
        return f"SLURM job {self.final_job} of {self.run_dir}"

    @classmethod
    def from_run(cls, run: RunDir) -> SlurmJob:
        subs = submit_mod.submissions(run)
        last = subs[-1] if subs else {}
        return cls(run.path, last.get("merge_job"), last.get("array_job"),
                   list(last.get("shards") or []), int(last.get("count") or 0), history=subs)

    @classmethod
    def from_submission(cls, sub: submit_mod.Submission) -> SlurmJob:
        return cls(sub.run_dir, sub.merge_job, sub.array_job, list(sub.shards), sub.count,
                   sub, history=submit_mod.submissions(RunDir(sub.run_dir)))

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
        queued = squeue(ids)
        self._squeue = queued is not None
        for q in queued or []:
            source = "squeue" if q.state in ACTIVE_STATES else "scontrol"
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

    # ---- Job
    def state(self) -> str:
        """The final job's state, asked afresh (UNKNOWN once SLURM has forgotten it and
        keeps no accounting)."""
        self.refresh()
        final = self.final()
        return job_state(None if final is None else final.state)

    def result(self, timeout: float | None = None) -> Path:
        """Waits for the final job; what it wrote is on disk, under the run directory."""
        self.wait(timeout)
        return self.run_dir

    def cancel(self) -> None:
        scancel(self.job_ids())

    def resume_command(self) -> str | None:
        return None if self.name else f"videmo submit --resume {shlex.quote(str(self.run_dir))}"

    def tasks(self) -> SlurmJob:
        return self

    def describe(self, dry_run: bool = False) -> str:
        sub = self.submission
        if dry_run and sub is not None and self.name:
            return f"# ---- {self.name}.sbatch (not submitted)\n{sub.scripts.merge}"
        if sub is not None and not self.name:
            return submit_mod.describe(sub, dry_run)
        return f"job {self.final_job}: videmo {self.name or 'report'} -> {self.run_dir}\n"

    def brief(self) -> str:
        array = f"array job {self.array} ({len(self.shards)} of {self.count} shard(s))" \
            if self.array else "every shard done"
        return f"{array}, merge job {self.final_job} -> {self.run_dir}"

    # ---- Tasks
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


class SlurmExecutor(Executor):
    """A SLURM cluster, from a login node: ``slurm.*`` of each config sizes its jobs. Its jobs
    run on after it returns them (``waits`` False); ``dry_run`` renders the scripts only."""

    waits = False
    dry_runs = True

    def map_clips(self, cfg: Config, *, report: bool = True,
                  command: str | None = None) -> SlurmJob:
        """``videmo submit``: the array of shards not done, then the merge job (which reports:
        on a cluster the report is always the merge job's)."""
        if not report:
            raise ValueError("on SLURM the merge job always writes the report")
        sub = submit_mod.submit(cfg, shards=self.shards, dry_run=self.dry_run, force=self.force,
                                command=self.command if command is None else command)
        return SlurmJob.from_submission(sub)

    def resume(self, run_dir: Path, overrides: list[str] | None = None) -> SlurmJob:
        sub = submit_mod.resume(Path(run_dir), dry_run=self.dry_run, overrides=overrides,
                                command=self.command)
        return SlurmJob.from_submission(sub)

    def after(self, jobs: Iterable[Job], step: Step) -> SlurmJob:
        """Submit ``videmo ARGV`` with ``--dependency=afterany:`` on the final part of every
        job (for a dry run: the script, with placeholders for the ids)."""
        finals = [j.final_job or ARRAY_ID_PLACEHOLDER for j in jobs if isinstance(j, SlurmJob)]
        cfg = step.cfg.absolute()
        out = step.out.resolve()
        text = render_after(cfg, out, step.name, step.argv, finals)
        if self.dry_run:
            return SlurmJob(out, None, name=step.name, submission=submit_mod.Submission(
                out, [], 0, Scripts(None, text)))
        job_id = submit_script(out, f"{step.name}.sbatch", text)
        return SlurmJob(out, job_id, name=step.name)

    @classmethod
    def check(cls, cfg: Config) -> None:
        check_templates(cfg)

    @classmethod
    def read_job(cls, run: RunDir) -> SlurmJob | None:
        """The run's jobs when it was submitted (RUN/slurm/jobs.json)."""
        return SlurmJob.from_run(run) if submit_mod.jobs_path(run).exists() else None
