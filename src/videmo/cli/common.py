"""What every command shares: exit codes, the usage error, the config with its flags."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from videmo import config as config_mod
from videmo.config import Config, ConfigError
from videmo.execute.preflight import Checked, preflight  # noqa: F401  (the commands' check)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def load_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if getattr(args, "out", None):
        overrides.append(f"run.out={args.out}")
    overrides.extend(labels_override(args))
    if getattr(args, "detector", None):
        overrides.append(f"faces.detector={args.detector}")
    if getattr(args, "jobs", None) is not None:
        if args.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
        overrides.append(f"run.jobs={args.jobs}")
    return config_mod.load(args.config, overrides)


def labels_override(args: argparse.Namespace) -> list[str]:
    """``--labels FILE`` as the key it overrides, so that config validation sees it (e.g.
    report.balance: golden needs labels). The path is made absolute: a config's relative
    paths are relative to its own folder, a command line's to the current directory."""
    labels = getattr(args, "labels", None)
    return [f"report.labels={Path(labels).expanduser().resolve()}"] if labels else []



def setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def local_executor(args: argparse.Namespace):
    from videmo.execute.executor import LocalExecutor

    return LocalExecutor(force=args.force, progress=False if args.no_progress else None,
                         command=shlex.join(sys.argv))

