"""The run directory itself: permissions and durability of outputs, locks, run.json history,
what the extract hash holds, and what counts as the same input file."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import videmo
from videmo import config as config_mod
from videmo import models, schema, store
from videmo.cli import main
from videmo.config import keys as config_keys
from videmo.extract.corpus import Clip
from videmo.store import RunDir, RunDirError

from .conftest import SAMPLE_CLIPS, make_config


def _job(tmp_path: Path, corpus: Path, out: Path | None = None) -> Path:
    job = tmp_path / "job.yaml"
    job.write_text(f"corpus: {{paths: ['{corpus}']}}\nsampling: {{every_n: 20}}\n"
                   f"run: {{out: '{out or tmp_path / 'run'}', jobs: 1}}\n"
                   f"report: {{figures: false}}\n")
    return job


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """Two sample clips: enough for a run, quick to extract."""
    root = tmp_path / "small"
    root.mkdir()
    for p in SAMPLE_CLIPS[:2]:
        (root / p.name).write_bytes(p.read_bytes())
    return root


# ------------------------------------------------------------------ item 14: umask, fsync
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)], ids=["022", "027"])
def test_outputs_follow_the_umask_and_renames_are_synced(tmp_path, small_corpus, monkeypatch,
                                                         umask, mode):
    synced_dirs: list[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced_dirs.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    old = os.umask(umask)
    try:
        store.write_text_atomic(tmp_path / "one.txt", "x\n")
        assert stat.S_IMODE((tmp_path / "one.txt").stat().st_mode) == mode
        assert synced_dirs == [str(tmp_path)]  # the folder of the rename, once
        assert main(["run", str(_job(tmp_path, small_corpus)), "--no-progress"]) == 0
    finally:
        os.umask(old)
    run = tmp_path / "run"
    outputs = [p for p in run.rglob("*") if p.is_file()]
    assert {p.name for p in outputs} >= {"frames.parquet", "manifest.csv", "run.json",
                                         "config.yaml", "corpus.json", "clips.csv"}
    wrong = {str(p.relative_to(run)): oct(stat.S_IMODE(p.stat().st_mode)) for p in outputs
             if stat.S_IMODE(p.stat().st_mode) != mode}
    assert not wrong
    # every atomic write synced its folder: the per-clip folders, the run, the report
    assert {str(run / "parts"), str(run / "clips"), str(run), str(run / "report")} <= \
        set(synced_dirs)


# ------------------------------------------------------------------ item 12: locks
HOLDER = """
import sys
from videmo.store import RunDir
shard = None if sys.argv[2] == "-" else int(sys.argv[2])
with RunDir(sys.argv[1]).lock(shard, command="holder " + sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path):
    """Start a second process that holds a lock of a run directory until it is told to stop."""
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": str(Path(videmo.__file__).parents[1])}

    def start(run: Path, shard: int | None = None) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(run),
                              "-" if shard is None else str(shard)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline() == "locked\n"
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.communicate("", timeout=60)


def _stop(p: subprocess.Popen) -> None:
    p.communicate("", timeout=60)
    assert p.returncode == 0


def test_a_second_writer_exits_naming_the_holder(tmp_path, small_corpus, holder, capsys):
    job = _job(tmp_path, small_corpus)
    assert main(["extract", str(job), "--no-progress"]) == 0
    p = holder(tmp_path / "run")
    capsys.readouterr()
    for argv in (["extract", str(job), "--no-progress"], ["run", str(job), "--no-progress"],
                 ["report", str(tmp_path / "run")],
                 ["extract", str(job), "--no-progress", "--shard", "0/2"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"pid {p.pid} on host {socket.gethostname()}" in err, err
        assert "holder -" in err and "the whole run" in err
        assert str(tmp_path / "run" / "locks" / "run.lock") in err  # what to delete if gone
    _stop(p)
    assert main(["extract", str(job), "--no-progress"]) == 0
    assert not (tmp_path / "run" / "locks" / "run.lock").exists()  # released


def test_shard_locks_exclude_their_shard_and_the_whole_run_only(tmp_path, holder):
    run = RunDir(tmp_path / "run")
    p = holder(run.path, shard=0)
    with store.RunLock(run, shard=1, command="task 1"):  # another shard: side by side
        with pytest.raises(RunDirError, match=f"pid {p.pid} .*shard 0: holder 0"):
            store.RunLock(run, shard=0).acquire()
        with pytest.raises(RunDirError, match=f"pid {p.pid} .*shard 0: holder 0"):
            store.RunLock(run).acquire()  # the whole run waits for every shard
    _stop(p)
    assert sorted(f.name for f in run.locks.glob("*.lock")) == []
    p = holder(run.path)  # the whole run held: no shard may start
    with pytest.raises(RunDirError, match=f"pid {p.pid} .*the whole run: holder -"):
        store.RunLock(run, shard=3).acquire()
    assert not (run.locks / "shard-3.lock").exists()  # a refused lock leaves nothing behind
    _stop(p)
    # nested in one process (`videmo run` around its extract): counted, not refused
    with store.RunLock(run), store.RunLock(run, shard=3), store.RunLock(run):
        assert (run.locks / "run.lock").exists()
    assert not list(run.locks.glob("*.lock"))


def test_a_killed_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path, small_corpus,
                                                               holder, caplog):
    job = _job(tmp_path, small_corpus)
    p = holder(tmp_path / "run")
    p.kill()
    p.wait()
    lock = tmp_path / "run" / "locks" / "run.lock"
    assert json.loads(lock.read_text())["pid"] == p.pid  # left behind by the kill
    with caplog.at_level(logging.WARNING, logger="videmo"):
        assert main(["extract", str(job), "--no-progress"]) == 0
    assert f"taking over the stale lock {lock}" in caplog.text
    assert f"pid {p.pid} on {socket.gethostname()}" in caplog.text


@pytest.mark.parametrize("holder_info, stale", [
    ({"pid": "ppid", "start": "real"}, False),  # a live process holds it
    ({"pid": "ppid", "start": 1}, True),  # that pid runs another program now (pid reused)
    ({"pid": "dead", "host": "other-node"}, False),  # another host: cannot be checked
    ({"pid": "dead"}, True),
])
def test_stale_means_same_host_and_holder_gone(tmp_path, holder_info, stale):
    run = RunDir(tmp_path / "run")
    run.locks.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pids = {"ppid": os.getppid(), "dead": dead.pid}
    info = {"host": socket.gethostname(), "command": "videmo extract x.yaml",
            "since": "2026-01-01T00:00:00+00:00", "scope": "the whole run", **holder_info}
    info["pid"] = pids[info["pid"]]
    if info.get("start") == "real":
        info["start"] = store._proc_start(info["pid"])
    (run.locks / "run.lock").write_text(json.dumps(info))
    if stale:
        with store.RunLock(run):
            assert json.loads((run.locks / "run.lock").read_text())["pid"] == os.getpid()
    else:
        with pytest.raises(RunDirError) as e:
            store.RunLock(run).acquire()
        assert f"pid {info['pid']} on host {info['host']} since 2026-01-01" in str(e.value)
        assert ("another host" in str(e.value)) == (info["host"] == "other-node")


def test_a_shard_task_runs_beside_another_shard_and_records_its_invocation(
        tmp_path, small_corpus, holder, capsys):
    job = _job(tmp_path, small_corpus)
    run = RunDir(tmp_path / "run")
    p = holder(run.path, shard=0)
    assert main(["extract", str(job), "--no-progress", "--shard", "1/2"]) == 0
    assert main(["extract", str(job), "--no-progress", "--shard", "0/2"]) == 2
    assert f"pid {p.pid}" in capsys.readouterr().err
    _stop(p)
    assert main(["extract", str(job), "--no-progress", "--shard", "0/2"]) == 0
    history = json.loads(run.run_json.read_text())["history"]
    assert [h["shard"] for h in history] == [1, 0]


# ------------------------------------------------------------------ item 11: run.json, key
def test_run_json_keeps_its_creation_and_appends_every_invocation(tmp_path, small_corpus,
                                                                  monkeypatch):
    def videmo(*argv: str) -> int:
        monkeypatch.setattr(sys, "argv", ["videmo", *argv])
        return main(list(argv))

    job = _job(tmp_path, small_corpus)
    run = RunDir(tmp_path / "run")
    assert videmo("extract", str(job), "--no-progress") == 0
    first = json.loads(run.run_json.read_text())
    assert videmo("run", str(job), "--no-progress", "--set", "run.jobs=1") == 0
    assert videmo("report", str(run.path)) == 0
    meta = json.loads(run.run_json.read_text())
    assert meta["created"] == first["created"]
    history = meta["history"]
    assert len(history) == 3
    assert "run.jobs=1" in history[1]["command"] and "report" in history[2]["command"]
    for entry in history:
        assert entry["host"] == socket.gethostname() and entry["time"]
        assert entry["versions"]["opencv-python-headless"]
    assert meta["extract_version"] == config_mod.EXTRACT_VERSION
    # the default frame model's files (pixels_real: network, card, the detectors' framings)
    assert meta["extract_key"]["model_sha256"] == {
        name: models.SHA256[name] for name in (
            models.HAAR_CASCADE, models.PIXELS_REAL, models.PIXELS_REAL_CARD, models.FACE_FRAMING)}


def test_extract_hash_holds_code_version_models_and_packages(tmp_path, monkeypatch):
    haar = make_config(tmp_path, tmp_path)
    mtcnn = make_config(tmp_path, tmp_path, faces={"detector": "mtcnn",
                                                   "mtcnn_engine": "tensorflow"})
    before = haar.extract_hash(), mtcnn.extract_hash()
    # choosing clips changes no clip's numbers
    for corpus in ({"exclude": ["bad*"]}, {"include": ["2019/*"]},
                   {"video_extensions": [".mp4"]}):
        assert make_config(tmp_path, tmp_path / "elsewhere",
                           corpus=corpus).extract_hash() == before[0]
    assert make_config(tmp_path, tmp_path, corpus={"image_fps": 25.0}).extract_hash() \
        != before[0]
    monkeypatch.setattr(config_keys, "EXTRACT_VERSION", config_keys.EXTRACT_VERSION + 1)
    assert (haar.extract_hash(), mtcnn.extract_hash()) != before
    monkeypatch.undo()
    monkeypatch.setattr(models, "SHA256", {**models.SHA256, models.HAAR_CASCADE: "0" * 64})
    assert haar.extract_hash() != before[0] and mtcnn.extract_hash() == before[1]
    monkeypatch.undo()
    from videmo import runtime

    real = runtime.package_version

    def bumped(package):
        def version(*names):
            return "99.0" if package in names else real(*names)
        return version

    for package, changes in [("opencv-python-headless", (True, True)),
                             ("ai-edge-litert", (True, True)),
                             ("tensorflow", (False, True)), ("mtcnn", (False, True))]:
        monkeypatch.setattr(runtime, "package_version", bumped(package))
        after = haar.extract_hash(), mtcnn.extract_hash()
        assert (after[0] != before[0], after[1] != before[1]) == changes, package
    monkeypatch.setattr(runtime, "package_version", real)
    assert (haar.extract_hash(), mtcnn.extract_hash()) == before


def test_a_refused_run_directory_names_what_differs(tmp_path, small_corpus, capsys,
                                                    monkeypatch):
    job = _job(tmp_path, small_corpus)
    assert main(["extract", str(job), "--no-progress"]) == 0
    monkeypatch.setattr(config_keys, "EXTRACT_VERSION", config_keys.EXTRACT_VERSION + 1)
    capsys.readouterr()
    assert main(["extract", str(job), "--no-progress", "--set", "sampling.every_n=15"]) == 2
    err = capsys.readouterr().err
    assert "sampling.every_n: 20 -> 15" in err
    assert f"extract_version: {config_keys.EXTRACT_VERSION - 1} -> " in err


def test_run_directories_of_other_videmo_versions_get_a_message_not_a_traceback(
        tmp_path, small_corpus, capsys):
    """A run written before run formats and face tracks (no videmo_run, no extract key, no
    track column) still reports; what needs tracks names the key and the fix; extracting into
    it names why it is refused. A run of a newer format is refused by every command."""
    import pandas as pd

    job = _job(tmp_path, small_corpus)
    assert main(["run", str(job), "--no-progress"]) == 0
    run = RunDir(tmp_path / "run")
    meta = json.loads(run.run_json.read_text())
    for key in ("videmo_run", "extract_key", "history", "record_sha256", "checksummed"):
        meta.pop(key)
    meta["extract_hash"] = "0123456789abcdef"
    run.run_json.write_text(json.dumps(meta))
    for part in [*run.parts.glob("*.parquet"), run.frames_path]:
        pd.read_parquet(part).drop(columns=schema.TRACK).to_parquet(part)
    for path in run.clips.glob("*.json"):  # nor parts' hashes and checksums in its records
        rec = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in rec.items()
                                    if k not in ("parts", "record_sha256", "checksummed")}))
    capsys.readouterr()
    assert main(["report", str(run.path)]) == 0
    assert main(["report", str(run.path), "--set", "report.track=main"]) == 2
    assert "config key 'report.track': main needs the per-frame table's track column" in \
        capsys.readouterr().err
    assert main(["extract", str(job), "--no-progress"]) == 2
    assert "made by an older videmo" in capsys.readouterr().err
    meta["videmo_run"] = store.RUN_FORMAT + 1
    run.run_json.write_text(json.dumps(meta))
    for argv in (["report", str(run.path)], ["status", str(run.path)],
                 ["extract", str(job), "--no-progress"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"written by a newer videmo (run format {store.RUN_FORMAT + 1}" in err, argv
        assert "Traceback" not in err


# ------------------------------------------------------------------ item 10: the input file
def test_file_stamp_of_a_video_and_of_an_image_sequence(tmp_path):
    cfg = make_config(tmp_path, tmp_path)
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x" * 100)
    os.utime(video, ns=(1, 1_700_000_000_123_456_789))
    assert store.file_stamp(Clip("a", video), cfg) == {
        schema.FILE_SIZE: 100, schema.FILE_MTIME_NS: 1_700_000_000_123_456_789}
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, t in enumerate((5, 9, 7)):
        (seq / f"f{i}.png").write_bytes(b"p" * (10 + i))
        os.utime(seq / f"f{i}.png", ns=(1, t * 10**18))
    (seq / "README.txt").write_text("not a frame, newer" * 10)
    stamp = store.file_stamp(Clip("seq", seq, "images"), cfg)
    assert stamp == {schema.FILE_SIZE: 33, schema.FILE_MTIME_NS: 9 * 10**18}
    assert store.file_stamp(Clip("gone", tmp_path / "gone.mp4"), cfg) == {
        schema.FILE_SIZE: None, schema.FILE_MTIME_NS: None}


def test_locks_of_ended_slurm_jobs_are_cleared_by_submit(tmp_path, capsys):
    """A task SIGKILLed on another node leaves a lock nobody can prove stale; `submit` (which
    checked that no job of the run is queued) clears those of the run's own jobs only."""
    assert store.slurm_job_id({"SLURM_ARRAY_JOB_ID": "42", "SLURM_ARRAY_TASK_ID": "3",
                               "SLURM_JOB_ID": "45"}) == "42_3"
    assert store.slurm_job_id({"SLURM_JOB_ID": "45"}) == "45"
    run = RunDir(tmp_path / "run")
    run.locks.mkdir(parents=True)
    for name, job in (("shard-0.lock", "4242_0"), ("shard-1.lock", "777_1"),
                      ("shard-2.lock", None)):
        (run.locks / name).write_text(json.dumps({"host": "node7", "pid": 99, "slurm_job": job}))
    with pytest.raises(RunDirError, match="SLURM job 4242_0"):
        store.RunLock(run).acquire()
    assert store.clear_ended_job_locks(run, ["4242", "4243"]) == ["shard-0.lock"]
    assert sorted(p.name for p in run.locks.glob("*.lock")) == ["shard-1.lock", "shard-2.lock"]


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("True", True), ("true", True), (" TRUE ", True),
    ("1", True), ("yes", True), ("False", False), ("", False), (None, False),
    (float("nan"), False), (pd.NA, False), ("no", False),
])
def test_truncated_is_read_one_way_from_json_records_and_csv_manifests(value, expected):
    assert store.is_truncated({schema.TRUNCATED: value}) is expected
    assert store.is_truncated({}) is False  # a record from before the flag


def test_why_not_done_is_the_one_rule_of_done_ness(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"12345")
    cfg = make_config(tmp_path, tmp_path)
    run = RunDir.prepare(cfg)
    clip = Clip("a", video, "video")
    h = cfg.extract_hash()
    rec = {schema.CLIP_ID: "a", schema.STATUS: schema.DONE, schema.CONFIG_HASH: h,
           **store.file_stamp(clip, cfg)}
    assert run.why_not_done(None, h) == "not extracted"
    assert run.why_not_done({**rec, schema.CONFIG_HASH: "other"}, h) == \
        "extracted with another config"
    assert run.why_not_done({**rec, schema.STATUS: schema.FAILED}, h) == schema.FAILED
    assert run.why_not_done(rec, h) == "its rows are missing"
    run.part_path("a").parent.mkdir(parents=True, exist_ok=True)
    run.part_path("a").write_bytes(b"")
    assert run.why_not_done(rec, h, clip, cfg) is None
    unstamped = {k: v for k, v in rec.items() if k not in (schema.FILE_SIZE,
                                                            schema.FILE_MTIME_NS)}
    assert run.why_not_done(unstamped, h, clip, cfg) is None  # status and report keep it
    assert run.why_not_done(unstamped, h, clip, cfg, redo_unstamped=True) == \
        "its file changed after it was done"  # extract redoes it
    video.write_bytes(b"123456")
    assert run.why_not_done(rec, h, clip, cfg) == "its file changed after it was done"
