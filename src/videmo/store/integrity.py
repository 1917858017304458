"""What lets a run directory vouch for its own files: a checksum in every clip record, a content
hash and a row count for every part, and the removal of files that the current settings do not
make.

Each part (RUN/parts/ID.parquet, RUN/parts/NAME/ID.parquet) is recorded in its clip's record
under ``parts`` as ``{"sha256": ..., "rows": ...}`` when it is written; the record itself carries
``record_sha256``, the hash of its other keys, so an edited record is told from a written one.
Readers (:meth:`videmo.store.RunDir.frames`, :meth:`~videmo.store.RunDir.side_table`) compare
every part with its record before using it and raise :class:`DamagedRunError` on a mismatch;
extract takes such a clip as not done and redoes it. ``videmo verify`` (:mod:`.verify`) runs the
same checks over the whole directory.

Files of other settings (:func:`stale_paths`) are moved into one folder RUN/.stale-XXXX with
``os.replace`` (atomic for each file) and that folder is then deleted: a kill in between leaves
the folder, which the next :meth:`~videmo.store.RunDir.prepare` deletes and ``videmo verify``
names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from videmo.models import sha256_of
from videmo.schema import FeatureTable
from videmo.store.files import RunDirError, fsync_dir

PARTS = "parts"  # a record's key: {"frames" | table name: {"sha256": ..., "rows": ...}}
FRAMES_PART = "frames"
RECORD_SHA256 = "record_sha256"
CHECKSUMMED = "checksummed"  # a record that must carry RECORD_SHA256
STALE_PREFIX = ".stale-"
REPORT_BUILT = "built_from.json"  # what a report was built from, beside its files
FEATURES_DIR = "features"  # where the merged side tables are (schema.MESH_TABLE's folder)


REPAIR = ("`videmo verify RUN` names every damaged file; `videmo run CONFIG` (or extract) "
          "re-extracts the damaged clips")


class DamagedRunError(RunDirError):
    """A file of the run directory is not what its record says (edited, truncated, swapped):
    reading it would give wrong numbers. ``videmo verify RUN`` names every such file;
    ``videmo run CONFIG`` re-extracts the damaged clips."""


def read_part(path: Path, reader):
    """A part read by ``reader``; an unreadable one is a damaged run, not a traceback."""
    try:
        return reader(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise DamagedRunError(f"{path} cannot be read ({type(e).__name__}: {e}); "
                              f"{REPAIR}") from None


def report_dirs(run_path: Path, cfg) -> list[Path]:
    """The reports a run owns: RUN/report, and ``report.out`` when it is inside RUN."""
    out = [run_path / "report"]
    custom = cfg.resolve(cfg.report.out)
    if custom is not None and Path(custom).resolve().is_relative_to(run_path.resolve()):
        out.append(Path(custom))
    return out


def part_entry(path: Path) -> dict[str, Any]:
    """The record of a part just written: its content hash and row count."""
    return {"sha256": sha256_of(path), "rows": pq.read_metadata(path).num_rows}


def part_problem(path: Path, entry: dict[str, Any] | None) -> str | None:
    """Why the part at ``path`` is not the one its record (``entry``) describes, or None. A
    record without an entry (a run written before videmo recorded them) checks only that the
    file is there."""
    if not path.exists():
        return "missing"
    if not entry:
        return None
    try:
        if sha256_of(path) != entry.get("sha256"):
            return "its content differs from its record (sha256)"
        rows = pq.read_metadata(path).num_rows
    except Exception as e:  # noqa: BLE001 - any unreadable file is a damaged one
        return f"unreadable ({type(e).__name__}: {e})"
    if rows != entry.get("rows"):
        return f"{rows} rows, its record says {entry.get('rows')}"
    return None


def _canonical(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != RECORD_SHA256}
    return json.dumps(body, sort_keys=True, default=str).encode("utf-8")


def sign_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its checksum (written last, over every other key, including the mark
    ``checksummed`` that says a checksum belongs to it)."""
    body = {k: v for k, v in record.items() if k != RECORD_SHA256}
    body[CHECKSUMMED] = True
    return {**body, RECORD_SHA256: hashlib.sha256(_canonical(body)).hexdigest()}


def record_intact(record: dict[str, Any]) -> bool:
    """Whether a record read back is the one written. One without a checksum is taken as it
    is when it was written so (by an older videmo, or by hand), and not when it carries the
    mark of a checksummed record (its checksum key was damaged)."""
    sha = record.get(RECORD_SHA256)
    if sha is None:
        return CHECKSUMMED not in record
    return sha == hashlib.sha256(_canonical(record)).hexdigest()


def fingerprint(entries: dict[str, Any]) -> str:
    """One hash for a table made of parts: clip id -> part entry (or its file's hash)."""
    return hashlib.sha256(json.dumps(entries, sort_keys=True, default=str).encode()).hexdigest()


def table_dirs(run_path: Path) -> list[str]:
    """The side tables that have part folders (RUN/parts/NAME/)."""
    parts = run_path / "parts"
    return sorted(p.name for p in parts.iterdir() if p.is_dir()) if parts.is_dir() else []


def stale_paths(run_path: Path, tables: Sequence[FeatureTable], *, other_extract: bool,
                report_dirs: Sequence[Path] = ()) -> list[Path]:
    """Files and folders of ``run_path`` that the settings about to be recorded do not make:
    with another extract config (``other_extract``), every derived file (the merged tables,
    side-table parts, reports, learned models); else the side tables (merged and parts) that
    ``tables`` does not name, and each report in ``report_dirs`` built with other tables."""
    names = {t.name for t in tables}
    paths = {run_path / t.path for t in tables}
    out: list[Path] = []
    if other_extract:
        out += [run_path / "frames.parquet", run_path / FEATURES_DIR, run_path / "learn"]
        out += [run_path / "parts" / n for n in table_dirs(run_path)]
        out += list(report_dirs)
    else:
        out += [run_path / "parts" / n for n in table_dirs(run_path) if n not in names]
        features = run_path / FEATURES_DIR
        if features.is_dir():
            out += [p for p in sorted(features.iterdir()) if p not in paths]
        for report in report_dirs:
            built = read_built(report)
            if built is not None and set(built.get("tables", {})) != names:
                out.append(report)
    return [p for p in out if p.exists()]


def move_aside(run_path: Path, paths: Sequence[Path]) -> None:
    """Move ``paths`` out of the run (one atomic rename each) into RUN/.stale-XXXX, then delete
    that folder. A leftover folder of an interrupted move is deleted first."""
    clear_stale(run_path)
    if not paths:
        return
    trash = run_path / f"{STALE_PREFIX}{secrets.token_hex(4)}"
    trash.mkdir()
    for i, path in enumerate(paths):
        os.replace(path, trash / f"{i}-{path.name}")
    fsync_dir(run_path)
    shutil.rmtree(trash, ignore_errors=True)


def clear_stale(run_path: Path) -> None:
    for old in run_path.glob(f"{STALE_PREFIX}*"):
        shutil.rmtree(old, ignore_errors=True)


def read_built(report_dir: Path) -> dict[str, Any] | None:
    """What the report in ``report_dir`` was built from (see :func:`write_built`), or None."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((report_dir / REPORT_BUILT).read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return None


def parts_fingerprint(run, config_hash: str, name: str = FRAMES_PART,
                      cache_hash: str | None = None) -> str:
    """One hash over the parts that the table ``name`` of the current corpus is merged from
    (done clips of ``config_hash``; a side table's under ``cache_hash``): each part's recorded
    entry, or its file's hash where none was recorded."""
    entries: dict[str, Any] = {}
    for rec in run.records():
        if rec.get("status") != "done" or rec.get("config_hash") != config_hash:
            continue
        if name != FRAMES_PART and rec.get(f"{name}_hash") != cache_hash:
            continue
        cid = str(rec["clip_id"])
        path = run.part_path(cid) if name == FRAMES_PART else run.table_part_path(name, cid)
        if path.exists():
            entries[cid] = (rec.get(PARTS) or {}).get(name) or sha256_of(path)
    return fingerprint(entries)


def built_record(run, cfg) -> dict[str, Any]:
    """What a report is built from: the extract hash, the per-frame parts and each side table's
    parts (see :func:`parts_fingerprint`). ``videmo verify`` recomputes it from the run."""
    config_hash = cfg.extract_hash()
    return {"extract_hash": config_hash,
            "frames": parts_fingerprint(run, config_hash),
            "tables": {t.name: {"cache_hash": t.cache_hash,
                                "parts": parts_fingerprint(run, config_hash, t.name,
                                                           t.cache_hash)}
                       for t in cfg.feature_tables()}}
