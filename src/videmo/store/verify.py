"""``videmo verify RUN``: check a run directory against its own records.

Each check adds :class:`Problem` lines (a path and what is wrong with it) and never raises:
an unreadable file is a problem of that file. What is checked, in order:

1. run.json reads, carries the checksum it was written with, and its extract hash is the hash
   of the config it records; config.yaml is that config; corpus.json reads.
2. Every clip record reads and carries its checksum; every done clip of the current extract
   config and corpus has its per-frame part and a part of each side table of ``features``,
   each with the content hash (sha256) and row count its record holds.
3. frames.parquet, manifest.csv and each side table (e.g. features/mesh.parquet) equal what
   the parts and records merge into.
4. The model hashes run.json recorded are those of this installation's model files.
5. The report (RUN/report, and ``report.out`` when inside RUN) was built from the current
   parts (its built_from.json).
6. No file of other settings: side tables that ``features`` does not name, reports built with
   other tables, a folder left by an interrupted clean-up (RUN/.stale-*).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

from videmo import schema
from videmo.config import Config, ConfigError
from videmo.store import RunDir, RunDirError
from videmo.store.integrity import (
    FRAMES_PART,
    STALE_PREFIX,
    built_record,
    read_built,
    record_intact,
    report_dirs,
    stale_paths,
)


@dataclass(frozen=True)
class Problem:
    path: str  # relative to the run directory
    problem: str

    def line(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class Verdict:
    """What :func:`verify_run` found: every problem, and what it checked."""
    run: str
    problems: list[Problem] = field(default_factory=list)
    clips_checked: int = 0
    parts_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: Path | str, problem: str, root: Path) -> None:
        rel = Path(path).relative_to(root) if Path(path).is_absolute() and \
            Path(path).is_relative_to(root) else Path(path)
        self.problems.append(Problem(str(root) if str(rel) == "." else str(rel), problem))

    def text(self) -> str:
        lines = [p.line() for p in self.problems]
        what = f"{self.clips_checked} done clips, {self.parts_checked} parts"
        if self.ok:
            lines.append(f"{self.run}: OK ({what} checked)")
        else:
            lines.append(f"{self.run}: {len(self.problems)} problem(s) ({what} checked); "
                         f"`videmo run CONFIG` re-extracts damaged clips and rewrites the "
                         f"merged files, `videmo report {self.run}` rebuilds the report")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "ok": self.ok, "clips_checked": self.clips_checked,
                "parts_checked": self.parts_checked,
                "problems": [asdict(p) for p in self.problems]}


def verify_run(path: str | Path, *, models: bool = True) -> Verdict:
    """Check the run directory ``path`` (see the module's docstring). ``models``: also hash the
    installation's model files (the slowest check)."""
    run = RunDir(path)
    verdict = Verdict(str(run.path))
    root = run.path
    if not run.path.is_dir():
        verdict.add(run.path, "not a directory", root)
        return verdict
    cfg = _check_meta(run, verdict, models)
    if cfg is None:
        return verdict
    tables = cfg.feature_tables()
    _check_records(run, cfg, verdict)
    _check_merged(run, cfg, verdict)
    reports = report_dirs(run.path, cfg)
    _check_reports(run, cfg, reports, verdict)
    for stale in stale_paths(run.path, tables, other_extract=False, report_dirs=reports):
        verdict.add(stale, "made with other settings (features: "
                    f"{', '.join(cfg.features)}); `videmo run` removes it", root)
    for left in sorted(run.path.glob(f"{STALE_PREFIX}*")):
        verdict.add(left, "left by an interrupted clean-up; `videmo run` removes it", root)
    return verdict


def _check_meta(run: RunDir, v: Verdict, models: bool) -> Config | None:
    root = run.path
    try:
        meta = run.read_meta()
    except RunDirError as e:
        v.add(run.run_json, str(e), root)
        return None
    if meta is None:
        v.add(run.run_json, "missing: not a videmo run directory", root)
        return None
    if not record_intact(meta):
        v.add(run.run_json, "edited after it was written (its checksum differs)", root)
    try:
        cfg = run.config() if record_intact(meta) else _config_of(meta)
    except (RunDirError, ConfigError, ValueError, TypeError, KeyError) as e:
        v.add(run.run_json, f"its config does not load: {e}", root)
        return None
    if meta.get("extract_hash") != cfg.extract_hash():
        v.add(run.run_json, f"extract_hash {meta.get('extract_hash')} is not the hash of its "
              f"config ({cfg.extract_hash()})", root)
    if _plain(meta.get("extract_key")) != _plain(cfg.extract_key()):
        v.add(run.run_json, "extract_key is not the key of its config", root)
    config_yaml = run.path / "config.yaml"
    try:
        on_disk = yaml.load(config_yaml.read_text(encoding="utf-8"),  # noqa: S506 - safe
                            Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if _plain(on_disk) != _plain(cfg.to_dict()):
            v.add(config_yaml, "differs from the config run.json records", root)
    except FileNotFoundError:
        v.add(config_yaml, "missing", root)
    except (OSError, ValueError, yaml.YAMLError) as e:
        v.add(config_yaml, f"unreadable: {type(e).__name__}", root)
    try:
        if run.corpus_ids() is None and run.clips.is_dir() and any(run.clips.iterdir()):
            v.add(run.corpus_json, "missing: the merged files cannot say which clips they "
                  "hold", root)
    except RunDirError:
        v.add(run.corpus_json, "unreadable", root)
    if models:
        _check_models(meta, v, root, run.run_json)
    return cfg


def _config_of(meta: dict[str, Any]) -> Config:
    from videmo import config as config_mod

    return config_mod.from_dict(meta["config"], base_dir=meta.get("config_file_dir", "."))


def _plain(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _check_models(meta: dict[str, Any], v: Verdict, root: Path, run_json: Path) -> None:
    from videmo.models import SHA256, ModelFileError, model_path

    recorded = meta.get("model_sha256") or {}
    for name, sha in sorted(recorded.items()):
        if name not in SHA256:
            v.add(run_json, f"model {name} is not shipped with this videmo", root)
        elif SHA256[name] != sha:
            v.add(run_json, f"model {name}: recorded sha256 {sha[:12]}..., this "
                  f"installation's {SHA256[name][:12]}...", root)
        else:
            try:
                model_path(name)
            except (ModelFileError, OSError) as e:
                v.add(run_json, f"model {name}: {e}", root)


def _check_records(run: RunDir, cfg: Config, v: Verdict) -> None:
    root = run.path
    config_hash = cfg.extract_hash()
    try:
        wanted = run.corpus_ids()
    except RunDirError:
        wanted = None
    tables = cfg.feature_tables()
    for cid in sorted(wanted or ()):
        if not run.record_path(cid).exists() and run.part_path(cid).exists():
            v.add(run.record_path(cid), f"missing, but clip {cid}'s rows are there (its record "
                  "was lost)", root)
    for path in sorted(run.clips.glob("*.json")) if run.clips.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            v.add(path, f"unreadable ({type(e).__name__})", root)
            continue
        if not isinstance(rec, dict) or schema.CLIP_ID not in rec:
            v.add(path, "not a clip record", root)
            continue
        if not record_intact(rec):
            v.add(path, "edited after it was written (its checksum differs)", root)
            continue
        if run.record_path(str(rec[schema.CLIP_ID])) != path:
            v.add(path, f"names clip {rec[schema.CLIP_ID]!r}, whose record is another file",
                  root)
            continue
        if wanted is not None and rec[schema.CLIP_ID] not in wanted:
            continue
        if rec.get(schema.STATUS) != schema.DONE or rec.get(schema.CONFIG_HASH) != config_hash:
            continue
        v.clips_checked += 1
        cid = str(rec[schema.CLIP_ID])
        for name in [FRAMES_PART, *(t.name for t in tables)]:
            part = run.part_path(cid) if name == FRAMES_PART else run.table_part_path(name, cid)
            table = next((t for t in tables if t.name == name), None)
            if table is not None and rec.get(table.hash_key) != table.cache_hash:
                v.add(part, f"clip {cid} is done but its {name} part was not made with these "
                      f"settings", root)
                continue
            v.parts_checked += 1
            problem = run.part_problem(rec, name)
            if problem is not None:
                v.add(part, f"clip {cid}'s {name} part: {problem}", root)


def _check_merged(run: RunDir, cfg: Config, v: Verdict) -> None:
    root = run.path
    config_hash = cfg.extract_hash()
    try:
        expected = run.frames(config_hash)
        manifest = run.manifest()
    except RunDirError:
        return  # the damaged parts or records are named already
    _compare(run.frames_path, lambda p: pd.read_parquet(p), expected, v, root,
             lambda a, b: a.reset_index(drop=True).equals(b))
    _compare(run.manifest_path, lambda p: p.read_text(encoding="utf-8"),
             manifest.to_csv(index=False), v, root, lambda a, b: a == b)
    for table in cfg.feature_tables():
        try:
            rows = run.side_table(table.name, config_hash, table.cache_hash)
        except RunDirError:
            continue
        path = run.table_path(table)
        if rows is None:
            if path.exists():
                v.add(path, "holds rows, but no done clip has a part of it", root)
            continue
        _compare(path, pq.read_table, rows, v, root, lambda a, b: a.equals(b))


def _compare(path: Path, read, expected, v: Verdict, root: Path, same) -> None:
    if not path.exists():
        v.add(path, "missing; `videmo report` or `videmo run` rebuilds it", root)
        return
    try:
        on_disk = read(path)
    except Exception as e:  # noqa: BLE001 - any unreadable table is a damaged one
        v.add(path, f"unreadable ({type(e).__name__})", root)
        return
    try:
        equal = same(on_disk, expected)
    except (KeyError, ValueError, TypeError):
        equal = False
    if not equal:
        v.add(path, "differs from the merge of its parts and records", root)


def _check_reports(run: RunDir, cfg: Config, reports: list[Path], v: Verdict) -> None:
    root = run.path
    try:
        now = built_record(run, cfg)
    except RunDirError:
        return
    for report in reports:
        if not report.is_dir():
            continue
        built = read_built(report)
        if built is None:
            v.add(report, "no record of what it was built from (cut short, or older videmo); "
                  f"`videmo report {run.path}` rebuilds it", root)
            continue
        if built.get("extract_hash") != now["extract_hash"]:
            v.add(report, "built with another extract config", root)
        elif built.get("frames") != now["frames"]:
            v.add(report, "built from other per-frame rows than the run holds now", root)
        elif built.get("tables") != now["tables"]:
            v.add(report, "built from other side tables than the run holds now", root)
