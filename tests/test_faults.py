"""Reliability: real bad files, signals, SIGKILL trials, a full disk, no network.

Every bad input is a real file made here. Kills and signals hit a real `videmo extract` process
(and its worker processes); afterwards the per-frame table must equal an uninterrupted run's.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from videmo import schema, store
from videmo.cli import main
from videmo.config import ConfigError
from videmo.store import RunDir

from .conftest import SAMPLE_CLIPS, read_frames, write_video

IS_ROOT = os.geteuid() == 0
# the kill corpus: every 4th frame of the six clips, about 100 frames; a clip is still a few
# hundred ms of work, and the tests poll for records every 20-50 ms
KILL_EVERY_N = 4


def _job(tmp_path: Path, corpus: Path, out: Path | None = None, every_n: int = KILL_EVERY_N,
         extra: str = "") -> Path:
    job = tmp_path / f"job-{out.name if out else 'run'}.yaml"
    job.write_text(f"corpus: {{paths: ['{corpus}']}}\nsampling: {{every_n: {every_n}}}\n"
                   f"run: {{out: '{out or tmp_path / 'run'}', jobs: 1}}\n{extra}")
    return job


def _manifest(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "manifest.csv", keep_default_na=False).set_index(schema.CLIP_ID)


def _as_in_a_terminal() -> None:
    # A background job of a non-interactive shell inherits SIGINT ignored (and Python keeps it
    # so): the tests must not depend on how pytest was started.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _videmo(*args: str, **kw) -> subprocess.Popen:
    """`videmo ...` as its own process group (so a signal can reach its workers too)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "videmo", *args], env=env,
                            start_new_session=True, preexec_fn=_as_in_a_terminal,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# ------------------------------------------------------------------ bad inputs
def test_odd_names_are_ordinary_clips(tmp_path):
    corpus = tmp_path / "odd corpus"
    corpus.mkdir()
    names = ["with space.flv", "it's \"quoted\".flv", "émotion_日本.flv", "semi;colon,comma.flv"]
    for name in names:
        shutil.copy(SAMPLE_CLIPS[3], corpus / name)
    assert main(["run", str(_job(tmp_path, corpus, every_n=10)), "--no-progress"]) == 0
    frames = pd.read_parquet(tmp_path / "run" / "frames.parquet")
    assert sorted(frames[schema.CLIP_ID].unique()) == sorted(Path(n).stem for n in names)
    clips = pd.read_csv(tmp_path / "run" / "report" / "clips.csv")
    assert sorted(clips[schema.FILENAME]) == sorted(Path(n).stem for n in names)
    # one row per clip, same frames for identical files
    assert frames.groupby(schema.CLIP_ID).size().nunique() == 1


def test_unreadable_file_fails_only_its_clip(tmp_path):
    """A file without read permission. Root reads anything, so as root the run is done as
    `nobody` (setpriv); otherwise chmod 000 is enough."""
    base = Path(tempfile.mkdtemp(prefix="videmo-perm-"))  # outside pytest's root-only tmp
    try:
        corpus, out = base / "corpus", base / "out"
        corpus.mkdir()
        out.mkdir()
        shutil.copy(SAMPLE_CLIPS[0], corpus / "readable.flv")
        shutil.copy(SAMPLE_CLIPS[1], corpus / "locked.flv")
        (corpus / "locked.flv").chmod(0)
        for p in (base, corpus):
            p.chmod(0o755)
        out.chmod(0o777)
        job = _job(base, corpus, out / "run", every_n=10)
        job.chmod(0o644)
        cmd = [sys.executable, "-m", "videmo", "extract", str(job), "--no-progress"]
        if IS_ROOT:
            setpriv = shutil.which("setpriv")
            probe = setpriv and subprocess.run(
                [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                 "-c", "import videmo"], capture_output=True, check=False)
            if not probe or probe.returncode != 0:
                pytest.skip("cannot run videmo as an unprivileged user here (no setpriv, or "
                            "the checkout is not readable by nobody)")
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env={**os.environ, "HOME": str(out), "MPLCONFIGDIR": str(out)})
        assert proc.returncode == 1, proc.stderr
        assert "failed: locked" in proc.stdout and "permission denied" in proc.stdout
        m = _manifest(out / "run")
        assert m.loc["locked", schema.STATUS] == schema.FAILED
        assert m.loc["locked", schema.REASON] == "permission denied: the file is not readable"
        assert m.loc["readable", schema.STATUS] == schema.DONE
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _avi_with_lying_header(path: Path, frames: list[np.ndarray]) -> Path:
    """An MJPG AVI whose headers announce 9,999 frames at 1,000 fps; it holds len(frames)."""
    write_video(path, frames, fps=25, fourcc="MJPG")
    b = bytearray(path.read_bytes())
    avih, strh = b.find(b"avih"), b.find(b"strh")
    struct.pack_into("<I", b, avih + 8 + 16, 9999)  # avih.dwTotalFrames
    struct.pack_into("<I", b, strh + 8 + 24, 1000)  # strh.dwRate (dwScale is 1)
    struct.pack_into("<I", b, strh + 8 + 32, 9999)  # strh.dwLength
    path.write_bytes(bytes(b))
    return path


def test_wrong_frame_count_and_fps_headers(tmp_path, clip_frames):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    frames = [cv2.resize(f, (320, 240)) for f in clip_frames["1001_DFA_NEU_XX"][:30]]
    path = _avi_with_lying_header(corpus / "liar.avi", frames)
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 9999 and cap.get(cv2.CAP_PROP_FPS) == 1000
    cap.release()
    assert main(["extract", str(_job(tmp_path, corpus, every_n=5)), "--no-progress"]) == 0
    m = _manifest(tmp_path / "run")
    assert m.loc["liar", schema.STATUS] == schema.DONE
    assert m.loc["liar", schema.FRAMES_DECODED] == 30 and m.loc["liar", schema.FRAME_COUNT] == 9999
    assert "decoded 30 of 9999" in m.loc["liar", schema.REASON]  # said, not hidden
    df = pd.read_parquet(tmp_path / "run" / "frames.parquet")
    assert list(df[schema.FRAME_INDEX]) == [0, 5, 10, 15, 20, 25]
    assert (df[schema.N_FACES] == 1).all()


def test_4k_frames(tmp_path, clip_frames):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    big = [cv2.resize(f, (3840, 2160), interpolation=cv2.INTER_LINEAR)
           for f in clip_frames["1001_DFA_HAP_XX"][20:22]]
    write_video(corpus / "uhd.mp4", big, fps=25)
    for extra, out in (("", "full"), ("faces: {max_width: 960}\n", "small")):
        job = _job(tmp_path, corpus, tmp_path / out, every_n=1, extra=extra)
        assert main(["extract", str(job), "--no-progress"]) == 0
    full = pd.read_parquet(tmp_path / "full" / "frames.parquet")
    small = pd.read_parquet(tmp_path / "small" / "frames.parquet")
    assert len(full) == 2 and (full[schema.N_FACES] >= 1).all()
    assert (small[schema.N_FACES] >= 1).all()
    assert (full[schema.BOX_W] > 500).all()  # full-resolution pixel boxes in both runs
    assert np.allclose(small[schema.BOX_W], full[schema.BOX_W], rtol=0.1)


def test_image_sequence_with_an_unreadable_image(tmp_path, clip_frames):
    seq = tmp_path / "corpus" / "seq"
    seq.mkdir(parents=True)
    for i, f in enumerate(clip_frames["1001_DFA_NEU_XX"][:4]):
        cv2.imwrite(str(seq / f"frame{i:02d}.png"), f)
    (seq / "frame04.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert main(["extract", str(_job(tmp_path, tmp_path / "corpus", every_n=1)),
                 "--no-progress"]) == 0
    m = _manifest(tmp_path / "run")
    assert m.loc["seq", schema.STATUS] == schema.DONE
    assert "1 unreadable image(s) skipped: frame04.png" in m.loc["seq", schema.REASON]
    df = pd.read_parquet(tmp_path / "run" / "frames.parquet")
    assert list(df[schema.FRAME_INDEX]) == [0, 1, 2, 3]


def test_yaml_is_loaded_safely(tmp_path):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"run: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        from videmo.config import load

        load(cfg)
    assert not marker.exists()


# ------------------------------------------------------------------ signals and kills
@pytest.fixture(scope="module")
def kill_corpus(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The six sample clips, every KILL_EVERY_N-th frame, and the uninterrupted table."""
    base = tmp_path_factory.mktemp("kill")
    corpus = base / "corpus"
    corpus.mkdir()
    for p in SAMPLE_CLIPS:
        shutil.copy(p, corpus / p.name)
    job = _job(base, corpus, base / "reference")
    assert main(["extract", str(job), "--no-progress"]) == 0
    return corpus, pd.read_parquet(base / "reference" / "frames.parquet")


SMALL_EVERY_N = 8  # about 50 frames of the six clips


@pytest.fixture(scope="module")
def small_corpus(kill_corpus, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The same six clips every 8th frame, and the uninterrupted table: for the tests whose
    faults strike at fixed points (a stage boundary, the nth write, a read-only directory),
    where the amount of work changes nothing but the time."""
    corpus, _ = kill_corpus
    base = tmp_path_factory.mktemp("small")
    job = _job(base, corpus, base / "reference", every_n=SMALL_EVERY_N)
    assert main(["extract", str(job), "--no-progress"]) == 0
    return corpus, pd.read_parquet(base / "reference" / "frames.parquet")


def _check_visible_state(run: Path) -> None:
    """What report would see after a kill: whole files, no duplicate rows."""
    rd = RunDir(run)
    for p in rd.parts.glob("*.parquet"):
        pd.read_parquet(p)  # never half a file
    for p in rd.clips.glob("*.json"):
        json.loads(p.read_text())
    frames = rd.frames()
    assert not frames.duplicated([schema.CLIP_ID, schema.FRAME_INDEX, schema.FACE_INDEX]).any()


def _wait_for_done_clip(run: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in (run / "clips").glob("*.json"):
            if json.loads(p.read_text()).get(schema.STATUS) == schema.DONE:
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail("no clip finished in time")


@pytest.mark.parametrize(("sig", "jobs"), [(signal.SIGTERM, 1), (signal.SIGINT, 2),
                                         (signal.SIGTERM, 2)])
def test_sigterm_and_ctrl_c_stop_cleanly(tmp_path, kill_corpus, sig, jobs):
    corpus, reference = kill_corpus
    run = tmp_path / "run"
    job = _job(tmp_path, corpus, run)
    proc = _videmo("extract", str(job), "--jobs", str(jobs), "--no-progress")
    _wait_for_done_clip(run, proc)
    # Ctrl-C in a terminal signals the whole process group; SIGTERM (scancel) the job's
    # processes. Either way: stop, keep what is finished, say so, exit 1.
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "interrupted" in out and "Traceback" not in err
    m = _manifest(run)
    statuses = set(m[schema.STATUS])
    assert schema.DONE in statuses and schema.INTERRUPTED in statuses, m
    name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
    assert m[m[schema.STATUS] == schema.INTERRUPTED][schema.REASON].str.contains(name).all()
    assert len(m) == len(SAMPLE_CLIPS)  # every clip has a line saying what happened
    _check_visible_state(run)
    proc = _videmo("extract", str(job), "--jobs", str(jobs), "--no-progress")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    pd.testing.assert_frame_equal(pd.read_parquet(run / "frames.parquet"), reference)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_pool_workers_leave_signals_to_the_parent(tmp_path, kill_corpus):
    """The cause of a worker's KeyboardInterrupt traceback on Ctrl-C: workers that handle
    SIGINT/SIGTERM themselves. Each pool worker must ignore both (the parent stops them)."""
    corpus, _ = kill_corpus
    run = tmp_path / "run"
    proc = _videmo("extract", str(_job(tmp_path, corpus, run)), "--jobs", "2", "--no-progress")
    try:
        _wait_for_done_clip(run, proc)
        workers = [p for p in _children(proc.pid)
                   if b"popen_loky" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 2, workers
        for pid in workers:
            status = Path(f"/proc/{pid}/status").read_text()
            ignored = int(status.split("SigIgn:")[1].split()[0], 16)
            for sig in (signal.SIGINT, signal.SIGTERM):
                assert ignored & (1 << (sig - 1)), f"worker {pid} does not ignore {sig.name}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


# A videmo process that SIGKILLs itself at one stage boundary (argv[1]) of the nth clip
# (argv[2]), --jobs 1 so that every write happens in this process.
KILL_AT = """
import os, signal, sys
from pathlib import Path
from videmo import store
from videmo.cli import main

point, nth = sys.argv[1], int(sys.argv[2])
parts, saved = [], []

def die():
    os.kill(os.getpid(), signal.SIGKILL)

real_parquet, real_save = store.write_parquet_atomic, store.RunDir.save
real_csv, real_replace = store.write_csv_atomic, os.replace

def parquet(df, path):
    real_parquet(df, path)
    if point == "part" and Path(path).parent.name == "parts":
        parts.append(path)
        if len(parts) == nth:
            die()  # the clip's rows are written, its record is not

def save(self, result, config_hash, *args, **kwargs):
    record = real_save(self, result, config_hash, *args, **kwargs)
    saved.append(record)
    if point == "record" and len(saved) == nth:
        die()  # rows and record written, the parent has not counted the clip
    return record

def csv(df, path):
    if point == "manifest" and Path(path).name == "manifest.csv":
        die()  # consolidate wrote frames.parquet, not the manifest
    real_csv(df, path)

def replace(src, dst):
    if point == "rename" and Path(dst).name == "frames.parquet":
        die()  # the merged table is written and fsynced under its temp name, not renamed
    real_replace(src, dst)

store.write_parquet_atomic, store.RunDir.save = parquet, save
store.write_csv_atomic, store.os.replace = csv, replace
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize(("point", "recorded", "parts", "merged"), [
    ("part", 2, 3, False),  # killed between a clip's rows and its record: the clip is redone
    ("record", 3, 3, False),  # killed right after a record: the clip stays done
    ("manifest", 6, 6, True),  # killed inside consolidate, between the table and the manifest
    ("rename", 6, 6, False),  # killed inside consolidate, before the table's rename
])
def test_kill_at_each_stage_boundary(tmp_path, small_corpus, point, recorded, parts, merged):
    corpus, reference = small_corpus
    run = tmp_path / "run"
    job = _job(tmp_path, corpus, run, every_n=SMALL_EVERY_N)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", KILL_AT, point, "3", "extract", str(job),
                           "--jobs", "1", "--no-progress"], capture_output=True, text=True,
                          env=env, check=False, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    rd = RunDir(run)
    assert len(rd.records()) == recorded and len(list(rd.parts.glob("*.parquet"))) == parts
    assert not rd.manifest_path.exists()
    assert rd.frames_path.exists() == merged
    if merged:  # what was merged before the kill is whole and right
        pd.testing.assert_frame_equal(pd.read_parquet(rd.frames_path), reference)
    _check_visible_state(run)
    proc = _videmo("extract", str(job), "--no-progress")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"{6 - recorded} done, {recorded} already done, 0 failed of 6 clips" in out
    pd.testing.assert_frame_equal(pd.read_parquet(rd.frames_path), reference)
    m = _manifest(run)
    assert len(m) == 6 and (m[schema.STATUS] == schema.DONE).all()


@pytest.mark.parametrize("jobs", [1, 2])
def test_on_error_abort_stops_at_the_first_failed_clip(tmp_path, kill_corpus, jobs):
    """A broken clip that sorts first: with run.on_error: abort the run stops there, exits 1
    and every other clip has a line saying it was not finished; a rerun without abort
    finishes them."""
    corpus, reference = kill_corpus
    broken = tmp_path / "corpus"
    shutil.copytree(corpus, broken)
    (broken / "0000_broken.mp4").write_text("not a video\n")
    run = tmp_path / "run"
    job = _job(tmp_path, broken, run)
    job.write_text(job.read_text().replace(f"run: {{out: '{run}', jobs: 1}}",
                                           f"run: {{out: '{run}', jobs: 1, on_error: abort}}"))
    assert "on_error: abort" in job.read_text()
    proc = _videmo("extract", str(job), "--jobs", str(jobs), "--no-progress")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "failed: 0000_broken" in out and "Traceback" not in err
    m = _manifest(run)
    assert len(m) == 7 and m.loc["0000_broken", schema.STATUS] == schema.FAILED
    others = m.drop("0000_broken")
    stopped = others[others[schema.STATUS] == schema.INTERRUPTED]
    why = "on_error: abort (clip 0000_broken failed)"
    assert stopped[schema.REASON].str.contains(why, regex=False).all()
    if jobs == 1:  # nothing after the failed clip was started
        assert len(stopped) == 6 and not list((run / "parts").glob("*.parquet"))
    else:  # the other worker's clip may have finished first; nothing else did
        assert set(others[schema.STATUS]) <= {schema.DONE, schema.INTERRUPTED}
        assert len(stopped) >= 4
        assert len(list((run / "parts").glob("*.parquet"))) == len(others) - len(stopped)
    job.write_text(job.read_text().replace(", on_error: abort", ""))
    proc = _videmo("extract", str(job), "--no-progress")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err  # the broken clip still fails, alone
    frames = pd.read_parquet(run / "frames.parquet")
    pd.testing.assert_frame_equal(frames, reference)


KILLS = 4


def _records(run: Path) -> int:
    return len(list((run / "clips").glob("*.json"))) if (run / "clips").is_dir() else 0


def _new_record(run: Path, proc: subprocess.Popen, before: int) -> float | None:
    """Seconds until ``proc`` recorded a clip beyond the ``before`` of its run directory; None
    when it ended first."""
    start = time.monotonic()
    while proc.poll() is None:
        if _records(run) > before:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


@pytest.mark.faults
@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path, kill_corpus, jobs):
    """KILLS SIGKILLs (of videmo and its workers) per setting at random moments of the work,
    each followed by a rerun on the same run directory; whenever a run completes, its table
    must equal the uninterrupted one and a fresh run directory starts.

    Each kill falls a random time (up to two clips' work, measured on this machine now) after
    the run recorded a new clip: so it strikes while parts, records or the merged tables are
    being written (or the run ends first and counts as completed), never in the start-up,
    where it finds nothing to break. (Drawn over a whole run's time, a third of the kills fell
    in the start-up; 6 then kept at least 2 after real progress; 12 until the suite neared
    CI's 20 minutes.)"""
    corpus, reference = kill_corpus
    rng = random.Random(1234 + jobs)
    timed = tmp_path / "timed"
    start = time.monotonic()
    proc = _videmo("extract", str(_job(tmp_path, corpus, timed)), "--jobs", str(jobs),
                   "--no-progress")
    first = _new_record(timed, proc, 0)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    clip_s = (time.monotonic() - start - (first or 0)) / (len(SAMPLE_CLIPS) - 1)
    pd.testing.assert_frame_equal(pd.read_parquet(timed / "frames.parquet"), reference)
    chain, kills, completed = 0, 0, 0
    run = tmp_path / f"run{chain}"
    while kills < KILLS:
        job = _job(tmp_path, corpus, run)
        proc = _videmo("extract", str(job), "--jobs", str(jobs), "--no-progress")
        if _new_record(run, proc, _records(run)) is not None:  # else it ended: checked below
            try:
                proc.wait(timeout=rng.uniform(0, 2 * clip_s))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                _check_visible_state(run)
                continue
        assert proc.wait(timeout=300) == 0, proc.communicate()
        pd.testing.assert_frame_equal(pd.read_parquet(run / "frames.parquet"), reference)
        completed += 1
        chain += 1
        run = tmp_path / f"run{chain}"
    proc = _videmo("extract", str(_job(tmp_path, corpus, run)), "--jobs", str(jobs),
                   "--no-progress")
    assert proc.wait(timeout=180) == 0, proc.communicate()
    pd.testing.assert_frame_equal(pd.read_parquet(run / "frames.parquet"), reference)


# ------------------------------------------------------------------ full disk
def test_failing_writes_stop_the_run_and_keep_finished_clips(tmp_path, small_corpus,
                                                             monkeypatch, capsys):
    """ENOSPC from the third part written (a patched write: works for any user)."""
    corpus, reference = small_corpus
    job = _job(tmp_path, corpus, every_n=SMALL_EVERY_N)
    real = store.write_parquet_atomic
    calls = []

    def full_after_two(df, path):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(df, path)

    monkeypatch.setattr(store, "write_parquet_atomic", full_after_two)
    assert main(["extract", str(job), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "stopped: cannot write to the run directory" in out and "No space left" in out
    run = RunDir(tmp_path / "run")
    assert sum(1 for r in run.records() if r[schema.STATUS] == schema.DONE) == 2
    _check_visible_state(run.path)
    monkeypatch.setattr(store, "write_parquet_atomic", real)
    assert main(["extract", str(job), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path), reference)


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root (the patched-write test "
                                        "covers other users)")
def test_a_real_full_filesystem(tmp_path, kill_corpus):
    corpus, reference = kill_corpus
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], check=True)
    try:
        filler = mnt / "filler"
        # leave room for the run's metadata and a few clips, not for all six
        free = shutil.disk_usage(mnt).free
        filler.write_bytes(b"\0" * (free - 96 * 1024))
        job = _job(tmp_path, corpus, mnt / "run")
        proc = _videmo("extract", str(job), "--no-progress")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, (out, err)
        assert "No space left on device" in out + err and "Traceback" not in err
        run = RunDir(mnt / "run")
        done = [r for r in run.records() if r[schema.STATUS] == schema.DONE]
        assert 0 < len(done) < len(SAMPLE_CLIPS), (out, err)
        _check_visible_state(run.path)
        assert not list(run.parts.glob(".*.tmp")) and not list(run.clips.glob(".*.tmp"))
        filler.unlink()  # make room, rerun: it continues
        proc = _videmo("extract", str(job), "--no-progress")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert f"{len(done)} already done" in out
        pd.testing.assert_frame_equal(pd.read_parquet(run.frames_path), reference)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_read_only_run_directory(tmp_path, small_corpus):
    """Three clips of a run are undone, then the run directory turns read-only (as root: a
    read-only bind mount, as others: chmod, which root ignores). The rerun is refused before
    any work (exit 2, naming run.out), changes nothing; writable again, it continues. (A disk
    that fills or turns read-only during a run: test_failing_writes_stop_the_run_and_keep_
    finished_clips and test_a_real_full_filesystem.)"""
    corpus, reference = small_corpus
    out = tmp_path / "out"
    out.mkdir()
    job = _job(tmp_path, corpus, out / "run", every_n=SMALL_EVERY_N)
    assert main(["extract", str(job), "--no-progress"]) == 0
    rd = RunDir(out / "run")
    for clip_id in sorted(reference[schema.CLIP_ID].unique())[:3]:
        rd.record_path(clip_id).unlink()
        rd.part_path(clip_id).unlink()
    before = {p: p.read_bytes() for p in rd.path.rglob("*") if p.is_file()}
    dirs = [rd.path, rd.parts, rd.clips]
    if IS_ROOT:
        subprocess.run(["mount", "--bind", str(out), str(out)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(out)], check=True)
    else:
        for d in dirs:
            d.chmod(0o555)
    try:
        proc = _videmo("extract", str(job), "--no-progress")
        out_text, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (out_text, err)
        assert f"config key 'run.out': cannot write {rd.path}" in err, err
        assert "is not writable" in err and "Traceback" not in err
        after = {p: p.read_bytes() for p in rd.path.rglob("*") if p.is_file()}
        assert after == before  # no half file, nothing lost
    finally:
        if IS_ROOT:
            subprocess.run(["umount", str(out)], check=True)
        else:
            for d in dirs:
                d.chmod(0o755)
    proc = _videmo("extract", str(job), "--no-progress")
    out_text, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "3 done, 3 already done" in out_text
    pd.testing.assert_frame_equal(pd.read_parquet(rd.frames_path), reference)


# ------------------------------------------------------------------ no network
NO_NETWORK = """
import socket, sys
def guard(event, args):
    if event.startswith("socket.") and event not in ("socket.gethostname", "socket.__new__"):
        raise RuntimeError(f"network use at run time: {event} {args!r:.80}")
    if event == "socket.__new__" and args[1] in (socket.AF_INET, socket.AF_INET6):
        raise RuntimeError(f"network socket at run time: {args!r:.80}")
sys.addaudithook(guard)
import json
from videmo.cli import main
for argv in json.loads(sys.argv[1]):
    print("==== videmo", *argv, flush=True)
    if main(argv) != 0:
        sys.exit(f"videmo {argv} failed")
"""


def test_whole_pipeline_runs_without_network(tmp_path, sample_corpus):
    """`videmo run` with Haar (2 workers), MTCNN on TensorFlow + Keras, MTCNN on LiteRT (with
    O-Net), and BlazeFace + the face mesh, every socket refused: an audit hook in the parent,
    and as root a fresh network namespace with no interface up for all."""
    labels = tmp_path / "labels.csv"
    labels.write_text("clip,label\n" + "".join(f"{p.stem},neutral\n" for p in SAMPLE_CLIPS))
    job = _job(tmp_path, sample_corpus, every_n=20,
               extra=f"report: {{labels: '{labels}'}}\n")
    wrap = [sys.executable, "-c", NO_NETWORK]
    if IS_ROOT and shutil.which("unshare"):
        wrap = ["unshare", "--net", *wrap]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
    runs = [["run", str(job), "--jobs", "2"],
            ["run", str(job), "--detector", "mtcnn", "--out", str(tmp_path / "m"),
             "--set", "emotions.engine=keras", "--set", "faces.mtcnn_engine=tensorflow"],
            ["run", str(job), "--detector", "mtcnn", "--out", str(tmp_path / "lite"),
             "--set", "faces.mtcnn.onet=true"],
            ["run", str(job), "--detector", "mediapipe", "--out", str(tmp_path / "mesh"),
             "--set", "features=[emotions, mesh]"]]
    # one guarded process runs the four (its workers, spawned, are in the namespace too)
    proc = subprocess.run([*wrap, json.dumps([[*r, "--no-progress"] for r in runs])],
                          capture_output=True, text=True, env=env, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stdout.split("==== videmo")[1:]
    assert len(said) == len(runs) and all("accuracy" in s for s in said), proc.stdout[-3000:]
    assert (tmp_path / "m" / "report" / "clips.csv").exists()
    assert (tmp_path / "lite" / "report" / "clips.csv").exists()
    assert (tmp_path / "mesh" / "features" / "mesh.parquet").exists()
    assert len(read_frames(SAMPLE_CLIPS[0], limit=1)) == 1  # the corpus is intact
