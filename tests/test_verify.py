"""No artefact outlives its settings, and ``videmo verify`` (issue 31, items 1 and 2).

The sequence of the issue on the real sample: BlazeFace with the face mesh, then the same run
directory with Haar and no mesh (with --force; and without it when only ``features`` changes);
a kill in the middle of the redo; a side table of a registered extractor; verify's words for a
damaged part and an edited config.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import SAMPLE
from tests.test_plugin_extractor import brightness  # noqa: F401 - the fixture
from videmo.cli import main
from videmo.store import RunDir
from videmo.store import integrity as integrity_mod
from videmo.store.verify import verify_run

TWO_CLIPS = ["*HAP*", "*NEU*"]


def _job(tmp_path: Path, **extra) -> Path:
    job = tmp_path / "job.yaml"
    data = {"corpus": {"paths": [str(SAMPLE)], "include": TWO_CLIPS},
            "sampling": {"every_n": 10}, "run": {"out": str(tmp_path / "run"), "jobs": 1},
            "report": {"labels": str(SAMPLE / "labels.csv")}}
    data.update(extra)
    job.write_text(yaml.safe_dump(data))
    return job


def _mesh_traces(run: Path) -> list[str]:
    """Every file or report section of the face mesh left in ``run``."""
    found = [str(p.relative_to(run)) for p in run.rglob("*")
             if "mesh" in p.name or "blendshapes" in p.name]
    html = run / "report" / "report.html"
    if html.exists() and "Face mesh" in html.read_text():
        found.append("report.html: the Face mesh section")
    return found


@pytest.fixture(scope="module")
def mesh_run(tmp_path_factory) -> Path:
    """The issue's first run: BlazeFace and the face mesh, two clips (kept read-only: copy)."""
    root = tmp_path_factory.mktemp("mesh")
    job = _job(root)
    assert main(["run", str(job), "--no-progress", "--detector", "mediapipe",
                 "--set", "features=[emotions, mesh]"]) == 0
    run = root / "run"
    assert "features/mesh.parquet" in _mesh_traces(run)
    assert "report.html: the Face mesh section" in _mesh_traces(run)
    assert verify_run(run).ok, verify_run(run).text()
    return run


def _copy(mesh_run: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(mesh_run, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize("redo", [
    ["--force", "--detector", "haar", "--set", "features=[emotions]"],  # the sequence
    ["--detector", "mediapipe", "--set", "features=[emotions]"],  # only features changes
])
def test_a_redo_with_other_settings_leaves_no_mesh(mesh_run, tmp_path, redo, capsys):
    run = _copy(mesh_run, tmp_path)
    assert main(["run", str(_job(tmp_path)), "--no-progress", *redo]) == 0
    assert _mesh_traces(run) == []
    assert verify_run(run).ok, verify_run(run).text()
    capsys.readouterr()
    assert main(["verify", str(run)]) == 0
    assert capsys.readouterr().out.endswith("OK (2 done clips, 2 parts checked)\n")


def test_a_kill_in_the_middle_of_the_redo_leaves_no_file_of_other_settings(
        mesh_run, tmp_path, monkeypatch, capsys):
    """Killed after the first file was moved aside: run.json still names the mesh run, the
    mesh table is gone or aside, verify names what is left; the next redo finishes the job."""
    run = _copy(mesh_run, tmp_path)
    real, moved = integrity_mod.os.replace, []

    def killed_after_one(src, dst):
        if moved:
            raise KeyboardInterrupt
        moved.append(src)
        real(src, dst)

    monkeypatch.setattr(integrity_mod.os, "replace", killed_after_one)
    job = _job(tmp_path)
    redo = ["--force", "--detector", "haar", "--set", "features=[emotions]"]
    assert main(["run", str(job), "--no-progress", *redo]) == 1  # "interrupted"
    monkeypatch.setattr(integrity_mod.os, "replace", real)
    assert json.loads((run / "run.json").read_text())["config"]["faces"]["detector"] == \
        "mediapipe"
    verdict = verify_run(run)
    assert any(p.path.startswith(".stale-") for p in verdict.problems), verdict.text()
    capsys.readouterr()
    assert main(["run", str(job), "--no-progress", *redo]) == 0
    assert _mesh_traces(run) == [] and not list(run.glob(".stale-*"))
    assert verify_run(run).ok, verify_run(run).text()


def test_a_registered_side_table_goes_with_its_settings(tmp_path, brightness):  # noqa: F811
    job = _job(tmp_path)
    assert main(["run", str(job), "--no-progress", "--set",
                 "features=[emotions, brightness]"]) == 0
    run = RunDir(tmp_path / "run")
    assert (run.path / "features" / "brightness.parquet").exists()
    assert verify_run(run.path).ok
    # turned off: its merged table and parts go, and so does a table no setting names
    (run.path / "features" / "old.parquet").write_bytes(b"a table of other settings")
    assert main(["run", str(job), "--no-progress"]) == 0
    assert not (run.path / "features").exists() or not any((run.path / "features").iterdir())
    assert not (run.parts / "brightness").exists()
    assert verify_run(run.path).ok


def test_verify_names_a_damaged_part_and_an_edited_config(mesh_run, tmp_path, capsys):
    run = RunDir(_copy(mesh_run, tmp_path))
    part = run.table_part_path("mesh", "1001_DFA_HAP_XX")
    part.write_bytes(part.read_bytes()[:-40])
    config = run.path / "config.yaml"
    config.write_text(config.read_text().replace("every_n: 10", "every_n: 5"))
    capsys.readouterr()
    assert main(["verify", str(run.path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "config.yaml: differs from the config run.json records"
    assert out[1].startswith(f"{part.relative_to(run.path)}: clip 1001_DFA_HAP_XX's mesh part: "
                             "its content differs from its record (sha256)")
    assert "2 problem(s)" in out[-1] and len(out) == 3
    assert main(["verify", str(run.path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and {p["path"] for p in data["problems"]} >= {
        "config.yaml", str(part.relative_to(run.path))}
    # the report refuses to read it; a run re-extracts that clip only, and verify passes
    assert main(["report", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and "Traceback" not in err
    job = _job(tmp_path)
    assert main(["run", str(job), "--no-progress", "--detector", "mediapipe",
                 "--set", "features=[emotions, mesh]"]) == 0
    assert "extract: 1 done, 1 already done" in capsys.readouterr().out
    assert verify_run(run.path).ok, verify_run(run.path).text()


def test_verify_of_what_is_no_run(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nothing")]) == 1
    assert "nothing: not a directory" in capsys.readouterr().out
    assert main(["verify", str(tmp_path)]) == 1
    assert "run.json: missing: not a videmo run directory" in capsys.readouterr().out
