"""Who is writing a run directory now: one lock file per writer of the whole run or of one
shard (RUN/locks/), taken over only when its holder is surely gone."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videmo.store.files import RunDirError, now

if TYPE_CHECKING:
    from videmo.store import RunDir

log = logging.getLogger("videmo.store")

def _proc_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; Linux), to tell a reused pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] == "Z":  # killed, not yet reaped: it writes nothing any more
        return -1
    return int(fields[19])


def _alive(holder: dict[str, Any]) -> bool:
    """False only when the holder is surely gone: same host, and its pid is not running (or
    runs another program since). A holder on another host cannot be checked from here."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return True
    pid = holder["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    start = _proc_start(pid)
    return start != -1 and (holder.get("start") is None or start is None
                            or start == holder["start"])


def _read_holder(path: Path) -> dict[str, Any] | None:
    """The holder recorded in a lock file; {} when unreadable; None when there is no lock."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _guard(locks: Path) -> Iterator[None]:
    """Serialise the short check-and-create steps of every process on this run directory
    (an flock, released by the kernel when its holder dies). Where the file system has no
    flock, the create-then-check order of :class:`RunLock` still keeps writers apart."""
    fd = os.open(locks / ".guard", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            log.debug("no flock on %s: %s", locks, e.strerror)
        yield
    finally:
        os.close(fd)


def slurm_job_id(environ: dict[str, str] | None = None) -> str | None:
    """``ARRAY_TASK`` (e.g. ``4242_3``) or the job id of the SLURM job this process runs in."""
    env = os.environ if environ is None else environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def clear_ended_job_locks(run: RunDir, ended_jobs: Iterable[str]) -> list[str]:
    """Remove the locks held by SLURM jobs that have ended (``videmo submit`` checked that no job
    of the run is queued or running). A task killed on another node (time limit, node failure)
    leaves a lock that no process there can prove stale; this is where it goes."""
    ended = {str(j) for j in ended_jobs}
    removed = []
    for path in sorted(run.locks.glob("*.lock")) if run.locks.is_dir() else []:
        holder = _read_holder(path) or {}
        job = str(holder.get("slurm_job") or "")
        if job and job.split("_")[0] in ended:
            log.warning("removing %s: SLURM job %s (pid %s on %s) has ended without releasing "
                        "it", path, job, holder.get("pid"), holder.get("host"))
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


# locks this process holds, by lock file: nested acquisitions (`videmo run` holds the run
# while its extract takes it again) only count
_HELD: dict[Path, int] = {}


class RunLock:
    """The right to write a run directory, or one shard of it, held by one process.

    ``RUN/locks/run.lock`` is taken by every writer of the whole run (extract and run without a
    shard, report, submit); ``RUN/locks/shard-I.lock`` by ``extract --shard I/N`` (a SLURM array
    task), so the tasks of an array write one run directory side by side. A whole-run lock
    excludes every other lock; a shard lock excludes its shard and the whole-run lock. A lock
    file is created with O_EXCL and names its holder (host, pid, command, since); a second
    writer exits with :class:`RunDirError` naming it. A lock whose holder is surely gone (same
    host, pid not running) is stale: it is taken over with a warning.
    """

    def __init__(self, run: RunDir, shard: int | None = None, command: str = ""):
        self.run = run
        self.shard = shard
        self.command = command
        name = "run.lock" if shard is None else f"shard-{shard}.lock"
        self.path = run.locks / name

    @property
    def scope(self) -> str:
        return "the whole run" if self.shard is None else f"shard {self.shard}"

    def _info(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(),
                "start": _proc_start(os.getpid()), "command": self.command, "since": now(),
                "scope": self.scope, "slurm_job": slurm_job_id()}

    def _covered(self) -> bool:
        """Already held by this process (this lock, or the whole run for a shard)."""
        own = self.path.resolve()
        if own in _HELD:
            _HELD[own] += 1
            return True
        whole = (self.run.locks / "run.lock").resolve()
        if self.shard is not None and whole in _HELD:
            _HELD[own] = 1
            self._borrowed = True
            return True
        return False

    def acquire(self) -> RunLock:
        if self.run.path.exists() and not self.run.path.is_dir():
            raise RunDirError(f"run directory {self.run.path} exists and is not a directory")
        self.run.locks.mkdir(parents=True, exist_ok=True)
        self._borrowed = False
        if self._covered():
            return self
        with _guard(self.run.locks):
            self._create()
            try:
                others = (sorted(self.run.locks.glob("shard-*.lock")) if self.shard is None
                          else [self.run.locks / "run.lock"])
                for other in others:
                    self._check(other)
            except BaseException:
                self.path.unlink(missing_ok=True)
                raise
        _HELD[self.path.resolve()] = 1
        return self

    def _create(self) -> None:
        info = json.dumps(self._info(), indent=1) + "\n"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                self._check(self.path)  # raises, or removed a stale lock: try again
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(info)
                f.flush()
                os.fsync(f.fileno())
            return
        raise RunDirError(f"cannot take the lock {self.path}: it keeps coming back")

    def _check(self, path: Path) -> None:
        """Raise when ``path`` is held by a live writer; remove it when its holder is gone."""
        holder = _read_holder(path)
        if holder is None:
            return
        if holder and not _alive(holder):
            log.warning("taking over the stale lock %s: %s (pid %s on %s, since %s) is gone",
                        path, holder.get("command") or "a videmo process", holder.get("pid"),
                        holder.get("host"), holder.get("since"))
            path.unlink(missing_ok=True)
            return
        raise RunDirError(self._held_message(path, holder))

    def _held_message(self, path: Path, holder: dict[str, Any]) -> str:
        if not holder:
            who = "a process whose lock file cannot be read"
        else:
            job = f", SLURM job {holder['slurm_job']}" if holder.get("slurm_job") else ""
            who = (f"pid {holder.get('pid')} on host {holder.get('host')} since "
                   f"{holder.get('since')} ({holder.get('scope')}: "
                   f"{holder.get('command') or 'videmo'}{job})")
        here = holder.get("host") == socket.gethostname()
        check = "" if here else " (on another host: videmo cannot check it from here)"
        return (f"run directory {self.run.path} is being written by {who}{check}, so "
                f"{self.scope} cannot be written now; wait for it to finish (videmo status "
                f"{self.run.path}), or, if that process is gone, delete {path}")

    def release(self) -> None:
        own = self.path.resolve()
        count = _HELD.get(own, 0)
        if count > 1 or (count == 1 and self._borrowed):
            if count > 1:
                _HELD[own] = count - 1
            else:
                del _HELD[own]
            return
        _HELD.pop(own, None)
        with _guard(self.run.locks):
            holder = _read_holder(self.path)
            if holder and holder.get("pid") == os.getpid() \
                    and holder.get("host") == socket.gethostname():
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
