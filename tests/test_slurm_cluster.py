"""videmo on a real SLURM cluster: scripts/slurm/local-cluster.sh starts one on this machine.

Needs root and apt (Debian/Ubuntu): the script installs munge + slurm when missing. Elsewhere
these tests skip with the reason; under CI (CI=true) that is a failure, so CI always runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.execute import shard as shard_mod
from videmo.execute import slurm
from videmo.execute.status import run_status
from videmo.store import RunDir

from .conftest import IN_CI, REPO, SAMPLE, SAMPLE_CLIPS, one_installer

SCRIPT = REPO / "scripts" / "slurm" / "local-cluster.sh"
# one cluster for the module: scripts/test.sh runs pytest-xdist with --dist loadfile, so this
# file's tests run in one worker, one after another
pytestmark = pytest.mark.slurm


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (it installs packages and runs daemons)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "no slurmctld and no apt-get to install it"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _why_not()
    if reason:
        if IN_CI:
            pytest.fail(f"CI must run the SLURM tests, but: {reason}")
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "VIDEMO_SLURM_DIR": str(base)}
    with one_installer():  # it installs munge + slurm with apt-get when missing
        subprocess.run(["bash", str(SCRIPT), "start"], env=env, check=True, timeout=900,
                       stdin=subprocess.DEVNULL)
    pids = [int(line.split()[1]) for line in (base / "run" / "pids").read_text().splitlines()]
    assert len(pids) == 3  # munged, slurmctld, slurmd
    try:
        yield base
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    for pid in pids:  # no daemon left behind
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", f"daemon {pid} still runs"


def _job(tmp_path: Path, corpus: Path) -> Path:
    job = tmp_path / "job.yaml"
    job.write_text(
        f"corpus: {{paths: ['{corpus}']}}\n"
        "sampling: {every_n: 5}\n"
        f"run: {{out: '{tmp_path / 'slurm-run'}'}}\n"
        f"report: {{labels: '{SAMPLE / 'labels.csv'}', figures: false}}\n"
        # a 2-core machine: one CPU per task, memory well under the node's
        "slurm: {cpus_per_task: 1, mem: 1500M, merge_mem: 1500M, max_concurrent: 2, "
        "time: '00:10:00'}\n")
    return job


def _wait(run: RunDir, timeout: float = 1200) -> None:
    """Until no job of the run is pending or running (a deadline, not a speed test: a busy
    2-core machine has taken over 5 minutes for one array of the sample corpus)."""
    ids = slurm.job_ids(run)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [q for q in slurm.squeue(ids) or [] if q.state in slurm.ACTIVE_STATES]:
            return
        time.sleep(0.5)
    logs = "\n".join(p.read_text() for p in sorted((run.path / "slurm" / "logs").glob("*")))
    pytest.fail(f"jobs {ids} still queued after {timeout} s; logs:\n{logs}")


def _local_run(tmp_path: Path, job: Path) -> Path:
    out = tmp_path / "local-run"
    assert main(["run", str(job), "--out", str(out), "--no-progress"]) == 0
    return out


def test_array_and_merge_equal_a_local_run(cluster, tmp_path, sample_corpus, capsys):
    corpus = sample_corpus
    job = _job(tmp_path, corpus)
    assert main(["submit", str(job), "--shards", "3"]) == 0
    out = capsys.readouterr().out
    assert "array job" in out and "3 of 3 shard(s)" in out and "merge job" in out
    run = RunDir(tmp_path / "slurm-run")
    _wait(run)
    st = run_status(run)
    assert st.complete and st.merge.startswith("COMPLETED"), st
    assert [s.queue for s in st.shards] == ["COMPLETED"] * 3
    assert sorted(p.name for p in (run.path / "slurm" / "logs").iterdir()) == sorted(
        [f"extract-{slurm.submissions(run)[0]['array_job']}_{i}.out" for i in range(3)]
        + [f"merge-{slurm.submissions(run)[0]['merge_job']}.out"])
    # every shard did its own clips
    hosts = pd.read_csv(run.manifest_path)
    assert (hosts[schema.STATUS] == schema.DONE).all() and len(hosts) == 6

    local = _local_run(tmp_path, job)
    pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path),
                                  pd.read_parquet(local / "frames.parquet"))
    assert (run.path / "report" / "clips.csv").read_text() == \
        (local / "report" / "clips.csv").read_text()


def test_failed_task_merge_reports_and_resume_completes(cluster, tmp_path, sample_corpus,
                                                        capsys):
    """A broken clip fails its task, yet the merge job runs (afterany) and writes the report
    with the failures counted, as a local run does, then ends FAILED: the run is not clean.
    Then the README's recovery on SLURM, with RUN/shards.json kept: one broken file fixed,
    another excluded (--set on --resume), a clip added; the resume submits exactly the shards
    of the fixed and the added clip, and the merged table and report equal a local run."""
    corpus = sample_corpus
    job = _job(tmp_path, corpus)
    victim = corpus / SAMPLE_CLIPS[2].name
    good = victim.read_bytes()
    victim.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096)  # a truncated header
    (corpus / "zz_hopeless.mp4").write_text("not a video\n" * 100)
    assert main(["submit", str(job), "--shards", "3"]) == 0
    run = RunDir(tmp_path / "slurm-run")
    _wait(run)
    capsys.readouterr()

    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out
    plan = shard_mod.load_plan(run)
    assert plan is not None
    assert f"failed: {victim.stem} (shard {plan.assignment[victim.stem]})" in out
    assert f"failed: zz_hopeless (shard {plan.assignment['zz_hopeless']})" in out
    st = run_status(run)
    assert st.shards[plan.assignment[victim.stem]].queue == "FAILED"
    assert st.merge.startswith("FAILED"), st  # it ran, and says the run is not clean
    report = run.path / "report"
    assert f"merge job {slurm.submissions(run)[0]['merge_job']} FAILED: it wrote the report " \
           f"of the clips done, {report / 'report.html'} (the 2 not done count as wrong" in out
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["complete"] is False and metrics["overall"]["failed"] == 2
    assert sorted(metrics["failed_clips"]) == sorted([victim.stem, "zz_hopeless"])
    clips = pd.read_csv(report / "clips.csv").set_index("filename")
    assert len(clips) == 7 and clips.loc["zz_hopeless", schema.STATUS] == schema.FAILED
    assert (report / "report.html").exists() and len(pd.read_parquet(run.frames_path)) > 0
    merge_log = run.path / "slurm" / "logs" / f"merge-{slurm.submissions(run)[0]['merge_job']}.out"
    assert "not complete: 2 of 7 clips are not done (2 failed, 0 not extracted)" in \
        merge_log.read_text()

    victim.write_bytes(good)  # the cause is removed
    shutil.copy(SAMPLE_CLIPS[0], corpus / "added.flv")
    exclude = "corpus.exclude=[zz_hopeless*]"
    assert main(["submit", "--resume", str(run.path), "--set", exclude]) == 0
    kept = shard_mod.load_plan(run)
    assert kept is not None and "zz_hopeless" not in kept.assignment
    assert {c: s for c, s in kept.assignment.items() if c != "added"} == \
        {c: s for c, s in plan.assignment.items() if c != "zz_hopeless"}
    expected = sorted({kept.assignment[victim.stem], kept.assignment["added"]})
    assert f"{len(expected)} of 3 shard(s)" in capsys.readouterr().out
    assert slurm.submissions(run)[-1]["shards"] == expected
    _wait(run)
    st = run_status(run)
    assert st.complete and st.merge.startswith("COMPLETED"), st
    manifest = pd.read_csv(run.manifest_path)
    assert (manifest[schema.STATUS] == schema.DONE).all()  # no stale failed record
    assert sorted(manifest[schema.CLIP_ID]) == sorted(
        [p.stem for p in SAMPLE_CLIPS] + ["added"])

    (tmp_path / "local").mkdir()
    local_job = _job(tmp_path / "local", corpus)
    local = tmp_path / "local-run"
    assert main(["run", str(local_job), "--out", str(local), "--no-progress",
                 "--set", exclude]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path),
                                  pd.read_parquet(local / "frames.parquet"))
    assert (run.path / "report" / "clips.csv").read_text() == \
        (local / "report" / "clips.csv").read_text()
    assert "added" in (run.path / "report" / "clips.csv").read_text()


def test_task_killed_mid_run_resumes(cluster, tmp_path, sample_corpus, clip_frames, capsys):
    """scancel sends what a time limit sends (SIGTERM, then SIGKILL after KillWait): finished
    clips stay, the rest is noted, the merge reports and fails, and --resume completes the
    run."""
    import cv2

    from .conftest import write_video

    corpus = sample_corpus
    frames = [cv2.resize(f, (320, 240)) for f in clip_frames["1001_DFA_NEU_XX"]] * 6
    write_video(corpus / "zz_long.mp4", frames, fps=30)  # last in its shard, ~6 s of work
    job = _job(tmp_path, corpus)
    # every 2nd frame: ~1 s a sample clip, so the 4 after the first 2 and zz_long keep the
    # task at work for seconds after scancel
    job.write_text(job.read_text().replace("{every_n: 5}", "{every_n: 2}"))
    assert main(["submit", str(job), "--shards", "1"]) == 0
    run = RunDir(tmp_path / "slurm-run")
    array_job = slurm.submissions(run)[0]["array_job"]
    deadline = time.monotonic() + 900
    while sum(r[schema.STATUS] == schema.DONE for r in run.records()) < 2:
        assert time.monotonic() < deadline, "no clip finished"
        time.sleep(0.2)
    subprocess.run(["scancel", array_job], check=True)
    _wait(run)
    capsys.readouterr()
    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out
    # the task caught SIGTERM: the clip in progress is abandoned and noted, not half-written
    assert "interrupted: zz_long (shard 0): run interrupted by SIGTERM" in out, out
    st = run_status(run)
    assert st.merge.startswith("FAILED") and st.shards[0].counts[schema.DONE] >= 2, st
    assert json.loads((run.path / "report" / "metrics.json").read_text())["complete"] is False
    # had the task been SIGKILLed on another node, its shard lock would be left behind, and no
    # process could prove it stale from here: submit --resume clears the locks of ended jobs
    assert not list(run.locks.glob("*.lock"))  # SIGTERM: the task released its lock
    (run.locks / "shard-0.lock").write_text(json.dumps(
        {"host": "another-node", "pid": 4321, "since": "2026-01-01T00:00:00+00:00",
         "scope": "shard 0", "command": "videmo extract", "slurm_job": f"{array_job}_0"}))
    assert main(["submit", "--resume", str(run.path)]) == 0
    _wait(run)
    st = run_status(run)
    assert st.complete and st.merge.startswith("COMPLETED"), st
    df = pd.read_parquet(run.frames_path)
    assert len(df[df[schema.CLIP_ID] == "zz_long"]) == len(frames[::2])
    assert not df.duplicated([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX]).any()


def test_compare_on_slurm_equals_compare_here(cluster, tmp_path, sample_corpus, capsys):
    """`videmo compare --slurm`: Haar vs MTCNN, each with the vote and the mean (the mean rows
    share their detector's extraction): two arrays, two merge jobs and one table job that
    waits for both. Its table equals `videmo compare` run here (but for the seconds)."""
    from videmo.execute import executor as ex

    base = _job(tmp_path, sample_corpus)
    base.write_text(base.read_text().replace("{every_n: 5}", "{every_n: 15}")
                    .replace("max_concurrent: 2,", "max_concurrent: 2, shards: 2,"))
    job = tmp_path / "cmp.yaml"
    job.write_text(f"compare:\n  base: job.yaml\n  out: {tmp_path / 'on-slurm'}\n"
                   f"  vary:\n    faces.detector: [haar, mtcnn]\n"
                   f"    report.aggregate: [majority, mean]\n")
    t0 = time.monotonic()
    assert main(["compare", str(job), "--slurm"]) == 0
    out = capsys.readouterr().out
    assert out.count("array job") == 2 and out.count("shares the extraction") == 2
    final = slurm.SlurmJob(tmp_path / "on-slurm", out.split("compare job ")[1].split(":")[0])
    assert final.wait(timeout=1200, poll=1.0) == ex.COMPLETED, \
        (tmp_path / "on-slurm" / "slurm" / "logs").iterdir()
    print(f"compare --slurm: {time.monotonic() - t0:.0f} s from submission to the table")
    for name in ("detector-haar_aggregate-majority", "detector-mtcnn_aggregate-majority"):
        job_of_run = ex.job_of(RunDir(tmp_path / "on-slurm" / name))
        assert isinstance(job_of_run, slurm.SlurmJob)
        assert job_of_run.state() in (ex.COMPLETED, ex.UNKNOWN)
        assert run_status(RunDir(tmp_path / "on-slurm" / name)).complete

    assert main(["compare", str(job), "--out", str(tmp_path / "here"), "--no-progress"]) == 0
    cluster_table, local_table = (
        pd.read_csv(tmp_path / d / "comparison.csv").drop(columns="seconds_per_clip")
        for d in ("on-slurm", "here"))
    pd.testing.assert_frame_equal(cluster_table, local_table)
    assert cluster_table["paired_clips"].dropna().tolist() == [6, 6, 6]


def test_one_long_recording_over_four_array_tasks(cluster, tmp_path, capsys):
    """Issue 21, item 4: one recording (the sample clips concatenated with ffmpeg, 12.7 s) cut
    into 2-second chunks and dealt over 4 array tasks; the merge job's table equals a local
    unchunked run's."""
    root = tmp_path / "corpus"
    root.mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in SAMPLE_CLIPS))
    subprocess.run(["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
                    str(root / "debate.mp4")], check=True)
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: ['{root}']}}\nsampling: {{every_n: 5}}\n"
                   f"run: {{out: '{tmp_path / 'slurm-run'}', chunk_s: 2.0}}\n"
                   "report: {figures: false}\n"
                   "slurm: {cpus_per_task: 1, mem: 1500M, merge_mem: 1500M, max_concurrent: 2, "
                   "time: '00:10:00'}\n")
    assert main(["submit", str(job), "--shards", "4"]) == 0
    assert "4 of 4 shard(s)" in capsys.readouterr().out
    run = RunDir(tmp_path / "slurm-run")
    plan = shard_mod.load_plan(run)
    assert set(plan.chunks["debate"].values()) == {0, 1, 2, 3}
    _wait(run)
    st = run_status(run)
    assert st.complete and st.merge.startswith("COMPLETED"), st
    local = tmp_path / "local-run"
    assert main(["run", str(job), "--out", str(local), "--set", "run.chunk_s=null",
                 "--no-progress"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path),
                                  pd.read_parquet(local / "frames.parquet"))
