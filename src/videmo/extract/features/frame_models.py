"""The frame models: what scores a face's seven emotions (``emotions.model``), by name.

Each entry names the class that scores a :class:`~videmo.extract.features.base.FaceBatch`
(``cls(cfg, threads)``, then ``score(batch) -> one (7,) array per face``) and what it reads.
The :class:`~videmo.extract.features.emotions.EmotionsExtractor` runs the one a config names;
the config reads the names from :data:`FRAME_MODELS`, so a new frame model is one class and
one entry here. Nothing is imported until a model is made.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from videmo.registry import Registry

if TYPE_CHECKING:
    from videmo.config import Config


@dataclass(frozen=True)
class FrameModelSpec:
    """``scorer``: "module:class" of the scorer; ``reads``: the feature extractors whose
    outputs it scores (``emotions.model`` turns them on; the mesh frame models read ``mesh``,
    and a face without a mesh gets no scores)."""

    scorer: str
    reads: tuple[str, ...] = ()

    @property
    def reads_mesh(self) -> bool:
        return "mesh" in self.reads

    def make(self, cfg: Config, threads: int) -> Any:
        module, attr = self.scorer.split(":")
        return getattr(importlib.import_module(module), attr)(cfg, threads)


FRAME_MODELS = Registry("frame model (emotions.model)", {
    "fer": FrameModelSpec("videmo.extract.features.emotions:FerScorer"),
    "pixels": FrameModelSpec("videmo.extract.features.pixel_model:PixelScorer"),
    "blendshapes": FrameModelSpec("videmo.extract.features.frame_model:MeshScorer",
                                  reads=("mesh",)),
    "landmarks": FrameModelSpec("videmo.extract.features.frame_model:MeshScorer",
                                reads=("mesh",)),
})


def mesh_frame_models() -> tuple[str, ...]:
    """The frame models that read the face mesh (``emotions.model`` turns the mesh on)."""
    return tuple(n for n in FRAME_MODELS if FRAME_MODELS.get(n).reads_mesh)
