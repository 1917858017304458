"""The run directory: every output of a run, written so that a kill loses at most one clip.

Layout (see README, "Outputs")::

    RUN/run.json          provenance: extract key and hash, versions, model hashes, the first
                          creation and a history of every invocation that wrote the run
    RUN/config.yaml       the resolved config
    RUN/corpus.json       the clips of the current corpus (what the merged views hold)
    RUN/parts/ID.parquet  one clip's per-frame rows (written by the worker that did the clip)
    RUN/parts/NAME/ID.parquet   one clip's rows of the side table NAME (e.g. mesh)
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

Side tables of feature extractors (e.g. the mesh) are stored the same way from their
:class:`~videmo.schema.FeatureTable`: RUN/parts/NAME/ID.parquet counted under the record's
``NAME_hash``, merged into the table's path (RUN/features/mesh.parquet). The atomic writes and
the input file's stamp live in :mod:`.files`, the writers' locks in :mod:`.locks`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from videmo import __version__, arrow, schema
from videmo import config as config_mod
from videmo.config import Config
from videmo.config import keys as config_keys
from videmo.models import model_hashes
from videmo.runtime import versions
from videmo.schema import Clip, FeatureTable
from videmo.store.files import (
    TMP_SUFFIX,
    RunDirError,
    atomic_path,
    changed_since,
    file_stamp,
    fsync_dir,
    is_missing,
    is_truncated,
    matches_file,
    now,
    safe_name,
    write_csv_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from videmo.store.integrity import (
    FRAMES_PART,
    PARTS,
    REPAIR,
    DamagedRunError,
    move_aside,
    part_entry,
    part_problem,
    read_part,
    record_intact,
    report_dirs,
    sign_record,
    stale_paths,
)
from videmo.store.locks import (
    RunLock,
    _guard,
    _proc_start,
    clear_ended_job_locks,
    slurm_job_id,
)
from videmo.store.meta import history_of, key_difference, trusted_meta

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RUN_FORMAT", "TMP_SUFFIX", "DamagedRunError", "RunDir", "RunDirError", "RunLock",
           "_proc_start",
           "atomic_path", "changed_since", "clear_ended_job_locks", "file_stamp", "fsync_dir",
           "is_missing", "is_truncated", "matches_file", "now", "safe_name", "slurm_job_id",
           "write_csv_atomic", "write_parquet_atomic", "write_text_atomic"]


RUN_FORMAT = 2  # run.json's layout: 2 added history, extract_key and corpus.json


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

    def table_part_path(self, name: str, clip_id: str) -> Path:
        """A clip's part of the side table ``name`` (RUN/parts/NAME/CLIP.parquet)."""
        return self.parts / name / f"{safe_name(clip_id)}.parquet"

    def table_path(self, table: FeatureTable) -> Path:
        """Where the side table's parts are merged (RUN/``table.path``)."""
        return self.path / table.path

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
        meta = trusted_meta(run)
        if meta and meta.get("extract_hash") != cfg.extract_hash() and not force and \
                meta.get("extract_hash") is not None:
            raise RunDirError(
                f"run directory {run.path} was made with a different config (extract hash "
                f"{meta.get('extract_hash')}, this config {cfg.extract_hash()}; "
                f"{key_difference(meta.get('extract_key'), cfg.extract_key())}); pass --force "
                f"to redo it with this config, or set run.out to another directory")
        run.parts.mkdir(parents=True, exist_ok=True)
        run.clips.mkdir(parents=True, exist_ok=True)
        if shard is None:  # shards of one submission share the settings; the plan made them
            run.drop_other_settings(cfg, meta)
        run.write_meta(cfg, command, shard=shard)
        return run

    def drop_other_settings(self, cfg: Config, meta: dict[str, Any] | None = None) -> None:
        """Move aside every file that ``cfg`` does not make (see
        :func:`~videmo.store.integrity.stale_paths`), before run.json records ``cfg``: a kill
        in between leaves the old config with fewer files, never a file the new one disowns."""
        meta = self.read_meta() if meta is None else meta
        other = bool(meta) and meta.get("extract_hash") != cfg.extract_hash()
        move_aside(self.path, stale_paths(self.path, cfg.feature_tables(), other_extract=other,
                                          report_dirs=report_dirs(self.path, cfg)))

    def _invocation(self, command: str, **extra: Any) -> dict[str, Any]:
        return {"command": command, "time": now(), "host": socket.gethostname(),
                "pid": os.getpid(), **extra, "versions": versions()}

    def write_meta(self, cfg: Config, command: str = "", shard: int | None = None) -> None:
        """Write run.json for ``cfg``: the first creation time stays, this invocation is
        appended to ``history``. SLURM tasks do this side by side: the read-modify-write runs
        under the run's guard."""
        self.locks.mkdir(parents=True, exist_ok=True)
        with _guard(self.locks):
            try:
                old = self.read_meta() or {}
            except DamagedRunError:
                old = {}
            if old and not record_intact(old):  # its history cannot be trusted either
                old = {"created": old.get("created"), "history": []}
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
                "history": history_of(old) + [entry],
            }
            self._write_meta(meta)
            write_text_atomic(self.path / "config.yaml", config_mod.dump(cfg))

    def append_history(self, command: str, **extra: Any) -> None:
        """Record an invocation that wrote the run without changing its config (a report)."""
        with _guard(self.locks):
            meta = self.read_meta()
            if meta is None:
                return
            meta["history"] = history_of(meta) + [self._invocation(command, **extra)]
            meta["updated"] = meta["history"][-1]["time"]
            self._write_meta(meta)

    def _write_meta(self, meta: dict[str, Any]) -> None:
        """run.json with its checksum (see :meth:`config`)."""
        meta = sign_record(json.loads(json.dumps(meta, default=str)))
        write_text_atomic(self.run_json, json.dumps(meta, indent=2) + "\n")

    def read_meta(self) -> dict[str, Any] | None:
        """run.json, or None when there is none. A run.json without a format (``videmo_run``)
        was written by an older videmo: it is read, and a command that would change the run
        says what differs (its extract key); one of a newer format is refused, never guessed."""
        try:
            meta = json.loads(self.run_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise DamagedRunError(f"cannot read {self.run_json}: {e}") from None
        if not isinstance(meta, dict) or "config" not in meta:
            raise DamagedRunError(f"{self.run_json} is not a videmo run record (no config in "
                                  f"it)")
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
        if not record_intact(meta):
            raise DamagedRunError(f"{self.run_json} was edited after it was written (its "
                                  f"checksum differs), so the config it names may not be the "
                                  f"one the run was made with: {REPAIR}")
        return config_mod.from_dict(meta["config"], base_dir=meta.get("config_file_dir", "."))

    # -------------------------------------------------------------- the current corpus
    def save_corpus(self, clips: Iterable[Clip]) -> None:
        """Record the clips of the corpus as it is now: the merged views hold only these."""
        data = {"updated": now(), "clips": {c.clip_id: str(c.path) for c in clips}}
        write_text_atomic(self.corpus_json, json.dumps(sign_record(data), indent=1) + "\n")

    def corpus_ids(self) -> set[str] | None:
        """Ids of the current corpus; None for a run that never recorded one (all records)."""
        try:
            data = json.loads(self.corpus_json.read_text(encoding="utf-8"))
            ids = set(data["clips"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DamagedRunError(f"cannot read {self.corpus_json}: {e}; rerun videmo extract "
                                  f"(or run) to rewrite it") from None
        if not record_intact(data):
            raise DamagedRunError(f"{self.corpus_json} was edited after it was written (its "
                                  f"checksum differs); rerun videmo extract (or run) to "
                                  f"rewrite it")
        return ids

    def save(self, result, config_hash: str,
             stamp: dict[str, int | None] | None = None,
             tables: Sequence[FeatureTable] = ()) -> dict[str, Any]:
        """Persist one clip: its tables first, then the record that makes them count. ``stamp``
        is the input file as stat-ed before the analysis (:func:`file_stamp`): a file changed
        while it was read is redone on the next run. ``result.tables`` holds the side tables
        computed (by name); each counts under its :class:`~videmo.schema.FeatureTable`'s cache
        hash (``tables``: the config's). A result without a per-frame table (only side tables
        were computed: the table is done already) keeps the table on disk, and a side table the
        config has off keeps what an earlier run of the same extract config recorded."""
        clip_id = result.clip.clip_id
        record = result.record(config_hash)
        record.update(stamp or {schema.FILE_SIZE: None, schema.FILE_MTIME_NS: None})
        record[schema.FINISHED_AT] = now()
        record[schema.HOST] = socket.gethostname()
        if result.status == schema.DONE:
            old = self.record(clip_id) or {}
            kept = old.get(PARTS) or {} if old.get(schema.CONFIG_HASH) == config_hash else {}
            parts: dict[str, Any] = {}
            if result.rows is not None:
                write_parquet_atomic(result.rows, self.part_path(clip_id))
                parts[FRAMES_PART] = part_entry(self.part_path(clip_id))
            elif kept.get(FRAMES_PART):
                parts[FRAMES_PART] = kept[FRAMES_PART]
            for table in tables:
                if table.name in result.tables:
                    path = self.table_part_path(table.name, clip_id)
                    write_parquet_atomic(result.tables[table.name], path, **table.parquet)
                    record[table.hash_key] = table.cache_hash
                    parts[table.name] = part_entry(path)
                elif kept and old.get(table.hash_key) == table.cache_hash:  # done before
                    record[table.hash_key] = table.cache_hash
                    if kept.get(table.name):
                        parts[table.name] = kept[table.name]
            record[PARTS] = parts
        else:
            parts = [self.part_path(clip_id), *self.parts.glob(f"*/{safe_name(clip_id)}.parquet")]
            for part in parts:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
        record = sign_record(record)
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
        write_text_atomic(self.record_path(clip.clip_id), json.dumps(sign_record(record)) + "\n")

    def record(self, clip_id: str) -> dict[str, Any] | None:
        """The clip's record; None when there is none or it is damaged (unreadable, edited:
        see :func:`~videmo.store.integrity.record_intact`), so extract redoes the clip."""
        try:
            rec = json.loads(self.record_path(clip_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(rec, dict) or rec.get(schema.CLIP_ID) != clip_id:
            return None  # another clip's record under this name (a swapped file)
        return rec if record_intact(rec) else None

    def part_problem(self, rec: dict[str, Any], name: str = FRAMES_PART) -> str | None:
        """Why the clip's part ``name`` (the per-frame part, or a side table's) is not the one
        ``rec`` recorded, or None."""
        cid = str(rec[schema.CLIP_ID])
        path = self.part_path(cid) if name == FRAMES_PART else self.table_part_path(name, cid)
        return part_problem(path, (rec.get(PARTS) or {}).get(name))

    def is_done(self, clip: Clip, cfg: Config, config_hash: str | None = None,
                tables: list | None = None) -> bool:
        """Done with this extract config, every table of ``cfg.features`` on disk, and made
        from the file as it is now (same size and mtime): a fixed, replaced or touched file
        is redone. ``config_hash`` and ``tables`` (``cfg.feature_tables()``) may be given once
        for many clips."""
        tables = cfg.feature_tables() if tables is None else tables
        return self.table_done(clip, cfg, config_hash) and \
            all(self.table_part_done(clip, t) for t in tables)

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
        if redo_unstamped and self.part_problem(rec) is not None:
            return "its rows are damaged"
        if clip is not None and cfg is not None:
            changed = (not matches_file(rec, file_stamp(clip, cfg)) if redo_unstamped
                       else changed_since(rec, clip, cfg))
            if changed:
                return "its file changed after it was done"
        return None

    def table_part_done(self, clip: Clip, table: FeatureTable) -> bool:
        """The clip's part of the side table is on disk and made under its cache hash."""
        rec = self.record(clip.clip_id) or {}
        return rec.get(table.hash_key) == table.cache_hash and \
            self.table_part_path(table.name, clip.clip_id).exists() and \
            self.part_problem(rec, table.name) is None

    def records(self, *, all_clips: bool = False) -> list[dict[str, Any]]:
        """Records of the current corpus (:meth:`save_corpus`), or every record on disk. An
        edited record of the corpus (its checksum differs) is refused
        (:class:`DamagedRunError`): what it says cannot be counted; extract redoes its clip."""
        wanted = None if all_clips else self.corpus_ids()
        out = []
        for p in sorted(self.clips.glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                rec = json.loads(p.read_text(encoding="utf-8"))
                if not isinstance(rec, dict):
                    continue
                if wanted is None or rec.get(schema.CLIP_ID) in wanted:
                    if not all_clips and not record_intact(rec):
                        raise DamagedRunError(
                            f"{p} was edited after it was written (its checksum differs): "
                            f"{REPAIR}")
                    out.append(rec)
        return out

    # -------------------------------------------------------------- merged views
    def manifest(self) -> pd.DataFrame:
        import pandas as pd

        records = self.records()
        df = pd.DataFrame.from_records(records, columns=list(schema.MANIFEST_COLUMNS))
        # counts stay integers when some records (interrupted clips) have none; mtimes in ns
        # are built from the records, as a float column would round them
        for col in MANIFEST_INTS:
            df[col] = pd.array([r.get(col) for r in records], dtype="Int64")
        df[schema.TRUNCATED] = df[schema.TRUNCATED].astype("boolean")
        return df.sort_values(schema.CLIP_ID, kind="stable").reset_index(drop=True)

    def manifest_cells(self) -> list[list[str]]:
        """:meth:`manifest` as text cells, the header first: the cells ``manifest().to_csv()``
        writes, made without pandas (tests/test_frame_arrow.py holds the two together)."""
        return manifest_cells(self.records())

    def frames(self, config_hash: str | None = None) -> pd.DataFrame:
        """Rows of every done clip of the current corpus (of ``config_hash`` when given),
        sorted by clip and frame: :meth:`frames_table` as pandas reads it."""
        return self.frames_table(config_hash).to_pandas()

    def frames_table(self, config_hash: str | None = None) -> pa.Table:
        """:meth:`frames` as an Arrow table (schema.frame_arrow_schema), read without pandas."""
        def read(path: Path) -> pa.Table:  # a run made before face tracks has no track
            table = arrow.read_parquet(path)
            have = tuple(c for c in schema.FRAME_COLUMNS if c in table.column_names)
            return table.select(list(have)).cast(schema.frame_arrow_schema(have))

        tables = [read_part(p, read) for p in self._done_parts(self.part_path, config_hash)]
        if not tables:
            return arrow.empty(schema.frame_arrow_schema())
        table = pa.concat_tables(tables, promote_options="default")
        have = tuple(c for c in schema.FRAME_COLUMNS if c in table.column_names)
        table = table.select(list(have)).replace_schema_metadata(
            schema.frame_arrow_schema(have).metadata)
        return table.sort_by([(schema.CLIP_ID, "ascending"), (schema.FRAME_INDEX, "ascending"),
                              (schema.FACE_INDEX, "ascending")])  # a stable sort

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
                name = FRAMES_PART if key is None else key.removesuffix("_hash")
                problem = self.part_problem(rec, name)
                if problem is not None:
                    raise DamagedRunError(f"{part} is damaged: {problem}; {REPAIR}")
                out.append(part)
        return out

    def side_table(self, name: str, config_hash: str | None = None,
                   cache_hash: str | None = None) -> pa.Table | None:
        """The rows of the side table ``name`` of every done clip of the current corpus whose
        part was made under ``cache_hash`` (any, when None), sorted like the per-frame table;
        None without any."""
        tables = [read_part(p, arrow.read_parquet) for p in self._done_parts(
            lambda cid: self.table_part_path(name, cid), config_hash, f"{name}_hash",
            cache_hash)]
        if not tables:
            return None
        table = pa.concat_tables(tables)
        return table.sort_by([(schema.CLIP_ID, "ascending"), (schema.FRAME_INDEX, "ascending"),
                              (schema.FACE_INDEX, "ascending")])

    def consolidate(self, config_hash: str | None = None,
                    clips: Iterable[Clip] | None = None,
                    tables: Sequence[FeatureTable] = ()) -> pa.Table:
        """Rebuild frames.parquet, manifest.csv and each side table of ``tables`` that has
        parts (e.g. features/mesh.parquet) from the per-clip files of the current corpus
        (``clips`` when given, recorded first; else the last recorded corpus). Returns the
        per-frame table (Arrow: ``.to_pandas()`` is :meth:`frames`). Pandas is not needed."""
        if clips is not None:
            self.save_corpus(clips)
        frames = self.frames_table(config_hash)
        manifest = self.manifest_cells()
        write_parquet_atomic(frames, self.frames_path)
        for table in tables:
            rows = self.side_table(table.name, config_hash, table.cache_hash)
            if rows is not None:
                write_parquet_atomic(rows, self.table_path(table), **table.parquet)
            elif self.table_path(table).exists():  # no part of it is current any more
                move_aside(self.path, [self.table_path(table)])
        write_csv_atomic(manifest, self.manifest_path)
        return frames


# the manifest's count and size columns: integers, empty where a record has none
MANIFEST_INTS: tuple[str, ...] = (
    schema.FRAMES_SAMPLED, schema.FRAMES_WITH_FACE, schema.FRAME_COUNT, schema.FRAMES_EXPECTED,
    schema.FRAMES_DECODED, schema.WIDTH, schema.HEIGHT, schema.FILE_SIZE, schema.FILE_MTIME_NS)


def manifest_cells(records: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Manifest records as text cells, the header (schema.MANIFEST_COLUMNS) first, sorted by
    clip id, each cell as pandas writes the column :meth:`RunDir.manifest` makes: the counts
    (MANIFEST_INTS) as integers, ``truncated`` as True / False, a column of numbers with a float
    or a gap as floats (``12`` -> ``12.0``), anything else as its text; missing: empty."""
    rows = sorted(records, key=lambda r: str(r.get(schema.CLIP_ID)))
    columns = [_cells(col, [r.get(col) for r in rows]) for col in schema.MANIFEST_COLUMNS]
    return [list(schema.MANIFEST_COLUMNS), *(list(row) for row in zip(*columns, strict=True))]


def _cells(column: str, values: list[Any]) -> list[str]:
    if column in MANIFEST_INTS:
        return ["" if is_missing(v) else str(int(v)) for v in values]
    if column == schema.TRUNCATED:
        return ["" if is_missing(v) else str(bool(v)) for v in values]
    present = [v for v in values if not is_missing(v)]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
    if present and numbers and (len(present) < len(values) or
                                any(isinstance(v, float) for v in present)):
        return ["" if is_missing(v) else repr(float(v)) for v in values]  # a float column
    return ["" if is_missing(v) else str(v) for v in values]
