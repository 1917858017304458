"""The run directory: every output of a run, written so that a kill loses at most one clip.

Layout (see README, "Outputs")::

    RUN/run.json          provenance: extract key and hash, versions, model hashes, the first
                          creation and a history of every invocation that wrote the run
    RUN/config.yaml       the resolved config
    RUN/corpus.json       the clips of the current corpus (what the merged views hold)
    RUN/parts/ID.parquet  one clip's per-frame rows (written by the worker that did the clip)
    RUN/clips/ID.json     one clip's manifest record (written after its rows)
    RUN/frames.parquet    the current corpus' done clips' rows, merged (rebuilt by extract/report)
    RUN/manifest.csv      the current corpus' records, merged
    RUN/locks/            who is writing the run now (see :class:`RunLock`)

Every file is written to a temporary name in the same folder (created with the user's umask),
flushed, fsync-ed and renamed (``os.replace``), then the folder is fsync-ed so the rename
itself survives a crash: readers see the old file or the new one, never half of one. A clip
counts as done only when its record says so with the current extract hash, its rows exist and
the record's file size and mtime are those of the input now, so a kill between the two writes
redoes that clip, and so does a fixed or replaced file. File names come from the clip id
through :func:`safe_name`, so no id (``..``, absolute paths, odd characters) can write outside
``RUN``.

Records of clips that left the corpus (excluded, deleted, renamed) stay on disk but out of the
merged views; a clip that comes back unchanged is not redone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from videmo import __version__, schema
from videmo import config as config_mod
from videmo.config import Config
from videmo.config import keys as config_keys
from videmo.models import model_hashes
from videmo.runtime import versions
from videmo.schema import Clip

log = logging.getLogger(__name__)

TMP_SUFFIX = ".tmp"

# How mesh tables are written: float32 landmarks do not repeat, so no dictionaries (they only
# grow the file); byte-stream-split floats compress well with zstd: about 4.9 kB a face, less
# than the 6 kB of the raw float32 values, against 15 kB as CSV text of the same numbers.
MESH_PARQUET: dict[str, Any] = {
    "use_dictionary": [schema.CLIP_ID],
    "compression": "zstd",
    "use_byte_stream_split": [*(c for c in schema.MESH_COLUMNS[3:-1]),
                              f"{schema.LANDMARKS}.list.element"],
}
RUN_FORMAT = 2  # run.json's layout: 2 added history, extract_key and corpus.json


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (other config, not a run directory, or another
    process is writing it)."""


def safe_name(clip_id: str) -> str:
    """A file name for a clip id: readable, unique (hash suffix) and unable to leave its folder."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._")[:80] or "clip"
    digest = hashlib.sha1(clip_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{readable}-{digest}"


def fsync_dir(path: Path) -> None:
    """Make a rename (or a new file) in ``path`` durable: fsync the folder itself."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems cannot sync a folder; the rename still happened
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it, rename it into place and
    fsync the folder. The file is created with mode 0666 minus the umask, as any program's
    output is (``mkstemp`` would make every output 0600, unreadable to the group)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet_atomic(df: pd.DataFrame | pa.Table, path: Path, **options: Any) -> None:
    """A pandas or Arrow table as Parquet (Arrow keeps fixed-size lists such as landmarks);
    ``options`` go to ``pyarrow.parquet.write_table`` (e.g. the mesh table's encodings)."""
    with atomic_path(path) as tmp:
        if isinstance(df, pa.Table):
            pq.write_table(df, tmp, **options)
        else:
            df.to_parquet(tmp, index=False, **options)


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------ input files
def file_stamp(clip: Clip, cfg: Config) -> dict[str, int | None]:
    """The clip's input as it is now: bytes and mtime (ns). An image-sequence folder: the sum of
    its images' sizes and the newest mtime among them. None for both when it cannot be read
    (the clip then fails and is never taken as done)."""
    try:
        if clip.kind == "images":
            stats = [f.stat() for f in clip.image_files(cfg.corpus.image_extensions)]
            if not stats:
                raise FileNotFoundError(clip.path)
            return {schema.FILE_SIZE: sum(s.st_size for s in stats),
                    schema.FILE_MTIME_NS: max(s.st_mtime_ns for s in stats)}
        st = clip.path.stat()
        return {schema.FILE_SIZE: st.st_size, schema.FILE_MTIME_NS: st.st_mtime_ns}
    except OSError:
        return {schema.FILE_SIZE: None, schema.FILE_MTIME_NS: None}


def changed_since(record: dict[str, Any], clip: Clip, cfg: Config) -> bool:
    """Whether the clip's file changed after ``record`` was made. A record without a stamp
    (written before videmo recorded them) is taken as it is: only extract redoes it."""
    if record.get(schema.FILE_SIZE) is None or pd.isna(record.get(schema.FILE_SIZE)):
        return False
    return not matches_file(record, file_stamp(clip, cfg))


def is_truncated(record: dict[str, Any]) -> bool:
    """A record's ``truncated`` flag, the one way to read it: a bool (a JSON record), a string
    (a manifest read from CSV), or missing / NA (runs made before the flag)."""
    value = record.get(schema.TRUNCATED)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    try:
        return bool(value) and not pd.isna(value)
    except (TypeError, ValueError):
        return False


def matches_file(record: dict[str, Any], stamp: dict[str, int | None]) -> bool:
    """Whether ``record`` was made from the file as ``stamp`` describes it now."""
    return stamp[schema.FILE_SIZE] is not None and all(
        record.get(k) == stamp[k] for k in (schema.FILE_SIZE, schema.FILE_MTIME_NS))


# ------------------------------------------------------------------ locks
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


class RunDir:
    """One run directory. Safe to share between processes and SLURM tasks: each clip's files
    are written by one worker, merged files are rebuilt from them, and :class:`RunLock` keeps
    two writers of the same part apart."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    parts = property(lambda self: self.path / "parts")
    clips = property(lambda self: self.path / "clips")
    locks = property(lambda self: self.path / "locks")
    run_json = property(lambda self: self.path / "run.json")
    corpus_json = property(lambda self: self.path / "corpus.json")
    frames_path = property(lambda self: self.path / "frames.parquet")
    manifest_path = property(lambda self: self.path / "manifest.csv")

    mesh_parts = property(lambda self: self.path / "parts" / "mesh")
    mesh_path = property(lambda self: self.path / "features" / "mesh.parquet")

    def mesh_part_path(self, clip_id: str) -> Path:
        return self.mesh_parts / f"{safe_name(clip_id)}.parquet"

    def part_path(self, clip_id: str) -> Path:
        return self.parts / f"{safe_name(clip_id)}.parquet"

    def record_path(self, clip_id: str) -> Path:
        return self.clips / f"{safe_name(clip_id)}.json"

    def lock(self, shard: int | None = None, command: str = "") -> RunLock:
        """The lock of the whole run, or of one shard (a context manager)."""
        return RunLock(self, shard, command)

    # -------------------------------------------------------------- creating / checking
    @classmethod
    @contextlib.contextmanager
    def open(cls, cfg: Config, *, force: bool = False, command: str = "",
             shard: int | None = None) -> Iterator[RunDir]:
        """Lock ``cfg.run.out`` (the whole run, or one shard), check it and record this
        invocation; release the lock on exit."""
        run = cls(cfg.out_dir)
        with run.lock(shard, command):
            yield cls.prepare(cfg, force=force, command=command, shard=shard)

    @classmethod
    def prepare(cls, cfg: Config, *, force: bool = False, command: str = "",
                shard: int | None = None) -> RunDir:
        """Create ``cfg.run.out`` or check that it was made with the same extract config, and
        append this invocation to run.json. The caller holds the run's lock (:meth:`open`)."""
        run = cls(cfg.out_dir)
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"run directory {run.path} exists and is not a directory")
        meta = run.read_meta()
        if meta and meta.get("extract_hash") != cfg.extract_hash() and not force:
            raise RunDirError(
                f"run directory {run.path} was made with a different config (extract hash "
                f"{meta.get('extract_hash')}, this config {cfg.extract_hash()}; "
                f"{_key_difference(meta.get('extract_key'), cfg.extract_key())}); pass --force "
                f"to redo it with this config, or set run.out to another directory")
        run.parts.mkdir(parents=True, exist_ok=True)
        run.clips.mkdir(parents=True, exist_ok=True)
        run.write_meta(cfg, command, shard=shard)
        return run

    def _invocation(self, command: str, **extra: Any) -> dict[str, Any]:
        return {"command": command, "time": now(), "host": socket.gethostname(),
                "pid": os.getpid(), **extra, "versions": versions()}

    def write_meta(self, cfg: Config, command: str = "", shard: int | None = None) -> None:
        """Write run.json for ``cfg``: the first creation time stays, this invocation is
        appended to ``history``. SLURM tasks do this side by side: the read-modify-write runs
        under the run's guard."""
        self.locks.mkdir(parents=True, exist_ok=True)
        with _guard(self.locks):
            old = self.read_meta() or {}
            entry = self._invocation(command, shard=shard, extract_hash=cfg.extract_hash())
            meta = {
                "videmo_run": RUN_FORMAT,
                "created": old.get("created") or now(),
                "updated": entry["time"],
                "extract_hash": cfg.extract_hash(),
                "extract_version": config_keys.EXTRACT_VERSION,
                "extract_key": cfg.extract_key(),
                "config_file_dir": cfg.base_dir,
                "versions": entry["versions"],
                "model_sha256": model_hashes(),
                "config": cfg.to_dict(),
                "history": _history(old) + [entry],
            }
            write_text_atomic(self.run_json, json.dumps(meta, indent=2, default=str) + "\n")
            write_text_atomic(self.path / "config.yaml", config_mod.dump(cfg))

    def append_history(self, command: str, **extra: Any) -> None:
        """Record an invocation that wrote the run without changing its config (a report)."""
        with _guard(self.locks):
            meta = self.read_meta()
            if meta is None:
                return
            meta["history"] = _history(meta) + [self._invocation(command, **extra)]
            meta["updated"] = meta["history"][-1]["time"]
            write_text_atomic(self.run_json, json.dumps(meta, indent=2, default=str) + "\n")

    def read_meta(self) -> dict[str, Any] | None:
        """run.json, or None when there is none. A run.json without a format (``videmo_run``)
        was written by an older videmo: it is read, and a command that would change the run
        says what differs (its extract key); one of a newer format is refused, never guessed."""
        try:
            meta = json.loads(self.run_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise RunDirError(f"cannot read {self.run_json}: {e}") from None
        if not isinstance(meta, dict) or "config" not in meta:
            raise RunDirError(f"{self.run_json} is not a videmo run record (no config in it)")
        fmt = meta.get("videmo_run", 1)
        if not isinstance(fmt, int) or fmt > RUN_FORMAT:
            raise RunDirError(f"{self.path} was written by a newer videmo (run format {fmt!r}; "
                              f"this videmo {__version__} reads formats up to {RUN_FORMAT}): "
                              f"upgrade videmo to read it, or set run.out to another directory")
        return meta

    def config(self) -> Config:
        """The config a run was made with (from run.json), for report-only commands."""
        meta = self.read_meta()
        if meta is None:
            raise RunDirError(f"{self.path} is not a videmo run directory (no run.json)")
        return config_mod.from_dict(meta["config"], base_dir=meta.get("config_file_dir", "."))

    # -------------------------------------------------------------- the current corpus
    def save_corpus(self, clips: Iterable[Clip]) -> None:
        """Record the clips of the corpus as it is now: the merged views hold only these."""
        data = {"updated": now(), "clips": {c.clip_id: str(c.path) for c in clips}}
        write_text_atomic(self.corpus_json, json.dumps(data, indent=1) + "\n")

    def corpus_ids(self) -> set[str] | None:
        """Ids of the current corpus; None for a run that never recorded one (all records)."""
        try:
            return set(json.loads(self.corpus_json.read_text(encoding="utf-8"))["clips"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RunDirError(f"cannot read {self.corpus_json}: {e}; rerun videmo extract "
                              f"(or report) to rewrite it") from None

    def save(self, result, config_hash: str,
             stamp: dict[str, int | None] | None = None,
             mesh_hash: str | None = None) -> dict[str, Any]:
        """Persist one clip: its tables first, then the record that makes them count. ``stamp``
        is the input file as stat-ed before the analysis (:func:`file_stamp`): a file changed
        while it was read is redone on the next run. A result without a per-frame table (only
        the mesh was computed: the table is done already) keeps the table on disk; its mesh
        counts under ``mesh_hash`` (``Config.mesh_hash``)."""
        clip_id = result.clip.clip_id
        record = result.record(config_hash)
        record.update(stamp or {schema.FILE_SIZE: None, schema.FILE_MTIME_NS: None})
        record[schema.FINISHED_AT] = now()
        record[schema.HOST] = socket.gethostname()
        if result.status == schema.DONE:
            if result.rows is not None:
                write_parquet_atomic(result.rows, self.part_path(clip_id))
            if result.mesh is not None:
                write_parquet_atomic(result.mesh, self.mesh_part_path(clip_id), **MESH_PARQUET)
                record[schema.MESH_HASH] = mesh_hash
            elif mesh_hash is None:  # keep what an earlier run with the mesh on recorded
                old = self.record(clip_id) or {}
                if old.get(schema.CONFIG_HASH) == config_hash and old.get(schema.MESH_HASH):
                    record[schema.MESH_HASH] = old[schema.MESH_HASH]
        else:
            for part in (self.part_path(clip_id), self.mesh_part_path(clip_id)):
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
        write_text_atomic(self.record_path(result.clip.clip_id), json.dumps(record) + "\n")
        return record

    def note(self, clip: Clip, status: str, reason: str, config_hash: str,
             stamp: dict[str, int | None] | None = None) -> None:
        """Record a clip that has no result (e.g. abandoned by an interrupted run)."""
        record = dict.fromkeys(schema.MANIFEST_COLUMNS)
        record.update({schema.CLIP_ID: clip.clip_id, schema.PATH: str(clip.path),
                       schema.STATUS: status, schema.REASON: reason,
                       schema.CONFIG_HASH: config_hash, schema.FINISHED_AT: now(),
                       schema.HOST: socket.gethostname(), **(stamp or {})})
        write_text_atomic(self.record_path(clip.clip_id), json.dumps(record) + "\n")

    def record(self, clip_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.record_path(clip_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def is_done(self, clip: Clip, cfg: Config, config_hash: str | None = None) -> bool:
        """Done with this extract config, every table of ``cfg.features`` on disk, and made
        from the file as it is now (same size and mtime): a fixed, replaced or touched file
        is redone."""
        return self.table_done(clip, cfg, config_hash) and self.mesh_done(clip, cfg)

    def table_done(self, clip: Clip, cfg: Config, config_hash: str | None = None) -> bool:
        """The per-frame table of ``clip`` is done (the emotions extractor)."""
        return self.why_not_done(self.record(clip.clip_id), config_hash or cfg.extract_hash(),
                                 clip, cfg, redo_unstamped=True) is None

    def why_not_done(self, rec: dict[str, Any] | None, config_hash: str,
                     clip: Clip | None = None, cfg: Config | None = None, *,
                     redo_unstamped: bool = False) -> str | None:
        """None when ``rec`` (a clip's record) is done: a done record of ``config_hash`` whose
        rows are on disk, made (``clip`` and ``cfg`` given) from the clip's file as it is now;
        else why not, in a few words. The one rule of done-ness that extract, status and report
        share. A record without a file stamp (made before videmo recorded them) counts as done
        for status and report, but extract (``redo_unstamped``) redoes it."""
        if rec is None:
            return "not extracted"
        if rec.get(schema.CONFIG_HASH) != config_hash:
            return "extracted with another config"
        if rec.get(schema.STATUS) != schema.DONE:
            return str(rec.get(schema.STATUS))
        if not self.part_path(str(rec[schema.CLIP_ID])).exists():
            return "its rows are missing"
        if clip is not None and cfg is not None:
            changed = (not matches_file(rec, file_stamp(clip, cfg)) if redo_unstamped
                       else changed_since(rec, clip, cfg))
            if changed:
                return "its file changed after it was done"
        return None

    def mesh_done(self, clip: Clip, cfg: Config) -> bool:
        """The mesh table of ``clip`` is done under ``cfg.mesh_hash()`` (True when the mesh
        is off)."""
        mesh_hash = cfg.mesh_hash()
        if mesh_hash is None:
            return True
        rec = self.record(clip.clip_id) or {}
        return rec.get(schema.MESH_HASH) == mesh_hash and \
            self.mesh_part_path(clip.clip_id).exists()

    def records(self, *, all_clips: bool = False) -> list[dict[str, Any]]:
        """Records of the current corpus (:meth:`save_corpus`), or every record on disk."""
        wanted = None if all_clips else self.corpus_ids()
        out = []
        for p in sorted(self.clips.glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                rec = json.loads(p.read_text(encoding="utf-8"))
                if wanted is None or rec.get(schema.CLIP_ID) in wanted:
                    out.append(rec)
        return out

    # -------------------------------------------------------------- merged views
    def manifest(self) -> pd.DataFrame:
        records = self.records()
        df = pd.DataFrame.from_records(records, columns=list(schema.MANIFEST_COLUMNS))
        # counts stay integers when some records (interrupted clips) have none; mtimes in ns
        # are built from the records, as a float column would round them
        for col in (schema.FRAMES_SAMPLED, schema.FRAMES_WITH_FACE, schema.FRAME_COUNT,
                    schema.FRAMES_EXPECTED, schema.FRAMES_DECODED, schema.WIDTH, schema.HEIGHT,
                    schema.FILE_SIZE, schema.FILE_MTIME_NS):
            df[col] = pd.array([r.get(col) for r in records], dtype="Int64")
        df[schema.TRUNCATED] = df[schema.TRUNCATED].astype("boolean")
        return df.sort_values(schema.CLIP_ID, kind="stable").reset_index(drop=True)

    def frames(self, config_hash: str | None = None) -> pd.DataFrame:
        """Rows of every done clip of the current corpus (of ``config_hash`` when given),
        sorted by clip and frame."""
        tables = [pd.read_parquet(p) for p in self._done_parts(self.part_path, config_hash)]
        if not tables:
            return schema.empty_frame_table()
        df = pd.concat(tables, ignore_index=True)
        return df.sort_values([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX],
                              kind="stable").reset_index(drop=True)

    def _done_parts(self, part_path, config_hash: str | None, key: str | None = None,
                    value: str | None = None) -> list[Path]:
        """The existing part files (``part_path(clip_id)``) of the done clips of the current
        corpus made under ``config_hash`` (any, when None) and, with ``key``, whose record has
        ``key`` set (to ``value``, when given): what one table is merged from."""
        out = []
        for rec in self.records():
            if rec.get(schema.STATUS) != schema.DONE:
                continue
            if config_hash is not None and rec.get(schema.CONFIG_HASH) != config_hash:
                continue
            if key is not None and (not rec.get(key) or
                                    (value is not None and rec.get(key) != value)):
                continue
            part = part_path(rec[schema.CLIP_ID])
            if part.exists():
                out.append(part)
        return out

    def mesh(self, config_hash: str | None = None,
             mesh_hash: str | None = None) -> pa.Table | None:
        """The mesh rows of every done clip of the current corpus whose mesh was made under
        ``mesh_hash`` (any, when None), sorted like the per-frame table; None without any."""
        tables = [pq.read_table(p) for p in self._done_parts(
            self.mesh_part_path, config_hash, schema.MESH_HASH, mesh_hash)]
        if not tables:
            return None
        table = pa.concat_tables(tables)
        return table.sort_by([(schema.CLIP_ID, "ascending"), (schema.FRAME_INDEX, "ascending"),
                              (schema.FACE_INDEX, "ascending")])

    def consolidate(self, config_hash: str | None = None,
                    clips: Iterable[Clip] | None = None,
                    mesh_hash: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rebuild frames.parquet, manifest.csv and (with mesh parts) features/mesh.parquet
        from the per-clip files of the current corpus (``clips`` when given, recorded first;
        else the last recorded corpus)."""
        if clips is not None:
            self.save_corpus(clips)
        frames = self.frames(config_hash)
        manifest = self.manifest()
        write_parquet_atomic(frames, self.frames_path)
        mesh = self.mesh(config_hash, mesh_hash)
        if mesh is not None:
            write_parquet_atomic(mesh, self.mesh_path, **MESH_PARQUET)
        write_csv_atomic(manifest, self.manifest_path)
        return frames, manifest


def _history(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json's invocations; a run.json from before the history kept only the last one."""
    if "history" in meta:
        return list(meta["history"])
    if not meta:
        return []
    return [{"command": meta.get("command", ""), "time": meta.get("updated"),
             "host": meta.get("host"), "extract_hash": meta.get("extract_hash"),
             "versions": meta.get("versions")}]


def _key_difference(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """Which extract-key entries differ, e.g. 'sampling.every_n: 20 -> 15'."""
    if not isinstance(old, dict):
        return "the run predates recorded extract keys (made by an older videmo)"

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[prefix + k] = v
        return out

    a, b = flat(old), flat(json.loads(json.dumps(new, default=str)))
    diffs = [f"{k}: {a.get(k, '(none)')} -> {b.get(k, '(none)')}"
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
    return f"differs in {shown}" if diffs else "same keys, other hash"
