"""Every command's terminal output is videmo's own words: the log lines that FFmpeg, OpenCV,
TensorFlow and LiteRT write from native code to descriptor 2 never reach it
(videmo.runtime.filter_native_stderr routes them to the DEBUG log: ``videmo -v`` shows them).

Each command runs in its own process, as a user runs it, with the logging variables unset. What
native code prints differs by machine (oneDNN's DT_BOOL line, for one, only on some CPUs), so
besides the command's real output a native line is also written to descriptor 2 from inside the
command (``INJECT``): the test holds on any machine."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from . import browser
from .conftest import REPO, SAMPLE_CLIPS

ffmpeg_tool = browser.ffmpeg_tool  # installs ffmpeg when missing (a fixture)

# what native log lines look like (independent of videmo.runtime's own patterns)
NATIVE = re.compile(r"^([IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+\] |\[[^\]]* @ 0x[0-9a-f]+\] |"
                    r"\[ ?(WARN|ERROR|INFO):\d|INFO: Created|WARNING: All log messages before)",
                    re.MULTILINE)
ONEDNN = ("E0000 00:00:1796367718.337043   12231 mkl_util.h:208] oneDNN supports DT_BOOL only "
          "on platforms with AVX-512. Falling back to the default Eigen-based implementation if "
          "present.")
MOOV = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c0a3e240] moov atom not found"

# `python -c` that runs the videmo command of sys.argv[1:] as the console script does, its
# command first writing ONEDNN to descriptor 2 from native-like code (os.write)
INJECT = textwrap.dedent("""
    import os, sys
    from videmo import cli
    name = sys.argv[1]
    real = cli.COMMANDS[name]
    def command(args):
        os.write(2, (%r + "\\n").encode())
        return real(args)
    cli.COMMANDS[name] = command
    sys.argv = ["videmo", *sys.argv[1:]]
    cli.entry()
""") % ONEDNN


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *sys.path])
    return env


def _videmo(*args: str, inject: bool = True, **kw) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", INJECT, *args] if inject else \
        [sys.executable, "-m", "videmo", *args]
    return subprocess.run(command, env=_env(), capture_output=True, text=True,
                          timeout=kw.pop("timeout", 600), **kw)


def _no_native_line(err: str) -> None:
    found = [line for line in err.splitlines() if NATIVE.match(line)]
    assert not found, f"native log lines reached the terminal: {found}\n---\n{err}"


def _broken_corpus(tmp_path: Path) -> Path:
    """One sample clip and an MP4 cut before its index (FFmpeg: "moov atom not found")."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE_CLIPS[0], corpus)
    data = (REPO / "tests" / "data" / "vfr.mp4").read_bytes()
    (corpus / "broken.mp4").write_bytes(data[:data.index(b"moov") - 4])
    return corpus


def test_the_filter_routes_native_lines_and_passes_everything_else():
    """In a process of its own: native noise goes to the DEBUG log, real lines, Python's own
    stderr and a progress bar's partial line pass, a child process's lines are filtered too."""
    code = textwrap.dedent(f"""
        import logging, os, subprocess, sys
        from videmo.runtime import filter_native_stderr
        filter_native_stderr()
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")
        os.write(2, b{MOOV!r} + b"\\n" + b"a real native line\\n")
        os.write(2, b"[ WARN:0@0.012] global cap_ffmpeg_impl.hpp:1092 open cannot open\\n")
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b{ONEDNN!r} + b'\\\\n')"])
        print("videmo: python's own words", file=sys.stderr)
        os.write(2, b" 50%|#####     | 3/6\\r")
    """)
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          timeout=120)  # bytes: text mode would turn the bar's \r into \n
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "a real native line\n" in err and "videmo: python's own words\n" in err
    assert err.endswith(" 50%|#####     | 3/6\r")
    shown = [line for line in err.splitlines() if not line.startswith("DEBUG native: ")]
    _no_native_line("\n".join(shown))
    routed = [line for line in err.splitlines() if line.startswith("DEBUG native: ")]
    assert [line.removeprefix("DEBUG native: ") for line in routed] == [
        MOOV, "[ WARN:0@0.012] global cap_ffmpeg_impl.hpp:1092 open cannot open", ONEDNN]


def test_a_child_holding_stderr_does_not_hold_the_exit():
    """A child process still alive at exit (a worker pool's) keeps the filter's pipe open: the
    process passes on what it wrote and exits, without waiting for the pipe's end (it waited
    up to 2 s: every `videmo extract --jobs 2`). The child's stderr is the pipe's last
    writer; the test kills it."""
    code = textwrap.dedent("""
        import os, subprocess, sys, time
        from videmo.runtime import filter_native_stderr
        filter_native_stderr()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 stdout=subprocess.DEVNULL)
        print(child.pid, flush=True)
        os.write(2, b"the last line\\n")
        os.write(2, b"a partial one")
        print(time.time(), flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=120)
    ended = time.time()
    pid, last = done.stdout.split()
    os.kill(int(pid), signal.SIGKILL)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "the last line\na partial one"
    assert ended - float(last) < 1.5, f"exit took {ended - float(last):.2f} s after the last line"


def test_everything_is_shown_with_tf_cpp_min_log_level_0():
    code = ("import os; from videmo.runtime import filter_native_stderr; filter_native_stderr(); "
            f"os.write(2, b{MOOV!r} + b'\\n')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**_env(), "TF_CPP_MIN_LOG_LEVEL": "0"}, timeout=120)
    assert done.stderr == MOOV + "\n"


def test_submit_preflight_of_a_broken_clip(tmp_path):
    """`videmo submit` plans shards by frames, reading every clip through OpenCV: FFmpeg's
    "moov atom not found" for the broken one stays off the terminal."""
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump({"corpus": {"paths": [str(_broken_corpus(tmp_path))]},
                                   "run": {"out": str(tmp_path / "run")},
                                   "slurm": {"shards": 2}}))
    for inject in (False, True):
        done = _videmo("submit", str(cfg), "--dry-run", inject=inject)
        assert done.returncode == 0, done.stderr
        assert "#SBATCH" in done.stdout
        assert "moov" not in done.stderr
        _no_native_line(done.stderr)


def test_learn(tmp_path):
    from .test_learn import fake_run, simulated

    clips, golden = simulated(seed=3, n_clips=12, persons=4, lengths=(8, 16))
    run, _ = fake_run(tmp_path, clips, golden, classifiers=["lstm"], lstm_epochs=2)
    done = _videmo("learn", str(run.path), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "lstm" in done.stdout
    _no_native_line(done.stderr)


def test_train(tmp_path):
    from .train_fixture import build

    data = build(tmp_path / "fer-like")
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"train": {
        "data": str(data), "cache": str(tmp_path / "cache"), "out": str(tmp_path / "out"),
        "epochs": 1, "min_images": 2, "workers": 1, "models": ["blend_mlp"]}}))
    done = _videmo("train", str(cfg), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "| blend_mlp |" in done.stdout
    _no_native_line(done.stderr)


def test_annotate(tmp_path, ffmpeg_tool):
    """The server on a corpus with a broken clip: started, the page and both clips asked for
    (the broken one is transcoded, and fails), stopped with Ctrl-C."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"corpus": {"paths": [str(_broken_corpus(tmp_path))]},
                                   "annotate": {"cache": str(tmp_path / "cache")}}))
    proc = subprocess.Popen([sys.executable, "-c", INJECT, "annotate", str(cfg), "--out",
                             str(tmp_path / "run"), "--observer", "alice"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("videmo annotate: http://127.0.0.1:"), line + proc.stderr.read()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        for path in ("/", f"/media/{SAMPLE_CLIPS[0].stem}", "/media/broken"):
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                          .encode())
                while s.recv(65536):
                    pass
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped; 0 events" in out
    _no_native_line(err)


def test_release_workers_stops_the_pool():
    """`videmo`'s end stops joblib's reusable pool and waits for its workers (they held the
    filter's pipe until the interpreter's own shutdown reached them)."""
    from joblib import Parallel, delayed

    from videmo.runtime import release_workers

    pids = set(Parallel(n_jobs=2, backend="loky")(delayed(os.getpid)() for _ in range(4)))
    assert pids and os.getpid() not in pids
    release_workers()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} still alive after release_workers()")
    release_workers()  # no pool: nothing to do
