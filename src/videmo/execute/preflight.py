"""Check, before any work, that the paths a command will use are there and usable.

Every command runs this first, so a typo in a path costs an error naming the key and the path
(exit 2), not an hour of extraction followed by a traceback in the report. Each check lives with
the stage that owns the path (the corpus, the labels, the run directory, the sbatch templates);
this module only says which a command needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videmo.config import Config
from videmo.evaluate.labels import check_labels_path
from videmo.evaluate.segments import preflight_segments
from videmo.execute.slurm.render import check_templates
from videmo.extract.corpus import Clip, check_corpus
from videmo.store.files import check_out


@dataclass
class Checked:
    """What :func:`preflight` found: the corpus's clips (reused by extract) and one line per
    checked key for ``videmo config check``."""

    clips: list[Clip] | None = None
    lines: list[str] = field(default_factory=list)


def preflight(cfg: Config, *, corpus: bool = True, labels: bool = True, out: bool = True,
              templates: bool = False, require_corpus: bool = True) -> Checked:
    """The checks a command needs; ``require_corpus=False`` (``config check``) accepts a
    settings file that names no corpus."""
    checked = Checked()
    if corpus:
        if not cfg.corpus.paths and not require_corpus:
            checked.lines.append("corpus.paths: not set (extract, run and submit need one)")
        else:
            checked.clips = check_corpus(cfg, checked.lines)
    if labels:
        check_labels_path(cfg, checked.lines)
        checked.lines += preflight_segments(cfg, checked.clips)  # corpus.segments' rows
    if out:
        check_out(cfg, checked.lines)
    if templates:
        check_templates(cfg)
    return checked
