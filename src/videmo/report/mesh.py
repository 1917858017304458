"""The face mesh's section of report.html (``features: [emotions, mesh]``).

:func:`videmo.report.build.write_figures` draws, for each clip with a timeline and mesh rows,
its most moving blendshapes over time (:func:`videmo.report.figures.blendshape_timeline`);
:data:`MESH` shows them, each linked to the clip's emotion timeline. A run without the mesh
(or with ``report.figures: false``) has no such figures and no such section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from videmo import schema
from videmo.report.sections import Section
from videmo.report.tables import anchor, data_uri
from videmo.store import safe_name

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report


@dataclass(frozen=True)
class Blendshapes:
    clip_id: str
    anchor: str  # this article's id
    timeline: str | None  # the clip's emotion timeline (an in-page anchor), if on the page
    image: str | None  # data: URI


def mesh_anchor(clip_id: str) -> str:
    """The element id of a clip's blendshape figure."""
    return "blendshapes-" + safe_name(clip_id)


def mesh_context(report: Report, cfg: Config) -> dict[str, Any]:
    with_timeline = set(report.timeline_clips())
    figures = report.figures.blendshapes
    order = [c for c in report.clips[schema.FILENAME].astype(str) if c in figures]
    return {"blendshapes": [
        Blendshapes(cid, mesh_anchor(cid), f"#{anchor(cid)}" if cid in with_timeline else None,
                    data_uri(figures[cid])) for cid in order]}


MESH = Section("face-mesh", "Face mesh", "sections/mesh.html", context=mesh_context,
               available=lambda report: bool(report.figures.blendshapes))
