"""The run directory: every output of a run, written so that a kill loses at most one clip.

Layout (see README, "Outputs")::

    RUN/run.json          provenance: extract config hash, versions, model hashes, times
    RUN/config.yaml       the resolved config
    RUN/parts/ID.parquet  one clip's per-frame rows (written by the worker that did the clip)
    RUN/clips/ID.json     one clip's manifest record (written after its rows)
    RUN/frames.parquet    all done clips' rows, merged (rebuilt at the end of extract/report)
    RUN/manifest.csv      all records, merged

Every file is written to a temporary name in the same folder, flushed, fsync-ed and renamed
(``os.replace``): readers see the old file or the new one, never half of one. A clip counts as
done only when its record says so with the current config hash *and* its rows exist, so a kill
between the two writes just redoes that clip. File names come from the clip id through
:func:`safe_name`, so no id (``..``, absolute paths, odd characters) can write outside ``RUN``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from . import config as config_mod
from . import schema
from .config import Config
from .models import model_hashes
from .runtime import versions

TMP_SUFFIX = ".tmp"


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (other config, not a run directory)."""


def safe_name(clip_id: str) -> str:
    """A file name for a clip id: readable, unique (hash suffix) and unable to leave its folder."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._")[:80] or "clip"
    digest = hashlib.sha1(clip_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{readable}-{digest}"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunDir:
    """One run directory. Safe to share between processes and SLURM tasks: each clip's files
    are written by one worker, and merged files are rebuilt from them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    parts = property(lambda self: self.path / "parts")
    clips = property(lambda self: self.path / "clips")
    run_json = property(lambda self: self.path / "run.json")
    frames_path = property(lambda self: self.path / "frames.parquet")
    manifest_path = property(lambda self: self.path / "manifest.csv")

    def part_path(self, clip_id: str) -> Path:
        return self.parts / f"{safe_name(clip_id)}.parquet"

    def record_path(self, clip_id: str) -> Path:
        return self.clips / f"{safe_name(clip_id)}.json"

    # -------------------------------------------------------------- creating / checking
    @classmethod
    def prepare(cls, cfg: Config, *, force: bool = False, command: str = "") -> RunDir:
        """Create ``cfg.run.out`` or check that it was made with the same extract config."""
        run = cls(cfg.out_dir)
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"run directory {run.path} exists and is not a directory")
        meta = run.read_meta()
        if meta and meta.get("extract_hash") != cfg.extract_hash() and not force:
            raise RunDirError(
                f"run directory {run.path} was made with a different config (extract hash "
                f"{meta.get('extract_hash')}, this config {cfg.extract_hash()}); pass --force to "
                f"redo it with this config, or set run.out to another directory")
        run.parts.mkdir(parents=True, exist_ok=True)
        run.clips.mkdir(parents=True, exist_ok=True)
        run.write_meta(cfg, command, created=(meta or {}).get("created"))
        return run

    def write_meta(self, cfg: Config, command: str = "", created: str | None = None) -> None:
        meta = {
            "videmo_run": 1,
            "extract_hash": cfg.extract_hash(),
            "created": created or now(),
            "updated": now(),
            "command": command,
            "host": socket.gethostname(),
            "config_file_dir": cfg.base_dir,
            "versions": versions(),
            "model_sha256": model_hashes(),
            "config": cfg.to_dict(),
        }
        write_text_atomic(self.run_json, json.dumps(meta, indent=2, default=str) + "\n")
        write_text_atomic(self.path / "config.yaml", config_mod.dump(cfg))

    def read_meta(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise RunDirError(f"cannot read {self.run_json}: {e}") from None

    def config(self) -> Config:
        """The config a run was made with (from run.json), for report-only commands."""
        meta = self.read_meta()
        if meta is None:
            raise RunDirError(f"{self.path} is not a videmo run directory (no run.json)")
        return config_mod.from_dict(meta["config"], base_dir=meta.get("config_file_dir", "."))

    # -------------------------------------------------------------- per clip
    def save(self, result, config_hash: str) -> dict[str, Any]:
        """Persist one clip: rows first, then the record that makes them count."""
        record = result.record(config_hash)
        record[schema.FINISHED_AT] = now()
        record[schema.HOST] = socket.gethostname()
        if result.status == schema.DONE:
            write_parquet_atomic(result.rows, self.part_path(result.clip.clip_id))
        else:
            with contextlib.suppress(FileNotFoundError):
                self.part_path(result.clip.clip_id).unlink()
        write_text_atomic(self.record_path(result.clip.clip_id), json.dumps(record) + "\n")
        return record

    def note(self, clip, status: str, reason: str, config_hash: str) -> None:
        """Record a clip that has no result (e.g. abandoned by an interrupted run)."""
        record = dict.fromkeys(schema.MANIFEST_COLUMNS)
        record.update({schema.CLIP_ID: clip.clip_id, schema.PATH: str(clip.path),
                       schema.STATUS: status, schema.REASON: reason,
                       schema.CONFIG_HASH: config_hash, schema.FINISHED_AT: now(),
                       schema.HOST: socket.gethostname()})
        write_text_atomic(self.record_path(clip.clip_id), json.dumps(record) + "\n")

    def record(self, clip_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.record_path(clip_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def is_done(self, clip_id: str, config_hash: str) -> bool:
        rec = self.record(clip_id)
        return (rec is not None and rec.get(schema.STATUS) == schema.DONE
                and rec.get(schema.CONFIG_HASH) == config_hash
                and self.part_path(clip_id).exists())

    def records(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.clips.glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                out.append(json.loads(p.read_text(encoding="utf-8")))
        return out

    # -------------------------------------------------------------- merged views
    def manifest(self) -> pd.DataFrame:
        df = pd.DataFrame.from_records(self.records(), columns=list(schema.MANIFEST_COLUMNS))
        # counts stay integers when some records (interrupted clips) have none
        for col in (schema.FRAMES_SAMPLED, schema.FRAMES_WITH_FACE, schema.FRAME_COUNT,
                    schema.FRAMES_DECODED, schema.WIDTH, schema.HEIGHT):
            df[col] = pd.to_numeric(df[col]).astype("Int64")
        df[schema.FRAMES_EXPECTED] = pd.to_numeric(df[schema.FRAMES_EXPECTED]).astype("Int64")
        df[schema.TRUNCATED] = df[schema.TRUNCATED].astype("boolean")
        return df.sort_values(schema.CLIP_ID, kind="stable").reset_index(drop=True)

    def frames(self, config_hash: str | None = None) -> pd.DataFrame:
        """Rows of every done clip (of ``config_hash`` when given), sorted by clip and frame."""
        from .pipeline import empty_frame_table

        tables = []
        for rec in self.records():
            if rec.get(schema.STATUS) != schema.DONE:
                continue
            if config_hash is not None and rec.get(schema.CONFIG_HASH) != config_hash:
                continue
            part = self.part_path(rec[schema.CLIP_ID])
            if part.exists():
                tables.append(pd.read_parquet(part))
        if not tables:
            return empty_frame_table()
        df = pd.concat(tables, ignore_index=True)
        return df.sort_values([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX],
                              kind="stable").reset_index(drop=True)

    def consolidate(self, config_hash: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rebuild frames.parquet and manifest.csv from the per-clip files."""
        frames = self.frames(config_hash)
        manifest = self.manifest()
        write_parquet_atomic(frames, self.frames_path)
        write_csv_atomic(manifest, self.manifest_path)
        return frames, manifest
