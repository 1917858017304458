"""Sharding and the SLURM scripts, without a cluster: plans, --shard runs, rendering, status."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from videmo import schema
from videmo.cli import main
from videmo.config import ConfigError
from videmo.execute import shard, slurm
from videmo.execute.status import run_status
from videmo.extract.corpus import discover
from videmo.store import RunDir

from .conftest import REPO, make_config, write_video

GOLDEN = REPO / "tests" / "data" / "golden"


@pytest.mark.parametrize("text, expected", [
    ("0/1", shard.Shard(0, 1)), ("3/8", shard.Shard(3, 8)), (" 7 / 8 ", shard.Shard(7, 8)),
])
def test_parse_shard(text, expected):
    assert shard.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["8/8", "1/0", "-1/4", "a/b", "3", ""])
def test_parse_shard_rejects(text):
    with pytest.raises(ConfigError, match="--shard"):
        shard.parse_shard(text)


def test_shard_from_slurm_env():
    assert shard.shard_from_env({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "5"}) \
        == shard.Shard(2, 5)
    assert shard.shard_from_env({"SLURM_ARRAY_TASK_ID": "2"}) is None
    assert shard.shard_from_env({}) is None


@pytest.fixture
def uneven_corpus(tmp_path) -> Path:
    """Eight small videos of 10..80 frames, one text file posing as a video."""
    root = tmp_path / "uneven"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 9):
        frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(10 * i)]
        write_video(root / f"clip{i}.mp4", frames, fps=25)
    (root / "broken.mp4").write_bytes(b"not a video" * 5000)
    return root


def test_estimate_reads_frames_from_the_container(tmp_path, uneven_corpus):
    cfg = make_config(tmp_path, uneven_corpus, sampling={"every_n": 5})
    clips = {c.clip_id: c for c in discover(cfg)}
    assert shard.estimate(clips["clip4"], cfg).frames == 8  # 40 frames, every 5th
    assert shard.estimate(clips["broken"], cfg).frames is None  # unreadable: size decides
    cfg = make_config(tmp_path, uneven_corpus, sampling={"fps": 5.0, "end_s": 1.0})
    assert shard.estimate(clips["clip4"], cfg).frames == 5  # 1 s at 5 of 25 fps


def test_plan_is_balanced_deterministic_and_complete(tmp_path, uneven_corpus):
    cfg = make_config(tmp_path, uneven_corpus, sampling={"every_n": 1})
    clips = discover(cfg)
    plan = shard.make_plan(clips, 3, cfg)
    assert sorted(plan.assignment) == sorted(c.clip_id for c in clips)
    loads = [plan.load_of(i) for i in range(3)]
    # 360 frames of videos + the broken file weighed by its size; best split is within a clip
    assert max(loads) - min(loads) <= 80
    # the same plan whatever order the clips come in
    again = shard.make_plan(list(reversed(clips)), 3, cfg)
    assert again.assignment == plan.assignment
    # the file-size fallback is in frames, comparable to the others
    assert 0 < plan.work["broken"] < 1000


def test_shard_runs_cover_the_corpus_once(tmp_path, uneven_corpus, capsys):
    cfg_yaml = tmp_path / "job.yaml"
    cfg_yaml.write_text(f"corpus: {{paths: [{uneven_corpus}]}}\nsampling: {{every_n: 10}}\n"
                        f"run: {{out: {tmp_path / 'run'}}}\n")
    codes = [main(["extract", str(cfg_yaml), "--shard", f"{i}/3", "--no-progress"])
             for i in range(3)]
    # the broken clip fails its shard only
    plan = shard.load_plan(RunDir(tmp_path / "run"))
    assert plan is not None and plan.count == 3
    assert codes.count(1) == 1 and codes[plan.assignment["broken"]] == 1
    out = capsys.readouterr().out
    assert "a shard: `videmo report" in out
    assert not (tmp_path / "run" / "frames.parquet").exists()  # shards leave merging to report
    run = RunDir(tmp_path / "run")
    frames = run.frames()
    assert sorted(frames[schema.CLIP_ID].unique()) == [f"clip{i}" for i in range(1, 9)]
    assert not frames.duplicated([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX]).any()
    # a different N than the saved plan is refused, with the plan's N in the message
    with pytest.raises(ConfigError, match="splits this run into 3 shards"):
        shard.select(discover(run.config()), shard.Shard(0, 4), run, run.config())


def test_shard_from_slurm_environment(tmp_path, uneven_corpus, monkeypatch):
    cfg_yaml = tmp_path / "job.yaml"
    cfg_yaml.write_text(f"corpus: {{paths: [{uneven_corpus}]}}\nsampling: {{every_n: 10}}\n"
                        f"corpus_extra: 1\n")
    assert main(["extract", str(cfg_yaml)]) == 2  # config typo: nothing runs
    cfg_yaml.write_text(f"corpus: {{paths: [{uneven_corpus}], exclude: [broken*]}}\n"
                        f"sampling: {{every_n: 10}}\nrun: {{out: {tmp_path / 'run'}}}\n")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    assert main(["extract", str(cfg_yaml), "--no-progress"]) == 0
    plan = shard.load_plan(RunDir(tmp_path / "run"))
    done = {r[schema.CLIP_ID] for r in RunDir(tmp_path / "run").records()}
    assert plan is not None and done == set(plan.clips(1)) and done


@pytest.mark.parametrize("indices, limit, expected", [
    ([0, 1, 2], 10, "0-2%10"), ([4], None, "4"), ([0, 1, 3, 5, 6, 7], 2, "0-1,3,5-7%2"),
])
def test_array_spec(indices, limit, expected):
    assert slurm.array_spec(indices, limit) == expected


def test_render_refuses_unknown_placeholders():
    with pytest.raises(slurm.SlurmError, match="unknown placeholder.*nope"):
        slurm.render("#SBATCH --x={{nope}}\n", {"a": "1"})
    assert slurm.render("a\n{{b}}\nc {{a}}\n", {"a": "1", "b": ""}) == "a\nc 1\n"


def _golden_config(tmp_path: Path, **slurm_options):
    cfg = make_config(tmp_path, tmp_path, slurm={
        "command": "videmo", "partition": "short", "account": "emotion-lab", "gpus": "1",
        "extra": ["--qos=normal", "#SBATCH --constraint=avx2"], "time": "02:00:00",
        "mem": "6G", "cpus_per_task": 4, "max_concurrent": 5,
        "setup": ["module load python/3.11", "source ~/venvs/videmo/bin/activate"],
        **slurm_options})
    return cfg.absolute()


@pytest.mark.parametrize("name", [slurm.ARRAY_TEMPLATE, slurm.MERGE_TEMPLATE])
def test_rendered_sbatch_scripts_match_golden_files(tmp_path, name):
    """The scripts a cluster consumes, byte for byte (regenerate on purpose, never by accident:
    VIDEMO_UPDATE_GOLDEN=1 rewrites tests/data/golden)."""
    import os

    cfg = _golden_config(tmp_path)
    run_dir = Path("/scratch/ada/runs/debates 2019")
    scripts = slurm.render_scripts(cfg, run_dir, run_dir / "slurm" / "config.yaml",
                                   [0, 1, 2, 3, 5, 9], 10, array_job="4242")
    text = scripts.array if name == slurm.ARRAY_TEMPLATE else scripts.merge
    golden = GOLDEN / name
    if os.environ.get("VIDEMO_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_merge_without_array_has_no_dependency(tmp_path):
    cfg = _golden_config(tmp_path, gpus=None, partition=None, account=None, extra=[], setup=[])
    scripts = slurm.render_scripts(cfg, tmp_path, tmp_path / "c.yaml", [], 3)
    assert scripts.array is None
    assert "--dependency" not in scripts.merge and "--partition" not in scripts.merge
    assert "\n\n" not in scripts.merge.split("set -euo")[0]  # empty placeholder lines dropped


def test_submit_dry_run_prints_and_writes_nothing(tmp_path, sample_corpus, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{sample_corpus}]}}\nrun: {{out: {tmp_path / 'run'}}}\n"
                   "slurm: {partition: gpu, gpus: 'a100:1'}\n")
    assert main(["submit", str(job), "--shards", "4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --array=0-3%10" in out and "#SBATCH --gpus=a100:1" in out
    assert '--shard "${SLURM_ARRAY_TASK_ID}/4"' in out
    # the merge runs however the tasks end, and fails while clips are not done
    assert "--dependency=afterany:<array-job-id>" in out and "afterok" not in out
    assert " report " in out and out.rstrip().endswith(" --fail-incomplete")
    assert not (tmp_path / "run").exists()
    # more shards than clips: one per clip
    assert main(["submit", str(job), "--shards", "50", "--dry-run"]) == 0
    assert "#SBATCH --array=0-5%10" in capsys.readouterr().out


def test_dry_run_leaves_out_shards_already_done(tmp_path, sample_corpus, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{sample_corpus}]}}\nsampling: {{every_n: 10}}\n"
                   f"run: {{out: {tmp_path / 'run'}}}\n")
    assert main(["extract", str(job), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["submit", str(job), "--shards", "3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# ---- extract-array.sbatch" not in out and "--dependency" not in out
    assert "exec " in out and " report " in out


@pytest.mark.parametrize("argv, message", [
    (["submit"], "either a CONFIG"),
    (["submit", "--resume", "x", "--shards", "3"], "drop --shards"),
])
def test_submit_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_resume_needs_a_submitted_run(tmp_path, capsys):
    assert main(["submit", "--resume", str(tmp_path)]) == 2
    assert "not made by `videmo submit`" in capsys.readouterr().err


def test_status_counts_per_shard_and_names_failed_clips(tmp_path, uneven_corpus, capsys):
    cfg_yaml = tmp_path / "job.yaml"
    cfg_yaml.write_text(f"corpus: {{paths: [{uneven_corpus}]}}\nsampling: {{every_n: 10}}\n"
                        f"run: {{out: {tmp_path / 'run'}}}\n")
    run = RunDir(tmp_path / "run")
    main(["extract", str(cfg_yaml), "--shard", "0/2", "--no-progress"])
    plan = shard.load_plan(run)
    assert plan is not None
    st = run_status(run)
    assert [s.counts[schema.PENDING] for s in st.shards] == [0, len(plan.clips(1))]
    main(["extract", str(cfg_yaml), "--shard", "1/2", "--no-progress"])
    capsys.readouterr()
    assert main(["status", str(run.path)]) == 1
    out = capsys.readouterr().out
    assert "9 clips: 8 done, 1 failed, 0 interrupted, 0 pending" in out
    assert f"failed: broken (shard {plan.assignment['broken']}): cannot open as video" in out
    assert "videmo extract CONFIG --shard I/2 for shard(s) " in out  # a local sharded run
    # fixed by removing the file from the corpus and rerunning without shards: complete, and
    # the plan, kept, follows the corpus
    (uneven_corpus / "broken.mp4").unlink()
    assert main(["extract", str(cfg_yaml), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["status", str(run.path)]) == 0
    assert "complete: every clip is done" in capsys.readouterr().out
    kept = shard.load_plan(run)
    assert kept is not None and "broken" not in kept.assignment
    assert kept.assignment == {c: s for c, s in plan.assignment.items() if c != "broken"}


def test_reconcile_keeps_clips_in_their_shards_and_deals_new_ones(tmp_path, uneven_corpus):
    cfg = make_config(tmp_path, uneven_corpus, sampling={"every_n": 1})
    clips = discover(cfg)
    plan = shard.make_plan(clips, 3, cfg)
    heaviest = max(range(3), key=plan.load_of)
    gone = plan.clips(heaviest)[0]
    rng = np.random.default_rng(1)
    write_video(uneven_corpus / "new.mp4",
                [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(30)], fps=25)
    now = discover(cfg)
    new = shard.reconcile(plan, [c for c in now if c.clip_id != gone], cfg)
    assert gone not in new.assignment
    assert {c: s for c, s in new.assignment.items() if c != "new"} == \
        {c: s for c, s in plan.assignment.items() if c != gone}
    loads = [sum(plan.work[c] for c in plan.clips(i) if c != gone) for i in range(3)]
    assert new.assignment["new"] == loads.index(min(loads)) and new.work["new"] == 30
    assert shard.reconcile(new, now[::-1], cfg) == shard.reconcile(new, now, cfg)


def test_resume_follows_the_corpus_with_the_plan_kept(tmp_path, uneven_corpus, capsys):
    """What `submit --resume` would submit after a fix, an exclusion, a touched file and an
    added clip: exactly the shards of the changed and unfinished clips (dry run: no sbatch)."""
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: [{uneven_corpus}]}}\nsampling: {{every_n: 10}}\n"
                   f"run: {{out: {tmp_path / 'run'}}}\n")
    for i in range(3):
        main(["extract", str(job), "--shard", f"{i}/3", "--no-progress"])
    run = RunDir(tmp_path / "run")
    plan = shard.load_plan(run)
    assert plan is not None
    from videmo import config as config_mod

    (run.path / "slurm").mkdir()
    (run.path / "slurm" / "config.yaml").write_text(config_mod.dump(run.config().absolute()))
    capsys.readouterr()
    assert main(["submit", "--resume", str(run.path), "--dry-run"]) == 0
    assert f"#SBATCH --array={plan.assignment['broken']}%10" in capsys.readouterr().out
    # excluded: nothing left to do but the merge
    assert main(["submit", "--resume", str(run.path), "--dry-run",
                 "--set", "corpus.exclude=[broken*]"]) == 0
    out = capsys.readouterr().out
    assert "# ---- extract-array.sbatch" not in out and "--dependency" not in out
    # a touched clip reruns its shard only
    os.utime(uneven_corpus / "clip5.mp4", ns=(1, 1_600_000_000_000_000_000))
    assert main(["submit", "--resume", str(run.path), "--dry-run",
                 "--set", "corpus.exclude=[broken*]"]) == 0
    assert f"#SBATCH --array={plan.assignment['clip5']}%10" in capsys.readouterr().out
    # an added clip joins the least loaded shard, which reruns too
    write_video(uneven_corpus / "new.mp4", [np.zeros((48, 64, 3), np.uint8)] * 20, fps=25)
    cfg = run.config()
    expected = shard.reconcile(plan, [c for c in discover(cfg) if c.clip_id != "broken"], cfg)
    assert main(["submit", "--resume", str(run.path), "--dry-run",
                 "--set", "corpus.exclude=[broken*]"]) == 0
    spec = slurm.array_spec(sorted({plan.assignment["clip5"], expected.assignment["new"]}), 10)
    assert f"#SBATCH --array={spec}\n" in capsys.readouterr().out
    assert shard.load_plan(run) == plan  # a dry run saves nothing
