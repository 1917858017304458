"""The options: one frozen dataclass per config section, each field with a type, a default
and a one-line ``doc`` (:func:`opt`).

This module only declares; reading YAML, coercing values and ``--set`` overrides live in
:mod:`videmo.config.load`, the cache keys in :mod:`videmo.config.keys`, the template and the
reference in :mod:`videmo.config.reference`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from videmo import schema

if typing.TYPE_CHECKING:
    from videmo.schema import FeatureTable


class ConfigError(ValueError):
    """A config file, key or value is wrong; the message names it and says what is allowed."""


def opt(default: Any, doc: str, *, minimum: float | None = None, exclusive: bool = False,
        choices: str | None = None, **kw):
    """A config option: its default, its one-line doc, an optional lower bound and, for a
    name (or a list of names), ``choices``: the :class:`videmo.registry.Registry` that holds
    the allowed names, as ``"module:attr"`` (read when a config is checked, so importing the
    config imports no stage; see :func:`option_types`)."""
    meta = {"doc": doc, "minimum": minimum, "exclusive": exclusive, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: typing.cast(Any, default).copy(), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def registry_names(ref: str) -> tuple[str, ...]:
    """The names a registry (``"module:attr"``) holds now."""
    module, attr = ref.split(":")
    return tuple(getattr(importlib.import_module(module), attr))


def option_types(cls: type) -> dict[str, Any]:
    """The declared type of each option of section ``cls``, with a registry's names as a
    ``Literal`` where the option has ``choices`` (a list option: a list of them), so the
    loader, ``--set``, the template and the reference see one kind of choice."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        ref = f.metadata.get("choices")
        if ref:
            names = typing.cast(Any, Literal).__getitem__(registry_names(ref))
            hints[f.name] = list[names] if typing.get_origin(hints[f.name]) is list else names
    return hints


VIDEO_EXTENSIONS = [".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".m4v", ".mpg", ".mpeg",
                    ".wmv", ".3gp", ".ts", ".mts", ".ogv"]
IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"]


@dataclass(frozen=True)
class CorpusConfig:
    paths: list[str] = opt([], "Corpus root directories (searched recursively); relative paths "
                               "are resolved against the config file's folder.")
    include: list[str] = opt(["*"], "Glob patterns (on the path relative to its root) a clip "
                                    "must match to be included.")
    exclude: list[str] = opt([], "Glob patterns (on the path relative to its root) that drop "
                                 "a clip.")
    video_extensions: list[str] = opt(VIDEO_EXTENSIONS, "File extensions read as videos "
                                                        "(any container OpenCV/FFmpeg reads).")
    image_extensions: list[str] = opt(
        IMAGE_EXTENSIONS, "Image extensions; a directory holding images and no video is one "
                          "clip (an image sequence).")
    image_fps: float = opt(30.0, "Frame rate given to image-sequence clips (frames sorted by "
                                 "name).", minimum=0, exclusive=True)
    segments: str | None = opt(
        None, "CSV of coded time ranges of long recordings (recording, start, end; optional id, "
              "label, person): each row is a clip of the report (README: Long recordings); "
              "relative to the config file's folder.")
    segments_columns: dict[str, str] = opt(
        {}, "Header names of the segments file's columns by role (recording, start, end, id, "
            "label, person), e.g. {start: Begin Time}; roles not named are found by common "
            "names.")
    window_s: float | None = opt(None, "Cut every recording into windows of this many seconds, "
                                       "each a clip of the report; null: no windows.",
                                 minimum=0, exclusive=True)
    window_step_s: float | None = opt(None, "Seconds from one window's start to the next; "
                                            "null: window_s (consecutive windows).",
                                      minimum=0, exclusive=True)


@dataclass(frozen=True)
class SamplingConfig:
    every_n: int = opt(20, "Analyse every Nth decoded frame (the study used 20). Ignored when "
                           "`fps` is set.", minimum=1)
    fps: float | None = opt(None, "Target sampling rate in frames per second (null: use "
                                  "`every_n`).", minimum=0, exclusive=True)
    start_s: float = opt(0.0, "Skip frames before this time (seconds).", minimum=0)
    end_s: float | None = opt(None, "Stop at this time (seconds, exclusive); null: clip end.",
                              minimum=0, exclusive=True)
    max_frames: int | None = opt(None, "At most this many sampled frames per clip; null: no cap.",
                                 minimum=1)


@dataclass(frozen=True)
class HaarConfig:
    scale_factor: float = opt(1.1, "detectMultiScale scaleFactor (fer's default 1.1).",
                              minimum=1, exclusive=True)
    min_neighbors: int = opt(5, "detectMultiScale minNeighbors (fer's default 5).", minimum=0)
    min_size: int = opt(50, "Smallest face side in full-resolution pixels (fer's default 50).",
                        minimum=1)


@dataclass(frozen=True)
class MtcnnConfig:
    min_confidence: float = opt(0.9, "Drop MTCNN faces below this confidence (0-1).", minimum=0)
    min_size: int = opt(20, "Drop faces with a side below this many full-resolution pixels "
                            "(mtcnn itself always runs with its min_face_size 20).", minimum=1)
    batch_size: int = opt(16, "Frames passed to MTCNN per call (same-size frames batch well).",
                          minimum=1)
    onet: bool = opt(False, "Also run MTCNN's third network, O-Net, which refines each box and "
                            "its confidence, as fer's MTCNN does (false: P- and R-Net only, "
                            "videmo's MTCNN boxes so far).")


@dataclass(frozen=True)
class MediapipeConfig:
    min_score: float = opt(0.5, "Drop BlazeFace detections below this score (0-1; MediaPipe's "
                                "default 0.5).", minimum=0)


@dataclass(frozen=True)
class BlazefaceFullConfig:
    min_score: float = opt(0.6, "Drop full-range BlazeFace detections below this score (0-1; "
                                "MediaPipe's default 0.6).", minimum=0)
    tiles: int = opt(2, "Besides the whole frame, also run the model on a grid of square tiles, "
                        "this many along the frame's long side (0: whole frame only; at 720p, 2 "
                        "finds wide shots' faces from about 48 px, 4 from about 20 px at 3x the "
                        "cost: BENCHMARKS.md, Face size).", minimum=0)
    min_size: int = opt(0, "Drop faces narrower or shorter than this many full-resolution "
                           "pixels (0: keep all the model finds).", minimum=0)


@dataclass(frozen=True)
class TracksConfig:
    min_iou: float = opt(0.3, "A face continues a track when its box overlaps the track's last "
                              "box by at least this IoU (0-1).", minimum=0)
    max_shift: float = opt(1.0, "... or, without overlap, when its centre moved less than this "
                                "many box widths (and its size is within 2x).", minimum=0)
    max_gap: int = opt(5, "A track ends after this many sampled frames without its face.",
                       minimum=0)


@dataclass(frozen=True)
class FacesConfig:
    detector: str = opt(
        "haar", "Face detector: OpenCV's Haar cascade (fer's default), MTCNN, or mediapipe "
                "(BlazeFace short range, fast; misses faces further than about 2 m, e.g. below "
                "about 128 px in a 720p frame) or blazeface_full (BlazeFace full range on the "
                "frame and on tiles: wide shots' faces from about 48 px at 720p). MTCNN finds "
                "the smallest faces (from 20 px: BENCHMARKS.md, Face size).",
        choices="videmo.extract.detectors:DETECTORS")
    select: Literal["largest", "first", "all"] = opt(
        "largest", "Which faces get a row: the largest box, the detector's first box (the "
                   "study), or all (one row per face).")
    max_width: int | None = opt(None, "Downscale frames wider than this before detection (boxes "
                                      "are mapped back to full resolution); null: never.",
                                minimum=16)
    haar: HaarConfig = field(default_factory=HaarConfig, metadata={"doc": "Haar cascade options."})
    mtcnn: MtcnnConfig = field(default_factory=MtcnnConfig, metadata={"doc": "MTCNN options."})
    mtcnn_engine: Literal["litert", "tensorflow"] = opt(
        "litert", "What runs MTCNN's networks: LiteRT (no TensorFlow import; the mtcnn package's "
                  "boxes within float rounding) or TensorFlow via the mtcnn package (the "
                  "reference, bit for bit as in runs made before LiteRT).")
    mediapipe: MediapipeConfig = field(default_factory=MediapipeConfig,
                                       metadata={"doc": "BlazeFace (mediapipe) options."})
    blazeface_full: BlazefaceFullConfig = field(
        default_factory=BlazefaceFullConfig,
        metadata={"doc": "Full-range BlazeFace (blazeface_full) options."})
    tracks: TracksConfig = field(default_factory=TracksConfig, metadata={
        "doc": "Face tracks: a `track` id links a clip's faces across sampled frames."})


@dataclass(frozen=True)
class MeshConfig:
    min_presence: float = opt(0.5, "Keep a face's mesh when MediaPipe's face presence score "
                                   "is at least this (0-1); below it the row has no mesh.",
                              minimum=0)


@dataclass(frozen=True)
class EmotionsConfig:
    model: str = opt(
        "fer", "Frame model that scores the seven emotions of a face: fer (mini-Xception on "
               "the face's pixels), pixels (videmo's convolutional network on a 48x48 grey "
               "face crop framed for the detector; LiteRT, no TensorFlow), blendshapes (a "
               "network on MediaPipe blendshapes) or landmarks (a 1D-CNN on pose-normalised "
               "landmarks); the last three were trained by videmo train on FER2013 (MODELS.md); "
               "blendshapes and landmarks turn the face mesh on by themselves and give no "
               "scores to a face the mesh cannot read.",
        choices="videmo.extract.features.frame_models:FRAME_MODELS")
    align: bool = opt(False, "emotions.model pixels: rotate each face crop so the eyes are "
                             "level (BlazeFace's eye keypoints; OpenCV's eye cascade in a box "
                             "without keypoints; no rotation when no eye pair is found). Off by "
                             "default: no gain measured (MODELS.md).")
    flip: bool = opt(False, "emotions.model pixels: average each face's scores with its "
                            "mirror image's (test-time flip; twice the cost per face).")
    engine: Literal["tflite", "keras"] = opt(
        "tflite", "FER model runtime (emotions.model: fer): the quantized tflite file (CPU, "
                  "fer's default) or the Keras .hdf5 model run in batches (useful on a GPU).")
    batch_size: int = opt(64, "Faces per call of the Keras engine.", minimum=1)


@dataclass(frozen=True)
class RunConfig:
    out: str = opt("runs/run", "Run directory for all outputs; relative paths are resolved "
                               "against the current directory.")
    jobs: int = opt(1, "Worker processes on this machine (each loads the models once).",
                    minimum=1)
    threads: int | None = opt(None, "Threads per worker for OpenCV/TensorFlow; null: "
                                    "SLURM_CPUS_PER_TASK or cores / jobs.", minimum=1)
    on_error: Literal["continue", "abort"] = opt("continue", "On a failed clip: record it and "
                                                             "go on, or stop the run.")
    chunk_s: float | None = opt(300.0, "Recordings longer than this are split into chunks of "
                                       "this many seconds, the units of --jobs, SLURM shards "
                                       "and resume (cut exactly at frame timestamps); null: a "
                                       "recording is one unit.", minimum=0, exclusive=True)


@dataclass(frozen=True)
class RulesConfig:
    top_fraction: float = opt(0.2, "expressive / confident: share of a clip's face rows the "
                                   "clip is labelled from (its peak rows).", minimum=0,
                              exclusive=True)
    min_frames: int = opt(3, "expressive / confident: at least this many peak rows (all rows "
                             "of a shorter clip).", minimum=1)
    baseline: Literal["clip", "group"] = opt(
        "clip", "expressive / peak: the person's resting face comes from the clip itself or "
                "from every clip of its group (report.group_pattern).")
    baseline_fraction: float = opt(0.25, "expressive / peak: share of rows, the most neutral, "
                                         "that make the baseline.", minimum=0, exclusive=True)
    min_rise: float = opt(0.1, "expressive / peak: the least mean rise of the winning class "
                               "over the baseline (probability points, 0-1).", minimum=0)
    min_confidence: float = opt(0.5, "confident: the least mean probability of the winning "
                                     "class over the peak rows (0-1).", minimum=0)
    window_frames: int = opt(3, "peak: face rows (consecutive, in frame order) in the peak "
                                "segment.", minimum=1)
    fallback: Literal["majority", "mean"] = opt(
        "majority", "Label of a clip where the rule abstains (no class stands out): the "
                    "majority vote or the mean.")


@dataclass(frozen=True)
class ReportConfig:
    labels: str | None = opt(None, "Golden labels CSV, UTF-8, comma / semicolon / tab separated "
                                   "(clip id or file name, label; see README, Golden labels); "
                                   "relative to the config file; null: no evaluation.")
    labels_clip_column: str | None = opt(None, "Header name of the labels file's clip column; "
                                               "null: a known name (clip, clip_id, filename, "
                                               "file, video, name, id, ...), else the first "
                                               "column.")
    labels_label_column: str | None = opt(None, "Header name of the labels file's label column; "
                                                "null: a known name (label, golden, class, "
                                                "emotion, sentiment, ...), else the second "
                                                "column.")
    label_aliases: dict[str, str] = opt({}, "Extra label values (any case) and the class or "
                                            "emotion each means, e.g. {N: neutral, H: happy}; "
                                            "any other unknown value is an error.")
    strict_labels: bool = opt(False, "Fail when labels are missing, extra, duplicate or empty "
                                     "(otherwise they are reported by name).")
    mapping: dict[str, str] = opt(dict(schema.STUDY_MAPPING), "Seven emotions -> positive / "
                                                              "negative / neutral (the study's "
                                                              "table by default).")
    frame_label: Literal["top", "sum"] = opt(
        "top", "Frame label: top of the seven emotions, then mapped (the study), or top of the "
               "three summed probabilities.")
    aggregate: str = opt(
        "majority", "Clip label: majority of frame labels, label of the mean probabilities, "
                    "majority over intervals of `interval_frames` frames, or an expressive-frame "
                    "rule (`report.rules`: the top frames by rise over the person's baseline, "
                    "the most confident non-neutral frames, or the peak segment).",
        choices="videmo.evaluate.vote:AGGREGATES")
    interval_frames: int = opt(1000, "Decoded frames per interval for aggregate: interval (the "
                                     "study used 1,000).", minimum=1)
    rules: RulesConfig = field(default_factory=RulesConfig, metadata={
        "doc": "Expressive-frame rules (report.aggregate: expressive, confident, peak)."})
    track: Literal["all", "main"] = opt(
        "all", "Which face rows vote: all (each frame's selected faces) or main (only the "
               "clip's main face track: most rows, then largest; with faces.select: all this "
               "follows one person instead of each frame's largest box).")
    tie: Literal["probability", "neutral", "order"] = opt(
        "probability", "Tie rule between classes with equal votes: larger summed probability, "
                       "neutral if tied, or class order (positive, negative, neutral).")
    balance: Literal["none", "uniform", "golden", "shares"] = opt(
        "none", "Reassign clip labels by rank so predicted class proportions match uniform "
                "shares, `balance_shares`, or the golden distribution (golden is an oracle: it "
                "reads the test labels, needs report.labels, and its numbers are no fair "
                "estimate; see README).")
    balance_shares: dict[str, float] = opt({}, "Target shares per class for balance: shares, "
                                               "e.g. {positive: 0.3, negative: 0.3, "
                                               "neutral: 0.4}.")
    group_pattern: str = opt(r"^([^_]+)", "Regular expression on the clip's file name; its "
                                          "first group names the clip's group (biden_58.0 -> "
                                          "biden).")
    figures: bool = opt(True, "Write PNG figures.")
    timeline_clips: int | None = opt(50, "Clips that get a per-clip timeline figure (the first "
                                         "N by id); null: all.", minimum=0)
    classifier: str | None = opt(None, "A clip classifier saved by videmo learn (its model "
                                       "folder); it labels every clip with a face instead of "
                                       "`aggregate` (decided_by: its name); null: none.")
    out: str | None = opt(None, "Report directory; null: RUN/report.")


@dataclass(frozen=True)
class SlurmConfig:
    shards: int = opt(20, "Array tasks the corpus is split into, balanced by frames to sample "
                          "(at most one per clip).", minimum=1)
    max_concurrent: int | None = opt(10, "Array tasks running at once (--array=...%K); null: "
                                         "no limit.", minimum=1)
    partition: str | None = opt(None, "sbatch --partition; null: the cluster's default.")
    account: str | None = opt(None, "sbatch --account; null: your default account.")
    time: str = opt("04:00:00", "Time limit of one array task (sbatch --time, e.g. 04:00:00 "
                                "or 1-00:00:00).")
    mem: str = opt("4G", "Memory of one array task (sbatch --mem).")
    cpus_per_task: int = opt(2, "CPUs of one array task; videmo's threads follow "
                                "SLURM_CPUS_PER_TASK.", minimum=1)
    gpus: str | None = opt(None, "sbatch --gpus for each array task (e.g. 1 or a100:1); "
                                 "TensorFlow uses a granted GPU for MTCNN and the Keras engine.")
    merge_time: str = opt("01:00:00", "Time limit of the merge job (videmo report).")
    merge_mem: str = opt("4G", "Memory of the merge job.")
    job_name: str = opt("videmo", "Job name prefix (NAME-extract, NAME-merge).")
    extra: list[str] = opt([], "Extra sbatch options, one per item, for both jobs, e.g. "
                               "--qos=short or --constraint=avx2.")
    setup: list[str] = opt([], "Shell lines run before videmo in every job, e.g. module load "
                               "or source ~/venvs/videmo/bin/activate.")
    command: str | None = opt(None, "How a job runs videmo; null: this Python with -m videmo "
                                    "(a shared file system is assumed).")
    templates: str | None = opt(None, "Folder with your own extract-array.sbatch and "
                                      "merge-report.sbatch templates; null: the shipped ones "
                                      "(scripts/slurm/templates).")


ANNOTATE_SHORTCUTS = {"angry": "a", "disgust": "d", "fear": "f", "happy": "h", "sad": "s",
                      "surprise": "u", "neutral": "n", "laughing": "l", "applause": "p",
                      "booing": "b", "crying": "c"}
_BUTTON_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class AnnotateConfig:
    buttons: list[str] = opt(list(schema.EMOTIONS + schema.OBSERVER_EVENTS),
                             "Buttons of the annotation page, in order (lower-case names; the "
                             "seven emotions are compared with the predicted frame emotion).")
    shortcuts: dict[str, str] = opt(ANNOTATE_SHORTCUTS, "Keyboard shortcuts (one character) "
                                                        "added to / replacing the built-in "
                                                        "ones; arrows: previous / next clip, "
                                                        "space: play / pause.")
    host: str = opt("127.0.0.1", "Address the page is served on; anything but 127.0.0.1 "
                                 "exposes the clips and the page to that network.")
    port: int = opt(0, "TCP port of the page; 0: a free port (printed at start).", minimum=0)
    transcode: Literal["auto", "always"] = opt(
        "auto", "auto: serve MP4 (H.264) and WebM clips as they are and transcode the rest "
                "(flv, avi, ...) to WebM/VP9; always: transcode every clip.")
    cache: str | None = opt(None, "Folder of transcoded clips (keyed by file path, size and "
                                  "mtime; originals are never modified); null: "
                                  "$XDG_CACHE_HOME/videmo/transcode or ~/.cache/videmo/"
                                  "transcode.")

    def __post_init__(self) -> None:
        """Checks that need the whole section; errors name the key and the value."""
        if self.port > 65535:
            raise ConfigError(f"config key 'annotate.port': must be at most 65535, got "
                              f"{self.port}")
        if not self.buttons:
            raise ConfigError("config key 'annotate.buttons': give at least one button")
        for name in self.buttons:
            if not _BUTTON_NAME.match(name):
                raise ConfigError(f"config key 'annotate.buttons': {name!r} is not a button "
                                  "name (lower-case letters, digits, _ or -, at most 32)")
        dup = sorted({b for b in self.buttons if self.buttons.count(b) > 1})
        if dup:
            raise ConfigError(f"config key 'annotate.buttons': {dup[0]!r} appears twice")
        # given shortcuts add to / replace the built-in ones (a mapping key replaces, not merges)
        object.__setattr__(self, "shortcuts", {**ANNOTATE_SHORTCUTS, **self.shortcuts})
        for button, key in self.shortcuts.items():
            if button not in self.buttons and ANNOTATE_SHORTCUTS.get(button) != key:
                hint = difflib.get_close_matches(button, self.buttons, n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ConfigError(f"config key 'annotate.shortcuts.{button}': not one of "
                                  f"annotate.buttons{extra}")
            if len(key) != 1 or not key.isprintable() or key.isspace():
                raise ConfigError(f"config key 'annotate.shortcuts.{button}': {key!r} is not "
                                  "one printable character (space is play / pause)")
        by_key: dict[str, list[str]] = {}
        for button, key in self.keys().items():
            by_key.setdefault(key.lower(), []).append(button)
        for key, buttons in by_key.items():
            if len(buttons) > 1:
                raise ConfigError(f"config key 'annotate.shortcuts': the key {key!r} is given "
                                  f"to {' and '.join(buttons)}; give one of them another key")

    def keys(self) -> dict[str, str]:
        """Shortcut of each button that has one (built-in shortcuts of absent buttons dropped)."""
        return {b: k for b, k in self.shortcuts.items() if b in self.buttons}


@dataclass(frozen=True)
class LearnConfig:
    features: list[str] = opt(["fer"], "Feature sets to learn from: a family name (fer; "
                                       "blendshapes, landmarks: need features: [emotions, mesh]) "
                                       "or names joined by + (fer+blendshapes); each set is a "
                                       "row per classifier, and with several sets the inner CV "
                                       "also chooses one (features: selected).")
    classifiers: list[str] = opt(
        ["logistic", "gboost", "lstm"], "Learned clip classifiers: logistic regression and "
                                        "gradient boosting on pooled statistics per clip, an "
                                        "LSTM over the frame sequence.",
        choices="videmo.evaluate.learn.base:LEARNERS")
    folds: int = opt(5, "Outer cross-validation: GroupKFold splits by person "
                        "(report.group_pattern) when there are more than `logo_max_groups` "
                        "groups.", minimum=2)
    logo_max_groups: int = opt(10, "Up to this many groups the outer CV leaves one group out "
                                   "at a time (LeaveOneGroupOut).", minimum=2)
    inner_folds: int = opt(3, "Grouped folds of the inner CV that chooses hyper-parameters "
                              "and the feature set on the training fold only.", minimum=2)
    one_group: Literal["clips", "refuse"] = opt(
        "clips", "When every clip is one person's: leave one clip out (said loudly: not "
                 "person-grouped, optimistic for new persons) or refuse.")
    seed: int = opt(0, "Seed of every random choice (folds' shuffles, models, bootstrap).",
                    minimum=0)
    bootstrap: int = opt(2000, "Bootstrap repetitions for the 95% confidence intervals.",
                         minimum=100)
    bootstrap_unit: Literal["auto", "groups", "clips"] = opt(
        "auto", "What the bootstrap resamples: groups (persons; clips of a person are not "
                "independent), clips, or auto: groups when there are at least 10, else clips.")
    max_frames: int = opt(64, "LSTM: clips with more face rows are subsampled evenly to this "
                              "many (shorter clips are padded and masked).", minimum=1)
    lstm_units: int = opt(16, "LSTM: units of its one recurrent layer (fixed, not tuned).",
                          minimum=1)
    lstm_epochs: int = opt(40, "LSTM: training epochs (fixed, not tuned).", minimum=1)
    out: str | None = opt(None, "Folder of the results and the saved model; null: RUN/learn.")




@dataclass(frozen=True)
class TrainConfig:
    data: str | None = opt(None, "The still-image set: FER2013's folder copy (emotion folders "
                                 "of Training_<n>.jpg, PublicTest_<n>.jpg, PrivateTest_<n>.jpg) "
                                 "or fer2013.csv; never committed (no open licence).")
    format: Literal["folders", "csv"] = opt("folders", "How train.data is laid out: emotion "
                                                       "folders or the standard fer2013.csv.")
    cache: str = opt("~/.cache/videmo/train", "Folder of the cached per-image mesh features "
                                              "(resumable chunks); keep it outside the repo.")
    out: str = opt("runs/train", "Folder of results.json, results.md and the trained models.")
    seed: int = opt(0, "Seed of the holdout split, the networks and gradient boosting.",
                    minimum=0)
    epochs: int = opt(30, "Most training epochs per network (early stopping on the selection "
                          "split may stop sooner).", minimum=1)
    patience: int = opt(5, "Epochs without a better selection accuracy before stopping.",
                        minimum=1)
    batch_size: int = opt(128, "Images per training step.", minimum=1)
    upscale: int = opt(192, "Side in pixels the 48x48 faces are upscaled to (bicubic) "
                            "before the face mesh.", minimum=48)
    models: list[str] = opt(
        ["blend_lstm", "blend_mlp", "blend_gboost", "land_cnn_procrustes", "land_cnn_minmax"],
        "Models to train side by side: the blendshape LSTM, MLP and gradient boosting, the "
        "landmark 1D-CNN with pose normalisation or min-max only, and pixel_vgg (a "
        "convolutional network on the 48x48 face crops, resumable per epoch; see "
        "configs/train-pixels.yaml; pixel_vgg_48 and pixel_vgg_64: the same with 1.5x and 2x "
        "the filters).",
        choices="videmo.train:TRAIN_MODELS")
    seeds: list[int] | None = opt(None, "Pixel models: one network per seed, their averaged "
                                        "probabilities are the model (one TFLite file); null: "
                                        "one network, seed train.seed.")
    import_weights: str | None = opt(
        None, "Pixel models: a folder of networks trained elsewhere by "
              "scripts/train_pixels_gpu.py (<model>-s<seed>.npz, summary*.json; e.g. on a GPU "
              "with PyTorch): they are imported (checked against the probabilities recorded "
              "there), exported and scored as if trained here; null: train here.")
    min_score: float = opt(0.4, "Blendshape selection: a score counts above this.", minimum=0)
    min_images: int = opt(100, "Blendshape selection: kept when above min_score in more than "
                               "this many fitted images.", minimum=0)
    limit: int | None = opt(None, "Use at most this many images per split (evenly spaced), "
                                  "for a quick measurement; null: all.", minimum=1)
    workers: int | None = opt(None, "Processes extracting features; null: the CPUs available.",
                              minimum=1)




@dataclass(frozen=True)
class Config:
    corpus: CorpusConfig = field(default_factory=CorpusConfig,
                                 metadata={"doc": "Which clips to analyse."})
    sampling: SamplingConfig = field(default_factory=SamplingConfig,
                                     metadata={"doc": "Which frames of a clip to analyse."})
    faces: FacesConfig = field(default_factory=FacesConfig,
                               metadata={"doc": "How faces are found and chosen."})
    features: list[str] = opt(
        ["emotions"], "Per-face feature extractors: emotions (the seven scores of "
                      "emotions.model; the per-frame table, always on) and mesh (MediaPipe face "
                      "mesh: 478 landmarks, 52 blendshapes, head pose; "
                      "RUN/features/mesh.parquet).",
        choices="videmo.extract.features:EXTRACTORS")
    mesh: MeshConfig = field(default_factory=MeshConfig,
                             metadata={"doc": "The face mesh extractor (features: mesh)."})
    emotions: EmotionsConfig = field(default_factory=EmotionsConfig,
                                     metadata={"doc": "Which frame model scores a face's seven "
                                                      "emotions, and how."})
    run: RunConfig = field(default_factory=RunConfig,
                           metadata={"doc": "Where outputs go and how the work is spread."})
    report: ReportConfig = field(default_factory=ReportConfig,
                                 metadata={"doc": "How frames become clip labels and metrics."})
    slurm: SlurmConfig = field(default_factory=SlurmConfig,
                               metadata={"doc": "SLURM job arrays (videmo submit)."})
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig,
                                     metadata={"doc": "The observer annotation page (videmo "
                                                      "annotate)."})
    learn: LearnConfig = field(default_factory=LearnConfig,
                               metadata={"doc": "Learned clip classifiers and their honest "
                                                "evaluation (videmo learn)."})
    train: TrainConfig = field(default_factory=TrainConfig,
                               metadata={"doc": "Frame classifiers trained on still faces "
                                                "(videmo train, MODELS.md)."})
    base_dir: str = field(default=".", metadata={"doc": None}, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (the form written next to outputs)."""
        d = dataclasses.asdict(self)
        d.pop("base_dir")
        return d

    def extract_key(self) -> dict[str, Any]:
        """Everything that changes the per-frame numbers, as plain data (kept in run.json so a
        refusal can name what differs); see :func:`videmo.config.keys.extract_key`."""
        from videmo.config import keys

        return keys.extract_key(self)

    def feature_tables(self) -> list[FeatureTable]:
        """The side tables this config computes (every extractor of ``features`` but the
        per-frame one), each with its cache hash; read from the extractors' declarations
        (:func:`videmo.extract.features.side_tables`)."""
        from videmo.extract.features import side_tables

        return side_tables(self)

    def mesh_hash(self) -> str | None:
        """The mesh table's cache hash; None when the mesh is not among ``features``."""
        return next((t.cache_hash for t in self.feature_tables() if t.name == "mesh"), None)

    def extract_hash(self) -> str:
        """Hash of :meth:`extract_key`: a clip done under another hash is redone (not report or
        run options, nor the corpus keys that only choose clips)."""
        from videmo.config import keys

        return keys.key_hash(self.extract_key())

    def resolve(self, path: str | None) -> Path | None:
        """A path from the config, relative to the config file's folder."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    def absolute(self) -> Config:
        """The same config with every path made absolute, for jobs that run elsewhere."""
        def absolute(path: str | None) -> str | None:
            return None if path is None else str(self.resolve(path))

        return dataclasses.replace(
            self,
            corpus=dataclasses.replace(self.corpus, paths=[str(p) for p in self.corpus_paths],
                                       segments=absolute(self.corpus.segments)),
            run=dataclasses.replace(self.run, out=str(self.out_dir.resolve())),
            report=dataclasses.replace(self.report, labels=absolute(self.report.labels),
                                       out=absolute(self.report.out),
                                       classifier=absolute(self.report.classifier)),
            slurm=dataclasses.replace(self.slurm, templates=absolute(self.slurm.templates)),
            annotate=dataclasses.replace(self.annotate, cache=absolute(self.annotate.cache)),
            base_dir="/")

    @property
    def corpus_paths(self) -> list[Path]:
        return [typing.cast(Path, self.resolve(p)) for p in self.corpus.paths]

    @property
    def out_dir(self) -> Path:
        return Path(self.run.out).expanduser()

