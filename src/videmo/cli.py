"""The ``videmo`` command line.

Exit codes: 0 every clip done; 1 some clips failed or the run was interrupted (a summary names
them); 2 usage, config or path errors (one clear message, no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from videmo import __version__
from videmo import config as config_mod
from videmo.config import Config, ConfigError
from videmo.evaluate import labels as labels_mod
from videmo.evaluate.segments import LabelsError, preflight_segments  # a labels file's error
from videmo.execute.slurm import SlurmError
from videmo.extract.corpus import Clip, CorpusError, current_clips, discover, discover_root
from videmo.extract.detectors import DETECTORS
from videmo.models import ModelFileError
from videmo.runtime import warn_if_oversubscribed
from videmo.store import RunDirError

log = logging.getLogger("videmo")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
USER_ERRORS = (ConfigError, CorpusError, RunDirError, ModelFileError, LabelsError,
               SlurmError, FileNotFoundError)


class UsageError(Exception):
    pass


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file (see `videmo config --template`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key for this run, e.g. --set sampling.every_n=10 "
                        "(repeatable; string keys take the text as it is, other values are "
                        "YAML; null unsets)")
    p.add_argument("--out", help="run directory (overrides run.out)")
    p.add_argument("--detector", choices=DETECTORS, help="overrides faces.detector")
    p.add_argument("--jobs", "-j", type=int, help="worker processes (overrides run.jobs)")


def _add_extract_args(p: argparse.ArgumentParser) -> None:
    _add_config_args(p)
    p.add_argument("--force", action="store_true",
                   help="redo clips already done, and reuse a run directory made with another "
                        "config")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videmo",
        description="Emotion in video, per clip: sample frames, find faces (Haar, MTCNN or "
                    "BlazeFace), score seven emotions with the FER model, videmo's pixel "
                    "model or a frame model on MediaPipe's face mesh (emotions.model; "
                    "features: mesh keeps the mesh), "
                    "label each clip by a vote, a rule or a learned classifier and compare it "
                    "with golden labels.")
    parser.add_argument("--version", action="version", version=f"videmo {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("extract", help="videos -> per-frame table of faces and 7 emotion scores",
                       description="Sample frames of every clip, find faces, score them; writes "
                                   "RUN/frames.parquet and RUN/manifest.csv. Resumes: clips "
                                   "already done with the same config are skipped.")
    _add_extract_args(p)
    p.add_argument("--shard", metavar="I/N",
                   help="do shard I of N (0-based) of the corpus, balanced by frames to sample; "
                        "default inside a SLURM array (0..N-1): SLURM_ARRAY_TASK_ID/"
                        "SLURM_ARRAY_TASK_COUNT. The merged tables are left to `videmo report`.")

    p = sub.add_parser("run", help="the main job: extract, then report",
                       description="extract + report in one command (resumes like extract).")
    _add_extract_args(p)
    p.add_argument("--labels", help="golden labels CSV (overrides report.labels)")

    p = sub.add_parser("report", help="per-frame table -> per-clip CSV, metrics, figures",
                       description="Rebuild the report of a run directory from its per-frame "
                                   "table, in seconds, without touching a video. Report options "
                                   "may differ from the run's: --set report.aggregate=mean.")
    p.add_argument("run_dir", help="run directory made by extract/run")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a report.* key or corpus.segments / window_s (re-cut clips)")
    p.add_argument("--labels", help="golden labels CSV (overrides report.labels)")
    p.add_argument("--out", help="report directory (default RUN_DIR/report)")
    p.add_argument("--classifier", metavar="MODEL_DIR",
                   help="label clips with a model saved by videmo learn (report.classifier)")
    p.add_argument("--fail-incomplete", action="store_true",
                   help="exit 1 while clips of the run are not done (failed, interrupted, never "
                        "extracted); the report is written all the same. The SLURM merge job "
                        "uses it, so its state (FAILED) shows that the run is not clean")

    p = sub.add_parser("verify", help="check a run directory against its own records",
                       description="Check that every file of a run directory is what its "
                                   "records say: run.json and config.yaml agree, every done "
                                   "clip's parts have their recorded sha256 and row count, the "
                                   "merged tables equal their parts, the model files are the "
                                   "recorded ones, the report was built from the current rows, "
                                   "and no file of other settings is left. One line per "
                                   "problem and a summary; exit 1 when there is any. "
                                   "`videmo run` repairs what it names.")
    p.add_argument("run_dir", help="run directory made by extract/run")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("learn", help="learn clip labels from a labelled run; honest evaluation",
                       description="Baselines, expressive-frame rules and learned classifiers "
                                   "(pooled statistics -> logistic regression, gradient "
                                   "boosting; an LSTM over frames) evaluated by person-grouped, "
                                   "nested cross-validation with bootstrap intervals, from the "
                                   "run's own per-frame table (and face mesh: --set "
                                   "'learn.features=[fer, blendshapes, landmarks]'). Writes "
                                   "RUN/learn/results.csv, "
                                   "summary.txt, results.png and the best model in model/.")
    p.add_argument("run_dir", help="labelled run directory made by extract/run")
    p.add_argument("--labels", help="golden labels CSV (overrides report.labels)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a learn.* or report.* key, e.g. --set learn.folds=10")
    p.add_argument("--out", help="results folder (default RUN_DIR/learn; learn.out)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("train", help="train frame classifiers on still faces (FER2013)",
                       description="Frame classifiers of a still-image set (train.data): "
                                   "on its face mesh (blendshape LSTM, MLP and gradient "
                                   "boosting, landmark 1D-CNNs) or on its 48x48 face crops "
                                   "(pixel_vgg, checkpointed every epoch: run again to resume), "
                                   "chosen on the selection split, evaluated once on "
                                   "PrivateTest. Writes train.out/results.json, results.md and "
                                   "models/.")
    p.add_argument("config", help="YAML config file with a train: section")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=5")
    p.add_argument("--out", help="results folder (overrides train.out)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("submit", help="run extract as a SLURM job array, then a merge job",
                       description="Split the corpus into shards (slurm.shards) and submit one "
                                   "array task per shard (videmo extract --shard I/N) and a merge "
                                   "job (videmo report) that runs when every task has ended, "
                                   "however it ended: it writes the report with failed clips "
                                   "counted and ends FAILED while clips are not done. Prints "
                                   "the job ids and the run directory.")
    p.add_argument("config", nargs="?", help="YAML config file (with a slurm: section)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="submit again only the shards of RUN_DIR with clips not done (failed, "
                        "interrupted, never started, file changed), then the merge job; --set "
                        "changes the run's job config (e.g. corpus.exclude, slurm.time)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set slurm.partition=short")
    p.add_argument("--out", help="run directory (overrides run.out)")
    p.add_argument("--detector", choices=DETECTORS, help="overrides faces.detector")
    p.add_argument("--jobs", "-j", type=int, help="worker processes per task (run.jobs)")
    p.add_argument("--shards", type=int, help="number of array tasks (overrides slurm.shards)")
    p.add_argument("--force", action="store_true",
                   help="reuse a run directory made with another config (its clips are redone)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the sbatch scripts; submit and write nothing")

    p = sub.add_parser("status", help="clips done / failed / interrupted / pending, per shard",
                       description="Read a run directory (and squeue/scontrol/sacct, for "
                                   "submitted runs): clips done, failed, interrupted and pending "
                                   "(never started), per shard and in total, with the failure "
                                   "reasons and what finishes the run. Exit 0 when every clip "
                                   "is done, 1 otherwise.")
    p.add_argument("run_dir", help="run directory")
    p.add_argument("--clips", action="store_true",
                   help="list every failed, interrupted and truncated clip (default: the first 10)")

    p = sub.add_parser("compare", help="run or collect several runs; the study's table + chart",
                       description="With a comparison job (jobs/compare-*.yaml): extract + "
                                   "report every combination of its `vary` values, here or on "
                                   "SLURM, then write comparison.csv/.md/.png/.html: each row "
                                   "with its accuracy difference against the reference row on "
                                   "the clips both labelled, its paired bootstrap interval and "
                                   "McNemar's exact p. With --runs: collect finished runs.")
    p.add_argument("job", nargs="?", help="comparison job YAML (a top-level compare: section)")
    p.add_argument("--runs", nargs="+", metavar="RUN_DIR", help="collect these finished runs")
    p.add_argument("--out", help="where the comparison tables go (default: the job's out, or "
                                 "runs/comparison with --runs)")
    p.add_argument("--reference", metavar="NAME", help="the row the others are set against "
                   "(default: compare.reference, else the first row)")
    p.add_argument("--slurm", action="store_true", help="on SLURM (compare.executor: slurm): "
                   "each extraction an array + merge job (as submit), then a job that waits "
                   "for every merge job and writes the tables; prints the job ids")
    p.add_argument("--dry-run", action="store_true", help="with --slurm: print the sbatch "
                   "scripts; submit and write nothing")
    p.add_argument("--collect", action="store_true", help="only tabulate the job's finished "
                   "runs (what the SLURM compare job runs)")
    p.add_argument("--force", action="store_true", help="redo clips already done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("annotate", help="a local page where observers mark events in the clips",
                       description="Serve a page (127.0.0.1, a free port, printed) that plays the "
                                   "corpus's clips with buttons for annotate.buttons; every press "
                                   "is appended to RUN/annotations.csv at once. Ctrl-C stops.")
    p.add_argument("config", help="YAML config file (its corpus and annotate: section)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set annotate.transcode=always")
    p.add_argument("--out", help="run directory of annotations.csv (overrides run.out)")
    p.add_argument("--host", help="address to serve on (overrides annotate.host; anything but "
                                  "127.0.0.1 exposes the page to that network)")
    p.add_argument("--port", type=int, help="port (overrides annotate.port; 0: a free one)")
    p.add_argument("--observer", default="", help="observer name filled in on the page")

    p = sub.add_parser("config", help="print a documented config template, or check a config",
                       description="Without arguments: print the template (every option, its "
                                   "default and doc).")
    p.add_argument("action", nargs="?", choices=["template", "check", "show", "reference"],
                   default="template",
                   help="template (default): documented YAML; check FILE: validate; show "
                        "FILE: the resolved config; reference: the markdown option table")
    p.add_argument("file", nargs="?", help="config file for check/show")
    p.add_argument("--template", action="store_true", help="same as the template action")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def load_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if getattr(args, "out", None):
        overrides.append(f"run.out={args.out}")
    overrides.extend(_labels_override(args))
    if getattr(args, "detector", None):
        overrides.append(f"faces.detector={args.detector}")
    if getattr(args, "jobs", None) is not None:
        if args.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
        overrides.append(f"run.jobs={args.jobs}")
    return config_mod.load(args.config, overrides)


def _labels_override(args: argparse.Namespace) -> list[str]:
    """``--labels FILE`` as the key it overrides, so that config validation sees it (e.g.
    report.balance: golden needs labels). The path is made absolute: a config's relative
    paths are relative to its own folder, a command line's to the current directory."""
    labels = getattr(args, "labels", None)
    return [f"report.labels={Path(labels).expanduser().resolve()}"] if labels else []


@dataclass
class Checked:
    """What :func:`preflight` found: the corpus's clips (reused by extract) and one line per
    checked key for ``videmo config check``."""

    clips: list[Clip] | None = None
    lines: list[str] = field(default_factory=list)


def _given(cfg: Config, raw: str) -> str:
    """How a relative config path was resolved, for error messages."""
    if Path(raw).expanduser().is_absolute():
        return ""
    return f" ('{raw}' is relative to the config file's folder {cfg.base_dir})"


def preflight(cfg: Config, *, corpus: bool = True, labels: bool = True, out: bool = True,
              templates: bool = False, require_corpus: bool = True) -> Checked:
    """Check, before any work, that the paths a command will use are there and usable.

    Every command runs this first, so a typo in a path costs an error naming the key and the
    path (exit 2), not an hour of extraction followed by a traceback in the report.
    ``require_corpus=False`` (``config check``) accepts a settings file that names no corpus.
    """
    checked = Checked()
    if corpus:
        if not cfg.corpus.paths and not require_corpus:
            checked.lines.append("corpus.paths: not set (extract, run and submit need one)")
        else:
            checked.clips = _check_corpus(cfg, checked.lines)
    if labels:
        _check_labels(cfg, checked.lines)
        checked.lines += preflight_segments(cfg, checked.clips)  # corpus.segments' rows
    if out:
        _check_out(cfg, checked.lines)
    if templates and cfg.slurm.templates is not None:
        path = cfg.resolve(cfg.slurm.templates)
        if path is None or not path.is_dir():
            raise ConfigError(f"config key 'slurm.templates': {path} is not a folder"
                              f"{_given(cfg, cfg.slurm.templates)}")
    return checked


def _check_corpus(cfg: Config, lines: list[str]) -> list[Clip]:
    roots = cfg.corpus_paths
    for raw, root in zip(cfg.corpus.paths, roots, strict=True):
        if not root.exists():
            raise ConfigError(f"config key 'corpus.paths': {root} does not exist"
                              f"{_given(cfg, raw)}")
    try:
        clips = discover(cfg)
    except CorpusError:
        for raw, root in zip(cfg.corpus.paths, roots, strict=True):
            if not discover_root(root, cfg):
                raise _no_clips(cfg, raw, root) from None
        raise
    for raw, root in zip(cfg.corpus.paths, roots, strict=True):
        n = sum(1 for c in clips if c.path == root or root in c.path.parents)
        if n == 0:
            raise _no_clips(cfg, raw, root)
        lines.append(f"corpus.paths: {root}: {n} clip{'s' * (n != 1)}")
    return clips


def _no_clips(cfg: Config, raw: str, root: Path) -> ConfigError:
    return ConfigError(
        f"config key 'corpus.paths': no clips in {root}{_given(cfg, raw)} (video extensions "
        f"{' '.join(cfg.corpus.video_extensions)}, or folders of images; corpus.include "
        f"{cfg.corpus.include}, corpus.exclude {cfg.corpus.exclude})")


def _check_labels(cfg: Config, lines: list[str]) -> None:
    raw = cfg.report.labels
    if raw is None:
        lines.append("report.labels: not set (no evaluation)")
        return
    path = cfg.resolve(raw)
    if path is None or not path.exists():
        raise ConfigError(f"config key 'report.labels': {path} does not exist{_given(cfg, raw)}")
    if not path.is_file():
        raise ConfigError(f"config key 'report.labels': {path} is not a file{_given(cfg, raw)}")
    found = labels_mod.check_labels(cfg)  # parses with the chosen columns, known values
    rows = len(found.rows) if found is not None else None
    lines.append(f"report.labels: {path}" + ("" if rows is None else f": {rows} rows"))


def _check_out(cfg: Config, lines: list[str]) -> None:
    out = cfg.out_dir.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"config key 'run.out': {out} exists and is not a folder")
    parent = next((p for p in (out, *out.parents) if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"config key 'run.out': cannot write {out} ({parent} is not writable)")
    where = "" if Path(cfg.run.out).expanduser().is_absolute() else \
        " (relative to the current directory)"
    lines.append(f"run.out: {out}{where}")


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def _local(args: argparse.Namespace):
    from videmo.execute.executor import LocalExecutor

    return LocalExecutor(force=args.force, progress=False if args.no_progress else None,
                         command=shlex.join(sys.argv))


def cmd_extract(args: argparse.Namespace) -> int:
    from videmo.execute.shard import parse_shard, shard_from_env

    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    cfg = load_config(args)
    checked = preflight(cfg)
    warn_if_oversubscribed(cfg.run.jobs)
    job = _local(args).map_clips(cfg, report=False, clips=checked.clips, shard=shard)
    print(job.summary.text(), end="")
    return EXIT_OK if job.summary.ok else EXIT_FAILED


def cmd_submit(args: argparse.Namespace) -> int:
    from videmo.execute import slurm
    from videmo.execute.executor import SlurmExecutor

    executor = SlurmExecutor(shards=args.shards, dry_run=args.dry_run, force=args.force,
                             command=shlex.join(sys.argv))
    if bool(args.config) == bool(args.resume):
        raise UsageError("give either a CONFIG to submit or --resume RUN_DIR")
    if args.resume:
        given = [o for o in ("out", "detector", "jobs", "shards", "force") if getattr(args, o)]
        if given:
            raise UsageError(f"--resume takes the run's own config (change it with --set); "
                             f"drop --{given[0]}")
        from videmo.store import RunDir

        preflight(slurm.job_config(RunDir(args.resume), args.overrides), out=False,
                  templates=True)
        job = executor.resume(Path(args.resume), args.overrides)
    else:
        if args.shards is not None and args.shards < 1:
            raise ConfigError(f"--shards must be at least 1, got {args.shards}")
        cfg = load_config(args)
        preflight(cfg, templates=True)
        warn_if_oversubscribed(cfg.run.jobs, cfg.slurm.cpus_per_task,
                               f"slurm.cpus_per_task ({cfg.slurm.cpus_per_task})")
        job = executor.map_clips(cfg)
    sys.stdout.write(slurm.describe(job.submission, args.dry_run))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from videmo.execute.status import format_status, run_status
    from videmo.store import RunDir

    st = run_status(RunDir(args.run_dir))
    sys.stdout.write(format_status(st, all_clips=args.clips))
    return EXIT_OK if st.complete else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    checked = preflight(cfg)  # a path error stops before the run directory is touched
    warn_if_oversubscribed(cfg.run.jobs)
    job = _local(args).map_clips(cfg, report=True, clips=checked.clips)
    print(job.summary.text(), end="")
    if job.report is not None:
        print(job.report.summary())
    return EXIT_OK if job.summary.ok else EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    from videmo.report.build import build_report
    from videmo.store import RunDir

    run = RunDir(args.run_dir)
    if not run.path.is_dir():
        raise RunDirError(f"run directory not found: {run.path}")
    cfg = run.config()
    bad = [o for o in args.overrides if not o.strip().startswith(config_mod.REPORT_PREFIXES)]
    if bad:
        raise ConfigError(f"videmo report changes only report.* and corpus.segments/window_s "
                          f"keys; {bad[0]!r} would need a new extract (videmo extract CONFIG ...)")
    overrides = [*args.overrides, *_labels_override(args)]
    if args.classifier:
        overrides.append(f"report.classifier={Path(args.classifier).expanduser().resolve()}")
    if overrides:
        data = config_mod.apply_overrides(cfg.to_dict(), overrides)
        cfg = config_mod.from_dict(data, base_dir=cfg.base_dir)
    preflight(cfg, corpus=False, out=False)  # a report reads the run, not the videos
    from videmo.execute.slurm import clear_locks_of_merged_array

    clear_locks_of_merged_array(run)  # only inside a merge job: its array has ended
    with run.lock(command=shlex.join(sys.argv)):  # rebuilds the merged files
        run.append_history(shlex.join(sys.argv))
        from videmo.execute.chunked import consolidate  # shards' chunks and clips, as now
        frames, _ = consolidate(run, cfg, current_clips(cfg, run.corpus_json))
        report = build_report(run, cfg, out_dir=Path(args.out) if args.out else None,
                              frames=frames)
    print(report.summary())
    if args.fail_incomplete and not report.metrics.complete:
        return EXIT_FAILED
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from videmo.store.verify import verify_run

    verdict = verify_run(args.run_dir)
    sys.stdout.write(json.dumps(verdict.to_dict(), indent=1) + "\n" if args.json
                     else verdict.text())
    return EXIT_OK if verdict.ok else EXIT_FAILED


def cmd_learn(args: argparse.Namespace) -> int:
    from videmo.evaluate.learn.run import learn
    from videmo.store import RunDir

    run = RunDir(args.run_dir)
    if not run.path.is_dir():
        raise RunDirError(f"run directory not found: {run.path}")
    cfg = run.config()
    bad = [o for o in args.overrides if not o.strip().startswith(("learn.", "report."))]
    if bad:
        raise ConfigError(f"videmo learn changes only learn.* and report.* keys; {bad[0]!r} "
                          f"would need a new extract (videmo extract CONFIG --set ...)")
    overrides = [*args.overrides, *_labels_override(args)]
    if overrides:
        cfg = config_mod.from_dict(config_mod.apply_overrides(cfg.to_dict(), overrides),
                                   base_dir=cfg.base_dir)
    preflight(cfg, corpus=False, out=False)
    result = learn(run, cfg, out_dir=Path(args.out) if args.out else None,
                   progress=False if args.no_progress else None)
    print(result.summary)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from videmo.train.data import DataError
    from videmo.train.run import train

    cfg = config_mod.load(args.config, args.overrides)
    command = "videmo train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    try:
        result = train(cfg, out_dir=Path(args.out) if args.out else None,
                       progress=not args.no_progress, command=command)
    except DataError as e:
        raise ConfigError(str(e)) from None
    from videmo.train.run import render

    print(render(result))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from videmo.execute import compare as runner
    from videmo.execute.executor import LocalExecutor, SlurmExecutor
    from videmo.report import compare

    if bool(args.job) == bool(args.runs):
        raise UsageError("give either a comparison JOB file or --runs RUN_DIR...")
    if args.runs:
        if args.slurm or args.collect or args.dry_run:
            raise UsageError("--runs collects finished runs: drop --slurm, --collect, --dry-run")
        out = Path(args.out or "runs/comparison")
        table = compare.collect([(Path(r), None, Path(r).name) for r in args.runs], out,
                                args.reference)
    else:
        job = runner.load_job(args.job)
        out = Path(args.out) if args.out else job.out
        job = dataclasses.replace(job, out=out, reference=args.reference or job.reference,
                                  executor="slurm" if args.slurm else job.executor)
        if args.dry_run and (job.executor != "slurm" or args.collect):
            raise UsageError("--dry-run prints the sbatch scripts of --slurm")
        planned = runner.plan(job)
        for p in planned:  # every run's paths, before the first extraction
            preflight(p.cfg, out=False, templates=job.executor == "slurm")
        command = shlex.join(sys.argv)
        if args.collect:
            table = runner.collect_job(job, planned)
        elif job.executor == "slurm":
            jobs, final = runner.run_job(job, SlurmExecutor(
                dry_run=args.dry_run, force=args.force, command=command))
            sys.stdout.write(runner.describe_submission(jobs, final, planned, args.dry_run))
            return EXIT_OK
        else:
            warn_if_oversubscribed(max(job.jobs or p.cfg.run.jobs for p in planned))
            table = runner.run_job(job, LocalExecutor(
                force=args.force, progress=False if args.no_progress else None,
                command=command))[1].result
    print(compare.to_markdown(table), end="")
    print(f"-> {out / 'comparison.csv'}, comparison.md, comparison.png, comparison.html")
    return EXIT_OK


def cmd_annotate(args: argparse.Namespace) -> int:
    from videmo.annotate.server import AnnotateError, serve

    if args.host:
        args.overrides.append(f"annotate.host={args.host!r}")
    if args.port is not None:
        args.overrides.append(f"annotate.port={args.port}")
    try:
        return serve(load_config(args), observer=args.observer)
    except AnnotateError as e:
        print(f"videmo: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def cmd_config(args: argparse.Namespace) -> int:
    action = "template" if args.template else args.action
    if action == "template":
        sys.stdout.write(config_mod.template())
        return EXIT_OK
    if action == "reference":  # the config's keys, then a comparison job's
        from videmo.execute.compare import job_reference_markdown
        sys.stdout.write(config_mod.reference_markdown() + "\n" + job_reference_markdown())
        return EXIT_OK
    if not args.file:
        raise UsageError(f"videmo config {action} needs a config FILE")
    cfg = config_mod.load(args.file, args.overrides)
    if action == "check":
        checked = preflight(cfg, templates=True, require_corpus=False)
        print(f"{args.file}: OK (extract hash {cfg.extract_hash()})")
        for line in checked.lines:
            print(f"  {line}")
    else:
        sys.stdout.write(config_mod.dump(cfg))
    return EXIT_OK


COMMANDS = {"extract": cmd_extract, "run": cmd_run, "report": cmd_report,
            "submit": cmd_submit, "status": cmd_status, "compare": cmd_compare,
            "config": cmd_config, "annotate": cmd_annotate, "learn": cmd_learn,
            "train": cmd_train, "verify": cmd_verify}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as e:
        print(f"videmo: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as e:
        parser.error(str(e))  # exits 2
    except KeyboardInterrupt:
        print("videmo: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # e.g. a full disk while writing a report: say so, no traceback
        print(f"videmo: error: {e}", file=sys.stderr)
        return EXIT_FAILED


def entry() -> None:
    """The ``videmo`` command (and ``python -m videmo``): native log lines filtered first."""
    from videmo.runtime import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))



