"""`videmo compare` beyond the table's own columns: each row against a reference row (paired
statistics, checked on hand-computed data), the executor interface it runs on (local jobs,
SLURM jobs read back), and `compare --slurm` with SLURM faked: the sbatch graph it submits,
then its scripts run here one after another, as the cluster would run them."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videmo import schema
from videmo.cli import main
from videmo.config import ConfigError
from videmo.evaluate import stats
from videmo.execute import compare as runner
from videmo.execute import executor as ex
from videmo.execute import slurm
from videmo.report.compare import clip_verdicts, paired, references
from videmo.store import RunDir
from videmo.store.integrity import sign_record

from .conftest import REPO, SAMPLE, make_config

GOLDEN = REPO / "tests" / "data" / "golden"


# ------------------------------------------------------------------ paired statistics
@pytest.mark.parametrize(("only_a", "only_b", "both", "p"), [
    (0, 6, 3, 2 * 0.5 ** 6),  # every discordant clip goes b's way: 2 x (1/2)^6
    (1, 5, 0, 14 / 64),  # P(X <= 1) + P(X >= 5), X ~ Bin(6, 1/2): (1 + 6 + 6 + 1) / 64
    (2, 2, 4, 1.0),
    (0, 0, 5, 1.0),  # no discordant clip: nothing tells them apart
])
def test_mcnemar_exact_on_hand_counts(only_a, only_b, both, p):
    ra = np.array([True] * only_a + [False] * only_b + [True] * both + [False] * 3)
    rb = np.array([False] * only_a + [True] * only_b + [True] * both + [False] * 3)
    assert stats.mcnemar_exact(ra, rb) == pytest.approx(p)
    # learn's test (predictions against golden labels) is the same test
    y = np.array(["Pos"] * len(ra), dtype=object)
    assert stats.mcnemar_p(y, np.where(ra, "Pos", "Neg"), np.where(rb, "Pos", "Neg")) == \
        pytest.approx(p)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ([1, 1, 1, 1], [0, 0, 0, 0], (1.0, 1.0, 1.0)),  # every resample: a right, b wrong
    ([1, 0, 1, 0], [1, 0, 1, 0], (0.0, 0.0, 0.0)),  # the same verdicts: no difference
    ([0, 0, 0], [1, 1, 1], (-1.0, -1.0, -1.0)),
])
def test_paired_difference_when_every_resample_agrees(a, b, expected):
    assert stats.paired_difference(np.array(a, bool), np.array(b, bool)) == \
        pytest.approx(expected)


def test_paired_difference_is_the_bootstrap_of_the_paired_clips():
    """Recounted by hand: the same draws (default_rng(0), 1000 x n clip indices), each
    resample's mean of a-right minus b-right, its 2.5 and 97.5 percentiles."""
    a = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 1], bool)
    b = np.array([1, 0, 0, 0, 0, 1, 1, 1, 0, 1], bool)
    diff, lo, hi = stats.paired_difference(a, b)
    assert diff == pytest.approx((7 - 5) / 10)
    draws = np.random.default_rng(stats.BOOTSTRAP_SEED).integers(0, 10, (1000, 10))
    by_hand = (a[draws].astype(int) - b[draws].astype(int)).mean(axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(by_hand, [0.025, 0.975])))
    assert lo < diff < hi
    # pairs stay together: two classifiers that err on the same clips differ by nothing
    same = stats.paired_difference(a, a)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="at least one clip"):
        stats.paired_difference(np.array([], bool), np.array([], bool))


def _verdicts(rows: dict[str, tuple[str, bool]]) -> pd.DataFrame:
    return pd.DataFrame({schema.GOLDEN: [g for g, _ in rows.values()],
                         schema.CORRECT: [c for _, c in rows.values()]}, index=list(rows))


def test_paired_counts_only_the_clips_both_labelled_alike():
    ref = _verdicts({"a": ("Pos", True), "b": ("Neg", False), "c": ("Neut", True),
                     "d": ("Pos", False), "only_ref": ("Pos", True)})
    row = _verdicts({"a": ("Pos", False), "b": ("Neg", True), "c": ("Neut", True),
                     "d": ("Neg", True),  # another label file says otherwise: left out
                     "only_row": ("Pos", False)})
    got = paired(row, ref)
    assert got["paired_clips"] == 3  # a, b, c
    assert got["accuracy_diff"] == 0.0  # row: b, c right; reference: a, c right
    assert got["mcnemar_p"] == 1.0  # one discordant clip each way
    none = paired(_verdicts({"x": ("Pos", True)}), ref)
    assert none["paired_clips"] == 0 and none["accuracy_diff"] is None \
        and none["mcnemar_p"] is None


@pytest.mark.parametrize(("names", "datasets", "reference", "settings", "expected"), [
    (["a", "b", "c"], ["d"] * 3, None, None, [None, "a", "a"]),
    (["a", "b", "c"], ["d"] * 3, "b", None, ["b", None, "b"]),
    # the study's job: detector x dataset; each dataset's rows against the reference's detector
    (["haar-19", "haar-20", "mtcnn-19", "mtcnn-20"], ["19", "20", "19", "20"], None,
     ["haar", "haar", "mtcnn", "mtcnn"], [None, None, "haar-19", "haar-20"]),
    (["haar-19", "haar-20", "mtcnn-19", "mtcnn-20"], ["19", "20", "19", "20"], "mtcnn-19",
     ["haar", "haar", "mtcnn", "mtcnn"], ["mtcnn-19", "mtcnn-20", None, None]),
    # --runs (no settings): the first row of each dataset
    (["x", "y", "z", "w"], ["19", "20", "20", "19"], None, None, [None, None, "y", "x"]),
])
def test_references_pair_rows_within_their_dataset(names, datasets, reference, settings,
                                                   expected):
    assert references(names, datasets, reference, settings) == expected


def test_an_unknown_reference_names_the_rows():
    with pytest.raises(ConfigError, match="no row named 'nope'; the rows: a, b"):
        references(["a", "b"], ["d", "d"], "nope")


# ------------------------------------------------------------------ comparison jobs
def _base(tmp_path: Path, extra: str = "") -> Path:
    base = tmp_path / "base.yaml"
    base.write_text(f"corpus: {{paths: [{SAMPLE}], include: ['*HAP*', '*ANG*', '*NEU*']}}\n"
                    f"sampling: {{every_n: 15}}\n"
                    f"report: {{labels: {SAMPLE / 'labels.csv'}, figures: false}}\n{extra}")
    return base


def test_job_keys_are_checked_and_documented(tmp_path):
    _base(tmp_path)
    job = tmp_path / "cmp.yaml"
    job.write_text("compare:\n  base: base.yaml\n  executer: slurm\n  vary: {a.b: [1]}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'compare.executer' \(did you mean "
                                          r"'compare.executor'\?\)"):
        runner.load_job(job)
    job.write_text("compare:\n  base: base.yaml\n  executor: pbs\n  vary: {a.b: [1]}\n")
    with pytest.raises(ConfigError, match="compare.executor is 'pbs'; allowed: local, slurm"):
        runner.load_job(job)
    job.write_text("compare:\n  base: base.yaml\n  reference: mtcnn\n"
                   "  vary: {faces.detector: [haar, mtcnn]}\n")
    with pytest.raises(ConfigError, match="compare.reference 'mtcnn' is not a variant; the "
                                          "variants: detector-haar, detector-mtcnn"):
        runner.load_job(job)
    doc = (REPO / "docs" / "config.md").read_text()
    assert runner.job_reference_markdown() in doc, \
        "docs/config.md is stale: regenerate with `videmo config reference`"


# ------------------------------------------------------------------ executors and jobs
def test_local_executor_hands_back_ended_jobs_that_read_back_from_disk(tmp_path):
    cfg = make_config(tmp_path, SAMPLE, corpus={"include": ["*HAP*"]},
                      sampling={"every_n": 30}, run={"out": str(tmp_path / "run")})
    job = ex.LocalExecutor(progress=False).map_clips(cfg, report=False)
    assert job.state() == ex.COMPLETED and job.wait() == ex.COMPLETED and job.tasks() is None
    assert job.summary.done == 1 and job.report is None and job.job_ids() == []
    back = ex.job_of(RunDir(tmp_path / "run"))
    assert isinstance(back, ex.LocalJob) and back.state() == ex.COMPLETED
    assert back.resume_command() is None  # a local run finishes by rerunning its command
    rec = next((tmp_path / "run" / "clips").glob("*.json"))
    rec.write_text(json.dumps(sign_record({**json.loads(rec.read_text()),
                                           schema.STATUS: schema.FAILED})))
    assert back.state() == ex.FAILED
    again = ex.LocalExecutor(progress=False).resume(tmp_path / "run")  # redoes the failed clip
    assert again.summary.done == 1 and again.state() == ex.COMPLETED
    assert again.report is not None and (tmp_path / "run" / "report" / "metrics.json").exists()


class _SerialJob(ex.Job):
    """A job of the test's executor: it has ended when handed back; its state is the clips'."""

    def __init__(self, run_dir: Path, value=None):
        self.run_dir, self.value = run_dir, value

    def state(self) -> str:
        return ex.LocalJob(self.run_dir).state() if self.value is None else ex.COMPLETED

    def result(self, timeout=None):
        return self.value


class _SerialExecutor(ex.Executor):
    """An executor no module knows: one clip after another in this process, logging every
    call, through the unit of work and the run directory's own writer."""

    calls: list[str] = []

    def map_clips(self, cfg, *, report=True, command=None, **options):
        from videmo.execute.local import extract
        from videmo.report.build import build_report

        self.calls.append(f"map {cfg.out_dir.name}")
        summary = extract(cfg, jobs=1, force=self.force, progress=False,
                          command=command or self.command)
        if report:
            build_report(summary.run_dir, cfg, frames=summary.table)
        return _SerialJob(summary.run_dir.path)

    def resume(self, run_dir, overrides=None):
        return self.map_clips(RunDir(run_dir).config())

    def after(self, jobs, step):
        states = [job.wait() for job in jobs]
        self.calls.append(f"after {step.name} {states}")
        return _SerialJob(step.out, step.fn())


def test_an_executor_registered_in_a_test_runs_a_comparison(tmp_path, capsys):
    """One registry line, no other module edited: `compare.executor: serial` maps both
    detectors' runs through it, then its `after` writes the table that `videmo compare`
    prints; the runs read back as finished jobs."""
    _base(tmp_path)
    job = tmp_path / "cmp.yaml"
    job.write_text(f"compare:\n  base: base.yaml\n  out: {tmp_path / 'cmp'}\n"
                   f"  executor: serial\n  vary: {{faces.detector: [haar, mtcnn]}}\n")
    with pytest.raises(ConfigError, match="compare.executor is 'serial'; allowed: local, slurm"):
        runner.load_job(job)
    ex.EXECUTORS.register("serial", _SerialExecutor)
    _SerialExecutor.calls = []
    try:
        assert main(["compare", str(job), "--no-progress"]) == 0
    finally:
        ex.EXECUTORS.pop("serial")
    assert _SerialExecutor.calls == ["map detector-haar", "map detector-mtcnn",
                                     "after compare ['COMPLETED', 'COMPLETED']"]
    said = capsys.readouterr().out
    assert "detector-haar" in said and "detector-mtcnn" in said
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert sorted(table["run"]) == ["detector-haar", "detector-mtcnn"]
    back = ex.job_of(RunDir(tmp_path / "cmp" / "detector-mtcnn"))
    assert back.state() == ex.COMPLETED and back.tasks() is None


@pytest.mark.parametrize(("slurm_state", "state"), [
    ("PENDING", ex.PENDING), ("RUNNING", ex.RUNNING), ("COMPLETING", ex.RUNNING),
    ("COMPLETED", ex.COMPLETED), ("FAILED", ex.FAILED), ("OUT_OF_MEMORY", ex.FAILED),
    ("CANCELLED", ex.INTERRUPTED), ("TIMEOUT", ex.INTERRUPTED), (None, ex.UNKNOWN),
])
def test_slurm_states_as_job_states(slurm_state, state):
    assert slurm.job_state(slurm_state) == state


class _Forever(ex.Job):
    run_dir = Path("/nowhere")

    def state(self) -> str:
        return ex.RUNNING


def test_wait_gives_up_at_its_deadline_naming_the_job():
    with pytest.raises(TimeoutError, match="still RUNNING after 0 s"):
        _Forever().wait(timeout=0.05, poll=0.01)


FAKE_SBATCH = """#!/bin/sh
# prints the next job id (1001, 1002, ...), as `sbatch --parsable` does; keeps the scripts
n=$(cat "$0.count" 2>/dev/null || echo 1000); n=$((n + 1)); echo $n > "$0.count"
for a; do script=$a; done; cp "$script" "$0.$n"; echo $n
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"sbatch": FAKE_SBATCH, "squeue": "#!/bin/sh\nexit 0\n"}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755 | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _dependency(script: str) -> str | None:
    m = re.search(r"^#SBATCH --dependency=(\S+)$", script, flags=re.M)
    return m[1] if m else None


def test_compare_slurm_submits_one_array_per_extraction_and_one_table_job(
        tmp_path, fake_slurm, capsys):
    """detector x aggregate: two extractions (arrays 1001, 1003 with merges 1002, 1004), the
    two `mean` variants share them, and one job waits for both merges to write the tables.
    Then the submitted scripts are run here, in the order SLURM would run them."""
    _base(tmp_path, "slurm: {shards: 2, command: '" + sys.executable + " -m videmo'}\n")
    job = tmp_path / "cmp.yaml"
    out = tmp_path / "cmp"
    job.write_text(f"compare:\n  base: base.yaml\n  out: {out}\n  executor: slurm\n"
                   f"  reference: detector-haar_aggregate-majority\n"
                   f"  vary:\n    faces.detector: [haar, mtcnn]\n"
                   f"    report.aggregate: [majority, mean]\n")
    assert main(["compare", str(job)]) == 0
    said = capsys.readouterr().out
    assert f"variant detector-haar_aggregate-majority: array job 1001 (2 of 2 shard(s)), " \
           f"merge job 1002 -> {out / 'detector-haar_aggregate-majority'}" in said
    assert "variant detector-haar_aggregate-mean: shares the extraction of " \
           "detector-haar_aggregate-majority" in said
    assert f"compare job 1005: the tables, when every merge job has ended -> " \
           f"{out / 'comparison.csv'}" in said
    scripts = {int(p.suffix[1:]): p.read_text() for p in fake_slurm.glob("sbatch.1*")}
    assert sorted(scripts) == [1001, 1002, 1003, 1004, 1005]
    assert [_dependency(scripts[i]) for i in sorted(scripts)] == [
        None, "afterany:1001", None, "afterany:1003", "afterany:1002:1004"]
    assert "--array=0-1" in scripts[1001] and " extract " in scripts[1001]
    assert scripts[1005].rstrip().endswith(
        f"compare {job.resolve()} --out {out.resolve()} --collect")
    assert (out / "slurm" / "compare.sbatch").read_text() == scripts[1005]
    for first in ("detector-haar_aggregate-majority", "detector-mtcnn_aggregate-majority"):
        assert slurm.submissions(RunDir(out / first))[0]["merge_job"] in ("1002", "1004")
    assert not (out / "detector-haar_aggregate-mean").exists()  # shares; nothing submitted

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    for job_id in (1001, 1003):
        for task in (0, 1):
            subprocess.run(["bash", str(fake_slurm / f"sbatch.{job_id}")], check=True,
                           env={**env, "SLURM_ARRAY_TASK_ID": str(task),
                                "SLURM_ARRAY_TASK_COUNT": "2"}, capture_output=True)
    for job_id in (1002, 1004, 1005):
        subprocess.run(["bash", str(fake_slurm / f"sbatch.{job_id}")], check=True, env=env,
                       capture_output=True)
    table = pd.read_csv(out / "comparison.csv").set_index("run")
    assert list(table["classifier"]) == ["majority", "mean", "majority", "mean"]
    assert pd.isna(table.loc["detector-haar_aggregate-majority", "reference"])  # it is
    assert set(table["reference"].dropna()) == {"detector-haar_aggregate-majority"}
    assert (table["paired_clips"].dropna() == 3).all()
    mean = out / "detector-mtcnn_aggregate-mean" / "report" / "clips.csv"
    assert mean.exists()  # the table job wrote the shared variant's report
    assert isinstance(ex.job_of(RunDir(out / "detector-mtcnn_aggregate-majority")),
                      slurm.SlurmJob)


def test_a_slurm_job_cancels_every_part_it_submitted(tmp_path, fake_slurm):
    """Job.cancel: scancel with the array and the merge job of every submission of the run."""
    (fake_slurm / "scancel").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'cancelled'}\n")
    (fake_slurm / "scancel").chmod(0o755)
    cfg = make_config(tmp_path, SAMPLE, corpus={"include": ["*HAP*"]},
                      run={"out": str(tmp_path / "run")},
                      slurm={"command": f"{sys.executable} -m videmo"})
    job = slurm.SlurmExecutor().map_clips(cfg)
    assert job.job_ids() == ["1001", "1002"] and job.tasks() is job
    job.cancel()
    assert (tmp_path / "cancelled").read_text() == "1001 1002\n"
    assert ex.job_of(RunDir(tmp_path / "run")).job_ids() == ["1001", "1002"]


def test_compare_slurm_dry_run_prints_every_script_and_submits_nothing(tmp_path, fake_slurm,
                                                                         capsys):
    _base(tmp_path)
    job = tmp_path / "cmp.yaml"
    job.write_text(f"compare:\n  base: base.yaml\n  out: {tmp_path / 'cmp'}\n"
                   f"  vary:\n    faces.detector: [haar, mtcnn]\n")
    assert main(["compare", str(job), "--slurm", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert said.count("# ==== variant ") == 2 and said.count("#SBATCH --array=") == 2
    assert "#SBATCH --dependency=afterany:<array-job-id>:<array-job-id>" in said
    assert not list(fake_slurm.glob("sbatch.1*")) and not (tmp_path / "cmp").exists()
    with pytest.raises(SystemExit) as e:  # a local job has no scripts: a usage error
        main(["compare", str(job), "--dry-run"])
    assert e.value.code == 2 and "--dry-run prints the sbatch scripts of --slurm" in \
        capsys.readouterr().err


def test_rendered_table_job_matches_golden_file(tmp_path):
    """What the cluster runs last (VIDEMO_UPDATE_GOLDEN=1 rewrites tests/data/golden)."""
    cfg = make_config(tmp_path, tmp_path, slurm={
        "command": "videmo", "partition": "short", "account": "emotion-lab",
        "extra": ["--qos=normal"], "setup": ["module load python/3.11"]}).absolute()
    out = Path("/scratch/ada/runs/compare debates")
    text = slurm.render_after(cfg, out, "compare",
                              ["compare", "/home/ada/jobs/cmp.yaml", "--out", str(out),
                               "--collect"], ["4243", "4245"])
    golden = GOLDEN / "after-jobs.sbatch"
    if os.environ.get("VIDEMO_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_clip_verdicts_name_a_report_without_clips(tmp_path):
    with pytest.raises(ConfigError, match="has no clips.csv"):
        clip_verdicts(tmp_path)
