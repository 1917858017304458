"""SLURM as a mapper: an array of ``videmo extract --shard I/N`` tasks and a merge job.

``videmo submit`` plans the shards (:mod:`videmo.execute.shard`), writes the job's config with
absolute paths to ``RUN/slurm/config.yaml``, renders the two sbatch templates into
``RUN/slurm/`` and submits them: the array first, then the merge (``videmo report
--fail-incomplete``) with ``--dependency=afterany:ARRAY``. The merge runs once every task has
ended, however it ended, as ``videmo run`` reports after a clip failed: the report counts the
clips not done as wrong and says "not complete", and the merge job exits 1 (state FAILED) until
every clip is done, so SLURM's accounting shows a run that is not clean. Every submission is
appended to ``RUN/slurm/jobs.json``, which ``videmo status`` and ``videmo submit --resume`` read.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videmo import config as config_mod
from videmo.config import Config
from videmo.execute import shard as shard_mod
from videmo.extract.corpus import discover
from videmo.store import RunDir, clear_ended_job_locks, now, write_text_atomic

log = logging.getLogger(__name__)

ARRAY_TEMPLATE = "extract-array.sbatch"
MERGE_TEMPLATE = "merge-report.sbatch"
AFTER_TEMPLATE = "after-jobs.sbatch"  # one step once other jobs have ended (compare's table)
PACKAGED_TEMPLATES = Path(__file__).parents[1] / "slurm_templates"
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


def submit_script(out: Path, name: str, text: str) -> str:
    """Write ``text`` to OUT/slurm/NAME (its logs to OUT/slurm/logs/) and submit it."""
    _tool("sbatch")
    (out / "slurm" / "logs").mkdir(parents=True, exist_ok=True)
    path = out / "slurm" / name
    write_text_atomic(path, text)
    return sbatch(path)


# ------------------------------------------------------------------ talking to SLURM
def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SlurmError(f"`{name}` not found: run videmo submit on a SLURM login node (or use "
                         f"--dry-run to see the scripts)")
    return path


def sbatch(script: Path) -> str:
    """Submit a script; return its job id."""
    proc = subprocess.run([_tool("sbatch"), "--parsable", str(script)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SlurmError(f"sbatch refused {script}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip().split(";")[0]


@dataclass(frozen=True)
class QueuedTask:
    job_id: str  # the array's job id, or the job's own id
    task: str  # array task id ('' for a plain job; '1-3%2' for tasks not yet split off)
    state: str
    reason: str


def squeue(job_ids: list[str]) -> list[QueuedTask] | None:
    """Tasks of these jobs: queued or running ones from squeue, recently ended ones (within
    SLURM's MinJobAge, 5 minutes by default) from scontrol. None when squeue is not there."""
    exe = shutil.which("squeue")
    if exe is None:
        return None
    if not job_ids:
        return []
    proc = subprocess.run([exe, "-h", "-r", "-u", getpass.getuser(), "-o", "%F|%K|%i|%T|%r"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log.warning("squeue failed: %s", proc.stderr.strip())
        return None
    wanted, out = set(job_ids), []
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        array_id, task, job_id, state, reason = parts
        if array_id in wanted or job_id in wanted:
            task = "" if task in ("N/A", "") else task
            out.append(QueuedTask(array_id if array_id in wanted else job_id, task, state,
                                  reason))
    seen = {q.job_id for q in out}
    for job in job_ids:
        if job not in seen:
            out.extend(_scontrol(job))
    return out


def _scontrol(job_id: str) -> list[QueuedTask]:
    """Ended tasks of a job that SLURM still remembers (empty when it has forgotten it)."""
    exe = shutil.which("scontrol")
    if exe is None:
        return []
    proc = subprocess.run([exe, "-o", "show", "job", job_id], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "JobState" in f:
            task = f.get("ArrayTaskId", "")
            out.append(QueuedTask(job_id, "" if task in ("N/A", "") else task, f["JobState"],
                                  f.get("Reason", "None")))
    return out


ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
                 "RESIZING", "SIGNALING", "STAGE_OUT"}


# ------------------------------------------------------------------ submissions
def jobs_path(run: RunDir) -> Path:
    return run.path / "slurm" / "jobs.json"


def submissions(run: RunDir) -> list[dict[str, Any]]:
    try:
        return json.loads(jobs_path(run).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise SlurmError(f"cannot read {jobs_path(run)}: {e}") from None


def job_ids(run: RunDir) -> list[str]:
    return [j for s in submissions(run) for j in (s.get("array_job"), s.get("merge_job")) if j]


@dataclass
class Submission:
    run_dir: Path
    shards: list[int]
    count: int
    scripts: Scripts
    array_job: str | None = None
    merge_job: str | None = None


def submit(cfg: Config, *, shards: int | None = None, dry_run: bool = False,
           force: bool = False, command: str = "") -> Submission:
    """Plan shards over the whole corpus and submit the array and the merge job.

    Submitting again into a run directory that has a plan with the same number of shards
    keeps every clip in its shard (the plan follows the corpus, see :func:`shard.reconcile`);
    only shards with unfinished clips are submitted.
    """
    cfg = cfg.absolute()
    clips = discover(cfg)
    count = max(1, min(shards or cfg.slurm.shards, shard_mod.unit_count(clips, cfg)))
    run = RunDir(cfg.out_dir)
    old = shard_mod.load_plan(run) if run.path.is_dir() else None
    plan = shard_mod.reconcile(old, clips, cfg) if old is not None and old.count == count \
        else shard_mod.make_plan(clips, count, cfg)
    return _plan_and_submit(cfg, run, plan, clips, dry_run=dry_run, force=force,
                            command=command, resume=False)


def resume(run_dir: Path, *, dry_run: bool = False, overrides: list[str] | None = None,
           command: str = "") -> Submission:
    """Submit again only the shards with clips not done (failed, interrupted, never started,
    or whose file changed). The plan is reconciled with the corpus first, so an excluded or
    deleted clip leaves it and an added one joins the least loaded shard. ``overrides``
    (``--set``) change the job's config, e.g. corpus.exclude or slurm.time; keys that change
    the extract hash are refused as for any run."""
    run = RunDir(run_dir)
    cfg = job_config(run, overrides)
    plan = shard_mod.load_plan(run)
    if plan is None:
        raise SlurmError(f"{run.path} has no shard plan (shards.json): it was not made by "
                         f"`videmo submit`; submit it with `videmo submit CONFIG`")
    clips = discover(cfg)
    plan = shard_mod.reconcile(plan, clips, cfg)
    return _plan_and_submit(cfg, run, plan, clips, dry_run=dry_run, force=False,
                            command=command, resume=True, new_config=bool(overrides))


def _plan_and_submit(cfg: Config, run: RunDir, plan: shard_mod.Plan, clips: list, *,
                     dry_run: bool, force: bool, command: str, resume: bool,
                     new_config: bool = False) -> Submission:
    """Write the plan, the corpus and the job's files under the whole run's lock, then submit
    with the lock released (the array tasks take their shard locks as they start)."""
    if dry_run:
        return _dry(cfg, run, _unfinished_shards(run, plan, clips, cfg), plan.count)
    _refuse_if_active(run)
    clear_ended_job_locks(run, job_ids(run))  # none is queued or running: their locks are stale
    with RunDir.open(cfg, force=force, command=command) as run:
        todo = _unfinished_shards(run, plan, clips, cfg)  # clips done by an earlier run are kept
        plan.save(run)
        run.save_corpus(clips)
        if not resume or new_config:
            config_path = run.path / "slurm" / "config.yaml"
            write_text_atomic(config_path, config_mod.dump(cfg))
    return _submit(cfg, run, todo, plan.count, resume=resume)


def clear_locks_of_merged_array(run: RunDir, environ: dict[str, str] | None = None) -> list[str]:
    """Inside a merge job (``SLURM_JOB_ID`` is the merge job of a submission in jobs.json):
    remove the locks left by tasks of the array it waited for. afterany means every task has
    ended, so a lock of that array is stale even when its task was killed on another node,
    where no process here can prove it. Elsewhere (a report run by hand) nothing is removed."""
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID")
    if not job or not jobs_path(run).exists():
        return []
    arrays = [s["array_job"] for s in submissions(run)
              if str(s.get("merge_job")) == job and s.get("array_job")]
    return clear_ended_job_locks(run, arrays) if arrays else []


def job_config(run: RunDir, overrides: list[str] | None = None) -> Config:
    path = run.path / "slurm" / "config.yaml"
    if not path.exists():
        raise SlurmError(f"{run.path} has no {path.relative_to(run.path)}: it was not made by "
                         f"`videmo submit`")
    return config_mod.load(path, overrides).absolute()


def _unfinished_shards(run: RunDir, plan: shard_mod.Plan, clips: list,
                       cfg: Config) -> list[int]:
    """Shards with a clip not done, or done from a file that changed since."""
    config_hash = cfg.extract_hash()
    by_id = {c.clip_id: c for c in clips}
    return [i for i in range(plan.count)
            if any(cid not in by_id or not run.is_done(by_id[cid], cfg, config_hash)
                   for cid in plan.clips(i))]


def _dry(cfg: Config, run: RunDir, todo: list[int], count: int) -> Submission:
    scripts = render_scripts(cfg, run.path, run.path / "slurm" / "config.yaml", todo, count)
    return Submission(run.path, todo, count, scripts)


def _refuse_if_active(run: RunDir) -> None:
    ids = job_ids(run)
    queued = [q for q in squeue(ids) or [] if q.state in ACTIVE_STATES]
    if queued:
        listing = ", ".join(sorted({f"{q.job_id} ({q.state})" for q in queued}))
        raise SlurmError(f"jobs of {run.path} are still queued or running: {listing}; wait for "
                         f"them or scancel them first")


def _submit(cfg: Config, run: RunDir, todo: list[int], count: int, *,
            resume: bool) -> Submission:
    _tool("sbatch")
    slurm_dir = run.path / "slurm"
    (slurm_dir / "logs").mkdir(parents=True, exist_ok=True)
    config_path = slurm_dir / "config.yaml"
    array_text, array_job = None, None
    if todo:
        array_text = render_array(cfg, run.path, config_path, todo, count)
        array_file = slurm_dir / ARRAY_TEMPLATE
        write_text_atomic(array_file, array_text)
        array_job = sbatch(array_file)
    merge_text = render_merge(cfg, run.path, config_path, count, array_job)
    sub = Submission(run.path, todo, count, Scripts(array_text, merge_text), array_job=array_job)
    merge_file = slurm_dir / MERGE_TEMPLATE
    write_text_atomic(merge_file, merge_text)
    try:
        sub.merge_job = sbatch(merge_file)
    finally:
        history = submissions(run) + [{
            "submitted": now(), "resume": resume, "shards": todo, "count": count,
            "array_job": sub.array_job, "merge_job": sub.merge_job}]
        write_text_atomic(jobs_path(run), json.dumps(history, indent=1) + "\n")
    return sub


def describe(sub: Submission, dry_run: bool) -> str:
    """What ``videmo submit`` prints."""
    lines = []
    if dry_run:
        if sub.scripts.array is not None:
            lines += [f"# ---- {ARRAY_TEMPLATE} (not submitted)", sub.scripts.array.rstrip()]
        lines += [f"# ---- {MERGE_TEMPLATE} (not submitted)", sub.scripts.merge.rstrip()]
        return "\n".join(lines) + "\n"
    if sub.array_job:
        lines.append(f"array job {sub.array_job}: {len(sub.shards)} of {sub.count} shard(s) "
                     f"({array_spec(sub.shards, None)})")
    else:
        lines.append("every shard is done; only the merge job was submitted")
    lines.append(f"merge job {sub.merge_job}: videmo report, when the array has ended (it "
                 f"ends FAILED while clips are not done)")
    lines.append(f"run directory: {sub.run_dir}")
    lines.append(f"follow it with: videmo status {sub.run_dir}")
    return "\n".join(lines) + "\n"

