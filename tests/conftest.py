from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hypothesis import HealthCheck, settings  # noqa: E402

from videmo import config as config_mod  # noqa: E402

# Property tests (tests/test_props_*.py): "ci" (the default) runs a fixed, derandomized set of
# examples per property, the whole set within a minute; VIDEMO_HYPOTHESIS=long runs a campaign
# of VIDEMO_HYPOTHESIS_EXAMPLES (default 10,000) random examples per property.
settings.register_profile("ci", max_examples=int(os.environ.get("VIDEMO_HYPOTHESIS_EXAMPLES",
                                                                "150")),
                          derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=int(os.environ.get("VIDEMO_HYPOTHESIS_EXAMPLES",
                                                                  "10000")),
                          deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("VIDEMO_HYPOTHESIS", "ci"))

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "crema-d"
SAMPLE_CLIPS = sorted(SAMPLE.glob("*.flv"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def one_installer() -> Iterator[None]:
    """Held while a fixture runs a set-up script that may call apt-get (browser-setup.sh,
    local-cluster.sh start): the suite runs in two pytest-xdist workers, and two apt-get runs at
    once would fight over apt's locks. A fixture checks again, inside, what it would install."""
    with open(Path(tempfile.gettempdir()) / "videmo-tests-installer.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_config(tmp_path: Path, corpus_path: Path | list[Path], **sections) -> config_mod.Config:
    """A validated Config for a test: corpus path(s), run.out in tmp_path, one worker (fakes
    patched into this process must run in it; ``run={"jobs": None}`` for the default: one per
    core), section overrides."""
    paths = [str(p) for p in (corpus_path if isinstance(corpus_path, list) else [corpus_path])]
    data = {"corpus": {"paths": paths}, "run": {"out": str(tmp_path / "run"), "jobs": 1}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return config_mod.from_dict(data, base_dir=tmp_path)


def write_video(path: Path, frames: list[np.ndarray], fps: float, fourcc: str = "mp4v") -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while limit is None or len(out) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


@pytest.fixture(scope="session")
def clip_frames() -> dict[str, list[np.ndarray]]:
    """Every decoded frame of the six sample clips, by clip id."""
    return {p.stem: read_frames(p) for p in SAMPLE_CLIPS}


@pytest.fixture
def sample_corpus(tmp_path: Path) -> Path:
    """A private copy of the sample corpus (videos only) that a test may modify."""
    dst = tmp_path / "corpus"
    dst.mkdir()
    for p in SAMPLE_CLIPS:
        shutil.copy(p, dst / p.name)
    return dst
