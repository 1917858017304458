"""The sbatch scripts of a SLURM run: templates (packaged, or ``slurm.templates``) with
``{{key}}`` placeholders filled from the config's ``slurm:`` section.

Three templates: the array of ``videmo extract --shard I/N`` tasks, the merge job that reports
once the array has ended, and one step after other jobs (compare's table).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from videmo.config import Config

ARRAY_TEMPLATE = "extract-array.sbatch"
MERGE_TEMPLATE = "merge-report.sbatch"
AFTER_TEMPLATE = "after-jobs.sbatch"  # one step once other jobs have ended (compare's table)
PACKAGED_TEMPLATES = Path(__file__).parents[2] / "slurm_templates"
ARRAY_ID_PLACEHOLDER = "<array-job-id>"


class SlurmError(RuntimeError):
    """SLURM cannot do what was asked (no sbatch, a refused job, jobs of the run still queued)."""


# ------------------------------------------------------------------ rendering
def render(template: str, values: dict[str, str], name: str = "template") -> str:
    """Fill ``{{key}}`` placeholders; drop lines that are only a placeholder rendered empty."""
    def fill(m: re.Match) -> str:
        key = m[1]
        if key not in values:
            raise SlurmError(f"{name}: unknown placeholder {{{{{key}}}}}; known: "
                             f"{', '.join(sorted(values))}")
        return values[key]

    out = []
    for line in template.splitlines():
        rendered = re.sub(r"\{\{\s*(\w+)\s*\}\}", fill, line)
        if not rendered.strip() and line.strip():
            continue
        out.append(rendered)
    return "\n".join(out) + "\n"


def array_spec(indices: list[int], max_concurrent: int | None) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5`` (``%K`` appended when limited)."""
    if not indices:
        raise ValueError("an array needs at least one task")
    parts, run = [], [indices[0]]
    for i in sorted(indices)[1:]:
        if i == run[-1] + 1:
            run.append(i)
            continue
        parts.append(run)
        run = [i]
    parts.append(run)
    spec = ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in parts)
    return f"{spec}%{max_concurrent}" if max_concurrent else spec


def _sbatch_lines(options: list[str]) -> str:
    return "\n".join(f"#SBATCH {o}" for o in options)


def _sbatch_value(path: Path) -> str:
    """A path as an #SBATCH value: sbatch splits on blanks unless the value is double-quoted."""
    text = str(path)
    if '"' in text:
        raise SlurmError(f"run directory {text!r}: sbatch cannot take a path with a '\"'")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def _extra(cfg: Config) -> list[str]:
    """slurm.extra items as options (a leading '#SBATCH' is tolerated)."""
    return [re.sub(r"^#SBATCH\s+", "", e.strip()) for e in cfg.slurm.extra if e.strip()]


def videmo_command(cfg: Config) -> str:
    return cfg.slurm.command or f"{shlex.quote(sys.executable)} -m videmo"


def templates_dir(cfg: Config) -> Path:
    return Path(cfg.slurm.templates) if cfg.slurm.templates else PACKAGED_TEMPLATES


def read_template(cfg: Config, name: str) -> str:
    path = templates_dir(cfg) / name
    if name == AFTER_TEMPLATE and not path.exists():  # a copy made before it was shipped
        path = PACKAGED_TEMPLATES / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise SlurmError(f"cannot read the sbatch template {path} (config key "
                         f"'slurm.templates'): {e.strerror or e}") from None


@dataclass(frozen=True)
class Scripts:
    array: str | None  # None when every shard is done already
    merge: str


def _values(cfg: Config, run_dir: Path, config_path: Path, count: int) -> dict[str, str]:
    """Placeholder values both templates share."""
    sc = cfg.slurm
    return {
        "job_name": sc.job_name,
        "run_dir": shlex.quote(str(run_dir)),
        "array_log": _sbatch_value(run_dir / "slurm" / "logs" / "extract-%A_%a.out"),
        "merge_log": _sbatch_value(run_dir / "slurm" / "logs" / "merge-%j.out"),
        "config": shlex.quote(str(config_path)),
        "videmo": videmo_command(cfg),
        "setup": "\n".join(sc.setup),
        "shards": str(count),
        "cpus_per_task": str(sc.cpus_per_task),
        "mem": sc.mem,
        "time": sc.time,
        "merge_mem": sc.merge_mem,
        "merge_time": sc.merge_time,
    }


def _options(cfg: Config, *, gpus: bool) -> list[str]:
    """#SBATCH options from the config: partition, account, GPUs (array only), extra lines."""
    sc = cfg.slurm
    return ([f"--partition={sc.partition}"] if sc.partition else []) + \
        ([f"--account={sc.account}"] if sc.account else []) + \
        ([f"--gpus={sc.gpus}"] if gpus and sc.gpus else []) + _extra(cfg)


def render_array(cfg: Config, run_dir: Path, config_path: Path, shards: list[int],
                 count: int) -> str:
    """The array script for ``shards`` of ``count``; ``cfg`` must be absolute."""
    return render(read_template(cfg, ARRAY_TEMPLATE),
                  {**_values(cfg, run_dir, config_path, count),
                   "array": array_spec(shards, cfg.slurm.max_concurrent),
                   "options": _sbatch_lines(_options(cfg, gpus=True))}, ARRAY_TEMPLATE)


def render_merge(cfg: Config, run_dir: Path, config_path: Path, count: int,
                 array_job: str | None) -> str:
    """The merge script; it waits for ``array_job`` to end, when there is one (afterany: a
    failed task must not cancel the report; an array id SLURM does not know cancels it)."""
    dependency = "" if array_job is None else _sbatch_lines(
        [f"--dependency=afterany:{array_job}", "--kill-on-invalid-dep=yes"])
    return render(read_template(cfg, MERGE_TEMPLATE),
                  {**_values(cfg, run_dir, config_path, count), "dependency": dependency,
                   "options": _sbatch_lines(_options(cfg, gpus=False))}, MERGE_TEMPLATE)


def render_scripts(cfg: Config, run_dir: Path, config_path: Path, shards: list[int],
                   count: int, array_job: str | None = ARRAY_ID_PLACEHOLDER) -> Scripts:
    """Both scripts of a submission (no array, and no dependency, when ``shards`` is empty)."""
    array = render_array(cfg, run_dir, config_path, shards, count) if shards else None
    return Scripts(array, render_merge(cfg, run_dir, config_path, count,
                                       array_job if shards else None))


def render_after(cfg: Config, out: Path, name: str, argv: tuple[str, ...] | list[str],
                 after: list[str]) -> str:
    """The script of one step, ``videmo ARGV``, that waits for the jobs ``after`` to end,
    however they ended (afterany), with the merge job's resources; ``cfg`` must be absolute.
    Its log is OUT/slurm/logs/NAME-%j.out."""
    dependency = _sbatch_lines([f"--dependency=afterany:{':'.join(after)}",
                                "--kill-on-invalid-dep=yes"]) if after else ""
    sc = cfg.slurm
    return render(read_template(cfg, AFTER_TEMPLATE), {
        "job_name": f"{sc.job_name}-{name}", "dependency": dependency,
        "merge_mem": sc.merge_mem, "merge_time": sc.merge_time,
        "log": _sbatch_value(out / "slurm" / "logs" / f"{name}-%j.out"),
        "options": _sbatch_lines(_options(cfg, gpus=False)), "setup": "\n".join(sc.setup),
        "videmo": videmo_command(cfg), "argv": shlex.join(argv)}, AFTER_TEMPLATE)


def check_templates(cfg: Config) -> None:
    """Before any work: ``slurm.templates``, when set, is a folder."""
    from videmo.config import ConfigError
    from videmo.config.paths import given

    if cfg.slurm.templates is None:
        return
    path = cfg.resolve(cfg.slurm.templates)
    if path is None or not path.is_dir():
        raise ConfigError(f"config key 'slurm.templates': {path} is not a folder"
                          f"{given(cfg, cfg.slurm.templates)}")
