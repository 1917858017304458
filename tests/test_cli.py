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
