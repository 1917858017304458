"""Commands around a run: the observers' page (annotate) and the config (template, check)."""

from __future__ import annotations

import argparse
import sys

from videmo import config as config_mod
from videmo.cli.common import EXIT_OK, EXIT_USAGE, UsageError, load_config, preflight


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
