"""Compare settings: run every variant of a comparison job (extract + report, sharing an
extraction where only report options differ), then tabulate them
(:func:`videmo.report.compare.collect`).

A comparison job (``jobs/compare-*.yaml``)::

    compare:
      base: sample.yaml              # a videmo config, relative to this file
      out: runs/compare-sample       # each run goes to OUT/<name>, the tables to OUT/
      vary:                          # every combination of these is one run
        faces.detector: [haar, mtcnn]
        dataset:                     # a named axis: each name sets several keys
          "2019": {corpus.paths: [/data/2019], report.labels: /data/2019/labels.csv}
          "2020": {corpus.paths: [/data/2020], report.labels: /data/2020/labels.csv}

``videmo compare --runs DIR...`` collects finished runs instead. Output: ``comparison.csv``,
``comparison.md`` and ``comparison.png`` with the study's columns (dataset, clips, MTCNN?,
accuracy) plus macro-F1, coverage, majority baseline, seconds per clip, the 95% bootstrap
intervals of accuracy and macro-F1 and ``classifier`` (what labelled the clips: the
``report.aggregate`` rule, or a model of ``videmo learn`` as ``name (features)``: vary
``report.classifier`` to get classifiers as rows), and ``comparison.html`` (the table and
figure as one self-contained page, each run linked to its report.html;
:mod:`videmo.report.html`).
"""

from __future__ import annotations

import difflib
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import yaml

from videmo import config as config_mod
from videmo.config import Config, ConfigError
from videmo.report.compare import collect

log = logging.getLogger(__name__)

JOB_KEYS = ("base", "out", "vary", "jobs")


@dataclass(frozen=True)
class Variant:
    name: str
    dataset: str | None
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class CompareJob:
    base: Path
    out: Path
    variants: tuple[Variant, ...]
    jobs: int | None = None


def load_job(path: str | Path) -> CompareJob:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"comparison job not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"comparison job {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("compare"), dict):
        raise ConfigError(f"{path}: expected a top-level 'compare:' section")
    spec = data["compare"]
    for key in spec:
        if key not in JOB_KEYS:
            hint = difflib.get_close_matches(key, JOB_KEYS, n=1)
            extra = f" (did you mean 'compare.{hint[0]}'?)" if hint else ""
            raise ConfigError(f"unknown key 'compare.{key}'{extra}; allowed: "
                              f"{', '.join(JOB_KEYS)}")
    if "base" not in spec:
        raise ConfigError(f"{path}: 'compare.base' (a videmo config file) is required")
    vary = spec.get("vary") or {}
    if not isinstance(vary, dict) or not vary:
        raise ConfigError(f"{path}: 'compare.vary' must map config keys to lists of values")
    axes: list[list[tuple[str, str, Any]]] = []
    for key, values in vary.items():
        if isinstance(values, dict):
            axes.append([(key, str(name), v) for name, v in values.items()])
        elif isinstance(values, list) and values:
            axes.append([(key, _label(v), v) for v in values])
        else:
            raise ConfigError(f"compare.vary.{key}: give a list of values or a mapping of "
                              f"name -> value")
    variants = []
    for combo in itertools.product(*axes):
        name = "_".join(f"{k.rsplit('.', 1)[-1]}-{label}" for k, label, _ in combo)
        dataset = next((label for k, label, _ in combo
                        if k.startswith("corpus.") or k == "dataset"), None)
        overrides = []
        for k, _, v in combo:
            if "." not in k:  # a named axis: each value is a mapping of config keys
                if not isinstance(v, dict):
                    raise ConfigError(f"compare.vary.{k}: a name without a dot needs values "
                                      f"that map config keys to values")
                overrides.extend(f"{kk}={json.dumps(vv)}" for kk, vv in v.items())
            else:
                overrides.append(f"{k}={json.dumps(v)}")
        overrides = tuple(overrides)
        variants.append(Variant(name, dataset, overrides))
    base = (path.parent / spec["base"]).resolve()
    out = Path(spec.get("out") or f"runs/compare-{path.stem}")
    return CompareJob(base, out, tuple(variants), spec.get("jobs"))


def _label(value: Any) -> str:
    if isinstance(value, list):
        value = "+".join(PurePosixPath(str(v)).name for v in value)
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in str(value))


def run_job(job: CompareJob, *, force: bool = False, progress: bool | None = None) -> pd.DataFrame:
    """Extract + report every variant (each resumes like `videmo run`), then tabulate.

    Variants that differ only in what is not extracted (report options such as
    ``report.aggregate`` or ``report.classifier``) share one extraction: the first of them
    extracts into OUT/<its name>, the others only write their report into
    OUT/<their name>/report from that run's tables."""
    from videmo.execute.local import extract
    from videmo.report.build import build_report

    runs: list[tuple[Path, str | None, str, Path | None]] = []
    extracted: dict[str, tuple[str, Any, Path, pd.DataFrame | None]] = {}
    for v in job.variants:
        overrides = [*v.overrides, f"run.out={job.out / v.name}"]
        if job.jobs:
            overrides.append(f"run.jobs={job.jobs}")
        cfg = config_mod.load(job.base, overrides)
        key = _extraction_key(cfg)
        if key in extracted:
            first, run, run_dir, table = extracted[key]
            out = job.out / v.name / "report"
            log.info("compare: %s shares the extraction of %s (only report options differ): "
                     "report only -> %s", v.name, first, out)
            build_report(run, cfg, frames=table, out_dir=out)
            runs.append((run_dir, v.dataset, v.name, out))
            continue
        log.info("compare: run %s (%s)", v.name, " ".join(v.overrides))
        summary = extract(cfg, force=force, progress=progress, command=f"videmo compare {v.name}")
        if summary.interrupted:
            raise KeyboardInterrupt
        build_report(summary.run_dir, cfg, frames=summary.table)
        extracted[key] = (v.name, summary.run_dir, cfg.out_dir, summary.table)
        runs.append((cfg.out_dir, v.dataset, v.name, None))
    return collect(runs, job.out)


def _extraction_key(cfg: Config) -> str:
    """Equal for configs whose extraction is the same work: the extract and mesh hashes and
    the corpus keys that choose clips (which the extract hash leaves out)."""
    corpus = cfg.to_dict()["corpus"]
    return json.dumps([cfg.extract_hash(), cfg.mesh_hash(),
                       {k: corpus[k] for k in config_mod.CORPUS_SELECTION_KEYS}],
                      sort_keys=True, default=str)
