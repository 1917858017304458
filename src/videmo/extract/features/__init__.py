"""Per-face feature extractors (the interface is :mod:`.base`), chosen by the config's
``features`` list; each writes its own table keyed by (clip_id, frame_index, face_index).

``emotions`` (:class:`.emotions.EmotionsExtractor`): seven emotion probabilities per face, the
per-frame table; ``mesh`` (:class:`.mesh.MeshExtractor`): MediaPipe's face mesh, the mesh
table. An extractor's module (and its models) is imported only when a config turns it on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from videmo.extract.features.base import FaceBatch, FeatureExtractor
from videmo.registry import Registry

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.schema import FeatureTable

__all__ = ["BASE", "EXTRACTORS", "FaceBatch", "FeatureExtractor", "extractor_class", "ordered",
           "side_tables"]

# features: name -> "module:class", imported on first use (the mesh module loads LiteRT models)
EXTRACTORS = Registry("feature extractor (features)", {
    "emotions": "videmo.extract.features.emotions:EmotionsExtractor",
    "mesh": "videmo.extract.features.mesh:MeshExtractor",
})


# the base extractor: its rows are the per-frame table, its cache key the run's extract hash
BASE = "emotions"


def extractor_class(name: str) -> type[FeatureExtractor]:
    return EXTRACTORS.get(name)


def side_tables(cfg: Config) -> list[FeatureTable]:
    """The side tables ``cfg`` computes (its ``features`` and what they need, but the base),
    each with its path, write options and cache hash, in the order they run."""
    return [extractor_class(n).feature_table(cfg) for n in ordered(cfg.features, cfg)
            if n != BASE]


def ordered(names: list[str] | tuple[str, ...], cfg: Config) -> list[str]:
    """``names`` and what they need (:meth:`FeatureExtractor.needs`), each after what it
    needs; a cycle is an error."""
    out: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in out:
            return
        if name in visiting:
            raise ValueError(f"feature extractors need each other: {name!r}")
        visiting.add(name)
        for need in extractor_class(name).needs(cfg):
            visit(need)
        visiting.discard(name)
        out.append(name)

    for n in names:
        visit(n)
    return out
