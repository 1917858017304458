"""Talking to SLURM: sbatch, squeue, scontrol and sacct, and their states as job states.

squeue knows queued and running tasks, scontrol recently ended ones (within MinJobAge, 5 minutes
by default), sacct ended ones where the cluster keeps accounting.
"""

from __future__ import annotations

import getpass
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from videmo.execute.slurm.render import SlurmError
from videmo.store import write_text_atomic

log = logging.getLogger(__name__)


def submit_script(out: Path, name: str, text: str) -> str:
    """Write ``text`` to OUT/slurm/NAME (its logs to OUT/slurm/logs/) and submit it."""
    tool("sbatch")
    (out / "slurm" / "logs").mkdir(parents=True, exist_ok=True)
    path = out / "slurm" / name
    write_text_atomic(path, text)
    return sbatch(path)


# ------------------------------------------------------------------ talking to SLURM
def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SlurmError(f"`{name}` not found: run videmo submit on a SLURM login node (or use "
                         f"--dry-run to see the scripts)")
    return path


def sbatch(script: Path) -> str:
    """Submit a script; return its job id."""
    proc = subprocess.run([tool("sbatch"), "--parsable", str(script)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SlurmError(f"sbatch refused {script}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip().split(";")[0]


@dataclass(frozen=True)
class QueuedTask:
    job_id: str  # the array's job id, or the job's own id
    task: str  # array task id ('' for a plain job; '1-3%2' for tasks not yet split off)
    state: str
    reason: str


def squeue(job_ids: list[str]) -> list[QueuedTask] | None:
    """Tasks of these jobs: queued or running ones from squeue, recently ended ones (within
    SLURM's MinJobAge, 5 minutes by default) from scontrol. None when squeue is not there."""
    exe = shutil.which("squeue")
    if exe is None:
        return None
    if not job_ids:
        return []
    proc = subprocess.run([exe, "-h", "-r", "-u", getpass.getuser(), "-o", "%F|%K|%i|%T|%r"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log.warning("squeue failed: %s", proc.stderr.strip())
        return None
    wanted, out = set(job_ids), []
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        array_id, task, job_id, state, reason = parts
        if array_id in wanted or job_id in wanted:
            task = "" if task in ("N/A", "") else task
            out.append(QueuedTask(array_id if array_id in wanted else job_id, task, state,
                                  reason))
    seen = {q.job_id for q in out}
    for job in job_ids:
        if job not in seen:
            out.extend(_scontrol(job))
    return out


def _scontrol(job_id: str) -> list[QueuedTask]:
    """Ended tasks of a job that SLURM still remembers (empty when it has forgotten it)."""
    exe = shutil.which("scontrol")
    if exe is None:
        return []
    proc = subprocess.run([exe, "-o", "show", "job", job_id], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "JobState" in f:
            task = f.get("ArrayTaskId", "")
            out.append(QueuedTask(job_id, "" if task in ("N/A", "") else task, f["JobState"],
                                  f.get("Reason", "None")))
    return out


ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
                 "RESIZING", "SIGNALING", "STAGE_OUT"}

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
    from videmo.execute import executor as ex  # the local mapper's imports, only when asked

    if slurm_state is None:
        return ex.UNKNOWN
    if slurm_state == "PENDING":
        return ex.PENDING
    if slurm_state in ACTIVE_STATES:
        return ex.RUNNING
    if slurm_state == "COMPLETED":
        return ex.COMPLETED
    return ex.INTERRUPTED if slurm_state in _STOPPED else ex.FAILED


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


def scancel(job_ids: list[str]) -> None:
    """Cancel these jobs (every task of an array); a job SLURM has forgotten is no error."""
    if job_ids:
        subprocess.run([tool("scancel"), *job_ids], capture_output=True, text=True,
                       check=False)
