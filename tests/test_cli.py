"""The command line: checks before any work (item 8), shortcuts, warnings, set-up scripts."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from videmo.cli import main

from .conftest import write_video


@pytest.fixture
def job(tmp_path, monkeypatch):
    """A config in its own folder with a relative corpus and labels; the cwd is elsewhere."""
    folder = tmp_path / "job"
    (folder / "clips").mkdir(parents=True)
    write_video(folder / "clips" / "a_1.mp4", [np.zeros((48, 64, 3), np.uint8)] * 3, 10.0)
    (folder / "labels.csv").write_text("clip,label\na_1,positive\n")
    cfg = folder / "job.yaml"
    cfg.write_text(yaml.safe_dump({"corpus": {"paths": ["clips"]}, "run": {"out": "out"},
                                   "report": {"labels": "labels.csv"}}))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cfg


def test_config_check_reports_what_it_checked(job, capsys):
    assert main(["config", "check", str(job)]) == 0
    out = capsys.readouterr().out
    folder, cwd = job.parent.resolve(), job.parent.parent.resolve() / "cwd"
    assert f"corpus.paths: {folder / 'clips'}: 1 clip\n" in out  # relative to the config
    assert f"report.labels: {folder / 'labels.csv'}" in out
    assert f"run.out: {cwd / 'out'} (relative to the current directory)" in out
    assert not (cwd / "out").exists()


def test_config_check_of_a_settings_file_without_data(tmp_path, capsys):
    settings = tmp_path / "s.yaml"
    settings.write_text("sampling: {every_n: 10}\n")
    assert main(["config", "check", str(settings)]) == 0
    out = capsys.readouterr().out
    assert "corpus.paths: not set" in out and "report.labels: not set" in out


def _breaks(job, what):
    """Break one path of the job; return the key and the path the error must name."""
    folder = job.parent.resolve()
    if what == "missing corpus":
        (folder / "clips" / "a_1.mp4").unlink()
        (folder / "clips").rmdir()
        return "corpus.paths", str(folder / "clips")
    if what == "empty corpus":
        (folder / "clips" / "a_1.mp4").rename(folder / "clips" / "README.txt")
        return "corpus.paths", str(folder / "clips")
    if what == "missing labels":
        (folder / "labels.csv").unlink()
        return "report.labels", str(folder / "labels.csv")
    if what == "run.out is a file":
        out = job.parent.parent / "cwd" / "out"
        out.write_text("not a folder")
        return "run.out", str(out.resolve())
    raise AssertionError(what)


COMMANDS = {  # (before the config file, after it)
    "config check": (["config", "check"], []),
    "extract": (["extract"], ["--no-progress"]),
    "run": (["run"], ["--no-progress"]),
    "submit": (["submit"], ["--dry-run"]),
}


@pytest.mark.parametrize("what", ["missing corpus", "empty corpus", "missing labels",
                                  "run.out is a file"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_commands_check_paths_before_any_work(job, capsys, command, what):
    key, path = _breaks(job, what)
    before, after = COMMANDS[command]
    assert main([*before, str(job), *after]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"config key '{key}'" in lines[0] and path in lines[0], err
    assert "Traceback" not in err
    out = job.parent.parent / "cwd" / "out"
    assert what == "run.out is a file" or not out.exists()  # nothing was started


def test_compare_checks_every_variant_before_the_first_run(job, capsys, tmp_path):
    compare_job = tmp_path / "cmp.yaml"
    compare_job.write_text(yaml.safe_dump({"compare": {
        "base": str(job), "out": str(tmp_path / "cmp"),
        "vary": {"report.labels": ["labels.csv", "typo.csv"]}}}))
    assert main(["compare", str(compare_job), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "config key 'report.labels'" in err and str(job.parent.resolve() / "typo.csv") in err
    assert not (tmp_path / "cmp").exists()


def test_labels_option_is_checked_relative_to_the_cwd(job, capsys):
    assert main(["run", str(job), "--labels", "nope.csv", "--no-progress"]) == 2
    err = capsys.readouterr().err
    cwd = job.parent.parent.resolve() / "cwd"
    assert f"config key 'report.labels': {cwd / 'nope.csv'} does not exist" in err
    assert not (cwd / "out").exists()


# ---------------------------------------------------------------- scripts/bootstrap.sh (item 16)
@pytest.fixture
def bootstrap(tmp_path):
    """scripts/bootstrap.sh in a copy of the repo's set-up files, over a venv whose python is
    a stub that logs each pip call: returns run(mode) -> the pip installs that call made."""
    import shutil
    import subprocess
    import sys

    from .conftest import REPO

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "bootstrap.sh", repo / "scripts")
    shutil.copy(REPO / "pyproject.toml", repo)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "pip.log"
    stub = venv / "bin" / "python"
    stub.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    stub.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "VIDEMO_VENV": str(venv)}

    def run(*args: str) -> list[str]:
        before = log.read_text().splitlines() if log.exists() else []
        subprocess.run(["bash", str(repo / "scripts" / "bootstrap.sh"), *args], env=env,
                       check=True, capture_output=True)
        after = log.read_text().splitlines() if log.exists() else []
        return [line for line in after[len(before):] if " install " in f" {line} "
                and "--upgrade pip" not in line]

    run.repo = repo  # type: ignore[attr-defined]
    return run


def test_bootstrap_test_mode_satisfies_the_runtime_mode(bootstrap):
    first = bootstrap("--test")  # bash scripts/test.sh
    assert any(".[test]" in line for line in first)
    assert bootstrap() == []  # then bash scripts/run-sample.sh: nothing to do
    assert bootstrap("--test") == []  # and test.sh again: the extras are still there


def test_bootstrap_runtime_mode_never_drops_the_test_extras(bootstrap):
    assert any(line.endswith("install -e .") for line in bootstrap())
    added = bootstrap("--test")
    assert any(".[test]" in line for line in added)
    assert bootstrap() == [] and bootstrap("--test") == []
    pyproject = bootstrap.repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# changed\n")
    again = bootstrap()  # a changed pyproject reinstalls, keeping the test extras
    assert any(".[test]" in line for line in again)
    assert bootstrap("--test") == []


def test_every_import_in_src_is_a_declared_dependency():
    """A module imported by videmo but not in pyproject's dependencies works only by chance."""
    import ast
    import importlib.metadata
    import re
    import sys
    import tomllib

    from .conftest import REPO

    declared = {re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0].lower().replace("_", "-")
                for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
                    "dependencies"]}
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for path in (REPO / "src" / "videmo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "videmo":
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not owners & declared:
                    missing[top] = path.name
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


# ---------------------------------------------------------------- quiet, honest progress (item 17)
def _jobs_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and "--jobs" in r.getMessage()]


def test_jobs_above_the_cores_warns_once(job, caplog, monkeypatch, tmp_path):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert main(["extract", str(job), "--jobs", "1", "--no-progress"]) == 0
    assert _jobs_warnings(caplog) == []
    caplog.clear()
    assert main(["extract", str(job), "--jobs", "3", "--no-progress", "--force"]) == 0
    (warning,) = _jobs_warnings(caplog)
    assert "--jobs 3" in warning and "1 core " in warning and "--jobs 1 or fewer" in warning
    caplog.clear()
    compare_job = tmp_path / "cmp.yaml"  # two runs, one warning
    compare_job.write_text(yaml.safe_dump({"compare": {
        "base": str(job), "out": str(tmp_path / "cmp"), "jobs": 2,
        "vary": {"sampling.every_n": [1, 2]}}}))
    assert main(["compare", str(compare_job), "--no-progress"]) == 0
    assert len(_jobs_warnings(caplog)) == 1


@pytest.mark.parametrize("level", ["2", "3"])
def test_native_start_up_chatter_is_dropped_and_warnings_stay(capfd, monkeypatch, level):
    import os

    from videmo.runtime import quiet_native_logs

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_GPUS", raising=False)
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796139184.476702    7190 cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.",
        "E0000 00:00:1796139192.850652    7190 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        "W0000 00:00:1796139192.850652    7190 op_kernel.cc:1830] a TensorFlow warning",
        "E0000 00:00:1796367718.337043   12231 mkl_util.h:208] oneDNN supports "
        "DT_BOOL only on platforms with AVX-512. Falling back to the default Eigen-based "
        "implementation if present.",
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c0a3e240] moov atom not found",
        "[ WARN:0@0.012] global cap_ffmpeg_impl.hpp:1092 open VIDEOIO/FFMPEG: cannot open",
    ]
    real = [
        "F0000 00:00:1796139192.850652    7190 foo.cc:12] a fatal error: the process ends",
        "ERROR: a LiteRT error",
        "Traceback (most recent call last):",
        "12:00:00 WARNING videmo.corpus: 1 file in /data is neither a video nor an image",
    ]
    capfd.readouterr()
    with quiet_native_logs():
        for line in [*noise, *real]:
            os.write(2, (line + "\n").encode())
    assert capfd.readouterr().err.splitlines() == real
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a GPU was granted: its failure is news
    with quiet_native_logs():
        os.write(2, (noise[2] + "\n").encode())
    assert capfd.readouterr().err.splitlines() == [noise[2]]


@pytest.mark.parametrize("jobs", [1, 2])
def test_extract_with_mtcnn_writes_no_native_chatter(tmp_path, jobs):
    """The real thing: TensorFlow, MTCNN and LiteRT loaded in this process or in workers."""
    import os
    import shutil
    import subprocess
    import sys

    from .conftest import REPO, SAMPLE_CLIPS

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in SAMPLE_CLIPS[:jobs]:
        shutil.copy(p, corpus)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"corpus": {"paths": [str(corpus)]},
                                   "sampling": {"every_n": 20}, "faces": {"detector": "mtcnn"},
                                   "run": {"out": str(tmp_path / "run")}}))
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS")}
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run([sys.executable, "-m", "videmo", "extract", str(cfg), "--jobs",
                           str(jobs), "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{jobs} done" in done.stdout
    assert "videmo.execute.local" in done.stderr  # videmo's own log lines still come through
    for chatter in ("absl::InitializeLog", "cudart_stub", "cuInit", "XNNPACK", "INFO: "):
        assert chatter not in done.stderr, done.stderr


class FakeBar:
    """Stands in for tqdm: records every update, in order, across all bars."""

    events: list[tuple[str, int]] = []

    def __init__(self, *args, unit: str = "it", **kwargs):
        self.unit = unit

    def update(self, n: int = 1) -> None:
        FakeBar.events.append((self.unit, n))

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_moves_within_a_clip(tmp_path, monkeypatch, jobs):
    from videmo.execute import local as runner

    from .conftest import make_config

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(jobs):
        write_video(corpus / f"long_{i}.mp4", [np.zeros((48, 64, 3), np.uint8)] * 40, 10.0)
    cfg = make_config(tmp_path, corpus, sampling={"every_n": 1})
    monkeypatch.setattr(runner, "tqdm", FakeBar)
    FakeBar.events = []
    summary = runner.extract(cfg, jobs=jobs, progress=True)
    assert summary.done == jobs and summary.frames == 40 * jobs
    frames = [n for unit, n in FakeBar.events if unit == "frame"]
    assert sum(frames) == 40 * jobs and len(frames) >= 4 * jobs  # batches, not whole clips
    first_clip = FakeBar.events.index(("clip", 1))
    assert sum(n for unit, n in FakeBar.events[:first_clip] if unit == "frame") >= 8
