"""Files of a run directory that a kill cannot leave half written, and the input file's stamp.

Every file is written to a temporary name in the same folder (created with the user's umask),
flushed, fsync-ed and renamed (``os.replace``), then the folder is fsync-ed so the rename
itself survives a crash: readers see the old file or the new one, never half of one. File
names come from the clip id through :func:`safe_name`, so no id (``..``, absolute paths, odd
characters) can write outside the run directory.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import hashlib
import math
import os
import re
import secrets
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from videmo import schema

if TYPE_CHECKING:
    import pandas as pd

    from videmo.config import Config
    from videmo.schema import Clip

TMP_SUFFIX = ".tmp"

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
def atomic_path(path: Path, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it, rename it into place and
    fsync the folder. The file is created with mode 0666 minus the umask, as any program's
    output is (``mkstemp`` would make every output 0600, unreadable to the group).
    ``keep_suffix``: the temporary name ends with ``path``'s own name, for writers that choose
    the format by the extension (Keras's ``.keras``/``.weights.h5``, ``np.savez``, ffmpeg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    tmp_path = path.parent / (f".{token}{TMP_SUFFIX}.{path.name}" if keep_suffix
                              else f".{path.name}.{token}{TMP_SUFFIX}")
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


def write_csv_atomic(df: pd.DataFrame | Sequence[Sequence[str]], path: Path) -> None:
    """A pandas table, or rows of text cells (the header first) written as pandas writes a
    table's text (``csv``'s minimal quoting, ``\\n`` line ends): the manifest is written so,
    without pandas, by the extraction."""
    with atomic_path(path) as tmp:
        if hasattr(df, "to_csv"):
            df.to_csv(tmp, index=False)
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\n").writerows(df)


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
    if is_missing(record.get(schema.FILE_SIZE)):
        return False
    return not matches_file(record, file_stamp(clip, cfg))


def is_truncated(record: dict[str, Any]) -> bool:
    """A record's ``truncated`` flag, the one way to read it: a bool (a JSON record), a string
    (a manifest read from CSV), or missing / NA (runs made before the flag)."""
    value = record.get(schema.TRUNCATED)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    try:
        return bool(value) and not is_missing(value)
    except (TypeError, ValueError):
        return False


def is_missing(value: Any) -> bool:
    """None, NaN, or pandas' missing values (NA, NaT; only a record read through pandas, a
    manifest row, can hold those, so pandas is asked only when something loaded it)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    pd = sys.modules.get("pandas")
    return pd is not None and pd.api.types.is_scalar(value) and bool(pd.isna(value))


def matches_file(record: dict[str, Any], stamp: dict[str, int | None]) -> bool:
    """Whether ``record`` was made from the file as ``stamp`` describes it now."""
    return stamp[schema.FILE_SIZE] is not None and all(
        record.get(k) == stamp[k] for k in (schema.FILE_SIZE, schema.FILE_MTIME_NS))


def check_out(cfg: Config, lines: list[str]) -> None:
    """Before any work: ``run.out`` is a folder, or can be made, and can be written (a
    :class:`videmo.config.ConfigError` naming the key); one line to ``lines``."""
    from videmo.config import ConfigError

    out = cfg.out_dir.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"config key 'run.out': {out} exists and is not a folder")
    parent = next((p for p in (out, *out.parents) if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"config key 'run.out': cannot write {out} ({parent} is not writable)")
    where = "" if Path(cfg.run.out).expanduser().is_absolute() else \
        " (relative to the current directory)"
    lines.append(f"run.out: {out}{where}")
