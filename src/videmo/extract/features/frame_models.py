"""The frame models: what scores a face's seven emotions (``emotions.model``), by name.

Each entry is a :class:`~videmo.extract.specs.FrameModelSpec`: the class that scores a
:class:`~videmo.extract.features.base.FaceBatch` (``make(cfg, threads)``, then ``score(batch)
-> one (7,) array per face``), what it reads, the ``emotions`` options that change its numbers,
its model files and packages (the cache key reads them). The
:class:`~videmo.extract.features.emotions.EmotionsExtractor` runs the one a config names; the
config reads the names from :data:`FRAME_MODELS`, so a new frame model is one module and one
entry here (or ``FRAME_MODELS.register(name, spec)`` at run time). Nothing is imported until a
model is made.
"""

from __future__ import annotations

from videmo import models
from videmo.extract.specs import FrameModelSpec, spec_of
from videmo.registry import Registry

__all__ = ["FRAME_MODELS", "FrameModelSpec", "frame_model_spec", "mesh_frame_models"]

_MESH = "videmo.extract.features.frame_model"


def _pixel_model(doc: str) -> FrameModelSpec:
    """A shipped pixel model (``models.PIXEL_MODELS``): one scorer, its file chosen by name."""
    return FrameModelSpec("videmo.extract.features.pixel_model:PixelScorer",
                          files="videmo.extract.features.pixel_model:files",
                          packages=("ai-edge-litert",), keyed=("model", "align", "flip"),
                          doc=doc)

FRAME_MODELS = Registry("frame model (emotions.model)", {
    "fer": FrameModelSpec(
        "videmo.extract.features.emotions:FerScorer",
        files="videmo.extract.features.emotions:files",
        packages="videmo.extract.features.emotions:packages", keyed=("engine", "batch_size"),
        doc="fer's mini-Xception on the face's 64x64 grey pixels (tflite or Keras)."),
    "pixels": _pixel_model(
        "videmo's convolutional network on a 48x48 grey crop framed for the detector."),
    "pixels_real": _pixel_model(
        "The same networks with a last layer fitted on real photos + FER2013 (MODELS.md)."),
    "pixels_distilled": _pixel_model(
        "One of those networks trained on pixels_real's outputs: about a third of its cost "
        "(MODELS.md)."),
    "blendshapes": FrameModelSpec(
        f"{_MESH}:MeshScorer", reads=("mesh",),
        files=(*models.FRAME_MODEL_FILES["blendshapes"], models.FACE_LANDMARKER),
        packages=("ai-edge-litert", "tensorflow", "keras"),
        doc="A network on MediaPipe's blendshape scores (trained by videmo train)."),
    "landmarks": FrameModelSpec(
        f"{_MESH}:MeshScorer", reads=("mesh",),
        files=(*models.FRAME_MODEL_FILES["landmarks"], models.FACE_LANDMARKER),
        packages=("ai-edge-litert", "tensorflow", "keras"),
        doc="A 1D-CNN on pose-normalised face landmarks (trained by videmo train)."),
})


def frame_model_spec(name: str) -> FrameModelSpec:
    """The spec of frame model ``name``."""
    return spec_of(FRAME_MODELS.get(name), FrameModelSpec)


def mesh_frame_models() -> tuple[str, ...]:
    """The frame models that read the face mesh (``emotions.model`` turns the mesh on)."""
    return tuple(n for n in FRAME_MODELS if frame_model_spec(n).reads_mesh)
