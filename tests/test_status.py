"""`videmo status`: counts per state, failed clips with reasons, truncated clips, the command
that finishes the run; for SLURM runs the scheduler's word on a task that died before videmo
started. SLURM is faked: `sbatch`, `squeue`, `scontrol` and `sacct` are small scripts on PATH
that print what a real cluster prints, and the output is compared with a golden text."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.execute import shard as shard_mod
from videmo.execute import slurm
from videmo.store import RunDir
from videmo.store.integrity import sign_record

from .conftest import SAMPLE_CLIPS


def _job(tmp_path: Path, corpus: Path, extra: str = "") -> Path:
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: ['{corpus}']}}\nsampling: {{every_n: 50}}\n"
                   f"run: {{out: '{tmp_path / 'run'}'}}\n{extra}")
    return job


def test_local_run_counts_lists_and_says_how_to_finish(tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE_CLIPS[0], corpus / SAMPLE_CLIPS[0].name)
    shutil.copy(SAMPLE_CLIPS[1], corpus / SAMPLE_CLIPS[1].name)
    for i in range(12):
        (corpus / f"bad{i:02d}.mp4").write_text("not a video\n")
    job = _job(tmp_path, corpus)
    argv = ["extract", str(job), "--no-progress"]
    monkeypatch.setattr("sys.argv", ["/venv/bin/videmo", *argv])  # as the console script
    assert main(argv) == 1
    run = RunDir(tmp_path / "run")
    # a clip added to the corpus since: never started, so pending
    shutil.copy(SAMPLE_CLIPS[2], corpus / SAMPLE_CLIPS[2].name)
    # a clip whose file fell short of what it announced (the manifest's truncated column)
    rec_path = run.record_path(SAMPLE_CLIPS[1].stem)
    rec = json.loads(rec_path.read_text())
    rec.update({schema.TRUNCATED: True, schema.FRAMES_DECODED: 31,
                schema.FRAMES_EXPECTED: 67})
    rec_path.write_text(json.dumps(sign_record(rec)))  # as extract would have written it
    capsys.readouterr()

    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out
    assert f"{run.path}: 15 clips: 2 done, 12 failed, 0 interrupted, 1 pending\n" in out
    assert "failed clips (12):\n" in out
    reason = "cannot open as video (not a video, truncated or unsupported codec)"
    assert out.count("  failed: ") == 10 and f"  failed: bad00: {reason}\n" in out
    assert "bad10" not in out
    assert f"  ... and 2 more: videmo status {run.path} --clips lists them all\n" in out
    assert f"  truncated: {SAMPLE_CLIPS[1].stem}: decoded 31 of 67 frames\n" in out
    assert f"not complete; to finish it: rerun the same command: videmo extract {job} " \
           f"--no-progress\n" in out
    assert "slurm" not in out and "submit --resume" not in out

    assert main(["status", str(run.path), "--clips"]) == 1
    out = capsys.readouterr().out
    assert out.count("  failed: ") == 12 and "bad11" in out and "more" not in out


def test_a_record_of_another_config_is_pending_not_interrupted(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in SAMPLE_CLIPS[:2]:
        shutil.copy(p, corpus / p.name)
    assert main(["extract", str(_job(tmp_path, corpus)), "--no-progress"]) == 0
    run = RunDir(tmp_path / "run")
    rec_path = run.record_path(SAMPLE_CLIPS[0].stem)
    rec_path.write_text(json.dumps(sign_record({**json.loads(rec_path.read_text()),
                                                schema.CONFIG_HASH: "0ther"})))
    capsys.readouterr()
    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out
    assert "2 clips: 1 done, 0 failed, 0 interrupted, 1 pending" in out
    assert "not started" not in out and "interrupted:" not in out


# ------------------------------------------------------------------ SLURM, faked
FAKE_SBATCH = """#!/bin/sh
# prints the next job id (1001, 1002, ...), as `sbatch --parsable` does
n=$(cat "$0.count" 2>/dev/null || echo 1000); n=$((n + 1)); echo $n > "$0.count"; echo $n
"""
FAKE_SQUEUE = "#!/bin/sh\nexit 0\n"  # nothing queued any more
SCONTROL_FORGOT = ("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\n"
                   "exit 1\n")
SACCT = """#!/bin/sh
cat <<'EOF'
1001_0|COMPLETED|0:0
1001_1|FAILED|127:0
1002|FAILED|127:0
EOF
"""
SACCT_DISABLED = ("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\n"
                  "exit 1\n")
_TASK = "JobId={} ArrayJobId=1001 ArrayTaskId={} JobName=videmo-extract JobState={} " \
        "Reason={} ExitCode={}"
SCONTROL_REMEMBERS = f"""#!/bin/sh
case "$4" in
1001) cat <<'EOF'
{_TASK.format(1003, 0, "COMPLETED", "None", "0:0")}
{_TASK.format(1004, 1, "FAILED", "NonZeroExitCode", "127:0")}
EOF
;;
1002) echo 'JobId=1002 JobName=videmo-merge JobState=FAILED Reason=NonZeroExitCode ExitCode=127:0';;
*) exit 1;;
esac
"""
TASK_LOG = """+ module load python/3.11
/var/spool/slurmd/job01004/slurm_script: line 16: module: command not found
"""
MERGE_LOG = """+ module load python/3.11
/var/spool/slurmd/job01002/slurm_script: line 17: module: command not found
"""

GOLDEN = Path(__file__).parent / "data" / "golden"


def _tools(bin_dir: Path, **scripts: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def failed_task_run(tmp_path, sample_corpus, monkeypatch, capsys) -> RunDir:
    """A submitted run (2 shards, array 1001, merge 1002): shard 0 ran and finished, the task of
    shard 1 died on its setup line before videmo started, and so did the merge job, which ran
    when the array had ended (afterany)."""
    bin_dir = tmp_path / "bin"
    _tools(bin_dir, sbatch=FAKE_SBATCH, squeue=FAKE_SQUEUE, scontrol=SCONTROL_FORGOT,
           sacct=SACCT_DISABLED)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    job = _job(tmp_path, sample_corpus, "slurm: {setup: ['module load python/3.11']}\n")
    assert main(["submit", str(job), "--shards", "2"]) == 0
    run = RunDir(tmp_path / "run")
    assert [(s["array_job"], s["merge_job"]) for s in slurm.submissions(run)] == \
        [("1001", "1002")]
    assert main(["extract", str(run.path / "slurm" / "config.yaml"), "--shard", "0/2",
                 "--no-progress"]) == 0
    (run.path / "slurm" / "logs" / "extract-1001_1.out").write_text(TASK_LOG)
    (run.path / "slurm" / "logs" / "merge-1002.out").write_text(MERGE_LOG)
    capsys.readouterr()
    return run


@pytest.mark.parametrize(("tools", "golden"), [
    ({"sacct": SACCT}, "status-sacct.txt"),  # SLURM forgot the jobs; accounting remembers
    ({"scontrol": SCONTROL_REMEMBERS}, "status-scontrol.txt"),  # within MinJobAge
])
def test_slurm_task_that_failed_before_videmo_started(failed_task_run, tmp_path, capsys,
                                                      tools, golden):
    _tools(tmp_path / "bin", **tools)
    run = failed_task_run
    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out.replace(str(run.path), "RUN")
    if os.environ.get("VIDEMO_UPDATE_GOLDEN"):  # on purpose only, as the sbatch goldens
        (GOLDEN / golden).write_text(out)
    assert out == (GOLDEN / golden).read_text()


def test_slurm_run_without_scheduler_answers_still_says_submit_resume(failed_task_run,
                                                                      tmp_path, capsys):
    run = failed_task_run
    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out
    assert "3 done, 0 failed, 0 interrupted, 3 pending" in out
    assert "array task" not in out  # nothing is claimed that SLURM did not say
    assert out.endswith(f"not complete; to finish it: videmo submit --resume {run.path}\n")


SACCT_MERGE_FAILED = """#!/bin/sh
cat <<'EOF'
1001_{good}|COMPLETED|0:0
1001_{bad}|FAILED|1:0
1002|FAILED|1:0
EOF
"""


def test_merge_job_reports_a_failed_clip_and_fails(tmp_path, sample_corpus, monkeypatch,
                                                   capsys):
    """What the merge job does after a task failed (afterany): `videmo report RUN
    --fail-incomplete` writes the report with the failed clip counted and exits 1; it first
    clears the lock a task of its array left behind (killed on another node: stale, but no
    process here can prove it); `videmo status` then says where the report is."""
    bin_dir = tmp_path / "bin"
    _tools(bin_dir, sbatch=FAKE_SBATCH, squeue=FAKE_SQUEUE, scontrol=SCONTROL_FORGOT)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    (sample_corpus / "zz_broken.mp4").write_text("not a video\n")
    assert main(["submit", str(_job(tmp_path, sample_corpus)), "--shards", "2"]) == 0
    run = RunDir(tmp_path / "run")
    config = str(run.path / "slurm" / "config.yaml")
    plan = shard_mod.load_plan(run)
    assert plan is not None
    bad = plan.assignment["zz_broken"]
    _tools(bin_dir, sacct=SACCT_MERGE_FAILED.format(good=1 - bad, bad=bad))
    assert [main(["extract", config, "--shard", f"{i}/2", "--no-progress"])
            for i in range(2)] == [int(i == bad) for i in range(2)]
    lock = run.locks / f"shard-{bad}.lock"
    lock.write_text(json.dumps({"host": "another-node", "pid": 4321, "scope": f"shard {bad}",
                                "since": "2026-01-01T00:00:00+00:00",
                                "command": "videmo extract", "slurm_job": f"1001_{bad}"}))
    capsys.readouterr()

    # by hand, the lock is respected: videmo cannot know that its task has ended
    assert main(["report", str(run.path), "--fail-incomplete"]) == 2
    assert "another-node" in capsys.readouterr().err and lock.exists()
    # the merge job of that array knows: afterany
    monkeypatch.setenv("SLURM_JOB_ID", "1002")
    assert main(["report", str(run.path), "--fail-incomplete"]) == 1
    assert not lock.exists()
    out = capsys.readouterr().out
    assert "not complete: 1 of 7 clips are not done (1 failed, 0 not extracted)" in out
    metrics = json.loads((run.path / "report" / "metrics.json").read_text())
    assert metrics["complete"] is False and metrics["overall"]["failed"] == 1
    assert list(metrics["failed_clips"]) == ["zz_broken"]
    assert (run.path / "report" / "report.html").exists()
    assert len(pd.read_parquet(run.frames_path)[schema.CLIP_ID].unique()) == 6
    # without the flag a report of the same run exits 0 (it is written all the same)
    monkeypatch.delenv("SLURM_JOB_ID")
    assert main(["report", str(run.path)]) == 0
    capsys.readouterr()

    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out
    assert "latest merge job: FAILED\n" in out
    assert (f"merge job 1002 FAILED: it wrote the report of the clips done, "
            f"{run.path / 'report' / 'report.html'} (the 1 not done count as wrong") in out
    assert f"failed: zz_broken (shard {bad}): cannot open as video" in out
    assert out.endswith(f"not complete; to finish it: videmo submit --resume {run.path}\n")
