"""A worker's thread budget (issue 32): ``--jobs N`` is N cores, one worker each, and FFmpeg's
decoder threads are bounded by the budget: counted in
/proc/self/task while a real H.264 clip decodes, so ``run.threads`` and ``--jobs`` mean what
they say (unbounded, FFmpeg starts a thread per core in every worker)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from videmo import runtime
from videmo.extract.frames import SourceInfo, sample_frames
from videmo.schema import Clip

from .conftest import make_config

VIDEO = Path(__file__).parent / "data" / "rotated90.mp4"  # H.264: FFmpeg may thread it

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts threads in /proc/self/task")


def threads_while_decoding(tmp_path: Path, monkeypatch, budget: int) -> int:
    """Threads this process gains while the clip decodes with a budget of ``budget``."""
    monkeypatch.setattr(runtime, "_threads", budget)
    cfg = make_config(tmp_path, VIDEO.parent, sampling={"every_n": 1})
    before = len(os.listdir("/proc/self/task"))
    most = before
    for _ in sample_frames(Clip("rotated90", VIDEO), cfg, SourceInfo()):
        most = max(most, len(os.listdir("/proc/self/task")))
    return most - before


def test_a_one_thread_worker_decodes_on_its_own_thread(tmp_path, monkeypatch):
    assert threads_while_decoding(tmp_path, monkeypatch, 1) == 0


def test_a_larger_budget_is_used_so_the_count_sees_decoder_threads(tmp_path, monkeypatch):
    """The control: with 4 threads FFmpeg does start threads of its own (so the count above
    would have seen them), and not more than the budget allows (frame threads + slices)."""
    extra = threads_while_decoding(tmp_path, monkeypatch, 4)
    assert 1 <= extra <= 2 * 4


# ------------------------------------------------ --jobs N is N cores (issue 32, item 2)
@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(runtime, "available_cores", lambda: 4)


def test_jobs_default_to_every_core_and_a_slurm_tasks_cpus(four_cores, monkeypatch):
    assert runtime.jobs_for(None) == 4
    assert runtime.jobs_for(2) == 2
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert runtime.jobs_for(None) == 3
    assert runtime.jobs_for(1) == 1  # asked for: one core, even in a larger task


@pytest.mark.parametrize(("jobs", "configured", "workers", "threads"), [
    (1, None, None, 1),     # --jobs 1: one core
    (2, None, None, 1),     # every worker busy: one thread each
    (None, None, None, 1),  # the default, one worker per core
    (4, None, 2, 2),        # two chunks for four cores: the cores are shared between them
    (4, None, 1, 4),        # one clip: the whole budget in this process
    (4, None, 3, 1),        # 4 // 3
    (2, 3, None, 3),        # run.threads says so
])
def test_a_worker_gets_its_share_of_the_jobs_cores(four_cores, jobs, configured, workers,
                                                    threads):
    assert runtime.threads_for(jobs, configured, workers=workers) == threads


def test_one_clip_with_two_jobs_runs_here_on_both_cores(tmp_path, monkeypatch, caplog):
    """Fewer units than workers: no pool, and the one unit gets the cores (the log says so)."""
    from videmo.execute import local

    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    seen = []
    real = local.process_unit
    monkeypatch.setattr(local, "process_unit",
                        lambda unit, cfg, run_path, threads, *a: seen.append(threads)
                        or real(unit, cfg, run_path, threads, *a))
    cfg = make_config(tmp_path, VIDEO.parent, run={"jobs": None}, sampling={"every_n": 30},
                      corpus={"include": [VIDEO.name]})
    with caplog.at_level("INFO", logger="videmo.execute.local"):
        assert local.extract(cfg, progress=False).done == 1
    assert seen == [2]
    assert "2 job(s) x 2 thread(s)" in caplog.text


def test_slurm_tasks_run_one_worker_per_cpu_unless_told(tmp_path, caplog):
    from videmo.cli.jobs import warn_if_undersubscribed
    from videmo.execute.slurm.submission import task_config

    cfg = make_config(tmp_path, VIDEO.parent, run={"jobs": None}, slurm={"cpus_per_task": 4})
    assert task_config(cfg).run.jobs == 4
    assert not warn_if_undersubscribed(cfg)
    one = make_config(tmp_path, VIDEO.parent, run={"jobs": 1}, slurm={"cpus_per_task": 4})
    assert task_config(one).run.jobs == 1
    with caplog.at_level("WARNING"):
        assert warn_if_undersubscribed(one)
    assert "uses 1 of the 4 CPUs" in caplog.text
    two_threads = make_config(tmp_path, VIDEO.parent, run={"jobs": 2, "threads": 2},
                              slurm={"cpus_per_task": 4})
    assert not warn_if_undersubscribed(two_threads)


@pytest.mark.parametrize(("jobs", "threads", "workers", "left", "each"), [
    (2, 1, 2, 3, 1),  # every worker busy: one thread each
    (2, 1, 2, 1, 2),  # the last unit: both cores
    (4, 1, 4, 3, 1),  # 4 // 3
    (4, 1, 4, 2, 2),
    (4, 2, 2, 1, 4),  # two workers of two threads, one left: all four
])
def test_idle_workers_cores_go_to_the_units_left(jobs, threads, workers, left, each):
    share = runtime.CoreShare(jobs, threads, workers)
    try:
        assert Path(share.path).read_text() == str(threads)
        share.update(left)
        assert Path(share.path).read_text() == str(each)
    finally:
        share.close()
    assert not Path(share.path).exists()


def test_a_worker_follows_the_share_between_batches(tmp_path):
    """A unit whose share says 2 threads loads its models on 1 and goes on with 2; the next
    unit without a share runs on the threads it was given (load_models resets them)."""
    import cv2

    from videmo.execute import local

    share = runtime.CoreShare(jobs=2, threads=1, workers=2)
    share.update(1)
    names = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
    saved = runtime._threads, cv2.getNumThreads(), {n: os.environ.get(n) for n in names}
    cfg = make_config(tmp_path, VIDEO.parent, sampling={"every_n": 30},
                      corpus={"include": [VIDEO.name]})
    try:
        record = local.process_unit(Clip("rotated90", VIDEO), cfg, str(tmp_path / "run"), 1,
                                    share=share.path)
        assert record["status"] == "done"
        assert runtime.current_threads() == 2 and cv2.getNumThreads() == 2
        local.process_unit(Clip("rotated90", VIDEO), cfg, str(tmp_path / "run"), 1, force=True)
        assert runtime.current_threads() == 1 and cv2.getNumThreads() == 1
    finally:
        share.close()
        runtime._threads, threads, env = saved
        cv2.setNumThreads(threads)
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_a_share_that_cannot_be_written_never_stops_a_run(tmp_path, monkeypatch):
    """No usable temporary folder: no share (the workers keep their threads); a write that
    fails (a full /tmp) keeps the share as it was."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    assert runtime.CoreShare.open(2, 1, 2) is None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    share = runtime.CoreShare.open(2, 1, 2)
    try:
        def full(*a):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(runtime.os, "replace", full)
        share.update(1)
        assert share.each == 1 and Path(share.path).read_text() == "1"
    finally:
        monkeypatch.undo()
        share.close()
    assert list(tmp_path.iterdir()) == []


def test_the_parent_lends_the_cores_as_units_end(tmp_path, monkeypatch):
    """A real pool of two workers over three clips: after the second record only one unit is
    left, which may use both cores; the share file is gone after the run. With run.threads
    set, the workers keep it (no share)."""
    from videmo.execute import local

    from .conftest import SAMPLE_CLIPS

    shares = []

    class Recording(runtime.CoreShare):
        def __init__(self, *a):
            self.updates = []
            shares.append(self)
            super().__init__(*a)

        def update(self, running):
            super().update(running)
            self.updates.append((running, self.each))

    monkeypatch.setattr(local, "CoreShare", Recording)
    clips = {"include": [p.name for p in SAMPLE_CLIPS[:3]]}
    cfg = make_config(tmp_path, SAMPLE_CLIPS[0].parent, run={"jobs": 2},
                      sampling={"every_n": 30}, corpus=clips)
    assert local.extract(cfg, progress=False).done == 3
    assert [s.updates for s in shares] == [[(2, 1), (2, 1), (1, 2), (0, 2)]]
    assert not Path(shares[0].path).exists()
    kept = make_config(tmp_path, SAMPLE_CLIPS[0].parent, run={"jobs": 2, "threads": 1},
                       sampling={"every_n": 30}, corpus=clips)
    assert local.extract(kept, force=True, progress=False).done == 3
    assert len(shares) == 1
