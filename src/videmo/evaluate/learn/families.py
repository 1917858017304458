"""Feature families: named groups of per-frame columns the learners read, and the join of the
face mesh's columns onto the per-frame rows.

A family declares its name, the per-frame columns it reads (a number per row, or a fixed-length
float array per row: landmarks stay arrays, each element a feature), what puts those columns
into a run (``enabled_by``), whether they come from the face mesh, and one line of doc.
``learn.features`` names families; a family whose columns are missing from the run is an error
naming it and what turns it on.

* ``fer``: the seven FER probabilities of the per-frame table.
* ``blendshapes``: MediaPipe's 52 blendshape scores (schema.BLENDSHAPES) and ``landmarks``:
  pose-normalised landmarks, both from the run's face mesh table (``features: [emotions,
  mesh]``; RUN/features/mesh.parquet), joined to the per-frame rows on (clip_id, frame_index,
  face_index) by :func:`with_mesh` when a mesh family is asked for (by ``videmo learn`` and by
  a saved model applied in ``videmo report``). The mesh must have been made under the run's
  extract and mesh settings (``Config.mesh_hash``); a run without one is a LearnError naming
  ``features: [emotions, mesh]``. A face whose mesh is missing (presence under
  ``mesh.min_presence``: the mesh table keeps the row with empty columns) is NaN: the pooled
  statistics replace it by the clip's mean of that column (a clip without any mesh stays NaN
  and the Pipeline's imputer gives it the training fold's median), the LSTM by the training
  fold's mean (0 after standardising).
* **Landmark dimensionality.** All 478 x 3 landmarks are 1,434 values a row, 11,472 pooled
  features a clip: on ~50 clips a fit would be mostly noise, and the normalisation pins the
  33 points it is fitted on anyway. The family reads a fixed, documented subset instead
  (:data:`LANDMARK_SUBSET`): x, y, z of 23 points that expressions move (brows, eyelids, nose
  wings, mouth corners, lips, chin), none of the Procrustes anchors, after
  :func:`videmo.extract.features.pose.normalize_landmarks` ("procrustes": a frontal canonical
  face, outer eye corners 1 apart, so head pose and size are gone): 69 values a row, 552 pooled
  features, the order of the blendshapes' 416. A fixed subset, not a projection, so that
  nothing is fitted outside the training fold and a saved model reads named features
  (``mouth_corner_l.y_mean``; changing the subset makes old models refuse to load runs, by
  their feature names). Logistic regression then keeps the 64 pooled features of largest
  ANOVA F on the training fold (``pooled.LOGISTIC_MAX_FEATURES``): on simulated clips where 2
  of 52 blendshapes (or 4 of the 69 landmark values) carry the label, all 416 (552)
  standardised features diluted it to 80% (62%); with the filter it finds it, as gradient
  boosting does.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from videmo import schema
from videmo.evaluate.learn.base import LearnError

if TYPE_CHECKING:
    from videmo.config import Config, LearnConfig
    from videmo.store import RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureFamily:
    """A named group of per-frame columns the learners read (see the module doc).

    ``columns`` are read in order; each holds a number per row or a float array of one fixed
    length per row (every element becomes a feature, named by ``element_names`` when given,
    else ``column[i]``). An empty ``columns`` declares a family whose extractor does not write
    the per-frame table yet. ``mesh``: the columns come from the run's face mesh table
    (RUN/features/mesh.parquet), joined to the per-frame rows by :func:`with_mesh`.
    ``enabled_by`` is named in the error when a run lacks the columns: say which config key or
    extractor writes them."""

    name: str
    columns: tuple[str, ...]
    enabled_by: str
    doc: str
    mesh: bool = False
    element_names: tuple[str, ...] = ()

    def missing(self, frames: pd.DataFrame) -> list[str]:
        return [c for c in self.columns if c not in frames.columns]

    def values(self, rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """(rows x features) float64 values and their names (array columns as name[i])."""
        parts, names = [], []
        for col in self.columns:
            s = rows[col]
            if s.dtype == object:  # an array per row
                width = len(self.element_names) or None
                arr = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in s]) \
                    if len(s) else np.zeros((0, width or 0))
                parts.append(arr)
                names.extend(self.element_names if width == arr.shape[1] else
                             [f"{col}[{i}]" for i in range(arr.shape[1])])
            else:
                parts.append(s.to_numpy(dtype=np.float64, na_value=np.nan)[:, None])
                names.append(col)
        return np.hstack(parts) if parts else np.zeros((len(rows), 0)), names


FAMILIES: dict[str, FeatureFamily] = {}


def register_family(family: FeatureFamily) -> FeatureFamily:
    """Add (or replace) a family under its name; ``learn.features`` then accepts it."""
    if not family.name or "+" in family.name:
        raise ValueError(f"feature family name {family.name!r}: give a name without '+'")
    FAMILIES[family.name] = family
    return family


MESH_ON = "the face mesh: extract with `features: [emotions, mesh]`"

# The landmarks family's fixed subset of MediaPipe's 478 (indices into the face mesh), each
# named by the region it describes; subject's right side first. Points that expressions move
# (FACS regions): brows (AU1/2/4), upper and lower eyelids (AU5/7, 43), nose wings (AU9/10),
# mouth corners (AU12/15/20), upper and lower lip, outer and inner (AU10/16/23/25), chin (jaw
# drop, AU26/27). None of the 33 points the Procrustes fit of
# :func:`videmo.extract.features.pose.normalize_landmarks` is weighted on (eye corners, nose
# bridge, cheekbones, forehead): the normalisation pins those, so they would carry mostly noise.
LANDMARK_SUBSET: tuple[tuple[int, str], ...] = (
    (70, "brow_outer_r"), (105, "brow_mid_r"), (107, "brow_inner_r"),
    (336, "brow_inner_l"), (334, "brow_mid_l"), (300, "brow_outer_l"),
    (159, "lid_upper_r"), (145, "lid_lower_r"), (386, "lid_upper_l"), (374, "lid_lower_l"),
    (98, "nose_wing_r"), (327, "nose_wing_l"),
    (61, "mouth_corner_r"), (291, "mouth_corner_l"),
    (37, "lip_upper_r"), (0, "lip_upper_mid"), (267, "lip_upper_l"), (13, "lip_upper_inner"),
    (14, "lip_lower_inner"), (84, "lip_lower_r"), (17, "lip_lower_mid"), (314, "lip_lower_l"),
    (152, "chin"),
)
LANDMARK_NAMES: tuple[str, ...] = tuple(f"{name}.{axis}" for _, name in LANDMARK_SUBSET
                                        for axis in "xyz")


def pose_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(rows, 478, 3) landmarks in pixels -> (rows, 3 x len(LANDMARK_SUBSET)) float32: each
    row normalised for head pose (``normalize_landmarks``, "procrustes": canonical frontal
    face, outer eye corners 1 apart), then the subset's x, y, z. Rows without a mesh (NaN)
    stay NaN."""
    from videmo.extract.features.pose import normalize_landmarks

    idx = [i for i, _ in LANDMARK_SUBSET]
    out = np.full((len(landmarks), 3 * len(idx)), np.nan, dtype=np.float32)
    for r, lm in enumerate(landmarks):
        if np.isfinite(lm).all():
            out[r] = normalize_landmarks(lm)[idx].reshape(-1)
    return out


register_family(FeatureFamily(
    "fer", schema.EMOTIONS, "every run (the FER model's seven probabilities per face)",
    "The seven FER emotion probabilities of each face row."))
register_family(FeatureFamily(
    "blendshapes", schema.BLENDSHAPES, MESH_ON,
    "MediaPipe's 52 blendshape scores of each face row (0-1).", mesh=True))
register_family(FeatureFamily(
    "landmarks", (schema.LANDMARKS_POSE,), MESH_ON,
    f"Pose-normalised face landmarks of each face row: x, y, z of {len(LANDMARK_SUBSET)} "
    f"expression-bearing points (LANDMARK_SUBSET), {len(LANDMARK_NAMES)} values.",
    mesh=True, element_names=LANDMARK_NAMES))


def _landmarks(table) -> np.ndarray:
    """The mesh table's landmarks as float32 (rows, 478, 3), rows without a mesh NaN: what
    ``mesh.landmarks_array`` gives, read from Arrow's flat buffer instead of one Python list
    per row (a long run's 1,434 values a row would be hundreds of millions of objects)."""
    col = table.column(schema.LANDMARKS).combine_chunks()
    width = schema.N_LANDMARKS * 3
    flat = col.values.slice(col.offset * width, len(col) * width)
    out = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=True)
    out = out.reshape(len(col), schema.N_LANDMARKS, 3)
    out[col.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return out


def with_mesh(frames: pd.DataFrame, run: RunDir, cfg: Config, families: set[str],
              where: str) -> pd.DataFrame:
    """``frames`` with the columns of the mesh families among ``families`` joined from the
    run's mesh table (made under ``cfg``'s extract and mesh settings) on
    (clip_id, frame_index, face_index); ``frames`` itself when none is asked for.

    A face row without a mesh (presence under ``mesh.min_presence``: the mesh table keeps the
    row with empty columns) or without a mesh row at all gets NaN, which the learners impute
    (see the module doc). A run without a mesh table is a LearnError naming what turns it on;
    clips with face rows but no mesh rows are named in a warning."""
    need = sorted(n for n in families if FAMILIES[n].mesh)
    if not need:
        return frames
    mesh_hash = cfg.mesh_hash()
    table = run.side_table("mesh", cfg.extract_hash(), mesh_hash) if mesh_hash is not None else None
    if table is None:
        why = ("its config has no mesh among `features`" if mesh_hash is None else
               "no clip has a mesh made under its config")
        raise LearnError(f"feature famil{'ies' if len(need) > 1 else 'y'} "
                         f"{', '.join(map(repr, need))} come{'' if len(need) > 1 else 's'} "
                         f"from the face mesh, and {where} has no mesh table ({why}): "
                         f"extract with `features: [emotions, mesh]` (e.g. videmo extract "
                         f"CONFIG --set 'features=[emotions, mesh]': only the mesh is "
                         f"computed for clips already done), or drop "
                         f"{'them' if len(need) > 1 else 'it'} from learn.features")
    keys = list(schema.MESH_KEYS)
    cols = [c for n in need for c in FAMILIES[n].columns if c in schema.BLENDSHAPES]
    mesh = table.select([*keys, *cols]).to_pandas()
    if "landmarks" in need:
        mesh[schema.LANDMARKS_POSE] = list(pose_landmarks(_landmarks(table)))
    mesh[schema.FACE_INDEX] = mesh[schema.FACE_INDEX].astype(frames[schema.FACE_INDEX].dtype)
    out = frames.drop(columns=[c for c in mesh.columns if c not in keys and c in frames],
                      errors="ignore").merge(mesh, on=keys, how="left", validate="many_to_one")
    if schema.LANDMARKS_POSE in out:
        blank = np.full(len(LANDMARK_NAMES), np.nan, dtype=np.float32)
        out[schema.LANDMARKS_POSE] = [v if isinstance(v, np.ndarray) else blank
                                      for v in out[schema.LANDMARKS_POSE]]
    faces = frames[schema.FACE_INDEX] >= 0
    without = sorted(set(frames.loc[faces, schema.CLIP_ID].astype(str))
                     - set(mesh[schema.CLIP_ID].astype(str)))
    if without:
        log.warning("%s: %d clip(s) with faces have no mesh rows (their %s features are "
                    "missing and imputed): %s", where, len(without), "+".join(need),
                    ", ".join(without[:10]) + (" ..." if len(without) > 10 else ""))
    return out


def parse_feature_set(spec: str) -> tuple[str, ...]:
    """``fer+blendshapes`` -> ("fer", "blendshapes"); unknown names fail with a hint."""
    names = tuple(n.strip() for n in spec.split("+"))
    for n in names:
        if n not in FAMILIES:
            hint = difflib.get_close_matches(n, list(FAMILIES), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise LearnError(f"config key 'learn.features': unknown feature family {n!r} in "
                             f"{spec!r}{extra}; known: {', '.join(FAMILIES)}")
    if len(set(names)) != len(names):
        raise LearnError(f"config key 'learn.features': {spec!r} names a family twice")
    return names


def feature_sets(lc: LearnConfig) -> list[tuple[str, ...]]:
    sets = [parse_feature_set(s) for s in lc.features]
    if not sets:
        raise LearnError("config key 'learn.features': give at least one feature set, e.g. "
                         "[fer]")
    return list(dict.fromkeys(sets))


def check_families(frames: pd.DataFrame, names: set[str], where: str) -> None:
    """Every named family's columns are in ``frames``; else a LearnError naming the family
    and what turns it on."""
    have = [n for n, f in FAMILIES.items() if f.columns and not f.missing(frames)]
    for n in sorted(names):
        fam = FAMILIES[n]
        missing = fam.missing(frames)
        if fam.columns and not missing:
            continue
        detail = f" (missing columns: {', '.join(missing[:5])}" \
                 f"{' ...' if len(missing) > 5 else ''})" if fam.columns else ""
        raise LearnError(f"feature family {n!r} is not in the per-frame table of {where}"
                         f"{detail}: it comes from {fam.enabled_by}; extract with it on, or "
                         f"drop it from learn.features (available here: {', '.join(have)})")


def set_name(fs: tuple[str, ...]) -> str:
    return "+".join(fs)

