"""Where a run stands: clips done / failed / interrupted / pending, per shard and in total.

Read from the run directory alone (records, shard plan), plus SLURM (squeue, scontrol, sacct)
when the run was submitted (``RUN/slurm/jobs.json``) and the tools are there. Works for local
runs too (one shard: the whole corpus). A clip without a record of this config is ``pending``:
it never started, whatever the reason. An array task that died before videmo could record
anything (a bad setup line, a missing module) leaves only pending clips; for it the scheduler's
state and the end of the task's log are what a user needs, so both are shown.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videmo import schema
from videmo.execute import shard as shard_mod
from videmo.execute.executor import Job, Tasks, job_of
from videmo.execute.slurm.queue import ACTIVE_STATES, TaskState
from videmo.extract.corpus import CorpusError, discover
from videmo.store import RunDir, RunDirError, is_truncated

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.extract.corpus import Clip

STATES = (schema.DONE, schema.FAILED, schema.INTERRUPTED, schema.PENDING)
LISTED = 10  # clips listed per state unless --clips
LOG_TAIL = 10  # lines of a failed task's log


@dataclass
class ShardStatus:
    index: int | None  # None: a run without a shard plan
    counts: Counter = field(default_factory=Counter)
    queue: str = ""  # SLURM state of this shard's latest task, while SLURM remembers it
    task: TaskState | None = None
    array_job: str | None = None  # the array job that last ran this shard
    recorded: int = 0  # clips of this shard with a record of this config (any state)

    @property
    def clips(self) -> int:
        return sum(self.counts.values())


@dataclass
class Problem:
    clip_id: str
    shard: int | None
    status: str
    reason: str


@dataclass
class Truncated:
    clip_id: str
    decoded: Any
    expected: Any


@dataclass
class TaskFailure:
    """An ended, unsuccessful array task whose shard still has pending clips."""

    shard: int
    task: TaskState
    before_start: bool  # no clip of the shard has a record: videmo never got to one
    log: Path | None
    tail: list[str]


@dataclass
class MergeFailure:
    """The latest merge job ended, not COMPLETED. With a report that says "not complete" it
    failed on purpose (``videmo report --fail-incomplete``); otherwise its log says why."""

    job_id: str
    state: str
    report: Path | None  # report.html of a report that counts clips not done, when written
    not_done: int
    log: Path | None
    tail: list[str]


@dataclass
class RunStatus:
    run_dir: str
    shards: list[ShardStatus]
    problems: list[Problem]
    truncated: list[Truncated] = field(default_factory=list)
    merge: str = ""  # SLURM state of the latest merge job ("" when SLURM forgot it)
    jobs: list[str] = field(default_factory=list)
    squeue_available: bool = True
    scheduled: bool = False  # made by a scheduler's job (videmo submit: RUN/slurm/jobs.json)
    resume: str | None = None  # what finishes the run, by the job that made it (None: rerun)
    command: str = ""  # the last command that wrote the run (run.json)
    task_failures: list[TaskFailure] = field(default_factory=list)
    merge_failure: MergeFailure | None = None  # the latest merge job ended unsuccessfully

    @property
    def total(self) -> Counter:
        out: Counter = Counter()
        for s in self.shards:
            out.update(s.counts)
        return out

    @property
    def complete(self) -> bool:
        return all(s.counts[schema.DONE] == s.clips for s in self.shards)


def clip_state(run: RunDir, clip_id: str, config_hash: str, clip: Clip | None = None,
               cfg: Config | None = None) -> tuple[str, str, dict | None]:
    """(state, reason, record of this config or None) of one clip in the run; a done record
    is done by :meth:`RunDir.why_not_done` (rows on disk; ``clip``'s file unchanged)."""
    rec = run.record(clip_id)
    if rec is None or rec.get(schema.CONFIG_HASH) != config_hash:
        return schema.PENDING, "", None
    status = rec.get(schema.STATUS)
    if status == schema.DONE:
        why = run.why_not_done(rec, config_hash, clip, cfg)
        return (schema.DONE, "", rec) if why is None else (schema.PENDING, why, rec)
    return (status if status in STATES else schema.FAILED), rec.get(schema.REASON) or "", rec


def run_status(run: RunDir) -> RunStatus:
    meta = run.read_meta()
    if meta is None:
        raise RunDirError(f"{run.path} is not a videmo run directory (no run.json)")
    config_hash = meta["extract_hash"]
    plan = shard_mod.load_plan(run)
    if plan is not None:
        groups = {i: plan.clips(i) for i in range(plan.count)}
    cfg = run.config()
    try:
        clips = {c.clip_id: c for c in discover(cfg)}
    except CorpusError:  # corpus gone or moved: what the run recorded is all we know
        clips = None
    if plan is None:
        ids = list(clips) if clips is not None else [r[schema.CLIP_ID] for r in run.records()]
        groups = {None: sorted(ids)}
    shards, problems, truncated = [], [], []
    for index, ids in groups.items():
        st = ShardStatus(index)
        for cid in ids:
            state, reason, rec = clip_state(run, cid, config_hash,
                                            clips.get(cid) if clips else None, cfg)
            st.counts[state] += 1
            st.recorded += rec is not None
            if state in (schema.FAILED, schema.INTERRUPTED):
                problems.append(Problem(cid, index, state, reason))
            if state == schema.DONE and is_truncated(rec):
                truncated.append(Truncated(cid, rec.get(schema.FRAMES_DECODED),
                                           rec.get(schema.FRAMES_EXPECTED)
                                           or rec.get(schema.FRAME_COUNT)))
        shards.append(st)
    status = RunStatus(str(run.path), shards, problems, truncated,
                       command=_extract_command(meta))
    job = job_of(run)
    tasks = job.tasks()
    status.scheduled = tasks is not None
    status.resume = job.resume_command()
    if tasks is not None and job.job_ids():
        _add_job_states(status, job, tasks)
    return status


def _extract_command(meta: dict[str, Any]) -> str:
    """The last extract or run command in run.json's history (a report does not finish a
    run); older run directories kept one top-level command."""
    for entry in reversed(meta.get("history") or []):
        words = str(entry.get("command") or "").split()
        if len(words) >= 2 and words[1] in ("run", "extract"):
            return str(entry["command"])
    return str(meta.get("command") or "")


def _add_job_states(status: RunStatus, job: Job, tasks: Tasks) -> None:
    """The scheduler's word on the run's tasks and its final (merge) job."""
    status.jobs = job.job_ids()
    status.squeue_available = tasks.scheduler_available
    for s in status.shards:
        if s.index is not None:
            s.array_job = tasks.array_of(s.index)
    merge = tasks.final()
    if merge is not None:
        status.merge = f"{merge.state} ({merge.reason})" if merge.reason not in ("None", "") \
            else merge.state
        if merge.state not in ACTIVE_STATES and merge.state != "COMPLETED":
            status.merge_failure = _merge_failure(job.run_dir, tasks, merge)
    for s in status.shards:
        if s.array_job is None or s.index is None:
            continue
        s.task = tasks.task_of(s.index)
        if s.task is None:
            continue
        s.queue = s.task.state
        if (s.task.state not in ACTIVE_STATES and s.task.state != "COMPLETED"
                and s.counts[schema.PENDING]):
            log = tasks.log_of(s.task)
            status.task_failures.append(TaskFailure(s.index, s.task, s.recorded == 0, log,
                                                    _tail(log)))


def _merge_failure(run_dir: Path, tasks: Tasks, merge: TaskState) -> MergeFailure:
    """Why the merge job ended as it did: the report it wrote (when that report counts clips
    that are not done), else the end of its log."""
    run = RunDir(run_dir)
    log = tasks.log_of(merge)
    report, not_done = None, 0
    try:
        cfg = run.config()
        out = cfg.resolve(cfg.report.out) or run.path / "report"
        metrics = json.loads((Path(out) / "metrics.json").read_text(encoding="utf-8"))
        overall = metrics["overall"]
        if not metrics["complete"] and (Path(out) / "report.html").exists():
            report = Path(out) / "report.html"
            not_done = int(overall["failed"]) + int(overall["not_extracted"])
    except (OSError, ValueError, KeyError, TypeError, RunDirError):
        pass  # no readable report: the log is what there is
    return MergeFailure(merge.job_id, merge.state, report, not_done, log, _tail(log))


def _tail(path: Path | None, lines: int = LOG_TAIL) -> list[str]:
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return text.rstrip("\n").splitlines()[-lines:]


def rerun_hint(st: RunStatus) -> str:
    """What finishes the run: submit --resume for SLURM runs, else the same command again."""
    if st.resume:
        return st.resume
    if st.shards[0].index is not None:
        todo = [str(s.index) for s in st.shards if s.counts[schema.DONE] < s.clips]
        count = len(st.shards)
        return (f"videmo extract CONFIG --shard I/{count} for shard(s) {', '.join(todo)} "
                f"(or videmo run CONFIG for all of them)")
    try:
        argv = shlex.split(st.command)
    except ValueError:
        argv = []
    if len(argv) >= 3 and Path(argv[0]).name in ("videmo", "__main__.py") \
            and argv[1] in ("run", "extract"):
        return "rerun the same command: " + shlex.join(["videmo", *argv[1:]])
    return "videmo run CONFIG (the config that made the run)"


def format_status(st: RunStatus, all_clips: bool = False) -> str:
    total = st.total
    n = sum(total.values())
    lines = [f"{st.run_dir}: {n} clips: " + ", ".join(f"{total[s]} {s}" for s in STATES)]
    if len(st.shards) > 1 or st.shards[0].index is not None:
        lines.append(f"{'shard':>5}  {'clips':>5}  {'done':>5}  {'failed':>6}  "
                     f"{'interrupted':>11}  {'pending':>7}  slurm")
        for s in st.shards:
            c = s.counts
            lines.append(f"{s.index:>5}  {s.clips:>5}  {c[schema.DONE]:>5}  "
                         f"{c[schema.FAILED]:>6}  {c[schema.INTERRUPTED]:>11}  "
                         f"{c[schema.PENDING]:>7}  {s.queue or '-'}")
    if st.jobs:
        merge = st.merge or ("-" if st.squeue_available else "unknown (no squeue)")
        lines.append(f"slurm jobs: {', '.join(st.jobs)}; latest merge job: {merge}")
    for state in (schema.FAILED, schema.INTERRUPTED):
        clips = [p for p in st.problems if p.status == state]
        if not clips:
            continue
        lines.append(f"{state} clips ({len(clips)}):")
        shown = clips if all_clips else clips[:LISTED]
        for p in shown:
            where = f" (shard {p.shard})" if p.shard is not None else ""
            lines.append(f"  {p.status}: {p.clip_id}{where}: {p.reason}")
        if len(shown) < len(clips):
            lines.append(f"  ... and {len(clips) - len(shown)} more: videmo status "
                         f"{shlex.quote(st.run_dir)} --clips lists them all")
    if st.truncated:
        lines.append(f"truncated clips ({len(st.truncated)}; done, with fewer frames than "
                     f"the file announces):")
        shown_t = st.truncated if all_clips else st.truncated[:LISTED]
        for t in shown_t:
            lines.append(f"  truncated: {t.clip_id}: decoded {t.decoded} of {t.expected} "
                         f"frames")
        if len(shown_t) < len(st.truncated):
            lines.append(f"  ... and {len(st.truncated) - len(shown_t)} more: --clips lists "
                         f"them all")
    for f in st.task_failures:
        t = f.task
        exit_code = f", exit code {t.exit_code}" if t.exit_code else ""
        when = " before videmo recorded any clip (a setup line, a module, the environment?)" \
            if f.before_start else ""
        lines.append(f"shard {f.shard}: array task {t.job_id}_{t.task} {t.state}{exit_code} "
                     f"(from {t.source}){when}")
        if f.log is None:
            lines.append("  no log found in " + str(Path(st.run_dir) / "slurm" / "logs"))
        else:
            lines.append(f"  last lines of {f.log}:")
            lines.extend(f"  | {line}" for line in f.tail)
    lines.extend(_merge_lines(st))
    if st.complete:
        lines.append("complete: every clip is done")
    elif not any(s.queue in ACTIVE_STATES for s in st.shards):
        lines.append(f"not complete; to finish it: {rerun_hint(st)}")
    return "\n".join(lines) + "\n"


def _merge_lines(st: RunStatus) -> list[str]:
    m = st.merge_failure
    if m is None:
        return []
    if m.report is not None and not st.complete:
        return [f"merge job {m.job_id} {m.state}: it wrote the report of the clips done, "
                f"{m.report} (the {m.not_done} not done count as wrong and it says \"not "
                f"complete\"); a merge job fails while clips are not done"]
    lines = [f"merge job {m.job_id} {m.state} without a report"]
    if m.log is None:
        lines.append("  no log found in " + str(Path(st.run_dir) / "slurm" / "logs"))
    else:
        lines.append(f"  last lines of {m.log}:")
        lines.extend(f"  | {line}" for line in m.tail)
    return lines
