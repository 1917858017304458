"""Process-level set-up: thread counts, a quiet TensorFlow, and package versions.

Thread counts must be fixed before TensorFlow starts its pools, so every entry point that may
import TensorFlow calls :func:`configure_threads` first. TensorFlow is only imported when a part
that needs it (MTCNN, the Keras engine) is used: Haar + tflite runs never pay its start-up cost.

TensorFlow, XLA and LiteRT write from native code straight to file descriptor 2, some of it
before ``TF_CPP_MIN_LOG_LEVEL`` is read (absl's "before InitializeLog" lines, the CUDA stub's
"Could not find cuda drivers", LiteRT's "Created TensorFlow Lite XNNPACK delegate"). Models are
therefore loaded inside :func:`quiet_native_logs`, which drops exactly those lines and passes
every other line (real warnings and errors) through.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_threads: int | None = None


def threads_for(jobs: int = 1, configured: int | None = None) -> int:
    """Threads a worker may use: the config, else SLURM's grant, else its share of the cores."""
    if configured:
        return configured
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return max(1, int(slurm) // max(1, jobs))
    return max(1, available_cores() // max(1, jobs))


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: a SLURM task's or a taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def warn_if_oversubscribed(jobs: int, cores: int | None = None, where: str = "") -> bool:
    """Warn (once per call: a command calls it once) when more workers than cores are asked
    for: they would share the cores, each slower, for no gain. Returns whether it warned."""
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
    return _threads or threads_for()


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


# Native lines that say nothing a user can act on. absl INFO lines (I0000 ...) and LiteRT's
# "INFO: ..." lines are what TF_CPP_MIN_LOG_LEVEL >= 1 means to hide but cannot reach.
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to " \
    "STDERR"
_ABSL_INFO = re.compile(r"I\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
_LITERT_INFO = re.compile(r"INFO: ")
_CUDA_PROBE = re.compile(r"E\d{4} .*\] failed call to cuInit: ")


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
    if line == _ABSL_BANNER or _ABSL_INFO.match(line) or _LITERT_INFO.match(line):
        return True
    return bool(_CUDA_PROBE.match(line)) and not _gpu_granted()


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
            text = tmp.read().decode("utf-8", "replace")
            kept = "".join(line for line in text.splitlines(keepends=True)
                           if not is_native_noise(line))
            data = kept.encode()
            while data:
                data = data[os.write(2, data):]


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


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape results."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
