"""Compare settings: run every variant of a comparison job (extract + report, sharing an
extraction where only report options differ) with an executor (this machine, or a SLURM
cluster: :mod:`videmo.execute.executor`), then tabulate them
(:func:`videmo.report.compare.collect`).

A comparison job (``jobs/compare-*.yaml``; its keys: :data:`JOB_OPTIONS`)::

    compare:
      base: sample.yaml              # a videmo config, relative to this file
      out: runs/compare-sample       # each run goes to OUT/<name>, the tables to OUT/
      executor: local                # or slurm: an array per extraction, then one table job
      reference: null                # the row the others are set against (default: the first)
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
``report.classifier`` to get classifiers as rows), each row against its reference (accuracy
difference on the clips both labelled, its paired bootstrap interval, McNemar's exact p), and
``comparison.html`` (the table and figure as one self-contained page, each run linked to its
report.html; :mod:`videmo.report.html`).
"""

from __future__ import annotations

import functools
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
from videmo.execute.executor import EXECUTORS, INTERRUPTED, Executor, Job, Step
from videmo.registry import did_you_mean
from videmo.report.compare import collect
from videmo.store import RunDir

log = logging.getLogger(__name__)

# key -> (type, default, doc): the job file's keys, as docs/config.md lists them
JOB_OPTIONS: dict[str, tuple[str, str, str]] = {
    "base": ("path", "required", "The videmo config every variant starts from, relative to the "
             "job file."),
    "out": ("path", "`runs/compare-<job file name>`", "Each variant's run goes to OUT/<name>, "
            "the comparison tables to OUT/ (relative to the current directory)."),
    "vary": ("mapping", "required", "Config key -> list of values, or a name without a dot -> "
             "mapping of names to several config keys (a named axis, e.g. `dataset`); every "
             "combination is one variant."),
    "jobs": ("integer or null", "`null`", "Worker processes of each local run (`run.jobs` of "
             "every variant)."),
    "executor": (" \\| ".join(f"`{n}`" for n in EXECUTORS), "`local`", "Where the variants "
                 "run: this machine, one after another, or a SLURM cluster (each extraction an "
                 "array and a merge job sized by the variant's `slurm:` section, then one job "
                 "that waits for every merge job and writes the tables); `videmo compare "
                 "--slurm` for one run."),
    "reference": ("string or null", "`null`", "The variant every row is set against (accuracy "
                  "difference, its paired bootstrap interval, McNemar's p), on each row's own "
                  "dataset; null: the first variant."),
}
JOB_KEYS = tuple(JOB_OPTIONS)


@dataclass(frozen=True)
class Variant:
    name: str
    dataset: str | None
    overrides: tuple[str, ...]
    settings: tuple[tuple[str, str], ...] = ()  # its value of every axis but the dataset


@dataclass(frozen=True)
class CompareJob:
    base: Path
    out: Path
    variants: tuple[Variant, ...]
    jobs: int | None = None
    executor: str = "local"
    reference: str | None = None
    path: Path | None = None  # the job file (the SLURM table job reads it again)


def job_reference_markdown() -> str:
    """The comparison job's keys as docs/config.md lists them."""
    lines = ["## Comparison jobs (`videmo compare JOB`)", "",
             "A job file has one top-level `compare:` section (see `jobs/compare-*.yaml`):", "",
             "| key | type | default | doc |", "|---|---|---|---|"]
    lines += [f"| `compare.{k}` | {t} | {d} | {doc} |" for k, (t, d, doc) in JOB_OPTIONS.items()]
    return "\n".join(lines) + "\n"


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
            extra = did_you_mean(key, JOB_KEYS, " (did you mean 'compare.{}'?)")
            raise ConfigError(f"{path}: unknown key 'compare.{key}'{extra}; allowed: "
                              f"{', '.join(JOB_KEYS)}")
    if "base" not in spec:
        raise ConfigError(f"{path}: 'compare.base' (a videmo config file) is required")
    executor = spec.get("executor") or "local"
    if executor not in EXECUTORS:
        raise ConfigError(f"{path}: compare.executor is {executor!r}; allowed: "
                          f"{', '.join(EXECUTORS.names())}")
    variants = _variants(path, spec.get("vary") or {})
    reference = spec.get("reference")
    if reference is not None and str(reference) not in [v.name for v in variants]:
        raise ConfigError(f"{path}: compare.reference {reference!r} is not a variant; the "
                          f"variants: {', '.join(v.name for v in variants)}")
    base = (path.parent / spec["base"]).resolve()
    out = Path(spec.get("out") or f"runs/compare-{path.stem}")
    return CompareJob(base, out, variants, spec.get("jobs"), executor,
                      None if reference is None else str(reference), path.resolve())


def _variants(path: Path, vary: Any) -> tuple[Variant, ...]:
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
        dataset_axis = next((k for k, _, _ in combo
                             if k.startswith("corpus.") or k == "dataset"), None)
        dataset = next((label for k, label, _ in combo if k == dataset_axis), None)
        overrides = []
        for k, _, v in combo:
            if "." not in k:  # a named axis: each value is a mapping of config keys
                if not isinstance(v, dict):
                    raise ConfigError(f"compare.vary.{k}: a name without a dot needs values "
                                      f"that map config keys to values")
                overrides.extend(f"{kk}={json.dumps(vv)}" for kk, vv in v.items())
            else:
                overrides.append(f"{k}={json.dumps(v)}")
        settings = tuple((k, label) for k, label, _ in combo if k != dataset_axis)
        variants.append(Variant(name, dataset, tuple(overrides), settings))
    return tuple(variants)


def _label(value: Any) -> str:
    if isinstance(value, list):
        value = "+".join(PurePosixPath(str(v)).name for v in value)
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in str(value))


@dataclass(frozen=True)
class Planned:
    """A variant with its config, and the variant whose extraction it shares (None: its own)."""

    variant: Variant
    cfg: Config
    shares: str | None


def plan(job: CompareJob) -> list[Planned]:
    """Each variant's config (run.out = OUT/<name>); variants that differ only in what is not
    extracted (report options such as ``report.aggregate`` or ``report.classifier``) share the
    extraction of the first of them."""
    out, firsts = [], {}
    for v in job.variants:
        overrides = [*v.overrides, f"run.out={job.out / v.name}"]
        if job.jobs:
            overrides.append(f"run.jobs={job.jobs}")
        cfg = config_mod.load(job.base, overrides)
        key = _extraction_key(cfg)
        out.append(Planned(v, cfg, firsts.get(key)))
        firsts.setdefault(key, v.name)
    return out


def run_job(job: CompareJob, executor: Executor) -> tuple[dict[str, Job], Job]:
    """Extract + report every variant that has its own extraction with ``executor`` (each
    resumes like `videmo run` or `videmo submit`), then, once all have ended, write the
    reports of the variants that share one and the tables (:func:`collect_job`). Returns the
    variants' jobs and that last one (on this machine its ``result`` is the table)."""
    planned = plan(job)
    jobs: dict[str, Job] = {}
    for p in planned:
        name = p.variant.name
        if p.shares is not None:
            log.info("compare: %s shares the extraction of %s (only report options differ)",
                     name, p.shares)
            continue
        log.info("compare: %s %s (%s)", type(executor).__name__, name,
                 " ".join(p.variant.overrides))
        jobs[name] = executor.map_clips(p.cfg, report=True, command=f"videmo compare {name}")
        if executor.waits and jobs[name].state() == INTERRUPTED:
            raise KeyboardInterrupt
    out = job.out.resolve()
    argv = ("compare", str(job.path), "--out", str(out), "--collect")
    step = Step("compare", functools.partial(collect_job, job, planned), argv,
                planned[0].cfg, out)
    return jobs, executor.after(jobs.values(), step)


def collect_job(job: CompareJob, planned: list[Planned] | None = None) -> pd.DataFrame:
    """The tables of a comparison job whose variants have been extracted and reported: the
    variants that share an extraction first get their report (OUT/<name>/report) from the
    shared run's tables. What ``videmo compare JOB --collect`` does (the last SLURM job)."""
    from videmo.report.build import build_report

    planned = plan(job) if planned is None else planned
    dirs = {p.variant.name: p.cfg.out_dir for p in planned}
    runs: list[tuple[Path, str | None, str, Path | None]] = []
    for p in planned:
        v = p.variant
        if p.shares is None:
            runs.append((p.cfg.out_dir, v.dataset, v.name, None))
            continue
        out = job.out / v.name / "report"
        log.info("compare: %s: report only, from the run of %s -> %s", v.name, p.shares, out)
        build_report(RunDir(dirs[p.shares]), p.cfg, out_dir=out)
        runs.append((dirs[p.shares], v.dataset, v.name, out))
    return collect(runs, job.out, job.reference, [p.variant.settings for p in planned])


def describe_submission(jobs: dict[str, Job], final: Job, planned: list[Planned],
                        dry_run: bool) -> str:
    """What ``videmo compare`` prints when its executor's jobs run on (a cluster's): the jobs
    of every variant and the last one."""
    lines = []
    for p in planned:
        name, job = p.variant.name, jobs.get(p.variant.name)
        if job is None:
            lines.append(f"variant {name}: shares the extraction of {p.shares}; its report is "
                         f"written by the compare job")
        elif dry_run:
            lines.append(f"# ==== variant {name}")
            lines.append(job.describe(True).rstrip())
        else:
            lines.append(f"variant {name}: {job.brief()}")
    if dry_run:
        lines += ["# ==== the compare job (not submitted)", final.describe(True)]
    else:
        lines.append(f"compare job {', '.join(final.job_ids())}: the tables, when every merge "
                     f"job has ended -> {final.run_dir / 'comparison.csv'} (log: "
                     f"{final.run_dir / 'slurm' / 'logs'})")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _extraction_key(cfg: Config) -> str:
    """Equal for configs whose extraction is the same work: the extract and side tables'
    hashes and the corpus keys that choose clips (which the extract hash leaves out)."""
    corpus = cfg.to_dict()["corpus"]
    return json.dumps([cfg.extract_hash(), {t.name: t.cache_hash for t in cfg.feature_tables()},
                       {k: corpus[k] for k in config_mod.CORPUS_SELECTION_KEYS}],
                      sort_keys=True, default=str)
