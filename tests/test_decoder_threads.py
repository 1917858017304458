"""FFmpeg's decoder threads are bounded by the worker's thread budget (issue 32): counted in
/proc/self/task while a real H.264 clip decodes, so ``run.threads`` and ``--jobs`` mean what
they say (unbounded, FFmpeg starts a thread per core in every worker)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from videmo import runtime
from videmo.extract.frames import SourceInfo, sample_frames
from videmo.schema import Clip

from .conftest import make_config

VIDEO = Path(__file__).parent / "data" / "rotated90.mp4"  # H.264: FFmpeg may thread it

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts threads in /proc/self/task")


def threads_while_decoding(tmp_path: Path, monkeypatch, budget: int) -> int:
    """Threads this process gains while the clip decodes with a budget of ``budget``."""
    monkeypatch.setattr(runtime, "_threads", budget)
    cfg = make_config(tmp_path, VIDEO.parent, sampling={"every_n": 1})
    before = len(os.listdir("/proc/self/task"))
    most = before
    for _ in sample_frames(Clip("rotated90", VIDEO), cfg, SourceInfo()):
        most = max(most, len(os.listdir("/proc/self/task")))
    return most - before


def test_a_one_thread_worker_decodes_on_its_own_thread(tmp_path, monkeypatch):
    assert threads_while_decoding(tmp_path, monkeypatch, 1) == 0


def test_a_larger_budget_is_used_so_the_count_sees_decoder_threads(tmp_path, monkeypatch):
    """The control: with 4 threads FFmpeg does start threads of its own (so the count above
    would have seen them), and not more than the budget allows (frame threads + slices)."""
    extra = threads_while_decoding(tmp_path, monkeypatch, 4)
    assert 1 <= extra <= 2 * 4
