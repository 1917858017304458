"""The ``videmo`` command line.

:mod:`.parser` is the table of commands and arguments; the commands live one module per group:
:mod:`.runs` (extract, run, report, verify, learn, train), :mod:`.jobs` (submit, status,
compare) and :mod:`.tools` (annotate, config); :mod:`.common` holds what they share. A new
command is a ``cmd_NAME(args) -> int`` in its group, its parser entry and one line of
:data:`COMMANDS`.

Exit codes: 0 every clip done; 1 some clips failed or the run was interrupted (a summary names
them); 2 usage, config or path errors (one clear message, no traceback).
"""

from __future__ import annotations

import logging
import sys

from videmo.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Checked,
    UsageError,
    load_config,
    preflight,
    setup_logging,
)
from videmo.cli.jobs import cmd_compare, cmd_status, cmd_submit
from videmo.cli.parser import build_parser
from videmo.cli.runs import (
    cmd_extract,
    cmd_learn,
    cmd_report,
    cmd_run,
    cmd_train,
    cmd_verify,
)
from videmo.cli.tools import cmd_annotate, cmd_config
from videmo.config import ConfigError
from videmo.evaluate.segments import LabelsError  # a labels file's error
from videmo.execute.slurm.render import SlurmError
from videmo.extract.corpus import CorpusError
from videmo.models import ModelFileError
from videmo.store import RunDirError

log = logging.getLogger("videmo")

USER_ERRORS = (ConfigError, CorpusError, RunDirError, ModelFileError, LabelsError,
               SlurmError, FileNotFoundError)

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "Checked", "UsageError",
           "build_parser", "entry", "load_config", "main", "preflight"]

COMMANDS = {"extract": cmd_extract, "run": cmd_run, "report": cmd_report,
            "submit": cmd_submit, "status": cmd_status, "compare": cmd_compare,
            "config": cmd_config, "annotate": cmd_annotate, "learn": cmd_learn,
            "train": cmd_train, "verify": cmd_verify}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
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
    from videmo.runtime import filter_native_stderr, release_workers

    filter_native_stderr()
    try:
        code = main()
    finally:
        release_workers()
    sys.exit(code)

