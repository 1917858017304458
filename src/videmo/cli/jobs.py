"""Commands over jobs: submit to SLURM, read a run's status, compare several runs."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
from pathlib import Path

from videmo.cli.common import EXIT_FAILED, EXIT_OK, UsageError, load_config, preflight
from videmo.config import Config, ConfigError
from videmo.runtime import warn_if_oversubscribed

log = logging.getLogger(__name__)


def cmd_submit(args: argparse.Namespace) -> int:
    from videmo.execute import slurm

    executor = slurm.SlurmExecutor(shards=args.shards, dry_run=args.dry_run, force=args.force,
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
        warn_if_undersubscribed(cfg)
        job = executor.map_clips(cfg)
    sys.stdout.write(job.describe(args.dry_run))
    return EXIT_OK


def warn_if_undersubscribed(cfg: Config) -> bool:
    """Warn when each array task would leave CPUs it was granted idle: ``--jobs N`` (run.jobs)
    is N cores, one worker each, unless run.threads gives each worker more."""
    jobs, cpus = cfg.run.jobs, cfg.slurm.cpus_per_task
    if jobs is None or jobs * (cfg.run.threads or 1) >= cpus:
        return False
    log.warning("run.jobs %d with run.threads %s uses %d of the %d CPUs each task gets "
                "(slurm.cpus_per_task): leave run.jobs unset (one worker per CPU) or lower "
                "slurm.cpus_per_task", jobs, cfg.run.threads, jobs * (cfg.run.threads or 1),
                cpus)
    return True


def cmd_status(args: argparse.Namespace) -> int:
    from videmo.execute.status import format_status, run_status
    from videmo.store import RunDir

    st = run_status(RunDir(args.run_dir))
    sys.stdout.write(format_status(st, all_clips=args.clips))
    return EXIT_OK if st.complete else EXIT_FAILED


def cmd_compare(args: argparse.Namespace) -> int:
    from videmo.execute import compare as runner
    from videmo.execute.executor import EXECUTORS
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
        kind = EXECUTORS.get(job.executor)
        if args.dry_run and (not kind.dry_runs or args.collect):
            raise UsageError("--dry-run prints the sbatch scripts of --slurm")
        planned = runner.plan(job)
        for p in planned:  # every run's paths, before the first extraction
            preflight(p.cfg, out=False)
            kind.check(p.cfg)
        if args.collect:
            table = runner.collect_job(job, planned)
        else:
            executor = kind(force=args.force, progress=False if args.no_progress else None,
                            command=shlex.join(sys.argv), dry_run=args.dry_run)
            if executor.waits:
                asked = [job.jobs or p.cfg.run.jobs for p in planned]
                warn_if_oversubscribed(max((n for n in asked if n), default=None))
            jobs, final = runner.run_job(job, executor)
            if not executor.waits:  # a cluster's jobs: say what was submitted
                sys.stdout.write(runner.describe_submission(jobs, final, planned,
                                                            args.dry_run))
                return EXIT_OK
            table = final.result()
    print(compare.to_markdown(table), end="")
    print(f"-> {out / 'comparison.csv'}, comparison.md, comparison.png, comparison.html")
    return EXIT_OK
