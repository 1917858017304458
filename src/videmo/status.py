"""Where a run stands: clips done / failed / interrupted / not started, per shard and in total.

Read from the run directory alone (records, shard plan), plus SLURM's queue when the run was
submitted and ``squeue`` is there. Works for local runs too (one shard: the whole corpus).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from . import schema
from . import shard as shard_mod
from .corpus import CorpusError, discover
from .store import RunDir, RunDirError

NOT_STARTED = "not_started"
STATES = (schema.DONE, schema.FAILED, schema.INTERRUPTED, NOT_STARTED)


@dataclass
class ShardStatus:
    index: int | None  # None: a run without a shard plan
    counts: Counter = field(default_factory=Counter)
    queue: str = ""  # SLURM state of this shard's latest task, while SLURM remembers it

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
class RunStatus:
    run_dir: str
    shards: list[ShardStatus]
    problems: list[Problem]
    merge: str = ""  # SLURM state of the latest merge job ("" when SLURM forgot it)
    jobs: list[str] = field(default_factory=list)
    squeue_available: bool = True

    @property
    def total(self) -> Counter:
        out: Counter = Counter()
        for s in self.shards:
            out.update(s.counts)
        return out

    @property
    def complete(self) -> bool:
        return all(s.counts[schema.DONE] == s.clips for s in self.shards)


def clip_state(run: RunDir, clip_id: str, config_hash: str) -> tuple[str, str]:
    """(state, reason) of one clip in the run."""
    rec = run.record(clip_id)
    if rec is None or rec.get(schema.CONFIG_HASH) != config_hash:
        return NOT_STARTED, ""
    status = rec.get(schema.STATUS)
    if status == schema.DONE:  # done counts only with its rows, as in RunDir.is_done
        return (schema.DONE, "") if run.part_path(clip_id).exists() else \
            (NOT_STARTED, "its rows are missing")
    return (status if status in STATES else schema.FAILED), rec.get(schema.REASON) or ""


def run_status(run: RunDir) -> RunStatus:
    from . import slurm

    meta = run.read_meta()
    if meta is None:
        raise RunDirError(f"{run.path} is not a videmo run directory (no run.json)")
    config_hash = meta["extract_hash"]
    plan = shard_mod.load_plan(run)
    if plan is not None:
        groups = {i: plan.clips(i) for i in range(plan.count)}
    else:
        try:
            ids = [c.clip_id for c in discover(run.config())]
        except CorpusError:  # corpus gone or moved: what the run recorded is all we know
            ids = [r[schema.CLIP_ID] for r in run.records()]
        groups = {None: sorted(ids)}
    shards, problems = [], []
    for index, ids in groups.items():
        st = ShardStatus(index)
        for cid in ids:
            state, reason = clip_state(run, cid, config_hash)
            st.counts[state] += 1
            if state in (schema.FAILED, schema.INTERRUPTED):
                problems.append(Problem(cid, index, state, reason))
        shards.append(st)
    status = RunStatus(str(run.path), shards, problems)
    subs = slurm.submissions(run)
    if subs:
        status.jobs = slurm.job_ids(run)
        queued = slurm.squeue(status.jobs)
        status.squeue_available = queued is not None
        last = subs[-1]
        by_index = {s.index: s for s in shards}
        for q in queued or []:
            if q.job_id == last.get("merge_job"):
                status.merge = f"{q.state} ({q.reason})" if q.reason not in ("None", "") \
                    else q.state
            elif q.job_id == last.get("array_job"):
                for i in _task_indices(q.task):
                    if i in by_index:
                        by_index[i].queue = q.state
    return status


def _task_indices(spec: str) -> list[int]:
    """'3' -> [3]; '1-3%2' or '[1,4]' (pending tasks not yet split off) -> their indices."""
    spec = spec.strip("[]").split("%")[0]
    out = []
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def format_status(st: RunStatus) -> str:
    from . import slurm

    total = st.total
    n = sum(total.values())
    lines = [f"{st.run_dir}: {n} clips: " + ", ".join(
        f"{total[s]} {s.replace('_', ' ')}" for s in STATES)]
    if len(st.shards) > 1 or st.shards[0].index is not None:
        lines.append(f"{'shard':>5}  {'clips':>5}  {'done':>5}  {'failed':>6}  "
                     f"{'interrupted':>11}  {'not started':>11}  slurm")
        for s in st.shards:
            c = s.counts
            lines.append(f"{s.index:>5}  {s.clips:>5}  {c[schema.DONE]:>5}  "
                         f"{c[schema.FAILED]:>6}  {c[schema.INTERRUPTED]:>11}  "
                         f"{c[NOT_STARTED]:>11}  {s.queue or '-'}")
    if st.jobs:
        merge = st.merge or ("-" if st.squeue_available else "unknown (no squeue)")
        lines.append(f"slurm jobs: {', '.join(st.jobs)}; latest merge job: {merge}")
    for p in st.problems:
        where = f" (shard {p.shard})" if p.shard is not None else ""
        lines.append(f"  {p.status}: {p.clip_id}{where}: {p.reason}")
    if st.complete:
        lines.append("complete: every clip is done")
    elif not any(s.queue in slurm.ACTIVE_STATES for s in st.shards):
        lines.append(f"not complete; to finish it: videmo submit --resume {st.run_dir} "
                     f"(SLURM) or rerun videmo extract (local)")
    return "\n".join(lines) + "\n"
