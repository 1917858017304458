"""How large the faces were: report.html's "Face size" section and the warning line of
summary.txt (printed by ``videmo run`` and ``videmo report``).

Each clip's ``face_px`` (clips.csv) is the median width, in full-resolution pixels, of the faces
that labelled it. The face-size benchmark (bench/face_size.py, BENCHMARKS.md "Face size")
measured fer's and the pixel model's accuracy falling off below
:data:`videmo.schema.FACE_PX_WARN` px; a run whose clips' faces are smaller says so, with that
number, in both places.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from videmo import schema
from videmo.report.sections import Section

if TYPE_CHECKING:
    from videmo.config import Config
    from videmo.report.model import Report

# what the face-size benchmark measured (BENCHMARKS.md "Face size", 2026-12-06, MTCNN at 720p):
# the share of the pasted faces found and labelled right by fer at 16, 20 and 24 px (below
# FACE_PX_WARN) and at 96 and 128 px
FALLS_OFF = ("in the face-size benchmark (BENCHMARKS.md, Face size) fer labelled {below:.0%} of "
             "faces of 16-{last} px right against {above:.0%} of faces of 96 px and more")
MEASURED = {"below": 0.13, "above": 0.42}
# the distribution's bins (px, lower bounds), as the benchmark's sizes
BINS = (0, 16, 24, 32, 48, 64, 96, 128)


@dataclass(frozen=True)
class FaceSizes:
    """The clips' median face widths: how many clips have one, the corpus median, the clips
    below the warning size, and the count of clips in each bin."""

    measured: int
    median: float | None
    small: list[str]
    bins: list[tuple[str, int]]

    @classmethod
    def of(cls, clips: pd.DataFrame) -> FaceSizes:
        px = pd.to_numeric(clips[schema.FACE_PX], errors="coerce") if schema.FACE_PX in clips \
            else pd.Series(dtype=float)
        has = px.notna()
        values = px[has].astype(float)
        names = clips.loc[has, schema.FILENAME].astype(str) if has.any() else pd.Series(dtype=str)
        small = [n for n, v in zip(names, values, strict=True) if v < schema.FACE_PX_WARN]
        bins = []
        for i, lo in enumerate(BINS):
            hi = BINS[i + 1] if i + 1 < len(BINS) else None
            inside = (values >= lo) & (values < hi) if hi is not None else values >= lo
            label = f"{lo}-{hi - 1} px" if hi is not None else f">= {lo} px"
            bins.append((label, int(inside.sum())))
        return cls(int(has.sum()), float(values.median()) if len(values) else None, small, bins)

    def warning(self) -> str | None:
        """One line when the corpus's median face, or some clip's, is below the warning size."""
        if not self.small:
            return None
        below = f"{len(self.small)} of {self.measured} clips have a median face below " \
                f"{schema.FACE_PX_WARN} px"
        if self.median is not None and self.median < schema.FACE_PX_WARN:
            below = f"the corpus's median face is {self.median:.0f} px wide ({below})"
        measured = FALLS_OFF.format(last=schema.FACE_PX_WARN - 1, **MEASURED)
        return f"small faces: {below}; {measured} (clips.csv: face_px)"


def face_size_warning(clips: pd.DataFrame) -> str | None:
    """The warning line for summary.txt, or None."""
    return FaceSizes.of(clips).warning()


def face_size_context(report: Report, cfg: Config) -> dict[str, Any]:
    sizes = FaceSizes.of(report.clips)
    return {"sizes": sizes, "warning": sizes.warning(), "threshold": schema.FACE_PX_WARN,
            "shown": sizes.small[:20]}


FACE_SIZE = Section("face-size", "Face size", "sections/face_size.html",
                    context=face_size_context,
                    available=lambda report: schema.FACE_PX in report.clips
                    and report.clips[schema.FACE_PX].notna().any())
