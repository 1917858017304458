"""What the speed work promises outside the benchmark: a quiet ``-q`` run whose one line reports
CPU time beside wall time, a CPU clock that sees pool workers, and a GPU chosen when TensorFlow
sees one (its device list faked: this machine may have none)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from videmo import runtime

from .conftest import REPO, SAMPLE

SUMMARY = re.compile(r"^extract: 1 done, 0 already done, 0 failed of 1 clips; (\d+) frames in "
                     r"([\d.]+)s wall, ([\d.]+)s CPU -> \S+frames\.parquet$")


def _quiet_extract(tmp_path, **sections) -> subprocess.CompletedProcess:
    """``videmo -q extract --force`` of the happy sample clip, as a user runs it (its own process,
    so native writes to file descriptor 2 are seen), with the logging variables unset."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE / "1001_DFA_HAP_XX.flv", corpus)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"corpus": {"paths": [str(corpus)]},
                                   "sampling": {"every_n": 10},
                                   "run": {"out": str(tmp_path / "run"), "threads": 1},
                                   **sections}))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    env["PYTHONPATH"] = str(REPO / "src")
    return subprocess.run([sys.executable, "-m", "videmo", "-q", "extract", str(cfg), "--force",
                           "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("sections", [
    {"faces": {"detector": "haar"}},  # the default: the FER model on LiteRT
    {"faces": {"detector": "mediapipe"}, "features": ["emotions", "mesh"]},  # four LiteRT models
    {"faces": {"detector": "mtcnn", "mtcnn": {"onet": True}}},  # MTCNN's networks on LiteRT
], ids=["haar", "mediapipe-mesh", "mtcnn"])
def test_quiet_extract_prints_only_the_summary_with_cpu_time(tmp_path, sections):
    done = _quiet_extract(tmp_path, **sections)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no per-run INFO line, no "Created TensorFlow Lite XNNPACK ..."
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    m = SUMMARY.match(lines[0])
    assert m, lines[0]
    frames, wall, cpu = int(m[1]), float(m[2]), float(m[3])
    assert frames >= 5
    assert cpu > 0.0 and wall > 0.0


def test_tflite_emotion_model_loads_without_the_delegate_line():
    """Loaded outside the pipeline (a notebook, `videmo train`), the FER model says nothing."""
    code = ("from videmo.extract.features.emotions import TfliteModel; import numpy as np; "
            "m = TfliteModel(1); print(m.predict(np.zeros((1, 64, 64), np.float32)).shape)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 7)"
    assert "XNNPACK" not in done.stderr and done.stderr == "", done.stderr


def test_cpu_seconds_counts_a_live_child():
    """A pool's workers are alive when a run ends; their CPU time must count."""
    before = runtime.cpu_seconds()
    burn = ("import sys, time\n"
            "while time.process_time() < 0.4: pass\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        live = runtime._live_descendants_cpu()
        assert live.get(child.pid, 0.0) >= 0.3, live
        assert runtime.cpu_seconds() - before >= 0.3
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    assert child.pid not in runtime._live_descendants_cpu()


def test_cpu_seconds_grows_with_work_in_this_process():
    before = runtime.cpu_seconds()
    t = time.process_time()
    while time.process_time() - t < 0.2:
        pass
    assert runtime.cpu_seconds() - before >= 0.15


@pytest.fixture
def tf_with_gpu(monkeypatch):
    """Real TensorFlow whose device list shows one GPU (memory growth recorded, not applied)."""
    tf = pytest.importorskip("tensorflow")
    fake = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [fake] if kind == "GPU" else real(kind))
    grown: list = []
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth",
                        lambda dev, on: grown.append((dev.name, on)))
    return tf, grown


def test_gpu_is_chosen_when_tensorflow_sees_one(tf_with_gpu, caplog):
    tf, grown = tf_with_gpu
    with caplog.at_level("INFO", logger="videmo.runtime"):
        gpus = runtime.use_gpus(tf)
    assert [g.name for g in gpus] == ["/physical_device:GPU:0"]
    assert grown == [("/physical_device:GPU:0", True)]
    assert "1 GPU(s), used for MTCNN and the Keras engine" in caplog.text
    assert runtime.tf_device(tf) == "GPU:0"


def test_cpu_is_chosen_without_a_gpu_and_a_granted_one_is_reported(monkeypatch, caplog):
    tf = pytest.importorskip("tensorflow")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with caplog.at_level("INFO", logger="videmo.runtime"):
        assert runtime.use_gpus(tf) == []
    assert runtime.tf_device(tf) == "CPU:0"
    assert "a GPU was granted but TensorFlow sees none" in caplog.text


def test_mtcnn_detector_is_built_on_the_gpu_tensorflow_sees(tf_with_gpu, monkeypatch):
    """The MTCNN detector asks mtcnn for the GPU device (mtcnn's own class recorded, not run:
    placing its networks on a GPU that is not there would fail)."""
    pytest.importorskip("mtcnn")
    import mtcnn

    from videmo.extract.detectors.mtcnn import MtcnnDetector

    asked: list[str] = []

    class Recorder:
        def __init__(self, stages: str, device: str):
            asked.append(device)

    monkeypatch.setattr(mtcnn, "MTCNN", Recorder)
    detector = MtcnnDetector()
    assert detector.device == "GPU:0"
    assert asked == ["GPU:0"]
