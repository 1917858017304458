"""Process-level set-up: thread counts, a quiet TensorFlow, and package versions.

Thread counts must be fixed before TensorFlow starts its pools, so every entry point that may
import TensorFlow calls :func:`configure_threads` first. TensorFlow is only imported when a part
that needs it (MTCNN, the Keras engine) is used: Haar + tflite runs never pay its start-up cost.

TensorFlow, XLA, LiteRT, OpenCV and FFmpeg write from native code straight to file descriptor
2, some of it before ``TF_CPP_MIN_LOG_LEVEL`` is read (absl's "before InitializeLog" lines, the
CUDA stub's "Could not find cuda drivers", LiteRT's "Created TensorFlow Lite XNNPACK delegate",
oneDNN's "E0000 ... supports DT_BOOL only on platforms with AVX-512", FFmpeg's "[mov,mp4,... @
0x...] moov atom not found" when OpenCV opens a broken file). None of it is videmo's own words:
what it means for a run (a clip that cannot be read, a GPU that is not seen) videmo says itself.
The ``videmo`` command therefore routes file descriptor 2 through :func:`filter_native_stderr`
for its whole life: :func:`is_native_noise` lines go to the log at DEBUG level (``videmo -v``
shows them), every other line passes. :func:`quiet_native_logs` does the same around loading
models in a process that did not start as ``videmo`` (a notebook, the tests).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.metadata
import io
import logging
import math
import os
import platform
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_threads: int | None = None


def jobs_for(configured: int | None = None) -> int:
    """Worker processes a run uses: ``run.jobs``, else SLURM's grant of CPUs (inside a task),
    else one per core this process may use. ``--jobs N`` is a budget of N cores: one worker
    each (:func:`threads_for`)."""
    if configured:
        return configured
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    return available_cores()


def threads_for(jobs: int | None = None, configured: int | None = None, workers: int | None = None
                ) -> int:
    """Threads of one worker: ``run.threads``, else its share of the ``jobs`` cores among the
    ``workers`` that actually start (fewer than ``jobs`` when there are fewer clips or chunks):
    one each when every worker is busy, so ``--jobs 1`` uses one core and ``--jobs 2`` two."""
    if configured:
        return configured
    jobs = jobs_for(jobs)
    return max(1, jobs // max(1, min(jobs, workers or jobs)))


class CoreShare:
    """The cores of idle pool workers, lent to the units still running.

    ``--jobs N`` starts N one-thread workers; at the end of a run (the last clips of a corpus,
    the two chunks of a recording when one finishes first) some of them idle while others
    still work. The parent writes here how many threads each unit still running may use
    (:meth:`update`, after each unit that ends); each worker reads it between batches of
    frames (:meth:`follower`) and resizes OpenCV's thread pool (the Haar cascade, resizing,
    colour conversion; a LiteRT network or FFmpeg's decoder keeps the threads it opened
    with). A file in the system's temporary folder, one per pool, removed by :meth:`close`.
    Only a saving: :meth:`open` gives None where the file cannot be made, and a write that
    fails keeps the share as it was; neither stops a run."""

    def __init__(self, jobs: int, threads: int, workers: int) -> None:
        fd, name = tempfile.mkstemp(prefix="videmo-cores-", suffix=".txt")
        os.close(fd)
        self.path, self.jobs, self.threads, self.workers = name, jobs, threads, workers
        self.each = 0
        self.update(workers)

    @classmethod
    def open(cls, jobs: int, threads: int, workers: int) -> CoreShare | None:
        try:
            return cls(jobs, threads, workers)
        except OSError as e:  # no usable temporary folder: the workers keep their threads
            log.debug("no core share (%s): idle workers' cores are not lent", e)
            return None

    def update(self, running: int) -> None:
        """``running`` units are left (in progress or queued): each may use its share."""
        each = max(self.threads, self.jobs // max(1, min(self.workers, running)))
        if each != self.each:
            tmp = f"{self.path}.{os.getpid()}.tmp"
            try:
                with open(tmp, "w") as f:
                    f.write(str(each))
                os.replace(tmp, self.path)
            except OSError as e:  # a full /tmp: the share stays as it was
                log.debug("core share not updated (%s)", e)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                return
            self.each = each

    def close(self) -> None:
        for path in (self.path, f"{self.path}.{os.getpid()}.tmp"):
            with contextlib.suppress(OSError):
                os.unlink(path)

    @staticmethod
    def follower(path: str | None, every_s: float = 0.5):
        """A worker's side: a function to call between batches that sets this process's
        threads to the share written at ``path`` (read at most every ``every_s``); None
        without a share."""
        if path is None:
            return None
        last = [-math.inf]

        def follow() -> None:
            now = time.monotonic()
            if now - last[0] < every_s:
                return
            last[0] = now
            try:
                with open(path) as f:
                    each = int(f.read() or 0)
            except (OSError, ValueError):  # the run is ending, or a write in progress
                return
            if each >= 1 and each != _threads:
                configure_threads(each)

        return follow


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: a SLURM task's or a taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def warn_if_oversubscribed(jobs: int | None, cores: int | None = None, where: str = "") -> bool:
    """Warn (once per call: a command calls it once) when more workers than cores are asked
    for: they would share the cores, each slower, for no gain. Returns whether it warned.
    ``jobs`` None (one per core) never does."""
    if jobs is None:
        return False
    cores = available_cores() if cores is None else cores
    if jobs <= cores:
        return False
    where = where or f"the {cores} core{'s' * (cores != 1)} this process may use"
    log.warning("--jobs %d (run.jobs) is more than %s: the workers will share them, each "
                "slower, with no gain; use --jobs %d or fewer", jobs, where, cores)
    return True


def configure_threads(n: int) -> None:
    """Pin OpenCV and (future) TensorFlow thread pools of this process to ``n`` threads."""
    global _threads
    if n == _threads:
        return
    import cv2

    cv2.setNumThreads(n)
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1" if n <= 2 else "2"
    if "tensorflow" in sys.modules and _threads is None:
        _set_tf_threads(n)
    _threads = n


def _set_tf_threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1 if n <= 2 else 2)
    except RuntimeError:  # already initialised: the env vars above did the job or it is too late
        pass


def current_threads() -> int:
    return _threads or threads_for(workers=1)  # nothing configured: one process, every core


def import_tensorflow():
    """Import TensorFlow quietly, with this process's thread budget."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's kernels (TensorFlow's default on x86): MTCNN at batch 16 on one core takes ~20%
    # less CPU and a sixth of the page faults (system time 3.3 s -> 1.2 s) with the same boxes
    # and scores (bench/profiles/levers.md); its start-up notice is an INFO line, dropped
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    first = "tensorflow" not in sys.modules
    import tensorflow as tf

    if first:
        _set_tf_threads(current_threads())
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        use_gpus(tf)
    return tf


def use_gpus(tf) -> list:
    """The GPUs TensorFlow sees, each set to grow its memory as needed (so two workers can
    share one); logs which device MTCNN and the Keras engine will run on, and warns when a
    GPU was granted (SLURM, CUDA_VISIBLE_DEVICES) but TensorFlow sees none."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised
            pass
    log.info("TensorFlow %s: %s", tf.__version__,
             f"{len(gpus)} GPU(s), used for MTCNN and the Keras engine" if gpus else
             "no GPU visible (CPU)")
    if not gpus and _gpu_granted():
        log.warning("a GPU was granted but TensorFlow sees none: install videmo with the "
                    "gpu extra (pip install 'videmo[gpu]', CUDA wheels for TensorFlow)")
    return gpus


def tf_device(tf) -> str:
    """The TensorFlow device MTCNN runs on: the first GPU TensorFlow sees, else the CPU."""
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"


# Native lines that are not videmo's words. absl/glog lines of TensorFlow and XLA (I, W and E
# levels: I0000 ..., E0000 ... oneDNN ...; F, a fatal one, always passes) and LiteRT's "INFO:
# ..." lines are what TF_CPP_MIN_LOG_LEVEL means to hide but cannot reach; FFmpeg's own lines
# ("[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c0] moov atom not found") and OpenCV's ("[ WARN:0@0.012]
# global cap_ffmpeg_impl.hpp ...") come from reading a video, whose failure videmo reports per
# clip in its own words.
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to " \
    "STDERR"
_ABSL = re.compile(r"[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
_LITERT_INFO = re.compile(r"INFO: ")
_CUDA_PROBE = re.compile(r"E\d{4} .*\] failed call to cuInit: ")
_FFMPEG = re.compile(r"\[[\w,.:-]+ @ (0x)?[0-9a-fA-F]+\] ")
_OPENCV = re.compile(r"\[ ?(DEBUG|INFO|WARN|ERROR):\d+(@[\d.]+)?\] ")


def _gpu_granted() -> bool:
    granted = os.environ.get("SLURM_JOB_GPUS") or os.environ.get("CUDA_VISIBLE_DEVICES")
    return granted not in (None, "", "-1")


def is_native_noise(line: str) -> bool:
    """Whether a native stderr line is start-up chatter (see the module doc), not a warning.

    The failed CUDA probe is an error only where a GPU was granted; a user who sets
    ``TF_CPP_MIN_LOG_LEVEL=0`` sees everything."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")
    if level.isdigit() and int(level) == 0:
        return False
    line = line.rstrip("\r\n")
    if _CUDA_PROBE.match(line):
        return not _gpu_granted()
    return line == _ABSL_BANNER or any(p.match(line) for p in (_ABSL, _LITERT_INFO, _FFMPEG,
                                                                _OPENCV))


def _pass_on(text: str, fd: int) -> None:
    """Write ``text``'s lines to ``fd``, except native noise, which goes to the DEBUG log."""
    kept = []
    for line in text.splitlines(keepends=True):
        if is_native_noise(line):
            log.debug("native: %s", line.rstrip())
        else:
            kept.append(line)
    data = "".join(kept).encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data):]


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Route file descriptor 2 through a filter that drops :func:`is_native_noise` lines.

    What is written meanwhile (by native code or by Python) goes to a temporary file and is
    passed on, minus the noise, when the block ends; use it around loading models, not around
    long work."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            _pass_on(tmp.read().decode("utf-8", "replace"), 2)


class _StderrFilter:
    """File descriptor 2 -> a pipe read by a thread that passes lines on to the real stderr.

    Python's own ``sys.stderr`` is re-opened on the real stderr, so videmo's messages, progress
    bars and ``isatty()`` are as before; only native writes to descriptor 2 (and those of child
    processes, which inherit it) go through the filter. A partial line is passed on once
    nothing more arrived for ``idle_s`` (a progress bar redraws without a newline; native
    loggers write whole lines at once)."""

    def __init__(self, idle_s: float = 0.1) -> None:
        self.idle_s = idle_s
        sys.stderr.flush()
        self.real = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.read = read
        old = sys.stderr
        sys.stderr = io.TextIOWrapper(io.FileIO(self.real, "w", closefd=False),
                                      encoding=getattr(old, "encoding", None) or "utf-8",
                                      errors="backslashreplace", line_buffering=True)
        self.wake_read, self.wake_write = os.pipe()  # close() wakes the thread through it
        self.thread = threading.Thread(target=self._pump, name="videmo-stderr", daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def _pump(self) -> None:
        pending, closing = b"", False
        while True:
            wait = self.idle_s if pending or closing else None
            ready, _, _ = select.select([self.read, self.wake_read], [], [], wait)
            if self.wake_read in ready:
                os.read(self.wake_read, 1)
                closing = True
                ready.remove(self.wake_read)
                if not ready:  # look once more, for idle_s
                    continue
            if not ready:  # a partial line that stayed partial: pass it on as it is
                _pass_on(pending.decode("utf-8", "replace"), self.real)
                pending = b""
                if closing:  # quiet for idle_s after close(): all that came is passed on
                    return
                continue
            chunk = os.read(self.read, 65536)
            if not chunk:  # every writer closed descriptor 2: the process is ending
                _pass_on(pending.decode("utf-8", "replace"), self.real)
                return
            pending += chunk
            end = pending.rfind(b"\n") + 1
            if end:
                _pass_on(pending[:end].decode("utf-8", "replace"), self.real)
                pending = pending[end:]

    def close(self, timeout: float = 2.0) -> None:
        """Restore descriptor 2 and let the thread pass on the rest: until the pipe is empty
        and quiet for ``idle_s`` (at most ``timeout``). A child process still alive holds the
        pipe open (a worker pool at exit), so the end of the pipe is not waited for."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.real, 2)  # closes this process's end of the pipe
        os.write(self.wake_write, b"x")
        self.thread.join(timeout)


_stderr_filter: _StderrFilter | None = None


def filter_native_stderr() -> None:
    """Filter native writes to descriptor 2 for the rest of this process (once; the
    ``videmo`` command's first act). Without a usable descriptor 2, or with
    ``TF_CPP_MIN_LOG_LEVEL=0`` (show everything), nothing changes."""
    global _stderr_filter
    if _stderr_filter is not None or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    try:
        os.fstat(2)
    except OSError:
        return
    _stderr_filter = _StderrFilter()


def release_workers() -> None:
    """Stop joblib's reusable worker pool (loky), if this process started one, and wait for
    its workers to exit: the end of a ``videmo`` command. Kept alive, the idle workers would
    outlive the command's work by their exit at interpreter shutdown, holding descriptor 2
    (the filter's pipe) meanwhile; a notebook that calls videmo's functions keeps its pool."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its children: those already
    reaped, and, on Linux, the live ones too (a worker pool's processes are still alive when a
    run ends, so ``RUSAGE_CHILDREN`` alone would miss them). Differences of two calls give a
    run's CPU time, the figure to compare on a shared machine where wall time also counts the
    waiting."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    return total + sum(_live_descendants_cpu().values())


def _live_descendants_cpu() -> dict[int, float]:
    """{pid: CPU seconds} of this process's live descendants, from /proc (empty elsewhere)."""
    proc = "/proc"
    if not os.path.isdir(proc):
        return {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        # after the command name: state ppid ... utime (14th field of stat) stime (15th)
        parents[int(name)] = int(fields[1])
        cpu[int(name)] = (int(fields[11]) + int(fields[12])) / tick
    me, out = os.getpid(), {}
    for pid in cpu:
        p, seen = parents.get(pid), 0
        while p is not None and p > 1 and seen < 64:
            if p == me:
                out[pid] = cpu[pid]
                break
            p, seen = parents.get(p), seen + 1
    return out


PACKAGES = ("videmo", "numpy", "opencv-python-headless", "ai-edge-litert", "tensorflow", "keras",
            "mtcnn", "pandas", "pyarrow", "joblib", "pyyaml", "matplotlib", "scikit-learn")


@functools.cache
def package_version(*names: str) -> str:
    """The installed version of the first of ``names`` found (metadata only, no import);
    "not installed" when none is. The one place versions are read (run records, the extract
    key, model cards, training records)."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape results."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        out[name] = package_version(name)
    return out


def git_commit() -> str:
    """The commit of the videmo checkout this code runs from, with " (with uncommitted
    changes)" when its package folder differs from it; "unknown (not a git checkout)" for an
    installed wheel. The one place a commit is read (model cards, training records)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--",
                                str(here)], capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
