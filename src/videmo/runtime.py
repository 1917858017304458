"""Process-level set-up: thread counts, a quiet TensorFlow, and package versions.

Thread counts must be fixed before TensorFlow starts its pools, so every entry point that may
import TensorFlow calls :func:`configure_threads` first. TensorFlow is only imported when a part
that needs it (MTCNN, the Keras engine) is used: Haar + tflite runs never pay its start-up cost.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

_threads: int | None = None


def threads_for(jobs: int = 1, configured: int | None = None) -> int:
    """Threads a worker may use: the config, else SLURM's grant, else its share of the cores."""
    if configured:
        return configured
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return max(1, int(slurm) // max(1, jobs))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


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
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    first = "tensorflow" not in sys.modules
    import tensorflow as tf

    if first:
        _set_tf_threads(current_threads())
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass
        log.info("TensorFlow %s: %s", tf.__version__,
                 f"{len(gpus)} GPU(s), used for MTCNN and the Keras engine" if gpus else
                 "no GPU visible (CPU)")
        granted = os.environ.get("SLURM_JOB_GPUS") or os.environ.get("CUDA_VISIBLE_DEVICES")
        if not gpus and granted not in (None, "", "-1"):
            log.warning("a GPU was granted but TensorFlow sees none: install videmo with the "
                        "gpu extra (pip install 'videmo[gpu]', CUDA wheels for TensorFlow)")
    return tf


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
