"""README.md cannot rot: every command of its ```bash blocks is run, in README order, in a
sandbox holding a copy of jobs/, configs/ and the sample corpus (sampling.every_n made large so
it stays quick). Commands that need what a test cannot have are checked otherwise, each for the
reason in HOW_CHECKED. The commands run in this process, one after another, as ``videmo``'s
own ``main`` (the set-up, imports and models loaded once, as a user's shell cannot share them;
``python -m videmo`` itself is run by the annotate command and by tests/test_faults.py). And
the README's claim about unpickling is measured here too."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from videmo.cli import build_parser, main

from . import browser
from .conftest import REPO

ffmpeg_tool = browser.ffmpeg_tool  # installs ffmpeg when missing (a fixture)

README = REPO / "README.md"
EVERY_N = 30  # the sample clips have 56-70 frames: two or three analysed frames a clip
# the README's placeholder run directory of a cluster, stood in for by a run made here
SCRATCH_RUN = "/scratch/me/runs/debates-2019-mtcnn"

HOW_CHECKED = {
    "syntax": "bash -n: set-up scripts create .venv and run the whole suite (which holds this "
              "test); the test suite's own CI job runs them",
    "clone": "clones the project from a URL placeholder: nothing to run in a test",
    "parse": "submits to a SLURM cluster: parsed by videmo's argument parser here; the "
             "submission itself is tests/test_slurm_cluster.py's (a real local cluster)",
    "run": "run in the sandbox; exit code 0 expected",
}


def readme_commands() -> list[list[str]]:
    """Every command of the ```bash blocks, split at `&&`, comments dropped, in order."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            while argv:
                cut = argv.index("&&") if "&&" in argv else len(argv)
                commands.append(argv[:cut])
                argv = argv[cut + 1:]
    return commands


def how_checked(argv: list[str]) -> str:
    if argv[0] == "videmo":
        if argv[1] == "annotate":
            return "serve"
        submits = argv[1] == "submit" or argv[1] == "compare" and "--slurm" in argv
        return "parse" if submits and "--dry-run" not in argv else "run"
    if argv[0] == "bash" and len(argv) == 2 and argv[1].startswith("scripts/"):
        return "syntax"
    if argv[:2] == ["git", "clone"] or argv[0] == "cd":
        return "clone"
    raise AssertionError(f"README command {shlex.join(argv)!r} is not covered by "
                         f"tests/test_readme.py: teach how_checked() how to run it")


def test_readme_has_the_commands_this_test_knows():
    commands = readme_commands()
    assert len(commands) >= 14, commands
    kinds = [how_checked(c) for c in commands]
    table = list(zip(kinds, commands, strict=True))
    assert kinds.count("run") >= 9 and kinds.count("parse") == 4, table
    assert kinds.count("serve") == 1, table


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "jobs", tmp_path / "jobs")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copytree(REPO / "data" / "sample", tmp_path / "data" / "sample")
    for job in (tmp_path / "jobs").glob("*.yaml"):
        job.write_text(re.sub(r"every_n: \d+", f"every_n: {EVERY_N}", job.read_text()))
    return tmp_path


def _fill_template(path: Path, sandbox: Path) -> None:
    """What a user does after `videmo config --template > my.yaml`: name the corpus, the labels
    and the output (runs/a, the README's first run for `compare --runs runs/a runs/b`)."""
    cfg = yaml.safe_load(path.read_text())
    corpus = sandbox / "data" / "sample" / "crema-d"
    cfg["corpus"]["paths"] = [str(corpus)]
    cfg["sampling"]["every_n"] = EVERY_N
    cfg["run"]["out"] = "runs/a"
    cfg["report"]["labels"] = str(corpus / "labels.csv")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _run_here(argv: list[str], monkeypatch, capsys) -> str:
    """``videmo ARGV`` in this process, as the shell would run it: its argv, its exit code
    (0 expected); what it printed."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["videmo", *argv])
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    out, err = capsys.readouterr()
    assert code == 0, (argv, out[-2000:], err[-3000:])
    return out


def test_every_readme_command(sandbox, ffmpeg_tool, monkeypatch, capsys):  # annotate: ffmpeg
    env_cmd = [sys.executable, "-m", "videmo"]
    monkeypatch.chdir(sandbox)
    done = []
    for argv in readme_commands():
        kind = how_checked(argv)
        if kind == "syntax":
            script = REPO / argv[1]
            assert script.is_file(), f"README names {argv[1]}, which does not exist"
            subprocess.run(["bash", "-n", str(script)], check=True)
        elif kind == "parse":
            build_parser().parse_args(argv[1:])  # exits 2 on a wrong flag
        elif kind == "serve":
            _serve_once(sandbox, [*env_cmd, *argv[1:]])
        elif kind == "run":
            argv = ["runs/a" if a == SCRATCH_RUN else a for a in argv]
            if argv[1:3] == ["compare", "--runs"]:
                # the README's runs/a and runs/b stand for any two finished runs
                shutil.copytree(sandbox / "runs" / "a", sandbox / "runs" / "b")
            out_file = None
            if ">" in argv:
                out_file = sandbox / argv[argv.index(">") + 1]
                argv = argv[:argv.index(">")]
            out = _run_here(argv[1:], monkeypatch, capsys)
            if out_file is not None:
                out_file.write_text(out)
                if argv[1:3] == ["config", "--template"]:
                    _fill_template(out_file, sandbox)
        done.append((kind, shlex.join(argv)))
    assert (sandbox / "runs" / "a" / "report" / "metrics.json").exists()
    assert (sandbox / "runs" / "mtcnn" / "report-mean" / "metrics.json").exists()
    assert (sandbox / "runs" / "a-vs-b" / "comparison.csv").exists()
    assert (sandbox / "runs" / "compare-sample" / "comparison.csv").exists()


def _serve_once(sandbox: Path, cmd: list[str]) -> None:
    """Start the annotation server as the README does, load its page once over loopback, then
    stop it with Ctrl-C (SIGINT): it must print its URL, serve the page and exit 0."""
    proc = subprocess.Popen(cmd, cwd=sandbox, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        url = None
        for line in proc.stdout:
            found = re.search(r"http://127\.0\.0\.1:\d+/\S*", line)
            if found:
                url = found.group(0)
                break
        assert url, proc.stderr.read()
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ "what is unpickled"
UNPICKLE_AUDIT = """
import sys
found = []
def hook(event, args):
    if event == "pickle.find_class":
        found.append(f"{args[0]}.{args[1]}")
sys.addaudithook(hook)
what = sys.argv[1]
sections = {"tflite+haar": {}, "keras": {"emotions": {"engine": "keras"}},
            "mtcnn": {"faces": {"detector": "mtcnn", "mtcnn": {"onet": True}}},
            "mtcnn-tensorflow": {"faces": {"detector": "mtcnn", "mtcnn_engine": "tensorflow"}},
            "blendshapes": {"emotions": {"model": "blendshapes"}},
            "landmarks": {"emotions": {"model": "landmarks"}}}[what]
from videmo import config
from videmo.extract import pipeline
cfg = config.from_dict({"corpus": {"paths": ["."]}, **sections}, base_dir=".")
pipeline.load_models(cfg, 1)
print(len(found), sorted(set(found))[:5])
"""


@pytest.mark.parametrize(("what", "unpickles"), [
    ("tflite+haar", False),  # the defaults: the .tflite flatbuffer and the cascade XML
    ("keras", False),  # Keras 3 reads the .hdf5 as JSON + arrays (h5py), safe_mode on
    ("mtcnn", False),  # the default engine: three .tflite flatbuffers on LiteRT
    ("mtcnn-tensorflow", True),  # mtcnn 1.0.0 reads its own weights with joblib.load (pickle)
    ("blendshapes", False),  # the frame models: .keras in safe mode, the mesh's tflite files
    ("landmarks", False),
])
def test_what_is_unpickled_when_models_load(what, unpickles):
    """README: "nothing is unpickled" holds for the default models, the Keras file and MTCNN on
    LiteRT, not for MTCNN on TensorFlow, whose package loads its weights with joblib.load
    (counted by the audit event every unpickled global raises)."""
    proc = subprocess.run([sys.executable, "-c", UNPICKLE_AUDIT, what], capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    count = int(proc.stdout.split()[0])
    assert (count > 0) == unpickles, proc.stdout
