"""The one place where column names, label orders and the 7 -> 3 mapping are spelled.

Every other module imports names from here; a column name written as a string literal
anywhere else is a bug waiting to happen.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True, order=True)
class Clip:
    """One clip of a corpus (found by :func:`videmo.extract.corpus.discover`): its id, its
    file (a video) or folder (an image sequence)."""

    clip_id: str
    path: Path
    kind: Literal["video", "images"] = "video"

    def image_files(self, image_extensions: list[str] | tuple[str, ...]) -> list[Path]:
        """The frames of an image-sequence clip (``corpus.image_extensions``), in natural name
        order; hidden files are never frames."""
        image_ext = {e.lower() for e in image_extensions}
        files = [p for p in self.path.iterdir()
                 if p.suffix.lower() in image_ext and not p.name.startswith(".")]
        return sorted(files, key=lambda p: natural_key(p.name))


def natural_key(name: str) -> list:
    """Sort key that orders frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]

# The FER model's output order (fer.FER._get_labels): index i of the model's output vector.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# The three classes of the study, in the order its result table uses (pos, neg, neut).
POSITIVE, NEGATIVE, NEUTRAL = "positive", "negative", "neutral"
CLASSES: tuple[str, ...] = (POSITIVE, NEGATIVE, NEUTRAL)
# Short names as the study printed them ("Pos", "Neg", "Neut").
CLASS_SHORT: dict[str, str] = {POSITIVE: "Pos", NEGATIVE: "Neg", NEUTRAL: "Neut"}

# Label values a golden labels file may use for each class, case-folded: the classes, the
# study's short forms (what clips.csv writes) and "neu"; the seven emotions map through
# report.mapping (accepted_values).
CLASS_VALUES: dict[str, str] = {
    **{c: c for c in CLASSES},
    **{s.casefold(): c for c, s in CLASS_SHORT.items()},
    "neu": NEUTRAL,
}


def accepted_values(mapping: dict[str, str]) -> dict[str, str]:
    """Every built-in label value (case-folded) -> its class. A class name wins over the
    emotion of the same name ("neutral" is the class neutral, whatever report.mapping says)."""
    return {**{e.casefold(): c for e, c in mapping.items()}, **CLASS_VALUES}


# The study's table: happy, surprise -> Positive; neutral, fear, sad -> Neutral;
# disgust, angry -> Negative.
STUDY_MAPPING: dict[str, str] = {
    "angry": NEGATIVE,
    "disgust": NEGATIVE,
    "fear": NEUTRAL,
    "happy": POSITIVE,
    "sad": NEUTRAL,
    "surprise": POSITIVE,
    "neutral": NEUTRAL,
}

# Label a clip gets when no sampled frame had a face: counted, never dropped.
NO_FACE = "no_face"

# ---------------------------------------------------------------- per-frame table
CLIP_ID = "clip_id"
FRAME_INDEX = "frame_index"  # index of the frame in the file (0-based, decode order)
TIME_S = "time_s"  # presentation time of the frame in seconds
N_FACES = "n_faces"  # faces the detector kept in this frame (before selection)
FACE_INDEX = "face_index"  # which of the kept faces this row describes; -1 when n_faces == 0
BOX_X, BOX_Y, BOX_W, BOX_H = "x", "y", "w", "h"  # chosen box, full-resolution pixels
BOX = (BOX_X, BOX_Y, BOX_W, BOX_H)
CONFIDENCE = "confidence"  # detector confidence (MTCNN); NaN for Haar, which has none

# which person this face is within its clip: faces linked across sampled frames
# (videmo.extract.tracks); -1 when n_faces is 0
TRACK = "track"

FRAME_COLUMNS: tuple[str, ...] = (
    CLIP_ID,
    FRAME_INDEX,
    TIME_S,
    N_FACES,
    FACE_INDEX,
    *BOX,
    CONFIDENCE,
    *EMOTIONS,
    TRACK,
)

# ---------------------------------------------------------------- run manifest
STATUS = "status"
DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"
PENDING = "pending"  # in the corpus, never started (no record) -- status and report only
NOT_EXTRACTED = "not_extracted"  # a labelled clip of the corpus without a done record
REASON = "reason"
PATH = "path"
FRAMES_SAMPLED = "frames_sampled"
FRAMES_WITH_FACE = "frames_with_face"
# median width (full-resolution px) of the clip's faces that labelled it (report.track's rows);
# below FACE_PX_WARN the face-size benchmark measured accuracy falling off (BENCHMARKS.md)
FACE_PX = "face_px"
FACE_PX_WARN = 32
SECONDS = "seconds"
CONFIG_HASH = "config_hash"
FPS = "fps"
FRAME_COUNT = "frame_count"  # frames announced by the container (may be wrong)
FRAMES_DECODED = "frames_decoded"  # frames actually decoded (grabbed)
# frames the clip should have: the container's count, else duration x fps (None when unknown)
FRAMES_EXPECTED = "frames_expected"
# decoded more than TRUNCATED_SHORTFALL below frames_expected; the clip stays ``done``
TRUNCATED = "truncated"
TRUNCATED_SHORTFALL = 0.05
# the input file as analysed (bytes, mtime in ns): a changed file is redone on resume
FILE_SIZE = "file_size"
FILE_MTIME_NS = "file_mtime_ns"
WIDTH, HEIGHT = "width", "height"
# the recording's length in seconds: its last decoded frame's time plus one frame period (the
# container's count / fps when decoding stopped early); segments and windows are checked on it
DURATION_S = "duration_s"
SAMPLED_SPANS = "sampled_spans"  # a chunked recording's record: the [start, end) extracted
FINISHED_AT = "finished_at"
HOST = "host"

MANIFEST_COLUMNS: tuple[str, ...] = (
    CLIP_ID,
    PATH,
    STATUS,
    REASON,
    FRAMES_SAMPLED,
    FRAMES_WITH_FACE,
    SECONDS,
    FPS,
    FRAME_COUNT,
    FRAMES_EXPECTED,
    FRAMES_DECODED,
    TRUNCATED,
    WIDTH,
    HEIGHT,
    DURATION_S,
    FILE_SIZE,
    FILE_MTIME_NS,
    CONFIG_HASH,
    FINISHED_AT,
    HOST,
)

# ---------------------------------------------------------------- per-clip table (report)
FILENAME = "filename"  # the clip id, under the study's column name
PREDICT = "predict"
GOLDEN = "golden"
# frame-label counts per class, the study's column names, in CLASSES order
CLASS_COUNTS: dict[str, str] = {POSITIVE: "pos", NEGATIVE: "neg", NEUTRAL: "neut"}
CORRECT = "correct"
GROUP = "group"
PREDICT_UNBALANCED = "predict_unbalanced"
FACE_ROWS = "face_rows"  # rows with a face (frames with a face; faces with select: all)
INTERVALS = "intervals"
DECIDED_BY = "decided_by"  # the aggregate that labelled the clip, or its fallback
PEAK_FRAMES = "peak_frames"  # frame indices an expressive-frame rule looked at ("" otherwise)
MEAN_PREFIX = "mean_"
MEAN_EMOTIONS: tuple[str, ...] = tuple(MEAN_PREFIX + e for e in EMOTIONS)

# how predict was balanced (report.balance); golden is spelled BALANCE_ORACLE
BALANCE = "balance"
BALANCE_ORACLE = "golden (oracle)"

# STATUS here is the clip's state in the report: DONE, FAILED or NOT_EXTRACTED; a clip that is
# not done has that state as its predict (like NO_FACE) and counts as wrong
CLIP_TABLE_COLUMNS: tuple[str, ...] = (
    FILENAME, PREDICT, GOLDEN, *CLASS_COUNTS.values(), STATUS, FRAMES_SAMPLED,
    FRAMES_WITH_FACE, CORRECT, TRUNCATED, *MEAN_EMOTIONS, GROUP, PREDICT_UNBALANCED, BALANCE,
    INTERVALS, DECIDED_BY, PEAK_FRAMES, FACE_PX,
)

# ---------------------------------------------------------------- per-group table (report)
# metrics of each group (keys of videmo.evaluate.metrics.evaluate), then predicted counts per value
GROUP_METRIC_COLUMNS: tuple[str, ...] = (
    "clips", "labelled", "done", "failed", "not_extracted", "clips_with_face", "correct",
    "coverage", "accuracy", "accuracy_covered", "macro_f1",
    # 95% bootstrap intervals over clips (videmo.evaluate.metrics.bootstrap_intervals)
    "accuracy_ci_low", "accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high",
)
PREDICTED_PREFIX = "predicted_"

# ---------------------------------------------------------------- observer annotations
# RUN/annotations.csv, one row per button press on the annotation page (videmo annotate)
OBSERVER = "observer"
BUTTON = "button"  # the button pressed: an emotion of EMOTIONS or another configured event
MEDIA_MS = "media_ms"  # the clip's playback position at the press (video.currentTime, ms)
WALL_TIME = "wall_time"  # the observer's clock at the press, ISO 8601 UTC
RECEIVED_AT = "received_at"  # the server's clock when the row was written, ISO 8601 UTC

ANNOTATION_COLUMNS: tuple[str, ...] = (OBSERVER, CLIP_ID, BUTTON, MEDIA_MS, WALL_TIME,
                                       RECEIVED_AT)
# Events the page offers besides the seven emotions (annotate.buttons' default).
OBSERVER_EVENTS: tuple[str, ...] = ("laughing", "applause", "booing", "crying")

# Annotations joined to the per-frame table (videmo.annotate.merge)
FRAME_DT_S = "frame_dt_s"  # time of the joined frame minus the event's media time (seconds)
TOLERANCE_S = "tolerance_s"  # largest |frame_dt_s| accepted for this event's clip
MATCHED = "matched"  # a sampled frame lies within the tolerance
PREDICTED_EMOTION = "predicted_emotion"  # top of the seven at the joined frame; NA without face
AGREE = "agree"  # the event's emotion equals predicted_emotion (NA when not comparable)

# ---------------------------------------------------------------- face mesh (MediaPipe)
# The 52 blendshape scores, named and ordered exactly as MediaPipe's FaceBlendshapesGraph names
# the outputs of face_blendshapes.tflite (index i of the model's output vector).
BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)

# ---------------------------------------------------------------- learned classifiers (learn)
# RUN/learn/results.csv, one row per (classifier, features); rates are fractions in 0-1
CLASSIFIER = "classifier"
KIND = "kind"  # KIND_BASELINE, KIND_RULE or KIND_LEARNED
KIND_BASELINE, KIND_RULE, KIND_LEARNED = "baseline", "rule", "learned"
FEATURES = "features"
ACCURACY, MACRO_F1 = "accuracy", "macro_f1"
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"  # suffixes of a rate's 95% bootstrap interval
N_CLIPS, N_GROUPS = "n_clips", "n_groups"
P_VS_VOTE = "p_vs_vote"  # exact McNemar test against the majority vote (NaN for the vote)

LEARN_RESULT_COLUMNS: tuple[str, ...] = (
    CLASSIFIER, KIND, FEATURES, ACCURACY, ACCURACY + CI_LOW, ACCURACY + CI_HIGH, MACRO_F1,
    MACRO_F1 + CI_LOW, MACRO_F1 + CI_HIGH, N_CLIPS, N_GROUPS, P_VS_VOTE,
)
# RUN/learn/predictions.csv: each clip's out-of-fold prediction of each row, and its fold
FOLD = "fold"
# the pose-normalised landmark subset that videmo learn joins to the per-frame rows it reads
# (videmo.evaluate.learn.families.LANDMARK_SUBSET; never stored in a run's tables)
LANDMARKS_POSE = "landmarks_pose"

# ---------------------------------------------------------------- mesh table (features: mesh)
# RUN/features/mesh.parquet: one row per face row of the per-frame table, joined on
# (clip_id, frame_index, face_index). LANDMARKS holds 478 x 3 float32 as one flat list
# (x0, y0, z0, x1, ...): x, y in full-resolution pixels, z in pixels at the same scale.
PRESENCE = "presence"  # MediaPipe's face presence score; the mesh columns are empty below
# mesh.min_presence
YAW, PITCH, ROLL = "yaw", "pitch", "roll"  # head pose in degrees (videmo.extract.features.mesh)
TX, TY, TZ = "tx", "ty", "tz"  # head translation in cm (camera space of the canonical face)
LANDMARKS = "landmarks"
N_LANDMARKS = 478
# the keys every per-face table shares (the per-frame table and every side table): a side
# table joins its rows to the per-frame rows on them
ROW_KEYS: tuple[str, ...] = (CLIP_ID, FRAME_INDEX, FACE_INDEX)
MESH_KEYS = ROW_KEYS  # the mesh table's name for them
MESH_COLUMNS: tuple[str, ...] = (
    *MESH_KEYS, PRESENCE, YAW, PITCH, ROLL, TX, TY, TZ, *BLENDSHAPES, LANDMARKS,
)
MESH_TABLE = "features/mesh.parquet"  # the merged mesh table, in the run directory
MESH_HASH = "mesh_hash"  # a clip record's key of its mesh part (Config.table_hash("mesh"))
# How mesh tables are written: float32 landmarks do not repeat, so no dictionaries (they only
# grow the file); byte-stream-split floats compress well with zstd: about 4.9 kB a face, less
# than the 6 kB of the raw float32 values, against 15 kB as CSV text of the same numbers.
MESH_PARQUET: dict[str, Any] = {
    "use_dictionary": [CLIP_ID],
    "compression": "zstd",
    "use_byte_stream_split": [*(c for c in MESH_COLUMNS[3:-1]), f"{LANDMARKS}.list.element"],
}


@dataclass(frozen=True)
class FeatureTable:
    """A side table of a feature extractor as the run directory stores it: one part per clip
    (RUN/parts/NAME/CLIP.parquet) counted under ``cache_hash`` (the clip record's
    ``NAME_hash``), merged into RUN/``path`` and written with the pyarrow options ``parquet``.
    Built from the extractor's declarations
    (:meth:`videmo.extract.features.base.FeatureExtractor.feature_table`)."""

    name: str
    path: str
    cache_hash: str
    parquet: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def hash_key(self) -> str:
        """The clip record's key of this table's cache hash (the mesh's: ``mesh_hash``)."""
        return f"{self.name}_hash"



# the per-frame table's dtypes (the emotions extractor's table, frames.parquet)
FRAME_DTYPES: dict[str, str] = {
    CLIP_ID: "string",
    FRAME_INDEX: "int64",
    TIME_S: "float64",
    N_FACES: "int16",
    FACE_INDEX: "int16",
    **{c: "Int32" for c in BOX},
    CONFIDENCE: "float32",
    **{e: "float32" for e in EMOTIONS},
    TRACK: "int32",
}


def empty_frame_table():
    """A per-frame table without rows (FRAME_COLUMNS, FRAME_DTYPES): a run with no clip done."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=FRAME_DTYPES[c]) for c in FRAME_COLUMNS})


# FRAME_DTYPES as Arrow and Parquet hold them: (Arrow type, pandas' name for its kind)
_FRAME_ARROW: dict[str, tuple[str, str]] = {
    "string": ("large_string", "object"),
    "int64": ("int64", "int64"),
    "int32": ("int32", "int32"),
    "Int32": ("int32", "int32"),  # nullable: a frame without a face has no box
    "int16": ("int16", "int16"),
    "float64": ("float64", "float64"),
    "float32": ("float32", "float32"),
}


@functools.cache
def frame_arrow_schema(columns: tuple[str, ...] = FRAME_COLUMNS):
    """The per-frame table's Arrow schema (``columns`` of FRAME_COLUMNS, FRAME_DTYPES), with
    the ``pandas`` metadata ``DataFrame.to_parquet`` writes, so ``pd.read_parquet`` gives the
    dtypes back (nullable Int32 boxes, string clip ids): extraction builds and writes its tables
    with pyarrow alone and never imports pandas (about 0.3 s of CPU a process).
    tests/test_frame_arrow.py holds it to what pandas itself writes. Made once per ``columns``
    (an Arrow schema is immutable; finding pandas' version takes milliseconds)."""
    import json
    from importlib import metadata

    import pyarrow as pa

    try:
        pandas_version = metadata.version("pandas")
    except metadata.PackageNotFoundError:  # pragma: no cover - pandas is a dependency
        pandas_version = None
    kinds = {c: _FRAME_ARROW[FRAME_DTYPES[c]] for c in columns}
    described = {
        "index_columns": [], "column_indexes": [],
        "columns": [{"name": c, "field_name": c, "pandas_type": kinds[c][1],
                     "numpy_type": FRAME_DTYPES[c], "metadata": None} for c in columns],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": pandas_version,
    }
    return pa.schema([pa.field(c, getattr(pa, kinds[c][0])()) for c in columns],
                     metadata={b"pandas": json.dumps(described).encode()})
