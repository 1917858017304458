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

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videmo import config as config_mod
from videmo.config import Config
from videmo.execute import shard as shard_mod
from videmo.execute.slurm.queue import ACTIVE_STATES, sbatch, squeue, tool
from videmo.execute.slurm.render import (
    ARRAY_TEMPLATE,
    MERGE_TEMPLATE,
    Scripts,
    SlurmError,
    array_spec,
    render_array,
    render_merge,
    render_scripts,
)
from videmo.extract.corpus import discover
from videmo.store import RunDir, clear_ended_job_locks, now, write_text_atomic


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
    cfg = task_config(cfg.absolute())
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


def task_config(cfg: Config) -> Config:
    """``cfg`` as the array tasks run it: ``run.jobs`` unset becomes ``slurm.cpus_per_task``
    (one worker per CPU of a task), fixed here on the login node, where the recordings are cut
    into chunks for that many workers, and written to the run's ``slurm/config.yaml``."""
    if cfg.run.jobs is not None:
        return cfg
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, jobs=cfg.slurm.cpus_per_task))


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
    tool("sbatch")
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

