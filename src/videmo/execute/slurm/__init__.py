"""SLURM as a mapper: an array of ``videmo extract --shard I/N`` tasks and a merge job.

``videmo submit`` plans the shards (:mod:`videmo.execute.shard`), writes the job's config with
absolute paths to ``RUN/slurm/config.yaml``, renders the sbatch templates into ``RUN/slurm/``
(:mod:`.render`) and submits them (:mod:`.submission`): the array first, then the merge (``videmo
report --fail-incomplete``) with ``--dependency=afterany:ARRAY``. The merge runs once every
task has ended, however it ended, as ``videmo run`` reports after a clip failed: the report
counts the clips not done as wrong and says "not complete", and the merge job exits 1 (state
FAILED) until every clip is done, so SLURM's accounting shows a run that is not clean. Every
submission is appended to ``RUN/slurm/jobs.json``, which ``videmo status`` and ``videmo submit
--resume`` read. :mod:`.queue` asks squeue, scontrol and sacct; :mod:`.job` is the executor
and its jobs (imported on first use: rendering and checking a config's templates need no
executor). This package is what the rest of videmo imports.
"""

from typing import Any

from videmo.execute.slurm.queue import (
    ACTIVE_STATES,
    QueuedTask,
    TaskState,
    job_state,
    sacct,
    sbatch,
    scancel,
    squeue,
    submit_script,
    task_indices,
)
from videmo.execute.slurm.render import (
    AFTER_TEMPLATE,
    ARRAY_ID_PLACEHOLDER,
    ARRAY_TEMPLATE,
    MERGE_TEMPLATE,
    PACKAGED_TEMPLATES,
    Scripts,
    SlurmError,
    array_spec,
    read_template,
    render,
    render_after,
    render_array,
    render_merge,
    render_scripts,
    templates_dir,
    videmo_command,
)
from videmo.execute.slurm.submission import (
    Submission,
    clear_locks_of_merged_array,
    describe,
    job_config,
    job_ids,
    jobs_path,
    resume,
    submissions,
    submit,
)

__all__ = [
    "ACTIVE_STATES", "AFTER_TEMPLATE", "ARRAY_ID_PLACEHOLDER", "ARRAY_TEMPLATE",
    "MERGE_TEMPLATE", "PACKAGED_TEMPLATES", "QueuedTask", "Scripts", "SlurmError",
    "SlurmExecutor", "SlurmJob", "Submission", "TaskState", "array_spec",
    "clear_locks_of_merged_array", "describe", "job_config", "job_ids", "job_state",
    "jobs_path", "read_template", "render", "render_after", "render_array", "render_merge",
    "render_scripts", "resume", "sacct", "sbatch", "scancel", "squeue", "submissions", "submit",
    "submit_script", "task_indices", "templates_dir", "videmo_command",
]


def __getattr__(name: str) -> Any:
    if name in ("SlurmExecutor", "SlurmJob"):
        from videmo.execute.slurm import job

        return getattr(job, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
