"""Commands that work on a corpus or a run directory: extract, run, report, learn, train."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from videmo import config as config_mod
from videmo.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    labels_override,
    load_config,
    local_executor,
    preflight,
)
from videmo.config import ConfigError
from videmo.extract.corpus import current_clips
from videmo.runtime import warn_if_oversubscribed
from videmo.store import RunDirError


def cmd_extract(args: argparse.Namespace) -> int:
    from videmo.execute.shard import parse_shard, shard_from_env

    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    cfg = load_config(args)
    checked = preflight(cfg)
    warn_if_oversubscribed(cfg.run.jobs)
    job = local_executor(args).map_clips(cfg, report=False, clips=checked.clips, shard=shard)
    print(job.summary.text(), end="")
    return EXIT_OK if job.summary.ok else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    checked = preflight(cfg)  # a path error stops before the run directory is touched
    warn_if_oversubscribed(cfg.run.jobs)
    job = local_executor(args).map_clips(cfg, report=True, clips=checked.clips)
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
    overrides = [*args.overrides, *labels_override(args)]
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
        frames = consolidate(run, cfg, current_clips(cfg, run.corpus_json)).to_pandas()
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
    overrides = [*args.overrides, *labels_override(args)]
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
