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
  face_index) by :func:`with_side_tables` when a family of that table is asked for (by
  ``videmo learn`` and by a saved model applied in ``videmo report``). The mesh must have been
  made under the run's extract and mesh settings (``Config.table_hash("mesh")``); a run without
  one is a LearnError naming ``features: [emotions, mesh]``. A face whose mesh is missing
  (presence under ``mesh.min_presence``: the mesh table keeps the row with empty columns) is
  NaN: the pooled statistics replace it by the clip's mean of that column (a clip without any
  mesh stays NaN and the Pipeline's imputer gives it the training fold's median), the LSTM by
  the training fold's mean (0 after standardising).
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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from videmo import schema
from videmo.evaluate.learn.base import LearnError
from videmo.registry import Registry, did_you_mean

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
    the per-frame table yet. ``table``: the columns come from that extractor's side table
    (``mesh``: RUN/features/mesh.parquet), joined to the per-frame rows by
    :func:`with_side_tables`; ``derive(side_table) -> {column: values}`` computes columns
    that are not the table's own (the landmarks family's pose-normalised subset).
    ``enabled_by`` is named in the error when a run lacks the columns: say which config key or
    extractor writes them."""

    name: str
    columns: tuple[str, ...]
    enabled_by: str
    doc: str
    table: str | None = None
    element_names: tuple[str, ...] = ()
    derive: Callable[[Any], dict[str, Any]] | None = None

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


FAMILIES = Registry("feature family (learn.features)")


def register_family(family: FeatureFamily) -> FeatureFamily:
    """Add (or replace) a family under its name; ``learn.features`` then accepts it."""
    if not family.name or "+" in family.name:
        raise ValueError(f"feature family name {family.name!r}: give a name without '+'")
    return FAMILIES.register(family.name, family)


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
    "MediaPipe's 52 blendshape scores of each face row (0-1).", table="mesh"))
register_family(FeatureFamily(
    "landmarks", (schema.LANDMARKS_POSE,), MESH_ON,
    f"Pose-normalised face landmarks of each face row: x, y, z of {len(LANDMARK_SUBSET)} "
    f"expression-bearing points (LANDMARK_SUBSET), {len(LANDMARK_NAMES)} values.",
    table="mesh", element_names=LANDMARK_NAMES,
    derive=lambda side: {schema.LANDMARKS_POSE: list(pose_landmarks(_landmarks(side)))}))


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


def side_table_families(families: set[str] | tuple[str, ...]) -> list[str]:
    """The side tables (extractor names) the named families read, in name order."""
    return sorted({FAMILIES[n].table for n in families if FAMILIES[n].table})


def with_side_tables(frames: pd.DataFrame, run: RunDir, cfg: Config, families: set[str],
                     where: str) -> pd.DataFrame:
    """``frames`` with the columns of the families among ``families`` that read a side table,
    joined from the run's side tables (made under ``cfg``'s extract and table settings) on
    (clip_id, frame_index, face_index); ``frames`` itself when none is asked for.

    A face row without a value (the mesh keeps a face under ``mesh.min_presence`` with empty
    columns) or without a row in the side table gets NaN, which the learners impute (see the
    module doc). A run without the table is a LearnError naming what turns it on; clips with
    face rows but no rows in the table are named in a warning."""
    for name in side_table_families(families):
        need = sorted(n for n in families if FAMILIES[n].table == name)
        frames = _join(frames, run, cfg, name, need, where)
    return frames


def _join(frames: pd.DataFrame, run: RunDir, cfg: Config, name: str, need: list[str],
          where: str) -> pd.DataFrame:
    cache_hash = cfg.table_hash(name)
    table = run.side_table(name, cfg.extract_hash(), cache_hash) \
        if cache_hash is not None else None
    if table is None:
        why = (f"its config has no {name} among `features`" if cache_hash is None else
               f"no clip has a {name} table made under its config")
        raise LearnError(f"feature famil{'ies' if len(need) > 1 else 'y'} "
                         f"{', '.join(map(repr, need))} come{'' if len(need) > 1 else 's'} "
                         f"from the {name} table, and {where} has no {name} table ({why}): "
                         f"extract with `features: [emotions, {name}]` (e.g. videmo extract "
                         f"CONFIG --set 'features=[emotions, {name}]': only the {name} is "
                         f"computed for clips already done), or drop "
                         f"{'them' if len(need) > 1 else 'it'} from learn.features")
    keys = list(schema.ROW_KEYS)
    own = set(table.column_names)
    cols = [c for n in need for c in FAMILIES[n].columns if c in own and c not in keys]
    side = table.select([*keys, *dict.fromkeys(cols)]).to_pandas()
    derived: dict[str, int] = {}  # array columns computed from the table, and their width
    for n in need:
        if FAMILIES[n].derive is not None:
            for col, values in FAMILIES[n].derive(table).items():
                side[col] = values
                derived[col] = len(FAMILIES[n].element_names) or (len(values[0]) if len(values)
                                                                   else 0)
    side[schema.FACE_INDEX] = side[schema.FACE_INDEX].astype(frames[schema.FACE_INDEX].dtype)
    out = frames.drop(columns=[c for c in side.columns if c not in keys and c in frames],
                      errors="ignore").merge(side, on=keys, how="left", validate="many_to_one")
    for col, width in derived.items():  # a row without a value gets an array of NaN
        blank = np.full(width, np.nan, dtype=np.float32)
        out[col] = [v if isinstance(v, np.ndarray) else blank for v in out[col]]
    faces = frames[schema.FACE_INDEX] >= 0
    without = sorted(set(frames.loc[faces, schema.CLIP_ID].astype(str))
                     - set(side[schema.CLIP_ID].astype(str)))
    if without:
        log.warning("%s: %d clip(s) with faces have no %s rows (their %s features are "
                    "missing and imputed): %s", where, len(without), name, "+".join(need),
                    ", ".join(without[:10]) + (" ..." if len(without) > 10 else ""))
    return out


with_mesh = with_side_tables  # the name of before the side tables were generic


def parse_feature_set(spec: str) -> tuple[str, ...]:
    """``fer+blendshapes`` -> ("fer", "blendshapes"); unknown names fail with a hint."""
    names = tuple(n.strip() for n in spec.split("+"))
    for n in names:
        if n not in FAMILIES:
            extra = did_you_mean(n, list(FAMILIES), " (did you mean '{}'?)")
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

