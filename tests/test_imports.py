"""Each command imports what it uses (issue 32): extraction never loads the report's or the
learners' libraries.

Every command runs as a real ``python -m videmo`` subprocess with a ``sitecustomize`` of this
test first on PYTHONPATH. PYTHONPATH is inherited, so the hook is in the command's process *and*
in every process it starts (the ``--jobs`` loky workers, the progress manager): each writes a
``start`` line (pid, argv) to a log, and an audit hook on Python's ``import`` event writes a
line whenever a package of :data:`FORBIDDEN` is loaded for the first time in that process,
with the videmo frames that asked for it and whether the report stage (a frame in
``videmo/report/``) was on the stack.

What is checked, precisely:

- ``videmo extract`` (each detector with fer, the pixel model with BlazeFace and with Haar,
  the mesh's side table, ``--jobs 2`` over two clips, and ``--shard 0/2``, the command a SLURM
  array task runs):
  no process loads any forbidden package at all, nor pandas (:data:`LEAN`).
- ``videmo run``: no process loads one outside the report stage; the report does load
  matplotlib (so the hook is seen to work in the command's own process).
- ``videmo submit --dry-run`` (planning and rendering the scripts), ``videmo status RUN``,
  ``videmo --help`` and ``videmo config --template``: none at all, nor pandas.

The mesh frame models (``emotions.model: blendshapes | landmarks``) and ``mtcnn_engine:
tensorflow`` run on Keras/TensorFlow by design and are not in this list.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SAMPLE_CLIPS

FORBIDDEN = ("sklearn", "scipy", "matplotlib", "jinja2", "tensorflow", "keras")
# the extraction writes its tables with pyarrow alone (videmo.arrow): pandas is not loaded either,
# nor by the commands that only plan, list or read records
LEAN = (*FORBIDDEN, "pandas")

HOOK = '''
import json, os, sys

_LOG = os.environ["VIDEMO_IMPORT_LOG"]
_FORBIDDEN = set(os.environ["VIDEMO_IMPORT_FORBIDDEN"].split(","))


def _write(rec):
    rec["pid"] = os.getpid()
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\\n")


def _hook(event, args):
    if event != "import":
        return
    name = args[0]
    if name not in _FORBIDDEN or name in sys.modules:
        return
    frames, f = [], sys._getframe(1)
    while f is not None:
        frames.append(f.f_code.co_filename + ":" + str(f.f_lineno))
        f = f.f_back
    sep = os.sep
    ours = [x for x in frames if sep + "videmo" + sep in x]
    _write({"kind": "import", "module": name, "videmo_frames": ours[:6],
            "in_report": any(sep + "videmo" + sep + "report" + sep in x for x in ours)})


_write({"kind": "start", "argv": sys.argv})
sys.addaudithook(_hook)
'''


def videmo(tmp_path: Path, *args: str, ok: tuple[int, ...] = (0,),
           forbidden: tuple[str, ...] = FORBIDDEN) -> list[dict]:
    """Run ``python -m videmo ARGS`` with the import hook watching ``forbidden``; the log's
    records."""
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
    log = tmp_path / f"imports-{len(list(tmp_path.glob('imports-*')))}.jsonl"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(hook_dir), str(REPO / "src"),
                                         env.get("PYTHONPATH", "")])
    env["VIDEMO_IMPORT_LOG"] = str(log)
    env["VIDEMO_IMPORT_FORBIDDEN"] = ",".join(forbidden)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    proc = subprocess.run([sys.executable, "-m", "videmo", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in ok, f"videmo {' '.join(args)}: rc {proc.returncode}\n" \
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert records and records[0]["kind"] == "start", \
        f"the import hook did not run in the command: {records[:3]}"
    return records


def imports(records: list[dict]) -> list[dict]:
    return [r for r in records if r["kind"] == "import"]


def describe(found: list[dict]) -> str:
    return "\n".join(f"  {r['module']} in pid {r['pid']} via {' <- '.join(r['videmo_frames'])}"
                     for r in found)


def write_config(tmp_path: Path, clips: list[Path], **sections) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for p in clips:
        shutil.copy(p, corpus / p.name)
    data = {"corpus": {"paths": [str(corpus)]}, "run": {"out": str(tmp_path / "run")},
            "sampling": {"every_n": 15}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("detector,model", [
    ("haar", "fer"),
    ("mediapipe", "fer"),
    ("mtcnn", "fer"),
    ("mediapipe", "pixels"),
    ("haar", "pixels"),
    ("yunet", "pixels_real"),  # the recommended settings' detector and frame model
])
def test_extract_imports_no_report_or_learning_library(tmp_path, detector, model):
    cfg = write_config(tmp_path, SAMPLE_CLIPS[:1], faces={"detector": detector},
                       emotions={"model": model})
    found = imports(videmo(tmp_path, "extract", str(cfg), "--no-progress",
                           forbidden=LEAN))
    assert not found, f"videmo extract ({detector} + {model}) imported:\n{describe(found)}"
    assert (tmp_path / "run" / "frames.parquet").exists()


def test_extract_with_the_mesh_imports_none(tmp_path):
    """The mesh's side table is built and merged without pandas too (videmo.arrow)."""
    cfg = write_config(tmp_path, SAMPLE_CLIPS[:1], faces={"detector": "mediapipe"})
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["features"] = ["emotions", "mesh"]
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")
    found = imports(videmo(tmp_path, "extract", str(cfg), "--no-progress", forbidden=LEAN))
    assert not found, f"videmo extract with the mesh imported:\n{describe(found)}"
    assert (tmp_path / "run" / "features" / "mesh.parquet").exists()


def test_extract_workers_and_shard_tasks_import_none(tmp_path):
    """``--jobs 2``: the parent and both loky workers (each seen starting) load none; nor does
    ``--shard 0/2``, the command each SLURM array task runs."""
    cfg = write_config(tmp_path, SAMPLE_CLIPS[:2], faces={"detector": "mediapipe"},
                       emotions={"model": "pixels"})
    records = videmo(tmp_path, "extract", str(cfg), "--jobs", "2",  # progress: manager too
                     forbidden=LEAN)
    started = {r["pid"] for r in records if r["kind"] == "start"}
    assert len(started) >= 3, f"expected the command and two workers to start: {records}"
    found = imports(records)
    assert not found, f"videmo extract --jobs 2 imported:\n{describe(found)}"
    found = imports(videmo(tmp_path, "extract", str(cfg), "--shard", "0/2", "--force",
                           "--no-progress", forbidden=LEAN))
    assert not found, f"videmo extract --shard 0/2 imported:\n{describe(found)}"


def test_run_imports_report_libraries_only_in_the_report(tmp_path):
    cfg = write_config(tmp_path, SAMPLE_CLIPS[:1])
    found = imports(videmo(tmp_path, "run", str(cfg), "--no-progress"))
    outside = [r for r in found if not r["in_report"]]
    assert not outside, f"videmo run imported outside its report:\n{describe(outside)}"
    assert any(r["module"] == "matplotlib" for r in found), \
        f"the report drew its figures without the hook seeing matplotlib load: {found}"


def test_submit_dry_run_imports_none(tmp_path):
    cfg = write_config(tmp_path, SAMPLE_CLIPS[:2])
    found = imports(videmo(tmp_path, "submit", str(cfg), "--dry-run", "--shards", "2",
                           forbidden=LEAN))
    assert not found, f"videmo submit --dry-run imported:\n{describe(found)}"


@pytest.mark.parametrize("args", [["--help"], ["config", "--template"]])
def test_start_up_imports_none(tmp_path, args):
    found = imports(videmo(tmp_path, *args, forbidden=LEAN))
    assert not found, f"videmo {' '.join(args)} imported:\n{describe(found)}"


def test_status_imports_none(tmp_path):
    cfg = write_config(tmp_path, SAMPLE_CLIPS[:2])
    videmo(tmp_path, "extract", str(cfg), "--no-progress")
    (tmp_path / "corpus" / SAMPLE_CLIPS[2].name).write_bytes(SAMPLE_CLIPS[2].read_bytes())
    records = videmo(tmp_path, "status", str(tmp_path / "run"), ok=(1,),  # one clip pending
                     forbidden=LEAN)
    found = imports(records)
    assert not found, f"videmo status RUN imported:\n{describe(found)}"
