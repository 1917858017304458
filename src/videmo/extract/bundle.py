"""The MediaPipe Face Landmarker bundle, read in memory, and its models on ai-edge-litert.

``face_landmarker.task`` ships inside videmo (videmo.models, sha256-checked). It is a zip with
two bytes before its first local header; Python's ``zipfile`` finds the central directory from
the end of the file and copes with the prefix, so no member is ever written to disk. The three
tflite models run on LiteRT with its built-in op resolver (XNNPACK on CPU) and the caller's thread
count, never MediaPipe's runtime: that keeps one headless OpenCV, no TensorFlow import, no
network, and threads bounded by ``run.threads``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from videmo import models

DETECTOR = "face_detector.tflite"
LANDMARKS = "face_landmarks_detector.tflite"
BLENDSHAPES = "face_blendshapes.tflite"
GEOMETRY = "geometry_pipeline_metadata_landmarks.binarypb"
MEMBERS = (DETECTOR, LANDMARKS, BLENDSHAPES, GEOMETRY)

# The one line LiteRT prints (natively, to fd 2) whenever an interpreter gets its XNNPACK delegate.
_XNNPACK_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


class BundleError(models.ModelFileError):
    """The face landmarker bundle lacks a member or a model does not have the expected shape."""


@cache
def read_member(name: str) -> bytes:
    """The bytes of one member of the shipped bundle (the bundle's sha256 is checked first)."""
    path = models.model_path(models.FACE_LANDMARKER)
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(name)
    except KeyError:
        raise BundleError(f"{path} has no member {name!r}; expected {', '.join(MEMBERS)}") from None
    except zipfile.BadZipFile as e:
        raise BundleError(f"{path} is not a readable zip ({e}); reinstall videmo") from None


def interpreter(name: str, threads: int):
    """A LiteRT interpreter for a bundle member, tensors allocated, on ``threads`` threads."""
    return litert(threads, content=read_member(name))


def litert(threads: int, *, path: Path | None = None, content: bytes | None = None,
           allocate: bool = True):
    """A LiteRT interpreter for the model file at ``path`` (or in ``content``) on ``threads``
    threads, LiteRT's built-in kernels with XNNPACK, tensors allocated unless ``allocate`` is
    false (a model whose input is resized first).

    LiteRT announces its XNNPACK delegate on the process's stderr from native code, once per
    interpreter; that line is dropped here (anything else written meanwhile is passed on), so a
    run's log carries only what videmo means to say.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    source = {"model_content": content} if content is not None else {"model_path": str(path)}
    with _drop_native_notice():
        it = Interpreter(**source, num_threads=threads,
                         experimental_op_resolver_type=OpResolverType.BUILTIN)
        if allocate:
            it.allocate_tensors()
    return it


@contextmanager
def _drop_native_notice():
    """Capture fd 2 for the duration; re-emit every line except the XNNPACK notice."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured by a harness)
        fd = 2
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().splitlines(keepends=True)
                    if line.strip() != _XNNPACK_NOTICE]
            if kept:
                os.write(fd, b"".join(kept))
