"""The ``videmo`` command line.

Exit codes: 0 every clip done; 1 some clips failed or the run was interrupted (a summary names
them); 2 usage, config or path errors (one clear message, no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
from pathlib import Path

from . import __version__
from . import config as config_mod
from .config import Config, ConfigError
from .corpus import CorpusError
from .labels import LabelsError
from .models import ModelFileError
from .slurm import SlurmError
from .store import RunDirError

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
                        "(repeatable; values are YAML)")
    p.add_argument("--out", help="run directory (overrides run.out)")
    p.add_argument("--detector", choices=["haar", "mtcnn"], help="overrides faces.detector")
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
        description="Emotion in video, per clip: sample frames, find faces (Haar or MTCNN), "
                    "score seven emotions with the FER model, vote a label per clip and "
                    "compare it with golden labels.")
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
                   help="override a report.* key, e.g. --set report.balance=uniform")
    p.add_argument("--labels", help="golden labels CSV (overrides report.labels)")
    p.add_argument("--out", help="report directory (default RUN_DIR/report)")

    p = sub.add_parser("submit", help="run extract as a SLURM job array, then a merge job",
                       description="Split the corpus into shards (slurm.shards) and submit one "
                                   "array task per shard (videmo extract --shard I/N) and a merge "
                                   "job (videmo report) that runs after every task succeeded. "
                                   "Prints the job ids and the run directory.")
    p.add_argument("config", nargs="?", help="YAML config file (with a slurm: section)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="submit again only the shards of RUN_DIR with clips not done (failed, "
                        "interrupted, never started), then the merge job")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set slurm.partition=short")
    p.add_argument("--out", help="run directory (overrides run.out)")
    p.add_argument("--detector", choices=["haar", "mtcnn"], help="overrides faces.detector")
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
                                   "report every combination of its `vary` values, then write "
                                   "comparison.csv/.md/.png. With --runs: collect finished runs.")
    p.add_argument("job", nargs="?", help="comparison job YAML (a top-level compare: section)")
    p.add_argument("--runs", nargs="+", metavar="RUN_DIR", help="collect these finished runs")
    p.add_argument("--out", help="where the comparison tables go (default: the job's out, or "
                                 "runs/comparison with --runs)")
    p.add_argument("--force", action="store_true", help="redo clips already done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

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
    if getattr(args, "detector", None):
        overrides.append(f"faces.detector={args.detector}")
    if getattr(args, "jobs", None) is not None:
        if args.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
        overrides.append(f"run.jobs={args.jobs}")
    return config_mod.load(args.config, overrides)


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def cmd_extract(args: argparse.Namespace) -> int:
    from .runner import extract
    from .shard import parse_shard, shard_from_env

    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    cfg = load_config(args)
    summary = extract(cfg, force=args.force, shard=shard,
                      progress=False if args.no_progress else None, command=shlex.join(sys.argv))
    return print_extract_summary(summary)


def cmd_submit(args: argparse.Namespace) -> int:
    from . import slurm

    if bool(args.config) == bool(args.resume):
        raise UsageError("give either a CONFIG to submit or --resume RUN_DIR")
    if args.resume:
        given = [o for o in ("overrides", "out", "detector", "jobs", "shards", "force")
                 if getattr(args, o)]
        if given:
            raise UsageError(f"--resume takes the run's own config; drop --{given[0]}")
        sub = slurm.resume(Path(args.resume), dry_run=args.dry_run)
    else:
        if args.shards is not None and args.shards < 1:
            raise ConfigError(f"--shards must be at least 1, got {args.shards}")
        sub = slurm.submit(load_config(args), shards=args.shards, dry_run=args.dry_run,
                           force=args.force, command=shlex.join(sys.argv))
    sys.stdout.write(slurm.describe(sub, args.dry_run))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from .status import format_status, run_status
    from .store import RunDir

    st = run_status(RunDir(args.run_dir))
    sys.stdout.write(format_status(st, all_clips=args.clips))
    return EXIT_OK if st.complete else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    from .report import build_report
    from .runner import extract

    cfg = load_config(args)
    summary = extract(cfg, force=args.force, progress=False if args.no_progress else None,
                      command=shlex.join(sys.argv))
    code = print_extract_summary(summary)
    if summary.interrupted or summary.write_error:
        return code
    labels = Path(args.labels) if args.labels else None
    report = build_report(summary.run_dir, cfg, labels_path=labels, frames=summary.table)
    print(report.summary())
    return code


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report
    from .store import RunDir

    run = RunDir(args.run_dir)
    if not run.path.is_dir():
        raise RunDirError(f"run directory not found: {run.path}")
    cfg = run.config()
    bad = [o for o in args.overrides if not o.strip().startswith("report.")]
    if bad:
        raise ConfigError(f"videmo report changes only report.* keys; {bad[0]!r} would need a "
                          f"new extract (videmo extract CONFIG --set ...)")
    if args.overrides:
        data = config_mod.apply_overrides(cfg.to_dict(), args.overrides)
        cfg = config_mod.from_dict(data, base_dir=cfg.base_dir)
    frames, _ = run.consolidate(cfg.extract_hash())  # merges shards' per-clip files
    report = build_report(run, cfg, out_dir=Path(args.out) if args.out else None,
                          labels_path=Path(args.labels) if args.labels else None, frames=frames)
    print(report.summary())
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare

    if bool(args.job) == bool(args.runs):
        raise UsageError("give either a comparison JOB file or --runs RUN_DIR...")
    if args.runs:
        out = Path(args.out or "runs/comparison")
        table = compare.collect([(Path(r), None, Path(r).name) for r in args.runs], out)
    else:
        job = compare.load_job(args.job)
        if args.out:
            job = dataclasses.replace(job, out=Path(args.out))
        out = job.out
        table = compare.run_job(job, force=args.force,
                                progress=False if args.no_progress else None)
    print(compare.to_markdown(table), end="")
    print(f"-> {out / 'comparison.csv'}, comparison.md, comparison.png")
    return EXIT_OK


def print_extract_summary(summary) -> int:
    run = summary.run_dir
    where = run.frames_path if summary.table is not None else \
        f"{run.parts} (a shard: `videmo report {run.path}` merges them)"
    print(f"extract: {summary.done} done, {summary.skipped} already done, "
          f"{len(summary.failed)} failed of {summary.total} clips; {summary.frames} frames in "
          f"{summary.seconds:.1f}s -> {where}")
    for rec in summary.failed:
        print(f"  failed: {rec['clip_id']} ({rec['path']}): {rec['reason']}")
    if summary.interrupted:
        print("  interrupted: rerun the same command to resume")
    if summary.write_error:
        print(f"  stopped: {summary.write_error}")
    return EXIT_OK if summary.ok else EXIT_FAILED


def cmd_config(args: argparse.Namespace) -> int:
    action = "template" if args.template else args.action
    if action == "template":
        sys.stdout.write(config_mod.template())
        return EXIT_OK
    if action == "reference":
        sys.stdout.write(config_mod.reference_markdown())
        return EXIT_OK
    if not args.file:
        raise UsageError(f"videmo config {action} needs a config FILE")
    cfg = config_mod.load(args.file, args.overrides)
    if action == "check":
        print(f"{args.file}: OK (extract hash {cfg.extract_hash()})")
    else:
        sys.stdout.write(config_mod.dump(cfg))
    return EXIT_OK


COMMANDS = {"extract": cmd_extract, "run": cmd_run, "report": cmd_report,
            "submit": cmd_submit, "status": cmd_status, "compare": cmd_compare,
            "config": cmd_config}


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


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))



